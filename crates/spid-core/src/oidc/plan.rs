//! The plan shape for JSON and JWT messages: the same stages as a SAML fault plan. The honest
//! message is built first; the plan then edits it at named stages:
//!
//! - `pre_sign`: claim edits the signature covers ([`JsonEdits`]);
//! - `sign`: whose key, which `alg`, which `kid` ([`SignEdits`]);
//! - `post_sign`: what breaks after signing ([`PostSignEdits`]);
//! - `encrypt`: to whom, or not at all, and header rewrites ([`EncryptEdits`]);
//! - `raw`: the serialised token replaced by other bytes;
//! - `transport`: the HTTP answer replaced ([`Transport`]).
//!
//! Unsigned JSON messages (a token response, an introspection answer, the parameters of an
//! authorization response) have `edit` and `transport` only ([`JsonPlan`]). An edit that finds
//! no target (removing, shifting or appending to an absent claim) is a [`PlanMiss`], never a
//! silently honest message.

use super::jose::{
    b64url_decode, b64url_encode, encrypt_jwe, encrypt_jwe_with_header, sign_jws_with_header,
    JoseError, JweAlg, JweEnc, Jwk, JwsHeader, SigAlg, SigningKey,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// An edit of a plan that could not be carried out: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{stage}: {reason}")]
pub struct PlanMiss {
    /// The stage as named in case files, e.g. `plan.id_token.pre_sign`.
    pub stage: String,
    /// What missed.
    pub reason: String,
}

impl PlanMiss {
    fn new(stage: &str, reason: impl Into<String>) -> PlanMiss {
        PlanMiss {
            stage: stage.to_string(),
            reason: reason.into(),
        }
    }

    /// The same miss, its stage prefixed with the message's name (`plan.id_token`).
    pub fn within(mut self, message: &str) -> PlanMiss {
        self.stage = format!("{message}.{}", self.stage);
        self
    }
}

/// Edits of a JSON object (claims, a header, form fields), applied in this order: `remove`,
/// `set`, `append`, `shift`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JsonEdits {
    /// Members to leave out (each must be there).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    /// Members to set to a value (added when absent).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, Value>,
    /// A value to add to a member: a string becomes `[string, value]`, an array grows.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub append: BTreeMap<String, Value>,
    /// Seconds to add to an integer member (`iat`, `exp`, …; negative to backdate).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub shift: BTreeMap<String, i64>,
}

