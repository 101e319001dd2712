//! `/userinfo`: GET with a bearer access token; the answer is a JWS signed by the OP, then
//! encrypted to the RP's encryption key from its federation metadata.

use super::{lock, OpenIdProvider};
use crate::oidc::{json_error, with_rule};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use spid_core::oidc::jose::{
    encrypt_jwe, verify_jwt, JweAlg, JweEnc, Jwk, Jwks, JwsHeader, KeyUse,
};
use spid_core::oidc::plan::{Recipient, SignError};
use spid_core::Rule;

/// Content-Type of the userinfo answer (check-op 4.2.0 and the django OP agree on it).
pub const USERINFO_CONTENT_TYPE: &str = "application/jwt";
/// Lifetime of the userinfo JWT, seconds.
const USERINFO_TTL_SECS: i64 = 300;

fn unauthorized(desc: &str) -> Response {
    let mut r = json_error(StatusCode::UNAUTHORIZED, "invalid_token", desc);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    with_rule(r, Rule::OpUserinfoToken)
}

/// The RP's encryption key and the algorithms its metadata asks for.
fn recipient(metadata: &Map<String, Value>) -> Option<(Jwk, JweAlg, JweEnc)> {
    let jwks: Jwks = serde_json::from_value(metadata.get("jwks")?.clone()).ok()?;
    let key = jwks
        .keys
        .into_iter()
        .find(|k| k.key_use.as_deref() == Some("enc"))?;
    let s = |n: &str| metadata.get(n).and_then(Value::as_str);
    let alg = s("userinfo_encrypted_response_alg")
        .and_then(JweAlg::from_name)
        .unwrap_or(JweAlg::RsaOaep256);
    let enc = s("userinfo_encrypted_response_enc")
        .and_then(JweEnc::from_name)
        .unwrap_or(JweEnc::A256CbcHs512);
    Some((key, alg, enc))
}

pub(crate) async fn userinfo(State(op): State<OpenIdProvider>, headers: HeaderMap) -> Response {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return unauthorized("a bearer access token is required");
    };
    let cfg = &op.0.cfg;
    let now = cfg.clock.now();
    let claims = match verify_jwt(
        token,
        &op.jwks(),
        &cfg.profile.signing_algs,
        now,
        cfg.profile.skew(),
    ) {
        Ok((h, c)) if h.typ_is("at+jwt") => c,
        Ok(_) => return unauthorized("not an access token"),
        Err(e) => return unauthorized(&e.to_string()),
    };
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(grant) = lock(&op.0.tokens).get(jti).cloned() else {
        return unauthorized("unknown or revoked access token");
    };
    if grant.exp <= now.timestamp() {
        return unauthorized("expired access token");
    }
    let plan = &grant.plan.userinfo;
    if let Some(t) = &plan.transport {
        return super::transport(t);
    }
    let client = match op.client(&grant.client_id).await {
        Ok(c) => c,
        Err(e) => return json_error(StatusCode::FORBIDDEN, "invalid_client", &e.to_string()),
    };
    let iat = now.timestamp();
    let mut body = json!({
        "iss": cfg.entity_id,
        "aud": grant.client_id,
        "sub": grant.sub,
        "iat": iat, "nbf": iat, "exp": iat + USERINFO_TTL_SECS,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    if let Some(obj) = body.as_object_mut() {
        for c in &grant.userinfo_claims {
            if let Some(v) = spid_core::attributes::oidc_claim_value(c, &grant.user.attributes) {
                obj.insert(c.clone(), v);
            }
        }
    }
    let alg = cfg.profile.default_signing_alg;
    let header = JwsHeader::new(alg, &op.0.signing_key).with_typ("JWT");
    let jws = match plan.sign(
        &body,
        &header,
        &op.0.signing_key,
        &op.0.foreign_key,
        Value::clone,
    ) {
        Ok(jws) => jws,
        Err(SignError::Miss(m)) => return op.missed(&m.within("plan.userinfo")),
        Err(SignError::Jose(e)) => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                &e.to_string(),
            )
        }
    };
    let jwt = if plan.encrypt.skip {
        Ok(jws)
    } else {
        let Some((key, jwe_alg, jwe_enc)) = recipient(&client.metadata) else {
            return json_error(
                StatusCode::FORBIDDEN,
                "invalid_client",
                "the RP publishes no encryption key",
            );
        };
        let key = match plan.encrypt.recipient {
            Recipient::Published => key,
            Recipient::Foreign => match op.0.foreign_key.public_jwk() {
                Ok(k) => k.with_use(KeyUse::Enc),
                Err(e) => {
                    return json_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "server_error",
                        &e.to_string(),
                    )
                }
            },
        };
        match encrypt_jwe(jws.as_bytes(), &key, jwe_alg, jwe_enc, Some("JWT")) {
            Ok(jwe) => match plan.encrypt.rewrite(&jwe, "plan.userinfo.encrypt.header") {
                Ok(jwe) => Ok(jwe),
                Err(m) => return op.missed(&m),
            },
            Err(e) => Err(e),
        }
    };
    match jwt {
        Ok(jwt) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, USERINFO_CONTENT_TYPE),
                (header::CACHE_CONTROL, "no-store"),
            ],
            jwt,
        )
            .into_response(),
        Err(e) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            &e.to_string(),
        ),
    }
}

/// SPID userinfo is GET only.
pub(crate) async fn wrong_method() -> Response {
    with_rule(
        json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "userinfo is GET only",
        ),
        Rule::OpUserinfoMethod,
    )
}
