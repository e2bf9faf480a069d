//! Task lifecycle and revocation: credentials die when their work is done; replay protection
//! under concurrency and over long runs.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use crate::common::*;
use agent_handoff::audit::DiscardAudit;
use agent_handoff::audit::Verdict;
use agent_handoff::error::StoreError;
use agent_handoff::limits::DEFAULT_RETENTION;
use agent_handoff::store::required_retention;
use agent_handoff::store::Freshness;
use agent_handoff::store::ReplayCache;
use agent_handoff::*;

/// executor → payments: payments.execute up to 50, depth 0 (the third link).
fn leaf_grant(w: &World, sub: &DelegationToken) -> DelegationToken {
    sub.attenuate(&w.executor.identity)
        .delegate_to(&w.payments.public())
        .grant(
            Capability::new("payments.execute", "account/ops/*")
                .unwrap()
                .max("amount", 50)
                .unwrap(),
        )
        .depth(0)
        .issued_at(w.now())
        .sign()
        .unwrap()
}

/// The executor hands the payment to the payments tool: a delegation with the full
/// three-link chain orchestrator → planner → executor → payments.
fn payment(w: &World, chain: &[&DelegationToken]) -> HandoffEnvelope {
    HandoffEnvelope::builder(&w.executor.identity)
        .to(w.payments.id())
        .intent("payments.execute", "account/ops/7")
        .unwrap()
        .arg("amount", 20)
        .payload(PAYLOAD)
        .chain(chain.iter().copied())
        .issued_at(w.now())
        .seal()
        .unwrap()
}

/// The planner asks the payments tool to read a ticket on the root grant alone.
fn planner_to_payments(w: &World, root: &DelegationToken) -> HandoffEnvelope {
    HandoffEnvelope::builder(&w.planner.identity)
        .to(w.payments.id())
        .intent("tickets.read", "project/alpha/9")
        .unwrap()
        .payload(PAYLOAD)
        .chain([root])
        .issued_at(w.now())
        .seal()
        .unwrap()
}

fn verify(v: &HandoffVerifier, e: &HandoffEnvelope) -> Result<VerifiedHandoff, Rejection> {
    v.verify(e.as_str(), PAYLOAD, &RequestContext::new())
}

fn task_grant(w: &World) -> TaskGrant {
    DelegationToken::root(&w.orchestrator.identity)
        .delegate_to(&w.planner.public())
        .task("task-42".parse().unwrap())
        .allow("tickets.*", "project/alpha/*")
        .unwrap()
        .grant(
            Capability::new("payments.execute", "account/ops/*")
                .unwrap()
                .max("amount", 500)
                .unwrap(),
        )
        .depth(2)
        .ttl(Duration::from_secs(600))
        .issued_at(w.now())
        .sign_task_with_clock(w.revocations.clone(), w.clock.clone())
        .unwrap()
}

#[test]
fn task_completion_kills_a_three_link_chain_mid_flight() {
    let w = World::new();
    let at_payments = w.verifier(&w.payments);
    let at_executor = w.verifier(&w.executor);
    let grant = task_grant(&w);
    let sub = w.sub_grant(&grant);
    let leaf = leaf_grant(&w, &sub);
    let root = grant.token().clone();

    // In flight: every depth verifies.
    let h = verify(&at_payments, &payment(&w, &[&root, &sub, &leaf])).unwrap();
    assert_eq!(h.mode(), HandoffMode::Delegation);
    assert_eq!(h.chain().len(), 3);
    verify(&at_executor, &w.request(&[root.clone(), sub.clone()])).unwrap();
    verify(&at_payments, &planner_to_payments(&w, &root)).unwrap();

    w.clock.advance(Duration::from_secs(30));
    grant.complete().unwrap();

    // Every token of the task, at every depth, stops at once (fresh envelopes: not replays).
    let r = assert_reason(
        verify(&at_payments, &payment(&w, &[&root, &sub, &leaf])),
        Reason::Revoked,
    );
    assert!(r.detail().contains("task `task-42` is revoked"), "{r}");
    assert_reason(
        verify(&at_executor, &w.request(&[root.clone(), sub.clone()])),
        Reason::Revoked,
    );
    assert_reason(
        verify(&at_payments, &planner_to_payments(&w, &root)),
        Reason::Revoked,
    );
    // A link minted after completion still carries its revoked ancestors.
    let late_leaf = leaf_grant(&w, &sub);
    assert_reason(
        verify(&at_payments, &payment(&w, &[&root, &sub, &late_leaf])),
        Reason::Revoked,
    );
    assert_eq!(w.revocations.stats().unwrap().tasks, 1);
}

