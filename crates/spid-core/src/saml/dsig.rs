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
        let (key, key_der) = match rsa_pkcs8_pem(key_pem) {
            Some(k) => k,
            None => {
                let key = PKey::private_key_from_pem(key_pem)
                    .map_err(|e| DsigError::Key(e.to_string()))?;
                let der = key
                    .private_key_to_pkcs8()
                    .map_err(|e| DsigError::Key(e.to_string()))?;
                (key, der)
            }
        };
        let cert = X509::from_pem(cert_pem).map_err(|e| DsigError::Key(e.to_string()))?;
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

/// An RSA key in PKCS#8 PEM (`PRIVATE KEY`), with its DER: the PKCS#8 wrapping read by the
/// pkcs8 crate, the RSA key by OpenSSL's own DER reader. OpenSSL 3's generic PEM reader sets up
/// every provider's decoders for each key (and its PKCS#8 writer as many encoders), several
/// milliseconds a key at every start. `None` for anything else (PKCS#1, encrypted, EC,
/// unusual PEM): the caller reads it the generic way.
fn rsa_pkcs8_pem(pem: &[u8]) -> Option<(PKey<openssl::pkey::Private>, Vec<u8>)> {
    use pkcs8::der::Decode;
    const RSA_ENCRYPTION: pkcs8::ObjectIdentifier =
        pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    let text = std::str::from_utf8(pem).ok()?.trim();
    let (label, der) = pkcs8::der::pem::decode_vec(text.as_bytes()).ok()?;
    if label != "PRIVATE KEY" {
        return None;
    }
    let info = pkcs8::PrivateKeyInfo::from_der(&der).ok()?;
    if info.algorithm.oid != RSA_ENCRYPTION {
        return None;
    }
    let rsa = openssl::rsa::Rsa::private_key_from_der(info.private_key).ok()?;
    let key = PKey::from_rsa(rsa).ok()?;
    Some((key, der))
}

static INIT: Once = Once::new();

/// A throwaway RSA-512 key (PKCS#8 DER, base64), used only by [`init`] to sign one dummy
/// document: it signs nothing anybody verifies, and was generated for this purpose only.
const INIT_KEY_PKCS8: &str = concat!(
    "MIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEAvkAGy8a8BKgCC18EriN0wPJSptJ2WE0hy1xs+d5yXj",
    "odt00ndH6Potl4V3HaUcmhyGKo/X8Z/lcrW7BV6CpfYQIDAQABAkBi95ORdbRhB7TojWk13SPjKytrtJfzn0wxKcdW",
    "xCzibptgE0Nsc7fVfphk35da/8hjaXX8iQGSj0TcsA8RcGlxAiEA3wj20t9HYeTuQNlBuqeQYO88/c/alnmczjbScs",
    "Pq6sMCIQDaXpIi9wU53hHMoKPKw0AbMEx+xQDjyc4pgwYbmUYDCwIhANkDx+Z3CuXd81V2D9ampH0tS5NLY812l3Sv",
    "MyYoK7QxAiBKvy5km4uFaFdNZPtL75Ok+t5kUkjgr/ZKzVes4MVPSwIgOrj6P+US+gK6teYemk7ogR/zkUi5Tx+ND8",
    "fL7MTV99M=",
);

