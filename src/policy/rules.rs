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

use crate::capability::{ArgValue, Capability, Pattern};
use crate::clock::UnixTime;
use crate::envelope::HandoffMode;
use crate::error::{Error, StoreError};
use crate::id::AgentPattern;
use crate::lifecycle::RevocationWriter;
use crate::policy::{Policy, PolicyDecision, PolicyRequest};

/// The largest policy file accepted (1 MiB).
pub const MAX_POLICY_BYTES: usize = 1 << 20;

/// The name of the decision when no rule matches.
const DEFAULT_DENY: &str = "default-deny";

/// The built-in risk tiers: reads (and anything unclassified) are `low`; payments, code
/// deployment, secret retrieval and ticket closure are `high`. Neither has requirements until
/// the policy file states them.
const BUILTIN_TIERS: [(&str, &[&str]); 2] = [
    ("low", &["*"]),
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

// ------------------------------------------------------------------ file format (serde)

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    version: Spanned<String>,
    #[serde(default)]
    revoke_on_change: bool,
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
    rules: Vec<Rule>,
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

fn line_of(src: &str, offset: usize) -> usize {
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

impl RulePolicy {
    /// Loads and checks a policy file: a regular file of at most [`MAX_POLICY_BYTES`] (see
    /// [`read_regular_file`](crate::read_regular_file)). Errors name the file, the line and the
    /// problem.
    pub fn from_file(path: impl AsRef<Path>) -> Result<RulePolicy, Error> {
        let path = path.as_ref();
        let text = read_policy_file(path)?;
        RulePolicy::from_str(&text).map_err(|e| with_path(e, path))
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
    /// specific (an exact action beats any `*` pattern; a longer prefix beats a shorter one).
    #[must_use]
    pub fn tier_of(&self, action: &str) -> Option<&str> {
        self.tier_for(action).map(|t| t.name.as_str())
    }

    fn tier_for(&self, action: &str) -> Option<&Tier> {
        let mut best: Option<(&Tier, (bool, usize))> = None;
        for tier in &self.tiers {
            for p in tier.actions.iter().filter(|p| p.matches(action)) {
                let rank = specificity(p);
                if best.as_ref().is_none_or(|(_, r)| rank > *r) {
                    best = Some((tier, rank));
                }
            }
        }
        best.map(|(t, _)| t)
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

    fn compile(src: &str) -> Result<RulePolicy, At> {
        let spec: FileSpec = toml::from_str(src).map_err(|e| At {
            span: e.span(),
            problem: e.message().to_owned(),
        })?;

        let version = spec.version.get_ref().trim();
        if version.is_empty() || version.len() > 128 || version.chars().any(|c| c.is_control()) {
            return Err(at(
                spec.version.span(),
                "`version` must be 1 to 128 printable characters, for example \"2027-01-15.1\"",
            ));
        }

        // Tiers: built-in ones first, in order, replaced by the file's tables of the same name.
        let mut tiers: Vec<Tier> = BUILTIN_TIERS
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
            .collect();
        for (name, t) in &spec.tiers {
            let whole = name.span();
            let name = name.get_ref();
            if !valid_name(name) {
                return Err(at(
                    whole,
                    format!("tier name `{name}` may contain only `a-z`, `0-9`, `_` and `-`"),
                ));
            }
            let builtin = tiers.iter().position(|b| b.name == *name);
            let actions = match (
                list(t.actions.as_ref(), "actions", action_pattern)?,
                builtin,
            ) {
                (Some(a), _) => a,
                (None, Some(i)) => tiers.get(i).map(|b| b.actions.clone()).unwrap_or_default(),
                (None, None) => {
                    return Err(at(
                        whole,
                        format!("tier `{name}` is not built in, so it needs `actions = [...]`"),
                    ))
                }
            };
            let environments = list(t.environments.as_ref(), "environments", |s| {
                Ok(s.get_ref().clone())
            })?;
            let base = requirements(
                t.max_token_lifetime,
                t.max_envelope_lifetime,
                t.max_chain_depth,
                t.step_up_approvers.as_ref(),
            )?;
            let mut by_environment = BTreeMap::new();
            for (env, r) in &t.env {
                by_environment.insert(
                    env.clone(),
                    requirements(
                        r.max_token_lifetime,
                        r.max_envelope_lifetime,
                        r.max_chain_depth,
                        r.step_up_approvers.as_ref(),
                    )?,
                );
            }
            let tier = Tier {
                name: name.clone(),
                actions,
                environments,
                base,
                by_environment,
            };
            match builtin.and_then(|i| tiers.get_mut(i)) {
                Some(slot) => *slot = tier,
                None => tiers.push(tier),
            }
        }
        // The same action pattern in two tiers would make the classification ambiguous.
        for (i, a) in tiers.iter().enumerate() {
            for b in tiers.iter().skip(i + 1) {
                if let Some(p) = a.actions.iter().find(|p| b.actions.contains(p)) {
                    let span = spec
                        .tiers
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

        let mut rules: Vec<Rule> = Vec::with_capacity(spec.rules.len());
        for r in &spec.rules {
            let whole = r.name.span();
            let name = r.name.get_ref().trim();
            if name.is_empty() || name.len() > 128 || name.chars().any(|c| c.is_control()) {
                return Err(at(
                    whole,
                    "rule `name` must be 1 to 128 printable characters",
                ));
            }
            if name == DEFAULT_DENY || name.starts_with("tier:") {
                return Err(at(
                    whole,
                    format!("rule name `{name}` is reserved for decisions the engine makes; choose another"),
                ));
            }
            if rules.iter().any(|x| x.name == name) {
                return Err(at(
                    whole,
                    format!("rule name `{name}` is used twice; every rule needs its own name for the audit record"),
                ));
            }
            let tier_names = list(r.tiers.as_ref(), "tiers", |s| {
                if tiers.iter().any(|t| t.name == *s.get_ref()) {
                    Ok(s.get_ref().clone())
                } else {
                    Err(at(
                        s.span(),
                        format!(
                            "unknown tier `{}`; define it under `[tiers.{}]` or use one of: {}",
                            s.get_ref(),
                            s.get_ref(),
                            tiers
                                .iter()
                                .map(|t| format!("`{}`", t.name))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ))
                }
            })?;
            let context = r
                .context
                .iter()
                .map(|(k, v)| condition(k, v).map(|c| (k.clone(), c)))
                .collect::<Result<Vec<_>, At>>()?;
            rules.push(Rule {
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
            });
        }

        Ok(RulePolicy {
            version: version.to_owned(),
            revoke_on_change: spec.revoke_on_change,
            tiers,
            rules,
        })
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
            && any(&self.actions, |p| p.matches(r.intent.action()))
            && any(&self.resources, |p| p.matches(r.intent.resource()))
            && self.mode.is_none_or(|m| m == r.mode)
            && any(&self.tiers, |t| Some(t.as_str()) == tier)
            && self
                .context
                .iter()
                .all(|(name, cond)| context_matches(r.context.get(name), cond))
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
        if src.len() > MAX_POLICY_BYTES {
            return Err(Error::Policy {
                path: None,
                problem: format!(
                    "the policy is {} bytes; at most {MAX_POLICY_BYTES} are accepted",
                    src.len()
                ),
            });
        }
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
        let tier = self.tier_for(r.intent.action());
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

pub(crate) fn read_policy_file(path: &Path) -> Result<String, Error> {
    crate::file::read_text(path, "policy file", "reading policy file", MAX_POLICY_BYTES)
}

pub(crate) fn with_path(e: Error, path: &Path) -> Error {
    match e {
        Error::Policy {
            path: None,
            problem,
        } => Error::Policy {
            path: Some(PathBuf::from(path)),
            problem,
        },
        other => other,
    }
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
            .map_err(|_| StoreError::new("policy", "lock poisoned"))?;
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
        assert_eq!(p.tier_of("tickets.read"), Some("low"));
        assert_eq!(p.tier_of("payments.execute"), Some("high"));
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
actions = ["*", "payments.quote"]
"#
        .parse()
        .unwrap();
        assert_eq!(p.tier_of("payments.quote"), Some("low"));
        assert_eq!(p.tier_of("payments.execute"), Some("high"));
    }

    #[test]
    fn line_numbers_count_newlines() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
        assert_eq!(line_of("a", 99), 1);
    }
}
