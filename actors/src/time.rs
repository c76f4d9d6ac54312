//! Wall-clock helpers: ISO-8601 timestamps as JS `toISOString()` writes them.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// `2025-01-02T03:04:05.678Z` for the given epoch milliseconds.
pub fn iso_from_ms(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Current time as ISO-8601 with milliseconds and `Z`.
pub fn now_iso() -> String {
    iso_from_ms(now_ms())
}

/// Parses an RFC 3339 / ISO-8601 date-time to epoch milliseconds.
pub fn parse_iso_ms(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// `YYYY-MM-DD` (UTC) of epoch milliseconds, the date folder of a batch key.
pub fn date_folder(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_matches_javascript_format() {
        assert_eq!(iso_from_ms(1_735_380_000_123), "2024-12-28T10:00:00.123Z");
        assert_eq!(
            parse_iso_ms("2024-12-28T10:00:00.123Z"),
            Some(1_735_380_000_123)
        );
        assert_eq!(date_folder(1_735_380_000_123), "2024-12-28");
        assert_eq!(parse_iso_ms("yesterday"), None);
    }
}
