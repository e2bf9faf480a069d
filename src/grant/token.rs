//! Delegation tokens (SPEC section 4): issuing a root grant, attenuating it, and decoding a
//! token without verifying it. Nothing here verifies anything; that is [`crate::HandoffVerifier`]'s
//! job.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::clock::UnixTime;
use crate::error::{Error, Location, Reason, Rejection};
use crate::grant::{ArgValue, Capability};
use crate::keys::{AgentIdentity, KeyId, PublicIdentity};
use crate::limits::{DEFAULT_ROOT_TTL, MAX_CAPABILITIES, MAX_DELEGATES, MAX_DEPTH};
use crate::wire::jws::{self, Kind};
use crate::wire::{AgentId, AgentPattern, TaskId, TokenId};

/// SHA-256 of a token's compact form; a child's `parent` claim.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub(crate) [u8; 32]);

impl TokenHash {
    pub(crate) fn of(compact: &str) -> TokenHash {
        TokenHash(Sha256::digest(compact.as_bytes()).into())
    }

    /// The hash as base64url, as it appears in a `parent` claim.
    #[must_use]
    pub fn to_b64(&self) -> String {
        crate::wire::b64::b64_encode(&self.0)
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({})", self.to_b64())
    }
}

impl Serialize for TokenHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_b64())
    }
}

impl<'de> Deserialize<'de> for TokenHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        crate::wire::b64::b64_decode(&s)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(TokenHash)
            .ok_or_else(|| serde::de::Error::custom("`parent` must be a base64url SHA-256 hash"))
    }
}

/// The `cnf` claim: the delegate's key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Confirmation {
    pub jkt: KeyId,
}

/// The claims of a delegation token, exactly as on the wire.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenClaims {
    pub jti: TokenId,
    pub iss: AgentId,
    pub sub: AgentId,
    pub cnf: Confirmation,
    pub task: TaskId,
    pub caps: Vec<Capability>,
    pub depth: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegates: Option<Vec<AgentPattern>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<TokenHash>,
    #[serde(deserialize_with = "crate::wire::json::numeric_date")]
    pub iat: UnixTime,
    #[serde(deserialize_with = "crate::wire::json::numeric_date")]
    pub exp: UnixTime,
    #[serde(
        default,
        deserialize_with = "crate::wire::json::optional_numeric_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub nbf: Option<UnixTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<Box<serde_json::value::RawValue>>,
}

impl TokenClaims {
    /// Parses and checks claim syntax (SPEC section 4) [malformed].
    pub(crate) fn parse(json: &[u8]) -> Result<TokenClaims, Rejection> {
        let malformed =
            |detail: String| Rejection::new(Reason::Malformed, Location::Envelope, detail);
        let claims: TokenClaims = serde_json::from_slice(json).map_err(|e| {
            malformed(format!(
                "delegation token claims are not valid: {}",
                crate::wire::json::json_problem(&e)
            ))
        })?;
        claims.check_syntax().map_err(malformed)?;
        Ok(claims)
    }

    fn check_syntax(&self) -> Result<(), String> {
        if self.caps.is_empty() || self.caps.len() > MAX_CAPABILITIES {
            return Err(format!(
                "`caps` must hold 1 to {MAX_CAPABILITIES} capabilities"
            ));
        }
        if self.depth > MAX_DEPTH {
            return Err(format!("`depth` must be 0 to {MAX_DEPTH}"));
        }
        if let Some(d) = &self.delegates {
            if d.is_empty() || d.len() > MAX_DELEGATES {
                return Err(format!(
                    "`delegates` must hold 1 to {MAX_DELEGATES} patterns"
                ));
            }
        }
        if self.exp <= self.iat {
            return Err("`exp` must be later than `iat`".to_owned());
        }
        if let Some(ext) = &self.ext {
            check_ext(ext.get())?;
        }
        Ok(())
    }

    /// `nbf`, defaulting to `iat`.
    pub(crate) fn not_before(&self) -> UnixTime {
        self.nbf.unwrap_or(self.iat)
    }
}

