//! `/api/libraries/{library_id}/images`: upload (multipart), register by URL, list, get,
//! download, delete.

use actix_multipart::Multipart;
use actix_web::{HttpRequest, HttpResponse, delete, get, http::header, post, web};
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use domain::{
    media::{self, MAX_IMAGE_BYTES, MediaType},
    validation::ValidationErrors,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use store::{
    entities::images,
    images::{NewUpload, NewUrl},
};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::Tenant,
    error::ApiError,
    extract::{JsonBody, PageQuery, RequestBody},
    routes::{Paged, paged},
    state::AppState,
};

/// Files accepted in one upload request.
pub const MAX_FILES_PER_UPLOAD: usize = 100;
const MAX_FILENAME_LEN: usize = 255;
const MAX_URL_LEN: usize = 2048;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct Image {
    pub id: Uuid,
    pub library_id: Uuid,
    pub filename: String,
    /// `upload` (bytes stored by the service) or `url` (fetched when analysed).
    #[schema(example = "upload")]
    pub source: String,
    pub url: Option<String>,
    #[schema(example = "image/png")]
    pub media_type: Option<String>,
    pub size_bytes: Option<i64>,
    /// SHA-256 of the bytes, hex.
    pub content_hash: Option<String>,
    /// Width in pixels: read from an upload's header, or given when a URL was registered;
    /// absent when not known. Estimates use it.
    pub width: Option<i32>,
    /// Height in pixels (see `width`).
    pub height: Option<i32>,
    /// Where to download the bytes of an uploaded image.
    pub content_url: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<images::Model> for Image {
    fn from(m: images::Model) -> Self {
        let content_url = m
            .object_key
            .as_ref()
            .map(|_| format!("/api/libraries/{}/images/{}/content", m.library_id, m.id));
        Image {
            id: m.id,
            library_id: m.library_id,
            filename: m.filename,
            source: m.source,
            url: m.url,
            media_type: m.media_type,
            size_bytes: m.size_bytes,
            content_hash: m.content_hash,
            width: m.width,
            height: m.height,
            content_url,
            created_at: m.created_at.into(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct ImageList {
    pub items: Vec<Image>,
}

/// The multipart form of an upload: one or more parts named `file` (any part name is accepted).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// PNG, JPEG, WEBP or non-animated GIF, at most 20 MB each.
    #[schema(value_type = Vec<String>, format = Binary, min_items = 1)]
    file: Vec<Vec<u8>>,
}

/// Raw image bytes.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ImageBytes(#[allow(dead_code)] Vec<u8>);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://example.org/photos/cat.jpg"}))]
pub struct RegisterImageUrl {
    /// An https URL the workers fetch the image from.
    #[schema(
        max_length = 2048,
        pattern = r"^https://[^\s/?#@:]+[^\s\x00-\x1F\x7F]*$"
    )]
    pub url: String,
    /// Defaults to the last segment of the URL's path.
    #[schema(max_length = 255)]
    pub filename: Option<String>,
    /// The image's width in pixels, if known (with `height`): job estimates count its image
    /// tokens from it; without it they give the range an image of unknown size can cost.
    #[schema(minimum = 1, maximum = 100_000)]
    pub width: Option<u32>,
    /// The image's height in pixels (with `width`).
    #[schema(minimum = 1, maximum = 100_000)]
    pub height: Option<u32>,
}

/// Largest width or height a URL image may be registered with.
const MAX_DECLARED_SIDE: u32 = 100_000;

/// An image URL to register, parsed: the file name is the given one or the URL's, trimmed.
pub struct NewImageUrl {
    pub url: String,
    pub filename: String,
    pub size: Option<(u32, u32)>,
}

impl RequestBody for RegisterImageUrl {
    type Parsed = NewImageUrl;

    fn parse(self) -> Result<NewImageUrl, ApiError> {
        let mut errors = ValidationErrors::new();
        if let Err(message) = check_https_url(&self.url) {
            errors.push("/url", message);
        }
        if let Some(name) = &self.filename
            && let Err(message) = check_filename(name)
        {
            errors.push("/filename", message);
        }
        for (path, side) in [("/width", self.width), ("/height", self.height)] {
            if side.is_some_and(|side| !(1..=MAX_DECLARED_SIDE).contains(&side)) {
                errors.push(path, format!("must be 1 to {MAX_DECLARED_SIDE} pixels"));
            }
        }
        let size = match (self.width, self.height) {
            (Some(width), Some(height)) => Some((width, height)),
            (None, None) => None,
            (Some(_), None) => {
                errors.push("/height", "must be given with width");
                None
            }
            (None, Some(_)) => {
                errors.push("/width", "must be given with height");
                None
            }
        };
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let filename = self
            .filename
            .unwrap_or_else(|| filename_from_url(&self.url));
        Ok(NewImageUrl {
            filename: filename.trim().to_owned(),
            url: self.url,
            size,
        })
    }
}

fn check_https_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_LEN {
        return Err(format!("must be at most {MAX_URL_LEN} characters"));
    }
    let rest = url
        .strip_prefix("https://")
        .ok_or("must be an https:// URL")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        return Err("must name a host".into());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    Ok(())
}

fn check_filename(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("must not be blank".into());
    }
    if name.chars().count() > MAX_FILENAME_LEN {
        return Err(format!("must be at most {MAX_FILENAME_LEN} characters"));
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err("must not contain control characters or path separators".into());
    }
    Ok(())
}

