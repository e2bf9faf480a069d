//! `RulePolicy`: risk tiers (each requirement allowed in one context, denied in another),
//! rules, the example policy file, policy versions with a revocation cut-off, and load errors
//! with line numbers.

use super::scenario::*;
use crate::common::*;
use agent_handoff::policy::ChainScopePolicy;
use agent_handoff::policy::SharedRulePolicy;
use agent_handoff::*;
use std::time::Duration;

const VERSION: &str = "2027-01-15.1";

fn example_policy() -> RulePolicy {
    RulePolicy::from_file(example("policy.toml")).unwrap()
}

// ---------------------------------------------------------------- tier requirements

#[test]
fn environment_allow_list() {
    let s = Scenario::new();
    let env = s.pay(&[s.pay_grant(&s.approvals, 300)], 30);
    let p = example_policy();
    s.assert_allowed(
        s.verify(p.clone(), &s.w.payments, &env, &ctx(Some("prod"))),
        "executor-pays",
    );
    s.assert_denied(
        s.verify(p.clone(), &s.w.payments, &env, &ctx(Some("dev"))),
        "tier:high:environment",
        VERSION,
    );
    // A missing environment fails the allow-list: fail closed.
    s.assert_denied(
        s.verify(p, &s.w.payments, &env, &ctx(None)),
        "tier:high:environment",
        VERSION,
    );
}

#[test]
fn step_up_approval() {
    let s = Scenario::new();
    // Granted straight by the orchestrator: valid, but no approver in the chain.
    let env = s.pay(&[s.pay_grant(&s.w.orchestrator, 300)], 30);
    let p = example_policy();
    s.assert_allowed(
        s.verify(p.clone(), &s.w.payments, &env, &ctx(Some("staging"))),
        "executor-pays",
    );
    s.assert_denied(
        s.verify(p.clone(), &s.w.payments, &env, &ctx(Some("prod"))),
        "tier:high:step-up",
        VERSION,
    );
    // The same payment granted by the approval service passes in prod.
    let approved = s.pay(&[s.pay_grant(&s.approvals, 300)], 30);
    s.assert_allowed(
        s.verify(p, &s.w.payments, &approved, &ctx(Some("prod"))),
        "executor-pays",
    );
}

#[test]
fn no_redelegated_authority() {
    let s = Scenario::new();
    let env = s.pay(&s.redelegated_pay_chain(300), 30);
    let p = example_policy();
    s.assert_allowed(
        s.verify(p.clone(), &s.w.payments, &env, &ctx(Some("staging"))),
        "executor-pays",
    );
    s.assert_denied(
        s.verify(p, &s.w.payments, &env, &ctx(Some("prod"))),
        "tier:high:chain-depth",
        VERSION,
    );
}

#[test]
fn maximum_token_lifetime() {
    let s = Scenario::new();
    let env = s.pay(&[s.pay_grant(&s.approvals, 600)], 30);
    let p = example_policy();
    s.assert_allowed(
        s.verify(p.clone(), &s.w.payments, &env, &ctx(Some("staging"))),
        "executor-pays",
    );
    s.assert_denied(
        s.verify(p, &s.w.payments, &env, &ctx(Some("prod"))),
        "tier:high:token-lifetime",
        VERSION,
    );
}

#[test]
fn maximum_envelope_lifetime() {
    let s = Scenario::new();
    let env = s.pay(&[s.pay_grant(&s.approvals, 300)], 60);
    let p = example_policy();
    s.assert_allowed(
        s.verify(p.clone(), &s.w.payments, &env, &ctx(Some("staging"))),
        "executor-pays",
    );
    s.assert_denied(
        s.verify(p, &s.w.payments, &env, &ctx(Some("prod"))),
        "tier:high:envelope-lifetime",
        VERSION,
    );
}

#[test]
fn low_risk_reads_have_no_tier_requirements() {
    let s = Scenario::new();
    let p = example_policy();
    assert_eq!(p.tier_of("tickets.read"), Some("low"));
    assert_eq!(p.tier_of("payments.execute"), Some("high"));
    // A 10-minute, re-delegated grant, no environment: fine for a read.
    let grant = s.w.grant();
    let sub = s.w.sub_grant(&grant);
    let env = HandoffEnvelope::builder(&s.w.planner.identity)
        .to(s.w.executor.id())
        .intent("tickets.read", "project/alpha/7")
        .unwrap()
        .payload(PAYLOAD)
        .chain([&grant, &sub])
        .issued_at(s.w.now())
        .seal()
        .unwrap();
    s.assert_allowed(
        s.verify(p, &s.w.executor, &env, &ctx(None)),
        "planner-asks-executor",
    );
}

