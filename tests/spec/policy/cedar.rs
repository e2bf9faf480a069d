//! `CedarPolicy` (feature `cedar`): the example Cedar policy set decides the example scenario
//! like the example rule file; determining policy ids reach the audit record; errors deny.

use super::scenario::*;
use crate::common::*;
use agent_handoff::policy::cedar::CedarPolicy;
use agent_handoff::*;

fn example_cedar() -> CedarPolicy {
    CedarPolicy::from_file(example("policy.cedar")).unwrap()
}

#[test]
fn cedar_and_the_rule_engine_agree_on_the_example_scenario() {
    let s = Scenario::new();
    let rules = RulePolicy::from_file(example("policy.toml")).unwrap();
    let table = cases(&s);
    assert!(table.len() >= 15);
    for case in table {
        let context = ctx(case.environment);
        let me = case.recipient(&s);
        let by_rules = s.verify(rules.clone(), me, &case.envelope, &context);
        let rules_record = s.w.audit.records().last().unwrap().clone();
        let by_cedar = s.verify(example_cedar(), me, &case.envelope, &context);
        let cedar_record = s.w.audit.records().last().unwrap().clone();
        match case.expected {
            Ok(rule) => {
                let r = by_rules.unwrap_or_else(|e| panic!("{}: rules: {e}", case.name));
                let c = by_cedar.unwrap_or_else(|e| panic!("{}: cedar: {e}", case.name));
                assert_eq!(r.policy_rule(), rule, "{}", case.name);
                assert_eq!(c.policy_rule(), rule, "{}", case.name);
            }
            Err(rule) => {
                let r = by_rules
                    .err()
                    .unwrap_or_else(|| panic!("{}: rules allowed", case.name));
                let c = by_cedar
                    .err()
                    .unwrap_or_else(|| panic!("{}: cedar allowed", case.name));
                assert_eq!(r.reason(), Reason::PolicyDenied, "{}: {r}", case.name);
                assert_eq!(c.reason(), Reason::PolicyDenied, "{}: {c}", case.name);
                assert_eq!(rules_record.policy(), Some(rule), "{}", case.name);
                // Cedar names every forbid that applied; the rule engine the first one.
                let named = cedar_record.policy().unwrap_or_default();
                assert!(
                    named.split(',').any(|n| n == rule),
                    "{}: cedar named `{named}`, expected `{rule}` among them",
                    case.name
                );
            }
        }
    }
}

#[test]
fn cedar_denial_names_the_policy_in_the_audit_record() {
    let s = Scenario::new();
    let unapproved = s.pay(&[s.pay_grant(&s.w.orchestrator, 300)], 30);
    let cedar = example_cedar().with_version("cedar-v1");
    s.assert_allowed(
        s.verify(
            example_cedar(),
            &s.w.payments,
            &unapproved,
            &ctx(Some("staging")),
        ),
        "executor-pays",
    );
    s.assert_denied(
        s.verify(cedar, &s.w.payments, &unapproved, &ctx(Some("prod"))),
        "tier:high:step-up",
        "cedar-v1",
    );
}

#[test]
fn no_determining_policy_is_default_deny() {
    let s = Scenario::new();
    let env = s.w.request(&[s.w.grant()]);
    let p: CedarPolicy = r#"
        @id("only-deploys")
        permit(principal, action == Action::"deploy.run", resource);
    "#
    .parse()
    .unwrap();
    let version = p.version().to_owned();
    assert!(version.starts_with("sha256:"), "{version}");
    s.assert_denied(
        s.verify(p, &s.w.executor, &env, &RequestContext::new()),
        "default-deny",
        &version,
    );
}

#[test]
fn policies_without_an_id_are_named_by_cedar() {
    let s = Scenario::new();
    let env = s.w.request(&[s.w.grant()]);
    let p: CedarPolicy = "permit(principal, action, resource);".parse().unwrap();
    s.assert_allowed(
        s.verify(p, &s.w.executor, &env, &RequestContext::new()),
        "policy0",
    );
}

