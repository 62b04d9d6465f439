//! One execution per group of identical subscriptions.
//!
//! Subscribers of one instance with the same role, document, operation name
//! and variables form a group: one GraphQL execution resolves each event
//! and serializes it once; every subscriber then gets that payload inside
//! its own envelope (`{"id":...,"type":"next","payload":...}`), without
//! re-serialization. The role is in the key because the schema a document
//! is validated and resolved against depends on it (the admin-only wall,
//! the guards, ADMIN-only events). The token subject is not: nothing
//! resolvable from a subscription reads it, except the credit-request
//! access log, whose reads the execution collects ([`LiveReads`]) and
//! [`Hub`] writes once per subscriber under its own principal (see
//! [`crate::graphql::subscription`]).
//!
//! The execution never waits for a subscriber: each connection has a
//! bounded outbox, and a connection whose outbox is full is told to close
//! ([`SlowSignal`]).
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_graphql::{Request, Response, Variables};
use futures_util::StreamExt;
use sea_orm::DatabaseConnection;
use tokio::sync::{Notify, mpsc};

use crate::auth::{Principal, Role};
use crate::error::AppError;
use crate::events::EventBus;
use crate::graphql::CrmSchema;
use crate::graphql::error_codes::error_body;
use crate::graphql::subscription::{LiveReads, LiveSource};
use crate::metrics;
use crate::store::access_log::Read;

/// What a group hands a connection.
pub enum Outgoing {
    /// A resolved event for the subscription `member`: the serialized
    /// GraphQL response, shared by the whole group.
    Next { member: u64, payload: Arc<str> },
    /// The subscription `member` ended (its stream finished).
    Complete { member: u64 },
}

/// Raised when a connection cannot take what its groups send.
#[derive(Default)]
pub struct SlowSignal {
    raised: AtomicBool,
    notify: Notify,
}

impl SlowSignal {
    pub fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// Resolves once raised.
    pub async fn raised(&self) {
        if !self.raised.load(Ordering::Acquire) {
            self.notify.notified().await;
        }
    }
}

/// A `subscribe` message's payload.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribePayload {
    pub query: String,
    #[serde(default)]
    pub operation_name: Option<String>,
    #[serde(default)]
    pub variables: Option<serde_json::Value>,
}

/// What makes two subscriptions the same execution.
#[derive(Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    role: Role,
    query: String,
    operation_name: Option<String>,
    /// The variables as JSON text.
    variables: String,
}

/// One subscriber of a group.
struct Member {
    token: u64,
    principal: Principal,
    outbox: mpsc::Sender<Outgoing>,
    slow: Arc<SlowSignal>,
}

struct Group {
    key: GroupKey,
    members: Mutex<Vec<Arc<Member>>>,
    task: OnceLock<tokio::task::AbortHandle>,
}

