//! Static checks of an SP under test: its metadata (SPID SP profile, Avviso 29) and the
//! AuthnRequest it sends (SPID rules). Each check has a stable id.

use serde::Serialize;
use spid_core::attributes::is_spid_attribute;
use spid_core::saml::authn_request::AuthnRequest;
use spid_core::saml::binding;
use spid_core::saml::dsig;
use spid_core::saml::metadata::{self, EntityMetadata};
use spid_core::saml::ns;
use spid_core::saml::xml::{self, Element, Limits};
use spid_core::SpidLevel;

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Stable id, e.g. `metadata.signed`.
    pub id: &'static str,
    /// Whether it holds.
    pub pass: bool,
    /// What was seen.
    pub detail: String,
}

/// Appends a check result.
pub(crate) fn check(
    out: &mut Vec<CheckResult>,
    id: &'static str,
    pass: bool,
    detail: impl Into<String>,
) {
    out.push(CheckResult {
        id,
        pass,
        detail: detail.into(),
    });
}

/// Checks SP metadata. Returns the parsed metadata when it is usable at all.
pub fn metadata_checks(text: &str) -> (Vec<CheckResult>, Option<EntityMetadata>) {
    let mut out = Vec::new();
    let root = match xml::parse(
        text,
        &Limits {
            max_bytes: 1 << 20,
            ..Limits::default()
        },
    ) {
        Ok(r) => r,
        Err(e) => {
            check(&mut out, "metadata.xml", false, e.to_string());
            return (out, None);
        }
    };
    check(&mut out, "metadata.xml", true, "well-formed, no DTD");
    let parsed = metadata::parse(text);
    let m = match parsed {
        Ok(m) => m,
        Err(e) => {
            check(&mut out, "metadata.entity-descriptor", false, e.to_string());
            return (out, None);
        }
    };
    check(
        &mut out,
        "metadata.entity-descriptor",
        true,
        format!("entityID {}", m.entity_id),
    );
    let sps: Vec<&Element> = root.children_named(ns::MD, "SPSSODescriptor").collect();
    check(
        &mut out,
        "metadata.sp-descriptor",
        sps.len() == 1,
        format!("{} SPSSODescriptor", sps.len()),
    );
    check(
        &mut out,
        "metadata.signing-certificate",
        !m.signing_certs.is_empty(),
        format!("{} signing certificate(s)", m.signing_certs.len()),
    );
    let signed = self_signed(text, &root, &m);
    check(
        &mut out,
        "metadata.signed",
        signed,
        if signed {
            "enveloped signature verifies"
        } else {
            "no valid enveloped signature"
        },
    );
    let Some(sp) = sps.first() else {
        return (out, Some(m));
    };
    check(
        &mut out,
        "metadata.protocol-support",
        sp.attr("protocolSupportEnumeration") == Some(ns::SAMLP),
        format!("{:?}", sp.attr("protocolSupportEnumeration")),
    );
    check(
        &mut out,
        "metadata.authn-requests-signed",
        sp.attr("AuthnRequestsSigned") == Some("true"),
        format!("{:?}", sp.attr("AuthnRequestsSigned")),
    );
    check(
        &mut out,
        "metadata.want-assertions-signed",
        sp.attr("WantAssertionsSigned") == Some("true"),
        format!("{:?}", sp.attr("WantAssertionsSigned")),
    );
    let slo = sp.children_named(ns::MD, "SingleLogoutService").count();
    check(
        &mut out,
        "metadata.single-logout",
        slo >= 1,
        format!("{slo} SingleLogoutService"),
    );
    let acs: Vec<&Element> = sp
        .children_named(ns::MD, "AssertionConsumerService")
        .collect();
    let defaults: Vec<&&Element> = acs
        .iter()
        .filter(|a| a.attr("isDefault") == Some("true"))
        .collect();
    check(
        &mut out,
        "metadata.acs-default",
        defaults.len() == 1 && defaults[0].attr("index") == Some("0"),
        format!("{} ACS, {} default", acs.len(), defaults.len()),
    );
    check(
        &mut out,
        "metadata.acs-post",
        !acs.is_empty()
            && acs.iter().all(|a| {
                a.attr("Binding") == Some(ns::BINDING_POST)
                    || a.attr("Binding") == Some(ns::BINDING_REDIRECT)
            }),
        "ACS bindings",
    );
    let services: Vec<&Element> = sp
        .children_named(ns::MD, "AttributeConsumingService")
        .collect();
    let mut attrs_ok = !services.is_empty();
    for s in &services {
        let names: Vec<&str> = s
            .children_named(ns::MD, "RequestedAttribute")
            .filter_map(|r| r.attr("Name"))
            .collect();
        let mut dedup = names.clone();
        dedup.sort_unstable();
        dedup.dedup();
        attrs_ok &= !names.is_empty()
            && names.iter().all(|n| is_spid_attribute(n))
            && dedup.len() == names.len()
            && s.child(ns::MD, "ServiceName")
                .is_some_and(|n| !n.text().trim().is_empty());
    }
    check(
        &mut out,
        "metadata.attribute-consuming-service",
        attrs_ok,
        format!("{} service(s)", services.len()),
    );
    let org = root.child(ns::MD, "Organization");
    let org_ok = org.is_some_and(|o| {
        [
            "OrganizationName",
            "OrganizationDisplayName",
            "OrganizationURL",
        ]
        .iter()
        .all(|n| {
            o.children_named(ns::MD, n)
                .any(|e| e.attr("xml:lang") == Some("it") && !e.text().trim().is_empty())
        })
    });
    check(
        &mut out,
        "metadata.organization",
        org_ok,
        "Organization with it-localised name, display name, URL",
    );
    let other = root
        .children_named(ns::MD, "ContactPerson")
        .find(|c| c.attr("contactType") == Some("other"));
    let markers = other
        .and_then(|c| c.child(ns::MD, "Extensions"))
        .map(|e| {
            e.children_named(ns::SPID, "Public").count()
                + e.children_named(ns::SPID, "Private").count()
        })
        .unwrap_or(0);
    check(
        &mut out,
        "metadata.contact-other",
        other.is_some() && markers == 1,
        "ContactPerson other with exactly one of spid:Public / spid:Private",
    );
    (out, Some(m))
}