#[test]
fn dropping_the_grant_revokes_the_task_unless_detached() {
    let w = World::new();
    let at_payments = w.verifier(&w.payments);

    let root = {
        let grant = task_grant(&w);
        verify(&at_payments, &planner_to_payments(&w, &grant)).unwrap();
        grant.token().clone()
    }; // dropped here: the task is over
    assert_reason(
        verify(&at_payments, &planner_to_payments(&w, &root)),
        Reason::Revoked,
    );

    // A new task (issued later, even under the same id) is not affected; detached, it
    // outlives its handle.
    w.clock.advance(Duration::from_secs(1));
    let detached = task_grant(&w).detach();
    verify(&at_payments, &planner_to_payments(&w, &detached)).unwrap();
    assert_eq!(w.revocations.stats().unwrap().tasks, 1);
}

#[test]
fn a_task_grant_must_hold_a_root_token() {
    let w = World::new();
    let grant = w.grant();
    let sub = w.sub_grant(&grant);
    let err = TaskGrant::new(sub, w.revocations.clone()).unwrap_err();
    assert!(err.to_string().contains("not a root token"), "{err}");
    let err = grant
        .attenuate(&w.planner.identity)
        .delegate_to(&w.executor.public())
        .allow("tickets.read", "project/alpha/*")
        .unwrap()
        .sign_task(w.revocations.clone())
        .unwrap_err();
    assert!(err.to_string().contains("not a root token"), "{err}");
    assert!(w.revocations.is_empty());
}

#[test]
fn a_task_grant_works_with_any_revocation_writer() {
    #[derive(Debug, Default)]
    struct Recorder(std::sync::Mutex<Vec<String>>);
    impl RevocationWriter for Recorder {
        fn revoke_token(&self, id: &TokenId, _: UnixTime) -> Result<(), StoreError> {
            self.0.lock().unwrap().push(format!("token {id}"));
            Ok(())
        }
        fn revoke_task(&self, task: &TaskId, now: UnixTime) -> Result<(), StoreError> {
            self.0
                .lock()
                .unwrap()
                .push(format!("task {task} {}", now.as_secs()));
            Ok(())
        }
        fn revoke_agent(&self, _: &AgentId) -> Result<(), StoreError> {
            Err(StoreError::new("recorder", "unused"))
        }
        fn revoke_issued_before(&self, _: UnixTime) -> Result<(), StoreError> {
            Err(StoreError::new("recorder", "unused"))
        }
    }
    let w = World::new();
    let store = Arc::new(Recorder::default());
    let writer: Arc<dyn RevocationWriter> = store.clone();
    let grant = TaskGrant::with_clock(w.grant(), writer, w.clock.clone()).unwrap();
    w.clock.advance(Duration::from_secs(7));
    grant.complete().unwrap();
    assert_eq!(
        *store.0.lock().unwrap(),
        vec![format!("task task-42 {}", T0 + 7)]
    );

    // A store that fails is reported by `complete`.
    #[derive(Debug)]
    struct Down;
    impl RevocationWriter for Down {
        fn revoke_token(&self, _: &TokenId, _: UnixTime) -> Result<(), StoreError> {
            Err(StoreError::new("down", "unreachable"))
        }
        fn revoke_task(&self, _: &TaskId, _: UnixTime) -> Result<(), StoreError> {
            Err(StoreError::new("down", "unreachable"))
        }
        fn revoke_agent(&self, _: &AgentId) -> Result<(), StoreError> {
            Err(StoreError::new("down", "unreachable"))
        }
        fn revoke_issued_before(&self, _: UnixTime) -> Result<(), StoreError> {
            Err(StoreError::new("down", "unreachable"))
        }
    }
    let grant = TaskGrant::new(w.grant(), Down).unwrap();
    assert!(grant.complete().is_err());
}

