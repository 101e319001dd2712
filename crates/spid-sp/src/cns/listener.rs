//! The CNS login over HTTPS: a rustls listener that asks every client for a certificate but
//! accepts any (or none), so the card rules, not a TLS alert, decide; 200 with the fiscal code
//! only on acceptance, otherwise 403 with a courtesy page and the rule in `X-SPID-Rule`.

use super::{CnsIdentity, CnsLogin, CnsSetupError, Refusal};
use crate::{OUTCOME_HEADER, RULE_HEADER};
use axum::extract::{Extension, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use maud::{html, DOCTYPE};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use spid_net::{PeerCertificates, ServeLimits};
use std::sync::Arc;
use x509_parser::prelude::FromDer;

/// Header carrying the accepted fiscal code.
pub const FISCAL_CODE_HEADER: &str = "x-cns-fiscal-code";

/// Asks for a client certificate, accepts whatever is presented (the handshake still proves
/// the client holds the key: its CertificateVerify signature is checked), and leaves the
/// judgement to [`CnsLogin::check`].
#[derive(Debug)]
struct AnyClientCert {
    hints: Vec<DistinguishedName>,
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
            .or_else(|e| legacy_rsa(message, cert, dss).ok_or(e))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
            .or_else(|e| legacy_rsa(message, cert, dss).ok_or(e))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Verifies a handshake signature made with an RSA key below webpki's 2048-bit floor (the
/// RSA-1024 cards of CNS v1.0), through OpenSSL, so the card reaches `cns.key.too-small` and
/// its holder a courtesy page instead of a TLS alert. `None` for any other key or a bad
/// signature.
fn legacy_rsa(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Option<HandshakeSignatureValid> {
    use openssl::hash::MessageDigest;
    use openssl::rsa::Padding;
    use openssl::sign::{RsaPssSaltlen, Verifier};
    let key = openssl::x509::X509::from_der(cert)
        .ok()?
        .public_key()
        .ok()?;
    if key.rsa().is_err() || key.bits() >= 2048 {
        return None;
    }
    let (md, pss) = match dss.scheme {
        SignatureScheme::RSA_PKCS1_SHA256 => (MessageDigest::sha256(), false),
        SignatureScheme::RSA_PKCS1_SHA384 => (MessageDigest::sha384(), false),
        SignatureScheme::RSA_PKCS1_SHA512 => (MessageDigest::sha512(), false),
        SignatureScheme::RSA_PSS_SHA256 => (MessageDigest::sha256(), true),
        SignatureScheme::RSA_PSS_SHA384 => (MessageDigest::sha384(), true),
        SignatureScheme::RSA_PSS_SHA512 => (MessageDigest::sha512(), true),
        _ => return None,
    };
    let mut v = Verifier::new(md, &key).ok()?;
    if pss {
        v.set_rsa_padding(Padding::PKCS1_PSS).ok()?;
        v.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH).ok()?;
        v.set_rsa_mgf1_md(md).ok()?;
    }
    v.verify_oneshot(dss.signature(), message)
        .ok()?
        .then(HandshakeSignatureValid::assertion)
}

impl CnsLogin {
    /// The rustls server configuration: our server chain (DER, leaf first) and PKCS#8 key, a
    /// client-certificate request naming the configured CAs, any client certificate let through.
    pub fn tls_config(
        &self,
        server_chain: Vec<Vec<u8>>,
        server_key_pkcs8: Vec<u8>,
    ) -> Result<rustls::ServerConfig, CnsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let hints = self
            .config()
            .trusted_cas
            .iter()
            .filter_map(|d| x509_parser::certificate::X509Certificate::from_der(d).ok())
            .map(|(_, c)| DistinguishedName::from(c.subject().as_raw().to_vec()))
            .collect();
        let verifier = AnyClientCert {
            hints,
            algs: provider.signature_verification_algorithms,
        };
        let chain = server_chain.into_iter().map(CertificateDer::from).collect();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key_pkcs8));
        Ok(rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(chain, key)?)
    }

    /// The router: every GET path judges the presented card.
    pub fn router(&self) -> Router {
        Router::new()
            .fallback(login)
            .with_state(Arc::new(self.clone()))
    }

    /// Serves the login over TLS on `listener` with our server credential, within `limits`.
    pub async fn serve_tls(
        self,
        listener: tokio::net::TcpListener,
        server_chain: Vec<Vec<u8>>,
        server_key_pkcs8: Vec<u8>,
        limits: ServeLimits,
    ) -> Result<(), CnsServeError> {
        let tls = self.tls_config(server_chain, server_key_pkcs8)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        spid_net::serve_tls(listener, acceptor, self.router(), limits).await?;
        Ok(())
    }
}

/// Serving the login failed.
#[derive(Debug, thiserror::Error)]
pub enum CnsServeError {
    /// The setup was refused.
    #[error("{0}")]
    Setup(#[from] CnsSetupError),
    /// The listener failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

impl From<rustls::Error> for CnsServeError {
    fn from(e: rustls::Error) -> Self {
        CnsServeError::Setup(CnsSetupError::Tls(e))
    }
}

async fn login(
    State(login): State<Arc<CnsLogin>>,
    peer: Option<Extension<PeerCertificates>>,
) -> Response {
    let chain = peer.map(|Extension(p)| p.0).unwrap_or_default();
    match login.check(&chain).await {
        Ok(id) => accepted(&id),
        Err(r) => {
            tracing::info!(rule = r.rule.code(), detail = %r.detail, "CNS card refused");
            refused(&r)
        }
    }
}

fn page(title: &str, body: maud::Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="it" {
            head { meta charset="utf-8"; title { (title) } }
            body { h1 { (title) } (body) }
        }
    }
    .into_string()
}

fn accepted(id: &CnsIdentity) -> Response {
    let body = page(
        "Accesso con CNS effettuato",
        html! {
            p id="outcome" data-outcome="accepted" { "Codice fiscale: " strong id="fiscal-code" { (id.fiscal_code) } }
        },
    );
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(
        HeaderName::from_static(OUTCOME_HEADER),
        HeaderValue::from_static("accepted"),
    );
    if let Ok(v) = HeaderValue::from_str(&id.fiscal_code) {
        h.insert(HeaderName::from_static(FISCAL_CODE_HEADER), v);
    }
    r
}

fn refused(r: &Refusal) -> Response {
    let body = page(
        "Accesso con CNS negato",
        html! {
            p { "La carta presentata non consente l'accesso a questo servizio." }
            p id="outcome" data-outcome="rejected" { "Rule: " code id="rule" { (r.rule.code()) } " — " (r.rule.summary()) }
            p { "Detail: " (r.detail) }
            p { "Reference: " (r.rule.reference()) }
        },
    );
    let mut resp = (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static(OUTCOME_HEADER),
        HeaderValue::from_static("rejected"),
    );
    h.insert(
        HeaderName::from_static(RULE_HEADER),
        HeaderValue::from_static(r.rule.code()),
    );
    resp
}
