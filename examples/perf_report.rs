//! The performance report: every figure is a ratio to its Ed25519 reference, measured in the
//! same process and interleaved, because on shared machines absolute speed drifts 20-30 % over
//! minutes while ratios stay put.
//!
//! ```text
//! cargo run --release --example perf_report
//! ```
//!
//! For each figure, 100 rounds alternate about 1.5 ms of the operation with about 1.5 ms of
//! its reference; a round's ratio is (time per operation) / (time per reference), and the
//! figure is the median of the 100 per-round ratios. It prints a table, then one JSON object
//! per line.
//!
//! What is measured (all with keys decoded once, in the bundle and in the reference):
//! - `verify_cold_depth3_over_4_raw_verify`: `HandoffVerifier::verify` of an envelope with a
//!   3-link chain and a 256-byte payload, by a verifier whose link cache is disabled (so every
//!   signature is checked), with the default in-memory replay cache and `DiscardAudit`, each
//!   envelope fresh (its own `jti`); over `verify_strict` of the same 4 signed messages.
//! - `verify_warm_depth3_over_1_raw_verify`: the same with the link cache on and warmed with
//!   the chain; over one `verify_strict` of the envelope.
//! - `seal_over_raw_sign`: `HandoffEnvelope::builder(..).seal()` with a 3-link chain and a
//!   256-byte payload; over a raw `sign` of an envelope's signing input of the same size.
//! - `issue_over_raw_sign`: a root `DelegationToken` (two capabilities, one with a limit);
//!   over a raw `sign` of its signing input.
//! - `threads2_throughput_over_1`: warm verifies per second on 2 threads sharing one verifier,
//!   over the same on 1 thread.
//! - `replay_bytes_per_entry`: resident memory (`VmRSS`) added by a `MemoryReplayCache` holding
//!   1 000 000 live envelope ids, divided by 1 000 000.

// The one exception to Cargo.toml's lint contract in this measuring tool: fixtures that cannot
// fail are unwrapped, and measurements are indexed.
#![allow(clippy::expect_used, clippy::indexing_slicing, clippy::unwrap_used)]

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use agent_handoff::limits::DEFAULT_LINK_CACHE_CAPACITY;
use agent_handoff::limits::DEFAULT_REPLAY_CAPACITY;
use agent_handoff::store::Freshness;
use agent_handoff::store::ReplayCache;
use agent_handoff::*;
use common::*;
use ed25519_dalek::Signer as _;

const ROUNDS: usize = 100;
const SLICE: Duration = Duration::from_micros(1500);
const PAYLOAD_BYTES: usize = 256;

/// How many calls of `f` take about `SLICE`.
fn calibrate(f: &mut dyn FnMut()) -> usize {
    for _ in 0..3 {
        f();
    }
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed() < SLICE * 4 {
        f();
        n += 1;
    }
    (n / 4).max(1)
}

fn time(n: usize, f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64() / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// Median over `ROUNDS` of (time per `op`) / (time per `reference`), interleaved. `before`
/// runs before each round, untimed (to refill pools).
struct Figure {
    ratio: f64,
    op_us: f64,
    reference_us: f64,
}

fn interleaved(
    before: &mut dyn FnMut(usize),
    op: &mut dyn FnMut(),
    reference: &mut dyn FnMut(),
) -> Figure {
    before(0);
    let n_op = calibrate(op);
    let n_ref = calibrate(reference);
    let mut ratios = Vec::with_capacity(ROUNDS);
    let mut ops = Vec::with_capacity(ROUNDS);
    let mut refs = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        before(n_op);
        let t_op = time(n_op, op);
        let t_ref = time(n_ref, reference);
        ratios.push(t_op / t_ref);
        ops.push(t_op);
        refs.push(t_ref);
    }
    Figure {
        ratio: median(ratios),
        op_us: median(ops) * 1e6,
        reference_us: median(refs) * 1e6,
    }
}

/// Fresh envelopes (distinct `jti`s) for a chain, and a verifier that has not seen them;
/// both renewed when the pool runs low, outside the timed part.
struct Pool<'a> {
    fixture: &'a Fixture,
    chain: Vec<DelegationToken>,
    payload: Vec<u8>,
    link_cache: usize,
    envelopes: Vec<HandoffEnvelope>,
    next: AtomicUsize,
    verifier: HandoffVerifier,
}

impl<'a> Pool<'a> {
    const SIZE: usize = 4096;

