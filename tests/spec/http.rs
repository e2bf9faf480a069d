//! The HTTP binding end to end: real axum servers on 127.0.0.1 (random ports), real HTTP
//! clients (hyper's client, and raw TCP for a chunked body), the real verifier. Every refusal
//! asserts its status and its exact reason code.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use ::http::request::Parts;
use ::http::{HeaderValue, Request, StatusCode};
use agent_handoff::audit::AuditRecord;
use agent_handoff::audit::Verdict;
use agent_handoff::error::StoreError;
use agent_handoff::http_binding::{
    seal_request, Execution, Handoff, HandoffLayer, RequestPath, HANDOFF_HEADER,
};
use agent_handoff::policy::PolicyDecision;
use agent_handoff::policy::PolicyRequest;
use agent_handoff::store::RevocationQuery;
use agent_handoff::store::Revoked;
use agent_handoff::verify::VerifyRequest;
use agent_handoff::*;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

// ---------------------------------------------------------------- servers and clients

/// The routes of every test service, and the one intent each performs (the layer appends the
/// method to the action). It reads the decoded path the layer checked, never the raw one, and
/// ignores the method on purpose: the layer binds it.
fn route(parts: &Parts) -> Option<Intent> {
    let path = RequestPath::of(parts)?;
    let segments: Vec<&str> = path.segments().collect();
    match segments.as_slice() {
        ["tickets", id, "read"] => Intent::new("tickets.read", &format!("project/alpha/{id}")).ok(),
        ["tickets", id, "write"] => {
            Intent::new("tickets.write", &format!("project/alpha/{id}")).ok()
        }
        ["payments", account] => {
            Intent::new("payments.execute", &format!("account/ops/{account}")).ok()
        }
        // The path is the resource: `/project/alpha/x` is `tickets.file` on `project/alpha/x`.
        ["project", ..] => Intent::new("tickets.file", path.as_str()).ok(),
        _ => None,
    }
}

/// Denies ticket writes in production; allows everything else the chain allows.
#[derive(Debug)]
struct NoProdWrites;

impl Policy for NoProdWrites {
    fn evaluate(&self, r: &PolicyRequest<'_>) -> PolicyDecision {
        if r.intent.action().starts_with("tickets.write.")
            && r.context.environment() == Some("prod")
        {
            PolicyDecision::deny("no-prod-writes")
        } else {
            PolicyDecision::allow("no-prod-writes")
        }
    }
}

/// A revocation store that cannot be reached.
#[derive(Debug)]
struct DownRevocations;

impl Revocations for DownRevocations {
    fn check(&self, _: &RevocationQuery<'_>) -> Result<Option<Revoked>, StoreError> {
        Err(StoreError::new("revocations", "connection refused"))
    }
    fn retention(&self) -> Option<std::time::Duration> {
        None
    }
}

/// What the handler saw: one entry per call.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<(String, Bytes)>>>);

