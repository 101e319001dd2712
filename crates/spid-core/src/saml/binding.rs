//! SAML 2.0 HTTP-Redirect and HTTP-POST bindings (SAML bindings §3.4 and §3.5).
//!
//! Everything that parses network input returns an error instead of
//! panicking, and every decoder is bounded: inflated output and
//! base64-decoded output never grow past the caller's `limit`, so a
//! deflate bomb or a huge POST body cannot exhaust memory.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt::Write as _;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use maud::{html, PreEscaped, DOCTYPE};
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Padding;
use openssl::sign::{Signer, Verifier};
use openssl::x509::X509;
use url::form_urlencoded::byte_serialize;
use url::Url;

/// Which SAML message parameter carries the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageParam {
    /// `SAMLRequest`: an AuthnRequest or LogoutRequest.
    SamlRequest,
    /// `SAMLResponse`: a Response or LogoutResponse.
    SamlResponse,
}

impl MessageParam {
    /// The parameter name as it appears on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            MessageParam::SamlRequest => "SAMLRequest",
            MessageParam::SamlResponse => "SAMLResponse",
        }
    }
}

/// Query-signature algorithms SPID allows (rsa-sha1 is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigAlg {
    /// RSA PKCS#1 v1.5 with SHA-256.
    RsaSha256,
    /// RSA PKCS#1 v1.5 with SHA-384.
    RsaSha384,
    /// RSA PKCS#1 v1.5 with SHA-512.
    RsaSha512,
}

impl SigAlg {
    /// The XML-DSig algorithm URI carried in the `SigAlg` parameter.
    pub fn uri(&self) -> &'static str {
        match self {
            SigAlg::RsaSha256 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            SigAlg::RsaSha384 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
            SigAlg::RsaSha512 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        }
    }

    /// Maps an algorithm URI to a supported algorithm; `None` for anything
    /// else (notably rsa-sha1, which SPID forbids). Exact match only.
    pub fn from_uri(uri: &str) -> Option<SigAlg> {
        [SigAlg::RsaSha256, SigAlg::RsaSha384, SigAlg::RsaSha512]
            .into_iter()
            .find(|alg| alg.uri() == uri)
    }

    /// The digest used with RSA PKCS#1 v1.5 for this algorithm.
    pub fn message_digest(&self) -> MessageDigest {
        match self {
            SigAlg::RsaSha256 => MessageDigest::sha256(),
            SigAlg::RsaSha384 => MessageDigest::sha384(),
            SigAlg::RsaSha512 => MessageDigest::sha512(),
        }
    }
}

/// Default bound on inflated (and base64-decoded) message size: 256 KiB.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Errors from encoding or decoding a SAML binding message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BindingError {
    /// A required parameter is absent (e.g. `"SAMLRequest"`, `"SigAlg"`, `"Signature"`).
    #[error("missing parameter {0}")]
    MissingParameter(&'static str),
    /// A parameter appears more than once.
    #[error("duplicate parameter {0}")]
    DuplicateParameter(String),
    /// A value is not valid base64.
    #[error("invalid base64")]
    Base64,
    /// The message is not a valid raw DEFLATE stream.
    #[error("invalid DEFLATE stream")]
    Inflate,
    /// Inflated or decoded output would exceed `limit` bytes.
    #[error("message exceeds {limit} bytes")]
    TooLarge {
        /// The bound that was exceeded, in bytes.
        limit: usize,
    },
    /// The message or a text parameter is not valid UTF-8.
    #[error("invalid UTF-8")]
    Utf8,
    /// The `SigAlg` URI is not one SPID allows.
    #[error("unsupported signature algorithm {0}")]
    UnsupportedSigAlg(String),
    /// An OpenSSL failure, or a key unsuitable for the algorithm.
    #[error("crypto error: {0}")]
    Crypto(String),
}

impl BindingError {
    /// The rule a SAML message refused at the binding breaks: the size bound, UTF-8 after
    /// decoding (`binding.encoding.invalid`), else the base64 (and DEFLATE) encoding.
    pub fn rule(&self) -> crate::Rule {
        match self {
            BindingError::TooLarge { .. } => crate::Rule::BindingTooLarge,
            BindingError::Utf8 => crate::Rule::BindingEncoding,
            _ => crate::Rule::BindingBase64,
        }
    }
}

impl From<openssl::error::ErrorStack> for BindingError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        BindingError::Crypto(e.to_string())
    }
}

