//! Rules over the verified Assertion: everything here reads signed content only.
//!
//! [`ASSERTION_RULES`] run on the [`VerifiedAssertion`](super::VerifiedAssertion) up to its
//! AuthnContext; [`authn_level`] then reads the SPID level (the level stage), and
//! [`GRANT_RULES`] judge that level and the AttributeStatement. [`identity`] reads the
//! accepted login and cannot fail: every rule it relies on already ran.

use super::{
    ensure, instant, not_before_request, parsed_instant, AssertionRule, Check, Ctx, GrantRule,
    Identity, PendingRequest, Policy, Rejection,
};
use spid_core::cie::{self, IdpProfile};
use spid_core::saml::metadata::EntityMetadata;
use spid_core::saml::ns;
use spid_core::saml::xml::Element;
use spid_core::{satisfies, Rule, SpidLevel};

/// The verified Assertion with the request it answers and the IdP that signed it.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// The Assertion, as reduced to what the verified signatures cover.
    pub a: &'a Element,
    /// The request it answers.
    pub pending: &'a PendingRequest,
    /// The IdP whose metadata certificate verified it.
    pub idp: &'a EntityMetadata,
}

/// The verified Assertion once its SPID level was read.
#[derive(Debug, Clone, Copy)]
pub struct Granted<'a> {
    /// The Assertion, as reduced to what the verified signatures cover.
    pub a: &'a Element,
    /// The request it answers.
    pub pending: &'a PendingRequest,
    /// The level its AuthnContextClassRef names.
    pub level: SpidLevel,
}

/// Rules over the verified Assertion, in order.
pub const ASSERTION_RULES: &[AssertionRule] = &[
    (&[Rule::AssertionVersion], version),
    (
        &[
            Rule::AssertionIssueInstantMissing,
            Rule::AssertionIssueInstantMalformed,
        ],
        issue_instant,
    ),
    (
        &[Rule::AssertionIssueInstantBeforeRequest],
        issued_after_request,
    ),
    (&[Rule::AssertionIssueInstantFuture], not_issued_in_future),
    (&[Rule::AssertionIssuerMissing], issuer_present),
    (&[Rule::AssertionIssuerMismatch], issuer_is_idp),
    (&[Rule::AssertionIssuerFormat], issuer_format),
    (&[Rule::AssertionSubjectMissing], subject_present),
    (&[Rule::AssertionNameIdMissing], name_id_present),
    (&[Rule::AssertionNameIdFormat], name_id_transient),
    (&[Rule::AssertionNameIdQualifier], name_id_qualifier),
    (
        &[Rule::AssertionSubjectConfirmationMissing],
        confirmation_present,
    ),
    (
        &[Rule::AssertionSubjectConfirmationMethod],
        confirmation_bearer,
    ),
    (
        &[Rule::AssertionSubjectConfirmationMissing],
        confirmation_data_present,
    ),
    (&[Rule::AssertionRecipientMissing], recipient_present),
    (&[Rule::AssertionRecipientMismatch], recipient_is_acs),
    (
        &[Rule::AssertionInResponseToMissing],
        in_response_to_present,
    ),
    (
        &[Rule::AssertionInResponseToMismatch],
        in_response_to_request,
    ),
    (
        &[
            Rule::AssertionConfirmationExpiryMissing,
            Rule::AssertionConfirmationExpiryMalformed,
        ],
        confirmation_expiry,
    ),
    (
        &[Rule::AssertionConfirmationExpired],
        confirmation_unexpired,
    ),
    (&[Rule::AssertionConditionsMissing], conditions_present),
    (
        &[
            Rule::AssertionNotBeforeMissing,
            Rule::AssertionNotBeforeMalformed,
        ],
        not_before,
    ),
    (&[Rule::AssertionNotYetValid], already_valid),
    (
        &[
            Rule::AssertionNotOnOrAfterMissing,
            Rule::AssertionNotOnOrAfterMalformed,
        ],
        not_on_or_after,
    ),
    (&[Rule::AssertionExpired], unexpired),
    (&[Rule::AssertionAudienceMissing], audience_present),
    (&[Rule::AssertionAudienceMismatch], audience_is_sp),
    (
        &[Rule::AssertionAuthnStatementMissing],
        authn_statement_present,
    ),
    (&[Rule::AssertionAuthnContextMissing], authn_context_present),
];

