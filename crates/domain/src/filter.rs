//! A stage's output filter: which images go on to the next stage.
//!
//! A [`Filter`] is what users write and what is stored with a pipeline. Before use it is
//! [compiled](Filter::compile) once into a [`CompiledFilter`] (regexes built, limits checked),
//! which is then [evaluated](CompiledFilter::evaluate) against each model output.
//!
//! # Semantics
//!
//! Every check has three possible outcomes: it holds, it does not hold, or it *cannot be
//! judged* because the output is malformed for it: the output is not JSON, the field is
//! missing, or the field and value are of kinds the operator cannot compare (`gt` between a
//! string and a number, `contains` on a number). A check that cannot be judged is *unknown*,
//! like SQL's `NULL`:
//!
//! - an unknown result never passes, and `not` of an unknown is still unknown, so a malformed
//!   output is **rejected** rather than inverted into a pass by `not`;
//! - `all` fails as soon as one child fails, else is unknown if any child is unknown;
//! - `any` passes as soon as one child passes, else is unknown if any child is unknown.
//!
//! A rejected [`FilterVerdict`] always carries a reason a user can read.

use std::cmp::Ordering;
use std::fmt;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::validation::ValidationErrors;

/// Deepest allowed nesting of filters (a single check has depth 1).
pub const MAX_FILTER_DEPTH: usize = 8;
/// Most children an `all` or `any` filter may have.
pub const MAX_FILTER_CHILDREN: usize = 20;
/// Longest regex pattern, in characters.
pub const MAX_REGEX_LEN: usize = 1000;
/// Compiled-size limit for one regex, so a pattern like `\w{1000}{1000}` cannot exhaust memory.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How a [`Filter::Field`] check compares the field with its `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CompareOp {
    /// Equal as JSON values; numbers compare numerically (`1 == 1.0`).
    Eq,
    /// Not equal (see `eq`).
    Ne,
    /// Equal to one of the elements of `value`, which must be an array.
    In,
    /// Greater than: two numbers numerically, or two strings lexicographically.
    Gt,
    /// Greater than or equal (see `gt`).
    Gte,
    /// Less than (see `gt`).
    Lt,
    /// Less than or equal (see `gt`).
    Lte,
    /// A string field contains the string `value`, or an array field has an element equal to it.
    Contains,
}

impl CompareOp {
    /// The wire name, e.g. `"gte"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::In => "in",
            Self::Gt => "gt",
            Self::Gte => "gte",
            Self::Lt => "lt",
            Self::Lte => "lte",
            Self::Contains => "contains",
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A condition on a stage's output; only images whose output passes go on.
///
/// On the wire it is a JSON object tagged by `type`; see the module docs for how malformed
/// outputs are treated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[schema(examples(
    json!({"type": "field", "pointer": "/animal", "op": "eq", "value": true}),
    json!({"type": "all", "filters": [
        {"type": "field", "pointer": "/label", "op": "in", "value": ["cat", "lion"]},
        {"type": "not", "filter": {"type": "regex", "pattern": "(?i)\\bcartoon\\b"}}
    ]})
))]
pub enum Filter {
    /// Compares one field of the stage's JSON output with `value`.
    Field {
        /// JSON pointer (RFC 6901) to the field, e.g. `/label` or `/boxes/0/score`;
        /// `""` is the whole output.
        #[schema(example = "/label")]
        pointer: String,
        /// How to compare.
        op: CompareOp,
        /// The value to compare with: any JSON value (an array for `in`).
        value: Value,
    },
    /// Matches a regular expression (Rust `regex` syntax) anywhere in the stage's text output.
    Regex {
        /// The pattern; use `(?i)` for case-insensitive matching.
        #[schema(example = "(?i)\\bcat\\b")]
        pattern: String,
    },
    /// Passes when every child passes.
    All {
        /// 1 to 20 child filters.
        #[schema(no_recursion)]
        filters: Vec<Filter>,
    },
    /// Passes when at least one child passes.
    Any {
        /// 1 to 20 child filters.
        #[schema(no_recursion)]
        filters: Vec<Filter>,
    },
    /// Passes when the child fails; a malformed output still fails (it is not inverted).
    Not {
        /// The filter to invert.
        #[schema(no_recursion)]
        filter: Box<Filter>,
    },
}

/// What a filter is evaluated against: one stage's output for one image.
#[derive(Debug, Clone, Copy)]
pub struct StageOutput<'a> {
    /// The model's text answer.
    pub text: &'a str,
    /// The answer parsed as JSON (see [`parse_json_output`]); `None` when it is not JSON.
    pub json: Option<&'a Value>,
}

/// The outcome of a filter on one output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FilterVerdict {
    /// Whether the image goes on to the next stage.
    pub passed: bool,
    /// Why the image was rejected; `None` when it passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "/score 0.4 is not gt 0.5")]
    pub reason: Option<String>,
}

