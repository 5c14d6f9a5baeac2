//! Configuration shared by every binary.
//!
//! Layers, later ones winning: defaults in code, then an optional TOML file (named by
//! `APP_CONFIG_FILE`, or `config/app.toml` when present), then environment variables
//! `APP__SECTION__KEY` (e.g. `APP__DATABASE__URL`, `APP__HTTP__PORT`). Secrets (database
//! and broker URLs with passwords, storage keys) are [`SecretString`]s: they never appear in
//! `Debug` output or logs, and belong in the environment or a mounted file, never in the repo.

use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};

mod prices;
mod scheduler;
pub use prices::{ModelPrice, PriceTable};
pub use scheduler::SchedulerSettings;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Everything a process can be configured with. Each binary reads the sections it needs.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct Settings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub amqp: AmqpSettings,
    pub storage: StorageSettings,
    pub telemetry: TelemetrySettings,
    pub cohere: CohereSettings,
    pub worker: WorkerSettings,
    pub retry: RetrySettings,
    pub breaker: BreakerSettings,
    pub redriver: RedriverSettings,
    pub scheduler: SchedulerSettings,
}

/// Where and how the workers call Cohere.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CohereSettings {
    /// `https://api.cohere.com` in production; the stand-in's address in tests and demos.
    pub base_url: String,
    /// The API key (secret: set `APP__COHERE__API_KEY` from a secret store).
    pub api_key: Option<SecretString>,
    /// Bound on one call, images included.
    pub timeout_seconds: u64,
    /// Calls per minute allowed to every model, across all worker replicas together (the
    /// cluster-wide limiter); `None`: no limit beyond what Cohere answers with 429s.
    pub requests_per_minute: Option<u32>,
    /// Per-model limits, overriding `requests_per_minute` (in a config file:
    /// `[cohere.model_requests_per_minute]` then `"command-a-vision-07-2025" = 600`).
    pub model_requests_per_minute: std::collections::BTreeMap<String, u32>,
    /// What each model's calls cost (`[cohere.prices]`).
    pub prices: PriceTable,
}

impl CohereSettings {
    /// The API key, which whatever calls Cohere (a worker) refuses to start without; the other
    /// binaries never read it.
    pub fn required_api_key(&self) -> Result<&SecretString, SettingsError> {
        match &self.api_key {
            Some(key) if !key.expose_secret().trim().is_empty() => Ok(key),
            _ => Err(SettingsError::Invalid(
                "cohere.api_key is required: set APP__COHERE__API_KEY".into(),
            )),
        }
    }

    /// The cluster-wide limit for `model`, if any.
    pub fn requests_per_minute_for(&self, model: &str) -> Option<u32> {
        self.model_requests_per_minute
            .get(model)
            .copied()
            .or(self.requests_per_minute)
    }
}

impl Default for CohereSettings {
    fn default() -> Self {
        Self {
            base_url: "https://api.cohere.com".into(),
            api_key: None,
            timeout_seconds: 120,
            requests_per_minute: None,
            model_requests_per_minute: Default::default(),
            prices: PriceTable::default(),
        }
    }
}

/// How transient failures are retried (DESIGN.md, "Failure handling").
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RetrySettings {
    /// Calls made in process for one delivery before it goes to a delay queue (1 = no
    /// in-process retry).
    pub in_process_tries: u32,
    /// First in-process backoff ceiling; each retry doubles it, with full jitter.
    pub initial_backoff_millis: u64,
    /// Largest in-process backoff ceiling.
    pub max_backoff_millis: u64,
    /// The delay queues, shortest first: attempt `n` (counted from 0) waits
    /// `delays_seconds[min(n, len - 1)]` before it is handed back to the workers.
    pub delays_seconds: Vec<u64>,
    /// Deliveries of one stage of one item (each with its in-process tries) before a
    /// transient failure is dead-lettered.
    pub max_attempts: u32,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            in_process_tries: 3,
            initial_backoff_millis: 200,
            max_backoff_millis: 5_000,
            delays_seconds: vec![5, 30, 120],
            max_attempts: 5,
        }
    }
}

/// The circuit breaker around Cohere, one per model in each worker.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BreakerSettings {
    /// Outcomes remembered (the most recent calls).
    pub window_calls: usize,
    /// Calls in the window before the failure rate counts.
    pub min_calls: usize,
    /// Share of failed calls in the window (0..=1) that opens the breaker.
    pub failure_rate: f64,
    /// How long the breaker stays open before probing; doubled after each failed probe.
    pub open_seconds: u64,
    /// Longest open period.
    pub max_open_seconds: u64,
    /// Probe calls allowed at once while half-open.
    pub half_open_probes: usize,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            window_calls: 20,
            min_calls: 5,
            failure_rate: 0.5,
            open_seconds: 5,
            max_open_seconds: 60,
            half_open_probes: 1,
        }
    }
}

