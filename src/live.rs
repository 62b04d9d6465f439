//! GraphQL subscriptions over WebSocket (`graphql-transport-ws`, the
//! protocol of the `graphql-ws` client) on `GET /graphql` with
//! `Upgrade: websocket`.
//!
//! async-graphql speaks the protocol ([`WebSocket`]); this module is the
//! transport around it, because it decides what the protocol leaves open:
//! - authentication in `connection_init` (`{"Authorization": "Bearer ..."}`,
//!   verified like HTTP); a bad or missing token closes with 4403
//!   (`Forbidden`), a subscribe before the acknowledgement with 4401;
//! - the token's `exp` ends the connection (4403, `token expired`);
//! - back-pressure: sends are bounded ([`SEND_TIMEOUT`]) and a subscription
//!   that fell behind the event bus closes the socket with
//!   [`CLOSE_TOO_SLOW`] instead of buffering;
//! - caps: [`MAX_CONNECTIONS_PER_PRINCIPAL`] sockets per token subject, and
//!   [`crate::graphql::subscription::MAX_SUBSCRIPTIONS_PER_CONNECTION`]
//!   subscriptions per socket.
use std::collections::HashMap;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::header::{SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use actix_web::{HttpRequest, HttpResponse, guard, web};
use actix_ws::{CloseCode, CloseReason};
use async_graphql::Data;
use async_graphql::http::{WebSocket, WebSocketProtocols, WsMessage};
use async_graphql::parser::types::OperationType;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::auth::{JwtKeys, Principal, Role};
use crate::error::AppError;
use crate::events::EventBus;
use crate::graphql::CrmSchema;
use crate::graphql::error_codes::error_body;
use crate::graphql::subscription::LiveConnection;

/// The only sub-protocol spoken.
pub const PROTOCOL: &str = "graphql-transport-ws";
/// Most WebSockets open at once for one token subject.
pub const MAX_CONNECTIONS_PER_PRINCIPAL: usize = 20;
/// How long `connection_init` may take to arrive (then 4408).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one message may wait for the client to take it; a client that
/// reads slower is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the server pings; a client silent for two periods (not even a
/// pong) is dropped, so dead peers do not keep their place.
pub const PING_EVERY: Duration = Duration::from_secs(30);
/// Client messages queued for the protocol before the client is cut off.
const INBOX: usize = 64;

/// `connection_init` refused: bad, missing or expired token.
pub const CLOSE_FORBIDDEN: u16 = 4403;
/// A subscribe before `connection_ack`.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// No `connection_init` within [`INIT_TIMEOUT`].
pub const CLOSE_INIT_TIMEOUT: u16 = 4408;
/// Too many connections for this principal, or a second `connection_init`.
pub const CLOSE_TOO_MANY: u16 = 4429;
/// The client fell behind the events (1013, "try again later": it may
/// reconnect and refetch).
pub const CLOSE_TOO_SLOW: u16 = 1013;
/// The client sent more than the server could queue.
const CLOSE_FLOOD: u16 = 1008;
/// The server is shutting down (1001, "going away").
pub const CLOSE_GOING_AWAY: u16 = 1001;

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
    pub schema: CrmSchema,
    pub jwt: JwtKeys,
    pub bus: EventBus,
    connections: Arc<Mutex<HashMap<String, usize>>>,
    /// Turns true when the server begins to shut down.
    going_away: tokio::sync::watch::Receiver<bool>,
}

