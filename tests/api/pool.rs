//! The database pool seen from outside: a `crm serve` process whose
//! PostgreSQL connections are killed while they sit idle.
use std::sync::Arc;
use std::time::Duration;

use crm::auth::Role;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::helpers::{ServerProcess, TestDatabase};

/// Connections that died while idle (a restart, a failover, a proxy
/// dropping idle sockets) are replaced before a request uses them: the
/// pool pings a connection idle for longer than `PING_IF_IDLE_FOR`. Without
/// that ping the first requests after the kill fail.
#[tokio::test]
async fn on_postgres_connections_killed_while_idle_are_replaced_before_use() {
    let database = Arc::new(TestDatabase::create().await);
    let Some((_, name)) = database.postgres_admin() else {
        return;
    };
    let name = name.to_owned();
    let server = ServerProcess::start(database).await;
    let app = &server.app;

    // Several pooled connections, all idle afterwards.
    let warm: Vec<_> = (0..8)
        .map(|i| {
            let input = json!({ "email": format!("warm-{i}@example.com") });
            async move { crate::helpers::submit_lead(app, input).await }
        })
        .collect();
    futures_util::future::join_all(warm).await;

    let killed = app
        .db
        .query_one_raw(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "SELECT COUNT(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            [name.into()],
        ))
        .await
        .expect("terminate")
        .expect("a row")
        .try_get::<i64>("", "n")
        .expect("count");
    assert!(killed >= 2, "the server's connections: {killed}");
    tokio::time::sleep(crm::store::PING_IF_IDLE_FOR + Duration::from_millis(300)).await;

    let after: Vec<_> = (0..8)
        .map(|i| {
            let body = json!({
                "query": crate::helpers::SUBMIT_LEAD,
                "variables": { "input": { "email": format!("after-{i}@example.com") } },
            });
            async move {
                app.client
                    .post(format!("{}/graphql", app.address))
                    .bearer_auth(app.token(Role::Agent))
                    .json(&body)
                    .send()
                    .await
                    .expect("sent")
                    .json::<serde_json::Value>()
                    .await
                    .expect("JSON")
            }
        })
        .collect();
    for body in futures_util::future::join_all(after).await {
        assert!(body.get("errors").is_none(), "{body}");
    }
}

/// A connection the database ends under a request (here handed out within
/// `PING_IF_IDLE_FOR`, so not pinged) is `UNAVAILABLE`, which clients
/// retry, not `INTERNAL`.
#[tokio::test]
async fn on_postgres_a_connection_ended_under_a_request_is_unavailable_not_internal() {
    let database = TestDatabase::create().await;
    if database.postgres_admin().is_none() {
        return;
    }
    let pool = crm::store::connect(database.url()).await.expect("pool");
    let other = crm::store::connect(database.url())
        .await
        .expect("second pool");
    let backend = |db: &sea_orm::DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>| {
        Statement::from_sql_and_values(db.get_database_backend(), sql, values)
    };
    let pid = pool
        .query_one_raw(backend(&pool, "SELECT pg_backend_pid() AS pid", vec![]))
        .await
        .expect("pid")
        .expect("a row")
        .try_get::<i32>("", "pid")
        .expect("pid");
    // Let the pool's release ping finish: the connection is idle, live.
    tokio::time::sleep(Duration::from_millis(200)).await;
    other
        .query_one_raw(backend(
            &other,
            "SELECT pg_terminate_backend($1) AS done",
            vec![pid.into()],
        ))
        .await
        .expect("terminate");
    let error = pool
        .query_one_raw(backend(&pool, "SELECT 1 AS one", vec![]))
        .await
        .expect_err("the connection was ended");
    let error = crm::error::AppError::from(error);
    assert!(
        matches!(error, crm::error::AppError::Unavailable),
        "{error:?}"
    );
}
