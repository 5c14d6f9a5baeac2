//! `POST /v2/chat`: checks the request as Cohere would, injects faults, answers with [`answer`].

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use cohere::{
    AssistantMessage, BilledUnits, ChatRequest, ChatResponse, ContentPart, Detail, FinishReason,
    Message, ResponseContent, ResponseFormat, Tokens, Usage,
};
use domain::{ImageDetail, estimate};
use futures::StreamExt as _;
use rand::Rng as _;
use serde_json::Value;

use crate::answer::{answer, image_key, sha256_hex};
use crate::config::RuntimeConfig;
use crate::error::ApiError;
use crate::state::State;

/// Models that take images.
pub const VISION_MODELS: &[&str] = &[
    "command-a-vision-07-2025",
    "command-a-plus-05-2026",
    "c4ai-aya-vision-32b",
];

/// Known models that only take text (a request with images gets 400).
pub const TEXT_MODELS: &[&str] = &[
    "command-a-03-2025",
    "command-a-reasoning-08-2025",
    "command-a-translate-08-2025",
    "command-r7b-12-2024",
    "command-r7b-arabic-02-2025",
    "command-r-08-2024",
    "command-r-plus-08-2024",
    "c4ai-aya-expanse-32b",
];

/// At most this many images per request.
pub const MAX_IMAGES: usize = 20;

/// At most this many image bytes (decoded) per request: 20 MB.
pub const MAX_IMAGE_BYTES_TOTAL: usize = 20 * 1024 * 1024;

/// Largest request body read (20 MB of images in base64, plus text).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Billed input tokens of one image: Cohere's documented rule for the model, the detail
/// (`auto` when unset) and the image's size ([`domain::estimate::ImageTokenRule`]). An https
/// image is not fetched, so its size is unknown: it is billed the most an image can cost at
/// that detail.
fn image_tokens(model: &str, image: &Image) -> u64 {
    let detail = match image.detail {
        Some(Detail::Low) => ImageDetail::Low,
        Some(Detail::High) => ImageDetail::High,
        Some(Detail::Auto) | None => ImageDetail::Auto,
    };
    let tokens = match image.size {
        Some((width, height)) => estimate::image_tokens(model, detail, width, height),
        None => estimate::image_token_rule(model).range(detail).high,
    };
    u64::from(tokens)
}

/// The width and height an image's header declares (its pixels are not decoded).
fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
}

/// Tokens of the prompt template Cohere adds around the messages (counted in `tokens`, not
/// billed).
const TEMPLATE_TOKENS: u64 = 14;

/// One image of a validated request.
struct Image {
    /// sha256 hex of `key`.
    sha: String,
    /// The decoded bytes, or the URL string.
    key: Vec<u8>,
    detail: Option<Detail>,
    /// Width and height, read from a data URI's image (`None`: an https URL, not fetched).
    size: Option<(u32, u32)>,
}

/// A request that passed validation.
struct Validated {
    model: String,
    prompt: String,
    images: Vec<Image>,
    schema: Option<Value>,
    max_tokens: Option<u32>,
}

/// The handler: every answer (also errors) is counted in `/admin/calls`.
pub(crate) async fn chat(
    state: web::Data<State>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let started = Instant::now();
    state.record_arrival();
    let mut images = Vec::new();
    let response = match handle(&state, &request, payload, &mut images, started).await {
        Ok(response) => response,
        Err(error) => {
            tracing::info!(
                status = error.status.as_u16(),
                message = %error.message,
                "chat call refused"
            );
            error.to_response()
        }
    };
    state.record_answer(response.status().as_u16(), &images);
    tracing::debug!(
        status = response.status().as_u16(),
        images = images.len(),
        // The caller's trace (W3C trace context), when it sent one.
        traceparent = request
            .headers()
            .get("traceparent")
            .and_then(|value| value.to_str().ok()),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "chat call answered"
    );
    response
}

