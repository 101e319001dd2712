//! Cards: the honest CNS authentication certificate, and the plan of edits that spoils it.

use super::ca::{CaId, Hierarchy, TEST_ORG};
use super::key::TestKey;
use super::status::{offset, CardStatus, Channels, CrlMode, OcspMode, OcspSigner};
use super::CnsError;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use der::asn1::{BitString, Ia5String};
use der::{Decode, Encode};
use openssl::hash::MessageDigest;
use rcgen::{
    CertificateParams, CrlDistributionPoint, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, Issuer, KeyUsagePurpose, SerialNumber,
};
use serde::{Deserialize, Serialize};
use spid_core::cns::{POLICY_CIE_AUTH, POLICY_CNS};
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{AccessDescription, AuthorityInfoAccessSyntax, CertificatePolicies};
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

/// Who a card belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardHolder {
    /// The fiscal code (16 characters, no `TINIT-` prefix).
    pub fiscal_code: String,
    /// Given name.
    pub given_name: String,
    /// Surname.
    pub surname: String,
}

impl CardHolder {
    /// The holders of `fixtures/users.toml` (natural persons with a fiscal code).
    pub fn fixtures() -> Result<Vec<CardHolder>, CnsError> {
        let users = crate::users::parse(crate::users::DEFAULT_USERS)
            .map_err(|e| CnsError::Users(e.to_string()))?;
        Ok(users
            .iter()
            .filter_map(|u| {
                let a = &u.attributes;
                Some(CardHolder {
                    fiscal_code: a.get("fiscalNumber")?.strip_prefix("TINIT-")?.to_owned(),
                    given_name: a.get("name")?.clone(),
                    surname: a.get("familyName")?.clone(),
                })
            })
            .collect())
    }

    /// The first fixture holder (Mario Rossi).
    pub fn mario_rossi() -> CardHolder {
        CardHolder {
            fiscal_code: "RSSMRA80A01H501U".into(),
            given_name: "Mario".into(),
            surname: "Rossi".into(),
        }
    }
}

/// A keyUsage bit a plan can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyUsage {
    /// digitalSignature (what a CNS authentication certificate has).
    DigitalSignature,
    /// nonRepudiation / contentCommitment (what a qualified signature certificate has).
    NonRepudiation,
    /// keyEncipherment.
    KeyEncipherment,
    /// dataEncipherment.
    DataEncipherment,
    /// keyAgreement.
    KeyAgreement,
}

impl KeyUsage {
    fn rcgen(self) -> KeyUsagePurpose {
        match self {
            KeyUsage::DigitalSignature => KeyUsagePurpose::DigitalSignature,
            KeyUsage::NonRepudiation => KeyUsagePurpose::ContentCommitment,
            KeyUsage::KeyEncipherment => KeyUsagePurpose::KeyEncipherment,
            KeyUsage::DataEncipherment => KeyUsagePurpose::DataEncipherment,
            KeyUsage::KeyAgreement => KeyUsagePurpose::KeyAgreement,
        }
    }
}

/// An extendedKeyUsage purpose a plan can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Eku {
    /// TLS client authentication (what a CNS has).
    ClientAuth,
    /// TLS server authentication.
    ServerAuth,
    /// E-mail protection.
    EmailProtection,
    /// Code signing.
    CodeSigning,
}

impl Eku {
    fn rcgen(self) -> ExtendedKeyUsagePurpose {
        match self {
            Eku::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            Eku::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
            Eku::EmailProtection => ExtendedKeyUsagePurpose::EmailProtection,
            Eku::CodeSigning => ExtendedKeyUsagePurpose::CodeSigning,
        }
    }
}

/// The hash a card is signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureHash {
    /// sha1WithRSAEncryption (legacy cards).
    Sha1,
    /// sha256WithRSAEncryption (the honest card).
    #[default]
    Sha256,
    /// sha384WithRSAEncryption.
    Sha384,
    /// sha512WithRSAEncryption.
    Sha512,
}

