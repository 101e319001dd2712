//! AuthnRequest checks: the request as it reached our SSO endpoint, by either binding.
//!
//! Every check is a `sp-request.*` rule. A check whose subject is missing is not recorded
//! when the missing part already failed its own presence check (one defect, one failure);
//! optional parts (Subject, Conditions, Extensions, spid:Purpose) are always recorded and
//! pass when absent.

use super::{advise, rule, CheckResult};
use base64::Engine as _;
use openssl::hash::MessageDigest;
use openssl::pkey::Id;
use openssl::sign::Verifier;
use openssl::x509::X509;
use spid_core::saml::binding;
use spid_core::saml::dsig;
use spid_core::saml::metadata::EntityMetadata;
use spid_core::saml::ns;
use spid_core::saml::xml::{self, Element, Limits};
use spid_core::{Comparison, Rule, SpidLevel};

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

/// SignatureMethod / SigAlg URIs accepted: RSA or ECDSA with SHA-256 or stronger.
const SIGNATURE_ALGORITHMS: &[&str] = &[
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
];

/// DigestMethod URIs accepted.
const DIGEST_ALGORITHMS: &[&str] = &[
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];

/// The Avviso 18 purposes.
const PURPOSES: &[&str] = &["P", "LP", "PG", "PF", "PX"];

/// NameID Format SPID asks for in an AuthnRequest's Subject.
const NAMEID_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";

/// RelayState bound (SAML-BIND 3.4.3, 3.5.3).
const RELAY_STATE_MAX: usize = 80;

