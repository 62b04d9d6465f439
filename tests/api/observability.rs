//! Request logs, request ids and metrics, seen from outside: a real
//! `crm serve` process (its own metrics registry and log output).
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use crm::auth::{JwtKeys, Role};
use serde_json::{Value, json};

use crate::crm_process::{Crm, RunningCrm};
use crate::helpers::{
    AUDIENCE, ISSUER, SECRET, SUBMIT_LEAD, TestDatabase, metric_sample as sample,
};

struct Server {
    _process: RunningCrm,
    _database: TestDatabase,
    base: String,
    keys: JwtKeys,
    stderr: Arc<Mutex<Vec<String>>>,
    client: reqwest::Client,
}

impl Server {
    async fn start(log_format: &str) -> Self {
        Self::start_logging(log_format, "info").await
    }

    async fn start_logging(log_format: &str, filter: &str) -> Self {
        let database = TestDatabase::create().await;
        let process = Crm::new()
            .database(database.url())
            .env("CRM_JWT_SECRET", SECRET)
            .env("CRM_LOG_FORMAT", log_format)
            .env("RUST_LOG", filter)
            .serve_capturing_stderr()
            .await;
        Self {
            base: process.base.clone(),
            stderr: process.stderr.clone(),
            _process: process,
            _database: database,
            keys: JwtKeys::hs256(SECRET.as_bytes(), ISSUER, AUDIENCE),
            client: reqwest::Client::new(),
        }
    }

    fn token(&self, role: Role) -> String {
        self.keys
            .issue(role, "observer-1", chrono::Duration::hours(1), Utc::now())
            .expect("token")
    }

    async fn post(&self, body: Value, token: &str, request_id: Option<&str>) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.base))
            .bearer_auth(token)
            .json(&body);
        if let Some(id) = request_id {
            request = request.header("x-request-id", id);
        }
        request.send().await.expect("request sent")
    }

    /// The log lines so far, waiting (up to 5 s) for one containing `needle`.
    async fn logs_with(&self, needle: &str) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let lines = self.stderr.lock().expect("log lines").clone();
            if lines.iter().any(|l| l.contains(needle)) {
                return lines;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no log line with {needle:?}:\n{}",
                lines.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn metrics(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.base))
            .bearer_auth(self.token(Role::Admin))
            .send()
            .await
            .expect("scrape");
        assert_eq!(response.status(), 200);
        response.text().await.expect("text")
    }
}

/// What a partner may read back from `submitLead`.
const PARTNER_SUBMIT: &str =
    "mutation Submit($input: SubmitLeadInput!) { submitLead(input: $input) { lead { id } } }";

fn lead(key: &str) -> Value {
    json!({ "input": {
        "email": "nadia.tremblay@example.com",
        "phone": "514-555-0199",
        "firstName": "Nadia",
        "idempotencyKey": key,
    } })
}

#[tokio::test]
async fn each_request_logs_one_json_line_with_its_id_operation_role_status_and_duration() {
    let server = Server::start("json").await;
    let partner = server.token(Role::Partner);
    let response = server
        .post(
            json!({ "query": PARTNER_SUBMIT, "variables": lead("log-1"), "operationName": "Submit" }),
            &partner,
            Some("trace-abc-123"),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("trace-abc-123")
    );
    let lines = server.logs_with("trace-abc-123").await;
    let entries: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let mine: Vec<&Value> = entries
        .iter()
        .filter(|e| e["request_id"] == "trace-abc-123")
        .collect();
    assert_eq!(mine.len(), 1, "{lines:?}");
    let line = mine[0];
    assert_eq!(line["method"], "POST");
    assert_eq!(line["path"], "/graphql");
    assert_eq!(line["operation"], "Submit");
    assert_eq!(line["role"], "PARTNER");
    assert_eq!(line["status"], 200);
    assert!(
        line["duration_ms"].as_f64().is_some_and(|d| d >= 0.0),
        "{line}"
    );
    assert_eq!(line["level"], "INFO");

    let all = lines.join("\n");
    assert!(!all.contains(&partner), "a token was logged");
    assert!(!all.contains("eyJ"), "something like a JWT was logged");
    assert!(!all.contains("nadia.tremblay"), "an email was logged");
    assert!(
        !all.contains("555-0199") && !all.contains("5550199"),
        "a phone was logged"
    );
}

#[tokio::test]
async fn a_request_without_a_usable_id_gets_a_fresh_uuid_and_the_log_line_has_no_role_when_unauthenticated()
 {
    let server = Server::start("json").await;
    let response = server
        .post(
            json!({ "query": "{ me { role } }" }),
            "not-a-token",
            Some("bad id with spaces"),
        )
        .await;
    assert_eq!(response.status(), 401);
    let id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("x-request-id")
        .to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let lines = server.logs_with(&id).await;
    let line: Value = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["request_id"] == id.as_str())
        .expect("the request's line");
    assert_eq!(line["status"], 401);
    assert_eq!(line["role"], "-");
    assert!(!lines.join("\n").contains("bad id with spaces"));
}

