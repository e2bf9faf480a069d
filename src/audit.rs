//! Audit: one record per decision (SPEC section 7), and sinks that keep them.
//!
//! A record of a denied input holds what the input *claimed* under `claimed`, never as
//! verified facts. No record ever holds key material, signatures or payload bytes.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ed25519_dalek::{Signature, Signer as _};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::capability::{Capability, Intent};
use crate::clock::UnixTime;
use crate::envelope::HandoffMode;
use crate::error::{Error, Reason, StoreError};
use crate::id::{AgentId, TaskId, TokenId};
use crate::identity::{AgentIdentity, AgentKey};
use crate::jws::{b64_decode, b64_encode};

/// The outcome of a verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The handoff was accepted.
    Allow,
    /// The handoff was refused.
    Deny,
}

/// What a denied input claimed. None of it was verified.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ClaimedFacts {
    /// The envelope id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope: Option<TokenId>,
    /// The sender.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<AgentId>,
    /// The recipient named in `aud`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<AgentId>,
    /// The task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskId>,
    /// The intent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<Intent>,
    /// The ids of the chain's links that could be read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<TokenId>,
}

/// Verified facts of an accepted handoff.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct AllowedFacts {
    pub envelope: TokenId,
    pub sender: AgentId,
    pub task: TaskId,
    pub intent: Intent,
    pub mode: HandoffMode,
    pub chain: Vec<TokenId>,
    pub scope: Vec<Capability>,
}

/// One audit record: one decision about one input.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditRecord {
    time: String,
    decision: Decision,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    recipient: AgentId,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    allowed: Option<AllowedFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    claimed: Option<ClaimedFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_version: Option<String>,
}

impl AuditRecord {
    pub(crate) fn allow(
        now: UnixTime,
        recipient: AgentId,
        facts: AllowedFacts,
        policy: Option<String>,
        policy_version: Option<String>,
    ) -> AuditRecord {
        AuditRecord {
            time: now.to_rfc3339(),
            decision: Decision::Allow,
            reason: None,
            detail: None,
            recipient,
            allowed: Some(facts),
            claimed: None,
            policy,
            policy_version,
        }
    }

    pub(crate) fn deny(
        now: UnixTime,
        recipient: AgentId,
        reason: Reason,
        detail: &str,
        claimed: ClaimedFacts,
        policy: Option<String>,
        policy_version: Option<String>,
    ) -> AuditRecord {
        AuditRecord {
            time: now.to_rfc3339(),
            decision: Decision::Deny,
            reason: Some(reason.as_str()),
            detail: Some(detail.to_owned()),
            recipient,
            allowed: None,
            claimed: Some(claimed),
            policy,
            policy_version,
        }
    }

    /// Allow or deny.
    #[must_use]
    pub fn decision(&self) -> Decision {
        self.decision
    }

    /// The reason code of a denial.
    #[must_use]
    pub fn reason(&self) -> Option<Reason> {
        self.reason.and_then(Reason::from_code)
    }

    /// The verifier that decided.
    #[must_use]
    pub fn recipient(&self) -> &AgentId {
        &self.recipient
    }

    /// The verified sender of an accepted handoff (`None` on deny).
    #[must_use]
    pub fn verified_sender(&self) -> Option<&AgentId> {
        self.allowed.as_ref().map(|a| &a.sender)
    }

    /// What a denied input claimed (`None` on allow).
    #[must_use]
    pub fn claimed(&self) -> Option<&ClaimedFacts> {
        self.claimed.as_ref()
    }

    /// The policy rule that decided, if one did.
    #[must_use]
    pub fn policy(&self) -> Option<&str> {
        self.policy.as_deref()
    }

    /// The record as one line of JSON (no trailing newline); control, bidirectional and
    /// invisible characters are escaped as `\uXXXX`.
    #[must_use]
    pub fn to_json(&self) -> String {
        crate::escape::to_json(self).unwrap_or_default()
    }
}

