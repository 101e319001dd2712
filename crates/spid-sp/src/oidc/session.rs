//! What a logged-in session does after the callback: `/refresh` (the `refresh_token` grant,
//! for a login made with `offline_access`) and `/introspect` (the session's access token at
//! the OP's introspection endpoint). Both are judged like the callback: 200 only when the
//! OP's answer passes every check, else 403 + page + `X-SPID-Rule`. Whatever path the OP
//! takes, a level below the RP's minimum is `oidc.acr.insufficient`.

use super::callback::Refusal;
use super::checks::{self, Introspection, RefreshedSub, Rotation};
use super::{lock, refusal_response, session_id, RelyingParty, TrustedOp};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
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
    /// answer must carry a new (rotated) refresh token and (unless the profile issues none on
    /// refresh, CIE) an ID token that passes the
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
            acr,
        })
    }

    /// The refresh itself; returns the new access and refresh tokens and the level of the
    /// new ID token (None: the profile issues none on refresh, CIE).
    async fn refreshed(
        &self,
        op: &TrustedOp,
        session: &Session,
        presented: &str,
    ) -> Result<(String, String, Option<SpidLevel>), Refusal> {
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
        let rotation = Rotation {
            refresh_token: tokens.refresh_token,
            presented: presented.to_owned(),
        };
        checks::run(checks::ROTATION_RULES, &rotation, &self.ctx(op))?;
        // ROTATION_RULES refused an answer without a new refresh token.
        let rotated = rotation.refresh_token.unwrap_or_default();
        // TOKEN_RULES let an answer without id_token through only where the profile issues
        // none on refresh (CIE).
        let Some(id_token) = tokens.id_token.as_deref() else {
            return Ok((tokens.access_token, rotated, None));
        };
        let checked =
            self.check_id_token(op, id_token, &tokens.access_token, &session.nonce, true)?;
        let subs = RefreshedSub {
            login: session.sub.clone(),
            refreshed: checked.sub,
        };
        checks::run(checks::REFRESH_SUB_RULES, &subs, &self.ctx(op))?;
        Ok((tokens.access_token, rotated, Some(checked.acr)))
    }

    /// Introspects the session's access token at the OP (RFC 7662, `private_key_jwt`) and
    /// checks the answer as SPID asks (SPID-OIDC introspection endpoint): `active`; `iss` the OP; `client_id` this
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
            .map_err(|e| failed(e.to_string()))?;
        let answer = Introspection::new(a.status, a.body, session.sub.clone());
        let ctx = self.ctx(&op);
        checks::run(checks::INTROSPECTION_RULES, &answer, &ctx)?;
        let acr = answer.acr(&ctx)?;
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
