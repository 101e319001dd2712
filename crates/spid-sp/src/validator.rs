//! The ACS validator: an ordered list of small named rules, each with a stable code.
//!
//! Order matters: the first failing rule is the one reported, so rules run from the outside
//! in — binding, XML, structure and signature placement, Response fields, Status, Issuer,
//! Assertion count, cryptographic verification — and only then the Assertion's own fields.
//! Response-level rules read the unverified envelope but can only refuse; everything that
//! identifies the user is read from [`VerifiedAssertion`], which only exists after the
//! signatures verified with the IdP metadata certificates and the document was reduced to
//! what they cover.

use chrono::{DateTime, Duration, Utc};
use spid_core::errors::SpidError;
use spid_core::saml::binding;
use spid_core::saml::dsig::{self, DsigError};
use spid_core::saml::metadata::EntityMetadata;
use spid_core::saml::ns;
use spid_core::saml::xml::{self, Element, Limits, Node, XmlError};
use spid_core::{clock::parse_saml_instant, satisfies, Comparison, Rule, SpidLevel};

/// A refusal: the rule that decided, a detail for the log and error page, and the SPID error
/// code when the IdP reported one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The deciding rule.
    pub rule: Rule,
    /// What exactly was wrong.
    pub detail: String,
    /// The SPID ErrorCode the IdP sent, if any.
    pub spid_error: Option<SpidError>,
}

impl Rejection {
    /// A rejection by `rule`.
    pub fn new(rule: Rule, detail: impl Into<String>) -> Self {
        Rejection {
            rule,
            detail: detail.into(),
            spid_error: None,
        }
    }
}

type Check<T = ()> = Result<T, Rejection>;

fn ensure(cond: bool, rule: Rule, detail: impl FnOnce() -> String) -> Check {
    if cond {
        Ok(())
    } else {
        Err(Rejection::new(rule, detail()))
    }
}

/// An AuthnRequest this SP issued and still waits an answer for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRequest {
    /// The request ID.
    pub id: String,
    /// Its IssueInstant.
    pub issue_instant: DateTime<Utc>,
    /// The IdP it was sent to.
    pub idp_entity_id: String,
    /// The level requested.
    pub level: SpidLevel,
    /// The comparison requested.
    pub comparison: Comparison,
    /// The AttributeConsumingServiceIndex requested.
    pub attribute_index: u16,
}

/// Where the validator finds (and consumes) the request a Response answers.
pub trait RequestLookup {
    /// Takes the pending request `id` issued to this browser session, consuming it. Errors with
    /// `ResponseInResponseToUnknown` or `ResponseInResponseToReplayed`.
    fn take(&mut self, id: &str) -> Check<PendingRequest>;
}

/// Remembers accepted Assertion IDs until they expire.
pub trait ReplayCache {
    /// Records `id` valid until `until`; false if it was already there.
    fn insert(&self, id: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> bool;
}

/// What the SP is and expects.
#[derive(Debug, Clone)]
pub struct Policy {
    /// This SP's entityID (the Audience).
    pub entity_id: String,
    /// The ACS URL (Destination and Recipient).
    pub acs_url: String,
    /// Tolerated clock skew.
    pub skew: Duration,
    /// The lowest level accepted whatever the request asked.
    pub min_level: SpidLevel,
    /// Attribute names per AttributeConsumingService index, to flag mismatches.
    pub attribute_services: Vec<(u16, Vec<String>)>,
}

/// An accepted login.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    /// IdP entityID.
    pub idp: String,
    /// Transient NameID (trimmed).
    pub name_id: String,
    /// Level obtained.
    pub level: SpidLevel,
    /// Attributes (name, value).
    pub attributes: Vec<(String, String)>,
    /// Assertion ID.
    pub assertion_id: String,
    /// SessionIndex, if sent.
    pub session_index: Option<String>,
    /// Warnings that did not refuse the login (e.g. attribute set differs from the request).
    pub warnings: Vec<String>,
}

/// An Assertion whose every byte was covered by a signature verified with the IdP metadata
/// certificate. Only the private `verify` step of [`validate`] makes one.
#[derive(Debug)]
pub struct VerifiedAssertion(Element);

impl VerifiedAssertion {
    fn el(&self) -> &Element {
        &self.0
    }
}

/// Input limits of the ACS.
pub const MAX_SAML_RESPONSE: usize = 256 * 1024;

fn xml_rule(e: &XmlError) -> Rule {
    match e {
        XmlError::Malformed(_) => Rule::XmlMalformed,
        XmlError::Dtd => Rule::XmlDtd,
        XmlError::Entity(_) => Rule::XmlEntity,
        XmlError::ProcessingInstruction => Rule::XmlProcessingInstruction,
        XmlError::Limit(_) => Rule::XmlLimits,
    }
}

