//! `/callback`: the authorization response, the token request, the ID token and userinfo.
//! Every refusal is a [`Refusal`] carrying its [`Rule`]; [`RelyingParty::complete`] runs
//! the stages and the ordered rule tables of [`super::checks`].

use super::checks::{
    self, Ctx, IdTokenInput, Released, TokenReply, UserinfoClaims, UserinfoReply,
    ID_TOKEN_PROTOCOL_CLAIMS,
};
use super::session::Session;
use super::{fed, lock, refusal_response, session_id, RelyingParty, TrustedOp};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use spid_core::oidc::claims::IdTokenError;
use spid_core::oidc::jose::{decrypt_jwe, sign_jws, verify_jws, JoseError, SigAlg};
use spid_core::{Rule, SpidLevel};
use std::collections::HashMap;

/// A request sent and not yet answered.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Browser session that sent it.
    pub sid: String,
    /// Nonce put in the request object.
    pub nonce: String,
    /// PKCE verifier.
    pub verifier: String,
    /// The OP it went to.
    pub op: String,
    /// When.
    pub created: DateTime<Utc>,
}

/// A refused callback: the rule and a detail for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The deciding rule.
    pub rule: Rule,
    /// What was found.
    pub detail: String,
}

impl Refusal {
    /// A refusal by `rule`.
    pub fn new(rule: Rule, detail: impl Into<String>) -> Refusal {
        Refusal {
            rule,
            detail: detail.into(),
        }
    }
}

/// Why an authenticated POST to the OP got no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PostError {
    /// The client assertion could not be signed.
    #[error(transparent)]
    Sign(#[from] JoseError),
    /// The request got no bounded answer.
    #[error(transparent)]
    Send(#[from] fed::SendError),
}

/// An accepted login.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The OP.
    pub op: String,
    /// Pairwise subject.
    pub sub: String,
    /// Level obtained.
    pub acr: SpidLevel,
    /// The user's claims (registered JWT claims left out), values as text: userinfo's, then
    /// those only the ID token carries (CIE releases claims in both).
    pub claims: Vec<(String, String)>,
}

/// An ID token that passed every check.
#[derive(Debug, Clone)]
pub(crate) struct CheckedIdToken {
    /// Pairwise subject.
    pub sub: String,
    /// Level.
    pub acr: SpidLevel,
    /// Every claim.
    pub claims: Value,
}

