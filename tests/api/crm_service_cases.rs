//! Service à la clientèle: service cases (SPEC 6).
use crm::auth::Role;
use serde_json::json;

use crate::crm_support::{CASE_FIELDS, case_for, client, create_case, update_case};
use crate::helpers::{error_code, node_ids, spawn_app};

#[tokio::test]
async fn the_bdc_opens_a_service_case_for_a_client_found_by_phone_in_any_spelling() {
    let app = spawn_app().await;
    let id = client(&app, "Luc", "Roy", "luc@example.com", Some("514 555-0199")).await;
    let body = create_case(
        &app,
        json!({ "phone": "+1 (514) 555 0199", "subject": "Bruit", "description": "Bruit au freinage" }),
        Role::Agent,
    )
    .await;
    let case = &body["data"]["createServiceCase"];
    assert_eq!(case["client"]["id"], id.as_str(), "{body}");
    assert_eq!(case["department"], "SERVICE");
    assert_eq!(case["status"], "OUVERT");
    assert_eq!(case["createdBy"], "agent-1");
    assert_eq!(
        case["statusHistory"],
        json!([{ "from": null, "to": "OUVERT", "changedBy": "agent-1" }])
    );
    // By email, any case, and by both when they agree.
    for input in [
        json!({ "email": " LUC@Example.com ", "subject": "S", "description": "D" }),
        json!({ "email": "luc@example.com", "phone": "5145550199", "subject": "S", "description": "D" }),
    ] {
        let body = create_case(&app, input, Role::Admin).await;
        assert_eq!(
            body["data"]["createServiceCase"]["client"]["id"],
            id.as_str(),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_service_case_for_an_unknown_client_is_not_found_and_nothing_is_created() {
    let app = spawn_app().await;
    client(&app, "Luc", "Roy", "luc@example.com", None).await;
    for input in [
        json!({ "email": "nobody@example.com", "subject": "S", "description": "D" }),
        json!({ "phone": "514 555 0000", "subject": "S", "description": "D" }),
        json!({ "clientId": "0190f2a0-0000-7000-8000-000000000000", "subject": "S", "description": "D" }),
    ] {
        let body = create_case(&app, input, Role::Agent).await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    }
    assert_eq!(app.count("service_case").await, 0);
    assert_eq!(app.count("service_case_status_change").await, 0);
}

#[tokio::test]
async fn an_email_and_a_phone_of_two_different_clients_are_refused_and_nothing_is_created() {
    let app = spawn_app().await;
    client(&app, "Luc", "Roy", "luc@example.com", None).await;
    client(&app, "Ana", "Roy", "ana@example.com", Some("514 555 0199")).await;
    let body = create_case(
        &app,
        json!({ "email": "luc@example.com", "phone": "514-555-0199", "subject": "S", "description": "D" }),
        Role::Agent,
    )
    .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    // No client at all, an invalid email, an empty subject: refused too.
    for input in [
        json!({ "subject": "S", "description": "D" }),
        json!({ "email": "not an email", "subject": "S", "description": "D" }),
        json!({ "email": "luc@example.com", "subject": "  ", "description": "D" }),
    ] {
        let body = create_case(&app, input, Role::Agent).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    }
    assert_eq!(app.count("service_case").await, 0);
}

#[tokio::test]
async fn updating_a_service_case_records_each_status_change_in_its_history() {
    let app = spawn_app().await;
    let id = client(&app, "Luc", "Roy", "luc@example.com", None).await;
    let case = case_for(&app, &id, "Bruit", Some("tech-1")).await;
    let updated = update_case(
        &app,
        &case,
        json!({ "status": "EN_COURS", "subject": "Bruit au frein" }),
    )
    .await;
    assert_eq!(updated["status"], "EN_COURS");
    assert_eq!(updated["subject"], "Bruit au frein");
    assert_eq!(updated["assignee"], "tech-1");
    // Not a status change: no history entry; null unassigns.
    let updated = update_case(
        &app,
        &case,
        json!({ "assignee": null, "description": "Réglé?" }),
    )
    .await;
    assert_eq!(updated["assignee"], json!(null));
    assert_eq!(updated["description"], "Réglé?");
    let updated = update_case(&app, &case, json!({ "status": "FERME" })).await;
    assert_eq!(
        updated["statusHistory"],
        json!([
            { "from": null, "to": "OUVERT", "changedBy": "agent-1" },
            { "from": "OUVERT", "to": "EN_COURS", "changedBy": "agent-1" },
            { "from": "EN_COURS", "to": "FERME", "changedBy": "agent-1" },
        ])
    );
    let body = app
        .post_query(
            "mutation { updateServiceCase(id: \"0190f2a0-0000-7000-8000-000000000000\", input: { status: FERME }) { id } }",
            Role::Agent,
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
}

#[tokio::test]
async fn service_cases_are_listed_newest_first_and_filtered_by_status_client_and_assignee() {
    let app = spawn_app().await;
    let luc = client(&app, "Luc", "Roy", "luc@example.com", None).await;
    let ana = client(&app, "Ana", "Roy", "ana@example.com", None).await;
    let a = case_for(&app, &luc, "A", Some("tech-1")).await;
    let b = case_for(&app, &luc, "B", Some("tech-2")).await;
    let c = case_for(&app, &ana, "C", Some("tech-1")).await;
    update_case(&app, &b, json!({ "status": "FERME" })).await;
    let list = |filter: serde_json::Value| {
        let app = &app;
        async move {
            let data = app
                .data(
                    "query($f: ServiceCaseFilter) { serviceCases(filter: $f) { totalCount edges { node { id } } } }",
                    json!({ "f": filter }),
                    Role::Agent,
                )
                .await;
            let ids = node_ids(&data["serviceCases"]);
            assert_eq!(data["serviceCases"]["totalCount"], ids.len());
            ids
        }
    };
    assert_eq!(list(json!(null)).await, [c.clone(), b.clone(), a.clone()]);
    assert_eq!(
        list(json!({ "status": ["OUVERT", "EN_COURS"] })).await,
        [c.clone(), a.clone()]
    );
    assert_eq!(
        list(json!({ "clientId": luc })).await,
        [b.clone(), a.clone()]
    );
    assert_eq!(
        list(json!({ "assignee": "tech-1", "clientId": luc })).await,
        [a.as_str()]
    );
    let data = app
        .data(
            &format!("query($id: ID!) {{ serviceCase(id: $id) {{ {CASE_FIELDS} }} }}"),
            json!({ "id": b }),
            Role::Admin,
        )
        .await;
    assert_eq!(data["serviceCase"]["status"], "FERME");
}

/// A case's status moves only with its history: a change (an `ActiveModel`
/// of the entity) that sets the status directly is refused, and nothing of
/// it is written.
#[tokio::test]
async fn a_change_that_sets_the_status_outside_its_history_is_refused_and_writes_nothing() {
    use crm::clock::Clock;
    use entity::service_case::{ActiveModel, ServiceCaseStatus};
    use sea_orm::ActiveValue::Set;

    let app = spawn_app().await;
    let luc = client(&app, "Luc", "Roy", "luc@example.com", None).await;
    let id = case_for(&app, &luc, "Bruit", None).await;
    let changes = ActiveModel {
        status: Set(ServiceCaseStatus::Ferme),
        subject: Set("Autre".into()),
        ..Default::default()
    };
    let case = id.parse().expect("a case id");
    let now = app.clock.now();
    let refused = crm::store::status_history::update::<entity::service_case::Entity>(
        &app.db, case, None, changes, "x", now,
    )
    .await;
    assert!(
        matches!(refused, Err(crm::error::AppError::Internal(_))),
        "{refused:?}"
    );
    let read =
        format!(r#"{{ serviceCase(id: "{id}") {{ subject status statusHistory {{ to }} }} }}"#);
    let unchanged =
        json!({ "subject": "Bruit", "status": "OUVERT", "statusHistory": [{ "to": "OUVERT" }] });
    assert_eq!(
        app.query_data(&read, Role::Agent).await["serviceCase"],
        unchanged
    );
}
