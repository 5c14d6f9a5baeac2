//! The subcommands' bodies: each connects what it needs, acts through the library (as the
//! admin API does) and prints its answer on standard output.

use std::io::{BufRead, IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};
use settings::Settings;
use uuid::Uuid;

use super::output;
use crate::{
    DeadLetterFilter, PurgeRequest, RedriveRequest, Redriver,
    http::{DeadLetterDetail, DeadLetterSummary},
    redrive::{self, Progress},
};

/// `redriver serve`: see [`crate::Application::run_until_stopped`].
pub async fn serve(settings: &Settings) -> anyhow::Result<()> {
    let app = crate::Application::build(settings).await?;
    tracing::info!(
        port = app.port(),
        auto_redrive = settings.redriver.auto_redrive,
        "redriver listening"
    );
    app.run_until_stopped().await
}

fn requested_by() -> String {
    output::requested_by(std::env::var("USER").ok())
}

pub async fn list(
    settings: &Settings,
    filter: &DeadLetterFilter,
    limit: u64,
    offset: u64,
    json: bool,
) -> anyhow::Result<()> {
    filter.check().map_err(anyhow::Error::msg)?;
    let ctx = Redriver::connect(settings).await?;
    let page =
        store::dead_letters::list(&ctx.db, filter, store::PageRequest { limit, offset }).await?;
    let total = page.total;
    let letters = page
        .items
        .into_iter()
        .map(|row| DeadLetterSummary::try_from(row).map_err(|e| anyhow::anyhow!("{e:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&letters)?);
    } else {
        print!("{}", output::table(&letters));
        println!("{} of {total} shown (offset {offset})", letters.len());
    }
    Ok(())
}

pub async fn show(settings: &Settings, id: Uuid) -> anyhow::Result<()> {
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

pub async fn redrive(
    settings: &Settings,
    request: &RedriveRequest,
    yes: bool,
    json: bool,
) -> anyhow::Result<()> {
    let ctx = Redriver::connect(settings).await?;
    if !request.dry_run && !yes {
        let preview = redrive::preview(&ctx, request).await?;
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
    let mut progress = |p: Progress| {
        if let Some(bar) = &bar {
            bar.set_length(p.total);
            bar.set_position(p.done);
        }
    };
    let report = redrive::redrive(&ctx, request, &requested_by(), &mut progress).await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", output::describe_redrive(&report));
    }
    if let Some(reason) = report.stopped {
        anyhow::bail!("the re-drive stopped early: {reason}");
    }
    Ok(())
}

pub async fn purge(
    settings: &Settings,
    request: &PurgeRequest,
    yes: bool,
    json: bool,
) -> anyhow::Result<()> {
    let ctx = Redriver::connect(settings).await?;
    if !request.dry_run && !yes {
        let filter = request.filter.open_by_default();
        filter.check().map_err(anyhow::Error::msg)?;
        let matched = store::dead_letters::count(&ctx.db, &filter).await?;
        if matched > 0 && !confirm(&format!("Purge {matched} dead letter(s)?"))? {
            eprintln!("nothing done");
            return Ok(());
        }
    }
    let report = redrive::purge(&ctx, request, &requested_by()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", output::describe_purge(&report));
    }
    Ok(())
}
