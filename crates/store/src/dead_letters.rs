//! Dead letters drained from the broker's dead-letter queue, and the audit of what operators
//! (and the re-driver's policy) did with them.
//!
//! Dead letters are an operator's concern, not a tenant's: these queries are not tenant-scoped
//! (a poison message may name no tenant at all). Only the re-driver's admin API and CLI use them.
//!
//! A letter's `status` goes `open → redriven | purged`. Purging is a soft delete: the row, its
//! payload and headers stay (for the audit trail, and so a mistaken purge can be undone by
//! re-driving the purged letters explicitly); only the status changes.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use domain::job::ErrorClass;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    Page, PageRequest, StoreError,
    entities::{dead_letters, redrive_audit},
};

pub use domain::job::DeadLetterStatus as LetterStatus;

/// One dead letter as drained from the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeadLetter {
    /// The `x-dead-letter-id` header: the same dead letter delivered twice is stored once.
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub job_id: Option<Uuid>,
    pub item_id: Option<Uuid>,
    pub stage_index: Option<u32>,
    pub error_class: ErrorClass,
    pub error_message: String,
    pub attempts: u32,
    pub first_failed_at: Option<DateTime<Utc>>,
    pub dead_lettered_at: DateTime<Utc>,
    /// The dead-lettered message's body, byte for byte.
    pub payload: Vec<u8>,
    /// Every AMQP header of the delivery, as JSON.
    pub headers: serde_json::Value,
}

/// Stores a drained dead letter; `false` when a letter with its id is already stored.
///
/// A tenant that no longer exists is stored as no tenant (its id stays in `headers`), so a
/// letter about a deleted tenant is kept rather than refused forever. NUL characters, which
/// PostgreSQL text cannot hold, become U+FFFD.
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    letter: &NewDeadLetter,
) -> Result<bool, StoreError> {
    let stage_index = letter
        .stage_index
        .map(|s| i32::try_from(s).unwrap_or(i32::MAX));
    let attempts = i32::try_from(letter.attempts).unwrap_or(i32::MAX);
    let result = db
        .execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            r#"INSERT INTO dead_letters
                   (id, tenant_id, job_id, item_id, stage_index, error_class, error_message,
                    attempts, first_failed_at, dead_lettered_at, payload, headers, status)
               VALUES ($1, (SELECT id FROM tenants WHERE id = $2), $3, $4, $5, $6, $7,
                       $8, $9, $10, $11, $12, 'open')
               ON CONFLICT (id) DO NOTHING"#,
            [
                letter.id.into(),
                letter.tenant_id.into(),
                letter.job_id.into(),
                letter.item_id.into(),
                stage_index.into(),
                letter.error_class.as_str().into(),
                without_nul(&letter.error_message).into(),
                attempts.into(),
                letter.first_failed_at.into(),
                letter.dead_lettered_at.into(),
                letter.payload.clone().into(),
                json_without_nul(&letter.headers).into(),
            ],
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}

