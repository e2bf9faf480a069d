//! Audit: tamper-evident signed logs, fail-closed sinks, and no secrets in any record or
//! Debug output.

use std::path::Path;
use std::sync::Arc;

use crate::common::*;
use agent_handoff::audit::verify_audit_log;
use agent_handoff::audit::verify_audit_log_extends;
use agent_handoff::audit::verify_audit_log_signed;
use agent_handoff::audit::AuditLogError;
use agent_handoff::audit::AuditLogFault;
use agent_handoff::audit::AuditLogSummary;
use agent_handoff::audit::AuditRecord;
use agent_handoff::audit::AuditSignatures;
use agent_handoff::error::StoreError;
use agent_handoff::policy::PolicyDecision;
use agent_handoff::policy::PolicyRequest;
use agent_handoff::verify::AuditFailure;
use agent_handoff::wire::TYP_HANDOFF;
use agent_handoff::*;
use sha2::Digest as _;

/// A payload nobody should ever find in a log.
const SECRET_PAYLOAD: &[u8] = b"{\"card\":\"4111-1111-1111-1111\",\"cvv\":\"737\"}";

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

fn envelope(w: &World, chain: &[DelegationToken], payload: &[u8]) -> HandoffEnvelope {
    HandoffEnvelope::builder(&w.planner.identity)
        .to(w.executor.id())
        .intent("tickets.read", "project/alpha/123")
        .unwrap()
        .payload(payload)
        .chain(chain)
        .issued_at(w.now())
        .seal()
        .unwrap()
}

/// Writes a signed log of six decisions (allows and denials) by the executor's verifier.
fn signed_log(w: &World, path: &Path) -> AuditLogSummary {
    let sink = Arc::new(
        JsonlAudit::open_signed(
            path,
            Arc::new(AgentIdentity::from_seed(
                w.executor.id().clone(),
                &w.executor.seed,
            )),
        )
        .unwrap(),
    );
    let verifier = w
        .verifier_builder(&w.executor)
        .audit(sink.clone())
        .build()
        .unwrap();
    let root = w.grant();
    let ctx = RequestContext::new();
    for i in 0..6 {
        let e = envelope(w, std::slice::from_ref(&root), PAYLOAD);
        let outcome = if i % 2 == 0 {
            verifier.verify(e.as_str(), PAYLOAD, &ctx)
        } else {
            verifier.verify(e.as_str(), b"other", &ctx)
        };
        assert_eq!(outcome.is_ok(), i % 2 == 0);
    }
    sink.head().unwrap()
}

fn setup() -> (
    World,
    tempfile::TempDir,
    std::path::PathBuf,
    AuditLogSummary,
) {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let head = signed_log(&w, &path);
    (w, dir, path, head)
}

#[track_caller]
fn bad_line<T: std::fmt::Debug>(result: Result<T, AuditLogError>, line: u64, words: &str) {
    match result {
        Ok(s) => panic!("tampering not detected (expected line {line}): {s:?}"),
        Err(e) => {
            assert_eq!(e.line, line, "wrong line: {e}");
            assert!(e.problem.contains(words), "expected `{words}` in: {e}");
        }
    }
}

#[test]
fn an_intact_signed_log_verifies_every_way() {
    let (w, _dir, path, head) = setup();
    assert_eq!(head.records, 6);
    let key = w.executor.identity.key();
    // Without the key the chain is intact but the signatures are reported unchecked.
    let report = verify_audit_log(&path).unwrap();
    assert_eq!(report.summary, head);
    assert_eq!(
        report.signatures,
        AuditSignatures::NotChecked {
            signer: w.executor.id().clone(),
            kid: key.kid().clone(),
        }
    );
    assert_eq!(verify_audit_log_signed(&path, key).unwrap(), head);
    assert_eq!(verify_audit_log_extends(&path, key, &head).unwrap(), head);
    // A header line, then one line per decision; every line signed.
    let l = lines(&path);
    assert_eq!(l.len(), 7);
    for line in &l {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["sig"].as_str().unwrap().len(), 86);
    }
    let header: serde_json::Value = serde_json::from_str(&l[0]).unwrap();
    assert_eq!(header["seq"], 0);
    assert_eq!(header["prev"], b64(&[0u8; 32]));
    assert_eq!(header["format"], "agent-handoff audit log v2");
    assert_eq!(header["mode"], "signed");
    assert_eq!(header["signer"], w.executor.id().to_string());
    assert_eq!(header["kid"], key.kid().to_string());
    // Reopening continues the chain and the signatures.
    let sink = JsonlAudit::open_signed(
        &path,
        Arc::new(AgentIdentity::from_seed(
            w.executor.id().clone(),
            &w.executor.seed,
        )),
    )
    .unwrap();
    let verifier = w.verifier_builder(&w.executor).audit(sink).build().unwrap();
    verifier
        .verify(
            envelope(&w, &[w.grant()], PAYLOAD).as_str(),
            PAYLOAD,
            &RequestContext::new(),
        )
        .unwrap();
    let later = verify_audit_log_extends(&path, key, &head).unwrap();
    assert_eq!(later.records, 7);
    // Opening it unsigned would append unsigned records: refused.
    let err = JsonlAudit::open(&path).unwrap_err();
    assert_fault(&err, 1, AuditLogFault::ModeMismatch);
    assert!(err.to_string().contains("open_signed"), "{err}");
    // Another key does not verify it: the header names the signer's key.
    let e = verify_audit_log_signed(&path, w.mallory.identity.key()).unwrap_err();
    assert_eq!((e.line, e.kind), (1, AuditLogFault::WrongKey), "{e}");
    assert!(e.problem.contains("signed by key"), "{e}");
}

