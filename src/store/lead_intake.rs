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
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QuerySelect, Statement,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{begin_write, client, is_postgres, lead as lead_store, opportunity as opp_store};
use crate::auth::Principal;
use crate::domain::contact::{ContactKind, ContactPoint};
use crate::domain::expiry::{ExpiryPolicy, ExpiryVerdict};
use crate::domain::lead_intake::{
    self, ClientResolution, IntakePlan, LeadWarning, MatchedBy, OpportunitySnapshot, Route,
    ValidLead,
};
use crate::error::AppError;
use crate::events::{self, Event};

/// How many times a conflicting transaction is retried before `CONFLICT`.
pub const MAX_ATTEMPTS: u32 = 8;

/// Where the lead ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LeadOutcome {
    NewOpportunity,
    Merged,
}

impl LeadOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewOpportunity => "NEW_OPPORTUNITY",
            Self::Merged => "MERGED",
        }
    }

    pub fn parse(s: &str) -> Result<Self, AppError> {
        match s {
            "NEW_OPPORTUNITY" => Ok(Self::NewOpportunity),
            "MERGED" => Ok(Self::Merged),
            other => Err(AppError::Internal(format!("unknown lead outcome {other}"))),
        }
    }
}

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
pub fn request_hash(valid: &ValidLead) -> String {
    let canonical = serde_json::to_vec(&valid.submission).unwrap_or_default();
    hex::encode(Sha256::digest(canonical))
}

/// Submit a validated lead at `now`.
pub async fn submit(
    db: &DatabaseConnection,
    principal: &Principal,
    valid: &ValidLead,
    policy: &ExpiryPolicy,
    now: DateTime<Utc>,
) -> Result<Intake, AppError> {
    let hash = request_hash(valid);
    for attempt in 1..=MAX_ATTEMPTS {
        // Dropping the transaction on any error rolls it back.
        let result = async {
            let txn = begin_write(db).await?;
            let (intake, events) = submit_in(&txn, principal, valid, &hash, policy, now).await?;
            events::stage(&txn, &events).await?;
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

/// Serialize intakes that share a contact point or idempotency key
/// (PostgreSQL; SQLite's write transaction already serializes).
async fn lock_keys(txn: &DatabaseTransaction, mut keys: Vec<String>) -> Result<(), AppError> {
    if !is_postgres(txn.get_database_backend()) {
        return Ok(());
    }
    keys.sort();
    keys.dedup();
    for key in keys {
        txn.execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [format!("lead-intake:{key}").into()],
        ))
        .await?;
    }
    Ok(())
}

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
    let mut keys: Vec<String> = points.iter().map(ContactPoint::key).collect();
    if let Some(key) = idempotency_key {
        keys.push(format!("IDEMPOTENCY:{}:{key}", principal.sub));
    }
    lock_keys(txn, keys).await?;

    if let Some(key) = idempotency_key
        && let Some(existing) = lead_store::by_idempotency_key(txn, &principal.sub, key).await?
    {
        return Ok((replay(txn, existing, hash).await?, Vec::new()));
    }

    // 2. The client.
    let (resolution, owners) = resolve(txn, &points).await?;
    let first_name = valid.submission.first_name.as_deref();
    let last_name = valid.submission.last_name.as_deref();
    let client_id = match &resolution {
        ClientResolution::Existing { client_id, .. } => {
            let existing = client::lock(txn, *client_id)
                .await?
                .ok_or(AppError::Contention)?;
            client::complete_names(txn, &existing, first_name, last_name, now).await?;
            *client_id
        }
        ClientResolution::New => {
            client::create(
                txn,
                first_name.map(str::to_owned),
                last_name.map(str::to_owned),
                now,
            )
            .await?
        }
    };
    let unowned: Vec<ContactPoint> = points
        .iter()
        .filter(|p| !owners.contains_key(*p))
        .cloned()
        .collect();
    client::add_contacts(txn, client_id, &unowned, now).await?;

    // 3. The rule, at the lead's time, on the client's opportunities not yet expired.
    let plan = plan_for(txn, client_id, policy, now, Lock::ForUpdate).await?;
    let expired_now = opp_store::expire(
        txn,
        &plan.to_expire,
        now,
        policy,
        opp_store::ExpiryApplier::LeadIntake,
    )
    .await?;

    // 4. Merge or open.
    let (opportunity_id, outcome) = match plan.route {
        Route::Merge { opportunity_id } => {
            let touched = opportunity::Entity::update_many()
                .col_expr(opportunity::Column::UpdatedAt, Expr::value(now))
                .filter(opportunity::Column::Id.eq(opportunity_id))
                .filter(opportunity::Column::Expiree.eq(false))
                .exec(txn)
                .await?;
            // Cannot happen while the candidate is locked (PostgreSQL) or the
            // transaction is the only writer (SQLite); kept as a last wall so
            // a lead never lands in an expired opportunity.
            if touched.rows_affected == 0 {
                return Err(AppError::Contention);
            }
            (opportunity_id, LeadOutcome::Merged)
        }
        Route::Open => {
            let created = opp_store::create(txn, client_id, &principal.sub, now).await?;
            (created.id, LeadOutcome::NewOpportunity)
        }
    };

    let conflict = match &resolution {
        ClientResolution::Existing {
            conflicting_client: Some(other),
            ..
        } => Some(json!({
            "kind": "PHONE",
            "value": valid.phone.as_ref().map(|p| p.as_str()),
            "otherClientId": other,
        })),
        _ => None,
    };
    let decision = decision_record(&resolution, &plan, outcome, policy, now);
    let s = &valid.submission;
    let vehicle = s.vehicle.clone().unwrap_or_default();
    let lead_id = Uuid::now_v7();
    lead_store::insert(
        txn,
        lead::ActiveModel {
            id: Set(lead_id),
            client_id: Set(client_id),
            opportunity_id: Set(opportunity_id),
            outcome: Set(outcome.as_str().to_owned()),
            lead_type: Set(s.lead_type.as_str().to_owned()),
            source: Set(s.source.clone()),
            first_name: Set(s.first_name.clone()),
            last_name: Set(s.last_name.clone()),
            email_raw: Set(s.email.clone()),
            phone_raw: Set(s.phone.clone()),
            email: Set(valid.email.as_ref().map(|e| e.as_str().to_owned())),
            phone: Set(valid.phone.as_ref().map(|p| p.as_str().to_owned())),
            message: Set(s.message.clone()),
            vehicle_year: Set(vehicle.year),
            vehicle_make: Set(vehicle.make),
            vehicle_model: Set(vehicle.model),
            vehicle_trim: Set(vehicle.trim),
            vehicle_vin: Set(vehicle.vin),
            vehicle_stock_number: Set(vehicle.stock_number),
            vehicle_condition: Set(vehicle.condition.map(|c| c.as_str().to_owned())),
            received_at: Set(now),
            submitted_by: Set(principal.sub.clone()),
            submitted_role: Set(principal.role.as_str().to_owned()),
            idempotency_key: Set(s.idempotency_key.clone()),
            request_hash: Set(hash.to_owned()),
            warnings: Set(serde_json::to_value(&valid.warnings).unwrap_or_default()),
            contact_conflict: Set(conflict),
            decision: Set(serde_json::to_value(&decision).unwrap_or_default()),
        },
    )
    .await?;

    if s.lead_type == lead_intake::LeadType::Cre {
        super::credit_request::create_for_lead(txn, lead_id, opportunity_id, &principal.sub, now)
            .await?;
    }
    let lead = lead_store::find(txn, lead_id)
        .await?
        .ok_or_else(|| AppError::Internal("lead vanished after insert".into()))?;
    let opportunity = opp_store::find(txn, opportunity_id)
        .await?
        .ok_or_else(|| AppError::Internal("opportunity vanished".into()))?;
    let mut events: Vec<Event> = expired_now.into_iter().map(Event::expired).collect();
    if outcome == LeadOutcome::Merged {
        events.push(Event::lead_merged(lead_id, opportunity_id));
    }
    events.push(Event::lead_received(lead_id, opportunity_id));
    let intake = Intake {
        lead,
        opportunity,
        outcome,
        warnings: valid.warnings.clone(),
        replayed: false,
    };
    Ok((intake, events))
}

