//! Partner controls: the rate limit on lead intake and token revocation.
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    PARTNER_SUBMIT_LEAD, ServerProcess, TestApp, TestDatabase, adf_fixture, error_code,
    settings_for, spawn_app, spawn_app_with_settings, t0,
};
use crm::auth::Role;
use crm::clock::ManualClock;
use sea_orm::{ConnectionTrait, Statement};

/// The PostgreSQL limiter counts per database minute: start a test that
/// must not straddle two minutes early enough in one.
async fn early_in_a_minute() {
    let second = Utc::now().timestamp().rem_euclid(60);
    if second > 45 {
        tokio::time::sleep(Duration::from_secs(61 - u64::try_from(second).unwrap())).await;
    }
}

/// A server under a limit of `per_minute`, early in a minute, when the
/// tests run on PostgreSQL (`None` on SQLite).
async fn limited_app_on_postgres(per_minute: u32) -> Option<TestApp> {
    let app = limited_app(per_minute).await;
    if !app.database.is_postgres() {
        return None;
    }
    early_in_a_minute().await;
    Some(app)
}

/// Two `crm serve` processes on one PostgreSQL database under a limit of
/// `per_minute`, early in a minute; `None` on SQLite, which is one
/// process's database (its limiter is in memory).
async fn two_processes(per_minute: &str) -> Option<(ServerProcess, ServerProcess)> {
    let database = Arc::new(TestDatabase::create().await);
    if !database.is_postgres() {
        return None;
    }
    early_in_a_minute().await;
    let env = [("CRM_PARTNER_RATE_PER_MIN", per_minute)];
    let first = ServerProcess::start_with(database.clone(), &env).await;
    let second = ServerProcess::start_with(database, &env).await;
    Some((first, second))
}

async fn limited_app(per_minute: u32) -> TestApp {
    let database = Arc::new(TestDatabase::create().await);
    let mut settings = settings_for(database.url());
    settings.partner_rate_per_min = per_minute;
    spawn_app_with_settings(database, ManualClock::new(t0()), settings, false).await
}

fn adf_for(email: &str) -> String {
    adf_fixture("minimal.xml").replace(
        "<phone>(514) 555-0101</phone>",
        &format!("<email>{email}</email>"),
    )
}

async fn submit_as(app: &TestApp, token: &str, email: &str) -> Value {
    app.post_as(
        PARTNER_SUBMIT_LEAD,
        json!({ "input": { "email": email } }),
        token,
    )
    .await
}

#[tokio::test]
async fn over_the_limit_a_partner_gets_429_on_adf_and_rate_limited_on_graphql_nothing_stored() {
    early_in_a_minute().await;
    let app = limited_app(3).await;
    let partner = app.token_for(Role::Partner, "acme");

    // GraphQL and ADF count together.
    for i in 0..2 {
        let body = submit_as(&app, &partner, &format!("g{i}@example.com")).await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    let third = app
        .post_adf_raw(adf_for("a0@example.com"), "application/xml", Some(&partner))
        .await;
    assert_eq!(third.status, StatusCode::CREATED, "{}", third.body);

    let refused = app
        .post_adf_raw(adf_for("a1@example.com"), "application/xml", Some(&partner))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.body
    );
    assert_eq!(error_code(&refused.body), "RATE_LIMITED");
    let retry: u64 = refused.retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");

    let body = submit_as(&app, &partner, "g9@example.com").await;
    app.assert_refused(&body, "RATE_LIMITED", "lead", 3).await;
    assert_eq!(app.count("client").await, 3);

    // Per subject, and partners only.
    let other = app.token_for(Role::Partner, "other");
    let body = submit_as(&app, &other, "o@example.com").await;
    assert!(body.get("errors").is_none(), "{body}");
    for i in 0..4 {
        let agent = app
            .post_adf(&adf_for(&format!("agent{i}@example.com")), Role::Agent)
            .await;
        assert_eq!(agent.status, StatusCode::CREATED, "{}", agent.body);
    }
    assert_eq!(app.count("lead").await, 8);
}

