//! The ACS validator: ordered tables of small named rules, each with a stable [`Rule`] code.
//!
//! Order matters: the first failing rule is the one reported, so rules run from the outside
//! in. [`validate`] is a pipeline of stages and tables:
//!
//! 1. decode (binding rules) and parse (XML rules);
//! 2. [`envelope::ENVELOPE_RULES`] over the unverified Response: structure, IDs, signature
//!    placement and shape, Version, IssueInstant, InResponseTo;
//! 3. the [`RequestLookup`] takes the pending request the Response answers;
//! 4. [`envelope::RESPONSE_RULES`] over the Response and that request: instants, Destination,
//!    Status, Issuer, the Assertion's presence, signature and comments;
//! 5. the IdP's metadata certificates verify the signatures and reduce the document to what
//!    they cover, giving a [`VerifiedAssertion`];
//! 6. [`assertion::ASSERTION_RULES`] over the verified Assertion, up to its AuthnContext;
//! 7. the level stage reads the SPID level (`AssertionLevelUnknown`), and
//!    [`assertion::GRANT_RULES`] judge it and the AttributeStatement;
//! 8. the [`Identity`] is read from the verified Assertion and the [`ReplayCache`] records it.
//!
//! Envelope rules read the unverified document but can only refuse; everything that identifies
//! the user is read from [`VerifiedAssertion`], which only exists after the signatures verified
//! with the IdP metadata certificates and the document was reduced to what they cover.

pub mod assertion;
pub mod envelope;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Duration, Utc};
use spid_core::cie::IdpProfile;
use spid_core::errors::SpidError;
use spid_core::saml::binding;
use spid_core::saml::dsig::{self, DsigError};
use spid_core::saml::metadata::EntityMetadata;
use spid_core::saml::ns;
use spid_core::saml::xml::{self, Element, Limits, XmlError};
use spid_core::{clock::parse_saml_instant, Comparison, Rule, SpidLevel};

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
    /// The profile of the IdP the refused answer came from (SPID until the request it answers
    /// was looked up): it chooses the user message of an error code (CIE nr23 is the card).
    pub profile: IdpProfile,
}

impl Rejection {
    /// A rejection by `rule`.
    pub fn new(rule: Rule, detail: impl Into<String>) -> Self {
        Rejection {
            rule,
            detail: detail.into(),
            spid_error: None,
            profile: IdpProfile::Spid,
        }
    }

    /// The message the user is shown for the IdP's error code, in the IdP's profile.
    pub fn user_message(&self) -> Option<&'static str> {
        self.spid_error.map(|e| match self.profile {
            IdpProfile::Spid => e.user_message(),
            IdpProfile::Cie => spid_core::cie::user_message(e),
        })
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
    /// The Avviso 18 `spid:Purpose` requested, if any.
    pub purpose: Option<spid_core::professional::Purpose>,
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

/// A rule table entry: the codes the check may return (a group lists every code it can yield)
/// and the check, over input `I`.
pub type RuleFn<I> = (&'static [Rule], fn(&I, &Ctx<'_>) -> Check);
/// An entry of [`envelope::RESPONSE_RULES`] (any lifetime of its input).
pub type ResponseRule = (
    &'static [Rule],
    fn(&envelope::Answered<'_>, &Ctx<'_>) -> Check,
);
/// An entry of [`assertion::ASSERTION_RULES`] (any lifetime of its input).
pub type AssertionRule = (
    &'static [Rule],
    fn(&assertion::Signed<'_>, &Ctx<'_>) -> Check,
);
/// An entry of [`assertion::GRANT_RULES`] (any lifetime of its input).
pub type GrantRule = (
    &'static [Rule],
    fn(&assertion::Granted<'_>, &Ctx<'_>) -> Check,
);

/// What every rule may read besides its input: the SP's policy, the current time and the
/// profile of the IdP the request went to.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The SP policy.
    pub policy: &'a Policy,
    /// Now.
    pub now: DateTime<Utc>,
    /// SPID, or CIE for an IdP registered as CIE (known once the request is looked up; the
    /// envelope rules before it are the same for both).
    pub profile: IdpProfile,
}

/// Runs `rules` in order on `input`; the first refusal decides.
fn run<I>(rules: &[RuleFn<I>], input: &I, ctx: &Ctx<'_>) -> Check {
    for (codes, check) in rules {
        if let Err(r) = check(input, ctx) {
            debug_assert!(codes.contains(&r.rule), "{:?} not in {codes:?}", r.rule);
            return Err(r);
        }
    }
    Ok(())
}

/// Codes decided by the pipeline's stages rather than by a table: decoding, parsing, the IdP
/// and signature verification, the level read, and the replay cache. (The [`RequestLookup`]
/// decides `ResponseInResponseToUnknown` and `ResponseInResponseToReplayed` itself.)
pub const STAGE_RULES: &[Rule] = &[
    Rule::BindingMissingMessage,
    Rule::BindingBase64,
    Rule::BindingEncoding,
    Rule::BindingTooLarge,
    Rule::XmlMalformed,
    Rule::XmlDtd,
    Rule::XmlEntity,
    Rule::XmlProcessingInstruction,
    Rule::XmlLimits,
    Rule::SignatureNoTrustedCert,
    Rule::SignatureInvalid,
    Rule::SignatureAssertionMissing,
    Rule::AssertionLevelUnknown,
    Rule::AssertionReplayed,
];

