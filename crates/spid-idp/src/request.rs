//! Incoming AuthnRequest: binding, signature against the SP's metadata certificate, and the
//! SPID request rules with their error codes (nr4–nr18).

use chrono::{DateTime, Duration, Utc};
use spid_core::errors::SpidError;
use spid_core::saml::authn_request::AuthnRequest;
use spid_core::saml::binding::{self, MAX_MESSAGE_BYTES};
use spid_core::saml::dsig;
use spid_core::saml::metadata::EntityMetadata;
use spid_core::saml::ns;
use spid_core::saml::xml::{self, Limits};
use spid_core::{Comparison, SpidLevel};

/// A request that passed every check.
#[derive(Debug, Clone)]
pub struct ValidRequest {
    /// The parsed request.
    pub request: AuthnRequest,
    /// Its ID.
    pub id: String,
    /// The SP's entityID.
    pub sp: String,
    /// Where the Response goes.
    pub acs_url: String,
    /// Requested level and comparison.
    pub level: SpidLevel,
    /// Requested comparison.
    pub comparison: Comparison,
    /// Attribute names to release.
    pub attributes: Vec<String>,
    /// RelayState to return.
    pub relay_state: Option<String>,
}

/// A refusal, with where it goes: a page for the user, or an error Response to the SP.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The SPID error code.
    pub error: SpidError,
    /// What was wrong.
    pub detail: String,
    /// When the error goes back to the SP: ACS URL, InResponseTo, RelayState.
    pub to_sp: Option<(String, String, Option<String>)>,
}

fn page(nr: u8, detail: impl Into<String>) -> Refusal {
    Refusal {
        error: SpidError(nr),
        detail: detail.into(),
        to_sp: None,
    }
}

/// What arrived at `/sso`.
pub enum Incoming<'a> {
    /// GET with a raw (still percent-encoded) query string.
    Redirect(&'a str),
    /// POST with form fields.
    Post(&'a [(String, String)]),
}

/// Context the checks need.
pub struct Ctx<'a> {
    /// This IdP's entityID.
    pub entity_id: &'a str,
    /// This IdP's SSO URL.
    pub sso_url: &'a str,
    /// Registered SPs.
    pub sps: &'a [EntityMetadata],
    /// Now.
    pub now: DateTime<Utc>,
    /// Accepted distance of IssueInstant from now.
    pub skew: Duration,
    /// Refuse what SPID forbids but generic SAML stacks send (Issuer without Format entity
    /// or NameQualifier: nr10; NameIDPolicy AllowCreate: nr17). On by default.
    pub strict: bool,
}

