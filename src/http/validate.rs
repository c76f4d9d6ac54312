//! Validation that yields values: every offending field is collected and
//! answered at once as a 400 "Validation error", and a request that passes
//! hands its handler the parsed values (ids, message types, timestamps), so
//! no handler checks again.

use super::error::AppError;
use chats3_actors::domain::{ConversationId, MessageType};
use chats3_actors::time::parse_iso_ms;
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

/// One issue of a 400 "Validation error".
#[derive(Serialize, ToSchema)]
pub struct Issue<'a> {
    /// The offending field (empty for the request as a whole).
    path: Vec<&'a str>,
    /// What is wrong: `invalid_type`, `too_small`, `too_big`,
    /// `invalid_format`, `invalid_enum_value`, `invalid_json`...
    code: &'a str,
    /// The same in words.
    message: &'a str,
}

/// One issue of a 400 "Validation error": `{path, code, message}`, the
/// path empty for the request as a whole.
pub fn issue(field: &str, code: &str, message: &str) -> Value {
    let path: Vec<&str> = if field.is_empty() {
        Vec::new()
    } else {
        vec![field]
    };
    json!(Issue {
        path,
        code,
        message
    })
}

/// A 400 "Validation error" with one issue.
pub fn invalid(field: &str, code: &str, message: &str) -> AppError {
    AppError::validation(vec![issue(field, code, message)])
}

/// The issues found so far in one request.
#[derive(Default)]
pub struct Issues(Vec<Value>);

impl Issues {
    /// Records a problem with a field; the value it stands for failed.
    pub fn fail<T>(&mut self, field: &str, code: &str, message: &str) -> Checked<T> {
        self.0.push(issue(field, code, message));
        Checked(None)
    }

    /// The values, or the 400 listing every issue.
    pub fn finish<V: Values>(self, values: V) -> Result<V::Output, AppError> {
        match values.all() {
            Some(values) if self.0.is_empty() => Ok(values),
            _ => Err(AppError::validation(self.0)),
        }
    }
}

/// A field's value once checked, or the mark that it failed (made only
/// where its issue is recorded). Only [`Issues::finish`]
/// opens it, and only when nothing failed.
#[must_use]
pub struct Checked<T>(Option<T>);

impl<T> Checked<T> {
    /// A value that passed.
    pub fn valid(value: T) -> Self {
        Checked(Some(value))
    }

    /// The value made into another, when it is valid.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Checked<U> {
        Checked(self.0.map(f))
    }
}

/// Checked values that [`Fields::finish`] opens together: one, or a tuple.
pub trait Values {
    /// The values themselves.
    type Output;
    /// Every value, or `None` when one failed.
    fn all(self) -> Option<Self::Output>;
}

impl<T> Values for Checked<T> {
    type Output = T;
    fn all(self) -> Option<T> {
        self.0
    }
}

macro_rules! tuple_values {
    ($($name:ident),+) => {
        impl<$($name),+> Values for ($(Checked<$name>,)+) {
            type Output = ($($name,)+);
            #[allow(non_snake_case)]
            fn all(self) -> Option<Self::Output> {
                let ($($name,)+) = self;
                Some(($($name.0?,)+))
            }
        }
    };
}

tuple_values!(A, B);
tuple_values!(A, B, C);
tuple_values!(A, B, C, D);
tuple_values!(A, B, C, D, E);
tuple_values!(A, B, C, D, E, F);
tuple_values!(A, B, C, D, E, F, G);
tuple_values!(A, B, C, D, E, F, G, H);

/// Rules for a string field.
#[derive(Clone, Copy)]
pub struct Text {
    min: usize,
    max: usize,
    trim: bool,
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

/// A string field of a known format: its length rule, what the error
/// says it must be, and the parse into its value.
pub struct Format<T> {
    rule: Text,
    what: &'static str,
    parse: fn(&str) -> Option<T>,
}

/// A date-time as the client wrote it, and its instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp {
    /// The text as sent (signatures and stored messages keep it).
    pub text: String,
    /// Milliseconds since the Unix epoch.
    pub ms: i64,
}

/// A hyphenated UUID.
pub const UUID: Format<String> = Format {
    rule: Text::len(36, 36),
    what: "a UUID",
    parse: |text| is_uuid(text).then(|| text.to_owned()),
};

/// An RFC 3339 / ISO-8601 date-time.
pub const DATETIME: Format<Timestamp> = Format {
    rule: Text::len(1, 64),
    what: "an ISO-8601 date-time",
    parse: |text| {
        parse_iso_ms(text).map(|ms| Timestamp {
            text: text.to_owned(),
            ms,
        })
    },
};

/// `^[A-Za-z0-9_-]{1,100}$`
pub const CONVERSATION_ID: Format<ConversationId> = Format {
    rule: Text::len(1, 100),
    what: "1-100 of A-Z a-z 0-9 _ -",
    parse: ConversationId::parse,
};

