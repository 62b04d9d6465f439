//! GraphQL subscriptions over WebSocket (`graphql-transport-ws`, the
//! protocol of the `graphql-ws` client) on `GET /graphql` with
//! `Upgrade: websocket`.
//!
//! This module speaks the protocol ([`protocol`]) and decides what it
//! leaves open:
//! - authentication in `connection_init` (`{"Authorization": "Bearer ..."}`,
//!   verified like HTTP); a bad or missing token closes with 4403
//!   (`Forbidden`), a subscribe before the acknowledgement with 4401, no
//!   `connection_init` within [`LiveTimeouts::init`] with 4408;
//! - the token's `exp` ends the connection (4403, `token expired`);
//! - execution: identical subscriptions of an instance share one execution
//!   and one serialized payload per event ([`fanout`]); a connection only
//!   wraps the payload in its own envelope, and writes what is pending
//!   together; during a burst, at most one write of events per
//!   [`LiveTimeouts::coalesce`];
//! - back-pressure: a group never waits for a connection (bounded outbox,
//!   [`OUTBOX`]); a connection that cannot keep up, or whose subscription
//!   fell behind the event bus, is closed with [`CLOSE_TOO_SLOW`]; one
//!   write waits at most [`SEND_TIMEOUT`];
//! - caps: [`MAX_CONNECTIONS_PER_PRINCIPAL`] sockets per token subject, and
//!   [`crate::graphql::subscription::MAX_SUBSCRIPTIONS_PER_CONNECTION`]
//!   subscriptions per socket;
//! - keep-alive: a ping every [`LiveTimeouts::ping_every`]; a client silent
//!   for two periods (not even a pong) is dropped.
pub mod fanout;
mod protocol;

use std::collections::HashMap;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::header::{SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use actix_web::{HttpRequest, HttpResponse, guard, web};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason};
use chrono::Utc;
use futures_util::StreamExt;
use sea_orm::DatabaseConnection;
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, Sleep};

use crate::auth::{JwtKeys, Principal, Role};
use crate::config::Settings;
use crate::error::AppError;
use crate::events::{EVENT_BUFFER, EventBus};
use crate::graphql::CrmSchema;
use crate::graphql::error_codes::error_body;
use crate::graphql::subscription::MAX_SUBSCRIPTIONS_PER_CONNECTION;
use fanout::{Hub, Membership, Outgoing, SlowSignal, SubscribePayload, Subscriber};
use protocol::ClientMessage;

/// The only sub-protocol spoken.
pub const PROTOCOL: &str = "graphql-transport-ws";
/// Most WebSockets open at once for one token subject.
pub const MAX_CONNECTIONS_PER_PRINCIPAL: usize = 20;
/// Default of [`LiveTimeouts::init`] (`CRM_WS_INIT_TIMEOUT_MS`).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one message, or one batch of events, may wait for the client
/// to take it; a client that reads slower is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`LiveTimeouts::ping_every`] (`CRM_WS_PING_INTERVAL_MS`).
pub const PING_EVERY: Duration = Duration::from_secs(30);
/// Largest message taken from a client.
const MAX_FRAME: usize = 64 * 1024;
/// Events queued for one connection (all its subscriptions) before it is
/// closed as too slow; as deep as the event bus's buffer.
pub const OUTBOX: usize = EVENT_BUFFER;
/// Frames written in one go when several are pending.
const BATCH: usize = 64;

