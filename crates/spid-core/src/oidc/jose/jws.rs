//! Compact JWS: signing with RS*/PS*, and strict verification against a trusted JWKS.

use super::jwk::JwkError;
use super::kept::Kept;
use super::{b64url_decode, b64url_encode, jk_err, JoseError, Jwk, Jwks, SigAlg, SigningKey};
use chrono::{DateTime, Duration, Utc};
use josekit::jws::{JwsSigner, JwsVerifier};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A JWS protected header. `alg` is kept as the raw string so refused values (`none`, `HS256`)
/// can be reported as they were; the members SPID uses are typed, the rest kept in `other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JwsHeader {
    /// Signature algorithm name.
    pub alg: String,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Media type of the whole JWS (`JWT`, `entity-statement+jwt`, `at+jwt`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// Media type of the payload (`JWT` when nested).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cty: Option<String>,
    /// Every other member (e.g. `x5c`, which is carried but never trusted).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl JwsHeader {
    /// `{"alg": alg, "kid": key.kid()}`.
    pub fn new(alg: SigAlg, key: &SigningKey) -> JwsHeader {
        JwsHeader {
            alg: alg.name().into(),
            kid: Some(key.kid().into()),
            typ: None,
            cty: None,
            other: Map::new(),
        }
    }

    /// The same header with `typ` set.
    pub fn with_typ(mut self, typ: impl Into<String>) -> JwsHeader {
        self.typ = Some(typ.into());
        self
    }

    /// True if `typ` is `expected`, compared as RFC 7515 says: case-insensitively, with an
    /// optional `application/` prefix.
    pub fn typ_is(&self, expected: &str) -> bool {
        let norm = |t: &str| {
            let t = t.trim().to_ascii_lowercase();
            t.strip_prefix("application/")
                .map(str::to_owned)
                .unwrap_or(t)
        };
        self.typ
            .as_deref()
            .is_some_and(|t| norm(t) == norm(expected))
    }

    /// The same header with `cty` set.
    pub fn with_cty(mut self, cty: impl Into<String>) -> JwsHeader {
        self.cty = Some(cty.into());
        self
    }
}

/// Signs `claims` as a compact JWS with header `{alg, kid: key.kid(), typ}`.
pub fn sign_jws(
    claims: &Value,
    key: &SigningKey,
    alg: SigAlg,
    typ: Option<&str>,
) -> Result<String, JoseError> {
    let mut header = JwsHeader::new(alg, key);
    header.typ = typ.map(str::to_owned);
    let payload = serde_json::to_vec(claims).map_err(|e| JoseError::Crypto(e.to_string()))?;
    sign_jws_with_header(&payload, key, &header)
}

/// Signs raw `payload` bytes with a caller-built header (its `alg` picks the algorithm; its
/// `kid` is used as is, even if absent, so negative test tokens can be produced).
pub fn sign_jws_with_header(
    payload: &[u8],
    key: &SigningKey,
    header: &JwsHeader,
) -> Result<String, JoseError> {
    let alg = SigAlg::from_name(&header.alg)
        .ok_or_else(|| JoseError::AlgNotAllowed(header.alg.clone()))?;
    let header_json = serde_json::to_vec(header).map_err(|e| JoseError::Crypto(e.to_string()))?;
    let signing_input = format!("{}.{}", b64url_encode(&header_json), b64url_encode(payload));
    let sig = key
        .signer(alg, || signer_for(alg, key))?
        .sign(signing_input.as_bytes())
        .map_err(|e| JoseError::Crypto(jk_err(e)))?;
    Ok(format!("{signing_input}.{}", b64url_encode(&sig)))
}

fn signer_for(alg: SigAlg, key: &SigningKey) -> Result<Box<dyn JwsSigner>, JoseError> {
    use josekit::jws::{ES256, PS256, PS384, PS512, RS256, RS384, RS512};
    let crypto = |e: josekit::JoseError| JoseError::Crypto(jk_err(e));
    // josekit's PSS loader wants PKCS#1 (it re-wraps it as an RSASSA-PSS PKCS#8 itself);
    // the PKCS#1 v1.5 loader takes a plain PKCS#8.
    Ok(match alg {
        SigAlg::RS256 => Box::new(RS256.signer_from_der(key.pkcs8_der()?).map_err(crypto)?),
        SigAlg::RS384 => Box::new(RS384.signer_from_der(key.pkcs8_der()?).map_err(crypto)?),
        SigAlg::RS512 => Box::new(RS512.signer_from_der(key.pkcs8_der()?).map_err(crypto)?),
        SigAlg::PS256 => Box::new(PS256.signer_from_der(key.pkcs1_der()?).map_err(crypto)?),
        SigAlg::PS384 => Box::new(PS384.signer_from_der(key.pkcs1_der()?).map_err(crypto)?),
        SigAlg::PS512 => Box::new(PS512.signer_from_der(key.pkcs1_der()?).map_err(crypto)?),
        SigAlg::ES256 => Box::new(ES256.signer_from_der(key.pkcs8_der()?).map_err(crypto)?),
    })
}

