//! `submitLead` as one transaction: find or create the client, apply the
//! expiry rule to its opportunities at the lead's time, then merge the lead
//! into the live candidate or open a new opportunity.
//!
//! Concurrency: on PostgreSQL the transaction first takes transaction-scoped
//! advisory locks on every normalized contact key and the idempotency key,
//! in sorted order, then locks the client row; on SQLite it is an IMMEDIATE
//! (write) transaction. Unique constraints are the last wall: a violation,
//! deadlock or serialization failure rolls back and retries the whole
//! transaction a bounded number of times.
use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{lead, opportunity};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QuerySelect, Statement,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::write_batch::WriteBatch;
use super::{begin_write, client, is_postgres, lead as lead_store, opportunity as opp_store};
use crate::auth::Principal;
use crate::domain::contact::{ContactKind, ContactPoint};
use crate::domain::expiry::{ExpiryPolicy, ExpiryVerdict};
use crate::domain::lead_intake::{
    self, ClientResolution, IntakePlan, LeadWarning, MatchedBy, OpportunitySnapshot, Route,
    ValidLead,
};
use crate::domain::status::OpportunityStatus;
use crate::error::AppError;
use crate::events::{self, Event};

/// How many times a conflicting transaction is retried before `CONFLICT`.
pub const MAX_ATTEMPTS: u32 = 8;

/// Where the lead ended (stored with it).
pub use entity::lead::LeadOutcome;

/// The result of an intake, new or replayed.
#[derive(Clone, Debug)]
pub struct Intake {
    pub lead: lead::Model,
    pub opportunity: opportunity::Model,
    pub outcome: LeadOutcome,
    pub warnings: Vec<LeadWarning>,
    /// True when an idempotency key returned an earlier lead: nothing new
    /// was stored.
    pub replayed: bool,
}

/// SHA-256 of the submission as sent, to tell a replay from a reused key.
pub fn request_hash(valid: &ValidLead) -> Result<String, AppError> {
    let canonical = serde_json::to_vec(&valid.submission).map_err(|e| {
        AppError::Internal(format!("cannot serialize the submission to hash it: {e}"))
    })?;
    Ok(hex::encode(Sha256::digest(canonical)))
}

/// Submit a validated lead at `now`.
pub async fn submit(
    db: &DatabaseConnection,
    principal: &Principal,
    valid: &ValidLead,
    policy: &ExpiryPolicy,
    now: DateTime<Utc>,
) -> Result<Intake, AppError> {
    let hash = request_hash(valid)?;
    for attempt in 1..=MAX_ATTEMPTS {
        // Dropping the transaction on any error rolls it back.
        let result = async {
            let txn = begin_write(db).await?;
            let (intake, events) = submit_in(&txn, principal, valid, &hash, policy, now).await?;
            txn.commit().await?;
            events::committed(db, &events);
            Ok(intake)
        }
        .await;
        match result {
            Err(AppError::Contention) if attempt < MAX_ATTEMPTS => {
                tokio::time::sleep(backoff(attempt)).await;
            }
            other => return other,
        }
    }
    Err(AppError::Contention)
}

/// Small, growing, jittered pause between attempts.
fn backoff(attempt: u32) -> Duration {
    let jitter = u64::from(Uuid::now_v7().as_bytes()[15] % 8);
    Duration::from_millis(u64::from(attempt) * 5 + jitter)
}

/// The transaction, step by step as SPEC section 3 tells it. The reads come
/// first (locks, the contact lookup, the client's live opportunities); every
/// write then goes in one [`WriteBatch`]: one statement on PostgreSQL.
async fn submit_in(
    txn: &DatabaseTransaction,
    principal: &Principal,
    valid: &ValidLead,
    hash: &str,
    policy: &ExpiryPolicy,
    now: DateTime<Utc>,
) -> Result<(Intake, Vec<Event>), AppError> {
    let points = valid.contact_points();
    let idempotency_key = valid.submission.idempotency_key.as_deref();
    lock_contacts(txn, principal, &points, idempotency_key).await?;
    if let Some(key) = idempotency_key
        && let Some(existing) = lead_store::by_idempotency_key(txn, &principal.sub, key).await?
    {
        return Ok((replay(txn, existing, hash).await?, Vec::new()));
    }
    let mut batch = WriteBatch::new();
    let (resolution, client_id) =
        find_or_create_client(txn, &mut batch, valid, &points, now).await?;
    let (plan, live) = match resolution {
        ClientResolution::Existing { .. } => {
            plan_for(txn, client_id, policy, now, Lock::ForUpdate).await?
        }
        // A client created in this transaction has no opportunity yet.
        ClientResolution::New => (lead_intake::plan(&[], policy, now), Vec::new()),
    };
    opp_store::expire_into(
        &mut batch,
        &plan.to_expire,
        now,
        policy,
        opp_store::ExpiryApplier::LeadIntake,
    );
    let (opportunity, outcome) =
        merge_or_open(&mut batch, &plan.route, live, client_id, principal, now)?;
    let decision = decision_record(&resolution, &plan, outcome, policy, now);
    let received = Received {
        valid,
        principal,
        hash,
        now,
    };
    let lead = record_lead(&mut batch, &received, &opportunity, outcome, &decision)?;
    let events = intake_events(&plan.to_expire, outcome, &lead);
    events::stage_into(&mut batch, &events);
    batch.execute(txn).await?;
    let intake = Intake {
        lead,
        opportunity,
        outcome,
        warnings: valid.warnings.clone(),
        replayed: false,
    };
    Ok((intake, events))
}