impl FilterVerdict {
    /// A pass, e.g. for a stage without a filter.
    pub fn pass() -> Self {
        Self {
            passed: true,
            reason: None,
        }
    }

    /// A rejection with a reason the user can read.
    pub fn reject(reason: impl Into<String>) -> Self {
        Self {
            passed: false,
            reason: Some(reason.into()),
        }
    }
}

/// A filter that failed validation; paths are relative to the filter itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter: {0}")]
pub struct FilterError(pub ValidationErrors);

/// A validated filter with its regexes built, ready to evaluate many outputs.
#[derive(Debug, Clone)]
pub struct CompiledFilter(Node);

#[derive(Debug, Clone)]
enum Node {
    Field {
        pointer: String,
        op: CompareOp,
        value: Value,
    },
    Regex(Regex),
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
}

impl Filter {
    /// Records every problem with this filter in `errs`, with paths under `path` (the filter's
    /// own JSON pointer in the request body, e.g. `/stages/0/filter`).
    pub fn validate(&self, path: &str, errs: &mut ValidationErrors) {
        // Validation and compilation share one walk so they can never disagree.
        let _ = self.build(path, 1, errs);
    }

    /// Validates the filter and builds its regexes once.
    pub fn compile(&self) -> Result<CompiledFilter, FilterError> {
        let mut errs = ValidationErrors::new();
        match self.build("", 1, &mut errs) {
            Some(node) if errs.is_empty() => Ok(CompiledFilter(node)),
            _ => Err(FilterError(errs)),
        }
    }

    /// Whether any check in this filter reads a JSON field (so the stage must produce JSON).
    pub fn uses_field(&self) -> bool {
        !self.field_pointers().is_empty()
    }

    /// The JSON pointers of every `field` check in this filter, in order.
    pub fn field_pointers(&self) -> Vec<&str> {
        self.field_checks().into_iter().map(|(_, p)| p).collect()
    }

    /// Every `field` check as (path of its `pointer` relative to this filter, pointer).
    pub(crate) fn field_checks(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        self.collect_field_checks(String::new(), &mut out);
        out
    }

    fn collect_field_checks<'a>(&'a self, path: String, out: &mut Vec<(String, &'a str)>) {
        match self {
            Self::Field { pointer, .. } => out.push((format!("{path}/pointer"), pointer)),
            Self::Regex { .. } => {}
            Self::All { filters } | Self::Any { filters } => {
                for (i, f) in filters.iter().enumerate() {
                    f.collect_field_checks(format!("{path}/filters/{i}"), out);
                }
            }
            Self::Not { filter } => filter.collect_field_checks(format!("{path}/filter"), out),
        }
    }

    /// Returns the compiled node, or `None` after recording why it is invalid.
    fn build(&self, path: &str, depth: usize, errs: &mut ValidationErrors) -> Option<Node> {
        if depth > MAX_FILTER_DEPTH {
            errs.push(
                path,
                format!("filters may be nested at most {MAX_FILTER_DEPTH} levels deep"),
            );
            return None;
        }
        match self {
            Self::Field { pointer, op, value } => {
                let mut ok = true;
                if !is_json_pointer(pointer) {
                    ok = false;
                    errs.push(
                        format!("{path}/pointer"),
                        "must be a JSON pointer such as \"/label\": empty, or starting with '/', \
                         with '~' only as ~0 or ~1",
                    );
                }
                if let Some(problem) = value_problem(*op, value) {
                    ok = false;
                    errs.push(format!("{path}/value"), problem);
                }
                ok.then(|| Node::Field {
                    pointer: pointer.clone(),
                    op: *op,
                    value: value.clone(),
                })
            }
            Self::Regex { pattern } => {
                let path = format!("{path}/pattern");
                let len = pattern.chars().count();
                if len > MAX_REGEX_LEN {
                    errs.push(
                        path,
                        format!("must be at most {MAX_REGEX_LEN} characters (got {len})"),
                    );
                    return None;
                }
                match RegexBuilder::new(pattern)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                {
                    Ok(regex) => Some(Node::Regex(regex)),
                    Err(e) => {
                        errs.push(path, format!("invalid regular expression: {e}"));
                        None
                    }
                }
            }
            Self::All { filters } => build_children(filters, path, depth, errs).map(Node::All),
            Self::Any { filters } => build_children(filters, path, depth, errs).map(Node::Any),
            Self::Not { filter } => filter
                .build(&format!("{path}/filter"), depth + 1, errs)
                .map(|node| Node::Not(Box::new(node))),
        }
    }
}

