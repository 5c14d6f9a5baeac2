//! Tenants and their API keys. Only the SHA-256 of a key is stored.

use chrono::Utc;
use rand::distr::{Alphanumeric, SampleString};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    TransactionTrait,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    StoreError, TenantId,
    entities::{api_keys, tenants},
};

/// Recognisable prefix of every key, so leaked keys are easy to scan for.
pub const KEY_PREFIX: &str = "ipk_";

/// The hash under which a key is stored and looked up.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A newly created key: the only time its plain text exists.
pub struct NewKey {
    pub tenant_id: TenantId,
    pub tenant_created: bool,
    pub key: String,
}

/// Creates the tenant when it does not exist and issues a new API key for it.
pub async fn create_key(
    db: &DatabaseConnection,
    tenant_name: &str,
    label: Option<&str>,
) -> Result<NewKey, StoreError> {
    let txn = db.begin().await?;
    let existing = tenants::Entity::find()
        .filter(tenants::Column::Name.eq(tenant_name))
        .one(&txn)
        .await?;
    let (tenant_id, tenant_created) = match existing {
        Some(t) => (t.id, false),
        None => {
            let id = Uuid::now_v7();
            tenants::Entity::insert(tenants::ActiveModel {
                id: Set(id),
                name: Set(tenant_name.to_string()),
                created_at: Set(Utc::now().into()),
                ..Default::default()
            })
            .exec(&txn)
            .await?;
            (id, true)
        }
    };
    let key = format!(
        "{KEY_PREFIX}{}",
        Alphanumeric.sample_string(&mut rand::rng(), 40)
    );
    api_keys::Entity::insert(api_keys::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant_id),
        key_hash: Set(hash_key(&key)),
        prefix: Set(key[..KEY_PREFIX.len() + 6].to_string()),
        label: Set(label.map(str::to_string)),
        created_at: Set(Utc::now().into()),
        revoked_at: Set(None),
    })
    .exec(&txn)
    .await?;
    txn.commit().await?;
    Ok(NewKey {
        tenant_id: TenantId(tenant_id),
        tenant_created,
        key,
    })
}

/// The tenant a (non-revoked) key belongs to, if any, given the key's [`hash_key`].
pub async fn tenant_for_key_hash<C: ConnectionTrait>(
    db: &C,
    key_hash: &str,
) -> Result<Option<TenantId>, StoreError> {
    let found = api_keys::Entity::find()
        .filter(api_keys::Column::KeyHash.eq(key_hash))
        .filter(api_keys::Column::RevokedAt.is_null())
        .one(db)
        .await?;
    Ok(found.map(|k| TenantId(k.tenant_id)))
}

/// A tenant's part in the fair share of the Cohere budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// Weight among the tenants with work (1 to 1,000; 1 by default).
    pub weight: i32,
    /// Optional cap on its calls per minute.
    pub calls_per_minute: Option<i32>,
}

/// Sets the share of the tenant called `name`; [`StoreError::NotFound`] if there is none.
/// The scheduler applies it from its next pass.
pub async fn set_share<C: ConnectionTrait>(
    db: &C,
    name: &str,
    share: Share,
) -> Result<(), StoreError> {
    let updated = db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "UPDATE tenants SET share_weight = $2, calls_per_minute = $3 WHERE name = $1",
            [
                name.into(),
                share.weight.into(),
                share.calls_per_minute.into(),
            ],
        ))
        .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
