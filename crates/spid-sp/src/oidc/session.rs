//! What a logged-in session does after the callback: `/refresh` (the `refresh_token` grant,
//! for a login made with `offline_access`) and `/introspect` (the session's access token at
//! the OP's introspection endpoint). Both are judged like the callback: 200 only when the
//! OP's answer passes every check, else 403 + page + `X-SPID-Rule`. Whatever path the OP
//! takes, a level below the RP's minimum is `oidc.acr.insufficient`.

use super::callback::{excerpt, Refusal};
use super::{lock, refusal_response, session_id, RelyingParty, TrustedOp};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use spid_core::{Rule, SpidLevel};

/// A logged-in browser session.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The OP (entity id).
    pub op: String,
    /// The login's pairwise subject: every later answer must name it.
    pub sub: String,
    /// The login's request nonce (a refreshed ID token may only repeat it).
    pub nonce: String,
    /// The latest access token.
    pub access_token: String,
    /// The latest refresh token (only after an `offline_access` login).
    pub refresh_token: Option<String>,
}

/// An accepted refresh or introspection.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionCheck {
    /// The OP.
    pub op: String,
    /// Pairwise subject (the login's).
    pub sub: String,
    /// The level the OP now vouches for: the refreshed ID token's `acr`, or the
    /// introspection `acr` when the OP sends one.
    pub acr: Option<SpidLevel>,
}

impl RelyingParty {
    fn logged_in(&self, sid: Option<&str>) -> Result<Session, Refusal> {
        let missing = |d: &str| Refusal::new(Rule::OidcSessionMissing, d);
        let sid = sid.ok_or_else(|| missing("no session cookie"))?;
        self.session(sid)
            .ok_or_else(|| missing("no logged-in session"))
    }

    /// Refreshes the session `sid`: a `refresh_token` grant with `private_key_jwt`; the
    /// answer must carry a new (rotated) refresh token and an ID token that passes the
    /// login's checks, `nonce` excepted (OIDC Core 12.2), with the login's `sub` and a level
    /// of at least `min_level`. The session then holds the new tokens. When the OP answered
    /// 200 but the answer is refused, the session forgets its refresh token: the OP has
    /// already rotated it, and the session must not go on at a level it was refused.
    pub async fn refresh_session(&self, sid: Option<&str>) -> Result<SessionCheck, Refusal> {
        let session = self.logged_in(sid)?;
        let presented = session.refresh_token.clone().ok_or_else(|| {
            Refusal::new(
                Rule::OidcSessionMissing,
                "the session holds no refresh token (log in with offline=1)",
            )
        })?;
        let op = self.trusted_op(&session.op).await?;
        let outcome = self.refreshed(&op, &session, &presented).await;
        {
            let mut sessions = lock(&self.0.sessions);
            // Only the session this refresh started from is updated (a logout or a new
            // login in between wins).
            let current = sid
                .and_then(|s| sessions.get_mut(s))
                .filter(|s| s.refresh_token.as_deref() == Some(presented.as_str()));
            match (&outcome, current) {
                (Ok((access_token, refresh_token, _)), Some(s)) => {
                    s.access_token = access_token.clone();
                    s.refresh_token = Some(refresh_token.clone());
                }
                (Err(r), Some(s)) if r.rule != Rule::OidcRefreshRequestFailed => {
                    s.refresh_token = None;
                }
                _ => {}
            }
        }
        let (_, _, acr) = outcome?;
        Ok(SessionCheck {
            op: op.issuer,
            sub: session.sub,
            acr: Some(acr),
        })
    }

