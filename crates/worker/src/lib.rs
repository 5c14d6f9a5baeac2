//! The worker: consumes stage messages and, for each, fetches the image, calls Cohere with the
//! stage's prompt, stores the result, applies the stage's filter and moves the item on.

pub mod answer;
pub mod budget;
pub mod call;
pub mod cancel;
pub mod consumer;
pub mod context;
pub mod fetch;
pub mod guard;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod plan;
pub mod request;

use std::{sync::Arc, time::Duration};

use broker::{Publisher, Topology};
use cohere::CohereClient;
use settings::Settings;
use store::objects::Objects;
use tokio::sync::watch;

use crate::{
    cancel::Cancellations, context::Context, fetch::Fetcher, guard::Guard, jobs::JobCache,
};

/// A worker ready to consume.
pub struct Worker {
    ctx: Arc<Context>,
    settings: Settings,
    topology: Topology,
    registry: prometheus::Registry,
}

impl Worker {
    /// Connects what can be connected lazily (database pool, publisher) and builds the clients.
    /// Refuses without a Cohere key.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let api_key = settings.cohere.required_api_key()?.clone();
        let db = store::connect(&settings.database).await?;
        let topology = Topology::from_settings(settings);
        let publisher = Publisher::from_settings(settings);
        let cohere = CohereClient::new(
            &settings.cohere.base_url,
            api_key,
            Duration::from_secs(settings.cohere.timeout_seconds),
        )?;
        let objects = Objects::from_settings(&settings.storage)?;
        let fetcher = Fetcher::new(
            objects,
            Duration::from_secs(settings.worker.fetch_timeout_seconds),
            settings.worker.max_image_bytes,
            settings.worker.allow_private_urls,
        )?;
        let registry = telemetry::metrics::registry("worker", env!("CARGO_PKG_VERSION"))?;
        let guard = Guard::new(settings, db.clone(), &registry, worker_id())?;
        let ctx = Arc::new(Context {
            db,
            publisher,
            cohere,
            fetcher,
            jobs: JobCache::default(),
            guard,
            cancellations: Arc::new(Cancellations::default()),
            metrics: metrics::Metrics::new(&registry)?,
            max_attempts: settings.retry.max_attempts,
            prices: settings.cohere.prices.clone(),
        });
        Ok(Self {
            ctx,
            settings: settings.clone(),
            topology,
            registry,
        })
    }

    /// Starts `/healthz`, `/readyz` and `/metrics` on `worker.health_host:health_port`.
    pub fn serve_health(&self) -> std::io::Result<http_support::probes::ProbeServer> {
        health::start(
            self.ctx.clone(),
            self.registry.clone(),
            &self.settings.worker.health_host,
            self.settings.worker.health_port,
        )
    }

    /// Consumes until `stop` turns true. Reconnects to the broker when the connection drops.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let limits = consumer::Limits {
            concurrency: self.settings.worker.concurrency,
            prefetch: self.settings.worker.effective_prefetch(),
            grace: Duration::from_secs(self.settings.worker.shutdown_grace_seconds),
        };
        loop {
            let connected = async {
                let connection = broker::connect(
                    secrecy::ExposeSecret::expose_secret(&self.settings.amqp.url),
                    "worker",
                    Duration::from_secs(self.settings.amqp.timeout_seconds),
                )
                .await?;
                let channel = connection.create_channel().await?;
                self.topology.declare(&channel).await?;
                let events = connection.create_channel().await?;
                Ok::<_, broker::BrokerError>((connection, channel, events))
            };
            let (connection, channel, events) = match connected.await {
                Ok(connected) => connected,
                Err(error) => {
                    // Also when the broker drops us again right after a reconnect.
                    tracing::warn!(%error, "broker unreachable; retrying");
                    tokio::select! {
                        _ = stop.changed() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    }
                }
            };
            let listener = {
                let topology = self.topology.clone();
                let cancellations = self.ctx.cancellations.clone();
                tokio::spawn(async move {
                    if let Err(error) = cancel::listen(events, &topology, &cancellations).await {
                        tracing::warn!(%error, "stopped listening for cancellations");
                    }
                })
            };
            let outcome = consumer::run(
                self.ctx.clone(),
                channel,
                &self.topology.stage_queue(),
                limits,
                stop.clone(),
            )
            .await;
            listener.abort();
            if *stop.borrow() {
                broker::close(&connection, "shutting down").await;
                return Ok(());
            }
            broker::close(&connection, "reconnecting").await;
            if let Err(error) = outcome {
                tracing::warn!(%error, "consumer stopped; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// This process's name in `circuit_breakers`: the pod's (or host's) name and the pid.
fn worker_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
    format!("{host}-{}", std::process::id())
}
