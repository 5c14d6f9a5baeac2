//! The HTTP client for `POST /v2/chat`.

use std::error::Error as _;
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{StatusCode, Url, redirect};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::{CohereError, retry_after_from_headers};
use crate::types::{ChatRequest, ChatResponse, EncodedChatRequest};

/// Cohere's production API; pass it to [`CohereClient::new`] unless testing against a mock.
pub const DEFAULT_BASE_URL: &str = "https://api.cohere.com";

/// Longest error message kept from an error body, in bytes.
const MAX_MESSAGE_BYTES: usize = 2_000;

/// Keys shorter than this are not scrubbed from messages (replacing a one-letter "key"
/// everywhere would garble them; real keys are 40 characters).
const MIN_REDACTED_KEY_LEN: usize = 8;

const REDACTED: &str = "[redacted]";

/// Calls Cohere's chat API. Cheap to clone (clones share one connection pool). It does not
/// retry: classify a failure with [`CohereError::class`] and act on it.
#[derive(Clone)]
pub struct CohereClient {
    http: reqwest::Client,
    endpoint: Url,
    api_key: SecretString,
    timeout: Duration,
}

impl fmt::Debug for CohereClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CohereClient")
            .field("endpoint", &self.endpoint.as_str())
            .field("api_key", &REDACTED)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl CohereClient {
    /// A client for the API at `base_url` (e.g. [`DEFAULT_BASE_URL`]; a trailing slash and a
    /// path prefix are fine), calling `{base_url}/v2/chat` with `api_key` as bearer token.
    /// Whitespace around the key (e.g. the newline of a mounted secret file) is ignored.
    /// `timeout` bounds a whole call: connecting, sending the images and reading the answer.
    ///
    /// Fails with [`CohereError::Config`] (class `Systemic`) if the URL is not http(s), the key is
    /// empty or not a valid header value, or the timeout is zero.
    pub fn new(
        base_url: &str,
        api_key: SecretString,
        timeout: Duration,
    ) -> Result<Self, CohereError> {
        let base = base_url.trim().trim_end_matches('/');
        let endpoint = Url::parse(&format!("{base}/v2/chat")).map_err(|error| {
            CohereError::Config(format!("the base URL {base_url:?} is not a URL: {error}"))
        })?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(CohereError::Config(format!(
                "the base URL {base_url:?} is not an http(s) URL"
            )));
        }
        if endpoint.query().is_some() || endpoint.fragment().is_some() {
            return Err(CohereError::Config(format!(
                "the base URL {base_url:?} must not have a query or fragment"
            )));
        }
        if api_key.expose_secret().trim().is_empty() {
            return Err(CohereError::Config("the API key is empty".into()));
        }
        if timeout.is_zero() {
            return Err(CohereError::Config("the timeout is zero".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A POST must not silently turn into a GET elsewhere; a 3xx is reported instead.
            .redirect(redirect::Policy::none())
            .user_agent(concat!(
                env!("CARGO_PKG_NAME"),
                "/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|error| {
                CohereError::Config(format!("cannot build the HTTP client: {}", chain(&error)))
            })?;
        let client = Self {
            http,
            endpoint,
            api_key,
            timeout,
        };
        client.authorization()?;
        Ok(client)
    }

    /// The URL every chat call goes to.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// Sends `request` (non-streaming) and returns Cohere's answer.
    ///
    /// Dropping the future aborts the call. Check [`ChatResponse::finish_reason`]: a 200 answer
    /// can still be truncated (`MaxTokens`) or failed (`Error`, `Timeout`).
    pub async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, CohereError> {
        let encoded = request.encode().map_err(|error| CohereError::Encode {
            detail: error.to_string(),
        })?;
        self.send(&encoded).await
    }

    /// Like [`CohereClient::chat`] for a request serialized beforehand (which lets the caller
    /// free the request's image data before the call; retries resend the same bytes).
    ///
    /// A CLIENT span (HTTP semantic conventions) covers the call, and its W3C trace context
    /// goes out as `traceparent`.
    #[tracing::instrument(
        name = "POST",
        skip_all,
        fields(
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            http.request.method = "POST",
            server.address = self.endpoint.host_str().unwrap_or_default(),
            url.full = %self.endpoint,
            http.response.status_code = tracing::field::Empty,
            gen_ai.system = "cohere",
            gen_ai.request.model = %request.model,
        )
    )]
    pub async fn send(&self, request: &EncodedChatRequest) -> Result<ChatResponse, CohereError> {
        let body = request.body.clone();
        let started = Instant::now();
        let mut headers = reqwest::header::HeaderMap::new();
        telemetry::inject_http(&mut headers);
        let response = self
            .http
            .post(self.endpoint.clone())
            .headers(headers)
            .header(AUTHORIZATION, self.authorization()?)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .body(body)
            .send()
            .await
            .map_err(|error| {
                tracing::Span::current().record("otel.status_code", "ERROR");
                self.transport_error(&error)
            })?;
        let status = response.status();
        let span = tracing::Span::current();
        span.record("http.response.status_code", status.as_u16());
        if !status.is_success() {
            span.record("otel.status_code", "ERROR");
        }
        tracing::debug!(
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Cohere answered"
        );

        if status.is_success() {
            let bytes = response
                .bytes()
                .await
                .map_err(|error| self.transport_error(&error))?;
            serde_json::from_slice(&bytes).map_err(|error| CohereError::Decode {
                status: status.as_u16(),
                detail: self.redact(error.to_string()),
            })
        } else {
            Err(self.status_error(status, response).await)
        }
    }

    /// `Bearer <key>`, marked sensitive so it is never printed by `Debug`.
    fn authorization(&self) -> Result<HeaderValue, CohereError> {
        let mut value =
            HeaderValue::try_from(format!("Bearer {}", self.api_key.expose_secret().trim()))
                .map_err(|_| {
                    CohereError::Config(
                        "the API key contains characters not allowed in an HTTP header".into(),
                    )
                })?;
        value.set_sensitive(true);
        Ok(value)
    }

    async fn status_error(&self, status: StatusCode, response: reqwest::Response) -> CohereError {
        #[derive(Deserialize)]
        struct ErrorBody {
            id: Option<String>,
            message: Option<String>,
        }

        let retry_after = retry_after_from_headers(response.headers(), SystemTime::now());
        // The status says what happened; a body that cannot be read or parsed only costs the
        // explanation.
        let body = response
            .bytes()
            .await
            .ok()
            .and_then(|bytes| serde_json::from_slice::<ErrorBody>(&bytes).ok());
        let (id, message) = body.map_or((None, None), |body| (body.id, body.message));
        CohereError::Status {
            status: status.as_u16(),
            id: id.map(|id| self.redact(truncate(id))),
            message: message.map(|message| self.redact(truncate(message))),
            retry_after,
        }
    }

    fn transport_error(&self, error: &reqwest::Error) -> CohereError {
        let detail = self.redact(chain(error));
        if error.is_timeout() {
            CohereError::Timeout { detail }
        } else if error.is_builder() {
            CohereError::Config(detail)
        } else {
            CohereError::Connection { detail }
        }
    }

    /// Removes the API key from text that came from elsewhere (a server can echo anything).
    fn redact(&self, text: String) -> String {
        let key = self.api_key.expose_secret().trim();
        if key.len() >= MIN_REDACTED_KEY_LEN && text.contains(key) {
            text.replace(key, REDACTED)
        } else {
            text
        }
    }
}