fn check_ext(raw: &str) -> Result<(), String> {
    if raw.len() > crate::limits::MAX_EXT_BYTES {
        return Err(format!(
            "`ext` is larger than {} bytes",
            crate::limits::MAX_EXT_BYTES
        ));
    }
    match serde_json::from_str::<ArgValue>(raw) {
        Ok(ArgValue::Map(_)) => Ok(()),
        Ok(_) => Err("`ext` must be a JSON object".to_owned()),
        Err(e) => Err(format!(
            "`ext` is not strict JSON: {}",
            crate::wire::json::json_problem(&e)
        )),
    }
}

/// A delegation token: a signed, time-limited grant of capabilities from `iss` to `sub` for
/// one task.
///
/// A token is a credential you hold, **not a verified fact**: it comes from a builder or from
/// [`DelegationToken::decode`], and its accessors are named `claimed_…` because only
/// [`crate::HandoffVerifier`] establishes that what a token says is true. Its `Debug` output
/// shows ids, never the signed bytes (tokens are bearer-ish).
#[derive(Clone)]
pub struct DelegationToken {
    compact: String,
    claims: TokenClaims,
    kid: KeyId,
    hash: TokenHash,
}

impl DelegationToken {
    /// Starts a root token signed by `authority` (which verifiers must list in `authorities`).
    ///
    /// ```
    /// use agent_handoff::{AgentIdentity, DelegationToken};
    /// use std::time::Duration;
    /// let orchestrator = AgentIdentity::generate("spiffe://acme.example/orchestrator".parse()?);
    /// let planner = AgentIdentity::generate("spiffe://acme.example/agents/planner".parse()?);
    /// let grant = DelegationToken::root(&orchestrator)
    ///     .delegate_to(&planner.public())
    ///     .task("task-42".parse()?)
    ///     .allow("tickets.*", "project/alpha/*")?
    ///     .depth(1)
    ///     .ttl(Duration::from_secs(600))
    ///     .sign()?;
    /// assert_eq!(grant.claimed_subject(), planner.id());
    /// # Ok::<(), agent_handoff::Error>(())
    /// ```
    pub fn root(authority: &AgentIdentity) -> TokenBuilder<'_> {
        TokenBuilder::new(authority, None)
    }

    /// Starts a child token that narrows this one, signed by `holder` (this token's subject,
    /// with the key this token is bound to). The builder refuses to sign anything the parent
    /// does not allow.
    pub fn attenuate<'a>(&'a self, holder: &'a AgentIdentity) -> TokenBuilder<'a> {
        TokenBuilder::new(holder, Some(self))
    }

    /// Decodes a token **without verifying it**: checks size, JWS form, header and claim
    /// syntax only. Use it to inspect a token or to attenuate one you were given; use
    /// [`crate::HandoffVerifier`] to decide whether to trust one.
    pub fn decode(compact: &str) -> Result<DelegationToken, Error> {
        let decoded = jws::decode(compact, Kind::Token).map_err(|rejection| Error::Decode {
            what: "delegation token",
            rejection,
        })?;
        let claims = TokenClaims::parse(&decoded.claims).map_err(|rejection| Error::Decode {
            what: "delegation token",
            rejection,
        })?;
        Ok(DelegationToken {
            kid: decoded.kid,
            hash: TokenHash::of(compact),
            compact: compact.to_owned(),
            claims,
        })
    }

    pub(crate) fn from_parts(
        compact: String,
        claims: TokenClaims,
        kid: KeyId,
        hash: TokenHash,
    ) -> Self {
        DelegationToken {
            compact,
            claims,
            kid,
            hash,
        }
    }

    /// The compact JWS text, to send on the wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.compact
    }

    /// The token id (`jti`).
    #[must_use]
    pub fn id(&self) -> &TokenId {
        &self.claims.jti
    }

    /// SHA-256 of the compact form: what a child's `parent` claim holds.
    #[must_use]
    pub fn hash(&self) -> TokenHash {
        self.hash
    }

    /// The `kid` of the signing key, from the header (unverified).
    #[must_use]
    pub fn claimed_kid(&self) -> &KeyId {
        &self.kid
    }

    /// The delegator (`iss`), as claimed.
    #[must_use]
    pub fn claimed_issuer(&self) -> &AgentId {
        &self.claims.iss
    }

    /// The delegate (`sub`), as claimed.
    #[must_use]
    pub fn claimed_subject(&self) -> &AgentId {
        &self.claims.sub
    }

    /// The key id the delegate must sign with (`cnf.jkt`), as claimed.
    #[must_use]
    pub fn claimed_subject_kid(&self) -> &KeyId {
        &self.claims.cnf.jkt
    }

    /// The task, as claimed.
    #[must_use]
    pub fn claimed_task(&self) -> &TaskId {
        &self.claims.task
    }

    /// The granted capabilities, as claimed.
    #[must_use]
    pub fn claimed_capabilities(&self) -> &[Capability] {
        &self.claims.caps
    }

    /// Further delegations allowed, as claimed.
    #[must_use]
    pub fn claimed_depth(&self) -> u8 {
        self.claims.depth
    }

    /// Who the subject may delegate to, as claimed (`None`: anyone, within depth).
    #[must_use]
    pub fn claimed_delegates(&self) -> Option<&[AgentPattern]> {
        self.claims.delegates.as_deref()
    }

    /// The parent's hash, as claimed (`None` for a root token).
    #[must_use]
    pub fn claimed_parent(&self) -> Option<TokenHash> {
        self.claims.parent
    }

    /// Issued at, as claimed.
    #[must_use]
    pub fn claimed_issued_at(&self) -> UnixTime {
        self.claims.iat
    }

    /// Not before, as claimed (defaults to `iat`).
    #[must_use]
    pub fn claimed_not_before(&self) -> UnixTime {
        self.claims.not_before()
    }

    /// Expires at, as claimed.
    #[must_use]
    pub fn claimed_expiry(&self) -> UnixTime {
        self.claims.exp
    }

    /// The `ext` object as JSON text, as claimed.
    #[must_use]
    pub fn claimed_ext(&self) -> Option<&str> {
        self.claims
            .ext
            .as_deref()
            .map(serde_json::value::RawValue::get)
    }

    /// The decoded claims as pretty JSON (for inspection; unverified).
    #[must_use]
    pub fn claims_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.claims).unwrap_or(serde_json::Value::Null)
    }

    pub(crate) fn claims(&self) -> &TokenClaims {
        &self.claims
    }
}

