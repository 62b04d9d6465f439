//! Live events for subscriptions: what changed, by id only, published after
//! the change commits.
//!
//! Writers call [`stage`] inside their transaction and [`committed`] after
//! the commit:
//! - on PostgreSQL, [`stage`] runs `pg_notify` on [`CHANNEL`] inside the
//!   transaction, so the notification is delivered only if it commits, to
//!   every instance (each one LISTENs, see [`EventBus::start`]); [`committed`]
//!   does nothing, so no event is delivered twice;
//! - on SQLite, [`stage`] does nothing and [`committed`] sends the events to
//!   the in-process bus of that database file (every application of this
//!   process on the same file shares it).
//!
//! Payloads carry ids only: each subscriber reads the rows back with its own
//! role. Expiry events travel on a channel of their own that only ADMIN
//! subscribers read, so nothing about the sweep (not even a lagging buffer)
//! reaches a non-admin stream.
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::error::AppError;
use crate::store::write_batch::WriteBatch;

/// The PostgreSQL NOTIFY channel.
pub const CHANNEL: &str = "crm_events";
/// Events buffered per channel for the slowest subscriber; a subscriber
/// further behind is dropped (its socket closed), never buffered for.
pub const EVENT_BUFFER: usize = 4_096;
/// Largest NOTIFY payload we send (PostgreSQL's limit is 8,000 bytes).
const MAX_PAYLOAD_BYTES: usize = 7_000;
/// Expiry events per NOTIFY payload when the sweep builds the payloads in
/// SQL ([`notify_expired_sql`]): each is about 60 bytes, so a payload stays
/// under [`MAX_PAYLOAD_BYTES`].
pub const EXPIRED_PER_PAYLOAD: u32 = 100;
/// Pause before listening again after the listener failed to reconnect.
const RELISTEN_PAUSE: Duration = Duration::from_secs(1);

/// What happened.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// A lead was accepted (new or merged), `lead` set.
    #[serde(rename = "L")]
    LeadReceived,
    /// A lead joined an existing opportunity, `lead` set.
    #[serde(rename = "M")]
    LeadMerged,
    /// An opportunity's status changed.
    #[serde(rename = "S")]
    StatusChanged,
    /// An opportunity expired (ADMIN streams only).
    #[serde(rename = "E")]
    Expired,
    /// Events may have been missed (the listener lost its connection):
    /// streams end so that clients resubscribe and refetch.
    #[serde(rename = "G")]
    Gap,
}

/// One event: ids only.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "k")]
    pub kind: EventKind,
    #[serde(rename = "o")]
    pub opportunity: Uuid,
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    pub lead: Option<Uuid>,
}

impl Event {
    pub fn lead_received(lead: Uuid, opportunity: Uuid) -> Self {
        Self {
            kind: EventKind::LeadReceived,
            opportunity,
            lead: Some(lead),
        }
    }

    pub fn lead_merged(lead: Uuid, opportunity: Uuid) -> Self {
        Self {
            kind: EventKind::LeadMerged,
            opportunity,
            lead: Some(lead),
        }
    }

    pub fn status_changed(opportunity: Uuid) -> Self {
        Self {
            kind: EventKind::StatusChanged,
            opportunity,
            lead: None,
        }
    }

    pub fn expired(opportunity: Uuid) -> Self {
        Self {
            kind: EventKind::Expired,
            opportunity,
            lead: None,
        }
    }

    fn gap() -> Self {
        Self {
            kind: EventKind::Gap,
            opportunity: Uuid::nil(),
            lead: None,
        }
    }

    /// Only ADMIN subscribers may learn of it.
    pub fn is_admin_only(&self) -> bool {
        self.kind == EventKind::Expired
    }
}

/// An event as fanned out to this instance's subscribers: the rows it
/// names are read once, by the first subscriber that needs them, and shared
/// (each subscriber still resolves the fields with its own role).
pub struct Delivery {
    pub event: Event,
    rows: tokio::sync::OnceCell<Rows>,
}

/// The rows an event names, as read after it was delivered.
pub struct Rows {
    /// For [`EventKind::LeadReceived`] only.
    pub lead: Option<entity::lead::Model>,
    pub opportunity: Option<entity::opportunity::Model>,
}

