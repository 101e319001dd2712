//! Rules over the unverified Response: they read what no signature has been checked for yet,
//! so they can only refuse.
//!
//! [`ENVELOPE_RULES`] run on the parsed document alone — structure, IDs and signature
//! placement first, so wrapping is refused before any crypto runs. [`RESPONSE_RULES`] run once
//! the [`RequestLookup`](super::RequestLookup) has found the request the Response answers.

use super::{
    ensure, instant, not_before_request, parsed_instant, Check, Ctx, Rejection, ResponseRule,
    RuleFn,
};
use crate::validator::PendingRequest;
use spid_core::errors::SpidError;
use spid_core::saml::ns;
use spid_core::saml::xml::{Element, Node};
use spid_core::Rule;

/// The Response and the pending request it answers.
#[derive(Debug, Clone, Copy)]
pub struct Answered<'a> {
    /// The (unverified) Response.
    pub doc: &'a Element,
    /// The request it answers, consumed from the lookup.
    pub pending: &'a PendingRequest,
}

/// Which element holds a signature: the Response (`false`) or its Assertion (`true`).
const ON_RESPONSE: bool = false;
const ON_ASSERTION: bool = true;

/// Rules over the parsed Response alone, in order.
pub const ENVELOPE_RULES: &[RuleFn<Element>] = &[
    (&[Rule::ResponseRoot], root),
    (&[Rule::AssertionMultiple], at_most_one_assertion),
    (&[Rule::ResponseUnexpectedElement], response_children),
    (&[Rule::ResponseUnexpectedElement], assertion_children),
    // IDs before signatures: a signature cannot name an element without one, and "no ID" is
    // the meaningful refusal.
    (&[Rule::ResponseIdMissing], response_id),
    (&[Rule::AssertionIdMissing], assertion_id),
    (
        &[Rule::SignaturePlacement],
        signature_placement::<ON_RESPONSE>,
    ),
    (&[Rule::SignatureTransform], signature_c14n::<ON_RESPONSE>),
    (&[Rule::SignatureAlgorithm], signature_method::<ON_RESPONSE>),
    (
        &[Rule::SignatureReference],
        signature_reference::<ON_RESPONSE>,
    ),
    (
        &[Rule::SignatureTransform],
        signature_transforms::<ON_RESPONSE>,
    ),
    (&[Rule::SignatureAlgorithm], signature_digest::<ON_RESPONSE>),
    (
        &[Rule::SignaturePlacement],
        signature_placement::<ON_ASSERTION>,
    ),
    (&[Rule::SignatureTransform], signature_c14n::<ON_ASSERTION>),
    (
        &[Rule::SignatureAlgorithm],
        signature_method::<ON_ASSERTION>,
    ),
    (
        &[Rule::SignatureReference],
        signature_reference::<ON_ASSERTION>,
    ),
    (
        &[Rule::SignatureTransform],
        signature_transforms::<ON_ASSERTION>,
    ),
    (
        &[Rule::SignatureAlgorithm],
        signature_digest::<ON_ASSERTION>,
    ),
    (&[Rule::SignaturePlacement], no_stray_signatures),
    (&[Rule::ResponseVersion], response_version),
    (
        &[
            Rule::ResponseIssueInstantMissing,
            Rule::ResponseIssueInstantMalformed,
        ],
        response_issue_instant,
    ),
    (
        &[Rule::ResponseInResponseToMissing],
        response_in_response_to,
    ),
];

/// Rules over the Response and the request it answers, in order.
pub const RESPONSE_RULES: &[ResponseRule] = &[
    (
        &[Rule::ResponseIssueInstantBeforeRequest],
        response_issued_after_request,
    ),
    (&[Rule::ResponseIssueInstantFuture], response_not_future),
    (&[Rule::ResponseDestinationMissing], destination_present),
    (&[Rule::ResponseDestinationMismatch], destination_is_acs),
    (
        &[
            Rule::ResponseStatusMissing,
            Rule::ResponseStatusNotSuccess,
            Rule::ResponseStatusNr19,
            Rule::ResponseStatusNr20,
            Rule::ResponseStatusNr21,
            Rule::ResponseStatusNr22,
            Rule::ResponseStatusNr23,
            Rule::ResponseStatusNr25,
            Rule::ResponseStatusNr30,
        ],
        status,
    ),
    (&[Rule::ResponseIssuerMissing], issuer_present),
    (&[Rule::ResponseIssuerMismatch], issuer_is_idp),
    (&[Rule::ResponseIssuerFormat], issuer_format),
    (&[Rule::AssertionMissing], assertion_present),
    (&[Rule::SignatureAssertionMissing], assertion_signed),
    (&[Rule::XmlComment], assertion_without_comments),
];

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

fn fail(rule: Rule, detail: impl Into<String>) -> Check {
    Err(Rejection::new(rule, detail))
}

