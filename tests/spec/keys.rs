//! Key files, JWKs, trust bundles, and the promise that no secret is ever printed.

use crate::common::*;
use agent_handoff::audit::verify_audit_log;
use agent_handoff::audit::AuditLogFault;
use agent_handoff::error::FileProblem;
use agent_handoff::error::Location;
use agent_handoff::error::StoreError;
use agent_handoff::file::read_regular_file;
use agent_handoff::keys::AgentKey;
use agent_handoff::keys::KeyId;
use agent_handoff::limits::MAX_BUNDLE_BYTES;
use agent_handoff::limits::MAX_KEY_FILE_BYTES;
use agent_handoff::limits::MAX_POLICY_BYTES;
use agent_handoff::limits::MAX_REVOCATIONS_BYTES;
use agent_handoff::policy::PolicyDecision;
use agent_handoff::wire::TYP_DELEGATION;
use agent_handoff::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn key_files_are_written_0600_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("planner.key.pem");
    let id = AgentIdentity::generate(crate::common::id("spiffe://acme.example/agents/planner"));
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
    let id = AgentIdentity::generate(crate::common::id("spiffe://acme.example/agents/planner"));
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
    let err = AgentIdentity::load(crate::common::id("spiffe://a.example/x"), &path).unwrap_err();
    assert!(err.to_string().contains("handoff keygen"), "{err}");
    let missing = AgentIdentity::load(
        crate::common::id("spiffe://a.example/x"),
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
    let id = AgentIdentity::generate(crate::common::id("spiffe://a.example/x"));
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
    AgentIdentity::load(crate::common::id("spiffe://a.example/y"), &theirs).unwrap();
}

#[test]
fn jwk_round_trip_and_thumbprint() {
    let id = AgentIdentity::generate(crate::common::id("spiffe://a.example/x"));
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
    let good = AgentIdentity::generate(crate::common::id("spiffe://acme.example/orchestrator"));
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
    let ok = v
        .verify(env.as_str(), PAYLOAD, &RequestContext::new())
        .unwrap();
    let denied = v
        .verify(env.as_str(), PAYLOAD, &RequestContext::new())
        .unwrap_err();
    let bad_payload = v
        .verify(
            w.request(std::slice::from_ref(&grant)).as_str(),
            b"secret-payload-bytes",
            &RequestContext::new(),
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

// ---- Key and other loaded files: regular files only, opened once, read through a bound. ----

/// Runs `load` on another thread and waits at most ten seconds: a load that blocks fails the
/// test instead of hanging it.
fn within_10s<T: Send + 'static>(load: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(load());
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("the load blocked for 10 s: a FIFO must be refused without waiting for a writer")
}

fn mkfifo(path: &std::path::Path, mode: u32) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn not_regular(e: &Error) -> Option<&'static str> {
    match e {
        Error::File {
            problem: FileProblem::NotRegular { kind },
            ..
        } => Some(kind),
        _ => None,
    }
}

fn too_large(e: &Error) -> Option<usize> {
    match e {
        Error::File {
            problem: FileProblem::TooLarge { limit },
            ..
        } => Some(*limit),
        _ => None,
    }
}

#[test]
fn a_key_fifo_without_a_writer_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    mkfifo(&path, 0o600);
    let p = path.clone();
    let err = within_10s(move || AgentIdentity::load(crate::common::id("spiffe://a.example/x"), p))
        .unwrap_err();
    assert_eq!(not_regular(&err), Some("FIFO (named pipe)"), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("k.pem") && text.contains("not a regular file"),
        "{text}"
    );
}

#[test]
fn a_key_fifo_with_a_writer_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    mkfifo(&path, 0o600);
    // A writer offering 16 MiB (the old code swallowed all of it despite the 64 KiB cap).
    let mut writer = std::process::Command::new("sh")
        .args(["-c", "exec head -c 16777216 /dev/zero > \"$0\""])
        .arg(&path)
        .spawn()
        .unwrap();
    let p = path.clone();
    let err = within_10s(move || AgentIdentity::load(crate::common::id("spiffe://a.example/x"), p))
        .unwrap_err();
    let _ = writer.kill();
    let _ = writer.wait();
    assert_eq!(not_regular(&err), Some("FIFO (named pipe)"), "{err}");
}

