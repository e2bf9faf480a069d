//! Faults: what exactly is wrong with an input, as a value.
//!
//! A [`Fault`] is decided by one rule of the SPEC (the wire layer for bytes, the rule book in
//! [`crate::grant`] for claims, the verifier for keys, stores and policy). Its
//! [`reason`](Fault::reason) is the stable code of SPEC section 7, derived from the variant; its
//! `Display` is the text people read. A [`Rejection`](crate::Rejection) is a fault plus where in
//! the input it was found.
//!
//! Claimed values (ids, key ids, capabilities, intents) are kept as their text: this module
//! sits below the types that parse them, so that every layer can produce a fault. `Display`
//! shows each of them escaped (control, bidirectional and invisible characters as `\u{..}`).

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::clock::UnixTime;
use crate::error::Reason;
use crate::escape::Escaped;

/// What is wrong with an input, with the values that show it.
///
/// The set grows as the SPEC grows, so match with a wildcard arm. Build one in a custom
/// verifier or transport binding with [`Rejection::from_fault`](crate::Rejection::from_fault),
/// or [`Rejection::new`](crate::Rejection::new) for a reason and free text.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The input is larger than the limit for its kind (SPEC section 2; `too_large`).
    TooLarge {
        /// The kind of input.
        what: Credential,
        /// Its size, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The bytes are not well-formed: JWS form, base64url, JSON or claim syntax (SPEC sections
    /// 1 to 5; `malformed`). The text describes the bytes; it never echoes a claimed value
    /// except a JSON member name.
    Malformed(Cow<'static, str>),
    /// The JWS `alg` is not `EdDSA` or `Ed25519` (`unsupported_algorithm`).
    UnsupportedAlgorithm {
        /// The `alg` claimed (at most 32 characters).
        alg: String,
    },
    /// The JWS `typ` is missing or not the one of this kind of input (`wrong_type`).
    WrongType {
        /// The kind of input expected.
        what: Credential,
        /// The `typ` claimed (at most 40 characters), if any.
        typ: Option<String>,
    },
    /// The JWS header has a member other than `alg`, `typ` and `kid` (`forbidden_header`).
    ForbiddenHeader {
        /// The first such member's name (at most 32 characters).
        member: String,
    },
    /// No key is registered for the signer and the header's `kid` (`unknown_key`).
    UnknownKey {
        /// The `kid` claimed.
        kid: String,
        /// Who signed: the envelope's sender or a link's issuer.
        role: Signer,
        /// The agent claimed to have signed.
        agent: String,
    },
    /// A link's `cnf.jkt` names no key registered for its subject (`unknown_key`).
    UnknownSubjectKey {
        /// The `cnf.jkt` claimed.
        jkt: String,
        /// The link's subject.
        subject: String,
    },
    /// The root token's issuer is not a trusted authority (`untrusted_root`).
    UntrustedRoot {
        /// The root's issuer.
        issuer: String,
    },
    /// A signature does not verify (strict Ed25519; `bad_signature`). Which bytes or why is
    /// never said.
    BadSignature {
        /// What was signed.
        what: Credential,
    },
    /// Not in force yet: `now < max(iat, nbf) - leeway` (SPEC section 4, *time claims*)
    /// (`not_yet_valid`).
    NotYetValid {
        /// The later of `iat` and `nbf`.
        from: UnixTime,
        /// The verifier's time.
        now: UnixTime,
        /// The clock skew tolerated.
        leeway: Duration,
    },
    /// No longer in force: `now >= exp + leeway` (`expired`).
    Expired {
        /// The claimed expiry.
        exp: UnixTime,
        /// The verifier's time.
        now: UnixTime,
        /// The clock skew tolerated.
        leeway: Duration,
    },
    /// The lifetime, `exp - min(iat, nbf)`, is longer than the verifier allows (`ttl_too_long`).
    TtlTooLong {
        /// The lifetime, in seconds.
        lifetime: u64,
        /// The verifier's maximum.
        max: Duration,
    },
    /// The envelope is addressed to another agent (SPEC section 6 step 3; `wrong_audience`).
    WrongAudience {
        /// The `aud` claimed.
        claimed: String,
        /// The verifier's own id.
        me: String,
    },
    /// The chain has more links than the verifier allows (`chain_too_long`).
    ChainTooLong {
        /// The number of links.
        links: usize,
        /// The verifier's maximum.
        max: usize,
    },
    /// A link does not follow from its parent (SPEC section 4 rule 1; `broken_chain`).
    BrokenChain(ChainBreak),
    /// A link delegates where it may not (SPEC section 4 rule 2; `delegation_forbidden`).
    DelegationForbidden(Forbidden),
    /// A link grants more than its parent (SPEC section 4 rule 3; `escalation`).
    Escalation(Escalation),
    /// Links, or the envelope and its chain, name different tasks (`task_mismatch`).
    TaskMismatch(TaskMismatch),
    /// A link crosses trust domains the verifier does not federate (SPEC section 4 rule 5)
    /// (`cross_domain`).
    CrossDomain {
        /// The link's issuer.
        issuer: String,
        /// The link's subject, in another trust domain.
        subject: String,
    },
    /// The envelope's sender is not bound to the chain's end (SPEC section 5)
    /// (`sender_mismatch`).
    SenderMismatch(SenderMismatch),
    /// The envelope's intent is not the one the route requires (SPEC section 6 step 4b)
    /// (`intent_not_granted`).
    IntentNotRequired {
        /// The intent claimed (action and resource).
        claimed: String,
        /// The intent the route requires.
        required: String,
    },
    /// The intent is not covered by a capability of the chain's last link, arguments within
    /// its limits (SPEC section 6 step 6; `intent_not_granted`).
    IntentNotGranted {
        /// The intent claimed (action and resource).
        intent: String,
        /// When a capability's action and resource match but its arguments fail: which
        /// argument failed which constraint (values escaped and cut short).
        argument: Option<String>,
    },
    /// The payload does not match the envelope's digest (`payload_mismatch`).
    PayloadMismatch,
    /// A token, the task or an agent is revoked (SPEC section 6 step 8; `revoked`).
    Revoked(Revocation),
    /// The request-time policy denied the handoff (`policy_denied`).
    PolicyDenied {
        /// The rule that decided.
        rule: String,
    },
    /// The envelope was accepted before (`replayed`).
    Replayed {
        /// The envelope's `jti`.
        envelope: String,
    },
    /// A store could not answer, or an accepted handoff could not be recorded: the verifier
    /// fails closed (`unavailable`).
    Unavailable(Unavailable),
    /// A fault decided outside this crate's rules, by a transport binding or another caller,
    /// with its reason code and a text for people (made by
    /// [`Rejection::new`](crate::Rejection::new)).
    Binding {
        /// The reason code.
        reason: Reason,
        /// The text for people; shown escaped.
        detail: Cow<'static, str>,
    },
}

/// The kind of signed input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Credential {
    /// A delegation token (`agent-delegation+jwt`).
    Token,
    /// A handoff envelope (`agent-handoff+jwt`).
    Envelope,
}

