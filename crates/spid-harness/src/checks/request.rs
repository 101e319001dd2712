//! AuthnRequest checks: the request as it reached our SSO endpoint, by either binding.

use super::{check, CheckResult};
use spid_core::saml::authn_request::AuthnRequest;
use spid_core::saml::binding;
use spid_core::saml::dsig;
use spid_core::saml::metadata::EntityMetadata;
use spid_core::saml::ns;
use spid_core::saml::xml::{self, Limits};
use spid_core::SpidLevel;

/// The AuthnRequest as it reached our SSO endpoint.
#[derive(Debug, Clone)]
pub struct ArrivedRequest {
    /// `GET` (HTTP-Redirect) or `POST` (HTTP-POST) at our SSO endpoint.
    pub binding: crate::agent::Binding,
    /// The decoded AuthnRequest XML.
    pub xml: String,
    /// HTTP-Redirect: the raw query string as it arrived (signature input); None for POST.
    pub raw_query: Option<String>,
    /// HTTP-POST: the form fields as they arrived; empty for Redirect.
    pub form: Vec<(String, String)>,
    /// RelayState, whichever binding carried it.
    pub relay_state: Option<String>,
}

/// What the request is judged against.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// The SP's parsed metadata.
    pub sp: &'a EntityMetadata,
    /// Our IdP's entityID.
    pub idp_entity_id: &'a str,
    /// Our IdP's SSO location (the binding's endpoint the request arrived at).
    pub idp_sso: &'a str,
    /// When the request arrived (our IdP's clock).
    pub now: chrono::DateTime<chrono::Utc>,
    /// Allowed clock skew for IssueInstant.
    pub skew: chrono::Duration,
}

/// Checks the AuthnRequest the SP sent, as it arrived.
pub fn authn_request_checks(arrived: &ArrivedRequest, ctx: &RequestContext<'_>) -> Vec<CheckResult> {
    let (xml_text, redirect_query, relay_state, sp, idp_entity_id, idp_sso) = (
        arrived.xml.as_str(),
        arrived.raw_query.as_deref(),
        arrived.relay_state.as_deref(),
        ctx.sp,
        ctx.idp_entity_id,
        ctx.idp_sso,
    );
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

