//! `check-idp` discriminates: our IdP passes every check and login; an IdP that always asserts
//! SpidL1 fails exactly the logins where L1 does not satisfy the request. In the CIE profile our
//! CIE IdP passes every CIE check, probe and login (either Assertion Issuer variant), our SPID
//! IdP fails the CIE shape, and a CIE IdP that asserts L1 fails exactly the logins above L1. The
//! Avviso 18 probes pass against our IdP: nr30 exactly where the matrix says so.

use spid_core::cie::{CieEnv, IdpProfile};
use spid_core::{Comparison, SpidLevel};
use spid_harness::check_idp::{check_idp, CheckIdpOptions, CheckIdpReport};
use spid_harness::runner::Credentials;
use spid_idp::{IdentityProvider, IdpConfig};
use std::collections::BTreeSet;

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

async fn run(grant: Option<SpidLevel>) -> CheckIdpReport {
    run_as(IdpProfile::Spid, IdpProfile::Spid, grant, true).await
}

async fn run_as(
    idp_profile: IdpProfile,
    judge: IdpProfile,
    grant: Option<SpidLevel>,
    issuer_format: bool,
) -> CheckIdpReport {
    run_in(idp_profile, judge, grant, issuer_format, CieEnv::Production).await
}

/// check-idp in `judge` profile against our IdP in `idp` profile (`issuer_format`: the CIE
/// Assertion Issuer carries Format; `env`: the CIE environment shape of its base URL).
async fn run_in(
    idp_profile: IdpProfile,
    judge: IdpProfile,
    grant: Option<SpidLevel>,
    issuer_format: bool,
    env: CieEnv,
) -> CheckIdpReport {
    run_with(idp_profile, judge, grant, issuer_format, env, None).await
}

/// [`run_in`] with `--cases`.
async fn run_with(
    idp_profile: IdpProfile,
    judge: IdpProfile,
    grant: Option<SpidLevel>,
    issuer_format: bool,
    env: CieEnv,
    cases: Option<&str>,
) -> CheckIdpReport {
    let creds = Credentials::embedded().unwrap();
    let sp_addr = free_addr();
    // The SP check-idp will start: same key, URL and profile, so the IdP can trust it
    // beforehand.
    let mut sp_cfg = spid_sp::SpConfig::new(&format!("http://{sp_addr}"), creds.sp.clone());
    if judge == IdpProfile::Cie {
        sp_cfg.attributes = spid_core::cie::MINIMUM_ATTRIBUTES
            .map(String::from)
            .to_vec();
        sp_cfg.cie_metadata = true;
    }
    let sp_md = spid_sp::ServiceProvider::new(sp_cfg)
        .unwrap()
        .metadata_xml()
        .to_string();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = env.loopback_base(l.local_addr().unwrap().port());
    let mut cfg = match idp_profile {
        IdpProfile::Spid => IdpConfig::new(&base, creds.idp, creds.foreign),
        IdpProfile::Cie => IdpConfig::cie(&base, creds.idp, creds.foreign),
    };
    // Fetched at the listen address: the harness's fetch does not resolve `*.localhost`.
    let metadata = format!(
        "http://{}{}",
        l.local_addr().unwrap(),
        cfg.metadata_url()
            .strip_prefix(cfg.base_url.as_str())
            .unwrap()
    );
    cfg.grant_level = grant;
    cfg.cie_assertion_issuer_format = issuer_format;
    let idp = IdentityProvider::new(cfg).unwrap();
    idp.register_sp(&sp_md).unwrap();
    let task = tokio::spawn(async move {
        let _ = idp.serve(l).await;
    });
    let report = check_idp(&CheckIdpOptions {
        metadata,
        sp_listen: sp_addr,
        driver: None,
        certs: None,
        profile: judge,
        cases: cases.map(str::to_string),
    })
    .await
    .unwrap();
    task.abort();
    report
}

