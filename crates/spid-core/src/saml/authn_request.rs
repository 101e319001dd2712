//! The AuthnRequest: built by the SP, read (leniently, every field optional) by the IdP, which
//! then judges it against the SPID rules.

use super::ns;
use super::xml::Element;
use crate::clock::{parse_saml_instant, saml_instant};
use crate::level::{Comparison, SpidLevel};
use chrono::{DateTime, Utc};

/// An AuthnRequest as the SPID profile shapes it. Fields are `Option` where a received request
/// may lack them, so the IdP can tell "missing" from "wrong".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthnRequest {
    /// ID.
    pub id: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// IssueInstant, as written.
    pub issue_instant: Option<String>,
    /// Destination.
    pub destination: Option<String>,
    /// ForceAuthn, as written.
    pub force_authn: Option<String>,
    /// IsPassive, as written.
    pub is_passive: Option<String>,
    /// AssertionConsumerServiceIndex, as written.
    pub acs_index: Option<String>,
    /// AssertionConsumerServiceURL.
    pub acs_url: Option<String>,
    /// ProtocolBinding.
    pub protocol_binding: Option<String>,
    /// AttributeConsumingServiceIndex, as written.
    pub attribute_index: Option<String>,
    /// Issuer text.
    pub issuer: Option<String>,
    /// Issuer Format.
    pub issuer_format: Option<String>,
    /// Issuer NameQualifier.
    pub issuer_name_qualifier: Option<String>,
    /// NameIDPolicy present.
    pub name_id_policy: bool,
    /// NameIDPolicy Format.
    pub name_id_policy_format: Option<String>,
    /// NameIDPolicy AllowCreate.
    pub allow_create: Option<String>,
    /// RequestedAuthnContext present.
    pub requested_authn_context: bool,
    /// RequestedAuthnContext Comparison, as written.
    pub comparison: Option<String>,
    /// AuthnContextClassRef values.
    pub class_refs: Vec<String>,
    /// Avviso 18 Purpose extension value, if any.
    pub purpose: Option<String>,
}

impl AuthnRequest {
    /// The request an SPID SP sends: ForceAuthn for L≥2, ACS and attribute service by index,
    /// Issuer with Format entity and NameQualifier, transient NameIDPolicy without AllowCreate.
    pub fn spid(
        sp_entity_id: &str,
        destination: &str,
        now: DateTime<Utc>,
        level: SpidLevel,
        comparison: Comparison,
        acs_index: u16,
        attribute_index: u16,
    ) -> Self {
        AuthnRequest {
            id: Some(super::new_id()),
            version: Some("2.0".into()),
            issue_instant: Some(saml_instant(now)),
            destination: Some(destination.into()),
            force_authn: (level >= SpidLevel::L2).then(|| "true".into()),
            is_passive: None,
            acs_index: Some(acs_index.to_string()),
            acs_url: None,
            protocol_binding: None,
            attribute_index: Some(attribute_index.to_string()),
            issuer: Some(sp_entity_id.into()),
            issuer_format: Some(ns::NAMEID_ENTITY.into()),
            issuer_name_qualifier: Some(sp_entity_id.into()),
            name_id_policy: true,
            name_id_policy_format: Some(ns::NAMEID_TRANSIENT.into()),
            allow_create: None,
            requested_authn_context: true,
            comparison: Some(comparison.as_str().into()),
            class_refs: vec![level.uri().into()],
            purpose: None,
        }
    }

    /// IssueInstant parsed.
    pub fn issue_instant_parsed(&self) -> Option<DateTime<Utc>> {
        self.issue_instant.as_deref().and_then(parse_saml_instant)
    }

    /// The requested level and comparison, when both are valid SPID values.
    pub fn requested_level(&self) -> Option<(SpidLevel, Comparison)> {
        let cmp = Comparison::parse(self.comparison.as_deref().unwrap_or("exact"))?;
        match self.class_refs.as_slice() {
            [one] => Some((SpidLevel::from_uri(one.trim())?, cmp)),
            _ => None,
        }
    }

