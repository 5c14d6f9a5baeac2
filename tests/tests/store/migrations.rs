use migration::MigratorTrait;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use system_tests::TestResources;

async fn table_count(db: &sea_orm::DatabaseConnection) -> i64 {
    db.query_one_raw(Statement::from_string(
        DatabaseBackend::Postgres,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'seaql_migrations'",
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get_by_index::<i64>(0)
    .unwrap()
}

#[tokio::test]
async fn migrations_run_up_down_and_up_again_cleanly() {
    let resources = TestResources::new();
    let db = resources.create_database().await.unwrap();
    assert_eq!(
        table_count(&db).await,
        15,
        "every table of the design, per-stage progress, the rate limiter, the breakers and sessions"
    );
    migration::Migrator::down(&db, None).await.unwrap();
    assert_eq!(
        table_count(&db).await,
        0,
        "down removes everything up created"
    );
    migration::Migrator::up(&db, None).await.unwrap();
    assert_eq!(table_count(&db).await, 15);
    db.close().await.unwrap();
}
