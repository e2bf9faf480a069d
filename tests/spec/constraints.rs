//! SPEC section 3.1 and 3.2: argument constraints (capabilities version 2). What each member
//! allows and refuses, what is malformed, which child constraints a parent covers, closed
//! capabilities, the reason codes at the builders and the verifier, and soundness of coverage
//! for every (parent kind, child kind) pair the rules accept (proptest: `PROPTEST_CASES`
//! covered pairs per test, 24 by default; CI's soundness step runs 1000 in a release build).

use crate::common::*;
use agent_handoff::error::{Escalation, Fault};
use agent_handoff::grant::{ArgLimit, ArgValue, Constraint};
use agent_handoff::*;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Value};

fn ctx() -> RequestContext {
    RequestContext::new()
}

fn c(text: &str) -> Constraint {
    text.parse()
        .unwrap_or_else(|e| panic!("constraint {text}: {e}"))
}

fn v(text: &str) -> ArgValue {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("value {text}: {e}"))
}

fn limit(text: &str) -> ArgLimit {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("limit {text}: {e}"))
}

// ---------------------------------------------------------------- SPEC 3.1: what is allowed

/// `(constraint, value, allowed)`; the value `absent` is a missing argument.
const ALLOWS: &[(&str, &str, bool)] = &[
    // numbers: inclusive and exclusive bounds, exact decimal comparison, type discipline
    (r#"{"min": 1, "max": 5}"#, "1", true),
    (r#"{"min": 1, "max": 5}"#, "5", true),
    (r#"{"min": 1, "max": 5}"#, "5.0", true),
    (r#"{"min": 1, "max": 5}"#, "0.99", false),
    (r#"{"min": 1, "max": 5}"#, "5.000001", false),
    (r#"{"min": 1, "max": 5}"#, r#""3""#, false),
    (r#"{"exclusive_min": 0, "exclusive_max": 1}"#, "0", false),
    (r#"{"exclusive_min": 0, "exclusive_max": 1}"#, "1", false),
    (r#"{"exclusive_min": 0, "exclusive_max": 1}"#, "0.5", true),
    (
        r#"{"exclusive_min": 0, "exclusive_max": 1}"#,
        "5e-324",
        true,
    ),
    (r#"{"max": 1e18}"#, "1000000000000000001", false),
    (r#"{"max": 1e18}"#, "1000000000000000000", true),
    (r#"{"max": 5}"#, "absent", false),
    (r#"{"max": 5, "optional": true}"#, "absent", true),
    (r#"{"max": 5, "optional": true}"#, "6", false),
    // const: structural, numbers by value
    (
        r#"{"const": {"a": [1, "x"]}}"#,
        r#"{"a": [1.0, "x"]}"#,
        true,
    ),
    (
        r#"{"const": {"a": [1, "x"]}}"#,
        r#"{"a": [1, "x"], "b": 2}"#,
        false,
    ),
    (r#"{"const": null}"#, "null", true),
    (r#"{"const": null}"#, "false", false),
    (r#"{"const": "1"}"#, "1", false),
    // in / not_in: strings and numbers
    (r#"{"in": ["eur", 7]}"#, r#""eur""#, true),
    (r#"{"in": ["eur", 7]}"#, "7.0", true),
    (r#"{"in": ["eur", 7]}"#, r#""7""#, false),
    (r#"{"in": ["eur", 7]}"#, r#""EUR""#, false),
    (r#"{"not_in": ["root", 0]}"#, r#""root""#, false),
    (r#"{"not_in": ["root", 0]}"#, "-0.0", false),
    (r#"{"not_in": ["root", 0]}"#, r#""alice""#, true),
    (r#"{"not_in": ["root", 0]}"#, "[0]", true),
    // prefix / suffix: byte for byte, no segment logic
    (r#"{"prefix": "reports/"}"#, r#""reports/q3""#, true),
    (r#"{"prefix": "reports/"}"#, r#""reports""#, false),
    (r#"{"prefix": "reports"}"#, r#""reportsx/q3""#, true),
    (r#"{"prefix": "reports/"}"#, "7", false),
    (r#"{"suffix": ".pdf"}"#, r#""a/b.pdf""#, true),
    (r#"{"suffix": ".pdf"}"#, r#""a/b.PDF""#, false),
    // glob: `*` stops at `/`, `**` does not, `?` one non-`/` character; no escapes
    (r#"{"glob": "reports/*.pdf"}"#, r#""reports/q3.pdf""#, true),
    (
        r#"{"glob": "reports/*.pdf"}"#,
        r#""reports/2026/q3.pdf""#,
        false,
    ),
    (
        r#"{"glob": "reports/**.pdf"}"#,
        r#""reports/2026/q3.pdf""#,
        true,
    ),
    (r#"{"glob": "reports/**"}"#, r#""reports/""#, true),
    (r#"{"glob": "reports/**"}"#, r#""reports""#, false),
    (r#"{"glob": "reports/**"}"#, r#""reportsx/a""#, false),
    (r#"{"glob": "a?c"}"#, r#""abc""#, true),
    (r#"{"glob": "a?c"}"#, r#""aéc""#, true),
    (r#"{"glob": "a?c"}"#, r#""a/c""#, false),
    (r#"{"glob": "a?c"}"#, r#""ac""#, false),
    (r#"{"glob": "a.c"}"#, r#""abc""#, false),
    (r#"{"glob": "[ab]"}"#, r#""[ab]""#, true),
    (r#"{"glob": "[ab]"}"#, r#""a""#, false),
    (r#"{"glob": "*"}"#, r#""a\nb""#, true),
    // regex: whole-string match
    (r#"{"regex": "[a-z]+"}"#, r#""abc""#, true),
    (r#"{"regex": "[a-z]+"}"#, r#""abc1""#, false),
    (r#"{"regex": "a|ab"}"#, r#""ab""#, true),
    (r#"{"regex": "b"}"#, r#""abc""#, false),
    (r#"{"regex": "(?m)a$"}"#, "\"a\\nb\"", false),
    (r#"{"regex": "a"}"#, "1", false),
    // len: Unicode scalar values, or array elements
    (r#"{"len": {"min": 2, "max": 3}}"#, r#""éé""#, true),
    (r#"{"len": {"max": 1}}"#, r#""é""#, true),
    (r#"{"len": {"max": 1}}"#, r#""ab""#, false),
    (r#"{"len": {"min": 1}}"#, "[]", false),
    (r#"{"len": {"min": 1}}"#, "[null]", true),
    (r#"{"len": {"min": 1}}"#, "{}", false),
    // arrays
    (r#"{"each": {"prefix": "a"}}"#, r#"["a", "ab"]"#, true),
    (r#"{"each": {"prefix": "a"}}"#, r#"["a", "b"]"#, false),
    (r#"{"each": {"prefix": "a"}}"#, "[]", true),
    (r#"{"each": {"prefix": "a"}}"#, r#""a""#, false),
    (r#"{"subset_of": ["r", "w"]}"#, r#"["r", "r"]"#, true),
    (r#"{"subset_of": ["r", "w"]}"#, r#"["x"]"#, false),
    (r#"{"subset_of": ["r", "w"]}"#, r#""r""#, false),
    // objects
    (
        r#"{"fields": {"to": {"suffix": "@acme.example"}}}"#,
        r#"{"to": "a@acme.example", "cc": 1}"#,
        true,
    ),
    (
        r#"{"fields": {"to": {"suffix": "@acme.example"}}, "closed": true}"#,
        r#"{"to": "a@acme.example", "cc": 1}"#,
        false,
    ),
    (
        r#"{"fields": {"to": {"suffix": "@acme.example"}}}"#,
        r#"{"cc": 1}"#,
        false,
    ),
    (
        r#"{"fields": {"to": {"suffix": "@acme.example", "optional": true}}}"#,
        r#"{"cc": 1}"#,
        true,
    ),
    (
        r#"{"fields": {"to": {"suffix": "@acme.example"}}}"#,
        r#"["to"]"#,
        false,
    ),
    // combinators
    (r#"{"any_of": [{"max": 0}, {"prefix": "x"}]}"#, "-1", true),
    (
        r#"{"any_of": [{"max": 0}, {"prefix": "x"}]}"#,
        r#""xy""#,
        true,
    ),
    (
        r#"{"any_of": [{"max": 0}, {"prefix": "x"}]}"#,
        r#""y""#,
        false,
    ),
    (
        r#"{"all_of": [{"prefix": "a"}, {"suffix": "z"}]}"#,
        r#""abz""#,
        true,
    ),
    (
        r#"{"all_of": [{"prefix": "a"}, {"suffix": "z"}]}"#,
        r#""ab""#,
        false,
    ),
    (r#"{}"#, "[1, {}]", true),
    (r#"{}"#, "absent", false),
];

#[test]
fn every_member_allows_and_refuses_as_the_spec_says() {
    for (constraint, value, want) in ALLOWS {
        let value = (*value != "absent").then(|| v(value));
        let got = c(constraint).allows(value.as_ref());
        assert_eq!(got, *want, "{constraint} on {value:?}");
    }
}

/// Each is refused by `Constraint::from_str`, and inside a capability by its deserializer.
const MALFORMED: &[&str] = &[
    r#"{"maximum": 5}"#,
    r#"{"max": "5"}"#,
    r#"{"max": 500.0000000000000001}"#,
    r#"{"min": 5, "max": 4}"#,
    r#"{"min": 5, "exclusive_max": 5}"#,
    r#"{"exclusive_min": 1, "exclusive_max": 1}"#,
    r#"{"in": []}"#,
    r#"{"in": [[1]]}"#,
    r#"{"not_in": []}"#,
    r#"{"subset_of": [null]}"#,
    r#"{"all_of": []}"#,
    r#"{"any_of": {}}"#,
    r#"{"prefix": 1}"#,
    r#"{"regex": "a("}"#,
    r#"{"regex": "a)|(b"}"#,
    r#"{"regex": "\\p{Nope}"}"#,
    r#"{"regex": "(((a{1000}){1000}){1000})"}"#,
    r#"{"glob": "a***"}"#,
    r#"{"len": {}}"#,
    r#"{"len": {"min": -1}}"#,
    r#"{"len": {"min": 1.5}}"#,
    r#"{"len": {"min": 3, "max": 2}}"#,
    r#"{"len": {"max": 3, "exact": 3}}"#,
    r#"{"max": 1, "in": ["x"]}"#,
    r#"{"prefix": "a", "each": {}}"#,
    r#"{"const": "a", "max": 3}"#,
    r#"{"optional": false, "max": 1}"#,
    r#"{"each": {"optional": true}}"#,
    r#"{"closed": true}"#,
    r#"{"fields": {"A": {}}}"#,
    r#"{"fields": {"a": {}}, "closed": false}"#,
    r#"{"max": 1, "max": 2}"#,
    "[]",
];

#[test]
fn malformed_constraints_are_refused() {
    for text in MALFORMED {
        assert!(text.parse::<Constraint>().is_err(), "accepted {text}");
        if *text == r#"{"in": []}"# {
            continue; // alone, the version 1 form, which accepted an empty set
        }
        let cap = format!(r#"{{"action":"a","resource":"r","limits":{{"x":{text}}}}}"#);
        assert!(
            serde_json::from_str::<Capability>(&cap).is_err(),
            "capability accepted {text}"
        );
    }
    // Nesting: depth 8 is the limit (a `limits` entry is depth 1).
    let nested =
        |levels: usize| format!("{}{{}}{}", r#"{"each":"#.repeat(levels), "}".repeat(levels));
    assert!(nested(7).parse::<Constraint>().is_ok());
    assert!(nested(8).parse::<Constraint>().is_err());
    let long = format!(r#"{{"regex": "{}"}}"#, "a".repeat(1025));
    assert!(long.parse::<Constraint>().is_err());
}

#[test]
fn version_1_forms_keep_their_meaning_and_encoding() {
    assert!(matches!(limit(r#"{"max": 5}"#), ArgLimit::Max(_)));
    assert!(matches!(limit(r#"{"in": ["a"]}"#), ArgLimit::In(_)));
    assert!(matches!(limit(r#"{"in": []}"#), ArgLimit::In(_)));
    assert!(matches!(limit(r#"{"in": [1]}"#), ArgLimit::Constraint(_)));
    assert!(matches!(
        limit(r#"{"max": 5, "min": 0}"#),
        ArgLimit::Constraint(_)
    ));
    for text in [
        r#"{"max":5}"#,
        r#"{"in":["a","b"]}"#,
        r#"{"max":3,"min":0}"#,
    ] {
        assert_eq!(serde_json::to_string(&limit(text)).unwrap(), text);
    }
    // Version 1 pairs keep the version 1 rule; mixed pairs use the version 2 rules.
    assert!(limit(r#"{"max": 5}"#).covers(&limit(r#"{"max": 4}"#)));
    assert!(!limit(r#"{"max": 5}"#).covers(&limit(r#"{"max": 6}"#)));
    assert!(limit(r#"{"in": ["a", "b"]}"#).covers(&limit(r#"{"in": ["a"]}"#)));
    assert!(limit(r#"{"max": 5}"#).covers(&limit(r#"{"min": 0, "max": 5}"#)));
    assert!(!limit(r#"{"max": 5}"#).covers(&limit(r#"{"max": 5, "optional": true}"#)));
    assert!(limit(r#"{"min": 0, "max": 9}"#).covers(&limit(r#"{"in": []}"#)));
    assert!(!limit(r#"{"min": 0, "max": 9}"#).covers(&limit(r#"{"max": 5}"#)));
    assert!(limit(r#"{"prefix": "a"}"#).covers(&limit(r#"{"in": ["ab", "a"]}"#)));
}

// --------------------------------------------------------------- SPEC 3.2: coverage rules

/// `(parent, child, covered)`, one or more rows per rule of SPEC 3.2.
const COVERS: &[(&str, &str, bool)] = &[
    // rule 1: absence
    (r#"{"max": 5}"#, r#"{"max": 5, "optional": true}"#, false),
    (r#"{"max": 5, "optional": true}"#, r#"{"max": 5}"#, true),
    (
        r#"{"max": 5, "optional": true}"#,
        r#"{"max": 4, "optional": true}"#,
        true,
    ),
    // intervals, exclusivity counted exactly
    (r#"{"min": 0, "max": 10}"#, r#"{"min": 1, "max": 10}"#, true),
    (
        r#"{"min": 0, "max": 10}"#,
        r#"{"min": -1, "max": 10}"#,
        false,
    ),
    (r#"{"min": 0, "max": 10}"#, r#"{"max": 10}"#, false),
    (r#"{"exclusive_max": 10}"#, r#"{"max": 10}"#, false),
    (r#"{"max": 10}"#, r#"{"exclusive_max": 10}"#, true),
    (r#"{"exclusive_max": 10}"#, r#"{"exclusive_max": 10}"#, true),
    (r#"{"exclusive_max": 10}"#, r#"{"max": 9.999}"#, true),
    (r#"{"exclusive_min": 0}"#, r#"{"min": 0}"#, false),
    (r#"{"min": 0}"#, r#"{"exclusive_min": -0.5}"#, false),
    (r#"{"max": 1e18}"#, r#"{"max": 1000000000000000001}"#, false),
    // finite children (rule 4)
    (r#"{"max": 10}"#, r#"{"in": [1, 10]}"#, true),
    (r#"{"max": 10}"#, r#"{"in": [1, 11]}"#, false),
    (r#"{"max": 10}"#, r#"{"in": [1, 11], "max": 10}"#, true),
    (r#"{"regex": "[a-c]+"}"#, r#"{"in": ["abc", "b"]}"#, true),
    (r#"{"regex": "[a-c]+"}"#, r#"{"in": ["abc", "d"]}"#, false),
    (r#"{"glob": "a/*"}"#, r#"{"const": "a/b"}"#, true),
    (r#"{"glob": "a/*"}"#, r#"{"const": "a/b/c"}"#, false),
    (r#"{"not_in": ["x"]}"#, r#"{"in": ["y", 1]}"#, true),
    (r#"{"not_in": ["x"]}"#, r#"{"in": ["y", "x"]}"#, false),
    (r#"{"each": {"max": 3}}"#, r#"{"const": [1, 2, 3]}"#, true),
    (r#"{"in": ["a", "b"]}"#, r#"{"const": "a"}"#, true),
    (r#"{"const": "a"}"#, r#"{"in": ["a"]}"#, true),
    (
        r#"{"const": "a"}"#,
        r#"{"prefix": "a", "len": {"max": 1}}"#,
        false,
    ),
    // not_in
    (r#"{"not_in": ["x"]}"#, r#"{"not_in": ["x", "y"]}"#, true),
    (r#"{"not_in": ["x", "y"]}"#, r#"{"not_in": ["x"]}"#, false),
    (r#"{"not_in": [1]}"#, r#"{"not_in": [1.0]}"#, true),
    // prefix / suffix
    (
        r#"{"prefix": "reports/"}"#,
        r#"{"prefix": "reports/2026/"}"#,
        true,
    ),
    (
        r#"{"prefix": "reports/"}"#,
        r#"{"prefix": "reports"}"#,
        false,
    ),
    (r#"{"suffix": ".pdf"}"#, r#"{"suffix": "q3.pdf"}"#, true),
    (r#"{"suffix": ".pdf"}"#, r#"{"suffix": "pdf"}"#, false),
    (r#"{"prefix": "a"}"#, r#"{"suffix": "a"}"#, false),
    // glob
    (r#"{"glob": "a/*"}"#, r#"{"glob": "a/*"}"#, true),
    (r#"{"glob": "a/**"}"#, r#"{"glob": "a/*"}"#, false),
    (
        r#"{"glob": "reports/**"}"#,
        r#"{"prefix": "reports/2026"}"#,
        true,
    ),
    (
        r#"{"glob": "reports/**"}"#,
        r#"{"prefix": "reports"}"#,
        false,
    ),
    (
        r#"{"glob": "reports/*"}"#,
        r#"{"prefix": "reports/"}"#,
        false,
    ),
    (r#"{"glob": "r?/**"}"#, r#"{"prefix": "ra/"}"#, false),
    (
        r#"{"prefix": "reports/"}"#,
        r#"{"glob": "reports/*"}"#,
        false,
    ),
    // regex
    (r#"{"regex": "a+"}"#, r#"{"regex": "a+"}"#, true),
    (r#"{"regex": "a+"}"#, r#"{"regex": "aa+"}"#, false),
    (r#"{"regex": "a+"}"#, r#"{"regex": "(?:a+)"}"#, false),
    // len
    (
        r#"{"len": {"max": 5}}"#,
        r#"{"len": {"min": 1, "max": 5}}"#,
        true,
    ),
    (r#"{"len": {"max": 5}}"#, r#"{"len": {"min": 1}}"#, false),
    (
        r#"{"len": {"min": 2}}"#,
        r#"{"len": {"min": 1, "max": 9}}"#,
        false,
    ),
    // arrays
    (r#"{"each": {"max": 5}}"#, r#"{"each": {"max": 4}}"#, true),
    (r#"{"each": {"max": 5}}"#, r#"{"each": {"max": 6}}"#, false),
    (
        r#"{"subset_of": ["r", "w"]}"#,
        r#"{"subset_of": ["r"]}"#,
        true,
    ),
    (
        r#"{"subset_of": ["r"]}"#,
        r#"{"subset_of": ["r", "w"]}"#,
        false,
    ),
    (
        r#"{"subset_of": ["r", "w"]}"#,
        r#"{"each": {"in": ["r"]}}"#,
        false,
    ),
    // objects: the capability rule one level down
    (
        r#"{"fields": {"a": {"max": 5}}}"#,
        r#"{"fields": {"a": {"max": 4}, "b": {}}}"#,
        true,
    ),
    (
        r#"{"fields": {"a": {"max": 5}}}"#,
        r#"{"fields": {"b": {}}}"#,
        false,
    ),
    (
        r#"{"fields": {"a": {"max": 5}}, "closed": true}"#,
        r#"{"fields": {"a": {"max": 4}}}"#,
        false,
    ),
    (
        r#"{"fields": {"a": {"max": 5}}, "closed": true}"#,
        r#"{"fields": {"a": {"max": 4}}, "closed": true}"#,
        true,
    ),
    (
        r#"{"fields": {"a": {"max": 5}}, "closed": true}"#,
        r#"{"fields": {"a": {"max": 4}, "b": {}}, "closed": true}"#,
        false,
    ),
    (
        r#"{"fields": {"a": {"max": 5, "optional": true}}}"#,
        r#"{"fields": {"a": {"max": 4}}}"#,
        true,
    ),
    (
        r#"{"fields": {"a": {"max": 5}}}"#,
        r#"{"fields": {"a": {"max": 4, "optional": true}}}"#,
        false,
    ),
    (
        r#"{"fields": {"a": {"max": 5, "optional": true}}}"#,
        r#"{"fields": {}, "closed": true}"#,
        true,
    ),
    (
        r#"{"fields": {"a": {"max": 5, "optional": true}}}"#,
        r#"{"fields": {}}"#,
        false,
    ),
    // combinators
    (
        r#"{"any_of": [{"max": 0}, {"prefix": "x"}]}"#,
        r#"{"prefix": "xy"}"#,
        true,
    ),
    (
        r#"{"any_of": [{"max": 0}, {"prefix": "x"}]}"#,
        r#"{"any_of": [{"max": -1}, {"prefix": "xx"}]}"#,
        true,
    ),
    (
        r#"{"any_of": [{"max": 0}, {"prefix": "x"}]}"#,
        r#"{"any_of": [{"max": 1}, {"prefix": "xx"}]}"#,
        false,
    ),
    (
        r#"{"max": 0}"#,
        r#"{"any_of": [{"max": -1}, {"in": [0, -5]}]}"#,
        true,
    ),
    (
        r#"{"all_of": [{"min": 0}, {"max": 5}]}"#,
        r#"{"min": 1, "max": 2}"#,
        true,
    ),
    (
        r#"{"min": 0, "max": 5}"#,
        r#"{"all_of": [{"min": 1}, {"max": 2}]}"#,
        true,
    ),
    (
        r#"{"min": 0, "max": 5}"#,
        r#"{"all_of": [{"min": 1}]}"#,
        false,
    ),
    (r#"{}"#, r#"{"not_in": ["x"]}"#, true),
    (r#"{"max": 5}"#, r#"{}"#, false),
];

#[test]
fn coverage_follows_the_rules_of_spec_3_2() {
    for (parent, child, want) in COVERS {
        assert_eq!(
            c(parent).covers(&c(child)),
            *want,
            "{parent} covers {child}"
        );
    }
}

#[test]
fn child_any_of_is_split_with_a_bound() {
    // 3 any_of members of 8 branches each: 512 cases, over the budget of 256: not covered,
    // although it is true.
    let branches = (0..8).map(|i| json!({"max": -i})).collect::<Vec<_>>();
    let child =
        json!({"all_of": [{"any_of": branches}, {"any_of": branches}, {"any_of": branches}]});
    assert!(!c(r#"{"max": 0}"#).covers(&c(&child.to_string())));
    let child = json!({"all_of": [{"any_of": branches}, {"any_of": branches}]});
    assert!(c(r#"{"max": 0}"#).covers(&c(&child.to_string())));
}

// ------------------------------------------------------------- SPEC 3: closed capabilities

fn cap(json: Value) -> Capability {
    serde_json::from_value::<Value>(json.clone()).unwrap();
    serde_json::from_str(&json.to_string()).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn intent(args: Value) -> Intent {
    serde_json::from_str(
        &json!({"action": "files.read", "resource": "fs/main", "args": args}).to_string(),
    )
    .unwrap()
}

#[test]
fn closed_capabilities_refuse_unnamed_arguments_and_only_narrow() {
    let open = cap(json!({"action": "files.read", "resource": "fs/*",
                          "limits": {"path": {"prefix": "reports/"}}}));
    let closed = cap(
        json!({"action": "files.read", "resource": "fs/*", "closed": true,
                            "limits": {"path": {"prefix": "reports/"},
                                       "mode": {"in": ["r"], "optional": true}}}),
    );
    assert!(open.allows(&intent(json!({"path": "reports/a", "mode": "w"}))));
    assert!(!closed.allows(&intent(json!({"path": "reports/a", "mode": "w"}))));
    assert!(closed.allows(&intent(json!({"path": "reports/a", "mode": "r"}))));
    assert!(closed.allows(&intent(json!({"path": "reports/a"}))));
    assert!(!closed.allows(&intent(json!({"path": "reports/a", "x": 1}))));
    assert!(!closed.allows(&intent(json!({"mode": "r"}))));
    assert_eq!(
        serde_json::to_value(&closed).unwrap()["closed"],
        json!(true)
    );
    assert!(serde_json::to_value(&open).unwrap().get("closed").is_none());
    // Closing an open capability narrows it; opening a closed one does not.
    let closed_narrow = cap(
        json!({"action": "files.read", "resource": "fs/main", "closed": true,
                                   "limits": {"path": {"prefix": "reports/2026/"}}}),
    );
    assert!(open.covers(&closed_narrow));
    assert!(closed.covers(&closed_narrow));
    assert!(!closed.covers(&open));
    // A closed parent: the child names no argument the parent does not.
    let extra = cap(
        json!({"action": "files.read", "resource": "fs/main", "closed": true,
                           "limits": {"path": {"prefix": "reports/"}, "y": {"max": 1}}}),
    );
    assert!(!closed.covers(&extra));
    assert!(open.covers(&extra));
    // Never drop a named argument's constraint, never make a required one optional.
    let dropped = cap(
        json!({"action": "files.read", "resource": "fs/main", "closed": true,
                             "limits": {"mode": {"in": ["r"], "optional": true}}}),
    );
    assert!(!closed.covers(&dropped));
    let optional = cap(json!({"action": "files.read", "resource": "fs/main",
                              "limits": {"path": {"prefix": "reports/", "optional": true}}}));
    assert!(!open.covers(&optional));
    // `closed` is a boolean.
    assert!(
        serde_json::from_str::<Capability>(r#"{"action":"a","resource":"r","closed":"yes"}"#)
            .is_err()
    );
}

// ------------------------------------------------- reason codes at the builders and verifier

/// A root grant from the orchestrator to the planner with the given capabilities JSON.
pub(super) fn root_with(w: &World, caps: Value) -> String {
    w.raw_token(
        &w.orchestrator,
        &w.token_claims(&w.orchestrator, &w.planner, None, caps, 1),
    )
}

fn files_cap(limits: Value) -> Value {
    json!([{"action": "files.read", "resource": "fs/*", "closed": true, "limits": limits}])
}

fn verify_args(w: &World, chain: &[&str], args: Value) -> Result<VerifiedHandoff, Rejection> {
    let mut env = w.envelope_claims(&w.planner, &w.executor, chain);
    env["intent"] = json!({"action": "files.read", "resource": "fs/main", "args": args});
    w.verifier(&w.executor)
        .verify(&w.raw_envelope(&w.planner, &env), PAYLOAD, &ctx())
}

#[test]
fn the_verifier_allows_and_explains_intent_not_granted() {
    let w = World::new();
    let root = root_with(
        &w,
        files_cap(json!({"path": {"glob": "reports/**", "len": {"max": 64}},
                         "mode": {"in": ["r"], "optional": true}})),
    );
    verify_args(&w, &[&root], json!({"path": "reports/q3.pdf"})).unwrap();
    let r = assert_reason(
        verify_args(&w, &[&root], json!({"path": "etc/passwd"})),
        Reason::IntentNotGranted,
    );
    let msg = r.to_string();
    assert!(
        msg.contains("argument `path`") && msg.contains("`glob`"),
        "{msg}"
    );
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
    // An unnamed argument of a closed capability.
    let r = assert_reason(
        verify_args(
            &w,
            &[&root],
            json!({"path": "reports/a", "shell": "rm -rf /"}),
        ),
        Reason::IntentNotGranted,
    );
    assert!(
        r.to_string().contains("argument `shell` is not named"),
        "{r}"
    );
    // A missing required argument.
    let r = assert_reason(
        verify_args(&w, &[&root], json!({})),
        Reason::IntentNotGranted,
    );
    assert!(r.to_string().contains("argument `path` is missing"), "{r}");
    // A long value is shown escaped and cut short, never whole.
    let long = format!("\u{1b}[31m{}", "x".repeat(10_000));
    let r = assert_reason(
        verify_args(&w, &[&root], json!({"path": long})),
        Reason::IntentNotGranted,
    );
    let msg = r.to_string();
    assert!(
        msg.len() < 1000 && msg.contains("u001b") && !msg.contains('\u{1b}'),
        "{msg}"
    );
    assert!(msg.contains("`len`") || msg.contains("`glob`"), "{msg}");
}

#[test]
fn a_malformed_constraint_in_a_token_is_malformed() {
    let w = World::new();
    for bad in [
        json!({"path": {"regex": "a("}}),
        json!({"path": {"min": 2, "max": 1}}),
        json!({"path": {"in": [], "max": 1}}),
        json!({"path": {"glob": "***"}}),
        json!({"path": {"unknown": 1}}),
    ] {
        let root = root_with(&w, files_cap(bad.clone()));
        assert_reason(
            verify_args(&w, &[&root], json!({"path": "a"})),
            Reason::Malformed,
        );
    }
}

/// The planner's child of `root`, hand-signed, with the given capabilities.
pub(super) fn child_of(w: &World, root: &str, caps: Value) -> String {
    w.raw_token(
        &w.planner,
        &w.token_claims(&w.planner, &w.executor, Some(root), caps, 0),
    )
}

#[test]
fn an_uncovered_child_is_escalation_at_the_verifier_and_refused_by_the_builder() {
    let w = World::new();
    let parent_limits = json!({"path": {"glob": "reports/**"}, "mode": {"in": ["r", "w"]}});
    let root = root_with(&w, files_cap(parent_limits));
    // Covered: a prefix inside the glob, a subset, still closed.
    let ok = child_of(
        &w,
        &root,
        files_cap(json!({"path": {"prefix": "reports/2026/"}, "mode": {"const": "r"}})),
    );
    let mut env = w.envelope_claims(&w.executor, &w.payments, &[&root, &ok]);
    env["intent"] = json!({"action": "files.read", "resource": "fs/main",
                           "args": {"path": "reports/2026/q3", "mode": "r"}});
    w.verifier(&w.payments)
        .verify(&w.raw_envelope(&w.executor, &env), PAYLOAD, &ctx())
        .unwrap();
    for (wider, argument) in [
        (
            json!({"path": {"prefix": "reports"}, "mode": {"const": "r"}}),
            "path",
        ),
        (
            json!({"path": {"prefix": "reports/"}, "mode": {"not_in": ["x"]}}),
            "mode",
        ),
        (json!({"path": {"prefix": "reports/"}}), "mode"),
        (
            json!({"path": {"prefix": "reports/"}, "mode": {"const": "r", "optional": true}}),
            "mode",
        ),
    ] {
        let child = child_of(&w, &root, files_cap(wider.clone()));
        let mut env = w.envelope_claims(&w.executor, &w.payments, &[&root, &child]);
        env["intent"] = json!({"action": "files.read", "resource": "fs/main",
                               "args": {"path": "reports/a", "mode": "r"}});
        let r = assert_reason(
            w.verifier(&w.payments)
                .verify(&w.raw_envelope(&w.executor, &env), PAYLOAD, &ctx()),
            Reason::Escalation,
        );
        assert!(
            matches!(r.fault(), Fault::Escalation(Escalation::Argument { detail, .. }) if detail.contains(&format!("`{argument}`"))),
            "{wider}: {r}"
        );
    }
    // An open child of a closed parent.
    let open = child_of(
        &w,
        &root,
        json!([{"action": "files.read", "resource": "fs/*",
                "limits": {"path": {"prefix": "reports/"}, "mode": {"const": "r"}}}]),
    );
    let env = w.envelope_claims(&w.executor, &w.payments, &[&root, &open]);
    let r = assert_reason(
        w.verifier(&w.payments)
            .verify(&w.raw_envelope(&w.executor, &env), PAYLOAD, &ctx()),
        Reason::Escalation,
    );
    assert!(r.to_string().contains("closed"), "{r}");

    // The builder refuses the same child, naming the argument and both constraints.
    let grant = DelegationToken::root(&w.orchestrator.identity)
        .delegate_to(&w.planner.public())
        .task("task-42".parse().unwrap())
        .grant(
            Capability::new("files.read", "fs/*")
                .unwrap()
                .constrain("path", c(r#"{"glob": "reports/**"}"#))
                .unwrap()
                .closed(),
        )
        .depth(1)
        .issued_at(w.now())
        .sign()
        .unwrap();
    let err = grant
        .attenuate(&w.planner.identity)
        .delegate_to(&w.executor.public())
        .grant(
            Capability::new("files.read", "fs/main")
                .unwrap()
                .constrain("path", c(r#"{"glob": "reports/*"}"#))
                .unwrap()
                .closed(),
        )
        .depth(0)
        .issued_at(w.now())
        .sign()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`path`") && err.contains("reports/**") && err.contains(r#""reports/*""#),
        "{err}"
    );
    let covered = grant
        .attenuate(&w.planner.identity)
        .delegate_to(&w.executor.public())
        .grant(
            Capability::new("files.read", "fs/main")
                .unwrap()
                .constrain("path", c(r#"{"prefix": "reports/q"}"#))
                .unwrap()
                .closed(),
        )
        .depth(0)
        .issued_at(w.now())
        .sign();
    assert!(covered.is_ok(), "{covered:?}");
}

// ------------------------------------------------------ soundness of coverage (proptest)

/// Covered pairs per soundness test: `PROPTEST_CASES` when set (CI's soundness step: 1000), else 24, so that
/// `cargo test` stays quick. Uncovered draws are rejected, not counted.
pub(super) fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(24);
    Config {
        cases,
        max_global_rejects: u32::MAX,
        max_local_rejects: u32::MAX,
        ..Config::default()
    }
}

fn small_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-3i64..=3).prop_map(|n| json!(n)),
        (-6i64..=6).prop_map(|n| json!(n as f64 / 2.0)),
    ]
}

fn small_string() -> impl Strategy<Value = String> {
    "[ab/]{0,4}"
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![small_number(), small_string().prop_map(Value::String)]
}

fn scalars() -> impl Strategy<Value = Value> {
    prop::collection::vec(scalar(), 1..4).prop_map(Value::Array)
}

/// Values of every JSON type, from the small domains the constraints use.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        small_number(),
        small_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[abc]", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn numbers() -> impl Strategy<Value = Value> {
    let bound = || prop::option::of(small_number());
    (bound(), bound(), bound(), bound()).prop_map(|(a, b, c, d)| {
        let mut m = serde_json::Map::new();
        for (k, v) in [
            ("min", a),
            ("max", b),
            ("exclusive_min", c),
            ("exclusive_max", d),
        ] {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        }
        Value::Object(m)
    })
}

fn one(key: &'static str, s: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    s.prop_map(move |v| json!({ key: v }))
}

fn globs() -> impl Strategy<Value = Value> {
    one(
        "glob",
        prop::sample::select(vec![
            "a*", "a**", "*", "**", "a?b", "a/**", "*/b", "ab", "a/*", "?",
        ])
        .prop_map(|g| json!(g)),
    )
}

fn regexes() -> impl Strategy<Value = Value> {
    one(
        "regex",
        prop::sample::select(vec!["a+", "[ab]*", "a|b", "(a/)*b?", "a.*", ".*/.*"])
            .prop_map(|r| json!(r)),
    )
}

fn lens() -> impl Strategy<Value = Value> {
    (prop::option::of(0u64..3), prop::option::of(0u64..5)).prop_map(|(a, b)| match (a, b) {
        (None, None) => json!({"len": {"min": 0}}),
        (Some(a), None) => json!({"len": {"min": a}}),
        (None, Some(b)) => json!({"len": {"max": b}}),
        (Some(a), Some(b)) => json!({"len": {"min": a.min(b), "max": b}}),
    })
}

/// A constraint of one of the leaf kinds.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        numbers(),
        one("const", value()),
        one("in", scalars()),
        one("not_in", scalars()),
        one("prefix", small_string().prop_map(Value::String)),
        one("suffix", small_string().prop_map(Value::String)),
        globs(),
        regexes(),
        lens(),
        one("subset_of", scalars()),
    ]
}

fn each() -> impl Strategy<Value = Value> {
    one("each", leaf())
}

fn fields() -> impl Strategy<Value = Value> {
    let entry = (leaf(), any::<bool>()).prop_map(|(mut c, optional)| {
        if optional {
            c["optional"] = json!(true);
        }
        c
    });
    (
        prop::collection::btree_map("[ab]", entry, 0..3),
        any::<bool>(),
    )
        .prop_map(|(m, closed)| {
            let mut c = json!({"fields": m.into_iter().collect::<serde_json::Map<_, _>>()});
            if closed {
                c["closed"] = json!(true);
            }
            c
        })
}

fn any_of() -> impl Strategy<Value = Value> {
    one(
        "any_of",
        prop::collection::vec(leaf(), 1..4).prop_map(Value::Array),
    )
}

fn all_of() -> impl Strategy<Value = Value> {
    one(
        "all_of",
        prop::collection::vec(leaf(), 1..4).prop_map(Value::Array),
    )
}

fn v1_max() -> impl Strategy<Value = Value> {
    one("max", small_number())
}

fn v1_in() -> impl Strategy<Value = Value> {
    one(
        "in",
        prop::collection::vec(small_string().prop_map(Value::String), 0..4).prop_map(Value::Array),
    )
}

/// Parses a generated limit; `None` when it is malformed (an empty interval, a type conflict).
fn parsed(json: &Value) -> Option<ArgLimit> {
    serde_json::from_str(&json.to_string()).ok()
}

fn to_arg(v: &Value) -> ArgValue {
    serde_json::from_str(&v.to_string()).unwrap()
}

/// The property: `parent` covers `child` (else the draw is rejected), and every value (and
/// absence) the child allows, the parent allows.
pub(super) fn sound(parent: &Value, child: &Value, values: &[Value]) -> Result<(), TestCaseError> {
    let (Some(p), Some(c)) = (parsed(parent), parsed(child)) else {
        return Err(TestCaseError::reject("malformed draw"));
    };
    if !p.covers(&c) {
        return Err(TestCaseError::reject("not covered"));
    }
    prop_assert!(
        !c.allows(None) || p.allows(None),
        "{parent} covers {child}: absence"
    );
    // The child's own finite members are values too.
    let mut probes: Vec<Value> = values.to_vec();
    for key in ["const"] {
        if let Some(v) = child.get(key) {
            probes.push(v.clone());
        }
    }
    for key in ["in", "subset_of"] {
        if let Some(Value::Array(vs)) = child.get(key) {
            probes.extend(vs.iter().cloned());
            probes.push(Value::Array(vs.clone()));
        }
    }
    for probe in &probes {
        let a = to_arg(probe);
        prop_assert!(
            !c.allows(Some(&a)) || p.allows(Some(&a)),
            "{parent} covers {child}, but the child allows {probe} and the parent refuses it"
        );
    }
    Ok(())
}

fn values() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(value(), 32)
}

macro_rules! soundness {
    ($($name:ident: $parent:expr, $child:expr;)*) => {
        proptest! {
            #![proptest_config(config())]
            $(
                #[test]
                fn $name(parent in $parent, child in $child, values in values()) {
                    sound(&parent, &child, &values)?;
                }
            )*
        }
    };
}

// One test per (parent kind, child kind) pair that the rules of SPEC 3.2 can accept.
soundness! {
    sound_numbers_numbers: numbers(), numbers();
    sound_v1_max_v1_max: v1_max(), v1_max();
    sound_v1_in_v1_in: v1_in(), v1_in();
    sound_v1_max_numbers: v1_max(), numbers();
    sound_numbers_v1_max: numbers(), v1_max();
    sound_any_const: leaf(), one("const", value());
    sound_any_in: leaf(), one("in", scalars());
    sound_any_v1_in: leaf(), v1_in();
    sound_prefix_prefix: one("prefix", small_string().prop_map(Value::String)), one("prefix", small_string().prop_map(Value::String));
    sound_suffix_suffix: one("suffix", small_string().prop_map(Value::String)), one("suffix", small_string().prop_map(Value::String));
    sound_glob_glob: globs(), globs();
    sound_glob_prefix: globs(), one("prefix", small_string().prop_map(Value::String));
    sound_regex_regex: regexes(), regexes();
    sound_len_len: lens(), lens();
    sound_each_each: each(), each();
    sound_fields_fields: fields(), fields();
    sound_any_of_leaf: any_of(), leaf();
    sound_leaf_any_of: leaf(), any_of();
    sound_any_of_any_of: any_of(), any_of();
    sound_all_of_all_of: all_of(), all_of();
    sound_leaf_all_of: leaf(), all_of();
}

/// A parent set and a child set for `key`: in most draws the child is derived from the parent
/// (a superset for `not_in`, a subset for `subset_of`, plus possibly other scalars, so that both
/// covered and uncovered pairs come up), otherwise drawn on its own. Drawing both sets
/// independently made covered pairs rare, and most of the test's time went to rejected draws.
fn set_pair(key: &'static str) -> impl Strategy<Value = (Value, Value)> {
    let set = || prop::collection::vec(scalar(), 1..4);
    (
        set(),
        prop::collection::vec(scalar(), 0..3),
        prop::collection::vec(any::<bool>(), 4),
        0u8..4,
        set(),
    )
        .prop_map(move |(parent, extra, keep, how, other)| {
            let child: Vec<Value> = match how {
                0 => other,
                _ if key == "not_in" => parent.iter().cloned().chain(extra).collect(),
                _ => {
                    let mut kept: Vec<Value> = parent
                        .iter()
                        .zip(&keep)
                        .filter(|(_, k)| **k)
                        .map(|(v, _)| v.clone())
                        .collect();
                    if kept.is_empty() || how == 1 {
                        kept.extend(extra.into_iter().take(1));
                    }
                    if kept.is_empty() {
                        kept.push(parent[0].clone());
                    }
                    kept
                }
            };
            (json!({ key: parent }), json!({ key: child }))
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sound_not_in_not_in((parent, child) in set_pair("not_in"), values in values()) {
        sound(&parent, &child, &values)?;
    }

    #[test]
    fn sound_subset_of_subset_of((parent, child) in set_pair("subset_of"), values in values()) {
        sound(&parent, &child, &values)?;
    }
}

/// The converse spot check: for generated pairs the rules do not cover, look for a witness (a
/// value the child allows and the parent refuses) among generated values. The rules are sound,
/// not complete, so a pair without a witness may be a true inclusion the rules miss: those are
/// reported (with `--nocapture`), not failed; the test fails only if witnesses become rare.
#[test]
fn uncovered_pairs_are_reported_with_a_witness_or_without() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut uncovered, mut witnessed) = (0u32, 0u32);
    let mut without = Vec::new();
    let kinds = prop_oneof![leaf(), each(), fields(), any_of(), all_of()];
    let probes = values();
    for _ in 0..600 {
        let p = kinds.new_tree(&mut runner).unwrap().current();
        let c = kinds.new_tree(&mut runner).unwrap().current();
        let (Some(pl), Some(cl)) = (parsed(&p), parsed(&c)) else {
            continue;
        };
        if pl.covers(&cl) {
            continue;
        }
        uncovered += 1;
        let mut vs = probes.new_tree(&mut runner).unwrap().current();
        vs.extend(probes.new_tree(&mut runner).unwrap().current());
        let found = vs.iter().any(|v| {
            let a = to_arg(v);
            cl.allows(Some(&a)) && !pl.allows(Some(&a))
        }) || (cl.allows(None) && !pl.allows(None));
        if found {
            witnessed += 1;
        } else {
            without.push(format!("{p} / {c}"));
        }
    }
    eprintln!(
        "uncovered pairs: {uncovered}, with a witness: {witnessed}, without (first 10): {:#?}",
        without.iter().take(10).collect::<Vec<_>>()
    );
    assert!(
        uncovered > 100 && witnessed * 4 >= uncovered,
        "{witnessed} of {uncovered}"
    );
}
