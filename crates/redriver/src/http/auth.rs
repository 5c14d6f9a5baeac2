//! `Authorization: Bearer <redriver.admin_token>` on every admin route.
//!
//! The presented token is compared with the configured one in constant time (both hashed
//! first, so their lengths do not show either). Without a configured token every admin
//! request answers 503. The token is never logged.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use http_support::request::bearer_token;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::http::{AdminState, error::AdminError};

/// Header naming who asks (recorded in the audit); `admin-api` when absent.
pub const REQUESTED_BY_HEADER: &str = "X-Requested-By";

/// [`REQUESTED_BY_HEADER`] as the document shows it, for the audited routes.
#[derive(utoipa::IntoParams)]
#[into_params(names("X-Requested-By"), parameter_in = Header)]
#[expect(dead_code, reason = "documents the header; `Admin` reads it")]
pub struct RequestedBy(
    /// Who asks, for the audit (default `admin-api`)
    Option<String>,
);

/// `requested_by` of admin API requests without [`REQUESTED_BY_HEADER`].
pub const DEFAULT_REQUESTER: &str = "admin-api";

/// Longest accepted [`REQUESTED_BY_HEADER`].
const MAX_REQUESTER_LEN: usize = 200;

/// The configured admin token, kept only as its SHA-256.
#[derive(Clone)]
pub struct AdminToken(Option<[u8; 32]>);

impl AdminToken {
    pub fn new(token: Option<&SecretString>) -> Self {
        Self(
            token
                .map(|t| t.expose_secret().trim())
                .filter(|t| !t.is_empty())
                .map(digest),
        )
    }

    pub fn is_configured(&self) -> bool {
        self.0.is_some()
    }

    /// Whether `presented` is the token, in time independent of where they differ.
    fn accepts(&self, presented: &str) -> bool {
        let Some(expected) = &self.0 else {
            return false;
        };
        let presented = digest(presented);
        let difference = expected
            .iter()
            .zip(presented.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(difference) == 0
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// An authenticated admin request, with who asked.
#[derive(Debug, Clone)]
pub struct Admin {
    pub requested_by: String,
}

impl FromRequest for Admin {
    type Error = AdminError;
    type Future = Ready<Result<Self, AdminError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Admin, AdminError> {
    let state = req
        .app_data::<web::Data<AdminState>>()
        .ok_or_else(|| AdminError::internal(anyhow::anyhow!("admin state missing")))?;
    if !state.token.is_configured() {
        return Err(AdminError::Disabled);
    }
    let token = bearer_token(req).ok_or(AdminError::Unauthorized)?;
    if !state.token.accepts(token) {
        tracing::warn!(peer = ?req.peer_addr(), "admin request with a wrong token");
        return Err(AdminError::Unauthorized);
    }
    Ok(Admin {
        requested_by: requested_by(req)?,
    })
}

fn requested_by(req: &HttpRequest) -> Result<String, AdminError> {
    let Some(value) = req.headers().get(REQUESTED_BY_HEADER) else {
        return Ok(DEFAULT_REQUESTER.to_string());
    };
    value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= MAX_REQUESTER_LEN)
        .map(str::to_string)
        .ok_or_else(|| {
            AdminError::BadRequest(format!(
                "the {REQUESTED_BY_HEADER} header must be 1 to {MAX_REQUESTER_LEN} visible ASCII characters"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configured_token_is_accepted() {
        let token = AdminToken::new(Some(&SecretString::from("s3cret-token")));
        assert!(token.accepts("s3cret-token"));
        assert!(!token.accepts("s3cret-tokem"));
        assert!(!token.accepts("s3cret"));
        assert!(!token.accepts(""));
    }

    #[test]
    fn without_a_configured_token_nothing_is_accepted() {
        for token in [
            AdminToken::new(None),
            AdminToken::new(Some(&SecretString::from("  "))),
        ] {
            assert!(!token.is_configured());
            assert!(!token.accepts(""));
            assert!(!token.accepts("anything"));
        }
    }
}
