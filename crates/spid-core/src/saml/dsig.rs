//! Enveloped XML signatures (RSA-SHA256, exclusive c14n, SHA-256 digest) on xmlsec through samael.
//! Signing can use other algorithms ([`Algorithms`]) so the fake IdP can sign genuinely with what
//! SPID forbids (rsa-sha1, a sha1 digest); verification accepts only [`ALLOWED`].
//!
//! All signing and verification goes through this module so the backend can be swapped; libxmlsec
//! keeps global state, so [`init`] warms it up once per process before any concurrent use.

use super::ns;
use super::xml::{Element, Node};
use base64::Engine as _;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use samael::crypto::{AllowedSignatureAlgorithm, CertificateDer, CryptoProvider, ReduceMode};
use std::path::Path;
use std::sync::Once;

/// Signature algorithms SPID accepts (SHA-256 or stronger; never SHA-1).
pub const ALLOWED: &[AllowedSignatureAlgorithm] = &[
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
];

/// A `ds:SignatureMethod` the signer can use.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureMethod {
    /// RSA with SHA-1 (forbidden by SPID: for faults only).
    RsaSha1,
    /// RSA with SHA-256.
    #[default]
    RsaSha256,
    /// RSA with SHA-384.
    RsaSha384,
    /// RSA with SHA-512.
    RsaSha512,
}

impl SignatureMethod {
    /// The algorithm URI.
    pub fn uri(self) -> &'static str {
        match self {
            SignatureMethod::RsaSha1 => "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
            SignatureMethod::RsaSha256 => ns::RSA_SHA256,
            SignatureMethod::RsaSha384 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
            SignatureMethod::RsaSha512 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        }
    }
}

/// A `ds:DigestMethod` the signer can use.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum DigestMethod {
    /// SHA-1 (forbidden by SPID: for faults only).
    Sha1,
    /// SHA-256.
    #[default]
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl DigestMethod {
    /// The algorithm URI.
    pub fn uri(self) -> &'static str {
        match self {
            DigestMethod::Sha1 => "http://www.w3.org/2000/09/xmldsig#sha1",
            DigestMethod::Sha256 => ns::DIGEST_SHA256,
            DigestMethod::Sha384 => "http://www.w3.org/2001/04/xmldsig-more#sha384",
            DigestMethod::Sha512 => "http://www.w3.org/2001/04/xmlenc#sha512",
        }
    }
}

/// The algorithms a signature template names (xmlsec signs with what the template says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Algorithms {
    /// SignatureMethod (default RSA-SHA256).
    pub signature: SignatureMethod,
    /// DigestMethod of the one Reference (default SHA-256).
    pub digest: DigestMethod,
}

/// Errors from signing or verifying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsigError {
    /// Key or certificate could not be loaded.
    #[error("key material: {0}")]
    Key(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
    /// No certificate to verify with (never skip verification).
    #[error("no trusted certificate")]
    NoTrustedCertificate,
    /// A signature did not verify with any trusted certificate, or nothing was signed.
    #[error("signature invalid")]
    Invalid,
}

/// A private key with its certificate.
#[derive(Clone)]
pub struct Credential {
    /// The private key.
    pub key: PKey<Private>,
    /// The key as PKCS#8 DER (what xmlsec loads).
    pub key_der: Vec<u8>,
    /// The certificate.
    pub cert: X509,
    /// The certificate as DER.
    pub cert_der: Vec<u8>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("subject", &self.cert.subject_name())
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// Loads a PEM private key (PKCS#8 or PKCS#1) and a PEM certificate.
    pub fn from_pem(key_pem: &[u8], cert_pem: &[u8]) -> Result<Self, DsigError> {
        let key = PKey::private_key_from_pem(key_pem).map_err(|e| DsigError::Key(e.to_string()))?;
        let cert = X509::from_pem(cert_pem).map_err(|e| DsigError::Key(e.to_string()))?;
        let key_der = key
            .private_key_to_pkcs8()
            .map_err(|e| DsigError::Key(e.to_string()))?;
        let cert_der = cert.to_der().map_err(|e| DsigError::Key(e.to_string()))?;
        Ok(Credential {
            key,
            key_der,
            cert,
            cert_der,
        })
    }

    /// Loads `<dir>/<stem>.key.pem` and `<dir>/<stem>.crt.pem`.
    pub fn load(dir: &Path, stem: &str) -> Result<Self, DsigError> {
        let read = |p: std::path::PathBuf| {
            std::fs::read(&p).map_err(|e| DsigError::Key(format!("{}: {e}", p.display())))
        };
        Self::from_pem(
            &read(dir.join(format!("{stem}.key.pem")))?,
            &read(dir.join(format!("{stem}.crt.pem")))?,
        )
    }

    /// The certificate as base64 DER (for KeyInfo and metadata).
    pub fn cert_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.cert_der)
    }
}

static INIT: Once = Once::new();

