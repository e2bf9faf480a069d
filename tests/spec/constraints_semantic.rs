//! SPEC sections 3.1 and 3.2: the semantic members `subpath`, `url` and `cidr` in the constraint
//! language, end to end through real tokens and the verifier: allowed values, `intent_not_granted`
//! with the member's explanation, `escalation` for an uncovered child (and the builder's refusal),
//! `malformed` for a bad rule in a token; and soundness of the finite-child rule (SPEC 3.2 rule
//! 4) under each semantic parent (same-kind soundness is in the library's unit tests,
//! `grant::semantic`).

use crate::common::*;
use crate::constraints::{child_of, config, root_with, sound};
use agent_handoff::error::{Escalation, Fault};
use agent_handoff::grant::Constraint;
use agent_handoff::*;
use proptest::prelude::*;
use serde_json::{json, Value};

fn c(text: &str) -> Constraint {
    text.parse()
        .unwrap_or_else(|e| panic!("constraint {text}: {e}"))
}

const ACME: &str = r#"{"schemes": ["https"], "hosts": ["api.acme.example"], "paths": ["/v1"]}"#;

/// A closed tool capability with three semantic arguments.
fn tool_cap(path: &str, url: &str, ip: &str) -> Value {
    let (p, u, i): (Value, Value, Value) = (
        serde_json::from_str(path).unwrap(),
        serde_json::from_str(url).unwrap(),
        serde_json::from_str(ip).unwrap(),
    );
    json!([{"action": "tools.run", "resource": "tool/*", "closed": true,
            "limits": {"path": {"subpath": p, "optional": true},
                       "url": {"url": u, "optional": true},
                       "ip": {"cidr": i, "optional": true}}}])
}

fn root(w: &World) -> String {
    root_with(
        w,
        tool_cap(
            r#""/data/reports""#,
            ACME,
            r#"["10.0.0.0/8", "2001:db8::/32"]"#,
        ),
    )
}

fn verify(w: &World, chain: &[&str], args: Value) -> Result<VerifiedHandoff, Rejection> {
    let (from, to) = if chain.len() == 1 {
        (&w.planner, &w.executor)
    } else {
        (&w.executor, &w.payments)
    };
    let mut env = w.envelope_claims(from, to, chain);
    env["intent"] = json!({"action": "tools.run", "resource": "tool/x", "args": args});
    w.verifier(to)
        .verify(&w.raw_envelope(from, &env), PAYLOAD, &RequestContext::new())
}

#[test]
fn semantic_members_allow_what_the_spec_says_through_the_verifier() {
    let w = World::new();
    let root = root(&w);
    for args in [
        json!({}),
        json!({"path": "/data/reports"}),
        json!({"path": "/data/reports/./q3.pdf"}),
        json!({"path": "/data/reports/2026/q3.pdf"}),
        json!({"url": "https://api.acme.example/v1"}),
        json!({"url": "HTTPS://API.ACME.EXAMPLE/v1/x?q=1"}),
        json!({"url": "https://api.acme.example:443/v1/a/../b"}),
        json!({"ip": "10.1.2.3"}),
        json!({"ip": "2001:db8::1"}),
        json!({"path": "/data/reports/a", "url": "https://api.acme.example/v1/", "ip": "10.0.0.0"}),
    ] {
        verify(&w, &[&root], args.clone()).unwrap_or_else(|e| panic!("{args}: {e}"));
    }
}

