//! Resource limits under attack: the worst-case envelope (at the 64 KiB size limit, with a
//! maximal 8-link chain) is verified or rejected in bounded work. Work is measured with
//! counts, never wall-clock time: key resolutions (each signature check needs one; a counting
//! `KeyResolver` wraps the trust bundle) and bytes allocated (a counting global allocator in
//! this test binary; each measuring test runs alone in a child process of it).
//!
//! Run with `--nocapture` to see the measured numbers.

use crate::common::*;
use agent_handoff::audit::DiscardAudit;
use agent_handoff::keys::KeyId;
use agent_handoff::keys::KeyResolver;
use agent_handoff::limits::MAX_CHAIN_LINKS;
use agent_handoff::limits::MAX_ENVELOPE_BYTES;
use agent_handoff::limits::MAX_TOKEN_BYTES;
use agent_handoff::*;
use ed25519_dalek::VerifyingKey;
use serde_json::json;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The allocator counters are process-wide, and the other modules' tests run in parallel in
/// this binary. So each measuring test runs alone: in the test run it starts a child process of
/// this binary that runs only that test (`--exact`, one thread) and passes if the child passed;
/// in the child (this variable set) it measures, holding this lock for its whole body.
static MEASURE: Mutex<()> = Mutex::new(());
const ALONE: &str = "AGENT_HANDOFF_MEASURE_ALONE";

/// In the child process: the lock (measure now). In the test run: runs `test` in a child
/// process, asserts that it passed, and returns `None` (nothing left to do).
fn exclusive(test: &str) -> Option<std::sync::MutexGuard<'static, ()>> {
    if std::env::var_os(ALONE).is_some() {
        return Some(MEASURE.lock().unwrap_or_else(|e| e.into_inner()));
    }
    // `spec::limits::name` is listed by the harness as `limits::name`.
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let name = format!("{module}::{test}");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(ALONE, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "`{name}` failed in its own process");
    assert!(
        stdout.contains("1 passed"),
        "`{name}` did not run: {stdout}"
    );
    None
}

/// Counts key resolutions: an upper bound on the signature checks a verify performs.
#[derive(Debug, Clone)]
struct Counting {
    inner: TrustBundle,
    resolves: Arc<AtomicUsize>,
}

impl KeyResolver for Counting {
    fn resolve(&self, agent: &AgentId, kid: &KeyId) -> Option<VerifyingKey> {
        self.resolves.fetch_add(1, Ordering::SeqCst);
        self.inner.resolve(agent, kid)
    }
    fn is_authority(&self, agent: &AgentId) -> bool {
        self.inner.is_authority(agent)
    }
    fn federates(&self, trust_domain: &str) -> bool {
        self.inner.federates(trust_domain)
    }
    fn generation(&self) -> u64 {
        self.inner.generation()
    }
}

struct Measured {
    result: Result<VerifiedHandoff, Rejection>,
    resolves: usize,
    bytes_allocated: usize,
    allocations: usize,
}

struct Setup {
    w: World,
    extra: Vec<Agent>,
    counting: Counting,
}

impl Setup {
    fn new() -> Setup {
        let mut w = World::new();
        let extra: Vec<Agent> = (0..4)
            .map(|i| Agent::new(&format!("spiffe://acme.example/agents/n{i}"), 20 + i))
            .collect();
        for a in &extra {
            w.bundle.add_agent(&a.public()).unwrap();
        }
        let counting = Counting {
            inner: w.bundle.clone(),
            resolves: Arc::new(AtomicUsize::new(0)),
        };
        Setup { w, extra, counting }
    }

    /// The nine agents of a maximal chain: the authority, then eight delegates.
    fn agents(&self) -> Vec<&Agent> {
        let w = &self.w;
        let mut v = vec![
            &w.orchestrator,
            &w.planner,
            &w.executor,
            &w.payments,
            &w.mallory,
        ];
        v.extend(self.extra.iter());
        v
    }

    fn measure(&self, envelope: &str, payload: &[u8]) -> Measured {
        let verifier =
            HandoffVerifier::builder(self.w.outsider.id().clone(), self.counting.clone())
                .clock(self.w.clock.clone())
                .audit(DiscardAudit)
                .build()
                .unwrap();
        self.counting.resolves.store(0, Ordering::SeqCst);
        let region = Region::new(GLOBAL);
        let result = verifier.verify(envelope, payload, &RequestContext::new());
        let stats = region.change();
        Measured {
            resolves: self.counting.resolves.load(Ordering::SeqCst),
            bytes_allocated: stats.bytes_allocated,
            allocations: stats.allocations,
            result,
        }
    }
}

