//! Three agents as real HTTP services on loopback: a planner delegates a refund to an executor,
//! which pays it through a payments tool. Every hop carries an `Agent-Handoff` header sealed
//! over the exact body; every service verifies it in a `HandoffLayer` before its handler runs.
//!
//! Run: `cargo run --example a2a_over_http --features http`

// The one exception to Cargo.toml's lint contract in this example: demonstration code that
// indexes JSON values it has just built (a failure is a bug in the example, shown at once).
#![allow(clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agent_handoff::http_binding::{
    seal_request, Handoff, HandoffLayer, RequestPath, HANDOFF_HEADER,
};
use agent_handoff::{
    audit::verify_audit_log, AgentId, AgentIdentity, Capability, DelegationToken, HandoffEnvelope,
    HandoffVerifier, Intent, JsonlAudit, TrustBundle,
};
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `POST /refunds/{ticket}`: refund a ticket (`tickets.refund`, and the layer appends the
/// method: `tickets.refund.post` on `project/alpha/{ticket}`). The route reads the decoded path
/// the layer checked, never the raw one.
fn executor_route(parts: &::http::request::Parts) -> Option<Intent> {
    let ticket = RequestPath::of(parts)?.as_str().strip_prefix("refunds/")?;
    Intent::new("tickets.refund", &format!("project/alpha/{ticket}")).ok()
}

/// `POST /payments/{account}`: pay (`payments.execute.post` on `account/ops/{account}`).
fn payments_route(parts: &::http::request::Parts) -> Option<Intent> {
    let account = RequestPath::of(parts)?.as_str().strip_prefix("payments/")?;
    Intent::new("payments.execute", &format!("account/ops/{account}")).ok()
}

async fn send(request: ::http::Request<Bytes>) -> Result<(u16, Value), BoxError> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client.request(request.map(Full::new)).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, serde_json::from_slice(&body)?))
}

async fn serve(app: Router) -> Result<SocketAddr, BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

