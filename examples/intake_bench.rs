//! Benchmark of lead intake on PostgreSQL, against the SQL one lead needs,
//! in the same run; and of the opportunity list's read path.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run --release --example intake_bench
//! ```
//!
//! In a scratch database (dropped at the end):
//! 1. the server runs as a child process (this executable re-run with
//!    `--serve`), so its peak RSS (`VmHWM`) and CPU time are its own, not the
//!    load generator's;
//! 2. at concurrency 1, 4, 32 and 64 (`INTAKE_BENCH_LEVELS`), for
//!    `INTAKE_BENCH_SECS` seconds each (default 10), N tasks send
//!    `submitLead` over HTTP back to back: 60% new clients, 40% returning,
//!    a tenth of the returning ones holding an opportunity created 90 days
//!    ago (expired at the lead's time);
//! 3. the limit, right after each level: the same mix replayed as plain SQL
//!    (sqlx, prepared statements, one connection per task up to 32) straight to the
//!    same database: advisory lock on the contact key, find the client by
//!    contact or create client + contact, expire the due opportunities with
//!    their audit rows, touch the newest live one or open a new one with its
//!    status change, insert the lead, notify, commit;
//! 4. checks that every lead the server acknowledged is in the database;
//! 5. statements and round trips per request, counted by a PostgreSQL
//!    protocol-counting proxy between a second (in-process) server and the
//!    database: `submitLead` for a new client, a returning one, one with an
//!    expired opportunity; the opportunity list with `leads(first: 5)` at
//!    page sizes 5 and 50;
//! 6. the read path's throughput at concurrency 4.
//!
//! For each level and phase it also prints the CPU time per lead of the
//! server, of PostgreSQL and of this process (the load generator, or the
//! limit's SQL clients), of the whole machine, and how busy the machine
//! was: when both phases keep every core busy, their ratio of the machine's
//! CPU per lead predicts server/limit.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crm::auth::Role;
use crm::config::Settings;
use sea_orm::sqlx::{self, AssertSqlSafe, PgPool, postgres::PgPoolOptions};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use uuid::Uuid;

#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/server.rs"]
#[expect(
    dead_code,
    reason = "its scratch database comes from sqlx, with the URL's authority kept whole"
)]
mod server;

/// Returning clients with a live opportunity (created a day ago).
const LIVE_POOL: u64 = 5_000;
/// Returning clients holding an opportunity created 90 days ago, each used once.
const EXPIRED_POOL: usize = 30_000;
const READ_QUERY: &str = "query($n: Int!) { opportunities(first: $n) { edges { node { client { firstName } leads(first: 5) { edges { node { id } } } } } } }";
const SUBMIT: &str = "mutation($i: SubmitLeadInput!) { submitLead(input: $i) { lead { id } } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        let url = args.get(2).ok_or_else(|| anyhow::anyhow!("--serve URL"))?;
        return serve(url).await;
    }
    let admin_url = server::admin_url("the benchmark needs PostgreSQL")?;
    let name = format!("crm_bench_{}", uuid::Uuid::new_v4().simple());
    let admin = PgPool::connect(&admin_url).await?;
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&admin)
        .await?;
    let url = with_path(&admin_url, &name);
    let result = run(&url).await;
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&admin)
    .await?;
    result
}

fn settings(url: &str) -> Settings {
    let mut settings = server::settings(url);
    // The partner rate limit is not what is measured.
    settings.partner_rate_per_min = u32::MAX;
    settings
}

/// The child: the real server on port 0, its port on stdout.
async fn serve(url: &str) -> anyhow::Result<()> {
    let app = server::build(settings(url), true).await?;
    println!("PORT {}", app.port());
    app.run_until_stopped().await?;
    Ok(())
}

/// `url` with its database (path) replaced by `db`.
fn with_path(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    format!("{scheme}://{authority}/{db}")
}

/// `host:port` of a PostgreSQL URL.
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

fn tokens() -> anyhow::Result<(String, String)> {
    let ttl = chrono::Duration::hours(2);
    Ok((
        server::token(Role::Partner, "bench-partner", ttl)?,
        server::token(Role::Admin, "bench-admin", ttl)?,
    ))
}

/// One level's figures: concurrency, the server's run and the CPU it took,
/// the limit's run and the CPU it took.
type Level = (usize, Run, Spent, Run, Spent);

/// CPU ticks (1/100 s) spent during one phase, by who spent them.
#[derive(Default, Clone, Copy)]
struct Spent {
    /// The server process (zero in a limit phase: it is idle).
    server: u64,
    /// This process: the HTTP load generator, or the limit's SQL clients.
    bench: u64,
    /// Every `postgres` process.
    postgres: u64,
    machine: cpu::Machine,
}