impl Delivery {
    fn new(event: Event) -> Arc<Self> {
        Arc::new(Self {
            event,
            rows: tokio::sync::OnceCell::new(),
        })
    }

    /// The rows, read on first use (a failed read is retried by the next
    /// subscriber).
    pub async fn rows(&self, db: &DatabaseConnection) -> Result<&Rows, AppError> {
        self.rows
            .get_or_try_init(|| async {
                let lead = match self.lead_to_read() {
                    Some(id) => crate::store::find::<entity::lead::Entity>(db, id).await?,
                    None => None,
                };
                let opportunity =
                    crate::store::find::<entity::opportunity::Entity>(db, self.event.opportunity)
                        .await?;
                Ok(Rows { lead, opportunity })
            })
            .await
    }

    /// The lead whose row the event's subscribers read.
    fn lead_to_read(&self) -> Option<Uuid> {
        match self.event.kind {
            EventKind::LeadReceived => self.event.lead,
            _ => None,
        }
    }

    /// Read the rows of the `deliveries` not read yet, together: those this
    /// application wrote from `written`, the others with one statement for
    /// the leads with their opportunities and one for the other
    /// opportunities. A delivery whose rows do not match up (its lead is
    /// gone, or belongs to another opportunity) is left to [`Self::rows`].
    pub async fn read_together(
        db: &DatabaseConnection,
        written: &Written,
        deliveries: &[Arc<Delivery>],
    ) -> Result<(), AppError> {
        let mut unread: Vec<&Arc<Delivery>> = Vec::with_capacity(deliveries.len());
        for delivery in deliveries.iter().filter(|d| !d.rows.initialized()) {
            match written.rows_of(&delivery.event) {
                Some(rows) => {
                    crate::metrics::count(crate::metrics::Counter::LiveOwnRows);
                    // Already set by a concurrent reader: the same rows.
                    let _ = delivery.rows.set(rows);
                }
                None => unread.push(delivery),
            }
        }
        let lead_ids: Vec<Uuid> = unread.iter().filter_map(|d| d.lead_to_read()).collect();
        let opportunity_ids: Vec<Uuid> = unread
            .iter()
            .filter(|d| d.lead_to_read().is_none())
            .map(|d| d.event.opportunity)
            .collect();
        if lead_ids.is_empty() && opportunity_ids.is_empty() {
            return Ok(());
        }
        crate::metrics::count(crate::metrics::Counter::LiveRowReads);
        let mut leads = HashMap::new();
        if !lead_ids.is_empty() {
            for (lead, opportunity) in crate::store::lead::with_opportunities(db, &lead_ids).await?
            {
                leads.insert(lead.id, (lead, opportunity));
            }
        }
        let mut opportunities = HashMap::new();
        if !opportunity_ids.is_empty() {
            for opportunity in crate::store::rows_where::<entity::opportunity::Entity>(
                db,
                entity::opportunity::Column::Id,
                &opportunity_ids,
            )
            .await?
            {
                opportunities.insert(opportunity.id, opportunity);
            }
        }
        for delivery in unread {
            let rows = match delivery.lead_to_read() {
                None => Rows {
                    lead: None,
                    opportunity: opportunities.get(&delivery.event.opportunity).cloned(),
                },
                Some(id) => match leads.get(&id) {
                    Some((lead, Some(opportunity)))
                        if opportunity.id == delivery.event.opportunity =>
                    {
                        Rows {
                            lead: Some(lead.clone()),
                            opportunity: Some(opportunity.clone()),
                        }
                    }
                    _ => continue,
                },
            };
            // Already set by a concurrent reader: the same rows.
            let _ = delivery.rows.set(rows);
        }
        Ok(())
    }
}

/// The local fan-out of one application: a channel for everybody's events
/// and one for ADMIN-only events.
#[derive(Clone)]
pub struct EventBus {
    public: broadcast::Sender<Arc<Delivery>>,
    admin: broadcast::Sender<Arc<Delivery>>,
    /// The rows of this application's own recent leads.
    written: Arc<Written>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::of(
            broadcast::channel(EVENT_BUFFER).0,
            broadcast::channel(EVENT_BUFFER).0,
        )
    }
}

