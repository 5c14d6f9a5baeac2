//! `/api/jobs/{job_id}/results`: a job's per-image, per-stage results, a page at a time or
//! exported whole (JSON Lines or CSV, streamed).

use actix_web::{HttpResponse, get, http::header, web};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::job::Verdict;
use futures::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use store::{
    entities::job_results,
    results::{EXPORT_CHUNK_ROWS, ResultFilter},
};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    auth::Tenant,
    error::ApiError,
    extract::PageQuery,
    routes::{Paged, items::StageAnswer, paged},
    state::AppState,
};

/// Tokens one stage call used and what it cost.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct TokenUsage {
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub billed_input_tokens: i64,
    pub billed_output_tokens: i64,
    /// The call's cost in US dollars: its billed tokens at its model's price.
    pub cost_usd: f64,
}

/// The result of one stage for one image of a job.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct JobResult {
    pub item_id: Uuid,
    pub image_id: Uuid,
    pub stage_index: i32,
    /// The stage's name in the pipeline as it was when the job was submitted.
    pub stage_name: String,
    #[schema(example = "command-a-vision-07-2025")]
    pub model: String,
    /// The model's answer as it was returned.
    pub output_text: String,
    /// The answer parsed as JSON, for stages that ask for JSON.
    #[schema(value_type = Option<Object>)]
    pub output_json: Option<serde_json::Value>,
    pub verdict: Verdict,
    /// Why the filter stopped the image, when it did.
    pub filter_reason: Option<String>,
    /// Why the model stopped generating, as Cohere reported it.
    #[schema(example = "COMPLETE")]
    pub finish_reason: Option<String>,
    pub usage: TokenUsage,
    /// Time the model call took.
    pub latency_ms: i32,
    pub created_at: DateTime<Utc>,
}

/// The name of stage `index` in the job's snapshot (empty if the snapshot has no such stage).
fn stage_name(stage_names: &[String], index: i32) -> String {
    usize::try_from(index)
        .ok()
        .and_then(|i| stage_names.get(i))
        .cloned()
        .unwrap_or_default()
}

