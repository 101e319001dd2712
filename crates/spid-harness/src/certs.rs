//! Generator of the workspace's TEST-ONLY RSA keys and self-signed certificates.
//!
//! Everything written here is a test fixture: the private keys are committed
//! to the repository, so they are public and must never be trusted anywhere
//! outside this harness. Every subject carries `O=spid-harness TEST ONLY`.
//!
//! Keys are generated with OpenSSL (`Rsa::generate`), exported as PKCS#8 and
//! loaded into rcgen (whose ring backend cannot generate RSA keys), which
//! self-signs each certificate with `sha256WithRSAEncryption`.
//!
//! Common profile (every [`Role`]):
//! - subject `CN`, `O=spid-harness TEST ONLY`, `C=IT`, `L=Roma`;
//! - random positive 128-bit serial number;
//! - validity from 2025-01-01T00:00:00Z to 2055-01-01T00:00:00Z (fixed, so
//!   regenerating only changes the keys, serials and signatures);
//! - `basicConstraints` `CA:FALSE`, not critical;
//! - `keyUsage` critical, `digitalSignature` + `nonRepudiation` only;
//! - `subjectKeyIdentifier` (SHA-1 of the public key, RFC 5280 method 1).
//!
//! [`Role::SpPublic`] additionally follows the SPID public-sector SP
//! certificate profile (AgID Avviso SPID n. 29 v3): the subject also has
//! `uri` (2.5.4.83) = entity ID and `organizationIdentifier` (2.5.4.97) =
//! `PA:IT-<IPA code>`, no personal attributes, and a non-critical
//! `certificatePolicies` extension with `agIDcert` (1.3.76.16.6, user notice
//! "agIDcert") and `spid-publicsector-SP` (1.3.76.16.4.2.1, user notice
//! "cert_SP_Pub").

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use rcgen::{
    date_time_ymd, CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber, PKCS_RSA_SHA256,
};

/// `organizationName` of every generated certificate.
const TEST_ORGANIZATION: &str = "spid-harness TEST ONLY";
/// `countryName` of every generated certificate.
const COUNTRY: &str = "IT";
/// `localityName` of every generated certificate.
const LOCALITY: &str = "Roma";

/// X.520 `uri` attribute (holds the SAML entity ID).
const OID_URI: &[u64] = &[2, 5, 4, 83];
/// X.520 `organizationIdentifier` attribute (`PA:IT-<IPA code>`).
const OID_ORGANIZATION_IDENTIFIER: &[u64] = &[2, 5, 4, 97];
/// `id-ce-basicConstraints`.
const OID_BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];
/// `id-ce-subjectKeyIdentifier`.
const OID_SUBJECT_KEY_IDENTIFIER: &[u64] = &[2, 5, 29, 14];
/// `id-ce-certificatePolicies`.
const OID_CERTIFICATE_POLICIES: &[u64] = &[2, 5, 29, 32];
/// `id-qt-unotice` policy qualifier.
const OID_QT_UNOTICE: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 2, 2];
/// AgID `agIDcert` certificate policy.
const OID_POLICY_AGID_CERT: &[u64] = &[1, 3, 76, 16, 6];
/// AgID `spid-publicsector-SP` certificate policy.
const OID_POLICY_SPID_PUBLIC_SP: &[u64] = &[1, 3, 76, 16, 4, 2, 1];
/// AgID `spid-privatesector-SP` certificate policy.
const OID_POLICY_SPID_PRIVATE_SP: &[u64] = &[1, 3, 76, 16, 4, 3, 1];

/// Certificate validity start: 2025-01-01 (year, month, day).
const NOT_BEFORE: (i32, u8, u8) = (2025, 1, 1);
/// Validity length in years.
const VALIDITY_YEARS: i32 = 30;

/// One test credential to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSpec {
    /// File stem: the files written are `<name>.key.pem`, `<name>.crt.pem`
    /// and `<name>.crt.der`. Must be non-empty and made of ASCII letters,
    /// digits, `-` and `_` only.
    pub name: &'static str,
    /// Subject `commonName`.
    pub common_name: String,
    /// Which certificate profile to apply.
    pub role: Role,
    /// SAML entity ID, written to the subject `uri` (2.5.4.83) attribute.
    /// Required for [`Role::Idp`] and [`Role::SpPublic`]; optional (empty
    /// means omitted) for [`Role::Foreign`].
    pub entity_id: String,
    /// RSA modulus size in bits; 2048..=8192 (the range rcgen's ring backend
    /// can sign with).
    pub bits: u32,
}

