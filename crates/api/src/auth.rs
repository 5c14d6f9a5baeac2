//! `Authorization: Bearer <key>` → the tenant the key belongs to.
//!
//! Successful look-ups are cached in memory for a short, configured time, so a hot endpoint
//! costs no extra query; a revoked key therefore stops working within that time.

use std::{future::Future, pin::Pin};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use http_support::request::bearer_token;
use store::TenantId;

use crate::{cache::TtlCache, error::ApiError, state::AppState};

/// The authenticated tenant of a request.
#[derive(Debug, Clone, Copy)]
pub struct Tenant(pub TenantId);

/// Verified keys: SHA-256 of the key → tenant.
pub type KeyCache = TtlCache<String, TenantId>;

/// Keys cached at most (the cache starts over beyond this).
pub const MAX_CACHED_KEYS: usize = 10_000;

impl FromRequest for Tenant {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer_token(req).map(str::to_string);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token.ok_or(ApiError::Unauthorized)?;
            let state = state
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state missing")))?;
            let hash = store::tenants::hash_key(&token);
            if let Some(tenant) = state.keys.get(&hash) {
                return Ok(Tenant(tenant));
            }
            let tenant = store::tenants::tenant_for_key_hash(&state.db, &hash)
                .await?
                .ok_or(ApiError::Unauthorized)?;
            state.keys.put(hash, tenant);
            Ok(Tenant(tenant))
        })
    }
}
