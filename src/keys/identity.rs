//! Agent identities: Ed25519 keys, key ids (RFC 7638 thumbprints), JWK and PKCS#8 PEM.

use std::fmt;
use std::path::Path;

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::wire::b64::{b64_decode, b64_encode};
use crate::wire::{AgentId, KeyId};

/// A public key as a JWK (RFC 8037): `{"kty":"OKP","crv":"Ed25519","x":"..."}` with an
/// optional `kid` that must equal the thumbprint. Unknown members are refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jwk {
    /// Key type: always `OKP`.
    pub kty: String,
    /// Curve: always `Ed25519`.
    pub crv: String,
    /// The 32-byte public key, base64url without padding.
    pub x: String,
    /// The RFC 7638 thumbprint, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
}

/// An agent's Ed25519 public key, admitted only if its encoding is canonical, it is not of
/// small order and it is torsion-free (SPEC section 1). Decoded once, kept ready to verify.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentKey {
    key: VerifyingKey,
    kid: KeyId,
}

impl AgentKey {
    /// Admits a public key from its 32-byte encoding.
    ///
    /// Refused: encodings that are not canonical (they do not re-encode to the same bytes),
    /// points that are not on the curve, points of small order, and points with a torsion
    /// component.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<AgentKey, Error> {
        let refuse = |problem: &str| Error::Key {
            path: None,
            problem: format!("public key refused: {problem}"),
        };
        let point = CompressedEdwardsY(*bytes)
            .decompress()
            .ok_or_else(|| refuse("not a point on edwards25519"))?;
        if point.compress().as_bytes() != bytes {
            return Err(refuse("non-canonical encoding"));
        }
        if point.is_small_order() {
            return Err(refuse("small-order point"));
        }
        if !point.is_torsion_free() {
            return Err(refuse("point has a torsion component"));
        }
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| refuse("not a valid Ed25519 key"))?;
        Ok(AgentKey {
            kid: KeyId::thumbprint(bytes),
            key,
        })
    }

    /// Admits a public key from a JWK, checking `kty`, `crv`, `x` and (if present) `kid`.
    pub fn from_jwk(jwk: &Jwk) -> Result<AgentKey, Error> {
        let refuse = |problem: String| Error::Key {
            path: None,
            problem,
        };
        if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
            return Err(refuse(format!(
                "JWK must have `kty` `OKP` and `crv` `Ed25519`, not `{}`/`{}`",
                jwk.kty.chars().take(16).collect::<String>(),
                jwk.crv.chars().take(16).collect::<String>()
            )));
        }
        let bytes = b64_decode(&jwk.x)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| refuse("JWK `x` must be 32 bytes of canonical base64url".to_owned()))?;
        let key = AgentKey::from_bytes(&bytes)?;
        if let Some(kid) = &jwk.kid {
            if kid.as_str() != key.kid.as_str() {
                return Err(refuse(format!(
                    "JWK `kid` `{}` is not the key's RFC 7638 thumbprint `{}`",
                    kid.chars().take(64).collect::<String>(),
                    key.kid
                )));
            }
        }
        Ok(key)
    }

    /// Admits a public key from JWK JSON text.
    pub fn from_jwk_json(json: &str) -> Result<AgentKey, Error> {
        let jwk: Jwk = serde_json::from_str(json).map_err(|e| Error::Key {
            path: None,
            problem: format!(
                "not an Ed25519 JWK ({}); expected {{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"...\"}}",
                crate::wire::json::json_problem(&e)
            ),
        })?;
        AgentKey::from_jwk(&jwk)
    }

    /// The key as a JWK, with its `kid`.
    #[must_use]
    pub fn to_jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".to_owned(),
            crv: "Ed25519".to_owned(),
            x: b64_encode(self.key.as_bytes()),
            kid: Some(self.kid.as_str().to_owned()),
        }
    }

    /// The key id (RFC 7638 thumbprint).
    #[must_use]
    pub fn kid(&self) -> &KeyId {
        &self.kid
    }

    /// The 32-byte encoding.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// The decoded key, ready for strict verification.
    #[must_use]
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

impl fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentKey").field("kid", &self.kid).finish()
    }
}

