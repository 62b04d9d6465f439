//! Subscriptions over a real WebSocket (`graphql-transport-ws`), against the
//! spawned server, on SQLite and PostgreSQL; across two `crm serve`
//! processes on PostgreSQL.
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use crm::auth::Role;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{
    ServerProcess, TestApp, set_status, spawn_app, spawn_app_configured, spawn_app_on,
    submit_concurrently, submit_lead, sweep_on_day,
};

/// How long a test waits for a message it expects.
const WAIT: StdDuration = StdDuration::from_secs(10);
/// How long a test listens to make sure nothing arrives.
const QUIET: StdDuration = StdDuration::from_millis(700);

const LEAD_RECEIVED: &str =
    "subscription { leadReceived { lead { id email } opportunity { id status } } }";

/// A `graphql-transport-ws` client.
pub struct Ws {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How the server closed the socket.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl Ws {
    /// Open a socket on `/graphql` (no `connection_init` yet).
    pub async fn open(app: &TestApp) -> Self {
        let url = app.address.replacen("http://", "ws://", 1) + "/graphql";
        let mut request = url.into_client_request().expect("ws request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket handshake");
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "graphql-transport-ws"
        );
        Self { socket }
    }

    /// Open and authenticate with `token`; asserts the acknowledgement.
    pub async fn connect(app: &TestApp, token: &str) -> Self {
        let mut ws = Self::open(app).await;
        ws.send(json!({
            "type": "connection_init",
            "payload": { "Authorization": format!("Bearer {token}") }
        }))
        .await;
        let ack = ws.next().await.expect("connection_ack");
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        ws
    }

    pub async fn as_role(app: &TestApp, role: Role) -> Self {
        Self::connect(app, &app.token(role)).await
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({
            "type": "subscribe",
            "id": id,
            "payload": { "query": query, "variables": variables }
        }))
        .await;
    }

    /// The next protocol message within `within`; `Err` when the server
    /// closed the socket, `Ok(None)` when nothing came.
    pub async fn next_within(&mut self, within: StdDuration) -> Result<Option<Value>, Closed> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return Ok(None),
                Ok(frame) => frame,
            };
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Ok(Some(serde_json::from_str(&text).expect("JSON message")));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(frame.map_or(
                        Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                        |f| Closed {
                            code: u16::from(f.code),
                            reason: f.reason.to_string(),
                        },
                    ));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    return Err(Closed {
                        code: 1006,
                        reason: String::new(),
                    });
                }
            }
        }
    }

    /// The next protocol message, asserting one comes in time.
    pub async fn next(&mut self) -> Option<Value> {
        self.next_within(WAIT).await.expect("socket open")
    }

    /// The payload of the next `next` message for `id`.
    pub async fn data(&mut self, id: &str) -> Value {
        let message = self.next().await.expect("a message in time");
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["id"], id, "{message}");
        assert!(message["payload"].get("errors").is_none(), "{message}");
        message["payload"]["data"].clone()
    }

    /// The next `opportunityChanged` event of subscription `id`: checks its
    /// `change` and opportunity id, and returns the opportunity.
    pub async fn change(&mut self, id: &str, change: &str, opportunity: &str) -> Value {
        let data = self.data(id).await;
        let changed = &data["opportunityChanged"];
        assert_eq!(changed["change"], change, "{data}");
        assert_eq!(changed["opportunity"]["id"], opportunity, "{data}");
        changed["opportunity"].clone()
    }

    /// Wait for the server to close the socket.
    pub async fn closed(&mut self) -> Closed {
        loop {
            match self.next_within(WAIT).await {
                Err(closed) => return closed,
                Ok(Some(_)) => {}
                Ok(None) => panic!("the server did not close the socket in time"),
            }
        }
    }
}

async fn new_lead(app: &TestApp, email: &str) -> Value {
    submit_lead(app, json!({ "email": email })).await
}

