//! The issuer's output read back by independent parsers: the `openssl` command line for the
//! certificates, the CRL and the OCSP exchange.

use spid_core::clock::FixedClock;
use spid_idp::cns::card::SignatureHash;
use spid_idp::cns::status::{CrlAnswer, OcspAnswer};
use spid_idp::cns::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

fn issuer() -> CardIssuer {
    let clock = Arc::new(FixedClock::new(spid_core::clock::now()));
    CardIssuer::new("http://127.0.0.1:9", clock).expect("issuer")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("spid-cns-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

fn pem(der: &[u8]) -> String {
    openssl::x509::X509::from_der(der)
        .and_then(|c| c.to_pem())
        .map(|p| String::from_utf8_lossy(&p).into_owned())
        .expect("pem")
}

fn write(dir: &Path, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).expect("write");
    p
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl on PATH");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn hierarchy_is_deterministic() {
    let a = Hierarchy::new().unwrap();
    let b = Hierarchy::new().unwrap();
    assert_eq!(a.root_der, b.root_der);
    for ca in CaId::ALL {
        assert_eq!(a.ca(ca).der, b.ca(ca).der, "{ca:?}");
    }
}

#[test]
fn honest_card_follows_the_cns_profile() {
    let i = issuer();
    let card = i
        .issue(&CardHolder::mario_rossi(), &CardPlan::honest())
        .unwrap();
    let d = tmp("profile");
    let root = write(&d, "root.pem", pem(&i.hierarchy().root_der));
    let ca = write(&d, "ca.pem", pem(&i.hierarchy().ca(CaId::Infocert).der));
    let leaf = write(&d, "card.pem", pem(&card.der));
    let s = |p: &PathBuf| p.to_string_lossy().into_owned();
    let (ok, out) = openssl(&[
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        &s(&root),
        "-untrusted",
        &s(&ca),
        &s(&leaf),
    ]);
    assert!(ok, "{out}");
    let (_, text) = openssl(&["x509", "-in", &s(&leaf), "-noout", "-text"]);
    for want in [
        "CN = \"RSSMRA80A01H501U/6000000000004096.",
        "X509v3 Key Usage: critical",
        "Digital Signature",
        "TLS Web Client Authentication",
        "Policy: 1.3.76.16.2.1",
        "/crl/infocert/4096.crl",
        "OCSP - URI:http://127.0.0.1:9/ocsp/infocert",
        "sha256WithRSAEncryption",
    ] {
        assert!(text.contains(want), "{want} not in\n{text}");
    }
    assert_eq!(card.chain.len(), 2);
}

#[test]
fn edits_reach_the_certificate() {
    let i = issuer();
    let holder = CardHolder::mario_rossi();
    let sha1 = i
        .issue(
            &holder,
            &CardPlan::honest().with(CardEdit::SignatureHash {
                hash: SignatureHash::Sha1,
            }),
        )
        .unwrap();
    let d = tmp("edits");
    let leaf = write(&d, "sha1.pem", pem(&sha1.der));
    let (_, text) = openssl(&["x509", "-in", &leaf.to_string_lossy(), "-noout", "-text"]);
    assert!(text.contains("sha1WithRSAEncryption"), "{text}");
    let small = i
        .issue(
            &holder,
            &CardPlan::honest().with(CardEdit::KeyBits { bits: 1024 }),
        )
        .unwrap();
    let cert = openssl::x509::X509::from_der(&small.der).unwrap();
    assert_eq!(cert.public_key().unwrap().bits(), 1024);
    // An edit that changes nothing is an error, never the honest card under another name.
    assert!(matches!(
        i.issue(
            &holder,
            &CardPlan::honest().with(CardEdit::Issuer { ca: CaId::Infocert })
        ),
        Err(CnsError::EditMissed { .. })
    ));
}

#[test]
fn fixture_holders_have_valid_fiscal_codes() {
    let hs = CardHolder::fixtures().unwrap();
    assert!(hs.len() >= 4);
    for h in hs {
        assert_eq!(
            spid_core::cns::check_fiscal_code(&h.fiscal_code),
            Ok(()),
            "{h:?}"
        );
    }
}

#[test]
fn crl_and_ocsp_read_back_with_openssl() {
    let i = issuer();
    let card = i
        .issue(&CardHolder::mario_rossi(), &CardPlan::honest())
        .unwrap();
    let d = tmp("revocation");
    let s = |p: &PathBuf| p.to_string_lossy().into_owned();
    let root = write(&d, "root.pem", pem(&i.hierarchy().root_der));
    let ca = write(&d, "ca.pem", pem(&i.hierarchy().ca(CaId::Infocert).der));
    let leaf = write(&d, "card.pem", pem(&card.der));

    let crl_of = |name: &str| {
        let CrlAnswer::Der(der) = i.crl(CaId::Infocert, Some(card.serial)).unwrap() else {
            panic!("no CRL");
        };
        let f = write(&d, name, der);
        openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            &s(&f),
            "-noout",
            "-text",
            "-CAfile",
            &s(&ca),
        ])
    };
    let (ok, text) = crl_of("good.crl");
    assert!(
        ok && text.contains("verify OK") && text.contains("No Revoked Certificates"),
        "{text}"
    );
    i.revoke(&card, Channels::Both);
    let (ok, text) = crl_of("revoked.crl");
    assert!(ok && text.contains("Serial Number: 1000"), "{text}");

    // The request comes from openssl, the answer goes back to it.
    let req = d.join("req.der");
    let (ok, out) = openssl(&[
        "ocsp",
        "-issuer",
        &s(&ca),
        "-cert",
        &s(&leaf),
        "-reqout",
        &s(&req),
        "-no_nonce",
    ]);
    assert!(ok, "{out}");
    let ask = |name: &str| {
        let req = std::fs::read(&req).unwrap();
        let OcspAnswer::Der(der) = i.ocsp(CaId::Infocert, &req).unwrap() else {
            panic!("no OCSP answer");
        };
        let f = write(&d, name, der);
        openssl(&[
            "ocsp",
            "-respin",
            &s(&f),
            "-issuer",
            &s(&ca),
            "-cert",
            &s(&leaf),
            "-CAfile",
            &s(&root),
            "-verify_other",
            &s(&ca),
            "-resp_text",
        ])
    };
    let (ok, text) = ask("revoked.der");
    assert!(
        ok && text.contains("Response verify OK") && text.contains(": revoked"),
        "{text}"
    );
    i.unrevoke(&card);
    let (ok, text) = ask("good.der");
    assert!(
        ok && text.contains("Response verify OK") && text.contains(": good"),
        "{text}"
    );
    i.set_ocsp_mode(&card, OcspMode::Unknown);
    let (_, text) = ask("unknown.der");
    assert!(text.contains(": unknown"), "{text}");
    i.set_ocsp_mode(&card, OcspMode::TryLater);
    let (_, text) = ask("trylater.der");
    assert!(text.contains("trylater"), "{text}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn delegated_responder_verifies_with_openssl() {
    let i = issuer();
    let card = i
        .issue(
            &CardHolder::mario_rossi(),
            &CardPlan::honest().with(CardEdit::OcspSigner {
                signer: OcspSigner::Delegated,
            }),
        )
        .unwrap();
    let d = tmp("delegated");
    let s = |p: &PathBuf| p.to_string_lossy().into_owned();
    let root = write(&d, "root.pem", pem(&i.hierarchy().root_der));
    let ca = write(&d, "ca.pem", pem(&i.hierarchy().ca(CaId::Infocert).der));
    let leaf = write(&d, "card.pem", pem(&card.der));
    let req = d.join("req.der");
    openssl(&[
        "ocsp",
        "-issuer",
        &s(&ca),
        "-cert",
        &s(&leaf),
        "-reqout",
        &s(&req),
    ]);
    let OcspAnswer::Der(der) = i
        .ocsp(CaId::Infocert, &std::fs::read(&req).unwrap())
        .unwrap()
    else {
        panic!("no OCSP answer");
    };
    let f = write(&d, "resp.der", der);
    let (ok, text) = openssl(&[
        "ocsp",
        "-reqin",
        &s(&req),
        "-respin",
        &s(&f),
        "-CAfile",
        &s(&root),
        "-verify_other",
        &s(&ca),
        "-resp_text",
    ]);
    // With the request given, openssl also checks that its nonce is echoed.
    assert!(
        ok && text.contains("Response verify OK") && text.contains("Cert Status: good"),
        "{text}"
    );
    assert!(!text.contains("Nonce Verify error"), "{text}");
    assert!(text.contains("TEST OCSP responder infocert"), "{text}");
    std::fs::remove_dir_all(&d).ok();
}
