//! Refresh tokens, SPID's "long revocable sessions" (SPID-OIDC refresh token): issued only when the
//! authorization request asked `offline_access` with `prompt=consent`; signed JWTs bound to
//! one client; rotated at every use (new access token, ID token and refresh token, the
//! previous refresh token spent); a spent token presented again revokes its whole family;
//! revoking an access token revokes the refresh tokens issued with it (SPID-OIDC revocation endpoint).

use super::request::ValidAuthz;
use super::token::TokenRefusal;
use super::{lock, Client, OpPlan, OpenIdProvider, TokenGrant, MAX_ENTRIES};
use crate::users::User;
use serde_json::{json, Value};
use spid_core::oidc::claims::at_hash;
use spid_core::oidc::jose::{sign_jws, verify_jwt, JwsHeader};
use spid_core::oidc::plan::{PlanMiss, SignError};
use spid_core::SpidLevel;
use std::collections::HashMap;

/// Lifetime of a refresh token, seconds: the SPID maximum of 30 days. Each rotation issues
/// a token good for 30 days again ("renewing rotation": check-op CU3 / 3.5.16, and the
/// rules' worked example where a refresh at t1+32d still succeeds).
const REFRESH_TTL_SECS: i64 = 30 * 24 * 3600;

/// One login's chain of refresh tokens: what each refresh re-issues, and the one live token.
#[derive(Debug, Clone)]
pub(crate) struct Family {
    client_id: String,
    sub: String,
    scope: String,
    user: User,
    userinfo_claims: Vec<String>,
    /// The level refreshed tokens carry: SpidL1 when the original `acr_values` named it
    /// (SPID-OIDC refresh token, check-op 3.3.26: a refresh is only worth SpidL1 then), else the level
    /// granted at login.
    level: SpidLevel,
    /// `jti` of the only refresh token that may be used next.
    current: String,
    plan: OpPlan,
    /// The SSO session of the original login (revoking a refreshed access token ends it).
    session: Option<String>,
}

/// Every refresh token issued (by `jti`, so that a spent one is recognised when it comes
/// back) → its family id, and the live families. Revoking a family removes it: its tokens
/// then name nothing and are refused.
#[derive(Debug, Default)]
pub(crate) struct RefreshStore {
    tokens: HashMap<String, String>,
    families: HashMap<String, Family>,
}

impl RefreshStore {
    /// Keeps both maps under [`MAX_ENTRIES`]: first forgets spent tokens (a reuse of one is
    /// then refused as unknown, only without revoking its family), then, if live families
    /// alone fill the store, everything (a test OP; a real one would expire entries).
    fn make_room(&mut self) {
        if self.tokens.len() < MAX_ENTRIES && self.families.len() < MAX_ENTRIES {
            return;
        }
        let families = &self.families;
        self.tokens
            .retain(|jti, f| families.get(f).is_some_and(|fam| fam.current == *jti));
        if self.tokens.len() >= MAX_ENTRIES || self.families.len() >= MAX_ENTRIES {
            self.tokens.clear();
            self.families.clear();
        }
    }
}

/// Whether a login gets a refresh token: `offline_access` asked with `prompt=consent`. The
/// authorization checks already refuse `offline_access` without consent; checking both here
/// keeps the issuing rule readable in one place (SPID-OIDC token endpoint).
pub(super) fn offers_refresh(authz: &ValidAuthz) -> bool {
    authz.scope.iter().any(|s| s == "offline_access") && authz.prompt == "consent"
}

fn invalid(detail: &str) -> TokenRefusal {
    TokenRefusal::InvalidGrant(detail.to_string())
}

fn signing_failed(e: impl std::fmt::Display) -> TokenRefusal {
    TokenRefusal::InvalidRequest(format!("signing failed: {e}"))
}

