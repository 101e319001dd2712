//! `/introspection` (RFC 7662) and `/revocation` (RFC 7009), both behind `private_key_jwt`.
//! Introspection answers the profile's `introspection_fields` (SPID: the full set; CIE:
//! `active` only). Revoking an access token also revokes the refresh tokens issued with it
//! and ends its SSO session where the profile cascades (SPID-OIDC revocation endpoint; CIE
//! does not); revoking a refresh token revokes its family, access tokens included.

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
            keep_profile_fields(&mut answer, &cfg.profile.introspection_fields);
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

/// Keeps the members the profile's introspection answer carries. `acr`, an extension
/// member, goes with an answer that names the subject (`sub`): a profile answering `active`
/// only (CIE) says nothing else.
fn keep_profile_fields(answer: &mut Value, fields: &[String]) {
    let names_subject = fields.iter().any(|f| f == "sub");
    if let Some(obj) = answer.as_object_mut() {
        obj.retain(|k, _| fields.iter().any(|f| f == k) || (k == "acr" && names_subject));
    }
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
        if let Some(g) = revoked.filter(|_| op.0.cfg.profile.access_token_revocation_cascades) {
            // SPID: revoking the access token revokes its refresh tokens and ends the SSO
            // session it was obtained in (the user's other tokens stay valid). CIE: only the
            // access token goes.
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

#[cfg(test)]
mod tests {
    use super::super::request::ValidAuthz;
    use super::super::tests::profiled;
    use super::super::token::tests::{request, Fixture};
    use super::super::token::JWT_BEARER;
    use super::super::{random_id, CodeGrant};
    use super::*;
    use axum::body::to_bytes;
    use spid_core::oidc::jose::{sign_jws, SigAlg};
    use spid_core::oidc::pkce::challenge_s256;
    use spid_core::oidc::Profile;
    use spid_core::SpidLevel;

    const RP: &str = "http://rp.example/oidc/rp";

    /// The fixture under `profile`, its RP resolved.
    fn fixture(profile: Profile) -> Fixture {
        let fx = profiled(profile);
        fx.op
            .0
            .clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(RP.into(), fx.client.clone());
        fx
    }

    /// An `offline_access` login with `prompt=consent`, exchanged: access and refresh tokens.
    fn offline_tokens(fx: &Fixture) -> (String, String) {
        let verifier = "v".repeat(64);
        let authz = ValidAuthz {
            client_id: RP.into(),
            redirect_uri: format!("{RP}/callback"),
            state: "s".repeat(32),
            nonce: "n".repeat(32),
            code_challenge: challenge_s256(&verifier),
            scope: vec!["openid".into(), "offline_access".into()],
            acr_values: vec![SpidLevel::L2],
            userinfo_claims: vec![],
            id_token_claims: vec![],
            prompt: "consent".into(),
            response_mode: Default::default(),
        };
        let grant = CodeGrant {
            authz,
            user: fx.op.config().users[0].clone(),
            level: SpidLevel::L2,
            created: fx.op.config().clock.now(),
            session: None,
            plan: None,
        };
        let code = random_id();
        lock(&fx.op.0.codes).insert(code.clone(), grant);
        let t = fx
            .op
            .exchange(&request(fx, &code, &verifier), &fx.client)
            .expect("tokens");
        let s = |k: &str| t[k].as_str().unwrap_or_default().to_string();
        (s("access_token"), s("refresh_token"))
    }

    fn assertion(fx: &Fixture, endpoint: &str) -> String {
        let now = fx.op.config().clock.now().timestamp();
        sign_jws(
            &json!({"iss": RP, "sub": RP, "aud": fx.op.config().endpoint(endpoint),
                    "iat": now, "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string()}),
            &fx.rp_key,
            SigAlg::RS256,
            None,
        )
        .expect("assertion")
    }

    /// `endpoint` (`introspection` or `revocation`) called by the RP about `token`.
    async fn call(fx: &Fixture, endpoint: &str, token: &str) -> Value {
        let a = assertion(fx, endpoint);
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("client_id", RP),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", a.as_str()),
                ("token", token),
            ])
            .finish();
        let state = State(fx.op.clone());
        let r = if endpoint == "introspection" {
            introspection(state, Bytes::from(body)).await
        } else {
            revocation(state, Bytes::from(body)).await
        };
        assert_eq!(r.status(), StatusCode::OK, "{endpoint}");
        let bytes = to_bytes(r.into_body(), 1 << 16).await.unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    /// A refresh grant presenting `token`: whether it was accepted.
    fn refreshes(fx: &Fixture, token: &str) -> bool {
        let a = assertion(fx, "token");
        let f: HashMap<String, String> = [
            ("grant_type", "refresh_token"),
            ("client_id", RP),
            ("refresh_token", token),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", a.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        fx.op.refresh(&f, &fx.client).is_ok()
    }

    #[tokio::test]
    async fn introspection_answers_the_profile_fields() {
        let fx = fixture(Profile::rules_2023());
        let (at, _) = offline_tokens(&fx);
        let v = call(&fx, "introspection", &at).await;
        for member in [
            "active",
            "scope",
            "exp",
            "sub",
            "client_id",
            "iss",
            "aud",
            "acr",
        ] {
            assert!(v.get(member).is_some(), "SPID: {member} missing from {v}");
        }
        let fx = fixture(Profile::cie());
        let (at, _) = offline_tokens(&fx);
        assert_eq!(
            call(&fx, "introspection", &at).await,
            json!({"active": true})
        );
        assert_eq!(
            call(&fx, "introspection", "x.y.z").await,
            json!({"active": false})
        );
    }

    #[tokio::test]
    async fn access_token_revocation_cascades_only_where_the_profile_says() {
        // SPID: the refresh token goes with its access token.
        let fx = fixture(Profile::rules_2023());
        let (at, rt) = offline_tokens(&fx);
        call(&fx, "revocation", &at).await;
        assert_eq!(call(&fx, "introspection", &at).await["active"], false);
        assert!(
            !refreshes(&fx, &rt),
            "SPID: refresh after access-token revocation"
        );

        // CIE: only the access token goes; the refresh token still works.
        let fx = fixture(Profile::cie());
        let (at, rt) = offline_tokens(&fx);
        call(&fx, "revocation", &at).await;
        assert_eq!(call(&fx, "introspection", &at).await["active"], false);
        assert!(refreshes(&fx, &rt), "CIE: the refresh token survives");

        // CIE: revoking the refresh token revokes everything issued from it.
        let (at, rt) = offline_tokens(&fx);
        call(&fx, "revocation", &rt).await;
        assert_eq!(call(&fx, "introspection", &at).await["active"], false);
        assert!(
            !refreshes(&fx, &rt),
            "CIE: refresh after refresh-token revocation"
        );
    }
}
