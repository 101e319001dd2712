//! SP-initiated Single Logout between our SP and our IdP, over both bindings, and the SP's
//! refusals of bad LogoutResponses (each asserted by rule code).

use spid_core::clock::Clock;
use spid_core::saml::binding::{self, MessageParam};
use spid_core::saml::inbound::{self, Outgoing, Via};
use spid_core::saml::logout::{LogoutRequest, LogoutResponse};
use spid_core::saml::ns;
use spid_core::saml::xml::{self, Limits};
use spid_harness::runner::{self, Credentials, InternalPair};
use url::Url;

async fn logged_in(pair: &InternalPair) -> spid_harness::agent::UserAgent {
    let users = spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap();
    let mario = users.iter().find(|u| u.username == "mario.rossi");
    let mut ua = runner::user_agent().unwrap();
    let page = runner::drive_login(&mut ua, &pair.login_url(), mario, Default::default())
        .await
        .unwrap();
    assert_eq!(page.status, 200);
    ua
}

async fn home_says_logged_in(pair: &InternalPair, ua: &mut spid_harness::agent::UserAgent) -> bool {
    let p = ua
        .get(&Url::parse(&format!("{}/", pair.sp_url)).unwrap())
        .await
        .unwrap();
    p.body.contains("Logged in via")
}

#[tokio::test]
async fn logout_over_both_bindings() {
    let pair = InternalPair::start(Credentials::embedded().unwrap())
        .await
        .unwrap();
    for binding in ["redirect", "post"] {
        let mut ua = logged_in(&pair).await;
        assert!(home_says_logged_in(&pair, &mut ua).await);
        let start = Url::parse(&format!("{}/logout?binding={binding}", pair.sp_url)).unwrap();
        let first = ua.get(&start).await.unwrap();
        let page = ua.auto_post(first).await.unwrap();
        assert_eq!(page.status, 200, "{binding}: {}", page.body);
        assert!(page.body.contains("Logout completato"), "{binding}");
        // The LogoutRequest and LogoutResponse both crossed the wire, decoded in the trace.
        let msgs: Vec<String> = ua
            .trace()
            .iter()
            .flat_map(|x| x.saml.iter())
            .filter_map(|m| m.xml.clone())
            .collect();
        assert!(
            msgs.iter().any(|x| x.contains("LogoutRequest")),
            "{binding}"
        );
        assert!(
            msgs.iter()
                .any(|x| x.contains("LogoutResponse") && x.contains(ns::STATUS_SUCCESS)),
            "{binding}"
        );
        assert!(!home_says_logged_in(&pair, &mut ua).await, "{binding}");
    }
}

