//! The HTTP binding (feature `http`): verify handoffs in `tower` services (axum, hyper, tonic)
//! and seal them in HTTP clients.
//!
//! The binding, in short (the normative text is SPEC.md section 10; the usage guide is
//! `docs/http.md`):
//!
//! - the envelope travels in exactly one request header, [`HANDOFF_HEADER`]
//!   (`Agent-Handoff: <compact envelope>`);
//! - the envelope's payload digest covers the exact bytes of the request body (an empty body
//!   is the empty payload);
//! - the request path must be in canonical form (percent-decoded, no `.`/`..`/empty segment,
//!   no encoded `/`, ...; see [`RequestPath`]), or the request is refused with `400` and
//!   `non_canonical_path`; route functions read the decoded path with [`RequestPath::of`];
//! - the endpoint decides the intent: the service maps each request (its decoded path, ...) to
//!   the one intent that route performs, the layer appends the request method to the action
//!   (`tickets.read` on `POST` requires `tickets.read.post`), and the verifier refuses an
//!   envelope whose intent names another action or resource with `intent_not_granted`
//!   ([`VerifyRequest::required_intent`]), so a captured header is useless on another endpoint or
//!   with another method;
//! - the body is read within a deadline ([`DEFAULT_BODY_DEADLINE`]); a body that does not
//!   arrive in time is refused with `408` and `timeout`;
//! - a refusal is `401` for an authentication failure ([`Reason::is_authentication`]), `403`
//!   for an authorisation failure, `400` for a non-canonical path, `408` for a body read
//!   timeout, `413` for a body over the limit and `503` when a store could not answer, each
//!   with the body `{"error":"handoff_rejected","reason":"<code>"}`.
//!
//! ```no_run
//! # use agent_handoff::*;
//! # use agent_handoff::http_binding::{Handoff, HandoffLayer, RequestPath};
//! # fn demo(verifier: HandoffVerifier) {
//! let layer = HandoffLayer::new(verifier, |parts: &::http::request::Parts| {
//!     // POST /tickets/{id}/read performs `tickets.read.post` on `project/alpha/{id}`.
//!     let path = RequestPath::of(parts)?; // decoded; the layer refused any other form
//!     let id = path.as_str().strip_prefix("tickets/")?.strip_suffix("/read")?;
//!     Intent::new("tickets.read", &format!("project/alpha/{id}")).ok()
//! })
//! .max_body(64 * 1024);
//! // axum: Router::new().route("/tickets/{id}/read", post(handler)).route_layer(layer)
//! // async fn handler(Handoff(h): Handoff, body: Bytes) -> ... { h.intent().resource() ... }
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response as AxumResponse};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use tower::{Layer, Service};

use crate::error::{Error, Location, Reason, Rejection};
use crate::grant::{rules, EnvelopeBuilder, Intent};
pub use crate::limits::{DEFAULT_BODY_DEADLINE, DEFAULT_MAX_BODY};
use crate::policy::RequestContext;
use crate::verify::{VerifiedHandoff, Verifier, VerifyRequest};

/// The request header that carries the compact envelope: `Agent-Handoff`.
pub const HANDOFF_HEADER: HeaderName = HeaderName::from_static("agent-handoff");

type RouteFn = dyn Fn(&Parts) -> Option<Intent> + Send + Sync;
type ContextFn = dyn Fn(&Parts) -> RequestContext + Send + Sync;

/// Where [`Verifier::verify_request`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Execution {
    /// On tokio's blocking pool (`spawn_blocking`), so a verifier whose stores make network
    /// round trips (Redis revocations or replay cache, a remote audit sink) never stalls an
    /// executor thread. The default. (The layer itself needs a tokio runtime for its body
    /// deadline: see [`HandoffLayer::body_deadline`].)
    Blocking,
    /// On the executor thread that polls the request. Saves a thread hand-off; choose it only
    /// for verifiers whose stores are all in memory (signature checks take microseconds).
    Inline,
}