impl SignatureHash {
    fn digest(self) -> MessageDigest {
        match self {
            SignatureHash::Sha1 => MessageDigest::sha1(),
            SignatureHash::Sha256 => MessageDigest::sha256(),
            SignatureHash::Sha384 => MessageDigest::sha384(),
            SignatureHash::Sha512 => MessageDigest::sha512(),
        }
    }
    fn algorithm(self) -> AlgorithmIdentifierOwned {
        use der::oid::db::rfc5912 as o;
        let oid = match self {
            SignatureHash::Sha1 => o::SHA_1_WITH_RSA_ENCRYPTION,
            SignatureHash::Sha256 => o::SHA_256_WITH_RSA_ENCRYPTION,
            SignatureHash::Sha384 => o::SHA_384_WITH_RSA_ENCRYPTION,
            SignatureHash::Sha512 => o::SHA_512_WITH_RSA_ENCRYPTION,
        };
        AlgorithmIdentifierOwned {
            oid,
            parameters: Some(der::Any::from(der::asn1::Null)),
        }
    }
}

/// What the holder presents in the TLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Presented {
    /// The card and its issuing CA (the honest card).
    #[default]
    Full,
    /// The card alone (the intermediate is missing).
    LeafOnly,
    /// No certificate at all.
    Nothing,
    /// The card and its issuing CA, then bytes that are not a certificate (a broken token
    /// or middleware; the handshake's signature check reads only the card).
    TrailingJunk,
}

/// What [`Presented::TrailingJunk`] appends to the chain: a DER SEQUENCE header promising
/// more bytes than follow.
pub const JUNK_CERTIFICATE: &[u8] = &[0x30, 0x82, 0x01, 0x00, 0x02, 0x01, 0x00];

/// One edit of the honest card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CardEdit {
    /// notBefore = now + `days` (the honest card: 30 days ago).
    NotBefore {
        /// Days from now (negative: in the past).
        days: i64,
    },
    /// notAfter = now + `days` (the honest card: in three years).
    NotAfter {
        /// Days from now (negative: in the past).
        days: i64,
    },
    /// Replaces keyUsage (empty: no extension). Honest: digitalSignature, keyEncipherment.
    KeyUsage {
        /// The bits.
        usages: Vec<KeyUsage>,
    },
    /// Replaces extendedKeyUsage (empty: no extension). Honest: clientAuth.
    ExtendedKeyUsage {
        /// The purposes.
        usages: Vec<Eku>,
    },
    /// Replaces certificatePolicies (empty: no extension). Honest: the CNS policy.
    Policies {
        /// Dotted OIDs.
        oids: Vec<String>,
    },
    /// Replaces the subject CN (honest: `<fiscal code>/<card id>.<hash>`).
    SubjectCn {
        /// The new CN.
        value: String,
    },
    /// Replaces the fiscal code in the CN, keeping the rest.
    FiscalCode {
        /// The new fiscal code.
        value: String,
    },
    /// Replaces the CN's hash (after the card id and `.`), e.g. with one containing `/`.
    CnHash {
        /// The new hash.
        value: String,
    },
    /// Another CA signs (honest: the InfoCert-like CA).
    Issuer {
        /// The CA.
        ca: CaId,
    },
    /// The card signs itself.
    SelfSigned,
    /// The card key's size (honest: 2048; 1024 is the legacy v1.0 card).
    KeyBits {
        /// Bits: 1024 or 2048.
        bits: u32,
    },
    /// The hash the card is signed with (honest: SHA-256).
    SignatureHash {
        /// The hash.
        hash: SignatureHash,
    },
    /// What the holder presents (honest: the card and its issuing CA).
    Present {
        /// The chain.
        chain: Presented,
    },
    /// No CRL distribution point in the card.
    NoCrlDistributionPoint,
    /// No OCSP responder (authorityInfoAccess) in the card.
    NoOcsp,
    /// The card is revoked.
    Revoked {
        /// Where it shows.
        #[serde(default)]
        on: Channels,
    },
    /// How the card's CRL distribution point answers.
    Crl {
        /// The mode.
        mode: CrlMode,
    },
    /// How the OCSP responder answers for the card.
    Ocsp {
        /// The mode.
        mode: OcspMode,
    },
    /// Who signs the card's OCSP responses.
    OcspSigner {
        /// The signer.
        signer: OcspSigner,
    },
}

impl CardEdit {
    /// The edit's case-file name (`not-before`).
    pub fn name(&self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(o)) => o
                .get("op")
                .and_then(|x| x.as_str())
                .unwrap_or("?")
                .to_owned(),
            Ok(serde_json::Value::String(s)) => s,
            _ => "?".into(),
        }
    }
}