#[tokio::test]
async fn our_idp_passes_everything() {
    let r = run(None).await;
    let failed: Vec<_> = r
        .checks
        .iter()
        .filter(|c| !c.holds())
        .map(|c| (c.id, &c.detail))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(
        r.checks
            .iter()
            .filter(|c| c.id.starts_with("request."))
            .count()
            >= 10
    );
    let bad: Vec<_> = r.logins.iter().filter(|l| !l.holds()).collect();
    assert!(bad.is_empty(), "{bad:#?}");
    let level = r.logins.iter().filter(|l| l.id.starts_with("login."));
    assert_eq!(level.count(), 13);
    assert_eq!(r.logins.iter().filter(|l| l.expected == "nr20").count(), 2);
    // Avviso 18: the six Purpose rows × the four identity types, nr30 where the matrix says.
    let purposes: Vec<_> = r.logins.iter().filter(|l| l.purpose.is_some()).collect();
    assert_eq!(purposes.len(), 24);
    for l in &purposes {
        let p = spid_core::professional::Purpose::parse(l.purpose.as_deref().unwrap());
        let admitted = spid_core::professional::admits(p, l.identity_type.unwrap());
        assert_eq!(
            l.expected,
            if admitted { "login" } else { "nr30" },
            "{}",
            l.id
        );
        if !admitted {
            assert_eq!(l.rule.as_deref(), Some("response.status.nr30"), "{}", l.id);
        }
    }
    assert_eq!(purposes.iter().filter(|l| l.expected == "nr30").count(), 13);
}

#[tokio::test]
async fn our_cie_idp_passes_every_cie_check_with_either_assertion_issuer() {
    for issuer_format in [true, false] {
        let r = run_as(IdpProfile::Cie, IdpProfile::Cie, None, issuer_format).await;
        let failed: Vec<_> = r
            .checks
            .iter()
            .filter(|c| !c.holds())
            .map(|c| (c.id, &c.detail))
            .collect();
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(
            r.checks
                .iter()
                .filter(|c| c.id.starts_with("idp-metadata."))
                .count(),
            10
        );
        assert_eq!(
            r.checks
                .iter()
                .filter(|c| c.id.starts_with("request.cie."))
                .count(),
            18
        );
        let bad: Vec<_> = r.logins.iter().filter(|l| !l.holds()).collect();
        assert!(bad.is_empty(), "{bad:#?}");
        // L1–L3 × exact/minimum, no Purpose probes (Avviso 18 is SPID's).
        assert_eq!(r.logins.len(), 6);
        assert!(r.logins.iter().all(|l| l.id.starts_with("login.cie.")));
        assert!(
            r.logins.iter().all(|l| l.duties.len() == 9),
            "{:?}",
            r.logins[0].duties
        );
        for id in r
            .checks
            .iter()
            .map(|c| c.id.to_string())
            .chain(r.logins.iter().map(|l| l.id.clone()))
            .chain(
                r.logins
                    .iter()
                    .flat_map(|l| l.duties.iter().map(|d| d.id.to_string())),
            )
        {
            assert!(spid_harness::check_idp::is_known_id(&id), "{id}");
        }
    }
}

#[tokio::test]
async fn a_spid_idp_fails_the_cie_shape() {
    let r = run_as(IdpProfile::Spid, IdpProfile::Cie, None, true).await;
    let failed: BTreeSet<&str> = r
        .checks
        .iter()
        .filter(|c| !c.holds())
        .map(|c| c.id)
        .collect();
    for id in [
        "idp-metadata.cie.entity-id",
        "idp-metadata.cie.sso-post-is-entity-id",
        "idp-metadata.cie.sso-redirect-path",
        // A SPID IdP takes what a CIE IdP must refuse.
        "request.cie.force-authn-false.nr8",
        "request.cie.scoping.nr8",
        "request.cie.destination-entity-id.nr14",
        "request.cie.is-passive-false.nr15",
        "request.cie.comparison-better.nr12",
    ] {
        assert!(failed.contains(id), "{id} not failed: {failed:?}");
    }
    for id in [
        "idp-metadata.cie.signature",
        "idp-metadata.cie.signing-certificate",
        "request.cie.honest",
        "request.cie.version.nr9",
    ] {
        assert!(!failed.contains(id), "{id} failed");
    }
    // Its Responses carry the SPID Response Issuer Format, and no SessionIndex above L1.
    for l in &r.logins {
        let bad: BTreeSet<&str> = l
            .duties
            .iter()
            .filter(|d| !d.holds())
            .map(|d| d.id)
            .collect();
        assert!(bad.contains("idp.cie.response-issuer"), "{}: {bad:?}", l.id);
        assert_eq!(
            bad.contains("idp.cie.session-index"),
            l.level != SpidLevel::L1,
            "{}: {bad:?}",
            l.id
        );
    }
}

