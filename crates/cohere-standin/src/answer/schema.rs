//! JSON answers: a value for every part of the request's JSON schema, derived from the seed
//! and the property's path, following the image's label where a name makes that sensible.

use serde_json::{Map, Number, Value};

use super::seed::{derive, fraction, index, word};
use super::vocabulary::{
    ADJECTIVES, ANIMALS, COLOURS, LABELS, PLANTS, VEHICLES, is_label_name, normalise,
};

/// Nesting deeper than this (e.g. a recursive `$ref`) is answered with `null`.
const MAX_DEPTH: usize = 16;

/// `{}` or `true`: no constraint at all.
pub(super) fn is_unconstrained(schema: &Value) -> bool {
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

pub(super) struct Generator<'a> {
    pub(super) root: &'a Value,
    pub(super) seed: [u8; 32],
    pub(super) label: &'static str,
    pub(super) description: &'a str,
}

impl Generator<'_> {
    fn hash(&self, path: &str) -> [u8; 32] {
        derive(&self.seed, path)
    }

    pub(super) fn default_object(&self) -> Value {
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
    pub(super) fn value(&self, schema: &Value, path: &str, name: &str, depth: usize) -> Value {
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

    use crate::answer::{ANIMALS, VEHICLES, answer};

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
}
