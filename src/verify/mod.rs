//! Verification (SPEC section 6): from a wire string and the payload bytes to either a
//! [`VerifiedHandoff`] or a [`Rejection`] with a stable reason code, recorded in the audit log.
//!
//! The source reads in the SPEC's order: `handoff.rs` holds section 6 as one function, one
//! line a step; `chain.rs` walks section 4 over the links; `audit.rs` records each decision;
//! `builder.rs` checks a verifier's configuration. The rules on claims are the rule book's
//! (`grant/rules.rs`), shared with the builders of [`crate::grant`].

mod audit;
mod builder;
mod chain;
mod handoff;
mod link_cache;
mod request;

use std::fmt;
use std::sync::Arc;

use crate::audit::AuditSink;
use crate::clock::{Clock, UnixTime};
use crate::error::Rejection;
use crate::grant::{Capability, DelegationToken, HandoffMode, Intent, PayloadDigest, VerifiedLink};
use crate::keys::KeyResolver;
use crate::limits::Limits;
use crate::policy::{Policy, PolicyDecision, RequestContext};
use crate::store::{ReplayCache, Revocations};
use crate::wire::{AgentId, TaskId, TokenId};
pub use builder::VerifierBuilder;
use link_cache::LinkCache;
pub use link_cache::LinkCacheStats;
pub use request::VerifyRequest;

/// What the verifier does with a handoff that passed every check when its audit record cannot
/// be kept. A denial is a denial either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditFailure {
    /// Deny with `unavailable` (fail closed; the default): no accepted handoff goes
    /// unrecorded.
    #[default]
    Deny,
    /// Accept anyway (fail open): availability over evidence. Choose it only where another
    /// layer keeps the evidence.
    Allow,
}

/// An accepted handoff: every fact here was verified. It has no public constructor and cannot
/// be deserialized; the only way to get one is [`Verifier::verify`].
#[derive(Clone, Debug)]
pub struct VerifiedHandoff {
    envelope_id: TokenId,
    sender: AgentId,
    recipient: AgentId,
    task: TaskId,
    intent: Intent,
    mode: HandoffMode,
    chain: Vec<VerifiedLink>,
    delegated: Option<Vec<DelegationToken>>,
    issued_at: UnixTime,
    expires_at: UnixTime,
    digest: PayloadDigest,
    policy: PolicyDecision,
}

impl VerifiedHandoff {
    /// The envelope id.
    #[must_use]
    pub fn envelope_id(&self) -> &TokenId {
        &self.envelope_id
    }
    /// The sender, whose signature verified.
    #[must_use]
    pub fn sender(&self) -> &AgentId {
        &self.sender
    }
    /// The recipient (this verifier).
    #[must_use]
    pub fn recipient(&self) -> &AgentId {
        &self.recipient
    }
    /// The task.
    #[must_use]
    pub fn task(&self) -> &TaskId {
        &self.task
    }
    /// The intent, covered by the effective capabilities.
    #[must_use]
    pub fn intent(&self) -> &Intent {
        &self.intent
    }
    /// Request (the sender acts on its own authority) or delegation (the recipient receives
    /// the chain).
    #[must_use]
    pub fn mode(&self) -> HandoffMode {
        self.mode
    }
    /// The effective capabilities: those of the chain's last link.
    #[must_use]
    pub fn capabilities(&self) -> &[Capability] {
        self.chain
            .last()
            .map(VerifiedLink::capabilities)
            .unwrap_or_default()
    }
    /// The verified chain, root first.
    #[must_use]
    pub fn chain(&self) -> &[VerifiedLink] {
        &self.chain
    }
    /// The chain's token ids, root first.
    #[must_use]
    pub fn chain_ids(&self) -> Vec<&TokenId> {
        self.chain.iter().map(VerifiedLink::id).collect()
    }
    /// For a delegation: the tokens the recipient now holds, to act on or attenuate further.
    /// `None` for a request: the recipient gains no authority.
    #[must_use]
    pub fn delegated_chain(&self) -> Option<&[DelegationToken]> {
        self.delegated.as_deref()
    }
    /// When the envelope was issued.
    #[must_use]
    pub fn issued_at(&self) -> UnixTime {
        self.issued_at
    }
    /// When the envelope expires.
    #[must_use]
    pub fn expires_at(&self) -> UnixTime {
        self.expires_at
    }
    /// The payload digest the envelope is bound to (the payload matched it).
    #[must_use]
    pub fn payload_digest(&self) -> PayloadDigest {
        self.digest
    }
    /// The policy rule that allowed the handoff.
    #[must_use]
    pub fn policy_rule(&self) -> &str {
        self.policy.rule()
    }
    /// The policy version that allowed the handoff, if the policy has one.
    #[must_use]
    pub fn policy_version(&self) -> Option<&str> {
        self.policy.version()
    }
}