impl fmt::Debug for DelegationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelegationToken")
            .field("jti", &self.claims.jti)
            .field("iss", &self.claims.iss)
            .field("sub", &self.claims.sub)
            .field("task", &self.claims.task)
            .field("depth", &self.claims.depth)
            .field("exp", &self.claims.exp.as_secs())
            .finish_non_exhaustive()
    }
}

/// Builds and signs a root or child delegation token. Made by [`DelegationToken::root`] and
/// [`DelegationToken::attenuate`].
#[derive(Debug)]
#[must_use]
pub struct TokenBuilder<'a> {
    signer: &'a AgentIdentity,
    parent: Option<&'a DelegationToken>,
    subject: Option<PublicIdentity>,
    task: Option<TaskId>,
    caps: Vec<Capability>,
    depth: Option<u8>,
    delegates: Option<Vec<AgentPattern>>,
    ttl: Option<Duration>,
    issued_at: Option<UnixTime>,
    not_before: Option<UnixTime>,
    ext: Option<String>,
}

const WHAT: &str = "delegation token";

impl<'a> TokenBuilder<'a> {
    fn new(signer: &'a AgentIdentity, parent: Option<&'a DelegationToken>) -> Self {
        TokenBuilder {
            signer,
            parent,
            subject: None,
            task: None,
            caps: Vec::new(),
            depth: None,
            delegates: None,
            ttl: None,
            issued_at: None,
            not_before: None,
            ext: None,
        }
    }

