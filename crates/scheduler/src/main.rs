use settings::Settings;
use tokio::sync::watch;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    http_support::startup::install_crypto_provider();
    let settings = Settings::load()?;
    let telemetry = telemetry::init_from_settings(
        "scheduler",
        &settings.telemetry,
        &settings.telemetry.log_filter,
    )?;
    let scheduler = scheduler::Scheduler::build(&settings).await?;
    let _health = scheduler.serve_health()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        http_support::shutdown::signal().await;
        tracing::info!("shutdown requested");
        let _ = stop_tx.send(true);
    });
    let outcome = scheduler.run(stop_rx).await;
    telemetry.shutdown();
    outcome
}
