//! Delegation tokens (SPEC section 4): issuing a root grant, attenuating it, and decoding a
//! token without verifying it. Nothing here verifies anything; that is [`crate::HandoffVerifier`]'s
//! job.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::clock::UnixTime;
use crate::error::{Error, Escalation, Fault, Forbidden, Location, Rejection, TaskMismatch};
use crate::grant::{rules, ArgValue, Capability};
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

/// The members of a token's claims that are read before its signature is checked.
#[derive(Deserialize)]
struct Issuer {
    iss: AgentId,
}

/// The one member of a token's claims with a known type that is not `iss`: its id.
#[derive(Deserialize)]
struct Id {
    jti: TokenId,
}

impl TokenClaims {
    /// The token's claimed issuer, read without parsing any other claim, so that the
    /// signature can be checked before the rest is parsed (SPEC section 6 step 5: capabilities
    /// carry regexes and globs, which are compiled when they are parsed). Claims without a
    /// readable `iss` get the fault the full parse gives them [malformed].
    pub(crate) fn issuer(json: &[u8]) -> Result<AgentId, Fault> {
        match serde_json::from_slice::<Issuer>(json) {
            Ok(Issuer { iss }) => Ok(iss),
            Err(e) => Err(TokenClaims::parse(json).err().unwrap_or_else(|| {
                Fault::malformed(format!(
                    "delegation token claims are not valid: {}",
                    crate::wire::json::json_problem(&e)
                ))
            })),
        }
    }

    /// The token's claimed id, read without parsing any other claim (for the audit record of
    /// a denial: what an unverified input claims is never compiled).
    pub(crate) fn claimed_id(json: &[u8]) -> Option<TokenId> {
        serde_json::from_slice::<Id>(json).ok().map(|id| id.jti)
    }

    /// Parses and checks claim syntax (SPEC section 4) [malformed].
    pub(crate) fn parse(json: &[u8]) -> Result<TokenClaims, Fault> {
        let malformed = |problem: String| Fault::malformed(problem);
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
        TokenBuilder::new(authority, Parent::None)
    }

    /// Starts a child token that narrows this one, signed by `holder` (this token's subject,
    /// with the key this token is bound to). The builder refuses to sign anything the parent
    /// does not allow.
    ///
    /// A token does not carry its ancestors, so the no-cycle rule (SPEC section 4 rule 2) is
    /// checked here against this token only; [`attenuate_chain`](Self::attenuate_chain)
    /// checks it against the whole chain, and
    /// [`EnvelopeBuilder::seal`](crate::EnvelopeBuilder::seal) checks every chain it seals.
    pub fn attenuate<'a>(&'a self, holder: &'a AgentIdentity) -> TokenBuilder<'a> {
        TokenBuilder::new(holder, Parent::Token(self))
    }

