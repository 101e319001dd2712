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

/// The CIE ID environments the Ministero dell'Interno runs: the same Shibboleth IdP with the
/// same paths, told apart by the host (`idserver.`, `preproduzione.idserver.`,
/// `collaudo.idserver.servizicie.interno.gov.it`; the federation documentation names the
/// production and pre-production metadata, the collaudo host is the one SP toolkits use for
/// acceptance tests).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CieEnv {
    /// Production: `idserver.servizicie.interno.gov.it`.
    #[default]
    Production,
    /// Pre-production (test), reachable without VPN: `preproduzione.idserver.…`.
    Preproduction,
    /// Collaudo (acceptance): `collaudo.idserver.…`.
    Collaudo,
}

/// The domain every real CIE ID environment lives under.
pub const REAL_DOMAIN: &str = "idserver.servizicie.interno.gov.it";

/// The loopback domain our IdP uses for an environment's host (`*.localhost` resolves to
/// loopback in browsers, RFC 6761; the harness's user agent resolves it the same way).
pub const LOOPBACK_DOMAIN: &str = "idserver.localhost";

impl CieEnv {
    /// Every environment.
    pub const ALL: [CieEnv; 3] = [CieEnv::Production, CieEnv::Preproduction, CieEnv::Collaudo];

    /// `production`, `preproduction` or `collaudo` (the `--cie-env` values).
    pub fn as_str(self) -> &'static str {
        match self {
            CieEnv::Production => "production",
            CieEnv::Preproduction => "preproduction",
            CieEnv::Collaudo => "collaudo",
        }
    }

    /// Parses an [`CieEnv::as_str`] value.
    pub fn parse(s: &str) -> Option<CieEnv> {
        CieEnv::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The host label in front of the domain: none in production, `preproduzione` or
    /// `collaudo`.
    pub fn label(self) -> Option<&'static str> {
        match self {
            CieEnv::Production => None,
            CieEnv::Preproduction => Some("preproduzione"),
            CieEnv::Collaudo => Some("collaudo"),
        }
    }

    /// The host of the environment under `domain` ([`REAL_DOMAIN`] or [`LOOPBACK_DOMAIN`]).
    pub fn host_under(self, domain: &str) -> String {
        match self.label() {
            None => domain.to_string(),
            Some(l) => format!("{l}.{domain}"),
        }
    }

    /// The real entityID of the environment
    /// (`https://collaudo.idserver.servizicie.interno.gov.it/idp/profile/SAML2/POST/SSO`).
    pub fn real_entity_id(self) -> String {
        entity_id(&format!("https://{}", self.host_under(REAL_DOMAIN)))
    }

    /// The real metadata URL of the environment (`…/idp/shibboleth?Metadata`).
    pub fn real_metadata_url(self) -> String {
        format!(
            "https://{}{METADATA_PATH}?Metadata",
            self.host_under(REAL_DOMAIN)
        )
    }

    /// The base URL our IdP uses for the environment on loopback `port`: production keeps
    /// `http://127.0.0.1:<port>`; the others put their label in front of [`LOOPBACK_DOMAIN`]
    /// (`http://collaudo.idserver.localhost:<port>`), so the entityID differs where the real
    /// ones do and the paths stay the real ones.
    pub fn loopback_base(self, port: u16) -> String {
        match self {
            CieEnv::Production => format!("http://127.0.0.1:{port}"),
            _ => format!("http://{}:{port}", self.host_under(LOOPBACK_DOMAIN)),
        }
    }

    /// The environment a CIE IdP entityID names: its path must be [`SSO_POST_PATH`]; the
    /// host's first label decides (`preproduzione`, `collaudo`, anything else production).
    /// `None` when the entityID does not have the CIE shape.
    pub fn of_entity_id(entity_id: &str) -> Option<CieEnv> {
        let u = url::Url::parse(entity_id).ok()?;
        if u.path() != SSO_POST_PATH || u.query().is_some() || u.fragment().is_some() {
            return None;
        }
        if !matches!(u.scheme(), "https" | "http") {
            return None;
        }
        let first = u.host_str()?.split('.').next().unwrap_or_default();
        Some(match first {
            "preproduzione" => CieEnv::Preproduction,
            "collaudo" => CieEnv::Collaudo,
            _ => CieEnv::Production,
        })
    }

    /// Whether `host` is one of the real CIE ID hosts.
    pub fn is_real_host(host: &str) -> bool {
        CieEnv::ALL
            .iter()
            .any(|e| e.host_under(REAL_DOMAIN).eq_ignore_ascii_case(host))
    }
}

