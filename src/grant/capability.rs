//! Capabilities, patterns, limits and intents, and the `covers` relation (SPEC section 3).
//!
//! Everything here is a pure function of its inputs.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use super::constraint::{shown_value, Constraint};
use crate::error::Error;
use crate::limits::{MAX_ACTION_BYTES, MAX_ARG_DEPTH, MAX_RESOURCE_BYTES};
use crate::wire::json::strict_map;

/// An action pattern (`tickets.read`, `tickets.*`, `*`) or a resource pattern
/// (`project/alpha/123`, `project/alpha/*`, `*`).
///
/// A pattern ending in `*` matches every string that starts with the part before the `*`; any
/// other pattern matches only itself. A resource pattern has `*` only alone or as its whole
/// last segment (`project/alpha/*`), and resources are canonical paths
/// ([`check_resource`]), so `project/alpha/*` matches exactly the resources strictly below
/// `project/alpha`: `project/alpha/x` and `project/alpha/x/y`, not `project/alpha`,
/// `project/alphabet` or `project/alpha/../beta` (which is no resource at all).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pattern(Box<str>);

/// Which grammar a pattern follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PatternKind {
    Action,
    Resource,
}

impl PatternKind {
    fn check(self, s: &str, concrete: bool) -> Result<(), String> {
        match self {
            PatternKind::Action => check_action(s, concrete),
            PatternKind::Resource if concrete => resource_problem(s, "intent resource"),
            PatternKind::Resource => resource_pattern_problem(s),
        }
    }
}

fn check_action(s: &str, concrete: bool) -> Result<(), String> {
    if s.is_empty() || s.len() > MAX_ACTION_BYTES {
        return Err(format!("action must be 1 to {MAX_ACTION_BYTES} characters"));
    }
    let body = match s.strip_suffix('*') {
        Some(_) if concrete => {
            return Err(format!(
                "intent action `{}` must be concrete: no `*`",
                shown(s)
            ))
        }
        Some(body) => body,
        None => s,
    };
    if !body
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(format!(
            "action `{}` may contain only `a-z`, `0-9`, `_`, `.` and `-`, with `*` only at the end",
            shown(s)
        ));
    }
    Ok(())
}

/// Checks a concrete resource (SPEC section 3): 1 to 512 bytes of `/`-separated segments, each
/// one or more printable ASCII characters other than `/`, `%`, `\` and `*`, and not `.` or `..`.
fn resource_problem(s: &str, what: &str) -> Result<(), String> {
    resource_problem_in(s, what, s)
}

/// [`resource_problem`], naming `whole` (the pattern `s` is the body of) in the message.
fn resource_problem_in(s: &str, what: &str, whole: &str) -> Result<(), String> {
    if whole.is_empty() || whole.len() > MAX_RESOURCE_BYTES {
        return Err(format!(
            "{what} must be 1 to {MAX_RESOURCE_BYTES} bytes, not {}",
            whole.len()
        ));
    }
    for segment in s.split('/') {
        let problem = if segment.is_empty() {
            "has an empty segment (a leading, trailing or doubled `/`)"
        } else if segment == "." || segment == ".." {
            "has a `.` or `..` segment: resources are canonical paths"
        } else if segment.contains('*') {
            "has a `*`; only a resource pattern may have one, alone or as a whole last segment `/*`"
        } else if segment.contains('%') {
            "has a `%`: resources are decoded text, percent-encoding is not allowed"
        } else if segment.contains('\\') {
            "has a backslash"
        } else if !segment.bytes().all(|b| b.is_ascii_graphic()) {
            "has a space, a control character or a non-ASCII character"
        } else {
            continue;
        };
        return Err(format!(
            "{what} `{}` {problem}; a resource is `/`-separated segments of printable ASCII \
             other than `/`, `%`, `\\` and `*`, none empty, `.` or `..`",
            shown(whole)
        ));
    }
    Ok(())
}

/// Checks a resource pattern: `*`, a concrete resource, or a concrete resource followed by `/*`.
fn resource_pattern_problem(s: &str) -> Result<(), String> {
    if s == "*" {
        return Ok(());
    }
    resource_problem_in(s.strip_suffix("/*").unwrap_or(s), "resource pattern", s)
}

/// Checks that `resource` is a canonical concrete resource (SPEC section 3): 1 to 512 bytes of
/// `/`-separated segments, each one or more printable ASCII characters (`0x21..=0x7E`) other
/// than `/`, `%`, `\` and `*`, and none of them `.` or `..`.
///
/// Intents, capabilities and the verifier apply this rule; a binding that derives a resource
/// from a request (a URL path, say) decodes it first and calls this before using it. A
/// resource that fails is refused, never repaired.
///
/// ```
/// use agent_handoff::grant::check_resource;
/// assert!(check_resource("project/alpha/123").is_ok());
/// assert!(check_resource("project/alpha/../beta").is_err());
/// assert!(check_resource("project/alpha/%2e%2e/beta").is_err());
/// assert!(check_resource("project/alpha//x").is_err());
/// ```
pub fn check_resource(resource: &str) -> Result<(), Error> {
    resource_problem(resource, "resource").map_err(Error::InvalidCapability)
}

/// Checks that `pattern` is a resource pattern (SPEC section 3): `*` alone (every resource), a
/// concrete resource (only itself), or a concrete resource followed by `/*` (every resource
/// strictly below it).
pub fn check_resource_pattern(pattern: &str) -> Result<(), Error> {
    resource_pattern_problem(pattern).map_err(Error::InvalidCapability)
}

/// The first 80 characters of an input, escaped.
pub(crate) fn shown(s: &str) -> String {
    let cut: String = s.chars().take(80).collect();
    crate::escape::escape_text(cut).into_owned()
}

impl Pattern {
    fn parse(s: &str, kind: PatternKind) -> Result<Pattern, Error> {
        kind.check(s, false).map_err(Error::InvalidCapability)?;
        Ok(Pattern(s.into()))
    }

