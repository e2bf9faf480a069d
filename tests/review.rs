//! Independent security review: edge cases of SPEC sections 1 to 8, each asserting the exact
//! reason code (or acceptance) the SPEC requires.

mod common;

use agent_handoff::error::{Fault, Forbidden, Location};
use agent_handoff::grant::check_resource;
use agent_handoff::grant::exact_number;
use agent_handoff::store::Freshness;
use agent_handoff::store::ReplayCache;
use agent_handoff::wire::TYP_DELEGATION;
use agent_handoff::wire::TYP_HANDOFF;
use agent_handoff::*;
use common::*;
use serde_json::json;

fn ctx() -> RequestContext {
    RequestContext::new()
}

/// Signs hand-written envelope claims text as the planner and verifies it at the executor.
fn verify_envelope_text(w: &World, claims: &str) -> Result<VerifiedHandoff, Rejection> {
    let env = sign_raw(
        &w.planner.seed,
        &header(TYP_HANDOFF, w.planner.kid()),
        claims,
    );
    w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx())
}

// ------------------------------------------------------------- JSON edge cases (SPEC 1)

#[test]
fn probe_json_edge_cases_in_envelope_claims_are_malformed() {
    let w = World::new();
    let grant = w.grant();
    let base = w
        .envelope_claims(&w.planner, &w.executor, &[grant.as_str()])
        .to_string();
    let iat = format!("\"iat\":{T0}");
    let variants = [
        ("utf-8 bom", format!("\u{feff}{base}")),
        (
            "escaped duplicate member",
            base.replacen(
                '{',
                "{\"i\\u0073s\":\"spiffe://acme.example/agents/planner\",",
                1,
            ),
        ),
        ("exponent date", base.replace(&iat, "\"iat\":18E8")),
        ("negative zero date", base.replace(&iat, "\"iat\":-0")),
        (
            "fraction date",
            base.replace(&iat, &format!("\"iat\":{T0}.0")),
        ),
        ("huge exponent", base.replace(&iat, "\"iat\":1e999999")),
        (
            "lone surrogate",
            base.replace("\"intent\":{", "\"intent\":{\"args\":{\"x\":\"\\ud800\"},"),
        ),
        (
            "deep nesting",
            base.replace(
                "\"intent\":{",
                &format!(
                    "\"intent\":{{\"args\":{{\"x\":{}1{}}},",
                    "[".repeat(200),
                    "]".repeat(200)
                ),
            ),
        ),
        ("trailing garbage", format!("{base} x")),
    ];
    for (name, claims) in variants {
        let r = verify_envelope_text(&w, &claims);
        assert!(
            matches!(&r, Err(e) if e.reason() == Reason::Malformed),
            "{name}: {r:?}"
        );
    }
    // Sanity: the unmodified text is accepted.
    verify_envelope_text(&w, &base).unwrap();
}

