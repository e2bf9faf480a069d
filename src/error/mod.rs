//! Reason codes, rejections and errors.
//!
//! Two kinds of failure exist in this crate and they never mix:
//!
//! - a [`Rejection`] is a *decision*: the verifier looked at an input and refused it. It carries
//!   a typed [`Fault`] (which rule, with the values that show it), from which come one stable
//!   [`Reason`] code (SPEC section 7) and a human-readable detail that names the offending
//!   link or claim, never key material or payload bytes, and the [`Location`] of the fault;
//! - an [`Error`] is a *mistake by the caller or the environment*: an id that does not parse, a
//!   key file with loose permissions, a builder asked to sign an escalation.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::escape::{escape_text, Escaped};

mod audit_log;
mod fault;
pub use audit_log::{AuditLogError, AuditLogFault};
pub use fault::{
    ChainBreak, Credential, Escalation, Fault, Forbidden, Revocation, SenderMismatch, Signer,
    TaskMismatch, Unavailable,
};

/// A path as shown in messages: its characters escaped like any other text from an input.
fn shown(path: &Path) -> String {
    escape_text(path.display().to_string()).into_owned()
}

/// The stable reason code of a rejection (SPEC section 7).
///
/// `as_str()` gives the snake_case code that other implementations, audit logs and the
/// command line use. The set may grow, so match with a wildcard arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Reason {
    /// The input is larger than the limit for its kind.
    TooLarge,
    /// The input is not well-formed: JWS form, base64url, JSON or claim syntax.
    Malformed,
    /// The JWS `alg` is not `EdDSA` or `Ed25519`.
    UnsupportedAlgorithm,
    /// The JWS `typ` is not the one expected for this kind of input.
    WrongType,
    /// The JWS header has a member other than `alg`, `typ` and `kid`.
    ForbiddenHeader,
    /// No key is registered for the claimed agent and key id.
    UnknownKey,
    /// The root token is not issued by a trusted authority.
    UntrustedRoot,
    /// A signature does not verify (strict Ed25519).
    BadSignature,
    /// A token or the envelope is not valid yet.
    NotYetValid,
    /// A token or the envelope has expired.
    Expired,
    /// A lifetime (`exp - iat`) is longer than the verifier allows.
    TtlTooLong,
    /// The envelope is addressed to another agent.
    WrongAudience,
    /// The delegation chain has more links than the verifier allows.
    ChainTooLong,
    /// A link does not follow from its parent (hash, issuer or key binding).
    BrokenChain,
    /// A link delegates where its parent forbids it (depth, `delegates`, cycles).
    DelegationForbidden,
    /// A link grants more than its parent (capabilities, depth, lifetime, delegates).
    Escalation,
    /// Tokens and envelope do not all name the same task.
    TaskMismatch,
    /// A link crosses trust domains the verifier does not federate.
    CrossDomain,
    /// The envelope's sender is not bound to the chain's end.
    SenderMismatch,
    /// The intent is not covered by the capabilities of the chain's last link.
    IntentNotGranted,
    /// The payload does not match the envelope's digest.
    PayloadMismatch,
    /// A token, the task, or an agent is revoked.
    Revoked,
    /// The request-time policy denied the handoff.
    PolicyDenied,
    /// The envelope was accepted before.
    Replayed,
    /// A store (revocations, replay cache, audit) could not answer: fail closed.
    Unavailable,
    /// A transport binding refused the request's address: the HTTP request path is not in
    /// canonical form (an encoded `/`, a `.` or `..` segment, an empty segment, ...).
    NonCanonicalPath,
    /// A transport binding's read deadline passed before the whole input arrived (the HTTP
    /// request body).
    Timeout,
}

impl Reason {
    /// Every reason code, in SPEC section 7 order.
    pub const ALL: [Reason; 27] = [
        Reason::TooLarge,
        Reason::Malformed,
        Reason::UnsupportedAlgorithm,
        Reason::WrongType,
        Reason::ForbiddenHeader,
        Reason::UnknownKey,
        Reason::UntrustedRoot,
        Reason::BadSignature,
        Reason::NotYetValid,
        Reason::Expired,
        Reason::TtlTooLong,
        Reason::WrongAudience,
        Reason::ChainTooLong,
        Reason::BrokenChain,
        Reason::DelegationForbidden,
        Reason::Escalation,
        Reason::TaskMismatch,
        Reason::CrossDomain,
        Reason::SenderMismatch,
        Reason::IntentNotGranted,
        Reason::PayloadMismatch,
        Reason::Revoked,
        Reason::PolicyDenied,
        Reason::Replayed,
        Reason::Unavailable,
        Reason::NonCanonicalPath,
        Reason::Timeout,
    ];

