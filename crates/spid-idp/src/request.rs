//! Incoming AuthnRequest: binding, signature against the SP's metadata certificate, and the
//! SPID request rules with their error codes (nr4–nr18); in the CIE profile, the CIE ID
//! request rules on top, each with its `idp.cie.*` rule code.

use chrono::{DateTime, Duration, Utc};
use spid_core::cie::{self, IdpProfile};
use spid_core::errors::SpidError;
use spid_core::saml::authn_request::AuthnRequest;
use spid_core::saml::binding::{self, MAX_MESSAGE_BYTES};
use spid_core::saml::dsig;
use spid_core::saml::metadata::EntityMetadata;
use spid_core::saml::ns;
use spid_core::saml::xml::{self, Limits};
use spid_core::{Comparison, Rule, SpidLevel};

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
    /// The rule code of a refusal beyond the SPID error table (the CIE request rules).
    pub rule: Option<Rule>,
}

fn page(nr: u8, detail: impl Into<String>) -> Refusal {
    Refusal {
        error: SpidError(nr),
        detail: detail.into(),
        to_sp: None,
        rule: None,
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
    /// SPID or CIE: the CIE request rules apply on top of the SPID ones in CIE.
    pub profile: IdpProfile,
    /// The SSO location of each binding (HTTP-Redirect, HTTP-POST): in CIE the Destination
    /// must be the one of the binding used.
    pub sso_locations: (&'a str, &'a str),
}

/// Runs every check.
pub fn check(incoming: Incoming<'_>, ctx: &Ctx<'_>) -> Result<ValidRequest, Refusal> {
    // Binding (nr4) and decoding.
    let via_redirect = matches!(incoming, Incoming::Redirect(_));
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
        let ok = sp
            .signing_certs
            .iter()
            .any(|der| sig.verify_der(der).unwrap_or(false));
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
    let cie = ctx.profile == IdpProfile::Cie;
    if cie && ctx.strict {
        // CIE: the Issuer Format is optional, entity when present; no NameQualifier needed.
        if req
            .issuer_format
            .as_deref()
            .is_some_and(|f| f != ns::NAMEID_ENTITY)
        {
            return Err(page(
                10,
                format!(
                    "Issuer Format {} is not nameid-format:entity",
                    req.issuer_format.as_deref().unwrap_or_default()
                ),
            ));
        }
    } else if ctx.strict {
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
        rule: None,
    };
    // A CIE request rule: its CIE error code and its rule code.
    let cie_rule = |nr: u8, rule: Rule, d: String| Refusal {
        rule: Some(rule),
        ..to_sp(nr, format!("{d} ({})", rule.code()))
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
    if cie {
        // CIE: the SSO location of the binding used (SAML), not the entityID (SPID Avviso 11).
        let want = if via_redirect {
            ctx.sso_locations.0
        } else {
            ctx.sso_locations.1
        };
        if req.destination.as_deref() != Some(want) {
            return Err(cie_rule(
                14,
                Rule::IdpCieDestination,
                format!(
                    "Destination {} is not {want}, the SSO location of the binding used",
                    req.destination.as_deref().unwrap_or("(absent)")
                ),
            ));
        }
        if req.is_passive.is_some() {
            return Err(cie_rule(
                15,
                Rule::IdpCieIsPassive,
                "IsPassive is present".into(),
            ));
        }
        if !matches!(req.force_authn.as_deref(), Some("true") | Some("1")) {
            return Err(cie_rule(
                8,
                Rule::IdpCieForceAuthn,
                format!(
                    "ForceAuthn is {}, not true",
                    req.force_authn.as_deref().unwrap_or("absent")
                ),
            ));
        }
        if let Some(scoping) = root.child(ns::SAMLP, "Scoping") {
            let what = if scoping.child(ns::SAMLP, "RequesterID").is_some() {
                "Scoping with RequesterID"
            } else {
                "Scoping"
            };
            return Err(cie_rule(8, Rule::IdpCieScoping, what.into()));
        }
    } else {
        match req.destination.as_deref() {
            Some(d) if d == ctx.sso_url || d == ctx.entity_id => {}
            d => return Err(to_sp(14, format!("Destination {d:?} is not this IdP"))),
        }
    }
    if matches!(req.is_passive.as_deref(), Some("true") | Some("1")) {
        return Err(to_sp(15, "IsPassive is true".into()));
    }
    let acs_refusal = |d: &str| {
        if cie {
            cie_rule(16, Rule::IdpCieAcs, d.to_string())
        } else {
            to_sp(16, d.to_string())
        }
    };
    let acs_url = match (&acs_by_index, &acs_by_url) {
        (Some(_), Some(_)) => {
            return Err(acs_refusal("both AssertionConsumerServiceIndex and URL"))
        }
        (Some(Some(e)), None) if e.binding == ns::BINDING_POST => e.location.clone(),
        (None, Some(Some(e))) if req.protocol_binding.as_deref() == Some(ns::BINDING_POST) => {
            e.location.clone()
        }
        (None, None) => return Err(acs_refusal("neither AssertionConsumerServiceIndex nor URL")),
        _ => {
            return Err(acs_refusal(
                "AssertionConsumerService not in the SP metadata (or not HTTP-POST)",
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
    if cie {
        if let Some(extra) = attributes.iter().find(|a| !cie::is_minimum_attribute(a)) {
            return Err(cie_rule(
                18,
                Rule::IdpCieAttributes,
                format!(
                    "the AttributeConsumingService requests {extra}, outside the eIDAS minimum set"
                ),
            ));
        }
    }
    let Some((level, comparison)) = req.requested_level() else {
        return Err(to_sp(
            12,
            format!(
                "RequestedAuthnContext {:?} {:?} is not SPID",
                req.comparison, req.class_refs
            ),
        ));
    };
    if cie && !matches!(comparison, Comparison::Exact | Comparison::Minimum) {
        return Err(cie_rule(
            12,
            Rule::IdpCieComparison,
            format!("Comparison {}", comparison.as_str()),
        ));
    }
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

#[cfg(test)]
mod tests {
    //! The CIE request rules: an honest CIE AuthnRequest passes; one edit each → exactly that
    //! refusal (its CIE error code and its `idp.cie.*` rule).
    use super::*;
    use spid_core::saml::binding::{encode_post, encode_redirect, MessageParam, SigAlg};
    use spid_core::saml::dsig::Credential;
    use spid_core::saml::metadata::{self, SpKind, SpMetadataConfig};
    use spid_core::saml::xml::Element;

    const BASE: &str = "http://127.0.0.1:9";
    const SP: &str = "http://127.0.0.1:8/metadata";

    fn sp_credential() -> Credential {
        Credential::from_pem(
            include_bytes!("../../../certs/sp.key.pem"),
            include_bytes!("../../../certs/sp.crt.pem"),
        )
        .unwrap()
    }

    fn sp_metadata(attributes: &[&str]) -> EntityMetadata {
        let xml = metadata::build_sp(
            &SpMetadataConfig {
                entity_id: SP.into(),
                acs_url: "http://127.0.0.1:8/acs".into(),
                slo_url: "http://127.0.0.1:8/slo".into(),
                attributes: attributes.iter().map(|a| a.to_string()).collect(),
                service_name: "Servizio".into(),
                organization_name: "Ente".into(),
                organization_display_name: "Ente".into(),
                organization_url: "http://127.0.0.1:8/".into(),
                contact_email: "tech@example.org".into(),
                contact_phone: None,
                kind: SpKind::Public {
                    ipa_code: "c_h501".into(),
                },
            },
            &sp_credential(),
        )
        .unwrap();
        metadata::parse(&xml).unwrap()
    }

    fn post_sso() -> String {
        cie::entity_id(BASE)
    }

    fn redirect_sso() -> String {
        format!("{BASE}{}", cie::SSO_REDIRECT_PATH)
    }

    /// The request a CIE SP sends: the SPID shape with ForceAuthn, Destination the POST SSO.
    fn honest(now: DateTime<Utc>) -> AuthnRequest {
        let mut r = AuthnRequest::spid(
            SP,
            &post_sso(),
            now,
            SpidLevel::L2,
            Comparison::Minimum,
            0,
            0,
        );
        r.force_authn = Some("true".into());
        r
    }

    fn check_post(
        el: Element,
        sps: &[EntityMetadata],
        now: DateTime<Utc>,
    ) -> Result<ValidRequest, Refusal> {
        let xml = dsig::sign_root(el, &sp_credential()).unwrap();
        let fields = vec![("SAMLRequest".to_string(), encode_post(&xml))];
        let (r, p) = (redirect_sso(), post_sso());
        check(Incoming::Post(&fields), &ctx(sps, now, &r, &p))
    }

    fn ctx<'a>(
        sps: &'a [EntityMetadata],
        now: DateTime<Utc>,
        redirect: &'a str,
        post: &'a str,
    ) -> Ctx<'a> {
        Ctx {
            entity_id: post,
            sso_url: redirect,
            sps,
            now,
            skew: Duration::minutes(3),
            strict: true,
            profile: IdpProfile::Cie,
            sso_locations: (redirect, post),
        }
    }

    fn refused_by(r: Result<ValidRequest, Refusal>, nr: u8, rule: Rule) {
        match r {
            Ok(_) => panic!("accepted; expected nr{nr} {rule}"),
            Err(e) => {
                assert_eq!((e.error.0, e.rule), (nr, Some(rule)), "{}", e.detail);
                assert!(e.to_sp.is_some(), "a CIE request rule answers the SP");
            }
        }
    }

    fn cie_sps() -> Vec<EntityMetadata> {
        vec![sp_metadata(&cie::MINIMUM_ATTRIBUTES)]
    }

    #[test]
    fn the_honest_cie_request_passes_both_bindings() {
        let now = spid_core::clock::now();
        let sps = cie_sps();
        let ok = check_post(honest(now).to_element(), &sps, now).unwrap();
        assert_eq!(ok.attributes.len(), 4);
        // HTTP-Redirect, to the Redirect SSO location.
        let mut r = honest(now);
        r.destination = Some(redirect_sso());
        let url = encode_redirect(
            &url::Url::parse(&redirect_sso()).unwrap(),
            MessageParam::SamlRequest,
            &r.to_element().to_xml(),
            Some("relay"),
            Some((&sp_credential().key, SigAlg::RsaSha256)),
        )
        .unwrap();
        let (rs, ps) = (redirect_sso(), post_sso());
        assert!(check(
            Incoming::Redirect(url.query().unwrap()),
            &ctx(&sps, now, &rs, &ps)
        )
        .is_ok());
        // AssertionConsumerServiceURL with ProtocolBinding HTTP-POST instead of the index.
        let mut r = honest(now);
        r.acs_index = None;
        r.acs_url = Some("http://127.0.0.1:8/acs".into());
        r.protocol_binding = Some(ns::BINDING_POST.into());
        assert!(check_post(r.to_element(), &sps, now).is_ok());
        // Comparison exact; Issuer without Format or NameQualifier (optional in CIE).
        let mut r = honest(now);
        r.comparison = Some("exact".into());
        r.issuer_format = None;
        r.issuer_name_qualifier = None;
        assert!(check_post(r.to_element(), &sps, now).is_ok());
    }

    #[test]
    fn destination_is_the_sso_location_of_the_binding_used() {
        let now = spid_core::clock::now();
        let sps = cie_sps();
        // POST with the Redirect location.
        let mut r = honest(now);
        r.destination = Some(redirect_sso());
        refused_by(
            check_post(r.to_element(), &sps, now),
            14,
            Rule::IdpCieDestination,
        );
        // Redirect with the entityID (= the POST location): SPID allows it, CIE does not.
        let url = encode_redirect(
            &url::Url::parse(&redirect_sso()).unwrap(),
            MessageParam::SamlRequest,
            &honest(now).to_element().to_xml(),
            None,
            Some((&sp_credential().key, SigAlg::RsaSha256)),
        )
        .unwrap();
        let (rs, ps) = (redirect_sso(), post_sso());
        refused_by(
            check(
                Incoming::Redirect(url.query().unwrap()),
                &ctx(&sps, now, &rs, &ps),
            ),
            14,
            Rule::IdpCieDestination,
        );
    }

    #[test]
    fn force_authn_is_true() {
        let now = spid_core::clock::now();
        for v in [None, Some("false")] {
            let mut r = honest(now);
            r.force_authn = v.map(String::from);
            refused_by(
                check_post(r.to_element(), &cie_sps(), now),
                8,
                Rule::IdpCieForceAuthn,
            );
        }
    }

    #[test]
    fn is_passive_is_absent() {
        let now = spid_core::clock::now();
        let mut r = honest(now);
        r.is_passive = Some("false".into());
        refused_by(
            check_post(r.to_element(), &cie_sps(), now),
            15,
            Rule::IdpCieIsPassive,
        );
    }

    #[test]
    fn no_scoping_and_no_requester_id() {
        let now = spid_core::clock::now();
        let scoping = Element::new("samlp:Scoping", Some(ns::SAMLP));
        let el = honest(now).to_element().with_child(scoping.clone());
        refused_by(check_post(el, &cie_sps(), now), 8, Rule::IdpCieScoping);
        let el = honest(now).to_element().with_child(scoping.with_child(
            Element::new("samlp:RequesterID", Some(ns::SAMLP)).with_text("https://other.example"),
        ));
        refused_by(check_post(el, &cie_sps(), now), 8, Rule::IdpCieScoping);
    }

    #[test]
    fn comparison_is_exact_or_minimum() {
        let now = spid_core::clock::now();
        for c in ["better", "maximum"] {
            let mut r = honest(now);
            r.comparison = Some(c.into());
            refused_by(
                check_post(r.to_element(), &cie_sps(), now),
                12,
                Rule::IdpCieComparison,
            );
        }
    }

    #[test]
    fn acs_by_index_or_by_url_with_http_post() {
        let now = spid_core::clock::now();
        // URL without ProtocolBinding.
        let mut r = honest(now);
        r.acs_index = None;
        r.acs_url = Some("http://127.0.0.1:8/acs".into());
        refused_by(
            check_post(r.to_element(), &cie_sps(), now),
            16,
            Rule::IdpCieAcs,
        );
        // Both index and URL.
        let mut r = honest(now);
        r.acs_url = Some("http://127.0.0.1:8/acs".into());
        r.protocol_binding = Some(ns::BINDING_POST.into());
        refused_by(
            check_post(r.to_element(), &cie_sps(), now),
            16,
            Rule::IdpCieAcs,
        );
    }

    #[test]
    fn requested_attributes_are_within_the_minimum_set() {
        let now = spid_core::clock::now();
        let sps = vec![sp_metadata(&["name", "familyName", "email"])];
        refused_by(
            check_post(honest(now).to_element(), &sps, now),
            18,
            Rule::IdpCieAttributes,
        );
    }

    #[test]
    fn the_spid_profile_is_unchanged() {
        // The same request to a SPID IdP: Destination = entityID allowed, no CIE rule applies.
        let now = spid_core::clock::now();
        let mut r = honest(now);
        r.force_authn = None;
        r.is_passive = Some("false".into());
        r.comparison = Some("better".into());
        let xml = dsig::sign_root(r.to_element(), &sp_credential()).unwrap();
        let fields = vec![("SAMLRequest".to_string(), encode_post(&xml))];
        let sps = vec![sp_metadata(&["spidCode", "email"])];
        let (rs, ps) = (redirect_sso(), post_sso());
        let mut c = ctx(&sps, now, &rs, &ps);
        c.profile = IdpProfile::Spid;
        assert!(check(Incoming::Post(&fields), &c).is_ok());
    }
}