/// What subscribers hear of an intake: the expiries it applied (admin
/// streams only), the merge, the lead.
fn intake_events(expired_now: &[Uuid], outcome: LeadOutcome, lead: &lead::Model) -> Vec<Event> {
    let mut events: Vec<Event> = expired_now.iter().copied().map(Event::expired).collect();
    if outcome == LeadOutcome::Merged {
        events.push(Event::lead_merged(lead.id, lead.opportunity_id));
    }
    events.push(Event::lead_received(lead.id, lead.opportunity_id));
    events
}

/// Serialize intakes that share a contact point or idempotency key
/// (PostgreSQL; SQLite's write transaction already serializes).
///
/// The contact lookup stays a statement of its own: under READ COMMITTED it
/// must take its snapshot after the locks are held, to see what the
/// previous holder committed.
async fn lock_contacts(
    txn: &DatabaseTransaction,
    principal: &Principal,
    points: &[ContactPoint],
    idempotency_key: Option<&str>,
) -> Result<(), AppError> {
    let mut keys: Vec<String> = points
        .iter()
        .map(|p| contact_lock_key(p.kind(), p.value()))
        .collect();
    if let Some(key) = idempotency_key {
        keys.push(format!("lead-intake:IDEMPOTENCY:{}:{key}", principal.sub));
    }
    advisory_locks(txn, keys).await
}

/// The advisory lock an intake takes for a contact point; whoever changes
/// which client a contact point leads to (anonymization) takes it too.
pub(super) fn contact_lock_key(kind: ContactKind, value: &str) -> String {
    format!("lead-intake:{}:{value}", kind.as_str())
}

/// Take transaction-scoped advisory locks on `keys` in one statement, in
/// sorted order (PostgreSQL; nothing on SQLite, whose write transaction
/// already serializes).
pub(super) async fn advisory_locks(
    txn: &DatabaseTransaction,
    mut keys: Vec<String>,
) -> Result<(), AppError> {
    let backend = txn.get_database_backend();
    if !is_postgres(backend) {
        return Ok(());
    }
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return Ok(());
    }
    // Volatile functions in the target list are evaluated after the sort,
    // so the locks are taken in `n` order.
    let rows: Vec<String> = (1..=keys.len()).map(|n| format!("(${n}, {n})")).collect();
    let sql = format!(
        "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM (VALUES {}) AS t(k, n) ORDER BY n",
        rows.join(", ")
    );
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        keys.into_iter().map(Into::into),
    ))
    .await?;
    Ok(())
}

/// The client the contact points lead to (its missing names completed), or a
/// new one; contact points nobody owns yet are given to it. The client is
/// read (and locked) now; what changes is written with `batch`.
async fn find_or_create_client(
    txn: &DatabaseTransaction,
    batch: &mut WriteBatch,
    valid: &ValidLead,
    points: &[ContactPoint],
    now: DateTime<Utc>,
) -> Result<(ClientResolution, Uuid), AppError> {
    // The owners are locked as they are found (an agent's edit or a status
    // change waits); their contact points cannot move under the lead, as
    // whoever removes them (anonymization) holds these points' advisory
    // locks first.
    let (owners, owner_rows) = client::lock_owners(txn, points).await?;
    let resolution = resolution_of(points, &owners);
    let first_name = valid.submission.first_name.as_deref();
    let last_name = valid.submission.last_name.as_deref();
    let client_id = match &resolution {
        ClientResolution::Existing { client_id, .. } => {
            let existing = owner_rows
                .iter()
                .find(|c| c.id == *client_id)
                .ok_or_else(|| AppError::Internal("the matched client was not read".into()))?;
            client::complete_names_into(batch, existing, first_name, last_name, now);
            *client_id
        }
        ClientResolution::New => {
            client::create_into(
                batch,
                first_name.map(str::to_owned),
                last_name.map(str::to_owned),
                now,
            )
            .id
        }
    };
    let unowned: Vec<ContactPoint> = points
        .iter()
        .filter(|p| !owners.contains_key(*p))
        .cloned()
        .collect();
    client::add_contacts_into(batch, client_id, &unowned, now);
    Ok((resolution, client_id))
}