/// Capabilities that make a token large but stay within 8 KiB.
fn big_caps() -> Vec<Capability> {
    (0..12)
        .map(|i| {
            Capability::new(
                &format!("tickets.read{i:02}"),
                &format!("project/alpha/{}/*", "r".repeat(110)),
            )
            .unwrap()
        })
        .collect()
}

/// A maximal chain: 8 links, each near the largest a token may reasonably be, plus a request
/// envelope from the last delegate padded to just under 64 KiB.
fn worst_case(s: &Setup) -> (Vec<DelegationToken>, HandoffEnvelope) {
    let tokens = max_chain(s, true);
    let env = padded_envelope(s, &tokens, MAX_ENVELOPE_BYTES);
    (tokens, env)
}

/// Eight links; `big`: each token carries 12 long capabilities and a 1.9 KiB `ext`.
fn max_chain(s: &Setup, big: bool) -> Vec<DelegationToken> {
    let agents = s.agents();
    let ext = json!({"note": "e".repeat(if big { 1900 } else { 1 })});
    let caps = if big {
        big_caps()
    } else {
        big_caps()[7..8].to_vec()
    };
    let mut tokens: Vec<DelegationToken> = Vec::new();
    for i in 0..MAX_CHAIN_LINKS {
        let builder = match tokens.last() {
            None => DelegationToken::root(&agents[0].identity)
                .task("task-42".parse().unwrap())
                .depth(7)
                .ttl(Duration::from_secs(600)),
            Some(parent) => parent.attenuate(&agents[i].identity),
        };
        let t = caps
            .iter()
            .cloned()
            .fold(
                builder.delegate_to(&agents[i + 1].public()),
                TokenBuilder::grant,
            )
            .ext(&ext)
            .unwrap()
            .issued_at(s.w.now())
            .sign()
            .unwrap();
        assert!(t.as_str().len() <= MAX_TOKEN_BYTES);
        tokens.push(t);
    }
    tokens
}

/// A request envelope from the last delegate, its `pad` argument grown until the envelope is
/// within a few bytes of `target` (or as small as it gets when `target` is 0).
fn padded_envelope(s: &Setup, tokens: &[DelegationToken], target: usize) -> HandoffEnvelope {
    let agents = s.agents();
    let sender = agents[MAX_CHAIN_LINKS];
    let seal = |pad: usize| {
        HandoffEnvelope::builder(&sender.identity)
            .to(s.w.outsider.id())
            .intent(
                "tickets.read07",
                &format!("project/alpha/{}/1", "r".repeat(110)),
            )
            .unwrap()
            .arg("pad", "p".repeat(pad))
            .payload(PAYLOAD)
            .chain(tokens)
            .issued_at(s.w.now())
            .seal()
            .unwrap()
    };
    // Grow the padding until the envelope sits within a few bytes of the limit.
    let mut pad = 0;
    let mut env = seal(pad);
    while env.as_str().len() + 4 <= target {
        pad += ((target - env.as_str().len()) * 3 / 4).max(1);
        env = seal(pad);
    }
    while target > 0 && env.as_str().len() > target {
        pad -= 1;
        env = seal(pad);
    }
    env
}

fn report(name: &str, m: &Measured) {
    println!(
        "{name}: decision={:?} key_resolutions={} allocations={} bytes_allocated={}",
        m.result
            .as_ref()
            .map(|_| "allow")
            .map_err(Rejection::reason),
        m.resolves,
        m.allocations,
        m.bytes_allocated
    );
}

/// At most one key resolution (so at most one signature check) per link, one for the envelope,
/// and one `cnf` lookup per link.
const MAX_RESOLVES: usize = 1 + 2 * MAX_CHAIN_LINKS;
/// Bytes allocated while verifying one worst-case envelope: a fixed multiple of the input.
const MAX_BYTES: usize = 8 * MAX_ENVELOPE_BYTES;

