//! Who a request acts for: `Authorization: Bearer <key>` or the browser's session cookie
//! ([`SESSION_COOKIE`]), both resolved here and nowhere else.
//!
//! - Verified keys are cached in memory for a short, configured time, so a hot endpoint costs
//!   no extra query; a revoked key therefore stops working within that time.
//! - Sessions are not cached: every cookie-authenticated request reads its session (one index
//!   look-up), so sign-out, expiry and the revocation of the session's key take effect at
//!   once, on every replica.
//! - A cookie is an ambient credential (the browser sends it whoever made the page), so
//!   cookie-authenticated unsafe requests (POST, PUT, PATCH, DELETE) must come from this
//!   site's own pages (see [`crate::origin`]); otherwise they are refused with 403
//!   `cross_site_request` before the handler runs. Bearer requests are not checked: a page
//!   on another site cannot make the browser add that header.

use std::{future::Future, pin::Pin};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::Method, web};
use http_support::request::bearer_token;
use store::TenantId;

use crate::{
    cache::TtlCache,
    error::ApiError,
    origin::{OriginPolicy, Sender},
    state::AppState,
};

/// The authenticated tenant of a request.
#[derive(Debug, Clone, Copy)]
pub struct Tenant(pub TenantId);

/// Verified keys: SHA-256 of the key → tenant.
pub type KeyCache = TtlCache<String, TenantId>;

/// Keys cached at most (the cache starts over beyond this).
pub const MAX_CACHED_KEYS: usize = 10_000;

/// The name of the session cookie (HttpOnly, SameSite=Strict, Path=/api).
pub const SESSION_COOKIE: &str = "ipk_session";

/// The session token the request's cookie carries, if any.
pub fn session_token(req: &HttpRequest) -> Option<String> {
    req.cookie(SESSION_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|token| !token.is_empty())
}

/// Refuses a cookie-authenticated unsafe request unless the browser says this site sent it.
pub fn check_same_origin(req: &HttpRequest) -> Result<(), ApiError> {
    if matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) {
        return Ok(());
    }
    let policy = req
        .app_data::<web::Data<OriginPolicy>>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("origin policy missing")))?;
    match policy.sender(req) {
        Sender::SameOrigin => Ok(()),
        Sender::OtherSite | Sender::Unknown => Err(ApiError::CrossSite),
    }
}

impl FromRequest for Tenant {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer_token(req).map(str::to_string);
        // The bearer key wins when both are present; the cookie is checked only without one.
        let session = match token {
            Some(_) => None,
            None => session_token(req).map(|s| (s, check_same_origin(req))),
        };
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let state = state
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state missing")))?;
            if let Some((session, same_origin)) = session {
                same_origin?;
                let found = store::sessions::find(&state.db, &session)
                    .await?
                    .ok_or(ApiError::Unauthorized)?;
                return Ok(Tenant(found.tenant_id));
            }
            let token = token.ok_or(ApiError::Unauthorized)?;
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
