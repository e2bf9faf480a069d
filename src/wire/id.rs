//! Identifiers: agent ids (SPIFFE IDs), agent id patterns, task ids and token ids.
//!
//! Every identifier is parsed strictly and never normalised: two ids are equal only when their
//! bytes are equal (SPEC section 1).

use std::fmt;
use std::str::FromStr;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;
use crate::limits::{MAX_AGENT_ID_BYTES, MAX_TRUST_DOMAIN_BYTES};

const SPIFFE_SCHEME: &str = "spiffe://";

fn is_trust_domain_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
}

fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// Checks the SPIFFE ID grammar of SPEC section 1; returns the length of the trust domain.
fn check_agent_id(s: &str) -> Result<usize, &'static str> {
    if s.len() > MAX_AGENT_ID_BYTES {
        return Err("longer than 2048 bytes");
    }
    let rest = s
        .strip_prefix(SPIFFE_SCHEME)
        .ok_or("must start with `spiffe://`")?;
    let (domain, path) =
        match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => return Err(
                "needs a path after the trust domain, like `spiffe://acme.example/agents/planner`",
            ),
        };
    if domain.is_empty() || domain.len() > MAX_TRUST_DOMAIN_BYTES {
        return Err("trust domain must be 1 to 255 characters");
    }
    if !domain.bytes().all(is_trust_domain_char) {
        return Err("trust domain may contain only `a-z`, `0-9`, `.`, `_` and `-` (no port, user info or upper case)");
    }
    // `path` starts with '/'.
    for segment in path.split('/').skip(1) {
        if segment.is_empty() {
            return Err("path has an empty segment or a trailing `/`");
        }
        if segment == "." || segment == ".." {
            return Err("path segments `.` and `..` are not allowed");
        }
        if !segment.bytes().all(is_path_char) {
            return Err("path segments may contain only `A-Z`, `a-z`, `0-9`, `.`, `_` and `-` (no query, fragment or percent-encoding)");
        }
    }
    Ok(domain.len())
}

/// An agent's identity: a SPIFFE ID such as `spiffe://acme.example/agents/planner`.
///
/// Parsing is strict (SPEC section 1): lower-case trust domain, non-empty path segments of
/// `[A-Za-z0-9._-]`, no `.`/`..`, no trailing `/`, query, fragment, port, user info or
/// percent-encoding, at most 2048 bytes. Nothing is normalised.
///
/// ```
/// use agent_handoff::AgentId;
/// let id: AgentId = "spiffe://acme.example/agents/planner".parse()?;
/// assert_eq!(id.trust_domain(), "acme.example");
/// assert!("spiffe://ACME.example/agents/planner".parse::<AgentId>().is_err());
/// # Ok::<(), agent_handoff::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId {
    text: Box<str>,
    domain_len: usize,
}

impl AgentId {
    /// The id as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The trust domain, such as `acme.example`.
    #[must_use]
    pub fn trust_domain(&self) -> &str {
        self.text
            .get(SPIFFE_SCHEME.len()..SPIFFE_SCHEME.len() + self.domain_len)
            .unwrap_or_default()
    }

    /// The path, starting with `/`.
    #[must_use]
    pub fn path(&self) -> &str {
        self.text
            .get(SPIFFE_SCHEME.len() + self.domain_len..)
            .unwrap_or_default()
    }

    /// The last path segment (`planner` for `spiffe://acme.example/agents/planner`).
    #[must_use]
    pub fn name(&self) -> &str {
        self.path().rsplit('/').next().unwrap_or_default()
    }

    /// Whether both ids are in the same trust domain.
    #[must_use]
    pub fn same_domain(&self, other: &AgentId) -> bool {
        self.trust_domain() == other.trust_domain()
    }
}

impl FromStr for AgentId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let domain_len = check_agent_id(s).map_err(|p| Error::invalid_id("agent id", s, p))?;
        Ok(AgentId {
            text: s.into(),
            domain_len,
        })
    }
}

impl TryFrom<&str> for AgentId {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self, Error> {
        s.parse()
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentId({})", self.text)
    }
}

