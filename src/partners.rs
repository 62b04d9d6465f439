//! Controls on who may send leads and how fast: the partner rate limit and
//! token revocation, shared by `/graphql` and `/leads/adf`.
//!
//! Rate limit (SPEC 5): `CRM_PARTNER_RATE_PER_MIN` lead intakes per token
//! subject, PARTNER tokens only, `submitLead` and ADF counted together. On
//! SQLite (one process) it is `governor`'s GCRA in memory; on PostgreSQL the
//! counters live in the database ([`crate::store::partner_rate`]) so the
//! limit holds across instances. There an instance takes a subject's hits
//! a few at a time (its [`Lease`], [`lease_size`] of them: one at low limits,
//! at most 32) and admits from its lease until it is used up or its minute
//! window ends, so a partner's steady flow costs one statement per lease,
//! not one per lead. Never more than the limit is admitted: each hit is
//! counted in the database before it is used. Hits leased and not used by
//! the window's end are lost, so a partner at its limit may be refused up to
//! `lease_size - 1` intakes early per instance and minute (8 of the default
//! 600); near the limit, when a whole lease no longer fits, the instance
//! takes one hit at a time. While the database does not answer, one
//! request per subject and instance waits for it; the others are answered
//! `UNAVAILABLE` for a second after each failure rather than queueing.
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
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

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
        leases: Leases,
    },
}

/// After a refill fails, how long the subject's other intakes on this
/// instance are answered `UNAVAILABLE` at once instead of each waiting for
/// the database in turn behind the lease's lock.
const FAILED_REFILL_HOLD: Duration = Duration::from_secs(1);

/// Hits of one subject counted in the database and not used yet, valid
/// until their minute window ends.
#[derive(Debug, Default)]
struct Lease {
    left: u32,
    until: Option<Instant>,
    /// When the last refill failed, if the one after it has not succeeded.
    failed_at: Option<Instant>,
}

impl Lease {
    /// Use one leased hit, if one is left and its window has not ended.
    fn take(&mut self, now: Instant) -> bool {
        if !self.ended(now) && self.left > 0 {
            self.left -= 1;
            true
        } else {
            false
        }
    }

    /// Hold `left` more hits until `until`; earlier ones are gone with their
    /// window.
    fn fill(&mut self, left: u32, until: Instant) {
        self.left = left;
        self.until = Some(until);
        self.failed_at = None;
    }

    fn failed(&mut self, now: Instant) {
        self.failed_at = Some(now);
    }

    /// A refill failed less than [`FAILED_REFILL_HOLD`] ago.
    fn failing(&self, now: Instant) -> bool {
        self.failed_at
            .is_some_and(|at| now.saturating_duration_since(at) < FAILED_REFILL_HOLD)
    }

    fn ended(&self, now: Instant) -> bool {
        self.until.is_none_or(|until| now >= until)
    }
}

/// How many hits an instance takes at once under a limit of `per_minute`:
/// a 64th of the limit, from 1 to 32.
fn lease_size(per_minute: u32) -> u32 {
    (per_minute / 64).clamp(1, 32)
}

/// Each subject's lease on this instance. A subject's lease is refilled by
/// one request at a time; the others wait for it rather than each asking
/// the database.
#[derive(Default)]
struct Leases(Mutex<HashMap<String, Arc<tokio::sync::Mutex<Lease>>>>);

impl Leases {
    fn of(&self, sub: &str) -> Arc<tokio::sync::Mutex<Lease>> {
        let mut leases = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Every intake of a partner comes here: no key allocated once the
        // subject has its lease.
        if let Some(lease) = leases.get(sub) {
            return lease.clone();
        }
        leases.entry(sub.to_owned()).or_default().clone()
    }

    /// Forget the leases whose window has ended and that nobody holds.
    fn prune(&self, now: Instant) {
        let mut leases = self.0.lock().unwrap_or_else(|e| e.into_inner());
        leases.retain(|_, lease| {
            Arc::strong_count(lease) > 1 || lease.try_lock().map_or(true, |l| !l.ended(now))
        });
    }
}

/// Admit one intake of `sub` from its lease, refilling it from the
/// database when it is used up: `false` when the limit is reached. When a
/// whole lease no longer fits under the limit, one hit is taken alone.
async fn take_leased(
    db: &DatabaseConnection,
    leases: &Leases,
    sub: &str,
    per_minute: u32,
) -> Result<bool, AppError> {
    let lease = leases.of(sub);
    let mut lease = lease.lock().await;
    let now = Instant::now();
    if lease.take(now) {
        return Ok(true);
    }
    if lease.failing(now) {
        return Err(AppError::Unavailable);
    }
    let size = lease_size(per_minute);
    let taken = match refill(db, &mut lease, sub, per_minute, size).await {
        Ok(true) => Ok(true),
        Ok(false) if size > 1 => refill(db, &mut lease, sub, per_minute, 1).await,
        other => other,
    };
    if taken.is_err() {
        lease.failed(Instant::now());
    }
    taken
}