/// Touch the live candidate the lead merges into, or open a new opportunity.
/// `live` holds the rows `plan_for` read (and locked) in this transaction.
fn merge_or_open(
    batch: &mut WriteBatch,
    route: &Route,
    live: Vec<opportunity::Model>,
    client_id: Uuid,
    principal: &Principal,
    now: DateTime<Utc>,
) -> Result<(opportunity::Model, LeadOutcome), AppError> {
    match *route {
        Route::Merge { opportunity_id } => {
            opp_store::touch_live_into(batch, opportunity_id, now);
            let mut merged = live
                .into_iter()
                .find(|o| o.id == opportunity_id)
                .ok_or_else(|| AppError::Internal("merge candidate not among those read".into()))?;
            merged.updated_at = now;
            Ok((merged, LeadOutcome::Merged))
        }
        Route::Open => {
            let opened = opp_store::open_into(batch, client_id, &principal.sub, now);
            Ok((opened, LeadOutcome::NewOpportunity))
        }
    }
}

/// What arrived: the lead, who sent it, its hash, when.
struct Received<'a> {
    valid: &'a ValidLead,
    principal: &'a Principal,
    hash: &'a str,
    now: DateTime<Utc>,
}

/// Store the lead as received, with what the rule decided (written when
/// `batch` runs); the row written is the row returned (no read back).
fn record_lead(
    batch: &mut WriteBatch,
    received: &Received<'_>,
    opportunity: &opportunity::Model,
    outcome: LeadOutcome,
    decision: &DecisionRecord,
) -> Result<lead::Model, AppError> {
    let &Received {
        valid,
        principal,
        hash,
        now,
    } = received;
    let conflict = match decision.conflicting_client_id {
        Some(other) => Some(to_json(
            "contact conflict",
            &ContactConflictRecord {
                kind: ContactKind::Phone.as_str().to_owned(),
                value: valid.phone.as_ref().map(|p| p.as_str().to_owned()),
                other_client_id: other,
            },
        )?),
        None => None,
    };
    let s = &valid.submission;
    let vehicle = s.vehicle.clone().unwrap_or_default();
    let lead = lead::Model {
        id: Uuid::now_v7(),
        client_id: opportunity.client_id,
        opportunity_id: opportunity.id,
        outcome,
        lead_type: s.lead_type,
        source: s.source.clone(),
        first_name: s.first_name.clone(),
        last_name: s.last_name.clone(),
        email_raw: s.email.clone(),
        phone_raw: s.phone.clone(),
        email: valid.email.as_ref().map(|e| e.as_str().to_owned()),
        phone: valid.phone.as_ref().map(|p| p.as_str().to_owned()),
        message: s.message.clone(),
        vehicle_year: vehicle.year,
        vehicle_make: vehicle.make,
        vehicle_model: vehicle.model,
        vehicle_trim: vehicle.trim,
        vehicle_vin: vehicle.vin,
        vehicle_stock_number: vehicle.stock_number,
        vehicle_condition: vehicle.condition,
        received_at: now,
        submitted_by: principal.sub.clone(),
        submitted_role: principal.role.as_str().to_owned(),
        idempotency_key: s.idempotency_key.clone(),
        request_hash: hash.to_owned(),
        warnings: to_json("warnings", &valid.warnings)?,
        contact_conflict: conflict,
        decision: to_json("decision record", decision)?,
    };
    lead_store::insert_into(batch, &lead);
    // A credit application opens its credit request in the same transaction.
    if s.lead_type == crate::domain::lead_intake::LeadType::Cre {
        super::credit_request::open_for_lead_into(batch, lead.id, opportunity, &principal.sub, now);
    }
    Ok(lead)
}

fn to_json(what: &str, value: &impl serde::Serialize) -> Result<serde_json::Value, AppError> {
    serde_json::to_value(value)
        .map_err(|e| AppError::Internal(format!("cannot serialize the lead's {what}: {e}")))
}