    /// The stable snake_case code of SPEC section 7.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::TooLarge => "too_large",
            Reason::Malformed => "malformed",
            Reason::UnsupportedAlgorithm => "unsupported_algorithm",
            Reason::WrongType => "wrong_type",
            Reason::ForbiddenHeader => "forbidden_header",
            Reason::UnknownKey => "unknown_key",
            Reason::UntrustedRoot => "untrusted_root",
            Reason::BadSignature => "bad_signature",
            Reason::NotYetValid => "not_yet_valid",
            Reason::Expired => "expired",
            Reason::TtlTooLong => "ttl_too_long",
            Reason::WrongAudience => "wrong_audience",
            Reason::ChainTooLong => "chain_too_long",
            Reason::BrokenChain => "broken_chain",
            Reason::DelegationForbidden => "delegation_forbidden",
            Reason::Escalation => "escalation",
            Reason::TaskMismatch => "task_mismatch",
            Reason::CrossDomain => "cross_domain",
            Reason::SenderMismatch => "sender_mismatch",
            Reason::IntentNotGranted => "intent_not_granted",
            Reason::PayloadMismatch => "payload_mismatch",
            Reason::Revoked => "revoked",
            Reason::PolicyDenied => "policy_denied",
            Reason::Replayed => "replayed",
            Reason::Unavailable => "unavailable",
            Reason::NonCanonicalPath => "non_canonical_path",
            Reason::Timeout => "timeout",
        }
    }

    /// Parses a snake_case reason code.
    #[must_use]
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == code)
    }

    /// Whether this reason is an authentication failure (who is speaking, and with which key)
    /// rather than an authorisation failure (what they may do). HTTP bindings map the first to
    /// `401` and the second to `403`.
    #[must_use]
    pub const fn is_authentication(self) -> bool {
        matches!(
            self,
            Reason::TooLarge
                | Reason::Malformed
                | Reason::UnsupportedAlgorithm
                | Reason::WrongType
                | Reason::ForbiddenHeader
                | Reason::UnknownKey
                | Reason::UntrustedRoot
                | Reason::BadSignature
                | Reason::NotYetValid
                | Reason::Expired
                | Reason::TtlTooLong
                | Reason::WrongAudience
                | Reason::BrokenChain
                | Reason::SenderMismatch
                | Reason::PayloadMismatch
                | Reason::Replayed
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in the input a rejection was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// The envelope itself (its header, claims, signature or payload).
    Envelope,
    /// The delegation token at this index of the chain (0 is the root).
    Link(usize),
    /// The verifier's own stores or policy.
    Verifier,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Envelope => f.write_str("envelope"),
            Location::Link(i) => write!(f, "chain link {i}"),
            Location::Verifier => f.write_str("verifier"),
        }
    }
}

/// A verification decision that refused the input: a [`Fault`] and where it was found.
///
/// The [`reason`](Rejection::reason), derived from the fault, is the stable contract; the
/// [`fault`](Rejection::fault) holds the values that show it; the detail text is for people and
/// may change between versions. None of them ever contains key material, signature bytes or
/// payload bytes. Claimed values quoted in the detail are what the input *claimed*, and are
/// escaped: control characters, bidirectional controls and invisible characters show as
/// `\u{..}` (see the README's security properties).
#[derive(Clone)]
pub struct Rejection {
    fault: Fault,
    location: Location,
    /// The fault's text, rendered once when first asked for.
    detail: OnceLock<Box<str>>,
}

impl Rejection {
    /// A rejection with a reason, where it was found, and a detail for people: a
    /// [`Fault::Binding`]. Transport bindings and other callers use it for refusals they
    /// decide themselves (the HTTP binding's `non_canonical_path`, `timeout`, ...); this
    /// crate's own rules produce structured faults ([`Rejection::from_fault`]). Control,
    /// bidirectional and invisible characters in the detail are shown escaped as `\u{..}`
    /// by every output of the rejection (its `Display`, [`detail`](Rejection::detail), audit
    /// records, tracing fields).
    pub fn new(reason: Reason, location: Location, detail: impl Into<Cow<'static, str>>) -> Self {
        Rejection::from_fault(
            Fault::Binding {
                reason,
                detail: detail.into(),
            },
            location,
        )
    }

    /// A rejection for a fault found at `location`.
    pub fn from_fault(fault: Fault, location: Location) -> Self {
        Rejection {
            fault,
            location,
            detail: OnceLock::new(),
        }
    }