/// Initialises libxml2/xmlsec once, on the calling thread, and silences xmlsec's stderr
/// reports (failures are returned as errors instead). Call before spawning workers; every
/// function here calls it too.
pub fn init() {
    INIT.call_once(|| {
        // One throwaway signature forces samael's lazy global initialisation (which resets
        // xmlsec's error callback, hence a real key): with a fixed throwaway key, where a
        // generated 2048-bit one cost from 0.1 s to over a second of CPU.
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(INIT_KEY_PKCS8) {
            let mut el = Element::new("r", None).with_attr("ID", "_init");
            insert_template(&mut el, None);
            let _ = samael::crypto::Crypto::sign_xml(el.to_xml(), &der);
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
    insert_template_at(target, cert_b64, algs);
}

/// [`insert_template_with`], returning the template's index among `target.children`.
pub(crate) fn insert_template_at(
    target: &mut Element,
    cert_b64: Option<&str>,
    algs: Algorithms,
) -> usize {
    let id = target.attr("ID").unwrap_or_default().to_string();
    let sig = template_with(&id, cert_b64, algs);
    let pos = target
        .children
        .iter()
        .position(|n| matches!(n, Node::Element(e) if e.local() == "Issuer"))
        .map(|i| i + 1)
        .unwrap_or(0);
    target.children.insert(pos, Node::Element(sig));
    pos
}

/// Fills in the signature template at `target.children[sig]` (the element at child-index path
/// `target` from `root`) as xmlsec would, computing the canonical forms on the tree itself
/// ([`super::c14n`]) and signing with `cred.key` through OpenSSL: no serialising, parsing and
/// re-serialising of the document per signature. The template must be the first
/// `ds:Signature` in document order (the one xmlsec would sign) and the target's `ID` unique.
///
/// `None`, with `root` untouched, when the document or key is one this path does not handle
/// (see [`super::c14n::check`]; a key other than RSA): the caller signs through xmlsec.
pub(crate) fn sign_in_tree(
    root: &mut Element,
    target: &[usize],
    sig: usize,
    cred: &Credential,
    algs: Algorithms,
) -> Option<Result<(), DsigError>> {
    if cred.key.id() != openssl::pkey::Id::RSA {
        return None;
    }
    let shape = super::c14n::check(root)?;
    let first = shape.first_signature.as_deref()?;
    if first.split_last() != Some((&sig, target)) {
        return None;
    }
    let digest = {
        let mut scope = Vec::new();
        let el = descend(root, target, &mut scope)?;
        let id = el.attr("ID")?;
        if !plain_id(id) || shape.ids.get(id) != Some(&1) {
            return None;
        }
        let mut c = String::with_capacity(4096);
        super::c14n::canonicalize(el, &scope, Some(sig), &mut c);
        digest_b64(algs.digest, c.as_bytes())
    };
    let signature = at_mut(root, target)?.children.get_mut(sig)?;
    let Node::Element(signature) = signature else {
        return None;
    };
    signature
        .child_mut(ns::DS, "SignedInfo")?
        .child_mut(ns::DS, "Reference")?
        .child_mut(ns::DS, "DigestValue")?
        .set_text(digest);
    // SignedInfo in its context: the bindings of the target's ancestors, the target's and the
    // Signature's own.
    let signed_info = {
        let mut scope = Vec::new();
        let el = descend(root, target, &mut scope)?;
        super::c14n::declare(el, &mut scope);
        let Node::Element(signature) = el.children.get(sig)? else {
            return None;
        };
        super::c14n::declare(signature, &mut scope);
        let mut c = String::with_capacity(1024);
        super::c14n::canonicalize(signature.child(ns::DS, "SignedInfo")?, &scope, None, &mut c);
        c
    };
    let value = if PREVIEW.get() {
        remembered(&signed_info, cred, algs.signature)
            .map_or_else(|| PREVIEW_SIGNATURE_VALUE.to_string(), |v| base64_lines(&v))
    } else {
        match sign_cached(&signed_info, cred, algs.signature) {
            Ok(v) => base64_lines(&v),
            Err(e) => return Some(Err(e)),
        }
    };
    let Node::Element(signature) = at_mut(root, target)?.children.get_mut(sig)? else {
        return None;
    };
    signature
        .child_mut(ns::DS, "SignatureValue")?
        .set_text(value);
    Some(Ok(()))
}

/// The element at child-index `path` from `root`, with the namespace bindings its ancestors
/// declare pushed onto `scope`.
fn descend<'a>(
    root: &'a Element,
    path: &[usize],
    scope: &mut super::c14n::Scope<'a>,
) -> Option<&'a Element> {
    let mut el = root;
    for &i in path {
        super::c14n::declare(el, scope);
        match el.children.get(i)? {
            Node::Element(e) => el = e,
            _ => return None,
        }
    }
    Some(el)
}

fn at_mut<'a>(root: &'a mut Element, path: &[usize]) -> Option<&'a mut Element> {
    let mut el = root;
    for &i in path {
        match el.children.get_mut(i)? {
            Node::Element(e) => el = e,
            _ => return None,
        }
    }
    Some(el)
}

/// An `ID` xmlsec resolves as the same-document reference `#ID` with no escaping question.
fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with("xpointer")
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

