//! What a verifier is asked to verify: [`VerifyRequest`].

use crate::grant::Intent;
use crate::policy::RequestContext;

/// The context of a request that names none: no attributes.
static EMPTY_CONTEXT: RequestContext = RequestContext::empty();

/// One verification's input: the envelope, the payload, and what the caller knows about the
/// request (SPEC section 6). Made with [`VerifyRequest::new`] and the setters below, and given
/// to [`Verifier::verify_request`](crate::Verifier::verify_request); the common case, an
/// envelope, a payload and a context, is [`Verifier::verify`](crate::Verifier::verify).
///
/// The struct is `#[non_exhaustive]`: later versions add inputs (each optional, with a setter),
/// and code that builds requests with [`new`](VerifyRequest::new) and the setters keeps
/// compiling. Custom [`Verifier`](crate::Verifier)s read the public fields.
///
/// ```
/// use agent_handoff::verify::VerifyRequest;
/// use agent_handoff::{Intent, RequestContext};
/// # let (wire, body) = ("", b"");
/// let ctx = RequestContext::new().with("environment", "prod");
/// // The endpoint performs exactly this intent: an envelope for any other is refused.
/// let required = Intent::new("tickets.read", "project/alpha/123")?;
/// let request = VerifyRequest::new(wire, body)
///     .context(&ctx)
///     .required_intent(&required);
/// assert_eq!(request.required_intent, Some(&required));
/// // verifier.verify_request(&request)?
/// # Ok::<(), agent_handoff::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct VerifyRequest<'a> {
    /// The compact envelope, as received.
    pub envelope: &'a str,
    /// The payload bytes the envelope's digest must cover.
    pub payload: &'a [u8],
    /// The caller's facts about the request, for the policy (default: none).
    pub context: &'a RequestContext,
    /// The intent the endpoint performs, when a transport binding knows it (SPEC section 6
    /// step 4b). See [`required_intent`](VerifyRequest::required_intent).
    pub required_intent: Option<&'a Intent>,
    /// The route's own action, when a binding extended it into the required action. See
    /// [`route_action`](VerifyRequest::route_action).
    pub route_action: Option<&'a str>,
}

impl<'a> VerifyRequest<'a> {
    /// A request to verify `envelope` over `payload`, with an empty context, no required
    /// intent and no route action.
    #[must_use]
    pub fn new(envelope: &'a str, payload: &'a [u8]) -> VerifyRequest<'a> {
        VerifyRequest {
            envelope,
            payload,
            context: &EMPTY_CONTEXT,
            required_intent: None,
            route_action: None,
        }
    }

    /// The caller's facts about the request (environment, tenant, ...), which the policy
    /// reads.
    #[must_use]
    pub fn context(mut self, context: &'a RequestContext) -> VerifyRequest<'a> {
        self.context = context;
        self
    }

    /// Requires the envelope's intent to name exactly this action and resource: the verifier
    /// refuses any other with `intent_not_granted`, right after the envelope's signature,
    /// audience and time window are checked and before the chain is (SPEC section 6 step
    /// 4b). A transport binding sets it from the endpoint the request arrived at (the HTTP
    /// binding derives it from the route and the method), so a captured envelope cannot be
    /// used on another endpoint. The intent's arguments are not compared: they are checked
    /// against the chain's limits. [`Intent::new`] refuses patterns, so the required intent
    /// is always concrete.
    #[must_use]
    pub fn required_intent(mut self, intent: &'a Intent) -> VerifyRequest<'a> {
        self.required_intent = Some(intent);
        self
    }

    /// Names the route's own action when a binding extends it into the required action (the
    /// HTTP binding requires `tickets.read.post` for the route action `tickets.read`), so
    /// that policies judge the action as the route names it too:
    /// [`PolicyRequest::actions`](crate::policy::PolicyRequest::actions) then yields both,
    /// and a rule or tier written for `tickets.read` applies to the request.
    ///
    /// It is used only when the verified intent's action is exactly this action, `.`, and one
    /// more segment; otherwise it is ignored, so it can never make a policy see an action the
    /// envelope does not name by whole segments.
    #[must_use]
    pub fn route_action(mut self, action: &'a str) -> VerifyRequest<'a> {
        self.route_action = Some(action);
        self
    }
}
