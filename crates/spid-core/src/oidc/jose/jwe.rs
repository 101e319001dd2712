//! Compact JWE with RSA-OAEP(-256) and A128CBC-HS256 / A256CBC-HS512, and the nested
//! signed-then-encrypted JWT that SPID userinfo returns.

use super::jws::{alg_member, json_object};
use super::kept::Kept;
use super::{jk_err, sign_jws, verify_jws, JoseError, Jwk, Jwks, SigAlg, SigningKey};
use super::{DecryptionKey, JweAlg, JweEnc, JwsHeader};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A JWE protected header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JweHeader {
    /// Key-management algorithm.
    pub alg: String,
    /// Content-encryption algorithm.
    pub enc: String,
    /// Recipient key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Media type of the whole JWE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// Media type of the plaintext (`JWT` for a nested JWT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cty: Option<String>,
    /// Every other member.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Encrypters already built ([`Kept`]).
static ENCRYPTERS: Kept<dyn josekit::jwe::JweEncrypter> = Kept::new();

/// Encrypts `payload` to `recipient` (an RSA JWK whose `use`, if present, is `enc`).
/// The header carries `alg`, `enc`, the recipient's `kid`, and `cty` when given.
pub fn encrypt_jwe(
    payload: &[u8],
    recipient: &Jwk,
    alg: JweAlg,
    enc: JweEnc,
    cty: Option<&str>,
) -> Result<String, JoseError> {
    use josekit::jwe::{JweEncrypter, RSA_OAEP, RSA_OAEP_256};
    let encrypter = ENCRYPTERS.get(alg.name(), recipient, || {
        let jk = recipient
            .to_josekit()
            .map_err(|e| JoseError::Key(e.to_string()))?;
        // josekit refuses keys under 2048 bits and keys whose `use`/`alg` say otherwise.
        let key = |e: josekit::JoseError| JoseError::Key(jk_err(e));
        Ok(match alg {
            JweAlg::RsaOaep => {
                Box::new(RSA_OAEP.encrypter_from_jwk(&jk).map_err(key)?) as Box<dyn JweEncrypter>
            }
            JweAlg::RsaOaep256 => Box::new(RSA_OAEP_256.encrypter_from_jwk(&jk).map_err(key)?),
        })
    })?;
    let mut header = josekit::jwe::JweHeader::new();
    header.set_content_encryption(enc.name());
    if let Some(kid) = &recipient.kid {
        header.set_key_id(kid.clone());
    }
    if let Some(cty) = cty {
        header.set_content_type(cty);
    }
    josekit::jwe::serialize_compact(payload, &header, &*encrypter)
        .map_err(|e| JoseError::Crypto(jk_err(e)))
}

/// The JWE `enc` values josekit can produce: SPID's two CBC-HMAC encodings and the rest of
/// RFC 7518's, so a case can send a JWE genuinely encrypted with one SPID refuses.
const PRODUCIBLE_ENCS: [&str; 6] = [
    "A128CBC-HS256",
    "A192CBC-HS384",
    "A256CBC-HS512",
    "A128GCM",
    "A192GCM",
    "A256GCM",
];

/// Encrypts `payload` to `recipient` under exactly `header`: its `alg` picks the key
/// management (`RSA-OAEP`, `RSA-OAEP-256`, or `RSA1_5`, which SPID refuses), its `enc` the
/// content encryption, and every other member is protected as given. The JWE decrypts with
/// the recipient's key whatever the header names (the protected header is the content
/// encryption's additional data, so a header edited after encryption would be refused for its
/// tag by any reader). `AlgNotAllowed` / `EncNotAllowed`: the header names something that
/// cannot be produced.
pub fn encrypt_jwe_with_header(
    payload: &[u8],
    recipient: &Jwk,
    mut header: Map<String, Value>,
) -> Result<String, JoseError> {
    #[allow(deprecated)] // josekit marks RSA1_5 deprecated; producing one is the point here
    use josekit::jwe::{JweEncrypter, RSA1_5, RSA_OAEP, RSA_OAEP_256};
    let text = |k: &str| match header.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let (alg, enc) = (text("alg"), text("enc"));
    if !PRODUCIBLE_ENCS.contains(&enc.as_str()) {
        return Err(JoseError::EncNotAllowed(enc));
    }
    let jk = recipient
        .to_josekit()
        .map_err(|e| JoseError::Key(e.to_string()))?;
    let key = |e: josekit::JoseError| JoseError::Key(jk_err(e));
    #[allow(deprecated)]
    let encrypter: Box<dyn JweEncrypter> = match alg.as_str() {
        "RSA-OAEP" => Box::new(RSA_OAEP.encrypter_from_jwk(&jk).map_err(key)?),
        "RSA-OAEP-256" => Box::new(RSA_OAEP_256.encrypter_from_jwk(&jk).map_err(key)?),
        "RSA1_5" => Box::new(RSA1_5.encrypter_from_jwk(&jk).map_err(key)?),
        _ => return Err(JoseError::AlgNotAllowed(alg)),
    };
    // The encrypter writes `alg` itself.
    header.remove("alg");
    let header = josekit::jwe::JweHeader::from_map(header)
        .map_err(|e| JoseError::Malformed(format!("JWE header: {}", jk_err(e))))?;
    josekit::jwe::serialize_compact(payload, &header, &*encrypter)
        .map_err(|e| JoseError::Crypto(jk_err(e)))
}

fn classify_jwe_alg(alg: &str, allowed: &[JweAlg]) -> Result<JweAlg, JoseError> {
    if alg == "RSA1_5" {
        return Err(JoseError::Rsa15);
    }
    match JweAlg::from_name(alg) {
        Some(a) if allowed.contains(&a) => Ok(a),
        _ => Err(JoseError::AlgNotAllowed(alg.into())),
    }
}

/// Decrypts a compact JWE with `key` and returns its header and plaintext.
///
/// Refuses, before any decryption: malformed structure; `RSA1_5`; any `alg` outside
/// `allowed_algs` (`dir`, `A*KW`, `ECDH-ES*`, …); any `enc` outside `allowed_encs`; `crit` or
/// `zip`; a `kid` that is not `key`'s. Then any cryptographic failure is `DecryptionFailed`.
pub fn decrypt_jwe(
    token: &str,
    key: &DecryptionKey,
    allowed_algs: &[JweAlg],
    allowed_encs: &[JweEnc],
) -> Result<(JweHeader, Vec<u8>), JoseError> {
    use josekit::jwe::{RSA_OAEP, RSA_OAEP_256};
    let parts: Vec<&str> = token.split('.').collect();
    let header_part = match parts.as_slice() {
        [h, _, _, _, _] => *h,
        _ => {
            return Err(JoseError::Malformed(format!(
                "a compact JWE has 5 parts, this has {}",
                parts.len()
            )))
        }
    };
    let map = json_object(header_part, "JWE header")?;
    let alg = classify_jwe_alg(alg_member(&map)?, allowed_algs)?;
    let enc_name = match map.get("enc") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(JoseError::Malformed("enc is not a string".into())),
        None => return Err(JoseError::Malformed("no enc in header".into())),
    };
    match JweEnc::from_name(&enc_name) {
        Some(e) if allowed_encs.contains(&e) => {}
        _ => return Err(JoseError::EncNotAllowed(enc_name)),
    }
    for unsupported in ["crit", "zip"] {
        if map.contains_key(unsupported) {
            return Err(JoseError::UnsupportedHeader(unsupported.into()));
        }
    }
    let header: JweHeader = serde_json::from_value(Value::Object(map))
        .map_err(|e| JoseError::Malformed(format!("JWE header: {e}")))?;
    if let Some(kid) = &header.kid {
        if kid != key.kid() {
            return Err(JoseError::UnknownKid(kid.clone()));
        }
    }
    let slot = match alg {
        JweAlg::RsaOaep => 0,
        JweAlg::RsaOaep256 => 1,
    };
    let decrypter = key.decrypter(slot, || {
        let der = key.pkcs8_der()?;
        let built = match alg {
            JweAlg::RsaOaep => RSA_OAEP.decrypter_from_der(&der),
            JweAlg::RsaOaep256 => RSA_OAEP_256.decrypter_from_der(&der),
        }
        .map_err(|e| JoseError::Key(jk_err(e)))?;
        Ok(Box::new(built) as Box<dyn josekit::jwe::JweDecrypter>)
    })?;
    let (plaintext, _) = josekit::jwe::deserialize_compact(token, decrypter)
        .map_err(|_| JoseError::DecryptionFailed)?;
    Ok((header, plaintext))
}

