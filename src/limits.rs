//! Every limit of the crate in one place: the verifier's tunable [`Limits`] and the wire
//! constants of the SPEC, each with its SPEC reference and the reason for its value.
//!
//! A wire constant is part of the format: another implementation applies the same bound, so
//! none of them is configurable. [`Limits`] holds what a deployment may tighten.

use std::time::Duration;

// ---- Wire limits (SPEC sections 1 to 5) ----

/// Largest agent id, in bytes (SPEC section 1): bounds every id compared or stored.
pub const MAX_AGENT_ID_BYTES: usize = 2048;
/// Longest SPIFFE trust domain, in bytes (SPEC section 1; the DNS name limit).
pub const MAX_TRUST_DOMAIN_BYTES: usize = 255;
/// Largest delegation token accepted, in bytes (SPEC section 2): one token is one grant.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Largest handoff envelope accepted, in bytes (SPEC section 2): room for a chain of
/// [`MAX_CHAIN_LINKS`] tokens and the intent.
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;
/// Longest action or action pattern, in bytes (SPEC section 3).
pub const MAX_ACTION_BYTES: usize = 128;
/// Longest resource or resource pattern, in bytes (SPEC section 3).
pub const MAX_RESOURCE_BYTES: usize = 512;
/// Deepest nesting of intent argument values below `args` (SPEC section 3): bounds the
/// recursion of every parser and comparison of arguments.
pub const MAX_ARG_DEPTH: usize = 64;
/// Deepest nesting of argument constraint objects (SPEC section 3.1): a `limits` entry is
/// depth 1, each `each`, `fields` entry, `all_of` or `any_of` element one deeper. Bounds the
/// recursion of parsing, matching and the coverage check.
pub const MAX_CONSTRAINT_DEPTH: usize = 8;
/// Longest `regex` source in a constraint, in bytes (SPEC section 3.1).
pub const MAX_REGEX_BYTES: usize = 1024;
/// Longest `glob` in a constraint, in bytes (SPEC section 3.1).
pub const MAX_GLOB_BYTES: usize = 1024;
/// Largest compiled form of a `regex` or `glob` (SPEC section 3.1; the `regex` crate's size
/// limit): bounds the memory and the compile time one constraint can demand.
pub const MAX_REGEX_COMPILED_BYTES: usize = 256 * 1024;
/// Most capabilities one token may carry (SPEC section 4): bounds the narrowing check, which
/// compares every child capability with every parent capability.
pub const MAX_CAPABILITIES: usize = 32;
/// Most `delegates` patterns one token may carry (SPEC section 4).
pub const MAX_DELEGATES: usize = 32;
/// Largest `depth` a token may carry (SPEC section 4); a chain is shorter anyway
/// ([`MAX_CHAIN_LINKS`]).
pub const MAX_DEPTH: u8 = 15;
/// Largest `ext` object in a delegation token, in bytes of JSON (SPEC section 4): application
/// data rides along, it is not a payload channel.
pub const MAX_EXT_BYTES: usize = 2 * 1024;
/// Most links a chain may have (SPEC section 4); a verifier may allow fewer. Bounds the
/// signature checks one envelope can demand.
pub const MAX_CHAIN_LINKS: usize = 8;

// ---- Files (SPEC sections 1 and 8) ----

/// Largest private key file read by [`AgentIdentity::load`](crate::AgentIdentity::load), in
/// bytes (SPEC section 1). Also the limit for a single JWK file on the command line.
pub const MAX_KEY_FILE_BYTES: usize = 64 * 1024;
/// Largest trust bundle file read by [`TrustBundle::load`](crate::TrustBundle::load), in bytes
/// (SPEC section 8).
pub const MAX_BUNDLE_BYTES: usize = 8 * 1024 * 1024;
/// Largest revocations file read by
/// [`MemoryRevocations::load`](crate::MemoryRevocations::load), in bytes (SPEC section 6.8).
pub const MAX_REVOCATIONS_BYTES: usize = 16 * 1024 * 1024;
/// The largest policy file accepted (1 MiB; SPEC section 6 step 9).
pub const MAX_POLICY_BYTES: usize = 1 << 20;
/// Longest line of an audit log read back by
/// [`verify_audit_log`](crate::audit::verify_audit_log), in bytes (SPEC section 7): a record
/// is far smaller, so a longer line is damage, not data.
pub const MAX_AUDIT_LINE_BYTES: u64 = 1 << 20;

