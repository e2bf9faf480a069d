//! Audit: one record per decision (SPEC section 7), and sinks that keep them.
//!
//! A record of a denied input holds what the input *claimed* under `claimed`, never as
//! verified facts. No record ever holds key material, signatures or payload bytes.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
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
use crate::identity::{AgentIdentity, AgentKey, KeyId};
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

/// The `prev` of the header line (line 1, `seq` 0): 32 zero bytes.
const GENESIS: [u8; 32] = [0u8; 32];

/// The `format` member of a log's header line.
const LOG_FORMAT: &str = "agent-handoff audit log v2";

/// The longest line the checks read (a record is a few KiB at most).
const MAX_LINE: u64 = 1 << 20;

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
    /// The `seq` of the next line (the header is line `seq` 0).
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
/// The first line is a header that declares the log's mode: `unsigned`, or `signed` with the
/// signer's agent id and key id. It is part of the chain (`seq` 0, `prev` 32 zero bytes) and,
/// in a signed log, signed itself, so the mode cannot be changed without breaking the log.
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
    /// Opens (or creates, mode 0600) an unsigned log for appending, continuing its hash chain.
    /// A new (or empty) file starts with a header line that declares the log unsigned.
    ///
    /// Refuses ([`Error::AuditLog`]) a log whose chain is broken, a log without a header (one
    /// written before the header existed), and a signed log or one with any signed line
    /// ([`AuditLogFault::ModeMismatch`], [`AuditLogFault::UnexpectedSignature`]): a signed log
    /// is never continued unsigned.
    pub fn open(path: impl AsRef<Path>) -> Result<JsonlAudit, Error> {
        JsonlAudit::open_with(path, SyncPolicy::default())
    }

    /// Like [`open`](JsonlAudit::open), with a sync policy.
    pub fn open_with(path: impl AsRef<Path>, sync: SyncPolicy) -> Result<JsonlAudit, Error> {
        JsonlAudit::open_inner(path.as_ref(), sync, None)
    }

    /// Opens (or creates) a log whose every line is signed by `identity`, the verifier's own
    /// identity. A new (or empty) file starts with a signed header line naming the identity and
    /// its key id. An existing log must be a signed log of that identity whose every line
    /// verifies under its key; an unsigned log is refused ([`AuditLogFault::ModeMismatch`]).
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
        let refused = |source: AuditLogError| Error::AuditLog {
            path: path.clone(),
            source,
        };
        let existed = path.exists();
        let has_lines = existed && std::fs::metadata(&path).map_err(io)?.len() > 0;
        let (seq, prev) = if has_lines {
            let key = signer.as_ref().map(|s| s.key());
            let (summary, mode, lines) = check_chain(&path, key, None).map_err(|mut e| {
                if !matches!(
                    e.kind,
                    AuditLogFault::ModeMismatch | AuditLogFault::WrongKey | AuditLogFault::NoHeader
                ) {
                    e.problem.push_str("; keep it as evidence and start a new log file");
                } else if e.kind == AuditLogFault::ModeMismatch {
                    e.problem = "the header says the log is unsigned: open it with `JsonlAudit::open`, or start a new log file for signed records".to_owned();
                }
                refused(e)
            })?;
            match (&mode, &signer) {
                (LogMode::Signed { signer: by, kid }, None) => {
                    return Err(refused(AuditLogError {
                        line: 1,
                        kind: AuditLogFault::ModeMismatch,
                        problem: format!(
                            "the header says the log is signed by `{by}` (key `{kid}`): open it with `JsonlAudit::open_signed` and that identity so its records stay signed"
                        ),
                    }));
                }
                (LogMode::Signed { signer: by, .. }, Some(me)) if by != me.id() => {
                    return Err(refused(AuditLogError {
                        line: 1,
                        kind: AuditLogFault::WrongKey,
                        problem: format!(
                            "the header says the log is signed by `{by}`, not by `{}`: open it with that identity, or start a new log file",
                            me.id()
                        ),
                    }));
                }
                _ => {}
            }
            debug_assert_eq!(lines, summary.records + 1);
            (lines, summary.head)
        } else {
            (0, GENESIS)
        };
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
            // A FIFO without a reader makes this open fail (ENXIO) instead of blocking.
            options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
        }
        let file = options.open(&path).map_err(io)?;
        if !file.metadata().map_err(io)?.is_file() {
            return Err(Error::File {
                what: "audit log",
                path: path.clone(),
                problem: crate::error::FileProblem::NotRegular {
                    kind: "special file",
                },
            });
        }
        if !existed && sync == SyncPolicy::EveryRecord {
            // Make the new file's directory entry durable too.
            file.sync_all().map_err(io)?;
            #[cfg(unix)]
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
            }
        }
        let audit = JsonlAudit {
            path,
            state: Mutex::new(JsonlState {
                file,
                seq,
                prev,
                broken: false,
            }),
            sync,
            signer,
        };
        if !has_lines {
            audit.write_header().map_err(|e| {
                Error::Config(format!(
                    "cannot start audit log `{}`: {}; check the disk and the permissions, remove the partial file, and retry",
                    audit.path.display(),
                    e.problem()
                ))
            })?;
        }
        Ok(audit)
    }

    /// Writes the header line (`seq` 0) of a new log.
    fn write_header(&self) -> Result<(), StoreError> {
        let header = match &self.signer {
            Some(s) => HeaderLine {
                seq: 0,
                prev: b64_encode(&GENESIS),
                format: LOG_FORMAT,
                mode: "signed",
                signer: Some(s.id()),
                kid: Some(s.kid().as_str()),
            },
            None => HeaderLine {
                seq: 0,
                prev: b64_encode(&GENESIS),
                format: LOG_FORMAT,
                mode: "unsigned",
                signer: None,
                kid: None,
            },
        };
        let body = crate::escape::to_json_vec(&header)
            .map_err(|_| StoreError::new("audit sink", "could not serialize the header"))?;
        let mut state = self
            .state
            .lock()
            .map_err(|_| StoreError::new("audit sink", "lock poisoned"))?;
        self.append(&mut state, body)
    }

    /// The log's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The records written so far (not counting the header line) and the hash of the last
    /// line: keep it elsewhere, and [`verify_audit_log_extends`] proves later that the log
    /// still holds it (not truncated, not rewritten).
    pub fn head(&self) -> Result<AuditLogSummary, StoreError> {
        let state = self
            .state
            .lock()
            .map_err(|_| StoreError::new("audit sink", "lock poisoned"))?;
        Ok(AuditLogSummary {
            records: state.seq.saturating_sub(1),
            head: state.prev,
        })
    }

    /// Signs (when the log is signed), chains and appends one serialized line, `body`: the
    /// line's JSON object with `seq` and `prev` taken from `state`, without `sig`.
    fn append(&self, state: &mut JsonlState, body: Vec<u8>) -> Result<(), StoreError> {
        let fail =
            |what: &str| StoreError::new("audit sink", format!("{what} `{}`", self.path.display()));
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

/// The header line of a log (line 1, `seq` 0).
#[derive(Serialize)]
struct HeaderLine<'a> {
    seq: u64,
    prev: String,
    format: &'static str,
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    signer: Option<&'a AgentId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
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
        self.append(&mut state, body)
    }
}

