//! `/healthz` (the process is alive) and `/readyz` (Postgres and RabbitMQ reachable).

use actix_web::{HttpResponse, get, web};
use http_support::{Readiness, health::healthz};

use crate::state::AppState;

// Not ready either once shutdown has begun, so load balancers stop sending requests.
/// Readiness: the database and the broker are reachable.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A dependency is unreachable", body = Readiness),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    readiness(&state).await.response()
}

/// The api's readiness checks: PostgreSQL and RabbitMQ, at once.
pub async fn readiness(state: &AppState) -> Readiness {
    let (database, broker) = tokio::join!(store::ping(&state.db), state.publisher.ready());
    let readiness = Readiness::of(database, broker);
    if state.shutdown.is_begun() {
        readiness.shutting_down()
    } else {
        readiness
    }
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(healthz).service(readyz);
}
