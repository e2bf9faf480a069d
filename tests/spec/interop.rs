//! Interop with independent implementations, both directions: the `jsonwebtoken` crate,
//! Python's PyJWT and `cryptography`, and `openssl pkey`.
//!
//! The Python parts need an interpreter with `pyjwt` and `cryptography`, named by the
//! `HANDOFF_PYTHON` environment variable (`.ci/run` sets it to a virtual environment it makes).
//! When it is unset they are skipped with a printed notice, so a plain `cargo test` on a fresh
//! machine passes. The `openssl` part is skipped likewise when `openssl` is not on `PATH`.

use crate::common::*;
use agent_handoff::keys::AgentKey;
use agent_handoff::wire::TYP_DELEGATION;
use agent_handoff::wire::TYP_HANDOFF;
use agent_handoff::*;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

fn ctx() -> RequestContext {
    RequestContext::new()
}

/// jsonwebtoken's view: signature (EdDSA) under the raw key, and the `typ` we expect. Time is
/// not checked (the fixtures live at a fixed instant); jsonwebtoken checks neither `typ` nor
/// `iat`, so `typ` is checked here.
fn jsonwebtoken_verify(token: &str, key: &AgentKey, typ: &str) -> Result<Value, String> {
    let raw = key.as_bytes();
    // jsonwebtoken slices the key to 32 bytes and panics on shorter input: always 32 here.
    let dk = DecodingKey::from_ed_der(raw);
    let mut v = Validation::new(Algorithm::EdDSA);
    v.validate_aud = false;
    v.validate_exp = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Value>(token, &dk, &v).map_err(|e| format!("{e:?}"))?;
    if data.header.typ.as_deref() != Some(typ) {
        return Err(format!("typ {:?}", data.header.typ));
    }
    Ok(data.claims)
}

fn tampered(token: &str) -> String {
    let (head, sig) = token.rsplit_once('.').unwrap();
    let mut sig = sig.as_bytes().to_vec();
    sig[5] = if sig[5] == b'A' { b'B' } else { b'A' };
    format!("{head}.{}", String::from_utf8(sig).unwrap())
}

#[test]
fn crate_tokens_and_envelopes_verify_under_jsonwebtoken() {
    let w = World::new();
    let grant = w.grant();
    let sub = w.sub_grant(&grant);
    let claims = jsonwebtoken_verify(
        grant.as_str(),
        w.orchestrator.identity.key(),
        TYP_DELEGATION,
    )
    .unwrap();
    assert_eq!(claims, grant.claims_json());
    let claims =
        jsonwebtoken_verify(sub.as_str(), w.planner.identity.key(), TYP_DELEGATION).unwrap();
    assert_eq!(claims["iss"], w.planner.id().as_str());
    let env = w.request(std::slice::from_ref(&grant));
    let claims = jsonwebtoken_verify(env.as_str(), w.planner.identity.key(), TYP_HANDOFF).unwrap();
    assert_eq!(claims, env.claims_json());
    assert_eq!(claims["chain"][0], grant.as_str());
    // It is a real check: the wrong key, or one changed signature byte, fails.
    assert!(jsonwebtoken_verify(env.as_str(), w.mallory.identity.key(), TYP_HANDOFF).is_err());
    assert!(jsonwebtoken_verify(
        &tampered(env.as_str()),
        w.planner.identity.key(),
        TYP_HANDOFF
    )
    .is_err());
}

#[test]
fn jsonwebtoken_tokens_and_envelopes_verify_under_the_crate() {
    let w = World::new();
    let sign = |agent: &Agent, typ: &str, claims: &Value| {
        let pem = agent.identity.export_pkcs8_pem().unwrap();
        let key = EncodingKey::from_ed_pem(pem.as_bytes()).unwrap();
        let mut h = Header::new(Algorithm::EdDSA);
        h.typ = Some(typ.to_owned());
        h.kid = Some(agent.kid().to_owned());
        jsonwebtoken::encode(&h, claims, &key).unwrap()
    };
    let caps = json!([{"action": "tickets.*", "resource": "project/alpha/*"}]);
    let token = sign(
        &w.orchestrator,
        TYP_DELEGATION,
        &w.token_claims(&w.orchestrator, &w.planner, None, caps, 1),
    );
    // The crate's own builder accepts the foreign token as a chain link ...
    let decoded = DelegationToken::decode(&token).unwrap();
    let env = HandoffEnvelope::builder(&w.planner.identity)
        .to(w.executor.id())
        .intent("tickets.read", "project/alpha/1")
        .unwrap()
        .payload(PAYLOAD)
        .chain([&decoded])
        .issued_at(w.now())
        .seal()
        .unwrap();
    w.verifier(&w.executor)
        .verify(env.as_str(), PAYLOAD, &ctx())
        .unwrap();
    // ... and an envelope made by jsonwebtoken too.
    let env = sign(
        &w.planner,
        TYP_HANDOFF,
        &w.envelope_claims(&w.planner, &w.executor, &[&token]),
    );
    let h = w
        .verifier(&w.executor)
        .verify(&env, PAYLOAD, &ctx())
        .unwrap();
    assert_eq!(h.sender(), w.planner.id());
    assert_reason(
        w.verifier(&w.executor)
            .verify(&tampered(&env), PAYLOAD, &ctx()),
        Reason::BadSignature,
    );
}

