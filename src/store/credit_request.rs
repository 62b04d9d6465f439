//! Credit requests ("demandes de crédit") and their status history.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::credit_request::{self, CreditRequestStatus};
use entity::credit_request_status_change;
use entity::opportunity;
use sea_orm::sea_query::InsertStatement;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use uuid::Uuid;

use super::page::{self, PageRequest, SortDirection};
use super::write_batch::WriteBatch;
use crate::error::AppError;

/// Statuses of a closed credit request.
pub const CLOSED: [CreditRequestStatus; 3] = [
    CreditRequestStatus::Approuvee,
    CreditRequestStatus::Refusee,
    CreditRequestStatus::Annulee,
];

/// Filters of the credit request list (every given field must hold).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreditRequestFilter {
    #[serde(default, rename = "status", skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opportunity_id: Option<Uuid>,
}

impl CreditRequestFilter {
    fn apply(
        &self,
        mut select: sea_orm::Select<credit_request::Entity>,
    ) -> sea_orm::Select<credit_request::Entity> {
        if !self.statuses.is_empty() {
            select = select.filter(credit_request::Column::Status.is_in(self.statuses.clone()));
        }
        if let Some(client_id) = self.client_id {
            select = select.filter(credit_request::Column::ClientId.eq(client_id));
        }
        if let Some(opportunity_id) = self.opportunity_id {
            select = select.filter(credit_request::Column::OpportunityId.eq(opportunity_id));
        }
        select
    }
}

/// What a new request holds.
#[derive(Default)]
pub struct NewCreditRequest {
    pub opportunity_id: Uuid,
    pub lead_id: Option<Uuid>,
    pub amount_cents: Option<i64>,
    pub term_months: Option<i32>,
    pub lender: Option<String>,
    pub notes: Option<String>,
}

/// Changes to a request; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Default)]
pub struct CreditRequestChanges {
    pub status: Option<CreditRequestStatus>,
    pub amount_cents: Option<Option<i64>>,
    pub term_months: Option<Option<i32>>,
    pub lender: Option<Option<String>>,
    pub notes: Option<Option<String>>,
}