impl Credential {
    /// `delegation token` or `handoff envelope`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Credential::Token => "delegation token",
            Credential::Envelope => "handoff envelope",
        }
    }

    /// The JWS `typ` of this kind.
    #[must_use]
    pub const fn typ(self) -> &'static str {
        match self {
            Credential::Token => "agent-delegation+jwt",
            Credential::Envelope => "agent-handoff+jwt",
        }
    }

    const fn short(self) -> &'static str {
        match self {
            Credential::Token => "token",
            Credential::Envelope => "envelope",
        }
    }
}

/// Who signed what a key was looked up for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signer {
    /// The envelope's sender (`iss`).
    Sender,
    /// A link's issuer (`iss`).
    Issuer,
}

impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signer::Sender => "sender",
            Signer::Issuer => "issuer",
        })
    }
}

/// How a link fails to follow from its parent (SPEC section 4 rule 1; `broken_chain`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainBreak {
    /// The first link has a `parent`: it is not a root.
    RootHasParent,
    /// `parent` is not the hash of the previous link.
    ParentHash,
    /// The issuer is not the previous link's subject.
    Issuer {
        /// The link's issuer.
        issuer: String,
        /// The previous link's subject.
        previous_subject: String,
    },
    /// The header `kid` is not the key the previous link binds (`cnf.jkt`).
    Key {
        /// The link's header `kid`.
        kid: String,
        /// The previous link's `cnf.jkt`.
        bound: String,
    },
}

