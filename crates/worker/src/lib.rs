//! The worker: consumes stage messages and, for each, fetches the image, calls Cohere with the
//! stage's prompt, stores the result, applies the stage's filter and moves the item on.

pub mod consumer;
pub mod fetch;
pub mod process;

use std::{sync::Arc, time::Duration};

use broker::{Publisher, Topology};
use cohere::CohereClient;
use secrecy::SecretString;
use settings::Settings;
use store::objects::Objects;
use tokio::sync::watch;

use crate::{fetch::Fetcher, process::Context};

/// A worker ready to consume.
pub struct Worker {
    ctx: Arc<Context>,
    settings: Settings,
    topology: Topology,
}

impl Worker {
    /// Connects what can be connected lazily (database pool, publisher) and builds the clients.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let db = store::connect(&settings.database).await?;
        let topology = Topology::from_settings(settings);
        let publisher = Publisher::new(
            settings.amqp.url.clone(),
            topology.clone(),
            Duration::from_secs(settings.amqp.timeout_seconds),
        );
        let api_key = settings
            .cohere
            .api_key
            .clone()
            .unwrap_or_else(|| SecretString::from(String::new()));
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
        let ctx = Arc::new(Context {
            db,
            publisher,
            cohere,
            fetcher,
            jobs: process::JobCache::default(),
        });
        Ok(Self {
            ctx,
            settings: settings.clone(),
            topology,
        })
    }

    /// The shared context, for tests that drive [`process::process`] directly.
    pub fn context(&self) -> Arc<Context> {
        self.ctx.clone()
    }

    /// Consumes until `stop` turns true. Reconnects to the broker when the connection drops.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let limits = consumer::Limits {
            concurrency: self.settings.worker.concurrency,
            prefetch: self.settings.worker.effective_prefetch(),
            grace: Duration::from_secs(self.settings.worker.shutdown_grace_seconds),
        };
        loop {
            let connection = match broker::connect(
                secrecy::ExposeSecret::expose_secret(&self.settings.amqp.url),
                "worker",
                Duration::from_secs(self.settings.amqp.timeout_seconds),
            )
            .await
            {
                Ok(connection) => connection,
                Err(error) => {
                    tracing::warn!(%error, "broker unreachable; retrying");
                    tokio::select! {
                        _ = stop.changed() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    }
                }
            };
            let channel = connection.create_channel().await?;
            self.topology.declare(&channel).await?;
            let outcome = consumer::run(
                self.ctx.clone(),
                channel,
                &self.topology.stage_queue(),
                limits,
                stop.clone(),
            )
            .await;
            if *stop.borrow() {
                let _ = connection.close(200, "shutting down".into()).await;
                return Ok(());
            }
            if let Err(error) = outcome {
                tracing::warn!(%error, "consumer stopped; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
