//! Two replicas of one recipient agent share replay protection and revocations through Redis.
//!
//! ```sh
//! redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no &   # or any Redis >= 6.2
//! REDIS_URL=redis://127.0.0.1:6379/0 cargo run --features redis --example fleet
//! ```
//!
//! Each replica is what one process behind a load balancer would hold: its own verifier, its
//! own `RedisReplayCache` and its own `RedisRevocations` (a subscriber thread and a local
//! view). Uses the namespace `fleet-example`, so it leaves other data alone.

// The one exception to Cargo.toml's lint contract in this example: demonstration code that
// indexes JSON values it has just built (a failure is a bug in the example, shown at once).
#![allow(clippy::indexing_slicing)]

use agent_handoff::audit::DiscardAudit;
use agent_handoff::store::redis::RedisOptions;
use agent_handoff::store::redis::RedisReplayCache;
use agent_handoff::store::redis::RedisRevocations;
use agent_handoff::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Replica {
    name: &'static str,
    verifier: HandoffVerifier,
    revocations: Arc<RedisRevocations>,
}

fn say(replica: &Replica, what: &str, outcome: &Result<VerifiedHandoff, Rejection>) {
    match outcome {
        Ok(h) => println!("  {}: {what}: ALLOW (sender {})", replica.name, h.sender()),
        Err(r) => println!(
            "  {}: {what}: DENY [{}] {}",
            replica.name,
            r.reason(),
            r.detail()
        ),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let mut options = RedisOptions::default();
    options.namespace = "fleet-example".into();
    options.staleness_bound = Duration::from_secs(2);
    options.heartbeat = Duration::from_millis(500);

    // Identities and trust (normally loaded from files).
    let orchestrator = AgentIdentity::generate("spiffe://acme.example/orchestrator".parse()?);
    let planner = AgentIdentity::generate("spiffe://acme.example/agents/planner".parse()?);
    let executor = AgentIdentity::generate("spiffe://acme.example/agents/executor".parse()?);
    let mut bundle = TrustBundle::new("acme.example")?;
    bundle.add_authority(&orchestrator.public())?;
    bundle.add_agent(&planner.public())?;
    bundle.add_agent(&executor.public())?;

    println!(
        "Two replicas of {} share {url} (passwords in the URL are never printed).",
        executor.id()
    );
    let mut replicas = Vec::new();
    for name in ["replica-1", "replica-2"] {
        let revocations = Arc::new(RedisRevocations::open_with(&url, &options)?);
        if let Err(e) = revocations.wait_until_synced(Duration::from_secs(3)) {
            eprintln!(
                "cannot reach Redis at the REDIS_URL ({e}); start redis-server or set REDIS_URL"
            );
            std::process::exit(1);
        }
        let verifier = HandoffVerifier::builder(executor.id().clone(), bundle.clone())
            .replay(RedisReplayCache::open_with(&url, executor.id(), &options)?)
            .revocations(Arc::clone(&revocations))
            .audit(DiscardAudit)
            .build()?;
        replicas.push(Replica {
            name,
            verifier,
            revocations,
        });
    }
    let (one, two) = (&replicas[0], &replicas[1]);

    let task: TaskId = format!("fleet-{}", TokenId::random()).parse()?;
    let grant = DelegationToken::root(&orchestrator)
        .delegate_to(&planner.public())
        .task(task.clone())
        .allow("tickets.*", "project/alpha/*")?
        .sign()?;
    let body = br#"{"ticket":123}"#;
    let envelope = || {
        HandoffEnvelope::builder(&planner)
            .to(executor.id())
            .intent("tickets.read", "project/alpha/123")?
            .payload(body)
            .chain([&grant])
            .seal()
    };

    println!("\n1. The load balancer sends an envelope to replica-1; an attacker replays it to replica-2.");
    let env = envelope()?;
    say(
        one,
        "original",
        &one.verifier
            .verify(env.as_str(), body, &RequestContext::new()),
    );
    say(
        two,
        "replay",
        &two.verifier
            .verify(env.as_str(), body, &RequestContext::new()),
    );

    println!("\n2. The orchestrator ends the task through replica-1's store.");
    one.revocations.revoke_task(&task, UnixTime::now())?;
    let started = Instant::now();
    let outcome = loop {
        // A fresh envelope each time: an allowed one would be burnt.
        let env = envelope()?;
        let outcome = two
            .verifier
            .verify(env.as_str(), body, &RequestContext::new());
        if outcome.is_err() || started.elapsed() > Duration::from_secs(5) {
            break outcome;
        }
    };
    say(two, "after the revocation", &outcome);
    println!(
        "  (replica-2 learnt it by pub/sub; any replica that cannot hear Redis for {} s denies `unavailable`)",
        options.staleness_bound.as_secs()
    );

    println!("\n3. Each replica's hot path reads its local view only:");
    for r in &replicas {
        println!(
            "  {}: synced={} view={:?}",
            r.name,
            r.revocations.is_synced(),
            r.revocations.stats()?
        );
    }
    println!("\nDropping the replicas stops their subscriber threads.");
    Ok(())
}
