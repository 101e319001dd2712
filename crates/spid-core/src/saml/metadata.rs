//! SAML metadata for SPID: build and sign SP (Avviso 29) and IdP metadata, and parse either.

use super::dsig::{self, Credential, DsigError};
use super::ns;
use super::xml::{self, Element, Limits};
use base64::Engine as _;

/// An endpoint (`Binding`, `Location`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Binding URI.
    pub binding: String,
    /// URL.
    pub location: String,
}

/// An indexed endpoint (AssertionConsumerService).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedEndpoint {
    /// `index`.
    pub index: u16,
    /// `isDefault`.
    pub is_default: bool,
    /// Binding and Location.
    pub endpoint: Endpoint,
}

/// An AttributeConsumingService.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeService {
    /// `index`.
    pub index: u16,
    /// Requested attribute names.
    pub attributes: Vec<String>,
}

/// What an IDPSSODescriptor says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdpDescriptor {
    /// SingleSignOnService endpoints.
    pub sso: Vec<Endpoint>,
    /// SingleLogoutService endpoints.
    pub slo: Vec<Endpoint>,
    /// WantAuthnRequestsSigned.
    pub want_authn_requests_signed: bool,
}

impl IdpDescriptor {
    /// The SSO location for `binding`.
    pub fn sso_for(&self, binding: &str) -> Option<&str> {
        self.sso
            .iter()
            .find(|e| e.binding == binding)
            .map(|e| e.location.as_str())
    }
}

/// What an SPSSODescriptor says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpDescriptor {
    /// AssertionConsumerService endpoints.
    pub acs: Vec<IndexedEndpoint>,
    /// SingleLogoutService endpoints.
    pub slo: Vec<Endpoint>,
    /// AttributeConsumingService entries.
    pub attribute_services: Vec<AttributeService>,
    /// AuthnRequestsSigned.
    pub authn_requests_signed: bool,
}

/// A parsed EntityDescriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityMetadata {
    /// entityID.
    pub entity_id: String,
    /// Signing certificates (DER).
    pub signing_certs: Vec<Vec<u8>>,
    /// IdP role, if present.
    pub idp: Option<IdpDescriptor>,
    /// SP role, if present.
    pub sp: Option<SpDescriptor>,
}

/// Why metadata could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// Not XML the strict parser accepts.
    #[error("metadata XML: {0}")]
    Xml(#[from] xml::XmlError),
    /// Not an EntityDescriptor, or a required part is missing.
    #[error("metadata: {0}")]
    Invalid(String),
    /// The signature does not verify.
    #[error("metadata signature: {0}")]
    Signature(#[from] DsigError),
}

fn limits() -> Limits {
    Limits {
        max_bytes: 1 << 20,
        ..Limits::default()
    }
}

fn endpoints(d: &Element, local: &str) -> Vec<Endpoint> {
    d.children_named(ns::MD, local)
        .filter_map(|e| {
            Some(Endpoint {
                binding: e.attr("Binding")?.to_string(),
                location: e.attr("Location")?.to_string(),
            })
        })
        .collect()
}

fn signing_certs(d: &Element) -> Vec<Vec<u8>> {
    d.children_named(ns::MD, "KeyDescriptor")
        .filter(|k| k.attr("use").is_none_or(|u| u == "signing"))
        .filter_map(|k| {
            let c = k
                .child(ns::DS, "KeyInfo")?
                .child(ns::DS, "X509Data")?
                .child(ns::DS, "X509Certificate")?
                .text();
            let clean: String = c.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD.decode(clean).ok()
        })
        .filter(|der| !der.is_empty())
        .collect()
}

/// Parses metadata (signature not checked; see [`verify`]).
pub fn parse(xml_text: &str) -> Result<EntityMetadata, MetadataError> {
    let root = xml::parse(xml_text, &limits())?;
    if !root.is(ns::MD, "EntityDescriptor") {
        return Err(MetadataError::Invalid(
            "root is not md:EntityDescriptor".into(),
        ));
    }
    let entity_id = root
        .attr("entityID")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| MetadataError::Invalid("entityID missing".into()))?
        .to_string();
    let mut certs = Vec::new();
    let idp = root.child(ns::MD, "IDPSSODescriptor").map(|d| {
        certs.extend(signing_certs(d));
        IdpDescriptor {
            sso: endpoints(d, "SingleSignOnService"),
            slo: endpoints(d, "SingleLogoutService"),
            want_authn_requests_signed: d.attr("WantAuthnRequestsSigned") == Some("true"),
        }
    });
    let sp = root.child(ns::MD, "SPSSODescriptor").map(|d| {
        certs.extend(signing_certs(d));
        SpDescriptor {
            acs: d
                .children_named(ns::MD, "AssertionConsumerService")
                .filter_map(|e| {
                    Some(IndexedEndpoint {
                        index: e.attr("index")?.parse().ok()?,
                        is_default: e.attr("isDefault") == Some("true"),
                        endpoint: Endpoint {
                            binding: e.attr("Binding")?.to_string(),
                            location: e.attr("Location")?.to_string(),
                        },
                    })
                })
                .collect(),
            slo: endpoints(d, "SingleLogoutService"),
            attribute_services: d
                .children_named(ns::MD, "AttributeConsumingService")
                .filter_map(|s| {
                    Some(AttributeService {
                        index: s.attr("index")?.parse().ok()?,
                        attributes: s
                            .children_named(ns::MD, "RequestedAttribute")
                            .filter_map(|r| r.attr("Name").map(str::to_string))
                            .collect(),
                    })
                })
                .collect(),
            authn_requests_signed: d.attr("AuthnRequestsSigned") == Some("true"),
        }
    });
    Ok(EntityMetadata {
        entity_id,
        signing_certs: certs,
        idp,
        sp,
    })
}

