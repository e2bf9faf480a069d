//! SPEC section 6 step 5, first half: the chain of SPEC section 4, link by link, root first.
//! The rules on claims are the rule book's ([`crate::grant::rules`]); what needs keys (trusted
//! root, signatures, registered subject keys) is here.

use std::sync::Arc;

use crate::clock::UnixTime;
use crate::error::{Credential, Fault, Location, Rejection, Signer};
use crate::grant::rules::{self, ChainLink};
use crate::grant::{ParsedLink, TokenClaims, TokenHash};
use crate::keys::KeyId;
use crate::verify::HandoffVerifier;
use crate::wire::json::Text;
use crate::wire::jws::{self, Kind};
use crate::wire::AgentId;

/// A link being checked: its decoded claims and header `kid` (shared with the link cache),
/// and its hash.
pub(super) struct Link {
    pub(super) parsed: Arc<ParsedLink>,
    pub(super) hash: TokenHash,
}

impl std::ops::Deref for Link {
    type Target = ParsedLink;
    fn deref(&self) -> &ParsedLink {
        &self.parsed
    }
}

impl ChainLink for Link {
    fn link_claims(&self) -> &TokenClaims {
        &self.parsed.claims
    }
    fn link_kid(&self) -> &KeyId {
        &self.parsed.kid
    }
    fn link_hash(&self) -> TokenHash {
        self.hash
    }
}

/// A link's claims and `kid` (its signature verified), and whether they were decoded now
/// (`true`) or came from the link cache.
type Decoded = (Arc<ParsedLink>, bool);

impl HandoffVerifier {
    /// SPEC section 4: every link decoded, bound to its parent, signed by a registered key,
    /// in force, and no wider than its parent. A fault is placed at its link.
    pub(super) fn check_chain(
        &self,
        tokens: &[Text<'_>],
        now: UnixTime,
    ) -> Result<Vec<Link>, Rejection> {
        let mut links: Vec<Link> = Vec::with_capacity(tokens.len());
        for (i, Text(compact)) in tokens.iter().enumerate() {
            let link = self
                .check_link(compact, &links, now)
                .map_err(|fault| Rejection::from_fault(fault, Location::Link(i)))?;
            links.push(link);
        }
        Ok(links)
    }

    /// One link, after the `earlier` ones, in the order of SPEC section 4.
    fn check_link(&self, compact: &str, earlier: &[Link], now: UnixTime) -> Result<Link, Fault> {
        // Read the key generation before resolving any key: if the keys change meanwhile, a
        // cache entry is recorded under the old one.
        let generation = self.keys.generation();
        let hash = TokenHash::of(compact);
        // Signature under the key registered for the issuer, then the claims [unknown_key,
        // bad_signature, malformed].
        let (parsed, decoded_now) = self.decode_link(compact, &hash, generation, now)?;
        let claims = &parsed.claims;
        if decoded_now {
            let drop_at = claims.exp.plus(self.limits.leeway);
            self.links.insert(&hash, &parsed, generation, drop_at, now);
        }
        // Binding to the parent [untrusted_root, broken_chain].
        match earlier.last() {
            None => self.trusted_root(claims)?,
            Some(parent) => rules::follows(parent, claims, &parsed.kid)?,
        }
        self.subject_key_known(claims)?;
        // In force [not_yet_valid, expired, ttl_too_long].
        let window = (claims.iat, claims.not_before(), claims.exp);
        rules::in_force(window, self.limits.max_token_ttl, self.limits.leeway, now)?;
        // No self-delegation, same domain unless federated [delegation_forbidden, cross_domain].
        rules::not_self_delegated(claims)?;
        rules::within_domains(claims, |domain| self.keys.federates(domain))?;
        // Narrower than its parent, no cycle through any earlier link, the same task.
        if let Some(parent) = earlier.last() {
            rules::narrows(&parent.claims, claims, earlier)?;
        }
        Ok(Link { parsed, hash })
    }

    /// The link's claims: from the cache if these bytes were decoded and signature-checked
    /// before at this key generation (the same bytes decode to the same claims; every other
    /// check still runs), else decoded: the JWS, its claimed issuer, the signature under that
    /// issuer's key, and only then the claims [malformed, unknown_key, bad_signature].
    fn decode_link(
        &self,
        compact: &str,
        hash: &TokenHash,
        generation: u64,
        now: UnixTime,
    ) -> Result<Decoded, Fault> {
        if let Some(parsed) = self.links.get(hash, generation, now) {
            return Ok((parsed, false));
        }
        let decoded = jws::decode(compact, Kind::Token)?;
        // The signature first, under the key registered for the claimed issuer: nothing else
        // of an unsigned link is parsed (its capabilities' regexes and globs are compiled when
        // parsed) [unknown_key, bad_signature].
        let issuer = TokenClaims::issuer(&decoded.claims)?;
        self.verify_signature(&decoded, &issuer, Signer::Issuer)?;
        let claims = TokenClaims::parse(&decoded.claims)?;
        let parsed = Arc::new(ParsedLink {
            claims,
            kid: decoded.kid.clone(),
        });
        Ok((parsed, true))
    }

    /// The root has no `parent` [broken_chain] and is issued by a trusted authority
    /// [untrusted_root].
    fn trusted_root(&self, root: &TokenClaims) -> Result<(), Fault> {
        rules::is_root(root)?;
        if !self.keys.is_authority(&root.iss) {
            return Err(Fault::UntrustedRoot {
                issuer: root.iss.to_string(),
            });
        }
        Ok(())
    }

    /// The link's `cnf.jkt` names a key registered for its subject [unknown_key].
    fn subject_key_known(&self, link: &TokenClaims) -> Result<(), Fault> {
        if self.keys.resolve(&link.sub, &link.cnf.jkt).is_none() {
            return Err(Fault::UnknownSubjectKey {
                jkt: link.cnf.jkt.to_string(),
                subject: link.sub.to_string(),
            });
        }
        Ok(())
    }

    /// A JWS's signature under the key registered for `signer` with the header's `kid` (only
    /// a hint: it must name a key of that agent) [unknown_key, bad_signature].
    pub(super) fn verify_signature(
        &self,
        jws: &jws::Decoded<'_>,
        signer: &AgentId,
        role: Signer,
    ) -> Result<(), Fault> {
        let key = self
            .keys
            .resolve(signer, &jws.kid)
            .ok_or_else(|| Fault::UnknownKey {
                kid: jws.kid.to_string(),
                role,
                agent: signer.to_string(),
            })?;
        if !jws.verify(&key) {
            let what = match role {
                Signer::Sender => Credential::Envelope,
                _ => Credential::Token,
            };
            return Err(Fault::BadSignature { what });
        }
        Ok(())
    }
}
