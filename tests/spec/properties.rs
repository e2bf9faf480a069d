//! Property tests (proptest): `covers` is a partial order, attenuation never widens authority,
//! limits only tighten, decisions do not depend on the producer's JSON layout, sign-then-verify
//! round trips, and no single-byte mutation of a signed input verifies.

use crate::common::*;
use agent_handoff::grant::check_resource;
use agent_handoff::grant::ArgLimit;
use agent_handoff::grant::Pattern;
use agent_handoff::grant::PayloadDigest;
use agent_handoff::wire::AgentPattern;
use agent_handoff::wire::TYP_DELEGATION;
use agent_handoff::wire::TYP_HANDOFF;
use agent_handoff::*;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

// ------------------------------------------------------------------ strategies

/// Action patterns over a tiny alphabet, so that covering relations are frequent.
fn action_pat() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("*".to_owned()),
        6 => "[ab]{1,2}(\\.[ab]{1,2}){0,2}\\*?",
        2 => "[ab]{1,2}\\.\\*",
    ]
}

/// Resource patterns (SPEC 3): `*`, a canonical path, or a canonical path and `/*`.
fn resource_pat() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("*".to_owned()),
        6 => "[xy]{1,2}(/[xy]{1,2}){0,2}(/\\*)?",
        2 => "[xy]{1,2}/\\*",
    ]
}

fn concrete_action() -> impl Strategy<Value = String> {
    "[ab]{1,2}(\\.[ab]{1,2}){0,2}"
}

fn concrete_resource() -> impl Strategy<Value = String> {
    "[xy]{1,2}(/[xy]{1,2}){0,2}"
}

#[derive(Clone, Debug)]
enum L {
    Max(u64),
    In(BTreeSet<String>),
}

fn limit() -> impl Strategy<Value = L> {
    prop_oneof![
        (0u64..6).prop_map(L::Max),
        proptest::collection::btree_set("[uvw]", 0..=3).prop_map(L::In),
    ]
}

fn capability() -> impl Strategy<Value = Capability> {
    (
        action_pat(),
        resource_pat(),
        proptest::option::of(limit()),
        proptest::option::of(limit()),
    )
        .prop_map(|(a, r, l1, l2)| {
            let mut c = Capability::new(&a, &r).unwrap();
            for (name, l) in [("amount", l1), ("mode", l2)] {
                c = match l {
                    None => c,
                    Some(L::Max(m)) => c.max(name, m).unwrap(),
                    Some(L::In(set)) => c.one_of(name, set).unwrap(),
                };
            }
            c
        })
}

fn intent() -> impl Strategy<Value = Intent> {
    (
        concrete_action(),
        concrete_resource(),
        proptest::option::of(0u64..7),
        proptest::option::of("[uvwz]"),
    )
        .prop_map(|(a, r, amount, mode)| {
            let mut i = Intent::new(&a, &r).unwrap();
            if let Some(n) = amount {
                i = i.arg("amount", n);
            }
            if let Some(m) = mode {
                i = i.arg("mode", m);
            }
            i
        })
}

fn agent_pattern() -> impl Strategy<Value = AgentPattern> {
    ("[ab](/[ab]){0,2}", any::<bool>()).prop_map(|(path, subtree)| {
        let s = format!(
            "spiffe://acme.example/{path}{}",
            if subtree { "/*" } else { "" }
        );
        s.parse().unwrap()
    })
}

fn agent_id() -> impl Strategy<Value = AgentId> {
    "[ab](/[ab]){0,3}".prop_map(|p| format!("spiffe://acme.example/{p}").parse().unwrap())
}

fn pattern(kind_action: bool, s: &str) -> Pattern {
    if kind_action {
        Capability::new(s, "x").unwrap().action().clone()
    } else {
        Capability::new("a", s).unwrap().resource().clone()
    }
}

// ---------------------------------------------------------- covers is a partial order