impl std::fmt::Display for CieEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

/// The message a CIE SP shows the user for error `e` (as the CIE table gives the meaning;
/// nr23 is the card, not an identity).
pub fn user_message(e: SpidError) -> &'static str {
    match e.0 {
        8..=18 => "La richiesta di autenticazione del servizio non è conforme a CIE ID.",
        23 => "La tua Carta d'Identità Elettronica risulta scaduta o revocata.",
        _ => e.user_message(),
    }
}

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

/// The namespace of the CIE SP metadata extensions (in the administrative ContactPerson).
pub const SAML_EXTENSIONS_NS: &str = "https://www.cartaidentita.interno.gov.it/saml-extensions";

/// Who the CIE SP is, for its administrative ContactPerson's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpKind {
    /// A public administration: `cie:Public` and `cie:IPACode`.
    Public {
        /// IndicePA code.
        ipa_code: String,
    },
    /// A private SP: `cie:Private`, `cie:VATNumber` and/or `cie:FiscalCode`, `cie:NACE2Code`.
    Private {
        /// VAT number with country prefix (`IT12345678901`).
        vat_number: Option<String>,
        /// Fiscal code.
        fiscal_code: Option<String>,
        /// NACE rev. 2 activity code.
        nace2_code: String,
    },
}

/// What goes into a CIE SP's metadata (one model for every kind of SP).
#[derive(Debug, Clone)]
pub struct SpMetadataConfig {
    /// entityID.
    pub entity_id: String,
    /// ACS (HTTP-POST), index 0, default.
    pub acs_url: String,
    /// SingleLogoutService location (HTTP-Redirect, as CIE requires, and HTTP-POST).
    pub slo_url: String,
    /// AttributeConsumingService index 0: within [`MINIMUM_ATTRIBUTES`].
    pub attributes: Vec<String>,
    /// ServiceName: a name, or a UUID v4 (`urn:uuid:…`, then written with `xml:lang=""`).
    pub service_name: String,
    /// Organization legal name (also the ContactPerson's Company, which must equal it).
    pub organization_name: String,
    /// Organization URL.
    pub organization_url: String,
    /// Administrative contact e-mail.
    pub contact_email: String,
    /// Administrative contact telephone.
    pub contact_phone: Option<String>,
    /// The SP's municipality (its Belfiore cadastral code, e.g. `H501` for Roma): mandatory.
    pub municipality: String,
    /// Province (two letters), optional.
    pub province: Option<String>,
    /// Public or private.
    pub kind: SpKind,
}

