//! Prints, as a JSON array on stdout, the `POST /v2/chat` bodies that
//! [`worker::request::build`] builds for two representative stages: a text stage (system
//! prompt, an image with `detail: high`, temperature and max_tokens) and a JSON-schema stage.
//! `scripts/cohere_wire_check.py` validates them against Cohere's OpenAPI description.
//!
//! ```text
//! cargo run -q -p worker --example print_requests > requests.json
//! ```

use std::path::Path;

use anyhow::Context as _;
use domain::{ImageDetail, pipeline::StageSpec};
use serde_json::json;

fn main() -> anyhow::Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/images/chelsea.png");
    let image = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    // As the worker does: the media type comes from the bytes.
    let media_type = domain::sniff(&image)?.mime();

    let text_stage = StageSpec {
        name: "describe".to_owned(),
        model: "command-a-vision-07-2025".to_owned(),
        system_prompt: Some("You are a careful wildlife photographer.".to_owned()),
        prompt: "Describe this image in one sentence.".to_owned(),
        json_schema: None,
        temperature: Some(0.2),
        max_tokens: Some(200),
        image_detail: ImageDetail::High,
        filter: None,
    };
    let json_stage = StageSpec {
        name: "detect-animal".to_owned(),
        model: "command-a-vision-07-2025".to_owned(),
        system_prompt: None,
        prompt: "Is there an animal in this image? Answer in JSON.".to_owned(),
        json_schema: Some(json!({
            "type": "object",
            "properties": {"animal": {"type": "boolean"}},
            "required": ["animal"]
        })),
        temperature: None,
        max_tokens: None,
        image_detail: ImageDetail::Auto,
        filter: None,
    };

    let requests = [
        worker::request::build(&text_stage, media_type, &image),
        worker::request::build(&json_stage, media_type, &image),
    ];
    println!("{}", serde_json::to_string_pretty(&requests)?);
    Ok(())
}
