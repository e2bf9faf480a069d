//! Stores the verifier reads and writes (SPEC section 6 steps 8 and 10): revocations (the
//! read side the verifier checks, the write side tasks and incident tools use) and the replay
//! cache, in memory or, with the `redis` feature, shared by every replica through Redis.

#[cfg(feature = "redis")]
pub mod redis;
mod replay;
mod revocation;

pub use replay::{Freshness, MemoryReplayCache, ReplayCache};
pub use revocation::{
    required_retention, MemoryRevocations, RevocationQuery, RevocationStats, RevocationWriter,
    Revocations, Revoked, TokenRef,
};