impl OpenIdProvider {
    /// Opens the refresh-token family of a login just exchanged for tokens: `sub` is the
    /// pairwise subject, `granted` the level authenticated, `plan` the fault plan the
    /// exchange used (kept for the refreshes). Returns the family id and the first token.
    pub(super) fn open_refresh_family(
        &self,
        authz: &ValidAuthz,
        user: &User,
        granted: SpidLevel,
        sub: &str,
        plan: &OpPlan,
        session: Option<String>,
    ) -> Result<(String, String), TokenRefusal> {
        let jti = uuid::Uuid::new_v4().to_string();
        let token = self.sign_refresh_token(&authz.client_id, sub, &jti)?;
        let level = if authz.acr_values.contains(&SpidLevel::L1) {
            SpidLevel::L1
        } else {
            granted
        };
        let family = Family {
            client_id: authz.client_id.clone(),
            sub: sub.to_string(),
            scope: authz.scope.join(" "),
            user: user.clone(),
            userinfo_claims: authz.userinfo_claims.clone(),
            level,
            current: jti.clone(),
            plan: plan.clone(),
            session,
        };
        let id = super::random_id();
        let mut store = lock(&self.0.refresh);
        store.make_room();
        store.families.insert(id.clone(), family);
        store.tokens.insert(jti, id.clone());
        Ok((id, token))
    }

    /// A refresh token: a JWT signed like the other tokens, with `iss`, `client_id`, `sub`,
    /// `aud` = the token endpoint (where alone it is accepted), `iat`, `exp`, `jti`.
    fn sign_refresh_token(
        &self,
        client_id: &str,
        sub: &str,
        jti: &str,
    ) -> Result<String, TokenRefusal> {
        let cfg = &self.0.cfg;
        let iat = cfg.clock.now().timestamp();
        sign_jws(
            &json!({
                "iss": cfg.entity_id, "client_id": client_id, "sub": sub,
                "aud": cfg.endpoint("token"), "iat": iat, "exp": iat + REFRESH_TTL_SECS,
                "jti": jti,
            }),
            &self.0.signing_key,
            cfg.profile.default_signing_alg,
            Some("JWT"),
        )
        .map_err(signing_failed)
    }

    /// The `jti` of one of our refresh tokens issued to `client_id` (signature, `iss`, `aud`,
    /// `client_id` and expiry checked; whether it is still live is the store's business).
    fn refresh_token_jti(&self, token: &str, client_id: &str) -> Result<String, TokenRefusal> {
        let cfg = &self.0.cfg;
        let (header, claims) = verify_jwt(
            token,
            &self.jwks(),
            &cfg.profile.signing_algs,
            cfg.clock.now(),
            cfg.profile.skew(),
        )
        .map_err(|e| TokenRefusal::InvalidGrant(format!("refresh token: {e}")))?;
        // Access tokens are signed by the same key: their typ tells them apart early.
        if header.typ_is("at+jwt") {
            return Err(invalid("an access token is not a refresh token"));
        }
        let s = |n: &str| claims.get(n).and_then(Value::as_str);
        if s("iss") != Some(cfg.entity_id.as_str()) || s("aud") != Some(&cfg.endpoint("token")) {
            return Err(invalid("not a refresh token of this OP"));
        }
        if s("client_id") != Some(client_id) {
            return Err(invalid("refresh token issued to another client"));
        }
        s("jti")
            .map(str::to_owned)
            .ok_or_else(|| invalid("refresh token without jti"))
    }

    /// The family of a live refresh token of `client_id`, if `token` is one (revocation).
    pub(super) fn refresh_token_family(&self, token: &str, client_id: &str) -> Option<String> {
        let jti = self.refresh_token_jti(token, client_id).ok()?;
        let store = lock(&self.0.refresh);
        let family = store.tokens.get(&jti)?;
        store
            .families
            .get(family)
            .filter(|f| f.client_id == client_id)
            .map(|_| family.clone())
    }

    /// Revokes a family: its refresh tokens and every access token issued from it.
    pub(super) fn revoke_family(&self, family: &str) {
        lock(&self.0.refresh).families.remove(family);
        // Never both locks at once: the refresh store is always released first.
        self.drop_family_access_tokens(family);
    }

    fn drop_family_access_tokens(&self, family: &str) {
        lock(&self.0.tokens).retain(|_, g| g.family.as_deref() != Some(family));
    }

