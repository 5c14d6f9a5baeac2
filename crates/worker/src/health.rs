//! The worker's own small HTTP server: `/healthz` (alive), `/readyz` (Postgres and RabbitMQ
//! reachable, every circuit breaker closed or probing; the breakers' states are in the body
//! either way) and `/metrics` (Prometheus text).

use std::sync::Arc;

use actix_web::HttpResponse;
use http_support::probes::ProbeServer;
use prometheus::Registry;
use serde::Serialize;

use crate::context::Context;

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

async fn readyz(ctx: Arc<Context>) -> HttpResponse {
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

/// Starts the worker's `/healthz`, `/readyz` and `/metrics` on `host:port`.
pub fn start(
    ctx: Arc<Context>,
    registry: Registry,
    host: &str,
    port: u16,
) -> std::io::Result<ProbeServer> {
    ProbeServer::start(
        host,
        port,
        move || readyz(ctx.clone()),
        move || telemetry::metrics::respond(&registry),
    )
}
