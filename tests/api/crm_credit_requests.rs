//! Demandes de crédits: credit requests (SPEC 6).
use crm::auth::Role;
use serde_json::json;

use crate::crm_support::{credit_request, lead};
use crate::helpers::{adf_fixture, error_code, node_ids, spawn_app};

const REQUEST_FIELDS: &str = "id department status amount termMonths lender notes createdBy \
    client { id } opportunity { id } statusHistory { from to changedBy }";

#[tokio::test]
async fn a_cre_lead_creates_one_received_credit_request_on_the_opportunity_it_lands_in() {
    let app = spawn_app().await;
    let (first, opportunity) =
        lead(&app, json!({ "email": "luc@example.com", "type": "CRE" })).await;
    let (merged, same) = lead(&app, json!({ "email": "luc@example.com", "type": "CRE" })).await;
    assert_eq!(opportunity, same);
    let (plain, _) = lead(&app, json!({ "email": "luc@example.com", "type": "LEAD" })).await;
    let query =
        format!("query($id: ID!) {{ lead(id: $id) {{ creditRequest {{ {REQUEST_FIELDS} }} }} }}");
    for id in [&first, &merged] {
        let data = app.data(&query, json!({ "id": id }), Role::Agent).await;
        let request = &data["lead"]["creditRequest"];
        assert_eq!(request["status"], "RECUE", "{data}");
        assert_eq!(request["department"], "FINANCEMENT");
        assert_eq!(request["opportunity"]["id"], opportunity.as_str());
        assert_eq!(request["amount"], json!(null));
        assert_eq!(
            request["statusHistory"],
            json!([{ "from": null, "to": "RECUE", "changedBy": "agent-1" }])
        );
    }
    let data = app.data(&query, json!({ "id": plain }), Role::Agent).await;
    assert_eq!(data["lead"]["creditRequest"], json!(null));
    assert_eq!(app.count("credit_request").await, 2);
    // A replayed CRE lead stores nothing new, its credit request included.
    let keyed = json!({ "email": "ana@example.com", "type": "CRE", "idempotencyKey": "k-1" });
    let (once, _) = lead(&app, keyed.clone()).await;
    let (again, _) = lead(&app, keyed).await;
    assert_eq!(once, again);
    assert_eq!(app.count("credit_request").await, 3);
}

#[tokio::test]
async fn a_cre_lead_from_adf_creates_its_credit_request_in_the_same_path() {
    let app = spawn_app().await;
    let answer = app
        .post_adf(&adf_fixture("finance_credit.xml"), Role::Agent)
        .await;
    assert!(answer.status.is_success(), "{:?}", answer.body);
    let data = app
        .data(
            "query($id: ID!) { lead(id: $id) { type creditRequest { status opportunity { id } } } }",
            json!({ "id": answer.body["leadId"] }),
            Role::Agent,
        )
        .await;
    assert_eq!(data["lead"]["type"], "CRE");
    assert_eq!(data["lead"]["creditRequest"]["status"], "RECUE");
    assert_eq!(
        data["lead"]["creditRequest"]["opportunity"]["id"],
        answer.body["opportunityId"]
    );
}

#[tokio::test]
async fn an_amount_is_an_exact_decimal_string_never_a_float() {
    let app = spawn_app().await;
    let (_, opportunity) = lead(&app, json!({ "email": "luc@example.com" })).await;
    let create = "mutation($input: CreateCreditRequestInput!) { createCreditRequest(input: $input) { amount termMonths lender } }";
    for (given, shown) in [
        ("32500.00", "32500.00"),
        ("32500", "32500.00"),
        ("0.1", "0.10"),
        ("19999.99", "19999.99"),
    ] {
        let data = app
            .data(create, json!({ "input": { "opportunityId": opportunity, "amount": given, "termMonths": 60, "lender": "Banque" } }), Role::Agent)
            .await;
        assert_eq!(data["createCreditRequest"]["amount"], shown);
    }
    let before = app.count("credit_request").await;
    for bad in [
        json!(32500.5),
        json!("1.005"),
        json!("-10"),
        json!("1e5"),
        json!("abc"),
    ] {
        let body = app
            .post_graphql(
                create,
                json!({ "input": { "opportunityId": opportunity, "amount": bad } }),
                Role::Agent,
            )
            .await;
        assert!(body.get("errors").is_some(), "{bad} accepted: {body}");
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    }
    let body = app
        .post_graphql(
            create,
            json!({ "input": { "opportunityId": "0190f2a0-0000-7000-8000-000000000000" } }),
            Role::Agent,
        )
        .await;
    app.assert_refused(&body, "NOT_FOUND", "credit_request", before)
        .await;
}

#[tokio::test]
async fn updating_a_credit_request_records_its_status_changes_and_the_list_filters() {
    let app = spawn_app().await;
    let (_, luc_opp) = lead(&app, json!({ "email": "luc@example.com" })).await;
    let (_, ana_opp) = lead(&app, json!({ "email": "ana@example.com" })).await;
    let a = credit_request(&app, &luc_opp, "1000.00").await;
    let b = credit_request(&app, &ana_opp, "2000.00").await;
    let update = format!(
        "mutation($id: ID!, $input: UpdateCreditRequestInput!) {{ updateCreditRequest(id: $id, input: $input) {{ {REQUEST_FIELDS} }} }}"
    );
    app.data(
        &update,
        json!({ "id": a, "input": { "status": "SOUMISE" } }),
        Role::Agent,
    )
    .await;
    let data = app
        .data(&update, json!({ "id": a, "input": { "status": "APPROUVEE", "amount": "1500.50", "notes": "ok" } }), Role::Admin)
        .await;
    let request = &data["updateCreditRequest"];
    assert_eq!(request["amount"], "1500.50");
    assert_eq!(request["notes"], "ok");
    assert_eq!(
        request["statusHistory"],
        json!([
            { "from": null, "to": "RECUE", "changedBy": "agent-1" },
            { "from": "RECUE", "to": "SOUMISE", "changedBy": "agent-1" },
            { "from": "SOUMISE", "to": "APPROUVEE", "changedBy": "admin-1" },
        ])
    );
    let list = "query($f: CreditRequestFilter) { creditRequests(filter: $f) { totalCount edges { node { id } } } }";
    let ids = |data: serde_json::Value| node_ids(&data["creditRequests"]);
    assert_eq!(
        ids(app.data(list, json!({ "f": null }), Role::Agent).await),
        [b.clone(), a.clone()]
    );
    assert_eq!(
        ids(app
            .data(list, json!({ "f": { "status": ["RECUE"] } }), Role::Agent)
            .await),
        [b.as_str()]
    );
    assert_eq!(
        ids(app
            .data(
                list,
                json!({ "f": { "opportunityId": luc_opp } }),
                Role::Agent
            )
            .await),
        [a.as_str()]
    );
    let client = app
        .data(
            "query($id: ID!) { creditRequest(id: $id) { client { id } } }",
            json!({ "id": b }),
            Role::Agent,
        )
        .await["creditRequest"]["client"]["id"]
        .clone();
    assert_eq!(
        ids(app
            .data(list, json!({ "f": { "clientId": client } }), Role::Agent)
            .await),
        [b.as_str()]
    );
}