/// Encodes `xml` for the HTTP-Redirect binding: raw DEFLATE (no zlib
/// header), base64, percent-encoding; appends `SAMLRequest`|`SAMLResponse`,
/// `RelayState` (if any), and when `signing` is given `SigAlg` and
/// `Signature` computed over the exact octets
/// `SAMLRequest=<enc>&RelayState=<enc>&SigAlg=<enc>` (SAML bindings
/// §3.4.4.1; `RelayState` omitted from the signed string if absent).
/// Keeps any existing query of `endpoint`; fails with `DuplicateParameter`
/// if that query already carries one of the parameters we add.
pub fn encode_redirect(
    endpoint: &Url,
    param: MessageParam,
    xml: &str,
    relay_state: Option<&str>,
    signing: Option<(&PKey<Private>, SigAlg)>,
) -> Result<Url, BindingError> {
    let existing = endpoint.query().filter(|q| !q.is_empty());
    if let Some(q) = existing {
        // The decoder rejects repeated parameters, so refuse to build one.
        for segment in q.split('&') {
            let key = segment.split_once('=').map_or(segment, |(k, _)| k);
            let key = String::from_utf8_lossy(&percent_decode(key, true)).into_owned();
            if matches!(
                key.as_str(),
                "SAMLRequest" | "SAMLResponse" | "RelayState" | "SigAlg" | "Signature"
            ) {
                return Err(BindingError::DuplicateParameter(key));
            }
        }
    }

    let encoded = STANDARD.encode(deflate(xml.as_bytes()));
    // Built by hand so the signed octets are byte-for-byte what goes on the wire.
    let mut ours = String::new();
    push_param(&mut ours, param.name(), encoded.as_bytes());
    if let Some(rs) = relay_state {
        push_param(&mut ours, "RelayState", rs.as_bytes());
    }

    if let Some((key, alg)) = signing {
        // A non-RSA key would yield e.g. ECDSA under an rsa-* URI.
        if key.id() != Id::RSA {
            return Err(BindingError::Crypto("signing key is not RSA".into()));
        }
        push_param(&mut ours, "SigAlg", alg.uri().as_bytes());
        let mut signer = Signer::new(alg.message_digest(), key)?;
        signer.set_rsa_padding(Padding::PKCS1)?;
        // Everything so far is the §3.4.4.1 signed string; Signature follows it.
        signer.update(ours.as_bytes())?;
        let signature = signer.sign_to_vec()?;
        push_param(
            &mut ours,
            "Signature",
            STANDARD.encode(signature).as_bytes(),
        );
    }

    let query = match existing {
        Some(q) => format!("{q}&{ours}"),
        None => ours,
    };
    let mut url = endpoint.clone();
    url.set_query(Some(&query));
    Ok(url)
}

/// Appends `name=<form-urlencoded value>`, with a leading `&` if needed.
fn push_param(out: &mut String, name: &str, value: &[u8]) {
    if !out.is_empty() {
        out.push('&');
    }
    out.push_str(name);
    out.push('=');
    for chunk in byte_serialize(value) {
        // Writing to a String cannot fail.
        let _ = out.write_str(chunk);
    }
}

/// A decoded HTTP-Redirect message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectMessage {
    /// Which parameter carried the message.
    pub param: MessageParam,
    /// The inflated XML.
    pub xml: String,
    /// The decoded `RelayState`, if present.
    pub relay_state: Option<String>,
    /// The query signature, if `SigAlg` and `Signature` were present.
    pub signature: Option<RedirectSignature>,
}

/// The query signature, with the exact octets that were signed, rebuilt
/// from the RAW (still percent-encoded) query components in the order
/// `SAMLRequest`/`SAMLResponse`, `RelayState`, `SigAlg` — never by
/// re-encoding decoded values (encoders differ between stacks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectSignature {
    /// The decoded `SigAlg` URI, not yet checked against [`SigAlg`].
    pub alg_uri: String,
    /// The octets the signature covers, as received on the wire.
    pub signed_octets: Vec<u8>,
    /// The base64-decoded `Signature` value.
    pub signature: Vec<u8>,
}

impl RedirectSignature {
    /// `SigAlg` parsed; `Err(UnsupportedSigAlg)` if not one of [`SigAlg`].
    pub fn alg(&self) -> Result<SigAlg, BindingError> {
        SigAlg::from_uri(&self.alg_uri)
            .ok_or_else(|| BindingError::UnsupportedSigAlg(self.alg_uri.clone()))
    }

    /// Verifies with the public key of `cert` (the certificate from the
    /// peer's METADATA, never from the message). `Ok(false)` = bad signature.
    pub fn verify(&self, cert: &X509) -> Result<bool, BindingError> {
        self.verify_key(&cert.public_key()?)
    }

    /// [`RedirectSignature::verify`] with a certificate as DER, its public key decoded once
    /// per thread and kept (a peer's metadata certificate signs every message it sends:
    /// decoding it each time was most of the cost of checking a signature). `Ok(false)` when
    /// `cert_der` is not a certificate.
    pub fn verify_der(&self, cert_der: &[u8]) -> Result<bool, BindingError> {
        match cached_public_key(cert_der) {
            Some(key) => self.verify_key(&key),
            None => Ok(false),
        }
    }

    fn verify_key(&self, key: &PKey<openssl::pkey::Public>) -> Result<bool, BindingError> {
        let alg = self.alg()?;
        if key.id() != Id::RSA {
            return Err(BindingError::Crypto("certificate key is not RSA".into()));
        }
        let mut verifier = Verifier::new(alg.message_digest(), key)?;
        verifier.set_rsa_padding(Padding::PKCS1)?;
        verifier.update(&self.signed_octets)?;
        // The signature is attacker-controlled: a malformed one (wrong
        // length, garbage) is a bad signature, not an internal failure.
        Ok(verifier.verify(&self.signature).unwrap_or(false))
    }
}

/// The public key of a DER certificate, decoded once per thread (at most
/// [`KEY_CACHE_MAX`] kept); `None` when it is not a certificate.
fn cached_public_key(cert_der: &[u8]) -> Option<PKey<openssl::pkey::Public>> {
    use std::collections::HashMap;
    thread_local! {
        static KEYS: RefCell<HashMap<Vec<u8>, PKey<openssl::pkey::Public>>> =
            RefCell::new(HashMap::new());
    }
    KEYS.with(|k| {
        let mut k = k.borrow_mut();
        if let Some(key) = k.get(cert_der) {
            return Some(key.clone());
        }
        let key = X509::from_der(cert_der).ok()?.public_key().ok()?;
        if k.len() >= KEY_CACHE_MAX {
            k.clear();
        }
        k.insert(cert_der.to_vec(), key.clone());
        Some(key)
    })
}

