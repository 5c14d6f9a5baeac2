//! RabbitMQ: the topology every process declares at start-up, publishing with publisher
//! confirms, and W3C trace context in message headers.

pub mod dead_letter;
pub mod publisher;
pub mod topology;
pub mod trace;

pub use dead_letter::DeadLetter;
pub use publisher::{BrokerError, Delayed, Publisher};
pub use topology::Topology;

/// Opens a connection to the broker, giving up after `timeout`.
pub async fn connect(
    url: &str,
    connection_name: &str,
    timeout: std::time::Duration,
) -> Result<lapin::Connection, BrokerError> {
    let properties = lapin::ConnectionProperties::default()
        .with_connection_name(connection_name.to_string().into());
    tokio::time::timeout(timeout, lapin::Connection::connect(url, properties))
        .await
        .map_err(|_| BrokerError::Timeout("connecting to the broker"))?
        .map_err(BrokerError::Amqp)
}

/// How long a close waits for the broker's answer.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Closes `connection` with `reason`, waiting a few seconds at most. lapin can leave the close
/// unanswered for ever when one of the connection's channels is being closed at the same moment
/// (a dropped channel's close fails and puts the connection in error); the socket goes when the
/// connection is dropped either way, and the broker requeues what was unacknowledged.
pub async fn close(connection: &lapin::Connection, reason: &str) {
    match tokio::time::timeout(CLOSE_TIMEOUT, connection.close(200, reason.into())).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, "closing the broker connection"),
        Err(_) => tracing::warn!("the broker did not answer the close; dropping the connection"),
    }
}
