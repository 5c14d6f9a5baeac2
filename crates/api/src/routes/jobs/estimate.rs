//! `POST /api/jobs/estimate`: what a submission would cost and when it would be done, without
//! creating anything.

use actix_web::{post, web};
use domain::{
    ImageDetail,
    estimate::{self, Range},
};
use serde::{Deserialize, Serialize};
use settings::PriceTable;
use store::estimate::{Ahead, Queue, Selection};
use utoipa::ToSchema;

use super::{SubmitJob, submit_error};
use crate::{auth::Tenant, error::ApiError, extract::JsonBody, state::AppState};

/// A low and a high count of tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub struct TokenRange {
    pub low: u64,
    pub high: u64,
}

impl From<Range<u64>> for TokenRange {
    fn from(range: Range<u64>) -> Self {
        Self {
            low: range.low,
            high: range.high,
        }
    }
}

/// A low and a high cost in USD.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct CostRange {
    pub low: f64,
    pub high: f64,
}

/// Where the prices come from.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct PriceSource {
    /// When the price table was taken (`cohere.prices.as_of`).
    #[schema(example = "2026-11-29")]
    pub as_of: String,
    /// Where it was taken from.
    #[schema(example = "https://cohere.com/pricing")]
    pub source: String,
}

/// One stage's part of an estimate, as if every image reached it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct StageEstimate {
    pub index: u32,
    pub name: String,
    pub model: String,
    pub image_detail: ImageDetail,
    /// Calls: one per image.
    pub calls: u64,
    /// Whether every image reaches the stage: no earlier stage filters.
    pub always_runs: bool,
    /// Image tokens by Cohere's rule plus the prompt's.
    pub input_tokens: TokenRange,
    /// Output tokens assumed: the stage's `max_tokens` per call, or 300 without one.
    pub output_tokens: u64,
    /// USD per million input tokens of the model.
    pub input_per_million_usd: f64,
    /// USD per million output tokens of the model.
    pub output_per_million_usd: f64,
    pub cost_usd: CostRange,
}

/// What a job would cost and when it would be done.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct JobEstimate {
    /// Images the job would cover.
    pub images: u64,
    /// Of them, images whose size is not known (registered by URL without `width` and
    /// `height`): their image tokens are a range, from the fewest to the most an image can
    /// cost at the stage's detail.
    pub images_of_unknown_size: u64,
    /// The most calls the job can make: images × stages (filters can only lower it).
    pub max_calls: u64,
    /// The calls it makes if no call fails and its filters let no image through: every image
    /// through each stage up to and including the first one that filters.
    pub min_calls: u64,
    /// Input tokens if every image goes through every stage: each image's tokens by Cohere's
    /// image-token rule for the stage's model and detail (from the image's width and height)
    /// plus the system prompt and prompt (one token per four characters). `low` and `high`
    /// differ only for images of unknown size.
    pub input_tokens: TokenRange,
    /// Output tokens assumed if every image goes through every stage.
    pub output_tokens: u64,
    /// `low`: the `min_calls` at the low input tokens; `high`: the `max_calls` at the high
    /// ones; both with the output tokens assumed, at `prices`.
    pub cost_usd: CostRange,
    pub prices: PriceSource,
    /// The most calls the tenant's unfinished jobs of the same or a higher priority still
    /// make (they run first).
    pub calls_ahead: u64,
    /// The tenant's share of the Cohere budget, in calls per minute: the model's rate limit
    /// (the scheduler's window turned over every 4 s when none is set) × its weight / the
    /// weights of the tenants with work, capped by its own calls-per-minute limit.
    pub calls_per_minute: f64,
    /// Seconds until the job would be done: (`calls_ahead` + `max_calls`) at
    /// `calls_per_minute`, an upper bound while others' shares stay as they are.
    pub eta_seconds: u64,
    pub stages: Vec<StageEstimate>,
}

/// Estimate a job before submitting it: images, calls, tokens, cost and ETA.
///
/// Takes the body of `POST /api/jobs/submit` and refuses it for the same reasons (an unknown
/// pipeline or library, images not in the library, an empty library, ...), but creates
/// nothing. Image tokens follow Cohere's documented image-token rule for the stage's model
/// and detail, from each image's width and height; prompts count one token per four
/// characters; output tokens are assumed (each stage's `max_tokens`, else 300).
#[utoipa::path(
    tag = "jobs",
    request_body = SubmitJob,
    responses((status = 200, description = "The estimate", body = JobEstimate))
)]
#[post("/jobs/estimate")]
pub async fn estimate_job(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    JsonBody(body): JsonBody<SubmitJob>,
) -> Result<web::Json<JobEstimate>, ApiError> {
    let selection = store::estimate::selection(
        &state.db,
        tenant,
        body.pipeline_id,
        body.library_id,
        &body.images,
    )
    .await
    .map_err(submit_error)?;
    let queue = store::estimate::queue(&state.db, tenant, Ahead::NewJob(body.priority)).await?;
    let rate = state.budget.tenant_rate(
        selection.pipeline.stages.iter().map(|s| s.model.as_str()),
        &queue,
    );
    Ok(web::Json(build(
        &selection,
        state.budget.prices(),
        &queue,
        rate,
    )))
}