    /// The stable reason code, derived from the fault.
    #[must_use]
    pub fn reason(&self) -> Reason {
        self.fault.reason()
    }

    /// What exactly is wrong, with the values that show it.
    #[must_use]
    pub fn fault(&self) -> &Fault {
        &self.fault
    }

    /// Where the fault was found.
    #[must_use]
    pub fn location(&self) -> Location {
        self.location
    }

    /// A human-readable explanation: the fault's `Display`, claimed values escaped.
    #[must_use]
    pub fn detail(&self) -> &str {
        self.detail
            .get_or_init(|| self.fault.to_string().into_boxed_str())
    }
}

impl PartialEq for Rejection {
    fn eq(&self, other: &Self) -> bool {
        self.fault == other.fault && self.location == other.location
    }
}

impl Eq for Rejection {}

impl fmt::Debug for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejection")
            .field("fault", &self.fault)
            .field("location", &self.location)
            .finish()
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rejected [{}] at {}: {}",
            self.reason(),
            self.location,
            self.detail()
        )
    }
}

impl std::error::Error for Rejection {}

/// An error made by the caller or the environment (not a verification decision).
///
/// Messages are lowercase, put user input in backticks, and say how to fix the problem. Text
/// from inputs (ids, member names, file names, problems quoting them) is shown escaped by
/// `Display`: control, bidirectional and invisible characters appear as `\u{..}`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An identifier (agent id, pattern, task id, token id, key id) does not parse.
    #[error("invalid {what} `{}`: {problem}", Escaped(input))]
    InvalidId {
        /// Which kind of identifier.
        what: &'static str,
        /// The input, truncated to 200 characters.
        input: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A capability, pattern or intent does not parse.
    #[error("invalid capability: {}", Escaped(.0))]
    InvalidCapability(String),
    /// A key could not be read, written or decoded.
    #[error("key {}: {}", path.as_ref().map(|p| format!("file `{}`", shown(p))).unwrap_or_else(|| "material".to_owned()), Escaped(problem))]
    Key {
        /// The file involved, if any.
        path: Option<PathBuf>,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// A trust bundle was refused.
    #[error("trust bundle{}: {}", path.as_ref().map(|p| format!(" `{}`", shown(p))).unwrap_or_default(), Escaped(problem))]
    Bundle {
        /// The file involved, if any.
        path: Option<PathBuf>,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// A token or envelope builder was asked for something the format or the parent forbids.
    #[error("cannot build {what}: {}", Escaped(problem))]
    Build {
        /// What was being built (`delegation token`, `handoff envelope`).
        what: &'static str,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// A token or envelope could not be decoded (for inspection or attenuation).
    #[error("cannot decode {what}: {rejection}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Why it was refused.
        rejection: Rejection,
    },
    /// A policy file was refused.
    #[error("policy{}: {}", path.as_ref().map(|p| format!(" `{}`", shown(p))).unwrap_or_default(), Escaped(problem))]
    Policy {
        /// The file involved, if any.
        path: Option<PathBuf>,
        /// What is wrong, with the line where known.
        problem: String,
    },
    /// The verifier's configuration is incomplete or inconsistent: its builder has no audit
    /// sink, or a limit is out of its range.
    #[error("verifier configuration: {}", Escaped(.0))]
    Config(String),
    /// The revocation store forgets a token or task revocation before a revoked token stops
    /// passing the verifier's time checks (SPEC section 6 step 8), so a revoked credential
    /// would verify again. The verifier's builder refuses such a store.
    #[error(
        "verifier configuration: the revocation store forgets a token or task revocation {} s \
         after it is made, but a revoked token can still pass this verifier's time checks for \
         {} s (max_token_ttl {} s + leeway {} s), so it would verify again: give the store a \
         retention of at least {} s (`MemoryRevocations::with_retention`, \
         `RedisOptions::retention`), or lower max_token_ttl or leeway",
        retention.as_secs(),
        required.as_secs(),
        max_token_ttl.as_secs(),
        leeway.as_secs(),
        required.as_secs()
    )]
    RetentionTooShort {
        /// How long the store keeps a revocation
        /// ([`Revocations::retention`](crate::store::Revocations::retention)).
        retention: Duration,
        /// The least retention this verifier needs
        /// ([`required_retention`](crate::store::required_retention) of the two below).
        required: Duration,
        /// The verifier's longest token lifetime.
        max_token_ttl: Duration,
        /// The verifier's clock leeway.
        leeway: Duration,
    },
    /// A store's options are invalid or inconsistent (a zero timeout, a heartbeat not shorter
    /// than the staleness bound, a bad namespace), or its address does not parse. The message
    /// never repeats the address: it may hold a password.
    #[error("{store} configuration: {}", Escaped(problem))]
    StoreConfig {
        /// Which store (`redis`).
        store: &'static str,
        /// What is wrong and how to fix it.
        problem: String,
        /// The client library's error, if it gave one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// A new audit log could not be started: its header line could not be written and synced.
    #[error(
        "cannot start audit log `{}`: {}; check the disk and the permissions, remove the partial file, and retry",
        shown(path),
        Escaped(source.problem())
    )]
    AuditStart {
        /// The log file.
        path: PathBuf,
        /// What the write reported.
        #[source]
        source: StoreError,
    },
    /// A background thread (a store's subscriber) could not be started.
    #[error("cannot start the {what}: {}", Escaped(&source.to_string()))]
    Thread {
        /// Which thread (`revocation subscriber`).
        what: &'static str,
        /// Why the system refused it.
        #[source]
        source: std::io::Error,
    },
    /// A revocations file (SPEC section 9) was refused: it is not valid JSON of the
    /// revocations format.
    #[error("revocations file `{}`: {}", shown(path), Escaped(problem))]
    RevocationsFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A file was refused before its content was parsed: it is not a regular file, or it is
    /// larger than the limit for its kind. Every file the crate loads is read this way (see
    /// [`read_regular_file`](crate::file::read_regular_file)).
    #[error("{what} `{}` is refused: {problem}", shown(path))]
    File {
        /// Which kind of file (`key file`, `trust bundle`, `policy file`, ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: FileProblem,
    },
    /// An existing audit log was refused for appending: its chain is broken, it has no
    /// header, or its mode (signed or unsigned, and the signer) is not the one asked for.
    #[error("audit log `{}` refused: {source}", shown(path))]
    AuditLog {
        /// The log file.
        path: PathBuf,
        /// The first bad line, and what is wrong with it.
        #[source]
        source: AuditLogError,
    },
    /// An input/output error on a named file.
    #[error("{action} `{}`: {}", shown(path), Escaped(&source.to_string()))]
    Io {
        /// What was being done (`reading`, `writing`).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Why a file was refused before it was read ([`Error::File`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileProblem {
    /// Not a regular file: `kind` names what it is (`FIFO (named pipe)`, `socket`,
    /// `character device`, `block device`, `directory`). Only regular files are read, so that a
    /// FIFO or device can neither block the reader nor feed it endless input.
    NotRegular {
        /// What the path names instead.
        kind: &'static str,
    },
    /// Larger than `limit` bytes, the limit for this kind of file.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileProblem::NotRegular { kind } => write!(
                f,
                "it is a {kind}, not a regular file; only regular files are read (a FIFO or \
                 device could block or never end): put the content in a regular file"
            ),
            FileProblem::TooLarge { limit } => write!(
                f,
                "it is larger than {limit} bytes, the limit for this kind of file; check that \
                 it is the right file"
            ),
        }
    }
}

