//! [`RulePolicy`]: request-time policy from a TOML rule file, with risk tiers.
//!
//! The file has a `version`, optional `[tiers.<name>]` tables that classify actions by risk and
//! state what a handoff in that tier must satisfy, and ordered `[[rule]]`s. The first rule that
//! matches decides; if none matches, the handoff is denied (`default-deny`). An allow rule still
//! has to pass the requirements of the intent's tier; a requirement that fails denies with the
//! name `tier:<tier>:<requirement>` (for example `tier:high:step-up`).
//!
//! ```toml
//! version = "2027-01-15.1"
//!
//! [tiers.high]                     # built-in actions: payments.*, deploy.*, code.deploy*, ...
//! max_token_lifetime = 900         # seconds, every link of the chain
//! environments = ["prod", "staging"]
//!
//! [tiers.high.env.prod]            # stricter in prod
//! max_chain_depth = 0              # no re-delegated authority
//! step_up_approvers = ["spiffe://acme.example/approvals"]
//!
//! [[rule]]
//! name = "executor-pays"
//! effect = "allow"
//! senders = ["spiffe://acme.example/agents/executor"]
//! actions = ["payments.execute"]
//! ```
//!
//! See `examples/policies/policy.toml` for every key, with comments.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use serde::Deserialize;
use toml::Spanned;

use crate::clock::UnixTime;
use crate::error::{Error, StoreError};
use crate::grant::{ArgValue, Capability, HandoffMode, Pattern};
use crate::limits::MAX_POLICY_BYTES;
use crate::policy::{Policy, PolicyDecision, PolicyRequest};
use crate::store::RevocationWriter;
use crate::wire::AgentPattern;

/// How many pattern comparisons the warnings of a policy may cost, and how many warnings
/// there may be, so that checking any file within [`MAX_POLICY_BYTES`] stays quick.
const LINT_BUDGET: u64 = 4_000_000;
const MAX_WARNINGS: usize = 100;

/// The name of the decision when no rule matches.
const DEFAULT_DENY: &str = "default-deny";

/// The built-in risk tiers: `low` classifies nothing until the policy file lists its actions;
/// payments, code deployment, secret retrieval and ticket closure are `high`. Neither has
/// requirements until the policy file states them. An action no pattern classifies is in
/// [`DEFAULT_TIER`] unless the file sets `default_tier`.
const BUILTIN_TIERS: [(&str, &[&str]); 2] = [
    ("low", &[]),
    (
        "high",
        &[
            "payments.*",
            "deploy.*",
            "code.deploy*",
            "secrets.*",
            "tickets.close*",
        ],
    ),
];

/// The tier of an action no tier pattern classifies, unless the file says `default_tier`:
/// the strictest built-in tier, so an action nobody thought of (or a name chosen by whoever
/// holds a `*` grant) gets the strictest checks, never the weakest.
const DEFAULT_TIER: &str = "high";

