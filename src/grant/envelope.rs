//! Handoff envelopes (SPEC section 5): building and sealing, and decoding without verifying.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::clock::UnixTime;
use crate::error::{ChainBreak, Error, Fault, Location, Rejection, SenderMismatch, TaskMismatch};
use crate::grant::{rules, ArgValue, DelegationToken, Intent};
use crate::keys::{AgentIdentity, KeyId};
use crate::limits::{DEFAULT_ENVELOPE_TTL, MAX_CHAIN_LINKS};
use crate::wire::json::Text;
use crate::wire::jws::{self, Kind};
use crate::wire::{AgentId, TaskId, TokenId};

/// The `digest` claim: `sha-256:` + base64url(SHA-256(payload)).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PayloadDigest([u8; 32]);

impl PayloadDigest {
    /// The digest of a payload.
    #[must_use]
    pub fn of(payload: &[u8]) -> PayloadDigest {
        PayloadDigest(Sha256::digest(payload).into())
    }

    /// The wire form, `sha-256:<base64url>`.
    #[must_use]
    pub fn to_wire(&self) -> String {
        format!("sha-256:{}", crate::wire::b64::b64_encode(&self.0))
    }
}

impl fmt::Debug for PayloadDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_wire())
    }
}

impl Serialize for PayloadDigest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_wire())
    }
}

impl<'de> Deserialize<'de> for PayloadDigest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.strip_prefix("sha-256:")
            .and_then(crate::wire::b64::b64_decode)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(PayloadDigest)
            .ok_or_else(|| {
                serde::de::Error::custom("`digest` must be `sha-256:` and a base64url SHA-256 hash")
            })
    }
}

/// The claims of a handoff envelope, exactly as on the wire. `C` is how a chain token is
/// held: owned (`String`) in a [`HandoffEnvelope`], or borrowed from the decoded claims
/// ([`Text`]) while the verifier checks them, so that the chain is not copied.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnvelopeClaims<C = String> {
    pub jti: TokenId,
    pub iss: AgentId,
    pub aud: AgentId,
    pub task: TaskId,
    pub intent: Intent,
    pub digest: PayloadDigest,
    #[serde(deserialize_with = "crate::wire::json::numeric_date")]
    pub iat: UnixTime,
    #[serde(deserialize_with = "crate::wire::json::numeric_date")]
    pub exp: UnixTime,
    pub chain: Vec<C>,
}

/// Envelope claims whose chain tokens are borrowed from the decoded claims JSON.
pub(crate) type BorrowedEnvelopeClaims<'a> = EnvelopeClaims<Text<'a>>;

impl<'a, C: Deserialize<'a>> EnvelopeClaims<C> {
    /// Parses and checks claim syntax (SPEC section 5) [malformed].
    pub(crate) fn parse(json: &'a [u8]) -> Result<EnvelopeClaims<C>, Fault> {
        let claims: EnvelopeClaims<C> = serde_json::from_slice(json).map_err(|e| {
            Fault::malformed(format!(
                "envelope claims are not valid: {}",
                crate::wire::json::json_problem(&e)
            ))
        })?;
        if claims.chain.is_empty() {
            return Err(Fault::malformed(
                "`chain` is empty: an envelope carries at least one delegation token",
            ));
        }
        if claims.exp <= claims.iat {
            return Err(Fault::malformed("`exp` must be later than `iat`"));
        }
        Ok(claims)
    }
}

/// Whether the sender acts on its own authority or hands authority to the recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HandoffMode {
    /// The chain ends at the sender: it asks the recipient for work on its own authority, and
    /// the recipient gains nothing it could reuse.
    Request,
    /// The chain's last link delegates from the sender to the recipient: the recipient may act
    /// on it and, within `depth`, delegate further.
    Delegation,
}

impl HandoffMode {
    /// `request` or `delegation`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffMode::Request => "request",
            HandoffMode::Delegation => "delegation",
        }
    }
}