impl Error {
    pub(crate) fn invalid_id(what: &'static str, input: &str, problem: &'static str) -> Self {
        let mut shown: String = input.chars().take(200).collect();
        if shown.len() < input.len() {
            shown.push('…');
        }
        Error::InvalidId {
            what,
            input: shown,
            problem,
        }
    }

    pub(crate) fn build(what: &'static str, problem: impl Into<String>) -> Self {
        Error::Build {
            what,
            problem: problem.into(),
        }
    }
}

/// A store (revocations, replay cache, audit sink) could not answer. The verifier turns this
/// into a [`Reason::Unavailable`] rejection: it fails closed.
///
/// It says which store failed ([`store`](StoreError::store)), what kind of failure it was
/// ([`kind`](StoreError::kind), for programs: retry a timeout, page someone for a full store),
/// what went wrong in words ([`problem`](StoreError::problem)), and keeps the underlying error
/// when there is one (`std::error::Error::source`, for example a `redis::RedisError`).
///
/// `Display` is `<store> unavailable: <problem>`, escaped, and self-contained: the verifier
/// records a store failure by its `Display` (rejection detail, audit record), so the problem
/// quotes what the source said where that helps (a Redis `OOM` or `WRONGTYPE` reply); an
/// error report that also prints the source chain shows it once more. Neither ever holds
/// credentials: stores name where they connect without the password.
///
/// `Clone` (the source is shared). Two store errors are equal when their store, kind and
/// problem are (the source is not compared: errors of other crates rarely are comparable), so
/// `assert_eq!(cache.check_and_insert(..), Ok(Freshness::Fresh))` works.
#[derive(Clone, Debug)]
pub struct StoreError {
    store: &'static str,
    kind: StoreErrorKind,
    problem: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

/// What kind of failure a [`StoreError`] is. Every kind fails closed the same way; the kind
/// tells an operator or a program what to do about it. The set may grow, so match with a
/// wildcard arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store could not be reached: the connection was refused, dropped or failed.
    Unreachable,
    /// The store did not answer in time.
    Timeout,
    /// The store is out of memory or space and refused a write (Redis `OOM`, a full disk).
    Full,
    /// A key holds a value of another type than this library writes there: something else
    /// wrote under its namespace (Redis `WRONGTYPE`).
    WrongType,
    /// The store answered something this library does not expect (a reply of the wrong
    /// shape, an error reply it does not know).
    Protocol,
    /// A replicated view is older than its staleness bound, or was never synchronised: it is
    /// not trusted until the store answers again.
    Stale,
    /// The store's in-process state is unusable: a lock was poisoned by a thread that panicked
    /// while holding it.
    Poisoned,
    /// Any other failure; the problem says what. What [`StoreError::new`] gives.
    Other,
}

