//! The CNS login end to end on loopback: the card issuer serves its CRL and OCSP responder,
//! the SP listens over TLS, and a rustls client presents a card in the handshake.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use spid_core::clock::SystemClock;
use spid_idp::cns::card::{Presented, SignatureHash};
use spid_idp::cns::{Card, CardEdit, CardHolder, CardIssuer, CardPlan, Channels, OcspMode};
use spid_sp::cns::{CnsConfig, CnsLogin};
use spid_sp::ServeLimits;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Answer {
    status: u16,
    rule: Option<String>,
    body: String,
}

/// GET / over TLS, presenting `card` (or no certificate).
async fn get(addr: SocketAddr, root: &[u8], card: Option<&Card>) -> Answer {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(root.to_vec()))
        .expect("root");
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let cfg = match card {
        Some(c) => builder
            .with_client_auth_cert(
                c.chain.iter().cloned().map(CertificateDer::from).collect(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key_pkcs8.clone())),
            )
            .expect("client identity"),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::IpAddress(addr.ip().into());
    let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
    tls.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let rule = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("x-spid-rule")
            .then(|| v.trim().to_owned())
    });
    Answer {
        status,
        rule,
        body: body.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cns_login_over_tls_follows_revocation() {
    let issuer = CardIssuer::start().await.expect("issuer");
    let h = issuer.hierarchy();
    let mut cfg = CnsConfig::new(h.trust_anchors(), Arc::new(SystemClock));
    cfg.fetch_timeout = Duration::from_secs(2);
    let login = CnsLogin::new(cfg).expect("login");
    let (chain, key) = h.server_credential("127.0.0.1").expect("server credential");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(login.serve_tls(listener, chain, key, ServeLimits::default()));
    let root = h.root_der.clone();

    let card = issuer
        .issue(&CardHolder::mario_rossi(), &CardPlan::honest())
        .expect("card");
    let ok = get(addr, &root, Some(&card)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body.contains("RSSMRA80A01H501U"), "{}", ok.body);
    assert_eq!(ok.rule, None);

    for (on, code) in [
        (Channels::Crl, "cns.revocation.crl.revoked"),
        (Channels::Ocsp, "cns.revocation.ocsp.revoked"),
    ] {
        issuer.revoke(&card, on);
        let no = get(addr, &root, Some(&card)).await;
        assert_eq!(
            (no.status, no.rule.as_deref()),
            (403, Some(code)),
            "{}",
            no.body
        );
        assert!(no.body.contains(code), "the courtesy page names the rule");
        issuer.unrevoke(&card);
        let again = get(addr, &root, Some(&card)).await;
        assert_eq!(again.status, 200, "after un-revoking: {}", again.body);
    }

    // A hanging OCSP responder: refused within the fetch bound, not held.
    issuer.set_ocsp_mode(&card, OcspMode::Hang);
    let started = std::time::Instant::now();
    let hang = get(addr, &root, Some(&card)).await;
    assert_eq!(
        hang.rule.as_deref(),
        Some("cns.revocation.ocsp.unavailable")
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    issuer.set_ocsp_mode(&card, OcspMode::Honest);

    // No card: a courtesy page, not a TLS alert.
    let none = get(addr, &root, None).await;
    assert_eq!(
        (none.status, none.rule.as_deref()),
        (403, Some("cns.certificate.missing"))
    );

    // A card the rules refuse before any fetch.
    let cie = issuer
        .issue(&CardHolder::mario_rossi(), &CardPlan::cie())
        .expect("CIE card");
    let refused = get(addr, &root, Some(&cie)).await;
    assert_eq!(refused.rule.as_deref(), Some("cns.policy.cie-refused"));
    let stale = issuer
        .issue(
            &CardHolder::mario_rossi(),
            &CardPlan::honest().with(CardEdit::Crl {
                mode: spid_idp::cns::CrlMode::Stale,
            }),
        )
        .expect("card");
    let refused = get(addr, &root, Some(&stale)).await;
    assert_eq!(refused.rule.as_deref(), Some("cns.revocation.crl.stale"));
    for (edit, code) in [
        (
            CardEdit::SignatureHash {
                hash: SignatureHash::Sha1,
            },
            "cns.signature.weak-hash",
        ),
        (
            CardEdit::Present {
                chain: Presented::LeafOnly,
            },
            "cns.chain.untrusted",
        ),
    ] {
        let card = issuer
            .issue(&CardHolder::mario_rossi(), &CardPlan::honest().with(edit))
            .expect("card");
        let refused = get(addr, &root, Some(&card)).await;
        assert_eq!(refused.rule.as_deref(), Some(code), "{}", refused.body);
    }

    // An RSA-1024 card (CNS v1.0) from a client nobody here wrote: openssl s_client, at the
    // security level that lets it sign with such a key. The handshake completes and the rule
    // names the key.
    let legacy = issuer
        .issue(
            &CardHolder::mario_rossi(),
            &CardPlan::honest().with(CardEdit::KeyBits { bits: 1024 }),
        )
        .expect("card");
    let root_pem = pem(&root);
    let answer = tokio::task::spawn_blocking(move || s_client(addr, &root_pem, &legacy))
        .await
        .expect("s_client");
    assert!(answer.contains("403 Forbidden"), "{answer}");
    assert!(
        answer.contains("x-spid-rule: cns.key.too-small"),
        "{answer}"
    );
}

fn pem(der: &[u8]) -> String {
    openssl::x509::X509::from_der(der)
        .and_then(|c| c.to_pem())
        .map(|p| String::from_utf8_lossy(&p).into_owned())
        .expect("pem")
}

/// GET / with `openssl s_client`, presenting `card`; the raw answer.
fn s_client(addr: SocketAddr, root_pem: &str, card: &Card) -> String {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("spid-cns-s-client-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let file = |name: &str, data: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, data).expect("write");
        p.to_string_lossy().into_owned()
    };
    let key = openssl::pkey::PKey::private_key_from_der(&card.key_pkcs8)
        .and_then(|k| k.private_key_to_pem_pkcs8())
        .expect("key");
    let (root, cert, chain, key) = (
        file("root.pem", root_pem.as_bytes()),
        file("card.pem", pem(&card.chain[0]).as_bytes()),
        file("ca.pem", pem(&card.chain[1]).as_bytes()),
        file("key.pem", &key),
    );
    let mut child = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-CAfile",
            &root,
            "-cert",
            &cert,
            "-cert_chain",
            &chain,
            "-key",
            &key,
            "-cipher",
            "DEFAULT@SECLEVEL=0",
            "-quiet",
            "-ign_eof",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl on PATH");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    }
    let out = child.wait_with_output().expect("s_client output");
    std::fs::remove_dir_all(&dir).ok();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
