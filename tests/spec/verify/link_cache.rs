//! The verified-link cache remembers only "this exact token's signature verified under the key
//! registered for its issuer and `kid` at this key generation". Every other check still runs
//! on every request, and a key change invalidates what was remembered.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::common::*;
use agent_handoff::error::Location;
use agent_handoff::keys::KeyId;
use agent_handoff::keys::KeyResolver;
use agent_handoff::*;
use ed25519_dalek::VerifyingKey;

/// A resolver whose bundle can be replaced while the verifier runs (a directory reload).
#[derive(Debug)]
struct Reloadable(RwLock<TrustBundle>);

impl Reloadable {
    fn replace(&self, bundle: TrustBundle) {
        *self.0.write().unwrap() = bundle;
    }
}

impl KeyResolver for Reloadable {
    fn resolve(&self, agent: &AgentId, kid: &KeyId) -> Option<VerifyingKey> {
        self.0.read().unwrap().resolve(agent, kid)
    }
    fn is_authority(&self, agent: &AgentId) -> bool {
        KeyResolver::is_authority(&*self.0.read().unwrap(), agent)
    }
    fn federates(&self, trust_domain: &str) -> bool {
        self.0.read().unwrap().federates(trust_domain)
    }
    fn generation(&self) -> u64 {
        self.0.read().unwrap().generation()
    }
}

fn reloadable_verifier(w: &World) -> (HandoffVerifier, Arc<Reloadable>) {
    let keys = Arc::new(Reloadable(RwLock::new(w.bundle.clone())));
    let verifier = HandoffVerifier::builder(w.executor.id().clone(), keys.clone())
        .clock(w.clock.clone())
        .audit(w.audit.clone())
        .revocations(w.revocations.clone())
        .build()
        .unwrap();
    (verifier, keys)
}

/// Warms the cache with `chain` and checks that the second request hit it for every link.
fn warm(w: &World, verifier: &HandoffVerifier, chain: &[DelegationToken]) {
    let ctx = RequestContext::new();
    verifier
        .verify(w.request(chain).as_str(), PAYLOAD, &ctx)
        .unwrap();
    let before = verifier.link_cache_stats();
    verifier
        .verify(w.request(chain).as_str(), PAYLOAD, &ctx)
        .unwrap();
    let after = verifier.link_cache_stats();
    assert_eq!(after.hits - before.hits, chain.len() as u64, "{after:?}");
    assert_eq!(after.misses, before.misses, "{after:?}");
}

#[test]
fn a_warm_chain_is_served_from_the_cache() {
    let w = World::new();
    let verifier = w.verifier(&w.executor);
    let grant = w.grant();
    warm(&w, &verifier, &[grant]);
    assert_eq!(verifier.link_cache_stats().entries, 1);
}

#[test]
fn an_entry_is_not_used_after_the_key_generation_changes() {
    let w = World::new();
    let (verifier, keys) = reloadable_verifier(&w);
    let grant = w.grant();
    warm(&w, &verifier, std::slice::from_ref(&grant));

    // Same keys, new generation: the link's signature is checked again.
    let mut reloaded = w.bundle.clone();
    reloaded.add_agent(&w.outsider.public()).unwrap();
    keys.replace(reloaded);
    let before = verifier.link_cache_stats();
    verifier
        .verify(
            w.request(&[grant]).as_str(),
            PAYLOAD,
            &RequestContext::new(),
        )
        .unwrap();
    let after = verifier.link_cache_stats();
    assert_eq!(after.hits, before.hits, "{after:?}");
    assert_eq!(after.misses - before.misses, 1, "{after:?}");
}

#[test]
fn a_cached_link_whose_key_was_removed_is_unknown_key() {
    let w = World::new();
    let (verifier, keys) = reloadable_verifier(&w);
    let grant = w.grant();
    warm(&w, &verifier, std::slice::from_ref(&grant));

    // The orchestrator rotates: a new key is added, the one that signed the grant removed.
    let rotated = AgentIdentity::from_seed(w.orchestrator.id().clone(), &[99; 32]);
    let mut bundle = w.bundle.clone();
    bundle.add_authority(&rotated.public()).unwrap();
    bundle.remove_key(
        w.orchestrator.id(),
        &w.orchestrator.kid().parse::<KeyId>().unwrap(),
    );
    keys.replace(bundle);
    let r = assert_reason(
        verifier.verify(
            w.request(&[grant]).as_str(),
            PAYLOAD,
            &RequestContext::new(),
        ),
        Reason::UnknownKey,
    );
    assert_eq!(r.location(), Location::Link(0));
}

