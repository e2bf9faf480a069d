//! Edge-case vectors for the signature layer: every Wycheproof Ed25519 vector by `tcId`, every
//! low-order point encoding, keys with a torsion component, and signatures with small-order or
//! non-canonical `R` and non-canonical `S` on a real envelope. Each asserts the acceptance set
//! exactly, not just "something was rejected".

use crate::common::*;
use agent_handoff::keys::AgentKey;
use agent_handoff::*;
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha512};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// The vendored vector files (provenance in each folder's README).
fn vendored(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

fn load(rel: &str) -> Value {
    let path = vendored(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn key32(bytes: &[u8]) -> [u8; 32] {
    <[u8; 32]>::try_from(bytes).unwrap()
}

/// The crate's acceptance rule for a (key, message, signature) triple: the key must be admitted
/// (`AgentKey::from_bytes`), the signature must be exactly 64 bytes, and `verify_strict` must
/// pass on the admitted key — exactly what `jws::Decoded::verify` does on a resolved key.
fn crate_accepts(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(pk) = <[u8; 32]>::try_from(pk) else {
        return false;
    };
    let Ok(key) = AgentKey::from_bytes(&pk) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(sig) else {
        return false;
    };
    key.verifying_key()
        .verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig))
        .is_ok()
}

#[test]
fn wycheproof_ed25519_every_vector_by_tc_id() {
    let data = load("wycheproof/ed25519_test.json");
    let mut seen = BTreeSet::new();
    let (mut valid_accepted, mut invalid_rejected, mut short_or_long) = (0, 0, 0);
    let mut wrong = Vec::new();
    for group in data["testGroups"].as_array().unwrap() {
        let pk = hex(group["publicKey"]["pk"].as_str().unwrap());
        for t in group["tests"].as_array().unwrap() {
            let tc = t["tcId"].as_u64().unwrap();
            assert!(seen.insert(tc), "duplicate tcId {tc}");
            let msg = hex(t["msg"].as_str().unwrap());
            let sig = hex(t["sig"].as_str().unwrap());
            let expected = match t["result"].as_str().unwrap() {
                "valid" => true,
                "invalid" => false,
                other => panic!("tcId {tc}: unexpected result `{other}`"),
            };
            let got = crate_accepts(&pk, &msg, &sig);
            if sig.len() != 64 {
                short_or_long += 1;
                assert!(
                    !got,
                    "tcId {tc}: a {}-byte signature was accepted",
                    sig.len()
                );
            }
            match (expected, got) {
                (true, true) => valid_accepted += 1,
                (false, false) => invalid_rejected += 1,
                _ => wrong.push((tc, t["comment"].clone(), expected, got)),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "vectors with the wrong outcome: {wrong:?}"
    );
    assert_eq!(seen.len(), 151, "every vector is run");
    assert_eq!(
        seen,
        (1..=151).collect::<BTreeSet<u64>>(),
        "tcIds are 1..=151"
    );
    assert_eq!(valid_accepted, 88, "valid vectors accepted");
    assert_eq!(invalid_rejected, 63, "invalid vectors rejected");
    assert!(
        short_or_long >= 1,
        "the file has signatures that are not 64 bytes"
    );
}

#[test]
fn wycheproof_every_group_key_is_admitted() {
    // The acceptance set above is only meaningful if rejections come from the signature, not
    // from refusing the key: every Wycheproof key is an ordinary prime-order point.
    let data = load("wycheproof/ed25519_test.json");
    let groups = data["testGroups"].as_array().unwrap();
    assert_eq!(groups.len(), 78);
    for group in groups {
        let pk = key32(&hex(group["publicKey"]["pk"].as_str().unwrap()));
        let key = AgentKey::from_bytes(&pk).unwrap();
        // The JWK form of the same key is admitted too, with the same thumbprint.
        // (Wycheproof's JWKs carry a placeholder `"kid": "none"`; a `kid` that is not the
        // thumbprint is refused, so it is dropped here.)
        let mut jwk = group["publicKeyJwk"].clone();
        assert!(AgentKey::from_jwk_json(&jwk.to_string()).is_err());
        jwk.as_object_mut().unwrap().remove("kid");
        let jwk = jwk.to_string();
        assert_eq!(
            AgentKey::from_jwk_json(&jwk).unwrap().kid(),
            key.kid(),
            "{jwk}"
        );
    }
}

fn bundle_with_key(x: &[u8; 32]) -> String {
    let w = World::new();
    json!({
        "trust_domain": "acme.example",
        "authorities": [w.orchestrator.id().as_str()],
        "agents": {
            w.orchestrator.id().as_str(): [w.orchestrator.identity.key().to_jwk()],
            w.planner.id().as_str(): [{"kty": "OKP", "crv": "Ed25519", "x": b64(x)}],
        },
    })
    .to_string()
}

#[test]
fn control_a_good_key_is_admitted_by_the_bundle() {
    // The refusals below can fail: the same bundle with an ordinary key loads.
    let w = World::new();
    let good = *w.planner.identity.key().as_bytes();
    let bundle = TrustBundle::from_json(&bundle_with_key(&good)).unwrap();
    assert_eq!(bundle.keys(w.planner.id()).len(), 1);
}

#[test]
fn every_low_order_point_encoding_is_refused_as_a_key() {
    let data = load("low-order/low-order-points.json");
    let points = data["points"].as_array().unwrap();
    assert_eq!(points.len(), 14, "8 points plus 6 non-canonical encodings");
    let mut canonical = 0;
    for p in points {
        let hx = p["hex"].as_str().unwrap();
        let bytes = key32(&hex(hx));
        if p["canonical"].as_bool().unwrap() {
            canonical += 1;
        }
        // The file's facts, recomputed: the point has exactly the stated order.
        let point = CompressedEdwardsY(bytes).decompress().expect("decodes");
        let order = p["order"].as_u64().unwrap();
        assert!(point.is_small_order(), "{hx}");
        assert!(
            (Scalar::from(order) * point).is_identity(),
            "{hx}: [order]P"
        );
        if order > 1 {
            let half = Scalar::from(order / 2) * point;
            assert!(
                !half.is_identity(),
                "{hx}: order is not smaller than stated"
            );
        }
        let err = AgentKey::from_bytes(&bytes).unwrap_err();
        assert!(matches!(err, Error::Key { .. }), "{hx}: {err}");
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&bytes)}).to_string();
        assert!(AgentKey::from_jwk_json(&jwk).is_err(), "{hx} as a JWK");
        let err = TrustBundle::from_json(&bundle_with_key(&bytes)).unwrap_err();
        assert!(
            matches!(err, Error::Bundle { .. }),
            "{hx} in a bundle: {err}"
        );
    }
    assert_eq!(canonical, 8);
}

