//! SPEC section 6, step by step: [`HandoffVerifier::check`] and the steps that need the
//! verifier's keys, stores and policy. The rules on claims are the rule book's
//! ([`crate::grant::rules`]).

use crate::clock::UnixTime;
use crate::error::{Fault, Location, Rejection, Revocation, Signer, Unavailable};
use crate::grant::rules;
use crate::grant::{BorrowedEnvelopeClaims, DelegationToken, HandoffMode, VerifiedLink};
use crate::policy::{PolicyDecision, PolicyRequest};
use crate::store::{Freshness, RevocationQuery, Revoked, TokenRef};
use crate::verify::chain::Link;
use crate::verify::{HandoffVerifier, VerifiedHandoff, VerifyRequest};
use crate::wire::json::Text;
use crate::wire::jws::{self, Kind};
use crate::wire::AgentId;

/// The outcome of the checks, before auditing.
pub(super) struct Accepted {
    pub(super) handoff: VerifiedHandoff,
}

/// A rejection plus the policy rule, if the policy decided.
pub(super) struct Denied {
    pub(super) rejection: Rejection,
    pub(super) policy: Option<Box<PolicyDecision>>,
}

impl From<Rejection> for Denied {
    fn from(rejection: Rejection) -> Self {
        Denied {
            rejection,
            policy: None,
        }
    }
}

/// A fault of the envelope itself, placed there.
fn on_envelope<T>(checked: Result<T, Fault>) -> Result<T, Rejection> {
    checked.map_err(|fault| Rejection::from_fault(fault, Location::Envelope))
}

/// A fault of the verifier's stores or policy, placed there.
fn at_verifier(fault: Fault) -> Rejection {
    Rejection::from_fault(fault, Location::Verifier)
}

impl HandoffVerifier {
    /// SPEC section 6, step by step; the numbers are the SPEC's. (What a denied input claimed
    /// is collected afterwards, by the audit record, so the accepting path copies nothing for
    /// the record of a denial.)
    pub(super) fn check(
        &self,
        request: &VerifyRequest<'_>,
        now: UnixTime,
    ) -> Result<Accepted, Denied> {
        let (wire, payload) = (request.envelope, request.payload);
        // 1. Size, JWS form, header, JSON and claim syntax of the envelope; chain length.
        let jws = on_envelope(jws::decode(wire, Kind::Envelope))?;
        let env = on_envelope(self.parse_claims(&jws))?;
        // 2. Envelope key known for (`iss`, `kid`); envelope signature.
        on_envelope(self.verify_signature(&jws, &env.iss, Signer::Sender))?;
        // 3. `aud` is the verifier's own id.
        on_envelope(rules::addressed_to(&env.aud, &self.me))?;
        // 4. Envelope time window and lifetime.
        on_envelope(self.envelope_in_force(&env, now))?;
        // 4b. The route's required intent, when a transport binding gives one.
        on_envelope(rules::required_intent(&env.intent, request.required_intent))?;
        // 5. The chain, then the sender binding (and the chain's task is the envelope's).
        let links = self.check_chain(&env.chain, now)?;
        let mode = on_envelope(rules::sender_binding(&links, &env.iss, &env.aud, &jws.kid))?;
        on_envelope(rules::chain_task(&env.task, &links))?;
        // 6. The intent is covered by a capability of the last link, args within its limits.
        on_envelope(rules::intent_granted(&links, &env.intent))?;
        // 7. Payload digest.
        on_envelope(rules::payload_matches(&env.digest, payload))?;
        // 8. Nothing in the chain, the task or the sender is revoked.
        self.not_revoked(&env, &links, now)?;
        // 9. The policy allows it, judged now.
        let (chain, decision) = self.policy_allows(&env, mode, &links, request, now)?;
        // 10. The envelope was not accepted before; recorded atomically with acceptance.
        self.not_replayed(&env, &decision, now)?;
        Ok(self.accepted(env, mode, &links, chain, decision))
    }