/// Certificates whose keys a thread keeps decoded (test suites make throwaway ones).
const KEY_CACHE_MAX: usize = 32;

/// Parses a raw query string (the part after `?`, still percent-encoded).
///
/// Exactly one of `SAMLRequest`/`SAMLResponse` must be present (neither is
/// `MissingParameter("SAMLRequest")`, both is
/// `DuplicateParameter("SAMLRequest/SAMLResponse")`); any repeated
/// parameter is `DuplicateParameter`; `Signature` without `SigAlg` (or vice
/// versa) is `MissingParameter`. Base64 may contain whitespace/newlines
/// (some encoders wrap); it is decoded, then inflated with `limit`. The
/// `SigAlg` is not checked here, so a caller can still read a message with
/// a refused algorithm; [`RedirectSignature::verify`] rejects it.
pub fn decode_redirect(raw_query: &str, limit: usize) -> Result<RedirectMessage, BindingError> {
    let raw_query = raw_query.strip_prefix('?').unwrap_or(raw_query);

    // (raw segment, raw value) per known parameter.
    let mut message: Option<(MessageParam, &str, &str)> = None;
    let mut relay: Option<(&str, &str)> = None;
    let mut sig_alg: Option<(&str, &str)> = None;
    let mut signature: Option<&str> = None;
    let mut seen = HashSet::new();

    for segment in raw_query.split('&').filter(|s| !s.is_empty()) {
        let (raw_key, raw_value) = segment.split_once('=').unwrap_or((segment, ""));
        let key = String::from_utf8_lossy(&percent_decode(raw_key, true)).into_owned();
        if !seen.insert(key.clone()) {
            return Err(BindingError::DuplicateParameter(key));
        }
        match key.as_str() {
            "SAMLRequest" | "SAMLResponse" => {
                if message.is_some() {
                    return Err(BindingError::DuplicateParameter(
                        "SAMLRequest/SAMLResponse".into(),
                    ));
                }
                let param = if key == "SAMLRequest" {
                    MessageParam::SamlRequest
                } else {
                    MessageParam::SamlResponse
                };
                message = Some((param, segment, raw_value));
            }
            "RelayState" => relay = Some((segment, raw_value)),
            "SigAlg" => sig_alg = Some((segment, raw_value)),
            "Signature" => signature = Some(raw_value),
            _ => {}
        }
    }

    let (param, message_segment, message_value) =
        message.ok_or(BindingError::MissingParameter("SAMLRequest"))?;

    let signature = match (sig_alg, signature) {
        (None, None) => None,
        (None, Some(_)) => return Err(BindingError::MissingParameter("SigAlg")),
        (Some(_), None) => return Err(BindingError::MissingParameter("Signature")),
        (Some((alg_segment, alg_value)), Some(sig_value)) => {
            let mut signed_octets = Vec::with_capacity(raw_query.len());
            signed_octets.extend_from_slice(message_segment.as_bytes());
            if let Some((relay_segment, _)) = relay {
                signed_octets.push(b'&');
                signed_octets.extend_from_slice(relay_segment.as_bytes());
            }
            signed_octets.push(b'&');
            signed_octets.extend_from_slice(alg_segment.as_bytes());
            // An RSA signature is at most a few KiB; MAX_MESSAGE_BYTES is ample.
            let sig = decode_base64_param(sig_value, MAX_MESSAGE_BYTES)?;
            Some(RedirectSignature {
                alg_uri: decode_text_param(alg_value)?,
                signed_octets,
                signature: sig,
            })
        }
    };

    // Compressed data only ever slightly exceeds its output (stored-block
    // framing), so bound it before decoding with a little slack.
    let compressed_limit = limit.saturating_add(limit / 8).saturating_add(1024);
    let compressed = decode_base64_param(message_value, compressed_limit).map_err(|e| match e {
        BindingError::TooLarge { .. } => BindingError::TooLarge { limit },
        other => other,
    })?;
    let inflated = inflate_bounded(&compressed, limit)?;
    let xml = String::from_utf8(inflated).map_err(|_| BindingError::Utf8)?;

    Ok(RedirectMessage {
        param,
        xml,
        relay_state: relay.map(|(_, v)| decode_text_param(v)).transpose()?,
        signature,
    })
}

/// Decodes a form-encoded text value (`+` is a space), requiring UTF-8.
fn decode_text_param(raw: &str) -> Result<String, BindingError> {
    String::from_utf8(percent_decode(raw, true)).map_err(|_| BindingError::Utf8)
}

/// Decodes a percent-encoded base64 value. A literal `+` is kept as `+`
/// rather than read as a space: base64 never contains spaces, and some
/// encoders forget to escape `+`.
fn decode_base64_param(raw: &str, limit: usize) -> Result<Vec<u8>, BindingError> {
    let b64 = percent_decode(raw, false);
    decode_base64_bounded(&b64, limit)
}

/// Lenient base64: ASCII whitespace ignored, padding optional.
const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Base64-decodes `input` (whitespace tolerated), refusing with `TooLarge`
/// before allocating when the decoded size would exceed `limit`.
fn decode_base64_bounded(input: &[u8], limit: usize) -> Result<Vec<u8>, BindingError> {
    // The usual form post: one line short enough whatever its padding, decoded as it is (a
    // whitespace byte fails the decoding, and the slow path below strips it).
    if input.len() / 4 * 3 + 3 <= limit {
        if let Ok(v) = LENIENT_B64.decode(input) {
            return Ok(v);
        }
    }
    let significant = input
        .iter()
        .filter(|b| !b.is_ascii_whitespace() && **b != b'=')
        .count();
    // Each base64 symbol carries 6 bits; partial bytes are dropped.
    if significant / 4 * 3 + (significant % 4) * 3 / 4 > limit {
        return Err(BindingError::TooLarge { limit });
    }
    let compact: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    LENIENT_B64
        .decode(compact)
        .map_err(|_| BindingError::Base64)
}

