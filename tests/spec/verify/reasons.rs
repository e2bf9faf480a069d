//! One test (at least) per reason code of SPEC section 7, each built from real signed inputs
//! or hand-crafted malicious JWS, each asserting the exact reason.

use crate::common::*;
use agent_handoff::audit::AuditRecord;
use agent_handoff::audit::MemoryAudit;
use agent_handoff::audit::Verdict;
use agent_handoff::error::Fault;
use agent_handoff::error::Location;
use agent_handoff::error::StoreError;
use agent_handoff::keys::KeyId;
use agent_handoff::keys::KeyResolver;
use agent_handoff::limits::MAX_ENVELOPE_BYTES;
use agent_handoff::limits::MAX_TOKEN_BYTES;
use agent_handoff::policy::PolicyDecision;
use agent_handoff::policy::PolicyRequest;
use agent_handoff::store::Freshness;
use agent_handoff::store::ReplayCache;
use agent_handoff::store::RevocationQuery;
use agent_handoff::store::Revoked;
use agent_handoff::wire::TYP_HANDOFF;
use agent_handoff::*;
use serde_json::json;
use std::time::Duration;

fn ctx() -> RequestContext {
    RequestContext::new()
}

// ---------------------------------------------------------------- allow paths

#[test]
fn request_is_accepted_and_audited() {
    let w = World::new();
    let grant = w.grant();
    let env = w.request(std::slice::from_ref(&grant));
    let v = w.verifier(&w.executor);
    let h = v.verify(env.as_str(), PAYLOAD, &ctx()).unwrap();
    assert_eq!(h.sender(), w.planner.id());
    assert_eq!(h.recipient(), w.executor.id());
    assert_eq!(h.mode(), HandoffMode::Request);
    assert_eq!(h.task().as_str(), "task-42");
    assert_eq!(h.intent().action(), "tickets.read");
    assert_eq!(h.chain_ids(), vec![grant.id()]);
    assert!(
        h.delegated_chain().is_none(),
        "a request hands over no authority"
    );
    assert_eq!(h.policy_rule(), "chain-scope");
    let records = w.audit.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].decision(), Verdict::Allow);
    assert_eq!(records[0].verified_sender(), Some(w.planner.id()));
}

#[test]
fn delegation_is_accepted_and_hands_over_the_chain() {
    let w = World::new();
    let grant = w.grant();
    let sub = w.sub_grant(&grant);
    let env = HandoffEnvelope::builder(&w.planner.identity)
        .to(w.executor.id())
        .intent("tickets.read", "project/alpha/7")
        .unwrap()
        .payload(PAYLOAD)
        .chain([&grant, &sub])
        .issued_at(w.now())
        .seal()
        .unwrap();
    assert_eq!(env.mode(), Some(HandoffMode::Delegation));
    let h = w
        .verifier(&w.executor)
        .verify(env.as_str(), PAYLOAD, &ctx())
        .unwrap();
    assert_eq!(h.mode(), HandoffMode::Delegation);
    let held = h.delegated_chain().unwrap();
    assert_eq!(held.len(), 2);
    // The executor can now act on its own authority towards the payments tool.
    let pay = HandoffEnvelope::builder(&w.executor.identity)
        .to(w.payments.id())
        .intent("payments.execute", "account/ops/9")
        .unwrap()
        .arg("amount", 80)
        .chain(held)
        .issued_at(w.now())
        .seal()
        .unwrap();
    let h2 = w
        .verifier(&w.payments)
        .verify(pay.as_str(), b"", &ctx())
        .unwrap();
    assert_eq!(h2.sender(), w.executor.id());
    assert_eq!(h2.chain().len(), 2);
}

#[test]
fn one_link_delegation_from_the_authority() {
    let w = World::new();
    let grant = DelegationToken::root(&w.orchestrator.identity)
        .delegate_to(&w.executor.public())
        .task("task-42".parse().unwrap())
        .allow("tickets.read", "project/alpha/*")
        .unwrap()
        .issued_at(w.now())
        .sign()
        .unwrap();
    let env = HandoffEnvelope::builder(&w.orchestrator.identity)
        .to(w.executor.id())
        .intent("tickets.read", "project/alpha/1")
        .unwrap()
        .chain([grant])
        .issued_at(w.now())
        .seal()
        .unwrap();
    let h = w
        .verifier(&w.executor)
        .verify(env.as_str(), b"", &ctx())
        .unwrap();
    assert_eq!(h.mode(), HandoffMode::Delegation);
}

#[test]
fn ed25519_alg_name_from_rfc_9864_is_accepted() {
    let w = World::new();
    let grant = w.grant();
    let mut claims = w.envelope_claims(&w.planner, &w.executor, &[grant.as_str()]);
    claims["jti"] = json!("envelope-ed25519-alg");
    let h = format!(
        r#"{{"alg":"Ed25519","typ":"{TYP_HANDOFF}","kid":"{}"}}"#,
        w.planner.kid()
    );
    let env = sign_raw(&w.planner.seed, &h, &claims.to_string());
    w.verifier(&w.executor)
        .verify(&env, PAYLOAD, &ctx())
        .unwrap();
}

// ---------------------------------------------------------------- too_large

#[test]
fn too_large_envelope() {
    let w = World::new();
    let big = "x".repeat(MAX_ENVELOPE_BYTES + 1);
    assert_reason(
        w.verifier(&w.executor).verify(&big, b"", &ctx()),
        Reason::TooLarge,
    );
}

#[test]
fn too_large_token_in_a_signed_envelope() {
    let w = World::new();
    let mut claims = w.token_claims(
        &w.orchestrator,
        &w.planner,
        None,
        json!([{"action": "tickets.read", "resource": "project/alpha/*"}]),
        0,
    );
    claims["ext"] = json!({"pad": "y".repeat(MAX_TOKEN_BYTES)});
    let token = w.raw_token(&w.orchestrator, &claims);
    let env = w.raw_envelope(
        &w.planner,
        &w.envelope_claims(&w.planner, &w.executor, &[&token]),
    );
    let r = assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::TooLarge,
    );
    assert_eq!(r.location(), Location::Link(0));
}

// ---------------------------------------------------------------- malformed

#[test]
fn malformed_jws_forms() {
    let w = World::new();
    let v = w.verifier(&w.executor);
    let env = w.request(&[w.grant()]).into_string();
    let parts: Vec<&str> = env.split('.').collect();
    let cases = [
        String::new(),
        "a.b".to_owned(),
        format!("{env}.extra"),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{} .{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
        format!("{}.{}+.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", b64(b"not json"), parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], b64(b"[1,2]"), parts[2]),
    ];
    for case in cases {
        assert_reason(v.verify(&case, PAYLOAD, &ctx()), Reason::Malformed);
    }
}

