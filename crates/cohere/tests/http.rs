//! End-to-end calls against a tiny HTTP/1.1 server on a local port (no external network).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use cohere::{
    ChatRequest, CohereClient, CohereError, ContentPart, Detail, FinishReason, ImageUrl, Message,
    ResponseFormat,
};
use domain::job::ErrorClass;
use secrecy::SecretString;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const KEY: &str = "co-test-0123456789abcdefghijklmnopqrstuv";

/// A safety net so a broken test fails instead of hanging; never used to wait for an event.
const TEST_DEADLINE: Duration = Duration::from_secs(30);

/// What the server received.
#[derive(Debug)]
struct Received {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request (head and `Content-Length` body).
async fn read_request(stream: &mut TcpStream) -> Received {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the client closed the connection mid-head");
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = std::str::from_utf8(&buffer[..head_end]).unwrap().to_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap().split(' ');
    let method = request_line.next().unwrap().to_owned();
    let path = request_line.next().unwrap().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_owned(), value.trim().to_owned())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .expect("the client sent a Content-Length");
    while buffer.len() < head_end + length {
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the client closed the connection mid-body");
        buffer.extend_from_slice(&chunk[..read]);
    }
    Received {
        method,
        path,
        headers,
        body: buffer[head_end..head_end + length].to_vec(),
    }
}

/// A complete HTTP/1.1 response that closes the connection.
fn response(status: &str, extra_headers: &[(&str, &str)], body: &str) -> String {
    let mut text = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in extra_headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text
}

/// Serves `responses` in order, one connection each, and returns what it received.
async fn serve(responses: Vec<String>) -> (String, JoinHandle<Vec<Received>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let mut received = Vec::new();
        for canned in responses {
            let (mut stream, _) = listener.accept().await.unwrap();
            received.push(read_request(&mut stream).await);
            stream.write_all(canned.as_bytes()).await.unwrap();
            stream.shutdown().await.unwrap();
        }
        received
    });
    (base_url, server)
}

async fn finish(server: JoinHandle<Vec<Received>>) -> Vec<Received> {
    tokio::time::timeout(TEST_DEADLINE, server)
        .await
        .expect("the server got every request it expected")
        .unwrap()
}

fn client(base_url: &str, timeout: Duration) -> CohereClient {
    CohereClient::new(base_url, SecretString::from(KEY), timeout).unwrap()
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "command-a-vision-07-2025".into(),
        messages: vec![
            Message::system("Answer in JSON."),
            Message::user(vec![
                ContentPart::text("What is in this image?"),
                ContentPart::image(ImageUrl::data_uri(
                    "image/png",
                    &[0x89, b'P', b'N', b'G', 0, 1, 2, 3],
                    Some(Detail::Auto),
                )),
            ]),
        ],
        response_format: Some(ResponseFormat::JsonObject {
            json_schema: Some(json!({"type": "object"})),
        }),
        temperature: Some(0.0),
        max_tokens: Some(100),
    }
}

/// One call answered with `canned`; returns the error it must fail with.
async fn call_failing_with(canned: String) -> CohereError {
    let (base_url, server) = serve(vec![canned]).await;
    let error = client(&base_url, Duration::from_secs(10))
        .chat(&request())
        .await
        .unwrap_err();
    finish(server).await;
    assert!(!error.to_string().contains(KEY), "{error}");
    assert!(!format!("{error:?}").contains(KEY), "{error:?}");
    error
}

