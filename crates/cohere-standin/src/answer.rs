//! The stand-in's "model": a pure function from (image, prompt, schema) to an answer, so that
//! tests anywhere can predict what the server will say.
//!
//! Everything is derived from `seed = sha256(image key)` (or `sha256(prompt)` when there is no
//! image): the image's [label](LABELS), its adjective and colour, and every JSON value
//! (`sha256(seed ‖ 0 ‖ path of the property)`). The prompt only picks the closing sentence of a
//! text answer, so different prompts about one image agree about what it shows.

use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

/// Every label an image can get. An image's label is `LABELS[seed % len]`, except for the
/// project's sample images (`samples/images/`), which get their true label.
pub const LABELS: &[&str] = &[
    "cat",
    "dog",
    "horse",
    "bird",
    "fish",
    "person",
    "car",
    "bicycle",
    "boat",
    "rocket",
    "building",
    "brick wall",
    "tree",
    "flower",
    "grass",
    "landscape",
    "coffee cup",
    "coin",
    "galaxy",
    "text document",
    "retina",
];

/// Labels that are animals (a boolean property named `animal`, `is_animal`, `has_animal`,
/// `contains_animals`... is true exactly for these).
pub const ANIMALS: &[&str] = &["cat", "dog", "horse", "bird", "fish"];

/// Labels that are vehicles (for boolean properties named like `vehicle`).
pub const VEHICLES: &[&str] = &["car", "bicycle", "boat", "rocket"];

/// Labels that are plants (for boolean properties named like `plant`).
pub const PLANTS: &[&str] = &["tree", "flower", "grass"];

const ADJECTIVES: &[&str] = &[
    "bright",
    "dark",
    "sharp",
    "slightly blurred",
    "colourful",
    "muted",
    "close-up",
    "distant",
];

const COLOURS: &[&str] = &[
    "red", "orange", "yellow", "green", "blue", "purple", "brown", "grey", "black", "white",
];

const CLOSING: &[&str] = &[
    "The lighting is even and the subject is in focus.",
    "The background is slightly out of focus.",
    "The picture appears to have been taken outdoors.",
    "The picture appears to have been taken indoors.",
    "The composition is centred on the subject.",
    "Nothing else in the frame draws attention.",
];

/// The sample images under `samples/images/` (by sha256 of their bytes), with what they show.
const SAMPLES: &[(&str, &str, &str)] = &[
    (
        "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        "person",
        "white",
    ),
    (
        "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
        "brick wall",
        "grey",
    ),
    (
        "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
        "person",
        "grey",
    ),
    (
        "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
        "cat",
        "brown",
    ),
    (
        "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
        "coffee cup",
        "brown",
    ),
    (
        "f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba",
        "coin",
        "grey",
    ),
    (
        "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
        "grass",
        "grey",
    ),
    (
        "c7fb60789fe394c485f842291ea3b21e50d140f39d6dcb5fb9917cc178225455",
        "horse",
        "black",
    ),
    (
        "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
        "galaxy",
        "black",
    ),
    (
        "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6",
        "retina",
        "red",
    ),
    (
        "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
        "rocket",
        "blue",
    ),
    (
        "bd84aa3a6e3c9887850d45d606c96b2e59433fbef50338570b63c319e668e6d1",
        "text document",
        "grey",
    ),
];

/// Nesting deeper than this (e.g. a recursive `$ref`) is answered with `null`.
const MAX_DEPTH: usize = 16;

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

/// The key of a request with several images: the concatenated sha256 digests of each image's
/// key (bytes or URL). One image's key is the image itself; no images give an empty key.
pub fn image_key(images: &[&[u8]]) -> Vec<u8> {
    match images {
        [] => Vec::new(),
        [one] => one.to_vec(),
        many => many.iter().flat_map(|image| sha256(image)).collect(),
    }
}

/// Hex sha256, the form used by `/admin/calls` and `reject_images`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha256(bytes))
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A value for `path`, independent of every other path.
fn derive(seed: &[u8; 32], path: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(seed);
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.finalize().into()
}

fn word(hash: &[u8; 32]) -> u64 {
    let mut bytes = [0_u8; 8];
    bytes.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(bytes)
}

fn index(hash: &[u8; 32], len: usize) -> usize {
    (word(hash) % len.max(1) as u64) as usize
}

/// A fraction in `[0, 1)`.
fn fraction(hash: &[u8; 32]) -> f64 {
    (word(hash) >> 11) as f64 / (1_u64 << 53) as f64
}

