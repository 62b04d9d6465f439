//! Quebec's Law 25 (ADMIN): `exportClientData`, everything held about a
//! person in one JSON document, and `anonymizeClient`, erasing what
//! identifies them. Both are recorded (who, when).
use async_graphql::{Context, ID, Json, Object, Result};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::client::Client;
use super::viewer::{api, parse_id, principal};
use crate::auth::{Principal, RoleGuard};
use crate::error::AppError;
use crate::store;

/// Runs the Law 25 operation `operation` on the client `client_id` names,
/// as the caller, now (the store records both); `NOT_FOUND` if there is no
/// such client.
async fn on_client<'a, T, F>(
    ctx: &Context<'a>,
    client_id: &ID,
    operation: impl FnOnce(&'a DatabaseConnection, Uuid, &'a Principal, DateTime<Utc>) -> F,
) -> Result<T, AppError>
where
    F: Future<Output = Result<Option<T>, AppError>>,
{
    let api = api(ctx)?;
    let id = parse_id("clientId", client_id)?;
    operation(&api.db, id, principal(ctx)?, api.clock.now())
        .await?
        .ok_or(AppError::NotFound("client"))
}

#[derive(Default)]
pub struct PrivacyQuery;

#[Object]
impl PrivacyQuery {
    /// Portabilité / Portability (Law 25): every piece of data held about
    /// the client — contact points, leads as submitted, opportunities and
    /// their status histories — in one structured document. The export is
    /// recorded. Admin only.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn export_client_data(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
    ) -> Result<Json<store::privacy::ClientExport>> {
        let export = on_client(ctx, &client_id, store::privacy::export).await?;
        Ok(Json(export))
    }
}

#[derive(Default)]
pub struct PrivacyMutation;

#[Object]
impl PrivacyMutation {
    /// Anonymiser / Anonymize (Law 25), irreversibly: names, contact points,
    /// the contact data and messages of the client's leads are erased; ids,
    /// statuses, dates and the rule's audit are kept. A later lead with the old
    /// email opens a new client. Recorded (who, when). Admin only.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn anonymize_client(&self, ctx: &Context<'_>, client_id: ID) -> Result<Client> {
        let client = on_client(ctx, &client_id, store::privacy::anonymize).await?;
        Ok(Client(client))
    }
}