/// The public half of an identity: an agent id and its key. This is what a delegator needs to
/// know about a delegate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicIdentity {
    id: AgentId,
    key: AgentKey,
}

impl PublicIdentity {
    /// Pairs an agent id with a public key.
    #[must_use]
    pub fn new(id: AgentId, key: AgentKey) -> PublicIdentity {
        PublicIdentity { id, key }
    }

    /// The agent id.
    #[must_use]
    pub fn id(&self) -> &AgentId {
        &self.id
    }

    /// The public key.
    #[must_use]
    pub fn key(&self) -> &AgentKey {
        &self.key
    }
}

/// An agent's own identity: its agent id and Ed25519 signing key.
///
/// The secret key is zeroized when dropped, never appears in `Debug` output, and cannot be
/// serialized or displayed; [`export_pkcs8_pem`](AgentIdentity::export_pkcs8_pem) and
/// [`save`](AgentIdentity::save) are the only ways out, and both say so.
pub struct AgentIdentity {
    id: AgentId,
    signing: SigningKey,
    key: AgentKey,
}

impl AgentIdentity {
    /// A new identity with a fresh key from the operating system's randomness.
    #[must_use]
    pub fn generate(id: AgentId) -> AgentIdentity {
        loop {
            let signing = SigningKey::generate(&mut rand_core::OsRng);
            // A generated key is always admissible; the loop only guards the invariant.
            if let Ok(identity) = AgentIdentity::from_signing_key(id.clone(), signing) {
                return identity;
            }
        }
    }

    fn from_signing_key(id: AgentId, signing: SigningKey) -> Result<AgentIdentity, Error> {
        let key = AgentKey::from_bytes(signing.verifying_key().as_bytes())?;
        Ok(AgentIdentity { id, signing, key })
    }

    /// An identity from a 32-byte Ed25519 seed (RFC 8032 private key). Useful for test vectors;
    /// real keys come from [`generate`](AgentIdentity::generate) or a key file.
    #[must_use]
    pub fn from_seed(id: AgentId, seed: &[u8; 32]) -> AgentIdentity {
        let signing = SigningKey::from_bytes(seed);
        let key = AgentKey {
            kid: KeyId::thumbprint(signing.verifying_key().as_bytes()),
            key: signing.verifying_key(),
        };
        AgentIdentity { id, signing, key }
    }

    /// Reads an identity from PKCS#8 PEM text (`-----BEGIN PRIVATE KEY-----`, RFC 8410).
    pub fn from_pkcs8_pem(id: AgentId, pem: &str) -> Result<AgentIdentity, Error> {
        let signing = SigningKey::from_pkcs8_pem(pem).map_err(|_| Error::Key {
            path: None,
            problem: "not an Ed25519 PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`); \
                      make one with `handoff keygen` or `openssl genpkey -algorithm ed25519`"
                .to_owned(),
        })?;
        AgentIdentity::from_signing_key(id, signing)
    }

