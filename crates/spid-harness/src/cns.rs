//! CNS runs: smart-card logins over TLS client certificates. The `cns` catalogue
//! (`fixtures/cases/cns/*.toml`: a card recipe — the honest CNS or CIE 3.0 authentication
//! certificate, then a [`CardPlan`] of edits, revocation and issuer state included — and an
//! expectation), the harness's TLS client presenting a chosen card ([`present`]), our own
//! target ([`CnsPair`]: the card issuer and our SP's CNS listeners on loopback) and the run of
//! one case at any TLS service ([`run_case`]).
//!
//! Verdict contract with any service: HTTP 200 = accepted (with `--accept-marker`, only if the
//! page contains it); 4xx or 500 = refused; a TLS alert or a connection closed in or right
//! after the handshake = refused in the handshake (reported as such). A verdict counts only if
//! the trace proves the flow crossed both sides: the handshake completed, the service asked
//! for a client certificate and the card was presented (or, for a case without a card, none
//! was), and the service answered.

use crate::agent::{Exchange, TlsHandshake};
use crate::catalogue::{Case, Expect, LoadError, Scope};
use crate::runner::{judge, CaseResult, Outcome, Verdict};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{DigitallySignedStruct, SignatureAlgorithm, SignatureScheme};
use serde::{Deserialize, Serialize};
use spid_idp::cns::card::Presented;
use spid_idp::cns::{CaId, Card, CardEdit, CardHolder, CardIssuer, CardPlan};
use spid_idp::users::User;
use spid_sp::cns::{CnsConfig, CnsLogin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

/// Which honest certificate the recipe starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CardKind {
    /// A CNS authentication certificate (policy 1.3.76.16.2.1).
    #[default]
    Cns,
    /// A CIE 3.0 authentication certificate (policy 1.3.76.47.4).
    Cie,
}

/// Which kind of service a case is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    /// Any CNS service.
    #[default]
    Any,
    /// A service that accepts CNS cards only (our SP's default; `check-cns` without
    /// `--accepts-cie`).
    CnsOnly,
    /// A service that also accepts CIE 3.0 authentication certificates (our SP's second
    /// listener; `check-cns --accepts-cie`).
    CieAccepted,
}

impl Service {
    /// Whether a case about this kind of service runs at a service that does (or does not)
    /// accept CIE.
    pub fn fits(self, accepts_cie: bool) -> bool {
        match self {
            Service::Any => true,
            Service::CnsOnly => !accepts_cie,
            Service::CieAccepted => accepts_cie,
        }
    }
}

/// The CNS side's own fields: the card recipe (the honest certificate of `card`, then `plan`'s
/// edits, revocation and issuer state included), whether a certificate is presented at all,
/// and the kind of service the case is about. Contradictions (plan edits for a card that is
/// not presented, `present = "nothing"` as an edit) are refused when the file loads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "CnsBodyFile")]
pub struct CnsBody {
    /// The honest certificate the recipe starts from (default `cns`).
    pub card: CardKind,
    /// The edits of the honest card, in order (`[[plan.edits]]`, `op` = the edit).
    pub plan: CardPlan,
    /// Whether the holder presents a certificate at all (default true; false: the TLS
    /// handshake carries no client certificate).
    pub present: bool,
    /// The kind of service the case is about (default any).
    pub service: Service,
}

/// [`CnsBody`] as the case file spells it, before its checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CnsBodyFile {
    #[serde(default)]
    card: CardKind,
    #[serde(default)]
    plan: CardPlan,
    #[serde(default = "yes")]
    present: bool,
    #[serde(default)]
    service: Service,
}

fn yes() -> bool {
    true
}

impl TryFrom<CnsBodyFile> for CnsBody {
    type Error = String;
    fn try_from(f: CnsBodyFile) -> Result<CnsBody, String> {
        if !f.present && !f.plan.edits.is_empty() {
            return Err("present = false: a card that is not presented has no plan edits".into());
        }
        let nothing = CardEdit::Present {
            chain: Presented::Nothing,
        };
        if f.plan.edits.contains(&nothing) {
            return Err(
                "plan edit present with chain = \"nothing\": write present = false instead".into(),
            );
        }
        Ok(CnsBody {
            card: f.card,
            plan: f.plan,
            present: f.present,
            service: f.service,
        })
    }
}

impl Default for CnsBody {
    fn default() -> Self {
        CnsBody {
            card: CardKind::Cns,
            plan: CardPlan::default(),
            present: true,
            service: Service::Any,
        }
    }
}

impl CnsBody {
    /// The whole recipe: the honest certificate of [`CnsBody::card`], then the plan's edits.
    pub fn recipe(&self) -> CardPlan {
        let mut plan = match self.card {
            CardKind::Cns => CardPlan::honest(),
            CardKind::Cie => CardPlan::cie(),
        };
        plan.edits.extend(self.plan.edits.iter().cloned());
        plan
    }
}

