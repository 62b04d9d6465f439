//! Benchmark of the expiry sweep on PostgreSQL.
//!
//! ```sh
//! cargo build --release --example sweep_bench
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test ./target/release/examples/sweep_bench [ROWS]
//! ```
//!
//! In a scratch database (dropped at the end), with ROWS opportunities
//! (default 1,000,000) of which 10% are due and 30% old but protected:
//! 1. the raw SQL the rule needs, one `UPDATE ... WHERE <rule>`, and the same
//!    with the audit rows as one CTE: each the median of 3 runs in a
//!    transaction rolled back;
//! 2. `sweep_once` alone on the same rows (same run, same machine);
//! 3. after a reload, `sweep_once` again while 4 clients send `submitLead`
//!    over HTTP to a server on the same database: their latencies.
//!
//! Also prints the plan of the sweep's batch query.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use crm::auth::Role;
use crm::domain::expiry::ExpiryPolicy;
use crm::store::expiry::{SWEEP_BATCH_SIZE, sweep_in_batches};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};

#[path = "support/server.rs"]
mod server;

const LEAD_CLIENTS: usize = 4;
/// Upper bound of the lead load, whatever happens to the sweep.
const LEAD_LOAD_LIMIT: Duration = Duration::from_secs(120);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = server::admin_url("the benchmark needs PostgreSQL")?;
    let rows: i64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    server::in_scratch_database(&admin_url, |url| async move { run(&url, rows).await }).await
}

/// Fresh data: `rows` opportunities over rows/10 clients; every 10th is due.
async fn load(db: &DatabaseConnection, rows: i64) -> anyhow::Result<()> {
    let started = Instant::now();
    db.execute_unprepared(
        "TRUNCATE opportunity_expiry_event, opportunity_status_change, lead, opportunity, client_contact, client CASCADE",
    )
    .await?;
    let clients = (rows / 10).max(1);
    db.execute_unprepared(&format!(
        "INSERT INTO client (id, first_name, last_name, created_at, updated_at)
         SELECT gen_random_uuid(), 'Client', i::text, now(), now() FROM generate_series(1, {clients}) i"
    ))
    .await?;
    db.execute_unprepared(&format!(
        "WITH c AS (SELECT id, row_number() OVER () AS n FROM client)
         INSERT INTO opportunity (id, client_id, status, created_at, updated_at, expiree, expired_at, created_by)
         SELECT gen_random_uuid(), c.id,
                CASE WHEN i % 10 = 0 THEN (ARRAY['NOUVEAU','PERDU','VENDU_LIVRE'])[1 + i % 3]
                     WHEN i % 10 < 4 THEN 'PRIS_EN_CHARGE' ELSE 'NOUVEAU' END,
                CASE WHEN i % 10 < 4 THEN now() - interval '90 days' - (i % 1000) * interval '1 minute'
                     ELSE now() - interval '10 days' END,
                now(), false, NULL, 'bench'
         FROM generate_series(1, {rows}) i JOIN c ON c.n = 1 + i % {clients}"
    ))
    .await?;
    db.execute_unprepared("VACUUM ANALYZE").await?;
    println!(
        "loaded {rows} opportunities ({clients} clients) in {:.1?}",
        started.elapsed()
    );
    Ok(())
}

async fn run(url: &str, rows: i64) -> anyhow::Result<()> {
    let (port, db) = server::start(server::settings(url)).await?;

    let now = Utc::now().trunc_subsecs(6);
    let policy = ExpiryPolicy::default();
    load(&db, rows).await?;

    let cutoff = policy.created_on_or_before(now);
    let rule = "NOT expiree AND created_at <= $2 \
                AND status NOT IN ('PRIS_EN_CHARGE','VENDU_NON_LIVRE','SUIVI_LONG_TERME')";
    let raw_update = format!("UPDATE opportunity SET expiree = true, expired_at = $1 WHERE {rule}");
    let raw_audited = format!(
        "WITH flagged AS ({raw_update} RETURNING id)
         INSERT INTO opportunity_expiry_event (opportunity_id, expired_at, window_days, protected_statuses, applied_by)
         SELECT id, $1, 56, 'PRIS_EN_CHARGE,SUIVI_LONG_TERME,VENDU_NON_LIVRE', 'SWEEP' FROM flagged"
    );
    print_plan(&db, rule, cutoff).await?;

    let raw = time_rolled_back(&db, &raw_update, now, cutoff).await?;
    let raw_audit = time_rolled_back(&db, &raw_audited, now, cutoff).await?;
    println!(
        "raw UPDATE ... WHERE <rule>:             {:>8.1?} ({} rows)",
        raw.0, raw.1
    );
    println!(
        "raw UPDATE + audit rows (one CTE):       {:>8.1?} ({} rows)",
        raw_audit.0, raw_audit.1
    );

    let batch = std::env::var("SWEEP_BENCH_BATCH")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(SWEEP_BATCH_SIZE);
    let started = Instant::now();
    let alone = sweep_in_batches(&db, &policy, now, batch).await?;
    let sweep = started.elapsed();
    println!(
        "sweep_once alone (batches of {batch}):      {sweep:>8.1?} ({} rows, {} batches)",
        alone.expired, alone.batches
    );
    println!(
        "ratio sweep / raw UPDATE: {:.2}; sweep / raw UPDATE + audit: {:.2}",
        sweep.as_secs_f64() / raw.0.as_secs_f64(),
        sweep.as_secs_f64() / raw_audit.0.as_secs_f64()
    );

    if std::env::var("SWEEP_BENCH_SKIP_LOAD").is_ok() {
        return Ok(());
    }
    load(&db, rows).await?;
    let (loaded_sweep, latencies, failed) = sweep_under_lead_load(&db, &policy, now, port).await?;
    println!("sweep_once with 4 clients sending leads:  {loaded_sweep:>8.1?}");
    if latencies.is_empty() {
        println!("no submitLead completed during the sweep");
    } else {
        let pct =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        println!(
            "submitLead during the sweep: {} acknowledged, {failed} failed, p50 {:.1?}, p99 {:.1?}, max {:.1?}",
            latencies.len(),
            pct(0.50),
            pct(0.99),
            latencies[latencies.len() - 1]
        );
    }
    Ok(())
}

