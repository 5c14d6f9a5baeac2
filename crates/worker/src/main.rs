use settings::Settings;
use tokio::sync::watch;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    http_support::startup::install_crypto_provider();
    let settings = Settings::load()?;
    let telemetry = telemetry::init_from_settings(
        "worker",
        &settings.telemetry,
        &settings.telemetry.log_filter,
    )?;
    let worker = worker::Worker::build(&settings).await?;
    let _health = worker.serve_health()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        http_support::shutdown::signal().await;
        tracing::info!("shutdown requested");
        let _ = stop_tx.send(true);
    });
    let outcome = worker.run(stop_rx).await;
    // Exports the last spans.
    telemetry.shutdown();
    outcome
}
