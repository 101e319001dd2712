//! The TEST hierarchy: a root and issuing CAs named like the administrations that issue CNS
//! cards, plus the CAs the hostile cards need (an expired one, a look-alike of the InfoCert-like
//! CA with its very name and another key, one nobody trusts). Fixed dates, serials and keys:
//! the same DER on every run.

use super::key::{load, TestKey};
use super::CnsError;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose, SanType, SerialNumber,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `organizationName` suffix of every certificate here.
pub const TEST_ORG: &str = "spid-harness TEST ONLY";

/// An issuing CA of the hierarchy (or one of the hostile ones).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "kebab-case")]
pub enum CaId {
    /// The InfoCert-like CA (the issuer of most chamber-of-commerce CNS cards).
    #[default]
    Infocert,
    /// The Aruba-like CA.
    Aruba,
    /// A regional administration's CA (regional health-service cards, TS-CNS).
    Regione,
    /// An issuing CA under the root whose validity ended in 2020.
    Expired,
    /// A look-alike: the InfoCert-like CA's name on another key, under no trusted root.
    Foreign,
    /// A CA nobody trusts.
    Unknown,
}

impl CaId {
    /// Every CA, in order.
    pub const ALL: [CaId; 6] = [
        CaId::Infocert,
        CaId::Aruba,
        CaId::Regione,
        CaId::Expired,
        CaId::Foreign,
        CaId::Unknown,
    ];

    /// The name in URLs (`/crl/<slug>.crl`, `/ocsp/<slug>`) and case files.
    pub fn slug(self) -> &'static str {
        match self {
            CaId::Infocert => "infocert",
            CaId::Aruba => "aruba",
            CaId::Regione => "regione",
            CaId::Expired => "expired",
            CaId::Foreign => "foreign",
            CaId::Unknown => "unknown",
        }
    }

    /// The CA named `slug`.
    pub fn from_slug(slug: &str) -> Option<CaId> {
        CaId::ALL.into_iter().find(|c| c.slug() == slug)
    }

    /// The administration the CA issues cards for (the card subject's OU).
    pub fn administration(self) -> &'static str {
        match self {
            CaId::Infocert | CaId::Foreign => "TEST Camera di Commercio-like",
            CaId::Aruba => "TEST Ordine Professionale-like",
            CaId::Regione => "TEST Regione-like Servizio Sanitario",
            CaId::Expired => "TEST Amministrazione scaduta",
            CaId::Unknown => "TEST Amministrazione sconosciuta",
        }
    }

    fn dn(self) -> DistinguishedName {
        let (cn, org) = match self {
            CaId::Infocert | CaId::Foreign => (
                "TEST InfoCert-like Servizi di Certificazione CNS",
                "TEST InfoCert-like S.p.A.",
            ),
            CaId::Aruba => ("TEST ArubaPEC-like CA CNS", "TEST ArubaPEC-like S.p.A."),
            CaId::Regione => (
                "TEST Regione-like CA Cittadini",
                "TEST Regione-like Amministrazione regionale",
            ),
            CaId::Expired => ("TEST Expired CA CNS", "TEST Expired-like S.p.A."),
            CaId::Unknown => ("TEST Unknown CA CNS", "TEST Nobody-trusts-me S.r.l."),
        };
        dn(cn, org)
    }

    fn key_name(self) -> &'static str {
        self.slug()
    }

    /// Under the root (trusted through it), or a root of its own that nobody trusts.
    fn under_root(self) -> bool {
        !matches!(self, CaId::Foreign | CaId::Unknown)
    }
}

fn dn(cn: &str, org: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CountryName, "IT");
    d.push(DnType::OrganizationName, format!("{org} ({TEST_ORG})"));
    d.push(DnType::CommonName, cn);
    d
}

fn ca_params(dn: DistinguishedName, serial: u64, from: i32, to: i32) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = date_time_ymd(from, 1, 1);
    p.not_after = date_time_ymd(to, 1, 1);
    p.serial_number = Some(SerialNumber::from(serial));
    p.use_authority_key_identifier_extension = true;
    p
}

/// One CA: its certificate, the parameters rcgen signs with, its key, and its delegated OCSP
/// responder.
#[derive(Debug)]
pub struct Ca {
    /// Which CA.
    pub id: CaId,
    /// The CA certificate, DER.
    pub der: Vec<u8>,
    pub(crate) params: CertificateParams,
    pub(crate) key: TestKey,
    /// The delegated OCSP responder's certificate (EKU OCSPSigning, issued by this CA), DER.
    pub responder_der: Vec<u8>,
    pub(crate) responder_key: TestKey,
}

impl Ca {
    /// The rcgen issuer of this CA.
    pub(crate) fn issuer(&self) -> Issuer<'_, &TestKey> {
        Issuer::from_params(&self.params, &self.key)
    }
}

