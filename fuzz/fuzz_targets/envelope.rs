//! Envelope parsing and verification of arbitrary text. Oracles: no panic; decode keeps the
//! exact text; random input never verifies.
#![no_main]
use agent_handoff::*;
use libfuzzer_sys::fuzz_target;

#[path = "world.rs"]
mod world;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(env) = HandoffEnvelope::decode(text) {
        assert_eq!(env.as_str(), text);
        let _ = env.claims_json();
    }
    let w = world::World::new();
    assert!(
        w.verifier()
            .verify(text, world::PAYLOAD, &RequestContext::new())
            .is_err(),
        "random input verified"
    );
});
