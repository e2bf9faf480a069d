//! Verification (SPEC section 6): from a wire string and the payload bytes to either a
//! [`VerifiedHandoff`] or a [`Rejection`] with a stable reason code, recorded in the audit log.

mod link_cache;
mod request;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::{AllowedFacts, AuditRecord, AuditSink, ClaimedFacts};
use crate::clock::{Clock, SystemClock, UnixTime};
use crate::error::{Error, Location, Reason, Rejection};
use crate::grant::{
    Capability, DelegationToken, EnvelopeClaims, HandoffMode, Intent, ParsedLink, PayloadDigest,
    TokenClaims, TokenHash, VerifiedLink,
};
use crate::keys::KeyResolver;
use crate::limits::{Limits, DEFAULT_RETENTION, MAX_CHAIN_LINKS};
use crate::policy::{ChainScopePolicy, Policy, PolicyDecision, PolicyRequest, RequestContext};
use crate::store::{
    required_retention, Freshness, MemoryReplayCache, MemoryRevocations, ReplayCache,
    RevocationQuery, Revocations, TokenRef,
};
use crate::wire::jws::{self, Kind};
use crate::wire::{AgentId, KeyId, TaskId, TokenId};
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
                return Err(Error::Config(format!(
                    "the revocation store forgets a token or task revocation {} s after it is \
                     made, but a revoked token can still pass this verifier's time checks for \
                     {} s (max_token_ttl {} s + leeway {} s), so it would verify again: give \
                     the store a retention of at least {} s \
                     (`MemoryRevocations::with_retention`, `RedisOptions::retention`), or lower \
                     max_token_ttl or leeway",
                    retention.as_secs(),
                    required.as_secs(),
                    l.max_token_ttl.as_secs(),
                    l.leeway.as_secs(),
                    required.as_secs()
                )));
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

/// A link being checked: its decoded claims and header `kid` (shared with the link cache),
/// and its hash.
struct Link {
    parsed: Arc<ParsedLink>,
    hash: TokenHash,
}

impl std::ops::Deref for Link {
    type Target = ParsedLink;
    fn deref(&self) -> &ParsedLink {
        &self.parsed
    }
}

/// The outcome of the checks, before auditing.
struct Accepted {
    handoff: VerifiedHandoff,
}

/// A rejection plus the policy rule, if the policy decided.
struct Denied {
    rejection: Rejection,
    policy: Option<PolicyDecision>,
}

impl From<Rejection> for Denied {
    fn from(rejection: Rejection) -> Self {
        Denied {
            rejection,
            policy: None,
        }
    }
}

