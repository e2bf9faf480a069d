//! [`CedarPolicy`]: request-time policy written in Cedar (feature `cedar`).
//!
//! A handoff becomes one Cedar request:
//!
//! - principal `Agent::"<sender id>"`, action `Action::"<intent action>"`, resource
//!   `Resource::"<intent resource>"`, no entity store;
//! - `context` holds the verified facts of the handoff:
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `sender`, `recipient` | String | agent ids (use `like "spiffe://acme.example/agents/*"`) |
//! | `action`, `resource` | String | the intent |
//! | `args` | Record | the intent's arguments |
//! | `mode` | String | `"request"` or `"delegation"` |
//! | `chain_length` | Long | links in the chain |
//! | `chain_depth` | Long | `chain_length - 1`: `0` means no re-delegated authority |
//! | `remaining_depth` | Long | further delegations the last link allows |
//! | `issuers` | Set of String | every link's issuer |
//! | `covering_issuers` | Set of String | issuers of links whose capabilities grant the intent (step-up approval) |
//! | `max_token_lifetime` | Long | longest link lifetime (`exp - iat`, seconds) |
//! | `min_remaining_lifetime` | Long | seconds until the first link expires |
//! | `envelope_lifetime` | Long | envelope `exp - iat`, seconds |
//!
//! plus every attribute of the caller's [`RequestContext`](crate::RequestContext) (for example
//! `context.environment`). A caller attribute may not reuse one of the names above.
//!
//! Every decision names the Cedar policy that determined it: its `@id("...")` annotation, or
//! Cedar's own id (`policy0`, ...) when it has none. No determining policy is `default-deny`.
//! Anything that goes wrong denies: an attribute Cedar cannot represent (null, a fraction, a
//! reserved `__entity` key) denies as `cedar:invalid-context`, and a policy that fails to
//! evaluate denies as `cedar-error:<policy>` even if other policies would allow, because a
//! `forbid` that errors is otherwise skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context as CedarContext, Decision, Entities, EntityId, EntityTypeName, EntityUid,
    PolicyId, PolicySet, Request,
};
use miette::Diagnostic as _;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::error::Error;
use crate::grant::ArgValue;
use crate::policy::rules::{check_policy_size, line_of, load_policy_file};
use crate::policy::{Policy, PolicyDecision, PolicyRequest};

/// RequestContext attribute names the adapter fills with verified facts.
const RESERVED: [&str; 15] = [
    "sender",
    "recipient",
    "action",
    "intent_action",
    "resource",
    "args",
    "mode",
    "chain_length",
    "chain_depth",
    "remaining_depth",
    "issuers",
    "covering_issuers",
    "max_token_lifetime",
    "min_remaining_lifetime",
    "envelope_lifetime",
];

/// A request-time policy written in Cedar, evaluated by the `cedar-policy` crate.
///
/// ```
/// use agent_handoff::policy::cedar::CedarPolicy;
/// let policy: CedarPolicy = r#"
///     @id("reads")
///     permit(principal, action == Action::"tickets.read", resource);
/// "#.parse()?;
/// assert!(policy.version().starts_with("sha256:"));
/// assert!("permit(principal, action, resource) when {".parse::<CedarPolicy>().is_err());
/// # Ok::<(), agent_handoff::Error>(())
/// ```
pub struct CedarPolicy {
    set: PolicySet,
    /// Cedar policy id → the name decisions use (`@id` or the Cedar id).
    names: BTreeMap<String, String>,
    version: String,
    authorizer: Authorizer,
    entities: Entities,
}

