//! The server the benchmarks measure: tokens signed with [`SECRET`], the
//! system clock, no background sweep.
use std::sync::Arc;

use crm::auth::JwtKeys;
use crm::clock::SystemClock;
use crm::config::Settings;
use crm::startup::{Application, RunOptions};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

pub const SECRET: &str = "bench-secret-of-at-least-thirty-two-bytes";

/// The settings of a server on `url` that accepts tokens from [`keys`].
pub fn settings(url: &str) -> Settings {
    let mut settings = Settings::with_database(url);
    settings.jwt_secret = Some(SECRET.into());
    settings
}

/// The keys the benchmarks sign their tokens with.
pub fn keys() -> JwtKeys {
    JwtKeys::hs256(SECRET.as_bytes(), "crm", "crm-api")
}

/// A server in this process on port 0: its port and its database pool.
pub async fn start(settings: Settings) -> anyhow::Result<(u16, DatabaseConnection)> {
    let app = build(settings, false).await?;
    let (port, db) = (app.port(), app.db().clone());
    tokio::spawn(app.run_until_stopped());
    Ok((port, db))
}

/// The application, not yet running; with `handle_signals` it stops on
/// SIGTERM (a server in a child process of its own).
pub async fn build(settings: Settings, handle_signals: bool) -> anyhow::Result<Application> {
    Ok(Application::build(
        settings,
        Arc::new(SystemClock),
        RunOptions {
            sweep: false,
            handle_signals,
        },
    )
    .await?)
}

/// `run` on a PostgreSQL database of its own, created on the server of
/// `admin_url` and dropped after, whatever `run` returned.
pub async fn in_scratch_database<F, Fut>(admin_url: &str, run: F) -> anyhow::Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let name = format!("crm_bench_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(admin_url).await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await?;
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    let result = run(format!("{base}/{name}")).await;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await?;
    result
}
