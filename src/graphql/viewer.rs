//! `me`: who the token says the caller is; and the steps resolvers share to
//! reach the caller, the API context, a row by its `id` argument, and the
//! stored form of change inputs and file filters.
use async_graphql::{Context, ID, MaybeUndefined, Object, Result, SimpleObject};

use crate::auth::{Principal, Role, RoleGuard};
use crate::error::AppError;
use crate::store::status_history::FileFilter;
use sea_orm::ActiveValue;

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
        let principal = principal(ctx)?;
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

/// The API context and the caller, for resolvers behind a guard.
pub fn api_and_caller<'a>(
    ctx: &Context<'a>,
) -> Result<(&'a super::ApiContext, &'a Principal), AppError> {
    Ok((api(ctx)?, principal(ctx)?))
}

/// Parse an `ID` argument that must be one of our UUIDs.
pub fn parse_id(field: &str, id: &async_graphql::ID) -> Result<uuid::Uuid, AppError> {
    id.parse()
        .map_err(|_| AppError::bad_input(field, "is not a valid id"))
}

/// The row of `E` the argument `id` names (`None` when there is none).
pub async fn by_id<E>(ctx: &Context<'_>, id: &ID) -> Result<Option<E::Model>, AppError>
where
    E: sea_orm::EntityTrait,
    uuid::Uuid: Into<<E::PrimaryKey as sea_orm::PrimaryKeyTrait>::ValueType>,
{
    let id = parse_id("id", id)?;
    crate::store::find::<E>(&api(ctx)?.db, id).await
}

/// Parse an optional `ID` argument (see [`parse_id`]).
pub fn parse_optional_id(
    field: &str,
    id: Option<&async_graphql::ID>,
) -> Result<Option<uuid::Uuid>, AppError> {
    id.map(|id| parse_id(field, id)).transpose()
}

/// A nullable field of a change input as a change of its column: absent →
/// not set, `null` → cleared, a value → what `map` makes of it.
pub fn change<T, U>(
    value: MaybeUndefined<T>,
    map: impl FnOnce(T) -> Result<Option<U>, AppError>,
) -> Result<ActiveValue<Option<U>>, AppError>
where
    Option<U>: Into<sea_orm::Value>,
{
    match value {
        MaybeUndefined::Undefined => Ok(ActiveValue::NotSet),
        MaybeUndefined::Null => Ok(ActiveValue::Set(None)),
        MaybeUndefined::Value(v) => map(v).map(ActiveValue::Set),
    }
}

/// A non-null field of a change input as a change of its column: absent →
/// not set, a value → what `map` makes of it.
pub fn set_to<T, U>(
    value: Option<T>,
    map: impl FnOnce(T) -> Result<U, AppError>,
) -> Result<ActiveValue<U>, AppError>
where
    U: Into<sea_orm::Value>,
{
    Ok(match value {
        None => ActiveValue::NotSet,
        Some(v) => ActiveValue::Set(map(v)?),
    })
}

/// The stored form of the filters every file list has: any of `statuses`
/// (`S` is the stored enum, `G` its GraphQL face), of the client `client_id`.
pub fn file_filter<G, S>(
    statuses: Option<&[G]>,
    client_id: Option<&ID>,
) -> Result<FileFilter, AppError>
where
    G: Copy + Into<S>,
    S: sea_orm::ActiveEnum<Value = String>,
{
    Ok(FileFilter {
        statuses: statuses
            .into_iter()
            .flatten()
            .map(|s| Into::<S>::into(*s).to_value())
            .collect(),
        client_id: parse_optional_id("filter.clientId", client_id)?,
    })
}