fn build_children(
    filters: &[Filter],
    path: &str,
    depth: usize,
    errs: &mut ValidationErrors,
) -> Option<Vec<Node>> {
    let mut ok = true;
    if filters.is_empty() {
        ok = false;
        errs.push(
            format!("{path}/filters"),
            "must contain at least one filter",
        );
    } else if filters.len() > MAX_FILTER_CHILDREN {
        ok = false;
        errs.push(
            format!("{path}/filters"),
            format!(
                "must contain at most {MAX_FILTER_CHILDREN} filters (got {})",
                filters.len()
            ),
        );
    }
    // Build every child even after a failure so all problems are reported at once.
    let nodes: Vec<_> = filters
        .iter()
        .enumerate()
        .map(|(i, f)| f.build(&format!("{path}/filters/{i}"), depth + 1, errs))
        .collect();
    if ok {
        nodes.into_iter().collect()
    } else {
        None
    }
}

fn value_problem(op: CompareOp, value: &Value) -> Option<String> {
    match op {
        CompareOp::In => match value.as_array() {
            None => Some("operator in needs an array of allowed values".to_owned()),
            Some(values) if values.is_empty() => {
                Some("operator in needs at least one allowed value".to_owned())
            }
            Some(_) => None,
        },
        CompareOp::Gt | CompareOp::Gte | CompareOp::Lt | CompareOp::Lte => (!value.is_number()
            && !value.is_string())
        .then(|| format!("operator {op} needs a number or a string")),
        CompareOp::Eq | CompareOp::Ne | CompareOp::Contains => None,
    }
}

/// Whether `pointer` is a syntactically valid RFC 6901 JSON pointer.
pub fn is_json_pointer(pointer: &str) -> bool {
    if pointer.is_empty() {
        return true;
    }
    if !pointer.starts_with('/') {
        return false;
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return false;
        }
    }
    true
}

/// Three-valued result of one check, each with a human-readable explanation.
enum Outcome {
    Pass(String),
    Fail(String),
    /// The output was malformed for this check; never passes, even under `not`.
    Unknown(String),
}

impl CompiledFilter {
    /// Judges one stage output; see the module docs for how malformed outputs are treated.
    pub fn evaluate(&self, output: &StageOutput<'_>) -> FilterVerdict {
        match self.0.eval(output) {
            Outcome::Pass(_) => FilterVerdict::pass(),
            Outcome::Fail(reason) | Outcome::Unknown(reason) => FilterVerdict::reject(reason),
        }
    }
}

impl Node {
    fn eval(&self, output: &StageOutput<'_>) -> Outcome {
        match self {
            Node::Field { pointer, op, value } => eval_field(pointer, *op, value, output),
            Node::Regex(regex) => {
                if regex.is_match(output.text) {
                    Outcome::Pass(format!("text matches /{regex}/"))
                } else {
                    Outcome::Fail(format!("text does not match /{regex}/"))
                }
            }
            Node::All(children) => {
                let mut passes = Vec::with_capacity(children.len());
                let mut unknown = None;
                for child in children {
                    match child.eval(output) {
                        Outcome::Pass(why) => passes.push(why),
                        Outcome::Fail(why) => return Outcome::Fail(why),
                        Outcome::Unknown(why) => {
                            unknown.get_or_insert(why);
                        }
                    }
                }
                match unknown {
                    Some(why) => Outcome::Unknown(why),
                    None => Outcome::Pass(passes.join(" and ")),
                }
            }
            Node::Any(children) => {
                let mut fails = Vec::with_capacity(children.len());
                let mut unknown = None;
                for child in children {
                    match child.eval(output) {
                        Outcome::Pass(why) => return Outcome::Pass(why),
                        Outcome::Fail(why) => fails.push(why),
                        Outcome::Unknown(why) => {
                            unknown.get_or_insert(why);
                        }
                    }
                }
                match unknown {
                    Some(why) => Outcome::Unknown(why),
                    None => Outcome::Fail(format!("none passed: {}", fails.join("; "))),
                }
            }
            Node::Not(child) => match child.eval(output) {
                Outcome::Pass(why) => Outcome::Fail(format!("excluded by not: {why}")),
                Outcome::Fail(why) => Outcome::Pass(format!("not: {why}")),
                unknown @ Outcome::Unknown(_) => unknown,
            },
        }
    }
}

fn eval_field(pointer: &str, op: CompareOp, expected: &Value, output: &StageOutput<'_>) -> Outcome {
    let Some(json) = output.json else {
        return Outcome::Unknown("output is not JSON".to_owned());
    };
    let Some(actual) = json.pointer(pointer) else {
        return Outcome::Unknown(match json {
            Value::Object(_) | Value::Array(_) => format!("field {pointer} is missing"),
            other => format!(
                "field {pointer} is missing: output is a JSON {}, not an object",
                kind(other)
            ),
        });
    };
    let name = if pointer.is_empty() {
        "output"
    } else {
        pointer
    };
    let (actual_s, expected_s) = (show(actual), show(expected));
    match compare(actual, op, expected) {
        Some(true) => Outcome::Pass(format!(
            "{name} {actual_s} {} {expected_s}",
            phrase(op, true)
        )),
        Some(false) => Outcome::Fail(format!(
            "{name} {actual_s} {} {expected_s}",
            phrase(op, false)
        )),
        None => Outcome::Unknown(format!(
            "{name} {actual_s} cannot be compared with {op} {expected_s} ({})",
            match op {
                CompareOp::Contains => "needs a string field and string value, or an array field",
                _ => "needs two numbers or two strings",
            }
        )),
    }
}

