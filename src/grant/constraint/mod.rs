//! Argument constraints (SPEC section 3.1) and their coverage (section 3.2).
//!
//! A [`Constraint`] is parsed once, when its token is read (regexes and globs are compiled
//! then), and lives in the token's claims: a warm verify compiles nothing. Everything here is
//! a pure function of its inputs.
//!
//! A new kind of member (a type with `parse`, `allows(&str)` and `covers(&child)`, like the
//! semantic kinds `subpath`, `url` and `cidr` of [`super::semantic`]) is one variant of `Member`
//! and one line in each of `parse_member`, `Member::mask`, `Member::allows`, `Member::name` and
//! `implied` (and `Member::explain` when it has its own words for a refusal).

mod text;

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};

use super::capability::{cmp_numbers, exact_arg, shown, ArgName, ArgValue};
use super::semantic::{cidr::CidrRule, subpath::SubpathRule, url::UrlRule};
use crate::error::Error;
use crate::limits::MAX_CONSTRAINT_DEPTH;

pub(crate) use text::{Glob, Pattern as RegexPattern};

/// The most cases the child `any_of` rule (SPEC 3.2 rule 3) examines before it answers "not
/// covered".
const ANY_OF_BUDGET: u32 = 256;

/// A constraint on one argument value (SPEC section 3.1): the conjunction of its members.
///
/// ```
/// use agent_handoff::grant::{ArgValue, Constraint};
/// let c: Constraint = r#"{"prefix": "reports/", "len": {"max": 64}}"#.parse()?;
/// assert!(c.allows(Some(&ArgValue::from("reports/q3.pdf"))));
/// assert!(!c.allows(Some(&ArgValue::from("secrets/key"))));
/// assert!(!c.allows(None));
/// # Ok::<(), agent_handoff::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Constraint {
    optional: bool,
    members: Vec<Member>,
    /// The object as written (for serialising and for messages).
    source: ArgValue,
}

impl PartialEq for Constraint {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Type masks: which JSON types a member can allow.
const NULL: u8 = 1;
const BOOL: u8 = 2;
const NUM: u8 = 4;
const STR: u8 = 8;
const ARR: u8 = 16;
const OBJ: u8 = 32;
const ANY: u8 = 63;

/// A number bound: its value and whether it is exclusive.
#[derive(Clone, Debug)]
struct Bound {
    value: serde_json::Number,
    exclusive: bool,
}

/// One member of a constraint object.
#[derive(Clone, Debug)]
enum Member {
    Lower(Bound),
    Upper(Bound),
    Const(ArgValue),
    In(Vec<ArgValue>),
    NotIn(Vec<ArgValue>),
    Prefix(String),
    Suffix(String),
    Glob(Glob),
    Regex(RegexPattern),
    Subpath(SubpathRule),
    Url(Box<UrlRule>),
    Cidr(CidrRule),
    Len { min: u64, max: Option<u64> },
    Each(Box<Constraint>),
    SubsetOf(Vec<ArgValue>),
    Fields(Fields),
    AllOf(Vec<Constraint>),
    AnyOf(Vec<Constraint>),
}

/// Constraints on named members of an object (or of a capability's arguments).
#[derive(Clone, Debug, Default)]
pub(crate) struct Fields {
    pub(crate) named: BTreeMap<ArgName, Constraint>,
    pub(crate) closed: bool,
}

fn type_of(v: &ArgValue) -> u8 {
    match v {
        ArgValue::Null => NULL,
        ArgValue::Bool(_) => BOOL,
        ArgValue::Number(_) => NUM,
        ArgValue::String(_) => STR,
        ArgValue::List(_) => ARR,
        ArgValue::Map(_) => OBJ,
    }
}

/// Structural equality, numbers by exact decimal value (SPEC 3.1).
pub(crate) fn value_eq(a: &ArgValue, b: &ArgValue) -> bool {
    match (a, b) {
        (ArgValue::Number(x), ArgValue::Number(y)) => cmp_numbers(x, y) == Some(Ordering::Equal),
        (ArgValue::List(x), ArgValue::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| value_eq(p, q))
        }
        (ArgValue::Map(x), ArgValue::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kp, vp), (kq, vq))| kp == kq && value_eq(vp, vq))
        }
        _ => a == b,
    }
}

fn contains(set: &[ArgValue], v: &ArgValue) -> bool {
    set.iter().any(|s| value_eq(s, v))
}