#[test]
fn a_key_directory_is_refused_as_not_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    std::fs::create_dir(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
    let err = AgentIdentity::load(crate::common::id("spiffe://a.example/x"), &path).unwrap_err();
    assert_eq!(not_regular(&err), Some("directory"), "{err}");
}

#[test]
fn a_key_file_is_read_up_to_its_cap_and_refused_above_it() {
    let dir = tempfile::tempdir().unwrap();
    let id = AgentIdentity::generate(crate::common::id("spiffe://a.example/x"));
    let pem = id.export_pkcs8_pem().unwrap();
    let path = dir.path().join("k.pem");
    // Exactly at the cap: read, then refused as PEM (the padding is not PEM), not for its size.
    let mut text = pem.to_string();
    text.push_str(&"#".repeat(MAX_KEY_FILE_BYTES - text.len()));
    assert_eq!(text.len(), MAX_KEY_FILE_BYTES);
    std::fs::write(&path, &text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = AgentIdentity::load(id.id().clone(), &path).unwrap_err();
    assert!(matches!(err, Error::Key { .. }), "{err}");
    // One byte more: refused for its size before anything is parsed.
    text.push('#');
    std::fs::write(&path, &text).unwrap();
    let err = AgentIdentity::load(id.id().clone(), &path).unwrap_err();
    assert_eq!(too_large(&err), Some(MAX_KEY_FILE_BYTES), "{err}");
    assert!(err.to_string().contains("65536"), "{err}");
}

#[test]
fn key_symlinks_are_followed_and_the_target_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let id = AgentIdentity::generate(crate::common::id("spiffe://a.example/x"));
    let target = dir.path().join("real.pem");
    id.save(&target).unwrap();
    let link = dir.path().join("link.pem");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    // The link itself is 0777; what counts is the mode of the file read: 0600, accepted.
    let back = AgentIdentity::load(id.id().clone(), &link).unwrap();
    assert_eq!(back.kid(), id.kid());
    // The same link to a group-readable target is refused, naming the fix.
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = AgentIdentity::load(id.id().clone(), &link).unwrap_err();
    assert!(matches!(err, Error::Key { .. }), "{err}");
    assert!(err.to_string().contains("0640"), "{err}");
    // A link to a FIFO is refused as not regular, at once.
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo, 0o600);
    let fifo_link = dir.path().join("fifo-link.pem");
    std::os::unix::fs::symlink(&fifo, &fifo_link).unwrap();
    let err = within_10s(move || {
        AgentIdentity::load(crate::common::id("spiffe://a.example/x"), fifo_link)
    })
    .unwrap_err();
    assert_eq!(not_regular(&err), Some("FIFO (named pipe)"), "{err}");
}

