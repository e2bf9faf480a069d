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

/// The 6-bit value of a base64url character (the caller has checked the alphabet).
fn b64url_value(b: u8) -> u8 {
    match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'-' => 62,
        _ => 63,
    }
}

/// Whether `text` is canonical base64url without padding, exactly as [`b64_decode`] decides,
/// without decoding it: the alphabet, a possible length, and zero trailing bits.
pub(crate) fn is_canonical_b64url(text: &str) -> bool {
    let bytes = text.as_bytes();
    if !all_b64url(bytes) {
        return false;
    }
    // The bits of the last character that fall beyond the last whole byte must be zero.
    let unused_bits_mask = match bytes.len() % 4 {
        0 => return true,
        1 => return false,
        2 => 0b1111,
        _ => 0b11,
    };
    bytes
        .last()
        .is_some_and(|&last| b64url_value(last) & unused_bits_mask == 0)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The allocation-free check agrees with decoding on every string of up to three
    /// characters over a sample alphabet, and on every possible last character of a key id.
    #[test]
    fn canonical_check_agrees_with_decoding() {
        let sample = b"AQRgw_-z09=+ .";
        let mut inputs: Vec<String> = vec![String::new()];
        for len in 1..=3 {
            let mut next = Vec::new();
            for prefix in inputs.iter().filter(|s| s.len() == len - 1) {
                for &c in sample {
                    next.push(format!("{prefix}{}", char::from(c)));
                }
            }
            inputs.extend(next);
        }
        let base = "A".repeat(42);
        for c in (0u8..=127).map(char::from) {
            inputs.push(format!("{base}{c}"));
            inputs.push(format!("{base}A{c}"));
            inputs.push(format!("{base}AA{c}"));
        }
        for input in &inputs {
            assert_eq!(
                is_canonical_b64url(input),
                b64_decode(input).is_some(),
                "{input:?}"
            );
        }
    }
}
