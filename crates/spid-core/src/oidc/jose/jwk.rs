//! Public JWKs and JWK sets (what entity configurations and metadata publish), and the two
//! private RSA key roles: signing and decryption.

use super::{b64url_decode, b64url_encode, JoseError, SigAlg};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use josekit::jwe::JweDecrypter;
use josekit::jws::JwsSigner;
use openssl::pkey::{PKey, Private, Public};
use openssl::x509::X509;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::{Arc, OnceLock};

/// The JWK `use` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyUse {
    /// `sig`: signature verification.
    Sig,
    /// `enc`: encryption.
    Enc,
}

impl KeyUse {
    /// The JWK value (`sig` or `enc`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUse::Sig => "sig",
            KeyUse::Enc => "enc",
        }
    }
}

/// A JSON Web Key as published (RFC 7517). RSA members are typed; anything else (EC members,
/// `key_ops`, `x5t`, unknown members) is kept in `other` so a JWKS round-trips unchanged and
/// keys of types this layer does not use still parse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type (`RSA`, `EC`, …).
    pub kty: String,
    /// Key id; for keys built here, the RFC 7638 thumbprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Intended use (`sig` / `enc`).
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// Algorithm the key is restricted to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// RSA modulus, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// X.509 chain, standard base64 DER, leaf first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5c: Option<Vec<String>>,
    /// Every other member.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Members that make a JWK private; a published JWK must have none of them.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

impl Jwk {
    /// A public JWK from a public key (RSA, or EC on P-256), `kid` = RFC 7638 thumbprint.
    pub fn from_public_key(key: &PKey<Public>) -> Result<Jwk, JoseError> {
        if let Ok(ec) = key.ec_key() {
            return Jwk::from_p256(&ec);
        }
        let rsa = key
            .rsa()
            .map_err(|_| JoseError::Key("neither an RSA nor an EC key".into()))?;
        let mut jwk = Jwk {
            kty: "RSA".into(),
            kid: None,
            key_use: None,
            alg: None,
            n: Some(b64url_encode(&rsa.n().to_vec())),
            e: Some(b64url_encode(&rsa.e().to_vec())),
            x5c: None,
            other: Map::new(),
        };
        jwk.kid = Some(jwk.thumbprint()?);
        Ok(jwk)
    }

    /// A public EC JWK (`crv` P-256, `x`, `y`) from a P-256 key.
    fn from_p256<T: openssl::pkey::HasPublic>(
        ec: &openssl::ec::EcKeyRef<T>,
    ) -> Result<Jwk, JoseError> {
        let err = |e: openssl::error::ErrorStack| JoseError::Key(e.to_string());
        let group = ec.group();
        if group.curve_name() != Some(openssl::nid::Nid::X9_62_PRIME256V1) {
            return Err(JoseError::Key("EC keys must be on P-256".into()));
        }
        let mut ctx = openssl::bn::BigNumContext::new().map_err(err)?;
        let (mut x, mut y) = (
            openssl::bn::BigNum::new().map_err(err)?,
            openssl::bn::BigNum::new().map_err(err)?,
        );
        ec.public_key()
            .affine_coordinates(group, &mut x, &mut y, &mut ctx)
            .map_err(err)?;
        let coord = |n: &openssl::bn::BigNum| n.to_vec_padded(32).map(|b| b64url_encode(&b));
        let mut other = Map::new();
        other.insert("crv".into(), Value::String("P-256".into()));
        other.insert("x".into(), Value::String(coord(&x).map_err(err)?));
        other.insert("y".into(), Value::String(coord(&y).map_err(err)?));
        let mut jwk = Jwk {
            kty: "EC".into(),
            kid: None,
            key_use: None,
            alg: None,
            n: None,
            e: None,
            x5c: None,
            other,
        };
        jwk.kid = Some(jwk.thumbprint()?);
        Ok(jwk)
    }

    /// A public RSA JWK from a PEM public key (`PUBLIC KEY` or `RSA PUBLIC KEY`).
    pub fn from_public_key_pem(pem: &[u8]) -> Result<Jwk, JoseError> {
        let key = PKey::public_key_from_pem(pem)
            .or_else(|_| openssl::rsa::Rsa::public_key_from_pem_pkcs1(pem).and_then(PKey::from_rsa))
            .map_err(|e| JoseError::Key(format!("public key PEM: {e}")))?;
        Jwk::from_public_key(&key)
    }

    /// The public RSA JWK of a PEM private key (PKCS#8; PKCS#1 accepted), `kid` = thumbprint,
    /// no `use` (see [`SigningKey::public_jwk`] / [`DecryptionKey::public_jwk`] for that).
    pub fn from_key_pair_pem(pem: &[u8]) -> Result<Jwk, JoseError> {
        let key = RsaPrivate::from_pem(pem)?;
        Jwk::from_public_key(&public_of(&key.key)?)
    }