fn without_nul(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// jsonb refuses `\u0000` in strings and keys.
fn json_without_nul(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(without_nul(s)),
        Value::Array(items) => Value::Array(items.iter().map(json_without_nul).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (without_nul(k), json_without_nul(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

// Which dead letters a list, re-drive or purge is about, as one type: the re-driver CLI's
// arguments, the admin API's list parameters and its bodies' `filter`, and these queries'
// input. The doc comments are the OpenAPI descriptions (and the CLI's help where no `help`
// says otherwise).
/// Filters on dead letters, combined with AND; every field optional.
#[derive(
    Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema, IntoParams, clap::Args,
)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
#[schema(example = json!({"job_id": "01936d6e-8f3a-7c1e-9b2a-3f4e5d6c7b8a", "error_class": "transient"}))]
pub struct DeadLetterFilter {
    /// One dead letter.
    // Not a list parameter: `GET /admin/dead-letters/{id}` shows one letter.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(ignore)]
    #[arg(long)]
    pub id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub job_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub tenant_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub item_id: Option<Uuid>,
    /// Zero-based stage index the message was for.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(minimum = 0, maximum = 1000)]
    #[schema(minimum = 0, maximum = 1000)]
    #[arg(long = "stage", value_name = "STAGE")]
    pub stage_index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(
        long = "class",
        value_name = "CLASS",
        help = "rate_limited, transient, systemic, permanent or poison"
    )]
    pub error_class: Option<ErrorClass>,
    /// On listing, absent means any status; on re-drive and purge, absent means `open`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(
        long,
        help = "open, redriven or purged (listing: any when absent; re-drive and purge: open)"
    )]
    pub status: Option<LetterStatus>,
    /// Dead-lettered at or after this instant (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// Dead-lettered before this instant (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub until: Option<DateTime<Utc>>,
}

impl DeadLetterFilter {
    /// Checks what the types cannot: `since` not after `until`.
    pub fn check(&self) -> Result<(), String> {
        if let (Some(since), Some(until)) = (self.since, self.until)
            && since > until
        {
            return Err("since must not be after until".into());
        }
        Ok(())
    }

    /// This filter with `status` defaulting to `open` (what re-drives and purges act on).
    pub fn open_by_default(&self) -> Self {
        Self {
            status: Some(self.status.unwrap_or(LetterStatus::Open)),
            ..self.clone()
        }
    }

    fn condition(&self) -> Condition {
        use dead_letters::Column;
        let mut condition = Condition::all();
        if let Some(id) = self.id {
            condition = condition.add(Column::Id.eq(id));
        }
        if let Some(id) = self.job_id {
            condition = condition.add(Column::JobId.eq(id));
        }
        if let Some(id) = self.tenant_id {
            condition = condition.add(Column::TenantId.eq(id));
        }
        if let Some(id) = self.item_id {
            condition = condition.add(Column::ItemId.eq(id));
        }
        if let Some(stage) = self.stage_index {
            condition = condition.add(Column::StageIndex.eq(i32::try_from(stage).unwrap_or(-1)));
        }
        if let Some(class) = self.error_class {
            condition = condition.add(Column::ErrorClass.eq(class.as_str()));
        }
        if let Some(status) = self.status {
            condition = condition.add(Column::Status.eq(status.as_str()));
        }
        if let Some(since) = self.since {
            condition = condition.add(Column::DeadLetteredAt.gte(since));
        }
        if let Some(until) = self.until {
            condition = condition.add(Column::DeadLetteredAt.lt(until));
        }
        condition
    }
}

/// Dead letters matching `filter`, newest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    filter: &DeadLetterFilter,
    page: PageRequest,
) -> Result<Page<dead_letters::Model>, StoreError> {
    let query = dead_letters::Entity::find().filter(filter.condition());
    let total = query.clone().count(db).await?;
    let items = query
        .order_by_desc(dead_letters::Column::DeadLetteredAt)
        .order_by_desc(dead_letters::Column::Id)
        .limit(page.limit)
        .offset(page.offset)
        .all(db)
        .await?;
    Ok(Page { items, total })
}

/// Number of dead letters matching `filter`.
pub async fn count<C: ConnectionTrait>(
    db: &C,
    filter: &DeadLetterFilter,
) -> Result<u64, StoreError> {
    Ok(dead_letters::Entity::find()
        .filter(filter.condition())
        .count(db)
        .await?)
}

/// One dead letter.
pub async fn get<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<dead_letters::Model, StoreError> {
    dead_letters::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

/// What a re-drive needs of a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub id: Uuid,
    pub item_id: Option<Uuid>,
}

/// The dead letters matching `filter`, oldest first, at most `limit` of them.
pub async fn targets<C: ConnectionTrait>(
    db: &C,
    filter: &DeadLetterFilter,
    limit: Option<u64>,
) -> Result<Vec<Target>, StoreError> {
    let mut query = dead_letters::Entity::find()
        .select_only()
        .column(dead_letters::Column::Id)
        .column(dead_letters::Column::ItemId)
        .filter(filter.condition())
        .order_by_asc(dead_letters::Column::DeadLetteredAt)
        .order_by_asc(dead_letters::Column::Id);
    if let Some(limit) = limit {
        query = query.limit(limit);
    }
    let rows: Vec<(Uuid, Option<Uuid>)> = query.into_tuple().all(db).await?;
    Ok(rows
        .into_iter()
        .map(|(id, item_id)| Target { id, item_id })
        .collect())
}