/// A value for a detail string: quoted, or "absent".
fn shown(v: Option<&str>) -> String {
    match v {
        Some(v) => format!("\"{}\"", truncate(v, 120)),
        None => "absent".into(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// A comma-separated list for details, or "none".
fn listed<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items
            .iter()
            .map(|s| format!("\"{}\"", s.as_ref()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// An xs:ID (NCName): a letter or `_` first, then letters, digits, `.`, `-`, `_`; no colon.
fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first == '_' || first.is_alphabetic())
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '\u{B7}'))
}

/// A strict SAML instant: `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, nothing around it.
fn strict_instant(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let body = s.strip_suffix('Z')?;
    let b = body.as_bytes();
    let shape = b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
        && (b.len() == 19
            || (b[19] == b'.' && b.len() > 20 && b[20..].iter().all(u8::is_ascii_digit)));
    if !shape {
        return None;
    }
    chrono::NaiveDateTime::parse_from_str(body, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

/// Seconds, for details.
fn secs(d: chrono::Duration) -> i64 {
    d.num_seconds()
}

/// The xs:unsignedShort value of an index attribute.
fn index_value(v: &str) -> Option<u16> {
    let t = v.trim();
    if t.is_empty() || t.starts_with('-') {
        return None;
    }
    t.strip_prefix('+').unwrap_or(t).parse::<u16>().ok()
}

/// Checks the AuthnRequest the SP sent, as it arrived.
pub fn authn_request_checks(
    arrived: &ArrivedRequest,
    ctx: &RequestContext<'_>,
) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let redirect = arrived.binding == crate::agent::Binding::Redirect;
    encoding_check(&mut out, arrived, redirect);

    let root = match xml::parse(&arrived.xml, &Limits::default()) {
        Ok(root) => {
            rule(&mut out, Rule::SpRequestXml, true, "well-formed");
            Some(root)
        }
        Err(e) => {
            rule(&mut out, Rule::SpRequestXml, false, e.to_string());
            None
        }
    };
    advise(
        &mut out,
        Rule::SpRequestLeadingWhitespace,
        arrived.xml.starts_with('<') || arrived.xml.starts_with("\u{feff}<"),
        if arrived.xml.starts_with(|c: char| c.is_whitespace()) {
            "the XML starts with whitespace"
        } else {
            "the XML starts with markup"
        },
    );
    let root = root.filter(|r| {
        let ok = r.is(ns::SAMLP, "AuthnRequest");
        rule(
            &mut out,
            Rule::SpRequestRoot,
            ok,
            if ok {
                "samlp:AuthnRequest".to_string()
            } else {
                format!(
                    "root is {} in namespace {}",
                    r.qname,
                    r.ns.as_deref().unwrap_or("none")
                )
            },
        );
        ok
    });
    if let Some(root) = &root {
        xsd_check(&mut out, &arrived.xml);
        attribute_checks(&mut out, root, ctx);
        acs_checks(&mut out, root, ctx);
        issuer_checks(&mut out, root, ctx);
        name_id_policy_checks(&mut out, root);
        authn_context_checks(&mut out, root);
        optional_element_checks(&mut out, root, ctx);
    }
    if redirect {
        redirect_signature_checks(&mut out, arrived, root.as_ref(), ctx);
    } else if let Some(root) = &root {
        post_signature_checks(&mut out, arrived, root, ctx);
    }
    relay_state_checks(&mut out, arrived.relay_state.as_deref());
    out
}

/// SPID request checks a CIE SP is not held to, or that a `sp-request.cie.*` check replaces
/// (one defect, one failure).
const SPID_ONLY_REQUEST: &[Rule] = &[
    Rule::SpRequestDestination,
    Rule::SpRequestIsPassive,
    Rule::SpRequestForceAuthnPresent,
    Rule::SpRequestForceAuthn,
    Rule::SpRequestScoping,
    Rule::SpRequestIssuerFormat,
    Rule::SpRequestIssuerNameQualifierPresent,
    Rule::SpRequestIssuerNameQualifier,
    Rule::SpRequestNameIdPolicyPresent,
    Rule::SpRequestNameIdPolicyFormat,
    Rule::SpRequestAllowCreate,
    Rule::SpRequestAuthnContextPresent,
    Rule::SpRequestComparison,
    Rule::SpRequestClassRef,
    Rule::SpRequestAcsChoice,
    Rule::SpRequestProtocolBinding,
    Rule::SpRequestPurpose,
    Rule::SpRequestSignatureParams,
    Rule::SpRequestSignatureNotEnveloped,
    Rule::SpRequestSignaturePresent,
];

/// Checks the AuthnRequest a CIE SP sent (`check-sp --profile cie-sp-*`): the SAML checks CIE
/// shares with SPID, then the `sp-request.cie.*` checks of the CIE protocol rules.
/// `ctx.idp_sso` is the SSO location of the binding the request arrived by.
pub fn cie_authn_request_checks(
    arrived: &ArrivedRequest,
    ctx: &RequestContext<'_>,
) -> Vec<CheckResult> {
    let mut out = authn_request_checks(arrived, ctx);
    out.retain(|c| !SPID_ONLY_REQUEST.iter().any(|r| r.code() == c.id));
    let Some(root) = xml::parse(&arrived.xml, &Limits::default())
        .ok()
        .filter(|r| r.is(ns::SAMLP, "AuthnRequest"))
    else {
        return out;
    };
    let redirect = arrived.binding == crate::agent::Binding::Redirect;
    cie_request_checks(&mut out, &root, arrived, ctx, redirect);
    out
}

fn cie_request_checks(
    out: &mut Vec<CheckResult>,
    root: &Element,
    arrived: &ArrivedRequest,
    ctx: &RequestContext<'_>,
    redirect: bool,
) {
    let dest = root.attr("Destination");
    rule(
        out,
        Rule::SpRequestCieDestination,
        dest == Some(ctx.idp_sso),
        format!(
            "Destination {}, the {} SSO location is \"{}\"",
            shown(dest),
            if redirect {
                "HTTP-Redirect"
            } else {
                "HTTP-POST"
            },
            ctx.idp_sso
        ),
    );
    let force = root.attr("ForceAuthn");
    rule(
        out,
        Rule::SpRequestCieForceAuthn,
        matches!(force.map(str::trim), Some("true" | "1")),
        format!("ForceAuthn {}", shown(force)),
    );
    let passive = root.attr("IsPassive");
    rule(
        out,
        Rule::SpRequestCieIsPassive,
        passive.is_none(),
        format!("IsPassive {}", shown(passive)),
    );
    let scoping = root.child(ns::SAMLP, "Scoping").is_some()
        || root
            .descendants()
            .iter()
            .any(|e| e.is(ns::SAMLP, "RequesterID"));
    rule(
        out,
        Rule::SpRequestCieScoping,
        !scoping,
        if scoping {
            "Scoping or RequesterID present"
        } else {
            "no Scoping, no RequesterID"
        },
    );
    let issuers: Vec<&Element> = root.children_named(ns::SAML, "Issuer").collect();
    if let [issuer] = issuers.as_slice() {
        let f = issuer.attr("Format");
        rule(
            out,
            Rule::SpRequestCieIssuerFormat,
            f.is_none_or(|f| f == ns::NAMEID_ENTITY),
            format!("Issuer Format {}", shown(f)),
        );
    }
    let policies: Vec<&Element> = root.children_named(ns::SAMLP, "NameIDPolicy").collect();
    let (ok, detail) = match policies.as_slice() {
        [p] => {
            let f = p.attr("Format");
            let ac = p.attr("AllowCreate");
            (
                f == Some(ns::NAMEID_TRANSIENT) && ac.is_none(),
                format!("Format {}, AllowCreate {}", shown(f), shown(ac)),
            )
        }
        ps => (false, format!("{} NameIDPolicy elements", ps.len())),
    };
    rule(out, Rule::SpRequestCieNameIdPolicy, ok, detail);
    let racs: Vec<&Element> = root
        .children_named(ns::SAMLP, "RequestedAuthnContext")
        .collect();
    match racs.as_slice() {
        [rac] => {
            let c = rac.attr("Comparison");
            rule(
                out,
                Rule::SpRequestCieComparison,
                matches!(c, Some("exact" | "minimum")),
                format!("Comparison {}", shown(c)),
            );
            let classes: Vec<String> = rac
                .children_named(ns::SAML, "AuthnContextClassRef")
                .map(|r| r.text().trim().to_string())
                .collect();
            rule(
                out,
                Rule::SpRequestCieClassRef,
                !classes.is_empty() && classes.iter().all(|c| SpidLevel::from_uri(c).is_some()),
                format!("AuthnContextClassRef {}", listed(&classes)),
            );
        }
        rs => rule(
            out,
            Rule::SpRequestCieComparison,
            false,
            format!("{} RequestedAuthnContext elements", rs.len()),
        ),
    }
    let index = root.attr("AssertionConsumerServiceIndex");
    let url = root.attr("AssertionConsumerServiceURL");
    let pb = root.attr("ProtocolBinding");
    let ok = match (index, url, pb) {
        (Some(_), None, None) => true,
        (None, Some(_), Some(b)) => b == ns::BINDING_POST,
        _ => false,
    };
    rule(
        out,
        Rule::SpRequestCieAcs,
        ok,
        format!(
            "AssertionConsumerServiceIndex {}, AssertionConsumerServiceURL {}, ProtocolBinding {}",
            shown(index),
            shown(url),
            shown(pb)
        ),
    );
    let in_xml = std::iter::once(root)
        .chain(root.descendants())
        .filter(|e| e.is(ns::DS, "Signature"))
        .count();
    if redirect {
        let params: Vec<(String, String)> =
            url::form_urlencoded::parse(arrived.raw_query.as_deref().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let has = |k: &str| params.iter().any(|(n, v)| n == k && !v.is_empty());
        let (alg, sig) = (has("SigAlg"), has("Signature"));
        rule(
            out,
            Rule::SpRequestCieSignatureRedirect,
            alg && sig && in_xml == 0,
            format!(
                "SigAlg {}, Signature {} in the query; {in_xml} ds:Signature in the XML",
                if alg { "present" } else { "absent" },
                if sig { "present" } else { "absent" }
            ),
        );
    } else {
        let direct = root.children_named(ns::DS, "Signature").count();
        rule(
            out,
            Rule::SpRequestCieSignaturePost,
            direct == 1 && in_xml == 1,
            format!("{direct} ds:Signature child of AuthnRequest, {in_xml} in the XML"),
        );
    }
}

/// SAMLRequest decodes as the binding says.
fn encoding_check(out: &mut Vec<CheckResult>, arrived: &ArrivedRequest, redirect: bool) {
    let (ok, detail) = if redirect {
        let raw = arrived.raw_query.as_deref().unwrap_or("");
        let value = url::form_urlencoded::parse(raw.as_bytes())
            .find(|(k, _)| k == "SAMLRequest")
            .map(|(_, v)| v.into_owned());
        match value {
            None => (false, "no SAMLRequest query parameter".to_string()),
            Some(v) => {
                // A `+` read as a space by form decoding was a base64 `+` left unescaped.
                let compact: String = v
                    .chars()
                    .map(|c| if c == ' ' { '+' } else { c })
                    .filter(|c| !c.is_ascii_whitespace())
                    .collect();
                match base64::engine::general_purpose::STANDARD.decode(compact) {
                    Err(_) => (false, "SAMLRequest is not valid base64".to_string()),
                    Ok(bytes) => match binding::inflate_bounded(&bytes, binding::MAX_MESSAGE_BYTES)
                    {
                        Ok(x) if std::str::from_utf8(&x).is_ok() => (
                            true,
                            format!("base64 of raw DEFLATE, {} bytes of XML", x.len()),
                        ),
                        Ok(_) => (false, "the inflated SAMLRequest is not UTF-8".to_string()),
                        Err(e) => (false, format!("SAMLRequest does not inflate: {e}")),
                    },
                }
            }
        }
    } else {
        match arrived.form.iter().find(|(k, _)| k == "SAMLRequest") {
            None => (false, "no SAMLRequest form field".to_string()),
            Some((_, v)) => match binding::decode_post(v, binding::MAX_MESSAGE_BYTES) {
                Ok(x) => (true, format!("base64, {} bytes of XML", x.len())),
                Err(e) => (false, format!("SAMLRequest does not decode: {e}")),
            },
        }
    };
    rule(out, Rule::SpRequestEncoding, ok, detail);
}

/// XML Schema validity (samlp schema).
fn xsd_check(out: &mut Vec<CheckResult>, xml_text: &str) {
    match super::xsd::validate(xml_text, super::xsd::Schema::Protocol) {
        Ok(()) => rule(
            out,
            Rule::SpRequestXsd,
            true,
            "valid against saml-schema-protocol-2.0",
        ),
        Err(errors) => rule(
            out,
            Rule::SpRequestXsd,
            false,
            truncate(&errors.join("; "), 400),
        ),
    }
}

/// ID, Version, IssueInstant, Destination, IsPassive, ForceAuthn.
fn attribute_checks(out: &mut Vec<CheckResult>, root: &Element, ctx: &RequestContext<'_>) {
    let id = root.attr("ID");
    let id_present = id.is_some_and(|i| !i.is_empty());
    rule(out, Rule::SpRequestIdPresent, id_present, shown(id));
    if let Some(id) = id.filter(|_| id_present) {
        let ok = is_ncname(id);
        rule(
            out,
            Rule::SpRequestIdSyntax,
            ok,
            if ok {
                format!("\"{}\" is an NCName", truncate(id, 120))
            } else {
                format!("\"{}\" is not an NCName", truncate(id, 120))
            },
        );
    }

    let version = root.attr("Version");
    rule(
        out,
        Rule::SpRequestVersionPresent,
        version.is_some(),
        shown(version),
    );
    if let Some(v) = version {
        rule(out, Rule::SpRequestVersion, v == "2.0", shown(Some(v)));
    }

    let instant = root.attr("IssueInstant");
    let instant_present = instant.is_some_and(|i| !i.is_empty());
    rule(
        out,
        Rule::SpRequestIssueInstantPresent,
        instant_present,
        shown(instant),
    );
    if let Some(i) = instant.filter(|_| instant_present) {
        let parsed = strict_instant(i);
        rule(
            out,
            Rule::SpRequestIssueInstantFormat,
            parsed.is_some(),
            if parsed.is_some() {
                format!("\"{i}\" is a UTC xs:dateTime")
            } else {
                format!("\"{}\" is not YYYY-MM-DDThh:mm:ss[.s]Z", truncate(i, 60))
            },
        );
        if let Some(t) = parsed {
            let ahead = t - ctx.now;
            rule(
                out,
                Rule::SpRequestIssueInstantFuture,
                ahead <= ctx.skew,
                if ahead > chrono::Duration::zero() {
                    format!(
                        "IssueInstant {i} is {} s in the future (skew {} s)",
                        secs(ahead),
                        secs(ctx.skew)
                    )
                } else {
                    format!("IssueInstant {i} is not in the future")
                },
            );
            let behind = ctx.now - t;
            rule(
                out,
                Rule::SpRequestIssueInstantStale,
                behind <= ctx.skew,
                if behind > chrono::Duration::zero() {
                    format!(
                        "IssueInstant {i} is {} s in the past (skew {} s)",
                        secs(behind),
                        secs(ctx.skew)
                    )
                } else {
                    format!("IssueInstant {i} is not in the past")
                },
            );
        }
    }

    let dest = root.attr("Destination");
    let dest_present = dest.is_some_and(|d| !d.is_empty());
    rule(
        out,
        Rule::SpRequestDestinationPresent,
        dest_present,
        shown(dest),
    );
    if let Some(d) = dest.filter(|_| dest_present) {
        let ok = d == ctx.idp_sso || d == ctx.idp_entity_id;
        rule(
            out,
            Rule::SpRequestDestination,
            ok,
            if ok {
                format!("\"{d}\"")
            } else {
                format!(
                    "\"{}\" is neither our SSO location \"{}\" nor our entityID \"{}\"",
                    truncate(d, 200),
                    ctx.idp_sso,
                    ctx.idp_entity_id
                )
            },
        );
    }

    let passive = root.attr("IsPassive");
    rule(
        out,
        Rule::SpRequestIsPassive,
        passive.is_none(),
        match passive {
            None => "absent".to_string(),
            Some(p) => format!("IsPassive=\"{p}\" is present"),
        },
    );

    // ForceAuthn is needed whenever more than SpidL1 may be delivered.
    let rac = root.child(ns::SAMLP, "RequestedAuthnContext");
    let comparison = rac.and_then(|r| r.attr("Comparison"));
    let levels: Vec<SpidLevel> = rac
        .map(|r| {
            r.children_named(ns::SAML, "AuthnContextClassRef")
                .filter_map(|c| SpidLevel::from_uri(c.text().trim()))
                .collect()
        })
        .unwrap_or_default();
    let above_l1 = levels.iter().any(|l| *l > SpidLevel::L1) || comparison == Some("better");
    let why = {
        let uris: Vec<&str> = levels.iter().map(|l| l.uri()).collect();
        format!(
            "level {} with Comparison {}",
            if uris.is_empty() {
                "unknown".to_string()
            } else {
                uris.join(", ")
            },
            comparison.unwrap_or("absent")
        )
    };
    let force = root.attr("ForceAuthn");
    rule(
        out,
        Rule::SpRequestForceAuthnPresent,
        !above_l1 || force.is_some(),
        match (above_l1, force) {
            (true, None) => format!("ForceAuthn absent for {why}"),
            (true, Some(f)) => format!("ForceAuthn=\"{f}\" for {why}"),
            (false, _) => format!("not required for {why}"),
        },
    );
    if let Some(f) = force {
        let v = f.trim();
        let boolean = matches!(v, "true" | "1" | "false" | "0");
        let truthy = matches!(v, "true" | "1");
        rule(
            out,
            Rule::SpRequestForceAuthn,
            boolean && (!above_l1 || truthy),
            if !boolean {
                format!("ForceAuthn=\"{f}\" is not an xs:boolean")
            } else if above_l1 && !truthy {
                format!("ForceAuthn=\"{f}\" for {why}")
            } else {
                format!("ForceAuthn=\"{f}\"")
            },
        );
    }
}

/// AssertionConsumerService and AttributeConsumingService designation.
fn acs_checks(out: &mut Vec<CheckResult>, root: &Element, ctx: &RequestContext<'_>) {
    let spd = ctx.sp.sp.clone().unwrap_or_default();
    let index = root.attr("AssertionConsumerServiceIndex");
    let url = root.attr("AssertionConsumerServiceURL");
    let pb = root.attr("ProtocolBinding");
    let choice = match (index, url, pb) {
        (Some(_), None, None) => Ok("by AssertionConsumerServiceIndex"),
        (None, Some(_), Some(_)) => Ok("by AssertionConsumerServiceURL and ProtocolBinding"),
        (None, None, _) => {
            Err("neither AssertionConsumerServiceIndex nor AssertionConsumerServiceURL")
        }
        (None, Some(_), None) => Err("AssertionConsumerServiceURL without ProtocolBinding"),
        (Some(_), _, _) => Err(
            "AssertionConsumerServiceIndex together with AssertionConsumerServiceURL or ProtocolBinding",
        ),
    };
    rule(
        out,
        Rule::SpRequestAcsChoice,
        choice.is_ok(),
        choice.unwrap_or_else(|e| e),
    );
    let mut designated = None;
    if let Some(i) = index {
        let value = index_value(i);
        rule(
            out,
            Rule::SpRequestAcsIndexValue,
            value.is_some(),
            shown(Some(i)),
        );
        if let Some(v) = value {
            let acs = spd.acs.iter().find(|a| a.index == v);
            let known: Vec<String> = spd.acs.iter().map(|a| a.index.to_string()).collect();
            rule(
                out,
                Rule::SpRequestAcsIndexKnown,
                acs.is_some(),
                format!("index {v}; metadata indexes {}", listed(&known)),
            );
            designated = acs.map(|a| &a.endpoint);
        }
    }
    if let Some(u) = url {
        let acs = spd.acs.iter().find(|a| a.endpoint.location == u);
        let known: Vec<&str> = spd
            .acs
            .iter()
            .map(|a| a.endpoint.location.as_str())
            .collect();
        rule(
            out,
            Rule::SpRequestAcsUrlKnown,
            acs.is_some(),
            format!(
                "\"{}\"; metadata locations {}",
                truncate(u, 200),
                listed(&known)
            ),
        );
        if designated.is_none() {
            designated = acs.map(|a| &a.endpoint);
        }
    }
    if let Some(p) = pb {
        rule(
            out,
            Rule::SpRequestProtocolBinding,
            p == ns::BINDING_POST,
            shown(Some(p)),
        );
    }
    if let Some(e) = designated {
        rule(
            out,
            Rule::SpRequestAcsBinding,
            e.binding == ns::BINDING_POST,
            format!("{} has Binding \"{}\"", e.location, e.binding),
        );
    }

    let attr = root.attr("AttributeConsumingServiceIndex");
    rule(
        out,
        Rule::SpRequestAttributeIndexPresent,
        attr.is_some(),
        shown(attr),
    );
    if let Some(a) = attr {
        let value = index_value(a);
        rule(
            out,
            Rule::SpRequestAttributeIndexValue,
            value.is_some(),
            shown(Some(a)),
        );
        if let Some(v) = value {
            let known: Vec<String> = spd
                .attribute_services
                .iter()
                .map(|s| s.index.to_string())
                .collect();
            rule(
                out,
                Rule::SpRequestAttributeIndexKnown,
                spd.attribute_services.iter().any(|s| s.index == v),
                format!("index {v}; metadata indexes {}", listed(&known)),
            );
        }
    }
}

/// Issuer, its Format and NameQualifier.
fn issuer_checks(out: &mut Vec<CheckResult>, root: &Element, ctx: &RequestContext<'_>) {
    let issuers: Vec<&Element> = root.children_named(ns::SAML, "Issuer").collect();
    let issuer = match issuers.as_slice() {
        [one] if !one.text().trim().is_empty() => {
            rule(
                out,
                Rule::SpRequestIssuerPresent,
                true,
                shown(Some(one.text().trim())),
            );
            one
        }
        [one] => {
            let _ = one;
            rule(out, Rule::SpRequestIssuerPresent, false, "Issuer is empty");
            return;
        }
        [] => {
            rule(out, Rule::SpRequestIssuerPresent, false, "absent");
            return;
        }
        many => {
            rule(
                out,
                Rule::SpRequestIssuerPresent,
                false,
                format!("{} Issuer elements", many.len()),
            );
            return;
        }
    };
    let entity = ctx.sp.entity_id.as_str();
    let text = issuer.text();
    let text = text.trim();
    rule(
        out,
        Rule::SpRequestIssuer,
        text == entity,
        if text == entity {
            format!("\"{text}\"")
        } else {
            format!(
                "\"{}\", the SP entityID is \"{entity}\"",
                truncate(text, 200)
            )
        },
    );
    let format = issuer.attr("Format");
    rule(
        out,
        Rule::SpRequestIssuerFormat,
        format == Some(ns::NAMEID_ENTITY),
        shown(format),
    );
    let nq = issuer.attr("NameQualifier");
    let nq_present = nq.is_some_and(|q| !q.trim().is_empty());
    rule(
        out,
        Rule::SpRequestIssuerNameQualifierPresent,
        nq_present,
        shown(nq),
    );
    if let Some(q) = nq.filter(|_| nq_present) {
        rule(
            out,
            Rule::SpRequestIssuerNameQualifier,
            q == entity,
            if q == entity {
                format!("\"{q}\"")
            } else {
                format!("\"{}\", the SP entityID is \"{entity}\"", truncate(q, 200))
            },
        );
    }
}

/// NameIDPolicy: one, transient, no AllowCreate.
fn name_id_policy_checks(out: &mut Vec<CheckResult>, root: &Element) {
    let policies: Vec<&Element> = root.children_named(ns::SAMLP, "NameIDPolicy").collect();
    let [policy] = policies.as_slice() else {
        rule(
            out,
            Rule::SpRequestNameIdPolicyPresent,
            false,
            if policies.is_empty() {
                "absent".to_string()
            } else {
                format!("{} NameIDPolicy elements", policies.len())
            },
        );
        return;
    };
    rule(
        out,
        Rule::SpRequestNameIdPolicyPresent,
        true,
        "one NameIDPolicy",
    );
    let format = policy.attr("Format");
    rule(
        out,
        Rule::SpRequestNameIdPolicyFormat,
        format == Some(ns::NAMEID_TRANSIENT),
        shown(format),
    );
    let allow = policy.attr("AllowCreate");
    rule(
        out,
        Rule::SpRequestAllowCreate,
        allow.is_none(),
        match allow {
            None => "absent".to_string(),
            Some(a) => format!("AllowCreate=\"{a}\" is present"),
        },
    );
}

/// RequestedAuthnContext: one, Comparison, one SpidL class ref, a deliverable combination.
fn authn_context_checks(out: &mut Vec<CheckResult>, root: &Element) {
    let racs: Vec<&Element> = root
        .children_named(ns::SAMLP, "RequestedAuthnContext")
        .collect();
    let [rac] = racs.as_slice() else {
        rule(
            out,
            Rule::SpRequestAuthnContextPresent,
            false,
            if racs.is_empty() {
                "absent".to_string()
            } else {
                format!("{} RequestedAuthnContext elements", racs.len())
            },
        );
        return;
    };
    rule(
        out,
        Rule::SpRequestAuthnContextPresent,
        true,
        "one RequestedAuthnContext",
    );
    let cmp_text = rac.attr("Comparison");
    let cmp = cmp_text
        .and_then(Comparison::parse)
        .filter(|c| Some(c.as_str()) == cmp_text);
    rule(
        out,
        Rule::SpRequestComparison,
        cmp.is_some(),
        shown(cmp_text),
    );
    let refs: Vec<String> = rac
        .children_named(ns::SAML, "AuthnContextClassRef")
        .map(|c| c.text().trim().to_string())
        .collect();
    let non_empty: Vec<&String> = refs.iter().filter(|r| !r.is_empty()).collect();
    rule(
        out,
        Rule::SpRequestClassRefPresent,
        !refs.is_empty() && non_empty.len() == refs.len(),
        if refs.is_empty() {
            "no AuthnContextClassRef".to_string()
        } else if non_empty.len() != refs.len() {
            "an AuthnContextClassRef is empty".to_string()
        } else {
            listed(&refs)
        },
    );
    if non_empty.is_empty() {
        return;
    }
    rule(
        out,
        Rule::SpRequestClassRefSingle,
        refs.len() == 1,
        format!("{} AuthnContextClassRef: {}", refs.len(), listed(&refs)),
    );
    let unknown: Vec<&String> = non_empty
        .iter()
        .copied()
        .filter(|r| SpidLevel::from_uri(r).is_none())
        .collect();
    rule(
        out,
        Rule::SpRequestClassRef,
        unknown.is_empty(),
        if unknown.is_empty() {
            listed(&refs)
        } else {
            format!("not a SPID level: {}", listed(&unknown))
        },
    );
    if let (Some(c), [one]) = (cmp, refs.as_slice()) {
        if let Some(level) = SpidLevel::from_uri(one) {
            let ok = !(c == Comparison::Better && level == SpidLevel::L3);
            rule(
                out,
                Rule::SpRequestLevelSatisfiable,
                ok,
                if ok {
                    format!("{} {}", c.as_str(), level.uri())
                } else {
                    "better than SpidL3: no SPID level can satisfy it".to_string()
                },
            );
        }
    }
}

/// Extensions and spid:Purpose, Subject, Conditions, Scoping.
fn optional_element_checks(out: &mut Vec<CheckResult>, root: &Element, ctx: &RequestContext<'_>) {
    let extensions: Vec<&Element> = root.children_named(ns::SAMLP, "Extensions").collect();
    let saml_ns = |n: Option<&str>| {
        n.is_none() || matches!(n, Some(x) if x == ns::SAML || x == ns::SAMLP || x == ns::MD)
    };
    let ext_result: Result<String, String> = match extensions.as_slice() {
        [] => Ok("absent (optional)".into()),
        [ext] => {
            let children: Vec<&Element> = ext.elements().collect();
            let text = ext.text();
            if children.is_empty() {
                Err("Extensions is empty".into())
            } else if !text.trim().is_empty() {
                Err("Extensions holds text".into())
            } else if let Some(bad) = children.iter().find(|e| saml_ns(e.ns.as_deref())) {
                Err(format!(
                    "{} is in {}",
                    bad.qname,
                    bad.ns
                        .as_deref()
                        .map_or("no namespace".to_string(), |n| format!("the namespace {n}"))
                ))
            } else {
                let names: Vec<&str> = children.iter().map(|e| e.qname.as_str()).collect();
                Ok(format!("extensions {}", names.join(", ")))
            }
        }
        many => Err(format!("{} Extensions elements", many.len())),
    };
    let ok = ext_result.is_ok();
    rule(
        out,
        Rule::SpRequestExtensions,
        ok,
        ext_result.unwrap_or_else(|e| e),
    );

    // spid:Purpose: any element named Purpose anywhere in Extensions must be the SPID one.
    let purposes: Vec<&Element> = extensions
        .iter()
        .flat_map(|e| e.elements())
        .filter(|e| e.local() == "Purpose")
        .collect();
    let purpose = match purposes.as_slice() {
        [] => Ok("no spid:Purpose (optional)".to_string()),
        [p] if p.ns.as_deref() != Some(ns::SPID) => Err(format!(
            "Purpose is in {} instead of {}",
            p.ns.as_deref().unwrap_or("no namespace"),
            ns::SPID
        )),
        [p] => {
            let v = p.text();
            let v = v.trim();
            if PURPOSES.contains(&v) {
                Ok(format!("spid:Purpose \"{v}\""))
            } else {
                Err(format!(
                    "spid:Purpose \"{}\" is not one of {}",
                    truncate(v, 40),
                    PURPOSES.join(", ")
                ))
            }
        }
        many => Err(format!("{} Purpose elements", many.len())),
    };
    let ok = purpose.is_ok();
    rule(
        out,
        Rule::SpRequestPurpose,
        ok,
        purpose.unwrap_or_else(|e| e),
    );

    let subjects: Vec<&Element> = root.children_named(ns::SAML, "Subject").collect();
    let subject = match subjects.as_slice() {
        [] => Ok("absent (optional)".to_string()),
        [s] => {
            let ids: Vec<&Element> = s.children_named(ns::SAML, "NameID").collect();
            match ids.as_slice() {
                [id] => {
                    let format = id.attr("Format");
                    let nq = id.attr("NameQualifier").filter(|q| !q.trim().is_empty());
                    if format != Some(NAMEID_UNSPECIFIED) {
                        Err(format!("NameID Format {}", shown(format)))
                    } else if id.text().trim().is_empty() {
                        Err("NameID is empty".to_string())
                    } else if nq.is_none() {
                        Err("NameID has no NameQualifier".to_string())
                    } else {
                        Ok("one NameID, Format unspecified, with NameQualifier".to_string())
                    }
                }
                other => Err(format!("{} NameID elements in Subject", other.len())),
            }
        }
        many => Err(format!("{} Subject elements", many.len())),
    };
    let ok = subject.is_ok();
    rule(
        out,
        Rule::SpRequestSubject,
        ok,
        subject.unwrap_or_else(|e| e),
    );

    let conditions: Vec<&Element> = root.children_named(ns::SAML, "Conditions").collect();
    let mut window = None;
    let cond = match conditions.as_slice() {
        [] => Ok("absent (optional)".to_string()),
        [c] => {
            let nb = c.attr("NotBefore");
            let noa = c.attr("NotOnOrAfter");
            match (nb.and_then(strict_instant), noa.and_then(strict_instant)) {
                (Some(b), Some(a)) => {
                    window = Some((b, a));
                    Ok(format!(
                        "NotBefore {} NotOnOrAfter {}",
                        nb.unwrap_or_default(),
                        noa.unwrap_or_default()
                    ))
                }
                _ => Err(format!(
                    "NotBefore {}, NotOnOrAfter {}: both must be UTC xs:dateTime",
                    shown(nb),
                    shown(noa)
                )),
            }
        }
        many => Err(format!("{} Conditions elements", many.len())),
    };
    let ok = cond.is_ok();
    rule(
        out,
        Rule::SpRequestConditions,
        ok,
        cond.unwrap_or_else(|e| e),
    );
    if ok {
        let (ok, detail) = match window {
            None => (true, "no Conditions (optional)".to_string()),
            Some((b, a)) => {
                if b - ctx.skew > ctx.now {
                    (
                        false,
                        format!(
                            "NotBefore is {} s ahead (skew {} s)",
                            secs(b - ctx.now),
                            secs(ctx.skew)
                        ),
                    )
                } else if a + ctx.skew <= ctx.now {
                    (
                        false,
                        format!(
                            "NotOnOrAfter passed {} s ago (skew {} s)",
                            secs(ctx.now - a),
                            secs(ctx.skew)
                        ),
                    )
                } else {
                    (
                        true,
                        "the request arrived within NotBefore and NotOnOrAfter".to_string(),
                    )
                }
            }
        };
        rule(out, Rule::SpRequestConditionsWindow, ok, detail);
    }

    let scoping = root.child(ns::SAMLP, "Scoping").is_some();
    rule(
        out,
        Rule::SpRequestScoping,
        !scoping,
        if scoping {
            "Scoping is present"
        } else {
            "absent"
        },
    );
}

/// The metadata signing certificates, parsed.
fn metadata_certs(ctx: &RequestContext<'_>) -> Vec<X509> {
    ctx.sp
        .signing_certs
        .iter()
        .filter_map(|der| X509::from_der(der).ok())
        .collect()
}

/// Verifies a query signature with one certificate: RSA PKCS#1 v1.5, or ECDSA (DER or the
/// XML-DSig r||s form).
fn verify_query(alg: &str, signed: &[u8], signature: &[u8], cert: &X509) -> bool {
    let digest = match alg.rsplit('-').next() {
        Some("sha256") => MessageDigest::sha256(),
        Some("sha384") => MessageDigest::sha384(),
        Some("sha512") => MessageDigest::sha512(),
        _ => return false,
    };
    let Ok(key) = cert.public_key() else {
        return false;
    };
    let ecdsa = alg.contains("#ecdsa-");
    let der_signature = match (ecdsa, key.id()) {
        (false, Id::RSA) => signature.to_vec(),
        (true, Id::EC) => {
            if signature.first() == Some(&0x30) {
                signature.to_vec()
            } else if signature.len().is_multiple_of(2) && !signature.is_empty() {
                let (r, s) = signature.split_at(signature.len() / 2);
                let sig = openssl::bn::BigNum::from_slice(r)
                    .and_then(|r| openssl::bn::BigNum::from_slice(s).map(|s| (r, s)))
                    .and_then(|(r, s)| openssl::ecdsa::EcdsaSig::from_private_components(r, s))
                    .and_then(|sig| sig.to_der());
                match sig {
                    Ok(d) => d,
                    Err(_) => return false,
                }
            } else {
                return false;
            }
        }
        _ => return false,
    };
    let Ok(mut v) = Verifier::new(digest, &key) else {
        return false;
    };
    v.update(signed).is_ok() && v.verify(&der_signature).unwrap_or(false)
}

/// HTTP-Redirect: query signature parameters, algorithm, verification; no enveloped signature.
fn redirect_signature_checks(
    out: &mut Vec<CheckResult>,
    arrived: &ArrivedRequest,
    root: Option<&Element>,
    ctx: &RequestContext<'_>,
) {
    let raw = arrived.raw_query.as_deref().unwrap_or("");
    let params: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let (sig_alg, signature) = (get("SigAlg"), get("Signature"));
    rule(
        out,
        Rule::SpRequestSignatureParams,
        sig_alg.is_some() && signature.is_some(),
        format!(
            "SigAlg {}, Signature {}",
            if sig_alg.is_some() {
                "present"
            } else {
                "absent"
            },
            if signature.is_some() {
                "present"
            } else {
                "absent"
            }
        ),
    );
    if let Some(alg) = sig_alg {
        let allowed = SIGNATURE_ALGORITHMS.contains(&alg);
        rule(out, Rule::SpRequestSigAlg, allowed, shown(Some(alg)));
        if allowed && signature.is_some() {
            let (ok, detail) = match binding::decode_redirect(raw, binding::MAX_MESSAGE_BYTES) {
                Err(e) => (false, format!("the query cannot be read: {e}")),
                Ok(m) => match m.signature {
                    None => (false, "no signature in the query".to_string()),
                    Some(s) => {
                        let certs = metadata_certs(ctx);
                        if certs.is_empty() {
                            (
                                false,
                                "the SP metadata has no signing certificate".to_string(),
                            )
                        } else if certs
                            .iter()
                            .any(|c| verify_query(&s.alg_uri, &s.signed_octets, &s.signature, c))
                        {
                            (
                                true,
                                format!(
                                    "verified over {} octets with a metadata certificate",
                                    s.signed_octets.len()
                                ),
                            )
                        } else {
                            (
                                false,
                                format!(
                                    "does not verify with any of the {} metadata signing certificates",
                                    certs.len()
                                ),
                            )
                        }
                    }
                },
            };
            rule(out, Rule::SpRequestSignatureQuery, ok, detail);
        }
    }
    if let Some(root) = root {
        let n = std::iter::once(root)
            .chain(root.descendants())
            .filter(|e| e.is(ns::DS, "Signature"))
            .count();
        rule(
            out,
            Rule::SpRequestSignatureNotEnveloped,
            n == 0,
            if n == 0 {
                "no ds:Signature in the XML".to_string()
            } else {
                format!("{n} ds:Signature in the XML of an HTTP-Redirect request")
            },
        );
    }
}

/// HTTP-POST: the enveloped signature's shape, algorithms and validity.
fn post_signature_checks(
    out: &mut Vec<CheckResult>,
    arrived: &ArrivedRequest,
    root: &Element,
    ctx: &RequestContext<'_>,
) {
    let direct: Vec<&Element> = root.children_named(ns::DS, "Signature").collect();
    let all = root
        .descendants()
        .into_iter()
        .filter(|e| e.is(ns::DS, "Signature"))
        .count();
    let [sig] = direct.as_slice() else {
        rule(
            out,
            Rule::SpRequestSignaturePresent,
            false,
            if direct.is_empty() {
                "no ds:Signature child of AuthnRequest".to_string()
            } else {
                format!("{} ds:Signature children of AuthnRequest", direct.len())
            },
        );
        return;
    };
    rule(
        out,
        Rule::SpRequestSignaturePresent,
        all == 1,
        if all == 1 {
            "one ds:Signature, child of AuthnRequest".to_string()
        } else {
            format!(
                "{} ds:Signature elements, {} nested below the AuthnRequest's children",
                all,
                all - 1
            )
        },
    );
    let kids: Vec<&Element> = root.elements().collect();
    let issuer_pos = kids.iter().position(|e| e.is(ns::SAML, "Issuer"));
    let sig_pos = kids.iter().position(|e| e.is(ns::DS, "Signature"));
    let placed = matches!((issuer_pos, sig_pos), (Some(i), Some(s)) if s == i + 1);
    rule(
        out,
        Rule::SpRequestSignaturePlacement,
        placed,
        match (issuer_pos, sig_pos) {
            (Some(i), Some(s)) if s == i + 1 => "right after Issuer".to_string(),
            (None, _) => "no Issuer to follow".to_string(),
            (Some(i), Some(s)) => format!("child {} while Issuer is child {}", s + 1, i + 1),
            (Some(_), None) => "absent".to_string(),
        },
    );

    let signed_info = sig.child(ns::DS, "SignedInfo");
    let refs: Vec<&Element> = signed_info
        .map(|s| s.children_named(ns::DS, "Reference").collect())
        .unwrap_or_default();
    let want = format!("#{}", root.attr("ID").unwrap_or_default());
    let reference_ok =
        matches!(refs.as_slice(), [r] if r.attr("URI") == Some(want.as_str())) && want.len() > 1;
    rule(
        out,
        Rule::SpRequestSignatureReference,
        reference_ok,
        match refs.as_slice() {
            [r] => format!("URI {}, expected \"{want}\"", shown(r.attr("URI"))),
            other => format!("{} Reference elements", other.len()),
        },
    );

    let method = signed_info
        .and_then(|s| s.child(ns::DS, "SignatureMethod"))
        .and_then(|m| m.attr("Algorithm"));
    rule(
        out,
        Rule::SpRequestSignatureMethod,
        method.is_some_and(|m| SIGNATURE_ALGORITHMS.contains(&m)),
        shown(method),
    );
    let digests: Vec<Option<&str>> = refs
        .iter()
        .map(|r| {
            r.child(ns::DS, "DigestMethod")
                .and_then(|d| d.attr("Algorithm"))
        })
        .collect();
    rule(
        out,
        Rule::SpRequestSignatureDigest,
        !digests.is_empty()
            && digests
                .iter()
                .all(|d| d.is_some_and(|d| DIGEST_ALGORITHMS.contains(&d))),
        if digests.is_empty() {
            "no DigestMethod".to_string()
        } else {
            digests
                .iter()
                .map(|d| shown(*d))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    let transforms: Vec<Option<&str>> = refs
        .iter()
        .filter_map(|r| r.child(ns::DS, "Transforms"))
        .flat_map(|t| t.children_named(ns::DS, "Transform"))
        .map(|t| t.attr("Algorithm"))
        .collect();
    let transforms_ok = transforms
        .iter()
        .all(|t| matches!(t, Some(a) if *a == ns::ENVELOPED || *a == ns::EXC_C14N))
        && transforms.contains(&Some(ns::ENVELOPED));
    rule(
        out,
        Rule::SpRequestSignatureTransforms,
        transforms_ok,
        if transforms.is_empty() {
            "no Transform".to_string()
        } else {
            transforms
                .iter()
                .map(|t| shown(*t))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    let c14n = signed_info
        .and_then(|s| s.child(ns::DS, "CanonicalizationMethod"))
        .and_then(|c| c.attr("Algorithm"));
    advise(
        out,
        Rule::SpRequestSignatureC14n,
        c14n == Some(ns::EXC_C14N),
        shown(c14n),
    );

    let (ok, detail) = if ctx.sp.signing_certs.is_empty() {
        (
            false,
            "the SP metadata has no signing certificate".to_string(),
        )
    } else {
        match dsig::verify_and_reduce(&arrived.xml, &ctx.sp.signing_certs) {
            Ok(_) => (
                true,
                "verified with a metadata signing certificate".to_string(),
            ),
            Err(e) => (
                false,
                format!(
                    "{e}: does not verify with any of the {} metadata signing certificates",
                    ctx.sp.signing_certs.len()
                ),
            ),
        }
    };
    rule(out, Rule::SpRequestSignatureValid, ok, detail);

    let in_key_info: Vec<Vec<u8>> = sig
        .child(ns::DS, "KeyInfo")
        .map(|k| {
            k.children_named(ns::DS, "X509Data")
                .flat_map(|d| d.children_named(ns::DS, "X509Certificate"))
                .filter_map(|c| {
                    let t: String = c.text().chars().filter(|c| !c.is_whitespace()).collect();
                    base64::engine::general_purpose::STANDARD.decode(t).ok()
                })
                .collect()
        })
        .unwrap_or_default();
    let unknown = in_key_info
        .iter()
        .filter(|c| !ctx.sp.signing_certs.contains(c))
        .count();
    advise(
        out,
        Rule::SpRequestSignatureKeyInfo,
        unknown == 0,
        if in_key_info.is_empty() {
            "no certificate in KeyInfo".to_string()
        } else if unknown == 0 {
            "the KeyInfo certificate is a metadata signing certificate".to_string()
        } else {
            format!("{unknown} KeyInfo certificate(s) not in the SP metadata")
        },
    );
}

/// RelayState: present, opaque, at most 80 bytes.
fn relay_state_checks(out: &mut Vec<CheckResult>, relay: Option<&str>) {
    let present = relay.is_some_and(|r| !r.is_empty());
    rule(
        out,
        Rule::SpRequestRelayStatePresent,
        present,
        match relay {
            None => "absent".to_string(),
            Some("") => "empty".to_string(),
            Some(r) => format!("{} bytes", r.len()),
        },
    );
    let Some(r) = relay.filter(|_| present) else {
        return;
    };
    let lower = r.to_ascii_lowercase();
    let readable = lower.contains("http")
        || lower.contains("://")
        || lower.starts_with('/')
        || lower.starts_with("www.")
        || url::Url::parse(r).is_ok_and(|u| u.has_host());
    rule(
        out,
        Rule::SpRequestRelayStateOpaque,
        !readable,
        if readable {
            format!("\"{}\" reads as a URL or path", truncate(r, 80))
        } else {
            format!("\"{}\"", truncate(r, 80))
        },
    );
    rule(
        out,
        Rule::SpRequestRelayStateLength,
        r.len() <= RELAY_STATE_MAX,
        format!("{} bytes (at most {RELAY_STATE_MAX})", r.len()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::Binding;
    use crate::runner::Credentials;
    use openssl::pkey::{PKey, Private};
    use spid_core::saml::binding::{MessageParam, SigAlg};
    use spid_core::saml::dsig::Credential;
    use spid_core::saml::metadata::{self, IdpMetadataConfig};
    use spid_core::saml::xml::Node;
    use std::collections::BTreeSet;

    /// Our reference SP, started in-process, and what it sent to a (never contacted) IdP.
    struct Captured {
        sp_md: EntityMetadata,
        idp_entity: String,
        sso: String,
        creds: Credentials,
        arrived: ArrivedRequest,
        task: tokio::task::JoinHandle<()>,
        /// Our SP registered a CIE IdP: judged by the CIE checks.
        cie: bool,
    }

    impl Drop for Captured {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl Captured {
        fn ctx(&self) -> RequestContext<'_> {
            RequestContext {
                sp: &self.sp_md,
                idp_entity_id: &self.idp_entity,
                idp_sso: &self.sso,
                now: spid_core::clock::now(),
                skew: chrono::Duration::seconds(180),
            }
        }

        fn check(&self, arrived: &ArrivedRequest) -> Vec<CheckResult> {
            if self.cie {
                cie_authn_request_checks(arrived, &self.ctx())
            } else {
                authn_request_checks(arrived, &self.ctx())
            }
        }

        fn relay(&self) -> Option<&str> {
            self.arrived.relay_state.as_deref()
        }

        /// The honest request's root, unsigned, edited by `f`.
        fn edited(&self, f: impl FnOnce(&mut Element)) -> Element {
            let mut el = xml::parse(&self.arrived.xml, &Limits::default()).unwrap();
            el.remove_children(ns::DS, "Signature");
            f(&mut el);
            el
        }

        /// `xml` sent by HTTP-Redirect, signed with `key` and `alg` (None: unsigned).
        fn redirect(
            &self,
            xml: &str,
            relay: Option<&str>,
            signing: Option<(&PKey<Private>, SigAlg)>,
        ) -> ArrivedRequest {
            let url = binding::encode_redirect(
                &url::Url::parse(&self.sso).unwrap(),
                MessageParam::SamlRequest,
                xml,
                relay,
                signing,
            )
            .unwrap();
            ArrivedRequest {
                binding: Binding::Redirect,
                xml: xml.to_string(),
                raw_query: url.query().map(str::to_string),
                form: Vec::new(),
                relay_state: relay.map(str::to_string),
            }
        }

        /// `xml` (already signed or not) sent by HTTP-POST.
        fn post(&self, xml: &str, relay: Option<&str>) -> ArrivedRequest {
            let mut form = vec![("SAMLRequest".to_string(), binding::encode_post(xml))];
            if let Some(r) = relay {
                form.push(("RelayState".into(), r.into()));
            }
            ArrivedRequest {
                binding: Binding::Post,
                xml: xml.to_string(),
                raw_query: None,
                form,
                relay_state: relay.map(str::to_string),
            }
        }

        /// The edited request sent by this capture's binding, signed with `cred`.
        fn resend(&self, el: Element, relay: Option<&str>, cred: &Credential) -> ArrivedRequest {
            match self.arrived.binding {
                Binding::Redirect => {
                    self.redirect(&el.to_xml(), relay, Some((&cred.key, SigAlg::RsaSha256)))
                }
                Binding::Post => self.post(&dsig::sign_root(el, cred).unwrap(), relay),
            }
        }
    }

    async fn capture(binding: Binding, query: &str) -> Captured {
        capture_as(binding, query, false).await
    }

    /// [`capture`] from our SP in CIE mode (CIE SP metadata, the minimum set) trusting a CIE
    /// IdP, judged by the CIE checks.
    async fn capture_cie(binding: Binding, query: &str) -> Captured {
        capture_as(binding, query, true).await
    }

    async fn capture_as(binding: Binding, query: &str, cie: bool) -> Captured {
        let creds = Credentials::embedded().unwrap();
        let sp_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sp_url = format!("http://{}", sp_l.local_addr().unwrap());
        let mut sp_cfg = spid_sp::SpConfig::new(&sp_url, creds.sp.clone());
        if cie {
            sp_cfg.cie_metadata = true;
            sp_cfg.attributes = spid_core::cie::MINIMUM_ATTRIBUTES
                .map(String::from)
                .to_vec();
        }
        let sp = spid_sp::ServiceProvider::new(sp_cfg).unwrap();
        // An IdP that is never contacted: only its metadata is needed.
        let (idp_entity, sso) = if cie {
            let base = "https://idp.test.example";
            let path = match binding {
                Binding::Redirect => spid_core::cie::SSO_REDIRECT_PATH,
                Binding::Post => spid_core::cie::SSO_POST_PATH,
            };
            let md = spid_core::cie::build_idp_metadata(&spid_core::cie::IdpMetadataConfig {
                base_url: base.into(),
                signing_certs: vec![creds.idp.cert_der.clone()],
                organization_name: "Test CIE IdP".into(),
            });
            sp.register_idp_as(&md, None, spid_core::cie::IdpProfile::Cie)
                .unwrap();
            (spid_core::cie::entity_id(base), format!("{base}{path}"))
        } else {
            let idp_entity = "https://idp.test.example".to_string();
            let sso = format!("{idp_entity}/sso");
            let idp_md = metadata::build_idp(
                &IdpMetadataConfig {
                    entity_id: idp_entity.clone(),
                    sso_url: sso.clone(),
                    slo_url: format!("{idp_entity}/slo"),
                    organization_name: "Test IdP".into(),
                    organization_url: idp_entity.clone(),
                },
                &creds.idp,
            )
            .unwrap();
            sp.register_idp(&idp_md, Some(std::slice::from_ref(&creds.idp.cert_der)))
                .unwrap();
            (idp_entity, sso)
        };
        let task = tokio::spawn({
            let sp = sp.clone();
            async move {
                let _ = sp.serve(sp_l).await;
            }
        });
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let sp_md_text = http
            .get(format!("{sp_url}/metadata"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let sp_md = metadata::parse(&sp_md_text).unwrap();
        let resp = http
            .get(format!("{sp_url}/login{query}"))
            .send()
            .await
            .unwrap();
        let arrived = match binding {
            Binding::Redirect => {
                assert_eq!(resp.status(), 302);
                let location = resp.headers()["location"].to_str().unwrap().to_string();
                assert!(location.starts_with(&sso), "{location}");
                let raw = location.split_once('?').unwrap().1.to_string();
                let m = binding::decode_redirect(&raw, binding::MAX_MESSAGE_BYTES).unwrap();
                ArrivedRequest {
                    binding,
                    xml: m.xml,
                    raw_query: Some(raw),
                    form: Vec::new(),
                    relay_state: m.relay_state,
                }
            }
            Binding::Post => {
                let page = resp.text().await.unwrap();
                let doc = scraper::Html::parse_document(&page);
                let field = |name: &str| {
                    let sel = scraper::Selector::parse(&format!("input[name=\"{name}\"]")).unwrap();
                    doc.select(&sel)
                        .next()
                        .and_then(|e| e.value().attr("value"))
                        .map(str::to_string)
                };
                let form_sel = scraper::Selector::parse("form").unwrap();
                let action = doc
                    .select(&form_sel)
                    .next()
                    .and_then(|f| f.value().attr("action"))
                    .unwrap()
                    .to_string();
                assert_eq!(action, sso);
                let saml = field("SAMLRequest").unwrap();
                let relay = field("RelayState");
                let xml = binding::decode_post(&saml, binding::MAX_MESSAGE_BYTES).unwrap();
                let mut form = vec![("SAMLRequest".to_string(), saml)];
                if let Some(r) = &relay {
                    form.push(("RelayState".into(), r.clone()));
                }
                ArrivedRequest {
                    binding,
                    xml,
                    raw_query: None,
                    form,
                    relay_state: relay,
                }
            }
        };
        Captured {
            sp_md,
            idp_entity,
            sso,
            creds,
            arrived,
            task,
            cie,
        }
    }

    fn failed(results: &[CheckResult]) -> BTreeSet<&'static str> {
        results
            .iter()
            .filter(|c| c.failed())
            .map(|c| c.id)
            .collect()
    }

    fn codes(results: &[CheckResult]) -> BTreeSet<&'static str> {
        results.iter().map(|c| c.id).collect()
    }

    fn set(codes: &[&'static str]) -> BTreeSet<&'static str> {
        codes.iter().copied().collect()
    }

    fn assert_honest(results: &[CheckResult], at_least: usize) {
        let bad: Vec<String> = results
            .iter()
            .filter(|c| !c.holds())
            .map(|c| format!("{}: {}", c.id, c.detail))
            .collect();
        assert!(bad.is_empty(), "{bad:#?}");
        assert!(results.len() >= at_least, "{} checks", results.len());
        assert_eq!(codes(results).len(), results.len(), "a code recorded twice");
        for c in results {
            assert!(Rule::from_code(c.id).is_some(), "{} is not a rule", c.id);
            assert!(c.id.starts_with("sp-request."), "{}", c.id);
            assert!(
                !c.detail.contains("Some(") && !c.detail.contains("None"),
                "{}",
                c.detail
            );
        }
    }

    #[tokio::test]
    async fn honest_redirect_request_passes_every_check() {
        let cap = capture(Binding::Redirect, "").await;
        let results = cap.check(&cap.arrived);
        assert_honest(&results, 44);
        let c = codes(&results);
        assert!(c.contains("sp-request.signature.query"));
        assert!(!c.contains("sp-request.signature.valid"));
    }

    #[tokio::test]
    async fn honest_post_request_passes_every_check() {
        let cap = capture(Binding::Post, "?binding=post").await;
        let results = cap.check(&cap.arrived);
        assert_honest(&results, 51);
        let c = codes(&results);
        assert!(c.contains("sp-request.signature.valid"));
        assert!(!c.contains("sp-request.signature.query"));
    }

    #[tokio::test]
    async fn honest_post_request_by_acs_url_passes() {
        // The pysaml2 shape: AssertionConsumerServiceURL and ProtocolBinding, no index.
        let cap = capture(Binding::Post, "?binding=post").await;
        let el = cap.edited(|e| {
            e.remove_attr("AssertionConsumerServiceIndex");
            let acs = cap.sp_md.sp.as_ref().unwrap().acs[0]
                .endpoint
                .location
                .clone();
            e.set_attr("AssertionConsumerServiceURL", acs);
            e.set_attr("ProtocolBinding", ns::BINDING_POST);
        });
        let results = cap.check(&cap.resend(el, cap.relay(), &cap.creds.sp));
        assert_honest(&results, 54);
        let c = codes(&results);
        assert!(
            c.contains("sp-request.acs.url.known") && !c.contains("sp-request.acs.index.known")
        );
    }

    #[tokio::test]
    async fn honest_level_1_request_needs_no_force_authn() {
        let cap = capture(Binding::Redirect, "?level=1&comparison=exact").await;
        assert!(!cap.arrived.xml.contains("ForceAuthn"));
        let results = cap.check(&cap.arrived);
        assert_honest(&results, 44);
    }

    type Edit = fn(&mut Element, &Captured);

    fn set_attr(name: &'static str, value: &'static str) -> impl Fn(&mut Element) {
        move |e: &mut Element| e.set_attr(name, value)
    }

    fn child<'a>(e: &'a mut Element, ns: &str, local: &str) -> &'a mut Element {
        e.child_mut(ns, local).unwrap()
    }

    /// Inserts `el` after the Issuer (where schema order puts Extensions).
    fn insert_after_issuer(e: &mut Element, el: Element) {
        let pos = e.child_index(ns::SAML, "Issuer").unwrap() + 1;
        e.children.insert(pos, Node::Element(el));
    }

    /// Appends `el` as the last child.
    fn push(e: &mut Element, el: Element) {
        e.children.push(Node::Element(el));
    }

    /// One edit each, with the codes that must then (and alone) fail.
    fn edits() -> Vec<(&'static str, Edit, &'static [&'static str])> {
        vec![
            (
                "version",
                |e, _| set_attr("Version", "1.0")(e),
                &["sp-request.version.value"],
            ),
            (
                "no version",
                |e, _| {
                    e.remove_attr("Version");
                },
                &["sp-request.version.present", "sp-request.xsd"],
            ),
            (
                "id digit",
                |e, _| set_attr("ID", "1abc")(e),
                &["sp-request.id.syntax", "sp-request.xsd"],
            ),
            (
                "stale",
                |e, _| {
                    let t = spid_core::clock::now() - chrono::Duration::seconds(600);
                    e.set_attr("IssueInstant", spid_core::clock::saml_instant(t));
                },
                &["sp-request.issue-instant.stale"],
            ),
            (
                "future",
                |e, _| {
                    let t = spid_core::clock::now() + chrono::Duration::seconds(600);
                    e.set_attr("IssueInstant", spid_core::clock::saml_instant(t));
                },
                &["sp-request.issue-instant.future"],
            ),
            (
                "offset",
                |e, _| {
                    let t = spid_core::clock::now() + chrono::Duration::hours(1);
                    e.set_attr(
                        "IssueInstant",
                        t.format("%Y-%m-%dT%H:%M:%S+01:00").to_string(),
                    );
                },
                &["sp-request.issue-instant.format"],
            ),
            (
                "destination",
                |e, _| set_attr("Destination", "https://evil.example/sso")(e),
                &["sp-request.destination.value"],
            ),
            (
                "no destination",
                |e, _| {
                    e.remove_attr("Destination");
                },
                &["sp-request.destination.present"],
            ),
            (
                "destination entityID",
                |e, c| e.set_attr("Destination", c.idp_entity.clone()),
                &[],
            ),
            (
                "is passive",
                |e, _| set_attr("IsPassive", "false")(e),
                &["sp-request.is-passive"],
            ),
            (
                "no force",
                |e, _| {
                    e.remove_attr("ForceAuthn");
                },
                &["sp-request.force-authn.present"],
            ),
            (
                "force false",
                |e, _| set_attr("ForceAuthn", "false")(e),
                &["sp-request.force-authn.value"],
            ),
            (
                "acs index unknown",
                |e, _| set_attr("AssertionConsumerServiceIndex", "7")(e),
                &["sp-request.acs.index.known"],
            ),
            (
                "acs index and url",
                |e, c| {
                    e.set_attr(
                        "AssertionConsumerServiceURL",
                        c.sp_md.sp.as_ref().unwrap().acs[0]
                            .endpoint
                            .location
                            .clone(),
                    );
                },
                &["sp-request.acs.choice"],
            ),
            (
                "acs url redirect binding",
                |e, c| {
                    e.remove_attr("AssertionConsumerServiceIndex");
                    e.set_attr(
                        "AssertionConsumerServiceURL",
                        c.sp_md.sp.as_ref().unwrap().acs[0]
                            .endpoint
                            .location
                            .clone(),
                    );
                    e.set_attr("ProtocolBinding", ns::BINDING_REDIRECT);
                },
                &["sp-request.acs.protocol-binding"],
            ),
            (
                "acs url unknown",
                |e, _| {
                    e.remove_attr("AssertionConsumerServiceIndex");
                    e.set_attr("AssertionConsumerServiceURL", "https://evil.example/acs");
                    e.set_attr("ProtocolBinding", ns::BINDING_POST);
                },
                &["sp-request.acs.url.known"],
            ),
            (
                "acs url honest",
                |e, c| {
                    e.remove_attr("AssertionConsumerServiceIndex");
                    e.set_attr(
                        "AssertionConsumerServiceURL",
                        c.sp_md.sp.as_ref().unwrap().acs[0]
                            .endpoint
                            .location
                            .clone(),
                    );
                    e.set_attr("ProtocolBinding", ns::BINDING_POST);
                },
                &[],
            ),
            (
                "no acs",
                |e, _| {
                    e.remove_attr("AssertionConsumerServiceIndex");
                },
                &["sp-request.acs.choice"],
            ),
            (
                "attribute index unknown",
                |e, _| set_attr("AttributeConsumingServiceIndex", "9")(e),
                &["sp-request.attribute-index.known"],
            ),
            (
                "attribute index negative",
                |e, _| set_attr("AttributeConsumingServiceIndex", "-1")(e),
                &["sp-request.attribute-index.value", "sp-request.xsd"],
            ),
            (
                "no attribute index",
                |e, _| {
                    e.remove_attr("AttributeConsumingServiceIndex");
                },
                &["sp-request.attribute-index.present"],
            ),
            (
                "issuer",
                |e, _| child(e, ns::SAML, "Issuer").set_text("https://other.example"),
                &["sp-request.issuer.value"],
            ),
            (
                "issuer format",
                |e, _| child(e, ns::SAML, "Issuer").set_attr("Format", ns::NAMEID_TRANSIENT),
                &["sp-request.issuer.format"],
            ),
            (
                "no name qualifier",
                |e, _| {
                    child(e, ns::SAML, "Issuer").remove_attr("NameQualifier");
                },
                &["sp-request.issuer.name-qualifier"],
            ),
            (
                "name qualifier",
                |e, _| {
                    child(e, ns::SAML, "Issuer").set_attr("NameQualifier", "https://other.example")
                },
                &["sp-request.issuer.name-qualifier.value"],
            ),
            (
                "allow create",
                |e, _| child(e, ns::SAMLP, "NameIDPolicy").set_attr("AllowCreate", "true"),
                &["sp-request.name-id-policy.allow-create"],
            ),
            (
                "persistent",
                |e, _| {
                    child(e, ns::SAMLP, "NameIDPolicy").set_attr(
                        "Format",
                        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
                    )
                },
                &["sp-request.name-id-policy.format"],
            ),
            (
                "no policy",
                |e, _| {
                    e.remove_children(ns::SAMLP, "NameIDPolicy");
                },
                &["sp-request.name-id-policy.present"],
            ),
            (
                "better L3",
                |e, _| {
                    let r = child(e, ns::SAMLP, "RequestedAuthnContext");
                    r.set_attr("Comparison", "better");
                    child(r, ns::SAML, "AuthnContextClassRef").set_text(SpidLevel::L3.uri());
                },
                &["sp-request.authn-context.satisfiable"],
            ),
            (
                "no comparison",
                |e, _| {
                    child(e, ns::SAMLP, "RequestedAuthnContext").remove_attr("Comparison");
                },
                &["sp-request.authn-context.comparison"],
            ),
            (
                "legacy class ref",
                |e, _| {
                    let r = child(e, ns::SAMLP, "RequestedAuthnContext");
                    child(r, ns::SAML, "AuthnContextClassRef")
                        .set_text("urn:oasis:names:tc:SAML:2.0:ac:classes:SpidL2");
                },
                &["sp-request.authn-context.class-ref.value"],
            ),
            (
                "two class refs",
                |e, _| {
                    let r = child(e, ns::SAMLP, "RequestedAuthnContext");
                    push(
                        r,
                        Element::new("saml:AuthnContextClassRef", Some(ns::SAML))
                            .with_text(SpidLevel::L3.uri()),
                    );
                },
                &["sp-request.authn-context.class-ref.single"],
            ),
            (
                "no authn context",
                |e, _| {
                    e.remove_children(ns::SAMLP, "RequestedAuthnContext");
                },
                &["sp-request.authn-context.present"],
            ),
            ("purpose", |e, _| insert_after_issuer(e, purpose("PX")), &[]),
            (
                "bad purpose",
                |e, _| insert_after_issuer(e, purpose("XX")),
                &["sp-request.purpose"],
            ),
            (
                "saml extension",
                |e, _| {
                    insert_after_issuer(
                        e,
                        Element::new("samlp:Extensions", Some(ns::SAMLP)).with_child(
                            Element::new("saml:Audience", Some(ns::SAML)).with_text("x"),
                        ),
                    )
                },
                // The schema's ##other admits the assertion namespace; SAML-CORE 3.2.1 does not.
                &["sp-request.extensions"],
            ),
            (
                "subject",
                |e, _| {
                    let pos = e.child_index(ns::SAMLP, "NameIDPolicy").unwrap();
                    let s = Element::new("saml:Subject", Some(ns::SAML)).with_child(
                        Element::new("saml:NameID", Some(ns::SAML))
                            .with_attr("Format", ns::NAMEID_TRANSIENT)
                            .with_attr("NameQualifier", "x")
                            .with_text("abc"),
                    );
                    e.children.insert(pos, Node::Element(s));
                },
                &["sp-request.subject"],
            ),
            (
                "expired conditions",
                |e, _| {
                    let pos = e.child_index(ns::SAMLP, "RequestedAuthnContext").unwrap();
                    let now = spid_core::clock::now();
                    let c = Element::new("saml:Conditions", Some(ns::SAML))
                        .with_attr(
                            "NotBefore",
                            spid_core::clock::saml_instant(now - chrono::Duration::hours(2)),
                        )
                        .with_attr(
                            "NotOnOrAfter",
                            spid_core::clock::saml_instant(now - chrono::Duration::hours(1)),
                        );
                    e.children.insert(pos, Node::Element(c));
                },
                &["sp-request.conditions.window"],
            ),
            (
                "conditions without bounds",
                |e, _| {
                    let pos = e.child_index(ns::SAMLP, "RequestedAuthnContext").unwrap();
                    e.children.insert(
                        pos,
                        Node::Element(Element::new("saml:Conditions", Some(ns::SAML))),
                    );
                },
                &["sp-request.conditions"],
            ),
            (
                "scoping",
                |e, _| {
                    push(
                        e,
                        Element::new("samlp:Scoping", Some(ns::SAMLP)).with_attr("ProxyCount", "0"),
                    )
                },
                &["sp-request.scoping"],
            ),
        ]
    }

    fn purpose(v: &str) -> Element {
        Element::new("samlp:Extensions", Some(ns::SAMLP)).with_child(
            Element::new("spid:Purpose", Some(ns::SPID))
                .with_attr("xmlns:spid", ns::SPID)
                .with_text(v),
        )
    }

    async fn each_edit_fails_its_code(binding: Binding, query: &str) {
        let cap = capture(binding, query).await;
        for (name, edit, expected) in edits() {
            let el = cap.edited(|e| edit(e, &cap));
            let arrived = cap.resend(el, cap.relay(), &cap.creds.sp);
            let results = cap.check(&arrived);
            let mut want = set(expected);
            if binding == Binding::Post && name == "id digit" {
                // An ID that is no xs:ID cannot be the target of the Reference either.
                want.insert("sp-request.signature.valid");
            }
            if !results.iter().any(|c| c.id == "sp-request.xsd") {
                want.remove("sp-request.xsd");
            }
            assert_eq!(
                failed(&results),
                want,
                "{binding:?} edit {name}: {results:#?}"
            );
        }
    }

    #[tokio::test]
    async fn each_redirect_edit_fails_exactly_its_code() {
        each_edit_fails_its_code(Binding::Redirect, "").await;
    }

    #[tokio::test]
    async fn each_post_edit_fails_exactly_its_code() {
        each_edit_fails_its_code(Binding::Post, "?binding=post").await;
    }

    /// A CIE request's checks: the shared SAML ones and the `sp-request.cie.*` ones, none of
    /// the SPID-only ones.
    fn assert_cie_honest(results: &[CheckResult], redirect: bool) {
        assert_honest(results, 40);
        let c = codes(results);
        for r in SPID_ONLY_REQUEST {
            assert!(!c.contains(r.code()), "{} in a CIE run", r.code());
        }
        let cie: Vec<&str> = c
            .iter()
            .copied()
            .filter(|x| x.starts_with("sp-request.cie."))
            .collect();
        assert_eq!(cie.len(), 10, "{cie:?}");
        assert_eq!(
            c.contains("sp-request.cie.signature.redirect"),
            redirect,
            "{cie:?}"
        );
        assert_eq!(c.contains("sp-request.cie.signature.post"), !redirect);
    }

    #[tokio::test]
    async fn honest_cie_requests_pass_every_cie_check() {
        for (binding, query) in [(Binding::Redirect, ""), (Binding::Post, "?binding=post")] {
            let cap = capture_cie(binding, query).await;
            assert_cie_honest(&cap.check(&cap.arrived), binding == Binding::Redirect);
            // CIE makes the Issuer Format and NameQualifier optional.
            let el = cap.edited(|e| {
                let i = child(e, ns::SAML, "Issuer");
                i.remove_attr("Format");
                i.remove_attr("NameQualifier");
            });
            let results = cap.check(&cap.resend(el, cap.relay(), &cap.creds.sp));
            assert_cie_honest(&results, binding == Binding::Redirect);
        }
    }

    /// One CIE edit each, with the codes that must then (and alone) fail.
    fn cie_edits() -> Vec<(&'static str, Edit, &'static [&'static str])> {
        vec![
            (
                // Redirect: the entityID; POST (whose location is the entityID): the other
                // binding's location.
                "destination not the binding's location",
                |e, cap| {
                    let other = if cap.sso == cap.idp_entity {
                        cap.sso.replace("/POST/", "/Redirect/")
                    } else {
                        cap.idp_entity.clone()
                    };
                    e.set_attr("Destination", other)
                },
                &["sp-request.cie.destination"],
            ),
            (
                "force-authn false",
                |e, _| set_attr("ForceAuthn", "false")(e),
                &["sp-request.cie.force-authn"],
            ),
            (
                "no force-authn",
                |e, _| {
                    e.remove_attr("ForceAuthn");
                },
                &["sp-request.cie.force-authn"],
            ),
            (
                "is-passive false",
                |e, _| set_attr("IsPassive", "false")(e),
                &["sp-request.cie.is-passive"],
            ),
            (
                "scoping",
                |e, _| {
                    push(
                        e,
                        Element::new("samlp:Scoping", Some(ns::SAMLP)).with_child(
                            Element::new("samlp:RequesterID", Some(ns::SAMLP))
                                .with_text("https://requester.example"),
                        ),
                    )
                },
                &["sp-request.cie.scoping"],
            ),
            (
                "issuer format unspecified",
                |e, _| {
                    child(e, ns::SAML, "Issuer").set_attr(
                        "Format",
                        "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
                    )
                },
                &["sp-request.cie.issuer.format"],
            ),
            (
                "allow-create",
                |e, _| child(e, ns::SAMLP, "NameIDPolicy").set_attr("AllowCreate", "true"),
                &["sp-request.cie.name-id-policy"],
            ),
            (
                "name-id persistent",
                |e, _| {
                    child(e, ns::SAMLP, "NameIDPolicy").set_attr(
                        "Format",
                        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
                    )
                },
                &["sp-request.cie.name-id-policy"],
            ),
            (
                "comparison better",
                |e, _| {
                    child(e, ns::SAMLP, "RequestedAuthnContext").set_attr("Comparison", "better")
                },
                &["sp-request.cie.comparison"],
            ),
            (
                "comparison maximum",
                |e, _| {
                    child(e, ns::SAMLP, "RequestedAuthnContext").set_attr("Comparison", "maximum")
                },
                &["sp-request.cie.comparison"],
            ),
            (
                "class password",
                |e, _| {
                    child(
                        child(e, ns::SAMLP, "RequestedAuthnContext"),
                        ns::SAML,
                        "AuthnContextClassRef",
                    )
                    .set_text("urn:oasis:names:tc:SAML:2.0:ac:classes:Password")
                },
                &["sp-request.cie.class-ref"],
            ),
            (
                "acs url with redirect binding",
                |e, cap| {
                    e.remove_attr("AssertionConsumerServiceIndex");
                    let acs = cap.sp_md.sp.as_ref().unwrap().acs[0]
                        .endpoint
                        .location
                        .clone();
                    e.set_attr("AssertionConsumerServiceURL", acs);
                    e.set_attr("ProtocolBinding", ns::BINDING_REDIRECT);
                },
                &["sp-request.cie.acs"],
            ),
        ]
    }

    async fn each_cie_edit_fails_its_code(binding: Binding, query: &str) {
        let cap = capture_cie(binding, query).await;
        for (name, edit, expected) in cie_edits() {
            let el = cap.edited(|e| edit(e, &cap));
            let results = cap.check(&cap.resend(el, cap.relay(), &cap.creds.sp));
            assert_eq!(
                failed(&results),
                set(expected),
                "{binding:?} edit {name}: {results:#?}"
            );
        }
    }

    #[tokio::test]
    async fn each_cie_redirect_edit_fails_exactly_its_code() {
        each_cie_edit_fails_its_code(Binding::Redirect, "").await;
    }

    #[tokio::test]
    async fn each_cie_post_edit_fails_exactly_its_code() {
        each_cie_edit_fails_its_code(Binding::Post, "?binding=post").await;
    }

    #[tokio::test]
    async fn cie_signatures_go_where_the_binding_says() {
        // HTTP-Redirect: a signature inside the XML (besides the query's).
        let cap = capture_cie(Binding::Redirect, "").await;
        let signed = dsig::sign_root(cap.edited(|_| {}), &cap.creds.sp).unwrap();
        let arrived = cap.redirect(
            &signed,
            cap.relay(),
            Some((&cap.creds.sp.key, SigAlg::RsaSha256)),
        );
        assert_eq!(
            failed(&cap.check(&arrived)),
            set(&["sp-request.cie.signature.redirect"])
        );
        // HTTP-Redirect: no SigAlg / Signature in the query.
        let arrived = cap.redirect(&cap.edited(|_| {}).to_xml(), cap.relay(), None);
        assert_eq!(
            failed(&cap.check(&arrived)),
            set(&["sp-request.cie.signature.redirect"])
        );
        // HTTP-POST: no enveloped signature.
        let cap = capture_cie(Binding::Post, "?binding=post").await;
        let arrived = cap.post(&cap.edited(|_| {}).to_xml(), cap.relay());
        assert_eq!(
            failed(&cap.check(&arrived)),
            set(&["sp-request.cie.signature.post"])
        );
    }

    #[tokio::test]
    async fn relay_state_rules_hold_for_both_bindings() {
        for (binding, query) in [(Binding::Redirect, ""), (Binding::Post, "?binding=post")] {
            let cap = capture(binding, query).await;
            let long = "a".repeat(81);
            for (relay, expected) in [
                (
                    Some("https://sp.example/home"),
                    "sp-request.relay-state.opaque",
                ),
                (Some("/private/page"), "sp-request.relay-state.opaque"),
                (Some(long.as_str()), "sp-request.relay-state.length"),
                (None, "sp-request.relay-state.present"),
                (Some(""), "sp-request.relay-state.present"),
            ] {
                let arrived = cap.resend(cap.edited(|_| {}), relay, &cap.creds.sp);
                let results = cap.check(&arrived);
                assert_eq!(failed(&results), set(&[expected]), "{binding:?} {relay:?}");
            }
        }
    }

    #[tokio::test]
    async fn redirect_signature_rules() {
        let cap = capture(Binding::Redirect, "").await;
        let xml = cap.edited(|_| {}).to_xml();
        // Signed with a key the SP metadata does not carry.
        let foreign = cap.redirect(
            &xml,
            cap.relay(),
            Some((&cap.creds.foreign.key, SigAlg::RsaSha256)),
        );
        assert_eq!(
            failed(&cap.check(&foreign)),
            set(&["sp-request.signature.query"])
        );
        // Unsigned.
        let unsigned = cap.redirect(&xml, cap.relay(), None);
        assert_eq!(
            failed(&cap.check(&unsigned)),
            set(&["sp-request.signature.params"])
        );
        // An enveloped signature inside a Redirect request (query signature still valid).
        let enveloped = dsig::sign_root(cap.edited(|_| {}), &cap.creds.sp).unwrap();
        let arrived = cap.redirect(
            &enveloped,
            cap.relay(),
            Some((&cap.creds.sp.key, SigAlg::RsaSha512)),
        );
        assert_eq!(
            failed(&cap.check(&arrived)),
            set(&["sp-request.signature.not-enveloped"])
        );
        // rsa-sha1, correctly signed over the same octets.
        let sha1 = {
            let unsigned = cap.redirect(&xml, cap.relay(), None);
            let q = format!(
                "{}&SigAlg={}",
                unsigned.raw_query.as_deref().unwrap(),
                url::form_urlencoded::byte_serialize(b"http://www.w3.org/2000/09/xmldsig#rsa-sha1")
                    .collect::<String>()
            );
            let mut s =
                openssl::sign::Signer::new(MessageDigest::sha1(), &cap.creds.sp.key).unwrap();
            s.update(q.as_bytes()).unwrap();
            let sig = base64::engine::general_purpose::STANDARD.encode(s.sign_to_vec().unwrap());
            ArrivedRequest {
                raw_query: Some(format!(
                    "{q}&Signature={}",
                    url::form_urlencoded::byte_serialize(sig.as_bytes()).collect::<String>()
                )),
                ..unsigned
            }
        };
        assert_eq!(
            failed(&cap.check(&sha1)),
            set(&["sp-request.signature.sig-alg"])
        );
        // The honest query with its parameters reordered still verifies (the signed octets
        // are rebuilt in the order SAML-BIND fixes).
        let raw = cap.arrived.raw_query.clone().unwrap();
        let mut parts: Vec<&str> = raw.split('&').collect();
        parts.reverse();
        let reordered = ArrivedRequest {
            raw_query: Some(parts.join("&")),
            ..cap.arrived.clone()
        };
        assert!(failed(&cap.check(&reordered)).is_empty());
        // A tampered RelayState breaks the query signature.
        let tampered = ArrivedRequest {
            raw_query: Some(raw.replacen("RelayState=", "RelayState=x", 1)),
            relay_state: cap.relay().map(|r| format!("x{r}")),
            ..cap.arrived.clone()
        };
        assert_eq!(
            failed(&cap.check(&tampered)),
            set(&["sp-request.signature.query"])
        );
    }

    #[tokio::test]
    async fn post_signature_rules() {
        let cap = capture(Binding::Post, "?binding=post").await;
        // Signed with a key the SP metadata does not carry (its certificate in KeyInfo).
        let foreign = cap.resend(cap.edited(|_| {}), cap.relay(), &cap.creds.foreign);
        let results = cap.check(&foreign);
        assert_eq!(failed(&results), set(&["sp-request.signature.valid"]));
        assert!(results
            .iter()
            .any(|c| c.id == "sp-request.signature.key-info" && !c.holds() && c.warning));
        // Unsigned.
        let unsigned = cap.post(&cap.edited(|_| {}).to_xml(), cap.relay());
        assert_eq!(
            failed(&cap.check(&unsigned)),
            set(&["sp-request.signature.present"])
        );
        // Changed after signing.
        let tampered = cap.post(
            &cap.arrived
                .xml
                .replacen("ForceAuthn=\"true\"", "ForceAuthn=\"1\"", 1),
            cap.relay(),
        );
        assert_ne!(tampered.xml, cap.arrived.xml);
        assert_eq!(
            failed(&cap.check(&tampered)),
            set(&["sp-request.signature.valid"])
        );
        // The ID changed after signing: the Reference no longer names the request.
        let id = cap.edited(|_| {}).attr("ID").unwrap().to_string();
        let renamed = cap.post(
            &cap.arrived
                .xml
                .replacen(&format!("ID=\"{id}\""), "ID=\"_other\"", 1),
            cap.relay(),
        );
        assert_eq!(
            failed(&cap.check(&renamed)),
            set(&[
                "sp-request.signature.reference",
                "sp-request.signature.valid"
            ])
        );
        // rsa-sha1 SignatureMethod.
        let mut el = cap.edited(|_| {});
        let mut sig = dsig::template(&id, None);
        child(
            child(&mut sig, ns::DS, "SignedInfo"),
            ns::DS,
            "SignatureMethod",
        )
        .set_attr("Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1");
        insert_after_issuer(&mut el, sig);
        let signed = dsig::sign_first_template(&el.to_xml(), &cap.creds.sp.key_der).unwrap();
        assert_eq!(
            failed(&cap.check(&cap.post(&signed, cap.relay()))),
            set(&["sp-request.signature.method", "sp-request.signature.valid"])
        );
        // A signature placed after NameIDPolicy instead of right after Issuer.
        let mut el = cap.edited(|_| {});
        let pos = el.child_index(ns::SAMLP, "NameIDPolicy").unwrap() + 1;
        el.children
            .insert(pos, Node::Element(dsig::template(&id, None)));
        let signed = dsig::sign_first_template(&el.to_xml(), &cap.creds.sp.key_der).unwrap();
        let results = cap.check(&cap.post(&signed, cap.relay()));
        let mut want = set(&["sp-request.signature.placement", "sp-request.xsd"]);
        if !results.iter().any(|c| c.id == "sp-request.xsd") {
            want.remove("sp-request.xsd");
        }
        assert_eq!(failed(&results), want);
    }

    #[tokio::test]
    async fn unreadable_xml_still_gets_binding_checks() {
        let cap = capture(Binding::Redirect, "").await;
        let bad = "<samlp:AuthnRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"";
        let arrived = cap.redirect(
            bad,
            cap.relay(),
            Some((&cap.creds.sp.key, SigAlg::RsaSha256)),
        );
        let results = cap.check(&arrived);
        assert_eq!(failed(&results), set(&["sp-request.xml.well-formed"]));
        let c = codes(&results);
        for code in [
            "sp-request.encoding",
            "sp-request.signature.params",
            "sp-request.signature.sig-alg",
            "sp-request.signature.query",
            "sp-request.relay-state.present",
            "sp-request.relay-state.opaque",
            "sp-request.relay-state.length",
        ] {
            assert!(c.contains(code), "{code} not recorded");
        }
        // Not base64 at all.
        let garbage = ArrivedRequest {
            raw_query: Some("SAMLRequest=%%%&RelayState=abc".into()),
            xml: String::new(),
            ..cap.arrived.clone()
        };
        let f = failed(&cap.check(&garbage));
        assert!(
            f.contains("sp-request.encoding") && f.contains("sp-request.xml.well-formed"),
            "{f:?}"
        );
        // Another root element.
        let other = cap.redirect(
            "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"/>",
            cap.relay(),
            Some((&cap.creds.sp.key, SigAlg::RsaSha256)),
        );
        assert_eq!(failed(&cap.check(&other)), set(&["sp-request.root"]));
    }

    #[test]
    fn instants_and_ids() {
        assert!(strict_instant("2026-01-02T03:04:05Z").is_some());
        assert!(strict_instant("2026-01-02T03:04:05.123Z").is_some());
        assert!(strict_instant("2026-01-02T03:04:05").is_none());
        assert!(strict_instant("2026-01-02T03:04:05+00:00").is_none());
        assert!(strict_instant(" 2026-01-02T03:04:05Z").is_none());
        assert!(strict_instant("2026-1-02T03:04:05Z").is_none());
        assert!(is_ncname("_a1.b-c"));
        assert!(is_ncname("abc"));
        assert!(!is_ncname("1abc"));
        assert!(!is_ncname("a:b"));
        assert!(!is_ncname(""));
        assert!(!is_ncname("-a"));
    }
}
