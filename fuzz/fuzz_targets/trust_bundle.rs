//! Trust bundle JSON. Oracles: no panic; a loaded bundle round trips through `to_json`.
#![no_main]
use agent_handoff::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(bundle) = TrustBundle::from_json(text) {
        let json = bundle.to_json();
        let again = TrustBundle::from_json(&json).expect("a bundle's own JSON loads");
        assert_eq!(again.to_json(), json);
    }
});
