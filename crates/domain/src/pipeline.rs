//! Pipelines: ordered stages, each one prompt sent with one image to a Cohere vision model.
//!
//! [`PipelineSpec`] is what a user submits and what a job snapshots; [`PipelineSpec::validate`]
//! enforces every rule that can be checked before spending money on Cohere, including Cohere's
//! own rules for structured (JSON) output.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::filter::Filter;
use crate::names::named_enum;
use crate::validation::{ValidationErrors, validate_name};

/// Model used when a stage names none.
pub const DEFAULT_MODEL: &str = "command-a-vision-07-2025";
/// Most stages a pipeline may have.
pub const MAX_STAGES: usize = 10;
/// Longest stage name, in characters (after trimming).
pub const MAX_STAGE_NAME_LEN: usize = 100;
/// Longest model name, in characters.
pub const MAX_MODEL_LEN: usize = 100;
/// Longest prompt or system prompt, in characters.
pub const MAX_PROMPT_LEN: usize = 20_000;
/// Largest `max_tokens` a stage may ask for.
pub const MAX_OUTPUT_TOKENS: u32 = 8192;

fn default_model() -> String {
    DEFAULT_MODEL.to_owned()
}

named_enum! {
    /// How much detail of the image the model looks at (Cohere's `image_url.detail`): `low` is
    /// cheaper and faster, `high` reads small text and details, `auto` lets Cohere pick.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
    pub enum ImageDetail as "image detail" {
        /// Cohere decides from the image size.
        #[default]
        Auto = "auto",
        /// Fewer image tokens.
        Low = "low",
        /// More image tokens, finer detail.
        High = "high",
    }
}

/// One stage: a prompt sent with the image, and an optional filter on the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "name": "detect-animal",
    "prompt": "Is there an animal in this image? Answer in JSON.",
    "json_schema": {
        "type": "object",
        "properties": {"animal": {"type": "boolean"}, "species": {"type": "string"}},
        "required": ["animal"]
    },
    "temperature": 0.0,
    "filter": {"type": "field", "pointer": "/animal", "op": "eq", "value": true}
})))]
pub struct StageSpec {
    /// Unique within the pipeline; 1 to 100 characters.
    #[schema(example = "detect-animal")]
    pub name: String,
    /// Cohere model; letters, digits and `._:-` only.
    #[serde(default = "default_model")]
    #[schema(default = default_model, example = "command-a-vision-07-2025")]
    pub model: String,
    /// Optional system message sent before the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "You are a careful wildlife photographer.")]
    pub system_prompt: Option<String>,
    /// The question asked about each image.
    #[schema(example = "Is there an animal in this image? Answer in JSON.")]
    pub prompt: String,
    /// JSON Schema the answer must follow (Cohere structured output): an object schema with a
    /// non-empty `required` list. Needed for `field` filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub json_schema: Option<Value>,
    /// Sampling temperature, 0.0 to 1.0; Cohere's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0.0, maximum = 1.0, example = 0.0)]
    pub temperature: Option<f64>,
    /// Most tokens the answer may have, 1 to 8192; Cohere's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 8192, example = 200)]
    pub max_tokens: Option<u32>,
    /// How closely the model looks at the image.
    #[serde(default)]
    pub image_detail: ImageDetail,
    /// Only images whose answer passes go on to the next stage; absent means all pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
}

/// An ordered list of 1 to 10 stages; each image goes through them in order until a filter
/// rejects it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "stages": [
        {
            "name": "detect-animal",
            "prompt": "Is there an animal in this image? Answer in JSON.",
            "json_schema": {
                "type": "object",
                "properties": {"animal": {"type": "boolean"}, "species": {"type": "string"}},
                "required": ["animal"]
            },
            "filter": {"type": "field", "pointer": "/animal", "op": "eq", "value": true}
        },
        {
            "name": "describe",
            "prompt": "Describe the animal's pose and surroundings in two sentences.",
            "max_tokens": 300,
            "image_detail": "high"
        }
    ]
})))]
pub struct PipelineSpec {
    /// The stages, run in order.
    pub stages: Vec<StageSpec>,
}

