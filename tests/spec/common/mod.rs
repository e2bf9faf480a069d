//! Shared fixtures: a small world of agents with deterministic keys, a fixed clock, and a
//! raw JWS signer for hand-crafted (malicious) inputs.

use agent_handoff::audit::MemoryAudit;
use agent_handoff::clock::Clock;
use agent_handoff::clock::FixedClock;
use agent_handoff::wire::TYP_DELEGATION;
use agent_handoff::wire::TYP_HANDOFF;
use agent_handoff::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::{json, Value};
use std::time::Duration;

#[cfg(feature = "redis")]
pub(crate) mod redis_server;

/// 2027-01-15T08:00:00Z: every test runs at this instant.
pub(crate) const T0: u64 = 1_800_000_000;

pub(crate) fn id(s: &str) -> AgentId {
    s.parse().unwrap()
}

pub(crate) struct Agent {
    pub(crate) identity: AgentIdentity,
    pub(crate) seed: [u8; 32],
}

impl Agent {
    pub(crate) fn new(name: &str, seed_byte: u8) -> Agent {
        let seed = [seed_byte; 32];
        Agent {
            identity: AgentIdentity::from_seed(id(name), &seed),
            seed,
        }
    }
    pub(crate) fn id(&self) -> &AgentId {
        self.identity.id()
    }
    pub(crate) fn kid(&self) -> &str {
        self.identity.kid().as_str()
    }
    pub(crate) fn public(&self) -> PublicIdentity {
        self.identity.public()
    }
}

pub(crate) struct World {
    pub(crate) orchestrator: Agent,
    pub(crate) planner: Agent,
    pub(crate) executor: Agent,
    pub(crate) payments: Agent,
    pub(crate) mallory: Agent,
    pub(crate) outsider: Agent,
    pub(crate) partner: Agent,
    pub(crate) bundle: TrustBundle,
    pub(crate) clock: FixedClock,
    pub(crate) audit: MemoryAudit,
    pub(crate) revocations: MemoryRevocations,
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs any header and claims text with a seed: the attacker's (or a sloppy producer's) JWS.
pub(crate) fn sign_raw(seed: &[u8; 32], header: &str, claims: &str) -> String {
    let key = SigningKey::from_bytes(seed);
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig.to_bytes()))
}

