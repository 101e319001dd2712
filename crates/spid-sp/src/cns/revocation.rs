//! Revocation: the bounded fetch of a card's CRL and OCSP answer (a stage between the card
//! rules and the revocation rules), and the revocation rules themselves.

use super::rules::{Cert, Check, Ctx, Revocation};
use super::{CnsConfig, Refusal};
use der::asn1::{Null, OctetString};
use der::{Decode, Encode};
use openssl::hash::MessageDigest;
use openssl::x509::{X509Crl, X509};
use spid_core::Rule;
use std::time::Duration;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus, Request,
    SingleResponse, TbsRequest,
};
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

/// Clock skew allowed on CRL and OCSP times.
const SKEW_SECS: i64 = 300;

/// Why a revocation source gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The card names the source, but not with an http URL.
    #[error("no http URL among {0}")]
    NoHttpUrl(String),
    /// The request failed in transport.
    #[error("{0}")]
    Transport(String),
    /// The answer's HTTP status was not 200.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The answer was larger than allowed.
    #[error("answer over {0} bytes")]
    TooLarge(usize),
    /// No complete answer in time.
    #[error("no complete answer within {0} s")]
    Timeout(u64),
}

/// What the OCSP responder was asked, and what it answered.
#[derive(Debug, Clone)]
pub struct OcspEvidence {
    /// The CertId sent (`None`: none could be built for this card).
    pub asked: Option<CertId>,
    /// The DER OCSPResponse, or why there is none.
    pub answer: Result<Vec<u8>, FetchError>,
}

/// What the card's revocation sources answered (`None`: the card names no such source).
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// The DER CRL from the card's distribution point.
    pub crl: Option<Result<Vec<u8>, FetchError>>,
    /// The OCSP exchange.
    pub ocsp: Option<OcspEvidence>,
}

fn uri_of(g: &GeneralName<'_>) -> Option<String> {
    match g {
        GeneralName::URI(u) => Some((*u).to_owned()),
        _ => None,
    }
}

fn pick_http(uris: Vec<String>) -> Result<String, FetchError> {
    uris.iter()
        .find(|u| u.starts_with("http://") || u.starts_with("https://"))
        .cloned()
        .ok_or_else(|| FetchError::NoHttpUrl(uris.join(", ")))
}

/// The card's CRL distribution point URL.
pub(crate) fn crl_url(leaf: &Cert<'_>) -> Option<Result<String, FetchError>> {
    let mut found = false;
    let mut uris = Vec::new();
    for e in leaf.x509.extensions() {
        if let ParsedExtension::CRLDistributionPoints(dps) = e.parsed_extension() {
            found = true;
            for p in &dps.points {
                if let Some(DistributionPointName::FullName(names)) = &p.distribution_point {
                    uris.extend(names.iter().filter_map(uri_of));
                }
            }
        }
    }
    found.then(|| pick_http(uris))
}

/// The card's OCSP responder URL (authorityInfoAccess, id-ad-ocsp).
pub(crate) fn ocsp_url(leaf: &Cert<'_>) -> Option<Result<String, FetchError>> {
    let mut found = false;
    let mut uris = Vec::new();
    for e in leaf.x509.extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = e.parsed_extension() {
            for d in &aia.accessdescs {
                if d.access_method.to_id_string() == "1.3.6.1.5.5.7.48.1" {
                    found = true;
                    uris.extend(uri_of(&d.access_location));
                }
            }
        }
    }
    found.then(|| pick_http(uris))
}

fn sha1_id() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: der::oid::db::rfc5912::ID_SHA_1,
        parameters: Some(der::Any::from(Null)),
    }
}

/// The CertId of `leaf` issued by `issuer` (SHA-1 hashes, what responders expect).
pub(crate) fn cert_id(leaf: &Cert<'_>, issuer: &Cert<'_>) -> Result<CertId, der::Error> {
    let name = openssl::sha::sha1(issuer.x509.subject().as_raw());
    let key = openssl::sha::sha1(&issuer.x509.public_key().subject_public_key.data);
    Ok(CertId {
        hash_algorithm: sha1_id(),
        issuer_name_hash: OctetString::new(name.to_vec())?,
        issuer_key_hash: OctetString::new(key.to_vec())?,
        serial_number: x509_cert::serial_number::SerialNumber::new(leaf.x509.raw_serial())?,
    })
}