async fn handle(
    state: &State,
    request: &HttpRequest,
    payload: web::Payload,
    counted: &mut Vec<String>,
    arrived: Instant,
) -> Result<HttpResponse, ApiError> {
    let config = state.config();
    if config.outage {
        return Err(ApiError::injected(StatusCode::SERVICE_UNAVAILABLE));
    }
    authorise(state, request)?;
    if let Err(wait) = state.admit(Instant::now()) {
        let seconds = config
            .retry_after_seconds
            .unwrap_or_else(|| wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
            .max(1);
        let limit = config.requests_per_minute.unwrap_or(0);
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many requests: the limit is {limit} calls per minute"),
        )
        .with_retry_after(Some(seconds)));
    }

    let body = read_body(payload).await?;
    let chat_request = decode(&body)?;
    let validated = validate(&chat_request)?;

    let distinct: BTreeSet<&str> = validated.images.iter().map(|i| i.sha.as_str()).collect();
    *counted = distinct.into_iter().map(str::to_owned).collect();
    state.record_images(counted);

    if let Some(image) = validated
        .images
        .iter()
        .find(|image| config.reject_images.contains(&image.sha))
    {
        return Err(ApiError::bad_request(format!(
            "invalid image: the image with sha256 {} could not be processed",
            image.sha
        )));
    }

    let injected = roll_error(&config);
    if injected == Some(StatusCode::TOO_MANY_REQUESTS) {
        return Err(ApiError::injected(StatusCode::TOO_MANY_REQUESTS)
            .with_retry_after(config.retry_after_seconds));
    }
    // The latency is the answer's time from the request's arrival, as a client sees it: the
    // time spent reading and checking the request is part of it.
    let latency = draw_latency(&config);
    if !latency.is_zero() {
        tokio::time::sleep_until((arrived + latency).into()).await;
    }
    if let Some(status) = injected {
        return Err(ApiError::injected(status).with_retry_after(config.retry_after_seconds));
    }
    Ok(respond(&validated))
}

/// `Authorization: Bearer <key>` with the accepted key, else 401.
fn authorise(state: &State, request: &HttpRequest) -> Result<(), ApiError> {
    let key = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match key {
        Some(key) if state.key_matches(key) => Ok(()),
        _ => Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid api token")),
    }
}

async fn read_body(mut payload: web::Payload) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|error| ApiError::bad_request(format!("could not read the body: {error}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::bad_request(format!(
                "the request body is larger than {MAX_BODY_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses the body into the client crate's [`ChatRequest`] (400 when it does not fit), after
/// rewriting the spec's other accepted spellings into the ones that type models: a user
/// message's content as a plain string, a system message's content as text parts. Assistant
/// and tool messages (earlier turns) are dropped: they do not change the stand-in's answer.
fn decode(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("the body is not valid JSON: {error}")))?;
    let Some(object) = value.as_object_mut() else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    if object.get("stream") == Some(&Value::Bool(true)) {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "streaming is not supported by the Cohere stand-in",
        ));
    }
    if let Some(Value::Array(messages)) = object.get_mut("messages") {
        messages.retain(|message| {
            !matches!(
                message.get("role").and_then(Value::as_str),
                Some("assistant" | "tool")
            )
        });
        for message in messages.iter_mut() {
            normalise_message(message);
        }
    }
    serde_json::from_value(value).map_err(ApiError::bad_request)
}

fn normalise_message(message: &mut Value) {
    let role = message
        .get("role")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let Some(content) = message.get_mut("content") else {
        return;
    };
    match (role.as_deref(), &*content) {
        (Some("user"), Value::String(text)) => {
            *content = serde_json::json!([{"type": "text", "text": text}]);
        }
        (Some("system"), Value::Array(parts)) => {
            let texts: Option<Vec<&str>> = parts
                .iter()
                .map(|part| {
                    (part.get("type").and_then(Value::as_str) == Some("text"))
                        .then(|| part.get("text").and_then(Value::as_str))
                        .flatten()
                })
                .collect();
            if let Some(texts) = texts {
                *content = Value::String(texts.join("\n"));
            }
        }
        _ => {}
    }
}