/// Take `size` hits of `sub` in the database; one is used now, the rest
/// go to `lease`. The window's end is measured from before the statement
/// was sent, so the lease never outlives the database's window.
async fn refill(
    db: &DatabaseConnection,
    lease: &mut Lease,
    sub: &str,
    per_minute: u32,
    size: u32,
) -> Result<bool, AppError> {
    let sent = Instant::now();
    let Some(window_left) = store::partner_rate::take(db, sub, per_minute, size).await? else {
        return Ok(false);
    };
    lease.fill(size - 1, sent + window_left);
    Ok(true)
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
                leases: Leases::default(),
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
            RateLimit::Database {
                db,
                per_minute,
                leases,
            } => {
                if take_leased(db, leases, &who.sub, *per_minute).await? {
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
            RateLimit::Database { db, leases, .. } => {
                leases.prune(Instant::now());
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
        if let Err(error) = controls.reload(&db).await {
            tracing::warn!(%error, "cannot reload the revoked token subjects");
        }
        // Counted once its statement is (tests subtract it from the
        // statements counted during a request: counted before, a scrape
        // in between would subtract a statement not counted yet).
        crate::metrics::count(crate::metrics::Counter::RevocationReloads);
        if last_prune.elapsed() >= RATE_PRUNE_EVERY {
            controls.prune().await;
            last_prune = tokio::time::Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lease holding `left` hits for `secs` from `now`.
    fn lease_for(now: Instant, left: u32, secs: u64) -> Lease {
        let mut lease = Lease::default();
        lease.fill(left, now + Duration::from_secs(secs));
        lease
    }

    #[test]
    fn a_lease_is_a_64th_of_the_limit_from_one_to_thirty_two() {
        assert_eq!(lease_size(1), 1);
        assert_eq!(lease_size(5), 1);
        assert_eq!(lease_size(127), 1);
        assert_eq!(lease_size(128), 2);
        assert_eq!(lease_size(600), 9);
        assert_eq!(lease_size(u32::MAX), 32);
    }

    #[test]
    fn a_lease_admits_what_it_holds_and_no_more() {
        let now = Instant::now();
        assert!(!Lease::default().take(now), "an empty lease admits nothing");
        let mut lease = lease_for(now, 2, 30);
        assert!(lease.take(now));
        assert!(lease.take(now));
        assert!(!lease.take(now));
    }

    #[test]
    fn a_lease_ends_with_its_window() {
        let now = Instant::now();
        let mut lease = lease_for(now, 5, 1);
        assert!(!lease.ended(now));
        assert!(lease.ended(now + Duration::from_secs(1)));
        assert!(!lease.take(now + Duration::from_secs(1)));
        assert!(
            lease.take(now),
            "what is left is still usable within the window"
        );
    }

    #[test]
    fn a_refill_replaces_what_was_left_of_the_previous_window() {
        let now = Instant::now();
        let mut lease = lease_for(now, 5, 1);
        lease.fill(1, now + Duration::from_secs(61));
        let later = now + Duration::from_secs(2);
        assert!(lease.take(later));
        assert!(!lease.take(later));
    }

    #[test]
    fn after_a_failed_refill_the_others_are_turned_away_for_a_second_then_try_again() {
        let now = Instant::now();
        let mut lease = Lease::default();
        assert!(!lease.failing(now));
        lease.failed(now);
        assert!(lease.failing(now + Duration::from_millis(999)));
        assert!(!lease.failing(now + FAILED_REFILL_HOLD));
        lease.failed(now);
        lease.fill(3, now + Duration::from_secs(30));
        assert!(
            !lease.failing(now),
            "a successful refill clears the failure"
        );
    }

    #[test]
    fn only_ended_unheld_leases_are_forgotten() {
        let now = Instant::now();
        let leases = Leases::default();
        let held = leases.of("held");
        held.try_lock().unwrap().fill(0, now);
        leases
            .of("live")
            .try_lock()
            .unwrap()
            .fill(3, now + Duration::from_secs(30));
        leases.of("ended").try_lock().unwrap().fill(3, now);
        leases.prune(now);
        let mut left: Vec<String> = leases.0.lock().unwrap().keys().cloned().collect();
        left.sort();
        assert_eq!(left, ["held", "live"]);
    }
}
