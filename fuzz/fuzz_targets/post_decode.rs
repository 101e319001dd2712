//! HTTP-POST decoding (bounded base64, UTF-8) then the strict parser and the inbound
//! enveloped-signature check: never panics, never decodes past the bound.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spid_core::saml::binding::{self, MessageParam};

fuzz_target!(|data: &[u8]| {
    let value = String::from_utf8_lossy(data);
    let limit = 64 * 1024;
    if let Ok(xml) = binding::decode_post(&value, limit) {
        assert!(xml.len() <= limit, "decoded past the bound");
    }
    // The same bytes as the XML itself, the way a POSTed message arrives once decoded.
    let b64 = binding::encode_post(&value);
    let form = vec![("SAMLResponse".to_string(), b64)];
    if let Ok(r) = spid_core::saml::inbound::receive(MessageParam::SamlResponse, None, &form) {
        let _ = r.verify(&[spid_fuzz::creds().idp.cert_der.clone()]);
    }
});