/// Where audit records go. `record` must not return before the record is as durable as the
/// sink promises: an accepted handoff is reported only after its record is kept. An `Err`
/// turns an allow into a deny with `unavailable` (fail closed).
pub trait AuditSink: fmt::Debug + Send + Sync {
    /// Keeps one record.
    fn record(&self, record: &AuditRecord) -> Result<(), StoreError>;
}

impl<T: AuditSink + ?Sized> AuditSink for Arc<T> {
    fn record(&self, record: &AuditRecord) -> Result<(), StoreError> {
        (**self).record(record)
    }
}

/// Keeps records in memory (for tests and examples). Clones share the records.
#[derive(Clone, Debug, Default)]
pub struct MemoryAudit(Arc<Mutex<Vec<AuditRecord>>>);

impl MemoryAudit {
    /// An empty sink.
    #[must_use]
    pub fn new() -> MemoryAudit {
        MemoryAudit::default()
    }

    /// A copy of the records so far.
    #[must_use]
    pub fn records(&self) -> Vec<AuditRecord> {
        self.0.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl AuditSink for MemoryAudit {
    fn record(&self, record: &AuditRecord) -> Result<(), StoreError> {
        self.0
            .lock()
            .map_err(|_| StoreError::new("audit sink", "lock poisoned"))?
            .push(record.clone());
        Ok(())
    }
}

/// Discards every record. Use only where another layer audits; a verifier must be given a
/// sink explicitly, so choosing this one is a visible decision.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiscardAudit;

impl AuditSink for DiscardAudit {
    fn record(&self, _record: &AuditRecord) -> Result<(), StoreError> {
        Ok(())
    }
}

/// When [`JsonlAudit`] forces records to stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SyncPolicy {
    /// `fdatasync` after every record: an allow is returned only once its record is on disk.
    #[default]
    EveryRecord,
    /// Leave flushing to the operating system (faster; a power loss can lose the tail).
    OsBuffered,
}

const GENESIS: [u8; 32] = [0u8; 32];

/// What a record signature covers: this context, then SHA-256 of the line without its `sig`
/// member (which holds `seq` and `prev`, so the signature also covers the chain). The newline
/// makes it impossible to confuse with a JWS signing input.
const SIG_CONTEXT: &[u8] = b"agent-handoff audit record v1\n";
/// `,"sig":"` + 86 base64url characters (64 bytes) + `"}`: how every signed line ends.
const SIG_MEMBER: &[u8] = b",\"sig\":\"";
const SIG_B64_LEN: usize = 86;

fn sig_message(body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIG_CONTEXT.len() + 32);
    msg.extend_from_slice(SIG_CONTEXT);
    msg.extend_from_slice(&Sha256::digest(body));
    msg
}

#[derive(Debug)]
struct JsonlState {
    file: File,
    seq: u64,
    prev: [u8; 32],
    /// Set when a write or sync failed: the file may end in a partial line, so every later
    /// record is refused (fail closed) until the log is repaired and reopened.
    broken: bool,
}

/// A JSON Lines audit log, hash-chained: each line carries `seq` and `prev`, the base64url
/// SHA-256 of the previous line, so an edited, deleted or reordered line is detected by
/// [`verify_audit_log`].
///
/// Opened with [`open_signed`](JsonlAudit::open_signed), every line also carries `sig`: an
/// Ed25519 signature by the verifier's own identity over the line (so over the chain), and
/// [`verify_audit_log_signed`] detects forged appends and names an edited line itself.
/// Keep [`head`](JsonlAudit::head) somewhere else from time to time (another host, a ticket)
/// and [`verify_audit_log_extends`] also detects a truncated tail.
///
/// After a failed write the sink refuses every further record (the verifier then denies with
/// `unavailable`): run [`verify_audit_log`], repair the tail, and reopen.
pub struct JsonlAudit {
    path: PathBuf,
    state: Mutex<JsonlState>,
    sync: SyncPolicy,
    signer: Option<Arc<AgentIdentity>>,
}