// ---------------------------------------------------------------- rules

#[test]
fn planner_may_ask_the_executor_but_not_use_its_rights() {
    let s = Scenario::new();
    let w = &s.w;
    let p = example_policy();
    let grant = w.grant();
    // Asking for work: allowed.
    s.assert_allowed(
        s.verify(
            p.clone(),
            &w.executor,
            &w.request(std::slice::from_ref(&grant)),
            &ctx(Some("prod")),
        ),
        "planner-asks-executor",
    );
    // Paying is the executor's right. The planner's own chain grants payments, so every
    // chain check passes; the policy refuses.
    let pays = s.pay_from(&w.planner, std::slice::from_ref(&grant), 30);
    s.assert_denied(
        s.verify(p.clone(), &w.payments, &pays, &ctx(Some("staging"))),
        "planner-no-direct-payments",
        VERSION,
    );
    // The same envelope under the default policy: the chain alone would have allowed it.
    s.verify(ChainScopePolicy, &w.payments, &pays, &ctx(Some("staging")))
        .unwrap();
    // Nor may it ask the executor to pay on the planner's authority: no rule allows it.
    let ask_to_pay = HandoffEnvelope::builder(&w.planner.identity)
        .to(w.executor.id())
        .intent("payments.execute", "account/ops/9")
        .unwrap()
        .arg("amount", 80)
        .payload(PAYLOAD)
        .chain([&grant])
        .issued_at(w.now())
        .seal()
        .unwrap();
    s.assert_denied(
        s.verify(p.clone(), &w.executor, &ask_to_pay, &ctx(Some("staging"))),
        "default-deny",
        VERSION,
    );
    // The executor itself, with an approved grant: allowed.
    s.assert_allowed(
        s.verify(
            p,
            &w.payments,
            &s.pay(&[s.pay_grant(&s.approvals, 300)], 30),
            &ctx(Some("prod")),
        ),
        "executor-pays",
    );
}

#[test]
fn example_scenario_table() {
    let s = Scenario::new();
    let p = example_policy();
    for case in cases(&s) {
        let result = s.verify(
            p.clone(),
            case.recipient(&s),
            &case.envelope,
            &ctx(case.environment),
        );
        match case.expected {
            Ok(rule) => {
                let h = result.unwrap_or_else(|r| panic!("{}: {r}", case.name));
                assert_eq!(h.policy_rule(), rule, "{}", case.name);
                assert_eq!(h.policy_version(), Some(VERSION), "{}", case.name);
            }
            Err(rule) => {
                let r = result
                    .err()
                    .unwrap_or_else(|| panic!("{}: allowed", case.name));
                assert_eq!(r.reason(), Reason::PolicyDenied, "{}: {r}", case.name);
                assert_eq!(
                    s.w.audit.records().last().unwrap().policy(),
                    Some(rule),
                    "{}",
                    case.name
                );
            }
        }
    }
}

#[test]
fn first_matching_rule_decides_and_context_conditions_match() {
    let p: RulePolicy = r#"
version = "v3"
[tiers.low]
actions = ["tickets.read"]

[[rule]]
name = "no-tenant-b"
effect = "deny"
context = { tenant = "b" }

[[rule]]
name = "reads-for-known-tenants"
effect = "allow"
actions = ["tickets.read"]
resources = ["project/alpha/*"]
mode = "request"
senders = ["spiffe://acme.example/agents/*"]
recipients = ["spiffe://acme.example/agents/executor"]
tiers = ["low"]
context = { tenant = ["a", "b"], priority = 2, audited = true }
"#
    .parse()
    .unwrap();
    let s = Scenario::new();
    let env = s.w.request(&[s.w.grant()]);
    let good = RequestContext::new()
        .with("tenant", "a")
        .with("priority", 2)
        .with("audited", true);
    s.assert_allowed(
        s.verify(p.clone(), &s.w.executor, &env, &good),
        "reads-for-known-tenants",
    );
    // The deny rule comes first.
    s.assert_denied(
        s.verify(
            p.clone(),
            &s.w.executor,
            &env,
            &good.clone().with("tenant", "b"),
        ),
        "no-tenant-b",
        "v3",
    );
    // Each condition is needed: a wrong value, a wrong type, a missing attribute.
    for bad in [
        good.clone().with("tenant", "c"),
        good.clone().with("priority", "2"),
        good.clone().with("audited", false),
        RequestContext::new()
            .with("tenant", "a")
            .with("priority", 2),
    ] {
        s.assert_denied(
            s.verify(p.clone(), &s.w.executor, &env, &bad),
            "default-deny",
            "v3",
        );
    }
}