#[test]
fn group_writable_or_readable_keys_are_refused_through_the_opened_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    let id = AgentIdentity::generate(crate::common::id("spiffe://a.example/x"));
    id.save(&path).unwrap();
    for mode in [0o620, 0o602, 0o610, 0o640] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = AgentIdentity::load(id.id().clone(), &path).unwrap_err();
        assert!(matches!(err, Error::Key { .. }), "{mode:o}: {err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}

#[test]
fn bundles_policies_and_revocations_refuse_fifos_and_oversize_files() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo, 0o644);
    let f = fifo.clone();
    let errors = within_10s(move || {
        [
            TrustBundle::load(&f).unwrap_err(),
            RulePolicy::from_file(&f).unwrap_err(),
            MemoryRevocations::load(&f, UnixTime::from_secs(0)).unwrap_err(),
            read_regular_file(&f, "test file", 10).unwrap_err(),
        ]
    });
    for e in &errors {
        assert_eq!(not_regular(e), Some("FIFO (named pipe)"), "{e}");
    }
    // Sparse files one byte over each cap are refused for their size, before parsing.
    let big = |name: &str, len: usize| {
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .set_len(len as u64)
            .unwrap();
        path
    };
    let e = TrustBundle::load(big("b.json", MAX_BUNDLE_BYTES + 1)).unwrap_err();
    assert_eq!(too_large(&e), Some(MAX_BUNDLE_BYTES), "{e}");
    let e = RulePolicy::from_file(big("p.toml", MAX_POLICY_BYTES + 1)).unwrap_err();
    assert_eq!(too_large(&e), Some(MAX_POLICY_BYTES), "{e}");
    let e = MemoryRevocations::load(
        big("r.json", MAX_REVOCATIONS_BYTES + 1),
        UnixTime::from_secs(0),
    )
    .unwrap_err();
    assert_eq!(too_large(&e), Some(MAX_REVOCATIONS_BYTES), "{e}");
    // At the cap a file is read; one byte over, it is refused.
    let path = dir.path().join("ten");
    std::fs::write(&path, b"0123456789").unwrap();
    assert_eq!(
        read_regular_file(&path, "test file", 10).unwrap(),
        b"0123456789"
    );
    let e = read_regular_file(&path, "test file", 9).unwrap_err();
    assert_eq!(too_large(&e), Some(9), "{e}");
    // "No limit" reads the whole file (no overflow of the bound into a zero-byte read).
    assert_eq!(
        read_regular_file(&path, "test file", usize::MAX).unwrap(),
        b"0123456789"
    );
    let e = read_regular_file(dir.path(), "test file", 10).unwrap_err();
    assert_eq!(not_regular(&e), Some("directory"), "{e}");
}

// ---- Text from inputs is shown escaped: errors and rejection details. ----

/// The issue's member name: a terminal title escape and a forged log line.
const OWNED: &str = "\u{1b}]0;owned\u{7}\nFAKE LINE";
/// One of each class: C0 (ESC, BEL, newline), DEL, C1 (NEL), bidi override, line and paragraph
/// separators, byte order mark, a tag character.
const EVERY_CLASS: &str =
    "\u{1b}]0;owned\u{7}\nFAKE LINE\u{7f}\u{85}\u{202e}\u{2028}\u{2029}\u{feff}\u{e0041}";
const EVERY_CLASS_SHOWN: &str =
    "\\u{1b}]0;owned\\u{7}\\u{a}FAKE LINE\\u{7f}\\u{85}\\u{202e}\\u{2028}\\u{2029}\\u{feff}\\u{e0041}";
const RAW: [char; 11] = [
    '\u{1b}',
    '\u{7}',
    '\n',
    '\r',
    '\u{7f}',
    '\u{85}',
    '\u{202e}',
    '\u{2028}',
    '\u{2029}',
    '\u{feff}',
    '\u{e0041}',
];

fn assert_escaped(what: &str, shown: &str, escaped_form: &str) {
    for c in RAW {
        assert!(!shown.contains(c), "{what} shows {c:?} raw: {shown:?}");
    }
    assert!(shown.contains(escaped_form), "{what}: {shown:?}");
}

/// A compact JWS from a header and claims given as JSON text, with an all-zero signature
/// (decoding never checks it; verifying does, after these checks).
fn hand_made(header: &str, claims: &str) -> String {
    format!(
        "{}.{}.{}",
        b64(header.as_bytes()),
        b64(claims.as_bytes()),
        b64(&[0u8; 64])
    )
}

const KID: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

