//! Quebec's Law 25 (ADMIN): `exportClientData`, everything held about a
//! person in one JSON document, and `anonymizeClient`, erasing what
//! identifies them. Both are recorded (who, when).
use async_graphql::{Context, ID, Json, Object, Result};

use super::client::Client;
use super::viewer::{api, parse_id, principal};
use crate::auth::RoleGuard;
use crate::error::AppError;
use crate::store;

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
        let api = api(ctx)?;
        let id = parse_id("clientId", &client_id)?;
        let export = store::privacy::export(&api.db, id, principal(ctx)?, api.clock.now())
            .await?
            .ok_or(AppError::NotFound("client"))?;
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
        let api = api(ctx)?;
        let id = parse_id("clientId", &client_id)?;
        let client = store::privacy::anonymize(&api.db, id, principal(ctx)?, api.clock.now())
            .await?
            .ok_or(AppError::NotFound("client"))?;
        Ok(Client(client))
    }
}