#[test]
fn revoking_a_token_cascades_to_every_descendant() {
    let w = World::new();
    let at_payments = w.verifier(&w.payments);
    let root = w.grant();
    let sub = w.sub_grant(&root);
    let leaf = leaf_grant(&w, &sub);

    w.revocations.revoke_token(sub.id(), w.now()).unwrap();
    // The revoked link and everything below it.
    let r = assert_reason(
        verify(&at_payments, &payment(&w, &[&root, &sub, &leaf])),
        Reason::Revoked,
    );
    assert!(r.detail().contains(&format!("token `{}`", sub.id())), "{r}");
    let other_leaf = leaf_grant(&w, &sub);
    assert_reason(
        verify(&at_payments, &payment(&w, &[&root, &sub, &other_leaf])),
        Reason::Revoked,
    );
    // Its ancestor is untouched.
    verify(&at_payments, &planner_to_payments(&w, &root)).unwrap();

    // Revoking the root takes down the whole tree.
    w.revocations.revoke_token(root.id(), w.now()).unwrap();
    assert_reason(
        verify(&at_payments, &planner_to_payments(&w, &root)),
        Reason::Revoked,
    );
}

#[test]
fn revoking_an_agent_kills_every_chain_it_appears_in() {
    let w = World::new();
    let at_payments = w.verifier(&w.payments);
    let root = w.grant();
    let sub = w.sub_grant(&root);
    let leaf = leaf_grant(&w, &sub);

    w.revocations.revoke_agent(w.executor.id()).unwrap();
    let r = assert_reason(
        verify(&at_payments, &payment(&w, &[&root, &sub, &leaf])),
        Reason::Revoked,
    );
    assert!(
        r.detail()
            .contains(&format!("agent `{}` is revoked", w.executor.id())),
        "{r}"
    );
    // As a subject in the middle of a chain it is just as dead.
    assert_reason(
        w.verifier(&w.executor).verify(
            w.request(&[root.clone(), sub.clone()]).as_str(),
            PAYLOAD,
            &RequestContext::new(),
        ),
        Reason::Revoked,
    );
    // A chain without the executor is unaffected.
    verify(&at_payments, &planner_to_payments(&w, &root)).unwrap();

    // Restored (its key replaced), it works again.
    w.revocations.restore_agent(w.executor.id()).unwrap();
    verify(&at_payments, &payment(&w, &[&root, &sub, &leaf])).unwrap();
}

#[test]
fn an_issued_before_cut_off_revokes_in_bulk() {
    let w = World::new();
    let at_payments = w.verifier(&w.payments);
    let root = w.grant();
    let sub = w.sub_grant(&root);
    let leaf = leaf_grant(&w, &sub);

    w.clock.advance(Duration::from_secs(10));
    w.revocations.revoke_issued_before(w.now()).unwrap();
    assert_reason(
        verify(&at_payments, &payment(&w, &[&root, &sub, &leaf])),
        Reason::Revoked,
    );
    assert_reason(
        verify(&at_payments, &planner_to_payments(&w, &root)),
        Reason::Revoked,
    );
    // Grants issued from the cut-off on work.
    let root = w.grant();
    let sub = w.sub_grant(&root);
    let leaf = leaf_grant(&w, &sub);
    verify(&at_payments, &payment(&w, &[&root, &sub, &leaf])).unwrap();
    // An earlier cut-off never loosens a later one.
    w.revocations
        .revoke_issued_before(UnixTime::from_secs(T0))
        .unwrap();
    w.clock.advance(Duration::from_secs(1));
    w.revocations.revoke_issued_before(w.now()).unwrap();
    assert_reason(
        verify(&at_payments, &payment(&w, &[&root, &sub, &leaf])),
        Reason::Revoked,
    );
}