fn filename_from_url(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    path.rsplit('/')
        .find(|s| !s.is_empty())
        .filter(|s| !s.contains(':') && check_filename(s).is_ok())
        .unwrap_or("image")
        .chars()
        .take(MAX_FILENAME_LEN)
        .collect()
}

/// Upload one or more images (multipart/form-data).
///
/// Every file is checked before any is stored: type by magic bytes (PNG, JPEG, WEBP,
/// non-animated GIF) and size (at most 20 MB). One bad file rejects the request.
#[utoipa::path(
    tag = "images",
    params(("library_id" = Uuid, Path, description = "Library id")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, description = "The stored images", body = ImageList))
)]
#[post("/libraries/{library_id}/images")]
pub async fn upload_images(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<Uuid>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let library_id = *path;
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(ApiError::UnsupportedMediaType(
            "upload images as multipart/form-data, or POST JSON to /api/libraries/{library_id}/image-urls to register a URL".into(),
        ));
    }
    // Fail fast on an unknown library before reading megabytes.
    store::libraries::find(&state.db, tenant, library_id)
        .await
        .map_err(|e| ApiError::from_store(e, "library"))?;
    let files = read_files(&req, payload).await?;
    let mut stored = Vec::with_capacity(files.len());
    for (filename, media_type, bytes) in files {
        let upload = NewUpload {
            filename,
            media_type: media_type.mime().to_string(),
            size: dimensions(&bytes),
            bytes,
        };
        let image =
            store::images::add_upload(&state.db, &state.objects, tenant, library_id, upload)
                .await
                .map_err(|e| ApiError::from_store(e, "library"))?;
        stored.push(Image::from(image));
    }
    Ok(HttpResponse::Created().json(ImageList { items: stored }))
}