proptest! {
    #![proptest_config(Config::with_cases(256))]

    #[test]
    fn pattern_covers_is_a_partial_order(
        a in action_pat(), b in action_pat(), c in action_pat(),
        r1 in resource_pat(), r2 in resource_pat(), r3 in resource_pat(),
        probe_a in concrete_action(), probe_r in concrete_resource(),
    ) {
        for (is_action, x, y, z, probe) in [
            (true, a, b, c, probe_a),
            (false, r1, r2, r3, probe_r),
        ] {
            let (x, y, z) = (pattern(is_action, &x), pattern(is_action, &y), pattern(is_action, &z));
            prop_assert!(x.covers(&x), "reflexive: {x}");
            if x.covers(&y) && y.covers(&z) {
                prop_assert!(x.covers(&z), "transitive: {x} {y} {z}");
            }
            if x.covers(&y) && y.covers(&x) {
                prop_assert_eq!(&x, &y, "antisymmetric");
            }
            // Sound with respect to matching: what y matches, a cover of y matches.
            if x.covers(&y) && y.matches(&probe) {
                prop_assert!(x.matches(&probe), "{x} covers {y} but not {probe}");
            }
        }
    }

    #[test]
    fn capability_covers_is_a_partial_order(
        x in capability(), y in capability(), z in capability(), probe in intent(),
    ) {
        prop_assert!(x.covers(&x));
        if x.covers(&y) && y.covers(&z) {
            prop_assert!(x.covers(&z), "transitive: {x} {y} {z}");
        }
        if x.covers(&y) && y.covers(&x) {
            prop_assert_eq!(&x, &y);
        }
        // Soundness: every intent the covered capability allows, the cover allows.
        if x.covers(&y) && y.allows(&probe) {
            prop_assert!(x.allows(&probe), "{x} covers {y} but refuses {probe}");
        }
    }

    #[test]
    fn agent_pattern_covers_is_a_partial_order(
        x in agent_pattern(), y in agent_pattern(), z in agent_pattern(), probe in agent_id(),
    ) {
        prop_assert!(x.covers(&x));
        if x.covers(&y) && y.covers(&z) {
            prop_assert!(x.covers(&z), "transitive: {x} {y} {z}");
        }
        if x.covers(&y) && y.covers(&x) {
            prop_assert_eq!(&x, &y);
        }
        if x.covers(&y) && y.matches(&probe) {
            prop_assert!(x.matches(&probe), "{x} covers {y} but not {probe}");
        }
    }

    /// Resources (SPEC 3): over an alphabet with the dangerous characters, a string is a
    /// resource exactly when it is `/`-separated non-empty segments, none `.` or `..`, with no
    /// `%`, `\\` or `*`; a resource pattern matches exactly by segments; intents, capabilities
    /// and hand-signed envelopes agree.
    #[test]
    fn resources_are_canonical_and_match_by_segments(
        r in "[xy./%*\\\\]{0,8}", p in "[xy./%*]{0,6}",
    ) {
        let segments: Vec<&str> = r.split('/').collect();
        let canonical = segments.iter().all(|s| {
            !s.is_empty() && *s != "." && *s != ".." && !s.contains(['%', '*', '\\'])
        });
        prop_assert_eq!(check_resource(&r).is_ok(), canonical, "{:?}", r);
        prop_assert_eq!(Intent::new("a", &r).is_ok(), canonical, "{:?}", r);
        let pattern_ok = p == "*"
            || check_resource(p.strip_suffix("/*").unwrap_or(&p)).is_ok();
        prop_assert_eq!(Capability::new("a", &p).map(|_| ()).is_ok(), pattern_ok, "{:?}", p);
        if canonical && pattern_ok {
            let pat = pattern(false, &p);
            let model = match p.strip_suffix("/*") {
                _ if p == "*" => true,
                Some(base) => {
                    let b: Vec<&str> = base.split('/').collect();
                    segments.len() > b.len() && segments[..b.len()] == b[..]
                }
                None => r == p,
            };
            prop_assert_eq!(pat.matches(&r), model, "{} on {:?}", pat, r);
        }
    }

    /// Limits only tighten: a limit covered by a parent's limit admits no value the parent's
    /// refuses.
    #[test]
    fn limits_only_tighten(p in capability(), c in capability(), probe in intent()) {
        for (name, pl) in p.limits() {
            if let Some(cl) = c.limits().get(name) {
                if pl.covers(cl) {
                    let v = probe.args().get(name.as_str());
                    prop_assert!(!cl.allows(v) || pl.allows(v), "{name}: {pl:?} covers {cl:?}");
                }
            }
        }
    }
}

// ------------------------------------------------------ attenuation never widens