/// A `tower` layer that verifies the handoff of every request before the inner service runs.
///
/// Made with [`HandoffLayer::new`]; wraps any service of `http::Request<B>` whose body type can
/// be rebuilt from the bytes read (`B: From<Bytes>`, as `axum::body::Body` and
/// `http_body_util::Full<Bytes>` are). Requests that pass reach the inner service with the body
/// re-attached and the [`VerifiedHandoff`] in the request extensions (the [`Handoff`] extractor
/// hands it to an axum handler); requests that fail never reach it.
///
/// Mount it only on the routes that take handoffs (axum: `Router::route_layer`); a route the
/// route function does not know is refused with `intent_not_granted`.
#[derive(Clone)]
#[must_use]
pub struct HandoffLayer {
    verifier: Arc<dyn Verifier>,
    route: Arc<RouteFn>,
    context: Arc<ContextFn>,
    max_body: usize,
    body_deadline: Duration,
    execution: Execution,
}

impl fmt::Debug for HandoffLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandoffLayer")
            .field("verifier", &self.verifier)
            .field("max_body", &self.max_body)
            .field("body_deadline", &self.body_deadline)
            .field("execution", &self.execution)
            .finish_non_exhaustive()
    }
}

impl HandoffLayer {
    /// A layer that verifies with `verifier` and requires, for each request, the intent `route`
    /// derives from its parts (decoded path, query, headers), with the request method appended
    /// to the action: a route intent `tickets.read` on `project/alpha/123` requires, for a
    /// `POST`, the envelope intent `tickets.read.post` on `project/alpha/123`. `route` returns
    /// `None` for a request that no handoff may authorise; such a request is refused.
    ///
    /// `route` runs only for a request whose path is canonical, and reads the decoded path
    /// with [`RequestPath::of`]: deriving the resource from `parts.uri.path()` (the raw,
    /// percent-encoded path) would check another string than the handler decodes.
    pub fn new<V, R>(verifier: V, route: R) -> HandoffLayer
    where
        V: Verifier + 'static,
        R: Fn(&Parts) -> Option<Intent> + Send + Sync + 'static,
    {
        HandoffLayer::shared(Arc::new(verifier), route)
    }

    /// Like [`HandoffLayer::new`], for a verifier shared with other code.
    pub fn shared<R>(verifier: Arc<dyn Verifier>, route: R) -> HandoffLayer
    where
        R: Fn(&Parts) -> Option<Intent> + Send + Sync + 'static,
    {
        HandoffLayer {
            verifier,
            route: Arc::new(route),
            context: Arc::new(|_: &Parts| RequestContext::new()),
            max_body: DEFAULT_MAX_BODY,
            body_deadline: DEFAULT_BODY_DEADLINE,
            execution: Execution::Blocking,
        }
    }

    /// The request-time [`RequestContext`] for each request, from its parts (default: empty). The
    /// layer gives the verifier the route's required intent beside it
    /// ([`VerifyRequest::required_intent`]).
    pub fn context<C>(mut self, context: C) -> HandoffLayer
    where
        C: Fn(&Parts) -> RequestContext + Send + Sync + 'static,
    {
        self.context = Arc::new(context);
        self
    }

    /// The largest body read, in bytes (default [`DEFAULT_MAX_BODY`]). A larger body is refused
    /// with `413` and `too_large` before the verifier runs.
    pub fn max_body(mut self, bytes: usize) -> HandoffLayer {
        self.max_body = bytes;
        self
    }

    /// The longest the layer waits for the whole request body, from its first to its last
    /// byte (default [`DEFAULT_BODY_DEADLINE`]). A body that has not fully arrived by then is
    /// refused with `408` and `timeout` before the verifier runs, and the connection is
    /// closed. The deadline needs a tokio runtime with its timer enabled (as `#[tokio::main]`
    /// and the default multi-thread runtime have): outside a tokio runtime every request is
    /// refused with `503` and `unavailable`, and in a runtime built without `enable_time`
    /// tokio panics the request's task.
    pub fn body_deadline(mut self, deadline: Duration) -> HandoffLayer {
        self.body_deadline = deadline;
        self
    }

    /// Where the verifier runs (default [`Execution::Blocking`]).
    pub fn execution(mut self, execution: Execution) -> HandoffLayer {
        self.execution = execution;
        self
    }

