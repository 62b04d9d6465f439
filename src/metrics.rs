//! Prometheus metrics, served on `/metrics` in the text format.
use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};
use sea_orm::{DatabaseBackend, DatabaseConnection};

/// Distinct `operation` label values kept; later names count as `other`
/// (operation names are chosen by clients: the series must stay bounded).
pub const MAX_OPERATION_LABELS: usize = 200;

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

/// `metric`, registered; `None` (the metric is then not kept) if it cannot
/// be built or registered.
fn registered<M>(metric: prometheus::Result<M>) -> Option<M>
where
    M: prometheus::core::Collector + Clone + 'static,
{
    let metric = metric.ok()?;
    REGISTRY.register(Box::new(metric.clone())).ok()?;
    Some(metric)
}

/// The counters with no labels, each counted where it happens with
/// [`count`] (or [`add`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Opportunities flagged as expired.
    OpportunitiesExpired,
    /// One SQL statement ran (the pool's metric callback).
    Statements,
    /// The revoked subjects were reloaded (a background statement).
    RevocationReloads,
    /// An execution resolved an event.
    LiveResolved,
    /// A resolved event was handed to a subscriber.
    LiveDelivered,
    /// The rows of waiting events were read together.
    LiveRowReads,
    /// A WebSocket was written what it had pending.
    LiveSocketWrites,
    /// An event's rows were this instance's own, not read back.
    LiveOwnRows,
}

impl Counter {
    /// Every counter, in the order of their slots.
    const ALL: [Self; 8] = [
        Self::OpportunitiesExpired,
        Self::Statements,
        Self::RevocationReloads,
        Self::LiveResolved,
        Self::LiveDelivered,
        Self::LiveRowReads,
        Self::LiveSocketWrites,
        Self::LiveOwnRows,
    ];

    /// The metric's name and help.
    fn described(self) -> (&'static str, &'static str) {
        match self {
            Self::OpportunitiesExpired => (
                "crm_opportunities_expired_total",
                "Opportunities the expiry sweep (background or `crm expire`) flagged as expired.",
            ),
            Self::Statements => (
                "crm_db_statements_total",
                "SQL statements sent to the database by this process.",
            ),
            Self::RevocationReloads => (
                "crm_revocation_reloads_total",
                "Reloads of the revoked token subjects from the database (one statement each).",
            ),
            Self::LiveResolved => (
                "crm_live_events_resolved_total",
                "Events resolved by subscription executions (once per group, whatever its size).",
            ),
            Self::LiveDelivered => (
                "crm_live_events_delivered_total",
                "Resolved events handed to subscribers (once per subscriber).",
            ),
            Self::LiveRowReads => (
                "crm_live_row_reads_total",
                "Reads of the rows named by events, each for every event waiting at the time.",
            ),
            Self::LiveSocketWrites => (
                "crm_live_socket_writes_total",
                "Writes of events to WebSockets, each of every event pending for the socket.",
            ),
            Self::LiveOwnRows => (
                "crm_live_own_rows_total",
                "Events whose rows this instance wrote itself (its own leads), given to \
                 subscribers without a read.",
            ),
        }
    }
}

/// The counters, registered together (so each is listed from the first
/// scrape), in the slots of [`Counter::ALL`]; `None` where one could not be.
static COUNTERS: LazyLock<Vec<Option<IntCounter>>> = LazyLock::new(|| {
    Counter::ALL
        .iter()
        .map(|c| {
            let (name, help) = c.described();
            registered(IntCounter::new(name, help))
        })
        .collect()
});

/// Count one on `counter`.
pub fn count(counter: Counter) {
    add(counter, 1);
}

/// Count `n` on `counter`.
pub fn add(counter: Counter, n: u64) {
    if let Some(Some(c)) = COUNTERS.get(counter as usize) {
        c.inc_by(n);
    }
}

static LEADS: LazyLock<Option<IntCounterVec>> = LazyLock::new(|| {
    registered(IntCounterVec::new(
        Opts::new("crm_leads_accepted_total", "Leads accepted, by outcome."),
        &["outcome"],
    ))
});

static SWEEP_SECONDS: LazyLock<Option<Histogram>> = LazyLock::new(|| {
    registered(Histogram::with_opts(HistogramOpts::new(
        "crm_expiry_sweep_duration_seconds",
        "Duration of one expiry sweep.",
    )))
});

static HTTP_REQUESTS: LazyLock<Option<IntCounterVec>> = LazyLock::new(|| {
    registered(IntCounterVec::new(
        Opts::new(
            "crm_http_requests_total",
            "HTTP requests, by GraphQL operation (or route) and status.",
        ),
        &["operation", "status"],
    ))
});

