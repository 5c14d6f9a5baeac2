//! The worker's own small HTTP server: `/healthz` (alive), `/readyz` (Postgres and RabbitMQ
//! reachable, every circuit breaker closed or probing; the breakers' states are in the body
//! either way) and `/metrics` (Prometheus text).

use std::{net::SocketAddr, sync::Arc};

use actix_web::{App, HttpResponse, HttpServer, dev::ServerHandle, web};
use prometheus::Registry;
use serde::Serialize;

use crate::context::Context;

struct Shared {
    ctx: Arc<Context>,
    registry: Registry,
}

#[derive(Serialize)]
struct Readiness {
    /// `ok`, or `unavailable` when a dependency is unreachable or a breaker is open.
    status: &'static str,
    checks: Checks,
    circuit_breakers: Vec<resilience::BreakerState>,
}

#[derive(Serialize)]
struct Checks {
    database: &'static str,
    broker: &'static str,
    /// `closed` when no breaker is open, else `open`.
    cohere: &'static str,
}

fn word(ok: bool) -> &'static str {
    if ok { "ok" } else { "unavailable" }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(shared: web::Data<Shared>) -> HttpResponse {
    let ctx = &shared.ctx;
    let (database, broker) = tokio::join!(store::ping(&ctx.db), ctx.publisher.ready());
    let breakers = ctx.guard.breaker_states();
    let cohere = !breakers
        .iter()
        .any(|b| b.state == resilience::CircuitState::Open);
    let ready = database && broker && cohere;
    let body = Readiness {
        status: word(ready),
        checks: Checks {
            database: word(database),
            broker: word(broker),
            cohere: if cohere { "closed" } else { "open" },
        },
        circuit_breakers: breakers,
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics(shared: web::Data<Shared>) -> HttpResponse {
    telemetry::metrics::respond(&shared.registry)
}

/// A running health server.
pub struct HealthServer {
    pub address: SocketAddr,
    handle: ServerHandle,
}

impl HealthServer {
    /// Binds `host:port` (port 0: a free one) and serves in the background.
    pub fn start(
        ctx: Arc<Context>,
        registry: Registry,
        host: &str,
        port: u16,
    ) -> std::io::Result<Self> {
        let shared = web::Data::new(Shared { ctx, registry });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
                .route("/metrics", web::get().to(metrics))
        })
        .workers(1)
        .disable_signals()
        .bind((host, port))?;
        let address = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        tracing::info!(%address, "health and metrics endpoints listening");
        Ok(Self { address, handle })
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}
