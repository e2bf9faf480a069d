//! Audit: one record per decision (SPEC section 7), and sinks that keep them.
//!
//! A record of a denied input holds what the input *claimed* under `claimed`, never as
//! verified facts. No record ever holds key material, signatures or payload bytes.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::capability::{Capability, Intent};
use crate::clock::UnixTime;
use crate::envelope::HandoffMode;
use crate::error::{Error, Reason, StoreError};
use crate::id::{AgentId, TaskId, TokenId};
use crate::jws::b64_encode;

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

    /// The record as one line of JSON (no trailing newline).
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
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

#[derive(Debug)]
struct JsonlState {
    file: File,
    seq: u64,
    prev: [u8; 32],
}

/// A JSON Lines audit log, hash-chained: each line carries `seq` and `prev`, the base64url
/// SHA-256 of the previous line, so an edited, deleted or reordered line is detected by
/// [`verify_audit_log`].
#[derive(Debug)]
pub struct JsonlAudit {
    path: PathBuf,
    state: Mutex<JsonlState>,
    sync: SyncPolicy,
}

impl JsonlAudit {
    /// Opens (or creates, mode 0600) a log for appending, continuing its hash chain. Refuses a
    /// log whose chain is already broken.
    pub fn open(path: impl AsRef<Path>) -> Result<JsonlAudit, Error> {
        JsonlAudit::open_with(path, SyncPolicy::default())
    }

    /// Like [`open`](JsonlAudit::open), with a sync policy.
    pub fn open_with(path: impl AsRef<Path>, sync: SyncPolicy) -> Result<JsonlAudit, Error> {
        let path = path.as_ref().to_owned();
        let io = |source| Error::Io {
            action: "opening audit log",
            path: path.clone(),
            source,
        };
        let (seq, prev) = if path.exists() {
            let summary = verify_audit_log(&path).map_err(|e| {
                Error::Config(format!("audit log `{}` is not intact: {e}", path.display()))
            })?;
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
        Ok(JsonlAudit {
            path,
            state: Mutex::new(JsonlState { file, seq, prev }),
            sync,
        })
    }

    /// The log's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
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
        let line = serde_json::to_string(&ChainedLine {
            seq: state.seq,
            prev: b64_encode(&state.prev),
            record,
        })
        .map_err(|_| fail("could not serialize a record for"))?;
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        state
            .file
            .write_all(&bytes)
            .map_err(|_| fail("could not write"))?;
        if self.sync == SyncPolicy::EveryRecord {
            state.file.sync_data().map_err(|_| fail("could not sync"))?;
        }
        state.prev = Sha256::digest(line.as_bytes()).into();
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
pub fn verify_audit_log(path: impl AsRef<Path>) -> Result<AuditLogSummary, AuditLogError> {
    let path = path.as_ref();
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
    }
    Ok(AuditLogSummary {
        records: seq,
        head: prev,
    })
}