/// Rules over the level obtained and the attributes, in order.
pub const GRANT_RULES: &[GrantRule] = &[
    (&[Rule::AssertionLevelInsufficient], level_sufficient),
    (
        &[
            Rule::AssertionAttributeStatementEmpty,
            Rule::AssertionAttributeValueMissing,
        ],
        attribute_statements,
    ),
    (&[Rule::AssertionCieAttributes], cie_minimum_set),
    (&[Rule::AssertionAttributesIdentityType], identity_type_set),
];

fn subject(a: &Element) -> Option<&Element> {
    a.child(ns::SAML, "Subject")
        .filter(|s| s.elements().next().is_some())
}

fn name_id(a: &Element) -> Option<&Element> {
    subject(a)?.child(ns::SAML, "NameID")
}

fn confirmation(a: &Element) -> Option<&Element> {
    subject(a)?.child(ns::SAML, "SubjectConfirmation")
}

fn confirmation_data(a: &Element) -> Option<&Element> {
    confirmation(a)?.child(ns::SAML, "SubjectConfirmationData")
}

fn conditions(a: &Element) -> Option<&Element> {
    a.child(ns::SAML, "Conditions")
}

fn authn_statement(a: &Element) -> Option<&Element> {
    a.child(ns::SAML, "AuthnStatement")
        .filter(|s| s.elements().next().is_some())
}

fn class_ref(a: &Element) -> String {
    authn_statement(a)
        .and_then(|s| s.child(ns::SAML, "AuthnContext"))
        .and_then(|c| c.child(ns::SAML, "AuthnContextClassRef"))
        .map(|c| c.text().trim().to_string())
        .unwrap_or_default()
}

/// Version is 2.0.
fn version(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    ensure(
        s.a.attr("Version") == Some("2.0"),
        Rule::AssertionVersion,
        || format!("Version {:?}", s.a.attr("Version")),
    )
}

/// IssueInstant is present and a UTC xs:dateTime.
fn issue_instant(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    instant(
        s.a.attr("IssueInstant"),
        Rule::AssertionIssueInstantMissing,
        Rule::AssertionIssueInstantMalformed,
    )
    .map(drop)
}

/// Issued no earlier than the request (to the second, less the skew).
fn issued_after_request(s: &Signed<'_>, ctx: &Ctx<'_>) -> Check {
    let Some(t) = parsed_instant(s.a.attr("IssueInstant")) else {
        return Ok(());
    };
    ensure(
        t >= not_before_request(s.pending, ctx.policy.skew),
        Rule::AssertionIssueInstantBeforeRequest,
        || format!("{t} < request {}", s.pending.issue_instant),
    )
}

/// Not issued in the future (beyond the skew).
fn not_issued_in_future(s: &Signed<'_>, ctx: &Ctx<'_>) -> Check {
    let Some(t) = parsed_instant(s.a.attr("IssueInstant")) else {
        return Ok(());
    };
    ensure(
        t <= ctx.now + ctx.policy.skew,
        Rule::AssertionIssueInstantFuture,
        || format!("{t} is in the future"),
    )
}

fn issuer_text(a: &Element) -> String {
    a.child(ns::SAML, "Issuer")
        .map(|i| i.text().trim().to_string())
        .unwrap_or_default()
}

/// The Assertion Issuer is present and non-blank.
fn issuer_present(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    ensure(
        !issuer_text(s.a).is_empty(),
        Rule::AssertionIssuerMissing,
        || "Assertion Issuer missing or empty".into(),
    )
}

/// The Assertion Issuer is the IdP whose certificate verified it.
fn issuer_is_idp(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    let it = issuer_text(s.a);
    ensure(it == s.idp.entity_id, Rule::AssertionIssuerMismatch, || {
        format!("Assertion Issuer {it} is not {}", s.idp.entity_id)
    })
}

