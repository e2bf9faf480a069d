//! The strict compact-JWS layer (SPEC sections 1 and 2).
//!
//! This is the only place that knows base64url, JSON strictness, header rules and size limits.
//! Everything here refuses rather than repairs: padding, whitespace, non-canonical trailing
//! bits, duplicate or unknown members, extra header members and oversize inputs are rejected
//! with the reason codes of SPEC section 7.

use std::borrow::Cow;
use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::error::{Credential, Fault};
use crate::limits::{MAX_ENVELOPE_BYTES, MAX_TOKEN_BYTES};
use crate::wire::b64::{b64_decode, b64_encode};
use crate::wire::json::{json_problem, Text};
use crate::wire::KeyId;

/// The `typ` of a delegation token.
pub const TYP_DELEGATION: &str = Credential::Token.typ();
/// The `typ` of a handoff envelope.
pub const TYP_HANDOFF: &str = Credential::Envelope.typ();

/// Which kind of JWS is being read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Token,
    Envelope,
}

impl Kind {
    pub(crate) fn typ(self) -> &'static str {
        self.credential().typ()
    }

    fn credential(self) -> Credential {
        match self {
            Kind::Token => Credential::Token,
            Kind::Envelope => Credential::Envelope,
        }
    }

    fn max_bytes(self) -> usize {
        match self {
            Kind::Token => MAX_TOKEN_BYTES,
            Kind::Envelope => MAX_ENVELOPE_BYTES,
        }
    }

    fn name(self) -> &'static str {
        self.credential().name()
    }
}

fn malformed(detail: impl Into<Cow<'static, str>>) -> Fault {
    Fault::malformed(detail)
}

#[cfg(test)]
thread_local! {
    /// Signature checks made on this thread (unit tests count them).
    pub(crate) static SIGNATURE_CHECKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A compact JWS whose syntax and header were checked; its signature is *not* verified.
pub(crate) struct Decoded<'a> {
    /// The header `kid`: a hint for key lookup, never trusted by itself.
    pub kid: KeyId,
    /// The ASCII bytes the signature covers, exactly as received.
    pub signing_input: &'a [u8],
    /// The decoded claims JSON.
    pub claims: Vec<u8>,
    /// The decoded signature bytes (any length; checked when verified).
    pub signature: Vec<u8>,
}

impl Decoded<'_> {
    /// Verifies the signature strictly (`verify_strict`: canonical `S`, no small-order or
    /// non-canonical `R` or key). A signature that is not 64 bytes fails before any point
    /// arithmetic.
    pub(crate) fn verify(&self, key: &ed25519_dalek::VerifyingKey) -> bool {
        #[cfg(test)]
        SIGNATURE_CHECKS.with(|n| n.set(n.get() + 1));
        let Ok(bytes) = <[u8; 64]>::try_from(self.signature.as_slice()) else {
            return false;
        };
        let signature = ed25519_dalek::Signature::from_bytes(&bytes);
        key.verify_strict(self.signing_input, &signature).is_ok()
    }
}

/// Decodes a compact JWS of the given kind, checking size, form, base64url and the header.
/// Callers place the fault (the envelope or a link).
pub(crate) fn decode(input: &str, kind: Kind) -> Result<Decoded<'_>, Fault> {
    if input.len() > kind.max_bytes() {
        return Err(Fault::TooLarge {
            what: kind.credential(),
            size: input.len(),
            limit: kind.max_bytes(),
        });
    }
    let mut parts = input.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(format!(
            "{} is not a compact JWS (three base64url parts separated by `.`)",
            kind.name()
        )));
    };
    let header_bytes =
        b64_decode(header_b64).ok_or_else(|| malformed("JWS header is not canonical base64url"))?;
    let claims = b64_decode(claims_b64)
        .ok_or_else(|| malformed("JWS payload is not canonical base64url"))?;
    let signature = b64_decode(signature_b64)
        .ok_or_else(|| malformed("JWS signature is not canonical base64url"))?;
    let kid = check_header(&header_bytes, kind)?;
    let signing_input = input
        .get(..header_b64.len() + 1 + claims_b64.len())
        .unwrap_or_default()
        .as_bytes();
    Ok(Decoded {
        kid,
        signing_input,
        claims,
        signature,
    })
}