impl StoreErrorKind {
    /// A short lowercase name (`timeout`, `wrong type`, ...), for logs and metrics labels.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            StoreErrorKind::Unreachable => "unreachable",
            StoreErrorKind::Timeout => "timeout",
            StoreErrorKind::Full => "full",
            StoreErrorKind::WrongType => "wrong type",
            StoreErrorKind::Protocol => "protocol",
            StoreErrorKind::Stale => "stale",
            StoreErrorKind::Poisoned => "poisoned",
            StoreErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StoreError {
    /// A store error: which store, and what went wrong in words (no secrets, no payloads), of
    /// kind [`StoreErrorKind::Other`] and without a source. Custom stores (a
    /// [`ReplayCache`](crate::store::ReplayCache), [`Revocations`](crate::store::Revocations),
    /// an [`AuditSink`](crate::audit::AuditSink)) say more with
    /// [`with_kind`](StoreError::with_kind) and [`with_source`](StoreError::with_source).
    ///
    /// ```
    /// use agent_handoff::error::{StoreError, StoreErrorKind};
    /// let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer after 200 ms");
    /// let err = StoreError::new("replay cache", "the cache did not answer in time")
    ///     .with_kind(StoreErrorKind::Timeout)
    ///     .with_source(io);
    /// assert_eq!(err.kind(), StoreErrorKind::Timeout);
    /// assert_eq!(err.to_string(), "replay cache unavailable: the cache did not answer in time");
    /// assert!(std::error::Error::source(&err).is_some());
    /// ```
    pub fn new(store: &'static str, problem: impl Into<String>) -> StoreError {
        StoreError {
            store,
            kind: StoreErrorKind::Other,
            problem: problem.into(),
            source: None,
        }
    }

    /// The same error, of this kind.
    #[must_use]
    pub fn with_kind(mut self, kind: StoreErrorKind) -> StoreError {
        self.kind = kind;
        self
    }

    /// The same error, caused by `source` (the client library's error, an I/O error). It is
    /// returned by `std::error::Error::source`; its text is not added to the problem, so
    /// quote it there when people need it (never when it could hold a credential).
    #[must_use]
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> StoreError {
        self.source = Some(Arc::from(source.into()));
        self
    }

    /// A store error of kind [`StoreErrorKind::Poisoned`]: a lock of `store` was poisoned.
    pub(crate) fn poisoned(store: &'static str) -> StoreError {
        StoreError::new(store, "lock poisoned").with_kind(StoreErrorKind::Poisoned)
    }

    /// The same failure (store, kind, source), explained by `problem` instead.
    #[cfg(feature = "redis")]
    pub(crate) fn explained(mut self, problem: String) -> StoreError {
        self.problem = problem;
        self
    }

    /// Which store failed (`replay cache`, `revocations`, `audit sink`, ...).
    #[must_use]
    pub fn store(&self) -> &'static str {
        self.store
    }

    /// What kind of failure this is.
    #[must_use]
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// What went wrong, in words.
    #[must_use]
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl PartialEq for StoreError {
    fn eq(&self, other: &StoreError) -> bool {
        self.store == other.store && self.kind == other.kind && self.problem == other.problem
    }
}

impl Eq for StoreError {}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} unavailable: {}", self.store, Escaped(&self.problem))
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
