//! HTTP-Redirect decoding (query splitting, percent-decoding, base64, bounded inflate) and
//! the query-signature check: never panics, never inflates past the bound.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spid_core::saml::binding;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        let _ = binding::inflate_bounded(data, 64 * 1024);
        return;
    };
    let limit = 64 * 1024;
    if let Ok(m) = binding::decode_redirect(query, limit) {
        assert!(m.xml.len() <= limit, "inflated past the bound");
        if let Some(sig) = &m.signature {
            let _ = sig.alg();
            let _ = sig.verify(&spid_fuzz::creds().sp.cert);
        }
        let _ = spid_core::saml::xml::parse(&m.xml, &Default::default());
    }
    let _ = spid_core::saml::inbound::receive(
        spid_core::saml::binding::MessageParam::SamlRequest,
        Some(query),
        &[],
    )
    .map(|r| r.verify(&[spid_fuzz::creds().sp.cert_der.clone()]));
});
