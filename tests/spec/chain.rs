//! SPEC section 4: delegation chains. (Most chain rules are asserted with their reason codes in
//! `verify::reasons`.)

use crate::common::*;
use agent_handoff::error::{Fault, Forbidden, Location};
use agent_handoff::*;
use serde_json::json;

fn ctx() -> RequestContext {
    RequestContext::new()
}

#[test]
fn probe_cycle_back_to_the_root_issuer_only() {
    // orchestrator -> planner -> executor -> orchestrator: the last `sub` is only the `iss` of
    // an earlier link (never a `sub`), SPEC 4 rule 2 [delegation_forbidden].
    let w = World::new();
    let grant = w.grant();
    let sub = w.sub_grant(&grant);
    let c = w.token_claims(
        &w.executor,
        &w.orchestrator,
        Some(sub.as_str()),
        json!([{"action": "tickets.read", "resource": "project/alpha/*"}]),
        0,
    );
    let back = w.raw_token(&w.executor, &c);
    let env = w.raw_envelope(
        &w.executor,
        &w.envelope_claims(
            &w.executor,
            &w.orchestrator,
            &[grant.as_str(), sub.as_str(), &back],
        ),
    );
    let r = assert_reason(
        w.verifier(&w.orchestrator).verify(&env, PAYLOAD, &ctx()),
        Reason::DelegationForbidden,
    );
    assert_eq!(r.location(), Location::Link(2));
}

/// The rule the builder and the verifier once decided apart (the builder looked only at the
/// parent's issuer, the verifier at every earlier link) is one rule now: the chain of the probe
/// above cannot be built, and the verifier refuses it as a cycle.
#[test]
fn a_chain_the_verifier_refuses_as_a_cycle_cannot_be_built() {
    let w = World::new();
    let grant = w.grant();
    let sub = w.sub_grant(&grant);
    let back_to_the_root = |builder: TokenBuilder<'_>| {
        builder
            .delegate_to(&w.orchestrator.public())
            .allow("tickets.read", "project/alpha/*")
            .unwrap()
            .depth(0)
            .issued_at(w.now())
            .sign()
    };
    let cycle = format!(
        "`{}` already appears earlier in the chain (a cycle)",
        w.orchestrator.id()
    );

    // A token does not carry its ancestors: `attenuate` sees only the parent, and signs.
    let back = back_to_the_root(sub.attenuate(&w.executor.identity)).unwrap();
    // `seal` runs the rule book over the whole chain: a build error naming the cycle.
    let err = HandoffEnvelope::builder(&w.executor.identity)
        .to(w.orchestrator.id())
        .intent("tickets.read", "project/alpha/123")
        .unwrap()
        .payload(PAYLOAD)
        .chain([&grant, &sub, &back])
        .issued_at(w.now())
        .seal()
        .unwrap_err();
    assert!(matches!(err, Error::Build { .. }), "{err}");
    assert!(err.to_string().contains("link 2"), "{err}");
    assert!(err.to_string().contains(&cycle), "{err}");
    // `attenuate_chain` sees the whole chain: the token itself is refused.
    let chain = [grant.clone(), sub.clone()];
    let err = back_to_the_root(DelegationToken::attenuate_chain(
        &chain,
        &w.executor.identity,
    ))
    .unwrap_err();
    assert!(matches!(err, Error::Build { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!(
            "delegating back to `{}` would make a cycle",
            w.orchestrator.id()
        )),
        "{err}"
    );

    // The verifier refuses the hand-forged equivalent (the envelope signed by hand): the same
    // rule, the same fault.
    let env = w.raw_envelope(
        &w.executor,
        &w.envelope_claims(
            &w.executor,
            &w.orchestrator,
            &[grant.as_str(), sub.as_str(), back.as_str()],
        ),
    );
    let r = assert_reason(
        w.verifier(&w.orchestrator).verify(&env, PAYLOAD, &ctx()),
        Reason::DelegationForbidden,
    );
    assert_eq!(r.location(), Location::Link(2));
    assert!(
        matches!(r.fault(), Fault::DelegationForbidden(Forbidden::Cycle { agent }) if agent == w.orchestrator.id().as_str()),
        "{r}"
    );
    assert_eq!(r.detail(), cycle);
}

/// `attenuate_chain` signs what the verifier accepts, and refuses an empty chain or one that is
/// not a chain.
#[test]
fn attenuate_chain_checks_the_chain_it_is_given() {
    let w = World::new();
    let grant = w.grant();
    let sub = w.sub_grant(&grant);
    let chain = [grant.clone(), sub.clone()];
    let third = DelegationToken::attenuate_chain(&chain, &w.executor.identity)
        .delegate_to(&w.payments.public())
        .allow("tickets.read", "project/alpha/*")
        .unwrap()
        .issued_at(w.now())
        .sign()
        .unwrap();
    assert_eq!(third.claimed_parent(), Some(sub.hash()));
    assert_eq!(third.claimed_depth(), 0);
    let wire = HandoffEnvelope::builder(&w.executor.identity)
        .to(w.payments.id())
        .intent("tickets.read", "project/alpha/123")
        .unwrap()
        .payload(PAYLOAD)
        .chain([&grant, &sub, &third])
        .issued_at(w.now())
        .seal()
        .unwrap();
    let handoff = w
        .verifier(&w.payments)
        .verify(wire.as_str(), PAYLOAD, &ctx())
        .unwrap();
    assert_eq!(handoff.mode(), HandoffMode::Delegation);

    let empty = DelegationToken::attenuate_chain(&[], &w.executor.identity)
        .delegate_to(&w.payments.public())
        .allow("tickets.read", "project/alpha/*")
        .unwrap()
        .sign()
        .unwrap_err();
    assert!(empty.to_string().contains("it is empty"), "{empty}");
    // Out of order: the sub-grant is not a root.
    let reversed = [sub.clone(), grant.clone()];
    let err = DelegationToken::attenuate_chain(&reversed, &w.planner.identity)
        .delegate_to(&w.payments.public())
        .allow("tickets.read", "project/alpha/*")
        .unwrap()
        .sign()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("link 0: the root token has a `parent`"),
        "{err}"
    );
}

/// SPEC 6 step 5: no claim of a link is parsed before its signature verifies. A root that
/// claims the orchestrator but is signed by mallory, whose claims would also be malformed
/// (an unknown member, and a capability with a regex that does not compile), is refused for
/// its signature: the verifier never parsed (or compiled) the rest of its claims. Signed by
/// the orchestrator, the same claims are `malformed`.
#[test]
fn a_links_claims_are_parsed_only_after_its_signature_verifies() {
    let w = World::new();
    let mut claims = w.token_claims(
        &w.orchestrator,
        &w.planner,
        None,
        json!([{"action": "tickets.read", "resource": "project/alpha/*",
                "limits": {"q": {"regex": "(unclosed"}}}]),
        1,
    );
    claims["zzz"] = json!(1);
    let text = claims.to_string();
    let header = header(agent_handoff::wire::TYP_DELEGATION, w.orchestrator.kid());
    let forged = sign_raw(&w.mallory.seed, &header, &text);
    let signed = sign_raw(&w.orchestrator.seed, &header, &text);
    let verify = |root: &str| {
        let env = w.raw_envelope(
            &w.planner,
            &w.envelope_claims(&w.planner, &w.executor, &[root]),
        );
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx())
    };
    let r = assert_reason(verify(&forged), Reason::BadSignature);
    assert_eq!(r.location(), Location::Link(0));
    let r = assert_reason(verify(&signed), Reason::Malformed);
    assert_eq!(r.location(), Location::Link(0));
}
