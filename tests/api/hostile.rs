//! Hostile requests are cheap and refused, whatever the role: limits that
//! hold through fragments and lists, strict tokens, contact keys that cannot
//! be dodged, NUL characters, slow bodies, and JSON for every error.
use std::time::{Duration, Instant};

use crm::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    AUDIENCE, ISSUER, SECRET, TestApp, error_code, error_message, spawn_app, submit_lead,
};

/// `client { opportunities { edges { node { client { ... } } } } }`, `levels` deep.
pub fn fan_out(levels: usize, first: &str) -> String {
    let open = format!("client {{ opportunities{first} {{ edges {{ node {{ id ");
    format!(
        "query($id: ID!) {{ opportunity(id: $id) {{ {}id{} }} }}",
        open.repeat(levels),
        " } } } }".repeat(levels)
    )
}

/// Fragments `F0..Fn`, each spreading the next one `width` times: `width^n`
/// fields once expanded, from a document of a few hundred bytes.
pub fn fragment_chain(depth: usize, width: usize) -> String {
    let mut doc = String::from("query { me { ...F0 } }\n");
    for i in 0..depth {
        let spreads: String = (0..width).map(|_| format!("...F{} ", i + 1)).collect();
        doc.push_str(&format!("fragment F{i} on Viewer {{ sub {spreads}}}\n"));
    }
    doc.push_str(&format!("fragment F{depth} on Viewer {{ sub role }}\n"));
    doc
}

/// A fragment of 25 aliases spread four times: 100 aliased fields.
pub fn aliases_through_fragments() -> String {
    let aliases: String = (0..25).map(|i| format!("a{i}: sub ")).collect();
    format!(
        "query {{ me {{ ...A ...A b: me {{ ...A }} c: me {{ ...A }} }} }}\nfragment A on Viewer {{ {aliases} }}"
    )
}

