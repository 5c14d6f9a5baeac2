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