/// What [`verify_audit_log`] found in an intact log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditLogSummary {
    /// How many records the log holds (not counting its header line).
    pub records: u64,
    /// The hash of the last line (the chain's head).
    pub head: [u8; 32],
}

/// What [`verify_audit_log`] checked: the chain, and what it could say about signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditLogReport {
    /// The records and the head of the intact chain.
    pub summary: AuditLogSummary,
    /// Whether the log is signed, and that its signatures were *not* checked.
    pub signatures: AuditSignatures,
}

/// The signature status of a log whose chain [`verify_audit_log`] found intact. Neither
/// variant means "intact against a forger": only [`verify_audit_log_signed`] proves that.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditSignatures {
    /// The header declares the log unsigned and no line carries a signature. Anyone who can
    /// write the file can recompute the chain: this detects accidents and clumsy edits only.
    Unsigned,
    /// The header declares the log signed by `signer`'s key `kid`, and every line carries a
    /// well-formed signature, but none was verified (no key was given). A forger can append
    /// lines with made-up signatures: check with [`verify_audit_log_signed`] and the key.
    NotChecked {
        /// The signer the header names (a claim, not verified).
        signer: AgentId,
        /// The key id the header names (a claim, not verified).
        kid: KeyId,
    },
}

/// What kind of problem an [`AuditLogError`] reports. The set may grow, so match with a
/// wildcard arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditLogFault {
    /// The file cannot be opened or read.
    Unreadable,
    /// The first line is not a header (a log written before headers existed, or its first
    /// line was removed), or the file is empty.
    NoHeader,
    /// A line (or the header) is not well-formed, a line is too long, or a second header
    /// appears.
    Malformed,
    /// The header's mode is not the one asked for: a signed log opened or checked as unsigned,
    /// or an unsigned log opened or checked as signed.
    ModeMismatch,
    /// The header names another signer or key than the one given.
    WrongKey,
    /// A line of a signed log carries no (well-formed) signature.
    MissingSignature,
    /// A line of an unsigned log carries a signature.
    UnexpectedSignature,
    /// A signature does not verify under the given key: the line was edited or forged.
    BadSignature,
    /// `seq` is not the line's position: a line was deleted, inserted or reordered.
    Sequence,
    /// `prev` is not the hash of the previous line.
    PrevMismatch,
    /// The last line has no newline, or whole lines recorded earlier are gone.
    Truncated,
    /// The line recorded earlier as the head hashes differently: the log was rewritten.
    Rewritten,
}