fn job_result(row: job_results::Model, stage_names: &[String]) -> JobResult {
    let (item_id, image_id, stage_index) = (row.item_id, row.image_id, row.stage_index);
    let answer = StageAnswer::from(row);
    JobResult {
        item_id,
        image_id,
        stage_index,
        stage_name: stage_name(stage_names, stage_index),
        model: answer.model,
        output_text: answer.output_text,
        output_json: answer.output_json,
        verdict: answer.verdict,
        filter_reason: answer.filter_reason,
        finish_reason: answer.finish_reason,
        usage: answer.usage,
        latency_ms: answer.latency_ms,
        created_at: answer.answered_at,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// Only results of this stage (its index, from 0).
    #[param(minimum = 0)]
    pub stage: Option<i32>,
    /// Only results with this verdict.
    pub verdict: Option<Verdict>,
    /// Only results for this image.
    pub image_id: Option<Uuid>,
}

/// A job's results, one per image and stage, ordered by stage, then time, with filters.
#[utoipa::path(
    tag = "jobs",
    params(("job_id" = Uuid, Path, description = "Job id"), ResultsQuery, PageQuery),
    responses(
        (status = 200, description = "A page of results", body = Paged<JobResult>),
        (status = 404, description = "No such job for this tenant", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/jobs/{job_id}/results")]
pub async fn list_results(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<Uuid>,
    filter: web::Query<ResultsQuery>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Paged<JobResult>>, ApiError> {
    let page = page.page()?;
    if filter.stage.is_some_and(|s| s < 0) {
        return Err(ApiError::BadRequest("stage must be at least 0".into()));
    }
    let filter = ResultFilter {
        stage_index: filter.stage,
        verdict: filter.verdict,
        image_id: filter.image_id,
    };
    let found = store::results::list(&state.db, tenant, *path, &filter, page)
        .await
        .map_err(|e| ApiError::from_store(e, "job"))?;
    let stage_names = found.stage_names;
    Ok(web::Json(paged(
        found.results.map(|row| job_result(row, &stage_names)),
        page,
    )))
}

/// File format of an export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// JSON Lines: one result object per line.
    #[default]
    Jsonl,
    /// Comma-separated values with a header row (RFC 4180).
    Csv,
}

impl ExportFormat {
    fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "application/x-ndjson",
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Csv => "csv",
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `jsonl` (default) or `csv`.
    #[param(inline)]
    pub format: Option<ExportFormat>,
}

/// JSON Lines: each line one `JobResult` object.
#[derive(ToSchema)]
#[schema(
    value_type = String,
    example = "{\"item_id\":\"01936d6e-8f3a-7c1e-9b2a-3f4e5d6c7b8a\",\"stage_index\":0,\"stage_name\":\"detect\",\"verdict\":\"passed\",\"...\":\"...\"}\n"
)]
pub struct ResultLines(#[allow(dead_code)] String);

/// CSV with a header row; empty fields for absent values; `output_json` as compact JSON.
#[derive(ToSchema)]
#[schema(
    value_type = String,
    example = "item_id,image_id,stage_index,stage_name,verdict,model,output_text,output_json,filter_reason,finish_reason,input_tokens,output_tokens,cost_usd,latency_ms,created_at\r\n"
)]
pub struct ResultsCsv(#[allow(dead_code)] String);

const CSV_HEADER: &str = "item_id,image_id,stage_index,stage_name,verdict,model,output_text,output_json,filter_reason,finish_reason,input_tokens,output_tokens,cost_usd,latency_ms,created_at\r\n";

/// Appends one CSV field: quoted, with quotes doubled, when it holds a comma, quote, CR or LF.
fn push_csv_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

fn push_csv_row(out: &mut String, result: &JobResult) {
    let output_json = result
        .output_json
        .as_ref()
        .map(serde_json::Value::to_string)
        .unwrap_or_default();
    let fields: [&str; 15] = [
        &result.item_id.to_string(),
        &result.image_id.to_string(),
        &result.stage_index.to_string(),
        &result.stage_name,
        result.verdict.as_str(),
        &result.model,
        &result.output_text,
        &output_json,
        result.filter_reason.as_deref().unwrap_or_default(),
        result.finish_reason.as_deref().unwrap_or_default(),
        &result.usage.input_tokens.to_string(),
        &result.usage.output_tokens.to_string(),
        // Shortest form that reads back as the same number, as in JSON.
        &result.usage.cost_usd.to_string(),
        &result.latency_ms.to_string(),
        // The same form as in JSON.
        &result
            .created_at
            .to_rfc3339_opts(SecondsFormat::AutoSi, true),
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_csv_field(out, field);
    }
    out.push_str("\r\n");
}

/// Renders one chunk of rows in the export's format.
fn render_chunk(
    format: ExportFormat,
    rows: Vec<job_results::Model>,
    stage_names: &[String],
) -> Result<Bytes, anyhow::Error> {
    match format {
        ExportFormat::Jsonl => {
            let mut out = Vec::with_capacity(rows.len() * 512);
            for row in rows {
                serde_json::to_writer(&mut out, &job_result(row, stage_names))?;
                out.push(b'\n');
            }
            Ok(Bytes::from(out))
        }
        ExportFormat::Csv => {
            let mut out = String::with_capacity(rows.len() * 512);
            for row in rows {
                push_csv_row(&mut out, &job_result(row, stage_names));
            }
            Ok(Bytes::from(out))
        }
    }
}

/// Export all of a job's results as a file, in the order of the results list.
///
/// The file is streamed while it is read from the database, so it can be large.
#[utoipa::path(
    tag = "jobs",
    params(("job_id" = Uuid, Path, description = "Job id"), ExportQuery),
    responses(
        (status = 200, description = "Every result of the job, as an attachment",
            content((ResultLines = "application/x-ndjson"), (ResultsCsv = "text/csv")),
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"job-<id>-results.<jsonl|csv>\"`"))),
        (status = 404, description = "No such job for this tenant", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/jobs/{job_id}/results/export")]
pub async fn export_results(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<Uuid>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let job_id = *path;
    let format = query.format.unwrap_or_default();
    let export = store::results::export(&state.db, tenant, job_id, EXPORT_CHUNK_ROWS)
        .await
        .map_err(|e| ApiError::from_store(e, "job"))?;
    let stage_names = export.stage_names;
    let rows = export.chunks.map(move |chunk| {
        let chunk = chunk.inspect_err(|e| {
            // The status line is already sent: the client sees the body cut short.
            tracing::error!(%job_id, error = ?e, "results export failed part-way");
        })?;
        render_chunk(format, chunk, &stage_names)
    });
    let header_row = match format {
        ExportFormat::Csv => Some(Ok(Bytes::from_static(CSV_HEADER.as_bytes()))),
        ExportFormat::Jsonl => None,
    };
    let body = stream::iter(header_row).chain(rows);
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"job-{job_id}-results.{}\"",
                format.extension()
            ),
        ))
        .streaming(body))
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_results).service(export_results);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(s: &str) -> String {
        let mut out = String::new();
        push_csv_field(&mut out, s);
        out
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed_with_quotes_doubled() {
        assert_eq!(field("plain text"), "plain text");
        assert_eq!(field(""), "");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("cr\rhere"), "\"cr\rhere\"");
    }

    #[test]
    fn a_stage_index_outside_the_snapshot_has_an_empty_name() {
        let names = vec!["detect".to_string()];
        assert_eq!(stage_name(&names, 0), "detect");
        assert_eq!(stage_name(&names, 1), "");
        assert_eq!(stage_name(&names, -1), "");
    }
}
