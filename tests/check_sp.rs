//! `check-sp` discriminates: against our SP, run as a separate process, every case passes;
//! against a deliberately weak SP (no audience check, unsigned assertions accepted) exactly
//! the cases that exercise those two rules fail, and no others.

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use spid_harness::catalogue;
use spid_harness::external::{check_sp, CheckSpOptions, CheckSpReport};
use spid_harness::runner::Credentials;
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn idp_metadata(idp_addr: &str) -> String {
    let c = Credentials::embedded().unwrap();
    let cfg = spid_idp::IdpConfig::new(&format!("http://{idp_addr}"), c.idp, c.foreign);
    spid_idp::IdentityProvider::new(cfg)
        .unwrap()
        .metadata_xml()
        .to_string()
}

async fn wait_for(url: &str) {
    let c = reqwest::Client::builder().no_proxy().build().unwrap();
    for _ in 0..100 {
        if c.get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never answered");
}

async fn run(sp_base: &str, idp_addr: &str) -> CheckSpReport {
    let opts = CheckSpOptions {
        metadata: format!("{sp_base}/metadata"),
        login_url: url::Url::parse(&format!("{sp_base}/login")).unwrap(),
        idp_listen: idp_addr.to_string(),
        certs: None,
    };
    let cases = catalogue::embedded("saml").unwrap();
    let users = spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap();
    check_sp(&opts, &cases, &users, |_| {}).await.unwrap()
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

#[tokio::test]
async fn our_sp_as_a_process_passes_everything() {
    let idp_addr = format!("127.0.0.1:{}", free_port());
    let sp_addr = format!("127.0.0.1:{}", free_port());
    let dir = std::env::temp_dir().join(format!("spid-harness-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let md = dir.join("idp.xml");
    std::fs::write(&md, idp_metadata(&idp_addr)).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_spid-harness"))
        .args(["sp", "--listen", &sp_addr, "--idp-metadata"])
        .arg(&md)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Kill(child);
    let base = format!("http://{sp_addr}");
    wait_for(&format!("{base}/metadata")).await;
    let report = run(&base, &idp_addr).await;
    assert_eq!(report.setup_error, None);
    let failed_checks: Vec<_> = report
        .checks
        .iter()
        .filter(|c| !c.pass)
        .map(|c| c.id)
        .collect();
    assert!(failed_checks.is_empty(), "{failed_checks:?}");
    assert!(report
        .checks
        .iter()
        .any(|c| c.id == "request.signed" && c.pass));
    let failed: Vec<_> = report
        .cases
        .iter()
        .filter(|c| !c.pass)
        .map(|c| (&c.id, &c.rule, &c.note))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(
        report.cases.len() >= 125,
        "{} cases ran",
        report.cases.len()
    );
    // Our SP names the deciding rule on every rejection.
    assert!(report
        .cases
        .iter()
        .filter(|c| c.status == 403)
        .all(|c| c.rule.is_some()));
}

/// Rules the weak SP does not enforce.
const SKIPPED_RULES: [&str; 3] = [
    "assertion.audience.missing",
    "assertion.audience.mismatch",
    "signature.assertion.missing",
];

/// A weak SP: our SP behind a layer that turns a refusal by one of [`SKIPPED_RULES`] into a
/// login, i.e. an SP without the audience check that accepts unsigned assertions.
async fn weak_sp(idp_md: &str) -> (String, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let sp = spid_sp::ServiceProvider::new(spid_sp::SpConfig::new(
        &base,
        Credentials::embedded().unwrap().sp,
    ))
    .unwrap();
    sp.register_idp(idp_md, None).unwrap();
    let app = sp.router().layer(axum::middleware::map_response(
        |mut r: Response| async move {
            let skipped = r
                .headers()
                .get(spid_sp::RULE_HEADER)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| SKIPPED_RULES.contains(&v));
            if skipped {
                *r.status_mut() = StatusCode::OK;
                r.headers_mut().remove(spid_sp::RULE_HEADER);
                r.headers_mut().insert(
                    spid_sp::OUTCOME_HEADER,
                    HeaderValue::from_static("accepted"),
                );
            }
            r
        },
    ));
    let task = tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (base, task)
}

#[tokio::test]
async fn a_weak_sp_fails_exactly_the_expected_cases() {
    let idp_addr = format!("127.0.0.1:{}", free_port());
    let (base, task) = weak_sp(&idp_metadata(&idp_addr)).await;
    let report = run(&base, &idp_addr).await;
    task.abort();
    assert_eq!(report.setup_error, None);
    let failed: BTreeSet<&str> = report
        .cases
        .iter()
        .filter(|c| !c.pass)
        .map(|c| c.id.as_str())
        .collect();
    let expected: BTreeSet<&str> = [
        "spt-002-unsigned",
        "spt-003-assertion-unsigned",
        "spt-073-conditions-empty",
        "spt-083-audience-restriction-empty",
        "ssc-084-audience-restriction-missing",
        "spt-085-audience-empty",
        "spt-086-audience-missing",
        "spt-087-audience-other",
    ]
    .into_iter()
    .collect();
    assert_eq!(failed, expected);
    // The failures are real: the weak SP answered 200 where a refusal was due.
    for c in report.cases.iter().filter(|c| !c.pass) {
        assert_eq!(c.status, 200, "{}", c.id);
    }
}