/// `Some(holds)`, or `None` when the operator cannot compare these kinds of values.
fn compare(actual: &Value, op: CompareOp, expected: &Value) -> Option<bool> {
    match op {
        CompareOp::Eq => Some(json_eq(actual, expected)),
        CompareOp::Ne => Some(!json_eq(actual, expected)),
        CompareOp::In => expected
            .as_array()
            .map(|allowed| allowed.iter().any(|v| json_eq(actual, v))),
        CompareOp::Gt => order(actual, expected).map(Ordering::is_gt),
        CompareOp::Gte => order(actual, expected).map(Ordering::is_ge),
        CompareOp::Lt => order(actual, expected).map(Ordering::is_lt),
        CompareOp::Lte => order(actual, expected).map(Ordering::is_le),
        CompareOp::Contains => match actual {
            Value::String(haystack) => expected.as_str().map(|needle| haystack.contains(needle)),
            Value::Array(items) => Some(items.iter().any(|v| json_eq(v, expected))),
            _ => None,
        },
    }
}

fn phrase(op: CompareOp, holds: bool) -> String {
    match (op, holds) {
        (CompareOp::Contains, true) => "contains".to_owned(),
        (CompareOp::Contains, false) => "does not contain".to_owned(),
        (op, true) => format!("is {op}"),
        (op, false) => format!("is not {op}"),
    }
}

