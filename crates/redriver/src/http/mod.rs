//! The admin API: dead letters listed, shown, re-driven and purged, behind the admin token
//! (`/healthz` and `/readyz`, without it, are [`http_support::health`]'s). Handlers parse, call [`crate::redrive`] or the store,
//! and map the result; errors become problem+json in [`error`].

pub mod auth;
pub mod error;

use std::{
    future::{Ready, ready},
    sync::{Arc, LazyLock},
};

use actix_web::{FromRequest, HttpRequest, dev::Payload, error::QueryPayloadError, get, post, web};
use chrono::{DateTime, Utc};
use domain::job::ErrorClass;
use http_support::request::{checked_page, query_error};
use serde::{Deserialize, Serialize};
use store::{
    dead_letters::{DeadLetterFilter, LetterStatus},
    entities::dead_letters,
};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    Redriver,
    redrive::{self, PurgeReport, PurgeRequest, RedriveReport, RedriveRequest},
};
use auth::{Admin, AdminToken, RequestedBy};
use error::AdminError;

/// What every handler can reach.
pub struct AdminState {
    pub ctx: Arc<Redriver>,
    pub token: AdminToken,
}

/// A dead letter as listed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterSummary {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub job_id: Option<Uuid>,
    pub item_id: Option<Uuid>,
    pub stage_index: Option<i32>,
    pub error_class: ErrorClass,
    pub error_message: String,
    /// Deliveries of the stage that failed.
    pub attempts: i32,
    pub first_failed_at: Option<DateTime<Utc>>,
    pub dead_lettered_at: DateTime<Utc>,
    pub status: LetterStatus,
    pub redrive_count: i32,
    pub last_redriven_at: Option<DateTime<Utc>>,
}

/// A dead letter with its message: payload and headers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterDetail {
    #[serde(flatten)]
    pub summary: DeadLetterSummary,
    /// Size of the dead-lettered message body in bytes.
    pub payload_bytes: usize,
    /// The body as text, when it is UTF-8.
    pub payload_text: Option<String>,
    /// The body in hex, when it is not UTF-8.
    pub payload_hex: Option<String>,
    /// Every AMQP header the message carried (strings, numbers, booleans; timestamps as
    /// RFC 3339; byte arrays in hex).
    #[schema(value_type = Object)]
    pub headers: serde_json::Value,
}

impl TryFrom<dead_letters::Model> for DeadLetterSummary {
    type Error = AdminError;

    fn try_from(row: dead_letters::Model) -> Result<Self, AdminError> {
        Ok(Self {
            id: row.id,
            tenant_id: row.tenant_id,
            job_id: row.job_id,
            item_id: row.item_id,
            stage_index: row.stage_index,
            error_class: row.error_class,
            error_message: row.error_message,
            attempts: row.attempts,
            first_failed_at: row.first_failed_at.map(Into::into),
            dead_lettered_at: row.dead_lettered_at.into(),
            status: row.status,
            redrive_count: row.redrive_count,
            last_redriven_at: row.last_redriven_at.map(Into::into),
        })
    }
}

impl TryFrom<dead_letters::Model> for DeadLetterDetail {
    type Error = AdminError;

    fn try_from(mut row: dead_letters::Model) -> Result<Self, AdminError> {
        let payload = std::mem::take(&mut row.payload);
        let headers = std::mem::take(&mut row.headers);
        let payload_bytes = payload.len();
        let (payload_text, payload_hex) = match String::from_utf8(payload) {
            Ok(text) => (Some(text), None),
            Err(e) => (None, Some(hex::encode(e.as_bytes()))),
        };
        Ok(Self {
            summary: row.try_into()?,
            payload_bytes,
            payload_text,
            payload_hex,
            headers,
        })
    }
}

pub use http_support::Paged;

/// Most dead letters on one page of the list.
pub const MAX_PAGE_LIMIT: u64 = 500;

/// Pagination of `GET /admin/dead-letters`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    /// Items to skip (default 0).
    #[param(minimum = 0, maximum = 1000000000)]
    pub offset: Option<u64>,
}

impl PageQuery {
    fn page(&self) -> Result<store::PageRequest, AdminError> {
        let (limit, offset) = checked_page(self.limit, self.offset, MAX_PAGE_LIMIT)?;
        Ok(store::PageRequest { limit, offset })
    }
}

/// The filter of `GET /admin/dead-letters`, from the query parameters its document lists for
/// it; any other name (the page's, or an unknown one) is left alone. The filter itself
/// refuses unknown fields, so that a misspelt field cannot widen a re-drive's or purge's body.
pub struct ListFilter(pub DeadLetterFilter);

