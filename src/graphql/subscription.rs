//! Subscriptions: `leadReceived` and `opportunityChanged`, fed by the event
//! bus ([`crate::events`]). Events carry ids; the rows are read back after
//! delivery (once per instance and event, shared; not at all by the instance
//! that wrote a lead, see [`crate::events::Written`]), and each execution
//! resolves the fields with its role (an AGENT never sees `expiree`, and
//! never receives an expiry: expiry events travel on a channel non-admins
//! do not read).
//!
//! One execution serves every subscriber of an instance with the same role,
//! document, operation name and variables ([`crate::live`] groups them): it
//! gets the group's [`LiveSource`] and [`LiveReads`] as request data. What
//! a resolver may read of the principal is therefore its role, never its
//! `sub`: the only principal-specific effect reachable from these types is
//! the credit-request access log (`Lead.creditRequest`,
//! `Client.openFiles`), and in a subscription those reads go to
//! [`LiveReads`], which the fan-out writes once per subscriber, under that
//! subscriber's own `sub` and role, before the event leaves.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_graphql::{Context, Enum, ID, Object, Result, Subscription};
use futures_util::Stream;
use sea_orm::DatabaseConnection;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use uuid::Uuid;

use super::lead::Lead;
use super::opportunity::Opportunity;
use super::viewer::{api, parse_optional_id, principal};
use crate::auth::{RoleGuard, is_admin};
use crate::error::AppError;
use crate::events::{Delivery, EventBus, EventKind, EventReceivers};
use crate::store::access_log::Read;

/// Most subscriptions open at once on one WebSocket (enforced by
/// [`crate::live`]).
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 10;

/// Where a shared subscription execution takes its events from (request
/// data of the execution).
pub struct LiveSource {
    bus: EventBus,
    /// Taken when the group formed, before its first subscriber was
    /// acknowledged, so that no event published afterwards is missed.
    early: Mutex<Option<EventReceivers>>,
    lagged: AtomicBool,
    /// During a burst, how long events gather before their rows are read
    /// together (an event after a quiet spell is read at once).
    gather: Duration,
}

impl LiveSource {
    /// Subscribe to `bus` now; `admin` decides whether ADMIN-only events
    /// are received; `gather` is how long a burst's events wait to be read
    /// together.
    pub fn new(bus: EventBus, admin: bool, gather: Duration) -> Arc<Self> {
        let early = Mutex::new(Some(bus.subscribe(admin)));
        Arc::new(Self {
            bus,
            early,
            lagged: AtomicBool::new(false),
            gather,
        })
    }

    /// True once the execution fell behind the bus (events were dropped).
    pub fn fell_behind(&self) -> bool {
        self.lagged.load(Ordering::Acquire)
    }

    fn receivers(&self, admin: bool) -> EventReceivers {
        let early = self.early.lock().unwrap_or_else(|e| e.into_inner()).take();
        match early {
            Some(receivers) if receivers.admin.is_some() == admin => receivers,
            _ => self.bus.subscribe(admin),
        }
    }
}

/// The credit-request reads made while resolving one event of a shared
/// subscription (request data of the execution); see the module docs.
/// Clones share the same reads.
#[derive(Clone, Default)]
pub struct LiveReads(Arc<Mutex<Vec<Read>>>);

impl LiveReads {
    pub fn extend(&self, reads: Vec<Read>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(reads);
    }

    /// The reads collected since the last call.
    pub fn take(&self) -> Vec<Read> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
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
    lead: Lead,
    opportunity: Opportunity,
}

#[Object]
impl LeadReceived {
    /// The lead.
    async fn lead(&self) -> &Lead {
        &self.lead
    }

    /// The opportunity it opened or joined.
    async fn opportunity(&self) -> &Opportunity {
        &self.opportunity
    }
}

/// An opportunity changed.
pub struct OpportunityChanged {
    opportunity: Opportunity,
    change: OpportunityChange,
}

#[Object]
impl OpportunityChanged {
    /// The opportunity as it is now.
    async fn opportunity(&self) -> &Opportunity {
        &self.opportunity
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
        let feed = Feed::open(ctx, None, &[EventKind::LeadReceived])?;
        Ok(feed.into_stream(|db, delivery| async move {
            let rows = delivery.rows(&db).await?;
            Ok(rows
                .lead
                .clone()
                .zip(rows.opportunity.clone())
                .map(|(lead, opportunity)| LeadReceived {
                    lead: Lead(lead),
                    opportunity: Opportunity(opportunity),
                }))
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
        let only = parse_optional_id("id", id.as_ref())?;
        let feed = Feed::open(
            ctx,
            only,
            &[
                EventKind::StatusChanged,
                EventKind::LeadMerged,
                EventKind::Expired,
            ],
        )?;
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
                opportunity: Opportunity(opportunity),
                change,
            }))
        }))
    }
}

