//! Request validation: any JSON body, every kind of field check, never a
//! panic; a value that passes keeps its rule.
#![no_main]

use chats3::http::validate::{
    AVATAR_URL, CONVERSATION_ID, DATETIME, Fields, JOIN_CODE, Text, UUID,
};
use chats3_actors::domain::MessageType;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(mut fields) = Fields::of(&body) else {
        return;
    };
    let names: Vec<String> = body
        .as_object()
        .map(|o| o.keys().take(4).cloned().collect())
        .unwrap_or_default();
    let name = names.first().map_or("body", String::as_str);
    let text = fields.text(name, Text::trimmed(1, 50));
    let id = fields.optional_parsed(name, &CONVERSATION_ID);
    let at = fields.optional_parsed(name, &DATETIME);
    let uuid = fields.optional_parsed(name, &UUID);
    let code = fields.optional_parsed(name, &JOIN_CODE);
    let url = fields.optional_parsed(name, &AVATAR_URL);
    let choice = fields.one_of(
        name,
        &[MessageType::Text, MessageType::File],
        Some(MessageType::Text),
    );
    let data = fields.json(name, 256);
    if let Ok((text, id, _, uuid, code, _, _, data)) =
        fields.finish((text, id, at, uuid, code, url, choice, data))
    {
        let length = text.chars().count();
        assert!((1..=50).contains(&length) && text.trim() == text);
        if let Some(id) = id {
            assert!(id.as_str().len() <= 100);
        }
        assert!(uuid.is_none_or(|u| u.len() == 36));
        assert!(code.is_none_or(|c| c.len() == 6));
        assert!(serde_json::to_vec(&data).map_or(0, |d| d.len()) <= 256);
    }
});