/// Verifies handoffs addressed to one agent.
pub trait Verifier: fmt::Debug + Send + Sync {
    /// Verifies one request (an envelope, its payload, and what the caller knows about the
    /// request: see [`VerifyRequest`]), records the decision, and returns the verified handoff
    /// or the rejection.
    fn verify_request(&self, request: &VerifyRequest<'_>) -> Result<VerifiedHandoff, Rejection>;

    /// Verifies an envelope and its payload with the caller's context: the common case of
    /// [`verify_request`](Verifier::verify_request), with no required intent.
    fn verify(
        &self,
        envelope: &str,
        payload: &[u8],
        context: &RequestContext,
    ) -> Result<VerifiedHandoff, Rejection> {
        self.verify_request(&VerifyRequest::new(envelope, payload).context(context))
    }

    /// Records a refusal decided before [`verify`](Verifier::verify) could run, by a transport
    /// binding (no envelope header, an oversize body, a request no route accepts), so that
    /// every decision leaves an audit record. `envelope` is the envelope text if there was
    /// one: its claims are recorded as *claimed*. The default does nothing;
    /// [`HandoffVerifier`] writes a deny record to its audit sink.
    fn record_refusal(&self, rejection: &Rejection, envelope: Option<&str>) {
        let _ = (rejection, envelope);
    }
}

/// The verifier of SPEC section 6. `Send + Sync`: share one across threads.
///
/// ```
/// # use agent_handoff::*;
/// # use agent_handoff::audit::MemoryAudit;
/// # let orchestrator = AgentIdentity::generate("spiffe://acme.example/orchestrator".parse()?);
/// # let planner = AgentIdentity::generate("spiffe://acme.example/agents/planner".parse()?);
/// # let executor = AgentIdentity::generate("spiffe://acme.example/agents/executor".parse()?);
/// let mut bundle = TrustBundle::new("acme.example")?;
/// bundle.add_authority(&orchestrator.public())?;
/// bundle.add_agent(&planner.public())?;
/// bundle.add_agent(&executor.public())?;
/// let verifier = HandoffVerifier::builder(executor.id().clone(), bundle)
///     .audit(MemoryAudit::new())
///     .build()?;
/// # let grant = DelegationToken::root(&orchestrator).delegate_to(&planner.public())
/// #     .task("task-42".parse()?).allow("tickets.*", "project/alpha/*")?.sign()?;
/// # let body = b"{}";
/// # let wire = HandoffEnvelope::builder(&planner).to(executor.id())
/// #     .intent("tickets.read", "project/alpha/123")?.payload(body).chain([grant]).seal()?;
/// let handoff = verifier.verify(wire.as_str(), body, &RequestContext::new())?;
/// assert_eq!(handoff.sender(), planner.id());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct HandoffVerifier {
    me: AgentId,
    keys: Arc<dyn KeyResolver>,
    limits: Limits,
    clock: Arc<dyn Clock>,
    policy: Arc<dyn Policy>,
    revocations: Arc<dyn Revocations>,
    replay: Arc<dyn ReplayCache>,
    audit: Arc<dyn AuditSink>,
    on_audit_failure: AuditFailure,
    links: LinkCache,
}

impl fmt::Debug for HandoffVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandoffVerifier")
            .field("me", &self.me)
            .field("limits", &self.limits)
            .field("policy", &self.policy)
            .field("on_audit_failure", &self.on_audit_failure)
            .finish_non_exhaustive()
    }
}

impl HandoffVerifier {
    /// The agent this verifier accepts handoffs for.
    #[must_use]
    pub fn me(&self) -> &AgentId {
        &self.me
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Hits, misses and size of the verified-link cache.
    #[must_use]
    pub fn link_cache_stats(&self) -> LinkCacheStats {
        self.links.stats()
    }
}

impl Verifier for HandoffVerifier {
    fn verify_request(&self, request: &VerifyRequest<'_>) -> Result<VerifiedHandoff, Rejection> {
        let now = self.clock.now();
        let outcome = self.check(request, now);
        self.record(outcome, request.envelope, now)
    }

    fn record_refusal(&self, rejection: &Rejection, envelope: Option<&str>) {
        self.record_denial(self.clock.now(), rejection, envelope, None);
    }
}

#[cfg(test)]
mod link_cache_tests {
    use std::time::Duration;