/// A card recipe: the honest card, then these edits in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardPlan {
    /// The edits.
    #[serde(default)]
    pub edits: Vec<CardEdit>,
}

impl CardPlan {
    /// The honest CNS card.
    pub fn honest() -> CardPlan {
        CardPlan::default()
    }

    /// The honest CIE 3.0 authentication certificate (the CIE policy instead of the CNS one).
    pub fn cie() -> CardPlan {
        CardPlan::honest().with(CardEdit::Policies {
            oids: vec![POLICY_CIE_AUTH.into()],
        })
    }

    /// This plan and then `edit`.
    pub fn with(mut self, edit: CardEdit) -> CardPlan {
        self.edits.push(edit);
        self
    }
}

/// A minted card: the certificate, what its holder presents, the key to present it with.
#[derive(Debug, Clone)]
pub struct Card {
    /// The card certificate, DER.
    pub der: Vec<u8>,
    /// What the holder presents, leaf first (empty: no certificate).
    pub chain: Vec<Vec<u8>>,
    /// The card's private key, PKCS#8 DER.
    pub key_pkcs8: Vec<u8>,
    /// Serial number.
    pub serial: u64,
    /// The CA that signed it (or, for a self-signed card, the one it claims).
    pub ca: CaId,
    /// The holder.
    pub holder: CardHolder,
    /// The subject CN as minted.
    pub cn: String,
}

/// Everything a plan decides, starting from the honest card.
struct Recipe {
    params: CertificateParams,
    fiscal_code: String,
    card_id: String,
    hash: String,
    cn_override: Option<String>,
    issuer: CaId,
    self_signed: bool,
    key_bits: u32,
    signature_hash: SignatureHash,
    presented: Presented,
    status: CardStatus,
}

fn policies_ext(oids: &[String], edit: &str) -> Result<CustomExtension, CnsError> {
    let mut infos = Vec::new();
    for o in oids {
        let oid = der::oid::ObjectIdentifier::new(o).map_err(|_| CnsError::InvalidValue {
            edit: edit.into(),
            value: o.clone(),
        })?;
        infos.push(PolicyInformation {
            policy_identifier: oid,
            policy_qualifiers: None,
        });
    }
    let der = CertificatePolicies(infos).to_der()?;
    Ok(CustomExtension::from_oid_content(&[2, 5, 29, 32], der))
}

fn ocsp_ext(url: &str) -> Result<CustomExtension, CnsError> {
    let aia = AuthorityInfoAccessSyntax(vec![AccessDescription {
        access_method: der::oid::db::rfc5280::ID_AD_OCSP,
        access_location: GeneralName::UniformResourceIdentifier(Ia5String::new(url)?),
    }]);
    Ok(CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 5, 5, 7, 1, 1],
        aia.to_der()?,
    ))
}

const OID_POLICIES: [u64; 4] = [2, 5, 29, 32];
const OID_AIA: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 1, 1];

fn has_ext(p: &CertificateParams, oid: &[u64]) -> bool {
    p.custom_extensions
        .iter()
        .any(|e| e.oid_components().eq(oid.iter().copied()))
}

fn drop_ext(p: &mut CertificateParams, oid: &[u64]) {
    p.custom_extensions
        .retain(|e| !e.oid_components().eq(oid.iter().copied()));
}

/// The honest card's certificate parameters, serial `serial`, from `ca`, with its revocation
/// sources under `base_url` (the subject, which names the holder, is set at minting).
pub fn honest_params(
    serial: u64,
    ca: CaId,
    base_url: &str,
    now: DateTime<Utc>,
) -> Result<CertificateParams, CnsError> {
    let mut p = CertificateParams::default();
    p.serial_number = Some(SerialNumber::from(serial));
    p.not_before = offset(now - Duration::days(30))?;
    p.not_after = offset(now + Duration::days(3 * 365))?;
    p.distinguished_name = DistinguishedName::new();
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec![format!("{base_url}/crl/{}/{serial}.crl", ca.slug())],
    }];
    p.custom_extensions = vec![
        policies_ext(&[POLICY_CNS.into()], "policies")?,
        ocsp_ext(&format!("{base_url}/ocsp/{}", ca.slug()))?,
    ];
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