impl JsonEdits {
    /// No edit at all.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty()
            && self.set.is_empty()
            && self.append.is_empty()
            && self.shift.is_empty()
    }

    /// Applies the edits to `obj`; `value` turns a value of the case file into the one to
    /// write (placeholders). `stage` names the stage in a miss.
    pub fn apply_with(
        &self,
        obj: &mut Map<String, Value>,
        stage: &str,
        value: impl Fn(&Value) -> Value,
    ) -> Result<(), PlanMiss> {
        for k in &self.remove {
            if obj.remove(k).is_none() {
                return Err(PlanMiss::new(stage, format!("remove {k}: no such member")));
            }
        }
        for (k, v) in &self.set {
            obj.insert(k.clone(), value(v));
        }
        for (k, v) in &self.append {
            let v = value(v);
            match obj.get_mut(k) {
                Some(Value::Array(a)) => a.push(v),
                Some(s @ Value::String(_)) => *s = json!([s.clone(), v]),
                Some(_) => {
                    return Err(PlanMiss::new(
                        stage,
                        format!("append {k}: neither a string nor an array"),
                    ))
                }
                None => return Err(PlanMiss::new(stage, format!("append {k}: no such member"))),
            }
        }
        for (k, by) in &self.shift {
            match obj.get(k).and_then(Value::as_i64) {
                Some(n) => {
                    obj.insert(k.clone(), json!(n + by));
                }
                None => {
                    return Err(PlanMiss::new(
                        stage,
                        format!("shift {k}: no such integer member"),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Applies the edits with the case file's values as they are.
    pub fn apply(&self, obj: &mut Map<String, Value>, stage: &str) -> Result<(), PlanMiss> {
        self.apply_with(obj, stage, Value::clone)
    }

    /// Applies the edits to a JSON value that must be an object.
    pub fn apply_value(&self, v: &mut Value, stage: &str) -> Result<(), PlanMiss> {
        if self.is_empty() {
            return Ok(());
        }
        match v.as_object_mut() {
            Some(obj) => self.apply(obj, stage),
            None => Err(PlanMiss::new(stage, "the message is not a JSON object")),
        }
    }

    /// Applies the edits to form fields or query parameters (a set field replaces every
    /// value of that name; a non-string value is written as JSON).
    pub fn apply_pairs(
        &self,
        pairs: &mut Vec<(String, String)>,
        stage: &str,
        value: impl Fn(&Value) -> Value,
    ) -> Result<(), PlanMiss> {
        if !self.append.is_empty() || !self.shift.is_empty() {
            return Err(PlanMiss::new(stage, "fields take remove and set only"));
        }
        for k in &self.remove {
            if !pairs.iter().any(|(n, _)| n == k) {
                return Err(PlanMiss::new(stage, format!("remove {k}: no such field")));
            }
        }
        pairs.retain(|(k, _)| !self.remove.contains(k) && !self.set.contains_key(k));
        for (k, v) in &self.set {
            let v = match value(v) {
                Value::String(s) => s,
                other => other.to_string(),
            };
            pairs.push((k.clone(), v));
        }
        Ok(())
    }
}

/// Whose key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyChoice {
    /// The signer's registered key.
    #[default]
    Own,
    /// A key the verifier's trust source does not hold, under the same `kid`.
    Foreign,
    /// The signer's EC P-256 key, published beside its RSA key where the profile allows EC
    /// keys (CIE): the honest `alg` becomes ES256 and the `kid` that key's. A signer without
    /// one (SPID: RSA only) makes it a plan miss.
    Ec,
}

/// How a JWT is signed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignEdits {
    /// Whose key.
    pub key: KeyChoice,
    /// `none` (empty signature), `HS256` (HMAC keyed with the signer's public JWK: the
    /// algorithm-confusion attack), or a signing algorithm name; default the honest one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// The header `kid` (default the key's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Entity configurations: publish the signing key as the statement's own `jwks`, so the
    /// statement is self-consistent but its keys are not the ones the anchor registered.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub publish_key: bool,
}

impl SignEdits {
    /// The honest signing.
    pub fn is_honest(&self) -> bool {
        *self == SignEdits::default()
    }
}

/// What breaks after signing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostSignEdits {
    /// Flip one character of the signature.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub corrupt_signature: bool,
    /// Claim edits after signing: the payload is re-encoded, the signature kept (broken).
    #[serde(skip_serializing_if = "JsonEdits::is_empty")]
    pub claims: JsonEdits,
}

impl PostSignEdits {
    /// Nothing after signing.
    pub fn is_empty(&self) -> bool {
        !self.corrupt_signature && self.claims.is_empty()
    }
}

/// To whom the signed JWT is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recipient {
    /// The recipient's published encryption key.
    #[default]
    Published,
    /// A key the recipient does not hold.
    Foreign,
}

/// How a nested JWT (userinfo) is encrypted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptEdits {
    /// Send the signed JWS only, not encrypted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skip: bool,
    /// To whom.
    pub recipient: Recipient,
    /// Edits of the JWE protected header (e.g. `alg = "RSA1_5"`), encrypted under
    /// ([`EncryptEdits::encrypt`]).
    #[serde(skip_serializing_if = "JsonEdits::is_empty")]
    pub header: JsonEdits,
}

impl EncryptEdits {
    /// The honest encryption.
    pub fn is_honest(&self) -> bool {
        *self == EncryptEdits::default()
    }

