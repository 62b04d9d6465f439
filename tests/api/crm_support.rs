//! Shared steps of the CRM tests (SPEC 6).
use crm::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, submit_lead};

/// A client created by hand; returns its id.
pub async fn client(
    app: &TestApp,
    first: &str,
    last: &str,
    email: &str,
    phone: Option<&str>,
) -> String {
    let data = app
        .data(
            r#"mutation($input: CreateClientInput!) { createClient(input: $input) { id } }"#,
            json!({ "input": { "firstName": first, "lastName": last, "email": email, "phone": phone } }),
            Role::Agent,
        )
        .await;
    data["createClient"]["id"].as_str().unwrap().to_owned()
}

/// The id of the client an opportunity is for.
pub async fn client_of(app: &TestApp, opportunity: &str) -> String {
    app.query_opportunity(opportunity, "client { id }", Role::Agent)
        .await["opportunity"]["client"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub const CASE_FIELDS: &str = "id department status subject description assignee createdBy \
    client { id } statusHistory { from to changedBy }";

/// `createServiceCase` as `role`; the whole response.
pub async fn create_case(app: &TestApp, input: Value, role: Role) -> Value {
    app.post_graphql(
        &format!(
            "mutation($input: CreateServiceCaseInput!) {{ createServiceCase(input: $input) {{ {CASE_FIELDS} }} }}"
        ),
        json!({ "input": input }),
        role,
    )
    .await
}

/// A service case for `client_id`; returns its id.
pub async fn case_for(
    app: &TestApp,
    client_id: &str,
    subject: &str,
    assignee: Option<&str>,
) -> String {
    let body = create_case(
        app,
        json!({ "clientId": client_id, "subject": subject, "description": "Bruit au freinage", "assignee": assignee }),
        Role::Agent,
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["createServiceCase"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A lead as an agent; returns (lead id, opportunity id).
pub async fn lead(app: &TestApp, input: Value) -> (String, String) {
    let payload = submit_lead(app, input).await;
    (
        payload["lead"]["id"].as_str().unwrap().to_owned(),
        payload["opportunity"]["id"].as_str().unwrap().to_owned(),
    )
}

/// A credit request on `opportunity`; returns its id.
pub async fn credit_request(app: &TestApp, opportunity: &str, amount: &str) -> String {
    let data = app
        .data(
            r#"mutation($input: CreateCreditRequestInput!) { createCreditRequest(input: $input) { id } }"#,
            json!({ "input": { "opportunityId": opportunity, "amount": amount } }),
            Role::Agent,
        )
        .await;
    data["createCreditRequest"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `updateServiceCase` as an agent, asserting success.
pub async fn update_case(app: &TestApp, id: &str, input: Value) -> Value {
    app.data(
        &format!(
            "mutation($id: ID!, $input: UpdateServiceCaseInput!) {{ updateServiceCase(id: $id, input: $input) {{ {CASE_FIELDS} }} }}"
        ),
        json!({ "id": id, "input": input }),
        Role::Agent,
    )
    .await["updateServiceCase"]
        .clone()
}
