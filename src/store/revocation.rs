//! Revocation: tokens, tasks and agents that must stop working before they expire
//! (SPEC section 6 step 8).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Deserialize;

use crate::clock::UnixTime;
use crate::error::{Error, StoreError};
use crate::limits::DEFAULT_RETENTION;
use crate::wire::{AgentId, TaskId, TokenId};

/// One token of a chain, as the revocation check sees it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct TokenRef<'a> {
    /// The token id.
    pub id: &'a TokenId,
    /// When it was issued.
    pub issued_at: UnixTime,
}

/// Everything about one handoff that a revocation could apply to.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RevocationQuery<'a> {
    /// Every link of the chain, root first.
    pub tokens: &'a [TokenRef<'a>],
    /// The task.
    pub task: &'a TaskId,
    /// Every agent in the chain (issuers and subjects) and the sender.
    pub agents: &'a [&'a AgentId],
    /// When the envelope was issued.
    pub envelope_issued_at: UnixTime,
    /// The verifier's current time.
    pub now: UnixTime,
}

/// Why a handoff is revoked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revoked {
    /// This token (and so every chain through it) is revoked.
    Token(TokenId),
    /// The task is revoked (ended) for tokens issued up to that time.
    Task(TaskId),
    /// This agent is revoked (for example, its key leaked).
    Agent(AgentId),
    /// A token or the envelope was issued before the revocation cut-off.
    IssuedBefore {
        /// The cut-off.
        cutoff: UnixTime,
    },
}

impl fmt::Display for Revoked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Revoked::Token(id) => write!(f, "token `{id}` is revoked"),
            Revoked::Task(task) => write!(f, "task `{task}` is revoked"),
            Revoked::Agent(id) => write!(f, "agent `{id}` is revoked"),
            Revoked::IssuedBefore { cutoff } => {
                write!(f, "issued before the revocation cut-off {cutoff}")
            }
        }
    }
}

/// A revocation store. Implementations must answer from memory or fail: an `Err` makes the
/// verifier deny with `unavailable` (fail closed).
pub trait Revocations: fmt::Debug + Send + Sync {
    /// The first revocation that applies to this handoff, if any.
    fn check(&self, query: &RevocationQuery<'_>) -> Result<Option<Revoked>, StoreError>;

    /// How long the store keeps a token or task revocation after the time it was made
    /// (`Some(retention)`: an entry revoked at `t` may be forgotten from `t + retention`
    /// on), or `None` if it never forgets one. Agent revocations and the issued-before
    /// cut-off must never be forgotten.
    ///
    /// [`VerifierBuilder::build`](crate::VerifierBuilder::build) refuses a store whose
    /// retention is shorter than the longest time a revoked credential can still pass that
    /// verifier's time checks (`max_token_ttl + leeway`, SPEC section 6 step 8): a store that
    /// forgets earlier would let a revoked token verify again.
    fn retention(&self) -> Option<Duration>;
}

impl<T: Revocations + ?Sized> Revocations for Arc<T> {
    fn check(&self, query: &RevocationQuery<'_>) -> Result<Option<Revoked>, StoreError> {
        (**self).check(query)
    }
    fn retention(&self) -> Option<Duration> {
        (**self).retention()
    }
}

/// The shortest retention a revocation store needs for a verifier with these limits: a token
/// issued at or before the revocation time `t` expires at the latest at
/// `t + max_token_ttl` and stops verifying `leeway` later (SPEC section 6 step 8). Envelopes
/// are not revoked by id, and a chain is refused once any of its links has expired, so the
/// envelope lifetime adds nothing.
#[must_use]
pub fn required_retention(max_token_ttl: Duration, leeway: Duration) -> Duration {
    max_token_ttl.saturating_add(leeway)
}

#[derive(Debug, Default)]
struct State {
    /// Token id → keep the entry until (the token cannot be valid after that).
    tokens: HashMap<TokenId, UnixTime>,
    /// Task → (revoked at, keep until). Tokens of the task issued at or before `revoked at`
    /// are revoked; once every such token has expired the entry is dropped.
    tasks: HashMap<TaskId, (UnixTime, UnixTime)>,
    /// Agents revoked until explicitly restored (a leaked key can mint new tokens at any time).
    agents: HashMap<AgentId, ()>,
    issued_before: Option<UnixTime>,
    /// No token or task entry expires before this, so purging earlier would free nothing.
    next_purge: Option<UnixTime>,
}

/// Expired entries linger at most this long after their expiry before a write purges them,
/// so a burst of writes does not rescan the store on every call.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

impl State {
    /// Drops expired token and task entries and schedules the next purge.
    fn purge(&mut self, now: UnixTime) {
        self.tokens.retain(|_, until| *until > now);
        self.tasks.retain(|_, (_, until)| *until > now);
        let earliest = self
            .tokens
            .values()
            .chain(self.tasks.values().map(|(_, until)| until))
            .min()
            .copied();
        self.next_purge = earliest.map(|e| e.max(now.plus(PURGE_INTERVAL)));
    }

