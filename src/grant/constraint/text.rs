//! The compiled string members: `glob` and `regex` (SPEC section 3.1). Both compile once, when
//! the constraint is parsed, to a `regex::Regex` matched against the whole string.

use regex::{Regex, RegexBuilder};

use crate::limits::{MAX_GLOB_BYTES, MAX_REGEX_BYTES, MAX_REGEX_COMPILED_BYTES};

/// Compiles `body` (a self-contained regular expression) to match whole strings only.
fn whole(body: &str) -> Result<Regex, String> {
    RegexBuilder::new(&format!("^(?:{body})$"))
        .size_limit(MAX_REGEX_COMPILED_BYTES)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => format!(
                "the regular expression compiles to more than {MAX_REGEX_COMPILED_BYTES} bytes"
            ),
            other => format!(
                "bad regular expression: {}",
                super::shown_long(&other.to_string())
            ),
        })
}

/// A `regex` member: the source as written, and its whole-string compiled form.
#[derive(Clone, Debug)]
pub(crate) struct Pattern {
    source: String,
    compiled: Regex,
}

impl Pattern {
    pub(crate) fn parse(source: &str) -> Result<Pattern, String> {
        if source.len() > MAX_REGEX_BYTES {
            return Err(format!("a `regex` is at most {MAX_REGEX_BYTES} bytes"));
        }
        // Compiled alone first: a source that is not one balanced expression (`a)|(b`) would
        // otherwise escape the `^(?:...)$` wrapping.
        RegexBuilder::new(source)
            .size_limit(MAX_REGEX_COMPILED_BYTES)
            .build()
            .map_err(|e| {
                format!(
                    "bad regular expression: {}",
                    super::shown_long(&e.to_string())
                )
            })?;
        Ok(Pattern {
            source: source.to_owned(),
            compiled: whole(source)?,
        })
    }

    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    pub(crate) fn matches(&self, s: &str) -> bool {
        self.compiled.is_match(s)
    }
}

/// A `glob` member: `**` any run, `*` any run without `/`, `?` one character other than `/`.
#[derive(Clone, Debug)]
pub(crate) struct Glob {
    source: String,
    compiled: Regex,
}

impl Glob {
    pub(crate) fn parse(source: &str) -> Result<Glob, String> {
        if source.len() > MAX_GLOB_BYTES {
            return Err(format!("a `glob` is at most {MAX_GLOB_BYTES} bytes"));
        }
        let mut body = String::with_capacity(source.len() * 2);
        let mut chars = source.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '*' => {
                    let mut run = 1;
                    while chars.next_if_eq(&'*').is_some() {
                        run += 1;
                    }
                    match run {
                        1 => body.push_str("[^/]*"),
                        2 => body.push_str("(?s:.*)"),
                        _ => {
                            return Err(
                                "a `glob` has `*` or `**`, never three or more `*` in a row"
                                    .to_owned(),
                            )
                        }
                    }
                }
                '?' => body.push_str("[^/]"),
                other => body.push_str(&regex::escape(other.encode_utf8(&mut [0; 4]))),
            }
        }
        Ok(Glob {
            source: source.to_owned(),
            compiled: whole(&body)?,
        })
    }

    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    pub(crate) fn matches(&self, s: &str) -> bool {
        self.compiled.is_match(s)
    }

    /// `L` when the glob is a literal `L` followed by `**` and nothing else.
    pub(crate) fn literal_head(&self) -> Option<&str> {
        self.source
            .strip_suffix("**")
            .filter(|head| !head.contains(['*', '?']))
    }
}
