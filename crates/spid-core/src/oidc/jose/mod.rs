//! JOSE for SPID OpenID Connect, on top of `josekit`: JWK/JWKS, JWS (RS*/PS*), JWE
//! (RSA-OAEP*/A*CBC-HS*), nested JWS-in-JWE.
//!
//! The compact serialisation is parsed here, not by josekit, so every refusal is decided
//! before any key is touched and maps to its own [`JoseError`] variant. josekit only does
//! the cryptography (signature, key wrap, content encryption).
//!
//! Trust rules (SPID rules, "Cryptographic algorithms"):
//! - `alg: none`, `HS*` and JWE `RSA1_5` are always refused, whatever the allow-list says;
//! - the verification key is chosen only by `kid` from a JWKS the caller trusts; the header's
//!   `jwk`, `x5c`, `x5u` and `jku` are never used to find or build a key;
//! - a `crit` header (or JWE `zip`) is refused: no extension is understood.

mod jwe;
mod jwk;
mod jws;
mod kept;

pub use jwe::{
    decrypt_and_verify, decrypt_jwe, encrypt_jwe, encrypt_jwe_with_header, sign_and_encrypt,
    JweHeader,
};
pub use jwk::{DecryptionKey, Jwk, Jwks, KeyUse, SigningKey};
pub use jws::{check_time_claims, decode_unverified, sign_jws, sign_jws_with_header, verify_jws};
pub use jws::{verify_jwt, JwsHeader};

pub(crate) use jws::numeric_date;

pub use super::profile::Profile;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::fmt;

/// Why a JOSE object was refused or could not be produced. Each refusal has its own variant so
/// tests and reports can tell them apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    /// Not a well-formed compact JWS/JWE: wrong number of parts, bad base64url, header or
    /// payload not a JSON object, missing or non-string `alg`.
    #[error("malformed JOSE object: {0}")]
    Malformed(String),
    /// `alg: none` (any letter case): an unsigned token.
    #[error("unsigned token (alg none) refused")]
    AlgNone,
    /// An HMAC algorithm (`HS256`, `HS384`, `HS512`): refused, since with a public key as the
    /// HMAC secret it is the classic key-confusion attack.
    #[error("HMAC algorithm {0} refused")]
    AlgHmac(String),
    /// JWE `RSA1_5` (PKCS#1 v1.5 key transport, padding-oracle prone): refused.
    #[error("JWE key transport RSA1_5 refused")]
    Rsa15,
    /// An algorithm that is not in the caller's allow-list (or is unknown).
    #[error("algorithm {0} not allowed")]
    AlgNotAllowed(String),
    /// A JWE content encryption (`enc`) that is not in the allow-list.
    #[error("content encryption {0} not allowed")]
    EncNotAllowed(String),
    /// A header parameter this layer does not implement and must not ignore (`crit`, `zip`).
    #[error("unsupported header parameter {0}")]
    UnsupportedHeader(String),
    /// The JWS header has no `kid`; SPID requires it to select the key.
    #[error("no kid in header")]
    MissingKid,
    /// The `kid` is not in the trusted JWKS (or, for a JWE, is not the decryption key's).
    #[error("kid {0:?} not in the trusted key set")]
    UnknownKid(String),
    /// A key with that `kid` exists but cannot verify this token (wrong `kty`, `use`, `alg`, or
    /// shorter than 2048 bits).
    #[error("key {kid:?} unusable: {reason}")]
    UnusableKey {
        /// The `kid` from the header.
        kid: String,
        /// Why the key was not usable.
        reason: String,
    },
    /// The signature does not verify with the selected key.
    #[error("bad signature")]
    BadSignature,
    /// JWE decryption failed (wrong key, tampered ciphertext, tag or header).
    #[error("JWE decryption failed")]
    DecryptionFailed,
    /// `exp` is in the past (beyond the allowed skew).
    #[error("expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The time used for the check.
        now: i64,
    },
    /// `nbf` is in the future (beyond the allowed skew).
    #[error("not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: i64,
        /// The time used for the check.
        now: i64,
    },
    /// `iat` is in the future (beyond the allowed skew).
    #[error("issued in the future at {iat} (now {now})")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: i64,
        /// The time used for the check.
        now: i64,
    },
    /// A required claim is absent.
    #[error("missing claim {0}")]
    MissingClaim(String),
    /// A claim has the wrong JSON type or an impossible value.
    #[error("invalid claim {0}")]
    InvalidClaim(String),
    /// A local key could not be loaded or is not acceptable (bad PEM, not RSA, < 2048 bits).
    #[error("key error: {0}")]
    Key(String),
    /// The crypto library failed while producing a token (not a verdict on an input).
    #[error("crypto failure: {0}")]
    Crypto(String),
}