/// Six characters of `A-Z0-9`.
pub const JOIN_CODE: Format<String> = Format {
    rule: Text::len(6, 6),
    what: "6 characters of A-Z 0-9",
    parse: |text| is_join_code(text).then(|| text.to_owned()),
};

/// An http(s) URL of at most 500 characters.
pub const AVATAR_URL: Format<String> = Format {
    rule: Text::len(1, 500),
    what: "an http(s) URL",
    parse: |text| is_url(text).then(|| text.to_owned()),
};

/// A value of a fixed set, each named in JSON by one string.
pub trait Choice: Copy {
    /// The value's name.
    fn name(self) -> &'static str;
}

impl Choice for &'static str {
    fn name(self) -> &'static str {
        self
    }
}

impl Choice for MessageType {
    fn name(self) -> &'static str {
        match self {
            MessageType::Text => "text",
            MessageType::System => "system",
            MessageType::File => "file",
        }
    }
}

/// Objects of at most this many fields are searched by comparing names.
const SCAN_FIELDS: usize = 16;

/// Checks fields of one JSON object.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    issues: Issues,
}

impl<'a> Fields<'a> {
    /// Starts checking `body`, which must be a JSON object.
    pub fn of(body: &'a Value) -> Result<Self, AppError> {
        match body {
            Value::Object(object) => Ok(Fields {
                object,
                issues: Issues::default(),
            }),
            _ => Err(invalid("", "invalid_type", "Expected a JSON object")),
        }
    }

    fn present(&self, field: &str) -> Option<&'a Value> {
        // A request body has a handful of fields: comparing names is
        // cheaper than hashing one (SipHash) per lookup. Keys are unique
        // either way, so both find the same entry.
        let value = if self.object.len() <= SCAN_FIELDS {
            self.object
                .iter()
                .find_map(|(name, value)| (name == field).then_some(value))
        } else {
            self.object.get(field)
        };
        value.filter(|v| !v.is_null())
    }

    /// A required string with length rules (in Unicode characters).
    pub fn text(&mut self, field: &str, rule: Text) -> Checked<String> {
        match self.present(field) {
            None => self.issues.fail(field, "invalid_type", "Required"),
            Some(value) => self.string(field, value, rule),
        }
    }

    /// An optional string with length rules.
    pub fn optional_text(&mut self, field: &str, rule: Text) -> Checked<Option<String>> {
        match self.present(field) {
            None => Checked::valid(None),
            Some(value) => self.string(field, value, rule).map(Some),
        }
    }

    /// A required string of a format, parsed.
    pub fn parsed<T>(&mut self, field: &str, format: &Format<T>) -> Checked<T> {
        match self.present(field) {
            None => self.issues.fail(field, "invalid_type", "Required"),
            Some(value) => self.formatted(field, value, format),
        }
    }

    /// An optional string of a format, parsed when present.
    pub fn optional_parsed<T>(&mut self, field: &str, format: &Format<T>) -> Checked<Option<T>> {
        match self.present(field) {
            None => Checked::valid(None),
            Some(value) => self.formatted(field, value, format).map(Some),
        }
    }

    fn string(&mut self, field: &str, value: &Value, rule: Text) -> Checked<String> {
        let Some(text) = value.as_str() else {
            return self.issues.fail(field, "invalid_type", "Expected a string");
        };
        let text = if rule.trim { text.trim() } else { text };
        let length = text.chars().count();
        if length < rule.min {
            let message = format!("Must be at least {} characters", rule.min);
            self.issues.fail(field, "too_small", &message)
        } else if length > rule.max {
            let message = format!("Must be at most {} characters", rule.max);
            self.issues.fail(field, "too_big", &message)
        } else {
            Checked::valid(text.to_owned())
        }
    }

    fn formatted<T>(&mut self, field: &str, value: &Value, format: &Format<T>) -> Checked<T> {
        let Checked(Some(text)) = self.string(field, value, format.rule) else {
            return Checked(None);
        };
        match (format.parse)(&text) {
            Some(parsed) => Checked::valid(parsed),
            None => {
                let message = format!("Must be {}", format.what);
                self.issues.fail(field, "invalid_format", &message)
            }
        }
    }

    /// A required boolean.
    pub fn boolean(&mut self, field: &str) -> Checked<bool> {
        match self.present(field) {
            Some(Value::Bool(b)) => Checked::valid(*b),
            Some(_) => self
                .issues
                .fail(field, "invalid_type", "Expected a boolean"),
            None => self.issues.fail(field, "invalid_type", "Required"),
        }
    }

    /// One of `choices` by name; absent, the default (required without one).
    pub fn one_of<T: Choice>(
        &mut self,
        field: &str,
        choices: &[T],
        default: Option<T>,
    ) -> Checked<T> {
        let Some(value) = self.present(field) else {
            return match default {
                Some(default) => Checked::valid(default),
                None => self.issues.fail(field, "invalid_type", "Required"),
            };
        };
        let found = value
            .as_str()
            .and_then(|v| choices.iter().find(|c| c.name() == v).copied());
        match found {
            Some(choice) => Checked::valid(choice),
            None => {
                let names: Vec<&str> = choices.iter().map(|c| c.name()).collect();
                let message = format!("Must be one of: {}", names.join(", "));
                self.issues.fail(field, "invalid_enum_value", &message)
            }
        }
    }

    /// Any JSON value (absent reads as null) of at most `max_bytes` as
    /// compact JSON.
    pub fn json(&mut self, field: &str, max_bytes: usize) -> Checked<Value> {
        let value = self.object.get(field).cloned().unwrap_or(Value::Null);
        if serde_json::to_vec(&value).map_or(0, |d| d.len()) > max_bytes {
            let message = format!("Must be at most {max_bytes} bytes of JSON");
            return self.issues.fail(field, "too_big", &message);
        }
        Checked::valid(value)
    }

    /// The checked values, or the 400 listing every field that failed.
    pub fn finish<V: Values>(self, values: V) -> Result<V::Output, AppError> {
        self.issues.finish(values)
    }
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36 && uuid::Uuid::try_parse(text).is_ok()
}