/// The original result of an already-seen idempotency key.
async fn replay(
    txn: &DatabaseTransaction,
    existing: lead::Model,
    hash: &str,
) -> Result<Intake, AppError> {
    if existing.request_hash != hash {
        return Err(AppError::Conflict(
            "the idempotency key was already used with a different lead".into(),
        ));
    }
    intake_of(txn, existing).await
}

/// The lead `principal` already sent with `key`, as its original result,
/// whatever the new content: an ADF `status="resend"` repeats a lead it may
/// have reworded.
pub async fn earlier(
    db: &impl ConnectionTrait,
    principal: &Principal,
    key: &str,
) -> Result<Option<Intake>, AppError> {
    match lead_store::by_idempotency_key(db, &principal.sub, key).await? {
        Some(existing) => Ok(Some(intake_of(db, existing).await?)),
        None => Ok(None),
    }
}

async fn intake_of(db: &impl ConnectionTrait, existing: lead::Model) -> Result<Intake, AppError> {
    let opportunity = super::find::<opportunity::Entity>(db, existing.opportunity_id)
        .await?
        .ok_or_else(|| AppError::Internal("lead without its opportunity".into()))?;
    Ok(Intake {
        outcome: existing.outcome,
        warnings: serde_json::from_value(existing.warnings.clone()).map_err(|e| {
            AppError::Internal(format!("lead {} has unreadable warnings: {e}", existing.id))
        })?,
        opportunity,
        lead: existing,
        replayed: true,
    })
}

/// The lead's `contact_conflict` column: a contact point of the lead that
/// belongs to another client than the one it was attached to.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactConflictRecord {
    /// `PHONE` (the email wins).
    pub kind: String,
    pub value: Option<String>,
    pub other_client_id: Uuid,
}

impl ContactConflictRecord {
    /// The stored record of `lead`, if any.
    pub fn of(lead: &lead::Model) -> Result<Option<Self>, AppError> {
        lead.contact_conflict
            .clone()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| AppError::Internal(format!("lead {} contact conflict: {e}", lead.id)))
    }
}

/// What the rule saw and decided, stored on the lead (admin-only
/// `Lead.decision`) and answered by `previewLead`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRecord {
    pub evaluated_at: DateTime<Utc>,
    /// `EMAIL`, `PHONE` or `NONE` (new client).
    pub matched_by: String,
    /// The client the lead was attached to (`None`: a new client).
    pub matched_client_id: Option<Uuid>,
    /// The other owner of the lead's phone, when it is not the matched client.
    pub conflicting_client_id: Option<Uuid>,
    /// The client's newest opportunity not expired before this lead.
    pub candidate_opportunity_id: Option<Uuid>,
    /// `LIVE`, `EXPIRED_NOW` or `ALREADY_EXPIRED`.
    pub candidate_state: Option<String>,
    pub expired_now: Vec<Uuid>,
    pub outcome: LeadOutcome,
    pub window_days: i64,
    pub protected_statuses: Vec<OpportunityStatus>,
}

fn decision_record(
    resolution: &ClientResolution,
    plan: &IntakePlan,
    outcome: LeadOutcome,
    policy: &ExpiryPolicy,
    now: DateTime<Utc>,
) -> DecisionRecord {
    let (matched_by, matched_client_id, conflicting_client_id) = match resolution {
        ClientResolution::Existing {
            client_id,
            matched_by,
            conflicting_client,
        } => (
            match matched_by {
                MatchedBy::Email => "EMAIL",
                MatchedBy::Phone => "PHONE",
            },
            Some(*client_id),
            *conflicting_client,
        ),
        ClientResolution::New => ("NONE", None, None),
    };
    DecisionRecord {
        evaluated_at: now,
        matched_by: matched_by.to_owned(),
        matched_client_id,
        conflicting_client_id,
        candidate_opportunity_id: plan.candidate.map(|(id, _)| id),
        candidate_state: plan.candidate.map(|(_, v)| verdict_name(v).to_owned()),
        expired_now: plan.to_expire.clone(),
        outcome,
        window_days: policy.window.num_days(),
        protected_statuses: policy.protected.iter().copied().collect(),
    }
}

fn verdict_name(verdict: ExpiryVerdict) -> &'static str {
    match verdict {
        ExpiryVerdict::Live => "LIVE",
        ExpiryVerdict::ExpiresNow => "EXPIRED_NOW",
        ExpiryVerdict::AlreadyExpired => "ALREADY_EXPIRED",
    }
}