    /// The refresh itself; returns the new access and refresh tokens and the level.
    async fn refreshed(
        &self,
        op: &TrustedOp,
        session: &Session,
        presented: &str,
    ) -> Result<(String, String, SpidLevel), Refusal> {
        let tokens = self
            .token_request(
                op,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", presented),
                ],
                Rule::OidcRefreshRequestFailed,
            )
            .await?;
        // SPID rotation: every refresh returns a new refresh token (research 4.5).
        let rotated = tokens
            .refresh_token
            .filter(|t| t != presented)
            .ok_or_else(|| {
                Refusal::new(
                    Rule::OidcTokenResponseInvalid,
                    "the refresh answer carries no new refresh_token (no rotation)",
                )
            })?;
        let (sub, acr) = self.check_id_token(
            op,
            &tokens.id_token,
            &tokens.access_token,
            &session.nonce,
            true,
        )?;
        if sub != session.sub {
            return Err(Refusal::new(
                Rule::OidcRefreshSubMismatch,
                "the refreshed ID token names another sub than the login",
            ));
        }
        Ok((tokens.access_token, rotated, acr))
    }

    /// Introspects the session's access token at the OP (RFC 7662, `private_key_jwt`) and
    /// checks the answer as SPID asks (research 8): `active`; `iss` the OP; `client_id` this
    /// RP; `aud` this RP or the OP's userinfo endpoint (the access token's audience in the
    /// SPID rules; check-op puts the client_id there); `sub` the login's; `exp` not past;
    /// and `acr`, an extension member, when present, a SPID level of at least `min_level`.
    pub async fn introspect_session(&self, sid: Option<&str>) -> Result<SessionCheck, Refusal> {
        let session = self.logged_in(sid)?;
        let op = self.trusted_op(&session.op).await?;
        let failed = |d: String| Refusal::new(Rule::OidcIntrospectionRequestFailed, d);
        let endpoint = op
            .introspection_endpoint
            .clone()
            .ok_or_else(|| failed("the OP publishes no introspection_endpoint".into()))?;
        let a = self
            .authenticated_post(
                &endpoint,
                &[
                    ("token", session.access_token.as_str()),
                    ("token_type_hint", "access_token"),
                ],
            )
            .await
            .map_err(failed)?;
        if a.status != 200 {
            return Err(failed(format!("status {}: {}", a.status, excerpt(&a.body))));
        }
        let v: Value = serde_json::from_str(&a.body)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| failed("the answer is not a JSON object".into()))?;
        if v.get("active") != Some(&Value::Bool(true)) {
            return Err(Refusal::new(
                Rule::OidcIntrospectionInactive,
                "the OP reports the access token inactive",
            ));
        }
        let cfg = &self.0.cfg;
        let bad = |d: &str| Refusal::new(Rule::OidcIntrospectionClaims, d);
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        if s("iss") != Some(op.issuer.as_str()) {
            return Err(bad("iss is not the OP"));
        }
        if s("client_id") != Some(cfg.entity_id.as_str()) {
            return Err(bad("client_id is not this RP"));
        }
        let ours = |a: &str| a == cfg.entity_id || a == op.userinfo_endpoint;
        let aud_ok = match v.get("aud") {
            Some(Value::String(a)) => ours(a),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).any(ours),
            _ => false,
        };
        if !aud_ok {
            return Err(bad("aud is neither this RP nor the OP's userinfo endpoint"));
        }
        if s("sub") != Some(session.sub.as_str()) {
            return Err(bad("sub differs from the login's"));
        }
        match v.get("exp") {
            None => {}
            Some(exp) => {
                let exp = exp.as_i64().ok_or_else(|| bad("exp is not a number"))?;
                let now = cfg.clock.now().timestamp();
                if now >= exp.saturating_add(cfg.profile.skew().num_seconds().abs()) {
                    return Err(bad("exp is past"));
                }
            }
        }
        let acr = match v.get("acr") {
            None => None,
            Some(acr) => {
                let uri = acr.as_str().unwrap_or_default();
                let level = SpidLevel::from_uri(uri).ok_or_else(|| {
                    Refusal::new(Rule::OidcAcrUnknown, format!("introspection acr {acr}"))
                })?;
                if level < cfg.min_level {
                    return Err(Refusal::new(
                        Rule::OidcAcrInsufficient,
                        format!(
                            "introspection acr {} below the required {}",
                            level.uri(),
                            cfg.min_level.uri()
                        ),
                    ));
                }
                Some(level)
            }
        };
        Ok(SessionCheck {
            op: op.issuer,
            sub: session.sub,
            acr,
        })
    }
}

fn answer(title: &str, outcome: Result<SessionCheck, Refusal>) -> Response {
    match outcome {
        Ok(check) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (
                    header::HeaderName::from_static(crate::OUTCOME_HEADER),
                    "accepted",
                ),
            ],
            super::pages::session_checked(title, &check),
        )
            .into_response(),
        Err(r) => refusal_response(&r),
    }
}

/// `GET /refresh`: see [`RelyingParty::refresh_session`].
pub(crate) async fn refresh(State(rp): State<RelyingParty>, headers: HeaderMap) -> Response {
    let sid = session_id(&headers);
    answer(
        "Sessione rinnovata (refresh token)",
        rp.refresh_session(sid.as_deref()).await,
    )
}

/// `GET /introspect`: see [`RelyingParty::introspect_session`].
pub(crate) async fn introspect(State(rp): State<RelyingParty>, headers: HeaderMap) -> Response {
    let sid = session_id(&headers);
    answer(
        "Token attivo (introspection)",
        rp.introspect_session(sid.as_deref()).await,
    )
}