    /// Encrypts `payload` (a signed JWT) to `recipient` with `alg` and `enc` (header `cty: JWT`
    /// and the recipient's `kid`), then the header edits: the JWE is encrypted anew under the
    /// edited header, so it decrypts with the recipient's key and says exactly what it is
    /// (`alg = "RSA1_5"` is an RSA1_5 key wrap, `enc = "A128GCM"` AES-GCM content). A header
    /// that names what cannot be produced (an unknown `alg` or `enc`) is only a label on the
    /// honest JWE: nobody can decrypt that one, which is what such a case is about.
    pub fn encrypt(
        &self,
        payload: &[u8],
        recipient: &Jwk,
        alg: JweAlg,
        enc: JweEnc,
        stage: &str,
    ) -> Result<String, EncryptError> {
        let honest = encrypt_jwe(payload, recipient, alg, enc, Some("JWT"))?;
        if self.header.is_empty() {
            return Ok(honest);
        }
        let (head, rest) = honest
            .split_once('.')
            .ok_or_else(|| PlanMiss::new(stage, "not a compact JWE"))?;
        let mut header: Value = b64url_decode(head)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| PlanMiss::new(stage, "the JWE header is not JSON"))?;
        self.header.apply_value(&mut header, stage)?;
        let Value::Object(map) = &header else {
            return Err(PlanMiss::new(stage, "the edited JWE header is not an object").into());
        };
        match encrypt_jwe_with_header(payload, recipient, map.clone()) {
            Ok(jwe) => Ok(jwe),
            Err(JoseError::AlgNotAllowed(_) | JoseError::EncNotAllowed(_)) => Ok(format!(
                "{}.{rest}",
                b64url_encode(header.to_string().as_bytes())
            )),
            Err(e) => Err(e.into()),
        }
    }
}

/// The HTTP answer an endpoint gives instead of its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transport {
    /// Status code.
    pub status: u16,
    /// `Content-Type` (default `application/json` when the body is JSON, else `text/plain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Body (default empty).
    #[serde(default)]
    pub body: String,
}

impl Transport {
    /// The content type to send.
    pub fn content_type(&self) -> &str {
        match &self.content_type {
            Some(t) => t,
            None if serde_json::from_str::<Value>(&self.body).is_ok() => "application/json",
            None => "text/plain",
        }
    }
}

/// The plan for a signed (and maybe encrypted) JWT.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtPlan {
    /// Claim edits before signing.
    #[serde(skip_serializing_if = "JsonEdits::is_empty")]
    pub pre_sign: JsonEdits,
    /// Signing.
    #[serde(skip_serializing_if = "SignEdits::is_honest")]
    pub sign: SignEdits,
    /// After signing.
    #[serde(skip_serializing_if = "PostSignEdits::is_empty")]
    pub post_sign: PostSignEdits,
    /// Encryption (messages that are encrypted only).
    #[serde(skip_serializing_if = "EncryptEdits::is_honest")]
    pub encrypt: EncryptEdits,
    /// The serialised token replaced by these bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// The HTTP answer replaced (messages that are a whole answer only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
}

impl JwtPlan {
    /// No edit at all.
    pub fn is_empty(&self) -> bool {
        *self == JwtPlan::default()
    }

    /// Builds the JWT from the honest `claims` and `header`: `pre_sign`, `sign` (with `own`
    /// or `foreign`), `post_sign` and `raw` (encryption and transport are the caller's, who
    /// knows the recipient and the answer). `value` expands placeholders in set values.
    pub fn sign(
        &self,
        claims: &Value,
        header: &JwsHeader,
        own: &SigningKey,
        foreign: &SigningKey,
        value: impl Fn(&Value) -> Value,
    ) -> Result<String, SignError> {
        self.sign_with_ec(claims, header, own, foreign, None, value)
    }

