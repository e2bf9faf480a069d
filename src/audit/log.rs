//! Reading an audit log back: [`verify_audit_log`] and its signed and extending forms check
//! every line, the hash chain and the signatures (SPEC section 7).

use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;

use ed25519_dalek::Signature;
use sha2::{Digest as _, Sha256};

use crate::error::{AuditLogError, AuditLogFault};
use crate::keys::{AgentKey, KeyId};
use crate::limits::MAX_AUDIT_LINE_BYTES;
use crate::wire::b64::{b64_decode, b64_encode};
use crate::wire::AgentId;

// The log format, which the writer ([`super::JsonlAudit`]) produces and this reader checks.

/// The `prev` of the header line (line 1, `seq` 0): 32 zero bytes.
pub(super) const GENESIS: [u8; 32] = [0u8; 32];

/// The `format` member of a log's header line.
pub(super) const LOG_FORMAT: &str = "agent-handoff audit log v2";

/// What a record signature covers: this context, then SHA-256 of the line without its `sig`
/// member (which holds `seq` and `prev`, so the signature also covers the chain). The newline
/// makes it impossible to confuse with a JWS signing input.
pub(super) const SIG_CONTEXT: &[u8] = b"agent-handoff audit record v1\n";
/// `,"sig":"` + 86 base64url characters (64 bytes) + `"}`: how every signed line ends.
pub(super) const SIG_MEMBER: &[u8] = b",\"sig\":\"";
pub(super) const SIG_B64_LEN: usize = 86;

pub(super) fn sig_message(body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIG_CONTEXT.len() + 32);
    msg.extend_from_slice(SIG_CONTEXT);
    msg.extend_from_slice(&Sha256::digest(body));
    msg
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

