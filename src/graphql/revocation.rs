//! Token revocation (ADMIN): `revokeTokens` and `revokedSubjects`.
use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::revoked_subject;

use super::connection::{self, Page};
use super::viewer::{api, api_and_caller};
use crate::auth::RoleGuard;
use crate::error::AppError;
use crate::store;
use crate::store::page::SortDirection;

/// Un sujet de jeton révoqué / A revoked token subject: its tokens issued
/// up to `revokedAt` (to the second) are refused.
#[derive(SimpleObject)]
pub struct RevokedSubject {
    pub sub: String,
    pub revoked_at: DateTime<Utc>,
    /// The admin who revoked.
    pub revoked_by: String,
}

impl From<revoked_subject::Model> for RevokedSubject {
    fn from(m: revoked_subject::Model) -> Self {
        Self {
            sub: m.sub,
            revoked_at: m.revoked_at,
            revoked_by: m.revoked_by,
        }
    }
}

/// Longest token subject accepted (as the `sub` claim).
const MAX_SUB_CHARS: usize = 200;

#[derive(Default)]
pub struct RevocationQuery;

#[Object]
impl RevocationQuery {
    /// Subjects whose tokens were revoked, most recent first. Admin only.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn revoked_subjects(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(custom = "super::connection::page_size"))] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Page<RevokedSubject>> {
        let db = &api(ctx)?.db;
        let page = connection::page_request(first, after, Some(SortDirection::Desc))?;
        let rows = store::revocation::list(db, &page).await?;
        let count = store::revocation::count(db);
        let cursor = |r: &revoked_subject::Model| connection::time_cursor(r.revoked_at, r.id);
        connection::counted_page(ctx, rows, &page, count, cursor, RevokedSubject::from).await
    }
}

#[derive(Default)]
pub struct RevocationMutation;

#[Object]
impl RevocationMutation {
    /// Révoquer les jetons / Revoke every token of `sub` issued until now
    /// (this second included). Refused on every instance within a second;
    /// tokens issued afterwards work. Admin only.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn revoke_tokens(&self, ctx: &Context<'_>, sub: String) -> Result<bool> {
        let (api, who) = api_and_caller(ctx)?;
        if sub.trim().is_empty() || sub.chars().count() > MAX_SUB_CHARS {
            return Err(AppError::bad_input(
                "sub",
                format!("must be 1 to {MAX_SUB_CHARS} characters"),
            )
            .into());
        }
        // Wall time, like the `iat` of the tokens it is compared with (the
        // injected clock only drives the expiry rule).
        let now = Utc::now();
        let stored = store::revocation::revoke(&api.db, &sub, now, &who.sub).await?;
        api.partners.record(&stored.sub, stored.revoked_at);
        Ok(true)
    }
}
