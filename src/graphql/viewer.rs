//! `me`: who the token says the caller is.
use async_graphql::{Context, Object, Result, SimpleObject};

use crate::auth::{Principal, Role, RoleGuard};
use crate::error::AppError;

/// The authenticated caller.
#[derive(SimpleObject)]
pub struct Viewer {
    /// The token's subject: user or partner id.
    pub sub: String,
    pub role: Role,
}

#[derive(Default)]
pub struct ViewerQuery;

#[Object]
impl ViewerQuery {
    /// Who am I? / Qui suis-je?
    #[graphql(guard = "RoleGuard::any()")]
    async fn me(&self, ctx: &Context<'_>) -> Result<Viewer> {
        let principal = ctx
            .data_opt::<Principal>()
            .ok_or_else(|| AppError::Unauthenticated("missing bearer token".into()))?;
        Ok(Viewer {
            sub: principal.sub.clone(),
            role: principal.role,
        })
    }
}

/// The caller, for resolvers behind a guard.
pub fn principal<'a>(ctx: &Context<'a>) -> Result<&'a Principal, AppError> {
    ctx.data_opt::<Principal>()
        .ok_or_else(|| AppError::Unauthenticated("missing bearer token".into()))
}

/// The API context.
pub fn api<'a>(ctx: &Context<'a>) -> Result<&'a super::ApiContext, AppError> {
    ctx.data::<super::ApiContext>()
        .map_err(|_| AppError::Internal("API context missing".into()))
}

/// Parse an `ID` argument that must be one of our UUIDs.
pub fn parse_id(field: &str, id: &async_graphql::ID) -> Result<uuid::Uuid, AppError> {
    id.parse()
        .map_err(|_| AppError::bad_input(field, "is not a valid id"))
}