/// The profile a [`CertSpec`] is generated with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A test Identity Provider: subject CN, O, C, L and `uri` = entity ID.
    Idp,
    /// A public-sector Service Provider following the SPID SP certificate
    /// profile (Avviso 29 v3): subject CN, O, `uri` = entity ID,
    /// `organizationIdentifier` = `PA:IT-<ipa_code>`, C, L, plus the
    /// `certificatePolicies` extension (agIDcert + spid-publicsector-SP).
    SpPublic {
        /// The administration's IPA code (1 to 11 non-whitespace characters),
        /// e.g. `c_h501` for Roma Capitale.
        ipa_code: String,
    },
    /// A private-sector Service Provider following the SPID SP certificate
    /// profile (Avviso 29 v3): as [`Role::SpPublic`], with
    /// `organizationIdentifier` = `VATIT-<11 digits>` or `CF:IT-<fiscal code>` and the
    /// spid-privatesector-SP policy (1.3.76.16.4.3.1).
    SpPrivate {
        /// `VATIT-<partita IVA>` or `CF:IT-<codice fiscale>`.
        organization_identifier: String,
    },
    /// A key nobody trusts (an attacker's), for foreign-key / KeyInfo
    /// substitution cases: subject CN, O, C, L (and `uri` if the entity ID is
    /// non-empty).
    Foreign,
}

/// Writes `<name>.key.pem` (PKCS#8 PEM), `<name>.crt.pem` (PEM) and `<name>.crt.der` for each spec into `dir`. Validity: from 2025-01-01 for 30 years (fixed dates, so regeneration is reproducible apart from the keys).
///
/// `dir` is created if missing and existing files are overwritten. All specs
/// are validated (file stems unique and safe, key sizes, IPA codes, entity
/// IDs) before any key is generated or any file is written.
pub fn generate(dir: &Path, specs: &[CertSpec]) -> Result<()> {
    validate_specs(specs)?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for spec in specs {
        let (key_pem, cert_pem, cert_der) =
            generate_one(spec).with_context(|| format!("generating credential {:?}", spec.name))?;
        write(dir, &format!("{}.key.pem", spec.name), key_pem.as_bytes())?;
        write(dir, &format!("{}.crt.pem", spec.name), cert_pem.as_bytes())?;
        write(dir, &format!("{}.crt.der", spec.name), &cert_der)?;
    }
    Ok(())
}

/// The workspace's default set, all RSA-2048 to keep tests fast:
///
/// - `idp` ([`Role::Idp`]): CN "spid-harness test IdP", entity
///   `http://127.0.0.1/spid-idp`;
/// - `sp` ([`Role::SpPublic`], IPA code `c_h501`): CN "spid-harness test SP",
///   entity `http://127.0.0.1/spid-sp`;
/// - `foreign` ([`Role::Foreign`]): CN "spid-harness foreign (attacker) key",
///   entity `http://127.0.0.1/spid-foreign`.
///
/// The entity IDs are placeholders: the harness runs on ephemeral ports, so
/// the `uri` in a certificate need not (and does not) match the entity ID the
/// running IdP/SP actually publishes.
pub fn default_specs() -> Vec<CertSpec> {
    vec![
        CertSpec {
            name: "idp",
            common_name: "spid-harness test IdP".to_owned(),
            role: Role::Idp,
            entity_id: "http://127.0.0.1/spid-idp".to_owned(),
            bits: 2048,
        },
        CertSpec {
            name: "sp",
            common_name: "spid-harness test SP".to_owned(),
            role: Role::SpPublic {
                ipa_code: "c_h501".to_owned(),
            },
            entity_id: "http://127.0.0.1/spid-sp".to_owned(),
            bits: 2048,
        },
        CertSpec {
            name: "foreign",
            common_name: "spid-harness foreign (attacker) key".to_owned(),
            role: Role::Foreign,
            entity_id: "http://127.0.0.1/spid-foreign".to_owned(),
            bits: 2048,
        },
    ]
}