impl Spent {
    /// Runs `phase` and says what it spent.
    async fn during<T>(server_pid: u32, phase: impl Future<Output = T>) -> (T, Self) {
        let (server, bench) = (
            cpu::process_ticks(server_pid),
            cpu::process_ticks(std::process::id()),
        );
        let (postgres, machine) = (cpu::Postgres::now(), cpu::Machine::now());
        let out = phase.await;
        let spent = Self {
            server: cpu::process_ticks(server_pid).saturating_sub(server),
            bench: cpu::process_ticks(std::process::id()).saturating_sub(bench),
            postgres: cpu::Postgres::now().since(&postgres),
            machine: cpu::Machine::now().since(machine),
        };
        (out, spent)
    }

    fn all(self) -> u64 {
        self.server + self.bench + self.postgres
    }
}

async fn run(url: &str) -> anyhow::Result<()> {
    let secs: u64 = std::env::var("INTAKE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let levels: Vec<usize> = std::env::var("INTAKE_BENCH_LEVELS")
        .ok()
        .map(|l| l.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 4, 32, 64]);
    let duration = Duration::from_secs(secs);

    let (child, pid, endpoint) = start_server(url).await?;
    let db = PgPoolOptions::new().max_connections(4).connect(url).await?;
    seed(&db).await?;
    let (partner, admin) = tokens()?;
    let mix = Arc::new(Mix::default());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()?;

    let autovacuum: String = sqlx::query_scalar("SHOW autovacuum").fetch_one(&db).await?;
    println!(
        "machine: {} cores, load average before: {}; PostgreSQL autovacuum {autovacuum}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    println!(
        "{secs} s per level; mix: 60% new clients, 36% returning (live opportunity), 4% returning with an expired one"
    );
    // Warm up: connections, prepared statements, first pages.
    drive_server(&http, &endpoint, &partner, &mix, 4, Duration::from_secs(2)).await;

    let mut rows: Vec<Level> = Vec::new();
    let mut acknowledged: Vec<Uuid> = Vec::new();
    for &c in &levels {
        let (server, server_cpu) = Spent::during(
            pid,
            drive_server(&http, &endpoint, &partner, &mix, c, duration),
        )
        .await;
        let (limit, limit_cpu) = drive_limit(url, &mix, c, duration, pid).await?;
        acknowledged.extend(server.ids.iter().copied());
        print_level(c, &server, &limit);
        rows.push((c, server, server_cpu, limit, limit_cpu));
    }
    let hwm = vm_hwm(pid);

    print_table(&rows);
    print_cpu_table(&rows);
    check_stored(&db, &acknowledged, &mix).await?;
    println!(
        "server peak RSS (VmHWM of the server process): {}",
        hwm.map_or("unknown".into(), |kb| format!(
            "{:.1} MB",
            kb as f64 / 1024.0
        ))
    );
    // The intake levels wrote tens of thousands of rows since the seed's
    // ANALYZE. A production PostgreSQL's autovacuum analyzes a table once a
    // tenth of it has changed; where autovacuum is off (this machine's CI
    // configuration), the planner would still see the tables as seeded,
    // take each page of leads for ~1,400 rows of 4 KB, and start a parallel
    // worker for every request (8 ms by `EXPLAIN ANALYZE`, 5 of them before
    // the worker's first row; the scan itself took 0.3).
    sqlx::raw_sql("ANALYZE").execute(&db).await?;
    measure_read(&http, &endpoint, &admin, Duration::from_secs(secs.min(5))).await;
    drop(child);

    count_statements(url, &partner, &admin, &mix).await?;
    db.close().await;
    Ok(())
}

