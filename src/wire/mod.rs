//! Bytes to syntax (SPEC sections 1 and 2): base64url, strict JSON, compact JWS, agent ids and
//! key ids. Nothing here is trusted or verified; everything here refuses rather than repairs.

pub(crate) mod b64;
mod id;
pub(crate) mod json;
pub(crate) mod jws;
mod key_id;

pub use id::{AgentId, AgentPattern, TaskId, TokenId};
pub use jws::{TYP_DELEGATION, TYP_HANDOFF};
pub use key_id::KeyId;
