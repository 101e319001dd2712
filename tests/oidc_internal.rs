//! SPID OpenID Connect end to end over loopback: our trust anchor, our OP (inside the IdP,
//! same users and login pages) and our RP (inside the SP), each on its own 127.0.0.1 port,
//! trusting each other only through trust-anchor registration. Every case asserts the final
//! status and, on refusals, the `X-SPID-Rule`.

use spid_core::clock::Clock;
use spid_core::SpidLevel;
use spid_harness::agent::{Page, UserAgent};
use spid_harness::oidc::{self as oidc_catalogue, OidcFederation};
use spid_harness::runner::{self, Credentials};
use spid_idp::oidc::op::OpPlan;

/// An OP plan written as in a case file's `[plan]`.
fn op_plan(toml_text: &str) -> OpPlan {
    toml::from_str(toml_text).expect("plan")
}
use spid_idp::oidc::ta::EntityKind;
use spid_idp::users::User;
use url::Url;

/// The library's federation plus the helpers these tests share.
struct Federation(OidcFederation);

impl std::ops::Deref for Federation {
    type Target = OidcFederation;
    fn deref(&self) -> &OidcFederation {
        &self.0
    }
}

impl Federation {
    async fn start() -> Federation {
        Federation(
            OidcFederation::start(Credentials::embedded().unwrap())
                .await
                .unwrap(),
        )
    }

    /// One browser login by `username` through the OP's pages; the final page.
    async fn login(&self, username: &str) -> (UserAgent, Page) {
        let users = spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap();
        let user: Option<&User> = users.iter().find(|u| u.username == username);
        let mut ua = runner::user_agent().unwrap();
        let page = self.0.login(&mut ua, user).await.unwrap();
        (ua, page)
    }

    async fn login_with_plan(&self, username: &str, plan: OpPlan) -> Page {
        self.op.arm(plan);
        let (_, page) = self.login(username).await;
        self.op.disarm();
        page
    }
}

fn with_query(base: String, pairs: &[(&str, &str)]) -> Url {
    let mut u = Url::parse(&base).unwrap();
    u.query_pairs_mut().extend_pairs(pairs);
    u
}

fn assert_refused(page: &Page, rule: &str) {
    assert_eq!(page.status, 403, "{}", page.body);
    assert_eq!(page.spid_rule(), Some(rule), "{}", page.body);
}

fn assert_accepted(page: &Page, level: SpidLevel) {
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.spid_rule().is_none());
    assert!(page.body.contains(level.uri()), "{}", page.body);
}

