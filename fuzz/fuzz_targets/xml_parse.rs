//! The strict XML parser: never panics, and what it accepts re-serialises to a document it
//! parses to the same tree (the IdP's post-signature edits and the SP's signed-content reading
//! rely on that round trip).
#![no_main]
use libfuzzer_sys::fuzz_target;
use spid_core::saml::xml::{self, Limits};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for limits in [
        Limits::default(),
        Limits {
            max_bytes: 4096,
            max_depth: 4,
            max_elements: 16,
            max_attributes: 2,
        },
    ] {
        if let Ok(tree) = xml::parse(text, &limits) {
            let out = tree.to_xml();
            let again = xml::parse(&out, &spid_fuzz::big_limits())
                .unwrap_or_else(|e| panic!("re-serialised tree refused: {e}\n{out}"));
            assert_eq!(again, tree, "round trip changed the tree:\n{out}");
            let _ = tree.descendants().len();
            let _ = tree.text();
        }
    }
});
