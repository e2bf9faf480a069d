//! `verify` (one envelope, or a stream on standard input against one replay cache) and
//! `audit verify`.

use std::io::{BufRead as _, Read as _};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use agent_handoff::{
    audit::verify_audit_log, audit::verify_audit_log_signed, audit::AuditSignatures,
    audit::DiscardAudit, clock::FixedClock, error::Location, keys::AgentKey,
    limits::MAX_ENVELOPE_BYTES, Capability, HandoffVerifier, Intent, JsonlAudit, MemoryRevocations,
    Policy, Rejection, RequestContext, RulePolicy, TrustBundle, UnixTime, VerifiedHandoff,
    Verifier as _,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;
use serde_json::json;

use crate::args::{AuditVerifyArgs, PolicyCheckArgs, VerifyArgs};
use crate::escape::to_json;
use crate::{
    explain, print_line, read_payload_file, read_text_file, text_or_file, CliError, CliResult,
};

/// Exit status when any envelope was denied, or an audit log is broken.
const DENIED: u8 = 1;

/// Loads a `--policy` file (a TOML rule policy; see `docs/policy.md`).
fn load_policy(path: &Path) -> CliResult<Arc<dyn Policy>> {
    RulePolicy::from_file(path)
        .map(|p| Arc::new(p) as Arc<dyn Policy>)
        .map_err(|e| explain("--policy", e))
}

/// Builds the verifier from the flags: bundle, clock, leeway, revocations, policy, audit.
fn build_verifier(args: &VerifyArgs) -> CliResult<HandoffVerifier> {
    let bundle = TrustBundle::load(&args.trust).map_err(|e| explain("--trust", e))?;
    let now = args.now.map(UnixTime::from_secs);
    let mut builder = HandoffVerifier::builder(args.me.clone(), bundle);
    if let Some(now) = now {
        builder = builder.clock(FixedClock::new(now));
    }
    if let Some(leeway) = args.leeway {
        if leeway > 300 {
            return Err(CliError::new(format!(
                "--leeway {leeway}: a leeway above 300 s defeats expiry; fix the clocks, or \
                 reproduce a past decision with `--now` instead"
            )));
        }
        builder = builder.leeway(Duration::from_secs(leeway));
    }
    if let Some(path) = &args.revocations {
        let revocations = MemoryRevocations::load(path, now.unwrap_or_else(UnixTime::now))
            .map_err(|e| explain("--revocations", e))?;
        builder = builder.revocations(revocations);
    }
    if let Some(path) = &args.policy {
        builder = builder.policy(load_policy(path)?);
    }
    builder = match &args.audit {
        Some(path) => {
            refuse_special_file("--audit", path)?;
            builder.audit(JsonlAudit::open(path).map_err(|e| explain("--audit", e))?)
        }
        None => builder.audit(DiscardAudit),
    };
    builder.build().map_err(|e| explain("verify", e))
}

/// A JSON value as one escaped line of output.
fn line(value: serde_json::Value) -> CliResult<String> {
    to_json(&value).map_err(|e| CliError::new(format!("cannot encode the output: {e}")))
}

fn location_json(location: Location) -> serde_json::Value {
    match location {
        Location::Envelope => json!("envelope"),
        Location::Link(i) => json!({ "link": i }),
        Location::Verifier => json!("verifier"),
        other => json!(other.to_string()),
    }
}

/// An allow decision: every field is a verified fact. Field order is the output order.
#[derive(Serialize)]
struct Allow<'a> {
    decision: &'static str,
    envelope: &'a str,
    sender: &'a str,
    recipient: &'a str,
    task: &'a str,
    intent: &'a Intent,
    mode: &'static str,
    chain: Vec<&'a str>,
    scope: &'a [Capability],
    policy: &'a str,
    expires_at: u64,
}

/// A deny decision: the stable reason code, where, and a detail for people.
#[derive(Serialize)]
struct Deny<'a> {
    decision: &'static str,
    reason: &'static str,
    location: serde_json::Value,
    detail: &'a str,
}