    /// The `refresh_token` grant for an already resolved `client`: `private_key_jwt`, then the
    /// token (ours, this client's, live and the family's current one), then rotation: a new
    /// access token, ID token (none where the profile issues none on refresh, CIE; encrypted
    /// as at login) and refresh token; the presented token and the family's earlier
    /// access tokens are invalidated (SPID-OIDC refresh token).
    pub(crate) fn refresh(
        &self,
        f: &HashMap<String, String>,
        client: &Client,
    ) -> Result<Value, TokenRefusal> {
        let cfg = &self.0.cfg;
        let param = |name: &str| {
            f.get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| TokenRefusal::InvalidRequest(format!("{name} is required")))
        };
        let client_id = param("client_id")?;
        self.authenticate(f, client_id, client, &cfg.endpoint("token"))?;
        let presented = param("refresh_token")?;
        let jti = self.refresh_token_jti(presented, client_id)?;

        let new_jti = uuid::Uuid::new_v4().to_string();
        let (family_id, fam) = {
            let mut store = lock(&self.0.refresh);
            store.make_room();
            let family_id = store
                .tokens
                .get(&jti)
                .cloned()
                .ok_or_else(|| invalid("unknown refresh token"))?;
            let Some(fam) = store.families.get_mut(&family_id) else {
                return Err(invalid("refresh token revoked"));
            };
            if fam.client_id != client_id {
                return Err(invalid("refresh token issued to another client"));
            }
            if fam.current != jti {
                // A spent token came back: either the RP or a thief holds a copy, and the OP
                // cannot tell which, so the whole session goes (RFC 9700 4.14.2; the safer
                // reading of SPID's rotation).
                store.families.remove(&family_id);
                drop(store);
                self.drop_family_access_tokens(&family_id);
                return Err(invalid("refresh token already used: its family is revoked"));
            }
            if let Some(t) = &fam.plan.refresh_response.transport {
                return Err(TokenRefusal::Planned(t.clone()));
            }
            // Rotation: from here on the presented token is spent.
            fam.current = new_jti.clone();
            let fam = fam.clone();
            store.tokens.insert(new_jti.clone(), family_id.clone());
            (family_id, fam)
        };
        self.drop_family_access_tokens(&family_id);

        let p = &cfg.profile;
        let alg = p.default_signing_alg;
        let iat = cfg.clock.now().timestamp();
        let at_jti = uuid::Uuid::new_v4().to_string();
        let at_exp = iat + p.access_token_lifetime_secs;
        let access = sign_jws(
            &json!({
                "iss": cfg.entity_id, "sub": fam.sub, "aud": [cfg.endpoint("userinfo")],
                "client_id": client_id, "scope": fam.scope,
                "iat": iat, "exp": at_exp, "jti": at_jti,
            }),
            &self.0.signing_key,
            alg,
            Some("at+jwt"),
        )
        .map_err(signing_failed)?;
        let plan = &fam.plan;
        // Same iss, sub and aud as at login; new iat/nbf/exp/jti; at_hash of the new access
        // token. No nonce: a refresh is no authentication request, and OIDC Core 12.2
        // (errata set 2) lets a refreshed ID token leave it out.
        let claims = json!({
            "iss": cfg.entity_id, "sub": fam.sub, "aud": client_id, "acr": fam.level.uri(),
            "at_hash": at_hash(&access, alg),
            "iat": iat, "nbf": iat, "exp": iat + p.id_token_lifetime_secs,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        let header = JwsHeader::new(alg, &self.0.signing_key).with_typ("JWT");
        // CIE: a refresh issues no new ID token (only tokens); a plan editing one misses.
        let id_token = if p.refresh_issues_id_token {
            let jws = plan
                .refresh_id_token
                .sign(
                    &claims,
                    &header,
                    &self.0.signing_key,
                    &self.0.foreign_key,
                    Value::clone,
                )
                .map_err(|e| match e {
                    SignError::Miss(m) => {
                        self.planned_miss(plan, m.within("plan.refresh_id_token"))
                    }
                    SignError::Jose(e) => signing_failed(e),
                })?;
            self.record_sent("refresh_id_token", &jws);
            Some(self.deliver_id_token(
                jws,
                client,
                &plan.refresh_id_token,
                plan,
                "plan.refresh_id_token",
            )?)
        } else if plan.refresh_id_token.is_empty() {
            None
        } else {
            let miss = PlanMiss {
                stage: "plan.refresh_id_token".into(),
                reason: "this profile issues no ID token on refresh".into(),
            };
            return Err(self.planned_miss(plan, miss));
        };
        let refresh_token = self.sign_refresh_token(client_id, &fam.sub, &new_jti)?;
        let grant = TokenGrant {
            client_id: client_id.to_string(),
            sub: fam.sub.clone(),
            scope: fam.scope.clone(),
            user: fam.user.clone(),
            userinfo_claims: fam.userinfo_claims.clone(),
            exp: at_exp,
            plan: fam.plan.clone(),
            level: fam.level,
            family: Some(family_id),
            session: fam.session.clone(),
        };
        super::bounded_insert(&mut lock(&self.0.tokens), at_jti, grant);
        let mut answer = json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": p.access_token_lifetime_secs,
            "refresh_token": refresh_token,
        });
        if let (Some(t), Some(obj)) = (id_token, answer.as_object_mut()) {
            obj.insert("id_token".into(), json!(t));
        }
        plan.refresh_response
            .edit
            .apply_value(&mut answer, "plan.refresh_response.edit")
            .map_err(|m| self.planned_miss(plan, m))?;
        Ok(answer)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::request::ValidAuthz;
    use super::super::token::JWT_BEARER;
    use super::super::{CodeGrant, OpConfig};
    use super::*;
    use crate::oidc::new_signing_key;
    use crate::users::{parse, DEFAULT_USERS};
    use axum::body::{to_bytes, Bytes};
    use axum::extract::State;
    use spid_core::clock::FixedClock;
    use spid_core::oidc::jose::{decode_unverified, verify_jws, Jwks, SigAlg, SigningKey};
    use spid_core::oidc::pkce::challenge_s256;
    use spid_core::Rule;
    use std::sync::Arc;