    /// Step 1, after the JWS layer: the envelope's claims (JSON, claim syntax), with the chain
    /// tokens borrowed from the decoded claims, and a chain no longer than this verifier
    /// allows.
    fn parse_claims<'a>(
        &self,
        jws: &'a jws::Decoded<'_>,
    ) -> Result<BorrowedEnvelopeClaims<'a>, Fault> {
        let env = BorrowedEnvelopeClaims::parse(&jws.claims)?;
        rules::chain_length(env.chain.len(), self.limits.max_chain_len)?;
        Ok(env)
    }

    /// Step 4: the envelope's time window and lifetime (SPEC section 4, *time claims*; an
    /// envelope has no `nbf`).
    fn envelope_in_force(
        &self,
        env: &BorrowedEnvelopeClaims<'_>,
        now: UnixTime,
    ) -> Result<(), Fault> {
        let (max_ttl, leeway) = (self.limits.max_envelope_ttl, self.limits.leeway);
        rules::in_force((env.iat, env.iat, env.exp), max_ttl, leeway, now)
    }

    /// Step 8: no link `jti`, the task, or any agent in the chain or the sender is revoked,
    /// and no cut-off applies [revoked]; a store that cannot answer denies [unavailable].
    fn not_revoked(
        &self,
        env: &BorrowedEnvelopeClaims<'_>,
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
            Ok(Some(revoked)) => Err(at_verifier(Fault::Revoked(revocation(revoked)))),
            Err(e) => Err(at_verifier(Fault::Unavailable(Unavailable::Store {
                problem: e.to_string(),
            }))),
        }
    }

    /// Step 9: the request-time policy, on the verified chain [policy_denied].
    fn policy_allows(
        &self,
        env: &BorrowedEnvelopeClaims<'_>,
        mode: HandoffMode,
        links: &[Link],
        request: &VerifyRequest<'_>,
        now: UnixTime,
    ) -> Result<(Vec<VerifiedLink>, PolicyDecision), Denied> {
        let chain: Vec<VerifiedLink> = links
            .iter()
            .map(|link| VerifiedLink::new(std::sync::Arc::clone(&link.parsed)))
            .collect();
        let capabilities = links.last().map(|l| &l.claims.caps[..]).unwrap_or_default();
        let decision = self.policy.evaluate(&PolicyRequest {
            sender: &env.iss,
            recipient: &self.me,
            mode,
            intent: &env.intent,
            capabilities,
            chain: &chain,
            envelope_issued_at: env.iat,
            envelope_expires_at: env.exp,
            now,
            context: request.context,
            route_action: request.route_action,
        });
        if !decision.is_allowed() {
            let rule = decision.rule().to_owned();
            return Err(Denied {
                rejection: at_verifier(Fault::PolicyDenied { rule }),
                policy: Some(Box::new(decision)),
            });
        }
        Ok((chain, decision))
    }

    /// Step 10: the envelope's `jti` is new, and is remembered until `exp` plus leeway
    /// [replayed]; a replay cache that cannot answer denies [unavailable].
    fn not_replayed(
        &self,
        env: &BorrowedEnvelopeClaims<'_>,
        decision: &PolicyDecision,
        now: UnixTime,
    ) -> Result<(), Denied> {
        let keep_until = env.exp.plus(self.limits.leeway);
        let rejection = match self.replay.check_and_insert(&env.jti, keep_until, now) {
            Ok(Freshness::Fresh) => return Ok(()),
            Ok(_) => Rejection::from_fault(
                Fault::Replayed {
                    envelope: env.jti.to_string(),
                },
                Location::Envelope,
            ),
            Err(e) => at_verifier(Fault::Unavailable(Unavailable::Store {
                problem: e.to_string(),
            })),
        };
        Err(Denied {
            rejection,
            policy: Some(Box::new(decision.clone())),
        })
    }

    /// The verified handoff; for a delegation, with the tokens the recipient now holds.
    fn accepted(
        &self,
        env: BorrowedEnvelopeClaims<'_>,
        mode: HandoffMode,
        links: &[Link],
        chain: Vec<VerifiedLink>,
        policy: PolicyDecision,
    ) -> Accepted {
        let delegated = match mode {
            HandoffMode::Delegation => Some(delegated_chain(&env.chain, links)),
            HandoffMode::Request => None,
        };
        Accepted {
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
                policy,
            },
        }
    }
}

/// The chain as tokens the recipient of a delegation can attenuate further.
fn delegated_chain(compact: &[Text<'_>], links: &[Link]) -> Vec<DelegationToken> {
    compact
        .iter()
        .zip(links)
        .map(|(compact, link)| {
            DelegationToken::from_parts(
                compact.0.clone().into_owned(),
                link.claims.clone(),
                link.kid.clone(),
                link.hash,
            )
        })
        .collect()
}

/// A store's answer as a fault.
fn revocation(revoked: Revoked) -> Revocation {
    match revoked {
        Revoked::Token(id) => Revocation::Token { id: id.to_string() },
        Revoked::Task(id) => Revocation::Task { id: id.to_string() },
        Revoked::Agent(id) => Revocation::Agent { id: id.to_string() },
        Revoked::IssuedBefore { cutoff } => Revocation::IssuedBefore { cutoff },
    }
}
