//! The main job, narrated: an orchestrator grants a planner a task, the planner asks an executor
//! for work and delegates part of its authority, the executor pays through a payments tool, and
//! then a series of attacks and mistakes are each refused with a stable reason code. Every
//! decision lands in a hash-chained audit log, printed at the end.
//!
//! Run it with `cargo run --example quickstart`.

// The one exception to Cargo.toml's lint contract in this example: demonstration code that
// indexes JSON values it has just built (a failure is a bug in the example, shown at once).
#![allow(clippy::indexing_slicing)]

use std::error::Error as StdError;
use std::time::Duration;

use agent_handoff::{
    audit::verify_audit_log, clock::Clock, clock::FixedClock, AgentIdentity, Capability,
    DelegationToken, HandoffEnvelope, HandoffVerifier, JsonlAudit, MemoryRevocations, Rejection,
    RequestContext, TrustBundle, UnixTime, VerifiedHandoff, Verifier,
};

type Result<T> = std::result::Result<T, Box<dyn StdError>>;

fn step(title: &str) {
    println!("\n== {title}");
}

fn show(what: &str, outcome: &std::result::Result<VerifiedHandoff, Rejection>) {
    match outcome {
        Ok(h) => println!(
            "   ALLOW  {what}\n          sender {} ({}), intent {}, chain {} link(s), policy `{}`",
            h.sender(),
            h.mode().as_str(),
            h.intent(),
            h.chain().len(),
            h.policy_rule()
        ),
        Err(r) => println!(
            "   DENY   {what}\n          reason `{}`: {}",
            r.reason(),
            r.detail()
        ),
    }
}