    /// Purges if an entry may have expired; called on every write, so memory stays bounded
    /// by the write rate times (retention + 60 s) without a background task.
    fn purge_if_due(&mut self, now: UnixTime) {
        if self.next_purge.is_some_and(|due| now >= due) {
            self.purge(now);
        }
    }

    fn schedule(&mut self, until: UnixTime) {
        self.next_purge = Some(self.next_purge.map_or(until, |due| due.min(until)));
    }
}

/// An in-memory revocation store. Clones share the same state, so one clone can sit in a
/// verifier while another revokes.
///
/// Entries for tokens and tasks are dropped once nothing they revoke can still be valid
/// (after the retention: the verifier's maximum token lifetime plus leeway), so memory stays
/// bounded: every write purges expired entries when one is due, and
/// [`len`](MemoryRevocations::len) reports the size. Agent revocations stay until
/// [`restore_agent`](MemoryRevocations::restore_agent).
#[derive(Clone, Debug)]
pub struct MemoryRevocations {
    state: Arc<RwLock<State>>,
    retention: Duration,
}

impl Default for MemoryRevocations {
    fn default() -> Self {
        MemoryRevocations::new()
    }
}

/// Counts of live entries in a [`MemoryRevocations`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RevocationStats {
    /// Revoked token ids.
    pub tokens: usize,
    /// Revoked tasks.
    pub tasks: usize,
    /// Revoked agents.
    pub agents: usize,
}

impl MemoryRevocations {
    /// An empty store with the default retention.
    #[must_use]
    pub fn new() -> MemoryRevocations {
        MemoryRevocations::with_retention(DEFAULT_RETENTION)
    }

    /// An empty store whose token and task entries live for `retention` after the time they
    /// were revoked. It must be at least the `max_token_ttl + leeway` of every verifier that
    /// reads the store ([`required_retention`]); the verifier's builder refuses a shorter one.
    #[must_use]
    pub fn with_retention(retention: Duration) -> MemoryRevocations {
        MemoryRevocations {
            state: Arc::new(RwLock::new(State::default())),
            retention,
        }
    }

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, State>, StoreError> {
        self.state
            .write()
            .map_err(|_| StoreError::poisoned("revocations"))
    }

    /// Revokes a token and, with it, every chain that contains it (all its descendants).
    /// Returns an error only if the store is broken.
    pub fn revoke_token(&self, id: &TokenId, now: UnixTime) -> Result<(), StoreError> {
        let until = now.plus(self.retention);
        let mut state = self.write()?;
        state.purge_if_due(now);
        let until = state.tokens.get(id).map_or(until, |old| until.max(*old));
        state.tokens.insert(id.clone(), until);
        state.schedule(until);
        Ok(())
    }

