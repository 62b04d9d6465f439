//! The npm `graphql-ws` client against a real `crm serve`: starts the built
//! binary in development mode (SQLite in a temp dir, no `CRM_JWT_SECRET`),
//! reads the AGENT token it prints, and runs `node tests/browser/graphql-ws.mjs`
//! (subscribe to `leadReceived` and receive a lead sent over HTTP; the
//! unknown-field error for an AGENT naming `expiree`; 4403 for a bad token).
//!
//! Needs `node` and `npm ci --prefix tests/browser` (`.ci/run` runs it). When
//! either is missing this test fails and says which: it never skips.
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

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

/// What `crm serve` printed at start in development mode.
struct Printed {
    base: String,
    agent_token: String,
}

/// `crm serve` in development mode on a free loopback port.
async fn start_server(db_dir: &Path) -> (Child, Printed) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crm"))
        .arg("serve")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", db_dir.join("crm.sqlite").display()),
        )
        .env_remove("CRM_JWT_SECRET")
        .env("CRM_BIND", "127.0.0.1:0")
        .env("CRM_SWEEP_INTERVAL_SECS", "3600")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("crm serve starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let printed = tokio::time::timeout(Duration::from_secs(30), async {
        let mut agent_token = None;
        while let Some(line) = lines.next_line().await.expect("read crm serve output") {
            if let Some(token) = line.strip_prefix("AGENT token: ") {
                agent_token = Some(token.trim().to_owned());
            }
            if let Some(url) = line.strip_prefix("GraphiQL: ") {
                return Printed {
                    base: url.trim_end_matches("/graphiql").to_owned(),
                    agent_token: agent_token.expect("an AGENT token printed before the address"),
                };
            }
        }
        panic!("crm serve exited without printing its address");
    })
    .await
    .expect("crm serve prints its address within 30 s");
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, printed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_npm_graphql_ws_client_subscribes_with_the_printed_agent_token() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    check_prerequisites(&root);
    let db_dir = tempfile::tempdir().expect("temp dir");
    let (mut server, printed) = start_server(db_dir.path()).await;

    let run = Command::new("node")
        .arg(root.join("tests/browser/graphql-ws.mjs"))
        .current_dir(root.join("tests/browser"))
        .env("CRM_TEST_URL", &printed.base)
        .env("CRM_TEST_AGENT_TOKEN", &printed.agent_token)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the graphql-ws client finishes within 90 s")
        .expect("node runs");
    let _ = server.kill().await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("graphql-ws: all checks passed"),
        "the graphql-ws client failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