#[test]
fn an_edited_line_is_named() {
    let (w, _dir, path, _) = setup();
    let key = w.executor.identity.key();
    let mut l = lines(&path);
    // Turn a denial into an allow, keeping the JSON valid.
    assert!(l[4].contains("\"decision\":\"deny\""));
    l[4] = l[4].replace("\"decision\":\"deny\"", "\"decision\":\"allow\"");
    write_lines(&path, &l);
    bad_line(verify_audit_log_signed(&path, key), 5, "edited or forged");
    // The unsigned chain notices only at the next line.
    bad_line(verify_audit_log(&path), 6, "previous line");
}

#[test]
fn an_edited_last_line_is_named_only_by_the_signature() {
    let (w, _dir, path, _) = setup();
    let mut l = lines(&path);
    l[6] = l[6].replace("\"decision\":\"deny\"", "\"decision\":\"allow\"");
    write_lines(&path, &l);
    bad_line(
        verify_audit_log_signed(&path, w.executor.identity.key()),
        7,
        "edited or forged",
    );
    // The documented limit of an unsigned chain: nothing follows the edit.
    assert!(verify_audit_log(&path).is_ok());
}

#[test]
fn a_deleted_line_is_named() {
    let (w, _dir, path, _) = setup();
    let mut l = lines(&path);
    l.remove(2);
    write_lines(&path, &l);
    bad_line(
        verify_audit_log_signed(&path, w.executor.identity.key()),
        3,
        "deleted",
    );
    bad_line(verify_audit_log(&path), 3, "deleted");
}

#[test]
fn reordered_lines_are_named() {
    let (w, _dir, path, _) = setup();
    let mut l = lines(&path);
    l.swap(1, 2);
    write_lines(&path, &l);
    bad_line(
        verify_audit_log_signed(&path, w.executor.identity.key()),
        2,
        "reordered",
    );
    bad_line(verify_audit_log(&path), 2, "reordered");
}

#[test]
fn a_truncated_tail_is_named_against_the_recorded_head() {
    let (w, _dir, path, head) = setup();
    let key = w.executor.identity.key();
    let l = lines(&path);
    // The header line and four records.
    write_lines(&path, &l[..5]);
    // Whole lines removed: still a valid (shorter) log on its own...
    assert_eq!(verify_audit_log_signed(&path, key).unwrap().records, 4);
    // ...but not against the head kept elsewhere: line 6 onwards is gone.
    bad_line(verify_audit_log_extends(&path, key, &head), 6, "truncated");

    // Cut in the middle of a line.
    let mut text = l.join("\n");
    text.truncate(text.len() - 10);
    std::fs::write(&path, text).unwrap();
    bad_line(verify_audit_log_signed(&path, key), 7, "no newline");
    bad_line(verify_audit_log(&path), 7, "no newline");

    // A log rewritten (here: truncated, then regrown by a verifier) no longer holds the head.
    write_lines(&path, &l[..5]);
    let sink = JsonlAudit::open_signed(
        &path,
        Arc::new(AgentIdentity::from_seed(
            w.executor.id().clone(),
            &w.executor.seed,
        )),
    )
    .unwrap();
    let verifier = w.verifier_builder(&w.executor).audit(sink).build().unwrap();
    for _ in 0..3 {
        let _ = verifier.verify(
            envelope(&w, &[w.grant()], PAYLOAD).as_str(),
            b"x",
            &RequestContext::new(),
        );
    }
    bad_line(verify_audit_log_extends(&path, key, &head), 7, "rewritten");
}

/// A forger who can write the file but lacks the verifier's key: a correctly chained line.
fn forged_line(previous: &str, seq: u64) -> String {
    let prev = b64(&sha2::Sha256::digest(previous.as_bytes()));
    serde_json::json!({
        "seq": seq,
        "prev": prev,
        "time": "2027-01-15T08:00:00Z",
        "decision": "allow",
        "recipient": "spiffe://acme.example/agents/executor",
        "envelope": "forged-envelope-000001",
    })
    .to_string()
}

/// Adds a `sig` member as the signing sink does.
fn with_sig(body: &str, sig: &str) -> String {
    format!("{},\"sig\":\"{sig}\"}}", &body[..body.len() - 1])
}