    /// Everything the layer checks, in order. Returns the verified handoff and the body, or
    /// the refusal. `parts` carries the [`RequestPath`] in its extensions.
    async fn check<B>(&self, parts: &Parts, body: B) -> Result<(VerifiedHandoff, Bytes), Refusal>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        // Exactly one header, visible ASCII (a compact JWS is). Looked at first so that every
        // later refusal can record what the envelope claimed; refused after the route.
        let header = envelope_header(parts);
        let claimed = header.as_ref().ok().cloned();
        let (route, action) = self.route(parts, claimed)?;
        let envelope = header?;
        let payload = self.read_body(parts, body, &envelope).await?;
        let Some(endpoint) = Endpoint::new(&route, &action) else {
            return Err(Refusal::layer(
                Reason::IntentNotGranted,
                "the route's intent is not a concrete intent",
                Some(envelope),
            ));
        };
        let input = Input {
            envelope,
            payload,
            context: (self.context)(parts),
            endpoint,
        };
        let (handoff, input) = self.verify(input).await.map_err(Refusal::Verified)?;

        // The verifier honoured the required intent; check again (the same rule) in case a
        // custom `Verifier` ignores it.
        let required = &input.endpoint.required;
        if rules::required_intent(handoff.intent(), Some(required)).is_err() {
            return Err(Refusal::layer(
                Reason::IntentNotGranted,
                "the verified intent is not the one this endpoint requires",
                Some(input.envelope),
            ));
        }
        Ok((handoff, input.payload))
    }

    /// The route function's intent for this request, and the action the endpoint requires:
    /// the route's action with the request method appended. `claimed` is the envelope, for the
    /// record of a refusal.
    fn route(&self, parts: &Parts, claimed: Option<String>) -> Result<(Intent, String), Refusal> {
        // The route decides the intent; a route without one takes no handoff.
        let Some(route) = (self.route)(parts) else {
            return Err(Refusal::layer(
                Reason::IntentNotGranted,
                "no intent is derived from this request's route",
                claimed,
            ));
        };
        if !is_canonical_resource(route.resource()) {
            return Err(Refusal::layer(
                Reason::IntentNotGranted,
                "the route derived a resource that is not canonical (1 to 512 bytes of `/`-separated segments of printable ASCII without `%`, `\\`, `*`, `.` or `..` segments)",
                claimed,
            ));
        }
        // The method is part of the action: an envelope for `POST` is refused on `GET`.
        let Some(action) = method_action(route.action(), parts.method.as_str()) else {
            return Err(Refusal::layer(
                Reason::IntentNotGranted,
                "no action is derived for this request method (methods are `[A-Z0-9_-]`, up to 32 characters, and the action with its `.<method>` suffix at most 128)",
                claimed,
            ));
        };
        Ok((route, action))
    }

    /// The request body, read once, bounded in size and in time.
    async fn read_body<B>(&self, parts: &Parts, body: B, envelope: &str) -> Result<Bytes, Refusal>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let refuse = |reason, detail| Refusal::layer(reason, detail, Some(envelope.to_owned()));
        // Refuse a declared length over the limit unread.
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let too_large = "the request body is larger than this endpoint accepts";
        if declared.is_some_and(|n| n > self.max_body as u64) {
            return Err(refuse(Reason::TooLarge, too_large));
        }
        // ... and bounded in time: a client that trickles its body holds a worker at most
        // `body_deadline`.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(refuse(
                Reason::Unavailable,
                "the body deadline needs a tokio runtime: run the service on one",
            ));
        }
        let read = tokio::time::timeout(
            self.body_deadline,
            Limited::new(body, self.max_body).collect(),
        );
        match read.await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
                Err(refuse(Reason::TooLarge, too_large))
            }
            Ok(Err(_)) => Err(refuse(
                Reason::Malformed,
                "the request body could not be read",
            )),
            Err(_) => Err(refuse(
                Reason::Timeout,
                "the request body did not arrive within the body deadline: send it at once, or raise `HandoffLayer::body_deadline`",
            )),
        }
    }

    /// Records a refusal the layer decided itself, where verification runs (it may write to
    /// disk), and returns its reason.
    async fn record(&self, refusal: Refusal) -> Reason {
        let Refusal::Layer {
            reason,
            detail,
            envelope,
        } = refusal
        else {
            return refusal.reason();
        };
        let rejection = Rejection::new(reason, Location::Envelope, detail);
        let runtime = match self.execution {
            Execution::Blocking => tokio::runtime::Handle::try_current().ok(),
            Execution::Inline => None,
        };
        match runtime {
            Some(runtime) => {
                let verifier = Arc::clone(&self.verifier);
                // A failed or cancelled task only loses the record; the refusal stands.
                let _ = runtime
                    .spawn_blocking(move || {
                        verifier.record_refusal(&rejection, envelope.as_deref())
                    })
                    .await;
            }
            None => self
                .verifier
                .record_refusal(&rejection, envelope.as_deref()),
        }
        reason
    }

    /// Runs the verifier where [`Execution`] says, and hands the input back with the verified
    /// handoff.
    async fn verify(&self, input: Input) -> Result<(VerifiedHandoff, Input), Reason> {
        let runtime = match self.execution {
            Execution::Blocking => tokio::runtime::Handle::try_current().ok(),
            Execution::Inline => None,
        };
        let (result, input) = match runtime {
            Some(runtime) => {
                let verifier = Arc::clone(&self.verifier);
                runtime
                    .spawn_blocking(move || (input.verify(verifier.as_ref()), input))
                    .await
                    // The verification task panicked or was cancelled: fail closed.
                    .map_err(|_| Reason::Unavailable)?
            }
            None => (input.verify(self.verifier.as_ref()), input),
        };
        match result {
            Ok(handoff) => Ok((handoff, input)),
            Err(rejection) => Err(rejection.reason()),
        }
    }
}

