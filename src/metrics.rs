//! Prometheus metrics, served on `/metrics` in the text format.
use std::sync::LazyLock;

use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

static LEADS: LazyLock<Option<IntCounterVec>> = LazyLock::new(|| {
    let counter = IntCounterVec::new(
        Opts::new("crm_leads_accepted_total", "Leads accepted, by outcome."),
        &["outcome"],
    )
    .ok()?;
    REGISTRY.register(Box::new(counter.clone())).ok()?;
    Some(counter)
});

static EXPIRED: LazyLock<Option<IntCounter>> = LazyLock::new(|| {
    let counter = IntCounter::new(
        "crm_opportunities_expired_total",
        "Opportunities the expiry sweep (background or `crm expire`) flagged as expired.",
    )
    .ok()?;
    REGISTRY.register(Box::new(counter.clone())).ok()?;
    Some(counter)
});

static SWEEP_SECONDS: LazyLock<Option<Histogram>> = LazyLock::new(|| {
    let histogram = Histogram::with_opts(HistogramOpts::new(
        "crm_expiry_sweep_duration_seconds",
        "Duration of one expiry sweep.",
    ))
    .ok()?;
    REGISTRY.register(Box::new(histogram.clone())).ok()?;
    Some(histogram)
});

pub fn lead_accepted(outcome: &str) {
    if let Some(c) = LEADS.as_ref() {
        c.with_label_values(&[outcome]).inc();
    }
}

pub fn sweep_finished(expired: u64, seconds: f64) {
    if let Some(c) = EXPIRED.as_ref() {
        c.inc_by(expired);
    }
    if let Some(h) = SWEEP_SECONDS.as_ref() {
        h.observe(seconds);
    }
}

/// The whole registry in Prometheus text format.
pub fn render() -> String {
    // Touch every metric so each is listed from the start.
    let _ = (&*LEADS, &*EXPIRED, &*SWEEP_SECONDS);
    let mut buffer = Vec::new();
    if prometheus::TextEncoder::new()
        .encode(&REGISTRY.gather(), &mut buffer)
        .is_err()
    {
        return String::new();
    }
    String::from_utf8(buffer).unwrap_or_default()
}