/// A real Ed25519 signature, in the sink's format, by the wrong key.
fn sign_as(seed: &[u8; 32], body: &str) -> String {
    use ed25519_dalek::Signer as _;
    let key = ed25519_dalek::SigningKey::from_bytes(seed);
    let mut msg = b"agent-handoff audit record v1\n".to_vec();
    msg.extend_from_slice(&sha2::Sha256::digest(body.as_bytes()));
    b64(&key.sign(&msg).to_bytes())
}

#[test]
fn a_forged_append_is_named() {
    let (w, _dir, path, _) = setup();
    let key = w.executor.identity.key();
    let l = lines(&path);
    let body = forged_line(&l[6], 7);

    // Correctly chained but unsigned: the header says every line is signed, so even the check
    // without a key names it.
    let mut forged = l.clone();
    forged.push(body.clone());
    write_lines(&path, &forged);
    bad_line(verify_audit_log(&path), 8, "no signature");
    bad_line(verify_audit_log_signed(&path, key), 8, "no signature");

    // Signed by Mallory's key, or with a signature copied from a real line.
    let copied = serde_json::from_str::<serde_json::Value>(&l[6]).unwrap()["sig"]
        .as_str()
        .unwrap()
        .to_owned();
    for sig in [sign_as(&w.mallory.seed, &body), copied] {
        let mut forged = l.clone();
        forged.push(with_sig(&body, &sig));
        write_lines(&path, &forged);
        // Only the key tells a made-up signature from a real one.
        let report = verify_audit_log(&path).unwrap();
        assert_eq!(report.summary.records, 7);
        assert!(matches!(
            report.signatures,
            AuditSignatures::NotChecked { .. }
        ));
        bad_line(verify_audit_log_signed(&path, key), 8, "edited or forged");
    }
    // The sink's own key does verify the same construction (the test's forger is realistic).
    let mut genuine = l.clone();
    genuine.push(with_sig(&body, &sign_as(&w.executor.seed, &body)));
    write_lines(&path, &genuine);
    assert_eq!(verify_audit_log_signed(&path, key).unwrap().records, 7);

    // Inserted in the middle.
    let mut forged = l.clone();
    forged.insert(3, forged_line(&l[2], 3));
    write_lines(&path, &forged);
    bad_line(verify_audit_log_signed(&path, key), 4, "no signature");

    // A log that is not intact is refused for appending.
    let err = JsonlAudit::open_signed(
        &path,
        Arc::new(AgentIdentity::from_seed(
            w.executor.id().clone(),
            &w.executor.seed,
        )),
    )
    .unwrap_err();
    assert!(err.to_string().contains("line 4"), "{err}");
}

/// `open`/`open_signed` refused the log with this fault at this line.
#[track_caller]
fn assert_fault(err: &Error, line: u64, kind: AuditLogFault) {
    match err {
        Error::AuditLog { source, .. } => {
            assert_eq!((source.line, source.kind), (line, kind), "{err}");
        }
        other => panic!("expected Error::AuditLog({kind:?}) at line {line}, got {other:?}"),
    }
}

fn executor_signer(w: &World) -> Arc<AgentIdentity> {
    Arc::new(AgentIdentity::from_seed(
        w.executor.id().clone(),
        &w.executor.seed,
    ))
}

#[test]
fn a_signed_log_with_a_forged_unsigned_line_is_refused_on_open() {
    let (w, _dir, path, _) = setup();
    let mut l = lines(&path);
    // Correctly chained, no signature: before log headers, `open` took this for an unsigned
    // log and went on appending unsigned records.
    l.push(forged_line(&l[6], 7));
    write_lines(&path, &l);
    let err = JsonlAudit::open(&path).unwrap_err();
    assert_fault(&err, 8, AuditLogFault::MissingSignature);
    assert!(err.to_string().contains("start a new log file"), "{err}");
    let err = JsonlAudit::open_signed(&path, executor_signer(&w)).unwrap_err();
    assert_fault(&err, 8, AuditLogFault::MissingSignature);
    let e = verify_audit_log(&path).unwrap_err();
    assert_eq!(
        (e.line, e.kind),
        (8, AuditLogFault::MissingSignature),
        "{e}"
    );
}

#[test]
fn a_signed_log_whose_last_sig_was_stripped_is_refused() {
    let (w, _dir, path, _) = setup();
    let mut l = lines(&path);
    let mut last: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&l[6]).unwrap();
    assert!(last.remove("sig").is_some());
    l[6] = serde_json::Value::Object(last).to_string();
    write_lines(&path, &l);
    for err in [
        JsonlAudit::open(&path).unwrap_err(),
        JsonlAudit::open_signed(&path, executor_signer(&w)).unwrap_err(),
    ] {
        assert_fault(&err, 7, AuditLogFault::MissingSignature);
    }
    let e = verify_audit_log(&path).unwrap_err();
    assert_eq!(
        (e.line, e.kind),
        (7, AuditLogFault::MissingSignature),
        "{e}"
    );
    // Stripping every signature leaves the signed header: still refused, at line 1.
    let stripped: Vec<String> = lines(&path)
        .iter()
        .map(|line| {
            let mut v: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).unwrap();
            v.remove("sig");
            serde_json::Value::Object(v).to_string()
        })
        .collect();
    write_lines(&path, &stripped);
    assert_fault(
        &JsonlAudit::open(&path).unwrap_err(),
        1,
        AuditLogFault::MissingSignature,
    );
}

