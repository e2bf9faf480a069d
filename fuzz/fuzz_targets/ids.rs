//! Agent ids, agent patterns, task ids, capability patterns, resources and numbers. Oracles: no
//! panic; parse → display round trips; a pattern covers itself; an exact pattern matches its
//! own id; a resource is an intent resource exactly when `check_resource` accepts it; an exact
//! number whose JSON text is exact reads back as itself.
#![no_main]
use agent_handoff::grant::check_resource;
use agent_handoff::grant::exact_number;
use agent_handoff::wire::AgentPattern;
use agent_handoff::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = text.parse::<AgentId>() {
        assert_eq!(id.as_str(), text);
        assert_eq!(id.to_string().parse::<AgentId>().unwrap(), id);
        let p = AgentPattern::from(id.clone());
        assert!(p.matches(&id) && p.covers(&p));
    }
    if let Ok(p) = text.parse::<AgentPattern>() {
        assert_eq!(p.as_str(), text);
        assert!(p.covers(&p));
    }
    if let Ok(t) = text.parse::<TaskId>() {
        assert_eq!(t.as_str(), text);
    }
    let (a, r) = text.split_once(' ').unwrap_or((text, "x"));
    if let Ok(cap) = Capability::new(a, r) {
        assert!(cap.covers(&cap));
        let json = serde_json::to_string(&cap).unwrap();
        let back: Capability = serde_json::from_str(&json).expect("capability round trip");
        assert_eq!(back, cap);
        if let Ok(intent) = Intent::new(a, r) {
            assert!(
                cap.allows(&intent),
                "a concrete capability allows its own intent"
            );
        }
    }
    assert_eq!(
        check_resource(text).is_ok(),
        Intent::new("a", text).is_ok(),
        "check_resource and intents agree"
    );
    if let Ok(n) = exact_number(text) {
        // The shortest JSON text of a double may not be exact (2^-30 is written
        // `9.313225746154785e-10`); when it is, it reads back as the same number.
        let json = serde_json::to_string(&n).unwrap();
        if let Ok(back) = exact_number(&json) {
            assert_eq!(back, n);
        }
    }
    let _ = serde_json::from_str::<Capability>(text);
    let _ = serde_json::from_str::<Intent>(text);
});