/// The estimate of running `selection`, with the tenant at `rate` calls per minute behind
/// `queue.calls_ahead` calls.
fn build(selection: &Selection, prices: &PriceTable, queue: &Queue, rate: f64) -> JobEstimate {
    let stages = &selection.pipeline.stages;
    let images = selection.images();
    let tokens = estimate::stage_estimates(stages, &selection.sizes);
    let mut total_input = Range::<u64>::default();
    let mut output_tokens = 0;
    let mut cost = CostRange {
        low: 0.0,
        high: 0.0,
    };
    let mut min_calls = 0;
    let stages: Vec<StageEstimate> = stages
        .iter()
        .zip(&tokens)
        .enumerate()
        .map(|(index, (stage, tokens))| {
            let price = prices.for_model(&stage.model);
            let stage_cost = CostRange {
                low: price.cost_usd(
                    tokens_i64(tokens.input_tokens.low),
                    tokens_i64(tokens.output_tokens),
                ),
                high: price.cost_usd(
                    tokens_i64(tokens.input_tokens.high),
                    tokens_i64(tokens.output_tokens),
                ),
            };
            total_input.low += tokens.input_tokens.low;
            total_input.high += tokens.input_tokens.high;
            output_tokens += tokens.output_tokens;
            cost.high += stage_cost.high;
            if tokens.always_runs {
                cost.low += stage_cost.low;
                min_calls += tokens.calls;
            }
            StageEstimate {
                index: index as u32,
                name: stage.name.clone(),
                model: stage.model.clone(),
                image_detail: stage.image_detail,
                calls: tokens.calls,
                always_runs: tokens.always_runs,
                input_tokens: tokens.input_tokens.into(),
                output_tokens: tokens.output_tokens,
                input_per_million_usd: price.input_per_million_usd,
                output_per_million_usd: price.output_per_million_usd,
                cost_usd: stage_cost,
            }
        })
        .collect();
    let max_calls = estimate::max_calls(images, stages.len());
    JobEstimate {
        images,
        images_of_unknown_size: selection
            .sizes
            .iter()
            .filter(|group| group.size.is_none())
            .map(|group| group.images)
            .sum(),
        max_calls,
        min_calls,
        input_tokens: total_input.into(),
        output_tokens,
        cost_usd: cost,
        prices: PriceSource {
            as_of: prices.as_of.clone(),
            source: prices.source.clone(),
        },
        calls_ahead: queue.calls_ahead,
        calls_per_minute: rate,
        eta_seconds: estimate::eta_seconds(queue.calls_ahead + max_calls, rate),
        stages,
    }
}

fn tokens_i64(tokens: u64) -> i64 {
    i64::try_from(tokens).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use domain::{
        estimate::SizeCount,
        pipeline::{PipelineSnapshot, StageSpec},
    };
    use serde_json::json;

    use super::*;

    fn stage(value: serde_json::Value) -> StageSpec {
        serde_json::from_value(value).expect("a stage")
    }

    #[test]
    fn an_estimate_adds_up_its_stages_and_prices_them() {
        let selection = Selection {
            pipeline: PipelineSnapshot {
                pipeline_id: uuid::Uuid::nil(),
                name: "p".into(),
                version: 1,
                stages: vec![
                    stage(json!({
                        "name": "detect", "prompt": "Abcd", "image_detail": "low",
                        "max_tokens": 10,
                        "json_schema": {"type": "object", "properties": {"a": {"type": "boolean"}}, "required": ["a"]},
                        "filter": {"type": "field", "pointer": "/a", "op": "eq", "value": true}
                    })),
                    stage(
                        json!({"name": "describe", "prompt": "Abcdefgh", "image_detail": "high", "max_tokens": 100}),
                    ),
                ],
            },
            sizes: vec![
                SizeCount {
                    size: Some((512, 512)),
                    images: 3,
                },
                SizeCount {
                    size: None,
                    images: 1,
                },
            ],
        };
        let queue = Queue {
            weight: 1,
            calls_per_minute: None,
            total_weight: 2,
            calls_ahead: 52,
        };
        let estimate = build(&selection, &PriceTable::default(), &queue, 60.0);
        assert_eq!(estimate.images, 4);
        assert_eq!(estimate.images_of_unknown_size, 1);
        assert_eq!(estimate.max_calls, 8);
        assert_eq!(estimate.min_calls, 4, "the first stage filters");
        // Stage 0: 4 × (256 + 1); stage 1: 3 × (512 + 2) + (512..3328) + 2.
        assert_eq!(
            estimate.stages[0].input_tokens,
            TokenRange {
                low: 1028,
                high: 1028
            }
        );
        assert_eq!(
            estimate.stages[1].input_tokens,
            TokenRange {
                low: 3 * 514 + 514,
                high: 3 * 514 + 3330
            }
        );
        assert_eq!(
            estimate.input_tokens,
            TokenRange {
                low: 1028 + 2056,
                high: 1028 + 4872
            }
        );
        assert_eq!(estimate.output_tokens, 40 + 400);
        // Command A Vision: $2.50 / $10 per million.
        let stage0 = (1028.0 * 2.5 + 40.0 * 10.0) / 1e6;
        let stage1_high = (4872.0 * 2.5 + 400.0 * 10.0) / 1e6;
        assert!(
            (estimate.cost_usd.low - stage0).abs() < 1e-12,
            "{:?}",
            estimate.cost_usd
        );
        assert!((estimate.cost_usd.high - (stage0 + stage1_high)).abs() < 1e-12);
        assert_eq!(estimate.prices.as_of, PriceTable::default().as_of);
        // 52 calls ahead + 8 at 60 a minute.
        assert_eq!(estimate.eta_seconds, 60);
    }
}
