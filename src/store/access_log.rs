//! The access log of credit requests (Law 25): a read is recorded before its
//! data is returned; when the record cannot be written the read fails.
use chrono::{DateTime, Utc};
use entity::credit_request_access;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryTrait,
};
use uuid::Uuid;

use super::page::{self, PageRequest};
use crate::error::AppError;

/// How a credit request was read.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReadVia {
    /// `creditRequest(id)`.
    Single,
    /// `creditRequests`.
    List,
    /// `Lead.creditRequest`.
    Lead,
    /// `Client.openFiles`.
    OpenFiles,
}

impl ReadVia {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Single => "SINGLE",
            Self::List => "LIST",
            Self::Lead => "LEAD",
            Self::OpenFiles => "OPEN_FILES",
        }
    }
}

/// One read: who, with which role, of which request, how.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Read {
    pub credit_request: Uuid,
    pub principal: String,
    pub role: &'static str,
    pub via: ReadVia,
    pub at: DateTime<Utc>,
}

/// Record these reads, in one statement.
pub async fn record(db: &impl ConnectionTrait, reads: &[Read]) -> Result<(), AppError> {
    if reads.is_empty() {
        return Ok(());
    }
    credit_request_access::Entity::insert_many(reads.iter().map(|r| {
        credit_request_access::ActiveModel {
            id: Set(Uuid::now_v7()),
            credit_request_id: Set(r.credit_request),
            principal: Set(r.principal.clone()),
            role: Set(r.role.to_owned()),
            via: Set(r.via.as_str().to_owned()),
            at: Set(r.at),
        }
    }))
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Filters of the access log.
#[derive(Clone, Debug, Default)]
pub struct AccessFilter {
    pub credit_request: Option<Uuid>,
    pub principal: Option<String>,
}

fn select(filter: &AccessFilter) -> sea_orm::Select<credit_request_access::Entity> {
    credit_request_access::Entity::find()
        .apply_if(filter.credit_request, |select, id| {
            select.filter(credit_request_access::Column::CreditRequestId.eq(id))
        })
        .apply_if(filter.principal.as_deref(), |select, who| {
            select.filter(credit_request_access::Column::Principal.eq(who))
        })
}

/// A page of the log, newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &AccessFilter,
    page: &PageRequest,
) -> Result<(Vec<credit_request_access::Model>, bool), AppError> {
    page::fetch_listed(db, select(filter), page).await
}

pub async fn count(db: &impl ConnectionTrait, filter: &AccessFilter) -> Result<u64, AppError> {
    Ok(select(filter).count(db).await?)
}