fn main() -> Result<()> {
    println!("agent-handoff quickstart: every handoff is a checked trust boundary.");

    // ------------------------------------------------------------------ identities
    step("1. Five agents, each with its own Ed25519 identity (the intern is not trusted with payments)");
    let orchestrator = AgentIdentity::generate("spiffe://acme.example/orchestrator".parse()?);
    let planner = AgentIdentity::generate("spiffe://acme.example/agents/planner".parse()?);
    let executor = AgentIdentity::generate("spiffe://acme.example/agents/executor".parse()?);
    let payments = AgentIdentity::generate("spiffe://acme.example/tools/payments".parse()?);
    let intern = AgentIdentity::generate("spiffe://acme.example/agents/intern".parse()?);
    for a in [&orchestrator, &planner, &executor, &payments, &intern] {
        println!("   {:<45} kid {}", a.id().as_str(), a.kid());
    }

    // Everyone trusts the same bundle: the orchestrator is the only authority.
    let mut bundle = TrustBundle::new("acme.example")?;
    bundle.add_authority(&orchestrator.public())?;
    for a in [&planner, &executor, &payments, &intern] {
        bundle.add_agent(&a.public())?;
    }

    // One clock for the whole story, so we can fast-forward it later.
    let clock = FixedClock::new(UnixTime::now());
    let revocations = MemoryRevocations::new();
    let dir = std::env::temp_dir().join(format!("agent-handoff-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let verifier_for = |me: &AgentIdentity, log: &str| -> Result<HandoffVerifier> {
        Ok(HandoffVerifier::builder(me.id().clone(), bundle.clone())
            .clock(clock.clone())
            .revocations(revocations.clone())
            .audit(JsonlAudit::open(dir.join(log))?)
            .build()?)
    };
    let at_executor = verifier_for(&executor, "executor.audit.jsonl")?;
    let at_payments = verifier_for(&payments, "payments.audit.jsonl")?;
    let ctx = RequestContext::new().with("environment", "staging");

    // ------------------------------------------------------------------ the grant
    step("2. The orchestrator grants the planner task-42, just in time (10 minutes)");
    let grant = DelegationToken::root(&orchestrator)
        .delegate_to(&planner.public())
        .task("task-42".parse()?)
        .allow("tickets.*", "project/alpha/*")?
        .grant(Capability::new("payments.execute", "account/ops/*")?.max("amount", 500)?)
        .depth(1)
        .ttl(Duration::from_secs(600))
        .issued_at(clock.now())
        // A TaskGrant: completing the task (or dropping the handle) revokes every token of it.
        .sign_task_with_clock(revocations.clone(), clock.clone())?;
    println!(
        "   grant {}: tickets.* on project/alpha/*, payments up to 500, may delegate once",
        grant.id()
    );

    // ------------------------------------------------------------------ a request
    step("3. A request: the planner asks the executor to read a ticket, on its own authority");
    let body = br#"{"ticket":"ALPHA-123"}"#;
    let read = HandoffEnvelope::builder(&planner)
        .to(executor.id())
        .intent("tickets.read", "project/alpha/ALPHA-123")?
        .payload(body)
        .chain([grant.token()])
        .issued_at(clock.now())
        .seal()?;
    let outcome = at_executor.verify(read.as_str(), body, &ctx);
    show("planner -> executor: tickets.read", &outcome);
    if let Ok(h) = &outcome {
        println!(
            "          the executor gains no authority from a request: delegated chain = {:?}",
            h.delegated_chain().map(<[DelegationToken]>::len)
        );
    }

    // ------------------------------------------------------------------ a delegation
    step("4. A delegation: the planner hands the executor a narrower grant (payments up to 100)");
    let sub = grant
        .attenuate(&planner)
        .delegate_to(&executor.public())
        .allow("tickets.read", "project/alpha/*")?
        .grant(Capability::new("payments.execute", "account/ops/*")?.max("amount", 100)?)
        .depth(0)
        .issued_at(clock.now())
        .sign()?;
    let job = br#"{"refund":"ALPHA-123"}"#;
    let delegation = HandoffEnvelope::builder(&planner)
        .to(executor.id())
        .intent("payments.execute", "account/ops/refunds")?
        .arg("amount", 80)
        .payload(job)
        .chain([grant.token(), &sub])
        .issued_at(clock.now())
        .seal()?;
    let outcome = at_executor.verify(delegation.as_str(), job, &ctx);
    show("planner -> executor: delegate refunds up to 100", &outcome);
    let held: Vec<DelegationToken> = outcome
        .map_err(|r| format!("the delegation should have been accepted: {r}"))?
        .delegated_chain()
        .map(<[DelegationToken]>::to_vec)
        .unwrap_or_default();

    step("5. The executor pays 80 through the payments tool, with the chain it now holds");
    let pay_body = br#"{"amount":80,"to":"customer-991"}"#;
    let pay = |amount: i64, body: &[u8]| {
        HandoffEnvelope::builder(&executor)
            .to(payments.id())
            .intent("payments.execute", "account/ops/refunds")
            .map(|b| {
                b.arg("amount", amount)
                    .payload(body)
                    .chain(&held)
                    .issued_at(clock.now())
            })
            .and_then(|b| b.seal())
    };
    let payment = pay(80, pay_body)?;
    show(
        "executor -> payments: pay 80",
        &at_payments.verify(payment.as_str(), pay_body, &ctx),
    );

    // ------------------------------------------------------------------ closed-world intent
    step("6. A closed-world grant: a file tool inside /data/reports, a fetch tool for https://api.acme.example/*");
    // Closed: an argument the capability does not name is refused, a named one is required.
    let tools = DelegationToken::root(&orchestrator)
        .delegate_to(&planner.public())
        .task("task-43".parse()?)
        .grant(
            Capability::new("files.read", "fs/*")?
                .constrain("path", r#"{"subpath": "/data/reports"}"#.parse()?)?
                .closed(),
        )
        .grant(
            Capability::new("http.fetch", "web/*")?
                .constrain(
                    "url",
                    r#"{"url": {"schemes": ["https"], "hosts": ["api.acme.example"]}}"#.parse()?,
                )?
                .closed(),
        )
        .depth(0)
        .ttl(Duration::from_secs(600))
        .issued_at(clock.now())
        .sign()?;
    let call = |action: &str, resource: &str, arg: &str, value: &str| {
        HandoffEnvelope::builder(&planner)
            .to(executor.id())
            .intent(action, resource)
            .map(|b| b.arg(arg, value).chain([&tools]).issued_at(clock.now()))
            .and_then(|b| b.seal())
    };
    for (action, resource, arg, value) in [
        ("files.read", "fs/main", "path", "/data/reports/2026/q3.pdf"),
        (
            "files.read",
            "fs/main",
            "path",
            "/data/reports/../../etc/passwd",
        ),
        (
            "http.fetch",
            "web/acme",
            "url",
            "https://api.acme.example/v1/orders?id=7",
        ),
        (
            "http.fetch",
            "web/acme",
            "url",
            "https://evil.example#@api.acme.example/",
        ),
    ] {
        let envelope = call(action, resource, arg, value)?;
        show(
            &format!("{action} {arg}={value}"),
            &at_executor.verify(envelope.as_str(), b"", &ctx),
        );
    }

    // ------------------------------------------------------------------ attacks and mistakes
    step("7. Things that must not work");

    println!("   a) escalation: the planner tries to give the executor payments up to 1000 (it holds 500)");
    let widened = grant
        .attenuate(&planner)
        .delegate_to(&executor.public())
        .grant(Capability::new("payments.execute", "account/ops/*")?.max("amount", 1000)?)
        .sign();
    match widened {
        Ok(_) => println!("   !! the builder signed an escalation"),
        Err(e) => println!("   REFUSE builder: {e}"),
    }
    let forged = forge_wider_child(&planner, &executor, grant.token(), clock.now())?;
    let escalated = HandoffEnvelope::builder(&planner)
        .to(executor.id())
        .intent("payments.execute", "account/ops/refunds")?
        .arg("amount", 900)
        .chain([grant.token(), &forged])
        .issued_at(clock.now())
        .seal();
    match escalated {
        Ok(_) => println!("   !! the builder sealed an escalated chain"),
        Err(e) => println!("   REFUSE builder: {e}"),
    }
    // So the planner seals that envelope by hand too.
    let honest = HandoffEnvelope::builder(&planner)
        .to(executor.id())
        .intent("payments.execute", "account/ops/refunds")?
        .arg("amount", 900)
        .chain([grant.token()])
        .issued_at(clock.now())
        .seal()?;
    let mut claims = honest.claims_json();
    claims["chain"] = serde_json::json!([grant.token().as_str(), forged.as_str()]);
    claims["jti"] = serde_json::json!("escalated-envelope-0001");
    let header = serde_json::json!({"alg": "EdDSA", "typ": agent_handoff::wire::TYP_HANDOFF, "kid": planner.kid().as_str()});
    let escalated = sign_by_hand(&planner, &header, &claims)?;
    show(
        "a hand-signed child token granting 1000 (bypassing the builder)",
        &at_executor.verify(&escalated, b"", &ctx),
    );

    println!("   b) over the limit: the executor asks for 400 with its 100 grant");
    let big = pay(400, b"")?;
    show(
        "executor -> payments: pay 400",
        &at_payments.verify(big.as_str(), b"", &ctx),
    );

    println!(
        "   c) wrong audience: the executor forwards the planner's request to the payments tool"
    );
    show(
        "planner's envelope for the executor, presented to payments",
        &at_payments.verify(read.as_str(), body, &ctx),
    );

    println!(
        "   d) stolen chain: the intern steals the executor's chain and signs with its own key"
    );
    let stolen = HandoffEnvelope::builder(&intern)
        .to(payments.id())
        .intent("payments.execute", "account/ops/refunds")?
        .arg("amount", 50)
        .chain(&held)
        .issued_at(clock.now())
        .seal();
    match stolen {
        Ok(_) => println!("   !! the builder sealed a stolen chain"),
        Err(e) => println!("   REFUSE builder: {e}"),
    }
    let stolen = seal_by_hand(&intern, &payment)?;
    show(
        "intern re-signs the executor's payment as its own",
        &at_payments.verify(&stolen, pay_body, &ctx),
    );

    println!("   e) tampered payload: the amount in the body is changed in transit");
    let second = pay(80, pay_body)?;
    show(
        "payment envelope with a different body",
        &at_payments.verify(second.as_str(), br#"{"amount":8000,"to":"attacker"}"#, &ctx),
    );

    println!("   f) replay: the first payment is sent again");
    show(
        "the same payment envelope, twice",
        &at_payments.verify(payment.as_str(), pay_body, &ctx),
    );

    println!("   g) expired: the planner's read request arrives three minutes late");
    let late = HandoffEnvelope::builder(&planner)
        .to(executor.id())
        .intent("tickets.read", "project/alpha/ALPHA-124")?
        .chain([grant.token()])
        .ttl(Duration::from_secs(30))
        .issued_at(clock.now())
        .seal()?;
    clock.advance(Duration::from_secs(180));
    show(
        "a 30-second envelope, verified 180 s later",
        &at_executor.verify(late.as_str(), b"", &ctx),
    );

    println!("   h) revoked: the orchestrator completes task-42 (TaskGrant::complete), then the executor tries one more payment");
    grant.complete()?;
    let after = pay(20, b"")?;
    show(
        "executor -> payments after the task ended",
        &at_payments.verify(after.as_str(), b"", &ctx),
    );

    // ------------------------------------------------------------------ audit
    step("8. The payments tool's audit log (one line per decision, hash-chained)");
    let log = dir.join("payments.audit.jsonl");
    for line in std::fs::read_to_string(&log)?.lines() {
        println!("   {line}");
    }
    let report = verify_audit_log(&log).map_err(|e| format!("audit log broken: {e}"))?;
    println!(
        "\n   verify_audit_log: a header line and {} records, chain intact (unsigned log). Logs are in {}",
        report.summary.records,
        dir.display()
    );
    Ok(())
}

/// A compromised planner that does not use this crate's builder: it signs, by hand, a child
/// token granting more than its parent. (Uses the exported key only to simulate that agent.)
fn forge_wider_child(
    from: &AgentIdentity,
    to: &AgentIdentity,
    parent: &DelegationToken,
    now: UnixTime,
) -> Result<DelegationToken> {
    let claims = serde_json::json!({
        "jti": "forged-wider-child-0001",
        "iss": from.id().as_str(),
        "sub": to.id().as_str(),
        "cnf": {"jkt": to.kid().as_str()},
        "task": parent.claimed_task().as_str(),
        "caps": [{"action": "payments.execute", "resource": "account/ops/*", "limits": {"amount": {"max": 1000}}}],
        "depth": 0,
        "parent": parent.hash().to_b64(),
        "iat": now.as_secs(),
        "exp": parent.claimed_expiry().as_secs(),
    });
    let header = serde_json::json!({"alg": "EdDSA", "typ": agent_handoff::wire::TYP_DELEGATION, "kid": from.kid().as_str()});
    Ok(DelegationToken::decode(&sign_by_hand(
        from, &header, &claims,
    )?)?)
}

/// The intern takes the executor's sealed payment, swaps in its own id, and signs it.
fn seal_by_hand(intern: &AgentIdentity, original: &HandoffEnvelope) -> Result<String> {
    let mut claims = original.claims_json();
    claims["iss"] = serde_json::json!(intern.id().as_str());
    claims["jti"] = serde_json::json!("stolen-envelope-0001");
    let header = serde_json::json!({"alg": "EdDSA", "typ": agent_handoff::wire::TYP_HANDOFF, "kid": intern.kid().as_str()});
    sign_by_hand(intern, &header, &claims)
}

fn sign_by_hand(
    who: &AgentIdentity,
    header: &serde_json::Value,
    claims: &serde_json::Value,
) -> Result<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine as _;
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    use ed25519_dalek::Signer as _;
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&who.export_pkcs8_pem()?)?;
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let signature = key.sign(input.as_bytes());
    Ok(format!("{input}.{}", B64.encode(signature.to_bytes())))
}