    /// Starts a child token that narrows the last token of `chain` (the whole chain, root
    /// first, as the holder received it), signed by `holder`. Like
    /// [`attenuate`](Self::attenuate), and [`sign`](TokenBuilder::sign) also checks the
    /// chain itself and refuses a delegate that already appears anywhere in it (a cycle the
    /// verifier would refuse with `delegation_forbidden`), or an empty chain.
    ///
    /// ```
    /// # use agent_handoff::*;
    /// # let orchestrator = AgentIdentity::generate("spiffe://acme.example/orchestrator".parse()?);
    /// # let planner = AgentIdentity::generate("spiffe://acme.example/agents/planner".parse()?);
    /// # let executor = AgentIdentity::generate("spiffe://acme.example/agents/executor".parse()?);
    /// let root = DelegationToken::root(&orchestrator).delegate_to(&planner.public())
    ///     .task("task-42".parse()?).allow("tickets.*", "project/alpha/*")?.depth(2).sign()?;
    /// let second = root.attenuate(&planner).delegate_to(&executor.public())
    ///     .allow("tickets.read", "project/alpha/*")?.sign()?;
    /// let chain = [root, second];
    /// // Back to the orchestrator: a cycle through the root, which `attenuate` alone cannot see.
    /// let back = DelegationToken::attenuate_chain(&chain, &executor)
    ///     .delegate_to(&orchestrator.public())
    ///     .allow("tickets.read", "project/alpha/1")?
    ///     .sign();
    /// assert!(back.unwrap_err().to_string().contains("would make a cycle"));
    /// # Ok::<(), agent_handoff::Error>(())
    /// ```
    pub fn attenuate_chain<'a>(
        chain: &'a [DelegationToken],
        holder: &'a AgentIdentity,
    ) -> TokenBuilder<'a> {
        TokenBuilder::new(holder, Parent::Chain(chain))
    }

    /// Decodes a token **without verifying it**: checks size, JWS form, header and claim
    /// syntax only. Use it to inspect a token or to attenuate one you were given; use
    /// [`crate::HandoffVerifier`] to decide whether to trust one.
    pub fn decode(compact: &str) -> Result<DelegationToken, Error> {
        let err = |fault| Error::Decode {
            what: "delegation token",
            rejection: Rejection::from_fault(fault, Location::Envelope),
        };
        let decoded = jws::decode(compact, Kind::Token).map_err(err)?;
        let claims = TokenClaims::parse(&decoded.claims).map_err(err)?;
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
    parent: Parent<'a>,
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

/// What a [`TokenBuilder`] attenuates.
#[derive(Debug, Clone, Copy)]
enum Parent<'a> {
    /// Nothing: a root token.
    None,
    /// One token, whose ancestors are unknown.
    Token(&'a DelegationToken),
    /// The whole chain, root first; the last token is the parent.
    Chain(&'a [DelegationToken]),
}

const WHAT: &str = "delegation token";

impl<'a> TokenBuilder<'a> {
    fn new(signer: &'a AgentIdentity, parent: Parent<'a>) -> Self {
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

    /// Checks everything the format and the parent require, then signs. The parent's rules
    /// are the verifier's own ([`crate::grant`]'s rule book, SPEC section 4 rules 1 to 4):
    /// binding, depth, `delegates`, no self-delegation, no cycle through the earlier links
    /// given (only the parent for [`DelegationToken::attenuate`], the whole chain for
    /// [`DelegationToken::attenuate_chain`]), no escalation, the same task.
    pub fn sign(self) -> Result<DelegationToken, Error> {
        let subject = self.subject.as_ref().ok_or_else(|| {
            Error::build(WHAT, "no delegate: call `.delegate_to(&delegate.public())`")
        })?;
        if self.caps.is_empty() || self.caps.len() > MAX_CAPABILITIES {
            return Err(Error::build(
                WHAT,
                format!(
                    "grant 1 to {MAX_CAPABILITIES} capabilities with `.allow(action, resource)`"
                ),
            ));
        }
        let earlier = self.earlier_links()?;
        let parent = earlier.last();
        let claims = self.claims(subject, parent)?;
        let problem = |fault| Error::build(WHAT, token_problem(fault, parent.map(|p| p.claims())));
        rules::not_self_delegated(&claims).map_err(problem)?;
        if let Some(parent) = parent {
            rules::follows(parent, &claims, self.signer.kid()).map_err(problem)?;
            rules::narrows(parent.claims(), &claims, earlier).map_err(problem)?;
        }
        check_format(&claims)?;
        self.seal_claims(claims)
    }

    /// The links before the new one, root first: none for a root, the parent for
    /// [`DelegationToken::attenuate`], the whole chain (checked here) for
    /// [`DelegationToken::attenuate_chain`].
    fn earlier_links(&self) -> Result<&'a [DelegationToken], Error> {
        match self.parent {
            Parent::None => Ok(&[]),
            Parent::Token(parent) => Ok(std::slice::from_ref(parent)),
            Parent::Chain([]) => Err(Error::build(
                WHAT,
                "`attenuate_chain` needs the chain that ends in the parent, root first; it is empty",
            )),
            Parent::Chain(chain) => {
                rules::chain(chain).map_err(|(i, fault)| {
                    Error::build(
                        WHAT,
                        format!("the chain given is not one the verifier accepts: link {i}: {fault}"),
                    )
                })?;
                Ok(chain)
            }
        }
    }

    /// The claims asked for, with the defaults: a root needs a task; a child inherits its
    /// parent's task, `delegates` and expiry, and its depth defaults to the parent's minus one.
    fn claims(
        &self,
        subject: &PublicIdentity,
        parent: Option<&DelegationToken>,
    ) -> Result<TokenClaims, Error> {
        let iat = self.issued_at.unwrap_or_else(UnixTime::now);
        let p = parent.map(DelegationToken::claims);
        let task = match (&self.task, p) {
            (Some(task), _) => task.clone(),
            (None, Some(p)) => p.task.clone(),
            (None, None) => return Err(Error::build(WHAT, "a root token needs `.task(..)`")),
        };
        let exp = match (self.ttl, p) {
            (Some(ttl), _) => iat.plus(ttl),
            (None, Some(p)) => p.exp,
            (None, None) => iat.plus(DEFAULT_ROOT_TTL),
        };
        let ext = match &self.ext {
            Some(text) => Some(
                serde_json::value::RawValue::from_string(text.clone())
                    .map_err(|_| Error::build(WHAT, "`ext` is not valid JSON"))?,
            ),
            None => None,
        };
        Ok(TokenClaims {
            jti: TokenId::random(),
            iss: self.signer.id().clone(),
            sub: subject.id().clone(),
            cnf: Confirmation {
                jkt: subject.key().kid().clone(),
            },
            task,
            caps: self.caps.clone(),
            depth: self
                .depth
                .unwrap_or_else(|| p.map_or(0, |p| p.depth.saturating_sub(1))),
            delegates: self
                .delegates
                .clone()
                .or_else(|| p.and_then(|p| p.delegates.clone())),
            parent: parent.map(DelegationToken::hash),
            iat,
            exp,
            nbf: self.not_before,
            ext,
        })
    }

    /// Signs the checked claims and refuses a token over the size limit.
    fn seal_claims(self, claims: TokenClaims) -> Result<DelegationToken, Error> {
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

/// The format's own limits on the claims a builder made (SPEC section 4), with the builder's
/// messages; then the parser's syntax check, so that nothing is signed that a parser refuses.
fn check_format(claims: &TokenClaims) -> Result<(), Error> {
    if claims.depth > MAX_DEPTH {
        return Err(Error::build(
            WHAT,
            format!("depth must be at most {MAX_DEPTH}"),
        ));
    }
    if claims.exp <= claims.iat {
        return Err(Error::build(
            WHAT,
            "the lifetime must be at least one second",
        ));
    }
    if let Some(d) = &claims.delegates {
        if d.is_empty() || d.len() > MAX_DELEGATES {
            return Err(Error::build(
                WHAT,
                format!("`delegates` must hold 1 to {MAX_DELEGATES} patterns"),
            ));
        }
    }
    claims.check_syntax().map_err(|p| Error::build(WHAT, p))
}

/// A fault of the rule book, told as the builder tells it: what the caller asked for and what
/// the parent (if any) allows.
fn token_problem(fault: Fault, parent: Option<&TokenClaims>) -> String {
    match (&fault, parent) {
        (Fault::DelegationForbidden(Forbidden::SelfDelegation { agent }), _) => {
            format!("`{agent}` cannot delegate to itself")
        }
        (Fault::BrokenChain(_), Some(p)) => format!(
            "the parent was granted to `{}` with key `{}`; only that identity can attenuate it",
            p.sub, p.cnf.jkt
        ),
        (Fault::TaskMismatch(TaskMismatch::Link { parent, .. }), _) => {
            format!("the task is fixed for the chain: `{parent}`")
        }
        (Fault::DelegationForbidden(Forbidden::DepthExhausted { .. }), _) => {
            "the parent token has depth 0: it may not be delegated".to_owned()
        }
        (Fault::Escalation(Escalation::Depth { depth, parent }), _) => format!(
            "depth {depth} does not shrink: the parent allows at most {}",
            parent.saturating_sub(1)
        ),
        (Fault::DelegationForbidden(Forbidden::NotADelegate { subject }), _) => {
            format!("the parent does not allow delegating to `{subject}`")
        }
        (Fault::DelegationForbidden(Forbidden::Cycle { agent }), _) => {
            format!("delegating back to `{agent}` would make a cycle")
        }
        (Fault::Escalation(Escalation::Capability { capability }), _) => {
            format!("escalation: `{capability}` is not covered by any capability of the parent")
        }
        (Fault::Escalation(x @ Escalation::Argument { .. }), _) => format!("escalation: {x}"),
        (Fault::Escalation(Escalation::Delegate { pattern }), _) => {
            format!("escalation: delegate pattern `{pattern}` is wider than the parent allows")
        }
        (Fault::Escalation(Escalation::Expiry { parent, .. }), _) => {
            format!("the child would outlive its parent (expires {parent})")
        }
        _ => fault.to_string(),
    }
}