/// An error and all its causes, `: `-separated (reqwest's own message omits the causes).
fn chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_MESSAGE_BYTES {
        let end = (0..=MAX_MESSAGE_BYTES)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "co-test-key-0123456789abcdef";

    fn client(base_url: &str) -> Result<CohereClient, CohereError> {
        CohereClient::new(base_url, SecretString::from(KEY), Duration::from_secs(5))
    }

    #[test]
    fn the_endpoint_is_v2_chat_under_the_base_url_with_or_without_a_trailing_slash() {
        assert_eq!(
            client(DEFAULT_BASE_URL).unwrap().endpoint(),
            "https://api.cohere.com/v2/chat"
        );
        assert_eq!(
            client("https://api.cohere.com/").unwrap().endpoint(),
            "https://api.cohere.com/v2/chat"
        );
        assert_eq!(
            client("http://proxy.local:8080/cohere/")
                .unwrap()
                .endpoint(),
            "http://proxy.local:8080/cohere/v2/chat"
        );
    }

    #[test]
    fn debug_output_does_not_contain_the_key() {
        let debug = format!("{:?}", client(DEFAULT_BASE_URL).unwrap());
        assert!(!debug.contains(KEY), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
    }

    #[test]
    fn the_authorization_header_is_a_sensitive_bearer_token() {
        let value = client(DEFAULT_BASE_URL).unwrap().authorization().unwrap();
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().unwrap(), format!("Bearer {KEY}"));
        assert!(!format!("{value:?}").contains(KEY));
    }

    #[test]
    fn a_bad_configuration_is_a_systemic_error_that_does_not_show_the_key() {
        use domain::job::ErrorClass;

        let bad = [
            CohereClient::new("not a url", SecretString::from(KEY), Duration::from_secs(1)),
            CohereClient::new("ftp://x", SecretString::from(KEY), Duration::from_secs(1)),
            CohereClient::new(
                DEFAULT_BASE_URL,
                SecretString::from("  "),
                Duration::from_secs(1),
            ),
            CohereClient::new(
                DEFAULT_BASE_URL,
                SecretString::from("co-key-with-newline\n-inside"),
                Duration::from_secs(1),
            ),
            CohereClient::new(DEFAULT_BASE_URL, SecretString::from(KEY), Duration::ZERO),
        ];
        for result in bad {
            let error = result.unwrap_err();
            assert_eq!(error.class(), ErrorClass::Systemic, "{error}");
            assert!(!error.to_string().contains("co-key"), "{error}");
            assert!(!error.to_string().contains(KEY), "{error}");
        }
    }

    #[test]
    fn the_key_is_scrubbed_from_text_a_server_echoes() {
        let client = client(DEFAULT_BASE_URL).unwrap();
        assert_eq!(
            client.redact(format!("bad token {KEY}!")),
            "bad token [redacted]!"
        );
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let cut = truncate("é".repeat(MAX_MESSAGE_BYTES));
        assert!(cut.len() <= MAX_MESSAGE_BYTES + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
