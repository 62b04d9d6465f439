//! Law 25 access log of credit requests: every path that returns a credit
//! request records the read first (`record_reads` for the top-level lists,
//! a batched loader for nested ones, so a page of N clients costs one
//! statement more, not N); `creditRequestAccessLog` lists it (ADMIN).
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::credit_request_access;
use uuid::Uuid;

use super::connection::{self, Page};
use super::loaders::StoreLoader;
use super::viewer::{api, parse_id, principal};
use crate::auth::RoleGuard;
use crate::error::AppError;
use crate::store;
use crate::store::access_log::{AccessFilter, Read, ReadVia};
use crate::store::page::Cursor;

fn reads(ctx: &Context<'_>, ids: &[Uuid], via: ReadVia) -> Result<Vec<Read>, AppError> {
    let who = principal(ctx)?;
    let at = api(ctx)?.clock.now();
    Ok(ids
        .iter()
        .map(|&credit_request| Read {
            credit_request,
            principal: who.sub.clone(),
            role: who.role.as_str(),
            via,
            at,
        })
        .collect())
}

/// Record that these credit requests are being read, before returning them.
pub async fn record_reads(ctx: &Context<'_>, ids: &[Uuid], via: ReadVia) -> Result<(), AppError> {
    store::access_log::record(&api(ctx)?.db, &reads(ctx, ids, via)?).await
}

/// A nested read, batched with the others of the same moment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LoggedRead(pub Read);

impl Loader<LoggedRead> for StoreLoader {
    type Value = ();
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[LoggedRead]) -> Result<HashMap<LoggedRead, ()>, Self::Error> {
        let reads: Vec<Read> = keys.iter().map(|k| k.0.clone()).collect();
        store::access_log::record(self.db(), &reads).await?;
        Ok(keys.iter().map(|k| (k.clone(), ())).collect())
    }
}

/// Record a nested read (`Lead.creditRequest`, `Client.openFiles`).
pub async fn record_nested(ctx: &Context<'_>, ids: &[Uuid], via: ReadVia) -> Result<(), AppError> {
    if ids.is_empty() {
        return Ok(());
    }
    let loader = ctx
        .data::<DataLoader<StoreLoader>>()
        .map_err(|e| AppError::Internal(format!("loader: {}", e.message)))?;
    let keys = reads(ctx, ids, via)?.into_iter().map(LoggedRead);
    loader
        .load_many(keys)
        .await
        .map_err(|e| AppError::Internal(format!("access log: {e}")))?;
    Ok(())
}

/// Une lecture de demande de crédit / One read of a credit request.
#[derive(SimpleObject)]
pub struct CreditRequestAccess {
    pub credit_request_id: ID,
    /// Who read it (token subject).
    pub principal: String,
    pub role: String,
    /// How: `SINGLE`, `LIST`, `LEAD`, `OPEN_FILES`.
    pub via: String,
    pub at: DateTime<Utc>,
}

impl From<credit_request_access::Model> for CreditRequestAccess {
    fn from(m: credit_request_access::Model) -> Self {
        Self {
            credit_request_id: ID(m.credit_request_id.to_string()),
            principal: m.principal,
            role: m.role,
            via: m.via,
            at: m.at,
        }
    }
}

#[derive(Default)]
pub struct AccessLogQuery;

#[Object]
impl AccessLogQuery {
    /// Journal d'accès aux demandes de crédit / Who read which credit
    /// request, when (Law 25), newest first. Admin only.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn credit_request_access_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(minimum = 0, maximum = 100))] first: Option<i32>,
        after: Option<String>,
        credit_request_id: Option<ID>,
        principal: Option<String>,
    ) -> Result<Page<CreditRequestAccess>> {
        let api = api(ctx)?;
        let filter = AccessFilter {
            credit_request: credit_request_id
                .as_ref()
                .map(|id| parse_id("creditRequestId", id))
                .transpose()?,
            principal,
        };
        let page = connection::page_request(first, after, None)?;
        let (rows, has_next) = store::access_log::list(&api.db, &filter, &page).await?;
        let total = if connection::wants_total(ctx) {
            store::access_log::count(&api.db, &filter).await?
        } else {
            0
        };
        Ok(connection::page(
            rows,
            has_next,
            &page,
            total,
            |m: &credit_request_access::Model| Cursor {
                created_at: m.at,
                id: m.id,
            },
            CreditRequestAccess::from,
        ))
    }
}