/// Checks a hash-chained audit log and names the first bad line: an edited line breaks the
/// `prev` of the next one, a deleted or reordered line breaks `seq` and `prev`, a forged
/// appended line cannot carry the right `prev` without rewriting everything after the edit.
/// The header must be present, a signed log's every line must carry a signature and an
/// unsigned log's none.
///
/// This checks no signature: the report says whether the log is unsigned or signed with its
/// signatures unchecked ([`AuditSignatures`]). Without a signature anyone can recompute the
/// chain, so this detects accidents and clumsy edits only; use [`verify_audit_log_signed`]
/// for a log written by [`JsonlAudit::open_signed`](super::JsonlAudit::open_signed).
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
/// [`JsonlAudit::head`](super::JsonlAudit::head) or summary kept elsewhere): at least `earlier.records` records, the
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
pub(super) fn split_signed(line: &[u8]) -> Option<(Vec<u8>, Signature)> {
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
pub(super) enum LogMode {
    Unsigned,
    Signed { signer: AgentId, kid: KeyId },
}

/// The members of a line the checks read. Every line has `seq` and `prev`; the header also
/// `format`, `mode` and (signed) `signer`, `kid`; a signed line `sig`.
#[derive(serde::Deserialize)]
pub(super) struct LineHead {
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
pub(super) fn shown(text: &str) -> String {
    let mut s: String = text.chars().take(64).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s.escape_default().to_string()
}

/// A problem with one line of a log: what kind, and what is wrong (the caller adds the line).
type LineFault = (AuditLogFault, String);

fn fault(kind: AuditLogFault, problem: impl Into<String>) -> LineFault {
    (kind, problem.into())
}

/// The [`AuditLogError`] of a [`LineFault`] at 1-based line `line`.
fn at_line(line: u64) -> impl Fn(LineFault) -> AuditLogError {
    move |(kind, problem)| AuditLogError {
        line,
        kind,
        problem,
    }
}

/// Reads the mode from the header line.
pub(super) fn header_mode(head: &LineHead) -> Result<LogMode, LineFault> {
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
pub(super) fn check_chain(
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
    let mut chain = Chain {
        seq: 0,
        prev: GENESIS,
        mode: LogMode::Unsigned,
    };
    let mut buf = Vec::new();
    loop {
        let at = at_line(chain.seq + 1);
        let Some(line) = read_line(&mut reader, &mut buf).map_err(&at)? else {
            break;
        };
        chain.take(line, key).map_err(&at)?;
        if let Some(earlier) = earlier {
            chain.check_holds(earlier).map_err(&at)?;
        }
    }
    chain.finish(earlier)
}

/// Reads the next line of the log into `buf`: `None` at the end, the line without its newline,
/// or a fault if it is too long for a record or has no newline.
fn read_line<'b>(
    reader: &mut BufReader<File>,
    buf: &'b mut Vec<u8>,
) -> Result<Option<&'b [u8]>, LineFault> {
    buf.clear();
    let n = reader
        .take(MAX_AUDIT_LINE_BYTES + 1)
        .read_until(b'\n', buf)
        .map_err(|e| fault(AuditLogFault::Unreadable, format!("cannot read: {e}")))?;
    if n == 0 {
        return Ok(None);
    }
    if n as u64 > MAX_AUDIT_LINE_BYTES {
        return Err(fault(
            AuditLogFault::Malformed,
            "longer than 1 MiB: not a line written by the audit sink",
        ));
    }
    match buf.strip_suffix(b"\n") {
        Some(line) => Ok(Some(line)),
        None => Err(fault(
            AuditLogFault::Truncated,
            "truncated: the last line has no newline",
        )),
    }
}

/// How far the check of a log has come: the `seq` and `prev` the next line must carry, and
/// the mode the header declared.
struct Chain {
    seq: u64,
    prev: [u8; 32],
    mode: LogMode,
}

impl Chain {
    /// Checks the next line (the header first, then each record's signature, `seq` and `prev`)
    /// and moves the chain past it.
    fn take(&mut self, line: &[u8], key: Option<&AgentKey>) -> Result<(), LineFault> {
        let head: LineHead = serde_json::from_slice(line)
            .map_err(|_| fault(AuditLogFault::Malformed, "not a chained audit record"))?;
        if self.seq == 0 {
            self.mode = header_mode(&head)?;
            if let Some(key) = key {
                check_header_key(&self.mode, key)?;
            }
        } else if head.format.is_some() {
            return Err(fault(
                AuditLogFault::Malformed,
                "a second header line: only line 1 may declare the log",
            ));
        }
        check_line_signature(&self.mode, &head, line, key)?;
        self.check_link(&head)?;
        self.prev = Sha256::digest(line).into();
        self.seq += 1;
        Ok(())
    }

    /// Checks the line's `seq` and `prev` continue the chain.
    fn check_link(&self, head: &LineHead) -> Result<(), LineFault> {
        if head.seq != self.seq {
            return Err(fault(
                AuditLogFault::Sequence,
                format!(
                    "sequence number is {}, expected {} (a line was deleted, inserted or reordered)",
                    head.seq, self.seq
                ),
            ));
        }
        if head.prev != b64_encode(&self.prev) {
            return Err(fault(
                AuditLogFault::PrevMismatch,
                "hash of the previous line does not match (the previous line was edited, or this one moved)",
            ));
        }
        Ok(())
    }

    /// After the line that made the log `earlier.records` records long: checks it hashes to
    /// `earlier.head`.
    fn check_holds(&self, earlier: &AuditLogSummary) -> Result<(), LineFault> {
        if self.seq - 1 == earlier.records && self.prev != earlier.head {
            return Err(fault(
                AuditLogFault::Rewritten,
                "differs from the head recorded earlier: the log was rewritten from here or before",
            ));
        }
        Ok(())
    }

    /// At the end of the log: the summary, the mode and the number of lines, unless the log is
    /// empty or shorter than `earlier`.
    fn finish(
        self,
        earlier: Option<&AuditLogSummary>,
    ) -> Result<(AuditLogSummary, LogMode, u64), AuditLogError> {
        let seq = self.seq;
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
        let summary = AuditLogSummary {
            records,
            head: self.prev,
        };
        Ok((summary, self.mode, seq))
    }
}

/// With a key: the header must declare the log signed by that key.
fn check_header_key(mode: &LogMode, key: &AgentKey) -> Result<(), LineFault> {
    match mode {
        LogMode::Unsigned => Err(fault(
            AuditLogFault::ModeMismatch,
            "the header says the log is unsigned: there are no signatures to check (use `verify_audit_log`, or `handoff audit verify` without `--key`)",
        )),
        LogMode::Signed { kid, .. } if kid != key.kid() => Err(fault(
            AuditLogFault::WrongKey,
            format!(
                "the header says the log is signed by key `{kid}`, not by the given key `{}`: use the key of the identity that wrote it",
                key.kid()
            ),
        )),
        LogMode::Signed { .. } => Ok(()),
    }
}

/// An unsigned log's line carries no signature; a signed log's carries a well-formed one,
/// which must verify under `key` if given.
fn check_line_signature(
    mode: &LogMode,
    head: &LineHead,
    line: &[u8],
    key: Option<&AgentKey>,
) -> Result<(), LineFault> {
    match mode {
        LogMode::Unsigned if head.sig.is_some() => Err(fault(
            AuditLogFault::UnexpectedSignature,
            "a signature in a log whose header says unsigned: the log was tampered with or mixes two logs",
        )),
        LogMode::Unsigned => Ok(()),
        LogMode::Signed { .. } => {
            let split = split_signed(line).filter(|_| head.sig.is_some());
            let Some((body, sig)) = split else {
                return Err(fault(
                    AuditLogFault::MissingSignature,
                    "no signature in a signed log: this line was not written by the signing audit sink (forged, inserted, or its `sig` removed)",
                ));
            };
            let verified = key.is_none_or(|key| {
                key.verifying_key()
                    .verify_strict(&sig_message(&body), &sig)
                    .is_ok()
            });
            if !verified {
                return Err(fault(
                    AuditLogFault::BadSignature,
                    "signature does not verify: this line was edited or forged",
                ));
            }
            Ok(())
        }
    }
}