/// The intent an endpoint performs (SPEC section 10): what the verifier requires of the
/// envelope, and the route's own action for the policy.
struct Endpoint {
    /// The route's intent with the request method appended to its action.
    required: Intent,
    /// The route's action, without the method: policies judge the action as the route names
    /// it too (`tickets.read` as well as `tickets.read.post`), so rules and tiers written for
    /// it keep applying.
    route_action: String,
}

impl Endpoint {
    /// The endpoint of a route intent and the action with the method; `None` if they do not
    /// make a concrete intent.
    fn new(route: &Intent, action: &str) -> Option<Endpoint> {
        Some(Endpoint {
            required: Intent::new(action, route.resource()).ok()?,
            route_action: route.action().to_owned(),
        })
    }
}

/// What the layer hands the verifier, owned so that it can move to the blocking pool.
struct Input {
    envelope: String,
    payload: Bytes,
    context: RequestContext,
    endpoint: Endpoint,
}

impl Input {
    fn verify(&self, verifier: &dyn Verifier) -> Result<VerifiedHandoff, Rejection> {
        verifier.verify_request(
            &VerifyRequest::new(&self.envelope, &self.payload)
                .context(&self.context)
                .required_intent(&self.endpoint.required)
                .route_action(&self.endpoint.route_action),
        )
    }
}

impl<S> Layer<S> for HandoffLayer {
    type Service = HandoffService<S>;

    fn layer(&self, inner: S) -> HandoffService<S> {
        HandoffService {
            inner,
            layer: self.clone(),
        }
    }
}

/// Why the layer refused a request: decided by the layer itself (audited through
/// [`Verifier::record_refusal`]) or by the verifier (already audited).
enum Refusal {
    Layer {
        reason: Reason,
        detail: &'static str,
        envelope: Option<String>,
    },
    Verified(Reason),
}

impl Refusal {
    fn layer(reason: Reason, detail: &'static str, envelope: Option<String>) -> Refusal {
        Refusal::Layer {
            reason,
            detail,
            envelope,
        }
    }

    fn reason(&self) -> Reason {
        match self {
            Refusal::Layer { reason, .. } | Refusal::Verified(reason) => *reason,
        }
    }
}

/// The one `Agent-Handoff` header value, or the refusal.
fn envelope_header(parts: &Parts) -> Result<String, Refusal> {
    let mut values = parts.headers.get_all(&HANDOFF_HEADER).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(Refusal::layer(
            Reason::Malformed,
            "the request needs exactly one `Agent-Handoff` header",
            None,
        ));
    };
    value.to_str().map(str::to_owned).map_err(|_| {
        Refusal::layer(
            Reason::Malformed,
            "the `Agent-Handoff` header is not visible ASCII",
            None,
        )
    })
}