async fn refused(app: &TestApp, query: &str, variables: Value, role: Role) -> Value {
    let started = Instant::now();
    let body = app.post_graphql(query, variables, role).await;
    assert!(
        body.get("data").is_none_or(Value::is_null),
        "not refused: {body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    body
}

#[tokio::test]
async fn a_nested_list_fan_out_is_refused_by_the_items_it_may_return() {
    let app = spawn_app().await;
    let lead = submit_lead(&app, json!({ "email": "fan@example.com" })).await;
    let id = json!({ "id": lead["opportunity"]["id"] });
    for role in [Role::Partner, Role::Agent, Role::Admin] {
        // Two levels of 100 items weigh 100 × 100 × their fields.
        let body = refused(&app, &fan_out(2, "(first: 100)"), id.clone(), role).await;
        assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
        assert!(error_message(&body).contains("too complex"), "{body}");
        // A third level is past the depth limit, even one item wide.
        let body = refused(&app, &fan_out(3, "(first: 1)"), id.clone(), role).await;
        assert!(error_message(&body).contains("nested too deep"), "{body}");
    }
    // Small pages: the same shape within the budget is served.
    let data = app.data(&fan_out(2, "(first: 5)"), id, Role::Agent).await;
    assert!(data["opportunity"]["client"].is_object(), "{data}");
}

#[tokio::test]
async fn fragment_chains_are_counted_expanded_in_linear_time() {
    let app = spawn_app().await;
    // 4^12 = 16.7 million fields once expanded; async-graphql's own
    // visitors would expand it spread by spread.
    for (depth, width) in [(6, 4), (12, 4), (30, 8)] {
        let doc = fragment_chain(depth, width);
        let body = refused(&app, &doc, json!({}), Role::Partner).await;
        assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
        assert!(error_message(&body).contains("too large"), "{body}");
    }
    // A short chain is fine.
    let ok = app.query_data(&fragment_chain(2, 2), Role::Partner).await;
    assert_eq!(ok["me"]["sub"], "partner-1");
}

#[tokio::test]
async fn aliases_are_counted_through_fragment_spreads() {
    let app = spawn_app().await;
    let body = refused(&app, &aliases_through_fragments(), json!({}), Role::Agent).await;
    assert!(
        error_message(&body).contains("too many aliases (102"),
        "{body}"
    );
}

#[tokio::test]
async fn a_nul_character_is_bad_input_on_every_database_and_nothing_is_stored() {
    let app = spawn_app().await;
    let mutation =
        "mutation($input: SubmitLeadInput!) { submitLead(input: $input) { lead { id } } }";
    for input in [
        json!({ "email": "nul@example.com", "firstName": "Ma\u{0}rie" }),
        json!({ "email": "nul@example.com", "message": "\u{0}" }),
        json!({ "email": "nul@example.com", "vehicle": { "make": "Kia\u{0}" } }),
    ] {
        let body = app
            .post_graphql(mutation, json!({ "input": input }), Role::Partner)
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(error_message(&body).contains("NUL"), "{body}");
    }
    // In a literal of the document itself.
    let body = app
        .post_query(
            r#"mutation { submitLead(input: { email: "nul@example.com", source: "a\u0000b" }) { lead { id } } }"#,
            Role::Partner,
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    for table in ["client", "lead", "opportunity"] {
        assert_eq!(app.count(table).await, 0, "{table}");
    }
}

#[tokio::test]
async fn contact_keys_cannot_be_dodged_with_invisible_or_fullwidth_characters() {
    let app = spawn_app().await;
    let first = submit_lead(&app, json!({ "email": "c4@example.com" })).await;
    // Fullwidth letters and digits, and case, are the same key: merged.
    let same = submit_lead(&app, json!({ "email": "Ｃ４@ｅｘａｍｐｌｅ.com" })).await;
    assert_eq!(same["outcome"], "MERGED");
    assert_eq!(same["opportunity"]["id"], first["opportunity"]["id"]);
    // Characters that do not show are refused, even beside a good phone.
    for (email, phone) in [
        ("c4\u{200B}@example.com", None),
        ("c4@exam\u{AD}ple.com", None),
        ("\u{202E}c4@example.com", None),
        ("c4\u{2060}@example.com", Some("514 555-0123")),
    ] {
        let body = app
            .post_graphql(
                crate::helpers::SUBMIT_LEAD,
                json!({ "input": { "email": email, "phone": phone } }),
                Role::Agent,
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{email:?}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "email");
    }
    let body = app
        .post_graphql(
            crate::helpers::SUBMIT_LEAD,
            json!({ "input": { "phone": "514\u{200B}555-0123" } }),
            Role::Agent,
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "phone", "{body}");
    // A right-to-left override cannot spoof a name either.
    let body = app
        .post_graphql(
            crate::helpers::SUBMIT_LEAD,
            json!({ "input": { "email": "rlo@example.com", "lastName": "Tremblay\u{202E}lacsaP" } }),
            Role::Agent,
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["field"], "lastName",
        "{body}"
    );
    assert_eq!(app.count("client").await, 1);
    assert_eq!(app.count("lead").await, 2);
}

fn token_with(claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn claims(sub: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({ "sub": sub, "role": "PARTNER", "iat": now, "exp": now + 3600,
            "iss": ISSUER, "aud": AUDIENCE })
}

#[tokio::test]
async fn tokens_not_yet_valid_issued_in_the_future_or_with_a_bad_subject_are_refused() {
    let app = spawn_app().await;
    let now = chrono::Utc::now().timestamp();
    let query = json!({ "query": "{ me { sub } }" });
    let mut future_nbf = claims("p");
    future_nbf["nbf"] = json!(now + 600);
    let mut future_iat = claims("p");
    future_iat["iat"] = json!(now + 365 * 86_400);
    future_iat["exp"] = json!(now + 366 * 86_400);
    for (what, token) in [
        ("nbf ahead", token_with(future_nbf)),
        ("iat a year ahead", token_with(future_iat)),
        ("NUL in sub", token_with(claims("partner\u{0}1"))),
        (
            "sub of 201 characters",
            token_with(claims(&"p".repeat(201))),
        ),
        ("blank sub", token_with(claims("  "))),
    ] {
        let (status, body) = app
            .post_raw(query.clone(), Some(&format!("Bearer {token}")))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{what}");
    }
    let mut skew = claims("p");
    skew["iat"] = json!(now + 30);
    let token = token_with(skew);
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let (status, body) = app
            .post_raw(query.clone(), Some(&format!("{scheme} {token}")))
            .await;
        assert_eq!(status, StatusCode::OK, "{scheme}: {body}");
        assert_eq!(body["data"]["me"]["sub"], "p");
    }
}

async fn raw_http(app: &TestApp, request: &[u8], wait: Duration) -> (String, Duration) {
    let addr = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut answer)).await;
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn a_body_sent_too_slowly_is_cut_off_and_an_anonymous_one_is_not_even_read() {
    let app = spawn_app().await;
    // No token: 401 at once, before any of the body arrives.
    let head = "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
    let (answer, took) = raw_http(&app, head.as_bytes(), Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // With a token, the body must arrive within the deadline.
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        app.token(Role::Partner)
    );
    let (answer, took) = raw_http(&app, head.as_bytes(), Duration::from_secs(30)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"BAD_USER_INPUT\""), "{answer}");
    let deadline = crm::startup::BODY_READ_DEADLINE;
    assert!(
        took >= deadline && took < deadline + Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn every_http_error_is_json_with_a_code() {
    let app = spawn_app().await;
    let token = app.token(Role::Agent);
    let url = format!("{}/graphql", app.address);
    let huge = format!(
        "{{\"query\":\"{{ me {{ sub }} }}\",\"x\":\"{}\"}}",
        "x".repeat(300 * 1024)
    );
    let cases = [
        (
            app.client.post(&url).bearer_auth(&token).body(huge),
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            app.client.put(&url).bearer_auth(&token).body("{}"),
            StatusCode::METHOD_NOT_ALLOWED,
            "BAD_USER_INPUT",
        ),
        (
            app.client.delete(&url).bearer_auth(&token),
            StatusCode::METHOD_NOT_ALLOWED,
            "BAD_USER_INPUT",
        ),
        (
            app.client.get(format!("{}/nowhere", app.address)),
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            app.client.post(&url),
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        ),
    ];
    for (request, status, code) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status);
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(error_code(&body), code, "{body}");
    }
    // A syntax error names where, without the parser's excerpt.
    let body = app.post_query("{ me { sub ", Role::Agent).await;
    assert_eq!(error_code(&body), "GRAPHQL_PARSE_FAILED", "{body}");
    let text = error_message(&body);
    assert!(text.contains("line 1"), "{text}");
    assert!(
        !text.contains("-->") && !text.contains('^') && !text.contains('\n'),
        "{text}"
    );
}

