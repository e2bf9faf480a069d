//! The rule book: every rule of SPEC sections 4, 5 and 6 that judges claims, written once, as
//! a pure function that returns a typed [`Fault`].
//!
//! The verifier ([`crate::verify`]) calls these functions and places each fault at its
//! location; the builders ([`TokenBuilder::sign`](crate::TokenBuilder::sign),
//! [`EnvelopeBuilder::seal`](crate::EnvelopeBuilder::seal)) call the same functions and turn a
//! fault into a build error, so that nothing is built that the verifier would refuse for these
//! rules. Nothing else decides them. What needs keys, a clock, stores or a policy (signatures,
//! trusted roots, revocation, replay) is the verifier's alone; it is not here.
//!
//! No function here verifies a signature: claims are judged as claimed. The verifier calls them
//! only in the order of SPEC section 6, each after the signature that covers the claims.

use std::time::Duration;

use crate::clock::UnixTime;
use crate::error::{ChainBreak, Escalation, Fault, Forbidden, SenderMismatch, TaskMismatch};
use crate::grant::{
    Capability, DelegationToken, HandoffMode, Intent, PayloadDigest, TokenClaims, TokenHash,
};
use crate::wire::{AgentId, KeyId, TaskId};

/// A link of a chain as the rules see it: its claims, its header `kid` and its hash. Both a
/// [`DelegationToken`] (for the builders) and the verifier's decoded links are one.
pub(crate) trait ChainLink {
    /// The link's claims, as claimed.
    fn link_claims(&self) -> &TokenClaims;
    /// The `kid` of the link's JWS header.
    fn link_kid(&self) -> &KeyId;
    /// SHA-256 of the link's compact form.
    fn link_hash(&self) -> TokenHash;
}

impl ChainLink for DelegationToken {
    fn link_claims(&self) -> &TokenClaims {
        self.claims()
    }
    fn link_kid(&self) -> &KeyId {
        self.claimed_kid()
    }
    fn link_hash(&self) -> TokenHash {
        self.hash()
    }
}

/// The text of a claimed value, kept in a fault.
fn text(value: &impl ToString) -> String {
    value.to_string()
}

// ------------------------------------------------------------------ SPEC section 4: chains

/// At most `max` links [chain_too_long].
pub(crate) fn chain_length(links: usize, max: usize) -> Result<(), Fault> {
    if links > max {
        return Err(Fault::ChainTooLong { links, max });
    }
    Ok(())
}

/// The first link is a root: it has no `parent` [broken_chain]. (That its issuer is a trusted
/// authority is the verifier's to decide: it needs the trust bundle.)
pub(crate) fn is_root(root: &TokenClaims) -> Result<(), Fault> {
    if root.parent.is_some() {
        return Err(Fault::BrokenChain(ChainBreak::RootHasParent));
    }
    Ok(())
}

/// Rule 1: the child `c` (with its header `kid`) follows its parent: `c.parent` is the
/// parent's hash, `c.iss` is the parent's `sub`, and the `kid` is the parent's `cnf.jkt`
/// [broken_chain].
pub(crate) fn follows(parent: &impl ChainLink, c: &TokenClaims, kid: &KeyId) -> Result<(), Fault> {
    let p = parent.link_claims();
    if c.parent != Some(parent.link_hash()) {
        return Err(Fault::BrokenChain(ChainBreak::ParentHash));
    }
    if c.iss != p.sub {
        return Err(Fault::BrokenChain(ChainBreak::Issuer {
            issuer: text(&c.iss),
            previous_subject: text(&p.sub),
        }));
    }
    if kid != &p.cnf.jkt {
        return Err(Fault::BrokenChain(ChainBreak::Key {
            kid: text(kid),
            bound: text(&p.cnf.jkt),
        }));
    }
    Ok(())
}

/// Rule 2, last sentence: no link, the root included, delegates to its own issuer
/// [delegation_forbidden].
pub(crate) fn not_self_delegated(link: &TokenClaims) -> Result<(), Fault> {
    if link.sub == link.iss {
        return Err(Fault::DelegationForbidden(Forbidden::SelfDelegation {
            agent: text(&link.iss),
        }));
    }
    Ok(())
}

