//! Revocation, task lifecycle and replay protection: the memory stores, and Redis shared by
//! verifier replicas (feature `redis`).

mod lifecycle;
#[cfg(feature = "redis")]
mod redis;