/// Runs every rule on a POSTed `SAMLResponse` value.
pub fn validate(
    saml_response: Option<&str>,
    policy: &Policy,
    idps: &[EntityMetadata],
    requests: &mut dyn RequestLookup,
    replay: &dyn ReplayCache,
    now: DateTime<Utc>,
) -> Check<Identity> {
    // Binding.
    let b64 = saml_response
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Rejection::new(Rule::BindingMissingMessage, "no SAMLResponse"))?;
    let text = binding::decode_post(b64, MAX_SAML_RESPONSE)
        .map_err(|e| Rejection::new(e.rule(), e.to_string()))?;
    // XML.
    let doc = xml::parse(&text, &Limits::default())
        .map_err(|e| Rejection::new(xml_rule(&e), e.to_string()))?;
    // Structure and signature placement (defeats wrapping before any crypto runs).
    structure(&doc)?;
    // Response fields.
    let resp = &doc;
    let resp_id = resp.attr("ID").unwrap_or_default();
    ensure(!resp_id.trim().is_empty(), Rule::ResponseIdMissing, || {
        "Response ID missing or empty".into()
    })?;
    ensure(
        resp.attr("Version") == Some("2.0"),
        Rule::ResponseVersion,
        || format!("Version {:?}", resp.attr("Version")),
    )?;
    let resp_instant = instant(
        resp.attr("IssueInstant"),
        Rule::ResponseIssueInstantMissing,
        Rule::ResponseIssueInstantMalformed,
    )?;
    let irt = resp.attr("InResponseTo").unwrap_or_default();
    ensure(
        !irt.trim().is_empty(),
        Rule::ResponseInResponseToMissing,
        || "InResponseTo missing or empty".into(),
    )?;
    let pending = requests.take(irt)?;
    ensure(
        resp_instant >= not_before_request(&pending, policy.skew),
        Rule::ResponseIssueInstantBeforeRequest,
        || format!("{resp_instant} < request {}", pending.issue_instant),
    )?;
    ensure(
        resp_instant <= now + policy.skew,
        Rule::ResponseIssueInstantFuture,
        || format!("{resp_instant} is in the future"),
    )?;
    let dest = resp.attr("Destination").unwrap_or_default();
    ensure(!dest.is_empty(), Rule::ResponseDestinationMissing, || {
        "Destination missing or empty".into()
    })?;
    ensure(
        dest == policy.acs_url,
        Rule::ResponseDestinationMismatch,
        || format!("Destination {dest} is not {}", policy.acs_url),
    )?;
    status(resp)?;
    let issuer = resp.child(ns::SAML, "Issuer");
    let issuer_text = issuer
        .map(|i| i.text().trim().to_string())
        .unwrap_or_default();
    ensure(!issuer_text.is_empty(), Rule::ResponseIssuerMissing, || {
        "Response Issuer missing or empty".into()
    })?;
    ensure(
        issuer_text == pending.idp_entity_id,
        Rule::ResponseIssuerMismatch,
        || format!("Issuer {issuer_text} is not {}", pending.idp_entity_id),
    )?;
    let fmt = issuer.and_then(|i| i.attr("Format"));
    ensure(
        fmt.is_none() || fmt == Some(ns::NAMEID_ENTITY),
        Rule::ResponseIssuerFormat,
        || format!("Issuer Format {fmt:?}"),
    )?;
    // Exactly one Assertion (structure() already refused more than one anywhere).
    let raw_assertion = resp
        .child(ns::SAML, "Assertion")
        .ok_or_else(|| Rejection::new(Rule::AssertionMissing, "no Assertion"))?;
    let assertion_id = raw_assertion.attr("ID").unwrap_or_default();
    ensure(
        !assertion_id.trim().is_empty(),
        Rule::AssertionIdMissing,
        || "Assertion ID missing or empty".into(),
    )?;
    ensure(
        raw_assertion.child(ns::DS, "Signature").is_some(),
        Rule::SignatureAssertionMissing,
        || "the Assertion is not signed".into(),
    )?;
    ensure(!raw_assertion.has_comment(), Rule::XmlComment, || {
        "comment inside the Assertion".into()
    })?;
    // Cryptography, with the metadata certificate of the IdP the request went to.
    let idp = idps
        .iter()
        .find(|m| m.entity_id == pending.idp_entity_id)
        .ok_or_else(|| Rejection::new(Rule::SignatureNoTrustedCert, "IdP not registered"))?;
    let verified = verify(&text, idp, assertion_id)?;
    // The Assertion, from signed content only.
    assertion(&verified, policy, &pending, idp, now)?;
    let id = verified_identity(&verified, &pending, policy)?;
    let until = verified
        .el()
        .child(ns::SAML, "Conditions")
        .and_then(|c| c.attr("NotOnOrAfter"))
        .and_then(parse_saml_instant)
        .unwrap_or(now + Duration::hours(1));
    ensure(
        replay.insert(&id.assertion_id, until + policy.skew, now),
        Rule::AssertionReplayed,
        || format!("Assertion {} already used", id.assertion_id),
    )?;
    Ok(id)
}

