//! Message bodies lose their HTML (tags, attributes, comments, and the
//! content of script/style/textarea/noscript) but keep plain text as typed:
//! `a < b & c` stays `a < b & c`, because clients render bodies as text.

use std::collections::HashSet;
use std::sync::LazyLock;

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::empty();
    builder.clean_content_tags(HashSet::from([
        "script", "style", "textarea", "noscript", "option", "template",
    ]));
    builder
});

/// Strips HTML from a message body, leaving its text.
pub fn strip_html(body: &str) -> String {
    if !body.contains(['<', '&']) {
        return body.to_owned();
    }
    let cleaned = CLEANER.clean(body).to_string();
    html_escape::decode_html_entities(&cleaned).into_owned()
}

#[cfg(test)]
mod tests {
    use super::strip_html;

    #[test]
    fn removes_markup_and_keeps_text() {
        assert_eq!(strip_html("a < b & c"), "a < b & c");
        assert_eq!(strip_html("<b>hi</b> \"q\""), "hi \"q\"");
        assert_eq!(strip_html("<script>alert(1)</script>ok"), "ok");
        assert_eq!(strip_html("<img src=x onerror=alert(1)>"), "");
        assert_eq!(strip_html("<style>p{}</style><p title=x>t</p>"), "t");
        assert_eq!(strip_html("<!-- c -->z"), "z");
        assert_eq!(strip_html("1 < 2 > 0"), "1 < 2 > 0");
        assert_eq!(strip_html("plain"), "plain");
    }
}
