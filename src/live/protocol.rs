//! The messages of `graphql-transport-ws`
//! (<https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>).
use async_graphql::parser::types::OperationType;
use serde::Deserialize;
use serde_json::json;

use super::fanout::SubscribePayload;
use crate::error::AppError;
use crate::graphql::error_codes::error_body;

/// What a client may send.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: serde_json::Value,
    },
    Subscribe {
        id: String,
        payload: SubscribePayload,
    },
    Complete {
        id: String,
    },
    Ping {},
    Pong {},
}

/// The `Authorization` entry of the `connection_init` payload (any case).
pub fn bearer(payload: &serde_json::Value) -> Option<&str> {
    let object = payload.as_object()?;
    object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, value)| value.as_str())
}

pub fn connection_ack() -> String {
    json!({ "type": "connection_ack" }).to_string()
}

pub fn pong() -> String {
    json!({ "type": "pong" }).to_string()
}

pub fn complete(id: &str) -> String {
    json!({ "type": "complete", "id": id }).to_string()
}

/// The start of a `next` message for `id`; the payload and `}` follow.
pub fn next_envelope(id: &str) -> String {
    format!(r#"{{"type":"next","id":{},"payload":"#, json!(id))
}

/// A `next` message carrying `error` (a refusal after the document was
/// read, as the execution reports its own errors).
pub fn next_error(id: &str, error: &AppError) -> String {
    json!({
        "type": "next",
        "id": id,
        "payload": { "errors": error_body(error)["errors"] },
    })
    .to_string()
}

/// A document holding a query or mutation: those go over HTTP (one path
/// for limits, logs and metrics). Returns the protocol's `error` message to
/// answer with; `None` lets the document through (documents that do not
/// parse are left to the execution to report).
pub fn not_a_subscription(id: &str, query: &str) -> Option<String> {
    let document = async_graphql::parser::parse_query(query).ok()?;
    let other = document
        .operations
        .iter()
        .any(|(_, op)| op.node.ty != OperationType::Subscription);
    other.then(|| {
        let error = AppError::bad_input(
            "query",
            "only subscriptions over WebSocket; send queries and mutations with POST",
        );
        json!({ "type": "error", "id": id, "payload": error_body(&error)["errors"] }).to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_next_envelope_around_a_payload_is_the_message_a_serializer_would_write() {
        let payload = r#"{"data":{"leadReceived":null}}"#;
        let id = "sub \"1\"";
        let frame = format!("{}{payload}}}", next_envelope(id));
        let parsed: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(
            parsed,
            json!({ "type": "next", "id": id, "payload": { "data": { "leadReceived": null } } })
        );
    }

    #[test]
    fn client_messages_of_the_protocol_are_read_and_others_refused() {
        let init: ClientMessage = serde_json::from_str(
            r#"{"type":"connection_init","payload":{"Authorization":"Bearer x"}}"#,
        )
        .unwrap();
        assert!(
            matches!(init, ClientMessage::ConnectionInit { payload } if bearer(&payload) == Some("Bearer x"))
        );
        let bare: ClientMessage = serde_json::from_str(r#"{"type":"connection_init"}"#).unwrap();
        assert!(
            matches!(bare, ClientMessage::ConnectionInit { payload } if bearer(&payload).is_none())
        );
        let ping: ClientMessage = serde_json::from_str(r#"{"type":"ping","payload":{}}"#).unwrap();
        assert!(matches!(ping, ClientMessage::Ping {}));
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"start","id":"1"}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"subscribe","id":"1"}"#).is_err());
    }
}
