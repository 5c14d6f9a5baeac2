use settings::Settings;
use tokio::sync::watch;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // sqlx brings ring, reqwest and lapin aws-lc-rs: pick one provider before any TLS.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let settings = Settings::load()?;
    let telemetry = telemetry::init_from_settings(
        "worker",
        &settings.telemetry,
        &settings.telemetry.log_filter,
    )?;
    if settings.cohere.api_key.is_none() {
        anyhow::bail!("APP__COHERE__API_KEY is not set");
    }
    let worker = worker::Worker::build(&settings).await?;
    let _health = worker.serve_health()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested");
        let _ = stop_tx.send(true);
    });
    let outcome = worker.run(stop_rx).await;
    // Exports the last spans.
    telemetry.shutdown();
    outcome
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