/// Verifies the metadata's enveloped signature with `trusted` (DER certificates).
pub fn verify(xml_text: &str, trusted: &[Vec<u8>]) -> Result<(), MetadataError> {
    let reduced = dsig::verify_and_reduce(xml_text, trusted)?;
    // The signature must cover the whole EntityDescriptor, not a fragment of it.
    let root = xml::parse(&reduced, &limits())?;
    if root.is(ns::MD, "EntityDescriptor") {
        Ok(())
    } else {
        Err(MetadataError::Signature(DsigError::Invalid))
    }
}

/// The kind of SP, which decides the ContactPerson extensions (Avviso 29).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpKind {
    /// A public administration: `spid:IPACode` + `spid:Public`.
    Public {
        /// IndicePA code.
        ipa_code: String,
    },
    /// A private SP: `spid:VATNumber` and/or `spid:FiscalCode` + `spid:Private`, and a billing
    /// contact with FatturaPA `CessionarioCommittente`.
    Private {
        /// VAT number with country prefix (`IT12345678901`).
        vat_number: Option<String>,
        /// Fiscal code.
        fiscal_code: Option<String>,
        /// Billing e-mail.
        billing_email: String,
        /// Billed company name.
        billing_company: String,
    },
}

/// What goes into SP metadata.
#[derive(Debug, Clone)]
pub struct SpMetadataConfig {
    /// entityID.
    pub entity_id: String,
    /// ACS (HTTP-POST), index 0, default.
    pub acs_url: String,
    /// SingleLogoutService location (POST and Redirect).
    pub slo_url: String,
    /// AttributeConsumingService index 0 attribute names.
    pub attributes: Vec<String>,
    /// ServiceName (Italian).
    pub service_name: String,
    /// Organization legal name.
    pub organization_name: String,
    /// Organization display name.
    pub organization_display_name: String,
    /// Organization URL.
    pub organization_url: String,
    /// Technical contact e-mail.
    pub contact_email: String,
    /// Contact telephone (`+39…`, no spaces).
    pub contact_phone: Option<String>,
    /// Public or private.
    pub kind: SpKind,
}

fn key_descriptor(cert_b64: &str) -> Element {
    Element::new("md:KeyDescriptor", Some(ns::MD))
        .with_attr("use", "signing")
        .with_child(
            Element::new("ds:KeyInfo", Some(ns::DS))
                .with_attr("xmlns:ds", ns::DS)
                .with_child(Element::new("ds:X509Data", Some(ns::DS)).with_child(
                    Element::new("ds:X509Certificate", Some(ns::DS)).with_text(cert_b64),
                )),
        )
}

fn md(q: &str) -> Element {
    Element::new(q, Some(ns::MD))
}

fn lang(q: &str, text: &str) -> Element {
    md(q).with_attr("xml:lang", "it").with_text(text)
}

fn organization(name: &str, display: &str, url: &str) -> Element {
    md("md:Organization")
        .with_child(lang("md:OrganizationName", name))
        .with_child(lang("md:OrganizationDisplayName", display))
        .with_child(lang("md:OrganizationURL", url))
}

