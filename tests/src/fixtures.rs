//! Test data: sample images, pipeline definitions, and what the stand-in will answer.

use std::path::PathBuf;

use serde_json::{Value, json};
use uuid::Uuid;

/// Bytes of a sample image under `samples/images/`.
pub fn sample_image(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../samples/images")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `count` distinct valid images: the sample photos, each made unique by trailing bytes
/// (which image decoders ignore and which change the content hash).
pub fn distinct_images(count: usize) -> Vec<(String, Vec<u8>)> {
    const SAMPLES: [&str; 8] = [
        "chelsea.png",
        "coffee.png",
        "astronaut.png",
        "horse.png",
        "camera.png",
        "coins.png",
        "text.png",
        "rocket.jpg",
    ];
    (0..count)
        .map(|i| {
            let name = SAMPLES[i % SAMPLES.len()];
            let mut bytes = sample_image(name);
            bytes.extend_from_slice(format!("#variant-{i}").as_bytes());
            (format!("{i}-{name}"), bytes)
        })
        .collect()
}

/// The `id` field of a JSON object, as a UUID.
pub fn id_of(value: &Value) -> Uuid {
    value["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no id in {value}"))
}

/// A one-stage pipeline definition.
pub fn one_stage() -> Value {
    json!([{ "name": "describe", "prompt": "Describe this image in one sentence." }])
}

/// A two-stage pipeline whose second stage only sees images with an animal.
pub fn two_stages() -> Value {
    json!([
        {
            "name": "detect",
            "prompt": "Is there an animal in this image? Answer as JSON.",
            "json_schema": {
                "type": "object",
                "properties": { "animal": { "type": "boolean" }, "species": { "type": "string" } },
                "required": ["animal"]
            },
            "filter": { "type": "field", "pointer": "/animal", "op": "eq", "value": true }
        },
        { "name": "describe", "prompt": "Describe the animal.", "image_detail": "high", "max_tokens": 300 }
    ])
}

/// Whether the stand-in's answer to the first stage of [`two_stages`] lets `image` pass its
/// filter (`animal == true`): what a test predicts of a two-stage job.
pub fn passes_first_stage(image: &[u8]) -> bool {
    let stages = two_stages();
    let schema = &stages[0]["json_schema"];
    let prompt = stages[0]["prompt"].as_str().expect("a prompt");
    cohere_standin::answer(image, prompt, Some(schema))
        .json
        .expect("a JSON answer")["animal"]
        == json!(true)
}

/// Every sample image of `samples/images`: photos, scans, text, of many sizes.
pub const SAMPLE_IMAGES: [&str; 12] = [
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "horse.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "rocket.jpg",
    "text.png",
];