/// Percent-decodes `input`; malformed escapes are kept literally.
fn percent_decode(input: &str, plus_as_space: bool) -> Vec<u8> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex);
                let lo = bytes.get(i + 2).copied().and_then(hex);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus_as_space => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

/// Inflates raw DEFLATE data, failing with `TooLarge` as soon as output
/// would exceed `limit` (reads at most `limit + 1` bytes; never allocates
/// unbounded). A truncated stream is `Inflate`; bytes after the final
/// block are ignored.
pub fn inflate_bounded(data: &[u8], limit: usize) -> Result<Vec<u8>, BindingError> {
    thread_local! {
        // The inflate state (a 32 KiB window) is kept per thread: allocating and zeroing
        // it for every message showed in profiles. Reset before each use.
        static DECODER: RefCell<Decompress> = RefCell::new(Decompress::new(false));
    }
    DECODER.with(|d| match d.try_borrow_mut() {
        Ok(mut decoder) => {
            decoder.reset(false);
            inflate_with(&mut decoder, data, limit)
        }
        // Not reentrant, but never fail for want of the shared state.
        Err(_) => inflate_with(&mut Decompress::new(false), data, limit),
    })
}

fn inflate_with(
    decoder: &mut Decompress,
    data: &[u8],
    limit: usize,
) -> Result<Vec<u8>, BindingError> {
    let cap = limit.saturating_add(1);
    let mut out: Vec<u8> = Vec::with_capacity(data.len().saturating_mul(4).max(1024).min(cap));
    loop {
        if out.len() > limit {
            return Err(BindingError::TooLarge { limit });
        }
        if out.len() == out.capacity() {
            // Grow geometrically but never past limit + 1, the byte that
            // proves the limit was exceeded.
            let grow = out.capacity().max(1024).min(cap - out.len());
            out.reserve_exact(grow);
        }
        let consumed = usize::try_from(decoder.total_in()).unwrap_or(usize::MAX);
        let input = data.get(consumed..).unwrap_or(&[]);
        let (in_before, out_before) = (decoder.total_in(), decoder.total_out());
        let status = decoder
            .decompress_vec(input, &mut out, FlushDecompress::None)
            .map_err(|_| BindingError::Inflate)?;
        match status {
            Status::StreamEnd => break,
            Status::Ok | Status::BufError => {
                // No progress with output space left means the input ran out
                // before the final block: a truncated stream.
                if decoder.total_in() == in_before && decoder.total_out() == out_before {
                    return Err(BindingError::Inflate);
                }
            }
        }
    }
    if out.len() > limit {
        return Err(BindingError::TooLarge { limit });
    }
    Ok(out)
}

/// Raw DEFLATE compression (used by the encoder and by tests that build bombs).
pub fn deflate(data: &[u8]) -> Vec<u8> {
    thread_local! {
        // The compressor's state (~300 KiB of hash tables and buffers) is kept per thread:
        // allocating and zeroing it for every AuthnRequest showed in profiles. Reset before
        // each use, so the output is what a fresh compressor gives.
        static ENCODER: RefCell<Compress> = RefCell::new(Compress::new(Compression::default(), false));
    }
    ENCODER.with(|e| match e.try_borrow_mut() {
        Ok(mut encoder) => {
            encoder.reset();
            deflate_with(&mut encoder, data)
        }
        Err(_) => deflate_with(&mut Compress::new(Compression::default(), false), data),
    })
}

fn deflate_with(encoder: &mut Compress, data: &[u8]) -> Vec<u8> {
    // XML deflates to well under half its size; grow when it does not.
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    loop {
        let consumed = usize::try_from(encoder.total_in()).unwrap_or(usize::MAX);
        let input = data.get(consumed..).unwrap_or(&[]);
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(64));
        }
        // Compressing into a Vec with spare room cannot fail.
        match encoder.compress_vec(input, &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => return out,
            Ok(Status::Ok | Status::BufError) => {}
            Err(_) => unreachable!("raw deflate into a Vec does not fail"),
        }
    }
}

/// HTTP-POST binding: standard base64 of the XML (no deflate).
pub fn encode_post(xml: &str) -> String {
    STANDARD.encode(xml.as_bytes())
}

/// Decodes a POSTed base64 value (whitespace tolerated); `TooLarge` if the
/// input's decoded size would exceed `limit` (checked from the encoded
/// length, before decoding).
pub fn decode_post(value: &str, limit: usize) -> Result<String, BindingError> {
    let bytes = decode_base64_bounded(value.as_bytes(), limit)?;
    String::from_utf8(bytes).map_err(|_| BindingError::Utf8)
}

