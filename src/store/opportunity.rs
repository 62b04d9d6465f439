//! Opportunities and their status history.

use chrono::{DateTime, Utc};
use entity::{opportunity, opportunity_expiry_event, opportunity_status_change};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryTrait,
};
use uuid::Uuid;

use super::page::{self, PageRequest, SortDirection};
use super::status_history;
use super::write_batch::WriteBatch;
use crate::domain::expiry::{ExpiryPolicy, ExpiryState};
use crate::domain::status::OpportunityStatus;
use crate::error::AppError;
use crate::events::{self, Event};

type History = opportunity_status_change::Entity;

/// Which part of the system applied the expiry rule (audit).
#[derive(Copy, Clone, Debug)]
pub enum ExpiryApplier {
    Sweep,
    LeadIntake,
    StatusChange,
}

impl ExpiryApplier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sweep => "SWEEP",
            Self::LeadIntake => "LEAD_INTAKE",
            Self::StatusChange => "STATUS_CHANGE",
        }
    }
}

/// What the opportunity list is sorted by (then by id).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OpportunitySort {
    /// When the opportunity was opened.
    #[default]
    CreatedAt,
    /// Its last activity: a status change or a lead merged into it. A page
    /// boundary follows the rows as they are when each page is read: a row
    /// touched between two pages moves.
    UpdatedAt,
}

impl OpportunitySort {
    fn column(self) -> opportunity::Column {
        match self {
            Self::CreatedAt => opportunity::Column::CreatedAt,
            Self::UpdatedAt => opportunity::Column::UpdatedAt,
        }
    }

    /// The time a page cursor of this order holds.
    pub fn key(self) -> page::SortKey {
        match self {
            Self::CreatedAt => page::SortKey::CreatedAt,
            Self::UpdatedAt => page::SortKey::UpdatedAt,
        }
    }

    /// The row's place in this order, as a page cursor.
    pub fn cursor_of(self, o: &opportunity::Model) -> page::Cursor {
        page::Cursor {
            created_at: match self {
                Self::CreatedAt => o.created_at,
                Self::UpdatedAt => o.updated_at,
            },
            id: o.id,
            key: self.key(),
        }
    }
}

/// The order of an opportunity list, as a saved view stores it
/// (`{"field": "UPDATED_AT", "direction": "ASC"}`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpportunityOrder {
    pub field: OpportunitySort,
    pub direction: SortDirection,
}

/// Filters of the opportunity list.
#[derive(Clone, Debug, Default)]
pub struct OpportunityFilter {
    pub statuses: Vec<OpportunityStatus>,
    pub client_id: Option<Uuid>,
    /// Admin-only: expired (true) or live (false) opportunities.
    pub expiree: Option<bool>,
}

impl OpportunityFilter {
    fn apply(
        &self,
        select: sea_orm::Select<opportunity::Entity>,
    ) -> sea_orm::Select<opportunity::Entity> {
        status_history::filter_by_status_and_client(select, &self.statuses, self.client_id)
            .apply_if(self.expiree, |select, expiree| {
                select.filter(opportunity::Column::Expiree.eq(expiree))
            })
    }
}

/// What the expiry rule needs of an opportunity.
pub fn expiry_state(model: &opportunity::Model) -> ExpiryState {
    ExpiryState {
        created_at: model.created_at,
        status: model.status,
        expiree: model.expiree,
    }
}

pub async fn list(
    db: &impl ConnectionTrait,
    filter: &OpportunityFilter,
    sort: OpportunitySort,
    page: &PageRequest,
) -> Result<(Vec<opportunity::Model>, bool), AppError> {
    page::fetch(
        db,
        filter.apply(opportunity::Entity::find()),
        sort.column(),
        opportunity::Column::Id,
        page,
    )
    .await
}

pub async fn count(db: &impl ConnectionTrait, filter: &OpportunityFilter) -> Result<u64, AppError> {
    Ok(filter.apply(opportunity::Entity::find()).count(db).await?)
}

