//! Job events from the broker, fanned out in-process to server-sent-event streams.
//!
//! Each api replica binds its own exclusive queue to the events topic exchange and
//! broadcasts what arrives; so any replica can serve the live view of any job.

use std::{sync::Arc, time::Duration};

use broker::Topology;
use domain::event::JobEvent;
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::broadcast;

/// Events buffered per subscriber before it counts as lagging (it then re-reads the job).
const BUFFER: usize = 4096;

/// Events are shared, not copied, between subscribers: every stream receives every event of
/// every tenant and most drop it at once.
pub type SharedEvent = Arc<JobEvent>;

#[derive(Clone)]
pub struct EventHub {
    sender: broadcast::Sender<SharedEvent>,
}

impl EventHub {
    /// Starts consuming job events in the background, reconnecting when the broker goes away.
    /// `on_event` sees each event before any stream does (the job view cache drops the job's
    /// entry there, so a client that got an event never reads the job as it was before it).
    pub fn start(
        url: SecretString,
        topology: Topology,
        timeout: Duration,
        on_event: impl Fn(&JobEvent) + Send + Sync + 'static,
    ) -> Self {
        let (sender, _) = broadcast::channel(BUFFER);
        let hub = Self { sender };
        let feeder = hub.sender.clone();
        let url = Arc::new(url);
        tokio::spawn(async move {
            loop {
                if let Err(error) = consume(&url, &topology, timeout, &feeder, &on_event).await {
                    tracing::warn!(%error, "job events unavailable; reconnecting");
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
        hub
    }

    pub fn subscribe(&self) -> broadcast::Receiver<SharedEvent> {
        self.sender.subscribe()
    }
}

async fn consume(
    url: &SecretString,
    topology: &Topology,
    timeout: Duration,
    feeder: &broadcast::Sender<SharedEvent>,
    on_event: &(impl Fn(&JobEvent) + Send + Sync),
) -> Result<(), broker::BrokerError> {
    let connection = broker::connect(url.expose_secret(), "api-events", timeout).await?;
    let channel = connection.create_channel().await?;
    let mut consumer = topology.subscribe_to_events(&channel, "job.#").await?;
    tracing::debug!("receiving job events");
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        if let Some(event) = JobEvent::decode(&delivery.data) {
            on_event(&event);
            // No subscriber is not an error.
            let _ = feeder.send(Arc::new(event));
        }
    }
    Ok(())
}
