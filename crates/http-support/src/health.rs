//! `/healthz` (the process is alive) and `/readyz` (Postgres and RabbitMQ reachable, and not
//! shutting down). Each service registers its connections as a [`Dependencies`] app data
//! (`web::Data<dyn Dependencies>`) and mounts both with [`configure`].
//!
//! The types carry no doc comments of their own: those would become descriptions in the
//! services' committed OpenAPI documents.

use std::{future::Future, pin::Pin};

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::Shutdown;

/// A dependency that answers.
pub const OK: &str = "ok";

/// A dependency that does not.
pub const UNAVAILABLE: &str = "unavailable";

fn word(ok: bool) -> &'static str {
    if ok { OK } else { UNAVAILABLE }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Each dependency: `ok` or `unavailable`.
    pub checks: ReadinessChecks,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessChecks {
    pub database: &'static str,
    pub broker: &'static str,
}

impl Readiness {
    // Ready when the database and the broker both answer.
    pub fn of(database: bool, broker: bool) -> Self {
        Readiness {
            status: word(database && broker),
            checks: ReadinessChecks {
                database: word(database),
                broker: word(broker),
            },
        }
    }

    // Not ready whatever the dependencies say: the process is shutting down.
    pub fn shutting_down(mut self) -> Self {
        self.status = UNAVAILABLE;
        self
    }

    pub fn is_ready(&self) -> bool {
        self.status == OK
    }

    // 200 when ready, else 503; the body either way.
    pub fn response(&self) -> HttpResponse {
        if self.is_ready() {
            HttpResponse::Ok().json(self)
        } else {
            HttpResponse::ServiceUnavailable().json(self)
        }
    }
}

/// One check of a dependency: whether it answers.
pub type Check<'a> = Pin<Box<dyn Future<Output = bool> + Send + 'a>>;

/// What readiness depends on: a service's own connections and its shutdown flag.
pub trait Dependencies: Send + Sync {
    /// Whether the database answers.
    fn database(&self) -> Check<'_>;
    /// Whether the broker answers.
    fn broker(&self) -> Check<'_>;
    /// Begun once the process is stopping.
    fn shutdown(&self) -> &Shutdown;
}

/// The readiness of a service: both dependencies checked at once; not ready either once
/// shutdown has begun, so load balancers stop sending requests.
pub async fn readiness(dependencies: &dyn Dependencies) -> Readiness {
    let (database, broker) = tokio::join!(dependencies.database(), dependencies.broker());
    let readiness = Readiness::of(database, broker);
    if dependencies.shutdown().is_begun() {
        readiness.shutting_down()
    } else {
        readiness
    }
}

/// Liveness: the process answers.
#[utoipa::path(tag = "health", responses((status = 200, description = "Alive", body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health { status: OK })
}

/// Readiness: the database and the broker are reachable.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A dependency is unreachable", body = Readiness),
    )
)]
#[get("/readyz")]
pub async fn readyz(dependencies: web::Data<dyn Dependencies>) -> HttpResponse {
    readiness(dependencies.as_ref()).await.response()
}

/// `/healthz` and `/readyz`.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(healthz).service(readyz);
}

#[cfg(test)]
mod tests {
    use actix_web::{App, body::to_bytes, http::StatusCode, test as actix_test};
    use serde_json::{Value, json};

    use super::*;

    async fn answer(database: bool, broker: bool) -> (StatusCode, Value) {
        let response = Readiness::of(database, broker).response();
        let status = response.status();
        let bytes = to_bytes(response.into_body()).await.expect("body");
        (status, serde_json::from_slice(&bytes).expect("JSON body"))
    }

    #[actix_web::test]
    async fn ready_only_when_both_dependencies_answer() {
        assert_eq!(
            answer(true, true).await,
            (
                StatusCode::OK,
                json!({"status": "ok", "checks": {"database": "ok", "broker": "ok"}})
            )
        );
        assert_eq!(
            answer(false, true).await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "unavailable", "checks": {"database": "unavailable", "broker": "ok"}})
            )
        );
        assert_eq!(
            answer(true, false).await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "unavailable", "checks": {"database": "ok", "broker": "unavailable"}})
            )
        );
    }

    #[actix_web::test]
    async fn not_ready_while_shutting_down() {
        let response = Readiness::of(true, true).shutting_down().response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let bytes = to_bytes(response.into_body()).await.expect("body");
        let body: Value = serde_json::from_slice(&bytes).expect("JSON body");
        assert_eq!(
            body,
            json!({"status": "unavailable", "checks": {"database": "ok", "broker": "ok"}})
        );
    }

    /// Dependencies that answer as told.
    struct Fixed {
        database: bool,
        broker: bool,
        shutdown: Shutdown,
    }

    impl Dependencies for Fixed {
        fn database(&self) -> Check<'_> {
            Box::pin(std::future::ready(self.database))
        }
        fn broker(&self) -> Check<'_> {
            Box::pin(std::future::ready(self.broker))
        }
        fn shutdown(&self) -> &Shutdown {
            &self.shutdown
        }
    }

    async fn readyz_answer(dependencies: Fixed) -> (StatusCode, Value) {
        let dependencies: std::sync::Arc<dyn Dependencies> = std::sync::Arc::new(dependencies);
        let app = actix_test::init_service(
            App::new()
                .app_data(web::Data::from(dependencies))
                .service(readyz),
        )
        .await;
        let response = actix_test::call_service(
            &app,
            actix_test::TestRequest::get().uri("/readyz").to_request(),
        )
        .await;
        let status = response.status();
        (status, actix_test::read_body_json(response).await)
    }

    #[actix_web::test]
    async fn readyz_checks_the_registered_dependencies_and_the_shutdown() {
        let (status, body) = readyz_answer(Fixed {
            database: true,
            broker: true,
            shutdown: Shutdown::new(),
        })
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ok");
        let (status, body) = readyz_answer(Fixed {
            database: true,
            broker: false,
            shutdown: Shutdown::new(),
        })
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["checks"]["broker"], "unavailable");
        let stopping = Shutdown::new();
        stopping.begin();
        let (status, body) = readyz_answer(Fixed {
            database: true,
            broker: true,
            shutdown: stopping,
        })
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            json!({"status": "unavailable", "checks": {"database": "ok", "broker": "ok"}})
        );
    }

    #[actix_web::test]
    async fn healthz_answers_ok() {
        let app = actix_test::init_service(App::new().service(healthz)).await;
        let response = actix_test::call_service(
            &app,
            actix_test::TestRequest::get().uri("/healthz").to_request(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = actix_test::read_body_json(response).await;
        assert_eq!(body, json!({"status": "ok"}));
    }
}
