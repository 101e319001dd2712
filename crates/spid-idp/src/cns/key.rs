//! The test keys, loaded from `certs/cns/` and used through OpenSSL, so rcgen can sign with any
//! key size and hash (its ring backend signs with neither RSA-1024 nor SHA-1).

use super::CnsError;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;

/// An RSA test key: rcgen signs with it through [`rcgen::SigningKey`].
#[derive(Clone)]
pub struct TestKey {
    name: &'static str,
    pkey: PKey<Private>,
    /// PKCS#1 RSAPublicKey, what rcgen puts in the SubjectPublicKeyInfo bit string.
    public_pkcs1: Vec<u8>,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestKey({}, {} bits)", self.name, self.bits())
    }
}

impl TestKey {
    /// Loads the PKCS#8 PEM key `pem`, named `name` in errors.
    pub fn from_pem(name: &'static str, pem: &str) -> Result<TestKey, CnsError> {
        let pkey =
            PKey::private_key_from_pem(pem.as_bytes()).map_err(|e| CnsError::Key(name, e))?;
        let public_pkcs1 = pkey
            .rsa()
            .and_then(|r| r.public_key_to_der_pkcs1())
            .map_err(|e| CnsError::Key(name, e))?;
        Ok(TestKey {
            name,
            pkey,
            public_pkcs1,
        })
    }

    /// The key size in bits.
    pub fn bits(&self) -> u32 {
        self.pkey.bits()
    }

    /// The private key as PKCS#8 DER (what a TLS client presenting the card needs).
    pub fn pkcs8_der(&self) -> Result<Vec<u8>, CnsError> {
        Ok(self.pkey.private_key_to_pkcs8()?)
    }

    /// The PKCS#1 public key (the SubjectPublicKeyInfo's bit string, as hashed in OCSP key ids).
    pub fn public_pkcs1(&self) -> &[u8] {
        &self.public_pkcs1
    }

    /// Signs `msg` with RSA PKCS#1 v1.5 over `digest`.
    pub fn sign_with(&self, digest: MessageDigest, msg: &[u8]) -> Result<Vec<u8>, CnsError> {
        let mut s = Signer::new(digest, &self.pkey)?;
        s.update(msg)?;
        Ok(s.sign_to_vec()?)
    }
}

impl rcgen::PublicKeyData for TestKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public_pkcs1
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

impl rcgen::SigningKey for TestKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.sign_with(MessageDigest::sha256(), msg)
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// The committed test keys, by name.
pub(crate) fn load(name: &'static str) -> Result<TestKey, CnsError> {
    let pem = match name {
        "root" => include_str!("../../../../certs/cns/root.key.pem"),
        "infocert" => include_str!("../../../../certs/cns/infocert.key.pem"),
        "aruba" => include_str!("../../../../certs/cns/aruba.key.pem"),
        "regione" => include_str!("../../../../certs/cns/regione.key.pem"),
        "expired" => include_str!("../../../../certs/cns/expired.key.pem"),
        "foreign" => include_str!("../../../../certs/cns/foreign.key.pem"),
        "unknown" => include_str!("../../../../certs/cns/unknown.key.pem"),
        "ocsp" => include_str!("../../../../certs/cns/ocsp.key.pem"),
        "card" => include_str!("../../../../certs/cns/card.key.pem"),
        "card1024" => include_str!("../../../../certs/cns/card1024.key.pem"),
        _ => "",
    };
    TestKey::from_pem(name, pem)
}