/// The first place where an audit log's chain breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
#[non_exhaustive]
pub struct AuditLogError {
    /// The 1-based line number of the first bad line (0: the file itself).
    pub line: u64,
    /// What kind of problem.
    pub kind: AuditLogFault,
    /// What is wrong with it.
    pub problem: String,
}

/// Checks a hash-chained audit log and names the first bad line: an edited line breaks the
/// `prev` of the next one, a deleted or reordered line breaks `seq` and `prev`, a forged
/// appended line cannot carry the right `prev` without rewriting everything after the edit.
/// The header must be present, a signed log's every line must carry a signature and an
/// unsigned log's none.
///
/// This checks no signature: the report says whether the log is unsigned or signed with its
/// signatures unchecked ([`AuditSignatures`]). Without a signature anyone can recompute the
/// chain, so this detects accidents and clumsy edits only; use [`verify_audit_log_signed`]
/// for a log written by [`JsonlAudit::open_signed`].
pub fn verify_audit_log(path: impl AsRef<Path>) -> Result<AuditLogReport, AuditLogError> {
    let (summary, mode, _) = check_chain(path.as_ref(), None, None)?;
    Ok(AuditLogReport {
        summary,
        signatures: match mode {
            LogMode::Unsigned => AuditSignatures::Unsigned,
            LogMode::Signed { signer, kid } => AuditSignatures::NotChecked { signer, kid },
        },
    })
}

/// Checks a signed audit log: the chain, a header that declares the log signed by `key`
/// (the verifier identity's public key), and on every line a `sig` by `key` over the line.
/// Names the first bad line: an edited line is itself bad (its signature fails), as is any
/// line a forger appended or inserted. An unsigned log is refused
/// ([`AuditLogFault::ModeMismatch`]). A truncated tail leaves a shorter valid log: use
/// [`verify_audit_log_extends`] with a head kept elsewhere.
pub fn verify_audit_log_signed(
    path: impl AsRef<Path>,
    key: &AgentKey,
) -> Result<AuditLogSummary, AuditLogError> {
    check_chain(path.as_ref(), Some(key), None).map(|(summary, _, _)| summary)
}

