//! What went wrong with a Cohere call, and what the caller should do about it
//! ([`ErrorClass`], as in DESIGN.md "Failure handling").

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use domain::job::ErrorClass;
use reqwest::header::HeaderMap;

/// A failed Cohere call. Messages never contain the API key (it is also scrubbed from anything
/// the server echoes back).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CohereError {
    /// Cohere (or something in front of it) answered with a status other than 2xx.
    #[error("Cohere answered HTTP {status}{}", match message {
        Some(message) => format!(": {message}"),
        None => String::new(),
    })]
    Status {
        /// The HTTP status code.
        status: u16,
        /// `id` from Cohere's `{"id", "message"}` error body, if the body had one.
        id: Option<String>,
        /// `message` from Cohere's error body, if the body had one (cut to 2,000 bytes).
        message: Option<String>,
        /// How long the server asked us to wait, from its headers (see [`CohereError::retry_after`]).
        retry_after: Option<Duration>,
    },
    /// No complete answer arrived within the client's timeout (connecting, sending or reading).
    #[error("the Cohere call timed out: {detail}")]
    Timeout {
        /// What was being done, with the underlying causes.
        detail: String,
    },
    /// The connection could not be made or broke (refused, reset, DNS, TLS, closed early).
    #[error("could not talk to Cohere: {detail}")]
    Connection {
        /// The underlying causes.
        detail: String,
    },
    /// A 2xx answer whose body is not a chat response. Classed as transient: the usual cause is a
    /// proxy or gateway returning its own page, which a retry gets past; if it persists, the
    /// retry limit dead-letters the item.
    #[error("Cohere answered HTTP {status} with a body that is not a chat response: {detail}")]
    Decode {
        /// The HTTP status code (2xx).
        status: u16,
        /// Why decoding failed.
        detail: String,
    },
    /// The request could not be encoded as JSON.
    #[error("could not encode the chat request: {detail}")]
    Encode {
        /// Why encoding failed.
        detail: String,
    },
    /// The client is misconfigured (base URL, API key, HTTP client set-up); every call would fail
    /// the same way until a person fixes the configuration.
    #[error("invalid Cohere client configuration: {0}")]
    Config(String),
}

impl CohereError {
    /// What to do about this error:
    ///
    /// - `RateLimited`: HTTP 429.
    /// - `Transient`: 499, 408, every 5xx except 501, timeouts, connection failures, and a 2xx
    ///   body that does not decode.
    /// - `Systemic`: 401, 402, 403 (key or billing), a misconfigured client, and statuses outside
    ///   2xx/4xx/5xx (a redirect means the base URL is wrong; redirects are not followed).
    /// - `Permanent`: 400, 404, 422, 498, 501 and every other 4xx; a request that cannot be encoded.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Status { status, .. } => classify_status(*status),
            Self::Timeout { .. } | Self::Connection { .. } | Self::Decode { .. } => {
                ErrorClass::Transient
            }
            Self::Encode { .. } => ErrorClass::Permanent,
            Self::Config(_) => ErrorClass::Systemic,
        }
    }

    /// How long the server asked us to wait before trying again, if it said so. Taken from the
    /// first of these headers that is present and valid (the order of Cohere's official SDK):
    /// `retry-after-ms` (milliseconds), `Retry-After` (seconds or an HTTP date), and
    /// `X-RateLimit-Reset` (a Unix time in seconds as the SDK reads it; values below 10^9 are
    /// taken as seconds from now). Not capped: clamp it before sleeping.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status of the answer, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } | Self::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Cohere's own explanation (`message` of its error body), if the answer carried one.
    pub fn api_message(&self) -> Option<&str> {
        match self {
            Self::Status { message, .. } => message.as_deref(),
            _ => None,
        }
    }
}

/// The class of a non-2xx HTTP status; see [`CohereError::class`].
pub fn classify_status(status: u16) -> ErrorClass {
    match status {
        429 => ErrorClass::RateLimited,
        401..=403 => ErrorClass::Systemic,
        // 408 (Request Timeout, sent by proxies and load balancers) is a timeout; 499 is Cohere's
        // "request cancelled", documented as retryable.
        408 | 499 => ErrorClass::Transient,
        501 => ErrorClass::Permanent,
        500..=599 => ErrorClass::Transient,
        400..=499 => ErrorClass::Permanent,
        _ => ErrorClass::Systemic,
    }
}

/// Reads the wait the server asked for; see [`CohereError::retry_after`].
pub(crate) fn retry_after_from_headers(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };
    header("retry-after-ms")
        .and_then(parse_millis)
        .or_else(|| header("retry-after").and_then(|value| parse_retry_after(value, now)))
        .or_else(|| header("x-ratelimit-reset").and_then(|value| parse_reset(value, now)))
}

fn parse_millis(value: &str) -> Option<Duration> {
    let millis: f64 = value.parse().ok()?;
    if !millis.is_finite() {
        return None;
    }
    Duration::try_from_secs_f64(millis.max(0.0) / 1000.0).ok()
}

/// `Retry-After`: delay-seconds or an HTTP date (a date in the past means "now").
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok().map(Duration::from_secs);
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Values at least this large are Unix times, smaller ones a number of seconds from now.
const UNIX_TIME_THRESHOLD: u64 = 1_000_000_000;

