//! Replay protection and revocation shared by verifier replicas through a real Redis
//! (feature `redis`). Every test starts its own `redis-server` on a free loopback port and
//! kills it at the end; without `redis-server` installed these tests fail, loudly.
//!
//! The verifiers' clock is fixed, but set to the real time at the start of each test, because
//! Redis expires replay keys by its own (real) clock.

use crate::common::redis_server::RedisServer;
use crate::common::*;
use agent_handoff::error::StoreErrorKind;
use agent_handoff::limits::DEFAULT_RETENTION;
use agent_handoff::store::redis::RedisOptions;
use agent_handoff::store::redis::RedisReplayCache;
use agent_handoff::store::redis::RedisRevocations;
use agent_handoff::store::Freshness;
use agent_handoff::store::ReplayCache;
use agent_handoff::*;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

fn options() -> RedisOptions {
    let mut o = RedisOptions::default();
    o.connect_timeout = Duration::from_millis(300);
    o.io_timeout = Duration::from_millis(300);
    o.staleness_bound = Duration::from_millis(1000);
    o.heartbeat = Duration::from_millis(200);
    o.retry_interval = Duration::from_millis(100);
    o
}

/// A world whose fixed clock reads the real time (Redis expiry is absolute).
fn world() -> World {
    let w = World::new();
    w.clock.set(UnixTime::now());
    w
}

fn replay(url: &str, w: &World) -> RedisReplayCache {
    RedisReplayCache::open_with(url, w.executor.id(), &options()).unwrap()
}

fn revocations(url: &str) -> Arc<RedisRevocations> {
    let r = Arc::new(RedisRevocations::open_with(url, &options()).unwrap());
    r.wait_until_synced(Duration::from_secs(10)).unwrap();
    r
}

/// One replica of the executor: Redis for replay and revocations.
fn replica(w: &World, url: &str, revs: &Arc<RedisRevocations>) -> HandoffVerifier {
    w.verifier_builder(&w.executor)
        .replay(replay(url, w))
        .revocations(Arc::clone(revs))
        .build()
        .unwrap()
}

fn fresh(w: &World, grant: &DelegationToken) -> HandoffEnvelope {
    w.request(std::slice::from_ref(grant))
}

fn verify(v: &HandoffVerifier, env: &HandoffEnvelope) -> Result<VerifiedHandoff, Rejection> {
    v.verify(env.as_str(), PAYLOAD, &RequestContext::new())
}

fn raw(url: &str) -> ::redis::Connection {
    ::redis::Client::open(url)
        .unwrap()
        .get_connection()
        .unwrap()
}

// ------------------------------------------------------------------------------------ replay

#[test]
fn a_replay_to_a_second_replica_is_rejected() {
    let server = RedisServer::start();
    let url = server.url();
    let w = world();
    let revs = revocations(&url);
    let a = replica(&w, &url, &revs);
    let b = replica(&w, &url, &revs);
    let grant = w.grant();
    let env = fresh(&w, &grant);
    verify(&a, &env).unwrap();
    let r = assert_reason(verify(&b, &env), Reason::Replayed);
    assert!(r.detail().contains("already accepted"), "{r}");
    assert_reason(verify(&a, &env), Reason::Replayed);

    // One key, namespaced per recipient, expiring at exp + leeway + skew margin (Redis 7's
    // PEXPIRETIME gives the absolute expiry back).
    let key = format!("agent-handoff:replay:{}:{}", w.executor.id(), env.id());
    let mut con = raw(&url);
    let at: i64 = ::redis::cmd("PEXPIRETIME")
        .arg(&key)
        .query(&mut con)
        .unwrap();
    let exp = env.claimed_expiry().as_secs();
    let expected = (exp + Limits::default().leeway.as_secs() + 30) * 1000;
    assert_eq!(at, expected as i64, "key `{key}` expires at the wrong time");

    // Another recipient's replicas keep their own ids: the same jti is fresh there.
    let other = RedisReplayCache::open_with(&url, w.payments.id(), &options()).unwrap();
    let until = UnixTime::from_secs(exp + 5);
    assert_eq!(
        other.check_and_insert(env.id(), until, w.now()).unwrap(),
        Freshness::Fresh
    );
}