/// Like [`verify_audit_log_signed`], and the log must still hold `earlier` (a
/// [`JsonlAudit::head`] or summary kept elsewhere): at least `earlier.records` records, the
/// last of which hashes to `earlier.head`. Detects a truncated tail and a rewritten log.
pub fn verify_audit_log_extends(
    path: impl AsRef<Path>,
    key: &AgentKey,
    earlier: &AuditLogSummary,
) -> Result<AuditLogSummary, AuditLogError> {
    check_chain(path.as_ref(), Some(key), Some(earlier)).map(|(summary, _, _)| summary)
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

/// A log's mode, as its header declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum LogMode {
    Unsigned,
    Signed { signer: AgentId, kid: KeyId },
}

/// The members of a line the checks read. Every line has `seq` and `prev`; the header also
/// `format`, `mode` and (signed) `signer`, `kid`; a signed line `sig`.
#[derive(serde::Deserialize)]
struct LineHead {
    seq: u64,
    prev: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    signer: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    sig: Option<serde_json::Value>,
}

/// Shows at most 64 characters of untrusted text, escaped.
fn shown(text: &str) -> String {
    let mut s: String = text.chars().take(64).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s.escape_default().to_string()
}

/// Reads the mode from the header line.
fn header_mode(head: &LineHead) -> Result<LogMode, (AuditLogFault, String)> {
    let Some(format) = &head.format else {
        return Err((
            AuditLogFault::NoHeader,
            "no header line: the log was written by an agent-handoff version without log headers, or its first line was removed; keep it as evidence, check it with that version, and start a new log file".to_owned(),
        ));
    };
    let malformed = |what: String| Err((AuditLogFault::Malformed, what));
    if format != LOG_FORMAT {
        return malformed(format!(
            "header format is `{}`, expected `{LOG_FORMAT}`",
            shown(format)
        ));
    }
    match (head.mode.as_deref(), &head.signer, &head.kid) {
        (Some("unsigned"), None, None) => Ok(LogMode::Unsigned),
        (Some("signed"), Some(signer), Some(kid)) => {
            let (Ok(signer), Ok(kid)) = (signer.parse::<AgentId>(), kid.parse::<KeyId>()) else {
                return malformed("header `signer` or `kid` is not valid".to_owned());
            };
            Ok(LogMode::Signed { signer, kid })
        }
        (Some("unsigned"), ..) => {
            malformed("header of an unsigned log names a `signer` or `kid`".to_owned())
        }
        (Some("signed"), ..) => {
            malformed("header of a signed log lacks its `signer` or `kid`".to_owned())
        }
        (Some(other), ..) => malformed(format!(
            "header mode is `{}`, expected `signed` or `unsigned`",
            shown(other)
        )),
        (None, ..) => malformed("header has no `mode`".to_owned()),
    }
}