#[test]
fn the_header_mode_must_match_both_ways() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();

    // A signed log: `open` refuses it (the header says signed), `open_signed` by another
    // identity too.
    let (_, _dir, signed, _) = setup();
    assert_fault(
        &JsonlAudit::open(&signed).unwrap_err(),
        1,
        AuditLogFault::ModeMismatch,
    );
    let mallory = Arc::new(AgentIdentity::from_seed(
        w.mallory.id().clone(),
        &w.mallory.seed,
    ));
    assert_fault(
        &JsonlAudit::open_signed(&signed, mallory).unwrap_err(),
        1,
        AuditLogFault::WrongKey,
    );

    // An unsigned log: its header says so; `open_signed` and the signed check refuse it.
    let unsigned = dir.path().join("unsigned.jsonl");
    let sink = JsonlAudit::open(&unsigned).unwrap();
    let verifier = w.verifier_builder(&w.executor).audit(sink).build().unwrap();
    let _ = verifier.verify("not-an-envelope", b"", &RequestContext::new());
    drop(verifier);
    let l = lines(&unsigned);
    assert_eq!(l.len(), 2);
    let header: serde_json::Value = serde_json::from_str(&l[0]).unwrap();
    assert_eq!(header["mode"], "unsigned");
    assert!(header.get("sig").is_none() && header.get("kid").is_none());
    let report = verify_audit_log(&unsigned).unwrap();
    assert_eq!(report.summary.records, 1);
    assert_eq!(report.signatures, AuditSignatures::Unsigned);
    let err = JsonlAudit::open_signed(&unsigned, executor_signer(&w)).unwrap_err();
    assert_fault(&err, 1, AuditLogFault::ModeMismatch);
    assert!(err.to_string().contains("JsonlAudit::open`"), "{err}");
    let e = verify_audit_log_signed(&unsigned, w.executor.identity.key()).unwrap_err();
    assert_eq!((e.line, e.kind), (1, AuditLogFault::ModeMismatch), "{e}");
    // Reopened unsigned, it continues.
    JsonlAudit::open(&unsigned).unwrap();

    // A signed line in an unsigned log is a mismatch too.
    let mut l = lines(&unsigned);
    let body = forged_line(&l[1], 2);
    l.push(with_sig(&body, &sign_as(&w.executor.seed, &body)));
    write_lines(&unsigned, &l);
    assert_fault(
        &JsonlAudit::open(&unsigned).unwrap_err(),
        3,
        AuditLogFault::UnexpectedSignature,
    );
    let e = verify_audit_log(&unsigned).unwrap_err();
    assert_eq!((e.line, e.kind), (3, AuditLogFault::UnexpectedSignature));

    // A header flipped to `signed` without a signer, key and signature is refused.
    let mut l = lines(&unsigned);
    l.truncate(2);
    l[0] = l[0].replace("\"unsigned\"", "\"signed\"");
    write_lines(&unsigned, &l);
    let e = verify_audit_log(&unsigned).unwrap_err();
    assert_eq!((e.line, e.kind), (1, AuditLogFault::Malformed), "{e}");
}

#[test]
fn a_log_without_a_header_is_refused_with_a_way_forward() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.jsonl");
    // A log as written before headers: line 1 is already a record.
    let first = serde_json::json!({
        "seq": 0,
        "prev": b64(&[0u8; 32]),
        "time": "2027-01-15T08:00:00Z",
        "decision": "deny",
        "reason": "malformed",
        "recipient": "spiffe://acme.example/agents/executor",
    })
    .to_string();
    write_lines(&path, std::slice::from_ref(&first));
    for err in [
        JsonlAudit::open(&path).unwrap_err(),
        JsonlAudit::open_signed(&path, executor_signer(&w)).unwrap_err(),
    ] {
        assert_fault(&err, 1, AuditLogFault::NoHeader);
        assert!(err.to_string().contains("start a new log file"), "{err}");
    }
    let e = verify_audit_log(&path).unwrap_err();
    assert_eq!((e.line, e.kind), (1, AuditLogFault::NoHeader), "{e}");
    // Nothing was appended to it.
    assert_eq!(lines(&path), vec![first]);

    // Cutting the header off a signed log leaves line 1 without one.
    let (_, _dir, signed, _) = setup();
    let l = lines(&signed);
    write_lines(&signed, &l[1..]);
    let e = verify_audit_log(&signed).unwrap_err();
    assert_eq!((e.line, e.kind), (1, AuditLogFault::NoHeader), "{e}");

    // An empty file is a new log: it gets a header.
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let sink = JsonlAudit::open_signed(&empty, executor_signer(&w)).unwrap();
    assert_eq!(sink.head().unwrap().records, 0);
    assert_eq!(lines(&empty).len(), 1);
    let summary = verify_audit_log_signed(&empty, w.executor.identity.key()).unwrap();
    assert_eq!(summary, sink.head().unwrap());
}

