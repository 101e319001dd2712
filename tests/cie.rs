//! The CIE catalogue end to end: our IdP in the CIE profile answers each case's login with the
//! case's plan, our SP (registering it as CIE) judges. `run --side cie` meets every case, and
//! an SP that registers the CIE IdP as SPID fails exactly the cases where the CIE rules differ
//! from SPID's.

use spid_core::cie::IdpProfile;
use spid_harness::cie::{self, CieCase};
use spid_harness::runner::{CaseResult, InternalPair};
use std::process::Command;

async fn run_all(pair: &InternalPair, cases: &[CieCase]) -> Vec<CaseResult> {
    let users = cie::users().expect("CIE users");
    let mut out = Vec::new();
    for c in cases {
        out.push(cie::run_case(pair, c, &users).await);
    }
    out
}

fn failing(results: &[CaseResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.id.clone())
        .collect()
}

#[test]
fn run_side_cie_meets_every_case() {
    let out = Command::new(env!("CARGO_BIN_EXE_spid-harness"))
        .args(["run", "--side", "cie"])
        .output()
        .expect("spid-harness run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = cie::embedded().expect("catalogue").len();
    assert!(n >= 40, "{n}");
    assert!(
        stdout.contains(&format!("{n}/{n} meet their expectation")),
        "{stdout}"
    );
    // Sanity first and last.
    let lines: Vec<&str> = stdout.lines().filter(|l| l.contains("sanity")).collect();
    assert!(lines.len() >= 2, "{stdout}");
    let list = Command::new(env!("CARGO_BIN_EXE_spid-harness"))
        .args(["list", "--side", "cie"])
        .output()
        .expect("spid-harness list");
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.contains(&format!("{n} cases")), "{listed}");
}

#[test]
fn idp_profile_cie_prints_metadata_of_the_cie_shape() {
    let out = Command::new(env!("CARGO_BIN_EXE_spid-harness"))
        .args([
            "idp",
            "--profile",
            "cie",
            "--listen",
            "127.0.0.1:8443",
            "--print-metadata",
        ])
        .output()
        .expect("spid-harness idp");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = String::from_utf8_lossy(&out.stdout);
    let m = spid_core::saml::metadata::parse(&xml).expect("CIE metadata parses");
    assert_eq!(
        m.entity_id,
        "http://127.0.0.1:8443/idp/profile/SAML2/POST/SSO"
    );
    assert_eq!(m.signing_certs.len(), 2, "two signing keys for rollover");
    assert!(!xml.contains("Signature") && !xml.contains("WantAuthnRequestsSigned"));
    // The SPID profile is unchanged: signed, entityID = the base URL.
    let out = Command::new(env!("CARGO_BIN_EXE_spid-harness"))
        .args(["idp", "--listen", "127.0.0.1:8443", "--print-metadata"])
        .output()
        .expect("spid-harness idp");
    let xml = String::from_utf8_lossy(&out.stdout);
    let m = spid_core::saml::metadata::parse(&xml).expect("SPID metadata parses");
    assert_eq!(m.entity_id, "http://127.0.0.1:8443");
    assert!(xml.contains("WantAuthnRequestsSigned=\"true\"") && xml.contains("Signature"));
    // sp --cie publishes the CIE SP model: signed, the CIE extensions, the minimum set only.
    let out = Command::new(env!("CARGO_BIN_EXE_spid-harness"))
        .args([
            "sp",
            "--cie",
            "--listen",
            "127.0.0.1:8000",
            "--print-metadata",
        ])
        .output()
        .expect("spid-harness sp");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = String::from_utf8_lossy(&out.stdout);
    let m = spid_core::saml::metadata::parse(&xml).expect("CIE SP metadata parses");
    let sp = m.sp.expect("SPSSODescriptor");
    let mut attrs = sp.attribute_services[0].attributes.clone();
    attrs.sort();
    let mut want = spid_core::cie::MINIMUM_ATTRIBUTES
        .map(String::from)
        .to_vec();
    want.sort();
    assert_eq!(attrs, want);
    assert!(xml.contains(spid_core::cie::SAML_EXTENSIONS_NS) && xml.contains("cie:Municipality"));
}

/// An SP that registers our CIE IdP as a SPID IdP refuses the Assertion Issuer without
/// Format (SPID requires it: spid-sp-test 70/71) and does not require the eIDAS minimum set:
/// exactly those cases fail, and the CIE request rules still let its requests through
/// except at L1, where SPID sends no ForceAuthn and the CIE IdP refuses (nr8).
#[tokio::test]
async fn an_sp_treating_the_cie_idp_as_spid_fails_exactly_the_cie_differences() {
    let cases = cie::embedded().expect("catalogue");
    let pair = cie::start_pair(IdpProfile::Spid).await.expect("pair");
    let mut got = failing(&run_all(&pair, &cases).await);
    got.sort();
    let mut want = vec![
        // The Assertion Issuer without Format, accepted from CIE only.
        "cie-assertion-issuer-without-format",
        "cie-both-issuers-without-format",
        // The eIDAS minimum set is a CIE rule; a SPID SP only notes the difference.
        "cie-attributes-spid-subset",
        "cie-attributes-without-date-of-birth",
        "cie-attributes-without-family-name",
        "cie-attributes-without-fiscal-number",
        "cie-attributes-without-name",
        // L1 requests without ForceAuthn: refused by the CIE IdP (idp.cie.force-authn.missing).
        "cie-level-minimum-l1-got-l1",
        "cie-login-app-l1-requested",
        "cie-login-app-l1-user",
    ];
    want.sort();
    assert_eq!(got, want);
    // And the right pair meets them all.
    let pair = cie::start_pair(IdpProfile::Cie).await.expect("pair");
    assert_eq!(failing(&run_all(&pair, &cases).await), Vec::<String>::new());
}

