//! The `handoff` binary, run for real (SPEC section 9): keygen → issue → delegate → seal →
//! verify, every exit status, the standard-input stream with a replay, bad files, `inspect`,
//! `audit verify`, and a cross-check of an issued token under the `jsonwebtoken` crate.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{json, Value};

/// 2027-01-15T08:00:00Z: the issue time of every deterministic token here.
const T0: u64 = 1_800_000_000;
const ORCH: &str = "spiffe://acme.example/orchestrator";
const PLANNER: &str = "spiffe://acme.example/agents/planner";
const EXECUTOR: &str = "spiffe://acme.example/agents/executor";

/// A scratch directory with three agents' keys and a trust bundle naming them.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        for id in [ORCH, PLANNER, EXECUTOR] {
            env.run(&["keygen", "--id", id, "--out", "keys"]).success();
        }
        let jwk = |name: &str| env.json(&format!("keys/{name}.jwk.json"));
        let bundle = json!({
            "trust_domain": "acme.example",
            "authorities": [ORCH],
            "agents": {
                ORCH: [jwk("orchestrator")],
                PLANNER: [jwk("planner")],
                EXECUTOR: [jwk("executor")],
            }
        });
        env.write("bundle.json", &bundle.to_string());
        env.write("body.json", "{\"ticket\":123}");
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    fn json(&self, name: &str) -> Value {
        serde_json::from_str(&self.read(name)).unwrap()
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_handoff"));
        cmd.current_dir(self.dir.path());
        cmd
    }

    fn run(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        self.cmd().args(args).assert()
    }

    /// Runs a command that must succeed and returns its standard output, trimmed.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).success().get_output().stdout.clone();
        String::from_utf8(out).unwrap().trim().to_owned()
    }

    /// A root token orchestrator → planner at `T0`, saved as `root.jwt`.
    fn root(&self) -> String {
        let t = self.ok(&[
            "issue",
            "--key",
            "keys/orchestrator.key.pem",
            "--iss",
            ORCH,
            "--sub",
            PLANNER,
            "--sub-key",
            "bundle.json",
            "--task",
            "task-42",
            "--cap",
            "tickets.*=project/alpha/*",
            "--cap",
            "payments.execute=account/ops/*;amount<=500",
            "--depth",
            "1",
            "--now",
            &T0.to_string(),
        ]);
        self.write("root.jwt", &t);
        t
    }

    /// A child token planner → executor at `T0 + 10`, saved as `child.jwt`.
    fn child(&self) -> String {
        let t = self.ok(&[
            "delegate",
            "--key",
            "keys/planner.key.pem",
            "--parent",
            "@root.jwt",
            "--sub",
            EXECUTOR,
            "--sub-key",
            "keys/executor.jwk.json",
            "--cap",
            "tickets.read=project/alpha/*",
            "--now",
            &(T0 + 10).to_string(),
        ]);
        self.write("child.jwt", &t);
        t
    }

    /// An envelope planner → executor at `T0 + 20` with extra arguments.
    fn seal(&self, action: &str, resource: &str, chain: &[&str], extra: &[&str]) -> String {
        let now = (T0 + 20).to_string();
        let mut args = vec![
            "seal",
            "--key",
            "keys/planner.key.pem",
            "--iss",
            PLANNER,
            "--aud",
            EXECUTOR,
            "--task",
            "task-42",
            "--action",
            action,
            "--resource",
            resource,
            "--now",
            &now,
        ];
        args.extend_from_slice(extra);
        args.push("--chain");
        args.extend_from_slice(chain);
        self.ok(&args)
    }

    /// `handoff verify` as the executor at `at`, plus extra arguments.
    fn verify(&self, at: u64, extra: &[&str]) -> assert_cmd::assert::Assert {
        let now = at.to_string();
        let mut args = vec![
            "verify",
            "--trust",
            "bundle.json",
            "--me",
            EXECUTOR,
            "--now",
            &now,
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }
}

