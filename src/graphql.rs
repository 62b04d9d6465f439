//! The GraphQL API: schema assembly, request limits, the admin-only wall and
//! the one place errors get their `extensions.code`.

pub mod access_log;
pub mod admin_only;
pub mod client;
pub mod connection;
pub mod credit_request;
pub mod error_codes;
pub mod lead;
pub mod limits;
pub mod loaders;
pub mod open_file;
pub mod opportunity;
pub mod privacy;
pub mod revocation;
pub mod saved_view;
pub mod service_case;
mod status_change;
pub mod subscription;
pub mod viewer;

use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::DataLoader;
use async_graphql::{MergedObject, SDLExportOptions, Schema, SchemaBuilder};
use sea_orm::DatabaseConnection;

use crate::auth::Role;
use crate::clock::SharedClock;
use crate::domain::expiry::ExpiryPolicy;

/// Maximum directives on one field.
pub const MAX_DIRECTIVES: usize = 5;
/// Deepest nesting the parser accepts (lists and objects in literals too).
pub const MAX_RECURSION: usize = 32;

/// What resolvers need: the database, the rule's policy, the clock.
#[derive(Clone)]
pub struct ApiContext {
    pub db: DatabaseConnection,
    pub policy: Arc<ExpiryPolicy>,
    pub clock: SharedClock,
    /// The partner rate limit and the revoked token subjects.
    pub partners: Arc<crate::partners::PartnerControls>,
    /// This application's live events: an intake leaves its rows there for
    /// its own event ([`crate::events::Written`]).
    pub bus: crate::events::EventBus,
}

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    viewer::ViewerQuery,
    opportunity::OpportunityQuery,
    client::ClientQuery,
    lead::LeadQuery,
    revocation::RevocationQuery,
    privacy::PrivacyQuery,
    access_log::AccessLogQuery,
    service_case::ServiceCaseQuery,
    credit_request::CreditRequestQuery,
    saved_view::SavedViewQuery,
);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    opportunity::OpportunityMutation,
    client::ClientMutation,
    lead::LeadMutation,
    revocation::RevocationMutation,
    privacy::PrivacyMutation,
    service_case::ServiceCaseMutation,
    credit_request::CreditRequestMutation,
    saved_view::SavedViewMutation,
);

pub use subscription::SubscriptionRoot;

pub type CrmSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Build the schema with its limits and extensions; a request's loads of
/// one kind gather for `loader_delay` before their batch is sent.
pub fn build_schema(api: ApiContext, loader_delay: Duration) -> CrmSchema {
    builder(api, loader_delay)
        .extension(admin_only::AdminOnlyWall)
        .finish()
}

/// The schema without the admin-only validation wall. Never served: it lets
/// a test prove that the resolvers' role guards still refuse on their own.
#[doc(hidden)]
pub fn build_schema_without_admin_wall(api: ApiContext) -> CrmSchema {
    let delay = Duration::from_millis(crate::config::DEFAULT_LOADER_DELAY_MS);
    builder(api, delay).finish()
}

fn builder(
    api: ApiContext,
    loader_delay: Duration,
) -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    let loader = DataLoader::new(loaders::StoreLoader::new(api.db.clone()), tokio::spawn)
        .delay(loader_delay);
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .data(api)
    .data(loader)
    // Depth, complexity and aliases are counted by `limits::QueryLimits`,
    // fragments expanded, before async-graphql's validation runs.
    .limit_directives(MAX_DIRECTIVES)
    .limit_recursive_depth(MAX_RECURSION)
    // Suggestions would name admin-only fields to anybody who mistypes.
    .disable_suggestions()
    .extension(error_codes::ErrorCodes)
    .extension(limits::QueryLimits::new())
    .extension(access_log::AccessLogFlush)
}

/// A schema that only serves SDL export (no database behind it).
pub(crate) fn sdl_schema() -> CrmSchema {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .finish()
}

/// The SDL a role sees: ADMIN gets the complete schema (the checked-in
/// `schema.graphql`), other roles the same without the admin-only parts.
pub fn sdl_for(role: Role) -> String {
    let sdl = sdl_schema().sdl_with_options(
        SDLExportOptions::new()
            .sorted_fields()
            .sorted_arguments()
            .sorted_enum_items(),
    );
    match role {
        Role::Admin => sdl,
        Role::Agent | Role::Partner => admin_only::strip_from_sdl(&sdl, role),
    }
}