impl Bound {
    fn allows_above(&self, n: &serde_json::Number) -> bool {
        match cmp_numbers(n, &self.value) {
            Some(Ordering::Greater) => true,
            Some(Ordering::Equal) => !self.exclusive,
            _ => false,
        }
    }
    fn allows_below(&self, n: &serde_json::Number) -> bool {
        match cmp_numbers(n, &self.value) {
            Some(Ordering::Less) => true,
            Some(Ordering::Equal) => !self.exclusive,
            _ => false,
        }
    }
    /// As a lower bound, `self` (a child's) implies `parent`.
    fn lower_implies(&self, parent: &Bound) -> bool {
        match cmp_numbers(&self.value, &parent.value) {
            Some(Ordering::Greater) => true,
            Some(Ordering::Equal) => self.exclusive || !parent.exclusive,
            _ => false,
        }
    }
    /// As an upper bound, `self` (a child's) implies `parent`.
    fn upper_implies(&self, parent: &Bound) -> bool {
        match cmp_numbers(&self.value, &parent.value) {
            Some(Ordering::Less) => true,
            Some(Ordering::Equal) => self.exclusive || !parent.exclusive,
            _ => false,
        }
    }
}

impl Member {
    fn mask(&self) -> u8 {
        match self {
            Member::Lower(_) | Member::Upper(_) => NUM,
            Member::Const(v) => type_of(v),
            Member::In(set) => set.iter().fold(0, |m, v| m | type_of(v)),
            Member::NotIn(_) => ANY,
            Member::Prefix(_) | Member::Suffix(_) | Member::Glob(_) | Member::Regex(_) => STR,
            Member::Subpath(_) | Member::Url(_) | Member::Cidr(_) => STR,
            Member::Len { .. } => STR | ARR,
            Member::Each(_) | Member::SubsetOf(_) => ARR,
            Member::Fields(_) => OBJ,
            Member::AllOf(list) => list.iter().fold(ANY, |m, c| m & c.mask()),
            Member::AnyOf(list) => list.iter().fold(0, |m, c| m | c.mask()),
        }
    }

    /// The member's name on the wire.
    fn name(&self) -> &'static str {
        match self {
            Member::Lower(b) if b.exclusive => "exclusive_min",
            Member::Lower(_) => "min",
            Member::Upper(b) if b.exclusive => "exclusive_max",
            Member::Upper(_) => "max",
            Member::Const(_) => "const",
            Member::In(_) => "in",
            Member::NotIn(_) => "not_in",
            Member::Prefix(_) => "prefix",
            Member::Suffix(_) => "suffix",
            Member::Glob(_) => "glob",
            Member::Regex(_) => "regex",
            Member::Subpath(_) => "subpath",
            Member::Url(_) => "url",
            Member::Cidr(_) => "cidr",
            Member::Len { .. } => "len",
            Member::Each(_) => "each",
            Member::SubsetOf(_) => "subset_of",
            Member::Fields(_) => "fields",
            Member::AllOf(_) => "all_of",
            Member::AnyOf(_) => "any_of",
        }
    }

    fn allows(&self, v: &ArgValue) -> bool {
        match (self, v) {
            (Member::Lower(b), ArgValue::Number(n)) => b.allows_above(n),
            (Member::Upper(b), ArgValue::Number(n)) => b.allows_below(n),
            (Member::Const(c), _) => value_eq(c, v),
            (Member::In(set), _) => contains(set, v),
            (Member::NotIn(set), _) => !contains(set, v),
            (Member::Prefix(p), ArgValue::String(s)) => s.starts_with(p.as_str()),
            (Member::Suffix(p), ArgValue::String(s)) => s.ends_with(p.as_str()),
            (Member::Glob(g), ArgValue::String(s)) => g.matches(s),
            (Member::Regex(r), ArgValue::String(s)) => r.matches(s),
            (Member::Subpath(r), ArgValue::String(s)) => r.allows(s),
            (Member::Url(r), ArgValue::String(s)) => r.allows(s),
            (Member::Cidr(r), ArgValue::String(s)) => r.allows(s),
            (Member::Len { min, max }, ArgValue::String(s)) => {
                in_len(s.chars().count(), *min, *max)
            }
            (Member::Len { min, max }, ArgValue::List(l)) => in_len(l.len(), *min, *max),
            (Member::Each(c), ArgValue::List(l)) => l.iter().all(|x| c.allows(Some(x))),
            (Member::SubsetOf(set), ArgValue::List(l)) => l.iter().all(|x| contains(set, x)),
            (Member::Fields(f), ArgValue::Map(m)) => f.allows(m),
            (Member::AllOf(list), _) => list.iter().all(|c| c.allows(Some(v))),
            (Member::AnyOf(list), _) => list.iter().any(|c| c.allows(Some(v))),
            _ => false,
        }
    }
}

