//! Single Logout messages (SP-initiated): LogoutRequest and LogoutResponse, SPID-shaped.

use super::ns;
use super::xml::Element;
use crate::clock::saml_instant;
use chrono::{DateTime, Utc};

/// A LogoutRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    /// ID.
    pub id: String,
    /// IssueInstant, as written.
    pub issue_instant: String,
    /// Destination (the IdP's SLO URL).
    pub destination: String,
    /// Issuer (SP entityID).
    pub issuer: String,
    /// The transient NameID of the session.
    pub name_id: String,
    /// Its NameQualifier (the IdP entityID).
    pub name_qualifier: String,
    /// SessionIndex, when the Assertion had one.
    pub session_index: Option<String>,
}

/// A LogoutResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutResponse {
    /// ID.
    pub id: String,
    /// The LogoutRequest ID it answers.
    pub in_response_to: String,
    /// IssueInstant, as written.
    pub issue_instant: String,
    /// Destination (the SP's SLO URL).
    pub destination: String,
    /// Issuer (IdP entityID).
    pub issuer: String,
    /// Top-level StatusCode.
    pub status: String,
    /// Nested StatusCode.
    pub sub_status: Option<String>,
}

fn issuer(v: &str) -> Element {
    Element::new("saml:Issuer", Some(ns::SAML))
        .with_attr("Format", ns::NAMEID_ENTITY)
        .with_attr("NameQualifier", v)
        .with_text(v)
}

impl LogoutRequest {
    /// A new request for the session of `name_id`.
    pub fn new(
        sp: &str,
        destination: &str,
        now: DateTime<Utc>,
        name_id: &str,
        name_qualifier: &str,
        session_index: Option<String>,
    ) -> Self {
        LogoutRequest {
            id: super::new_id(),
            issue_instant: saml_instant(now),
            destination: destination.into(),
            issuer: sp.into(),
            name_id: name_id.into(),
            name_qualifier: name_qualifier.into(),
            session_index,
        }
    }

    /// Renders the request (unsigned).
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("samlp:LogoutRequest", Some(ns::SAMLP))
            .with_attr("xmlns:samlp", ns::SAMLP)
            .with_attr("xmlns:saml", ns::SAML)
            .with_attr("ID", &self.id)
            .with_attr("Version", "2.0")
            .with_attr("IssueInstant", &self.issue_instant)
            .with_attr("Destination", &self.destination)
            .with_child(issuer(&self.issuer))
            .with_child(
                Element::new("saml:NameID", Some(ns::SAML))
                    .with_attr("Format", ns::NAMEID_TRANSIENT)
                    .with_attr("NameQualifier", &self.name_qualifier)
                    .with_text(&self.name_id),
            );
        if let Some(s) = &self.session_index {
            el = el.with_child(Element::new("samlp:SessionIndex", Some(ns::SAMLP)).with_text(s));
        }
        el
    }

    /// Reads a request; None when `el` is not a complete LogoutRequest.
    pub fn from_element(el: &Element) -> Option<Self> {
        if !el.is(ns::SAMLP, "LogoutRequest") || el.attr("Version") != Some("2.0") {
            return None;
        }
        let name_id = el.child(ns::SAML, "NameID")?;
        Some(LogoutRequest {
            id: el.attr("ID").filter(|s| !s.is_empty())?.into(),
            issue_instant: el.attr("IssueInstant")?.into(),
            destination: el.attr("Destination").unwrap_or_default().into(),
            issuer: el.child(ns::SAML, "Issuer")?.text().trim().into(),
            name_id: name_id.text().trim().into(),
            name_qualifier: name_id.attr("NameQualifier").unwrap_or_default().into(),
            session_index: el
                .child(ns::SAMLP, "SessionIndex")
                .map(|s| s.text().trim().to_string()),
        })
    }
}

impl LogoutResponse {
    /// A response to `req`.
    pub fn answer(
        req: &LogoutRequest,
        idp: &str,
        destination: &str,
        now: DateTime<Utc>,
        status: &str,
        sub_status: Option<&str>,
    ) -> Self {
        LogoutResponse {
            id: super::new_id(),
            in_response_to: req.id.clone(),
            issue_instant: saml_instant(now),
            destination: destination.into(),
            issuer: idp.into(),
            status: status.into(),
            sub_status: sub_status.map(str::to_string),
        }
    }

    /// Renders the response (unsigned).
    pub fn to_element(&self) -> Element {
        let mut code =
            Element::new("samlp:StatusCode", Some(ns::SAMLP)).with_attr("Value", &self.status);
        if let Some(s) = &self.sub_status {
            code = code.with_child(
                Element::new("samlp:StatusCode", Some(ns::SAMLP)).with_attr("Value", s),
            );
        }
        Element::new("samlp:LogoutResponse", Some(ns::SAMLP))
            .with_attr("xmlns:samlp", ns::SAMLP)
            .with_attr("xmlns:saml", ns::SAML)
            .with_attr("ID", &self.id)
            .with_attr("InResponseTo", &self.in_response_to)
            .with_attr("Version", "2.0")
            .with_attr("IssueInstant", &self.issue_instant)
            .with_attr("Destination", &self.destination)
            .with_child(issuer(&self.issuer))
            .with_child(Element::new("samlp:Status", Some(ns::SAMLP)).with_child(code))
    }

    /// Reads a response; None when `el` is not a complete LogoutResponse.
    pub fn from_element(el: &Element) -> Option<Self> {
        if !el.is(ns::SAMLP, "LogoutResponse") || el.attr("Version") != Some("2.0") {
            return None;
        }
        let code = el
            .child(ns::SAMLP, "Status")?
            .child(ns::SAMLP, "StatusCode")?;
        Some(LogoutResponse {
            id: el.attr("ID").filter(|s| !s.is_empty())?.into(),
            in_response_to: el.attr("InResponseTo").unwrap_or_default().into(),
            issue_instant: el.attr("IssueInstant")?.into(),
            destination: el.attr("Destination").unwrap_or_default().into(),
            issuer: el.child(ns::SAML, "Issuer")?.text().trim().into(),
            status: code.attr("Value")?.into(),
            sub_status: code
                .child(ns::SAMLP, "StatusCode")
                .and_then(|c| c.attr("Value"))
                .map(str::to_string),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::xml::{parse, Limits};

    #[test]
    fn round_trips() {
        let now = crate::clock::now();
        let r = LogoutRequest::new("sp", "http://idp/slo", now, "_n", "idp", None);
        let back = LogoutRequest::from_element(
            &parse(&r.to_element().to_xml(), &Limits::default()).unwrap(),
        )
        .unwrap();
        assert_eq!(back, r);
        let a = LogoutResponse::answer(&r, "idp", "http://sp/slo", now, ns::STATUS_SUCCESS, None);
        let back = LogoutResponse::from_element(
            &parse(&a.to_element().to_xml(), &Limits::default()).unwrap(),
        )
        .unwrap();
        assert_eq!(back, a);
        assert!(LogoutRequest::from_element(&a.to_element()).is_none());
    }
}