#[test]
fn revocation_entries_expire_and_memory_stays_bounded() {
    // Retention = the verifier's default longest token lifetime plus leeway.
    let retention = Duration::from_secs(3600 + 5);
    let store = MemoryRevocations::with_retention(retention);
    let step = 10u64;
    let mut now = UnixTime::from_secs(T0);
    let mut peak = 0;
    // 28 hours of one token and one task revocation every 10 s: 20,000 revocations.
    for n in 0..10_000u32 {
        let token: TokenId = format!("token-id-{n:016}").parse().unwrap();
        let task: TaskId = format!("task-{n}").parse().unwrap();
        store.revoke_token(&token, now).unwrap();
        store.revoke_task(&task, now).unwrap();
        peak = peak.max(store.len());
        now = now.plus(Duration::from_secs(step));
    }
    // Live entries: retention / step per kind, plus at most 60 s of expired ones awaiting
    // the next purge.
    let bound = 2 * ((3605 + 60) / step as usize + 1);
    assert!(peak <= bound, "peak {peak} exceeds {bound}");
    assert!(
        peak >= 2 * (3605 / step as usize),
        "peak {peak}: entries dropped too early"
    );
    let stats = store.stats().unwrap();
    assert_eq!(stats.tokens, stats.tasks);

    // An entry outlives every token it could revoke, then goes.
    let store = MemoryRevocations::with_retention(retention);
    let t0 = UnixTime::from_secs(T0);
    let id: TokenId = "token-id-0000000000000001".parse().unwrap();
    store.revoke_token(&id, t0).unwrap();
    store
        .purge(t0.plus(retention).minus(Duration::from_secs(1)))
        .unwrap();
    assert_eq!(store.len(), 1);
    store.purge(t0.plus(retention)).unwrap();
    assert_eq!(store.len(), 0);
    // Agents and the cut-off are counted too, and are not purged by time.
    store
        .revoke_agent(&id_of("spiffe://acme.example/x"))
        .unwrap();
    store.revoke_issued_before(t0).unwrap();
    store.purge(t0.plus(retention * 10)).unwrap();
    assert_eq!(store.len(), 2);
}

fn id_of(s: &str) -> AgentId {
    s.parse().unwrap()
}

#[test]
fn concurrent_verification_of_one_envelope_allows_exactly_once() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 200;
    let w = World::new();
    let verifier = Arc::new(w.verifier(&w.executor));
    let root = w.grant();
    for round in 0..ROUNDS {
        let wire = Arc::new(w.request(std::slice::from_ref(&root)).into_string());
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (v, wire, barrier) = (verifier.clone(), wire.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    v.verify(&wire, PAYLOAD, &RequestContext::new())
                        .map(|_| ())
                        .map_err(|r| r.reason())
                })
            })
            .collect();
        let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let allowed = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(allowed, 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes
                .iter()
                .all(|o| o.is_ok() || *o == Err(Reason::Replayed)),
            "round {round}: {outcomes:?}"
        );
    }
    let decisions = w.audit.records();
    assert_eq!(decisions.len(), THREADS * ROUNDS);
    assert_eq!(
        decisions
            .iter()
            .filter(|r| r.decision() == Verdict::Allow)
            .count(),
        ROUNDS
    );
}

#[test]
fn replay_memory_stays_bounded_over_a_long_run_through_the_verifier() {
    let w = World::new();
    let cache = MemoryReplayCache::new(256);
    let verifier = w
        .verifier_builder(&w.executor)
        .replay(cache.clone())
        .build()
        .unwrap();
    let mut peak = 0;
    for _ in 0..2_000 {
        // One short-lived (60 s) envelope every 10 s, over about 5.5 hours.
        w.clock.advance(Duration::from_secs(10));
        let root = w.grant();
        verifier
            .verify(w.request(&[root]).as_str(), PAYLOAD, &RequestContext::new())
            .unwrap();
        peak = peak.max(cache.len());
    }
    assert!(peak <= cache.capacity(), "peak {peak}");
    assert!(cache.len() <= 256);
}