impl AsRef<str> for AgentId {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

/// An agent id pattern: an exact agent id, or an agent id followed by `/*`, which matches
/// every id strictly below that path (SPEC section 1).
///
/// ```
/// use agent_handoff::{AgentId, wire::AgentPattern};
/// let p: AgentPattern = "spiffe://acme.example/agents/*".parse()?;
/// assert!(p.matches(&"spiffe://acme.example/agents/planner".parse()?));
/// assert!(!p.matches(&"spiffe://acme.example/agents".parse()?));
/// # Ok::<(), agent_handoff::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentPattern {
    text: Box<str>,
    subtree: bool,
}

impl AgentPattern {
    /// The pattern as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The part a matching id must start with: the whole id for an exact pattern, the base id
    /// plus `/` for a subtree pattern.
    fn prefix(&self) -> &str {
        if self.subtree {
            self.text.get(..self.text.len() - 1).unwrap_or_default()
        } else {
            &self.text
        }
    }

    /// Whether `id` is matched by this pattern.
    #[must_use]
    pub fn matches(&self, id: &AgentId) -> bool {
        if self.subtree {
            id.as_str().starts_with(self.prefix())
        } else {
            id.as_str() == &*self.text
        }
    }

    /// Whether every id matched by `other` is matched by `self`.
    #[must_use]
    pub fn covers(&self, other: &AgentPattern) -> bool {
        match (self.subtree, other.subtree) {
            (false, false) => self.text == other.text,
            (false, true) => false,
            (true, _) => other.prefix().starts_with(self.prefix()),
        }
    }

    /// The trust domain the pattern lies in.
    #[must_use]
    pub fn trust_domain(&self) -> &str {
        let rest = self.text.get(SPIFFE_SCHEME.len()..).unwrap_or_default();
        rest.split('/').next().unwrap_or_default()
    }
}

impl FromStr for AgentPattern {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let (base, subtree) = match s.strip_suffix("/*") {
            Some(base) => (base, true),
            None => (s, false),
        };
        check_agent_id(base).map_err(|p| Error::invalid_id("agent id pattern", s, p))?;
        Ok(AgentPattern {
            text: s.into(),
            subtree,
        })
    }
}

impl From<AgentId> for AgentPattern {
    fn from(id: AgentId) -> Self {
        AgentPattern {
            text: id.text,
            subtree: false,
        }
    }
}

impl fmt::Display for AgentPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for AgentPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentPattern({})", self.text)
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Box<str>);

        impl $name {
            /// The id as a string.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                let check: fn(&str) -> Result<(), &'static str> = $check;
                check(s).map_err(|p| Error::invalid_id($what, s, p))?;
                Ok($name(s.into()))
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Error;
            fn try_from(s: &str) -> Result<Self, Error> {
                s.parse()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A task id: 1 to 128 characters of `[A-Za-z0-9._:-]` (SPEC section 1). Fixed for a
    /// whole delegation chain.
    TaskId,
    "task id",
    |s| {
        if s.is_empty() || s.len() > 128 {
            return Err("must be 1 to 128 characters");
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        {
            return Err("may contain only `A-Z`, `a-z`, `0-9`, `.`, `_`, `:` and `-`");
        }
        Ok(())
    }
);

string_id!(
    /// A token or envelope id (`jti`): 16 to 64 characters of the base64url alphabet
    /// (SPEC section 1). [`TokenId::random`] makes one from 128 random bits.
    TokenId,
    "token id",
    |s| {
        if s.len() < 16 || s.len() > 64 {
            return Err("must be 16 to 64 characters");
        }
        if !s.bytes().all(crate::wire::b64::is_b64url_char) {
            return Err("may contain only base64url characters `A-Z`, `a-z`, `0-9`, `-` and `_`");
        }
        Ok(())
    }
);

impl TokenId {
    /// A fresh id from 128 bits of the operating system's randomness (22 characters).
    #[must_use]
    pub fn random() -> TokenId {
        let mut bytes = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
        TokenId(crate::wire::b64::b64_encode(&bytes).into())
    }
}

macro_rules! serde_via_str {
    ($($name:ident),*) => {$(
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                s.parse().map_err(de::Error::custom)
            }
        }
    )*};
}

