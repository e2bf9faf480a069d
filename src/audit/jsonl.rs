//! [`JsonlAudit`]: the hash-chained, optionally signed, append-only JSON Lines audit log
//! (SPEC section 7).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ed25519_dalek::Signer as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::log::{
    check_chain, sig_message, AuditLogSummary, LogMode, GENESIS, LOG_FORMAT, SIG_MEMBER,
};
use super::{AuditRecord, AuditSink};
use crate::error::{AuditLogError, AuditLogFault, Error, StoreError};
use crate::keys::AgentIdentity;
use crate::wire::b64::b64_encode;
use crate::wire::AgentId;

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

#[derive(Debug)]
pub(super) struct JsonlState {
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
/// [`verify_audit_log`](super::verify_audit_log).
///
/// The first line is a header that declares the log's mode: `unsigned`, or `signed` with the
/// signer's agent id and key id. It is part of the chain (`seq` 0, `prev` 32 zero bytes) and,
/// in a signed log, signed itself, so the mode cannot be changed without breaking the log.
///
/// Opened with [`open_signed`](JsonlAudit::open_signed), every line also carries `sig`: an
/// Ed25519 signature by the verifier's own identity over the line (so over the chain), and
/// [`verify_audit_log_signed`](super::verify_audit_log_signed) detects forged appends and names an edited line itself.
/// Keep [`head`](JsonlAudit::head) somewhere else from time to time (another host, a ticket)
/// and [`verify_audit_log_extends`](super::verify_audit_log_extends) also detects a truncated tail.
///
/// After a failed write the sink refuses every further record (the verifier then denies with
/// `unavailable`): run [`verify_audit_log`](super::verify_audit_log), repair the tail, and reopen.
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
        let existed = path.exists();
        let has_lines = existed && std::fs::metadata(path).map_err(opening(path))?.len() > 0;
        let (seq, prev) = if has_lines {
            continue_chain(path, signer.as_deref())?
        } else {
            (0, GENESIS)
        };
        let file = open_for_append(path)?;
        if !existed && sync == SyncPolicy::EveryRecord {
            sync_new_file(&file, path)?;
        }
        let audit = JsonlAudit {
            path: path.to_owned(),
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
            audit.write_header().map_err(|source| Error::AuditStart {
                path: audit.path.clone(),
                source,
            })?;
        }
        Ok(audit)
    }

    /// Writes the header line (`seq` 0) of a new log.
    fn write_header(&self) -> Result<(), StoreError> {
        let (mode, signer, kid) = match &self.signer {
            Some(s) => ("signed", Some(s.id()), Some(s.kid().as_str())),
            None => ("unsigned", None, None),
        };
        let header = HeaderLine {
            seq: 0,
            prev: b64_encode(&GENESIS),
            format: LOG_FORMAT,
            mode,
            signer,
            kid,
        };
        let body = crate::escape::to_json_vec(&header)
            .map_err(|_| StoreError::new("audit sink", "could not serialize the header"))?;
        let mut state = self
            .state
            .lock()
            .map_err(|_| StoreError::poisoned("audit sink"))?;
        self.append(&mut state, body)
    }

    /// The log's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The records written so far (not counting the header line) and the hash of the last
    /// line: keep it elsewhere, and [`verify_audit_log_extends`](super::verify_audit_log_extends) proves later that the log
    /// still holds it (not truncated, not rewritten).
    pub fn head(&self) -> Result<AuditLogSummary, StoreError> {
        let state = self
            .state
            .lock()
            .map_err(|_| StoreError::poisoned("audit sink"))?;
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

/// The error of an I/O failure while opening the log at `path`.
fn opening(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        action: "opening audit log",
        path: path.to_owned(),
        source,
    }
}

/// Checks the existing log at `path` can be continued by `signer` (`None`: unsigned): its
/// chain is intact (and, signed, verifies under the signer's key) and its header declares the
/// same mode and signer. Returns the `seq` and `prev` of the next line.
fn continue_chain(path: &Path, signer: Option<&AgentIdentity>) -> Result<(u64, [u8; 32]), Error> {
    let refused = |source: AuditLogError| Error::AuditLog {
        path: path.to_owned(),
        source,
    };
    let key = signer.map(AgentIdentity::key);
    let (summary, mode, lines) =
        check_chain(path, key, None).map_err(|e| refused(with_reopen_advice(e)))?;
    check_same_signer(&mode, signer).map_err(refused)?;
    debug_assert_eq!(lines, summary.records + 1);
    Ok((lines, summary.head))
}

/// What to do about a log that cannot be continued: keep a broken one as evidence; open an
/// unsigned one unsigned.
fn with_reopen_advice(mut e: AuditLogError) -> AuditLogError {
    if !matches!(
        e.kind,
        AuditLogFault::ModeMismatch | AuditLogFault::WrongKey | AuditLogFault::NoHeader
    ) {
        e.problem
            .push_str("; keep it as evidence and start a new log file");
    } else if e.kind == AuditLogFault::ModeMismatch {
        e.problem = "the header says the log is unsigned: open it with `JsonlAudit::open`, or start a new log file for signed records".to_owned();
    }
    e
}

/// A signed log is continued only by its signer, and never unsigned.
fn check_same_signer(mode: &LogMode, signer: Option<&AgentIdentity>) -> Result<(), AuditLogError> {
    match (mode, signer) {
        (LogMode::Signed { signer: by, kid }, None) => Err(AuditLogError {
            line: 1,
            kind: AuditLogFault::ModeMismatch,
            problem: format!(
                "the header says the log is signed by `{by}` (key `{kid}`): open it with `JsonlAudit::open_signed` and that identity so its records stay signed"
            ),
        }),
        (LogMode::Signed { signer: by, .. }, Some(me)) if by != me.id() => Err(AuditLogError {
            line: 1,
            kind: AuditLogFault::WrongKey,
            problem: format!(
                "the header says the log is signed by `{by}`, not by `{}`: open it with that identity, or start a new log file",
                me.id()
            ),
        }),
        _ => Ok(()),
    }
}

/// Opens (or creates, mode 0600) the log at `path` for appending, without blocking, and
/// refuses anything but a regular file.
fn open_for_append(path: &Path) -> Result<File, Error> {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
        // A FIFO without a reader makes this open fail (ENXIO) instead of blocking.
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path).map_err(opening(path))?;
    if !file.metadata().map_err(opening(path))?.is_file() {
        return Err(Error::File {
            what: "audit log",
            path: path.to_owned(),
            problem: crate::error::FileProblem::NotRegular {
                kind: "special file",
            },
        });
    }
    Ok(file)
}

/// Makes a new log file and its directory entry durable.
fn sync_new_file(file: &File, path: &Path) -> Result<(), Error> {
    file.sync_all().map_err(opening(path))?;
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(opening(path))?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::super::log::*;
    use super::super::ClaimedFacts;
    use super::*;
    use crate::clock::UnixTime;
    use crate::error::Reason;

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