#[test]
fn replay_cache_memory_is_bounded_over_many_short_lived_entries() {
    let cache = MemoryReplayCache::new(1024);
    let mut now = UnixTime::from_secs(T0);
    let mut peak = 0;
    for n in 0..100_000u32 {
        let id: TokenId = format!("envelope-id-{n:010}").parse().unwrap();
        // Lives 60 s plus 5 s leeway; one new envelope a second: about 65 live at a time.
        let until = now.plus(Duration::from_secs(65));
        assert_eq!(
            cache.check_and_insert(&id, until, now).unwrap(),
            Freshness::Fresh
        );
        peak = peak.max(cache.len());
        now = now.plus(Duration::from_secs(1));
    }
    assert!(peak <= cache.capacity(), "peak {peak}");
}

#[test]
fn a_full_replay_cache_denies_with_unavailable_and_keeps_live_entries() {
    let w = World::new();
    let cache = MemoryReplayCache::new(16); // one entry per shard
    let verifier = w
        .verifier_builder(&w.executor)
        .replay(cache.clone())
        .build()
        .unwrap();
    let root = w.grant();
    let mut accepted = Vec::new();
    let mut refused = None;
    for _ in 0..64 {
        let wire = w.request(std::slice::from_ref(&root)).into_string();
        match verifier.verify(&wire, PAYLOAD, &RequestContext::new()) {
            Ok(_) => accepted.push(wire),
            Err(r) => {
                assert_eq!(r.reason(), Reason::Unavailable, "{r}");
                refused = Some(r);
                break;
            }
        }
    }
    assert!(refused.is_some(), "a full cache must refuse");
    // Nothing live was evicted: every accepted envelope is still a replay.
    for wire in &accepted {
        assert_reason(
            verifier.verify(wire, PAYLOAD, &RequestContext::new()),
            Reason::Replayed,
        );
    }
}

// ------------------------------------------------- retention covers every revoked credential

/// A root grant of task-42 living the default maximum of one hour, issued at `T0`.
fn hour_long_root(w: &World) -> DelegationToken {
    DelegationToken::root(&w.orchestrator.identity)
        .delegate_to(&w.planner.public())
        .task("task-42".parse().unwrap())
        .allow("tickets.*", "project/alpha/*")
        .unwrap()
        .depth(2)
        .ttl(Duration::from_secs(3600))
        .issued_at(UnixTime::from_secs(T0))
        .sign()
        .unwrap()
}

/// Any write purges the entries that are due: the store forgets what it no longer retains.
fn purge_by_writing(store: &MemoryRevocations, at: UnixTime) {
    let unrelated: TokenId = "token-id-unrelated-0000001".parse().unwrap();
    store.revoke_token(&unrelated, at).unwrap();
}

#[test]
fn a_store_that_forgets_before_a_revoked_token_expires_is_refused() {
    let w = World::new();
    // The issue's case: the old default store (3605 s) with the largest leeway.
    let err = w
        .verifier_builder(&w.executor)
        .revocations(MemoryRevocations::with_retention(Duration::from_secs(3605)))
        .leeway(Duration::from_secs(300))
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "verifier configuration: the revocation store forgets a token or task revocation 3605 s after \
         it is made, but a revoked token can still pass this verifier's time checks for 3900 s \
         (max_token_ttl 3600 s + leeway 300 s), so it would verify again: give the store a \
         retention of at least 3900 s (`MemoryRevocations::with_retention`, \
         `RedisOptions::retention`), or lower max_token_ttl or leeway"
    );
    // The typed error says the same, with its numbers as fields.
    let typed = Error::RetentionTooShort {
        retention: Duration::from_secs(3605),
        required: Duration::from_secs(3900),
        max_token_ttl: Duration::from_secs(3600),
        leeway: Duration::from_secs(300),
    };
    assert_eq!(typed.to_string(), err.to_string());
    // A longer token lifetime needs a longer store than the default one.
    let mut limits = Limits::default();
    limits.max_token_ttl = Duration::from_secs(7200);
    let err = w
        .verifier_builder(&w.executor)
        .revocations(MemoryRevocations::new())
        .limits(limits)
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("3900 s after it is made, but a revoked token can still pass this verifier's time checks for 7205 s"),
        "{err}"
    );
    // One second short is refused; exactly enough is accepted.
    let short = MemoryRevocations::with_retention(Duration::from_secs(7204));
    assert!(w
        .verifier_builder(&w.executor)
        .revocations(short)
        .limits(limits)
        .build()
        .is_err());
    let enough =
        MemoryRevocations::with_retention(required_retention(limits.max_token_ttl, limits.leeway));
    assert_eq!(
        enough.retention(),
        Some(Duration::from_secs(7205)),
        "the store reports what it keeps"
    );
    w.verifier_builder(&w.executor)
        .revocations(enough)
        .limits(limits)
        .build()
        .unwrap();
    // The default store covers the default lifetime at every leeway a verifier accepts, and
    // a verifier without a store gets one long enough for its limits.
    assert_eq!(
        MemoryRevocations::new().retention(),
        Some(DEFAULT_RETENTION)
    );
    w.verifier_builder(&w.executor)
        .leeway(Duration::from_secs(300))
        .build()
        .unwrap();
    HandoffVerifier::builder(w.executor.id().clone(), w.bundle.clone())
        .audit(DiscardAudit)
        .limits(limits)
        .build()
        .unwrap();
}

