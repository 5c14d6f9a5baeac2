//! Browser sessions: an opaque random token in an HttpOnly cookie, opened with an API key.
//! Only the token's SHA-256 is stored. A session ends when it expires, when it is revoked
//! (sign-out), or when the API key it was opened with is revoked.

use chrono::{DateTime, Utc};
use rand::distr::{Alphanumeric, SampleString};
use sea_orm::{ConnectionTrait, DatabaseBackend, QueryResult, Statement};
use uuid::Uuid;

use crate::{StoreError, TenantId, tenants::hash_key};

/// Characters of a session token (alphanumeric: about 285 bits of randomness).
const TOKEN_LENGTH: usize = 48;

/// Sessions expired for longer than this are deleted when new ones are opened.
const KEEP_EXPIRED_FOR: &str = "1 day";

/// A live session, as the API describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub expires_at: DateTime<Utc>,
}

/// A newly opened session: the only time its token exists in plain text.
pub struct NewSession {
    pub token: String,
    pub info: SessionInfo,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("token", &"[redacted]")
            .field("info", &self.info)
            .finish()
    }
}

fn info(row: &QueryResult) -> Result<SessionInfo, StoreError> {
    Ok(SessionInfo {
        tenant_id: TenantId(row.try_get("", "tenant_id")?),
        tenant_name: row.try_get("", "tenant_name")?,
        expires_at: row.try_get("", "expires_at")?,
    })
}

/// Opens a session for the tenant of `api_key`, valid for `lifetime`; `None` when the key is
/// unknown or revoked.
pub async fn open<C: ConnectionTrait>(
    db: &C,
    api_key: &str,
    lifetime: std::time::Duration,
) -> Result<Option<NewSession>, StoreError> {
    let token = Alphanumeric.sample_string(&mut rand::rng(), TOKEN_LENGTH);
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            r#"INSERT INTO sessions (id, token_hash, tenant_id, api_key_id, expires_at)
               SELECT $1, $2, k.tenant_id, k.id, now() + make_interval(secs => $3)
               FROM api_keys k
               WHERE k.key_hash = $4 AND k.revoked_at IS NULL
               RETURNING tenant_id, expires_at,
                         (SELECT name FROM tenants t WHERE t.id = sessions.tenant_id) AS tenant_name"#,
            [
                Uuid::now_v7().into(),
                hash_key(&token).into(),
                lifetime.as_secs_f64().into(),
                hash_key(api_key).into(),
            ],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    db.execute_raw(Statement::from_string(
        DatabaseBackend::Postgres,
        format!("DELETE FROM sessions WHERE expires_at < now() - interval '{KEEP_EXPIRED_FOR}'"),
    ))
    .await?;
    Ok(Some(NewSession {
        token,
        info: info(&row)?,
    }))
}

/// The live session of `token`: not expired, not revoked, its API key not revoked.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    token: &str,
) -> Result<Option<SessionInfo>, StoreError> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            r#"SELECT s.tenant_id, t.name AS tenant_name, s.expires_at
               FROM sessions s
               JOIN api_keys k ON k.id = s.api_key_id
               JOIN tenants t ON t.id = s.tenant_id
               WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()
                 AND k.revoked_at IS NULL"#,
            [hash_key(token).into()],
        ))
        .await?;
    row.as_ref().map(info).transpose()
}

/// Revokes the session of `token` (sign-out); true when a live session was revoked.
pub async fn revoke<C: ConnectionTrait>(db: &C, token: &str) -> Result<bool, StoreError> {
    let result = db
        .execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "UPDATE sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL",
            [hash_key(token).into()],
        ))
        .await?;
    Ok(result.rows_affected() > 0)
}