/// A fresh TEST-ONLY SP credential (RSA-2048, in memory) whose certificate follows the
/// Avviso 29 v3 profile for `kind` with `uri` = `entity_id`: what a running SP signs its
/// metadata with, since the committed `certs/sp.crt.pem` names a placeholder entity ID
/// (`http://127.0.0.1/spid-sp`) and the public-sector profile only.
pub fn sp_credential(
    entity_id: &str,
    kind: &spid_core::saml::metadata::SpKind,
) -> Result<spid_core::saml::dsig::Credential> {
    use spid_core::saml::metadata::SpKind;
    let role = match kind {
        SpKind::Public { ipa_code } => Role::SpPublic {
            ipa_code: ipa_code.clone(),
        },
        SpKind::Private {
            vat_number,
            fiscal_code,
            ..
        } => Role::SpPrivate {
            organization_identifier: match (vat_number, fiscal_code) {
                (Some(v), _) if v.starts_with("IT") => format!("VATIT-{}", &v[2..]),
                (_, Some(cf)) => format!("CF:IT-{cf}"),
                _ => bail!("a private SP certificate needs an Italian VAT number or a fiscal code"),
            },
        },
    };
    let spec = CertSpec {
        name: "sp",
        common_name: "spid-harness test SP".to_owned(),
        role,
        entity_id: entity_id.to_owned(),
        bits: 2048,
    };
    validate_specs(std::slice::from_ref(&spec))?;
    let (key_pem, cert_pem, _) = generate_one(&spec)?;
    Ok(spid_core::saml::dsig::Credential::from_pem(
        key_pem.as_bytes(),
        cert_pem.as_bytes(),
    )?)
}

/// Rejects specs that would produce unusable, clashing or unsafe files.
fn validate_specs(specs: &[CertSpec]) -> Result<()> {
    let mut names = HashSet::new();
    for spec in specs {
        ensure!(
            !spec.name.is_empty()
                && spec
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "invalid file stem {:?}: use ASCII letters, digits, '-' and '_' only",
            spec.name
        );
        ensure!(
            names.insert(spec.name),
            "duplicate file stem {:?}",
            spec.name
        );
        ensure!(
            (2048..=8192).contains(&spec.bits),
            "{}: RSA key size {} outside 2048..=8192",
            spec.name,
            spec.bits
        );
        ensure!(
            !spec.common_name.is_empty(),
            "{}: empty common name",
            spec.name
        );
        match &spec.role {
            Role::Idp => {
                ensure!(
                    !spec.entity_id.is_empty(),
                    "{}: an IdP needs an entity ID",
                    spec.name
                );
            }
            Role::SpPublic { ipa_code } => {
                ensure!(
                    !spec.entity_id.is_empty(),
                    "{}: an SP needs an entity ID",
                    spec.name
                );
                // Avviso 29 v3: organizationIdentifier matches ^PA:IT-\S{1,11}$
                ensure!(
                    (1..=11).contains(&ipa_code.chars().count())
                        && !ipa_code.chars().any(char::is_whitespace),
                    "{}: IPA code {:?} must be 1 to 11 non-whitespace characters",
                    spec.name,
                    ipa_code
                );
            }
            Role::SpPrivate {
                organization_identifier: id,
            } => {
                ensure!(
                    !spec.entity_id.is_empty(),
                    "{}: an SP needs an entity ID",
                    spec.name
                );
                let vat = id
                    .strip_prefix("VATIT-")
                    .is_some_and(|n| n.len() == 11 && n.chars().all(|c| c.is_ascii_digit()));
                let cf = id.strip_prefix("CF:IT-").is_some_and(|c| {
                    matches!(c.len(), 11 | 16) && c.chars().all(|c| c.is_ascii_alphanumeric())
                });
                ensure!(
                    vat || cf,
                    "{}: organizationIdentifier {:?} must be VATIT-<11 digits> or CF:IT-<fiscal code>",
                    spec.name,
                    id
                );
            }
            Role::Foreign => {}
        }
    }
    Ok(())
}

/// Generates one key and certificate: (PKCS#8 key PEM, certificate PEM,
/// certificate DER).
fn generate_one(spec: &CertSpec) -> Result<(String, String, Vec<u8>)> {
    let rsa = Rsa::generate(spec.bits).context("generating RSA key")?;
    let ski = sha1_key_identifier(&rsa.public_key_to_der_pkcs1()?);
    let pkey = PKey::from_rsa(rsa)?;
    let pkcs8_der = pkey.private_key_to_pkcs8()?;
    let key_pem = String::from_utf8(pkey.private_key_to_pem_pkcs8()?)?;

    let key_pair =
        KeyPair::try_from(pkcs8_der.as_slice()).context("loading the PKCS#8 key into rcgen")?;
    if key_pair.algorithm() != &PKCS_RSA_SHA256 {
        bail!("rcgen picked an unexpected signature algorithm for an RSA key");
    }

    let params = certificate_params(spec, ski)?;
    let cert = params
        .self_signed(&key_pair)
        .context("self-signing the certificate")?;
    Ok((key_pem, cert.pem(), cert.der().to_vec()))
}