/// A tiny deterministic generator driven by proptest's seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// A narrowing of `parent`: extend wildcard patterns, tighten or add limits. `star` is how a
/// narrowed wildcard pattern ends: `*` for actions, `/*` for resources (whose `*` is a whole
/// last segment).
fn narrow_pattern(p: &str, rng: &mut Rng, alphabet: &[&str], star: &str) -> String {
    match p.strip_suffix('*') {
        None => p.to_owned(),
        Some(prefix) => match rng.next() % 3 {
            0 => p.to_owned(),
            1 => format!("{prefix}{}{star}", rng.pick(alphabet)),
            _ => format!("{prefix}{}", rng.pick(alphabet)),
        },
    }
}

fn narrow(parent: &Capability, rng: &mut Rng) -> Capability {
    let a = narrow_pattern(parent.action().as_str(), rng, &["a", "b", "a.", "b."], "*");
    let r = narrow_pattern(parent.resource().as_str(), rng, &["x", "y", "xy"], "/*");
    let mut c = Capability::new(&a, &r).unwrap();
    for (name, l) in parent.limits() {
        c = match l {
            ArgLimit::Max(m) => {
                let m = m.as_u64().unwrap();
                c.max(name.as_str(), m.saturating_sub(rng.next() % 2))
                    .unwrap()
            }
            ArgLimit::In(set) => {
                let keep: Vec<&String> = set
                    .iter()
                    .filter(|_| !rng.next().is_multiple_of(3))
                    .collect();
                c.one_of(name.as_str(), keep).unwrap()
            }
            _ => unreachable!("only max and in exist"),
        };
    }
    if !parent.limits().keys().any(|n| n.as_str() == "amount") && rng.next().is_multiple_of(3) {
        c = c.max("amount", rng.next() % 6).unwrap();
    }
    c
}

#[derive(Clone, Debug)]
enum Step {
    /// Narrow the parent's capabilities through the builder.
    Narrow(u64),
    /// Ask for arbitrary capabilities: through the builder, and hand-signed past it.
    Arbitrary(Vec<Capability>),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        any::<u64>().prop_map(|s| Step::Narrow(s | 1)),
        proptest::collection::vec(capability(), 1..3).prop_map(Step::Arbitrary),
    ]
}

fn caps_json(caps: &[Capability]) -> Value {
    serde_json::to_value(caps).unwrap()
}

proptest! {
    #![proptest_config(Config::with_cases(64))]

    #[test]
    fn no_attenuation_grants_what_the_root_did_not(
        root_caps in proptest::collection::vec(capability(), 1..3),
        steps in proptest::collection::vec(step(), 0..3),
        probes in proptest::collection::vec(intent(), 4),
    ) {
        let w = World::new();
        let agents = [&w.orchestrator, &w.planner, &w.executor, &w.payments, &w.mallory];
        let depth = steps.len() as u8;
        let root = root_caps
            .iter()
            .cloned()
            .fold(
                DelegationToken::root(&w.orchestrator.identity)
                    .delegate_to(&w.planner.public())
                    .task("task-42".parse().unwrap()),
                TokenBuilder::grant,
            )
            .depth(depth)
            .ttl(Duration::from_secs(600))
            .issued_at(w.now())
            .sign()
            .unwrap();
        let mut chain: Vec<String> = vec![root.as_str().to_owned()];
        let mut tokens = vec![root];
        // Set once a hand-signed link escalated: the verifier must say so.
        let mut escalated = false;
        for (i, s) in steps.iter().enumerate() {
            let holder = agents[i + 1];
            let next = agents[i + 2];
            let parent_caps: Vec<Capability> = match tokens.last() {
                Some(t) => t.claimed_capabilities().to_vec(),
                None => break, // a hand-signed link ended the builder chain
            };
            let caps: Vec<Capability> = match s {
                Step::Narrow(seed) => {
                    let mut rng = Rng(*seed);
                    parent_caps.iter().map(|p| narrow(p, &mut rng)).collect()
                }
                Step::Arbitrary(caps) => caps.clone(),
            };
            let covered = caps.iter().all(|c| parent_caps.iter().any(|p| p.covers(c)));
            let parent = tokens.last().unwrap();
            let built = caps
                .iter()
                .cloned()
                .fold(parent.attenuate(&holder.identity).delegate_to(&next.public()), TokenBuilder::grant)
                .issued_at(w.now())
                .sign();
            // The builder and the coverage model agree.
            prop_assert_eq!(built.is_ok(), covered, "builder vs covers on {:?}", caps);
            match built {
                Ok(t) => {
                    chain.push(t.as_str().to_owned());
                    tokens.push(t);
                }
                Err(_) => {
                    // Hand-sign the escalating child past the builder; it must be refused.
                    let claims = w.token_claims(
                        holder, next, Some(parent.as_str()), caps_json(&caps),
                        u64::from(parent.claimed_depth()) - 1,
                    );
                    chain.push(w.raw_token(holder, &claims));
                    escalated = true;
                    break;
                }
            }
        }
        let sender = agents[chain.len()];
        let root_caps = tokens[0].claimed_capabilities().to_vec();
        let last_caps = tokens.last().unwrap().claimed_capabilities().to_vec();
        for probe in &probes {
            let mut claims = w.envelope_claims(sender, &w.outsider, &[]);
            claims["chain"] = json!(chain);
            claims["intent"] = serde_json::to_value(probe).unwrap();
            let env = w.raw_envelope(sender, &claims);
            let result = w.verifier(&w.outsider).verify(&env, PAYLOAD, &RequestContext::new());
            if escalated {
                assert_reason(result, Reason::Escalation);
                continue;
            }
            match &result {
                Ok(h) => {
                    prop_assert!(root_caps.iter().any(|c| c.allows(probe)),
                        "granted {probe} which the root does not allow");
                    // Every link allows it: authority only narrows along the chain.
                    for link in h.chain() {
                        prop_assert!(link.capabilities().iter().any(|c| c.allows(probe)));
                    }
                }
                Err(r) => {
                    prop_assert_eq!(r.reason(), Reason::IntentNotGranted, "{}", r);
                    prop_assert!(!last_caps.iter().any(|c| c.allows(probe)));
                }
            }
        }
    }
}

