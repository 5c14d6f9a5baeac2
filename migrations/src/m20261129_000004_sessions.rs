use sea_orm_migration::prelude::*;

/// `sessions`: browser sign-ins. The cookie holds an opaque random token; only its SHA-256 is
/// stored (`token_hash`, the lookup key). A session belongs to the API key it was opened with,
/// so revoking the key ends its sessions too.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000004_sessions"
    }
}

const UP: &str = r#"
CREATE TABLE sessions (
    id          uuid PRIMARY KEY,
    token_hash  text NOT NULL,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    api_key_id  uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE UNIQUE INDEX sessions_token_hash ON sessions (token_hash);
-- Clean-up of long-expired sessions.
CREATE INDEX sessions_expires_at ON sessions (expires_at);
"#;

const DOWN: &str = r#"
DROP TABLE IF EXISTS sessions;
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