    const RP: &str = "http://rp.example/oidc/rp";
    const OTHER_RP: &str = "http://other.example/oidc/rp";

    pub(crate) struct Fixture {
        op: OpenIdProvider,
        clients: Vec<(String, Client, SigningKey)>,
    }

    fn fixture() -> Fixture {
        fixture_with(spid_core::oidc::Profile::rules_2023())
    }

    /// The fixture with its OP under `profile`.
    fn fixture_with(profile: spid_core::oidc::Profile) -> Fixture {
        let clock = Arc::new(FixedClock::new(spid_core::clock::now()));
        let users = parse(DEFAULT_USERS).unwrap_or_default();
        let mut cfg = OpConfig::new("http://op.example/oidc/op", users, clock);
        cfg.profile = profile;
        let op = OpenIdProvider::new(cfg).expect("op");
        let clients: Vec<(String, Client, SigningKey)> = [RP, OTHER_RP]
            .into_iter()
            .map(|id| {
                let key = new_signing_key().expect("key");
                let client = Client {
                    metadata: Default::default(),
                    jwks: Jwks::new(vec![key.public_jwk().expect("jwk")]),
                    exp: i64::MAX,
                };
                (id.to_string(), client, key)
            })
            .collect();
        for (id, client, _) in &clients {
            op.0.clients
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.clone(), client.clone());
        }
        Fixture { op, clients }
    }

    impl Fixture {
        fn client(&self, id: &str) -> &(String, Client, SigningKey) {
            self.clients
                .iter()
                .find(|(c, _, _)| c == id)
                .expect("a fixture client")
        }

        /// A `private_key_jwt` assertion of `client_id` for `endpoint`.
        fn assertion(&self, client_id: &str, endpoint: &str) -> String {
            let now = self.op.config().clock.now().timestamp();
            sign_jws(
                &json!({"iss": client_id, "sub": client_id,
                        "aud": self.op.config().endpoint(endpoint),
                        "iat": now, "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string()}),
                &self.client(client_id).2,
                SigAlg::RS256,
                None,
            )
            .expect("assertion")
        }

        /// A finished login by the first user at `acr_values`, exchanged for tokens.
        fn login(&self, scope: &[&str], prompt: &str, acr_values: &[SpidLevel]) -> Value {
            let verifier = "v".repeat(64);
            let authz = ValidAuthz {
                client_id: RP.into(),
                redirect_uri: format!("{RP}/callback"),
                state: "s".repeat(32),
                nonce: "n".repeat(32),
                code_challenge: challenge_s256(&verifier),
                scope: scope.iter().map(|s| s.to_string()).collect(),
                acr_values: acr_values.to_vec(),
                userinfo_claims: vec![],
                id_token_claims: vec![],
                prompt: prompt.into(),
                response_mode: Default::default(),
            };
            let grant = CodeGrant {
                authz,
                user: self.op.config().users[0].clone(),
                level: SpidLevel::L2,
                created: self.op.config().clock.now(),
                session: None,
                plan: None,
            };
            let code = super::super::random_id();
            lock(&self.op.0.codes).insert(code.clone(), grant);
            let form = form(&[
                ("grant_type", "authorization_code"),
                ("client_id", RP),
                ("code", &code),
                ("code_verifier", &verifier),
                ("redirect_uri", &format!("{RP}/callback")),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &self.assertion(RP, "token")),
            ]);
            self.op
                .exchange(&form, &self.client(RP).1)
                .expect("token response")
        }

        fn offline_login(&self) -> Value {
            self.login(&["openid", "offline_access"], "consent", &[SpidLevel::L2])
        }

        /// A refresh grant for `token`, authenticated as `client_id`.
        fn refresh(&self, client_id: &str, token: &str) -> Result<Value, TokenRefusal> {
            let form = form(&[
                ("grant_type", "refresh_token"),
                ("client_id", client_id),
                ("refresh_token", token),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &self.assertion(client_id, "token")),
            ]);
            self.op.refresh(&form, &self.client(client_id).1)
        }

        /// `endpoint` (`introspection` or `revocation`) called by RP about `token`.
        async fn call(&self, endpoint: &str, token: &str) -> (StatusCode, Value) {
            let body: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("client_id", RP),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &self.assertion(RP, endpoint)),
                    ("token", token),
                ])
                .finish();
            let state = State(self.op.clone());
            let r = if endpoint == "introspection" {
                super::super::introspect::introspection(state, Bytes::from(body)).await
            } else {
                super::super::introspect::revocation(state, Bytes::from(body)).await
            };
            let status = r.status();
            let bytes = to_bytes(r.into_body(), 1 << 16).await.unwrap_or_default();
            (status, serde_json::from_slice(&bytes).unwrap_or_default())
        }
    }

    use axum::http::StatusCode;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn text(v: &Value, k: &str) -> String {
        v[k].as_str().unwrap_or_default().to_string()
    }

    fn refused(r: Result<Value, TokenRefusal>, what: &str) -> String {
        match r {
            Err(TokenRefusal::InvalidGrant(d)) => d,
            other => panic!("expected invalid_grant ({what}), got {other:?}"),
        }
    }

    /// A refresh-grant case: what the RP presents instead of the live refresh token of the
    /// offline login it is given (its token response).
    pub(crate) type RefreshCase = (
        Rule,
        &'static str,
        fn(&Fixture, &Value) -> Result<Value, TokenRefusal>,
    );

    /// The refresh grant's refusals of a token (`op.token.grant`), one edit each.
    pub(crate) const REFRESH_CASES: &[RefreshCase] = &[
        (Rule::OpTokenGrant, "not a JWT", |fx, _| {
            fx.refresh(RP, "x.y.z")
        }),
        (Rule::OpTokenGrant, "the access token", |fx, t| {
            fx.refresh(RP, &text(t, "access_token"))
        }),
        (Rule::OpTokenGrant, "the ID token", |fx, t| {
            fx.refresh(RP, &text(t, "id_token"))
        }),
        (Rule::OpTokenGrant, "by another client", |fx, t| {
            fx.refresh(OTHER_RP, &text(t, "refresh_token"))
        }),
        (Rule::OpTokenGrant, "never issued", |fx, _| {
            let unissued = fx.op.sign_refresh_token(RP, "x", &"j".repeat(32))?;
            fx.refresh(RP, &unissued)
        }),
        (Rule::OpTokenGrant, "spent", |fx, t| {
            let rt = text(t, "refresh_token");
            fx.refresh(RP, &rt)?;
            fx.refresh(RP, &rt)
        }),
        (Rule::OpTokenGrant, "family revoked", |fx, t| {
            let rt = text(t, "refresh_token");
            if let Some(family) = fx.op.refresh_token_family(&rt, RP) {
                fx.op.revoke_family(&family);
            }
            fx.refresh(RP, &rt)
        }),
    ];

    /// The honest refresh of a live offline login succeeds; each case is refused as
    /// `invalid_grant` by its rule.
    #[test]
    fn each_refresh_refusal_has_its_rule() {
        let fx = fixture();
        let login = fx.offline_login();
        assert!(fx.refresh(RP, &text(&login, "refresh_token")).is_ok());
        for (rule, what, case) in REFRESH_CASES {
            let login = fx.offline_login();
            let r = case(&fx, &login).map_err(|e| (e.error(), e.rule()));
            assert_eq!(r.map(|_| ()), Err(("invalid_grant", *rule)), "{what}");
        }
    }

    #[test]
    fn refresh_token_is_a_signed_jwt_bound_to_client_and_token_endpoint() {
        let fx = fixture();
        let tokens = fx.offline_login();
        let rt = text(&tokens, "refresh_token");
        let (header, claims) =
            verify_jws(&rt, &fx.op.jwks(), &[SigAlg::RS256, SigAlg::RS512]).expect("signed");
        assert!(!header.typ_is("at+jwt"));
        assert_eq!(claims["iss"], fx.op.entity_id());
        assert_eq!(claims["client_id"], RP);
        assert_eq!(claims["aud"], fx.op.config().endpoint("token"));
        let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
        assert!(matches!((iat, exp), (Some(i), Some(e)) if e > i && e - i <= 30 * 24 * 3600));
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
        let (_, id_token) = decode_unverified(&text(&tokens, "id_token")).expect("id token");
        assert_eq!(claims["sub"], id_token["sub"]);
    }

    #[test]
    fn rotation_spends_each_token_and_reuse_revokes_the_family() {
        let fx = fixture();
        let login = fx.offline_login();
        let (_, login_idt) = decode_unverified(&text(&login, "id_token")).expect("id token");
        let rt1 = text(&login, "refresh_token");

        let second = fx.refresh(RP, &rt1).expect("first refresh");
        let rt2 = text(&second, "refresh_token");
        assert_ne!(rt2, rt1);
        assert_ne!(text(&second, "access_token"), text(&login, "access_token"));
        assert_eq!(second["token_type"], "Bearer");
        // The refreshed ID token: same sub, new jti, at_hash of the new access token, the
        // granted level, and no nonce.
        let (_, idt) = verify_jws(
            &text(&second, "id_token"),
            &fx.op.jwks(),
            &[SigAlg::RS256, SigAlg::RS512],
        )
        .expect("signed ID token");
        assert_eq!(idt["sub"], login_idt["sub"]);
        assert_eq!(idt["aud"], RP);
        assert_ne!(idt["jti"], login_idt["jti"]);
        assert!(idt.get("nonce").is_none(), "{idt}");
        assert_eq!(idt["acr"], SpidLevel::L2.uri());
        assert_eq!(idt["nbf"], idt["iat"]);
        assert_eq!(
            idt["at_hash"],
            at_hash(&text(&second, "access_token"), SigAlg::RS256)
        );
        // The login's access token was replaced by the refreshed one.
        assert_eq!(fx.op.live_access_tokens(), 1);

        // A second rotation works with the new token...
        let third = fx.refresh(RP, &rt2).expect("second refresh");
        let rt3 = text(&third, "refresh_token");
        // ...and a spent token coming back revokes the whole family.
        let d = refused(fx.refresh(RP, &rt1), "reused rt1");
        assert!(d.contains("already used"), "{d}");
        let d = refused(fx.refresh(RP, &rt3), "rt3 after the family was revoked");
        assert!(d.contains("revoked"), "{d}");
        assert_eq!(fx.op.live_access_tokens(), 0);
    }

    #[test]
    fn a_cie_refresh_issues_no_id_token() {
        let fx = fixture_with(spid_core::oidc::Profile::cie());
        let login = fx.offline_login();
        let answer = fx
            .refresh(RP, &text(&login, "refresh_token"))
            .expect("refresh");
        assert!(answer.get("id_token").is_none(), "{answer}");
        assert!(!text(&answer, "refresh_token").is_empty());
        assert!(!text(&answer, "access_token").is_empty());
        // The SPID OP does issue one.
        let spid = fixture();
        let login = spid.offline_login();
        let answer = spid
            .refresh(RP, &text(&login, "refresh_token"))
            .expect("refresh");
        assert!(answer.get("id_token").is_some());
    }

    #[test]
    fn no_refresh_token_without_offline_access() {
        let fx = fixture();
        let online = fx.login(&["openid"], "consent login", &[SpidLevel::L2]);
        assert!(online.get("refresh_token").is_none(), "{online}");
        // offline_access without prompt=consent (refused at authorization anyway): none.
        let no_consent = fx.login(&["openid", "offline_access"], "consent login", &[]);
        assert!(no_consent.get("refresh_token").is_none(), "{no_consent}");

        // Whatever is presented instead is invalid_grant: the access token, the ID token,
        // a token signed by the client's own key, garbage.
        let at = text(&online, "access_token");
        let d = refused(fx.refresh(RP, &at), "access token");
        assert!(d.contains("access token"), "{d}");
        let d = refused(fx.refresh(RP, &text(&online, "id_token")), "ID token");
        assert!(d.contains("not a refresh token"), "{d}");
        let now = fx.op.config().clock.now().timestamp();
        let forged = sign_jws(
            &json!({"iss": fx.op.entity_id(), "client_id": RP, "sub": "x",
                    "aud": fx.op.config().endpoint("token"), "iat": now, "exp": now + 60,
                    "jti": "j".repeat(32)}),
            &fx.client(RP).2,
            SigAlg::RS256,
            Some("JWT"),
        )
        .expect("forged");
        refused(fx.refresh(RP, &forged), "forged");
        // Our key and the right claims, but never issued: unknown.
        let unissued = fx
            .op
            .sign_refresh_token(RP, "x", &"j".repeat(32))
            .expect("signed");
        let d = refused(fx.refresh(RP, &unissued), "never issued");
        assert!(d.contains("unknown"), "{d}");
        refused(fx.refresh(RP, "x.y.z"), "garbage");
        // No refresh_token parameter at all is a malformed request.
        let r = fx.refresh(RP, "");
        assert!(
            matches!(&r, Err(TokenRefusal::InvalidRequest(d)) if d.contains("refresh_token")),
            "{r:?}"
        );
    }

    #[test]
    fn another_clients_refresh_token_is_refused() {
        let fx = fixture();
        let rt = text(&fx.offline_login(), "refresh_token");
        let d = refused(fx.refresh(OTHER_RP, &rt), "other client");
        assert!(d.contains("another client"), "{d}");
        // The rightful client still holds a live session.
        assert!(fx.refresh(RP, &rt).is_ok());
    }

    #[test]
    fn refresh_needs_client_authentication() {
        let fx = fixture();
        let rt = text(&fx.offline_login(), "refresh_token");
        let mut f = form(&[
            ("grant_type", "refresh_token"),
            ("client_id", RP),
            ("refresh_token", &rt),
            ("client_assertion_type", JWT_BEARER),
            // Signed by the other client's key.
            ("client_assertion", &fx.assertion(OTHER_RP, "token")),
        ]);
        let r = fx.op.refresh(&f, &fx.client(RP).1);
        assert_eq!(
            r.map_err(|e| (e.error(), e.rule())),
            Err(("invalid_client", Rule::OpTokenClientAssertionSignature))
        );
        f.remove("client_assertion");
        let r = fx.op.refresh(&f, &fx.client(RP).1);
        assert_eq!(
            r.map_err(|e| (e.error(), e.rule())),
            Err(("invalid_client", Rule::OpTokenClientAssertionMissing))
        );
        // Refusals before the store leave the token usable.
        assert!(fx.refresh(RP, &rt).is_ok());
    }

    #[tokio::test]
    async fn revoking_the_access_token_kills_the_refresh_token() {
        let fx = fixture();
        let login = fx.offline_login();
        let rt1 = text(&login, "refresh_token");
        let refreshed = fx.refresh(RP, &rt1).expect("refresh");
        let (status, _) = fx
            .call("revocation", &text(&refreshed, "access_token"))
            .await;
        assert_eq!(status, StatusCode::OK);
        let d = refused(
            fx.refresh(RP, &text(&refreshed, "refresh_token")),
            "after revocation",
        );
        assert!(d.contains("revoked"), "{d}");

        // Revoking a refresh token ends its family, access token included.
        let login = fx.offline_login();
        let at = text(&login, "access_token");
        assert_eq!(fx.call("introspection", &at).await.1["active"], true);
        fx.call("revocation", &text(&login, "refresh_token")).await;
        assert_eq!(fx.call("introspection", &at).await.1["active"], false);
    }

    #[tokio::test]
    async fn an_l1_request_refreshes_to_spid_l1_everywhere() {
        let fx = fixture();
        // acr_values SpidL2 then SpidL1: the login is L2, every refresh only SpidL1
        // (SPID-OIDC refresh token, check-op 3.3.26).
        let login = fx.login(
            &["openid", "offline_access"],
            "consent",
            &[SpidLevel::L2, SpidLevel::L1],
        );
        let (_, idt) = decode_unverified(&text(&login, "id_token")).expect("id token");
        assert_eq!(idt["acr"], SpidLevel::L2.uri());
        let (_, v) = fx
            .call("introspection", &text(&login, "access_token"))
            .await;
        assert_eq!(v["acr"], SpidLevel::L2.uri(), "{v}");

        let refreshed = fx
            .refresh(RP, &text(&login, "refresh_token"))
            .expect("refresh");
        let (_, idt) = decode_unverified(&text(&refreshed, "id_token")).expect("id token");
        assert_eq!(idt["acr"], SpidLevel::L1.uri());
        let (_, v) = fx
            .call("introspection", &text(&refreshed, "access_token"))
            .await;
        assert_eq!(v["active"], true);
        assert_eq!(v["acr"], SpidLevel::L1.uri(), "{v}");
        for member in ["scope", "exp", "sub", "client_id", "iss", "aud"] {
            assert!(v.get(member).is_some(), "{member} missing: {v}");
        }
        assert_eq!(v["scope"], "openid offline_access");
        assert_eq!(v["sub"], idt["sub"]);
    }

    #[tokio::test]
    async fn plan_faults_follow_the_login_into_refresh_and_introspection() {
        let fx = fixture();
        let plan = |t: &str| toml::from_str::<OpPlan>(t).expect("plan");
        fx.op.arm(plan(
            r#"
            [refresh_id_token.pre_sign]
            set = { acr = "https://www.spid.gov.it/SpidL1", sub = "another-subject" }
            [introspection.edit]
            set = { acr = "https://www.spid.gov.it/SpidL1" }
            "#,
        ));
        let login = fx.offline_login();
        let (_, idt) = decode_unverified(&text(&login, "id_token")).expect("id token");
        assert_eq!(idt["acr"], SpidLevel::L2.uri(), "login itself is honest");
        let (_, v) = fx
            .call("introspection", &text(&login, "access_token"))
            .await;
        assert_eq!(v["acr"], SpidLevel::L1.uri());
        let refreshed = fx
            .refresh(RP, &text(&login, "refresh_token"))
            .expect("refresh");
        let (_, new_idt) = decode_unverified(&text(&refreshed, "id_token")).expect("id token");
        assert_eq!(new_idt["acr"], SpidLevel::L1.uri());
        assert_ne!(new_idt["sub"], idt["sub"]);

        fx.op.arm(plan(
            r#"
            [refresh_response.transport]
            status = 400
            body = '{"error": "invalid_grant"}'
            [introspection.transport]
            status = 200
            body = '{"active": false}'
            "#,
        ));
        let login = fx.offline_login();
        let (_, v) = fx
            .call("introspection", &text(&login, "access_token"))
            .await;
        assert_eq!(v, json!({"active": false}));
        match fx.refresh(RP, &text(&login, "refresh_token")) {
            Err(TokenRefusal::Planned(t)) => assert_eq!(t.status, 400),
            other => panic!("expected the planned answer, got {other:?}"),
        }

        fx.op.arm(plan(
            r#"
            [introspection.transport]
            status = 500
            body = "internal error"
            "#,
        ));
        let login = fx.offline_login();
        let (status, _) = fx
            .call("introspection", &text(&login, "access_token"))
            .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