#[test]
fn an_expired_link_is_rejected_as_expired_while_cached() {
    let w = World::new();
    let verifier = w.verifier(&w.executor);
    let grant = w.grant(); // 600 s, leeway 5 s
    warm(&w, &verifier, std::slice::from_ref(&grant));

    // Still in force within the leeway: served from the cache.
    w.clock.advance(Duration::from_secs(604));
    let before = verifier.link_cache_stats();
    verifier
        .verify(
            w.request(std::slice::from_ref(&grant)).as_str(),
            PAYLOAD,
            &RequestContext::new(),
        )
        .unwrap();
    assert_eq!(verifier.link_cache_stats().hits - before.hits, 1);

    w.clock.advance(Duration::from_secs(1));
    let r = assert_reason(
        verifier.verify(
            w.request(&[grant]).as_str(),
            PAYLOAD,
            &RequestContext::new(),
        ),
        Reason::Expired,
    );
    assert_eq!(r.location(), Location::Link(0));
}

#[test]
fn a_tampered_token_with_the_same_claims_is_not_a_cache_hit() {
    let w = World::new();
    let verifier = w.verifier(&w.executor);
    let grant = w.grant();
    warm(&w, &verifier, std::slice::from_ref(&grant));

    // Same header and claims, another signature.
    let text = grant.as_str();
    let dot = text.rfind('.').unwrap();
    let mut sig: Vec<u8> = text[dot + 1..].bytes().collect();
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{}.{}", &text[..dot], String::from_utf8(sig).unwrap());
    assert_ne!(tampered, text);
    let claims = w.envelope_claims(&w.planner, &w.executor, &[&tampered]);
    let wire = w.raw_envelope(&w.planner, &claims);

    let before = verifier.link_cache_stats();
    let r = assert_reason(
        verifier.verify(&wire, PAYLOAD, &RequestContext::new()),
        Reason::BadSignature,
    );
    assert_eq!(r.location(), Location::Link(0));
    let after = verifier.link_cache_stats();
    assert_eq!(after.hits, before.hits);
    assert_eq!(after.misses - before.misses, 1);

    // The genuine token is still accepted from the cache.
    let claims = w.envelope_claims(&w.planner, &w.executor, &[grant.as_str()]);
    let mut claims = claims;
    claims["jti"] = serde_json::json!("envelope-0000000002");
    let wire = w.raw_envelope(&w.planner, &claims);
    verifier
        .verify(&wire, PAYLOAD, &RequestContext::new())
        .unwrap();
    assert_eq!(verifier.link_cache_stats().hits - after.hits, 1);
}

#[test]
fn revocation_still_applies_to_a_cached_link() {
    let w = World::new();
    let verifier = w.verifier(&w.executor);
    let grant = w.grant();
    warm(&w, &verifier, std::slice::from_ref(&grant));
    w.revocations.revoke_token(grant.id(), w.now()).unwrap();
    assert_reason(
        verifier.verify(
            w.request(&[grant]).as_str(),
            PAYLOAD,
            &RequestContext::new(),
        ),
        Reason::Revoked,
    );
}

#[test]
fn binding_still_applies_to_a_cached_link() {
    // A cached, genuine link presented by someone it was not granted to.
    let w = World::new();
    let verifier = w.verifier(&w.executor);
    let grant = w.grant();
    warm(&w, &verifier, std::slice::from_ref(&grant));
    let claims = w.envelope_claims(&w.mallory, &w.executor, &[grant.as_str()]);
    let wire = w.raw_envelope(&w.mallory, &claims);
    assert_reason(
        verifier.verify(&wire, PAYLOAD, &RequestContext::new()),
        Reason::SenderMismatch,
    );
}
