//! Key files, JWKs, trust bundles, and the promise that no secret is ever printed.

mod common;

use agent_handoff::*;
use common::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn key_files_are_written_0600_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("planner.key.pem");
    let id = AgentIdentity::generate(common::id("spiffe://acme.example/agents/planner"));
    id.save(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let back = AgentIdentity::load(id.id().clone(), &path).unwrap();
    assert_eq!(back.kid(), id.kid());
    // Never overwritten.
    assert!(matches!(id.save(&path), Err(Error::Io { .. })));
}

#[test]
fn key_files_readable_by_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    let id = AgentIdentity::generate(common::id("spiffe://acme.example/agents/planner"));
    id.save(&path).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = AgentIdentity::load(id.id().clone(), &path).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("chmod 600"), "{text}");
        assert!(matches!(err, Error::Key { .. }));
    }
}

#[test]
fn key_files_that_are_not_ed25519_pkcs8_are_refused_with_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    std::fs::write(
        &path,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = AgentIdentity::load(common::id("spiffe://a.example/x"), &path).unwrap_err();
    assert!(err.to_string().contains("handoff keygen"), "{err}");
    let missing = AgentIdentity::load(
        common::id("spiffe://a.example/x"),
        dir.path().join("nope.pem"),
    )
    .unwrap_err();
    assert!(missing.to_string().contains("nope.pem"), "{missing}");
}

#[test]
fn openssl_reads_the_key_files_we_write() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("openssl not installed: skipping the openssl cross-check");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    let id = AgentIdentity::generate(common::id("spiffe://a.example/x"));
    id.save(&path).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-in"])
        .arg(&path)
        .args(["-pubout", "-outform", "DER"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SPKI for Ed25519: 12-byte prefix, then the 32-byte key.
    assert_eq!(&out.stdout[12..], id.key().as_bytes());
    // And the reverse: a key openssl generates loads here.
    let theirs = dir.path().join("theirs.pem");
    let gen = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&theirs)
        .output()
        .unwrap();
    assert!(gen.status.success());
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o600)).unwrap();
    AgentIdentity::load(common::id("spiffe://a.example/y"), &theirs).unwrap();
}

#[test]
fn jwk_round_trip_and_thumbprint() {
    let id = AgentIdentity::generate(common::id("spiffe://a.example/x"));
    let json = serde_json::to_string(&id.key().to_jwk()).unwrap();
    let back = AgentKey::from_jwk_json(&json).unwrap();
    assert_eq!(&back, id.key());
    assert_eq!(back.kid().as_str().len(), 43);
    assert_eq!(back.kid(), &KeyId::thumbprint(id.key().as_bytes()));
}

fn bundle_json(x: &str, kid: Option<&str>) -> String {
    let kid = kid.map(|k| format!(r#","kid":"{k}""#)).unwrap_or_default();
    format!(
        r#"{{"trust_domain":"acme.example","authorities":["spiffe://acme.example/orchestrator"],
            "agents":{{"spiffe://acme.example/orchestrator":[{{"kty":"OKP","crv":"Ed25519","x":"{x}"{kid}}}]}}}}"#
    )
}

#[test]
fn bundles_refuse_weak_keys_wrong_kids_and_bad_ids() {
    let good = AgentIdentity::generate(common::id("spiffe://acme.example/orchestrator"));
    let x = b64(good.key().as_bytes());
    TrustBundle::from_json(&bundle_json(&x, None)).unwrap();
    TrustBundle::from_json(&bundle_json(&x, Some(good.kid().as_str()))).unwrap();
    // Wrong kid.
    let other = KeyId::thumbprint(&[9u8; 32]);
    let e = TrustBundle::from_json(&bundle_json(&x, Some(other.as_str()))).unwrap_err();
    assert!(e.to_string().contains("thumbprint"), "{e}");
    // Small-order keys: the identity point and a point of order 8.
    for hex in [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let e = TrustBundle::from_json(&bundle_json(&b64(&bytes), None)).unwrap_err();
        assert!(matches!(e, Error::Bundle { .. }), "{e}");
    }
    // Bad ids, unknown members, duplicate agents, authority without keys.
    let bad = [
        bundle_json(&x, None).replace("spiffe://acme.example/orchestrator\":", "spiffe://acme.example/orchestrator/\":"),
        bundle_json(&x, None).replace("\"trust_domain\"", "\"extra\":1,\"trust_domain\""),
        bundle_json(&x, None).replace("\"crv\"", "\"use\":\"sig\",\"crv\""),
        bundle_json(&x, None).replace("\"authorities\":[", "\"authorities\":[\"spiffe://acme.example/nobody\","),
        bundle_json(&x, None).replace("\"agents\":{", &format!("\"agents\":{{\"spiffe://acme.example/orchestrator\":[{{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"{x}\"}}],")),
        bundle_json(&x, None).replace("acme.example/orchestrator\":[", "other.example/orchestrator\":["),
    ];
    for (i, json) in bad.iter().enumerate() {
        assert!(
            TrustBundle::from_json(json).is_err(),
            "case {i} accepted: {json}"
        );
    }
}

#[test]
fn no_secret_in_debug_errors_or_audit() {
    let w = World::new();
    let pem = w.planner.identity.export_pkcs8_pem().unwrap();
    let pem_body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let seed_b64 = b64(&w.planner.seed);
    let seed_hex: String = w.planner.seed.iter().map(|b| format!("{b:02x}")).collect();
    let grant = w.grant();
    let env = w.request(std::slice::from_ref(&grant));
    let v = w.verifier(&w.executor);
    let ok = v.verify(env.as_str(), PAYLOAD, &Context::new()).unwrap();
    let denied = v
        .verify(env.as_str(), PAYLOAD, &Context::new())
        .unwrap_err();
    let bad_payload = v
        .verify(
            w.request(std::slice::from_ref(&grant)).as_str(),
            b"secret-payload-bytes",
            &Context::new(),
        )
        .unwrap_err();
    let signature = env.as_str().rsplit('.').next().unwrap().to_owned();
    let mut outputs = vec![
        format!("{:?}", w.planner.identity),
        format!("{:?}", grant),
        format!("{:?}", env),
        format!("{:?}", ok),
        format!("{denied:?} {denied}"),
        format!("{bad_payload:?} {bad_payload}"),
        format!("{:?}", v),
        format!("{:?}", w.bundle),
    ];
    for r in w.audit.records() {
        outputs.push(r.to_json());
        outputs.push(format!("{r:?}"));
    }
    for out in &outputs {
        assert!(!out.contains(&pem_body), "PEM leaked: {out}");
        assert!(
            !out.contains(&seed_b64) && !out.contains(&seed_hex),
            "seed leaked: {out}"
        );
        assert!(!out.contains(&signature), "signature leaked: {out}");
        assert!(!out.contains(grant.as_str()), "token text leaked: {out}");
        assert!(
            !out.contains("secret-payload-bytes"),
            "payload leaked: {out}"
        );
        assert!(
            !out.contains(&format!("{:?}", w.planner.seed)),
            "seed bytes leaked: {out}"
        );
    }
}