/// Checks the AuthnRequest the SP sent. `redirect_query` is the raw query of an HTTP-Redirect
/// request (None for HTTP-POST, whose XML then carries an enveloped signature).
pub fn authn_request_checks(
    xml_text: &str,
    redirect_query: Option<&str>,
    relay_state: Option<&str>,
    sp: &EntityMetadata,
    idp_entity_id: &str,
    idp_sso: &str,
) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let req = match xml::parse(xml_text, &Limits::default())
        .ok()
        .and_then(|e| AuthnRequest::from_element(&e))
    {
        Some(r) => r,
        None => {
            check(&mut out, "request.xml", false, "not an AuthnRequest");
            return out;
        }
    };
    check(&mut out, "request.xml", true, "AuthnRequest");
    let signed = match redirect_query {
        Some(q) => binding::decode_redirect(q, binding::MAX_MESSAGE_BYTES)
            .ok()
            .and_then(|m| m.signature)
            .is_some_and(|s| {
                sp.signing_certs.iter().any(|der| {
                    openssl::x509::X509::from_der(der)
                        .ok()
                        .and_then(|c| s.verify(&c).ok())
                        .unwrap_or(false)
                })
            }),
        None => dsig::verify_and_reduce(xml_text, &sp.signing_certs).is_ok(),
    };
    check(
        &mut out,
        "request.signed",
        signed,
        if redirect_query.is_some() {
            "HTTP-Redirect query signature"
        } else {
            "HTTP-POST enveloped signature"
        },
    );
    check(
        &mut out,
        "request.id",
        req.id.as_deref().is_some_and(|i| !i.is_empty()),
        format!("{:?}", req.id),
    );
    check(
        &mut out,
        "request.version",
        req.version.as_deref() == Some("2.0"),
        format!("{:?}", req.version),
    );
    check(
        &mut out,
        "request.issue-instant",
        req.issue_instant_parsed().is_some(),
        format!("{:?}", req.issue_instant),
    );
    check(
        &mut out,
        "request.destination",
        req.destination
            .as_deref()
            .is_some_and(|d| d == idp_sso || d == idp_entity_id),
        format!("{:?}", req.destination),
    );
    check(
        &mut out,
        "request.is-passive",
        req.is_passive.is_none(),
        format!("{:?}", req.is_passive),
    );
    let level = req.requested_level();
    check(
        &mut out,
        "request.authn-context",
        level.is_some(),
        format!("{:?} {:?}", req.comparison, req.class_refs),
    );
    if let Some((l, _)) = level {
        check(
            &mut out,
            "request.force-authn",
            l < SpidLevel::L2 || matches!(req.force_authn.as_deref(), Some("true") | Some("1")),
            format!("{:?} for {l}", req.force_authn),
        );
    }
    let spd = sp.sp.clone().unwrap_or_default();
    let acs_ok = match (&req.acs_index, &req.acs_url) {
        (Some(i), None) => i
            .parse::<u16>()
            .ok()
            .is_some_and(|i| spd.acs.iter().any(|a| a.index == i)),
        (None, Some(u)) => {
            spd.acs.iter().any(|a| &a.endpoint.location == u)
                && req.protocol_binding.as_deref() == Some(ns::BINDING_POST)
        }
        _ => false,
    };
    check(
        &mut out,
        "request.acs",
        acs_ok,
        format!("index {:?} url {:?}", req.acs_index, req.acs_url),
    );
    check(
        &mut out,
        "request.attribute-index",
        req.attribute_index
            .as_deref()
            .and_then(|i| i.parse::<u16>().ok())
            .is_some_and(|i| spd.attribute_services.iter().any(|s| s.index == i)),
        format!("{:?}", req.attribute_index),
    );
    check(
        &mut out,
        "request.issuer",
        req.issuer.as_deref() == Some(sp.entity_id.as_str()),
        format!("{:?}", req.issuer),
    );
    check(
        &mut out,
        "request.issuer-format",
        req.issuer_format.as_deref() == Some(ns::NAMEID_ENTITY),
        format!("{:?}", req.issuer_format),
    );
    check(
        &mut out,
        "request.issuer-name-qualifier",
        req.issuer_name_qualifier
            .as_deref()
            .is_some_and(|q| !q.is_empty()),
        format!("{:?}", req.issuer_name_qualifier),
    );
    check(
        &mut out,
        "request.name-id-policy",
        req.name_id_policy
            && req.name_id_policy_format.as_deref() == Some(ns::NAMEID_TRANSIENT)
            && req.allow_create.is_none(),
        format!(
            "{:?} AllowCreate {:?}",
            req.name_id_policy_format, req.allow_create
        ),
    );
    check(
        &mut out,
        "request.relay-state",
        relay_state.is_some_and(|r| !r.is_empty() && !r.to_ascii_lowercase().contains("http")),
        format!("{relay_state:?}"),
    );
    out
}

/// Whether metadata carries an enveloped signature that verifies with its own signing
/// certificate (integrity; trust in the certificate is the registry's business).
pub(crate) fn self_signed(text: &str, root: &Element, m: &EntityMetadata) -> bool {
    root.child(ns::DS, "Signature").is_some() && metadata::verify(text, &m.signing_certs).is_ok()
}