fn reply(status: u16, body: Value) -> impl IntoResponse {
    (
        ::http::StatusCode::from_u16(status).unwrap_or(::http::StatusCode::BAD_GATEWAY),
        [(::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

/// The payments tool: pays what the verified intent says, and checks the body agrees.
async fn pay(Handoff(h): Handoff, body: Bytes) -> impl IntoResponse {
    let asked = serde_json::from_slice::<Value>(&body).ok();
    let amount = h
        .intent()
        .args()
        .get("amount")
        .and_then(|a| a.as_number()?.as_u64());
    match (amount, asked.and_then(|b| b["amount"].as_u64())) {
        (Some(granted), Some(asked)) if granted == asked => reply(
            200,
            json!({"paid": granted, "to": h.intent().resource(), "for": h.sender().as_str()}),
        ),
        _ => reply(
            400,
            json!({"error": "the body's amount is not the signed intent's"}),
        ),
    }
}

/// What the executor needs to call the payments tool.
struct Executor {
    me: AgentIdentity,
    payments_id: AgentId,
    payments_at: SocketAddr,
}

/// The executor: refunds a ticket by paying through the payments tool, on the authority the
/// planner delegated to it with this very request.
async fn refund(
    State(ex): State<Arc<Executor>>,
    Handoff(h): Handoff,
    body: Bytes,
) -> impl IntoResponse {
    let order: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (Some(account), Some(amount), Some(chain)) = (
        order["account"].as_str(),
        order["amount"].as_u64(),
        h.delegated_chain(),
    ) else {
        return reply(400, json!({"error": "bad refund order"}));
    };
    let body = Bytes::from(json!({"amount": amount}).to_string());
    let request = ::http::Request::post(format!("http://{}/payments/{account}", ex.payments_at))
        .header(::http::header::CONTENT_TYPE, "application/json")
        .body(body);
    let sealed = request.map_err(BoxError::from).and_then(|request| {
        let envelope = HandoffEnvelope::builder(&ex.me)
            .to(&ex.payments_id)
            .intent("payments.execute.post", &format!("account/ops/{account}"))?
            .arg("amount", amount)
            .chain(chain);
        Ok(seal_request(request, envelope)?)
    });
    match sealed {
        Ok(request) => match send(request).await {
            Ok((200, paid)) => reply(
                200,
                json!({"refunded": h.intent().resource(), "payment": paid}),
            ),
            Ok((status, refusal)) => reply(
                502,
                json!({"error": "payments refused", "status": status, "refusal": refusal}),
            ),
            Err(_) => reply(502, json!({"error": "payments unreachable"})),
        },
        Err(e) => reply(500, json!({"error": e.to_string()})),
    }
}

fn show(label: &str, (status, body): &(u16, Value)) {
    println!("    {label} -> HTTP {status} {body}");
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let orchestrator = AgentIdentity::generate("spiffe://acme.example/orchestrator".parse()?);
    let planner = AgentIdentity::generate("spiffe://acme.example/agents/planner".parse()?);
    let executor = AgentIdentity::generate("spiffe://acme.example/agents/executor".parse()?);
    let payments = AgentIdentity::generate("spiffe://acme.example/tools/payments".parse()?);
    let mut bundle = TrustBundle::new("acme.example")?;
    bundle.add_authority(&orchestrator.public())?;
    for agent in [&planner, &executor, &payments] {
        bundle.add_agent(&agent.public())?;
    }

    println!("== Three agents start on loopback, each behind a HandoffLayer ==");
    let payments_log = dir.path().join("payments.audit.jsonl");
    let payments_verifier = HandoffVerifier::builder(payments.id().clone(), bundle.clone())
        .audit(JsonlAudit::open(&payments_log)?)
        .build()?;
    let payments_at = serve(
        Router::new()
            .route("/payments/{account}", post(pay))
            .route_layer(HandoffLayer::new(payments_verifier, payments_route).max_body(4096)),
    )
    .await?;
    println!("  payments tool  {} at http://{payments_at}", payments.id());

    let executor_log = dir.path().join("executor.audit.jsonl");
    let executor_verifier = HandoffVerifier::builder(executor.id().clone(), bundle.clone())
        .audit(JsonlAudit::open(&executor_log)?)
        .build()?;
    let executor_id = executor.id().clone();
    let executor_public = executor.public();
    let state = Arc::new(Executor {
        me: executor,
        payments_id: payments.id().clone(),
        payments_at,
    });
    let executor_at = serve(
        Router::new()
            .route("/refunds/{ticket}", post(refund))
            .route_layer(HandoffLayer::new(executor_verifier, executor_route).max_body(4096))
            .with_state(state),
    )
    .await?;
    println!("  executor       {executor_id} at http://{executor_at}");

    // The orchestrator grants the planner a task; the planner narrows it for the executor.
    let grant = DelegationToken::root(&orchestrator)
        .delegate_to(&planner.public())
        .task("refund-123".parse()?)
        .allow("tickets.*", "project/alpha/*")?
        .grant(Capability::new("payments.execute.*", "account/ops/*")?.max("amount", 500)?)
        .depth(2)
        .ttl(Duration::from_secs(600))
        .sign()?;
    let sub_grant = grant
        .attenuate(&planner)
        .delegate_to(&executor_public)
        .allow("tickets.refund.post", "project/alpha/*")?
        .grant(Capability::new("payments.execute.post", "account/ops/*")?.max("amount", 100)?)
        .depth(0)
        .sign()?;
    println!("  the orchestrator grants the planner tickets.* and payments up to 500 for task refund-123;");
    println!(
        "  the planner delegates to the executor: tickets.refund.post and payments up to 100, depth 0"
    );

    let refund_order = |ticket: u32, amount: u64| -> Result<::http::Request<Bytes>, BoxError> {
        let body = Bytes::from(json!({"account": "9", "amount": amount}).to_string());
        let request = ::http::Request::post(format!("http://{executor_at}/refunds/{ticket}"))
            .header(::http::header::CONTENT_TYPE, "application/json")
            .body(body)?;
        Ok(seal_request(
            request,
            HandoffEnvelope::builder(&planner)
                .to(&executor_id)
                .intent("tickets.refund.post", &format!("project/alpha/{ticket}"))?
                .chain([&grant, &sub_grant]),
        )?)
    };

    println!("\n== 1. The allowed chain: planner -> executor -> payments ==");
    println!("  the planner asks the executor to refund ticket 123 by 80 to account ops/9");
    let first = refund_order(123, 80)?;
    let captured = first.clone();
    let outcome = send(first).await?;
    show("planner -> executor -> payments", &outcome);
    assert_eq!(outcome.0, 200);

    println!("\n== 2. A replayed request is refused by the server ==");
    println!("  an eavesdropper re-sends the captured request, byte for byte");
    let outcome = send(captured.clone()).await?;
    show("replay -> executor", &outcome);
    assert_eq!(
        outcome,
        (
            401,
            json!({"error": "handoff_rejected", "reason": "replayed"})
        )
    );

    println!("  it moves the captured header to the refund of ticket 124 instead");
    let mut moved = ::http::Request::post(format!("http://{executor_at}/refunds/124"))
        .body(captured.body().clone())?;
    moved
        .headers_mut()
        .insert(HANDOFF_HEADER, captured.headers()[&HANDOFF_HEADER].clone());
    let outcome = send(moved).await?;
    show("moved header -> executor", &outcome);
    assert_eq!(
        outcome,
        (
            403,
            json!({"error": "handoff_rejected", "reason": "intent_not_granted"})
        )
    );

    println!("\n== 3. An escalation is refused ==");
    println!("  the planner orders a refund of 450; the executor may pay at most 100");
    let outcome = send(refund_order(125, 450)?).await?;
    show("planner -> executor -> payments", &outcome);
    assert_eq!(outcome.0, 502);
    assert_eq!(outcome.1["refusal"]["reason"], "intent_not_granted");
    println!("  the executor's authority stops at its grant: the payments tool refused, not the planner's word");

    println!("\n== 4. What each service wrote in its audit log ==");
    for (name, log) in [("executor", &executor_log), ("payments", &payments_log)] {
        let report = verify_audit_log(log)?;
        println!(
            "  {name}: {} records after the header line, hash chain intact (unsigned log)",
            report.summary.records
        );
        for line in std::fs::read_to_string(log)?.lines() {
            println!("    {line}");
        }
    }
    Ok(())
}
