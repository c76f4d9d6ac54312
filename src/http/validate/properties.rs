//! Properties of request validation: any JSON never panics, a string passes
//! exactly when its length (after trimming, where the rule trims) is within
//! bounds and comes back as sent, formats accept exactly their grammar, and
//! every failed field is reported.

use super::*;
use proptest::prelude::*;

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{1,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn value<T>(checked: Checked<T>) -> Option<T> {
    checked.0
}

proptest! {
    #[test]
    fn any_body_is_checked_without_panicking(body in any_json(), field in "[a-z]{1,6}") {
        if let Ok(mut fields) = Fields::of(&body) {
            let text = fields.text(&field, Text::trimmed(1, 5));
            let id = fields.optional_parsed(&field, &CONVERSATION_ID);
            let at = fields.optional_parsed(&field, &DATETIME);
            let uuid = fields.optional_parsed(&field, &UUID);
            let code = fields.optional_parsed(&field, &JOIN_CODE);
            let url = fields.optional_parsed(&field, &AVATAR_URL);
            let flag = fields.boolean(&field);
            let choice = fields.one_of(&field, &[MessageType::Text, MessageType::File], None);
            let data = fields.json(&field, 64);
            let _ = fields.finish((text, id, at, uuid, code, url, flag, choice)).map(|_| data);
        } else {
            prop_assert!(!body.is_object());
        }
    }

    #[test]
    fn a_string_passes_exactly_within_its_bounds(
        text in "\\PC{0,30}",
        min in 0usize..12,
        span in 0usize..12,
        trim in any::<bool>(),
    ) {
        let max = min + span;
        let rule = if trim { Text::trimmed(min, max) } else { Text::len(min, max) };
        let body = json!({ "f": text });
        let mut fields = Fields::of(&body).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let seen = if trim { text.trim() } else { text.as_str() };
        let within = (min..=max).contains(&seen.chars().count());
        let checked = value(fields.text("f", rule));
        prop_assert_eq!(checked.as_deref(), within.then_some(seen));
        prop_assert_eq!(fields.finish(Checked::valid(())).is_ok(), within);
    }

    #[test]
    fn conversation_ids_are_exactly_their_grammar(text in "\\PC{0,110}|[A-Za-z0-9_-]{0,110}") {
        let grammar = (1..=100).contains(&text.chars().count())
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        let parsed = ConversationId::parse(&text);
        prop_assert_eq!(parsed.as_ref().map(ConversationId::as_str), grammar.then_some(text.as_str()));
    }

    #[test]
    fn join_codes_are_exactly_six_of_upper_case_and_digits(text in "\\PC{0,8}|[A-Z0-9]{5,7}") {
        let grammar = text.len() == 6 && text.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        prop_assert_eq!(is_join_code(&text), grammar);
    }

    #[test]
    fn date_times_round_trip_their_instant(ms in -62_135_596_800_000i64..253_402_300_799_999) {
        let text = chats3_actors::time::iso_from_ms(ms);
        let parsed = (DATETIME.parse)(&text);
        prop_assert_eq!(parsed, Some(Timestamp { text, ms }));
    }

    #[test]
    fn accepted_avatar_urls_are_http_or_https(text in "\\PC{0,60}|(https?|javascript|data|file):[\\PC]{0,40}") {
        if is_url(&text) {
            prop_assert!(text.to_ascii_lowercase().trim_start().starts_with("http"));
        }
    }

    #[test]
    fn a_json_field_passes_exactly_within_its_byte_bound(data in any_json(), max in 0usize..200) {
        let body = json!({ "data": data });
        let mut fields = Fields::of(&body).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let size = serde_json::to_vec(&body["data"]).map_or(0, |d| d.len());
        prop_assert_eq!(value(fields.json("data", max)).is_some(), size <= max);
    }

    #[test]
    fn every_failed_field_is_reported(bad in proptest::collection::btree_set("[a-z]{1,6}", 1..8)) {
        let body = Value::Object(bad.iter().map(|name| (name.clone(), json!(7))).collect());
        let mut fields = Fields::of(&body).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        for name in &bad {
            prop_assert!(value(fields.text(name, Text::len(0, 10))).is_none());
        }
        let error = fields.finish(Checked::valid(())).err().ok_or_else(|| TestCaseError::fail("passed"))?;
        let details = error.details.unwrap_or_default();
        prop_assert_eq!(details.as_array().map(Vec::len), Some(bad.len()));
    }
}