/// Why a link may not delegate as it does (SPEC section 4 rule 2; `delegation_forbidden`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Forbidden {
    /// The link's subject is its issuer.
    SelfDelegation {
        /// The agent.
        agent: String,
    },
    /// The parent grants depth 0.
    DepthExhausted {
        /// The parent's subject, which may not delegate.
        holder: String,
    },
    /// The parent's `delegates` do not match the link's subject.
    NotADelegate {
        /// The link's subject.
        subject: String,
    },
    /// The link's subject is the issuer or subject of an earlier link.
    Cycle {
        /// The agent that appears twice.
        agent: String,
    },
}

/// How a link grants more than its parent (SPEC section 4 rule 3; `escalation`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Escalation {
    /// `depth` is not below the parent's.
    Depth {
        /// The link's depth.
        depth: u8,
        /// The parent's depth.
        parent: u8,
    },
    /// The link expires after its parent.
    Expiry {
        /// The link's `exp`.
        exp: UnixTime,
        /// The parent's `exp`.
        parent: UnixTime,
    },
    /// A capability is covered by no capability of the parent.
    Capability {
        /// The wider capability.
        capability: String,
    },
    /// A capability's action and resource are covered by a parent capability, but one of its
    /// arguments is not (SPEC section 3.2; the first such parent capability is named).
    Argument {
        /// The wider capability.
        capability: String,
        /// Which argument, and both constraints on it (escaped and cut short).
        detail: String,
    },
    /// The parent restricts `delegates`; the link has none.
    DelegatesDropped,
    /// A `delegates` pattern is covered by no pattern of the parent.
    Delegate {
        /// The wider pattern.
        pattern: String,
    },
}

/// Which task claims differ (`task_mismatch`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskMismatch {
    /// A link's task differs from its parent's (SPEC section 4 rule 4).
    Link {
        /// The link's task.
        task: String,
        /// The parent's task.
        parent: String,
    },
    /// The envelope's task differs from the chain's (SPEC section 5).
    Envelope {
        /// The envelope's task.
        envelope: String,
        /// The chain's task.
        chain: String,
    },
}

/// How the envelope's sender fails to be bound to the chain (SPEC section 5)
/// (`sender_mismatch`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SenderMismatch {
    /// The envelope is signed with another key than the one the chain binds.
    Key {
        /// The envelope's header `kid`.
        kid: String,
        /// The key the chain binds.
        bound: String,
    },
    /// The sender is neither the last link's subject (a request) nor its issuer delegating to
    /// the recipient (a delegation).
    NotBound {
        /// The envelope's sender.
        sender: String,
        /// The last link's subject.
        last_subject: String,
    },
}

/// What is revoked (SPEC section 6 step 8; `revoked`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revocation {
    /// This token (and so every chain through it).
    Token {
        /// The token id.
        id: String,
    },
    /// The task, for tokens issued up to the revocation.
    Task {
        /// The task id.
        id: String,
    },
    /// This agent.
    Agent {
        /// The agent id.
        id: String,
    },
    /// A token or the envelope was issued before the revocation cut-off.
    IssuedBefore {
        /// The cut-off.
        cutoff: UnixTime,
    },
}

