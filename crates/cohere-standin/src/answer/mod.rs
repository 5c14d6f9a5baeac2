//! The stand-in's "model": a pure function from (image, prompt, schema) to an answer, so that
//! tests anywhere can predict what the server will say.
//!
//! Everything is derived from `seed = sha256(image key)` (or `sha256(prompt)` when there is no
//! image): the image's [label](LABELS), its adjective and colour, and every JSON value
//! (`sha256(seed ‖ 0 ‖ path of the property)`). The prompt only picks the closing sentence of a
//! text answer, so different prompts about one image agree about what it shows.

mod schema;
mod seed;
mod vocabulary;

use serde_json::Value;

use schema::{Generator, is_unconstrained};
use seed::{derive, index, sha256};
pub use seed::{image_key, sha256_hex};
use vocabulary::{ADJECTIVES, CLOSING, identify};
pub use vocabulary::{ANIMALS, LABELS, PLANTS, VEHICLES};

/// What the stand-in answers; see [`answer`].
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The image's label (one of [`LABELS`]); a text answer always contains it.
    pub label: &'static str,
    /// The message text: prose, or the JSON document when a schema was given.
    pub text: String,
    /// The JSON document when a schema was given (`text` is its serialization).
    pub json: Option<Value>,
}

/// The answer the stand-in gives for one request.
///
/// - `image_key`: the image's bytes (decoded from its data URI), or the URL string's bytes for
///   an `https` image; for several images, [`image_key`] of them; for none, empty (the seed is
///   then the prompt).
/// - `prompt`: the text of the system and user messages, in order, joined with `"\n"`.
/// - `schema`: `None` for a text answer; `Some(json_schema)` for `response_format`
///   `json_object` (`Some(&json!({}))` when no schema was given). A schema without
///   constraints, or an object schema without `properties` (`{"type": "object"}`), yields
///   `{"label", "description", "confidence"}`.
///
/// JSON answers follow the schema: every property of every object is present (so `required`
/// ones are), `enum`/`const` values are respected, integers and numbers stay within
/// `minimum`/`maximum` (exclusive bounds too), arrays hold between `minItems` and `maxItems`
/// items (at most `minItems + 3`), strings respect `minLength`/`maxLength`; local `$ref`s,
/// `anyOf`/`oneOf` (first branch) and nullable types (`["string", "null"]`) are understood.
/// Values follow the image's label where a name makes that sensible: a string named `label`,
/// `category`, `class`, `object` or `subject` is the label, a `labels`/`tags`/`objects` string
/// array starts with it, `description`/`caption`/`summary` is the prose description, and a
/// boolean named after a label or a group (`animal`, `is_cat`, `has_vehicle`, `contains_plants`,
/// `person`...) is true exactly when the label belongs to it. Anything else is derived from the
/// seed and the property's path.
pub fn answer(image_key: &[u8], prompt: &str, schema: Option<&Value>) -> Answer {
    let seed = if image_key.is_empty() {
        sha256(prompt.as_bytes())
    } else {
        sha256(image_key)
    };
    let (label, colour) = identify(&seed);
    let adjective = ADJECTIVES[index(&derive(&seed, "#adjective"), ADJECTIVES.len())];
    let others = derive(&seed, "#objects")[0] % 5;
    let description = format!(
        "The image shows {} {adjective} {label}, mostly in {colour} tones, with {others} other \
         object{} in view.",
        article(adjective),
        if others == 1 { "" } else { "s" },
    );
    match schema {
        None => {
            let mut closing_seed = seed.to_vec();
            closing_seed.extend_from_slice(prompt.as_bytes());
            let closing = CLOSING[index(&sha256(&closing_seed), CLOSING.len())];
            Answer {
                label,
                text: format!("{description} {closing}"),
                json: None,
            }
        }
        Some(schema) => {
            let generator = Generator {
                root: schema,
                seed,
                label,
                description: &description,
            };
            let json = if is_unconstrained(schema) {
                generator.default_object()
            } else {
                generator.value(schema, "", "", 0)
            };
            Answer {
                label,
                text: json.to_string(),
                json: Some(json),
            }
        }
    }
}

fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn the_same_input_always_gives_the_same_answer() {
        let schema = json!({"type": "object", "properties": {"x": {"type": "number"}}});
        assert_eq!(
            answer(b"image", "prompt", Some(&schema)),
            answer(b"image", "prompt", Some(&schema))
        );
        assert_eq!(answer(b"image", "p", None), answer(b"image", "p", None));
    }

    #[test]
    fn the_label_depends_on_the_image_and_not_on_the_prompt() {
        let one = answer(b"image", "What is this?", None);
        let other = answer(b"image", "Describe the picture", None);
        assert_eq!(one.label, other.label);
        assert!(one.text.contains(one.label));
    }

    #[test]
    fn labels_are_spread_over_many_images() {
        let labels: std::collections::HashSet<_> = (0..200_u32)
            .map(|i| answer(&i.to_le_bytes(), "", None).label)
            .collect();
        assert!(labels.len() > LABELS.len() / 2, "{labels:?}");
    }

    #[test]
    fn a_sample_image_gets_its_true_label() {
        let chelsea = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../samples/images/chelsea.png"
        ))
        .unwrap();
        let answer = answer(&chelsea, "What animal is this?", None);
        assert_eq!(answer.label, "cat");
        assert!(answer.text.contains("cat"), "{}", answer.text);
    }
}
