//! The standard introspection queries are answered for every role, with that
//! role's schema, and introspection stays bounded.
use crm::auth::Role;
use serde_json::Value;

use crate::helpers::{error_code, error_message, spawn_app};

const GRAPHQL_JS_DEFAULT: &str =
    include_str!("../fixtures/introspection/graphql-js-default.graphql");
const GRAPHQL_JS_ALL_OPTIONS: &str =
    include_str!("../fixtures/introspection/graphql-js-all-options.graphql");

fn type_named<'a>(schema: &'a Value, name: &str) -> Option<&'a Value> {
    schema["types"]
        .as_array()?
        .iter()
        .find(|t| t["name"] == name)
}

fn field_names(ty: &Value) -> Vec<&str> {
    ty["fields"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["name"].as_str()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn graphql_js_introspection_queries_answer_each_role_with_its_own_schema() {
    let app = spawn_app().await;
    for query in [GRAPHQL_JS_DEFAULT, GRAPHQL_JS_ALL_OPTIONS] {
        for role in [Role::Admin, Role::Agent, Role::Partner] {
            let body = app.post_query(query, role).await;
            assert!(body.get("errors").is_none(), "{role:?}: {body}");
            let schema = &body["data"]["__schema"];
            assert_eq!(schema["queryType"]["name"], "Query");
            let opportunity = type_named(schema, "Opportunity").expect("Opportunity");
            let payload = type_named(schema, "SubmitLeadPayload").expect("payload");
            let fields = field_names(opportunity);
            match role {
                Role::Admin => {
                    assert!(fields.contains(&"expiree"), "{fields:?}");
                    assert!(field_names(payload).contains(&"outcome"));
                }
                Role::Agent => {
                    assert!(!fields.contains(&"expiree"), "{fields:?}");
                    assert!(type_named(schema, "LeadDecision").is_none());
                    assert!(field_names(payload).contains(&"outcome"));
                }
                Role::Partner => {
                    assert!(!fields.contains(&"expiree"), "{fields:?}");
                    assert_eq!(field_names(payload), ["lead", "warnings"]);
                    assert!(type_named(schema, "ContactConflict").is_none());
                }
            }
            // Nothing of the admin-only parts anywhere in a non-admin's answer.
            if role != Role::Admin {
                let text = body.to_string();
                assert!(!text.contains("expiree") && !text.contains("expiredAt"));
            }
        }
    }
}

#[tokio::test]
async fn hand_written_introspection_is_still_bounded() {
    let app = spawn_app().await;
    let deep_of_type = format!(
        "{{ __type(name: \"Query\") {{ {}name{} }} }}",
        "ofType { ".repeat(25),
        " }".repeat(25)
    );
    let body = app.post_query(&deep_of_type, Role::Agent).await;
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert!(error_message(&body).contains("nested too deep"));

    let cycle = "{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }";
    let body = app.post_query(cycle, Role::Partner).await;
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert!(
        error_message(&body).contains("Introspection query is too complex"),
        "{body}"
    );
    // The ordinary small ones are fine.
    let data = app
        .query_data(
            "{ __type(name: \"Opportunity\") { fields { name type { name ofType { name } } } } }",
            Role::Agent,
        )
        .await;
    assert!(data["__type"]["fields"].as_array().unwrap().len() > 3);
}
