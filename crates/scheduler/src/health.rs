//! The scheduler's small HTTP server: `/healthz`, `/readyz` (Postgres and RabbitMQ reachable)
//! and `/metrics`.

use std::{net::SocketAddr, pin::Pin, sync::Arc};

use actix_web::{App, HttpResponse, HttpServer, dev::ServerHandle, web};
use broker::Publisher;
use http_support::{
    health::{Dependencies, readiness},
    shutdown::Shutdown,
};
use prometheus::Registry;
use sea_orm::DatabaseConnection;

struct Shared {
    db: DatabaseConnection,
    publisher: Arc<Publisher>,
    shutdown: Shutdown,
    registry: Registry,
}

impl Dependencies for Shared {
    fn database(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(store::ping(&self.db))
    }

    fn broker(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(self.publisher.ready())
    }

    fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(shared: web::Data<Shared>) -> HttpResponse {
    readiness(shared.get_ref()).await.response()
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
        db: DatabaseConnection,
        publisher: Arc<Publisher>,
        registry: Registry,
        host: &str,
        port: u16,
    ) -> std::io::Result<Self> {
        let shared = web::Data::new(Shared {
            db,
            publisher,
            shutdown: Shutdown::new(),
            registry,
        });
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