#[tokio::test]
async fn a_chat_call_posts_json_with_the_bearer_key_to_v2_chat_and_returns_the_answer() {
    let answer = json!({
        "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
        "message": {"role": "assistant", "content": [{"type": "text", "text": "{\"animal\": \"cat\"}"}]},
        "finish_reason": "COMPLETE",
        "usage": {
            "billed_units": {"input_tokens": 5, "output_tokens": 7},
            "tokens": {"input_tokens": 71, "output_tokens": 7}
        }
    });
    let (base_url, server) = serve(vec![response("200 OK", &[], &answer.to_string())]).await;

    let reply = client(&format!("{base_url}/"), Duration::from_secs(10))
        .chat(&request())
        .await
        .unwrap();

    assert_eq!(reply.id, "c14c80c3-18eb-4519-9460-6c92edd8cfb4");
    assert_eq!(reply.finish_reason, FinishReason::Complete);
    assert_eq!(reply.text(), "{\"animal\": \"cat\"}");
    assert_eq!(
        reply.usage.unwrap().tokens.unwrap().input_tokens,
        Some(71.0)
    );

    let [received] = <[Received; 1]>::try_from(finish(server).await).unwrap();
    assert_eq!(received.method, "POST");
    assert_eq!(received.path, "/v2/chat");
    assert_eq!(
        received.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(received.header("content-type"), Some("application/json"));
    assert_eq!(received.header("accept"), Some("application/json"));
    let sent: ChatRequest = serde_json::from_slice(&received.body).unwrap();
    assert_eq!(sent, request());
}

#[tokio::test]
async fn a_429_with_retry_after_is_rate_limited_for_that_long() {
    let error = call_failing_with(response(
        "429 Too Many Requests",
        &[("Retry-After", "7")],
        r#"{"id":"r","message":"trial key rate limit exceeded"}"#,
    ))
    .await;
    assert_eq!(error.class(), ErrorClass::RateLimited);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(error.status(), Some(429));
    assert_eq!(error.api_message(), Some("trial key rate limit exceeded"));
}

#[tokio::test]
async fn a_401_is_systemic_and_carries_cohere_s_message() {
    let error = call_failing_with(response(
        "401 Unauthorized",
        &[],
        r#"{"id":"x","message":"invalid api token"}"#,
    ))
    .await;
    assert_eq!(error.class(), ErrorClass::Systemic);
    assert_eq!(error.status(), Some(401));
    assert_eq!(error.api_message(), Some("invalid api token"));
    assert_eq!(error.retry_after(), None);
    assert!(
        matches!(&error, CohereError::Status { id: Some(id), .. } if id == "x"),
        "{error:?}"
    );
}

#[tokio::test]
async fn every_documented_status_is_classified_end_to_end() {
    let cases = [
        (400, ErrorClass::Permanent),
        (401, ErrorClass::Systemic),
        (402, ErrorClass::Systemic),
        (403, ErrorClass::Systemic),
        (404, ErrorClass::Permanent),
        (422, ErrorClass::Permanent),
        (429, ErrorClass::RateLimited),
        (498, ErrorClass::Permanent),
        (499, ErrorClass::Transient),
        (500, ErrorClass::Transient),
        (501, ErrorClass::Permanent),
        (502, ErrorClass::Transient),
        (503, ErrorClass::Transient),
        (504, ErrorClass::Transient),
        (507, ErrorClass::Transient),
        (418, ErrorClass::Permanent),
        (302, ErrorClass::Systemic),
    ];
    let (base_url, server) = serve(
        cases
            .iter()
            .map(|(status, _)| {
                response(
                    &format!("{status} Whatever"),
                    &[],
                    r#"{"id":"e","message":"m"}"#,
                )
            })
            .collect(),
    )
    .await;
    let client = client(&base_url, Duration::from_secs(10));
    for (status, class) in cases {
        let error = client.chat(&request()).await.unwrap_err();
        assert_eq!(error.status(), Some(status), "{error}");
        assert_eq!(error.class(), class, "HTTP {status}");
        assert_eq!(error.api_message(), Some("m"), "HTTP {status}");
    }
    assert_eq!(finish(server).await.len(), cases.len());
}

#[tokio::test]
async fn an_error_body_that_is_not_json_still_gives_the_status_class() {
    let error = call_failing_with(
        response("502 Bad Gateway", &[], "<html>bad gateway</html>")
            .replace("application/json", "text/html"),
    )
    .await;
    assert_eq!(error.class(), ErrorClass::Transient);
    assert_eq!(error.status(), Some(502));
    assert_eq!(error.api_message(), None);
}

#[tokio::test]
async fn a_2xx_body_that_does_not_decode_is_transient() {
    let error = call_failing_with(response("200 OK", &[], "<html>captive portal</html>")).await;
    assert!(
        matches!(error, CohereError::Decode { status: 200, .. }),
        "{error:?}"
    );
    assert_eq!(error.class(), ErrorClass::Transient);
}

#[tokio::test]
async fn the_key_is_scrubbed_from_a_message_that_echoes_it() {
    let body = json!({"id": "x", "message": format!("invalid api token {KEY}")}).to_string();
    let error = call_failing_with(response("401 Unauthorized", &[], &body)).await;
    assert_eq!(error.api_message(), Some("invalid api token [redacted]"));
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);

    let error = client(&format!("http://{address}"), Duration::from_secs(10))
        .chat(&request())
        .await
        .unwrap_err();

    assert!(matches!(error, CohereError::Connection { .. }), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Transient);
    assert_eq!(error.status(), None);
    assert!(!error.to_string().contains(KEY));
}

#[tokio::test]
async fn a_connection_closed_without_an_answer_is_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        read_request(&mut stream).await;
        drop(stream);
    });

    let error = client(&base_url, Duration::from_secs(10))
        .chat(&request())
        .await
        .unwrap_err();

    tokio::time::timeout(TEST_DEADLINE, server)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(error, CohereError::Connection { .. }), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Transient);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_as_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let _server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        read_request(&mut stream).await;
        // Keep the connection open and silent until the test ends.
        std::future::pending::<()>().await;
        drop(stream);
    });

    let error = client(&base_url, Duration::from_millis(300))
        .chat(&request())
        .await
        .unwrap_err();

    assert!(matches!(error, CohereError::Timeout { .. }), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Transient);
    assert_eq!(error.status(), None);
    assert!(!error.to_string().contains(KEY));
}