impl fmt::Debug for JsonlAudit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonlAudit")
            .field("path", &self.path)
            .field("sync", &self.sync)
            .field("signer", &self.signer.as_ref().map(|s| s.id()))
            .finish_non_exhaustive()
    }
}

impl JsonlAudit {
    /// Opens (or creates, mode 0600) a log for appending, continuing its hash chain. Refuses a
    /// log whose chain is already broken.
    pub fn open(path: impl AsRef<Path>) -> Result<JsonlAudit, Error> {
        JsonlAudit::open_with(path, SyncPolicy::default())
    }

    /// Like [`open`](JsonlAudit::open), with a sync policy.
    pub fn open_with(path: impl AsRef<Path>, sync: SyncPolicy) -> Result<JsonlAudit, Error> {
        JsonlAudit::open_inner(path.as_ref(), sync, None)
    }

    /// Opens (or creates) a log whose every line is signed by `identity`, the verifier's own
    /// identity. An existing log must verify under that identity's key.
    pub fn open_signed(
        path: impl AsRef<Path>,
        identity: Arc<AgentIdentity>,
    ) -> Result<JsonlAudit, Error> {
        JsonlAudit::open_signed_with(path, identity, SyncPolicy::default())
    }

    /// Like [`open_signed`](JsonlAudit::open_signed), with a sync policy.
    pub fn open_signed_with(
        path: impl AsRef<Path>,
        identity: Arc<AgentIdentity>,
        sync: SyncPolicy,
    ) -> Result<JsonlAudit, Error> {
        JsonlAudit::open_inner(path.as_ref(), sync, Some(identity))
    }

    fn open_inner(
        path: &Path,
        sync: SyncPolicy,
        signer: Option<Arc<AgentIdentity>>,
    ) -> Result<JsonlAudit, Error> {
        let path = path.to_owned();
        let io = |source| Error::Io {
            action: "opening audit log",
            path: path.clone(),
            source,
        };
        let existed = path.exists();
        let (seq, prev) = if existed {
            let key = signer.as_ref().map(|s| s.key());
            let (summary, last_signed) = check_chain(&path, key, None).map_err(|e| {
                Error::Config(format!(
                    "audit log `{}` is not intact: {e}; keep it as evidence and start a new log",
                    path.display()
                ))
            })?;
            if last_signed && signer.is_none() {
                return Err(Error::Config(format!(
                    "audit log `{}` is signed: open it with `JsonlAudit::open_signed` so its records stay signed",
                    path.display()
                )));
            }
            (summary.records, summary.head)
        } else {
            (0, GENESIS)
        };
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&path).map_err(io)?;
        if !existed && sync == SyncPolicy::EveryRecord {
            // Make the new file's directory entry durable too.
            file.sync_all().map_err(io)?;
            #[cfg(unix)]
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
            }
        }
        Ok(JsonlAudit {
            path,
            state: Mutex::new(JsonlState {
                file,
                seq,
                prev,
                broken: false,
            }),
            sync,
            signer,
        })
    }

    /// The log's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The records written so far and the hash of the last line: keep it elsewhere, and
    /// [`verify_audit_log_extends`] proves later that the log still holds it (not truncated,
    /// not rewritten).
    pub fn head(&self) -> Result<AuditLogSummary, StoreError> {
        let state = self
            .state
            .lock()
            .map_err(|_| StoreError::new("audit sink", "lock poisoned"))?;
        Ok(AuditLogSummary {
            records: state.seq,
            head: state.prev,
        })
    }
}

#[derive(Serialize)]
struct ChainedLine<'a> {
    seq: u64,
    prev: String,
    #[serde(flatten)]
    record: &'a AuditRecord,
}