/// Verifiers already built ([`Kept`]).
static VERIFIERS: Kept<dyn JwsVerifier> = Kept::new();

fn verifier_for(alg: SigAlg, jwk: &Jwk) -> Result<Box<dyn JwsVerifier>, JwkError> {
    use josekit::jws::{ES256, PS256, PS384, PS512, RS256, RS384, RS512};
    if jwk.kty != if alg.is_ec() { "EC" } else { "RSA" } {
        return Err(JwkError::WrongKty {
            kty: jwk.kty.clone(),
            alg,
        });
    }
    // josekit checks `use`, `key_ops`, `alg` and the 2048-bit floor.
    let jk = jwk.to_josekit()?;
    Ok(match alg {
        SigAlg::RS256 => Box::new(RS256.verifier_from_jwk(&jk)?),
        SigAlg::RS384 => Box::new(RS384.verifier_from_jwk(&jk)?),
        SigAlg::RS512 => Box::new(RS512.verifier_from_jwk(&jk)?),
        SigAlg::PS256 => Box::new(PS256.verifier_from_jwk(&jk)?),
        SigAlg::PS384 => Box::new(PS384.verifier_from_jwk(&jk)?),
        SigAlg::PS512 => Box::new(PS512.verifier_from_jwk(&jk)?),
        SigAlg::ES256 => Box::new(ES256.verifier_from_jwk(&jk)?),
    })
}

/// The three parts of a compact JWS, still encoded.
struct Parts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
}

fn split_compact(token: &str) -> Result<Parts<'_>, JoseError> {
    let mut it = token.split('.');
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(header), Some(payload), Some(signature), None) => Ok(Parts {
            header,
            payload,
            signature,
        }),
        _ => Err(JoseError::Malformed(format!(
            "a compact JWS has 3 parts, this has {}",
            token.split('.').count()
        ))),
    }
}

/// Decodes a base64url part that must hold a JSON object.
pub(crate) fn json_object(part: &str, what: &str) -> Result<Map<String, Value>, JoseError> {
    let bytes = b64url_decode(part)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(JoseError::Malformed(format!("{what} is not a JSON object"))),
        Err(e) => Err(JoseError::Malformed(format!("{what}: {e}"))),
    }
}

/// The `alg` member as a string, or `Malformed`.
pub(crate) fn alg_member(header: &Map<String, Value>) -> Result<&str, JoseError> {
    match header.get("alg") {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(JoseError::Malformed("alg is not a string".into())),
        None => Err(JoseError::Malformed("no alg in header".into())),
    }
}

/// Decides an `alg` before any key is looked at. `none` and `HS*` are refused even if the
/// caller's list somehow named them (it cannot: [`SigAlg`] has no such values).
fn classify_alg(alg: &str, allowed: &[SigAlg]) -> Result<SigAlg, JoseError> {
    if alg.eq_ignore_ascii_case("none") {
        return Err(JoseError::AlgNone);
    }
    // `get` rather than slicing: a multi-byte character must not panic here.
    if alg.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("HS")) {
        return Err(JoseError::AlgHmac(alg.into()));
    }
    match SigAlg::from_name(alg) {
        Some(a) if allowed.contains(&a) => Ok(a),
        _ => Err(JoseError::AlgNotAllowed(alg.into())),
    }
}

fn parse_header(map: Map<String, Value>) -> Result<JwsHeader, JoseError> {
    serde_json::from_value(Value::Object(map))
        .map_err(|e| JoseError::Malformed(format!("JWS header: {e}")))
}