#[test]
fn malformed_non_canonical_trailing_bits() {
    let w = World::new();
    let env = w.request(&[w.grant()]).into_string();
    let parts: Vec<&str> = env.split('.').collect();
    // Flip a trailing bit that base64 decoders commonly ignore in the last char of the
    // signature (64 bytes → 86 chars, 4 spare bits).
    let sig = parts[2];
    let last = sig.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.find(last).unwrap();
    let tweaked = alphabet.chars().nth(idx ^ 1).unwrap();
    let bad = format!(
        "{}.{}.{}{}",
        parts[0],
        parts[1],
        &sig[..sig.len() - 1],
        tweaked
    );
    assert_reason(
        w.verifier(&w.executor).verify(&bad, PAYLOAD, &ctx()),
        Reason::Malformed,
    );
}

#[test]
fn malformed_claims_are_rejected_even_when_signed() {
    let w = World::new();
    let grant = w.grant();
    let v = w.verifier(&w.executor);
    let base = w.envelope_claims(&w.planner, &w.executor, &[grant.as_str()]);
    let mut variants: Vec<String> = Vec::new();
    // unknown member
    let mut c = base.clone();
    c["extra"] = json!(1);
    variants.push(c.to_string());
    // non-integer NumericDates
    let mut c = base.clone();
    c["exp"] = json!(1.5);
    variants.push(c.to_string());
    variants.push(
        base.to_string()
            .replace(&format!("\"iat\":{T0}"), "\"iat\":1.8e9"),
    );
    let mut c = base.clone();
    c["iat"] = json!(-1);
    variants.push(c.to_string());
    let mut c = base.clone();
    c["exp"] = json!(1u64 << 53);
    variants.push(c.to_string());
    // empty chain
    let mut c = base.clone();
    c["chain"] = json!([]);
    variants.push(c.to_string());
    // intent with a wildcard
    let mut c = base.clone();
    c["intent"]["resource"] = json!("project/alpha/*");
    variants.push(c.to_string());
    // aud as an array
    let mut c = base.clone();
    c["aud"] = json!([w.executor.id().as_str()]);
    variants.push(c.to_string());
    // agent id that is not a strict SPIFFE id
    let mut c = base.clone();
    c["iss"] = json!("spiffe://ACME.example/agents/planner");
    variants.push(c.to_string());
    // missing member
    let mut c = base.clone();
    c.as_object_mut().unwrap().remove("digest");
    variants.push(c.to_string());
    // duplicate member (serde_json::Value cannot hold one, so splice the text)
    let text = base.to_string();
    variants.push(text.replacen('{', "{\"task\":\"task-43\",", 1));
    // duplicate member nested in args
    let mut c = base.clone();
    c["intent"]["args"] = json!({"a": 1});
    variants.push(
        c.to_string()
            .replace(r#""args":{"a":1}"#, r#""args":{"a":1,"a":2}"#),
    );
    for (i, claims) in variants.iter().enumerate() {
        let env = sign_raw(
            &w.planner.seed,
            &header(TYP_HANDOFF, w.planner.kid()),
            claims,
        );
        let r = v.verify(&env, PAYLOAD, &ctx());
        assert!(
            matches!(&r, Err(e) if e.reason() == Reason::Malformed),
            "variant {i} ({claims}) gave {r:?}"
        );
    }
}

#[test]
fn malformed_token_claims() {
    let w = World::new();
    let caps = json!([{"action": "tickets.read", "resource": "project/alpha/*"}]);
    let mut variants = Vec::new();
    let base = w.token_claims(&w.orchestrator, &w.planner, None, caps.clone(), 0);
    let mut c = base.clone();
    c["depth"] = json!(16);
    variants.push(c);
    let mut c = base.clone();
    c["caps"] = json!([]);
    variants.push(c);
    let mut c = base.clone();
    c["caps"] = json!([{"action": "tickets.read", "resource": "project/alpha/*", "limits": {"n": {"max": 1, "in": ["x"]}}}]);
    variants.push(c);
    let mut c = base.clone();
    c["ext"] = json!("not an object");
    variants.push(c);
    let mut c = base.clone();
    c["cnf"] = json!({"jkt": w.planner.kid(), "x5t": "x"});
    variants.push(c);
    let mut c = base.clone();
    c["jti"] = json!("short");
    variants.push(c);
    let mut c = base.clone();
    c["task"] = json!("task 42");
    variants.push(c);
    let mut c = base.clone();
    c["delegates"] = json!([]);
    variants.push(c);
    for (i, claims) in variants.iter().enumerate() {
        let token = w.raw_token(&w.orchestrator, claims);
        let env = w.raw_envelope(
            &w.planner,
            &w.envelope_claims(&w.planner, &w.executor, &[&token]),
        );
        let r = w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx());
        assert!(
            matches!(&r, Err(e) if e.reason() == Reason::Malformed && e.location() == Location::Link(0)),
            "variant {i} gave {r:?}"
        );
    }
}

#[test]
fn malformed_header_duplicate_member() {
    let w = World::new();
    let grant = w.grant();
    let claims = w.envelope_claims(&w.planner, &w.executor, &[grant.as_str()]);
    let h = format!(
        r#"{{"alg":"EdDSA","alg":"EdDSA","typ":"{TYP_HANDOFF}","kid":"{}"}}"#,
        w.planner.kid()
    );
    let env = sign_raw(&w.planner.seed, &h, &claims.to_string());
    assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::Malformed,
    );
}

// ---------------------------------------------------------------- unsupported_algorithm

#[test]
fn unsupported_algorithms_including_none() {
    let w = World::new();
    let grant = w.grant();
    let claims = w
        .envelope_claims(&w.planner, &w.executor, &[grant.as_str()])
        .to_string();
    for alg in ["none", "HS256", "RS256", "ES256", "eddsa", "ED25519"] {
        let h = format!(
            r#"{{"alg":"{alg}","typ":"{TYP_HANDOFF}","kid":"{}"}}"#,
            w.planner.kid()
        );
        let env = if alg == "none" {
            format!("{}.{}.", b64(h.as_bytes()), b64(claims.as_bytes()))
        } else {
            sign_raw(&w.planner.seed, &h, &claims)
        };
        assert_reason(
            w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
            Reason::UnsupportedAlgorithm,
        );
    }
}

// ---------------------------------------------------------------- wrong_type