impl fmt::Debug for CedarPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CedarPolicy")
            .field("version", &self.version)
            .field("policies", &self.names.values().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl FromStr for CedarPolicy {
    type Err = Error;
    /// Parses a Cedar policy set. Errors say `line N: <problem>`. Every `@id` must be unique.
    fn from_str(src: &str) -> Result<CedarPolicy, Error> {
        let fail = |problem: String| Error::Policy {
            path: None,
            problem,
        };
        check_policy_size(src)?;
        let set = PolicySet::from_str(src).map_err(|e| {
            let line = e
                .labels()
                .and_then(|mut l| l.next())
                .map(|l| line_of(src, l.offset()));
            match line {
                Some(line) => fail(format!("line {line}: {e}")),
                None => fail(e.to_string()),
            }
        })?;
        let mut names = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for p in set.policies() {
            let name = p
                .annotation("id")
                .map_or_else(|| p.id().to_string(), str::to_owned);
            if !seen.insert(name.clone()) {
                let line = src
                    .match_indices(&format!("@id(\"{name}\")"))
                    .nth(1)
                    .map(|(at, _)| format!("line {}: ", line_of(src, at)))
                    .unwrap_or_default();
                return Err(fail(format!(
                    "{line}policy id `{name}` is used twice; every policy needs its own `@id` for the audit record"
                )));
            }
            names.insert(p.id().to_string(), name);
        }
        let digest = Sha256::digest(src.as_bytes());
        let version = format!(
            "sha256:{}",
            digest
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Ok(CedarPolicy {
            set,
            names,
            version,
            authorizer: Authorizer::new(),
            entities: Entities::empty(),
        })
    }
}

impl CedarPolicy {
    /// Loads a Cedar policy file. Errors name the file, the line and the problem.
    pub fn from_file(path: impl AsRef<Path>) -> Result<CedarPolicy, Error> {
        load_policy_file(path.as_ref())
    }

    /// Sets the version recorded with every decision (default: `sha256:` and the first 16
    /// hex digits of the SHA-256 of the policy text).
    #[must_use]
    pub fn with_version(mut self, version: impl Into<String>) -> CedarPolicy {
        self.version = version.into();
        self
    }

    /// The version recorded with every decision.
    #[must_use]
    pub fn version(&self) -> &str {
        &self.version
    }

    fn name(&self, id: &PolicyId) -> String {
        let id = id.to_string();
        self.names.get(&id).cloned().unwrap_or(id)
    }

    fn decide(&self, r: &PolicyRequest<'_>) -> PolicyDecision {
        let Some(context) = context_json(r) else {
            return PolicyDecision::deny("cedar:invalid-context");
        };
        let uid = |ty: &str, id: &str| {
            EntityTypeName::from_str(ty)
                .ok()
                .map(|t| EntityUid::from_type_name_and_id(t, EntityId::new(id)))
        };
        let (Some(principal), Some(action), Some(resource)) = (
            uid("Agent", r.sender.as_str()),
            // The route's action when a binding extended it (HTTP: without the method); the
            // envelope's own action is in `context.intent_action`.
            uid("Action", r.route_action()),
            uid("Resource", r.intent.resource()),
        ) else {
            return PolicyDecision::deny("cedar:invalid-request");
        };
        let Ok(context) = CedarContext::from_json_value(context, None) else {
            return PolicyDecision::deny("cedar:invalid-context");
        };
        let Ok(request) = Request::new(principal, action, resource, context, None) else {
            return PolicyDecision::deny("cedar:invalid-request");
        };
        let response = self
            .authorizer
            .is_authorized(&request, &self.set, &self.entities);
        let diagnostics = response.diagnostics();
        let failed: BTreeSet<String> = diagnostics
            .errors()
            .map(|e| match e {
                cedar_policy::AuthorizationError::PolicyEvaluationError(e) => {
                    self.name(e.policy_id())
                }
            })
            .collect();
        if !failed.is_empty() {
            return PolicyDecision::deny(format!(
                "cedar-error:{}",
                failed.into_iter().collect::<Vec<_>>().join(",")
            ));
        }
        let deciding: BTreeSet<String> = diagnostics.reason().map(|id| self.name(id)).collect();
        let name = if deciding.is_empty() {
            "default-deny".to_owned()
        } else {
            deciding.into_iter().collect::<Vec<_>>().join(",")
        };
        match response.decision() {
            Decision::Allow => PolicyDecision::allow(name),
            Decision::Deny => PolicyDecision::deny(name),
        }
    }
}

impl Policy for CedarPolicy {
    fn evaluate(&self, request: &PolicyRequest<'_>) -> PolicyDecision {
        self.decide(request).with_version(self.version.clone())
    }
}

fn long(n: u64) -> Value {
    Value::from(i64::try_from(n).unwrap_or(i64::MAX))
}

/// An argument or attribute as Cedar JSON, or `None` if Cedar cannot represent it.
fn cedar_value(v: &ArgValue) -> Option<Value> {
    Some(match v {
        ArgValue::Null => return None,
        ArgValue::Bool(b) => Value::Bool(*b),
        ArgValue::Number(n) => Value::from(n.as_i64()?),
        ArgValue::String(s) => Value::String(s.clone()),
        ArgValue::List(items) => {
            Value::Array(items.iter().map(cedar_value).collect::<Option<_>>()?)
        }
        ArgValue::Map(m) => Value::Object(cedar_record(m)?),
    })
}

/// A record, refusing the keys Cedar's JSON format gives a special meaning.
fn cedar_record(m: &BTreeMap<String, ArgValue>) -> Option<Map<String, Value>> {
    m.iter()
        .map(|(k, v)| {
            if k.starts_with("__") {
                None
            } else {
                Some((k.clone(), cedar_value(v)?))
            }
        })
        .collect()
}

fn context_json(r: &PolicyRequest<'_>) -> Option<Value> {
    let issuers: BTreeSet<&str> = r.chain.iter().map(|l| l.issuer().as_str()).collect();
    let covering: BTreeSet<&str> = r
        .chain
        .iter()
        .filter(|l| l.capabilities().iter().any(|c| c.allows(r.intent)))
        .map(|l| l.issuer().as_str())
        .collect();
    let mut ctx = Map::new();
    ctx.insert("sender".into(), r.sender.as_str().into());
    ctx.insert("recipient".into(), r.recipient.as_str().into());
    ctx.insert("action".into(), r.route_action().into());
    ctx.insert("intent_action".into(), r.intent.action().into());
    ctx.insert("resource".into(), r.intent.resource().into());
    ctx.insert("args".into(), Value::Object(cedar_record(r.intent.args())?));
    ctx.insert("mode".into(), r.mode.as_str().into());
    let len = u64::try_from(r.chain.len()).unwrap_or(u64::MAX);
    ctx.insert("chain_length".into(), long(len));
    ctx.insert("chain_depth".into(), long(len.saturating_sub(1)));
    ctx.insert(
        "remaining_depth".into(),
        long(r.chain.last().map_or(0, |l| u64::from(l.depth()))),
    );
    ctx.insert("issuers".into(), issuers.into_iter().collect());
    ctx.insert("covering_issuers".into(), covering.into_iter().collect());
    ctx.insert(
        "max_token_lifetime".into(),
        long(r.chain.iter().map(|l| l.lifetime()).max().unwrap_or(0)),
    );
    ctx.insert(
        "min_remaining_lifetime".into(),
        long(
            r.chain
                .iter()
                .map(|l| l.expires_at().since(r.now))
                .min()
                .unwrap_or(0),
        ),
    );
    ctx.insert(
        "envelope_lifetime".into(),
        long(r.envelope_expires_at.since(r.envelope_issued_at)),
    );
    for (k, v) in r.context.attributes() {
        if RESERVED.contains(&k.as_str()) || k.starts_with("__") {
            return None;
        }
        ctx.insert(k.clone(), cedar_value(v)?);
    }
    Some(Value::Object(ctx))
}