    /// Revokes every token of a task issued up to `now` (the task has ended).
    pub fn revoke_task(&self, task: &TaskId, now: UnixTime) -> Result<(), StoreError> {
        let until = now.plus(self.retention);
        let mut state = self.write()?;
        state.purge_if_due(now);
        // Revoking again later widens the revocation to tokens issued since.
        let entry = match state.tasks.get(task) {
            Some((at, old)) => ((*at).max(now), until.max(*old)),
            None => (now, until),
        };
        state.tasks.insert(task.clone(), entry);
        state.schedule(entry.1);
        Ok(())
    }

    /// Revokes an agent: every chain it appears in, and every envelope it sends, is refused
    /// until [`restore_agent`](MemoryRevocations::restore_agent).
    pub fn revoke_agent(&self, agent: &AgentId) -> Result<(), StoreError> {
        self.write()?.agents.insert(agent.clone(), ());
        Ok(())
    }

    /// Lifts an agent revocation (after its keys were replaced).
    pub fn restore_agent(&self, agent: &AgentId) -> Result<(), StoreError> {
        self.write()?.agents.remove(agent);
        Ok(())
    }

    /// Revokes, in bulk, every token and envelope issued before `cutoff` (a policy change,
    /// an incident). A later cut-off replaces an earlier one; an earlier one is ignored.
    pub fn revoke_issued_before(&self, cutoff: UnixTime) -> Result<(), StoreError> {
        let mut state = self.write()?;
        state.issued_before = Some(state.issued_before.map_or(cutoff, |c| c.max(cutoff)));
        Ok(())
    }

    /// Drops entries that can no longer match anything valid.
    pub fn purge(&self, now: UnixTime) -> Result<(), StoreError> {
        self.write()?.purge(now);
        Ok(())
    }

    /// How many entries (tokens, tasks, agents and a cut-off) the store holds.
    #[must_use]
    pub fn len(&self) -> usize {
        let s = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.tokens.len() + s.tasks.len() + s.agents.len() + usize::from(s.issued_before.is_some())
    }

    /// Whether the store holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many entries the store holds.
    pub fn stats(&self) -> Result<RevocationStats, StoreError> {
        let state = self
            .state
            .read()
            .map_err(|_| StoreError::poisoned("revocations"))?;
        Ok(RevocationStats {
            tokens: state.tokens.len(),
            tasks: state.tasks.len(),
            agents: state.agents.len(),
        })
    }

    /// Loads the revocations file of SPEC section 9:
    /// `{"tokens":[jti...],"tasks":[task...],"agents":[id...],"issued_before":<unix-secs>}`.
    /// Tasks in the file are revoked for tokens issued up to `now`. The file must be a regular
    /// file of at most [`MAX_REVOCATIONS_BYTES`](crate::limits::MAX_REVOCATIONS_BYTES) (see
    /// [`read_regular_file`](crate::file::read_regular_file)).
    pub fn load(path: impl AsRef<Path>, now: UnixTime) -> Result<MemoryRevocations, Error> {
        let path = path.as_ref();
        let text = crate::file::read_text(
            path,
            "revocations file",
            "reading revocations file",
            crate::limits::MAX_REVOCATIONS_BYTES,
        )?;
        MemoryRevocations::from_json(&text, now).map_err(|problem| Error::RevocationsFile {
            path: path.to_owned(),
            problem,
        })
    }

    /// Parses the revocations file format (see [`load`](MemoryRevocations::load)).
    pub fn from_json(json: &str, now: UnixTime) -> Result<MemoryRevocations, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            #[serde(default)]
            tokens: Vec<TokenId>,
            #[serde(default)]
            tasks: Vec<TaskId>,
            #[serde(default)]
            agents: Vec<AgentId>,
            #[serde(default)]
            issued_before: Option<u64>,
        }
        let file: File = serde_json::from_str(json).map_err(|e| {
            format!(
                "not a valid revocations file: {}",
                crate::wire::json::json_problem(&e)
            )
        })?;
        let store = MemoryRevocations::new();
        let broken = |e: StoreError| e.to_string();
        for t in &file.tokens {
            store.revoke_token(t, now).map_err(broken)?;
        }
        for t in &file.tasks {
            store.revoke_task(t, now).map_err(broken)?;
        }
        for a in &file.agents {
            store.revoke_agent(a).map_err(broken)?;
        }
        if let Some(cutoff) = file.issued_before {
            store
                .revoke_issued_before(UnixTime::from_secs(cutoff))
                .map_err(broken)?;
        }
        Ok(store)
    }
}