#[test]
fn context_carries_chain_facts_and_caller_attributes() {
    let s = Scenario::new();
    let grant = s.w.grant();
    let sub = s.w.sub_grant(&grant);
    let env = HandoffEnvelope::builder(&s.w.planner.identity)
        .to(s.w.executor.id())
        .intent("tickets.read", "project/alpha/7")
        .unwrap()
        .arg("priority", 2)
        .payload(PAYLOAD)
        .chain([&grant, &sub])
        .issued_at(s.w.now())
        .seal()
        .unwrap();
    let src = r#"
        @id("facts")
        permit(
          principal == Agent::"spiffe://acme.example/agents/planner",
          action == Action::"tickets.read",
          resource == Resource::"project/alpha/7"
        ) when {
          context.sender like "spiffe://acme.example/agents/*" &&
          context.recipient == "spiffe://acme.example/agents/executor" &&
          context.action == "tickets.read" && context.resource == "project/alpha/7" &&
          context.mode == "delegation" &&
          context.chain_length == 2 && context.chain_depth == 1 &&
          context.remaining_depth == 1 &&
          context.issuers.contains("spiffe://acme.example/orchestrator") &&
          context.issuers.contains("spiffe://acme.example/agents/planner") &&
          context.covering_issuers.containsAll(context.issuers) &&
          context.max_token_lifetime == 600 &&
          context.min_remaining_lifetime == 600 &&
          context.envelope_lifetime == 60 &&
          context.args.priority == 2 &&
          context.tenant == "acme" && context.tier == 3
        };
    "#;
    let p = || src.parse::<CedarPolicy>().unwrap();
    let version = p().version().to_owned();
    let good = RequestContext::new().with("tenant", "acme").with("tier", 3);
    s.assert_allowed(s.verify(p(), &s.w.executor, &env, &good), "facts");
    // A different caller attribute: the permit no longer applies.
    s.assert_denied(
        s.verify(p(), &s.w.executor, &env, &good.clone().with("tier", 4)),
        "default-deny",
        &version,
    );
    // The same intent as a request on the planner's one-link grant: mode and chain differ.
    let request = HandoffEnvelope::builder(&s.w.planner.identity)
        .to(s.w.executor.id())
        .intent("tickets.read", "project/alpha/7")
        .unwrap()
        .arg("priority", 2)
        .payload(PAYLOAD)
        .chain([&grant])
        .issued_at(s.w.now())
        .seal()
        .unwrap();
    s.assert_denied(
        s.verify(p(), &s.w.executor, &request, &good),
        "default-deny",
        &version,
    );
}

#[test]
fn evaluation_errors_deny_even_when_another_policy_permits() {
    let s = Scenario::new();
    let env = s.w.request(&[s.w.grant()]);
    // The forbid reads an attribute the caller did not provide: Cedar skips it and the
    // permit would win; the adapter denies instead.
    let p: CedarPolicy = r#"
        @id("allow-all") permit(principal, action, resource);
        @id("no-tenant-b") forbid(principal, action, resource) when { context.tenant == "b" };
    "#
    .parse()
    .unwrap();
    let version = p.version().to_owned();
    s.assert_denied(
        s.verify(p, &s.w.executor, &env, &RequestContext::new()),
        "cedar-error:no-tenant-b",
        &version,
    );
}

#[test]
fn context_cedar_cannot_represent_denies() {
    let s = Scenario::new();
    let env = s.w.request(&[s.w.grant()]);
    let p = || -> CedarPolicy {
        "@id(\"allow-all\") permit(principal, action, resource);"
            .parse()
            .unwrap()
    };
    let version = p().version().to_owned();
    s.assert_allowed(
        s.verify(
            p(),
            &s.w.executor,
            &env,
            &RequestContext::new().with("tenant", "a"),
        ),
        "allow-all",
    );
    // A caller attribute may not pose as a verified fact.
    for bad in [
        RequestContext::new().with("sender", "spiffe://acme.example/agents/executor"),
        RequestContext::new().with("chain_depth", 0),
        RequestContext::new().with("__entity", "x"),
        RequestContext::new().with("weight", ArgValue::Null),
    ] {
        s.assert_denied(
            s.verify(p(), &s.w.executor, &env, &bad),
            "cedar:invalid-context",
            &version,
        );
    }
}

#[test]
fn malformed_cedar_policies_name_the_line() {
    let err = "// first\n@id(\"a\")\npermit(principal, action, resource)\nwhen { context.x == };\n"
        .parse::<CedarPolicy>()
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 4: "), "{err}");
    let err = "@id(\"a\") permit(principal, action, resource);\n\n@id(\"a\") forbid(principal, action, resource);\n"
        .parse::<CedarPolicy>()
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 3: "), "{err}");
    assert!(err.contains("`a` is used twice"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.cedar");
    std::fs::write(&path, "permit(principal, action, resource) when {").unwrap();
    let err = CedarPolicy::from_file(&path).unwrap_err().to_string();
    assert!(err.contains("bad.cedar"), "{err}");
    assert!(err.contains("line 1: "), "{err}");
}

#[test]
fn every_truncation_of_the_example_loads_or_fails_without_panicking() {
    let text = std::fs::read_to_string(example("policy.cedar")).unwrap();
    let mut failures = 0;
    for (at, _) in text.char_indices().step_by(7) {
        match text[..at].parse::<CedarPolicy>() {
            Ok(_) => {}
            Err(Error::Policy { .. }) => failures += 1,
            Err(other) => panic!("cut at {at}: unexpected error {other}"),
        }
    }
    assert!(failures > 0);
}