/// `X-RateLimit-Reset`: a Unix time in seconds (ignored when already past), or seconds from now.
fn parse_reset(value: &str, now: SystemTime) -> Option<Duration> {
    let seconds: u64 = value.parse().ok()?;
    if seconds < UNIX_TIME_THRESHOLD {
        return Some(Duration::from_secs(seconds));
    }
    let reset = UNIX_EPOCH.checked_add(Duration::from_secs(seconds))?;
    reset.duration_since(now).ok()
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_784_000_000)
    }

    #[test]
    fn retry_after_in_seconds_is_read() {
        let parsed = retry_after_from_headers(&headers(&[("retry-after", " 7 ")]), now());
        assert_eq!(parsed, Some(Duration::from_secs(7)));
    }

    #[test]
    fn retry_after_as_an_http_date_is_the_time_until_that_date() {
        let date = httpdate::fmt_http_date(now() + Duration::from_secs(90));
        let parsed = retry_after_from_headers(&headers(&[("Retry-After", &date)]), now());
        assert_eq!(parsed, Some(Duration::from_secs(90)));
    }

    #[test]
    fn retry_after_as_a_past_http_date_means_now() {
        let date = httpdate::fmt_http_date(now() - Duration::from_secs(90));
        let parsed = retry_after_from_headers(&headers(&[("retry-after", &date)]), now());
        assert_eq!(parsed, Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_ms_wins_over_retry_after_as_in_the_official_sdk() {
        let parsed = retry_after_from_headers(
            &headers(&[("retry-after-ms", "1500"), ("retry-after", "7")]),
            now(),
        );
        assert_eq!(parsed, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn an_invalid_header_falls_through_to_the_next_one() {
        let parsed = retry_after_from_headers(
            &headers(&[
                ("retry-after-ms", "soon"),
                ("retry-after", "whenever"),
                ("x-ratelimit-reset", "12"),
            ]),
            now(),
        );
        assert_eq!(parsed, Some(Duration::from_secs(12)));
    }

    #[test]
    fn x_ratelimit_reset_as_a_unix_time_is_the_time_until_then() {
        let reset = (now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 30).to_string();
        let parsed = retry_after_from_headers(&headers(&[("x-ratelimit-reset", &reset)]), now());
        assert_eq!(parsed, Some(Duration::from_secs(30)));
    }

    #[test]
    fn x_ratelimit_reset_in_the_past_is_ignored() {
        let reset = (now().duration_since(UNIX_EPOCH).unwrap().as_secs() - 30).to_string();
        let parsed = retry_after_from_headers(&headers(&[("x-ratelimit-reset", &reset)]), now());
        assert_eq!(parsed, None);
    }

    #[test]
    fn no_header_means_no_retry_after() {
        assert_eq!(retry_after_from_headers(&HeaderMap::new(), now()), None);
    }

    #[test]
    fn every_documented_status_gets_the_class_design_md_gives_it() {
        let expected = [
            (429, ErrorClass::RateLimited),
            (499, ErrorClass::Transient),
            (500, ErrorClass::Transient),
            (502, ErrorClass::Transient),
            (503, ErrorClass::Transient),
            (504, ErrorClass::Transient),
            (505, ErrorClass::Transient),
            (520, ErrorClass::Transient),
            (599, ErrorClass::Transient),
            (408, ErrorClass::Transient),
            (401, ErrorClass::Systemic),
            (402, ErrorClass::Systemic),
            (403, ErrorClass::Systemic),
            (400, ErrorClass::Permanent),
            (404, ErrorClass::Permanent),
            (405, ErrorClass::Permanent),
            (409, ErrorClass::Permanent),
            (413, ErrorClass::Permanent),
            (415, ErrorClass::Permanent),
            (422, ErrorClass::Permanent),
            (498, ErrorClass::Permanent),
            (501, ErrorClass::Permanent),
            (301, ErrorClass::Systemic),
            (307, ErrorClass::Systemic),
            (101, ErrorClass::Systemic),
        ];
        for (status, class) in expected {
            let error = CohereError::Status {
                status,
                id: None,
                message: None,
                retry_after: None,
            };
            assert_eq!(error.class(), class, "HTTP {status}");
            assert_eq!(error.status(), Some(status));
        }
    }

    #[test]
    fn failures_without_a_status_are_classed_by_their_kind() {
        let detail = String::from("x");
        assert_eq!(
            CohereError::Timeout {
                detail: detail.clone()
            }
            .class(),
            ErrorClass::Transient
        );
        assert_eq!(
            CohereError::Connection {
                detail: detail.clone()
            }
            .class(),
            ErrorClass::Transient
        );
        assert_eq!(
            CohereError::Decode {
                status: 200,
                detail: detail.clone()
            }
            .class(),
            ErrorClass::Transient
        );
        assert_eq!(
            CohereError::Encode {
                detail: detail.clone()
            }
            .class(),
            ErrorClass::Permanent
        );
        assert_eq!(CohereError::Config(detail).class(), ErrorClass::Systemic);
    }

    #[test]
    fn the_display_includes_cohere_s_message() {
        let error = CohereError::Status {
            status: 401,
            id: Some("x".into()),
            message: Some("invalid api token".into()),
            retry_after: None,
        };
        assert_eq!(
            error.to_string(),
            "Cohere answered HTTP 401: invalid api token"
        );
        assert_eq!(error.api_message(), Some("invalid api token"));
    }
}
