//! Field-by-field validation of JSON bodies: every offending field is
//! collected and answered at once as a 400 "Validation error".

use super::error::AppError;
use serde_json::{Map, Value, json};

/// Checks fields of one JSON object.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    issues: Vec<Value>,
}

/// Rules for a string field.
#[derive(Clone, Copy)]
pub struct Text {
    pub min: usize,
    pub max: usize,
    pub trim: bool,
}

impl Text {
    /// A length range.
    pub const fn len(min: usize, max: usize) -> Self {
        Text {
            min,
            max,
            trim: false,
        }
    }

    /// A length range checked after trimming.
    pub const fn trimmed(min: usize, max: usize) -> Self {
        Text {
            min,
            max,
            trim: true,
        }
    }
}

impl<'a> Fields<'a> {
    /// Starts checking `body`, which must be a JSON object.
    pub fn of(body: &'a Value) -> Result<Self, AppError> {
        match body {
            Value::Object(object) => Ok(Fields {
                object,
                issues: Vec::new(),
            }),
            _ => Err(AppError::validation(vec![issue(
                "",
                "invalid_type",
                "Expected a JSON object",
            )])),
        }
    }

    /// Records a problem with a field.
    pub fn fail(&mut self, field: &str, code: &str, message: impl Into<String>) {
        self.issues.push(issue(field, code, &message.into()));
    }

    fn present(&self, field: &str) -> Option<&'a Value> {
        self.object.get(field).filter(|v| !v.is_null())
    }

    /// A required string with length rules (in Unicode characters).
    pub fn text(&mut self, field: &str, rule: Text) -> Option<String> {
        match self.present(field) {
            None => {
                self.fail(field, "invalid_type", "Required");
                None
            }
            Some(_) => self.optional_text(field, rule),
        }
    }

    /// An optional string with length rules.
    pub fn optional_text(&mut self, field: &str, rule: Text) -> Option<String> {
        let value = self.present(field)?;
        let Some(text) = value.as_str() else {
            self.fail(field, "invalid_type", "Expected a string");
            return None;
        };
        let text = if rule.trim { text.trim() } else { text };
        let length = text.chars().count();
        if length < rule.min {
            self.fail(
                field,
                "too_small",
                format!("Must be at least {} characters", rule.min),
            );
            None
        } else if length > rule.max {
            self.fail(
                field,
                "too_big",
                format!("Must be at most {} characters", rule.max),
            );
            None
        } else {
            Some(text.to_owned())
        }
    }

    /// A required string that must also pass `check`.
    pub fn text_matching(
        &mut self,
        field: &str,
        rule: Text,
        what: &str,
        check: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let text = self.text(field, rule)?;
        self.checked(field, text, what, check)
    }

    /// An optional string that must also pass `check` when present.
    pub fn optional_matching(
        &mut self,
        field: &str,
        rule: Text,
        what: &str,
        check: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let text = self.optional_text(field, rule)?;
        self.checked(field, text, what, check)
    }

    fn checked(
        &mut self,
        field: &str,
        text: String,
        what: &str,
        check: impl Fn(&str) -> bool,
    ) -> Option<String> {
        if check(&text) {
            Some(text)
        } else {
            self.fail(field, "invalid_format", format!("Must be {what}"));
            None
        }
    }

    /// A required boolean.
    pub fn boolean(&mut self, field: &str) -> Option<bool> {
        match self.present(field) {
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.fail(field, "invalid_type", "Expected a boolean");
                None
            }
            None => {
                self.fail(field, "invalid_type", "Required");
                None
            }
        }
    }

    /// An optional value of a fixed set of strings, with a default.
    pub fn one_of<'v>(
        &mut self,
        field: &str,
        allowed: &[&'v str],
        default: Option<&'v str>,
    ) -> Option<&'v str> {
        match self.present(field) {
            None if default.is_some() => default,
            None => {
                self.fail(field, "invalid_type", "Required");
                None
            }
            Some(value) => {
                let found = value
                    .as_str()
                    .and_then(|v| allowed.iter().find(|a| **a == v).copied());
                if found.is_none() {
                    self.fail(
                        field,
                        "invalid_enum_value",
                        format!("Must be one of: {}", allowed.join(", ")),
                    );
                }
                found
            }
        }
    }

    /// Any JSON value (absent reads as null).
    pub fn any(&self, field: &str) -> Value {
        self.object.get(field).cloned().unwrap_or(Value::Null)
    }

    /// Answers 400 when any field failed.
    pub fn finish(self) -> Result<(), AppError> {
        if self.issues.is_empty() {
            Ok(())
        } else {
            Err(AppError::validation(self.issues))
        }
    }
}

fn issue(field: &str, code: &str, message: &str) -> Value {
    let path: Vec<&str> = if field.is_empty() {
        Vec::new()
    } else {
        vec![field]
    };
    json!({ "path": path, "code": code, "message": message })
}

/// A hyphenated UUID.
pub fn is_uuid(text: &str) -> bool {
    text.len() == 36 && uuid::Uuid::try_parse(text).is_ok()
}

/// An RFC 3339 / ISO-8601 date-time.
pub fn is_datetime(text: &str) -> bool {
    chats3_actors::time::parse_iso_ms(text).is_some()
}

/// An absolute http(s) URL.
pub fn is_url(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// `^[A-Za-z0-9_-]{1,100}$`
pub fn is_conversation_id(text: &str) -> bool {
    chats3_actors::domain::is_key_safe_id(text, 100)
}

/// Six characters of `A-Z0-9`.
pub fn is_join_code(text: &str) -> bool {
    text.len() == 6
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_offending_field() {
        let body = json!({"a": 5, "b": "  x  ", "c": "toolong", "e": "maybe"});
        let mut f = Fields::of(&body).unwrap();
        assert_eq!(f.text("a", Text::len(1, 5)), None);
        assert_eq!(f.text("b", Text::trimmed(1, 5)).as_deref(), Some("x"));
        assert_eq!(f.text("c", Text::len(1, 5)), None);
        assert_eq!(f.text("d", Text::len(1, 5)), None);
        assert_eq!(f.one_of("e", &["yes", "no"], None), None);
        assert_eq!(f.one_of("z", &["yes", "no"], Some("no")), Some("no"));
        let error = f.finish().unwrap_err();
        assert_eq!(error.details.unwrap().as_array().unwrap().len(), 4);
        assert!(Fields::of(&json!([1])).is_err());
    }

    #[test]
    fn format_checks() {
        assert!(is_uuid("123e4567-e89b-12d3-a456-426614174000"));
        assert!(!is_uuid("123e4567e89b12d3a456426614174000"));
        assert!(is_datetime("2025-01-01T00:00:00.000Z"));
        assert!(!is_datetime("2025-01-01"));
        assert!(is_url("https://a.example/x.png"));
        assert!(!is_url("javascript:alert(1)"));
        assert!(is_join_code("AB12CD"));
        assert!(!is_join_code("ab12cd"));
    }
}