#[test]
fn a_token_is_not_an_envelope_and_vice_versa() {
    let w = World::new();
    let grant = w.grant();
    // A delegation token presented as an envelope.
    assert_reason(
        w.verifier(&w.executor)
            .verify(grant.as_str(), PAYLOAD, &ctx()),
        Reason::WrongType,
    );
    // An envelope's claims signed with typ JWT.
    let claims = w.envelope_claims(&w.planner, &w.executor, &[grant.as_str()]);
    for typ in [
        "JWT",
        "agent-delegation+jwt",
        "application/agent-handoff+jwt",
    ] {
        let env = sign_raw(
            &w.planner.seed,
            &header(typ, w.planner.kid()),
            &claims.to_string(),
        );
        assert_reason(
            w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
            Reason::WrongType,
        );
    }
    // A token with the envelope's typ inside a chain.
    let tc = w.token_claims(
        &w.orchestrator,
        &w.planner,
        None,
        json!([{"action": "tickets.read", "resource": "project/alpha/*"}]),
        0,
    );
    let token = sign_raw(
        &w.orchestrator.seed,
        &header(TYP_HANDOFF, w.orchestrator.kid()),
        &tc.to_string(),
    );
    let env = w.raw_envelope(
        &w.planner,
        &w.envelope_claims(&w.planner, &w.executor, &[&token]),
    );
    let r = assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::WrongType,
    );
    assert_eq!(r.location(), Location::Link(0));
}

// ---------------------------------------------------------------- forbidden_header

#[test]
fn forbidden_header_members() {
    let w = World::new();
    let grant = w.grant();
    let claims = w
        .envelope_claims(&w.planner, &w.executor, &[grant.as_str()])
        .to_string();
    for (name, value) in [
        ("jku", json!("https://evil.example/jwks")),
        ("jwk", json!({"kty": "OKP", "crv": "Ed25519", "x": "AA"})),
        ("x5u", json!("https://evil.example/cert")),
        ("x5c", json!(["MIIB"])),
        ("crit", json!(["b64"])),
        ("b64", json!(false)),
        ("cty", json!("JWT")),
        ("zip", json!("DEF")),
    ] {
        let h = json!({"alg": "EdDSA", "typ": TYP_HANDOFF, "kid": w.planner.kid(), name: value});
        let env = sign_raw(&w.planner.seed, &h.to_string(), &claims);
        assert_reason(
            w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
            Reason::ForbiddenHeader,
        );
    }
}

// ---------------------------------------------------------------- unknown_key

#[test]
fn unknown_envelope_key() {
    let w = World::new();
    let grant = w.grant();
    // The outsider is not in the bundle at all.
    let env = HandoffEnvelope::builder(&w.outsider.identity)
        .to(w.executor.id())
        .intent("tickets.read", "project/alpha/1")
        .unwrap();
    assert!(
        env.chain([&grant]).seal().is_err(),
        "the builder refuses a chain not bound to the sender"
    );
    let claims = w.envelope_claims(&w.outsider, &w.executor, &[grant.as_str()]);
    let raw = w.raw_envelope(&w.outsider, &claims);
    assert_reason(
        w.verifier(&w.executor).verify(&raw, PAYLOAD, &ctx()),
        Reason::UnknownKey,
    );
    // Mallory signs as the planner with her own key: the kid is not the planner's.
    let claims = w.envelope_claims(&w.planner, &w.executor, &[grant.as_str()]);
    let raw = sign_raw(
        &w.mallory.seed,
        &header(TYP_HANDOFF, w.mallory.kid()),
        &claims.to_string(),
    );
    assert_reason(
        w.verifier(&w.executor).verify(&raw, PAYLOAD, &ctx()),
        Reason::UnknownKey,
    );
}

#[test]
fn unknown_delegate_key_in_cnf() {
    let w = World::new();
    let mut claims = w.token_claims(
        &w.orchestrator,
        &w.planner,
        None,
        json!([{"action": "tickets.read", "resource": "project/alpha/*"}]),
        0,
    );
    claims["cnf"]["jkt"] = json!(w.outsider.kid());
    let token = w.raw_token(&w.orchestrator, &claims);
    let env = w.raw_envelope(
        &w.planner,
        &w.envelope_claims(&w.planner, &w.executor, &[&token]),
    );
    let r = assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::UnknownKey,
    );
    assert_eq!(r.location(), Location::Link(0));
}

// ---------------------------------------------------------------- untrusted_root

#[test]
fn root_from_a_non_authority() {
    let w = World::new();
    let forged = DelegationToken::root(&w.mallory.identity)
        .delegate_to(&w.planner.public())
        .task("task-42".parse().unwrap())
        .allow("*", "*")
        .unwrap()
        .issued_at(w.now())
        .sign()
        .unwrap();
    let env = w.request(&[forged]);
    assert_reason(
        w.verifier(&w.executor)
            .verify(env.as_str(), PAYLOAD, &ctx()),
        Reason::UntrustedRoot,
    );
}

// ---------------------------------------------------------------- bad_signature

#[test]
fn bad_envelope_signatures() {
    let w = World::new();
    let env = w.request(&[w.grant()]).into_string();
    let (input, sig) = env.rsplit_once('.').unwrap();
    let mut bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
    // One flipped bit.
    let mut flipped = bytes.clone();
    flipped[10] ^= 1;
    // Non-canonical S: S + L (still < 2^256 because S < 2^253).
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for i in 0..32 {
        let s = u16::from(bytes[32 + i]) + u16::from(L[i]) + carry;
        bytes[32 + i] = (s & 0xff) as u8;
        carry = s >> 8;
    }
    assert_eq!(carry, 0);
    // Wrong lengths: rejected before any point arithmetic.
    let short = flipped[..63].to_vec();
    let long = [flipped.clone(), vec![0]].concat();
    for bad in [flipped, bytes, short, long, vec![0u8; 64]] {
        let forged = format!("{input}.{}", b64(&bad));
        assert_reason(
            w.verifier(&w.executor).verify(&forged, PAYLOAD, &ctx()),
            Reason::BadSignature,
        );
    }
}

#[test]
fn tampered_claims_are_a_bad_signature_not_an_escalation() {
    let w = World::new();
    let grant = w.grant();
    let (h, rest) = grant.as_str().split_once('.').unwrap();
    let (claims_b64, sig) = rest.split_once('.').unwrap();
    let claims = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        claims_b64,
    )
    .unwrap();
    let text = String::from_utf8(claims).unwrap().replace("tickets.*", "*");
    let tampered = format!("{h}.{}.{sig}", b64(text.as_bytes()));
    let env = w.raw_envelope(
        &w.planner,
        &w.envelope_claims(&w.planner, &w.executor, &[&tampered]),
    );
    let r = assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::BadSignature,
    );
    assert_eq!(r.location(), Location::Link(0));
}

