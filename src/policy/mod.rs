//! Request-time policy: whether *this* sender may ask *this* recipient for *this* intent *now*,
//! given the verified chain and the caller's context (SPEC section 6 step 9).
//!
//! A valid chain says what an agent could do; the policy decides what it may do at the moment
//! of the request. The policy only ever sees verified facts plus the caller's [`RequestContext`].

#[cfg(feature = "cedar")]
pub mod cedar;
mod rules;

#[cfg(feature = "cedar")]
pub use cedar::CedarPolicy;
pub use rules::{PolicyWarning, RulePolicy, SharedRulePolicy};

use std::collections::BTreeMap;
use std::fmt;

use crate::clock::UnixTime;
use crate::grant::{ArgValue, Capability, HandoffMode, Intent, VerifiedLink};
use crate::wire::AgentId;

/// Facts about the request that the caller knows and the envelope does not: the environment
/// (`prod`, `staging`), the task's sensitivity, the tenant, anything else as typed attributes.
///
/// ```
/// use agent_handoff::RequestContext;
/// let ctx = RequestContext::new().with("environment", "prod").with("tenant", "acme");
/// assert_eq!(ctx.environment(), Some("prod"));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct RequestContext {
    attributes: BTreeMap<String, ArgValue>,
}

impl RequestContext {
    /// An empty context.
    #[must_use]
    pub fn new() -> RequestContext {
        RequestContext::default()
    }

    /// An empty context, in a constant expression (for a `static`).
    pub(crate) const fn empty() -> RequestContext {
        RequestContext {
            attributes: BTreeMap::new(),
        }
    }

    /// Adds or replaces an attribute.
    #[must_use]
    pub fn with(mut self, name: &str, value: impl Into<ArgValue>) -> RequestContext {
        self.attributes.insert(name.to_owned(), value.into());
        self
    }

    /// An attribute.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&ArgValue> {
        self.attributes.get(name)
    }

    /// The `environment` attribute, if it is a string.
    #[must_use]
    pub fn environment(&self) -> Option<&str> {
        self.get("environment").and_then(ArgValue::as_str)
    }

    /// All attributes.
    #[must_use]
    pub fn attributes(&self) -> &BTreeMap<String, ArgValue> {
        &self.attributes
    }
}

/// What a policy is asked: verified facts about one handoff, plus the caller's context.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct PolicyRequest<'a> {
    /// The verified sender.
    pub sender: &'a AgentId,
    /// The recipient (the verifier itself).
    pub recipient: &'a AgentId,
    /// Request or delegation.
    pub mode: HandoffMode,
    /// The intent, with its arguments.
    pub intent: &'a Intent,
    /// The capabilities of the chain's last link.
    pub capabilities: &'a [Capability],
    /// The verified chain, root first.
    pub chain: &'a [VerifiedLink],
    /// When the envelope was issued and when it expires.
    pub envelope_issued_at: UnixTime,
    /// When the envelope expires.
    pub envelope_expires_at: UnixTime,
    /// The verifier's current time.
    pub now: UnixTime,
    /// The caller's context.
    pub context: &'a RequestContext,
    /// The route's own action as the transport binding named it
    /// ([`VerifyRequest::route_action`](crate::verify::VerifyRequest::route_action)); read it
    /// through [`actions`](PolicyRequest::actions) and
    /// [`route_action`](PolicyRequest::route_action), which apply it only where it names the
    /// intent's action by whole segments.
    pub(crate) route_action: Option<&'a str>,
}

impl PolicyRequest<'_> {
    /// The names under which a policy judges the intent's action: the intent's own action and,
    /// when a binding named the route's action
    /// ([`VerifyRequest::route_action`](crate::verify::VerifyRequest::route_action)) and the
    /// intent's action is that action plus one more `.` segment (the HTTP method), the route's
    /// action. A rule or tier pattern applies when it matches any of them, so a deny rule or a tier
    /// written for `payments.execute` also catches `payments.execute.post` over HTTP.
    pub fn actions(&self) -> impl Iterator<Item = &str> {
        let full = self.intent.action();
        let route = self.route_action.filter(|route| {
            full.strip_prefix(route)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|segment| !segment.is_empty() && !segment.contains('.'))
        });
        std::iter::once(full).chain(route)
    }

    /// The route's action when it applies (see [`PolicyRequest::actions`]), else the intent's.
    #[must_use]
    pub fn route_action(&self) -> &str {
        self.actions().last().unwrap_or(self.intent.action())
    }
}

/// A policy decision: allow or deny, and the rule that decided.
///
/// The rule name and the version are shown in audit records, tracing events and rejection
/// details, so control, bidirectional and invisible characters in them are escaped as `\u{..}`
/// when the decision is made.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct PolicyDecision {
    allowed: bool,
    rule: String,
    version: Option<String>,
}

/// Text a policy chose, as it is kept: escaped (see [`PolicyDecision`]).
fn shown(text: String) -> String {
    crate::escape::escape_text(text).into_owned()
}

impl PolicyDecision {
    /// Allows, naming the rule that allowed.
    pub fn allow(rule: impl Into<String>) -> PolicyDecision {
        PolicyDecision {
            allowed: true,
            rule: shown(rule.into()),
            version: None,
        }
    }

    /// Denies, naming the rule that denied.
    pub fn deny(rule: impl Into<String>) -> PolicyDecision {
        PolicyDecision {
            allowed: false,
            rule: shown(rule.into()),
            version: None,
        }
    }

    /// Records which policy version decided.
    pub fn with_version(mut self, version: impl Into<String>) -> PolicyDecision {
        self.version = Some(shown(version.into()));
        self
    }

    /// Whether the handoff is allowed.
    #[must_use]
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// The rule (or Cedar policy id) that decided.
    #[must_use]
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// The policy version that decided, if the policy has one.
    #[must_use]
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }
}

/// A request-time policy. Must be deterministic and must not panic; a policy that cannot
/// decide should deny (the verifier treats every non-allow as `policy_denied`).
pub trait Policy: fmt::Debug + Send + Sync {
    /// Decides one request.
    fn evaluate(&self, request: &PolicyRequest<'_>) -> PolicyDecision;
}

impl<T: Policy + ?Sized> Policy for std::sync::Arc<T> {
    fn evaluate(&self, request: &PolicyRequest<'_>) -> PolicyDecision {
        (**self).evaluate(request)
    }
}

/// The default policy: allows whatever the verified chain allows (the chain checks already
/// ran), and names itself `chain-scope` in the audit record.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChainScopePolicy;

impl Policy for ChainScopePolicy {
    fn evaluate(&self, _request: &PolicyRequest<'_>) -> PolicyDecision {
        PolicyDecision::allow("chain-scope")
    }
}
