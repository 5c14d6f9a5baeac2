//! Cohere's answer in the form it is stored, with the stage's filter applied and the call
//! priced.

use cohere::{ChatResponse, FinishReason};
use domain::{
    filter::{CompiledFilter, FilterError, FilterVerdict, StageOutput, parse_json_output},
    pipeline::StageSpec,
};
use settings::PriceTable;
use store::work::StageResult;

/// The stored form of `response` to `stage`, judged by the stage's compiled `filter` (if it has
/// one), taking `latency_ms`, and costing its billed tokens at the stage model's price in
/// `prices`.
pub fn stage_result(
    stage: &StageSpec,
    filter: Option<&Result<CompiledFilter, FilterError>>,
    response: &ChatResponse,
    latency_ms: i32,
    prices: &PriceTable,
) -> StageResult {
    let text = response.text();
    let json = parse_json_output(&text);
    let verdict = filter.map(|filter| match filter {
        Ok(compiled) => compiled.evaluate(&StageOutput {
            text: &text,
            json: json.as_ref(),
        }),
        // Validated at pipeline creation; a snapshot that no longer compiles fails closed.
        Err(error) => FilterVerdict::reject(format!("the stage filter is invalid: {error}")),
    });
    let usage = response.usage.as_ref();
    let billed = usage.and_then(|u| u.billed_units.as_ref());
    let counted = usage.and_then(|u| u.tokens.as_ref());
    let billed_input_tokens = tokens(billed.and_then(|b| b.input_tokens));
    let billed_output_tokens = tokens(billed.and_then(|b| b.output_tokens));
    StageResult {
        model: stage.model.clone(),
        output_text: text,
        output_json: json,
        passed: verdict.as_ref().is_none_or(|v| v.passed),
        filter_reason: verdict.and_then(|v| v.reason),
        finish_reason: finish_reason(response.finish_reason),
        input_tokens: tokens(counted.and_then(|t| t.input_tokens)),
        output_tokens: tokens(counted.and_then(|t| t.output_tokens)),
        billed_input_tokens,
        billed_output_tokens,
        latency_ms,
        cost_usd: prices
            .for_model(&stage.model)
            .cost_usd(billed_input_tokens, billed_output_tokens),
    }
}

/// Cohere's name for a finish reason (`COMPLETE`, `MAX_TOKENS`, ...), as the `cohere` crate
/// writes it on the wire.
fn finish_reason(reason: FinishReason) -> Option<String> {
    match serde_json::to_value(reason) {
        Ok(serde_json::Value::String(name)) => Some(name),
        _ => None,
    }
}