    /// The delegate: its agent id and the key it must sign with (`sub` and `cnf.jkt`).
    pub fn delegate_to(mut self, subject: &PublicIdentity) -> Self {
        self.subject = Some(subject.clone());
        self
    }

    /// The task (required for a root token; a child inherits and may only repeat it).
    pub fn task(mut self, task: TaskId) -> Self {
        self.task = Some(task);
        self
    }

    /// Grants an action pattern on a resource pattern.
    pub fn allow(mut self, action: &str, resource: &str) -> Result<Self, Error> {
        self.caps.push(Capability::new(action, resource)?);
        Ok(self)
    }

    /// Grants a capability (with limits).
    pub fn grant(mut self, capability: Capability) -> Self {
        self.caps.push(capability);
        self
    }

    /// Further delegations the delegate may make (root default 0; child default parent − 1).
    pub fn depth(mut self, depth: u8) -> Self {
        self.depth = Some(depth);
        self
    }

    /// Restricts whom the delegate may delegate to (a child inherits its parent's list).
    pub fn delegates<I, S>(mut self, patterns: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let parsed = patterns
            .into_iter()
            .map(|p| p.as_ref().parse())
            .collect::<Result<Vec<AgentPattern>, Error>>()?;
        self.delegates = Some(parsed);
        Ok(self)
    }

    /// Lifetime from `iat` (root default 15 minutes; a child defaults to its parent's expiry).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Issue time (default: the system clock now).
    pub fn issued_at(mut self, at: UnixTime) -> Self {
        self.issued_at = Some(at);
        self
    }

    /// Not-before time (default: none, meaning `iat`).
    pub fn not_before(mut self, at: UnixTime) -> Self {
        self.not_before = Some(at);
        self
    }

    /// Application data carried verbatim: a JSON object of at most 2 KiB.
    pub fn ext(mut self, ext: &serde_json::Value) -> Result<Self, Error> {
        let text = serde_json::to_string(ext)
            .map_err(|_| Error::build(WHAT, "`ext` could not be serialized"))?;
        check_ext(&text).map_err(|p| Error::build(WHAT, p))?;
        self.ext = Some(text);
        Ok(self)
    }