fn assertion_of(doc: &Element) -> Option<&Element> {
    doc.child(ns::SAML, "Assertion")
}

/// The root is a samlp:Response.
fn root(doc: &Element, _: &Ctx<'_>) -> Check {
    ensure(doc.is(ns::SAMLP, "Response"), Rule::ResponseRoot, || {
        format!("root is {}", doc.qname)
    })
}

/// At most one Assertion anywhere in the document.
fn at_most_one_assertion(doc: &Element, _: &Ctx<'_>) -> Check {
    let count = doc
        .descendants()
        .iter()
        .filter(|e| e.local() == "Assertion")
        .count();
    ensure(count <= 1, Rule::AssertionMultiple, || {
        format!("{count} Assertion elements")
    })
}

fn children_allowed(holder: &Element, allowed: &[(&str, &str)], what: &str) -> Check {
    match holder
        .elements()
        .find(|c| !allowed.iter().any(|(n, l)| c.is(n, l)))
    {
        Some(c) => fail(
            Rule::ResponseUnexpectedElement,
            format!("unexpected {} in {what}", c.qname),
        ),
        None => Ok(()),
    }
}

/// The Response holds only Issuer, Signature, Status and Assertion.
fn response_children(doc: &Element, _: &Ctx<'_>) -> Check {
    children_allowed(doc, &RESPONSE_CHILDREN, "Response")
}

/// The Assertion holds only the SAML-CORE children SPID uses.
fn assertion_children(doc: &Element, _: &Ctx<'_>) -> Check {
    assertion_of(doc).map_or(Ok(()), |a| {
        children_allowed(a, &ASSERTION_CHILDREN, "Assertion")
    })
}

/// The Response has a non-blank ID.
fn response_id(doc: &Element, _: &Ctx<'_>) -> Check {
    let id = doc.attr("ID").unwrap_or_default();
    ensure(!id.trim().is_empty(), Rule::ResponseIdMissing, || {
        "Response ID missing or empty".into()
    })
}

/// The Assertion, when there is one, has a non-blank ID.
fn assertion_id(doc: &Element, _: &Ctx<'_>) -> Check {
    let Some(a) = assertion_of(doc) else {
        return Ok(());
    };
    let id = a.attr("ID").unwrap_or_default();
    ensure(!id.trim().is_empty(), Rule::AssertionIdMissing, || {
        "Assertion ID missing or empty".into()
    })
}

/// The Response or (`ON_ASSERTION`) its Assertion.
fn holder<const IN_ASSERTION: bool>(doc: &Element) -> Option<&Element> {
    if IN_ASSERTION {
        assertion_of(doc)
    } else {
        Some(doc)
    }
}

/// The holder's (first) own Signature child.
fn signature<const IN_ASSERTION: bool>(doc: &Element) -> Option<(&Element, &Element)> {
    let h = holder::<IN_ASSERTION>(doc)?;
    Some((h, h.child(ns::DS, "Signature")?))
}

/// The single Reference of the holder's SignedInfo.
fn reference<const IN_ASSERTION: bool>(doc: &Element) -> Option<(&Element, &Element)> {
    let (h, sig) = signature::<IN_ASSERTION>(doc)?;
    Some((
        h,
        sig.child(ns::DS, "SignedInfo")?
            .child(ns::DS, "Reference")?,
    ))
}

fn algorithm(e: Option<&Element>) -> String {
    e.and_then(|e| e.attr("Algorithm"))
        .unwrap_or_default()
        .to_string()
}

/// At most one Signature in the holder, right after its Issuer (or first when Issuer is
/// absent: SAML-CORE schema order), holding only SignedInfo, SignatureValue and KeyInfo, with
/// a SignedInfo.
fn signature_placement<const IN_ASSERTION: bool>(doc: &Element, _: &Ctx<'_>) -> Check {
    let Some(holder) = holder::<IN_ASSERTION>(doc) else {
        return Ok(());
    };
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
    let Some(&i) = sigs.first() else {
        return Ok(());
    };
    let prev = holder.children[..i].iter().rev().find_map(|n| match n {
        Node::Element(e) => Some(e),
        _ => None,
    });
    ensure(
        prev.is_none_or(|p| p.is(ns::SAML, "Issuer")),
        Rule::SignaturePlacement,
        || format!("Signature in {} does not follow Issuer", holder.qname),
    )?;
    let Node::Element(sig) = &holder.children[i] else {
        return Ok(());
    };
    for c in sig.elements() {
        ensure(
            ["SignedInfo", "SignatureValue", "KeyInfo"].contains(&c.local())
                && c.ns.as_deref() == Some(ns::DS),
            Rule::SignaturePlacement,
            || format!("unexpected {} in Signature", c.qname),
        )?;
    }
    ensure(
        sig.child(ns::DS, "SignedInfo").is_some(),
        Rule::SignaturePlacement,
        || "no SignedInfo".into(),
    )
}

