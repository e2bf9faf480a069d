//! Keys (SPEC sections 1 and 8): agent identities with their Ed25519 keys, the trust bundle of
//! public keys, and the resolver the verifier asks for a sender's or issuer's keys.

mod identity;
mod trust;

pub use crate::wire::KeyId;
pub use identity::{AgentIdentity, AgentKey, Jwk, PublicIdentity};
pub use trust::{KeyResolver, TrustBundle};