/// The earliest acceptable IssueInstant for an answer to `p`: the request's instant truncated
/// to the second (IdPs may write whole seconds and answer within the request's second) less
/// the tolerated skew (the IdP's clock may run behind ours).
fn not_before_request(p: &PendingRequest, skew: Duration) -> DateTime<Utc> {
    use chrono::{DurationRound, TimeDelta};
    p.issue_instant
        .duration_trunc(TimeDelta::seconds(1))
        .unwrap_or(p.issue_instant)
        - skew
}

fn instant(v: Option<&str>, missing: Rule, malformed: Rule) -> Check<DateTime<Utc>> {
    let v = v.unwrap_or_default();
    ensure(!v.trim().is_empty(), missing, || "missing or empty".into())?;
    parse_saml_instant(v)
        .ok_or_else(|| Rejection::new(malformed, format!("{v:?} is not a UTC xs:dateTime")))
}

const RESPONSE_CHILDREN: [(&str, &str); 4] = [
    (ns::SAML, "Issuer"),
    (ns::DS, "Signature"),
    (ns::SAMLP, "Status"),
    (ns::SAML, "Assertion"),
];
const ASSERTION_CHILDREN: [(&str, &str); 6] = [
    (ns::SAML, "Issuer"),
    (ns::DS, "Signature"),
    (ns::SAML, "Subject"),
    (ns::SAML, "Conditions"),
    (ns::SAML, "AuthnStatement"),
    (ns::SAML, "AttributeStatement"),
];

/// Root, allowed children, one Assertion in the whole document, and every signature in the
/// only two places SPID puts one, shaped the only way we accept.
fn structure(doc: &Element) -> Check {
    ensure(doc.is(ns::SAMLP, "Response"), Rule::ResponseRoot, || {
        format!("root is {}", doc.qname)
    })?;
    let count = doc
        .descendants()
        .iter()
        .filter(|e| e.local() == "Assertion")
        .count();
    ensure(count <= 1, Rule::AssertionMultiple, || {
        format!("{count} Assertion elements")
    })?;
    for c in doc.elements() {
        ensure(
            RESPONSE_CHILDREN.iter().any(|(n, l)| c.is(n, l)),
            Rule::ResponseUnexpectedElement,
            || format!("unexpected {} in Response", c.qname),
        )?;
    }
    let assertion = doc.child(ns::SAML, "Assertion");
    if let Some(a) = assertion {
        for c in a.elements() {
            ensure(
                ASSERTION_CHILDREN.iter().any(|(n, l)| c.is(n, l)),
                Rule::ResponseUnexpectedElement,
                || format!("unexpected {} in Assertion", c.qname),
            )?;
        }
    }
    // IDs before signatures: a signature cannot name an element without one, and "no ID" is
    // the meaningful refusal.
    let resp_id = doc.attr("ID").unwrap_or_default();
    ensure(!resp_id.trim().is_empty(), Rule::ResponseIdMissing, || {
        "Response ID missing or empty".into()
    })?;
    if let Some(a) = assertion {
        let id = a.attr("ID").unwrap_or_default();
        ensure(!id.trim().is_empty(), Rule::AssertionIdMissing, || {
            "Assertion ID missing or empty".into()
        })?;
    }
    let total = doc
        .descendants()
        .iter()
        .filter(|e| e.is(ns::DS, "Signature"))
        .count();
    let mut placed = 0;
    for holder in std::iter::once(doc).chain(assertion) {
        let sigs: Vec<usize> = holder
            .children
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n, Node::Element(e) if e.is(ns::DS, "Signature")))
            .map(|(i, _)| i)
            .collect();
        ensure(sigs.len() <= 1, Rule::SignaturePlacement, || {
            format!("{} signatures in {}", sigs.len(), holder.qname)
        })?;
        if let Some(&i) = sigs.first() {
            let prev = holder.children[..i].iter().rev().find_map(|n| match n {
                Node::Element(e) => Some(e),
                _ => None,
            });
            // Right after Issuer, or first when Issuer is absent (SAML-CORE schema order).
            ensure(
                prev.is_none_or(|p| p.is(ns::SAML, "Issuer")),
                Rule::SignaturePlacement,
                || format!("Signature in {} does not follow Issuer", holder.qname),
            )?;
            if let Node::Element(sig) = &holder.children[i] {
                signature_shape(sig, holder.attr("ID").unwrap_or_default())?;
            }
            placed += 1;
        }
    }
    ensure(placed == total, Rule::SignaturePlacement, || {
        format!("{} signature(s) outside Response/Assertion", total - placed)
    })
}

const SIG_METHODS: [&str; 3] = [
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
];
const DIGESTS: [&str; 3] = [
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];

