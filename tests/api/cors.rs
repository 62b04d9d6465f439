//! CORS (`CRM_CORS_ORIGINS`): listed origins only, preflight answered,
//! never `*`, never credentials.
use reqwest::Method;
use serde_json::json;

use crm::auth::Role;

use crate::crm_process::Crm;
use crate::helpers::{TestApp, spawn_app, spawn_app_configured};

const ALLOWED: &str = "https://crm.example.com";

async fn app_allowing(origins: &[&str]) -> TestApp {
    let origins: Vec<String> = origins.iter().map(|o| o.to_string()).collect();
    spawn_app_configured(|s| s.cors_origins = origins).await
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, format!("{}/graphql", app.address))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type, x-request-id",
        )
        .send()
        .await
        .expect("preflight sent")
}

/// `POST /graphql` of `query` as an agent, from a page on `origin`.
async fn post_from(app: &TestApp, origin: &str, query: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/graphql", app.address))
        .header("Origin", origin)
        .bearer_auth(app.token(Role::Agent))
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("sent")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_answered_with_methods_and_headers() {
    let app = app_allowing(&[ALLOWED, "http://localhost:5173"]).await;
    let response = preflight(&app, ALLOWED).await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some(ALLOWED)
    );
    let methods = header(&response, "access-control-allow-methods").unwrap_or_default();
    assert!(
        methods.contains("GET") && methods.contains("POST"),
        "{methods}"
    );
    assert!(
        !methods.contains("PUT") && !methods.contains("DELETE"),
        "{methods}"
    );
    let headers = header(&response, "access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    for name in ["authorization", "content-type", "x-request-id"] {
        assert!(headers.contains(name), "{headers}");
    }
    assert_eq!(header(&response, "access-control-allow-credentials"), None);
    assert!(
        header(&response, "vary")
            .unwrap_or_default()
            .contains("Origin")
    );

    let other = preflight(&app, "http://localhost:5173").await;
    assert_eq!(
        header(&other, "access-control-allow-origin"),
        Some("http://localhost:5173")
    );
}

#[tokio::test]
async fn a_preflight_from_another_origin_gets_no_cors_grant() {
    let app = app_allowing(&[ALLOWED]).await;
    let response = preflight(&app, "https://evil.example.com").await;
    assert_eq!(response.status(), 403);
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    assert_eq!(header(&response, "access-control-allow-methods"), None);
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");

    // An allowed origin asking for a method that is not allowed.
    let response = app
        .client
        .request(Method::OPTIONS, format!("{}/graphql", app.address))
        .header("Origin", ALLOWED)
        .header("Access-Control-Request-Method", "DELETE")
        .send()
        .await
        .expect("preflight sent");
    assert_eq!(response.status(), 400);
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

#[tokio::test]
async fn without_cors_origins_no_origin_is_granted_cross_origin_access() {
    let app = spawn_app().await;
    let response = preflight(&app, ALLOWED).await;
    assert!(response.status().is_client_error(), "{}", response.status());
    assert_eq!(header(&response, "access-control-allow-origin"), None);

    // A request that carries an Origin still works (same-origin pages and
    // non-browser clients), but grants nothing to the browser.
    let response = post_from(&app, ALLOWED, "{ me { role } }").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn a_cross_origin_post_from_an_allowed_origin_is_answered_with_its_origin_and_request_id() {
    let app = app_allowing(&[ALLOWED]).await;
    let response = post_from(&app, ALLOWED, "query Who { me { role } }").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some(ALLOWED)
    );
    assert_ne!(header(&response, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&response, "access-control-allow-credentials"), None);
    let exposed = header(&response, "access-control-expose-headers").unwrap_or_default();
    assert!(exposed.contains("x-request-id"), "{exposed}");
    assert!(header(&response, "x-request-id").is_some());
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["data"]["me"]["role"], "AGENT");

    // The same request from another origin: answered, but not readable by
    // that origin's page (no grant).
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("Origin", "https://evil.example.com")
        .bearer_auth(app.token(Role::Agent))
        .json(&json!({ "query": "{ me { role } }" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(header(&response, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn crm_serve_refuses_a_wildcard_cors_origin() {
    let out = Crm::new()
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("CRM_CORS_ORIGINS", "https://ok.example.com,*")
        .database("sqlite::memory:")
        .output()
        .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("origin"), "{stderr}");
}
