//! PEM private keys and JWK public keys. Oracles: no panic; an accepted PEM key exports and
//! re-imports to the same key; an accepted JWK round trips with its thumbprint `kid`.
#![no_main]
use agent_handoff::keys::AgentKey;
use agent_handoff::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let id: AgentId = "spiffe://acme.example/fuzz".parse().unwrap();
    if let Ok(identity) = AgentIdentity::from_pkcs8_pem(id.clone(), text) {
        let pem = identity.export_pkcs8_pem().unwrap();
        let again = AgentIdentity::from_pkcs8_pem(id, &pem).expect("own PEM re-imports");
        assert_eq!(again.kid(), identity.kid());
    }
    if let Ok(key) = AgentKey::from_jwk_json(text) {
        let jwk = serde_json::to_string(&key.to_jwk()).unwrap();
        let again = AgentKey::from_jwk_json(&jwk).expect("own JWK re-imports");
        assert_eq!(again, key);
    }
    if let Ok(bytes) = <[u8; 32]>::try_from(data) {
        if let Ok(key) = AgentKey::from_bytes(&bytes) {
            assert_eq!(key.as_bytes(), &bytes);
        }
    }
});
