//! Canonical base64url without padding (SPEC section 1): the only encoding on the wire.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

pub(crate) fn is_b64url_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Whether every byte is in the base64url alphabet. Branch-free over the whole input (inputs
/// are bounded by the size limits) so that it vectorizes: it runs over every byte of every
/// token and envelope.
pub(crate) fn all_b64url(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| {
        ok & (b.is_ascii_alphanumeric() | (b == b'-') | (b == b'_'))
    })
}

/// Encodes bytes as base64url without padding.
pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes canonical base64url without padding: rejects padding, whitespace, characters
/// outside the alphabet, impossible lengths and non-zero trailing bits.
pub(crate) fn b64_decode(text: &str) -> Option<Vec<u8>> {
    // The engine already refuses padding and non-zero trailing bits; the explicit alphabet
    // check keeps that true whatever the engine's configuration becomes.
    if !all_b64url(text.as_bytes()) {
        return None;
    }
    URL_SAFE_NO_PAD.decode(text).ok()
}
