//! A fixed world for the fuzz targets: deterministic keys, a fixed clock, one valid chain.
//! Its seeds differ from the golden vectors' (whose tokens seed the corpus), so no corpus
//! input carries a signature this world trusts: "random input never verifies" is exact.
#![allow(dead_code)]

use agent_handoff::audit::DiscardAudit;
use agent_handoff::clock::FixedClock;
use agent_handoff::*;

pub const T0: u64 = 1_800_000_000;
pub const PAYLOAD: &[u8] = br#"{"ticket":123}"#;

pub struct World {
    pub orchestrator: AgentIdentity,
    pub planner: AgentIdentity,
    pub executor: AgentIdentity,
    pub bundle: TrustBundle,
}

fn id(s: &str) -> AgentId {
    s.parse().unwrap()
}

impl World {
    pub fn new() -> World {
        let orchestrator =
            AgentIdentity::from_seed(id("spiffe://acme.example/orchestrator"), &[11; 32]);
        let planner =
            AgentIdentity::from_seed(id("spiffe://acme.example/agents/planner"), &[12; 32]);
        let executor =
            AgentIdentity::from_seed(id("spiffe://acme.example/agents/executor"), &[13; 32]);
        let mut bundle = TrustBundle::new("acme.example").unwrap();
        bundle.add_authority(&orchestrator.public()).unwrap();
        bundle.add_agent(&planner.public()).unwrap();
        bundle.add_agent(&executor.public()).unwrap();
        World {
            orchestrator,
            planner,
            executor,
            bundle,
        }
    }

    pub fn now(&self) -> UnixTime {
        UnixTime::from_secs(T0)
    }

    pub fn verifier(&self) -> HandoffVerifier {
        HandoffVerifier::builder(self.executor.id().clone(), self.bundle.clone())
            .clock(FixedClock::new(self.now()))
            .audit(DiscardAudit)
            .build()
            .unwrap()
    }

    pub fn grant(&self) -> DelegationToken {
        DelegationToken::root(&self.orchestrator)
            .delegate_to(&self.planner.public())
            .task("task-42".parse().unwrap())
            .allow("tickets.*", "project/alpha/*")
            .unwrap()
            .issued_at(self.now())
            .sign()
            .unwrap()
    }

    pub fn envelope(&self, grant: &DelegationToken) -> HandoffEnvelope {
        HandoffEnvelope::builder(&self.planner)
            .to(self.executor.id())
            .intent("tickets.read", "project/alpha/123")
            .unwrap()
            .payload(PAYLOAD)
            .chain([grant])
            .issued_at(self.now())
            .seal()
            .unwrap()
    }
}