fn message_digest(d: DigestMethod) -> openssl::hash::MessageDigest {
    use openssl::hash::MessageDigest;
    match d {
        DigestMethod::Sha1 => MessageDigest::sha1(),
        DigestMethod::Sha256 => MessageDigest::sha256(),
        DigestMethod::Sha384 => MessageDigest::sha384(),
        DigestMethod::Sha512 => MessageDigest::sha512(),
    }
}

fn digest_b64(d: DigestMethod, data: &[u8]) -> String {
    match openssl::hash::hash(message_digest(d), data) {
        Ok(h) => base64_lines(&h),
        // Hashing in memory does not fail; should it, the SP sees a bad digest.
        Err(_) => String::new(),
    }
}

/// Base64 in lines of 64 characters joined by newlines, as xmlsec writes node content.
fn base64_lines(data: &[u8]) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(b.len() + b.len() / 64);
    for (i, chunk) in b.as_bytes().chunks(64).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        // Base64 is ASCII: every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
    }
    out
}

/// Signatures made lately on this thread: PKCS#1 v1.5 is deterministic, so the same key and
/// SignedInfo give the same value ([`preview`] takes from here the signatures of the parts a
/// fault plan left alone).
struct SignatureMemo {
    method: SignatureMethod,
    key_der: Vec<u8>,
    signed_info: String,
    value: Vec<u8>,
}

/// At most this many signatures remembered a thread.
const MEMO_MAX: usize = 8;

thread_local! {
    static MEMO: std::cell::RefCell<std::collections::VecDeque<SignatureMemo>> =
        const { std::cell::RefCell::new(std::collections::VecDeque::new()) };
}

thread_local! {
    /// Set while [`preview`] runs: signatures not remembered are not made.
    static PREVIEW: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The `SignatureValue` text [`preview`] writes where no signature over the same `SignedInfo`
/// was made lately on this thread.
pub const PREVIEW_SIGNATURE_VALUE: &str = "(not computed: a signature over this SignedInfo)";

/// Runs `f` with tree signing in preview mode: every digest is computed, but a `SignatureValue`
/// is the one a signature over the same `SignedInfo` made lately on this thread had, else
/// [`PREVIEW_SIGNATURE_VALUE`] — no RSA operation. For a message shown beside one really
/// signed (the honest message a fault plan edited, in the report): where the plan left a
/// signed part alone its value is the real one; elsewhere any value would differ anyway.
/// Documents the tree signer does not handle are still signed through xmlsec.
pub fn preview<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            PREVIEW.set(self.0);
        }
    }
    let _reset = Reset(PREVIEW.replace(true));
    f()
}

/// Whether [`preview`] is running on this thread.
pub(crate) fn in_preview() -> bool {
    PREVIEW.get()
}

/// The signature over `signed_info` made lately on this thread with `cred` and `method`.
fn remembered(signed_info: &str, cred: &Credential, method: SignatureMethod) -> Option<Vec<u8>> {
    MEMO.with(|m| {
        m.borrow()
            .iter()
            .find(|e| {
                e.signed_info == signed_info && e.method == method && e.key_der == cred.key_der
            })
            .map(|e| e.value.clone())
    })
}

fn sign_cached(
    signed_info: &str,
    cred: &Credential,
    method: SignatureMethod,
) -> Result<Vec<u8>, DsigError> {
    if let Some(v) = remembered(signed_info, cred, method) {
        return Ok(v);
    }
    use openssl::hash::MessageDigest;
    let md = match method {
        SignatureMethod::RsaSha1 => MessageDigest::sha1(),
        SignatureMethod::RsaSha256 => MessageDigest::sha256(),
        SignatureMethod::RsaSha384 => MessageDigest::sha384(),
        SignatureMethod::RsaSha512 => MessageDigest::sha512(),
    };
    let fail = |e: openssl::error::ErrorStack| DsigError::Sign(e.to_string());
    let mut signer = openssl::sign::Signer::new(md, &cred.key).map_err(fail)?;
    signer
        .set_rsa_padding(openssl::rsa::Padding::PKCS1)
        .map_err(fail)?;
    signer.update(signed_info.as_bytes()).map_err(fail)?;
    let value = signer.sign_to_vec().map_err(fail)?;
    MEMO.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= MEMO_MAX {
            m.pop_front();
        }
        m.push_back(SignatureMemo {
            method,
            key_der: cred.key_der.clone(),
            signed_info: signed_info.to_string(),
            value: value.clone(),
        });
    });
    Ok(value)
}

