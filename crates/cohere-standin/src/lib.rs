//! A stand-in for Cohere's chat API (`POST /v2/chat`, operation `chatv2`) for tests, benchmarks
//! and the offline demo. It is a development tool, never the production path.
//!
//! It speaks Cohere's wire format (the `cohere` crate's own types), refuses what Cohere would
//! refuse (bad key 401, unknown model 404, bad bodies 400/422, too many or unsupported images
//! 400), answers deterministically from the image and prompt ([`answer()`], also usable by tests
//! to predict answers), and injects faults on demand: latency, error rates, rate limits, outages,
//! rejected images, a changed key ([`RuntimeConfig`], changeable through the admin API).
//!
//! Starting it inside a test (in a Tokio runtime):
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! let standin = cohere_standin::spawn(cohere_standin::StandInConfig::new("test-key"))?;
//! let client = cohere::CohereClient::new(
//!     &standin.base_url(),
//!     secrecy::SecretString::from("test-key"),
//!     std::time::Duration::from_secs(10),
//! )
//! .expect("client");
//! // ... call it, then look at what it saw:
//! let calls = standin.standin.calls();
//! # let _ = (client, calls);
//! # Ok(())
//! # }
//! ```
//!
//! HTTP routes: `POST /v2/chat`, `GET /health`, and the admin API under `/admin` (see
//! [`admin`] for the routes).

pub mod admin;
pub mod answer;
mod chat;
pub mod cli;
pub mod config;
mod error;
mod state;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};

pub use answer::{Answer, LABELS, answer, image_key, sha256_hex};
pub use chat::{MAX_BODY_BYTES, MAX_IMAGE_BYTES_TOTAL, MAX_IMAGES, TEXT_MODELS, VISION_MODELS};
pub use config::{ConfigError, Latency, RuntimeConfig, StandInConfig};
pub use state::Calls;

use crate::error::ApiError;
use crate::state::State;

/// Which routes a server built by [`StandIn::server`] serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routes {
    /// The chat API, `/health` and the admin API.
    All,
    /// The chat API and `/health` only.
    Chat,
    /// The admin API and `/health` only.
    Admin,
}

/// A stand-in's shared state; serve it with [`StandIn::server`], inspect and steer it directly
/// or through the admin API. Cheap to clone (clones share the state).
#[derive(Clone)]
pub struct StandIn {
    state: web::Data<State>,
    workers: usize,
}

impl std::fmt::Debug for StandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandIn")
            .field("config", &self.config())
            .finish_non_exhaustive()
    }
}

impl StandIn {
    /// Checks `config` (non-empty key, valid [`RuntimeConfig`]).
    pub fn new(config: StandInConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            state: web::Data::new(State::new(config.api_key, config.runtime)?),
            workers: config.workers.max(1),
        })
    }

    /// An HTTP server on `listener` (already bound) serving `routes`. It does not handle
    /// signals; run it by awaiting or spawning the returned [`Server`], stop it through
    /// [`Server::handle`].
    pub fn server(&self, listener: TcpListener, routes: Routes) -> std::io::Result<Server> {
        let state = self.state.clone();
        let server = HttpServer::new(move || {
            let app = App::new()
                .app_data(state.clone())
                .route("/health", web::get().to(health))
                .default_service(web::to(not_found));
            let app = if routes == Routes::Admin {
                app
            } else {
                app.route("/v2/chat", web::post().to(chat::chat))
                    .route("/v2/chat", web::route().to(method_not_allowed))
            };
            if routes == Routes::Chat {
                app
            } else {
                app.service(
                    web::scope("/admin")
                        .route("/config", web::get().to(admin::get_config))
                        .route("/config", web::put().to(admin::put_config))
                        .route("/config", web::patch().to(admin::patch_config))
                        .route("/reset", web::post().to(admin::reset))
                        .route("/calls", web::get().to(admin::calls)),
                )
            }
        })
        .workers(self.workers)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        Ok(server)
    }

    /// The configuration in force (its `api_key` is always `None`).
    pub fn config(&self) -> RuntimeConfig {
        self.state.config()
    }

    /// Replaces the configuration (as `PUT /admin/config`); answers what is now in force.
    pub fn set_config(&self, config: RuntimeConfig) -> Result<RuntimeConfig, ConfigError> {
        self.state.set_config(config)
    }

    /// The call counters (as `GET /admin/calls`).
    pub fn calls(&self) -> Calls {
        self.state.calls()
    }

    /// Clears the counters and the rate-limit window (as `POST /admin/reset`).
    pub fn reset(&self) {
        self.state.reset();
    }
}

/// A server with every route on `listener`, for `config`; run it by awaiting or spawning it.
/// An invalid `config` is an [`std::io::ErrorKind::InvalidInput`] error.
pub fn build(config: StandInConfig, listener: TcpListener) -> std::io::Result<Server> {
    StandIn::new(config)
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?
        .server(listener, Routes::All)
}

/// A stand-in running in the background on `127.0.0.1` (a free port), with every route.
///
/// Must be called inside a Tokio runtime (e.g. `#[tokio::test]`); the server stops when this
/// is dropped (or, waiting for it, with [`Running::stop`]).
pub fn spawn(config: StandInConfig) -> std::io::Result<Running> {
    let standin = StandIn::new(config)
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let addr = listener.local_addr()?;
    let server = standin.server(listener, Routes::All)?;
    let handle = server.handle();
    tokio::spawn(async move {
        if let Err(error) = server.await {
            tracing::error!(%error, "the Cohere stand-in failed");
        }
    });
    Ok(Running {
        standin,
        addr,
        handle,
    })
}

/// A stand-in started by [`spawn`].
#[derive(Debug)]
pub struct Running {
    /// Its state, to read counters or change faults without HTTP.
    pub standin: StandIn,
    /// Where it listens.
    pub addr: SocketAddr,
    handle: ServerHandle,
}

impl Running {
    /// `http://127.0.0.1:<port>`: the base URL for `cohere::CohereClient::new`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits until it has (in-flight calls are dropped).
    pub async fn stop(self) {
        let stopping = self.handle.stop(false);
        // Bounded so a stuck worker cannot hang a test.
        let _ = tokio::time::timeout(Duration::from_secs(5), stopping).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Sends the stop command at once; nobody waits for it here.
        drop(self.handle.stop(false));
    }
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn not_found() -> HttpResponse {
    ApiError::new(StatusCode::NOT_FOUND, "not found").to_response()
}

async fn method_not_allowed() -> HttpResponse {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed").to_response()
}
