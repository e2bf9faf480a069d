//! The integration tests: one binary, one module per SPEC section (`cargo test --test spec`).
//!
//! Every module runs under `cargo test`, except those that need a feature (`cli`, `http`,
//! `cedar`, `redis`): they run under `cargo test --all-features`. Shared fixtures are in
//! `common`; data files are read from `tests/vectors`, `tests/data` and `examples/policies`.

// The one exception to Cargo.toml's lint contract in the tests. A test stops at the first
// surprise: fixtures and helpers unwrap, expect, panic and index like the `#[test]` functions
// themselves (which clippy.toml already covers).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

// SPEC 1 and 2: strict JSON, identifiers, compact JWS; and the signature layer under it.
mod signatures;
mod wire;
// SPEC 1 and 8: key files, JWKs, trust bundles; no secret in any output.
mod keys;
// SPEC 3: capabilities, patterns, argument limits.
mod capabilities;
// SPEC 3.1 and 3.2: argument constraints, closed capabilities, sound coverage.
mod constraints;
// SPEC 3.1 and 3.2: the semantic members `subpath`, `url` and `cidr`, end to end.
mod constraints_semantic;
// SPEC 4: delegation tokens and chains.
mod chain;
// SPEC 5: handoff envelopes.
mod envelope;
// SPEC 6 and 7: the verifier, every reason code, the link cache, the route's intent.
mod verify;
// Resource limits under attack: bounded work for the worst-case input.
mod limits;
// Request-time policy: rules, and Cedar (feature `cedar`).
mod policy;
// Revocation, task lifecycle and replay: in memory, and through Redis (feature `redis`).
mod stores;
// SPEC 7: audit records, signed logs, sinks.
mod audit;
// SPEC 10: the HTTP binding (feature `http`).
#[cfg(feature = "http")]
mod http;
// SPEC 9: the `handoff` command line (feature `cli`, Unix file modes).
#[cfg(all(feature = "cli", unix))]
mod cli;
// Independent implementations: jsonwebtoken, PyJWT, openssl.
mod interop;
// The golden vectors of `tests/vectors`.
mod vectors;
// Properties over generated inputs (proptest).
mod properties;
