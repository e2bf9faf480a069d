//! Generates the golden vectors in `tests/vectors/` (format: `docs/testing.md`, section *Golden vectors for other implementations*).
//!
//! ```sh
//! cargo run --example gen_vectors -- tests/vectors
//! ```
//!
//! Everything is deterministic: keys come from fixed seeds, every claim (including each `jti`)
//! is written here rather than by the builders, the clock is fixed, and Ed25519 signatures are
//! deterministic. `tests/spec/vectors.rs` checks that the committed files equal a fresh run.

// The one exception to Cargo.toml's lint contract in this generator (also compiled into the
// tests): it indexes the JSON it builds and panics on an impossible fixture.
#![allow(clippy::indexing_slicing, clippy::panic)]

use agent_handoff::{wire::TYP_DELEGATION, wire::TYP_HANDOFF, AgentId, AgentIdentity, TrustBundle};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::{json, Value};
use sha2::Digest as _;

/// The instant every vector is verified at: 2027-01-15T08:00:00Z.
pub(crate) const NOW: u64 = 1_800_000_000;
/// The trust domain of every vector.
pub(crate) const DOMAIN: &str = "acme.example";

/// The format tag in every vector file.
pub(crate) const FORMAT: &str = "agent-handoff-vectors/1";

struct Agent {
    id: &'static str,
    seed: [u8; 32],
}

impl Agent {
    fn identity(&self) -> AgentIdentity {
        let id: AgentId = self.id.parse().unwrap_or_else(|e| panic!("{e}"));
        AgentIdentity::from_seed(id, &self.seed)
    }
    fn kid(&self) -> String {
        self.identity().kid().as_str().to_owned()
    }
}

const ORCH: Agent = Agent {
    id: "spiffe://acme.example/orchestrator",
    seed: [1; 32],
};
const PLANNER: Agent = Agent {
    id: "spiffe://acme.example/agents/planner",
    seed: [2; 32],
};
const EXECUTOR: Agent = Agent {
    id: "spiffe://acme.example/agents/executor",
    seed: [3; 32],
};
const PAYMENTS: Agent = Agent {
    id: "spiffe://acme.example/tools/payments",
    seed: [4; 32],
};
const MALLORY: Agent = Agent {
    id: "spiffe://acme.example/agents/mallory",
    seed: [5; 32],
};
const OUTSIDER: Agent = Agent {
    id: "spiffe://acme.example/agents/outsider",
    seed: [6; 32],
};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value with every object's members in sorted order, whatever `serde_json`'s map type
/// is (another crate in the build can switch on its `preserve_order` feature): the vectors
/// must be byte-for-byte the same under every feature set.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&map[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn sign(seed: &[u8; 32], header: &Value, claims: &Value) -> String {
    sign_text(seed, header, &canonical(claims).to_string())
}

/// Signs claims given as JSON text: for numbers `serde_json::Value` cannot hold as written.
fn sign_text(seed: &[u8; 32], header: &Value, claims: &str) -> String {
    let input = format!(
        "{}.{}",
        b64(canonical(header).to_string().as_bytes()),
        b64(claims.as_bytes())
    );
    let sig = SigningKey::from_bytes(seed).sign(input.as_bytes());
    format!("{input}.{}", b64(&sig.to_bytes()))
}

fn header(typ: &str, kid: &str) -> Value {
    json!({"alg": "EdDSA", "typ": typ, "kid": kid})
}

fn token_hash(compact: &str) -> String {
    b64(&sha2::Sha256::digest(compact.as_bytes()))
}

fn digest(payload: &[u8]) -> String {
    format!("sha-256:{}", b64(&sha2::Sha256::digest(payload)))
}

const PAYLOAD: &[u8] = br#"{"ticket":123}"#;

fn grant_caps() -> Value {
    json!([
        {"action": "tickets.*", "resource": "project/alpha/*"},
        {"action": "payments.execute", "resource": "account/ops/*", "limits": {"amount": {"max": 500}}}
    ])
}

fn token_claims(
    jti: &str,
    iss: &Agent,
    sub: &Agent,
    parent: Option<&str>,
    caps: Value,
    depth: u64,
) -> Value {
    let mut v = json!({
        "jti": jti, "iss": iss.id, "sub": sub.id, "cnf": {"jkt": sub.kid()},
        "task": "task-42", "caps": caps, "depth": depth, "iat": NOW - 60, "exp": NOW + 600,
    });
    if let Some(p) = parent {
        v["parent"] = json!(token_hash(p));
    }
    v
}

fn token(signer: &Agent, claims: &Value) -> String {
    sign(&signer.seed, &header(TYP_DELEGATION, &signer.kid()), claims)
}

