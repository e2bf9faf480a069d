//! Grants (SPEC sections 3 to 5): capabilities and intents, delegation tokens, handoff
//! envelopes, task grants, and the links of a verified chain.
//!
//! Building and reading a grant verifies nothing; that is [`crate::verify`].

mod capability;
mod envelope;
mod link;
pub(crate) mod rules;
mod task;
mod token;

pub use capability::{
    check_resource, check_resource_pattern, exact_number, ArgLimit, ArgName, ArgValue, Capability,
    Intent, Pattern,
};
pub(crate) use envelope::EnvelopeClaims;
pub use envelope::{EnvelopeBuilder, HandoffEnvelope, HandoffMode, PayloadDigest};
pub(crate) use link::ParsedLink;
pub use link::VerifiedLink;
pub use task::TaskGrant;
pub(crate) use token::TokenClaims;
pub use token::{DelegationToken, TokenBuilder, TokenHash};