#[tokio::test]
async fn a_cie_idp_that_asserts_l1_fails_exactly_the_logins_above_l1() {
    let r = run_as(IdpProfile::Cie, IdpProfile::Cie, Some(SpidLevel::L1), true).await;
    assert!(r.checks.iter().all(|c| c.holds()));
    let failed: BTreeSet<String> = r
        .logins
        .iter()
        .filter(|l| !l.holds())
        .map(|l| l.id.clone())
        .collect();
    let expected: BTreeSet<String> = [
        "login.cie.exact.l2",
        "login.cie.minimum.l2",
        "login.cie.exact.l3",
        "login.cie.minimum.l3",
    ]
    .map(String::from)
    .into();
    assert_eq!(failed, expected);
    for l in r.logins.iter().filter(|l| !l.holds()) {
        let bad: Vec<&str> = l
            .duties
            .iter()
            .filter(|d| !d.holds())
            .map(|d| d.id)
            .collect();
        assert_eq!(bad, ["idp.level-satisfies-request", "sp.rules"], "{}", l.id);
        assert_eq!(l.rule.as_deref(), Some("assertion.level.insufficient"));
    }
}

#[tokio::test]
async fn an_idp_that_always_asserts_l1_is_caught() {
    let r = run(Some(SpidLevel::L1)).await;
    assert!(r.checks.iter().all(|c| c.holds()));
    let failed: BTreeSet<(SpidLevel, &str)> = r
        .logins
        .iter()
        .filter(|l| !l.holds() && l.id.starts_with("login."))
        .map(|l| (l.level, l.comparison.as_str()))
        .collect();
    // L1 satisfies L1 exact/minimum/maximum and every `maximum`; `better L1` wants more;
    // `better L3` is impossible and answered nr20 before any level is asserted.
    let expected: BTreeSet<(SpidLevel, &str)> = [
        (SpidLevel::L1, Comparison::Better),
        (SpidLevel::L2, Comparison::Exact),
        (SpidLevel::L2, Comparison::Minimum),
        (SpidLevel::L2, Comparison::Better),
        (SpidLevel::L3, Comparison::Exact),
        (SpidLevel::L3, Comparison::Minimum),
    ]
    .into_iter()
    .map(|(l, c)| (l, c.as_str()))
    .collect();
    assert_eq!(failed, expected);
    for l in r
        .logins
        .iter()
        .filter(|l| !l.holds() && l.id.starts_with("login."))
    {
        assert!(
            l.duties
                .iter()
                .any(|d| d.id == "idp.level-satisfies-request" && !d.holds()),
            "{l:?}"
        );
        assert_eq!(l.rule.as_deref(), Some("assertion.level.insufficient"));
    }
}

/// A peer file from TOML text.
fn peer(text: &str) -> spid_harness::peers::PeerFile {
    toml::from_str(text).unwrap()
}

#[tokio::test]
async fn a_peer_file_turns_the_listed_failures_into_xfail_and_a_stale_entry_into_xpass() {
    use spid_harness::runner::Outcome;
    let base = run(Some(SpidLevel::L1)).await;
    assert!(base.failed());
    // The level duty (and with it our SP's verdict) fails in six logins and holds in the
    // rest: listed, those six are xfail, the rest pass, the run passes.
    let mut r = base.clone();
    r.settle(&peer(
        "[[expect]]\nid = \"idp.level-satisfies-request\"\noutcome = \"fail\"\nreason = \"always L1\"\n[[expect]]\nid = \"sp.rules\"\noutcome = \"fail\"\nreason = \"refused for its level\"\n",
    ));
    assert!(!r.failed(), "{:?}", r.logins);
    assert_eq!(
        r.logins
            .iter()
            .filter(|l| l.outcome == Outcome::Xfail && l.id.starts_with("login."))
            .count(),
        6
    );
    assert!(r
        .logins
        .iter()
        .filter(|l| l.outcome == Outcome::Xfail && l.id.starts_with("login."))
        .all(|l| l.why.as_deref().is_some_and(|w| w.contains("always L1"))));
    // One login listed by id: xfail; the others still fail the run.
    let mut r = base.clone();
    r.settle(&peer(
        "[[expect]]\nid = \"login.better.l1\"\noutcome = \"fail\"\nreason = \"r\"\n",
    ));
    let one = r.logins.iter().find(|l| l.id == "login.better.l1").unwrap();
    assert_eq!(one.outcome, Outcome::Xfail);
    assert!(r.failed());
    // A check that passes, listed: xpass, the run fails.
    let mut r = base.clone();
    r.settle(&peer(
        "[[expect]]\nid = \"idp-metadata.signed\"\noutcome = \"fail\"\nreason = \"r\"\n[[expect]]\nid = \"idp.level-satisfies-request\"\noutcome = \"fail\"\nreason = \"r\"\n",
    ));
    let signed = r
        .checks
        .iter()
        .find(|c| c.id == "idp-metadata.signed")
        .unwrap();
    assert_eq!(signed.outcome, Outcome::Xpass);
    assert!(r.failed());
    // Every id check-idp reports is one a peer file may name.
    for id in r
        .checks
        .iter()
        .map(|c| c.id.to_string())
        .chain(r.logins.iter().map(|l| l.id.clone()))
        .chain(
            r.logins
                .iter()
                .flat_map(|l| l.duties.iter().map(|d| d.id.to_string())),
        )
    {
        assert!(spid_harness::check_idp::is_known_id(&id), "{id}");
    }
    assert!(!spid_harness::check_idp::is_known_id("idp.no-such-duty"));
}