impl Member {
    /// Why a value this member refuses is refused, in the member's own words (the semantic
    /// kinds: which part of the path, URL or address fails); `None` for the other kinds, whose
    /// name and value say it all.
    fn explain(&self, v: &ArgValue) -> Option<String> {
        let ArgValue::String(s) = v else {
            return match self {
                Member::Subpath(_) | Member::Url(_) | Member::Cidr(_) => {
                    Some("the value is not a string".to_owned())
                }
                _ => None,
            };
        };
        match self {
            Member::Subpath(r) => Some(r.refusal(s)),
            Member::Url(r) => Some(r.refusal(s)),
            Member::Cidr(r) => Some(r.refusal(s)),
            _ => None,
        }
    }
}

fn in_len(n: usize, min: u64, max: Option<u64>) -> bool {
    let n = u64::try_from(n).unwrap_or(u64::MAX);
    n >= min && max.is_none_or(|m| n <= m)
}

impl Fields {
    /// Whether the object's members satisfy the field constraints (and, when closed, it has no
    /// other member).
    pub(crate) fn allows(&self, object: &BTreeMap<String, ArgValue>) -> bool {
        self.first_failure(object).is_none()
    }

    /// The first member that fails: its name, and the constraint it fails (`None` when the
    /// fields are closed and do not name it).
    pub(crate) fn first_failure<'a>(
        &'a self,
        object: &'a BTreeMap<String, ArgValue>,
    ) -> Option<(&'a str, Option<&'a Constraint>)> {
        if let Some(name) = self.named.iter().find_map(|(name, c)| {
            (!c.allows(object.get(name.as_str()))).then_some((name.as_str(), Some(c)))
        }) {
            return Some(name);
        }
        if self.closed {
            let unnamed = object
                .keys()
                .find(|k| !self.named.keys().any(|n| n.as_str() == k.as_str()));
            return unnamed.map(|k| (k.as_str(), None));
        }
        None
    }

    /// SPEC 3.2 for `fields` and for capabilities: every named field is named by the child with
    /// a covered constraint; a closed parent needs a closed child naming no other field.
    pub(crate) fn covers(&self, child: &Fields) -> bool {
        self.first_uncovered(child).is_none()
    }

    /// The first field of `self` that `child` does not cover (or, for a closed `self`, the
    /// field `child` names that `self` does not), with both constraints; `Some(("", ..))`
    /// when `self` is closed and `child` is open.
    pub(crate) fn first_uncovered<'a>(
        &'a self,
        child: &'a Fields,
    ) -> Option<(&'a str, Option<&'a Constraint>, Option<&'a Constraint>)> {
        for (name, p) in &self.named {
            match child.named.get(name) {
                Some(c) if p.covers(c) => {}
                // A closed child refuses the member: narrower than an optional one.
                None if child.closed && p.optional => {}
                c => return Some((name.as_str(), Some(p), c)),
            }
        }
        if self.closed {
            if !child.closed {
                return Some(("", None, None));
            }
            if let Some((name, c)) = child
                .named
                .iter()
                .find(|(n, _)| !self.named.contains_key(*n))
            {
                return Some((name.as_str(), None, Some(c)));
            }
        }
        None
    }
}

impl Constraint {
    /// Parses a constraint object from a JSON value already read with exact numbers.
    pub(crate) fn from_value(value: &ArgValue) -> Result<Constraint, String> {
        parse(value, 1, true)
    }

    /// Whether the value (`None`: the argument is absent) satisfies the constraint.
    #[must_use]
    pub fn allows(&self, value: Option<&ArgValue>) -> bool {
        match value {
            None => self.optional,
            Some(v) => self.members.iter().all(|m| m.allows(v)),
        }
    }