    /// Checks everything the parent (if any) and the format require, then signs.
    pub fn sign(self) -> Result<DelegationToken, Error> {
        let subject = self.subject.ok_or_else(|| {
            Error::build(WHAT, "no delegate: call `.delegate_to(&delegate.public())`")
        })?;
        if subject.id() == self.signer.id() {
            return Err(Error::build(
                WHAT,
                format!("`{}` cannot delegate to itself", subject.id()),
            ));
        }
        if self.caps.is_empty() || self.caps.len() > MAX_CAPABILITIES {
            return Err(Error::build(
                WHAT,
                format!(
                    "grant 1 to {MAX_CAPABILITIES} capabilities with `.allow(action, resource)`"
                ),
            ));
        }
        let iat = self.issued_at.unwrap_or_else(UnixTime::now);
        let (task, depth, exp, parent_hash, delegates) = match self.parent {
            None => {
                let task = self
                    .task
                    .ok_or_else(|| Error::build(WHAT, "a root token needs `.task(..)`"))?;
                let exp = iat.plus(self.ttl.unwrap_or(DEFAULT_ROOT_TTL));
                (task, self.depth.unwrap_or(0), exp, None, self.delegates)
            }
            Some(parent) => {
                let p = parent.claims();
                if self.signer.id() != &p.sub || self.signer.kid() != &p.cnf.jkt {
                    return Err(Error::build(
                        WHAT,
                        format!(
                            "the parent was granted to `{}` with key `{}`; only that identity can attenuate it",
                            p.sub, p.cnf.jkt
                        ),
                    ));
                }
                if let Some(task) = &self.task {
                    if task != &p.task {
                        return Err(Error::build(
                            WHAT,
                            format!("the task is fixed for the chain: `{}`", p.task),
                        ));
                    }
                }
                if p.depth == 0 {
                    return Err(Error::build(
                        WHAT,
                        "the parent token has depth 0: it may not be delegated",
                    ));
                }
                let depth = self.depth.unwrap_or(p.depth - 1);
                if depth >= p.depth {
                    return Err(Error::build(
                        WHAT,
                        format!(
                            "depth {depth} does not shrink: the parent allows at most {}",
                            p.depth - 1
                        ),
                    ));
                }
                if let Some(allowed) = &p.delegates {
                    if !allowed.iter().any(|pat| pat.matches(subject.id())) {
                        return Err(Error::build(
                            WHAT,
                            format!("the parent does not allow delegating to `{}`", subject.id()),
                        ));
                    }
                }
                if subject.id() == &p.iss {
                    return Err(Error::build(
                        WHAT,
                        format!("delegating back to `{}` would make a cycle", p.iss),
                    ));
                }
                for cap in &self.caps {
                    if !p.caps.iter().any(|pc| pc.covers(cap)) {
                        return Err(Error::build(
                            WHAT,
                            format!("escalation: `{cap}` is not covered by any capability of the parent"),
                        ));
                    }
                }
                let delegates = match (self.delegates, &p.delegates) {
                    (None, inherited) => inherited.clone(),
                    (Some(mine), None) => Some(mine),
                    (Some(mine), Some(theirs)) => {
                        if let Some(wider) =
                            mine.iter().find(|m| !theirs.iter().any(|t| t.covers(m)))
                        {
                            return Err(Error::build(
                                WHAT,
                                format!("escalation: delegate pattern `{wider}` is wider than the parent allows"),
                            ));
                        }
                        Some(mine)
                    }
                };
                let exp = match self.ttl {
                    Some(ttl) => iat.plus(ttl),
                    None => p.exp,
                };
                if exp > p.exp {
                    return Err(Error::build(
                        WHAT,
                        format!("the child would outlive its parent (expires {})", p.exp),
                    ));
                }
                (p.task.clone(), depth, exp, Some(parent.hash()), delegates)
            }
        };
        if depth > MAX_DEPTH {
            return Err(Error::build(
                WHAT,
                format!("depth must be at most {MAX_DEPTH}"),
            ));
        }
        if exp <= iat {
            return Err(Error::build(
                WHAT,
                "the lifetime must be at least one second",
            ));
        }
        if let Some(d) = &delegates {
            if d.is_empty() || d.len() > MAX_DELEGATES {
                return Err(Error::build(
                    WHAT,
                    format!("`delegates` must hold 1 to {MAX_DELEGATES} patterns"),
                ));
            }
        }
        let ext = match self.ext {
            Some(text) => Some(
                serde_json::value::RawValue::from_string(text)
                    .map_err(|_| Error::build(WHAT, "`ext` is not valid JSON"))?,
            ),
            None => None,
        };
        let claims = TokenClaims {
            jti: TokenId::random(),
            iss: self.signer.id().clone(),
            sub: subject.id().clone(),
            cnf: Confirmation {
                jkt: subject.key().kid().clone(),
            },
            task,
            caps: self.caps,
            depth,
            delegates,
            parent: parent_hash,
            iat,
            exp,
            nbf: self.not_before,
            ext,
        };
        let json = serde_json::to_vec(&claims)
            .map_err(|_| Error::build(WHAT, "claims could not be serialized"))?;
        let compact = jws::encode(
            Kind::Token,
            self.signer.kid(),
            &json,
            self.signer.signing_key(),
        );
        if compact.len() > crate::limits::MAX_TOKEN_BYTES {
            return Err(Error::build(
                WHAT,
                format!(
                    "the token is {} bytes; the limit is {}",
                    compact.len(),
                    crate::limits::MAX_TOKEN_BYTES
                ),
            ));
        }
        Ok(DelegationToken {
            hash: TokenHash::of(&compact),
            kid: self.signer.kid().clone(),
            compact,
            claims,
        })
    }
}