/// The action an endpoint requires: the route's action, `.`, and the request method in
/// lowercase (`tickets.read` on `POST` is `tickets.read.post`). `None` for a method outside
/// `[A-Z0-9_-]{1,32}` (so that `get` and `GET` never name the same action) or an action that
/// would be longer than 128 characters.
fn method_action(action: &str, method: &str) -> Option<String> {
    let plain = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
    if method.is_empty() || method.len() > 32 || !method.bytes().all(plain) {
        return None;
    }
    let required = format!("{action}.{}", method.to_ascii_lowercase());
    (required.len() <= 128).then_some(required)
}

/// Whether `resource` is a canonical concrete resource (SPEC section 3), by the core's one rule.
fn is_canonical_resource(resource: &str) -> bool {
    crate::grant::check_resource(resource).is_ok()
}

/// The request path, percent-decoded, of a request whose path [`HandoffLayer`] found in
/// canonical form; without the leading `/` (`/tickets/123/read` is `tickets/123/read`, `/`
/// is the empty string).
///
/// The layer puts it in the request extensions before it calls the route function, so that
/// the route function, and the handler after it, read exactly the decoded path the
/// verification was about. A raw path is in canonical form when (SPEC section 10,
/// rule 4):
///
/// - it starts with `/` and every `/`-separated segment after that is non-empty (no `//`, no
///   trailing `/`; the path `/` alone is allowed);
/// - it holds only the characters a URI path segment may hold unescaped (`A-Z a-z 0-9 - . _ ~
///   ! $ & ' ( ) * + , ; = : @`) and percent escapes: no backslash, no space or control
///   character, no raw non-ASCII byte;
/// - every escape is `%` and two **uppercase** hex digits, and encodes a printable ASCII
///   character that may not appear unescaped (`"` `#` `<` `>` `?` `[` `]` `^` `` ` `` `{` `|`
///   `}`): an encoded `/` (`%2F`), `%` (`%25`) or `\` (`%5C`), an encoded control character,
///   space or non-ASCII byte, and an escape of a character that needs none (`%2E`, `%41`) are
///   all refused;
/// - no segment is `.` or `..`.
///
/// Any other path is refused with `400` and `non_canonical_path`: the layer never guesses
/// which resource a path that normalises to another string meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestPath(String);

impl RequestPath {
    /// The decoded path the layer put in `parts`' extensions, or `None` outside the layer.
    #[must_use]
    pub fn of(parts: &Parts) -> Option<&RequestPath> {
        parts.extensions.get::<RequestPath>()
    }

    /// The decoded path, without the leading `/`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The decoded segments (none for the path `/`).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|_| !self.0.is_empty())
    }

    /// Decodes a raw request path, or says why it is not in canonical form.
    fn parse(raw: &str) -> Result<RequestPath, &'static str> {
        let Some(rest) = raw.strip_prefix('/') else {
            return Err("the request path does not start with `/`");
        };
        let mut decoded = String::with_capacity(rest.len());
        if rest.is_empty() {
            return Ok(RequestPath(decoded));
        }
        for (i, segment) in rest.split('/').enumerate() {
            if segment.is_empty() {
                return Err("the request path has an empty segment (`//`, or a trailing `/`)");
            }
            let mut piece = String::with_capacity(segment.len());
            let bytes = segment.as_bytes();
            let mut at = 0;
            while let Some(&b) = bytes.get(at) {
                if b == b'%' {
                    let digits = bytes.get(at + 1..at + 3);
                    let Some(value) = digits.and_then(hex_pair) else {
                        return Err("the request path has an invalid percent escape: `%` must be followed by two hex digits");
                    };
                    escaped_char(value)?;
                    if digits.is_some_and(|d| d.iter().any(u8::is_ascii_lowercase)) {
                        return Err("the request path has a percent escape with lowercase hex digits: write `%3F`, not `%3f`");
                    }
                    piece.push(char::from(value));
                    at += 3;
                } else {
                    unescaped_char(b)?;
                    piece.push(char::from(b));
                    at += 1;
                }
            }
            if piece == "." || piece == ".." {
                return Err(
                    "the request path has a `.` or `..` segment: send the path it stands for",
                );
            }
            if i > 0 {
                decoded.push('/');
            }
            decoded.push_str(&piece);
        }
        Ok(RequestPath(decoded))
    }
}

/// The characters a path segment may hold unescaped (RFC 3986 `pchar` without `%`).
fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b)
}