/// orchestrator → planner: tickets.* on project/alpha/*, payments up to 500; depth 2.
fn grant() -> String {
    token(
        &ORCH,
        &token_claims(
            "vec-grant-000000001",
            &ORCH,
            &PLANNER,
            None,
            grant_caps(),
            2,
        ),
    )
}

/// planner → executor: tickets.read only; depth 1.
fn sub_grant(parent: &str) -> String {
    let caps = json!([{"action": "tickets.read", "resource": "project/alpha/*"}]);
    token(
        &PLANNER,
        &token_claims(
            "vec-subgrant-0000001",
            &PLANNER,
            &EXECUTOR,
            Some(parent),
            caps,
            1,
        ),
    )
}

/// A closed capability with one argument per constraint kind (SPEC 3.1).
fn constraint_caps() -> Value {
    json!([{"action": "files.read", "resource": "fs/*", "closed": true, "limits": {
        "amount": {"min": 1, "exclusive_max": 100},
        "mode": {"const": "r"},
        "currency": {"in": ["eur", "usd"]},
        "user": {"not_in": ["root"]},
        "path": {"prefix": "reports/", "suffix": ".pdf", "len": {"max": 64}},
        "name": {"glob": "q?/**"},
        "ticket": {"regex": "[A-Z]{2,4}-[0-9]+"},
        "tags": {"each": {"len": {"min": 1}}, "subset_of": ["a", "b", "c"], "len": {"max": 3}},
        "meta": {"fields": {"owner": {"suffix": "@acme.example"},
                            "note": {"optional": true, "len": {"max": 10}}}, "closed": true},
        "choice": {"any_of": [{"max": 0}, {"prefix": "x"}], "all_of": [{"not_in": [-1]}]},
        "trace": {"optional": true, "len": {"max": 8}}
    }}])
}

fn constraint_args() -> Value {
    json!({"amount": 99.5, "mode": "r", "currency": "eur", "user": "alice",
           "path": "reports/q3.pdf", "name": "q3/2026/x", "ticket": "OPS-42",
           "tags": ["a", "c"], "meta": {"owner": "bob@acme.example"}, "choice": "xy"})
}