// ------------------------------------------- decisions ignore the producer's JSON layout

/// Writes JSON with members in a permuted order and random insignificant whitespace.
fn write_varied(v: &Value, rng: &mut Rng, out: &mut String) {
    const WS: [&str; 5] = ["", " ", "\n", "\t", "\r\n  "];
    let ws = |rng: &mut Rng, out: &mut String| out.push_str(rng.pick::<&str>(&WS));
    ws(rng, out);
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            for i in (1..keys.len()).rev() {
                keys.swap(i, (rng.next() % (i as u64 + 1)) as usize);
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                ws(rng, out);
                out.push_str(&serde_json::to_string(k).unwrap());
                ws(rng, out);
                out.push(':');
                write_varied(&map[*k], rng, out);
            }
            ws(rng, out);
            out.push('}');
        }
        Value::Array(xs) => {
            out.push('[');
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_varied(x, rng, out);
            }
            ws(rng, out);
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
    ws(rng, out);
}

fn varied(v: &Value, seed: u64) -> String {
    let mut out = String::new();
    write_varied(v, &mut Rng(seed | 1), &mut out);
    out
}

proptest! {
    #![proptest_config(Config::with_cases(96))]

    #[test]
    fn decision_ignores_member_order_and_whitespace(
        token_seed in any::<u64>(),
        env_seed in any::<u64>(),
        granted in any::<bool>(),
    ) {
        let w = World::new();
        let caps = json!([{"action": "tickets.*", "resource": "project/alpha/*", "limits": {"amount": {"max": 5}}}]);
        let token_claims = w.token_claims(&w.orchestrator, &w.planner, None, caps, 1);
        let canonical_token = w.raw_token(&w.orchestrator, &token_claims);
        let varied_token = sign_raw(&w.orchestrator.seed, &varied(&json!({"alg": "EdDSA", "typ": TYP_DELEGATION, "kid": w.orchestrator.kid()}), token_seed ^ 7), &varied(&token_claims, token_seed));
        let mut decisions = Vec::new();
        for (tok, seed) in [(&canonical_token, None), (&varied_token, Some(env_seed))] {
            let mut env = w.envelope_claims(&w.planner, &w.executor, &[tok]);
            env["intent"]["args"] = json!({"amount": if granted { 5 } else { 6 }});
            let wire = match seed {
                None => w.raw_envelope(&w.planner, &env),
                Some(s) => sign_raw(
                    &w.planner.seed,
                    &varied(&json!({"alg": "EdDSA", "typ": TYP_HANDOFF, "kid": w.planner.kid()}), s ^ 11),
                    &varied(&env, s),
                ),
            };
            let r = w.verifier(&w.executor).verify(&wire, PAYLOAD, &RequestContext::new());
            decisions.push(r.map(|h| (h.intent().clone(), h.task().clone())).map_err(|e| e.reason()));
        }
        prop_assert_eq!(&decisions[0], &decisions[1]);
        prop_assert_eq!(decisions[0].is_ok(), granted, "{:?}", decisions[0]);
        if !granted {
            prop_assert_eq!(&decisions[0], &Err(Reason::IntentNotGranted));
        }
    }
}

