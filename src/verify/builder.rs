//! [`VerifierBuilder`]: a verifier's configuration, checked before it is built.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::AuditSink;
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::keys::KeyResolver;
use crate::limits::{Limits, DEFAULT_RETENTION, MAX_CHAIN_LINKS};
use crate::policy::{ChainScopePolicy, Policy};
use crate::store::{
    required_retention, MemoryReplayCache, MemoryRevocations, ReplayCache, Revocations,
};
use crate::verify::link_cache::LinkCache;
use crate::verify::{AuditFailure, HandoffVerifier};
use crate::wire::AgentId;

impl HandoffVerifier {
    /// Starts configuring a verifier for the agent `me`, trusting `keys`.
    pub fn builder(me: AgentId, keys: impl KeyResolver + 'static) -> VerifierBuilder {
        VerifierBuilder {
            me,
            keys: Arc::new(keys),
            limits: Limits::default(),
            clock: Arc::new(SystemClock),
            policy: Arc::new(ChainScopePolicy),
            revocations: None,
            replay: None,
            audit: None,
            on_audit_failure: AuditFailure::Deny,
        }
    }
}

/// Configures a [`HandoffVerifier`]. Made by [`HandoffVerifier::builder`].
#[must_use]
pub struct VerifierBuilder {
    me: AgentId,
    keys: Arc<dyn KeyResolver>,
    limits: Limits,
    clock: Arc<dyn Clock>,
    policy: Arc<dyn Policy>,
    revocations: Option<Arc<dyn Revocations>>,
    replay: Option<Arc<dyn ReplayCache>>,
    audit: Option<Arc<dyn AuditSink>>,
    on_audit_failure: AuditFailure,
}

impl fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierBuilder")
            .field("me", &self.me)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl VerifierBuilder {
    /// All limits at once.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    /// Clock skew tolerated (default 5 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.limits.leeway = leeway;
        self
    }
    /// Most chain links whose verified signature is remembered (default 10 000; `0`
    /// disables the cache). See [`Limits::link_cache_capacity`].
    pub fn link_cache_capacity(mut self, capacity: usize) -> Self {
        self.limits.link_cache_capacity = capacity;
        self
    }
    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }
    /// The request-time policy (default: [`ChainScopePolicy`]).
    pub fn policy(mut self, policy: impl Policy + 'static) -> Self {
        self.policy = Arc::new(policy);
        self
    }
    /// The revocation store (default: an empty [`MemoryRevocations`]). Its
    /// [`retention`](Revocations::retention) must cover `max_token_ttl + leeway`, or
    /// [`build`](VerifierBuilder::build) refuses it.
    pub fn revocations(mut self, revocations: impl Revocations + 'static) -> Self {
        self.revocations = Some(Arc::new(revocations));
        self
    }
    /// The replay cache (default: a [`MemoryReplayCache`] of default capacity).
    pub fn replay(mut self, replay: impl ReplayCache + 'static) -> Self {
        self.replay = Some(Arc::new(replay));
        self
    }
    /// The audit sink (required: every decision is recorded, so choose where).
    pub fn audit(mut self, audit: impl AuditSink + 'static) -> Self {
        self.audit = Some(Arc::new(audit));
        self
    }
    /// What to do with an accepted handoff whose audit record cannot be kept (default
    /// [`AuditFailure::Deny`]: deny with `unavailable`).
    pub fn on_audit_failure(mut self, on_failure: AuditFailure) -> Self {
        self.on_audit_failure = on_failure;
        self
    }
    /// Checks the configuration and builds the verifier.
    pub fn build(self) -> Result<HandoffVerifier, Error> {
        let audit = self.audit.ok_or_else(|| {
            Error::Config(
                "no audit sink: call `.audit(JsonlAudit::open(\"audit.jsonl\")?)` (or `MemoryAudit`, or `DiscardAudit` to opt out explicitly)"
                    .to_owned(),
            )
        })?;
        let l = &self.limits;
        if l.max_chain_len == 0 || l.max_chain_len > MAX_CHAIN_LINKS {
            return Err(Error::Config(format!(
                "`max_chain_len` must be 1 to {MAX_CHAIN_LINKS}"
            )));
        }
        if l.max_envelope_ttl.as_secs() == 0 || l.max_token_ttl.as_secs() == 0 {
            return Err(Error::Config(
                "lifetimes must be at least one second".to_owned(),
            ));
        }
        if l.leeway > Duration::from_secs(300) {
            return Err(Error::Config(
                "a leeway above 300 s defeats expiry; fix the clocks instead".to_owned(),
            ));
        }
        // SPEC section 6 step 8: a store that forgets a revocation while the credential it
        // kills can still pass the time checks would let that credential verify again.
        let required = required_retention(l.max_token_ttl, l.leeway);
        let revocations = match self.revocations {
            Some(store) => store,
            None => Arc::new(MemoryRevocations::with_retention(
                required.max(DEFAULT_RETENTION),
            )),
        };
        if let Some(retention) = revocations.retention() {
            if retention < required {
                return Err(Error::RetentionTooShort {
                    retention,
                    required,
                    max_token_ttl: l.max_token_ttl,
                    leeway: l.leeway,
                });
            }
        }
        Ok(HandoffVerifier {
            me: self.me,
            keys: self.keys,
            limits: self.limits,
            clock: self.clock,
            policy: self.policy,
            revocations,
            replay: self
                .replay
                .unwrap_or_else(|| Arc::new(MemoryReplayCache::default())),
            audit,
            on_audit_failure: self.on_audit_failure,
            links: LinkCache::new(self.limits.link_cache_capacity),
        })
    }
}
