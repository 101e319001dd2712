//! PKCE (RFC 7636) as SPID uses it: `S256` only, verifiers of 43–128 unreserved characters.

use super::jose::b64url_encode;

/// Shortest verifier RFC 7636 §4.1 allows.
pub const MIN_VERIFIER_LEN: usize = 43;
/// Longest verifier RFC 7636 §4.1 allows.
pub const MAX_VERIFIER_LEN: usize = 128;

/// The `S256` challenge of `verifier`: base64url(SHA-256(ASCII(verifier))), no padding.
pub fn challenge_s256(verifier: &str) -> String {
    b64url_encode(&openssl::sha::sha256(verifier.as_bytes()))
}

/// True if `verifier` has 43–128 characters, all unreserved (`A-Z a-z 0-9 - . _ ~`).
pub fn valid_verifier(verifier: &str) -> bool {
    (MIN_VERIFIER_LEN..=MAX_VERIFIER_LEN).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// True if `verifier` is valid and its `S256` challenge is `challenge`.
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    valid_verifier(verifier) && challenge_s256(verifier) == challenge
}

/// True if `s` has at least 32 characters, all ASCII alphanumerics (SPID `state`/`nonce`).
pub fn strong_random_string(s: &str) -> bool {
    s.len() >= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        assert_eq!(
            challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifier_lengths() {
        assert!(!valid_verifier(&"a".repeat(42)));
        assert!(valid_verifier(&"a".repeat(43)));
        assert!(valid_verifier(&"a".repeat(128)));
        assert!(!valid_verifier(&"a".repeat(129)));
        assert!(!valid_verifier(&format!("{}+", "a".repeat(43))));
        assert!(!strong_random_string(&"a".repeat(31)));
        assert!(strong_random_string(&"a".repeat(32)));
        assert!(!strong_random_string(&format!("{}-", "a".repeat(32))));
    }
}
