//! The issuer's view of its cards' status, and its two ways of telling it: a DER CRL
//! (RFC 5280 §5, built by rcgen) and DER OCSP responses (RFC 6960, RustCrypto `x509-ocsp`
//! structures signed through OpenSSL). Both are computed per request from the current state,
//! so revoking and un-revoking take effect at once.

use super::ca::{CaId, Hierarchy};
use super::CnsError;
use chrono::{DateTime, Duration, Utc};
use der::asn1::{BitString, GeneralizedTime, Null, OctetString};
use der::{Decode, Encode};
use openssl::hash::MessageDigest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_ocsp::{
    BasicOcspResponse, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse,
    OcspResponseStatus, ResponderId, ResponseBytes, ResponseData, RevokedInfo, SingleResponse,
};

/// Where a card is revoked: on its CA's CRL, at its OCSP responder, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channels {
    /// The CRL lists the card and the OCSP responder says revoked.
    #[default]
    Both,
    /// Only the CRL lists it (the OCSP responder still says good).
    Crl,
    /// Only the OCSP responder says revoked (the CRL does not list it yet).
    Ocsp,
}

impl Channels {
    fn crl(self) -> bool {
        matches!(self, Channels::Both | Channels::Crl)
    }
    fn ocsp(self) -> bool {
        matches!(self, Channels::Both | Channels::Ocsp)
    }
}

/// How the card's CRL distribution point answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrlMode {
    /// A current CRL (thisUpdate an hour ago, nextUpdate in a day).
    #[default]
    Honest,
    /// A CRL whose nextUpdate passed a day ago.
    Stale,
    /// HTTP 500.
    Unavailable,
}

/// How the OCSP responder answers for the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OcspMode {
    /// good, or revoked when the card is revoked at the responder.
    #[default]
    Honest,
    /// A signed `unknown`.
    Unknown,
    /// HTTP 500.
    InternalError,
    /// OCSPResponse status tryLater (no response bytes).
    TryLater,
    /// Never answers (the request is held until the client gives up, at most a minute).
    Hang,
}

/// Who signs OCSP responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OcspSigner {
    /// The card's CA itself.
    #[default]
    Ca,
    /// The CA's delegated responder (EKU OCSPSigning), its certificate in the response.
    Delegated,
}

/// One issued card's status.
#[derive(Debug, Clone, Default)]
pub(crate) struct CardStatus {
    pub(crate) revoked: Option<(DateTime<Utc>, Channels)>,
    pub(crate) crl: CrlMode,
    pub(crate) ocsp: OcspMode,
    pub(crate) signer: OcspSigner,
}

/// Every issued card's status, by CA and serial number.
#[derive(Debug, Default)]
pub(crate) struct StatusDb {
    pub(crate) cards: BTreeMap<(CaId, u64), CardStatus>,
    crl_number: u64,
}

/// What the OCSP endpoint does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OcspAnswer {
    /// 200 with this DER OCSPResponse.
    Der(Vec<u8>),
    /// This HTTP status, no body.
    HttpError(u16),
    /// No answer at all.
    Hang,
}

/// What the CRL endpoint does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrlAnswer {
    /// 200 with this DER CRL.
    Der(Vec<u8>),
    /// This HTTP status, no body.
    HttpError(u16),
}

/// An instant as rcgen's date type.
pub(crate) fn offset(t: DateTime<Utc>) -> Result<time::OffsetDateTime, CnsError> {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(|_| CnsError::InvalidValue {
        edit: "date".into(),
        value: t.to_rfc3339(),
    })
}

fn gtime(t: DateTime<Utc>) -> Result<OcspGeneralizedTime, CnsError> {
    let secs = u64::try_from(t.timestamp()).map_err(|_| CnsError::InvalidValue {
        edit: "date".into(),
        value: t.to_rfc3339(),
    })?;
    Ok(OcspGeneralizedTime(GeneralizedTime::from_unix_duration(
        std::time::Duration::from_secs(secs),
    )?))
}

/// `sha256WithRSAEncryption` with NULL parameters.
pub(crate) fn sha256_rsa() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: der::oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
        parameters: Some(der::Any::from(Null)),
    }
}

