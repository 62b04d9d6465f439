//! The npm `graphql-ws` client against a real `crm serve`: starts the built
//! binary in development mode (SQLite in a temp dir, no `CRM_JWT_SECRET`),
//! reads the AGENT token it prints, and runs `node tests/browser/graphql-ws.mjs`
//! (subscribe to `leadReceived` and receive a lead sent over HTTP; the
//! unknown-field error for an AGENT naming `expiree`; 4403 for a bad token).
//!
//! Needs `node` and `npm ci --prefix tests/browser` (`.ci/run` runs it). When
//! either is missing this test fails and says which: it never skips.
use std::path::Path;

#[path = "support/crm_process.rs"]
#[expect(dead_code, reason = "this test starts a server and runs nothing else")]
mod crm_process;
use crm_process::{Crm, RunningCrm};
#[path = "support/node.rs"]
mod node;

/// `crm serve` in development mode (no `CRM_JWT_SECRET`), SQLite in
/// `db_dir`; the AGENT token it printed.
async fn start_server(db_dir: &Path) -> (RunningCrm, String) {
    let server = Crm::new()
        .database(&format!(
            "sqlite://{}?mode=rwc",
            db_dir.join("crm.sqlite").display()
        ))
        .env("CRM_SWEEP_INTERVAL_SECS", "3600")
        .serve()
        .await;
    let agent_token = server
        .printed
        .iter()
        .find_map(|line| line.strip_prefix("AGENT token: "))
        .expect("development mode prints an AGENT token")
        .trim()
        .to_owned();
    (server, agent_token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_npm_graphql_ws_client_subscribes_with_the_printed_agent_token() {
    node::check_prerequisites(
        "the graphql-ws client test",
        &["graphql-ws", "ws", "graphql"],
        Vec::new(),
    );
    let db_dir = tempfile::tempdir().expect("temp dir");
    let (mut server, agent_token) = start_server(db_dir.path()).await;

    let output = node::run_script(
        "graphql-ws.mjs",
        [
            ("CRM_TEST_URL", server.base.as_str()),
            ("CRM_TEST_AGENT_TOKEN", agent_token.as_str()),
        ],
    )
    .await;
    let _ = server.child.kill().await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("graphql-ws: all checks passed"),
        "the graphql-ws client failed {}",
        node::printed(&output)
    );
}