#[test]
fn error_display_escapes_every_class() {
    let err = format!("spiffe://a.example/{EVERY_CLASS}")
        .parse::<AgentId>()
        .unwrap_err();
    assert_escaped("an invalid id", &err.to_string(), EVERY_CLASS_SHOWN);
    let err = Error::Config(EVERY_CLASS.to_owned());
    assert_escaped("a configuration error", &err.to_string(), EVERY_CLASS_SHOWN);
    let err = Error::InvalidCapability(EVERY_CLASS.to_owned());
    assert_escaped("a capability error", &err.to_string(), EVERY_CLASS_SHOWN);
    let err = StoreError::new("revocations", EVERY_CLASS);
    assert_escaped("a store error", &err.to_string(), EVERY_CLASS_SHOWN);
    // A file name is text from an input too.
    let dir = tempfile::tempdir().unwrap();
    let err = AgentIdentity::load(
        crate::common::id("spiffe://a.example/x"),
        dir.path().join(EVERY_CLASS),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_escaped("a file name", &err.to_string(), EVERY_CLASS_SHOWN);
    let bundle = serde_json::json!({ "trust_domain": "a.example", EVERY_CLASS: 1 });
    let err = TrustBundle::from_json(&bundle.to_string()).unwrap_err();
    assert_escaped("a bundle error", &err.to_string(), EVERY_CLASS_SHOWN);
}

#[test]
fn rejection_details_are_escaped_in_every_output() {
    let r = Rejection::new(Reason::Malformed, Location::Envelope, EVERY_CLASS);
    assert_escaped("a rejection detail", r.detail(), EVERY_CLASS_SHOWN);
    assert_escaped("a rejection", &r.to_string(), EVERY_CLASS_SHOWN);
    // Escaping is idempotent: an escaped detail is kept as it is.
    let again = Rejection::new(Reason::Malformed, Location::Envelope, r.detail().to_owned());
    assert_eq!(again.detail(), r.detail());
    // A forbidden header member name, as the decoder quotes it.
    let header = serde_json::json!({
        "alg": "EdDSA", "typ": TYP_DELEGATION, "kid": KID, EVERY_CLASS: 1
    });
    let err = DelegationToken::decode(&hand_made(&header.to_string(), "{}")).unwrap_err();
    let Error::Decode { rejection, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(rejection.reason(), Reason::ForbiddenHeader);
    assert_escaped(
        "a forbidden header name",
        rejection.detail(),
        EVERY_CLASS_SHOWN,
    );
    assert_escaped("a decode error", &err.to_string(), EVERY_CLASS_SHOWN);
    // An unknown claim name, as serde_json's "unknown field" message quotes it.
    let header = serde_json::json!({ "alg": "EdDSA", "typ": TYP_DELEGATION, "kid": KID });
    let claims = serde_json::json!({ OWNED: 1 });
    let err =
        DelegationToken::decode(&hand_made(&header.to_string(), &claims.to_string())).unwrap_err();
    let Error::Decode { rejection, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(rejection.reason(), Reason::Malformed);
    assert_escaped(
        "an unknown claim name",
        &err.to_string(),
        "\\u{1b}]0;owned\\u{7}\\u{a}FAKE LINE",
    );
}

#[test]
fn policy_decisions_keep_their_rule_and_version_escaped() {
    let d = PolicyDecision::allow(EVERY_CLASS).with_version(EVERY_CLASS);
    assert_escaped("a policy rule", d.rule(), EVERY_CLASS_SHOWN);
    assert_escaped("a policy version", d.version().unwrap(), EVERY_CLASS_SHOWN);
    let d = PolicyDecision::deny(OWNED);
    assert_eq!(d.rule(), "\\u{1b}]0;owned\\u{7}\\u{a}FAKE LINE");
}

#[test]
fn audit_logs_refuse_fifos_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("audit.jsonl");
    mkfifo(&fifo, 0o600);
    let f = fifo.clone();
    let (opened, verified) = within_10s(move || {
        (
            JsonlAudit::open(&f).map(|_| ()),
            verify_audit_log(&f).map(|_| ()),
        )
    });
    // No reader: opening it for appending fails at once instead of waiting for one.
    let opened = opened.unwrap_err();
    assert!(opened.to_string().contains("audit.jsonl"), "{opened}");
    let verified = verified.unwrap_err();
    assert_eq!(verified.kind, AuditLogFault::Unreadable, "{verified}");
    assert!(
        verified.problem.contains("not a regular file"),
        "{verified}"
    );
}