impl crate::catalogue::Body for CnsBody {
    const FOLDER: &'static str = "cns";
    const RULE_PREFIX: &'static str = "cns.";
    const LEVEL_EXPECT: bool = false;
}

/// A CNS case.
pub type CnsCase = Case<CnsBody>;

/// Parses and checks one CNS case file.
pub fn parse_case(file: &str, text: &str) -> Result<CnsCase, LoadError> {
    crate::catalogue::parse(file, text)
}

/// The embedded CNS catalogue, sorted by id.
pub fn embedded() -> Result<Vec<CnsCase>, LoadError> {
    crate::catalogue::embedded_cases()
}

/// Keeps the cases whose id matches the glob.
pub fn select(cases: Vec<CnsCase>, pattern: Option<&str>) -> Result<Vec<CnsCase>, String> {
    crate::catalogue::select_by(cases, pattern, |c| &c.id)
}

/// The honest CNS login every CNS run starts and ends with.
pub fn sanity_case() -> CnsCase {
    CnsCase {
        id: "sanity".into(),
        title: "honest CNS card (sanity)".into(),
        family: "sanity".into(),
        refs: vec![],
        flags: vec![],
        scope: Scope::Any,
        user: "mario.rossi".into(),
        expect: Expect::Accept,
        body: CnsBody::default(),
    }
}

/// The card holder of fixture user `username` (its fiscal code, name and surname).
pub fn holder(users: &[User], username: &str) -> Option<CardHolder> {
    let u = users.iter().find(|u| u.username == username)?;
    let a = &u.attributes;
    Some(CardHolder {
        fiscal_code: a.get("fiscalNumber")?.strip_prefix("TINIT-")?.to_owned(),
        given_name: a.get("name")?.clone(),
        surname: a.get("familyName")?.clone(),
    })
}

// ---------------------------------------------------------------------------------------
// The TLS client.

/// What the client presents: a certificate chain (DER, leaf first) and its PKCS#8 key.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    /// The chain, leaf first.
    pub chain: Vec<Vec<u8>>,
    /// The leaf's private key, PKCS#8 DER.
    pub key_pkcs8: Vec<u8>,
}

impl From<&Card> for ClientIdentity {
    fn from(c: &Card) -> Self {
        ClientIdentity {
            chain: c.chain.clone(),
            key_pkcs8: c.key_pkcs8.clone(),
        }
    }
}

/// How the client checks the service's certificate.
#[derive(Debug, Clone)]
pub enum ServerTrust {
    /// Only a certificate under these roots (DER) for the URL's host (our own listener).
    Roots(Vec<Vec<u8>>),
    /// Any certificate (an external test service; the subject is recorded in the trace).
    Any,
}

/// The service's answer over TLS.
#[derive(Debug, Clone)]
pub struct TlsAnswer {
    /// The exchange as recorded (with the handshake in [`Exchange::tls`]).
    pub exchange: Exchange,
    /// The HTTP answer: status, headers (lower-case names), body; `None` when the handshake
    /// or the connection failed (see the handshake's `failure`).
    pub http: Option<HttpAnswer>,
    /// The service kept silent past the timeout (in the handshake or after the request): no
    /// verdict, unlike a TLS alert.
    pub timed_out: bool,
}

/// An HTTP/1.1 answer.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Body, decoded as UTF-8 lossily.
    pub body: String,
}

impl HttpAnswer {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why the harness could not even try (a URL it cannot use, a key rustls and OpenSSL refuse,
/// a TCP connection refused).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not `https://host[:port]/path`.
    #[error("{url}: {why}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// The client configuration was refused.
    #[error("TLS client setup: {0}")]
    Setup(String),
    /// No TCP connection.
    #[error("cannot connect to {addr}: {why}")]
    Connect {
        /// host:port.
        addr: String,
        /// The error.
        why: String,
    },
}

const RSA_SCHEMES: [SignatureScheme; 6] = [
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA512,
];

/// An RSA key below ring's 2048-bit floor (the RSA-1024 cards of CNS v1.0), signing the
/// handshake through OpenSSL.
#[derive(Debug)]
struct LegacyRsaKey(openssl::pkey::PKey<openssl::pkey::Private>);

#[derive(Debug)]
struct LegacyRsaSigner {
    key: openssl::pkey::PKey<openssl::pkey::Private>,
    scheme: SignatureScheme,
}

impl SigningKey for LegacyRsaKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = RSA_SCHEMES.into_iter().find(|s| offered.contains(s))?;
        Some(Box::new(LegacyRsaSigner {
            key: self.0.clone(),
            scheme,
        }))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::RSA
    }
}