fn validate(request: &ChatRequest) -> Result<Validated, ApiError> {
    let model = request.model.as_str();
    let vision = VISION_MODELS.contains(&model);
    if !vision && !TEXT_MODELS.contains(&model) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "model '{model}' not found, make sure the correct model ID was used and that \
                 you have access to the model."
            ),
        ));
    }
    if request.messages.is_empty() {
        return Err(ApiError::unprocessable("messages must not be empty"));
    }
    if let Some(temperature) = request.temperature
        && !(0.0..=1.0).contains(&temperature)
    {
        return Err(ApiError::bad_request(format!(
            "temperature must be between 0 and 1, got {temperature}"
        )));
    }
    if request.max_tokens == Some(0) {
        return Err(ApiError::bad_request("max_tokens must be at least 1"));
    }
    let schema = match &request.response_format {
        None | Some(ResponseFormat::Text) => None,
        Some(ResponseFormat::JsonObject { json_schema: None }) => {
            Some(Value::Object(serde_json::Map::new()))
        }
        Some(ResponseFormat::JsonObject {
            json_schema: Some(schema),
        }) => {
            if !schema.is_object() {
                return Err(ApiError::bad_request(
                    "response_format.json_schema must be a JSON object",
                ));
            }
            Some(schema.clone())
        }
    };

    let mut texts = Vec::new();
    let mut image_urls = Vec::new();
    for message in &request.messages {
        match message {
            Message::System { content } => texts.push(content.as_str()),
            Message::User { content } => {
                for part in content {
                    match part {
                        ContentPart::Text { text } => texts.push(text.as_str()),
                        ContentPart::ImageUrl { image_url } => image_urls.push(image_url),
                    }
                }
            }
        }
    }
    if !image_urls.is_empty() && !vision {
        return Err(ApiError::bad_request(format!(
            "model '{model}' does not support images; use a vision model such as {}",
            VISION_MODELS[0]
        )));
    }
    if image_urls.len() > MAX_IMAGES {
        return Err(ApiError::bad_request(format!(
            "too many images: {}, at most {MAX_IMAGES} are allowed per request",
            image_urls.len()
        )));
    }
    let mut total = 0;
    let mut keys = Vec::with_capacity(image_urls.len());
    for (index, image_url) in image_urls.into_iter().enumerate() {
        let key = image_bytes(&image_url.url, index)?;
        if key.decoded {
            total += key.bytes.len();
            if total > MAX_IMAGE_BYTES_TOTAL {
                return Err(ApiError::bad_request(format!(
                    "the images are larger than {MAX_IMAGE_BYTES_TOTAL} bytes in total"
                )));
            }
        }
        keys.push((key, image_url.detail));
    }
    // Sizes are read once the request is known to be within bounds.
    let mut images = Vec::with_capacity(keys.len());
    for (index, (key, detail)) in keys.into_iter().enumerate() {
        let size = if key.decoded {
            Some(image_size(&key.bytes).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "image {index}: invalid image: its size could not be read"
                ))
            })?)
        } else {
            None
        };
        images.push(Image {
            sha: sha256_hex(&key.bytes),
            key: key.bytes,
            detail,
            size,
        });
    }
    Ok(Validated {
        model: model.to_string(),
        prompt: texts.join("\n"),
        images,
        schema,
        max_tokens: request.max_tokens,
    })
}

#[derive(Debug)]
struct ImageKey {
    bytes: Vec<u8>,
    /// Decoded from a data URI (else: an URL, not fetched).
    decoded: bool,
}