impl LiveState {
    pub fn new(
        schema: CrmSchema,
        jwt: JwtKeys,
        bus: EventBus,
        going_away: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Self {
            schema,
            jwt,
            bus,
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

/// What `connection_init` decided.
enum Admission {
    Accepted {
        expires: DateTime<Utc>,
        connection: Arc<LiveConnection>,
        _permit: Permit,
    },
    Refused {
        code: u16,
        reason: String,
    },
}

type AdmissionSlot = Arc<Mutex<Option<Admission>>>;

fn bearer(payload: &serde_json::Value) -> Option<&str> {
    let object = payload.as_object()?;
    object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, value)| value.as_str())
}

fn admit(state: &LiveState, payload: &serde_json::Value) -> Result<(Data, Admission), Admission> {
    let refused = |code, reason: String| Admission::Refused { code, reason };
    let (principal, expires) = state
        .jwt
        .authenticate_until(bearer(payload))
        .map_err(|e| refused(CLOSE_FORBIDDEN, format!("Forbidden: {e}")))?;
    if principal.role == Role::Partner {
        return Err(refused(
            CLOSE_FORBIDDEN,
            "Forbidden: subscriptions are for AGENT and ADMIN".into(),
        ));
    }
    let permit = state.admit(&principal.sub).ok_or_else(|| {
        refused(
            CLOSE_TOO_MANY,
            format!("Too many connections (at most {MAX_CONNECTIONS_PER_PRINCIPAL} per user)"),
        )
    })?;
    let connection = LiveConnection::new(state.bus.clone());
    let mut data = Data::default();
    data.insert::<Principal>(principal);
    data.insert(connection.clone());
    Ok((
        data,
        Admission::Accepted {
            expires,
            connection,
            _permit: permit,
        },
    ))
}

/// How a connection ends.
enum End {
    /// Close with this code and reason.
    Close(u16, String),
    /// The client went away, or cannot take what we send: just drop it.
    Drop,
}

async fn serve(
    state: LiveState,
    mut session: actix_ws::Session,
    messages: actix_ws::MessageStream,
) {
    let mut messages = messages.max_frame_size(64 * 1024).aggregate_continuations();
    let (inbox, inbox_rx) = mpsc::channel::<Vec<u8>>(INBOX);
    let admission: AdmissionSlot = Arc::default();
    let on_init = {
        let state = state.clone();
        let admission = admission.clone();
        move |payload: serde_json::Value| async move {
            let (result, decided) = match admit(&state, &payload) {
                Ok((data, accepted)) => (Ok(data), accepted),
                Err(refused) => (Err(async_graphql::Error::new("refused")), refused),
            };
            *admission.lock().unwrap_or_else(|e| e.into_inner()) = Some(decided);
            result
        }
    };
    let protocol = WebSocket::new(
        state.schema.clone(),
        tokio_stream_of(inbox_rx),
        WebSocketProtocols::GraphQLWS,
    )
    .on_connection_init(on_init);
    let mut protocol = pin!(protocol);

    let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
    let mut init_deadline = pin!(init_deadline);
    let mut expiry = pin!(tokio::time::sleep(Duration::from_secs(u64::from(u32::MAX))));
    let mut connection: Option<Arc<LiveConnection>> = None;
    let mut going_away = state.going_away.clone();
    let mut watching_shutdown = true;
    let mut pinger = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_heard = tokio::time::Instant::now();

    let end = loop {
        if *going_away.borrow_and_update() {
            break End::Close(CLOSE_GOING_AWAY, "server shutting down".into());
        }
        let too_slow = async {
            match &connection {
                Some(c) => c.too_slow.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = pinger.tick() => {
                if last_heard.elapsed() > 2 * PING_EVERY {
                    break End::Drop;
                }
                match tokio::time::timeout(SEND_TIMEOUT, session.ping(b"")).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) | Err(_) => break End::Drop,
                }
            }
            incoming = messages.next() => {
                last_heard = tokio::time::Instant::now();
                match incoming {
                    Some(Ok(actix_ws::AggregatedMessage::Text(text))) => {
                        let bytes = text.as_bytes();
                        if let Some(refusal) = not_a_subscription(bytes) {
                            if send(&mut session, refusal).await.is_err() {
                                break End::Drop;
                            }
                        } else if inbox.try_send(bytes.to_vec()).is_err() {
                            break End::Close(CLOSE_FLOOD, "too many messages".into());
                        }
                    }
                    Some(Ok(actix_ws::AggregatedMessage::Binary(bytes))) => {
                        if let Some(refusal) = not_a_subscription(&bytes) {
                            if send(&mut session, refusal).await.is_err() {
                                break End::Drop;
                            }
                        } else if inbox.try_send(bytes.to_vec()).is_err() {
                            break End::Close(CLOSE_FLOOD, "too many messages".into());
                        }
                    }
                    Some(Ok(actix_ws::AggregatedMessage::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            break End::Drop;
                        }
                    }
                    Some(Ok(actix_ws::AggregatedMessage::Pong(_))) => {}
                    // Answer the client's close frame, completing the handshake.
                    Some(Ok(actix_ws::AggregatedMessage::Close(_))) => {
                        break End::Close(1000, String::new());
                    }
                    Some(Err(_)) | None => break End::Drop,
                }
            }
            outgoing = protocol.next() => match outgoing {
                Some(WsMessage::Text(text)) => {
                    if connection.is_none() && let Some((c, expires)) = accepted(&admission) {
                        let left = (expires - Utc::now()).to_std().unwrap_or_default();
                        expiry.as_mut().reset(tokio::time::Instant::now() + left);
                        connection = Some(c);
                    }
                    if send(&mut session, text).await.is_err() {
                        break End::Drop;
                    }
                }
                Some(WsMessage::Close(code, reason)) => break closing(&admission, code, reason),
                None => break End::Close(1000, String::new()),
            },
            () = &mut init_deadline, if connection.is_none() => {
                break End::Close(CLOSE_INIT_TIMEOUT, "Connection initialisation timeout".into());
            }
            () = &mut expiry, if connection.is_some() => {
                break End::Close(CLOSE_FORBIDDEN, "Forbidden: token expired".into());
            }
            changed = going_away.changed(), if watching_shutdown => {
                // No sender (signals not handled): stop watching.
                watching_shutdown = changed.is_ok();
            }
            () = too_slow => {
                break End::Close(
                    CLOSE_TOO_SLOW,
                    "subscriber too slow: events were dropped; reconnect and refetch".into(),
                );
            }
        }
    };
    if let End::Close(code, reason) = end {
        let reason = CloseReason {
            code: CloseCode::from(code),
            description: (!reason.is_empty()).then_some(reason),
        };
        let _ = tokio::time::timeout(SEND_TIMEOUT, session.close(Some(reason))).await;
    }
}

