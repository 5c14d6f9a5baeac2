use sea_orm_migration::prelude::*;

/// `jobs.preview`: a job that tries one stage on a few images before a pipeline is saved. It
/// runs like any job but is left out of the job history unless asked for.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000008_job_previews"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE jobs ADD COLUMN preview boolean NOT NULL DEFAULT false",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE jobs DROP COLUMN IF EXISTS preview")
            .await?;
        Ok(())
    }
}