/// Those of `items` a re-drive would re-open now: failed, in a job that is not cancelled.
pub async fn reopenable_items<C: ConnectionTrait>(
    db: &C,
    items: &[Uuid],
) -> Result<HashSet<Uuid>, StoreError> {
    if items.is_empty() {
        return Ok(HashSet::new());
    }
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            r#"SELECT i.id FROM job_items i JOIN jobs j ON j.id = i.job_id
               WHERE i.id = ANY($1) AND i.status = 'failed' AND j.status <> 'cancelled'"#,
            [items.to_vec().into()],
        ))
        .await?;
    rows.into_iter()
        .map(|row| row.try_get::<Uuid>("", "id"))
        .collect::<Result<_, sea_orm::DbErr>>()
        .map_err(StoreError::from)
}

/// Marks dead letters re-driven: status `redriven`, one more re-drive, now. Returns how many
/// rows changed.
pub async fn mark_redriven<C: ConnectionTrait>(db: &C, ids: &[Uuid]) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let result = db
        .execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            r#"UPDATE dead_letters
               SET status = 'redriven', redrive_count = redrive_count + 1, last_redriven_at = now()
               WHERE id = ANY($1)"#,
            [ids.to_vec().into()],
        ))
        .await?;
    Ok(result.rows_affected())
}

/// Marks the dead letters matching `filter` purged (those not purged already); returns how
/// many changed. Payloads and headers are kept (see the module documentation).
pub async fn purge<C: ConnectionTrait>(
    db: &C,
    filter: &DeadLetterFilter,
) -> Result<u64, StoreError> {
    let result = dead_letters::Entity::update_many()
        .col_expr(
            dead_letters::Column::Status,
            sea_orm::sea_query::Expr::value(LetterStatus::Purged.as_str()),
        )
        .filter(filter.condition())
        .filter(dead_letters::Column::Status.ne(LetterStatus::Purged.as_str()))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// The open dead letters of `class` the re-drive policy may take: dead-lettered before
/// `before`, re-driven fewer than `max_redrives` times, about an item that is still failed
/// (in a job that is not cancelled).
/// Oldest first, at most `limit`.
pub async fn policy_targets<C: ConnectionTrait>(
    db: &C,
    class: ErrorClass,
    before: DateTime<Utc>,
    max_redrives: u32,
    limit: u64,
) -> Result<Vec<Target>, StoreError> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            r#"SELECT d.id, d.item_id FROM dead_letters d
               WHERE d.status = 'open' AND d.error_class = $1 AND d.dead_lettered_at < $2
                 AND d.redrive_count < $3
                 AND EXISTS (SELECT 1 FROM job_items i JOIN jobs j ON j.id = i.job_id
                             WHERE i.id = d.item_id AND i.status = 'failed'
                               AND j.status <> 'cancelled')
               ORDER BY d.dead_lettered_at, d.id
               LIMIT $4"#,
            [
                class.as_str().into(),
                before.into(),
                i32::try_from(max_redrives).unwrap_or(i32::MAX).into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
            ],
        ))
        .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Target {
                id: row.try_get("", "id")?,
                item_id: row.try_get("", "item_id")?,
            })
        })
        .collect::<Result<_, sea_orm::DbErr>>()
        .map_err(StoreError::from)
}

/// One audit record: who asked for which re-drive or purge, and what it did.
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub requested_by: String,
    /// Set when the record is about one dead letter.
    pub dead_letter_id: Option<Uuid>,
    /// The request: its filter and options, as JSON.
    pub filter: serde_json::Value,
    pub dry_run: bool,
    pub matched: u64,
    pub redriven: u64,
    pub note: Option<String>,
}

/// Writes an audit record and returns its id.
pub async fn insert_audit<C: ConnectionTrait>(
    db: &C,
    audit: &NewAudit,
) -> Result<Uuid, StoreError> {
    let id = Uuid::now_v7();
    let clamp = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
    db.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"INSERT INTO redrive_audit
               (id, requested_by, dead_letter_id, filter, dry_run, matched, redriven, note, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())"#,
        [
            id.into(),
            without_nul(&audit.requested_by).into(),
            audit.dead_letter_id.into(),
            json_without_nul(&audit.filter).into(),
            audit.dry_run.into(),
            clamp(audit.matched).into(),
            clamp(audit.redriven).into(),
            audit.note.as_deref().map(without_nul).into(),
        ],
    ))
    .await?;
    Ok(id)
}