/// The dead-letter re-driver.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RedriverSettings {
    /// Admin API address.
    pub host: String,
    /// Admin API port (0 picks a free port).
    pub port: u16,
    /// Bearer token the admin API requires (secret: `APP__REDRIVER__ADMIN_TOKEN`). Without
    /// one the admin API refuses every request.
    pub admin_token: Option<SecretString>,
    /// Re-drive transient-class dead letters by themselves once Cohere is healthy again.
    pub auto_redrive: bool,
    /// Automatic re-drives of one dead letter at most; after that only an operator re-drives it.
    pub auto_redrive_max: u32,
    /// A dead letter is re-driven automatically only once it is at least this old.
    pub auto_redrive_after_seconds: u64,
    /// How often the policy looks for dead letters to re-drive.
    pub auto_redrive_interval_seconds: u64,
    /// Re-drives per second at most (operators' and automatic ones).
    pub redrive_per_second: u32,
}

impl Default for RedriverSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8090,
            admin_token: None,
            auto_redrive: true,
            auto_redrive_max: 3,
            auto_redrive_after_seconds: 60,
            auto_redrive_interval_seconds: 15,
            redrive_per_second: 50,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WorkerSettings {
    /// Stage executions in flight at once in one worker process.
    pub concurrency: usize,
    /// Unacknowledged deliveries the worker may hold; 0 means twice `concurrency`, so the next
    /// messages are loaded while the current ones are analysed and their outcomes written.
    pub prefetch: u16,
    /// Largest image fetched from a registered URL, in bytes.
    pub max_image_bytes: usize,
    /// Timeout for fetching an image from its URL.
    pub fetch_timeout_seconds: u64,
    /// Allow image URLs on loopback/private addresses (development only).
    pub allow_private_urls: bool,
    /// How long SIGTERM waits for in-flight work before leaving it to redelivery.
    pub shutdown_grace_seconds: u64,
    /// Address of the worker's `/healthz`, `/readyz` and `/metrics`.
    pub health_host: String,
    /// Port of the same (0 picks a free port).
    pub health_port: u16,
}

impl WorkerSettings {
    /// The consumer prefetch to ask the broker for.
    pub fn effective_prefetch(&self) -> u16 {
        if self.prefetch > 0 {
            self.prefetch
        } else {
            u16::try_from(self.concurrency.saturating_mul(2)).unwrap_or(u16::MAX)
        }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: 32,
            prefetch: 0,
            max_image_bytes: 20 * 1024 * 1024,
            fetch_timeout_seconds: 30,
            allow_private_urls: false,
            shutdown_grace_seconds: 30,
            health_host: "127.0.0.1".into(),
            health_port: 9091,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    pub host: String,
    /// 0 picks a free port (tests); the bound address is reported after start.
    pub port: u16,
    /// Largest JSON request body accepted, in bytes.
    pub max_json_bytes: usize,
    /// Largest multipart upload request accepted (all files together), in bytes.
    pub max_upload_bytes: usize,
    /// Worker threads for the HTTP server; 0 means one per core.
    pub workers: usize,
    /// How long an authenticated API key stays cached in memory, in seconds (0 disables).
    pub auth_cache_seconds: u64,
    /// How long a rendered job (`GET /api/jobs/{id}`) may be served from memory, in
    /// milliseconds (0 disables). A job's entry goes as soon as the replica hears an event of
    /// the job; a change whose event has not arrived yet shows at most this late.
    pub job_cache_millis: u64,
    /// How long a browser session (`POST /api/session`) lasts, in seconds.
    pub session_seconds: u64,
    /// Whether the session cookie is marked `Secure` (sent over https only).
    pub secure_cookies: SecureCookies,
    /// Reverse proxies whose `X-Forwarded-Proto` and `X-Forwarded-Host` headers are believed
    /// (addresses or CIDR blocks); requests from anywhere else are judged by the connection.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// After SIGTERM, how long the server keeps serving while `/readyz` answers 503, before
    /// it stops accepting connections: time for load balancers to notice (0 when a
    /// Kubernetes `preStop` hook waits instead).
    pub shutdown_delay_seconds: u64,
    /// After that, how long requests in flight may take to finish before their connections
    /// are closed.
    pub shutdown_grace_seconds: u64,
}

/// When the session cookie carries `Secure`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SecureCookies {
    /// When the request came over https: the connection, or `X-Forwarded-Proto: https` from a
    /// trusted proxy.
    #[default]
    Auto,
    /// Always (behind a TLS-terminating proxy that is not in `trusted_proxies`).
    Always,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            max_json_bytes: 1024 * 1024,
            max_upload_bytes: 200 * 1024 * 1024,
            workers: 0,
            auth_cache_seconds: 30,
            job_cache_millis: 250,
            session_seconds: 12 * 60 * 60,
            secure_cookies: SecureCookies::Auto,
            trusted_proxies: ["127.0.0.1/32", "::1/128"]
                .iter()
                .filter_map(|net| net.parse().ok())
                .collect(),
            shutdown_delay_seconds: 0,
            shutdown_grace_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
    pub min_connections: u32,
    pub connect_timeout_seconds: u64,
    /// How long a request waits for a pooled connection before answering 503.
    pub acquire_timeout_seconds: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("postgres://postgres@127.0.0.1:5432/pipelines"),
            max_connections: 32,
            min_connections: 2,
            connect_timeout_seconds: 5,
            acquire_timeout_seconds: 5,
        }
    }
}