impl AuditSink for JsonlAudit {
    fn record(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let fail =
            |what: &str| StoreError::new("audit sink", format!("{what} `{}`", self.path.display()));
        let mut state = self.state.lock().map_err(|_| fail("lock poisoned for"))?;
        if state.broken {
            return Err(fail(
                "an earlier write failed; verify and repair, then reopen",
            ));
        }
        let body = crate::escape::to_json_vec(&ChainedLine {
            seq: state.seq,
            prev: b64_encode(&state.prev),
            record,
        })
        .map_err(|_| fail("could not serialize a record for"))?;
        let mut line = body;
        if let Some(signer) = &self.signer {
            let sig = signer.signing_key().sign(&sig_message(&line));
            // The body is a JSON object: replace its closing brace with the `sig` member.
            if line.pop() != Some(b'}') {
                return Err(fail("could not serialize a record for"));
            }
            line.extend_from_slice(SIG_MEMBER);
            line.extend_from_slice(b64_encode(&sig.to_bytes()).as_bytes());
            line.extend_from_slice(b"\"}");
        }
        let hash: [u8; 32] = Sha256::digest(&line).into();
        line.push(b'\n');
        let written = state.file.write_all(&line).and_then(|()| {
            if self.sync == SyncPolicy::EveryRecord {
                state.file.sync_data()
            } else {
                Ok(())
            }
        });
        if written.is_err() {
            state.broken = true;
            return Err(fail("could not write or sync"));
        }
        state.prev = hash;
        state.seq += 1;
        Ok(())
    }
}

/// What [`verify_audit_log`] found in an intact log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditLogSummary {
    /// How many records the log holds.
    pub records: u64,
    /// The hash of the last line (the chain's head).
    pub head: [u8; 32],
}

/// The first place where an audit log's chain breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct AuditLogError {
    /// The 1-based line number of the first bad line.
    pub line: u64,
    /// What is wrong with it.
    pub problem: String,
}

/// Checks a hash-chained audit log and names the first bad line: an edited line breaks the
/// `prev` of the next one, a deleted or reordered line breaks `seq` and `prev`, a forged
/// appended line cannot carry the right `prev` without rewriting everything after the edit.
///
/// Without a signature anyone can recompute the chain, so this detects accidents and clumsy
/// edits only; use [`verify_audit_log_signed`] for a log written by
/// [`JsonlAudit::open_signed`]. A signed log also passes this check.
pub fn verify_audit_log(path: impl AsRef<Path>) -> Result<AuditLogSummary, AuditLogError> {
    check_log(path.as_ref(), None, None)
}

/// Checks a signed audit log: the chain, and on every line a `sig` by `key` (the verifier
/// identity's public key) over the line. Names the first bad line: an edited line is itself
/// bad (its signature fails), as is any line a forger appended or inserted. A truncated tail
/// leaves a shorter valid log: use [`verify_audit_log_extends`] with a head kept elsewhere.
pub fn verify_audit_log_signed(
    path: impl AsRef<Path>,
    key: &AgentKey,
) -> Result<AuditLogSummary, AuditLogError> {
    check_log(path.as_ref(), Some(key), None)
}

/// Like [`verify_audit_log_signed`], and the log must still hold `earlier` (a
/// [`JsonlAudit::head`] or summary kept elsewhere): at least `earlier.records` records, the
/// last of which hashes to `earlier.head`. Detects a truncated tail and a rewritten log.
pub fn verify_audit_log_extends(
    path: impl AsRef<Path>,
    key: &AgentKey,
    earlier: &AuditLogSummary,
) -> Result<AuditLogSummary, AuditLogError> {
    check_log(path.as_ref(), Some(key), Some(earlier))
}