/// The user claims of `v` (an object): every member but `skip`.
fn user_claims(v: &Value, skip: &[&str]) -> serde_json::Map<String, Value> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The rule for an ID-token claims refusal ([`IdTokenError::rule`]: one rule per claim
/// missing or mistyped, otherwise the value check that failed).
pub fn id_token_rule(e: &IdTokenError) -> Rule {
    e.rule()
}

const REGISTERED: [&str; 7] = ["iss", "aud", "sub", "iat", "nbf", "exp", "jti"];

impl RelyingParty {
    /// Judges a callback. Order: `state` present, known to this session and unused; `iss`
    /// (when present) the OP, and present where the profile requires it; no `error`; `code`;
    /// the token request; the ID token (a JWE decrypted with our key where we declared
    /// ID-token encryption; signature with the OP's chain-resolved keys, claims, `at_hash`,
    /// level); userinfo (a JWE, decrypted with our key, signed by the OP, `iss`/`aud`/`exp`,
    /// same `sub`); a claim in both the ID token and userinfo the same in both.
    pub async fn complete(
        &self,
        headers: &HeaderMap,
        params: &HashMap<String, String>,
    ) -> Result<Identity, Refusal> {
        let cfg = &self.0.cfg;
        let now = cfg.clock.now();
        let state = params
            .get("state")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Refusal::new(Rule::OidcStateMissing, "no state"))?;
        let sid = session_id(headers);
        // Removed whatever the outcome: a state is answered once.
        let pending = lock(&self.0.pending)
            .remove(state)
            .filter(|p| Some(&p.sid) == sid.as_ref() && now - p.created < cfg.request_ttl)
            .ok_or_else(|| {
                Refusal::new(
                    Rule::OidcStateUnknown,
                    "state unknown, already used, expired or from another browser session",
                )
            })?;
        let op = self.trusted_op(&pending.op).await?;
        checks::run(checks::AUTHZ_RULES, params, &self.ctx(&op))?;
        // AUTHZ_RULES refused a missing or empty code.
        let code = params.get("code").map(String::as_str).unwrap_or_default();
        let redirect_uri = cfg.redirect_uri();
        let tokens = self
            .token_request(
                &op,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("code_verifier", &pending.verifier),
                    ("redirect_uri", &redirect_uri),
                ],
                Rule::OidcTokenRequestFailed,
            )
            .await?;
        // TOKEN_RULES refused a login answer without id_token.
        let id_token = self.check_id_token(
            &op,
            tokens.id_token.as_deref().unwrap_or_default(),
            &tokens.access_token,
            &pending.nonce,
            false,
        )?;
        let sub = id_token.sub.clone();
        let acr = id_token.acr;
        let userinfo = self.userinfo(&op, &tokens.access_token, &sub).await?;
        let released = Released {
            id_token: user_claims(&id_token.claims, &ID_TOKEN_PROTOCOL_CLAIMS),
            userinfo: user_claims(&userinfo, &REGISTERED),
        };
        checks::run(checks::RELEASED_RULES, &released, &self.ctx(&op))?;
        let claims = released
            .userinfo
            .iter()
            .chain(
                released
                    .id_token
                    .iter()
                    .filter(|(k, _)| !released.userinfo.contains_key(*k)),
            )
            .map(|(k, v)| (k.clone(), as_text(v)))
            .collect();
        self.remember_session(
            &pending.sid,
            Session {
                op: op.issuer.clone(),
                sub: sub.clone(),
                nonce: pending.nonce,
                access_token: tokens.access_token,
                refresh_token: tokens.refresh_token,
            },
        );
        Ok(Identity {
            op: op.issuer,
            sub,
            acr,
            claims,
        })
    }

    /// POSTs `grant` plus `private_key_jwt` client authentication to the token endpoint:
    /// transport failures and non-200 answers are refused by `failed_rule`, an answer without
    /// `token_type` Bearer, `access_token` or `id_token` by `oidc.token.response-invalid`.
    pub(crate) async fn token_request(
        &self,
        op: &TrustedOp,
        grant: &[(&str, &str)],
        failed_rule: Rule,
    ) -> Result<TokenAnswer, Refusal> {
        let a = self
            .authenticated_post(&op.token_endpoint, grant)
            .await
            .map_err(|e| Refusal::new(failed_rule, e.to_string()))?;
        let reply = TokenReply::new(a.status, a.body, failed_rule);
        checks::run(checks::TOKEN_RULES, &reply, &self.ctx(op))?;
        // TOKEN_RULES refused an answer without access_token, or without an id_token where
        // one is due.
        Ok(TokenAnswer {
            access_token: reply.string("access_token").unwrap_or_default(),
            id_token: reply.string("id_token"),
            refresh_token: reply.string("refresh_token").filter(|t| !t.is_empty()),
        })
    }

    /// POSTs `params` to `endpoint` of the OP with `client_id` and a fresh `private_key_jwt`
    /// assertion whose `aud` is that endpoint (token, introspection, revocation).
    pub(crate) async fn authenticated_post(
        &self,
        endpoint: &str,
        params: &[(&str, &str)],
    ) -> Result<fed::Answer, PostError> {
        let cfg = &self.0.cfg;
        let now = cfg.clock.now().timestamp();
        let assertion = sign_jws(
            &json!({"iss": cfg.entity_id, "sub": cfg.entity_id, "aud": endpoint,
                    "iat": now, "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string()}),
            &self.0.signing_key,
            cfg.profile.default_signing_alg,
            None,
        )?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .extend_pairs([
                ("client_id", cfg.entity_id.as_str()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
            ])
            .finish();
        Ok(fed::send(
            self.0
                .http
                .post(endpoint)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body),
        )
        .await?)
    }

    /// Checks an ID token: where the RP declared ID-token encryption, a JWE decrypted with
    /// the RP's key around a nested JWT; signature with the OP's chain-resolved keys,
    /// claims, `at_hash` against `access_token`, level ≥ `min_level`. `refreshed`: it comes
    /// from a refresh, so `nonce` may be absent (and must still be `nonce`, the login's,
    /// when present).
    pub(crate) fn check_id_token(
        &self,
        op: &TrustedOp,
        id_token: &str,
        access_token: &str,
        nonce: &str,
        refreshed: bool,
    ) -> Result<CheckedIdToken, Refusal> {
        let cfg = &self.0.cfg;
        let received = checks::ReceivedIdToken(id_token.trim().to_string());
        checks::run(checks::ID_TOKEN_FORM_RULES, &received, &self.ctx(op))?;
        let nested;
        let id_token = if cfg.requires_encrypted_id_token() {
            nested = self.open_id_token(&received.0)?;
            nested.as_str()
        } else {
            received.0.as_str()
        };
        // ES256 only where the profile allows EC keys (CIE).
        let algs = cfg.profile.accepted_signing_algs();
        let (header, claims) = verify_jws(id_token, &op.jwks, &algs)
            .map_err(|e| Refusal::new(Rule::OidcIdTokenSignature, e.to_string()))?;
        let input = IdTokenInput {
            // verify_jws accepted the alg, so it parses; RS256 is only a fallback.
            alg: SigAlg::from_name(&header.alg).unwrap_or(SigAlg::RS256),
            claims,
            access_token: access_token.to_owned(),
            nonce: nonce.to_owned(),
            refreshed,
        };
        let ctx = self.ctx(op);
        checks::run(checks::ID_TOKEN_RULES, &input, &ctx)?;
        let token = checks::id_token(&input, &ctx)?;
        Ok(CheckedIdToken {
            sub: token.sub,
            acr: token.acr,
            claims: input.claims,
        })
    }

    /// The ID token JWE: decrypted with the RP's key under the algorithms the profile
    /// allows, its `cty` JWT (`oidc.id-token.decryption`); the nested JWS as text.
    pub(crate) fn open_id_token(&self, jwe: &str) -> Result<String, Refusal> {
        let p = &self.0.cfg.profile;
        let refuse = |d: String| Refusal::new(Rule::OidcIdTokenDecryption, d);
        let (outer, plaintext) = decrypt_jwe(jwe, &self.0.encryption_key, &p.jwe_algs, &p.jwe_encs)
            .map_err(|e| refuse(e.to_string()))?;
        if !outer
            .cty
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("JWT"))
        {
            return Err(refuse("the JWE cty is not JWT (no nested JWT)".into()));
        }
        String::from_utf8(plaintext).map_err(|_| refuse("the nested JWT is not UTF-8".into()))
    }

    /// The context of a table run against `op`, now.
    pub(crate) fn ctx<'a>(&'a self, op: &'a TrustedOp) -> Ctx<'a> {
        Ctx {
            cfg: &self.0.cfg,
            op,
            now: self.0.cfg.clock.now(),
        }
    }

    /// The userinfo JWE `body`: decrypted with the RP's key (`oidc.userinfo.decryption`,
    /// also for a `cty` other than JWT), the inner JWS verified with the OP's keys
    /// (`oidc.userinfo.signature`); its claims.
    pub(crate) fn open_userinfo(&self, op: &TrustedOp, body: &str) -> Result<Value, Refusal> {
        let p = &self.0.cfg.profile;
        let (outer, plaintext) =
            decrypt_jwe(body, &self.0.encryption_key, &p.jwe_algs, &p.jwe_encs)
                .map_err(|e| Refusal::new(Rule::OidcUserinfoDecryption, e.to_string()))?;
        if outer
            .cty
            .as_deref()
            .is_some_and(|c| !c.eq_ignore_ascii_case("JWT"))
        {
            return Err(Refusal::new(Rule::OidcUserinfoDecryption, "cty is not JWT"));
        }
        let inner = String::from_utf8(plaintext)
            .map_err(|_| Refusal::new(Rule::OidcUserinfoSignature, "inner JWS is not UTF-8"))?;
        let (_, claims) = verify_jws(&inner, &op.jwks, &p.accepted_signing_algs())
            .map_err(|e| Refusal::new(Rule::OidcUserinfoSignature, e.to_string()))?;
        Ok(claims)
    }

    /// Fetches userinfo with `access_token` and judges it; its claims.
    pub(crate) async fn userinfo(
        &self,
        op: &TrustedOp,
        access_token: &str,
        sub: &str,
    ) -> Result<Value, Refusal> {
        let a = fed::send(
            self.0
                .http
                .get(&op.userinfo_endpoint)
                .bearer_auth(access_token),
        )
        .await
        .map_err(|e| Refusal::new(Rule::OidcUserinfoRequestFailed, e.to_string()))?;
        let reply = UserinfoReply {
            status: a.status,
            content_type: a.content_type,
            body: a.body,
        };
        checks::run(checks::USERINFO_REPLY_RULES, &reply, &self.ctx(op))?;
        let claims = self.open_userinfo(op, reply.body.trim())?;
        let input = UserinfoClaims {
            claims,
            sub: sub.to_owned(),
        };
        checks::run(checks::USERINFO_RULES, &input, &self.ctx(op))?;
        Ok(input.claims)
    }
}

