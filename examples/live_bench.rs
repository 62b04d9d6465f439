//! Benchmark of live events on PostgreSQL: two instances on one database,
//! subscribers split between them, leads sent over HTTP to both.
//!
//! ```sh
//! cargo build --release --example live_bench
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test ./target/release/examples/live_bench [LEADS] [SUBSCRIBERS] [ROUNDS]
//! ```
//!
//! In a scratch database (dropped at the end) holding 30,000 clients with an
//! opportunity each, statistics gathered, defaults 1,000 leads, 50
//! subscribers (`leadReceived`, AGENT tokens, half on each instance) and 4
//! rounds. Each round sends `LEADS` leads with no subscriber and `LEADS`
//! leads with the subscribers listening, in alternating order (ABBA), so
//! that a machine whose speed drifts during the run (a shared host's steal
//! time, the database growing) weighs on both alike. With subscribers,
//! every subscriber counts the events it got, lost or duplicated. The
//! servers take `CRM_WS_COALESCE_MS` from the environment, as `crm serve`;
//! `LIVE_BENCH_ONLY=with` (or `alone`) runs one kind of phase only, for a
//! profiler attached to this process (the other kind's figures print as
//! NaN).
//!
//! Printed: each phase's intake rate; the totals and their ratio; and the
//! CPU time per lead of the two servers (actix threads), of the benchmark's
//! own clients (senders and the subscribers' receivers, and the event
//! listeners: the tokio runtime's threads) and of PostgreSQL, with and
//! without subscribers.
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm::auth::Role;
use futures_util::{SinkExt, StreamExt};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[path = "support/cpu.rs"]
#[expect(
    dead_code,
    reason = "this benchmark reads threads and PostgreSQL, not whole processes"
)]
mod cpu;
#[path = "support/server.rs"]
mod server;