impl StatusDb {
    /// The CRL of `ca` as served at the distribution point of card `serial` (its mode decides
    /// freshness; every card of `ca` revoked on the CRL is listed).
    pub(crate) fn crl(
        &mut self,
        h: &Hierarchy,
        ca: CaId,
        serial: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<CrlAnswer, CnsError> {
        let mode = serial
            .and_then(|s| self.cards.get(&(ca, s)))
            .map(|c| c.crl)
            .unwrap_or_default();
        let (this, next) = match mode {
            CrlMode::Honest => (now - Duration::hours(1), now + Duration::days(1)),
            CrlMode::Stale => (now - Duration::days(8), now - Duration::days(1)),
            CrlMode::Unavailable => return Ok(CrlAnswer::HttpError(500)),
        };
        self.crl_number += 1;
        let mut revoked = Vec::new();
        for ((c, s), st) in &self.cards {
            if let (true, Some((at, ch))) = (*c == ca, st.revoked) {
                if ch.crl() {
                    revoked.push(rcgen::RevokedCertParams {
                        serial_number: rcgen::SerialNumber::from(*s),
                        revocation_time: offset(at)?,
                        reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                        invalidity_date: None,
                    });
                }
            }
        }
        let params = rcgen::CertificateRevocationListParams {
            this_update: offset(this)?,
            next_update: offset(next)?,
            crl_number: rcgen::SerialNumber::from(self.crl_number),
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        Ok(CrlAnswer::Der(
            params.signed_by(&h.ca(ca).issuer())?.der().to_vec(),
        ))
    }

    /// The answer of `ca`'s OCSP responder to the DER OCSPRequest `req`.
    pub(crate) fn ocsp(
        &self,
        h: &Hierarchy,
        ca: CaId,
        req: &[u8],
        now: DateTime<Utc>,
    ) -> Result<OcspAnswer, CnsError> {
        let status_only = |s: OcspResponseStatus| -> Result<OcspAnswer, CnsError> {
            let r = OcspResponse {
                response_status: s,
                response_bytes: None,
            };
            Ok(OcspAnswer::Der(r.to_der()?))
        };
        let Ok(req) = OcspRequest::from_der(req) else {
            return status_only(OcspResponseStatus::MalformedRequest);
        };
        if req.tbs_request.request_list.is_empty() {
            return status_only(OcspResponseStatus::MalformedRequest);
        }
        let the_ca = h.ca(ca);
        let ca_cert = Certificate::from_der(&the_ca.der)?;
        let ca_name = ca_cert.tbs_certificate.subject.to_der()?;
        let ca_key = the_ca.key.public_pkcs1();
        let mut responses = Vec::new();
        let mut signer = OcspSigner::Ca;
        for r in &req.tbs_request.request_list {
            let id = &r.req_cert;
            let digest = match id.hash_algorithm.oid {
                der::oid::db::rfc5912::ID_SHA_1 => MessageDigest::sha1(),
                der::oid::db::rfc5912::ID_SHA_256 => MessageDigest::sha256(),
                _ => return status_only(OcspResponseStatus::MalformedRequest),
            };
            let ours = id.issuer_name_hash.as_bytes()
                == openssl::hash::hash(digest, &ca_name)?.as_ref()
                && id.issuer_key_hash.as_bytes() == openssl::hash::hash(digest, ca_key)?.as_ref();
            let serial = serial_u64(id.serial_number.as_bytes());
            let card = serial
                .and_then(|s| self.cards.get(&(ca, s)))
                .filter(|_| ours);
            let status = match card {
                None => CertStatus::Unknown(Null),
                Some(c) => {
                    signer = c.signer;
                    match c.ocsp {
                        OcspMode::InternalError => return Ok(OcspAnswer::HttpError(500)),
                        OcspMode::Hang => return Ok(OcspAnswer::Hang),
                        OcspMode::TryLater => return status_only(OcspResponseStatus::TryLater),
                        OcspMode::Unknown => CertStatus::Unknown(Null),
                        OcspMode::Honest => match c.revoked {
                            Some((at, ch)) if ch.ocsp() => CertStatus::Revoked(RevokedInfo {
                                revocation_time: gtime(at)?,
                                revocation_reason: Some(
                                    x509_cert::ext::pkix::CrlReason::KeyCompromise,
                                ),
                            }),
                            _ => CertStatus::Good(Null),
                        },
                    }
                }
            };
            responses.push(SingleResponse {
                cert_id: id.clone(),
                cert_status: status,
                this_update: gtime(now - Duration::minutes(5))?,
                next_update: Some(gtime(now + Duration::hours(1))?),
                single_extensions: None,
            });
        }
        let (key, certs) = match signer {
            OcspSigner::Ca => (&the_ca.key, None),
            OcspSigner::Delegated => (
                &the_ca.responder_key,
                Some(vec![Certificate::from_der(&the_ca.responder_der)?]),
            ),
        };
        // A nonce in the request is echoed (RFC 8954); other request extensions are ignored.
        let nonce = req
            .tbs_request
            .request_extensions
            .as_ref()
            .and_then(|exts| {
                exts.iter()
                    .find(|e| e.extn_id == der::oid::db::rfc6960::ID_PKIX_OCSP_NONCE)
                    .cloned()
            });
        let tbs = ResponseData {
            version: x509_ocsp::Version::V1,
            responder_id: ResponderId::ByKey(OctetString::new(
                openssl::sha::sha1(key.public_pkcs1()).to_vec(),
            )?),
            produced_at: gtime(now)?,
            responses,
            response_extensions: nonce.map(|n| vec![n]),
        };
        let signature = key.sign_with(MessageDigest::sha256(), &tbs.to_der()?)?;
        let basic = BasicOcspResponse {
            tbs_response_data: tbs,
            signature_algorithm: sha256_rsa(),
            signature: BitString::from_bytes(&signature)?,
            certs,
        };
        let resp = OcspResponse {
            response_status: OcspResponseStatus::Successful,
            response_bytes: Some(ResponseBytes {
                response_type: der::oid::db::rfc6960::ID_PKIX_OCSP_BASIC,
                response: OctetString::new(basic.to_der()?)?,
            }),
        };
        Ok(OcspAnswer::Der(resp.to_der()?))
    }
}

/// A DER INTEGER's content octets as a u64 (our serials fit; anything else is not ours).
/// The serial number of the first certificate a DER OCSPRequest asks about.
pub(crate) fn requested_serial(req: &[u8]) -> Option<u64> {
    let req = OcspRequest::from_der(req).ok()?;
    let first = req.tbs_request.request_list.first()?;
    serial_u64(first.req_cert.serial_number.as_bytes())
}

fn serial_u64(b: &[u8]) -> Option<u64> {
    let b = match b {
        [0, rest @ ..] => rest,
        _ => b,
    };
    if b.len() > 8 {
        return None;
    }
    Some(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}
