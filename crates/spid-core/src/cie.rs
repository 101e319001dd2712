//! CIE ID ("Entra con CIE") over SAML: the facts where the CIE profile differs from SPID, from
//! the published CIE eID SAML documentation (`cie-eid-saml-docs`: protocolli, ciespid,
//! codiciErrore, federazione).
//!
//! Both our IdP (answering as a CIE IdP) and our SP (judging an IdP registered as CIE) read
//! them from here; neither imports the other.

use crate::errors::SpidError;

/// Which identity scheme an IdP speaks: SPID (the default) or CIE ID.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum IdpProfile {
    /// SPID (AgID technical rules).
    #[default]
    Spid,
    /// CIE ID (Ministero dell'Interno, the CIE eID SAML documentation).
    Cie,
}

impl IdpProfile {
    /// `spid` or `cie`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdpProfile::Spid => "spid",
            IdpProfile::Cie => "cie",
        }
    }
}

impl std::fmt::Display for IdpProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The path of the CIE IdP's HTTP-POST SSO endpoint (the Shibboleth IdP's); the real entityID
/// is this location on the IdP's host.
pub const SSO_POST_PATH: &str = "/idp/profile/SAML2/POST/SSO";
/// The path of the CIE IdP's HTTP-Redirect SSO endpoint.
pub const SSO_REDIRECT_PATH: &str = "/idp/profile/SAML2/Redirect/SSO";
/// The path of the CIE IdP's HTTP-Redirect logout endpoint ("simple logout": a LogoutRequest
/// is accepted, no LogoutResponse is sent).
pub const SLO_REDIRECT_PATH: &str = "/idp/profile/SAML2/Redirect/SLO";
/// The path of the CIE IdP's HTTP-POST logout endpoint.
pub const SLO_POST_PATH: &str = "/idp/profile/SAML2/POST/SLO";
/// The path of the CIE IdP's metadata (Shibboleth's).
pub const METADATA_PATH: &str = "/idp/shibboleth";

/// The entityID of a CIE IdP at `base` (no trailing slash): its POST SSO location, as the real
/// `https://idserver.servizicie.interno.gov.it/idp/profile/SAML2/POST/SSO`.
pub fn entity_id(base: &str) -> String {
    format!("{}{SSO_POST_PATH}", base.trim_end_matches('/'))
}

/// The eIDAS minimum data set: the only attributes a CIE SP may request, and the ones a CIE
/// IdP always releases, whatever was requested.
pub const MINIMUM_ATTRIBUTES: [&str; 4] = ["name", "familyName", "dateOfBirth", "fiscalNumber"];

/// Whether `name` is in [`MINIMUM_ATTRIBUTES`].
pub fn is_minimum_attribute(name: &str) -> bool {
    MINIMUM_ATTRIBUTES.contains(&name)
}

/// Whether a CIE IdP may send error `e` at all. The CIE table (codiciErrore) keeps the SPID
/// numbering but reserves 19, 20 and 24 (never sent) and has nothing beyond 25; 23 means the
/// card is expired or revoked. The channel of a sendable code is the SPID one
/// ([`SpidError::channel`]): 4–7 and 10 are HTTP 403 courtesy pages, 2 and 3 system pages,
/// the rest a SAML status with `ErrorCode nrXX`.
pub fn sendable(e: SpidError) -> bool {
    (1..=25).contains(&e.0) && !RESERVED_ERRORS.contains(&e)
}

/// The codes the CIE table reserves: never sent by a CIE IdP.
pub const RESERVED_ERRORS: [SpidError; 3] = [SpidError(19), SpidError(20), SpidError(24)];

/// nr23 in the CIE table: the card is expired or revoked.
pub const CARD_EXPIRED_OR_REVOKED: SpidError = SpidError(23);

/// The codes a CIE SP must be shown handling at federation (testing.rst): success and these.
pub const FEDERATION_SCREENSHOT_ERRORS: [SpidError; 3] =
    [SpidError(21), SpidError(22), SpidError(25)];

/// What goes into a CIE IdP's metadata.
#[derive(Debug, Clone)]
pub struct IdpMetadataConfig {
    /// The IdP's base URL (no trailing slash); the entityID is [`entity_id`] of it.
    pub base_url: String,
    /// The signing certificates (DER), the current one first: the real CIE IdP publishes two
    /// for key rollover.
    pub signing_certs: Vec<Vec<u8>>,
    /// Organization name.
    pub organization_name: String,
}