// --------------------------------------------------- round trips and mutations

proptest! {
    #![proptest_config(Config::with_cases(64))]

    #[test]
    fn sign_then_verify_round_trips(
        probe in intent(),
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        ttl in 1u64..=120,
    ) {
        let w = World::new();
        let mut cap = Capability::new(probe.action(), probe.resource()).unwrap();
        if let Some(ArgValue::Number(n)) = probe.args().get("amount") {
            cap = cap.max("amount", n.as_u64().unwrap()).unwrap();
        }
        let grant = DelegationToken::root(&w.orchestrator.identity)
            .delegate_to(&w.planner.public())
            .task("task-7".parse().unwrap())
            .grant(cap.clone())
            .issued_at(w.now())
            .sign()
            .unwrap();
        let decoded = DelegationToken::decode(grant.as_str()).unwrap();
        prop_assert_eq!(decoded.as_str(), grant.as_str());
        prop_assert_eq!(decoded.claimed_capabilities(), &[cap][..]);
        let env = HandoffEnvelope::builder(&w.planner.identity)
            .to(w.executor.id())
            .with_intent(probe.clone())
            .payload(&payload)
            .chain([&grant])
            .ttl(Duration::from_secs(ttl))
            .issued_at(w.now())
            .seal()
            .unwrap();
        let again = HandoffEnvelope::decode(env.as_str()).unwrap();
        prop_assert_eq!(again.claimed_intent(), &probe);
        let h = w.verifier(&w.executor).verify(env.as_str(), &payload, &RequestContext::new()).unwrap();
        prop_assert_eq!(h.intent(), &probe);
        prop_assert_eq!(h.payload_digest(), PayloadDigest::of(&payload));
        prop_assert_eq!(h.expires_at().as_secs() - h.issued_at().as_secs(), ttl);
    }

    #[test]
    fn any_byte_flip_of_a_signed_envelope_never_verifies(
        pos in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let w = World::new();
        let env = w.request(&[w.grant()]);
        let mut bytes = env.as_str().as_bytes().to_vec();
        let i = pos.index(bytes.len());
        bytes[i] ^= flip;
        // Bytes that are not UTF-8 cannot be handed to the verifier as text at all.
        if let Ok(text) = String::from_utf8(bytes) {
            let r = w.verifier(&w.executor).verify(&text, PAYLOAD, &RequestContext::new());
            prop_assert!(r.is_err(), "flipped byte {i} by {flip:#x} and it verified");
        }
    }

    #[test]
    fn a_sender_cannot_tamper_with_a_token_it_carries(
        pos in any::<prop::sample::Index>(),
        flip in 1u8..=127,
    ) {
        // The sender re-signs the envelope honestly, but one byte of the root token differs.
        let w = World::new();
        let grant = w.grant();
        let mut tok = grant.as_str().as_bytes().to_vec();
        let i = pos.index(tok.len());
        tok[i] ^= flip;
        let tok = String::from_utf8(tok).unwrap();
        let claims = w.envelope_claims(&w.planner, &w.executor, &[&tok]);
        let env = w.raw_envelope(&w.planner, &claims);
        let r = w.verifier(&w.executor).verify(&env, PAYLOAD, &RequestContext::new());
        prop_assert!(r.is_err(), "token byte {i} flipped by {flip:#x} and it verified");
    }

    #[test]
    fn random_text_never_verifies(s in "\\PC{0,300}", parts in proptest::collection::vec("[A-Za-z0-9_-]{0,80}", 3)) {
        let w = World::new();
        let v = w.verifier(&w.executor);
        prop_assert!(v.verify(&s, PAYLOAD, &RequestContext::new()).is_err());
        let jws = parts.join(".");
        prop_assert!(v.verify(&jws, PAYLOAD, &RequestContext::new()).is_err());
    }
}