fn missed(edit: &CardEdit, why: &str) -> CnsError {
    CnsError::EditMissed {
        edit: edit.name(),
        why: why.into(),
    }
}

impl Recipe {
    fn apply(&mut self, edit: &CardEdit, now: DateTime<Utc>) -> Result<(), CnsError> {
        let p = &mut self.params;
        match edit {
            CardEdit::NotBefore { days } => p.not_before = offset(now + Duration::days(*days))?,
            CardEdit::NotAfter { days } => p.not_after = offset(now + Duration::days(*days))?,
            CardEdit::KeyUsage { usages } => {
                let new: Vec<_> = usages.iter().map(|u| u.rcgen()).collect();
                if new == p.key_usages {
                    return Err(missed(edit, "the honest card has these key usages"));
                }
                p.key_usages = new;
            }
            CardEdit::ExtendedKeyUsage { usages } => {
                let new: Vec<_> = usages.iter().map(|u| u.rcgen()).collect();
                if new == p.extended_key_usages {
                    return Err(missed(edit, "the honest card has these purposes"));
                }
                p.extended_key_usages = new;
            }
            CardEdit::Policies { oids } => {
                drop_ext(p, &OID_POLICIES);
                if !oids.is_empty() {
                    p.custom_extensions.push(policies_ext(oids, "policies")?);
                }
            }
            CardEdit::SubjectCn { value } => self.cn_override = Some(value.clone()),
            CardEdit::FiscalCode { value } => {
                if *value == self.fiscal_code {
                    return Err(missed(edit, "the card already carries this fiscal code"));
                }
                self.fiscal_code = value.clone();
            }
            CardEdit::CnHash { value } => self.hash = value.clone(),
            CardEdit::Issuer { ca } => {
                if *ca == self.issuer {
                    return Err(missed(edit, "this CA already signs the card"));
                }
                self.issuer = *ca;
            }
            CardEdit::SelfSigned => self.self_signed = true,
            CardEdit::KeyBits { bits } => {
                if *bits == self.key_bits {
                    return Err(missed(edit, "the card key already has this size"));
                }
                if *bits != 1024 && *bits != 2048 {
                    return Err(CnsError::InvalidValue {
                        edit: edit.name(),
                        value: bits.to_string(),
                    });
                }
                self.key_bits = *bits;
            }
            CardEdit::SignatureHash { hash } => {
                if *hash == self.signature_hash {
                    return Err(missed(edit, "the card is already signed with this hash"));
                }
                self.signature_hash = *hash;
            }
            CardEdit::Present { chain } => {
                if *chain == self.presented {
                    return Err(missed(edit, "the holder already presents this"));
                }
                self.presented = *chain;
            }
            CardEdit::NoCrlDistributionPoint => {
                if p.crl_distribution_points.is_empty() {
                    return Err(missed(edit, "no CRL distribution point to remove"));
                }
                p.crl_distribution_points.clear();
            }
            CardEdit::NoOcsp => {
                if !has_ext(p, &OID_AIA) {
                    return Err(missed(edit, "no authorityInfoAccess to remove"));
                }
                drop_ext(p, &OID_AIA);
            }
            CardEdit::Revoked { on } => {
                self.status.revoked = Some((now - Duration::hours(2), *on));
            }
            CardEdit::Crl { mode } => {
                if *mode == self.status.crl {
                    return Err(missed(edit, "the CRL already answers so"));
                }
                self.status.crl = *mode;
            }
            CardEdit::Ocsp { mode } => {
                if *mode == self.status.ocsp {
                    return Err(missed(edit, "the OCSP responder already answers so"));
                }
                self.status.ocsp = *mode;
            }
            CardEdit::OcspSigner { signer } => {
                if *signer == self.status.signer {
                    return Err(missed(edit, "this signer already signs"));
                }
                self.status.signer = *signer;
            }
        }
        Ok(())
    }

    fn cn(&self) -> String {
        self.cn_override
            .clone()
            .unwrap_or_else(|| format!("{}/{}.{}", self.fiscal_code, self.card_id, self.hash))
    }
}