/// A sealed handoff envelope: the signed message that travels beside the payload.
///
/// Like [`DelegationToken`], a decoded envelope is **not verified**; its accessors say
/// `claimed_…`. Its `Debug` output shows ids, never the signed bytes.
#[derive(Clone)]
pub struct HandoffEnvelope {
    compact: String,
    claims: EnvelopeClaims,
    kid: KeyId,
    mode: Option<HandoffMode>,
}

impl HandoffEnvelope {
    /// Starts an envelope from `sender`.
    ///
    /// ```
    /// # use agent_handoff::*;
    /// # let orchestrator = AgentIdentity::generate("spiffe://acme.example/orchestrator".parse()?);
    /// # let planner = AgentIdentity::generate("spiffe://acme.example/agents/planner".parse()?);
    /// # let executor = AgentIdentity::generate("spiffe://acme.example/agents/executor".parse()?);
    /// # let grant = DelegationToken::root(&orchestrator).delegate_to(&planner.public())
    /// #     .task("task-42".parse()?).allow("tickets.*", "project/alpha/*")?.sign()?;
    /// let envelope = HandoffEnvelope::builder(&planner)
    ///     .to(executor.id())
    ///     .intent("tickets.read", "project/alpha/123")?
    ///     .payload(b"{\"ticket\":123}")
    ///     .chain([grant])
    ///     .seal()?;
    /// assert_eq!(envelope.mode(), Some(HandoffMode::Request));
    /// # Ok::<(), agent_handoff::Error>(())
    /// ```
    pub fn builder(sender: &AgentIdentity) -> EnvelopeBuilder<'_> {
        EnvelopeBuilder {
            sender,
            recipient: None,
            task: None,
            intent: None,
            digest: PayloadDigest::of(b""),
            chain: Vec::new(),
            ttl: DEFAULT_ENVELOPE_TTL,
            issued_at: None,
        }
    }

    /// Decodes an envelope **without verifying it** (size, JWS form, header, claim syntax).
    pub fn decode(compact: &str) -> Result<HandoffEnvelope, Error> {
        let err = |fault| Error::Decode {
            what: "handoff envelope",
            rejection: Rejection::from_fault(fault, Location::Envelope),
        };
        let decoded = jws::decode(compact, Kind::Envelope).map_err(err)?;
        let claims = EnvelopeClaims::<String>::parse(&decoded.claims).map_err(err)?;
        Ok(HandoffEnvelope {
            compact: compact.to_owned(),
            claims,
            kid: decoded.kid,
            mode: None,
        })
    }

    /// The compact JWS text, to send on the wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.compact
    }

    /// The compact JWS text.
    #[must_use]
    pub fn into_string(self) -> String {
        self.compact
    }

    /// The envelope id (`jti`), the replay nonce.
    #[must_use]
    pub fn id(&self) -> &TokenId {
        &self.claims.jti
    }

    /// The form the builder sealed (`None` for a decoded envelope, whose form is unverified).
    #[must_use]
    pub fn mode(&self) -> Option<HandoffMode> {
        self.mode
    }

    /// The `kid` from the header, as claimed.
    #[must_use]
    pub fn claimed_kid(&self) -> &KeyId {
        &self.kid
    }

    /// The sender (`iss`), as claimed.
    #[must_use]
    pub fn claimed_sender(&self) -> &AgentId {
        &self.claims.iss
    }

    /// The recipient (`aud`), as claimed.
    #[must_use]
    pub fn claimed_recipient(&self) -> &AgentId {
        &self.claims.aud
    }

    /// The task, as claimed.
    #[must_use]
    pub fn claimed_task(&self) -> &TaskId {
        &self.claims.task
    }

    /// The intent, as claimed.
    #[must_use]
    pub fn claimed_intent(&self) -> &Intent {
        &self.claims.intent
    }

    /// Issued at, as claimed.
    #[must_use]
    pub fn claimed_issued_at(&self) -> UnixTime {
        self.claims.iat
    }

    /// Expires at, as claimed.
    #[must_use]
    pub fn claimed_expiry(&self) -> UnixTime {
        self.claims.exp
    }

    /// The chain's compact tokens, as carried.
    #[must_use]
    pub fn claimed_chain(&self) -> &[String] {
        &self.claims.chain
    }

    /// The decoded claims as JSON (for inspection; unverified).
    #[must_use]
    pub fn claims_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.claims).unwrap_or(serde_json::Value::Null)
    }
}

