use sea_orm_migration::prelude::*;

/// State the workers and the re-driver share to handle Cohere's failures:
///
/// - `cohere_rate_limits`: one row per model, the next free call slot of the cluster-wide
///   limiter (a GCRA: each call reserves `next_slot_at` and pushes it on by 60 s / rpm; a 429
///   pushes it past its `Retry-After` for every replica at once).
/// - `circuit_breakers`: each worker's breaker state per model, written on every transition;
///   the re-driver reads it to decide whether Cohere is healthy again.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000003_failure_handling"
    }
}

const UP: &str = r#"
CREATE TABLE cohere_rate_limits (
    model          text PRIMARY KEY,
    next_slot_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    backoff_until  timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE circuit_breakers (
    worker_id   text NOT NULL,
    model       text NOT NULL,
    state       text NOT NULL CHECK (state IN ('closed', 'open', 'half_open')),
    reason      text,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (worker_id, model)
);
CREATE INDEX circuit_breakers_state ON circuit_breakers (state, changed_at DESC);

-- The re-driver's policy looks for open transient dead letters, oldest first.
CREATE INDEX dead_letters_open_class ON dead_letters (error_class, dead_lettered_at) WHERE status = 'open';
"#;

const DOWN: &str = r#"
DROP INDEX IF EXISTS dead_letters_open_class;
DROP TABLE IF EXISTS circuit_breakers;
DROP TABLE IF EXISTS cohere_rate_limits;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}
