//! SPID OpenID Connect end to end over loopback: our trust anchor, our OP (inside the IdP,
//! same users and login pages) and our RP (inside the SP), each on its own 127.0.0.1 port,
//! trusting each other only through trust-anchor registration. Every case asserts the final
//! status and, on refusals, the `X-SPID-Rule`.

use spid_core::clock::FixedClock;
use spid_core::SpidLevel;
use spid_harness::agent::{Page, UserAgent};
use spid_harness::runner::{self, Behaviour, Credentials};
use spid_idp::oidc::op::{OpFaultPlan, OpenIdProvider};
use spid_idp::oidc::ta::{EntityKind, TrustAnchor};
use spid_idp::users::User;
use spid_idp::{IdentityProvider, IdpConfig};
use spid_sp::oidc::RelyingParty;
use spid_sp::{ServiceProvider, SpConfig};
use std::sync::Arc;
use url::Url;

struct Federation {
    op: OpenIdProvider,
    rp: RelyingParty,
    ta: TrustAnchor,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Federation {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Federation {
    async fn start() -> Federation {
        let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
        let (ta_l, idp_l, sp_l) = (
            bind().await.unwrap(),
            bind().await.unwrap(),
            bind().await.unwrap(),
        );
        let url = |l: &tokio::net::TcpListener| format!("http://{}", l.local_addr().unwrap());
        let (ta_url, idp_url, sp_url) = (url(&ta_l), url(&idp_l), url(&sp_l));
        let clock = Arc::new(FixedClock::new(chrono::Utc::now()));
        let creds = Credentials::embedded().unwrap();

        let ta = TrustAnchor::new(&ta_url, clock.clone()).unwrap();
        let mut idp_cfg = IdpConfig::new(&idp_url, creds.idp, creds.foreign);
        idp_cfg.clock = clock.clone();
        let idp = IdentityProvider::new(idp_cfg).unwrap();
        let op = OpenIdProvider::new(idp.op_config()).unwrap();
        let mut sp_cfg = SpConfig::new(&sp_url, creds.sp);
        sp_cfg.clock = clock.clone();
        let sp = ServiceProvider::new(sp_cfg).unwrap();
        let rp = RelyingParty::new(sp.rp_config()).unwrap();

        // Onboarding: the only source of trust between OP and RP.
        let mark = ta
            .register(
                op.entity_id(),
                op.federation_jwks(),
                EntityKind::OpenIdProvider,
            )
            .unwrap();
        op.set_trust_anchor(ta.keys(), mark);
        let mark = ta
            .register(
                rp.entity_id(),
                rp.federation_jwks(),
                EntityKind::OpenIdRelyingParty,
            )
            .unwrap();
        rp.set_trust_anchor(ta.keys(), mark);

        let serve = |l: tokio::net::TcpListener, r: axum::Router| {
            tokio::spawn(async move {
                let _ = axum::serve(l, r).await;
            })
        };
        let tasks = vec![
            serve(ta_l, ta.router()),
            serve(idp_l, idp.router_with_op(&op)),
            serve(sp_l, sp.router_with_rp(&rp)),
        ];
        Federation { op, rp, ta, tasks }
    }

    fn login_url(&self) -> Url {
        let mut u = Url::parse(&format!("{}/login", self.rp.entity_id())).unwrap();
        u.query_pairs_mut().append_pair("op", self.op.entity_id());
        u
    }

    /// One browser login by `username` through the OP's pages; the final page.
    async fn login(&self, username: &str) -> (UserAgent, Page) {
        let users = spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap();
        let user: Option<&User> = users.iter().find(|u| u.username == username);
        let mut ua = runner::user_agent().unwrap();
        let page = runner::drive_login(&mut ua, &self.login_url(), user, Behaviour::default())
            .await
            .unwrap();
        (ua, page)
    }

    async fn login_with_plan(&self, username: &str, plan: OpFaultPlan) -> Page {
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
    let plan = OpFaultPlan {
        acr: Some(SpidLevel::L1),
        ..OpFaultPlan::default()
    };
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
async fn faulty_tokens_and_userinfo_are_refused() {
    let fed = Federation::start().await;
    let cases: Vec<(OpFaultPlan, &str)> = vec![
        (
            OpFaultPlan {
                id_token_bad_signature: true,
                ..Default::default()
            },
            "oidc.id-token.signature",
        ),
        (
            OpFaultPlan {
                id_token_foreign_key: true,
                ..Default::default()
            },
            "oidc.id-token.signature",
        ),
        (
            OpFaultPlan {
                nonce: Some("n".repeat(43)),
                ..Default::default()
            },
            "oidc.id-token.nonce",
        ),
        (
            OpFaultPlan {
                bad_at_hash: true,
                ..Default::default()
            },
            "oidc.id-token.at-hash",
        ),
        (
            OpFaultPlan {
                userinfo_unencrypted: true,
                ..Default::default()
            },
            "oidc.userinfo.not-encrypted",
        ),
        (
            OpFaultPlan {
                userinfo_other_sub: true,
                ..Default::default()
            },
            "oidc.userinfo.sub-mismatch",
        ),
    ];
    for (plan, rule) in cases {
        let page = fed.login_with_plan("mario.rossi", plan.clone()).await;
        assert_eq!(page.spid_rule(), Some(rule), "{plan:?}: {}", page.body);
        assert_eq!(page.status, 403, "{plan:?}");
    }
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