/// Builds and signs SP metadata.
pub fn build_sp(cfg: &SpMetadataConfig, cred: &Credential) -> Result<String, DsigError> {
    let mut sp = md("md:SPSSODescriptor")
        .with_attr("protocolSupportEnumeration", ns::SAMLP)
        .with_attr("AuthnRequestsSigned", "true")
        .with_attr("WantAssertionsSigned", "true")
        .with_child(key_descriptor(&cred.cert_base64()));
    for b in [ns::BINDING_POST, ns::BINDING_REDIRECT] {
        sp = sp.with_child(
            md("md:SingleLogoutService")
                .with_attr("Binding", b)
                .with_attr("Location", &cfg.slo_url),
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
        );
    let mut acs = md("md:AttributeConsumingService")
        .with_attr("index", "0")
        .with_child(lang("md:ServiceName", &cfg.service_name));
    for a in &cfg.attributes {
        acs = acs.with_child(
            md("md:RequestedAttribute")
                .with_attr("Name", a)
                .with_attr("NameFormat", ns::ATTRNAME_BASIC),
        );
    }
    sp = sp.with_child(acs);

    let s = |q: &str| Element::new(q, Some(ns::SPID));
    let mut ext = md("md:Extensions");
    let mut billing = None;
    match &cfg.kind {
        SpKind::Public { ipa_code } => {
            ext = ext
                .with_child(s("spid:IPACode").with_text(ipa_code))
                .with_child(s("spid:Public"));
        }
        SpKind::Private {
            vat_number,
            fiscal_code,
            billing_email,
            billing_company,
        } => {
            if let Some(v) = vat_number {
                ext = ext.with_child(s("spid:VATNumber").with_text(v));
            }
            if let Some(f) = fiscal_code {
                ext = ext.with_child(s("spid:FiscalCode").with_text(f));
            }
            ext = ext.with_child(s("spid:Private"));
            billing = Some(private_billing(
                vat_number.as_deref(),
                fiscal_code.as_deref(),
                billing_email,
                billing_company,
            ));
        }
    }
    let mut contact = md("md:ContactPerson")
        .with_attr("contactType", "other")
        .with_child(ext)
        .with_child(md("md:EmailAddress").with_text(&cfg.contact_email));
    if let Some(p) = &cfg.contact_phone {
        contact = contact.with_child(md("md:TelephoneNumber").with_text(p));
    }
    let mut root = md("md:EntityDescriptor")
        .with_attr("xmlns:md", ns::MD)
        .with_attr("xmlns:spid", ns::SPID)
        .with_attr("entityID", &cfg.entity_id)
        .with_attr("ID", super::new_id())
        .with_child(sp)
        .with_child(organization(
            &cfg.organization_name,
            &cfg.organization_display_name,
            &cfg.organization_url,
        ))
        .with_child(contact);
    if let Some(b) = billing {
        root = root.with_child(b);
    }
    dsig::sign_root(root, cred)
}

fn private_billing(vat: Option<&str>, cf: Option<&str>, email: &str, company: &str) -> Element {
    const FPA: &str = "https://spid.gov.it/invoicing-extensions";
    let f = |q: &str| Element::new(q, Some(FPA));
    let mut dati = f("fpa:DatiAnagrafici");
    if let Some(v) = vat {
        let (country, code) = v.split_at(v.len().min(2));
        dati = dati.with_child(
            f("fpa:IdFiscaleIVA")
                .with_child(f("fpa:IdPaese").with_text(country))
                .with_child(f("fpa:IdCodice").with_text(code)),
        );
    }
    if let Some(c) = cf {
        dati = dati.with_child(f("fpa:CodiceFiscale").with_text(c));
    }
    dati =
        dati.with_child(f("fpa:Anagrafica").with_child(f("fpa:Denominazione").with_text(company)));
    let sede = f("fpa:Sede")
        .with_child(f("fpa:Indirizzo").with_text("Via del Test"))
        .with_child(f("fpa:NumeroCivico").with_text("1"))
        .with_child(f("fpa:CAP").with_text("00100"))
        .with_child(f("fpa:Comune").with_text("Roma"))
        .with_child(f("fpa:Provincia").with_text("RM"))
        .with_child(f("fpa:Nazione").with_text("IT"));
    md("md:ContactPerson")
        .with_attr("contactType", "billing")
        .with_child(
            md("md:Extensions").with_attr("xmlns:fpa", FPA).with_child(
                f("fpa:CessionarioCommittente")
                    .with_child(dati)
                    .with_child(sede),
            ),
        )
        .with_child(md("md:Company").with_text(company))
        .with_child(md("md:EmailAddress").with_text(email))
}

/// What goes into IdP metadata.
#[derive(Debug, Clone)]
pub struct IdpMetadataConfig {
    /// entityID.
    pub entity_id: String,
    /// SingleSignOnService location (both bindings).
    pub sso_url: String,
    /// SingleLogoutService location (both bindings).
    pub slo_url: String,
    /// Organization name.
    pub organization_name: String,
    /// Organization URL.
    pub organization_url: String,
}

/// Builds and signs IdP metadata: `WantAuthnRequestsSigned="true"`, SSO and SLO for
/// HTTP-Redirect and HTTP-POST, transient NameID, and every SPID attribute it can release.
pub fn build_idp(cfg: &IdpMetadataConfig, cred: &Credential) -> Result<String, DsigError> {
    let mut d = md("md:IDPSSODescriptor")
        .with_attr("protocolSupportEnumeration", ns::SAMLP)
        .with_attr("WantAuthnRequestsSigned", "true")
        .with_child(key_descriptor(&cred.cert_base64()));
    for b in [ns::BINDING_REDIRECT, ns::BINDING_POST] {
        d = d.with_child(
            md("md:SingleLogoutService")
                .with_attr("Binding", b)
                .with_attr("Location", &cfg.slo_url),
        );
    }
    d = d.with_child(md("md:NameIDFormat").with_text(ns::NAMEID_TRANSIENT));
    for b in [ns::BINDING_REDIRECT, ns::BINDING_POST] {
        d = d.with_child(
            md("md:SingleSignOnService")
                .with_attr("Binding", b)
                .with_attr("Location", &cfg.sso_url),
        );
    }
    for a in crate::attributes::SPID_ATTRIBUTES {
        d = d.with_child(
            Element::new("saml:Attribute", Some(ns::SAML))
                .with_attr("xmlns:saml", ns::SAML)
                .with_attr("Name", a)
                .with_attr("NameFormat", ns::ATTRNAME_BASIC),
        );
    }
    let root = md("md:EntityDescriptor")
        .with_attr("xmlns:md", ns::MD)
        .with_attr("entityID", &cfg.entity_id)
        .with_attr("ID", super::new_id())
        .with_child(d)
        .with_child(organization(
            &cfg.organization_name,
            &cfg.organization_name,
            &cfg.organization_url,
        ));
    dsig::sign_root(root, cred)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::dsig::tests::test_credential;

    fn sp_cfg() -> SpMetadataConfig {
        SpMetadataConfig {
            entity_id: "http://127.0.0.1:1/sp".into(),
            acs_url: "http://127.0.0.1:1/acs".into(),
            slo_url: "http://127.0.0.1:1/slo".into(),
            attributes: vec!["spidCode".into(), "fiscalNumber".into()],
            service_name: "Servizio di prova".into(),
            organization_name: "Ente di prova".into(),
            organization_display_name: "Ente".into(),
            organization_url: "http://127.0.0.1:1/".into(),
            contact_email: "tech@example.org".into(),
            contact_phone: Some("+390612345678".into()),
            kind: SpKind::Public {
                ipa_code: "c_h501".into(),
            },
        }
    }

    #[test]
    fn sp_metadata_round_trip_and_signature() {
        let cred = test_credential("sp");
        let xml = build_sp(&sp_cfg(), &cred).unwrap();
        let m = parse(&xml).unwrap();
        assert_eq!(m.entity_id, "http://127.0.0.1:1/sp");
        assert_eq!(m.signing_certs, vec![cred.cert_der.clone()]);
        let sp = m.sp.unwrap();
        assert_eq!(sp.acs[0].index, 0);
        assert!(sp.acs[0].is_default && sp.authn_requests_signed);
        assert_eq!(sp.attribute_services[0].attributes.len(), 2);
        verify(&xml, std::slice::from_ref(&cred.cert_der)).unwrap();
        let other = test_credential("x");
        assert!(matches!(
            verify(&xml, &[other.cert_der]),
            Err(MetadataError::Signature(DsigError::Invalid))
        ));
        let tampered = xml.replace("/acs\"", "/evil\"");
        assert!(verify(&tampered, &[cred.cert_der]).is_err());
    }

    #[test]
    fn idp_metadata_round_trip() {
        let cred = test_credential("idp");
        let xml = build_idp(
            &IdpMetadataConfig {
                entity_id: "http://127.0.0.1:2/".into(),
                sso_url: "http://127.0.0.1:2/sso".into(),
                slo_url: "http://127.0.0.1:2/slo".into(),
                organization_name: "Test IdP".into(),
                organization_url: "http://127.0.0.1:2/".into(),
            },
            &cred,
        )
        .unwrap();
        let m = parse(&xml).unwrap();
        let idp = m.idp.unwrap();
        assert!(idp.want_authn_requests_signed);
        assert_eq!(
            idp.sso_for(ns::BINDING_POST),
            Some("http://127.0.0.1:2/sso")
        );
        verify(&xml, &[cred.cert_der]).unwrap();
    }
}
