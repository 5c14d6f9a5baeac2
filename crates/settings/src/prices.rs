//! What Cohere charges per model, to price each call from its billed tokens.

use std::collections::BTreeMap;

use serde::Deserialize;

/// USD per million billed tokens of one model.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct ModelPrice {
    pub input_per_million_usd: f64,
    pub output_per_million_usd: f64,
}

impl ModelPrice {
    /// The cost of one call from its billed input and output tokens.
    pub fn cost_usd(&self, billed_input_tokens: i64, billed_output_tokens: i64) -> f64 {
        (billed_input_tokens as f64 * self.input_per_million_usd
            + billed_output_tokens as f64 * self.output_per_million_usd)
            / 1_000_000.0
    }
}

/// The price table (`[cohere.prices]`). The defaults were read on 2026-11-29 from Cohere's
/// pricing page (<https://cohere.com/pricing>) as listed by its public mirrors: Command A
/// (and Command A Vision, built on it) $2.50 / $10.00 per million input / output tokens,
/// Command R $0.15 / $0.60, Command R7B $0.0375 / $0.15. A production deployment sets its
/// contract's prices here; a model not listed is priced as `fallback`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PriceTable {
    /// When the prices were taken, shown with estimates.
    pub as_of: String,
    /// Where they were taken from.
    pub source: String,
    pub models: BTreeMap<String, ModelPrice>,
    /// The price of a model the table does not list (the dearest listed by default, so an
    /// unknown model is never under-estimated).
    pub fallback: ModelPrice,
}

impl PriceTable {
    pub fn for_model(&self, model: &str) -> ModelPrice {
        self.models.get(model).copied().unwrap_or(self.fallback)
    }
}

impl Default for PriceTable {
    fn default() -> Self {
        let command_a = ModelPrice {
            input_per_million_usd: 2.50,
            output_per_million_usd: 10.00,
        };
        let models = [
            ("command-a-vision-07-2025", command_a),
            ("command-a-03-2025", command_a),
            (
                "command-r-08-2024",
                ModelPrice {
                    input_per_million_usd: 0.15,
                    output_per_million_usd: 0.60,
                },
            ),
            (
                "command-r7b-12-2024",
                ModelPrice {
                    input_per_million_usd: 0.0375,
                    output_per_million_usd: 0.15,
                },
            ),
        ]
        .into_iter()
        .map(|(model, price)| (model.to_string(), price))
        .collect();
        Self {
            as_of: "2026-11-29".into(),
            source: "https://cohere.com/pricing".into(),
            models,
            fallback: command_a,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_costs_its_billed_tokens_at_the_models_price() {
        let table = PriceTable::default();
        let price = table.for_model("command-a-vision-07-2025");
        // 1,000 input tokens at $2.50/M and 200 output tokens at $10/M.
        assert!((price.cost_usd(1_000, 200) - 0.0045).abs() < 1e-12);
        assert_eq!(table.for_model("some-new-model"), table.fallback);
    }
}