    /// [`JwtPlan::sign`] for a signer that may also hold an EC P-256 key `ec` (what
    /// [`KeyChoice::Ec`] signs with, ES256).
    pub fn sign_with_ec(
        &self,
        claims: &Value,
        header: &JwsHeader,
        own: &SigningKey,
        foreign: &SigningKey,
        ec: Option<&SigningKey>,
        value: impl Fn(&Value) -> Value,
    ) -> Result<String, SignError> {
        let mut claims = claims.clone();
        if !self.pre_sign.is_empty() {
            let obj = claims
                .as_object_mut()
                .ok_or_else(|| PlanMiss::new("pre_sign", "the claims are not a JSON object"))?;
            self.pre_sign.apply_with(obj, "pre_sign", &value)?;
        }
        let mut header = header.clone();
        let key = match self.sign.key {
            KeyChoice::Own => own,
            KeyChoice::Foreign => foreign,
            KeyChoice::Ec => {
                header.alg = SigAlg::ES256.name().into();
                ec.ok_or_else(|| {
                    PlanMiss::new("sign.key", "ec: this signer has no EC key (RSA only)")
                })?
            }
        };
        header.kid = Some(
            self.sign
                .kid
                .clone()
                .unwrap_or_else(|| key.kid().to_string()),
        );
        let payload = serde_json::to_vec(&claims).map_err(|e| JoseError::Crypto(e.to_string()))?;
        let mut jwt = match self.sign.alg.as_deref() {
            None => sign_jws_with_header(&payload, key, &header)?,
            Some(alg) if SigAlg::from_name(alg).is_some() => {
                header.alg = alg.to_string();
                sign_jws_with_header(&payload, key, &header)?
            }
            Some(alg) => forge(&payload, &header, alg, key)?,
        };
        if !self.post_sign.claims.is_empty() {
            let mut parts = jwt.splitn(3, '.');
            let (h, _, s) = (parts.next(), parts.next(), parts.next());
            let mut edited = claims.clone();
            if let Some(obj) = edited.as_object_mut() {
                self.post_sign
                    .claims
                    .apply_with(obj, "post_sign.claims", &value)?;
            }
            jwt = format!(
                "{}.{}.{}",
                h.unwrap_or_default(),
                b64url_encode(edited.to_string().as_bytes()),
                s.unwrap_or_default()
            );
        }
        if self.post_sign.corrupt_signature {
            jwt = corrupt_signature(&jwt);
        }
        Ok(self.raw.clone().unwrap_or(jwt))
    }

    /// Checks what can be checked before any message exists: stages this message does not
    /// have are refused (`encrypted`: it is encrypted; `answer`: it is a whole HTTP answer).
    pub fn check(&self, encrypted: bool, answer: bool) -> Result<(), StageRefused> {
        if !encrypted && !self.encrypt.is_honest() {
            return Err(StageRefused::NotEncrypted);
        }
        if !answer && self.transport.is_some() {
            return Err(StageRefused::NotAnAnswer);
        }
        Ok(())
    }
}

/// A stage the message does not have, refused by [`JwtPlan::check`] before any message
/// exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StageRefused {
    /// `encrypt` edits for a message that is not encrypted.
    #[error("encrypt: this message is not encrypted")]
    NotEncrypted,
    /// A `transport` replacement for a message that travels inside another answer.
    #[error("transport: this message travels inside another answer; edit that one")]
    NotAnAnswer,
}

/// The plan for an unsigned JSON message or a set of parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JsonPlan {
    /// Member edits.
    #[serde(skip_serializing_if = "JsonEdits::is_empty")]
    pub edit: JsonEdits,
    /// The HTTP answer replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
}

impl JsonPlan {
    /// No edit at all.
    pub fn is_empty(&self) -> bool {
        *self == JsonPlan::default()
    }
}

