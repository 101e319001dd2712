//! End to end over loopback: our IdP and our SP, each case driven through the login pages, and
//! every case asserting both the verdict and the deciding rule.

use spid_harness::catalogue::{self, Expect};
use spid_harness::runner::{self, Credentials, InternalPair, Verdict};

async fn pair() -> InternalPair {
    InternalPair::start(Credentials::embedded().unwrap())
        .await
        .unwrap()
}

fn users() -> Vec<spid_idp::users::User> {
    spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap()
}

/// The walking skeleton's cases, with their outcomes written here rather than read from the
/// catalogue, so an edit to a case file cannot silently change what this test demands.
#[tokio::test]
async fn walking_skeleton_cases() {
    let pair = pair().await;
    let users = users();
    let cases = catalogue::embedded("saml").unwrap();
    let want: &[(&str, Verdict, Option<&str>)] = &[
        ("login-l2", Verdict::Accept, None),
        ("login-l3", Verdict::Accept, None),
        (
            "login-l1-only-user",
            Verdict::Reject,
            Some("response.status.nr20"),
        ),
        (
            "login-suspended-user",
            Verdict::Reject,
            Some("response.status.nr23"),
        ),
        (
            "level-l1-signed",
            Verdict::Reject,
            Some("assertion.level.insufficient"),
        ),
        (
            "signature-foreign-key",
            Verdict::Reject,
            Some("signature.invalid"),
        ),
        (
            "replay-same-session",
            Verdict::Reject,
            Some("response.in-response-to.replayed"),
        ),
    ];
    for (id, verdict, rule) in want {
        let case = cases
            .iter()
            .find(|c| c.id == *id)
            .unwrap_or_else(|| panic!("case {id} missing"));
        let r = runner::run_case(&pair, case, &users).await;
        assert_eq!(r.verdict, *verdict, "{id}: {:?}", r.note);
        assert_eq!(r.rule.as_deref(), *rule, "{id}");
        assert!(r.passed(), "{id}: {:?}", r.note);
        if *verdict == Verdict::Reject {
            assert_eq!(r.status, 403, "{id}");
        }
    }
}

/// Every catalogue case meets its expectation (verdict and rule) against our SP.
#[tokio::test]
async fn whole_catalogue_meets_expectations() {
    let pair = pair().await;
    let users = users();
    let mut failures = Vec::new();
    for case in catalogue::embedded("saml").unwrap() {
        let r = runner::run_case(&pair, &case, &users).await;
        if !r.passed() {
            failures.push(format!(
                "{}: status {} rule {:?} ({:?})",
                r.id, r.status, r.rule, r.note
            ));
        }
        if let Expect::Reject { .. } = case.expect {
            assert_ne!(
                r.status, 200,
                "{} was rejected by expectation but got 200",
                r.id
            );
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The accepted login carries the identity from the signed Assertion: the level asserted and
/// the requested attributes of the fixture user.
#[tokio::test]
async fn accepted_login_shows_identity() {
    let pair = pair().await;
    let users = users();
    let mario = users.iter().find(|u| u.username == "mario.rossi").unwrap();
    let mut ua = runner::user_agent().unwrap();
    let login = url::Url::parse(&format!("{}/login", pair.sp_url)).unwrap();
    let page = runner::drive_login(&mut ua, &login, Some(mario), Default::default())
        .await
        .unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("https://www.spid.gov.it/SpidL2"));
    assert!(page.body.contains("TINIT-RSSMRA80A01H501U"));
    // The AuthnRequest went by HTTP-Redirect, signed, and the Response by auto-posted form.
    let trace = ua.trace();
    assert!(trace
        .iter()
        .any(|x| x.saml.iter().any(|m| m.param == "SAMLRequest"
            && m.xml
                .as_deref()
                .is_some_and(|x| x.contains("ForceAuthn=\"true\"")))));
    assert!(trace.iter().any(|x| x.saml.iter().any(
        |m| m.param == "SAMLResponse" && m.xml.as_deref().is_some_and(|x| x.contains("SpidL2"))
    )));
    // No SessionIndex when L2 was requested.
    let resp = pair.idp.last_response().unwrap();
    assert!(!resp.xml.contains("SessionIndex"));
}

/// The POST binding for the AuthnRequest works too.
#[tokio::test]
async fn post_binding_request() {
    let pair = pair().await;
    let users = users();
    let mario = users.iter().find(|u| u.username == "mario.rossi").unwrap();
    let mut ua = runner::user_agent().unwrap();
    let login = url::Url::parse(&format!("{}/login?binding=post", pair.sp_url)).unwrap();
    let page = runner::drive_login(&mut ua, &login, Some(mario), Default::default())
        .await
        .unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
}
