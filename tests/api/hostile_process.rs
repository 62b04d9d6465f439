//! Hostile requests against a real `crm serve` process: each refused in
//! under 100 ms of the server's CPU, memory back within 50 MB of idle; a
//! `kill -9` mid-load loses no acknowledged lead; SIGTERM stops within grace.
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm::auth::Role;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::helpers::{ServerProcess, TestApp, TestDatabase};
use crate::hostile::{aliases_through_fragments, fan_out, fragment_chain};

/// The server's CPU time (user + system) so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the command name, which sits in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat format")
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let per_second: u64 = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100);
    Duration::from_millis(ticks * 1000 / per_second)
}

/// Resident memory in MiB.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kib / 1024
}

/// The hostile suite: (what, query, variables).
fn hostile_documents(opportunity: &Value) -> Vec<(&'static str, String, Value)> {
    let id = json!({ "id": opportunity });
    let directive_flood = format!(
        "{{ {} }}",
        (0..400)
            .map(|i| format!("f{i}: me @skip(if: false) @include(if: true) @skip(if: false) @include(if: true) {{ sub }} "))
            .collect::<String>()
    );
    let deep_literal = format!(
        "{{ leads(after: {}\"x\"{}) {{ totalCount }} }}",
        "[".repeat(200),
        "]".repeat(200)
    );
    let deep_introspection = format!(
        "{{ __schema {{ types {{ {}name{} }} }} }}",
        "fields { type { ".repeat(6),
        " } }".repeat(6)
    );
    let nested_variable = (0..120).fold(json!("x"), |v, _| json!([v]));
    vec![
        ("list fan-out", fan_out(2, "(first: 100)"), id.clone()),
        ("deeper fan-out", fan_out(4, ""), id),
        ("fragment chain 4^12", fragment_chain(12, 4), json!({})),
        ("fragment chain 8^30", fragment_chain(30, 8), json!({})),
        (
            "aliases through fragments",
            aliases_through_fragments(),
            json!({}),
        ),
        ("directive flood", directive_flood, json!({})),
        ("deep literal", deep_literal, json!({})),
        ("deep introspection", deep_introspection, json!({})),
        (
            "huge variable",
            "mutation($input: SubmitLeadInput!) { submitLead(input: $input) { lead { id } } }"
                .into(),
            json!({ "input": { "email": "big@example.com", "message": "m".repeat(240_000) } }),
        ),
        (
            "deeply nested variable",
            "query($x: [String]) { me { sub } }".into(),
            json!({ "x": nested_variable }),
        ),
    ]
}

