//! `Authorization: Bearer <key>` → the tenant the key belongs to.
//!
//! Successful look-ups are cached in memory for a short, configured time, so a hot endpoint
//! costs no extra query; a revoked key therefore stops working within that time.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::Mutex,
    time::{Duration, Instant},
};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use store::TenantId;

use crate::{error::ApiError, state::AppState};

/// The authenticated tenant of a request.
#[derive(Debug, Clone, Copy)]
pub struct Tenant(pub TenantId);

/// Cache of key hash → tenant, bounded in size.
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (TenantId, Instant)>>,
}

const MAX_CACHED_KEYS: usize = 10_000;

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, hash: &str) -> Option<TenantId> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(t, _)| *t)
    }

    fn put(&self, hash: String, tenant: TenantId) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_CACHED_KEYS {
                entries.clear();
            }
            entries.insert(hash, (tenant, Instant::now()));
        }
    }
}

fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

impl FromRequest for Tenant {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer_token(req);
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
