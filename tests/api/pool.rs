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
            async move { crate::helpers::submit_lead(app, input, Role::Agent).await }
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