/// The filter's list parameters, as the document names them.
static LIST_PARAMETERS: LazyLock<Vec<String>> = LazyLock::new(|| {
    DeadLetterFilter::into_params(|| None)
        .into_iter()
        .map(|parameter| parameter.name)
        .collect()
});

impl ListFilter {
    fn parse(query: &str) -> Result<Self, QueryPayloadError> {
        let mut pairs = web::Query::<Vec<(String, String)>>::from_query(query)?.into_inner();
        pairs.retain(|(name, _)| LIST_PARAMETERS.contains(name));
        // Encoded again, so numbers are read from text as in any query.
        let kept = serde_urlencoded::to_string(&pairs)
            .map_err(|e| QueryPayloadError::Deserialize(serde::de::Error::custom(e)))?;
        Ok(Self(
            web::Query::<DeadLetterFilter>::from_query(&kept)?.into_inner(),
        ))
    }
}

impl FromRequest for ListFilter {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::parse(req.query_string()).map_err(|e| query_error::<AdminError>(e, req)))
    }
}

/// List dead letters, newest first, with filters.
#[utoipa::path(
    tag = "dead-letters",
    params(DeadLetterFilter, PageQuery),
    responses((status = 200, description = "A page of dead letters", body = Paged<DeadLetterSummary>))
)]
#[get("/dead-letters")]
pub async fn list_dead_letters(
    _admin: Admin,
    state: web::Data<AdminState>,
    ListFilter(filter): ListFilter,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Paged<DeadLetterSummary>>, AdminError> {
    let page = page.page()?;
    filter.check().map_err(AdminError::BadRequest)?;
    let found = store::dead_letters::list(&state.ctx.db, &filter, page).await?;
    let items = found
        .items
        .into_iter()
        .map(DeadLetterSummary::try_from)
        .collect::<Result<_, _>>()?;
    Ok(web::Json(Paged {
        items,
        total: found.total,
        limit: page.limit,
        offset: page.offset,
    }))
}

/// Get one dead letter with its payload (as text when UTF-8) and headers.
#[utoipa::path(
    tag = "dead-letters",
    params(("id" = Uuid, Path, description = "Dead letter id (its `x-dead-letter-id`)")),
    responses((status = 200, description = "The dead letter", body = DeadLetterDetail))
)]
#[get("/dead-letters/{id}")]
pub async fn get_dead_letter(
    _admin: Admin,
    state: web::Data<AdminState>,
    path: web::Path<Uuid>,
) -> Result<web::Json<DeadLetterDetail>, AdminError> {
    let row = store::dead_letters::get(&state.ctx.db, *path).await?;
    Ok(web::Json(row.try_into()?))
}

/// Re-drive dead letters: re-open their failed items and publish their stage messages again.
///
/// Acts on `open` letters unless the filter names a status, the oldest first, at most
/// `limit`, paced at `redriver.redrive_per_second`. With `dry_run` it only counts. Letters
/// that name no item, or whose item is no longer failed, are skipped. Audited (who: the
/// `X-Requested-By` header, else `admin-api`).
#[utoipa::path(
    tag = "dead-letters",
    request_body = RedriveRequest,
    params(RequestedBy),
    responses((status = 200, description = "What was (or, in a dry run, would be) re-driven", body = RedriveReport))
)]
#[post("/dead-letters/redrive")]
pub async fn redrive_dead_letters(
    admin: Admin,
    state: web::Data<AdminState>,
    body: web::Json<RedriveRequest>,
) -> Result<web::Json<RedriveReport>, AdminError> {
    let report = redrive::redrive(&state.ctx, &body, &admin.requested_by, &mut |_| {}).await?;
    Ok(web::Json(report))
}

/// Purge dead letters: mark them `purged` (rows, payloads and headers are kept).
///
/// Acts on `open` letters unless the filter names a status. With `dry_run` it only counts.
/// Audited like a re-drive.
#[utoipa::path(
    tag = "dead-letters",
    request_body = PurgeRequest,
    params(RequestedBy),
    responses((status = 200, description = "What was (or, in a dry run, would be) purged", body = PurgeReport))
)]
#[post("/dead-letters/purge")]
pub async fn purge_dead_letters(
    admin: Admin,
    state: web::Data<AdminState>,
    body: web::Json<PurgeRequest>,
) -> Result<web::Json<PurgeReport>, AdminError> {
    let report = redrive::purge(&state.ctx, &body, &admin.requested_by).await?;
    Ok(web::Json(report))
}

/// Every `/admin` route.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    // The literal routes first, so `/dead-letters/redrive` is never read as an id.
    cfg.service(redrive_dead_letters)
        .service(purge_dead_letters)
        .service(list_dead_letters)
        .service(get_dead_letter);
}