/// The rcgen parameters for `spec`; `ski` is the subjectKeyIdentifier value.
fn certificate_params(spec: &CertSpec, ski: Vec<u8>) -> Result<CertificateParams> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, spec.common_name.as_str());
    dn.push(DnType::OrganizationName, TEST_ORGANIZATION);
    let include_uri = match spec.role {
        Role::Idp | Role::SpPublic { .. } | Role::SpPrivate { .. } => true,
        Role::Foreign => !spec.entity_id.is_empty(),
    };
    if include_uri {
        dn.push(
            DnType::CustomDnType(OID_URI.to_vec()),
            spec.entity_id.as_str(),
        );
    }
    if let Role::SpPublic { ipa_code } = &spec.role {
        dn.push(
            DnType::CustomDnType(OID_ORGANIZATION_IDENTIFIER.to_vec()),
            format!("PA:IT-{ipa_code}"),
        );
    }
    if let Role::SpPrivate {
        organization_identifier,
    } = &spec.role
    {
        dn.push(
            DnType::CustomDnType(OID_ORGANIZATION_IDENTIFIER.to_vec()),
            organization_identifier.as_str(),
        );
    }
    // countryName is a PrintableString (RFC 5280, X.520).
    dn.push(
        DnType::CountryName,
        DnValue::PrintableString(COUNTRY.try_into()?),
    );
    dn.push(DnType::LocalityName, LOCALITY);

    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.not_before = date_time_ymd(NOT_BEFORE.0, NOT_BEFORE.1, NOT_BEFORE.2);
    params.not_after = date_time_ymd(NOT_BEFORE.0 + VALIDITY_YEARS, NOT_BEFORE.1, NOT_BEFORE.2);
    params.serial_number = Some(random_serial()?);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment, // a.k.a. nonRepudiation
    ];
    // rcgen always marks its own basicConstraints critical; the SPID profile
    // wants it non-critical, so write it as a custom extension instead.
    // (NoCa also drops rcgen's subjectKeyIdentifier, re-added below.)
    params.is_ca = IsCa::NoCa;
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            OID_BASIC_CONSTRAINTS,
            basic_constraints_end_entity_der(),
        ));
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            OID_SUBJECT_KEY_IDENTIFIER,
            der_tlv(0x04, &ski),
        ));
    if let Role::SpPublic { .. } = spec.role {
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                OID_CERTIFICATE_POLICIES,
                certificate_policies_der(&[
                    (OID_POLICY_AGID_CERT, "agIDcert"),
                    (OID_POLICY_SPID_PUBLIC_SP, "cert_SP_Pub"),
                ]),
            ));
    }
    if let Role::SpPrivate { .. } = spec.role {
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                OID_CERTIFICATE_POLICIES,
                certificate_policies_der(&[
                    (OID_POLICY_AGID_CERT, "agIDcert"),
                    (OID_POLICY_SPID_PRIVATE_SP, "cert_SP_Priv"),
                ]),
            ));
    }
    Ok(params)
}

/// A random positive 16-byte serial number with its top byte in 0x40..=0x7f,
/// so the DER INTEGER is always exactly 16 bytes long.
fn random_serial() -> Result<SerialNumber> {
    let mut serial = [0u8; 16];
    openssl::rand::rand_bytes(&mut serial)?;
    serial[0] = (serial[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&serial))
}

/// RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bit string
/// (the PKCS#1 RSAPublicKey DER).
fn sha1_key_identifier(rsa_public_key_der: &[u8]) -> Vec<u8> {
    openssl::sha::sha1(rsa_public_key_der).to_vec()
}

/// `BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, ... }` for an
/// end entity: the empty SEQUENCE (DER omits the default `cA FALSE`).
fn basic_constraints_end_entity_der() -> Vec<u8> {
    der_tlv(0x30, &[])
}

