use std::io::{BufRead, IsTerminal, Write};

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use domain::job::ErrorClass;
use indicatif::{ProgressBar, ProgressStyle};
use redriver::{
    DeadLetterFilter, LetterStatus, PurgeRequest, RedriveRequest, Redriver, cli,
    http::{DeadLetterDetail, DeadLetterSummary},
};
use settings::Settings;
use uuid::Uuid;

/// The dead-letter re-driver: drains the dead-letter queue into Postgres, and re-drives or
/// purges dead letters (by an operator's command or, in `serve`, by policy).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Drain the dead-letter queue, run the automatic re-drive policy and serve the admin API.
    Serve,
    /// List dead letters, newest first.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// Rows to show.
        #[arg(long, default_value_t = 50)]
        limit: u64,
        /// Rows to skip.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one dead letter with its payload and headers (JSON).
    Show { id: Uuid },
    /// Re-drive dead letters: re-open their failed items and publish their stage messages
    /// again (open letters unless --status says otherwise; oldest first).
    Redrive {
        #[command(flatten)]
        filter: FilterArgs,
        /// Count what would be re-driven; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Re-drive at most this many.
        #[arg(long)]
        limit: Option<u64>,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Purge dead letters: mark them purged (rows, payloads and headers are kept).
    Purge {
        #[command(flatten)]
        filter: FilterArgs,
        /// Count what would be purged; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the admin API's OpenAPI document.
    Openapi,
}

#[derive(Args)]
struct FilterArgs {
    /// One dead letter.
    #[arg(long)]
    id: Option<Uuid>,
    #[arg(long)]
    job_id: Option<Uuid>,
    #[arg(long)]
    tenant_id: Option<Uuid>,
    #[arg(long)]
    item_id: Option<Uuid>,
    /// Zero-based stage index.
    #[arg(long)]
    stage: Option<u32>,
    /// rate_limited, transient, systemic, permanent or poison.
    #[arg(long)]
    class: Option<ErrorClass>,
    /// open, redriven or purged.
    #[arg(long)]
    status: Option<LetterStatus>,
    /// Dead-lettered at or after (RFC 3339).
    #[arg(long)]
    since: Option<DateTime<Utc>>,
    /// Dead-lettered before (RFC 3339).
    #[arg(long)]
    until: Option<DateTime<Utc>>,
}

impl FilterArgs {
    fn filter(&self) -> DeadLetterFilter {
        DeadLetterFilter {
            id: self.id,
            job_id: self.job_id,
            tenant_id: self.tenant_id,
            item_id: self.item_id,
            stage_index: self.stage,
            error_class: self.class,
            status: self.status,
            since: self.since,
            until: self.until,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // sqlx brings ring, lapin aws-lc-rs: pick one provider before any TLS.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    if let Command::Openapi = cli.command {
        print!("{}", redriver::openapi::spec_json());
        return Ok(());
    }
    let settings = Settings::load()?;
    // The one-shot commands print their answer; only warnings go to the log.
    let filter = match cli.command {
        Command::Serve => settings.telemetry.log_filter.as_str(),
        _ => "warn,sqlx=warn,lapin=error",
    };
    let telemetry = telemetry::init_from_settings("redriver", &settings.telemetry, filter)?;

    let outcome = match cli.command {
        Command::Serve => serve(&settings).await,
        Command::List {
            filter,
            limit,
            offset,
            json,
        } => list(&settings, &filter.filter(), limit, offset, json).await,
        Command::Show { id } => show(&settings, id).await,
        Command::Redrive {
            filter,
            dry_run,
            limit,
            yes,
            json,
        } => {
            let request = RedriveRequest {
                filter: filter.filter(),
                dry_run,
                limit,
            };
            redrive(&settings, &request, yes, json).await
        }
        Command::Purge {
            filter,
            dry_run,
            yes,
            json,
        } => {
            let request = PurgeRequest {
                filter: filter.filter(),
                dry_run,
            };
            purge(&settings, &request, yes, json).await
        }
        Command::Openapi => Ok(()),
    };
    // Exports the last spans.
    telemetry.shutdown();
    outcome
}

async fn serve(settings: &Settings) -> anyhow::Result<()> {
    let app = redriver::Application::build(settings).await?;
    tracing::info!(
        port = app.port(),
        auto_redrive = settings.redriver.auto_redrive,
        "redriver listening"
    );
    app.run_until_stopped().await
}

fn requested_by() -> String {
    cli::requested_by(std::env::var("USER").ok())
}

async fn list(
    settings: &Settings,
    filter: &DeadLetterFilter,
    limit: u64,
    offset: u64,
    json: bool,
) -> anyhow::Result<()> {
    filter.check().map_err(anyhow::Error::msg)?;
    let ctx = Redriver::connect(settings).await?;
    let page = store::dead_letters::list(
        &ctx.db,
        &filter.to_store(),
        store::PageRequest { limit, offset },
    )
    .await?;
    let total = page.total;
    let letters = page
        .items
        .into_iter()
        .map(|row| DeadLetterSummary::try_from(row).map_err(|e| anyhow::anyhow!("{e:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&letters)?);
    } else {
        print!("{}", cli::table(&letters));
        println!("{} of {total} shown (offset {offset})", letters.len());
    }
    Ok(())
}

async fn show(settings: &Settings, id: Uuid) -> anyhow::Result<()> {
    let ctx = Redriver::connect(settings).await?;
    let row = match store::dead_letters::get(&ctx.db, id).await {
        Err(store::StoreError::NotFound) => anyhow::bail!("no dead letter {id}"),
        other => other?,
    };
    let detail = DeadLetterDetail::try_from(row).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    println!("{}", serde_json::to_string_pretty(&detail)?);
    Ok(())
}

/// Asks on the terminal; refuses without one (scripts pass --yes).
fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("{question} Not on a terminal: pass --yes to proceed");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

async fn redrive(
    settings: &Settings,
    request: &RedriveRequest,
    yes: bool,
    json: bool,
) -> anyhow::Result<()> {
    let ctx = Redriver::connect(settings).await?;
    if !request.dry_run && !yes {
        let preview = redriver::redrive::preview(&ctx, request).await?;
        if preview.would_redrive.unwrap_or(0) > 0 {
            let question = format!(
                "Re-drive {} dead letter(s) ({} matched, {} to skip)?",
                preview.would_redrive.unwrap_or(0),
                preview.matched,
                preview.skipped.total()
            );
            if !confirm(&question)? {
                eprintln!("nothing done");
                return Ok(());
            }
        }
    }
    let bar = if !request.dry_run && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} re-driving [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)",
            )?
            .progress_chars("=> "),
        );
        Some(bar)
    } else {
        None
    };
    let mut progress = |p: redriver::redrive::Progress| {
        if let Some(bar) = &bar {
            bar.set_length(p.total);
            bar.set_position(p.done);
        }
    };
    let report = redriver::redrive(&ctx, request, &requested_by(), &mut progress).await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", cli::describe_redrive(&report));
    }
    if let Some(reason) = report.stopped {
        anyhow::bail!("the re-drive stopped early: {reason}");
    }
    Ok(())
}

async fn purge(
    settings: &Settings,
    request: &PurgeRequest,
    yes: bool,
    json: bool,
) -> anyhow::Result<()> {
    let ctx = Redriver::connect(settings).await?;
    if !request.dry_run && !yes {
        let filter = request.filter.open_by_default();
        filter.check().map_err(anyhow::Error::msg)?;
        let matched = store::dead_letters::count(&ctx.db, &filter.to_store()).await?;
        if matched > 0 && !confirm(&format!("Purge {matched} dead letter(s)?"))? {
            eprintln!("nothing done");
            return Ok(());
        }
    }
    let report = redriver::purge(&ctx, request, &requested_by()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", cli::describe_purge(&report));
    }
    Ok(())
}
