//! `/api/session`: browser sign-in with an API key, the signed-in session, sign-out.
//!
//! Signing in sets an HttpOnly, SameSite=Strict cookie scoped to `/api` that holds an opaque
//! session token (stored hashed, with an expiry); the key itself never reaches the browser's
//! storage. Every `/api` route accepts the cookie as it accepts a bearer key
//! ([`crate::auth`]).

use actix_web::{
    HttpRequest, HttpResponse,
    cookie::{Cookie, SameSite, time},
    delete, get, post, web,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use store::sessions::SessionInfo;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::{SESSION_COOKIE, check_same_origin, session_token},
    error::ApiError,
    extract::{JsonBody, RequestBody},
    origin::{OriginPolicy, Sender},
    state::AppState,
};

/// How long a session lasts, registered as app data.
#[derive(Debug, Clone, Copy)]
pub struct SessionLifetime(pub std::time::Duration);

/// Longest API key accepted (keys are far shorter; this only bounds the work).
const MAX_KEY_LEN: usize = 256;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"api_key": "ipk_..."}))]
pub struct SignIn {
    /// An API key of the tenant to sign in as (`ipk_...`).
    #[schema(min_length = 1, max_length = 256)]
    pub api_key: String,
}

/// Parses into the API key, trimmed.
impl RequestBody for SignIn {
    type Parsed = String;

    fn parse(self) -> Result<String, ApiError> {
        if self.api_key.trim().is_empty() {
            Err(ApiError::invalid("/api_key", "must not be blank"))
        } else if self.api_key.len() > MAX_KEY_LEN {
            Err(ApiError::invalid(
                "/api_key",
                format!("must be at most {MAX_KEY_LEN} characters"),
            ))
        } else {
            Ok(self.api_key.trim().to_owned())
        }
    }
}

/// A signed-in browser session.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct Session {
    pub tenant_id: Uuid,
    pub tenant_name: String,
    /// When the session ends; sign in again after it.
    pub expires_at: DateTime<Utc>,
}

impl From<SessionInfo> for Session {
    fn from(s: SessionInfo) -> Self {
        Session {
            tenant_id: s.tenant_id.0,
            tenant_name: s.tenant_name,
            expires_at: s.expires_at,
        }
    }
}

fn policy(req: &HttpRequest) -> Result<&OriginPolicy, ApiError> {
    req.app_data::<web::Data<OriginPolicy>>()
        .map(|p| p.get_ref())
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("origin policy missing")))
}

/// The session cookie: HttpOnly (no script reads it), SameSite=Strict (no other site's page
/// makes the browser send it), sent to `/api` only, `Secure` over https.
fn session_cookie(req: &HttpRequest, value: String, max_age: time::Duration) -> Cookie<'static> {
    let secure = policy(req).is_ok_and(|p| p.secure_cookie(req));
    Cookie::build(SESSION_COOKIE, value)
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/api")
        .max_age(max_age)
        .secure(secure)
        .finish()
}

/// Sign in: exchange an API key for a session cookie.
///
/// Answers with the session and sets `ipk_session` (HttpOnly, SameSite=Strict, Path=/api,
/// Secure over https). A browser page on another site cannot sign in (403).
#[utoipa::path(
    tag = "session",
    request_body = SignIn,
    security(()),
    responses(
        (status = 200, description = "Signed in; the `Set-Cookie` header holds the session",
            body = Session,
            headers(("Set-Cookie" = String, description = "`ipk_session=<opaque>; HttpOnly; SameSite=Strict; Path=/api; Max-Age=<seconds>[; Secure]`"))),
        (status = 401, description = "Unknown or revoked API key", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Sent by a page on another site", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/session")]
pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    lifetime: web::Data<SessionLifetime>,
    JsonBody(api_key): JsonBody<SignIn>,
) -> Result<HttpResponse, ApiError> {
    // No cookie to protect yet, but another site must not sign a browser in either.
    if policy(&req)?.sender(&req) == Sender::OtherSite {
        return Err(ApiError::CrossSite);
    }
    let opened = store::sessions::open(&state.db, &api_key, lifetime.0)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let max_age = time::Duration::seconds(i64::try_from(lifetime.0.as_secs()).unwrap_or(i64::MAX));
    Ok(HttpResponse::Ok()
        .cookie(session_cookie(&req, opened.token, max_age))
        .json(Session::from(opened.info)))
}

/// The signed-in session of this browser.
#[utoipa::path(
    tag = "session",
    security(("session" = [])),
    responses(
        (status = 200, description = "Signed in", body = Session),
        (status = 401, description = "Not signed in, or the session has ended", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/session")]
pub async fn current_session(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<web::Json<Session>, ApiError> {
    let token = session_token(&req).ok_or(ApiError::Unauthorized)?;
    let found = store::sessions::find(&state.db, &token)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(web::Json(found.into()))
}

/// Sign out: revoke this browser's session and clear its cookie.
///
/// The session stops working at once, on every replica. Answers 204 for any session cookie,
/// also one of a session that has already ended; 401 without one.
#[utoipa::path(
    tag = "session",
    security(("session" = [])),
    responses(
        (status = 204, description = "Signed out; the cookie is cleared",
            headers(("Set-Cookie" = String, description = "`ipk_session=; Max-Age=0; ...`"))),
        (status = 401, description = "No session cookie", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "A cookie-authenticated request from a page on another site", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/session")]
pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = session_token(&req).ok_or(ApiError::Unauthorized)?;
    check_same_origin(&req)?;
    store::sessions::revoke(&state.db, &token).await?;
    let mut cleared = session_cookie(&req, String::new(), time::Duration::ZERO);
    cleared.make_removal();
    Ok(HttpResponse::NoContent().cookie(cleared).finish())
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(sign_in)
        .service(current_session)
        .service(sign_out);
}