/// The decision as one line of JSON.
fn decision_json(result: &Result<VerifiedHandoff, Rejection>) -> CliResult<String> {
    let encoded = match result {
        Ok(h) => to_json(&Allow {
            decision: "allow",
            envelope: h.envelope_id().as_str(),
            sender: h.sender().as_str(),
            recipient: h.recipient().as_str(),
            task: h.task().as_str(),
            intent: h.intent(),
            mode: h.mode().as_str(),
            chain: h.chain_ids().iter().map(|id| id.as_str()).collect(),
            scope: h.capabilities(),
            policy: h.policy_rule(),
            expires_at: h.expires_at().as_secs(),
        }),
        Err(r) => to_json(&Deny {
            decision: "deny",
            reason: r.reason().as_str(),
            location: location_json(r.location()),
            detail: r.detail(),
        }),
    };
    encoded.map_err(|e| CliError::new(format!("cannot encode the decision: {e}")))
}

/// Reads one line of at most `MAX_ENVELOPE_BYTES + 1` bytes (enough for the verifier to
/// answer `too_large`), discarding the rest of an overlong line. `None` at end of input.
fn read_bounded_line(input: &mut impl std::io::BufRead) -> std::io::Result<Option<String>> {
    let cap = MAX_ENVELOPE_BYTES as u64 + 1;
    let mut buf = Vec::new();
    let n = input.by_ref().take(cap).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') && n as u64 == cap {
        // Overlong: skip to the end of this line without keeping it.
        let mut sink = Vec::new();
        loop {
            sink.clear();
            let m = input
                .by_ref()
                .take(64 * 1024)
                .read_until(b'\n', &mut sink)?;
            if m == 0 || sink.last() == Some(&b'\n') {
                break;
            }
        }
    }
    Ok(Some(String::from_utf8_lossy(&buf).trim().to_owned()))
}

