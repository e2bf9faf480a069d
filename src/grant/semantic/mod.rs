//! Semantic argument constraints (SPEC section 3, version 2): `subpath`, `url` and `cidr`.
//!
//! Each kind parses an argument the way the system that receives it will (a POSIX path after
//! lexical normalisation, a WHATWG URL as HTTP clients parse it, an IP address in canonical
//! text), and refuses what such systems may read differently. Each kind has the same shape:
//!
//! - `parse(&serde_json::Value) -> Result<Self, String>`: the constraint's JSON value (the part
//!   after the kind's name); `Err` holds the problem, for a `malformed` refusal;
//! - `allows(&self, &str) -> bool`: whether an argument string is allowed;
//! - `covers(&self, &Self) -> bool`: whether every string the child allows, `self` allows too;
//!   sound (when unsure, `false`), checked by property tests;
//! - `refusal(&self, &str) -> String`: why a value is refused, with the value escaped and
//!   truncated;
//! - `to_json(&self) -> serde_json::Value` (tests only: a constraint serialises as written): the
//!   canonical JSON form, which `parse` reads back to an equal rule.
//!
//! They are members of the constraint language ([`super::constraint`]); the exact rules are in
//! SPEC sections 3.1 and 3.2.

pub(crate) mod cidr;
pub(crate) mod subpath;
pub(crate) mod url;

/// How many characters of a refused value a message shows.
const SHOWN_CHARS: usize = 64;

/// A value from an input as a message shows it: its first [`SHOWN_CHARS`] characters, escaped
/// (see [`crate::escape`]), with `…` when it was cut.
fn shown(value: &str) -> String {
    crate::escape::shown_cut(value, SHOWN_CHARS, "…")
}

/// The strings of a JSON value that is a string or a non-empty array of strings, for the list
/// members of the constraints; `what` names the member in the problem text.
fn string_list<'a>(value: &'a serde_json::Value, what: &str) -> Result<Vec<&'a str>, String> {
    match value {
        serde_json::Value::String(s) => Ok(vec![s.as_str()]),
        serde_json::Value::Array(items) if items.is_empty() => Err(format!(
            "`{what}` is an empty list (it would allow nothing)"
        )),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .ok_or_else(|| format!("`{what}` holds a member that is not a string"))
            })
            .collect(),
        _ => Err(format!("`{what}` is not a string or a list of strings")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_escapes_and_cuts() {
        assert_eq!(shown("a\u{1b}b"), "a\\u{1b}b");
        let long = "x".repeat(200);
        let s = shown(&long);
        assert_eq!(s.chars().count(), SHOWN_CHARS + 1);
        assert!(s.ends_with('…'));
    }

    /// The number of cases each soundness property runs: `PROPTEST_CASES` when set (CI sets it
    /// to 10000), else 1024.
    pub(super) fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1024)
    }
}
