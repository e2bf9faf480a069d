//! Key ids: RFC 7638 JWK thumbprints, the `kid` of every JWS header (SPEC section 2).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::Error;
use crate::wire::b64::{b64_encode, is_canonical_b64url};

/// A key id: the RFC 7638 JWK thumbprint of an Ed25519 public key, base64url without padding
/// of SHA-256 over `{"crv":"Ed25519","kty":"OKP","x":"<x>"}`. Always 43 characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(Box<str>);

impl KeyId {
    /// The thumbprint of a public key.
    #[must_use]
    pub fn thumbprint(key: &[u8; 32]) -> KeyId {
        let canonical = format!(
            r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
            b64_encode(key)
        );
        KeyId(b64_encode(&Sha256::digest(canonical.as_bytes())).into())
    }

    /// The key id as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for KeyId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        if s.len() != 43 || !is_canonical_b64url(s) {
            return Err(Error::invalid_id(
                "key id",
                s,
                "must be a 43-character base64url SHA-256 thumbprint",
            ));
        }
        Ok(KeyId(s.into()))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

impl Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
