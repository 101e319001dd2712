//! The CNS catalogue end to end: our card issuer mints each case's card, the harness presents
//! it in the TLS handshake at our SP's CNS login, and the answer is judged. `run --side cns`
//! meets every case; `check-cns` aimed at our SP's listener exits 0; the traces prove the
//! handshake carried the card; and an SP that skips a check fails exactly the case about it.

use spid_harness::cns::{self, CnsCase, CnsPair};
use spid_harness::runner::{CaseResult, Verdict};
use spid_idp::users::{parse, DEFAULT_USERS};
use std::path::PathBuf;
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("spid-cns-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

async fn run_all(pair: &CnsPair, cases: &[CnsCase]) -> Vec<CaseResult> {
    let users = parse(DEFAULT_USERS).expect("users");
    let t = pair.target();
    let mut out = Vec::new();
    for c in cases {
        out.push(cns::run_case(&t, c, &users).await);
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

#[test]
fn run_side_cns_meets_every_case_and_reports() {
    let dir = tmp("run");
    let out = Command::new(env!("CARGO_BIN_EXE_spid-harness"))
        .args(["run", "--side", "cns", "--report-dir"])
        .arg(&dir)
        .output()
        .expect("spid-harness run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = cns::embedded().expect("catalogue").len();
    assert!(n >= 25, "{n}");
    assert!(
        stdout.contains(&format!("{n}/{n} meet their expectation")),
        "{stdout}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("results.json")).expect("results.json"),
    )
    .expect("json");
    let cases = json["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), n);
    // Sanity first and last, each proving the card crossed the handshake.
    let sanity = json["sanity"].as_array().expect("sanity");
    assert_eq!(sanity.len(), 2);
    for s in sanity {
        let tls = &s["trace"][0]["tls"];
        assert_eq!(tls["requested"], true, "{s}");
        assert!(
            tls["presented"][0]
                .as_str()
                .is_some_and(|p| p.contains("RSSMRA80A01H501U/")),
            "{s}"
        );
        assert_eq!(s["status"], 200);
    }
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    assert!(html.contains("client certificate requested"));
    assert!(dir.join("junit.xml").exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_show_what_the_handshake_presented() {
    let pair = CnsPair::start().await.expect("pair");
    let cases: Vec<CnsCase> = cns::embedded()
        .expect("catalogue")
        .into_iter()
        .filter(|c| {
            [
                "no-certificate",
                "missing-intermediate",
                "junk-after-card",
                "rsa-1024",
            ]
            .contains(&c.id.as_str())
        })
        .collect();
    let mut all = vec![cns::sanity_case()];
    all.extend(cases);
    let results = run_all(&pair, &all).await;
    assert_eq!(failing(&results), Vec::<String>::new());
    let tls = |id: &str| {
        results
            .iter()
            .find(|r| r.id == id)
            .and_then(|r| r.trace.first())
            .and_then(|x| x.tls.clone())
            .expect("a handshake in the trace")
    };
    let honest = tls("sanity");
    assert!(honest.requested && honest.protocol.is_some());
    assert_eq!(honest.presented.len(), 2, "the card and its issuing CA");
    assert!(
        honest.presented[1].contains("InfoCert-like"),
        "{:?}",
        honest.presented
    );
    let none = tls("no-certificate");
    assert!(none.requested && none.presented.is_empty());
    assert_eq!(tls("missing-intermediate").presented.len(), 1);
    let junk = tls("junk-after-card");
    assert!(
        junk.presented[2].starts_with("not a certificate"),
        "{junk:?}"
    );
    // The legacy card's handshake completed (signed through OpenSSL): our SP names the key.
    let legacy = results
        .iter()
        .find(|r| r.id == "rsa-1024")
        .expect("rsa-1024");
    assert_eq!(legacy.rule.as_deref(), Some("cns.key.too-small"));
    assert_eq!(legacy.verdict, Verdict::Reject);
    assert!(tls("rsa-1024").presented[0].contains("RSA-1024"));
    // Our side of the flow: the SP asked our issuer about the honest card, by CRL and OCSP
    // (at once, so in either order).
    let sanity = &results[0];
    let mut asked: Vec<(&str, &str)> = sanity.trace[1..]
        .iter()
        .map(|x| {
            (
                x.method.as_str(),
                x.url.rsplit_once(':').map_or("", |(_, p)| p),
            )
        })
        .collect();
    asked.sort();
    assert_eq!(asked.len(), 2, "{:?}", sanity.trace);
    assert!(
        asked[0].0 == "GET" && asked[0].1.contains("/crl/infocert/"),
        "{asked:?}"
    );
    assert!(
        asked[1].0 == "POST" && asked[1].1.ends_with("/ocsp/infocert"),
        "{asked:?}"
    );
    // A card refused before revocation costs our issuer nothing.
    let none = results
        .iter()
        .find(|r| r.id == "missing-intermediate")
        .expect("case");
    assert_eq!(none.trace.len(), 1);
    assert!(honest.presented[0].contains("RSA-2048"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_cns_at_our_sp_exits_0() {
    let pair = CnsPair::start().await.expect("pair");
    for (url, extra) in [(&pair.url, None), (&pair.cie_url, Some("--accepts-cie"))] {
        let dir = tmp(if extra.is_some() {
            "check-cie"
        } else {
            "check"
        });
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_spid-harness"));
        cmd.args(["check-cns", "--url", url.as_str(), "--ca-out"])
            .arg(dir.join("ca"))
            .arg("--report-dir")
            .arg(dir.join("reports"));
        if let Some(e) = extra {
            cmd.arg(e);
        }
        let out = cmd.output().await.expect("spid-harness check-cns");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The service was told what to trust.
        for f in [
            "root.pem",
            "issuing-cas.pem",
            "ca-bundle.pem",
            "crl/infocert.crl.pem",
            "crl/root.crl.pem",
            "crl/all.crl.pem",
        ] {
            assert!(dir.join("ca").join(f).exists(), "{f}");
        }
        let skipped = if extra.is_some() {
            "cie-at-cns-only-service"
        } else {
            "cie-honest"
        };
        assert!(
            stdout.contains(&format!("1 skipped: {skipped}")),
            "{stdout}"
        );
        assert!(dir.join("reports/results.json").exists());
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sp_that_accepts_cie_everywhere_fails_exactly_that_case() {
    let pair = CnsPair::start_with(|cfg| cfg.accept_cie = true)
        .await
        .expect("pair");
    let results = run_all(&pair, &cns::embedded().expect("catalogue")).await;
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(
        failed,
        vec!["cie-at-cns-only-service"],
        "{:?}",
        failing(&results)
    );
    let r = results
        .iter()
        .find(|r| r.id == "cie-at-cns-only-service")
        .expect("case");
    assert_eq!(r.verdict, Verdict::Accept);
}

/// A service that refuses in the handshake (rustls with mandatory client authentication
/// under the TEST root, as a `SSLVerifyClient require` server would): 200 to any card it
/// lets through.
async fn strict_service(pair: &CnsPair) -> url::Url {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = pair.issuer.hierarchy();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for r in h.trust_anchors() {
        roots.add(CertificateDer::from(r)).expect("root");
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("verifier");
    let (chain, key) = h.server_credential("127.0.0.1").expect("server credential");
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            chain.into_iter().map(CertificateDer::from).collect(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = url::Url::parse(&format!("https://{}/", l.local_addr().expect("addr"))).expect("url");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 4096];
                    let _ = tls.read(&mut buf).await;
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_alert_is_a_refusal_reported_as_such() {
    let pair = CnsPair::start().await.expect("pair");
    let url = strict_service(&pair).await;
    let trust = cns::ServerTrust::Any;
    let t = cns::CnsTarget {
        issuer: &pair.issuer,
        url: &url,
        cie_url: None,
        trust: &trust,
        accept_marker: None,
        internal: false,
        timeout: cns::CASE_TIMEOUT,
    };
    let users = parse(DEFAULT_USERS).expect("users");
    let by_id = |id: &str| {
        cns::embedded()
            .expect("catalogue")
            .into_iter()
            .find(|c| c.id == id)
            .expect("case")
    };
    let honest = cns::run_case(&t, &cns::sanity_case(), &users).await;
    assert_eq!(honest.verdict, Verdict::Accept, "{:?}", honest.note);
    for id in ["no-certificate", "unknown-ca"] {
        let r = cns::run_case(&t, &by_id(id), &users).await;
        assert!(r.passed(), "{id}: {:?}", r.note);
        assert_eq!(
            (r.verdict, r.status, r.rule.as_deref()),
            (Verdict::Reject, 0, None)
        );
        assert!(
            r.finding
                .as_deref()
                .is_some_and(|f| f.starts_with("refused in the TLS handshake")),
            "{id}: {:?}",
            r.finding
        );
        let tls = r.trace[0].tls.as_ref().expect("handshake");
        assert!(tls.requested && tls.failure.is_some(), "{tls:?}");
    }
    // A marker the page lacks turns a 200 into a refusal.
    let marked = cns::CnsTarget {
        accept_marker: Some("Codice fiscale"),
        ..t
    };
    let r = cns::run_case(&marked, &cns::sanity_case(), &users).await;
    assert_eq!(r.verdict, Verdict::Reject);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ocsp_responder_answers_rfc_6960_get_requests_and_the_root_crl_verifies() {
    use base64::Engine;
    let pair = CnsPair::start().await.expect("pair");
    let i = &pair.issuer;
    let card = i
        .issue(
            &spid_idp::cns::CardHolder::mario_rossi(),
            &spid_idp::cns::CardPlan::honest(),
        )
        .expect("card");
    let d = tmp("ocsp-get");
    let pem = |der: &[u8]| {
        openssl::x509::X509::from_der(der)
            .and_then(|c| c.to_pem())
            .expect("pem")
    };
    let h = i.hierarchy();
    let ca = d.join("ca.pem");
    let leaf = d.join("card.pem");
    let root = d.join("root.pem");
    std::fs::write(&ca, pem(&h.ca(spid_idp::cns::CaId::Infocert).der)).expect("write");
    std::fs::write(&leaf, pem(&card.der)).expect("write");
    std::fs::write(&root, pem(&h.root_der)).expect("write");
    let req = d.join("req.der");
    let out = Command::new("openssl")
        .args(["ocsp", "-no_nonce", "-issuer"])
        .arg(&ca)
        .arg("-cert")
        .arg(&leaf)
        .arg("-reqout")
        .arg(&req)
        .output()
        .expect("openssl ocsp");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&req).expect("req"));
    let enc: String = url::form_urlencoded::byte_serialize(b64.as_bytes()).collect();
    let answer = reqwest::get(format!("{}/ocsp/infocert/{enc}", i.base_url()))
        .await
        .expect("GET");
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/ocsp-response")
    );
    let resp = d.join("resp.der");
    std::fs::write(&resp, answer.bytes().await.expect("body")).expect("write");
    let out = Command::new("openssl")
        .args(["ocsp", "-respin"])
        .arg(&resp)
        .arg("-issuer")
        .arg(&ca)
        .arg("-cert")
        .arg(&leaf)
        .arg("-CAfile")
        .arg(&root)
        .output()
        .expect("openssl ocsp");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(": good"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = i.fetches_for(&card);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].request.starts_with("GET /ocsp/infocert/"),
        "{seen:?}"
    );
    // The root's CRL (for services that check the whole chain) verifies under the root.
    let crl = d.join("root.crl");
    std::fs::write(&crl, i.root_crl().expect("root CRL")).expect("write");
    let out = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-in"])
        .arg(&crl)
        .arg("-CAfile")
        .arg(&root)
        .output()
        .expect("openssl crl");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("verify OK")
            || String::from_utf8_lossy(&out.stdout).contains("verify OK"),
        "{out:?}"
    );
    let _ = std::fs::remove_dir_all(d);
}