impl Signer for LegacyRsaSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        use openssl::hash::MessageDigest;
        use openssl::rsa::Padding;
        use openssl::sign::RsaPssSaltlen;
        let (md, pss) = match self.scheme {
            SignatureScheme::RSA_PSS_SHA256 => (MessageDigest::sha256(), true),
            SignatureScheme::RSA_PSS_SHA384 => (MessageDigest::sha384(), true),
            SignatureScheme::RSA_PSS_SHA512 => (MessageDigest::sha512(), true),
            SignatureScheme::RSA_PKCS1_SHA384 => (MessageDigest::sha384(), false),
            SignatureScheme::RSA_PKCS1_SHA512 => (MessageDigest::sha512(), false),
            _ => (MessageDigest::sha256(), false),
        };
        let fail = |e: openssl::error::ErrorStack| rustls::Error::General(e.to_string());
        let mut s = openssl::sign::Signer::new(md, &self.key).map_err(fail)?;
        if pss {
            s.set_rsa_padding(Padding::PKCS1_PSS).map_err(fail)?;
            s.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
                .map_err(fail)?;
            s.set_rsa_mgf1_md(md).map_err(fail)?;
        }
        s.sign_oneshot_to_vec(message).map_err(fail)
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// Records whether the handshake used the key (a scheme was chosen: the card was presented).
#[derive(Debug)]
struct Recorded {
    inner: Arc<dyn SigningKey>,
    used: Arc<AtomicBool>,
}

impl SigningKey for Recorded {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let s = self.inner.choose_scheme(offered)?;
        self.used.store(true, Ordering::SeqCst);
        Some(s)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.inner.algorithm()
    }
}

/// Presents the card (if any) when the server asks, and records that it asked.
#[derive(Debug)]
struct CardResolver {
    key: Option<Arc<CertifiedKey>>,
    asked: Arc<AtomicBool>,
}

impl ResolvesClientCert for CardResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.asked.store(true, Ordering::SeqCst);
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}

/// Accepts any server certificate (still checking the handshake signatures).
#[derive(Debug)]
struct AnyServer(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// One line per presented certificate: subject, issuer, serial (or what the bytes are).
pub fn describe_certificate(der: &[u8]) -> String {
    fn name(n: &openssl::x509::X509NameRef) -> String {
        n.entries()
            .map(|e| {
                let k = e.object().nid().short_name().unwrap_or("?");
                let v = String::from_utf8_lossy(e.data().as_slice());
                format!("{k}={v}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
    match openssl::x509::X509::from_der(der) {
        Ok(c) => format!(
            "{} (issuer {}; serial {}; {})",
            name(c.subject_name()),
            name(c.issuer_name()),
            c.serial_number()
                .to_bn()
                .and_then(|b| b.to_hex_str().map(|h| h.to_string()))
                .unwrap_or_else(|_| "?".into()),
            c.public_key()
                .map(|k| match k.id() {
                    openssl::pkey::Id::RSA => format!("RSA-{}", k.bits()),
                    openssl::pkey::Id::EC => format!("EC-{}", k.bits()),
                    _ => format!("{}-bit key", k.bits()),
                })
                .unwrap_or_else(|_| "unreadable key".into())
        ),
        Err(_) => format!("not a certificate ({} bytes)", der.len()),
    }
}

/// The handshake in one line, for the reports.
pub fn handshake_text(t: &TlsHandshake) -> String {
    let mut s = format!(
        "TLS{}: {}; {}",
        t.protocol
            .as_deref()
            .map(|p| format!(" {p}"))
            .unwrap_or_default(),
        if t.requested {
            "client certificate requested"
        } else {
            "no client certificate requested"
        },
        if t.presented.is_empty() {
            "none presented".to_string()
        } else {
            format!("presented {}", t.presented.join(" | "))
        }
    );
    if let Some(f) = &t.failure {
        s.push_str(&format!("; failed: {f}"));
    }
    s
}

fn client_config(
    identity: Option<&ClientIdentity>,
    trust: &ServerTrust,
    asked: Arc<AtomicBool>,
    used: Arc<AtomicBool>,
) -> Result<rustls::ClientConfig, ClientError> {
    let setup = |e: String| ClientError::Setup(e);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| setup(e.to_string()))?;
    let builder = match trust {
        ServerTrust::Roots(roots) => {
            let mut store = rustls::RootCertStore::empty();
            for r in roots {
                store
                    .add(CertificateDer::from(r.clone()))
                    .map_err(|e| setup(format!("server root: {e}")))?;
            }
            builder.with_root_certificates(store)
        }
        ServerTrust::Any => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(
                provider.signature_verification_algorithms,
            ))),
    };
    let key = match identity {
        None => None,
        Some(id) => {
            let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_pkcs8.clone()));
            let inner: Arc<dyn SigningKey> = match provider.key_provider.load_private_key(der) {
                Ok(k) => k,
                Err(_) => {
                    // ring refuses RSA below 2048 bits: the legacy card signs through OpenSSL.
                    let k = openssl::pkey::PKey::private_key_from_der(&id.key_pkcs8)
                        .map_err(|e| setup(format!("card key: {e}")))?;
                    Arc::new(LegacyRsaKey(k))
                }
            };
            let chain = id.chain.iter().cloned().map(CertificateDer::from).collect();
            Some(Arc::new(CertifiedKey::new(
                chain,
                Arc::new(Recorded { inner, used }),
            )))
        }
    };
    Ok(builder.with_client_cert_resolver(Arc::new(CardResolver { key, asked })))
}