/// Runs every check.
pub fn check(incoming: Incoming<'_>, ctx: &Ctx<'_>) -> Result<ValidRequest, Refusal> {
    // Binding (nr4) and decoding.
    let (xml_text, relay, redirect_sig) = match incoming {
        Incoming::Redirect(q) => {
            let m = binding::decode_redirect(q, MAX_MESSAGE_BYTES)
                .map_err(|e| page(4, format!("HTTP-Redirect binding: {e}")))?;
            let sig = m
                .signature
                .ok_or_else(|| page(4, "HTTP-Redirect request without SigAlg/Signature"))?;
            (m.xml, m.relay_state, Some(sig))
        }
        Incoming::Post(fields) => {
            let v = fields
                .iter()
                .find(|(k, _)| k == "SAMLRequest")
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| page(4, "no SAMLRequest"))?;
            let relay = fields
                .iter()
                .find(|(k, _)| k == "RelayState")
                .map(|(_, v)| v.clone());
            (
                binding::decode_post(v, MAX_MESSAGE_BYTES)
                    .map_err(|e| page(4, format!("HTTP-POST binding: {e}")))?,
                relay,
                None,
            )
        }
    };
    let root = xml::parse(&xml_text, &Limits::default())
        .map_err(|e| page(8, format!("not acceptable XML: {e}")))?;
    let req = AuthnRequest::from_element(&root)
        .ok_or_else(|| page(8, format!("root is {}, not AuthnRequest", root.qname)))?;
    // Issuer and SP (nr10): the signer must be a registered SP.
    let issuer = req
        .issuer
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| page(10, "Issuer missing"))?;
    let sp = ctx
        .sps
        .iter()
        .find(|m| m.entity_id == issuer)
        .ok_or_else(|| {
            page(
                10,
                format!("SP {issuer} is not registered with this IdP: register its metadata first"),
            )
        })?;
    // Signature (nr5 Redirect, nr7 POST) with the SP metadata certificate only.
    if let Some(sig) = redirect_sig {
        let ok = sp.signing_certs.iter().any(|der| {
            openssl::x509::X509::from_der(der)
                .ok()
                .and_then(|c| sig.verify(&c).ok())
                .unwrap_or(false)
        });
        if !ok {
            return Err(page(
                5,
                "HTTP-Redirect signature does not verify with the SP metadata certificate",
            ));
        }
    } else {
        let reduced = dsig::verify_and_reduce(&xml_text, &sp.signing_certs)
            .map_err(|e| page(7, format!("HTTP-POST signature: {e}")))?;
        let signed = xml::parse(&reduced, &Limits::default())
            .map_err(|_| page(7, "signed content unreadable"))?;
        if !signed.is(ns::SAMLP, "AuthnRequest")
            || AuthnRequest::from_element(&signed).as_ref() != Some(&req)
        {
            return Err(page(
                7,
                "the signature does not cover the whole AuthnRequest",
            ));
        }
    }
    if ctx.strict {
        if req.issuer_format.as_deref() != Some(ns::NAMEID_ENTITY) {
            return Err(page(
                10,
                format!(
                    "Issuer Format {:?} is not nameid-format:entity",
                    req.issuer_format
                ),
            ));
        }
        if req
            .issuer_name_qualifier
            .as_deref()
            .is_none_or(str::is_empty)
        {
            return Err(page(10, "Issuer without NameQualifier"));
        }
    }
    let spd = sp.sp.clone().unwrap_or_default();
    let id = req.id.clone().unwrap_or_default();
    // From here errors go back to the SP (if we can tell where).
    let default_acs = spd
        .acs
        .iter()
        .find(|a| a.is_default)
        .or(spd.acs.first())
        .map(|a| a.endpoint.location.clone());
    let acs_by_index = req.acs_index.as_deref().map(|i| {
        i.parse::<u16>()
            .ok()
            .and_then(|i| spd.acs.iter().find(|a| a.index == i))
            .map(|a| a.endpoint.clone())
    });
    let acs_by_url = req.acs_url.as_deref().map(|u| {
        spd.acs
            .iter()
            .find(|a| a.endpoint.location == u)
            .map(|a| a.endpoint.clone())
    });
    let reply_to = match (&acs_by_index, &acs_by_url) {
        (Some(Some(e)), _) | (None, Some(Some(e))) => Some(e.location.clone()),
        _ => default_acs,
    };
    let to_sp = |nr: u8, d: String| Refusal {
        error: SpidError(nr),
        detail: d,
        to_sp: reply_to.clone().map(|a| (a, id.clone(), relay.clone())),
    };
    if req.version.as_deref() != Some("2.0") {
        return Err(to_sp(9, format!("Version {:?}", req.version)));
    }
    if id.trim().is_empty() || id.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return Err(to_sp(11, "ID missing or not an NCName".into()));
    }
    let Some(t) = req.issue_instant_parsed() else {
        return Err(to_sp(
            13,
            format!("IssueInstant {:?} missing or malformed", req.issue_instant),
        ));
    };
    if (t - ctx.now).abs() > ctx.skew {
        return Err(to_sp(
            13,
            format!("IssueInstant {t} too far from now {}", ctx.now),
        ));
    }
    match req.destination.as_deref() {
        Some(d) if d == ctx.sso_url || d == ctx.entity_id => {}
        d => return Err(to_sp(14, format!("Destination {d:?} is not this IdP"))),
    }
    if matches!(req.is_passive.as_deref(), Some("true") | Some("1")) {
        return Err(to_sp(15, "IsPassive is true".into()));
    }
    let acs_url = match (&acs_by_index, &acs_by_url) {
        (Some(_), Some(_)) => {
            return Err(to_sp(
                16,
                "both AssertionConsumerServiceIndex and URL".into(),
            ))
        }
        (Some(Some(e)), None) if e.binding == ns::BINDING_POST => e.location.clone(),
        (None, Some(Some(e))) if req.protocol_binding.as_deref() == Some(ns::BINDING_POST) => {
            e.location.clone()
        }
        (None, None) => {
            return Err(to_sp(
                16,
                "neither AssertionConsumerServiceIndex nor URL".into(),
            ))
        }
        _ => {
            return Err(to_sp(
                16,
                "AssertionConsumerService not in the SP metadata (or not HTTP-POST)".into(),
            ))
        }
    };
    if !req.name_id_policy || req.name_id_policy_format.as_deref() != Some(ns::NAMEID_TRANSIENT) {
        return Err(to_sp(
            17,
            format!("NameIDPolicy Format {:?}", req.name_id_policy_format),
        ));
    }
    if ctx.strict && req.allow_create.is_some() {
        return Err(to_sp(
            17,
            "NameIDPolicy carries AllowCreate (Avviso 5)".into(),
        ));
    }
    let attributes = match req.attribute_index.as_deref() {
        None => spd
            .attribute_services
            .first()
            .map(|s| s.attributes.clone())
            .unwrap_or_default(),
        Some(i) => match i
            .parse::<u16>()
            .ok()
            .and_then(|i| spd.attribute_services.iter().find(|s| s.index == i))
        {
            Some(s) => s.attributes.clone(),
            None => {
                return Err(to_sp(
                    18,
                    format!("AttributeConsumingServiceIndex {i} not in the SP metadata"),
                ))
            }
        },
    };
    let Some((level, comparison)) = req.requested_level() else {
        return Err(to_sp(
            12,
            format!(
                "RequestedAuthnContext {:?} {:?} is not SPID",
                req.comparison, req.class_refs
            ),
        ));
    };
    Ok(ValidRequest {
        request: req,
        id,
        sp: issuer,
        acs_url,
        level,
        comparison,
        attributes,
        relay_state: relay,
    })
}
