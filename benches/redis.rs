//! Per-verify cost with the Redis-backed stores against the in-memory ones.
//!
//! ```sh
//! cargo bench --features redis --bench redis
//! ```
//!
//! Starts its own `redis-server` on a free loopback port (like the tests) and kills it after.
//! Each iteration verifies a fresh envelope (one chain link, 14-byte payload); building the
//! envelope is outside the measurement.

// The one exception to Cargo.toml's lint contract in this bench: fixtures that cannot fail are
// unwrapped, measurements are indexed, and the tests' Redis server panics when it cannot start.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used
)]

// The tests' server, of which the bench uses only a part.
#[allow(dead_code)]
#[path = "../tests/spec/common/redis_server.rs"]
mod redis_server;

use agent_handoff::audit::DiscardAudit;
use agent_handoff::store::redis::RedisReplayCache;
use agent_handoff::store::redis::RedisRevocations;
use agent_handoff::store::ReplayCache;
use agent_handoff::*;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

struct Fixture {
    planner: AgentIdentity,
    executor: AgentIdentity,
    bundle: TrustBundle,
    grant: DelegationToken,
}

const BODY: &[u8] = br#"{"ticket":123}"#;

fn fixture() -> Fixture {
    let orchestrator = AgentIdentity::from_seed(
        "spiffe://acme.example/orchestrator".parse().unwrap(),
        &[1; 32],
    );
    let planner = AgentIdentity::from_seed(
        "spiffe://acme.example/agents/planner".parse().unwrap(),
        &[2; 32],
    );
    let executor = AgentIdentity::from_seed(
        "spiffe://acme.example/agents/executor".parse().unwrap(),
        &[3; 32],
    );
    let mut bundle = TrustBundle::new("acme.example").unwrap();
    bundle.add_authority(&orchestrator.public()).unwrap();
    bundle.add_agent(&planner.public()).unwrap();
    bundle.add_agent(&executor.public()).unwrap();
    let grant = DelegationToken::root(&orchestrator)
        .delegate_to(&planner.public())
        .task("task-42".parse().unwrap())
        .allow("tickets.*", "project/alpha/*")
        .unwrap()
        .sign()
        .unwrap();
    Fixture {
        planner,
        executor,
        bundle,
        grant,
    }
}

impl Fixture {
    fn envelope(&self) -> HandoffEnvelope {
        HandoffEnvelope::builder(&self.planner)
            .to(self.executor.id())
            .intent("tickets.read", "project/alpha/123")
            .unwrap()
            .payload(BODY)
            .chain([&self.grant])
            .seal()
            .unwrap()
    }

    fn builder(&self) -> VerifierBuilder {
        HandoffVerifier::builder(self.executor.id().clone(), self.bundle.clone())
            .audit(DiscardAudit)
    }
}

fn bench(c: &mut Criterion) {
    let server = redis_server::RedisServer::start();
    let url = server.url();
    let f = fixture();

    let memory = f
        .builder()
        .replay(MemoryReplayCache::default())
        .revocations(MemoryRevocations::new())
        .build()
        .unwrap();
    let revocations = Arc::new(RedisRevocations::open(&url).unwrap());
    revocations
        .wait_until_synced(Duration::from_secs(10))
        .unwrap();
    let redis_replay_only = f
        .builder()
        .replay(RedisReplayCache::open(&url, f.executor.id()).unwrap())
        .revocations(MemoryRevocations::new())
        .build()
        .unwrap();
    let redis_both = f
        .builder()
        .replay(RedisReplayCache::open(&url, f.executor.id()).unwrap())
        .revocations(Arc::clone(&revocations))
        .build()
        .unwrap();

    let mut group = c.benchmark_group("verify");
    for (name, v) in [
        ("memory stores", &memory),
        ("redis replay, memory revocations", &redis_replay_only),
        ("redis replay, redis revocations", &redis_both),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || f.envelope(),
                |env| {
                    black_box(
                        v.verify(env.as_str(), BODY, &RequestContext::new())
                            .unwrap(),
                    )
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    // The store calls alone.
    let mut group = c.benchmark_group("replay check_and_insert");
    let mem_cache = MemoryReplayCache::default();
    let redis_cache = RedisReplayCache::open(&url, f.executor.id()).unwrap();
    for (name, cache) in [
        ("memory", &mem_cache as &dyn ReplayCache),
        ("redis", &redis_cache as &dyn ReplayCache),
    ] {
        // Millions of ids go through the in-memory cache: let each live one (simulated)
        // second past a clock that ticks every 100 000 calls, so sweeps keep it from filling.
        let base = UnixTime::now().as_secs();
        let mut calls = 0u64;
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    calls += 1;
                    let now = UnixTime::from_secs(base + calls / 100_000);
                    (TokenId::random(), now)
                },
                |(id, now)| {
                    let until = now.plus(Duration::from_secs(1));
                    black_box(cache.check_and_insert(&id, until, now).unwrap())
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
    drop(server);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    targets = bench
}
criterion_main!(benches);
