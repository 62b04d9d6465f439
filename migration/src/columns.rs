//! The column, foreign-key and index shapes every migration repeats. Each
//! builds exactly the definition it stands for, so the schema a migration
//! creates is the same as when these were written out.
use sea_orm_migration::prelude::*;

/// `uuid NOT NULL PRIMARY KEY`.
pub fn id(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column)
        .uuid()
        .not_null()
        .primary_key()
        .to_owned()
}

/// A table keyed by the uuid column `key` (see [`id`]), its first column.
pub fn keyed_table(table: impl IntoTableRef, key: impl IntoIden) -> TableCreateStatement {
    Table::create().table(table).col(id(key)).to_owned()
}

/// `uuid NOT NULL`: a reference to another row.
pub fn uuid(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column).uuid().not_null().to_owned()
}

/// `varchar(len) NOT NULL`.
pub fn string(column: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(column).string_len(len).not_null().to_owned()
}

/// `timestamptz NOT NULL`.
pub fn timestamp(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

/// The foreign key `name`: `from` references `to` (both table, column).
pub fn foreign_key(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .to_owned()
}

/// Create `table`, then `indexes` on it (made by [`index`] or
/// [`unique_index`]), in order.
pub async fn create_table(
    manager: &SchemaManager<'_>,
    table: TableCreateStatement,
    indexes: impl IntoIterator<Item = IndexCreateStatement>,
) -> Result<(), DbErr> {
    let name = table.get_table_name().cloned();
    manager.create_table(table).await?;
    for mut index in indexes {
        if let Some(name) = &name {
            index.table(name.clone());
        }
        manager.create_index(index).await?;
    }
    Ok(())
}

/// The index `name` over `columns`, in order; [`create_table`] puts it on
/// the table it creates (elsewhere, give it one with `.table(...)`).
pub fn index<C: IntoIden>(
    name: &str,
    columns: impl IntoIterator<Item = C>,
) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name);
    for column in columns {
        index.col(column);
    }
    index
}

/// Like [`index`], unique.
pub fn unique_index<C: IntoIden>(
    name: &str,
    columns: impl IntoIterator<Item = C>,
) -> IndexCreateStatement {
    index(name, columns).unique().to_owned()
}

/// Drop `tables`, in order.
pub async fn drop_tables(
    manager: &SchemaManager<'_>,
    tables: impl IntoIterator<Item = impl IntoIden>,
) -> Result<(), DbErr> {
    for table in tables {
        manager
            .drop_table(Table::drop().table(table).to_owned())
            .await?;
    }
    Ok(())
}