pub(crate) fn header(typ: &str, kid: &str) -> String {
    format!(r#"{{"alg":"EdDSA","typ":"{typ}","kid":"{kid}"}}"#)
}

pub(crate) fn token_hash(compact: &str) -> String {
    use sha2::Digest as _;
    b64(&sha2::Sha256::digest(compact.as_bytes()))
}

pub(crate) fn digest(payload: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha-256:{}", b64(&sha2::Sha256::digest(payload)))
}

pub(crate) const PAYLOAD: &[u8] = br#"{"ticket":123}"#;

impl World {
    pub(crate) fn new() -> World {
        let orchestrator = Agent::new("spiffe://acme.example/orchestrator", 1);
        let planner = Agent::new("spiffe://acme.example/agents/planner", 2);
        let executor = Agent::new("spiffe://acme.example/agents/executor", 3);
        let payments = Agent::new("spiffe://acme.example/tools/payments", 4);
        let mallory = Agent::new("spiffe://acme.example/agents/mallory", 5);
        let outsider = Agent::new("spiffe://acme.example/agents/outsider", 6);
        let partner = Agent::new("spiffe://partner.example/agents/helper", 7);
        let mut bundle = TrustBundle::new("acme.example").unwrap();
        bundle.add_authority(&orchestrator.public()).unwrap();
        for a in [&planner, &executor, &payments, &mallory] {
            bundle.add_agent(&a.public()).unwrap();
        }
        World {
            orchestrator,
            planner,
            executor,
            payments,
            mallory,
            outsider,
            partner,
            bundle,
            clock: FixedClock::new(UnixTime::from_secs(T0)),
            audit: MemoryAudit::new(),
            revocations: MemoryRevocations::new(),
        }
    }

    pub(crate) fn now(&self) -> UnixTime {
        self.clock.now()
    }

    pub(crate) fn verifier_builder(&self, me: &Agent) -> VerifierBuilder {
        HandoffVerifier::builder(me.id().clone(), self.bundle.clone())
            .clock(self.clock.clone())
            .audit(self.audit.clone())
            .revocations(self.revocations.clone())
    }

    pub(crate) fn verifier(&self, me: &Agent) -> HandoffVerifier {
        self.verifier_builder(me).build().unwrap()
    }

    /// orchestrator → planner: tickets.* and payments (max 500) on project/alpha, depth 2.
    pub(crate) fn grant(&self) -> DelegationToken {
        DelegationToken::root(&self.orchestrator.identity)
            .delegate_to(&self.planner.public())
            .task("task-42".parse().unwrap())
            .allow("tickets.*", "project/alpha/*")
            .unwrap()
            .grant(
                Capability::new("payments.execute", "account/ops/*")
                    .unwrap()
                    .max("amount", 500)
                    .unwrap(),
            )
            .depth(2)
            .ttl(Duration::from_secs(600))
            .issued_at(self.now())
            .sign()
            .unwrap()
    }

    /// planner → executor: tickets.read only, depth 1.
    pub(crate) fn sub_grant(&self, grant: &DelegationToken) -> DelegationToken {
        grant
            .attenuate(&self.planner.identity)
            .delegate_to(&self.executor.public())
            .allow("tickets.read", "project/alpha/*")
            .unwrap()
            .grant(
                Capability::new("payments.execute", "account/ops/*")
                    .unwrap()
                    .max("amount", 100)
                    .unwrap(),
            )
            .depth(1)
            .issued_at(self.now())
            .sign()
            .unwrap()
    }

    /// The planner asks the executor to read a ticket, on its own authority.
    pub(crate) fn request(&self, chain: &[DelegationToken]) -> HandoffEnvelope {
        HandoffEnvelope::builder(&self.planner.identity)
            .to(self.executor.id())
            .intent("tickets.read", "project/alpha/123")
            .unwrap()
            .payload(PAYLOAD)
            .chain(chain)
            .issued_at(self.now())
            .seal()
            .unwrap()
    }

    /// Claims of a token as JSON, for hand-crafting.
    pub(crate) fn token_claims(
        &self,
        iss: &Agent,
        sub: &Agent,
        parent: Option<&str>,
        caps: Value,
        depth: u64,
    ) -> Value {
        let mut v = json!({
            "jti": format!("tok-{}-{}", iss.id().name(), sub.id().name()).replace('/', "_").chars().chain("0123456789abcdef".chars()).take(24).collect::<String>(),
            "iss": iss.id().as_str(),
            "sub": sub.id().as_str(),
            "cnf": {"jkt": sub.kid()},
            "task": "task-42",
            "caps": caps,
            "depth": depth,
            "iat": T0,
            "exp": T0 + 600,
        });
        if let Some(p) = parent {
            v["parent"] = json!(token_hash(p));
        }
        v
    }

    pub(crate) fn raw_token(&self, signer: &Agent, claims: &Value) -> String {
        sign_raw(
            &signer.seed,
            &header(TYP_DELEGATION, signer.kid()),
            &claims.to_string(),
        )
    }

    /// Envelope claims as JSON, for hand-crafting.
    pub(crate) fn envelope_claims(&self, iss: &Agent, aud: &Agent, chain: &[&str]) -> Value {
        json!({
            "jti": "envelope-0000000001",
            "iss": iss.id().as_str(),
            "aud": aud.id().as_str(),
            "task": "task-42",
            "intent": {"action": "tickets.read", "resource": "project/alpha/123"},
            "digest": digest(PAYLOAD),
            "iat": T0,
            "exp": T0 + 60,
            "chain": chain,
        })
    }

    pub(crate) fn raw_envelope(&self, signer: &Agent, claims: &Value) -> String {
        sign_raw(
            &signer.seed,
            &header(TYP_HANDOFF, signer.kid()),
            &claims.to_string(),
        )
    }
}

/// Signs hand-written envelope claims text as the planner and verifies it at the executor.
pub(crate) fn verify_envelope_text(w: &World, claims: &str) -> Result<VerifiedHandoff, Rejection> {
    let env = sign_raw(
        &w.planner.seed,
        &header(TYP_HANDOFF, w.planner.kid()),
        claims,
    );
    w.verifier(&w.executor)
        .verify(&env, PAYLOAD, &RequestContext::new())
}

/// Asserts the exact reason code.
#[track_caller]
pub(crate) fn assert_reason(
    result: Result<VerifiedHandoff, Rejection>,
    expected: Reason,
) -> Rejection {
    match result {
        Ok(h) => panic!("expected rejection `{expected}`, but it was accepted: {h:?}"),
        Err(r) => {
            assert_eq!(r.reason(), expected, "wrong reason; rejection was: {r}");
            r
        }
    }
}