// ---------------------------------------------------------------- time

#[test]
fn expired_and_not_yet_valid_envelopes() {
    let w = World::new();
    let env = w.request(&[w.grant()]);
    let v = w.verifier(&w.executor);
    w.clock.set(UnixTime::from_secs(T0 + 60 + 5));
    assert_reason(v.verify(env.as_str(), PAYLOAD, &ctx()), Reason::Expired);
    w.clock.set(UnixTime::from_secs(T0 - 6));
    assert_reason(v.verify(env.as_str(), PAYLOAD, &ctx()), Reason::NotYetValid);
    // Within leeway on both sides.
    w.clock.set(UnixTime::from_secs(T0 - 5));
    v.verify(env.as_str(), PAYLOAD, &ctx()).unwrap();
}

#[test]
fn expired_and_not_yet_valid_links() {
    let w = World::new();
    let caps = json!([{"action": "tickets.read", "resource": "project/alpha/*"}]);
    let mut c = w.token_claims(&w.orchestrator, &w.planner, None, caps.clone(), 0);
    c["iat"] = json!(T0 - 700);
    c["exp"] = json!(T0 - 100);
    let old = w.raw_token(&w.orchestrator, &c);
    let env = w.raw_envelope(
        &w.planner,
        &w.envelope_claims(&w.planner, &w.executor, &[&old]),
    );
    let r = assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::Expired,
    );
    assert_eq!(r.location(), Location::Link(0));
    let mut c = w.token_claims(&w.orchestrator, &w.planner, None, caps, 0);
    c["nbf"] = json!(T0 + 100);
    let early = w.raw_token(&w.orchestrator, &c);
    let env = w.raw_envelope(
        &w.planner,
        &w.envelope_claims(&w.planner, &w.executor, &[&early]),
    );
    assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::NotYetValid,
    );
}

#[test]
fn lifetimes_too_long() {
    let w = World::new();
    let grant = w.grant();
    let env = HandoffEnvelope::builder(&w.planner.identity)
        .to(w.executor.id())
        .intent("tickets.read", "project/alpha/1")
        .unwrap()
        .payload(PAYLOAD)
        .chain([&grant])
        .ttl(Duration::from_secs(121))
        .issued_at(w.now())
        .seal()
        .unwrap();
    assert_reason(
        w.verifier(&w.executor)
            .verify(env.as_str(), PAYLOAD, &ctx()),
        Reason::TtlTooLong,
    );
    let long = DelegationToken::root(&w.orchestrator.identity)
        .delegate_to(&w.planner.public())
        .task("task-42".parse().unwrap())
        .allow("tickets.read", "project/alpha/*")
        .unwrap()
        .ttl(Duration::from_secs(3601))
        .issued_at(w.now())
        .sign()
        .unwrap();
    let env = w.request(&[long]);
    let r = assert_reason(
        w.verifier(&w.executor)
            .verify(env.as_str(), PAYLOAD, &ctx()),
        Reason::TtlTooLong,
    );
    assert_eq!(r.location(), Location::Link(0));
}

// ---------------------------------------------------------------- wrong_audience

#[test]
fn envelope_for_someone_else() {
    let w = World::new();
    let env = w.request(&[w.grant()]);
    assert_reason(
        w.verifier(&w.payments)
            .verify(env.as_str(), PAYLOAD, &ctx()),
        Reason::WrongAudience,
    );
}

// ---------------------------------------------------------------- chain_too_long

#[test]
fn chain_longer_than_the_verifier_allows() {
    let w = World::new();
    let grant = w.grant();
    let sub = w.sub_grant(&grant);
    let env = HandoffEnvelope::builder(&w.executor.identity)
        .to(w.payments.id())
        .intent("tickets.read", "project/alpha/1")
        .unwrap()
        .chain([&grant, &sub])
        .issued_at(w.now())
        .seal()
        .unwrap();
    let mut limits = Limits::default();
    limits.max_chain_len = 1;
    let v = w
        .verifier_builder(&w.payments)
        .limits(limits)
        .build()
        .unwrap();
    assert_reason(v.verify(env.as_str(), b"", &ctx()), Reason::ChainTooLong);
}

#[test]
fn chain_longer_than_eight_links() {
    let w = World::new();
    let grant = w.grant();
    let chain: Vec<&str> = std::iter::repeat_n(grant.as_str(), 9).collect();
    let env = w.raw_envelope(
        &w.planner,
        &w.envelope_claims(&w.planner, &w.executor, &chain),
    );
    assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::ChainTooLong,
    );
}

// ---------------------------------------------------------------- broken_chain

#[test]
fn spliced_chain() {
    let w = World::new();
    // Two grants from the same authority to the planner; a child of the second spliced
    // under the first.
    let grant_a = w.grant();
    let grant_b = w.grant();
    let child_of_b = w.sub_grant(&grant_b);
    let claims = w.envelope_claims(
        &w.planner,
        &w.executor,
        &[grant_a.as_str(), child_of_b.as_str()],
    );
    let env = w.raw_envelope(&w.planner, &claims);
    let r = assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::BrokenChain,
    );
    assert_eq!(r.location(), Location::Link(1));
}

#[test]
fn child_issuer_or_key_not_bound_by_parent() {
    let w = World::new();
    let grant = w.grant();
    let caps = json!([{"action": "tickets.read", "resource": "project/alpha/*"}]);
    // Issued by mallory although the parent names the planner.
    let c = w.token_claims(
        &w.mallory,
        &w.executor,
        Some(grant.as_str()),
        caps.clone(),
        0,
    );
    let child = w.raw_token(&w.mallory, &c);
    let env = w.raw_envelope(
        &w.mallory,
        &w.envelope_claims(&w.mallory, &w.executor, &[grant.as_str(), &child]),
    );
    assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::BrokenChain,
    );
    // Root with a parent.
    let mut c = w.token_claims(&w.orchestrator, &w.planner, Some(grant.as_str()), caps, 0);
    c["jti"] = json!("root-with-a-parent-01");
    let root = w.raw_token(&w.orchestrator, &c);
    let env = w.raw_envelope(
        &w.planner,
        &w.envelope_claims(&w.planner, &w.executor, &[&root]),
    );
    assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::BrokenChain,
    );
}

