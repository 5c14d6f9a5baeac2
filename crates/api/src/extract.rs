//! Request extractors that turn raw input into typed values once, with problem+json errors:
//! JSON bodies (415/413/400/422 with field paths, parsed into the types handlers work with) and
//! pagination. Path and query errors are [`http_support::request`]'s handlers.

use std::{future::Future, pin::Pin};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use domain::{
    selection::{IdListError, IdListProblem},
    validation::ValidationErrors,
};
use futures::StreamExt;
use http_support::{RequestError, request::checked_page};
use serde::{Deserialize, de::DeserializeOwned};
use utoipa::{
    IntoParams,
    openapi::{
        ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type,
        schema::{Array, SchemaType},
    },
};

use crate::error::ApiError;

/// A request body as sent (its wire shape, which the OpenAPI schema describes) that parses
/// into the value its handler works with.
pub trait RequestBody: DeserializeOwned + 'static {
    type Parsed;

    /// Every problem at once, as [`ApiError::Validation`] with each field's JSON pointer.
    fn parse(self) -> Result<Self::Parsed, ApiError>;
}

/// Largest JSON body accepted, registered as app data.
#[derive(Clone, Copy)]
pub struct JsonLimit(pub usize);

/// A JSON request body, parsed into `T::Parsed`.
///
/// Wrong content type: 415. Larger than [`JsonLimit`]: 413. Not JSON: 400. JSON of the wrong
/// shape, or refused by [`RequestBody::parse`]: 422 with the JSON pointer of each bad field.
pub struct JsonBody<T: RequestBody>(pub T::Parsed);

impl<T: RequestBody> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req.app_data::<JsonLimit>().map_or(1024 * 1024, |l| l.0);
        let content_type_ok = is_json_content_type(req);
        let declared_length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !content_type_ok {
                return Err(RequestError::UnsupportedMediaType.into());
            }
            if declared_length.is_some_and(|n| n > limit) {
                return Err(RequestError::PayloadTooLarge { limit }.into());
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    ApiError::BadRequest(format!("could not read the request body: {e}"))
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(RequestError::PayloadTooLarge { limit }.into());
                }
                body.extend_from_slice(&chunk);
            }
            // serde would also build a struct from a JSON array; every body here is an object.
            if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
                return Err(ApiError::invalid(
                    "",
                    "the request body must be a JSON object",
                ));
            }
            let value = parse_json::<T>(&body)?;
            reject_nul_characters(&body)?;
            Ok(JsonBody(value.parse()?))
        })
    }
}

/// An optional JSON request body: `None` when the request has none (no `Content-Length` and no
/// `Transfer-Encoding`, or a `Content-Length` of 0), else exactly [`JsonBody`].
pub struct OptionalJsonBody<T: RequestBody>(pub Option<T::Parsed>);

impl<T: RequestBody> FromRequest for OptionalJsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let headers = req.headers();
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let empty = match length {
            Some(length) => length == 0,
            None => !headers.contains_key(header::TRANSFER_ENCODING),
        };
        if empty {
            return Box::pin(async { Ok(OptionalJsonBody(None)) });
        }
        let body = JsonBody::<T>::from_request(req, payload);
        Box::pin(async move { Ok(OptionalJsonBody(Some(body.await?.0))) })
    }
}

/// PostgreSQL text and jsonb cannot hold U+0000, and no field here has a use for it: refuse
/// it (with the field's path) rather than fail when storing.
fn reject_nul_characters(body: &[u8]) -> Result<(), ApiError> {
    fn find(value: &serde_json::Value, path: &mut String) -> Option<String> {
        match value {
            serde_json::Value::String(s) if s.contains('\0') => Some(path.clone()),
            serde_json::Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("/{i}"));
                let found = find(item, path);
                path.truncate(len);
                found
            }),
            serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
                let len = path.len();
                path.push('/');
                path.push_str(&key.replace('~', "~0").replace('/', "~1"));
                let found = if key.contains('\0') {
                    Some(path.clone())
                } else {
                    find(item, path)
                };
                path.truncate(len);
                found
            }),
            _ => None,
        }
    }
    // Cheap pre-check: a NUL can only arrive as the escape \u0000.
    if !body.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
        return Ok(());
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    match find(&value, &mut String::new()) {
        Some(path) => Err(ApiError::invalid(
            &path,
            "must not contain NUL (U+0000) characters",
        )),
        None => Ok(()),
    }
}

fn is_json_content_type(req: &HttpRequest) -> bool {
    let Some(value) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Ok(mime) = value.parse::<mime::Mime>() else {
        return false;
    };
    mime.type_() == mime::APPLICATION
        && (mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON))
}

/// Parses JSON, telling syntax errors (400) from shape errors (422, with the field's path).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let inner = err.inner();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            RequestError::malformed_json(inner).into()
        } else {
            ApiError::invalid(
                &json_pointer(err.path()),
                strip_position(&inner.to_string()),
            )
        }
    })?;
    deserializer.end().map_err(RequestError::malformed_json)?;
    Ok(value)
}

fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } => {
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    pointer
}

/// serde_json appends " at line 1 column 42"; the path already says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// How a list of ids in a request body is worded when it is wrong.
pub struct IdListWording {
    /// What each id names: `"image"`, `"job"`.
    pub noun: &'static str,
    /// The message for an empty list.
    pub empty: &'static str,
    /// The message for a list longer than `max`.
    pub too_many: fn(max: usize) -> String,
}

/// The problems of the list of ids at `path`: a size problem at the list, each repeated id at
/// its own index.
pub fn id_list_errors(
    path: &str,
    error: IdListError,
    wording: &IdListWording,
    errors: &mut ValidationErrors,
) {
    for problem in error.0 {
        match problem {
            IdListProblem::Empty => errors.push(path, wording.empty),
            IdListProblem::TooMany { max } => errors.push(path, (wording.too_many)(max)),
            IdListProblem::Repeated { index, id } => errors.push(
                format!("{path}/{index}"),
                format!("{} {id} is listed twice", wording.noun),
            ),
        }
    }
}

/// The schema of a list of 1 to `max` ids (`null` too when `nullable`): the limit is the
/// constant the code checks, not a copy of it.
pub fn id_list_schema(description: &str, max: usize, nullable: bool) -> Array {
    let schema_type = if nullable {
        SchemaType::from_iter([Type::Array, Type::Null])
    } else {
        SchemaType::Type(Type::Array)
    };
    ArrayBuilder::new()
        .schema_type(schema_type)
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
        )
        .description(Some(description))
        .min_items(Some(1))
        .max_items(Some(max))
        .build()
}

/// `?limit=&offset=` of every list endpoint.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page (1 to 200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// Items to skip (default 0).
    #[param(minimum = 0, maximum = 1000000000)]
    pub offset: Option<u64>,
}

/// Most items on one page of a list.
pub const MAX_PAGE_LIMIT: u64 = 200;

impl PageQuery {
    pub fn page(&self) -> Result<store::PageRequest, ApiError> {
        let (limit, offset) = checked_page(self.limit, self.offset, MAX_PAGE_LIMIT)?;
        Ok(store::PageRequest { limit, offset })
    }
}