/// The DER OCSPRequest for `id` (unsigned, no nonce: our answers are judged by their times).
pub(crate) fn ocsp_request(id: &CertId) -> Result<Vec<u8>, der::Error> {
    OcspRequest {
        tbs_request: TbsRequest {
            version: x509_ocsp::Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: id.clone(),
                single_request_extensions: None,
            }],
            request_extensions: None,
        },
        optional_signature: None,
    }
    .to_der()
}

async fn fetch(
    req: reqwest::RequestBuilder,
    limit: usize,
    within: Duration,
) -> Result<Vec<u8>, FetchError> {
    let exchange = async {
        let mut resp = req
            .send()
            .await
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status(resp.status().as_u16()));
        }
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(FetchError::TooLarge(limit));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| FetchError::Transport(e.to_string()))?
        {
            if body.len() + chunk.len() > limit {
                return Err(FetchError::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(within, exchange)
        .await
        .unwrap_or(Err(FetchError::Timeout(within.as_secs())))
}

/// Fetches the card's CRL and asks its OCSP responder, both at once and each within bounds.
pub(crate) async fn gather(
    http: &reqwest::Client,
    leaf: &Cert<'_>,
    issuer: &Cert<'_>,
    cfg: &CnsConfig,
) -> Evidence {
    let crl = async {
        match crl_url(leaf)? {
            Ok(url) => Some(fetch(http.get(url), cfg.max_crl_bytes, cfg.fetch_timeout).await),
            Err(e) => Some(Err(e)),
        }
    };
    let ocsp = async {
        let url = ocsp_url(leaf)?;
        let asked = cert_id(leaf, issuer).ok();
        let body = asked.as_ref().map(ocsp_request);
        let answer = match (url, body) {
            (Err(e), _) => Err(e),
            (_, None | Some(Err(_))) => Err(FetchError::Transport(
                "no OCSP request can be built for this card".into(),
            )),
            (Ok(url), Some(Ok(body))) => {
                let req = http
                    .post(url)
                    .header("content-type", "application/ocsp-request")
                    .body(body);
                fetch(req, cfg.max_ocsp_bytes, cfg.fetch_timeout).await
            }
        };
        Some(OcspEvidence { asked, answer })
    };
    let (crl, ocsp) = tokio::join!(crl, ocsp);
    Evidence { crl, ocsp }
}

// ---------------------------------------------------------------------------------------
// The rules.

pub(crate) fn no_source(r: &Revocation<'_, '_>, _: &Ctx<'_>) -> Check {
    if r.evidence.crl.is_none() && r.evidence.ocsp.is_none() {
        return Err(Refusal::new(
            Rule::CnsRevocationNoSource,
            "the card names neither a CRL distribution point nor an OCSP responder",
        ));
    }
    Ok(())
}

fn crl_unavailable(d: impl Into<String>) -> Refusal {
    Refusal::new(Rule::CnsCrlUnavailable, d)
}

/// The CRL, parsed, from the card's issuer and signed by it.
fn verified_crl<'e>(
    der: &'e Result<Vec<u8>, FetchError>,
    issuer: &Cert<'_>,
) -> Result<CertificateRevocationList<'e>, Refusal> {
    let der = der
        .as_ref()
        .map_err(|e| crl_unavailable(format!("CRL not fetched: {e}")))?;
    let crl = match CertificateRevocationList::from_der(der) {
        Ok(([], crl)) => crl,
        _ => return Err(crl_unavailable("the CRL is not a DER CRL")),
    };
    if crl.issuer().as_raw() != issuer.x509.subject().as_raw() {
        return Err(crl_unavailable(format!(
            "the CRL is issued by {}, not by the card's CA",
            crl.issuer()
        )));
    }
    let verified = X509Crl::from_der(der)
        .and_then(|c| {
            X509::from_der(issuer.der)
                .and_then(|i| i.public_key())
                .and_then(|k| c.verify(&k))
        })
        .unwrap_or(false);
    if !verified {
        return Err(crl_unavailable(
            "the CRL's signature does not verify with the card's CA key",
        ));
    }
    Ok(crl)
}