#[test]
fn child_signed_with_another_key_of_the_right_issuer() {
    let mut w = World::new();
    // The planner rotates: a second key is registered, but the grant binds the first.
    let planner2 = Agent::new("spiffe://acme.example/agents/planner", 22);
    w.bundle.add_agent(&planner2.public()).unwrap();
    let grant = w.grant();
    let c = w.token_claims(
        &w.planner,
        &w.executor,
        Some(grant.as_str()),
        json!([{"action": "tickets.read", "resource": "project/alpha/*"}]),
        0,
    );
    let child = w.raw_token(&planner2, &c);
    let env = w.raw_envelope(
        &planner2,
        &w.envelope_claims(&w.planner, &w.executor, &[grant.as_str(), &child]),
    );
    let r = assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::BrokenChain,
    );
    assert_eq!(r.location(), Location::Link(1));
}

// ---------------------------------------------------------------- delegation_forbidden

fn child_env(w: &World, parent: &DelegationToken, claims: serde_json::Value) -> String {
    let child = w.raw_token(&w.planner, &claims);
    let sub_id = claims["sub"].as_str().unwrap().to_owned();
    let aud = [
        &w.executor,
        &w.payments,
        &w.mallory,
        &w.orchestrator,
        &w.planner,
    ]
    .into_iter()
    .find(|a| a.id().as_str() == sub_id)
    .unwrap();
    let mut env = w.envelope_claims(&w.planner, aud, &[parent.as_str(), &child]);
    env["aud"] = json!(w.executor.id().as_str());
    w.raw_envelope(&w.planner, &env)
}

#[test]
fn delegating_beyond_depth_zero() {
    let w = World::new();
    let grant = DelegationToken::root(&w.orchestrator.identity)
        .delegate_to(&w.planner.public())
        .task("task-42".parse().unwrap())
        .allow("tickets.*", "project/alpha/*")
        .unwrap()
        .depth(0)
        .issued_at(w.now())
        .sign()
        .unwrap();
    assert!(grant
        .attenuate(&w.planner.identity)
        .delegate_to(&w.executor.public())
        .allow("tickets.read", "project/alpha/*")
        .unwrap()
        .sign()
        .is_err());
    let c = w.token_claims(
        &w.planner,
        &w.executor,
        Some(grant.as_str()),
        json!([{"action": "tickets.read", "resource": "project/alpha/*"}]),
        0,
    );
    let env = child_env(&w, &grant, c);
    assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::DelegationForbidden,
    );
}

#[test]
fn delegating_outside_delegates() {
    let w = World::new();
    let grant = DelegationToken::root(&w.orchestrator.identity)
        .delegate_to(&w.planner.public())
        .task("task-42".parse().unwrap())
        .allow("tickets.*", "project/alpha/*")
        .unwrap()
        .depth(1)
        .delegates(["spiffe://acme.example/tools/*"])
        .unwrap()
        .issued_at(w.now())
        .sign()
        .unwrap();
    let mut c = w.token_claims(
        &w.planner,
        &w.executor,
        Some(grant.as_str()),
        json!([{"action": "tickets.read", "resource": "project/alpha/*"}]),
        0,
    );
    c["delegates"] = json!(["spiffe://acme.example/tools/*"]);
    let env = child_env(&w, &grant, c);
    assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::DelegationForbidden,
    );
}

#[test]
fn self_delegation_and_cycles() {
    let w = World::new();
    // Root that delegates to its own issuer.
    let c = w.token_claims(
        &w.orchestrator,
        &w.orchestrator,
        None,
        json!([{"action": "tickets.read", "resource": "project/alpha/*"}]),
        1,
    );
    let root = w.raw_token(&w.orchestrator, &c);
    let env = w.raw_envelope(
        &w.orchestrator,
        &w.envelope_claims(&w.orchestrator, &w.executor, &[&root]),
    );
    assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::DelegationForbidden,
    );
    // planner → executor → planner: a cycle.
    let grant = w.grant();
    let sub = w.sub_grant(&grant);
    let c = w.token_claims(
        &w.executor,
        &w.planner,
        Some(sub.as_str()),
        json!([{"action": "tickets.read", "resource": "project/alpha/*"}]),
        0,
    );
    let back = w.raw_token(&w.executor, &c);
    let env = w.raw_envelope(
        &w.planner,
        &w.envelope_claims(
            &w.planner,
            &w.executor,
            &[grant.as_str(), sub.as_str(), &back],
        ),
    );
    let r = assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::DelegationForbidden,
    );
    assert_eq!(r.location(), Location::Link(2));
}

// ---------------------------------------------------------------- escalation

#[test]
fn escalations_are_refused_by_the_builder_and_the_verifier() {
    let w = World::new();
    let grant = w.grant();
    // The builder refuses each.
    let b = || {
        grant
            .attenuate(&w.planner.identity)
            .delegate_to(&w.executor.public())
    };
    assert!(
        b().allow("tickets.*", "project/*").unwrap().sign().is_err(),
        "wider resource"
    );
    assert!(
        b().allow("admin.delete", "project/alpha/1")
            .unwrap()
            .sign()
            .is_err(),
        "other action"
    );
    assert!(
        b().grant(
            Capability::new("payments.execute", "account/ops/1")
                .unwrap()
                .max("amount", 501)
                .unwrap()
        )
        .sign()
        .is_err(),
        "looser limit"
    );
    assert!(
        b().grant(Capability::new("payments.execute", "account/ops/1").unwrap())
            .sign()
            .is_err(),
        "dropped limit"
    );
    assert!(
        b().allow("tickets.read", "project/alpha/1")
            .unwrap()
            .depth(2)
            .sign()
            .is_err(),
        "depth"
    );
    assert!(
        b().allow("tickets.read", "project/alpha/1")
            .unwrap()
            .ttl(Duration::from_secs(601))
            .issued_at(w.now())
            .sign()
            .is_err(),
        "outlives parent"
    );

    // The verifier refuses each when hand-crafted.
    let read = json!([{"action": "tickets.read", "resource": "project/alpha/*"}]);
    let cases = [
        ("wider capability", w.token_claims(&w.planner, &w.executor, Some(grant.as_str()), json!([{"action": "*", "resource": "*"}]), 0)),
        ("looser limit", w.token_claims(&w.planner, &w.executor, Some(grant.as_str()),
            json!([{"action": "payments.execute", "resource": "account/ops/*", "limits": {"amount": {"max": 1000}}}]), 0)),
        ("depth", w.token_claims(&w.planner, &w.executor, Some(grant.as_str()), read.clone(), 2)),
        ("outlives", {
            let mut c = w.token_claims(&w.planner, &w.executor, Some(grant.as_str()), read.clone(), 0);
            c["exp"] = json!(T0 + 601);
            c
        }),
    ];
    for (what, claims) in cases {
        let env = child_env(&w, &grant, claims);
        let r = w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx());
        assert!(
            matches!(&r, Err(e) if e.reason() == Reason::Escalation),
            "{what}: {r:?}"
        );
    }
}

