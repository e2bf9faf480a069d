//! The planner / executor / payments scenario of `examples/policies/`, shared by the rule
//! engine and Cedar tests: chains, envelopes, contexts, and an assertion on denials that
//! checks the rejection, its detail and the audit record.

use crate::common::*;
use agent_handoff::audit::Verdict;
use agent_handoff::*;
use std::time::Duration;

pub(crate) const APPROVALS: &str = "spiffe://acme.example/approvals";

pub(crate) fn example(name: &str) -> String {
    format!("{}/examples/policies/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The fixtures' world plus a human-supervised approval service, trusted as an authority.
pub(crate) struct Scenario {
    pub(crate) w: World,
    pub(crate) approvals: Agent,
}

pub(crate) fn ctx(environment: Option<&str>) -> RequestContext {
    match environment {
        Some(e) => RequestContext::new().with("environment", e),
        None => RequestContext::new(),
    }
}

impl Scenario {
    pub(crate) fn new() -> Scenario {
        let mut w = World::new();
        let approvals = Agent::new(APPROVALS, 8);
        w.bundle.add_authority(&approvals.public()).unwrap();
        Scenario { w, approvals }
    }

    /// A root grant from `issuer` (an authority) straight to the executor: pay up to 100
    /// from `account/ops/*`, no further delegation.
    pub(crate) fn pay_grant(&self, issuer: &Agent, ttl: u64) -> DelegationToken {
        DelegationToken::root(&issuer.identity)
            .delegate_to(&self.w.executor.public())
            .task("task-42".parse().unwrap())
            .grant(
                Capability::new("payments.execute", "account/ops/*")
                    .unwrap()
                    .max("amount", 100)
                    .unwrap(),
            )
            .depth(0)
            .ttl(Duration::from_secs(ttl))
            .issued_at(self.w.now())
            .sign()
            .unwrap()
    }

    /// approvals → planner → executor: approved, but re-delegated authority.
    pub(crate) fn redelegated_pay_chain(&self, ttl: u64) -> Vec<DelegationToken> {
        let root = DelegationToken::root(&self.approvals.identity)
            .delegate_to(&self.w.planner.public())
            .task("task-42".parse().unwrap())
            .grant(
                Capability::new("payments.execute", "account/ops/*")
                    .unwrap()
                    .max("amount", 500)
                    .unwrap(),
            )
            .depth(1)
            .ttl(Duration::from_secs(ttl))
            .issued_at(self.w.now())
            .sign()
            .unwrap();
        let sub = root
            .attenuate(&self.w.planner.identity)
            .delegate_to(&self.w.executor.public())
            .grant(
                Capability::new("payments.execute", "account/ops/*")
                    .unwrap()
                    .max("amount", 100)
                    .unwrap(),
            )
            .depth(0)
            .ttl(Duration::from_secs(ttl))
            .issued_at(self.w.now())
            .sign()
            .unwrap();
        vec![root, sub]
    }

    /// The executor asks the payments tool to pay 80 from `account/ops/9`.
    pub(crate) fn pay(&self, chain: &[DelegationToken], envelope_ttl: u64) -> HandoffEnvelope {
        self.pay_from(&self.w.executor, chain, envelope_ttl)
    }

    pub(crate) fn pay_from(
        &self,
        sender: &Agent,
        chain: &[DelegationToken],
        envelope_ttl: u64,
    ) -> HandoffEnvelope {
        HandoffEnvelope::builder(&sender.identity)
            .to(self.w.payments.id())
            .intent("payments.execute", "account/ops/9")
            .unwrap()
            .arg("amount", 80)
            .payload(PAYLOAD)
            .chain(chain)
            .ttl(Duration::from_secs(envelope_ttl))
            .issued_at(self.w.now())
            .seal()
            .unwrap()
    }

    /// A fresh verifier for `me` (own replay cache), so one envelope can be tried in
    /// several contexts.
    pub(crate) fn verify(
        &self,
        policy: impl Policy + 'static,
        me: &Agent,
        envelope: &HandoffEnvelope,
        context: &RequestContext,
    ) -> Result<VerifiedHandoff, Rejection> {
        self.w
            .verifier_builder(me)
            .policy(policy)
            .build()
            .unwrap()
            .verify(envelope.as_str(), PAYLOAD, context)
    }

    /// Asserts `policy_denied` by `rule`: in the rejection's detail and in the last audit
    /// record, with the policy version.
    #[track_caller]
    pub(crate) fn assert_denied(
        &self,
        result: Result<VerifiedHandoff, Rejection>,
        rule: &str,
        version: &str,
    ) {
        let rejection = assert_reason(result, Reason::PolicyDenied);
        assert!(
            rejection.detail().contains(&format!("`{rule}`")),
            "detail `{}` does not name rule `{rule}`",
            rejection.detail()
        );
        let records = self.w.audit.records();
        let last = records.last().expect("an audit record");
        assert_eq!(last.decision(), Verdict::Deny);
        assert_eq!(last.reason(), Some(Reason::PolicyDenied));
        assert_eq!(last.policy(), Some(rule));
        let json = last.to_json();
        assert!(
            json.contains(&format!(r#""policy_version":"{version}""#)),
            "audit record lacks version {version}: {json}"
        );
    }

    /// Asserts acceptance by `rule`, and the audit record naming it.
    #[track_caller]
    pub(crate) fn assert_allowed(&self, result: Result<VerifiedHandoff, Rejection>, rule: &str) {
        let h = match result {
            Ok(h) => h,
            Err(r) => panic!("expected allow by `{rule}`, got {r}"),
        };
        assert_eq!(h.policy_rule(), rule);
        let records = self.w.audit.records();
        let last = records.last().expect("an audit record");
        assert_eq!(last.decision(), Verdict::Allow);
        assert_eq!(last.policy(), Some(rule));
    }
}

/// One row of the example scenario: who sends what to whom in which environment.
pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) environment: Option<&'static str>,
    /// `Ok(rule)` or `Err(rule)`, as the rule engine decides.
    pub(crate) expected: Result<&'static str, &'static str>,
    pub(crate) envelope: HandoffEnvelope,
    pub(crate) recipient: &'static str,
}

/// The example scenario as a table, for both engines.
pub(crate) fn cases(s: &Scenario) -> Vec<Case> {
    let w = &s.w;
    let grant = w.grant();
    let sub = w.sub_grant(&grant);
    let approved = s.pay_grant(&s.approvals, 300);
    let unapproved = s.pay_grant(&w.orchestrator, 300);
    let long = s.pay_grant(&s.approvals, 600);
    let redelegated = s.redelegated_pay_chain(300);
    let ask = w.request(std::slice::from_ref(&grant));
    let delegate = HandoffEnvelope::builder(&w.planner.identity)
        .to(w.executor.id())
        .intent("tickets.read", "project/alpha/7")
        .unwrap()
        .payload(PAYLOAD)
        .chain([&grant, &sub])
        .issued_at(w.now())
        .seal()
        .unwrap();
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
    let planner_pays = s.pay_from(&w.planner, std::slice::from_ref(&grant), 30);
    let c = |name, environment, expected, envelope, recipient| Case {
        name,
        environment,
        expected,
        envelope,
        recipient,
    };
    vec![
        c(
            "planner asks executor to read a ticket",
            Some("prod"),
            Ok("planner-asks-executor"),
            ask.clone(),
            "executor",
        ),
        c(
            "planner asks executor, no environment",
            None,
            Ok("planner-asks-executor"),
            ask,
            "executor",
        ),
        c(
            "planner delegates ticket work",
            Some("prod"),
            Ok("planner-asks-executor"),
            delegate,
            "executor",
        ),
        c(
            "planner asks executor to pay",
            Some("staging"),
            Err("default-deny"),
            ask_to_pay,
            "executor",
        ),
        c(
            "planner pays directly",
            Some("staging"),
            Err("planner-no-direct-payments"),
            planner_pays,
            "payments",
        ),
        c(
            "approved payment in prod",
            Some("prod"),
            Ok("executor-pays"),
            s.pay(std::slice::from_ref(&approved), 30),
            "payments",
        ),
        c(
            "approved payment in staging",
            Some("staging"),
            Ok("executor-pays"),
            s.pay(std::slice::from_ref(&approved), 30),
            "payments",
        ),
        c(
            "payment in dev",
            Some("dev"),
            Err("tier:high:environment"),
            s.pay(std::slice::from_ref(&approved), 30),
            "payments",
        ),
        c(
            "payment without environment",
            None,
            Err("tier:high:environment"),
            s.pay(std::slice::from_ref(&approved), 30),
            "payments",
        ),
        c(
            "unapproved payment in staging",
            Some("staging"),
            Ok("executor-pays"),
            s.pay(std::slice::from_ref(&unapproved), 30),
            "payments",
        ),
        c(
            "unapproved payment in prod",
            Some("prod"),
            Err("tier:high:step-up"),
            s.pay(std::slice::from_ref(&unapproved), 30),
            "payments",
        ),
        c(
            "re-delegated payment in staging",
            Some("staging"),
            Ok("executor-pays"),
            s.pay(&redelegated, 30),
            "payments",
        ),
        c(
            "re-delegated payment in prod",
            Some("prod"),
            Err("tier:high:chain-depth"),
            s.pay(&redelegated, 30),
            "payments",
        ),
        c(
            "10-minute grant in staging",
            Some("staging"),
            Ok("executor-pays"),
            s.pay(std::slice::from_ref(&long), 30),
            "payments",
        ),
        c(
            "10-minute grant in prod",
            Some("prod"),
            Err("tier:high:token-lifetime"),
            s.pay(std::slice::from_ref(&long), 30),
            "payments",
        ),
        c(
            "60-second envelope in staging",
            Some("staging"),
            Ok("executor-pays"),
            s.pay(std::slice::from_ref(&approved), 60),
            "payments",
        ),
        c(
            "60-second envelope in prod",
            Some("prod"),
            Err("tier:high:envelope-lifetime"),
            s.pay(std::slice::from_ref(&approved), 60),
            "payments",
        ),
    ]
}

impl Case {
    pub(crate) fn recipient<'a>(&self, s: &'a Scenario) -> &'a Agent {
        match self.recipient {
            "executor" => &s.w.executor,
            "payments" => &s.w.payments,
            other => panic!("unknown recipient {other}"),
        }
    }
}
