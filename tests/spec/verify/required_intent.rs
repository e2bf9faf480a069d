//! `VerifyRequest::required_intent` (the transport binding's route check, used by the HTTP layer):
//! exact action and resource, checked after the envelope signature and before the chain,
//! refused with `intent_not_granted`, audited, and without spending the envelope.

use crate::common::*;
use agent_handoff::audit::Verdict;
use agent_handoff::verify::VerifyRequest;
use agent_handoff::wire::TYP_HANDOFF;
use agent_handoff::*;
use serde_json::json;

fn route(action: &str, resource: &str) -> Intent {
    Intent::new(action, resource).unwrap()
}

/// Verifies on the endpoint that performs `route`.
fn verify_on(
    v: &HandoffVerifier,
    envelope: &str,
    payload: &[u8],
    route: &Intent,
) -> Result<VerifiedHandoff, Rejection> {
    v.verify_request(&VerifyRequest::new(envelope, payload).required_intent(route))
}

#[test]
fn the_required_intent_must_match_exactly() {
    let w = World::new();
    let v = w.verifier(&w.executor);
    let env = w.request(&[w.grant()]); // tickets.read on project/alpha/123
    for (action, resource) in [
        ("tickets.read", "project/alpha/124"),
        ("tickets.read", "project/alpha/12"),
        ("tickets.write", "project/alpha/123"),
        ("tickets.readx", "project/alpha/123"),
    ] {
        assert_reason(
            verify_on(&v, env.as_str(), PAYLOAD, &route(action, resource)),
            Reason::IntentNotGranted,
        );
        let record = w.audit.records().last().cloned().unwrap();
        assert_eq!(record.decision(), Verdict::Deny);
        assert_eq!(record.reason(), Some(Reason::IntentNotGranted));
    }
    // Not spent by the refusals: accepted once where it belongs, then replayed.
    let ctx = route("tickets.read", "project/alpha/123");
    verify_on(&v, env.as_str(), PAYLOAD, &ctx).unwrap();
    assert_reason(verify_on(&v, env.as_str(), PAYLOAD, &ctx), Reason::Replayed);
}

#[test]
fn arguments_are_left_to_the_chain_limits() {
    let w = World::new();
    let grant = w.grant();
    let sub = w.sub_grant(&grant);
    let v = w.verifier(&w.payments);
    let pay = |amount: i64| {
        HandoffEnvelope::builder(&w.executor.identity)
            .to(w.payments.id())
            .intent("payments.execute", "account/ops/9")
            .unwrap()
            .arg("amount", amount)
            .chain([&grant, &sub])
            .issued_at(w.now())
            .seal()
            .unwrap()
    };
    let ctx = route("payments.execute", "account/ops/9");
    verify_on(&v, pay(80).as_str(), b"", &ctx).unwrap();
    assert_reason(
        verify_on(&v, pay(800).as_str(), b"", &ctx),
        Reason::IntentNotGranted,
    );
}

#[test]
fn a_forged_envelope_on_the_wrong_route_is_a_bad_signature() {
    // The route is compared only with an intent the sender's signature covers.
    let w = World::new();
    let grant = w.grant();
    let mut claims = w.envelope_claims(&w.planner, &w.executor, &[grant.as_str()]);
    claims["intent"] = json!({"action": "tickets.write", "resource": "project/alpha/1"});
    let forged = w.raw_envelope(&w.mallory, &claims); // signed with mallory's key, planner's kid
    let forged = forged.replacen(
        &b64(header(TYP_HANDOFF, w.mallory.kid()).as_bytes()),
        &b64(header(TYP_HANDOFF, w.planner.kid()).as_bytes()),
        1,
    );
    assert_reason(
        verify_on(
            &w.verifier(&w.executor),
            &forged,
            PAYLOAD,
            &route("tickets.read", "project/alpha/123"),
        ),
        Reason::BadSignature,
    );
}

#[test]
fn the_route_is_checked_before_the_chain() {
    // A moved header costs one signature check: a chain fault behind it is not reached.
    let w = World::new();
    let grant = w.grant();
    let broken = w.raw_token(
        &w.planner,
        &w.token_claims(
            &w.planner,
            &w.executor,
            None,
            json!([{"action": "tickets.read", "resource": "project/alpha/*"}]),
            0,
        ),
    ); // no `parent`: broken_chain when the chain is checked
    let mut claims = w.envelope_claims(&w.executor, &w.payments, &[grant.as_str(), &broken]);
    claims["digest"] = json!(digest(b""));
    let env = w.raw_envelope(&w.executor, &claims);
    let v = w.verifier(&w.payments);
    assert_reason(
        verify_on(&v, &env, b"", &route("payments.execute", "account/ops/1")),
        Reason::IntentNotGranted,
    );
    assert_reason(
        verify_on(&v, &env, b"", &route("tickets.read", "project/alpha/123")),
        Reason::BrokenChain,
    );
}

#[test]
fn a_required_intent_must_itself_be_concrete() {
    assert!(Intent::new("tickets.*", "project/alpha/1").is_err());
    assert!(Intent::new("tickets.read", "project/*").is_err());
    assert!(VerifyRequest::new("", b"").required_intent.is_none());
}

#[test]
fn the_route_action_reaches_the_policy_only_by_whole_segments() {
    // A deny rule written for the route's action applies to the method-extended intent when
    // the binding names the route's action, and only then.
    let w = World::new();
    let policy: RulePolicy = r#"
version = "t1"

[[rule]]
name = "no-ticket-reads"
effect = "deny"
actions = ["tickets.read"]

[[rule]]
name = "tickets"
effect = "allow"
actions = ["tickets.*"]
"#
    .parse()
    .unwrap();
    let v = w
        .verifier_builder(&w.executor)
        .policy(policy)
        .build()
        .unwrap();
    let seal = || {
        HandoffEnvelope::builder(&w.planner.identity)
            .to(w.executor.id())
            .intent("tickets.read.post", "project/alpha/123")
            .unwrap()
            .payload(PAYLOAD)
            .chain([w.grant()])
            .issued_at(w.now())
            .seal()
            .unwrap()
    };
    let required = route("tickets.read.post", "project/alpha/123");
    let on_route = |env: &HandoffEnvelope, route_action: &str| {
        v.verify_request(
            &VerifyRequest::new(env.as_str(), PAYLOAD)
                .required_intent(&required)
                .route_action(route_action),
        )
    };
    assert_reason(on_route(&seal(), "tickets.read"), Reason::PolicyDenied);
    assert_eq!(
        w.audit.records().last().unwrap().policy(),
        Some("no-ticket-reads")
    );
    // Not a whole-segment prefix of the intent's action: ignored, the allow rule decides.
    on_route(&seal(), "tickets.rea").unwrap();
    // No route action: the intent's own action only.
    verify_on(&v, seal().as_str(), PAYLOAD, &required).unwrap();
}