/// The Assertion Issuer Format is `entity` (mandatory in SPID; from a CIE IdP, whose
/// documents show it with and without, absent or `entity`).
fn issuer_format(s: &Signed<'_>, ctx: &Ctx<'_>) -> Check {
    let f = s.a.child(ns::SAML, "Issuer").and_then(|i| i.attr("Format"));
    let cie_without = ctx.profile == IdpProfile::Cie && f.is_none();
    ensure(
        f == Some(ns::NAMEID_ENTITY) || cie_without,
        Rule::AssertionIssuerFormat,
        || format!("Assertion Issuer Format {f:?}"),
    )
}

/// A Subject with content.
fn subject_present(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    ensure(
        subject(s.a).is_some(),
        Rule::AssertionSubjectMissing,
        || "Subject missing or empty".into(),
    )
}

/// A non-blank NameID.
fn name_id_present(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    let v = name_id(s.a)
        .map(|n| n.text().trim().to_string())
        .unwrap_or_default();
    ensure(!v.is_empty(), Rule::AssertionNameIdMissing, || {
        "NameID missing or empty".into()
    })
}

/// NameID Format is `transient`.
fn name_id_transient(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    let f = name_id(s.a).and_then(|n| n.attr("Format"));
    ensure(
        f == Some(ns::NAMEID_TRANSIENT),
        Rule::AssertionNameIdFormat,
        || format!("NameID Format {f:?}"),
    )
}

/// NameID has a non-blank NameQualifier.
fn name_id_qualifier(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    let q = name_id(s.a)
        .and_then(|n| n.attr("NameQualifier"))
        .unwrap_or_default();
    ensure(!q.trim().is_empty(), Rule::AssertionNameIdQualifier, || {
        "NameQualifier missing or empty".into()
    })
}

/// A SubjectConfirmation.
fn confirmation_present(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    ensure(
        confirmation(s.a).is_some(),
        Rule::AssertionSubjectConfirmationMissing,
        || "SubjectConfirmation missing".into(),
    )
}

/// SubjectConfirmation Method is `bearer`.
fn confirmation_bearer(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    let m = confirmation(s.a).and_then(|c| c.attr("Method"));
    ensure(
        m == Some(ns::CM_BEARER),
        Rule::AssertionSubjectConfirmationMethod,
        || format!("Method {m:?}"),
    )
}

/// A SubjectConfirmationData.
fn confirmation_data_present(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    ensure(
        confirmation_data(s.a).is_some(),
        Rule::AssertionSubjectConfirmationMissing,
        || "SubjectConfirmationData missing".into(),
    )
}

fn scd_attr<'a>(s: &Signed<'a>, name: &str) -> &'a str {
    confirmation_data(s.a)
        .and_then(|d| d.attr(name))
        .unwrap_or_default()
}

/// Recipient is present.
fn recipient_present(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    ensure(
        !scd_attr(s, "Recipient").is_empty(),
        Rule::AssertionRecipientMissing,
        || "Recipient missing or empty".into(),
    )
}

/// Recipient is this SP's ACS URL.
fn recipient_is_acs(s: &Signed<'_>, ctx: &Ctx<'_>) -> Check {
    let r = scd_attr(s, "Recipient");
    ensure(
        r == ctx.policy.acs_url,
        Rule::AssertionRecipientMismatch,
        || format!("Recipient {r} is not {}", ctx.policy.acs_url),
    )
}

/// SubjectConfirmationData InResponseTo is present.
fn in_response_to_present(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    ensure(
        !scd_attr(s, "InResponseTo").is_empty(),
        Rule::AssertionInResponseToMissing,
        || "SubjectConfirmationData InResponseTo missing or empty".into(),
    )
}

/// SubjectConfirmationData InResponseTo names the request.
fn in_response_to_request(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    let irt = scd_attr(s, "InResponseTo");
    ensure(
        irt == s.pending.id,
        Rule::AssertionInResponseToMismatch,
        || format!("InResponseTo {irt} is not {}", s.pending.id),
    )
}