/// CIE "simple logout": the IdP accepts the SP's signed LogoutRequest, ends the session and
/// sends no LogoutResponse back (the browser ends on the IdP's page).
#[tokio::test]
async fn simple_logout_accepts_the_request_and_sends_no_response() {
    let pair = cie::start_pair(IdpProfile::Cie).await.expect("pair");
    let users = cie::users().expect("users");
    let mario = users.iter().find(|u| u.username == "mario.rossi");
    for binding in ["redirect", "post"] {
        let mut ua = spid_harness::runner::user_agent().expect("agent");
        let page = spid_harness::runner::drive_login(
            &mut ua,
            &pair.login_url(),
            mario,
            Default::default(),
        )
        .await
        .expect("login");
        assert_eq!(page.status, 200, "{}", page.body);
        let start = url::Url::parse(&format!("{}/logout?binding={binding}", pair.sp_url)).unwrap();
        let first = ua.get(&start).await.expect("logout");
        let page = ua.auto_post(first).await.expect("logout");
        assert_eq!(page.status, 200, "{binding}: {}", page.body);
        assert!(
            page.body.contains("simple logout"),
            "{binding}: {}",
            page.body
        );
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
            !msgs.iter().any(|x| x.contains("LogoutResponse")),
            "{binding}"
        );
    }
}

/// The Response our CIE IdP sends, as sent: no Format on the Response Issuer, Format entity on
/// the Assertion Issuer (the default variant), SessionIndex at L2, the four attributes with
/// `TINIT-` and YYYY-MM-DD, no spidCode; a card login is SpidL3.
#[tokio::test]
async fn the_cie_response_has_the_cie_shape() {
    use spid_core::saml::ns;
    use spid_core::saml::xml::{self, Limits};
    let pair = cie::start_pair(IdpProfile::Cie).await.expect("pair");
    let users = cie::users().expect("users");
    for (who, level) in [("mario.rossi", "SpidL2"), ("luca.verdi", "SpidL3")] {
        let user = users.iter().find(|u| u.username == who);
        let mut ua = spid_harness::runner::user_agent().expect("agent");
        let page =
            spid_harness::runner::drive_login(&mut ua, &pair.login_url(), user, Default::default())
                .await
                .expect("login");
        assert_eq!(page.status, 200, "{who}: {}", page.body);
        let sent = pair.idp.last_response().expect("a Response").xml;
        let root = xml::parse(&sent, &Limits::default()).expect("parses");
        let issuer = root.child(ns::SAML, "Issuer").expect("Response Issuer");
        assert_eq!(issuer.attr("Format"), None, "{who}");
        assert_eq!(issuer.text().trim(), pair.idp.config().entity_id);
        let a = root.child(ns::SAML, "Assertion").expect("Assertion");
        assert_eq!(
            a.child(ns::SAML, "Issuer").and_then(|i| i.attr("Format")),
            Some(ns::NAMEID_ENTITY)
        );
        let st = a.child(ns::SAML, "AuthnStatement").expect("AuthnStatement");
        assert!(
            st.attr("SessionIndex").is_some_and(|s| !s.is_empty()),
            "{who}"
        );
        assert!(
            sent.contains(&format!("https://www.spid.gov.it/{level}")),
            "{who}"
        );
        let attrs: Vec<(String, String)> = a
            .children_named(ns::SAML, "AttributeStatement")
            .flat_map(|s| s.children_named(ns::SAML, "Attribute"))
            .map(|at| {
                (
                    at.attr("Name").unwrap_or_default().to_string(),
                    at.child(ns::SAML, "AttributeValue")
                        .map(|v| v.text().trim().to_string())
                        .unwrap_or_default(),
                )
            })
            .collect();
        let mut names: Vec<&str> = attrs.iter().map(|(n, _)| n.as_str()).collect();
        names.sort();
        let mut want = spid_core::cie::MINIMUM_ATTRIBUTES.to_vec();
        want.sort();
        assert_eq!(names, want, "{who}");
        let value = |n: &str| attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert!(value("fiscalNumber").is_some_and(|v| spid_core::attributes::is_fiscal_number(&v)));
        assert!(value("dateOfBirth")
            .is_some_and(|v| chrono::NaiveDate::parse_from_str(&v, "%Y-%m-%d").is_ok()));
    }
}