fn signature_shape(sig: &Element, parent_id: &str) -> Check {
    for c in sig.elements() {
        ensure(
            ["SignedInfo", "SignatureValue", "KeyInfo"].contains(&c.local())
                && c.ns.as_deref() == Some(ns::DS),
            Rule::SignaturePlacement,
            || format!("unexpected {} in Signature", c.qname),
        )?;
    }
    let si = sig
        .child(ns::DS, "SignedInfo")
        .ok_or_else(|| Rejection::new(Rule::SignaturePlacement, "no SignedInfo"))?;
    let alg = |e: Option<&Element>| {
        e.and_then(|e| e.attr("Algorithm"))
            .unwrap_or_default()
            .to_string()
    };
    let c14n = alg(si.child(ns::DS, "CanonicalizationMethod"));
    ensure(c14n == ns::EXC_C14N, Rule::SignatureTransform, || {
        format!("CanonicalizationMethod {c14n}")
    })?;
    let sm = alg(si.child(ns::DS, "SignatureMethod"));
    ensure(
        SIG_METHODS.contains(&sm.as_str()),
        Rule::SignatureAlgorithm,
        || format!("SignatureMethod {sm}"),
    )?;
    let refs: Vec<&Element> = si.children_named(ns::DS, "Reference").collect();
    ensure(refs.len() == 1, Rule::SignatureReference, || {
        format!("{} References", refs.len())
    })?;
    let r = refs[0];
    let uri = r.attr("URI").unwrap_or_default();
    ensure(
        !parent_id.is_empty() && uri == format!("#{parent_id}"),
        Rule::SignatureReference,
        || format!("Reference URI {uri:?} does not name the signed element {parent_id:?}"),
    )?;
    if let Some(ts) = r.child(ns::DS, "Transforms") {
        for t in ts.elements() {
            let a = t.attr("Algorithm").unwrap_or_default();
            let allowed = t.is(ns::DS, "Transform")
                && (a == ns::EXC_C14N || (a == ns::ENVELOPED && t.elements().next().is_none()));
            ensure(allowed, Rule::SignatureTransform, || {
                format!("Transform {a}")
            })?;
        }
    }
    let dm = alg(r.child(ns::DS, "DigestMethod"));
    ensure(
        DIGESTS.contains(&dm.as_str()),
        Rule::SignatureAlgorithm,
        || format!("DigestMethod {dm}"),
    )
}

fn status(resp: &Element) -> Check {
    let st = resp.child(ns::SAMLP, "Status");
    let code = st.and_then(|s| s.child(ns::SAMLP, "StatusCode"));
    let value = code.and_then(|c| c.attr("Value")).unwrap_or_default();
    ensure(
        !value.trim().is_empty(),
        Rule::ResponseStatusMissing,
        || "Status or StatusCode missing or empty".into(),
    )?;
    if value == ns::STATUS_SUCCESS {
        return Ok(());
    }
    let msg = st
        .and_then(|s| s.child(ns::SAMLP, "StatusMessage"))
        .map(|m| m.text())
        .unwrap_or_default();
    let spid = SpidError::from_status_message(&msg);
    let rule = spid
        .and_then(Rule::for_spid_error)
        .unwrap_or(Rule::ResponseStatusNotSuccess);
    Err(Rejection {
        rule,
        detail: format!("StatusCode {value}; StatusMessage {msg:?}"),
        spid_error: spid,
    })
}

fn verify(text: &str, idp: &EntityMetadata, assertion_id: &str) -> Check<VerifiedAssertion> {
    let reduced = dsig::verify_and_reduce(text, &idp.signing_certs).map_err(|e| match e {
        DsigError::NoTrustedCertificate => {
            Rejection::new(Rule::SignatureNoTrustedCert, e.to_string())
        }
        _ => Rejection::new(Rule::SignatureInvalid, e.to_string()),
    })?;
    let root = xml::parse(&reduced, &Limits::default())
        .map_err(|e| Rejection::new(Rule::SignatureInvalid, format!("reduced document: {e}")))?;
    // With the Response signed, the reduced root is the Response; otherwise the Assertion.
    let a = if root.is(ns::SAML, "Assertion") {
        root
    } else if root.is(ns::SAMLP, "Response") {
        root.child(ns::SAML, "Assertion").cloned().ok_or_else(|| {
            Rejection::new(
                Rule::SignatureAssertionMissing,
                "signed Response without Assertion",
            )
        })?
    } else {
        return Err(Rejection::new(
            Rule::SignatureInvalid,
            format!("signed element is {}", root.qname),
        ));
    };
    ensure(
        a.attr("ID") == Some(assertion_id),
        Rule::SignatureInvalid,
        || "the signed Assertion is not the one in the Response".into(),
    )?;
    Ok(VerifiedAssertion(a))
}