fn reject(reason: Reason, location: Location, detail: impl Into<String>) -> Rejection {
    Rejection::new(reason, location, detail.into())
}

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

    /// SPEC section 6, step by step. (What a denied input claimed is collected afterwards, by
    /// [`claimed_facts`], so the accepting path copies nothing for the audit record of a
    /// denial.)
    fn check(&self, request: &VerifyRequest<'_>, now: UnixTime) -> Result<Accepted, Denied> {
        let (wire, payload, context) = (request.envelope, request.payload, request.context);
        let env_loc = Location::Envelope;

        // 1. Size, JWS form, header, JSON and claim syntax of the envelope.
        let jws = jws::decode(wire, Kind::Envelope)?;
        let env = EnvelopeClaims::parse(&jws.claims)?;
        if env.chain.len() > self.limits.max_chain_len {
            return Err(reject(
                Reason::ChainTooLong,
                env_loc,
                format!(
                    "the chain has {} links; this verifier allows at most {}",
                    env.chain.len(),
                    self.limits.max_chain_len
                ),
            )
            .into());
        }

        // 2. Envelope key and signature.
        self.verify_signature(&jws, &env.iss, "sender", env_loc)?;

        // 3. Audience.
        if env.aud != self.me {
            return Err(reject(
                Reason::WrongAudience,
                env_loc,
                format!(
                    "the envelope is addressed to `{}`, not to `{}`",
                    env.aud, self.me
                ),
            )
            .into());
        }

        // 4. Envelope time window and lifetime.
        self.check_time(
            env.iat,
            env.iat,
            env.exp,
            self.limits.max_envelope_ttl,
            now,
            env_loc,
        )?;

        // 4b. The intent the endpoint requires, when the caller's binding names one: exact
        // action and resource. Checked once the intent is known to be signed by the sender,
        // before the chain's signatures and the stores are worth asking [intent_not_granted].
        if let Some(required) = request.required_intent {
            if required.action() != env.intent.action()
                || required.resource() != env.intent.resource()
            {
                return Err(reject(
                    Reason::IntentNotGranted,
                    env_loc,
                    format!(
                        "the envelope's intent `{}` is not the one this endpoint requires (`{required}`)",
                        env.intent
                    ),
                )
                .into());
            }
        }

        // 5. The chain, then the sender binding.
        let links = self.check_chain(&env.chain, now)?;
        let mode = check_sender_binding(&env, &jws.kid, &links)?;
        let (Some(root), Some(last)) = (links.first(), links.last()) else {
            return Err(reject(Reason::Malformed, env_loc, "empty chain").into());
        };
        if env.task != root.claims.task {
            return Err(reject(
                Reason::TaskMismatch,
                env_loc,
                format!(
                    "the envelope is for task `{}`, the chain for `{}`",
                    env.task, root.claims.task
                ),
            )
            .into());
        }

        // 6. The intent is covered by a capability of the last link, args within limits.
        if !last.claims.caps.iter().any(|cap| cap.allows(&env.intent)) {
            return Err(reject(
                Reason::IntentNotGranted,
                env_loc,
                format!(
                    "intent `{}` (with its arguments) is not granted by the chain's last link",
                    env.intent
                ),
            )
            .into());
        }

        // 7. Payload digest.
        if PayloadDigest::of(payload) != env.digest {
            return Err(reject(
                Reason::PayloadMismatch,
                env_loc,
                "the payload does not match the envelope's digest",
            )
            .into());
        }

        // 8. Revocation.
        self.check_revocation(&env, &links, now)?;

        // 9. Request-time policy.
        let chain: Vec<VerifiedLink> = links.iter().map(verified_link).collect();
        let decision = self.policy.evaluate(&PolicyRequest {
            sender: &env.iss,
            recipient: &self.me,
            mode,
            intent: &env.intent,
            capabilities: &last.claims.caps,
            chain: &chain,
            envelope_issued_at: env.iat,
            envelope_expires_at: env.exp,
            now,
            context,
            route_action: request.route_action,
        });
        if !decision.is_allowed() {
            return Err(Denied {
                rejection: reject(
                    Reason::PolicyDenied,
                    Location::Verifier,
                    format!("policy rule `{}` denied the request", decision.rule()),
                ),
                policy: Some(decision),
            });
        }

        // 10. Replay, recorded atomically with acceptance.
        let keep_until = env.exp.plus(self.limits.leeway);
        match self.replay.check_and_insert(&env.jti, keep_until, now) {
            Ok(Freshness::Fresh) => {}
            Ok(_) => {
                return Err(Denied {
                    rejection: reject(
                        Reason::Replayed,
                        env_loc,
                        format!("envelope `{}` was already accepted", env.jti),
                    ),
                    policy: Some(decision),
                })
            }
            Err(e) => {
                return Err(Denied {
                    rejection: reject(Reason::Unavailable, Location::Verifier, e.to_string()),
                    policy: Some(decision),
                })
            }
        }

        let delegated = match mode {
            HandoffMode::Delegation => Some(
                env.chain
                    .iter()
                    .zip(&links)
                    .map(|(compact, link)| {
                        DelegationToken::from_parts(
                            compact.clone(),
                            link.claims.clone(),
                            link.kid.clone(),
                            link.hash,
                        )
                    })
                    .collect(),
            ),
            HandoffMode::Request => None,
        };
        Ok(Accepted {
            handoff: VerifiedHandoff {
                envelope_id: env.jti,
                sender: env.iss,
                recipient: self.me.clone(),
                task: env.task,
                intent: env.intent,
                mode,
                chain,
                delegated,
                issued_at: env.iat,
                expires_at: env.exp,
                digest: env.digest,
                policy: decision,
            },
        })
    }

    /// `max(nbf, iat) - leeway <= now < exp + leeway`, and `exp - min(iat, nbf) <= max_ttl`
    /// (SPEC section 4, *time claims*, and section 6 step 4).
    fn check_time(
        &self,
        iat: UnixTime,
        nbf: UnixTime,
        exp: UnixTime,
        max_ttl: Duration,
        now: UnixTime,
        location: Location,
    ) -> Result<(), Rejection> {
        let leeway = self.limits.leeway;
        // A credential cannot be issued in the future: a far-future `iat` with an early
        // `nbf` would otherwise be in force far longer than `exp - iat` says.
        if now < nbf.minus(leeway) || now < iat.minus(leeway) {
            let from = nbf.max(iat);
            return Err(reject(
                Reason::NotYetValid,
                location,
                format!(
                    "not valid before {from} (now {now}, leeway {} s)",
                    leeway.as_secs()
                ),
            ));
        }
        if now >= exp.plus(leeway) {
            return Err(reject(
                Reason::Expired,
                location,
                format!(
                    "expired at {exp} (now {now}, leeway {} s)",
                    leeway.as_secs()
                ),
            ));
        }
        // Counted from the earlier of `iat` and `nbf`: the whole time the credential is in force.
        let lifetime = exp.since(iat.min(nbf));
        if lifetime > max_ttl.as_secs() {
            return Err(reject(
                Reason::TtlTooLong,
                location,
                format!(
                    "lifetime is {lifetime} s; this verifier allows at most {} s",
                    max_ttl.as_secs()
                ),
            ));
        }
        Ok(())
    }

    /// SPEC section 4: every link decoded, bound to its parent, signed by a registered key,
    /// in force, and no wider than its parent.
    fn check_chain(&self, tokens: &[String], now: UnixTime) -> Result<Vec<Link>, Rejection> {
        let mut links: Vec<Link> = Vec::with_capacity(tokens.len());
        for (i, compact) in tokens.iter().enumerate() {
            let loc = Location::Link(i);

            // Decoded and signature-checked before, at this key generation? Then the same
            // bytes decode to the same claims; skip the decoding and the signature check
            // (every other check below still runs). Read the generation before resolving any
            // key: if the keys change meanwhile, the entry is recorded under the old one.
            let generation = self.keys.generation();
            let hash = TokenHash::of(compact);
            let (parsed, unverified) = match self.links.get(&hash, generation, now) {
                Some(parsed) => (parsed, None),
                None => {
                    let decoded = jws::decode(compact, Kind::Token).map_err(|r| r.at(loc))?;
                    let claims = TokenClaims::parse(&decoded.claims).map_err(|r| r.at(loc))?;
                    let parsed = Arc::new(ParsedLink {
                        claims,
                        kid: decoded.kid.clone(),
                    });
                    (parsed, Some(decoded))
                }
            };
            let claims = &parsed.claims;

            // Binding to the parent [untrusted_root, broken_chain].
            match links.last() {
                None => {
                    if claims.parent.is_some() {
                        return Err(reject(
                            Reason::BrokenChain,
                            loc,
                            "the root token has a `parent`",
                        ));
                    }
                    if !self.keys.is_authority(&claims.iss) {
                        return Err(reject(
                            Reason::UntrustedRoot,
                            loc,
                            format!("root issuer `{}` is not a trusted authority", claims.iss),
                        ));
                    }
                }
                Some(p) => {
                    if claims.parent != Some(p.hash) {
                        return Err(reject(
                            Reason::BrokenChain,
                            loc,
                            "`parent` is not the hash of the previous link",
                        ));
                    }
                    if claims.iss != p.claims.sub {
                        return Err(reject(
                            Reason::BrokenChain,
                            loc,
                            format!(
                                "issuer `{}` is not the previous link's subject `{}`",
                                claims.iss, p.claims.sub
                            ),
                        ));
                    }
                    if parsed.kid != p.claims.cnf.jkt {
                        return Err(reject(
                            Reason::BrokenChain,
                            loc,
                            format!(
                                "signed with key `{}`, but the previous link binds key `{}`",
                                parsed.kid, p.claims.cnf.jkt
                            ),
                        ));
                    }
                }
            }

            // Signature under the key registered for the issuer [unknown_key, bad_signature].
            if let Some(decoded) = &unverified {
                self.verify_signature(decoded, &claims.iss, "issuer", loc)?;
                let drop_at = claims.exp.plus(self.limits.leeway);
                self.links.insert(&hash, &parsed, generation, drop_at, now);
            }
            if self.keys.resolve(&claims.sub, &claims.cnf.jkt).is_none() {
                return Err(reject(
                    Reason::UnknownKey,
                    loc,
                    format!(
                        "`cnf.jkt` `{}` is not a key registered for subject `{}`",
                        claims.cnf.jkt, claims.sub
                    ),
                ));
            }

            // In force [not_yet_valid, expired, ttl_too_long].
            self.check_time(
                claims.iat,
                claims.not_before(),
                claims.exp,
                self.limits.max_token_ttl,
                now,
                loc,
            )?;

            // No self-delegation, same domain unless federated [delegation_forbidden, cross_domain].
            if claims.sub == claims.iss {
                return Err(reject(
                    Reason::DelegationForbidden,
                    loc,
                    format!("`{}` delegates to itself", claims.iss),
                ));
            }
            let federated = self.keys.federates(claims.iss.trust_domain())
                && self.keys.federates(claims.sub.trust_domain());
            if !claims.iss.same_domain(&claims.sub) && !federated {
                return Err(reject(
                    Reason::CrossDomain,
                    loc,
                    format!(
                        "`{}` delegates across trust domains to `{}`, which this verifier does not federate",
                        claims.iss, claims.sub
                    ),
                ));
            }

            if let Some(p) = links.last() {
                check_narrowing(&p.claims, claims, &links, loc)?;
            }
            links.push(Link { parsed, hash });
        }
        Ok(links)
    }

    /// A JWS's signature under the key registered for `signer` with the header's `kid` (only
    /// a hint: it must name a key of that agent) [unknown_key, bad_signature].
    fn verify_signature(
        &self,
        jws: &jws::Decoded<'_>,
        signer: &AgentId,
        role: &str,
        loc: Location,
    ) -> Result<(), Rejection> {
        let key = self.keys.resolve(signer, &jws.kid).ok_or_else(|| {
            reject(
                Reason::UnknownKey,
                loc,
                format!("no key `{}` is registered for {role} `{signer}`", jws.kid),
            )
        })?;
        if !jws.verify(&key) {
            let what = if loc == Location::Envelope {
                "envelope"
            } else {
                "token"
            };
            return Err(reject(
                Reason::BadSignature,
                loc,
                format!("{what} signature does not verify"),
            ));
        }
        Ok(())
    }

    fn check_revocation(
        &self,
        env: &EnvelopeClaims,
        links: &[Link],
        now: UnixTime,
    ) -> Result<(), Rejection> {
        let tokens: Vec<TokenRef<'_>> = links
            .iter()
            .map(|l| TokenRef {
                id: &l.claims.jti,
                issued_at: l.claims.iat,
            })
            .collect();
        let mut agents: Vec<&AgentId> = Vec::with_capacity(links.len() * 2 + 1);
        agents.push(&env.iss);
        for l in links {
            agents.push(&l.claims.iss);
            agents.push(&l.claims.sub);
        }
        let query = RevocationQuery {
            tokens: &tokens,
            task: &env.task,
            agents: &agents,
            envelope_issued_at: env.iat,
            now,
        };
        match self.revocations.check(&query) {
            Ok(None) => Ok(()),
            Ok(Some(revoked)) => Err(reject(
                Reason::Revoked,
                Location::Verifier,
                revoked.to_string(),
            )),
            Err(e) => Err(reject(
                Reason::Unavailable,
                Location::Verifier,
                e.to_string(),
            )),
        }
    }

    /// Writes the audit record; an allow whose record cannot be kept becomes a denial.
    fn record(
        &self,
        outcome: Result<Accepted, Denied>,
        wire: &str,
        now: UnixTime,
    ) -> Result<VerifiedHandoff, Rejection> {
        match outcome {
            Ok(Accepted { handoff }) => {
                let record = AuditRecord::allow(
                    now,
                    self.me.clone(),
                    AllowedFacts {
                        envelope: handoff.envelope_id.clone(),
                        sender: handoff.sender.clone(),
                        task: handoff.task.clone(),
                        intent: handoff.intent.clone(),
                        mode: handoff.mode,
                        chain: handoff.chain.iter().map(|l| l.id().clone()).collect(),
                        scope: handoff.capabilities().to_vec(),
                    },
                    Some(handoff.policy.rule().to_owned()),
                    handoff.policy.version().map(str::to_owned),
                );
                match self.audit.record(&record) {
                    Ok(()) => Ok(handoff),
                    Err(_) if self.on_audit_failure == AuditFailure::Allow => Ok(handoff),
                    Err(e) => Err(reject(
                        Reason::Unavailable,
                        Location::Verifier,
                        format!("the handoff passed every check but its audit record could not be kept: {e}"),
                    )),
                }
            }
            Err(Denied { rejection, policy }) => {
                self.record_denial(now, &rejection, Some(wire), policy.as_ref());
                Err(rejection)
            }
        }
    }

    /// Writes the audit record of a denial: what the envelope (if any) claimed, under
    /// `claimed`, and the policy rule if one decided. A denial stands whether or not its
    /// record could be kept.
    fn record_denial(
        &self,
        now: UnixTime,
        rejection: &Rejection,
        wire: Option<&str>,
        policy: Option<&PolicyDecision>,
    ) {
        let record = AuditRecord::deny(
            now,
            self.me.clone(),
            rejection.reason(),
            rejection.detail(),
            wire.map(claimed_facts).unwrap_or_default(),
            policy.map(|p| p.rule().to_owned()),
            policy.and_then(|p| p.version().map(str::to_owned)),
        );
        let _ = self.audit.record(&record);
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

/// SPEC section 4 rules 2 to 4 for a child `c` of parent `p`.
fn check_narrowing(
    p: &TokenClaims,
    c: &TokenClaims,
    earlier: &[Link],
    loc: Location,
) -> Result<(), Rejection> {
    // 2. [delegation_forbidden]
    if p.depth == 0 {
        return Err(reject(
            Reason::DelegationForbidden,
            loc,
            format!("the parent grants `{}` depth 0: it may not delegate", p.sub),
        ));
    }
    if let Some(allowed) = &p.delegates {
        if !allowed.iter().any(|pat| pat.matches(&c.sub)) {
            return Err(reject(
                Reason::DelegationForbidden,
                loc,
                format!("the parent's `delegates` do not include `{}`", c.sub),
            ));
        }
    }
    if earlier
        .iter()
        .any(|l| l.claims.iss == c.sub || l.claims.sub == c.sub)
    {
        return Err(reject(
            Reason::DelegationForbidden,
            loc,
            format!("`{}` already appears earlier in the chain (a cycle)", c.sub),
        ));
    }
    // 3. [escalation]
    if c.depth > p.depth - 1 {
        return Err(reject(
            Reason::Escalation,
            loc,
            format!("depth {} is not below the parent's {}", c.depth, p.depth),
        ));
    }
    if c.exp > p.exp {
        return Err(reject(
            Reason::Escalation,
            loc,
            format!("expires at {}, after its parent ({})", c.exp, p.exp),
        ));
    }
    if let Some(wider) = c
        .caps
        .iter()
        .find(|cap| !p.caps.iter().any(|pc| pc.covers(cap)))
    {
        return Err(reject(
            Reason::Escalation,
            loc,
            format!("capability `{wider}` is not covered by the parent"),
        ));
    }
    if let Some(parent_delegates) = &p.delegates {
        match &c.delegates {
            None => {
                return Err(reject(
                    Reason::Escalation,
                    loc,
                    "the parent restricts `delegates`; the child drops the restriction",
                ))
            }
            Some(mine) => {
                if let Some(wider) = mine
                    .iter()
                    .find(|m| !parent_delegates.iter().any(|t| t.covers(m)))
                {
                    return Err(reject(
                        Reason::Escalation,
                        loc,
                        format!("delegate pattern `{wider}` is wider than the parent's"),
                    ));
                }
            }
        }
    }
    // 4. [task_mismatch]
    if c.task != p.task {
        return Err(reject(
            Reason::TaskMismatch,
            loc,
            format!("task `{}` differs from the parent's `{}`", c.task, p.task),
        ));
    }
    Ok(())
}

/// SPEC section 5: the chain ends at the sender (request) or delegates from the sender to the
/// recipient (delegation), with the envelope signed by the key the chain binds.
fn check_sender_binding(
    env: &EnvelopeClaims,
    kid: &KeyId,
    links: &[Link],
) -> Result<HandoffMode, Rejection> {
    let loc = Location::Envelope;
    let Some(last) = links.last() else {
        return Err(reject(Reason::Malformed, loc, "empty chain"));
    };
    if last.claims.sub == env.iss {
        if kid != &last.claims.cnf.jkt {
            return Err(reject(
                Reason::SenderMismatch,
                loc,
                format!(
                    "the envelope is signed with key `{kid}`, but the chain is bound to key `{}`",
                    last.claims.cnf.jkt
                ),
            ));
        }
        return Ok(HandoffMode::Request);
    }
    if last.claims.iss == env.iss && last.claims.sub == env.aud {
        if let Some(previous) = links.len().checked_sub(2).and_then(|i| links.get(i)) {
            if kid != &previous.claims.cnf.jkt {
                return Err(reject(
                    Reason::SenderMismatch,
                    loc,
                    format!(
                        "the envelope is signed with key `{kid}`, but the chain is bound to key `{}`",
                        previous.claims.cnf.jkt
                    ),
                ));
            }
        }
        return Ok(HandoffMode::Delegation);
    }
    Err(reject(
        Reason::SenderMismatch,
        loc,
        format!(
            "sender `{}` is neither the chain's final subject (`{}`) nor its final delegator to the recipient",
            env.iss, last.claims.sub
        ),
    ))
}

/// What a denied input claims, as far as it can be read: the envelope's claims if they parse,
/// and the ids of the chain's links that parse. None of it is verified; it is recorded under
/// `claimed`.
fn claimed_facts(wire: &str) -> ClaimedFacts {
    let mut claimed = ClaimedFacts::default();
    let Some(env) = jws::decode(wire, Kind::Envelope)
        .ok()
        .and_then(|jws| EnvelopeClaims::parse(&jws.claims).ok())
    else {
        return claimed;
    };
    claimed.chain = env
        .chain
        .iter()
        .filter_map(|compact| {
            let decoded = jws::decode(compact, Kind::Token).ok()?;
            TokenClaims::parse(&decoded.claims).ok().map(|c| c.jti)
        })
        .collect();
    claimed.envelope = Some(env.jti);
    claimed.sender = Some(env.iss);
    claimed.audience = Some(env.aud);
    claimed.task = Some(env.task);
    claimed.intent = Some(env.intent);
    claimed
}

fn verified_link(link: &Link) -> VerifiedLink {
    VerifiedLink::new(Arc::clone(&link.parsed))
}

#[cfg(test)]
mod link_cache_tests {
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
