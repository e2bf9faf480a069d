//! Why an audit log was refused: defined here, below [`crate::audit`], so that [`Error`](super::Error)
//! can carry it without an import cycle; [`crate::audit`] re-exports both types.

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
