//! The scheduler's `/healthz`, `/readyz` (Postgres and RabbitMQ reachable) and `/metrics`.

use std::{pin::Pin, sync::Arc};

use broker::Publisher;
use http_support::{
    health::{Dependencies, readiness},
    probes::ProbeServer,
    shutdown::Shutdown,
};
use prometheus::Registry;
use sea_orm::DatabaseConnection;

struct Connections {
    db: DatabaseConnection,
    publisher: Arc<Publisher>,
    shutdown: Shutdown,
}

impl Dependencies for Connections {
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

/// Starts the scheduler's probe server on `host:port` (port 0: a free one).
pub fn start(
    db: DatabaseConnection,
    publisher: Arc<Publisher>,
    registry: Registry,
    host: &str,
    port: u16,
) -> std::io::Result<ProbeServer> {
    let connections = Arc::new(Connections {
        db,
        publisher,
        shutdown: Shutdown::new(),
    });
    ProbeServer::start(
        host,
        port,
        move || {
            let connections = connections.clone();
            async move { readiness(connections.as_ref()).await.response() }
        },
        move || telemetry::metrics::respond(&registry),
    )
}