/// SubjectConfirmationData NotOnOrAfter is present and a UTC xs:dateTime.
fn confirmation_expiry(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    instant(
        confirmation_data(s.a).and_then(|d| d.attr("NotOnOrAfter")),
        Rule::AssertionConfirmationExpiryMissing,
        Rule::AssertionConfirmationExpiryMalformed,
    )
    .map(drop)
}

/// The SubjectConfirmationData has not expired (beyond the skew).
fn confirmation_unexpired(s: &Signed<'_>, ctx: &Ctx<'_>) -> Check {
    let Some(exp) = parsed_instant(confirmation_data(s.a).and_then(|d| d.attr("NotOnOrAfter")))
    else {
        return Ok(());
    };
    ensure(
        ctx.now < exp + ctx.policy.skew,
        Rule::AssertionConfirmationExpired,
        || format!("expired at {exp}"),
    )
}

/// A Conditions element.
fn conditions_present(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    ensure(
        conditions(s.a).is_some(),
        Rule::AssertionConditionsMissing,
        || "Conditions missing".into(),
    )
}

/// Conditions NotBefore is present and a UTC xs:dateTime.
fn not_before(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    instant(
        conditions(s.a).and_then(|c| c.attr("NotBefore")),
        Rule::AssertionNotBeforeMissing,
        Rule::AssertionNotBeforeMalformed,
    )
    .map(drop)
}

/// NotBefore has passed (within the skew).
fn already_valid(s: &Signed<'_>, ctx: &Ctx<'_>) -> Check {
    let Some(nb) = parsed_instant(conditions(s.a).and_then(|c| c.attr("NotBefore"))) else {
        return Ok(());
    };
    ensure(
        nb <= ctx.now + ctx.policy.skew,
        Rule::AssertionNotYetValid,
        || format!("NotBefore {nb} is in the future"),
    )
}

/// Conditions NotOnOrAfter is present and a UTC xs:dateTime.
fn not_on_or_after(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    instant(
        conditions(s.a).and_then(|c| c.attr("NotOnOrAfter")),
        Rule::AssertionNotOnOrAfterMissing,
        Rule::AssertionNotOnOrAfterMalformed,
    )
    .map(drop)
}

/// NotOnOrAfter has not passed (beyond the skew).
fn unexpired(s: &Signed<'_>, ctx: &Ctx<'_>) -> Check {
    let Some(noa) = parsed_instant(conditions(s.a).and_then(|c| c.attr("NotOnOrAfter"))) else {
        return Ok(());
    };
    ensure(
        ctx.now < noa + ctx.policy.skew,
        Rule::AssertionExpired,
        || format!("expired at {noa}"),
    )
}

fn audiences(a: &Element) -> Vec<String> {
    conditions(a)
        .into_iter()
        .flat_map(|c| c.children_named(ns::SAML, "AudienceRestriction"))
        .flat_map(|r| r.children_named(ns::SAML, "Audience"))
        .map(|a| a.text().trim().to_string())
        .filter(|a| !a.is_empty())
        .collect()
}

/// At least one non-blank Audience.
fn audience_present(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    ensure(
        !audiences(s.a).is_empty(),
        Rule::AssertionAudienceMissing,
        || "AudienceRestriction/Audience missing or empty".into(),
    )
}

/// Every Audience is this SP.
fn audience_is_sp(s: &Signed<'_>, ctx: &Ctx<'_>) -> Check {
    let aud = audiences(s.a);
    ensure(
        aud.iter().all(|a| *a == ctx.policy.entity_id),
        Rule::AssertionAudienceMismatch,
        || format!("Audience {aud:?} is not {}", ctx.policy.entity_id),
    )
}

/// An AuthnStatement with content.
fn authn_statement_present(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    ensure(
        authn_statement(s.a).is_some(),
        Rule::AssertionAuthnStatementMissing,
        || "AuthnStatement missing or empty".into(),
    )
}