fn assertion(
    va: &VerifiedAssertion,
    policy: &Policy,
    pending: &PendingRequest,
    idp: &EntityMetadata,
    now: DateTime<Utc>,
) -> Check {
    let a = va.el();
    ensure(
        a.attr("Version") == Some("2.0"),
        Rule::AssertionVersion,
        || format!("Version {:?}", a.attr("Version")),
    )?;
    let t = instant(
        a.attr("IssueInstant"),
        Rule::AssertionIssueInstantMissing,
        Rule::AssertionIssueInstantMalformed,
    )?;
    ensure(
        t >= not_before_request(pending, policy.skew),
        Rule::AssertionIssueInstantBeforeRequest,
        || format!("{t} < request {}", pending.issue_instant),
    )?;
    ensure(
        t <= now + policy.skew,
        Rule::AssertionIssueInstantFuture,
        || format!("{t} is in the future"),
    )?;
    // Issuer.
    let issuer = a.child(ns::SAML, "Issuer");
    let it = issuer
        .map(|i| i.text().trim().to_string())
        .unwrap_or_default();
    ensure(!it.is_empty(), Rule::AssertionIssuerMissing, || {
        "Assertion Issuer missing or empty".into()
    })?;
    ensure(it == idp.entity_id, Rule::AssertionIssuerMismatch, || {
        format!("Assertion Issuer {it} is not {}", idp.entity_id)
    })?;
    let f = issuer.and_then(|i| i.attr("Format"));
    ensure(
        f == Some(ns::NAMEID_ENTITY),
        Rule::AssertionIssuerFormat,
        || format!("Assertion Issuer Format {f:?}"),
    )?;
    // Subject.
    let subject = a
        .child(ns::SAML, "Subject")
        .filter(|s| s.elements().next().is_some())
        .ok_or_else(|| Rejection::new(Rule::AssertionSubjectMissing, "Subject missing or empty"))?;
    let name_id = subject.child(ns::SAML, "NameID");
    let nv = name_id
        .map(|n| n.text().trim().to_string())
        .unwrap_or_default();
    ensure(!nv.is_empty(), Rule::AssertionNameIdMissing, || {
        "NameID missing or empty".into()
    })?;
    let nf = name_id.and_then(|n| n.attr("Format"));
    ensure(
        nf == Some(ns::NAMEID_TRANSIENT),
        Rule::AssertionNameIdFormat,
        || format!("NameID Format {nf:?}"),
    )?;
    let nq = name_id
        .and_then(|n| n.attr("NameQualifier"))
        .unwrap_or_default();
    ensure(
        !nq.trim().is_empty(),
        Rule::AssertionNameIdQualifier,
        || "NameQualifier missing or empty".into(),
    )?;
    let sc = subject.child(ns::SAML, "SubjectConfirmation");
    let scd = sc.and_then(|c| c.child(ns::SAML, "SubjectConfirmationData"));
    ensure(
        sc.is_some(),
        Rule::AssertionSubjectConfirmationMissing,
        || "SubjectConfirmation missing".into(),
    )?;
    let method = sc.and_then(|c| c.attr("Method"));
    ensure(
        method == Some(ns::CM_BEARER),
        Rule::AssertionSubjectConfirmationMethod,
        || format!("Method {method:?}"),
    )?;
    let scd = scd.ok_or_else(|| {
        Rejection::new(
            Rule::AssertionSubjectConfirmationMissing,
            "SubjectConfirmationData missing",
        )
    })?;
    let rcp = scd.attr("Recipient").unwrap_or_default();
    ensure(!rcp.is_empty(), Rule::AssertionRecipientMissing, || {
        "Recipient missing or empty".into()
    })?;
    ensure(
        rcp == policy.acs_url,
        Rule::AssertionRecipientMismatch,
        || format!("Recipient {rcp} is not {}", policy.acs_url),
    )?;
    let sirt = scd.attr("InResponseTo").unwrap_or_default();
    ensure(!sirt.is_empty(), Rule::AssertionInResponseToMissing, || {
        "SubjectConfirmationData InResponseTo missing or empty".into()
    })?;
    ensure(
        sirt == pending.id,
        Rule::AssertionInResponseToMismatch,
        || format!("InResponseTo {sirt} is not {}", pending.id),
    )?;
    let exp = instant(
        scd.attr("NotOnOrAfter"),
        Rule::AssertionConfirmationExpiryMissing,
        Rule::AssertionConfirmationExpiryMalformed,
    )?;
    ensure(
        now < exp + policy.skew,
        Rule::AssertionConfirmationExpired,
        || format!("expired at {exp}"),
    )?;
    // Conditions.
    let cond = a
        .child(ns::SAML, "Conditions")
        .ok_or_else(|| Rejection::new(Rule::AssertionConditionsMissing, "Conditions missing"))?;
    let nb = instant(
        cond.attr("NotBefore"),
        Rule::AssertionNotBeforeMissing,
        Rule::AssertionNotBeforeMalformed,
    )?;
    ensure(nb <= now + policy.skew, Rule::AssertionNotYetValid, || {
        format!("NotBefore {nb} is in the future")
    })?;
    let noa = instant(
        cond.attr("NotOnOrAfter"),
        Rule::AssertionNotOnOrAfterMissing,
        Rule::AssertionNotOnOrAfterMalformed,
    )?;
    ensure(now < noa + policy.skew, Rule::AssertionExpired, || {
        format!("expired at {noa}")
    })?;
    let audiences: Vec<String> = cond
        .children_named(ns::SAML, "AudienceRestriction")
        .flat_map(|r| r.children_named(ns::SAML, "Audience"))
        .map(|a| a.text().trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    ensure(
        !audiences.is_empty(),
        Rule::AssertionAudienceMissing,
        || "AudienceRestriction/Audience missing or empty".into(),
    )?;
    ensure(
        audiences.iter().all(|a| *a == policy.entity_id),
        Rule::AssertionAudienceMismatch,
        || format!("Audience {audiences:?} is not {}", policy.entity_id),
    )?;
    // AuthnStatement and level.
    let st = a
        .child(ns::SAML, "AuthnStatement")
        .filter(|s| s.elements().next().is_some())
        .ok_or_else(|| {
            Rejection::new(
                Rule::AssertionAuthnStatementMissing,
                "AuthnStatement missing or empty",
            )
        })?;
    let cr = st
        .child(ns::SAML, "AuthnContext")
        .and_then(|c| c.child(ns::SAML, "AuthnContextClassRef"))
        .map(|c| c.text().trim().to_string())
        .unwrap_or_default();
    ensure(!cr.is_empty(), Rule::AssertionAuthnContextMissing, || {
        "AuthnContext/AuthnContextClassRef missing or empty".into()
    })?;
    let level = SpidLevel::from_uri(&cr).ok_or_else(|| {
        Rejection::new(
            Rule::AssertionLevelUnknown,
            format!("{cr} is not a SPID level"),
        )
    })?;
    ensure(
        satisfies(pending.level, pending.comparison, level) && level >= policy.min_level,
        Rule::AssertionLevelInsufficient,
        || {
            format!(
                "obtained {level}, requested {} {} (floor {})",
                pending.comparison.as_str(),
                pending.level,
                policy.min_level
            )
        },
    )?;
    // AttributeStatement shape.
    for s in a.children_named(ns::SAML, "AttributeStatement") {
        let attrs: Vec<&Element> = s.children_named(ns::SAML, "Attribute").collect();
        ensure(
            !attrs.is_empty(),
            Rule::AssertionAttributeStatementEmpty,
            || "AttributeStatement without Attribute".into(),
        )?;
        for at in attrs {
            let has_value = at
                .children_named(ns::SAML, "AttributeValue")
                .any(|v| !v.text().trim().is_empty());
            ensure(has_value, Rule::AssertionAttributeValueMissing, || {
                format!("Attribute {:?} has no value", at.attr("Name"))
            })?;
        }
    }
    Ok(())
}

fn verified_identity(
    va: &VerifiedAssertion,
    pending: &PendingRequest,
    policy: &Policy,
) -> Check<Identity> {
    let a = va.el();
    let subject = a.child(ns::SAML, "Subject");
    let name_id = subject
        .and_then(|s| s.child(ns::SAML, "NameID"))
        .map(|n| n.text().trim().to_string())
        .unwrap_or_default();
    let st = a.child(ns::SAML, "AuthnStatement");
    let level = st
        .and_then(|s| s.child(ns::SAML, "AuthnContext"))
        .and_then(|c| c.child(ns::SAML, "AuthnContextClassRef"))
        .and_then(|c| SpidLevel::from_uri(c.text().trim()))
        .ok_or_else(|| Rejection::new(Rule::AssertionLevelUnknown, "no level"))?;
    let attributes: Vec<(String, String)> = a
        .children_named(ns::SAML, "AttributeStatement")
        .flat_map(|s| s.children_named(ns::SAML, "Attribute"))
        .filter_map(|at| {
            let v = at
                .child(ns::SAML, "AttributeValue")?
                .text()
                .trim()
                .to_string();
            Some((at.attr("Name")?.to_string(), v))
        })
        .collect();
    let mut warnings = Vec::new();
    if let Some((_, wanted)) = policy
        .attribute_services
        .iter()
        .find(|(i, _)| *i == pending.attribute_index)
    {
        let mut got: Vec<&str> = attributes.iter().map(|(n, _)| n.as_str()).collect();
        let mut want: Vec<&str> = wanted.iter().map(String::as_str).collect();
        got.sort_unstable();
        want.sort_unstable();
        if got != want {
            warnings.push(format!(
                "attribute set {got:?} differs from the requested {want:?}"
            ));
        }
    }
    Ok(Identity {
        idp: pending.idp_entity_id.clone(),
        name_id,
        level,
        attributes,
        assertion_id: a.attr("ID").unwrap_or_default().to_string(),
        session_index: st.and_then(|s| s.attr("SessionIndex")).map(str::to_string),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use spid_core::saml::dsig::Credential;
    use spid_core::saml::metadata::{EntityMetadata, IdpDescriptor};
    use spid_core::saml::response::{
        sign_response, AssertionModel, ResponseModel, SignParts, StatusModel,
    };
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::sync::Mutex;

    const IDP: &str = "http://idp.test";
    const SP: &str = "http://sp.test/metadata";
    const ACS: &str = "http://sp.test/acs";

    fn cred() -> Credential {
        let key =
            openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "idp").unwrap();
        let name = name.build();
        let mut b = openssl::x509::X509::builder().unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(9).unwrap())
            .unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        Credential::from_pem(
            &key.private_key_to_pem_pkcs8().unwrap(),
            &b.build().to_pem().unwrap(),
        )
        .unwrap()
    }

    fn pending(now: DateTime<Utc>) -> PendingRequest {
        PendingRequest {
            id: "_req1".into(),
            issue_instant: now,
            idp_entity_id: IDP.into(),
            level: SpidLevel::L2,
            comparison: Comparison::Minimum,
            attribute_index: 0,
        }
    }

    fn response(now: DateTime<Utc>, status: StatusModel, level: SpidLevel) -> ResponseModel {
        ResponseModel {
            id: "_resp1".into(),
            issue_instant: now,
            in_response_to: "_req1".into(),
            destination: ACS.into(),
            issuer: IDP.into(),
            status,
            assertion: Some(AssertionModel {
                id: "_assertion1".into(),
                issue_instant: now,
                issuer: IDP.into(),
                name_id: "_subject".into(),
                name_qualifier: IDP.into(),
                recipient: ACS.into(),
                in_response_to: "_req1".into(),
                confirmation_not_on_or_after: now + Duration::minutes(5),
                not_before: now,
                not_on_or_after: now + Duration::minutes(5),
                audience: SP.into(),
                authn_instant: now,
                session_index: None,
                authn_context_class_ref: level.uri().into(),
                attributes: vec![("fiscalNumber".into(), "TINIT-RSSMRA80A01H501U".into())],
            }),
        }
    }

    fn b64(c: &Credential, r: &ResponseModel) -> String {
        let signed =
            sign_response(r.to_element(), c, SignParts::BOTH, Some(&c.cert_base64())).unwrap();
        spid_core::saml::binding::encode_post(&signed.to_xml())
    }

    struct OneRequest(RefCell<Option<PendingRequest>>);
    impl RequestLookup for OneRequest {
        fn take(&mut self, id: &str) -> Check<PendingRequest> {
            self.0
                .borrow_mut()
                .take()
                .filter(|p| p.id == id)
                .ok_or_else(|| Rejection::new(Rule::ResponseInResponseToUnknown, "unknown"))
        }
    }

    #[derive(Default)]
    struct Cache(Mutex<HashMap<String, DateTime<Utc>>>);
    impl ReplayCache for Cache {
        fn insert(&self, id: &str, until: DateTime<Utc>, _now: DateTime<Utc>) -> bool {
            self.0.lock().unwrap().insert(id.into(), until).is_none()
        }
    }

    fn fixed_now() -> DateTime<Utc> {
        parse_saml_instant("2026-03-01T10:00:00.000Z").unwrap()
    }

    fn policy() -> Policy {
        Policy {
            entity_id: SP.into(),
            acs_url: ACS.into(),
            skew: Duration::seconds(60),
            min_level: SpidLevel::L2,
            attribute_services: vec![(0, vec!["fiscalNumber".into()])],
        }
    }

    fn idp(c: &Credential) -> EntityMetadata {
        EntityMetadata {
            entity_id: IDP.into(),
            signing_certs: vec![c.cert_der.clone()],
            idp: Some(IdpDescriptor::default()),
            sp: None,
        }
    }

    fn run(
        value: &str,
        idps: &[EntityMetadata],
        cache: &Cache,
        now: DateTime<Utc>,
    ) -> Check<Identity> {
        let mut lookup = OneRequest(RefCell::new(Some(pending(now))));
        validate(Some(value), &policy(), idps, &mut lookup, cache, now)
    }

    #[test]
    fn accepts_and_reads_identity_from_signed_content() {
        let c = cred();
        let now = fixed_now();
        let id = run(
            &b64(&c, &response(now, StatusModel::success(), SpidLevel::L2)),
            &[idp(&c)],
            &Cache::default(),
            now,
        )
        .unwrap();
        assert_eq!(id.level, SpidLevel::L2);
        assert_eq!(id.name_id, "_subject");
        assert_eq!(
            id.attributes,
            vec![(
                "fiscalNumber".to_string(),
                "TINIT-RSSMRA80A01H501U".to_string()
            )]
        );
        assert!(id.warnings.is_empty());
    }

    #[test]
    fn assertion_replay_is_refused_even_with_a_fresh_request() {
        let c = cred();
        let now = fixed_now();
        let cache = Cache::default();
        let v = b64(&c, &response(now, StatusModel::success(), SpidLevel::L2));
        run(&v, &[idp(&c)], &cache, now).unwrap();
        assert_eq!(
            run(&v, &[idp(&c)], &cache, now).unwrap_err().rule,
            Rule::AssertionReplayed
        );
    }

    #[test]
    fn no_metadata_certificate_never_skips_verification() {
        let c = cred();
        let now = fixed_now();
        let mut m = idp(&c);
        m.signing_certs.clear();
        let v = b64(&c, &response(now, StatusModel::success(), SpidLevel::L2));
        assert_eq!(
            run(&v, &[m], &Cache::default(), now).unwrap_err().rule,
            Rule::SignatureNoTrustedCert
        );
    }

    #[test]
    fn level_below_floor_is_refused() {
        let c = cred();
        let now = fixed_now();
        let v = b64(&c, &response(now, StatusModel::success(), SpidLevel::L1));
        assert_eq!(
            run(&v, &[idp(&c)], &Cache::default(), now)
                .unwrap_err()
                .rule,
            Rule::AssertionLevelInsufficient
        );
    }

    #[test]
    fn spid_error_status_carries_the_code() {
        let c = cred();
        let now = fixed_now();
        let mut r = response(
            now,
            StatusModel::spid_error(SpidError::CONSENT_DENIED),
            SpidLevel::L2,
        );
        r.assertion = None;
        let e = run(&b64(&c, &r), &[idp(&c)], &Cache::default(), now).unwrap_err();
        assert_eq!(e.rule, Rule::ResponseStatusNr22);
        assert_eq!(e.spid_error, Some(SpidError::CONSENT_DENIED));
    }

    #[test]
    fn whole_second_instants_within_the_request_second_are_accepted() {
        let c = cred();
        let now = fixed_now();
        let v = b64(&c, &response(now, StatusModel::success(), SpidLevel::L2));
        // The request was issued half a second after the IdP's whole-second IssueInstant.
        let mut lookup = OneRequest(RefCell::new(Some(PendingRequest {
            issue_instant: now + Duration::milliseconds(500),
            ..pending(now)
        })));
        assert!(validate(
            Some(&v),
            &policy(),
            &[idp(&c)],
            &mut lookup,
            &Cache::default(),
            now
        )
        .is_ok());
        // More than the skew (60 s) earlier it is an answer from before the request.
        let mut lookup = OneRequest(RefCell::new(Some(PendingRequest {
            issue_instant: now + Duration::seconds(61),
            ..pending(now)
        })));
        let e = validate(
            Some(&v),
            &policy(),
            &[idp(&c)],
            &mut lookup,
            &Cache::default(),
            now,
        )
        .unwrap_err();
        assert_eq!(e.rule, Rule::ResponseIssueInstantBeforeRequest);
    }

    /// Every single-byte corruption and every truncation of a valid signed Response is refused
    /// or yields exactly the honest identity (bytes no signature covers, such as KeyInfo or an
    /// unused namespace declaration, may change) — and nothing panics.
    #[test]
    fn corrupted_responses_never_panic_and_never_change_the_identity() {
        let c = cred();
        let now = fixed_now();
        let signed = sign_response(
            response(now, StatusModel::success(), SpidLevel::L2).to_element(),
            &c,
            SignParts::BOTH,
            Some(&c.cert_base64()),
        )
        .unwrap()
        .to_xml();
        let honest = run(
            &spid_core::saml::binding::encode_post(&signed),
            &[idp(&c)],
            &Cache::default(),
            now,
        )
        .unwrap();
        let bytes = signed.as_bytes();
        let step = (bytes.len() / 400).max(1);
        let mut refused = 0;
        for i in (0..bytes.len()).step_by(step) {
            for replacement in [b'X', b'<', b'&'] {
                let mut m = bytes.to_vec();
                if m[i] == replacement {
                    continue;
                }
                m[i] = replacement;
                let v = spid_core::saml::binding::encode_post(&String::from_utf8_lossy(&m));
                match run(&v, &[idp(&c)], &Cache::default(), now) {
                    Err(_) => refused += 1,
                    Ok(id) => assert_eq!(id, honest, "byte {i} changed the identity"),
                }
            }
            let v = spid_core::saml::binding::encode_post(&String::from_utf8_lossy(&bytes[..i]));
            assert!(
                run(&v, &[idp(&c)], &Cache::default(), now).is_err(),
                "accepted a truncation at {i}"
            );
        }
        assert!(refused > 500, "{refused}");
    }

    #[test]
    fn non_utf8_after_base64_is_an_encoding_refusal() {
        use base64::Engine as _;
        let c = cred();
        let now = fixed_now();
        let v = base64::engine::general_purpose::STANDARD.encode(b"<samlp:Response \xff\xfe/>");
        let e = run(&v, &[idp(&c)], &Cache::default(), now).unwrap_err();
        assert_eq!(e.rule, Rule::BindingEncoding, "{e:?}");
        let e = run("%%%", &[idp(&c)], &Cache::default(), now).unwrap_err();
        assert_eq!(e.rule, Rule::BindingBase64, "{e:?}");
    }

    #[test]
    fn garbage_never_panics() {
        let c = cred();
        let now = fixed_now();
        for v in ["", "%%%", "PGE+", "AAAA", "PHNhbWxwOlJlc3BvbnNlLz4="] {
            let e = run(v, &[idp(&c)], &Cache::default(), now).unwrap_err();
            assert!(
                matches!(
                    e.rule,
                    Rule::BindingMissingMessage
                        | Rule::BindingBase64
                        | Rule::BindingEncoding
                        | Rule::XmlMalformed
                        | Rule::ResponseRoot
                ),
                "{v}: {:?}",
                e.rule
            );
        }
    }
}
