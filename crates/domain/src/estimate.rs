//! Estimates of what a job will cost and how long it will take, before it is submitted and
//! while it runs: Cohere's image-token rule, text tokens, per-stage token sums over a
//! selection's image sizes, a tenant's share of the rate budget and the ETA it gives.
//!
//! Pure arithmetic: the callers bring the image sizes (aggregated by the store), the prices
//! and the rate limits (from the settings).

use crate::pipeline::{ImageDetail, StageSpec};

/// How Cohere's vision models turn an image into input tokens.
///
/// Source: Cohere's documentation, "Image Inputs" (<https://docs.cohere.com/docs/image-inputs>,
/// section "Image Detail", as last updated 2025-11-08; read 2026-11-30):
///
/// - `low`: the image is shrunk to fit 512 × 512 and takes 256 tokens, whatever its size.
/// - `high`: the image is shrunk (never enlarged) to fit 1536 × 2048 keeping its aspect
///   ratio (the longest side at most 2048, per the page's worked example), then cut into
///   512 × 512 tiles; every tile plus one 512 × 512 preview tile takes 256 tokens. The page's
///   example: 10,000 × 20,000 → 1024 × 2048 → 8 tiles + the preview = 2,304 tokens.
/// - `auto` (the default): `high` if either side is longer than 768 pixels, else `low`.
///
/// So an image costs 256 tokens at the least (`low`, or `auto` for a small image) and 3,328 at
/// the most (`high`: 4 × 3 tiles + the preview). Oracle's figure of about 1,610 tokens for a
/// 512 × 512 image is for Cohere's *embedding* model (`embed-multilingual-image-v3.0`), not
/// for Command A Vision; by the rule above that image takes 256 (`low`/`auto`) or 512 (`high`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageTokenRule {
    /// Side of a square tile, in pixels.
    pub tile: u32,
    /// Tokens per tile; a `low` image and the `high` preview count as one tile each.
    pub tokens_per_tile: u32,
    /// At `high`, the longest side is shrunk to at most this.
    pub high_long_side: u32,
    /// At `high`, the shortest side is shrunk to at most this.
    pub high_short_side: u32,
    /// At `auto`, an image with a side longer than this is read at `high`.
    pub auto_high_above: u32,
}

/// The rule of Cohere's vision models (see [`ImageTokenRule`]).
pub const COHERE_VISION_RULE: ImageTokenRule = ImageTokenRule {
    tile: 512,
    tokens_per_tile: 256,
    high_long_side: 2048,
    high_short_side: 1536,
    auto_high_above: 768,
};

/// The image-token rule of `model`. Cohere documents one rule for its vision models
/// (`command-a-vision-07-2025` and its successors), so every model gets it: a model that
/// takes no images fails its first call anyway, and no model is assumed cheaper than
/// documented.
pub fn image_token_rule(_model: &str) -> ImageTokenRule {
    COHERE_VISION_RULE
}

/// The input tokens one `width` × `height` image costs with `model` at `detail`, by Cohere's
/// documented rule ([`ImageTokenRule`]).
pub fn image_tokens(model: &str, detail: ImageDetail, width: u32, height: u32) -> u32 {
    image_token_rule(model).tokens(detail, width, height)
}

impl ImageTokenRule {
    /// Tokens of one `width` × `height` image at `detail` (a side of 0 counts as 1 pixel).
    pub fn tokens(&self, detail: ImageDetail, width: u32, height: u32) -> u32 {
        let (width, height) = (width.max(1), height.max(1));
        match self.resolve(detail, width, height) {
            ImageDetail::High => (self.high_tiles(width, height) + 1) * self.tokens_per_tile,
            ImageDetail::Low | ImageDetail::Auto => self.tokens_per_tile,
        }
    }

    /// The fewest and the most tokens an image of unknown size can cost at `detail`.
    pub fn range(&self, detail: ImageDetail) -> Range<u32> {
        let most =
            (self.high_tiles(self.high_long_side, self.high_short_side) + 1) * self.tokens_per_tile;
        match detail {
            ImageDetail::Low => Range::exact(self.tokens_per_tile),
            ImageDetail::High => Range {
                low: 2 * self.tokens_per_tile,
                high: most,
            },
            ImageDetail::Auto => Range {
                low: self.tokens_per_tile,
                high: most,
            },
        }
    }

    /// `auto` resolved to `low` or `high` for an image of this size.
    fn resolve(&self, detail: ImageDetail, width: u32, height: u32) -> ImageDetail {
        match detail {
            ImageDetail::Auto if width.max(height) > self.auto_high_above => ImageDetail::High,
            ImageDetail::Auto => ImageDetail::Low,
            other => other,
        }
    }