/// The SP's session cookie and the LogoutRequest it sends, without following redirects.
async fn start_logout(
    pair: &InternalPair,
    ua: &spid_harness::agent::UserAgent,
) -> (String, LogoutRequest) {
    let cookie = ua.cookies_for(&Url::parse(&pair.sp_url).unwrap()).unwrap();
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let r = raw
        .get(format!("{}/logout", pair.sp_url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let m = binding::decode_redirect(loc.query().unwrap(), binding::MAX_MESSAGE_BYTES).unwrap();
    let req =
        LogoutRequest::from_element(&xml::parse(&m.xml, &Limits::default()).unwrap()).unwrap();
    (cookie, req)
}

async fn answer(
    pair: &InternalPair,
    cookie: &str,
    resp: LogoutResponse,
    signer: &spid_core::saml::dsig::Credential,
) -> (u16, Option<String>) {
    let dest = format!("{}/slo", pair.sp_url);
    let Outgoing::Redirect(u) = inbound::send(
        Via::Redirect,
        &dest,
        MessageParam::SamlResponse,
        resp.to_element(),
        None,
        signer,
    )
    .unwrap() else {
        unreachable!()
    };
    let raw = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = raw
        .get(u.as_str())
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (
        r.status().as_u16(),
        r.headers()
            .get("x-spid-rule")
            .map(|v| v.to_str().unwrap().to_string()),
    )
}

#[tokio::test]
async fn bad_logout_responses_are_refused_by_rule() {
    let pair = InternalPair::start(Credentials::embedded().unwrap())
        .await
        .unwrap();
    let creds = Credentials::embedded().unwrap();
    let ua = logged_in(&pair).await;
    let (cookie, req) = start_logout(&pair, &ua).await;
    let now = pair.clock.now();
    let idp = pair.idp_url.clone();
    let ok = |status: &str| {
        LogoutResponse::answer(
            &req,
            &idp,
            &format!("{}/slo", pair.sp_url),
            now,
            status,
            None,
        )
    };
    // Signed by a key not in the IdP metadata.
    assert_eq!(
        answer(&pair, &cookie, ok(ns::STATUS_SUCCESS), &creds.foreign).await,
        (403, Some("logout.signature.invalid".into()))
    );
    // Answering another request.
    let mut other = ok(ns::STATUS_SUCCESS);
    other.in_response_to = "_another".into();
    assert_eq!(
        answer(&pair, &cookie, other, &creds.idp).await,
        (403, Some("logout.in-response-to.unknown".into()))
    );
    // From another issuer (signed with the right key, so only the Issuer is wrong).
    let mut wrong = ok(ns::STATUS_SUCCESS);
    wrong.issuer = "https://other-idp.example".into();
    assert_eq!(
        answer(&pair, &cookie, wrong, &creds.idp).await,
        (403, Some("logout.issuer.mismatch".into()))
    );
    // Not a success.
    assert_eq!(
        answer(&pair, &cookie, ok(ns::STATUS_RESPONDER), &creds.idp).await,
        (403, Some("logout.status.not-success".into()))
    );
    // Garbage.
    let raw = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = raw
        .get(format!("{}/slo?SAMLResponse=%%%", pair.sp_url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers().get("x-spid-rule").map(|v| v.to_str().unwrap())
        ),
        (403, Some("logout.message.invalid"))
    );
    // The right one ends the session.
    assert_eq!(
        answer(&pair, &cookie, ok(ns::STATUS_SUCCESS), &creds.idp).await,
        (200, None)
    );
    // No logout pending any more.
    assert_eq!(
        answer(&pair, &cookie, ok(ns::STATUS_SUCCESS), &creds.idp).await,
        (403, Some("logout.in-response-to.unknown".into()))
    );
}

#[tokio::test]
async fn idp_answers_unknown_principal_for_a_session_it_never_issued() {
    let pair = InternalPair::start(Credentials::embedded().unwrap())
        .await
        .unwrap();
    let creds = Credentials::embedded().unwrap();
    let sp_entity = pair.sp.config().entity_id.clone();
    let slo = format!("{}/slo", pair.idp_url);
    let req = LogoutRequest::new(
        &sp_entity,
        &slo,
        pair.clock.now(),
        "_never-issued",
        &pair.idp_url,
        None,
    );
    let Outgoing::Redirect(u) = inbound::send(
        Via::Redirect,
        &slo,
        MessageParam::SamlRequest,
        req.to_element(),
        None,
        &creds.sp,
    )
    .unwrap() else {
        unreachable!()
    };
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let r = raw.get(u.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let loc = Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let m = binding::decode_redirect(loc.query().unwrap(), binding::MAX_MESSAGE_BYTES).unwrap();
    let resp =
        LogoutResponse::from_element(&xml::parse(&m.xml, &Limits::default()).unwrap()).unwrap();
    assert_eq!(
        (resp.status.as_str(), resp.sub_status.as_deref()),
        (ns::STATUS_REQUESTER, Some(ns::STATUS_UNKNOWN_PRINCIPAL))
    );
    // A LogoutRequest signed by a foreign key is refused outright.
    let Outgoing::Redirect(u) = inbound::send(
        Via::Redirect,
        &slo,
        MessageParam::SamlRequest,
        req.to_element(),
        None,
        &creds.foreign,
    )
    .unwrap() else {
        unreachable!()
    };
    assert_eq!(raw.get(u.as_str()).send().await.unwrap().status(), 403);
}
