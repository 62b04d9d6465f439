//! Benchmark of the expiry sweep on PostgreSQL (issue: sweep fast, leads not held).
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run --release --example sweep_bench -- [OPPORTUNITIES]
//! ```
//!
//! Creates a scratch database, loads OPPORTUNITIES (default 1,000,000) rows of
//! which 10% are due, then measures in the same run:
//! 1. the raw SQL the rule needs: one `UPDATE ... WHERE <rule>` (and the same
//!    with the audit rows, as one CTE), each rolled back and vacuumed after;
//! 2. `sweep_once` (batched, audited), while 4 clients send `submitLead` over
//!    HTTP to a server on the same database, whose latencies are reported.
//!
//! Prints the plan of the sweep's batch query. Drops the database at the end.
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};
use crm::auth::{JwtKeys, Role};
use crm::clock::SystemClock;
use crm::config::Settings;
use crm::domain::expiry::ExpiryPolicy;
use crm::startup::{Application, RunOptions};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, TransactionTrait};

const SECRET: &str = "bench-secret";
const LEAD_CLIENTS: usize = 4;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    anyhow::ensure!(
        admin_url.starts_with("postgres"),
        "the benchmark needs PostgreSQL"
    );
    let rows: i64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let name = format!("crm_bench_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&admin_url).await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await?;
    let url = format!(
        "{}/{name}",
        admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b)
    );
    let result = run(&url, rows).await;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await?;
    result
}

