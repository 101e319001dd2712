//! `/userinfo`: GET (and POST where the profile allows it: CIE) with a bearer access token;
//! the answer is a JWS signed by the OP, then encrypted to the RP's encryption key from its
//! federation metadata.

use super::{lock, OpenIdProvider, TokenGrant};
use crate::oidc::{json_error, with_rule};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use spid_core::oidc::jose::{verify_jwt, JoseError, JweAlg, JweEnc, Jwk, Jwks, JwsHeader, KeyUse};
use spid_core::oidc::plan::{EncryptError, Recipient, SignError};
use spid_core::Rule;

/// Content-Type of the userinfo answer (check-op 4.2.0 and the django OP agree on it).
pub const USERINFO_CONTENT_TYPE: &str = "application/jwt";
/// Lifetime of the userinfo JWT, seconds.
const USERINFO_TTL_SECS: i64 = 300;

/// Why userinfo refused the bearer token (`op.userinfo.token`, HTTP 401 `invalid_token`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum InvalidToken {
    /// No `Authorization: Bearer` header.
    #[error("a bearer access token is required")]
    Missing,
    /// Not a JWT this OP signed, or expired by its own `exp`.
    #[error(transparent)]
    Jose(#[from] JoseError),
    /// A token of this OP, but not an access token (`typ` is not `at+jwt`).
    #[error("not an access token")]
    NotAccessToken,
    /// An access token this OP does not hold (revoked, or never issued).
    #[error("unknown or revoked access token")]
    Unknown,
    /// An access token whose grant has expired.
    #[error("expired access token")]
    Expired,
}

impl InvalidToken {
    /// The rule that decided (every bearer-token refusal has the one code).
    pub(crate) fn rule(&self) -> Rule {
        Rule::OpUserinfoToken
    }
}

impl OpenIdProvider {
    /// The grant of the access token the request bears, in order: a bearer token is sent, it
    /// is a JWT signed by this OP and unexpired, typed `at+jwt`, still held (not revoked) and
    /// its grant unexpired.
    pub(crate) fn bearer_grant(&self, headers: &HeaderMap) -> Result<TokenGrant, InvalidToken> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(InvalidToken::Missing)?;
        let cfg = &self.0.cfg;
        let now = cfg.clock.now();
        let (h, claims) = verify_jwt(
            token,
            &self.jwks(),
            &cfg.profile.signing_algs,
            now,
            cfg.profile.skew(),
        )?;
        if !h.typ_is("at+jwt") {
            return Err(InvalidToken::NotAccessToken);
        }
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let grant = lock(&self.0.tokens)
            .get(jti)
            .cloned()
            .ok_or(InvalidToken::Unknown)?;
        if grant.exp <= now.timestamp() {
            return Err(InvalidToken::Expired);
        }
        Ok(grant)
    }
}

