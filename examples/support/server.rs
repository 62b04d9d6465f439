//! The server the benchmarks measure: tokens signed with [`SECRET`], the
//! system clock, no background sweep.
use std::sync::Arc;

use crm::auth::{JwtKeys, Role};
use crm::clock::SystemClock;
use crm::config::Settings;
use crm::startup::{Application, RunOptions};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

pub const SECRET: &str = "bench-secret-of-at-least-thirty-two-bytes";

/// The settings of a server on `url` that accepts tokens from [`token`].
pub fn settings(url: &str) -> Settings {
    let mut settings = Settings::with_database(url);
    settings.jwt_secret = Some(SECRET.into());
    settings
}

/// A token for `sub` as `role`, valid for `ttl` from now.
pub fn token(role: Role, sub: &str, ttl: chrono::Duration) -> anyhow::Result<String> {
    let keys = JwtKeys::hs256(SECRET.as_bytes(), "crm", "crm-api");
    Ok(keys.issue(role, sub, ttl, chrono::Utc::now())?)
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

/// The PostgreSQL server the scratch database is made on: `DATABASE_URL`,
/// or the local one; any other database is refused with `refusal`.
pub fn admin_url(refusal: &str) -> anyhow::Result<String> {
    let admin_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    anyhow::ensure!(admin_url.starts_with("postgres"), "{refusal}");
    Ok(admin_url)
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