/// Signs the first empty signature template in `xml` with `key_der` (PKCS#8 DER).
pub fn sign_first_template(xml: &str, key_der: &[u8]) -> Result<String, DsigError> {
    init();
    samael::crypto::Crypto::sign_xml(xml, key_der).map_err(|e| DsigError::Sign(e.to_string()))
}

/// [`sign_first_template`] with `cred`'s key decoded once per thread and reused (an xmlsec
/// keys manager holding it): no PKCS#8 decoding and no RSA blinding set-up per signature. The
/// output is the same as [`sign_first_template`]'s: the template's `KeyInfo` (not covered by
/// the signature) is set aside while xmlsec signs and put back in its place.
pub fn sign_first_template_with(xml: &str, cred: &Credential) -> Result<String, DsigError> {
    init();
    match keys::sign(xml, &cred.key_der) {
        Some(r) => r,
        None => sign_first_template(xml, &cred.key_der),
    }
}

/// Inserts a template into the root element and signs it: an enveloped signature over the
/// whole document (metadata, AuthnRequest).
pub fn sign_root(mut root: Element, cred: &Credential) -> Result<String, DsigError> {
    insert_template(&mut root, Some(&cred.cert_base64()));
    sign_first_template_with(&root.to_xml(), cred)
}

/// Signing keys decoded once per thread: an xmlsec keys manager per key, which hands each
/// signature context a reference to the same `EVP_PKEY` (so OpenSSL's Montgomery and blinding
/// set-up is made once, not per signature).
#[allow(unsafe_code)] // xmlsec's C API; each call's contract noted where it is made
mod keys {
    use super::DsigError;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::ffi::{c_char, c_int, c_uint, c_void};

    unsafe extern "C" {
        fn xmlSecKeysMngrCreate() -> *mut c_void;
        fn xmlSecKeysMngrDestroy(mngr: *mut c_void);
        fn xmlSecKeysMngrAdoptKeysStore(mngr: *mut c_void, store: *mut c_void) -> c_int;
        fn xmlSecKeysMngrGetKey(node: *mut c_void, ctx: *mut c_void) -> *mut c_void;
        fn xmlSecKeyDataStorePtrListGetKlass() -> *const c_void;
        fn xmlSecKeyStoreCreate(id: *const c_void) -> *mut c_void;
        fn xmlSecKeyStoreDestroy(store: *mut c_void);
        fn xmlSecSimpleKeysStoreGetKlass() -> *const c_void;
        fn xmlSecSimpleKeysStoreAdoptKey(store: *mut c_void, key: *mut c_void) -> c_int;
        fn xmlSecOpenSSLAppKeyLoadMemory(
            data: *const u8,
            size: c_uint,
            format: c_int,
            pwd: *const c_char,
            cb: *mut c_void,
            cb_ctx: *mut c_void,
        ) -> *mut c_void;
        fn xmlSecKeyDestroy(key: *mut c_void);
        fn xmlSecDSigCtxCreate(mngr: *mut c_void) -> *mut c_void;
        fn xmlSecDSigCtxSign(ctx: *mut c_void, tmpl: *mut c_void) -> c_int;
        fn xmlSecDSigCtxDestroy(ctx: *mut c_void);
        fn xmlSecAddIDs(doc: *mut c_void, cur: *mut c_void, ids: *mut *const c_char);
        fn xmlSecFindNode(
            parent: *mut c_void,
            name: *const c_char,
            ns: *const c_char,
        ) -> *mut c_void;
        fn xmlSecFindChild(
            parent: *mut c_void,
            name: *const c_char,
            ns: *const c_char,
        ) -> *mut c_void;
        fn xmlUnlinkNode(node: *mut c_void);
        fn xmlAddNextSibling(cur: *mut c_void, elem: *mut c_void) -> *mut c_void;
    }

    /// xmlSecKeyDataFormatDer.
    const FORMAT_DER: c_int = 3;
    /// xmlSecAllocModeDouble, the default allocation mode of a fresh `xmlSecPtrList`.
    const ALLOC_MODE_DOUBLE: c_int = 1;
    /// At most this many keys a thread (test suites make throwaway keys).
    const MAX_KEYS: usize = 16;