fn unauthorized(e: &InvalidToken) -> Response {
    let mut r = json_error(StatusCode::UNAUTHORIZED, "invalid_token", &e.to_string());
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    with_rule(r, e.rule())
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
    let grant = match op.bearer_grant(&headers) {
        Ok(g) => g,
        Err(e) => return unauthorized(&e),
    };
    let cfg = &op.0.cfg;
    let now = cfg.clock.now();
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
        Ok(jws) => {
            op.record_sent("userinfo", &jws);
            jws
        }
        Err(SignError::Miss(m)) => {
            let m = m.within("plan.userinfo");
            op.note_miss(grant.plan.case.as_deref(), &m);
            return OpenIdProvider::miss_page(&m);
        }
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
        match plan.encrypt.encrypt(
            jws.as_bytes(),
            &key,
            jwe_alg,
            jwe_enc,
            "plan.userinfo.encrypt.header",
        ) {
            Ok(jwe) => {
                op.record_sealed("userinfo", &jws, &jwe);
                Ok(jwe)
            }
            Err(EncryptError::Miss(m)) => {
                op.note_miss(grant.plan.case.as_deref(), &m);
                return OpenIdProvider::miss_page(&m);
            }
            Err(EncryptError::Jose(e)) => Err(e),
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

/// `POST /userinfo`: answered as GET where the profile allows it (CIE
/// `userinfo_post_allowed`), else refused (SPID: GET only).
pub(crate) async fn userinfo_post(
    State(op): State<OpenIdProvider>,
    headers: HeaderMap,
) -> Response {
    if !op.0.cfg.profile.userinfo_post_allowed {
        return wrong_method().await;
    }
    userinfo(State(op), headers).await
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

#[cfg(test)]
pub(super) mod tests {
    use super::super::tests::block_on;
    use super::super::token::tests::{code, fixture, request, rule_of, Fixture};
    use super::*;
    use axum::http::HeaderValue;

    /// An `Authorization` header bearing `token`.
    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
            h.insert(header::AUTHORIZATION, v);
        }
        h
    }

    /// The token response of an honest login and code exchange.
    fn tokens(fx: &Fixture) -> Value {
        let v = "v".repeat(64);
        let c = code(fx, &v);
        fx.op
            .exchange(&request(fx, &c, &v), &fx.client)
            .expect("tokens")
    }

    fn text(v: &Value, k: &str) -> String {
        v[k].as_str().unwrap_or_default().to_string()
    }

    /// The grant the honest access token names, with `edit` applied to the OP's record of it.
    fn edit_grant(fx: &Fixture, t: &Value, edit: impl FnOnce(&mut TokenStore, &str)) {
        let (_, claims) =
            spid_core::oidc::jose::decode_unverified(&text(t, "access_token")).expect("jwt");
        let jti = claims["jti"].as_str().unwrap_or_default().to_string();
        edit(&mut lock(&fx.op.0.tokens), &jti);
    }

    type TokenStore = std::collections::HashMap<String, TokenGrant>;

    /// A bearer-token case: the headers sent instead of the honest bearer of the login whose
    /// token response it is given (the case may alter the OP's record of that token).
    pub(crate) type TokenCase = (Rule, &'static str, fn(&Fixture, &Value) -> HeaderMap);

    /// [`OpenIdProvider::bearer_grant`]'s refusals, one edit each.
    pub(crate) const TOKEN_CASES: &[TokenCase] = &[
        (Rule::OpUserinfoToken, "no Authorization", |_, _| {
            HeaderMap::new()
        }),
        (Rule::OpUserinfoToken, "Basic, not Bearer", |_, t| {
            let mut h = HeaderMap::new();
            let basic = format!("Basic {}", text(t, "access_token"));
            if let Ok(v) = HeaderValue::from_str(&basic) {
                h.insert(header::AUTHORIZATION, v);
            }
            h
        }),
        (Rule::OpUserinfoToken, "not a JWT", |_, _| bearer("x.y.z")),
        (Rule::OpUserinfoToken, "signature flipped", |_, t| {
            bearer(&spid_core::oidc::plan::corrupt_signature(&text(
                t,
                "access_token",
            )))
        }),
        (Rule::OpUserinfoToken, "the ID token", |_, t| {
            bearer(&text(t, "id_token"))
        }),
        (Rule::OpUserinfoToken, "revoked", |fx, t| {
            edit_grant(fx, t, |tokens, jti| {
                tokens.remove(jti);
            });
            bearer(&text(t, "access_token"))
        }),
        (Rule::OpUserinfoToken, "grant expired", |fx, t| {
            let now = fx.op.config().clock.now().timestamp();
            edit_grant(fx, t, |tokens, jti| {
                if let Some(g) = tokens.get_mut(jti) {
                    g.exp = now;
                }
            });
            bearer(&text(t, "access_token"))
        }),
    ];

    #[test]
    fn each_bearer_token_refusal_has_its_rule() {
        let fx = fixture();
        let t = tokens(&fx);
        let grant = fx.op.bearer_grant(&bearer(&text(&t, "access_token")));
        assert!(grant.is_ok(), "{grant:?}");
        for (rule, what, case) in TOKEN_CASES {
            let t = tokens(&fx);
            let e = fx.op.bearer_grant(&case(&fx, &t)).expect_err(what);
            assert_eq!(e.rule(), *rule, "{what}");
        }
        // The handler answers each with 401, the rule and the same words.
        let r = block_on(userinfo(State(fx.op.clone()), HeaderMap::new()));
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(rule_of(&r), Some(Rule::OpUserinfoToken.code()));
        assert_eq!(
            InvalidToken::Missing.to_string(),
            "a bearer access token is required"
        );
    }

    /// A method case: the handler's answer to a wrong method, which must name the rule.
    pub(crate) type MethodCase = (Rule, &'static str, fn() -> Response);

    /// The userinfo endpoint's method cases: the handler answering the wrong method.
    pub(crate) const METHOD_CASES: &[MethodCase] = &[
        (Rule::OpUserinfoMethod, "wrong method", || {
            block_on(wrong_method())
        }),
        (Rule::OpUserinfoMethod, "POST /userinfo under SPID", || {
            let fx = fixture();
            let t = tokens(&fx);
            block_on(userinfo_post(
                State(fx.op.clone()),
                bearer(&text(&t, "access_token")),
            ))
        }),
    ];

    /// CIE: userinfo by POST is answered as GET is (the same bearer checks, the same answer).
    #[test]
    fn userinfo_by_post_under_cie() {
        let fx = super::super::tests::profiled(spid_core::oidc::Profile::cie());
        let t = tokens(&fx);
        let h = bearer(&text(&t, "access_token"));
        let get = block_on(userinfo(State(fx.op.clone()), h.clone()));
        let post = block_on(userinfo_post(State(fx.op.clone()), h));
        assert_ne!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.status(), get.status());
        assert_eq!(rule_of(&post), rule_of(&get));
        // The bearer is still judged.
        let r = block_on(userinfo_post(State(fx.op.clone()), HeaderMap::new()));
        assert_eq!(rule_of(&r), Some(Rule::OpUserinfoToken.code()));
    }

    #[test]
    fn userinfo_is_get_only() {
        for (rule, what, case) in METHOD_CASES {
            let r = case();
            assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{what}");
            assert_eq!(rule_of(&r), Some(rule.code()), "{what}");
        }
    }

    /// The rules named by this module's case tables.
    pub(crate) fn tested() -> Vec<Rule> {
        TOKEN_CASES
            .iter()
            .map(|c| c.0)
            .chain(METHOD_CASES.iter().map(|c| c.0))
            .collect()
    }
}