/// What could not answer (`unavailable`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unavailable {
    /// A store (revocations, replay cache) failed; `problem` is its error as shown.
    Store {
        /// The store's error, as shown.
        problem: String,
    },
    /// The handoff passed every check but its audit record could not be kept.
    Audit {
        /// The audit sink's error, as shown.
        problem: String,
    },
}

impl Fault {
    /// The stable reason code of SPEC section 7.
    #[must_use]
    pub fn reason(&self) -> Reason {
        match self {
            Fault::TooLarge { .. } => Reason::TooLarge,
            Fault::Malformed(_) => Reason::Malformed,
            Fault::UnsupportedAlgorithm { .. } => Reason::UnsupportedAlgorithm,
            Fault::WrongType { .. } => Reason::WrongType,
            Fault::ForbiddenHeader { .. } => Reason::ForbiddenHeader,
            Fault::UnknownKey { .. } | Fault::UnknownSubjectKey { .. } => Reason::UnknownKey,
            Fault::UntrustedRoot { .. } => Reason::UntrustedRoot,
            Fault::BadSignature { .. } => Reason::BadSignature,
            Fault::NotYetValid { .. } => Reason::NotYetValid,
            Fault::Expired { .. } => Reason::Expired,
            Fault::TtlTooLong { .. } => Reason::TtlTooLong,
            Fault::WrongAudience { .. } => Reason::WrongAudience,
            Fault::ChainTooLong { .. } => Reason::ChainTooLong,
            Fault::BrokenChain(_) => Reason::BrokenChain,
            Fault::DelegationForbidden(_) => Reason::DelegationForbidden,
            Fault::Escalation(_) => Reason::Escalation,
            Fault::TaskMismatch(_) => Reason::TaskMismatch,
            Fault::CrossDomain { .. } => Reason::CrossDomain,
            Fault::SenderMismatch(_) => Reason::SenderMismatch,
            Fault::IntentNotRequired { .. } | Fault::IntentNotGranted { .. } => {
                Reason::IntentNotGranted
            }
            Fault::PayloadMismatch => Reason::PayloadMismatch,
            Fault::Revoked(_) => Reason::Revoked,
            Fault::PolicyDenied { .. } => Reason::PolicyDenied,
            Fault::Replayed { .. } => Reason::Replayed,
            Fault::Unavailable(_) => Reason::Unavailable,
            Fault::Binding { reason, .. } => *reason,
        }
    }

    /// A syntax fault with a fixed or computed description of the bytes.
    pub(crate) fn malformed(problem: impl Into<Cow<'static, str>>) -> Fault {
        Fault::Malformed(problem.into())
    }
}

/// Shorthand: claimed text, shown escaped.
fn e(text: &str) -> Escaped<'_> {
    Escaped(text)
}

impl fmt::Display for Fault {
    /// The text people read (rejection details, audit records): claimed values escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::BrokenChain(b) => b.fmt(f),
            Fault::DelegationForbidden(d) => d.fmt(f),
            Fault::Escalation(x) => x.fmt(f),
            Fault::TaskMismatch(t) => t.fmt(f),
            Fault::SenderMismatch(s) => s.fmt(f),
            Fault::Revoked(r) => r.fmt(f),
            Fault::Unavailable(u) => u.fmt(f),
            Fault::CrossDomain { issuer, subject } => write!(
                f,
                "`{}` delegates across trust domains to `{}`, which this verifier does not federate",
                e(issuer),
                e(subject)
            ),
            Fault::IntentNotRequired { claimed, required } => write!(
                f,
                "the envelope's intent `{}` is not the one this endpoint requires (`{}`)",
                e(claimed),
                e(required)
            ),
            Fault::IntentNotGranted { intent, argument } => {
                write!(
                    f,
                    "intent `{}` (with its arguments) is not granted by the chain's last link",
                    e(intent)
                )?;
                match argument {
                    Some(why) => write!(f, ": {why}"),
                    None => Ok(()),
                }
            }
            Fault::PayloadMismatch => {
                f.write_str("the payload does not match the envelope's digest")
            }
            Fault::PolicyDenied { rule } => {
                write!(f, "policy rule `{}` denied the request", e(rule))
            }
            Fault::Replayed { envelope } => {
                write!(f, "envelope `{}` was already accepted", e(envelope))
            }
            Fault::Binding { detail, .. } => write!(f, "{}", e(detail)),
            Fault::TooLarge { .. }
            | Fault::Malformed(_)
            | Fault::UnsupportedAlgorithm { .. }
            | Fault::WrongType { .. }
            | Fault::ForbiddenHeader { .. }
            | Fault::UnknownKey { .. }
            | Fault::UnknownSubjectKey { .. }
            | Fault::UntrustedRoot { .. }
            | Fault::BadSignature { .. }
            | Fault::NotYetValid { .. }
            | Fault::Expired { .. }
            | Fault::TtlTooLong { .. }
            | Fault::WrongAudience { .. }
            | Fault::ChainTooLong { .. } => self.fmt_credential(f),
        }
    }
}