pub(crate) fn crl_available(r: &Revocation<'_, '_>, _: &Ctx<'_>) -> Check {
    match &r.evidence.crl {
        Some(der) => verified_crl(der, r.issuer).map(|_| ()),
        None => Ok(()),
    }
}

pub(crate) fn crl_fresh(r: &Revocation<'_, '_>, ctx: &Ctx<'_>) -> Check {
    let Some(der) = &r.evidence.crl else {
        return Ok(());
    };
    let crl = verified_crl(der, r.issuer)?;
    let now = ctx.now.timestamp();
    if crl.last_update().timestamp() > now + SKEW_SECS {
        return Err(Refusal::new(
            Rule::CnsCrlStale,
            format!(
                "the CRL's thisUpdate {} is in the future",
                crl.last_update()
            ),
        ));
    }
    match crl.next_update() {
        Some(n) if n.timestamp() >= now => Ok(()),
        Some(n) => Err(Refusal::new(
            Rule::CnsCrlStale,
            format!("the CRL's nextUpdate {n} has passed"),
        )),
        None => Err(Refusal::new(Rule::CnsCrlStale, "the CRL has no nextUpdate")),
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&x| x == 0).count();
    &b[n.min(b.len().saturating_sub(1))..]
}

pub(crate) fn crl_not_revoked(r: &Revocation<'_, '_>, _: &Ctx<'_>) -> Check {
    let Some(der) = &r.evidence.crl else {
        return Ok(());
    };
    let crl = verified_crl(der, r.issuer)?;
    let serial = strip_zeros(r.card.leaf.x509.raw_serial());
    let found = crl
        .iter_revoked_certificates()
        .find(|c| strip_zeros(c.raw_serial()) == serial)
        .map(|c| c.revocation_date.to_string());
    match found {
        Some(at) => Err(Refusal::new(
            Rule::CnsCrlRevoked,
            format!(
                "serial {} revoked on {at}",
                r.card.leaf.x509.raw_serial_as_string()
            ),
        )),
        None => Ok(()),
    }
}

fn ocsp_unavailable(d: impl Into<String>) -> Refusal {
    Refusal::new(Rule::CnsOcspUnavailable, d)
}

fn digest_of(alg: &AlgorithmIdentifierOwned) -> Option<MessageDigest> {
    match alg.oid.to_string().as_str() {
        "1.2.840.113549.1.1.11" | "1.2.840.10045.4.3.2" => Some(MessageDigest::sha256()),
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => Some(MessageDigest::sha384()),
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => Some(MessageDigest::sha512()),
        _ => None,
    }
}

/// Whether `der` is a delegated OCSP responder of `issuer`, valid now.
fn delegated_responder(der: &[u8], issuer: &Cert<'_>, ctx: &Ctx<'_>) -> bool {
    let Ok((_, x509)) = x509_parser::certificate::X509Certificate::from_der(der) else {
        return false;
    };
    let c = Cert { der, x509 };
    let eku = matches!(c.x509.extended_key_usage(), Ok(Some(e)) if e.value.ocsp_signing);
    let v = c.x509.validity();
    let t = ctx.now.timestamp();
    eku && v.not_before.timestamp() <= t
        && t <= v.not_after.timestamp()
        && c.x509.issuer().as_raw() == issuer.x509.subject().as_raw()
        && c.signed_by(issuer)
}

