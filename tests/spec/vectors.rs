//! Golden vectors (`tests/vectors/*.json`): every vector is verified by the crate with exactly
//! the configuration it states, and the committed files must equal a fresh run of the
//! generator (`cargo run --example gen_vectors -- tests/vectors`), byte for byte.

#[path = "../../examples/gen_vectors.rs"]
mod gen_vectors;

use agent_handoff::audit::DiscardAudit;
use agent_handoff::clock::FixedClock;
use agent_handoff::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn committed() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn committed_vectors_equal_a_fresh_regeneration() {
    let mut fresh = gen_vectors::generate();
    fresh.sort();
    let committed = committed();
    let names = |v: &[(String, String)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&committed),
        names(&fresh),
        "vector files differ; run `cargo run --example gen_vectors -- tests/vectors`"
    );
    for ((name, old), (_, new)) in committed.iter().zip(&fresh) {
        assert!(
            old == new,
            "`tests/vectors/{name}` differs from a fresh regeneration; if the format change is \
             intended, run `cargo run --example gen_vectors -- tests/vectors` and review the diff"
        );
    }
}

fn verifier(config: &Value) -> HandoffVerifier {
    let bundle_file = config["trust_bundle"].as_str().unwrap();
    let bundle = TrustBundle::load(dir().join(bundle_file)).unwrap();
    let now = UnixTime::from_secs(config["now"].as_u64().unwrap());
    let mut limits = Limits::default();
    limits.leeway = Duration::from_secs(config["leeway_secs"].as_u64().unwrap());
    limits.max_envelope_ttl =
        Duration::from_secs(config["max_envelope_ttl_secs"].as_u64().unwrap());
    limits.max_token_ttl = Duration::from_secs(config["max_token_ttl_secs"].as_u64().unwrap());
    limits.max_chain_len = usize::try_from(config["max_chain_len"].as_u64().unwrap()).unwrap();
    let revocations = match &config["revocations"] {
        Value::Null => MemoryRevocations::new(),
        v => MemoryRevocations::from_json(&v.to_string(), now).unwrap(),
    };
    HandoffVerifier::builder(config["me"].as_str().unwrap().parse().unwrap(), bundle)
        .clock(FixedClock::new(now))
        .limits(limits)
        .revocations(revocations)
        .audit(DiscardAudit)
        .build()
        .unwrap()
}

#[test]
fn every_vector_gets_its_expected_decision() {
    let mut seen_reasons = std::collections::BTreeSet::new();
    let mut cases = 0;
    for (name, text) in committed() {
        let v: Value = serde_json::from_str(&text).unwrap();
        if name == "trust-bundle.json" {
            TrustBundle::from_json(&text).unwrap(); // SPEC section 8 format, no tag
            continue;
        }
        assert_eq!(v["format"], gen_vectors::FORMAT, "{name}");
        let Some(steps) = v["steps"].as_array() else {
            continue; // keys.json, trust-bundle.json
        };
        cases += 1;
        let verifier = verifier(&v["verifier"]);
        for (i, step) in steps.iter().enumerate() {
            let payload = URL_SAFE_NO_PAD
                .decode(step["payload_b64"].as_str().unwrap())
                .unwrap();
            let got = verifier.verify(
                step["envelope"].as_str().unwrap(),
                &payload,
                &RequestContext::new(),
            );
            let expected = &step["expected"];
            match (expected["decision"].as_str().unwrap(), got) {
                ("allow", Ok(_)) => {}
                ("deny", Err(r)) => {
                    let want = expected["reason"].as_str().unwrap();
                    assert_eq!(r.reason().as_str(), want, "{name} step {i}: {r}");
                    seen_reasons.insert(want.to_owned());
                }
                (want, got) => panic!("{name} step {i}: expected {want}, got {got:?}"),
            }
        }
        // The tokens listed beside each vector decode (they are informational for implementers).
        for t in v["tokens"].as_array().unwrap() {
            DelegationToken::decode(t.as_str().unwrap()).unwrap();
        }
    }
    assert!(cases >= 25, "{cases}");
    // Every reason code except the three that need a non-file configuration (a custom key
    // resolver, a custom policy, a failing store) and the two only a transport binding decides
    // (the HTTP request path and body deadline, tested in tests/http.rs) has a vector.
    let missing: Vec<&str> = Reason::ALL
        .iter()
        .map(|r| r.as_str())
        .filter(|r| !seen_reasons.contains(*r))
        .collect();
    assert_eq!(
        missing,
        [
            "cross_domain",
            "policy_denied",
            "unavailable",
            "non_canonical_path",
            "timeout"
        ]
    );
}

/// The semantic members (SPEC 3.1 `subpath`, `url`, `cidr`) have vectors of each kind: allowed,
/// refused at the intent, escalation and malformed (their decisions are checked above).
#[test]
fn the_semantic_members_have_vectors() {
    let names: Vec<String> = committed().into_iter().map(|f| f.0).collect();
    for kind in ["subpath", "url", "cidr"] {
        for prefix in ["intent_not_granted-", "escalation-", "malformed-"] {
            assert!(
                names
                    .iter()
                    .any(|n| n.starts_with(prefix) && n.contains(&format!("-{kind}"))),
                "no {prefix}*{kind} vector"
            );
        }
        assert!(
            names.contains(&"allow-constraints-semantic.json".to_owned())
                && names.contains(&"allow-constraints-semantic-delegation.json".to_owned()),
            "{kind}"
        );
    }
}