/// The CIE table reserves nr19, nr20 and nr24: a case plan asking our CIE IdP for one is a
/// harness error naming why, never a Response a CIE IdP would not send.
#[tokio::test]
async fn a_plan_asking_a_reserved_cie_code_is_a_harness_error() {
    let pair = cie::start_pair(IdpProfile::Cie).await.expect("pair");
    let users = cie::users().expect("users");
    for n in [19, 20, 24] {
        let text = format!(
            "id = \"cie-x\"\ntitle = \"t\"\nfamily = \"cie-error\"\n[plan]\nstatus = {n}\n[expect]\nverdict = \"reject\"\nrules = [\"response.status.not-success\"]\n"
        );
        let case: CieCase = spid_harness::catalogue::parse("cie-x.toml", &text).expect("parses");
        let r = cie::run_case(&pair, &case, &users).await;
        assert!(!r.passed(), "nr{n}");
        let note = r.note.clone().unwrap_or_default();
        assert!(note.contains("reserved"), "nr{n}: {note}");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Kills the child process when dropped.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Our SP as a separate process (`sp <sp_args> --cie-idp <our CIE IdP at idp_addr>`).
fn cie_sp(dir: &std::path::Path, idp_addr: &str, sp_args: &[&str]) -> (String, Kill) {
    let bin = env!("CARGO_BIN_EXE_spid-harness");
    let md = Command::new(bin)
        .args([
            "idp",
            "--profile",
            "cie",
            "--listen",
            idp_addr,
            "--print-metadata",
        ])
        .output()
        .expect("idp --print-metadata");
    assert!(md.status.success());
    let md_path = dir.join("cie-idp.xml");
    std::fs::write(&md_path, &md.stdout).expect("write");
    let sp_addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(bin)
        .args(["sp", "--listen", &sp_addr])
        .args(sp_args)
        .arg("--cie-idp")
        .arg(&md_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sp");
    let kill = Kill(child);
    let base = format!("http://{sp_addr}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(&sp_addr).is_ok() {
            return (base, kill);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("our SP never listened on {sp_addr}");
}

fn check_sp(profile: &str, sp: &str, idp_addr: &str, report: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_spid-harness"))
        .args(["check-sp", "--profile", profile, "--metadata"])
        .arg(format!("{sp}/metadata"))
        .arg("--login-url")
        .arg(format!("{sp}/login"))
        .args(["--idp-listen", idp_addr, "--report-dir"])
        .arg(report)
        .output()
        .expect("check-sp");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `check-sp --profile cie-sp-public|cie-sp-private` against our SP in CIE mode (`sp --cie`,
/// `--private` for the private profile) exits 0 with the CIE metadata and AuthnRequest checks
/// in junit.xml and every `cie` case met; our SP's SPID metadata under a CIE profile fails the
/// CIE metadata checks.
#[test]
fn check_sp_cie_profiles_pass_against_our_sp_in_cie_mode() {
    let dir =
        std::env::temp_dir().join(format!("spid-harness-cie-check-sp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for (profile, sp_args) in [
        ("cie-sp-public", &["--cie"][..]),
        ("cie-sp-private", &["--cie", "--private"][..]),
    ] {
        let idp_addr = format!("127.0.0.1:{}", free_port());
        let (sp, _kill) = cie_sp(&dir, &idp_addr, sp_args);
        let report = dir.join(profile);
        let (code, stdout) = check_sp(profile, &sp, &idp_addr, &report);
        assert_eq!(code, 0, "{profile}: {stdout}");
        // Every cie case ran or was skipped as internal-only, none failed.
        let ran = stdout
            .lines()
            .find_map(|l| l.strip_suffix(" cases meet their expectation"))
            .unwrap_or_else(|| panic!("{stdout}"));
        let (met, of) = ran.trim().split_once('/').expect("met/of");
        assert_eq!(met, of, "{profile}: {stdout}");
        let junit = std::fs::read_to_string(report.join("junit.xml")).expect("junit.xml");
        for code in [
            "sp-request.cie.destination",
            "sp-request.cie.force-authn",
            "sp-request.cie.comparison",
            "sp-request.cie.signature.redirect",
            "sp-metadata.cie.contact.municipality",
            "sp-metadata.cie.contact.kind",
        ] {
            assert!(junit.contains(code), "{profile}: {code} not in junit.xml");
        }
        assert!(!junit.contains("sp-metadata.contact.other"), "{profile}");
        assert!(junit.contains("cie-login-card-l3"), "{profile}");
    }
    // Our SP publishing SPID metadata (no --cie) is no CIE SP.
    let idp_addr = format!("127.0.0.1:{}", free_port());
    let (sp, _kill) = cie_sp(&dir, &idp_addr, &["--cie-attributes"]);
    let (code, stdout) = check_sp("cie-sp-public", &sp, &idp_addr, &dir.join("spid-md"));
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("FAIL  sp-metadata.cie.contact.administrative"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