/// Verifies a compact JWS against `jwks` and returns its header and JSON claims.
///
/// Refuses, in this order: malformed structure; `alg: none`; `HS*`; an `alg` outside
/// `allowed`; a `crit` header; a missing `kid`; a `kid` absent from `jwks`; keys under that
/// `kid` that cannot verify this `alg`; a bad signature; a payload that is not a JSON object.
/// Time claims are not checked here: see [`verify_jwt`] / [`check_time_claims`].
pub fn verify_jws(
    token: &str,
    jwks: &Jwks,
    allowed: &[SigAlg],
) -> Result<(JwsHeader, Value), JoseError> {
    let parts = split_compact(token)?;
    let header_map = json_object(parts.header, "JWS header")?;
    let alg = classify_alg(alg_member(&header_map)?, allowed)?;
    if header_map.contains_key("crit") {
        return Err(JoseError::UnsupportedHeader("crit".into()));
    }
    let header = parse_header(header_map)?;
    let kid = header.kid.clone().ok_or(JoseError::MissingKid)?;
    let signature = b64url_decode(parts.signature)?;
    let signing_input_len = parts.header.len() + 1 + parts.payload.len();
    let signing_input = token
        .get(..signing_input_len)
        .ok_or_else(|| JoseError::Malformed("truncated".into()))?;

    let candidates: Vec<&Jwk> = jwks.by_kid(&kid).collect();
    if candidates.is_empty() {
        return Err(JoseError::UnknownKid(kid));
    }
    let mut usable = false;
    let mut reasons = Vec::new();
    for jwk in candidates {
        match VERIFIERS.get(alg.name(), jwk, || verifier_for(alg, jwk)) {
            Ok(v) => {
                usable = true;
                if v.verify(signing_input.as_bytes(), &signature).is_ok() {
                    let claims = json_object(parts.payload, "JWS payload")?;
                    return Ok((header, Value::Object(claims)));
                }
            }
            Err(reason) => reasons.push(reason.to_string()),
        }
    }
    if usable {
        Err(JoseError::BadSignature)
    } else {
        Err(JoseError::UnusableKey {
            kid,
            reason: reasons.join("; "),
        })
    }
}

/// [`verify_jws`] then [`check_time_claims`] with `exp` required.
pub fn verify_jwt(
    token: &str,
    jwks: &Jwks,
    allowed: &[SigAlg],
    now: DateTime<Utc>,
    skew: Duration,
) -> Result<(JwsHeader, Value), JoseError> {
    let (header, claims) = verify_jws(token, jwks, allowed)?;
    check_time_claims(&claims, now, skew, true)?;
    Ok((header, claims))
}

/// Decodes a compact JWS **without verifying anything**. Only for reading routing data
/// before trust exists (e.g. the `jwks` of a self-signed entity configuration, which is then
/// verified with [`verify_jws`]). Never act on the result otherwise.
pub fn decode_unverified(token: &str) -> Result<(JwsHeader, Value), JoseError> {
    let parts = split_compact(token)?;
    let header_map = json_object(parts.header, "JWS header")?;
    alg_member(&header_map)?;
    let header = parse_header(header_map)?;
    let claims = json_object(parts.payload, "JWS payload")?;
    Ok((header, Value::Object(claims)))
}

/// Reads a NumericDate claim: absent → `None`; a JSON number (fractions truncated) → seconds;
/// anything else → `InvalidClaim`.
pub(crate) fn numeric_date(claims: &Value, name: &str) -> Result<Option<i64>, JoseError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(Some(i))
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f.trunc() as i64)),
                    _ => Err(JoseError::InvalidClaim(name.into())),
                }
            }
        }
        Some(_) => Err(JoseError::InvalidClaim(name.into())),
    }
}

/// Checks `exp`, `nbf` and `iat` against `now` with `skew` tolerance either way.
/// `exp` must be present when `require_exp`; `nbf`/`iat` are checked when present.
pub fn check_time_claims(
    claims: &Value,
    now: DateTime<Utc>,
    skew: Duration,
    require_exp: bool,
) -> Result<(), JoseError> {
    let now_s = now.timestamp();
    let skew_s = skew.num_seconds().abs();
    match numeric_date(claims, "exp")? {
        Some(exp) if now_s >= exp.saturating_add(skew_s) => {
            return Err(JoseError::Expired { exp, now: now_s })
        }
        None if require_exp => return Err(JoseError::MissingClaim("exp".into())),
        _ => {}
    }
    if let Some(nbf) = numeric_date(claims, "nbf")? {
        if now_s.saturating_add(skew_s) < nbf {
            return Err(JoseError::NotYetValid { nbf, now: now_s });
        }
    }
    if let Some(iat) = numeric_date(claims, "iat")? {
        if iat > now_s.saturating_add(skew_s) {
            return Err(JoseError::IssuedInFuture { iat, now: now_s });
        }
    }
    Ok(())
}