#[test]
fn an_empty_policy_denies_everything() {
    let s = Scenario::new();
    let p: RulePolicy = "version = \"empty\"".parse().unwrap();
    s.assert_denied(
        s.verify(
            p,
            &s.w.executor,
            &s.w.request(&[s.w.grant()]),
            &ctx(Some("prod")),
        ),
        "default-deny",
        "empty",
    );
}

#[test]
fn custom_tiers_override_the_built_in_ones() {
    let p: RulePolicy = r#"
version = "v1"
[tiers.medium]
actions = ["tickets.*"]
environments = ["prod"]

[[rule]]
name = "all"
effect = "allow"
"#
    .parse()
    .unwrap();
    assert_eq!(p.tier_of("tickets.read"), Some("medium"));
    assert_eq!(
        p.tier_of("tickets.close"),
        Some("high"),
        "longer prefix wins"
    );
    let s = Scenario::new();
    let env = s.w.request(&[s.w.grant()]);
    s.assert_allowed(
        s.verify(p.clone(), &s.w.executor, &env, &ctx(Some("prod"))),
        "all",
    );
    s.assert_denied(
        s.verify(p, &s.w.executor, &env, &ctx(Some("staging"))),
        "tier:medium:environment",
        "v1",
    );
}

// ---------------------------------------------------------------- versions and revocation