/// The server as a child process (it migrates the database): the child,
/// its pid and its GraphQL endpoint, once it has printed its port.
async fn start_server(url: &str) -> anyhow::Result<(tokio::process::Child, u32, String)> {
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["--serve", url])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or_else(|| anyhow::anyhow!("server exited"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let port: u16 = loop {
        let line = lines
            .next_line()
            .await?
            .ok_or_else(|| anyhow::anyhow!("server exited before printing its port"))?;
        if let Some(p) = line.strip_prefix("PORT ") {
            break p.trim().parse()?;
        }
    };
    Ok((child, pid, format!("http://127.0.0.1:{port}/graphql")))
}

/// One line per level, printed as it ends.
fn print_level(c: usize, server: &Run, limit: &Run) {
    println!(
        "c={c:<3} server {:>7.0} req/s p99 {:>6.1} ms err {} | limit {:>7.0} tps p99 {:>6.1} ms err {} | load {}",
        server.rate(),
        ms(server.pct(0.99)),
        server.errors,
        limit.rate(),
        ms(limit.pct(0.99)),
        limit.errors,
        load_average()
    );
    if let Some(sample) = &server.sample_error {
        println!("      first server error: {sample}");
    }
    if let Some(sample) = &limit.sample_error {
        println!("      first limit error: {sample}");
    }
}

/// A blank line, then a Markdown table's header row and its rule.
fn print_header(columns: &[&str]) {
    println!();
    println!("| {} |", columns.join(" | "));
    println!("|{}", " --- |".repeat(columns.len()));
}

/// The README's table: a row per level.
fn print_table(rows: &[Level]) {
    print_header(&[
        "c",
        "server req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors",
        "server CPU µs/lead",
        "limit tps",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors",
        "server/limit",
    ]);
    for (c, s, s_cpu, l, _) in rows {
        let cpu_per_lead = per_lead(s_cpu.server, s.ok) * 1000.0;
        println!(
            "| {c} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {:.2} |",
            s.rate(),
            ms(s.pct(0.5)),
            ms(s.pct(0.95)),
            ms(s.pct(0.99)),
            s.errors,
            cpu_per_lead,
            l.rate(),
            ms(l.pct(0.5)),
            ms(l.pct(0.95)),
            ms(l.pct(0.99)),
            l.errors,
            s.rate() / l.rate().max(f64::MIN_POSITIVE)
        );
    }
}

/// Where the CPU went in each phase, per lead, and how busy the machine
/// was. When both phases keep the machine's cores busy, each one's rate is
/// about the cores' time over the machine's CPU per lead, so the ratio of
/// those (limit over server) predicts server/limit; a phase that leaves
/// the cores idle is bound by something else (waits on locks or on WAL
/// flushes).
fn print_cpu_table(rows: &[Level]) {
    print_header(&[
        "c",
        "phase",
        "leads/s",
        "server ms CPU/lead",
        "PostgreSQL",
        "load generator or SQL clients",
        "the three",
        "whole machine",
        "machine busy",
        "steal",
    ]);
    for (c, s, s_cpu, l, l_cpu) in rows {
        for (phase, run, spent) in [("server", s, s_cpu), ("limit", l, l_cpu)] {
            println!(
                "| {c} | {phase} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.0}% | {:.0}% |",
                run.rate(),
                per_lead(spent.server, run.ok),
                per_lead(spent.postgres, run.ok),
                per_lead(spent.bench, run.ok),
                per_lead(spent.all(), run.ok),
                per_lead(spent.machine.busy, run.ok),
                spent.machine.busy_share() * 100.0,
                spent.machine.steal_share() * 100.0,
            );
        }
        println!(
            "c={c}: whole machine's CPU per lead, limit / server: {:.2} (measured server/limit {:.2})",
            per_lead(l_cpu.machine.busy, l.ok)
                / per_lead(s_cpu.machine.busy, s.ok).max(f64::MIN_POSITIVE),
            s.rate() / l.rate().max(f64::MIN_POSITIVE)
        );
    }
}

/// Milliseconds of CPU per lead, from clock ticks (1/100 s).
fn per_lead(ticks: u64, leads: u64) -> f64 {
    if leads == 0 {
        return 0.0;
    }
    ticks as f64 * 10.0 / leads as f64
}

/// Every acknowledged lead is in the database; what the mix used.
async fn check_stored(db: &PgPool, acknowledged: &[Uuid], mix: &Mix) -> anyhow::Result<()> {
    let expired_used = mix.expired_next.load(Ordering::Relaxed);
    println!(
        "returning clients with an expired opportunity used: {expired_used} (pool {EXPIRED_POOL}{})",
        if expired_used > EXPIRED_POOL {
            "; EXHAUSTED, the rest were live"
        } else {
            ""
        }
    );
    let found: i64 = sqlx::query_scalar("SELECT count(*) FROM lead WHERE id = ANY($1)")
        .bind(acknowledged)
        .fetch_one(db)
        .await?;
    println!(
        "acknowledged leads: {}, found in the database: {found}{}",
        acknowledged.len(),
        if found as usize == acknowledged.len() {
            " (all)"
        } else {
            " MISSING SOME"
        }
    );
    let expired_by_intake: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM opportunity_expiry_event WHERE applied_by = 'LEAD_INTAKE'",
    )
    .fetch_one(db)
    .await?;
    println!("opportunities expired by intake (server and limit): {expired_by_intake}");
    Ok(())
}