async fn print_plan(
    db: &DatabaseConnection,
    rule: &str,
    cutoff: DateTime<Utc>,
) -> anyhow::Result<()> {
    let plan = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "EXPLAIN SELECT id FROM opportunity WHERE {} ORDER BY created_at LIMIT 1000 FOR UPDATE SKIP LOCKED",
                rule.replace("$2", "$1")
            ),
            [cutoff.into()],
        ))
        .await?;
    println!("plan of one sweep batch:");
    for row in plan {
        println!("    {}", row.try_get::<String>("", "QUERY PLAN")?);
    }
    Ok(())
}

/// Median of three runs of `sql`, each in a transaction rolled back.
async fn time_rolled_back(
    db: &DatabaseConnection,
    sql: &str,
    now: DateTime<Utc>,
    cutoff: DateTime<Utc>,
) -> anyhow::Result<(Duration, u64)> {
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(time_once_rolled_back(db, sql, now, cutoff).await?);
    }
    runs.sort();
    Ok(runs[1])
}

async fn time_once_rolled_back(
    db: &DatabaseConnection,
    sql: &str,
    now: DateTime<Utc>,
    cutoff: DateTime<Utc>,
) -> anyhow::Result<(Duration, u64)> {
    let txn = db.begin().await?;
    let started = Instant::now();
    let result = txn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [now.into(), cutoff.into()],
        ))
        .await;
    let elapsed = started.elapsed();
    txn.rollback().await?;
    let affected = result?.rows_affected();
    db.execute_unprepared("VACUUM ANALYZE").await?;
    Ok((elapsed, affected))
}

/// The sweep while `LEAD_CLIENTS` clients send `submitLead` back to back:
/// the latencies of the acknowledged leads, and how many failed.
async fn sweep_under_lead_load(
    db: &DatabaseConnection,
    policy: &ExpiryPolicy,
    now: DateTime<Utc>,
    port: u16,
) -> anyhow::Result<(Duration, Vec<Duration>, u64)> {
    let stop = Arc::new(AtomicBool::new(false));
    // An agent: the partner rate limit would refuse most of them.
    let token = server::token(Role::Agent, "bench-agent", chrono::Duration::hours(1))?;
    let mut senders = Vec::new();
    for worker in 0..LEAD_CLIENTS {
        let (stop, token) = (stop.clone(), token.clone());
        senders.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut latencies = Vec::new();
            let mut failed = 0u64;
            let deadline = Instant::now() + LEAD_LOAD_LIMIT;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                i += 1;
                let body = serde_json::json!({
                    "query": "mutation($i: SubmitLeadInput!) { submitLead(input: $i) { outcome lead { id } } }",
                    "variables": { "i": { "email": format!("bench{worker}-{}@example.com", i % 50) } }
                });
                let started = Instant::now();
                let answer = match http
                    .post(format!("http://127.0.0.1:{port}/graphql"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(response) => response.json::<serde_json::Value>().await.ok(),
                    Err(_) => None,
                };
                // Acknowledged: a lead id and no error.
                let acknowledged = answer.is_some_and(|a| {
                    a.get("errors").is_none() && a["data"]["submitLead"]["lead"]["id"].is_string()
                });
                if acknowledged {
                    latencies.push(started.elapsed());
                } else {
                    failed += 1;
                }
            }
            (latencies, failed)
        }));
    }
    // Let the clients warm up (connections, first clients created).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    sweep_in_batches(db, policy, now, SWEEP_BATCH_SIZE).await?;
    let sweep = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut failed = 0;
    for sender in senders {
        let (worker, worker_failed) = sender.await?;
        latencies.extend(worker);
        failed += worker_failed;
    }
    latencies.sort();
    Ok((sweep, latencies, failed))
}
