//! Regressions found by fuzzing (`fuzz/`), each with the input shape that found it.

mod common;

use agent_handoff::*;
use common::*;

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
