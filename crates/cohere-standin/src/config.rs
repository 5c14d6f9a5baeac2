//! Start-up and run-time configuration.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// How the stand-in starts.
#[derive(Clone, PartialEq)]
pub struct StandInConfig {
    /// The bearer token `POST /v2/chat` accepts.
    pub api_key: String,
    /// Faults and limits in force from the start (changeable at run time through
    /// `/admin/config`); its `api_key`, when set, replaces the one above.
    pub runtime: RuntimeConfig,
    /// HTTP worker threads per listener (at least 1).
    pub workers: usize,
}

impl StandInConfig {
    /// Accepts `api_key`, no faults, no latency, two workers.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            runtime: RuntimeConfig::default(),
            workers: 2,
        }
    }
}

impl std::fmt::Debug for StandInConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandInConfig")
            .field("api_key", &"[redacted]")
            .field("runtime", &self.runtime)
            .field("workers", &self.workers)
            .finish()
    }
}

/// Faults and limits, as read and written by `GET`/`PUT`/`PATCH /admin/config`.
///
/// Every field is optional in JSON (a `PUT` resets omitted fields to these defaults, a `PATCH`
/// leaves them unchanged). Order of effects on `POST /v2/chat`: `outage` (503), the API key
/// (401), `requests_per_minute` (429), request validation (400/404/422/501), `reject_images`
/// (400), `error_rates` (an injected 429 answers at once), `latency_ms`, then the answer.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Added before every answer that got past validation (uniform in `min..=max`).
    pub latency_ms: Latency,
    /// Probability of answering with each status instead (e.g. `{"503": 0.05}`), drawn once per
    /// request after validation; statuses 400..=599, probabilities summing to at most 1.
    pub error_rates: BTreeMap<u16, f64>,
    /// `Retry-After` seconds sent with injected 429s (and with rate-limit 429s instead of the
    /// computed wait).
    pub retry_after_seconds: Option<u64>,
    /// Calls admitted per sliding minute (counting calls with the right key); more get 429 with
    /// `Retry-After`. `None`: unlimited.
    pub requests_per_minute: Option<u32>,
    /// Every chat call gets 503.
    pub outage: bool,
    /// Write-only: a new accepted API key. Never shown by `GET` (reads as absent); absent or
    /// `null` in a `PUT`/`PATCH` keeps the current key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// sha256 (hex) of images (bytes of a data URI's image, or an https URL string) that are
    /// refused with a permanent 400 "invalid image".
    pub reject_images: BTreeSet<String>,
}

impl std::fmt::Debug for RuntimeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeConfig")
            .field("latency_ms", &self.latency_ms)
            .field("error_rates", &self.error_rates)
            .field("retry_after_seconds", &self.retry_after_seconds)
            .field("requests_per_minute", &self.requests_per_minute)
            .field("outage", &self.outage)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("reject_images", &self.reject_images)
            .finish()
    }
}

/// A uniform latency range in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Latency {
    /// Shortest added delay.
    pub min: u64,
    /// Longest added delay (at least `min`).
    pub max: u64,
}

/// Longest latency accepted, so a typo cannot hang every caller for days (10 minutes).
pub const MAX_LATENCY_MS: u64 = 600_000;

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl RuntimeConfig {
    /// Checks the values and normalises `reject_images` to lower case.
    pub fn validated(mut self) -> Result<Self, ConfigError> {
        let Latency { min, max } = self.latency_ms;
        if min > max {
            return Err(ConfigError(format!(
                "latency_ms.min ({min}) is greater than latency_ms.max ({max})"
            )));
        }
        if max > MAX_LATENCY_MS {
            return Err(ConfigError(format!(
                "latency_ms.max ({max}) is over {MAX_LATENCY_MS}"
            )));
        }
        let mut sum = 0.0;
        for (&status, &rate) in &self.error_rates {
            if !(400..=599).contains(&status) {
                return Err(ConfigError(format!(
                    "error_rates: {status} is not an error status (400..=599)"
                )));
            }
            if !(0.0..=1.0).contains(&rate) {
                return Err(ConfigError(format!(
                    "error_rates: the rate of {status} ({rate}) is not between 0 and 1"
                )));
            }
            sum += rate;
        }
        if sum > 1.0 + 1e-9 {
            return Err(ConfigError(format!(
                "error_rates add up to {sum}, more than 1"
            )));
        }
        if self
            .api_key
            .as_deref()
            .is_some_and(|key| key.trim().is_empty())
        {
            return Err(ConfigError("api_key is empty".into()));
        }
        self.reject_images = self
            .reject_images
            .into_iter()
            .map(|sha| {
                let lower = sha.trim().to_ascii_lowercase();
                if lower.len() == 64 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(lower)
                } else {
                    Err(ConfigError(format!(
                        "reject_images: {sha:?} is not a hex sha256"
                    )))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn the_documented_json_shape_parses() {
        let config: RuntimeConfig = serde_json::from_value(json!({
            "latency_ms": {"min": 10, "max": 20},
            "error_rates": {"500": 0.1, "503": 0.05},
            "retry_after_seconds": 3,
            "requests_per_minute": 20,
            "outage": false,
            "api_key": "new",
            "reject_images": ["AB".repeat(32)]
        }))
        .unwrap();
        let config = config.validated().unwrap();
        assert_eq!(config.error_rates[&503], 0.05);
        assert_eq!(config.reject_images.first().unwrap(), &"ab".repeat(32));
    }

    #[test]
    fn an_empty_object_is_the_default() {
        let config: RuntimeConfig = serde_json::from_value(json!({})).unwrap();
        assert_eq!(config, RuntimeConfig::default());
    }

    #[test]
    fn nonsense_is_refused() {
        let bad = [
            json!({"latency_ms": {"min": 5, "max": 1}}),
            json!({"error_rates": {"200": 0.5}}),
            json!({"error_rates": {"500": 1.5}}),
            json!({"error_rates": {"500": 0.6, "503": 0.6}}),
            json!({"reject_images": ["not hex"]}),
            json!({"api_key": " "}),
        ];
        for value in bad {
            let config: RuntimeConfig = serde_json::from_value(value.clone()).unwrap();
            assert!(config.validated().is_err(), "{value}");
        }
        assert!(serde_json::from_value::<RuntimeConfig>(json!({"outgae": true})).is_err());
    }

    #[test]
    fn the_key_is_never_shown() {
        let mut config = RuntimeConfig {
            api_key: Some("secret-key".into()),
            ..RuntimeConfig::default()
        };
        assert!(!format!("{config:?}").contains("secret-key"));
        config.api_key = None;
        assert!(!serde_json::to_string(&config).unwrap().contains("api_key"));
        let start = StandInConfig::new("secret-key");
        assert!(!format!("{start:?}").contains("secret-key"));
    }
}