/// Whether an unescaped byte may stand in a canonical path segment.
fn unescaped_char(b: u8) -> Result<(), &'static str> {
    match b {
        _ if is_path_char(b) => Ok(()),
        b'\\' => Err("the request path has a backslash"),
        0x00..=0x20 | 0x7F => Err("the request path has a space or a control character"),
        0x80..=0xFF => Err("the request path has a non-ASCII byte: paths are printable ASCII"),
        _ => Err("the request path has a character that must be percent-encoded"),
    }
}

/// Whether a percent-decoded byte may stand in a canonical path segment.
fn escaped_char(b: u8) -> Result<(), &'static str> {
    match b {
        b'/' => Err("the request path has an encoded `/` (`%2F`): a segment cannot hold `/`"),
        b'%' => Err("the request path has an encoded `%` (`%25`): a resource cannot hold `%`"),
        b'\\' => Err("the request path has an encoded backslash (`%5C`)"),
        0x00..=0x20 | 0x7F => {
            Err("the request path has an encoded space or control character")
        }
        0x80..=0xFF => Err("the request path has an encoded non-ASCII byte: paths are printable ASCII"),
        _ if is_path_char(b) => Err("the request path escapes a character that needs no escape (`%2E` for `.`, `%41` for `A`, ...): send the character itself"),
        _ => Ok(()),
    }
}

/// The byte two hex digits (either case) stand for.
fn hex_pair(digits: &[u8]) -> Option<u8> {
    let digit = |d: u8| char::from(d).to_digit(16);
    match digits {
        [hi, lo] => Some(u8::try_from(digit(*hi)? * 16 + digit(*lo)?).ok()?),
        _ => None,
    }
}

/// The service made by [`HandoffLayer`].
#[derive(Clone, Debug)]
pub struct HandoffService<S> {
    inner: S,
    layer: HandoffLayer,
}

impl<S, B, R> Service<Request<B>> for HandoffService<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + From<Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    R: From<Bytes>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone that was driven to readiness serves this request.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            // The path first: nothing (the route function, the handler) sees a request whose
            // path is not canonical.
            match RequestPath::parse(parts.uri.path()) {
                Ok(path) => {
                    parts.extensions.insert(path);
                }
                Err(detail) => {
                    let claimed = envelope_header(&parts).ok();
                    let refusal = Refusal::layer(Reason::NonCanonicalPath, detail, claimed);
                    return Ok(rejection_response(layer.record(refusal).await));
                }
            }
            match layer.check(&parts, body).await {
                Ok((handoff, payload)) => {
                    parts.extensions.insert(handoff);
                    inner
                        .call(Request::from_parts(parts, B::from(payload)))
                        .await
                }
                Err(refusal) => Ok(rejection_response(layer.record(refusal).await)),
            }
        })
    }
}

/// The status a refusal gets: `400` for `non_canonical_path`, `408` for `timeout`, `413` for
/// `too_large`, `503` for `unavailable`, `401` for the other authentication failures
/// ([`Reason::is_authentication`]), `403` for the rest.
#[must_use]
pub fn status_for(reason: Reason) -> StatusCode {
    match reason {
        Reason::NonCanonicalPath => StatusCode::BAD_REQUEST,
        Reason::Timeout => StatusCode::REQUEST_TIMEOUT,
        Reason::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Reason::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        r if r.is_authentication() => StatusCode::UNAUTHORIZED,
        _ => StatusCode::FORBIDDEN,
    }
}