/// The read path's throughput at c=4, on the data written by the levels.
async fn measure_read(http: &reqwest::Client, endpoint: &str, admin: &str, duration: Duration) {
    let read = drive_read(http, endpoint, admin, 4, duration).await;
    println!(
        "read path opportunities(first: 50) {{ client leads(first: 5) }} at c=4: {:.0} req/s, p50 {:.1} ms, p99 {:.1} ms, errors {}",
        read.rate(),
        ms(read.pct(0.5)),
        ms(read.pct(0.99)),
        read.errors
    );
    if let Some(sample) = &read.sample_error {
        println!("      first read error: {sample}");
    }
}

/// Returning clients: `live-K@example.com` with an opportunity created a day
/// ago, `exp-K@example.com` with one created 90 days ago (backdated).
async fn seed(db: &PgPool) -> anyhow::Result<()> {
    for (prefix, count, age) in [
        ("live", LIVE_POOL as usize, "1 day"),
        ("exp", EXPIRED_POOL, "90 days"),
    ] {
        sqlx::query(AssertSqlSafe(format!(
            "WITH c AS (
                INSERT INTO client (id, first_name, last_name, created_at, updated_at)
                SELECT gen_random_uuid(), 'Bench', '{prefix}-' || i, now() - interval '{age}', now() - interval '{age}'
                FROM generate_series(0, {count} - 1) i RETURNING id, last_name),
             cc AS (
                INSERT INTO client_contact (id, client_id, kind, value, created_at)
                SELECT gen_random_uuid(), id, 'EMAIL', last_name || '@example.com', now() FROM c)
             INSERT INTO opportunity (id, client_id, status, created_at, updated_at, expiree, expired_at, created_by)
             SELECT gen_random_uuid(), id, 'NOUVEAU', now() - interval '{age}', now() - interval '{age}', false, NULL, 'bench'
             FROM c"
        )))
        .execute(db)
        .await?;
    }
    sqlx::raw_sql("VACUUM ANALYZE").execute(db).await?;
    Ok(())
}

/// Which client the next lead is for.
#[derive(Default)]
struct Mix {
    expired_next: AtomicUsize,
    seed: AtomicU64,
}

enum Kind {
    New,
    Returning,
    Expired,
}

impl Mix {
    fn rng(&self) -> Rng {
        Rng(0x9E37_79B9_7F4A_7C15 ^ ((self.seed.fetch_add(1, Ordering::Relaxed) + 1) * 0x2545_F491))
    }

    fn next(&self, rng: &mut Rng) -> (Kind, String) {
        let r = rng.next() % 100;
        if r < 60 {
            (
                Kind::New,
                format!("new-{}@example.com", Uuid::new_v4().simple()),
            )
        } else if r < 96 {
            (
                Kind::Returning,
                format!("live-{}@example.com", rng.next() % LIVE_POOL),
            )
        } else {
            let i = self.expired_next.fetch_add(1, Ordering::Relaxed);
            if i < EXPIRED_POOL {
                (Kind::Expired, format!("exp-{i}@example.com"))
            } else {
                (
                    Kind::Returning,
                    format!("live-{}@example.com", rng.next() % LIVE_POOL),
                )
            }
        }
    }
}

/// xorshift64*: enough to pick clients.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// What one load level measured.
#[derive(Default)]
struct Run {
    ok: u64,
    errors: u64,
    elapsed: Duration,
    /// Sorted latencies of the successful requests, in µs.
    latencies: Vec<u32>,
    ids: Vec<Uuid>,
    sample_error: Option<String>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    fn pct(&self, p: f64) -> u32 {
        if self.latencies.is_empty() {
            return 0;
        }
        let i = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1);
        self.latencies[i]
    }

    fn merge(runs: Vec<Run>, elapsed: Duration) -> Run {
        let mut all = Run {
            elapsed,
            ..Run::default()
        };
        for r in runs {
            all.ok += r.ok;
            all.errors += r.errors;
            all.latencies.extend(r.latencies);
            all.ids.extend(r.ids);
            if all.sample_error.is_none() {
                all.sample_error = r.sample_error;
            }
        }
        all.latencies.sort_unstable();
        all
    }
}

fn ms(us: u32) -> f64 {
    f64::from(us) / 1000.0
}

fn lead_body(email: &str) -> serde_json::Value {
    serde_json::json!({
        "query": SUBMIT,
        "variables": { "i": {
            "email": email,
            "firstName": "Bench",
            "lastName": "Lead",
            "source": "intake_bench",
            "message": "Is the car still available?"
        } }
    })
}

/// One `submitLead`: the new lead's id, or what went wrong.
async fn submit(
    http: &reqwest::Client,
    endpoint: &str,
    token: &str,
    email: &str,
) -> Result<Uuid, String> {
    post_graphql(http, endpoint, token, &lead_body(email), |body| {
        body.pointer("/data/submitLead/lead/id")
            .and_then(|v| v.as_str())
            .and_then(|id| id.parse().ok())
    })
    .await
}