/// A JWS signature algorithm this layer can produce and verify: the SPID MUST set, the RSA-PSS
/// "recommended" ones, and ES256 (ECDSA on P-256), which CIE allows and SPID does not. Which
/// ones are *accepted* is the caller's allow-list, normally
/// [`Profile::accepted_signing_algs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SigAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (SPID MUST).
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512 (SPID MUST).
    RS512,
    /// RSASSA-PSS with SHA-256 (SPID recommended).
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512 (SPID recommended).
    PS512,
    /// ECDSA on P-256 with SHA-256 (CIE `JwkCie`; not SPID).
    ES256,
}

impl SigAlg {
    /// Every supported algorithm.
    pub const ALL: [SigAlg; 7] = [
        SigAlg::RS256,
        SigAlg::RS384,
        SigAlg::RS512,
        SigAlg::PS256,
        SigAlg::PS384,
        SigAlg::PS512,
        SigAlg::ES256,
    ];

    /// The RSA algorithms (those an RSA key signs with).
    pub const RSA: [SigAlg; 6] = [
        SigAlg::RS256,
        SigAlg::RS384,
        SigAlg::RS512,
        SigAlg::PS256,
        SigAlg::PS384,
        SigAlg::PS512,
    ];

    /// Whether the algorithm takes an EC key (kty `EC`).
    pub fn is_ec(self) -> bool {
        matches!(self, SigAlg::ES256)
    }

    /// The JOSE name (`RS256`, …).
    pub fn name(self) -> &'static str {
        match self {
            SigAlg::RS256 => "RS256",
            SigAlg::RS384 => "RS384",
            SigAlg::RS512 => "RS512",
            SigAlg::PS256 => "PS256",
            SigAlg::PS384 => "PS384",
            SigAlg::PS512 => "PS512",
            SigAlg::ES256 => "ES256",
        }
    }

    /// Parses a JOSE name exactly (case-sensitive, as RFC 7515 requires).
    pub fn from_name(s: &str) -> Option<SigAlg> {
        SigAlg::ALL.into_iter().find(|a| a.name() == s)
    }

    /// Size in bytes of the hash this algorithm uses (32, 48 or 64); `at_hash` uses the same.
    pub fn hash_len(self) -> usize {
        match self {
            SigAlg::RS256 | SigAlg::PS256 | SigAlg::ES256 => 32,
            SigAlg::RS384 | SigAlg::PS384 => 48,
            SigAlg::RS512 | SigAlg::PS512 => 64,
        }
    }
}

impl fmt::Display for SigAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A JWE key-management algorithm (SPID MUST set; `RSA1_5` deliberately absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum JweAlg {
    /// RSAES-OAEP with SHA-1 / MGF1-SHA-1.
    #[serde(rename = "RSA-OAEP")]
    RsaOaep,
    /// RSAES-OAEP with SHA-256 / MGF1-SHA-256.
    #[serde(rename = "RSA-OAEP-256")]
    RsaOaep256,
}

impl JweAlg {
    /// Every supported algorithm.
    pub const ALL: [JweAlg; 2] = [JweAlg::RsaOaep, JweAlg::RsaOaep256];

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            JweAlg::RsaOaep => "RSA-OAEP",
            JweAlg::RsaOaep256 => "RSA-OAEP-256",
        }
    }

    /// Parses a JOSE name exactly.
    pub fn from_name(s: &str) -> Option<JweAlg> {
        JweAlg::ALL.into_iter().find(|a| a.name() == s)
    }
}

impl fmt::Display for JweAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A JWE content-encryption algorithm (SPID MUST set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum JweEnc {
    /// AES-128-CBC with HMAC-SHA-256.
    #[serde(rename = "A128CBC-HS256")]
    A128CbcHs256,
    /// AES-256-CBC with HMAC-SHA-512.
    #[serde(rename = "A256CBC-HS512")]
    A256CbcHs512,
}

impl JweEnc {
    /// Every supported algorithm.
    pub const ALL: [JweEnc; 2] = [JweEnc::A128CbcHs256, JweEnc::A256CbcHs512];

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            JweEnc::A128CbcHs256 => "A128CBC-HS256",
            JweEnc::A256CbcHs512 => "A256CBC-HS512",
        }
    }

    /// Parses a JOSE name exactly.
    pub fn from_name(s: &str) -> Option<JweEnc> {
        JweEnc::ALL.into_iter().find(|a| a.name() == s)
    }
}

impl fmt::Display for JweEnc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// base64url without padding, as every JOSE part is encoded.
pub fn b64url_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict base64url decoding: no padding, no stray characters, canonical trailing bits.
pub fn b64url_decode(s: &str) -> Result<Vec<u8>, JoseError> {
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|e| JoseError::Malformed(format!("base64url: {e}")))
}

/// Maps a josekit error to a short string (its Debug form carries the anyhow chain).
fn jk_err(e: josekit::JoseError) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests;
