//! Audit: one record per decision (SPEC section 7), and sinks that keep them.
//!
//! A record of a denied input holds what the input *claimed* under `claimed`, never as
//! verified facts. No record ever holds key material, signatures or payload bytes.

use std::fmt;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::clock::UnixTime;
use crate::error::{Reason, StoreError};
use crate::grant::{Capability, HandoffMode, Intent};
use crate::wire::{AgentId, TaskId, TokenId};

mod jsonl;
mod log;
#[cfg(feature = "tracing")]
pub mod tracing;

#[cfg(feature = "tracing")]
pub use self::tracing::TracingAudit;
pub use crate::error::{AuditLogError, AuditLogFault};
pub use jsonl::{JsonlAudit, SyncPolicy};
pub use log::{
    verify_audit_log, verify_audit_log_extends, verify_audit_log_signed, AuditLogReport,
    AuditLogSummary, AuditSignatures,
};

/// The outcome of a verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The handoff was accepted.
    Allow,
    /// The handoff was refused.
    Deny,
}

/// What a denied input claimed. None of it was verified.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ClaimedFacts {
    /// The envelope id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope: Option<TokenId>,
    /// The sender.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<AgentId>,
    /// The recipient named in `aud`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<AgentId>,
    /// The task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskId>,
    /// The intent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<Intent>,
    /// The ids of the chain's links that could be read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<TokenId>,
}

/// Verified facts of an accepted handoff.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct AllowedFacts {
    pub envelope: TokenId,
    pub sender: AgentId,
    pub task: TaskId,
    pub intent: Intent,
    pub mode: HandoffMode,
    pub chain: Vec<TokenId>,
    pub scope: Vec<Capability>,
}

/// One audit record: one decision about one input.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditRecord {
    time: String,
    decision: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    recipient: AgentId,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    allowed: Option<AllowedFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    claimed: Option<ClaimedFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_version: Option<String>,
}

impl AuditRecord {
    pub(crate) fn allow(
        now: UnixTime,
        recipient: AgentId,
        facts: AllowedFacts,
        policy: Option<String>,
        policy_version: Option<String>,
    ) -> AuditRecord {
        AuditRecord {
            time: now.to_rfc3339(),
            decision: Verdict::Allow,
            reason: None,
            detail: None,
            recipient,
            allowed: Some(facts),
            claimed: None,
            policy,
            policy_version,
        }
    }

    pub(crate) fn deny(
        now: UnixTime,
        recipient: AgentId,
        reason: Reason,
        detail: &str,
        claimed: ClaimedFacts,
        policy: Option<String>,
        policy_version: Option<String>,
    ) -> AuditRecord {
        AuditRecord {
            time: now.to_rfc3339(),
            decision: Verdict::Deny,
            reason: Some(reason.as_str()),
            detail: Some(detail.to_owned()),
            recipient,
            allowed: None,
            claimed: Some(claimed),
            policy,
            policy_version,
        }
    }

    /// Allow or deny.
    #[must_use]
    pub fn decision(&self) -> Verdict {
        self.decision
    }

    /// The reason code of a denial.
    #[must_use]
    pub fn reason(&self) -> Option<Reason> {
        self.reason.and_then(Reason::from_code)
    }

    /// The verifier that decided.
    #[must_use]
    pub fn recipient(&self) -> &AgentId {
        &self.recipient
    }

    /// The verified sender of an accepted handoff (`None` on deny).
    #[must_use]
    pub fn verified_sender(&self) -> Option<&AgentId> {
        self.allowed.as_ref().map(|a| &a.sender)
    }

    /// What a denied input claimed (`None` on allow).
    #[must_use]
    pub fn claimed(&self) -> Option<&ClaimedFacts> {
        self.claimed.as_ref()
    }

    /// The policy rule that decided, if one did.
    #[must_use]
    pub fn policy(&self) -> Option<&str> {
        self.policy.as_deref()
    }

    /// The record as one line of JSON (no trailing newline); control, bidirectional and
    /// invisible characters are escaped as `\uXXXX`.
    #[must_use]
    pub fn to_json(&self) -> String {
        crate::escape::to_json(self).unwrap_or_default()
    }
}

/// Where audit records go. `record` must not return before the record is as durable as the
/// sink promises: an accepted handoff is reported only after its record is kept. An `Err`
/// turns an allow into a deny with `unavailable` (fail closed).
pub trait AuditSink: fmt::Debug + Send + Sync {
    /// Keeps one record.
    fn record(&self, record: &AuditRecord) -> Result<(), StoreError>;
}

impl<T: AuditSink + ?Sized> AuditSink for Arc<T> {
    fn record(&self, record: &AuditRecord) -> Result<(), StoreError> {
        (**self).record(record)
    }
}

/// Keeps records in memory (for tests and examples). Clones share the records.
#[derive(Clone, Debug, Default)]
pub struct MemoryAudit(Arc<Mutex<Vec<AuditRecord>>>);

impl MemoryAudit {
    /// An empty sink.
    #[must_use]
    pub fn new() -> MemoryAudit {
        MemoryAudit::default()
    }

    /// A copy of the records so far.
    #[must_use]
    pub fn records(&self) -> Vec<AuditRecord> {
        self.0.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl AuditSink for MemoryAudit {
    fn record(&self, record: &AuditRecord) -> Result<(), StoreError> {
        self.0
            .lock()
            .map_err(|_| StoreError::new("audit sink", "lock poisoned"))?
            .push(record.clone());
        Ok(())
    }
}

/// Discards every record. Use only where another layer audits; a verifier must be given a
/// sink explicitly, so choosing this one is a visible decision.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiscardAudit;

impl AuditSink for DiscardAudit {
    fn record(&self, _record: &AuditRecord) -> Result<(), StoreError> {
        Ok(())
    }
}