/// `connection_init` refused: bad, missing or expired token.
pub const CLOSE_FORBIDDEN: u16 = 4403;
/// A subscribe before `connection_ack`.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// No `connection_init` within [`LiveTimeouts::init`].
pub const CLOSE_INIT_TIMEOUT: u16 = 4408;
/// Too many connections for this principal, or a second `connection_init`.
pub const CLOSE_TOO_MANY: u16 = 4429;
/// A message that is not of the protocol.
pub const CLOSE_BAD_MESSAGE: u16 = 4400;
/// A `subscribe` reusing the id of an open subscription.
pub const CLOSE_DUPLICATE_ID: u16 = 4409;
/// The client fell behind the events (1013, "try again later": it may
/// reconnect and refetch).
pub const CLOSE_TOO_SLOW: u16 = 1013;
/// The server is shutting down (1001, "going away").
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// The connection's timers (from [`Settings`]).
#[derive(Clone, Copy, Debug)]
pub struct LiveTimeouts {
    /// How long `connection_init` may take to arrive (then 4408).
    pub init: Duration,
    /// How often the server pings; two periods of silence drop the client.
    pub ping_every: Duration,
    /// After a connection writes events, the next ones wait this long and
    /// go out together: an event after a quiet spell leaves at once, and a
    /// burst costs each socket one write per period instead of one per
    /// event (and its client one wake-up), on both ends of the socket.
    pub coalesce: Duration,
}

impl Default for LiveTimeouts {
    fn default() -> Self {
        Self {
            init: INIT_TIMEOUT,
            ping_every: PING_EVERY,
            coalesce: Duration::from_millis(crate::config::DEFAULT_WS_COALESCE_MS),
        }
    }
}

impl From<&Settings> for LiveTimeouts {
    fn from(settings: &Settings) -> Self {
        Self {
            init: Duration::from_millis(settings.ws_init_timeout_ms.max(1)),
            ping_every: Duration::from_millis(settings.ws_ping_interval_ms.max(1)),
            coalesce: Duration::from_millis(settings.ws_coalesce_ms),
        }
    }
}

/// Turn `going_away` true on SIGINT or SIGTERM, so that open sockets close
/// at once instead of holding the graceful shutdown for its whole grace.
pub async fn watch_shutdown_signals(going_away: tokio::sync::watch::Sender<bool>) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    let _ = going_away.send(true);
}

/// What the WebSocket endpoint needs.
#[derive(Clone)]
pub struct LiveState {
    pub jwt: JwtKeys,
    hub: Arc<Hub>,
    timeouts: LiveTimeouts,
    connections: Arc<Mutex<HashMap<String, usize>>>,
    /// Turns true when the server begins to shut down.
    going_away: tokio::sync::watch::Receiver<bool>,
}

impl LiveState {
    pub fn new(
        schema: CrmSchema,
        jwt: JwtKeys,
        bus: EventBus,
        db: DatabaseConnection,
        timeouts: LiveTimeouts,
        going_away: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Self {
            jwt,
            hub: Hub::new(schema, bus, db, timeouts.coalesce),
            timeouts,
            connections: Arc::default(),
            going_away,
        }
    }

    fn admit(&self, sub: &str) -> Option<Permit> {
        let mut connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let open = connections.entry(sub.to_owned()).or_default();
        if *open >= MAX_CONNECTIONS_PER_PRINCIPAL {
            return None;
        }
        *open += 1;
        Some(Permit {
            connections: self.connections.clone(),
            sub: sub.to_owned(),
        })
    }
}

/// One open connection of a principal; counted until dropped.
struct Permit {
    connections: Arc<Mutex<HashMap<String, usize>>>,
    sub: String,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = connections.get_mut(&self.sub) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                connections.remove(&self.sub);
            }
        }
    }
}

/// Route guard: the request asks for a WebSocket.
pub fn is_upgrade() -> impl guard::Guard {
    guard::fn_guard(|ctx| {
        ctx.head()
            .headers()
            .get(UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    })
}

/// `GET /graphql` with `Upgrade: websocket`.
pub async fn upgrade(
    state: web::Data<LiveState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let offered = req
        .headers()
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case(PROTOCOL));
    if !offered {
        return Ok(
            HttpResponse::BadRequest().json(error_body(&AppError::bad_input(
                "Sec-WebSocket-Protocol",
                format!("the WebSocket sub-protocol must be `{PROTOCOL}`"),
            ))),
        );
    }
    let (response, session, messages) = actix_ws::handle_with_protocols(&req, body, &[PROTOCOL])?;
    actix_web::rt::spawn(serve(state.get_ref().clone(), session, messages));
    Ok(response)
}

