//! `GET /api/libraries/{library_id}/images/{image_id}/thumbnail`: a small JPEG of an uploaded
//! image for grids, made on first request and kept in the object store next to the image.

use actix_web::{
    HttpRequest, HttpResponse, get,
    http::{StatusCode, header},
    web,
};
use bytes::Bytes;
use http_support::Problem;
use serde::Deserialize;
use store::{TenantId, entities::images, objects::Objects};
use tokio::sync::Semaphore;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::{
    auth::Tenant,
    error::ApiError,
    state::AppState,
    thumbnail::{self, SIZES, ThumbnailError},
};

/// Answered when an image has no thumbnail (registered by URL, or not decodable); the
/// dashboard then draws an empty tile with the image's name.
pub const NO_THUMBNAIL: &str = "thumbnail_unavailable";

/// Thumbnails rendered at once by this replica: each decode may take up to a few hundred MB.
static RENDERING_NOW: Semaphore = Semaphore::const_new(2);

/// Bumped when thumbnails are rendered differently, so caches and stored copies are not reused.
const RENDERING: &str = "v1";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ThumbnailQuery {
    /// Longest side in pixels: 128, 256 (default) or 512. Smaller images keep their size.
    #[param(minimum = 128, maximum = 512, example = 256)]
    pub size: Option<u32>,
}

/// A small JPEG thumbnail of an uploaded image (never the full image), for grids.
///
/// Made on first request and stored; cached by the browser for a day (`ETag` changes with the
/// image's content). Images registered by URL are not fetched by the api: they answer 404 with
/// `code` `thumbnail_unavailable`, as do images that cannot be decoded.
#[utoipa::path(
    tag = "images",
    params(("library_id" = Uuid, Path, description = "Library id"), ("image_id" = Uuid, Path, description = "Image id"), ThumbnailQuery),
    responses(
        (status = 200, description = "The thumbnail", content_type = "image/jpeg", body = crate::routes::images::ImageBytes,
            headers(("ETag" = String, description = "Changes when the image or the rendering does"), ("Cache-Control" = String, description = "private, max-age=86400"))),
        (status = 304, description = "Not modified (`If-None-Match` matched the `ETag`)"),
    )
)]
#[get("/libraries/{library_id}/images/{image_id}/thumbnail")]
pub async fn get_thumbnail(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<(Uuid, Uuid)>,
    query: web::Query<ThumbnailQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (library_id, image_id) = *path;
    let size = query.size.unwrap_or(256);
    if !SIZES.contains(&size) {
        return Err(ApiError::BadRequest(format!(
            "size must be one of {SIZES:?}"
        )));
    }
    let image = store::images::find(&state.db, tenant, library_id, image_id)
        .await
        .map_err(|e| ApiError::from_store(e, "image"))?;
    let (Some(original_key), Some(hash)) = (image.object_key.clone(), image.content_hash.clone())
    else {
        return Ok(unavailable(
            "the image is registered by URL; the api does not fetch it for a thumbnail",
        ));
    };
    let etag = format!("\"{}-{size}-{RENDERING}\"", &hash[..hash.len().min(32)]);
    let cached = |response: &mut actix_web::HttpResponseBuilder| {
        response
            .insert_header((header::ETAG, etag.clone()))
            .insert_header((header::CACHE_CONTROL, "private, max-age=86400"));
    };
    if req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag))
    {
        let mut response = HttpResponse::NotModified();
        cached(&mut response);
        return Ok(response.finish());
    }
    let bytes = match stored_or_rendered(&state, tenant, &image, &original_key, &hash, size).await?
    {
        Some(bytes) => bytes,
        None => {
            return Ok(unavailable(
                "the image could not be decoded for a thumbnail",
            ));
        }
    };
    let mut response = HttpResponse::Ok();
    cached(&mut response);
    Ok(response.content_type("image/jpeg").body(bytes))
}

fn unavailable(detail: &str) -> HttpResponse {
    Problem::new(StatusCode::NOT_FOUND, NO_THUMBNAIL, detail).response([])
}

/// The stored thumbnail, or a new one rendered from the original and stored. `None` when the
/// original cannot be decoded.
async fn stored_or_rendered(
    state: &AppState,
    tenant: TenantId,
    image: &images::Model,
    original_key: &str,
    hash: &str,
    size: u32,
) -> Result<Option<Bytes>, ApiError> {
    // The content hash in the key: a replaced original never serves an old thumbnail.
    let key = format!(
        "{}/{size}-{}-{RENDERING}.jpg",
        Objects::thumbnail_prefix(tenant, image.library_id, image.id),
        &hash[..hash.len().min(16)]
    );
    match state.objects.get(&key).await {
        Ok(bytes) => return Ok(Some(bytes)),
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(store::StoreError::from(e).into()),
    }
    let original = match state.objects.get(original_key).await {
        Ok(bytes) => bytes,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(ApiError::NotFound("image content"));
        }
        Err(e) => return Err(store::StoreError::from(e).into()),
    };
    let _permit = RENDERING_NOW.acquire().await.map_err(ApiError::internal)?;
    // Decoding is CPU-bound: off the async workers.
    let rendered = tokio::task::spawn_blocking(move || thumbnail::render(&original, size))
        .await
        .map_err(ApiError::internal)?;
    let bytes = match rendered {
        Ok(bytes) => Bytes::from(bytes),
        Err(error @ ThumbnailError::Decode(_)) => {
            tracing::info!(image_id = %image.id, %error, "no thumbnail for an image");
            return Ok(None);
        }
        Err(error) => return Err(ApiError::internal(error)),
    };
    if let Err(error) = state.objects.put(&key, bytes.clone()).await {
        // Still answer; the next request renders it again.
        tracing::warn!(%error, %key, "could not store a thumbnail");
    }
    Ok(Some(bytes))
}