/// An absolute http(s) URL.
pub fn is_url(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

fn is_join_code(text: &str) -> bool {
    text.len() == 6
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    fn value<T>(checked: Checked<T>) -> Option<T> {
        checked.0
    }

    #[test]
    fn collects_every_offending_field() {
        let body = json!({"a": 5, "b": "  x  ", "c": "toolong", "e": "maybe"});
        let mut f = Fields::of(&body).unwrap();
        assert_eq!(value(f.text("a", Text::len(1, 5))), None);
        assert_eq!(
            value(f.text("b", Text::trimmed(1, 5))).as_deref(),
            Some("x")
        );
        assert_eq!(value(f.text("c", Text::len(1, 5))), None);
        assert_eq!(value(f.text("d", Text::len(1, 5))), None);
        assert_eq!(value(f.one_of("e", &["yes", "no"], None)), None);
        assert_eq!(value(f.one_of("z", &["yes", "no"], Some("no"))), Some("no"));
        let error = f.finish(Checked::valid(())).unwrap_err();
        assert_eq!(error.details.unwrap().as_array().unwrap().len(), 4);
        assert!(Fields::of(&json!([1])).is_err());
    }

    #[test]
    fn a_request_that_passes_yields_its_values() {
        let body = json!({
            "id": "room-1",
            "at": "2025-01-01T00:00:01.000Z",
            "type": "file",
            "flag": true,
        });
        let mut f = Fields::of(&body).unwrap();
        let id = f.parsed("id", &CONVERSATION_ID);
        let at = f.parsed("at", &DATETIME);
        let kind = f.one_of("type", &[MessageType::Text, MessageType::File], None);
        let flag = f.boolean("flag");
        let avatar = f.optional_parsed("avatar", &AVATAR_URL);
        let (id, at, kind, flag, avatar) = f.finish((id, at, kind, flag, avatar)).unwrap();
        assert_eq!(id.as_str(), "room-1");
        assert_eq!(at.ms, 1_735_689_601_000);
        assert_eq!(at.text, "2025-01-01T00:00:01.000Z");
        assert_eq!(kind, MessageType::File);
        assert!(flag);
        assert_eq!(avatar, None);
    }

    #[test]
    fn fields_are_found_in_small_and_large_objects_alike() {
        for size in [1, SCAN_FIELDS, SCAN_FIELDS + 1, 100] {
            let mut object = Map::new();
            for i in 0..size {
                object.insert(format!("f{i}"), json!(format!("v{i}")));
            }
            object.insert("gone".into(), Value::Null);
            let body = Value::Object(object);
            let mut f = Fields::of(&body).unwrap();
            let last = format!("f{}", size - 1);
            assert_eq!(
                value(f.text(&last, Text::len(0, 9))),
                Some(format!("v{}", size - 1))
            );
            assert_eq!(value(f.optional_text("gone", Text::len(0, 9))), Some(None));
            assert_eq!(
                value(f.optional_text("absent", Text::len(0, 9))),
                Some(None)
            );
        }
    }

    #[test]
    fn format_checks() {
        assert!(is_uuid("123e4567-e89b-12d3-a456-426614174000"));
        assert!(!is_uuid("123e4567e89b12d3a456426614174000"));
        assert!((DATETIME.parse)("2025-01-01T00:00:00.000Z").is_some());
        assert!((DATETIME.parse)("2025-01-01").is_none());
        assert!(is_url("https://a.example/x.png"));
        assert!(!is_url("javascript:alert(1)"));
        assert!(is_join_code("AB12CD"));
        assert!(!is_join_code("ab12cd"));
    }
}