    /// `xmlSecPtrList` (xmlsec/list.h; `xmlSecSize` is `unsigned int` in xmlsec 1.2, built
    /// with XMLSEC_NO_SIZE_T).
    #[repr(C)]
    struct PtrList {
        id: *const c_void,
        data: *mut *mut c_void,
        used: c_uint,
        max: c_uint,
        alloc_mode: c_int,
    }

    /// `xmlSecKeysMngr` (xmlsec/keysmngr.h): applications set `getKey` themselves.
    #[repr(C)]
    struct KeysMngr {
        keys_store: *mut c_void,
        stores_list: PtrList,
        get_key: Option<unsafe extern "C" fn(*mut c_void, *mut c_void) -> *mut c_void>,
    }

    /// A keys manager owning one private key in a simple keys store, and no X509 store (the
    /// default manager's loads the system's CA bundle; signing needs none).
    struct Manager(*mut c_void);

    impl Manager {
        fn new(key_der: &[u8]) -> Option<Manager> {
            let size = c_uint::try_from(key_der.len()).ok()?;
            // SAFETY: xmlsec is initialised (`super::init`); the manager is freshly created and
            // owned here, and destroys its store and the store's keys. `KeysMngr` mirrors the
            // public struct; its layout is checked against what xmlSecKeysMngrCreate and
            // xmlSecKeysMngrAdoptKeysStore wrote before `getKey` is set, else no manager.
            unsafe {
                let mngr = xmlSecKeysMngrCreate();
                if mngr.is_null() {
                    return None;
                }
                let m = Manager(mngr);
                let store = xmlSecKeyStoreCreate(xmlSecSimpleKeysStoreGetKlass());
                if store.is_null() {
                    return None;
                }
                if xmlSecKeysMngrAdoptKeysStore(mngr, store) < 0 {
                    xmlSecKeyStoreDestroy(store);
                    return None;
                }
                let view = mngr as *mut KeysMngr;
                if (*view).keys_store != store
                    || (*view).stores_list.id != xmlSecKeyDataStorePtrListGetKlass()
                    || (*view).stores_list.alloc_mode != ALLOC_MODE_DOUBLE
                    || (*view).get_key.is_some()
                {
                    return None;
                }
                (*view).get_key = Some(xmlSecKeysMngrGetKey);
                let key = xmlSecOpenSSLAppKeyLoadMemory(
                    key_der.as_ptr(),
                    size,
                    FORMAT_DER,
                    std::ptr::null(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                );
                if key.is_null() {
                    return None;
                }
                if xmlSecSimpleKeysStoreAdoptKey(store, key) < 0 {
                    xmlSecKeyDestroy(key);
                    return None;
                }
                Some(m)
            }
        }
    }

    impl Drop for Manager {
        fn drop(&mut self) {
            // SAFETY: created by xmlSecKeysMngrCreate and destroyed once, here.
            unsafe { xmlSecKeysMngrDestroy(self.0) }
        }
    }

    thread_local! {
        static MANAGERS: RefCell<HashMap<Vec<u8>, Manager>> = RefCell::new(HashMap::new());
    }

    const DSIG_NS: &std::ffi::CStr = c"http://www.w3.org/2000/09/xmldsig#";

    /// Signs the first `ds:Signature` template in `xml` with the key; `None` when the key could
    /// not be loaded this way (the caller falls back to samael).
    pub(super) fn sign(xml: &str, key_der: &[u8]) -> Option<Result<String, DsigError>> {
        MANAGERS.with(|m| {
            let mut m = m.borrow_mut();
            if !m.contains_key(key_der) {
                if m.len() >= MAX_KEYS {
                    m.clear();
                }
                m.insert(key_der.to_vec(), Manager::new(key_der)?);
            }
            Some(sign_with(xml, m.get(key_der)?.0))
        })
    }