/// The response to a refused request: [`status_for`] the reason, and the body
/// `{"error":"handoff_rejected","reason":"<code>"}`, nothing more (the detail is in the audit
/// log, not in the answer to a possible attacker).
#[must_use]
pub fn rejection_response<R: From<Bytes>>(reason: Reason) -> Response<R> {
    let status = status_for(reason);
    let body = format!(
        r#"{{"error":"handoff_rejected","reason":"{}"}}"#,
        reason.as_str()
    );
    let mut response = Response::new(R::from(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Agent-Handoff"));
    }
    if status == StatusCode::REQUEST_TIMEOUT {
        // The rest of the body is not read: the connection cannot carry another request.
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The axum extractor for the handoff [`HandoffLayer`] verified:
/// `async fn handler(Handoff(handoff): Handoff) { handoff.sender() ... }`.
///
/// Without the layer in front of the handler there is no verified handoff, and extraction
/// fails with `500` (a server misconfiguration, never an unverified handoff).
#[derive(Clone, Debug)]
pub struct Handoff(pub VerifiedHandoff);

impl std::ops::Deref for Handoff {
    type Target = VerifiedHandoff;

    fn deref(&self) -> &VerifiedHandoff {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Handoff {
    type Rejection = MissingHandoff;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, MissingHandoff> {
        parts
            .extensions
            .get::<VerifiedHandoff>()
            .cloned()
            .map(Handoff)
            .ok_or(MissingHandoff)
    }
}

/// The [`Handoff`] extractor found no verified handoff: the route is not behind
/// [`HandoffLayer`]. Answers `500`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissingHandoff;

impl fmt::Display for MissingHandoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no verified handoff on this request: put the route behind `HandoffLayer`")
    }
}

impl std::error::Error for MissingHandoff {}

impl IntoResponse for MissingHandoff {
    fn into_response(self) -> AxumResponse {
        let mut response = AxumResponse::new(axum_core::body::Body::from(
            r#"{"error":"handoff_layer_missing"}"#,
        ));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

/// Client side: seals `envelope` over the exact bytes of `request`'s body and sets the
/// [`HANDOFF_HEADER`], replacing any already there. Any payload set on the builder is
/// replaced by the body.
///
/// The envelope's intent action must end with the request method in lowercase (`.post` for
/// a `POST`), as the receiving [`HandoffLayer`] requires; otherwise this fails with
/// [`Error::Build`] instead of sending a request the server would refuse.
///
/// Works with any body that is bytes (`Bytes`, `Vec<u8>`, `String`, `&'static [u8]`): send the
/// result with hyper, or convert it for reqwest with `reqwest::Request::try_from(request)`.
/// The body must not be changed afterwards: the server would refuse it with `payload_mismatch`.
///
/// ```
/// # use agent_handoff::*;
/// # let orchestrator = AgentIdentity::generate("spiffe://acme.example/orchestrator".parse()?);
/// # let planner = AgentIdentity::generate("spiffe://acme.example/agents/planner".parse()?);
/// # let executor = AgentIdentity::generate("spiffe://acme.example/agents/executor".parse()?);
/// # let grant = DelegationToken::root(&orchestrator).delegate_to(&planner.public())
/// #     .task("task-42".parse()?).allow("tickets.*", "project/alpha/*")?.sign()?;
/// let request = ::http::Request::post("http://127.0.0.1:8080/tickets/123/read")
///     .body(bytes::Bytes::from_static(b"{\"ticket\":123}"))?;
/// let request = agent_handoff::http_binding::seal_request(
///     request,
///     HandoffEnvelope::builder(&planner)
///         .to(executor.id())
///         .intent("tickets.read.post", "project/alpha/123")?
///         .chain([&grant]),
/// )?;
/// assert!(request.headers().contains_key(agent_handoff::http_binding::HANDOFF_HEADER));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn seal_request<B: AsRef<[u8]>>(
    mut request: Request<B>,
    envelope: EnvelopeBuilder<'_>,
) -> Result<Request<B>, Error> {
    let sealed = envelope.payload(request.body().as_ref()).seal()?;
    let method = request.method().as_str();
    let suffix = format!(".{}", method.to_ascii_lowercase());
    let action = sealed.claimed_intent().action();
    if method_action("", method).is_none() || !action.ends_with(&suffix) {
        return Err(Error::build(
            "handoff envelope",
            format!(
                "the intent action `{action}` does not name the request method `{method}`: over HTTP the action is the route's action and the method, as in `tickets.read{suffix}`"
            ),
        ));
    }
    let value = HeaderValue::from_str(sealed.as_str()).map_err(|_| {
        Error::build(
            "handoff envelope",
            "the compact envelope is not a valid header value",
        )
    })?;
    request.headers_mut().insert(HANDOFF_HEADER, value);
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths_decode_without_the_leading_slash() {
        for (raw, decoded) in [
            ("/", ""),
            ("/tickets/123/read", "tickets/123/read"),
            ("/project/alpha/x%3Fy", "project/alpha/x?y"),
            ("/a/%22%23%3C%3E%3F%5B%5D%5E%60%7B%7C%7D", "a/\"#<>?[]^`{|}"),
            ("/a/~-._!$&'()*+,;=:@", "a/~-._!$&'()*+,;=:@"),
            ("/a/...", "a/..."),
        ] {
            let path = RequestPath::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(path.as_str(), decoded, "{raw}");
        }
        assert_eq!(RequestPath::parse("/").unwrap().segments().count(), 0);
        let path = RequestPath::parse("/a/b%3Fc").unwrap();
        assert_eq!(path.segments().collect::<Vec<_>>(), ["a", "b?c"]);
    }

    #[test]
    fn every_other_path_is_refused_with_its_reason() {
        let empty = "the request path has an empty segment (`//`, or a trailing `/`)";
        let dots = "the request path has a `.` or `..` segment: send the path it stands for";
        let needless = "the request path escapes a character that needs no escape (`%2E` for `.`, `%41` for `A`, ...): send the character itself";
        let invalid = "the request path has an invalid percent escape: `%` must be followed by two hex digits";
        let control = "the request path has an encoded space or control character";
        let non_ascii = "the request path has an encoded non-ASCII byte: paths are printable ASCII";
        for (raw, why) in [
            ("", "the request path does not start with `/`"),
            ("*", "the request path does not start with `/`"),
            ("//", empty),
            ("/a//b", empty),
            ("/a/", empty),
            ("/.", dots),
            ("/a/./b", dots),
            ("/a/../b", dots),
            ("/a/%2e%2e/b", needless),
            ("/a/%2E%2E/b", needless),
            ("/a/.%2E/b", needless),
            ("/a/%41", needless),
            ("/a/..%2Fb", "the request path has an encoded `/` (`%2F`): a segment cannot hold `/`"),
            ("/a/..%2fb", "the request path has an encoded `/` (`%2F`): a segment cannot hold `/`"),
            ("/a/%25", "the request path has an encoded `%` (`%25`): a resource cannot hold `%`"),
            ("/a/%252F", "the request path has an encoded `%` (`%25`): a resource cannot hold `%`"),
            ("/a/%5C", "the request path has an encoded backslash (`%5C`)"),
            ("/a/%5c", "the request path has an encoded backslash (`%5C`)"),
            ("/a/%3f", "the request path has a percent escape with lowercase hex digits: write `%3F`, not `%3f`"),
            ("/a/%", invalid),
            ("/a/%3", invalid),
            ("/a/%zz", invalid),
            ("/a/%+1", invalid),
            ("/a/%00", control),
            ("/a/%20", control),
            ("/a/%0A", control),
            ("/a/%7F", control),
            ("/a/%C3%A9", non_ascii),
            ("/a/%FF", non_ascii),
            ("/a\\b", "the request path has a backslash"),
            ("/a b", "the request path has a space or a control character"),
            ("/a\tb", "the request path has a space or a control character"),
            ("/a\u{7f}", "the request path has a space or a control character"),
            ("/caf\u{e9}", "the request path has a non-ASCII byte: paths are printable ASCII"),
            ("/a\"b", "the request path has a character that must be percent-encoded"),
            ("/a{b}", "the request path has a character that must be percent-encoded"),
            ("/a?b", "the request path has a character that must be percent-encoded"),
        ] {
            assert_eq!(RequestPath::parse(raw), Err(why), "{raw:?}");
        }
    }

    #[test]
    fn the_method_is_appended_to_the_action() {
        assert_eq!(
            method_action("tickets.read", "POST").as_deref(),
            Some("tickets.read.post")
        );
        assert_eq!(
            method_action("a", "M-SEARCH").as_deref(),
            Some("a.m-search")
        );
        for method in ["", "get", "Get", "A.B", "A!", &"A".repeat(33)] {
            assert_eq!(method_action("a", method), None, "{method:?}");
        }
        assert_eq!(method_action(&"a".repeat(124), "POST"), None);
        assert!(method_action(&"a".repeat(123), "POST").is_some());
    }

    #[test]
    fn canonical_resources_follow_the_core_rule() {
        for ok in ["a", "project/alpha/x?y", &"a".repeat(512), "a/.../b"] {
            assert!(is_canonical_resource(ok), "{ok}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "a/./b",
            "a/../b",
            "a/%2F",
            "a\\b",
            "a*",
            "a b",
            "a/\u{e9}",
            &"a".repeat(513),
        ] {
            assert!(!is_canonical_resource(bad), "{bad}");
        }
    }
}
