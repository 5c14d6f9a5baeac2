use sea_orm_migration::prelude::*;

/// Finds a tenant's jobs changed since a moment: what the tenant-wide event stream re-reads
/// to fill in events it missed, every few seconds per open stream.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000005_jobs_changed_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX jobs_tenant_updated ON jobs (tenant_id, updated_at, id) INCLUDE (event_seq)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS jobs_tenant_updated")
            .await?;
        Ok(())
    }
}