/// Rule 5: `sub` is in the trust domain of `iss`, unless `federates` says both domains are
/// federated (the verifier's trust bundle decides; the root too) [cross_domain].
pub(crate) fn within_domains(
    link: &TokenClaims,
    federates: impl Fn(&str) -> bool,
) -> Result<(), Fault> {
    let federated = federates(link.iss.trust_domain()) && federates(link.sub.trust_domain());
    if !link.iss.same_domain(&link.sub) && !federated {
        return Err(Fault::CrossDomain {
            issuer: text(&link.iss),
            subject: text(&link.sub),
        });
    }
    Ok(())
}

/// Rules 2 to 4 for a child `c` of parent `p`, with every link before `c` (`p` included) in
/// `earlier`: it may delegate, it does not escalate, and it keeps the task.
pub(crate) fn narrows<L: ChainLink>(
    p: &TokenClaims,
    c: &TokenClaims,
    earlier: &[L],
) -> Result<(), Fault> {
    may_delegate(p, c, earlier)?;
    does_not_escalate(p, c)?;
    same_task(p, c)
}

/// Rule 2: `p.depth >= 1`; `c.sub` is matched by `p.delegates` when present; `c.sub` is not
/// the `iss` or `sub` of any earlier link (no cycles) [delegation_forbidden].
pub(crate) fn may_delegate<L: ChainLink>(
    p: &TokenClaims,
    c: &TokenClaims,
    earlier: &[L],
) -> Result<(), Fault> {
    if p.depth == 0 {
        return Err(Fault::DelegationForbidden(Forbidden::DepthExhausted {
            holder: text(&p.sub),
        }));
    }
    if let Some(allowed) = &p.delegates {
        if !allowed.iter().any(|pattern| pattern.matches(&c.sub)) {
            return Err(Fault::DelegationForbidden(Forbidden::NotADelegate {
                subject: text(&c.sub),
            }));
        }
    }
    let seen = |l: &L| l.link_claims().iss == c.sub || l.link_claims().sub == c.sub;
    if earlier.iter().any(seen) {
        return Err(Fault::DelegationForbidden(Forbidden::Cycle {
            agent: text(&c.sub),
        }));
    }
    Ok(())
}

/// Rule 3: `c.depth <= p.depth - 1`; `c.exp <= p.exp`; every capability of `c` covered by one
/// of `p`; when `p.delegates` is present, `c.delegates` is present and each pattern is covered
/// by one of `p`'s [escalation].
pub(crate) fn does_not_escalate(p: &TokenClaims, c: &TokenClaims) -> Result<(), Fault> {
    if u16::from(c.depth) + 1 > u16::from(p.depth) {
        return Err(Fault::Escalation(Escalation::Depth {
            depth: c.depth,
            parent: p.depth,
        }));
    }
    if c.exp > p.exp {
        return Err(Fault::Escalation(Escalation::Expiry {
            exp: c.exp,
            parent: p.exp,
        }));
    }
    if let Some(wider) = c.caps.iter().find(|cap| !covered(&p.caps, cap)) {
        // Name the argument when a parent capability covers the action and resource.
        let gap = p
            .caps
            .iter()
            .filter(|pc| pc.patterns_cover(wider))
            .find_map(|pc| pc.argument_gap(wider));
        return Err(Fault::Escalation(match gap {
            Some(gap) => Escalation::Argument {
                capability: text(wider),
                detail: gap.to_string(),
            },
            None => Escalation::Capability {
                capability: text(wider),
            },
        }));
    }
    let Some(theirs) = &p.delegates else {
        return Ok(());
    };
    let Some(mine) = &c.delegates else {
        return Err(Fault::Escalation(Escalation::DelegatesDropped));
    };
    if let Some(wider) = mine.iter().find(|m| !theirs.iter().any(|t| t.covers(m))) {
        return Err(Fault::Escalation(Escalation::Delegate {
            pattern: text(wider),
        }));
    }
    Ok(())
}

fn covered(parent: &[Capability], cap: &Capability) -> bool {
    parent.iter().any(|p| p.covers(cap))
}

/// Rule 4: `c.task` is `p.task` [task_mismatch].
pub(crate) fn same_task(p: &TokenClaims, c: &TokenClaims) -> Result<(), Fault> {
    if c.task != p.task {
        return Err(Fault::TaskMismatch(TaskMismatch::Link {
            task: text(&c.task),
            parent: text(&p.task),
        }));
    }
    Ok(())
}