/// Splits a signed line into the signed body (with its closing brace restored) and the
/// signature.
fn split_signed(line: &[u8]) -> Option<(Vec<u8>, Signature)> {
    let sig_end = line.len().checked_sub(2)?;
    let member = sig_end.checked_sub(SIG_B64_LEN + SIG_MEMBER.len())?;
    if line.get(sig_end..)? != b"\"}" || line.get(member..member + SIG_MEMBER.len())? != SIG_MEMBER
    {
        return None;
    }
    let b64 = std::str::from_utf8(line.get(member + SIG_MEMBER.len()..sig_end)?).ok()?;
    let bytes: [u8; 64] = b64_decode(b64)?.try_into().ok()?;
    let mut body = line.get(..member)?.to_vec();
    body.push(b'}');
    Some((body, Signature::from_bytes(&bytes)))
}

fn check_log(
    path: &Path,
    key: Option<&AgentKey>,
    earlier: Option<&AuditLogSummary>,
) -> Result<AuditLogSummary, AuditLogError> {
    check_chain(path, key, earlier).map(|(summary, _)| summary)
}

/// The summary, and whether the last line carries a signature.
fn check_chain(
    path: &Path,
    key: Option<&AgentKey>,
    earlier: Option<&AuditLogSummary>,
) -> Result<(AuditLogSummary, bool), AuditLogError> {
    let mut last_signed = false;
    let file = File::open(path).map_err(|e| AuditLogError {
        line: 0,
        problem: format!("cannot open `{}`: {e}", path.display()),
    })?;
    let mut reader = BufReader::new(file);
    let mut prev = GENESIS;
    let mut seq = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| AuditLogError {
                line: seq + 1,
                problem: format!("cannot read: {e}"),
            })?;
        if n == 0 {
            break;
        }
        let bad = |problem: &str| AuditLogError {
            line: seq + 1,
            problem: problem.to_owned(),
        };
        let Some(line) = buf.strip_suffix(b"\n") else {
            return Err(bad("truncated: the last line has no newline"));
        };
        #[derive(serde::Deserialize)]
        struct Head {
            seq: u64,
            prev: String,
        }
        let head: Head =
            serde_json::from_slice(line).map_err(|_| bad("not a chained audit record"))?;
        last_signed = split_signed(line).is_some();
        if let Some(key) = key {
            let Some((body, sig)) = split_signed(line) else {
                return Err(bad(
                    "no signature: this line was not written by the signing audit sink (forged or inserted)",
                ));
            };
            if key
                .verifying_key()
                .verify_strict(&sig_message(&body), &sig)
                .is_err()
            {
                return Err(bad(
                    "signature does not verify: this line was edited or forged",
                ));
            }
        }
        if head.seq != seq {
            return Err(bad(&format!(
                "sequence number is {}, expected {seq} (a line was deleted, inserted or reordered)",
                head.seq
            )));
        }
        if head.prev != b64_encode(&prev) {
            return Err(bad(
                "hash of the previous line does not match (the previous line was edited, or this one moved)",
            ));
        }
        prev = Sha256::digest(line).into();
        seq += 1;
        if let Some(earlier) = earlier {
            if seq == earlier.records && prev != earlier.head {
                return Err(AuditLogError {
                    line: seq,
                    problem: "differs from the head recorded earlier: the log was rewritten from here or before".to_owned(),
                });
            }
        }
    }
    if let Some(earlier) = earlier {
        if seq < earlier.records {
            return Err(AuditLogError {
                line: seq + 1,
                problem: format!(
                    "truncated: the log ends after {seq} records, but {} were recorded earlier; line {} onwards was removed",
                    earlier.records,
                    seq + 1
                ),
            });
        }
    }
    Ok((
        AuditLogSummary {
            records: seq,
            head: prev,
        },
        last_signed,
    ))
}

/// Emits every record as a structured `tracing` event (target `agent_handoff::audit`;
/// `INFO` for allow, `WARN` for deny) with the same fields as a JSON record: `time`,
/// `decision`, `reason`, `detail`, `recipient`, then the verified `envelope`, `sender`, `task`,
/// `intent`, `mode`, `chain`, `scope` of an allow, or the `claimed_…` values of a denial, and
/// `policy`, `policy_version`. Never key material, signatures, tokens or payload bytes.
///
/// It never fails: whether a subscriber keeps the event is the subscriber's business, so use
/// it next to a durable sink where evidence matters.
#[cfg(feature = "tracing")]
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingAudit;

