#![doc = include_str!("../README.md")]
// Lints: the `[lints]` table of Cargo.toml, for every target (with clippy.toml).

// The layers, lowest first: clock, error, limits, file; wire; keys; store; grant; policy;
// audit; verify; http_binding. Each imports only from the layers before it (no cycles).
pub mod audit;
pub mod clock;
pub mod error;
mod escape;
pub mod file;
pub mod grant;
#[cfg(feature = "http")]
pub mod http_binding;
pub mod keys;
pub mod limits;
pub mod policy;
pub mod store;
pub mod verify;
pub mod wire;

// The names most users need. Everything else is in its module.
pub use crate::audit::{AuditSink, JsonlAudit};
pub use crate::clock::UnixTime;
pub use crate::error::{Error, Reason, Rejection};
pub use crate::grant::{
    ArgValue, Capability, DelegationToken, EnvelopeBuilder, HandoffEnvelope, HandoffMode, Intent,
    TaskGrant, TokenBuilder,
};
pub use crate::keys::{AgentIdentity, PublicIdentity, TrustBundle};
pub use crate::limits::Limits;
pub use crate::policy::{Policy, RequestContext, RulePolicy};
pub use crate::store::{MemoryReplayCache, MemoryRevocations, RevocationWriter, Revocations};
pub use crate::verify::{
    HandoffVerifier, VerifiedHandoff, Verifier, VerifierBuilder, VerifyRequest,
};
pub use crate::wire::{AgentId, TaskId, TokenId};

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
#[cfg(doctest)]
#[doc = include_str!("../docs/constraints.md")]
mod docs_constraints {}
