//! Independent security review: edge cases of SPEC sections 1 to 8, each asserting the exact
//! reason code (or acceptance) the SPEC requires.

mod common;

use agent_handoff::*;
use common::*;
use serde_json::json;

fn ctx() -> Context {
    Context::new()
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