#[test]
fn malformed_headers_second_headers_long_lines_and_empty_logs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    drop(JsonlAudit::open(&path).unwrap());
    let header = lines(&path).remove(0);
    let fault = |path: &Path| {
        let e = verify_audit_log(path).unwrap_err();
        (e.line, e.kind)
    };

    // A second header after the first.
    let second = forged_line(&header, 1).replace("\"time\"", "\"format\":\"x\",\"time\"");
    write_lines(&path, &[header.clone(), second]);
    assert_eq!(fault(&path), (2, AuditLogFault::Malformed));

    // A line longer than 1 MiB is refused without reading it whole.
    let long = format!("{{\"seq\":1,\"pad\":\"{}\"}}", "x".repeat(1 << 20));
    write_lines(&path, &[header.clone(), long]);
    let e = verify_audit_log(&path).unwrap_err();
    assert_eq!((e.line, e.kind), (2, AuditLogFault::Malformed), "{e}");
    assert!(e.problem.contains("1 MiB"), "{e}");

    // Unknown format and mode in the header.
    for (from, to) in [
        ("audit log v2", "audit log v9"),
        ("\"unsigned\"", "\"sometimes\""),
    ] {
        write_lines(&path, &[header.replace(from, to)]);
        assert_eq!(fault(&path), (1, AuditLogFault::Malformed), "{to}");
    }

    // An empty file: nothing to verify, not even a header (opening it starts a new log).
    std::fs::write(&path, "").unwrap();
    assert_eq!(fault(&path), (1, AuditLogFault::NoHeader));
}

#[derive(Debug)]
struct FailingSink;

impl AuditSink for FailingSink {
    fn record(&self, _: &AuditRecord) -> Result<(), StoreError> {
        Err(StoreError::new("audit sink", "disk full"))
    }
}

#[test]
fn a_failing_audit_sink_makes_verification_deny() {
    let w = World::new();
    let verifier = w
        .verifier_builder(&w.executor)
        .audit(FailingSink)
        .build()
        .unwrap();
    let r = assert_reason(
        verifier.verify(
            w.request(&[w.grant()]).as_str(),
            PAYLOAD,
            &RequestContext::new(),
        ),
        Reason::Unavailable,
    );
    assert!(r.detail().contains("audit record could not be kept"), "{r}");
    // The default is to fail closed; saying so explicitly changes nothing.
    let explicit = w
        .verifier_builder(&w.executor)
        .audit(FailingSink)
        .on_audit_failure(AuditFailure::Deny)
        .build()
        .unwrap();
    assert_reason(
        explicit.verify(
            w.request(&[w.grant()]).as_str(),
            PAYLOAD,
            &RequestContext::new(),
        ),
        Reason::Unavailable,
    );
    // Fail open only when asked to.
    let open = w
        .verifier_builder(&w.executor)
        .audit(FailingSink)
        .on_audit_failure(AuditFailure::Allow)
        .build()
        .unwrap();
    open.verify(
        w.request(&[w.grant()]).as_str(),
        PAYLOAD,
        &RequestContext::new(),
    )
    .unwrap();
    // A denial stays a denial either way.
    assert_reason(
        open.verify(
            w.request(&[w.grant()]).as_str(),
            b"tampered",
            &RequestContext::new(),
        ),
        Reason::PayloadMismatch,
    );
}

/// Everything that must never appear in a log or Debug output.
fn secrets(w: &World, chain: &[DelegationToken], wires: &[String]) -> Vec<(String, String)> {
    let mut s = Vec::new();
    for a in [
        &w.orchestrator,
        &w.planner,
        &w.executor,
        &w.payments,
        &w.mallory,
    ] {
        s.push((format!("seed of {}", a.id()), b64(&a.seed)));
        let hex: String = a.seed.iter().map(|b| format!("{b:02x}")).collect();
        s.push((format!("hex seed of {}", a.id()), hex));
        s.push((
            format!("public key of {}", a.id()),
            b64(a.identity.key().as_bytes()),
        ));
    }
    for t in chain {
        s.push((format!("token {}", t.id()), t.as_str().to_owned()));
        let sig = t.as_str().rsplit('.').next().unwrap().to_owned();
        s.push((format!("signature of token {}", t.id()), sig));
    }
    for wire in wires {
        s.push(("envelope".to_owned(), wire.clone()));
        s.push((
            "envelope signature".to_owned(),
            wire.rsplit('.').next().unwrap().to_owned(),
        ));
        s.push((
            "envelope claims".to_owned(),
            wire.split('.').nth(1).unwrap().to_owned(),
        ));
    }
    s.push((
        "payload".to_owned(),
        String::from_utf8(SECRET_PAYLOAD.to_vec()).unwrap(),
    ));
    s.push((
        "payload (json-escaped)".to_owned(),
        serde_json::to_string(std::str::from_utf8(SECRET_PAYLOAD).unwrap()).unwrap(),
    ));
    s.push(("payload (base64url)".to_owned(), b64(SECRET_PAYLOAD)));
    s.push(("payload fragment".to_owned(), "4111-1111".to_owned()));
    s
}

