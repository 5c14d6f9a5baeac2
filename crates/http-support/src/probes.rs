//! The small HTTP server of a service without an API of its own (the worker, the scheduler):
//! `/healthz` (alive), `/readyz` (the service's own check) and `/metrics` (its Prometheus text),
//! on a port of its own, served in the background.

use std::{future::Future, net::SocketAddr};

use actix_web::{App, HttpResponse, HttpServer, dev::ServerHandle, web};

/// A running probe server.
pub struct ProbeServer {
    pub address: SocketAddr,
    handle: ServerHandle,
}

impl ProbeServer {
    /// Binds `host:port` (port 0: a free one) and serves `/healthz`, `/readyz` (answered by
    /// `readyz`) and `/metrics` (answered by `metrics`) in the background.
    pub fn start<R, RF, M>(host: &str, port: u16, readyz: R, metrics: M) -> std::io::Result<Self>
    where
        R: Fn() -> RF + Clone + Send + 'static,
        RF: Future<Output = HttpResponse> + 'static,
        M: Fn() -> HttpResponse + Clone + Send + 'static,
    {
        let server = HttpServer::new(move || {
            let readyz = readyz.clone();
            let metrics = metrics.clone();
            App::new()
                .route(
                    "/healthz",
                    web::get().to(|| async {
                        HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
                    }),
                )
                .route("/readyz", web::get().to(readyz))
                .route(
                    "/metrics",
                    web::get().to(move || std::future::ready(metrics())),
                )
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