#[test]
fn worst_case_envelope_is_verified_in_bounded_work() {
    let Some(_only_me) = exclusive("worst_case_envelope_is_verified_in_bounded_work") else {
        return;
    };
    let s = Setup::new();
    let (_, env) = worst_case(&s);
    let size = env.as_str().len();
    assert!(
        size <= MAX_ENVELOPE_BYTES && size + 8 >= MAX_ENVELOPE_BYTES,
        "{size}"
    );
    assert_eq!(env.claimed_chain().len(), MAX_CHAIN_LINKS);

    let m = s.measure(env.as_str(), PAYLOAD);
    report("allow, 8 links, 64 KiB", &m);
    let h = m.result.as_ref().unwrap();
    // The same chain without the padding argument, for comparison.
    let small = padded_envelope(&s, &max_chain(&s, true), 0);
    let m0 = s.measure(small.as_str(), PAYLOAD);
    report(
        &format!(
            "allow, 8 links, {} bytes (no padding)",
            small.as_str().len()
        ),
        &m0,
    );
    m0.result.as_ref().unwrap();
    assert_eq!(h.chain().len(), MAX_CHAIN_LINKS);
    // Nine signatures (envelope + 8 links) must each have been checked with a resolved key.
    assert!(m.resolves > MAX_CHAIN_LINKS, "{}", m.resolves);
    assert!(m.resolves <= MAX_RESOLVES, "{}", m.resolves);
    assert!(m.bytes_allocated <= MAX_BYTES, "{}", m.bytes_allocated);
}

#[test]
fn worst_case_with_a_bad_last_link_is_rejected_in_bounded_work() {
    // The sender is a registered agent (it can sign envelopes), and forges the last link: the
    // verifier must check all eight links before it finds out.
    let Some(_only_me) = exclusive("worst_case_with_a_bad_last_link_is_rejected_in_bounded_work")
    else {
        return;
    };
    let s = Setup::new();
    let (tokens, env) = worst_case(&s);
    let last = tokens.last().unwrap().as_str();
    let (input, sig) = last.rsplit_once('.').unwrap();
    let mut sig: Vec<u8> = sig.bytes().collect();
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    let forged = format!("{input}.{}", String::from_utf8(sig).unwrap());
    let mut claims = env.claims_json();
    claims["chain"][MAX_CHAIN_LINKS - 1] = json!(forged);
    let sender = s.agents()[MAX_CHAIN_LINKS];
    let wire = s.w.raw_envelope(sender, &claims);
    assert!(wire.len() <= MAX_ENVELOPE_BYTES);

    let m = s.measure(&wire, PAYLOAD);
    report("deny, forged 8th link", &m);
    assert_reason(m.result, Reason::BadSignature);
    assert!(m.resolves <= MAX_RESOLVES, "{}", m.resolves);
    assert!(m.bytes_allocated <= MAX_BYTES, "{}", m.bytes_allocated);
}

#[test]
fn oversized_and_overlong_inputs_are_refused_before_any_signature_check() {
    let Some(_only_me) =
        exclusive("oversized_and_overlong_inputs_are_refused_before_any_signature_check")
    else {
        return;
    };
    let s = Setup::new();
    let (tokens, env) = worst_case(&s);

    // One byte over the limit: refused before decoding, without copying the input.
    let mut big = env.as_str().to_owned();
    while big.len() <= MAX_ENVELOPE_BYTES {
        big.push('A');
    }
    let m = s.measure(&big, PAYLOAD);
    report("deny, 64 KiB + 1", &m);
    assert_reason(m.result, Reason::TooLarge);
    assert_eq!(m.resolves, 0);
    assert!(m.bytes_allocated < 4096, "{}", m.bytes_allocated);

    // A 9-link chain (the ninth link repeated): refused on its length, before any key lookup.
    let _ = tokens;
    let small = max_chain(&s, false);
    let mut claims = padded_envelope(&s, &small, 0).claims_json();
    let mut chain: Vec<String> = small.iter().map(|t| t.as_str().to_owned()).collect();
    chain.push(chain[0].clone());
    claims["chain"] = json!(chain);
    claims["intent"] = json!({"action": "tickets.read07", "resource": "project/alpha/x"});
    let sender = s.agents()[MAX_CHAIN_LINKS];
    let wire = s.w.raw_envelope(sender, &claims);
    assert!(wire.len() <= MAX_ENVELOPE_BYTES, "{}", wire.len());
    let m = s.measure(&wire, PAYLOAD);
    report("deny, 9 links", &m);
    assert_reason(m.result, Reason::ChainTooLong);
    assert_eq!(m.resolves, 0);
    assert!(m.bytes_allocated <= MAX_BYTES, "{}", m.bytes_allocated);

    // An unsigned 64 KiB blob of well-formed base64url: malformed, no key lookup.
    let blob = format!(
        "{}.{}.{}",
        "A".repeat(20_000),
        "B".repeat(40_000),
        "C".repeat(86)
    );
    let m = s.measure(&blob, PAYLOAD);
    report("deny, 64 KiB junk", &m);
    assert!(m.result.is_err());
    assert_eq!(m.resolves, 0);
    assert!(m.bytes_allocated <= MAX_BYTES, "{}", m.bytes_allocated);
}