/// How many leads' rows [`Written`] keeps at most.
pub const WRITTEN_KEPT: NonZeroUsize = NonZeroUsize::new(1_024).expect("not zero");

/// A lead's row and its opportunity's, as the intake wrote them.
type LeadRows = (entity::lead::Model, entity::opportunity::Model);

/// The rows an application wrote for its recent leads, by lead id, for
/// their events: when a lead's event comes back to the instance that took
/// the lead in (through PostgreSQL's NOTIFY, or SQLite's in-process bus),
/// its subscribers use these rows instead of reading them back. The rows
/// are those the intake wrote and returned to the sender. The other
/// instances read them, as before, and so does this one for an event that
/// arrives before its intake has left the rows here (the request finishes
/// just after its commit; during a burst, when events gather before their
/// read, the rows are there).
///
/// Kept only while somebody listens on this instance, and at most
/// [`WRITTEN_KEPT`] leads, the least recently used forgotten first: the
/// rows of events that are never read (nobody subscribed to leads, a gap)
/// cost bounded memory.
pub struct Written(Mutex<lru::LruCache<Uuid, LeadRows>>);

impl Default for Written {
    fn default() -> Self {
        Self(Mutex::new(lru::LruCache::new(WRITTEN_KEPT)))
    }
}

impl Written {
    fn cache(&self) -> std::sync::MutexGuard<'_, lru::LruCache<Uuid, LeadRows>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The rows `event` names, if this application wrote them: a lead's
    /// event (received or merged) whose lead and opportunity match.
    fn rows_of(&self, event: &Event) -> Option<Rows> {
        let id = event.lead?;
        let cache = &mut *self.cache();
        let (lead, opportunity) = cache.get(&id)?;
        if opportunity.id != event.opportunity {
            return None;
        }
        Some(Rows {
            lead: (event.kind == EventKind::LeadReceived).then(|| lead.clone()),
            opportunity: Some(opportunity.clone()),
        })
    }
}

/// The receivers of one subscriber.
pub struct EventReceivers {
    pub public: broadcast::Receiver<Arc<Delivery>>,
    /// Present for ADMIN subscribers only.
    pub admin: Option<broadcast::Receiver<Arc<Delivery>>>,
}

impl EventBus {
    fn of(
        public: broadcast::Sender<Arc<Delivery>>,
        admin: broadcast::Sender<Arc<Delivery>>,
    ) -> Self {
        Self {
            public,
            admin,
            written: Arc::default(),
        }
    }

    /// Keep the rows this application just wrote for a lead, for its events
    /// ([`Written`]); nothing when nobody listens here.
    pub fn remember(&self, lead: &entity::lead::Model, opportunity: &entity::opportunity::Model) {
        if self.public.receiver_count() == 0 {
            return;
        }
        self.written
            .cache()
            .put(lead.id, (lead.clone(), opportunity.clone()));
    }

    /// The rows of this application's recent leads.
    pub fn written(&self) -> &Written {
        &self.written
    }

    /// The bus of an application on `db`: on SQLite the process-wide bus of
    /// the database file; on PostgreSQL a bus of its own, fed by a LISTEN
    /// task on `url` (stopped when `stop` changes). Returns once listening,
    /// so that no event committed after start-up is missed.
    pub async fn start(
        db: &DatabaseConnection,
        url: &str,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(Self, Option<tokio::task::JoinHandle<()>>), sea_orm::sqlx::Error> {
        match db.get_database_backend() {
            DbBackend::Postgres => {
                let bus = Self::default();
                let listener = listener(url).await?;
                let task = tokio::spawn(listen(listener, bus.clone(), stop));
                Ok((bus, Some(task)))
            }
            _ => Ok((sqlite_bus(db), None)),
        }
    }

    /// Subscribe; `admin` decides whether ADMIN-only events are received.
    pub fn subscribe(&self, admin: bool) -> EventReceivers {
        EventReceivers {
            public: self.public.subscribe(),
            admin: admin.then(|| self.admin.subscribe()),
        }
    }

    /// Deliver to this process's subscribers.
    pub fn send(&self, event: Event) {
        deliver(&self.public, &self.admin, event);
    }
}

/// Process-wide buses of SQLite databases, by file.
fn sqlite_buses() -> &'static Mutex<HashMap<PathBuf, broadcast::WeakSender<Arc<Delivery>>>> {
    static BUSES: OnceLock<Mutex<HashMap<PathBuf, broadcast::WeakSender<Arc<Delivery>>>>> =
        OnceLock::new();
    BUSES.get_or_init(Mutex::default)
}

