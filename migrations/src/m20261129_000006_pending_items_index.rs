use sea_orm_migration::prelude::*;

/// `job_items_pending_since`: finds the item that has waited longest for its stage (the
/// queue-age metric) without scanning finished items.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000006_pending_items_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX job_items_pending_since ON job_items (updated_at) WHERE status = 'pending'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS job_items_pending_since")
            .await?;
        Ok(())
    }
}