    fn new(fixture: &'a Fixture, chain: Vec<DelegationToken>, link_cache: usize) -> Pool<'a> {
        let payload = payload(PAYLOAD_BYTES);
        let envelopes = (0..Self::SIZE)
            .map(|_| fixture.seal(&chain, &payload))
            .collect();
        let mut pool = Pool {
            fixture,
            chain,
            payload,
            link_cache,
            envelopes,
            next: AtomicUsize::new(0),
            verifier: fixture.verifier(link_cache),
        };
        pool.renew();
        pool
    }

    /// A new verifier (empty replay cache), warmed with the chain if its cache is on.
    fn renew(&mut self) {
        self.verifier = self.fixture.verifier(self.link_cache);
        if self.link_cache > 0 {
            let warmup = self.fixture.seal(&self.chain, &self.payload);
            self.verifier
                .verify(warmup.as_str(), &self.payload, &RequestContext::new())
                .expect("warm-up verify");
        }
        self.next.store(0, Ordering::Relaxed);
    }

    fn ensure(&mut self, needed: usize) {
        if self.next.load(Ordering::Relaxed) + needed + 64 > Self::SIZE {
            self.renew();
        }
    }

    fn verify_next(&self) {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let envelope = &self.envelopes[i % Self::SIZE];
        let handoff = self
            .verifier
            .verify(envelope.as_str(), &self.payload, &RequestContext::new())
            .expect("a fresh envelope verifies");
        black_box(handoff);
    }
}

fn verify_figure(f: &Fixture, link_cache: usize, reference_signatures: &[usize]) -> Figure {
    let chain = f.chain(3);
    let sample = f.seal(&chain, &payload(PAYLOAD_BYTES));
    let raw = raw_checks(f, &chain, sample.as_str());
    let pool = std::cell::RefCell::new(Pool::new(f, chain, link_cache));
    interleaved(
        &mut |n| pool.borrow_mut().ensure(n),
        &mut || pool.borrow().verify_next(),
        &mut || {
            for &i in reference_signatures {
                let (key, signed) = &raw[i];
                key.verify_strict(black_box(&signed.signing_input), &signed.signature)
                    .expect("raw verify");
            }
        },
    )
}

/// 2-thread over 1-thread throughput of warm verifies, interleaved like the ratios: each round
/// runs about 1.5 ms of verifies on one thread, then on two (both released by a barrier;
/// wall time from the first start to the last finish).
fn threads_figure(f: &Fixture) -> Figure {
    let chain = f.chain(3);
    let mut pool = Pool::new(f, chain, DEFAULT_LINK_CACHE_CAPACITY);
    let n = calibrate(&mut || {
        pool.ensure(1);
        pool.verify_next();
    });
    let mut ratios = Vec::with_capacity(ROUNDS);
    let mut singles = Vec::with_capacity(ROUNDS);
    let mut pairs = Vec::with_capacity(ROUNDS);
    let start_line = Barrier::new(2);
    let finish_line = Barrier::new(2);
    let worker_elapsed = std::sync::Mutex::new((Instant::now(), Instant::now()));
    for _ in 0..ROUNDS {
        pool.ensure(3 * n);
        // One thread.
        let t1 = time(n, &mut || pool.verify_next());
        // Two threads, n each.
        let pool_ref = &pool;
        let (t2_start, t2_end) = std::thread::scope(|s| {
            s.spawn(|| {
                start_line.wait();
                let a = Instant::now();
                for _ in 0..n {
                    pool_ref.verify_next();
                }
                let b = Instant::now();
                *worker_elapsed.lock().expect("lock") = (a, b);
                finish_line.wait();
            });
            start_line.wait();
            let a = Instant::now();
            for _ in 0..n {
                pool_ref.verify_next();
            }
            let b = Instant::now();
            finish_line.wait();
            let (wa, wb) = *worker_elapsed.lock().expect("lock");
            (a.min(wa), b.max(wb))
        });
        let t2 = (t2_end - t2_start).as_secs_f64() / (2 * n) as f64;
        // Throughput ratio: (ops/s on 2 threads) / (ops/s on 1) = t1 / t2 per op.
        ratios.push(t1 / t2);
        singles.push(t1);
        pairs.push(t2);
    }
    Figure {
        ratio: median(ratios),
        op_us: median(pairs) * 1e6,
        reference_us: median(singles) * 1e6,
    }
}

fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resident memory added by 1 000 000 live entries, per entry. `None` where `/proc` is not
/// available.
fn replay_bytes_per_entry() -> Option<f64> {
    const ENTRIES: usize = 1_000_000;
    let now = T0;
    let keep = T0.plus(Duration::from_secs(120));
    let ids: Vec<TokenId> = (0..ENTRIES)
        .map(|n| format!("envelope-{n:016x}").parse().expect("id"))
        .collect();
    let before = resident_bytes()?;
    let cache = MemoryReplayCache::new(DEFAULT_REPLAY_CAPACITY);
    for id in &ids {
        assert_eq!(
            cache.check_and_insert(id, keep, now).expect("room"),
            Freshness::Fresh
        );
    }
    let after = resident_bytes()?;
    assert_eq!(cache.len(), ENTRIES);
    let per_entry = after.saturating_sub(before) as f64 / ENTRIES as f64;
    drop(black_box(cache));
    Some(per_entry)
}

/// `perf_report profile cold|warm SECONDS`: only verify, in a loop, for a profiler.
fn profile(f: &Fixture, which: &str, seconds: u64) {
    let link_cache = if which == "cold" {
        0
    } else {
        DEFAULT_LINK_CACHE_CAPACITY
    };
    let mut pool = Pool::new(f, f.chain(3), link_cache);
    println!(
        "envelope {} bytes, links {:?} bytes",
        pool.envelopes[0].as_str().len(),
        pool.chain
            .iter()
            .map(|t| t.as_str().len())
            .collect::<Vec<_>>()
    );
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        pool.ensure(1);
        pool.verify_next();
        n += 1;
    }
    println!("{n} {which} verifies");
}

