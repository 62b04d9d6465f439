//! Law 25 access log of credit requests: every path that returns a credit
//! request records the read (`record_reads`); a request's reads are written
//! in one statement once it has run and before its response leaves, so a
//! page of N clients costs one statement more, not N, and a read that
//! cannot be logged returns no data. `creditRequestAccessLog` lists the log
//! (ADMIN).
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest,
};
use async_graphql::{
    Context, ID, Object, Request, Response, Result, ServerError, ServerResult, SimpleObject,
};
use chrono::{DateTime, Utc};
use entity::credit_request_access;
use uuid::Uuid;

use super::connection::{self, Page};
use super::viewer::{api, parse_optional_id, principal};
use crate::auth::RoleGuard;
use crate::error::AppError;
use crate::store;
use crate::store::access_log::{AccessFilter, Read, ReadVia};

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

/// The reads of one request, written in one statement when it has run and
/// before its response leaves ([`AccessLogFlush`]).
#[derive(Default)]
pub struct AccessReads(Mutex<Vec<Read>>);

/// Record that these credit requests are being read. Inside a request the
/// reads are collected and written once, before the response is sent; in a
/// subscription event, once per subscriber before the event is sent
/// (`crate::live`).
pub async fn record_reads(ctx: &Context<'_>, ids: &[Uuid], via: ReadVia) -> Result<(), AppError> {
    if ids.is_empty() {
        return Ok(());
    }
    let reads = reads(ctx, ids, via)?;
    // A shared subscription execution: the live fan-out writes them once
    // per subscriber, under its own principal.
    if let Some(live) = ctx.data_opt::<super::subscription::LiveReads>() {
        live.extend(reads);
        return Ok(());
    }
    match ctx.data_opt::<AccessReads>() {
        Some(collected) => {
            collected
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(reads);
            Ok(())
        }
        None => store::access_log::record(&api(ctx)?.db, &reads).await,
    }
}

/// Gives every request its [`AccessReads`] and writes them when the request
/// has run: if they cannot be written, the response carries an error and no
/// data, so no read goes unlogged.
pub struct AccessLogFlush;

impl ExtensionFactory for AccessLogFlush {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AccessLogFlush)
    }
}

#[async_trait::async_trait]
impl Extension for AccessLogFlush {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        next.run(ctx, request.data(AccessReads::default())).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        let reads = match ctx.data_opt::<AccessReads>() {
            Some(collected) => {
                std::mem::take(&mut *collected.0.lock().unwrap_or_else(|e| e.into_inner()))
            }
            None => return response,
        };
        let Ok(api) = ctx.data::<super::ApiContext>() else {
            return response;
        };
        match store::access_log::record(&api.db, &reads).await {
            Ok(()) => response,
            Err(error) => {
                let mut refused = ServerError::new(error.to_string(), None);
                refused.source = Some(Arc::new(error));
                Response::from_errors(vec![refused])
            }
        }
    }
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
        #[graphql(validator(custom = "super::connection::page_size"))] first: Option<i32>,
        after: Option<String>,
        credit_request_id: Option<ID>,
        principal: Option<String>,
    ) -> Result<Page<CreditRequestAccess>> {
        let api = api(ctx)?;
        let filter = AccessFilter {
            credit_request: parse_optional_id("creditRequestId", credit_request_id.as_ref())?,
            principal,
        };
        let page = connection::page_request(first, after, None)?;
        let rows = store::access_log::list(&api.db, &filter, &page).await?;
        let count = store::access_log::count(&api.db, &filter);
        let cursor = |m: &credit_request_access::Model| connection::time_cursor(m.at, m.id);
        connection::counted_page(ctx, rows, &page, count, cursor, CreditRequestAccess::from).await
    }
}