/// The original result of an already-seen idempotency key.
async fn replay(
    txn: &DatabaseTransaction,
    existing: lead::Model,
    hash: &str,
) -> Result<Intake, AppError> {
    if existing.request_hash != hash {
        return Err(AppError::Conflict(
            "idempotencyKey was already used with a different lead".into(),
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
    let opportunity = opp_store::find(db, existing.opportunity_id)
        .await?
        .ok_or_else(|| AppError::Internal("lead without its opportunity".into()))?;
    Ok(Intake {
        outcome: LeadOutcome::parse(&existing.outcome)?,
        warnings: serde_json::from_value(existing.warnings.clone()).unwrap_or_default(),
        opportunity,
        lead: existing,
        replayed: true,
    })
}

/// What the rule saw and decided, stored on the lead (admin-only
/// `Lead.decision`) and answered by `previewLead`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRecord {
    pub evaluated_at: DateTime<Utc>,
    /// `EMAIL`, `PHONE` or `NONE` (new client).
    pub matched_by: String,
    pub matched_client_id: Option<Uuid>,
    pub conflicting_client_id: Option<Uuid>,
    pub candidate_opportunity_id: Option<Uuid>,
    /// `LIVE`, `EXPIRED_NOW` or `ALREADY_EXPIRED`.
    pub candidate_state: Option<String>,
    pub expired_now: Vec<Uuid>,
    /// `NEW_OPPORTUNITY` or `MERGED`.
    pub outcome: String,
    pub window_days: i64,
    pub protected_statuses: Vec<String>,
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
        outcome: outcome.as_str().to_owned(),
        window_days: policy.window.num_days(),
        protected_statuses: policy
            .protected
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
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
            plan_for(db, *client_id, policy, now, Lock::None).await?
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
    let owner_of = |kind| {
        points
            .iter()
            .find(|p| p.kind() == kind)
            .and_then(|p| owners.get(p).copied())
    };
    let resolution =
        lead_intake::resolve_client(owner_of(ContactKind::Email), owner_of(ContactKind::Phone));
    Ok((resolution, owners))
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
) -> Result<IntakePlan, AppError> {
    let mut select = opportunity::Entity::find()
        .filter(opportunity::Column::ClientId.eq(client_id))
        .filter(opportunity::Column::Expiree.eq(false));
    if lock == Lock::ForUpdate {
        select = select.lock_exclusive();
    }
    let live = select.all(db).await?;
    let snapshots = live
        .iter()
        .map(|o| {
            Ok(OpportunitySnapshot {
                id: o.id,
                state: opp_store::expiry_state(o)?,
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    Ok(lead_intake::plan(&snapshots, policy, now))
}