#[tokio::test]
async fn l2_user_logs_in_with_userinfo_claims() {
    let fed = Federation::start().await;
    let (_, page) = fed.login("mario.rossi").await;
    assert_accepted(&page, SpidLevel::L2);
    assert!(
        page.body.contains("TINIT-RSSMRA80A01H501U"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("data-claim=\"https://attributes.eid.gov.it/fiscal_number\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("Mario"));
}

#[tokio::test]
async fn l3_user_gets_spid_l3() {
    let fed = Federation::start().await;
    let (_, page) = fed.login("luca.verdi").await;
    assert_accepted(&page, SpidLevel::L3);
}

#[tokio::test]
async fn op_issuing_l1_is_refused() {
    let fed = Federation::start().await;
    let plan = op_plan("[id_token.pre_sign]\nset = { acr = \"https://www.spid.gov.it/SpidL1\" }");
    let page = fed.login_with_plan("mario.rossi", plan).await;
    assert_refused(&page, "oidc.acr.insufficient");
    // The plan was used once: the next login is honest.
    let (_, page) = fed.login("mario.rossi").await;
    assert_accepted(&page, SpidLevel::L2);
}

#[tokio::test]
async fn l1_only_user_gets_an_error_response() {
    let fed = Federation::start().await;
    let (ua, page) = fed.login("anna.neri").await;
    assert_refused(&page, "oidc.error-response");
    assert!(page.body.contains("access_denied"), "{}", page.body);
    let callback = ua
        .trace()
        .iter()
        .rev()
        .find(|x| x.url.contains("/oidc/rp/callback"))
        .map(|x| x.url.clone())
        .unwrap();
    let q: Vec<(String, String)> = Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert!(q.iter().any(|(k, v)| k == "error" && v == "access_denied"));
    assert!(q.iter().any(|(k, v)| k == "iss" && v == fed.op.entity_id()));
    assert!(q.iter().any(|(k, _)| k == "state"));
}

#[tokio::test]
async fn replayed_callback_is_refused() {
    let fed = Federation::start().await;
    let (mut ua, page) = fed.login("mario.rossi").await;
    assert_accepted(&page, SpidLevel::L2);
    let callback = ua
        .trace()
        .iter()
        .rev()
        .find(|x| x.url.contains("/oidc/rp/callback"))
        .map(|x| Url::parse(&x.url).unwrap())
        .unwrap();
    let again = ua.get(&callback).await.unwrap();
    assert_refused(&again, "oidc.state.unknown");
}

#[tokio::test]
async fn federation_endpoints_answer() {
    let fed = Federation::start().await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for entity in [fed.ta.entity_id(), fed.op.entity_id(), fed.rp.entity_id()] {
        let r = http
            .get(format!("{entity}/.well-known/openid-federation"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"],
            "application/entity-statement+jwt"
        );
    }
    let list: Vec<String> = http
        .get(format!(
            "{}/list?entity_type=openid_provider",
            fed.ta.entity_id()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, vec![fed.op.entity_id().to_string()]);
    let status: serde_json::Value = http
        .get(with_query(
            format!("{}/trust_mark_status", fed.ta.entity_id()),
            &[
                ("sub", fed.rp.entity_id()),
                ("id", &fed.ta.trust_mark_id(EntityKind::OpenIdRelyingParty)),
            ],
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["active"], true);
    let unknown = http
        .get(with_query(
            format!("{}/fetch", fed.ta.entity_id()),
            &[("sub", "http://unknown.example")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let resolved = http
        .get(with_query(
            format!("{}/resolve", fed.ta.entity_id()),
            &[
                ("sub", fed.op.entity_id()),
                ("trust_anchor", fed.ta.entity_id()),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resolved.status(), 200);
}

#[tokio::test]
async fn unregistered_rp_gets_http_400_at_the_op() {
    let fed = Federation::start().await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .get(with_query(
            format!("{}/authorization", fed.op.entity_id()),
            &[
                ("client_id", "http://127.0.0.1:1/oidc/rp"),
                ("response_type", "code"),
                ("scope", "openid"),
                ("request", "a.b.c"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}

#[tokio::test]
async fn rp_refuses_an_op_without_a_trust_chain() {
    let fed = Federation::start().await;
    let mut ua = runner::user_agent().unwrap();
    // The trust anchor itself is no registered OP: no statement about it, no trust mark.
    let mut login = Url::parse(&format!("{}/login", fed.rp.entity_id())).unwrap();
    login
        .query_pairs_mut()
        .append_pair("op", fed.ta.entity_id());
    let page = ua.get(&login).await.unwrap();
    assert_refused(&page, "oidc.op.untrusted");
}

/// A hand-made RP registered at the trust anchor, to send the OP requests our RP never would.
struct RogueRp {
    id: String,
    key: spid_core::oidc::jose::SigningKey,
    other_key: spid_core::oidc::jose::SigningKey,
    _task: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl RogueRp {
    async fn start(fed: &Federation) -> RogueRp {
        use spid_core::oidc::federation::{sign_entity_statement, EntityStatement, Metadata};
        use spid_core::oidc::jose::{Jwks, SigAlg};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let id = format!("http://{}/rp", l.local_addr().unwrap());
        let fed_key = spid_idp::oidc::new_signing_key().unwrap();
        let key = spid_idp::oidc::new_signing_key().unwrap();
        let fed_jwks = Jwks::new(vec![fed_key.public_jwk().unwrap()]);
        let mark = fed
            .ta
            .register(&id, fed_jwks.clone(), EntityKind::OpenIdRelyingParty)
            .unwrap();
        let now = fed.clock.now().timestamp();
        let mut ec = EntityStatement::new(&id, &id, now, now + 3600, fed_jwks);
        let mut md = serde_json::Map::new();
        md.insert(
            "openid_relying_party".into(),
            serde_json::json!({
                "client_id": id, "redirect_uris": [format!("{id}/callback")],
                "jwks": Jwks::new(vec![key.public_jwk().unwrap()]).to_value(),
                "response_types": ["code"], "grant_types": ["authorization_code"],
                "token_endpoint_auth_method": "private_key_jwt",
                "client_registration_types": ["automatic"],
            }),
        );
        ec.metadata = Some(Metadata(md));
        ec.authority_hints = Some(vec![fed.ta.entity_id().to_string()]);
        ec.trust_marks = Some(vec![mark]);
        let jwt = sign_entity_statement(&ec, &fed_key, SigAlg::RS256).unwrap();
        let router = axum::Router::new().route(
            "/rp/.well-known/openid-federation",
            axum::routing::get(move || {
                let jwt = jwt.clone();
                async move { ([("content-type", "application/entity-statement+jwt")], jwt) }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, router).await;
        });
        RogueRp {
            id,
            key,
            other_key: fed_key,
            _task: AbortOnDrop(task),
        }
    }

    fn claims(&self, fed: &Federation) -> serde_json::Value {
        let now = fed.clock.now().timestamp();
        serde_json::json!({
            "client_id": self.id, "iss": self.id, "aud": fed.op.entity_id(),
            "iat": now, "exp": now + 60, "jti": uuid::Uuid::new_v4().simple().to_string(),
            "response_type": "code", "scope": "openid",
            "redirect_uri": format!("{}/callback", self.id),
            "code_challenge": spid_core::oidc::pkce::challenge_s256(&"v".repeat(64)),
            "code_challenge_method": "S256", "nonce": "n".repeat(32), "state": "s".repeat(32),
            "acr_values": SpidLevel::L2.uri(), "prompt": "consent login",
            "claims": {"userinfo": {"given_name": null}},
        })
    }

    /// The OP authorization URL carrying `claims` signed with `key`.
    fn authorization_url(
        &self,
        fed: &Federation,
        claims: &serde_json::Value,
        key: &spid_core::oidc::jose::SigningKey,
    ) -> Url {
        let request = spid_core::oidc::jose::sign_jws(
            claims,
            key,
            spid_core::oidc::jose::SigAlg::RS256,
            None,
        )
        .unwrap();
        with_query(
            format!("{}/authorization", fed.op.entity_id()),
            &[
                ("client_id", self.id.as_str()),
                ("response_type", "code"),
                ("scope", "openid"),
                ("request", request.as_str()),
            ],
        )
    }

    /// Sends `claims` signed with `key` to the OP; returns status and Location.
    async fn send(
        &self,
        fed: &Federation,
        claims: &serde_json::Value,
        key: &spid_core::oidc::jose::SigningKey,
    ) -> (u16, Option<Url>) {
        let request = spid_core::oidc::jose::sign_jws(
            claims,
            key,
            spid_core::oidc::jose::SigAlg::RS256,
            None,
        )
        .unwrap();
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let url = with_query(
            format!("{}/authorization", fed.op.entity_id()),
            &[
                ("client_id", self.id.as_str()),
                ("response_type", "code"),
                ("scope", "openid"),
                ("request", request.as_str()),
            ],
        );
        let r = http.get(url).send().await.unwrap();
        let loc = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Url::parse(v).ok());
        (r.status().as_u16(), loc)
    }
}

fn query_value(u: &Url, name: &str) -> Option<String> {
    u.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn op_checks_request_objects_over_http() {
    let fed = Federation::start().await;
    let rogue = RogueRp::start(&fed).await;

    // The honest object reaches the login page.
    let (status, loc) = rogue.send(&fed, &rogue.claims(&fed), &rogue.key).await;
    assert_eq!((status, loc), (200, None));

    // redirect_uri not registered: HTTP 400, no redirect.
    let mut c = rogue.claims(&fed);
    c["redirect_uri"] = serde_json::json!("http://evil.example/callback");
    let (status, loc) = rogue.send(&fed, &c, &rogue.key).await;
    assert_eq!((status, loc), (400, None));

    // Everything else goes back to the redirect_uri with error, state and iss.
    let expect_error = |loc: Option<Url>, error: &str| {
        let loc = loc.expect("a redirect");
        assert!(
            loc.as_str().starts_with(&format!("{}/callback?", rogue.id)),
            "{loc}"
        );
        assert_eq!(query_value(&loc, "error").as_deref(), Some(error), "{loc}");
        assert_eq!(query_value(&loc, "state"), Some("s".repeat(32)));
        assert_eq!(
            query_value(&loc, "iss").as_deref(),
            Some(fed.op.entity_id())
        );
    };
    // Signed with a key that is not the RP's OIDC key (its federation key).
    let (status, loc) = rogue
        .send(&fed, &rogue.claims(&fed), &rogue.other_key)
        .await;
    assert_eq!(status, 302);
    expect_error(loc, "invalid_request_object");

    let mutations: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "nonce",
            serde_json::json!("n".repeat(31)),
            "invalid_request",
        ),
        ("code_challenge", serde_json::Value::Null, "invalid_request"),
        (
            "claims",
            serde_json::json!({"id_token": {"given_name": null}}),
            "invalid_request",
        ),
        (
            "aud",
            serde_json::json!("http://other.example"),
            "invalid_request_object",
        ),
        (
            "acr_values",
            serde_json::json!("https://www.spid.gov.it/SpidL4"),
            "invalid_request",
        ),
        ("prompt", serde_json::json!("login"), "invalid_request"),
    ];
    for (claim, value, error) in mutations {
        let mut c = rogue.claims(&fed);
        if value.is_null() {
            c.as_object_mut().unwrap().remove(claim);
        } else {
            c[claim] = value;
        }
        let (status, loc) = rogue.send(&fed, &c, &rogue.key).await;
        assert_eq!(status, 302, "{claim}");
        expect_error(loc, error);
    }
}

#[tokio::test]
async fn revoked_trust_marks_break_trust() {
    // The OP's mark revoked at the anchor: the RP will not send users there.
    let fed = Federation::start().await;
    fed.ta.revoke(fed.op.entity_id());
    let mut ua = runner::user_agent().unwrap();
    let page = ua.get(&fed.login_url()).await.unwrap();
    assert_refused(&page, "oidc.op.untrusted");
    assert!(page.body.contains("not active"), "{}", page.body);

    // The RP's mark revoked: the OP answers its request with HTTP 400 and no redirect.
    let fed = Federation::start().await;
    fed.ta.revoke(fed.rp.entity_id());
    let mut ua = runner::user_agent().unwrap();
    let page = ua.get(&fed.login_url()).await.unwrap();
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        page.url.as_str().starts_with(fed.op.entity_id()),
        "{}",
        page.url
    );
}

#[tokio::test]
async fn logout_revokes_the_access_token() {
    let fed = Federation::start().await;
    let (mut ua, page) = fed.login("mario.rossi").await;
    assert_accepted(&page, SpidLevel::L2);
    assert_eq!(fed.op.live_access_tokens(), 1);
    let logout = Url::parse(&format!("{}/logout", fed.rp.entity_id())).unwrap();
    let page = ua.get(&logout).await.unwrap();
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("revoked at the OP (HTTP 200)"),
        "{}",
        page.body
    );
    assert_eq!(fed.op.live_access_tokens(), 0);
    // A second logout has nothing left to revoke.
    let page = ua.get(&logout).await.unwrap();
    assert!(page.body.contains("nothing to revoke"), "{}", page.body);
}

impl Federation {
    /// An accepted login by mario.rossi (with `offline=1` when `offline`) under `plan`; the
    /// browser, for the session's next steps.
    async fn session(&self, offline: bool, plan: OpPlan) -> UserAgent {
        let users = spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap();
        let user = users.iter().find(|u| u.username == "mario.rossi");
        let mut ua = runner::user_agent().unwrap();
        self.op.arm(plan);
        let page = if offline {
            self.0.offline_login(&mut ua, user).await
        } else {
            self.0.login(&mut ua, user).await
        }
        .unwrap();
        self.op.disarm();
        assert_accepted(&page, SpidLevel::L2);
        ua
    }

    async fn step(&self, ua: &mut UserAgent, path: &str) -> Page {
        ua.get(&self.rp_url(path)).await.unwrap()
    }
}

#[tokio::test]
async fn spid_l1_is_refused_on_refresh_and_on_introspection() {
    let fed = Federation::start().await;
    // A refreshed ID token at SpidL1 (what an OP owes a request naming SpidL1): refused, and
    // the session may not try again with the refresh token the OP has just rotated.
    let plan =
        op_plan("[refresh_id_token.pre_sign]\nset = { acr = \"https://www.spid.gov.it/SpidL1\" }");
    let mut ua = fed.session(true, plan).await;
    let page = fed.step(&mut ua, "refresh").await;
    assert_refused(&page, "oidc.acr.insufficient");
    assert!(page.body.contains("acr L1 below"), "{}", page.body);
    let page = fed.step(&mut ua, "refresh").await;
    assert_refused(&page, "oidc.session.missing");

    // Introspection reporting SpidL1 for the session's access token: refused.
    let plan = op_plan("[introspection.edit]\nset = { acr = \"https://www.spid.gov.it/SpidL1\" }");
    let mut ua = fed.session(false, plan).await;
    let page = fed.step(&mut ua, "introspect").await;
    assert_refused(&page, "oidc.acr.insufficient");
    assert!(page.body.contains("introspection acr"), "{}", page.body);
    assert!(page.body.contains("SpidL1"), "{}", page.body);
}

#[tokio::test]
async fn refresh_rotates_and_introspection_follows_the_new_token() {
    let fed = Federation::start().await;
    let mut ua = fed.session(true, OpPlan::default()).await;
    for _ in 0..3 {
        let page = fed.step(&mut ua, "refresh").await;
        assert_accepted(&page, SpidLevel::L2);
        // Each refresh replaces the access token: one live token at the OP.
        assert_eq!(fed.op.live_access_tokens(), 1);
        let page = fed.step(&mut ua, "introspect").await;
        assert_accepted(&page, SpidLevel::L2);
    }
    // Logout revokes the access token, and with it the refresh tokens (SPID): the session
    // is gone at the RP, and nothing is live at the OP.
    let page = fed.step(&mut ua, "logout").await;
    assert!(
        page.body.contains("revoked at the OP (HTTP 200)"),
        "{}",
        page.body
    );
    assert_eq!(fed.op.live_access_tokens(), 0);
    assert_refused(&fed.step(&mut ua, "refresh").await, "oidc.session.missing");
    assert_refused(
        &fed.step(&mut ua, "introspect").await,
        "oidc.session.missing",
    );
}

#[tokio::test]
async fn refresh_needs_an_offline_login_and_introspection_a_session() {
    let fed = Federation::start().await;
    let mut stranger = runner::user_agent().unwrap();
    assert_refused(
        &fed.step(&mut stranger, "refresh").await,
        "oidc.session.missing",
    );
    assert_refused(
        &fed.step(&mut stranger, "introspect").await,
        "oidc.session.missing",
    );
    // A login without offline=1 got no refresh token.
    let mut ua = fed.session(false, OpPlan::default()).await;
    let page = fed.step(&mut ua, "refresh").await;
    assert_refused(&page, "oidc.session.missing");
    assert!(page.body.contains("offline=1"), "{}", page.body);
    assert_accepted(&fed.step(&mut ua, "introspect").await, SpidLevel::L2);
}

#[tokio::test]
async fn refreshed_id_token_with_another_sub_is_refused() {
    let fed = Federation::start().await;
    let plan = op_plan("[refresh_id_token.pre_sign]\nset = { sub = \"another-subject\" }");
    let mut ua = fed.session(true, plan).await;
    assert_refused(
        &fed.step(&mut ua, "refresh").await,
        "oidc.refresh.sub-mismatch",
    );
}

/// Every fault the OP can be armed with, as data: `fixtures/cases/oidc/*.toml` (the
/// catalogue's own unit test checks that every `oidc.*` rule is expected by a case).
#[tokio::test]
async fn oidc_catalogue_passes() {
    let fed = Federation::start().await;
    let users = spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap();
    let cases = oidc_catalogue::embedded().unwrap();
    let mut failures = Vec::new();
    for case in &cases {
        let r = fed.run_case(case, &users).await;
        if !r.passed() {
            failures.push(format!(
                "{}: status {} rule {:?} {:?}",
                r.id, r.status, r.rule, r.note
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(cases.len() >= 20);
}

#[tokio::test]
async fn op_answers_by_form_post_when_asked() {
    let fed = Federation::start().await;
    let rogue = RogueRp::start(&fed).await;
    let users = spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap();
    for (user, field, value) in [
        ("mario.rossi", "state", "s".repeat(32)),
        ("anna.neri", "error", "access_denied".to_string()),
    ] {
        let mut claims = rogue.claims(&fed);
        claims["response_mode"] = serde_json::json!("form_post");
        let url = rogue.authorization_url(&fed, &claims, &rogue.key);
        let mut ua = runner::user_agent().unwrap();
        let u = users.iter().find(|u| u.username == user);
        runner::drive_login(&mut ua, &url, u, Default::default())
            .await
            .unwrap();
        // The agent submits the auto-posting form as a browser would: the answer reaches the
        // callback as a POST body, never in a query.
        let trace = ua.take_trace();
        let form_page = trace
            .iter()
            .find(|x| x.body_excerpt.contains("oidc-form-post"))
            .expect("a form_post page");
        assert_eq!(form_page.status, 200);
        let posted = trace
            .iter()
            .find(|x| x.url == format!("{}/callback", rogue.id))
            .expect("the callback was posted to");
        assert_eq!(posted.method, "POST");
        let got = |k: &str| {
            posted
                .request_form
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(got(field), Some(value.as_str()), "{user}");
        assert_eq!(got("iss"), Some(fed.op.entity_id()));
    }
}

#[tokio::test]
async fn rp_callback_accepts_post_and_still_enforces_state() {
    let fed = Federation::start().await;
    let (mut ua, page) = fed.login("mario.rossi").await;
    assert_accepted(&page, SpidLevel::L2);
    let callback = ua
        .trace()
        .iter()
        .rev()
        .find(|x| x.url.contains("/oidc/rp/callback"))
        .map(|x| Url::parse(&x.url).unwrap())
        .unwrap();
    let params: Vec<(String, String)> = callback.query_pairs().into_owned().collect();
    let mut bare = callback.clone();
    bare.set_query(None);
    let page = ua.post_form(&bare, &params).await.unwrap();
    assert_refused(&page, "oidc.state.unknown");
    let page = ua.post_form(&bare, &[]).await.unwrap();
    assert_refused(&page, "oidc.state.missing");
}

#[tokio::test]
async fn op_plan_can_be_armed_over_http_with_the_admin_token() {
    use spid_harness::runner::Credentials;
    use spid_idp::oidc::op::OpenIdProvider;
    let creds = Credentials::embedded().unwrap();
    let clock = std::sync::Arc::new(spid_core::clock::FixedClock::new(spid_core::clock::now()));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let mut cfg = spid_idp::IdpConfig::new(&base, creds.idp, creds.foreign);
    cfg.clock = clock;
    cfg.admin_token = Some("s3cret".into());
    let idp = spid_idp::IdentityProvider::new(cfg).unwrap();
    let op = OpenIdProvider::new(idp.op_config()).unwrap();
    let served = op.clone();
    let task = tokio::spawn(async move {
        let _ = idp.serve_with_op(l, &served).await;
    });
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let arm = |token: &'static str, body: &'static str| {
        http.post(format!("{base}/oidc/op/admin/arm"))
            .header("authorization", format!("Bearer {token}"))
            .body(body)
            .send()
    };
    assert_eq!(
        arm("wrong", r#"{"id_token": {"sign": {"key": "foreign"}}}"#)
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        arm("s3cret", r#"{"acr": "L1"}"#).await.unwrap().status(),
        400
    );
    assert_eq!(
        arm("s3cret", r#"{"id_token": {"encrypt": {"skip": true}}}"#)
            .await
            .unwrap()
            .status(),
        400,
        "a stage the ID token does not have"
    );
    assert_eq!(
        arm("s3cret", r#"{"id_token": {"sign": {"key": "foreign"}}}"#)
            .await
            .unwrap()
            .status(),
        200
    );
    task.abort();
}

#[tokio::test]
async fn an_rp_not_requiring_nbf_fails_exactly_that_case() {
    let mut weak = spid_core::oidc::Profile::rules_2023();
    weak.id_token_require_nbf = false;
    let fed = OidcFederation::start_with(Credentials::embedded().unwrap(), None, Some(weak))
        .await
        .unwrap();
    let users = spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap();
    let cases: Vec<_> = oidc_catalogue::embedded()
        .unwrap()
        .into_iter()
        .filter(|c| c.family == "id-token")
        .collect();
    assert!(cases.len() >= 20);
    let mut failed = Vec::new();
    for c in &cases {
        if !fed.run_case(c, &users).await.passed() {
            failed.push(c.id.clone());
        }
    }
    assert_eq!(failed, vec!["id-token-no-nbf".to_string()]);
}

#[tokio::test]
async fn the_external_path_agrees_at_our_rp() {
    // As check-rp judges an RP it does not own: status only (no rule codes required) and only
    // the login flows (refresh and introspection need our RP's session endpoints; a spoiled
    // entity configuration needs the RP to resolve afresh).
    let fed = Federation::start().await;
    let users = spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap();
    let login_url = fed.login_url();
    let target = oidc_catalogue::RpTarget {
        op: &fed.op,
        login_url: &login_url,
        accept_marker: Some("data-outcome=\"accepted\""),
        internal: false,
        ours: None,
    };
    let mut failed = Vec::new();
    let mut ran = 0;
    for c in oidc_catalogue::embedded().unwrap() {
        if c.flow != oidc_catalogue::OidcFlow::Login || c.plan.alters_federation() {
            continue;
        }
        ran += 1;
        let r = oidc_catalogue::run_rp_case(&target, &c, &users).await;
        if !r.passed() {
            failed.push(format!("{} {:?} {:?}", r.id, r.verdict, r.note));
        }
    }
    assert!(ran >= 50, "{ran}");
    assert_eq!(failed, Vec::<String>::new());
}

#[tokio::test]
async fn the_external_cie_path_agrees_at_our_cie_rp() {
    // check-rp --oidc-profile cie: the cie-oidc-rp catalogue, our OP and our RP both CIE
    // (`sp --oidc-profile cie`), judged as an RP we do not own (status only, login flows only).
    let fed = spid_harness::cie_oidc::start(Credentials::embedded().unwrap())
        .await
        .unwrap();
    let users = spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap();
    let login_url = fed.login_url();
    let target = oidc_catalogue::RpTarget {
        op: &fed.op,
        login_url: &login_url,
        accept_marker: Some("data-outcome=\"accepted\""),
        internal: false,
        ours: None,
    };
    let (mut failed, mut ran, mut skipped) = (Vec::new(), 0, 0);
    for c in spid_harness::cie_oidc::embedded().unwrap() {
        let c = spid_harness::cie_oidc::as_oidc_case(&c);
        if oidc_catalogue::not_for_external_rp(&c).is_some() {
            skipped += 1;
            continue;
        }
        ran += 1;
        let r = oidc_catalogue::run_rp_case(&target, &c, &users).await;
        if !r.passed() {
            failed.push(format!("{} {:?} {:?}", r.id, r.verdict, r.note));
        }
    }
    assert!(ran >= 15 && skipped >= 6, "{ran} run, {skipped} skipped");
    assert_eq!(failed, Vec::<String>::new());
}

/// Whether the browser went through the OP's credentials form in its last login.
fn authenticated_again(trace: &[spid_harness::agent::Exchange]) -> bool {
    trace
        .iter()
        .any(|x| x.method == "POST" && x.url.ends_with("/oidc/op/login"))
}

#[tokio::test]
async fn sso_session_honours_prompt_and_ends_with_revocation() {
    let fed = Federation::start().await;
    let users = spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap();
    let mario = users.iter().find(|u| u.username == "mario.rossi");
    let mut ua = runner::user_agent().unwrap();
    // First login (prompt=consent via offline=1): no session yet, so credentials and OTP.
    let page = fed.0.offline_login(&mut ua, mario).await.unwrap();
    assert_accepted(&page, SpidLevel::L2);
    assert!(authenticated_again(&ua.take_trace()));
    // prompt=consent within the SSO session: consent only, same level.
    let page = fed.0.offline_login(&mut ua, mario).await.unwrap();
    assert_accepted(&page, SpidLevel::L2);
    assert!(!authenticated_again(&ua.take_trace()));
    // prompt="consent login" (our RP's default) always authenticates again.
    let page = fed.0.login(&mut ua, mario).await.unwrap();
    assert_accepted(&page, SpidLevel::L2);
    assert!(authenticated_again(&ua.take_trace()));
    // Logout revokes the access token, which ends the SSO session: credentials again.
    let page = ua.get(&fed.rp_url("logout")).await.unwrap();
    assert!(
        page.body.contains("revoked at the OP (HTTP 200)"),
        "{}",
        page.body
    );
    ua.take_trace();
    let page = fed.0.offline_login(&mut ua, mario).await.unwrap();
    assert_accepted(&page, SpidLevel::L2);
    assert!(authenticated_again(&ua.take_trace()));
}

#[tokio::test]
async fn plans_armed_per_case_do_not_leak_into_concurrent_logins() {
    // Cases run concurrently (`run --jobs`): each plan is armed for its own browser session,
    // so an honest login running beside a spoiled one stays honest, and the reverse.
    let fed = OidcFederation::start(Credentials::embedded().unwrap())
        .await
        .unwrap();
    let users = spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap();
    let cases = oidc_catalogue::embedded().unwrap();
    let pick = |id: &str| cases.iter().find(|c| c.id == id).unwrap().clone();
    let (spoiled, honest, refresh) = (
        pick("acr-l1"),
        pick("oidc-login-l2"),
        pick("refresh-acr-l1"),
    );
    for _ in 0..3 {
        let (a, b, c, d) = futures_util::join!(
            fed.run_case(&spoiled, &users),
            fed.run_case(&honest, &users),
            fed.run_case(&refresh, &users),
            fed.run_case(&honest, &users),
        );
        for r in [&a, &b, &c, &d] {
            assert!(r.passed(), "{}: {:?} {:?}", r.id, r.rule, r.note);
        }
        assert_eq!(a.rule.as_deref(), Some("oidc.acr.insufficient"));
        assert_eq!(c.rule.as_deref(), Some("oidc.acr.insufficient"));
    }
}