#[test]
fn probe_header_member_types() {
    let w = World::new();
    let grant = w.grant();
    let claims = w
        .envelope_claims(&w.planner, &w.executor, &[grant.as_str()])
        .to_string();
    let kid = w.planner.kid();
    let cases = [
        (
            format!(r#"{{"alg":"EdDSA","typ":"{TYP_HANDOFF}","kid":5}}"#),
            Reason::Malformed,
        ),
        (
            format!(r#"{{"alg":["EdDSA"],"typ":"{TYP_HANDOFF}","kid":"{kid}"}}"#),
            Reason::Malformed,
        ),
        (
            format!(r#"{{"alg":"EdDSA","typ":"{TYP_HANDOFF}","k\u0069d":"{kid}","kid":"{kid}"}}"#),
            Reason::Malformed,
        ),
        (
            format!(r#"{{"alg":"EdDSA","typ":"{TYP_HANDOFF}","kid":"{kid}","crit":["b64"]}}"#),
            Reason::ForbiddenHeader,
        ),
        (
            format!(r#"{{"alg":"eddsa","typ":"{TYP_HANDOFF}","kid":"{kid}"}}"#),
            Reason::UnsupportedAlgorithm,
        ),
        (
            format!(r#"{{"alg":"EdDSA","typ":"application/{TYP_HANDOFF}","kid":"{kid}"}}"#),
            Reason::WrongType,
        ),
        (
            format!("\u{feff}{{\"alg\":\"EdDSA\",\"typ\":\"{TYP_HANDOFF}\",\"kid\":\"{kid}\"}}"),
            Reason::Malformed,
        ),
    ];
    for (h, reason) in cases {
        let env = sign_raw(&w.planner.seed, &h, &claims);
        let r = w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx());
        assert!(matches!(&r, Err(e) if e.reason() == reason), "{h}: {r:?}");
    }
}

#[test]
fn probe_ext_with_lone_surrogate_or_duplicates_is_malformed() {
    let w = World::new();
    let caps = json!([{"action": "tickets.read", "resource": "project/alpha/*"}]);
    let base = w.token_claims(&w.orchestrator, &w.planner, None, caps, 0);
    for ext in [r#"{"a":"\ud800"}"#, r#"{"a":1,"\u0061":2}"#] {
        let mut text = base.to_string();
        text.insert_str(text.len() - 1, &format!(",\"ext\":{ext}"));
        let token = sign_raw(
            &w.orchestrator.seed,
            &header(TYP_DELEGATION, w.orchestrator.kid()),
            &text,
        );
        let env = w.raw_envelope(
            &w.planner,
            &w.envelope_claims(&w.planner, &w.executor, &[&token]),
        );
        let r = w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx());
        assert!(
            matches!(&r, Err(e) if e.reason() == Reason::Malformed && e.location() == Location::Link(0)),
            "{ext}: {r:?}"
        );
    }
}

#[test]
fn probe_revoked_agent_appearing_only_as_subject() {
    let w = World::new();
    let grant = w.grant();
    let sub = w.sub_grant(&grant);
    let env = HandoffEnvelope::builder(&w.planner.identity)
        .to(w.executor.id())
        .intent("tickets.read", "project/alpha/7")
        .unwrap()
        .payload(PAYLOAD)
        .chain([&grant, &sub])
        .issued_at(w.now())
        .seal()
        .unwrap();
    w.revocations.revoke_agent(w.executor.id()).unwrap();
    assert_reason(
        w.verifier(&w.executor)
            .verify(env.as_str(), PAYLOAD, &ctx()),
        Reason::Revoked,
    );
}

#[test]
fn probe_deny_audit_keeps_claims_under_claimed() {
    let w = World::new();
    let grant = w.grant();
    let mut c = w.envelope_claims(&w.planner, &w.executor, &[grant.as_str()]);
    c["intent"]["resource"] = json!("elsewhere/1");
    let env = w.raw_envelope(&w.planner, &c);
    assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::IntentNotGranted,
    );
    let records = w.audit.records();
    let rec: serde_json::Value = serde_json::from_str(&records[0].to_json()).unwrap();
    assert_eq!(rec["decision"], "deny");
    assert_eq!(rec["reason"], "intent_not_granted");
    for verified in ["sender", "task", "intent", "chain", "scope", "envelope"] {
        assert!(
            rec.get(verified).is_none(),
            "`{verified}` outside `claimed`: {rec}"
        );
    }
    assert_eq!(rec["claimed"]["sender"], w.planner.id().as_str());
    assert!(records[0].verified_sender().is_none());
    let text = records[0].to_json();
    assert!(!text.contains("ticket\":123"), "payload bytes in audit");
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

/// A rejection carries a typed fault with the values that show it; its reason and its detail
/// are derived from the fault.
#[test]
fn rejections_carry_typed_faults() {
    let w = World::new();
    let grant = w.grant();
    let wire = w.request(&[grant]);
    // Addressed to the executor, verified by the payments tool.
    let r = assert_reason(
        w.verifier(&w.payments)
            .verify(wire.as_str(), PAYLOAD, &ctx()),
        Reason::WrongAudience,
    );
    assert_eq!(
        r.fault(),
        &Fault::WrongAudience {
            claimed: w.executor.id().to_string(),
            me: w.payments.id().to_string(),
        }
    );
    assert_eq!(r.location(), Location::Envelope);
    assert_eq!(r.fault().reason(), r.reason());
    assert_eq!(r.detail(), r.fault().to_string());
    // Verified 61 s after the envelope expired (its lifetime is 60 s, the leeway 5 s).
    let late = w
        .verifier_builder(&w.executor)
        .clock(agent_handoff::clock::FixedClock::new(
            w.now().plus(std::time::Duration::from_secs(121)),
        ))
        .build()
        .unwrap();
    let r = assert_reason(late.verify(wire.as_str(), PAYLOAD, &ctx()), Reason::Expired);
    let Fault::Expired { exp, now, leeway } = r.fault() else {
        panic!("not an expiry: {r:?}");
    };
    assert_eq!(*exp, wire.claimed_expiry());
    assert_eq!(now.as_secs(), w.now().as_secs() + 121);
    assert_eq!(leeway.as_secs(), 5);
    // A transport binding's own refusal keeps its reason and shows its text escaped.
    let r = Rejection::new(Reason::Timeout, Location::Envelope, "slow\u{1b}");
    assert_eq!(r.reason(), Reason::Timeout);
    assert_eq!(r.detail(), r"slow\u{1b}");
    assert!(matches!(
        r.fault(),
        Fault::Binding {
            reason: Reason::Timeout,
            ..
        }
    ));
}

// ------------------------------------------------------- numbers in limits (SPEC 3)

/// A root token for the planner whose only capability is `payments.execute` with the given
/// `amount` limit JSON text, and an envelope whose intent carries `amount` as the given text.
fn payment_with(w: &World, max: &str, amount: &str) -> String {
    let caps = json!([{"action": "payments.execute", "resource": "account/ops/*",
                        "limits": {"amount": {"max": 0}}}]);
    let claims = w.token_claims(&w.orchestrator, &w.planner, None, caps, 0);
    let text = claims
        .to_string()
        .replace(r#"{"max":0}"#, &format!(r#"{{"max":{max}}}"#));
    let root = sign_raw(
        &w.orchestrator.seed,
        &header(TYP_DELEGATION, w.orchestrator.kid()),
        &text,
    );
    let mut env = w.envelope_claims(&w.planner, &w.executor, &[&root]);
    env["intent"] = json!({"action": "payments.execute", "resource": "account/ops/1",
                           "args": {"amount": 0}});
    let text = env
        .to_string()
        .replace(r#""amount":0"#, &format!(r#""amount":{amount}"#));
    sign_raw(
        &w.planner.seed,
        &header(TYP_HANDOFF, w.planner.kid()),
        &text,
    )
}

#[test]
fn limit_max_compares_an_integer_argument_with_a_float_max_exactly() {
    // SPEC 3: a limit is satisfied by a number `<= max`. 10^18 + 1 is not `<= 1e18`, although
    // both round to the same f64.
    let w = World::new();
    // A fresh verifier (and replay cache) per envelope: they share one `jti`.
    let v = || w.verifier(&w.executor);
    let over = payment_with(&w, "1e18", "1000000000000000001");
    assert_reason(v().verify(&over, PAYLOAD, &ctx()), Reason::IntentNotGranted);
    let over = payment_with(&w, "9007199254740992.0", "9007199254740993");
    assert_reason(v().verify(&over, PAYLOAD, &ctx()), Reason::IntentNotGranted);
    let under = payment_with(&w, "-1e18", "-1000000000000000001");
    assert!(v().verify(&under, PAYLOAD, &ctx()).is_ok());
    let equal = payment_with(&w, "1e18", "1000000000000000000");
    assert!(v().verify(&equal, PAYLOAD, &ctx()).is_ok());
    let fraction = payment_with(&w, "100", "100.5");
    assert_reason(
        v().verify(&fraction, PAYLOAD, &ctx()),
        Reason::IntentNotGranted,
    );
    let fraction = payment_with(&w, "100.5", "100");
    assert!(v().verify(&fraction, PAYLOAD, &ctx()).is_ok());
}

#[test]
fn limit_max_of_a_child_is_compared_with_a_float_parent_max_exactly() {
    // SPEC 4 rule 3 / SPEC 3: a child's `max` must be no larger than its parent's. A child max
    // of 10^18 + 1 under a parent max of 1e18 is an escalation.
    let w = World::new();
    let caps = json!([{"action": "payments.execute", "resource": "account/ops/*",
                        "limits": {"amount": {"max": 0}}}]);
    let root_text = w
        .token_claims(&w.orchestrator, &w.planner, None, caps.clone(), 1)
        .to_string()
        .replace(r#"{"max":0}"#, r#"{"max":1e18}"#);
    let root = sign_raw(
        &w.orchestrator.seed,
        &header(TYP_DELEGATION, w.orchestrator.kid()),
        &root_text,
    );
    let child_text = w
        .token_claims(&w.planner, &w.executor, Some(&root), caps, 0)
        .to_string()
        .replace(r#"{"max":0}"#, r#"{"max":1000000000000000001}"#);
    let child = sign_raw(
        &w.planner.seed,
        &header(TYP_DELEGATION, w.planner.kid()),
        &child_text,
    );
    let mut env = w.envelope_claims(&w.executor, &w.payments, &[&root, &child]);
    env["intent"] = json!({"action": "payments.execute", "resource": "account/ops/1",
                           "args": {"amount": 1}});
    let env = w.raw_envelope(&w.executor, &env);
    let r = assert_reason(
        w.verifier(&w.payments).verify(&env, PAYLOAD, &ctx()),
        Reason::Escalation,
    );
    assert_eq!(r.location(), Location::Link(1));
}

// ------------------------------------------------------------- replay cache (SPEC 6.10)

#[test]
fn replay_cache_sweeps_entries_that_expire_before_the_last_sweep_horizon() {
    // A full shard whose live entries expired must make room, not answer `unavailable`: an
    // entry recorded after a sweep can expire before the earliest entry that sweep kept.
    use sha2::Digest as _;
    let shard_of = |id: &TokenId| {
        let d = sha2::Sha256::digest(id.as_str().as_bytes());
        let mut first = [0u8; 16];
        first.copy_from_slice(&d[..16]);
        (u128::from_le_bytes(first) % 16) as usize
    };
    // Five ids in one shard.
    let target = shard_of(&"envelope-id-00000000".parse().unwrap());
    let ids: Vec<TokenId> = (0..10_000)
        .map(|n| format!("envelope-id-{n:08}").parse::<TokenId>().unwrap())
        .filter(|id| shard_of(id) == target)
        .take(4)
        .collect();
    assert_eq!(ids.len(), 4);
    let cache = MemoryReplayCache::new(32); // 2 entries per shard
    let t = UnixTime::from_secs;
    assert_eq!(
        cache.check_and_insert(&ids[0], t(1100), t(1000)).unwrap(),
        Freshness::Fresh
    );
    assert_eq!(
        cache.check_and_insert(&ids[1], t(5000), t(1000)).unwrap(),
        Freshness::Fresh
    );
    // Full: the sweep drops ids[0] and keeps ids[1] (until 5000).
    assert_eq!(
        cache.check_and_insert(&ids[2], t(1300), t(1200)).unwrap(),
        Freshness::Fresh
    );
    // Full again, but ids[2] expired at 1300: there is room.
    assert_eq!(
        cache.check_and_insert(&ids[3], t(1500), t(1400)),
        Ok(Freshness::Fresh)
    );
    // ids[1] is still remembered.
    assert_eq!(
        cache.check_and_insert(&ids[1], t(5000), t(1400)).unwrap(),
        Freshness::Replayed
    );
}

#[test]
fn probe_invalid_utf8_leading_zeros_and_the_envelope_as_its_own_chain() {
    use ed25519_dalek::{Signer as _, SigningKey};
    let w = World::new();
    let grant = w.grant();
    let base = w
        .envelope_claims(&w.planner, &w.executor, &[grant.as_str()])
        .to_string();
    // Invalid UTF-8 inside a string (SPEC 1: JSON is UTF-8) [malformed].
    let mut bytes = base.clone().into_bytes();
    let at = base.find("tickets.read").unwrap();
    bytes[at] = 0xff;
    let input = format!(
        "{}.{}",
        b64(header(TYP_HANDOFF, w.planner.kid()).as_bytes()),
        b64(&bytes)
    );
    let sig = SigningKey::from_bytes(&w.planner.seed).sign(input.as_bytes());
    let env = format!("{input}.{}", b64(&sig.to_bytes()));
    assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::Malformed,
    );
    // A NumericDate with a leading zero is not JSON [malformed].
    let r = verify_envelope_text(
        &w,
        &base.replace(&format!("\"iat\":{T0}"), &format!("\"iat\":0{T0}")),
    );
    assert_reason(r, Reason::Malformed);
    // The envelope carried as its own chain link is not a delegation token [wrong_type].
    let sealed = w.request(std::slice::from_ref(&grant));
    let c = w.envelope_claims(&w.planner, &w.executor, &[sealed.as_str()]);
    let r = assert_reason(
        w.verifier(&w.executor)
            .verify(&w.raw_envelope(&w.planner, &c), PAYLOAD, &ctx()),
        Reason::WrongType,
    );
    assert_eq!(r.location(), Location::Link(0));
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

// ------------------------------------------- canonical resources (SPEC 3, issue #12 item 8)

/// Resources that are not canonical paths (or not resources at all), each with why.
const NON_CANONICAL: &[(&str, &str)] = &[
    ("dot-dot segment", "project/alpha/../beta"),
    ("percent-encoded dot-dot", "project/alpha/%2e%2e/beta"),
    ("empty segment", "project/alpha//x"),
    ("dot segment", "./x"),
    ("trailing slash", "project/alpha/"),
    ("leading slash", "/project/alpha/1"),
    ("star inside", "a/*/b"),
    ("star in a segment", "project/al*"),
    ("control character", "project/alpha/\u{1}"),
    ("backslash", "project/alpha\\..\\beta"),
];

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
fn non_canonical_capability_resources_are_refused_by_the_builder_and_the_verifier() {
    let w = World::new();
    let mut patterns: Vec<(&str, String)> = NON_CANONICAL
        .iter()
        .map(|(n, r)| (*n, (*r).to_owned()))
        .collect();
    patterns.push(("dot-dot before the star", "project/alpha/../*".to_owned()));
    patterns.push(("star after an empty segment", "project//*".to_owned()));
    patterns.push(("star glued to a segment", "project/alpha*".to_owned()));
    for (name, resource) in &patterns {
        assert!(
            matches!(
                Capability::new("tickets.read", resource),
                Err(Error::InvalidCapability(_))
            ),
            "{name}"
        );
        let caps = json!([{"action": "tickets.read", "resource": resource}]);
        let root = w.raw_token(
            &w.orchestrator,
            &w.token_claims(&w.orchestrator, &w.planner, None, caps, 0),
        );
        let env = w.raw_envelope(
            &w.planner,
            &w.envelope_claims(&w.planner, &w.executor, &[&root]),
        );
        let r = assert_reason(
            w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
            Reason::Malformed,
        );
        assert_eq!(r.location(), Location::Link(0), "{name}");
    }
}

#[test]
fn resource_patterns_cover_by_whole_segments() {
    let w = World::new();
    // A hand-signed root for `project/alpha/*`, and an intent per resource.
    let caps = json!([{"action": "tickets.read", "resource": "project/alpha/*"}]);
    let root = w.raw_token(
        &w.orchestrator,
        &w.token_claims(&w.orchestrator, &w.planner, None, caps, 0),
    );
    for (resource, allowed) in [
        ("project/alpha/x", true),
        ("project/alpha/x/y", true),
        ("project/alpha", false),
        ("project/alphabet", false),
        ("project/alphabet/x", false),
        ("project/beta", false),
    ] {
        let mut claims = w.envelope_claims(&w.planner, &w.executor, &[&root]);
        claims["intent"]["resource"] = json!(resource);
        let got =
            w.verifier(&w.executor)
                .verify(&w.raw_envelope(&w.planner, &claims), PAYLOAD, &ctx());
        if allowed {
            got.unwrap_or_else(|e| panic!("{resource}: {e}"));
        } else {
            assert_reason(got, Reason::IntentNotGranted);
        }
    }
    // Delegation: `P/*` covers `Q/*` and `Q` only at or below P, by segments.
    let grant = w.grant();
    for (child, ok) in [
        ("project/alpha/*", true),
        ("project/alpha/x/*", true),
        ("project/alpha/x", true),
        ("project/alpha", false),
        ("project/alphabet/*", false),
        ("project/*", false),
        ("*", false),
    ] {
        let built = grant
            .attenuate(&w.planner.identity)
            .delegate_to(&w.executor.public())
            .allow("tickets.read", child)
            .map(|b| b.issued_at(w.now()).sign());
        assert_eq!(
            matches!(built, Ok(Ok(_))),
            ok,
            "project/alpha/* covers {child}: {built:?}"
        );
    }
}

// --------------------------------------------- exact numbers (SPEC 3, issue #12 item 3)

#[test]
fn argument_numbers_must_denote_exactly_their_value_at_the_verifier() {
    // Before: `500.0000000000000001` was read as `500.0` and passed `max 500`.
    let w = World::new();
    let v = || w.verifier(&w.executor);
    for (amount, expected) in [
        ("500.0000000000000001", Some(Reason::Malformed)),
        ("499.99999999999999999", Some(Reason::Malformed)),
        ("500.00000000000000001e0", Some(Reason::Malformed)),
        ("1e400", Some(Reason::Malformed)),
        ("1e308", Some(Reason::IntentNotGranted)),
        ("0.1", None),
        ("499.99", None),
        ("500.01", Some(Reason::IntentNotGranted)),
        ("-0.0", None),
        ("-0", None),
        ("500.0", None),
        ("5e2", None),
        ("499.5", None),
        ("500.5", Some(Reason::IntentNotGranted)),
        ("9007199254740993", Some(Reason::IntentNotGranted)),
    ] {
        let env = payment_with(&w, "500", amount);
        match expected {
            None => {
                v().verify(&env, PAYLOAD, &ctx())
                    .unwrap_or_else(|e| panic!("{amount}: {e}"));
            }
            Some(reason) => {
                let r = assert_reason(v().verify(&env, PAYLOAD, &ctx()), reason);
                if reason == Reason::Malformed {
                    assert_eq!(r.location(), Location::Envelope, "{amount}");
                }
            }
        }
    }
    // 2^53 + 1 is an integer, kept exactly: above a float max of 2^53, within a max of itself.
    let over = payment_with(&w, "9007199254740992.0", "9007199254740993");
    assert_reason(v().verify(&over, PAYLOAD, &ctx()), Reason::IntentNotGranted);
    let at = payment_with(&w, "9007199254740993", "9007199254740993");
    v().verify(&at, PAYLOAD, &ctx()).unwrap();
    // Nested numbers in arguments follow the same rule.
    let mut claims = w.envelope_claims(&w.planner, &w.executor, &[w.grant().as_str()]);
    claims["intent"]["args"] = json!({"nested": [0]});
    let text = claims
        .to_string()
        .replace(r#""nested":[0]"#, r#""nested":[{"x":0.10000000000000001}]"#);
    assert_reason(verify_envelope_text(&w, &text), Reason::Malformed);
}

#[test]
fn limit_numbers_must_denote_exactly_their_value_at_the_verifier() {
    let w = World::new();
    let v = || w.verifier(&w.executor);
    for max in [
        "500.0000000000000001",
        "499.99999999999999999",
        "1e309",
        "0.10000000000000001",
        "9007199254740993.0",
    ] {
        let env = payment_with(&w, max, "1");
        let r = assert_reason(v().verify(&env, PAYLOAD, &ctx()), Reason::Malformed);
        assert_eq!(r.location(), Location::Link(0), "max {max}");
    }
    // -0.0 is exactly zero: 0 and -0.0 are within it, 1 is not.
    v().verify(&payment_with(&w, "-0.0", "0"), PAYLOAD, &ctx())
        .unwrap();
    v().verify(&payment_with(&w, "-0.0", "-0.0"), PAYLOAD, &ctx())
        .unwrap();
    assert_reason(
        v().verify(&payment_with(&w, "-0.0", "1"), PAYLOAD, &ctx()),
        Reason::IntentNotGranted,
    );
    // A decimal max is compared by its decimal value, exactly.
    v().verify(&payment_with(&w, "19.99", "19.99"), PAYLOAD, &ctx())
        .unwrap();
    v().verify(&payment_with(&w, "0.1", "0.1"), PAYLOAD, &ctx())
        .unwrap();
    assert_reason(
        v().verify(&payment_with(&w, "19.99", "20"), PAYLOAD, &ctx()),
        Reason::IntentNotGranted,
    );
    assert_reason(
        v().verify(&payment_with(&w, "19.99", "19.991"), PAYLOAD, &ctx()),
        Reason::IntentNotGranted,
    );
    // A large decimal max compares with integers by its decimal value: 9.223372036854776e18
    // reads as the double 2^63, but an integer just above the decimal is above the limit.
    v().verify(
        &payment_with(&w, "9.223372036854776e18", "9223372036854776000"),
        PAYLOAD,
        &ctx(),
    )
    .unwrap();
    assert_reason(
        v().verify(
            &payment_with(&w, "9.223372036854776e18", "9223372036854776001"),
            PAYLOAD,
            &ctx(),
        ),
        Reason::IntentNotGranted,
    );
    // A float max that is exactly a double is compared exactly with integers.
    v().verify(
        &payment_with(&w, "9007199254740993", "9007199254740992.0"),
        PAYLOAD,
        &ctx(),
    )
    .unwrap();
    assert_reason(
        v().verify(
            &payment_with(&w, "9007199254740993", "9007199254740994"),
            PAYLOAD,
            &ctx(),
        ),
        Reason::IntentNotGranted,
    );
}

#[test]
fn builders_read_numbers_exactly_from_their_text() {
    let w = World::new();
    let f = |x: f64| serde_json::Number::from_f64(x).unwrap();
    // Text: the edges of issue #12 item 3, as a CLI or a JSON producer would write them.
    for (text, ok) in [
        ("500.0000000000000001", false),
        ("499.99999999999999999", false),
        ("1e400", false),
        ("0.10000000000000001", false),
        ("1e308", true),
        ("0.1", true),
        ("19.99", true),
        ("-0.0", true),
        ("9007199254740993", true),
        ("500", true),
    ] {
        assert_eq!(exact_number(text).is_ok(), ok, "{text}");
        if !ok {
            assert!(matches!(
                exact_number(text),
                Err(Error::InvalidCapability(_))
            ));
        }
        let intent = format!(
            r#"{{"action":"payments.execute","resource":"account/ops/1","args":{{"amount":{text}}}}}"#
        );
        assert_eq!(
            serde_json::from_str::<Intent>(&intent).is_ok(),
            ok,
            "{text}"
        );
        let cap = format!(
            r#"{{"action":"payments.execute","resource":"account/ops/*","limits":{{"amount":{{"max":{text}}}}}}}"#
        );
        assert_eq!(
            serde_json::from_str::<Capability>(&cap).is_ok(),
            ok,
            "{text}"
        );
    }
    // Values: every finite double is written as the decimal it is compared as, so the typed
    // builders accept it; the verifier then compares that decimal.
    assert!(Capability::new("payments.execute", "account/ops/*")
        .unwrap()
        .max("amount", f(1e308))
        .is_ok());
    let seal = |value: ArgValue| {
        HandoffEnvelope::builder(&w.planner.identity)
            .to(w.executor.id())
            .intent("payments.execute", "account/ops/1")
            .unwrap()
            .arg("amount", value)
            .chain([w.grant()])
            .issued_at(w.now())
            .seal()
    };
    assert_reason(
        w.verifier(&w.executor).verify(
            seal(ArgValue::Number(f(1e308))).unwrap().as_str(),
            &[],
            &ctx(),
        ),
        Reason::IntentNotGranted,
    );
    assert!(seal(ArgValue::List(vec![ArgValue::Number(f(0.1))])).is_ok());
    // Exact values seal and verify: -0.0 is zero; 2^53 + 1 stays an integer and is above a
    // max of 500 without rounding.
    let ok = seal(ArgValue::Number(f(-0.0))).unwrap();
    w.verifier(&w.executor)
        .verify(ok.as_str(), &[], &ctx())
        .unwrap();
    let big = seal(ArgValue::from(9_007_199_254_740_993u64)).unwrap();
    assert_reason(
        w.verifier(&w.executor).verify(big.as_str(), &[], &ctx()),
        Reason::IntentNotGranted,
    );
}