/// Runs every rule on a POSTed `SAMLResponse` value, every IdP judged as SPID.
pub fn validate(
    saml_response: Option<&str>,
    policy: &Policy,
    idps: &[EntityMetadata],
    requests: &mut dyn RequestLookup,
    replay: &dyn ReplayCache,
    now: DateTime<Utc>,
) -> Check<Identity> {
    validate_profiled(saml_response, policy, idps, &[], requests, replay, now)
}

/// Runs every rule on a POSTed `SAMLResponse` value; an answer from an IdP whose entityID is
/// in `cie_idps` is judged by the CIE rules (Assertion Issuer Format absent or entity, the
/// eIDAS minimum attribute set).
pub fn validate_profiled(
    saml_response: Option<&str>,
    policy: &Policy,
    idps: &[EntityMetadata],
    cie_idps: &[String],
    requests: &mut dyn RequestLookup,
    replay: &dyn ReplayCache,
    now: DateTime<Utc>,
) -> Check<Identity> {
    let mut profile = IdpProfile::Spid;
    validate_as(
        saml_response,
        policy,
        idps,
        cie_idps,
        requests,
        replay,
        now,
        &mut profile,
    )
    .map_err(|r| Rejection { profile, ..r })
}

/// [`validate_profiled`], saying through `profile` which profile judged the answer.
#[allow(clippy::too_many_arguments)]
fn validate_as(
    saml_response: Option<&str>,
    policy: &Policy,
    idps: &[EntityMetadata],
    cie_idps: &[String],
    requests: &mut dyn RequestLookup,
    replay: &dyn ReplayCache,
    now: DateTime<Utc>,
    profile: &mut IdpProfile,
) -> Check<Identity> {
    let mut ctx = Ctx {
        policy,
        now,
        profile: IdpProfile::Spid,
    };
    // Binding.
    let b64 = saml_response
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Rejection::new(Rule::BindingMissingMessage, "no SAMLResponse"))?;
    let text = binding::decode_post(b64, MAX_SAML_RESPONSE)
        .map_err(|e| Rejection::new(e.rule(), e.to_string()))?;
    // XML.
    let doc = xml::parse(&text, &Limits::default())
        .map_err(|e| Rejection::new(xml_rule(&e), e.to_string()))?;
    // The unverified envelope (defeats wrapping before any crypto runs).
    run(envelope::ENVELOPE_RULES, &doc, &ctx)?;
    // ENVELOPE_RULES refused an empty InResponseTo.
    let pending = requests.take(doc.attr("InResponseTo").unwrap_or_default())?;
    if cie_idps.contains(&pending.idp_entity_id) {
        ctx.profile = IdpProfile::Cie;
        *profile = IdpProfile::Cie;
    }
    run(
        envelope::RESPONSE_RULES,
        &envelope::Answered {
            doc: &doc,
            pending: &pending,
        },
        &ctx,
    )?;
    // Cryptography, with the metadata certificate of the IdP the request went to.
    let idp = idps
        .iter()
        .find(|m| m.entity_id == pending.idp_entity_id)
        .ok_or_else(|| Rejection::new(Rule::SignatureNoTrustedCert, "IdP not registered"))?;
    // RESPONSE_RULES refused a missing Assertion and ENVELOPE_RULES an empty Assertion ID.
    let assertion_id = doc
        .child(ns::SAML, "Assertion")
        .and_then(|a| a.attr("ID"))
        .unwrap_or_default();
    let verified = verify(&text, idp, assertion_id)?;
    drop(doc);
    // The Assertion, from signed content only.
    let signed = assertion::Signed {
        a: verified.el(),
        pending: &pending,
        idp,
    };
    run(assertion::ASSERTION_RULES, &signed, &ctx)?;
    let granted = assertion::Granted {
        a: verified.el(),
        pending: &pending,
        level: assertion::authn_level(verified.el())?,
    };
    run(assertion::GRANT_RULES, &granted, &ctx)?;
    let id = assertion::identity(&granted, policy);
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

/// A required xs:dateTime attribute: `missing` when absent or blank, `malformed` when not a
/// UTC instant.
fn instant(v: Option<&str>, missing: Rule, malformed: Rule) -> Check<DateTime<Utc>> {
    let v = v.unwrap_or_default();
    ensure(!v.trim().is_empty(), missing, || "missing or empty".into())?;
    parse_saml_instant(v)
        .ok_or_else(|| Rejection::new(malformed, format!("{v:?} is not a UTC xs:dateTime")))
}

/// An instant attribute an earlier rule already required; `None` only when that rule refused.
fn parsed_instant(v: Option<&str>) -> Option<DateTime<Utc>> {
    v.and_then(parse_saml_instant)
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