/// The bytes of a data URI's image (400 unless PNG, JPEG, WEBP or single-frame GIF), or an
/// https URL as bytes (not fetched); anything else is 422.
fn image_bytes(url: &str, index: usize) -> Result<ImageKey, ApiError> {
    match url.split_once(':') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("data") => {
            let Some((meta, data)) = rest.split_once(',') else {
                return Err(ApiError::bad_request(format!(
                    "image {index}: the data URI has no ','"
                )));
            };
            if !meta.to_ascii_lowercase().ends_with(";base64") {
                return Err(ApiError::bad_request(format!(
                    "image {index}: only base64 data URIs are supported"
                )));
            }
            let data = data.trim();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(data))
                .map_err(|error| {
                    ApiError::bad_request(format!("image {index}: invalid base64 data: {error}"))
                })?;
            domain::media::sniff(&bytes).map_err(|error| {
                ApiError::bad_request(format!("image {index}: unsupported image: {error}"))
            })?;
            Ok(ImageKey {
                bytes,
                decoded: true,
            })
        }
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("https")
                && rest.strip_prefix("//").is_some_and(|host| !host.is_empty()) =>
        {
            Ok(ImageKey {
                bytes: url.as_bytes().to_vec(),
                decoded: false,
            })
        }
        _ => Err(ApiError::unprocessable(format!(
            "image {index}: image_url.url must be an https URL or a base64 data URI"
        ))),
    }
}

/// Picks an injected status (or none) according to `error_rates`.
fn roll_error(config: &RuntimeConfig) -> Option<StatusCode> {
    if config.error_rates.is_empty() {
        return None;
    }
    let draw: f64 = rand::rng().random();
    let mut cumulative = 0.0;
    for (&status, &rate) in &config.error_rates {
        cumulative += rate;
        if rate > 0.0 && draw < cumulative {
            return StatusCode::from_u16(status).ok();
        }
    }
    None
}

fn draw_latency(config: &RuntimeConfig) -> Duration {
    let range = config.latency_ms;
    let millis = if range.max > range.min {
        rand::rng().random_range(range.min..=range.max)
    } else {
        range.min
    };
    Duration::from_millis(millis)
}

/// The 200 answer.
fn respond(request: &Validated) -> HttpResponse {
    let keys: Vec<&[u8]> = request.images.iter().map(|i| i.key.as_slice()).collect();
    let answer = answer(&image_key(&keys), &request.prompt, request.schema.as_ref());

    let mut text = answer.text;
    let mut output_tokens = estimate::text_tokens(&text).max(1);
    let mut finish_reason = FinishReason::Complete;
    if let Some(max) = request.max_tokens.map(u64::from)
        && output_tokens > max
    {
        text = text
            .chars()
            .take(usize::try_from(max * 4).unwrap_or(usize::MAX))
            .collect();
        output_tokens = max;
        finish_reason = FinishReason::MaxTokens;
    }
    let input_tokens = estimate::text_tokens(&request.prompt)
        + request
            .images
            .iter()
            .map(|image| image_tokens(&request.model, image))
            .sum::<u64>();

    let response = ChatResponse {
        id: uuid::Uuid::new_v4().to_string(),
        finish_reason,
        message: AssistantMessage {
            content: vec![ResponseContent::Text { text }],
        },
        usage: Some(Usage {
            billed_units: Some(BilledUnits {
                input_tokens: Some(input_tokens as f64),
                output_tokens: Some(output_tokens as f64),
            }),
            tokens: Some(Tokens {
                input_tokens: Some((input_tokens + TEMPLATE_TOKENS) as f64),
                output_tokens: Some((output_tokens + 1) as f64),
            }),
            cached_tokens: Some(0.0),
        }),
    };
    match serde_json::to_value(&response) {
        Ok(mut value) => {
            // Cohere's answer names the role, and counts tokens as integers.
            if let Some(message) = value.get_mut("message").and_then(Value::as_object_mut) {
                message.insert("role".into(), Value::from("assistant"));
            }
            if let Some(usage) = value.get_mut("usage") {
                integral_numbers(usage);
            }
            HttpResponse::Ok().json(value)
        }
        Err(error) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not encode the answer: {error}"),
        )
        .to_response(),
    }
}