#[cfg(feature = "tracing")]
fn joined<T: fmt::Display>(items: &[T]) -> Option<String> {
    if items.is_empty() {
        return None;
    }
    Some(
        items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    )
}

#[cfg(feature = "tracing")]
impl AuditSink for TracingAudit {
    fn record(&self, r: &AuditRecord) -> Result<(), StoreError> {
        match (&r.allowed, &r.claimed) {
            (Some(a), _) => tracing::info!(
                target: "agent_handoff::audit",
                time = %r.time,
                decision = "allow",
                recipient = %r.recipient,
                envelope = %a.envelope,
                sender = %a.sender,
                task = %a.task,
                intent = %a.intent,
                mode = a.mode.as_str(),
                chain = joined(&a.chain).map(display),
                scope = joined(&a.scope).map(display),
                policy = r.policy.as_deref(),
                policy_version = r.policy_version.as_deref(),
                "handoff allowed"
            ),
            (None, claimed) => {
                let c = claimed.as_ref();
                tracing::warn!(
                    target: "agent_handoff::audit",
                    time = %r.time,
                    decision = "deny",
                    reason = r.reason,
                    detail = r.detail.as_deref(),
                    recipient = %r.recipient,
                    claimed_envelope = c.and_then(|c| c.envelope.as_ref()).map(display),
                    claimed_sender = c.and_then(|c| c.sender.as_ref()).map(display),
                    claimed_audience = c.and_then(|c| c.audience.as_ref()).map(display),
                    claimed_task = c.and_then(|c| c.task.as_ref()).map(display),
                    claimed_intent = c.and_then(|c| c.intent.as_ref()).map(display),
                    claimed_chain = c.and_then(|c| joined(&c.chain)).map(display),
                    policy = r.policy.as_deref(),
                    policy_version = r.policy_version.as_deref(),
                    "handoff denied"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AuditRecord {
        AuditRecord::deny(
            UnixTime::from_secs(1_800_000_000),
            "spiffe://acme.example/agents/executor".parse().unwrap(),
            Reason::Malformed,
            "test",
            ClaimedFacts::default(),
            None,
            None,
        )
    }

    #[test]
    fn a_failed_write_latches_the_sink_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, "").unwrap();
        // A read-only handle: every write fails, as on a full or failing disk.
        let sink = JsonlAudit {
            path: path.clone(),
            state: Mutex::new(JsonlState {
                file: File::open(&path).unwrap(),
                seq: 0,
                prev: GENESIS,
                broken: false,
            }),
            sync: SyncPolicy::EveryRecord,
            signer: None,
        };
        let first = sink.record(&record()).unwrap_err();
        assert!(first.problem().contains("could not write"), "{first}");
        let second = sink.record(&record()).unwrap_err();
        assert!(
            second.problem().contains("earlier write failed"),
            "{second}"
        );
        assert_eq!(sink.head().unwrap().records, 0);
    }

    #[test]
    fn signed_lines_split_back_into_body_and_signature() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let id = Arc::new(AgentIdentity::from_seed(
            "spiffe://acme.example/agents/executor".parse().unwrap(),
            &[3u8; 32],
        ));
        let sink = JsonlAudit::open_signed(&path, id.clone()).unwrap();
        sink.record(&record()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let line = text.trim_end().as_bytes();
        let (body, sig) = split_signed(line).unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("\"sig\""));
        assert!(id
            .key()
            .verifying_key()
            .verify_strict(&sig_message(&body), &sig)
            .is_ok());
        assert!(split_signed(b"{\"seq\":0}").is_none());
        assert!(split_signed(b"").is_none());
    }
}
