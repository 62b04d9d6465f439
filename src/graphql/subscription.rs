//! Subscriptions: `leadReceived` and `opportunityChanged`, fed by the event
//! bus ([`crate::events`]). Events carry ids; the rows are read back after
//! delivery (once per instance and event, shared), and each subscriber
//! resolves the fields with its own role (an AGENT never sees
//! `expiree`, and never receives an expiry: expiry events travel on a
//! channel non-admins do not read).
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::{Context, Enum, ID, Object, Result, Subscription};
use entity::{lead, opportunity};
use futures_util::Stream;
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::lead::Lead;
use super::opportunity::Opportunity;
use super::viewer::{api, parse_id, principal};
use crate::auth::{RoleGuard, is_admin};
use crate::error::AppError;
use crate::events::{Delivery, EventBus, EventKind, EventReceivers};

/// Most subscriptions open at once on one WebSocket.
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 10;

/// What a WebSocket connection gives its subscriptions (connection data).
pub struct LiveConnection {
    bus: EventBus,
    open: AtomicUsize,
    /// Raised when a subscription fell behind; the socket then closes.
    pub too_slow: Notify,
}

impl LiveConnection {
    pub fn new(bus: EventBus) -> Arc<Self> {
        Arc::new(Self {
            bus,
            open: AtomicUsize::new(0),
            too_slow: Notify::new(),
        })
    }

    fn open_slot(self: &Arc<Self>) -> Result<Slot, AppError> {
        let opened = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_SUBSCRIPTIONS_PER_CONNECTION).then_some(n + 1)
            });
        match opened {
            Ok(_) => Ok(Slot(self.clone())),
            Err(_) => Err(AppError::bad_input(
                "subscription",
                format!(
                    "at most {MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions per connection; \
                     complete one first"
                ),
            )),
        }
    }
}

/// One open subscription on a connection; frees its place when dropped.
struct Slot(Arc<LiveConnection>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How an opportunity changed.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum OpportunityChange {
    /// Its status changed.
    StatusChanged,
    /// A lead joined it.
    LeadMerged,
    /// It expired. Admin only.
    #[graphql(visible = "is_admin")]
    Expired,
}

/// A lead arrived.
pub struct LeadReceived {
    lead: lead::Model,
    opportunity: opportunity::Model,
}

#[Object]
impl LeadReceived {
    /// The lead.
    async fn lead(&self) -> Lead {
        Lead(self.lead.clone())
    }

    /// The opportunity it opened or joined.
    async fn opportunity(&self) -> Opportunity {
        Opportunity(self.opportunity.clone())
    }
}

/// An opportunity changed.
pub struct OpportunityChanged {
    opportunity: opportunity::Model,
    change: OpportunityChange,
}

#[Object]
impl OpportunityChanged {
    /// The opportunity as it is now.
    async fn opportunity(&self) -> Opportunity {
        Opportunity(self.opportunity.clone())
    }

    async fn change(&self) -> OpportunityChange {
        self.change
    }
}

#[derive(Default)]
pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Every lead accepted from now on (AGENT, ADMIN).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn lead_received(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<LeadReceived>> + use<>> {
        let feed = Feed::open(ctx, None)?;
        Ok(feed.into_stream(|db, delivery| async move {
            if delivery.event.kind != EventKind::LeadReceived {
                return Ok(None);
            }
            let rows = delivery.rows(&db).await?;
            Ok(rows
                .lead
                .clone()
                .zip(rows.opportunity.clone())
                .map(|(lead, opportunity)| LeadReceived { lead, opportunity }))
        }))
    }

    /// Changes of one opportunity (`id`) or of all (AGENT, ADMIN): status
    /// changes and merged leads; expiries in an ADMIN's stream only.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn opportunity_changed(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<OpportunityChanged>> + use<>> {
        let only = id.as_ref().map(|id| parse_id("id", id)).transpose()?;
        let feed = Feed::open(ctx, only)?;
        let admin = feed.admin;
        Ok(feed.into_stream(move |db, delivery| async move {
            let change = match delivery.event.kind {
                EventKind::StatusChanged => OpportunityChange::StatusChanged,
                EventKind::LeadMerged => OpportunityChange::LeadMerged,
                EventKind::Expired if admin => OpportunityChange::Expired,
                _ => return Ok(None),
            };
            let opportunity = delivery.rows(&db).await?.opportunity.clone();
            Ok(opportunity.map(|opportunity| OpportunityChanged {
                opportunity,
                change,
            }))
        }))
    }
}

/// One subscriber's events.
struct Feed {
    receivers: EventReceivers,
    db: DatabaseConnection,
    only: Option<Uuid>,
    admin: bool,
    connection: Arc<LiveConnection>,
    _slot: Slot,
}

/// Why a feed ends with an error.
fn fell_behind() -> AppError {
    AppError::Conflict(
        "this subscription fell behind and events were dropped; resubscribe and refetch".into(),
    )
}

fn gap() -> AppError {
    AppError::Conflict(
        "events may have been missed (the server lost its database connection); \
         resubscribe and refetch"
            .into(),
    )
}

impl Feed {
    fn open(ctx: &Context<'_>, only: Option<Uuid>) -> Result<Self, AppError> {
        let admin = principal(ctx)?.is_admin();
        let connection = ctx
            .data_opt::<Arc<LiveConnection>>()
            .cloned()
            .ok_or_else(|| AppError::Internal("subscription outside a WebSocket".into()))?;
        let slot = connection.open_slot()?;
        Ok(Self {
            receivers: connection.bus.subscribe(admin),
            db: api(ctx)?.db.clone(),
            only,
            admin,
            connection,
            _slot: slot,
        })
    }

    /// The next event for this subscriber; `Err` ends the stream with that
    /// error, `Ok(None)` ends it quietly (server shutting down).
    async fn next(&mut self) -> Result<Option<Arc<Delivery>>, AppError> {
        loop {
            let received = match self.receivers.admin.as_mut() {
                Some(admin) => tokio::select! {
                    r = self.receivers.public.recv() => r,
                    r = admin.recv() => r,
                },
                None => self.receivers.public.recv().await,
            };
            match received {
                Ok(delivery) => {
                    let event = &delivery.event;
                    if event.kind == EventKind::Gap {
                        return Err(gap());
                    }
                    let hidden = event.is_admin_only() && !self.admin;
                    let other = self.only.is_some_and(|id| id != event.opportunity);
                    if !hidden && !other {
                        return Ok(Some(delivery));
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    self.connection.too_slow.notify_one();
                    return Err(fell_behind());
                }
                Err(RecvError::Closed) => return Ok(None),
            }
        }
    }

    fn into_stream<T, F, Fut>(self, resolve: F) -> impl Stream<Item = Result<T>> + use<T, F, Fut>
    where
        F: Fn(DatabaseConnection, Arc<Delivery>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<T>, AppError>> + Send,
        T: Send + 'static,
    {
        let resolve = Arc::new(resolve);
        futures_util::stream::unfold(Some(self), move |state| {
            let resolve = resolve.clone();
            async move {
                let mut feed = state?;
                loop {
                    let event = match feed.next().await {
                        Ok(Some(event)) => event,
                        Ok(None) => return None,
                        Err(error) => return Some((Err(error.into()), None)),
                    };
                    match resolve(feed.db.clone(), event).await {
                        Ok(Some(item)) => return Some((Ok(item), Some(feed))),
                        Ok(None) => {}
                        Err(error) => return Some((Err(error.into()), Some(feed))),
                    }
                }
            }
        })
    }
}