/// A non-blank AuthnContext/AuthnContextClassRef.
fn authn_context_present(s: &Signed<'_>, _: &Ctx<'_>) -> Check {
    ensure(
        !class_ref(s.a).is_empty(),
        Rule::AssertionAuthnContextMissing,
        || "AuthnContext/AuthnContextClassRef missing or empty".into(),
    )
}

/// The level stage: the SPID level the AuthnContextClassRef names (`AssertionLevelUnknown`
/// when it names none).
pub fn authn_level(a: &Element) -> Check<SpidLevel> {
    let cr = class_ref(a);
    SpidLevel::from_uri(&cr).ok_or_else(|| {
        Rejection::new(
            Rule::AssertionLevelUnknown,
            format!("{cr} is not a SPID level"),
        )
    })
}

/// The level satisfies the request's comparison and the SP's floor.
fn level_sufficient(g: &Granted<'_>, ctx: &Ctx<'_>) -> Check {
    let (p, level) = (g.pending, g.level);
    ensure(
        satisfies(p.level, p.comparison, level) && level >= ctx.policy.min_level,
        Rule::AssertionLevelInsufficient,
        || {
            format!(
                "obtained {level}, requested {} {} (floor {})",
                p.comparison.as_str(),
                p.level,
                ctx.policy.min_level
            )
        },
    )
}

/// Each AttributeStatement, in document order, holds an Attribute
/// (`AssertionAttributeStatementEmpty`) and each of its Attributes a non-blank AttributeValue
/// (`AssertionAttributeValueMissing`). One group, since the codes interleave per statement.
fn attribute_statements(g: &Granted<'_>, _: &Ctx<'_>) -> Check {
    for s in g.a.children_named(ns::SAML, "AttributeStatement") {
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

/// From a CIE IdP, the Assertion carries the whole eIDAS minimum set (name, familyName,
/// dateOfBirth, fiscalNumber), whatever was requested.
fn cie_minimum_set(g: &Granted<'_>, ctx: &Ctx<'_>) -> Check {
    if ctx.profile != IdpProfile::Cie {
        return Ok(());
    }
    let names: Vec<&str> =
        g.a.children_named(ns::SAML, "AttributeStatement")
            .flat_map(|s| s.children_named(ns::SAML, "Attribute"))
            .filter_map(|at| at.attr("Name"))
            .collect();
    match cie::MINIMUM_ATTRIBUTES.iter().find(|n| !names.contains(n)) {
        Some(missing) => Err(Rejection::new(
            Rule::AssertionCieAttributes,
            format!("the CIE Assertion lacks {missing} (the eIDAS minimum set)"),
        )),
        None => Ok(()),
    }
}

/// Avviso 18: with a `spid:Purpose` requested, the attributes are the whole set of an identity
/// type that Purpose admits (`spid_core::professional::identity_type_of`).
fn identity_type_set(g: &Granted<'_>, _: &Ctx<'_>) -> Check {
    if g.pending.purpose.is_none() {
        return Ok(());
    }
    let names: Vec<&str> =
        g.a.children_named(ns::SAML, "AttributeStatement")
            .flat_map(|s| s.children_named(ns::SAML, "Attribute"))
            .filter_map(|at| at.attr("Name"))
            .collect();
    spid_core::professional::identity_type_of(g.pending.purpose, &names)
        .map(|_| ())
        .map_err(|e| Rejection::new(Rule::AssertionAttributesIdentityType, e.to_string()))
}

/// The accepted login, read from the verified Assertion once every rule passed. A differing
/// attribute set is a warning, not a refusal.
pub fn identity(g: &Granted<'_>, policy: &Policy) -> Identity {
    let a = g.a;
    let name_id = name_id(a)
        .map(|n| n.text().trim().to_string())
        .unwrap_or_default();
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
        .find(|(i, _)| *i == g.pending.attribute_index)
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
    Identity {
        idp: g.pending.idp_entity_id.clone(),
        name_id,
        level: g.level,
        attributes,
        assertion_id: a.attr("ID").unwrap_or_default().to_string(),
        session_index: a
            .child(ns::SAML, "AuthnStatement")
            .and_then(|s| s.attr("SessionIndex"))
            .map(str::to_string),
        warnings,
    }
}