#[test]
fn a_policy_change_revokes_grants_minted_under_the_old_policy() {
    let s = Scenario::new();
    let w = &s.w;
    let v1 = example_policy();
    assert!(v1.revoke_on_change());
    let shared = SharedRulePolicy::new(v1.clone());
    let verifier = w
        .verifier_builder(&w.executor)
        .policy(shared.clone())
        .build()
        .unwrap();

    let old_grant = w.grant();
    let h = verifier
        .verify(
            w.request(std::slice::from_ref(&old_grant)).as_str(),
            PAYLOAD,
            &ctx(Some("prod")),
        )
        .unwrap();
    assert_eq!(h.policy_version(), Some(VERSION));

    // A minute later the policy changes.
    w.clock.advance(Duration::from_secs(60));
    let v2: RulePolicy = std::fs::read_to_string(example("policy.toml"))
        .unwrap()
        .replace(VERSION, "2027-01-15.2")
        .parse()
        .unwrap();
    let cutoff = shared.replace(v2, &w.revocations, w.now()).unwrap();
    assert_eq!(cutoff, Some(w.now()));
    assert_eq!(shared.current().unwrap().version(), "2027-01-15.2");

    // The old grant, even in a fresh envelope, no longer verifies.
    let fresh_envelope = HandoffEnvelope::builder(&w.planner.identity)
        .to(w.executor.id())
        .intent("tickets.read", "project/alpha/5")
        .unwrap()
        .payload(PAYLOAD)
        .chain([&old_grant])
        .issued_at(w.now())
        .seal()
        .unwrap();
    let r = assert_reason(
        verifier.verify(fresh_envelope.as_str(), PAYLOAD, &ctx(Some("prod"))),
        Reason::Revoked,
    );
    assert!(r.detail().contains("cut-off"), "{r}");

    // A grant minted under the new policy does, and the new version is recorded.
    let new_grant = w.grant();
    let h = verifier
        .verify(
            w.request(&[new_grant]).as_str(),
            PAYLOAD,
            &ctx(Some("prod")),
        )
        .unwrap();
    assert_eq!(h.policy_version(), Some("2027-01-15.2"));
    assert!(w
        .audit
        .records()
        .last()
        .unwrap()
        .to_json()
        .contains(r#""policy_version":"2027-01-15.2""#));
}

#[test]
fn no_cut_off_without_a_version_change_or_without_revoke_on_change() {
    let w = World::new();
    let v1 = example_policy();
    // First activation, same version: nothing.
    assert_eq!(v1.activate(None, &w.revocations, w.now()).unwrap(), None);
    assert_eq!(
        v1.activate(Some(VERSION), &w.revocations, w.now()).unwrap(),
        None
    );
    // A new version that does not ask for it: nothing.
    let quiet: RulePolicy = "version = \"v2\"\n".parse().unwrap();
    assert!(!quiet.revoke_on_change());
    let shared = SharedRulePolicy::new(v1);
    assert_eq!(
        shared.replace(quiet, &w.revocations, w.now()).unwrap(),
        None
    );
    // Old grants still verify.
    let grant = w.grant();
    w.clock.advance(Duration::from_secs(5));
    let verifier = w.verifier(&w.executor);
    verifier
        .verify(
            w.request(&[grant]).as_str(),
            PAYLOAD,
            &RequestContext::new(),
        )
        .unwrap();
}

// ---------------------------------------------------------------- load errors

#[track_caller]
fn load_error(src: &str, line: usize, says: &str) {
    let err = src.parse::<RulePolicy>().expect_err("should not load");
    let text = err.to_string();
    assert!(matches!(err, Error::Policy { .. }), "{text}");
    assert!(
        text.contains(&format!("line {line}: ")),
        "expected line {line} in `{text}`"
    );
    assert!(text.contains(says), "expected `{says}` in `{text}`");
}

#[test]
fn malformed_policies_name_the_line_and_the_problem() {
    let head = "version = \"v1\"\n\n[[rule]]\nname = \"r\"\neffect = \"allow\"\n";
    // TOML syntax.
    load_error("version = \"v1\"\n[[rule]\n", 2, "expected `]`");
    load_error("version = \"v1\"\nname = \n", 2, "");
    // Structure.
    load_error(
        &format!("{head}efect = \"deny\"\n"),
        6,
        "unknown field `efect`",
    );
    load_error(
        "version = \"v1\"\n[[rule]]\nname = \"x\"\neffect = \"maybe\"\n",
        4,
        "unknown variant `maybe`",
    );
    load_error(
        "version = \"v1\"\n\n[tiers.high]\nmax_token_lifetime = -5\n",
        4,
        "`-5`",
    );
    load_error(
        "version = \"v1\"\n[[rule]]\nname = \"x\"\neffect = \"allow\"\nmode = \"push\"\n",
        5,
        "`request` or `delegation`",
    );
    load_error(
        "# no version\n[[rule]]\nname = \"x\"\neffect = \"allow\"\n",
        1,
        "missing field `version`",
    );
    // Values.
    load_error(
        &format!("{head}actions = [\"tickets.read\", \"Tickets.*\"]\n"),
        6,
        "invalid action pattern",
    );
    load_error(
        &format!("{head}resources = [\"project alpha\"]\n"),
        6,
        "invalid resource pattern",
    );
    load_error(
        &format!("{head}senders = [\"https://acme.example/x\"]\n"),
        6,
        "agent id pattern",
    );
    load_error(
        &format!("{head}tiers = [\"extreme\"]\n"),
        6,
        "unknown tier `extreme`",
    );
    load_error(
        &format!("{head}context = {{ weight = 1.5 }}\n"),
        6,
        "context condition `weight`",
    );
    load_error(
        &format!("{head}context = {{ tenant = [] }}\n"),
        6,
        "empty array",
    );
    load_error(&format!("{head}actions = []\n"), 6, "`actions` is empty");
    load_error(
        &format!("{head}\n[[rule]]\nname = \"r\"\neffect = \"deny\"\n"),
        8,
        "used twice",
    );
    load_error(
        "version = \"v1\"\n[[rule]]\nname = \"tier:high:x\"\neffect = \"deny\"\n",
        3,
        "reserved",
    );
    load_error(
        "version = \"v1\"\n[[rule]]\nname = \"default-deny\"\neffect = \"deny\"\n",
        3,
        "reserved",
    );
    load_error("version = \"\"\n", 1, "`version`");
    load_error(
        "version = \"v1\"\n\n[tiers.critical]\nenvironments = [\"prod\"]\n",
        3,
        "needs `actions",
    );
    load_error(
        "version = \"v1\"\n[tiers.Bad]\nactions = [\"x.*\"]\n",
        2,
        "tier name",
    );
    load_error(
        "version = \"v1\"\n[tiers.extra]\nactions = [\"payments.*\"]\n",
        2,
        "in both tier",
    );
    load_error(
        "version = \"v1\"\n[tiers.high.env.prod]\nstep_up_approvers = [\"nobody\"]\n",
        3,
        "agent id pattern",
    );
}

#[test]
fn file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "version = \"v1\"\n\n[[rule]]\nname = 7\n").unwrap();
    let text = RulePolicy::from_file(&path).unwrap_err().to_string();
    assert!(text.contains("bad.toml"), "{text}");
    assert!(text.contains("line 4: "), "{text}");
    let missing = RulePolicy::from_file(dir.path().join("missing.toml")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing}");
}