fn main() {
    let started = Instant::now();
    let f = Fixture::new();
    let args: Vec<String> = std::env::args().collect();
    if let [_, mode, which, seconds] = args.as_slice() {
        if mode == "profile" {
            profile(&f, which, seconds.parse().unwrap_or(5));
            return;
        }
    }
    let mut rows: Vec<(&str, Figure, &str, &str)> = Vec::new();

    rows.push((
        "verify_cold_depth3_over_4_raw_verify",
        verify_figure(&f, 0, &[0, 1, 2, 3]),
        "<= 1.15",
        "4 x verify_strict",
    ));
    rows.push((
        "verify_warm_depth3_over_1_raw_verify",
        verify_figure(&f, DEFAULT_LINK_CACHE_CAPACITY, &[3]),
        "<= 1.35",
        "1 x verify_strict",
    ));

    // Seal: a 3-link chain, 256-byte payload. Reference: sign a message of the same size.
    let chain = f.chain(3);
    let body = payload(PAYLOAD_BYTES);
    let sample = split(f.seal(&chain, &body).as_str());
    let sender_key = f.signing_key(3);
    rows.push((
        "seal_over_raw_sign",
        interleaved(
            &mut |_| {},
            &mut || {
                black_box(f.seal(black_box(&chain), &body));
            },
            &mut || {
                black_box(sender_key.sign(black_box(&sample.signing_input)));
            },
        ),
        "<= 1.25",
        "1 x sign",
    ));

    let issued = split(f.issue().as_str());
    let authority_key = f.signing_key(0);
    rows.push((
        "issue_over_raw_sign",
        interleaved(
            &mut |_| {},
            &mut || {
                black_box(f.issue());
            },
            &mut || {
                black_box(authority_key.sign(black_box(&issued.signing_input)));
            },
        ),
        "<= 1.25",
        "1 x sign",
    ));

    rows.push((
        "threads2_throughput_over_1",
        threads_figure(&f),
        ">= 1.8",
        "1 thread",
    ));

    println!(
        "{:<40} {:>9} {:>8} {:>12} {:>14}  reference",
        "figure", "ratio", "target", "op (us)", "reference (us)"
    );
    for (name, fig, target, reference) in &rows {
        println!(
            "{name:<40} {:>9.3} {target:>8} {:>12.2} {:>14.2}  {reference}",
            fig.ratio, fig.op_us, fig.reference_us
        );
    }
    let replay = replay_bytes_per_entry();
    match replay {
        Some(b) => println!(
            "{:<40} {:>9.1} {:>8}  (VmRSS added by 1 000 000 live ids)",
            "replay_bytes_per_entry", b, "<= 128"
        ),
        None => println!("replay_bytes_per_entry: not measured (/proc/self/status unavailable)"),
    }
    println!(
        "(2 threads: ops us = per verify on 2 threads; reference us = per verify on 1 thread; available cores: {})",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    for (name, fig, target, _) in &rows {
        println!(
            "{{\"figure\":\"{name}\",\"value\":{:.4},\"target\":\"{target}\",\"op_us\":{:.3},\"reference_us\":{:.3},\"rounds\":{ROUNDS}}}",
            fig.ratio, fig.op_us, fig.reference_us
        );
    }
    if let Some(b) = replay {
        println!(
            "{{\"figure\":\"replay_bytes_per_entry\",\"value\":{b:.2},\"target\":\"<= 128\",\"entries\":1000000}}"
        );
    }
    println!(
        "{{\"figure\":\"report_seconds\",\"value\":{:.2}}}",
        started.elapsed().as_secs_f64()
    );
}