    use super::*;
    use crate::audit::DiscardAudit;
    use crate::clock::FixedClock;
    use crate::grant::HandoffEnvelope;
    use crate::keys::AgentIdentity;
    use crate::keys::TrustBundle;
    use crate::limits::DEFAULT_LINK_CACHE_CAPACITY;
    use crate::wire::jws::SIGNATURE_CHECKS;

    const T0: UnixTime = UnixTime::from_secs(1_800_000_000);

    fn agent(name: &str, seed: u8) -> AgentIdentity {
        AgentIdentity::from_seed(name.parse().unwrap(), &[seed; 32])
    }

    fn signature_checks() -> usize {
        SIGNATURE_CHECKS.with(std::cell::Cell::get)
    }

    /// orchestrator → planner → payments → executor, and a verifier for the executor.
    fn world(
        capacity: usize,
    ) -> (
        HandoffVerifier,
        AgentIdentity,
        AgentIdentity,
        Vec<DelegationToken>,
    ) {
        let orchestrator = agent("spiffe://acme.example/orchestrator", 1);
        let planner = agent("spiffe://acme.example/agents/planner", 2);
        let payments = agent("spiffe://acme.example/tools/payments", 4);
        let executor = agent("spiffe://acme.example/agents/executor", 3);
        let mut bundle = TrustBundle::new("acme.example").unwrap();
        bundle.add_authority(&orchestrator.public()).unwrap();
        for a in [&planner, &payments, &executor] {
            bundle.add_agent(&a.public()).unwrap();
        }
        let root = DelegationToken::root(&orchestrator)
            .delegate_to(&planner.public())
            .task("task-42".parse().unwrap())
            .allow("tickets.*", "project/alpha/*")
            .unwrap()
            .depth(3)
            .ttl(Duration::from_secs(600))
            .issued_at(T0)
            .sign()
            .unwrap();
        let second = root
            .attenuate(&planner)
            .delegate_to(&payments.public())
            .allow("tickets.*", "project/alpha/*")
            .unwrap()
            .depth(2)
            .issued_at(T0)
            .sign()
            .unwrap();
        let third = second
            .attenuate(&payments)
            .delegate_to(&executor.public())
            .allow("tickets.read", "project/alpha/*")
            .unwrap()
            .depth(1)
            .issued_at(T0)
            .sign()
            .unwrap();
        let verifier = HandoffVerifier::builder(executor.id().clone(), bundle)
            .clock(FixedClock::new(T0))
            .audit(DiscardAudit)
            .link_cache_capacity(capacity)
            .build()
            .unwrap();
        (verifier, payments, executor, vec![root, second, third])
    }

    fn envelope(sender: &AgentIdentity, to: &AgentIdentity, chain: &[DelegationToken]) -> String {
        HandoffEnvelope::builder(sender)
            .to(to.id())
            .intent("tickets.read", "project/alpha/7")
            .unwrap()
            .payload(b"{}")
            .chain(chain)
            .issued_at(T0)
            .seal()
            .unwrap()
            .as_str()
            .to_owned()
    }

    #[test]
    fn a_warm_verify_checks_exactly_one_signature() {
        let (verifier, payments, executor, chain) = world(DEFAULT_LINK_CACHE_CAPACITY);
        let ctx = RequestContext::new();

        let before = signature_checks();
        let first = envelope(&payments, &executor, &chain);
        verifier.verify(&first, b"{}", &ctx).unwrap();
        assert_eq!(signature_checks() - before, 4, "cold: envelope + 3 links");

        let before = signature_checks();
        let second = envelope(&payments, &executor, &chain);
        let handoff = verifier.verify(&second, b"{}", &ctx).unwrap();
        assert_eq!(signature_checks() - before, 1, "warm: the envelope only");
        assert_eq!(handoff.chain().len(), 3);
        let stats = verifier.link_cache_stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (3, 3, 3));
    }

    #[test]
    fn a_disabled_cache_checks_every_signature() {
        let (verifier, payments, executor, chain) = world(0);
        let ctx = RequestContext::new();
        for _ in 0..2 {
            let before = signature_checks();
            let wire = envelope(&payments, &executor, &chain);
            verifier.verify(&wire, b"{}", &ctx).unwrap();
            assert_eq!(signature_checks() - before, 4);
        }
        assert_eq!(verifier.link_cache_stats().capacity, 0);
    }

    #[test]
    fn verifier_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<HandoffVerifier>();
    }
}