/// An HTML page (maud, so every value is escaped) with a form that POSTs
/// `param`=`value` and `RelayState` (if any) to `action`, auto-submitted by
/// a small inline script, with a visible submit button inside `<noscript>`
/// for browsers without JS. The form has `id="saml-post-form"` and
/// `method="post"`.
pub fn post_form_html(
    action: &Url,
    param: MessageParam,
    value: &str,
    relay_state: Option<&str>,
) -> String {
    html! {
        (DOCTYPE)
        html {
            head {
                meta charset="utf-8";
                title { "SAML POST" }
            }
            body {
                form id="saml-post-form" method="post" action=(action.as_str()) {
                    input type="hidden" name=(param.name()) value=(crate::html::Escaped(value));
                    @if let Some(rs) = relay_state {
                        input type="hidden" name="RelayState" value=(rs);
                    }
                    noscript {
                        p { "JavaScript is disabled: press Continue to proceed." }
                        button type="submit" { "Continue" }
                    }
                }
                // Static script: no interpolated values.
                script { (PreEscaped("document.getElementById('saml-post-form').submit();")) }
            }
        }
    }
    .into_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509Builder, X509NameBuilder};

    const XML: &str = r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_abc" Version="2.0">città</samlp:AuthnRequest>"#;

    fn key() -> PKey<Private> {
        PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
    }

    fn cert(key: &PKey<Private>) -> X509 {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "test-sp").unwrap();
        let name = name.build();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        let serial = BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap();
        b.set_serial_number(&serial).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
            .unwrap();
        b.sign(key, MessageDigest::sha256()).unwrap();
        b.build()
    }

    fn endpoint() -> Url {
        Url::parse("https://idp.example.it/sso").unwrap()
    }

    fn enc(s: &str) -> String {
        byte_serialize(s.as_bytes()).collect()
    }

    fn sign_b64(key: &PKey<Private>, alg: SigAlg, data: &[u8]) -> String {
        let mut signer = Signer::new(alg.message_digest(), key).unwrap();
        signer.set_rsa_padding(Padding::PKCS1).unwrap();
        signer.update(data).unwrap();
        STANDARD.encode(signer.sign_to_vec().unwrap())
    }

    fn request_value(xml: &str) -> String {
        enc(&STANDARD.encode(deflate(xml.as_bytes())))
    }

    #[test]
    fn post_value_decoding_to_non_utf8_is_an_encoding_error() {
        let v = STANDARD.encode([b'<', 0xff, 0xfe, b'>']);
        let e = decode_post(&v, MAX_MESSAGE_BYTES).unwrap_err();
        assert_eq!(e, BindingError::Utf8);
        assert_eq!(e.rule(), crate::Rule::BindingEncoding);
        let e = decode_post("%%%", MAX_MESSAGE_BYTES).unwrap_err();
        assert_eq!(e.rule(), crate::Rule::BindingBase64);
    }

    #[test]
    fn names_and_uris() {
        assert_eq!(MessageParam::SamlRequest.name(), "SAMLRequest");
        assert_eq!(MessageParam::SamlResponse.name(), "SAMLResponse");
        for alg in [SigAlg::RsaSha256, SigAlg::RsaSha384, SigAlg::RsaSha512] {
            assert_eq!(SigAlg::from_uri(alg.uri()), Some(alg));
        }
        assert_eq!(
            SigAlg::from_uri("http://www.w3.org/2000/09/xmldsig#rsa-sha1"),
            None
        );
        assert_eq!(MAX_MESSAGE_BYTES, 262_144);
    }

    #[test]
    fn redirect_round_trip_unsigned() {
        let url = encode_redirect(
            &endpoint(),
            MessageParam::SamlRequest,
            XML,
            Some("state/with spaces&?="),
            None,
        )
        .unwrap();
        let msg = decode_redirect(url.query().unwrap(), MAX_MESSAGE_BYTES).unwrap();
        assert_eq!(msg.param, MessageParam::SamlRequest);
        assert_eq!(msg.xml, XML);
        assert_eq!(msg.relay_state.as_deref(), Some("state/with spaces&?="));
        assert!(msg.signature.is_none());
    }

    #[test]
    fn redirect_round_trip_response_without_relay_state() {
        let url =
            encode_redirect(&endpoint(), MessageParam::SamlResponse, XML, None, None).unwrap();
        let msg = decode_redirect(url.query().unwrap(), MAX_MESSAGE_BYTES).unwrap();
        assert_eq!(msg.param, MessageParam::SamlResponse);
        assert_eq!(msg.xml, XML);
        assert_eq!(msg.relay_state, None);
    }

    #[test]
    fn redirect_round_trip_signed_all_algs() {
        let k = key();
        let c = cert(&k);
        for alg in [SigAlg::RsaSha256, SigAlg::RsaSha384, SigAlg::RsaSha512] {
            let url = encode_redirect(
                &endpoint(),
                MessageParam::SamlRequest,
                XML,
                Some("https://sp.example.it/x?y=1"),
                Some((&k, alg)),
            )
            .unwrap();
            let query = url.query().unwrap();
            let msg = decode_redirect(query, MAX_MESSAGE_BYTES).unwrap();
            let sig = msg.signature.unwrap();
            assert_eq!(sig.alg(), Ok(alg));
            assert_eq!(sig.verify(&c), Ok(true));
            // The signed octets are exactly the wire prefix before &Signature=.
            let (prefix, _) = query.split_once("&Signature=").unwrap();
            assert_eq!(sig.signed_octets, prefix.as_bytes());
        }
    }

    #[test]
    fn signed_without_relay_state_omits_it() {
        let k = key();
        let url = encode_redirect(
            &endpoint(),
            MessageParam::SamlRequest,
            XML,
            None,
            Some((&k, SigAlg::RsaSha256)),
        )
        .unwrap();
        let msg = decode_redirect(url.query().unwrap(), MAX_MESSAGE_BYTES).unwrap();
        let sig = msg.signature.unwrap();
        let expected = format!(
            "SAMLRequest={}&SigAlg={}",
            request_value(XML),
            enc(SigAlg::RsaSha256.uri())
        );
        assert_eq!(
            String::from_utf8(sig.signed_octets.clone()).unwrap(),
            expected
        );
        assert_eq!(sig.verify(&cert(&k)), Ok(true));
    }

    #[test]
    fn keeps_existing_endpoint_query() {
        let ep = Url::parse("https://idp.example.it/sso?tenant=a%2Fb&x=1").unwrap();
        let k = key();
        let url = encode_redirect(
            &ep,
            MessageParam::SamlRequest,
            XML,
            Some("rs"),
            Some((&k, SigAlg::RsaSha256)),
        )
        .unwrap();
        let query = url.query().unwrap();
        assert!(query.starts_with("tenant=a%2Fb&x=1&SAMLRequest="));
        let msg = decode_redirect(query, MAX_MESSAGE_BYTES).unwrap();
        let sig = msg.signature.unwrap();
        assert!(sig.signed_octets.starts_with(b"SAMLRequest="));
        assert_eq!(sig.verify(&cert(&k)), Ok(true));
    }

    #[test]
    fn endpoint_query_with_saml_param_is_refused() {
        let ep = Url::parse("https://idp.example.it/sso?SAMLRequest=x").unwrap();
        assert_eq!(
            encode_redirect(&ep, MessageParam::SamlRequest, XML, None, None),
            Err(BindingError::DuplicateParameter("SAMLRequest".into()))
        );
    }

    #[test]
    fn tampered_relay_state_fails_verification() {
        let k = key();
        let url = encode_redirect(
            &endpoint(),
            MessageParam::SamlRequest,
            XML,
            Some("original"),
            Some((&k, SigAlg::RsaSha256)),
        )
        .unwrap();
        let tampered = url
            .query()
            .unwrap()
            .replace("RelayState=original", "RelayState=evil");
        let msg = decode_redirect(&tampered, MAX_MESSAGE_BYTES).unwrap();
        assert_eq!(msg.relay_state.as_deref(), Some("evil"));
        assert_eq!(msg.signature.unwrap().verify(&cert(&k)), Ok(false));
    }

    #[test]
    fn signature_by_other_key_fails_verification() {
        let signer = key();
        let other = key();
        let url = encode_redirect(
            &endpoint(),
            MessageParam::SamlRequest,
            XML,
            Some("rs"),
            Some((&signer, SigAlg::RsaSha256)),
        )
        .unwrap();
        let msg = decode_redirect(url.query().unwrap(), MAX_MESSAGE_BYTES).unwrap();
        assert_eq!(msg.signature.unwrap().verify(&cert(&other)), Ok(false));
    }

    #[test]
    fn garbage_signature_is_false_not_error() {
        let k = key();
        let query = format!(
            "SAMLRequest={}&SigAlg={}&Signature={}",
            request_value(XML),
            enc(SigAlg::RsaSha256.uri()),
            enc(&STANDARD.encode(b"short"))
        );
        let msg = decode_redirect(&query, MAX_MESSAGE_BYTES).unwrap();
        assert_eq!(msg.signature.unwrap().verify(&cert(&k)), Ok(false));
    }

    #[test]
    fn signature_over_raw_components_with_different_encoding_verifies() {
        let k = key();
        // Lowercase hex escapes: valid, but not what byte_serialize emits.
        let raw_relay = "https%3a%2f%2fsp.example.it%2fpath%2fx";
        let raw_alg = "http%3a%2f%2fwww.w3.org%2f2001%2f04%2fxmldsig-more%23rsa-sha256";
        assert_ne!(enc("https://sp.example.it/path/x"), raw_relay);
        let signed = format!(
            "SAMLRequest={}&RelayState={raw_relay}&SigAlg={raw_alg}",
            request_value(XML)
        );
        let sig = sign_b64(&k, SigAlg::RsaSha256, signed.as_bytes());
        let query = format!("{signed}&Signature={}", enc(&sig));
        let msg = decode_redirect(&query, MAX_MESSAGE_BYTES).unwrap();
        assert_eq!(
            msg.relay_state.as_deref(),
            Some("https://sp.example.it/path/x")
        );
        let sig = msg.signature.unwrap();
        assert_eq!(sig.alg(), Ok(SigAlg::RsaSha256));
        assert_eq!(sig.signed_octets, signed.as_bytes());
        assert_eq!(sig.verify(&cert(&k)), Ok(true));
    }

    #[test]
    fn signature_without_sig_alg_is_missing_parameter() {
        let query = format!("SAMLRequest={}&Signature=AAAA", request_value(XML));
        assert_eq!(
            decode_redirect(&query, MAX_MESSAGE_BYTES),
            Err(BindingError::MissingParameter("SigAlg"))
        );
        let query = format!(
            "SAMLRequest={}&SigAlg={}",
            request_value(XML),
            enc(SigAlg::RsaSha256.uri())
        );
        assert_eq!(
            decode_redirect(&query, MAX_MESSAGE_BYTES),
            Err(BindingError::MissingParameter("Signature"))
        );
    }

    #[test]
    fn missing_message_parameter() {
        assert_eq!(
            decode_redirect("RelayState=x", MAX_MESSAGE_BYTES),
            Err(BindingError::MissingParameter("SAMLRequest"))
        );
        assert_eq!(
            decode_redirect("", MAX_MESSAGE_BYTES),
            Err(BindingError::MissingParameter("SAMLRequest"))
        );
    }

    #[test]
    fn duplicate_parameters_are_refused() {
        let v = request_value(XML);
        assert_eq!(
            decode_redirect(
                &format!("SAMLRequest={v}&SAMLRequest={v}"),
                MAX_MESSAGE_BYTES
            ),
            Err(BindingError::DuplicateParameter("SAMLRequest".into()))
        );
        assert_eq!(
            decode_redirect(
                &format!("SAMLRequest={v}&RelayState=a&RelayState=b"),
                MAX_MESSAGE_BYTES
            ),
            Err(BindingError::DuplicateParameter("RelayState".into()))
        );
        assert_eq!(
            decode_redirect(
                &format!("SAMLRequest={v}&SAMLResponse={v}"),
                MAX_MESSAGE_BYTES
            ),
            Err(BindingError::DuplicateParameter(
                "SAMLRequest/SAMLResponse".into()
            ))
        );
    }

    #[test]
    fn rsa_sha1_is_unsupported() {
        let k = key();
        let sha1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
        let signed = format!("SAMLRequest={}&SigAlg={}", request_value(XML), enc(sha1));
        let mut signer = Signer::new(MessageDigest::sha1(), &k).unwrap();
        signer.update(signed.as_bytes()).unwrap();
        let sig = STANDARD.encode(signer.sign_to_vec().unwrap());
        let query = format!("{signed}&Signature={}", enc(&sig));
        let msg = decode_redirect(&query, MAX_MESSAGE_BYTES).unwrap();
        let sig = msg.signature.unwrap();
        let expected = Err(BindingError::UnsupportedSigAlg(sha1.into()));
        assert_eq!(sig.alg(), expected);
        assert_eq!(
            sig.verify(&cert(&k)).map(|_| ()),
            expected.map(|_: SigAlg| ())
        );
    }

    #[test]
    fn deflate_bomb_is_too_large() {
        let bomb = deflate(&vec![0u8; 10 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024);
        assert_eq!(
            inflate_bounded(&bomb, MAX_MESSAGE_BYTES),
            Err(BindingError::TooLarge {
                limit: MAX_MESSAGE_BYTES
            })
        );
        let query = format!("SAMLRequest={}", enc(&STANDARD.encode(&bomb)));
        assert_eq!(
            decode_redirect(&query, MAX_MESSAGE_BYTES),
            Err(BindingError::TooLarge {
                limit: MAX_MESSAGE_BYTES
            })
        );
    }

    #[test]
    fn reused_deflate_state_matches_a_fresh_encoder() {
        use std::io::Write as _;
        let fresh = |data: &[u8]| {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        };
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let inputs: [&[u8]; 5] = [XML.as_bytes(), b"", &big, b"abcabcabc", XML.as_bytes()];
        for data in inputs {
            let z = deflate(data);
            assert_eq!(z, fresh(data));
            assert_eq!(inflate_bounded(&z, data.len()).unwrap(), data);
        }
        // A failed inflate leaves no state behind for the next one.
        let z = deflate(XML.as_bytes());
        assert!(inflate_bounded(&z[..z.len() / 2], MAX_MESSAGE_BYTES).is_err());
        assert_eq!(
            inflate_bounded(&z, MAX_MESSAGE_BYTES).unwrap(),
            XML.as_bytes()
        );
    }

    #[test]
    fn inflate_limit_is_exact() {
        let data = vec![b'a'; 1000];
        let z = deflate(&data);
        assert_eq!(inflate_bounded(&z, 1000).unwrap(), data);
        assert_eq!(
            inflate_bounded(&z, 999),
            Err(BindingError::TooLarge { limit: 999 })
        );
        assert_eq!(inflate_bounded(&deflate(b""), 0).unwrap(), b"");
    }

    #[test]
    fn garbage_base64_is_base64_error() {
        assert_eq!(
            decode_redirect("SAMLRequest=%21%21not*base64%21", MAX_MESSAGE_BYTES),
            Err(BindingError::Base64)
        );
        let query = format!(
            "SAMLRequest={}&SigAlg={}&Signature=%25%25%25",
            request_value(XML),
            enc(SigAlg::RsaSha256.uri())
        );
        assert_eq!(
            decode_redirect(&query, MAX_MESSAGE_BYTES),
            Err(BindingError::Base64)
        );
    }

    #[test]
    fn non_deflate_data_is_inflate_error() {
        let query = format!("SAMLRequest={}", enc(&STANDARD.encode([0xffu8; 32])));
        assert_eq!(
            decode_redirect(&query, MAX_MESSAGE_BYTES),
            Err(BindingError::Inflate)
        );
        // Zlib-wrapped (not raw) DEFLATE is also refused.
        assert_eq!(
            inflate_bounded(&[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01], 100),
            Err(BindingError::Inflate)
        );
        // Truncated stream.
        let z = deflate(XML.as_bytes());
        assert_eq!(
            inflate_bounded(&z[..z.len() / 2], MAX_MESSAGE_BYTES),
            Err(BindingError::Inflate)
        );
        assert_eq!(inflate_bounded(&[], 100), Err(BindingError::Inflate));
    }

    #[test]
    fn non_utf8_message_is_utf8_error() {
        let query = format!(
            "SAMLRequest={}",
            enc(&STANDARD.encode(deflate(&[0xc3, 0x28])))
        );
        assert_eq!(
            decode_redirect(&query, MAX_MESSAGE_BYTES),
            Err(BindingError::Utf8)
        );
    }

    #[test]
    fn redirect_tolerates_wrapped_base64_and_unescaped_plus() {
        let b64 = STANDARD.encode(deflate(XML.as_bytes()));
        let wrapped: String = b64
            .as_bytes()
            .chunks(20)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\r\n");
        let msg = decode_redirect(&format!("SAMLRequest={}", enc(&wrapped)), 1024).unwrap();
        assert_eq!(msg.xml, XML);
        // '+' left unescaped by a sloppy encoder stays '+' in base64 values.
        assert!(b64.contains('+'), "fixture must exercise '+'");
        let sloppy = b64.replace('/', "%2F").replace('=', "%3D");
        let msg = decode_redirect(&format!("SAMLRequest={sloppy}"), 1024).unwrap();
        assert_eq!(msg.xml, XML);
    }

    #[test]
    fn malformed_queries_never_panic() {
        let k = key();
        let url = encode_redirect(
            &endpoint(),
            MessageParam::SamlRequest,
            XML,
            Some("città/ü"),
            Some((&k, SigAlg::RsaSha256)),
        )
        .unwrap();
        let query = url.query().unwrap();
        // Every prefix of a valid query, then assorted hostile fragments.
        for (i, _) in query.char_indices() {
            let _ = decode_redirect(&query[..i], MAX_MESSAGE_BYTES);
        }
        for q in [
            "%",
            "%4",
            "%zz",
            "=",
            "&&&",
            "SAMLRequest",
            "SAMLRequest=",
            "SAMLRequest=%",
            "SAMLRequest=====",
            "SAMLRequest=%C3%28",
            "RelayState=%ff&SAMLRequest=AAAA",
            "?SAMLRequest=è",
            "SigAlg&Signature&SAMLRequest",
        ] {
            let _ = decode_redirect(q, MAX_MESSAGE_BYTES);
            let _ = decode_post(q, MAX_MESSAGE_BYTES);
        }
        assert_eq!(
            decode_redirect(query, 0),
            Err(BindingError::TooLarge { limit: 0 })
        );
    }

    #[test]
    fn post_round_trip() {
        let encoded = encode_post(XML);
        assert_eq!(encoded, STANDARD.encode(XML));
        assert_eq!(decode_post(&encoded, MAX_MESSAGE_BYTES).unwrap(), XML);
    }

    #[test]
    fn post_with_wrapped_base64_lines() {
        let encoded = encode_post(XML);
        let wrapped: String = encoded
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\r\n");
        let wrapped = format!("  {wrapped}\n\t");
        assert!(wrapped.contains('\n'));
        assert_eq!(decode_post(&wrapped, MAX_MESSAGE_BYTES).unwrap(), XML);
    }

    #[test]
    fn post_oversize_is_too_large() {
        let big = "a".repeat(MAX_MESSAGE_BYTES + 1);
        assert_eq!(
            decode_post(&encode_post(&big), MAX_MESSAGE_BYTES),
            Err(BindingError::TooLarge {
                limit: MAX_MESSAGE_BYTES
            })
        );
        let exact = "a".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(
            decode_post(&encode_post(&exact), MAX_MESSAGE_BYTES).unwrap(),
            exact
        );
        // Checked before decoding: even invalid base64 of that size is TooLarge.
        assert_eq!(
            decode_post(&"!".repeat(100), 10),
            Err(BindingError::TooLarge { limit: 10 })
        );
    }

    #[test]
    fn post_garbage_is_base64_error() {
        assert_eq!(
            decode_post("not base64!", MAX_MESSAGE_BYTES),
            Err(BindingError::Base64)
        );
        assert_eq!(
            decode_post(&STANDARD.encode([0xff, 0xfe]), MAX_MESSAGE_BYTES),
            Err(BindingError::Utf8)
        );
    }

    #[test]
    fn post_form_escapes_values() {
        let action = Url::parse("https://sp.example.it/acs").unwrap();
        let evil = r#""><script>alert(1)</script>"#;
        let html = post_form_html(&action, MessageParam::SamlResponse, "PHg+", Some(evil));
        assert!(html.contains(r#"id="saml-post-form""#));
        assert!(html.contains(r#"method="post""#));
        assert!(html.contains(r#"action="https://sp.example.it/acs""#));
        assert!(html.contains(r#"name="SAMLResponse" value="PHg+""#));
        assert!(!html.contains(evil));
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&quot;&gt;&lt;script&gt;"));
        assert!(html.contains("<noscript>"));
        assert!(html.contains(r#"<button type="submit">"#));
        assert_eq!(html.matches("<script>").count(), 1);
    }

    #[test]
    fn post_form_escapes_a_message_value_that_is_not_base64() {
        // A fault plan may send anything as the message: it is escaped like any value.
        let action = Url::parse("https://sp.example.it/acs").unwrap();
        let html = post_form_html(&action, MessageParam::SamlResponse, r#"a"><b&"#, None);
        assert!(html.contains(r#"value="a&quot;&gt;&lt;b&amp;""#), "{html}");
    }

    #[test]
    fn post_form_without_relay_state() {
        let action = Url::parse("https://idp.example.it/sso").unwrap();
        let html = post_form_html(&action, MessageParam::SamlRequest, "abc", None);
        assert!(html.contains(r#"name="SAMLRequest" value="abc""#));
        assert!(!html.contains("RelayState"));
    }

    #[test]
    fn non_rsa_signing_key_is_refused() {
        let ec = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap();
        let ec = PKey::from_ec_key(ec).unwrap();
        let r = encode_redirect(
            &endpoint(),
            MessageParam::SamlRequest,
            XML,
            None,
            Some((&ec, SigAlg::RsaSha256)),
        );
        assert!(matches!(r, Err(BindingError::Crypto(_))));
    }
}
