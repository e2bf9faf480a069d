//! Fixtures shared by the criterion benches and the `perf_report` example: a chain of agents
//! with deterministic keys, tokens and envelopes built through the public API, and the raw
//! Ed25519 material (pre-decoded keys, signing inputs, signatures) used as the floor.
#![allow(dead_code)]

use std::time::Duration;

use agent_handoff::audit::DiscardAudit;
use agent_handoff::clock::FixedClock;
use agent_handoff::keys::KeyResolver;
use agent_handoff::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};

/// Every fixture lives at this instant (2027-01-15T08:00:00Z).
pub(crate) const T0: UnixTime = UnixTime::from_secs(1_800_000_000);

/// The longest chain.
pub(crate) const MAX_HOPS: usize = 8;

/// `hops[0]` is the authority; `hops[i]` for `i >= 1` is the subject of link `i - 1`.
/// The sender of a chain of `n` links is `hops[n]`; the recipient is `receiver`.
pub(crate) struct Fixture {
    pub(crate) hops: Vec<AgentIdentity>,
    pub(crate) seeds: Vec<[u8; 32]>,
    pub(crate) receiver: AgentIdentity,
    pub(crate) bundle: TrustBundle,
}

fn agent(name: &str, seed: [u8; 32]) -> AgentIdentity {
    AgentIdentity::from_seed(name.parse().expect("agent id"), &seed)
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        let seeds: Vec<[u8; 32]> = (0..=MAX_HOPS as u8).map(|i| [i + 1; 32]).collect();
        let mut hops = vec![agent("spiffe://acme.example/orchestrator", seeds[0])];
        for (i, seed) in seeds.iter().enumerate().skip(1) {
            hops.push(agent(
                &format!("spiffe://acme.example/agents/hop-{i}"),
                *seed,
            ));
        }
        let receiver = agent("spiffe://acme.example/agents/receiver", [200; 32]);
        let mut bundle = TrustBundle::new("acme.example").expect("bundle");
        bundle.add_authority(&hops[0].public()).expect("authority");
        for a in hops.iter().skip(1).chain([&receiver]) {
            bundle.add_agent(&a.public()).expect("agent");
        }
        Fixture {
            hops,
            seeds,
            receiver,
            bundle,
        }
    }

    /// The root grant: orchestrator → hop-1, two capabilities (one with a limit), depth 8.
    pub(crate) fn issue(&self) -> DelegationToken {
        DelegationToken::root(&self.hops[0])
            .delegate_to(&self.hops[1].public())
            .task("task-42".parse().expect("task"))
            .allow("tickets.*", "project/alpha/*")
            .expect("cap")
            .grant(
                Capability::new("payments.execute", "account/ops/*")
                    .expect("cap")
                    .max("amount", 500)
                    .expect("limit"),
            )
            .depth(MAX_HOPS as u8)
            .ttl(Duration::from_secs(900))
            .issued_at(T0)
            .sign()
            .expect("root token")
    }

    /// Link `parent_index + 1`: hop-i → hop-(i+1), one less depth, narrower limit.
    pub(crate) fn attenuate(&self, parent: &DelegationToken, i: usize) -> DelegationToken {
        parent
            .attenuate(&self.hops[i])
            .delegate_to(&self.hops[i + 1].public())
            .allow("tickets.*", "project/alpha/*")
            .expect("cap")
            .grant(
                Capability::new("payments.execute", "account/ops/*")
                    .expect("cap")
                    .max("amount", 100)
                    .expect("limit"),
            )
            .depth((MAX_HOPS - i) as u8)
            .issued_at(T0)
            .sign()
            .expect("attenuated token")
    }

    /// A chain of `n` links (1 to 8), root first.
    pub(crate) fn chain(&self, n: usize) -> Vec<DelegationToken> {
        let mut chain = vec![self.issue()];
        for i in 1..n {
            let next = self.attenuate(&chain[i - 1], i);
            chain.push(next);
        }
        chain
    }

    /// The sender of a chain of `n` links asks the receiver to read a ticket (a request).
    pub(crate) fn seal(&self, chain: &[DelegationToken], payload: &[u8]) -> HandoffEnvelope {
        HandoffEnvelope::builder(&self.hops[chain.len()])
            .to(self.receiver.id())
            .intent("tickets.read", "project/alpha/7")
            .expect("intent")
            .payload(payload)
            .chain(chain)
            .issued_at(T0)
            .seal()
            .expect("envelope")
    }

    /// The receiver's verifier: fixed clock at `T0`, no audit, default replay cache, and a
    /// verified-link cache of `link_cache_capacity` (0 disables it).
    pub(crate) fn verifier(&self, link_cache_capacity: usize) -> HandoffVerifier {
        HandoffVerifier::builder(self.receiver.id().clone(), self.bundle.clone())
            .clock(FixedClock::new(T0))
            .audit(DiscardAudit)
            .link_cache_capacity(link_cache_capacity)
            .build()
            .expect("verifier")
    }

    pub(crate) fn signing_key(&self, hop: usize) -> SigningKey {
        SigningKey::from_bytes(&self.seeds[hop])
    }

    /// The decoded key of hop `i`, taken from the bundle (decoded once, as the verifier's).
    pub(crate) fn verifying_key(&self, hop: usize) -> VerifyingKey {
        let a = &self.hops[hop];
        self.bundle
            .resolve(a.id(), a.kid())
            .expect("registered key")
    }
}

/// A compact JWS split into what Ed25519 signs and the decoded signature.
pub(crate) struct Signed {
    pub(crate) signing_input: Vec<u8>,
    pub(crate) signature: Signature,
}

pub(crate) fn split(compact: &str) -> Signed {
    let dot = compact.rfind('.').expect("compact JWS");
    let sig = URL_SAFE_NO_PAD
        .decode(&compact[dot + 1..])
        .expect("signature base64url");
    Signed {
        signing_input: compact.as_bytes()[..dot].to_vec(),
        signature: Signature::from_slice(&sig).expect("64-byte signature"),
    }
}

/// The raw floor for one envelope: each signature with the key that signed it, root first,
/// the envelope last.
pub(crate) fn raw_checks(
    f: &Fixture,
    chain: &[DelegationToken],
    envelope: &str,
) -> Vec<(VerifyingKey, Signed)> {
    let mut out: Vec<(VerifyingKey, Signed)> = chain
        .iter()
        .enumerate()
        .map(|(i, t)| (f.verifying_key(i), split(t.as_str())))
        .collect();
    out.push((f.verifying_key(chain.len()), split(envelope)));
    out
}

/// A realistic small JSON payload of `len` bytes.
pub(crate) fn payload(len: usize) -> Vec<u8> {
    let mut p = br#"{"ticket":7,"note":""#.to_vec();
    while p.len() + 2 < len {
        p.push(b'x');
    }
    p.extend_from_slice(br#""}"#);
    p.truncate(len);
    p
}
