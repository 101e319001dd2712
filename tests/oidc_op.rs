//! The OP-side OIDC catalogue end to end: the probe RP, registered at our trust anchor, sends
//! every crafted authorization, token and userinfo request to our OP. Each case must meet its
//! expectation (verdict and `X-SPID-Rule`), and an OP weakened by one profile switch must fail
//! exactly the case that switch concerns.

use spid_harness::oidc::OidcFederation;
use spid_harness::oidc_op::{self, OpCase};
use spid_harness::runner::{CaseResult, Credentials};
use spid_idp::users::{parse, DEFAULT_USERS};

async fn run_all(fed: &OidcFederation, cases: &[OpCase]) -> Vec<CaseResult> {
    let users = parse(DEFAULT_USERS).unwrap();
    let ops = fed.op_endpoints();
    let mut out = Vec::new();
    for c in cases {
        out.push(fed.run_op_case(c, &ops, &users).await);
    }
    out
}

fn failing(results: &[CaseResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| format!("{} ({:?} {:?} {:?})", r.id, r.verdict, r.rule, r.note))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_op_case_meets_its_expectation_at_our_op() {
    let fed = OidcFederation::start(Credentials::embedded().unwrap())
        .await
        .unwrap();
    let cases = oidc_op::embedded().unwrap();
    let mut all = vec![oidc_op::sanity_case()];
    all.extend(cases.iter().cloned());
    all.push(oidc_op::sanity_case());
    let results = run_all(&fed, &all).await;
    assert_eq!(failing(&results), Vec::<String>::new());
    // Refusals are named by the OP, not inferred.
    for r in results
        .iter()
        .filter(|r| r.verdict == spid_harness::runner::Verdict::Reject)
    {
        assert!(
            r.rule.as_deref().is_some_and(|c| c.starts_with("op.")),
            "{}",
            r.id
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_op_that_allows_claims_id_token_fails_exactly_that_case() {
    let mut weak = spid_core::oidc::Profile::rules_2023();
    weak.authz_id_token_claims_allowed = true;
    let fed = OidcFederation::start_with(Credentials::embedded().unwrap(), Some(weak), None)
        .await
        .unwrap();
    let cases: Vec<OpCase> = oidc_op::embedded()
        .unwrap()
        .into_iter()
        .filter(|c| c.family.starts_with("op-authz"))
        .collect();
    let results = run_all(&fed, &cases).await;
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(
        failed,
        vec!["authz-claims-id-token"],
        "{:?}",
        failing(&results)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_refresh_and_token_shape_checks_can_fail() {
    let fed = OidcFederation::start(Credentials::embedded().unwrap())
        .await
        .unwrap();
    let by_id = |id: &str| {
        oidc_op::embedded()
            .unwrap()
            .into_iter()
            .find(|c| c.id == id)
            .unwrap()
    };
    // Our OP refreshes a SpidL2-only login at SpidL2: expecting SpidL1 must fail, by the note.
    let mut acr = by_id("refresh-acr-l2-kept");
    acr.refresh.expect_acr = Some(spid_core::SpidLevel::L1.uri().to_string());
    // With offline_access the token response carries a refresh token: expecting none fails.
    let mut offline = by_id("token-no-refresh-without-offline");
    offline.authz.offline = true;
    let results = run_all(&fed, &[acr, offline]).await;
    for r in &results {
        assert!(!r.passed(), "{} passed", r.id);
    }
    let notes: Vec<String> = results.iter().filter_map(|r| r.note.clone()).collect();
    assert!(notes[0].contains("refreshed ID token acr"), "{notes:?}");
    assert!(notes[1].contains("carries a refresh_token"), "{notes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_external_path_agrees_at_our_op() {
    // As check-op drives an OP it does not own: no rule codes required, the login through a
    // login driver, no clock to move (those cases are skipped there too).
    let fed = OidcFederation::start(Credentials::embedded().unwrap())
        .await
        .unwrap();
    let users = parse(DEFAULT_USERS).unwrap();
    let driver = spid_harness::check_idp::LoginDriver::builtin();
    let who = driver
        .users
        .iter()
        .find(|u| u.username == "mario.rossi")
        .unwrap()
        .clone();
    let ops = fed.op_endpoints();
    let target = oidc_op::OpTarget {
        probe: &fed.probe,
        op: &ops,
        clock: None,
        internal: false,
        users: &users,
        driver: Some((&driver, &who)),
    };
    let mut failed = Vec::new();
    let cases = oidc_op::embedded().unwrap();
    let external: Vec<&OpCase> = cases
        .iter()
        .filter(|c| c.scope == spid_harness::catalogue::Scope::Any)
        .collect();
    assert!(external.len() >= 80, "{}", external.len());
    for c in external {
        let r = oidc_op::run_case(&target, c).await;
        if !r.passed() {
            failed.push(format!("{} {:?} {:?}", r.id, r.verdict, r.note));
        }
    }
    assert_eq!(failed, Vec::<String>::new());
}

/// Runs the CIE OP-side catalogue (between two honest logins) with a probe in the CIE
/// profile at a federation whose OP reads `op_profile`; `external`: as check-op does (the
/// endpoints discovered, the login driver, no rule codes, no clock).
async fn run_cie(op_profile: spid_core::oidc::Profile, external: bool) -> Vec<CaseResult> {
    let fed = OidcFederation::start_with(Credentials::embedded().unwrap(), Some(op_profile), None)
        .await
        .unwrap();
    let cie = spid_core::oidc::Profile::cie();
    let (probe, task) = oidc_op::start_probe(&fed.ta, fed.clock.clone(), cie)
        .await
        .unwrap();
    let users = parse(DEFAULT_USERS).unwrap();
    let driver = spid_harness::check_idp::LoginDriver::builtin();
    let who = driver.users.first().unwrap().clone();
    let ops = if external {
        oidc_op::OpEndpoints::discover(fed.op.entity_id())
            .await
            .unwrap()
    } else {
        fed.op_endpoints()
    };
    let target = oidc_op::OpTarget {
        probe: &probe,
        op: &ops,
        clock: (!external).then_some(&*fed.clock),
        internal: !external,
        users: &users,
        driver: external.then_some((&driver, &who)),
    };
    let mut all = vec![oidc_op::sanity_case()];
    let cases = oidc_op::select_cie(oidc_op::embedded_cie().unwrap(), None).unwrap();
    all.extend(
        cases
            .into_iter()
            .filter(|c| !external || c.scope == spid_harness::catalogue::Scope::Any),
    );
    all.push(oidc_op::sanity_case());
    let mut out = Vec::new();
    for c in &all {
        out.push(oidc_op::run_case(&target, c).await);
    }
    task.abort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_cie_op_case_meets_its_expectation_at_our_cie_op() {
    let results = run_cie(spid_core::oidc::Profile::cie(), false).await;
    assert_eq!(failing(&results), Vec::<String>::new());
    for r in results
        .iter()
        .filter(|r| r.verdict == spid_harness::runner::Verdict::Reject)
    {
        assert!(
            r.rule.as_deref().is_some_and(|c| c.starts_with("op.")),
            "{}",
            r.id
        );
    }
}

/// An OP in the SPID reading refuses or answers otherwise each thing CIE allows: exactly the
/// CIE-only cases fail, the SPID rules that apply to both still pass.
#[tokio::test(flavor = "multi_thread")]
async fn a_spid_op_fails_exactly_the_cie_differences() {
    let results = run_cie(spid_core::oidc::Profile::rules_2023(), false).await;
    let mut failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.id.as_str())
        .collect();
    failed.sort_unstable();
    let mut expected = vec![
        "cie-op-claims-id-token",
        "cie-op-http-no-client-id",
        "cie-op-http-no-response-type",
        "cie-op-id-token-claims",
        "cie-op-id-token-encrypted",
        "cie-op-introspection-active-only",
        // SPID publishes none of the CIE metadata extras.
        "cie-op-metadata-extras",
        "cie-op-refresh-after-access-token-revocation",
        "cie-op-refresh-no-id-token",
        // SPID verifies request objects with RSA only.
        "cie-op-request-es256",
        "cie-op-scope-email",
        "cie-op-scope-profile",
        "cie-op-userinfo-post",
        // POST is refused before the bearer token is looked at.
        "cie-op-userinfo-post-no-token",
        "cie-op-userinfo-scope-profile",
        // ... and client assertions too.
        "cie-op-token-assertion-es256",
    ];
    expected.sort_unstable();
    assert_eq!(failed, expected, "{:?}", failing(&results));
}

/// An authorization response without `iss` fails the CIE probe's case (RFC 9207), while
/// the SPID probe does not ask for it.
#[tokio::test(flavor = "multi_thread")]
async fn a_cie_probe_fails_an_authorization_response_without_iss() {
    let fed = OidcFederation::start_with(
        Credentials::embedded().unwrap(),
        Some(spid_core::oidc::Profile::cie()),
        None,
    )
    .await
    .unwrap();
    let (probe, task) =
        oidc_op::start_probe(&fed.ta, fed.clock.clone(), spid_core::oidc::Profile::cie())
            .await
            .unwrap();
    let users = parse(DEFAULT_USERS).unwrap();
    let ops = fed.op_endpoints();
    let case = oidc_op::select_cie(
        oidc_op::embedded_cie().unwrap(),
        Some("cie-op-iss-on-response"),
    )
    .unwrap()
    .remove(0);
    let plan: spid_idp::oidc::op::OpPlan =
        toml::from_str("[authz_response.edit]\nremove = [\"iss\"]\n").unwrap();
    for (p, fails) in [(&probe, true), (&fed.probe, false)] {
        fed.op.arm(plan.clone());
        let target = oidc_op::OpTarget {
            probe: p,
            op: &ops,
            clock: Some(&fed.clock),
            internal: true,
            users: &users,
            driver: None,
        };
        let r = oidc_op::run_case(&target, &case).await;
        assert_eq!(!r.passed(), fails, "{:?}", r.note);
        if fails {
            assert!(
                r.note.as_deref().is_some_and(|n| n.contains("no iss")),
                "{:?}",
                r.note
            );
        }
    }
    fed.op.disarm();
    task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_external_cie_path_agrees_at_our_cie_op() {
    // check-op --oidc-profile cie: the same catalogue through discovery and the login driver.
    let results = run_cie(spid_core::oidc::Profile::cie(), true).await;
    assert!(results.len() >= 14, "{}", results.len());
    assert_eq!(failing(&results), Vec::<String>::new());
}