    /// Renders the request (unsigned).
    pub fn to_element(&self) -> Element {
        let p = |q: &str| Element::new(q, Some(ns::SAMLP));
        let mut el = p("samlp:AuthnRequest")
            .with_attr("xmlns:samlp", ns::SAMLP)
            .with_attr("xmlns:saml", ns::SAML);
        let attrs = [
            ("ID", &self.id),
            ("Version", &self.version),
            ("IssueInstant", &self.issue_instant),
            ("Destination", &self.destination),
            ("ForceAuthn", &self.force_authn),
            ("IsPassive", &self.is_passive),
            ("AssertionConsumerServiceIndex", &self.acs_index),
            ("AssertionConsumerServiceURL", &self.acs_url),
            ("ProtocolBinding", &self.protocol_binding),
            ("AttributeConsumingServiceIndex", &self.attribute_index),
        ];
        for (n, v) in attrs {
            if let Some(v) = v {
                el = el.with_attr(n, v);
            }
        }
        if let Some(issuer) = &self.issuer {
            let mut i = Element::new("saml:Issuer", Some(ns::SAML));
            if let Some(f) = &self.issuer_format {
                i = i.with_attr("Format", f);
            }
            if let Some(q) = &self.issuer_name_qualifier {
                i = i.with_attr("NameQualifier", q);
            }
            el = el.with_child(i.with_text(issuer));
        }
        if let Some(p) = &self.purpose {
            el = el.with_child(
                Element::new("samlp:Extensions", Some(ns::SAMLP)).with_child(
                    Element::new("spid:Purpose", Some(ns::SPID))
                        .with_attr("xmlns:spid", ns::SPID)
                        .with_text(p),
                ),
            );
        }
        if self.name_id_policy {
            let mut n = p("samlp:NameIDPolicy");
            if let Some(f) = &self.name_id_policy_format {
                n = n.with_attr("Format", f);
            }
            if let Some(a) = &self.allow_create {
                n = n.with_attr("AllowCreate", a);
            }
            el = el.with_child(n);
        }
        if self.requested_authn_context {
            let mut r = p("samlp:RequestedAuthnContext");
            if let Some(c) = &self.comparison {
                r = r.with_attr("Comparison", c);
            }
            for c in &self.class_refs {
                r = r.with_child(
                    Element::new("saml:AuthnContextClassRef", Some(ns::SAML)).with_text(c),
                );
            }
            el = el.with_child(r);
        }
        el
    }

    /// Reads a request from a parsed `samlp:AuthnRequest` element; `None` if the root is not one.
    pub fn from_element(el: &Element) -> Option<Self> {
        if !el.is(ns::SAMLP, "AuthnRequest") {
            return None;
        }
        let a = |n: &str| el.attr(n).map(str::to_string);
        let issuer = el.child(ns::SAML, "Issuer");
        let policy = el.child(ns::SAMLP, "NameIDPolicy");
        let rac = el.child(ns::SAMLP, "RequestedAuthnContext");
        let purpose = el
            .child(ns::SAMLP, "Extensions")
            .and_then(|x| x.elements().find(|e| e.local() == "Purpose"))
            .map(|p| p.text().trim().to_string());
        Some(AuthnRequest {
            id: a("ID"),
            version: a("Version"),
            issue_instant: a("IssueInstant"),
            destination: a("Destination"),
            force_authn: a("ForceAuthn"),
            is_passive: a("IsPassive"),
            acs_index: a("AssertionConsumerServiceIndex"),
            acs_url: a("AssertionConsumerServiceURL"),
            protocol_binding: a("ProtocolBinding"),
            attribute_index: a("AttributeConsumingServiceIndex"),
            issuer: issuer.map(|i| i.text().trim().to_string()),
            issuer_format: issuer.and_then(|i| i.attr("Format")).map(str::to_string),
            issuer_name_qualifier: issuer
                .and_then(|i| i.attr("NameQualifier"))
                .map(str::to_string),
            name_id_policy: policy.is_some(),
            name_id_policy_format: policy.and_then(|p| p.attr("Format")).map(str::to_string),
            allow_create: policy
                .and_then(|p| p.attr("AllowCreate"))
                .map(str::to_string),
            requested_authn_context: rac.is_some(),
            comparison: rac.and_then(|r| r.attr("Comparison")).map(str::to_string),
            class_refs: rac
                .map(|r| {
                    r.children_named(ns::SAML, "AuthnContextClassRef")
                        .map(|c| c.text().trim().to_string())
                        .collect()
                })
                .unwrap_or_default(),
            purpose,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::xml::{parse, Limits};

    #[test]
    fn spid_request_round_trips() {
        let now = crate::clock::now();
        let r = AuthnRequest::spid(
            "https://sp.example",
            "https://idp.example/sso",
            now,
            SpidLevel::L2,
            Comparison::Minimum,
            0,
            0,
        );
        let xml = r.to_element().to_xml();
        let back = AuthnRequest::from_element(&parse(&xml, &Limits::default()).unwrap()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.force_authn.as_deref(), Some("true"));
        assert_eq!(
            back.requested_level(),
            Some((SpidLevel::L2, Comparison::Minimum))
        );
        assert!(!xml.contains("AllowCreate"));
    }
}