/// The JWS header as received: each known member at most once, values still unchecked.
/// Strings are borrowed from the decoded header bytes unless they contain escapes.
#[derive(Default)]
struct RawHeader<'de> {
    alg: Option<Cow<'de, str>>,
    typ: Option<Cow<'de, str>>,
    kid: Option<Cow<'de, str>>,
    forbidden: Option<String>,
}

impl<'de> Deserialize<'de> for RawHeader<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;
        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = RawHeader<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeader<'de>, A::Error> {
                let mut header = RawHeader::default();
                while let Some(Text(name)) = map.next_key::<Text<'de>>()? {
                    let slot = match &*name {
                        "alg" => &mut header.alg,
                        "typ" => &mut header.typ,
                        "kid" => &mut header.kid,
                        _ => {
                            map.next_value::<de::IgnoredAny>()?;
                            if header.forbidden.is_none() {
                                header.forbidden = Some(name.chars().take(32).collect());
                            }
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(de::Error::custom(format_args!(
                            "duplicate header member `{name}`"
                        )));
                    }
                    *slot = Some(map.next_value::<Text<'de>>()?.0);
                }
                Ok(header)
            }
        }
        deserializer.deserialize_map(HeaderVisitor)
    }
}

fn check_header(bytes: &[u8], kind: Kind) -> Result<KeyId, Fault> {
    let header: RawHeader = serde_json::from_slice(bytes).map_err(|e| {
        malformed(format!(
            "JWS header is not a strict JSON object: {}",
            json_problem(&e)
        ))
    })?;
    if let Some(member) = header.forbidden {
        return Err(Fault::ForbiddenHeader { member });
    }
    match header.alg.as_deref() {
        Some("EdDSA" | "Ed25519") => {}
        Some(other) => {
            return Err(Fault::UnsupportedAlgorithm {
                alg: other.chars().take(32).collect(),
            });
        }
        None => return Err(malformed("JWS header has no `alg`")),
    }
    match header.typ.as_deref() {
        Some(typ) if typ == kind.typ() => {}
        other => {
            return Err(Fault::WrongType {
                what: kind.credential(),
                typ: other.map(|t| t.chars().take(40).collect()),
            });
        }
    }
    let kid = header
        .kid
        .ok_or_else(|| malformed("JWS header has no `kid`"))?;
    kid.parse()
        .map_err(|_| malformed("JWS `kid` is not a 43-character base64url key thumbprint"))
}

/// Encodes and signs a compact JWS with `alg: EdDSA`.
pub(crate) fn encode(kind: Kind, kid: &KeyId, claims_json: &[u8], key: &SigningKey) -> String {
    let header = format!(
        r#"{{"alg":"EdDSA","typ":"{}","kid":"{}"}}"#,
        kind.typ(),
        kid.as_str()
    );
    let mut out = String::with_capacity(claims_json.len() * 4 / 3 + 200);
    out.push_str(&b64_encode(header.as_bytes()));
    out.push('.');
    out.push_str(&b64_encode(claims_json));
    let signature = key.sign(out.as_bytes());
    out.push('.');
    out.push_str(&b64_encode(&signature.to_bytes()));
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::wire::json::strict_map;

    #[test]
    fn base64url_is_canonical_only() {
        assert_eq!(b64_decode("AQID").as_deref(), Some(&[1u8, 2, 3][..]));
        assert_eq!(b64_decode("AQ").as_deref(), Some(&[1u8][..]));
        assert!(b64_decode("AR").is_none(), "non-zero trailing bits");
        assert!(b64_decode("AQ==").is_none(), "padding");
        assert!(b64_decode("AQ=").is_none(), "padding");
        assert!(b64_decode("AQ I").is_none(), "whitespace");
        assert!(b64_decode("AQ\nID").is_none(), "newline");
        assert!(b64_decode("A+/").is_none(), "standard alphabet");
        assert!(b64_decode("A").is_none(), "impossible length");
        assert_eq!(b64_decode("").as_deref(), Some(&[][..]));
    }

    #[test]
    fn strict_map_refuses_duplicates() {
        #[derive(Deserialize)]
        struct M {
            #[serde(deserialize_with = "strict_map")]
            m: BTreeMap<String, u32>,
        }
        let ok = serde_json::from_str::<M>(r#"{"m":{"a":1,"b":2}}"#).unwrap();
        assert_eq!(ok.m.len(), 2);
        assert!(serde_json::from_str::<M>(r#"{"m":{"a":1,"a":2}}"#).is_err());
    }
}
