//! The `crm` binary itself: development mode, default database, tokens.
use crm::auth::{JwtKeys, Role};
use serde_json::{Value, json};

use crate::crm_process::Crm;
use crate::helpers::{AUDIENCE, ISSUER, SECRET};

#[tokio::test]
async fn crm_serve_without_a_secret_creates_crm_sqlite_and_prints_working_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let server = Crm::new()
        .args(["--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .serve()
        .await;
    let printed = |prefix: &str| {
        server
            .printed
            .iter()
            .find_map(|line| line.strip_prefix(prefix))
            .map(str::to_owned)
    };
    let (admin, agent, partner) = (
        printed("ADMIN token: "),
        printed("AGENT token: "),
        printed("PARTNER token: "),
    );
    let base = printed("GraphiQL: ").map(|url| url.trim_end_matches("/graphiql").to_owned());
    let base = base.expect("address printed");
    assert!(dir.path().join("crm.sqlite").exists());
    let http = reqwest::Client::new();
    for (token, role) in [(admin, "ADMIN"), (agent, "AGENT"), (partner, "PARTNER")] {
        let body: Value = http
            .post(format!("{base}/graphql"))
            .bearer_auth(token.expect("token printed"))
            .json(&json!({ "query": "{ me { role } }" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["data"]["me"]["role"], role, "{body}");
    }
    let graphiql = http.get(format!("{base}/graphiql")).send().await.unwrap();
    assert!(graphiql.status().is_success());
}

#[tokio::test]
async fn crm_token_prints_the_token_alone_and_it_verifies() {
    let out = Crm::new()
        .args([
            "token",
            "--role",
            "partner",
            "--sub",
            "portail-auto",
            "--ttl",
            "30m",
        ])
        .env("CRM_JWT_SECRET", SECRET)
        .output()
        .await;
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    let keys = JwtKeys::hs256(SECRET.as_bytes(), ISSUER, AUDIENCE);
    let principal = keys.verify(stdout.trim()).unwrap();
    assert_eq!(
        (principal.sub.as_str(), principal.role),
        ("portail-auto", Role::Partner)
    );
}

#[tokio::test]
async fn crm_token_refuses_a_missing_or_short_secret() {
    for secret in [None, Some("short")] {
        let mut command = Crm::new().args(["token", "--role", "ADMIN", "--sub", "x"]);
        if let Some(secret) = secret {
            command = command.env("CRM_JWT_SECRET", secret);
        }
        let out = command.output().await;
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
        assert!(String::from_utf8_lossy(&out.stderr).contains("CRM_JWT_SECRET"));
    }
}

#[tokio::test]
async fn crm_migrate_prepares_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = Crm::new()
        .args(["migrate"])
        .current_dir(dir.path())
        .output()
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("crm.sqlite").exists());
    // Idempotent.
    let again = Crm::new()
        .args(["migrate"])
        .current_dir(dir.path())
        .output()
        .await;
    assert!(again.status.success());
}

/// `crm <command> --help`: the long flags it lists.
async fn flags_of(command: &str) -> Vec<String> {
    let out = Crm::new().args([command, "--help"]).output().await;
    assert!(out.status.success(), "crm {command} --help failed");
    let help = String::from_utf8(out.stdout).unwrap();
    // Option lines: "  -h, --help  ..." or "      --bind <BIND>  ...".
    let mut flags: Vec<String> = help
        .lines()
        .filter(|line| line.trim_start().starts_with('-'))
        .filter_map(|line| line.split_whitespace().find(|w| w.starts_with("--")))
        .map(|w| w.trim_end_matches(',').to_owned())
        .collect();
    flags.sort();
    flags.dedup();
    flags
}

#[tokio::test]
async fn each_subcommands_help_lists_only_its_own_flags() {
    let common = ["--help", "--log-format"];
    let expect = |own: &[&str]| {
        let mut flags: Vec<String> = own.iter().chain(&common).map(|s| s.to_string()).collect();
        flags.sort();
        flags
    };
    assert_eq!(
        flags_of("serve").await,
        expect(&[
            "--bind",
            "--cors-origins",
            "--database-url",
            "--expiry-days",
            "--jwt-audience",
            "--jwt-issuer",
            "--jwt-secret",
            "--loader-delay-ms",
            "--partner-rate-per-min",
            "--sweep-interval-secs",
            "--ws-coalesce-ms",
            "--ws-init-timeout-ms",
            "--ws-ping-interval-ms",
        ])
    );
    assert_eq!(flags_of("migrate").await, expect(&["--database-url"]));
    assert_eq!(
        flags_of("expire").await,
        expect(&["--database-url", "--dry-run", "--expiry-days", "--now"])
    );
    assert_eq!(
        flags_of("token").await,
        expect(&[
            "--jwt-audience",
            "--jwt-issuer",
            "--jwt-secret",
            "--role",
            "--sub",
            "--ttl",
        ])
    );
    assert_eq!(flags_of("schema").await, expect(&["--role"]));
}
