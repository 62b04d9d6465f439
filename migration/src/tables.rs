//! The shapes every migration repeats: columns, a table with its keys and
//! indexes, and the migration that creates tables and drops them again.
//! Each builds exactly the definition it stands for, so the schema a
//! migration creates is the same as when these were written out.
use sea_orm_migration::prelude::*;

/// `uuid NOT NULL PRIMARY KEY`.
pub fn id(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column)
        .uuid()
        .not_null()
        .primary_key()
        .to_owned()
}

/// `uuid NOT NULL`: a reference to another row.
pub fn uuid(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column).uuid().not_null().to_owned()
}

/// `varchar(len) NOT NULL`.
pub fn string(column: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(column).string_len(len).not_null().to_owned()
}

/// `varchar(len)`, one per `(column, len)`, in order.
pub fn optional_strings<C: IntoIden>(
    columns: impl IntoIterator<Item = (C, u32)>,
) -> Vec<ColumnDef> {
    columns
        .into_iter()
        .map(|(column, len)| ColumnDef::new(column).string_len(len).to_owned())
        .collect()
}

/// `timestamptz NOT NULL`.
pub fn timestamp(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

/// `boolean NOT NULL DEFAULT false`.
pub fn flag(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column)
        .boolean()
        .not_null()
        .default(false)
        .to_owned()
}

/// The index `name` over `columns`, in order; [`NewTable::index`] puts it
/// on its table (elsewhere, give it one with `.table(...)`).
pub fn index<C: IntoIden>(
    name: &str,
    columns: impl IntoIterator<Item = C>,
) -> IndexCreateStatement {
    columns_of(columns).name(name).to_owned()
}

/// An index over `columns`, with no name yet.
fn columns_of<C: IntoIden>(columns: impl IntoIterator<Item = C>) -> IndexCreateStatement {
    let mut index = Index::create();
    for column in columns {
        index.col(column);
    }
    index
}

/// A table to create, and the indexes that go with it.
pub struct NewTable {
    name: DynIden,
    table: TableCreateStatement,
    indexes: Vec<IndexCreateStatement>,
}

impl NewTable {
    /// The table `name`, with no column yet.
    pub fn new(name: impl IntoIden) -> Self {
        let name = name.into_iden();
        let table = Table::create().table(name.clone()).to_owned();
        let indexes = Vec::new();
        Self {
            name,
            table,
            indexes,
        }
    }

    /// Keyed by the uuid column `key` (see [`id`]), its first column.
    pub fn keyed(name: impl IntoIden, key: impl IntoIden) -> Self {
        Self::new(name).col(id(key))
    }

    pub fn col(mut self, column: impl IntoColumnDef) -> Self {
        self.table.col(column);
        self
    }

    pub fn cols(self, columns: impl IntoIterator<Item = ColumnDef>) -> Self {
        columns.into_iter().fold(self, Self::col)
    }

    /// A table CHECK constraint.
    pub fn check(mut self, condition: impl Into<Check>) -> Self {
        self.table.check(condition);
        self
    }

    /// The primary key over `columns`, when it is not one uuid.
    pub fn primary_key<C: IntoIden>(mut self, columns: impl IntoIterator<Item = C>) -> Self {
        self.table.primary_key(&mut columns_of(columns));
        self
    }

    /// The foreign key `name`: `column` references `parent (id)`.
    pub fn references(self, name: &str, column: impl IntoIden, parent: impl IntoIden) -> Self {
        self.foreign_key(name, column, parent, None)
    }

    /// Like [`Self::references`], and its rows go with the parent's.
    pub fn belongs_to(self, name: &str, column: impl IntoIden, parent: impl IntoIden) -> Self {
        let cascade = Some(ForeignKeyAction::Cascade);
        self.foreign_key(name, column, parent, cascade)
    }

    fn foreign_key(
        mut self,
        name: &str,
        column: impl IntoIden,
        parent: impl IntoIden,
        on_delete: Option<ForeignKeyAction>,
    ) -> Self {
        let mut key = ForeignKey::create()
            .name(name)
            .from(self.name.clone(), column)
            .to(parent, Alias::new("id"))
            .to_owned();
        if let Some(action) = on_delete {
            key.on_delete(action);
        }
        self.table.foreign_key(&mut key);
        self
    }

    /// The index `name` over `columns`, in order.
    pub fn index<C: IntoIden>(mut self, name: &str, columns: impl IntoIterator<Item = C>) -> Self {
        self.indexes.push(index(name, columns));
        self
    }

    /// Like [`Self::index`], unique.
    pub fn unique_index<C: IntoIden>(
        mut self,
        name: &str,
        columns: impl IntoIterator<Item = C>,
    ) -> Self {
        self.indexes.push(index(name, columns).unique().to_owned());
        self
    }
}

/// Create `tables` in order, each before its indexes.
pub async fn create_tables(
    manager: &SchemaManager<'_>,
    tables: impl IntoIterator<Item = NewTable>,
) -> Result<(), DbErr> {
    for NewTable {
        name,
        table,
        indexes,
    } in tables
    {
        manager.create_table(table).await?;
        for mut index in indexes {
            manager
                .create_index(index.table(name.clone()).to_owned())
                .await?;
        }
    }
    Ok(())
}

/// Drop `tables`, in the reverse of their order (the reverse of
/// [`create_tables`]).
pub async fn drop_tables(
    manager: &SchemaManager<'_>,
    tables: impl IntoIterator<Item = NewTable>,
) -> Result<(), DbErr> {
    let tables: Vec<_> = tables.into_iter().collect();
    for table in tables.into_iter().rev() {
        manager
            .drop_table(Table::drop().table(table.name).to_owned())
            .await?;
    }
    Ok(())
}

/// A migration that only creates tables: `up` creates them in order,
/// `down` drops them in reverse.
macro_rules! creates_tables {
    ($($table:expr),+ $(,)?) => {
        #[derive(DeriveMigrationName)]
        pub struct Migration;

        #[async_trait::async_trait]
        impl MigrationTrait for Migration {
            async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                $crate::tables::create_tables(manager, [$($table),+]).await
            }

            async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                $crate::tables::drop_tables(manager, [$($table),+]).await
            }
        }
    };
}
pub(crate) use creates_tables;