/// Mints `holder`'s card `serial` per `plan`; returns it with the status the issuer must keep
/// for it (under the CA that signs it).
pub(crate) fn mint(
    h: &Hierarchy,
    holder: &CardHolder,
    plan: &CardPlan,
    serial: u64,
    base_url: &str,
    now: DateTime<Utc>,
) -> Result<(Card, CardStatus), CnsError> {
    // Whole seconds, as the certificate will carry them.
    let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    let card_id = format!("6{serial:015}");
    let digest = openssl::sha::sha1(format!("{}{card_id}", holder.fiscal_code).as_bytes());
    let mut r = Recipe {
        params: honest_params(serial, CaId::Infocert, base_url, now)?,
        fiscal_code: holder.fiscal_code.clone(),
        card_id,
        hash: base64::engine::general_purpose::STANDARD.encode(digest),
        cn_override: None,
        issuer: CaId::Infocert,
        self_signed: false,
        key_bits: 2048,
        signature_hash: SignatureHash::Sha256,
        presented: Presented::Full,
        status: CardStatus::default(),
    };
    for e in &plan.edits {
        r.apply(e, now)?;
    }
    // The revocation sources name the CA that signs.
    if r.issuer != CaId::Infocert {
        if !r.params.crl_distribution_points.is_empty() {
            r.params.crl_distribution_points = vec![CrlDistributionPoint {
                uris: vec![format!("{base_url}/crl/{}/{serial}.crl", r.issuer.slug())],
            }];
        }
        if has_ext(&r.params, &OID_AIA) {
            drop_ext(&mut r.params, &OID_AIA);
            r.params
                .custom_extensions
                .push(ocsp_ext(&format!("{base_url}/ocsp/{}", r.issuer.slug()))?);
        }
    }
    let cn = r.cn();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "IT");
    dn.push(DnType::OrganizationName, TEST_ORG);
    dn.push(DnType::OrganizationalUnitName, r.issuer.administration());
    dn.push(
        DnType::CustomDnType(vec![2, 5, 4, 4]),
        holder.surname.as_str(),
    );
    dn.push(
        DnType::CustomDnType(vec![2, 5, 4, 42]),
        holder.given_name.as_str(),
    );
    dn.push(DnType::CommonName, cn.as_str());
    r.params.distinguished_name = dn;

    let card_key = h.card_key(r.key_bits);
    let ca = h.ca(r.issuer);
    let (rcgen_cert, signer): (_, &TestKey) = if r.self_signed {
        (r.params.self_signed(card_key)?, card_key)
    } else {
        let issuer: Issuer<'_, &TestKey> = ca.issuer();
        (r.params.signed_by(card_key, &issuer)?, &ca.key)
    };
    let mut der = rcgen_cert.der().to_vec();
    if r.signature_hash != SignatureHash::Sha256 {
        der = resign(&der, signer, r.signature_hash)?;
    }
    let chain = match (r.presented, r.self_signed, r.issuer) {
        (Presented::Nothing, _, _) => vec![],
        (Presented::LeafOnly, _, _) | (_, true, _) => vec![der.clone()],
        // The look-alike card comes with the genuine CA certificate it claims (public).
        (Presented::Full, false, CaId::Foreign) => {
            vec![der.clone(), h.ca(CaId::Infocert).der.clone()]
        }
        (Presented::Full, false, _) => vec![der.clone(), ca.der.clone()],
        (Presented::TrailingJunk, _, _) => {
            vec![der.clone(), ca.der.clone(), JUNK_CERTIFICATE.to_vec()]
        }
    };
    Ok((
        Card {
            der,
            chain,
            key_pkcs8: card_key.pkcs8_der()?,
            serial,
            ca: r.issuer,
            holder: holder.clone(),
            cn,
        },
        r.status,
    ))
}

/// Re-signs a certificate with `hash` (rcgen signs SHA-256 only): both AlgorithmIdentifiers
/// are replaced and the TBS signed again by `key`.
fn resign(der: &[u8], key: &TestKey, hash: SignatureHash) -> Result<Vec<u8>, CnsError> {
    let mut cert = Certificate::from_der(der)?;
    cert.tbs_certificate.signature = hash.algorithm();
    cert.signature_algorithm = hash.algorithm();
    let sig = key.sign_with(hash.digest(), &cert.tbs_certificate.to_der()?)?;
    cert.signature = BitString::from_bytes(&sig)?;
    Ok(cert.to_der()?)
}