/// Initialises libxml2/xmlsec once, on the calling thread, and silences xmlsec's stderr
/// reports (failures are returned as errors instead). Call before spawning workers; every
/// function here calls it too.
pub fn init() {
    INIT.call_once(|| {
        // One throwaway signature forces samael's lazy global initialisation.
        if let Ok(rsa) = openssl::rsa::Rsa::generate(2048) {
            if let Ok(key) = PKey::from_rsa(rsa) {
                if let Ok(der) = key.private_key_to_pkcs8() {
                    let mut el = Element::new("r", None).with_attr("ID", "_init");
                    insert_template(&mut el, None);
                    let _ = samael::crypto::Crypto::sign_xml(el.to_xml(), &der);
                }
            }
        }
        // SAFETY: the symbol is exported by libxmlsec1, which samael links; a null callback
        // would restore the default, so we pass a no-op with the documented signature.
        #[allow(unsafe_code)]
        unsafe {
            xmlSecErrorsSetCallback(Some(quiet))
        };
    });
}

type XmlSecErrorsCallback = unsafe extern "C" fn(
    *const std::ffi::c_char,
    std::ffi::c_int,
    *const std::ffi::c_char,
    *const std::ffi::c_char,
    *const std::ffi::c_char,
    std::ffi::c_int,
    *const std::ffi::c_char,
);

#[allow(unsafe_code)] // the one FFI declaration; see `init`
unsafe extern "C" {
    fn xmlSecErrorsSetCallback(cb: Option<XmlSecErrorsCallback>);
}

#[allow(unsafe_code)] // called by libxmlsec1 only; does nothing
unsafe extern "C" fn quiet(
    _: *const std::ffi::c_char,
    _: std::ffi::c_int,
    _: *const std::ffi::c_char,
    _: *const std::ffi::c_char,
    _: *const std::ffi::c_char,
    _: std::ffi::c_int,
    _: *const std::ffi::c_char,
) {
}

/// A `ds:Signature` template referencing `#ref_id`: exc-c14n, RSA-SHA256, SHA-256 digest,
/// enveloped + exc-c14n transforms, and the certificate in KeyInfo when given.
pub fn template(ref_id: &str, cert_b64: Option<&str>) -> Element {
    template_with(ref_id, cert_b64, Algorithms::default())
}

/// [`template`] naming `algs` as SignatureMethod and DigestMethod.
pub fn template_with(ref_id: &str, cert_b64: Option<&str>, algs: Algorithms) -> Element {
    let alg = |q: &str, a: &str| Element::new(q, Some(ns::DS)).with_attr("Algorithm", a);
    let signed_info = Element::new("ds:SignedInfo", Some(ns::DS))
        .with_child(alg("ds:CanonicalizationMethod", ns::EXC_C14N))
        .with_child(alg("ds:SignatureMethod", algs.signature.uri()))
        .with_child(
            Element::new("ds:Reference", Some(ns::DS))
                .with_attr("URI", format!("#{ref_id}"))
                .with_child(
                    Element::new("ds:Transforms", Some(ns::DS))
                        .with_child(alg("ds:Transform", ns::ENVELOPED))
                        .with_child(alg("ds:Transform", ns::EXC_C14N)),
                )
                .with_child(alg("ds:DigestMethod", algs.digest.uri()))
                .with_child(Element::new("ds:DigestValue", Some(ns::DS))),
        );
    let mut sig = Element::new("ds:Signature", Some(ns::DS))
        .with_attr("xmlns:ds", ns::DS)
        .with_child(signed_info)
        .with_child(Element::new("ds:SignatureValue", Some(ns::DS)));
    if let Some(c) = cert_b64 {
        sig = sig.with_child(
            Element::new("ds:KeyInfo", Some(ns::DS)).with_child(
                Element::new("ds:X509Data", Some(ns::DS))
                    .with_child(Element::new("ds:X509Certificate", Some(ns::DS)).with_text(c)),
            ),
        );
    }
    sig
}

/// Inserts a signature template into `target` referencing its `ID`, right after its `Issuer`
/// child (where SAML and SPID place it), or first when there is no Issuer.
pub fn insert_template(target: &mut Element, cert_b64: Option<&str>) {
    insert_template_with(target, cert_b64, Algorithms::default());
}

/// [`insert_template`] naming `algs`.
pub fn insert_template_with(target: &mut Element, cert_b64: Option<&str>, algs: Algorithms) {
    let id = target.attr("ID").unwrap_or_default().to_string();
    let sig = template_with(&id, cert_b64, algs);
    let pos = target
        .children
        .iter()
        .position(|n| matches!(n, Node::Element(e) if e.local() == "Issuer"))
        .map(|i| i + 1)
        .unwrap_or(0);
    target.children.insert(pos, Node::Element(sig));
}

/// Signs the first empty signature template in `xml` with `key_der` (PKCS#8 DER).
pub fn sign_first_template(xml: &str, key_der: &[u8]) -> Result<String, DsigError> {
    init();
    samael::crypto::Crypto::sign_xml(xml, key_der).map_err(|e| DsigError::Sign(e.to_string()))
}

/// Inserts a template into the root element and signs it: an enveloped signature over the
/// whole document (metadata, AuthnRequest).
pub fn sign_root(mut root: Element, cred: &Credential) -> Result<String, DsigError> {
    insert_template(&mut root, Some(&cred.cert_base64()));
    sign_first_template(&root.to_xml(), &cred.key_der)
}