pub async fn find(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<credit_request::Model>, AppError> {
    Ok(credit_request::Entity::find_by_id(id).one(db).await?)
}

/// Create a `RECUE` request on an opportunity (and so for its client), with
/// its initial status, inside the caller's transaction.
pub async fn create(
    db: &impl ConnectionTrait,
    new: NewCreditRequest,
    by: &str,
    now: DateTime<Utc>,
) -> Result<credit_request::Model, AppError> {
    let opportunity = super::opportunity::find(db, new.opportunity_id)
        .await?
        .ok_or(AppError::NotFound("opportunity"))?;
    let id = Uuid::now_v7();
    credit_request::Entity::insert(credit_request::ActiveModel {
        id: Set(id),
        client_id: Set(opportunity.client_id),
        opportunity_id: Set(opportunity.id),
        lead_id: Set(new.lead_id),
        status: Set(CreditRequestStatus::Recue),
        amount_cents: Set(new.amount_cents),
        term_months: Set(new.term_months),
        lender: Set(new.lender),
        notes: Set(new.notes),
        created_by: Set(by.to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    record_status_change(db, id, None, CreditRequestStatus::Recue, by, now).await?;
    find(db, id)
        .await?
        .ok_or_else(|| AppError::Internal("credit request vanished after insert".into()))
}

/// The `RECUE` request a `CRE` lead opens on the opportunity it landed in,
/// with its initial status (written when the intake's `batch` runs).
pub fn open_for_lead_into(
    batch: &mut WriteBatch,
    lead_id: Uuid,
    opportunity: &opportunity::Model,
    by: &str,
    now: DateTime<Utc>,
) {
    let id = Uuid::now_v7();
    batch.insert(
        credit_request::Entity::insert(credit_request::ActiveModel {
            id: Set(id),
            client_id: Set(opportunity.client_id),
            opportunity_id: Set(opportunity.id),
            lead_id: Set(Some(lead_id)),
            status: Set(CreditRequestStatus::Recue),
            amount_cents: Set(None),
            term_months: Set(None),
            lender: Set(None),
            notes: Set(None),
            created_by: Set(by.to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .into_query(),
    );
    batch.insert(status_change(id, None, CreditRequestStatus::Recue, by, now));
}

/// Apply `changes`; a status change is recorded in the history.
pub async fn update(
    db: &DatabaseConnection,
    id: Uuid,
    changes: CreditRequestChanges,
    by: &str,
    now: DateTime<Utc>,
) -> Result<credit_request::Model, AppError> {
    let txn = super::begin_write(db).await?;
    let current = credit_request::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(AppError::NotFound("credit request"))?;
    let mut active: credit_request::ActiveModel = current.clone().into();
    let mut changed = false;
    if let Some(status) = changes.status
        && status != current.status
    {
        active.status = Set(status);
        record_status_change(&txn, id, Some(current.status), status, by, now).await?;
        changed = true;
    }
    if let Some(amount) = changes.amount_cents
        && amount != current.amount_cents
    {
        active.amount_cents = Set(amount);
        changed = true;
    }
    if let Some(term) = changes.term_months
        && term != current.term_months
    {
        active.term_months = Set(term);
        changed = true;
    }
    if let Some(lender) = changes.lender
        && lender != current.lender
    {
        active.lender = Set(lender);
        changed = true;
    }
    if let Some(notes) = changes.notes
        && notes != current.notes
    {
        active.notes = Set(notes);
        changed = true;
    }
    if changed {
        active.updated_at = Set(now);
        credit_request::Entity::update(active).exec(&txn).await?;
    }
    let updated = find(&txn, id)
        .await?
        .ok_or(AppError::NotFound("credit request"))?;
    txn.commit().await?;
    Ok(updated)
}

async fn record_status_change(
    db: &impl ConnectionTrait,
    request: Uuid,
    from: Option<CreditRequestStatus>,
    to: CreditRequestStatus,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    db.execute(&status_change(request, from, to, by, now))
        .await?;
    Ok(())
}

/// The history row of a status change.
fn status_change(
    request: Uuid,
    from: Option<CreditRequestStatus>,
    to: CreditRequestStatus,
    by: &str,
    now: DateTime<Utc>,
) -> InsertStatement {
    credit_request_status_change::Entity::insert(credit_request_status_change::ActiveModel {
        id: Set(Uuid::now_v7()),
        credit_request_id: Set(request),
        from_status: Set(from),
        to_status: Set(to),
        changed_by: Set(by.to_owned()),
        changed_at: Set(now),
    })
    .into_query()
}

/// One page of requests matching every filter given.
pub async fn list(
    db: &impl ConnectionTrait,
    filters: &[&CreditRequestFilter],
    page: &PageRequest,
) -> Result<(Vec<credit_request::Model>, bool), AppError> {
    page::fetch(
        db,
        select(filters),
        credit_request::Column::CreatedAt,
        credit_request::Column::Id,
        page,
    )
    .await
}

pub async fn count(
    db: &impl ConnectionTrait,
    filters: &[&CreditRequestFilter],
) -> Result<u64, AppError> {
    Ok(select(filters).count(db).await?)
}

fn select(filters: &[&CreditRequestFilter]) -> sea_orm::Select<credit_request::Entity> {
    filters
        .iter()
        .fold(credit_request::Entity::find(), |select, f| f.apply(select))
}

/// The status histories of several requests, oldest first.
pub async fn history_of(
    db: &impl ConnectionTrait,
    ids: Vec<Uuid>,
) -> Result<Vec<credit_request_status_change::Model>, AppError> {
    Ok(credit_request_status_change::Entity::find()
        .filter(credit_request_status_change::Column::CreditRequestId.is_in(ids))
        .order_by_asc(credit_request_status_change::Column::ChangedAt)
        .order_by_asc(credit_request_status_change::Column::Id)
        .all(db)
        .await?)
}

/// The requests several leads created.
pub async fn of_leads(
    db: &impl ConnectionTrait,
    leads: Vec<Uuid>,
) -> Result<Vec<credit_request::Model>, AppError> {
    Ok(credit_request::Entity::find()
        .filter(credit_request::Column::LeadId.is_in(leads))
        .all(db)
        .await?)
}

/// The open requests of several clients, newest first, at most `cap` each.
pub async fn open_of_clients(
    db: &impl ConnectionTrait,
    clients: Vec<Uuid>,
    cap: u64,
) -> Result<HashMap<Uuid, Vec<credit_request::Model>>, AppError> {
    let pages = page::fetch_per_parent_where::<credit_request::Entity, _>(
        db,
        credit_request::Column::ClientId,
        credit_request::Column::CreatedAt,
        credit_request::Column::Id,
        clients,
        &PageRequest {
            first: cap,
            after: None,
            direction: SortDirection::Desc,
        },
        credit_request::Column::Status.is_not_in(CLOSED),
        |c| c.client_id,
    )
    .await?;
    Ok(pages.into_iter().map(|(k, (rows, _))| (k, rows)).collect())
}
