//! Delegation token parsing. Oracles: no panic; a decoded token keeps its exact text, its
//! claims survive a decode of that text, and random input never verifies as a chain link.
#![no_main]
use agent_handoff::*;
use libfuzzer_sys::fuzz_target;

#[path = "world.rs"]
mod world;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(token) = DelegationToken::decode(text) {
        assert_eq!(token.as_str(), text);
        let again = DelegationToken::decode(token.as_str()).expect("re-decode");
        assert_eq!(again.claims_json(), token.claims_json());
        // Whatever it claims, a token the fuzzer made is not signed by the authority.
        let w = world::World::new();
        if let Ok(env) = HandoffEnvelope::builder(&w.planner)
            .to(w.executor.id())
            .intent("tickets.read", "project/alpha/1")
            .unwrap()
            .payload(world::PAYLOAD)
            .chain([&token])
            .issued_at(w.now())
            .seal()
        {
            assert!(w
                .verifier()
                .verify(env.as_str(), world::PAYLOAD, &RequestContext::new())
                .is_err());
        }
    }
});