    /// Tiles of an image at `high`, after shrinking it to fit the box.
    fn high_tiles(&self, width: u32, height: u32) -> u32 {
        let (width, height) = self.fit_high(width, height);
        width.div_ceil(self.tile) * height.div_ceil(self.tile)
    }

    /// The size an image is shrunk to at `high`, keeping its aspect ratio (integer arithmetic,
    /// rounded to the nearest pixel, so a side that fits exactly stays exact).
    fn fit_high(&self, width: u32, height: u32) -> (u32, u32) {
        let (long, short) = (u64::from(width.max(height)), u64::from(width.min(height)));
        let (max_long, max_short) = (
            u64::from(self.high_long_side),
            u64::from(self.high_short_side),
        );
        if long <= max_long && short <= max_short {
            return (width, height);
        }
        // The side that hits its bound first sets the scale: long/max_long vs short/max_short.
        let (new_long, new_short) = if long * max_short >= short * max_long {
            (max_long, ((short * max_long + long / 2) / long).max(1))
        } else {
            (((long * max_short + short / 2) / short).max(1), max_short)
        };
        let (new_long, new_short) = (new_long as u32, new_short as u32);
        if width >= height {
            (new_long, new_short)
        } else {
            (new_short, new_long)
        }
    }
}

/// A low and a high figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Range<T> {
    pub low: T,
    pub high: T,
}

impl<T: Copy> Range<T> {
    pub fn exact(value: T) -> Self {
        Self {
            low: value,
            high: value,
        }
    }
}

impl Range<u64> {
    fn add(self, other: Range<u64>) -> Range<u64> {
        Range {
            low: self.low + other.low,
            high: self.high + other.high,
        }
    }
}

/// Tokens of a text: one per four characters, rounded up. Cohere's tokenizer is not public
/// in a form this crate can run; English prose averages about four characters per token.
pub fn text_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Output tokens assumed for one call of a stage without `max_tokens`: a paragraph or a
/// small JSON object, what image-analysis prompts usually get. An answer may be longer.
pub const DEFAULT_OUTPUT_TOKENS: u32 = 300;

/// Output tokens assumed for one call of `stage`: its `max_tokens` (the most it may answer),
/// else [`DEFAULT_OUTPUT_TOKENS`].
pub fn assumed_output_tokens(stage: &StageSpec) -> u64 {
    u64::from(stage.max_tokens.unwrap_or(DEFAULT_OUTPUT_TOKENS))
}

/// Text tokens of one call of `stage`: its system prompt and prompt ([`text_tokens`]).
pub fn prompt_tokens(stage: &StageSpec) -> u64 {
    stage.system_prompt.as_deref().map_or(0, text_tokens) + text_tokens(&stage.prompt)
}

/// How many images of a selection have one size (`None`: not known, e.g. an image
/// registered by URL without its size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeCount {
    pub size: Option<(u32, u32)>,
    pub images: u64,
}

/// The input tokens of the images of `sizes` with `model` at `detail`: exact for images of
/// known size; for the others, the fewest and the most one image can cost.
pub fn images_tokens(model: &str, detail: ImageDetail, sizes: &[SizeCount]) -> Range<u64> {
    let rule = image_token_rule(model);
    sizes
        .iter()
        .map(|group| {
            let one = match group.size {
                Some((width, height)) => Range::exact(rule.tokens(detail, width, height)),
                None => rule.range(detail),
            };
            Range {
                low: u64::from(one.low) * group.images,
                high: u64::from(one.high) * group.images,
            }
        })
        .fold(Range::default(), Range::add)
}

/// What one stage of a job is expected to use if every image reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageEstimate {
    /// Calls: one per image.
    pub calls: u64,
    /// Image tokens plus prompt tokens, over all its calls.
    pub input_tokens: Range<u64>,
    /// Assumed output tokens ([`assumed_output_tokens`]), over all its calls.
    pub output_tokens: u64,
    /// No earlier stage filters, so every image reaches it (barring failures); a stage after a
    /// filter may see none.
    pub always_runs: bool,
}

/// The per-stage estimate of running `stages` over images of `sizes`.
pub fn stage_estimates(stages: &[StageSpec], sizes: &[SizeCount]) -> Vec<StageEstimate> {
    let images: u64 = sizes.iter().map(|group| group.images).sum();
    let mut filtered_before = false;
    stages
        .iter()
        .map(|stage| {
            let image = images_tokens(&stage.model, stage.image_detail, sizes);
            let text = prompt_tokens(stage) * images;
            let estimate = StageEstimate {
                calls: images,
                input_tokens: Range {
                    low: image.low + text,
                    high: image.high + text,
                },
                output_tokens: assumed_output_tokens(stage) * images,
                always_runs: !filtered_before,
            };
            filtered_before |= stage.filter.is_some();
            estimate
        })
        .collect()
}