    /// The wire name of the first member the value fails (`optional` when it is absent).
    pub(crate) fn failing_member(&self, value: Option<&ArgValue>) -> Option<&'static str> {
        match value {
            None if self.optional => None,
            None => Some("optional"),
            Some(v) => self.members.iter().find(|m| !m.allows(v)).map(Member::name),
        }
    }

    /// The first member the value fails, with its own explanation when it has one (the
    /// semantic kinds, SPEC 3.1): `None` when the value passes or is absent.
    pub(crate) fn failing_explanation(&self, value: &ArgValue) -> Option<String> {
        self.members
            .iter()
            .find(|m| !m.allows(value))
            .and_then(|m| m.explain(value))
    }

    /// Whether the argument may be absent.
    #[must_use]
    pub fn is_optional(&self) -> bool {
        self.optional
    }

    /// Whether every value (and absence) `child` allows, `self` allows, by the rules of SPEC
    /// section 3.2 (sound: a pair the rules do not accept is not covered).
    #[must_use]
    pub fn covers(&self, child: &Constraint) -> bool {
        if child.optional && !self.optional {
            return false;
        }
        let mut budget = ANY_OF_BUDGET;
        covers_members(
            &flatten(&self.members),
            &flatten(&child.members),
            &mut budget,
        )
    }

    fn mask(&self) -> u8 {
        self.members.iter().fold(ANY, |m, x| m & x.mask())
    }
}

impl std::str::FromStr for Constraint {
    type Err = Error;

    /// Parses a constraint object from its JSON text, numbers read exactly (SPEC 3.1).
    fn from_str(text: &str) -> Result<Constraint, Error> {
        let value =
            exact_arg(text, 0).map_err(|e| Error::InvalidCapability(format!("constraint: {e}")))?;
        Constraint::from_value(&value)
            .map_err(|e| Error::InvalidCapability(format!("constraint: {e}")))
    }
}

impl Serialize for Constraint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.source.serialize(s)
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = serde_json::to_string(&self.source).unwrap_or_default();
        f.write_str(&shown_long(&json))
    }
}

/// At most 200 characters of a text, escaped, with `...` when cut.
pub(crate) fn shown_long(s: &str) -> String {
    crate::escape::shown_cut(s, 200, "...")
}

/// A value as shown in a message: its JSON, escaped and cut to 40 characters.
pub(crate) fn shown_value(v: &ArgValue) -> String {
    let json = serde_json::to_string(v).unwrap_or_default();
    crate::escape::shown_cut(&json, 40, "...")
}

/// The members with every `all_of` merged in (SPEC 3.2 rule 2).
fn flatten(members: &[Member]) -> Vec<&Member> {
    let mut out = Vec::with_capacity(members.len());
    for m in members {
        match m {
            Member::AllOf(list) => list.iter().for_each(|c| out.extend(flatten(&c.members))),
            other => out.push(other),
        }
    }
    out
}

fn allows_all(members: &[&Member], v: &ArgValue) -> bool {
    members.iter().all(|m| m.allows(v))
}

/// SPEC 3.2 rules 3 to 5, on flattened member lists (absence is rule 1, done by the caller).
fn covers_members(p: &[&Member], c: &[&Member], budget: &mut u32) -> bool {
    // Rule 3: a child `any_of` splits the child into its branches.
    if let Some((at, Member::AnyOf(branches))) = c
        .iter()
        .enumerate()
        .find(|(_, m)| matches!(m, Member::AnyOf(_)))
    {
        return branches.iter().all(|b| {
            if *budget == 0 {
                return false;
            }
            *budget -= 1;
            let mut case: Vec<&Member> = c
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != at)
                .map(|(_, m)| *m)
                .collect();
            case.extend(flatten(&b.members));
            covers_members(p, &case, budget)
        });
    }
    // Rule 4: a finite child.
    let finite = c.iter().find_map(|m| match m {
        Member::Const(v) => Some(std::slice::from_ref(v)),
        Member::In(set) => Some(set.as_slice()),
        _ => None,
    });
    if let Some(set) = finite {
        return set.iter().all(|v| !allows_all(c, v) || allows_all(p, v));
    }
    // Rule 5: member by member.
    p.iter().all(|m| implied(m, c, budget))
}