static HTTP_SECONDS: LazyLock<Option<HistogramVec>> = LazyLock::new(|| {
    registered(HistogramVec::new(
        HistogramOpts::new(
            "crm_http_request_duration_seconds",
            "HTTP request duration, by GraphQL operation (or route).",
        )
        .buckets(vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]),
        &["operation"],
    ))
});

static POOL: LazyLock<Option<IntGaugeVec>> = LazyLock::new(|| {
    registered(IntGaugeVec::new(
        Opts::new(
            "crm_db_pool_connections",
            "Database pool connections, by state (in_use or idle).",
        ),
        &["state"],
    ))
});

static LIVE_SUBSCRIPTIONS: LazyLock<Option<IntGauge>> = LazyLock::new(|| {
    registered(IntGauge::new(
        "crm_live_subscriptions",
        "Active GraphQL subscriptions on this instance.",
    ))
});

static LIVE_EXECUTIONS: LazyLock<Option<IntGauge>> = LazyLock::new(|| {
    registered(IntGauge::new(
        "crm_live_executions",
        "Running subscription executions on this instance: one per group of identical \
         subscriptions (same role, document, operation and variables).",
    ))
});

/// Subscriptions joined (`+n`) or left (`-n`); executions started or ended.
pub fn live_changed(subscriptions: i64, executions: i64) {
    if let Some(g) = LIVE_SUBSCRIPTIONS.as_ref() {
        g.add(subscriptions);
    }
    if let Some(g) = LIVE_EXECUTIONS.as_ref() {
        g.add(executions);
    }
}

/// One event resolved by an execution and handed to `subscribers`.
pub fn live_resolved(subscribers: usize) {
    count(Counter::LiveResolved);
    add(
        Counter::LiveDelivered,
        u64::try_from(subscribers).unwrap_or(u64::MAX),
    );
}

static OPERATIONS: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);

/// `operation` as a label value, or `other` once the set is full.
fn operation_label(operation: &str) -> String {
    let Ok(mut seen) = OPERATIONS.lock() else {
        return "other".to_owned();
    };
    if seen.contains(operation) {
        return operation.to_owned();
    }
    if seen.len() < MAX_OPERATION_LABELS {
        seen.insert(operation.to_owned());
        return operation.to_owned();
    }
    "other".to_owned()
}

/// One HTTP request answered.
pub fn http_request(operation: &str, status: u16, seconds: f64) {
    let operation = operation_label(operation);
    if let Some(c) = HTTP_REQUESTS.as_ref() {
        c.with_label_values(&[operation.as_str(), &status.to_string()])
            .inc();
    }
    if let Some(h) = HTTP_SECONDS.as_ref() {
        h.with_label_values(&[operation.as_str()]).observe(seconds);
    }
}

/// Read the pool's figures now (called before each scrape).
pub fn observe_pool(db: &DatabaseConnection) {
    let (size, idle) = match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DatabaseBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => return,
    };
    let idle = i64::try_from(idle).unwrap_or(i64::MAX);
    let in_use = i64::from(size).saturating_sub(idle).max(0);
    if let Some(g) = POOL.as_ref() {
        g.with_label_values(&["in_use"]).set(in_use);
        g.with_label_values(&["idle"]).set(idle);
    }
}

pub fn lead_accepted(outcome: &str) {
    if let Some(c) = LEADS.as_ref() {
        c.with_label_values(&[outcome]).inc();
    }
}

pub fn sweep_finished(expired: u64, seconds: f64) {
    add(Counter::OpportunitiesExpired, expired);
    if let Some(h) = SWEEP_SECONDS.as_ref() {
        h.observe(seconds);
    }
}

/// The whole registry in Prometheus text format.
pub fn render() -> String {
    // Touch every metric so each is listed from the start.
    let _ = (
        &*LEADS,
        &*COUNTERS,
        &*SWEEP_SECONDS,
        &*HTTP_REQUESTS,
        &*HTTP_SECONDS,
        &*POOL,
        &*LIVE_SUBSCRIPTIONS,
        &*LIVE_EXECUTIONS,
    );
    let mut buffer = Vec::new();
    if prometheus::TextEncoder::new()
        .encode(&REGISTRY.gather(), &mut buffer)
        .is_err()
    {
        return String::new();
    }
    String::from_utf8(buffer).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`add`] finds a counter at the slot of its discriminant: the table
    /// lists every counter once, in declaration order.
    #[test]
    fn each_counter_is_counted_in_its_own_slot_and_listed_under_its_name() {
        for (slot, counter) in Counter::ALL.into_iter().enumerate() {
            assert_eq!(counter as usize, slot, "{counter:?}");
        }
        let listed = render();
        for counter in Counter::ALL {
            let (name, _) = counter.described();
            assert!(listed.contains(&format!("# TYPE {name} counter")), "{name}");
        }
    }
}