impl Fault {
    /// The texts of the faults of one credential's bytes, keys, time and audience.
    fn fmt_credential(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::TooLarge { what, size, limit } => {
                write!(f, "{} is {size} bytes; the limit is {limit}", what.name())
            }
            Fault::Malformed(problem) => write!(f, "{}", e(problem)),
            Fault::UnsupportedAlgorithm { alg } => write!(
                f,
                "JWS `alg` `{}` is not supported; use `EdDSA` (or `Ed25519`)",
                e(alg)
            ),
            Fault::WrongType {
                what,
                typ: Some(typ),
            } => write!(
                f,
                "JWS `typ` is `{}`; a {} has `{}`",
                e(typ),
                what.name(),
                what.typ()
            ),
            Fault::WrongType { what, typ: None } => write!(
                f,
                "JWS header has no `typ`; a {} has `{}`",
                what.name(),
                what.typ()
            ),
            Fault::ForbiddenHeader { member } => write!(
                f,
                "JWS header member `{}` is not allowed; only `alg`, `typ` and `kid` are",
                e(member)
            ),
            Fault::UnknownKey { kid, role, agent } => write!(
                f,
                "no key `{}` is registered for {role} `{}`",
                e(kid),
                e(agent)
            ),
            Fault::UnknownSubjectKey { jkt, subject } => write!(
                f,
                "`cnf.jkt` `{}` is not a key registered for subject `{}`",
                e(jkt),
                e(subject)
            ),
            Fault::UntrustedRoot { issuer } => {
                write!(f, "root issuer `{}` is not a trusted authority", e(issuer))
            }
            Fault::BadSignature { what } => {
                write!(f, "{} signature does not verify", what.short())
            }
            Fault::NotYetValid { from, now, leeway } => write!(
                f,
                "not valid before {from} (now {now}, leeway {} s)",
                leeway.as_secs()
            ),
            Fault::Expired { exp, now, leeway } => write!(
                f,
                "expired at {exp} (now {now}, leeway {} s)",
                leeway.as_secs()
            ),
            Fault::TtlTooLong { lifetime, max } => write!(
                f,
                "lifetime is {lifetime} s; this verifier allows at most {} s",
                max.as_secs()
            ),
            Fault::WrongAudience { claimed, me } => write!(
                f,
                "the envelope is addressed to `{}`, not to `{}`",
                e(claimed),
                e(me)
            ),
            Fault::ChainTooLong { links, max } => write!(
                f,
                "the chain has {links} links; this verifier allows at most {max}"
            ),
            // `Display::fmt` tells every other fault itself (its match is exhaustive).
            _ => Ok(()),
        }
    }
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainBreak::RootHasParent => f.write_str("the root token has a `parent`"),
            ChainBreak::ParentHash => f.write_str("`parent` is not the hash of the previous link"),
            ChainBreak::Issuer {
                issuer,
                previous_subject,
            } => write!(
                f,
                "issuer `{}` is not the previous link's subject `{}`",
                e(issuer),
                e(previous_subject)
            ),
            ChainBreak::Key { kid, bound } => write!(
                f,
                "signed with key `{}`, but the previous link binds key `{}`",
                e(kid),
                e(bound)
            ),
        }
    }
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Forbidden::SelfDelegation { agent } => write!(f, "`{}` delegates to itself", e(agent)),
            Forbidden::DepthExhausted { holder } => write!(
                f,
                "the parent grants `{}` depth 0: it may not delegate",
                e(holder)
            ),
            Forbidden::NotADelegate { subject } => write!(
                f,
                "the parent's `delegates` do not include `{}`",
                e(subject)
            ),
            Forbidden::Cycle { agent } => write!(
                f,
                "`{}` already appears earlier in the chain (a cycle)",
                e(agent)
            ),
        }
    }
}

