//! The partner rate limit's shared counters (PostgreSQL).
//!
//! Algorithm: a sliding window approximated from two fixed one-minute
//! windows (the previous minute's count weighted by the part of it still
//! inside the last 60 s, plus the current minute's count). One statement,
//! one round trip: the row of the current minute is inserted or incremented
//! by `INSERT .. ON CONFLICT DO UPDATE .. WHERE`, which PostgreSQL runs
//! atomically under the row's lock, so concurrent requests on any number of
//! instances never admit more than the limit. A refused request counts
//! nothing. Times come from the database (`now()`), so instances with skewed
//! clocks still share one window.
//!
//! A statement may take several hits at once, all or none: an instance
//! then admits that many intakes before it asks again (its lease, see
//! [`crate::partners`]).
use std::time::Duration;

use sea_orm::{ConnectionTrait, Statement};

use crate::error::AppError;

const TAKE: &str = r#"
WITH w AS (
    SELECT date_trunc('minute', now()) AS cur,
           1 - extract(epoch FROM now() - date_trunc('minute', now())) / 60 AS weight
), prev AS (
    SELECT COALESCE((
        SELECT r.hits FROM partner_rate r, w
        WHERE r.sub = $1 AND r.window_start = w.cur - interval '1 minute'
    ), 0) * (SELECT weight FROM w) AS weighted
)
INSERT INTO partner_rate (sub, window_start, hits)
SELECT $1, w.cur, $3 FROM w, prev WHERE prev.weighted + $3 <= $2
ON CONFLICT (sub, window_start) DO UPDATE SET hits = partner_rate.hits + $3
WHERE partner_rate.hits + $3 + (SELECT weighted FROM prev) <= $2
RETURNING extract(epoch FROM window_start + interval '1 minute' - now())::float8 AS window_left
"#;

/// Count `hits` lead intakes for `sub` if they all stay within
/// `per_minute`: the time left in the window they were counted in, or
/// `None` when they would not fit (nothing counted).
pub async fn take(
    db: &impl ConnectionTrait,
    sub: &str,
    per_minute: u32,
    hits: u32,
) -> Result<Option<Duration>, AppError> {
    let hits = i32::try_from(hits)
        .map_err(|_| AppError::Internal(format!("{hits} rate-limit hits at once")))?;
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            TAKE,
            [sub.into(), f64::from(per_minute).into(), hits.into()],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let left: f64 = row.try_get("", "window_left")?;
    Ok(Some(
        Duration::try_from_secs_f64(left).unwrap_or(Duration::ZERO),
    ))
}

/// Drop the windows no request can weigh any more.
pub async fn prune(db: &impl ConnectionTrait) -> Result<u64, AppError> {
    let result = db
        .execute_raw(Statement::from_string(
            db.get_database_backend(),
            "DELETE FROM partner_rate WHERE window_start < now() - interval '2 minutes'",
        ))
        .await?;
    Ok(result.rows_affected())
}
