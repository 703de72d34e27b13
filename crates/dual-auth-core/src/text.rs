//! Untrusted text (token headers, identity-provider error bodies, API answers) made safe to
//! put into messages, logs, terminals and web pages.

use std::fmt::Write;

/// The most characters of an identity provider's OAuth `error` kept in an error.
pub const MAX_OAUTH_ERROR_CHARS: usize = 64;
/// The most characters of an identity provider's `error_description` kept in an error.
pub const MAX_OAUTH_DESCRIPTION_CHARS: usize = 256;

/// Whether `c` could forge a log line or drive a terminal: control characters (C0, DEL and
/// C1, so newlines and escape sequences) and the bidirectional overrides and isolates that
/// reorder what is shown.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every unsafe character written as `\uXXXX` (a form JSON reads back), so it
/// can neither add a line of its own to a log nor send escape sequences to a terminal.
/// With `keep_newlines`, `\n` stays: for multi-line output such as pretty JSON.
///
/// ```
/// use dual_auth_core::escape_untrusted;
/// assert_eq!(escape_untrusted("RS256\nINFO forged\u{1b}[2J", false), "RS256\\u000aINFO forged\\u001b[2J");
/// assert_eq!(escape_untrusted("line 1\nline 2", true), "line 1\nline 2");
/// ```
pub fn escape_untrusted(text: &str, keep_newlines: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_unsafe(c) && !(keep_newlines && c == '\n') {
            // Infallible: writing to a String.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` for HTML element content and quoted attribute values: `&`, `<`, `>`, `"` and `'`
/// written as character references (what a page shows of a claim, a parameter or an
/// identity provider's words).
///
/// ```
/// use dual_auth_core::escape_html;
/// assert_eq!(escape_html("<b title=\"x\">'&'</b>"), "&lt;b title=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/b&gt;");
/// ```
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// At most `max_chars` characters of `text`, escaped as [`escape_untrusted`] does (newlines
/// included), ending in `…` when cut.
///
/// ```
/// use dual_auth_core::truncate_untrusted;
/// assert_eq!(truncate_untrusted("invalid_client", 64), "invalid_client");
/// assert_eq!(truncate_untrusted("abcdef", 3), "abc…");
/// ```
pub fn truncate_untrusted(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", escape_untrusted(&text[..cut], false)),
        None => escape_untrusted(text, false),
    }
}