/// Builds metadata shaped like the real CIE IdP's (a stock Shibboleth IdP): **unsigned**, no
/// `WantAuthnRequestsSigned`, no NameIDFormat, a `shibmd:Scope` extension, one signing
/// KeyDescriptor per certificate, SingleSignOnService for HTTP-Redirect and HTTP-POST at the
/// Shibboleth profile paths, and the logout endpoints of the "simple logout".
pub fn build_idp_metadata(cfg: &IdpMetadataConfig) -> String {
    use crate::saml::ns;
    use crate::saml::xml::Element;
    use base64::Engine as _;
    const SHIBMD: &str = "urn:mace:shibboleth:metadata:1.0";
    let md = |q: &str| Element::new(q, Some(ns::MD));
    let base = cfg.base_url.trim_end_matches('/');
    let mut d = md("md:IDPSSODescriptor")
        .with_attr("protocolSupportEnumeration", ns::SAMLP)
        .with_child(
            md("md:Extensions").with_child(
                Element::new("shibmd:Scope", Some(SHIBMD))
                    .with_attr("xmlns:shibmd", SHIBMD)
                    .with_attr("regexp", "false")
                    .with_text("gov.it"),
            ),
        );
    for der in &cfg.signing_certs {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        d = d.with_child(
            md("md:KeyDescriptor")
                .with_attr("use", "signing")
                .with_child(
                    Element::new("ds:KeyInfo", Some(ns::DS))
                        .with_attr("xmlns:ds", ns::DS)
                        .with_child(Element::new("ds:X509Data", Some(ns::DS)).with_child(
                            Element::new("ds:X509Certificate", Some(ns::DS)).with_text(&b64),
                        )),
                ),
        );
    }
    for (b, path) in [
        (ns::BINDING_REDIRECT, SLO_REDIRECT_PATH),
        (ns::BINDING_POST, SLO_POST_PATH),
    ] {
        d = d.with_child(
            md("md:SingleLogoutService")
                .with_attr("Binding", b)
                .with_attr("Location", format!("{base}{path}")),
        );
    }
    for (b, path) in [
        (ns::BINDING_REDIRECT, SSO_REDIRECT_PATH),
        (ns::BINDING_POST, SSO_POST_PATH),
    ] {
        d = d.with_child(
            md("md:SingleSignOnService")
                .with_attr("Binding", b)
                .with_attr("Location", format!("{base}{path}")),
        );
    }
    md("md:EntityDescriptor")
        .with_attr("xmlns:md", ns::MD)
        .with_attr("entityID", entity_id(base))
        .with_child(d)
        .with_child(
            md("md:Organization")
                .with_child(
                    md("md:OrganizationName")
                        .with_attr("xml:lang", "it")
                        .with_text(&cfg.organization_name),
                )
                .with_child(
                    md("md:OrganizationDisplayName")
                        .with_attr("xml:lang", "it")
                        .with_text(&cfg.organization_name),
                )
                .with_child(
                    md("md:OrganizationURL")
                        .with_attr("xml:lang", "it")
                        .with_text(format!("{base}/")),
                ),
        )
        .to_xml()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_id_is_the_post_sso_location() {
        assert_eq!(
            entity_id("https://idserver.servizicie.interno.gov.it/"),
            "https://idserver.servizicie.interno.gov.it/idp/profile/SAML2/POST/SSO"
        );
    }

    #[test]
    fn reserved_codes_are_never_sendable() {
        for e in RESERVED_ERRORS {
            assert!(!sendable(e));
        }
        assert!(!sendable(SpidError(30)));
        for n in [2, 4, 8, 14, 21, 22, 23, 25] {
            assert!(sendable(SpidError(n)), "nr{n}");
        }
        assert!(FEDERATION_SCREENSHOT_ERRORS.iter().all(|e| sendable(*e)));
        assert!(sendable(CARD_EXPIRED_OR_REVOKED));
    }

    #[test]
    fn metadata_is_unsigned_shibboleth_shaped_with_two_keys() {
        let a = crate::saml::dsig::tests::test_credential("cie-a");
        let b = crate::saml::dsig::tests::test_credential("cie-b");
        let xml = build_idp_metadata(&IdpMetadataConfig {
            base_url: "http://127.0.0.1:9/".into(),
            signing_certs: vec![a.cert_der.clone(), b.cert_der.clone()],
            organization_name: "Test CIE IdP".into(),
        });
        assert!(!xml.contains("Signature") && !xml.contains("WantAuthnRequestsSigned"));
        assert!(!xml.contains("NameIDFormat") && xml.contains("shibmd:Scope"));
        let m = crate::saml::metadata::parse(&xml).unwrap();
        assert_eq!(m.entity_id, "http://127.0.0.1:9/idp/profile/SAML2/POST/SSO");
        assert_eq!(m.signing_certs, vec![a.cert_der, b.cert_der]);
        let idp = m.idp.unwrap();
        assert_eq!(
            idp.sso_for(crate::saml::ns::BINDING_REDIRECT),
            Some("http://127.0.0.1:9/idp/profile/SAML2/Redirect/SSO")
        );
        assert_eq!(
            idp.sso_for(crate::saml::ns::BINDING_POST),
            Some(m.entity_id.as_str())
        );
        assert!(!idp.want_authn_requests_signed);
    }
}
