//! Links of a verified chain: a delegation token whose signature, issuer key and place in
//! the chain have been checked (SPEC section 6 steps 5 to 7).

use std::fmt;
use std::sync::Arc;

use crate::clock::UnixTime;
use crate::grant::{Capability, TokenClaims};
use crate::wire::{AgentId, AgentPattern, KeyId, TokenId};

/// A link decoded from its compact text: its claims and its header `kid`.
#[derive(Debug)]
pub(crate) struct ParsedLink {
    pub claims: TokenClaims,
    pub kid: KeyId,
}

/// One link of a verified chain: facts established by its verified signature.
#[derive(Clone)]
pub struct VerifiedLink(Arc<ParsedLink>);

impl VerifiedLink {
    pub(crate) fn new(parsed: Arc<ParsedLink>) -> VerifiedLink {
        VerifiedLink(parsed)
    }

    pub(crate) fn claims(&self) -> &TokenClaims {
        &self.0.claims
    }
    /// The token id.
    #[must_use]
    pub fn id(&self) -> &TokenId {
        &self.claims().jti
    }
    /// The delegator.
    #[must_use]
    pub fn issuer(&self) -> &AgentId {
        &self.claims().iss
    }
    /// The delegate.
    #[must_use]
    pub fn subject(&self) -> &AgentId {
        &self.claims().sub
    }
    /// The capabilities granted.
    #[must_use]
    pub fn capabilities(&self) -> &[Capability] {
        &self.claims().caps
    }
    /// Further delegations allowed.
    #[must_use]
    pub fn depth(&self) -> u8 {
        self.claims().depth
    }
    /// Whom the subject may delegate to (`None`: anyone within depth).
    #[must_use]
    pub fn delegates(&self) -> Option<&[AgentPattern]> {
        self.claims().delegates.as_deref()
    }
    /// Issued at.
    #[must_use]
    pub fn issued_at(&self) -> UnixTime {
        self.claims().iat
    }
    /// Not before (defaults to `iat`).
    #[must_use]
    pub fn not_before(&self) -> UnixTime {
        self.claims().not_before()
    }
    /// Expires at.
    #[must_use]
    pub fn expires_at(&self) -> UnixTime {
        self.claims().exp
    }
    /// Lifetime in seconds, counted as the verifier does: from the earlier of `iat` and `nbf`
    /// to `exp`.
    #[must_use]
    pub fn lifetime(&self) -> u64 {
        self.expires_at()
            .since(self.issued_at().min(self.not_before()))
    }
    /// The application data (`ext`) as JSON text, carried verbatim and covered by the
    /// verified signature.
    #[must_use]
    pub fn ext(&self) -> Option<&str> {
        self.claims()
            .ext
            .as_deref()
            .map(serde_json::value::RawValue::get)
    }
}

impl PartialEq for VerifiedLink {
    /// Two verified links are equal when they are the same token (same id, issuer, subject
    /// and times; a token id is unique per issuer).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.id() == other.id()
                && self.issuer() == other.issuer()
                && self.subject() == other.subject()
                && self.capabilities() == other.capabilities()
                && self.depth() == other.depth()
                && self.delegates() == other.delegates()
                && self.issued_at() == other.issued_at()
                && self.not_before() == other.not_before()
                && self.expires_at() == other.expires_at())
    }
}

impl fmt::Debug for VerifiedLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedLink")
            .field("id", self.id())
            .field("issuer", self.issuer())
            .field("subject", self.subject())
            .field("capabilities", &self.capabilities())
            .field("depth", &self.depth())
            .field("delegates", &self.delegates())
            .field("issued_at", &self.issued_at().as_secs())
            .field("expires_at", &self.expires_at().as_secs())
            .finish()
    }
}