#[tokio::test]
async fn text_logs_carry_no_colour_codes_when_not_on_a_terminal() {
    let server = Server::start("text").await;
    let response = server
        .post(
            json!({ "query": "query Who { me { role } }" }),
            &server.token(Role::Agent),
            Some("text-1"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let lines = server.logs_with("text-1").await;
    let line = lines.iter().find(|l| l.contains("text-1")).expect("line");
    assert!(
        line.contains("operation=Who")
            && line.contains("role=AGENT")
            && line.contains("status=200"),
        "{line}"
    );
    assert!(
        !lines.join("\n").contains('\u{1b}'),
        "ANSI escape in {lines:?}"
    );
}

#[tokio::test]
async fn replays_are_not_counted_as_accepted_leads_and_requests_are_counted_by_operation() {
    let server = Server::start("json").await;
    let agent = server.token(Role::Agent);
    for _ in 0..4 {
        let response = server
            .post(
                json!({ "query": SUBMIT_LEAD, "variables": lead("replayed-key") }),
                &agent,
                None,
            )
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("JSON");
        assert!(body.get("errors").is_none(), "{body}");
    }
    let metrics = server.metrics().await;
    let accepted: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("crm_leads_accepted_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(accepted, 1.0, "1 lead and 3 replays:\n{metrics}");
    assert_eq!(
        sample(
            &metrics,
            r#"crm_http_requests_total{operation="Submit",status="200"}"#
        ),
        Some(4.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            r#"crm_http_request_duration_seconds_count{operation="Submit"}"#
        ),
        Some(4.0)
    );
    assert!(sample(&metrics, r#"crm_db_pool_connections{state="idle"}"#).is_some());
    assert!(sample(&metrics, r#"crm_db_pool_connections{state="in_use"}"#).is_some());
    for family in [
        "crm_opportunities_expired_total",
        "crm_expiry_sweep_duration_seconds",
    ] {
        assert!(metrics.contains(&format!("# TYPE {family} ")), "{family}");
    }
}

#[tokio::test]
async fn metrics_are_in_a_valid_prometheus_exposition_format() {
    let server = Server::start("json").await;
    server
        .post(
            json!({ "query": "query Who { me { role } }" }),
            &server.token(Role::Agent),
            None,
        )
        .await;
    let metrics = server.metrics().await;
    check_exposition(&metrics);
    promtool_check(&metrics).await;
}

/// A strict reading of the text format: every sample belongs to a family
/// announced by `# HELP` and `# TYPE`, names and labels are well formed,
/// values are numbers, counters end in `_total`, no series twice.
fn check_exposition(text: &str) {
    use std::collections::{HashMap, HashSet};
    let valid_name = |n: &str| {
        let mut chars = n.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps = HashSet::new();
    let mut seen = HashSet::new();
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP has text");
            assert!(valid_name(name) && !help.is_empty(), "{line}");
            assert!(helps.insert(name.to_owned()), "HELP twice: {line}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter without _total: {name}");
            }
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "{line}"
            );
        } else {
            assert!(
                !line.starts_with('#') && !line.is_empty(),
                "stray line: {line:?}"
            );
            let (series, value) = line.rsplit_once(' ').expect("sample has a value");
            assert!(
                value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
                "{line}"
            );
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, Some(labels.strip_suffix('}').expect("closing }"))),
                None => (series, None),
            };
            assert!(valid_name(name), "{line}");
            if let Some(labels) = labels {
                for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                    let (label, value) = pair.split_once("=\"").expect("label=\"value\"");
                    assert!(valid_name(label) && !label.starts_with("__"), "{line}");
                    assert!(!value.trim_end_matches('"').contains('\n'), "{line}");
                }
            }
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    let base = name.strip_suffix(suffix)?;
                    (types.get(base).map(String::as_str) == Some("histogram")).then_some(base)
                })
                .unwrap_or(name);
            assert!(types.contains_key(family), "sample before its TYPE: {line}");
            assert!(helps.contains(family), "sample without HELP: {line}");
            assert!(seen.insert(series.to_owned()), "series twice: {line}");
        }
    }
}

/// `promtool check metrics`, when promtool is installed (`.ci/run` installs
/// it and sets CRM_REQUIRE_PROMTOOL=1, so CI cannot skip it).
async fn promtool_check(metrics: &str) {
    use tokio::io::AsyncWriteExt;
    let spawned = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            assert!(
                std::env::var_os("CRM_REQUIRE_PROMTOOL").is_none(),
                "promtool is required (CRM_REQUIRE_PROMTOOL) but cannot run: {error}"
            );
            eprintln!("promtool not installed: only the built-in exposition check ran");
            return;
        }
    };
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(metrics.as_bytes()).await.expect("write");
    drop(stdin);
    let out = child.wait_with_output().await.expect("promtool ran");
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n{metrics}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Law 25: nothing that identifies a person reaches the logs, at any level,
/// on success or on failure.
#[tokio::test]
async fn emails_phones_and_names_never_reach_the_log_even_at_trace_level() {
    let server = Server::start_logging("json", "trace").await;
    let token = server.token(Role::Agent);
    let submit = "mutation($i: SubmitLeadInput!) { submitLead(input: $i) { lead { id } } }";
    for input in [
        json!({ "firstName": "Zoltan", "lastName": "Quaxley", "email": "Zoltan.Quaxley@Example.COM",
                "phone": "(514) 555-0142", "message": "about my trade-in" }),
        // Refused ones too: their error messages must not quote the values.
        json!({ "firstName": "Zoltan", "email": "zoltan.quaxley@example", "phone": "555-0142" }),
        json!({ "lastName": "Quaxley\u{202E}", "email": "zoltan.quaxley@example.com" }),
    ] {
        server
            .post(
                json!({ "query": submit, "variables": { "i": input } }),
                &token,
                Some("privacy-probe"),
            )
            .await;
    }
    server.logs_with("privacy-probe").await;
    // Let the last request's line and any late ones arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = server.stderr.lock().expect("log lines").clone();
    assert!(lines.len() > 3, "{lines:?}");
    for value in [
        "Zoltan",
        "Quaxley",
        "zoltan.quaxley",
        "Zoltan.Quaxley",
        "5550142",
        "555-0142",
        "555 0142",
        "trade-in",
    ] {
        let leaked: Vec<&String> = lines.iter().filter(|l| l.contains(value)).collect();
        assert!(leaked.is_empty(), "{value:?} in the log: {leaked:#?}");
    }
}
