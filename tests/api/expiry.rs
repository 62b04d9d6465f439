//! The sweep: same rule as `submitLead`, sticky in the database, on demand.
use chrono::Duration;
use crm::auth::Role;
use crm::domain::expiry::ExpiryPolicy;
use crm::domain::status::OpportunityStatus;
use crm::store;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::crm_process::Crm;
use crate::helpers::{TestApp, error_message, spawn_app, submit_lead, t0};

/// One opportunity per status, all created at `t0`; returns (status, id).
async fn one_of_each_status(app: &TestApp) -> Vec<(OpportunityStatus, String)> {
    let mut out = Vec::new();
    for (i, status) in OpportunityStatus::ALL.into_iter().enumerate() {
        let payload = submit_lead(app, json!({ "email": format!("s{i}@example.com") })).await;
        let id = payload["opportunity"]["id"].as_str().unwrap().to_owned();
        crate::helpers::set_status(app, &id, status.as_str(), Role::Agent).await;
        out.push((status, id));
    }
    out
}

#[tokio::test]
async fn the_sweep_sql_and_the_domain_rule_agree_at_the_boundary_for_every_status() {
    let app = spawn_app().await;
    let opportunities = one_of_each_status(&app).await;
    let policy = ExpiryPolicy::default();
    for at in [
        t0() + Duration::days(56) - Duration::seconds(1),
        t0() + Duration::days(56),
    ] {
        let (_, due) = store::expiry::dry_run(&app.db, &policy, at, 100)
            .await
            .unwrap();
        for (status, id) in &opportunities {
            let sql_says = due.iter().any(|d| d.to_string() == *id);
            let rule_says = policy.is_due(t0(), *status, at);
            assert_eq!(sql_says, rule_says, "{status} at {at}");
        }
    }
}

#[tokio::test]
async fn the_sweep_flags_exactly_the_due_opportunities_and_audits_each() {
    let app = spawn_app().await;
    let opportunities = one_of_each_status(&app).await;
    let policy = ExpiryPolicy::default();
    let early = crm::jobs::expiry_sweep::sweep_once(
        &app.db,
        &policy,
        t0() + Duration::days(56) - Duration::seconds(1),
    )
    .await
    .unwrap();
    assert_eq!(early.expired, 0);
    let report = crm::jobs::expiry_sweep::sweep_once(&app.db, &policy, t0() + Duration::days(56))
        .await
        .unwrap();
    assert_eq!(report.expired, 3);
    assert_eq!(app.count("opportunity_expiry_event").await, 3);
    let events = app
        .db
        .query_all_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT window_days, protected_statuses, applied_by FROM opportunity_expiry_event",
        ))
        .await
        .unwrap();
    for event in events {
        assert_eq!(event.try_get::<i64>("", "window_days").unwrap(), 56);
        assert_eq!(
            event.try_get::<String>("", "protected_statuses").unwrap(),
            "PRIS_EN_CHARGE,VENDU_NON_LIVRE,SUIVI_LONG_TERME"
        );
        assert_eq!(event.try_get::<String>("", "applied_by").unwrap(), "SWEEP");
    }
    for (status, id) in &opportunities {
        let data = app.query_opportunity(id, "expiree", Role::Admin).await;
        assert_eq!(
            data["opportunity"]["expiree"],
            !policy.is_protected(*status),
            "{status}"
        );
    }
    // A second sweep finds nothing more: expired rows are never re-flagged.
    let again = crm::jobs::expiry_sweep::sweep_once(&app.db, &policy, t0() + Duration::days(99))
        .await
        .unwrap();
    assert_eq!(again.expired, 0);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("crm_opportunities_expired_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("crm_expiry_sweep_duration_seconds"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_database_refuses_to_clear_expiree() {
    let app = spawn_app().await;
    let payload = submit_lead(&app, json!({ "email": "sticky@example.com" })).await;
    let id = payload["opportunity"]["id"].as_str().unwrap().to_owned();
    let policy = ExpiryPolicy::default();
    crm::jobs::expiry_sweep::sweep_once(&app.db, &policy, t0() + Duration::days(60))
        .await
        .unwrap();
    let backend = app.db.get_database_backend();
    let uuid: uuid::Uuid = id.parse().unwrap();
    for sql in [
        "UPDATE opportunity SET expiree = false, expired_at = NULL WHERE id = $1",
        "UPDATE opportunity SET expiree = false WHERE id = $1",
        "UPDATE opportunity SET expired_at = NULL WHERE id = $1",
        "UPDATE opportunity SET expired_at = created_at WHERE id = $1",
    ] {
        let result = app
            .db
            .execute_raw(Statement::from_sql_and_values(backend, sql, [uuid.into()]))
            .await;
        assert!(result.is_err(), "{sql} was accepted");
    }
    // Other columns can still change.
    app.db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE opportunity SET status = 'PERDU' WHERE id = $1",
            [uuid.into()],
        ))
        .await
        .unwrap();
    let data = app
        .query_opportunity(&id, "expiree status", Role::Admin)
        .await;
    assert_eq!(
        data["opportunity"],
        json!({ "expiree": true, "status": "PERDU" })
    );
}