/// One GraphQL request: what `answer` reads in the response when the
/// request succeeded without errors, or what went wrong.
async fn post_graphql<T>(
    http: &reqwest::Client,
    endpoint: &str,
    token: &str,
    request: &serde_json::Value,
    answer: impl FnOnce(&serde_json::Value) -> Option<T>,
) -> Result<T, String> {
    let response = http
        .post(endpoint)
        .bearer_auth(token)
        .json(request)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
    answer(&body)
        .filter(|_| status.is_success() && body.get("errors").is_none())
        .ok_or_else(|| format!("{status}: {body}"))
}

async fn drive_server(
    http: &reqwest::Client,
    endpoint: &str,
    token: &str,
    mix: &Arc<Mix>,
    concurrency: usize,
    duration: Duration,
) -> Run {
    let target = Target::new(http, endpoint, token);
    drive(mix, concurrency, duration, move |email| {
        let target = target.clone();
        async move { target.submit(&email).await.map(Some) }
    })
    .await
}

/// Where the load goes: the client, the endpoint and the token, cheap to
/// clone into each request.
#[derive(Clone)]
struct Target {
    http: reqwest::Client,
    endpoint: Arc<str>,
    token: Arc<str>,
}

impl Target {
    fn new(http: &reqwest::Client, endpoint: &str, token: &str) -> Self {
        Self {
            http: http.clone(),
            endpoint: endpoint.into(),
            token: token.into(),
        }
    }

    async fn submit(&self, email: &str) -> Result<Uuid, String> {
        submit(&self.http, &self.endpoint, &self.token, email).await
    }

    async fn read_page(&self, first: usize) -> Result<usize, String> {
        read_page(&self.http, &self.endpoint, &self.token, first).await
    }
}

/// `concurrency` tasks sending one lead after another, each to a new pick
/// of the mix, until `duration` is up; `send` answers with the lead's id
/// when it is known.
async fn drive<F, Fut>(mix: &Arc<Mix>, concurrency: usize, duration: Duration, send: F) -> Run
where
    F: Fn(String) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Option<Uuid>, String>> + Send,
{
    let mix = mix.clone();
    drive_tasks(concurrency, duration, move || {
        let (send, mix) = (send.clone(), mix.clone());
        let mut rng = mix.rng();
        move || send(mix.next(&mut rng).1)
    })
    .await
}

/// `concurrency` tasks, each with a sender from `sender`, sending one
/// request after another until `duration` is up. A request is picked when
/// the sender is called and timed from then until it answers, with the new
/// lead's id when there is one.
async fn drive_tasks<S, T, Fut>(concurrency: usize, duration: Duration, sender: S) -> Run
where
    S: Fn() -> T,
    T: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<Option<Uuid>, String>> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let mut send = sender();
        tasks.push(tokio::spawn(async move {
            let mut run = Run::default();
            while Instant::now() < deadline {
                let request = send();
                let sent = Instant::now();
                match request.await {
                    Ok(id) => {
                        run.ok += 1;
                        run.latencies.push(micros(sent.elapsed()));
                        run.ids.extend(id);
                    }
                    Err(e) => {
                        run.errors += 1;
                        run.sample_error.get_or_insert(e);
                    }
                }
            }
            run
        }));
    }
    let mut runs = Vec::new();
    for t in tasks {
        runs.extend(t.await.ok());
    }
    Run::merge(runs, started.elapsed())
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// The limit: the same mix as SQL straight to the database, one connection
/// per task.
async fn drive_limit(
    url: &str,
    mix: &Arc<Mix>,
    concurrency: usize,
    duration: Duration,
    server_pid: u32,
) -> anyhow::Result<(Run, Spent)> {
    let connections = concurrency.min(limit_connections());
    let pool = PgPoolOptions::new()
        .max_connections(connections as u32)
        .min_connections(connections as u32)
        .connect(url)
        .await?;
    // Open every connection before the clock starts.
    let mut held = Vec::new();
    for _ in 0..connections {
        held.push(pool.acquire().await?);
    }
    drop(held);
    // Measured while the pool's backends live: an exited backend's CPU
    // time leaves /proc with it.
    let send = {
        let pool = pool.clone();
        move |email: String| {
            let pool = pool.clone();
            async move {
                lead_sql(&pool, &email)
                    .await
                    .map(|()| None)
                    .map_err(|e| e.to_string())
            }
        }
    };
    let (run, spent) = Spent::during(server_pid, drive(mix, concurrency, duration, send)).await;
    pool.close().await;
    Ok((run, spent))
}