#[track_caller]
fn assert_clean(what: &str, text: &str, secrets: &[(String, String)]) {
    for (name, secret) in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{what} contains the {name}: {text}"
        );
    }
}

#[test]
fn no_key_material_signature_token_or_payload_in_any_record_or_debug_output() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let signer = Arc::new(AgentIdentity::from_seed(
        w.executor.id().clone(),
        &w.executor.seed,
    ));
    let sink = Arc::new(JsonlAudit::open_signed(&path, signer.clone()).unwrap());
    let verifier = w
        .verifier_builder(&w.executor)
        .audit(sink.clone())
        .build()
        .unwrap();
    let root = w.grant();
    let sub = w.sub_grant(&root);
    let chain = vec![root.clone(), sub.clone()];
    let ctx = RequestContext::new();
    let mut wires = Vec::new();
    let mut debug = Vec::new();

    // Allow, then a replay, a payload mismatch, a bad signature, a revoked chain, a
    // malformed input and a wrong audience: every path that records claimed values.
    let ok = envelope(&w, &chain[..1], SECRET_PAYLOAD);
    debug.push(format!("{ok:?}"));
    let handoff = verifier.verify(ok.as_str(), SECRET_PAYLOAD, &ctx).unwrap();
    debug.push(format!("{handoff:?}"));
    wires.push(ok.as_str().to_owned());
    let mut rejections = vec![verifier
        .verify(ok.as_str(), SECRET_PAYLOAD, &ctx)
        .unwrap_err()];
    let other = envelope(&w, &chain[..1], SECRET_PAYLOAD);
    wires.push(other.as_str().to_owned());
    rejections.push(
        verifier
            .verify(other.as_str(), b"not it", &ctx)
            .unwrap_err(),
    );
    let mut forged = other.as_str().to_owned();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    rejections.push(verifier.verify(&forged, SECRET_PAYLOAD, &ctx).unwrap_err());
    w.revocations.revoke_token(sub.id(), w.now()).unwrap();
    let revoked = HandoffEnvelope::builder(&w.executor.identity)
        .to(w.executor.id())
        .intent("tickets.read", "project/alpha/1")
        .unwrap()
        .payload(SECRET_PAYLOAD)
        .chain(&chain)
        .issued_at(w.now())
        .seal();
    if let Ok(revoked) = revoked {
        wires.push(revoked.as_str().to_owned());
        rejections.push(
            verifier
                .verify(revoked.as_str(), SECRET_PAYLOAD, &ctx)
                .unwrap_err(),
        );
    }
    rejections.push(
        verifier
            .verify("not.a.jws", SECRET_PAYLOAD, &ctx)
            .unwrap_err(),
    );
    let to_planner = HandoffEnvelope::builder(&w.executor.identity)
        .to(w.planner.id())
        .intent("tickets.read", "project/alpha/1")
        .unwrap()
        .payload(SECRET_PAYLOAD)
        .chain(&chain)
        .issued_at(w.now())
        .seal()
        .unwrap();
    wires.push(to_planner.as_str().to_owned());
    rejections.push(
        verifier
            .verify(to_planner.as_str(), SECRET_PAYLOAD, &ctx)
            .unwrap_err(),
    );
    let reasons: Vec<Reason> = rejections.iter().map(Rejection::reason).collect();
    assert!(reasons.contains(&Reason::Replayed), "{reasons:?}");
    assert!(reasons.contains(&Reason::PayloadMismatch), "{reasons:?}");
    assert!(reasons.contains(&Reason::BadSignature), "{reasons:?}");
    assert!(reasons.contains(&Reason::WrongAudience), "{reasons:?}");

    for r in &rejections {
        debug.push(format!("{r:?}"));
        debug.push(r.to_string());
    }
    debug.push(format!(
        "{:?}",
        DelegationToken::decode(ok.as_str()).unwrap_err()
    ));
    debug.push(format!(
        "{:?}",
        HandoffEnvelope::decode(root.as_str()).unwrap_err()
    ));
    for a in [&w.orchestrator, &w.planner, &w.executor] {
        debug.push(format!("{:?}", a.identity));
        debug.push(format!("{:?}", a.identity.key()));
    }
    debug.push(format!("{root:?} {sub:?}"));
    debug.push(format!("{sink:?} {verifier:?}"));
    let grant = TaskGrant::new(w.grant(), w.revocations.clone()).unwrap();
    debug.push(format!("{grant:?}"));
    for record in w.audit.records() {
        debug.push(format!("{record:?}"));
    }

    let log = std::fs::read_to_string(&path).unwrap();
    // The header line, the allow, and one line per rejection.
    assert_eq!(log.lines().count(), 2 + rejections.len());
    assert!(log.contains("\"decision\":\"allow\""));
    assert!(log.contains("\"claimed\""));
    let s = secrets(&w, &chain, &wires);
    // The checker itself can fail.
    assert!(std::panic::catch_unwind(|| assert_clean("a wire", ok.as_str(), &s)).is_err());
    assert_clean("the audit log", &log, &s);
    for d in &debug {
        assert_clean("Debug output", d, &s);
    }
    // Denials keep claimed values apart from verified ones.
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["decision"] == "deny" {
            assert!(
                v.get("sender").is_none(),
                "a denial states a verified sender: {line}"
            );
        }
    }
    verify_audit_log_signed(&path, signer.key()).unwrap();
}

