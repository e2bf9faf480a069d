//! Verification oracles: sign-then-verify always succeeds, and any mutation of the signed
//! envelope never verifies. The fuzzer chooses the intent, payload and mutation.
#![no_main]
use agent_handoff::*;
use libfuzzer_sys::fuzz_target;

#[path = "world.rs"]
mod world;

fuzz_target!(|data: &[u8]| {
    let w = world::World::new();
    let grant = w.grant();
    // Sign then verify: the payload and the ticket number come from the input.
    let n = data
        .iter()
        .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(*b)));
    let env = HandoffEnvelope::builder(&w.planner)
        .to(w.executor.id())
        .intent("tickets.read", &format!("project/alpha/{n}"))
        .unwrap()
        .payload(data)
        .chain([&grant])
        .issued_at(w.now())
        .seal()
        .unwrap();
    w.verifier()
        .verify(env.as_str(), data, &RequestContext::new())
        .expect("sign-then-verify");
    // Mutate: the first bytes pick positions, the next ones the xor masks.
    if data.len() >= 4 {
        let mut bytes = env.as_str().as_bytes().to_vec();
        let mut changed = false;
        for pair in data.chunks_exact(4).take(4) {
            let pos = usize::from(u16::from_le_bytes([pair[0], pair[1]])) % bytes.len();
            let mask = pair[2] | 1;
            bytes[pos] ^= mask;
            changed = true;
        }
        if let (true, Ok(text)) = (changed, String::from_utf8(bytes)) {
            if text != env.as_str() {
                assert!(
                    w.verifier()
                        .verify(&text, data, &RequestContext::new())
                        .is_err(),
                    "a mutated envelope verified"
                );
            }
        }
    }
});