/// `n` aliased pages of 100 leads with their messages: `{ l0: leads(...) ... }`.
fn pages_of_leads(n: usize) -> String {
    let aliases: String = (0..n)
        .map(|i| format!("l{i}: leads(first: 100) {{ edges {{ node {{ message }} }} }} "))
        .collect();
    format!("{{ {aliases} }}")
}

#[tokio::test]
async fn a_response_over_the_ceiling_is_refused_with_a_clear_error() {
    let app = spawn_app().await;
    let message_text = "m".repeat(5_000);
    for i in 0..100 {
        submit_lead(
            &app,
            json!({ "email": "big@example.com", "message": message_text, "idempotencyKey": format!("k{i}") }),
        )
        .await;
    }
    // 20 × 100 leads × 5 kB = 10 MB, within the complexity budget.
    let body = app.post_query(&pages_of_leads(20), Role::Agent).await;
    assert_eq!(
        error_code(&body),
        "PAYLOAD_TOO_LARGE",
        "{}",
        error_message(&body)
    );
    assert!(error_message(&body).contains("first"), "{body}");
    // Half of it is served.
    let data = app.query_data(&pages_of_leads(10), Role::Agent).await;
    assert_eq!(data["l9"]["edges"].as_array().unwrap().len(), 100);
}
