//! Quebec's Law 25 in the database: a person's data exported whole, or
//! anonymized for good, each recorded in `privacy_event` (who, when).
//!
//! Anonymization erases what identifies the person — names, contact points,
//! the contact data and messages of their leads as submitted, the request
//! hashes computed from those, and the contact values other clients' leads
//! recorded as conflicts with theirs — and keeps ids, statuses, dates and
//! `expiree`, so statistics and the rule's audit stay true. Credit-request
//! notes and service-case explanations are erased too.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{
    client, client_contact, credit_request, lead, opportunity, privacy_event, service_case,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveEnum, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, Statement,
};
use serde::Serialize;
use uuid::Uuid;

use super::status_history::{self, FileStatus, StatusFile, StatusHistory};
use super::{begin_write, is_postgres};
use crate::auth::Principal;
use crate::error::AppError;

/// What `request_hash` holds once its inputs are erased: no replay of the
/// old body can match it, and nothing is derived from the person any more.
pub const ERASED_HASH: &str = "anonymized";

/// Everything held about one person, as `exportClientData` returns it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientExport {
    pub exported_at: DateTime<Utc>,
    pub client: ClientRecord,
    pub contact_points: Vec<ContactRecord>,
    pub leads: Vec<LeadRecord>,
    pub opportunities: Vec<WithHistory<OpportunityRecord>>,
    pub service_cases: Vec<WithHistory<ServiceCaseRecord>>,
    pub credit_requests: Vec<WithHistory<CreditRequestRecord>>,
}

/// A file of the person's and the changes of its status, oldest first
/// (`statusHistory`, after the file's own fields).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WithHistory<R> {
    #[serde(flatten)]
    pub file: R,
    pub status_history: Vec<StatusChangeRecord>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCaseRecord {
    pub id: Uuid,
    pub subject: String,
    pub description: String,
    pub status: String,
    pub assignee: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreditRequestRecord {
    pub id: Uuid,
    pub opportunity_id: Uuid,
    pub status: String,
    /// Dollars, exact (`"32500.00"`).
    pub amount: Option<String>,
    pub term_months: Option<i32>,
    pub lender: Option<String>,
    pub notes: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientRecord {
    pub id: Uuid,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactRecord {
    pub kind: String,
    pub value: String,
}

/// A lead as it was submitted, and where it went.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadRecord {
    pub id: Uuid,
    pub received_at: DateTime<Utc>,
    pub r#type: String,
    pub source: Option<String>,
    pub submitted_by: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub submitted_email: Option<String>,
    pub submitted_phone: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub message: Option<String>,
    pub vehicle: serde_json::Value,
    pub warnings: serde_json::Value,
    pub opportunity_id: Uuid,
    pub outcome: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpportunityRecord {
    pub id: Uuid,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChangeRecord {
    pub from: Option<String>,
    pub to: String,
    pub changed_by: String,
    pub changed_at: DateTime<Utc>,
}

/// Kinds of `privacy_event`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PrivacyAction {
    Export,
    Anonymization,
}

impl PrivacyAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Export => "EXPORT",
            Self::Anonymization => "ANONYMIZATION",
        }
    }
}