#[tokio::test]
async fn crm_expire_dry_run_lists_and_changes_nothing_then_expire_flags() {
    let app = spawn_app().await;
    let payload = submit_lead(&app, json!({ "email": "cli@example.com" })).await;
    let id = payload["opportunity"]["id"].as_str().unwrap().to_owned();
    let at = (t0() + Duration::days(56)).to_rfc3339();
    let run = |args: &[&str]| Crm::new().args(args).database(app.database.url()).stdout();
    let dry = run(&["expire", "--dry-run", "--now", &at]).await;
    assert!(dry.starts_with("would expire 1 opportunities"), "{dry}");
    assert!(dry.contains(&id), "{dry}");
    assert_eq!(app.count("opportunity_expiry_event").await, 0);
    let early = run(&[
        "expire",
        "--dry-run",
        "--now",
        &(t0() + Duration::days(55)).to_rfc3339(),
    ])
    .await;
    assert!(early.starts_with("would expire 0 opportunities"), "{early}");
    let done = run(&["expire", "--now", &at]).await;
    assert!(done.starts_with("expired 1 opportunities"), "{done}");
    assert_eq!(app.count("opportunity_expiry_event").await, 1);
}

#[tokio::test]
async fn crm_serve_sweeps_at_start() {
    let app = spawn_app().await;
    submit_lead(&app, json!({ "email": "start@example.com" })).await;
    app.clock.set(t0() + Duration::days(57));
    let _sweeping =
        crate::helpers::spawn_app_with(app.database.clone(), app.clock.clone(), Some(300)).await;
    // The start-up sweep runs in the background: wait for it, bounded.
    wait_for_expiry_events(&app, 1).await;
    assert_eq!(app.count("opportunity_expiry_event").await, 1);
}

/// PostgreSQL only: instances share the database, so a second sweeper must
/// skip while one holds the sweep lock. (SQLite is one process.)
#[tokio::test]
async fn a_sweeper_skips_while_another_instance_holds_the_sweep_lock() {
    use sea_orm::TransactionTrait;
    let app = spawn_app().await;
    if !app.database.is_postgres() {
        return;
    }
    submit_lead(&app, json!({ "email": "lock@example.com" })).await;
    let policy = ExpiryPolicy::default();
    let holder = app.db.begin().await.unwrap();
    holder
        .execute_raw(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "SELECT pg_advisory_xact_lock($1)",
            [store::expiry::SWEEP_LOCK_KEY.into()],
        ))
        .await
        .unwrap();
    let skipped = store::expiry::sweep_once(&app.db, &policy, t0() + Duration::days(60))
        .await
        .unwrap();
    assert!(!skipped.ran);
    assert_eq!(skipped.expired, 0);
    holder.rollback().await.unwrap();
    let swept = store::expiry::sweep_once(&app.db, &policy, t0() + Duration::days(60))
        .await
        .unwrap();
    assert!(swept.ran);
    assert_eq!(swept.expired, 1);
}

/// PostgreSQL only: the database goes away and comes back.
#[tokio::test]
async fn a_database_outage_fails_fast_and_the_server_recovers() {
    let app = spawn_app().await;
    let Some((admin_url, name)) = app.database.postgres_admin() else {
        return;
    };
    let admin = sea_orm::Database::connect(admin_url).await.unwrap();
    admin
        .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        app.get("/health/ready").await.status(),
        reqwest::StatusCode::SERVICE_UNAVAILABLE
    );
    let agent = format!("Bearer {}", app.token(Role::Agent));
    let (status, body) = app
        .post_raw(
            json!({ "query": "{ opportunities { totalCount } }" }),
            Some(&agent),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(crate::helpers::error_code(&body), "UNAVAILABLE", "{body}");
    assert!(error_message(&body).contains("unavailable"), "{body}");
    assert!(
        !body.to_string().contains("does not exist"),
        "driver text leaked: {body}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let fresh = crm::store::connect(app.database.url()).await.unwrap();
    crm::store::migrate(&fresh).await.unwrap();
    fresh.close().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while app.get("/health/ready").await.status() != reqwest::StatusCode::OK {
        assert!(std::time::Instant::now() < deadline, "did not recover");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let data = app
        .query_data("{ opportunities { totalCount } }", Role::Agent)
        .await;
    assert_eq!(data["opportunities"]["totalCount"], 0);
}

#[tokio::test]
async fn metrics_need_an_admin_token() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/metrics").await.status(),
        reqwest::StatusCode::UNAUTHORIZED
    );
    let agent = app.get_as("/metrics", Role::Agent).await;
    assert_eq!(agent.status(), reqwest::StatusCode::FORBIDDEN);
}

/// Waits, bounded, until `n` expiry events exist.
async fn wait_for_expiry_events(app: &TestApp, n: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while app.count("opportunity_expiry_event").await < n {
        assert!(std::time::Instant::now() < deadline, "sweep did not run");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_background_sweep_runs_again_every_interval() {
    let app = spawn_app().await;
    let sweeping =
        crate::helpers::spawn_app_with(app.database.clone(), app.clock.clone(), Some(1)).await;
    submit_lead(&sweeping, json!({ "email": "tick1@example.com" })).await;
    app.clock.set(t0() + Duration::days(57));
    wait_for_expiry_events(&app, 1).await;
    // Later leads become due later: a later tick flags them too.
    submit_lead(&sweeping, json!({ "email": "tick2@example.com" })).await;
    app.clock.set(t0() + Duration::days(57 + 57));
    wait_for_expiry_events(&app, 2).await;
}
