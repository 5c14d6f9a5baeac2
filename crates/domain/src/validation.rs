//! Field-level validation errors that point into the request body.
//!
//! Validation collects *every* problem instead of stopping at the first, so a user fixing a
//! pipeline sees all of them at once. Each error names its place with a JSON pointer
//! (RFC 6901) into the request body, e.g. `/stages/0/prompt`, which clients can map onto their
//! form fields.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One problem with one field of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// JSON pointer into the request body; `""` means the body as a whole.
    #[schema(example = "/stages/0/prompt")]
    pub path: String,
    /// What is wrong, written for the person who sent the request.
    #[schema(example = "must not be blank")]
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(body)"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.message)
    }
}

/// Every problem found while validating one request; empty means valid.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("{}", list(.0))]
pub struct ValidationErrors(pub Vec<FieldError>);

fn list(errors: &[FieldError]) -> String {
    match errors {
        [] => "no validation errors".to_owned(),
        errors => errors
            .iter()
            .map(FieldError::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    }
}

impl ValidationErrors {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the field at `path` (a JSON pointer) is wrong because of `message`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// True when nothing was found wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of problems found.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems found, in the order they were recorded.
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// `Ok(())` when empty, otherwise `Err(self)`: the usual last line of a `validate` function.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// Adds `other`'s errors with `prefix` put in front of their paths.
    ///
    /// Use it when a nested value was validated on its own: errors at `/prompt` nested under
    /// `/stages/0` become `/stages/0/prompt`. `prefix` must itself be a JSON pointer (empty, or
    /// starting with `/`) and must not end with `/`.
    pub fn nest(&mut self, prefix: &str, other: ValidationErrors) {
        self.0.extend(other.0.into_iter().map(|e| FieldError {
            path: format!("{prefix}{}", e.path),
            message: e.message,
        }));
    }
}

impl IntoIterator for ValidationErrors {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Longest name of a library, pipeline or other user-named entity, in characters.
pub const MAX_NAME_LEN: usize = 200;

/// The name of a library or pipeline: trimmed, 1 to [`MAX_NAME_LEN`] characters, free of
/// control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(String);

impl Name {
    /// Parses a user-given name (see [`validate_name`]). The errors' paths are relative to the
    /// name (`""`): nest them under the field's pointer.
    pub fn parse(value: &str) -> Result<Self, ValidationErrors> {
        let mut errs = ValidationErrors::new();
        validate_name("", value, MAX_NAME_LEN, &mut errs);
        errs.into_result().map(|()| Self(value.trim().to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Name> for String {
    fn from(name: Name) -> Self {
        name.0
    }
}

/// Checks a user-given name: non-blank, at most `max_len` characters once surrounding whitespace
/// is trimmed, and free of control characters (they break logs, tables and terminals).
///
/// Libraries and pipelines parse their names into a [`Name`]; stages use their own, shorter
/// limit. Callers should store the trimmed name.
pub fn validate_name(path: &str, value: &str, max_len: usize, errs: &mut ValidationErrors) {
    let trimmed = value.trim();
    let len = trimmed.chars().count();
    if len == 0 {
        errs.push(path, "must not be blank");
    } else if len > max_len {
        errs.push(
            path,
            format!("must be at most {max_len} characters (got {len})"),
        );
    }
    if trimmed.chars().any(char::is_control) {
        errs.push(path, "must not contain control characters");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn empty_errors_turn_into_ok() {
        assert_eq!(ValidationErrors::new().into_result(), Ok(()));
    }

    #[test]
    fn recorded_errors_turn_into_err_and_display_every_path() {
        let mut errs = ValidationErrors::new();
        errs.push("/name", "must not be blank");
        errs.push("", "body is empty");
        assert_eq!(errs.len(), 2);
        let err = errs.into_result().expect_err("two errors were pushed");
        assert_eq!(
            err.to_string(),
            "/name: must not be blank; (body): body is empty"
        );
    }

    #[test]
    fn nest_prefixes_the_paths_of_the_inner_errors() {
        let mut inner = ValidationErrors::new();
        inner.push("/prompt", "must not be blank");
        inner.push("", "is wrong as a whole");
        let mut outer = ValidationErrors::new();
        outer.nest("/stages/3", inner);
        let paths: Vec<_> = outer.errors().iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/stages/3/prompt", "/stages/3"]);
    }

    #[test]
    fn names_are_judged_after_trimming() {
        let mut errs = ValidationErrors::new();
        validate_name("/name", "  ok  ", 2, &mut errs);
        assert!(errs.is_empty());
        validate_name("/name", "   ", 2, &mut errs);
        validate_name("/name", "abc", 2, &mut errs);
        let messages: Vec<_> = errs.errors().iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            ["must not be blank", "must be at most 2 characters (got 3)"]
        );
    }

    #[test]
    fn a_parsed_name_is_trimmed_and_its_errors_point_at_the_name_itself() {
        assert_eq!(
            Name::parse("  Field photos ").unwrap().as_str(),
            "Field photos"
        );
        let errs = Name::parse(" \u{7}").unwrap_err();
        assert_eq!(errs.errors()[0].path, "");
        assert_eq!(
            errs.errors()[0].message,
            "must not contain control characters"
        );
    }

    #[test]
    fn names_count_characters_not_bytes() {
        let mut errs = ValidationErrors::new();
        validate_name("/name", "ééé", 3, &mut errs);
        assert!(errs.is_empty());
    }

    #[test]
    fn names_with_control_characters_are_rejected() {
        let mut errs = ValidationErrors::new();
        validate_name("/name", "cats\u{0}dogs", MAX_NAME_LEN, &mut errs);
        validate_name("/name", "two\nlines", MAX_NAME_LEN, &mut errs);
        assert_eq!(errs.len(), 2);
        assert!(
            errs.errors()
                .iter()
                .all(|e| e.message == "must not contain control characters")
        );
    }
}
