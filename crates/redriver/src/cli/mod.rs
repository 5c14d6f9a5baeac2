//! The `redriver` command line: its subcommands ([`Cli`]) and what each does ([`run`]).
//!
//! - [`commands`]: the one-shot commands (list, show, re-drive, purge), which connect, act
//!   and print.
//! - [`output`]: what they print.

pub mod commands;
pub mod output;

use clap::{Parser, Subcommand};
use settings::Settings;
use uuid::Uuid;

use crate::{DeadLetterFilter, PurgeRequest, RedriveRequest};

/// The dead-letter re-driver: drains the dead-letter queue into Postgres, and re-drives or
/// purges dead letters (by an operator's command or, in `serve`, by policy).
#[derive(Parser)]
#[command(name = "redriver", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Drain the dead-letter queue, run the automatic re-drive policy and serve the admin API.
    Serve,
    /// List dead letters, newest first.
    List {
        #[command(flatten)]
        filter: DeadLetterFilter,
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
        filter: DeadLetterFilter,
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
        filter: DeadLetterFilter,
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

impl Command {
    /// The log filter: the configured one for `serve`; only warnings for the one-shot
    /// commands, which print their answer.
    pub fn log_filter<'a>(&self, settings: &'a Settings) -> &'a str {
        match self {
            Command::Serve => settings.telemetry.log_filter.as_str(),
            _ => "warn,sqlx=warn,lapin=error",
        }
    }
}

/// Runs `command`, but `openapi`: that needs no settings, and `main` answers it before
/// loading them.
pub async fn run(command: Command, settings: &Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => commands::serve(settings).await,
        Command::List {
            filter,
            limit,
            offset,
            json,
        } => commands::list(settings, &filter, limit, offset, json).await,
        Command::Show { id } => commands::show(settings, id).await,
        Command::Redrive {
            filter,
            dry_run,
            limit,
            yes,
            json,
        } => {
            let request = RedriveRequest {
                filter,
                dry_run,
                limit,
            };
            commands::redrive(settings, &request, yes, json).await
        }
        Command::Purge {
            filter,
            dry_run,
            yes,
            json,
        } => commands::purge(settings, &PurgeRequest { filter, dry_run }, yes, json).await,
        Command::Openapi => Ok(()),
    }
}
