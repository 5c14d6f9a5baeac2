//! What the subcommands print: tables and reports in words.

use crate::{
    http::DeadLetterSummary,
    redrive::{PurgeReport, RedriveReport},
};

/// `requested_by` of CLI requests: the login name, else `cli`.
pub fn requested_by(user: Option<String>) -> String {
    user.map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "cli".to_string())
}

/// Longest error message shown in a table row.
const MESSAGE_WIDTH: usize = 60;

/// Dead letters as an aligned text table, one per line.
pub fn table(letters: &[DeadLetterSummary]) -> String {
    let header = [
        "ID",
        "DEAD-LETTERED",
        "CLASS",
        "STATUS",
        "JOB",
        "STAGE",
        "ATTEMPTS",
        "REDRIVES",
        "MESSAGE",
    ];
    let rows: Vec<Vec<String>> = letters
        .iter()
        .map(|l| {
            vec![
                l.id.to_string(),
                l.dead_lettered_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                l.error_class.as_str().to_string(),
                l.status.as_str().to_string(),
                l.job_id.map_or_else(|| "-".into(), |id| id.to_string()),
                l.stage_index.map_or_else(|| "-".into(), |s| s.to_string()),
                l.attempts.to_string(),
                l.redrive_count.to_string(),
                shorten(&l.error_message, MESSAGE_WIDTH),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            let pad = widths[i].saturating_sub(cell.chars().count());
            text.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// One line, at most `width` characters (an ellipsis marks a cut).
fn shorten(text: &str, width: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= width {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A re-drive's report in words.
pub fn describe_redrive(report: &RedriveReport) -> String {
    let mut lines = Vec::new();
    if report.dry_run {
        lines.push(format!(
            "dry run: {} matched, {} would be re-driven",
            report.matched,
            report.would_redrive.unwrap_or(0)
        ));
    } else {
        lines.push(format!(
            "{} matched, {} re-driven",
            report.matched, report.redriven
        ));
    }
    if report.skipped.no_item > 0 {
        lines.push(format!(
            "skipped {}: no item to re-open (poison messages)",
            report.skipped.no_item
        ));
    }
    if report.skipped.item_not_failed > 0 {
        lines.push(format!(
            "skipped {}: the item is no longer failed (or its job was cancelled)",
            report.skipped.item_not_failed
        ));
    }
    if let Some(reason) = &report.stopped {
        lines.push(format!(
            "stopped early: {reason}; {} not attempted",
            report.not_attempted
        ));
    }
    if let Some(id) = report.audit_id {
        lines.push(format!("audit record {id}"));
    }
    lines.join("\n") + "\n"
}

/// A purge's report in words.
pub fn describe_purge(report: &PurgeReport) -> String {
    let mut text = if report.dry_run {
        format!(
            "dry run: {} matched, {} would be purged\n",
            report.matched, report.matched
        )
    } else {
        format!("{} matched, {} purged\n", report.matched, report.purged)
    };
    if let Some(id) = report.audit_id {
        text.push_str(&format!("audit record {id}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use domain::job::ErrorClass;
    use uuid::Uuid;

    use super::*;
    use crate::{LetterStatus, redrive::Skipped};

    fn letter(message: &str) -> DeadLetterSummary {
        DeadLetterSummary {
            id: Uuid::nil(),
            tenant_id: None,
            job_id: None,
            item_id: None,
            stage_index: Some(1),
            error_class: ErrorClass::Transient,
            error_message: message.into(),
            attempts: 5,
            first_failed_at: None,
            dead_lettered_at: "2026-11-29T10:00:00Z".parse().unwrap(),
            status: LetterStatus::Open,
            redrive_count: 0,
            last_redriven_at: None,
        }
    }

    #[test]
    fn the_table_aligns_columns_and_shortens_long_messages() {
        let text = table(&[letter("Cohere answered 503"), letter(&"x".repeat(200))]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID"));
        let column = lines[0].find("CLASS").unwrap();
        assert_eq!(&lines[1][column..column + 9], "transient");
        assert!(lines[2].ends_with('…'));
        assert!(lines[2].chars().count() < 200);
    }

    #[test]
    fn the_cli_names_the_user_or_itself() {
        assert_eq!(requested_by(Some("alice".into())), "alice");
        assert_eq!(requested_by(Some(" ".into())), "cli");
        assert_eq!(requested_by(None), "cli");
    }

    #[test]
    fn a_report_says_what_was_skipped_and_why() {
        let report = RedriveReport {
            dry_run: false,
            matched: 3,
            redriven: 1,
            would_redrive: None,
            skipped: Skipped {
                no_item: 1,
                item_not_failed: 1,
            },
            not_attempted: 0,
            stopped: None,
            audit_id: None,
        };
        let text = describe_redrive(&report);
        assert!(text.contains("3 matched, 1 re-driven"), "{text}");
        assert!(text.contains("no item"), "{text}");
        assert!(text.contains("no longer failed"), "{text}");
    }
}