impl fmt::Debug for HandoffEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandoffEnvelope")
            .field("jti", &self.claims.jti)
            .field("iss", &self.claims.iss)
            .field("aud", &self.claims.aud)
            .field("task", &self.claims.task)
            .field("intent", &format_args!("{}", self.claims.intent))
            .field("links", &self.claims.chain.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for HandoffEnvelope {
    /// The compact JWS text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.compact)
    }
}

/// Builds and seals a [`HandoffEnvelope`]. Made by [`HandoffEnvelope::builder`].
#[derive(Debug)]
#[must_use]
pub struct EnvelopeBuilder<'a> {
    sender: &'a AgentIdentity,
    recipient: Option<AgentId>,
    task: Option<TaskId>,
    intent: Option<Intent>,
    digest: PayloadDigest,
    chain: Vec<DelegationToken>,
    ttl: Duration,
    issued_at: Option<UnixTime>,
}

const WHAT: &str = "handoff envelope";

impl EnvelopeBuilder<'_> {
    /// The recipient (`aud`).
    pub fn to(mut self, recipient: &AgentId) -> Self {
        self.recipient = Some(recipient.clone());
        self
    }

    /// The task (default: the chain's task; if given, it must equal it).
    pub fn task(mut self, task: TaskId) -> Self {
        self.task = Some(task);
        self
    }

    /// The concrete intent: an action on a resource (no `*`).
    pub fn intent(mut self, action: &str, resource: &str) -> Result<Self, Error> {
        self.intent = Some(Intent::new(action, resource)?);
        Ok(self)
    }

    /// A full intent, with arguments.
    pub fn with_intent(mut self, intent: Intent) -> Self {
        self.intent = Some(intent);
        self
    }

    /// Adds an argument to the intent (call after [`intent`](Self::intent)).
    pub fn arg(mut self, name: &str, value: impl Into<ArgValue>) -> Self {
        if let Some(intent) = self.intent.take() {
            self.intent = Some(intent.arg(name, value));
        }
        self
    }

    /// The payload the envelope is bound to (default: empty). Only its digest is kept.
    pub fn payload(mut self, payload: &[u8]) -> Self {
        self.digest = PayloadDigest::of(payload);
        self
    }

    /// The delegation chain, root first.
    pub fn chain<I>(mut self, chain: I) -> Self
    where
        I: IntoIterator,
        I::Item: std::borrow::Borrow<DelegationToken>,
    {
        self.chain = chain
            .into_iter()
            .map(|t| std::borrow::Borrow::<DelegationToken>::borrow(&t).clone())
            .collect();
        self
    }

    /// Lifetime (default 60 s; verifiers allow at most 120 s unless configured otherwise).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Issue time (default: the system clock now).
    pub fn issued_at(mut self, at: UnixTime) -> Self {
        self.issued_at = Some(at);
        self
    }

    /// Checks the chain and its binding to the sender with the verifier's own rules (the
    /// rule book of [`crate::grant`]): the chain is one chain, root first (SPEC section 4 rule
    /// 1), each link narrows its parent with no cycle through any earlier link, no
    /// self-delegation and one task (rules 2 to 4), and it ends at the sender or delegates
    /// from the sender to the recipient with the sender's key (section 5). Then signs with a
    /// fresh random `jti`. It checks no signature, and leaves to the verifier what needs its
    /// trust bundle or clock (trusted root, registered keys, federation, time windows).
    pub fn seal(self) -> Result<HandoffEnvelope, Error> {
        let recipient = self
            .recipient
            .ok_or_else(|| Error::build(WHAT, "no recipient: call `.to(recipient_id)`"))?;
        let intent = self
            .intent
            .ok_or_else(|| Error::build(WHAT, "no intent: call `.intent(action, resource)`"))?;
        intent.check_numbers()?;
        let Some(root) = self.chain.first() else {
            return Err(Error::build(
                WHAT,
                "no chain: call `.chain([grant, ...])` with the tokens, root first",
            ));
        };
        let me = self.sender;
        let problem = |fault| Error::build(WHAT, chain_problem(fault, &self.chain, me, &recipient));
        rules::chain_length(self.chain.len(), MAX_CHAIN_LINKS).map_err(problem)?;
        rules::chain(&self.chain).map_err(|(i, fault)| link_problem(i, fault, &self.chain))?;
        let task = self
            .task
            .clone()
            .unwrap_or_else(|| root.claimed_task().clone());
        rules::chain_task(&task, &self.chain).map_err(problem)?;
        let mode =
            rules::sender_binding(&self.chain, me.id(), &recipient, me.kid()).map_err(problem)?;
        let iat = self.issued_at.unwrap_or_else(UnixTime::now);
        let exp = iat.plus(self.ttl);
        if exp <= iat {
            return Err(Error::build(
                WHAT,
                "the lifetime must be at least one second",
            ));
        }
        let claims = EnvelopeClaims {
            jti: TokenId::random(),
            iss: me.id().clone(),
            aud: recipient,
            task,
            intent,
            digest: self.digest,
            iat,
            exp,
            chain: self.chain.iter().map(|t| t.as_str().to_owned()).collect(),
        };
        sign(claims, me, mode)
    }
}

