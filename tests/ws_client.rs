//! The npm `graphql-ws` client against a real `crm serve`: starts the built
//! binary in development mode (SQLite in a temp dir, no `CRM_JWT_SECRET`),
//! reads the AGENT token it prints, and runs `node tests/browser/graphql-ws.mjs`
//! (subscribe to `leadReceived` and receive a lead sent over HTTP; the
//! unknown-field error for an AGENT naming `expiree`; 4403 for a bad token).
//!
//! Needs `node` and `npm ci --prefix tests/browser` (`.ci/run` runs it). When
//! either is missing this test fails and says which: it never skips.
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

#[path = "support/crm_process.rs"]
#[expect(dead_code, reason = "this test starts a server and runs nothing else")]
mod crm_process;
use crm_process::{Crm, RunningCrm};

fn check_prerequisites(root: &Path) {
    let mut missing = Vec::new();
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        missing.push("node is not on PATH (install Node.js 18 or later)".to_owned());
    }
    for module in ["graphql-ws", "ws", "graphql"] {
        let manifest = root.join(format!("tests/browser/node_modules/{module}/package.json"));
        if !manifest.exists() {
            missing.push(format!(
                "the npm module `{module}` is missing: run `npm ci --prefix tests/browser`"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "the graphql-ws client test cannot run:\n  - {}\n(.ci/run installs these)",
        missing.join("\n  - ")
    );
}

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
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    check_prerequisites(&root);
    let db_dir = tempfile::tempdir().expect("temp dir");
    let (mut server, agent_token) = start_server(db_dir.path()).await;

    let run = Command::new("node")
        .arg(root.join("tests/browser/graphql-ws.mjs"))
        .current_dir(root.join("tests/browser"))
        .env("CRM_TEST_URL", &server.base)
        .env("CRM_TEST_AGENT_TOKEN", &agent_token)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the graphql-ws client finishes within 90 s")
        .expect("node runs");
    let _ = server.child.kill().await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("graphql-ws: all checks passed"),
        "the graphql-ws client failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
