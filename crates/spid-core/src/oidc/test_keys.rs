//! RSA keys for tests, generated once per test binary (2048-bit generation is slow enough to
//! matter when every test makes its own).

use crate::oidc::jose::{DecryptionKey, Jwks, SigningKey};
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use std::sync::OnceLock;

const N: usize = 6;
static KEYS: [OnceLock<PKey<Private>>; N] = [const { OnceLock::new() }; N];

/// Test key number `i` (0..6), RSA 2048.
pub fn pkey(i: usize) -> PKey<Private> {
    KEYS[i]
        .get_or_init(|| {
            let rsa = Rsa::generate(2048).expect("rsa keygen");
            PKey::from_rsa(rsa).expect("pkey")
        })
        .clone()
}

/// PKCS#8 PEM of key `i`.
pub fn pem(i: usize) -> Vec<u8> {
    pkey(i).private_key_to_pem_pkcs8().expect("pem")
}

/// Key `i` as a signing key (kid = thumbprint).
pub fn signing(i: usize) -> SigningKey {
    SigningKey::from_pem(&pem(i)).expect("signing key")
}

/// Key `i` as a decryption key.
pub fn decryption(i: usize) -> DecryptionKey {
    DecryptionKey::from_pem(&pem(i)).expect("decryption key")
}

/// A JWKS holding the public half of signing key `i`.
pub fn jwks(i: usize) -> Jwks {
    Jwks::new(vec![signing(i).public_jwk().expect("jwk")])
}