/// `handoff verify`.
pub(crate) fn verify(args: &VerifyArgs) -> CliResult<ExitCode> {
    let payload = match &args.payload {
        Some(path) => read_payload_file("--payload", path)?,
        None => Vec::new(),
    };
    let verifier = build_verifier(args)?;
    let context = args
        .context
        .iter()
        .fold(RequestContext::new(), |ctx, (name, value)| {
            ctx.with(name, value.clone())
        });
    let mut any_denied = false;
    let mut judge = |envelope: &str| -> CliResult<()> {
        let result = verifier.verify(envelope, &payload, &context);
        any_denied |= result.is_err();
        print_line(&decision_json(&result)?)
    };
    if args.envelope == "-" {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        let mut line_no = 0u64;
        loop {
            line_no += 1;
            let line = read_bounded_line(&mut input).map_err(|e| {
                CliError::new(format!("cannot read standard input (line {line_no}): {e}"))
            })?;
            match line {
                None => break,
                Some(line) if line.is_empty() => {}
                Some(line) => judge(&line)?,
            }
        }
    } else {
        let envelope = text_or_file("<ENVELOPE>", &args.envelope)?;
        judge(&envelope)?;
    }
    Ok(if any_denied {
        ExitCode::from(DENIED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Refuses an audit log path that exists and is not a regular file, with the CLI's own message
/// naming the argument (the library refuses such a file too, without blocking, when it opens it).
fn refuse_special_file(arg: &str, path: &Path) -> CliResult<()> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(CliError::new(format!(
            "{arg}: `{}` is not a regular file; pass an audit log file (JSON lines)",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// `handoff audit verify`.
pub(crate) fn audit_verify(args: &AuditVerifyArgs) -> CliResult<ExitCode> {
    if let Err(e) = std::fs::metadata(&args.file) {
        return Err(CliError::new(format!(
            "<FILE.JSONL>: cannot read `{}`: {e}; check the path",
            args.file.display()
        )));
    }
    refuse_special_file("<FILE.JSONL>", &args.file)?;
    let checked = match &args.key {
        None => verify_audit_log(&args.file).map(unkeyed_verdict),
        Some(key_path) => {
            let key = read_audit_key(key_path)?;
            verify_audit_log_signed(&args.file, &key).map(|summary| AuditVerdict {
                summary,
                signatures: json!({"signatures": "verified", "kid": key.kid().to_string()}),
                proven: true,
            })
        }
    };
    match checked {
        Ok(verdict) => print_audit_verdict(verdict),
        Err(e) if e.line == 0 => Err(CliError::new(format!("<FILE.JSONL>: {}", e.problem))),
        Err(e) => {
            print_line(&line(json!({
                "intact": false,
                "line": e.line,
                "problem": e.problem,
            }))?)?;
            Ok(ExitCode::from(DENIED))
        }
    }
}

/// What `audit verify` says of a log whose chain is intact.
struct AuditVerdict {
    summary: agent_handoff::audit::AuditLogSummary,
    /// The members that describe the signatures.
    signatures: serde_json::Value,
    /// Whether the log is proven intact (unsigned, or its signatures verified): exit 0.
    proven: bool,
}

/// The verdict on a log checked without `--key`: an unsigned log is as intact as can be
/// proven; a signed one is not proven until its signatures are checked.
fn unkeyed_verdict(report: agent_handoff::audit::AuditLogReport) -> AuditVerdict {
    let (signatures, proven) = match report.signatures {
        AuditSignatures::Unsigned => (json!({"signatures": "none"}), true),
        AuditSignatures::NotChecked { signer, kid } => (
            json!({
                "signatures": "not_checked",
                "signer": signer.to_string(),
                "kid": kid.to_string(),
                "problem": "the log is signed but its signatures were not checked: pass `--key <signer.jwk.json>` to check them",
            }),
            false,
        ),
        _ => (json!({"signatures": "unknown"}), false),
    };
    AuditVerdict {
        summary: report.summary,
        signatures,
        proven,
    }
}

/// Reads `--key`: the public JWK of the identity that signed the log.
fn read_audit_key(path: &Path) -> CliResult<AgentKey> {
    let text = read_text_file(
        "--key",
        "JWK file",
        path,
        agent_handoff::limits::MAX_KEY_FILE_BYTES,
    )?;
    AgentKey::from_jwk_json(&text).map_err(|e| explain("--key", e))
}

/// Prints the verdict on an intact chain; exit 0 only if the log is proven intact.
fn print_audit_verdict(verdict: AuditVerdict) -> CliResult<ExitCode> {
    let mut out = json!({
        "intact": verdict.proven,
        "chain_intact": true,
        "records": verdict.summary.records,
        "head": URL_SAFE_NO_PAD.encode(verdict.summary.head),
    });
    if let (Some(out), Some(extra)) = (out.as_object_mut(), verdict.signatures.as_object()) {
        out.extend(extra.clone());
    }
    print_line(&line(out)?)?;
    Ok(if verdict.proven {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(DENIED)
    })
}

/// `handoff policy check <file>`: loads the rule policy; prints its version and warnings (also
/// to standard error, with their lines), or the problem with its line. Exit 0 valid (with or
/// without warnings), 1 invalid, 2 unreadable.
pub(crate) fn policy_check(args: &PolicyCheckArgs) -> CliResult<ExitCode> {
    match RulePolicy::from_file(&args.file) {
        Ok(policy) => {
            // Warnings do not make the file invalid: they go to standard error, one a line.
            for w in policy.warnings() {
                eprintln!("warning: {}: {w}", args.file.display());
            }
            print_line(&line(json!({
                    "valid": true,
                    "file": args.file.display().to_string(),
                    "version": policy.version(),
                    "warnings": policy.warnings().iter().map(ToString::to_string).collect::<Vec<_>>(),
            }))?)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(agent_handoff::Error::Policy { problem, .. }) => {
            print_line(&line(json!({
                "valid": false,
                "file": args.file.display().to_string(),
                "problem": problem,
            }))?)?;
            Ok(ExitCode::from(DENIED))
        }
        Err(e) => Err(explain("<POLICY.TOML>", e)),
    }
}
