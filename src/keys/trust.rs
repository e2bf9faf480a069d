//! Trust: which keys belong to which agents, which agents are authorities, and which trust
//! domains are federated (SPEC section 8).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::keys::{AgentKey, Jwk, KeyId, PublicIdentity};
use crate::wire::json::strict_map;
use crate::wire::AgentId;

/// Where the verifier looks up keys, authorities and federation.
///
/// The `kid` in a token is only a hint: a key is used only if it is registered for the agent
/// that claims it. Implement this trait to back the verifier with a dynamic directory; keep
/// lookups in memory (the verifier calls them on every request).
pub trait KeyResolver: fmt::Debug + Send + Sync {
    /// The key registered for `agent` under `kid`, decoded and ready to verify.
    fn resolve(&self, agent: &AgentId, kid: &KeyId) -> Option<VerifyingKey>;

    /// Whether `agent` may mint root tokens.
    fn is_authority(&self, agent: &AgentId) -> bool;

    /// Whether the verifier federates `trust_domain` (its own domain always counts).
    fn federates(&self, trust_domain: &str) -> bool;

    /// A number that changes whenever the keys change; caches of verified signatures are
    /// keyed by it.
    fn generation(&self) -> u64;
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

fn next_generation() -> u64 {
    GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// A trust bundle: the verifier's own trust domain, its authorities, the agents' public keys,
/// and the federated domains (SPEC section 8).
///
/// Every key is admitted strictly when added (canonical, not small order, torsion-free), and
/// decoded once.
///
/// ```
/// use agent_handoff::{AgentIdentity, TrustBundle};
/// let orchestrator = AgentIdentity::generate("spiffe://acme.example/orchestrator".parse()?);
/// let planner = AgentIdentity::generate("spiffe://acme.example/agents/planner".parse()?);
/// let mut bundle = TrustBundle::new("acme.example")?;
/// bundle.add_authority(&orchestrator.public())?;
/// bundle.add_agent(&planner.public())?;
/// let json = bundle.to_json();
/// let again = TrustBundle::from_json(&json)?;
/// assert!(again.is_authority(orchestrator.id()));
/// # Ok::<(), agent_handoff::Error>(())
/// ```
#[derive(Clone)]
pub struct TrustBundle {
    trust_domain: String,
    authorities: BTreeSet<AgentId>,
    agents: HashMap<AgentId, Vec<AgentKey>>,
    federates: BTreeSet<String>,
    generation: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleFile {
    trust_domain: String,
    authorities: Vec<AgentId>,
    #[serde(deserialize_with = "strict_map")]
    agents: BTreeMap<AgentId, Vec<Jwk>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    federates: Vec<String>,
}

fn bundle_error(problem: impl Into<String>) -> Error {
    Error::Bundle {
        path: None,
        problem: problem.into(),
    }
}

fn check_domain(domain: &str) -> Result<(), Error> {
    if domain.is_empty()
        || domain.len() > 255
        || !domain.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
    {
        return Err(bundle_error(format!(
            "`{}` is not a trust domain (1 to 255 characters of `a-z`, `0-9`, `.`, `_`, `-`)",
            domain.chars().take(80).collect::<String>()
        )));
    }
    Ok(())
}

impl TrustBundle {
    /// An empty bundle for a trust domain such as `acme.example`.
    pub fn new(trust_domain: &str) -> Result<TrustBundle, Error> {
        check_domain(trust_domain)?;
        Ok(TrustBundle {
            trust_domain: trust_domain.to_owned(),
            authorities: BTreeSet::new(),
            agents: HashMap::new(),
            federates: BTreeSet::new(),
            generation: next_generation(),
        })
    }

    /// The bundle's own trust domain.
    #[must_use]
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    fn check_member(&self, id: &AgentId) -> Result<(), Error> {
        if id.trust_domain() != self.trust_domain && !self.federates.contains(id.trust_domain()) {
            return Err(bundle_error(format!(
                "agent `{id}` is outside trust domain `{}` and its federated domains",
                self.trust_domain
            )));
        }
        Ok(())
    }

    /// Registers an agent's public key (an agent may have several during a rotation).
    pub fn add_agent(&mut self, agent: &PublicIdentity) -> Result<&mut Self, Error> {
        self.add_key(agent.id().clone(), agent.key().clone())
    }

    fn add_key(&mut self, id: AgentId, key: AgentKey) -> Result<&mut Self, Error> {
        self.check_member(&id)?;
        for (other, keys) in &self.agents {
            if other != &id && keys.iter().any(|k| k.kid() == key.kid()) {
                return Err(bundle_error(format!(
                    "key `{}` is registered for both `{other}` and `{id}`; every agent needs its own key",
                    key.kid()
                )));
            }
        }
        let keys = self.agents.entry(id).or_default();
        if !keys.iter().any(|k| k.kid() == key.kid()) {
            keys.push(key);
        }
        self.generation = next_generation();
        Ok(self)
    }

    /// Registers an authority (which may mint root tokens) together with its key.
    pub fn add_authority(&mut self, authority: &PublicIdentity) -> Result<&mut Self, Error> {
        self.add_agent(authority)?;
        self.authorities.insert(authority.id().clone());
        Ok(self)
    }

    /// Removes one key of an agent (the end of a rotation, or a leaked key).
    pub fn remove_key(&mut self, agent: &AgentId, kid: &KeyId) -> &mut Self {
        if let Some(keys) = self.agents.get_mut(agent) {
            keys.retain(|k| k.kid() != kid);
            if keys.is_empty() {
                self.agents.remove(agent);
                self.authorities.remove(agent);
            }
        }
        self.generation = next_generation();
        self
    }

    /// Federates another trust domain and takes in the agents of that domain's bundle (its
    /// authorities do *not* become authorities of this bundle).
    pub fn federate(&mut self, other: &TrustBundle) -> Result<&mut Self, Error> {
        if other.trust_domain == self.trust_domain {
            return Err(bundle_error(
                "a bundle cannot federate its own trust domain",
            ));
        }
        self.federates.insert(other.trust_domain.clone());
        for (id, keys) in &other.agents {
            if id.trust_domain() == other.trust_domain {
                for key in keys {
                    self.add_key(id.clone(), key.clone())?;
                }
            }
        }
        Ok(self)
    }

    /// Whether `agent` is an authority.
    #[must_use]
    pub fn is_authority(&self, agent: &AgentId) -> bool {
        self.authorities.contains(agent)
    }

    /// The keys registered for an agent.
    #[must_use]
    pub fn keys(&self, agent: &AgentId) -> &[AgentKey] {
        self.agents
            .get(agent)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Reads a bundle from its JSON form (SPEC section 8), refusing bad ids, weak or
    /// non-canonical keys, `kid`s that are not thumbprints, and authorities without keys.
    pub fn from_json(json: &str) -> Result<TrustBundle, Error> {
        let file: BundleFile = serde_json::from_str(json).map_err(|e| {
            bundle_error(format!(
                "not a valid trust bundle: {}",
                crate::wire::json::json_problem(&e)
            ))
        })?;
        let mut bundle = TrustBundle::new(&file.trust_domain)?;
        for domain in &file.federates {
            check_domain(domain)?;
            if domain == &file.trust_domain {
                return Err(bundle_error(
                    "`federates` lists the bundle's own trust domain",
                ));
            }
            bundle.federates.insert(domain.clone());
        }
        for (id, jwks) in &file.agents {
            if jwks.is_empty() {
                return Err(bundle_error(format!("agent `{id}` has no keys")));
            }
            for (i, jwk) in jwks.iter().enumerate() {
                let key = AgentKey::from_jwk(jwk).map_err(|e| {
                    bundle_error(format!(
                        "key {i} of agent `{id}` is refused: {}",
                        match e {
                            Error::Key { problem, .. } => problem,
                            other => other.to_string(),
                        }
                    ))
                })?;
                bundle.add_key(id.clone(), key)?;
            }
        }
        for authority in file.authorities {
            if !bundle.agents.contains_key(&authority) {
                return Err(bundle_error(format!(
                    "authority `{authority}` has no keys in `agents`"
                )));
            }
            bundle.authorities.insert(authority);
        }
        bundle.generation = next_generation();
        Ok(bundle)
    }

    /// Loads a bundle file: a regular file of at most
    /// [`MAX_BUNDLE_BYTES`](crate::limits::MAX_BUNDLE_BYTES) (see
    /// [`read_regular_file`](crate::file::read_regular_file)).
    pub fn load(path: impl AsRef<Path>) -> Result<TrustBundle, Error> {
        let path = path.as_ref();
        let text = crate::file::read_text(
            path,
            "trust bundle",
            "reading trust bundle",
            crate::limits::MAX_BUNDLE_BYTES,
        )?;
        TrustBundle::from_json(&text).map_err(|e| match e {
            Error::Bundle { problem, .. } => Error::Bundle {
                path: Some(path.to_owned()),
                problem,
            },
            other => other,
        })
    }

    /// The bundle as JSON (SPEC section 8), keys with their `kid`s.
    #[must_use]
    pub fn to_json(&self) -> String {
        let file = BundleFile {
            trust_domain: self.trust_domain.clone(),
            authorities: self.authorities.iter().cloned().collect(),
            agents: self
                .agents
                .iter()
                .map(|(id, keys)| (id.clone(), keys.iter().map(AgentKey::to_jwk).collect()))
                .collect(),
            federates: self.federates.iter().cloned().collect(),
        };
        crate::escape::to_json_pretty(&file).unwrap_or_default()
    }
}

impl fmt::Debug for TrustBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustBundle")
            .field("trust_domain", &self.trust_domain)
            .field("authorities", &self.authorities)
            .field("agents", &self.agents.len())
            .field("federates", &self.federates)
            .finish()
    }
}

impl KeyResolver for TrustBundle {
    fn resolve(&self, agent: &AgentId, kid: &KeyId) -> Option<VerifyingKey> {
        self.agents
            .get(agent)?
            .iter()
            .find(|k| k.kid() == kid)
            .map(|k| *k.verifying_key())
    }

    fn is_authority(&self, agent: &AgentId) -> bool {
        self.authorities.contains(agent)
    }

    fn federates(&self, trust_domain: &str) -> bool {
        trust_domain == self.trust_domain || self.federates.contains(trust_domain)
    }

    fn generation(&self) -> u64 {
        self.generation
    }
}

impl<T: KeyResolver + ?Sized> KeyResolver for std::sync::Arc<T> {
    fn resolve(&self, agent: &AgentId, kid: &KeyId) -> Option<VerifyingKey> {
        (**self).resolve(agent, kid)
    }
    fn is_authority(&self, agent: &AgentId) -> bool {
        (**self).is_authority(agent)
    }
    fn federates(&self, trust_domain: &str) -> bool {
        (**self).federates(trust_domain)
    }
    fn generation(&self) -> u64 {
        (**self).generation()
    }
}