#[test]
fn keys_with_a_torsion_component_are_refused() {
    let mut refused = 0;
    // Seeds no agent of the test bundle uses (a key may belong to one agent only).
    for seed_byte in [42u8, 77, 99, 123, 200] {
        let seed = [seed_byte; 32];
        let good = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        let a = CompressedEdwardsY(good.to_bytes()).decompress().unwrap();
        for (i, t) in EIGHT_TORSION.iter().enumerate() {
            let mixed = (a + t).compress().to_bytes();
            let admitted = AgentKey::from_bytes(&mixed);
            if i == 0 {
                // EIGHT_TORSION[0] is the identity: the clean key itself, which is admitted.
                assert!(admitted.is_ok());
                assert!(TrustBundle::from_json(&bundle_with_key(&mixed)).is_ok());
                continue;
            }
            let err = admitted.unwrap_err();
            assert!(
                err.to_string().contains("torsion"),
                "seed {seed_byte}, torsion {i}: {err}"
            );
            assert!(
                TrustBundle::from_json(&bundle_with_key(&mixed)).is_err(),
                "seed {seed_byte}, torsion {i}: bundle loaded"
            );
            refused += 1;
        }
    }
    assert_eq!(refused, 5 * 7);
}

// ------------------------------------------------ hand-made signatures on a real envelope

/// The secret scalar of an Ed25519 seed (RFC 8032 5.1.5), reduced mod l.
fn secret_scalar(seed: &[u8; 32]) -> Scalar {
    let h = Sha512::digest(seed);
    let mut a = [0u8; 32];
    a.copy_from_slice(&h[..32]);
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    Scalar::from_bytes_mod_order(a)
}