    /// A public RSA JWK from a PEM certificate; `x5c` carries that certificate, so peers that
    /// expect it (check-op request objects do) find it, while `kid` stays the key thumbprint.
    pub fn from_certificate_pem(pem: &[u8]) -> Result<Jwk, JoseError> {
        let cert =
            X509::from_pem(pem).map_err(|e| JoseError::Key(format!("certificate PEM: {e}")))?;
        let key = cert
            .public_key()
            .map_err(|e| JoseError::Key(format!("certificate key: {e}")))?;
        let der = cert
            .to_der()
            .map_err(|e| JoseError::Key(format!("certificate DER: {e}")))?;
        let mut jwk = Jwk::from_public_key(&key)?;
        jwk.x5c = Some(vec![STANDARD.encode(der)]);
        Ok(jwk)
    }

    /// The same key with `use` set.
    pub fn with_use(mut self, key_use: KeyUse) -> Jwk {
        self.key_use = Some(key_use.as_str().into());
        self
    }

    /// The same key with `kid` replaced.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Jwk {
        self.kid = Some(kid.into());
        self
    }

    /// RFC 7638 thumbprint (SHA-256, base64url) over the required members, in lexicographic
    /// order with no whitespace. RSA: `e`, `kty`, `n`; EC: `crv`, `kty`, `x`, `y`.
    pub fn thumbprint(&self) -> Result<String, JoseError> {
        let member = |name: &str, v: Option<&str>| -> Result<String, JoseError> {
            let v = v.ok_or_else(|| JoseError::Key(format!("JWK without {name}")))?;
            // serde_json quotes/escapes exactly as RFC 7638 requires (RFC 7159 strings).
            serde_json::to_string(v).map_err(|e| JoseError::Key(e.to_string()))
        };
        let other_str = |name: &str| self.other.get(name).and_then(Value::as_str);
        let canonical = match self.kty.as_str() {
            "RSA" => format!(
                r#"{{"e":{},"kty":"RSA","n":{}}}"#,
                member("e", self.e.as_deref())?,
                member("n", self.n.as_deref())?
            ),
            "EC" => format!(
                r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
                member("crv", other_str("crv"))?,
                member("x", other_str("x"))?,
                member("y", other_str("y"))?
            ),
            other => return Err(JoseError::Key(format!("no thumbprint for kty {other}"))),
        };
        Ok(b64url_encode(&openssl::sha::sha256(canonical.as_bytes())))
    }

    /// True if the JWK carries private members (`d`, `p`, …): such a JWK must never be published.
    pub fn has_private_members(&self) -> bool {
        PRIVATE_MEMBERS.iter().any(|m| self.other.contains_key(*m))
    }

    /// The RSA modulus size in bits, if this is a decodable RSA JWK.
    pub fn rsa_bits(&self) -> Option<usize> {
        let n = b64url_decode(self.n.as_deref()?).ok()?;
        let first = n.iter().position(|b| *b != 0)?;
        let lead = n.get(first).copied()?;
        Some((n.len() - first) * 8 - lead.leading_zeros() as usize)
    }

    /// The josekit form, for handing to its verifiers/encrypters.
    pub(crate) fn to_josekit(&self) -> Result<josekit::jwk::Jwk, JwkError> {
        let map = match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(JwkError::NotAnObject),
            Err(e) => return Err(e.into()),
        };
        Ok(josekit::jwk::Jwk::from_map(map)?)
    }
}

/// Why a public JWK cannot be used for an operation (the reason in
/// [`JoseError::UnusableKey`] and [`JoseError::Key`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum JwkError {
    /// The key type cannot do the algorithm.
    #[error("kty {kty} cannot verify {alg}")]
    WrongKty {
        /// The JWK's `kty`.
        kty: String,
        /// The algorithm asked for.
        alg: SigAlg,
    },
    /// The JWK does not serialise to a JSON object.
    #[error("JWK is not an object")]
    NotAnObject,
    /// The JWK does not serialise at all.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// josekit refuses the key (`use`, `key_ops`, `alg`, the 2048-bit floor, bad members).
    #[error(transparent)]
    Josekit(#[from] josekit::JoseError),
}

