//! `check-sp` discriminates: against our SP, run as a separate process, every check and case
//! passes by either binding, with at least as many checks as spid-sp-test runs there; against
//! a deliberately weak SP (no audience check, unsigned assertions accepted) exactly the cases
//! that exercise those two rules fail, and no others; a login URL that never reaches our IdP
//! is a setup error (exit 2) that says where the flow stopped and still writes the reports;
//! `--jobs 8` gives the same verdicts as `--jobs 1`.

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
    run_with(sp_base, "/login", idp_addr, 4).await
}

async fn run_with(sp_base: &str, login: &str, idp_addr: &str, jobs: usize) -> CheckSpReport {
    let opts = CheckSpOptions {
        metadata: format!("{sp_base}/metadata"),
        login_url: url::Url::parse(&format!("{sp_base}{login}")).unwrap(),
        idp_listen: idp_addr.to_string(),
        certs: None,
        lenient_requests: false,
        jobs,
        peer: None,
    };
    let cases = catalogue::embedded("saml").unwrap();
    let users = spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap();
    check_sp(&opts, &cases, &users, |_| {}).await
}

/// Our SP as a separate process trusting our IdP at `idp_addr`.
async fn our_sp(idp_addr: &str, extra: &[&str]) -> (String, Kill) {
    let sp_addr = format!("127.0.0.1:{}", free_port());
    let dir = std::env::temp_dir().join(format!(
        "spid-harness-test-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let md = dir.join("idp.xml");
    std::fs::write(&md, idp_metadata(idp_addr)).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_spid-harness"))
        .args(["sp", "--listen", &sp_addr, "--idp-metadata"])
        .arg(&md)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://{sp_addr}");
    wait_for(&format!("{base}/metadata")).await;
    (base, Kill(child))
}

fn count(report: &CheckSpReport, group: &str) -> usize {
    report.checks.iter().filter(|c| c.group() == group).count()
}

fn failed_checks(report: &CheckSpReport) -> Vec<(&str, &str)> {
    report
        .checks
        .iter()
        .filter(|c| !c.holds())
        .map(|c| (c.id, c.detail.as_str()))
        .collect()
}

#[tokio::test]
async fn our_sp_by_post_binding_passes_with_the_request_as_it_arrived() {
    let idp_addr = format!("127.0.0.1:{}", free_port());
    let (base, _sp) = our_sp(&idp_addr, &[]).await;
    let report = run_with(&base, "/login?binding=post", &idp_addr, 4).await;
    assert_eq!(report.setup_error, None);
    assert_eq!(failed_checks(&report), Vec::<(&str, &str)>::new());
    // spid-sp-test 1.2.18 runs 51 request checks against our SP by POST.
    assert!(
        count(&report, "authn-request") >= 51,
        "{}",
        count(&report, "authn-request")
    );
    let arrived = report.sanity[0]
        .trace
        .iter()
        .find(|x| x.saml.iter().any(|m| m.param == "SAMLRequest"))
        .unwrap();
    assert_eq!(arrived.method, "POST");
    assert!(report.cases.iter().all(|c| c.passed()));
}

#[tokio::test]
async fn our_private_sp_meets_the_private_profile() {
    let idp_addr = format!("127.0.0.1:{}", free_port());
    let (base, _sp) = our_sp(&idp_addr, &["--private"]).await;
    let report = run_with(&base, "/login", &idp_addr, 4).await;
    assert_eq!(report.setup_error, None);
    assert_eq!(failed_checks(&report), Vec::<(&str, &str)>::new());
    // spid-sp-test 1.2.18 runs 117 metadata checks against our private SP.
    assert!(
        count(&report, "metadata") >= 117,
        "{}",
        count(&report, "metadata")
    );
}

#[tokio::test]
async fn a_login_url_that_never_reaches_our_idp_is_a_setup_error_with_reports() {
    let idp_addr = format!("127.0.0.1:{}", free_port());
    let (base, _sp) = our_sp(&idp_addr, &[]).await;
    let dir = std::env::temp_dir().join(format!("check-sp-setup-{}", free_port()));
    let out = Command::new(env!("CARGO_BIN_EXE_spid-harness"))
        .args(["check-sp", "--metadata", &format!("{base}/metadata")])
        .args([
            "--login-url",
            &format!("{base}/"),
            "--idp-listen",
            &idp_addr,
        ])
        .arg("--report-dir")
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "setup error: the honest L2 login failed before the run: the login URL answered 200 at {base}/ without sending an AuthnRequest to our IdP"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("?idp="), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert!(json["setup_error"]
        .as_str()
        .unwrap()
        .contains("without sending an AuthnRequest"));
    // The metadata checks ran and are reported; the trace so far is kept.
    assert!(json["checks"].as_array().unwrap().len() > 10);
    assert!(!json["sanity"][0]["trace"].as_array().unwrap().is_empty());
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("<testsuite name=\"setup\""), "{junit}");
    assert!(dir.join("report.html").exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn jobs_eight_gives_the_verdicts_of_jobs_one() {
    let idp_addr = format!("127.0.0.1:{}", free_port());
    let (base, _sp) = our_sp(&idp_addr, &[]).await;
    let verdicts = |r: &CheckSpReport| {
        r.cases
            .iter()
            .map(|c| serde_json::json!([c.id, c.verdict, c.status, c.rule, c.outcome, c.note]))
            .collect::<Vec<_>>()
    };
    let one = run_with(&base, "/login", &idp_addr, 1).await;
    let eight = run_with(&base, "/login", &idp_addr, 8).await;
    assert_eq!(one.setup_error, None);
    assert!(one.cases.len() >= 125);
    assert_eq!(verdicts(&one), verdicts(&eight));
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
    let (base, _sp) = our_sp(&idp_addr, &[]).await;
    let report = run(&base, &idp_addr).await;
    assert_eq!(report.setup_error, None);
    assert_eq!(failed_checks(&report), Vec::<(&str, &str)>::new());
    // spid-sp-test 1.2.18 runs 110 metadata and 44 request checks against our SP (Redirect).
    assert!(
        count(&report, "metadata") >= 110,
        "{}",
        count(&report, "metadata")
    );
    assert!(
        count(&report, "authn-request") >= 44,
        "{}",
        count(&report, "authn-request")
    );
    let failed: Vec<_> = report
        .cases
        .iter()
        .filter(|c| !c.passed())
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
        .filter(|c| !c.passed())
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
    for c in report.cases.iter().filter(|c| !c.passed()) {
        assert_eq!(c.status, 200, "{}", c.id);
    }
}

/// `run` (our pair, the SAML side) gives the same verdicts with `--jobs 1` and `--jobs 8`.
#[test]
fn run_jobs_eight_gives_the_verdicts_of_jobs_one() {
    let verdicts = |jobs: &str| {
        let dir = std::env::temp_dir().join(format!("run-jobs-{jobs}-{}", free_port()));
        let out = Command::new(env!("CARGO_BIN_EXE_spid-harness"))
            .args(["run", "--side", "saml", "--jobs", jobs, "--report-dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap())
                .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        json["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                serde_json::json!([
                    c["id"],
                    c["verdict"],
                    c["status"],
                    c["rule"],
                    c["outcome"],
                    c["note"]
                ])
            })
            .collect::<Vec<_>>()
    };
    let one = verdicts("1");
    assert!(one.len() >= 195, "{} cases", one.len());
    assert_eq!(one, verdicts("8"));
}

/// `run --partition k/3` for k = 1..3: the shards' cases add up to the whole run, each case
/// once, and `merge` combines their reports into one with the whole run's verdicts.
#[test]
fn partitions_add_up_to_the_whole_run_and_merge() {
    let base = std::env::temp_dir().join(format!("partitions-{}", free_port()));
    let run = |args: &[&str], dir: &std::path::Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_spid-harness"))
            .args(args)
            .arg("--report-dir")
            .arg(dir)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap())
                .unwrap();
        let mut v: Vec<String> = json["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| format!("{} {} {}", c["id"], c["verdict"], c["outcome"]))
            .collect();
        v.sort();
        v
    };
    let whole = run(&["run", "--side", "saml"], &base.join("whole"));
    let mut shards = Vec::new();
    let mut files = Vec::new();
    for k in 1..=3 {
        let dir = base.join(format!("shard{k}"));
        let part = run(
            &["run", "--side", "saml", "--partition", &format!("{k}/3")],
            &dir,
        );
        assert!(!part.is_empty() && part.len() < whole.len());
        shards.extend(part);
        files.push(dir.join("results.json"));
    }
    shards.sort();
    assert_eq!(shards, whole);
    let mut args = vec!["merge".to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(run(&args, &base.join("merged")), whole);
    let junit = std::fs::read_to_string(base.join("merged/junit.xml")).unwrap();
    assert!(junit.contains("failures=\"0\""), "{junit}");
    let _ = std::fs::remove_dir_all(base);
}