async fn read_files(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Vec<(String, MediaType, Bytes)>, ApiError> {
    let max_request = req
        .app_data::<UploadLimit>()
        .map_or(200 * 1024 * 1024, |l| l.0);
    let mut multipart = Multipart::new(req.headers(), payload.into_inner());
    let mut files = Vec::new();
    let mut errors = ValidationErrors::new();
    let mut total = 0usize;
    while let Some(field) = multipart.next().await {
        let mut field =
            field.map_err(|e| ApiError::BadRequest(format!("malformed multipart body: {e}")))?;
        let index = files.len();
        if index >= MAX_FILES_PER_UPLOAD {
            return Err(ApiError::PayloadTooLarge(format!(
                "at most {MAX_FILES_PER_UPLOAD} files per request"
            )));
        }
        let filename = field
            .content_disposition()
            .and_then(|cd| cd.get_filename().map(str::to_string))
            .filter(|n| check_filename(n).is_ok())
            .unwrap_or_else(|| format!("upload-{}", index + 1));
        let mut bytes = BytesMut::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::BadRequest(format!("malformed multipart body: {e}")))?;
            total += chunk.len();
            if total > max_request {
                return Err(ApiError::PayloadTooLarge(format!(
                    "the upload exceeds {max_request} bytes in total"
                )));
            }
            if bytes.len() + chunk.len() > MAX_IMAGE_BYTES {
                return Err(ApiError::PayloadTooLarge(format!(
                    "file {index} ({filename}) is larger than {} MB",
                    MAX_IMAGE_BYTES / (1024 * 1024)
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let bytes = bytes.freeze();
        match media::sniff(&bytes) {
            Ok(media_type) => files.push((filename, media_type, bytes)),
            Err(err) => {
                errors.push(format!("/files/{index}"), format!("{filename}: {err}"));
                files.push((filename, MediaType::Png, Bytes::new()));
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    if files.is_empty() {
        return Err(ApiError::invalid("/files", "the form contains no file"));
    }
    Ok(files)
}

/// The width and height an image's header declares (only the header is read). `None` when
/// it cannot be read: the image is kept, and estimates treat its size as unknown.
fn dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
        .filter(|&(width, height)| width > 0 && height > 0)
}

/// Largest multipart upload request, registered as app data.
#[derive(Clone, Copy)]
pub struct UploadLimit(pub usize);

/// Register an image by its https URL.
#[utoipa::path(
    tag = "images",
    params(("library_id" = Uuid, Path, description = "Library id")),
    request_body = RegisterImageUrl,
    responses((status = 201, description = "The registered image", body = Image))
)]
#[post("/libraries/{library_id}/image-urls")]
pub async fn register_image_url(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<Uuid>,
    JsonBody(body): JsonBody<RegisterImageUrl>,
) -> Result<HttpResponse, ApiError> {
    let new = NewUrl {
        url: &body.url,
        filename: &body.filename,
        media_type: None,
        size: body.size,
    };
    let image = store::images::add_url(&state.db, tenant, *path, new)
        .await
        .map_err(|e| ApiError::from_store(e, "library"))?;
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("/api/libraries/{}/images/{}", image.library_id, image.id),
        ))
        .json(Image::from(image)))
}

/// List a library's images, newest first.
#[utoipa::path(
    tag = "images",
    params(("library_id" = Uuid, Path, description = "Library id"), PageQuery),
    responses((status = 200, description = "A page of images", body = Paged<Image>))
)]
#[get("/libraries/{library_id}/images")]
pub async fn list_images(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<Uuid>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Paged<Image>>, ApiError> {
    let page = query.page()?;
    let images = store::images::list(&state.db, tenant, *path, page)
        .await
        .map_err(|e| ApiError::from_store(e, "library"))?;
    Ok(web::Json(paged(images.map(Image::from), page)))
}

/// Get an image's metadata.
#[utoipa::path(
    tag = "images",
    params(("library_id" = Uuid, Path, description = "Library id"), ("image_id" = Uuid, Path, description = "Image id")),
    responses((status = 200, description = "The image", body = Image))
)]
#[get("/libraries/{library_id}/images/{image_id}")]
pub async fn get_image(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<web::Json<Image>, ApiError> {
    let (library_id, image_id) = *path;
    let image = store::images::find(&state.db, tenant, library_id, image_id)
        .await
        .map_err(|e| ApiError::from_store(e, "image"))?;
    Ok(web::Json(image.into()))
}

/// Download an uploaded image's bytes (a URL image redirects to its URL).
#[utoipa::path(
    tag = "images",
    params(("library_id" = Uuid, Path, description = "Library id"), ("image_id" = Uuid, Path, description = "Image id")),
    responses(
        (status = 200, description = "The image bytes, with the image's media type",
            content((ImageBytes = "image/png"), (ImageBytes = "image/jpeg"), (ImageBytes = "image/webp"), (ImageBytes = "image/gif"), (ImageBytes = "application/octet-stream"))),
        (status = 307, description = "The image is registered by URL: follow the Location header"),
    )
)]
#[get("/libraries/{library_id}/images/{image_id}/content")]
pub async fn get_image_content(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (library_id, image_id) = *path;
    let image = store::images::find(&state.db, tenant, library_id, image_id)
        .await
        .map_err(|e| ApiError::from_store(e, "image"))?;
    match store::images::content(&state.objects, &image).await {
        Ok(Some(bytes)) => Ok(HttpResponse::Ok()
            .content_type(
                image
                    .media_type
                    .as_deref()
                    .unwrap_or("application/octet-stream"),
            )
            .insert_header((header::CACHE_CONTROL, "private, max-age=3600"))
            .body(bytes)),
        Ok(None) => Ok(HttpResponse::TemporaryRedirect()
            .insert_header((header::LOCATION, image.url.unwrap_or_default()))
            .finish()),
        Err(store::StoreError::Objects(object_store::Error::NotFound { .. })) => {
            Err(ApiError::NotFound("image content"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Delete an image. Refused while a queued or running job still has to analyse it.
#[utoipa::path(
    tag = "images",
    params(("library_id" = Uuid, Path, description = "Library id"), ("image_id" = Uuid, Path, description = "Image id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "A queued or running job still needs the image", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/libraries/{library_id}/images/{image_id}")]
pub async fn delete_image(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (library_id, image_id) = *path;
    store::images::delete(&state.db, &state.objects, tenant, library_id, image_id)
        .await
        .map_err(|e| ApiError::from_store(e, "image"))?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(upload_images)
        .service(register_image_url)
        .service(list_images)
        .service(get_image)
        .service(get_image_content)
        .service(delete_image);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_urls_with_a_host_are_accepted() {
        assert!(check_https_url("https://example.org/a.png").is_ok());
        assert!(check_https_url("http://example.org/a.png").is_err());
        assert!(check_https_url("https:///a.png").is_err());
        assert!(check_https_url("https://exa mple.org/").is_err());
    }

    #[test]
    fn filename_defaults_to_the_last_path_segment() {
        assert_eq!(
            filename_from_url("https://example.org/photos/cat.jpg?x=1"),
            "cat.jpg"
        );
        assert_eq!(filename_from_url("https://example.org/"), "example.org");
        assert_eq!(filename_from_url("https://example.org"), "example.org");
    }

    #[test]
    fn an_upload_s_size_is_read_from_its_header() {
        let png = include_bytes!("../../../../samples/images/chelsea.png");
        assert_eq!(dimensions(png), Some((451, 300)));
        let jpeg = include_bytes!("../../../../samples/images/rocket.jpg");
        assert_eq!(dimensions(jpeg), Some((640, 427)));
        assert_eq!(dimensions(&png[..16]), None);
    }
}