/// Send one message, giving up after [`SEND_TIMEOUT`].
async fn send(session: &mut actix_ws::Session, text: String) -> Result<(), ()> {
    match tokio::time::timeout(SEND_TIMEOUT, session.text(text)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) | Err(_) => Err(()),
    }
}

/// A `subscribe` whose document holds a query or mutation: those go over
/// HTTP (one path for limits, logs and metrics). Returns the protocol's
/// `error` message to answer with; `None` lets the message through
/// (documents that do not parse are left to async-graphql to report).
fn not_a_subscription(message: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Subscribe {
        #[serde(rename = "type")]
        kind: String,
        id: String,
        payload: Payload,
    }
    #[derive(serde::Deserialize)]
    struct Payload {
        query: String,
    }
    let message: Subscribe = serde_json::from_slice(message).ok()?;
    if message.kind != "subscribe" {
        return None;
    }
    let document = async_graphql::parser::parse_query(&message.payload.query).ok()?;
    let other = document
        .operations
        .iter()
        .any(|(_, op)| op.node.ty != OperationType::Subscription);
    other.then(|| {
        let error = AppError::bad_input(
            "query",
            "only subscriptions over WebSocket; send queries and mutations with POST",
        );
        serde_json::json!({
            "type": "error",
            "id": message.id,
            "payload": error_body(&error)["errors"],
        })
        .to_string()
    })
}

fn accepted(admission: &AdmissionSlot) -> Option<(Arc<LiveConnection>, DateTime<Utc>)> {
    match &*admission.lock().unwrap_or_else(|e| e.into_inner()) {
        Some(Admission::Accepted {
            connection,
            expires,
            ..
        }) => Some((connection.clone(), *expires)),
        _ => None,
    }
}

/// The close async-graphql asked for, with the codes `graphql-ws` expects.
fn closing(admission: &AdmissionSlot, code: u16, reason: String) -> End {
    let refusal = match &*admission.lock().unwrap_or_else(|e| e.into_inner()) {
        Some(Admission::Refused { code, reason }) => Some((*code, reason.clone())),
        _ => None,
    };
    match (refusal, code) {
        (Some((code, reason)), _) => End::Close(code, reason),
        // async-graphql answers a subscribe before the handshake with 1011.
        (None, 1011) => End::Close(CLOSE_UNAUTHORIZED, "Unauthorized".into()),
        (None, code) => End::Close(code, reason),
    }
}

/// An mpsc receiver as a stream.
fn tokio_stream_of(
    mut rx: mpsc::Receiver<Vec<u8>>,
) -> impl futures_util::Stream<Item = Vec<u8>> + Unpin {
    Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}
