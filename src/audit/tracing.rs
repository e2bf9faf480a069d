//! [`TracingAudit`]: audit records as `tracing` events (feature `tracing`).

use std::fmt;

use super::{AuditRecord, AuditSink};
use crate::error::StoreError;

/// Emits every record as a structured `tracing` event (target `agent_handoff::audit`;
/// `INFO` for allow, `WARN` for deny) with the same fields as a JSON record: `time`,
/// `decision`, `reason`, `detail`, `recipient`, then the verified `envelope`, `sender`, `task`,
/// `intent`, `mode`, `chain`, `scope` of an allow, or the `claimed_…` values of a denial, and
/// `policy`, `policy_version`. Never key material, signatures, tokens or payload bytes.
///
/// It never fails: whether a subscriber keeps the event is the subscriber's business, so use
/// it next to a durable sink where evidence matters.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingAudit;

fn joined<T: fmt::Display>(items: &[T]) -> Option<String> {
    if items.is_empty() {
        return None;
    }
    Some(
        items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    )
}

impl AuditSink for TracingAudit {
    fn record(&self, r: &AuditRecord) -> Result<(), StoreError> {
        match (&r.allowed, &r.claimed) {
            (Some(a), _) => tracing::info!(
                target: "agent_handoff::audit",
                time = %r.time,
                decision = "allow",
                recipient = %r.recipient,
                envelope = %a.envelope,
                sender = %a.sender,
                task = %a.task,
                intent = %a.intent,
                mode = a.mode.as_str(),
                chain = joined(&a.chain).map(display),
                scope = joined(&a.scope).map(display),
                policy = r.policy.as_deref(),
                policy_version = r.policy_version.as_deref(),
                "handoff allowed"
            ),
            (None, claimed) => {
                let c = claimed.as_ref();
                tracing::warn!(
                    target: "agent_handoff::audit",
                    time = %r.time,
                    decision = "deny",
                    reason = r.reason,
                    detail = r.detail.as_deref(),
                    recipient = %r.recipient,
                    claimed_envelope = c.and_then(|c| c.envelope.as_ref()).map(display),
                    claimed_sender = c.and_then(|c| c.sender.as_ref()).map(display),
                    claimed_audience = c.and_then(|c| c.audience.as_ref()).map(display),
                    claimed_task = c.and_then(|c| c.task.as_ref()).map(display),
                    claimed_intent = c.and_then(|c| c.intent.as_ref()).map(display),
                    claimed_chain = c.and_then(|c| joined(&c.chain)).map(display),
                    policy = r.policy.as_deref(),
                    policy_version = r.policy_version.as_deref(),
                    "handoff denied"
                );
            }
        }
        Ok(())
    }
}