/// Concurrent HTTP clients sending leads.
const SENDERS: usize = 8;
/// How long subscribers may take to drain after the last lead.
const DRAIN: Duration = Duration::from_secs(120);
const SUBMIT: &str = "mutation($i: SubmitLeadInput!) { submitLead(input: $i) { lead { id } } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = server::admin_url("the benchmark needs PostgreSQL (events across instances)")?;
    let mut args = std::env::args().skip(1);
    let mut next_arg = |default: usize| -> anyhow::Result<usize> {
        Ok(args
            .next()
            .map(|a| a.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let plan = Plan {
        leads: next_arg(1_000)?,
        subscribers: next_arg(50)?,
        rounds: next_arg(4)?,
        only: match std::env::var("LIVE_BENCH_ONLY").as_deref() {
            Ok("with") => Some(true),
            Ok("alone") => Some(false),
            Ok(other) => anyhow::bail!("LIVE_BENCH_ONLY is `with` or `alone`, not {other:?}"),
            Err(_) => None,
        },
    };
    server::in_scratch_database(&admin_url, |url| async move { run(&url, &plan).await }).await
}

struct Plan {
    leads: usize,
    subscribers: usize,
    rounds: usize,
    /// `LIVE_BENCH_ONLY=with` or `alone`: run that phase only (to profile
    /// one side at a time).
    only: Option<bool>,
}

async fn instance(url: &str) -> anyhow::Result<String> {
    let mut settings = server::settings(url);
    if let Ok(ms) = std::env::var("CRM_WS_COALESCE_MS") {
        settings.ws_coalesce_ms = ms.parse()?;
    }
    // The partner rate limit is not what is measured.
    settings.partner_rate_per_min = u32::MAX;
    let (port, _) = server::start(settings).await?;
    Ok(format!("127.0.0.1:{port}"))
}

/// Clients already in the database before the rounds, each with an open
/// opportunity.
const EXISTING_CLIENTS: usize = 30_000;

/// A database in its steady state rather than empty: [`EXISTING_CLIENTS`]
/// clients with an opportunity each, and statistics gathered (as autovacuum
/// would). On empty tables the planner, without statistics, scans the whole
/// `opportunity` table for the subscribers' reads of each batch of events,
/// a cost growing with every lead that a dealership's database never pays.
async fn seed(url: &str) -> anyhow::Result<()> {
    let db = Database::connect(url).await?;
    db.execute_unprepared(&format!(
        "WITH c AS (
            INSERT INTO client (id, first_name, last_name, created_at, updated_at)
            SELECT gen_random_uuid(), 'Existing', 'client-' || i, now(), now()
            FROM generate_series(1, {EXISTING_CLIENTS}) i RETURNING id)
         INSERT INTO opportunity (id, client_id, status, created_at, updated_at, expiree, created_by)
         SELECT gen_random_uuid(), id, 'NOUVEAU', now(), now(), false, 'bench' FROM c"
    ))
    .await?;
    db.execute_unprepared("VACUUM ANALYZE").await?;
    db.close().await?;
    Ok(())
}

/// Wall time and CPU time of one or more phases.
#[derive(Default, Clone, Copy)]
struct Cost {
    leads: usize,
    wall: Duration,
    cpu: Cpu,
}

impl Cost {
    fn add(&mut self, other: Cost) {
        self.leads += other.leads;
        self.wall += other.wall;
        self.cpu = self.cpu.plus(other.cpu);
    }

    fn rate(&self) -> f64 {
        rate(self.leads, self.wall)
    }
}

async fn run(url: &str, plan: &Plan) -> anyhow::Result<()> {
    let instances = [instance(url).await?, instance(url).await?];
    let partner = server::token(Role::Partner, "bench", chrono::Duration::hours(2))?;
    let leads = plan.leads;

    seed(url).await?;
    // Warm-up (connections, caches), not measured.
    send_leads(&instances, &partner, "warm", 50).await?;

    let live_start = Live::now();
    let (mut alone, mut with) = (Cost::default(), Cost::default());
    let mut delivered = Delivered::default();
    for round in 0..plan.rounds {
        for listening in [round % 2 == 1, round % 2 == 0] {
            if plan.only.is_some_and(|only| only != listening) {
                continue;
            }
            let tag = format!("r{round}-{}", if listening { "with" } else { "alone" });
            let (label, cost) = if listening {
                let sockets = subscribers(&instances, plan).await?;
                let cost = measure(send_leads(&instances, &partner, &tag, leads)).await?;
                delivered.count(sockets, leads).await?;
                with.add(cost);
                (format!("{} subscribers:", plan.subscribers), cost)
            } else {
                let cost = measure(send_leads(&instances, &partner, &tag, leads)).await?;
                alone.add(cost);
                ("no subscriber: ".to_owned(), cost)
            };
            println!(
                "round {round}, {label} {leads} leads in {:>7.2?} = {:>6.1} leads/s",
                cost.wall,
                cost.rate()
            );
        }
    }
    report(plan, alone, with, &delivered, Live::now().since(live_start));
    Ok(())
}

/// The subscribers of one round, listening, split between the instances;
/// each counts its events in a task of its own.
async fn subscribers(
    instances: &[String; 2],
    plan: &Plan,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<anyhow::Result<(usize, usize)>>>> {
    let mut counters = Vec::new();
    for i in 0..plan.subscribers {
        let token = server::token(
            Role::Agent,
            &format!("agent-{i}"),
            chrono::Duration::hours(2),
        )?;
        let socket = subscribe(&instances[i % 2], &token).await?;
        counters.push(tokio::spawn(count_events(socket, plan.leads)));
    }
    Ok(counters)
}

/// What the subscribers of all rounds received.
#[derive(Default)]
struct Delivered {
    /// Subscriptions that got every event of their round.
    complete: usize,
    received: usize,
    duplicates: usize,
    /// The longest a round's subscribers took after its last lead.
    drained: Duration,
}

impl Delivered {
    /// Wait for a round's subscribers (`leads` events each) and add up.
    async fn count(
        &mut self,
        counters: Vec<tokio::task::JoinHandle<anyhow::Result<(usize, usize)>>>,
        leads: usize,
    ) -> anyhow::Result<()> {
        let last_lead = Instant::now();
        for counter in counters {
            let (distinct, duplicates) = counter.await??;
            self.received += distinct;
            self.duplicates += duplicates;
            self.complete += usize::from(distinct == leads);
        }
        self.drained = self.drained.max(last_lead.elapsed());
        Ok(())
    }
}

/// The totals, the deliveries, the live counters and the CPU per lead.
fn report(plan: &Plan, alone: Cost, with: Cost, delivered: &Delivered, live: Live) {
    let (leads, subscribers) = (plan.leads, plan.subscribers);
    println!(
        "total: no subscriber {:.1} leads/s, {subscribers} subscribers {:.1} leads/s: {:+.1}%",
        alone.rate(),
        with.rate(),
        (with.rate() / alone.rate() - 1.0) * 100.0
    );
    println!(
        "delivered: {}/{} subscriptions got all {leads} events of their round; \
         {} distinct events in all (expected {}), {} duplicates; \
         the slowest drained {:.2?} after the last lead",
        delivered.complete,
        subscribers * plan.rounds,
        delivered.received,
        leads * subscribers * plan.rounds,
        delivered.duplicates,
        delivered.drained,
    );
    println!(
        "live: {} events resolved, {} delivered; {:.1} resolved per read of rows, \
         {:.1} delivered per socket write",
        live.resolved,
        live.delivered,
        live.resolved as f64 / live.reads.max(1) as f64,
        live.delivered as f64 / live.writes.max(1) as f64,
    );
    println!("CPU ms per lead      servers   bench clients   PostgreSQL   all");
    for (label, cost) in [("no subscriber", alone), ("with subscribers", with)] {
        let per_lead = |ticks: u64| ticks as f64 * 10.0 / cost.leads as f64;
        println!(
            "{label:<20} {:>7.2}   {:>13.2}   {:>10.2}   {:>4.2}",
            per_lead(cost.cpu.servers),
            per_lead(cost.cpu.clients),
            per_lead(cost.cpu.postgres),
            per_lead(cost.cpu.servers + cost.cpu.clients + cost.cpu.postgres),
        );
    }
}

/// Run `phase` (which sends leads and returns how many), with its wall and
/// CPU time.
async fn measure(phase: impl Future<Output = anyhow::Result<usize>>) -> anyhow::Result<Cost> {
    let before = CpuSnapshot::now();
    let started = Instant::now();
    let leads = phase.await?;
    let wall = started.elapsed();
    Ok(Cost {
        leads,
        wall,
        cpu: CpuSnapshot::now().since(&before),
    })
}

/// The servers' live counters (both instances: one process, one registry).
#[derive(Default, Clone, Copy)]
struct Live {
    resolved: u64,
    delivered: u64,
    reads: u64,
    writes: u64,
}

impl Live {
    fn now() -> Self {
        let text = crm::metrics::render();
        let counter = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
                .map_or(0, |v| v as u64)
        };
        Self {
            resolved: counter("crm_live_events_resolved_total"),
            delivered: counter("crm_live_events_delivered_total"),
            reads: counter("crm_live_row_reads_total"),
            writes: counter("crm_live_socket_writes_total"),
        }
    }

    fn since(self, before: Self) -> Self {
        Self {
            resolved: self.resolved - before.resolved,
            delivered: self.delivered - before.delivered,
            reads: self.reads - before.reads,
            writes: self.writes - before.writes,
        }
    }
}

/// CPU time, in clock ticks (1/100 s), by where it was spent.
#[derive(Default, Clone, Copy)]
struct Cpu {
    /// This process's actix threads: the two servers.
    servers: u64,
    /// This process's other threads: the benchmark's clients.
    clients: u64,
    /// Every `postgres` process.
    postgres: u64,
}

/// What [`Cpu`] is measured from: this process's threads so far, and each
/// `postgres` process's time so far.
struct CpuSnapshot {
    threads: Cpu,
    postgres: cpu::Postgres,
}

impl CpuSnapshot {
    fn now() -> Self {
        let mut threads = Cpu::default();
        for (_, comm, ticks) in cpu::stats("/proc/self/task") {
            if comm.starts_with("actix") {
                threads.servers += ticks;
            } else {
                threads.clients += ticks;
            }
        }
        Self {
            threads,
            postgres: cpu::Postgres::now(),
        }
    }

    fn since(&self, before: &Self) -> Cpu {
        Cpu {
            servers: self.threads.servers.saturating_sub(before.threads.servers),
            clients: self.threads.clients.saturating_sub(before.threads.clients),
            postgres: self.postgres.since(&before.postgres),
        }
    }
}

impl Cpu {
    fn plus(self, other: Self) -> Self {
        Self {
            servers: self.servers + other.servers,
            clients: self.clients + other.clients,
            postgres: self.postgres + other.postgres,
        }
    }
}

fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

/// Send `n` distinct leads, spread over both instances by [`SENDERS`]
/// clients; returns `n` once all are acknowledged.
async fn send_leads(
    instances: &[String; 2],
    token: &str,
    tag: &str,
    n: usize,
) -> anyhow::Result<usize> {
    let client = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for sender in 0..SENDERS {
        let (client, next, token) = (client.clone(), next.clone(), token.to_owned());
        let url = format!("http://{}/graphql", instances[sender % 2]);
        let tag = tag.to_owned();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                let body: Value = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "query": SUBMIT, "variables": {
                        "i": { "email": format!("{tag}-{i}@bench.example") } } }))
                    .send()
                    .await?
                    .json()
                    .await?;
                anyhow::ensure!(body.get("errors").is_none(), "{body}");
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(n)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn subscribe(address: &str, token: &str) -> anyhow::Result<Socket> {
    let mut request = format!("ws://{address}/graphql").into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
    // Reads of at most 16 KiB: tungstenite zero-fills its read buffer
    // (128 KiB by default) before every read, which was a quarter of these
    // clients' CPU time; a write of the server's is rarely over 8 KiB.
    let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), false).await?;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    socket.send(Message::Text(init.to_string().into())).await?;
    let subscribe = json!({ "type": "subscribe", "id": "1", "payload": {
        "query": "subscription { leadReceived { lead { id } opportunity { id status } } }" } });
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await?;
    // The acknowledgement, then a ping round trip: the subscription is live.
    socket
        .send(Message::Text(json!({ "type": "ping" }).to_string().into()))
        .await?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) if text.contains("\"pong\"") => break,
            Some(Ok(_)) => {}
            other => anyhow::bail!("subscription failed: {other:?}"),
        }
    }
    // Give the server a moment to start the subscription stream.
    tokio::time::sleep(Duration::from_millis(20)).await;
    Ok(socket)
}