// ------------------------------------------------------------------ Python and openssl

fn python() -> Option<PathBuf> {
    match std::env::var_os("HANDOFF_PYTHON") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            eprintln!(
                "NOTICE: HANDOFF_PYTHON is not set: skipping the PyJWT/cryptography interop checks \
                 (set it to a python with `pyjwt` and `cryptography`, as .ci/run does)"
            );
            None
        }
    }
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// Runs a helper script; `Ok(stdout)` on exit 0, `Err(stderr)` otherwise.
fn run_py(py: &PathBuf, name: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(py)
        .arg(script(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", py.display()));
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap().trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn x(key: &AgentKey) -> String {
    b64(key.as_bytes())
}

#[test]
fn crate_tokens_and_envelopes_verify_under_pyjwt() {
    let Some(py) = python() else { return };
    let w = World::new();
    let grant = w.grant();
    let env = w.request(std::slice::from_ref(&grant));
    let out = run_py(
        &py,
        "pyjwt_verify.py",
        &[
            grant.as_str(),
            &x(w.orchestrator.identity.key()),
            TYP_DELEGATION,
        ],
    )
    .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        grant.claims_json()
    );
    let out = run_py(
        &py,
        "pyjwt_verify.py",
        &[env.as_str(), &x(w.planner.identity.key()), TYP_HANDOFF],
    )
    .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        env.claims_json()
    );
    // Real checks: a changed signature byte, the wrong key, and the wrong typ all fail.
    let x_planner = x(w.planner.identity.key());
    let bad = tampered(env.as_str());
    assert!(run_py(&py, "pyjwt_verify.py", &[&bad, &x_planner, TYP_HANDOFF]).is_err());
    let x_mallory = x(w.mallory.identity.key());
    assert!(run_py(
        &py,
        "pyjwt_verify.py",
        &[env.as_str(), &x_mallory, TYP_HANDOFF]
    )
    .is_err());
    assert!(run_py(
        &py,
        "pyjwt_verify.py",
        &[env.as_str(), &x_planner, TYP_DELEGATION]
    )
    .is_err());
}

#[test]
fn pyjwt_tokens_with_the_right_claims_verify_under_the_crate() {
    let Some(py) = python() else { return };
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let pem = |agent: &Agent| {
        let path = dir.path().join(format!("{}.pem", agent.id().name()));
        agent.identity.save(&path).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (orch_pem, planner_pem) = (pem(&w.orchestrator), pem(&w.planner));
    let caps = json!([{"action": "tickets.*", "resource": "project/alpha/*"}]);
    let claims = w.token_claims(&w.orchestrator, &w.planner, None, caps, 1);
    let token = run_py(
        &py,
        "pyjwt_make.py",
        &[
            &orch_pem,
            w.orchestrator.kid(),
            TYP_DELEGATION,
            &claims.to_string(),
        ],
    )
    .unwrap();
    let env_claims = w.envelope_claims(&w.planner, &w.executor, &[&token]);
    let env = run_py(
        &py,
        "pyjwt_make.py",
        &[
            &planner_pem,
            w.planner.kid(),
            TYP_HANDOFF,
            &env_claims.to_string(),
        ],
    )
    .unwrap();
    let h = w
        .verifier(&w.executor)
        .verify(&env, PAYLOAD, &ctx())
        .unwrap();
    assert_eq!(h.sender(), w.planner.id());
    assert_eq!(h.chain().len(), 1);
    // PyJWT's default header (`typ: JWT`) is not a delegation token: refused by type.
    let env_claims = w.envelope_claims(&w.planner, &w.executor, &[&token]);
    let jwt_typ = run_py(
        &py,
        "pyjwt_make.py",
        &[
            &planner_pem,
            w.planner.kid(),
            "JWT",
            &env_claims.to_string(),
        ],
    )
    .unwrap();
    assert_reason(
        w.verifier(&w.executor).verify(&jwt_typ, PAYLOAD, &ctx()),
        Reason::WrongType,
    );
}

#[test]
fn a_key_the_crate_writes_is_read_by_python_cryptography() {
    let Some(py) = python() else { return };
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("planner.key.pem");
    w.planner.identity.save(&path).unwrap();
    let out = run_py(&py, "read_key.py", &[path.to_str().unwrap()]).unwrap();
    assert_eq!(out, x(w.planner.identity.key()));
}

#[test]
fn a_key_the_crate_writes_is_read_by_openssl() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("planner.key.pem");
    w.planner.identity.save(&path).unwrap();
    let out = match Command::new("openssl")
        .args(["pkey", "-in"])
        .arg(&path)
        .args(["-pubout", "-outform", "DER"])
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("NOTICE: openssl not runnable ({e}): skipping the openssl interop check");
            return;
        }
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SPKI DER of an Ed25519 key: 12 bytes of algorithm header, then the raw 32-byte key.
    assert_eq!(out.stdout.len(), 44);
    assert_eq!(
        &out.stdout[..12],
        &[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]
    );
    assert_eq!(&out.stdout[12..], w.planner.identity.key().as_bytes());
    // And openssl reads it as an ED25519 private key.
    let text = Command::new("openssl")
        .args(["pkey", "-in"])
        .arg(&path)
        .args(["-noout", "-text"])
        .output()
        .unwrap();
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("ED25519 Private-Key"));
}
