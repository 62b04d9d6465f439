//! Bad or abusive requests get a clear error, never a 500.
use crm::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{error_code, error_message, spawn_app};

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let app = spawn_app().await;
    let huge = format!("{{ me {{ sub }} }} # {}", "x".repeat(300 * 1024));
    let (status, _) = post_text(&app, &json!({ "query": huge }).to_string()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_batch_or_a_body_that_is_not_graphql_is_bad_input() {
    let app = spawn_app().await;
    for body in [
        r#"[{"query":"{ me { sub } }"}]"#,
        "not json",
        r#"{"query": 42}"#,
    ] {
        let (status, json) = post_text(&app, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&json), "BAD_USER_INPUT", "{body}: {json}");
    }
}

#[tokio::test]
async fn too_many_aliases_too_deep_or_syntax_errors_are_refused_by_validation() {
    let app = spawn_app().await;
    let aliases: String = (0..31).map(|i| format!("a{i}: me {{ sub }} ")).collect();
    let deep = format!(
        "{{ opportunities {{ edges {{ node {{ {}id{} }} }} }} }}",
        "client { opportunities { ".repeat(8),
        " } }".repeat(8)
    );
    for (query, code, expect) in [
        (
            format!("{{ {aliases} }}"),
            "GRAPHQL_VALIDATION_FAILED",
            "too many aliases",
        ),
        (deep, "GRAPHQL_VALIDATION_FAILED", "nested too deep"),
        (
            "{ me { ".to_owned(),
            "GRAPHQL_PARSE_FAILED",
            "line 1, column 8",
        ),
    ] {
        let body = app.post_query(&query, Role::Agent).await;
        assert_eq!(error_code(&body), code, "{body}");
        let message = error_message(&body).to_lowercase();
        assert!(message.contains(expect), "{message}");
        assert!(body.get("data").is_none_or(Value::is_null));
    }
}

async fn post_text(app: &crate::helpers::TestApp, body: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(app.token(Role::Agent))
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