fn sqlite_key(db: &DatabaseConnection) -> PathBuf {
    let options = db.get_sqlite_connection_pool().connect_options();
    let file = options.get_filename();
    file.canonicalize().unwrap_or_else(|_| file.to_path_buf())
}

/// Two senders per file (public, admin), kept as one entry of each kind.
fn sqlite_bus(db: &DatabaseConnection) -> EventBus {
    let key = sqlite_key(db);
    let mut buses = sqlite_buses().lock().unwrap_or_else(|e| e.into_inner());
    buses.retain(|_, weak| weak.strong_count() > 0);
    let admin_key = admin_key(&key);
    let existing = buses
        .get(&key)
        .and_then(broadcast::WeakSender::upgrade)
        .zip(
            buses
                .get(&admin_key)
                .and_then(broadcast::WeakSender::upgrade),
        );
    match existing {
        Some((public, admin)) => EventBus::of(public, admin),
        None => {
            let bus = EventBus::default();
            buses.insert(key, bus.public.downgrade());
            buses.insert(admin_key, bus.admin.downgrade());
            bus
        }
    }
}

fn admin_key(key: &std::path::Path) -> PathBuf {
    let mut admin = key.as_os_str().to_owned();
    admin.push("#admin");
    PathBuf::from(admin)
}

/// Inside the writer's transaction: on PostgreSQL, NOTIFY (delivered on
/// commit only). Nothing on SQLite.
pub async fn stage(txn: &impl ConnectionTrait, events: &[Event]) -> Result<(), AppError> {
    if txn.get_database_backend() != DbBackend::Postgres || events.is_empty() {
        return Ok(());
    }
    for payload in payloads(events) {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), payload.into()],
        ))
        .await?;
    }
    Ok(())
}

/// A scalar SQL subquery that NOTIFYs, on PostgreSQL, an `Expired` event
/// for every `id` of the CTE `source`, [`EXPIRED_PER_PAYLOAD`] to a payload,
/// in the JSON form [`Event`] is read in (`[{"k": "E", "o": "<id>"}, ...]`);
/// its value is the number of payloads. The sweep puts it in the statement
/// that flags a batch, so the batch's events cost no round trip of their
/// own (a batch of 1,000 used to send seven `pg_notify` statements).
pub fn notify_expired_sql(source: &str) -> String {
    format!(
        "(SELECT count(pg_notify('{CHANNEL}', payload)) FROM (\
             SELECT '[' || string_agg(jsonb_build_object('k', 'E', 'o', id)::text, ',') || ']' \
                 AS payload \
             FROM (SELECT id, row_number() OVER () - 1 AS n FROM {source}) AS numbered \
             GROUP BY n / {EXPIRED_PER_PAYLOAD}) AS chunks)"
    )
}

/// As [`stage`], sent with the writer's other batched writes.
pub fn stage_into(batch: &mut WriteBatch, events: &[Event]) {
    for payload in payloads(events) {
        batch.notify(CHANNEL, payload);
    }
}

/// After the writer's commit: on SQLite, deliver in process. Nothing on
/// PostgreSQL (the listeners deliver what [`stage`] notified).
pub fn committed(db: &DatabaseConnection, events: &[Event]) {
    if db.get_database_backend() != DbBackend::Sqlite || events.is_empty() {
        return;
    }
    let key = sqlite_key(db);
    let buses = sqlite_buses().lock().unwrap_or_else(|e| e.into_inner());
    let public = buses.get(&key).and_then(broadcast::WeakSender::upgrade);
    let admin = buses
        .get(&admin_key(&key))
        .and_then(broadcast::WeakSender::upgrade);
    drop(buses);
    if let (Some(public), Some(admin)) = (public, admin) {
        for event in events {
            deliver(&public, &admin, *event);
        }
    }
}