/// One connection, from the upgrade to the close.
async fn serve(state: LiveState, session: actix_ws::Session, messages: actix_ws::MessageStream) {
    let messages = messages.max_frame_size(MAX_FRAME).aggregate_continuations();
    let mut connection = Connection::new(state, session);
    let end = connection.run(messages).await;
    connection.finish(end).await;
}

/// How a connection ends.
enum End {
    /// Close with this code and reason.
    Close(u16, String),
    /// The client went away, or cannot take what we send: just drop it.
    Drop,
}

impl End {
    fn close(code: u16, reason: impl Into<String>) -> Self {
        Self::Close(code, reason.into())
    }
}

/// Where the handshake stands.
enum Phase {
    AwaitingInit,
    Ready {
        principal: Principal,
        _permit: Permit,
    },
}

/// A subscription of this connection.
struct Open {
    id: String,
    /// `{"id":<id>,"type":"next","payload":` (the payload and `}` follow).
    envelope: String,
    _membership: Membership,
}

/// The state of one WebSocket.
struct Connection {
    state: LiveState,
    session: actix_ws::Session,
    phase: Phase,
    /// Open subscriptions by membership token, and their tokens by id.
    open: HashMap<u64, Open>,
    ids: HashMap<String, u64>,
    outbox: mpsc::Sender<Outgoing>,
    inbox: mpsc::Receiver<Outgoing>,
    slow: Arc<SlowSignal>,
    last_heard: Instant,
}

/// The timers one connection waits on.
struct Timers {
    init_deadline: Pin<Box<Sleep>>,
    expiry: Pin<Box<Sleep>>,
    pinger: Interval,
    /// Ends the wait after a write of events ([`LiveTimeouts::coalesce`]).
    coalesce: Pin<Box<Sleep>>,
    coalescing: bool,
}

impl Connection {
    fn new(state: LiveState, session: actix_ws::Session) -> Self {
        let (outbox, inbox) = mpsc::channel(OUTBOX);
        Self {
            state,
            session,
            phase: Phase::AwaitingInit,
            open: HashMap::new(),
            ids: HashMap::new(),
            outbox,
            inbox,
            slow: Arc::default(),
            last_heard: Instant::now(),
        }
    }

