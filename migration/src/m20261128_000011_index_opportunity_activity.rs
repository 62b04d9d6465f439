//! The opportunity list sorted by last activity (`orderBy: { field:
//! UPDATED_AT }`) reads an index in order, as the creation order does.
use sea_orm_migration::prelude::*;

use crate::tables::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

const NAME: &str = "idx_opportunity_updated";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                index(NAME, [Alias::new("updated_at"), Alias::new("id")])
                    .table(Alias::new("opportunity"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(NAME)
                    .table(Alias::new("opportunity"))
                    .to_owned(),
            )
            .await
    }
}