#[test]
fn concurrent_verifications_across_replicas_allow_exactly_one() {
    let server = RedisServer::start();
    let url = server.url();
    let w = world();
    let revs = revocations(&url);
    let replicas: Vec<HandoffVerifier> = (0..2).map(|_| replica(&w, &url, &revs)).collect();
    let grant = w.grant();
    for _ in 0..10 {
        let env = fresh(&w, &grant);
        let threads = 8;
        let barrier = Barrier::new(threads);
        let outcomes: Vec<Result<(), Reason>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|i| {
                    let (v, env, barrier) = (&replicas[i % 2], &env, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        verify(v, env).map(|_| ()).map_err(|r| r.reason())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let allowed = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(allowed, 1, "exactly one allow expected: {outcomes:?}");
        assert!(
            outcomes
                .iter()
                .all(|o| o.is_ok() || *o == Err(Reason::Replayed)),
            "{outcomes:?}"
        );
    }
}

// ------------------------------------------------------------------------------- revocations

/// Verifies fresh envelopes at `v` until one is refused with `revoked`; the deadline only
/// turns a hang into a failure.
fn until_revoked(w: &World, v: &HandoffVerifier, grant: &DelegationToken) -> Rejection {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match verify(v, &fresh(w, grant)) {
            Err(r) if r.reason() == Reason::Revoked => return r,
            other => assert!(
                Instant::now() < deadline,
                "the revocation never reached this replica: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_revocation_through_one_replica_is_seen_by_the_other_within_the_bound() {
    let server = RedisServer::start();
    let url = server.url();
    let w = world();
    // Two processes' worth of state: separate subscribers, separate local views.
    let revs_a = revocations(&url);
    let revs_b = revocations(&url);
    let a = replica(&w, &url, &revs_a);
    let b = replica(&w, &url, &revs_b);
    let grant = w.grant();
    verify(&a, &fresh(&w, &grant)).unwrap();
    verify(&b, &fresh(&w, &grant)).unwrap();

    let task: TaskId = "task-42".parse().unwrap();
    revs_a.revoke_task(&task, w.now()).unwrap();
    // The writer's own view changes at once.
    assert_reason(verify(&a, &fresh(&w, &grant)), Reason::Revoked);
    // Once the bound has passed, the other replica cannot allow: it has either applied the
    // announcement (revoked) or not heard from Redis since before it (unavailable).
    std::thread::sleep(options().staleness_bound);
    let r = verify(&b, &fresh(&w, &grant)).unwrap_err();
    assert!(
        matches!(r.reason(), Reason::Revoked | Reason::Unavailable),
        "{r}"
    );
    let r = until_revoked(&w, &b, &grant);
    assert!(r.detail().contains("task `task-42` is revoked"), "{r}");
    assert_eq!(revs_b.stats().unwrap().tasks, 1);

    // A task revocation covers tokens issued up to it, not a new grant issued later.
    w.clock.advance(Duration::from_secs(1));
    let later = w.grant();
    verify(&b, &fresh(&w, &later)).unwrap();

    // Agents: revoke and restore travel too.
    revs_b.revoke_agent(w.planner.id()).unwrap();
    let r = until_revoked(&w, &a, &later);
    assert!(r.detail().contains("agent"), "{r}");
    revs_a.restore_agent(w.planner.id()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while verify(&b, &fresh(&w, &later)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the restore never reached replica b"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Tokens and the issued-before cut-off.
    let third = {
        w.clock.advance(Duration::from_secs(1));
        w.grant()
    };
    verify(&a, &fresh(&w, &third)).unwrap();
    revs_b.revoke_token(third.id(), w.now()).unwrap();
    let r = until_revoked(&w, &a, &third);
    assert!(r.detail().contains("token"), "{r}");
    revs_a.revoke_issued_before(w.now()).unwrap();
    let r = until_revoked(&w, &b, &later);
    assert!(r.detail().contains("cut-off"), "{r}");

    // A replica started now gets everything by its initial resync.
    let revs_c = revocations(&url);
    let c = replica(&w, &url, &revs_c);
    assert_reason(verify(&c, &fresh(&w, &later)), Reason::Revoked);
    let stats = revs_c.stats().unwrap();
    assert_eq!((stats.tokens, stats.tasks, stats.agents), (1, 1, 0));
}

// --------------------------------------------------------------------------- fail closed

#[test]
fn a_task_grant_completed_through_redis_kills_the_task_on_every_replica() {
    let server = RedisServer::start();
    let url = server.url();
    let w = world();
    let revs_a = revocations(&url);
    let revs_b = revocations(&url);
    let a = replica(&w, &url, &revs_a);
    let b = replica(&w, &url, &revs_b);
    let grant = DelegationToken::root(&w.orchestrator.identity)
        .delegate_to(&w.planner.public())
        .task("task-77".parse().unwrap())
        .allow("tickets.*", "project/alpha/*")
        .unwrap()
        .issued_at(w.now())
        .sign_task_with_clock(Arc::clone(&revs_a), w.clock.clone())
        .unwrap();
    let root = grant.token().clone();
    verify(&b, &fresh(&w, &root)).unwrap();
    grant.complete().unwrap();
    assert_reason(verify(&a, &fresh(&w, &root)), Reason::Revoked);
    let r = until_revoked(&w, &b, &root);
    assert!(r.detail().contains("task `task-77` is revoked"), "{r}");
}

#[test]
fn redis_killed_mid_run_gives_unavailable_and_a_restart_restores_service() {
    let mut server = RedisServer::start();
    let url = server.url();
    let w = world();
    let revs = revocations(&url);
    let both = replica(&w, &url, &revs);
    let replay_only = w
        .verifier_builder(&w.executor)
        .replay(replay(&url, &w))
        .build()
        .unwrap();
    let revocations_only = w
        .verifier_builder(&w.executor)
        .revocations(Arc::clone(&revs))
        .build()
        .unwrap();
    let grant = w.grant();
    for v in [&both, &replay_only, &revocations_only] {
        verify(v, &fresh(&w, &grant)).unwrap();
    }

    server.kill();
    // The replay cache needs Redis for every accepted envelope: denied at once.
    let r = assert_reason(
        verify(&replay_only, &fresh(&w, &grant)),
        Reason::Unavailable,
    );
    assert!(r.detail().contains("replay cache"), "{r}");
    // The revocation view is trusted for at most the bound, then denied.
    std::thread::sleep(options().staleness_bound + Duration::from_millis(300));
    assert!(!revs.is_synced());
    let r = assert_reason(
        verify(&revocations_only, &fresh(&w, &grant)),
        Reason::Unavailable,
    );
    assert!(r.detail().contains("revocations"), "{r}");
    assert!(r.detail().contains("no word from redis"), "{r}");
    assert_reason(verify(&both, &fresh(&w, &grant)), Reason::Unavailable);

    // Same verifiers, no re-creation: service returns with Redis.
    server.restart();
    revs.wait_until_synced(Duration::from_secs(10)).unwrap();
    for v in [&both, &replay_only, &revocations_only] {
        let env = fresh(&w, &grant);
        verify(v, &env).unwrap();
        if !std::ptr::eq(v, &revocations_only) {
            assert_reason(verify(v, &env), Reason::Replayed);
        }
    }
}

#[test]
fn a_frozen_redis_times_out_into_unavailable_and_recovers() {
    let server = RedisServer::start();
    let url = server.url();
    let w = world();
    let v = w
        .verifier_builder(&w.executor)
        .replay(replay(&url, &w))
        .build()
        .unwrap();
    let grant = w.grant();
    verify(&v, &fresh(&w, &grant)).unwrap();
    server.signal("-STOP");
    let r = assert_reason(verify(&v, &fresh(&w, &grant)), Reason::Unavailable);
    assert!(r.detail().contains("did not answer in time"), "{r}");
    server.signal("-CONT");
    verify(&v, &fresh(&w, &grant)).unwrap();
}

#[test]
fn without_redis_nothing_is_allowed() {
    // A port where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let w = world();
    let revs = Arc::new(RedisRevocations::open_with(&url, &options()).unwrap());
    assert!(revs.wait_until_synced(Duration::from_millis(300)).is_err());
    let v = w
        .verifier_builder(&w.executor)
        .revocations(Arc::clone(&revs))
        .build()
        .unwrap();
    let r = assert_reason(verify(&v, &fresh(&w, &w.grant())), Reason::Unavailable);
    assert!(r.detail().contains("not yet synchronised"), "{r}");
    let v = w
        .verifier_builder(&w.executor)
        .replay(replay(&url, &w))
        .build()
        .unwrap();
    let r = assert_reason(verify(&v, &fresh(&w, &w.grant())), Reason::Unavailable);
    assert!(r.detail().contains("refused"), "{r}");
    // Writes say they did not reach Redis (the local view still holds them).
    let e = revs.revoke_agent(w.mallory.id()).unwrap_err();
    assert!(e.problem().contains("this instance only"), "{e}");
    // Typed: the kind says what failed, the source is Redis's own error.
    assert_eq!(e.kind(), StoreErrorKind::Unreachable, "{e}");
    let source = std::error::Error::source(&e).expect("the redis error is the source");
    assert!(source.downcast_ref::<::redis::RedisError>().is_some());
    let stale = revs.wait_until_synced(Duration::ZERO).unwrap_err();
    assert_eq!(stale.kind(), StoreErrorKind::Stale, "{stale}");
    let e = replay(&url, &w).ping().unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::Unreachable, "{e}");
}

// ------------------------------------------------------------------- configuration, auth

#[test]
fn auth_comes_from_the_url_and_secrets_stay_out_of_errors_and_debug() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret-pw"]);
    let w = world();
    let good = format!("redis://:s3cret-pw@127.0.0.1:{}/0", server.port());
    let bad = format!("redis://:wrong-pw@127.0.0.1:{}/0", server.port());

    let cache = replay(&good, &w);
    assert!(!format!("{cache:?}").contains("s3cret"));
    let v = w
        .verifier_builder(&w.executor)
        .replay(cache)
        .build()
        .unwrap();
    verify(&v, &fresh(&w, &w.grant())).unwrap();
    let revs = revocations(&good);
    assert!(!format!("{revs:?}").contains("s3cret"));

    let v = w
        .verifier_builder(&w.executor)
        .replay(replay(&bad, &w))
        .build()
        .unwrap();
    let r = assert_reason(verify(&v, &fresh(&w, &w.grant())), Reason::Unavailable);
    assert!(!r.detail().contains("wrong-pw"), "{r}");
    let records = w.audit.records();
    assert!(!format!("{records:?}").contains("wrong-pw"));

    // Bad URLs and options are configuration errors that never echo the URL.
    let e = RedisReplayCache::open("http://:pw-in-url@host/", w.executor.id()).unwrap_err();
    assert!(!e.to_string().contains("pw-in-url"), "{e}");
    let e = RedisRevocations::open("redis://:pw-in-url@/0").unwrap_err();
    assert!(!e.to_string().contains("pw-in-url"), "{e}");
    assert!(!format!("{e:?}").contains("pw-in-url"), "{e:?}");
    assert!(
        matches!(
            &e,
            Error::StoreConfig {
                store: "redis",
                source: Some(_),
                ..
            }
        ),
        "{e}"
    );
    let mut o = options();
    o.heartbeat = o.staleness_bound;
    assert!(RedisRevocations::open_with(&good, &o).is_err());
    let mut o = options();
    o.io_timeout = Duration::ZERO;
    assert!(RedisReplayCache::open_with(&good, w.executor.id(), &o).is_err());
    // A retention Redis could not give back as an integer score ("forever") is refused up
    // front, instead of making every replica of the namespace deny.
    let mut o = options();
    o.retention = Duration::MAX;
    let e = RedisRevocations::open_with(&good, &o).unwrap_err();
    assert!(
        matches!(&e, Error::StoreConfig { store: "redis", problem, .. }
            if problem.contains("`retention`") && problem.contains("10 years")),
        "{e}"
    );
    let mut o = options();
    o.retention = Duration::from_secs(10 * 365 * 24 * 3600);
    assert!(RedisRevocations::open_with(&good, &o).is_ok());
}

// ------------------------------------------------------------------------------- retention

fn revocations_with(url: &str, retention: Duration) -> Arc<RedisRevocations> {
    let mut o = options();
    o.retention = retention;
    let r = Arc::new(RedisRevocations::open_with(url, &o).unwrap());
    r.wait_until_synced(Duration::from_secs(10)).unwrap();
    r
}

/// A verifier with the largest leeway, memory replay, at the world's (fixed) time.
fn wide_leeway(w: &World, revs: &Arc<RedisRevocations>) -> HandoffVerifier {
    w.verifier_builder(&w.executor)
        .leeway(Duration::from_secs(300))
        .revocations(Arc::clone(revs))
        .build()
        .unwrap()
}

/// A root of `task` living the default maximum of one hour, issued at `at`.
fn hour_long_root(w: &World, task: &str, at: UnixTime) -> DelegationToken {
    DelegationToken::root(&w.orchestrator.identity)
        .delegate_to(&w.planner.public())
        .task(task.parse().unwrap())
        .allow("tickets.*", "project/alpha/*")
        .unwrap()
        .ttl(Duration::from_secs(3600))
        .issued_at(at)
        .sign()
        .unwrap()
}

fn zscore(url: &str, key: &str, member: &str) -> Option<u64> {
    ::redis::cmd("ZSCORE")
        .arg(key)
        .arg(member)
        .query(&mut raw(url))
        .unwrap()
}

#[test]
fn redis_refuses_a_short_retention_and_keeps_revocations_until_their_tokens_expire() {
    let server = RedisServer::start();
    let url = server.url();
    let w = world();
    let base = w.now();

    // The old default retention with the largest leeway: refused, saying both numbers.
    let short = revocations_with(&url, Duration::from_secs(3605));
    let err = w
        .verifier_builder(&w.executor)
        .leeway(Duration::from_secs(300))
        .revocations(Arc::clone(&short))
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "forgets a token or task revocation 3605 s after it is made, but a revoked token \
             can still pass this verifier's time checks for 3900 s"
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("`RedisOptions::retention`"),
        "{err}"
    );
    drop(short);

    // The default retention covers the default lifetime at the largest leeway.
    let revs = revocations(&url);
    assert_eq!(revs.retention(), Some(DEFAULT_RETENTION));
    wide_leeway(&w, &revs);
    let by_token = hour_long_root(&w, "task-token", base);
    let by_task = hour_long_root(&w, "task-revoked", base);
    let by_grant = hour_long_root(&w, "task-completed", base);
    let revoked_at = base.plus(Duration::from_secs(1));
    w.clock.set(revoked_at);
    revs.revoke_token(by_token.id(), revoked_at).unwrap();
    revs.revoke_task(by_task.claimed_task(), revoked_at)
        .unwrap();
    TaskGrant::with_clock(by_grant.clone(), Arc::clone(&revs), w.clock.clone())
        .unwrap()
        .complete()
        .unwrap();

    let entries = |url: &str| {
        (
            zscore(
                url,
                "agent-handoff:revocations:tokens",
                by_token.id().as_str(),
            ),
            zscore(url, "agent-handoff:revocations:tasks", "task-revoked"),
            zscore(url, "agent-handoff:revocations:tasks", "task-completed"),
        )
    };
    let at = |s: u64| base.plus(Duration::from_secs(s));
    let kept = Some(revoked_at.as_secs());
    // Every token or task write purges that kind's entries that are due.
    let write_at = |s: u64| {
        let unrelated: TokenId = "token-id-unrelated-0000001".parse().unwrap();
        revs.revoke_token(&unrelated, at(s)).unwrap();
        revs.revoke_task(&"task-unrelated".parse().unwrap(), at(s))
            .unwrap();
    };

    // One second before the retention ends (revoked at + 3900 s) a write purges nothing; a
    // replica that reads Redis afresh denies all three up to their last valid second.
    write_at(3900);
    assert_eq!(entries(&url), (kept, kept, kept));
    let replica = revocations(&url);
    let v = wide_leeway(&w, &replica);
    for s in [3700, 3899] {
        w.clock.set(at(s));
        for root in [&by_token, &by_task, &by_grant] {
            let r = assert_reason(verify(&v, &fresh(&w, root)), Reason::Revoked);
            assert!(
                r.detail().contains("is revoked"),
                "{} at +{s}: {r}",
                root.claimed_task()
            );
        }
    }
    // From the end of the retention on, a write drops them; by then they have expired.
    write_at(3901);
    assert_eq!(entries(&url), (None, None, None));
    let replica = revocations(&url);
    let v = wide_leeway(&w, &replica);
    for s in [3900, 3901] {
        w.clock.set(at(s));
        for root in [&by_token, &by_task, &by_grant] {
            assert_reason(verify(&v, &fresh(&w, root)), Reason::Expired);
        }
    }
}

#[test]
fn an_instance_with_a_shorter_retention_cannot_purge_what_another_needs() {
    let server = RedisServer::start();
    let url = server.url();
    let w = world();
    // One replica allows tokens of two hours; another, configured for one, writes.
    let long = revocations_with(&url, Duration::from_secs(7205));
    let short = revocations_with(&url, Duration::from_secs(3605));
    assert_eq!(
        zscore(&url, "agent-handoff:revocations:retention", "retention"),
        Some(7205)
    );
    let now = w.now();
    let id: TokenId = "token-id-two-hours-000001".parse().unwrap();
    short.revoke_token(&id, now).unwrap();
    let other: TokenId = "token-id-unrelated-0000001".parse().unwrap();
    short
        .revoke_token(&other, now.plus(Duration::from_secs(3700)))
        .unwrap();
    assert_eq!(
        zscore(&url, "agent-handoff:revocations:tokens", id.as_str()),
        Some(now.as_secs()),
        "the short-lived writer purged an entry the long-lived replica still needs"
    );
    short
        .revoke_token(&other, now.plus(Duration::from_secs(7205)))
        .unwrap();
    assert_eq!(
        zscore(&url, "agent-handoff:revocations:tokens", id.as_str()),
        None
    );
    drop(long);
}

// ------------------------------------------------------ a failed write is never undone

fn config_set(url: &str, name: &str, value: &str) {
    ::redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query::<()>(&mut raw(url))
        .unwrap();
}

/// Makes Redis refuse every write (out of memory), or accept them again.
fn refuse_writes(url: &str, refuse: bool) {
    config_set(url, "maxmemory-policy", "noeviction");
    config_set(url, "maxmemory", if refuse { "1" } else { "0" });
}

fn publish(url: &str, message: &str) {
    ::redis::cmd("PUBLISH")
        .arg("agent-handoff:revocations:events")
        .arg(message)
        .query::<i64>(&mut raw(url))
        .unwrap();
}

fn connections_received(url: &str) -> u64 {
    let info: String = ::redis::cmd("INFO")
        .arg("stats")
        .query(&mut raw(url))
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Publishes an announcement no writer makes, which makes every subscriber drop its
/// connection and read the whole state again; returns once `revs` has done so.
fn force_resync(url: &str, revs: &RedisRevocations) {
    let before = connections_received(url);
    publish(url, "resync -");
    let deadline = Instant::now() + Duration::from_secs(10);
    // The subscriber opens two connections per session (one of them ours: `raw`).
    while connections_received(url) < before + 3 {
        assert!(
            Instant::now() < deadline,
            "the subscriber never reconnected"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    revs.wait_until_synced(Duration::from_secs(10)).unwrap();
}

#[test]
fn a_revocation_redis_refused_is_reported_and_no_announcement_undoes_it() {
    let server = RedisServer::start();
    let url = server.url();
    let w = world();
    let revs = revocations(&url);
    let v = replica(&w, &url, &revs);
    let v = {
        drop(v);
        // Replay in memory: Redis refuses the replay keys' writes too.
        w.verifier_builder(&w.executor)
            .revocations(Arc::clone(&revs))
            .build()
            .unwrap()
    };
    let grant = w.grant();
    verify(&v, &fresh(&w, &grant)).unwrap();

    refuse_writes(&url, true);
    let err = revs.revoke_token(grant.id(), w.now()).unwrap_err();
    assert!(err.problem().contains("OOM"), "{err}");
    assert_eq!(err.kind(), StoreErrorKind::Full, "{err}");
    assert!(
        err.problem().contains(
            "the revocation was not written to redis, so the other replicas do not enforce it"
        ),
        "{err}"
    );
    let token_revoked = format!("token `{}` is revoked", grant.id());
    let r = assert_reason(verify(&v, &fresh(&w, &grant)), Reason::Revoked);
    assert!(r.detail().contains(&token_revoked), "{r}");

    // Anyone who can publish: the entry named (absent from Redis), then a full resync.
    publish(&url, &format!("token {}", grant.id()));
    force_resync(&url, &revs);
    let r = assert_reason(verify(&v, &fresh(&w, &grant)), Reason::Revoked);
    assert!(r.detail().contains(&token_revoked), "{r}");

    // An agent revocation that failed is not lifted by an announcement of the agent.
    assert!(revs.revoke_agent(w.planner.id()).is_err());
    publish(&url, &format!("agent {}", w.planner.id()));
    std::thread::sleep(Duration::from_millis(300));
    force_resync(&url, &revs);
    let r = assert_reason(verify(&v, &fresh(&w, &grant)), Reason::Revoked);
    assert!(r.detail().contains("agent"), "{r}");

    // Once Redis accepts writes: a retry shares the revocation; a restore lifts the agent.
    refuse_writes(&url, false);
    revs.revoke_token(grant.id(), w.now()).unwrap();
    revs.restore_agent(w.planner.id()).unwrap();
    let r = assert_reason(verify(&v, &fresh(&w, &grant)), Reason::Revoked);
    assert!(r.detail().contains(&token_revoked), "{r}");
    let other = revocations(&url);
    let v2 = w
        .verifier_builder(&w.executor)
        .revocations(Arc::clone(&other))
        .build()
        .unwrap();
    let r = assert_reason(verify(&v2, &fresh(&w, &grant)), Reason::Revoked);
    assert!(r.detail().contains(&token_revoked), "{r}");
    // An unrelated grant passes: the agent was restored everywhere.
    w.clock.advance(Duration::from_secs(1));
    let later = w.grant();
    verify(&v, &fresh(&w, &later)).unwrap();
}

#[test]
fn a_revocation_made_here_is_not_lifted_by_what_redis_later_says() {
    // A successful revocation is pinned on the instance that made it: a resync that reads a
    // state without it (a snapshot read before the write, or an entry lost in a failover) and
    // any announcement leave it in force here.
    let server = RedisServer::start();
    let url = server.url();
    let w = world();
    let revs = revocations(&url);
    let v = w
        .verifier_builder(&w.executor)
        .revocations(Arc::clone(&revs))
        .build()
        .unwrap();
    let grant = w.grant();
    revs.revoke_token(grant.id(), w.now()).unwrap();
    revs.revoke_task(grant.claimed_task(), w.now()).unwrap();
    // The entries vanish from Redis (as after a failover that lost them), then announcements
    // and a full resync.
    ::redis::cmd("DEL")
        .arg("agent-handoff:revocations:tokens")
        .arg("agent-handoff:revocations:tasks")
        .query::<i64>(&mut raw(&url))
        .unwrap();
    publish(&url, &format!("token {}", grant.id()));
    publish(&url, &format!("task {}", grant.claimed_task()));
    force_resync(&url, &revs);
    let r = assert_reason(verify(&v, &fresh(&w, &grant)), Reason::Revoked);
    assert!(r.detail().contains("task `task-42` is revoked"), "{r}");
    // A replica that only ever read Redis has nothing to go on: it allows (what Redis lost is
    // lost to it; the writer keeps enforcing it).
    let other = revocations(&url);
    let v2 = w
        .verifier_builder(&w.executor)
        .revocations(Arc::clone(&other))
        .build()
        .unwrap();
    verify(&v2, &fresh(&w, &grant)).unwrap();
}

#[test]
fn a_restore_redis_refused_changes_nothing() {
    let server = RedisServer::start();
    let url = server.url();
    let w = world();
    let revs = revocations(&url);
    let v = w
        .verifier_builder(&w.executor)
        .revocations(Arc::clone(&revs))
        .build()
        .unwrap();
    let grant = w.grant();
    revs.revoke_agent(w.planner.id()).unwrap();
    assert_reason(verify(&v, &fresh(&w, &grant)), Reason::Revoked);

    refuse_writes(&url, true);
    let err = revs.restore_agent(w.planner.id()).unwrap_err();
    assert!(err.problem().contains("OOM"), "{err}");
    assert!(
        err.problem().contains("the agent is still revoked"),
        "{err}"
    );
    let r = assert_reason(verify(&v, &fresh(&w, &grant)), Reason::Revoked);
    assert!(r.detail().contains("agent"), "{r}");

    refuse_writes(&url, false);
    revs.restore_agent(w.planner.id()).unwrap();
    verify(&v, &fresh(&w, &grant)).unwrap();
}

#[test]
fn a_wrong_typed_key_denies_and_the_error_names_it() {
    let server = RedisServer::start();
    let url = server.url();
    let w = world();
    let key = "agent-handoff:revocations:tokens";
    ::redis::cmd("SET")
        .arg(key)
        .arg("not a sorted set")
        .query::<()>(&mut raw(&url))
        .unwrap();
    let revs = Arc::new(RedisRevocations::open_with(&url, &options()).unwrap());
    let err = revs
        .wait_until_synced(Duration::from_millis(1500))
        .unwrap_err();
    let named = format!("key `{key}` does not hold a sorted set");
    assert!(err.problem().contains(&named), "{err}");
    assert!(err.problem().contains("WRONGTYPE"), "{err}");
    assert!(err.problem().contains(&format!("TYPE {key}")), "{err}");
    let v = w
        .verifier_builder(&w.executor)
        .revocations(Arc::clone(&revs))
        .build()
        .unwrap();
    let grant = w.grant();
    let r = assert_reason(verify(&v, &fresh(&w, &grant)), Reason::Unavailable);
    assert!(r.detail().contains(&named), "{r}");
    // A write through the broken key names it too.
    let err = revs.revoke_token(grant.id(), w.now()).unwrap_err();
    assert!(err.problem().contains("WRONGTYPE"), "{err}");
    assert_eq!(err.kind(), StoreErrorKind::WrongType, "{err}");
    assert!(err.problem().contains(&format!("`{key}`")), "{err}");

    // Deleting it restores service by itself (the pinned revocation still holds here).
    ::redis::cmd("DEL")
        .arg(key)
        .query::<()>(&mut raw(&url))
        .unwrap();
    revs.wait_until_synced(Duration::from_secs(10)).unwrap();
    assert_reason(verify(&v, &fresh(&w, &grant)), Reason::Revoked);
    w.clock.advance(Duration::from_secs(1));
    verify(&v, &fresh(&w, &w.grant())).unwrap();
}

/// Collects the `problem` field of every `agent_handoff::store::redis` event, process-wide (the
/// subscriber reports from its own thread).
#[cfg(feature = "tracing")]
mod events {
    use std::sync::{Mutex, Once};

    pub(super) static PROBLEMS: Mutex<Vec<String>> = Mutex::new(Vec::new());

    struct Collector;

    struct Problem(Option<String>);

    impl tracing::field::Visit for Problem {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            if field.name() == "problem" {
                self.0 = Some(format!("{value:?}"));
            }
        }
    }

    impl tracing::Subscriber for Collector {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            if event.metadata().target() == "agent_handoff::store::redis" {
                let mut problem = Problem(None);
                event.record(&mut problem);
                if let Some(p) = problem.0 {
                    PROBLEMS.lock().unwrap().push(p);
                }
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    pub(super) fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| tracing::subscriber::set_global_default(Collector).unwrap());
    }
}

#[cfg(feature = "tracing")]
#[test]
fn a_wrong_typed_key_is_reported_once_as_a_tracing_event() {
    events::install();
    let server = RedisServer::start();
    let url = server.url();
    let mut o = options();
    o.namespace = "traced-ns".to_owned();
    let key = "traced-ns:revocations:agents";
    ::redis::cmd("SET")
        .arg(key)
        .arg("not a set")
        .query::<()>(&mut raw(&url))
        .unwrap();
    let revs = RedisRevocations::open_with(&url, &o).unwrap();
    // Ten retries or more (every 100 ms): still one event.
    let err = revs
        .wait_until_synced(Duration::from_millis(1500))
        .unwrap_err();
    assert!(
        err.problem()
            .contains(&format!("key `{key}` does not hold a set")),
        "{err}"
    );
    let named: Vec<String> = events::PROBLEMS
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.contains(key))
        .cloned()
        .collect();
    assert_eq!(named.len(), 1, "{named:?}");
    assert!(named[0].contains("WRONGTYPE"), "{named:?}");
}