/// The events of one subscription execution.
struct Feed {
    receivers: EventReceivers,
    db: DatabaseConnection,
    only: Option<Uuid>,
    /// The kinds of event this subscription reports.
    kinds: &'static [EventKind],
    admin: bool,
    source: Arc<LiveSource>,
    /// Received, not handed out yet.
    pending: VecDeque<Arc<Delivery>>,
    /// When rows were last read.
    last_read: Option<Instant>,
    /// The last read took a full batch: more are probably waiting.
    backlog: bool,
    /// How the stream ends once `pending` is empty.
    end: Option<Result<(), AppError>>,
}

/// Most events taken together from the bus, their rows read in one go.
const READ_TOGETHER: usize = 64;

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
    fn open(
        ctx: &Context<'_>,
        only: Option<Uuid>,
        kinds: &'static [EventKind],
    ) -> Result<Self, AppError> {
        let admin = principal(ctx)?.is_admin();
        let source = ctx
            .data_opt::<Arc<LiveSource>>()
            .cloned()
            .ok_or_else(|| AppError::Internal("subscription outside a WebSocket".into()))?;
        Ok(Self {
            receivers: source.receivers(admin),
            db: api(ctx)?.db.clone(),
            only,
            kinds,
            admin,
            source,
            pending: VecDeque::new(),
            last_read: None,
            backlog: false,
            end: None,
        })
    }

    /// The next event for this subscriber; `Err` ends the stream with that
    /// error, `Ok(None)` ends it quietly (server shutting down).
    ///
    /// Events already waiting are taken together (up to [`READ_TOGETHER`])
    /// and their rows read in one go; they are then handed out one by one,
    /// in order, before whatever ended the stream. An event that comes
    /// within [`LiveSource::gather`] of the last read waits for the rest of
    /// that time, for more to come with it (a burst is read a batch at a
    /// time; an event after a quiet spell at once), unless the last read
    /// took a full batch: a backlog is read without pause.
    async fn next(&mut self) -> Result<Option<Arc<Delivery>>, AppError> {
        loop {
            if let Some(delivery) = self.pending.pop_front() {
                return Ok(Some(delivery));
            }
            if let Some(end) = self.end.take() {
                return end.map(|()| None);
            }
            let received = match self.receivers.admin.as_mut() {
                Some(admin) => tokio::select! {
                    r = self.receivers.public.recv() => r,
                    r = admin.recv() => r,
                },
                None => self.receivers.public.recv().await,
            };
            self.take(received);
            // A backlog (the last read took a full batch) is read at once.
            if let Some(last) = self.last_read
                && self.end.is_none()
                && !self.backlog
            {
                tokio::time::sleep_until((last + self.source.gather).into()).await;
            }
            while self.end.is_none() && self.pending.len() < READ_TOGETHER {
                let Some(received) = self.try_receive() else {
                    break;
                };
                self.take(received);
            }
            if self.pending.is_empty() {
                continue;
            }
            self.last_read = Some(Instant::now());
            self.backlog = self.pending.len() >= READ_TOGETHER;
            // A failed read is not lost: each event's own read (`rows`)
            // tries again and reports it.
            if let Err(error) = Delivery::read_together(
                &self.db,
                self.source.bus.written(),
                self.pending.make_contiguous(),
            )
            .await
            {
                tracing::debug!(%error, "reading the rows of waiting events together failed");
            }
        }
    }

    /// Keep a received event if this subscriber is to see it, or note how
    /// the stream ends.
    fn take(&mut self, received: Result<Arc<Delivery>, RecvError>) {
        match received {
            Ok(delivery) => {
                let event = &delivery.event;
                if event.kind == EventKind::Gap {
                    self.end = Some(Err(gap()));
                    return;
                }
                let hidden = event.is_admin_only() && !self.admin;
                let other = self.only.is_some_and(|id| id != event.opportunity);
                if self.kinds.contains(&event.kind) && !hidden && !other {
                    self.pending.push_back(delivery);
                }
            }
            Err(RecvError::Lagged(_)) => {
                self.source.lagged.store(true, Ordering::Release);
                self.end = Some(Err(fell_behind()));
            }
            Err(RecvError::Closed) => self.end = Some(Ok(())),
        }
    }

    /// An event already waiting, without waiting.
    fn try_receive(&mut self) -> Option<Result<Arc<Delivery>, RecvError>> {
        let channels =
            std::iter::once(&mut self.receivers.public).chain(self.receivers.admin.as_mut());
        for channel in channels {
            match channel.try_recv() {
                Ok(delivery) => return Some(Ok(delivery)),
                Err(TryRecvError::Lagged(n)) => return Some(Err(RecvError::Lagged(n))),
                Err(TryRecvError::Closed) => return Some(Err(RecvError::Closed)),
                Err(TryRecvError::Empty) => {}
            }
        }
        None
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
