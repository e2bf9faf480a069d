//! SPEC section 5: handoff envelopes. Canonical intent resources, and the time window's edges.

use crate::capabilities::NON_CANONICAL;
use crate::common::*;
use agent_handoff::error::Location;
use agent_handoff::grant::check_resource;
use agent_handoff::*;
use serde_json::json;

fn ctx() -> RequestContext {
    RequestContext::new()
}

#[test]
fn non_canonical_intent_resources_are_refused_by_the_builder() {
    let w = World::new();
    let grant = w.grant();
    for (name, resource) in NON_CANONICAL {
        assert!(
            matches!(
                Intent::new("tickets.read", resource),
                Err(Error::InvalidCapability(_))
            ),
            "{name}"
        );
        assert!(
            matches!(check_resource(resource), Err(Error::InvalidCapability(_))),
            "{name}"
        );
        let built = HandoffEnvelope::builder(&w.planner.identity)
            .to(w.executor.id())
            .intent("tickets.read", resource)
            .map(|b| b.chain([&grant]).issued_at(w.now()).seal());
        assert!(
            matches!(built, Err(Error::InvalidCapability(_))),
            "{name}: {built:?}"
        );
    }
}

#[test]
fn non_canonical_intent_resources_are_malformed_at_the_verifier() {
    // The grant allows `tickets.*` on `project/alpha/*`: before resources were canonical,
    // `project/alpha/../beta` and its percent-encoded form were allowed.
    let w = World::new();
    let grant = w.grant();
    for (name, resource) in NON_CANONICAL {
        let mut claims = w.envelope_claims(&w.planner, &w.executor, &[grant.as_str()]);
        claims["intent"]["resource"] = json!(resource);
        let r = assert_reason(
            verify_envelope_text(&w, &claims.to_string()),
            Reason::Malformed,
        );
        assert_eq!(r.location(), Location::Envelope, "{name}");
    }
    // Sanity: a canonical resource below the grant is accepted.
    let mut claims = w.envelope_claims(&w.planner, &w.executor, &[grant.as_str()]);
    claims["intent"]["resource"] = json!("project/alpha/x/y");
    verify_envelope_text(&w, &claims.to_string()).unwrap();
}

#[test]
fn probe_time_window_edges() {
    let w = World::new();
    let grant = w.grant();
    let base = w.envelope_claims(&w.planner, &w.executor, &[grant.as_str()]);
    let v = || w.verifier(&w.executor);
    // now == exp + leeway - 1: in force; now == exp + leeway: expired.
    let mut c = base.clone();
    c["iat"] = json!(T0 - 64);
    c["exp"] = json!(T0 - 4);
    assert!(v()
        .verify(&w.raw_envelope(&w.planner, &c), PAYLOAD, &ctx())
        .is_ok());
    c["exp"] = json!(T0 - 5);
    assert_reason(
        v().verify(&w.raw_envelope(&w.planner, &c), PAYLOAD, &ctx()),
        Reason::Expired,
    );
    // iat == now + leeway: in force; one more second: not yet valid.
    let mut c = base.clone();
    c["iat"] = json!(T0 + 5);
    c["exp"] = json!(T0 + 65);
    assert!(v()
        .verify(&w.raw_envelope(&w.planner, &c), PAYLOAD, &ctx())
        .is_ok());
    c["iat"] = json!(T0 + 6);
    assert_reason(
        v().verify(&w.raw_envelope(&w.planner, &c), PAYLOAD, &ctx()),
        Reason::NotYetValid,
    );
    // Dates at 2^53 - 1 neither panic nor pass.
    let mut c = base.clone();
    c["iat"] = json!((1u64 << 53) - 2);
    c["exp"] = json!((1u64 << 53) - 1);
    assert_reason(
        v().verify(&w.raw_envelope(&w.planner, &c), PAYLOAD, &ctx()),
        Reason::NotYetValid,
    );
    let mut c = base.clone();
    c["iat"] = json!(0);
    c["exp"] = json!((1u64 << 53) - 1);
    assert_reason(
        v().verify(&w.raw_envelope(&w.planner, &c), PAYLOAD, &ctx()),
        Reason::TtlTooLong,
    );
}