#[test]
fn a_revoked_token_stays_revoked_until_it_expires_with_the_largest_leeway() {
    // The issue's reproduction: leeway 300 s, the default store, a root living an hour,
    // revoked at T0 + 1; later writes purge what the store no longer retains.
    let w = World::new();
    let v = w
        .verifier_builder(&w.executor)
        .leeway(Duration::from_secs(300))
        .build()
        .unwrap();
    let root = hour_long_root(&w);
    w.clock.set(UnixTime::from_secs(T0 + 1));
    w.revocations.revoke_token(root.id(), w.now()).unwrap();

    // At T0 + 3700 the old 3605 s store had forgotten it, and the root (in force until
    // T0 + 3900 with the leeway) was allowed.
    for at in [T0 + 3700, T0 + 3899] {
        w.clock.set(UnixTime::from_secs(at));
        purge_by_writing(&w.revocations, w.now());
        let r = assert_reason(
            verify(&v, &w.request(std::slice::from_ref(&root))),
            Reason::Revoked,
        );
        assert!(
            r.detail().contains(&format!("token `{}`", root.id())),
            "{r}"
        );
    }
    // The boundary: one second before the end of the retention (T0 + 1 + 3900) the entry is
    // kept; from then on it is dropped, and by then the token has expired.
    w.clock.set(UnixTime::from_secs(T0 + 3900));
    purge_by_writing(&w.revocations, w.now());
    assert_eq!(w.revocations.stats().unwrap().tokens, 2, "still retained");
    assert_reason(
        verify(&v, &w.request(std::slice::from_ref(&root))),
        Reason::Expired,
    );
    w.clock.set(UnixTime::from_secs(T0 + 1 + 3900));
    purge_by_writing(&w.revocations, w.now());
    assert_eq!(w.revocations.stats().unwrap().tokens, 1, "dropped");
    assert_reason(
        verify(&v, &w.request(std::slice::from_ref(&root))),
        Reason::Expired,
    );
}

#[test]
fn a_completed_or_revoked_task_stays_revoked_until_its_tokens_expire() {
    for via_grant in [true, false] {
        let w = World::new();
        let v = w
            .verifier_builder(&w.executor)
            .leeway(Duration::from_secs(300))
            .build()
            .unwrap();
        let root = hour_long_root(&w);
        w.clock.set(UnixTime::from_secs(T0 + 1));
        if via_grant {
            TaskGrant::with_clock(root.clone(), w.revocations.clone(), w.clock.clone())
                .unwrap()
                .complete()
                .unwrap();
        } else {
            w.revocations
                .revoke_task(root.claimed_task(), w.now())
                .unwrap();
        }
        for at in [T0 + 3700, T0 + 3899] {
            w.clock.set(UnixTime::from_secs(at));
            purge_by_writing(&w.revocations, w.now());
            assert_eq!(w.revocations.stats().unwrap().tasks, 1, "at {at}");
            let r = assert_reason(
                verify(&v, &w.request(std::slice::from_ref(&root))),
                Reason::Revoked,
            );
            assert!(r.detail().contains("task `task-42` is revoked"), "{r}");
        }
        w.clock.set(UnixTime::from_secs(T0 + 3900));
        purge_by_writing(&w.revocations, w.now());
        assert_eq!(w.revocations.stats().unwrap().tasks, 1, "kept to T0 + 3901");
        assert_reason(
            verify(&v, &w.request(std::slice::from_ref(&root))),
            Reason::Expired,
        );
        w.clock.set(UnixTime::from_secs(T0 + 3901));
        purge_by_writing(&w.revocations, w.now());
        assert_eq!(
            w.revocations.stats().unwrap().tasks,
            0,
            "dropped at T0 + 3901"
        );
        assert_reason(
            verify(&v, &w.request(std::slice::from_ref(&root))),
            Reason::Expired,
        );
    }
}