// ---- Text from inputs is shown escaped in audit records. ----

/// One of each class: C0 (ESC, BEL, newline), DEL, C1 (NEL), bidi override, line and paragraph
/// separators, byte order mark.
const EVERY_CLASS: &str =
    "\u{1b}]0;owned\u{7}\nFAKE LINE\u{7f}\u{85}\u{202e}\u{2028}\u{2029}\u{feff}";
const RAW: [char; 10] = [
    '\u{1b}', '\u{7}', '\n', '\u{7f}', '\u{85}', '\u{202e}', '\u{2028}', '\u{2029}', '\u{feff}',
    '\r',
];

fn assert_no_raw(what: &str, shown: &str) {
    for c in RAW {
        assert!(!shown.contains(c), "{what} shows {c:?} raw: {shown:?}");
    }
}

/// An envelope whose JWS header carries a forbidden member named `name` (signature all zeros:
/// the header is refused first).
fn forbidden_header_envelope(name: &str) -> String {
    let header = serde_json::json!({
        "alg": "EdDSA",
        "typ": TYP_HANDOFF,
        "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
        name: 1,
    });
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(b"{}"),
        b64(&[0u8; 64])
    )
}

/// Allows everything, naming a rule and a version full of characters that need escaping.
#[derive(Debug)]
struct Shifty;

impl Policy for Shifty {
    fn evaluate(&self, _: &PolicyRequest<'_>) -> PolicyDecision {
        PolicyDecision::allow(format!("rule{EVERY_CLASS}")).with_version(EVERY_CLASS)
    }
}

#[test]
fn audit_lines_show_text_from_inputs_escaped() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let verifier = w
        .verifier_builder(&w.executor)
        .policy(Shifty)
        .audit(JsonlAudit::open(&path).unwrap())
        .build()
        .unwrap();
    let denied = assert_reason(
        verifier.verify(
            &forbidden_header_envelope(EVERY_CLASS),
            b"",
            &RequestContext::new(),
        ),
        Reason::ForbiddenHeader,
    );
    assert_no_raw("a rejection detail", denied.detail());
    let ok = envelope(&w, &[w.grant()], SECRET_PAYLOAD);
    let allowed = verifier
        .verify(ok.as_str(), SECRET_PAYLOAD, &RequestContext::new())
        .unwrap();
    assert_no_raw("an allowed policy rule", allowed.policy_rule());
    // The header and two decisions, three lines: no forged line, no raw control, bidi or
    // separator character.
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches('\n').count(), 3, "{text:?}");
    assert_no_raw("the header line", text.lines().next().unwrap());
    for line in text.lines().skip(1) {
        assert_no_raw("an audit line", line);
        assert!(
            line.contains("\\\\u{1b}]0;owned\\\\u{7}\\\\u{a}FAKE LINE"),
            "{line}"
        );
        assert!(line.contains("\\\\u{202e}\\\\u{2028}\\\\u{2029}"), "{line}");
    }
    assert_eq!(verify_audit_log(&path).unwrap().summary.records, 2);
    for record in w.audit.records() {
        assert_no_raw("a record's JSON", &record.to_json());
    }
}

#[cfg(feature = "tracing")]
mod tracing_sink {
    use super::*;
    use agent_handoff::audit::tracing::TracingAudit;
    use std::collections::BTreeMap;
    use std::fmt;
    use std::sync::Mutex;
    use tracing::field::{Field, Visit};
    use tracing::span;

    type Events = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