async fn run(url: &str, rows: i64) -> anyhow::Result<()> {
    let mut settings = Settings::with_database(url);
    settings.jwt_secret = Some(SECRET.into());
    let app = Application::build(
        settings,
        Arc::new(SystemClock),
        RunOptions {
            sweep: false,
            handle_signals: false,
        },
    )
    .await?;
    let port = app.port();
    let db = app.db().clone();
    tokio::spawn(app.run_until_stopped());

    let now = Utc::now().trunc_subsecs(6);
    let policy = ExpiryPolicy::default();
    let load = Instant::now();
    let clients = (rows / 10).max(1);
    db.execute_unprepared(&format!(
        "INSERT INTO client (id, first_name, last_name, created_at, updated_at)
         SELECT gen_random_uuid(), 'Client', i::text, now(), now() FROM generate_series(1, {clients}) i"
    ))
    .await?;
    // Every 10th row is due: older than the window and unprotected. The rest
    // are either recent, or old but protected (so the rule must read status).
    db.execute_unprepared(&format!(
        "WITH c AS (SELECT id, row_number() OVER () AS n FROM client)
         INSERT INTO opportunity (id, client_id, status, created_at, updated_at, expiree, expired_at, created_by)
         SELECT gen_random_uuid(), c.id,
                CASE WHEN i % 10 = 0 THEN (ARRAY['NOUVEAU','PERDU','VENDU_LIVRE'])[1 + i % 3]
                     WHEN i % 10 < 4 THEN 'PRIS_EN_CHARGE' ELSE 'NOUVEAU' END,
                CASE WHEN i % 10 = 0 OR i % 10 < 4 THEN now() - interval '90 days' - (i % 1000) * interval '1 minute'
                     ELSE now() - interval '10 days' END,
                now(), false, NULL, 'bench'
         FROM generate_series(1, {rows}) i JOIN c ON c.n = 1 + i % {clients}"
    ))
    .await?;
    db.execute_unprepared("VACUUM ANALYZE").await?;
    println!(
        "loaded {rows} opportunities ({clients} clients) in {:.1?}",
        load.elapsed()
    );

    let cutoff = policy.created_on_or_before(now);
    let protected = "('PRIS_EN_CHARGE','VENDU_NON_LIVRE','SUIVI_LONG_TERME')";
    let rule = format!("NOT expiree AND created_at <= $2 AND status NOT IN {protected}");
    let raw_update = format!("UPDATE opportunity SET expiree = true, expired_at = $1 WHERE {rule}");
    let raw_audited = format!(
        "WITH flagged AS ({raw_update} RETURNING id)
         INSERT INTO opportunity_expiry_event (id, opportunity_id, expired_at, window_days, protected_statuses, applied_by)
         SELECT gen_random_uuid(), id, $1, 56, 'PRIS_EN_CHARGE,SUIVI_LONG_TERME,VENDU_NON_LIVRE', 'SWEEP' FROM flagged"
    );
    let plan = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("EXPLAIN SELECT id FROM opportunity WHERE {rule} ORDER BY created_at LIMIT 1000 FOR UPDATE SKIP LOCKED")
                .replace("$2", "$1"),
            [cutoff.into()],
        ))
        .await?;
    println!("plan of one sweep batch:");
    for row in plan {
        println!("    {}", row.try_get::<String>("", "QUERY PLAN")?);
    }

    let mut raw_times = Vec::new();
    for sql in [&raw_update, &raw_audited] {
        // A real transaction (one connection), rolled back so the sweep below
        // finds the same rows.
        let txn = db.begin().await?;
        let txn_start = Instant::now();
        let result = txn
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql.as_str(),
                [now.into(), cutoff.into()],
            ))
            .await;
        let elapsed = txn_start.elapsed();
        txn.rollback().await?;
        let affected = result?.rows_affected();
        db.execute_unprepared("VACUUM ANALYZE").await?;
        raw_times.push((elapsed, affected));
    }
    println!(
        "raw UPDATE ... WHERE <rule>:            {:>8.1?} ({} rows)",
        raw_times[0].0, raw_times[0].1
    );
    println!(
        "raw UPDATE + audit rows (one CTE):      {:>8.1?} ({} rows)",
        raw_times[1].0, raw_times[1].1
    );

    // Leads keep coming while the sweep runs.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let keys = JwtKeys::hs256(SECRET.as_bytes(), "crm", "crm-api");
    let token = keys.issue(
        Role::Partner,
        "bench-partner",
        chrono::Duration::hours(1),
        Utc::now(),
    )?;
    let mut senders = Vec::new();
    for worker in 0..LEAD_CLIENTS {
        let (stop, token) = (stop.clone(), token.clone());
        senders.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut latencies = Vec::new();
            let mut i = 0u64;
            // Bounded: stops with the sweep, or after 60 s at most.
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                i += 1;
                let body = serde_json::json!({
                    "query": "mutation($i: SubmitLeadInput!) { submitLead(input: $i) { outcome } }",
                    "variables": { "i": { "email": format!("bench{worker}-{}@example.com", i % 50) } }
                });
                let started = Instant::now();
                let ok = http
                    .post(format!("http://127.0.0.1:{port}/graphql"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                if ok {
                    latencies.push(started.elapsed());
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sweep_start = Instant::now();
    let report = crm::jobs::expiry_sweep::sweep_once(&db, &policy, now).await?;
    let sweep = sweep_start.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut latencies: Vec<Duration> = Vec::new();
    for sender in senders {
        latencies.extend(sender.await?);
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "sweep_once (batches of {}, audited):     {:>8.1?} ({} rows, {} batches)",
        crm::store::expiry::SWEEP_BATCH_SIZE,
        sweep,
        report.expired,
        report.batches
    );
    println!(
        "ratio sweep / raw UPDATE: {:.2}; sweep / raw UPDATE + audit: {:.2}",
        sweep.as_secs_f64() / raw_times[0].0.as_secs_f64(),
        sweep.as_secs_f64() / raw_times[1].0.as_secs_f64()
    );
    if latencies.is_empty() {
        println!("no submitLead completed during the sweep");
    } else {
        println!(
            "submitLead during the sweep: {} requests from {LEAD_CLIENTS} clients, p50 {:.1?}, p99 {:.1?}, max {:.1?}",
            latencies.len(),
            pct(0.50),
            pct(0.99),
            latencies[latencies.len() - 1]
        );
    }
    Ok(())
}