/// Every rule above that needs no key, clock or trust bundle, over a whole chain, root first:
/// the root is a root; each link follows its parent, is not self-delegated and narrows its
/// parent given every earlier link. On a fault, the index of the link that has it.
///
/// The builders run it over the chain they are given, so a chain the verifier would refuse
/// for these rules cannot be built; it checks no signature.
pub(crate) fn chain<L: ChainLink>(links: &[L]) -> Result<(), (usize, Fault)> {
    for (i, link) in links.iter().enumerate() {
        let c = link.link_claims();
        let at = |fault| (i, fault);
        let earlier = links.get(..i).unwrap_or_default();
        match earlier.last() {
            None => is_root(c).map_err(at)?,
            Some(parent) => follows(parent, c, link.link_kid()).map_err(at)?,
        }
        not_self_delegated(c).map_err(at)?;
        if let Some(parent) = earlier.last() {
            narrows(parent.link_claims(), c, earlier).map_err(at)?;
        }
    }
    Ok(())
}

// ------------------------------------------------------------- SPEC section 4: time claims

/// In force and not too long-lived (SPEC section 4, *time claims*; section 6 step 4):
/// `max(iat, nbf) - leeway <= now < exp + leeway` [not_yet_valid, expired], and
/// `exp - min(iat, nbf) <= max_ttl` [ttl_too_long].
pub(crate) fn in_force(
    (iat, nbf, exp): (UnixTime, UnixTime, UnixTime),
    max_ttl: Duration,
    leeway: Duration,
    now: UnixTime,
) -> Result<(), Fault> {
    // A credential cannot be issued in the future: a far-future `iat` with an early `nbf`
    // would otherwise be in force far longer than `exp - iat` says.
    if now < nbf.minus(leeway) || now < iat.minus(leeway) {
        return Err(Fault::NotYetValid {
            from: nbf.max(iat),
            now,
            leeway,
        });
    }
    if now >= exp.plus(leeway) {
        return Err(Fault::Expired { exp, now, leeway });
    }
    // Counted from the earlier of `iat` and `nbf`: the whole time the credential is in force.
    let lifetime = exp.since(iat.min(nbf));
    if lifetime > max_ttl.as_secs() {
        return Err(Fault::TtlTooLong {
            lifetime,
            max: max_ttl,
        });
    }
    Ok(())
}

// ---------------------------------------------------------- SPEC sections 5 and 6: envelope

fn last<L: ChainLink>(links: &[L]) -> Result<&TokenClaims, Fault> {
    links
        .last()
        .map(ChainLink::link_claims)
        .ok_or_else(|| Fault::malformed("empty chain"))
}

/// Section 5: the chain ends in a request (the last link's `sub` is the sender, and `kid` is
/// its `cnf.jkt`) or a delegation (the last link goes from the sender to the recipient, and
/// `kid` is the previous link's `cnf.jkt`, any key of the authority for a one-link chain)
/// [sender_mismatch]. `kid` is the envelope header's.
pub(crate) fn sender_binding<L: ChainLink>(
    links: &[L],
    sender: &AgentId,
    recipient: &AgentId,
    kid: &KeyId,
) -> Result<HandoffMode, Fault> {
    let last = last(links)?;
    let bound_to = |jkt: &KeyId| {
        if kid == jkt {
            return Ok(());
        }
        Err(Fault::SenderMismatch(SenderMismatch::Key {
            kid: text(kid),
            bound: text(jkt),
        }))
    };
    if &last.sub == sender {
        bound_to(&last.cnf.jkt)?;
        return Ok(HandoffMode::Request);
    }
    if &last.iss == sender && &last.sub == recipient {
        let previous = links.len().checked_sub(2).and_then(|i| links.get(i));
        if let Some(previous) = previous {
            bound_to(&previous.link_claims().cnf.jkt)?;
        }
        return Ok(HandoffMode::Delegation);
    }
    Err(Fault::SenderMismatch(SenderMismatch::NotBound {
        sender: text(sender),
        last_subject: text(&last.sub),
    }))
}