#[tokio::test]
async fn each_cie_environment_is_judged_and_logged_in_through() {
    // Pre-production and collaudo: the entityID host carries the environment's label, the
    // paths are the real ones; check-idp reads the environment off the entityID and our SP
    // (registering the IdP as CIE) accepts its logins.
    for env in [CieEnv::Preproduction, CieEnv::Collaudo] {
        let r = run_in(IdpProfile::Cie, IdpProfile::Cie, None, true, env).await;
        let failed: Vec<_> = r.checks.iter().filter(|c| !c.holds()).collect();
        assert!(failed.is_empty(), "{env}: {failed:?}");
        let entity = r
            .checks
            .iter()
            .find(|c| c.id == "idp-metadata.cie.entity-id")
            .unwrap();
        assert!(
            entity
                .detail
                .contains(&format!("{}.idserver.localhost", env.label().unwrap()))
                && entity.detail.ends_with(&format!("({env})")),
            "{}",
            entity.detail
        );
        let bad: Vec<_> = r.logins.iter().filter(|l| !l.holds()).collect();
        assert!(bad.is_empty(), "{env}: {bad:#?}");
        assert_eq!(r.logins.len(), 6);
    }
}

#[test]
fn the_check_idp_peer_files_name_only_known_ids_each_with_a_reason() {
    for f in ["pysaml2-idp.toml", "pysaml2-cie-idp.toml"] {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/peers")
            .join(f);
        let peer = spid_harness::peers::PeerFile::load(&p).unwrap();
        peer.check_ids(spid_harness::check_idp::is_known_id)
            .unwrap();
        assert!(!peer.expect.is_empty(), "{f}");
    }
}