/// Builds and signs a CIE SP's metadata: `AuthnRequestsSigned` and `WantAssertionsSigned`,
/// SingleLogoutService with HTTP-Redirect, transient NameID, one ACS and one
/// AttributeConsumingService within the eIDAS minimum set, the Organization, and the
/// administrative ContactPerson with the CIE extensions (Public or Private, IPACode or
/// VATNumber/FiscalCode/NACE2Code, Municipality, Province, Country) and Company =
/// OrganizationName.
pub fn build_sp_metadata(
    cfg: &SpMetadataConfig,
    cred: &crate::saml::dsig::Credential,
) -> Result<String, crate::saml::dsig::DsigError> {
    use crate::saml::ns;
    use crate::saml::xml::Element;
    let md = |q: &str| Element::new(q, Some(ns::MD));
    let c = |q: &str| Element::new(q, Some(SAML_EXTENSIONS_NS));
    let lang = |q: &str, text: &str| md(q).with_attr("xml:lang", "it").with_text(text);
    let mut sp = md("md:SPSSODescriptor")
        .with_attr("protocolSupportEnumeration", ns::SAMLP)
        .with_attr("AuthnRequestsSigned", "true")
        .with_attr("WantAssertionsSigned", "true")
        .with_child(
            md("md:KeyDescriptor")
                .with_attr("use", "signing")
                .with_child(
                    Element::new("ds:KeyInfo", Some(ns::DS))
                        .with_attr("xmlns:ds", ns::DS)
                        .with_child(
                            Element::new("ds:X509Data", Some(ns::DS)).with_child(
                                Element::new("ds:X509Certificate", Some(ns::DS))
                                    .with_text(cred.cert_base64()),
                            ),
                        ),
                ),
        );
    for b in [ns::BINDING_REDIRECT, ns::BINDING_POST] {
        sp = sp.with_child(
            md("md:SingleLogoutService")
                .with_attr("Binding", b)
                .with_attr("Location", &cfg.slo_url),
        );
    }
    let service_name = if cfg.service_name.starts_with("urn:uuid:") {
        md("md:ServiceName")
            .with_attr("xml:lang", "")
            .with_text(&cfg.service_name)
    } else {
        lang("md:ServiceName", &cfg.service_name)
    };
    let mut acs = md("md:AttributeConsumingService")
        .with_attr("index", "0")
        .with_child(service_name);
    for a in &cfg.attributes {
        acs = acs.with_child(
            md("md:RequestedAttribute")
                .with_attr("Name", a)
                .with_attr("NameFormat", ns::ATTRNAME_BASIC),
        );
    }
    sp = sp
        .with_child(md("md:NameIDFormat").with_text(ns::NAMEID_TRANSIENT))
        .with_child(
            md("md:AssertionConsumerService")
                .with_attr("index", "0")
                .with_attr("isDefault", "true")
                .with_attr("Binding", ns::BINDING_POST)
                .with_attr("Location", &cfg.acs_url),
        )
        .with_child(acs);
    let mut ext = md("md:Extensions").with_attr("xmlns:cie", SAML_EXTENSIONS_NS);
    match &cfg.kind {
        SpKind::Public { ipa_code } => {
            ext = ext
                .with_child(c("cie:Public"))
                .with_child(c("cie:IPACode").with_text(ipa_code));
        }
        SpKind::Private {
            vat_number,
            fiscal_code,
            nace2_code,
        } => {
            ext = ext.with_child(c("cie:Private"));
            if let Some(v) = vat_number {
                ext = ext.with_child(c("cie:VATNumber").with_text(v));
            }
            if let Some(f) = fiscal_code {
                ext = ext.with_child(c("cie:FiscalCode").with_text(f));
            }
            ext = ext.with_child(c("cie:NACE2Code").with_text(nace2_code));
        }
    }
    ext = ext.with_child(c("cie:Municipality").with_text(&cfg.municipality));
    if let Some(p) = &cfg.province {
        ext = ext.with_child(c("cie:Province").with_text(p));
    }
    ext = ext.with_child(c("cie:Country").with_text("IT"));
    let mut contact = md("md:ContactPerson")
        .with_attr("contactType", "administrative")
        .with_child(ext)
        .with_child(md("md:Company").with_text(&cfg.organization_name))
        .with_child(md("md:EmailAddress").with_text(&cfg.contact_email));
    if let Some(p) = &cfg.contact_phone {
        contact = contact.with_child(md("md:TelephoneNumber").with_text(p));
    }
    let root = md("md:EntityDescriptor")
        .with_attr("xmlns:md", ns::MD)
        .with_attr("entityID", &cfg.entity_id)
        .with_attr("ID", crate::saml::new_id())
        .with_child(sp)
        .with_child(
            md("md:Organization")
                .with_child(lang("md:OrganizationName", &cfg.organization_name))
                .with_child(lang("md:OrganizationDisplayName", &cfg.organization_name))
                .with_child(lang("md:OrganizationURL", &cfg.organization_url)),
        )
        .with_child(contact);
    crate::saml::dsig::sign_root(root, cred)
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
    fn the_three_environments_differ_by_host_only() {
        assert_eq!(
            CieEnv::Production.real_entity_id(),
            "https://idserver.servizicie.interno.gov.it/idp/profile/SAML2/POST/SSO"
        );
        assert_eq!(
            CieEnv::Preproduction.real_entity_id(),
            "https://preproduzione.idserver.servizicie.interno.gov.it/idp/profile/SAML2/POST/SSO"
        );
        assert_eq!(
            CieEnv::Collaudo.real_metadata_url(),
            "https://collaudo.idserver.servizicie.interno.gov.it/idp/shibboleth?Metadata"
        );
        for e in CieEnv::ALL {
            assert_eq!(CieEnv::parse(e.as_str()), Some(e));
            assert_eq!(CieEnv::of_entity_id(&e.real_entity_id()), Some(e));
            assert_eq!(
                CieEnv::of_entity_id(&entity_id(&e.loopback_base(8443))),
                Some(e)
            );
            assert!(CieEnv::is_real_host(&e.host_under(REAL_DOMAIN)));
        }
        assert_eq!(
            CieEnv::Collaudo.loopback_base(9),
            "http://collaudo.idserver.localhost:9"
        );
        assert_eq!(CieEnv::of_entity_id("http://127.0.0.1:9/metadata"), None);
        assert_eq!(
            CieEnv::of_entity_id("http://127.0.0.1:9/idp/profile/SAML2/POST/SSO?x=1"),
            None
        );
        assert_eq!(CieEnv::parse("staging"), None);
        assert!(!CieEnv::is_real_host("idserver.localhost"));
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
        assert!(user_message(CARD_EXPIRED_OR_REVOKED).contains("scaduta o revocata"));
        assert!(!user_message(SpidError(14)).contains("SPID"));
        assert_eq!(user_message(SpidError(25)), SpidError(25).user_message());
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

    #[test]
    fn sp_metadata_has_the_cie_shape_and_verifies() {
        let cred = crate::saml::dsig::tests::test_credential("cie-sp");
        let cfg = SpMetadataConfig {
            entity_id: "http://127.0.0.1:8/metadata".into(),
            acs_url: "http://127.0.0.1:8/acs".into(),
            slo_url: "http://127.0.0.1:8/slo".into(),
            attributes: MINIMUM_ATTRIBUTES.map(String::from).to_vec(),
            service_name: "urn:uuid:7a3c1d2e-4b5f-4c6d-8e9f-0a1b2c3d4e5f".into(),
            organization_name: "Comune di Prova".into(),
            organization_url: "http://127.0.0.1:8/".into(),
            contact_email: "cie@example.org".into(),
            contact_phone: None,
            municipality: "H501".into(),
            province: Some("RM".into()),
            kind: SpKind::Public {
                ipa_code: "c_h501".into(),
            },
        };
        let xml = build_sp_metadata(&cfg, &cred).unwrap();
        crate::saml::metadata::verify(&xml, std::slice::from_ref(&cred.cert_der)).unwrap();
        let m = crate::saml::metadata::parse(&xml).unwrap();
        let sp = m.sp.unwrap();
        assert!(sp.authn_requests_signed);
        assert_eq!(sp.attribute_services[0].attributes.len(), 4);
        assert!(sp
            .slo
            .iter()
            .any(|e| e.binding == crate::saml::ns::BINDING_REDIRECT));
        for needle in [
            SAML_EXTENSIONS_NS,
            "<cie:Public/>",
            "<cie:IPACode>c_h501</cie:IPACode>",
            "<cie:Municipality>H501</cie:Municipality>",
            "contactType=\"administrative\"",
            "<md:Company>Comune di Prova</md:Company>",
            "xml:lang=\"\">urn:uuid:",
        ] {
            assert!(xml.contains(needle), "{needle}");
        }
    }
}