    struct Collect(Events);
    struct Fields(BTreeMap<String, String>);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
    }

    impl tracing::Subscriber for Collect {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
            span::Id::from_u64(1)
        }
        fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
        fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut fields = Fields(BTreeMap::new());
            event.record(&mut fields);
            self.0
                .lock()
                .unwrap()
                .push((event.metadata().target().to_owned(), fields.0));
        }
        fn enter(&self, _: &span::Id) {}
        fn exit(&self, _: &span::Id) {}
    }

    #[test]
    fn the_tracing_sink_emits_the_record_fields_and_no_secrets() {
        let w = World::new();
        let events: Events = Arc::default();
        let verifier = w
            .verifier_builder(&w.executor)
            .audit(TracingAudit)
            .build()
            .unwrap();
        let root = w.grant();
        let ok = envelope(&w, std::slice::from_ref(&root), SECRET_PAYLOAD);
        tracing::subscriber::with_default(Collect(events.clone()), || {
            verifier
                .verify(ok.as_str(), SECRET_PAYLOAD, &RequestContext::new())
                .unwrap();
            assert_reason(
                verifier.verify(ok.as_str(), SECRET_PAYLOAD, &RequestContext::new()),
                Reason::Replayed,
            );
        });
        let events = events.lock().unwrap();
        assert_eq!(events.len(), 2);
        let (target, allow) = &events[0];
        assert_eq!(target, "agent_handoff::audit");
        assert_eq!(allow["decision"], "allow");
        assert_eq!(allow["envelope"], ok.id().to_string());
        assert_eq!(allow["sender"], w.planner.id().to_string());
        assert_eq!(allow["recipient"], w.executor.id().to_string());
        assert_eq!(allow["task"], "task-42");
        assert_eq!(allow["chain"], root.id().to_string());
        assert_eq!(allow["mode"], "request");
        assert!(allow["intent"].contains("tickets.read"));
        assert!(allow.contains_key("scope") && allow.contains_key("policy"));
        assert!(allow.contains_key("time"));
        let (_, deny) = &events[1];
        assert_eq!(deny["decision"], "deny");
        assert_eq!(deny["reason"], "replayed");
        assert_eq!(deny["claimed_envelope"], ok.id().to_string());
        assert_eq!(deny["claimed_sender"], w.planner.id().to_string());
        assert!(
            !deny.contains_key("sender"),
            "a denial states a verified sender"
        );
        let s = secrets(&w, &[root], &[ok.as_str().to_owned()]);
        for (_, fields) in events.iter() {
            assert_clean("a tracing event", &format!("{fields:?}"), &s);
        }
    }

    #[test]
    fn tracing_fields_show_text_from_inputs_escaped() {
        let w = World::new();
        let events: Events = Arc::default();
        let verifier = w
            .verifier_builder(&w.executor)
            .policy(Shifty)
            .audit(TracingAudit)
            .build()
            .unwrap();
        let ok = envelope(&w, &[w.grant()], SECRET_PAYLOAD);
        tracing::subscriber::with_default(Collect(events.clone()), || {
            assert_reason(
                verifier.verify(
                    &forbidden_header_envelope(EVERY_CLASS),
                    b"",
                    &RequestContext::new(),
                ),
                Reason::ForbiddenHeader,
            );
            verifier
                .verify(ok.as_str(), SECRET_PAYLOAD, &RequestContext::new())
                .unwrap();
        });
        let events = events.lock().unwrap();
        assert_eq!(events.len(), 2);
        let (_, deny) = &events[0];
        assert!(
            deny["detail"].contains("\\u{1b}]0;owned\\u{7}\\u{a}FAKE LINE"),
            "{deny:?}"
        );
        let (_, allow) = &events[1];
        assert!(
            allow["policy_version"].contains("\\u{202e}\\u{2028}"),
            "{allow:?}"
        );
        for (_, fields) in events.iter() {
            for value in fields.values() {
                assert_no_raw("a tracing field", value);
            }
        }
    }
}

#[test]
fn probe_deny_audit_keeps_claims_under_claimed() {
    let w = World::new();
    let grant = w.grant();
    let mut c = w.envelope_claims(&w.planner, &w.executor, &[grant.as_str()]);
    c["intent"]["resource"] = serde_json::json!("elsewhere/1");
    let env = w.raw_envelope(&w.planner, &c);
    assert_reason(
        w.verifier(&w.executor)
            .verify(&env, PAYLOAD, &RequestContext::new()),
        Reason::IntentNotGranted,
    );
    let records = w.audit.records();
    let rec: serde_json::Value = serde_json::from_str(&records[0].to_json()).unwrap();
    assert_eq!(rec["decision"], "deny");
    assert_eq!(rec["reason"], "intent_not_granted");
    for verified in ["sender", "task", "intent", "chain", "scope", "envelope"] {
        assert!(
            rec.get(verified).is_none(),
            "`{verified}` outside `claimed`: {rec}"
        );
    }
    assert_eq!(rec["claimed"]["sender"], w.planner.id().as_str());
    assert!(records[0].verified_sender().is_none());
    let text = records[0].to_json();
    assert!(!text.contains("ticket\":123"), "payload bytes in audit");
}