    fn sign_with(xml: &str, mngr: *mut c_void) -> Result<String, DsigError> {
        let fail = |what: &str| DsigError::Sign(what.to_string());
        // The same parser settings as samael's signing.
        let doc = libxml::parser::Parser::default()
            .parse_string(xml)
            .map_err(|e| DsigError::Sign(format!("{e:?}")))?;
        let root = doc
            .get_root_element()
            .ok_or_else(|| fail("no root element"))?;
        let doc_ptr = doc.doc_ptr() as *mut c_void;
        let root_ptr = root.node_ptr() as *mut c_void;
        // SAFETY: every pointer below comes from `doc`, which outlives this block; the
        // KeyInfo node is unlinked and relinked within the same document; the signature
        // context is created and destroyed here.
        unsafe {
            let mut ids = [c"ID".as_ptr(), std::ptr::null()];
            xmlSecAddIDs(doc_ptr, root_ptr, ids.as_mut_ptr());
            let signode = xmlSecFindNode(root_ptr, c"Signature".as_ptr(), DSIG_NS.as_ptr());
            if signode.is_null() {
                return Err(fail("Node not found"));
            }
            // KeyInfo is not signed; with it aside, xmlsec takes the key from the manager
            // instead of reading the template's KeyInfo.
            let key_info = xmlSecFindChild(signode, c"KeyInfo".as_ptr(), DSIG_NS.as_ptr());
            let prev = if key_info.is_null() {
                std::ptr::null_mut()
            } else {
                (*(key_info as *mut libxml::bindings::xmlNode)).prev as *mut c_void
            };
            let aside = !key_info.is_null() && !prev.is_null();
            if aside {
                xmlUnlinkNode(key_info);
            }
            let ctx = xmlSecDSigCtxCreate(mngr);
            if ctx.is_null() {
                return Err(fail("signature context"));
            }
            let rc = xmlSecDSigCtxSign(ctx, signode);
            xmlSecDSigCtxDestroy(ctx);
            if aside {
                xmlAddNextSibling(prev, key_info);
            }
            if rc < 0 {
                return Err(fail("xmlSecDSigCtxSign failed"));
            }
        }
        Ok(doc.to_string())
    }
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

    #[test]
    fn pkcs8_keys_read_without_openssls_decoders_are_the_same_keys() {
        let pem = include_bytes!("../../../../certs/idp.key.pem");
        let cert = include_bytes!("../../../../certs/idp.crt.pem");
        let (fast, der) = rsa_pkcs8_pem(pem).expect("an RSA PKCS#8 PEM");
        let generic = PKey::private_key_from_pem(pem).unwrap();
        assert!(fast.public_eq(&generic));
        assert_eq!(
            fast.rsa().unwrap().private_key_to_der().unwrap(),
            generic.rsa().unwrap().private_key_to_der().unwrap()
        );
        assert_eq!(
            PKey::private_key_from_pkcs8(&der)
                .unwrap()
                .private_key_to_der()
                .unwrap(),
            generic.private_key_to_der().unwrap()
        );
        let cred = Credential::from_pem(pem, cert).unwrap();
        assert_eq!(cred.key_der, der);
        // Anything else takes the generic path, with the same outcome.
        let pkcs1 = generic.rsa().unwrap().private_key_to_pem().unwrap();
        assert!(rsa_pkcs8_pem(&pkcs1).is_none());
        let cred1 = Credential::from_pem(&pkcs1, cert).unwrap();
        assert!(cred1.key.public_eq(&generic));
        assert!(rsa_pkcs8_pem(
            b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----"
        )
        .is_none());
        assert!(Credential::from_pem(b"garbage", cert).is_err());
    }

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
    fn reused_key_signs_byte_for_byte_as_samael() {
        // RSA PKCS#1 v1.5 is deterministic: the cached-key path must give the same document,
        // with the KeyInfo back in its place, and without one.
        let cred = test_credential("a");
        for keyinfo in [Some(cred.cert_base64()), None] {
            let mut root = doc();
            insert_template(&mut root, keyinfo.as_deref());
            let xml = root.to_xml();
            let ours = sign_first_template_with(&xml, &cred).unwrap();
            // The cached-key path itself, not the fallback.
            assert_eq!(keys::sign(&xml, &cred.key_der).unwrap().unwrap(), ours);
            assert_eq!(ours, sign_first_template(&xml, &cred.key_der).unwrap());
            // Twice: the second signature uses the cached key.
            assert_eq!(ours, sign_first_template_with(&xml, &cred).unwrap());
            assert!(verify_and_reduce(&ours, std::slice::from_ref(&cred.cert_der)).is_ok());
        }
        // No template: an error, as from samael.
        assert!(sign_first_template_with(&doc().to_xml(), &cred).is_err());
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