/// Checks the whole log: the summary, the header's mode, and the number of lines.
fn check_chain(
    path: &Path,
    key: Option<&AgentKey>,
    earlier: Option<&AuditLogSummary>,
) -> Result<(AuditLogSummary, LogMode, u64), AuditLogError> {
    // Opened without blocking and checked through the handle: a FIFO or device is refused, not
    // waited on.
    let (file, _) =
        crate::file::open_regular(path, "audit log", "opening").map_err(|e| AuditLogError {
            line: 0,
            kind: AuditLogFault::Unreadable,
            problem: e.to_string(),
        })?;
    let mut reader = BufReader::new(file);
    let mut prev = GENESIS;
    let mut seq = 0u64;
    let mut mode = LogMode::Unsigned;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| AuditLogError {
                line: seq + 1,
                kind: AuditLogFault::Unreadable,
                problem: format!("cannot read: {e}"),
            })?;
        if n == 0 {
            break;
        }
        let bad = |kind: AuditLogFault, problem: &str| AuditLogError {
            line: seq + 1,
            kind,
            problem: problem.to_owned(),
        };
        if n as u64 > MAX_LINE {
            return Err(bad(
                AuditLogFault::Malformed,
                "longer than 1 MiB: not a line written by the audit sink",
            ));
        }
        let Some(line) = buf.strip_suffix(b"\n") else {
            return Err(bad(
                AuditLogFault::Truncated,
                "truncated: the last line has no newline",
            ));
        };
        let head: LineHead = serde_json::from_slice(line)
            .map_err(|_| bad(AuditLogFault::Malformed, "not a chained audit record"))?;
        if seq == 0 {
            mode = header_mode(&head).map_err(|(kind, problem)| bad(kind, &problem))?;
            if let Some(key) = key {
                match &mode {
                    LogMode::Unsigned => {
                        return Err(bad(
                            AuditLogFault::ModeMismatch,
                            "the header says the log is unsigned: there are no signatures to check (use `verify_audit_log`, or `handoff audit verify` without `--key`)",
                        ))
                    }
                    LogMode::Signed { kid, .. } if kid != key.kid() => {
                        return Err(bad(
                            AuditLogFault::WrongKey,
                            &format!(
                                "the header says the log is signed by key `{kid}`, not by the given key `{}`: use the key of the identity that wrote it",
                                key.kid()
                            ),
                        ))
                    }
                    LogMode::Signed { .. } => {}
                }
            }
        } else if head.format.is_some() {
            return Err(bad(
                AuditLogFault::Malformed,
                "a second header line: only line 1 may declare the log",
            ));
        }
        match &mode {
            LogMode::Unsigned => {
                if head.sig.is_some() {
                    return Err(bad(
                        AuditLogFault::UnexpectedSignature,
                        "a signature in a log whose header says unsigned: the log was tampered with or mixes two logs",
                    ));
                }
            }
            LogMode::Signed { .. } => {
                let split = split_signed(line).filter(|_| head.sig.is_some());
                let Some((body, sig)) = split else {
                    return Err(bad(
                        AuditLogFault::MissingSignature,
                        "no signature in a signed log: this line was not written by the signing audit sink (forged, inserted, or its `sig` removed)",
                    ));
                };
                if let Some(key) = key {
                    if key
                        .verifying_key()
                        .verify_strict(&sig_message(&body), &sig)
                        .is_err()
                    {
                        return Err(bad(
                            AuditLogFault::BadSignature,
                            "signature does not verify: this line was edited or forged",
                        ));
                    }
                }
            }
        }
        if head.seq != seq {
            return Err(bad(
                AuditLogFault::Sequence,
                &format!(
                    "sequence number is {}, expected {seq} (a line was deleted, inserted or reordered)",
                    head.seq
                ),
            ));
        }
        if head.prev != b64_encode(&prev) {
            return Err(bad(
                AuditLogFault::PrevMismatch,
                "hash of the previous line does not match (the previous line was edited, or this one moved)",
            ));
        }
        prev = Sha256::digest(line).into();
        seq += 1;
        if let Some(earlier) = earlier {
            if seq - 1 == earlier.records && prev != earlier.head {
                return Err(AuditLogError {
                    line: seq,
                    kind: AuditLogFault::Rewritten,
                    problem: "differs from the head recorded earlier: the log was rewritten from here or before".to_owned(),
                });
            }
        }
    }
    if seq == 0 {
        return Err(AuditLogError {
            line: 1,
            kind: AuditLogFault::NoHeader,
            problem: "the log is empty: not even its header line is left".to_owned(),
        });
    }
    let records = seq - 1;
    if let Some(earlier) = earlier {
        if records < earlier.records {
            return Err(AuditLogError {
                line: seq + 1,
                kind: AuditLogFault::Truncated,
                problem: format!(
                    "truncated: the log ends after {records} records, but {} were recorded earlier; line {} onwards was removed",
                    earlier.records,
                    seq + 1
                ),
            });
        }
    }
    Ok((
        AuditLogSummary {
            records,
            head: prev,
        },
        mode,
        seq,
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
                seq: 1,
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
        // Line 1 is the signed header, line 2 the record.
        assert_eq!(text.lines().count(), 2);
        let line = text.lines().last().unwrap().as_bytes();
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