/// Whether the child's members `c` imply the parent member `m` (SPEC 3.2 rule 5).
fn implied(m: &Member, c: &[&Member], budget: &mut u32) -> bool {
    let any = |f: &dyn Fn(&Member) -> bool| c.iter().any(|x| f(x));
    match m {
        Member::Lower(pb) => any(&|x| matches!(x, Member::Lower(cb) if cb.lower_implies(pb))),
        Member::Upper(pb) => any(&|x| matches!(x, Member::Upper(cb) if cb.upper_implies(pb))),
        Member::Const(_) | Member::In(_) => false,
        Member::NotIn(ps) => {
            any(&|x| matches!(x, Member::NotIn(cs) if ps.iter().all(|v| contains(cs, v))))
        }
        Member::Prefix(p) => any(&|x| matches!(x, Member::Prefix(q) if q.starts_with(p.as_str()))),
        Member::Suffix(p) => any(&|x| matches!(x, Member::Suffix(q) if q.ends_with(p.as_str()))),
        Member::Glob(g) => any(&|x| match x {
            Member::Glob(h) => h.source() == g.source(),
            Member::Prefix(q) => g.literal_head().is_some_and(|l| q.starts_with(l)),
            _ => false,
        }),
        Member::Regex(r) => any(&|x| matches!(x, Member::Regex(q) if q.source() == r.source())),
        Member::Subpath(r) => any(&|x| matches!(x, Member::Subpath(q) if r.covers(q))),
        Member::Url(r) => any(&|x| matches!(x, Member::Url(q) if r.covers(q))),
        Member::Cidr(r) => any(&|x| matches!(x, Member::Cidr(q) if r.covers(q))),
        Member::Len { min, max } => any(&|x| match x {
            Member::Len {
                min: cmin,
                max: cmax,
            } => cmin >= min && max.is_none_or(|pm| cmax.is_some_and(|cm| cm <= pm)),
            _ => false,
        }),
        Member::Each(pc) => c.iter().any(|x| match x {
            Member::Each(cc) => {
                covers_members(&flatten(&pc.members), &flatten(&cc.members), budget)
            }
            _ => false,
        }),
        Member::SubsetOf(ps) => {
            any(&|x| matches!(x, Member::SubsetOf(cs) if cs.iter().all(|v| contains(ps, v))))
        }
        Member::Fields(pf) => any(&|x| matches!(x, Member::Fields(cf) if pf.covers(cf))),
        Member::AnyOf(branches) => branches
            .iter()
            .any(|b| covers_members(&flatten(&b.members), c, budget)),
        // Flattened away before this is called.
        Member::AllOf(list) => list
            .iter()
            .all(|b| covers_members(&flatten(&b.members), c, budget)),
    }
}

// ------------------------------------------------------------------------------- parsing

fn parse(value: &ArgValue, depth: usize, top: bool) -> Result<Constraint, String> {
    if depth > MAX_CONSTRAINT_DEPTH {
        return Err(format!(
            "constraints nest more than {MAX_CONSTRAINT_DEPTH} levels deep"
        ));
    }
    let ArgValue::Map(object) = value else {
        return Err("a constraint must be a JSON object".to_owned());
    };
    let mut optional = false;
    let mut closed = false;
    let mut members = Vec::with_capacity(object.len());
    for (key, v) in object {
        match key.as_str() {
            "optional" => {
                if !top || *v != ArgValue::Bool(true) {
                    return Err(
                        "`optional` must be `true`, and only at the top of a `limits` or \
                         `fields` entry"
                            .to_owned(),
                    );
                }
                optional = true;
            }
            "closed" => {
                if !object.contains_key("fields") || *v != ArgValue::Bool(true) {
                    return Err("`closed` must be `true`, and only beside `fields`".to_owned());
                }
                closed = true;
            }
            _ => members.push(parse_member(key, v, depth)?),
        }
    }
    if closed {
        if let Some(Member::Fields(f)) = members.iter_mut().find(|m| matches!(m, Member::Fields(_)))
        {
            f.closed = true;
        }
    }
    check_bounds(&members)?;
    let constraint = Constraint {
        optional,
        members,
        source: value.clone(),
    };
    if constraint.mask() == 0 {
        return Err(format!(
            "constraint `{constraint}` has members that no one type can satisfy"
        ));
    }
    Ok(constraint)
}

fn number(key: &str, v: &ArgValue) -> Result<serde_json::Number, String> {
    v.as_number()
        .cloned()
        .ok_or_else(|| format!("`{key}` must be a number"))
}

fn string(key: &str, v: &ArgValue) -> Result<String, String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("`{key}` must be a string"))
}

fn scalar_set(key: &str, v: &ArgValue) -> Result<Vec<ArgValue>, String> {
    match v {
        ArgValue::List(items)
            if !items.is_empty()
                && items
                    .iter()
                    .all(|x| matches!(x, ArgValue::String(_) | ArgValue::Number(_))) =>
        {
            Ok(items.clone())
        }
        _ => Err(format!(
            "`{key}` must be a non-empty array of strings and numbers"
        )),
    }
}