/// Vectors for constraints (SPEC 3.1, 3.2): allowed, each kind refused, escalation, malformed.
fn constraint_cases() -> Vec<Case> {
    let root =
        |caps: Value, jti: &str| token(&ORCH, &token_claims(jti, &ORCH, &PLANNER, None, caps, 1));
    let g = root(constraint_caps(), "vec-cgrant-000000001");
    let with = |chain: &[&str], edit: &dyn Fn(&mut Value)| {
        let mut args = constraint_args();
        edit(&mut args);
        let mut c = envelope_claims(&PLANNER, &EXECUTOR, chain);
        c["intent"] = json!({"action": "files.read", "resource": "fs/main", "args": args});
        envelope(&PLANNER, &c)
    };
    let mut out = vec![case(
        "allow-constraints",
        "a closed capability with one argument of each constraint kind, every one satisfied",
        &[&g],
        with(&[&g], &|_| {}),
        PAYLOAD,
        None,
    )];
    let refused: [(&'static str, &'static str, &'static str, Value); 16] = [
        (
            "intent_not_granted-constraint-exclusive-max",
            "`amount` at its `exclusive_max`",
            "amount",
            json!(100),
        ),
        (
            "intent_not_granted-constraint-min",
            "`amount` below its `min`",
            "amount",
            json!(0.5),
        ),
        (
            "intent_not_granted-constraint-const",
            "`mode` other than its `const`",
            "mode",
            json!("w"),
        ),
        (
            "intent_not_granted-constraint-in",
            "`currency` outside its `in` set",
            "currency",
            json!("gbp"),
        ),
        (
            "intent_not_granted-constraint-not-in",
            "`user` in its `not_in` set",
            "user",
            json!("root"),
        ),
        (
            "intent_not_granted-constraint-prefix",
            "`path` without its `prefix`",
            "path",
            json!("secrets/q3.pdf"),
        ),
        (
            "intent_not_granted-constraint-suffix",
            "`path` without its `suffix`",
            "path",
            json!("reports/q3.txt"),
        ),
        (
            "intent_not_granted-constraint-len",
            "`path` longer than its `len`",
            "path",
            json!(format!("reports/{}.pdf", "x".repeat(60))),
        ),
        (
            "intent_not_granted-constraint-glob",
            "`name` that its `glob` does not match (`*` stops at `/`, `?` is one character)",
            "name",
            json!("q33/x"),
        ),
        (
            "intent_not_granted-constraint-regex",
            "`ticket` that its `regex` matches only in part",
            "ticket",
            json!("OPS-42 "),
        ),
        (
            "intent_not_granted-constraint-subset-of",
            "`tags` outside its `subset_of`",
            "tags",
            json!(["a", "d"]),
        ),
        (
            "intent_not_granted-constraint-each",
            "`tags` with an element its `each` refuses",
            "tags",
            json!(["a", ""]),
        ),
        (
            "intent_not_granted-constraint-fields",
            "`meta` whose field fails its constraint",
            "meta",
            json!({"owner": "bob@evil.example"}),
        ),
        (
            "intent_not_granted-constraint-fields-closed",
            "`meta` with a member its closed `fields` do not name",
            "meta",
            json!({"owner": "bob@acme.example", "x": 1}),
        ),
        (
            "intent_not_granted-constraint-any-of",
            "`choice` that no branch of its `any_of` allows",
            "choice",
            json!(1),
        ),
        (
            "intent_not_granted-constraint-type",
            "`amount` of the wrong type (a string)",
            "amount",
            json!("50"),
        ),
    ];
    for (name, description, arg, value) in refused {
        out.push(case(
            name,
            description,
            &[&g],
            with(&[&g], &|a| a[arg] = value.clone()),
            PAYLOAD,
            Some("intent_not_granted"),
        ));
    }
    out.push(case(
        "intent_not_granted-constraint-closed",
        "an argument the closed capability does not name",
        &[&g],
        with(&[&g], &|a| a["shell"] = json!("rm -rf /")),
        PAYLOAD,
        Some("intent_not_granted"),
    ));
    out.push(case(
        "intent_not_granted-constraint-missing",
        "a required argument missing",
        &[&g],
        with(&[&g], &|a| {
            if let Value::Object(m) = a {
                m.remove("mode");
            }
        }),
        PAYLOAD,
        Some("intent_not_granted"),
    ));
    // Delegation: a covered child, and a child that widens one argument.
    let child = |caps: Value, jti: &str| {
        token(
            &PLANNER,
            &token_claims(jti, &PLANNER, &EXECUTOR, Some(&g), caps, 0),
        )
    };
    let mut narrow = constraint_caps();
    narrow[0]["limits"]["path"] =
        json!({"prefix": "reports/2026/", "suffix": ".pdf", "len": {"max": 32}});
    narrow[0]["limits"]["currency"] = json!({"const": "eur"});
    let narrow = child(narrow, "vec-csubgrant-000001");
    let deleg = |tokens: &[&str]| {
        let mut args = constraint_args();
        args["path"] = json!("reports/2026/q3.pdf");
        let mut c = envelope_claims(&PLANNER, &EXECUTOR, tokens);
        c["intent"] = json!({"action": "files.read", "resource": "fs/main", "args": args});
        envelope(&PLANNER, &c)
    };
    out.push(case(
        "allow-constraints-delegation",
        "a child that narrows `path` to a longer prefix and `currency` to one value",
        &[&g, &narrow],
        deleg(&[&g, &narrow]),
        PAYLOAD,
        None,
    ));
    let mut wide = constraint_caps();
    wide[0]["limits"]["name"] = json!({"glob": "q?/*"});
    wide[0]["limits"]["path"] =
        json!({"prefix": "reports/2026/", "suffix": ".pdf", "len": {"max": 32}});
    let wide = child(wide, "vec-csubgrant-000002");
    out.push(case(
        "escalation-constraint",
        "a child whose `glob` differs from its parent's (only the identical glob is covered)",
        &[&g, &wide],
        deleg(&[&g, &wide]),
        PAYLOAD,
        Some("escalation"),
    ));
    let mut open = constraint_caps();
    if let Some(Value::Object(cap)) = open.get_mut(0) {
        cap.remove("closed");
    }
    let open = child(open, "vec-csubgrant-000003");
    out.push(case(
        "escalation-constraint-opened",
        "a child that opens its parent's closed capability",
        &[&g, &open],
        deleg(&[&g, &open]),
        PAYLOAD,
        Some("escalation"),
    ));
    let mut bad = constraint_caps();
    bad[0]["limits"]["ticket"] = json!({"regex": "[A-Z"});
    let bad = root(bad, "vec-cgrant-000000002");
    out.push(case(
        "malformed-constraint-regex",
        "a grant whose `regex` does not compile",
        // The malformed token is in the envelope's chain; it is not listed (it does not decode).
        &[],
        with(&[&bad], &|_| {}),
        PAYLOAD,
        Some("malformed"),
    ));
    let mut conflict = constraint_caps();
    conflict[0]["limits"]["amount"] = json!({"max": 1, "in": ["x"]});
    let conflict = root(conflict, "vec-cgrant-000000003");
    out.push(case(
        "malformed-constraint-type-conflict",
        "a grant whose constraint has members no one type can satisfy",
        // The malformed token is in the envelope's chain; it is not listed (it does not decode).
        &[],
        with(&[&conflict], &|_| {}),
        PAYLOAD,
        Some("malformed"),
    ));
    out
}

/// A closed capability with the semantic members (SPEC 3.1 `subpath`, `url`, `cidr`).
fn semantic_caps() -> Value {
    json!([{"action": "tools.run", "resource": "tool/*", "closed": true, "limits": {
        "path": {"subpath": "/data/reports"},
        "url": {"url": {"schemes": ["https"], "hosts": ["api.acme.example", "*.cdn.acme.example"],
                        "paths": ["/v1"]}},
        "ip": {"cidr": ["10.0.0.0/8", "2001:db8::/32"]}
    }}])
}

fn semantic_args() -> Value {
    json!({"path": "/data/reports/2026/q3.pdf", "url": "https://api.acme.example/v1/reports?q=3",
           "ip": "10.1.2.3"})
}

/// Vectors for the semantic members: allowed, each refused on a tricky input, a covered and an
/// uncovered child, and malformed rules.
fn semantic_cases() -> Vec<Case> {
    let root =
        |caps: Value, jti: &str| token(&ORCH, &token_claims(jti, &ORCH, &PLANNER, None, caps, 1));
    let g = root(semantic_caps(), "vec-sgrant-000000001");
    let with = |chain: &[&str], edit: &dyn Fn(&mut Value)| {
        let mut args = semantic_args();
        edit(&mut args);
        let mut c = envelope_claims(&PLANNER, &EXECUTOR, chain);
        c["intent"] = json!({"action": "tools.run", "resource": "tool/report", "args": args});
        envelope(&PLANNER, &c)
    };
    let mut out = vec![case(
        "allow-constraints-semantic",
        "a closed capability with `subpath`, `url` and `cidr` arguments, every one satisfied",
        &[&g],
        with(&[&g], &|_| {}),
        PAYLOAD,
        None,
    )];
    let refused: [(&'static str, &'static str, &'static str, &'static str); 7] = [
        (
            "intent_not_granted-constraint-subpath-dotdot",
            "`path` with a `..` segment (never resolved)",
            "path",
            "/data/reports/../etc/passwd",
        ),
        (
            "intent_not_granted-constraint-subpath-boundary",
            "`path` beside its `subpath` root, not inside it (segment boundary)",
            "path",
            "/data/reportsx/q3.pdf",
        ),
        (
            "intent_not_granted-constraint-url-fragment",
            "`url` hiding another host behind a fragment",
            "url",
            "https://evil.example#@api.acme.example/v1",
        ),
        (
            "intent_not_granted-constraint-url-host-suffix",
            "`url` whose host only starts with an allowed host",
            "url",
            "https://api.acme.example.evil.example/v1",
        ),
        (
            "intent_not_granted-constraint-url-ip-literal",
            "`url` with a hexadecimal IPv4 host",
            "url",
            "https://0x7f000001/v1",
        ),
        (
            "intent_not_granted-constraint-cidr",
            "`ip` outside its networks",
            "ip",
            "192.168.1.1",
        ),
        (
            "intent_not_granted-constraint-cidr-non-canonical",
            "`ip` in a non-canonical spelling (leading zero: octal to some tools)",
            "ip",
            "010.1.2.3",
        ),
    ];
    for (name, description, arg, value) in refused {
        out.push(case(
            name,
            description,
            &[&g],
            with(&[&g], &|a| a[arg] = json!(value)),
            PAYLOAD,
            Some("intent_not_granted"),
        ));
    }
    let child = |caps: Value, jti: &str| {
        token(
            &PLANNER,
            &token_claims(jti, &PLANNER, &EXECUTOR, Some(&g), caps, 0),
        )
    };
    let deleg = |tokens: &[&str]| {
        let mut args = semantic_args();
        args["path"] = json!("/data/reports/2026/q3.pdf");
        args["url"] = json!("https://img.cdn.acme.example/v1/logo.png");
        let mut c = envelope_claims(&PLANNER, &EXECUTOR, tokens);
        c["intent"] = json!({"action": "tools.run", "resource": "tool/report", "args": args});
        envelope(&PLANNER, &c)
    };
    let mut narrow = semantic_caps();
    narrow[0]["limits"]["path"] = json!({"subpath": "/data/reports/2026"});
    narrow[0]["limits"]["url"] =
        json!({"url": {"schemes": "https", "hosts": "img.cdn.acme.example", "paths": "/v1"}});
    narrow[0]["limits"]["ip"] = json!({"in": ["10.1.2.3"]});
    let narrow = child(narrow, "vec-ssubgrant-000001");
    out.push(case(
        "allow-constraints-semantic-delegation",
        "a child narrowing the `subpath` root, the `url` hosts (one name below a wildcard) and `ip` to one address",
        &[&g, &narrow],
        deleg(&[&g, &narrow]),
        PAYLOAD,
        None,
    ));
    let mut wide = semantic_caps();
    wide[0]["limits"]["path"] = json!({"subpath": "/data"});
    let wide = child(wide, "vec-ssubgrant-000002");
    out.push(case(
        "escalation-constraint-subpath",
        "a child whose `subpath` root is above its parent's",
        &[&g, &wide],
        deleg(&[&g, &wide]),
        PAYLOAD,
        Some("escalation"),
    ));
    let mut wide = semantic_caps();
    wide[0]["limits"]["url"] =
        json!({"url": {"schemes": "https", "hosts": "*.acme.example", "paths": "/v1"}});
    let wide = child(wide, "vec-ssubgrant-000003");
    out.push(case(
        "escalation-constraint-url",
        "a child whose `url` hosts widen `api.acme.example` to `*.acme.example`",
        &[&g, &wide],
        deleg(&[&g, &wide]),
        PAYLOAD,
        Some("escalation"),
    ));
    let mut wide = semantic_caps();
    wide[0]["limits"]["ip"] = json!({"in": ["10.1.2.3", "192.168.1.1"]});
    let wide = child(wide, "vec-ssubgrant-000004");
    out.push(case(
        "escalation-constraint-cidr-in",
        "a child whose finite `in` set holds an address outside its parent's networks",
        &[&g, &wide],
        deleg(&[&g, &wide]),
        PAYLOAD,
        Some("escalation"),
    ));
    for (name, description, arg, bad, jti) in [
        (
            "malformed-constraint-subpath",
            "a grant whose `subpath` root is not in normal form",
            "path",
            json!({"subpath": "/data/../etc"}),
            "vec-sgrant-000000002",
        ),
        (
            "malformed-constraint-url",
            "a grant whose `url` host is a non-canonical IP spelling",
            "url",
            json!({"url": {"schemes": "https", "hosts": "0x7f000001"}}),
            "vec-sgrant-000000003",
        ),
        (
            "malformed-constraint-cidr",
            "a grant whose `cidr` network has host bits set",
            "ip",
            json!({"cidr": "10.0.0.1/8"}),
            "vec-sgrant-000000004",
        ),
    ] {
        let mut caps = semantic_caps();
        caps[0]["limits"][arg] = bad;
        let t = root(caps, jti);
        out.push(case(
            name,
            description,
            // The malformed token is in the envelope's chain; it is not listed (it does not decode).
            &[],
            with(&[&t], &|_| {}),
            PAYLOAD,
            Some("malformed"),
        ));
    }
    out
}

fn envelope_claims(iss: &Agent, aud: &Agent, chain: &[&str]) -> Value {
    json!({
        "jti": "vec-envelope-0000001", "iss": iss.id, "aud": aud.id, "task": "task-42",
        "intent": {"action": "tickets.read", "resource": "project/alpha/123"},
        "digest": digest(PAYLOAD), "iat": NOW - 10, "exp": NOW + 50, "chain": chain,
    })
}

fn envelope(signer: &Agent, claims: &Value) -> String {
    sign(&signer.seed, &header(TYP_HANDOFF, &signer.kid()), claims)
}

struct Case {
    name: &'static str,
    description: &'static str,
    me: &'static Agent,
    tokens: Vec<String>,
    config: Value,
    steps: Vec<(String, Vec<u8>, Option<&'static str>)>,
}

fn case(
    name: &'static str,
    description: &'static str,
    tokens: &[&str],
    envelope: String,
    payload: &[u8],
    reason: Option<&'static str>,
) -> Case {
    Case {
        name,
        description,
        me: &EXECUTOR,
        tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
        config: json!({}),
        steps: vec![(envelope, payload.to_vec(), reason)],
    }
}

fn cases() -> Vec<Case> {
    let g = grant();
    let s = sub_grant(&g);
    let std_env = |f: &dyn Fn(&mut Value)| {
        let mut c = envelope_claims(&PLANNER, &EXECUTOR, &[&g]);
        f(&mut c);
        envelope(&PLANNER, &c)
    };
    let request = std_env(&|_| {});
    let mut out = Vec::new();

    out.push(case(
        "allow-request",
        "the planner asks the executor to read a ticket on its own authority (request mode)",
        &[&g],
        request.clone(),
        PAYLOAD,
        None,
    ));
    let mut deleg = envelope_claims(&PLANNER, &EXECUTOR, &[&g, &s]);
    deleg["intent"]["resource"] = json!("project/alpha/7");
    out.push(case(
        "allow-delegation",
        "the planner hands a narrowed grant to the executor (delegation mode)",
        &[&g, &s],
        envelope(&PLANNER, &deleg),
        PAYLOAD,
        None,
    ));
    let pay = |amount: u64| {
        std_env(&|c| {
            c["intent"] = json!({"action": "payments.execute", "resource": "account/ops/9", "args": {"amount": amount}});
        })
    };
    out.push(case(
        "allow-args-within-limit",
        "an argument exactly at its `max` limit",
        &[&g],
        pay(500),
        PAYLOAD,
        None,
    ));
    out.push(case(
        "intent_not_granted-arg-over-limit",
        "an argument one over its `max` limit",
        &[&g],
        pay(501),
        PAYLOAD,
        Some("intent_not_granted"),
    ));

    let big = std_env(&|c| c["intent"]["args"] = json!({"pad": "p".repeat(50_000)}));
    out.push(case(
        "too_large",
        "a signed envelope of more than 64 KiB",
        &[&g],
        big,
        PAYLOAD,
        Some("too_large"),
    ));
    out.push(case(
        "malformed-unknown-member",
        "a signed envelope with an unknown claim",
        &[&g],
        std_env(&|c| c["extra"] = json!(1)),
        PAYLOAD,
        Some("malformed"),
    ));
    for (name, description, resource) in [
        (
            "malformed-resource-dot-segment",
            "an intent resource with a `..` segment (resources are canonical paths)",
            "project/alpha/../beta",
        ),
        (
            "malformed-resource-percent-encoded",
            "an intent resource with percent-encoding (resources are decoded text)",
            "project/alpha/%2e%2e/beta",
        ),
        (
            "malformed-resource-empty-segment",
            "an intent resource with an empty segment",
            "project/alpha//x",
        ),
    ] {
        out.push(case(
            name,
            description,
            &[&g],
            std_env(&|c| c["intent"]["resource"] = json!(resource)),
            PAYLOAD,
            Some("malformed"),
        ));
    }
    let mut c = envelope_claims(&PLANNER, &EXECUTOR, &[&g]);
    c["intent"] =
        json!({"action": "payments.execute", "resource": "account/ops/9", "args": {"amount": 0}});
    let text = canonical(&c)
        .to_string()
        .replace(r#""amount":0"#, r#""amount":500.0000000000000001"#);
    out.push(case(
        "malformed-inexact-number",
        "an argument whose decimal value changes when read (500.0000000000000001 reads as 500)",
        &[&g],
        sign_text(&PLANNER.seed, &header(TYP_HANDOFF, &PLANNER.kid()), &text),
        PAYLOAD,
        Some("malformed"),
    ));
    let claims = envelope_claims(&PLANNER, &EXECUTOR, &[&g]);
    out.push(case(
        "unsupported_algorithm-none",
        "header `alg` `none` (still carrying an Ed25519 signature)",
        &[&g],
        sign(
            &PLANNER.seed,
            &json!({"alg": "none", "typ": TYP_HANDOFF, "kid": PLANNER.kid()}),
            &claims,
        ),
        PAYLOAD,
        Some("unsupported_algorithm"),
    ));
    out.push(case(
        "wrong_type",
        "an envelope whose header says it is a delegation token",
        &[&g],
        sign(
            &PLANNER.seed,
            &header(TYP_DELEGATION, &PLANNER.kid()),
            &claims,
        ),
        PAYLOAD,
        Some("wrong_type"),
    ));
    out.push(case("forbidden_header-jku", "a header with `jku`", &[&g], sign(&PLANNER.seed, &json!({"alg": "EdDSA", "typ": TYP_HANDOFF, "kid": PLANNER.kid(), "jku": "https://evil.example/keys"}), &claims), PAYLOAD, Some("forbidden_header")));
    let mut c = envelope_claims(&OUTSIDER, &EXECUTOR, &[&g]);
    c["iss"] = json!(OUTSIDER.id);
    out.push(case(
        "unknown_key",
        "an envelope from an agent the trust bundle does not know",
        &[&g],
        envelope(&OUTSIDER, &c),
        PAYLOAD,
        Some("unknown_key"),
    ));
    let rogue = token(
        &PLANNER,
        &token_claims(
            "vec-rogue-root-00001",
            &PLANNER,
            &EXECUTOR,
            None,
            grant_caps(),
            0,
        ),
    );
    let c = envelope_claims(&EXECUTOR, &PAYMENTS, &[&rogue]);
    let mut untrusted = case(
        "untrusted_root",
        "a root token minted by an agent that is not an authority",
        &[&rogue],
        envelope(&EXECUTOR, &c),
        PAYLOAD,
        Some("untrusted_root"),
    );
    untrusted.me = &PAYMENTS;
    out.push(untrusted);
    out.push(case(
        "bad_signature",
        "the planner's envelope signed with mallory's key",
        &[&g],
        sign(&MALLORY.seed, &header(TYP_HANDOFF, &PLANNER.kid()), &claims),
        PAYLOAD,
        Some("bad_signature"),
    ));
    out.push(case(
        "not_yet_valid",
        "an envelope issued 60 s in the future",
        &[&g],
        std_env(&|c| {
            c["iat"] = json!(NOW + 60);
            c["exp"] = json!(NOW + 120);
        }),
        PAYLOAD,
        Some("not_yet_valid"),
    ));
    out.push(case(
        "expired",
        "an envelope that expired 100 s ago",
        &[&g],
        std_env(&|c| {
            c["iat"] = json!(NOW - 200);
            c["exp"] = json!(NOW - 100);
        }),
        PAYLOAD,
        Some("expired"),
    ));
    out.push(case(
        "ttl_too_long",
        "an envelope living 121 s (the maximum is 120 s)",
        &[&g],
        std_env(&|c| {
            c["iat"] = json!(NOW - 1);
            c["exp"] = json!(NOW + 120);
        }),
        PAYLOAD,
        Some("ttl_too_long"),
    ));
    out.push(case(
        "wrong_audience",
        "an envelope addressed to the payments tool, shown to the executor",
        &[&g],
        std_env(&|c| c["aud"] = json!(PAYMENTS.id)),
        PAYLOAD,
        Some("wrong_audience"),
    ));
    let mut too_long = case(
        "chain_too_long",
        "a two-link chain at a verifier that allows one link",
        &[&g, &s],
        envelope(&PLANNER, &deleg),
        PAYLOAD,
        Some("chain_too_long"),
    );
    too_long.config = json!({"max_chain_len": 1});
    out.push(too_long);
    let mut broken = token_claims(
        "vec-broken-00000001",
        &PLANNER,
        &EXECUTOR,
        Some(&g),
        json!([{"action": "tickets.read", "resource": "project/alpha/*"}]),
        1,
    );
    broken["parent"] = json!(token_hash("another token"));
    let broken = token(&PLANNER, &broken);
    out.push(case(
        "broken_chain",
        "a child whose `parent` is not the hash of the previous link",
        &[&g, &broken],
        envelope(
            &PLANNER,
            &envelope_claims(&PLANNER, &EXECUTOR, &[&g, &broken]),
        ),
        PAYLOAD,
        Some("broken_chain"),
    ));
    let g0 = token(
        &ORCH,
        &token_claims(
            "vec-grant-depth0-001",
            &ORCH,
            &PLANNER,
            None,
            grant_caps(),
            0,
        ),
    );
    let c0 = token(
        &PLANNER,
        &token_claims(
            "vec-child-depth0-001",
            &PLANNER,
            &EXECUTOR,
            Some(&g0),
            json!([{"action": "tickets.read", "resource": "project/alpha/*"}]),
            0,
        ),
    );
    out.push(case(
        "delegation_forbidden",
        "a delegate with depth 0 delegates anyway",
        &[&g0, &c0],
        envelope(&PLANNER, &envelope_claims(&PLANNER, &EXECUTOR, &[&g0, &c0])),
        PAYLOAD,
        Some("delegation_forbidden"),
    ));
    let wide = token(
        &PLANNER,
        &token_claims(
            "vec-escalate-0000001",
            &PLANNER,
            &EXECUTOR,
            Some(&g),
            json!([{"action": "tickets.read", "resource": "project/*"}]),
            1,
        ),
    );
    out.push(case(
        "escalation",
        "a child that widens `project/alpha/*` to `project/*`",
        &[&g, &wide],
        envelope(
            &PLANNER,
            &envelope_claims(&PLANNER, &EXECUTOR, &[&g, &wide]),
        ),
        PAYLOAD,
        Some("escalation"),
    ));
    out.push(case(
        "task_mismatch",
        "an envelope for another task than its chain",
        &[&g],
        std_env(&|c| c["task"] = json!("task-43")),
        PAYLOAD,
        Some("task_mismatch"),
    ));
    let mut stolen = envelope_claims(&MALLORY, &EXECUTOR, &[&g]);
    stolen["iss"] = json!(MALLORY.id);
    out.push(case(
        "sender_mismatch",
        "mallory uses a chain granted to the planner",
        &[&g],
        envelope(&MALLORY, &stolen),
        PAYLOAD,
        Some("sender_mismatch"),
    ));
    out.push(case(
        "intent_not_granted",
        "an intent on a resource outside the grant",
        &[&g],
        std_env(&|c| c["intent"]["resource"] = json!("project/beta/1")),
        PAYLOAD,
        Some("intent_not_granted"),
    ));
    out.push(case(
        "payload_mismatch",
        "the payload beside the envelope is not the one it was sealed over",
        &[&g],
        request.clone(),
        br#"{"ticket":124}"#,
        Some("payload_mismatch"),
    ));
    let mut revoked = case(
        "revoked",
        "the root token is revoked",
        &[&g],
        request.clone(),
        PAYLOAD,
        Some("revoked"),
    );
    revoked.config = json!({"revocations": {"tokens": ["vec-grant-000000001"]}});
    out.push(revoked);
    let mut replay = case(
        "replayed",
        "the same envelope twice at one verifier: allowed, then replayed",
        &[&g],
        request.clone(),
        PAYLOAD,
        None,
    );
    replay
        .steps
        .push((request, PAYLOAD.to_vec(), Some("replayed")));
    out.push(replay);
    out.extend(constraint_cases());
    out.extend(semantic_cases());
    out
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(&canonical(v)).unwrap_or_default();
    s.push('\n');
    s
}

/// Every vector file: (file name, contents).
pub(crate) fn generate() -> Vec<(String, String)> {
    let agents = [&ORCH, &PLANNER, &EXECUTOR, &PAYMENTS, &MALLORY, &OUTSIDER];
    let keys = json!({
        "format": FORMAT,
        "about": "Agents of the vectors: Ed25519 seeds (RFC 8032 private keys, hex), public JWKs and kids. The outsider is not in the trust bundle.",
        "agents": agents.iter().map(|a| {
            let identity = a.identity();
            json!({"id": a.id, "seed_hex": hex(&a.seed), "public_jwk": identity.key().to_jwk(), "kid": a.kid()})
        }).collect::<Vec<_>>(),
    });
    let mut bundle = TrustBundle::new(DOMAIN).unwrap_or_else(|e| panic!("{e}"));
    bundle
        .add_authority(&ORCH.identity().public())
        .unwrap_or_else(|e| panic!("{e}"));
    for a in [&PLANNER, &EXECUTOR, &PAYMENTS, &MALLORY] {
        bundle
            .add_agent(&a.identity().public())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let bundle: Value = serde_json::from_str(&bundle.to_json()).unwrap_or_default();
    let mut files = vec![
        ("keys.json".to_owned(), pretty(&keys)),
        ("trust-bundle.json".to_owned(), pretty(&bundle)),
    ];
    for c in cases() {
        let mut verifier = json!({
            "me": c.me.id, "now": NOW, "trust_bundle": "trust-bundle.json",
            "leeway_secs": 5, "max_envelope_ttl_secs": 120, "max_token_ttl_secs": 3600,
            "max_chain_len": 8, "revocations": null,
        });
        if let Value::Object(over) = &c.config {
            for (k, v) in over {
                verifier[k] = v.clone();
            }
        }
        let steps: Vec<Value> = c
            .steps
            .iter()
            .map(|(env, payload, reason)| {
                json!({
                    "envelope": env,
                    "payload_b64": b64(payload),
                    "expected": match reason {
                        None => json!({"decision": "allow"}),
                        Some(r) => json!({"decision": "deny", "reason": r}),
                    },
                })
            })
            .collect();
        let v = json!({
            "format": FORMAT, "name": c.name, "description": c.description,
            "verifier": verifier, "tokens": c.tokens, "steps": steps,
        });
        files.push((format!("{}.json", c.name), pretty(&v)));
    }
    files
}

#[allow(dead_code)]
fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tests/vectors".to_owned());
    std::fs::create_dir_all(&dir)?;
    for (name, text) in generate() {
        std::fs::write(std::path::Path::new(&dir).join(&name), text)?;
    }
    println!("wrote {} vector files to {dir}", generate().len());
    Ok(())
}
