//! The stand-in served in-process on 127.0.0.1:0 and called with the project's own Cohere
//! client (proving the wire format) or with raw HTTP (for what the client cannot send).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use cohere::{
    ChatRequest, CohereClient, CohereError, ContentPart, Detail, FinishReason, ImageUrl, Message,
    ResponseFormat,
};
use cohere_standin::{Running, StandInConfig, answer, sha256_hex, spawn};
use domain::{ImageDetail, estimate::image_tokens, job::ErrorClass};
use secrecy::SecretString;
use serde_json::{Value, json};

const KEY: &str = "standin-test-key-0123456789";
const MODEL: &str = "command-a-vision-07-2025";

const CHELSEA: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../samples/images/chelsea.png"
));
const RETINA: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../samples/images/retina.jpg"
));
const HORSE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../samples/images/horse.png"
));

fn start() -> Running {
    spawn(StandInConfig::new(KEY)).unwrap()
}

fn client_with_key(standin: &Running, key: &str) -> CohereClient {
    CohereClient::new(
        &standin.base_url(),
        SecretString::from(key.to_owned()),
        Duration::from_secs(30),
    )
    .unwrap()
}

fn client(standin: &Running) -> CohereClient {
    client_with_key(standin, KEY)
}

fn png_request(image: &[u8], prompt: &str) -> ChatRequest {
    ChatRequest::new(
        MODEL,
        vec![Message::user(vec![
            ContentPart::text(prompt),
            ContentPart::image(ImageUrl::data_uri("image/png", image, None)),
        ])],
    )
}

fn status_error(error: &CohereError) -> u16 {
    error
        .status()
        .unwrap_or_else(|| panic!("not a status error: {error}"))
}

/// Raw `POST /v2/chat` with `body` and the right key.
async fn post_raw(standin: &Running, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v2/chat", standin.base_url()))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn admin(standin: &Running, method: reqwest::Method, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .request(method, format!("{}/admin/{path}", standin.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");
    response.json().await.unwrap_or(Value::Null)
}

