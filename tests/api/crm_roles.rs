//! PARTNER has none of SPEC 6: every new query and mutation is FORBIDDEN.
use crm::auth::Role;
use serde_json::json;

use crate::helpers::{error_code, spawn_app};

#[tokio::test]
async fn a_partner_is_forbidden_every_crm_query_and_mutation() {
    let app = spawn_app().await;
    let id = "0190f2a0-0000-7000-8000-000000000000";
    let operations = [
        "query($id: ID!) { serviceCase(id: $id) { id } }",
        "query { serviceCases { totalCount } }",
        "query($id: ID!) { creditRequest(id: $id) { id } }",
        "query { creditRequests { totalCount } }",
        "query { savedViews(module: SERVICE_CASES) { id } }",
        "query($id: ID!) { client(id: $id) { openFiles { __typename } } }",
        "query { clients(search: \"roy\") { totalCount } }",
        "mutation { createServiceCase(input: { email: \"a@example.com\", subject: \"s\", description: \"d\" }) { id } }",
        "mutation($id: ID!) { updateServiceCase(id: $id, input: { status: FERME }) { id } }",
        "mutation($id: ID!) { createCreditRequest(input: { opportunityId: $id }) { id } }",
        "mutation($id: ID!) { updateCreditRequest(id: $id, input: { status: ANNULEE }) { id } }",
        "mutation { createSavedView(input: { module: SERVICE_CASES, name: \"n\", visibility: PRIVATE }) { id } }",
        "mutation($id: ID!) { updateSavedView(id: $id, input: { name: \"n\" }) { id } }",
        "mutation($id: ID!) { deleteSavedView(id: $id) }",
    ];
    for operation in operations {
        let variables = if operation.contains("$id") {
            json!({ "id": id })
        } else {
            json!({})
        };
        let body = app.post_graphql(operation, variables, Role::Partner).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{operation}: {body}");
    }
    assert_eq!(app.count("service_case").await, 0);
    assert_eq!(app.count("saved_view").await, 0);
    // And AGENT may use them (a sample; every module's tests run as AGENT).
    let body = app.post_query("query { serviceCases { totalCount } creditRequests { totalCount } savedViews(module: OPPORTUNITIES) { id } }", Role::Agent).await;
    assert!(body.get("errors").is_none(), "{body}");
}
