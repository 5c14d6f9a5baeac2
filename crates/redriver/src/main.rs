use clap::Parser;
use redriver::cli::{Cli, Command};
use settings::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    http_support::startup::install_crypto_provider();
    let Cli { command } = Cli::parse();
    if let Command::Openapi = command {
        print!("{}", redriver::openapi::spec_json());
        return Ok(());
    }
    let settings = Settings::load()?;
    let telemetry = telemetry::init_from_settings(
        "redriver",
        &settings.telemetry,
        command.log_filter(&settings),
    )?;
    let outcome = redriver::cli::run(command, &settings).await;
    // Exports the last spans.
    telemetry.shutdown();
    outcome
}