async fn calls(standin: &Running) -> Value {
    reqwest::get(format!("{}/admin/calls", standin.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn assert_cohere_error_body(body: &Value) {
    assert!(
        body["id"].as_str().is_some_and(|id| id.len() == 36),
        "{body}"
    );
    assert!(body["message"].is_string(), "{body}");
}

#[tokio::test]
async fn an_image_gets_the_predicted_answer_in_cohere_s_wire_format() {
    let standin = start();
    let prompt = "What animal is in this picture?";

    let response = client(&standin)
        .chat(&png_request(CHELSEA, prompt))
        .await
        .unwrap();

    let expected = answer(CHELSEA, prompt, None);
    assert_eq!(response.finish_reason, FinishReason::Complete);
    assert_eq!(response.text(), expected.text);
    assert_eq!(expected.label, "cat");
    assert!(response.text().contains("cat"));
    let usage = response.usage.unwrap();
    let billed = usage.billed_units.unwrap();
    let tokens = usage.tokens.unwrap();
    let prompt_tokens = prompt.len().div_ceil(4) as f64;
    assert_eq!(billed.input_tokens, Some(prompt_tokens + 256.0));
    assert_eq!(
        billed.output_tokens,
        Some(expected.text.chars().count().div_ceil(4) as f64)
    );
    assert!(tokens.input_tokens > billed.input_tokens);
    assert!(tokens.output_tokens > billed.output_tokens);
}

#[tokio::test]
async fn the_raw_answer_has_the_shape_of_the_spec_s_example() {
    let standin = start();
    let request = png_request(HORSE, "Describe");
    let (status, body) = post_raw(&standin, serde_json::to_vec(&request).unwrap()).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"].as_str().unwrap().len(), 36);
    assert_eq!(body["finish_reason"], "COMPLETE");
    assert_eq!(body["message"]["role"], "assistant");
    assert_eq!(body["message"]["content"][0]["type"], "text");
    assert!(body["message"]["content"][0]["text"].is_string());
    assert!(
        body["usage"]["billed_units"]["input_tokens"].is_u64(),
        "{body}"
    );
    assert!(body["usage"]["tokens"]["output_tokens"].is_u64(), "{body}");
}

#[tokio::test]
async fn a_user_message_may_be_a_plain_string_as_the_spec_allows() {
    let standin = start();
    let (status, body) = post_raw(
        &standin,
        json!({"model": MODEL, "messages": [{"role": "user", "content": "Hello"}]}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["message"]["content"][0]["text"],
        answer(b"", "Hello", None).text
    );
}

#[tokio::test]
async fn json_schema_answers_match_the_schema_and_the_prediction() {
    let standin = start();
    let schema = json!({
        "type": "object",
        "required": ["animal", "count", "confidence", "mood", "tags", "box"],
        "properties": {
            "animal": {"type": "boolean"},
            "count": {"type": "integer", "minimum": 1, "maximum": 4},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "mood": {"type": "string", "enum": ["calm", "playful", "angry"]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "box": {
                "type": "object",
                "required": ["x", "visible"],
                "properties": {"x": {"type": "integer"}, "visible": {"type": "boolean"}}
            }
        }
    });
    let prompt = "Answer in JSON.";
    let mut request = png_request(CHELSEA, prompt);
    request.response_format = Some(ResponseFormat::JsonObject {
        json_schema: Some(schema.clone()),
    });

    let response = client(&standin).chat(&request).await.unwrap();
    let json: Value = serde_json::from_str(&response.text()).unwrap();

    assert_eq!(json, answer(CHELSEA, prompt, Some(&schema)).json.unwrap());
    assert_eq!(json["animal"], true, "chelsea.png is a cat");
    let count = json["count"].as_i64().unwrap();
    assert!((1..=4).contains(&count));
    let confidence = json["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&confidence));
    assert!(["calm", "playful", "angry"].contains(&json["mood"].as_str().unwrap()));
    let tags = json["tags"].as_array().unwrap();
    assert!(tags.len() >= 2 && tags.iter().all(Value::is_string));
    assert!(json["box"]["x"].is_i64());
    assert!(json["box"]["visible"].is_boolean());
}

#[tokio::test]
async fn json_mode_without_a_schema_answers_a_json_object() {
    let standin = start();
    let mut request = png_request(HORSE, "JSON please");
    request.response_format = Some(ResponseFormat::JsonObject { json_schema: None });
    let response = client(&standin).chat(&request).await.unwrap();
    let json: Value = serde_json::from_str(&response.text()).unwrap();
    assert_eq!(json["label"], "horse");
}

#[tokio::test]
async fn the_same_request_always_gets_the_same_answer() {
    let standin = start();
    let client = client(&standin);
    let request = png_request(HORSE, "What is this?");
    let first = client.chat(&request).await.unwrap();
    let second = client.chat(&request).await.unwrap();
    assert_eq!(first.text(), second.text());
    assert_eq!(first.usage, second.usage);
    assert_ne!(first.id, second.id);
}

#[tokio::test]
async fn an_https_image_is_answered_for_its_url_without_fetching_it() {
    let standin = start();
    let url = "https://images.example.invalid/cat.png";
    let request = ChatRequest::new(
        MODEL,
        vec![Message::user(vec![
            ContentPart::text("What is it?"),
            ContentPart::image(ImageUrl {
                url: url.into(),
                detail: Some(Detail::Low),
            }),
        ])],
    );
    let response = client(&standin).chat(&request).await.unwrap();
    assert_eq!(
        response.text(),
        answer(url.as_bytes(), "What is it?", None).text
    );
    // Not fetched, so of unknown size: billed as a low-detail image, 256 tokens.
    let billed = response.usage.unwrap().billed_units.unwrap();
    assert_eq!(billed.input_tokens, Some(3.0 + 256.0));
    assert_eq!(
        calls(&standin).await["by_image"][sha256_hex(url.as_bytes())],
        1
    );
}

#[tokio::test]
async fn image_tokens_are_billed_by_cohere_s_rule_from_the_image_s_size() {
    let standin = start();
    let client = client(&standin);
    let billed_for = |image: &'static [u8], media_type: &'static str, detail| {
        let request = ChatRequest::new(
            MODEL,
            vec![Message::user(vec![
                ContentPart::text("Abcd"),
                ContentPart::image(ImageUrl::data_uri(media_type, image, detail)),
            ])],
        );
        let client = &client;
        async move {
            let response = client.chat(&request).await.unwrap();
            response
                .usage
                .unwrap()
                .billed_units
                .unwrap()
                .input_tokens
                .unwrap()
                - 1.0
        }
    };
    // 451 × 300: low at auto; at high, one tile and the preview.
    assert_eq!(billed_for(CHELSEA, "image/png", None).await, 256.0);
    assert_eq!(
        billed_for(CHELSEA, "image/png", Some(Detail::Low)).await,
        256.0
    );
    assert_eq!(
        billed_for(CHELSEA, "image/png", Some(Detail::High)).await,
        512.0
    );
    // 1411 × 1411: high at auto, shrunk to 1411 (fits), 3 × 3 tiles and the preview.
    assert_eq!(billed_for(RETINA, "image/jpeg", None).await, 10.0 * 256.0);
    assert_eq!(
        billed_for(RETINA, "image/jpeg", Some(Detail::Low)).await,
        256.0
    );
    for (image, media_type, size) in [
        (CHELSEA, "image/png", (451, 300)),
        (RETINA, "image/jpeg", (1411, 1411)),
    ] {
        for detail in [ImageDetail::Auto, ImageDetail::Low, ImageDetail::High] {
            assert_eq!(
                billed_for(image, media_type, Some(detail.into())).await,
                f64::from(image_tokens(MODEL, detail, size.0, size.1)),
                "{size:?} at {detail}"
            );
        }
    }
}

#[tokio::test]
async fn a_low_max_tokens_truncates_the_answer() {
    let standin = start();
    let mut request = png_request(HORSE, "Describe");
    request.max_tokens = Some(3);
    let response = client(&standin).chat(&request).await.unwrap();
    assert_eq!(response.finish_reason, FinishReason::MaxTokens);
    assert_eq!(response.text().chars().count(), 12);
    let billed = response.usage.unwrap().billed_units.unwrap();
    assert_eq!(billed.output_tokens, Some(3.0));
}

#[tokio::test]
async fn a_wrong_or_missing_key_is_401_and_systemic() {
    let standin = start();
    let error = client_with_key(&standin, "not-the-key")
        .chat(&png_request(HORSE, "x"))
        .await
        .unwrap_err();
    assert_eq!(status_error(&error), 401);
    assert_eq!(error.class(), ErrorClass::Systemic);
    assert_eq!(error.api_message(), Some("invalid api token"));

    let response = reqwest::Client::new()
        .post(format!("{}/v2/chat", standin.base_url()))
        .json(&png_request(HORSE, "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.unwrap();
    assert_cohere_error_body(&body);
    assert_eq!(body["message"], "invalid api token");
}

#[tokio::test]
async fn an_unknown_model_is_404_and_permanent() {
    let standin = start();
    let mut request = png_request(HORSE, "x");
    request.model = "command-z-99".into();
    let error = client(&standin).chat(&request).await.unwrap_err();
    assert_eq!(status_error(&error), 404);
    assert_eq!(error.class(), ErrorClass::Permanent);
    assert!(error.api_message().unwrap().contains("command-z-99"));
}

#[tokio::test]
async fn a_text_only_model_given_an_image_is_400() {
    let standin = start();
    let mut request = png_request(HORSE, "x");
    request.model = "command-a-03-2025".into();
    let error = client(&standin).chat(&request).await.unwrap_err();
    assert_eq!(status_error(&error), 400);
    assert_eq!(error.class(), ErrorClass::Permanent);

    let text_only = ChatRequest::new(
        "command-a-03-2025",
        vec![Message::user(vec![ContentPart::text("Hello")])],
    );
    client(&standin).chat(&text_only).await.unwrap();
}

#[tokio::test]
async fn malformed_json_and_wrong_shapes_are_400_with_cohere_s_error_body() {
    let standin = start();
    let bodies = [
        "{".to_owned(),
        "[]".to_owned(),
        json!({"messages": []}).to_string(),
        json!({"model": MODEL, "messages": "hello"}).to_string(),
        json!({"model": MODEL, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]})
            .to_string(),
        json!({"model": MODEL, "messages": [{"role": "user", "content": "x"}], "temperature": 3})
            .to_string(),
    ];
    for body in bodies {
        let (status, answer) = post_raw(&standin, body.clone()).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_cohere_error_body(&answer);
    }
}

#[tokio::test]
async fn a_request_that_parses_but_makes_no_sense_is_422() {
    let standin = start();
    let empty = ChatRequest::new(MODEL, vec![]);
    let error = client(&standin).chat(&empty).await.unwrap_err();
    assert_eq!(status_error(&error), 422);

    let http_image = ChatRequest::new(
        MODEL,
        vec![Message::user(vec![ContentPart::image(ImageUrl {
            url: "http://example.com/a.png".into(),
            detail: None,
        })])],
    );
    let error = client(&standin).chat(&http_image).await.unwrap_err();
    assert_eq!(status_error(&error), 422);
    assert_eq!(error.class(), ErrorClass::Permanent);
}

#[tokio::test]
async fn images_cohere_cannot_take_are_400() {
    let standin = start();
    let client = client(&standin);

    let not_an_image = png_request(b"this is not a picture", "x");
    assert_eq!(
        status_error(&client.chat(&not_an_image).await.unwrap_err()),
        400
    );

    // A PNG signature whose header declares no size.
    let mut no_size = CHELSEA[..16].to_vec();
    no_size.resize(64, 0);
    let error = client.chat(&png_request(&no_size, "x")).await.unwrap_err();
    assert_eq!(status_error(&error), 400);
    assert!(
        error.api_message().unwrap().contains("invalid image"),
        "{error}"
    );

    let too_many = ChatRequest::new(
        MODEL,
        vec![Message::user(
            (0..21)
                .map(|_| ContentPart::image(ImageUrl::data_uri("image/png", HORSE, None)))
                .collect(),
        )],
    );
    let error = client.chat(&too_many).await.unwrap_err();
    assert_eq!(status_error(&error), 400);
    assert!(error.api_message().unwrap().contains("too many images"));

    // Two images of 10.5 MiB each: each is fine, together they are over 20 MB.
    let mut big = CHELSEA[..16].to_vec();
    big.resize(21 * 512 * 1024, 0);
    let too_large = ChatRequest::new(
        MODEL,
        vec![Message::user(vec![
            ContentPart::image(ImageUrl::data_uri("image/png", &big, None)),
            ContentPart::image(ImageUrl::data_uri("image/png", &big, None)),
        ])],
    );
    let error = client.chat(&too_large).await.unwrap_err();
    assert_eq!(status_error(&error), 400);
    assert!(error.api_message().unwrap().contains("in total"), "{error}");
    assert_eq!(error.class(), ErrorClass::Permanent);

    assert_eq!(calls(&standin).await["by_image"], json!({}));
}

#[tokio::test]
async fn an_injected_503_rate_of_one_fails_every_call_as_transient() {
    let standin = start();
    admin(
        &standin,
        reqwest::Method::PUT,
        "config",
        json!({"error_rates": {"503": 1.0}}),
    )
    .await;

    for _ in 0..3 {
        let error = client(&standin)
            .chat(&png_request(HORSE, "x"))
            .await
            .unwrap_err();
        assert_eq!(status_error(&error), 503);
        assert_eq!(error.class(), ErrorClass::Transient);
    }
    // The image was analysed (and failed) three times.
    let calls = calls(&standin).await;
    assert_eq!(calls["by_image"][sha256_hex(HORSE)], 3);
    assert_eq!(calls["by_status"]["503"], 3);
    assert_eq!(calls["succeeded_by_image"], json!({}));
}

#[tokio::test]
async fn an_outage_answers_503_to_every_call_until_it_ends() {
    let standin = start();
    let config = admin(
        &standin,
        reqwest::Method::PATCH,
        "config",
        json!({"outage": true}),
    )
    .await;
    assert_eq!(config["outage"], true);

    // Even a wrong key gets 503: the whole service is down.
    let error = client_with_key(&standin, "wrong")
        .chat(&png_request(HORSE, "x"))
        .await
        .unwrap_err();
    assert_eq!(status_error(&error), 503);
    let error = client(&standin)
        .chat(&png_request(HORSE, "x"))
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Transient);

    admin(
        &standin,
        reqwest::Method::PATCH,
        "config",
        json!({"outage": false}),
    )
    .await;
    client(&standin)
        .chat(&png_request(HORSE, "x"))
        .await
        .unwrap();
}

#[tokio::test]
async fn over_the_rate_limit_calls_get_429_with_retry_after() {
    let standin = start();
    admin(
        &standin,
        reqwest::Method::PUT,
        "config",
        json!({"requests_per_minute": 2}),
    )
    .await;
    let client = client(&standin);
    let request = png_request(HORSE, "x");
    client.chat(&request).await.unwrap();
    client.chat(&request).await.unwrap();

    let error = client.chat(&request).await.unwrap_err();
    assert_eq!(status_error(&error), 429);
    assert_eq!(error.class(), ErrorClass::RateLimited);
    let wait = error.retry_after().unwrap();
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(60),
        "{wait:?}"
    );

    // A reset empties the window.
    admin(&standin, reqwest::Method::POST, "reset", json!({})).await;
    client.chat(&request).await.unwrap();
}

#[tokio::test]
async fn injected_429s_carry_the_configured_retry_after() {
    let standin = start();
    admin(
        &standin,
        reqwest::Method::PUT,
        "config",
        json!({"error_rates": {"429": 1.0}, "retry_after_seconds": 7}),
    )
    .await;
    let error = client(&standin)
        .chat(&png_request(HORSE, "x"))
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::RateLimited);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn rejected_images_fail_permanently_while_others_pass() {
    let standin = start();
    admin(
        &standin,
        reqwest::Method::PUT,
        "config",
        json!({"reject_images": [sha256_hex(HORSE).to_uppercase()]}),
    )
    .await;
    let client = client(&standin);

    let error = client.chat(&png_request(HORSE, "x")).await.unwrap_err();
    assert_eq!(status_error(&error), 400);
    assert_eq!(error.class(), ErrorClass::Permanent);
    assert!(error.api_message().unwrap().contains("invalid image"));
    client.chat(&png_request(CHELSEA, "x")).await.unwrap();
}

#[tokio::test]
async fn the_calls_endpoint_counts_calls_per_image_and_status_until_reset() {
    let standin = start();
    let client = client(&standin);
    client.chat(&png_request(CHELSEA, "a")).await.unwrap();
    client.chat(&png_request(CHELSEA, "b")).await.unwrap();
    client.chat(&png_request(HORSE, "a")).await.unwrap();
    client_with_key(&standin, "wrong-key")
        .chat(&png_request(HORSE, "a"))
        .await
        .unwrap_err();
    // One call with the same image twice counts once for it.
    let twice = ChatRequest::new(
        MODEL,
        vec![Message::user(vec![
            ContentPart::image(ImageUrl::data_uri("image/png", HORSE, None)),
            ContentPart::image(ImageUrl::data_uri("image/png", HORSE, None)),
        ])],
    );
    client.chat(&twice).await.unwrap();

    let counted = calls(&standin).await;
    assert_eq!(counted["total"], 5);
    assert_eq!(
        counted["received"], 5,
        "every call is counted on arrival too"
    );
    assert_eq!(counted["by_image"][sha256_hex(CHELSEA)], 2);
    assert_eq!(counted["by_image"][sha256_hex(HORSE)], 2);
    assert_eq!(counted["succeeded_by_image"][sha256_hex(HORSE)], 2);
    assert_eq!(counted["by_status"], json!({"200": 4, "401": 1}));
    assert_eq!(standin.standin.calls().total, 5);

    admin(&standin, reqwest::Method::POST, "reset", json!({})).await;
    assert_eq!(
        calls(&standin).await,
        json!({"received": 0, "total": 0, "by_image": {}, "succeeded_by_image": {}, "by_status": {}})
    );
}

#[tokio::test]
async fn the_key_can_be_changed_at_run_time_and_is_never_shown() {
    let standin = start();
    let config = admin(
        &standin,
        reqwest::Method::PATCH,
        "config",
        json!({"api_key": "a-brand-new-key"}),
    )
    .await;
    assert!(config.get("api_key").is_none(), "{config}");

    let error = client(&standin)
        .chat(&png_request(HORSE, "x"))
        .await
        .unwrap_err();
    assert_eq!(status_error(&error), 401);
    client_with_key(&standin, "a-brand-new-key")
        .chat(&png_request(HORSE, "x"))
        .await
        .unwrap();
    let shown = reqwest::get(format!("{}/admin/config", standin.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!shown.contains("a-brand-new-key"), "{shown}");
}

#[tokio::test]
async fn an_invalid_configuration_is_refused_and_the_old_one_stays() {
    let standin = start();
    let response = reqwest::Client::new()
        .put(format!("{}/admin/config", standin.base_url()))
        .json(&json!({"error_rates": {"503": 2.0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_cohere_error_body(&response.json().await.unwrap());
    assert!(standin.standin.config().error_rates.is_empty());
}

#[tokio::test]
async fn configured_latency_delays_the_answer() {
    let mut config = StandInConfig::new(KEY);
    config.runtime.latency_ms = cohere_standin::Latency { min: 150, max: 150 };
    let standin = spawn(config).unwrap();
    let started = Instant::now();
    client(&standin)
        .chat(&png_request(HORSE, "x"))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));

    // Refused calls are not delayed by it (they fail before the model would run); only checked
    // for not failing, as timing upper bounds are flaky on a loaded machine.
    client_with_key(&standin, "wrong")
        .chat(&png_request(HORSE, "x"))
        .await
        .unwrap_err();
    standin.stop().await;
}