    /// Loads an identity from a PKCS#8 PEM file.
    ///
    /// Only a regular file of at most [`MAX_KEY_FILE_BYTES`](crate::limits::MAX_KEY_FILE_BYTES) is
    /// read; a FIFO, socket, device or directory is refused ([`Error::File`]) without blocking,
    /// and so is a larger file. Like ssh, refuses a key file that its group or others may read
    /// or write ([`Error::Key`]): fix it with `chmod 600 <file>`. A symbolic link is followed:
    /// the file is opened once and every check is made on the opened file, that is on the
    /// link's target, which is what is read.
    pub fn load(id: AgentId, path: impl AsRef<Path>) -> Result<AgentIdentity, Error> {
        const ACTION: &str = "reading key file";
        let path = path.as_ref();
        let key_error = |problem: String| Error::Key {
            path: Some(path.to_owned()),
            problem,
        };
        let (file, metadata) = crate::file::open_regular(path, "key file", ACTION)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(key_error(format!(
                    "permissions {mode:04o} are too open: group or others can access this \
                     private key; run `chmod 600 {}`",
                    path.display()
                )));
            }
        }
        let limit = crate::limits::MAX_KEY_FILE_BYTES;
        // Room for every byte that may be read, so the secret is never copied by a regrowth.
        let mut bytes = Zeroizing::new(Vec::with_capacity(limit + 1));
        crate::file::read_opened(file, &metadata, path, "key file", ACTION, limit, &mut bytes)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| key_error("is not UTF-8 text, so not a PEM private key".to_owned()))?;
        AgentIdentity::from_pkcs8_pem(id, text).map_err(|e| match e {
            Error::Key { problem, .. } => key_error(problem),
            other => other,
        })
    }

    /// Exports the **secret** key as PKCS#8 PEM. The result zeroizes itself when dropped.
    ///
    /// Written as a version 1 `PrivateKeyInfo` without the optional public key (RFC 8410
    /// section 7, first example), the form `openssl genpkey` writes: OpenSSL 3.0 and Python's
    /// `cryptography` refuse the version 2 form that `SigningKey::to_pkcs8_pem` produces.
    pub fn export_pkcs8_pem(&self) -> Result<Zeroizing<String>, Error> {
        ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: self.signing.to_bytes(),
            public_key: None,
        }
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|_| Error::Key {
            path: None,
            problem: "could not encode the private key as PKCS#8".to_owned(),
        })
    }

    /// Writes the **secret** key as PKCS#8 PEM to a new file with mode 0600. Refuses to
    /// overwrite an existing file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        use std::io::Write as _;
        let path = path.as_ref();
        let pem = self.export_pkcs8_pem()?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let io = |source| Error::Io {
            action: "writing key file",
            path: path.to_owned(),
            source,
        };
        let mut file = options.open(path).map_err(io)?;
        file.write_all(pem.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(())
    }

    /// The agent id.
    #[must_use]
    pub fn id(&self) -> &AgentId {
        &self.id
    }

    /// The public key.
    #[must_use]
    pub fn key(&self) -> &AgentKey {
        &self.key
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &KeyId {
        &self.key.kid
    }

    /// The public half: id and key.
    #[must_use]
    pub fn public(&self) -> PublicIdentity {
        PublicIdentity {
            id: self.id.clone(),
            key: self.key.clone(),
        }
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }
}

impl fmt::Debug for AgentIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentIdentity")
            .field("id", &self.id)
            .field("kid", &self.key.kid)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc8037_example() {
        // RFC 8037 appendix A.3: the thumbprint of the example public key.
        let x = b64_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        let bytes: [u8; 32] = x.try_into().unwrap();
        assert_eq!(
            KeyId::thumbprint(&bytes).as_str(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let id = AgentIdentity::from_seed("spiffe://a.example/x".parse().unwrap(), &[7u8; 32]);
        let pem = id.export_pkcs8_pem().unwrap();
        let debug = format!("{id:?}");
        assert!(debug.contains("<redacted>"));
        let secret_b64 = b64_encode(&[7u8; 32]);
        assert!(!debug.contains(&secret_b64));
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(!debug.contains(&body));
    }

    #[test]
    fn pem_round_trip() {
        let id = AgentIdentity::generate("spiffe://a.example/x".parse().unwrap());
        let pem = id.export_pkcs8_pem().unwrap();
        let back = AgentIdentity::from_pkcs8_pem(id.id().clone(), &pem).unwrap();
        assert_eq!(back.kid(), id.kid());
        assert!(AgentIdentity::from_pkcs8_pem(id.id().clone(), "nonsense").is_err());
    }

    #[test]
    fn jwk_round_trip_and_kid_check() {
        let id = AgentIdentity::generate("spiffe://a.example/x".parse().unwrap());
        let jwk = id.key().to_jwk();
        assert_eq!(AgentKey::from_jwk(&jwk).unwrap(), *id.key());
        let mut wrong = jwk.clone();
        wrong.kid = Some(KeyId::thumbprint(&[9u8; 32]).as_str().to_owned());
        assert!(AgentKey::from_jwk(&wrong).is_err());
        let mut bad_crv = jwk;
        bad_crv.crv = "X25519".into();
        assert!(AgentKey::from_jwk(&bad_crv).is_err());
        assert!(
            AgentKey::from_jwk_json(r#"{"kty":"OKP","crv":"Ed25519","x":"AA","use":"sig"}"#)
                .is_err()
        );
    }
}
