//! Capabilities, patterns, limits and intents, and the `covers` relation (SPEC section 3).
//!
//! Everything here is a pure function of its inputs.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::Error;
use crate::jws::strict_map;

/// An action pattern (`tickets.read`, `tickets.*`, `*`) or a resource pattern
/// (`project/alpha/123`, `project/alpha/*`).
///
/// A pattern ending in `*` matches every string that starts with the part before the `*`; any
/// other pattern matches only itself.
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
        let (what, max) = match self {
            PatternKind::Action => ("action", 128),
            PatternKind::Resource => ("resource", 512),
        };
        if s.is_empty() || s.len() > max {
            return Err(format!("{what} must be 1 to {max} characters"));
        }
        let body = match s.strip_suffix('*') {
            Some(_) if concrete => {
                return Err(format!(
                    "intent {what} `{}` must be concrete: no `*`",
                    shown(s)
                ))
            }
            Some(body) => body,
            None => s,
        };
        let ok = match self {
            PatternKind::Action => body.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
            }),
            PatternKind::Resource => body.bytes().all(|b| b.is_ascii_graphic() && b != b'*'),
        };
        if !ok {
            return Err(match self {
                PatternKind::Action => format!(
                    "action `{}` may contain only `a-z`, `0-9`, `_`, `.` and `-`, with `*` only at the end",
                    shown(s)
                ),
                PatternKind::Resource => format!(
                    "resource `{}` must be printable ASCII without spaces, with `*` only at the end",
                    shown(s)
                ),
            });
        }
        Ok(())
    }
}

fn shown(s: &str) -> String {
    s.chars().take(80).collect()
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

/// Compares two JSON numbers exactly: integers as integers, an integer with a float without
/// rounding the integer to `f64` (10^18 + 1 is above `1e18`), floats as `f64`.
fn cmp_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Option<Ordering> {
    match (as_integer(a), as_integer(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        (Some(x), None) => cmp_integer_float(x, b.as_f64()?),
        (None, Some(y)) => cmp_integer_float(y, a.as_f64()?).map(Ordering::reverse),
        (None, None) => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

fn as_integer(n: &serde_json::Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// Compares an integer (an `i64` or `u64`) with a finite float exactly.
fn cmp_integer_float(i: i128, f: f64) -> Option<Ordering> {
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    if !f.is_finite() {
        return None;
    }
    if f >= TWO_POW_64 {
        return Some(Ordering::Less);
    }
    if f <= -TWO_POW_64 {
        return Some(Ordering::Greater);
    }
    let whole = f.trunc();
    // Exact: `whole` is an integer strictly inside +-2^64.
    let w = whole as i128;
    Some(i.cmp(&w).then(if f > whole {
        Ordering::Less
    } else if f < whole {
        Ordering::Greater
    } else {
        Ordering::Equal
    }))
}

/// A limit on one intent argument.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Limit {
    /// The argument must be a number no larger than this.
    Max(serde_json::Number),
    /// The argument must be a string in this set.
    In(BTreeSet<String>),
}

impl Limit {
    /// Whether an argument value satisfies this limit. A missing value fails.
    #[must_use]
    pub fn allows(&self, value: Option<&ArgValue>) -> bool {
        match (self, value) {
            (Limit::Max(max), Some(ArgValue::Number(n))) => {
                matches!(cmp_numbers(n, max), Some(Ordering::Less | Ordering::Equal))
            }
            (Limit::In(set), Some(ArgValue::String(s))) => set.contains(s),
            _ => false,
        }
    }

    /// Whether `self` (a parent's limit) is at least as loose as `child` (same kind, a `max`
    /// no smaller, an `in` set that is a superset).
    #[must_use]
    pub fn covers(&self, child: &Limit) -> bool {
        match (self, child) {
            (Limit::Max(p), Limit::Max(c)) => {
                matches!(cmp_numbers(c, p), Some(Ordering::Less | Ordering::Equal))
            }
            (Limit::In(p), Limit::In(c)) => c.is_subset(p),
            _ => false,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum LimitWire {
    Max(serde_json::Number),
    In(Vec<String>),
}

impl Serialize for Limit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::Max(n) => LimitWire::Max(n.clone()).serialize(s),
            Limit::In(set) => LimitWire::In(set.iter().cloned().collect()).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match LimitWire::deserialize(d)? {
            LimitWire::Max(n) => Limit::Max(n),
            LimitWire::In(v) => Limit::In(v.into_iter().collect()),
        })
    }
}

/// A limit name: `[a-z0-9_]{1,64}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct LimitName(String);

impl LimitName {
    /// The name as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn parse(s: &str) -> Result<LimitName, String> {
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
        Ok(LimitName(s.to_owned()))
    }
}

impl fmt::Display for LimitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for LimitName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        LimitName::parse(&s).map_err(de::Error::custom)
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
    limits: BTreeMap<LimitName, Limit>,
}

impl Capability {
    /// A capability without limits.
    pub fn new(action: &str, resource: &str) -> Result<Capability, Error> {
        Ok(Capability {
            action: Pattern::parse(action, PatternKind::Action)?,
            resource: Pattern::parse(resource, PatternKind::Resource)?,
            limits: BTreeMap::new(),
        })
    }

    /// Adds a `max` limit: the argument `name` must be a number no larger than `max`.
    pub fn max(
        mut self,
        name: &str,
        max: impl Into<serde_json::Number>,
    ) -> Result<Capability, Error> {
        let name = LimitName::parse(name).map_err(Error::InvalidCapability)?;
        self.limits.insert(name, Limit::Max(max.into()));
        Ok(self)
    }

    /// Adds an `in` limit: the argument `name` must be one of these strings.
    pub fn one_of<I, S>(mut self, name: &str, values: I) -> Result<Capability, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let name = LimitName::parse(name).map_err(Error::InvalidCapability)?;
        self.limits.insert(
            name,
            Limit::In(values.into_iter().map(Into::into).collect()),
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
    pub fn limits(&self) -> &BTreeMap<LimitName, Limit> {
        &self.limits
    }

    /// Whether this capability grants the concrete intent: the action and resource match and
    /// every limit is satisfied by the intent's arguments.
    #[must_use]
    pub fn allows(&self, intent: &Intent) -> bool {
        self.action.matches(&intent.action)
            && self.resource.matches(&intent.resource)
            && self
                .limits
                .iter()
                .all(|(name, limit)| limit.allows(intent.args.get(name.as_str())))
    }

    /// Whether this capability covers `child`: action and resource patterns cover, and every
    /// limit of `self` is present in `child` and at least as tight.
    #[must_use]
    pub fn covers(&self, child: &Capability) -> bool {
        self.action.covers(&child.action)
            && self.resource.covers(&child.resource)
            && self.limits.iter().all(|(name, limit)| {
                child
                    .limits
                    .get(name)
                    .is_some_and(|child_limit| limit.covers(child_limit))
            })
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.action, self.resource)?;
        for (name, limit) in &self.limits {
            match limit {
                Limit::Max(n) => write!(f, ", {name} <= {n}")?,
                Limit::In(set) => write!(f, ", {name} in {set:?}")?,
            }
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
    limits: BTreeMap<LimitName, Limit>,
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

    /// Adds an argument.
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
    #[serde(default, deserialize_with = "strict_map")]
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
    }
}
