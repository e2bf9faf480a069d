//! Recording decisions (SPEC section 7): one audit record per decision, written before the
//! decision is returned.

use crate::audit::{AllowedFacts, AuditRecord, ClaimedFacts};
use crate::clock::UnixTime;
use crate::error::{Fault, Location, Rejection, Unavailable};
use crate::grant::{EnvelopeClaims, TokenClaims};
use crate::policy::PolicyDecision;
use crate::verify::handoff::{Accepted, Denied};
use crate::verify::{AuditFailure, HandoffVerifier, VerifiedHandoff};
use crate::wire::jws::{self, Kind};

impl HandoffVerifier {
    /// Writes the audit record; an allow whose record cannot be kept becomes a denial.
    pub(super) fn record(
        &self,
        outcome: Result<Accepted, Denied>,
        wire: &str,
        now: UnixTime,
    ) -> Result<VerifiedHandoff, Rejection> {
        match outcome {
            Ok(Accepted { handoff }) => self.record_allow(handoff, now),
            Err(Denied { rejection, policy }) => {
                self.record_denial(now, &rejection, Some(wire), policy.as_deref());
                Err(rejection)
            }
        }
    }

    /// Writes the audit record of an accepted handoff; if it cannot be kept, the handoff is
    /// denied [unavailable] unless the verifier was configured to fail open.
    fn record_allow(
        &self,
        handoff: VerifiedHandoff,
        now: UnixTime,
    ) -> Result<VerifiedHandoff, Rejection> {
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
            Err(e) => Err(Rejection::from_fault(
                Fault::Unavailable(Unavailable::Audit {
                    problem: e.to_string(),
                }),
                Location::Verifier,
            )),
        }
    }

    /// Writes the audit record of a denial: what the envelope (if any) claimed, under
    /// `claimed`, and the policy rule if one decided. A denial stands whether or not its
    /// record could be kept.
    pub(super) fn record_denial(
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

/// What a denied input claims, as far as it can be read: the envelope's claims if they parse,
/// and the ids of the chain's links that parse. None of it is verified; it is recorded under
/// `claimed`.
fn claimed_facts(wire: &str) -> ClaimedFacts {
    let mut claimed = ClaimedFacts::default();
    let Some(env) = jws::decode(wire, Kind::Envelope)
        .ok()
        .and_then(|jws| EnvelopeClaims::<String>::parse(&jws.claims).ok())
    else {
        return claimed;
    };
    claimed.chain = env
        .chain
        .iter()
        .filter_map(|compact| {
            // Only the id: nothing else of an unverified token is parsed (or compiled).
            let decoded = jws::decode(compact, Kind::Token).ok()?;
            TokenClaims::claimed_id(&decoded.claims)
        })
        .collect();
    claimed.envelope = Some(env.jti);
    claimed.sender = Some(env.iss);
    claimed.audience = Some(env.aud);
    claimed.task = Some(env.task);
    claimed.intent = Some(env.intent);
    claimed
}