/// SignedInfo is canonicalized with exclusive C14N.
fn signature_c14n<const IN_ASSERTION: bool>(doc: &Element, _: &Ctx<'_>) -> Check {
    let Some((_, sig)) = signature::<IN_ASSERTION>(doc) else {
        return Ok(());
    };
    let si = sig.child(ns::DS, "SignedInfo");
    let c14n = algorithm(si.and_then(|s| s.child(ns::DS, "CanonicalizationMethod")));
    ensure(c14n == ns::EXC_C14N, Rule::SignatureTransform, || {
        format!("CanonicalizationMethod {c14n}")
    })
}

/// The SignatureMethod is RSA with SHA-256, -384 or -512.
fn signature_method<const IN_ASSERTION: bool>(doc: &Element, _: &Ctx<'_>) -> Check {
    let Some((_, sig)) = signature::<IN_ASSERTION>(doc) else {
        return Ok(());
    };
    let si = sig.child(ns::DS, "SignedInfo");
    let sm = algorithm(si.and_then(|s| s.child(ns::DS, "SignatureMethod")));
    ensure(
        SIG_METHODS.contains(&sm.as_str()),
        Rule::SignatureAlgorithm,
        || format!("SignatureMethod {sm}"),
    )
}

/// Exactly one Reference, naming the holder by its ID.
fn signature_reference<const IN_ASSERTION: bool>(doc: &Element, _: &Ctx<'_>) -> Check {
    let Some((holder, sig)) = signature::<IN_ASSERTION>(doc) else {
        return Ok(());
    };
    let Some(si) = sig.child(ns::DS, "SignedInfo") else {
        return Ok(());
    };
    let refs: Vec<&Element> = si.children_named(ns::DS, "Reference").collect();
    ensure(refs.len() == 1, Rule::SignatureReference, || {
        format!("{} References", refs.len())
    })?;
    let parent_id = holder.attr("ID").unwrap_or_default();
    let uri = refs[0].attr("URI").unwrap_or_default();
    ensure(
        !parent_id.is_empty() && uri == format!("#{parent_id}"),
        Rule::SignatureReference,
        || format!("Reference URI {uri:?} does not name the signed element {parent_id:?}"),
    )
}

/// The Reference's Transforms are only enveloped-signature (without children) and exclusive
/// C14N.
fn signature_transforms<const IN_ASSERTION: bool>(doc: &Element, _: &Ctx<'_>) -> Check {
    let Some((_, r)) = reference::<IN_ASSERTION>(doc) else {
        return Ok(());
    };
    let Some(ts) = r.child(ns::DS, "Transforms") else {
        return Ok(());
    };
    for t in ts.elements() {
        let a = t.attr("Algorithm").unwrap_or_default();
        let allowed = t.is(ns::DS, "Transform")
            && (a == ns::EXC_C14N || (a == ns::ENVELOPED && t.elements().next().is_none()));
        ensure(allowed, Rule::SignatureTransform, || {
            format!("Transform {a}")
        })?;
    }
    Ok(())
}

/// The DigestMethod is SHA-256, -384 or -512.
fn signature_digest<const IN_ASSERTION: bool>(doc: &Element, _: &Ctx<'_>) -> Check {
    let Some((_, r)) = reference::<IN_ASSERTION>(doc) else {
        return Ok(());
    };
    let dm = algorithm(r.child(ns::DS, "DigestMethod"));
    ensure(
        DIGESTS.contains(&dm.as_str()),
        Rule::SignatureAlgorithm,
        || format!("DigestMethod {dm}"),
    )
}

/// No Signature anywhere but as a direct child of the Response or its Assertion.
fn no_stray_signatures(doc: &Element, _: &Ctx<'_>) -> Check {
    let total = doc
        .descendants()
        .iter()
        .filter(|e| e.is(ns::DS, "Signature"))
        .count();
    let placed = std::iter::once(doc)
        .chain(assertion_of(doc))
        .filter(|h| h.child(ns::DS, "Signature").is_some())
        .count();
    ensure(placed == total, Rule::SignaturePlacement, || {
        format!("{} signature(s) outside Response/Assertion", total - placed)
    })
}

/// Version is 2.0.
fn response_version(doc: &Element, _: &Ctx<'_>) -> Check {
    ensure(
        doc.attr("Version") == Some("2.0"),
        Rule::ResponseVersion,
        || format!("Version {:?}", doc.attr("Version")),
    )
}

/// IssueInstant is present and a UTC xs:dateTime.
fn response_issue_instant(doc: &Element, _: &Ctx<'_>) -> Check {
    instant(
        doc.attr("IssueInstant"),
        Rule::ResponseIssueInstantMissing,
        Rule::ResponseIssueInstantMalformed,
    )
    .map(drop)
}