/// Completes an audit record written before the work started.
pub async fn finish_audit<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    redriven: u64,
    note: Option<&str>,
) -> Result<(), StoreError> {
    db.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "UPDATE redrive_audit SET redriven = $2, note = $3 WHERE id = $1",
        [
            id.into(),
            i32::try_from(redriven).unwrap_or(i32::MAX).into(),
            note.map(without_nul).into(),
        ],
    ))
    .await?;
    Ok(())
}

/// The most recent audit records, newest first.
pub async fn recent_audits<C: ConnectionTrait>(
    db: &C,
    limit: u64,
) -> Result<Vec<redrive_audit::Model>, StoreError> {
    Ok(redrive_audit::Entity::find()
        .order_by_desc(redrive_audit::Column::CreatedAt)
        .order_by_desc(redrive_audit::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// The `traceparent` of each letter's first delivery (its `x-origin-traceparent` header), by
/// item: what a re-driven message links its trace to.
pub async fn trace_origins<C: ConnectionTrait>(
    db: &C,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, String>, StoreError> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            r#"SELECT item_id, headers->>'x-origin-traceparent' AS origin FROM dead_letters
               WHERE id = ANY($1) AND item_id IS NOT NULL
                 AND headers->>'x-origin-traceparent' IS NOT NULL"#,
            [ids.to_vec().into()],
        ))
        .await?;
    rows.into_iter()
        .map(|row| Ok((row.try_get("", "item_id")?, row.try_get("", "origin")?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in [
            LetterStatus::Open,
            LetterStatus::Redriven,
            LetterStatus::Purged,
        ] {
            assert_eq!(status.as_str().parse::<LetterStatus>(), Ok(status));
            assert_eq!(
                serde_json::to_value(status).expect("a status serialises"),
                status.as_str()
            );
        }
        assert!("deleted".parse::<LetterStatus>().is_err());
    }

    #[test]
    fn re_drives_act_on_open_letters_unless_told_otherwise() {
        let filter = DeadLetterFilter::default();
        assert_eq!(filter.open_by_default().status, Some(LetterStatus::Open));
        let purged = DeadLetterFilter {
            status: Some(LetterStatus::Purged),
            ..Default::default()
        };
        assert_eq!(purged.open_by_default().status, Some(LetterStatus::Purged));
    }

    #[test]
    fn an_unknown_field_is_refused_rather_than_widening_the_filter() {
        let err = serde_json::from_str::<DeadLetterFilter>(r#"{"jobid": "x"}"#)
            .expect_err("an unknown field");
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn since_after_until_is_refused() {
        let filter = DeadLetterFilter {
            since: "2026-11-29T00:00:00Z".parse().ok(),
            until: "2026-11-28T00:00:00Z".parse().ok(),
            ..Default::default()
        };
        assert!(filter.check().is_err());
    }

    #[test]
    fn the_cli_takes_the_filter_under_its_short_names() {
        use clap::Parser;

        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            filter: DeadLetterFilter,
        }
        let cli = Cli::try_parse_from([
            "redriver",
            "--stage",
            "2",
            "--class",
            "transient",
            "--status",
            "open",
            "--since",
            "2026-11-29T00:00:00Z",
        ])
        .expect("valid arguments");
        assert_eq!(
            cli.filter,
            DeadLetterFilter {
                stage_index: Some(2),
                error_class: Some(ErrorClass::Transient),
                status: Some(LetterStatus::Open),
                since: "2026-11-29T00:00:00Z".parse().ok(),
                ..Default::default()
            }
        );
        assert!(Cli::try_parse_from(["redriver", "--class", "sometimes"]).is_err());
    }

    #[test]
    fn nul_characters_are_replaced_in_json_keys_and_strings() {
        let value = serde_json::json!({"a\u{0}": ["x\u{0}y", 1]});
        let clean = json_without_nul(&value);
        assert_eq!(clean, serde_json::json!({"a\u{FFFD}": ["x\u{FFFD}y", 1]}));
    }
}
