//! Benchmark of live events on PostgreSQL: two instances on one database,
//! subscribers split between them, leads sent over HTTP to both.
//!
//! ```sh
//! cargo build --release --example live_bench
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test ./target/release/examples/live_bench [LEADS] [SUBSCRIBERS]
//! ```
//!
//! In a scratch database (dropped at the end), defaults 1,000 leads and 50
//! subscribers (`leadReceived`, AGENT tokens, half on each instance):
//! 1. intake throughput with no subscriber;
//! 2. the same with the subscribers listening: throughput, and for every
//!    subscriber how many events arrived, lost or duplicated;
//! 3. no subscriber again (the database has grown meanwhile).
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use crm::auth::{JwtKeys, Role};
use crm::clock::SystemClock;
use crm::config::Settings;
use crm::startup::{Application, RunOptions};
use futures_util::{SinkExt, StreamExt};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SECRET: &str = "bench-secret-of-at-least-thirty-two-bytes";
/// Concurrent HTTP clients sending leads.
const SENDERS: usize = 8;
/// How long subscribers may take to drain after the last lead.
const DRAIN: Duration = Duration::from_secs(120);
const SUBMIT: &str = "mutation($i: SubmitLeadInput!) { submitLead(input: $i) { lead { id } } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    anyhow::ensure!(
        admin_url.starts_with("postgres"),
        "the benchmark needs PostgreSQL (events across instances)"
    );
    let mut args = std::env::args().skip(1);
    let leads: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1_000);
    let subscribers: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(50);
    let name = format!("crm_bench_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&admin_url).await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await?;
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(b, _)| b);
    let result = run(&format!("{base}/{name}"), leads, subscribers).await;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await?;
    result
}

async fn instance(url: &str) -> anyhow::Result<String> {
    let mut settings = Settings::with_database(url);
    settings.jwt_secret = Some(SECRET.into());
    // The partner rate limit is not what is measured.
    settings.partner_rate_per_min = u32::MAX;
    let app = Application::build(
        settings,
        Arc::new(SystemClock),
        RunOptions {
            sweep: false,
            handle_signals: false,
        },
    )
    .await?;
    let address = format!("127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    Ok(address)
}

async fn run(url: &str, leads: usize, subscribers: usize) -> anyhow::Result<()> {
    let instances = [instance(url).await?, instance(url).await?];
    let keys = JwtKeys::hs256(SECRET.as_bytes(), "crm", "crm-api");
    let partner = keys.issue(
        Role::Partner,
        "bench",
        chrono::Duration::hours(2),
        Utc::now(),
    )?;

    // Warm-up (connections, caches), not measured.
    send_leads(&instances, &partner, "warm", 50).await?;

    let alone = send_leads(&instances, &partner, "alone", leads).await?;
    println!(
        "no subscriber:        {leads} leads in {:>7.2?} = {:>6.1} leads/s",
        alone,
        rate(leads, alone)
    );

    let mut listening = Vec::new();
    for i in 0..subscribers {
        let token = keys.issue(
            Role::Agent,
            &format!("agent-{i}"),
            chrono::Duration::hours(2),
            Utc::now(),
        )?;
        listening.push(subscribe(&instances[i % 2], &token).await?);
    }
    let mut counters = Vec::new();
    for socket in listening {
        counters.push(tokio::spawn(count_events(socket, leads)));
    }
    let with = send_leads(&instances, &partner, "with", leads).await?;
    println!(
        "{subscribers} subscribers:       {leads} leads in {:>7.2?} = {:>6.1} leads/s ({:+.1}% vs no subscriber)",
        with,
        rate(leads, with),
        (rate(leads, with) / rate(leads, alone) - 1.0) * 100.0
    );
    let drain_started = Instant::now();
    let mut complete = 0;
    let (mut received, mut duplicates) = (0, 0);
    for counter in counters {
        let (distinct, dup) = counter.await??;
        received += distinct;
        duplicates += dup;
        complete += usize::from(distinct == leads);
    }
    println!(
        "delivered: {complete}/{subscribers} subscribers got all {leads} events; \
         {received} distinct events in all (expected {}), {duplicates} duplicates; \
         last one drained {:.2?} after the last lead",
        leads * subscribers,
        drain_started.elapsed()
    );

    let again = send_leads(&instances, &partner, "again", leads).await?;
    println!(
        "no subscriber again:  {leads} leads in {:>7.2?} = {:>6.1} leads/s",
        again,
        rate(leads, again)
    );
    Ok(())
}

fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

/// Send `n` distinct leads, spread over both instances by [`SENDERS`]
/// clients; returns the wall time.
async fn send_leads(
    instances: &[String; 2],
    token: &str,
    tag: &str,
    n: usize,
) -> anyhow::Result<Duration> {
    let client = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
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
    Ok(started.elapsed())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn subscribe(address: &str, token: &str) -> anyhow::Result<Socket> {
    let mut request = format!("ws://{address}/graphql").into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
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
async fn count_events(mut socket: Socket, expected: usize) -> anyhow::Result<(usize, usize)> {
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    let deadline = tokio::time::Instant::now() + DRAIN;
    while seen.len() < expected {
        let frame = match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(frame)) => frame?,
            Ok(None) | Err(_) => break,
        };
        let Message::Text(text) = frame else { continue };
        let message: Value = serde_json::from_str(&text)?;
        if message["type"] != "next" {
            continue;
        }
        anyhow::ensure!(message["payload"].get("errors").is_none(), "{message}");
        let id = message["payload"]["data"]["leadReceived"]["lead"]["id"].to_string();
        if !seen.insert(id) {
            duplicates += 1;
        }
    }
    Ok((seen.len(), duplicates))
}
