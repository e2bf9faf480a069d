//! SPEC sections 6 and 7: the verifier's steps and reason codes.

mod link_cache;
mod reasons;
mod required_intent;
