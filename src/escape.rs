//! Showing text taken from inputs: the one escaping rule of this crate.
//!
//! Text that came from an input (a claim, a member name, a file name, a store's answer) may hold
//! characters that a terminal or log viewer acts on instead of showing: control characters (an
//! ESC starts a terminal command, a newline forges a log line), bidirectional controls (U+202E
//! reverses what follows) and invisible characters (line separators, zero-width characters, tag
//! characters that smuggle hidden text). Every such character is shown escaped:
//!
//! - in human text (error messages, rejection details, standard error) as `\u{..}` in lowercase
//!   hexadecimal, by [`escape_text`] and [`Escaped`];
//! - in JSON output (the command line's JSON, audit records, `inspect`) as `\uXXXX`, by
//!   [`to_json`] and friends: serde_json already escapes the C0 controls, the quote and the
//!   backslash; the other classes are escaped on top.
//!
//! A backslash itself is left alone, so escaping is idempotent: text escaped twice reads the same
//! as text escaped once. (A literal `\u{1b}` in an input therefore shows as itself; it is
//! harmless text.)
//!
//! The command line includes this file as its own module, so both use the same rule.

use std::borrow::Cow;
use std::fmt;

/// Whether `c` is shown escaped: C0 controls, DEL, C1 controls, the Arabic letter mark, the
/// zero-width and directional marks (U+200B..U+200F), the line and paragraph separators and the
/// directional embeddings and overrides (U+2028..U+202E), the invisible operators (U+2060..U+2064),
/// the directional isolates (U+2066..U+2069), the byte order mark (U+FEFF), the interlinear
/// annotation controls (U+FFF9..U+FFFB) and the tag characters (U+E0000..U+E007F).
#[must_use]
pub(crate) fn must_escape(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e007f}'
    )
}

/// Text from an input, displayed with every [`must_escape`] character as `\u{..}`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| must_escape(c)) {
            f.write_str(rest.get(..at).unwrap_or_default())?;
            write!(f, "\\u{{{:x}}}", u32::from(c))?;
            rest = rest.get(at + c.len_utf8()..).unwrap_or_default();
        }
        f.write_str(rest)
    }
}

/// Input text as a message shows it: its first `max_chars` characters, escaped, followed by
/// `mark` when it was cut.
pub(crate) fn shown_cut(text: &str, max_chars: usize, mark: &str) -> String {
    let cut: String = text.chars().take(max_chars).collect();
    let was_cut = cut.len() < text.len();
    let mut out = escape_text(cut).into_owned();
    if was_cut {
        out.push_str(mark);
    }
    out
}

/// `text` with every [`must_escape`] character as `\u{..}`; borrowed when nothing needed it.
#[must_use]
pub(crate) fn escape_text<'a>(text: impl Into<Cow<'a, str>>) -> Cow<'a, str> {
    let text = text.into();
    if text.chars().any(must_escape) {
        Cow::Owned(Escaped(&text).to_string())
    } else {
        text
    }
}

/// Escapes, in serialized JSON, the characters serde_json leaves raw (DEL, C1 and the Unicode
/// classes of [`must_escape`]) as `\uXXXX` (a surrogate pair above U+FFFF). Those characters can
/// only occur inside strings (JSON whitespace is ASCII), so this never changes the structure;
/// the C0 controls outside strings are the pretty printer's own newlines and are kept.
fn escape_json(json: String) -> String {
    // serde_json has escaped the C0 controls inside strings already.
    let left_raw = |c: char| c == '\u{7f}' || (!c.is_ascii() && must_escape(c));
    if !json.chars().any(left_raw) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if left_raw(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = fmt::Write::write_fmt(&mut out, format_args!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Serializes `value` as one line of JSON, every [`must_escape`] character escaped.
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    serde_json::to_string(value).map(escape_json)
}

/// Serializes `value` as indented JSON, every [`must_escape`] character escaped.
pub(crate) fn to_json_pretty<T: serde::Serialize + ?Sized>(
    value: &T,
) -> serde_json::Result<String> {
    serde_json::to_string_pretty(value).map(escape_json)
}

/// Serializes `value` as one line of JSON bytes, every [`must_escape`] character escaped.
pub(crate) fn to_json_vec<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    to_json(value).map(String::into_bytes)
}

#[cfg(test)]
// The command line, which includes this file, denies `unwrap` even in its tests.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NASTY: &str =
        "a\u{1b}]0;owned\u{7}\nFAKE\u{85}\u{202e}\u{2028}\u{2029}\u{feff}\u{e0041}z";

    #[test]
    fn human_text_escapes_every_class_and_is_idempotent() {
        let shown = escape_text(NASTY);
        assert_eq!(
            shown,
            "a\\u{1b}]0;owned\\u{7}\\u{a}FAKE\\u{85}\\u{202e}\\u{2028}\\u{2029}\\u{feff}\\u{e0041}z"
        );
        assert!(!shown.chars().any(must_escape));
        assert_eq!(escape_text(shown.clone()), shown);
        assert!(matches!(escape_text("plain é ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_escapes_every_class_and_keeps_structure() {
        let value = serde_json::json!({ NASTY: [NASTY, "\u{7f}"] });
        for text in [to_json(&value).unwrap(), to_json_pretty(&value).unwrap()] {
            assert!(!text.chars().any(|c| must_escape(c) && c != '\n'), "{text}");
            assert!(
                text.contains("\\u202e\\u2028\\u2029\\ufeff\\udb40\\udc41z"),
                "{text}"
            );
            assert!(
                text.contains("\\u007f") && text.contains("\\u0085"),
                "{text}"
            );
            let back: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(back, value);
        }
        assert!(!to_json(&value).unwrap().contains('\n'));
    }
}
