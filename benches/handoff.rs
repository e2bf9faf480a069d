//! Criterion benches: issue, attenuate, seal, verify (cold and warm) for chain lengths 1 to 8
//! and payloads of 0 B to 1 MiB, replay-cache inserts at 1 M live entries, and the raw
//! `ed25519-dalek` sign and `verify_strict` of the same messages as the floor, in one run.
//!
//! ```text
//! cargo bench --bench handoff            # everything (a few minutes)
//! cargo bench --bench handoff -- verify  # a filter
//! ```
//!
//! Absolute times drift on shared machines; compare a figure with its `raw/` floor from the
//! same run, or use `cargo run --release --example perf_report` for interleaved ratios.

// The one exception to Cargo.toml's lint contract in this bench: fixtures that cannot fail are
// unwrapped, and measurements are indexed.
#![allow(clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::cell::{Cell, RefCell};
use std::hint::black_box;
use std::time::Duration;

use agent_handoff::limits::DEFAULT_LINK_CACHE_CAPACITY;
use agent_handoff::store::ReplayCache;
use agent_handoff::*;
use common::*;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ed25519_dalek::Signer as _;

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(600));
    g
}

/// Issue a root token, attenuate it, seal an envelope; each next to a raw sign of the same
/// signing input.
fn produce(c: &mut Criterion) {
    let f = Fixture::new();
    let mut g = group(c, "produce");

    let root = f.issue();
    let root_signed = split(root.as_str());
    let authority = f.signing_key(0);
    g.bench_function("issue", |b| b.iter(|| black_box(f.issue())));
    g.bench_function("raw/sign_issued_token", |b| {
        b.iter(|| black_box(authority.sign(black_box(&root_signed.signing_input))))
    });

    let child_signed = split(f.attenuate(&root, 1).as_str());
    let holder = f.signing_key(1);
    g.bench_function("attenuate", |b| {
        b.iter(|| black_box(f.attenuate(black_box(&root), 1)))
    });
    g.bench_function("raw/sign_attenuated_token", |b| {
        b.iter(|| black_box(holder.sign(black_box(&child_signed.signing_input))))
    });

    for n in [1usize, 3, 8] {
        let chain = f.chain(n);
        let body = payload(256);
        let signed = split(f.seal(&chain, &body).as_str());
        let sender = f.signing_key(n);
        g.bench_with_input(BenchmarkId::new("seal", n), &n, |b, _| {
            b.iter(|| black_box(f.seal(black_box(&chain), &body)))
        });
        g.bench_with_input(BenchmarkId::new("raw/sign_envelope", n), &n, |b, _| {
            b.iter(|| black_box(sender.sign(black_box(&signed.signing_input))))
        });
    }
    g.finish();
}

/// Fresh envelopes (each `jti` is accepted once) for a chain, sealed outside the timing.
fn envelopes(f: &Fixture, chain: &[DelegationToken], body: &[u8], n: usize) -> Vec<String> {
    (0..n)
        .map(|_| f.seal(chain, body).as_str().to_owned())
        .collect()
}