fn list(key: &str, v: &ArgValue, depth: usize) -> Result<Vec<Constraint>, String> {
    match v {
        ArgValue::List(items) if !items.is_empty() => {
            items.iter().map(|x| parse(x, depth + 1, false)).collect()
        }
        _ => Err(format!(
            "`{key}` must be a non-empty array of constraint objects"
        )),
    }
}

fn len_bound(key: &str, v: Option<&ArgValue>) -> Result<Option<u64>, String> {
    v.map(|v| {
        v.as_number()
            .and_then(serde_json::Number::as_u64)
            .ok_or_else(|| format!("`len.{key}` must be a non-negative integer"))
    })
    .transpose()
}

/// A semantic member's value as plain JSON, for the semantic kinds' parsers (parse time only).
fn semantic_json(v: &ArgValue) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn parse_member(key: &str, v: &ArgValue, depth: usize) -> Result<Member, String> {
    let bound = |exclusive| -> Result<Bound, String> {
        Ok(Bound {
            value: number(key, v)?,
            exclusive,
        })
    };
    Ok(match key {
        "min" => Member::Lower(bound(false)?),
        "exclusive_min" => Member::Lower(bound(true)?),
        "max" => Member::Upper(bound(false)?),
        "exclusive_max" => Member::Upper(bound(true)?),
        "const" => Member::Const(v.clone()),
        "in" => Member::In(scalar_set(key, v)?),
        "not_in" => Member::NotIn(scalar_set(key, v)?),
        "subset_of" => Member::SubsetOf(scalar_set(key, v)?),
        "prefix" => Member::Prefix(string(key, v)?),
        "suffix" => Member::Suffix(string(key, v)?),
        "glob" => Member::Glob(Glob::parse(&string(key, v)?)?),
        "regex" => Member::Regex(RegexPattern::parse(&string(key, v)?)?),
        "subpath" => Member::Subpath(SubpathRule::parse(&semantic_json(v))?),
        "url" => Member::Url(Box::new(UrlRule::parse(&semantic_json(v))?)),
        "cidr" => Member::Cidr(CidrRule::parse(&semantic_json(v))?),
        "len" => {
            let ArgValue::Map(m) = v else {
                return Err("`len` must be an object `{\"min\": n, \"max\": m}`".to_owned());
            };
            if m.is_empty() || m.keys().any(|k| k != "min" && k != "max") {
                return Err("`len` has `min`, `max` or both, and nothing else".to_owned());
            }
            let min = len_bound("min", m.get("min"))?.unwrap_or(0);
            let max = len_bound("max", m.get("max"))?;
            if max.is_some_and(|max| min > max) {
                return Err("`len.min` is above `len.max`".to_owned());
            }
            Member::Len { min, max }
        }
        "each" => Member::Each(Box::new(parse(v, depth + 1, false)?)),
        "fields" => {
            let ArgValue::Map(m) = v else {
                return Err("`fields` must be an object of constraint objects".to_owned());
            };
            let mut named = BTreeMap::new();
            for (name, c) in m {
                let name = ArgName::parse(name)?;
                named.insert(name, parse(c, depth + 1, true)?);
            }
            Member::Fields(Fields {
                named,
                closed: false,
            })
        }
        "all_of" => Member::AllOf(list(key, v, depth)?),
        "any_of" => Member::AnyOf(list(key, v, depth)?),
        other => {
            return Err(format!(
                "unknown constraint member `{}` (SPEC section 3.1)",
                shown(other)
            ))
        }
    })
}

/// Refuses number bounds that allow no number (`min > max`, `exclusive_min >= max`, ...).
fn check_bounds(members: &[Member]) -> Result<(), String> {
    for lo in members.iter().filter_map(|m| match m {
        Member::Lower(b) => Some(b),
        _ => None,
    }) {
        for hi in members.iter().filter_map(|m| match m {
            Member::Upper(b) => Some(b),
            _ => None,
        }) {
            let empty = match cmp_numbers(&lo.value, &hi.value) {
                Some(Ordering::Less) => false,
                Some(Ordering::Equal) => lo.exclusive || hi.exclusive,
                _ => true,
            };
            if empty {
                return Err(format!(
                    "the bounds {} and {} allow no number",
                    lo.value, hi.value
                ));
            }
        }
    }
    Ok(())
}
