//! SPEC sections 1 and 2: strict JSON (UTF-8, no duplicate members, exact numbers, known
//! members only), header member types, and inputs that once panicked (found by fuzzing). Each
//! asserts the exact reason code.

use crate::common::*;
use agent_handoff::error::Location;
use agent_handoff::wire::TYP_DELEGATION;
use agent_handoff::wire::TYP_HANDOFF;
use agent_handoff::*;
use serde_json::json;

fn ctx() -> RequestContext {
    RequestContext::new()
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

// ------------------------------------------- regressions found by fuzzing (`fuzz/`)

/// A member name whose 200th byte falls inside a multi-byte character: serde_json's error
/// message echoes the name, and cutting the message at byte 200 panicked (found by the
/// `trust_bundle` fuzz target). Reachable from unsigned envelope claims, so remotely.
fn long_name() -> String {
    let mut name = "a".repeat(150);
    name.push_str(&"Ж".repeat(60)); // 2-byte characters straddle byte 200 of the message
    name
}

#[test]
fn unknown_member_with_multibyte_name_in_a_bundle_is_an_error_not_a_panic() {
    let json = format!(r#"{{"trust_domain":"acme.example","{}":1}}"#, long_name());
    for shift in 0..4 {
        let json = json.replacen('{', &format!("{{{}", " ".repeat(shift)), 1);
        let name = format!("{}{}", "b".repeat(shift), long_name());
        let json2 = format!(r#"{{"trust_domain":"acme.example","{name}":1}}"#);
        assert!(TrustBundle::from_json(&json).is_err());
        assert!(TrustBundle::from_json(&json2).is_err());
    }
}

#[test]
fn unknown_member_with_multibyte_name_in_an_envelope_is_malformed_not_a_panic() {
    let w = World::new();
    let grant = w.grant();
    for shift in 0..4 {
        let mut claims = w.envelope_claims(&w.planner, &w.executor, &[grant.as_str()]);
        claims[format!("{}{}", "b".repeat(shift), long_name())] = serde_json::json!(1);
        let env = w.raw_envelope(&w.planner, &claims);
        assert_reason(
            w.verifier(&w.executor)
                .verify(&env, PAYLOAD, &RequestContext::new()),
            Reason::Malformed,
        );
    }
}