/// Verify a fresh envelope: cold (link cache disabled: every signature checked) and warm
/// (links cached: the envelope's signature only), for chain lengths 1 to 8, next to
/// `verify_strict` of the same n + 1 messages and of the envelope alone.
fn verify_chains(c: &mut Criterion) {
    let f = Fixture::new();
    let mut g = group(c, "verify_chain");
    let body = payload(256);
    let ctx = RequestContext::new();
    for n in 1..=MAX_HOPS {
        let chain = f.chain(n);
        let pool = envelopes(&f, &chain, &body, 512);
        let raw = raw_checks(&f, &chain, &pool[0]);
        for (label, capacity) in [("cold", 0), ("warm", DEFAULT_LINK_CACHE_CAPACITY)] {
            let fresh = || {
                let v = f.verifier(capacity);
                if capacity > 0 {
                    let warmup = f.seal(&chain, &body);
                    v.verify(warmup.as_str(), &body, &ctx).expect("warm-up");
                }
                v
            };
            let verifier = RefCell::new(fresh());
            let next = Cell::new(0usize);
            g.bench_with_input(BenchmarkId::new(label, n), &n, |b, _| {
                b.iter(|| {
                    if next.get() == pool.len() {
                        // Every envelope was accepted once: start over with a new verifier
                        // (this one iteration also pays for building it).
                        *verifier.borrow_mut() = fresh();
                        next.set(0);
                    }
                    let i = next.get();
                    next.set(i + 1);
                    black_box(verifier.borrow().verify(&pool[i], &body, &ctx)).expect("verifies")
                })
            });
        }
        g.bench_with_input(BenchmarkId::new("raw/verify_strict_all", n), &n, |b, _| {
            b.iter(|| {
                for (key, s) in &raw {
                    key.verify_strict(black_box(&s.signing_input), &s.signature)
                        .expect("raw verify");
                }
            })
        });
        let (key, envelope) = raw.last().expect("envelope");
        g.bench_with_input(
            BenchmarkId::new("raw/verify_strict_envelope", n),
            &n,
            |b, _| {
                b.iter(|| {
                    key.verify_strict(black_box(&envelope.signing_input), &envelope.signature)
                        .expect("raw verify")
                })
            },
        );
    }
    g.finish();
}

/// Warm verify of a 3-link chain with payloads of 0 B to 1 MiB (the payload is hashed on every
/// verify), next to `verify_strict` of the envelope.
fn verify_payloads(c: &mut Criterion) {
    let f = Fixture::new();
    let mut g = group(c, "verify_payload");
    let ctx = RequestContext::new();
    let chain = f.chain(3);
    for size in [0usize, 1 << 10, 64 << 10, 1 << 20] {
        let body = payload(size);
        let pool = envelopes(&f, &chain, &body, 256);
        let raw = raw_checks(&f, &chain, &pool[0]);
        let fresh = || {
            let v = f.verifier(DEFAULT_LINK_CACHE_CAPACITY);
            let warmup = f.seal(&chain, &body);
            v.verify(warmup.as_str(), &body, &ctx).expect("warm-up");
            v
        };
        let verifier = RefCell::new(fresh());
        let next = Cell::new(0usize);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("warm", size), &size, |b, _| {
            b.iter(|| {
                if next.get() == pool.len() {
                    *verifier.borrow_mut() = fresh();
                    next.set(0);
                }
                let i = next.get();
                next.set(i + 1);
                black_box(verifier.borrow().verify(&pool[i], &body, &ctx)).expect("verifies")
            })
        });
        let (key, envelope) = raw.last().expect("envelope");
        g.bench_with_input(
            BenchmarkId::new("raw/verify_strict_envelope", size),
            &size,
            |b, _| {
                b.iter(|| {
                    key.verify_strict(black_box(&envelope.signing_input), &envelope.signature)
                        .expect("raw verify")
                })
            },
        );
    }
    g.finish();
}

/// One insert into a `MemoryReplayCache` that already holds 1 000 000 live ids (its capacity
/// is 4 M so that the inserts made while measuring always find room).
fn replay(c: &mut Criterion) {
    let mut g = group(c, "replay");
    let now = T0;
    let keep = T0.plus(Duration::from_secs(120));
    let cache = MemoryReplayCache::new(4 << 20);
    for n in 0..1_000_000u64 {
        let id: TokenId = format!("live-{n:016x}").parse().expect("id");
        let _ = cache.check_and_insert(&id, keep, now).expect("room");
    }
    let next = Cell::new(0u64);
    g.bench_function("insert_at_1M_live", |b| {
        b.iter_batched(
            || {
                let n = next.get();
                next.set(n + 1);
                format!("new-{n:016x}").parse::<TokenId>().expect("id")
            },
            |id| {
                let fresh = cache.check_and_insert(&id, keep, now).expect("room");
                black_box(fresh)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, produce, verify_chains, verify_payloads, replay);
criterion_main!(benches);
