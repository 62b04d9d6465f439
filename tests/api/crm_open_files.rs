//! Open files of a client, every department, and client search (SPEC 6).
use chrono::Duration;
use crm::auth::Role;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::crm_support::{case_for, client, client_of, credit_request, lead, update_case};
use crate::helpers::{TestApp, node_ids, set_status, spawn_app, sweep_on_day};

const OPEN_FILES: &str = r#"query($id: ID!) { client(id: $id) { openFiles {
  __typename
  ... on Opportunity { id department status }
  ... on ServiceCase { id department status }
  ... on CreditRequest { id department status }
} } }"#;

async fn open_files(app: &TestApp, client: &str, role: Role) -> Value {
    app.data(OPEN_FILES, json!({ "id": client }), role).await["client"]["openFiles"].clone()
}

fn ids(files: &Value) -> Vec<&str> {
    files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn open_files_hold_every_department_newest_first_and_no_closed_file() {
    let app = spawn_app().await;
    let (_, sale) = lead(
        &app,
        json!({ "email": "luc@example.com", "phone": "514 555 0199" }),
    )
    .await;
    let client_id = client_of(&app, &sale).await;
    app.clock.advance(Duration::minutes(1));
    let case = case_for(&app, &client_id, "Bruit", None).await;
    app.clock.advance(Duration::minutes(1));
    let credit = credit_request(&app, &sale, "25000.00").await;
    app.clock.advance(Duration::minutes(1));
    let closed_case = case_for(&app, &client_id, "Réglé", None).await;
    update_case(&app, &closed_case, json!({ "status": "FERME" })).await;

    let files = open_files(&app, &client_id, Role::Agent).await;
    assert_eq!(ids(&files), [credit.as_str(), case.as_str(), sale.as_str()]);
    assert_eq!(
        files
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (
                f["__typename"].as_str().unwrap(),
                f["department"].as_str().unwrap()
            ))
            .collect::<Vec<_>>(),
        [
            ("CreditRequest", "FINANCEMENT"),
            ("ServiceCase", "SERVICE"),
            ("Opportunity", "VENTES")
        ]
    );

    // Closed by status: a lost sale, an approved credit request.
    set_status(&app, &sale, "PERDU", Role::Agent).await;
    app.data(
        "mutation($id: ID!) { updateCreditRequest(id: $id, input: { status: APPROUVEE }) { id } }",
        json!({ "id": credit }),
        Role::Agent,
    )
    .await;
    assert_eq!(
        ids(&open_files(&app, &client_id, Role::Agent).await),
        [case.as_str()]
    );
}

#[tokio::test]
async fn a_non_admins_open_files_are_the_same_before_and_after_the_sweep() {
    let app = spawn_app().await;
    let (_, sale) = lead(&app, json!({ "email": "luc@example.com" })).await;
    let client_id = client_of(&app, &sale).await;
    case_for(&app, &client_id, "Bruit", None).await;
    let before = open_files(&app, &client_id, Role::Agent).await;
    let report = sweep_on_day(&app, 57).await;
    assert_eq!(report.expired, 1);
    let expired = app.query_opportunity(&sale, "expiree", Role::Admin).await;
    assert_eq!(expired["opportunity"]["expiree"], true);
    assert_eq!(open_files(&app, &client_id, Role::Agent).await, before);
    assert_eq!(open_files(&app, &client_id, Role::Admin).await, before);
    assert_eq!(ids(&before).len(), 2);
}

#[tokio::test]
async fn clients_are_found_by_name_words_in_any_order_any_case_and_accent_and_by_contact() {
    let app = spawn_app().await;
    let francois = client(
        &app,
        "François",
        "Tremblay",
        "f.tremblay@example.com",
        Some("514 555 0199"),
    )
    .await;
    let other = client(&app, "Hélène", "Côté", "helene@example.com", None).await;
    let search = |text: &'static str| {
        let app = &app;
        async move {
            let data = app
                .data(
                    "query($s: String) { clients(search: $s) { totalCount edges { node { id } } } }",
                    json!({ "s": text }),
                    Role::Agent,
                )
                .await;
            let found = node_ids(&data["clients"]);
            assert_eq!(data["clients"]["totalCount"], found.len(), "{text}");
            found
        }
    };
    for text in [
        "francois tremblay",
        "TREMBLAY",
        "Tremblay François",
        "  fRANÇOIS  ",
        "F.Tremblay@Example.COM",
        "(514) 555-0199",
        "+1 514 555 0199",
        "trem",
    ] {
        assert_eq!(search(text).await, [francois.as_str()], "{text}");
    }
    assert_eq!(search("helene cote").await, [other.as_str()]);
    assert_eq!(search("cote tremblay").await, Vec::<String>::new());
    assert_eq!(search("%").await, Vec::<String>::new());
    // A client named by a lead later is found by the name it was given.
    lead(
        &app,
        json!({ "email": "new@example.com", "firstName": "Émilie", "lastName": "Gagné" }),
    )
    .await;
    assert_eq!(search("emilie gagne").await.len(), 1);
}

#[tokio::test]
async fn clients_stored_before_the_search_key_existed_are_found_after_a_restart() {
    let app = spawn_app().await;
    let id = client(&app, "Zoé", "Bélanger", "zoe@example.com", None).await;
    app.db
        .execute_unprepared("UPDATE client SET search_key = NULL")
        .await
        .unwrap();
    let restarted = crate::helpers::spawn_app_on(app.database.clone(), app.clock.clone()).await;
    let data = restarted
        .query_data(
            "{ clients(search: \"belanger zoe\") { edges { node { id } } } }",
            Role::Agent,
        )
        .await;
    assert_eq!(data["clients"]["edges"][0]["node"]["id"], id.as_str());
}

#[tokio::test]
async fn open_files_are_bounded_to_the_newest_twenty() {
    let app = spawn_app().await;
    let id = client(&app, "Luc", "Roy", "luc@example.com", None).await;
    let mut cases = Vec::new();
    for i in 0..22 {
        app.clock.advance(Duration::seconds(1));
        cases.push(case_for(&app, &id, &format!("Cas {i}"), None).await);
    }
    let files = open_files(&app, &id, Role::Agent).await;
    let newest: Vec<&str> = cases.iter().rev().take(20).map(String::as_str).collect();
    assert_eq!(ids(&files), newest);
}
