//! The expiry sweep: [`sweep_once`] applies the rule to every due
//! opportunity; [`run`] repeats it every interval. A failing sweep is logged
//! and retried next tick, never fatal.
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use crate::clock::SharedClock;
use crate::domain::expiry::ExpiryPolicy;
use crate::error::AppError;
use crate::store::expiry::{self, SweepReport};

/// One sweep at `now`, with its log line and metrics.
pub async fn sweep_once(
    db: &DatabaseConnection,
    policy: &ExpiryPolicy,
    now: DateTime<Utc>,
) -> Result<SweepReport, AppError> {
    let started = Instant::now();
    let report = expiry::sweep_once(db, policy, now).await?;
    let seconds = started.elapsed().as_secs_f64();
    crate::metrics::sweep_finished(report.expired, seconds);
    if report.ran {
        tracing::info!(
            expired = report.expired,
            batches = report.batches,
            seconds,
            "expiry sweep done"
        );
    } else {
        tracing::info!("expiry sweep skipped: another instance is sweeping");
    }
    Ok(report)
}

/// Sweep at start, then every `interval`, until `stop` resolves.
pub async fn run(
    db: DatabaseConnection,
    policy: ExpiryPolicy,
    clock: SharedClock,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Err(error) = sweep_once(&db, &policy, clock.now()).await {
                    tracing::error!(error = %crate::telemetry::mask_personal(&error.to_string()), "expiry sweep failed; retrying next tick");
                }
            }
            _ = stop.changed() => break,
        }
    }
}