fn challenge(r: &[u8; 32], a: &[u8; 32], msg: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(msg);
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

/// A signature with a chosen `R` encoding and `S = r + k·a` where `R` decodes to `[r]B` (plus
/// whatever small-order component the encoding carries, which a cofactorless check ignores
/// only when it is the identity).
fn sign_with_r(seed: &[u8; 32], r_bytes: [u8; 32], r: Scalar, msg: &[u8]) -> [u8; 64] {
    let a = secret_scalar(seed);
    let pk = ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes();
    let s = r + challenge(&r_bytes, &pk, msg) * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_bytes);
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

fn with_signature(envelope: &str, sig: &[u8]) -> String {
    let (input, _) = envelope.rsplit_once('.').unwrap();
    format!("{input}.{}", b64(sig))
}

fn signing_input(envelope: &str) -> &[u8] {
    envelope.rsplit_once('.').unwrap().0.as_bytes()
}

fn check(w: &World, envelope: &str) -> Result<VerifiedHandoff, Rejection> {
    w.verifier(&w.executor)
        .verify(envelope, PAYLOAD, &RequestContext::new())
}

#[test]
fn control_hand_made_signature_with_honest_r_is_accepted() {
    // Proves the hand-made signing below is correct: with R = [r]B it verifies.
    let w = World::new();
    let env = w.request(&[w.grant()]);
    let r = Scalar::from_bytes_mod_order([7u8; 32]);
    let r_bytes = (ED25519_BASEPOINT_POINT * r).compress().to_bytes();
    let sig = sign_with_r(&w.planner.seed, r_bytes, r, signing_input(env.as_str()));
    check(&w, &with_signature(env.as_str(), &sig)).unwrap();
}

#[test]
fn small_order_r_is_a_bad_signature() {
    let w = World::new();
    let env = w.request(&[w.grant()]);
    let msg = signing_input(env.as_str()).to_vec();
    let vk = ed25519_dalek::SigningKey::from_bytes(&w.planner.seed).verifying_key();
    let identity = EdwardsPoint::default().compress().to_bytes();
    // R = identity (order 1), S = k·a: satisfies [S]B = R + [k]A, so a cofactorless,
    // non-strict verifier accepts it; strict verification must not.
    let sig = sign_with_r(&w.planner.seed, identity, Scalar::ZERO, &msg);
    assert!(
        ed25519_dalek::Verifier::verify(&vk, &msg, &ed25519_dalek::Signature::from_bytes(&sig))
            .is_ok(),
        "control: the lenient check accepts this signature"
    );
    assert_reason(
        check(&w, &with_signature(env.as_str(), &sig)),
        Reason::BadSignature,
    );
    // Every other small-order R (with an arbitrary S) is refused too.
    for t in EIGHT_TORSION.iter() {
        let r_bytes = t.compress().to_bytes();
        let sig = sign_with_r(&w.planner.seed, r_bytes, Scalar::ZERO, &msg);
        assert_reason(
            check(&w, &with_signature(env.as_str(), &sig)),
            Reason::BadSignature,
        );
    }
}

#[test]
fn non_canonical_r_is_a_bad_signature() {
    let w = World::new();
    let env = w.request(&[w.grant()]);
    let msg = signing_input(env.as_str()).to_vec();
    let data = load("low-order/low-order-points.json");
    let mut n = 0;
    for p in data["points"].as_array().unwrap() {
        if p["canonical"].as_bool().unwrap() {
            continue;
        }
        // A non-canonical encoding as R, with S computed over exactly these R bytes: a
        // verifier that decodes R leniently and compares points would accept the identity ones.
        let r_bytes = key32(&hex(p["hex"].as_str().unwrap()));
        let sig = sign_with_r(&w.planner.seed, r_bytes, Scalar::ZERO, &msg);
        assert_reason(
            check(&w, &with_signature(env.as_str(), &sig)),
            Reason::BadSignature,
        );
        n += 1;
    }
    assert_eq!(n, 6);
    // A prime-order R with its sign bit flipped to the "negative zero"-style alias is not
    // the point the signer committed to: also refused.
    let real = unb64(env.as_str().rsplit_once('.').unwrap().1);
    let mut flipped = real.clone();
    flipped[31] ^= 0x80;
    assert_reason(
        check(&w, &with_signature(env.as_str(), &flipped)),
        Reason::BadSignature,
    );
}

fn unb64(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

/// l, the order of the prime-order subgroup, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

fn add_le(a: &[u8], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0);
    out
}

#[test]
fn non_canonical_s_is_a_bad_signature() {
    let w = World::new();
    let env = w.request(&[w.grant()]);
    let real = unb64(env.as_str().rsplit_once('.').unwrap().1);
    assert!(
        check(&w, env.as_str()).is_ok(),
        "control: the real envelope verifies"
    );
    // S + l: the same scalar mod l, so the group equation still holds (the lenient check of
    // ed25519-dalek 1.x-era verifiers and many others reduce S and accept it).
    let mut malleated = real.clone();
    malleated[32..].copy_from_slice(&add_le(&real[32..], &L));
    assert_ne!(malleated, real);
    assert_reason(
        check(&w, &with_signature(env.as_str(), &malleated)),
        Reason::BadSignature,
    );
    // S + 2l, and S with the top bit set: out of range.
    let mut twice = real.clone();
    twice[32..].copy_from_slice(&add_le(&add_le(&real[32..], &L), &L));
    assert_reason(
        check(&w, &with_signature(env.as_str(), &twice)),
        Reason::BadSignature,
    );
    let mut high = real.clone();
    high[63] |= 0x80;
    assert_reason(
        check(&w, &with_signature(env.as_str(), &high)),
        Reason::BadSignature,
    );
    // Signatures of the wrong length never verify, whatever their content.
    for len in [0usize, 32, 63, 65, 128] {
        let mut sig = real.clone();
        sig.resize(len, 0);
        assert_reason(
            check(&w, &with_signature(env.as_str(), &sig)),
            Reason::BadSignature,
        );
    }
}