/// DER `certificatePolicies` value: a SEQUENCE OF PolicyInformation, each
/// `{ policyIdentifier, policyQualifiers { id-qt-unotice, UserNotice {
/// explicitText UTF8String } } }`.
fn certificate_policies_der(policies: &[(&[u64], &str)]) -> Vec<u8> {
    let mut infos = Vec::new();
    for (oid, explicit_text) in policies {
        let user_notice = der_tlv(0x30, &der_tlv(0x0c, explicit_text.as_bytes()));
        let qualifier = der_tlv(0x30, &[der_oid(OID_QT_UNOTICE), user_notice].concat());
        let qualifiers = der_tlv(0x30, &qualifier);
        infos.extend(der_tlv(0x30, &[der_oid(oid), qualifiers].concat()));
    }
    der_tlv(0x30, &infos)
}

/// DER OBJECT IDENTIFIER (tag, length and base-128 arcs).
fn der_oid(arcs: &[u64]) -> Vec<u8> {
    assert!(
        arcs.len() >= 2 && arcs[0] <= 2,
        "OID needs at least two arcs"
    );
    let mut content = Vec::new();
    let mut push_arc = |mut value: u64| {
        let mut base128 = vec![(value & 0x7f) as u8];
        value >>= 7;
        while value > 0 {
            base128.push((value & 0x7f) as u8 | 0x80);
            value >>= 7;
        }
        content.extend(base128.iter().rev());
    };
    push_arc(arcs[0] * 40 + arcs[1]);
    for &arc in &arcs[2..] {
        push_arc(arc);
    }
    der_tlv(0x06, &content)
}