/// Why a planned JWT could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// An edit missed its target.
    #[error(transparent)]
    Miss(#[from] PlanMiss),
    /// Signing itself failed.
    #[error("signing failed: {0}")]
    Jose(#[from] JoseError),
}

/// Why [`EncryptEdits::encrypt`] produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum EncryptError {
    /// A header edit missed its target.
    #[error(transparent)]
    Miss(#[from] PlanMiss),
    /// Encryption itself failed.
    #[error("encryption failed: {0}")]
    Jose(#[from] JoseError),
}

/// One character of the signature flipped.
pub fn corrupt_signature(jws: &str) -> String {
    let mut chars: Vec<char> = jws.chars().collect();
    let i = chars.len().saturating_sub(10);
    if let Some(c) = chars.get_mut(i) {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    chars.into_iter().collect()
}

/// A JWS whose header names an `alg` we never sign with: `HS256` is an HMAC keyed with the
/// public JWK of `key` (algorithm confusion); anything else (`none`) has an empty signature.
fn forge(
    payload: &[u8],
    header: &JwsHeader,
    alg: &str,
    key: &SigningKey,
) -> Result<String, JoseError> {
    let mut header = header.clone();
    header.alg = alg.to_string();
    let head = serde_json::to_vec(&header).map_err(|e| JoseError::Crypto(e.to_string()))?;
    let input = format!("{}.{}", b64url_encode(&head), b64url_encode(payload));
    let crypto = |e: openssl::error::ErrorStack| JoseError::Crypto(e.to_string());
    let sig = if alg == "HS256" {
        let secret =
            serde_json::to_vec(&key.public_jwk()?).map_err(|e| JoseError::Crypto(e.to_string()))?;
        let pkey = openssl::pkey::PKey::hmac(&secret).map_err(crypto)?;
        let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey)
            .map_err(crypto)?;
        signer
            .sign_oneshot_to_vec(input.as_bytes())
            .map_err(crypto)?
    } else {
        Vec::new()
    };
    Ok(format!("{input}.{}", b64url_encode(&sig)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_header_edit_is_encrypted_under_and_an_unproducible_one_is_a_label() {
        use crate::oidc::jose::{decrypt_jwe, JweHeader};
        use crate::oidc::test_keys::decryption;
        let key = decryption(2);
        let to = key.public_jwk().expect("jwk");
        let header_of = |jwe: &str| -> JweHeader {
            let head = jwe.split('.').next().unwrap_or_default();
            serde_json::from_slice(&b64url_decode(head).expect("b64")).expect("header")
        };
        let edits = |k: &str, v: &str| EncryptEdits {
            header: JsonEdits {
                set: [(k.to_string(), json!(v))].into(),
                ..JsonEdits::default()
            },
            ..EncryptEdits::default()
        };
        let (alg, enc) = (JweAlg::RsaOaep256, JweEnc::A128CbcHs256);
        // Honest: decrypts with SPID's lists.
        let honest = EncryptEdits::default()
            .encrypt(b"x", &to, alg, enc, "s")
            .expect("honest");
        assert!(decrypt_jwe(&honest, &key, &[alg], &[enc]).is_ok());
        // A member SPID allows, edited: the JWE decrypts under it.
        let cty = edits("cty", "json")
            .encrypt(b"x", &to, alg, enc, "s")
            .expect("cty");
        let (h, pt) = decrypt_jwe(&cty, &key, &[alg], &[enc]).expect("decrypts");
        assert_eq!((h.cty.as_deref(), pt.as_slice()), (Some("json"), &b"x"[..]));
        // RSA1_5 and A128GCM are what they say (the isolation test decrypts them).
        for (k, v) in [("alg", "RSA1_5"), ("enc", "A128GCM")] {
            let jwe = edits(k, v)
                .encrypt(b"x", &to, alg, enc, "s")
                .expect("genuine");
            let h = header_of(&jwe);
            assert_eq!(if k == "alg" { h.alg } else { h.enc }, v);
            assert_eq!(jwe.split('.').count(), 5);
        }
        // Nothing produces alg `none`: the honest JWE carries the label.
        let label = edits("alg", "none")
            .encrypt(b"x", &to, alg, enc, "s")
            .expect("label");
        assert_eq!(header_of(&label).alg, "none");
        // Removing an absent member is a miss.
        let miss = EncryptEdits {
            header: JsonEdits {
                remove: vec!["zip".into()],
                ..JsonEdits::default()
            },
            ..EncryptEdits::default()
        };
        assert!(matches!(
            miss.encrypt(b"x", &to, alg, enc, "plan.userinfo.encrypt.header"),
            Err(EncryptError::Miss(_))
        ));
    }

    #[test]
    fn edits_apply_in_order_and_misses_are_errors() {
        let mut o = obj(json!({"a": 1, "aud": "x", "iat": 10}));
        let e = JsonEdits {
            remove: vec!["a".into()],
            set: [("b".to_string(), json!(true))].into(),
            append: [("aud".to_string(), json!("y"))].into(),
            shift: [("iat".to_string(), -3)].into(),
        };
        e.apply(&mut o, "pre_sign").unwrap();
        assert_eq!(
            Value::Object(o),
            json!({"aud": ["x", "y"], "b": true, "iat": 7})
        );
        for bad in [
            JsonEdits {
                remove: vec!["zz".into()],
                ..Default::default()
            },
            JsonEdits {
                shift: [("aud".to_string(), 1)].into(),
                ..Default::default()
            },
            JsonEdits {
                append: [("zz".to_string(), json!(1))].into(),
                ..Default::default()
            },
        ] {
            let err = bad
                .apply(&mut obj(json!({"aud": "x"})), "pre_sign")
                .unwrap_err();
            assert_eq!(err.stage, "pre_sign", "{err}");
        }
    }

    #[test]
    fn pairs_refuse_a_missing_field() {
        let mut p = vec![("a".to_string(), "1".to_string())];
        let e = JsonEdits {
            remove: vec!["b".into()],
            ..Default::default()
        };
        assert!(e.apply_pairs(&mut p, "edit", Value::clone).is_err());
        let e = JsonEdits {
            remove: vec!["a".into()],
            set: [("c".to_string(), json!(2))].into(),
            ..Default::default()
        };
        e.apply_pairs(&mut p, "edit", Value::clone).unwrap();
        assert_eq!(p, vec![("c".to_string(), "2".to_string())]);
    }

    #[test]
    fn check_refuses_stages_the_message_lacks() {
        let p = JwtPlan {
            encrypt: EncryptEdits {
                skip: true,
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(p.check(false, false).is_err());
        assert!(p.check(true, false).is_ok());
        let p = JwtPlan {
            transport: Some(Transport {
                status: 500,
                content_type: None,
                body: String::new(),
            }),
            ..Default::default()
        };
        assert!(p.check(false, false).is_err());
        assert!(p.check(false, true).is_ok());
    }

    #[test]
    fn the_ec_key_signs_es256_and_is_a_miss_without_one() {
        use crate::oidc::jose::{verify_jws, Jwks};
        use crate::oidc::test_keys::signing;
        let (own, foreign) = (signing(0), signing(1));
        let ec = SigningKey::generate_p256().unwrap();
        let header = JwsHeader::new(SigAlg::RS256, &own).with_typ("JWT");
        let plan = JwtPlan {
            sign: SignEdits {
                key: KeyChoice::Ec,
                ..Default::default()
            },
            ..Default::default()
        };
        let claims = json!({"sub": "a"});
        let jws = plan
            .sign_with_ec(&claims, &header, &own, &foreign, Some(&ec), Value::clone)
            .unwrap();
        let jwks = Jwks::new(vec![ec.public_jwk().unwrap()]);
        let (h, c) = verify_jws(&jws, &jwks, &[SigAlg::ES256]).unwrap();
        assert_eq!((h.alg.as_str(), c), ("ES256", claims.clone()));
        let miss = plan.sign(&claims, &header, &own, &foreign, Value::clone);
        assert!(matches!(miss, Err(SignError::Miss(m)) if m.stage == "sign.key"));
    }

    #[test]
    fn sign_stages_verify_as_they_claim() {
        use crate::oidc::jose::{verify_jws, Jwks};
        use crate::oidc::test_keys::signing;
        let (own, foreign) = (signing(0), signing(1));
        let jwks = Jwks::new(vec![own.public_jwk().unwrap()]);
        let header = JwsHeader::new(SigAlg::RS256, &own).with_typ("JWT");
        let claims = json!({"sub": "a", "iat": 10});
        let sign = |p: &JwtPlan| {
            p.sign(&claims, &header, &own, &foreign, Value::clone)
                .unwrap()
        };
        let honest = sign(&JwtPlan::default());
        let (_, c) = verify_jws(&honest, &jwks, &[SigAlg::RS256]).unwrap();
        assert_eq!(c, claims);
        let edited = JwtPlan {
            pre_sign: JsonEdits {
                shift: [("iat".to_string(), 5)].into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let (_, c) = verify_jws(&sign(&edited), &jwks, &[SigAlg::RS256]).unwrap();
        assert_eq!(c["iat"], 15);
        for broken in [
            JwtPlan {
                sign: SignEdits {
                    key: KeyChoice::Foreign,
                    ..Default::default()
                },
                ..Default::default()
            },
            JwtPlan {
                sign: SignEdits {
                    alg: Some("none".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
            JwtPlan {
                sign: SignEdits {
                    alg: Some("HS256".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
            JwtPlan {
                post_sign: PostSignEdits {
                    corrupt_signature: true,
                    ..Default::default()
                },
                ..Default::default()
            },
            JwtPlan {
                post_sign: PostSignEdits {
                    claims: JsonEdits {
                        set: [("sub".to_string(), json!("b"))].into(),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                ..Default::default()
            },
        ] {
            assert!(
                verify_jws(&sign(&broken), &jwks, &[SigAlg::RS256]).is_err(),
                "{broken:?}"
            );
        }
    }
}