fn identify(seed: &[u8; 32]) -> (&'static str, &'static str) {
    let hex = hex::encode(seed);
    if let Some((_, label, colour)) = SAMPLES.iter().find(|(sha, _, _)| *sha == hex) {
        return (label, colour);
    }
    (
        LABELS[index(seed, LABELS.len())],
        COLOURS[index(&derive(seed, "#colour"), COLOURS.len())],
    )
}

fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// `{}` or `true`: no constraint at all.
fn is_unconstrained(schema: &Value) -> bool {
    match schema {
        Value::Bool(true) => true,
        Value::Object(map) => map.keys().all(|key| {
            matches!(
                key.as_str(),
                "$schema" | "title" | "description" | "$id" | "$comment"
            )
        }),
        _ => false,
    }
}

/// Lower case, words separated by one space, prefixes such as `is_`/`has_` and a plural `s`
/// removed: `"containsAnimals"` and `"has_animal"` both give `"animal"`.
fn normalise(name: &str) -> String {
    let mut spaced = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            spaced.push(' ');
        }
        if c == '_' || c == '-' {
            spaced.push(' ');
        } else {
            spaced.extend(c.to_lowercase());
        }
    }
    let words: Vec<&str> = spaced.split_whitespace().collect();
    let words = match words.as_slice() {
        ["is" | "has" | "contains" | "shows" | "depicts", rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    let words = match words {
        ["a" | "an", rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    let joined = words.join(" ");
    match joined.strip_suffix('s') {
        Some(singular) if !singular.is_empty() && !joined.ends_with("ss") => singular.to_owned(),
        _ => joined,
    }
}

struct Generator<'a> {
    root: &'a Value,
    seed: [u8; 32],
    label: &'static str,
    description: &'a str,
}

impl Generator<'_> {
    fn hash(&self, path: &str) -> [u8; 32] {
        derive(&self.seed, path)
    }

    fn default_object(&self) -> Value {
        let mut map = Map::new();
        map.insert("label".into(), Value::from(self.label));
        map.insert("description".into(), Value::from(self.description));
        map.insert(
            "confidence".into(),
            number(round2(0.5 + fraction(&self.hash("/confidence")) * 0.5)),
        );
        Value::Object(map)
    }

    /// A value for `schema` at `path` (JSON-pointer-like); `name` is the property's name.
    fn value(&self, schema: &Value, path: &str, name: &str, depth: usize) -> Value {
        let Some(object) = schema.as_object() else {
            return self.string(&Map::new(), path, name);
        };
        if depth > MAX_DEPTH {
            return Value::Null;
        }
        if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
            return match reference
                .strip_prefix('#')
                .and_then(|pointer| self.root.pointer(pointer))
            {
                Some(target) => self.value(target, path, name, depth + 1),
                None => Value::Null,
            };
        }
        if let Some(constant) = object.get("const") {
            return constant.clone();
        }
        if let Some(options) = object.get("enum").and_then(Value::as_array)
            && !options.is_empty()
        {
            return self.pick_enum(options, path, name);
        }
        for combinator in ["anyOf", "oneOf", "allOf"] {
            if let Some(branches) = object.get(combinator).and_then(Value::as_array) {
                let branch = branches
                    .iter()
                    .find(|branch| branch.get("type").and_then(Value::as_str) != Some("null"))
                    .or(branches.first());
                if let Some(branch) = branch {
                    return self.value(branch, path, name, depth + 1);
                }
            }
        }
        match schema_type(object) {
            "object" => self.object(object, path, depth),
            "array" => self.array(object, path, name, depth),
            "boolean" => Value::Bool(self.boolean(path, name)),
            "integer" => self.integer(object, path),
            "number" => self.number(object, path),
            "null" => Value::Null,
            _ => self.string(object, path, name),
        }
    }

    fn object(&self, object: &Map<String, Value>, path: &str, depth: usize) -> Value {
        // A free-form object: answer like JSON mode without a schema.
        if !object.contains_key("properties")
            && !object.contains_key("required")
            && object.get("additionalProperties") != Some(&Value::Bool(false))
        {
            return self.default_object();
        }
        let mut out = Map::new();
        if let Some(properties) = object.get("properties").and_then(Value::as_object) {
            for (key, schema) in properties {
                let child = format!("{path}/{key}");
                out.insert(key.clone(), self.value(schema, &child, key, depth + 1));
            }
        }
        // A required name without a schema still gets a value.
        for key in object
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !out.contains_key(key) {
                let child = format!("{path}/{key}");
                out.insert(key.to_owned(), self.string(&Map::new(), &child, key));
            }
        }
        Value::Object(out)
    }

    fn array(&self, object: &Map<String, Value>, path: &str, name: &str, depth: usize) -> Value {
        let min = object.get("minItems").and_then(Value::as_u64).unwrap_or(0);
        let max = object
            .get("maxItems")
            .and_then(Value::as_u64)
            .unwrap_or(u64::MAX)
            .clamp(min, min.saturating_add(3));
        let count = min + word(&self.hash(&format!("{path}#count"))) % (max - min + 1);
        let count = usize::try_from(count).unwrap_or(0);
        let empty = Map::new();
        let items = object
            .get("items")
            .and_then(Value::as_object)
            .unwrap_or(&empty);

        // Enums: distinct values, starting at a seed-chosen one (uniqueItems holds if it can).
        if let Some(options) = items.get("enum").and_then(Value::as_array)
            && !options.is_empty()
        {
            let start = index(&self.hash(path), options.len());
            let labelled = options.iter().position(|option| self.is_label(option));
            let start = match labelled {
                Some(at) if is_label_name(name) => at,
                _ => start,
            };
            return Value::Array(
                (0..count)
                    .map(|i| options[(start + i) % options.len()].clone())
                    .collect(),
            );
        }
        // Label lists: the image's label first, then other distinct labels.
        if is_label_name(name) && schema_type(items) == "string" && !items.contains_key("$ref") {
            let start = LABELS.iter().position(|l| *l == self.label).unwrap_or(0);
            let step = 1 + index(&self.hash(path), LABELS.len() - 1);
            return Value::Array(
                (0..count.min(LABELS.len()))
                    .map(|i| Value::from(LABELS[(start + i * step) % LABELS.len()]))
                    .collect(),
            );
        }
        let items = object.get("items").unwrap_or(&Value::Bool(true));
        Value::Array(
            (0..count)
                .map(|i| self.value(items, &format!("{path}/{i}"), name, depth + 1))
                .collect(),
        )
    }

    fn is_label(&self, option: &Value) -> bool {
        option
            .as_str()
            .is_some_and(|option| option.eq_ignore_ascii_case(self.label))
    }

    fn pick_enum(&self, options: &[Value], path: &str, name: &str) -> Value {
        if is_label_name(name)
            && let Some(option) = options.iter().find(|option| self.is_label(option))
        {
            return option.clone();
        }
        if options.iter().all(Value::is_boolean)
            && let Some(truth) = self.known_boolean(name)
        {
            return Value::Bool(truth);
        }
        options[index(&self.hash(path), options.len())].clone()
    }

    /// True/false for names that are a label or a group of labels; `None` for other names.
    fn known_boolean(&self, name: &str) -> Option<bool> {
        let name = normalise(name);
        let group: &[&str] = match name.as_str() {
            "animal" | "pet" => ANIMALS,
            "vehicle" => VEHICLES,
            "plant" => PLANTS,
            "person" | "people" | "human" | "face" => &["person"],
            "text" => &["text document"],
            _ => {
                return LABELS
                    .iter()
                    .find(|label| **label == name)
                    .map(|label| *label == self.label);
            }
        };
        Some(group.contains(&self.label))
    }

    fn boolean(&self, path: &str, name: &str) -> bool {
        self.known_boolean(name)
            .unwrap_or_else(|| self.hash(path)[0] & 1 == 1)
    }

    fn integer(&self, object: &Map<String, Value>, path: &str) -> Value {
        let bound = |key: &str| object.get(key).and_then(Value::as_f64);
        let low = match (bound("minimum"), bound("exclusiveMinimum")) {
            (Some(min), _) => Some(min.ceil()),
            (None, Some(min)) => Some(min.floor() + 1.0),
            (None, None) => None,
        };
        let high = match (bound("maximum"), bound("exclusiveMaximum")) {
            (Some(max), _) => Some(max.floor()),
            (None, Some(max)) => Some(max.ceil() - 1.0),
            (None, None) => None,
        };
        let (low, high) = match (low, high) {
            (Some(low), Some(high)) => (low, high.max(low)),
            (Some(low), None) => (low, low + 100.0),
            (None, Some(high)) => ((high - 100.0).max(0.0).min(high), high),
            (None, None) => (0.0, 100.0),
        };
        // Schemas bound integers well within i64; clamp anyway.
        let low = low.clamp(-1e15, 1e15) as i64;
        let high = high.clamp(-1e15, 1e15) as i64;
        let span = (high - low) as u64 + 1;
        let value = low + (word(&self.hash(path)) % span) as i64;
        Value::from(value)
    }

    fn number(&self, object: &Map<String, Value>, path: &str) -> Value {
        let bound = |key: &str| object.get(key).and_then(Value::as_f64);
        let low = bound("minimum").or(bound("exclusiveMinimum"));
        let high = bound("maximum").or(bound("exclusiveMaximum"));
        let (low, high) = match (low, high) {
            (Some(low), Some(high)) => (low, high.max(low)),
            (Some(low), None) => (low, low + 1.0),
            (None, Some(high)) => (high - 1.0, high),
            (None, None) => (0.0, 1.0),
        };
        let exact = low + fraction(&self.hash(path)) * (high - low);
        // Prefer a tidy two-decimal value when it keeps within the bounds.
        let tidy = round2(exact);
        let within = |v: f64| {
            v >= low
                && v <= high
                && bound("exclusiveMinimum").is_none_or(|min| v > min)
                && bound("exclusiveMaximum").is_none_or(|max| v < max)
        };
        let value = if within(tidy) {
            tidy
        } else if within(exact) {
            exact
        } else {
            (low + high) / 2.0
        };
        number(value)
    }

    fn string(&self, object: &Map<String, Value>, path: &str, name: &str) -> Value {
        let hash = self.hash(path);
        let base = match object.get("format").and_then(Value::as_str) {
            Some("date-time") => format!(
                "2025-{:02}-{:02}T{:02}:{:02}:00Z",
                1 + hash[0] % 12,
                1 + hash[1] % 28,
                hash[2] % 24,
                hash[3] % 60
            ),
            Some("date") => format!("2025-{:02}-{:02}", 1 + hash[0] % 12, 1 + hash[1] % 28),
            Some("uri" | "url") => format!("https://example.com/{}", &hex::encode(hash)[..12]),
            Some("email") => format!("{}@example.com", &hex::encode(hash)[..8]),
            Some("uuid") => {
                let hex = hex::encode(hash);
                format!(
                    "{}-{}-4{}-8{}-{}",
                    &hex[..8],
                    &hex[8..12],
                    &hex[13..16],
                    &hex[17..20],
                    &hex[20..32]
                )
            }
            _ => match normalise(name).as_str() {
                "label" | "category" | "class" | "object" | "subject" | "main object"
                | "main subject" | "tag" | "name" => self.label.to_owned(),
                "description" | "caption" | "summary" | "text" | "answer" | "explanation"
                | "reason" | "reasoning" => self.description.to_owned(),
                "colour" | "color" | "dominant colour" | "dominant color" => {
                    COLOURS[index(&hash, COLOURS.len())].to_owned()
                }
                _ => format!(
                    "{} {}",
                    ADJECTIVES[index(&hash, ADJECTIVES.len())],
                    self.label
                ),
            },
        };
        let min = object.get("minLength").and_then(Value::as_u64).unwrap_or(0);
        let max = object
            .get("maxLength")
            .and_then(Value::as_u64)
            .unwrap_or(u64::MAX);
        let min = usize::try_from(min).unwrap_or(usize::MAX);
        let max = usize::try_from(max).unwrap_or(usize::MAX).max(min);
        let mut text: String = base.chars().take(max).collect();
        let length = text.chars().count();
        if length < min {
            text.extend(std::iter::repeat_n('.', min - length));
        }
        Value::String(text)
    }
}