/// A token endpoint answer that passed the shape checks.
#[derive(Debug, Clone)]
pub(crate) struct TokenAnswer {
    pub access_token: String,
    /// Always at login; absent after a refresh where the profile issues no new ID token.
    pub id_token: Option<String>,
    /// Present for `offline_access` logins and after each refresh (rotation).
    pub refresh_token: Option<String>,
}

/// The parameters within [`spid_net::FormLimits::default`], first value wins; a refusal is
/// the 400 to answer.
fn parse_params(bytes: &[u8]) -> Result<HashMap<String, String>, Box<Response>> {
    spid_net::form(bytes, &spid_net::FormLimits::default())
        .map(spid_net::first_wins)
        .map_err(|e| Box::new(e.into_response()))
}

/// `response_mode=form_post`: the same parameters in a form body.
pub(crate) async fn callback_post(
    State(rp): State<RelyingParty>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match parse_params(&body) {
        Ok(p) => answer(&rp, &headers, &p).await,
        Err(r) => *r,
    }
}

pub(crate) async fn callback(
    State(rp): State<RelyingParty>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    match parse_params(q.unwrap_or_default().as_bytes()) {
        Ok(p) => answer(&rp, &headers, &p).await,
        Err(r) => *r,
    }
}

async fn answer(
    rp: &RelyingParty,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Response {
    match rp.complete(headers, params).await {
        Ok(id) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (
                    header::HeaderName::from_static(crate::OUTCOME_HEADER),
                    "accepted",
                ),
            ],
            super::pages::accepted(&id),
        )
            .into_response(),
        Err(r) => refusal_response(&r),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{RelyingParty, RpConfig, TrustedOp, RP_COOKIE};
    use super::*;
    use spid_core::clock::FixedClock;
    use spid_core::oidc::jose::{decode_unverified, Jwks};
    use spid_core::oidc::pkce::{challenge_s256, strong_random_string, valid_verifier};
    use std::sync::Arc;

    fn rp() -> RelyingParty {
        let clock = Arc::new(FixedClock::new(spid_core::clock::now()));
        RelyingParty::new(RpConfig::new("http://rp.example/oidc/rp", clock)).expect("rp")
    }

    fn op() -> TrustedOp {
        TrustedOp {
            issuer: "http://op.example/oidc/op".into(),
            authorization_endpoint: "http://op.example/oidc/op/authorization".into(),
            token_endpoint: "http://op.example/oidc/op/token".into(),
            userinfo_endpoint: "http://op.example/oidc/op/userinfo".into(),
            revocation_endpoint: None,
            introspection_endpoint: None,
            jwks: Jwks::default(),
            exp: i64::MAX,
        }
    }

    fn cookie(sid: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = format!("other=1; {RP_COOKIE}={sid}").parse() {
            h.insert(header::COOKIE, v);
        }
        h
    }

    #[test]
    fn id_token_errors_map_to_rules() {
        use IdTokenError as E;
        let cases = [
            (
                E::IssuerMismatch {
                    expected: "a".into(),
                    found: "b".into(),
                },
                Rule::OidcIdTokenIss,
            ),
            (
                E::AudienceMismatch {
                    client_id: "a".into(),
                },
                Rule::OidcIdTokenAud,
            ),
            (E::UntrustedAudience("x".into()), Rule::OidcIdTokenAud),
            (E::Expired { exp: 1, now: 2 }, Rule::OidcIdTokenExpired),
            (
                E::NotYetValid { nbf: 2, now: 1 },
                Rule::OidcIdTokenNotYetValid,
            ),
            (
                E::IssuedInFuture { iat: 2, now: 1 },
                Rule::OidcIdTokenNotYetValid,
            ),
            (E::NonceMismatch, Rule::OidcIdTokenNonce),
            (E::UnknownAcr("x".into()), Rule::OidcAcrUnknown),
            (
                E::AcrTooLow {
                    required: SpidLevel::L2,
                    got: SpidLevel::L1,
                },
                Rule::OidcAcrInsufficient,
            ),
            (E::AtHashMismatch, Rule::OidcIdTokenAtHash),
            (E::NotAnObject, Rule::OidcIdTokenSignature),
            (E::MissingClaim("iss"), Rule::OidcIdTokenClaimIss),
            (E::InvalidClaim("iss"), Rule::OidcIdTokenClaimIss),
            (E::MissingClaim("sub"), Rule::OidcIdTokenClaimSub),
            (E::MissingClaim("aud"), Rule::OidcIdTokenClaimAud),
            (E::MissingClaim("exp"), Rule::OidcIdTokenClaimExp),
            (E::MissingClaim("iat"), Rule::OidcIdTokenClaimIat),
            (E::MissingClaim("nbf"), Rule::OidcIdTokenClaimNbf),
            (E::MissingClaim("nonce"), Rule::OidcIdTokenClaimNonce),
            (E::MissingClaim("acr"), Rule::OidcIdTokenClaimAcr),
            (E::MissingClaim("at_hash"), Rule::OidcIdTokenClaimAtHash),
            (E::MissingClaim("jti"), Rule::OidcIdTokenClaimJti),
        ];
        for (e, rule) in cases {
            assert_eq!(id_token_rule(&e), rule, "{e:?}");
        }
    }

    #[test]
    fn request_object_follows_the_spid_profile() {
        let rp = rp();
        let url = rp.authorization_url(&op(), "sid1", false).expect("url");
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q.get("client_id").map(String::as_str), Some(rp.entity_id()));
        assert_eq!(q.get("scope").map(String::as_str), Some("openid"));
        assert_eq!(
            q.get("code_challenge_method").map(String::as_str),
            Some("S256")
        );
        let request = q.get("request").cloned().unwrap_or_default();
        // Signed by the RP's published OIDC key.
        let (_, claims) = verify_jws(&request, &rp.jwks(), &[SigAlg::RS256]).expect("signed");
        let s = |k: &str| {
            claims
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(s("iss"), rp.entity_id());
        assert_eq!(s("aud"), op().issuer);
        assert!(strong_random_string(&s("state")) && strong_random_string(&s("nonce")));
        assert_eq!(s("acr_values"), SpidLevel::L2.uri());
        assert_eq!(s("prompt"), "consent login");
        assert!(claims.get("sub").is_none());
        assert!(claims["claims"].get("id_token").is_none());
        assert!(claims["claims"]["userinfo"].is_object());
        let pending = lock(&rp.0.pending)
            .get(&s("state"), rp.0.cfg.clock.now())
            .cloned()
            .expect("pending");
        assert!(valid_verifier(&pending.verifier));
        assert_eq!(challenge_s256(&pending.verifier), s("code_challenge"));
        assert_eq!(pending.nonce, s("nonce"));
        assert!(decode_unverified(&request).is_ok());
    }

    #[test]
    fn offline_logins_ask_offline_access_with_consent_at_the_required_level() {
        let rp = rp();
        let url = rp.authorization_url(&op(), "sid1", true).expect("url");
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(
            q.get("scope").map(String::as_str),
            Some("openid offline_access")
        );
        let request = q.get("request").cloned().unwrap_or_default();
        let (_, claims) = verify_jws(&request, &rp.jwks(), &[SigAlg::RS256]).expect("signed");
        assert_eq!(claims["scope"], "openid offline_access");
        assert_eq!(claims["prompt"], "consent");
        // No SpidL1: it would make every refresh a SpidL1 one.
        assert_eq!(claims["acr_values"], SpidLevel::L2.uri());
        assert_eq!(
            rp.metadata()["grant_types"],
            json!(["authorization_code", "refresh_token"])
        );
    }

    #[tokio::test]
    async fn refresh_and_introspection_need_a_session() {
        let rp = rp();
        let rule =
            |r: Result<super::super::session::SessionCheck, Refusal>| r.err().map(|e| e.rule);
        let missing = Some(Rule::OidcSessionMissing);
        assert_eq!(rule(rp.refresh_session(None).await), missing);
        assert_eq!(rule(rp.introspect_session(None).await), missing);
        assert_eq!(rule(rp.refresh_session(Some("sid1")).await), missing);
        assert_eq!(rule(rp.introspect_session(Some("sid1")).await), missing);
        // A login without offline_access: a session, but nothing to refresh with.
        rp.remember_session(
            "sid1",
            Session {
                op: op().issuer,
                sub: "s".into(),
                nonce: "n".into(),
                access_token: "at".into(),
                refresh_token: None,
            },
        );
        let r = rp.refresh_session(Some("sid1")).await;
        assert_eq!(r.clone().err().map(|e| e.rule), missing);
        assert!(r.err().is_some_and(|e| e.detail.contains("offline=1")));
    }

    #[tokio::test]
    async fn state_is_required_bound_to_the_session_and_single_use() {
        let rp = rp();
        let refuse = |r: Result<Identity, Refusal>| r.err().map(|e| e.rule);
        let none = HashMap::new();
        assert_eq!(
            refuse(rp.complete(&cookie("sid1"), &none).await),
            Some(Rule::OidcStateMissing)
        );

        let url = rp.authorization_url(&op(), "sid1", false).expect("url");
        let (_, claims) = decode_unverified(
            &url.query_pairs()
                .find(|(k, _)| k == "request")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default(),
        )
        .expect("request");
        let state = claims["state"].as_str().unwrap_or_default().to_string();
        let params: HashMap<String, String> = [("state".to_string(), state.clone())].into();
        // Another browser session presenting the state: refused, and the state is spent.
        assert_eq!(
            refuse(rp.complete(&cookie("sid2"), &params).await),
            Some(Rule::OidcStateUnknown)
        );
        assert_eq!(
            refuse(rp.complete(&cookie("sid1"), &params).await),
            Some(Rule::OidcStateUnknown)
        );
        let unknown: HashMap<String, String> = [("state".to_string(), "x".repeat(43))].into();
        assert_eq!(
            refuse(rp.complete(&cookie("sid1"), &unknown).await),
            Some(Rule::OidcStateUnknown)
        );
    }
}
