//! Controls on who may send leads and how fast: the partner rate limit and
//! token revocation, shared by `/graphql` and `/leads/adf`.
//!
//! Rate limit (SPEC 5): `CRM_PARTNER_RATE_PER_MIN` lead intakes per token
//! subject, PARTNER tokens only, `submitLead` and ADF counted together. On
//! SQLite (one process) it is `governor`'s GCRA in memory; on PostgreSQL the
//! counters live in the database ([`crate::store::partner_rate`]) so the
//! limit holds across instances.
//!
//! Revocation: `revokeTokens(sub)` stores a mark; every token of that
//! subject issued at or before the mark's second is refused. Tokens carry
//! `iat` in whole seconds, so a token issued in the very second of the
//! revocation is refused too: issue new ones a second later. Every instance
//! keeps the marks in memory, reloads them from the database every
//! [`REVOCATION_REFRESH`] (well within the one second SPEC asks for), and
//! the instance that revokes updates its copy at once. A request therefore
//! costs a hash-map lookup, not a query; the reload is one indexed scan of a
//! table holding one row per revoked subject.
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use sea_orm::DatabaseConnection;

use crate::auth::{Principal, Role};
use crate::error::AppError;
use crate::store;

/// How often each instance reloads the revocation marks.
pub const REVOCATION_REFRESH: Duration = Duration::from_millis(500);
/// How often old rate windows are dropped (PostgreSQL) or forgotten (memory).
pub const RATE_PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The rate limit and the revocation marks of one server instance.
pub struct PartnerControls {
    rate: RateLimit,
    revoked: RwLock<HashMap<String, i64>>,
}

enum RateLimit {
    InProcess(DefaultKeyedRateLimiter<String>),
    Database {
        db: DatabaseConnection,
        per_minute: u32,
    },
}

impl PartnerControls {
    /// Load the revocation marks and start the refresher, which stops when
    /// the returned value is dropped.
    pub async fn start(
        db: &DatabaseConnection,
        per_minute: NonZeroU32,
    ) -> Result<Arc<Self>, AppError> {
        let rate = if store::is_postgres(db.get_database_backend()) {
            RateLimit::Database {
                db: db.clone(),
                per_minute: per_minute.get(),
            }
        } else {
            RateLimit::InProcess(DefaultKeyedRateLimiter::keyed(Quota::per_minute(
                per_minute,
            )))
        };
        let controls = Arc::new(Self {
            rate,
            revoked: RwLock::new(HashMap::new()),
        });
        controls.reload(db).await?;
        tokio::spawn(keep_fresh(db.clone(), Arc::downgrade(&controls)));
        Ok(controls)
    }

    /// Count one lead intake of `who` against the partner rate limit.
    /// Staff are never limited.
    pub async fn admit(&self, who: &Principal) -> Result<(), AppError> {
        if who.role != Role::Partner {
            return Ok(());
        }
        match &self.rate {
            RateLimit::InProcess(limiter) => limiter.check_key(&who.sub).map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                AppError::RateLimited {
                    retry_after_secs: wait.as_secs() + 1,
                }
            }),
            RateLimit::Database { db, per_minute } => {
                if store::partner_rate::take(db, &who.sub, *per_minute).await? {
                    Ok(())
                } else {
                    // Until the current minute window closes: an upper bound.
                    let into_minute = Utc::now().timestamp().rem_euclid(60);
                    Err(AppError::RateLimited {
                        retry_after_secs: u64::try_from(60 - into_minute).unwrap_or(60),
                    })
                }
            }
        }
    }

    /// Refuse a token of a revoked subject issued at or before its mark.
    pub fn refuse_revoked(&self, who: &Principal) -> Result<(), AppError> {
        let mark = self
            .revoked
            .read()
            .ok()
            .and_then(|marks| marks.get(&who.sub).copied());
        let Some(mark) = mark else {
            return Ok(());
        };
        if who.issued_at > mark {
            Ok(())
        } else {
            Err(AppError::Unauthenticated("token revoked".into()))
        }
    }

    /// Revoke now on this instance (others follow within a refresh).
    pub fn record(&self, sub: &str, at: DateTime<Utc>) {
        if let Ok(mut marks) = self.revoked.write() {
            marks.insert(sub.to_owned(), at.timestamp());
        }
    }

    async fn reload(&self, db: &DatabaseConnection) -> Result<(), AppError> {
        let marks: HashMap<String, i64> = store::revocation::all(db)
            .await?
            .into_iter()
            .map(|(sub, at)| (sub, at.timestamp()))
            .collect();
        if let Ok(mut current) = self.revoked.write() {
            *current = marks;
        }
        Ok(())
    }

    async fn prune(&self) {
        match &self.rate {
            RateLimit::InProcess(limiter) => limiter.retain_recent(),
            RateLimit::Database { db, .. } => {
                if let Err(error) = store::partner_rate::prune(db).await {
                    tracing::warn!(%error, "cannot prune the partner rate windows");
                }
            }
        }
    }
}

/// Reload the revocation marks every [`REVOCATION_REFRESH`] while the
/// controls are alive. A failed reload keeps the last copy (logged).
async fn keep_fresh(db: DatabaseConnection, controls: Weak<PartnerControls>) {
    let mut tick = tokio::time::interval(REVOCATION_REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        let Some(controls) = controls.upgrade() else {
            return;
        };
        crate::metrics::revocation_reload();
        if let Err(error) = controls.reload(&db).await {
            tracing::warn!(%error, "cannot reload the revoked token subjects");
        }
        if last_prune.elapsed() >= RATE_PRUNE_EVERY {
            controls.prune().await;
            last_prune = tokio::time::Instant::now();
        }
    }
}
