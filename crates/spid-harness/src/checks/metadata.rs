//! SP metadata checks (SPID SP profile, Avviso 29 v3 certificates), public and private SPs.

use super::{check, self_signed, CheckResult};
use spid_core::attributes::is_spid_attribute;
use spid_core::saml::metadata::{self, EntityMetadata};
use spid_core::saml::ns;
use spid_core::saml::xml::{self, Element, Limits};

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