#[test]
fn every_truncation_of_the_example_loads_or_fails_with_a_line() {
    let text = std::fs::read_to_string(example("policy.toml")).unwrap();
    let mut failures = 0;
    for (at, _) in text.char_indices() {
        match text[..at].parse::<RulePolicy>() {
            Ok(_) => {}
            Err(Error::Policy { problem, .. }) => {
                failures += 1;
                assert!(problem.starts_with("line "), "cut at {at}: {problem}");
            }
            Err(other) => panic!("cut at {at}: unexpected error {other}"),
        }
    }
    assert!(failures > 0);
}

// ---------------------------------------------------------------- patterns and defaults

/// orchestrator → planner: every action on every resource; the planner asks the executor to
/// perform `action`, so the holder of `*` picks the action name.
fn star_request(s: &Scenario, action: &str) -> HandoffEnvelope {
    let root = DelegationToken::root(&s.w.orchestrator.identity)
        .delegate_to(&s.w.planner.public())
        .task("task-42".parse().unwrap())
        .allow("*", "*")
        .unwrap()
        .depth(1)
        .ttl(Duration::from_secs(600))
        .issued_at(s.w.now())
        .sign()
        .unwrap();
    HandoffEnvelope::builder(&s.w.planner.identity)
        .to(s.w.executor.id())
        .intent(action, "account/ops/9")
        .unwrap()
        .payload(PAYLOAD)
        .chain(&[root])
        .issued_at(s.w.now())
        .seal()
        .unwrap()
}

#[test]
fn x_star_classifies_and_catches_x_itself() {
    let p: RulePolicy = r#"
version = "p1"
[tiers.high]
environments = ["prod"]

[[rule]]
name = "all"
effect = "allow"
"#
    .parse()
    .unwrap();
    for action in ["payments", "deploy", "secrets", "payments.execute"] {
        assert_eq!(p.tier_of(action), Some("high"), "{action}");
    }
    // `payments` is not a way around the high tier's requirements.
    let s = Scenario::new();
    let env = star_request(&s, "payments");
    s.assert_denied(
        s.verify(p.clone(), &s.w.executor, &env, &ctx(Some("dev"))),
        "tier:high:environment",
        "p1",
    );
    s.assert_allowed(s.verify(p, &s.w.executor, &env, &ctx(Some("prod"))), "all");

    // A deny rule on `payments.*` catches `payments`; `paymentsx` is another action.
    let p: RulePolicy = r#"
version = "p2"
default_tier = "low"
[tiers.low]
actions = ["tickets.read"]

[[rule]]
name = "no-payments"
effect = "deny"
actions = ["payments.*"]

[[rule]]
name = "all"
effect = "allow"
"#
    .parse()
    .unwrap();
    s.assert_denied(
        s.verify(
            p.clone(),
            &s.w.executor,
            &star_request(&s, "payments"),
            &ctx(None),
        ),
        "no-payments",
        "p2",
    );
    s.assert_allowed(
        s.verify(p, &s.w.executor, &star_request(&s, "paymentsx"), &ctx(None)),
        "all",
    );
}

