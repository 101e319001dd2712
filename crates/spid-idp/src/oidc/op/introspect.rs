//! `/introspection` (RFC 7662) and `/revocation` (RFC 7009), both behind `private_key_jwt`.
//! Revoking an access token also revokes the refresh tokens issued with it (SPID-OIDC
//! revocation endpoint); revoking a refresh token revokes its family, access tokens included.

use super::token::TokenRefusal;
use super::{lock, OpenIdProvider};
use crate::oidc::json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use spid_core::oidc::jose::verify_jws;
use std::collections::HashMap;

/// The body's fields within [`spid_net::FormLimits::default`], first value wins; a refusal
/// is the 400 to answer.
fn form(body: &[u8]) -> Result<HashMap<String, String>, Box<Response>> {
    spid_net::form(body, &spid_net::FormLimits::default())
        .map(spid_net::first_wins)
        .map_err(|e| Box::new(e.into_response()))
}

fn refusal(op: &OpenIdProvider, e: &TokenRefusal) -> Response {
    e.response(op.0.cfg.profile.invalid_client_status)
}

impl OpenIdProvider {
    /// Authenticates the caller of `endpoint` and returns its client_id and the `token`.
    async fn authenticated(
        &self,
        f: &HashMap<String, String>,
        endpoint: &str,
    ) -> Result<(String, String), TokenRefusal> {
        let client_id = f
            .get("client_id")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| TokenRefusal::InvalidRequest("client_id is required".into()))?;
        let client = self
            .client(client_id)
            .await
            .map_err(|e| TokenRefusal::UntrustedClient(e.to_string()))?;
        self.authenticate(f, client_id, &client, &self.0.cfg.endpoint(endpoint))?;
        let token = f
            .get("token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| TokenRefusal::InvalidRequest("token is required".into()))?;
        Ok((client_id.clone(), token.clone()))
    }

    /// The `jti` of one of our access tokens (signature checked, expiry not: an expired
    /// token is simply inactive).
    fn access_token_jti(&self, token: &str) -> Option<String> {
        let (h, claims) = verify_jws(token, &self.jwks(), &self.0.cfg.profile.signing_algs).ok()?;
        if !h.typ_is("at+jwt") {
            return None;
        }
        claims.get("jti").and_then(Value::as_str).map(str::to_owned)
    }
}

pub(crate) async fn introspection(State(op): State<OpenIdProvider>, body: Bytes) -> Response {
    let f = match form(&body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let (client_id, token) = match op.authenticated(&f, "introspection").await {
        Ok(x) => x,
        Err(e) => return refusal(&op, &e),
    };
    let cfg = &op.0.cfg;
    let now = cfg.clock.now().timestamp();
    let grant = op
        .access_token_jti(&token)
        .and_then(|jti| lock(&op.0.tokens).get(&jti).cloned())
        .filter(|g| g.client_id == client_id && g.exp > now);
    let answer = match grant {
        None => json!({"active": false}),
        Some(g) => {
            let plan = &g.plan.introspection;
            if let Some(t) = &plan.transport {
                return super::transport(t);
            }
            // The SPID members (SPID-OIDC introspection endpoint), `aud` being the access token's. `acr` is an
            // extension member (RFC 7662 2.2 allows them): the level this token's grant
            // carries, so an RP can tell that a token refreshed from an L1 request is only
            // worth SpidL1.
            let mut answer = json!({
                "active": true, "scope": g.scope, "exp": g.exp, "sub": g.sub,
                "client_id": g.client_id,
                "iss": cfg.entity_id, "aud": [cfg.endpoint("userinfo")],
                "acr": g.level.uri(),
            });
            if let Err(m) = plan
                .edit
                .apply_value(&mut answer, "plan.introspection.edit")
            {
                op.note_miss(g.plan.case.as_deref(), &m);
                return OpenIdProvider::miss_page(&m);
            }
            answer
        }
    };
    json(StatusCode::OK, &answer)
}

pub(crate) async fn revocation(State(op): State<OpenIdProvider>, body: Bytes) -> Response {
    let f = match form(&body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let (client_id, token) = match op.authenticated(&f, "revocation").await {
        Ok(x) => x,
        Err(e) => return refusal(&op, &e),
    };
    if let Some(jti) = op.access_token_jti(&token) {
        let revoked = {
            let mut tokens = lock(&op.0.tokens);
            if tokens.get(&jti).is_some_and(|g| g.client_id == client_id) {
                tokens.remove(&jti)
            } else {
                None
            }
        };
        if let Some(g) = revoked {
            // SPID: revoking the access token revokes its refresh tokens and ends the SSO
            // session it was obtained in (the user's other tokens stay valid).
            if let Some(family) = g.family {
                op.revoke_family(&family);
            }
            if let Some(session) = g.session {
                op.end_session(&session);
            }
        }
    } else if let Some(family) = op.refresh_token_family(&token, &client_id) {
        op.revoke_family(&family);
    }
    // RFC 7009 2.2: 200 whether or not the token was known.
    json(StatusCode::OK, &json!({}))
}