// ------------------------------------------------------------------ file format (serde)

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    version: Spanned<String>,
    #[serde(default)]
    revoke_on_change: bool,
    default_tier: Option<Spanned<String>>,
    #[serde(default)]
    tiers: BTreeMap<Spanned<String>, TierSpec>,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TierSpec {
    actions: Option<Spanned<Vec<Spanned<String>>>>,
    environments: Option<Spanned<Vec<Spanned<String>>>>,
    max_token_lifetime: Option<u64>,
    max_envelope_lifetime: Option<u64>,
    max_chain_depth: Option<u64>,
    step_up_approvers: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    env: BTreeMap<String, RequirementSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequirementSpec {
    max_token_lifetime: Option<u64>,
    max_envelope_lifetime: Option<u64>,
    max_chain_depth: Option<u64>,
    step_up_approvers: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Effect {
    Allow,
    Deny,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ModeSpec {
    Request,
    Delegation,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: Spanned<String>,
    effect: Effect,
    senders: Option<Spanned<Vec<Spanned<String>>>>,
    recipients: Option<Spanned<Vec<Spanned<String>>>>,
    actions: Option<Spanned<Vec<Spanned<String>>>>,
    resources: Option<Spanned<Vec<Spanned<String>>>>,
    mode: Option<ModeSpec>,
    tiers: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    context: BTreeMap<String, Spanned<toml::Value>>,
}

// ------------------------------------------------------------------ compiled policy

/// What a tier demands of a handoff. Unset fields demand nothing.
#[derive(Clone, Debug, Default, PartialEq)]
struct Requirements {
    max_token_lifetime: Option<u64>,
    max_envelope_lifetime: Option<u64>,
    max_chain_depth: Option<u64>,
    step_up_approvers: Option<Vec<AgentPattern>>,
}

impl Requirements {
    /// `self`, with every field `over` sets replacing ours.
    fn overlay(&self, over: &Requirements) -> Requirements {
        Requirements {
            max_token_lifetime: over.max_token_lifetime.or(self.max_token_lifetime),
            max_envelope_lifetime: over.max_envelope_lifetime.or(self.max_envelope_lifetime),
            max_chain_depth: over.max_chain_depth.or(self.max_chain_depth),
            step_up_approvers: over
                .step_up_approvers
                .clone()
                .or_else(|| self.step_up_approvers.clone()),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Tier {
    name: String,
    actions: Vec<Pattern>,
    environments: Option<Vec<String>>,
    base: Requirements,
    by_environment: BTreeMap<String, Requirements>,
}

#[derive(Clone, Debug, PartialEq)]
enum Condition {
    Equals(toml::Value),
    In(Vec<toml::Value>),
}

#[derive(Clone, Debug, PartialEq)]
struct Rule {
    name: String,
    effect: Effect,
    senders: Option<Vec<AgentPattern>>,
    recipients: Option<Vec<AgentPattern>>,
    actions: Option<Vec<Pattern>>,
    resources: Option<Vec<Pattern>>,
    mode: Option<HandoffMode>,
    tiers: Option<Vec<String>>,
    context: Vec<(String, Condition)>,
}

/// A request-time policy loaded from a TOML rule file: ordered allow/deny rules, risk tiers
/// with requirements, and a version recorded with every decision.
///
/// ```
/// use agent_handoff::RulePolicy;
/// let policy: RulePolicy = r#"
/// version = "v1"
/// [[rule]]
/// name = "reads"
/// effect = "allow"
/// actions = ["tickets.read"]
/// "#.parse()?;
/// assert_eq!(policy.version(), "v1");
///
/// let err = "version = \"v1\"\n[[rule]]\nname = \"x\"\neffect = \"maybe\"\n"
///     .parse::<RulePolicy>()
///     .unwrap_err();
/// assert!(err.to_string().contains("line 4"), "{err}");
/// # Ok::<(), agent_handoff::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RulePolicy {
    version: String,
    revoke_on_change: bool,
    tiers: Vec<Tier>,
    /// The index in `tiers` of the tier of unclassified actions.
    default_tier: usize,
    rules: Vec<Rule>,
    warnings: Vec<PolicyWarning>,
}

/// Something in a policy file that loads but is probably not what its author meant: a rule that
/// can never match, or tiers whose action patterns overlap. See [`RulePolicy::warnings`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PolicyWarning {
    /// The 1-based line of the file it is about (0 when it concerns no line of the file: only
    /// built-in values, or the notice that the check stopped early).
    pub line: usize,
    /// What is wrong, and what to do about it.
    pub message: String,
}

impl fmt::Display for PolicyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Whether a policy action pattern matches `action`. Beyond the capability pattern rules, a
/// pattern `x.*` also matches `x` itself, so `payments.*` classifies and catches `payments`.
/// (Capability patterns in tokens keep the SPEC rules.)
fn action_matches(p: &Pattern, action: &str) -> bool {
    p.matches(action) || p.as_str().strip_suffix(".*") == Some(action)
}

/// Whether every action `q` matches (under [`action_matches`]) is matched by `p`.
fn action_covers(p: &Pattern, q: &Pattern) -> bool {
    if q.as_str().ends_with('*') {
        // `q` = `Q*`: `p` must match everything starting with `Q`, and for `Q` = `x.` also `x`,
        // which `p.covers(q)` implies (the prefix of `p` is then a prefix of `x`, or `p` = `x.*`).
        p.covers(q)
    } else {
        action_matches(p, q.as_str())
    }
}

/// Untrusted text (a rule or tier name) shown escaped.
fn esc(s: &str) -> String {
    s.escape_debug().to_string()
}

/// A load problem at a byte range of the source.
struct At {
    span: Option<Range<usize>>,
    problem: String,
}

fn at(span: Range<usize>, problem: impl Into<String>) -> At {
    At {
        span: Some(span),
        problem: problem.into(),
    }
}

/// The 1-based line of byte `offset` of `src`.
pub(super) fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()
        .iter()
        .take(offset)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn action_pattern(s: &Spanned<String>) -> Result<Pattern, At> {
    Capability::new(s.get_ref(), "*")
        .map(|c| c.action().clone())
        .map_err(|e| at(s.span(), format!("invalid action pattern: {}", inner(&e))))
}

fn resource_pattern(s: &Spanned<String>) -> Result<Pattern, At> {
    Capability::new("*", s.get_ref())
        .map(|c| c.resource().clone())
        .map_err(|e| at(s.span(), format!("invalid resource pattern: {}", inner(&e))))
}

fn agent_pattern(s: &Spanned<String>) -> Result<AgentPattern, At> {
    AgentPattern::from_str(s.get_ref()).map_err(|e| at(s.span(), e.to_string()))
}

/// The message of an error without its `invalid capability: ` prefix.
fn inner(e: &Error) -> String {
    match e {
        Error::InvalidCapability(m) => m.clone(),
        other => other.to_string(),
    }
}

fn list<T>(
    items: Option<&Spanned<Vec<Spanned<String>>>>,
    what: &str,
    parse: impl Fn(&Spanned<String>) -> Result<T, At>,
) -> Result<Option<Vec<T>>, At> {
    let Some(items) = items else { return Ok(None) };
    if items.get_ref().is_empty() {
        return Err(at(
            items.span(),
            format!("`{what}` is empty, so it would match nothing; remove it to match anything"),
        ));
    }
    items
        .get_ref()
        .iter()
        .map(parse)
        .collect::<Result<Vec<T>, At>>()
        .map(Some)
}

fn requirements(
    max_token_lifetime: Option<u64>,
    max_envelope_lifetime: Option<u64>,
    max_chain_depth: Option<u64>,
    approvers: Option<&Spanned<Vec<Spanned<String>>>>,
) -> Result<Requirements, At> {
    Ok(Requirements {
        max_token_lifetime,
        max_envelope_lifetime,
        max_chain_depth,
        step_up_approvers: list(approvers, "step_up_approvers", agent_pattern)?,
    })
}

impl RequirementSpec {
    /// The requirements of one `[tiers.<name>.env.<environment>]` table.
    fn compile(&self) -> Result<Requirements, At> {
        requirements(
            self.max_token_lifetime,
            self.max_envelope_lifetime,
            self.max_chain_depth,
            self.step_up_approvers.as_ref(),
        )
    }
}

fn condition(name: &str, value: &Spanned<toml::Value>) -> Result<Condition, At> {
    fn scalar(v: &toml::Value) -> bool {
        matches!(
            v,
            toml::Value::String(_) | toml::Value::Integer(_) | toml::Value::Boolean(_)
        )
    }
    let bad = || {
        at(
            value.span(),
            format!(
                "context condition `{name}` must be a string, integer or boolean (equality) or an array of them (`in`)"
            ),
        )
    };
    match value.get_ref() {
        toml::Value::Array(items) => {
            if items.is_empty() {
                return Err(at(
                    value.span(),
                    format!("context condition `{name}` is an empty array: it would match nothing"),
                ));
            }
            if items.iter().all(scalar) {
                Ok(Condition::In(items.clone()))
            } else {
                Err(bad())
            }
        }
        v if scalar(v) => Ok(Condition::Equals(v.clone())),
        _ => Err(bad()),
    }
}

/// Whether `s` is 1 to 128 characters, none of them a control character: what a version and
/// a rule name must be.
fn printable_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && !s.chars().any(char::is_control)
}

/// The policy version, trimmed.
fn check_version(version: &Spanned<String>) -> Result<&str, At> {
    let trimmed = version.get_ref().trim();
    if !printable_label(trimmed) {
        return Err(at(
            version.span(),
            "`version` must be 1 to 128 printable characters, for example \"2027-01-15.1\"",
        ));
    }
    Ok(trimmed)
}

/// The built-in tiers, in order, with no requirements.
fn builtin_tiers() -> Vec<Tier> {
    BUILTIN_TIERS
        .iter()
        .map(|(name, actions)| Tier {
            name: (*name).to_owned(),
            actions: actions
                .iter()
                .filter_map(|a| Capability::new(a, "*").ok())
                .map(|c| c.action().clone())
                .collect(),
            environments: None,
            base: Requirements::default(),
            by_environment: BTreeMap::new(),
        })
        .collect()
}

/// The tiers: built-in ones first, in order, each replaced by the file's table of the same
/// name, then the file's other tables in name order.
fn compile_tiers(specs: &BTreeMap<Spanned<String>, TierSpec>) -> Result<Vec<Tier>, At> {
    let mut tiers = builtin_tiers();
    for (name, spec) in specs {
        let builtin = tiers.iter().position(|b| b.name == *name.get_ref());
        let tier = compile_tier(name, spec, builtin.and_then(|i| tiers.get(i)))?;
        match builtin.and_then(|i| tiers.get_mut(i)) {
            Some(slot) => *slot = tier,
            None => tiers.push(tier),
        }
    }
    Ok(tiers)
}

/// One `[tiers.<name>]` table. `builtin` is the built-in tier of that name, if any: the table
/// keeps its actions unless it lists its own.
fn compile_tier(
    name: &Spanned<String>,
    spec: &TierSpec,
    builtin: Option<&Tier>,
) -> Result<Tier, At> {
    let whole = name.span();
    let name = name.get_ref();
    if !valid_name(name) {
        return Err(at(
            whole,
            format!("tier name `{name}` may contain only `a-z`, `0-9`, `_` and `-`"),
        ));
    }
    let actions = match (
        list(spec.actions.as_ref(), "actions", action_pattern)?,
        builtin,
    ) {
        (Some(a), _) => a,
        (None, Some(b)) => b.actions.clone(),
        (None, None) => {
            return Err(at(
                whole,
                format!("tier `{name}` is not built in, so it needs `actions = [...]`"),
            ))
        }
    };
    Ok(Tier {
        name: name.clone(),
        actions,
        environments: list(spec.environments.as_ref(), "environments", |s| {
            Ok(s.get_ref().clone())
        })?,
        base: requirements(
            spec.max_token_lifetime,
            spec.max_envelope_lifetime,
            spec.max_chain_depth,
            spec.step_up_approvers.as_ref(),
        )?,
        by_environment: spec
            .env
            .iter()
            .map(|(env, r)| Ok((env.clone(), r.compile()?)))
            .collect::<Result<_, At>>()?,
    })
}

/// The index in `tiers` of the tier of unclassified actions: the one `default_tier` names, or
/// [`DEFAULT_TIER`].
fn default_tier_index(tiers: &[Tier], named: Option<&Spanned<String>>) -> Result<usize, At> {
    let Some(named) = named else {
        return Ok(tiers
            .iter()
            .position(|t| t.name == DEFAULT_TIER)
            .unwrap_or(0));
    };
    tiers
        .iter()
        .position(|t| t.name == *named.get_ref())
        .ok_or_else(|| {
            at(
                named.span(),
                format!(
                    "`default_tier` names unknown tier `{}`; use one of: {}",
                    esc(named.get_ref()),
                    backticked(tiers.iter().map(|t| t.name.as_str())),
                ),
            )
        })
}

/// Refuses the same action pattern in two tiers: it would make the classification ambiguous.
fn check_tiers_disjoint(
    tiers: &[Tier],
    specs: &BTreeMap<Spanned<String>, TierSpec>,
) -> Result<(), At> {
    for (i, a) in tiers.iter().enumerate() {
        for b in tiers.iter().skip(i + 1) {
            if let Some(p) = a.actions.iter().find(|p| b.actions.contains(p)) {
                let span = specs
                    .keys()
                    .find(|k| *k.get_ref() == b.name || *k.get_ref() == a.name)
                    .map(Spanned::span)
                    .unwrap_or(0..0);
                return Err(at(
                    span,
                    format!(
                        "action pattern `{p}` is in both tier `{}` and tier `{}`; keep it in one",
                        a.name, b.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The `[[rule]]`s, in order.
fn compile_rules(specs: &[RuleSpec], tiers: &[Tier]) -> Result<Vec<Rule>, At> {
    let mut rules: Vec<Rule> = Vec::with_capacity(specs.len());
    for spec in specs {
        let rule = compile_rule(spec, tiers, &rules)?;
        rules.push(rule);
    }
    Ok(rules)
}

/// One `[[rule]]`, below the `earlier` ones.
fn compile_rule(r: &RuleSpec, tiers: &[Tier], earlier: &[Rule]) -> Result<Rule, At> {
    let name = rule_name(&r.name, earlier)?;
    let tier_names = list(r.tiers.as_ref(), "tiers", |s| known_tier(s, tiers))?;
    let context = r
        .context
        .iter()
        .map(|(k, v)| condition(k, v).map(|c| (k.clone(), c)))
        .collect::<Result<Vec<_>, At>>()?;
    Ok(Rule {
        name: name.to_owned(),
        effect: r.effect,
        senders: list(r.senders.as_ref(), "senders", agent_pattern)?,
        recipients: list(r.recipients.as_ref(), "recipients", agent_pattern)?,
        actions: list(r.actions.as_ref(), "actions", action_pattern)?,
        resources: list(r.resources.as_ref(), "resources", resource_pattern)?,
        mode: r.mode.map(|m| match m {
            ModeSpec::Request => HandoffMode::Request,
            ModeSpec::Delegation => HandoffMode::Delegation,
        }),
        tiers: tier_names,
        context,
    })
}

/// A rule's name, trimmed: printable, not one the engine decides with, and not the name of
/// an `earlier` rule (the audit record tells rules apart by name).
fn rule_name<'a>(name: &'a Spanned<String>, earlier: &[Rule]) -> Result<&'a str, At> {
    let whole = name.span();
    let name = name.get_ref().trim();
    if !printable_label(name) {
        return Err(at(
            whole,
            "rule `name` must be 1 to 128 printable characters",
        ));
    }
    if name == DEFAULT_DENY || name.starts_with("tier:") {
        return Err(at(
            whole,
            format!(
                "rule name `{name}` is reserved for decisions the engine makes; choose another"
            ),
        ));
    }
    if earlier.iter().any(|x| x.name == name) {
        return Err(at(
            whole,
            format!("rule name `{name}` is used twice; every rule needs its own name for the audit record"),
        ));
    }
    Ok(name)
}

/// A tier name in a rule's `tiers`, which must be one of `tiers`.
fn known_tier(s: &Spanned<String>, tiers: &[Tier]) -> Result<String, At> {
    if tiers.iter().any(|t| t.name == *s.get_ref()) {
        return Ok(s.get_ref().clone());
    }
    Err(at(
        s.span(),
        format!(
            "unknown tier `{}`; define it under `[tiers.{}]` or use one of: {}",
            esc(s.get_ref()),
            esc(s.get_ref()),
            backticked(tiers.iter().map(|t| t.name.as_str())),
        ),
    ))
}

/// Names, each escaped in backticks, separated by commas.
fn backticked<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("`{}`", esc(n)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The warnings of a policy being collected, and the work they may still cost: at most
/// [`LINT_BUDGET`] pattern comparisons and [`MAX_WARNINGS`] warnings (each needs a line
/// number, found by scanning the source), so the check stays quick on any file.
struct Lint<'a> {
    spec: &'a FileSpec,
    src: &'a str,
    out: Vec<PolicyWarning>,
    budget: u64,
    /// Set when a bound ran out: the check stops and says so.
    stopped: bool,
}

impl<'a> Lint<'a> {
    fn new(spec: &'a FileSpec, src: &'a str) -> Lint<'a> {
        Lint {
            spec,
            src,
            out: Vec::new(),
            budget: LINT_BUDGET,
            stopped: false,
        }
    }

    /// Spends `cost` comparisons: `false` (and stopped) if they exceed the budget left or the
    /// warnings are already at [`MAX_WARNINGS`].
    fn spend(&mut self, cost: u64) -> bool {
        if cost > self.budget || self.out.len() >= MAX_WARNINGS {
            self.stopped = true;
            return false;
        }
        self.budget -= cost;
        true
    }

    fn warn(&mut self, line: usize, message: String) {
        self.out.push(PolicyWarning { line, message });
    }

    /// The line where `span` starts.
    fn line(&self, span: Range<usize>) -> usize {
        line_of(self.src, span.start)
    }

    /// Where pattern `p` of tier `tier` is written: its entry in the tier's `actions`, else the
    /// tier's table (a built-in pattern), else 0 (a built-in tier without a table).
    fn pattern_line(&self, tier: &str, p: &Pattern) -> usize {
        let table = self.spec.tiers.iter().find(|(k, _)| *k.get_ref() == tier);
        let written = table
            .and_then(|(_, t)| t.actions.as_ref())
            .and_then(|a| a.get_ref().iter().find(|s| *s.get_ref() == p.as_str()))
            .map(Spanned::span);
        written
            .or_else(|| table.map(|(k, _)| k.span()))
            .map_or(0, |span| self.line(span))
    }

    /// The warnings in line order, and a last one if the check stopped early.
    fn finish(mut self) -> Vec<PolicyWarning> {
        self.out.sort_by_key(|w| w.line);
        if self.stopped {
            self.warn(
                0,
                format!(
                    "the check stopped early (more than {MAX_WARNINGS} warnings, or too many patterns to compare): fix the warnings shown and check again"
                ),
            );
        }
        self.out
    }
}

impl RulePolicy {
    /// Loads and checks a policy file: a regular file of at most [`MAX_POLICY_BYTES`] (see
    /// [`read_regular_file`](crate::file::read_regular_file)). Errors name the file, the line and the
    /// problem.
    pub fn from_file(path: impl AsRef<Path>) -> Result<RulePolicy, Error> {
        load_policy_file(path.as_ref())
    }

    /// The policy version, recorded in every decision and audit record.
    #[must_use]
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether activating this policy in place of a different version revokes every token and
    /// envelope issued before the change (`revoke_on_change = true`).
    #[must_use]
    pub fn revoke_on_change(&self) -> bool {
        self.revoke_on_change
    }

    /// The tier names, in the order they are listed (built-in tiers first).
    #[must_use]
    pub fn tier_names(&self) -> Vec<&str> {
        self.tiers.iter().map(|t| t.name.as_str()).collect()
    }

    /// The risk tier of an action: the tier whose matching action pattern is the most
    /// specific (an exact action beats any `*` pattern; a longer prefix beats a shorter one;
    /// `x.*` also matches `x`). An action no pattern matches is in the default tier
    /// (`default_tier`, `high` unless the file says otherwise). Always `Some`.
    #[must_use]
    pub fn tier_of(&self, action: &str) -> Option<&str> {
        self.tier_for(action).map(|t| t.name.as_str())
    }

    /// The tier of actions no pattern classifies (`default_tier`).
    #[must_use]
    pub fn default_tier(&self) -> &str {
        self.tiers
            .get(self.default_tier)
            .map_or(DEFAULT_TIER, |t| t.name.as_str())
    }

    /// What in the file is probably a mistake although it loads: rules that can never match
    /// (an earlier rule matches everything they match and decides first, or they name only
    /// tiers no action is ever in), and tiers whose action patterns overlap (the most specific
    /// pattern wins, which may carve an action out of a stricter tier). `handoff policy check`
    /// prints them.
    #[must_use]
    pub fn warnings(&self) -> &[PolicyWarning] {
        &self.warnings
    }

    fn tier_for(&self, action: &str) -> Option<&Tier> {
        self.tier_for_any(&[action])
    }

    /// The tier of the most specific pattern that matches any of `actions`.
    fn tier_for_any(&self, actions: &[&str]) -> Option<&Tier> {
        let mut best: Option<(&Tier, (bool, usize))> = None;
        for tier in &self.tiers {
            for p in tier
                .actions
                .iter()
                .filter(|p| actions.iter().any(|a| action_matches(p, a)))
            {
                let rank = specificity(p);
                if best.as_ref().is_none_or(|(_, r)| rank > *r) {
                    best = Some((tier, rank));
                }
            }
        }
        best.map(|(t, _)| t)
            .or_else(|| self.tiers.get(self.default_tier))
    }

    /// Sets the revocation cut-off that a policy change calls for (SPEC section 6 step 8):
    /// if this policy says `revoke_on_change = true` and its version differs from `previous`
    /// (the version in force until now), every token and envelope issued before `now` is
    /// revoked in `revocations`, so grants minted under the old policy stop verifying.
    ///
    /// Returns the cut-off it set, if any. Call it when you switch policies (as
    /// [`SharedRulePolicy::replace`] does); a first activation (`previous` is `None`) sets
    /// no cut-off.
    pub fn activate(
        &self,
        previous: Option<&str>,
        revocations: &dyn RevocationWriter,
        now: UnixTime,
    ) -> Result<Option<UnixTime>, StoreError> {
        match previous {
            Some(old) if self.revoke_on_change && old != self.version => {
                revocations.revoke_issued_before(now)?;
                Ok(Some(now))
            }
            _ => Ok(None),
        }
    }

    /// Compiles a policy file: parse the TOML, check the version, compile the tiers and the
    /// default tier, check no action pattern is in two tiers, compile the rules, then lint.
    /// The first problem found is the one reported.
    fn compile(src: &str) -> Result<RulePolicy, At> {
        let spec: FileSpec = toml::from_str(src).map_err(|e| At {
            span: e.span(),
            problem: e.message().to_owned(),
        })?;
        let version = check_version(&spec.version)?;
        let tiers = compile_tiers(&spec.tiers)?;
        let default_tier = default_tier_index(&tiers, spec.default_tier.as_ref())?;
        check_tiers_disjoint(&tiers, &spec.tiers)?;
        let rules = compile_rules(&spec.rules, &tiers)?;
        let mut policy = RulePolicy {
            version: version.to_owned(),
            revoke_on_change: spec.revoke_on_change,
            tiers,
            default_tier,
            rules,
            warnings: Vec::new(),
        };
        policy.warnings = policy.lint(&spec, src);
        Ok(policy)
    }

    /// The warnings of [`warnings`](RulePolicy::warnings), in line order: overlapping tiers,
    /// then rules that can never match, within the bounds of [`Lint`].
    fn lint(&self, spec: &FileSpec, src: &str) -> Vec<PolicyWarning> {
        let mut lint = Lint::new(spec, src);
        self.lint_tier_overlaps(&mut lint);
        if !lint.stopped {
            self.lint_rules(&mut lint);
        }
        lint.finish()
    }

    /// Warns about action patterns of two tiers where one matches every action the other does.
    fn lint_tier_overlaps(&self, lint: &mut Lint<'_>) {
        for (i, a) in self.tiers.iter().enumerate() {
            for b in self.tiers.iter().skip(i + 1) {
                for p in &a.actions {
                    for q in &b.actions {
                        if !lint.spend(1) {
                            return;
                        }
                        let (wide, wide_tier, narrow, narrow_tier) = if action_covers(p, q) {
                            (p, a, q, b)
                        } else if action_covers(q, p) {
                            (q, b, p, a)
                        } else {
                            continue;
                        };
                        lint.warn(
                            lint.pattern_line(&narrow_tier.name, narrow),
                            format!(
                                "tiers `{}` and `{}` overlap: `{narrow}` (tier `{}`) is also matched by `{wide}` (tier `{}`); the more specific `{narrow}` wins, so those actions get the requirements of tier `{}`, not `{}`",
                                esc(&a.name),
                                esc(&b.name),
                                esc(&narrow_tier.name),
                                esc(&wide_tier.name),
                                esc(&narrow_tier.name),
                                esc(&wide_tier.name),
                            ),
                        );
                    }
                }
            }
        }
    }

    /// Warns about rules that can never match: an earlier rule matches everything they match,
    /// or no action is ever in the tiers they name.
    fn lint_rules(&self, lint: &mut Lint<'_>) {
        for (j, (rule, rspec)) in self.rules.iter().zip(&lint.spec.rules).enumerate() {
            let shadow = self.earlier_rule_covering(j, rule, lint);
            if lint.stopped {
                return;
            }
            let line = lint.line(rspec.name.span());
            if let Some((i, earlier)) = shadow {
                lint.warn(
                    line,
                    format!(
                        "rule `{}` can never match: the earlier rule `{}` (line {}) matches every handoff it matches and decides first; move it above, or narrow `{}`",
                        esc(&rule.name),
                        esc(&earlier.name),
                        lint.spec.rules.get(i).map_or(0, |s| lint.line(s.name.span())),
                        esc(&earlier.name),
                    ),
                );
                continue;
            }
            if let Some(names) = &rule.tiers {
                if !names.iter().any(|name| self.tier_is_reachable(name)) {
                    lint.warn(
                        line,
                        format!(
                            "rule `{}` can never match: no action is ever in its tiers ({}): they list no actions and none is the `default_tier`; give the tier `actions = [...]`",
                            esc(&rule.name),
                            backticked(names.iter().map(String::as_str)),
                        ),
                    );
                }
            }
        }
    }

    /// The first rule before rule `j` (`rule`) that matches every handoff `rule` matches, with
    /// its index, if any. Sets `lint.stopped` if the bounds run out first.
    fn earlier_rule_covering(
        &self,
        j: usize,
        rule: &Rule,
        lint: &mut Lint<'_>,
    ) -> Option<(usize, &Rule)> {
        for (i, earlier) in self.rules.iter().take(j).enumerate() {
            if !lint.spend(earlier.size().saturating_mul(rule.size())) {
                return None;
            }
            if earlier.covers(rule) {
                return Some((i, earlier));
            }
        }
        None
    }

    /// Whether any action can be in the tier `name`: it lists actions, or it is the default tier.
    fn tier_is_reachable(&self, name: &str) -> bool {
        self.tiers
            .iter()
            .enumerate()
            .any(|(i, t)| t.name == name && (i == self.default_tier || !t.actions.is_empty()))
    }

    /// The requirement of `tier` that this request fails, as a decision name.
    fn check_tier(&self, tier: &Tier, r: &PolicyRequest<'_>) -> Result<(), String> {
        let fail = |what: &str| Err(format!("tier:{}:{what}", tier.name));
        let env = r.context.environment();
        if let Some(allowed) = &tier.environments {
            if !env.is_some_and(|e| allowed.iter().any(|a| a == e)) {
                return fail("environment");
            }
        }
        // Per-environment requirements cannot be chosen without an environment: deny rather
        // than fall back to the (weaker) base requirements.
        if env.is_none() && !tier.by_environment.is_empty() {
            return fail("environment");
        }
        let req = match env.and_then(|e| tier.by_environment.get(e)) {
            Some(over) => tier.base.overlay(over),
            None => tier.base.clone(),
        };
        if let Some(max) = req.max_token_lifetime {
            if r.chain.iter().any(|l| l.lifetime() > max) {
                return fail("token-lifetime");
            }
        }
        if let Some(max) = req.max_envelope_lifetime {
            if r.envelope_expires_at.since(r.envelope_issued_at) > max {
                return fail("envelope-lifetime");
            }
        }
        if let Some(max) = req.max_chain_depth {
            let depth = u64::try_from(r.chain.len().saturating_sub(1)).unwrap_or(u64::MAX);
            if depth > max {
                return fail("chain-depth");
            }
        }
        if let Some(approvers) = &req.step_up_approvers {
            let approved = r.chain.iter().any(|l| {
                approvers.iter().any(|a| a.matches(l.issuer()))
                    && l.capabilities().iter().any(|c| c.allows(r.intent))
            });
            if !approved {
                return fail("step-up");
            }
        }
        Ok(())
    }
}

/// Ranks a pattern for tier classification: exact beats wildcard, then longer beats shorter.
fn specificity(p: &Pattern) -> (bool, usize) {
    let s = p.as_str();
    (!s.ends_with('*'), s.len())
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Rule {
    fn matches(&self, r: &PolicyRequest<'_>, tier: Option<&str>) -> bool {
        fn any<T>(list: &Option<Vec<T>>, f: impl Fn(&T) -> bool) -> bool {
            list.as_ref().is_none_or(|l| l.iter().any(f))
        }
        any(&self.senders, |p| p.matches(r.sender))
            && any(&self.recipients, |p| p.matches(r.recipient))
            && any(&self.actions, |p| r.actions().any(|a| action_matches(p, a)))
            && any(&self.resources, |p| p.matches(r.intent.resource()))
            && self.mode.is_none_or(|m| m == r.mode)
            && any(&self.tiers, |t| Some(t.as_str()) == tier)
            && self
                .context
                .iter()
                .all(|(name, cond)| context_matches(r.context.get(name), cond))
    }
}

impl Rule {
    /// A bound on the work of one [`covers`](Rule::covers) comparison's side.
    fn size(&self) -> u64 {
        fn len<T>(l: &Option<Vec<T>>) -> u64 {
            l.as_ref()
                .map_or(0, |l| u64::try_from(l.len()).unwrap_or(u64::MAX))
        }
        1 + len(&self.senders)
            + len(&self.recipients)
            + len(&self.actions)
            + len(&self.resources)
            + len(&self.tiers)
            + self
                .context
                .iter()
                .map(|(_, c)| match c {
                    Condition::Equals(_) => 1,
                    Condition::In(l) => u64::try_from(l.len()).unwrap_or(u64::MAX),
                })
                .fold(0u64, u64::saturating_add)
    }

    /// Whether every handoff `later` matches is matched by `self` (sound, not complete: `false`
    /// when unsure).
    fn covers(&self, later: &Rule) -> bool {
        fn list<T>(
            mine: &Option<Vec<T>>,
            theirs: &Option<Vec<T>>,
            f: impl Fn(&T, &T) -> bool,
        ) -> bool {
            match (mine, theirs) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(m), Some(t)) => t.iter().all(|q| m.iter().any(|p| f(p, q))),
            }
        }
        list(&self.senders, &later.senders, |p, q| p.covers(q))
            && list(&self.recipients, &later.recipients, |p, q| p.covers(q))
            && list(&self.actions, &later.actions, action_covers)
            && list(&self.resources, &later.resources, |p, q| p.covers(q))
            && list(&self.tiers, &later.tiers, |p, q| p == q)
            && (self.mode.is_none() || self.mode == later.mode)
            && self.context.iter().all(|(name, mine)| {
                later.context.iter().any(|(n, theirs)| {
                    n == name
                        && match (mine, theirs) {
                            (Condition::Equals(a), Condition::Equals(b)) => a == b,
                            (Condition::In(a), Condition::Equals(b)) => a.contains(b),
                            (Condition::In(a), Condition::In(b)) => b.iter().all(|v| a.contains(v)),
                            (Condition::Equals(a), Condition::In(b)) => b.iter().all(|v| v == a),
                        }
                })
            })
    }
}

fn value_eq(expected: &toml::Value, actual: &ArgValue) -> bool {
    match (expected, actual) {
        (toml::Value::String(e), ArgValue::String(a)) => e == a,
        (toml::Value::Boolean(e), ArgValue::Bool(a)) => e == a,
        (toml::Value::Integer(e), ArgValue::Number(a)) => a.as_i64() == Some(*e),
        _ => false,
    }
}

/// A missing attribute never matches (a deny rule on a context condition therefore needs a
/// catch-all deny after it, or an `environments` allow-list on the tier).
fn context_matches(actual: Option<&ArgValue>, cond: &Condition) -> bool {
    let Some(actual) = actual else { return false };
    match cond {
        Condition::Equals(e) => value_eq(e, actual),
        Condition::In(list) => list.iter().any(|e| value_eq(e, actual)),
    }
}

impl FromStr for RulePolicy {
    type Err = Error;
    /// Parses and checks a policy. Errors say `line N: <problem>`.
    fn from_str(src: &str) -> Result<RulePolicy, Error> {
        check_policy_size(src)?;
        RulePolicy::compile(src).map_err(|e| Error::Policy {
            path: None,
            problem: match e.span {
                Some(span) => format!("line {}: {}", line_of(src, span.start), e.problem),
                None => e.problem,
            },
        })
    }
}

impl Policy for RulePolicy {
    fn evaluate(&self, r: &PolicyRequest<'_>) -> PolicyDecision {
        // Always `Some`: an unclassified action is in the default tier.
        let actions: Vec<&str> = r.actions().collect();
        let tier = self.tier_for_any(&actions);
        let decision = match self
            .rules
            .iter()
            .find(|rule| rule.matches(r, tier.map(|t| t.name.as_str())))
        {
            None => PolicyDecision::deny(DEFAULT_DENY),
            Some(rule) if rule.effect == Effect::Deny => PolicyDecision::deny(rule.name.clone()),
            Some(rule) => match tier.map_or(Ok(()), |t| self.check_tier(t, r)) {
                Ok(()) => PolicyDecision::allow(rule.name.clone()),
                Err(failed) => PolicyDecision::deny(failed),
            },
        };
        decision.with_version(self.version.clone())
    }
}

/// Refuses a policy text over [`MAX_POLICY_BYTES`] before parsing it.
pub(super) fn check_policy_size(src: &str) -> Result<(), Error> {
    if src.len() > MAX_POLICY_BYTES {
        return Err(Error::Policy {
            path: None,
            problem: format!(
                "the policy is {} bytes; at most {MAX_POLICY_BYTES} are accepted",
                src.len()
            ),
        });
    }
    Ok(())
}

/// Reads a policy file (a regular file of at most [`MAX_POLICY_BYTES`]) and parses it; a
/// problem in the text names the file.
pub(super) fn load_policy_file<P: FromStr<Err = Error>>(path: &Path) -> Result<P, Error> {
    let text =
        crate::file::read_text(path, "policy file", "reading policy file", MAX_POLICY_BYTES)?;
    text.parse().map_err(|e| match e {
        Error::Policy {
            path: None,
            problem,
        } => Error::Policy {
            path: Some(PathBuf::from(path)),
            problem,
        },
        other => other,
    })
}

/// A [`RulePolicy`] that can be replaced while verifiers use it. Clones share the policy: give
/// one clone to [`VerifierBuilder::policy`](crate::VerifierBuilder::policy) and keep another to
/// [`replace`](SharedRulePolicy::replace) the policy when its file changes.
///
/// If the lock is poisoned, every request is denied (`policy-unavailable`): fail closed.
#[derive(Clone)]
pub struct SharedRulePolicy {
    current: Arc<RwLock<Arc<RulePolicy>>>,
}

impl fmt::Debug for SharedRulePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = self.current().map(|p| p.version().to_owned());
        f.debug_struct("SharedRulePolicy")
            .field("version", &version)
            .finish()
    }
}

impl SharedRulePolicy {
    /// Shares `policy`.
    #[must_use]
    pub fn new(policy: RulePolicy) -> SharedRulePolicy {
        SharedRulePolicy {
            current: Arc::new(RwLock::new(Arc::new(policy))),
        }
    }

    /// The policy in force, or `None` if the lock is poisoned.
    #[must_use]
    pub fn current(&self) -> Option<Arc<RulePolicy>> {
        self.current.read().ok().map(|p| Arc::clone(&p))
    }

    /// Puts `next` in force. If its version differs from the current one and it says
    /// `revoke_on_change = true`, first revokes every token and envelope issued before `now`
    /// (see [`RulePolicy::activate`]). Returns the cut-off set, if any.
    ///
    /// The cut-off is set before the switch, so no handoff is ever allowed by the new policy
    /// on a grant minted under the old one.
    pub fn replace(
        &self,
        next: RulePolicy,
        revocations: &dyn RevocationWriter,
        now: UnixTime,
    ) -> Result<Option<UnixTime>, StoreError> {
        let mut slot = self
            .current
            .write()
            .map_err(|_| StoreError::poisoned("policy"))?;
        let cutoff = next.activate(Some(slot.version()), revocations, now)?;
        *slot = Arc::new(next);
        Ok(cutoff)
    }
}

impl Policy for SharedRulePolicy {
    fn evaluate(&self, request: &PolicyRequest<'_>) -> PolicyDecision {
        match self.current() {
            Some(p) => p.evaluate(request),
            None => PolicyDecision::deny("policy-unavailable"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_tiers_classify_actions() {
        let p: RulePolicy = "version = \"v1\"".parse().unwrap();
        // Unclassified: the default tier, `high`.
        assert_eq!(p.tier_of("tickets.read"), Some("high"));
        assert_eq!(p.default_tier(), "high");
        assert_eq!(p.tier_of("payments.execute"), Some("high"));
        assert_eq!(p.tier_of("payments"), Some("high"));
        assert_eq!(p.tier_of("code.deploy"), Some("high"));
        assert_eq!(p.tier_of("code.deployment.start"), Some("high"));
        assert_eq!(p.tier_of("secrets.read"), Some("high"));
        assert_eq!(p.tier_of("tickets.close"), Some("high"));
        assert_eq!(p.tier_of("deploy.prod"), Some("high"));
    }

    #[test]
    fn the_most_specific_tier_pattern_wins() {
        let p: RulePolicy = r#"
version = "v1"
[tiers.low]
actions = ["tickets.*", "payments.quote"]
"#
        .parse()
        .unwrap();
        assert_eq!(p.tier_of("payments.quote"), Some("low"));
        assert_eq!(p.tier_of("payments.execute"), Some("high"));
        assert_eq!(p.tier_of("tickets.read"), Some("low"));
        assert_eq!(p.tier_of("tickets"), Some("low"));
        assert_eq!(p.tier_of("tickets.close"), Some("high"));
    }

    #[test]
    fn line_numbers_count_newlines() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
        assert_eq!(line_of("a", 99), 1);
    }
}