/// Signs the claims and refuses an envelope over the size limit.
fn sign(
    claims: EnvelopeClaims,
    me: &AgentIdentity,
    mode: HandoffMode,
) -> Result<HandoffEnvelope, Error> {
    let json = serde_json::to_vec(&claims)
        .map_err(|_| Error::build(WHAT, "claims could not be serialized"))?;
    let compact = jws::encode(Kind::Envelope, me.kid(), &json, me.signing_key());
    if compact.len() > crate::limits::MAX_ENVELOPE_BYTES {
        return Err(Error::build(
            WHAT,
            format!(
                "the envelope is {} bytes; the limit is {}",
                compact.len(),
                crate::limits::MAX_ENVELOPE_BYTES
            ),
        ));
    }
    Ok(HandoffEnvelope {
        compact,
        claims,
        kid: me.kid().clone(),
        mode: Some(mode),
    })
}

/// A fault of link `i` of the chain given to the builder, told as the builder tells it.
fn link_problem(i: usize, fault: Fault, chain: &[DelegationToken]) -> Error {
    let problem = match (
        &fault,
        i.checked_sub(1).and_then(|p| chain.get(p)),
        chain.get(i),
    ) {
        (Fault::BrokenChain(ChainBreak::RootHasParent), _, _) => {
            "the chain must start with the root token".to_owned()
        }
        (Fault::BrokenChain(ChainBreak::ParentHash), Some(p), Some(c)) => format!(
            "token `{}` is not a child of `{}`: pass the chain root first, in order",
            c.id(),
            p.id()
        ),
        (_, _, Some(c)) => format!(
            "link {i} (token `{}`) would be refused by the verifier: {fault}",
            c.id()
        ),
        _ => fault.to_string(),
    };
    Error::build(WHAT, problem)
}

/// A fault of the chain's task or its binding to the sender, told as the builder tells it.
fn chain_problem(
    fault: Fault,
    chain: &[DelegationToken],
    me: &AgentIdentity,
    recipient: &AgentId,
) -> String {
    match &fault {
        Fault::ChainTooLong { max, .. } => format!("the chain has more than {max} links"),
        Fault::TaskMismatch(TaskMismatch::Envelope { envelope, chain }) => {
            format!("the chain is for task `{chain}`, not `{envelope}`")
        }
        Fault::SenderMismatch(SenderMismatch::Key { kid, bound }) => format!(
            "the chain was granted to key `{bound}`, but this identity has key `{kid}`"
        ),
        Fault::SenderMismatch(SenderMismatch::NotBound { .. }) => match chain.last() {
            Some(last) => format!(
                "the chain ends with `{}` -> `{}`: it must end at the sender `{}` (a request) or delegate from the sender to the recipient `{}`",
                last.claimed_issuer(),
                last.claimed_subject(),
                me.id(),
                recipient
            ),
            None => fault.to_string(),
        },
        _ => fault.to_string(),
    }
}