#[test]
fn an_unclassified_action_gets_the_default_tier() {
    let strict: RulePolicy = r#"
version = "d1"
[tiers.high]
environments = ["prod"]

[[rule]]
name = "all"
effect = "allow"
"#
    .parse()
    .unwrap();
    // No pattern classifies `frobnicate`: the default tier is `high`, the strictest.
    assert_eq!(strict.default_tier(), "high");
    assert_eq!(strict.tier_of("frobnicate"), Some("high"));
    let s = Scenario::new();
    let env = star_request(&s, "frobnicate");
    s.assert_denied(
        s.verify(strict, &s.w.executor, &env, &ctx(None)),
        "tier:high:environment",
        "d1",
    );

    // `default_tier` chooses another tier for unclassified actions.
    let lenient: RulePolicy = r#"
version = "d2"
default_tier = "low"
[tiers.high]
environments = ["prod"]

[[rule]]
name = "all"
effect = "allow"
"#
    .parse()
    .unwrap();
    assert_eq!(lenient.tier_of("frobnicate"), Some("low"));
    assert_eq!(lenient.tier_of("payments"), Some("high"));
    s.assert_allowed(s.verify(lenient, &s.w.executor, &env, &ctx(None)), "all");

    // An unknown default tier is refused with its line.
    let err = "version = \"d3\"\ndefault_tier = \"medium\"\n"
        .parse::<RulePolicy>()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("line 2: `default_tier` names unknown tier `medium`"),
        "{text}"
    );
}

#[test]
fn per_environment_requirements_deny_a_missing_environment() {
    // No `environments` allow-list: only per-environment requirements.
    let p: RulePolicy = r#"
version = "e1"
[tiers.high.env.prod]
step_up_approvers = ["spiffe://acme.example/approvals"]

[[rule]]
name = "all"
effect = "allow"
"#
    .parse()
    .unwrap();
    let s = Scenario::new();
    // A root grant by the orchestrator: not a step-up approval.
    let env = s.pay(&[s.pay_grant(&s.w.orchestrator, 300)], 30);
    // Without an environment the prod step-up cannot be skipped: deny.
    s.assert_denied(
        s.verify(p.clone(), &s.w.payments, &env, &ctx(None)),
        "tier:high:environment",
        "e1",
    );
    s.assert_denied(
        s.verify(p.clone(), &s.w.payments, &env, &ctx(Some("prod"))),
        "tier:high:step-up",
        "e1",
    );
    // Another named environment gets the tier's base requirements (none here).
    s.assert_allowed(
        s.verify(p.clone(), &s.w.payments, &env, &ctx(Some("dev"))),
        "all",
    );
    // With the approval, prod allows.
    let approved = s.pay(&[s.pay_grant(&s.approvals, 300)], 30);
    s.assert_allowed(
        s.verify(p, &s.w.payments, &approved, &ctx(Some("prod"))),
        "all",
    );
}

#[test]
fn warnings_name_shadowed_rules_and_stay_bounded() {
    let p: RulePolicy = r#"
version = "w1"
[[rule]]
name = "no-payments"
effect = "deny"
actions = ["payments.*"]

[[rule]]
name = "bare-payments"
effect = "allow"
actions = ["payments"]
context = { environment = "prod" }

[[rule]]
name = "tenant-a"
effect = "allow"
context = { tenant = ["a", "b"] }

[[rule]]
name = "tenant-a-reads"
effect = "allow"
actions = ["tickets.read"]
context = { tenant = "a" }

[[rule]]
name = "tenant-c-reads"
effect = "allow"
actions = ["tickets.read"]
context = { tenant = "c" }
"#
    .parse()
    .unwrap();
    let w: Vec<(usize, &str)> = p
        .warnings()
        .iter()
        .map(|w| (w.line, w.message.as_str()))
        .collect();
    assert_eq!(w.len(), 2, "{w:?}");
    // `payments.*` also matches `payments`, so the later rule can never decide.
    assert_eq!(w[0].0, 9);
    assert!(
        w[0].1.starts_with(
            "rule `bare-payments` can never match: the earlier rule `no-payments` (line 4)"
        ),
        "{w:?}"
    );
    assert_eq!(w[1].0, 20);
    assert!(
        w[1].1.starts_with("rule `tenant-a-reads` can never match"),
        "{w:?}"
    );

    // Many warnings: at most 100, then one notice that the check stopped.
    let mut text = String::from("version = \"many\"\n");
    for i in 0..500 {
        text.push_str(&format!("[[rule]]\nname = \"r{i}\"\neffect = \"deny\"\n"));
    }
    let p: RulePolicy = text.parse().unwrap();
    assert_eq!(p.warnings().len(), 101);
    let last = p.warnings().last().unwrap();
    assert_eq!(last.line, 0);
    assert!(
        last.message.starts_with("the check stopped early"),
        "{last}"
    );
}