#[test]
fn semantic_refusals_are_intent_not_granted_with_the_members_explanation() {
    let w = World::new();
    let root = root(&w);
    // (argument, value, member, words of the explanation)
    let cases: &[(&str, Value, &str, &str)] = &[
        (
            "path",
            json!("/data/reports/../etc/passwd"),
            "subpath",
            "..",
        ),
        ("path", json!("/data/reports//x"), "subpath", "empty"),
        (
            "path",
            json!("/data/reportsx"),
            "subpath",
            "is not inside `/data/reports`",
        ),
        ("path", json!("/data/reports/a\u{0}b"), "subpath", "NUL"),
        ("path", json!("data/reports/x"), "subpath", "absolute"),
        ("path", json!(7), "subpath", "not a string"),
        (
            "url",
            json!("https://evil.com#@api.acme.example/v1"),
            "url",
            "fragment",
        ),
        (
            "url",
            json!("https://api.acme.example.evil.com/v1"),
            "url",
            "host",
        ),
        ("url", json!("https://0x7f000001/v1"), "url", "host"),
        (
            "url",
            json!("https://[::ffff:127.0.0.1]/v1"),
            "url",
            "IPv4-mapped",
        ),
        (
            "url",
            json!("https://api.acme.example/v1/../admin"),
            "url",
            "path",
        ),
        (
            "url",
            json!("https://user@api.acme.example/v1"),
            "url",
            "userinfo",
        ),
        ("url", json!("http://api.acme.example/v1"), "url", "scheme"),
        (
            "url",
            json!("https://api.acme.example:8443/v1"),
            "url",
            "port",
        ),
        ("ip", json!("010.0.0.1"), "cidr", "not an IP address"),
        ("ip", json!("192.168.1.1"), "cidr", "is not in `10.0.0.0/8`"),
        (
            "ip",
            json!("::ffff:10.0.0.1"),
            "cidr",
            "is not in `10.0.0.0/8`",
        ),
    ];
    for (arg, value, member, words) in cases {
        let r = assert_reason(
            verify(&w, &[&root], json!({ *arg: value })),
            Reason::IntentNotGranted,
        );
        let msg = r.to_string();
        assert!(
            msg.contains(&format!("argument `{arg}`"))
                && msg.contains(&format!("fails `{member}`"))
                && msg.contains(words),
            "{arg} = {value}: {msg}"
        );
        assert!(!msg.contains('\u{0}'), "{msg}");
        assert!(
            matches!(
                r.fault(),
                Fault::IntentNotGranted {
                    argument: Some(_),
                    ..
                }
            ),
            "{r:?}"
        );
    }
}