    /// The pattern as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn split(&self) -> (&str, bool) {
        match self.0.strip_suffix('*') {
            Some(prefix) => (prefix, true),
            None => (&self.0, false),
        }
    }

    /// Whether the pattern matches the concrete string `s`.
    #[must_use]
    pub fn matches(&self, s: &str) -> bool {
        match self.split() {
            (prefix, true) => s.starts_with(prefix),
            (exact, false) => s == exact,
        }
    }

    /// Whether every string matched by `other` is matched by `self`.
    #[must_use]
    pub fn covers(&self, other: &Pattern) -> bool {
        match (self.split(), other.split()) {
            ((p, false), (c, false)) => p == c,
            ((_, false), (_, true)) => false,
            ((p, true), (c, _)) => c.starts_with(p),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A JSON value carried in intent arguments or `ext`, with duplicate member names refused.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ArgValue {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as written.
    Number(serde_json::Number),
    /// A string.
    String(String),
    /// An array.
    List(Vec<ArgValue>),
    /// An object (member names unique).
    Map(BTreeMap<String, ArgValue>),
}

impl ArgValue {
    /// The string, if this is a string.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ArgValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is a number.
    #[must_use]
    pub fn as_number(&self) -> Option<&serde_json::Number> {
        match self {
            ArgValue::Number(n) => Some(n),
            _ => None,
        }
    }
}

impl From<&str> for ArgValue {
    fn from(s: &str) -> Self {
        ArgValue::String(s.to_owned())
    }
}
impl From<String> for ArgValue {
    fn from(s: String) -> Self {
        ArgValue::String(s)
    }
}
impl From<bool> for ArgValue {
    fn from(b: bool) -> Self {
        ArgValue::Bool(b)
    }
}
impl From<i64> for ArgValue {
    fn from(n: i64) -> Self {
        ArgValue::Number(n.into())
    }
}
impl From<u64> for ArgValue {
    fn from(n: u64) -> Self {
        ArgValue::Number(n.into())
    }
}
impl From<i32> for ArgValue {
    fn from(n: i32) -> Self {
        ArgValue::Number(n.into())
    }
}

impl Serialize for ArgValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ArgValue::Null => s.serialize_unit(),
            ArgValue::Bool(b) => s.serialize_bool(*b),
            ArgValue::Number(n) => n.serialize(s),
            ArgValue::String(v) => s.serialize_str(v),
            ArgValue::List(v) => v.serialize(s),
            ArgValue::Map(m) => m.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ArgValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = ArgValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<ArgValue, E> {
                Ok(ArgValue::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<ArgValue, E> {
                Ok(ArgValue::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<ArgValue, E> {
                Ok(ArgValue::Number(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<ArgValue, E> {
                Ok(ArgValue::Number(n.into()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<ArgValue, E> {
                serde_json::Number::from_f64(n)
                    .map(ArgValue::Number)
                    .ok_or_else(|| E::custom("number is not finite"))
            }
            fn visit_str<E>(self, s: &str) -> Result<ArgValue, E> {
                Ok(ArgValue::String(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<ArgValue, E> {
                Ok(ArgValue::String(s))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<ArgValue, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(ArgValue::List(out))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<ArgValue, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(k) = map.next_key::<String>()? {
                    if out.contains_key(&k) {
                        return Err(de::Error::custom(format_args!("duplicate member `{k}`")));
                    }
                    let v = map.next_value()?;
                    out.insert(k, v);
                }
                Ok(ArgValue::Map(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses the text of a JSON number, refusing any whose decimal value would change when it is
/// read (SPEC section 3).
///
/// An integer (no fraction or exponent) in the `i64` or `u64` range is kept as an integer. Any
/// other number is read as the nearest IEEE 754 double, and its decimal value must equal the
/// shortest decimal that reads back as that double (what every JSON library prints for it): `0.1`,
/// `19.99`, `1e308`, `-0.0` and `9007199254740992.0` parse; `500.0000000000000001` and
/// `499.99999999999999999` are refused, because both would silently become `500` and be compared
/// as that. Limits are then compared by these decimal values, exactly (an integer with a decimal
/// too), so no number is ever compared as anything but what its text says. Infinite or
/// out-of-range numbers and text that is not a JSON number are refused.
///
/// Numbers in intent arguments and in capability limits are read with this rule, by the
/// builders and by the verifier.
///
/// ```
/// use agent_handoff::grant::exact_number;
/// assert_eq!(exact_number("500").unwrap(), serde_json::Number::from(500));
/// assert!(exact_number("12.75").is_ok());
/// assert!(exact_number("19.99").is_ok());
/// assert!(exact_number("500.0000000000000001").is_err());
/// assert!(exact_number("499.99999999999999999").is_err());
/// ```
pub fn exact_number(text: &str) -> Result<serde_json::Number, Error> {
    exact_number_problem(text).map_err(Error::InvalidCapability)
}

/// The parts of a JSON number's text: the digits with leading and trailing zeros removed and
/// the decimal exponent of the last one (`value = digits * 10^exponent`). `None` when the text
/// is not a JSON number.
fn decimal_parts(text: &str) -> Option<(bool, String, i64)> {
    let bytes = text.as_bytes();
    let (negative, rest) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    let int_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let (int, rest) = rest.split_at(int_len);
    if int.is_empty() || (int.len() > 1 && int.first() == Some(&b'0')) {
        return None;
    }
    let (frac, rest) = match rest.split_first() {
        Some((b'.', after)) => {
            let n = after.iter().take_while(|b| b.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            after.split_at(n)
        }
        _ => (&[][..], rest),
    };
    let mut exponent: i64 = 0;
    match rest.split_first() {
        None => {}
        Some((b'e' | b'E', after)) => {
            let (sign, digits) = match after.split_first() {
                Some((b'-', d)) => (-1, d),
                Some((b'+', d)) => (1, d),
                _ => (1, after),
            };
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            for d in digits {
                // Saturates far beyond any f64 exponent: such a number is refused anyway.
                exponent = (exponent * 10 + i64::from(d - b'0')).min(1 << 40);
            }
            exponent *= sign;
        }
        Some(_) => return None,
    }
    let mut digits: String = int.iter().chain(frac).map(|&b| char::from(b)).collect();
    exponent = exponent.saturating_sub(i64::try_from(frac.len()).unwrap_or(i64::MAX));
    let trailing = digits.len() - digits.trim_end_matches('0').len();
    digits.truncate(digits.len() - trailing);
    exponent = exponent.saturating_add(i64::try_from(trailing).unwrap_or(i64::MAX));
    let digits = digits.trim_start_matches('0').to_owned();
    Some((negative, digits, exponent))
}

fn exact_number_problem(text: &str) -> Result<serde_json::Number, String> {
    let shown_text = || shown(text);
    let Some((negative, digits, exponent)) = decimal_parts(text) else {
        return Err(format!("`{}` is not a JSON number", shown_text()));
    };
    if !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        if let Ok(n) = text.parse::<i64>() {
            return Ok(n.into());
        }
        if let Ok(n) = text.parse::<u64>() {
            return Ok(n.into());
        }
    }
    let inexact = || {
        format!(
            "number `{}` does not denote exactly the value it would be read as (a 64-bit \
             integer or an IEEE 754 double); numbers are compared by the value their text says, so write it with at most \
             17 significant digits, or as an integer in a smaller unit",
            shown_text()
        )
    };
    // A shortest round-trip decimal has at most 17 significant digits: anything longer would
    // change when read (and is refused before any float parsing).
    if digits.len() > 17 {
        return Err(inexact());
    }
    // `str::parse` rounds correctly to the nearest double.
    let value: f64 = text.parse().map_err(|_| inexact())?;
    if !value.is_finite() {
        return Err(inexact());
    }
    // `-0.0` is zero: the sign of a zero is not part of its value.
    if digits.is_empty() {
        return serde_json::Number::from_f64(0.0).ok_or_else(inexact);
    }
    if float_decimal(value) != Some((negative, digits, exponent)) {
        return Err(inexact());
    }
    serde_json::Number::from_f64(value).ok_or_else(inexact)
}

/// The decimal value of a finite double: its shortest round-trip decimal (Rust's `{:e}`, which
/// prints the shortest digits that read back as the same double), as [`decimal_parts`] gives it.
fn float_decimal(value: f64) -> Option<(bool, String, i64)> {
    decimal_parts(&format!("{value:e}"))
}

/// Whether a number, written as JSON, denotes exactly its value (see [`exact_number`]).
fn check_exact(n: &serde_json::Number) -> Result<(), String> {
    if n.is_f64() {
        let text = serde_json::to_string(n).unwrap_or_default();
        exact_number_problem(&text)?;
    }
    Ok(())
}

/// Checks every number in an argument value (see [`exact_number`]).
pub(crate) fn check_exact_arg(value: &ArgValue) -> Result<(), String> {
    match value {
        ArgValue::Number(n) => check_exact(n),
        ArgValue::List(items) => items.iter().try_for_each(check_exact_arg),
        ArgValue::Map(map) => map.values().try_for_each(check_exact_arg),
        ArgValue::Null | ArgValue::Bool(_) | ArgValue::String(_) => Ok(()),
    }
}

/// A JSON object whose member names are unique, its values still unparsed (borrowed from the
/// object's text: reading a level allocates nothing for the levels below).
#[derive(Deserialize)]
struct RawObject<'a>(
    #[serde(borrow, deserialize_with = "strict_map")]
    BTreeMap<String, &'a serde_json::value::RawValue>,
);

/// Reads an argument value from its JSON text with exact numbers (see [`exact_number`]).
/// Each nesting level is read from its own text, so reading is `O(depth * length)`, with the
/// depth bounded by [`MAX_ARG_DEPTH`].
pub(crate) fn exact_arg(text: &str, depth: usize) -> Result<ArgValue, String> {
    if depth > MAX_ARG_DEPTH {
        return Err(format!(
            "argument values nest more than {MAX_ARG_DEPTH} levels deep"
        ));
    }
    let text = text.trim_start_matches([' ', '\t', '\n', '\r']);
    let json = |e: serde_json::Error| crate::wire::json::json_problem(&e);
    match text.as_bytes().first() {
        Some(b'{') => {
            let RawObject(map) = serde_json::from_str(text).map_err(json)?;
            map.into_iter()
                .map(|(k, v)| Ok((k, exact_arg(v.get(), depth + 1)?)))
                .collect::<Result<_, String>>()
                .map(ArgValue::Map)
        }
        Some(b'[') => {
            let items: Vec<&serde_json::value::RawValue> =
                serde_json::from_str(text).map_err(json)?;
            items
                .iter()
                .map(|v| exact_arg(v.get(), depth + 1))
                .collect::<Result<_, String>>()
                .map(ArgValue::List)
        }
        Some(b'-' | b'0'..=b'9') => exact_number_problem(text.trim_end()).map(ArgValue::Number),
        _ => serde_json::from_str(text).map_err(json),
    }
}

/// Deserializes intent `args`: a JSON object with unique member names and exact numbers.
fn exact_args<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, ArgValue>, D::Error> {
    let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
    match exact_arg(raw.get(), 0).map_err(de::Error::custom)? {
        ArgValue::Map(map) => Ok(map),
        _ => Err(de::Error::custom("`args` must be a JSON object")),
    }
}

/// Compares two JSON numbers exactly by their decimal values: integers as integers, anything
/// else by the decimal that its text denotes (for a double read by [`exact_number`], its
/// shortest round-trip decimal), so 10^18 + 1 is above `1e18` and an integer just above a
/// decimal `max` is above it, whatever double the `max` reads as.
pub(crate) fn cmp_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Option<Ordering> {
    match (as_integer(a), as_integer(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => Some(cmp_decimal(&number_decimal(a)?, &number_decimal(b)?)),
    }
}

fn as_integer(n: &serde_json::Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// The decimal value of a JSON number (see [`decimal_parts`]).
fn number_decimal(n: &serde_json::Number) -> Option<(bool, String, i64)> {
    match as_integer(n) {
        Some(i) => decimal_parts(&i.to_string()),
        None => n.as_f64().filter(|f| f.is_finite()).and_then(float_decimal),
    }
}

/// Orders two decimals `(negative, digits, exponent)` with `digits` free of leading and trailing
/// zeros (empty for zero), exactly.
fn cmp_decimal(a: &(bool, String, i64), b: &(bool, String, i64)) -> Ordering {
    let sign = |d: &(bool, String, i64)| -> i8 {
        if d.1.is_empty() {
            0
        } else if d.0 {
            -1
        } else {
            1
        }
    };
    let (sa, sb) = (sign(a), sign(b));
    if sa != sb || sa == 0 {
        return sa.cmp(&sb);
    }
    // Same sign, both non-zero: compare magnitudes, then flip for negatives.
    // The magnitude's order of size is (number of digits + exponent).
    let size = |d: &(bool, String, i64)| {
        i64::try_from(d.1.len())
            .unwrap_or(i64::MAX)
            .saturating_add(d.2)
    };
    let magnitude = size(a).cmp(&size(b)).then_with(|| {
        // Same leading position: compare the digit strings left-aligned (padding with zeros).
        let (x, y) = (a.1.as_bytes(), b.1.as_bytes());
        let n = x.len().max(y.len());
        (0..n)
            .map(|i| {
                let dx = x.get(i).copied().unwrap_or(b'0');
                let dy = y.get(i).copied().unwrap_or(b'0');
                dx.cmp(&dy)
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    if sa < 0 {
        magnitude.reverse()
    } else {
        magnitude
    }
}

/// A limit on one intent argument (SPEC section 3.1): a version 1 form, or a constraint.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ArgLimit {
    /// The argument must be a number no larger than this (version 1 `{"max": n}`).
    Max(serde_json::Number),
    /// The argument must be a string in this set (version 1 `{"in": [strings]}`).
    In(BTreeSet<String>),
    /// Any other constraint object (version 2).
    Constraint(Constraint),
}

impl ArgLimit {
    /// Whether an argument value satisfies this limit. A missing value fails, unless the
    /// constraint is `optional`.
    #[must_use]
    pub fn allows(&self, value: Option<&ArgValue>) -> bool {
        match (self, value) {
            (ArgLimit::Max(max), Some(ArgValue::Number(n))) => {
                matches!(cmp_numbers(n, max), Some(Ordering::Less | Ordering::Equal))
            }
            (ArgLimit::In(set), Some(ArgValue::String(s))) => set.contains(s),
            (ArgLimit::Constraint(c), v) => c.allows(v),
            _ => false,
        }
    }

    /// Whether every value (and absence) `child` allows, `self` (a parent's limit) allows:
    /// between two version 1 forms the version 1 rule (a `max` no smaller, an `in` set that is
    /// a superset), otherwise the rules of SPEC section 3.2.
    #[must_use]
    pub fn covers(&self, child: &ArgLimit) -> bool {
        match (self, child) {
            (ArgLimit::Max(p), ArgLimit::Max(c)) => {
                matches!(cmp_numbers(c, p), Some(Ordering::Less | Ordering::Equal))
            }
            (ArgLimit::In(p), ArgLimit::In(c)) => c.is_subset(p),
            // A version 1 `in` with no member allows nothing: covered by anything, and it
            // covers only what allows nothing (which the rules do not try to prove).
            (_, ArgLimit::In(c)) if c.is_empty() => true,
            (ArgLimit::In(p), _) if p.is_empty() => false,
            _ => match (self.as_constraint(), child.as_constraint()) {
                (Some(p), Some(c)) => p.covers(&c),
                _ => false,
            },
        }
    }

    /// The limit as a version 2 constraint (`None` for an empty version 1 `in`).
    fn as_constraint(&self) -> Option<std::borrow::Cow<'_, Constraint>> {
        let member = |key: &str, value: ArgValue| {
            Constraint::from_value(&ArgValue::Map(BTreeMap::from([(key.to_owned(), value)])))
                .ok()
                .map(std::borrow::Cow::Owned)
        };
        match self {
            ArgLimit::Constraint(c) => Some(std::borrow::Cow::Borrowed(c)),
            ArgLimit::Max(n) => member("max", ArgValue::Number(n.clone())),
            ArgLimit::In(set) => member(
                "in",
                ArgValue::List(set.iter().map(|s| ArgValue::String(s.clone())).collect()),
            ),
        }
    }

    /// The wire name of the first constraint member the value fails.
    pub(crate) fn failing_member(&self, value: Option<&ArgValue>) -> Option<&'static str> {
        match self {
            ArgLimit::Constraint(c) => c.failing_member(value),
            ArgLimit::Max(_) if !self.allows(value) => Some("max"),
            ArgLimit::In(_) if !self.allows(value) => Some("in"),
            _ => None,
        }
    }
}

impl fmt::Display for ArgLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = serde_json::to_string(self).unwrap_or_default();
        f.write_str(&super::constraint::shown_long(&json))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum LimitWire<'a> {
    Max(&'a serde_json::Number),
    In(Vec<&'a String>),
}

impl Serialize for ArgLimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ArgLimit::Max(n) => LimitWire::Max(n).serialize(s),
            ArgLimit::In(set) => LimitWire::In(set.iter().collect()).serialize(s),
            ArgLimit::Constraint(c) => c.serialize(s),
        }
    }
}

impl ArgLimit {
    /// Reads a limit from its value (numbers already exact): `{"max": n}` alone and
    /// `{"in": [strings]}` alone are the version 1 forms, anything else a constraint.
    fn from_value(value: &ArgValue) -> Result<ArgLimit, String> {
        if let ArgValue::Map(m) = value {
            if m.len() == 1 {
                match m.iter().next() {
                    Some((k, ArgValue::Number(n))) if k == "max" => {
                        return Ok(ArgLimit::Max(n.clone()))
                    }
                    Some((k, ArgValue::List(items))) if k == "in" => {
                        let strings: Option<BTreeSet<String>> = items
                            .iter()
                            .map(|v| v.as_str().map(str::to_owned))
                            .collect();
                        if let Some(set) = strings {
                            return Ok(ArgLimit::In(set));
                        }
                    }
                    _ => {}
                }
            }
        }
        Constraint::from_value(value).map(ArgLimit::Constraint)
    }
}

impl<'de> Deserialize<'de> for ArgLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        let value = exact_arg(raw.get(), 0).map_err(de::Error::custom)?;
        ArgLimit::from_value(&value).map_err(de::Error::custom)
    }
}

/// A limit name: `[a-z0-9_]{1,64}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ArgName(String);

impl ArgName {
    /// The name as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn parse(s: &str) -> Result<ArgName, String> {
        if s.is_empty()
            || s.len() > 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(format!(
                "limit name `{}` must be 1 to 64 characters of `a-z`, `0-9` and `_`",
                shown(s)
            ));
        }
        Ok(ArgName(s.to_owned()))
    }
}

impl fmt::Display for ArgName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ArgName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ArgName::parse(&s).map_err(de::Error::custom)
    }
}

/// What an agent may do: an action pattern on a resource pattern, within optional limits on
/// the intent's arguments.
///
/// ```
/// use agent_handoff::{Capability, Intent};
/// let cap = Capability::new("payments.execute", "account/ops/*")?.max("amount", 500)?;
/// let ok = Intent::new("payments.execute", "account/ops/42")?.arg("amount", 120);
/// let too_much = Intent::new("payments.execute", "account/ops/42")?.arg("amount", 900);
/// assert!(cap.allows(&ok));
/// assert!(!cap.allows(&too_much));
/// # Ok::<(), agent_handoff::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Capability {
    action: Pattern,
    resource: Pattern,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    limits: BTreeMap<ArgName, ArgLimit>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    closed: bool,
}

/// Why a capability does not cover a child whose action and resource it covers: the first
/// argument whose constraint is not covered (SPEC section 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ArgumentGap {
    /// The argument (empty when the parent is closed and the child is open).
    pub(crate) argument: String,
    /// The parent's constraint on it (`closed` or `none` when it has none).
    pub(crate) parent: String,
    /// The child's constraint on it (`open` or `none` when it has none).
    pub(crate) child: String,
}

impl fmt::Display for ArgumentGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (argument, parent, child) = (&self.argument, &self.parent, &self.child);
        if argument.is_empty() {
            f.write_str("the parent is closed and the child is open")
        } else if parent == "none" {
            write!(
                f,
                "the parent is closed and does not name argument `{argument}`"
            )
        } else if child == "none" {
            write!(
                f,
                "argument `{argument}` drops the parent's constraint `{parent}`"
            )
        } else {
            write!(
                f,
                "argument `{argument}`: the child's constraint `{child}` is not covered by the \
                 parent's `{parent}`"
            )
        }
    }
}

impl Capability {
    /// A capability without limits.
    pub fn new(action: &str, resource: &str) -> Result<Capability, Error> {
        Ok(Capability {
            action: Pattern::parse(action, PatternKind::Action)?,
            resource: Pattern::parse(resource, PatternKind::Resource)?,
            limits: BTreeMap::new(),
            closed: false,
        })
    }

    /// Closes the capability (SPEC section 3): an intent argument it does not name is refused.
    #[must_use]
    pub fn closed(mut self) -> Capability {
        self.closed = true;
        self
    }

    /// Whether the capability is closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Adds a constraint (SPEC section 3.1) on the argument `name`.
    ///
    /// ```
    /// use agent_handoff::{Capability, Intent};
    /// let cap = Capability::new("files.read", "fs/*")?
    ///     .constrain("path", r#"{"glob": "reports/**", "not_in": ["reports/secret"]}"#.parse()?)?
    ///     .closed();
    /// let ok = Intent::new("files.read", "fs/main")?.arg("path", "reports/2026/q3.pdf");
    /// let extra = Intent::new("files.read", "fs/main")?
    ///     .arg("path", "reports/q3.pdf")
    ///     .arg("mode", "w");
    /// assert!(cap.allows(&ok));
    /// assert!(!cap.allows(&extra));
    /// # Ok::<(), agent_handoff::Error>(())
    /// ```
    pub fn constrain(mut self, name: &str, constraint: Constraint) -> Result<Capability, Error> {
        let name = ArgName::parse(name).map_err(Error::InvalidCapability)?;
        self.limits.insert(name, ArgLimit::Constraint(constraint));
        Ok(self)
    }

    /// Adds a `max` limit: the argument `name` must be a number no larger than `max`.
    ///
    /// A float `max` is compared by the decimal it is written as, its shortest round-trip
    /// decimal (see [`exact_number`]): `0.1` is one tenth, exactly.
    pub fn max(
        mut self,
        name: &str,
        max: impl Into<serde_json::Number>,
    ) -> Result<Capability, Error> {
        let name = ArgName::parse(name).map_err(Error::InvalidCapability)?;
        let max = max.into();
        check_exact(&max).map_err(|e| Error::InvalidCapability(format!("limit `{name}`: {e}")))?;
        self.limits.insert(name, ArgLimit::Max(max));
        Ok(self)
    }

    /// Adds an `in` limit: the argument `name` must be one of these strings.
    pub fn one_of<I, S>(mut self, name: &str, values: I) -> Result<Capability, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let name = ArgName::parse(name).map_err(Error::InvalidCapability)?;
        self.limits.insert(
            name,
            ArgLimit::In(values.into_iter().map(Into::into).collect()),
        );
        Ok(self)
    }

    /// The action pattern.
    #[must_use]
    pub fn action(&self) -> &Pattern {
        &self.action
    }

    /// The resource pattern.
    #[must_use]
    pub fn resource(&self) -> &Pattern {
        &self.resource
    }

    /// The argument limits.
    #[must_use]
    pub fn limits(&self) -> &BTreeMap<ArgName, ArgLimit> {
        &self.limits
    }

    /// Whether this capability grants the concrete intent: the action and resource match and
    /// every limit is satisfied by the intent's arguments.
    /// A closed capability also refuses an argument it does not name.
    #[must_use]
    pub fn allows(&self, intent: &Intent) -> bool {
        self.action.matches(&intent.action)
            && self.resource.matches(&intent.resource)
            && self.argument_failure(intent).is_none()
    }

    /// Why the intent's arguments fail this capability, in words: which argument, which
    /// constraint member, and the value (escaped and cut short). `None` when they pass.
    pub(crate) fn argument_failure(&self, intent: &Intent) -> Option<String> {
        for (name, limit) in &self.limits {
            let value = intent.args.get(name.as_str());
            if !limit.allows(value) {
                let member = limit.failing_member(value).unwrap_or("constraint");
                return Some(match value {
                    None => format!("argument `{name}` is missing; it is required by `{limit}`"),
                    Some(v) => {
                        let mut text = format!(
                            "argument `{name}` = {} fails `{member}` of `{limit}`",
                            shown_value(v)
                        );
                        if let ArgLimit::Constraint(c) = limit {
                            if let Some(why) = c.failing_explanation(v) {
                                text.push_str(": ");
                                text.push_str(&why);
                            }
                        }
                        text
                    }
                });
            }
        }
        if self.closed {
            let unnamed = intent
                .args
                .keys()
                .find(|k| !self.limits.keys().any(|n| n.as_str() == k.as_str()))?;
            return Some(format!(
                "argument `{}` is not named by the closed capability `{self}`",
                shown(unnamed)
            ));
        }
        None
    }

    /// Whether this capability covers `child`: action and resource patterns cover, and every
    /// limit of `self` is present in `child` and at least as tight.
    /// When `self` is closed, `child` must be closed and name no argument `self` does not.
    #[must_use]
    pub fn covers(&self, child: &Capability) -> bool {
        self.patterns_cover(child) && self.argument_gap(child).is_none()
    }

    /// Whether the action and resource patterns cover `child`'s.
    pub(crate) fn patterns_cover(&self, child: &Capability) -> bool {
        self.action.covers(&child.action) && self.resource.covers(&child.resource)
    }

    /// The first argument rule of SPEC section 3 that `child` breaks, or `None`.
    pub(crate) fn argument_gap(&self, child: &Capability) -> Option<ArgumentGap> {
        let gap = |argument: &str, parent: String, child: String| ArgumentGap {
            argument: argument.to_owned(),
            parent,
            child,
        };
        for (name, limit) in &self.limits {
            match child.limits.get(name) {
                Some(c) if limit.covers(c) => {}
                Some(c) => return Some(gap(name.as_str(), limit.to_string(), c.to_string())),
                // A closed child refuses the argument: narrower than an optional one.
                None if child.closed && limit.allows(None) => {}
                None => return Some(gap(name.as_str(), limit.to_string(), "none".to_owned())),
            }
        }
        if self.closed {
            if !child.closed {
                return Some(gap("", "closed".to_owned(), "open".to_owned()));
            }
            if let Some((name, c)) = child
                .limits
                .iter()
                .find(|(n, _)| !self.limits.contains_key(*n))
            {
                return Some(gap(name.as_str(), "none".to_owned(), c.to_string()));
            }
        }
        None
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.action, self.resource)?;
        for (name, limit) in &self.limits {
            match limit {
                ArgLimit::Max(n) => write!(f, ", {name} <= {n}")?,
                ArgLimit::In(set) => write!(f, ", {name} in {set:?}")?,
                ArgLimit::Constraint(c) => write!(f, ", {name} {c}")?,
            }
        }
        if self.closed {
            f.write_str(", closed")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CapabilityWire {
    action: String,
    resource: String,
    #[serde(default, deserialize_with = "strict_map")]
    limits: BTreeMap<ArgName, ArgLimit>,
    #[serde(default)]
    closed: bool,
}

impl<'de> Deserialize<'de> for Capability {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = CapabilityWire::deserialize(d)?;
        PatternKind::Action
            .check(&wire.action, false)
            .map_err(de::Error::custom)?;
        PatternKind::Resource
            .check(&wire.resource, false)
            .map_err(de::Error::custom)?;
        Ok(Capability {
            action: Pattern(wire.action.into()),
            resource: Pattern(wire.resource.into()),
            limits: wire.limits,
            closed: wire.closed,
        })
    }
}

/// What a handoff asks the recipient to do: a concrete action on a concrete resource, with
/// optional arguments that capability limits are checked against.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Intent {
    action: String,
    resource: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    args: BTreeMap<String, ArgValue>,
}

impl Intent {
    /// A concrete intent (no `*` allowed).
    pub fn new(action: &str, resource: &str) -> Result<Intent, Error> {
        PatternKind::Action
            .check(action, true)
            .map_err(Error::InvalidCapability)?;
        PatternKind::Resource
            .check(resource, true)
            .map_err(Error::InvalidCapability)?;
        Ok(Intent {
            action: action.to_owned(),
            resource: resource.to_owned(),
            args: BTreeMap::new(),
        })
    }

    /// Adds an argument. A float in it must be written exactly by its JSON text (see
    /// [`exact_number`]), else sealing the envelope fails.
    #[must_use]
    pub fn arg(mut self, name: &str, value: impl Into<ArgValue>) -> Intent {
        self.args.insert(name.to_owned(), value.into());
        self
    }

    /// The action.
    #[must_use]
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The resource.
    #[must_use]
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The arguments.
    #[must_use]
    pub fn args(&self) -> &BTreeMap<String, ArgValue> {
        &self.args
    }

    /// Checks that every number in the arguments is written exactly by its JSON text (see
    /// [`exact_number`]); the envelope builder refuses an intent that fails.
    pub(crate) fn check_numbers(&self) -> Result<(), Error> {
        self.args.iter().try_for_each(|(name, value)| {
            check_exact_arg(value).map_err(|e| {
                Error::InvalidCapability(format!("intent argument `{}`: {e}", shown(name)))
            })
        })
    }
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.action, self.resource)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentWire {
    action: String,
    resource: String,
    #[serde(default, deserialize_with = "exact_args")]
    args: BTreeMap<String, ArgValue>,
}

impl<'de> Deserialize<'de> for Intent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = IntentWire::deserialize(d)?;
        PatternKind::Action
            .check(&wire.action, true)
            .map_err(de::Error::custom)?;
        PatternKind::Resource
            .check(&wire.resource, true)
            .map_err(de::Error::custom)?;
        Ok(Intent {
            action: wire.action,
            resource: wire.resource,
            args: wire.args,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s, PatternKind::Resource).unwrap()
    }

    #[test]
    fn pattern_covers_examples_from_the_spec() {
        let tickets = Pattern::parse("tickets.*", PatternKind::Action).unwrap();
        let read = Pattern::parse("tickets.read", PatternKind::Action).unwrap();
        let read_star = Pattern::parse("tickets.read*", PatternKind::Action).unwrap();
        assert!(tickets.covers(&read));
        assert!(tickets.covers(&read_star));
        assert!(read.covers(&read));
        assert!(!read.covers(&read_star));
        assert!(!read.covers(&tickets));
        assert!(!read_star.covers(&tickets));
        assert!(p("*").covers(&p("anything/*")));
        assert!(p("*").matches(""));
    }

    #[test]
    fn pattern_syntax() {
        assert!(Pattern::parse("Tickets.read", PatternKind::Action).is_err());
        assert!(Pattern::parse("tick*ets", PatternKind::Action).is_err());
        assert!(Pattern::parse("", PatternKind::Action).is_err());
        assert!(Pattern::parse(&"a".repeat(129), PatternKind::Action).is_err());
        assert!(Pattern::parse("a b", PatternKind::Resource).is_err());
        assert!(Pattern::parse("a/*/b", PatternKind::Resource).is_err());
        assert!(Pattern::parse(&"a".repeat(513), PatternKind::Resource).is_err());
        assert!(Intent::new("tickets.*", "x").is_err());
        assert!(Intent::new("tickets.read", "x/*").is_err());
    }

    #[test]
    fn limits_only_tighten() {
        let parent = Capability::new("pay", "acct/*")
            .unwrap()
            .max("amount", 100)
            .unwrap();
        let tighter = Capability::new("pay", "acct/1")
            .unwrap()
            .max("amount", 50)
            .unwrap();
        let looser = Capability::new("pay", "acct/1")
            .unwrap()
            .max("amount", 150)
            .unwrap();
        let unlimited = Capability::new("pay", "acct/1").unwrap();
        assert!(parent.covers(&tighter));
        assert!(!parent.covers(&looser));
        assert!(!parent.covers(&unlimited));
        let set = Capability::new("a", "r")
            .unwrap()
            .one_of("cur", ["eur", "usd"])
            .unwrap();
        let subset = Capability::new("a", "r")
            .unwrap()
            .one_of("cur", ["eur"])
            .unwrap();
        assert!(set.covers(&subset));
        assert!(!subset.covers(&set));
    }

    #[test]
    fn intent_limits() {
        let cap = Capability::new("pay", "acct/*")
            .unwrap()
            .max("amount", 100)
            .unwrap();
        let i = |v: ArgValue| Intent::new("pay", "acct/1").unwrap().arg("amount", v);
        assert!(cap.allows(&i(100.into())));
        assert!(cap.allows(&i((-5).into())));
        assert!(!cap.allows(&i(101.into())));
        assert!(!cap.allows(&i("100".into())));
        assert!(!cap.allows(&Intent::new("pay", "acct/1").unwrap()));
        let f = serde_json::Number::from_f64(100.5).unwrap();
        assert!(!cap.allows(&i(ArgValue::Number(f))));
    }

    #[test]
    fn wire_forms_are_strict() {
        assert!(serde_json::from_str::<Capability>(r#"{"action":"a","resource":"r"}"#).is_ok());
        assert!(
            serde_json::from_str::<Capability>(r#"{"action":"a","resource":"r","x":1}"#).is_err()
        );
        assert!(serde_json::from_str::<Capability>(
            r#"{"action":"a","action":"b","resource":"r"}"#
        )
        .is_err());
        assert!(serde_json::from_str::<Capability>(
            r#"{"action":"a","resource":"r","limits":{"n":{"max":1,"in":["x"]}}}"#
        )
        .is_err());
        assert!(serde_json::from_str::<Capability>(
            r#"{"action":"a","resource":"r","limits":{"n":{"max":1},"n":{"max":2}}}"#
        )
        .is_err());
        assert!(serde_json::from_str::<Capability>(
            r#"{"action":"a","resource":"r","limits":{"N":{"max":1}}}"#
        )
        .is_err());
        assert!(serde_json::from_str::<Intent>(r#"{"action":"a","resource":"r*"}"#).is_err());
        assert!(serde_json::from_str::<Intent>(
            r#"{"action":"a","resource":"r","args":{"x":{"y":1,"y":2}}}"#
        )
        .is_err());
        assert!(serde_json::from_str::<Intent>(
            r#"{"action":"a","resource":"r","args":{"x":[{"y":[1,{"z":2}]}]}}"#
        )
        .is_ok());
        assert!(serde_json::from_str::<Intent>(
            r#"{"action":"a","resource":"r","args":{"x":[{"y":[1,{"z":2,"z":3}]}]}}"#
        )
        .is_err());
        assert!(
            serde_json::from_str::<Intent>(r#"{"action":"a","resource":"r","args":null}"#).is_err()
        );
        assert!(
            serde_json::from_str::<Intent>(r#"{"action":"a","resource":"r","args":[]}"#).is_err()
        );
        // Arguments nest at most MAX_ARG_DEPTH levels below `args`.
        let nested = |levels: usize| {
            format!(
                r#"{{"action":"a","resource":"r","args":{{"x":{}1{}}}}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            )
        };
        assert!(serde_json::from_str::<Intent>(&nested(MAX_ARG_DEPTH - 1)).is_ok());
        assert!(serde_json::from_str::<Intent>(&nested(MAX_ARG_DEPTH)).is_err());
    }

    #[test]
    fn numbers_must_denote_exactly_their_value() {
        let ok = |t: &str| exact_number(t).unwrap_or_else(|e| panic!("{t}: {e}"));
        let refused = |t: &str| assert!(exact_number(t).is_err(), "{t} was accepted");
        assert_eq!(ok("500"), serde_json::Number::from(500));
        assert_eq!(ok("-0"), serde_json::Number::from(0));
        assert_eq!(
            ok("9007199254740993"),
            serde_json::Number::from(9_007_199_254_740_993u64)
        );
        assert_eq!(
            ok("18446744073709551615"),
            serde_json::Number::from(u64::MAX)
        );
        assert_eq!(
            ok("-9223372036854775808"),
            serde_json::Number::from(i64::MIN)
        );
        assert_eq!(ok("-0.0").as_f64(), Some(0.0));
        assert_eq!(ok("0.5").as_f64(), Some(0.5));
        assert_eq!(ok("12.750e0").as_f64(), Some(12.75));
        assert_eq!(ok("1e18").as_f64(), Some(1e18));
        assert_eq!(ok("1E22").as_f64(), Some(1e22));
        assert_eq!(ok("500.000").as_f64(), Some(500.0));
        assert_eq!(ok("18446744073709551615").as_u64(), Some(u64::MAX));
        assert_eq!(ok("1e308").as_f64(), Some(1e308));
        assert_eq!(ok("0.1").as_f64(), Some(0.1));
        assert_eq!(ok("19.99").as_f64(), Some(19.99));
        assert_eq!(ok("1.7976931348623157e308").as_f64(), Some(f64::MAX));
        assert_eq!(ok("5e-324").as_f64(), Some(f64::from_bits(1)));
        assert_eq!(ok("0.000244140625").as_f64(), Some(2f64.powi(-12)));
        // Each of these would be read as another number than it says.
        refused("500.0000000000000001");
        refused("499.99999999999999999");
        refused("9007199254740993.0");
        refused("18446744073709551616");
        refused("18446744073709551617");
        refused("0.10000000000000001");
        refused(&format!("{:.1074}", f64::from_bits(1)));
        refused("1e400");
        refused("1e-400");
        refused("4e-324");
        refused(&format!("1{}", "0".repeat(5000)));
        refused("1e999999999999999999999");
        for bad in [
            "", "-", "+1", "01", "1.", ".5", "1e", "1e+", "NaN", "inf", "0x10", " 1", "1 ",
        ] {
            refused(bad);
        }
    }

    #[test]
    fn numbers_compare_by_their_decimal_values_exactly() {
        let n = |t: &str| exact_number(t).unwrap_or_else(|e| panic!("{t}: {e}"));
        let cmp = |a: &str, b: &str| cmp_numbers(&n(a), &n(b));
        use Ordering::{Equal, Greater, Less};
        for (a, b, want) in [
            ("500", "500", Equal),
            ("500", "500.0", Equal),
            ("-0.0", "0", Equal),
            ("0.1", "0.1", Equal),
            ("0.1", "1e-1", Equal),
            ("19.99", "20", Less),
            ("20", "19.99", Greater),
            ("1000000000000000001", "1e18", Greater),
            ("999999999999999999", "1e18", Less),
            ("9007199254740993", "9007199254740992.0", Greater),
            ("9007199254740992", "9007199254740992.0", Equal),
            // 2^63 reads as the double 9223372036854775808, which prints as the shorter
            // decimal 9.223372036854776e18: integers between the two compare with the decimal.
            ("9223372036854775900", "9.223372036854776e18", Less),
            ("9223372036854776001", "9.223372036854776e18", Greater),
            ("-1", "0.5", Less),
            ("-0.5", "-0.25", Less),
            ("-3", "-20", Greater),
            ("1e308", "1.7976931348623157e308", Less),
            ("5e-324", "0", Greater),
            ("18446744073709551615", "1e19", Greater),
        ] {
            assert_eq!(cmp(a, b), Some(want), "{a} vs {b}");
            assert_eq!(cmp(b, a), Some(want.reverse()), "{b} vs {a}");
        }
    }

    #[test]
    fn builders_accept_every_finite_double_and_check_numbers() {
        let f = |x: f64| serde_json::Number::from_f64(x).unwrap();
        assert!(Capability::new("pay", "acct/*")
            .unwrap()
            .max("amount", f(0.5))
            .is_ok());
        assert!(Capability::new("pay", "acct/*")
            .unwrap()
            .max("amount", f(1e18))
            .is_ok());
        // Every finite double is written by serde_json as its shortest round-trip decimal,
        // which is exactly the value it is compared as: the builders accept them all.
        for good in [
            0.1,
            1e308,
            19.99,
            2f64.powi(-30),
            f64::MAX,
            f64::from_bits(1),
        ] {
            assert!(Capability::new("pay", "acct/*")
                .unwrap()
                .max("amount", f(good))
                .is_ok());
            let intent = Intent::new("pay", "acct/1")
                .unwrap()
                .arg("amount", ArgValue::List(vec![ArgValue::Number(f(good))]));
            assert!(intent.check_numbers().is_ok(), "{good}");
        }
        let intent = Intent::new("pay", "acct/1")
            .unwrap()
            .arg("amount", ArgValue::Number(f(-0.0)));
        assert!(intent.check_numbers().is_ok());
    }

    #[test]
    fn resources_are_canonical_paths() {
        for ok in [
            "x",
            "r",
            "acct/1",
            "project/alpha/123",
            "account/ops/42",
            "a.b/c..d/...",
            "~user/!$&'()+,;=:@",
        ] {
            check_resource(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(Intent::new("a", ok).is_ok());
            assert!(Capability::new("a", ok).is_ok());
            assert!(Capability::new("a", &format!("{ok}/*")).is_ok());
        }
        assert!(check_resource(&"a".repeat(512)).is_ok());
        for bad in [
            "project/alpha/../beta",
            "project/alpha/%2e%2e/beta",
            "project/alpha//x",
            "./x",
            "x/",
            "/x",
            "a/*/b",
            "project/al*",
            "a/\u{1}",
            "a\\b",
            "a b",
            "a/é",
            "..",
            ".",
            "",
            "/",
            "*",
            "x/*",
            &"a".repeat(513),
        ] {
            assert!(
                matches!(check_resource(bad), Err(Error::InvalidCapability(_))),
                "{bad:?}"
            );
            assert!(
                matches!(Intent::new("a", bad), Err(Error::InvalidCapability(_))),
                "{bad:?}"
            );
            let pattern_ok = bad == "*" || bad == "x/*";
            assert_eq!(Capability::new("a", bad).is_ok(), pattern_ok, "{bad:?}");
            assert!(serde_json::from_str::<Intent>(
                &serde_json::json!({"action": "a", "resource": bad}).to_string()
            )
            .is_err());
        }
        for bad in ["a/*/*", "*/a", "a/**", "/*", "a//*", "../*", "a/%/*", "**"] {
            assert!(
                matches!(Capability::new("a", bad), Err(Error::InvalidCapability(_))),
                "{bad:?}"
            );
        }
        let msg = check_resource("a/\u{7}").unwrap_err().to_string();
        assert!(msg.contains("\\u{7}"), "{msg}");
        let msg = Capability::new("a", "x/../*").unwrap_err().to_string();
        assert!(msg.contains("`x/../*`") && msg.contains("`..`"), "{msg}");
        let msg = Capability::new("a", "/*").unwrap_err().to_string();
        assert!(msg.contains("empty segment"), "{msg}");
        let msg = Capability::new("a", &format!("{}/*", "a".repeat(511)))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("512"), "{msg}");
    }

    #[test]
    fn resource_pattern_coverage() {
        let alpha = p("project/alpha/*");
        assert!(alpha.matches("project/alpha/x"));
        assert!(alpha.matches("project/alpha/x/y"));
        assert!(!alpha.matches("project/alpha"));
        assert!(!alpha.matches("project/alphabet"));
        assert!(alpha.covers(&p("project/alpha/*")));
        assert!(alpha.covers(&p("project/alpha/x/*")));
        assert!(alpha.covers(&p("project/alpha/x")));
        assert!(!alpha.covers(&p("project/alpha")));
        assert!(!alpha.covers(&p("project/alphabet/*")));
        assert!(!alpha.covers(&p("project/*")));
        assert!(p("*").covers(&p("project/*")));
        assert!(p("*").covers(&p("x")));
        assert!(p("x").covers(&p("x")));
        assert!(!p("x").covers(&p("x/*")));
        assert!(!p("x").covers(&p("x/y")));
        assert!(!p("project/*").covers(&p("*")));
    }
}
