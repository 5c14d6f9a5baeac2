use clap::{Parser, Subcommand};
use migration::MigratorTrait;
use settings::Settings;

/// The image-pipelines REST API.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve {
        /// Apply pending database migrations first.
        #[arg(long)]
        migrate: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Operator commands.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a tenant (if new) and print a new API key for it. The key is shown only once.
    CreateKey {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        label: Option<String>,
    },
    /// Set a tenant's weight in the fair share of the Cohere budget (default 1) and its optional
    /// calls-per-minute cap. The scheduler applies it from its next pass.
    SetShare {
        #[arg(long)]
        tenant: String,
        /// Relative weight among the tenants with work, 1 to 1000.
        #[arg(long, default_value_t = 1)]
        weight: u32,
        /// Most calls per minute for this tenant; leave out for no cap.
        #[arg(long)]
        calls_per_minute: Option<u32>,
    },
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    http_support::startup::install_crypto_provider();
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        print!("{}", api::openapi::spec_json());
        return Ok(());
    }
    let settings = Settings::load()?;
    let telemetry =
        telemetry::init_from_settings("api", &settings.telemetry, &settings.telemetry.log_filter)?;

    match cli.command.unwrap_or(Command::Serve { migrate: false }) {
        Command::Serve { migrate } => {
            if migrate {
                run_migrations(&settings).await?;
            }
            let app = api::Application::build(&settings).await?;
            tracing::info!(port = app.port(), "api listening");
            app.run_until_stopped().await?;
        }
        Command::Migrate => run_migrations(&settings).await?,
        Command::Openapi => {}
        Command::Admin {
            command: AdminCommand::CreateKey { tenant, label },
        } => {
            let key = api::admin::create_key(&settings, &tenant, label.as_deref()).await?;
            println!("{key}");
        }
        Command::Admin {
            command:
                AdminCommand::SetShare {
                    tenant,
                    weight,
                    calls_per_minute,
                },
        } => {
            api::admin::set_share(&settings, &tenant, weight, calls_per_minute).await?;
            println!(
                "tenant {tenant}: weight {weight}, {}",
                calls_per_minute.map_or("no calls-per-minute cap".to_string(), |cap| {
                    format!("at most {cap} calls per minute")
                })
            );
        }
    }
    // Exports the last spans.
    telemetry.shutdown();
    Ok(())
}

async fn run_migrations(settings: &Settings) -> anyhow::Result<()> {
    let db = store::connect(&settings.database).await?;
    migration::Migrator::up(&db, None).await?;
    tracing::info!("database migrations applied");
    Ok(())
}