/// RabbitMQ queue type for the stage queue. See the README for the trade-off.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// Classic durable queue with `x-max-priority`: honours job priorities.
    #[default]
    Classic,
    /// Quorum queue: replicated, but RabbitMQ 3.x ignores message priorities on it.
    Quorum,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AmqpSettings {
    pub url: SecretString,
    /// Prefix of every exchange and queue name, so several deployments (or tests) share a broker.
    pub prefix: String,
    pub queue_type: QueueType,
    /// How long to wait for a connection or a publisher confirm before giving up, in seconds.
    pub timeout_seconds: u64,
}

impl Default for AmqpSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("amqp://guest:guest@127.0.0.1:5672/%2f"),
            prefix: "pipelines".into(),
            queue_type: QueueType::Classic,
            timeout_seconds: 5,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    #[default]
    Local,
    S3,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StorageSettings {
    pub backend: StorageBackend,
    /// Directory for the local backend (created when missing).
    pub local_path: PathBuf,
    pub s3: S3Settings,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            backend: StorageBackend::Local,
            local_path: PathBuf::from("var/objects"),
            s3: S3Settings::default(),
        }
    }
}

/// Any S3-compatible store (AWS S3, MinIO, Ceph, R2, ...).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct S3Settings {
    pub bucket: String,
    pub region: String,
    /// Custom endpoint for S3-compatible stores; empty for AWS.
    pub endpoint: String,
    pub access_key_id: Option<SecretString>,
    pub secret_access_key: Option<SecretString>,
    /// Allow plain-http endpoints (local MinIO).
    pub allow_http: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    /// An `EnvFilter` directive, e.g. `info,sqlx=warn`. `RUST_LOG` overrides it.
    pub log_filter: String,
    /// OTLP/HTTP endpoint of a trace collector (`http://otel-collector:4318`); unset: no
    /// traces are recorded or exported.
    pub otlp_endpoint: Option<String>,
    /// Share of new traces recorded, 0 to 1 (a trace started upstream keeps its decision).
    pub sampling_ratio: f64,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            log_filter: "info,sqlx=warn,lapin=warn".into(),
            otlp_endpoint: None,
            sampling_ratio: 1.0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("could not read configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Loads the layered configuration from the process environment.
    pub fn load() -> Result<Self, SettingsError> {
        let file = std::env::var_os("APP_CONFIG_FILE").map(PathBuf::from);
        Self::load_from(file.as_deref(), Environment::with_prefix("APP"))
    }

    /// Loads defaults, then `file` (or `config/app.toml` if it exists), then `env`.
    pub fn load_from(file: Option<&Path>, env: Environment) -> Result<Self, SettingsError> {
        let mut builder = Config::builder();
        match file {
            Some(path) => {
                builder =
                    builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
            }
            None => {
                builder = builder.add_source(
                    File::with_name("config/app.toml")
                        .format(FileFormat::Toml)
                        .required(false),
                );
            }
        }
        let settings: Settings = builder
            .add_source(
                env.prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    // APP__HTTP__TRUSTED_PROXIES=10.0.0.0/8,192.168.0.0/16
                    .list_separator(",")
                    .with_list_parse_key("http.trusted_proxies"),
            )
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what serde cannot: ranges and combinations.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |m: &str| Err(SettingsError::Invalid(m.to_string()));
        if self.database.max_connections == 0 {
            return invalid("database.max_connections must be at least 1");
        }
        if self.database.min_connections > self.database.max_connections {
            return invalid("database.min_connections must not exceed database.max_connections");
        }
        if self.amqp.prefix.is_empty()
            || !self
                .amqp
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return invalid(
                "amqp.prefix must be non-empty and use only letters, digits, '-', '_' and '.'",
            );
        }
        if self.scheduler.window == 0 || self.scheduler.materialize_chunk == 0 {
            return invalid("scheduler.window and scheduler.materialize_chunk must be at least 1");
        }
        if self.worker.concurrency == 0 {
            return invalid("worker.concurrency must be at least 1");
        }
        if self.retry.in_process_tries == 0 || self.retry.max_attempts == 0 {
            return invalid("retry.in_process_tries and retry.max_attempts must be at least 1");
        }
        if self.retry.delays_seconds.is_empty() || self.retry.delays_seconds.contains(&0) {
            return invalid("retry.delays_seconds must list at least one delay, none of them 0");
        }
        if !(0.0..=1.0).contains(&self.breaker.failure_rate)
            || self.breaker.window_calls == 0
            || self.breaker.min_calls > self.breaker.window_calls
            || self.breaker.half_open_probes == 0
        {
            return invalid(
                "breaker: failure_rate must be within 0..=1, window_calls and half_open_probes at least 1, min_calls at most window_calls",
            );
        }
        if self.cohere.requests_per_minute == Some(0)
            || self
                .cohere
                .model_requests_per_minute
                .values()
                .any(|rpm| *rpm == 0)
        {
            return invalid("cohere.requests_per_minute must be at least 1 (or unset: no limit)");
        }
        if self.redriver.redrive_per_second == 0 {
            return invalid("redriver.redrive_per_second must be at least 1");
        }
        if self.http.session_seconds < 60 {
            return invalid("http.session_seconds must be at least 60");
        }
        if self.http.max_json_bytes < 1024 {
            return invalid("http.max_json_bytes must be at least 1024");
        }
        if self.storage.backend == StorageBackend::S3 && self.storage.s3.bucket.is_empty() {
            return invalid("storage.s3.bucket is required when storage.backend is s3");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/app.toml")
    }

    fn env(vars: &[(&str, &str)]) -> Environment {
        let map: config::Map<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Environment::with_prefix("APP").source(Some(map))
    }

    #[test]
    fn sessions_default_to_twelve_hours_and_proxies_come_as_a_list() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(s.http.session_seconds, 43_200);
        assert_eq!(s.http.secure_cookies, SecureCookies::Auto);
        assert_eq!(s.http.trusted_proxies.len(), 2, "loopback only");
        let s = Settings::load_from(
            None,
            env(&[
                ("APP__HTTP__TRUSTED_PROXIES", "10.0.0.0/8,192.168.1.7/32"),
                ("APP__HTTP__SECURE_COOKIES", "always"),
            ]),
        )
        .unwrap();
        assert_eq!(
            s.http.trusted_proxies,
            vec![
                "10.0.0.0/8".parse::<ipnet::IpNet>().unwrap(),
                "192.168.1.7/32".parse().unwrap()
            ]
        );
        assert_eq!(s.http.secure_cookies, SecureCookies::Always);
    }

    #[test]
    fn the_file_overrides_defaults_it_names_and_keeps_the_others() {
        let s = Settings::load_from(Some(&file()), env(&[])).unwrap();
        assert_eq!(s.http.port, 7000, "from the file");
        assert_eq!(s.amqp.prefix, "from-file");
        assert_eq!(s.http.host, "127.0.0.1", "a default the file does not set");
        assert_eq!(s.amqp.queue_type, QueueType::Classic);
    }

    #[test]
    fn environment_variables_override_nested_keys() {
        let s = Settings::load_from(
            Some(&file()),
            env(&[
                ("APP__HTTP__PORT", "9999"),
                ("APP__DATABASE__URL", "postgres://u:secret@db/x"),
                ("APP__DATABASE__MAX_CONNECTIONS", "7"),
                ("APP__AMQP__QUEUE_TYPE", "quorum"),
            ]),
        )
        .unwrap();
        assert_eq!(s.http.port, 9999);
        assert_eq!(s.database.max_connections, 7);
        assert_eq!(s.database.url.expose_secret(), "postgres://u:secret@db/x");
        assert_eq!(s.amqp.queue_type, QueueType::Quorum);
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let s = Settings::load_from(
            Some(&file()),
            env(&[("APP__DATABASE__URL", "postgres://u:hunter2@db/x")]),
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn a_cohere_key_is_required_only_by_what_calls_cohere() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        let err = s.cohere.required_api_key().unwrap_err();
        assert!(err.to_string().contains("APP__COHERE__API_KEY"), "{err}");
        let s = Settings::load_from(None, env(&[("APP__COHERE__API_KEY", " ")])).unwrap();
        assert!(
            s.cohere.required_api_key().is_err(),
            "a blank key is no key"
        );
        let s = Settings::load_from(None, env(&[("APP__COHERE__API_KEY", "k-123")])).unwrap();
        assert_eq!(
            s.cohere.required_api_key().unwrap().expose_secret(),
            "k-123"
        );
    }

    #[test]
    fn invalid_values_are_rejected_with_the_key_named() {
        let err = Settings::load_from(Some(&file()), env(&[("APP__AMQP__PREFIX", "bad prefix!")]))
            .unwrap_err();
        assert!(err.to_string().contains("amqp.prefix"), "{err}");
    }
}