fn integral_numbers(value: &mut Value) {
    match value {
        Value::Number(number) => {
            if let Some(float) = number.as_f64()
                && float.fract() == 0.0
                && (0.0..9.0e15).contains(&float)
            {
                *value = Value::from(float as u64);
            }
        }
        Value::Object(map) => map.values_mut().for_each(integral_numbers),
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn decode_value(value: Value) -> Result<ChatRequest, ApiError> {
        decode(value.to_string().as_bytes())
    }

    #[test]
    fn other_spellings_of_messages_are_accepted() {
        let request = decode_value(json!({
            "model": "command-a-vision-07-2025",
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi"},
                {"role": "user", "content": [{"type": "text", "text": "Again"}]}
            ],
            "seed": 4
        }))
        .unwrap();
        assert_eq!(
            request.messages,
            vec![
                Message::system("Be brief."),
                Message::user(vec![ContentPart::text("Hello")]),
                Message::user(vec![ContentPart::text("Again")]),
            ]
        );
    }

    #[test]
    fn wrong_shapes_are_400_and_streaming_is_501() {
        for body in [
            json!([]),
            json!({"model": "command-a-vision-07-2025"}),
            json!({"model": 3, "messages": []}),
            json!({"model": "command-a-vision-07-2025", "messages": [{"role": "user", "content": [{"type": "video"}]}]}),
        ] {
            assert_eq!(
                decode_value(body).unwrap_err().status,
                StatusCode::BAD_REQUEST
            );
        }
        assert_eq!(decode(b"{").unwrap_err().status, StatusCode::BAD_REQUEST);
        let streaming =
            json!({"model": "command-a-vision-07-2025", "messages": [], "stream": true});
        assert_eq!(
            decode_value(streaming).unwrap_err().status,
            StatusCode::NOT_IMPLEMENTED
        );
    }

    #[test]
    fn image_urls_are_data_uris_or_https() {
        assert_eq!(
            image_bytes("https://example.com/a.png", 0).unwrap().bytes,
            b"https://example.com/a.png"
        );
        for (url, status) in [
            ("http://example.com/a.png", StatusCode::UNPROCESSABLE_ENTITY),
            ("ftp://x", StatusCode::UNPROCESSABLE_ENTITY),
            ("https://", StatusCode::UNPROCESSABLE_ENTITY),
            ("", StatusCode::UNPROCESSABLE_ENTITY),
            ("data:image/png;base64", StatusCode::BAD_REQUEST),
            ("data:image/png,rawdata", StatusCode::BAD_REQUEST),
            ("data:image/png;base64,!!!", StatusCode::BAD_REQUEST),
            ("data:image/png;base64,aGVsbG8=", StatusCode::BAD_REQUEST),
        ] {
            assert_eq!(image_bytes(url, 0).unwrap_err().status, status, "{url}");
        }
    }

    #[test]
    fn token_counts_are_integers_in_json() {
        let mut value = json!({"a": 3.0, "b": [1.5, 2.0]});
        integral_numbers(&mut value);
        assert_eq!(value.to_string(), r#"{"a":3,"b":[1.5,2]}"#);
    }

    #[test]
    fn error_rates_of_one_always_inject_and_of_zero_never() {
        let mut config = RuntimeConfig::default();
        config.error_rates.insert(503, 1.0);
        config.error_rates.insert(500, 0.0);
        for _ in 0..100 {
            assert_eq!(roll_error(&config), Some(StatusCode::SERVICE_UNAVAILABLE));
        }
        config.error_rates.insert(503, 0.0);
        for _ in 0..100 {
            assert_eq!(roll_error(&config), None);
        }
    }
}