/// Hand `event` to the subscribers that may see it: an expiry to admins
/// only, a gap to everyone, the rest on the public channel.
fn deliver(
    public: &broadcast::Sender<Arc<Delivery>>,
    admin: &broadcast::Sender<Arc<Delivery>>,
    event: Event,
) {
    let delivery = Delivery::new(event);
    // No receiver is not an error: nobody is listening.
    let _ = match event.kind {
        EventKind::Expired => admin.send(delivery),
        EventKind::Gap => {
            let _ = admin.send(delivery.clone());
            public.send(delivery)
        }
        _ => public.send(delivery),
    };
}

/// JSON arrays of events, each under [`MAX_PAYLOAD_BYTES`].
fn payloads(events: &[Event]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = 2;
    for event in events {
        let Ok(json) = serde_json::to_string(event) else {
            continue;
        };
        if size + json.len() + 1 > MAX_PAYLOAD_BYTES && !current.is_empty() {
            out.push(format!("[{}]", current.join(",")));
            current.clear();
            size = 2;
        }
        size += json.len() + 1;
        current.push(json);
    }
    if !current.is_empty() {
        out.push(format!("[{}]", current.join(",")));
    }
    out
}

async fn listener(url: &str) -> Result<PgListener, sea_orm::sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Forward what `listener` receives into `bus` until `stop` changes.
///
/// `PgListener` reconnects by itself when its connection drops and listens
/// again; notifications sent while it was away are lost, so a [`EventKind::Gap`]
/// tells subscribers to resubscribe and refetch instead of guessing.
async fn listen(
    mut listener: PgListener,
    bus: EventBus,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    tracing::debug!(channel = CHANNEL, "event listener started");
    loop {
        tokio::select! {
            received = listener.try_recv() => match received {
                Ok(Some(notification)) => forward(&bus, notification.payload()),
                Ok(None) => {
                    tracing::warn!("event listener lost its connection; listening again");
                    bus.send(Event::gap());
                }
                Err(error) => {
                    tracing::warn!(%error, "event listener failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(RELISTEN_PAUSE) => {}
                        _ = stop.changed() => return,
                    }
                }
            },
            _ = stop.changed() => return,
        }
    }
}

fn forward(bus: &EventBus, payload: &str) {
    match serde_json::from_str::<Vec<Event>>(payload) {
        Ok(events) => events.into_iter().for_each(|e| bus.send(e)),
        Err(error) => tracing::warn!(%error, "ignoring a malformed event notification"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_stay_under_the_notify_limit_and_keep_every_event() {
        let events: Vec<Event> = (0..1_000).map(|_| Event::expired(Uuid::now_v7())).collect();
        let payloads = payloads(&events);
        assert!(payloads.len() > 1);
        let mut back = Vec::new();
        for p in &payloads {
            assert!(p.len() <= MAX_PAYLOAD_BYTES);
            back.extend(serde_json::from_str::<Vec<Event>>(p).unwrap());
        }
        assert_eq!(back, events);
    }

    #[test]
    fn the_sql_expiry_payload_is_the_form_events_are_read_in() {
        // What `notify_expired_sql` builds for one id, as PostgreSQL prints
        // `jsonb`; the PostgreSQL API tests read it through LISTEN.
        let id = Uuid::now_v7();
        let sql_form = format!(r#"[{{"k": "E", "o": "{id}"}}]"#);
        assert_eq!(
            serde_json::from_str::<Vec<Event>>(&sql_form).unwrap(),
            vec![Event::expired(id)]
        );
        let sql = notify_expired_sql("flagged");
        assert!(sql.contains(&format!("pg_notify('{CHANNEL}'")), "{sql}");
        assert!(sql.contains("'k', 'E', 'o', id"), "{sql}");
        let one = serde_json::to_string(&Event::expired(id)).unwrap();
        let per_payload = usize::try_from(EXPIRED_PER_PAYLOAD).unwrap();
        assert!((one.len() + 6) * per_payload < MAX_PAYLOAD_BYTES);
    }

    #[test]
    fn expiry_events_go_to_the_admin_channel_only() {
        let bus = EventBus::default();
        let mut agent = bus.subscribe(false);
        let mut admin = bus.subscribe(true);
        bus.send(Event::expired(Uuid::nil()));
        assert!(agent.public.try_recv().is_err());
        assert!(admin.admin.as_mut().unwrap().try_recv().is_ok());
    }
}