/// Connections of the limit's pool: one per task up to this many
/// (`INTAKE_BENCH_LIMIT_CONNECTIONS`, default 32), beyond which tasks queue
/// for a connection as the server's requests queue for its pool of 16; the
/// shared database allows 100 connections in all.
fn limit_connections() -> usize {
    std::env::var("INTAKE_BENCH_LIMIT_CONNECTIONS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(32)
}

/// The SQL one lead needs, as prepared statements in one transaction: the
/// advisory lock, the lookup (locking the owner), the owner's live
/// opportunities `FOR UPDATE` with the rule evaluated, then every write in
/// one statement (data-modifying CTEs), as the server sends them.
async fn lead_sql(pool: &PgPool, email: &str) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("lead-intake:EMAIL:{email}"))
        .execute(&mut *tx)
        .await?;
    let owner: Option<Uuid> = sqlx::query_scalar(
        "SELECT c.id FROM client_contact cc JOIN client c ON c.id = cc.client_id
         WHERE cc.kind = 'EMAIL' AND cc.value = $1 FOR UPDATE OF c",
    )
    .bind(email)
    .fetch_optional(&mut *tx)
    .await?;
    let lead = Uuid::now_v7();
    match owner {
        None => new_client_writes(&mut tx, email, lead).await?,
        Some(client_id) => returning_client_writes(&mut tx, email, lead, client_id).await?,
    }
    tx.commit().await
}

