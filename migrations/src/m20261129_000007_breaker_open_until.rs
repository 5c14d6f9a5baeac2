use sea_orm_migration::prelude::*;

/// `circuit_breakers.open_until`: when an open breaker will turn half-open. Readers tell a
/// breaker that is open now from the row a stopped worker left behind (a live worker turns it
/// half-open on time), and the dashboard says when calls resume.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000007_breaker_open_until"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE circuit_breakers ADD COLUMN open_until timestamptz")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE circuit_breakers DROP COLUMN IF EXISTS open_until")
            .await?;
        Ok(())
    }
}