impl fmt::Display for Escalation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Escalation::Depth { depth, parent } => {
                write!(f, "depth {depth} is not below the parent's {parent}")
            }
            Escalation::Expiry { exp, parent } => {
                write!(f, "expires at {exp}, after its parent ({parent})")
            }
            Escalation::Capability { capability } => write!(
                f,
                "capability `{}` is not covered by the parent",
                e(capability)
            ),
            Escalation::Argument { capability, detail } => write!(
                f,
                "capability `{}` is not covered by the parent: {detail}",
                e(capability),
            ),
            Escalation::DelegatesDropped => {
                f.write_str("the parent restricts `delegates`; the child drops the restriction")
            }
            Escalation::Delegate { pattern } => write!(
                f,
                "delegate pattern `{}` is wider than the parent's",
                e(pattern)
            ),
        }
    }
}

impl fmt::Display for TaskMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskMismatch::Link { task, parent } => write!(
                f,
                "task `{}` differs from the parent's `{}`",
                e(task),
                e(parent)
            ),
            TaskMismatch::Envelope { envelope, chain } => write!(
                f,
                "the envelope is for task `{}`, the chain for `{}`",
                e(envelope),
                e(chain)
            ),
        }
    }
}

impl fmt::Display for SenderMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SenderMismatch::Key { kid, bound } => write!(
                f,
                "the envelope is signed with key `{}`, but the chain is bound to key `{}`",
                e(kid),
                e(bound)
            ),
            SenderMismatch::NotBound {
                sender,
                last_subject,
            } => write!(
                f,
                "sender `{}` is neither the chain's final subject (`{}`) nor its final delegator to the recipient",
                e(sender),
                e(last_subject)
            ),
        }
    }
}

impl fmt::Display for Revocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Revocation::Token { id } => write!(f, "token `{}` is revoked", e(id)),
            Revocation::Task { id } => write!(f, "task `{}` is revoked", e(id)),
            Revocation::Agent { id } => write!(f, "agent `{}` is revoked", e(id)),
            Revocation::IssuedBefore { cutoff } => {
                write!(f, "issued before the revocation cut-off {cutoff}")
            }
        }
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::Store { problem } => write!(f, "{}", e(problem)),
            Unavailable::Audit { problem } => write!(
                f,
                "the handoff passed every check but its audit record could not be kept: {}",
                e(problem)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_text_is_shown_escaped() {
        let fault = Fault::WrongAudience {
            claimed: "spiffe://a.example/x\u{202e}\n".to_owned(),
            me: "spiffe://a.example/me".to_owned(),
        };
        assert_eq!(
            fault.to_string(),
            "the envelope is addressed to `spiffe://a.example/x\\u{202e}\\u{a}`, not to `spiffe://a.example/me`"
        );
        assert_eq!(fault.reason(), Reason::WrongAudience);
    }

    #[test]
    fn a_binding_fault_keeps_its_reason() {
        let fault = Fault::Binding {
            reason: Reason::Timeout,
            detail: "slow\u{1b}".into(),
        };
        assert_eq!(fault.reason(), Reason::Timeout);
        assert_eq!(fault.to_string(), "slow\\u{1b}");
    }
}
