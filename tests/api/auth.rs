use chrono::{Duration, Utc};
use crm::auth::{JwtKeys, Role};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{AUDIENCE, ISSUER, SECRET, error_code, spawn_app};

const ME: &str = "{ me { sub role } }";

async fn refused_with(authorization: Option<&str>) {
    let app = spawn_app().await;
    let (status, body) = app.post_raw(json!({ "query": ME }), authorization).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    assert_eq!(body["data"], Value::Null);
}

/// Refused as [`refused_with`] when sent as `Bearer <token>`.
async fn token_refused(token: &str) {
    refused_with(Some(&format!("Bearer {token}"))).await;
}

/// `claims` signed as the server signs its tokens (HS256, its secret).
fn signed(claims: Value) -> String {
    encode(r#"{"alg":"HS256"}"#, claims, SECRET)
}

fn encode(header: &str, claims: Value, secret: &str) -> String {
    use jsonwebtoken::{EncodingKey, Header};
    let header: Header = serde_json::from_str(header).unwrap();
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn claims(role: &str, iss: &str, aud: &str, exp_in: Duration) -> Value {
    let now = Utc::now();
    json!({ "sub": "someone", "role": role, "iss": iss, "aud": aud,
            "iat": now.timestamp(), "exp": (now + exp_in).timestamp() })
}

#[tokio::test]
async fn a_request_without_a_token_is_unauthenticated() {
    refused_with(None).await;
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": ME }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn a_malformed_token_is_unauthenticated() {
    refused_with(Some("Bearer not.a.jwt")).await;
    refused_with(Some("Basic dXNlcjpwYXNz")).await;
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_unauthenticated() {
    let token = encode(
        r#"{"alg":"HS256"}"#,
        claims("ADMIN", ISSUER, AUDIENCE, Duration::hours(1)),
        "wrong",
    );
    token_refused(&token).await;
}

#[tokio::test]
async fn an_expired_token_is_unauthenticated() {
    let token = signed(claims("ADMIN", ISSUER, AUDIENCE, Duration::minutes(-5)));
    token_refused(&token).await;
}

#[tokio::test]
async fn a_token_from_another_issuer_or_for_another_audience_is_unauthenticated() {
    let token = signed(claims("ADMIN", "evil", AUDIENCE, Duration::hours(1)));
    token_refused(&token).await;
    let token = signed(claims("ADMIN", ISSUER, "other-api", Duration::hours(1)));
    token_refused(&token).await;
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_unauthenticated() {
    let header = b64(r#"{"alg":"none","typ":"JWT"}"#);
    let body = b64(&claims("ADMIN", ISSUER, AUDIENCE, Duration::hours(1)).to_string());
    refused_with(Some(&format!("Bearer {header}.{body}."))).await;
}

#[tokio::test]
async fn a_token_signed_with_another_algorithm_is_unauthenticated() {
    let token = encode(
        r#"{"alg":"HS512"}"#,
        claims("ADMIN", ISSUER, AUDIENCE, Duration::hours(1)),
        SECRET,
    );
    token_refused(&token).await;
}

#[tokio::test]
async fn a_token_with_an_unknown_role_is_unauthenticated() {
    let token = signed(claims("ROOT", ISSUER, AUDIENCE, Duration::hours(1)));
    token_refused(&token).await;
}

#[tokio::test]
async fn a_valid_token_says_who_the_caller_is() {
    let app = spawn_app().await;
    for role in [Role::Admin, Role::Agent, Role::Partner] {
        let data = app.query_data(ME, role).await;
        assert_eq!(data["me"]["role"], role.as_str());
    }
    let keys = JwtKeys::hs256(SECRET.as_bytes(), ISSUER, AUDIENCE);
    let token = keys
        .issue(Role::Agent, "marie", Duration::hours(1), Utc::now())
        .unwrap();
    assert_eq!(
        app.post_as(ME, json!({}), &token).await["data"]["me"]["sub"],
        "marie"
    );
}

#[tokio::test]
async fn a_partner_may_not_read_or_change_opportunities_or_clients() {
    let app = spawn_app().await;
    for query in [
        "{ opportunities { totalCount } }",
        "{ clients { totalCount } }",
        r#"{ opportunity(id: "0190c7e0-0000-7000-8000-000000000000") { id } }"#,
        r#"mutation { createOpportunity(input: { clientId: "0190c7e0-0000-7000-8000-000000000000" }) { id } }"#,
        r#"mutation { updateOpportunityStatus(id: "0190c7e0-0000-7000-8000-000000000000", status: PERDU) { id } }"#,
    ] {
        let body = app.post_query(query, Role::Partner).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{query}: {body}");
    }
    let body = app
        .post_query("{ opportunities { totalCount } }", Role::Agent)
        .await;
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn health_endpoints_need_no_token() {
    let app = spawn_app().await;
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let graphiql = app.get("/graphiql").await;
    assert_eq!(graphiql.status(), StatusCode::OK);
    assert!(graphiql.text().await.unwrap().contains("graphiql"));
}

#[tokio::test]
async fn a_mutation_over_get_is_refused() {
    let app = spawn_app().await;
    let token = app.token(Role::Admin);
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .query(&[(
            "query",
            "mutation { createOpportunity(input: {clientId: \"x\"}) { id } }",
        )])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .query(&[("query", "{ me { role } }")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["me"]["role"], "ADMIN");
}

/// Unpadded base64url, to forge a token by hand.
fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn crm_serve_stops_gracefully_on_sigterm_and_keeps_every_acknowledged_lead() {
    let database = std::sync::Arc::new(crate::helpers::TestDatabase::create().await);
    let mut server = crate::helpers::ServerProcess::start(database).await;
    let app = &server.app;
    let mut requests = Vec::new();
    for i in 0..30 {
        let request = app
            .client
            .post(format!("{}/graphql", app.address))
            .bearer_auth(app.token(Role::Agent))
            .json(&json!({
                "query": crate::helpers::SUBMIT_LEAD,
                "variables": { "input": { "email": format!("bye{i}@example.com") } }
            }));
        requests.push(tokio::spawn(async move {
            let response = request.send().await.ok()?;
            let body: Value = response.json().await.ok()?;
            body["data"]["submitLead"]["lead"]["id"]
                .as_str()
                .map(str::to_owned)
        }));
    }
    // Stop once the server is mid-burst: at least one lead acknowledged.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.app.count("lead").await == 0 {
        assert!(std::time::Instant::now() < deadline, "no lead stored");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    server.signal("TERM");
    let mut acknowledged = Vec::new();
    for request in requests {
        acknowledged.extend(request.await.unwrap());
    }
    let status = tokio::time::timeout(std::time::Duration::from_secs(40), server.child.wait())
        .await
        .expect("stops within the grace period")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!acknowledged.is_empty());
    let stored = server.app.count("lead").await;
    assert!(
        stored >= acknowledged.len() as i64,
        "{} acknowledged, {stored} stored",
        acknowledged.len()
    );
    for id in acknowledged {
        let id: uuid::Uuid = id.parse().unwrap();
        assert!(
            crm::store::find::<entity::lead::Entity>(&server.app.db, id)
                .await
                .unwrap()
                .is_some()
        );
    }
}
