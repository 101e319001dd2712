//! The fake IdP over HTTP: every SPID request error it must detect (nr4–nr18) and every
//! user-side outcome (nr19–nr23, nr25, nr30), each provoked through its real endpoints and
//! asserted by code. (nr24 is reserved by the SPID rules and has no trigger.)

use axum::routing::post;
use spid_core::clock::{Clock, FixedClock};
use spid_core::errors::SpidError;
use spid_core::saml::authn_request::AuthnRequest;
use spid_core::saml::binding::{self, MessageParam, SigAlg};
use spid_core::saml::dsig::{self, Credential};
use spid_core::saml::metadata::{self, SpKind, SpMetadataConfig};
use spid_core::saml::ns;
use spid_core::saml::xml::{self, Limits};
use spid_core::{Comparison, SpidLevel};
use spid_harness::agent::{Page, UserAgent};
use spid_harness::catalogue::{Consent, Flow};
use spid_harness::runner::{self, Behaviour, Credentials};
use spid_idp::{IdentityProvider, IdpConfig};
use std::sync::{Arc, Mutex};
use url::Url;

const SP: &str = "http://127.0.0.1:1/sp/metadata";

struct Env {
    idp: IdentityProvider,
    sso: String,
    sp: Credential,
    foreign: Credential,
    clock: Arc<FixedClock>,
    acs: String,
    posted: Arc<Mutex<Vec<String>>>,
}