#[tokio::test]
async fn the_rate_limit_holds_across_two_crm_serve_processes_on_postgresql() {
    let Some((first, second)) = two_processes("5").await else {
        return;
    };
    let token = first.app.token_for(Role::Partner, "acme");

    let mut tasks = Vec::new();
    for i in 0..12 {
        let app = if i % 2 == 0 { &first.app } else { &second.app };
        let request = app
            .client
            .post(format!("{}/leads/adf", app.address))
            .bearer_auth(&token)
            .header("Content-Type", "application/xml")
            .body(adf_for(&format!("p{i}@example.com")));
        tasks.push(tokio::spawn(async move {
            request.send().await.unwrap().status()
        }));
    }
    let mut created = 0;
    let mut limited = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((created, limited), (5, 7));
    assert_eq!(first.app.count("lead").await, 5);
}

#[tokio::test]
async fn on_postgresql_the_previous_minute_still_weighs_on_the_window() {
    let Some(app) = limited_app_on_postgres(5).await else {
        return;
    };
    // 50 leads last minute: at least a quarter of them are still inside the
    // last 60 s, more than the limit.
    app.db
        .execute_unprepared(
            "INSERT INTO partner_rate (sub, window_start, hits)
             VALUES ('acme', date_trunc('minute', now()) - interval '1 minute', 50)",
        )
        .await
        .unwrap();
    let acme = app.token_for(Role::Partner, "acme");
    let body = submit_as(&app, &acme, "w@example.com").await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    let other = app.token_for(Role::Partner, "other");
    let body = submit_as(&app, &other, "w@example.com").await;
    assert!(body.get("errors").is_none(), "{body}");
}

