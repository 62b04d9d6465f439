//! Credit requests ("demandes de crédit") and their status history.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::credit_request::{self, CreditRequestStatus};
use entity::opportunity;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, QueryFilter, QueryTrait};
use uuid::Uuid;

use super::page::{self, ListFilter};
use super::status_history::{self, FileFilter};
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
    #[serde(flatten)]
    pub file: FileFilter,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opportunity_id: Option<Uuid>,
}

impl ListFilter for CreditRequestFilter {
    type Entity = credit_request::Entity;

    fn apply(
        &self,
        select: sea_orm::Select<credit_request::Entity>,
    ) -> sea_orm::Select<credit_request::Entity> {
        self.file
            .apply(select)
            .apply_if(self.opportunity_id, |select, id| {
                select.filter(credit_request::Column::OpportunityId.eq(id))
            })
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

/// Create a `RECUE` request on an opportunity (and so for its client), with
/// its initial status, in one transaction. No such opportunity → `NOT_FOUND`.
pub async fn create(
    db: &DatabaseConnection,
    new: NewCreditRequest,
    by: &str,
    now: DateTime<Utc>,
) -> Result<credit_request::Model, AppError> {
    super::write(db, async |txn| {
        let opportunity = super::find::<opportunity::Entity>(txn, new.opportunity_id)
            .await?
            .ok_or(AppError::NotFound("opportunity"))?;
        let request = received(&opportunity, new, by, now);
        status_history::create::<credit_request::Entity>(txn, request, by, now).await
    })
    .await
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
    let new = NewCreditRequest {
        lead_id: Some(lead_id),
        ..NewCreditRequest::default()
    };
    let request = received(opportunity, new, by, now);
    status_history::create_into::<credit_request::Entity>(batch, request, by, now);
}

/// A new `RECUE` request on `opportunity`, for its client.
fn received(
    opportunity: &opportunity::Model,
    new: NewCreditRequest,
    by: &str,
    now: DateTime<Utc>,
) -> credit_request::Model {
    credit_request::Model {
        id: Uuid::now_v7(),
        client_id: opportunity.client_id,
        opportunity_id: opportunity.id,
        lead_id: new.lead_id,
        status: CreditRequestStatus::Recue,
        amount_cents: new.amount_cents,
        term_months: new.term_months,
        lender: new.lender,
        notes: new.notes,
        created_by: by.to_owned(),
        created_at: now,
        updated_at: now,
    }
}

/// The open requests of several clients, newest first, at most `cap` each.
pub async fn open_of_clients(
    db: &impl ConnectionTrait,
    clients: Vec<Uuid>,
    cap: u64,
) -> Result<HashMap<Uuid, Vec<credit_request::Model>>, AppError> {
    let open = credit_request::Column::Status.is_not_in(CLOSED);
    page::newest_per_parent::<credit_request::Entity>(db, clients, cap, open).await
}
