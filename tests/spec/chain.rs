//! SPEC section 4: delegation chains. (Most chain rules are asserted with their reason codes in
//! `verify::reasons`.)

use crate::common::*;
use agent_handoff::error::Location;
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