/// Signs `claims` (inner header `typ: JWT`) and encrypts the JWS to `recipient` with outer
/// `cty: JWT`: the SPID userinfo response shape.
pub fn sign_and_encrypt(
    claims: &Value,
    signing_key: &SigningKey,
    sig_alg: SigAlg,
    recipient: &Jwk,
    alg: JweAlg,
    enc: JweEnc,
) -> Result<String, JoseError> {
    let inner = sign_jws(claims, signing_key, sig_alg, Some("JWT"))?;
    encrypt_jwe(inner.as_bytes(), recipient, alg, enc, Some("JWT"))
}

/// Decrypts a nested JWT with `key`, then verifies the inner JWS against `jwks`.
/// Both layers apply their own allow-lists; an outer `cty` other than `JWT` is malformed.
pub fn decrypt_and_verify(
    token: &str,
    key: &DecryptionKey,
    allowed_algs: &[JweAlg],
    allowed_encs: &[JweEnc],
    jwks: &Jwks,
    allowed_sig: &[SigAlg],
) -> Result<(JwsHeader, Value), JoseError> {
    let (outer, plaintext) = decrypt_jwe(token, key, allowed_algs, allowed_encs)?;
    if let Some(cty) = &outer.cty {
        if !cty.eq_ignore_ascii_case("JWT") {
            return Err(JoseError::Malformed(format!(
                "nested cty {cty}, expected JWT"
            )));
        }
    }
    let inner = String::from_utf8(plaintext)
        .map_err(|_| JoseError::Malformed("nested payload is not UTF-8".into()))?;
    verify_jws(&inner, jwks, allowed_sig)
}