#[test]
fn a_malformed_semantic_rule_in_a_token_is_malformed() {
    let w = World::new();
    for (path, url, ip) in [
        (r#""data/reports""#, ACME, r#""10.0.0.0/8""#),
        (r#""/data/../etc""#, ACME, r#""10.0.0.0/8""#),
        (r#""/data/""#, ACME, r#""10.0.0.0/8""#),
        (r#"{"root": "/data"}"#, ACME, r#""10.0.0.0/8""#),
        (
            r#""/data""#,
            r#"{"schemes": ["gopher"], "hosts": ["a.com"]}"#,
            r#""10.0.0.0/8""#,
        ),
        (
            r#""/data""#,
            r#"{"schemes": ["https"], "hosts": ["0x7f000001"]}"#,
            r#""10.0.0.0/8""#,
        ),
        (
            r#""/data""#,
            r#"{"schemes": ["https"], "hosts": ["*"]}"#,
            r#""10.0.0.0/8""#,
        ),
        (r#""/data""#, r#"{"schemes": ["https"]}"#, r#""10.0.0.0/8""#),
        (r#""/data""#, r#""https://a.com/""#, r#""10.0.0.0/8""#),
        (r#""/data""#, ACME, r#""10.0.0.1/8""#),
        (r#""/data""#, ACME, r#""10.0.0.0/33""#),
        (r#""/data""#, ACME, r#""not-an-ip""#),
        (r#""/data""#, ACME, r#"[]"#),
    ] {
        let root = root_with(&w, tool_cap(path, url, ip));
        assert_reason(verify(&w, &[&root], json!({})), Reason::Malformed);
    }
}

#[test]
fn an_uncovered_semantic_child_is_escalation_and_refused_by_the_builder() {
    let w = World::new();
    let root = root(&w);
    // Covered: narrower roots, hosts, paths and networks, and finite children inside them.
    for (path, url, ip) in [
        (
            r#""/data/reports/2026""#,
            r#"{"schemes": "https", "hosts": "api.acme.example", "paths": "/v1/reports"}"#,
            r#""10.1.0.0/16""#,
        ),
        (
            r#""/data/reports""#,
            ACME,
            r#"["10.0.0.0/9", "10.128.0.0/9", "2001:db8:1::/48"]"#,
        ),
    ] {
        let child = child_of(&w, &root, tool_cap(path, url, ip));
        verify(&w, &[&root, &child], json!({"ip": "10.1.2.3"})).unwrap();
    }
    let finite = child_of(
        &w,
        &root,
        json!([{"action": "tools.run", "resource": "tool/*", "closed": true,
                "limits": {"path": {"in": ["/data/reports/a", "/data/reports/b"], "optional": true},
                           "url": {"const": "https://api.acme.example/v1/ping", "optional": true},
                           "ip": {"in": ["10.0.0.1"], "optional": true}}}]),
    );
    verify(&w, &[&root, &finite], json!({"path": "/data/reports/b"})).unwrap();

    // Uncovered: wider or sideways, each named at the verifier.
    for (limits, argument) in [
        (
            json!({"path": {"subpath": "/data", "optional": true}}),
            "path",
        ),
        (
            json!({"path": {"subpath": "/data/reportsx", "optional": true}}),
            "path",
        ),
        (
            json!({"path": {"prefix": "/data/reports/", "optional": true}}),
            "path",
        ),
        (
            json!({"path": {"in": ["/data/reports/a", "/data/reports/../x"], "optional": true}}),
            "path",
        ),
        (
            json!({"url": {"url": {"schemes": ["https", "http"], "hosts": "api.acme.example", "paths": "/v1"}, "optional": true}}),
            "url",
        ),
        (
            json!({"url": {"url": {"schemes": "https", "hosts": "*.acme.example", "paths": "/v1"}, "optional": true}}),
            "url",
        ),
        (
            json!({"url": {"url": {"schemes": "https", "hosts": "api.acme.example", "paths": "/"}, "optional": true}}),
            "url",
        ),
        (
            json!({"url": {"const": "https://api.acme.example/v1#frag", "optional": true}}),
            "url",
        ),
        (json!({"ip": {"cidr": "0.0.0.0/0", "optional": true}}), "ip"),
        (
            json!({"ip": {"in": ["10.0.0.1", "010.0.0.1"], "optional": true}}),
            "ip",
        ),
    ] {
        let mut all = json!({"path": {"subpath": "/data/reports", "optional": true},
                             "url": {"url": serde_json::from_str::<Value>(ACME).unwrap(), "optional": true},
                             "ip": {"cidr": "10.0.0.0/8", "optional": true}});
        all[argument] = limits[argument].clone();
        let child = child_of(
            &w,
            &root,
            json!([{"action": "tools.run", "resource": "tool/*", "closed": true, "limits": all}]),
        );
        let r = assert_reason(verify(&w, &[&root, &child], json!({})), Reason::Escalation);
        assert!(
            matches!(r.fault(), Fault::Escalation(Escalation::Argument { detail, .. }) if detail.contains(&format!("`{argument}`"))),
            "{limits}: {r}"
        );
    }

    // The builder refuses to sign it, naming the argument and both constraints.
    let grant = DelegationToken::root(&w.orchestrator.identity)
        .delegate_to(&w.planner.public())
        .task("task-42".parse().unwrap())
        .grant(
            Capability::new("files.read", "fs/*")
                .unwrap()
                .constrain("path", c(r#"{"subpath": "/data/reports"}"#))
                .unwrap()
                .constrain("url", c(&format!(r#"{{"url": {ACME}}}"#)))
                .unwrap()
                .closed(),
        )
        .depth(1)
        .issued_at(w.now())
        .sign()
        .unwrap();
    let attempt = |path: &str, url: &str| {
        grant
            .attenuate(&w.planner.identity)
            .delegate_to(&w.executor.public())
            .grant(
                Capability::new("files.read", "fs/main")
                    .unwrap()
                    .constrain("path", c(path))
                    .unwrap()
                    .constrain("url", c(url))
                    .unwrap()
                    .closed(),
            )
            .depth(0)
            .issued_at(w.now())
            .sign()
    };
    let narrow_url =
        r#"{"url": {"schemes": "https", "hosts": "api.acme.example", "paths": "/v1/x"}}"#;
    let err = attempt(r#"{"subpath": "/data"}"#, narrow_url)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`path`")
            && err.contains("/data/reports")
            && err.contains(r#"{"subpath":"/data"}"#),
        "{err}"
    );
    let err = attempt(
        r#"{"subpath": "/data/reports/q"}"#,
        r#"{"url": {"schemes": "https", "hosts": "*.acme.example"}}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`url`") && err.contains("api.acme.example") && err.contains("*.acme.example"),
        "{err}"
    );
    let ok = attempt(r#"{"const": "/data/reports/q3.pdf"}"#, narrow_url);
    assert!(ok.is_ok(), "{ok:?}");
}

// ------------------------------------------- soundness of rule 4 under semantic parents

fn paths() -> impl Strategy<Value = String> {
    let seg = prop::sample::select(vec!["data", "reports", "datax", "x", "..", ".", ""]);
    prop_oneof![
        prop::collection::vec(seg, 0..4).prop_map(|s| format!("/{}", s.join("/"))),
        prop::sample::select(vec![
            "data/x",
            "/data/x\u{0}",
            "/data\\x",
            "/data/x/",
            "//data"
        ])
        .prop_map(str::to_owned),
    ]
}

fn subpath_parents() -> impl Strategy<Value = Value> {
    prop::sample::select(vec!["/", "/data", "/data/reports", "/datax", "/data/x"])
        .prop_map(|r| json!({ "subpath": r }))
}

fn urls() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["http", "https", "HTTPS", "ftp"]),
        prop::sample::select(vec![
            "good.com",
            "GOOD.COM",
            "a.good.com",
            "good.com.evil.com",
            "evil.com#@good.com",
            "user@good.com",
            "0x7f000001",
            "127.0.0.1",
            "[::ffff:127.0.0.1]",
            "good.com.",
        ]),
        prop::sample::select(vec!["", ":80", ":443", ":8080"]),
        prop::sample::select(vec![
            "",
            "/",
            "/api",
            "/api/v1",
            "/apix",
            "/../admin",
            "/api/..;/x",
            "/api/%2F",
        ]),
    )
        .prop_map(|(s, h, p, q)| format!("{s}://{h}{p}{q}"))
}

fn url_parents() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!({"schemes": ["http", "https"], "hosts": "good.com"}),
        json!({"schemes": "https", "hosts": "*.good.com", "paths": "/api"}),
        json!({"schemes": "http", "hosts": ["good.com", "127.0.0.1"], "ports": [80, 8080]}),
        json!({"schemes": ["https", "ftp"], "hosts": ["good.com", "*.good.com"], "paths": ["/api", "/"]}),
    ])
    .prop_map(|u| json!({ "url": u }))
}

fn addresses() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u8..=255, 0u8..=3).prop_map(|(a, b)| format!("10.{b}.0.{a}")),
        (0u8..=255).prop_map(|a| format!("192.168.0.{a}")),
        (0u16..=3).prop_map(|a| format!("2001:db8::{a:x}")),
        prop::sample::select(vec![
            "010.0.0.1",
            "10.1",
            "::ffff:10.0.0.1",
            "::ffff:a00:1",
            "2001:DB8::1",
            " 10.0.0.1"
        ])
        .prop_map(str::to_owned),
    ]
}

fn cidr_parents() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!("10.0.0.0/8"),
        json!(["10.0.0.0/15", "192.168.0.0/25"]),
        json!(["2001:db8::/126", "10.2.0.0/16"]),
        json!("::ffff:0.0.0.0/96"),
    ])
    .prop_map(|n| json!({ "cidr": n }))
}

/// A child `const` or `in` drawn from `domain`, and probe values from the same domain.
fn finite<S: Strategy<Value = String>>(
    domain: fn() -> S,
) -> impl Strategy<Value = (Value, Vec<Value>)> {
    (
        prop_oneof![
            domain().prop_map(|v| json!({ "const": v })),
            prop::collection::vec(domain(), 1..4).prop_map(|vs| json!({ "in": vs })),
        ],
        prop::collection::vec(domain().prop_map(Value::String), 16),
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sound_subpath_finite(parent in subpath_parents(), (child, values) in finite(paths)) {
        sound(&parent, &child, &values)?;
    }

    #[test]
    fn sound_url_finite(parent in url_parents(), (child, values) in finite(urls)) {
        sound(&parent, &child, &values)?;
    }

    #[test]
    fn sound_cidr_finite(parent in cidr_parents(), (child, values) in finite(addresses)) {
        sound(&parent, &child, &values)?;
    }
}

/// Same-kind pairs through the constraint language (the rules themselves are property-tested in
/// `grant::semantic`): a narrower rule is covered, a wider or sideways one is not, and no
/// semantic member covers or is covered by another kind (except a finite child).
#[test]
fn semantic_coverage_table() {
    for (parent, child, covered) in [
        (
            r#"{"subpath": "/data"}"#,
            r#"{"subpath": "/data/reports"}"#,
            true,
        ),
        (r#"{"subpath": "/data"}"#, r#"{"subpath": "/data"}"#, true),
        (r#"{"subpath": "/data"}"#, r#"{"subpath": "/datax"}"#, false),
        (
            r#"{"subpath": "/data/reports"}"#,
            r#"{"subpath": "/data"}"#,
            false,
        ),
        (r#"{"subpath": "/data"}"#, r#"{"prefix": "/data/"}"#, false),
        (
            r#"{"prefix": "/data/"}"#,
            r#"{"subpath": "/data/x"}"#,
            false,
        ),
        (
            r#"{"subpath": "/data"}"#,
            r#"{"in": ["/data/a", "/data/./b"]}"#,
            true,
        ),
        (
            r#"{"subpath": "/data"}"#,
            r#"{"in": ["/data/a", "/data/../b"]}"#,
            false,
        ),
        (
            r#"{"subpath": "/data"}"#,
            r#"{"subpath": "/data/x", "len": {"max": 9}}"#,
            true,
        ),
        (
            r#"{"cidr": "10.0.0.0/8"}"#,
            r#"{"cidr": ["10.0.0.0/9", "10.200.0.0/16"]}"#,
            true,
        ),
        (
            r#"{"cidr": ["10.0.0.0/9", "10.128.0.0/9"]}"#,
            r#"{"cidr": "10.0.0.0/8"}"#,
            true,
        ),
        (
            r#"{"cidr": "10.0.0.0/9"}"#,
            r#"{"cidr": "10.0.0.0/8"}"#,
            false,
        ),
        (
            r#"{"cidr": "10.0.0.0/8"}"#,
            r#"{"const": "10.9.9.9"}"#,
            true,
        ),
        (
            r#"{"cidr": "10.0.0.0/8"}"#,
            r#"{"const": "10.09.9.9"}"#,
            false,
        ),
        (r#"{"cidr": "::/0"}"#, r#"{"cidr": "0.0.0.0/0"}"#, false),
        (
            r#"{"url": {"schemes": "https", "hosts": "*.a.com"}}"#,
            r#"{"url": {"schemes": "https", "hosts": ["x.a.com", "*.y.a.com"], "paths": "/v1"}}"#,
            true,
        ),
        (
            r#"{"url": {"schemes": "https", "hosts": "*.a.com"}}"#,
            r#"{"url": {"schemes": "https", "hosts": "a.com"}}"#,
            false,
        ),
        (
            r#"{"url": {"schemes": "https", "hosts": "a.com", "paths": "/api"}}"#,
            r#"{"url": {"schemes": "https", "hosts": "a.com", "paths": "/apix"}}"#,
            false,
        ),
        (
            r#"{"url": {"schemes": "https", "hosts": "a.com"}}"#,
            r#"{"in": ["https://a.com/x", "HTTPS://A.COM/y?q"]}"#,
            true,
        ),
        (
            r#"{"url": {"schemes": "https", "hosts": "a.com"}}"#,
            r#"{"const": "https://a.com.evil.com/"}"#,
            false,
        ),
        (
            r#"{"url": {"schemes": "https", "hosts": "a.com"}}"#,
            r#"{"prefix": "https://a.com/"}"#,
            false,
        ),
    ] {
        assert_eq!(c(parent).covers(&c(child)), covered, "{parent} / {child}");
    }
    // A non-string value fails every semantic member.
    for m in [r#"{"subpath": "/"}"#, r#"{"cidr": "::/0"}"#] {
        for v in [json!(1), json!(null), json!(["/"]), json!({"a": "/"})] {
            let v: agent_handoff::grant::ArgValue = serde_json::from_value(v).unwrap();
            assert!(!c(m).allows(Some(&v)), "{m} {v:?}");
        }
    }
}