/// The id of the opportunity a lead from `email` went into.
async fn opportunity_of(app: &TestApp, email: &str) -> String {
    let lead = new_lead(app, email).await;
    lead["opportunity"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_agent_subscribed_to_lead_received_gets_each_new_lead_with_its_opportunity() {
    let app = spawn_app().await;
    let mut ws = Ws::as_role(&app, Role::Agent).await;
    ws.subscribe("1", LEAD_RECEIVED, json!({})).await;
    // The subscription is registered once the server has read it; a ping
    // round trip proves it has.
    ws.send(json!({ "type": "ping" })).await;
    assert_eq!(ws.next().await.unwrap()["type"], "pong");

    let first = new_lead(&app, "live-1@example.com").await;
    let second = new_lead(&app, "live-2@example.com").await;
    for sent in [first, second] {
        let data = ws.data("1").await;
        assert_eq!(data["leadReceived"]["lead"]["id"], sent["lead"]["id"]);
        assert_eq!(data["leadReceived"]["lead"]["email"], sent["lead"]["email"]);
        assert_eq!(
            data["leadReceived"]["opportunity"]["id"],
            sent["opportunity"]["id"]
        );
        assert_eq!(data["leadReceived"]["opportunity"]["status"], "NOUVEAU");
    }
}

/// Subscribe and wait until the server has registered it.
async fn subscribed(ws: &mut Ws, id: &str, query: &str, variables: Value) {
    ws.subscribe(id, query, variables).await;
    ws.send(json!({ "type": "ping" })).await;
    let pong = ws.next().await.expect("pong");
    assert_eq!(pong["type"], "pong", "{pong}");
}

#[tokio::test]
async fn connection_init_without_a_valid_token_closes_the_socket_with_4403() {
    let app = spawn_app().await;
    let expired = app
        .keys
        .issue(
            Role::Agent,
            "agent-1",
            Duration::hours(1),
            Utc::now() - Duration::hours(2),
        )
        .unwrap();
    let payloads = [
        json!({}),
        json!({ "Authorization": "Bearer not-a-token" }),
        json!({ "Authorization": "Basic YWRtaW46YWRtaW4=" }),
        json!({ "Authorization": format!("Bearer {expired}") }),
    ];
    for payload in payloads {
        let mut ws = Ws::open(&app).await;
        ws.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        let closed = ws.closed().await;
        assert_eq!(closed.code, 4403, "{payload}: {closed:?}");
        assert!(closed.reason.starts_with("Forbidden"), "{closed:?}");
    }
}

#[tokio::test]
async fn a_subscribe_before_connection_init_closes_the_socket_with_4401() {
    let app = spawn_app().await;
    let mut ws = Ws::open(&app).await;
    ws.subscribe("1", LEAD_RECEIVED, json!({})).await;
    assert_eq!(ws.closed().await.code, 4401);
}

#[tokio::test]
async fn a_plain_get_on_graphql_still_answers_queries() {
    let app = spawn_app().await;
    let response = app.get_as("/graphql?query={me{role}}", Role::Agent).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["me"]["role"], "AGENT");
}

#[tokio::test]
async fn the_socket_closes_when_the_token_expires() {
    let app = spawn_app().await;
    let short = app
        .keys
        .issue(Role::Agent, "agent-1", Duration::seconds(2), Utc::now())
        .unwrap();
    let mut ws = Ws::connect(&app, &short).await;
    subscribed(&mut ws, "1", LEAD_RECEIVED, json!({})).await;
    let closed = ws.closed().await;
    assert_eq!(closed.code, 4403);
    assert!(closed.reason.contains("token expired"), "{closed:?}");
}

#[tokio::test]
async fn a_partner_is_refused_at_connection_init() {
    let app = spawn_app().await;
    let mut ws = Ws::open(&app).await;
    ws.send(json!({
        "type": "connection_init",
        "payload": { "Authorization": format!("Bearer {}", app.token(Role::Partner)) }
    }))
    .await;
    let closed = ws.closed().await;
    assert_eq!(closed.code, 4403, "{closed:?}");
}

#[tokio::test]
async fn queries_and_mutations_are_refused_over_the_websocket() {
    let app = spawn_app().await;
    let mut ws = Ws::as_role(&app, Role::Admin).await;
    for (id, query) in [
        ("q", "{ me { role } }"),
        (
            "m",
            "mutation { submitLead(input: {email: \"ws@example.com\"}) { lead { id } } }",
        ),
    ] {
        ws.subscribe(id, query, json!({})).await;
        let message = ws.next().await.unwrap();
        assert_eq!(message["type"], "error", "{message}");
        assert_eq!(message["id"], id);
        assert_eq!(
            message["payload"][0]["extensions"]["code"],
            "BAD_USER_INPUT"
        );
    }
    assert_eq!(app.count("lead").await, 0);
}

const CHANGED: &str =
    "subscription($id: ID) { opportunityChanged(id: $id) { change opportunity { id status } } }";

#[tokio::test]
async fn opportunity_changed_reports_status_changes_and_merged_leads_of_the_watched_opportunity() {
    let app = spawn_app().await;
    let id = opportunity_of(&app, "watched@example.com").await;
    let other_id = opportunity_of(&app, "other@example.com").await;
    let mut ws = Ws::as_role(&app, Role::Agent).await;
    subscribed(&mut ws, "w", CHANGED, json!({ "id": id })).await;

    set_status(&app, &other_id, "PRIS_EN_CHARGE", Role::Agent).await;
    set_status(&app, &id, "PRIS_EN_CHARGE", Role::Agent).await;
    let opportunity = ws.change("w", "STATUS_CHANGED", &id).await;
    assert_eq!(opportunity["status"], "PRIS_EN_CHARGE");

    new_lead(&app, "watched@example.com").await;
    ws.change("w", "LEAD_MERGED", &id).await;
    assert_eq!(ws.next_within(QUIET).await, Ok(None));
}

/// The expiry sweep at a controlled time: an ADMIN's stream gets `EXPIRED`
/// with `expiree`; an AGENT's gets nothing, and its next event is the next
/// status change.
#[tokio::test]
async fn an_expiry_reaches_admin_streams_only() {
    let app = spawn_app().await;
    let old_id = opportunity_of(&app, "old@example.com").await;
    let kept_id = opportunity_of(&app, "kept@example.com").await;

    let (mut admin, mut agent) = admin_and_agent_watching(
        &app,
        "subscription { opportunityChanged { change opportunity { id expiree expiredAt } } }",
    )
    .await;
    // Protect one opportunity, with both streams open: its event comes
    // first on each (on PostgreSQL, events arrive through LISTEN, after the
    // writer's commit, so one sent before subscribing could still arrive).
    set_status(&app, &kept_id, "PRIS_EN_CHARGE", Role::Agent).await;
    for (ws, id) in [(&mut admin, "a"), (&mut agent, "g")] {
        ws.change(id, "STATUS_CHANGED", &kept_id).await;
    }

    let report = sweep_on_day(&app, 60).await;
    assert_eq!(report.expired, 1);

    let expired = admin.change("a", "EXPIRED", &old_id).await;
    assert_eq!(expired["expiree"], true);

    set_status(&app, &kept_id, "SUIVI_LONG_TERME", Role::Agent).await;
    agent.change("g", "STATUS_CHANGED", &kept_id).await;
    assert_eq!(agent.next_within(QUIET).await, Ok(None));
}

#[tokio::test]
async fn a_non_admin_naming_expiree_in_a_subscription_gets_the_unknown_field_error() {
    let app = spawn_app().await;
    let query = "{ opportunities(first: 1) { edges { node { expiree } } } }";
    let over_http = app.post_query(query, Role::Agent).await;
    let http_message = over_http["errors"][0]["message"].clone();
    assert!(
        http_message
            .as_str()
            .unwrap()
            .contains("Unknown field \"expiree\""),
        "{over_http}"
    );

    let mut ws = Ws::as_role(&app, Role::Agent).await;
    ws.subscribe(
        "x",
        "subscription { opportunityChanged { change opportunity { id expiree } } }",
        json!({}),
    )
    .await;
    // async-graphql answers a document that fails validation with `next`
    // carrying the errors, then `complete`.
    let message = ws.next().await.unwrap();
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(message["id"], "x");
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    let errors = message["payload"]["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{message}");
    assert_eq!(
        errors[0]["message"], "Unknown field \"expiree\" on type \"Opportunity\".",
        "{message}"
    );
    assert!(!message.to_string().contains("expiree#"), "{message}");

    // The admin may name it.
    let mut admin = Ws::as_role(&app, Role::Admin).await;
    subscribed(
        &mut admin,
        "y",
        "subscription { opportunityChanged { opportunity { id expiree } } }",
        json!({}),
    )
    .await;
    assert_eq!(admin.next_within(QUIET).await, Ok(None));
}

#[tokio::test]
async fn subscriptions_per_connection_and_connections_per_user_are_capped() {
    let app = spawn_app().await;
    let max_subs = crm::graphql::subscription::MAX_SUBSCRIPTIONS_PER_CONNECTION;
    let mut ws = Ws::as_role(&app, Role::Agent).await;
    // One more than allowed: whichever the server starts last is refused.
    for i in 0..=max_subs {
        ws.subscribe(&i.to_string(), LEAD_RECEIVED, json!({})).await;
    }
    let message = ws.next().await.unwrap();
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{message}"
    );
    let refused_id = message["id"].as_str().unwrap().to_owned();
    let completed = ws.next().await.unwrap();
    assert_eq!(completed["type"], "complete");
    assert_eq!(completed["id"], refused_id.as_str());
    // Completing one frees its place.
    let done = if refused_id == "0" { "1" } else { "0" };
    ws.send(json!({ "type": "complete", "id": done })).await;
    let completed = ws.next().await.unwrap();
    assert_eq!(completed["type"], "complete");
    assert_eq!(completed["id"], done);
    subscribed(&mut ws, "again", LEAD_RECEIVED, json!({})).await;
    new_lead(&app, "cap@example.com").await;
    let mut got = std::collections::HashSet::new();
    for _ in 0..max_subs {
        let message = ws.next().await.unwrap();
        assert_eq!(message["type"], "next", "{message}");
        assert!(message["payload"].get("errors").is_none(), "{message}");
        got.insert(message["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(got.len(), max_subs);
    assert!(got.contains("again"), "{got:?}");
    assert!(!got.contains(done) && !got.contains(&refused_id), "{got:?}");

    let max_connections = crm::live::MAX_CONNECTIONS_PER_PRINCIPAL;
    let token = app.token_for(Role::Agent, "agent-many");
    let mut open = Vec::new();
    for _ in 0..max_connections {
        open.push(Ws::connect(&app, &token).await);
    }
    let mut refused = Ws::open(&app).await;
    refused
        .send(json!({
            "type": "connection_init",
            "payload": { "Authorization": format!("Bearer {token}") }
        }))
        .await;
    assert_eq!(refused.closed().await.code, 4429);
    // Another user is not affected; a closed connection frees a place.
    Ws::as_role(&app, Role::Admin).await;
    drop(open.pop());
    let mut retry = None;
    for _ in 0..50 {
        let mut ws = Ws::open(&app).await;
        ws.send(json!({
            "type": "connection_init",
            "payload": { "Authorization": format!("Bearer {token}") }
        }))
        .await;
        if let Ok(Some(ack)) = ws.next_within(WAIT).await {
            retry = Some(ack);
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert_eq!(retry.expect("a place freed")["type"], "connection_ack");
}

/// Two servers in one process on the same database (the in-process bus on
/// SQLite, LISTEN/NOTIFY on PostgreSQL): a lead sent to one reaches a
/// subscriber on the other, once.
#[tokio::test]
async fn a_lead_sent_to_one_instance_reaches_a_subscriber_on_another_once() {
    let a = spawn_app().await;
    let b = spawn_app_on(a.database.clone(), a.clock.clone()).await;
    let mut ws = Ws::as_role(&b, Role::Agent).await;
    subscribed(&mut ws, "1", LEAD_RECEIVED, json!({})).await;
    let sent = new_lead(&a, "across@example.com").await;
    let data = ws.data("1").await;
    assert_eq!(data["leadReceived"]["lead"]["id"], sent["lead"]["id"]);
    assert_eq!(ws.next_within(QUIET).await, Ok(None));
}

/// PostgreSQL: two `crm serve` processes; a lead sent to A reaches a
/// subscriber on B. (SQLite events stay in their process.)
#[tokio::test]
async fn on_postgres_a_lead_sent_to_one_crm_serve_process_reaches_a_subscriber_on_another() {
    let database = std::sync::Arc::new(crate::helpers::TestDatabase::create().await);
    if !database.is_postgres() {
        return;
    }
    let first = ServerProcess::start(database.clone()).await;
    let second = ServerProcess::start(database).await;
    let mut ws = Ws::as_role(&second.app, Role::Agent).await;
    subscribed(&mut ws, "1", LEAD_RECEIVED, json!({})).await;
    let sent = new_lead(&first.app, "processes@example.com").await;
    let data = ws.data("1").await;
    assert_eq!(data["leadReceived"]["lead"]["id"], sent["lead"]["id"]);
    assert_eq!(ws.next_within(QUIET).await, Ok(None));
}

/// PostgreSQL: the listener's connection is killed; subscribers are told
/// events may have been missed (their stream ends with an error, nothing
/// invented), and the listener listens again by itself.
#[tokio::test]
async fn on_postgres_the_listener_reconnects_after_its_connection_is_killed() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app().await;
    let Some((_, name)) = app.database.postgres_admin() else {
        return;
    };
    let name = name.to_owned();
    let mut ws = Ws::as_role(&app, Role::Agent).await;
    subscribed(&mut ws, "1", LEAD_RECEIVED, json!({})).await;

    let killed = app
        .db
        .query_one_raw(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "SELECT COUNT(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE datname = $1 AND query LIKE 'LISTEN%'",
            [name.into()],
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(killed, 1);

    let message = ws.next().await.unwrap();
    assert_eq!(message["type"], "next", "{message}");
    assert!(
        message["payload"]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("resubscribe"),
        "{message}"
    );
    assert_eq!(ws.next().await.unwrap()["type"], "complete");

    // Listening again: a new subscription receives the next lead.
    subscribed(&mut ws, "2", LEAD_RECEIVED, json!({})).await;
    let mut sent = Vec::new();
    let mut delivered = None;
    for i in 0..50 {
        let lead = new_lead(&app, &format!("again-{i}@example.com")).await;
        sent.push(lead["lead"]["id"].clone());
        if let Ok(Some(message)) = ws.next_within(StdDuration::from_millis(300)).await {
            delivered = Some(message);
            break;
        }
    }
    let message = delivered.expect("the listener listens again");
    assert!(
        sent.contains(&message["payload"]["data"]["leadReceived"]["lead"]["id"]),
        "{message}"
    );
}

/// Publish events the way the store does: staged in a transaction (NOTIFY
/// on PostgreSQL), delivered after the commit (in process on SQLite).
async fn publish(app: &TestApp, events: &[crm::events::Event]) {
    use sea_orm::TransactionTrait;
    let txn = app.db.begin().await.unwrap();
    crm::events::stage(&txn, events).await.unwrap();
    txn.commit().await.unwrap();
    crm::events::committed(&app.db, events);
}

/// More events than the bus buffers, at once: the subscribers that cannot
/// keep up are closed with 1013 instead of being buffered for, publishing
/// never waits for them, and intake and new subscribers carry on.
#[tokio::test]
async fn a_subscriber_that_falls_behind_is_closed_and_nobody_waits_for_it() {
    let app = spawn_app().await;
    let mut slow = Ws::as_role(&app, Role::Agent).await;
    subscribed(&mut slow, "1", LEAD_RECEIVED, json!({})).await;

    // Distinct events (PostgreSQL folds identical notifications of one
    // transaction); their ids match no row, so only the backlog matters.
    let burst: Vec<_> = (0..crm::events::EVENT_BUFFER * 3)
        .map(|_| crm::events::Event::lead_received(uuid::Uuid::now_v7(), uuid::Uuid::now_v7()))
        .collect();
    let started = std::time::Instant::now();
    publish(&app, &burst).await;
    assert!(
        started.elapsed() < StdDuration::from_secs(5),
        "publishing waited"
    );

    let closed = slow.closed().await;
    assert_eq!(closed.code, crm::live::CLOSE_TOO_SLOW, "{closed:?}");
    assert!(closed.reason.contains("too slow"), "{closed:?}");

    let mut fresh = Ws::as_role(&app, Role::Agent).await;
    subscribed(&mut fresh, "2", LEAD_RECEIVED, json!({})).await;
    let sent = new_lead(&app, "after-burst@example.com").await;
    let data = fresh.data("2").await;
    assert_eq!(data["leadReceived"]["lead"]["id"], sent["lead"]["id"]);
}

#[tokio::test]
async fn the_expired_change_exists_for_admins_only() {
    let app = spawn_app().await;
    let names = |role| app.introspected_names("OpportunityChange", "enumValues", role);
    let agent = names(Role::Agent).await;
    assert_eq!(agent, ["STATUS_CHANGED", "LEAD_MERGED"]);
    let admin = names(Role::Admin).await;
    assert!(admin.contains(&"EXPIRED".to_owned()), "{admin:?}");

    let sdl = crm::graphql::sdl_for(Role::Agent);
    assert!(sdl.contains("enum OpportunityChange"));
    assert!(!sdl.contains("EXPIRED"), "the agent SDL names EXPIRED");
    assert!(crm::graphql::sdl_for(Role::Admin).contains("\tEXPIRED\n"));
}

/// SIGTERM: open sockets close at once with 1001 and the process stops
/// without waiting out the grace period for them.
#[tokio::test]
async fn crm_serve_closes_open_sockets_with_1001_on_sigterm() {
    let database = std::sync::Arc::new(crate::helpers::TestDatabase::create().await);
    let mut server = ServerProcess::start(database).await;
    let mut ws = Ws::as_role(&server.app, Role::Agent).await;
    subscribed(&mut ws, "1", LEAD_RECEIVED, json!({})).await;
    server.signal("TERM");
    let closed = ws.closed().await;
    assert_eq!(closed.code, crm::live::CLOSE_GOING_AWAY, "{closed:?}");
    let status = tokio::time::timeout(StdDuration::from_secs(10), server.child.wait())
        .await
        .expect("stops without waiting out the grace period")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// No `connection_init` within the configured time: closed with 4408, as
/// graphql-transport-ws says; an initialised connection outlives it.
#[tokio::test]
async fn a_socket_that_never_sends_connection_init_is_closed_with_4408() {
    let app = spawn_app_configured(|s| s.ws_init_timeout_ms = 500).await;
    let opened = std::time::Instant::now();
    let mut silent = Ws::open(&app).await;
    let mut initialised = Ws::as_role(&app, Role::Agent).await;
    let closed = silent.closed().await;
    assert_eq!(
        closed,
        Closed {
            code: crm::live::CLOSE_INIT_TIMEOUT,
            reason: "Connection initialisation timeout".into()
        }
    );
    assert!(opened.elapsed() >= StdDuration::from_millis(500));
    assert_eq!(initialised.next_within(QUIET).await, Ok(None));
    subscribed(&mut initialised, "1", LEAD_RECEIVED, json!({})).await;
}

/// The server pings every period: a client that answers (tungstenite
/// answers pings while it reads) stays; one that stays silent for two
/// periods is dropped.
#[tokio::test]
async fn a_client_silent_for_two_ping_periods_is_dropped_and_one_that_answers_stays() {
    let app = spawn_app_configured(|s| s.ws_ping_interval_ms = 250).await;
    let mut answering = Ws::as_role(&app, Role::Agent).await;
    let mut silent = Ws::as_role(&app, Role::Agent).await;
    // `answering` is read (so it answers the pings) in a task of its own,
    // the whole time, even while `silent` is finally read; `silent` is left
    // unread for more than four periods first.
    let reader = tokio::spawn(async move {
        let outcome = answering.next_within(StdDuration::from_millis(3_000)).await;
        (answering, outcome)
    });
    tokio::time::sleep(StdDuration::from_millis(1_100)).await;
    let closed = silent.closed().await;
    assert_eq!(
        closed.code, 1006,
        "dropped without a close frame: {closed:?}"
    );
    let (mut answering, outcome) = reader.await.expect("reader task");
    assert_eq!(outcome, Ok(None), "the answering client stays open");
    subscribed(&mut answering, "1", LEAD_RECEIVED, json!({})).await;
}

/// Two AGENTs with the same document share one execution on the server:
/// each receives the event, and the credit request read through it is in
/// the access log once under each one's own name.
#[tokio::test]
async fn a_shared_subscription_logs_each_subscribers_credit_request_read_under_its_own_name() {
    let app = spawn_app().await;
    let query = "subscription { leadReceived { lead { id creditRequest { id } } } }";
    let mut first = Ws::connect(&app, &app.token_for(Role::Agent, "agent-a")).await;
    let mut second = Ws::connect(&app, &app.token_for(Role::Agent, "agent-b")).await;
    subscribed(&mut first, "1", query, json!({})).await;
    subscribed(&mut second, "2", query, json!({})).await;
    let sent = submit_lead(
        &app,
        json!({ "email": "credit-live@example.com", "type": "CRE" }),
    )
    .await;
    let (a, b) = (first.data("1").await, second.data("2").await);
    assert_eq!(a, b);
    assert_eq!(a["leadReceived"]["lead"]["id"], sent["lead"]["id"]);
    let request = a["leadReceived"]["lead"]["creditRequest"]["id"].clone();
    assert!(request.is_string(), "{a}");

    let log = app
        .data(
            r#"query($id: ID) { creditRequestAccessLog(first: 10, creditRequestId: $id) {
                 edges { node { principal role via } } } }"#,
            json!({ "id": request }),
            Role::Admin,
        )
        .await;
    let mut reads: Vec<(String, String, String)> = log["creditRequestAccessLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let node = &e["node"];
            let text = |k: &str| node[k].as_str().unwrap().to_owned();
            (text("principal"), text("role"), text("via"))
        })
        .collect();
    reads.sort();
    let read = |who: &str| (who.to_owned(), "AGENT".to_owned(), "LEAD".to_owned());
    assert_eq!(reads, [read("agent-a"), read("agent-b")]);
}

/// The role is part of what makes two subscriptions one execution: an
/// AGENT sending exactly the document an ADMIN's running subscription uses
/// still gets the unknown-field error, and the ADMIN keeps its events.
#[tokio::test]
async fn an_agent_sending_an_admins_document_naming_expiree_is_not_joined_to_it() {
    let app = spawn_app().await;
    let query = "subscription { opportunityChanged { change opportunity { id expiree } } }";
    let mut admin = Ws::as_role(&app, Role::Admin).await;
    subscribed(&mut admin, "a", query, json!({})).await;
    let mut agent = Ws::as_role(&app, Role::Agent).await;
    agent.subscribe("g", query, json!({})).await;
    let message = agent.next().await.unwrap();
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(
        message["payload"]["errors"][0]["message"],
        "Unknown field \"expiree\" on type \"Opportunity\".",
        "{message}"
    );
    assert_eq!(agent.next().await.unwrap()["type"], "complete");

    let id = opportunity_of(&app, "shared-doc@example.com").await;
    set_status(&app, &id, "PRIS_EN_CHARGE", Role::Agent).await;
    let data = admin.data("a").await;
    assert_eq!(data["opportunityChanged"]["opportunity"]["id"], id);
    assert_eq!(data["opportunityChanged"]["opportunity"]["expiree"], false);
    assert_eq!(agent.next_within(QUIET).await, Ok(None));
}

/// The live figures of a `crm serve` process, from its own `/metrics`.
#[derive(Debug, PartialEq)]
struct LiveFigures {
    subscriptions: f64,
    executions: f64,
    resolved: f64,
    delivered: f64,
}

async fn live_figures(app: &TestApp) -> LiveFigures {
    let metrics = app.read_metrics().await;
    LiveFigures {
        subscriptions: metrics.get("crm_live_subscriptions"),
        executions: metrics.get("crm_live_executions"),
        resolved: metrics.get("crm_live_events_resolved_total"),
        delivered: metrics.get("crm_live_events_delivered_total"),
    }
}

/// Identical subscriptions share one execution: four agents and an admin
/// sending the same document make two executions (the role is part of
/// what is shared, the schema depends on it); one lead is resolved twice
/// and delivered five times; the last subscriber of a group to leave ends
/// its execution. Seen from a `crm serve` process's own metrics.
#[tokio::test]
async fn identical_subscriptions_share_one_execution_per_role() {
    let database = std::sync::Arc::new(crate::helpers::TestDatabase::create().await);
    let server = ServerProcess::start(database).await;
    let app = &server.app;
    let mut sockets = Vec::new();
    for role in [
        Role::Agent,
        Role::Agent,
        Role::Agent,
        Role::Agent,
        Role::Admin,
    ] {
        let mut ws = Ws::as_role(app, role).await;
        subscribed(&mut ws, "1", LEAD_RECEIVED, json!({})).await;
        sockets.push(ws);
    }
    let before = live_figures(app).await;
    assert_eq!(
        (before.subscriptions, before.executions),
        (5.0, 2.0),
        "{before:?}"
    );

    let sent = new_lead(app, "shared@example.com").await;
    for ws in &mut sockets {
        let data = ws.data("1").await;
        assert_eq!(data["leadReceived"]["lead"]["id"], sent["lead"]["id"]);
    }
    let after = live_figures(app).await;
    assert_eq!(
        after.resolved - before.resolved,
        2.0,
        "{before:?} {after:?}"
    );
    assert_eq!(
        after.delivered - before.delivered,
        5.0,
        "{before:?} {after:?}"
    );

    // The agents leave: their execution ends, the admin's goes on; then
    // the admin leaves too.
    let admin = sockets.pop().expect("the admin's socket");
    drop(sockets);
    settles_at(app, (1.0, 1.0)).await;
    drop(admin);
    settles_at(app, (0.0, 0.0)).await;
}

/// A burst of events is read and written in batches (`CRM_WS_COALESCE_MS`,
/// here 2 s to make it plain), seen from a `crm serve` process's own
/// metrics. A lead after a quiet spell reaches the subscribers at once. The
/// ten leads that follow it within the period reach each socket complete,
/// in one or two writes, and none is read back: this instance wrote their
/// rows. Ten status changes then, whose rows it must read, are read in one
/// or two statements. Not one read and one write per event.
#[tokio::test]
async fn a_burst_of_events_goes_out_in_batches_and_a_lone_event_at_once() {
    const BURST: usize = 10;
    let database = std::sync::Arc::new(crate::helpers::TestDatabase::create().await);
    let server = ServerProcess::start_with(database, &[("CRM_WS_COALESCE_MS", "2000")]).await;
    let app = &server.app;
    let mut sockets = Vec::new();
    for _ in 0..2 {
        let mut ws = Ws::as_role(app, Role::Agent).await;
        subscribed(&mut ws, "1", LEAD_RECEIVED, json!({})).await;
        subscribed(&mut ws, "2", CHANGED, json!({})).await;
        sockets.push(ws);
    }

    let sent = std::time::Instant::now();
    let lone = new_lead(app, "lone@example.com").await;
    for ws in &mut sockets {
        let data = ws.data("1").await;
        assert_eq!(data["leadReceived"]["lead"]["id"], lone["lead"]["id"]);
    }
    let waited = sent.elapsed();
    assert!(
        waited < StdDuration::from_millis(1_500),
        "a lone event waited {waited:?}"
    );

    let before = batch_figures(app).await;
    let inputs = (0..BURST)
        .map(|i| json!({ "email": format!("burst-{i}@example.com") }))
        .collect();
    let submitted = submit_concurrently(&[app], inputs).await;
    let ids_of = |field: &str| {
        let mut ids: Vec<Value> = submitted.iter().map(|p| p[field]["id"].clone()).collect();
        ids.sort_by_key(Value::to_string);
        ids
    };
    let (leads, opportunities) = (ids_of("lead"), ids_of("opportunity"));
    for ws in &mut sockets {
        assert_eq!(
            received(ws, "1", BURST, "/leadReceived/lead/id").await,
            leads
        );
    }
    let after = batch_figures(app).await;
    let burst = after - before;
    assert_eq!(
        (burst.reads, burst.own_rows),
        (0.0, BURST as f64),
        "{BURST} events of leads it wrote: {burst:?}"
    );
    assert!(
        (2.0..=4.0).contains(&burst.writes),
        "{BURST} events written to 2 sockets in {} writes",
        burst.writes
    );

    let before = after;
    futures_util::future::join_all(opportunities.iter().map(|id| {
        let id = id.as_str().expect("an opportunity id");
        set_status(app, id, "PRIS_EN_CHARGE", Role::Agent)
    }))
    .await;
    for ws in &mut sockets {
        let changed = received(ws, "2", BURST, "/opportunityChanged/opportunity/id").await;
        assert_eq!(changed, opportunities);
    }
    let changes = batch_figures(app).await - before;
    assert!(
        (1.0..=2.0).contains(&changes.reads) && changes.own_rows == 0.0,
        "{BURST} status changes read in {} statements",
        changes.reads
    );
    assert!(
        (2.0..=4.0).contains(&changes.writes),
        "{BURST} status changes written to 2 sockets in {} writes",
        changes.writes
    );
}

/// The next `n` events of subscription `id` on `ws`: the value at `pointer`
/// in each, sorted.
async fn received(ws: &mut Ws, id: &str, n: usize, pointer: &str) -> Vec<Value> {
    let mut got = Vec::new();
    for _ in 0..n {
        got.push(
            ws.data(id)
                .await
                .pointer(pointer)
                .cloned()
                .unwrap_or_default(),
        );
    }
    got.sort_by_key(Value::to_string);
    got
}

const LEAD_FIELDS: &str = "id firstName lastName email phone submittedEmail submittedPhone \
    message source type receivedAt submittedBy idempotencyKey outcome \
    warnings { field message } vehicle { year make model trim vin stockNumber condition } \
    contactConflict { kind value otherClientId } \
    decision { candidateOpportunityId candidateState conflictingClientId evaluatedAt \
    expiredOpportunityIds matchedBy matchedClientId outcome protectedStatuses windowDays } \
    client { id } opportunity { id } creditRequest { id }";

const OPPORTUNITY_FIELDS: &str =
    "id status department createdAt updatedAt expiree expiredAt client { id }";

/// The instance that takes a lead in gives its subscribers the rows it
/// wrote, without reading them back: what an ADMIN's `leadReceived` event
/// holds of the lead and its opportunity (every field) is what a query
/// reads, for a new lead full of text to normalize and for a merged one with
/// a contact conflict; and no statement read their rows.
#[tokio::test]
async fn the_event_of_a_lead_is_what_a_query_reads_without_reading_it_back() {
    let database = std::sync::Arc::new(crate::helpers::TestDatabase::create().await);
    let server = ServerProcess::start_with(database, &[("CRM_WS_COALESCE_MS", "2000")]).await;
    let app = &server.app;
    let mut ws = Ws::as_role(app, Role::Admin).await;
    let subscription = format!(
        "subscription {{ leadReceived {{ lead {{ {LEAD_FIELDS} }} \
         opportunity {{ {OPPORTUNITY_FIELDS} }} }} }}"
    );
    subscribed(&mut ws, "1", &subscription, json!({})).await;
    submit_lead(app, json!({ "email": "first@example.com" })).await;
    submit_lead(app, json!({ "phone": "514-555-0100" })).await;
    // Two events read: the next ones gather for the period.
    ws.data("1").await;
    ws.data("1").await;

    let before = batch_figures(app).await;
    let new = submit_lead(
        app,
        json!({
            "firstName": "  Émilie ", "lastName": "Tremblay", "email": " EMILIE@Example.COM ",
            "phone": "(514) 555-0199 poste 12", "message": "Intéressée par le RAV4",
            "source": "site web", "type": "REN", "idempotencyKey": "k-1",
            "vehicle": { "year": 2021, "make": "Toyota", "model": "RAV4", "trim": "LE",
                         "vin": "2T3W1RFV5MC123456", "stockNumber": "A123", "condition": "USED" }
        }),
    )
    .await;
    let merged = submit_lead(
        app,
        json!({ "email": "first@example.com", "phone": "514 555 0100", "message": "encore" }),
    )
    .await;
    assert_eq!(merged["outcome"], "MERGED", "{merged}");
    for sent in [new, merged] {
        let event = ws.data("1").await["leadReceived"].clone();
        for (field, fields) in [("lead", LEAD_FIELDS), ("opportunity", OPPORTUNITY_FIELDS)] {
            let query = format!("query($id: ID!) {{ {field}(id: $id) {{ {fields} }} }}");
            let id = json!({ "id": sent[field]["id"] });
            let read = app.data(&query, id, Role::Admin).await;
            assert_eq!(event[field], read[field], "{field}");
        }
    }
    let figures = batch_figures(app).await - before;
    assert_eq!(
        (figures.reads, figures.own_rows),
        (0.0, 2.0),
        "the rows of its own leads: {figures:?}"
    );
}

/// A backlog is not held back by the gathering: 300 events published at
/// once, with a 2 s period, all reach the subscriber within one period or
/// so (full batches of rows and frames go at once), not one batch of 64 per
/// period.
#[tokio::test]
async fn a_backlog_of_events_is_not_held_back_a_period_per_batch() {
    const EVENTS: usize = 300;
    let app = spawn_app_configured(|s| s.ws_coalesce_ms = 2_000).await;
    let opportunity = opportunity_of(&app, "backlog@example.com").await;
    let id: uuid::Uuid = opportunity.parse().expect("an opportunity id");
    let mut ws = Ws::as_role(&app, Role::Agent).await;
    subscribed(
        &mut ws,
        "1",
        "subscription { opportunityChanged { change opportunity { id } } }",
        json!({}),
    )
    .await;

    // Distinct events (PostgreSQL folds identical notifications of one
    // transaction), each naming the real opportunity.
    let events: Vec<_> = (0..EVENTS)
        .map(|_| crm::events::Event::lead_merged(uuid::Uuid::now_v7(), id))
        .collect();
    let started = std::time::Instant::now();
    publish(&app, &events).await;
    for _ in 0..EVENTS {
        let data = ws.data("1").await;
        assert_eq!(data["opportunityChanged"]["opportunity"]["id"], opportunity);
    }
    let took = started.elapsed();
    assert!(
        took < StdDuration::from_secs(5),
        "{EVENTS} events took {took:?} to arrive"
    );
}

/// The batching counters of a `crm serve` process (see [`Batches`]).
async fn batch_figures(app: &TestApp) -> Batches {
    let metrics = app.read_metrics().await;
    Batches {
        reads: metrics.get("crm_live_row_reads_total"),
        writes: metrics.get("crm_live_socket_writes_total"),
        own_rows: metrics.get("crm_live_own_rows_total"),
    }
}

/// An instance's live counters: reads of rows, socket writes, events whose
/// rows it wrote itself.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Batches {
    reads: f64,
    writes: f64,
    own_rows: f64,
}

impl std::ops::Sub for Batches {
    type Output = Self;

    fn sub(self, before: Self) -> Self {
        Self {
            reads: self.reads - before.reads,
            writes: self.writes - before.writes,
            own_rows: self.own_rows - before.own_rows,
        }
    }
}

/// Wait until (subscriptions, executions) reads `expected`.
async fn settles_at(app: &TestApp, expected: (f64, f64)) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = live_figures(app).await;
        if (now.subscriptions, now.executions) == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{now:?}, expected {expected:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

/// A sweep of more opportunities than one NOTIFY payload holds (on
/// PostgreSQL the flagging statement builds the payloads, 100 expiries
/// each): an admin's stream gets every expiry once; an agent's gets none.
#[tokio::test]
async fn a_sweep_of_many_opportunities_reports_each_expiry_once_to_admins() {
    const OPPORTUNITIES: usize = 250;
    let app = spawn_app().await;
    let mut ids = std::collections::HashSet::new();
    for i in 0..OPPORTUNITIES {
        let sent = new_lead(&app, &format!("swept-{i}@example.com")).await;
        ids.insert(sent["opportunity"]["id"].as_str().unwrap().to_owned());
    }
    let (mut admin, mut agent) = admin_and_agent_watching(
        &app,
        "subscription { opportunityChanged { change opportunity { id } } }",
    )
    .await;

    let report = sweep_on_day(&app, 60).await;
    assert_eq!(report.expired, OPPORTUNITIES as u64);

    let mut seen = std::collections::HashSet::new();
    for _ in 0..OPPORTUNITIES {
        let data = admin.data("a").await;
        assert_eq!(data["opportunityChanged"]["change"], "EXPIRED");
        let id = data["opportunityChanged"]["opportunity"]["id"]
            .as_str()
            .unwrap();
        assert!(seen.insert(id.to_owned()), "{id} twice");
    }
    assert_eq!(seen, ids);
    assert_eq!(admin.next_within(QUIET).await, Ok(None));
    assert_eq!(agent.next_within(QUIET).await, Ok(None));
}

/// An admin subscribed to `admin_query` (id `a`) and an agent to
/// [`CHANGED`] (id `g`), both registered.
async fn admin_and_agent_watching(app: &TestApp, admin_query: &str) -> (Ws, Ws) {
    let mut admin = Ws::as_role(app, Role::Admin).await;
    subscribed(&mut admin, "a", admin_query, json!({})).await;
    let mut agent = Ws::as_role(app, Role::Agent).await;
    subscribed(&mut agent, "g", CHANGED, json!({})).await;
    (admin, agent)
}
