//! Replay protection and revocation shared by verifier replicas through a real Redis
//! (feature `redis`). Every test starts its own `redis-server` on a free loopback port and
//! kills it at the end; without `redis-server` installed these tests fail, loudly.
//!
//! The verifiers' clock is fixed, but set to the real time at the start of each test, because
//! Redis expires replay keys by its own (real) clock.

mod common;
#[path = "common/redis_server.rs"]
mod redis_server;

use agent_handoff::*;
use common::*;
use redis_server::RedisServer;
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
    v.verify(env.as_str(), PAYLOAD, &Context::new())
}

fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
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
    let at: i64 = redis::cmd("PEXPIRETIME").arg(&key).query(&mut con).unwrap();
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
    let mut o = options();
    o.heartbeat = o.staleness_bound;
    assert!(RedisRevocations::open_with(&good, &o).is_err());
    let mut o = options();
    o.io_timeout = Duration::ZERO;
    assert!(RedisReplayCache::open_with(&good, w.executor.id(), &o).is_err());
}
