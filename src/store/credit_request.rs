//! Credit requests ("demandes de crédit") and their status history.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::credit_request::{self, CreditRequestStatus};
use entity::credit_request_status_change;
use entity::opportunity;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryTrait,
};
use uuid::Uuid;

use super::page::{self, ListFilter};
use super::write_batch::WriteBatch;
use super::{set_if_changed, status_history};
use crate::error::AppError;

type History = credit_request_status_change::Entity;

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

impl ListFilter for CreditRequestFilter {
    type Entity = credit_request::Entity;

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
    status_history::record::<History>(db, id, None, CreditRequestStatus::Recue, by, now).await?;
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
    status_history::record_into::<History>(batch, id, None, CreditRequestStatus::Recue, by, now);
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
    let current =
        super::lock_for_update::<credit_request::Entity>(&txn, id, "credit request").await?;
    if let Some(status) = changes.status.filter(|s| *s != current.status) {
        status_history::record::<History>(&txn, id, Some(current.status), status, by, now).await?;
    }
    let mut active: credit_request::ActiveModel = current.clone().into();
    let changed = [
        set_if_changed(&mut active.status, &current.status, changes.status),
        set_if_changed(
            &mut active.amount_cents,
            &current.amount_cents,
            changes.amount_cents,
        ),
        set_if_changed(
            &mut active.term_months,
            &current.term_months,
            changes.term_months,
        ),
        set_if_changed(&mut active.lender, &current.lender, changes.lender),
        set_if_changed(&mut active.notes, &current.notes, changes.notes),
    ]
    .contains(&true);
    active.updated_at = Set(now);
    super::save_and_commit::<credit_request::Entity>(txn, active, changed, id, "credit request")
        .await
}

/// The status histories of several requests, oldest first.
pub async fn history_of(
    db: &impl ConnectionTrait,
    ids: Vec<Uuid>,
) -> Result<Vec<credit_request_status_change::Model>, AppError> {
    status_history::of::<History>(db, ids).await
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
    page::newest_per_parent::<credit_request::Entity>(
        db,
        credit_request::Column::ClientId,
        clients,
        cap,
        credit_request::Column::Status.is_not_in(CLOSED),
        |c| c.client_id,
    )
    .await
}