impl Revocations for MemoryRevocations {
    fn check(&self, query: &RevocationQuery<'_>) -> Result<Option<Revoked>, StoreError> {
        let state = self
            .state
            .read()
            .map_err(|_| StoreError::poisoned("revocations"))?;
        if let Some(cutoff) = state.issued_before {
            let before = query.envelope_issued_at < cutoff
                || query.tokens.iter().any(|t| t.issued_at < cutoff);
            if before {
                return Ok(Some(Revoked::IssuedBefore { cutoff }));
            }
        }
        for agent in query.agents {
            if state.agents.contains_key(*agent) {
                return Ok(Some(Revoked::Agent((*agent).clone())));
            }
        }
        if let Some((revoked_at, _)) = state.tasks.get(query.task) {
            if query.tokens.iter().any(|t| t.issued_at <= *revoked_at) {
                return Ok(Some(Revoked::Task(query.task.clone())));
            }
        }
        for token in query.tokens {
            if state.tokens.contains_key(token.id) {
                return Ok(Some(Revoked::Token(token.id.clone())));
            }
        }
        Ok(None)
    }

    fn retention(&self) -> Option<Duration> {
        Some(self.retention)
    }
}

/// The write side of a revocation store. Object-safe, so a [`TaskGrant`](crate::TaskGrant) (or an incident
/// tool) can revoke in any store: in memory, Redis, ...
///
/// Every method returns only once the revocation is in force for the verifiers that read the
/// store, or fails.
pub trait RevocationWriter: fmt::Debug + Send + Sync {
    /// Revokes a token and, with it, every chain that contains it (all its descendants).
    fn revoke_token(&self, id: &TokenId, now: UnixTime) -> Result<(), StoreError>;
    /// Revokes every token of a task issued up to `now` (the task has ended).
    fn revoke_task(&self, task: &TaskId, now: UnixTime) -> Result<(), StoreError>;
    /// Revokes an agent: every chain it appears in and every envelope it sends.
    fn revoke_agent(&self, agent: &AgentId) -> Result<(), StoreError>;
    /// Revokes every token and envelope issued before `cutoff`.
    fn revoke_issued_before(&self, cutoff: UnixTime) -> Result<(), StoreError>;
}

impl<T: RevocationWriter + ?Sized> RevocationWriter for Arc<T> {
    fn revoke_token(&self, id: &TokenId, now: UnixTime) -> Result<(), StoreError> {
        (**self).revoke_token(id, now)
    }
    fn revoke_task(&self, task: &TaskId, now: UnixTime) -> Result<(), StoreError> {
        (**self).revoke_task(task, now)
    }
    fn revoke_agent(&self, agent: &AgentId) -> Result<(), StoreError> {
        (**self).revoke_agent(agent)
    }
    fn revoke_issued_before(&self, cutoff: UnixTime) -> Result<(), StoreError> {
        (**self).revoke_issued_before(cutoff)
    }
}

impl RevocationWriter for MemoryRevocations {
    fn revoke_token(&self, id: &TokenId, now: UnixTime) -> Result<(), StoreError> {
        MemoryRevocations::revoke_token(self, id, now)
    }
    fn revoke_task(&self, task: &TaskId, now: UnixTime) -> Result<(), StoreError> {
        MemoryRevocations::revoke_task(self, task, now)
    }
    fn revoke_agent(&self, agent: &AgentId) -> Result<(), StoreError> {
        MemoryRevocations::revoke_agent(self, agent)
    }
    fn revoke_issued_before(&self, cutoff: UnixTime) -> Result<(), StoreError> {
        MemoryRevocations::revoke_issued_before(self, cutoff)
    }
}