/// JSON equality where numbers compare by value, so `1`, `1.0` and `1e0` are equal.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => cmp_numbers(x, y) == Some(Ordering::Equal),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(k, x)| ys.get(k).is_some_and(|y| json_eq(x, y)))
        }
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => cmp_numbers(x, y),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn cmp_numbers(x: &serde_json::Number, y: &serde_json::Number) -> Option<Ordering> {
    // Integers compare exactly (f64 would round above 2^53); anything else as f64.
    match (x.as_i128(), y.as_i128()) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Compact JSON for reasons, cut short so a long model answer cannot flood a verdict.
fn show(value: &Value) -> String {
    const MAX_CHARS: usize = 80;
    let text = value.to_string();
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Parses a model's text answer as JSON, tolerating a Markdown code fence around it
/// (```` ```json … ``` ````), with or without prose before the fence.
///
/// Returns `None` when no JSON can be found.
pub fn parse_json_output(text: &str) -> Option<Value> {
    const FENCE: &str = "```";
    let trimmed = text.trim();
    if let Ok(value) = serde_json::from_str(trimmed) {
        return Some(value);
    }
    let (_, after_open) = trimmed.split_once(FENCE)?;
    // Skip the fence's info string (`json`, `JSON`, ...), if any.
    let body = after_open.trim_start_matches(|c: char| c.is_ascii_alphanumeric());
    let body = body.split_once(FENCE).map_or(body, |(inside, _)| inside);
    serde_json::from_str(body.trim()).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn filter(spec: Value) -> CompiledFilter {
        serde_json::from_value::<Filter>(spec)
            .unwrap()
            .compile()
            .unwrap()
    }

    fn field(pointer: &str, op: &str, value: Value) -> CompiledFilter {
        filter(json!({"type": "field", "pointer": pointer, "op": op, "value": value}))
    }

    fn on_json(f: &CompiledFilter, json: Value) -> FilterVerdict {
        f.evaluate(&StageOutput {
            text: &json.to_string(),
            json: Some(&json),
        })
    }

    fn on_text(f: &CompiledFilter, text: &str) -> FilterVerdict {
        f.evaluate(&StageOutput { text, json: None })
    }

    fn passes(f: &CompiledFilter, json: Value) -> bool {
        on_json(f, json).passed
    }

    fn reason(verdict: FilterVerdict) -> String {
        assert!(!verdict.passed, "expected a rejection");
        verdict.reason.unwrap()
    }

    fn validation_paths(spec: Value) -> Vec<String> {
        let f: Filter = serde_json::from_value(spec).unwrap();
        let mut errs = ValidationErrors::new();
        f.validate("/stages/0/filter", &mut errs);
        errs.into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn filters_round_trip_through_their_wire_format() {
        let spec = json!({"type": "all", "filters": [
            {"type": "field", "pointer": "/label", "op": "eq", "value": "cat"},
            {"type": "regex", "pattern": "(?i)\\bcat\\b"},
            {"type": "any", "filters": [{"type": "not", "filter":
                {"type": "field", "pointer": "/n", "op": "gte", "value": 2}}]}
        ]});
        let parsed: Filter = serde_json::from_value(spec.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), spec);
    }

    #[test]
    fn unknown_filter_types_ops_and_fields_are_rejected_when_parsing() {
        for bad in [
            json!({"type": "fuzzy", "pattern": "x"}),
            json!({"type": "field", "pointer": "/a", "op": "like", "value": 1}),
            json!({"type": "regex", "pattern": "x", "flags": "i"}),
            json!({"type": "field", "op": "eq", "value": 1}),
        ] {
            assert!(
                serde_json::from_value::<Filter>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn eq_compares_numbers_numerically() {
        let f = field("/n", "eq", json!(1));
        assert!(passes(&f, json!({"n": 1.0})));
        assert!(passes(&f, json!({"n": 1})));
        assert!(!passes(&f, json!({"n": 1.5})));
        assert!(!passes(&f, json!({"n": "1"})));
    }

    #[test]
    fn eq_compares_nested_values_with_numeric_numbers() {
        let f = field("/box", "eq", json!({"xy": [1, 2.0]}));
        assert!(passes(&f, json!({"box": {"xy": [1.0, 2]}})));
        assert!(!passes(&f, json!({"box": {"xy": [1, 3]}})));
        assert!(!passes(&f, json!({"box": {"xy": [1, 2], "z": 0}})));
    }

    #[test]
    fn eq_matches_strings_and_booleans_exactly() {
        assert!(passes(
            &field("/label", "eq", json!("cat")),
            json!({"label": "cat"})
        ));
        assert!(!passes(
            &field("/label", "eq", json!("cat")),
            json!({"label": "Cat"})
        ));
        assert!(passes(
            &field("/animal", "eq", json!(true)),
            json!({"animal": true})
        ));
        assert_eq!(
            reason(on_json(
                &field("/animal", "eq", json!(true)),
                json!({"animal": false})
            )),
            "/animal false is not eq true"
        );
    }

    #[test]
    fn ne_passes_only_when_values_differ() {
        let f = field("/label", "ne", json!("dog"));
        assert!(passes(&f, json!({"label": "cat"})));
        assert!(!passes(&f, json!({"label": "dog"})));
        assert!(!passes(&field("/n", "ne", json!(2)), json!({"n": 2.0})));
    }

    #[test]
    fn ne_does_not_pass_when_the_field_is_missing() {
        let verdict = on_json(&field("/label", "ne", json!("dog")), json!({}));
        assert_eq!(reason(verdict), "field /label is missing");
    }

    #[test]
    fn in_passes_when_the_field_equals_any_allowed_value() {
        let f = field("/label", "in", json!(["cat", "lion", 3]));
        assert!(passes(&f, json!({"label": "lion"})));
        assert!(passes(&f, json!({"label": 3.0})));
        assert_eq!(
            reason(on_json(&f, json!({"label": "dog"}))),
            r#"/label "dog" is not in ["cat","lion",3]"#
        );
    }

    #[test]
    fn gt_compares_numbers_numerically() {
        let f = field("/score", "gt", json!(0.5));
        assert!(passes(&f, json!({"score": 0.7})));
        assert!(passes(&f, json!({"score": 1})));
        assert_eq!(
            reason(on_json(&f, json!({"score": 0.4}))),
            "/score 0.4 is not gt 0.5"
        );
        assert!(!passes(&f, json!({"score": 0.5})));
        // 10 > 9 numerically although "10" < "9" as text.
        assert!(passes(&field("/n", "gt", json!(9)), json!({"n": 10})));
    }

    #[test]
    fn gte_lt_and_lte_respect_the_boundary() {
        assert!(passes(&field("/n", "gte", json!(5)), json!({"n": 5.0})));
        assert!(!passes(&field("/n", "gte", json!(5)), json!({"n": 4.9})));
        assert!(passes(&field("/n", "lt", json!(5)), json!({"n": -1})));
        assert!(!passes(&field("/n", "lt", json!(5)), json!({"n": 5})));
        assert!(passes(&field("/n", "lte", json!(5)), json!({"n": 5})));
        assert!(!passes(&field("/n", "lte", json!(5)), json!({"n": 6})));
    }

    #[test]
    fn large_integers_compare_exactly() {
        let big = 9_007_199_254_740_993_u64; // 2^53 + 1: equal to 2^53 as an f64
        assert!(passes(
            &field("/n", "gt", json!(big - 1)),
            json!({"n": big})
        ));
        assert!(passes(
            &field("/n", "gt", json!(-1)),
            json!({"n": u64::MAX})
        ));
    }

    #[test]
    fn ordering_compares_strings_lexicographically() {
        let f = field("/date", "gte", json!("2024-01-01"));
        assert!(passes(&f, json!({"date": "2024-06-30"})));
        assert!(!passes(&f, json!({"date": "2023-12-31"})));
        assert!(passes(&field("/s", "lt", json!("b")), json!({"s": "abc"})));
    }

    #[test]
    fn ordering_between_a_number_and_a_string_never_passes() {
        let f = field("/score", "gt", json!(0.5));
        assert_eq!(
            reason(on_json(&f, json!({"score": "high"}))),
            r#"/score "high" cannot be compared with gt 0.5 (needs two numbers or two strings)"#
        );
        assert!(!passes(&field("/s", "lt", json!("9")), json!({"s": 1})));
        assert!(!passes(&f, json!({"score": null})));
    }

    #[test]
    fn contains_finds_substrings_in_string_fields() {
        let f = field("/caption", "contains", json!("cat"));
        assert!(passes(&f, json!({"caption": "a black cat on a wall"})));
        assert_eq!(
            reason(on_json(&f, json!({"caption": "a dog"}))),
            r#"/caption "a dog" does not contain "cat""#
        );
    }

    #[test]
    fn contains_finds_equal_elements_in_array_fields() {
        let f = field("/labels", "contains", json!("cat"));
        assert!(passes(&f, json!({"labels": ["dog", "cat"]})));
        assert!(!passes(&f, json!({"labels": ["dog", "catfish"]})));
        assert!(!passes(&f, json!({"labels": []})));
        let numbers = field("/sizes", "contains", json!(2));
        assert!(passes(&numbers, json!({"sizes": [1, 2.0]})));
    }

    #[test]
    fn contains_on_other_kinds_never_passes() {
        let f = field("/n", "contains", json!("1"));
        assert!(reason(on_json(&f, json!({"n": 12}))).contains("cannot be compared"));
        let g = field("/caption", "contains", json!(1));
        assert!(!passes(&g, json!({"caption": "1 cat"})));
    }

    #[test]
    fn pointers_reach_into_nested_objects_and_arrays() {
        let f = field("/boxes/1/label", "eq", json!("cat"));
        assert!(passes(
            &f,
            json!({"boxes": [{"label": "dog"}, {"label": "cat"}]})
        ));
        let escaped = field("/a~1b/c~0d", "eq", json!(1));
        assert!(passes(&escaped, json!({"a/b": {"c~d": 1}})));
    }

    #[test]
    fn the_empty_pointer_is_the_whole_output() {
        let f = field("", "in", json!(["yes", "y"]));
        assert!(passes(&f, json!("yes")));
        assert_eq!(
            reason(on_json(&f, json!("no"))),
            r#"output "no" is not in ["yes","y"]"#
        );
    }

    #[test]
    fn a_missing_field_never_passes() {
        let f = field("/animal", "eq", json!(true));
        assert_eq!(
            reason(on_json(&f, json!({"species": "cat"}))),
            "field /animal is missing"
        );
        assert!(!passes(
            &field("/boxes/5", "eq", json!(1)),
            json!({"boxes": [1]})
        ));
    }

    #[test]
    fn a_field_check_on_non_json_output_never_passes() {
        let f = field("/animal", "eq", json!(true));
        assert_eq!(reason(on_text(&f, "Yes, a cat.")), "output is not JSON");
    }

    #[test]
    fn a_field_check_on_json_that_is_not_an_object_never_passes() {
        let f = field("/animal", "eq", json!(true));
        assert_eq!(
            reason(on_json(&f, json!("true"))),
            "field /animal is missing: output is a JSON string, not an object"
        );
        assert!(!passes(&f, json!(true)));
        assert!(!passes(&f, json!([true])));
    }

    #[test]
    fn regex_matches_anywhere_in_the_text() {
        let f = filter(json!({"type": "regex", "pattern": "(?i)\\bcat\\b"}));
        assert!(on_text(&f, "I see a Cat.").passed);
        assert_eq!(
            reason(on_text(&f, "a category")),
            r"text does not match /(?i)\bcat\b/"
        );
    }

    #[test]
    fn regex_works_on_the_raw_text_of_json_output() {
        let f = filter(json!({"type": "regex", "pattern": "\"species\":\"cat\""}));
        assert!(passes(&f, json!({"species": "cat"})));
    }

    #[test]
    fn all_needs_every_child_to_pass() {
        let f = filter(json!({"type": "all", "filters": [
            {"type": "field", "pointer": "/animal", "op": "eq", "value": true},
            {"type": "field", "pointer": "/count", "op": "gte", "value": 2}
        ]}));
        assert!(passes(&f, json!({"animal": true, "count": 3})));
        assert_eq!(
            reason(on_json(&f, json!({"animal": true, "count": 1}))),
            "/count 1 is not gte 2"
        );
    }

    #[test]
    fn any_needs_one_child_to_pass() {
        let f = filter(json!({"type": "any", "filters": [
            {"type": "field", "pointer": "/label", "op": "eq", "value": "cat"},
            {"type": "regex", "pattern": "lion"}
        ]}));
        assert!(passes(&f, json!({"label": "cat"})));
        assert!(passes(&f, json!({"label": "lion"})));
        assert_eq!(
            reason(on_json(&f, json!({"label": "dog"}))),
            r#"none passed: /label "dog" is not eq "cat"; text does not match /lion/"#
        );
    }

    #[test]
    fn any_passes_when_one_child_passes_even_if_another_cannot_be_judged() {
        let f = filter(json!({"type": "any", "filters": [
            {"type": "field", "pointer": "/missing", "op": "eq", "value": 1},
            {"type": "field", "pointer": "/label", "op": "eq", "value": "cat"}
        ]}));
        assert!(passes(&f, json!({"label": "cat"})));
        assert_eq!(
            reason(on_json(&f, json!({"label": "dog"}))),
            "field /missing is missing"
        );
    }

    #[test]
    fn not_inverts_a_clear_answer() {
        let f = filter(json!({"type": "not", "filter":
            {"type": "field", "pointer": "/label", "op": "eq", "value": "cat"}}));
        assert!(passes(&f, json!({"label": "dog"})));
        assert_eq!(
            reason(on_json(&f, json!({"label": "cat"}))),
            r#"excluded by not: /label "cat" is eq "cat""#
        );
    }

    #[test]
    fn not_does_not_turn_malformed_output_into_a_pass() {
        let f = filter(json!({"type": "not", "filter":
            {"type": "field", "pointer": "/label", "op": "eq", "value": "cat"}}));
        assert_eq!(reason(on_json(&f, json!({}))), "field /label is missing");
        assert_eq!(reason(on_text(&f, "dog")), "output is not JSON");
        let g = filter(json!({"type": "not", "filter":
            {"type": "field", "pointer": "/n", "op": "gt", "value": 1}}));
        assert!(!passes(&g, json!({"n": "many"})));
    }

    #[test]
    fn nested_all_any_and_not_combine() {
        // An animal that is a cat or a lion, and not a cartoon.
        let f = filter(json!({"type": "all", "filters": [
            {"type": "field", "pointer": "/animal", "op": "eq", "value": true},
            {"type": "any", "filters": [
                {"type": "field", "pointer": "/species", "op": "eq", "value": "cat"},
                {"type": "field", "pointer": "/species", "op": "eq", "value": "lion"}
            ]},
            {"type": "not", "filter": {"type": "field", "pointer": "/cartoon", "op": "eq", "value": true}}
        ]}));
        assert!(passes(
            &f,
            json!({"animal": true, "species": "lion", "cartoon": false})
        ));
        assert!(!passes(
            &f,
            json!({"animal": true, "species": "dog", "cartoon": false})
        ));
        assert!(!passes(
            &f,
            json!({"animal": true, "species": "cat", "cartoon": true})
        ));
        assert!(!passes(&f, json!({"animal": true, "species": "cat"})));
    }

    #[test]
    fn not_of_all_with_a_failing_child_passes_despite_an_unknown_sibling() {
        // The `all` is certainly false (its first child fails), so its negation is true.
        let f = filter(json!({"type": "not", "filter": {"type": "all", "filters": [
            {"type": "field", "pointer": "/label", "op": "eq", "value": "cat"},
            {"type": "field", "pointer": "/missing", "op": "eq", "value": 1}
        ]}}));
        assert!(passes(&f, json!({"label": "dog"})));
        assert!(!passes(&f, json!({"label": "cat"})));
    }

    #[test]
    fn valid_filters_have_no_validation_errors() {
        assert!(
            validation_paths(json!({"type": "all", "filters": [
                {"type": "field", "pointer": "", "op": "in", "value": [1]},
                {"type": "field", "pointer": "/a~0~1", "op": "lte", "value": "z"},
                {"type": "regex", "pattern": "^ok$"}
            ]}))
            .is_empty()
        );
    }

    #[test]
    fn invalid_pointers_are_rejected_at_the_pointer_path() {
        for pointer in ["label", "/a~2", "/a~", "~0"] {
            assert_eq!(
                validation_paths(
                    json!({"type": "field", "pointer": pointer, "op": "eq", "value": 1})
                ),
                ["/stages/0/filter/pointer"],
                "{pointer}"
            );
        }
    }

    #[test]
    fn operators_reject_values_of_the_wrong_kind() {
        let at_value = ["/stages/0/filter/value"];
        for (op, value) in [
            ("in", json!("cat")),
            ("in", json!([])),
            ("gt", json!(true)),
            ("gte", json!(null)),
            ("lt", json!([1])),
            ("lte", json!({"a": 1})),
        ] {
            let spec = json!({"type": "field", "pointer": "/a", "op": op, "value": value});
            assert_eq!(validation_paths(spec), at_value, "{op} {value}");
        }
        for (op, value) in [("eq", json!(null)), ("contains", json!({"a": 1}))] {
            let spec = json!({"type": "field", "pointer": "/a", "op": op, "value": value});
            assert!(validation_paths(spec).is_empty(), "{op}");
        }
    }

    #[test]
    fn broken_and_oversized_regexes_are_rejected() {
        let broken = json!({"type": "regex", "pattern": "(cat"});
        assert_eq!(validation_paths(broken), ["/stages/0/filter/pattern"]);
        let long = json!({"type": "regex", "pattern": "a".repeat(MAX_REGEX_LEN + 1)});
        assert_eq!(validation_paths(long), ["/stages/0/filter/pattern"]);
        let huge = json!({"type": "regex", "pattern": "\\w{1000}{1000}"});
        assert_eq!(validation_paths(huge), ["/stages/0/filter/pattern"]);
    }

    #[test]
    fn all_and_any_need_between_one_and_twenty_children() {
        assert_eq!(
            validation_paths(json!({"type": "any", "filters": []})),
            ["/stages/0/filter/filters"]
        );
        let leaf = json!({"type": "regex", "pattern": "x"});
        let many = vec![leaf; MAX_FILTER_CHILDREN + 1];
        assert_eq!(
            validation_paths(json!({"type": "all", "filters": many})),
            ["/stages/0/filter/filters"]
        );
    }

    #[test]
    fn errors_in_nested_filters_point_at_the_nested_field() {
        let spec = json!({"type": "all", "filters": [
            {"type": "regex", "pattern": "ok"},
            {"type": "not", "filter": {"type": "any", "filters": [
                {"type": "field", "pointer": "nope", "op": "in", "value": 1}
            ]}}
        ]});
        assert_eq!(
            validation_paths(spec),
            [
                "/stages/0/filter/filters/1/filter/filters/0/pointer",
                "/stages/0/filter/filters/1/filter/filters/0/value",
            ]
        );
    }

    #[test]
    fn nesting_deeper_than_eight_levels_is_rejected() {
        let mut spec = json!({"type": "regex", "pattern": "x"});
        for _ in 1..MAX_FILTER_DEPTH {
            spec = json!({"type": "not", "filter": spec});
        }
        assert!(validation_paths(spec.clone()).is_empty());
        let too_deep = json!({"type": "not", "filter": spec});
        let expected = format!("/stages/0/filter{}", "/filter".repeat(MAX_FILTER_DEPTH));
        assert_eq!(validation_paths(too_deep), [expected]);
    }

    #[test]
    fn compile_reports_errors_relative_to_the_filter() {
        let f: Filter = serde_json::from_value(json!({"type": "any", "filters": [
            {"type": "regex", "pattern": "["}
        ]}))
        .unwrap();
        let FilterError(errs) = f.compile().unwrap_err();
        assert_eq!(errs.errors()[0].path, "/filters/0/pattern");
        assert!(
            errs.errors()[0]
                .message
                .starts_with("invalid regular expression")
        );
    }

    #[test]
    fn field_pointers_lists_every_field_check() {
        let f: Filter = serde_json::from_value(json!({"type": "all", "filters": [
            {"type": "field", "pointer": "/a", "op": "eq", "value": 1},
            {"type": "not", "filter": {"type": "field", "pointer": "/b", "op": "eq", "value": 1}},
            {"type": "regex", "pattern": "x"}
        ]}))
        .unwrap();
        assert_eq!(f.field_pointers(), ["/a", "/b"]);
        assert!(f.uses_field());
        let regex_only: Filter =
            serde_json::from_value(json!({"type": "regex", "pattern": "x"})).unwrap();
        assert!(!regex_only.uses_field());
    }

    #[test]
    fn long_values_are_shortened_in_reasons() {
        let long = "x".repeat(500);
        let text = reason(on_json(
            &field("/t", "eq", json!("y")),
            json!({ "t": long }),
        ));
        assert!(text.chars().count() < 120, "{text}");
        assert!(text.contains('…'));
    }

    #[test]
    fn json_output_is_parsed_plain_or_fenced() {
        let expected = json!({"animal": true});
        for text in [
            "{\"animal\": true}",
            "  {\"animal\": true}\n",
            "```json\n{\"animal\": true}\n```",
            "```JSON\n{\"animal\": true}```",
            "```\n{\"animal\": true}\n```\n",
            "Here you go:\n```json\n{\"animal\": true}\n```\nAnything else?",
        ] {
            assert_eq!(parse_json_output(text), Some(expected.clone()), "{text:?}");
        }
    }

    #[test]
    fn text_that_is_not_json_parses_to_none() {
        for text in ["", "Yes, a cat.", "```json\n{\"animal\": \n```", "```"] {
            assert_eq!(parse_json_output(text), None, "{text:?}");
        }
    }

    #[test]
    fn the_schema_of_filter_can_be_collected_without_endless_recursion() {
        let mut schemas = Vec::new();
        <Filter as utoipa::ToSchema>::schemas(&mut schemas);
        assert!(schemas.iter().any(|(name, _)| name == "CompareOp"));
        let schema = serde_json::to_value(<Filter as utoipa::PartialSchema>::schema()).unwrap();
        let text = schema.to_string();
        assert!(text.contains("#/components/schemas/Filter"), "{text}");
    }
}