/// `spid-harness idp …` with `args`: (exit code, stdout, stderr).
fn idp_cli(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spid-harness"))
        .arg("idp")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn idp_cie_env_shapes_the_entity_id_and_names_the_flag_at_fault() {
    let (code, md, _) = idp_cli(&[
        "--profile",
        "cie",
        "--cie-env",
        "preproduction",
        "--listen",
        "127.0.0.1:8443",
        "--print-metadata",
    ]);
    assert_eq!(code, 0);
    assert!(md.contains(
        "entityID=\"http://preproduzione.idserver.localhost:8443/idp/profile/SAML2/POST/SSO\""
    ));
    assert!(md.contains(
        "Location=\"http://preproduzione.idserver.localhost:8443/idp/profile/SAML2/Redirect/SSO\""
    ));
    let (code, md, _) = idp_cli(&[
        "--profile",
        "cie",
        "--cie-env",
        "production",
        "--listen",
        "127.0.0.1:8443",
        "--print-metadata",
    ]);
    assert_eq!(code, 0);
    assert!(md.contains("entityID=\"http://127.0.0.1:8443/idp/profile/SAML2/POST/SSO\""));
    // Without the CIE profile, and off loopback: a setup error naming the flag.
    let (code, _, err) = idp_cli(&["--cie-env", "collaudo", "--print-metadata"]);
    assert_eq!(code, 2);
    assert!(err.contains("--cie-env needs --profile cie"), "{err}");
    let (code, _, err) = idp_cli(&[
        "--profile",
        "cie",
        "--cie-env",
        "collaudo",
        "--listen",
        "0.0.0.0:8443",
        "--print-metadata",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--cie-env collaudo") && err.contains("--listen must be a loopback address"),
        "{err}"
    );
    assert!(!err.contains("Some("), "{err}");
}

#[tokio::test]
async fn check_idp_reports_its_checks_in_junit() {
    let r = run_as(IdpProfile::Cie, IdpProfile::Cie, Some(SpidLevel::L1), true).await;
    let dir = std::env::temp_dir().join(format!("check-idp-junit-{}", std::process::id()));
    let p = r.write_junit(&dir).unwrap();
    let xml = std::fs::read_to_string(&p).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    for suite in ["idp-metadata", "authn-request", "login"] {
        assert!(
            xml.contains(&format!("<testsuite name=\"{suite}\"")),
            "{suite}: {xml}"
        );
    }
    assert!(xml.contains("name=\"request.cie.scoping.nr8\""));
    // The four logins above L1 fail, with their failing duties in the message.
    assert_eq!(xml.matches("<failure").count(), 4, "{xml}");
    assert!(xml.contains("idp.level-satisfies-request"));
}

#[tokio::test]
async fn cases_runs_only_the_probes_and_logins_it_matches_and_always_the_metadata_checks() {
    use spid_harness::runner::Outcome;
    let l1 = Some(SpidLevel::L1);
    let spid = |cases| {
        run_with(
            IdpProfile::Spid,
            IdpProfile::Spid,
            l1,
            true,
            CieEnv::Production,
            cases,
        )
    };
    let full = spid(None).await;
    let r = spid(Some("login.minimum.*")).await;
    let ids: Vec<&str> = r.logins.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "login.minimum.l1",
            "login.minimum.l2",
            "login.minimum.l3",
            "login.minimum.l3.without-l3"
        ]
    );
    assert!(
        r.checks.iter().all(|c| c.id.starts_with("idp-metadata.")),
        "{:?}",
        r.checks
    );
    let metadata = |r: &CheckIdpReport| {
        r.checks
            .iter()
            .filter(|c| c.id.starts_with("idp-metadata."))
            .count()
    };
    assert_eq!(metadata(&r), metadata(&full));
    // The selected logins are judged as in the whole run.
    for l in &r.logins {
        let same = full.logins.iter().find(|f| f.id == l.id).unwrap();
        assert_eq!((l.outcome, &l.rule), (same.outcome, &same.rule), "{}", l.id);
    }
    // Probes by id; a glob matching nothing runs the metadata checks alone.
    let r = spid(Some("request.version.*")).await;
    let probes: Vec<&str> = r
        .checks
        .iter()
        .map(|c| c.id)
        .filter(|i| i.starts_with("request."))
        .collect();
    assert_eq!((probes, r.logins.len()), (vec!["request.version.nr9"], 0));
    let r = spid(Some("no-such-case")).await;
    assert!(r.logins.is_empty() && r.checks.iter().all(|c| c.id.starts_with("idp-metadata.")));
    // A duty the peer lists holds in the one login that ran: it may fail in one that did not,
    // so it stays pass (in a whole run, holding everywhere, it would be xpass and fail it).
    let listed = peer(
        "[[expect]]\nid = \"idp.level-satisfies-request\"\noutcome = \"fail\"\nreason = \"always L1\"\n",
    );
    let one = spid(Some("login.minimum.l1")).await;
    assert!(one.partial);
    let mut r = one.clone();
    r.settle(&listed);
    assert_eq!(r.logins[0].outcome, Outcome::Pass, "{:?}", r.logins[0]);
    assert!(!r.failed());
    let mut whole = one.clone();
    whole.partial = false;
    whole.settle(&listed);
    assert_eq!(whole.logins[0].outcome, Outcome::Xpass);
    // A bad glob names the flag.
    let err = check_idp(&CheckIdpOptions {
        metadata: "unused.xml".into(),
        sp_listen: free_addr(),
        driver: None,
        certs: None,
        profile: IdpProfile::Spid,
        cases: Some("login.[".into()),
    })
    .await
    .unwrap_err();
    assert!(err.to_string().starts_with("--cases login.["), "{err}");
}