/// The most calls a job makes: every image through every stage (filters can only lower it).
pub fn max_calls(images: u64, stages: usize) -> u64 {
    images * stages as u64
}

/// Call duration assumed when no rate limit is configured, so the budget is what the
/// scheduler's window turns over ([`window_rate`]). Vision calls usually take a few seconds.
pub const ASSUMED_CALL_SECONDS: f64 = 4.0;

/// Calls per minute the scheduler's window allows when Cohere calls are not rate-limited:
/// `window` calls in flight at once, each taking [`ASSUMED_CALL_SECONDS`]. Optimistic when
/// the workers' total concurrency is below the window.
pub fn window_rate(window: u32) -> f64 {
    f64::from(window.max(1)) * 60.0 / ASSUMED_CALL_SECONDS
}

/// The cluster's calls per minute for a job whose stages have these limits (one per stage,
/// `None`: that model is not limited): the tightest limit, since every item passes through
/// it; [`window_rate`] when no stage's model is limited.
pub fn budget_per_minute(limits: impl IntoIterator<Item = Option<u32>>, window: u32) -> f64 {
    limits
        .into_iter()
        .flatten()
        .min()
        .map_or_else(|| window_rate(window), |limit| f64::from(limit.max(1)))
}

/// A tenant's calls per minute: its weight's part of `budget` among the tenants with work
/// (`total_weight`, the tenant's own weight included), capped by its own limit if it has one.
/// A tenant alone gets the whole budget.
pub fn tenant_rate(budget: f64, weight: u32, total_weight: u32, cap: Option<u32>) -> f64 {
    let weight = f64::from(weight.max(1));
    let total = f64::from(total_weight).max(weight);
    let share = budget * weight / total;
    cap.map_or(share, |cap| share.min(f64::from(cap)))
}

