//! The admin API (no authentication: bind it only where it is meant to be reached).
//!
//! - `GET /admin/config`: the [`RuntimeConfig`] in force (without the key).
//! - `PUT /admin/config`: replaces it (omitted fields take their defaults); answers the new one.
//! - `PATCH /admin/config`: changes only the top-level fields given; answers the new one.
//! - `POST /admin/reset`: clears the counters and the rate-limit window (204).
//! - `GET /admin/calls`: the [`Calls`](crate::Calls) counters.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::Value;

use crate::config::RuntimeConfig;
use crate::error::ApiError;
use crate::state::State;

pub(crate) async fn get_config(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(state.config())
}

pub(crate) async fn put_config(state: web::Data<State>, body: web::Bytes) -> HttpResponse {
    let result = serde_json::from_slice::<RuntimeConfig>(&body)
        .map_err(ApiError::bad_request)
        .and_then(|config| apply(&state, config));
    respond(result)
}

pub(crate) async fn patch_config(state: web::Data<State>, body: web::Bytes) -> HttpResponse {
    let result = merge(&state.config(), &body).and_then(|config| apply(&state, config));
    respond(result)
}

pub(crate) async fn reset(state: web::Data<State>) -> HttpResponse {
    state.reset();
    tracing::info!("counters reset");
    HttpResponse::NoContent().finish()
}

pub(crate) async fn calls(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(state.calls())
}

fn apply(state: &State, config: RuntimeConfig) -> Result<RuntimeConfig, ApiError> {
    let config = state
        .set_config(config)
        .map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, error.to_string()))?;
    tracing::info!(?config, "configuration changed");
    Ok(config)
}

/// The current configuration with the top-level fields of `patch` replaced.
fn merge(current: &RuntimeConfig, patch: &[u8]) -> Result<RuntimeConfig, ApiError> {
    let patch: Value = serde_json::from_slice(patch).map_err(ApiError::bad_request)?;
    let Value::Object(patch) = patch else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    let mut merged = serde_json::to_value(current).map_err(ApiError::bad_request)?;
    if let Some(object) = merged.as_object_mut() {
        object.extend(patch);
    }
    serde_json::from_value(merged).map_err(ApiError::bad_request)
}

fn respond(result: Result<RuntimeConfig, ApiError>) -> HttpResponse {
    match result {
        Ok(config) => HttpResponse::Ok().json(config),
        Err(error) => error.to_response(),
    }
}