/// A JWK set (`{"keys": [...]}`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
    /// Any other member of the set object.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Jwks {
    /// A set of the given keys.
    pub fn new(keys: Vec<Jwk>) -> Jwks {
        Jwks {
            keys,
            other: Map::new(),
        }
    }

    /// Every key whose `kid` is `kid`.
    pub fn by_kid<'a>(&'a self, kid: &'a str) -> impl Iterator<Item = &'a Jwk> + 'a {
        self.keys
            .iter()
            .filter(move |k| k.kid.as_deref() == Some(kid))
    }

    /// The set as a JSON value (for embedding in claims such as an entity statement's `jwks`).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The set as compact JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a JWKS from JSON text.
    pub fn from_json(s: &str) -> Result<Jwks, JoseError> {
        serde_json::from_str(s).map_err(|e| JoseError::Malformed(format!("JWKS: {e}")))
    }
}

/// The RSA key material behind [`SigningKey`] and [`DecryptionKey`].
#[derive(Clone)]
struct RsaPrivate {
    key: PKey<Private>,
    kid: String,
    handles: Arc<Handles>,
}

/// josekit's signers and decrypters for one key, each built on first use and kept: josekit
/// builds them only from an encoded key, and encoding then decoding an RSA key costs more
/// than the signature itself. Clones of a key share them (the `kid` is not part of them).
#[derive(Default)]
struct Handles {
    signers: [OnceLock<Box<dyn JwsSigner>>; SigAlg::ALL.len()],
    decrypters: [OnceLock<Box<dyn JweDecrypter>>; 2],
}

/// The handle in `cell`, built by `build` if it is not there yet.
fn cached<T: ?Sized>(
    cell: &OnceLock<Box<T>>,
    build: impl FnOnce() -> Result<Box<T>, JoseError>,
) -> Result<&T, JoseError> {
    if let Some(h) = cell.get() {
        return Ok(h);
    }
    let built = build()?;
    Ok(cell.get_or_init(|| built))
}

impl RsaPrivate {
    fn from_pem(pem: &[u8]) -> Result<RsaPrivate, JoseError> {
        // Accepts PKCS#8 (`PRIVATE KEY`) and, as a convenience, PKCS#1 (`RSA PRIVATE KEY`).
        let key = PKey::private_key_from_pem(pem)
            .map_err(|e| JoseError::Key(format!("private key PEM: {e}")))?;
        RsaPrivate::from_pkey(key)
    }

    fn from_pkey(key: PKey<Private>) -> Result<RsaPrivate, JoseError> {
        let rsa = key
            .rsa()
            .map_err(|_| JoseError::Key("not an RSA key".into()))?;
        if rsa.size() * 8 < 2048 {
            return Err(JoseError::Key("RSA key shorter than 2048 bits".into()));
        }
        let jwk = Jwk::from_public_key(&public_of(&key)?)?;
        let kid = jwk.kid.unwrap_or_default();
        Ok(RsaPrivate {
            key,
            kid,
            handles: Arc::default(),
        })
    }

    fn public_jwk(&self, key_use: KeyUse) -> Result<Jwk, JoseError> {
        Ok(Jwk::from_public_key(&public_of(&self.key)?)?
            .with_kid(self.kid.clone())
            .with_use(key_use))
    }

    fn pkcs8_der(&self) -> Result<Vec<u8>, JoseError> {
        self.key
            .private_key_to_pkcs8()
            .map_err(|e| JoseError::Crypto(e.to_string()))
    }

    fn pkcs1_der(&self) -> Result<Vec<u8>, JoseError> {
        self.key
            .rsa()
            .and_then(|r| r.private_key_to_der())
            .map_err(|e| JoseError::Crypto(e.to_string()))
    }
}

/// The public half, from the key's components (RSA `n`/`e`, the EC point): a DER round trip
/// would go through OpenSSL 3's decoder framework, which costs more than a signature.
fn public_of(key: &PKey<Private>) -> Result<PKey<Public>, JoseError> {
    let err = |e: openssl::error::ErrorStack| JoseError::Key(e.to_string());
    if let Ok(rsa) = key.rsa() {
        let public = openssl::rsa::Rsa::from_public_components(
            rsa.n().to_owned().map_err(err)?,
            rsa.e().to_owned().map_err(err)?,
        )
        .map_err(err)?;
        return PKey::from_rsa(public).map_err(err);
    }
    let ec = key
        .ec_key()
        .map_err(|_| JoseError::Key("neither an RSA nor an EC key".into()))?;
    let public = openssl::ec::EcKey::from_public_key(ec.group(), ec.public_key()).map_err(err)?;
    PKey::from_ec_key(public).map_err(err)
}

/// An RSA private key used to sign JWS. Its `kid` defaults to the RFC 7638 thumbprint.
#[derive(Clone)]
pub struct SigningKey(RsaPrivate);

impl SigningKey {
    /// Loads a PEM private key (PKCS#8; PKCS#1 also accepted). RSA, at least 2048 bits.
    pub fn from_pem(pem: &[u8]) -> Result<SigningKey, JoseError> {
        RsaPrivate::from_pem(pem).map(SigningKey)
    }