/// A token count as stored: Cohere reports them as numbers that may be fractional.
fn tokens(value: Option<f64>) -> i64 {
    value.map_or(0, |v| v.max(0.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use domain::filter::Filter;
    use serde_json::{Value, json};

    use super::*;

    fn stage() -> StageSpec {
        serde_json::from_value(json!({"name": "detect", "prompt": "An animal? As JSON."}))
            .expect("a stage")
    }

    fn response(text: &str, finish_reason: &str, usage: Value) -> ChatResponse {
        serde_json::from_value(json!({
            "id": "generation",
            "finish_reason": finish_reason,
            "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
            "usage": usage,
        }))
        .expect("a response")
    }

    fn filter(value: Value) -> Result<CompiledFilter, FilterError> {
        serde_json::from_value::<Filter>(value)
            .expect("a filter")
            .compile()
    }

    fn animal() -> Result<CompiledFilter, FilterError> {
        filter(json!({"type": "field", "pointer": "/animal", "op": "eq", "value": true}))
    }

    #[test]
    fn an_answer_is_stored_with_its_json_tokens_and_finish_reason() {
        let usage = json!({
            "billed_units": {"input_tokens": 8.0, "output_tokens": 2.0},
            "tokens": {"input_tokens": 1210.4, "output_tokens": 5.6},
        });
        let answer = response("{\"animal\": true}", "COMPLETE", usage);
        let result = stage_result(&stage(), None, &answer, 42, &PriceTable::default());
        assert_eq!(result.model, stage().model);
        assert_eq!(result.output_text, "{\"animal\": true}");
        assert_eq!(result.output_json, Some(json!({"animal": true})));
        assert!(result.passed, "no filter: everything passes");
        assert_eq!(result.filter_reason, None);
        assert_eq!(result.finish_reason.as_deref(), Some("COMPLETE"));
        assert_eq!((result.input_tokens, result.output_tokens), (1210, 6));
        assert_eq!(
            (result.billed_input_tokens, result.billed_output_tokens),
            (8, 2)
        );
        assert_eq!(result.latency_ms, 42);
        let price = PriceTable::default().for_model(&stage().model);
        assert_eq!(result.cost_usd, price.cost_usd(8, 2));
    }

    #[test]
    fn a_call_costs_its_billed_tokens_at_the_stage_models_price() {
        let usage = json!({
            "billed_units": {"input_tokens": 1_000.0, "output_tokens": 200.0},
            "tokens": {"input_tokens": 1_014.0, "output_tokens": 201.0},
        });
        let answer = response("A cat.", "COMPLETE", usage);
        let mut prices = PriceTable::default();
        prices.models.insert(
            stage().model.clone(),
            settings::ModelPrice {
                input_per_million_usd: 3.0,
                output_per_million_usd: 12.0,
            },
        );
        let result = stage_result(&stage(), None, &answer, 1, &prices);
        // Billed tokens, not the counted ones: 1,000 at $3/M and 200 at $12/M.
        assert!(
            (result.cost_usd - 0.0054).abs() < 1e-12,
            "{}",
            result.cost_usd
        );

        // A model the table does not list is priced at the fallback.
        let mut other = stage();
        other.model = "command-something-new".into();
        let priced = stage_result(&other, None, &answer, 1, &prices);
        let fallback = prices.fallback.cost_usd(1_000, 200);
        assert!(fallback > 0.0);
        assert!((priced.cost_usd - fallback).abs() < 1e-12);
    }

    #[test]
    fn missing_usage_counts_no_tokens() {
        let answer = response("A cat.", "MAX_TOKENS", Value::Null);
        let result = stage_result(&stage(), None, &answer, 1, &PriceTable::default());
        assert_eq!(result.output_json, None);
        assert_eq!(result.finish_reason.as_deref(), Some("MAX_TOKENS"));
        assert_eq!(
            [
                result.input_tokens,
                result.output_tokens,
                result.billed_input_tokens,
                result.billed_output_tokens
            ],
            [0; 4]
        );
        assert_eq!(result.cost_usd, 0.0, "nothing billed, nothing paid");
    }

    #[test]
    fn the_stage_filter_decides_whether_the_item_passes() {
        let filter = animal();
        let yes = response("{\"animal\": true}", "COMPLETE", Value::Null);
        let passed = stage_result(&stage(), Some(&filter), &yes, 1, &PriceTable::default());
        assert!(passed.passed);
        assert_eq!(passed.filter_reason, None);

        let no = response("{\"animal\": false}", "COMPLETE", Value::Null);
        let rejected = stage_result(&stage(), Some(&filter), &no, 1, &PriceTable::default());
        assert!(!rejected.passed);
        assert!(rejected.filter_reason.is_some(), "a rejection says why");

        let prose = response("There is a cat.", "COMPLETE", Value::Null);
        let unjudged = stage_result(&stage(), Some(&filter), &prose, 1, &PriceTable::default());
        assert!(!unjudged.passed, "an answer that is not JSON cannot pass");
    }

    #[test]
    fn a_filter_that_no_longer_compiles_rejects_every_answer() {
        let broken = filter(json!({"type": "regex", "pattern": "("}));
        assert!(broken.is_err());
        let answer = response("{\"animal\": true}", "COMPLETE", Value::Null);
        let result = stage_result(&stage(), Some(&broken), &answer, 1, &PriceTable::default());
        assert!(!result.passed);
        assert!(
            result
                .filter_reason
                .is_some_and(|reason| reason.starts_with("the stage filter is invalid")),
        );
    }

    #[test]
    fn the_finish_reason_is_stored_as_cohere_sent_it() {
        for name in [
            "COMPLETE",
            "STOP_SEQUENCE",
            "MAX_TOKENS",
            "TOOL_CALL",
            "ERROR",
            "TIMEOUT",
        ] {
            let answer = response("A cat.", name, Value::Null);
            let result = stage_result(&stage(), None, &answer, 1, &PriceTable::default());
            assert_eq!(result.finish_reason.as_deref(), Some(name));
        }
        let unknown = response("A cat.", "SOMETHING_NEW", Value::Null);
        let result = stage_result(&stage(), None, &unknown, 1, &PriceTable::default());
        assert_eq!(result.finish_reason.as_deref(), Some("OTHER"));
    }
}