async fn env() -> Env {
    let creds = Credentials::embedded().unwrap();
    // An ACS that records what reaches it.
    let posted = Arc::new(Mutex::new(Vec::new()));
    let acs_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let acs = format!("http://{}/acs", acs_l.local_addr().unwrap());
    let rec = posted.clone();
    let app = axum::Router::new().route(
        "/acs",
        post(move |body: axum::body::Bytes| {
            let rec = rec.clone();
            async move {
                let f: Vec<(String, String)> =
                    url::form_urlencoded::parse(&body).into_owned().collect();
                if let Some((_, v)) = f.into_iter().find(|(k, _)| k == "SAMLResponse") {
                    rec.lock().unwrap().push(v);
                }
                "recorded"
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(acs_l, app).await;
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let clock = Arc::new(FixedClock::new(spid_core::clock::now()));
    let mut cfg = IdpConfig::new(&base, creds.idp, creds.foreign.clone());
    cfg.clock = clock.clone();
    let idp = IdentityProvider::new(cfg).unwrap();
    let sp_md = metadata::build_sp(
        &SpMetadataConfig {
            entity_id: SP.into(),
            acs_url: acs.clone(),
            slo_url: format!("{acs}/slo"),
            attributes: vec!["spidCode".into(), "fiscalNumber".into()],
            service_name: "test".into(),
            organization_name: "test".into(),
            organization_display_name: "test".into(),
            organization_url: "http://127.0.0.1:1/".into(),
            contact_email: "t@example.org".into(),
            contact_phone: None,
            kind: SpKind::Public {
                ipa_code: "c_h501".into(),
            },
        },
        &creds.sp,
    )
    .unwrap();
    idp.register_sp(&sp_md).unwrap();
    let srv = idp.clone();
    tokio::spawn(async move {
        let _ = srv.serve(l).await;
    });
    Env {
        idp,
        sso: format!("{base}/sso"),
        sp: creds.sp,
        foreign: creds.foreign,
        clock,
        acs,
        posted,
    }
}

impl Env {
    fn request(&self) -> AuthnRequest {
        AuthnRequest::spid(
            SP,
            &self.sso,
            self.clock.now(),
            SpidLevel::L2,
            Comparison::Minimum,
            0,
            0,
        )
    }

    fn redirect_url(&self, r: &AuthnRequest, key: &Credential) -> Url {
        let u = Url::parse(&self.sso).unwrap();
        binding::encode_redirect(
            &u,
            MessageParam::SamlRequest,
            &r.to_element().to_xml(),
            Some("rs"),
            Some((&key.key, SigAlg::RsaSha256)),
        )
        .unwrap()
    }

    async fn redirect(&self, r: &AuthnRequest, key: &Credential) -> Page {
        ua().get(&self.redirect_url(r, key)).await.unwrap()
    }

    async fn post(&self, xml: &str) -> Page {
        let fields = vec![
            ("SAMLRequest".to_string(), binding::encode_post(xml)),
            ("RelayState".to_string(), "rs".to_string()),
        ];
        ua().post_form(&Url::parse(&self.sso).unwrap(), &fields)
            .await
            .unwrap()
    }
}

fn ua() -> UserAgent {
    UserAgent::new().unwrap()
}

/// The nr code on an IdP error page.
fn page_code(p: &Page) -> Option<u8> {
    let i = p.body.find("data-code=\"")? + "data-code=\"".len();
    p.body[i..].split('"').next()?.parse().ok()
}

/// (StatusCode, sub-StatusCode, StatusMessage) of the error Response in an auto-post page.
fn response_status(p: &Page) -> (String, Option<String>, String) {
    let f = p
        .form_with_field("SAMLResponse")
        .expect("an auto-posted Response");
    decode_status(f.field("SAMLResponse").unwrap())
}

fn decode_status(b64: &str) -> (String, Option<String>, String) {
    let x = binding::decode_post(b64, binding::MAX_MESSAGE_BYTES).unwrap();
    let r = xml::parse(&x, &Limits::default()).unwrap();
    let st = r.child(ns::SAMLP, "Status").unwrap();
    let code = st.child(ns::SAMLP, "StatusCode").unwrap();
    (
        code.attr("Value").unwrap().to_string(),
        code.child(ns::SAMLP, "StatusCode")
            .and_then(|c| c.attr("Value"))
            .map(str::to_string),
        st.child(ns::SAMLP, "StatusMessage")
            .map(|m| m.text())
            .unwrap_or_default(),
    )
}

fn assert_to_sp(p: &Page, nr: u8, status: &str, sub: Option<&str>) {
    assert_eq!(p.status, 200, "nr{nr}: {}", p.body);
    let (c, s, m) = response_status(p);
    assert_eq!(m, format!("ErrorCode nr{nr}"));
    assert_eq!(c, status, "nr{nr}");
    assert_eq!(s.as_deref(), sub, "nr{nr}");
}

#[tokio::test]
async fn binding_and_signature_errors_are_user_pages() {
    let e = env().await;
    // nr4: no SAMLRequest; a Redirect request without a signature.
    let p = ua().get(&Url::parse(&e.sso).unwrap()).await.unwrap();
    assert_eq!((p.status, page_code(&p)), (403, Some(4)));
    let u = Url::parse(&e.sso).unwrap();
    let unsigned = binding::encode_redirect(
        &u,
        MessageParam::SamlRequest,
        &e.request().to_element().to_xml(),
        Some("rs"),
        None,
    )
    .unwrap();
    let p = ua().get(&unsigned).await.unwrap();
    assert_eq!((p.status, page_code(&p)), (403, Some(4)));
    // A deflate bomb on the Redirect binding is a binding error, not a crash.
    let bomb = binding::deflate(&vec![b' '; 8 << 20]);
    let q = format!(
        "SAMLRequest={}",
        url::form_urlencoded::byte_serialize(base64_std(&bomb).as_bytes()).collect::<String>()
    );
    let p = ua()
        .get(&Url::parse(&format!("{}?{q}", e.sso)).unwrap())
        .await
        .unwrap();
    assert_eq!((p.status, page_code(&p)), (403, Some(4)));
    // nr5: Redirect signed with a key not in the SP metadata.
    let p = e.redirect(&e.request(), &e.foreign).await;
    assert_eq!((p.status, page_code(&p)), (403, Some(5)));
    // nr6: Redirect parameters sent with POST.
    let signed = e.redirect_url(&e.request(), &e.sp);
    let p = ua().post_form(&signed, &[]).await.unwrap();
    assert_eq!((p.status, page_code(&p)), (403, Some(6)));
    // nr7: POST without signature, and signed by another key.
    let p = e.post(&e.request().to_element().to_xml()).await;
    assert_eq!((p.status, page_code(&p)), (403, Some(7)));
    let p = e
        .post(&dsig::sign_root(e.request().to_element(), &e.foreign).unwrap())
        .await;
    assert_eq!((p.status, page_code(&p)), (403, Some(7)));
    // A correctly signed POST request reaches the login page.
    let p = e
        .post(&dsig::sign_root(e.request().to_element(), &e.sp).unwrap())
        .await;
    assert_eq!(p.status, 200);
    assert!(p.form_by_id("login-form").is_some());
    // nr8: signed, well-formed, but not an AuthnRequest.
    let other = xml::Element::new("samlp:LogoutRequest", Some(ns::SAMLP))
        .with_attr("xmlns:samlp", ns::SAMLP)
        .with_attr("ID", "_x");
    let p = e.post(&dsig::sign_root(other, &e.sp).unwrap()).await;
    assert_eq!(page_code(&p), Some(8));
    assert!(p.status >= 400);
    // nr10: Issuer missing; Issuer not a registered SP (a clear page, no crash).
    let mut r = e.request();
    r.issuer = None;
    let p = e.redirect(&r, &e.sp).await;
    assert_eq!((p.status, page_code(&p)), (403, Some(10)));
    let mut r = e.request();
    r.issuer = Some("https://unknown-sp.example".into());
    let p = e.redirect(&r, &e.sp).await;
    assert_eq!((p.status, page_code(&p)), (403, Some(10)));
    assert!(p.body.contains("not registered"));
    // nr10: Issuer without Format entity, or without NameQualifier.
    let mut r = e.request();
    r.issuer_format = None;
    let p = e.redirect(&r, &e.sp).await;
    assert_eq!((p.status, page_code(&p)), (403, Some(10)));
    let mut r = e.request();
    r.issuer_name_qualifier = None;
    let p = e.redirect(&r, &e.sp).await;
    assert_eq!((p.status, page_code(&p)), (403, Some(10)));
}

fn base64_std(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::test]
async fn request_errors_go_back_to_the_sp() {
    let e = env().await;
    type Edit = Box<dyn Fn(&mut AuthnRequest)>;
    let cases: Vec<(u8, Edit, &str, Option<&str>)> = vec![
        (
            9,
            Box::new(|r| r.version = Some("1.0".into())),
            ns::STATUS_VERSION_MISMATCH,
            None,
        ),
        (11, Box::new(|r| r.id = None), ns::STATUS_REQUESTER, None),
        (
            12,
            Box::new(|r| {
                r.class_refs = vec!["urn:oasis:names:tc:SAML:2.0:ac:classes:SpidL2".into()]
            }),
            ns::STATUS_REQUESTER,
            Some(ns::STATUS_NO_AUTHN_CONTEXT),
        ),
        (
            12,
            Box::new(|r| r.requested_authn_context = false),
            ns::STATUS_REQUESTER,
            Some(ns::STATUS_NO_AUTHN_CONTEXT),
        ),
        (
            13,
            Box::new(|r| r.issue_instant = Some("2020-01-01T00:00:00Z".into())),
            ns::STATUS_REQUESTER,
            Some(ns::STATUS_REQUEST_DENIED),
        ),
        (
            13,
            Box::new(|r| r.issue_instant = Some("yesterday".into())),
            ns::STATUS_REQUESTER,
            Some(ns::STATUS_REQUEST_DENIED),
        ),
        (
            14,
            Box::new(|r| r.destination = Some("https://other-idp.example/sso".into())),
            ns::STATUS_REQUESTER,
            Some(ns::STATUS_REQUEST_UNSUPPORTED),
        ),
        (
            15,
            Box::new(|r| r.is_passive = Some("true".into())),
            ns::STATUS_REQUESTER,
            Some(ns::STATUS_NO_PASSIVE),
        ),
        (
            16,
            Box::new(|r| r.acs_url = Some("http://127.0.0.1:1/acs".into())),
            ns::STATUS_REQUESTER,
            Some(ns::STATUS_REQUEST_UNSUPPORTED),
        ),
        (
            16,
            Box::new(|r| r.acs_index = Some("7".into())),
            ns::STATUS_REQUESTER,
            Some(ns::STATUS_REQUEST_UNSUPPORTED),
        ),
        (
            17,
            Box::new(|r| {
                r.name_id_policy_format =
                    Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into())
            }),
            ns::STATUS_REQUESTER,
            Some(ns::STATUS_REQUEST_UNSUPPORTED),
        ),
        (
            18,
            Box::new(|r| r.attribute_index = Some("9".into())),
            ns::STATUS_REQUESTER,
            Some(ns::STATUS_REQUEST_UNSUPPORTED),
        ),
    ];
    for (nr, edit, status, sub) in cases {
        let mut r = e.request();
        edit(&mut r);
        let p = e.redirect(&r, &e.sp).await;
        assert_to_sp(&p, nr, status, sub);
        let f = p.form_with_field("SAMLResponse").unwrap();
        assert_eq!(
            f.action.as_str(),
            e.acs,
            "nr{nr} goes to the registered ACS"
        );
    }
}

async fn login_outcome(
    e: &Env,
    r: &AuthnRequest,
    user: &str,
    how: Behaviour<'_>,
) -> (String, Option<String>, String) {
    e.posted.lock().unwrap().clear();
    let users = spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap();
    let u = users.iter().find(|u| u.username == user);
    let mut agent = ua();
    let page = runner::drive_login(&mut agent, &e.redirect_url(r, &e.sp), u, how)
        .await
        .unwrap();
    assert_eq!(page.status, 200);
    let posted = e
        .posted
        .lock()
        .unwrap()
        .pop()
        .expect("a Response reached the ACS");
    decode_status(&posted)
}

#[tokio::test]
async fn user_outcomes_produce_their_spid_errors() {
    let e = env().await;
    let timeout = e.idp.config().login_timeout;
    let how = |flow, consent| Behaviour {
        consent,
        flow,
        clock: Some(&e.clock),
        timeout: Some(timeout),
    };
    let nr = |n: u8| SpidError(n).status_message();
    let l = Flow::Login;
    let a = Consent::Accept;
    assert_eq!(
        login_outcome(&e, &e.request(), "mario.rossi", how(Flow::WrongPassword, a))
            .await
            .2,
        nr(19)
    );
    assert_eq!(
        login_outcome(&e, &e.request(), "mario.rossi", how(Flow::WrongOtp, a))
            .await
            .2,
        nr(19)
    );
    assert_eq!(
        login_outcome(&e, &e.request(), "anna.neri", how(l, a))
            .await
            .2,
        nr(20)
    );
    assert_eq!(
        login_outcome(&e, &e.request(), "mario.rossi", how(Flow::Timeout, a))
            .await
            .2,
        nr(21)
    );
    assert_eq!(
        login_outcome(&e, &e.request(), "mario.rossi", how(l, Consent::Deny))
            .await
            .2,
        nr(22)
    );
    assert_eq!(
        login_outcome(&e, &e.request(), "paolo.sospeso", how(l, a))
            .await
            .2,
        nr(23)
    );
    assert_eq!(
        login_outcome(&e, &e.request(), "mario.rossi", how(Flow::Cancel, a))
            .await
            .2,
        nr(25)
    );
    // nr30: the SP asks for a professional identity (Avviso 18 Purpose), the user is a person.
    let mut r = e.request();
    r.purpose = Some("P".into());
    let (code, sub, msg) = login_outcome(&e, &r, "mario.rossi", how(l, a)).await;
    assert_eq!(
        (code.as_str(), sub.as_deref(), msg),
        (ns::STATUS_RESPONDER, Some(ns::STATUS_AUTHN_FAILED), nr(30))
    );
    // …and the professional user passes the same kind of request (a new one: the IdP answers
    // an AuthnRequest ID once, idp.request.replayed).
    let mut r = e.request();
    r.purpose = Some("P".into());
    let (code, _, _) = login_outcome(&e, &r, "studio.legale", how(l, a)).await;
    assert_eq!(code, ns::STATUS_SUCCESS);
    // The honest L2 login succeeds, and the L1-only user gets no Assertion at L2.
    let (code, _, _) = login_outcome(&e, &e.request(), "mario.rossi", how(l, a)).await;
    assert_eq!(code, ns::STATUS_SUCCESS);
}

/// An IdP with the given admin token; returns its base URL.
async fn idp_with_token(token: Option<&str>) -> String {
    let creds = Credentials::embedded().unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let mut cfg = IdpConfig::new(&base, creds.idp, creds.foreign);
    cfg.admin_token = token.map(str::to_string);
    let idp = IdentityProvider::new(cfg).unwrap();
    tokio::spawn(async move {
        let _ = idp.serve(l).await;
    });
    base
}

#[tokio::test]
async fn admin_endpoints_need_the_token() {
    let base = idp_with_token(Some("s3cret")).await;
    let creds = Credentials::embedded().unwrap();
    let c = reqwest::Client::builder().no_proxy().build().unwrap();
    let plan = r#"{"level":"L1"}"#;
    let r = c
        .post(format!("{base}/admin/arm"))
        .body(plan)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(format!("{base}/admin/arm"))
        .bearer_auth("wrong")
        .body(plan)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(format!("{base}/admin/arm"))
        .bearer_auth("s3cret")
        .body(r#"{"levle":"L1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "unknown keys are refused");
    let r = c
        .post(format!("{base}/admin/arm"))
        .bearer_auth("s3cret")
        .body(plan)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // SP registration over the admin endpoint.
    let sp_md =
        spid_sp::ServiceProvider::new(spid_sp::SpConfig::new("http://127.0.0.1:9", creds.sp))
            .unwrap()
            .metadata_xml()
            .to_string();
    let r = c
        .post(format!("{base}/admin/sp"))
        .body(sp_md.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(format!("{base}/admin/sp"))
        .bearer_auth("s3cret")
        .body(sp_md)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "http://127.0.0.1:9/metadata");
}

#[tokio::test]
async fn admin_endpoints_are_off_without_a_token() {
    let base = idp_with_token(None).await;
    let c = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = c
        .post(format!("{base}/admin/arm"))
        .bearer_auth("")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