// ---- Defaults (not wire limits) ----

/// Lifetime of a root token when the builder is not given one (SPEC section 4).
pub const DEFAULT_ROOT_TTL: Duration = Duration::from_secs(15 * 60);
/// Lifetime of an envelope when the builder is not given one (SPEC section 5).
pub const DEFAULT_ENVELOPE_TTL: Duration = Duration::from_secs(60);
/// The default for revoked-entry retention: 1 hour 5 minutes, the longest time a token
/// revoked at `t` can still verify at a verifier with the default maximum token lifetime
/// (1 hour) and the largest leeway a verifier accepts (300 s). A verifier with a longer
/// `max_token_ttl` needs a store made with
/// [`MemoryRevocations::with_retention`](crate::MemoryRevocations::with_retention) (its builder
/// says so; SPEC section 6.8).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(3600 + 300);
/// Default capacity of [`MemoryReplayCache`](crate::store::MemoryReplayCache): one million
/// live envelope ids (SPEC section 6 step 10).
pub const DEFAULT_REPLAY_CAPACITY: usize = 1 << 20;
/// Default capacity of the verified-link cache (see [`Limits::link_cache_capacity`]).
pub const DEFAULT_LINK_CACHE_CAPACITY: usize = 10_000;
/// Default bound on a request body the layer reads: 1 MiB. Agent messages (A2A JSON-RPC, MCP
/// tool calls) are small; the body is held in memory once to hash it, so the bound is the
/// memory one request may pin.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// Default deadline for reading the whole request body: 5 seconds, counted from the moment
/// the layer starts reading it (the headers have arrived) to its last byte. Agent messages are
/// a few KiB and arrive in milliseconds; 5 s still carries a body at the default bound
/// ([`DEFAULT_MAX_BODY`]) at about 2 Mbit/s, and it is the longest a client that trickles its
/// body holds a connection and a worker. Raise it together with `HandoffLayer::max_body`
/// (feature `http`) for large bodies on slow links.
pub const DEFAULT_BODY_DEADLINE: Duration = Duration::from_secs(5);

// ---- The verifier's limits ----

/// Every limit the verifier applies, with its default and the reason for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Clock skew tolerated on every time check. Default 5 s: enough for NTP-synced hosts,
    /// short enough not to extend a credential's life noticeably.
    pub leeway: Duration,
    /// Longest envelope lifetime (`exp - iat`). Default 120 s: an envelope is one message,
    /// and a short life bounds how long the replay cache must remember it.
    pub max_envelope_ttl: Duration,
    /// Longest delegation token lifetime (`exp - iat`). Default 1 hour: grants are made just
    /// in time for a task; long-lived authority belongs in the trust bundle, not in tokens.
    /// The revocation store must keep revocations at least `max_token_ttl + leeway`
    /// ([`required_retention`](crate::store::required_retention)); the builder refuses one that
    /// does not.
    pub max_token_ttl: Duration,
    /// Most links in a chain. Default and maximum 8 (SPEC section 4): bounds the signature
    /// checks one envelope can demand.
    pub max_chain_len: usize,
    /// Most chain links remembered as decoded and signature-checked. Default 10 000, enough
    /// for the live grants of a busy agent; each entry holds the link's decoded claims, about
    /// the size of the token (typically under 1 KiB, at most 8 KiB), so the default costs
    /// about 10 MB when full of typical tokens. `0` disables the cache (every link is decoded
    /// and its signature checked on every request). Only the decoding and the signature check
    /// are skipped; every other check runs on every request.
    pub link_cache_capacity: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            leeway: Duration::from_secs(5),
            max_envelope_ttl: Duration::from_secs(120),
            max_token_ttl: Duration::from_secs(3600),
            max_chain_len: MAX_CHAIN_LINKS,
            link_cache_capacity: DEFAULT_LINK_CACHE_CAPACITY,
        }
    }
}