/// DER tag-length-value with a single-byte tag and definite length.
fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// Writes `contents` to `dir/file`.
fn write(dir: &Path, file: &str, contents: &[u8]) -> Result<()> {
    let path = dir.join(file);
    fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::{Asn1Object, Asn1Time};
    use openssl::nid::Nid;
    use openssl::x509::X509;
    use std::path::PathBuf;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let nanos = rand::random::<u64>();
            let path = std::env::temp_dir().join(format!(
                "spid-harness-certs-{tag}-{}-{nanos}",
                std::process::id()
            ));
            fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// The content octets (no tag/length) of an OID, as OpenSSL's
    /// `OBJ_get0_data` returns them.
    fn oid_content(arcs: &[u64]) -> Vec<u8> {
        der_oid(arcs)[2..].to_vec()
    }

    /// Subject attributes as (OID content octets, UTF-8 value), in order.
    fn subject_entries(cert: &X509) -> Vec<(Vec<u8>, String)> {
        cert.subject_name()
            .entries()
            .map(|e| {
                // Asn1ObjectRef has no accessor for the OID bytes; round-trip
                // its text form (a name, or dotted if OpenSSL has none).
                let oid = Asn1Object::from_str(&e.object().to_string()).unwrap();
                (oid.as_slice().to_vec(), e.data().to_string().unwrap())
            })
            .collect()
    }

    fn subject_value(cert: &X509, arcs: &[u64]) -> Option<String> {
        let want = oid_content(arcs);
        subject_entries(cert)
            .into_iter()
            .find(|(oid, _)| *oid == want)
            .map(|(_, v)| v)
    }

    #[test]
    fn der_encoders_known_answers() {
        // 1.3.76.16.6 -> 06 04 2B 4C 10 06
        assert_eq!(
            der_oid(&[1, 3, 76, 16, 6]),
            [0x06, 0x04, 0x2b, 0x4c, 0x10, 0x06]
        );
        // 1.2.840.113549 -> 06 06 2A 86 48 86 F7 0D
        assert_eq!(
            der_oid(&[1, 2, 840, 113549]),
            [0x06, 0x06, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]
        );
        assert_eq!(der_tlv(0x04, &[0u8; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(der_tlv(0x04, &[0u8; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(basic_constraints_end_entity_der(), [0x30, 0x00]);
        let single = certificate_policies_der(&[(&[1, 3, 76, 16, 6], "agIDcert")]);
        let mut expected = vec![0x30, 0x22, 0x30, 0x20, 0x06, 0x04, 0x2b, 0x4c, 0x10, 0x06];
        expected.extend([0x30, 0x18, 0x30, 0x16, 0x06, 0x08]);
        expected.extend([0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x02, 0x02]);
        expected.extend([0x30, 0x0a, 0x0c, 0x08]);
        expected.extend(b"agIDcert");
        assert_eq!(single, expected);
    }

    #[test]
    fn generates_default_set_with_expected_profiles() {
        let tmp = TempDir::new("default");
        // A nested, not-yet-existing directory is created.
        let dir = tmp.0.join("certs");
        generate(&dir, &default_specs()).unwrap();

        let min_not_after = Asn1Time::from_str("20540101000000Z").unwrap();
        let mut moduli = HashSet::new();
        for spec in default_specs() {
            let key_pem = fs::read(dir.join(format!("{}.key.pem", spec.name))).unwrap();
            let cert_pem = fs::read(dir.join(format!("{}.crt.pem", spec.name))).unwrap();
            let cert_der = fs::read(dir.join(format!("{}.crt.der", spec.name))).unwrap();

            // Key: unencrypted PKCS#8 PEM, RSA-2048.
            assert!(key_pem.starts_with(b"-----BEGIN PRIVATE KEY-----"));
            let key = PKey::private_key_from_pem(&key_pem).unwrap();
            assert_eq!(key.bits(), 2048, "{}", spec.name);
            assert!(
                moduli.insert(key.rsa().unwrap().n().to_vec()),
                "keys must differ"
            );

            // Certificate: PEM and DER are the same certificate, for this key.
            let cert = X509::from_pem(&cert_pem).unwrap();
            assert_eq!(cert.to_der().unwrap(), cert_der);
            assert_eq!(
                X509::from_der(&cert_der).unwrap().to_der().unwrap(),
                cert_der
            );
            let public = cert.public_key().unwrap();
            assert_eq!(public.bits(), 2048);
            assert!(public.public_eq(&key));
            assert!(cert.verify(&public).unwrap(), "self-signature must verify");
            assert_eq!(
                cert.signature_algorithm().object().nid(),
                Nid::SHA256WITHRSAENCRYPTION
            );

            // Validity: 2025-01-01 .. 2055-01-01.
            assert_eq!(cert.not_before().to_string(), "Jan  1 00:00:00 2025 GMT");
            assert_eq!(cert.not_after().to_string(), "Jan  1 00:00:00 2055 GMT");
            assert!(cert.not_after() >= min_not_after);

            // Serial: positive, 16 bytes.
            let serial = cert.serial_number().to_bn().unwrap();
            assert!(!serial.is_negative());
            assert_eq!(serial.num_bytes(), 16);

            // Common subject attributes.
            assert_eq!(
                subject_value(&cert, &[2, 5, 4, 3]).as_deref(),
                Some(spec.common_name.as_str())
            );
            assert_eq!(
                subject_value(&cert, &[2, 5, 4, 10]).as_deref(),
                Some(TEST_ORGANIZATION)
            );
            assert_eq!(subject_value(&cert, &[2, 5, 4, 6]).as_deref(), Some("IT"));
            assert_eq!(subject_value(&cert, &[2, 5, 4, 7]).as_deref(), Some("Roma"));
            assert_eq!(
                cert.subject_name().to_der().unwrap(),
                cert.issuer_name().to_der().unwrap()
            );

            // Extensions, as `openssl x509 -text` prints them.
            let text = String::from_utf8(cert.to_text().unwrap()).unwrap();
            assert!(text.contains("X509v3 Key Usage: critical"), "{text}");
            assert!(
                text.contains("Digital Signature, Non Repudiation\n"),
                "{text}"
            );
            assert!(
                text.contains("X509v3 Basic Constraints: \n"),
                "not critical: {text}"
            );
            assert!(text.contains("CA:FALSE"), "{text}");
            assert!(text.contains("X509v3 Subject Key Identifier"), "{text}");
            assert!(!text.contains("Extended Key Usage"), "{text}");

            let policies_ext_oid = der_oid(OID_CERTIFICATE_POLICIES);
            let has_policies = cert_der
                .windows(policies_ext_oid.len())
                .any(|w| w == policies_ext_oid);
            let entity_id = subject_value(&cert, OID_URI);
            let org_id = subject_value(&cert, OID_ORGANIZATION_IDENTIFIER);
            match &spec.role {
                Role::SpPublic { ipa_code } => {
                    assert_eq!(entity_id.as_deref(), Some("http://127.0.0.1/spid-sp"));
                    assert_eq!(org_id, Some(format!("PA:IT-{ipa_code}")));
                    assert_eq!(org_id.as_deref(), Some("PA:IT-c_h501"));
                    // Exactly CN, O, uri, organizationIdentifier, C, L: no
                    // personal attributes.
                    let oids: Vec<Vec<u8>> =
                        subject_entries(&cert).into_iter().map(|(o, _)| o).collect();
                    let expected: Vec<Vec<u8>> = [
                        &[2, 5, 4, 3][..],
                        &[2, 5, 4, 10],
                        OID_URI,
                        OID_ORGANIZATION_IDENTIFIER,
                        &[2, 5, 4, 6],
                        &[2, 5, 4, 7],
                    ]
                    .iter()
                    .map(|a| oid_content(a))
                    .collect();
                    assert_eq!(oids, expected);

                    // certificatePolicies: in the DER, exactly as encoded,
                    // non-critical (no BOOLEAN between OID and OCTET STRING)…
                    assert!(has_policies);
                    let value = certificate_policies_der(&[
                        (OID_POLICY_AGID_CERT, "agIDcert"),
                        (OID_POLICY_SPID_PUBLIC_SP, "cert_SP_Pub"),
                    ]);
                    let ext = der_tlv(0x30, &[policies_ext_oid, der_tlv(0x04, &value)].concat());
                    assert!(cert_der.windows(ext.len()).any(|w| w == ext));
                    // …and as OpenSSL reads it.
                    assert!(text.contains("X509v3 Certificate Policies: \n"), "{text}");
                    assert!(text.contains("Policy: 1.3.76.16.6\n"), "{text}");
                    assert!(text.contains("Policy: 1.3.76.16.4.2.1\n"), "{text}");
                    assert!(text.contains("Explicit Text: agIDcert\n"), "{text}");
                    assert!(text.contains("Explicit Text: cert_SP_Pub\n"), "{text}");
                }
                Role::Idp => {
                    assert_eq!(entity_id.as_deref(), Some("http://127.0.0.1/spid-idp"));
                    assert_eq!(org_id, None);
                    assert!(!has_policies);
                }
                Role::Foreign => {
                    assert_eq!(entity_id.as_deref(), Some("http://127.0.0.1/spid-foreign"));
                    assert_eq!(org_id, None);
                    assert!(!has_policies);
                }
                Role::SpPrivate { .. } => unreachable!("not in the default set"),
            }
        }
    }

    #[test]
    fn regenerating_changes_keys_but_not_dates() {
        let tmp = TempDir::new("regen");
        let specs = vec![CertSpec {
            name: "only",
            common_name: "regen TEST ONLY".to_owned(),
            role: Role::Foreign,
            entity_id: String::new(),
            bits: 2048,
        }];
        generate(&tmp.0, &specs).unwrap();
        let first = X509::from_der(&fs::read(tmp.0.join("only.crt.der")).unwrap()).unwrap();
        generate(&tmp.0, &specs).unwrap();
        let second = X509::from_der(&fs::read(tmp.0.join("only.crt.der")).unwrap()).unwrap();
        assert!(!first
            .public_key()
            .unwrap()
            .public_eq(&second.public_key().unwrap()));
        assert_eq!(
            first.not_before().to_string(),
            second.not_before().to_string()
        );
        assert_eq!(
            first.not_after().to_string(),
            second.not_after().to_string()
        );
        // An empty entity ID on a foreign key omits the uri attribute.
        assert_eq!(subject_value(&second, OID_URI), None);
    }

    #[test]
    fn rejects_bad_specs_before_writing_anything() {
        let tmp = TempDir::new("bad");
        let good = default_specs();
        let bad = |edit: &dyn Fn(&mut Vec<CertSpec>)| {
            let mut specs = good.clone();
            edit(&mut specs);
            specs
        };
        let cases = [
            bad(&|s| s[0].bits = 1024),
            bad(&|s| s[0].name = "../escape"),
            bad(&|s| s[0].name = ""),
            bad(&|s| s[2].name = "idp"),
            bad(&|s| s[0].entity_id.clear()),
            bad(&|s| s[1].common_name.clear()),
            bad(&|s| {
                s[1].role = Role::SpPublic {
                    ipa_code: "twelve_chars".to_owned(),
                }
            }),
            bad(&|s| {
                s[1].role = Role::SpPublic {
                    ipa_code: "c h501".to_owned(),
                }
            }),
        ];
        for specs in cases {
            assert!(generate(&tmp.0, &specs).is_err(), "{specs:?}");
        }
        assert_eq!(fs::read_dir(&tmp.0).unwrap().count(), 0);
    }
}