fn stdout_json_lines(assert: &assert_cmd::assert::Assert) -> Vec<Value> {
    String::from_utf8(assert.get_output().stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn stderr(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(assert.get_output().stderr.clone()).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn keygen_writes_a_0600_pkcs8_key_and_a_jwk_and_never_overwrites() {
    let env = Env::new();
    assert_eq!(mode(&env.path("keys/planner.key.pem")), 0o600);
    assert!(env
        .read("keys/planner.key.pem")
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    let jwk = env.json("keys/planner.jwk.json");
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");

    // Output names the id and kid; a second run refuses to overwrite (exit 2).
    let out = env.ok(&[
        "keygen",
        "--id",
        "spiffe://acme.example/agents/new",
        "--out",
        "k2",
    ]);
    let kid = env.json("k2/new.jwk.json")["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(out.contains("spiffe://acme.example/agents/new"), "{out}");
    assert!(out.contains(&kid), "{out}");
    let before = env.read("keys/planner.key.pem");
    let a = env
        .run(&["keygen", "--id", PLANNER, "--out", "keys"])
        .code(2);
    assert!(stderr(&a).contains("already exists"), "{}", stderr(&a));
    assert_eq!(env.read("keys/planner.key.pem"), before);
}

#[test]
fn full_round_trip_request_and_delegation() {
    let env = Env::new();
    let root = env.root();
    let child = env.child();

    // Request: the chain ends at the planner, who asks on its own authority.
    let request = env.seal(
        "tickets.read",
        "project/alpha/123",
        &["@root.jwt"],
        &[
            "--arg",
            "priority=2",
            "--arg",
            "note=urgent",
            "--payload",
            "body.json",
        ],
    );
    env.write("request.jwt", &request);
    let a = env
        .verify(T0 + 30, &["--payload", "body.json", "@request.jwt"])
        .code(0);
    let d = &stdout_json_lines(&a)[0];
    assert_eq!(d["decision"], "allow");
    assert_eq!(d["sender"], PLANNER);
    assert_eq!(d["recipient"], EXECUTOR);
    assert_eq!(d["task"], "task-42");
    assert_eq!(d["mode"], "request");
    assert_eq!(d["intent"]["args"]["priority"], 2);
    assert_eq!(d["intent"]["args"]["note"], "urgent");
    assert_eq!(d["policy"], "chain-scope");
    assert_eq!(d["expires_at"], T0 + 20 + 60);
    let root_jti = json_of_inspect(&env, &root)["claims"]["jti"].clone();
    assert_eq!(d["chain"], json!([root_jti]));

    // Delegation: the last link hands the executor a narrower grant.
    let delegation = env.seal(
        "tickets.read",
        "project/alpha/7",
        &["@root.jwt", &child],
        &[],
    );
    let a = env.verify(T0 + 30, &[&delegation]).code(0);
    let d = &stdout_json_lines(&a)[0];
    assert_eq!(d["decision"], "allow");
    assert_eq!(d["mode"], "delegation");
    assert_eq!(d["chain"].as_array().unwrap().len(), 2);
    assert_eq!(
        d["scope"],
        json!([{"action": "tickets.read", "resource": "project/alpha/*"}])
    );
}

fn json_of_inspect(env: &Env, input: &str) -> Value {
    serde_json::from_str(&env.ok(&["inspect", "--now", &(T0 + 100).to_string(), input])).unwrap()
}

#[test]
fn denials_exit_1_with_the_reason_code() {
    let env = Env::new();
    env.root();
    let e = env.seal("tickets.read", "project/alpha/1", &["@root.jwt"], &[]);
    env.write("e.jwt", &e);

    let deny = |at: u64, extra: &[&str], reason: &str| {
        let a = env.verify(at, extra).code(1);
        let d = &stdout_json_lines(&a)[0];
        assert_eq!(d["decision"], "deny", "{d}");
        assert_eq!(d["reason"], reason, "{d}");
        d.clone()
    };
    // Expired: --now reproduces a decision after the envelope's 60 s life (+5 s leeway).
    let d = deny(T0 + 20 + 66, &["@e.jwt"], "expired");
    assert_eq!(d["location"], "envelope");
    // --leeway widens the window: the same instant is allowed with 10 s.
    env.verify(T0 + 20 + 66, &["--leeway", "10", "@e.jwt"])
        .code(0);
    // The payload is bound by digest.
    deny(
        T0 + 30,
        &["--payload", "body.json", "@e.jwt"],
        "payload_mismatch",
    );
    // Revocations file: the task is revoked.
    env.write("revoked.json", r#"{"tasks":["task-42"]}"#);
    deny(
        T0 + 30,
        &["--revocations", "revoked.json", "@e.jwt"],
        "revoked",
    );
    // Addressed to someone else.
    let a = env
        .run(&[
            "verify",
            "--trust",
            "bundle.json",
            "--me",
            PLANNER,
            "--now",
            &(T0 + 30).to_string(),
            "@e.jwt",
        ])
        .code(1);
    assert_eq!(stdout_json_lines(&a)[0]["reason"], "wrong_audience");
    // Garbage on the command line is a malformed envelope: a decision, not a usage error.
    deny(T0 + 30, &["not-an-envelope"], "malformed");
}

#[test]
fn capability_limits_from_the_command_line_are_enforced() {
    let env = Env::new();
    env.root();
    let ok = env.seal(
        "payments.execute",
        "account/ops/42",
        &["@root.jwt"],
        &["--arg", "amount=400"],
    );
    let too_much = env.seal(
        "payments.execute",
        "account/ops/42",
        &["@root.jwt"],
        &["--arg", "amount=600"],
    );
    env.verify(T0 + 30, &[&ok]).code(0);
    let a = env.verify(T0 + 30, &[&too_much]).code(1);
    assert_eq!(stdout_json_lines(&a)[0]["reason"], "intent_not_granted");
}

#[test]
fn stdin_stream_shares_one_replay_cache() {
    let env = Env::new();
    env.root();
    let e1 = env.seal("tickets.read", "project/alpha/1", &["@root.jwt"], &[]);
    let e2 = env.seal("tickets.read", "project/alpha/2", &["@root.jwt"], &[]);

    // All different: exit 0, one decision a line; blank lines are skipped.
    let a = env
        .cmd()
        .args(["verify", "--trust", "bundle.json", "--me", EXECUTOR])
        .args(["--now", &(T0 + 30).to_string(), "-"])
        .write_stdin(format!("{e1}\n\n{e2}\n"))
        .assert()
        .code(0);
    let lines = stdout_json_lines(&a);
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|d| d["decision"] == "allow"));

    // A replayed line is denied `replayed` by the same process; exit 1.
    let a = env
        .cmd()
        .args(["verify", "--trust", "bundle.json", "--me", EXECUTOR])
        .args(["--now", &(T0 + 30).to_string(), "-"])
        .write_stdin(format!("{e1}\n{e1}\n{e2}"))
        .assert()
        .code(1);
    let lines = stdout_json_lines(&a);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["decision"], "allow");
    assert_eq!(lines[1]["decision"], "deny");
    assert_eq!(lines[1]["reason"], "replayed");
    assert_eq!(lines[2]["decision"], "allow");
}

#[test]
fn an_overlong_stdin_line_is_denied_too_large_and_the_stream_goes_on() {
    let env = Env::new();
    env.root();
    let e1 = env.seal("tickets.read", "project/alpha/1", &["@root.jwt"], &[]);
    let huge = "a".repeat(200 * 1024);
    let a = env
        .cmd()
        .args(["verify", "--trust", "bundle.json", "--me", EXECUTOR])
        .args(["--now", &(T0 + 30).to_string(), "-"])
        .write_stdin(format!("{huge}\n{e1}\n"))
        .assert()
        .code(1);
    let lines = stdout_json_lines(&a);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["reason"], "too_large");
    assert_eq!(lines[1]["decision"], "allow");
}

/// Runs a command that must fail with a usage or I/O error, and returns its stderr.
fn usage_error(env: &Env, args: &[&str]) -> String {
    let a = env.run(args).code(2);
    assert!(a.get_output().stdout.is_empty());
    let err = stderr(&a);
    // No key material, ever: no line of any private key file appears in the message.
    for name in ["orchestrator", "planner", "executor"] {
        for line in env.read(&format!("keys/{name}.key.pem")).lines() {
            if !line.starts_with("-----") {
                assert!(!err.contains(line), "{err}");
            }
        }
    }
    err
}

fn issue_with_key(env: &Env, key: &str, sub_key: &str) -> String {
    usage_error(
        env,
        &[
            "issue",
            "--key",
            key,
            "--iss",
            ORCH,
            "--sub",
            PLANNER,
            "--sub-key",
            sub_key,
            "--task",
            "t",
            "--cap",
            "a=b",
        ],
    )
}

#[test]
fn bad_key_files_exit_2_naming_the_file_and_the_fix() {
    let env = Env::new();
    // Missing path.
    let err = issue_with_key(&env, "keys/nope.pem", "bundle.json");
    assert!(
        err.contains("--key") && err.contains("keys/nope.pem"),
        "{err}"
    );
    assert!(err.contains("check the path"), "{err}");

    // Not PEM (mode 0600, so the format check is what fails).
    env.write("notpem.pem", "hello\n");
    std::fs::set_permissions(
        env.path("notpem.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let err = issue_with_key(&env, "notpem.pem", "bundle.json");
    assert!(
        err.contains("notpem.pem") && err.contains("PKCS#8"),
        "{err}"
    );
    assert!(err.contains("handoff keygen"), "{err}");

    // A real key with mode 0644 is refused, and the key is not echoed.
    let pem = env.read("keys/orchestrator.key.pem");
    env.write("loose.pem", &pem);
    std::fs::set_permissions(
        env.path("loose.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let err = issue_with_key(&env, "loose.pem", "bundle.json");
    assert!(
        err.contains("0644") && err.contains("chmod 600 loose.pem"),
        "{err}"
    );
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!err.contains(&body));

    // The key of another agent than `--iss` cannot sign for it.
    let err = usage_error(
        &env,
        &[
            "delegate",
            "--key",
            "keys/executor.key.pem",
            "--parent",
            &env.root(),
            "--sub",
            EXECUTOR,
            "--sub-key",
            "bundle.json",
            "--cap",
            "tickets.read=x",
        ],
    );
    assert!(err.contains("only that identity can attenuate it"), "{err}");
}

#[test]
fn bad_bundles_and_sub_keys_exit_2() {
    let env = Env::new();
    // A bundle with a low-order (weak) key is refused when loaded, by verify and by issue.
    let mut bundle = env.json("bundle.json");
    bundle["agents"][EXECUTOR] = json!([{
        "kty": "OKP", "crv": "Ed25519", "x": "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    }]);
    env.write("weak.json", &bundle.to_string());
    let err = usage_error(
        &env,
        &["verify", "--trust", "weak.json", "--me", EXECUTOR, "x.y.z"],
    );
    assert!(
        err.contains("--trust") && err.contains("weak.json"),
        "{err}"
    );
    assert!(err.contains("small-order"), "{err}");
    let err = usage_error(
        &env,
        &[
            "issue",
            "--key",
            "keys/orchestrator.key.pem",
            "--iss",
            ORCH,
            "--sub",
            EXECUTOR,
            "--sub-key",
            "weak.json",
            "--task",
            "t",
            "--cap",
            "a=b",
        ],
    );
    assert!(
        err.contains("--sub-key") && err.contains("small-order"),
        "{err}"
    );

    // Missing bundle.
    let err = usage_error(
        &env,
        &["verify", "--trust", "nope.json", "--me", EXECUTOR, "x.y.z"],
    );
    assert!(
        err.contains("nope.json") && err.contains("check the path"),
        "{err}"
    );

    // A bundle with two keys for the subject: ask for a JWK file.
    env.run(&["keygen", "--id", EXECUTOR, "--out", "rotated"])
        .success();
    bundle["agents"][EXECUTOR] = json!([
        env.json("keys/executor.jwk.json"),
        env.json("rotated/executor.jwk.json")
    ]);
    env.write("two.json", &bundle.to_string());
    let err = usage_error(
        &env,
        &[
            "issue",
            "--key",
            "keys/orchestrator.key.pem",
            "--iss",
            ORCH,
            "--sub",
            EXECUTOR,
            "--sub-key",
            "two.json",
            "--task",
            "t",
            "--cap",
            "a=b",
        ],
    );
    assert!(err.contains("2 keys") && err.contains("JWK file"), "{err}");

    // A JWK whose kid is not its thumbprint.
    let mut jwk = env.json("keys/executor.jwk.json");
    jwk["kid"] = json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    env.write("badkid.json", &jwk.to_string());
    let err = issue_with_key(&env, "keys/orchestrator.key.pem", "badkid.json");
    assert!(
        err.contains("badkid.json") && err.contains("thumbprint"),
        "{err}"
    );
}

#[test]
fn other_usage_errors_exit_2() {
    let env = Env::new();
    env.root();
    let e = env.seal("tickets.read", "project/alpha/1", &["@root.jwt"], &[]);
    // clap: a missing required argument, and an id that does not parse.
    usage_error(&env, &["verify", "--trust", "bundle.json", &e]);
    let err = usage_error(
        &env,
        &["verify", "--trust", "bundle.json", "--me", "executor", &e],
    );
    assert!(err.contains("--me") && err.contains("spiffe://"), "{err}");
    let err = usage_error(&env, &["issue", "--cap", "no-equals-sign"]);
    assert!(err.contains("--cap"), "{err}");
    // A policy file that does not parse: exit 2, naming the flag, the file and the line.
    env.write(
        "policy.toml",
        "version = \"1\"\n[[rule]]\nname = \"x\"\neffect = \"maybe\"\n",
    );
    let err = usage_error(
        &env,
        &[
            "verify",
            "--trust",
            "bundle.json",
            "--me",
            EXECUTOR,
            "--policy",
            "policy.toml",
            &e,
        ],
    );
    assert!(
        err.contains("--policy") && err.contains("policy.toml") && err.contains("line 4"),
        "{err}"
    );
    // Leeway beyond 300 s.
    let err = usage_error(
        &env,
        &[
            "verify",
            "--trust",
            "bundle.json",
            "--me",
            EXECUTOR,
            "--leeway",
            "900",
            &e,
        ],
    );
    assert!(err.contains("--leeway"), "{err}");
    // A bare file name where an envelope was expected: suggest `@`.
    env.write("e.jwt", &e);
    let err = usage_error(
        &env,
        &[
            "verify",
            "--trust",
            "bundle.json",
            "--me",
            EXECUTOR,
            "e.jwt",
        ],
    );
    assert!(err.contains("@e.jwt"), "{err}");
    // A revocations file that does not parse.
    env.write("rev.json", r#"{"tokenz":[]}"#);
    let err = usage_error(
        &env,
        &[
            "verify",
            "--trust",
            "bundle.json",
            "--me",
            EXECUTOR,
            "--revocations",
            "rev.json",
            &e,
        ],
    );
    assert!(err.contains("rev.json"), "{err}");
    // An escalating delegation is refused before signing.
    let err = usage_error(
        &env,
        &[
            "delegate",
            "--key",
            "keys/planner.key.pem",
            "--parent",
            "@root.jwt",
            "--sub",
            EXECUTOR,
            "--sub-key",
            "bundle.json",
            "--cap",
            "tickets.write=project/beta/*",
        ],
    );
    assert!(err.contains("escalation"), "{err}");
    // The wrong task for the chain.
    let err = usage_error(
        &env,
        &[
            "seal",
            "--key",
            "keys/planner.key.pem",
            "--iss",
            PLANNER,
            "--aud",
            EXECUTOR,
            "--task",
            "other",
            "--action",
            "tickets.read",
            "--resource",
            "project/alpha/1",
            "--chain",
            "@root.jwt",
        ],
    );
    assert!(err.contains("task-42"), "{err}");
}

#[test]
fn inexact_numbers_and_non_canonical_resources_are_usage_errors() {
    let env = Env::new();
    env.root();
    let seal = |resource: &str, arg: &str| {
        usage_error(
            &env,
            &[
                "seal",
                "--key",
                "keys/planner.key.pem",
                "--iss",
                PLANNER,
                "--aud",
                EXECUTOR,
                "--task",
                "task-42",
                "--action",
                "tickets.read",
                "--resource",
                resource,
                "--arg",
                arg,
                "--chain",
                "@root.jwt",
            ],
        )
    };
    // SPEC 3: the CLI reads numbers from their text, so it sees what a JSON parser would round.
    for amount in [
        "500.0000000000000001",
        "499.99999999999999999",
        "0.10000000000000001",
    ] {
        let err = seal("project/alpha/1", &format!("amount={amount}"));
        assert!(err.contains("--arg") && err.contains("exactly"), "{err}");
    }
    for resource in [
        "project/alpha/../beta",
        "project/alpha/%2e%2e/beta",
        "project/alpha//x",
    ] {
        let err = seal(resource, "amount=1");
        assert!(err.contains("resource"), "{err}");
    }
    let err = usage_error(
        &env,
        &[
            "issue",
            "--cap",
            "payments.execute=account/ops/*;amount<=500.0000000000000001",
        ],
    );
    assert!(err.contains("--cap") && err.contains("exactly"), "{err}");
    let err = usage_error(&env, &["issue", "--cap", "tickets.read=project/al*"]);
    assert!(err.contains("--cap") && err.contains("resource"), "{err}");
}

#[test]
fn inspect_needs_no_keys_and_says_unverified() {
    let env = Env::new();
    let root = env.root();
    // The root expires at T0 + 900 (default 15 min).
    let t = json_of_inspect(&env, &root);
    assert_eq!(t["verified"], false);
    assert_eq!(t["kind"], "delegation token");
    assert_eq!(t["header"]["typ"], "agent-delegation+jwt");
    assert_eq!(t["claims"]["sub"], PLANNER);
    assert_eq!(t["times"]["exp"]["unix"], T0 + 900);
    assert_eq!(t["times"]["exp"]["rfc3339"], "2027-01-15T08:15:00Z");
    assert_eq!(t["times"]["exp"]["hint"], "valid for 800 s");
    let later = env.ok(&["inspect", "--now", &(T0 + 942).to_string(), "@root.jwt"]);
    let later: Value = serde_json::from_str(&later).unwrap();
    assert_eq!(later["times"]["exp"]["hint"], "expired 42 s ago");

    // An envelope from standard input, with its chain decoded.
    let e = env.seal("tickets.read", "project/alpha/1", &["@root.jwt"], &[]);
    let a = env
        .cmd()
        .args(["inspect", "--now", &(T0 + 30).to_string(), "-"])
        .write_stdin(e)
        .assert()
        .code(0);
    let v: Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(v["kind"], "handoff envelope");
    assert_eq!(v["verified"], false);
    assert_eq!(v["times"]["exp"]["hint"], "valid for 50 s");
    assert_eq!(v["chain"][0]["verified"], false);
    assert_eq!(v["chain"][0]["claims"]["iss"], ORCH);

    // Not a token at all: exit 2.
    let err = usage_error(&env, &["inspect", "hello"]);
    assert!(
        err.contains("<INPUT>") && err.contains("malformed"),
        "{err}"
    );
}

#[test]
fn audit_verify_names_the_first_bad_line() {
    let env = Env::new();
    env.root();
    let e1 = env.seal("tickets.read", "project/alpha/1", &["@root.jwt"], &[]);
    let e2 = env.seal("tickets.read", "project/alpha/2", &["@root.jwt"], &[]);
    env.cmd()
        .args([
            "verify",
            "--trust",
            "bundle.json",
            "--me",
            EXECUTOR,
            "--audit",
            "audit.jsonl",
        ])
        .args(["--now", &(T0 + 30).to_string(), "-"])
        .write_stdin(format!("{e1}\n{e1}\n{e2}\n"))
        .assert()
        .code(1);
    let a = env.run(&["audit", "verify", "audit.jsonl"]).code(0);
    let s = &stdout_json_lines(&a)[0];
    assert_eq!(s["intact"], true);
    assert_eq!(s["records"], 3);
    assert_eq!(s["signatures"], "none");

    // Turn the recorded denial of line 3 (after the header and the allow) into an allow:
    // line 4's `prev` no longer matches.
    let log = env.read("audit.jsonl");
    let mut lines: Vec<String> = log.lines().map(str::to_owned).collect();
    assert!(lines[0].contains("\"mode\":\"unsigned\""));
    assert!(lines[2].contains("\"replayed\""));
    lines[2] = lines[2].replace("\"deny\"", "\"allow\"");
    env.write("audit.jsonl", &(lines.join("\n") + "\n"));
    let a = env.run(&["audit", "verify", "audit.jsonl"]).code(1);
    let s = &stdout_json_lines(&a)[0];
    assert_eq!(s["intact"], false);
    assert_eq!(s["line"], 4);

    // `verify --audit` never continues a signed log unsigned.
    let signer = agent_handoff::AgentIdentity::generate(EXECUTOR.parse().unwrap());
    drop(
        agent_handoff::JsonlAudit::open_signed(
            env.path("signed.jsonl"),
            std::sync::Arc::new(signer),
        )
        .unwrap(),
    );
    let before = env.read("signed.jsonl");
    let err = usage_error(
        &env,
        &[
            "verify",
            "--trust",
            "bundle.json",
            "--me",
            EXECUTOR,
            "--audit",
            "signed.jsonl",
            &e2,
        ],
    );
    assert!(
        err.contains("is signed by") && err.contains("writes unsigned logs only"),
        "{err}"
    );
    assert_eq!(env.read("signed.jsonl"), before);

    usage_error(&env, &["audit", "verify", "missing.jsonl"]);
}

#[test]
fn audit_verify_checks_signatures_with_key() {
    use agent_handoff::{AgentIdentity, HandoffVerifier, JsonlAudit, TrustBundle, Verifier as _};
    let env = Env::new();
    let signer = AgentIdentity::generate(EXECUTOR.parse().unwrap());
    env.write(
        "signer.jwk.json",
        &serde_json::to_string(&signer.key().to_jwk()).unwrap(),
    );
    let other = AgentIdentity::generate(EXECUTOR.parse().unwrap());
    env.write(
        "other.jwk.json",
        &serde_json::to_string(&other.key().to_jwk()).unwrap(),
    );
    let me = signer.id().clone();
    let kid = signer.kid().to_string();
    let audit =
        JsonlAudit::open_signed(env.path("signed.jsonl"), std::sync::Arc::new(signer)).unwrap();
    let verifier = HandoffVerifier::builder(me, TrustBundle::new("acme.example").unwrap())
        .audit(audit)
        .build()
        .unwrap();
    for junk in ["not-an-envelope", "a.b.c"] {
        assert!(verifier
            .verify(junk, b"", &agent_handoff::RequestContext::new())
            .is_err());
    }
    drop(verifier);
    let a = env
        .run(&[
            "audit",
            "verify",
            "--key",
            "signer.jwk.json",
            "signed.jsonl",
        ])
        .code(0);
    let s = &stdout_json_lines(&a)[0];
    assert_eq!(s["intact"], true);
    assert_eq!(s["records"], 2);
    assert_eq!(s["signatures"], "verified");
    assert_eq!(s["kid"], kid);
    // Without the key a signed log is never reported plainly intact: exit 1, chain intact,
    // signatures not checked.
    let a = env.run(&["audit", "verify", "signed.jsonl"]).code(1);
    let s = &stdout_json_lines(&a)[0];
    assert_eq!(s["intact"], false);
    assert_eq!(s["chain_intact"], true);
    assert_eq!(s["signatures"], "not_checked");
    assert_eq!(s["kid"], kid);
    assert_eq!(s["records"], 2);
    assert!(s.get("line").is_none());
    assert!(s["problem"].as_str().unwrap().contains("--key"));
    // The wrong key: the header names another key.
    let a = env
        .run(&["audit", "verify", "--key", "other.jwk.json", "signed.jsonl"])
        .code(1);
    let s = &stdout_json_lines(&a)[0];
    assert_eq!(s["line"], 1);
    assert!(s["problem"].as_str().unwrap().contains("signed by key"));
    // An edit of the last line: invisible to the hash chain alone, caught by the signature.
    let log = env.read("signed.jsonl");
    let mut lines: Vec<String> = log.lines().map(str::to_owned).collect();
    lines[2] = lines[2].replace("\"malformed\"", "\"replayed\"");
    env.write("signed.jsonl", &(lines.join("\n") + "\n"));
    let a = env.run(&["audit", "verify", "signed.jsonl"]).code(1);
    assert_eq!(stdout_json_lines(&a)[0]["chain_intact"], true);
    let a = env
        .run(&[
            "audit",
            "verify",
            "--key",
            "signer.jwk.json",
            "signed.jsonl",
        ])
        .code(1);
    assert_eq!(stdout_json_lines(&a)[0]["line"], 3);
    usage_error(
        &env,
        &["audit", "verify", "--key", "missing.jwk", "signed.jsonl"],
    );
}

#[test]
fn verify_applies_a_rule_policy_with_context() {
    let env = Env::new();
    env.root();
    env.write(
        "policy.toml",
        r#"version = "cli-test-1"

[[rule]]
name = "reads-in-staging"
effect = "allow"
actions = ["tickets.read"]
context = { environment = "staging" }
"#,
    );
    let read = env.seal("tickets.read", "project/alpha/1", &["@root.jwt"], &[]);
    let write = env.seal("tickets.write", "project/alpha/1", &["@root.jwt"], &[]);
    let at = T0 + 30;
    let a = env
        .verify(
            at,
            &[
                "--policy",
                "policy.toml",
                "--context",
                "environment=staging",
                &read,
            ],
        )
        .code(0);
    let d = &stdout_json_lines(&a)[0];
    assert_eq!(d["decision"], "allow");
    assert_eq!(d["policy"], "reads-in-staging");
    // Another environment: no rule matches, default deny.
    let read2 = env.seal("tickets.read", "project/alpha/2", &["@root.jwt"], &[]);
    let a = env
        .verify(
            at,
            &[
                "--policy",
                "policy.toml",
                "--context",
                "environment=prod",
                &read2,
            ],
        )
        .code(1);
    let d = &stdout_json_lines(&a)[0];
    assert_eq!(d["reason"], "policy_denied");
    assert!(
        d["detail"].as_str().unwrap().contains("default-deny"),
        "{d}"
    );
    // An action the chain allows but the policy does not.
    let a = env
        .verify(
            at,
            &[
                "--policy",
                "policy.toml",
                "--context",
                "environment=staging",
                &write,
            ],
        )
        .code(1);
    assert_eq!(stdout_json_lines(&a)[0]["reason"], "policy_denied");
}

#[test]
fn policy_check_warns_about_rules_that_never_match_and_overlapping_tiers() {
    let env = Env::new();
    env.write(
        "warn.toml",
        r#"version = "w1"

[tiers.low]
actions = ["payments.quote"]

[[rule]]
name = "executor-anything"
effect = "allow"
senders = ["spiffe://acme.example/agents/*"]

[[rule]]
name = "executor-pays"
effect = "allow"
senders = ["spiffe://acme.example/agents/executor"]
actions = ["payments.execute"]

[[rule]]
name = "medium-only"
effect = "deny"
recipients = ["spiffe://acme.example/tools/payments"]
tiers = ["medium"]

[tiers.medium]
actions = ["tickets.close.bulk"]
"#,
    );
    let a = env.run(&["policy", "check", "warn.toml"]).code(0);
    let d = &stdout_json_lines(&a)[0];
    assert_eq!(d["valid"], true);
    let warnings: Vec<&str> = d["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    // `payments.quote` (line 4) carves an action out of the built-in `payments.*`.
    assert!(
        warnings[0].starts_with("line 4: tiers `low` and `high` overlap: `payments.quote`"),
        "{warnings:?}"
    );
    // `executor-pays` (its name on line 12) is shadowed by `executor-anything` (line 7).
    assert!(
        warnings[1].starts_with(
            "line 12: rule `executor-pays` can never match: the earlier rule `executor-anything` (line 7)"
        ),
        "{warnings:?}"
    );
    // `tickets.close.bulk` (line 24) is carved out of the built-in `tickets.close*`.
    assert!(
        warnings[2].starts_with("line 24: tiers `high` and `medium` overlap: `tickets.close.bulk`"),
        "{warnings:?}"
    );
    // The same, one a line on standard error, with the file.
    let err = stderr(&a);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    for (line, w) in lines.iter().zip(&warnings) {
        assert_eq!(*line, format!("warning: warn.toml: {w}"));
    }

    // A rule that names only a tier no action is ever in.
    env.write(
        "never.toml",
        "version = \"w2\"\n[[rule]]\nname = \"reads\"\neffect = \"allow\"\ntiers = [\"low\"]\n",
    );
    let a = env.run(&["policy", "check", "never.toml"]).code(0);
    let d = &stdout_json_lines(&a)[0];
    assert_eq!(d["warnings"].as_array().unwrap().len(), 1, "{d}");
    assert!(
        d["warnings"][0].as_str().unwrap().starts_with(
            "line 3: rule `reads` can never match: no action is ever in its tiers (`low`)"
        ),
        "{d}"
    );
}

#[test]
fn policy_check_validates_a_file_and_names_the_line() {
    let env = Env::new();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policies/policy.toml");
    let a = env.run(&["policy", "check", example]).code(0);
    let d = &stdout_json_lines(&a)[0];
    assert_eq!(d["valid"], true);
    assert_eq!(d["version"], "2027-01-15.1");
    // The example policy is clean.
    assert_eq!(d["warnings"], serde_json::json!([]));
    assert_eq!(stderr(&a), "");
    env.write(
        "bad.toml",
        "version = \"1\"\n[[rule]]\nname = \"x\"\neffect = \"maybe\"\n",
    );
    let a = env.run(&["policy", "check", "bad.toml"]).code(1);
    let d = &stdout_json_lines(&a)[0];
    assert_eq!(d["valid"], false);
    assert!(d["problem"].as_str().unwrap().starts_with("line 4:"), "{d}");
    let err = usage_error(&env, &["policy", "check", "missing.toml"]);
    assert!(
        err.contains("missing.toml") && err.contains("check the path"),
        "{err}"
    );
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    let env = Env::new();
    for sub in [
        vec!["keygen"],
        vec!["issue"],
        vec!["delegate"],
        vec!["seal"],
        vec!["verify"],
        vec!["inspect"],
        vec!["audit", "verify"],
        vec!["policy", "check"],
    ] {
        let mut args = sub.clone();
        args.push("--help");
        let out = env.ok(&args);
        assert!(out.contains("Example"), "{sub:?}: {out}");
        assert!(out.contains("handoff "), "{sub:?}: {out}");
    }
}

#[test]
fn an_issued_token_verifies_under_jsonwebtoken_eddsa() {
    use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
    let env = Env::new();
    // Issued now (system clock) so that `exp` is in the future for jsonwebtoken's own check.
    let token = env.ok(&[
        "issue",
        "--key",
        "keys/orchestrator.key.pem",
        "--iss",
        ORCH,
        "--sub",
        PLANNER,
        "--sub-key",
        "keys/planner.jwk.json",
        "--task",
        "task-42",
        "--cap",
        "tickets.*=project/alpha/*",
        "--ttl",
        "600",
    ]);
    let x = env.json("keys/orchestrator.jwk.json")["x"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = DecodingKey::from_ed_components(&x).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
    validation.set_issuer(&[ORCH]);
    validation.sub = Some(PLANNER.to_owned());
    validation.leeway = 0;
    let data = decode::<Value>(&token, &key, &validation).unwrap();
    assert_eq!(data.header.typ.as_deref(), Some("agent-delegation+jwt"));
    assert_eq!(
        data.header.kid.as_deref(),
        env.json("keys/orchestrator.jwk.json")["kid"].as_str()
    );
    assert_eq!(data.claims["task"], "task-42");
    assert_eq!(
        data.claims["cnf"]["jkt"],
        env.json("keys/planner.jwk.json")["kid"]
    );

    // The same check fails under another key, and on a flipped signature character.
    let other = env.json("keys/executor.jwk.json")["x"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong = DecodingKey::from_ed_components(&other).unwrap();
    assert!(decode::<Value>(&token, &wrong, &validation).is_err());
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'Q' } else { 'A' });
    assert!(decode::<Value>(&tampered, &key, &validation).is_err());
}

// ---- Files: regular files only, opened without blocking, each with its own cap. ----

/// A command that must end within ten seconds: a refusal of a FIFO must not wait for a writer.
fn bounded(env: &Env, args: &[&str]) -> assert_cmd::assert::Assert {
    env.cmd()
        .args(args)
        .timeout(std::time::Duration::from_secs(10))
        .assert()
}

fn mkfifo(path: &Path, mode: u32) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn issue_args<'a>(key: &'a str, sub_key: &'a str) -> Vec<&'a str> {
    vec![
        "issue",
        "--key",
        key,
        "--iss",
        ORCH,
        "--sub",
        PLANNER,
        "--sub-key",
        sub_key,
        "--task",
        "t",
        "--cap",
        "a=b",
    ]
}

#[test]
fn a_key_fifo_is_refused_at_once_with_or_without_a_writer() {
    let env = Env::new();
    mkfifo(&env.path("fifo.pem"), 0o600);
    let a = bounded(&env, &issue_args("fifo.pem", "bundle.json")).code(2);
    let err = stderr(&a);
    assert!(
        err.contains("--key")
            && err.contains("fifo.pem")
            && err.contains("FIFO (named pipe), not a regular file"),
        "{err}"
    );
    // With a writer offering 16 MiB, the FIFO is refused for what it is, not read.
    let mut writer = std::process::Command::new("sh")
        .args(["-c", "exec head -c 16777216 /dev/zero > \"$0\""])
        .arg(env.path("fifo.pem"))
        .spawn()
        .unwrap();
    let a = bounded(&env, &issue_args("fifo.pem", "bundle.json")).code(2);
    let _ = writer.kill();
    let _ = writer.wait();
    assert!(
        stderr(&a).contains("FIFO (named pipe), not a regular file"),
        "{}",
        stderr(&a)
    );
}

#[test]
fn key_symlinks_are_followed_and_their_target_checked() {
    let env = Env::new();
    std::os::unix::fs::symlink("keys/orchestrator.key.pem", env.path("link.pem")).unwrap();
    env.run(&issue_args("link.pem", "bundle.json")).success();
    std::fs::set_permissions(
        env.path("keys/orchestrator.key.pem"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let err = issue_with_key(&env, "link.pem", "bundle.json");
    assert!(err.contains("0640") && err.contains("chmod 600"), "{err}");
}

#[test]
fn every_file_the_cli_reads_must_be_a_regular_file() {
    let env = Env::new();
    let root = env.root();
    let e = env.seal("tickets.read", "project/alpha/1", &[&root], &[]);
    env.write("e.jwt", &e);
    mkfifo(&env.path("fifo"), 0o644);
    std::fs::create_dir(env.path("dir")).unwrap();
    let now = (T0 + 30).to_string();
    let verify = |extra: &[&str], envelope: &str| {
        let mut args = vec!["verify", "--me", EXECUTOR, "--now", &now];
        args.extend_from_slice(extra);
        args.push(envelope);
        args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("--trust", verify(&["--trust", "fifo"], "@e.jwt")),
        (
            "--policy",
            verify(&["--trust", "bundle.json", "--policy", "fifo"], "@e.jwt"),
        ),
        (
            "--revocations",
            verify(
                &["--trust", "bundle.json", "--revocations", "fifo"],
                "@e.jwt",
            ),
        ),
        (
            "--payload",
            verify(&["--trust", "bundle.json", "--payload", "dir"], "@e.jwt"),
        ),
        ("<ENVELOPE>", verify(&["--trust", "bundle.json"], "@fifo")),
        (
            "--audit",
            verify(&["--trust", "bundle.json", "--audit", "fifo"], "@e.jwt"),
        ),
        (
            "--sub-key",
            issue_args("keys/orchestrator.key.pem", "fifo")
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        ),
        ("<INPUT>", vec!["inspect".to_owned(), "@fifo".to_owned()]),
        (
            "<FILE.JSONL>",
            vec!["audit".to_owned(), "verify".to_owned(), "fifo".to_owned()],
        ),
        (
            "--key",
            vec![
                "audit".to_owned(),
                "verify".to_owned(),
                "bundle.json".to_owned(),
                "--key".to_owned(),
                "fifo".to_owned(),
            ],
        ),
    ];
    for (arg, args) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let a = bounded(&env, &args).code(2);
        let err = stderr(&a);
        assert!(
            err.contains(arg) && err.contains("not a regular file"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn cli_files_have_stated_caps() {
    let env = Env::new();
    let root = env.root();
    // A payload one byte over 64 MiB (sparse, so cheap) is refused before it is read.
    let big = std::fs::File::create(env.path("big.bin")).unwrap();
    big.set_len(64 * 1024 * 1024 + 1).unwrap();
    let err = usage_error(
        &env,
        &[
            "seal",
            "--key",
            "keys/planner.key.pem",
            "--iss",
            PLANNER,
            "--aud",
            EXECUTOR,
            "--task",
            "task-42",
            "--action",
            "tickets.read",
            "--resource",
            "project/alpha/1",
            "--payload",
            "big.bin",
            "--chain",
            &root,
        ],
    );
    assert!(
        err.contains("--payload") && err.contains("larger than 67108864 bytes"),
        "{err}"
    );
    // An `@file` token or envelope: the envelope limit plus a newline.
    let over = "a".repeat(64 * 1024 + 3);
    env.write("over.jwt", &over);
    let err = usage_error(&env, &["inspect", "@over.jwt"]);
    assert!(err.contains("larger than 65538 bytes"), "{err}");
    env.write("at.jwt", &over[..64 * 1024 + 2]);
    let err = usage_error(&env, &["inspect", "@at.jwt"]);
    assert!(!err.contains("larger than"), "{err}");
}

// ---- Text from inputs is shown escaped on standard error and in JSON output. ----

/// The issue's member name: a terminal title escape and a forged log line.
const OWNED: &str = "\u{1b}]0;owned\u{7}\nFAKE LINE";
const OWNED_SHOWN: &str = "\\u{1b}]0;owned\\u{7}\\u{a}FAKE LINE";
/// The other classes: DEL, C1 (NEL), bidi override, line and paragraph separators, BOM.
const UNICODE: &str = "\u{7f}\u{85}\u{202e}\u{2028}\u{2029}\u{feff}";
const UNICODE_SHOWN: &str = "\\u{7f}\\u{85}\\u{202e}\\u{2028}\\u{2029}\\u{feff}";
const RAW: [char; 9] = [
    '\u{1b}', '\u{7}', '\u{7f}', '\u{85}', '\u{202e}', '\u{2028}', '\u{2029}', '\u{feff}', '\r',
];

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn b64_json(part: &str) -> Value {
    use base64::Engine as _;
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

/// A compact JWS of `header` and `claims` with an all-zero signature.
fn hand_made(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(&[0u8; 64])
    )
}

fn header(typ: &str, extra: Option<&str>) -> Value {
    let mut h = json!({
        "alg": "EdDSA",
        "typ": typ,
        "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
    });
    if let Some(name) = extra {
        h[name] = json!(1);
    }
    h
}

/// Raw bytes of `out` hold none of the characters that must be escaped, and one line only
/// where one is expected.
fn assert_no_raw(what: &str, out: &[u8]) {
    let text = String::from_utf8(out.to_vec()).unwrap();
    for c in RAW {
        assert!(!text.contains(c), "{what} shows {c:?} raw: {text:?}");
    }
    assert!(
        !text.contains("\nFAKE LINE"),
        "{what} forged a line: {text:?}"
    );
}

#[test]
fn inspect_shows_an_unknown_claim_name_escaped_on_stderr() {
    let env = Env::new();
    // The issue's token: a claims member named "\u001b]0;owned\u0007\nFAKE LINE".
    let token = hand_made(&header("agent-delegation+jwt", None), &json!({ OWNED: 1 }));
    let a = env.run(&["inspect", &token]).code(2);
    let out = a.get_output();
    assert_no_raw("inspect's stderr", &out.stderr);
    let err = stderr(&a);
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.contains(OWNED_SHOWN), "{err}");
    // The other classes, in a forbidden header member name.
    let name = format!("x{UNICODE}");
    let token = hand_made(&header("agent-delegation+jwt", Some(&name)), &json!({}));
    let a = env.run(&["inspect", &token]).code(2);
    assert_no_raw("inspect's stderr", &a.get_output().stderr);
    assert!(stderr(&a).contains(UNICODE_SHOWN), "{}", stderr(&a));
}

#[test]
fn inspect_json_escapes_bidi_and_separators_in_decoded_claims() {
    let env = Env::new();
    let root = env.root();
    let parts: Vec<&str> = root.split('.').collect();
    let mut claims = b64_json(parts[1]);
    claims["ext"] = json!({ format!("k{UNICODE}{OWNED}"): format!("v{UNICODE}{OWNED}") });
    let token = hand_made(&b64_json(parts[0]), &claims);
    let a = env.run(&["inspect", &token]).code(0);
    let out = &a.get_output().stdout;
    assert_no_raw("inspect's JSON", out);
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(
        text.contains(
            "\\u007f\\u0085\\u202e\\u2028\\u2029\\ufeff\\u001b]0;owned\\u0007\\nFAKE LINE"
        ),
        "{text}"
    );
    // Still the same JSON once parsed.
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["claims"]["ext"], claims["ext"]);
}

#[test]
fn verify_shows_text_from_inputs_escaped_on_stdout_and_stderr() {
    let env = Env::new();
    // A denial's detail quotes the forbidden header member name: escaped in the JSON line.
    let name = format!("{OWNED}{UNICODE}");
    let envelope = hand_made(&header("agent-handoff+jwt", Some(&name)), &json!({}));
    let a = env.verify(T0, &[&envelope]).code(1);
    let out = &a.get_output().stdout;
    assert_no_raw("verify's JSON", out);
    let lines = stdout_json_lines(&a);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["reason"], "forbidden_header");
    let detail = lines[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(OWNED_SHOWN) && detail.contains(UNICODE_SHOWN),
        "{detail}"
    );
    // A file name on standard error.
    let file = format!("bundle{OWNED}{UNICODE}.json");
    let a = env
        .run(&["verify", "--trust", &file, "--me", EXECUTOR, &envelope])
        .code(2);
    assert_no_raw("verify's stderr", &a.get_output().stderr);
    let err = stderr(&a);
    assert!(
        err.contains(OWNED_SHOWN) && err.contains(UNICODE_SHOWN),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err:?}");
}

#[test]
fn clap_usage_errors_show_the_offending_value_escaped() {
    let env = Env::new();
    let evil = "\u{1b}]0;owned\u{7}\nFAKE LINE\u{202e}";
    let err = usage_error(&env, &["verify", "--me", PLANNER, "--leeway", evil, "-"]);
    for raw in ['\u{1b}', '\u{7}', '\u{202e}'] {
        assert!(!err.contains(raw), "{err:?}");
    }
    assert!(!err.lines().any(|l| l.starts_with("FAKE LINE")), "{err:?}");
    assert!(
        err.contains("\\u{1b}]0;owned\\u{7}\\u{a}FAKE LINE\\u{202e}"),
        "{err:?}"
    );
}