impl PipelineSpec {
    /// Checks every rule and reports all problems at once, with paths relative to the pipeline
    /// body (`/stages`, `/stages/3/prompt`, `/stages/0/json_schema/required`, ...).
    ///
    /// Nest the errors (see [`ValidationErrors::nest`]) when the pipeline sits inside a larger
    /// request body.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::new();
        let count = self.stages.len();
        if count == 0 {
            errs.push("/stages", "a pipeline needs at least one stage");
        } else if count > MAX_STAGES {
            errs.push(
                "/stages",
                format!("a pipeline may have at most {MAX_STAGES} stages (got {count})"),
            );
        }
        let mut first_use: HashMap<&str, usize> = HashMap::new();
        for (i, stage) in self.stages.iter().enumerate() {
            let path = format!("/stages/{i}");
            stage.validate(&path, &mut errs);
            let name = stage.name.trim();
            if name.is_empty() {
                continue;
            }
            if let Some(first) = first_use.get(name) {
                errs.push(
                    format!("{path}/name"),
                    format!("stage name \"{name}\" is already used by stage {first}"),
                );
            } else {
                first_use.insert(name, i);
            }
        }
        errs.into_result()
    }
}

impl StageSpec {
    /// Checks this stage alone (not name uniqueness); `path` is the stage's JSON pointer.
    pub fn validate(&self, path: &str, errs: &mut ValidationErrors) {
        validate_name(
            &format!("{path}/name"),
            &self.name,
            MAX_STAGE_NAME_LEN,
            errs,
        );
        validate_model(&format!("{path}/model"), &self.model, errs);
        validate_prompt(&format!("{path}/prompt"), &self.prompt, errs);
        if let Some(system) = &self.system_prompt {
            // A blank system message is almost surely a mistake and Cohere rejects empty
            // content: better to say so now than to fail every image later.
            validate_prompt(&format!("{path}/system_prompt"), system, errs);
        }
        if let Some(t) = self.temperature
            && !(t.is_finite() && (0.0..=1.0).contains(&t))
        {
            errs.push(format!("{path}/temperature"), "must be between 0.0 and 1.0");
        }
        if let Some(n) = self.max_tokens
            && !(1..=MAX_OUTPUT_TOKENS).contains(&n)
        {
            errs.push(
                format!("{path}/max_tokens"),
                format!("must be between 1 and {MAX_OUTPUT_TOKENS}"),
            );
        }
        let properties = self
            .json_schema
            .as_ref()
            .and_then(|schema| validate_json_schema(&format!("{path}/json_schema"), schema, errs));
        if let Some(filter) = &self.filter {
            let filter_path = format!("{path}/filter");
            filter.validate(&filter_path, errs);
            let checks = filter.field_checks();
            if !checks.is_empty() && self.json_schema.is_none() {
                errs.push(
                    filter_path.as_str(),
                    "a filter on a JSON field needs the stage to set json_schema, so that the \
                     model answers in JSON",
                );
            }
            if let Some(properties) = properties {
                for (pointer_path, pointer) in checks {
                    if let Some(top) = first_segment(pointer)
                        && !properties.contains_key(&top)
                    {
                        errs.push(
                            format!("{filter_path}{pointer_path}"),
                            format!("field \"{top}\" is not among the json_schema properties"),
                        );
                    }
                }
            }
        }
    }
}

fn validate_model(path: &str, model: &str, errs: &mut ValidationErrors) {
    let len = model.chars().count();
    if len == 0 {
        errs.push(path, "must not be empty");
    } else if len > MAX_MODEL_LEN {
        errs.push(
            path,
            format!("must be at most {MAX_MODEL_LEN} characters (got {len})"),
        );
    }
    if !model
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
    {
        errs.push(
            path,
            "may contain only letters, digits, '.', '_', ':' and '-'",
        );
    }
}

fn validate_prompt(path: &str, prompt: &str, errs: &mut ValidationErrors) {
    let len = prompt.chars().count();
    if prompt.trim().is_empty() {
        errs.push(path, "must not be blank");
    } else if len > MAX_PROMPT_LEN {
        errs.push(
            path,
            format!("must be at most {MAX_PROMPT_LEN} characters (got {len})"),
        );
    }
}

/// Checks Cohere's rules for a structured-output schema; returns the declared properties when
/// field names can be checked against them (an object, and no extra properties allowed).
fn validate_json_schema<'a>(
    path: &str,
    schema: &'a Value,
    errs: &mut ValidationErrors,
) -> Option<&'a Map<String, Value>> {
    let Some(schema) = schema.as_object() else {
        errs.push(path, "must be a JSON Schema object");
        return None;
    };
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        errs.push(
            format!("{path}/type"),
            "must be \"object\": Cohere's structured output needs an object at the top level",
        );
    }
    let properties = match schema.get("properties") {
        None => None,
        Some(Value::Object(properties)) => Some(properties),
        Some(_) => {
            errs.push(format!("{path}/properties"), "must be an object");
            None
        }
    };
    match schema.get("required").and_then(Value::as_array) {
        Some(required) if !required.is_empty() => {
            for (i, name) in required.iter().enumerate() {
                match name.as_str() {
                    None => errs.push(format!("{path}/required/{i}"), "must be a string"),
                    Some(name) if properties.is_some_and(|p| !p.contains_key(name)) => errs.push(
                        format!("{path}/required/{i}"),
                        format!("\"{name}\" is not defined in properties"),
                    ),
                    Some(_) => {}
                }
            }
        }
        _ => errs.push(
            format!("{path}/required"),
            "must be a non-empty array of property names: Cohere's structured output needs at \
             least one required property",
        ),
    }
    // With `additionalProperties` allowed, a field outside `properties` is legitimate.
    let closed = !matches!(
        schema.get("additionalProperties"),
        Some(Value::Bool(true) | Value::Object(_))
    );
    properties.filter(|_| closed)
}