/// InResponseTo is present and non-blank.
fn response_in_response_to(doc: &Element, _: &Ctx<'_>) -> Check {
    let irt = doc.attr("InResponseTo").unwrap_or_default();
    ensure(
        !irt.trim().is_empty(),
        Rule::ResponseInResponseToMissing,
        || "InResponseTo missing or empty".into(),
    )
}

/// The Response was issued no earlier than the request (to the second, less the skew).
fn response_issued_after_request(r: &Answered<'_>, ctx: &Ctx<'_>) -> Check {
    let Some(t) = parsed_instant(r.doc.attr("IssueInstant")) else {
        return Ok(());
    };
    ensure(
        t >= not_before_request(r.pending, ctx.policy.skew),
        Rule::ResponseIssueInstantBeforeRequest,
        || format!("{t} < request {}", r.pending.issue_instant),
    )
}

/// The Response was not issued in the future (beyond the skew).
fn response_not_future(r: &Answered<'_>, ctx: &Ctx<'_>) -> Check {
    let Some(t) = parsed_instant(r.doc.attr("IssueInstant")) else {
        return Ok(());
    };
    ensure(
        t <= ctx.now + ctx.policy.skew,
        Rule::ResponseIssueInstantFuture,
        || format!("{t} is in the future"),
    )
}

/// Destination is present.
fn destination_present(r: &Answered<'_>, _: &Ctx<'_>) -> Check {
    ensure(
        !r.doc.attr("Destination").unwrap_or_default().is_empty(),
        Rule::ResponseDestinationMissing,
        || "Destination missing or empty".into(),
    )
}

/// Destination is this SP's ACS URL.
fn destination_is_acs(r: &Answered<'_>, ctx: &Ctx<'_>) -> Check {
    let dest = r.doc.attr("Destination").unwrap_or_default();
    ensure(
        dest == ctx.policy.acs_url,
        Rule::ResponseDestinationMismatch,
        || format!("Destination {dest} is not {}", ctx.policy.acs_url),
    )
}

/// Status/StatusCode is present and Success; otherwise the SPID ErrorCode in StatusMessage
/// picks the rule (`ResponseStatusNr*`), else `ResponseStatusNotSuccess`.
fn status(r: &Answered<'_>, _: &Ctx<'_>) -> Check {
    let st = r.doc.child(ns::SAMLP, "Status");
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
        ..Rejection::new(rule, "")
    })
}

fn issuer_text(doc: &Element) -> String {
    doc.child(ns::SAML, "Issuer")
        .map(|i| i.text().trim().to_string())
        .unwrap_or_default()
}

/// The Response Issuer is present and non-blank.
fn issuer_present(r: &Answered<'_>, _: &Ctx<'_>) -> Check {
    ensure(
        !issuer_text(r.doc).is_empty(),
        Rule::ResponseIssuerMissing,
        || "Response Issuer missing or empty".into(),
    )
}

/// The Response Issuer is the IdP the request went to.
fn issuer_is_idp(r: &Answered<'_>, _: &Ctx<'_>) -> Check {
    let it = issuer_text(r.doc);
    ensure(
        it == r.pending.idp_entity_id,
        Rule::ResponseIssuerMismatch,
        || format!("Issuer {it} is not {}", r.pending.idp_entity_id),
    )
}

/// The Response Issuer Format, when present, is `entity`.
fn issuer_format(r: &Answered<'_>, _: &Ctx<'_>) -> Check {
    let fmt = r
        .doc
        .child(ns::SAML, "Issuer")
        .and_then(|i| i.attr("Format"));
    ensure(
        fmt.is_none() || fmt == Some(ns::NAMEID_ENTITY),
        Rule::ResponseIssuerFormat,
        || format!("Issuer Format {fmt:?}"),
    )
}

/// A successful Response carries an Assertion (ENVELOPE_RULES refused more than one).
fn assertion_present(r: &Answered<'_>, _: &Ctx<'_>) -> Check {
    match assertion_of(r.doc) {
        Some(_) => Ok(()),
        None => fail(Rule::AssertionMissing, "no Assertion"),
    }
}

/// The Assertion has its own Signature.
fn assertion_signed(r: &Answered<'_>, _: &Ctx<'_>) -> Check {
    ensure(
        assertion_of(r.doc).is_some_and(|a| a.child(ns::DS, "Signature").is_some()),
        Rule::SignatureAssertionMissing,
        || "the Assertion is not signed".into(),
    )
}

/// No comment inside the Assertion (comment injection into signed values).
fn assertion_without_comments(r: &Answered<'_>, _: &Ctx<'_>) -> Check {
    ensure(
        !assertion_of(r.doc).is_some_and(Element::has_comment),
        Rule::XmlComment,
        || "comment inside the Assertion".into(),
    )
}
