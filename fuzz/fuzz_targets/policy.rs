//! Policy files (`RulePolicy` from TOML). Oracles: no panic on any input; a file that parses
//! keeps a non-empty version, and parsing is deterministic (the same text gives the same
//! version and the same tier for a few fixed actions).
#![no_main]
use agent_handoff::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = text.parse::<RulePolicy>() else {
        return;
    };
    assert!(!policy.version().is_empty());
    let again: RulePolicy = text
        .parse()
        .expect("a policy that parsed once parses again");
    assert_eq!(again.version(), policy.version());
    for action in ["tickets.read", "payments.execute", "secrets.get", "x"] {
        assert_eq!(again.tier_of(action), policy.tier_of(action));
    }
});