/// Hits counted for `sub` in the database's current minute.
async fn hits_this_minute(app: &TestApp, sub: &str) -> i64 {
    let row = app
        .db
        .query_one_raw(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "SELECT COALESCE(SUM(hits), 0)::bigint AS n FROM partner_rate
             WHERE sub = $1 AND window_start = date_trunc('minute', now())",
            [sub.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

#[tokio::test]
async fn on_postgresql_an_instance_takes_a_partners_hits_ten_at_a_time_under_a_limit_of_640() {
    let Some(app) = limited_app_on_postgres(640).await else {
        return;
    };
    let acme = app.token_for(Role::Partner, "acme");
    let mut counted = Vec::new();
    for i in 0..11 {
        let body = submit_as(&app, &acme, &format!("l{i}@example.com")).await;
        assert!(body.get("errors").is_none(), "{body}");
        counted.push(hits_this_minute(&app, "acme").await);
    }
    // One statement for the first ten intakes, another for the eleventh.
    assert_eq!(counted, [10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 20]);
    assert_eq!(app.count("lead").await, 11);
}

#[tokio::test]
async fn on_postgresql_near_the_limit_hits_are_taken_one_at_a_time_and_never_beyond_it() {
    let Some((first, second)) = two_processes("640").await else {
        return;
    };
    // 637 counted this minute: a lease of ten no longer fits, three single
    // hits do.
    first
        .app
        .db
        .execute_unprepared(
            "INSERT INTO partner_rate (sub, window_start, hits)
             VALUES ('acme', date_trunc('minute', now()), 637)",
        )
        .await
        .unwrap();
    let token = first.app.token_for(Role::Partner, "acme");
    let mut created = 0;
    for i in 0..8 {
        let app = if i % 2 == 0 { &first.app } else { &second.app };
        let body = submit_as(app, &token, &format!("n{i}@example.com")).await;
        if body.get("errors").is_none() {
            created += 1;
        } else {
            assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
        }
    }
    assert_eq!(created, 3);
    assert_eq!(hits_this_minute(&first.app, "acme").await, 640);
    assert_eq!(first.app.count("lead").await, 3);
}

const ME: &str = "{ me { sub } }";

async fn graphql_status(app: &TestApp, token: &str) -> (StatusCode, Value) {
    app.post_raw(json!({ "query": ME }), Some(&format!("Bearer {token}")))
        .await
}

/// A token of `sub` issued `offset_secs` from now.
fn token_at(app: &TestApp, role: Role, sub: &str, offset_secs: i64) -> String {
    app.keys
        .issue(
            role,
            sub,
            chrono::Duration::hours(1),
            Utc::now() + chrono::Duration::seconds(offset_secs),
        )
        .unwrap()
}

async fn revoke(app: &TestApp, sub: &str) {
    let data = app
        .data(
            "mutation($s: String!) { revokeTokens(sub: $s) }",
            json!({ "s": sub }),
            Role::Admin,
        )
        .await;
    assert_eq!(data["revokeTokens"], true);
}

#[tokio::test]
async fn a_revoked_subject_is_refused_everywhere_and_its_new_tokens_work() {
    let app = spawn_app().await;
    let old = token_at(&app, Role::Partner, "acme", -10);
    let bystander = token_at(&app, Role::Partner, "other", -10);
    assert_eq!(graphql_status(&app, &old).await.0, StatusCode::OK);

    revoke(&app, "acme").await;

    let (status, body) = graphql_status(&app, &old).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let adf = app
        .post_adf_raw(adf_fixture("minimal.xml"), "application/xml", Some(&old))
        .await;
    assert_eq!(adf.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&adf.body), "UNAUTHENTICATED");
    assert_eq!(graphql_status(&app, &bystander).await.0, StatusCode::OK);

    // Issued after the revocation's second: accepted.
    let new = token_at(&app, Role::Partner, "acme", 1);
    let (status, body) = graphql_status(&app, &new).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["me"]["sub"], "acme");
    assert_eq!(app.count("lead").await, 0);

    let listed = app
        .query_data(
            "{ revokedSubjects(first: 10) { totalCount edges { node { sub revokedAt revokedBy } } } }",
            Role::Admin,
        )
        .await;
    let list = &listed["revokedSubjects"];
    assert_eq!(list["totalCount"], 1);
    assert_eq!(list["edges"][0]["node"]["sub"], "acme");
    assert_eq!(list["edges"][0]["node"]["revokedBy"], "admin-1");
}

#[tokio::test]
async fn only_an_admin_revokes_or_lists_revocations() {
    let app = spawn_app().await;
    for role in [Role::Agent, Role::Partner] {
        let body = app
            .post_query(r#"mutation { revokeTokens(sub: "agent-1") }"#, role)
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
        let body = app
            .post_query("{ revokedSubjects { totalCount } }", role)
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    }
    let body = app
        .post_query(r#"mutation { revokeTokens(sub: " ") }"#, Role::Admin)
        .await;
    app.assert_refused(&body, "BAD_USER_INPUT", "revoked_subject", 0)
        .await;
}

#[tokio::test]
async fn revoked_subjects_page_newest_first() {
    let app = spawn_app().await;
    for sub in ["a", "b", "c"] {
        revoke(&app, sub).await;
    }
    let query = "query($after: String) { revokedSubjects(first: 2, after: $after) {
        pageInfo { hasNextPage endCursor } edges { node { sub } } } }";
    let first = app.query_data(query, Role::Admin).await["revokedSubjects"].clone();
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let cursor = first["pageInfo"]["endCursor"].clone();
    let second = app
        .data(query, json!({ "after": cursor }), Role::Admin)
        .await["revokedSubjects"]
        .clone();
    let subs: Vec<&str> = [&first, &second]
        .iter()
        .flat_map(|page| page["edges"].as_array().unwrap())
        .map(|e| e["node"]["sub"].as_str().unwrap())
        .collect();
    assert_eq!(subs.len(), 3);
    assert_eq!(second["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn a_revocation_reaches_another_crm_serve_process_within_a_second() {
    let database = Arc::new(TestDatabase::create().await);
    let first = ServerProcess::start(database.clone()).await;
    let second = ServerProcess::start(database).await;
    let old = token_at(&first.app, Role::Partner, "acme", -10);
    assert_eq!(graphql_status(&second.app, &old).await.0, StatusCode::OK);

    revoke(&first.app, "acme").await;
    let revoked = Instant::now();
    assert_eq!(
        graphql_status(&first.app, &old).await.0,
        StatusCode::UNAUTHORIZED
    );
    loop {
        let (status, _) = graphql_status(&second.app, &old).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "the second process still accepts the token after a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let new = token_at(&first.app, Role::Partner, "acme", 1);
    assert_eq!(graphql_status(&second.app, &new).await.0, StatusCode::OK);
}