impl Calls {
    fn envelope_ids(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(id, _)| id.clone())
            .collect()
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn router(calls: Calls) -> Router {
    let handler = move |Handoff(h): Handoff, body: Bytes| {
        let calls = calls.clone();
        async move {
            calls
                .0
                .lock()
                .unwrap()
                .push((h.envelope_id().as_str().to_owned(), body.clone()));
            let reply = json!({
                "sender": h.sender().as_str(),
                "action": h.intent().action(),
                "resource": h.intent().resource(),
                "mode": h.mode().as_str(),
                "body_len": body.len(),
            });
            (
                [(::http::header::CONTENT_TYPE, "application/json")],
                reply.to_string(),
            )
        }
    };
    Router::new()
        // GET and POST on one path: the layer tells them apart by the method in the action.
        .route(
            "/tickets/{id}/read",
            post(handler.clone()).get(handler.clone()),
        )
        .route("/tickets/{id}/write", post(handler.clone()))
        .route("/payments/{account}", post(handler.clone()))
        .route("/project/{*rest}", get(handler.clone()).post(handler))
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A service for `me` behind the layer, with the test policy in production.
async fn service(w: &World, me: &Agent, max_body: usize) -> (SocketAddr, Calls) {
    let verifier = w.verifier_builder(me).policy(NoProdWrites).build().unwrap();
    service_with(verifier, max_body).await
}

async fn service_with(verifier: impl Verifier + 'static, max_body: usize) -> (SocketAddr, Calls) {
    let layer = HandoffLayer::new(verifier, route).max_body(max_body);
    service_behind(layer).await
}

async fn service_behind(layer: HandoffLayer) -> (SocketAddr, Calls) {
    let calls = Calls::default();
    let layer = layer.context(|_: &Parts| RequestContext::new().with("environment", "prod"));
    let addr = serve(router(calls.clone()).route_layer(layer)).await;
    (addr, calls)
}

/// The payments capability of a grant: `payments.execute` over any method, at most `max`.
fn payments(max: u64) -> Capability {
    Capability::new("payments.execute.*", "account/ops/*")
        .unwrap()
        .max("amount", max)
        .unwrap()
}

/// orchestrator → planner, for HTTP: tickets.* on project/alpha, payments up to 500, depth 2.
fn http_grant(w: &World) -> DelegationToken {
    DelegationToken::root(&w.orchestrator.identity)
        .delegate_to(&w.planner.public())
        .task("task-42".parse().unwrap())
        .allow("tickets.*", "project/alpha/*")
        .unwrap()
        .grant(payments(500))
        .depth(2)
        .ttl(Duration::from_secs(600))
        .issued_at(w.now())
        .sign()
        .unwrap()
}

/// planner → executor, for HTTP: reading tickets by POST only, payments up to 100, depth 1.
fn http_sub_grant(w: &World, grant: &DelegationToken) -> DelegationToken {
    grant
        .attenuate(&w.planner.identity)
        .delegate_to(&w.executor.public())
        .allow("tickets.read.post", "project/alpha/*")
        .unwrap()
        .grant(payments(100))
        .depth(1)
        .issued_at(w.now())
        .sign()
        .unwrap()
}

struct Reply {
    status: StatusCode,
    json: Value,
    www_authenticate: Option<String>,
}

async fn send(request: Request<Bytes>) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client.request(request.map(Full::new)).await.unwrap();
    let status = response.status();
    let www_authenticate = response
        .headers()
        .get(::http::header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    Reply {
        status,
        json,
        www_authenticate,
    }
}

fn post_to(addr: SocketAddr, path: &str, body: &'static [u8]) -> Request<Bytes> {
    Request::post(format!("http://{addr}{path}"))
        .header(::http::header::CONTENT_TYPE, "application/json")
        .body(Bytes::from_static(body))
        .unwrap()
}

/// The planner asks the executor to read ticket `id`, sealed over `body`.
fn read_ticket(w: &World, addr: SocketAddr, id: u32, body: &'static [u8]) -> Request<Bytes> {
    let grant = http_grant(w);
    seal_request(
        post_to(addr, &format!("/tickets/{id}/read"), body),
        HandoffEnvelope::builder(&w.planner.identity)
            .to(w.executor.id())
            .intent("tickets.read.post", &format!("project/alpha/{id}"))
            .unwrap()
            .chain([grant])
            .issued_at(w.now()),
    )
    .unwrap()
}

#[track_caller]
fn assert_refused(reply: &Reply, status: StatusCode, reason: &str) {
    assert_eq!(reply.status, status, "reply: {}", reply.json);
    assert_eq!(
        reply.json,
        json!({"error": "handoff_rejected", "reason": reason}),
        "the body carries the reason code and nothing more"
    );
    assert_eq!(
        reply.www_authenticate.is_some(),
        status == StatusCode::UNAUTHORIZED,
        "a 401 (and only a 401) names the scheme"
    );
}

fn last_audit(w: &World) -> AuditRecord {
    w.audit.records().last().cloned().expect("an audit record")
}

/// The human-readable detail of an audit record.
fn detail(record: &AuditRecord) -> String {
    let json: Value = serde_json::from_str(&record.to_json()).unwrap();
    json["detail"].as_str().unwrap_or_default().to_owned()
}

// ---------------------------------------------------------------- allow

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_request_reaches_the_handler_with_its_verified_handoff() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.executor, 4096).await;
    let reply = send(read_ticket(&w, addr, 123, PAYLOAD)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(
        reply.json,
        json!({
            "sender": w.planner.id().as_str(),
            "action": "tickets.read.post",
            "resource": "project/alpha/123",
            "mode": "request",
            "body_len": PAYLOAD.len(),
        })
    );
    // The handler got the exact body bytes back.
    assert_eq!(calls.0.lock().unwrap()[0].1, Bytes::from_static(PAYLOAD));
    let record = last_audit(&w);
    assert_eq!(record.decision(), Verdict::Allow);
    assert_eq!(record.verified_sender(), Some(w.planner.id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_body_is_the_empty_payload_and_inline_execution_works() {
    let w = World::new();
    let calls = Calls::default();
    let layer = HandoffLayer::new(w.verifier(&w.executor), route).execution(Execution::Inline);
    let addr = serve(router(calls.clone()).route_layer(layer)).await;
    let reply = send(read_ticket(&w, addr, 5, b"")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(reply.json["body_len"], 0);
    assert_eq!(calls.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegation_over_http_hands_the_chain_to_the_handler() {
    let w = World::new();
    let grant = http_grant(&w);
    let sub = http_sub_grant(&w, &grant);
    let held: Arc<Mutex<Option<usize>>> = Arc::default();
    let seen = Arc::clone(&held);
    let app = Router::new()
        .route(
            "/tickets/{id}/read",
            post(move |Handoff(h): Handoff| {
                let seen = Arc::clone(&seen);
                async move {
                    *seen.lock().unwrap() = h.delegated_chain().map(<[_]>::len);
                    "ok"
                }
            }),
        )
        .route_layer(HandoffLayer::new(w.verifier(&w.executor), route));
    let addr = serve(app).await;
    let request = seal_request(
        post_to(addr, "/tickets/7/read", PAYLOAD),
        HandoffEnvelope::builder(&w.planner.identity)
            .to(w.executor.id())
            .intent("tickets.read.post", "project/alpha/7")
            .unwrap()
            .chain([&grant, &sub])
            .issued_at(w.now()),
    )
    .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client.request(request.map(Full::new)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(*held.lock().unwrap(), Some(2));
}

// ---------------------------------------------------------------- 401: authentication

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_header_is_malformed() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.executor, 4096).await;
    let reply = send(post_to(addr, "/tickets/123/read", PAYLOAD)).await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "malformed");
    assert_eq!(calls.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_headers_are_malformed() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.executor, 4096).await;
    let mut request = read_ticket(&w, addr, 123, PAYLOAD);
    let second = read_ticket(&w, addr, 123, PAYLOAD);
    request
        .headers_mut()
        .append(HANDOFF_HEADER, second.headers()[&HANDOFF_HEADER].clone());
    let reply = send(request).await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "malformed");
    assert_eq!(calls.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_signature_is_refused() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.executor, 4096).await;
    let mut request = read_ticket(&w, addr, 123, PAYLOAD);
    let sealed = request.headers()[&HANDOFF_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    // Change one character in the middle of the signature (a different, canonical value).
    let sig_start = sealed.rfind('.').unwrap() + 1;
    let at = sig_start + 20;
    let mut chars: Vec<char> = sealed.chars().collect();
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    request
        .headers_mut()
        .insert(HANDOFF_HEADER, HeaderValue::from_str(&tampered).unwrap());
    let reply = send(request).await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "bad_signature");
    assert_eq!(last_audit(&w).reason(), Some(Reason::BadSignature));
    assert_eq!(calls.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_sender_is_refused() {
    let w = World::new();
    let (addr, _) = service(&w, &w.executor, 4096).await;
    let grant = http_grant(&w);
    let request = seal_request(
        post_to(addr, "/tickets/1/read", PAYLOAD),
        HandoffEnvelope::builder(&w.outsider.identity)
            .to(w.executor.id())
            .intent("tickets.read.post", "project/alpha/1")
            .unwrap()
            .chain([
                // The outsider holds a grant in name only: it is not in the trust bundle.
                DelegationToken::root(&w.orchestrator.identity)
                    .delegate_to(&w.outsider.public())
                    .task(grant.claimed_task().clone())
                    .allow("tickets.read.*", "project/alpha/*")
                    .unwrap()
                    .issued_at(w.now())
                    .sign()
                    .unwrap(),
            ])
            .issued_at(w.now()),
    )
    .unwrap();
    assert_refused(
        &send(request).await,
        StatusCode::UNAUTHORIZED,
        "unknown_key",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_envelope_is_refused() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.executor, 4096).await;
    let grant = http_grant(&w);
    let request = seal_request(
        post_to(addr, "/tickets/1/read", PAYLOAD),
        HandoffEnvelope::builder(&w.planner.identity)
            .to(w.executor.id())
            .intent("tickets.read.post", "project/alpha/1")
            .unwrap()
            .chain([grant])
            .ttl(Duration::from_secs(60))
            .issued_at(w.now().minus(Duration::from_secs(120))),
    )
    .unwrap();
    assert_refused(&send(request).await, StatusCode::UNAUTHORIZED, "expired");
    assert_eq!(calls.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_request_is_refused_by_the_server() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.executor, 4096).await;
    let request = read_ticket(&w, addr, 123, PAYLOAD);
    let captured = request.clone();
    assert_eq!(send(request).await.status, StatusCode::OK);
    let reply = send(captured).await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "replayed");
    assert_eq!(calls.len(), 1, "the handler ran once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_swapped_after_sealing_is_a_payload_mismatch() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.executor, 4096).await;
    let request = read_ticket(&w, addr, 123, PAYLOAD);
    let (parts, _) = request.into_parts();
    let swapped = Request::from_parts(parts, Bytes::from_static(br#"{"ticket":124}"#));
    let reply = send(swapped).await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "payload_mismatch");
    assert_eq!(last_audit(&w).reason(), Some(Reason::PayloadMismatch));
    assert_eq!(calls.len(), 0);
}

// ---------------------------------------------------------------- 403: authorisation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_moved_to_another_route_is_refused_and_still_good_where_it_belongs() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.executor, 4096).await;
    let request = read_ticket(&w, addr, 123, PAYLOAD);
    let header = request.headers()[&HANDOFF_HEADER].clone();
    // Same action, another resource; another action on the same resource.
    for path in ["/tickets/124/read", "/tickets/123/write"] {
        let mut moved = post_to(addr, path, PAYLOAD);
        moved.headers_mut().insert(HANDOFF_HEADER, header.clone());
        let reply = send(moved).await;
        assert_refused(&reply, StatusCode::FORBIDDEN, "intent_not_granted");
        let record = last_audit(&w);
        assert_eq!(record.decision(), Verdict::Deny);
        assert_eq!(record.reason(), Some(Reason::IntentNotGranted));
    }
    assert_eq!(calls.len(), 0);
    // The refusals did not spend the envelope: the genuine request still goes through once.
    assert_eq!(send(request).await.status, StatusCode::OK);
    assert_eq!(calls.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_that_derives_no_intent_is_refused() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.executor, 4096).await;
    // `*` is not a concrete resource: the route function yields no intent.
    let request = seal_request(
        post_to(addr, "/tickets/*/read", PAYLOAD),
        HandoffEnvelope::builder(&w.planner.identity)
            .to(w.executor.id())
            .intent("tickets.read.post", "project/alpha/1")
            .unwrap()
            .chain([http_grant(&w)])
            .issued_at(w.now()),
    )
    .unwrap();
    assert_refused(
        &send(request).await,
        StatusCode::FORBIDDEN,
        "intent_not_granted",
    );
    assert_eq!(calls.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amount_over_the_grant_is_not_granted() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.payments, 4096).await;
    let grant = http_grant(&w);
    let sub = http_sub_grant(&w, &grant); // the executor may pay at most 100
    let request = seal_request(
        post_to(addr, "/payments/9", br#"{"amount":450}"#),
        HandoffEnvelope::builder(&w.executor.identity)
            .to(w.payments.id())
            .intent("payments.execute.post", "account/ops/9")
            .unwrap()
            .arg("amount", 450)
            .chain([&grant, &sub])
            .issued_at(w.now()),
    )
    .unwrap();
    assert_refused(
        &send(request).await,
        StatusCode::FORBIDDEN,
        "intent_not_granted",
    );
    assert_eq!(calls.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalated_sub_grant_is_refused() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.payments, 4096).await;
    let grant = http_grant(&w);
    // The planner signs, by hand, a sub-grant wider than its own (max 1000 > 500).
    let claims = w.token_claims(
        &w.planner,
        &w.executor,
        Some(grant.as_str()),
        json!([{"action": "payments.execute.*", "resource": "account/ops/*", "limits": {"amount": {"max": 1000}}}]),
        0,
    );
    let wide = w.raw_token(&w.planner, &claims);
    // `seal` refuses the escalated chain, so the executor signs its envelope by hand too.
    let body = br#"{"amount":800}"#;
    let mut envelope = w.envelope_claims(&w.executor, &w.payments, &[grant.as_str(), &wide]);
    envelope["intent"] = json!({"action": "payments.execute.post", "resource": "account/ops/9", "args": {"amount": 800}});
    envelope["digest"] = json!(digest(body));
    let mut request = post_to(addr, "/payments/9", body);
    let sealed = w.raw_envelope(&w.executor, &envelope);
    request
        .headers_mut()
        .insert(HANDOFF_HEADER, HeaderValue::from_str(&sealed).unwrap());
    assert_refused(&send(request).await, StatusCode::FORBIDDEN, "escalation");
    assert_eq!(calls.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_sees_the_server_context_and_can_deny() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.executor, 4096).await;
    let request = seal_request(
        post_to(addr, "/tickets/123/write", PAYLOAD),
        HandoffEnvelope::builder(&w.planner.identity)
            .to(w.executor.id())
            .intent("tickets.write.post", "project/alpha/123")
            .unwrap()
            .chain([http_grant(&w)])
            .issued_at(w.now()),
    )
    .unwrap();
    assert_refused(&send(request).await, StatusCode::FORBIDDEN, "policy_denied");
    assert_eq!(last_audit(&w).policy(), Some("no-prod-writes"));
    assert_eq!(calls.len(), 0);
}

/// A verifier that forgets the route's intent: the layer checks it again.
#[derive(Debug)]
struct IgnoresRoute(HandoffVerifier);

impl Verifier for IgnoresRoute {
    fn verify_request(&self, request: &VerifyRequest<'_>) -> Result<VerifiedHandoff, Rejection> {
        self.0
            .verify(request.envelope, request.payload, &RequestContext::new())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_checks_the_route_even_if_a_custom_verifier_does_not() {
    let w = World::new();
    let (addr, calls) = service_with(IgnoresRoute(w.verifier(&w.executor)), 4096).await;
    let request = read_ticket(&w, addr, 123, PAYLOAD);
    let mut moved = post_to(addr, "/tickets/124/read", PAYLOAD);
    moved
        .headers_mut()
        .insert(HANDOFF_HEADER, request.headers()[&HANDOFF_HEADER].clone());
    assert_refused(
        &send(moved).await,
        StatusCode::FORBIDDEN,
        "intent_not_granted",
    );
    assert_eq!(calls.len(), 0);
}

// ---------------------------------------------------------------- 413, 503, 500

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_refused_unread() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.executor, 1024).await;
    static BIG: [u8; 2048] = [b'x'; 2048];
    let reply = send(read_ticket(&w, addr, 123, &BIG)).await;
    assert_refused(&reply, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    assert_eq!(calls.len(), 0);
    // At the limit exactly it is read and verified.
    static FITS: [u8; 1024] = [b'x'; 1024];
    assert_eq!(
        send(read_ticket(&w, addr, 123, &FITS)).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_over_the_limit_is_refused() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.executor, 1024).await;
    static BIG: [u8; 4096] = [b'x'; 4096];
    let sealed = read_ticket(&w, addr, 123, &BIG);
    let header = sealed.headers()[&HANDOFF_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    // No Content-Length: the limit is enforced while reading.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut raw = format!(
        "POST /tickets/123/read HTTP/1.1\r\nhost: {addr}\r\nagent-handoff: {header}\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in BIG.chunks(512) {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&raw).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await; // the server may close early
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
    assert!(
        text.ends_with(r#"{"error":"handoff_rejected","reason":"too_large"}"#),
        "{text}"
    );
    assert_eq!(calls.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_answer_fails_closed_with_503() {
    let w = World::new();
    let verifier = w
        .verifier_builder(&w.executor)
        .revocations(DownRevocations)
        .build()
        .unwrap();
    let (addr, calls) = service_with(verifier, 4096).await;
    let reply = send(read_ticket(&w, addr, 123, PAYLOAD)).await;
    assert_refused(&reply, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert_eq!(calls.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_extractor_without_the_layer_is_a_server_error_not_a_pass() {
    let app = Router::new().route("/open", post(|Handoff(_): Handoff| async { "reached" }));
    let addr = serve(app).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client
        .request(post_to(addr, "/open", b"").map(Full::new))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

// ---------------------------------------------------------------- concurrency

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_concurrent_requests_are_each_allowed_exactly_once() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.executor, 4096).await;
    let requests: Vec<Request<Bytes>> =
        (0..32).map(|i| read_ticket(&w, addr, i, PAYLOAD)).collect();
    let expected: BTreeSet<String> = requests
        .iter()
        .map(|r| {
            let env =
                HandoffEnvelope::decode(r.headers()[&HANDOFF_HEADER].to_str().unwrap()).unwrap();
            env.id().as_str().to_owned()
        })
        .collect();
    assert_eq!(expected.len(), 32);
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|r| tokio::spawn(send(r)))
        .collect();
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    }
    let mut seen = calls.envelope_ids();
    assert_eq!(seen.len(), 32, "one handler call per request");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), expected);
    let allows = w
        .audit
        .records()
        .iter()
        .filter(|r| r.decision() == Verdict::Allow)
        .count();
    assert_eq!(allows, 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_envelope_sent_eight_times_at_once_is_accepted_once() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.executor, 4096).await;
    let request = read_ticket(&w, addr, 123, PAYLOAD);
    let tasks: Vec<_> = (0..8)
        .map(|_| tokio::spawn(send(request.clone())))
        .collect();
    let mut ok = 0;
    for task in tasks {
        let reply = task.await.unwrap();
        if reply.status == StatusCode::OK {
            ok += 1;
        } else {
            assert_refused(&reply, StatusCode::UNAUTHORIZED, "replayed");
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(calls.len(), 1);
}

/// Refusals the layer decides before the verifier runs are audited too: every decision
/// leaves a record, with whatever the envelope claimed recorded as claimed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_made_by_the_layer_are_audited() {
    let w = World::new();
    let (addr, _calls) = service(&w, &w.executor, 1024).await;
    let reply = send(post_to(addr, "/tickets/123/read", PAYLOAD)).await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "malformed");
    static BIG: [u8; 2048] = [b'x'; 2048];
    let reply = send(read_ticket(&w, addr, 123, &BIG)).await;
    assert_refused(&reply, StatusCode::PAYLOAD_TOO_LARGE, "too_large");

    let records = w.audit.records();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0].decision(), Verdict::Deny);
    assert_eq!(records[0].reason(), Some(Reason::Malformed));
    assert!(records[0].claimed().unwrap().sender.is_none());
    assert_eq!(records[1].reason(), Some(Reason::TooLarge));
    let claimed = records[1].claimed().unwrap();
    assert_eq!(claimed.sender.as_ref(), Some(w.planner.id()));
    assert!(
        records[1].verified_sender().is_none(),
        "a refusal is never a verified fact"
    );
}

// ---------------------------------------------------------------- 400: the path

/// A request to `path` with `method`, carrying a genuine envelope (for another, canonical
/// resource): the path alone decides the refusal.
fn to_path(w: &World, addr: SocketAddr, method: &str, path: &str) -> Request<Bytes> {
    let sealed = read_ticket(w, addr, 123, PAYLOAD);
    Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header(HANDOFF_HEADER, sealed.headers()[&HANDOFF_HEADER].clone())
        .body(Bytes::from_static(PAYLOAD))
        .unwrap()
}

/// Paths whose raw form is not their decoded, normalised form never reach the route function
/// or the handler: `400 non_canonical_path`, audited with what was wrong. (Before, the route
/// function read the raw path while axum's `Path` decodes it: the verifier checked
/// `project/alpha/..%2Fbeta` and the handler acted on `project/alpha/../beta`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_that_is_not_canonical_is_refused_with_400_and_audited() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.executor, 4096).await;
    let cases = [
        (
            "POST",
            "/tickets/..%2Fbeta/read",
            "the request path has an encoded `/` (`%2F`): a segment cannot hold `/`",
        ),
        (
            "GET",
            "/project/alpha/..%2Fbeta",
            "the request path has an encoded `/` (`%2F`): a segment cannot hold `/`",
        ),
        (
            "GET",
            "/project/alpha/%2e%2e/beta",
            "the request path escapes a character that needs no escape (`%2E` for `.`, `%41` for `A`, ...): send the character itself",
        ),
        (
            "GET",
            "/project/alpha//x",
            "the request path has an empty segment (`//`, or a trailing `/`)",
        ),
        (
            "GET",
            "/project/alpha/./x",
            "the request path has a `.` or `..` segment: send the path it stands for",
        ),
        (
            "GET",
            "/project/alpha/../beta",
            "the request path has a `.` or `..` segment: send the path it stands for",
        ),
        (
            "GET",
            "/project/alpha/x/",
            "the request path has an empty segment (`//`, or a trailing `/`)",
        ),
        (
            "GET",
            "/project/alpha/%zz",
            "the request path has an invalid percent escape: `%` must be followed by two hex digits",
        ),
        (
            "GET",
            "/project/alpha/%25",
            "the request path has an encoded `%` (`%25`): a resource cannot hold `%`",
        ),
        (
            "GET",
            "/project/alpha/%5C",
            "the request path has an encoded backslash (`%5C`)",
        ),
        (
            "GET",
            "/project/alpha/%00",
            "the request path has an encoded space or control character",
        ),
        (
            "GET",
            "/project/alpha/%C3%A9",
            "the request path has an encoded non-ASCII byte: paths are printable ASCII",
        ),
    ];
    for (i, (method, path, why)) in cases.into_iter().enumerate() {
        let reply = send(to_path(&w, addr, method, path)).await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, "non_canonical_path");
        let records = w.audit.records();
        assert_eq!(records.len(), i + 1, "{path}: one record per refusal");
        let record = last_audit(&w);
        assert_eq!(record.decision(), Verdict::Deny, "{path}");
        assert_eq!(record.reason(), Some(Reason::NonCanonicalPath), "{path}");
        assert_eq!(detail(&record), why, "{path}");
        // What the envelope claimed is recorded as claimed.
        assert_eq!(
            record.claimed().unwrap().sender.as_ref(),
            Some(w.planner.id()),
            "{path}"
        );
    }
    assert_eq!(calls.len(), 0);
}

/// A backslash, which the HTTP client would not send: over raw TCP. hyper passes it through;
/// the layer refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_backslash_in_the_path_is_refused_with_400() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.executor, 4096).await;
    let response = raw_exchange(
        addr,
        b"GET /project/alpha\\x HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    assert!(
        response.ends_with(r#"{"error":"handoff_rejected","reason":"non_canonical_path"}"#),
        "{response}"
    );
    let record = last_audit(&w);
    assert_eq!(record.reason(), Some(Reason::NonCanonicalPath));
    assert_eq!(detail(&record), "the request path has a backslash");
    assert!(
        record.claimed().unwrap().sender.is_none(),
        "no header, no claims"
    );
    assert_eq!(calls.len(), 0);
}

/// Sends `raw` on a fresh connection and reads the response until the server closes it.
async fn raw_exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).into_owned()
}

/// The route function and the handler see the decoded path: `%3F` is `?` in the resource the
/// verifier checks and in the one the handler gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_path_reaches_the_handler_decoded_as_verified() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.executor, 4096).await;
    let request = seal_request(
        Request::get(format!("http://{addr}/project/alpha/x%3Fy"))
            .body(Bytes::from_static(PAYLOAD))
            .unwrap(),
        HandoffEnvelope::builder(&w.planner.identity)
            .to(w.executor.id())
            .intent("tickets.file.get", "project/alpha/x?y")
            .unwrap()
            .chain([http_grant(&w)])
            .issued_at(w.now()),
    )
    .unwrap();
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(reply.json["action"], "tickets.file.get");
    assert_eq!(reply.json["resource"], "project/alpha/x?y");
    assert_eq!(calls.len(), 1);
}

/// A route function that builds a non-canonical resource (here from nothing in the path at
/// all) takes no handoff: the layer checks the resource before it asks the verifier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_resource_that_is_not_canonical_is_not_granted() {
    let w = World::new();
    let dotted = |_: &Parts| Intent::new("tickets.read", "project/alpha/../beta").ok();
    let (addr, calls) = service_behind(HandoffLayer::new(w.verifier(&w.executor), dotted)).await;
    let reply = send(read_ticket(&w, addr, 123, PAYLOAD)).await;
    assert_refused(&reply, StatusCode::FORBIDDEN, "intent_not_granted");
    let record = last_audit(&w);
    assert_eq!(record.reason(), Some(Reason::IntentNotGranted));
    // This layer's check, or (once the core refuses `..` in every intent) the route's.
    let why = detail(&record);
    assert!(
        why.starts_with("the route derived a resource that is not canonical")
            || why == "no intent is derived from this request's route",
        "{why}"
    );
    assert_eq!(calls.len(), 0);
}

// ---------------------------------------------------------------- the method

/// An envelope sealed for `POST` is refused on `GET` of the same path, although the route
/// function ignores the method and the router serves both: the layer appends the method to
/// the action. The refusal does not spend the envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_envelope_is_refused_on_get_of_the_same_path() {
    let w = World::new();
    let (addr, calls) = service(&w, &w.executor, 4096).await;
    let request = read_ticket(&w, addr, 123, PAYLOAD);
    let mut as_get = Request::get(format!("http://{addr}/tickets/123/read"))
        .body(Bytes::from_static(PAYLOAD))
        .unwrap();
    as_get
        .headers_mut()
        .insert(HANDOFF_HEADER, request.headers()[&HANDOFF_HEADER].clone());
    let reply = send(as_get).await;
    assert_refused(&reply, StatusCode::FORBIDDEN, "intent_not_granted");
    let record = last_audit(&w);
    assert_eq!(record.decision(), Verdict::Deny);
    assert_eq!(record.reason(), Some(Reason::IntentNotGranted));
    assert!(
        detail(&record).contains("`tickets.read.get on project/alpha/123`"),
        "{}",
        detail(&record)
    );
    assert_eq!(calls.len(), 0);
    // Where it belongs, it goes through.
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(reply.json["action"], "tickets.read.post");
    assert_eq!(calls.len(), 1);
}

/// Policies judge the route's action as well as the method-extended one: a deny rule and a
/// tier written for `tickets.read` apply to `tickets.read.post` (before, the layer's method
/// suffix made an exact rule silently miss and a broader allow decide).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_judge_the_route_action_without_the_method() {
    let w = World::new();
    let policy: RulePolicy = r#"
version = "t1"

[tiers.low]
actions = ["tickets.write"]

[[rule]]
name = "no-ticket-reads-by-the-planner"
effect = "deny"
senders = ["spiffe://acme.example/agents/planner"]
actions = ["tickets.read"]

[[rule]]
name = "tickets"
effect = "allow"
actions = ["tickets.*"]
"#
    .parse()
    .unwrap();
    let verifier = w
        .verifier_builder(&w.executor)
        .policy(policy)
        .build()
        .unwrap();
    let (addr, calls) = service_with(verifier, 4096).await;
    let reply = send(read_ticket(&w, addr, 123, PAYLOAD)).await;
    assert_refused(&reply, StatusCode::FORBIDDEN, "policy_denied");
    let record = last_audit(&w);
    assert_eq!(record.reason(), Some(Reason::PolicyDenied));
    let json = record.to_json();
    assert!(json.contains("no-ticket-reads-by-the-planner"), "{json}");
    assert_eq!(calls.len(), 0);
}

