//! `submitLead` sends the statements the SQL needs and no more (issue 10):
//! counted by a real `crm serve` process (its own `crm_db_statements_total`,
//! fed by the pool's statement callback), for a new client, a returning
//! client with a live opportunity, and one whose opportunity expires now.
//!
//! On PostgreSQL every write of the lead is one statement (a batch of
//! data-modifying CTEs); on SQLite, in process, the writes run one by one.
use std::sync::Arc;

use crm::clock::ManualClock;
use serde_json::json;

use crate::crm_n_plus_one::statements;
use crate::helpers::{ServerProcess, TestApp, TestDatabase, spawn_app_on, submit_lead, t0};

/// Statements of the cheapest of five submissions made by `lead(i)` (the
/// process reloads revoked subjects in the background; the least of five
/// leaves that statement out).
async fn least_of_five(server: &TestApp, lead: impl Fn(usize) -> serde_json::Value) -> u64 {
    let mut least = u64::MAX;
    for i in 0..5 {
        let before = statements(server).await;
        let answer = submit_lead(server, lead(i)).await;
        assert!(answer["lead"]["id"].is_string(), "{answer}");
        least = least.min(statements(server).await - before);
    }
    least
}

#[tokio::test]
async fn submit_lead_sends_the_statements_the_sql_needs() {
    let database = Arc::new(TestDatabase::create().await);
    let server = ServerProcess::start(database.clone()).await;
    // Opportunities opened at t0, months ago, after the process's first
    // sweep: due now, and flagged by the lead that finds them.
    let past = spawn_app_on(database.clone(), ManualClock::new(t0())).await;
    for i in 0..5 {
        submit_lead(&past, json!({ "email": format!("old{i}@example.com") })).await;
    }
    let app = &server.app;
    // Warm up (prepared statements), and a client with a live opportunity.
    submit_lead(app, json!({ "email": "warm@example.com" })).await;
    submit_lead(app, json!({ "email": "live@example.com" })).await;

    let new = least_of_five(app, |i| json!({ "email": format!("new{i}@example.com") })).await;
    let live = least_of_five(app, |_| json!({ "email": "live@example.com" })).await;
    let expired = least_of_five(app, |i| json!({ "email": format!("old{i}@example.com") })).await;
    eprintln!("statements per submitLead: new {new}, returning {live}, expired {expired}");

    let expected = if database.is_postgres() {
        // lock, lookup, writes | lock, lookup, live opportunities, writes
        (3, 4, 4)
    } else {
        // lookup, client, contact, opportunity, status, lead
        // lookup, opportunities, touch, lead
        // lookup, opportunities, flag, audit, opportunity, status, lead
        (6, 4, 7)
    };
    assert_eq!((new, live, expired), expected);
}