async fn record(
    db: &impl ConnectionTrait,
    client_id: Uuid,
    action: PrivacyAction,
    who: &Principal,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    privacy_event::Entity::insert(privacy_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        client_id: Set(client_id),
        kind: Set(action.as_str().to_owned()),
        principal: Set(who.sub.clone()),
        role: Set(who.role.as_str().to_owned()),
        at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The person's whole file, and a record that it was exported. `None` if
/// there is no such client (nothing recorded).
pub async fn export(
    db: &DatabaseConnection,
    client_id: Uuid,
    who: &Principal,
    now: DateTime<Utc>,
) -> Result<Option<ClientExport>, AppError> {
    let txn = begin_write(db).await?;
    let Some(client) = super::find::<client::Entity>(&txn, client_id).await? else {
        return Ok(None);
    };
    let contact_points = client_contact::Entity::find()
        .filter(client_contact::Column::ClientId.eq(client_id))
        .order_by_asc(client_contact::Column::Kind)
        .order_by_asc(client_contact::Column::Value)
        .all(&txn)
        .await?
        .into_iter()
        .map(|c| ContactRecord {
            kind: c.kind.as_str().to_owned(),
            value: c.value,
        })
        .collect();
    let leads = lead::Entity::find()
        .filter(lead::Column::ClientId.eq(client_id))
        .order_by_asc(lead::Column::ReceivedAt)
        .order_by_asc(lead::Column::Id)
        .all(&txn)
        .await?
        .into_iter()
        .map(LeadRecord::from)
        .collect();
    let opportunities = files_of::<opportunity::Entity, _>(&txn, client_id).await?;
    let service_cases = files_of::<service_case::Entity, _>(&txn, client_id).await?;
    let credit_requests = files_of::<credit_request::Entity, _>(&txn, client_id).await?;
    record(&txn, client_id, PrivacyAction::Export, who, now).await?;
    txn.commit().await?;
    Ok(Some(ClientExport {
        exported_at: now,
        client: client.into(),
        contact_points,
        leads,
        opportunities,
        service_cases,
        credit_requests,
    }))
}

fn status_text(value: impl ActiveEnum<Value = String>) -> String {
    value.to_value()
}

/// The client's files of kind `F`, oldest first, each with its status
/// history.
async fn files_of<F, R>(
    db: &impl ConnectionTrait,
    client_id: Uuid,
) -> Result<Vec<WithHistory<R>>, AppError>
where
    F: StatusFile,
    FileStatus<F>: ActiveEnum<Value = String>,
    R: From<F::Model>,
{
    let files = F::find()
        .filter(F::PARENT.eq(client_id))
        .order_by_asc(F::LISTED_AT)
        .order_by_asc(F::ID)
        .all(db)
        .await?;
    let ids = files.iter().map(F::id).collect();
    let mut histories = histories::<F::History>(status_history::of::<F::History>(db, ids).await?);
    Ok(files
        .into_iter()
        .map(|file| WithHistory {
            status_history: histories.remove(&F::id(&file)).unwrap_or_default(),
            file: file.into(),
        })
        .collect())
}

/// Status changes (already in order) grouped by the file they belong to.
fn histories<H>(rows: Vec<H::Model>) -> HashMap<Uuid, Vec<StatusChangeRecord>>
where
    H: StatusHistory,
    H::Status: ActiveEnum<Value = String>,
{
    let mut grouped: HashMap<Uuid, Vec<StatusChangeRecord>> = HashMap::new();
    for row in rows {
        let change = H::change(row);
        grouped
            .entry(change.record)
            .or_default()
            .push(StatusChangeRecord {
                from: change.from.map(status_text),
                to: status_text(change.to),
                changed_by: change.by,
                changed_at: change.at,
            });
    }
    grouped
}

impl From<client::Model> for ClientRecord {
    fn from(c: client::Model) -> Self {
        Self {
            id: c.id,
            first_name: c.first_name,
            last_name: c.last_name,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

impl From<opportunity::Model> for OpportunityRecord {
    fn from(o: opportunity::Model) -> Self {
        Self {
            id: o.id,
            status: status_text(o.status),
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

impl From<service_case::Model> for ServiceCaseRecord {
    fn from(c: service_case::Model) -> Self {
        Self {
            id: c.id,
            subject: c.subject,
            description: c.description,
            status: status_text(c.status),
            assignee: c.assignee,
            created_by: c.created_by,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

impl From<credit_request::Model> for CreditRequestRecord {
    fn from(c: credit_request::Model) -> Self {
        Self {
            id: c.id,
            opportunity_id: c.opportunity_id,
            status: status_text(c.status),
            amount: c.amount_cents.map(crate::domain::money::format_cents),
            term_months: c.term_months,
            lender: c.lender,
            notes: c.notes,
            created_by: c.created_by,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

impl From<lead::Model> for LeadRecord {
    fn from(l: lead::Model) -> Self {
        Self {
            id: l.id,
            received_at: l.received_at,
            r#type: l.lead_type.as_str().to_owned(),
            source: l.source,
            submitted_by: l.submitted_by,
            first_name: l.first_name,
            last_name: l.last_name,
            submitted_email: l.email_raw,
            submitted_phone: l.phone_raw,
            email: l.email,
            phone: l.phone,
            message: l.message,
            vehicle: serde_json::json!({
                "year": l.vehicle_year, "make": l.vehicle_make, "model": l.vehicle_model,
                "trim": l.vehicle_trim, "vin": l.vehicle_vin,
                "stockNumber": l.vehicle_stock_number, "condition": l.vehicle_condition.map(|c| c.as_str()),
            }),
            warnings: l.warnings,
            opportunity_id: l.opportunity_id,
            outcome: l.outcome.as_str().to_owned(),
        }
    }
}

/// Erase what identifies the person, for good, and record it. `None` if
/// there is no such client. A second call finds nothing left to erase and
/// records the attempt again.
pub async fn anonymize(
    db: &DatabaseConnection,
    client_id: Uuid,
    who: &Principal,
    now: DateTime<Utc>,
) -> Result<Option<client::Model>, AppError> {
    let txn = begin_write(db).await?;
    // Serializes with lead intake: first the advisory locks an intake takes
    // for each of the client's contact points (an intake that already holds
    // one finishes first; a later one looks the point up after this commits
    // and finds nobody), then the client row, which intake locks too.
    let keys = super::client::contacts_of(&txn, vec![client_id])
        .await?
        .iter()
        .map(|c| super::lead_intake::contact_lock_key(c.kind, &c.value))
        .collect();
    super::lead_intake::advisory_locks(&txn, keys).await?;
    if super::client::lock(&txn, client_id).await?.is_none() {
        return Ok(None);
    }
    client::Entity::update_many()
        .col_expr(
            client::Column::FirstName,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            client::Column::LastName,
            Expr::value(Option::<String>::None),
        )
        .col_expr(client::Column::UpdatedAt, Expr::value(now))
        .filter(client::Column::Id.eq(client_id))
        .exec(&txn)
        .await?;
    // A later lead with the old email or phone finds nobody: a new client.
    client_contact::Entity::delete_many()
        .filter(client_contact::Column::ClientId.eq(client_id))
        .exec(&txn)
        .await?;
    let none = || Expr::value(Option::<String>::None);
    lead::Entity::update_many()
        .col_expr(lead::Column::FirstName, none())
        .col_expr(lead::Column::LastName, none())
        .col_expr(lead::Column::EmailRaw, none())
        .col_expr(lead::Column::PhoneRaw, none())
        .col_expr(lead::Column::Email, none())
        .col_expr(lead::Column::Phone, none())
        .col_expr(lead::Column::Message, none())
        // Warnings may quote extra emails or phones a partner sent.
        .col_expr(lead::Column::Warnings, Expr::value(serde_json::json!([])))
        .col_expr(lead::Column::RequestHash, Expr::value(ERASED_HASH))
        .filter(lead::Column::ClientId.eq(client_id))
        .exec(&txn)
        .await?;
    erase_conflicts_naming(&txn, client_id).await?;
    credit_request::Entity::update_many()
        .col_expr(credit_request::Column::Notes, none())
        .filter(credit_request::Column::ClientId.eq(client_id))
        .exec(&txn)
        .await?;
    // The explanation of the situation is the person's story.
    service_case::Entity::update_many()
        .col_expr(service_case::Column::Description, Expr::value(""))
        .filter(service_case::Column::ClientId.eq(client_id))
        .exec(&txn)
        .await?;
    record(&txn, client_id, PrivacyAction::Anonymization, who, now).await?;
    let client = super::find::<client::Entity>(&txn, client_id).await?;
    txn.commit().await?;
    Ok(client)
}

/// Leads that recorded a conflict with this person's phone — theirs, or
/// another client's lead sent with that phone — keep the fact (the clients'
/// ids), not the phone, nor a hash computed from it.
async fn erase_conflicts_naming(
    db: &impl ConnectionTrait,
    client_id: Uuid,
) -> Result<(), AppError> {
    let backend = db.get_database_backend();
    let sql = if is_postgres(backend) {
        "UPDATE lead SET contact_conflict = jsonb_set(contact_conflict, '{value}', 'null'), \
                phone = NULL, phone_raw = NULL, request_hash = $2 \
         WHERE contact_conflict IS NOT NULL \
           AND (client_id = $1::uuid OR contact_conflict->>'otherClientId' = $1)"
    } else {
        "UPDATE lead SET contact_conflict = json_set(contact_conflict, '$.value', NULL), \
                phone = NULL, phone_raw = NULL, request_hash = $2 \
         WHERE contact_conflict IS NOT NULL \
           AND (client_id = $3 OR json_extract(contact_conflict, '$.otherClientId') = $1)"
    };
    let mut values: Vec<sea_orm::Value> = vec![client_id.to_string().into(), ERASED_HASH.into()];
    if !is_postgres(backend) {
        values.push(client_id.into());
    }
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}