    /// Serve the connection until it must end.
    async fn run(&mut self, mut messages: AggregatedMessageStream) -> End {
        let every = self.state.timeouts.ping_every;
        let mut timers = Timers {
            init_deadline: Box::pin(tokio::time::sleep(self.state.timeouts.init)),
            expiry: Box::pin(tokio::time::sleep(Duration::from_secs(u64::from(u32::MAX)))),
            pinger: tokio::time::interval_at(Instant::now() + every, every),
            coalesce: Box::pin(tokio::time::sleep(Duration::ZERO)),
            coalescing: false,
        };
        let mut going_away = self.state.going_away.clone();
        let mut watching_shutdown = true;
        let slow = self.slow.clone();
        let mut too_slow = pin!(slow.raised());
        loop {
            if *going_away.borrow_and_update() {
                return End::close(CLOSE_GOING_AWAY, "server shutting down");
            }
            let ready = matches!(self.phase, Phase::Ready { .. });
            let step = tokio::select! {
                _ = timers.pinger.tick() => self.keep_alive().await,
                incoming = messages.next() => self.receive(incoming, &mut timers).await,
                Some(first) = self.inbox.recv(), if !timers.coalescing => {
                    self.write_pending(first, &mut timers).await
                }
                () = &mut timers.coalesce, if timers.coalescing => {
                    timers.coalescing = false;
                    Ok(())
                }
                () = &mut timers.init_deadline, if !ready => Err(End::close(
                    CLOSE_INIT_TIMEOUT,
                    "Connection initialisation timeout",
                )),
                () = &mut timers.expiry, if ready => {
                    Err(End::close(CLOSE_FORBIDDEN, "Forbidden: token expired"))
                }
                changed = going_away.changed(), if watching_shutdown => {
                    // No sender (signals not handled): stop watching.
                    watching_shutdown = changed.is_ok();
                    Ok(())
                }
                () = &mut too_slow => Err(End::close(
                    CLOSE_TOO_SLOW,
                    "subscriber too slow: events were dropped; reconnect and refetch",
                )),
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Ping, or drop a client silent for two periods.
    async fn keep_alive(&mut self) -> Result<(), End> {
        if self.last_heard.elapsed() > 2 * self.state.timeouts.ping_every {
            return Err(End::Drop);
        }
        match tokio::time::timeout(SEND_TIMEOUT, self.session.ping(b"")).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(End::Drop),
        }
    }

    /// One WebSocket message from the client.
    async fn receive(
        &mut self,
        incoming: Option<Result<AggregatedMessage, actix_ws::ProtocolError>>,
        timers: &mut Timers,
    ) -> Result<(), End> {
        self.last_heard = Instant::now();
        match incoming {
            Some(Ok(AggregatedMessage::Text(text))) => self.handle(text.as_bytes(), timers).await,
            Some(Ok(AggregatedMessage::Binary(bytes))) => self.handle(&bytes, timers).await,
            Some(Ok(AggregatedMessage::Ping(bytes))) => {
                self.session.pong(&bytes).await.map_err(|_| End::Drop)
            }
            Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
            // Answer the client's close frame, completing the handshake.
            Some(Ok(AggregatedMessage::Close(_))) => Err(End::close(1000, "")),
            Some(Err(_)) | None => Err(End::Drop),
        }
    }

    /// One protocol message.
    async fn handle(&mut self, message: &[u8], timers: &mut Timers) -> Result<(), End> {
        let Ok(message) = serde_json::from_slice::<ClientMessage>(message) else {
            return Err(End::close(CLOSE_BAD_MESSAGE, "Invalid message received"));
        };
        match message {
            ClientMessage::ConnectionInit { payload } => self.init(&payload, timers).await,
            ClientMessage::Subscribe { id, payload } => self.subscribe(id, payload).await,
            ClientMessage::Complete { id } => self.complete(&id).await,
            ClientMessage::Ping {} => self.send(protocol::pong()).await,
            ClientMessage::Pong {} => Ok(()),
        }
    }

    /// `connection_init`: authenticate, count the connection, acknowledge.
    async fn init(&mut self, payload: &serde_json::Value, timers: &mut Timers) -> Result<(), End> {
        if matches!(self.phase, Phase::Ready { .. }) {
            return Err(End::close(
                CLOSE_TOO_MANY,
                "Too many initialisation requests",
            ));
        }
        let (principal, expires) = self
            .state
            .jwt
            .authenticate_until(protocol::bearer(payload))
            .map_err(|e| End::close(CLOSE_FORBIDDEN, format!("Forbidden: {e}")))?;
        if principal.role == Role::Partner {
            return Err(End::close(
                CLOSE_FORBIDDEN,
                "Forbidden: subscriptions are for AGENT and ADMIN",
            ));
        }
        let permit = self.state.admit(&principal.sub).ok_or_else(|| {
            End::close(
                CLOSE_TOO_MANY,
                format!("Too many connections (at most {MAX_CONNECTIONS_PER_PRINCIPAL} per user)"),
            )
        })?;
        let left = (expires - Utc::now()).to_std().unwrap_or_default();
        timers.expiry.as_mut().reset(Instant::now() + left);
        self.phase = Phase::Ready {
            principal,
            _permit: permit,
        };
        self.send(protocol::connection_ack()).await
    }

    /// `subscribe`: refused, or joined to its group.
    async fn subscribe(&mut self, id: String, payload: SubscribePayload) -> Result<(), End> {
        let Phase::Ready { principal, .. } = &self.phase else {
            return Err(End::close(CLOSE_UNAUTHORIZED, "Unauthorized"));
        };
        if self.ids.contains_key(&id) {
            return Err(End::close(
                CLOSE_DUPLICATE_ID,
                format!("Subscriber for {id} already exists"),
            ));
        }
        if let Some(refusal) = protocol::not_a_subscription(&id, &payload.query) {
            return self.send(refusal).await;
        }
        if self.open.len() >= MAX_SUBSCRIPTIONS_PER_CONNECTION {
            let refused = AppError::bad_input(
                "subscription",
                format!(
                    "at most {MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions per connection; \
                     complete one first"
                ),
            );
            self.send(protocol::next_error(&id, &refused)).await?;
            return self.send(protocol::complete(&id)).await;
        }
        let subscriber = Subscriber {
            principal: principal.clone(),
            outbox: self.outbox.clone(),
            slow: self.slow.clone(),
        };
        let membership = self.state.hub.join(subscriber, payload);
        let token = membership.token;
        self.ids.insert(id.clone(), token);
        self.open.insert(
            token,
            Open {
                envelope: protocol::next_envelope(&id),
                id,
                _membership: membership,
            },
        );
        Ok(())
    }

    /// `complete` from the client: leave the group, and confirm.
    async fn complete(&mut self, id: &str) -> Result<(), End> {
        match self.ids.remove(id) {
            Some(token) => {
                self.open.remove(&token);
                self.send(protocol::complete(id)).await
            }
            None => Ok(()),
        }
    }

    /// Write `first` and whatever else is pending (up to [`BATCH`]) before
    /// yielding, so that the socket writes them together; then, unless the
    /// batch was full, let the next events gather for
    /// [`LiveTimeouts::coalesce`].
    async fn write_pending(&mut self, first: Outgoing, timers: &mut Timers) -> Result<(), End> {
        // One deadline for the whole batch: a timer per frame showed in the
        // profile of a burst (clock reads, timer-wheel entries), though as
        // a small part of the connections' share.
        let written = tokio::time::timeout(SEND_TIMEOUT, self.write_batch(first))
            .await
            .map_err(|_| End::Drop)??;
        crate::metrics::count(crate::metrics::Counter::LiveSocketWrites);
        let coalesce = self.state.timeouts.coalesce;
        if written < BATCH && !coalesce.is_zero() {
            timers.coalesce.as_mut().reset(Instant::now() + coalesce);
            timers.coalescing = true;
        }
        Ok(())
    }

    /// Write `first` and what else is pending, up to [`BATCH`]; how many.
    async fn write_batch(&mut self, first: Outgoing) -> Result<usize, End> {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(outgoing) = next.take() {
            if let Some(frame) = self.frame(outgoing) {
                self.session.text(frame).await.map_err(|_| End::Drop)?;
            }
            written += 1;
            if written < BATCH {
                next = self.inbox.try_recv().ok();
            }
        }
        Ok(written)
    }

    /// The frame for what a group sent; `None` for a subscription that was
    /// completed meanwhile.
    fn frame(&mut self, outgoing: Outgoing) -> Option<String> {
        match outgoing {
            Outgoing::Next { member, payload } => {
                let envelope = &self.open.get(&member)?.envelope;
                let mut frame = String::with_capacity(envelope.len() + payload.len() + 1);
                frame.push_str(envelope);
                frame.push_str(&payload);
                frame.push('}');
                Some(frame)
            }
            Outgoing::Complete { member } => {
                let open = self.open.remove(&member)?;
                self.ids.remove(&open.id);
                Some(protocol::complete(&open.id))
            }
        }
    }

    /// Send one message, giving up after [`SEND_TIMEOUT`].
    async fn send(&mut self, text: String) -> Result<(), End> {
        match tokio::time::timeout(SEND_TIMEOUT, self.session.text(text)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(End::Drop),
        }
    }

    /// Leave every group, and close the socket as `end` says.
    async fn finish(mut self, end: End) {
        self.open.clear();
        if let End::Close(code, reason) = end {
            let reason = CloseReason {
                code: CloseCode::from(code),
                description: (!reason.is_empty()).then_some(reason),
            };
            let _ = tokio::time::timeout(SEND_TIMEOUT, self.session.close(Some(reason))).await;
        }
    }
}