#[test]
fn probe_revoked_agent_appearing_only_as_subject() {
    let w = World::new();
    let grant = w.grant();
    let sub = w.sub_grant(&grant);
    let env = HandoffEnvelope::builder(&w.planner.identity)
        .to(w.executor.id())
        .intent("tickets.read", "project/alpha/7")
        .unwrap()
        .payload(PAYLOAD)
        .chain([&grant, &sub])
        .issued_at(w.now())
        .seal()
        .unwrap();
    w.revocations.revoke_agent(w.executor.id()).unwrap();
    assert_reason(
        w.verifier(&w.executor)
            .verify(env.as_str(), PAYLOAD, &RequestContext::new()),
        Reason::Revoked,
    );
}

// ------------------------------------------------------------- replay cache (SPEC 6.10)

#[test]
fn replay_cache_sweeps_entries_that_expire_before_the_last_sweep_horizon() {
    // A full shard whose live entries expired must make room, not answer `unavailable`: an
    // entry recorded after a sweep can expire before the earliest entry that sweep kept.
    use sha2::Digest as _;
    let shard_of = |id: &TokenId| {
        let d = sha2::Sha256::digest(id.as_str().as_bytes());
        let mut first = [0u8; 16];
        first.copy_from_slice(&d[..16]);
        (u128::from_le_bytes(first) % 16) as usize
    };
    // Five ids in one shard.
    let target = shard_of(&"envelope-id-00000000".parse().unwrap());
    let ids: Vec<TokenId> = (0..10_000)
        .map(|n| format!("envelope-id-{n:08}").parse::<TokenId>().unwrap())
        .filter(|id| shard_of(id) == target)
        .take(4)
        .collect();
    assert_eq!(ids.len(), 4);
    let cache = MemoryReplayCache::new(32); // 2 entries per shard
    let t = UnixTime::from_secs;
    assert_eq!(
        cache.check_and_insert(&ids[0], t(1100), t(1000)).unwrap(),
        Freshness::Fresh
    );
    assert_eq!(
        cache.check_and_insert(&ids[1], t(5000), t(1000)).unwrap(),
        Freshness::Fresh
    );
    // Full: the sweep drops ids[0] and keeps ids[1] (until 5000).
    assert_eq!(
        cache.check_and_insert(&ids[2], t(1300), t(1200)).unwrap(),
        Freshness::Fresh
    );
    // Full again, but ids[2] expired at 1300: there is room.
    assert_eq!(
        cache.check_and_insert(&ids[3], t(1500), t(1400)),
        Ok(Freshness::Fresh)
    );
    // ids[1] is still remembered.
    assert_eq!(
        cache.check_and_insert(&ids[1], t(5000), t(1400)).unwrap(),
        Freshness::Replayed
    );
}

#[test]
fn a_revocations_file_that_does_not_parse_is_a_revocations_file_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rev.json");
    std::fs::write(&path, r#"{"tokenz":[]}"#).unwrap();
    let err = MemoryRevocations::load(&path, UnixTime::from_secs(T0)).unwrap_err();
    assert!(
        matches!(&err, Error::RevocationsFile { path: p, problem } if p == &path
            && problem.contains("not a valid revocations file")),
        "{err}"
    );
    assert!(err.to_string().starts_with("revocations file `"), "{err}");
}