/// Section 5: the envelope's task is the chain's [task_mismatch].
pub(crate) fn chain_task<L: ChainLink>(task: &TaskId, links: &[L]) -> Result<(), Fault> {
    let root = links
        .first()
        .map(ChainLink::link_claims)
        .ok_or_else(|| Fault::malformed("empty chain"))?;
    if task != &root.task {
        return Err(Fault::TaskMismatch(TaskMismatch::Envelope {
            envelope: text(task),
            chain: text(&root.task),
        }));
    }
    Ok(())
}

/// Section 6 step 3: `aud` is the verifier's own id [wrong_audience].
pub(crate) fn addressed_to(aud: &AgentId, me: &AgentId) -> Result<(), Fault> {
    if aud != me {
        return Err(Fault::WrongAudience {
            claimed: text(aud),
            me: text(me),
        });
    }
    Ok(())
}

/// Section 6 step 4b: when a transport binding gives the route's required intent, the
/// envelope's action and resource are that intent's, byte for byte [intent_not_granted].
pub(crate) fn required_intent(intent: &Intent, required: Option<&Intent>) -> Result<(), Fault> {
    let Some(required) = required else {
        return Ok(());
    };
    if required.action() != intent.action() || required.resource() != intent.resource() {
        return Err(Fault::IntentNotRequired {
            claimed: text(intent),
            required: text(required),
        });
    }
    Ok(())
}

/// Section 6 step 6: the intent is covered by a capability of the chain's last link, its
/// arguments within that capability's limits [intent_not_granted].
pub(crate) fn intent_granted<L: ChainLink>(links: &[L], intent: &Intent) -> Result<(), Fault> {
    let caps = &last(links)?.caps;
    if !caps.iter().any(|cap| cap.allows(intent)) {
        // Explain the first capability whose action and resource match.
        let argument = caps
            .iter()
            .filter(|c| {
                c.action().matches(intent.action()) && c.resource().matches(intent.resource())
            })
            .find_map(|c| c.argument_failure(intent));
        return Err(Fault::IntentNotGranted {
            intent: text(intent),
            argument,
        });
    }
    Ok(())
}

/// Section 6 step 7: the payload's digest is the envelope's [payload_mismatch].
pub(crate) fn payload_matches(digest: &PayloadDigest, payload: &[u8]) -> Result<(), Fault> {
    if &PayloadDigest::of(payload) != digest {
        return Err(Fault::PayloadMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: UnixTime = UnixTime::from_secs(1_800_000_000);
    const LEEWAY: Duration = Duration::from_secs(5);
    const MAX: Duration = Duration::from_secs(600);

    fn at(offset: i64) -> UnixTime {
        UnixTime::from_secs(T.as_secs().saturating_add_signed(offset))
    }

    #[test]
    fn in_force_edges_are_the_spec_inequalities() {
        let window = (T, T, at(60));
        // max(iat, nbf) - leeway <= now < exp + leeway
        assert!(in_force(window, MAX, LEEWAY, at(-5)).is_ok());
        assert_eq!(
            in_force(window, MAX, LEEWAY, at(-6)),
            Err(Fault::NotYetValid {
                from: T,
                now: at(-6),
                leeway: LEEWAY
            })
        );
        assert!(in_force(window, MAX, LEEWAY, at(64)).is_ok());
        assert_eq!(
            in_force(window, MAX, LEEWAY, at(65)),
            Err(Fault::Expired {
                exp: at(60),
                now: at(65),
                leeway: LEEWAY
            })
        );
        // The lifetime counts from the earlier of `iat` and `nbf`.
        assert_eq!(
            in_force((T, at(-600), at(60)), MAX, LEEWAY, T),
            Err(Fault::TtlTooLong {
                lifetime: 660,
                max: MAX
            })
        );
        // An `iat` in the future is not yet valid, whatever `nbf` says.
        assert!(matches!(
            in_force((at(100), T, at(160)), MAX, LEEWAY, T),
            Err(Fault::NotYetValid { .. })
        ));
    }

    #[test]
    fn chain_length_is_inclusive() {
        assert!(chain_length(8, 8).is_ok());
        assert_eq!(
            chain_length(9, 8),
            Err(Fault::ChainTooLong { links: 9, max: 8 })
        );
    }
}