/// Open a new `NOUVEAU` opportunity for an existing client, with its
/// initial status, in one transaction.
pub async fn open_for_client(
    db: &DatabaseConnection,
    client_id: Uuid,
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<opportunity::Model, AppError> {
    super::write(db, async |txn| {
        super::find::<entity::client::Entity>(txn, client_id)
            .await?
            .ok_or(AppError::NotFound("client"))?;
        let mut batch = WriteBatch::new();
        let created = open_into(&mut batch, client_id, created_by, now);
        batch.execute(txn).await?;
        Ok(created)
    })
    .await
}

/// Open a new `NOUVEAU` opportunity and record its initial status (written
/// when `batch` runs). The row written is the row returned: no read back.
pub fn open_into(
    batch: &mut WriteBatch,
    client_id: Uuid,
    created_by: &str,
    now: DateTime<Utc>,
) -> opportunity::Model {
    let model = opportunity::Model {
        id: Uuid::now_v7(),
        client_id,
        status: OpportunityStatus::Nouveau,
        created_at: now,
        updated_at: now,
        expiree: false,
        expired_at: None,
        created_by: created_by.to_owned(),
    };
    status_history::create_into::<opportunity::Entity>(batch, model.clone(), created_by, now);
    model
}

/// Record the merge of a lead into a live opportunity: its `updated_at`
/// moves (written when `batch` runs). The caller holds the row's lock; an
/// opportunity flagged meanwhile would change no row and retry the
/// transaction, so a lead never lands in an expired opportunity.
pub fn touch_live_into(batch: &mut WriteBatch, id: Uuid, now: DateTime<Utc>) {
    let touch = opportunity::Entity::update_many()
        .col_expr(opportunity::Column::UpdatedAt, Expr::value(now))
        .filter(opportunity::Column::Id.eq(id))
        .filter(opportunity::Column::Expiree.eq(false));
    batch.update_exactly(touch.into_query(), 1);
}

/// Change the status, record it in the history, and apply the expiry rule
/// right away (an old opportunity leaving the protected set expires now).
pub async fn update_status(
    db: &DatabaseConnection,
    id: Uuid,
    to: OpportunityStatus,
    by: &str,
    now: DateTime<Utc>,
    policy: &ExpiryPolicy,
) -> Result<opportunity::Model, AppError> {
    let txn = super::begin_write(db).await?;
    let current = super::lock_for_update::<opportunity::Entity>(&txn, id, "opportunity").await?;
    let from = current.status;
    let mut events = Vec::new();
    if from != to {
        // Judge the status it had until now first: an opportunity already
        // due cannot escape by moving into a protected status.
        let mut expired = expire(&txn, &[id], now, policy, ExpiryApplier::StatusChange).await?;
        opportunity::Entity::update_many()
            .col_expr(opportunity::Column::Status, Expr::value(to))
            .col_expr(opportunity::Column::UpdatedAt, Expr::value(now))
            .filter(opportunity::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        status_history::record::<History>(&txn, id, Some(from), to, by, now).await?;
        if expired.is_empty() && !current.expiree && policy.is_due(current.created_at, to, now) {
            expired = expire(&txn, &[id], now, policy, ExpiryApplier::StatusChange).await?;
        }
        events.push(Event::status_changed(id));
        events.extend(expired.into_iter().map(Event::expired));
    }
    let updated = super::find::<opportunity::Entity>(&txn, id)
        .await?
        .ok_or(AppError::NotFound("opportunity"))?;
    events::stage(&txn, &events).await?;
    txn.commit().await?;
    events::committed(db, &events);
    Ok(updated)
}

/// Flag as expired, at `now`, the opportunities among `ids` that the rule
/// says are due (re-checked in the UPDATE itself), and write one audit event
/// each. Returns the ids flagged.
pub async fn expire(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
    now: DateTime<Utc>,
    policy: &ExpiryPolicy,
    applied_by: ExpiryApplier,
) -> Result<Vec<Uuid>, AppError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let flagged = expire_where(
        db,
        Condition::all().add(opportunity::Column::Id.is_in(ids.iter().copied())),
        now,
        policy,
        applied_by,
    )
    .await?;
    Ok(flagged.into_iter().map(|o| o.id).collect())
}

/// Flag as expired, at `now`, the opportunities `ids` the rule found due in
/// rows the caller read and locked, with one audit event each (written when
/// `batch` runs). The UPDATE re-checks the rule: if it flags fewer rows than
/// the caller judged due, the transaction starts again.
pub fn expire_into(
    batch: &mut WriteBatch,
    ids: &[Uuid],
    now: DateTime<Utc>,
    policy: &ExpiryPolicy,
    applied_by: ExpiryApplier,
) {
    if ids.is_empty() {
        return;
    }
    let flag = opportunity::Entity::update_many()
        .col_expr(opportunity::Column::Expiree, Expr::value(true))
        .col_expr(opportunity::Column::ExpiredAt, Expr::value(now))
        .filter(super::expiry::due_condition(policy, now))
        .filter(opportunity::Column::Id.is_in(ids.iter().copied()));
    batch.update_exactly(flag.into_query(), ids.len() as u64);
    batch.insert(
        opportunity_expiry_event::Entity::insert_many(
            ids.iter()
                .map(|&id| expiry_event(id, now, policy, applied_by)),
        )
        .into_query(),
    );
}

fn expiry_event(
    opportunity_id: Uuid,
    now: DateTime<Utc>,
    policy: &ExpiryPolicy,
    applied_by: ExpiryApplier,
) -> opportunity_expiry_event::ActiveModel {
    opportunity_expiry_event::ActiveModel {
        opportunity_id: Set(opportunity_id),
        expired_at: Set(now),
        window_days: Set(policy.window.num_days()),
        protected_statuses: Set(policy.protected_names()),
        applied_by: Set(applied_by.as_str().to_owned()),
    }
}

/// Flag every due opportunity matching `scope`; see [`expire`]. Returns the
/// rows flagged.
pub async fn expire_where(
    db: &impl ConnectionTrait,
    scope: Condition,
    now: DateTime<Utc>,
    policy: &ExpiryPolicy,
    applied_by: ExpiryApplier,
) -> Result<Vec<opportunity::Model>, AppError> {
    let flagged = opportunity::Entity::update_many()
        .col_expr(opportunity::Column::Expiree, Expr::value(true))
        .col_expr(opportunity::Column::ExpiredAt, Expr::value(now))
        .filter(super::expiry::due_condition(policy, now))
        .filter(scope)
        .exec_with_returning(db)
        .await?;
    if flagged.is_empty() {
        return Ok(flagged);
    }
    let events = flagged
        .iter()
        .map(|o| expiry_event(o.id, now, policy, applied_by));
    opportunity_expiry_event::Entity::insert_many(events)
        .exec_without_returning(db)
        .await?;
    Ok(flagged)
}