fn tls_failure(e: &std::io::Error) -> String {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(t) => t.to_string(),
        None => e.to_string(),
    }
}

/// Largest answer read.
const MAX_ANSWER: usize = 2 * 1024 * 1024;

/// GET `url` over TLS, presenting `identity` when the server asks for a client certificate
/// (none: an empty Certificate message); the whole exchange within `timeout`. The trace
/// records the handshake and the answer; a TLS alert is an answer too (`http: None`).
pub async fn present(
    url: &Url,
    identity: Option<&ClientIdentity>,
    trust: &ServerTrust,
    timeout: Duration,
) -> Result<TlsAnswer, ClientError> {
    let bad = |why: &str| ClientError::Url {
        url: url.to_string(),
        why: why.into(),
    };
    if url.scheme() != "https" {
        return Err(bad("not an https:// URL"));
    }
    let host = url.host_str().ok_or_else(|| bad("no host"))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let host_for_name = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host_for_name.to_owned())
        .map_err(|_| bad("the host is not a DNS name or an IP address"))?;
    let asked = Arc::new(AtomicBool::new(false));
    let used = Arc::new(AtomicBool::new(false));
    let cfg = client_config(identity, trust, asked.clone(), used.clone())?;
    let addr = format!("{host}:{port}");
    let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr))
        .await
        .map_err(|_| ClientError::Connect {
            addr: addr.clone(),
            why: "timed out".into(),
        })?
        .map_err(|e| ClientError::Connect {
            addr: addr.clone(),
            why: e.to_string(),
        })?;
    let mut path = url.path().to_owned();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let host_header = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let mut exchange = Exchange {
        method: "GET".into(),
        url: url.to_string(),
        request_form: vec![],
        status: 0,
        location: None,
        spid_rule: None,
        content_type: None,
        body_excerpt: String::new(),
        saml: vec![],
        tls: None,
    };
    let presented = |used: bool| -> Vec<String> {
        match (used, identity) {
            (true, Some(id)) => id.chain.iter().map(|c| describe_certificate(c)).collect(),
            _ => vec![],
        }
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    let handshake = tokio::time::timeout(left(), connector.connect(name, tcp)).await;
    let mut tls = match handshake {
        Err(_) => {
            exchange.tls = Some(TlsHandshake {
                requested: asked.load(Ordering::SeqCst),
                presented: presented(used.load(Ordering::SeqCst)),
                failure: Some(format!("no handshake within {} s", timeout.as_secs())),
                ..Default::default()
            });
            return Ok(TlsAnswer {
                exchange,
                http: None,
                timed_out: true,
            });
        }
        Ok(Err(e)) => {
            exchange.tls = Some(TlsHandshake {
                requested: asked.load(Ordering::SeqCst),
                presented: presented(used.load(Ordering::SeqCst)),
                failure: Some(tls_failure(&e)),
                ..Default::default()
            });
            return Ok(TlsAnswer {
                exchange,
                http: None,
                timed_out: false,
            });
        }
        Ok(Ok(s)) => s,
    };
    let (_, conn) = tls.get_ref();
    let mut hs = TlsHandshake {
        protocol: conn.protocol_version().map(|v| format!("{v:?}")),
        server: conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| describe_certificate(c)),
        ..Default::default()
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {}\r\nAccept: text/html,*/*\r\nConnection: close\r\n\r\n",
        crate::agent::DEFAULT_USER_AGENT
    );
    let mut raw = Vec::new();
    let mut failure = None;
    let mut timed_out = false;
    match tokio::time::timeout(left(), tls.write_all(request.as_bytes())).await {
        Ok(Ok(())) => {
            let mut buf = [0u8; 16 * 1024];
            loop {
                match tokio::time::timeout(left(), tls.read(&mut buf)).await {
                    Err(_) => {
                        failure =
                            Some(format!("no complete answer within {} s", timeout.as_secs()));
                        timed_out = true;
                        break;
                    }
                    Ok(Ok(0)) => break,
                    Ok(Ok(n)) => {
                        raw.extend_from_slice(&buf[..n]);
                        if raw.len() > MAX_ANSWER {
                            failure = Some(format!("answer larger than {MAX_ANSWER} bytes"));
                            break;
                        }
                        // A server that keeps the connection open despite `Connection:
                        // close` is not waited for once its framed answer is complete.
                        if parse_http(&raw).is_some_and(|(_, framed)| framed) {
                            break;
                        }
                    }
                    Ok(Err(e)) => {
                        // A peer that closes without close_notify after a whole answer is
                        // common; anything else is the connection failing.
                        if parse_http(&raw).is_none() {
                            failure = Some(tls_failure(&e));
                        }
                        break;
                    }
                }
            }
        }
        Ok(Err(e)) => failure = Some(tls_failure(&e)),
        Err(_) => {
            failure = Some("the request could not be written in time".into());
            timed_out = true;
        }
    }
    hs.requested = asked.load(Ordering::SeqCst);
    hs.presented = presented(used.load(Ordering::SeqCst));
    let http = parse_http(&raw).map(|(h, _)| h);
    if http.is_none() {
        hs.failure = Some(failure.unwrap_or_else(|| {
            if raw.is_empty() {
                "the connection closed without an answer".into()
            } else {
                "the answer is not HTTP/1.1".into()
            }
        }));
    }
    if let Some(h) = &http {
        exchange.status = h.status;
        exchange.location = h.header("location").map(str::to_owned);
        exchange.spid_rule = h.header(crate::agent::SPID_RULE_HEADER).map(str::to_owned);
        exchange.content_type = h.header("content-type").map(str::to_owned);
        exchange.body_excerpt = excerpt(&h.body, crate::agent::BODY_EXCERPT_LEN).to_owned();
    }
    let timed_out = timed_out && http.is_none();
    exchange.tls = Some(hs);
    Ok(TlsAnswer {
        exchange,
        http,
        timed_out,
    })
}

fn excerpt(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Parses a complete HTTP/1.1 answer (Content-Length, chunked, or up to the close) and
/// whether it was framed (its end known without the close); `None` when the head is
/// incomplete or not HTTP, or the body is shorter than announced.
fn parse_http(raw: &[u8]) -> Option<(HttpAnswer, bool)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status: u16 = parts.next()?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect();
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let chunked =
        get("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    let length = get("content-length").and_then(|n| n.parse::<usize>().ok());
    let (body, framed) = match (chunked, length) {
        (true, _) => (dechunk(rest)?, true),
        (false, Some(n)) => (rest.get(..n)?.to_vec(), true),
        (false, None) => (rest.to_vec(), false),
    };
    let answer = HttpAnswer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    Some((answer, framed))
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

// ---------------------------------------------------------------------------------------
// Targets and the run of one case.

/// Where CNS cases are aimed.
#[derive(Clone, Copy)]
pub struct CnsTarget<'a> {
    /// Our card issuer (mints the cards, answers for their CRL and OCSP responder).
    pub issuer: &'a CardIssuer,
    /// The service's URL.
    pub url: &'a Url,
    /// Our own second listener, which accepts CIE 3.0 certificates (internal only): the
    /// `cie-accepted` cases go there.
    pub cie_url: Option<&'a Url>,
    /// How the service's certificate is checked.
    pub trust: &'a ServerTrust,
    /// Text a 200 page must contain to count as a login.
    pub accept_marker: Option<&'a str>,
    /// Our own SP: it names the deciding rule in `X-SPID-Rule` and the accepted fiscal code
    /// in `X-CNS-Fiscal-Code`.
    pub internal: bool,
    /// The whole exchange of one case.
    pub timeout: Duration,
}

/// A result not judged yet (verdict `error`), its time taken so far.
fn result(case: &CnsCase, started: Instant) -> CaseResult {
    CaseResult {
        id: case.id.clone(),
        family: case.family.clone(),
        title: case.title.clone(),
        expected: case.expect.clone(),
        verdict: Verdict::Error,
        status: 0,
        rule: None,
        outcome: Outcome::Error,
        note: None,
        finding: None,
        why: None,
        millis: started.elapsed().as_millis(),
        trace: vec![],
        honest: None,
        side: String::new(),
    }
}

/// The verdict of an HTTP answer by the contract: 200 accepted (with the marker, if any);
/// 4xx and 500 refused; anything else an error.
fn verdict_of(h: &HttpAnswer, marker: Option<&str>) -> Verdict {
    match h.status {
        200 if marker.is_some_and(|m| !h.body.contains(m)) => Verdict::Reject,
        200 => Verdict::Accept,
        400..=500 => Verdict::Reject,
        _ => Verdict::Error,
    }
}

/// Runs one CNS case: mints the case's card at our issuer, presents it to the service over
/// TLS, judges the answer; the trace holds the handshake and the answer.
pub async fn run_case(t: &CnsTarget<'_>, case: &CnsCase, users: &[User]) -> CaseResult {
    let started = Instant::now();
    let fail = |note: String, trace: Vec<Exchange>| {
        let mut r = result(case, started);
        r.note = Some(note);
        r.trace = trace;
        r
    };
    let Some(holder) = holder(users, &case.user) else {
        return fail(
            format!(
                "user {} has no fiscal code in fixtures/users.toml",
                case.user
            ),
            vec![],
        );
    };
    let card = if case.present {
        match t.issuer.issue(&holder, &case.recipe()) {
            Ok(c) => Some(c),
            Err(e) => return fail(format!("the card issuer: {e}"), vec![]),
        }
    } else {
        None
    };
    let url = match (case.service, t.cie_url) {
        (Service::CieAccepted, Some(u)) => u,
        _ => t.url,
    };
    let identity = card.as_ref().map(ClientIdentity::from);
    let answer = match present(url, identity.as_ref(), t.trust, t.timeout).await {
        Ok(a) => a,
        Err(e) => return fail(e.to_string(), vec![]),
    };
    let trace = vec![answer.exchange.clone()];
    let hs = answer.exchange.tls.clone().unwrap_or_default();
    // The flow crossed both sides: the service asked for a certificate and got the card.
    if card.is_some() && hs.protocol.is_some() && !hs.requested {
        return fail(
            format!(
                "{url} never asked for a client certificate (no CertificateRequest in the handshake): the card was not presented"
            ),
            trace,
        );
    }
    if card.is_some() && hs.requested && hs.presented.is_empty() {
        return fail(
            "the service asked for a client certificate but the card's key matched none of the signature schemes it accepts".into(),
            trace,
        );
    }
    let mut r = result(case, started);
    let fetched = card
        .as_ref()
        .map(|c| issuer_exchanges(t.issuer, c))
        .unwrap_or_default();
    r.trace = trace;
    r.trace.extend(fetched.iter().cloned());
    let (verdict, rule) = match &answer.http {
        Some(h) => {
            r.status = h.status;
            if h.status == 500 {
                r.finding = Some("refused by crashing (HTTP 500)".into());
            }
            (
                verdict_of(h, t.accept_marker),
                h.header(crate::agent::SPID_RULE_HEADER).map(str::to_owned),
            )
        }
        None if answer.timed_out => {
            return fail(
                format!("{url} gave no verdict: {}", hs.failure.unwrap_or_default()),
                r.trace,
            )
        }
        None if hs.protocol.is_some() || hs.requested => {
            let f = hs.failure.clone().unwrap_or_default();
            r.finding = Some(format!("refused in the TLS handshake: {f}"));
            (Verdict::Reject, None)
        }
        None => {
            return fail(
                format!(
                    "{url}: no TLS handshake: {}",
                    hs.failure.unwrap_or_default()
                ),
                r.trace,
            )
        }
    };
    r.verdict = verdict;
    r.rule = rule;
    let (mut pass, mut note) = judge(&case.expect, verdict, r.rule.as_deref(), t.internal);
    // An accepted card must be accepted as its holder.
    if let (true, Verdict::Accept, Some(h)) = (pass, verdict, &answer.http) {
        let got = h.header(spid_sp::cns::listener::FISCAL_CODE_HEADER);
        match got {
            Some(cf) if cf != holder.fiscal_code => {
                pass = false;
                note = Some(format!(
                    "accepted as {cf}, but the card holds {}",
                    holder.fiscal_code
                ));
            }
            None if t.internal => {
                pass = false;
                note = Some("accepted without naming the fiscal code".into());
            }
            _ => {}
        }
        // Our SP hard-fails: it cannot accept a card without asking our issuer about it.
        if pass && t.internal && fetched.is_empty() {
            pass = false;
            note = Some(
                "accepted without fetching the card's CRL or asking its OCSP responder at our issuer"
                    .into(),
            );
        }
    }
    r.outcome = Outcome::of(pass, verdict);
    r.note = note;
    r.millis = started.elapsed().as_millis();
    r
}

/// The revocation fetches about `card` our issuer answered, as exchanges of the trace (what
/// the service asked our side while judging the card).
fn issuer_exchanges(issuer: &CardIssuer, card: &Card) -> Vec<Exchange> {
    issuer
        .fetches_for(card)
        .into_iter()
        .map(|f| {
            let (method, path) = f.request.split_once(' ').unwrap_or(("GET", &f.request));
            Exchange {
                method: method.to_owned(),
                url: format!("{}{path}", issuer.base_url()),
                request_form: vec![],
                status: f.status,
                location: None,
                spid_rule: None,
                content_type: None,
                body_excerpt: format!(
                    "asked by the service, answered by our card issuer ({}{})",
                    match f.source {
                        spid_idp::cns::FetchSource::Crl => "CRL",
                        spid_idp::cns::FetchSource::Ocsp => "OCSP",
                    },
                    if f.status == 0 {
                        ", held unanswered"
                    } else {
                        ""
                    }
                ),
                saml: vec![],
                tls: None,
            }
        })
        .collect()
}

/// What an unmet flagged case means (hardening), for a warning instead of a failure at an
/// external service.
pub fn flag_warning(case: &CnsCase) -> Option<String> {
    let notes: Vec<String> = case
        .flag_notes()
        .into_iter()
        .map(|(f, why)| format!("{f}: {why}"))
        .collect();
    (!notes.is_empty()).then(|| notes.join("; "))
}

// ---------------------------------------------------------------------------------------
// Our own target.

/// Our own CNS target on loopback: the card issuer (CRL and OCSP responder) and our SP's CNS
/// login on two HTTPS listeners — CNS-only (the default configuration) and one that also
/// accepts CIE 3.0 authentication certificates — both trusting the TEST root.
pub struct CnsPair {
    /// The card issuer.
    pub issuer: CardIssuer,
    /// The CNS-only listener.
    pub url: Url,
    /// The listener that also accepts CIE 3.0 certificates.
    pub cie_url: Url,
    /// Trust for our listeners' certificates (the TEST root).
    pub trust: ServerTrust,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for CnsPair {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// How long our SP's revocation fetches may take in our own runs (the hanging OCSP responder
/// costs this much).
pub const INTERNAL_FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// The whole exchange of one case: past it the service gave no verdict (our SP's revocation
/// fetches give up after 5 s; our issuer's silent OCSP responder holds a request 30 s, until
/// its serve loop's silence bound closes it).
pub const CASE_TIMEOUT: Duration = Duration::from_secs(20);

impl CnsPair {
    /// Starts the issuer and both listeners with the default configuration.
    pub async fn start() -> anyhow::Result<CnsPair> {
        CnsPair::start_with(|_| {}).await
    }

    /// Starts them, `configure` applied to both listeners' configuration last (a test's way
    /// to make our SP skip a check).
    pub async fn start_with(configure: impl Fn(&mut CnsConfig)) -> anyhow::Result<CnsPair> {
        let issuer = CardIssuer::start()
            .await
            .map_err(|e| anyhow::anyhow!("the card issuer on 127.0.0.1: {e}"))?;
        let h = issuer.hierarchy();
        let (chain, key) = h.server_credential("127.0.0.1")?;
        let mut tasks = Vec::new();
        let mut urls = Vec::new();
        for cie in [false, true] {
            let mut cfg =
                CnsConfig::new(h.trust_anchors(), Arc::new(spid_core::clock::SystemClock));
            cfg.fetch_timeout = INTERNAL_FETCH_TIMEOUT;
            cfg.accept_cie = cie;
            configure(&mut cfg);
            let login = CnsLogin::new(cfg)?;
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            urls.push(Url::parse(&format!(
                "https://{}/cns/login",
                l.local_addr()?
            ))?);
            let (chain, key) = (chain.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                if let Err(e) = login
                    .serve_tls(l, chain, key, spid_net::ServeLimits::default())
                    .await
                {
                    tracing::warn!("CNS listener stopped: {e}");
                }
            }));
        }
        let (url, cie_url) = (urls.remove(0), urls.remove(0));
        Ok(CnsPair {
            trust: ServerTrust::Roots(h.trust_anchors()),
            issuer,
            url,
            cie_url,
            tasks,
        })
    }

    /// The pair as a target.
    pub fn target(&self) -> CnsTarget<'_> {
        CnsTarget {
            issuer: &self.issuer,
            url: &self.url,
            cie_url: Some(&self.cie_url),
            trust: &self.trust,
            accept_marker: None,
            internal: true,
            timeout: CASE_TIMEOUT,
        }
    }
}

// ---------------------------------------------------------------------------------------
// What a service must trust (`check-cns --ca-out`).

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(&String::from_utf8_lossy(chunk));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

/// Writes what a service must be configured with to `dir`: `root.pem` (the TEST root, the one
/// trust anchor), `issuing-cas.pem` (the three issuing CAs, for services configured like the
/// AgID trusted list), `ca-bundle.pem` (both), the root's and each issuing CA's current CRL
/// (`crl/<ca>.crl.pem` and `.der`; the issuing CAs' also live at the issuer's `/crl/<ca>.crl`)
/// and `crl/all.crl.pem` (the four, for a service that checks the whole chain); the files
/// written, in order.
pub fn write_ca_out(
    dir: &std::path::Path,
    issuer: &CardIssuer,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let io = |p: &std::path::Path, e: std::io::Error| {
        anyhow::anyhow!("cannot write {} (--ca-out): {e}", p.display())
    };
    let crl_dir = dir.join("crl");
    std::fs::create_dir_all(&crl_dir).map_err(|e| io(&crl_dir, e))?;
    let h = issuer.hierarchy();
    let root = pem("CERTIFICATE", &h.root_der);
    let issuing: String = h
        .issuing_cas()
        .iter()
        .map(|d| pem("CERTIFICATE", d))
        .collect();
    let mut files: Vec<(std::path::PathBuf, Vec<u8>)> = vec![
        (dir.join("root.pem"), root.clone().into_bytes()),
        (dir.join("issuing-cas.pem"), issuing.clone().into_bytes()),
        (
            dir.join("ca-bundle.pem"),
            format!("{root}{issuing}").into_bytes(),
        ),
    ];
    let mut crls = vec![("root", issuer.root_crl()?)];
    for ca in [CaId::Infocert, CaId::Aruba, CaId::Regione] {
        if let spid_idp::cns::status::CrlAnswer::Der(d) = issuer.crl(ca, None)? {
            crls.push((ca.slug(), d));
        }
    }
    let mut all = String::new();
    for (name, der) in crls {
        let p = pem("X509 CRL", &der);
        all.push_str(&p);
        files.push((crl_dir.join(format!("{name}.crl.pem")), p.into_bytes()));
        files.push((crl_dir.join(format!("{name}.crl.der")), der));
    }
    files.push((crl_dir.join("all.crl.pem"), all.into_bytes()));
    for (p, data) in &files {
        std::fs::write(p, data).map_err(|e| io(p, e))?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{expected_rules, rules_no_case_expects};

    /// `cns.*` rules no case can reach, with the reason (each still has a unit test in
    /// spid-sp's cns module). Empty: every card rule is reached over TLS.
    const NOT_BY_A_CASE: [(&str, &str); 0] = [];

    #[test]
    fn every_cns_rule_is_expected_by_a_case() {
        let cases = embedded().expect("cns catalogue");
        let listed: Vec<&str> = NOT_BY_A_CASE.iter().map(|(r, _)| *r).collect();
        let missing = rules_no_case_expects(&cases, "cns.", &listed);
        assert!(missing.is_empty(), "cns rules no case expects: {missing:?}");
        let expected = expected_rules(&cases);
        for (r, why) in NOT_BY_A_CASE {
            assert!(!why.is_empty());
            assert!(
                !expected.contains(r),
                "{r} is expected by a case now: unlist it"
            );
        }
    }

    #[test]
    fn catalogue_covers_the_issue() {
        let cases = embedded().expect("cns catalogue");
        assert!(cases.len() >= 25, "{}", cases.len());
        let accept = cases.iter().filter(|c| c.expect == Expect::Accept).count();
        assert!(accept >= 3, "honest CNS, honest CIE, '/' in the hash");
        for c in &cases {
            if let Expect::Reject { rules, .. } = &c.expect {
                assert!(rules.iter().all(|r| r.starts_with("cns.")), "{}", c.id);
            }
        }
    }

    #[test]
    fn body_checks_refuse_contradictions() {
        let top = "id = \"x\"\ntitle = \"t\"\nfamily = \"presence\"\n";
        let expect = "[expect]\nverdict = \"reject\"\nrules = [\"cns.certificate.missing\"]\n";
        let base = format!("{top}{expect}");
        assert!(parse_case("x.toml", &format!("{top}present = false\n{expect}")).is_ok());
        for (bad, says) in [
            (
                "present = false\n[[plan.edits]]\nop = \"self-signed\"\n",
                "no plan edits",
            ),
            (
                "[[plan.edits]]\nop = \"present\"\nchain = \"nothing\"\n",
                "present = false",
            ),
            ("[[plan.edits]]\nop = \"explode\"\n", "explode"),
            ("[plan]\nedits = []\ncolour = 1\n", "colour"),
            ("service = \"somewhere\"\n", "somewhere"),
        ] {
            let e = parse_case("x.toml", &format!("{top}{bad}{expect}")).unwrap_err();
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
        let wrong_side = base.replace("cns.certificate.missing", "assertion.level.insufficient");
        assert!(parse_case("x.toml", &wrong_side).is_err());
    }

    #[test]
    fn http_answers_parse_or_are_refused() {
        let (a, framed) = parse_http(
            b"HTTP/1.1 403 Forbidden\r\nX-SPID-Rule: cns.x\r\nContent-Length: 2\r\n\r\nno",
        )
        .expect("answer");
        assert!(framed);
        assert_eq!(
            (a.status, a.header("x-spid-rule"), a.body.as_str()),
            (403, Some("cns.x"), "no")
        );
        let (c, framed) = parse_http(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            .expect("chunked");
        assert_eq!(c.body, "abcde");
        assert!(framed);
        let (u, framed) = parse_http(b"HTTP/1.1 200 OK\r\n\r\nuntil the close").expect("unframed");
        assert_eq!((u.body.as_str(), framed), ("until the close", false));
        for bad in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\n",
            b"SSH-2.0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
        ] {
            assert!(parse_http(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn certificates_are_described_and_junk_is_named() {
        assert!(describe_certificate(b"junk").starts_with("not a certificate"));
        let h = spid_idp::cns::Hierarchy::new().expect("hierarchy");
        let d = describe_certificate(&h.root_der);
        assert!(d.contains("TEST Root CA") && d.contains("serial"), "{d}");
    }
}
