//! Task lifecycle: a root grant whose credentials die when the task is done.
//!
//! [`TaskGrant`] wraps the root [`DelegationToken`] of a task. [`complete`](TaskGrant::complete)
//! (or dropping the grant) revokes the task in a [`RevocationWriter`], so every token of that
//! task, at every depth of every chain, stops verifying at once: the revocation check matches
//! a chain as soon as any of its links was issued up to the revocation time, and every chain
//! of the task contains the root.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, StoreError};
use crate::grant::{DelegationToken, TokenBuilder};
use crate::store::RevocationWriter;
use crate::wire::TaskId;

/// The root grant of a task, bound to the revocation store that ends it.
///
/// Dereferences to the root [`DelegationToken`]: attenuate it, put it in envelopes.
/// [`complete`](TaskGrant::complete) revokes the task; so does dropping the grant, unless
/// [`detach`](TaskGrant::detach) was called. A revocation made on drop cannot report a
/// failure, so call `complete` where the outcome matters.
///
/// The task is revoked for tokens issued up to the completion time (by the grant's clock, and
/// never earlier than the root's issue time), so a later task reusing the same id is not
/// affected unless it is issued in the same second.
///
/// ```
/// use agent_handoff::*;
/// let orchestrator = AgentIdentity::generate("spiffe://acme.example/orchestrator".parse()?);
/// let planner = AgentIdentity::generate("spiffe://acme.example/agents/planner".parse()?);
/// let revocations = MemoryRevocations::new();
/// let grant = DelegationToken::root(&orchestrator)
///     .delegate_to(&planner.public())
///     .task("task-42".parse()?)
///     .allow("tickets.*", "project/alpha/*")?
///     .sign_task(revocations.clone())?;
/// assert_eq!(grant.claimed_subject(), planner.id()); // derefs to the root token
/// grant.complete()?; // every token of task-42 issued so far is now revoked
/// assert_eq!(revocations.stats()?.tasks, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping a TaskGrant revokes its task at once; keep it for the task's duration"]
pub struct TaskGrant {
    token: DelegationToken,
    revocations: Arc<dyn RevocationWriter>,
    clock: Arc<dyn Clock>,
    armed: bool,
}

impl fmt::Debug for TaskGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGrant")
            .field("token", &self.token)
            .field("revocations", &self.revocations)
            .field("armed", &self.armed)
            .finish_non_exhaustive()
    }
}

impl TaskGrant {
    /// Takes charge of a root token: its task will be revoked in `revocations` when the
    /// grant completes or is dropped. Uses the system clock.
    pub fn new(
        root: DelegationToken,
        revocations: impl RevocationWriter + 'static,
    ) -> Result<TaskGrant, Error> {
        TaskGrant::with_clock(root, revocations, SystemClock)
    }

    /// Like [`new`](TaskGrant::new), with the clock that stamps the revocation.
    pub fn with_clock(
        root: DelegationToken,
        revocations: impl RevocationWriter + 'static,
        clock: impl Clock + 'static,
    ) -> Result<TaskGrant, Error> {
        if root.claimed_parent().is_some() {
            return Err(Error::build(
                "task grant",
                format!(
                    "token `{}` is not a root token: only the root grant of a task can end it",
                    root.id()
                ),
            ));
        }
        Ok(TaskGrant {
            token: root,
            revocations: Arc::new(revocations),
            clock: Arc::new(clock),
            armed: true,
        })
    }

    /// The root token.
    #[must_use]
    pub fn token(&self) -> &DelegationToken {
        &self.token
    }

    /// The task this grant ends.
    #[must_use]
    pub fn task(&self) -> &TaskId {
        self.token.claimed_task()
    }

    /// Ends the task: revokes every token of it issued so far, at every depth. Returns the
    /// store's error if the revocation could not be recorded (then retry with
    /// [`RevocationWriter::revoke_task`], or revoke the root token id).
    pub fn complete(mut self) -> Result<(), StoreError> {
        self.armed = false;
        self.revoke()
    }

    /// Gives up the lifecycle: the task is no longer revoked on drop, and the root token is
    /// returned to live until it expires.
    #[must_use]
    pub fn detach(mut self) -> DelegationToken {
        self.armed = false;
        self.token.clone()
    }

    fn revoke(&self) -> Result<(), StoreError> {
        let at = self.clock.now().max(self.token.claimed_issued_at());
        self.revocations.revoke_task(self.task(), at)
    }
}

impl Deref for TaskGrant {
    type Target = DelegationToken;
    fn deref(&self) -> &DelegationToken {
        &self.token
    }
}

impl AsRef<DelegationToken> for TaskGrant {
    fn as_ref(&self) -> &DelegationToken {
        &self.token
    }
}

impl Drop for TaskGrant {
    fn drop(&mut self) {
        if self.armed {
            // Nothing can report a failure from `drop`; `complete` returns it.
            let _ = self.revoke();
        }
    }
}

impl TokenBuilder<'_> {
    /// Signs a root token and returns it as a [`TaskGrant`] that revokes the task in
    /// `revocations` when completed or dropped (system clock). Refuses a child token.
    pub fn sign_task(
        self,
        revocations: impl RevocationWriter + 'static,
    ) -> Result<TaskGrant, Error> {
        TaskGrant::new(self.sign()?, revocations)
    }

    /// Like [`sign_task`](TokenBuilder::sign_task), with the clock that stamps the revocation.
    pub fn sign_task_with_clock(
        self,
        revocations: impl RevocationWriter + 'static,
        clock: impl Clock + 'static,
    ) -> Result<TaskGrant, Error> {
        TaskGrant::with_clock(self.sign()?, revocations, clock)
    }
}
