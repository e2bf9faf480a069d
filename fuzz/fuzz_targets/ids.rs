//! Agent ids, agent patterns, task ids and capability patterns. Oracles: no panic; parse →
//! display round trips; a pattern covers itself; an exact pattern matches its own id.
#![no_main]
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
    let _ = serde_json::from_str::<Capability>(text);
    let _ = serde_json::from_str::<Intent>(text);
});