/// Names under which a string (or string array) holds the image's label(s).
fn is_label_name(name: &str) -> bool {
    matches!(
        normalise(name).as_str(),
        "label" | "category" | "categorie" | "class" | "classe" | "object" | "subject" | "tag"
    )
}

/// The schema's type: the first non-`null` entry of `type`, else guessed from its keywords.
fn schema_type(object: &Map<String, Value>) -> &str {
    match object.get("type") {
        Some(Value::String(kind)) => kind,
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|kind| *kind != "null")
            .or_else(|| kinds.iter().filter_map(Value::as_str).next())
            .unwrap_or("string"),
        _ if object.contains_key("properties") => "object",
        _ if object.contains_key("items") => "array",
        _ => "string",
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn number(value: f64) -> Value {
    Number::from_f64(value).map_or(Value::Null, Value::Number)
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

    #[test]
    fn booleans_named_after_a_group_agree_with_the_label() {
        let schema = json!({
            "type": "object",
            "properties": {
                "animal": {"type": "boolean"},
                "is_vehicle": {"type": "boolean"},
                "containsCat": {"type": "boolean"},
                "label": {"type": "string"}
            }
        });
        for i in 0..50_u32 {
            let answer = answer(&i.to_le_bytes(), "", Some(&schema));
            let json = answer.json.unwrap();
            assert_eq!(json["label"], answer.label);
            assert_eq!(json["animal"], ANIMALS.contains(&answer.label));
            assert_eq!(json["is_vehicle"], VEHICLES.contains(&answer.label));
            assert_eq!(json["containsCat"], answer.label == "cat");
        }
    }

    #[test]
    fn numbers_and_integers_stay_within_their_bounds() {
        let schema = json!({
            "type": "object",
            "properties": {
                "score": {"type": "number", "minimum": 0.25, "maximum": 0.26},
                "open": {"type": "number", "exclusiveMinimum": 1, "exclusiveMaximum": 1.001},
                "count": {"type": "integer", "minimum": 3, "maximum": 5},
                "positive": {"type": "integer", "exclusiveMinimum": 0, "maximum": 1}
            }
        });
        for i in 0..100_u32 {
            let json = answer(&i.to_le_bytes(), "", Some(&schema)).json.unwrap();
            let score = json["score"].as_f64().unwrap();
            assert!((0.25..=0.26).contains(&score), "{score}");
            let open = json["open"].as_f64().unwrap();
            assert!(open > 1.0 && open < 1.001, "{open}");
            let count = json["count"].as_i64().unwrap();
            assert!((3..=5).contains(&count), "{count}");
            assert_eq!(json["positive"], 1);
        }
    }

    #[test]
    fn arrays_strings_enums_refs_and_nullable_types_follow_the_schema() {
        let schema = json!({
            "type": "object",
            "$defs": {"box": {"type": "object", "required": ["w"], "properties": {"w": {"type": "integer"}}}},
            "properties": {
                "labels": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                "colours": {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "minItems": 3, "maxItems": 3},
                "boxes": {"type": "array", "items": {"$ref": "#/$defs/box"}, "minItems": 1},
                "short": {"type": "string", "maxLength": 3},
                "long": {"type": "string", "minLength": 200},
                "mood": {"type": "string", "enum": ["happy", "sad"]},
                "maybe": {"type": ["integer", "null"], "minimum": 7, "maximum": 7},
                "fixed": {"const": 42},
                "either": {"anyOf": [{"type": "null"}, {"type": "boolean"}]}
            },
            "required": ["labels", "extra"]
        });
        let answer = answer(b"some image", "", Some(&schema));
        let json = answer.json.unwrap();
        let labels = json["labels"].as_array().unwrap();
        assert!(labels.len() >= 2 && labels.len() <= 5);
        assert_eq!(labels[0], answer.label);
        let mut colours: Vec<_> = json["colours"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        colours.sort_unstable();
        assert_eq!(colours, ["blue", "green", "red"]);
        assert!(!json["boxes"].as_array().unwrap().is_empty());
        assert!(json["boxes"][0]["w"].is_i64());
        assert!(json["short"].as_str().unwrap().chars().count() <= 3);
        assert!(json["long"].as_str().unwrap().chars().count() >= 200);
        assert!(["happy", "sad"].contains(&json["mood"].as_str().unwrap()));
        assert_eq!(json["maybe"], 7);
        assert_eq!(json["fixed"], 42);
        assert!(json["either"].is_boolean());
        assert!(json["extra"].is_string());
        assert_eq!(answer.text, json.to_string());
    }

    #[test]
    fn json_mode_without_a_schema_gives_label_description_and_confidence() {
        let json = answer(b"x", "", Some(&json!({}))).json.unwrap();
        assert!(json["label"].is_string());
        assert!(json["description"].is_string());
        assert!(json["confidence"].is_f64());
    }

    #[test]
    fn a_recursive_schema_does_not_overflow_the_stack() {
        let schema = json!({
            "type": "object",
            "properties": {"child": {"$ref": "#"}},
        });
        let json = answer(b"x", "", Some(&schema)).json.unwrap();
        assert!(json["child"].is_object());
    }

    #[test]
    fn names_are_normalised_before_matching() {
        assert_eq!(normalise("has_animals"), "animal");
        assert_eq!(normalise("containsAnimal"), "animal");
        assert_eq!(normalise("is_a_cat"), "cat");
        assert_eq!(normalise("glass"), "glass");
        assert_eq!(normalise("label"), "label");
    }

    #[test]
    fn several_images_are_keyed_by_their_digests_in_order() {
        assert_eq!(image_key(&[]), Vec::<u8>::new());
        assert_eq!(image_key(&[b"a"]), b"a".to_vec());
        let key = image_key(&[b"a", b"b"]);
        assert_eq!(key.len(), 64);
        assert_ne!(key, image_key(&[b"b", b"a"]));
    }
}