/// The client helper refuses to seal an intent whose action does not name the method.
#[test]
fn seal_request_refuses_an_action_without_the_method() {
    let w = World::new();
    let request = Request::get("http://127.0.0.1:1/tickets/123/read")
        .body(Bytes::from_static(PAYLOAD))
        .unwrap();
    let err = seal_request(
        request,
        HandoffEnvelope::builder(&w.planner.identity)
            .to(w.executor.id())
            .intent("tickets.read.post", "project/alpha/123")
            .unwrap()
            .chain([http_grant(&w)]),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Build { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("does not name the request method `GET`"),
        "{err}"
    );
}

// ---------------------------------------------------------------- 408: the body deadline

/// A client that trickles its body (one byte at a time) is cut off at the body deadline:
/// `408 timeout`, audited, the handler never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_refused_at_the_deadline_with_408_and_audited() {
    let w = World::new();
    let layer = HandoffLayer::new(w.verifier(&w.executor), route)
        .max_body(4096)
        .body_deadline(Duration::from_millis(300));
    let (addr, calls) = service_behind(layer).await;
    static BODY: [u8; 64] = [b'x'; 64];
    let sealed = read_ticket(&w, addr, 123, &BODY);
    let header = sealed.headers()[&HANDOFF_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /tickets/123/read HTTP/1.1\r\nhost: {addr}\r\nagent-handoff: {header}\r\n\
         content-length: {}\r\nconnection: keep-alive\r\n\r\n",
        BODY.len()
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    // A keep-alive request: the `connection: close` asserted below is the layer's own.
    // One byte every 100 ms: the whole body would take 6.4 s. The writer stops when the
    // server stops reading.
    let trickle = tokio::spawn(async move {
        for byte in BODY {
            if writer.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let expected_body = r#"{"error":"handoff_rejected","reason":"timeout"}"#;
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&response).ends_with(expected_body) {
                break;
            }
        }
    });
    read.await
        .expect("the server answers before the test gives up");
    trickle.abort();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(text.ends_with(expected_body), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert_eq!(calls.len(), 0);
    let record = last_audit(&w);
    assert_eq!(record.decision(), Verdict::Deny);
    assert_eq!(record.reason(), Some(Reason::Timeout));
    assert_eq!(
        detail(&record),
        "the request body did not arrive within the body deadline: send it at once, or raise `HandoffLayer::body_deadline`"
    );
    assert_eq!(
        record.claimed().unwrap().sender.as_ref(),
        Some(w.planner.id())
    );
}