/// Count distinct `leadReceived` events until `expected` or [`DRAIN`].
/// Each message is parsed into borrowed, typed fields only (the clients
/// share the servers' two cores: their cost weighs on what is measured).
async fn count_events(mut socket: Socket, expected: usize) -> anyhow::Result<(usize, usize)> {
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    let counting = async {
        while seen.len() < expected {
            let Some(frame) = socket.next().await else {
                break;
            };
            let Message::Text(text) = frame? else {
                continue;
            };
            let message: Incoming<'_> = serde_json::from_str(&text)?;
            let Some(payload) = message.payload.filter(|_| message.kind == "next") else {
                continue;
            };
            anyhow::ensure!(payload.errors.is_none(), "{text}");
            let id = payload
                .data
                .map(|data| data.lead_received.lead.id)
                .ok_or_else(|| anyhow::anyhow!("no lead in {text}"))?;
            if !seen.insert(uuid::Uuid::parse_str(id)?) {
                duplicates += 1;
            }
        }
        Ok::<_, anyhow::Error>(())
    };
    if let Ok(counted) = tokio::time::timeout(DRAIN, counting).await {
        counted?;
    }
    Ok((seen.len(), duplicates))
}

/// What a subscriber reads of a server message.
#[derive(serde::Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    payload: Option<NextPayload<'a>>,
}

#[derive(serde::Deserialize)]
struct NextPayload<'a> {
    #[serde(borrow)]
    data: Option<LeadData<'a>>,
    errors: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct LeadData<'a> {
    #[serde(rename = "leadReceived", borrow)]
    lead_received: LeadReceived<'a>,
}

#[derive(serde::Deserialize)]
struct LeadReceived<'a> {
    #[serde(borrow)]
    lead: LeadId<'a>,
}

#[derive(serde::Deserialize)]
struct LeadId<'a> {
    id: &'a str,
}