impl Group {
    fn members(&self) -> Vec<Arc<Member>> {
        self.members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The groups of one instance.
pub struct Hub {
    schema: CrmSchema,
    bus: EventBus,
    db: DatabaseConnection,
    groups: Mutex<HashMap<GroupKey, Arc<Group>>>,
    next_member: AtomicU64,
    /// How long a burst's events gather before their rows are read
    /// ([`LiveSource::new`]).
    gather: std::time::Duration,
}

/// A subscription's place in its group; leaving when dropped.
pub struct Membership {
    hub: Arc<Hub>,
    group: Arc<Group>,
    /// Tags what the group sends for this subscription.
    pub token: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.leave(&self.group, self.token);
    }
}

/// The connection a subscriber belongs to.
pub struct Subscriber {
    pub principal: Principal,
    pub outbox: mpsc::Sender<Outgoing>,
    pub slow: Arc<SlowSignal>,
}

impl Hub {
    pub fn new(
        schema: CrmSchema,
        bus: EventBus,
        db: DatabaseConnection,
        gather: std::time::Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            schema,
            bus,
            db,
            groups: Mutex::default(),
            next_member: AtomicU64::new(1),
            gather,
        })
    }

    /// Join the group of this subscription, starting it if there is none.
    /// The subscriber receives every event published from now on.
    pub fn join(self: &Arc<Self>, subscriber: Subscriber, payload: SubscribePayload) -> Membership {
        let key = GroupKey {
            role: subscriber.principal.role,
            variables: payload
                .variables
                .as_ref()
                .map_or_else(String::new, serde_json::Value::to_string),
            query: payload.query,
            operation_name: payload.operation_name,
        };
        let token = self.next_member.fetch_add(1, Ordering::Relaxed);
        let member = Arc::new(Member {
            token,
            principal: subscriber.principal,
            outbox: subscriber.outbox,
            slow: subscriber.slow,
        });
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let group = match groups.get(&key) {
            Some(group) => {
                group
                    .members
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(member);
                metrics::live_changed(1, 0);
                group.clone()
            }
            None => {
                let group = self.start(key.clone(), member);
                groups.insert(key, group.clone());
                metrics::live_changed(1, 1);
                group
            }
        };
        Membership {
            hub: self.clone(),
            group,
            token,
        }
    }

    /// A new group with its first member, and its execution. The bus is
    /// subscribed before this returns, so the subscriber's acknowledgement
    /// comes after the group listens.
    fn start(self: &Arc<Self>, key: GroupKey, first: Arc<Member>) -> Arc<Group> {
        let source = LiveSource::new(
            self.bus.clone(),
            first.principal.role == Role::Admin,
            self.gather,
        );
        let reads = LiveReads::default();
        let request = Request::new(key.query.clone())
            .variables(variables(&key.variables))
            .data(first.principal.clone())
            .data(source.clone())
            .data(reads.clone());
        let request = match &key.operation_name {
            Some(name) => request.operation_name(name.clone()),
            None => request,
        };
        let group = Arc::new(Group {
            key,
            members: Mutex::new(vec![first]),
            task: OnceLock::new(),
        });
        let task = tokio::spawn(self.clone().run(group.clone(), request, source, reads));
        let _ = group.task.set(task.abort_handle());
        group
    }

    /// The group's execution: each response serialized once and handed to
    /// every member; then the members are told the stream ended.
    async fn run(
        self: Arc<Self>,
        group: Arc<Group>,
        request: Request,
        source: Arc<LiveSource>,
        reads: LiveReads,
    ) {
        let mut responses = self.schema.execute_stream(request);
        while let Some(response) = responses.next().await {
            let members = group.members();
            let payload = self.payload(response, reads.take(), &members).await;
            metrics::live_resolved(members.len());
            deliver(&members, &payload);
        }
        let fell_behind = source.fell_behind();
        for member in self.retire(&group) {
            // Behind the bus, or no room left to say the stream ended: the
            // connection closes (1013) and the client refetches.
            let complete = Outgoing::Complete {
                member: member.token,
            };
            if fell_behind || member.outbox.try_send(complete).is_err() {
                member.slow.raise();
            }
        }
    }

    /// The event's payload, once for the group. Credit-request reads are
    /// written first, one row per read and member; if they cannot be, the
    /// members get the error and no data.
    async fn payload(
        &self,
        response: Response,
        reads: Vec<Read>,
        members: &[Arc<Member>],
    ) -> Arc<str> {
        if !reads.is_empty()
            && let Err(error) =
                crate::store::access_log::record(&self.db, &reads_of_each(&reads, members)).await
        {
            return errors_payload(&error);
        }
        match serde_json::to_string(&response) {
            Ok(json) => json.into(),
            Err(error) => errors_payload(&AppError::Internal(error.to_string())),
        }
    }

    /// Remove the group from the hub; its members.
    fn retire(&self, group: &Arc<Group>) -> Vec<Arc<Member>> {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let ended = remove_group(&mut groups, group);
        let members = std::mem::take(&mut *group.members.lock().unwrap_or_else(|e| e.into_inner()));
        metrics::live_changed(-count(members.len()), -i64::from(ended));
        members
    }

    /// A member leaves; the last one stops the execution.
    fn leave(&self, group: &Arc<Group>, token: u64) {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let mut members = group.members.lock().unwrap_or_else(|e| e.into_inner());
        let before = members.len();
        members.retain(|m| m.token != token);
        let left = count(before - members.len());
        let mut ended = false;
        if members.is_empty() {
            ended = remove_group(&mut groups, group);
            if let Some(task) = group.task.get() {
                task.abort();
            }
        }
        metrics::live_changed(-left, -i64::from(ended));
    }
}

/// Remove `group` from the hub's map if it is still there (each group is
/// removed once: by its last member leaving or by its stream ending).
fn remove_group(groups: &mut HashMap<GroupKey, Arc<Group>>, group: &Arc<Group>) -> bool {
    let current = groups
        .get(&group.key)
        .is_some_and(|g| Arc::ptr_eq(g, group));
    if current {
        groups.remove(&group.key);
    }
    current
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Hand `payload` to every member without waiting: a member whose
/// connection cannot take it is told to close.
fn deliver(members: &[Arc<Member>], payload: &Arc<str>) {
    for member in members {
        let next = Outgoing::Next {
            member: member.token,
            payload: payload.clone(),
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = member.outbox.try_send(next) {
            member.slow.raise();
        }
    }
}

/// The execution's reads, once for each member, under its principal.
fn reads_of_each(reads: &[Read], members: &[Arc<Member>]) -> Vec<Read> {
    members
        .iter()
        .flat_map(|member| {
            reads.iter().map(|read| Read {
                principal: member.principal.sub.clone(),
                role: member.principal.role.as_str(),
                ..read.clone()
            })
        })
        .collect()
}

/// `{"errors": [...]}` for `error`, with its code.
fn errors_payload(error: &AppError) -> Arc<str> {
    serde_json::json!({ "errors": error_body(error)["errors"] })
        .to_string()
        .into()
}

fn variables(json: &str) -> Variables {
    serde_json::from_str::<serde_json::Value>(json)
        .map(Variables::from_json)
        .unwrap_or_default()
}