/// Seconds to make `calls` calls at `per_minute`, rounded up.
pub fn eta_seconds(calls: u64, per_minute: f64) -> u64 {
    if calls == 0 {
        return 0;
    }
    if !per_minute.is_finite() || per_minute <= 0.0 {
        return u64::MAX;
    }
    (calls as f64 * 60.0 / per_minute).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::DEFAULT_MODEL;

    fn tokens(detail: ImageDetail, width: u32, height: u32) -> u32 {
        image_tokens(DEFAULT_MODEL, detail, width, height)
    }

    #[test]
    fn a_low_detail_image_takes_256_tokens_whatever_its_size() {
        assert_eq!(tokens(ImageDetail::Low, 32, 32), 256);
        assert_eq!(tokens(ImageDetail::Low, 512, 512), 256);
        assert_eq!(tokens(ImageDetail::Low, 10_000, 20_000), 256);
    }

    #[test]
    fn the_documented_example_takes_2304_tokens_at_high_detail() {
        // 10,000 × 20,000 → 1024 × 2048: 2 × 4 tiles + the preview.
        assert_eq!(tokens(ImageDetail::High, 10_000, 20_000), 9 * 256);
        assert_eq!(tokens(ImageDetail::High, 20_000, 10_000), 9 * 256);
    }

    #[test]
    fn high_detail_counts_512_pixel_tiles_plus_a_preview() {
        assert_eq!(tokens(ImageDetail::High, 512, 512), 2 * 256);
        assert_eq!(tokens(ImageDetail::High, 513, 512), 3 * 256);
        assert_eq!(tokens(ImageDetail::High, 513, 513), 5 * 256);
        assert_eq!(tokens(ImageDetail::High, 1, 1), 2 * 256);
        // Small images are not enlarged.
        assert_eq!(tokens(ImageDetail::High, 100, 700), 3 * 256);
        // The largest: 2048 × 1536, 4 × 3 tiles, however large the original.
        assert_eq!(tokens(ImageDetail::High, 2048, 1536), 13 * 256);
        assert_eq!(tokens(ImageDetail::High, 4000, 3000), 13 * 256);
        assert_eq!(tokens(ImageDetail::High, 3000, 4000), 13 * 256);
    }

    #[test]
    fn a_very_long_image_is_shrunk_by_its_long_side() {
        // 3000 × 500 → 2048 × 341: 4 × 1 tiles.
        assert_eq!(tokens(ImageDetail::High, 3000, 500), 5 * 256);
        // 1600 × 1600 → 1536 × 1536 (the short bound): 3 × 3 tiles.
        assert_eq!(tokens(ImageDetail::High, 1600, 1600), 10 * 256);
    }

    #[test]
    fn auto_reads_images_with_a_side_over_768_pixels_at_high_detail() {
        assert_eq!(tokens(ImageDetail::Auto, 768, 768), 256);
        assert_eq!(tokens(ImageDetail::Auto, 451, 300), 256);
        assert_eq!(tokens(ImageDetail::Auto, 769, 100), 3 * 256);
        assert_eq!(
            tokens(ImageDetail::Auto, 1024, 768),
            tokens(ImageDetail::High, 1024, 768)
        );
    }

    #[test]
    fn an_image_of_unknown_size_costs_between_the_least_and_the_most_at_its_detail() {
        let rule = image_token_rule(DEFAULT_MODEL);
        assert_eq!(rule.range(ImageDetail::Low), Range::exact(256));
        assert_eq!(
            rule.range(ImageDetail::High),
            Range {
                low: 512,
                high: 3328
            }
        );
        assert_eq!(
            rule.range(ImageDetail::Auto),
            Range {
                low: 256,
                high: 3328
            }
        );
    }

    #[test]
    fn text_takes_a_token_per_four_characters_rounded_up() {
        assert_eq!(text_tokens(""), 0);
        assert_eq!(text_tokens("abcd"), 1);
        assert_eq!(text_tokens("abcde"), 2);
        assert_eq!(text_tokens("ééé"), 1);
    }

    fn stage(json: serde_json::Value) -> StageSpec {
        serde_json::from_value(json).expect("a stage")
    }

    #[test]
    fn stages_sum_image_and_prompt_tokens_over_the_sizes() {
        let stages = [
            stage(serde_json::json!({
                "name": "detect", "prompt": "Is there an animal?", "system_prompt": "Be brief.",
                "json_schema": {"type": "object", "properties": {"animal": {"type": "boolean"}}, "required": ["animal"]},
                "filter": {"type": "field", "pointer": "/animal", "op": "eq", "value": true}
            })),
            stage(serde_json::json!({
                "name": "describe", "prompt": "Describe it.", "image_detail": "high", "max_tokens": 50
            })),
        ];
        let sizes = [
            SizeCount {
                size: Some((451, 300)),
                images: 2,
            },
            SizeCount {
                size: Some((1024, 1024)),
                images: 1,
            },
            SizeCount {
                size: None,
                images: 1,
            },
        ];
        let estimates = stage_estimates(&stages, &sizes);
        // Stage 0, auto: 451×300 → 256 each; 1024×1024 → high, 2×2+1 tiles; unknown 256..3328.
        // Prompt: "Be brief." 3 + "Is there an animal?" 5 tokens, per image.
        let text = 8 * 4;
        assert_eq!(estimates[0].calls, 4);
        assert_eq!(
            estimates[0].input_tokens,
            Range {
                low: 2 * 256 + 5 * 256 + 256 + text,
                high: 2 * 256 + 5 * 256 + 3328 + text
            }
        );
        assert_eq!(estimates[0].output_tokens, 4 * 300);
        assert!(estimates[0].always_runs);
        // Stage 1, high: 451×300 → 2 tiles each; 1024×1024 → 5; unknown 512..3328.
        let text = 3 * 4;
        assert_eq!(
            estimates[1].input_tokens,
            Range {
                low: 2 * 512 + 5 * 256 + 512 + text,
                high: 2 * 512 + 5 * 256 + 3328 + text
            }
        );
        assert_eq!(estimates[1].output_tokens, 4 * 50);
        assert!(!estimates[1].always_runs, "the first stage filters");
        assert_eq!(max_calls(4, stages.len()), 8);
    }

    #[test]
    fn the_budget_is_the_tightest_limit_or_the_window_turned_over() {
        assert_eq!(budget_per_minute([Some(600), None, Some(300)], 128), 300.0);
        assert_eq!(budget_per_minute([None, None], 128), 128.0 * 60.0 / 4.0);
        assert_eq!(window_rate(128), 1920.0);
    }

    #[test]
    fn a_tenant_gets_its_weight_s_part_capped_by_its_own_limit() {
        // Alone: the whole budget.
        assert_eq!(tenant_rate(600.0, 1, 1, None), 600.0);
        assert_eq!(tenant_rate(600.0, 3, 0, None), 600.0);
        // Two equal tenants, then 3:1.
        assert_eq!(tenant_rate(600.0, 1, 2, None), 300.0);
        assert_eq!(tenant_rate(600.0, 3, 4, None), 450.0);
        assert_eq!(tenant_rate(600.0, 1, 4, None), 150.0);
        // Capped.
        assert_eq!(tenant_rate(600.0, 1, 1, Some(60)), 60.0);
        assert_eq!(tenant_rate(600.0, 1, 2, Some(1000)), 300.0);
    }

    #[test]
    fn the_eta_is_the_calls_over_the_rate_rounded_up() {
        assert_eq!(eta_seconds(0, 0.0), 0);
        assert_eq!(eta_seconds(600, 600.0), 60);
        assert_eq!(eta_seconds(1, 600.0), 1);
        assert_eq!(eta_seconds(10, 0.0), u64::MAX);
    }
}
