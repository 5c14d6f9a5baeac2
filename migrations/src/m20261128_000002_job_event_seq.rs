use sea_orm_migration::prelude::*;

/// `jobs.event_seq`: incremented with every change of a job, so job events from many workers
/// can be ordered and stale ones dropped.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000002_job_event_seq"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE jobs ADD COLUMN event_seq bigint NOT NULL DEFAULT 0")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE jobs DROP COLUMN IF EXISTS event_seq")
            .await?;
        Ok(())
    }
}