async fn send(app: &TestApp, query: &str, variables: &Value, role: Role) -> Value {
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(app.token(role))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("sent");
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn every_hostile_document_is_refused_in_under_100_ms_of_cpu_and_memory_stays_near_idle() {
    let database = Arc::new(TestDatabase::create().await);
    let server = ServerProcess::start(database).await;
    let app = &server.app;
    let pid = server.child.id().expect("running");
    let lead = send(
        app,
        crate::helpers::SUBMIT_LEAD,
        &json!({ "input": { "email": "target@example.com" } }),
        Role::Agent,
    )
    .await;
    let opportunity = lead["data"]["submitLead"]["opportunity"]["id"].clone();
    // Warm up: the first requests build the schema's budget and pools.
    for _ in 0..5 {
        send(app, "{ me { sub } }", &json!({}), Role::Agent).await;
    }
    let idle = rss_mib(pid);
    let documents = hostile_documents(&opportunity);
    let mut worst = Duration::ZERO;
    for round in 0..3 {
        for (what, query, variables) in &documents {
            for role in [Role::Partner, Role::Agent, Role::Admin] {
                let before = cpu_time(pid);
                let body = send(app, query, variables, role).await;
                let spent = cpu_time(pid).saturating_sub(before);
                assert!(
                    body.get("data").is_none_or(|d| d.is_null()),
                    "{what} was not refused: {body}"
                );
                assert!(
                    body["errors"][0]["extensions"]["code"].is_string(),
                    "{what}: {body}"
                );
                assert!(
                    spent < Duration::from_millis(100),
                    "{what} as {role:?} took {spent:?} of CPU (round {round})"
                );
                worst = worst.max(spent);
            }
        }
    }
    let after = rss_mib(pid);
    eprintln!("hostile suite: worst refusal {worst:?} CPU; RSS idle {idle} MiB, after {after} MiB");
    assert!(
        after <= idle + 50,
        "RSS grew from {idle} MiB to {after} MiB"
    );
    // And the server still answers at once.
    let body = send(app, "{ me { sub } }", &json!({}), Role::Agent).await;
    assert_eq!(body["data"]["me"]["sub"], "agent-1");
    assert_eq!(
        app.count("lead").await,
        1,
        "a refused mutation stored something"
    );
}

#[tokio::test]
async fn kill_9_during_a_lead_load_loses_no_acknowledged_lead_and_the_restart_serves_at_once() {
    let database = Arc::new(TestDatabase::create().await);
    let mut server = ServerProcess::start(database.clone()).await;
    let address = server.app.address.clone();
    let token = server.app.token(Role::Agent);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..8 {
        let (address, token, stop) = (address.clone(), token.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut acknowledged = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                // A returning client every other lead: merges and new ones.
                let email = format!("crash{worker}-{}@example.com", i / 2);
                let sent = client
                    .post(format!("{address}/graphql"))
                    .bearer_auth(&token)
                    .json(&json!({ "query": crate::helpers::SUBMIT_LEAD,
                                   "variables": { "input": { "email": email } } }))
                    .send()
                    .await;
                let Ok(response) = sent else { break };
                let Ok(body) = response.json::<Value>().await else {
                    break;
                };
                if let Some(id) = body["data"]["submitLead"]["lead"]["id"].as_str() {
                    acknowledged.push(id.to_owned());
                }
            }
            acknowledged
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.app.count("lead").await < 40 {
        assert!(Instant::now() < deadline, "the load did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.signal("KILL");
    server.child.wait().await.expect("killed");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for worker in workers {
        acknowledged.extend(worker.await.unwrap());
    }
    // Leads committed just before the kill may not have had their answer
    // sent: those are not acknowledged, and need not be there.
    assert!(acknowledged.len() >= 8, "{}", acknowledged.len());

    let restarted = ServerProcess::start(database).await;
    let app = &restarted.app;
    for id in &acknowledged {
        let data = app
            .data(
                "query($id: ID!) { lead(id: $id) { id opportunity { id } } }",
                json!({ "id": id }),
                Role::Agent,
            )
            .await;
        assert_eq!(data["lead"]["id"], *id, "acknowledged lead {id} lost");
    }
    // Nothing half-written: every lead has its opportunity and client, every
    // opportunity its first lead.
    for (what, sql) in [
        (
            "lead without opportunity",
            "SELECT COUNT(*) AS n FROM lead l LEFT JOIN opportunity o ON o.id = l.opportunity_id WHERE o.id IS NULL",
        ),
        (
            "lead without client",
            "SELECT COUNT(*) AS n FROM lead l LEFT JOIN client c ON c.id = l.client_id WHERE c.id IS NULL",
        ),
        (
            "opportunity without lead",
            "SELECT COUNT(*) AS n FROM opportunity o WHERE NOT EXISTS (SELECT 1 FROM lead l WHERE l.opportunity_id = o.id)",
        ),
    ] {
        let row = sea_orm::ConnectionTrait::query_one_raw(
            &app.db,
            sea_orm::Statement::from_string(app.db.get_database_backend(), sql),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(row.try_get::<i64>("", "n").unwrap(), 0, "{what}");
    }
    // The restarted server serves at once: the first request, no retry.
    assert_eq!(
        app.get("/health/ready").await.status(),
        reqwest::StatusCode::OK
    );
    let next = crate::helpers::submit_lead(app, json!({ "email": "after@example.com" })).await;
    assert_eq!(next["outcome"], "NEW_OPPORTUNITY");
}

#[tokio::test]
async fn sigterm_stops_within_the_grace_even_with_a_client_sending_its_body_slowly() {
    let database = Arc::new(TestDatabase::create().await);
    let mut server = ServerProcess::start(database).await;
    let addr = server.app.address.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{",
        server.app.token(Role::Partner)
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    server.signal("TERM");
    // A byte now and then does not keep it alive.
    let trickle = tokio::spawn(async move {
        for _ in 0..60 {
            if slow.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let status = tokio::time::timeout(Duration::from_secs(25), server.child.wait())
        .await
        .expect("stopped within the grace")
        .unwrap();
    trickle.abort();
    assert!(status.success(), "{status}");
    let took = started.elapsed();
    assert!(
        took < crm::startup::BODY_READ_DEADLINE + Duration::from_secs(5),
        "{took:?}"
    );
}