/// The whole TEST hierarchy.
#[derive(Debug)]
pub struct Hierarchy {
    /// The root CA certificate, DER: the one trust anchor a service configures.
    pub root_der: Vec<u8>,
    root_params: CertificateParams,
    root_key: TestKey,
    cas: BTreeMap<CaId, Ca>,
    card_key: TestKey,
    card1024_key: TestKey,
}

impl Hierarchy {
    /// Builds the hierarchy from the committed keys.
    pub fn new() -> Result<Hierarchy, CnsError> {
        let root_key = load("root")?;
        let mut root_params = ca_params(
            dn(
                "TEST Root CA per la Carta Nazionale dei Servizi",
                "TEST Root",
            ),
            1,
            2025,
            2045,
        );
        root_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
        let root_der = root_params.self_signed(&root_key)?.der().to_vec();
        let root = Issuer::from_params(&root_params, &root_key);
        let responder_key = load("ocsp")?;
        let mut cas = BTreeMap::new();
        for (i, id) in CaId::ALL.into_iter().enumerate() {
            let key = load(id.key_name())?;
            let (from, to) = if id == CaId::Expired {
                (2015, 2020)
            } else {
                (2025, 2040)
            };
            let params = ca_params(id.dn(), 0x100 + i as u64, from, to);
            let der = if id.under_root() {
                params.signed_by(&key, &root)?.der().to_vec()
            } else {
                params.self_signed(&key)?.der().to_vec()
            };
            let mut rp = CertificateParams::default();
            rp.distinguished_name = dn(&format!("TEST OCSP responder {}", id.slug()), "TEST OCSP");
            rp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            rp.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
            rp.not_before = date_time_ymd(from, 1, 1);
            rp.not_after = date_time_ymd(to, 1, 1);
            rp.serial_number = Some(SerialNumber::from(0x200 + i as u64));
            rp.use_authority_key_identifier_extension = true;
            let responder_der = rp
                .signed_by(&responder_key, &Issuer::from_params(&params, &key))?
                .der()
                .to_vec();
            cas.insert(
                id,
                Ca {
                    id,
                    der,
                    params,
                    key,
                    responder_der,
                    responder_key: responder_key.clone(),
                },
            );
        }
        Ok(Hierarchy {
            root_der,
            root_params,
            root_key,
            cas,
            card_key: load("card")?,
            card1024_key: load("card1024")?,
        })
    }

    /// The CA `id`.
    pub fn ca(&self, id: CaId) -> &Ca {
        // Every CaId is inserted by `new`.
        &self.cas[&id]
    }

    /// The certificates a service trusts: the root alone (the issuing CAs come in the chain
    /// each card presents).
    pub fn trust_anchors(&self) -> Vec<Vec<u8>> {
        vec![self.root_der.clone()]
    }

    /// The issuing CA certificates under the root (what a service configured like the AgID
    /// trusted list would hold instead of the root).
    pub fn issuing_cas(&self) -> Vec<Vec<u8>> {
        [CaId::Infocert, CaId::Aruba, CaId::Regione]
            .into_iter()
            .map(|c| self.ca(c).der.clone())
            .collect()
    }

    pub(crate) fn card_key(&self, bits: u32) -> &TestKey {
        if bits <= 1024 {
            &self.card1024_key
        } else {
            &self.card_key
        }
    }

    /// The root's CRL (it revokes no issuing CA), current at `now` for a week: what a service
    /// that checks revocation along the whole chain needs beside the issuing CAs' CRLs.
    pub fn root_crl(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<u8>, CnsError> {
        use super::status::offset;
        let params = rcgen::CertificateRevocationListParams {
            this_update: offset(now - chrono::Duration::hours(1))?,
            next_update: offset(now + chrono::Duration::days(7))?,
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![],
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        let root = Issuer::from_params(&self.root_params, &self.root_key);
        Ok(params.signed_by(&root)?.der().to_vec())
    }

    /// A TLS server certificate for `host` (an IP address or a DNS name) under the root, with
    /// its chain (leaf first) and PKCS#8 key: what a test service listening on loopback needs.
    pub fn server_credential(&self, host: &str) -> Result<(Vec<Vec<u8>>, Vec<u8>), CnsError> {
        let key = load("ocsp")?;
        let mut p = CertificateParams::default();
        p.distinguished_name = dn(host, "TEST CNS service");
        p.subject_alt_names = vec![match host.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(host.try_into()?),
        }];
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.not_before = date_time_ymd(2025, 1, 1);
        p.not_after = date_time_ymd(2040, 1, 1);
        p.serial_number = Some(SerialNumber::from(0x300));
        let root = Issuer::from_params(&self.root_params, &self.root_key);
        let der = p.signed_by(&key, &root)?.der().to_vec();
        Ok((vec![der], key.pkcs8_der()?))
    }
}