/// The first reference token of a JSON pointer, unescaped; `None` for the whole document.
fn first_segment(pointer: &str) -> Option<String> {
    let rest = pointer.strip_prefix('/')?;
    let token = rest.split('/').next().unwrap_or(rest);
    Some(token.replace("~1", "/").replace("~0", "~"))
}

/// A pipeline as it was when a job was submitted. Jobs run from this copy, so later edits
/// to the pipeline never change a job that is already queued or running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineSnapshot {
    /// The pipeline the job was submitted with.
    pub pipeline_id: uuid::Uuid,
    /// The pipeline's name at submission.
    pub name: String,
    /// The pipeline's version at submission.
    pub version: i32,
    /// The stages exactly as they were at submission.
    pub stages: Vec<StageSpec>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn stage() -> Value {
        json!({
            "name": "detect",
            "prompt": "Is there an animal? Answer JSON.",
            "json_schema": {
                "type": "object",
                "properties": {"animal": {"type": "boolean"}, "species": {"type": "string"}},
                "required": ["animal"]
            },
            "filter": {"type": "field", "pointer": "/animal", "op": "eq", "value": true}
        })
    }

    fn pipeline(stages: Vec<Value>) -> PipelineSpec {
        serde_json::from_value(json!({ "stages": stages })).unwrap()
    }

    /// `(path, message)` of every error for a pipeline of the given stages.
    fn errors(stages: Vec<Value>) -> Vec<(String, String)> {
        match pipeline(stages).validate() {
            Ok(()) => Vec::new(),
            Err(errs) => errs.into_iter().map(|e| (e.path, e.message)).collect(),
        }
    }

    /// Renames the stages `s0`, `s1`, ... so that several can sit in one pipeline.
    fn distinct(stages: Vec<Value>) -> Vec<Value> {
        let named = stages.into_iter().enumerate();
        named
            .map(|(i, s)| with(s, "name", json!(format!("s{i}"))))
            .collect()
    }

    fn error_paths(stages: Vec<Value>) -> Vec<String> {
        errors(stages).into_iter().map(|(path, _)| path).collect()
    }

    fn with(mut base: Value, key: &str, value: Value) -> Value {
        base[key] = value;
        base
    }

    #[test]
    fn missing_optional_fields_take_their_defaults() {
        let spec: StageSpec =
            serde_json::from_value(json!({"name": "s", "prompt": "Describe it."})).unwrap();
        assert_eq!(spec.model, DEFAULT_MODEL);
        assert_eq!(spec.image_detail, ImageDetail::Auto);
        assert_eq!(spec.filter, None);
        assert_eq!(
            serde_json::to_value(&spec).unwrap(),
            json!({"name": "s", "model": DEFAULT_MODEL, "prompt": "Describe it.", "image_detail": "auto"})
        );
    }

    #[test]
    fn unknown_fields_are_rejected_when_parsing() {
        let typo = with(stage(), "temprature", json!(0.2));
        assert!(serde_json::from_value::<StageSpec>(typo).is_err());
        let extra = json!({"stages": [stage()], "name": "x"});
        assert!(serde_json::from_value::<PipelineSpec>(extra).is_err());
    }

    #[test]
    fn a_sensible_pipeline_is_valid() {
        let second = json!({
            "name": "describe", "model": "command-a-vision-07-2025:latest",
            "system_prompt": "Be brief.", "prompt": "Describe it.",
            "temperature": 1.0, "max_tokens": 8192, "image_detail": "high",
            "filter": {"type": "regex", "pattern": "(?i)cat"}
        });
        assert_eq!(errors(vec![stage(), second]), []);
    }

    #[test]
    fn the_openapi_example_pipeline_is_valid() {
        let schema =
            serde_json::to_value(<PipelineSpec as utoipa::PartialSchema>::schema()).unwrap();
        let example = schema["examples"][0].clone();
        let spec: PipelineSpec = serde_json::from_value(example).unwrap();
        assert_eq!(spec.validate(), Ok(()));
    }

    #[test]
    fn a_pipeline_needs_between_one_and_ten_stages() {
        assert_eq!(error_paths(vec![]), ["/stages"]);
        let stages = (0..=MAX_STAGES)
            .map(|i| with(stage(), "name", json!(format!("s{i}"))))
            .collect();
        assert_eq!(
            errors(stages),
            [(
                "/stages".to_owned(),
                "a pipeline may have at most 10 stages (got 11)".to_owned()
            )]
        );
    }

    #[test]
    fn stage_names_must_be_unique_after_trimming() {
        let stages = vec![
            stage(),
            with(stage(), "name", json!("other")),
            with(stage(), "name", json!(" detect ")),
        ];
        assert_eq!(
            errors(stages),
            [(
                "/stages/2/name".to_owned(),
                "stage name \"detect\" is already used by stage 0".to_owned()
            )]
        );
    }

    #[test]
    fn stage_names_must_be_non_blank_and_short() {
        let blank = with(stage(), "name", json!("  "));
        let long = with(stage(), "name", json!("n".repeat(MAX_STAGE_NAME_LEN + 1)));
        assert_eq!(
            error_paths(vec![blank, long]),
            ["/stages/0/name", "/stages/1/name"]
        );
    }

    #[test]
    fn models_must_be_plain_identifiers() {
        let ok = with(stage(), "model", json!("c4ai-aya-vision-32b:v1.0_x"));
        assert_eq!(errors(vec![ok]), []);
        for bad in [
            json!(""),
            json!("has space"),
            json!("a/b"),
            json!("m".repeat(MAX_MODEL_LEN + 1)),
        ] {
            assert_eq!(
                error_paths(vec![with(stage(), "model", bad.clone())]),
                ["/stages/0/model"],
                "{bad}"
            );
        }
    }

    #[test]
    fn prompts_must_be_non_blank_and_at_most_twenty_thousand_characters() {
        let blank = with(stage(), "prompt", json!(" \n "));
        let long = with(stage(), "prompt", json!("é".repeat(MAX_PROMPT_LEN + 1)));
        let longest = with(stage(), "prompt", json!("é".repeat(MAX_PROMPT_LEN)));
        assert_eq!(
            error_paths(distinct(vec![blank, long])),
            ["/stages/0/prompt", "/stages/1/prompt"]
        );
        assert_eq!(errors(vec![longest]), []);
    }

    #[test]
    fn system_prompts_must_be_non_blank_and_bounded() {
        let blank = with(stage(), "system_prompt", json!(""));
        let long = with(
            stage(),
            "system_prompt",
            json!("x".repeat(MAX_PROMPT_LEN + 1)),
        );
        assert_eq!(
            error_paths(distinct(vec![blank, long])),
            ["/stages/0/system_prompt", "/stages/1/system_prompt"]
        );
    }

    #[test]
    fn temperature_must_be_between_zero_and_one() {
        for ok in [0.0, 0.3, 1.0] {
            assert_eq!(errors(vec![with(stage(), "temperature", json!(ok))]), []);
        }
        for bad in [-0.1, 1.01] {
            assert_eq!(
                error_paths(vec![with(stage(), "temperature", json!(bad))]),
                ["/stages/0/temperature"]
            );
        }
        let mut nan: StageSpec = serde_json::from_value(stage()).unwrap();
        nan.temperature = Some(f64::NAN);
        assert!(PipelineSpec { stages: vec![nan] }.validate().is_err());
    }

    #[test]
    fn max_tokens_must_be_between_one_and_8192() {
        assert_eq!(
            error_paths(vec![with(stage(), "max_tokens", json!(0))]),
            ["/stages/0/max_tokens"]
        );
        assert_eq!(
            error_paths(vec![with(stage(), "max_tokens", json!(8193))]),
            ["/stages/0/max_tokens"]
        );
        assert_eq!(errors(vec![with(stage(), "max_tokens", json!(1))]), []);
    }

    #[test]
    fn json_schema_must_be_an_object_schema() {
        let not_object = with(stage(), "json_schema", json!(["animal"]));
        let wrong_type = with(
            stage(),
            "json_schema",
            json!({"type": "array", "required": ["animal"]}),
        );
        let paths = error_paths(distinct(vec![
            with(not_object, "filter", Value::Null),
            with(wrong_type, "filter", Value::Null),
        ]));
        assert_eq!(
            paths,
            ["/stages/0/json_schema", "/stages/1/json_schema/type"]
        );
    }

    #[test]
    fn json_schema_needs_a_non_empty_required_list() {
        for required in [json!(null), json!([]), json!("animal")] {
            let mut schema =
                json!({"type": "object", "properties": {"animal": {"type": "boolean"}}});
            if !required.is_null() {
                schema["required"] = required.clone();
            }
            let paths = error_paths(vec![with(stage(), "json_schema", schema)]);
            assert_eq!(paths, ["/stages/0/json_schema/required"], "{required}");
        }
    }

    #[test]
    fn required_names_must_be_strings_defined_in_properties() {
        let schema = json!({
            "type": "object",
            "properties": {"animal": {"type": "boolean"}},
            "required": ["animal", 3, "species"]
        });
        assert_eq!(
            errors(vec![with(stage(), "json_schema", schema)]),
            [
                (
                    "/stages/0/json_schema/required/1".to_owned(),
                    "must be a string".to_owned()
                ),
                (
                    "/stages/0/json_schema/required/2".to_owned(),
                    "\"species\" is not defined in properties".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn required_names_are_free_when_properties_are_absent() {
        let schema = json!({"type": "object", "required": ["animal"]});
        assert_eq!(errors(vec![with(stage(), "json_schema", schema)]), []);
    }

    #[test]
    fn properties_must_be_an_object_when_present() {
        let schema = json!({"type": "object", "properties": [], "required": ["animal"]});
        assert_eq!(
            error_paths(vec![with(stage(), "json_schema", schema)]),
            ["/stages/0/json_schema/properties"]
        );
    }

    #[test]
    fn a_field_filter_needs_a_json_schema() {
        let mut no_schema = stage();
        no_schema.as_object_mut().unwrap().remove("json_schema");
        let errs = errors(vec![no_schema]);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, "/stages/0/filter");
        assert!(errs[0].1.contains("json_schema"), "{}", errs[0].1);
    }

    #[test]
    fn a_regex_filter_does_not_need_a_json_schema() {
        let mut regex = with(
            stage(),
            "filter",
            json!({"type": "regex", "pattern": "cat"}),
        );
        regex.as_object_mut().unwrap().remove("json_schema");
        assert_eq!(errors(vec![regex]), []);
    }

    #[test]
    fn filter_errors_point_into_the_stage_filter() {
        let bad = with(
            stage(),
            "filter",
            json!({"type": "any", "filters": [
                {"type": "regex", "pattern": "("}
            ]}),
        );
        assert_eq!(
            error_paths(vec![bad]),
            ["/stages/0/filter/filters/0/pattern"]
        );
    }

    #[test]
    fn filter_fields_must_be_declared_in_a_closed_schema() {
        let typo = with(
            stage(),
            "filter",
            json!({"type": "not", "filter":
            {"type": "field", "pointer": "/animl", "op": "eq", "value": false}}),
        );
        assert_eq!(
            errors(vec![typo.clone()]),
            [(
                "/stages/0/filter/filter/pointer".to_owned(),
                "field \"animl\" is not among the json_schema properties".to_owned()
            )]
        );
        let mut open = typo;
        open["json_schema"]["additionalProperties"] = json!(true);
        assert_eq!(errors(vec![open]), []);
        let nested = with(
            stage(),
            "filter",
            json!(
            {"type": "field", "pointer": "/species/0", "op": "eq", "value": "c"}),
        );
        assert_eq!(errors(vec![nested]), []);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let bad =
            json!({"name": "", "model": "", "prompt": "", "temperature": 2.0, "max_tokens": 0});
        assert_eq!(
            error_paths(vec![bad]),
            [
                "/stages/0/name",
                "/stages/0/model",
                "/stages/0/prompt",
                "/stages/0/temperature",
                "/stages/0/max_tokens"
            ]
        );
    }

    #[test]
    fn the_schema_describes_json_schema_as_an_object_and_collects_nested_schemas() {
        let schema = serde_json::to_value(<StageSpec as utoipa::PartialSchema>::schema()).unwrap();
        let json_schema = &schema["properties"]["json_schema"];
        assert!(json_schema.to_string().contains("object"), "{json_schema}");
        assert_eq!(schema["properties"]["model"]["default"], DEFAULT_MODEL);
        let mut collected = Vec::new();
        <PipelineSpec as utoipa::ToSchema>::schemas(&mut collected);
        let names: Vec<_> = collected.iter().map(|(name, _)| name.as_str()).collect();
        for expected in ["StageSpec", "ImageDetail", "Filter", "CompareOp"] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
    }
}