#[test]
fn dropping_or_widening_delegates_is_an_escalation() {
    let w = World::new();
    let grant = DelegationToken::root(&w.orchestrator.identity)
        .delegate_to(&w.planner.public())
        .task("task-42".parse().unwrap())
        .allow("tickets.*", "project/alpha/*")
        .unwrap()
        .depth(2)
        .delegates(["spiffe://acme.example/agents/*"])
        .unwrap()
        .issued_at(w.now())
        .sign()
        .unwrap();
    let read = json!([{"action": "tickets.read", "resource": "project/alpha/*"}]);
    let dropped = w.token_claims(
        &w.planner,
        &w.executor,
        Some(grant.as_str()),
        read.clone(),
        1,
    );
    let env = child_env(&w, &grant, dropped);
    assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::Escalation,
    );
    let mut widened = w.token_claims(&w.planner, &w.executor, Some(grant.as_str()), read, 1);
    widened["delegates"] = json!([
        "spiffe://acme.example/agents/*",
        "spiffe://acme.example/tools/*"
    ]);
    let env = child_env(&w, &grant, widened);
    assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::Escalation,
    );
}

// ---------------------------------------------------------------- task_mismatch

#[test]
fn task_mismatches() {
    let w = World::new();
    let grant = w.grant();
    let mut c = w.envelope_claims(&w.planner, &w.executor, &[grant.as_str()]);
    c["task"] = json!("task-43");
    let env = w.raw_envelope(&w.planner, &c);
    assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::TaskMismatch,
    );
    let mut child = w.token_claims(
        &w.planner,
        &w.executor,
        Some(grant.as_str()),
        json!([{"action": "tickets.read", "resource": "project/alpha/*"}]),
        0,
    );
    child["task"] = json!("task-43");
    let env = child_env(&w, &grant, child);
    let r = assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::TaskMismatch,
    );
    assert_eq!(r.location(), Location::Link(1));
}

// ---------------------------------------------------------------- cross_domain

#[test]
fn cross_domain_needs_federation() {
    let w = World::new();
    let mut partner_bundle = TrustBundle::new("partner.example").unwrap();
    partner_bundle.add_agent(&w.partner.public()).unwrap();
    // The partner agent's key is known (so the failure is the domain rule, not the key).
    let mut known = w.bundle.clone();
    let mut with_partner = w.bundle.clone();
    with_partner.federate(&partner_bundle).unwrap();
    // A bundle that knows the key but does not federate cannot even hold it:
    assert!(known.add_agent(&w.partner.public()).is_err());

    let grant = DelegationToken::root(&w.orchestrator.identity)
        .delegate_to(&w.partner.public())
        .task("task-42".parse().unwrap())
        .allow("tickets.read", "project/alpha/*")
        .unwrap()
        .issued_at(w.now())
        .sign()
        .unwrap();
    let env = HandoffEnvelope::builder(&w.partner.identity)
        .to(w.executor.id())
        .intent("tickets.read", "project/alpha/1")
        .unwrap()
        .payload(PAYLOAD)
        .chain([&grant])
        .issued_at(w.now())
        .seal()
        .unwrap();
    // Federated: accepted.
    let v = HandoffVerifier::builder(w.executor.id().clone(), with_partner.clone())
        .clock(w.clock.clone())
        .audit(MemoryAudit::new())
        .build()
        .unwrap();
    v.verify(env.as_str(), PAYLOAD, &ctx()).unwrap();

    // A resolver that knows the key but does not federate the domain: cross_domain.
    #[derive(Debug)]
    struct KnowsButDoesNotFederate(TrustBundle);
    impl KeyResolver for KnowsButDoesNotFederate {
        fn resolve(&self, a: &AgentId, k: &KeyId) -> Option<ed25519_dalek::VerifyingKey> {
            self.0.resolve(a, k)
        }
        fn is_authority(&self, a: &AgentId) -> bool {
            self.0.is_authority(a)
        }
        fn federates(&self, d: &str) -> bool {
            d == "acme.example"
        }
        fn generation(&self) -> u64 {
            self.0.generation()
        }
    }
    let v = HandoffVerifier::builder(
        w.executor.id().clone(),
        KnowsButDoesNotFederate(with_partner),
    )
    .clock(w.clock.clone())
    .audit(MemoryAudit::new())
    .build()
    .unwrap();
    let r = assert_reason(v.verify(env.as_str(), PAYLOAD, &ctx()), Reason::CrossDomain);
    assert_eq!(r.location(), Location::Link(0));
}

// ---------------------------------------------------------------- sender_mismatch

#[test]
fn stolen_chain_used_by_another_agent() {
    let w = World::new();
    let grant = w.grant();
    // Mallory (a registered agent) presents the planner's grant as her own.
    let claims = w.envelope_claims(&w.mallory, &w.executor, &[grant.as_str()]);
    let env = w.raw_envelope(&w.mallory, &claims);
    assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::SenderMismatch,
    );
}

#[test]
fn request_signed_with_a_key_the_chain_does_not_bind() {
    let mut w = World::new();
    let planner2 = Agent::new("spiffe://acme.example/agents/planner", 22);
    w.bundle.add_agent(&planner2.public()).unwrap();
    let grant = w.grant(); // bound to the planner's first key
    let env = w.raw_envelope(
        &planner2,
        &w.envelope_claims(&w.planner, &w.executor, &[grant.as_str()]),
    );
    assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::SenderMismatch,
    );
}

#[test]
fn delegation_to_a_third_party_is_not_for_this_recipient() {
    let w = World::new();
    let grant = w.grant();
    let sub = w.sub_grant(&grant); // planner → executor
                                   // The planner sends that delegation to the payments tool.
    let claims = w.envelope_claims(&w.planner, &w.payments, &[grant.as_str(), sub.as_str()]);
    let env = w.raw_envelope(&w.planner, &claims);
    assert_reason(
        w.verifier(&w.payments).verify(&env, PAYLOAD, &ctx()),
        Reason::SenderMismatch,
    );
}

// ---------------------------------------------------------------- intent_not_granted

