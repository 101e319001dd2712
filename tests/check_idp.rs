//! `check-idp` discriminates: our IdP passes every check and login; an IdP that always asserts
//! SpidL1 fails exactly the logins where L1 does not satisfy the request.

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
    let creds = Credentials::embedded().unwrap();
    let sp_addr = free_addr();
    // The SP check-idp will start: same key and URL, so the IdP can trust it beforehand.
    let sp_md = spid_sp::ServiceProvider::new(spid_sp::SpConfig::new(
        &format!("http://{sp_addr}"),
        creds.sp.clone(),
    ))
    .unwrap()
    .metadata_xml()
    .to_string();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let mut cfg = IdpConfig::new(&base, creds.idp, creds.foreign);
    cfg.grant_level = grant;
    let idp = IdentityProvider::new(cfg).unwrap();
    idp.register_sp(&sp_md).unwrap();
    let task = tokio::spawn(async move {
        let _ = idp.serve(l).await;
    });
    let report = check_idp(&CheckIdpOptions {
        metadata: format!("{base}/metadata"),
        sp_listen: sp_addr,
        driver: None,
        certs: None,
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
    assert_eq!(r.logins.len(), 13);
    assert_eq!(r.logins.iter().filter(|l| l.expected == "nr20").count(), 2);
}

#[tokio::test]
async fn an_idp_that_always_asserts_l1_is_caught() {
    let r = run(Some(SpidLevel::L1)).await;
    assert!(r.checks.iter().all(|c| c.holds()));
    let failed: BTreeSet<(SpidLevel, &str)> = r
        .logins
        .iter()
        .filter(|l| !l.holds())
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
    for l in r.logins.iter().filter(|l| !l.holds()) {
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
            .filter(|l| l.outcome == Outcome::Xfail)
            .count(),
        6
    );
    assert!(r
        .logins
        .iter()
        .filter(|l| l.outcome == Outcome::Xfail)
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