/// Verifies every signature in `xml` with the trusted certificates (DER) and returns the
/// document reduced to what the signatures cover. KeyInfo is ignored: keys come only from
/// `trusted`. An empty `trusted` is an error, never a skipped check.
pub fn verify_and_reduce(xml: &str, trusted: &[Vec<u8>]) -> Result<String, DsigError> {
    if trusted.is_empty() {
        return Err(DsigError::NoTrustedCertificate);
    }
    init();
    let certs: Vec<CertificateDer> = trusted.iter().cloned().map(CertificateDer::from).collect();
    samael::crypto::Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        &certs,
        ReduceMode::ValidateAndMarkNoAncestors,
        Some(ALLOWED),
    )
    .map_err(|_| DsigError::Invalid)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::saml::xml::{parse, Limits};

    pub(crate) fn test_credential(cn: &str) -> Credential {
        use openssl::asn1::Asn1Time;
        use openssl::hash::MessageDigest;
        use openssl::x509::{X509NameBuilder, X509};
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let cert = b.build();
        Credential::from_pem(
            &key.private_key_to_pem_pkcs8().unwrap(),
            &cert.to_pem().unwrap(),
        )
        .unwrap()
    }

    fn doc() -> Element {
        Element::new("r:Doc", Some("urn:r"))
            .with_attr("xmlns:r", "urn:r")
            .with_attr("ID", "_d1")
            .with_child(Element::new("r:Issuer", Some("urn:r")).with_text("me"))
            .with_child(Element::new("r:Value", Some("urn:r")).with_text("42"))
    }

    #[test]
    fn sign_and_verify() {
        let cred = test_credential("a");
        let signed = sign_root(doc(), &cred).unwrap();
        let reduced = verify_and_reduce(&signed, std::slice::from_ref(&cred.cert_der)).unwrap();
        let el = parse(&reduced, &Limits::default()).unwrap();
        assert_eq!(el.child("urn:r", "Value").unwrap().text(), "42");
    }

    #[test]
    fn tampered_digest_is_invalid() {
        let cred = test_credential("a");
        let signed = sign_root(doc(), &cred).unwrap();
        let tampered = signed.replace(">42<", ">43<");
        assert_ne!(signed, tampered);
        assert_eq!(
            verify_and_reduce(&tampered, std::slice::from_ref(&cred.cert_der)),
            Err(DsigError::Invalid)
        );
    }

    #[test]
    fn foreign_key_is_invalid() {
        let cred = test_credential("a");
        let other = test_credential("b");
        let signed = sign_root(doc(), &other).unwrap();
        assert_eq!(
            verify_and_reduce(&signed, std::slice::from_ref(&cred.cert_der)),
            Err(DsigError::Invalid)
        );
    }

    #[test]
    fn key_only_in_keyinfo_is_not_trusted() {
        // Signed by an attacker whose certificate travels in KeyInfo: with no trusted
        // certificate there is nothing to verify against, and with ours it fails.
        let attacker = test_credential("attacker");
        let signed = sign_root(doc(), &attacker).unwrap();
        assert!(signed.contains(&attacker.cert_base64()[..40]));
        assert_eq!(
            verify_and_reduce(&signed, &[]),
            Err(DsigError::NoTrustedCertificate)
        );
        let ours = test_credential("ours");
        assert_eq!(
            verify_and_reduce(&signed, std::slice::from_ref(&ours.cert_der)),
            Err(DsigError::Invalid)
        );
    }

    #[test]
    fn signs_with_the_algorithms_asked() {
        let cred = test_credential("a");
        let trusted = std::slice::from_ref(&cred.cert_der);
        let sign = |algs: Algorithms| {
            let mut root = doc();
            insert_template_with(&mut root, Some(&cred.cert_base64()), algs);
            let signed = sign_first_template(&root.to_xml(), &cred.key_der).unwrap();
            assert!(signed.contains(algs.signature.uri()), "{signed}");
            assert!(signed.contains(algs.digest.uri()), "{signed}");
            signed
        };
        // SHA-512 is allowed: the signature verifies.
        let strong = sign(Algorithms {
            signature: SignatureMethod::RsaSha512,
            digest: DigestMethod::Sha512,
        });
        assert!(verify_and_reduce(&strong, trusted).is_ok());
        // A genuine rsa-sha1 signature is refused by the allow-list, though it is valid.
        let sha1 = sign(Algorithms {
            signature: SignatureMethod::RsaSha1,
            digest: DigestMethod::Sha256,
        });
        assert_eq!(verify_and_reduce(&sha1, trusted), Err(DsigError::Invalid));
        assert_eq!(Algorithms::default().signature.uri(), ns::RSA_SHA256);
        assert_eq!(Algorithms::default().digest.uri(), ns::DIGEST_SHA256);
    }

    #[test]
    fn unsigned_is_invalid() {
        let cred = test_credential("a");
        assert_eq!(
            verify_and_reduce(&doc().to_xml(), std::slice::from_ref(&cred.cert_der)),
            Err(DsigError::Invalid)
        );
    }
}
