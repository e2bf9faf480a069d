//! SPEC section 3: capabilities. Canonical resources, patterns that cover by whole segments,
//! and numbers in argument limits compared exactly, at the builders and at the verifier.

use crate::common::*;
use agent_handoff::error::Location;
use agent_handoff::grant::exact_number;
use agent_handoff::wire::TYP_DELEGATION;
use agent_handoff::wire::TYP_HANDOFF;
use agent_handoff::*;
use serde_json::json;

fn ctx() -> RequestContext {
    RequestContext::new()
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

/// Verifies `payment_with(max, amount)` for each `(case, max, amount, expected)`: `None` must be
/// allowed, `Some(reason)` refused with that reason. A fresh verifier (and replay cache) per
/// envelope: they share one `jti`.
#[track_caller]
fn check_payments(cases: &[(&str, &str, &str, Option<Reason>)]) {
    let w = World::new();
    for (case, max, amount, expected) in cases {
        let r = w
            .verifier(&w.executor)
            .verify(&payment_with(&w, max, amount), PAYLOAD, &ctx());
        let got = r.as_ref().err().map(Rejection::reason);
        assert_eq!(got, *expected, "{case} (max {max}, amount {amount}): {r:?}");
    }
}

#[test]
fn limit_max_compares_an_integer_argument_with_a_float_max_exactly() {
    // SPEC 3: a limit is satisfied by a number `<= max`. 10^18 + 1 is not `<= 1e18`, although
    // both round to the same f64.
    use Reason::IntentNotGranted as Over;
    #[rustfmt::skip]
    let cases = [
        ("integer above a float max", "1e18", "1000000000000000001", Some(Over)),
        ("integer above 2^53 as a float max", "9007199254740992.0", "9007199254740993", Some(Over)),
        ("integer below a negative float max", "-1e18", "-1000000000000000001", None),
        ("integer equal to a float max", "1e18", "1000000000000000000", None),
        ("fraction above an integer max", "100", "100.5", Some(Over)),
        ("integer below a fractional max", "100.5", "100", None),
    ];
    check_payments(&cases);
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

// ------------------------------------------- canonical resources (SPEC 3, issue #12 item 8)

/// Resources that are not canonical paths (or not resources at all), each with why.
pub(crate) const NON_CANONICAL: &[(&str, &str)] = &[
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
    use Reason::IntentNotGranted as Over;
    #[rustfmt::skip]
    let cases = [
        // -0.0 is exactly zero: 0 and -0.0 are within it, 1 is not.
        ("0 within -0.0", "-0.0", "0", None),
        ("-0.0 within -0.0", "-0.0", "-0.0", None),
        ("1 above -0.0", "-0.0", "1", Some(Over)),
        // A decimal max is compared by its decimal value, exactly.
        ("equal to a decimal max", "19.99", "19.99", None),
        ("equal to 0.1", "0.1", "0.1", None),
        ("above a decimal max", "19.99", "20", Some(Over)),
        ("just above a decimal max", "19.99", "19.991", Some(Over)),
        // A large decimal max compares with integers by its decimal value: 9.223372036854776e18
        // reads as the double 2^63, but an integer just above the decimal is above the limit.
        ("equal to a large decimal max", "9.223372036854776e18", "9223372036854776000", None),
        ("above a large decimal max", "9.223372036854776e18", "9223372036854776001", Some(Over)),
        // A float max that is exactly a double is compared exactly with integers.
        ("float below an integer max", "9007199254740993", "9007199254740992.0", None),
        ("integer above an integer max", "9007199254740993", "9007199254740994", Some(Over)),
    ];
    check_payments(&cases);
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
