//! Properties of configuration parsing: any text gives a configuration or
//! one line saying what is wrong, never a panic; values written in a file
//! come back typed; the bounds `validate` enforces hold for every value.

use super::*;
use proptest::prelude::*;

/// Sections of `config.toml`, with one key each that takes a number.
const SECTIONS: [&str; 8] = [
    "server",
    "storage",
    "durability",
    "auth",
    "actors",
    "limits",
    "rate_limit",
    "log",
];

/// TOML-ish text: lines of sections, keys and values of any kind.
fn toml_like() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        proptest::sample::select(SECTIONS.to_vec()).prop_map(|s| format!("[{s}]")),
        (
            "[a-z_]{1,24}",
            "\"\\PC{0,12}\"|[0-9]{1,12}|true|false|-[0-9]{1,4}|\\[\\]"
        )
            .prop_map(|(k, v)| format!("{k} = {v}")),
        "\\PC{0,40}",
    ];
    proptest::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #[test]
    fn any_text_is_a_configuration_or_one_line_of_error(text in "\\PC{0,200}") {
        if let Err(error) = Config::from_toml(&text) {
            prop_assert!(!error.contains('\n'));
            prop_assert!(!error.is_empty());
        }
    }

    #[test]
    fn toml_like_text_is_a_configuration_or_one_line_of_error(text in toml_like()) {
        if let Err(error) = Config::from_toml(&text) {
            prop_assert!(!error.contains('\n'), "{error}");
        }
    }

    #[test]
    fn written_values_come_back_typed(
        port in any::<u16>(),
        production in any::<bool>(),
        flush_ms in 1u64..86_400_000,
        max_pending in 1usize..1_000_000,
        nonce_secs in 120u64..1_000_000,
        segment_bytes in 4096u64..(1 << 30),
    ) {
        let text = format!(
            "[server]\nport = {port}\nproduction = {production}\n\
             [actors]\nflush_interval = \"{flush_ms}ms\"\nmax_pending = {max_pending}\nnonce_ttl = \"{nonce_secs}s\"\n\
             [durability]\nsegment_bytes = {segment_bytes}\nmax_bytes = {segment_bytes}\n"
        );
        let config = Config::from_toml(&text).map_err(TestCaseError::fail)?;
        prop_assert_eq!(config.server.port, port);
        prop_assert_eq!(config.server.production, production);
        prop_assert_eq!(config.actors.flush_interval, Duration::from_millis(flush_ms));
        prop_assert_eq!(config.actors.max_pending, max_pending);
        prop_assert_eq!(config.actors.nonce_ttl, Duration::from_secs(nonce_secs));
        prop_assert_eq!(config.durability.segment_bytes, segment_bytes);
    }

    #[test]
    fn the_nonce_memory_never_falls_below_a_tickets_window(nonce_ms in 0u64..240_000) {
        let text = format!("[actors]\nnonce_ttl = \"{nonce_ms}ms\"\n");
        let loaded = Config::from_toml(&text);
        prop_assert_eq!(loaded.is_ok(), Duration::from_millis(nonce_ms) >= MIN_NONCE_TTL);
    }

    #[test]
    fn log_sizes_below_their_bounds_are_refused(segment_bytes in 0u64..16_384, max_bytes in 0u64..32_768) {
        let text = format!("[durability]\nsegment_bytes = {segment_bytes}\nmax_bytes = {max_bytes}\n");
        let valid = segment_bytes >= MIN_SEGMENT_BYTES && max_bytes >= segment_bytes;
        prop_assert_eq!(Config::from_toml(&text).is_ok(), valid);
    }

    #[test]
    fn an_unknown_key_is_refused_by_name(section in proptest::sample::select(SECTIONS.to_vec()), key in "zz[a-z]{3,10}") {
        let error = Config::from_toml(&format!("[{section}]\n{key} = 1\n"))
            .err()
            .ok_or_else(|| TestCaseError::fail("accepted"))?;
        prop_assert!(error.contains(&key), "{error}");
    }

    #[test]
    fn integrator_origins_that_are_not_patterns_are_refused(origin in "\\PC{0,30}|https?://[a-z.*]{0,12}(:[0-9]{1,6})?(/[a-z]{0,4})?") {
        let text = format!(
            "[[integrators]]\nid = \"acme\"\nsecret = \"s\"\nallowed_origins = [{}]\n",
            toml_string(&origin)
        );
        let is_pattern = crate::http::origin::Pattern::parse(&origin).is_some();
        prop_assert_eq!(Config::from_toml(&text).is_ok(), is_pattern);
    }
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}