#[test]
fn intents_outside_the_grant() {
    let w = World::new();
    let grant = w.grant();
    let v = w.verifier(&w.executor);
    let seal = |action: &str, resource: &str, amount: Option<i64>| {
        let mut b = HandoffEnvelope::builder(&w.planner.identity)
            .to(w.executor.id())
            .intent(action, resource)
            .unwrap();
        if let Some(a) = amount {
            b = b.arg("amount", a);
        }
        b.chain([&grant]).issued_at(w.now()).seal().unwrap()
    };
    for env in [
        seal("tickets.read", "project/beta/1", None),
        seal("secrets.read", "project/alpha/1", None),
        seal("payments.execute", "account/ops/1", Some(501)),
        seal("payments.execute", "account/ops/1", None),
    ] {
        assert_reason(
            v.verify(env.as_str(), b"", &ctx()),
            Reason::IntentNotGranted,
        );
    }
    v.verify(
        seal("payments.execute", "account/ops/1", Some(500)).as_str(),
        b"",
        &ctx(),
    )
    .unwrap();
}

// ---------------------------------------------------------------- payload_mismatch

#[test]
fn payload_swapped() {
    let w = World::new();
    let env = w.request(&[w.grant()]);
    assert_reason(
        w.verifier(&w.executor)
            .verify(env.as_str(), br#"{"ticket":124}"#, &ctx()),
        Reason::PayloadMismatch,
    );
}

// ---------------------------------------------------------------- revoked

#[test]
fn revocations_of_every_kind() {
    let w = World::new();
    let grant = w.grant();
    let sub = w.sub_grant(&grant);
    let fresh = || {
        HandoffEnvelope::builder(&w.executor.identity)
            .to(w.payments.id())
            .intent("tickets.read", "project/alpha/1")
            .unwrap()
            .chain([&grant, &sub])
            .issued_at(w.now())
            .seal()
            .unwrap()
    };
    let check = |revs: MemoryRevocations| {
        let v = w
            .verifier_builder(&w.payments)
            .revocations(revs)
            .build()
            .unwrap();
        assert_reason(v.verify(fresh().as_str(), b"", &ctx()), Reason::Revoked);
    };
    let r = MemoryRevocations::new();
    r.revoke_token(grant.id(), w.now()).unwrap(); // the parent: cascades to the child
    check(r);
    let r = MemoryRevocations::new();
    r.revoke_task(&"task-42".parse().unwrap(), w.now()).unwrap();
    check(r);
    let r = MemoryRevocations::new();
    r.revoke_agent(w.planner.id()).unwrap(); // an agent in the middle of the chain
    check(r);
    let r = MemoryRevocations::new();
    r.revoke_issued_before(UnixTime::from_secs(T0 + 1)).unwrap();
    check(r);
    // Unrelated revocations do not apply.
    let r = MemoryRevocations::new();
    r.revoke_token(&TokenId::random(), w.now()).unwrap();
    r.revoke_task(&"task-7".parse().unwrap(), w.now()).unwrap();
    r.revoke_issued_before(UnixTime::from_secs(T0)).unwrap();
    let v = w
        .verifier_builder(&w.payments)
        .revocations(r)
        .build()
        .unwrap();
    v.verify(fresh().as_str(), b"", &ctx()).unwrap();
}

// ---------------------------------------------------------------- policy_denied

#[derive(Debug)]
struct NoPaymentsInProd;
impl Policy for NoPaymentsInProd {
    fn evaluate(&self, r: &PolicyRequest<'_>) -> PolicyDecision {
        if r.intent.action().starts_with("payments.") && r.context.environment() == Some("prod") {
            PolicyDecision::deny("no-payments-in-prod").with_version("v7")
        } else {
            PolicyDecision::allow("default-allow").with_version("v7")
        }
    }
}

#[test]
fn policy_denies_with_the_rule_named() {
    let w = World::new();
    let grant = w.grant();
    let v = w
        .verifier_builder(&w.executor)
        .policy(NoPaymentsInProd)
        .build()
        .unwrap();
    let pay = || {
        HandoffEnvelope::builder(&w.planner.identity)
            .to(w.executor.id())
            .intent("payments.execute", "account/ops/1")
            .unwrap()
            .arg("amount", 10)
            .chain([&grant])
            .issued_at(w.now())
            .seal()
            .unwrap()
    };
    let r = assert_reason(
        v.verify(
            pay().as_str(),
            b"",
            &RequestContext::new().with("environment", "prod"),
        ),
        Reason::PolicyDenied,
    );
    assert!(r.detail().contains("no-payments-in-prod"));
    let records = w.audit.records();
    let last = records.last().unwrap();
    assert_eq!(last.reason(), Some(Reason::PolicyDenied));
    assert_eq!(last.policy(), Some("no-payments-in-prod"));
    assert!(last.to_json().contains(r#""policy_version":"v7""#));
    let ok = v
        .verify(
            pay().as_str(),
            b"",
            &RequestContext::new().with("environment", "staging"),
        )
        .unwrap();
    assert_eq!(ok.policy_rule(), "default-allow");
    assert_eq!(ok.policy_version(), Some("v7"));
}

// ---------------------------------------------------------------- replayed

#[test]
fn replay_is_refused() {
    let w = World::new();
    let env = w.request(&[w.grant()]);
    let v = w.verifier(&w.executor);
    v.verify(env.as_str(), PAYLOAD, &ctx()).unwrap();
    assert_reason(v.verify(env.as_str(), PAYLOAD, &ctx()), Reason::Replayed);
}

#[test]
fn a_denied_envelope_does_not_burn_its_id() {
    let w = World::new();
    let env = w.request(&[w.grant()]);
    let v = w.verifier(&w.executor);
    assert_reason(
        v.verify(env.as_str(), b"wrong", &ctx()),
        Reason::PayloadMismatch,
    );
    v.verify(env.as_str(), PAYLOAD, &ctx()).unwrap();
}

// ---------------------------------------------------------------- unavailable

#[derive(Debug)]
struct Broken;
impl Revocations for Broken {
    fn check(&self, _: &RevocationQuery<'_>) -> Result<Option<Revoked>, StoreError> {
        Err(StoreError::new("revocations", "connection refused"))
    }
    fn retention(&self) -> Option<std::time::Duration> {
        None
    }
}
impl ReplayCache for Broken {
    fn check_and_insert(
        &self,
        _: &TokenId,
        _: UnixTime,
        _: UnixTime,
    ) -> Result<Freshness, StoreError> {
        Err(StoreError::new("replay cache", "timeout"))
    }
}
impl AuditSink for Broken {
    fn record(&self, _: &AuditRecord) -> Result<(), StoreError> {
        Err(StoreError::new("audit sink", "disk full"))
    }
}

#[test]
fn stores_that_cannot_answer_mean_deny() {
    let w = World::new();
    let grant = w.grant();
    let v = w
        .verifier_builder(&w.executor)
        .revocations(Broken)
        .build()
        .unwrap();
    assert_reason(
        v.verify(
            w.request(std::slice::from_ref(&grant)).as_str(),
            PAYLOAD,
            &ctx(),
        ),
        Reason::Unavailable,
    );
    let v = w
        .verifier_builder(&w.executor)
        .replay(Broken)
        .build()
        .unwrap();
    assert_reason(
        v.verify(
            w.request(std::slice::from_ref(&grant)).as_str(),
            PAYLOAD,
            &ctx(),
        ),
        Reason::Unavailable,
    );
    let v = w
        .verifier_builder(&w.executor)
        .audit(Broken)
        .build()
        .unwrap();
    assert_reason(
        v.verify(
            w.request(std::slice::from_ref(&grant)).as_str(),
            PAYLOAD,
            &ctx(),
        ),
        Reason::Unavailable,
    );
    // A full replay cache denies rather than forgets.
    let v = w
        .verifier_builder(&w.executor)
        .replay(MemoryReplayCache::new(1))
        .build()
        .unwrap();
    let mut outcomes = Vec::new();
    for _ in 0..40 {
        outcomes.push(
            v.verify(
                w.request(std::slice::from_ref(&grant)).as_str(),
                PAYLOAD,
                &ctx(),
            )
            .map(|_| ())
            .map_err(|r| r.reason()),
        );
    }
    assert!(outcomes.contains(&Err(Reason::Unavailable)));
}

// ---------------------------------------------------------------- every code is covered

#[test]
fn every_reason_code_is_stable() {
    let codes: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        codes,
        [
            "too_large",
            "malformed",
            "unsupported_algorithm",
            "wrong_type",
            "forbidden_header",
            "unknown_key",
            "untrusted_root",
            "bad_signature",
            "not_yet_valid",
            "expired",
            "ttl_too_long",
            "wrong_audience",
            "chain_too_long",
            "broken_chain",
            "delegation_forbidden",
            "escalation",
            "task_mismatch",
            "cross_domain",
            "sender_mismatch",
            "intent_not_granted",
            "payload_mismatch",
            "revoked",
            "policy_denied",
            "replayed",
            "unavailable",
            "non_canonical_path",
            "timeout",
        ]
    );
    for r in Reason::ALL {
        assert_eq!(Reason::from_code(r.as_str()), Some(r));
    }
}

// ---------------------------------------------------------------- lifetimes cannot be stretched
// The SPEC measures a lifetime as `exp - iat`; a token whose `nbf` lies before its `iat`, or
// whose `iat` lies in the future, would be in force longer than that. This crate counts the
// lifetime from the earlier of `iat` and `nbf`, and refuses an `iat` in the future.

#[test]
fn a_future_iat_cannot_hide_a_long_life() {
    let w = World::new();
    let caps = json!([{"action": "tickets.read", "resource": "project/alpha/*"}]);
    let mut c = w.token_claims(&w.orchestrator, &w.planner, None, caps, 0);
    c["nbf"] = json!(T0);
    c["iat"] = json!(T0 + 30 * 24 * 3600);
    c["exp"] = json!(T0 + 30 * 24 * 3600 + 600);
    let token = w.raw_token(&w.orchestrator, &c);
    let env = w.raw_envelope(
        &w.planner,
        &w.envelope_claims(&w.planner, &w.executor, &[&token]),
    );
    let r = assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::NotYetValid,
    );
    assert_eq!(r.location(), Location::Link(0));
}

#[test]
fn an_early_nbf_counts_towards_the_lifetime() {
    let w = World::new();
    let caps = json!([{"action": "tickets.read", "resource": "project/alpha/*"}]);
    let mut c = w.token_claims(&w.orchestrator, &w.planner, None, caps, 0);
    c["nbf"] = json!(T0 - 3000);
    c["iat"] = json!(T0);
    c["exp"] = json!(T0 + 1000);
    let token = w.raw_token(&w.orchestrator, &c);
    let env = w.raw_envelope(
        &w.planner,
        &w.envelope_claims(&w.planner, &w.executor, &[&token]),
    );
    let r = assert_reason(
        w.verifier(&w.executor).verify(&env, PAYLOAD, &ctx()),
        Reason::TtlTooLong,
    );
    assert_eq!(r.location(), Location::Link(0));
}

/// A rejection carries a typed fault with the values that show it; its reason and its detail
/// are derived from the fault.
#[test]
fn rejections_carry_typed_faults() {
    let w = World::new();
    let grant = w.grant();
    let wire = w.request(&[grant]);
    // Addressed to the executor, verified by the payments tool.
    let r = assert_reason(
        w.verifier(&w.payments)
            .verify(wire.as_str(), PAYLOAD, &ctx()),
        Reason::WrongAudience,
    );
    assert_eq!(
        r.fault(),
        &Fault::WrongAudience {
            claimed: w.executor.id().to_string(),
            me: w.payments.id().to_string(),
        }
    );
    assert_eq!(r.location(), Location::Envelope);
    assert_eq!(r.fault().reason(), r.reason());
    assert_eq!(r.detail(), r.fault().to_string());
    // Verified 61 s after the envelope expired (its lifetime is 60 s, the leeway 5 s).
    let late = w
        .verifier_builder(&w.executor)
        .clock(agent_handoff::clock::FixedClock::new(
            w.now().plus(std::time::Duration::from_secs(121)),
        ))
        .build()
        .unwrap();
    let r = assert_reason(late.verify(wire.as_str(), PAYLOAD, &ctx()), Reason::Expired);
    let Fault::Expired { exp, now, leeway } = r.fault() else {
        panic!("not an expiry: {r:?}");
    };
    assert_eq!(*exp, wire.claimed_expiry());
    assert_eq!(now.as_secs(), w.now().as_secs() + 121);
    assert_eq!(leeway.as_secs(), 5);
    // A transport binding's own refusal keeps its reason and shows its text escaped.
    let r = Rejection::new(Reason::Timeout, Location::Envelope, "slow\u{1b}");
    assert_eq!(r.reason(), Reason::Timeout);
    assert_eq!(r.detail(), r"slow\u{1b}");
    assert!(matches!(
        r.fault(),
        Fault::Binding {
            reason: Reason::Timeout,
            ..
        }
    ));
}