/// What `submitLead` would do now, writing nothing (admin `previewLead`).
pub async fn preview(
    db: &DatabaseConnection,
    valid: &ValidLead,
    policy: &ExpiryPolicy,
    now: DateTime<Utc>,
) -> Result<DecisionRecord, AppError> {
    let points = valid.contact_points();
    let (resolution, _) = resolve(db, &points).await?;
    let plan = match &resolution {
        ClientResolution::Existing { client_id, .. } => {
            plan_for(db, *client_id, policy, now, Lock::None).await?.0
        }
        ClientResolution::New => lead_intake::plan(&[], policy, now),
    };
    let outcome = match plan.route {
        Route::Merge { .. } => LeadOutcome::Merged,
        Route::Open => LeadOutcome::NewOpportunity,
    };
    Ok(decision_record(&resolution, &plan, outcome, policy, now))
}

/// Which client the contact points lead to, and who owns each point.
async fn resolve(
    db: &impl ConnectionTrait,
    points: &[ContactPoint],
) -> Result<(ClientResolution, HashMap<ContactPoint, Uuid>), AppError> {
    let owners = client::owners(db, points).await?;
    Ok((resolution_of(points, &owners), owners))
}

/// Which client the owners of the contact points make it (SPEC 3).
fn resolution_of(
    points: &[ContactPoint],
    owners: &HashMap<ContactPoint, Uuid>,
) -> ClientResolution {
    let owner_of = |kind| {
        points
            .iter()
            .find(|p| p.kind() == kind)
            .and_then(|p| owners.get(p).copied())
    };
    lead_intake::resolve_client(owner_of(ContactKind::Email), owner_of(ContactKind::Phone))
}

/// Whether reading the candidates locks them.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Lock {
    /// `previewLead`: read only.
    None,
    /// `submitLead` (PostgreSQL): a concurrent status change or sweep batch
    /// on these rows finishes first, and we read what it committed.
    ForUpdate,
}

/// The rule applied at `now` to the client's opportunities not yet expired.
async fn plan_for(
    db: &impl ConnectionTrait,
    client_id: Uuid,
    policy: &ExpiryPolicy,
    now: DateTime<Utc>,
    lock: Lock,
) -> Result<(IntakePlan, Vec<opportunity::Model>), AppError> {
    let mut select = opportunity::Entity::find()
        .filter(opportunity::Column::ClientId.eq(client_id))
        .filter(opportunity::Column::Expiree.eq(false));
    if lock == Lock::ForUpdate {
        select = select.lock_exclusive();
    }
    let live = select.all(db).await?;
    let snapshots: Vec<OpportunitySnapshot> = live
        .iter()
        .map(|o| OpportunitySnapshot {
            id: o.id,
            state: opp_store::expiry_state(o),
        })
        .collect();
    Ok((lead_intake::plan(&snapshots, policy, now), live))
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveEnum, Iterable};

    use super::*;
    use crate::domain::lead_intake::{LeadType, VehicleCondition};

    fn checked(table: &str, column: &str) -> Vec<String> {
        let (_, _, values) = migration::STORED_VALUES
            .iter()
            .find(|(t, c, _)| *t == table && *c == column)
            .unwrap_or_else(|| panic!("{table}.{column} has no CHECK"));
        let mut values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        values.sort_unstable();
        values
    }

    /// What sea-orm writes for every variant of a stored enumeration.
    fn written<E: ActiveEnum<Value = String>>() -> Vec<String> {
        let mut values = E::values();
        values.sort_unstable();
        values
    }

    #[test]
    fn the_database_checks_allow_exactly_the_values_the_code_writes() {
        let statuses = written::<OpportunityStatus>();
        assert_eq!(checked("opportunity", "status"), statuses);
        assert_eq!(
            checked("opportunity_status_change", "from_status"),
            statuses
        );
        assert_eq!(checked("opportunity_status_change", "to_status"), statuses);
        assert_eq!(checked("lead", "outcome"), written::<LeadOutcome>());
        assert_eq!(checked("lead", "lead_type"), written::<LeadType>());
        assert_eq!(
            checked("lead", "vehicle_condition"),
            written::<VehicleCondition>()
        );
        assert_eq!(checked("client_contact", "kind"), written::<ContactKind>());
    }

    #[test]
    fn every_stored_name_is_the_name_the_code_uses() {
        for status in OpportunityStatus::iter() {
            assert_eq!(status.to_value(), status.as_str());
        }
        for outcome in LeadOutcome::iter() {
            assert_eq!(outcome.to_value(), outcome.as_str());
        }
        for lead_type in LeadType::iter() {
            assert_eq!(lead_type.to_value(), lead_type.as_str());
        }
        for condition in VehicleCondition::iter() {
            assert_eq!(condition.to_value(), condition.as_str());
        }
        for kind in ContactKind::iter() {
            assert_eq!(kind.to_value(), kind.as_str());
        }
    }
}
