#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod audit;
mod capability;
mod clock;
mod envelope;
mod error;
mod escape;
mod file;
mod id;
mod identity;
mod jws;
mod lifecycle;
mod link_cache;
mod policy;
#[cfg(feature = "redis")]
mod redis;
mod replay;
mod revocation;
mod token;
mod trust;
mod verify;

#[cfg(feature = "http")]
pub mod http_binding;

// The public interface is:
#[cfg(feature = "tracing")]
pub use crate::audit::TracingAudit;
pub use crate::audit::{
    verify_audit_log, AuditLogError, AuditLogFault, AuditLogReport, AuditLogSummary, AuditRecord,
    AuditSignatures, AuditSink, ClaimedFacts, Decision, DiscardAudit, JsonlAudit, MemoryAudit,
    SyncPolicy,
};
pub use crate::audit::{verify_audit_log_extends, verify_audit_log_signed};
pub use crate::capability::{
    check_resource, check_resource_pattern, exact_number, ArgValue, Capability, Intent, Limit,
    LimitName, Pattern,
};
pub use crate::clock::{Clock, FixedClock, SystemClock, UnixTime};
pub use crate::envelope::{
    EnvelopeBuilder, HandoffEnvelope, HandoffMode, PayloadDigest, DEFAULT_ENVELOPE_TTL,
    MAX_CHAIN_LINKS,
};
pub use crate::error::{Error, FileProblem, Location, Reason, Rejection, StoreError};
pub use crate::file::{
    read_regular_file, MAX_BUNDLE_BYTES, MAX_KEY_FILE_BYTES, MAX_REVOCATIONS_BYTES,
};
pub use crate::id::{AgentId, AgentPattern, TaskId, TokenId};
pub use crate::identity::{AgentIdentity, AgentKey, Jwk, KeyId, PublicIdentity};
pub use crate::jws::{
    MAX_ENVELOPE_BYTES, MAX_EXT_BYTES, MAX_TOKEN_BYTES, TYP_DELEGATION, TYP_HANDOFF,
};
pub use crate::lifecycle::{RevocationWriter, TaskGrant};
pub use crate::link_cache::{LinkCacheStats, DEFAULT_LINK_CACHE_CAPACITY};
#[cfg(feature = "cedar")]
pub use crate::policy::CedarPolicy;
pub use crate::policy::{
    ChainScopePolicy, Context, Policy, PolicyDecision, PolicyRequest, PolicyWarning, RulePolicy,
    SharedRulePolicy, MAX_POLICY_BYTES,
};
#[cfg(feature = "redis")]
pub use crate::redis::{RedisOptions, RedisReplayCache, RedisRevocations};
pub use crate::replay::{Freshness, MemoryReplayCache, ReplayCache, DEFAULT_REPLAY_CAPACITY};
pub use crate::revocation::{
    required_retention, MemoryRevocations, RevocationQuery, RevocationStats, Revocations, Revoked,
    TokenRef, DEFAULT_RETENTION,
};
pub use crate::token::{
    DelegationToken, TokenBuilder, TokenHash, DEFAULT_ROOT_TTL, MAX_CAPABILITIES, MAX_DELEGATES,
    MAX_DEPTH,
};
pub use crate::trust::{KeyResolver, TrustBundle};
pub use crate::verify::{
    AuditFailure, HandoffVerifier, Limits, VerifiedHandoff, VerifiedLink, Verifier, VerifierBuilder,
};

// The guides in `docs/` are not part of the API documentation, but their code blocks are
// doctests: `cargo test --doc` compiles and runs them like the README's.
#[cfg(doctest)]
#[doc = include_str!("../docs/cli.md")]
mod docs_cli {}
#[cfg(doctest)]
#[doc = include_str!("../docs/policy.md")]
mod docs_policy {}
#[cfg(doctest)]
#[doc = include_str!("../docs/operations.md")]
mod docs_operations {}
#[cfg(doctest)]
#[doc = include_str!("../docs/http.md")]
mod docs_http {}
#[cfg(doctest)]
#[doc = include_str!("../docs/performance.md")]
mod docs_performance {}
#[cfg(doctest)]
#[doc = include_str!("../docs/testing.md")]
mod docs_testing {}
