//! `inspect`: decode a token or envelope without keys, and show it as JSON marked
//! `"verified": false`. Nothing here checks a signature.

use std::io::Read as _;

use agent_handoff::{DelegationToken, Error, HandoffEnvelope, Reason, UnixTime};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Value};

use crate::args::InspectArgs;
use crate::escape::to_json_pretty;
use crate::{print_line, text_or_file, CliError, CliResult, MAX_INPUT};

/// The decoded JOSE header (already checked by the decoder, so it parses).
fn header_json(compact: &str) -> Value {
    compact
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}

/// One time claim as Unix seconds, RFC 3339, and a hint relative to the inspection time.
fn time_json(at: UnixTime, hint: String) -> Value {
    json!({ "unix": at.as_secs(), "rfc3339": at.to_rfc3339(), "hint": hint })
}

fn issued_hint(iat: UnixTime, now: UnixTime) -> String {
    if iat <= now {
        format!("issued {} s ago", now.since(iat))
    } else {
        format!("issued {} s in the future", iat.since(now))
    }
}

fn expiry_hint(exp: UnixTime, now: UnixTime) -> String {
    if exp <= now {
        format!("expired {} s ago", now.since(exp))
    } else {
        format!("valid for {} s", exp.since(now))
    }
}

fn not_before_hint(nbf: UnixTime, now: UnixTime) -> String {
    if nbf <= now {
        format!("valid since {} s ago", now.since(nbf))
    } else {
        format!("not valid for another {} s", nbf.since(now))
    }
}

/// A decoded delegation token. Field order is the output order.
#[derive(Serialize)]
struct TokenView {
    kind: &'static str,
    verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<usize>,
    header: Value,
    claims: Value,
    /// What a child token's `parent` claim must hold.
    hash: String,
    times: Value,
}

/// A decoded handoff envelope with its chain decoded too.
#[derive(Serialize)]
struct EnvelopeView {
    kind: &'static str,
    verified: bool,
    header: Value,
    claims: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<&'static str>,
    times: Value,
    chain: Vec<ChainEntry>,
}

/// A chain token inside an envelope: decoded, or why it could not be.
#[derive(Serialize)]
#[serde(untagged)]
enum ChainEntry {
    Token(Box<TokenView>),
    Undecodable {
        link: usize,
        verified: bool,
        error: String,
    },
}

fn token_view(token: &DelegationToken, now: UnixTime, link: Option<usize>) -> TokenView {
    let (iat, nbf, exp) = (
        token.claimed_issued_at(),
        token.claimed_not_before(),
        token.claimed_expiry(),
    );
    TokenView {
        kind: "delegation token",
        verified: false,
        link,
        header: header_json(token.as_str()),
        claims: token.claims_json(),
        hash: token.hash().to_b64(),
        times: json!({
            "iat": time_json(iat, issued_hint(iat, now)),
            "nbf": time_json(nbf, not_before_hint(nbf, now)),
            "exp": time_json(exp, expiry_hint(exp, now)),
        }),
    }
}

fn envelope_view(envelope: &HandoffEnvelope, now: UnixTime) -> EnvelopeView {
    let (iat, exp) = (envelope.claimed_issued_at(), envelope.claimed_expiry());
    let chain = envelope
        .claimed_chain()
        .iter()
        .enumerate()
        .map(|(i, compact)| match DelegationToken::decode(compact) {
            Ok(token) => ChainEntry::Token(Box::new(token_view(&token, now, Some(i)))),
            Err(e) => ChainEntry::Undecodable {
                link: i,
                verified: false,
                error: decode_problem(&e),
            },
        })
        .collect();
    let mut claims = envelope.claims_json();
    if let Some(obj) = claims.as_object_mut() {
        // The tokens are shown decoded under `chain` below; keep the claims readable.
        obj.insert(
            "chain".to_owned(),
            json!(format!(
                "{} token(s), decoded below",
                envelope.claimed_chain().len()
            )),
        );
    }
    EnvelopeView {
        kind: "handoff envelope",
        verified: false,
        header: header_json(envelope.as_str()),
        claims,
        mode: envelope.mode().map(|m| m.as_str()),
        times: json!({
            "iat": time_json(iat, issued_hint(iat, now)),
            "exp": time_json(exp, expiry_hint(exp, now)),
        }),
        chain,
    }
}

fn read_stdin() -> CliResult<String> {
    let mut text = String::new();
    std::io::stdin()
        .lock()
        .take(MAX_INPUT + 1)
        .read_to_string(&mut text)
        .map_err(|e| CliError::new(format!("cannot read standard input as UTF-8 text: {e}")))?;
    if text.len() as u64 > MAX_INPUT {
        return Err(CliError::new(format!(
            "standard input is larger than {MAX_INPUT} bytes: not a token or envelope"
        )));
    }
    Ok(text.trim().to_owned())
}

fn decode_problem(e: &Error) -> String {
    match e {
        Error::Decode { rejection, .. } => {
            format!("[{}] {}", rejection.reason(), rejection.detail())
        }
        other => other.to_string(),
    }
}

/// `handoff inspect`.
pub(crate) fn inspect(args: &InspectArgs) -> CliResult<()> {
    let text = if args.input == "-" {
        read_stdin()?
    } else {
        text_or_file("<INPUT>", &args.input)?
    };
    let now = args.now.map_or_else(UnixTime::now, UnixTime::from_secs);
    let value = match HandoffEnvelope::decode(&text) {
        Ok(envelope) => to_json_pretty(&envelope_view(&envelope, now)),
        Err(envelope_error) => match DelegationToken::decode(&text) {
            Ok(token) => to_json_pretty(&token_view(&token, now, None)),
            Err(token_error) => {
                // Report the attempt that got furthest: a wrong `typ` means "the other kind".
                let wrong_type = |e: &Error| matches!(e, Error::Decode { rejection, .. } if rejection.reason() == Reason::WrongType);
                let problem = if wrong_type(&token_error) && !wrong_type(&envelope_error) {
                    format!(
                        "not a valid handoff envelope: {}",
                        decode_problem(&envelope_error)
                    )
                } else if wrong_type(&envelope_error) && !wrong_type(&token_error) {
                    format!(
                        "not a valid delegation token: {}",
                        decode_problem(&token_error)
                    )
                } else {
                    format!(
                        "neither a handoff envelope ({}) nor a delegation token ({})",
                        decode_problem(&envelope_error),
                        decode_problem(&token_error)
                    )
                };
                return Err(CliError::new(format!(
                    "<INPUT>: {problem}; pass a compact JWS (`xxx.yyy.zzz`), `@file` or `-`"
                )));
            }
        },
    };
    let pretty = value.map_err(|e| CliError::new(format!("cannot encode the output: {e}")))?;
    print_line(&pretty)
}
