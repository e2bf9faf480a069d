//! Grants (SPEC sections 3 to 5): capabilities and intents, delegation tokens, handoff
//! envelopes, task grants, and the links of a verified chain.
//!
//! Building and reading a grant verifies nothing; that is [`crate::verify`].
//!
//! The rule book (`rules.rs`) is here too: every rule of SPEC sections 4 to 6 that judges
//! claims, as a pure function returning a typed [`Fault`](crate::error::Fault). The builders
//! ([`TokenBuilder::sign`], [`EnvelopeBuilder::seal`]) and the verifier call the same
//! functions, so nothing is built that the verifier would refuse for those rules.

mod capability;
mod constraint;
mod envelope;
mod link;
pub(crate) mod rules;
pub(crate) mod semantic;
mod task;
mod token;

pub use capability::{
    check_resource, check_resource_pattern, exact_number, ArgLimit, ArgName, ArgValue, Capability,
    Intent, Pattern,
};
pub use constraint::Constraint;
pub(crate) use envelope::{BorrowedEnvelopeClaims, EnvelopeClaims};
pub use envelope::{EnvelopeBuilder, HandoffEnvelope, HandoffMode, PayloadDigest};
pub(crate) use link::ParsedLink;
pub use link::VerifiedLink;
pub use task::TaskGrant;
pub(crate) use token::TokenClaims;
pub use token::{DelegationToken, TokenBuilder, TokenHash};