/// The OCSP answer for this card: successful, basic, signed by the CA or its delegated
/// responder, fresh.
fn verified_single(
    r: &Revocation<'_, '_>,
    ev: &OcspEvidence,
    ctx: &Ctx<'_>,
) -> Result<SingleResponse, Refusal> {
    let der = ev
        .answer
        .as_ref()
        .map_err(|e| ocsp_unavailable(format!("OCSP responder not reached: {e}")))?;
    let resp = OcspResponse::from_der(der)
        .map_err(|_| ocsp_unavailable("the answer is not a DER OCSPResponse"))?;
    let status = match resp.response_status {
        OcspResponseStatus::Successful => None,
        OcspResponseStatus::MalformedRequest => Some("malformedRequest"),
        OcspResponseStatus::InternalError => Some("internalError"),
        OcspResponseStatus::TryLater => Some("tryLater"),
        OcspResponseStatus::SigRequired => Some("sigRequired"),
        OcspResponseStatus::Unauthorized => Some("unauthorized"),
    };
    if let Some(status) = status {
        return Err(ocsp_unavailable(format!("the responder answered {status}")));
    }
    let bytes = resp
        .response_bytes
        .ok_or_else(|| ocsp_unavailable("a successful answer without response bytes"))?;
    if bytes.response_type != der::oid::db::rfc6960::ID_PKIX_OCSP_BASIC {
        return Err(ocsp_unavailable("the answer is not a basic OCSP response"));
    }
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes())
        .map_err(|_| ocsp_unavailable("the basic OCSP response does not parse"))?;
    let signer_der = match &basic.certs {
        Some(certs) if !certs.is_empty() => certs
            .iter()
            .filter_map(|c| c.to_der().ok())
            .find(|d| d.as_slice() == issuer_der(r) || delegated_responder(d, r.issuer, ctx))
            .ok_or_else(|| {
                ocsp_unavailable(
                    "no certificate in the answer is the CA or its delegated OCSP responder",
                )
            })?,
        _ => issuer_der(r).to_vec(),
    };
    let digest = digest_of(&basic.signature_algorithm).ok_or_else(|| {
        ocsp_unavailable(format!(
            "answer signed with {}",
            basic.signature_algorithm.oid
        ))
    })?;
    let tbs = basic
        .tbs_response_data
        .to_der()
        .map_err(|_| ocsp_unavailable("the response data does not re-encode"))?;
    let verified = X509::from_der(&signer_der)
        .and_then(|c| c.public_key())
        .and_then(|k| {
            let mut v = openssl::sign::Verifier::new(digest, &k)?;
            v.verify_oneshot(basic.signature.raw_bytes(), &tbs)
        })
        .unwrap_or(false);
    if !verified {
        return Err(ocsp_unavailable("the answer's signature does not verify"));
    }
    let single = basic
        .tbs_response_data
        .responses
        .into_iter()
        .find(|s| Some(&s.cert_id) == ev.asked.as_ref())
        .ok_or_else(|| ocsp_unavailable("the answer is not about this card"))?;
    let now = ctx.now.timestamp();
    let secs = |t: &x509_ocsp::OcspGeneralizedTime| t.0.to_unix_duration().as_secs() as i64;
    if secs(&single.this_update) > now + SKEW_SECS {
        return Err(ocsp_unavailable("the answer's thisUpdate is in the future"));
    }
    if single.next_update.as_ref().is_some_and(|n| secs(n) < now) {
        return Err(ocsp_unavailable("the answer's nextUpdate has passed"));
    }
    Ok(single)
}

fn issuer_der<'r>(r: &Revocation<'r, '_>) -> &'r [u8] {
    r.issuer.der
}

pub(crate) fn ocsp_available(r: &Revocation<'_, '_>, ctx: &Ctx<'_>) -> Check {
    match &r.evidence.ocsp {
        Some(ev) => verified_single(r, ev, ctx).map(|_| ()),
        None => Ok(()),
    }
}

pub(crate) fn ocsp_known(r: &Revocation<'_, '_>, ctx: &Ctx<'_>) -> Check {
    let Some(ev) = &r.evidence.ocsp else {
        return Ok(());
    };
    match verified_single(r, ev, ctx)?.cert_status {
        CertStatus::Unknown(_) => Err(Refusal::new(
            Rule::CnsOcspUnknown,
            "the OCSP responder does not know the card",
        )),
        _ => Ok(()),
    }
}

pub(crate) fn ocsp_not_revoked(r: &Revocation<'_, '_>, ctx: &Ctx<'_>) -> Check {
    let Some(ev) = &r.evidence.ocsp else {
        return Ok(());
    };
    match verified_single(r, ev, ctx)?.cert_status {
        CertStatus::Revoked(info) => Err(Refusal::new(
            Rule::CnsOcspRevoked,
            format!(
                "revoked at {}",
                chrono::DateTime::from_timestamp(
                    info.revocation_time.0.to_unix_duration().as_secs() as i64,
                    0
                )
                .map(|t| t.to_rfc3339())
                .unwrap_or_default()
            ),
        )),
        _ => Ok(()),
    }
}