    /// Wraps an openssl key. RSA, at least 2048 bits.
    pub fn from_pkey(key: PKey<Private>) -> Result<SigningKey, JoseError> {
        RsaPrivate::from_pkey(key).map(SigningKey)
    }

    /// Wraps an EC private key on P-256 (it signs ES256 only, which CIE allows and SPID
    /// does not).
    pub fn from_ec_pkey(key: PKey<Private>) -> Result<SigningKey, JoseError> {
        let ec = key
            .ec_key()
            .map_err(|_| JoseError::Key("not an EC key".into()))?;
        let kid = Jwk::from_p256(&ec)?.kid.unwrap_or_default();
        Ok(SigningKey(RsaPrivate {
            key,
            kid,
            handles: Arc::default(),
        }))
    }

    /// A fresh EC P-256 key.
    pub fn generate_p256() -> Result<SigningKey, JoseError> {
        let err = |e: openssl::error::ErrorStack| JoseError::Key(e.to_string());
        let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
            .map_err(err)?;
        let ec = openssl::ec::EcKey::generate(&group).map_err(err)?;
        SigningKey::from_ec_pkey(PKey::from_ec_key(ec).map_err(err)?)
    }

    /// The same key under another `kid` (the default is the thumbprint).
    pub fn with_kid(mut self, kid: impl Into<String>) -> SigningKey {
        self.0.kid = kid.into();
        self
    }

    /// The `kid` put in JWS headers.
    pub fn kid(&self) -> &str {
        &self.0.kid
    }

    /// The public JWK to publish (`use: sig`, same `kid`).
    pub fn public_jwk(&self) -> Result<Jwk, JoseError> {
        self.0.public_jwk(KeyUse::Sig)
    }

    /// The underlying openssl key.
    pub fn pkey(&self) -> &PKey<Private> {
        &self.0.key
    }

    pub(crate) fn pkcs8_der(&self) -> Result<Vec<u8>, JoseError> {
        self.0.pkcs8_der()
    }

    pub(crate) fn pkcs1_der(&self) -> Result<Vec<u8>, JoseError> {
        self.0.pkcs1_der()
    }

    /// This key's josekit signer for `alg`, built by `build` the first time.
    pub(crate) fn signer(
        &self,
        alg: SigAlg,
        build: impl FnOnce() -> Result<Box<dyn JwsSigner>, JoseError>,
    ) -> Result<&dyn JwsSigner, JoseError> {
        cached(&self.0.handles.signers[alg as usize], build)
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("SigningKey")
            .field("kid", &self.0.kid)
            .finish()
    }
}

/// An RSA private key used to decrypt JWE (e.g. the RP's userinfo encryption key).
#[derive(Clone)]
pub struct DecryptionKey(RsaPrivate);

impl DecryptionKey {
    /// Loads a PEM private key (PKCS#8; PKCS#1 also accepted). RSA, at least 2048 bits.
    pub fn from_pem(pem: &[u8]) -> Result<DecryptionKey, JoseError> {
        RsaPrivate::from_pem(pem).map(DecryptionKey)
    }

    /// Wraps an openssl key. RSA, at least 2048 bits.
    pub fn from_pkey(key: PKey<Private>) -> Result<DecryptionKey, JoseError> {
        RsaPrivate::from_pkey(key).map(DecryptionKey)
    }

    /// The same key under another `kid`.
    pub fn with_kid(mut self, kid: impl Into<String>) -> DecryptionKey {
        self.0.kid = kid.into();
        self
    }

    /// The `kid` expected in JWE headers.
    pub fn kid(&self) -> &str {
        &self.0.kid
    }

    /// The public JWK to publish (`use: enc`, same `kid`).
    pub fn public_jwk(&self) -> Result<Jwk, JoseError> {
        self.0.public_jwk(KeyUse::Enc)
    }

    pub(crate) fn pkcs8_der(&self) -> Result<Vec<u8>, JoseError> {
        self.0.pkcs8_der()
    }

    /// This key's josekit decrypter for key-management algorithm `slot` (0: RSA-OAEP,
    /// 1: RSA-OAEP-256), built by `build` the first time.
    pub(crate) fn decrypter(
        &self,
        slot: usize,
        build: impl FnOnce() -> Result<Box<dyn JweDecrypter>, JoseError>,
    ) -> Result<&dyn JweDecrypter, JoseError> {
        cached(&self.0.handles.decrypters[slot], build)
    }
}

impl std::fmt::Debug for DecryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptionKey")
            .field("kid", &self.0.kid)
            .finish()
    }
}