fn decision(outcome: &str) -> String {
    format!(r#"{{"outcome":"{outcome}","windowDays":56}}"#)
}

fn notify(opportunity_id: Uuid, lead_id: Uuid) -> String {
    format!(r#"[{{"k":"L","o":"{opportunity_id}","l":"{lead_id}"}}]"#)
}

/// A new client's writes: client, contact, opportunity, status change, lead.
async fn new_client_writes(
    tx: &mut sqlx::PgConnection,
    email: &str,
    lead_id: Uuid,
) -> Result<(), sqlx::Error> {
    let (client_id, opportunity_id) = (Uuid::now_v7(), Uuid::now_v7());
    sqlx::query(
            "WITH c AS (INSERT INTO client (id, first_name, last_name, created_at, updated_at)
                 VALUES ($1, 'Bench', 'Lead', now(), now())),
             cc AS (INSERT INTO client_contact (id, client_id, kind, value, created_at)
                 VALUES ($2, $1, 'EMAIL', $3, now())),
             o AS (INSERT INTO opportunity (id, client_id, status, created_at, updated_at, expiree, created_by)
                 VALUES ($4, $1, 'NOUVEAU', now(), now(), false, 'bench-partner')),
             s AS (INSERT INTO opportunity_status_change (id, opportunity_id, from_status, to_status, changed_by, changed_at)
                 VALUES ($5, $4, NULL, 'NOUVEAU', 'bench-partner', now())),
             l AS (INSERT INTO lead (id, client_id, opportunity_id, outcome, lead_type, source, first_name, last_name,
                     email_raw, email, message, received_at, submitted_by, submitted_role, request_hash, warnings, decision)
                 VALUES ($6, $1, $4, 'NEW_OPPORTUNITY', 'LEAD', 'intake_bench', 'Bench', 'Lead', $3, $3,
                     'Is the car still available?', now(), 'bench-partner', 'PARTNER', $7, '[]'::jsonb, $8::jsonb))
             SELECT pg_notify('crm_events', $9)",
        )
        .bind(client_id)
        .bind(Uuid::now_v7())
        .bind(email)
        .bind(opportunity_id)
        .bind(Uuid::now_v7())
        .bind(lead_id)
        .bind("0".repeat(64))
        .bind(decision("NEW_OPPORTUNITY"))
        .bind(notify(opportunity_id, lead_id))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// A returning client's: its live opportunities locked with the rule
/// evaluated, then the due ones flagged with their audit rows and the lead
/// merged into the newest live one or into a new opportunity.
async fn returning_client_writes(
    tx: &mut sqlx::PgConnection,
    email: &str,
    lead_id: Uuid,
    client_id: Uuid,
) -> Result<(), sqlx::Error> {
    let live: Vec<(Uuid, bool)> = sqlx::query_as(
        "SELECT id, created_at <= now() - interval '56 days'
                 AND status NOT IN ('PRIS_EN_CHARGE','VENDU_NON_LIVRE','SUIVI_LONG_TERME') AS due
             FROM opportunity WHERE client_id = $1 AND NOT expiree
             ORDER BY created_at DESC FOR UPDATE",
    )
    .bind(client_id)
    .fetch_all(&mut *tx)
    .await?;
    let due: Vec<Uuid> = live.iter().filter(|(_, d)| *d).map(|(id, _)| *id).collect();
    let merge_into = live.iter().find(|(_, d)| !d).map(|(id, _)| *id);
    let (opportunity_id, outcome) = match merge_into {
        Some(id) => (id, "MERGED"),
        None => (Uuid::now_v7(), "NEW_OPPORTUNITY"),
    };
    // $1 client, $2 opportunity, $3 due ids, $4 lead, $5 email, $6 hash,
    // $7 decision, $8 outcome, $9 notify payload, $10 status change id.
    sqlx::query(
            "WITH f AS (UPDATE opportunity SET expiree = true, expired_at = now()
                     WHERE id = ANY($3) RETURNING id),
             a AS (INSERT INTO opportunity_expiry_event
                     (opportunity_id, expired_at, window_days, protected_statuses, applied_by)
                 SELECT id, now(), 56, 'PRIS_EN_CHARGE,SUIVI_LONG_TERME,VENDU_NON_LIVRE', 'LEAD_INTAKE' FROM f),
             t AS (UPDATE opportunity SET updated_at = now() WHERE id = $2 AND $8 = 'MERGED'),
             o AS (INSERT INTO opportunity (id, client_id, status, created_at, updated_at, expiree, created_by)
                 SELECT $2, $1, 'NOUVEAU', now(), now(), false, 'bench-partner' WHERE $8 = 'NEW_OPPORTUNITY'),
             s AS (INSERT INTO opportunity_status_change (id, opportunity_id, from_status, to_status, changed_by, changed_at)
                 SELECT $10, $2, NULL, 'NOUVEAU', 'bench-partner', now() WHERE $8 = 'NEW_OPPORTUNITY'),
             l AS (INSERT INTO lead (id, client_id, opportunity_id, outcome, lead_type, source, first_name, last_name,
                     email_raw, email, message, received_at, submitted_by, submitted_role, request_hash, warnings, decision)
                 VALUES ($4, $1, $2, $8, 'LEAD', 'intake_bench', 'Bench', 'Lead', $5, $5,
                     'Is the car still available?', now(), 'bench-partner', 'PARTNER', $6, '[]'::jsonb, $7::jsonb))
             SELECT pg_notify('crm_events', $9)",
        )
        .bind(client_id)
        .bind(opportunity_id)
        .bind(&due)
        .bind(lead_id)
        .bind(email)
        .bind("0".repeat(64))
        .bind(decision(outcome))
        .bind(outcome)
        .bind(notify(opportunity_id, lead_id))
        .bind(Uuid::now_v7())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn drive_read(
    http: &reqwest::Client,
    endpoint: &str,
    token: &str,
    concurrency: usize,
    duration: Duration,
) -> Run {
    let target = Target::new(http, endpoint, token);
    drive_tasks(concurrency, duration, move || {
        let target = target.clone();
        move || {
            let target = target.clone();
            async move { target.read_page(50).await.map(|_| None) }
        }
    })
    .await
}

/// One page of the opportunity list: how many opportunities it returned.
async fn read_page(
    http: &reqwest::Client,
    endpoint: &str,
    token: &str,
    first: usize,
) -> Result<usize, String> {
    let request = serde_json::json!({ "query": READ_QUERY, "variables": { "n": first } });
    post_graphql(http, endpoint, token, &request, |body| {
        body.pointer("/data/opportunities/edges")
            .and_then(|e| e.as_array())
            .map(Vec::len)
    })
    .await
}

/// Statements (`Query` + `Execute` messages) and round trips (`Query` +
/// `Sync`) a client sent to PostgreSQL, counted on the wire.
#[derive(Default)]
struct Wire {
    statements: AtomicU64,
    round_trips: AtomicU64,
}

impl Wire {
    fn read(&self) -> (u64, u64) {
        (
            self.statements.load(Ordering::SeqCst),
            self.round_trips.load(Ordering::SeqCst),
        )
    }
}

/// A TCP proxy to `upstream` that counts the frontend messages.
async fn counting_proxy(upstream: String) -> anyhow::Result<(u16, Arc<Wire>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let wire = Arc::new(Wire::default());
    let counters = wire.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (upstream, counters) = (upstream.clone(), counters.clone());
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                });
                let mut pending: Vec<u8> = Vec::new();
                let mut started = false;
                let mut chunk = vec![0u8; 64 * 1024];
                loop {
                    let n = match client_read.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(&chunk[..n]);
                    count_messages(&mut pending, &mut started, &counters);
                    if server_write.write_all(&chunk[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok((port, wire))
}

/// Consume the complete messages at the front of `pending`.
fn count_messages(pending: &mut Vec<u8>, started: &mut bool, wire: &Wire) {
    let mut at = 0;
    loop {
        let rest = &pending[at..];
        if !*started {
            // Untyped: the startup message (or an SSL/GSS request first).
            if rest.len() < 8 {
                break;
            }
            let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let code = i32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
            if rest.len() < len {
                break;
            }
            if code != 80_877_103 && code != 80_877_104 {
                *started = true;
            }
            at += len;
        } else {
            if rest.len() < 5 {
                break;
            }
            let len = i32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
            if rest.len() < 1 + len {
                break;
            }
            match rest[0] {
                b'Q' => {
                    wire.statements.fetch_add(1, Ordering::SeqCst);
                    wire.round_trips.fetch_add(1, Ordering::SeqCst);
                }
                b'E' => {
                    wire.statements.fetch_add(1, Ordering::SeqCst);
                }
                b'S' => {
                    wire.round_trips.fetch_add(1, Ordering::SeqCst);
                }
                _ => {}
            }
            at += 1 + len;
        }
    }
    pending.drain(..at);
}

/// `url` (user, database) through the proxy on `proxy_port`, without TLS
/// so that the proxy can read the protocol.
fn proxied_url(url: &str, proxy_port: u16) -> String {
    let db_name = url.rsplit('/').next().unwrap_or_default();
    let scheme_user = url
        .split_once("://")
        .map(|(s, rest)| {
            let user = rest
                .split(['/', '?'])
                .next()
                .and_then(|a| a.rsplit_once('@'))
                .map_or(String::new(), |(u, _)| format!("{u}@"));
            format!("{s}://{user}")
        })
        .unwrap_or_default();
    format!("{scheme_user}127.0.0.1:{proxy_port}/{db_name}?sslmode=disable")
}

/// Statements per request, from a second server (in process) whose
/// database connections go through [`counting_proxy`].
async fn count_statements(url: &str, partner: &str, admin: &str, mix: &Mix) -> anyhow::Result<()> {
    let (proxy_port, wire) = counting_proxy(host_port(url)).await?;
    let (port, _) = server::start(settings(&proxied_url(url, proxy_port))).await?;
    let endpoint = format!("http://127.0.0.1:{port}/graphql");
    let http = reqwest::Client::new();

    // Warm the statement caches of the pool's connections.
    for i in 0..40 {
        let _ = submit(&http, &endpoint, partner, &format!("warm-{i}@example.com")).await;
        let _ = submit(&http, &endpoint, partner, &format!("live-{i}@example.com")).await;
        let _ = read_page(&http, &endpoint, admin, 5).await;
        let _ = read_page(&http, &endpoint, admin, 50).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    const SAMPLES: u64 = 20;
    println!();
    println!("statements per request (counted on the wire, mean of {SAMPLES}, caches warm):");
    let expired_base = mix
        .expired_next
        .fetch_add(SAMPLES as usize, Ordering::SeqCst);
    for (label, email_of) in [
        (
            "submitLead, new client",
            Box::new(|i: u64| format!("count-{i}-{}@example.com", Uuid::new_v4().simple()))
                as Box<dyn Fn(u64) -> String>,
        ),
        (
            "submitLead, returning client (live opportunity)",
            Box::new(|i: u64| format!("live-{}@example.com", 1000 + i)),
        ),
        (
            "submitLead, returning client (expired opportunity)",
            Box::new(move |i: u64| format!("exp-{}@example.com", expired_base as u64 + i)),
        ),
    ] {
        let (s0, r0) = wire.read();
        let mut errors = 0;
        for i in 0..SAMPLES {
            if submit(&http, &endpoint, partner, &email_of(i))
                .await
                .is_err()
            {
                errors += 1;
            }
        }
        let (s1, r1) = wire.read();
        println!(
            "  {label:<52} {:>5.1} statements, {:>5.1} round trips{}",
            (s1 - s0) as f64 / SAMPLES as f64,
            (r1 - r0) as f64 / SAMPLES as f64,
            if errors > 0 {
                format!(" ({errors} errors)")
            } else {
                String::new()
            }
        );
    }
    for first in [5, 50] {
        let (s0, r0) = wire.read();
        let mut rows = 0;
        for _ in 0..SAMPLES {
            rows = read_page(&http, &endpoint, admin, first)
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
        }
        let (s1, r1) = wire.read();
        println!(
            "  opportunities(first: {first:<2}) {{ client leads(first: 5) }} ({rows} rows) {:>5.1} statements, {:>5.1} round trips",
            (s1 - s0) as f64 / SAMPLES as f64,
            (r1 - r0) as f64 / SAMPLES as f64
        );
    }
    Ok(())
}

/// Peak resident set of process `pid`, in kB.
fn vm_hwm(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
