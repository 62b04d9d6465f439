//! The real-browser test of `/graphiql`: starts `crm serve` (the built
//! binary, SQLite in a temp dir), makes an opportunity over HTTP, then runs
//! `node tests/browser/run.mjs` (playwright-core driving the system
//! Chromium, every non-loopback request aborted). Screenshots land in
//! `target/browser-artifacts/`.
//!
//! Needs `node`, `npm ci --prefix tests/browser` and Chromium
//! (`apt-get install chromium`); `.ci/run` installs them. When one is
//! missing this test fails and says which: it never skips.
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use crm::auth::{JwtKeys, Role};
use serde_json::{Value, json};

#[path = "support/crm_process.rs"]
#[expect(
    dead_code,
    reason = "the browser test starts a server and runs nothing else"
)]
mod crm_process;
use crm_process::{Crm, RunningCrm};
#[path = "support/node.rs"]
mod node;

const SECRET: &str = "browser-test-secret-at-least-32-bytes-long";

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// `crm serve` on a free loopback port, SQLite in `db_dir`.
async fn start_server(db_dir: &Path) -> RunningCrm {
    Crm::new()
        .database(&format!(
            "sqlite://{}?mode=rwc",
            db_dir.join("crm.sqlite").display()
        ))
        .env("CRM_JWT_SECRET", SECRET)
        .serve()
        .await
}

/// A GraphQL request; retried (as the error asks) while the server's
/// start-up sweep holds SQLite's write lock.
async fn graphql(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> Value {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let body: Value = client
            .post(format!("{base}/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("POST /graphql")
            .json()
            .await
            .expect("JSON answer");
        let retry = body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("retry"));
        if retry && attempt < 10 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert!(body.get("errors").is_none(), "GraphQL errors: {body}");
        return body["data"].clone();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_works_offline_in_a_real_browser_and_shows_expiree_to_admins_only() {
    let missing_chromium = (!chromium().exists()).then(|| {
        format!(
            "no Chromium at {} (set CHROMIUM, or `apt-get install -y chromium`)",
            chromium().display()
        )
    });
    node::check_prerequisites(
        "the browser test",
        &["playwright-core"],
        missing_chromium.into_iter().collect(),
    );

    let db_dir = tempfile::tempdir().expect("temp dir");
    let mut server = start_server(db_dir.path()).await;
    let base = server.base.clone();
    let keys = JwtKeys::hs256(SECRET.as_bytes(), "crm", "crm-api");
    let token = |role, sub: &str| {
        keys.issue(role, sub, chrono::Duration::hours(1), Utc::now())
            .expect("token")
    };
    let (admin, agent) = (token(Role::Admin, "admin-1"), token(Role::Agent, "agent-1"));

    let client = reqwest::Client::new();
    let created = graphql(
        &client,
        &base,
        &admin,
        "mutation($input: CreateClientInput!) { createClient(input: $input) { id } }",
        json!({ "input": { "firstName": "Ada", "email": "ada@example.com" } }),
    )
    .await;
    graphql(
        &client,
        &base,
        &admin,
        "mutation($input: CreateOpportunityInput!) { createOpportunity(input: $input) { id } }",
        json!({ "input": { "clientId": created["createClient"]["id"] } }),
    )
    .await;

    let artifacts = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| node::root().join("target"), PathBuf::from)
        .join("browser-artifacts");
    let output = node::run_script(
        "run.mjs",
        [
            ("CRM_TEST_URL", OsStr::new(&base)),
            ("CRM_TEST_ADMIN_TOKEN", OsStr::new(&admin)),
            ("CRM_TEST_AGENT_TOKEN", OsStr::new(&agent)),
            ("CRM_TEST_ARTIFACTS", artifacts.as_os_str()),
            ("CHROMIUM", chromium().as_os_str()),
        ],
    )
    .await;
    let _ = server.child.kill().await;
    assert!(
        output.status.success(),
        "the browser test failed {}",
        node::printed(&output)
    );
}
