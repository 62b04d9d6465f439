//! The migrations go down as well as up: every table, index, trigger and
//! function they create is gone after `down`, and `up` again builds it.
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

use crate::helpers::TestDatabase;

/// What the schema holds besides the migration ledger, by kind and name.
async fn schema_objects(db: &DatabaseConnection) -> Vec<String> {
    let sql = if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        "SELECT 'table ' || tablename AS name FROM pg_tables WHERE schemaname = 'public' \
         UNION ALL SELECT 'index ' || indexname FROM pg_indexes WHERE schemaname = 'public' \
         UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal \
         UNION ALL SELECT 'function ' || proname FROM pg_proc p JOIN pg_namespace n \
           ON n.oid = p.pronamespace WHERE n.nspname = 'public'"
    } else {
        "SELECT type || ' ' || name AS name FROM sqlite_master"
    };
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("read the schema");
    let mut names: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "name").expect("a name"))
        .filter(|n| !n.contains("seaql_migrations"))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_migrations_go_down_to_nothing_and_up_to_the_same_schema() {
    let database = TestDatabase::create().await;
    let db = Database::connect(database.url()).await.expect("connect");
    Migrator::up(&db, None).await.expect("up");
    let built = schema_objects(&db).await;
    for table in ["table lead", "table credit_request", "table saved_view"] {
        assert!(built.iter().any(|n| n == table), "{table} in {built:?}");
    }
    assert!(
        built
            .iter()
            .any(|n| n == "trigger opportunity_expiree_sticky"),
        "{built:?}"
    );

    Migrator::down(&db, None).await.expect("down");
    assert_eq!(schema_objects(&db).await, Vec::<String>::new());

    Migrator::up(&db, None).await.expect("up again");
    assert_eq!(schema_objects(&db).await, built);
    db.close().await.expect("close");
}