serde_via_str!(AgentId, AgentPattern, TaskId, TokenId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids_parse_strictly() {
        let good = [
            "spiffe://acme.example/agents/planner",
            "spiffe://a/b",
            "spiffe://acme-1.example_x/A.b_c-d/e",
        ];
        for g in good {
            assert!(g.parse::<AgentId>().is_ok(), "{g}");
        }
        let bad = [
            "",
            "spiffe://",
            "spiffe://acme.example",
            "spiffe://acme.example/",
            "spiffe://acme.example/agents/",
            "spiffe://acme.example//planner",
            "spiffe://acme.example/./planner",
            "spiffe://acme.example/agents/..",
            "spiffe://Acme.example/planner",
            "spiffe://acme.example:443/planner",
            "spiffe://user@acme.example/planner",
            "spiffe://acme.example/planner?x=1",
            "spiffe://acme.example/planner#f",
            "spiffe://acme.example/plan%20ner",
            "SPIFFE://acme.example/planner",
            "https://acme.example/planner",
            "spiffe:///planner",
            " spiffe://acme.example/planner",
            "spiffe://acme.example/plannér",
        ];
        for b in bad {
            assert!(b.parse::<AgentId>().is_err(), "{b}");
        }
        let long_domain = format!("spiffe://{}/a", "a".repeat(256));
        assert!(long_domain.parse::<AgentId>().is_err());
        let long = format!("spiffe://a/{}", "b".repeat(2048));
        assert!(long.parse::<AgentId>().is_err());
    }

    #[test]
    fn agent_id_parts() {
        let id: AgentId = "spiffe://acme.example/agents/planner".parse().unwrap();
        assert_eq!(id.trust_domain(), "acme.example");
        assert_eq!(id.path(), "/agents/planner");
        assert_eq!(id.name(), "planner");
    }

    #[test]
    fn patterns_match_strictly_below() {
        let p: AgentPattern = "spiffe://acme.example/agents/*".parse().unwrap();
        let yes: AgentId = "spiffe://acme.example/agents/planner".parse().unwrap();
        let deep: AgentId = "spiffe://acme.example/agents/x/y".parse().unwrap();
        let no: AgentId = "spiffe://acme.example/agents".parse().unwrap();
        let sibling: AgentId = "spiffe://acme.example/agentsx/y".parse().unwrap();
        assert!(p.matches(&yes));
        assert!(p.matches(&deep));
        assert!(!p.matches(&no));
        assert!(!p.matches(&sibling));
        let exact: AgentPattern = "spiffe://acme.example/agents".parse().unwrap();
        assert!(exact.matches(&no));
        assert!(!exact.matches(&yes));
        assert!(p.covers(&"spiffe://acme.example/agents/x/*".parse().unwrap()));
        assert!(p.covers(&"spiffe://acme.example/agents/x".parse().unwrap()));
        assert!(!p.covers(&exact));
        assert!(!exact.covers(&p));
        assert!("spiffe://acme.example/*".parse::<AgentPattern>().is_err());
        assert!("spiffe://acme.example/a*".parse::<AgentPattern>().is_err());
    }

    #[test]
    fn task_and_token_ids() {
        assert!("task-42:a.b_c".parse::<TaskId>().is_ok());
        assert!("".parse::<TaskId>().is_err());
        assert!("a b".parse::<TaskId>().is_err());
        assert!("x".repeat(129).parse::<TaskId>().is_err());
        assert!("abcdefghijklmnop".parse::<TokenId>().is_ok());
        assert!("abcdefghijklmno".parse::<TokenId>().is_err());
        assert!("abcdefghijklmnop=".parse::<TokenId>().is_err());
        assert!("x".repeat(65).parse::<TokenId>().is_err());
        let r = TokenId::random();
        assert_eq!(r.as_str().len(), 22);
        assert_ne!(r, TokenId::random());
    }
}
