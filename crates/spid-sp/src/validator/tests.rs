//! The validator's unit tests: end-to-end cases and one honest-plus-one-edit case per rule.

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
    let key = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
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
        purpose: None,
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
    let signed = sign_response(r.to_element(), c, SignParts::BOTH, Some(&c.cert_base64())).unwrap();
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

fn run(value: &str, idps: &[EntityMetadata], cache: &Cache, now: DateTime<Utc>) -> Check<Identity> {
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

// ---------------------------------------------------------------------------------------------
// One unit test per rule: the honest Response plus one edit must be refused by exactly that rule.

/// One edit to the honest login.
#[derive(Clone, Copy)]
enum Edit {
    /// On the model, before rendering.
    Model(fn(&mut ResponseModel)),
    /// On the rendered Response tree, before signing (covered by the signatures).
    Unsigned(fn(&mut Element)),
    /// On the signed Response tree.
    Signed(fn(&mut Element)),
    /// On the signed XML text.
    Text(fn(String) -> String),
    /// On the POSTed SAMLResponse value.
    Value(fn(String) -> String),
    /// On the pending request.
    Pending(fn(&mut PendingRequest)),
    /// On the registered IdPs.
    Idps(fn(&mut Vec<EntityMetadata>)),
    /// The honest Response, already accepted once.
    Replayed,
    /// The IdP registered as CIE, the honest CIE Response (the eIDAS minimum set, no Format
    /// on either Issuer) edited on the model.
    Cie(fn(&mut ResponseModel)),
}

/// The child with local name `name` (panics: test edits name existing elements).
fn kid<'a>(e: &'a mut Element, name: &str) -> &'a mut Element {
    e.elements_mut().find(|c| c.local() == name).unwrap()
}

/// The element at `path` of local names below `e`.
fn at<'a>(e: &'a mut Element, path: &[&str]) -> &'a mut Element {
    path.iter().fold(e, |e, n| kid(e, n))
}

fn remove(e: &mut Element, name: &str) {
    e.children
        .retain(|n| !matches!(n, Node::Element(c) if c.local() == name));
}

fn nr<const N: u8>(m: &mut ResponseModel) {
    m.status = StatusModel::spid_error(SpidError(N));
    m.assertion = None;
}

const LATER: &str = "2026-03-01T10:05:00.000Z";
const EARLIER: &str = "2026-03-01T09:00:00.000Z";
const EVIL: &str = "http://evil.test";

use spid_core::saml::ns;
use spid_core::saml::xml::Node;

/// Per rule, an edit that must make the validator refuse with exactly it.
const RULE_CASES: &[(Rule, Edit)] = &[
    // Stages before the tables.
    (Rule::BindingMissingMessage, Edit::Value(|_| " ".into())),
    // CIE: the eIDAS minimum set, always.
    (
        Rule::AssertionCieAttributes,
        Edit::Cie(|m| {
            if let Some(a) = m.assertion.as_mut() {
                a.attributes.retain(|(n, _)| n != "dateOfBirth");
            }
        }),
    ),
    // Avviso 18: Purpose PG asked, the honest person-only attribute set answered.
    (
        Rule::AssertionAttributesIdentityType,
        Edit::Pending(|p| p.purpose = Some(spid_core::professional::Purpose::PG)),
    ),
    (Rule::BindingBase64, Edit::Value(|_| "%%%".into())),
    (
        Rule::BindingEncoding,
        Edit::Value(|_| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(b"<samlp:Response \xff\xfe/>")
        }),
    ),
    (
        Rule::BindingTooLarge,
        Edit::Value(|v| v.repeat(1 + 2 * MAX_SAML_RESPONSE / v.len())),
    ),
    (Rule::XmlMalformed, Edit::Text(|t| t[..t.len() - 3].into())),
    (
        Rule::XmlDtd,
        Edit::Text(|t| format!("<!DOCTYPE r [<!ELEMENT r ANY>]>{t}")),
    ),
    (
        Rule::XmlEntity,
        Edit::Text(|t| t.replacen("_subject", "&foo;", 1)),
    ),
    (
        Rule::XmlProcessingInstruction,
        Edit::Text(|t| format!("<?foo bar?>{t}")),
    ),
    (
        Rule::XmlLimits,
        Edit::Text(|t| {
            t.replacen(
                "_subject",
                &format!("{}{}", "<x>".repeat(300), "</x>".repeat(300)),
                1,
            )
        }),
    ),
    // ENVELOPE_RULES.
    (
        Rule::ResponseRoot,
        Edit::Signed(|e| e.qname = "samlp:ArtifactResponse".into()),
    ),
    (
        Rule::AssertionMultiple,
        Edit::Signed(|e| {
            let a = kid(e, "Assertion").clone();
            e.children.push(Node::Element(a));
        }),
    ),
    (
        Rule::ResponseUnexpectedElement,
        Edit::Signed(|e| {
            e.children.push(Node::Element(Element::new(
                "samlp:Extensions",
                Some(ns::SAMLP),
            )));
        }),
    ),
    (
        Rule::ResponseIdMissing,
        Edit::Signed(|e| {
            e.remove_attr("ID");
        }),
    ),
    (
        Rule::AssertionIdMissing,
        Edit::Signed(|e| {
            kid(e, "Assertion").set_attr("ID", " ");
        }),
    ),
    (
        Rule::SignaturePlacement,
        Edit::Signed(|e| {
            let s = kid(e, "Signature").clone();
            e.children.push(Node::Element(s));
        }),
    ),
    (
        Rule::SignatureTransform,
        Edit::Signed(|e| {
            at(e, &["Signature", "SignedInfo", "CanonicalizationMethod"]).set_attr(
                "Algorithm",
                "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
            );
        }),
    ),
    (
        Rule::SignatureAlgorithm,
        Edit::Signed(|e| {
            at(
                e,
                &["Assertion", "Signature", "SignedInfo", "SignatureMethod"],
            )
            .set_attr("Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1");
        }),
    ),
    (
        Rule::SignatureReference,
        Edit::Signed(|e| {
            at(e, &["Signature", "SignedInfo", "Reference"]).set_attr("URI", "#_assertion1");
        }),
    ),
    (
        Rule::ResponseVersion,
        Edit::Signed(|e| e.set_attr("Version", "1.1")),
    ),
    (
        Rule::ResponseIssueInstantMissing,
        Edit::Signed(|e| {
            e.remove_attr("IssueInstant");
        }),
    ),
    (
        Rule::ResponseIssueInstantMalformed,
        Edit::Signed(|e| e.set_attr("IssueInstant", "2026-03-01T10:00:00+01:00x")),
    ),
    (
        Rule::ResponseInResponseToMissing,
        Edit::Signed(|e| {
            e.remove_attr("InResponseTo");
        }),
    ),
    // The lookup.
    (
        Rule::ResponseInResponseToUnknown,
        Edit::Signed(|e| e.set_attr("InResponseTo", "_other")),
    ),
    // RESPONSE_RULES.
    (
        Rule::ResponseIssueInstantBeforeRequest,
        Edit::Pending(|p| p.issue_instant += Duration::minutes(2)),
    ),
    (
        Rule::ResponseIssueInstantFuture,
        Edit::Signed(|e| e.set_attr("IssueInstant", LATER)),
    ),
    (
        Rule::ResponseDestinationMissing,
        Edit::Signed(|e| {
            e.remove_attr("Destination");
        }),
    ),
    (
        Rule::ResponseDestinationMismatch,
        Edit::Signed(|e| e.set_attr("Destination", EVIL)),
    ),
    (
        Rule::ResponseStatusMissing,
        Edit::Signed(|e| remove(e, "Status")),
    ),
    (
        Rule::ResponseStatusNotSuccess,
        Edit::Signed(|e| {
            at(e, &["Status", "StatusCode"]).set_attr("Value", ns::STATUS_REQUESTER);
        }),
    ),
    (Rule::ResponseStatusNr19, Edit::Model(nr::<19>)),
    (Rule::ResponseStatusNr20, Edit::Model(nr::<20>)),
    (Rule::ResponseStatusNr21, Edit::Model(nr::<21>)),
    (Rule::ResponseStatusNr22, Edit::Model(nr::<22>)),
    (Rule::ResponseStatusNr23, Edit::Model(nr::<23>)),
    (Rule::ResponseStatusNr25, Edit::Model(nr::<25>)),
    (Rule::ResponseStatusNr30, Edit::Model(nr::<30>)),
    (
        Rule::ResponseIssuerMissing,
        Edit::Signed(|e| kid(e, "Issuer").set_text(" ")),
    ),
    (
        Rule::ResponseIssuerMismatch,
        Edit::Signed(|e| kid(e, "Issuer").set_text(EVIL)),
    ),
    (
        Rule::ResponseIssuerFormat,
        Edit::Signed(|e| kid(e, "Issuer").set_attr("Format", ns::NAMEID_TRANSIENT)),
    ),
    (
        Rule::AssertionMissing,
        Edit::Signed(|e| remove(e, "Assertion")),
    ),
    (
        Rule::SignatureAssertionMissing,
        Edit::Signed(|e| remove(kid(e, "Assertion"), "Signature")),
    ),
    (
        Rule::XmlComment,
        Edit::Signed(|e| {
            at(e, &["Assertion", "Subject", "NameID"])
                .children
                .push(Node::Comment("x".into()))
        }),
    ),
    // Trust and verification.
    (
        Rule::SignatureNoTrustedCert,
        Edit::Idps(|i| i[0].entity_id = EVIL.into()),
    ),
    (
        Rule::SignatureInvalid,
        Edit::Signed(|e| at(e, &["Assertion", "Subject", "NameID"]).set_text("_other")),
    ),
    // ASSERTION_RULES (before signing: the edits are covered by the signatures).
    (
        Rule::AssertionVersion,
        Edit::Unsigned(|e| kid(e, "Assertion").set_attr("Version", "1.0")),
    ),
    (
        Rule::AssertionIssueInstantMissing,
        Edit::Unsigned(|e| {
            kid(e, "Assertion").remove_attr("IssueInstant");
        }),
    ),
    (
        Rule::AssertionIssueInstantMalformed,
        Edit::Unsigned(|e| kid(e, "Assertion").set_attr("IssueInstant", "yesterday")),
    ),
    (
        Rule::AssertionIssueInstantBeforeRequest,
        Edit::Unsigned(|e| kid(e, "Assertion").set_attr("IssueInstant", EARLIER)),
    ),
    (
        Rule::AssertionIssueInstantFuture,
        Edit::Unsigned(|e| kid(e, "Assertion").set_attr("IssueInstant", LATER)),
    ),
    (
        Rule::AssertionIssuerMissing,
        Edit::Unsigned(|e| at(e, &["Assertion", "Issuer"]).set_text("")),
    ),
    (
        Rule::AssertionIssuerMismatch,
        Edit::Unsigned(|e| at(e, &["Assertion", "Issuer"]).set_text(EVIL)),
    ),
    (
        Rule::AssertionIssuerFormat,
        Edit::Unsigned(|e| {
            at(e, &["Assertion", "Issuer"]).remove_attr("Format");
        }),
    ),
    (
        Rule::AssertionSubjectMissing,
        Edit::Unsigned(|e| remove(kid(e, "Assertion"), "Subject")),
    ),
    (
        Rule::AssertionNameIdMissing,
        Edit::Unsigned(|e| at(e, &["Assertion", "Subject", "NameID"]).set_text(" ")),
    ),
    (
        Rule::AssertionNameIdFormat,
        Edit::Unsigned(|e| {
            at(e, &["Assertion", "Subject", "NameID"]).set_attr("Format", ns::NAMEID_ENTITY)
        }),
    ),
    (
        Rule::AssertionNameIdQualifier,
        Edit::Unsigned(|e| {
            at(e, &["Assertion", "Subject", "NameID"]).remove_attr("NameQualifier");
        }),
    ),
    (
        Rule::AssertionSubjectConfirmationMissing,
        Edit::Unsigned(|e| remove(at(e, &["Assertion", "Subject"]), "SubjectConfirmation")),
    ),
    (
        Rule::AssertionSubjectConfirmationMissing,
        Edit::Unsigned(|e| {
            remove(
                at(e, &["Assertion", "Subject", "SubjectConfirmation"]),
                "SubjectConfirmationData",
            )
        }),
    ),
    (
        Rule::AssertionSubjectConfirmationMethod,
        Edit::Unsigned(|e| {
            at(e, &["Assertion", "Subject", "SubjectConfirmation"])
                .set_attr("Method", "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key")
        }),
    ),
    (
        Rule::AssertionRecipientMissing,
        Edit::Unsigned(|e| {
            scd(e).remove_attr("Recipient");
        }),
    ),
    (
        Rule::AssertionRecipientMismatch,
        Edit::Unsigned(|e| scd(e).set_attr("Recipient", EVIL)),
    ),
    (
        Rule::AssertionInResponseToMissing,
        Edit::Unsigned(|e| {
            scd(e).remove_attr("InResponseTo");
        }),
    ),
    (
        Rule::AssertionInResponseToMismatch,
        Edit::Unsigned(|e| scd(e).set_attr("InResponseTo", "_other")),
    ),
    (
        Rule::AssertionConfirmationExpiryMissing,
        Edit::Unsigned(|e| {
            scd(e).remove_attr("NotOnOrAfter");
        }),
    ),
    (
        Rule::AssertionConfirmationExpiryMalformed,
        Edit::Unsigned(|e| scd(e).set_attr("NotOnOrAfter", "soon")),
    ),
    (
        Rule::AssertionConfirmationExpired,
        Edit::Unsigned(|e| scd(e).set_attr("NotOnOrAfter", EARLIER)),
    ),
    (
        Rule::AssertionConditionsMissing,
        Edit::Unsigned(|e| remove(kid(e, "Assertion"), "Conditions")),
    ),
    (
        Rule::AssertionNotBeforeMissing,
        Edit::Unsigned(|e| {
            at(e, &["Assertion", "Conditions"]).remove_attr("NotBefore");
        }),
    ),
    (
        Rule::AssertionNotBeforeMalformed,
        Edit::Unsigned(|e| at(e, &["Assertion", "Conditions"]).set_attr("NotBefore", "now")),
    ),
    (
        Rule::AssertionNotYetValid,
        Edit::Unsigned(|e| at(e, &["Assertion", "Conditions"]).set_attr("NotBefore", LATER)),
    ),
    (
        Rule::AssertionNotOnOrAfterMissing,
        Edit::Unsigned(|e| {
            at(e, &["Assertion", "Conditions"]).remove_attr("NotOnOrAfter");
        }),
    ),
    (
        Rule::AssertionNotOnOrAfterMalformed,
        Edit::Unsigned(|e| at(e, &["Assertion", "Conditions"]).set_attr("NotOnOrAfter", "later")),
    ),
    (
        Rule::AssertionExpired,
        Edit::Unsigned(|e| at(e, &["Assertion", "Conditions"]).set_attr("NotOnOrAfter", EARLIER)),
    ),
    (
        Rule::AssertionAudienceMissing,
        Edit::Unsigned(|e| {
            at(
                e,
                &["Assertion", "Conditions", "AudienceRestriction", "Audience"],
            )
            .set_text("")
        }),
    ),
    (
        Rule::AssertionAudienceMismatch,
        Edit::Unsigned(|e| {
            at(
                e,
                &["Assertion", "Conditions", "AudienceRestriction", "Audience"],
            )
            .set_text(EVIL)
        }),
    ),
    (
        Rule::AssertionAuthnStatementMissing,
        Edit::Unsigned(|e| remove(kid(e, "Assertion"), "AuthnStatement")),
    ),
    (
        Rule::AssertionAuthnContextMissing,
        Edit::Unsigned(|e| class_ref(e).set_text(" ")),
    ),
    // The level stage.
    (
        Rule::AssertionLevelUnknown,
        Edit::Unsigned(|e| class_ref(e).set_text("https://www.spid.gov.it/SpidL9")),
    ),
    // GRANT_RULES.
    (
        Rule::AssertionLevelInsufficient,
        Edit::Unsigned(|e| class_ref(e).set_text(SpidLevel::L1.uri())),
    ),
    (
        Rule::AssertionAttributeStatementEmpty,
        Edit::Unsigned(|e| remove(at(e, &["Assertion", "AttributeStatement"]), "Attribute")),
    ),
    (
        Rule::AssertionAttributeValueMissing,
        Edit::Unsigned(|e| {
            at(
                e,
                &[
                    "Assertion",
                    "AttributeStatement",
                    "Attribute",
                    "AttributeValue",
                ],
            )
            .set_text("")
        }),
    ),
    // The replay cache.
    (Rule::AssertionReplayed, Edit::Replayed),
];

fn scd(e: &mut Element) -> &mut Element {
    at(
        e,
        &[
            "Assertion",
            "Subject",
            "SubjectConfirmation",
            "SubjectConfirmationData",
        ],
    )
}

fn class_ref(e: &mut Element) -> &mut Element {
    at(
        e,
        &[
            "Assertion",
            "AuthnStatement",
            "AuthnContext",
            "AuthnContextClassRef",
        ],
    )
}

/// The validator's verdict on the honest login after `edit`.
fn verdict(c: &Credential, edit: Edit) -> Check<Identity> {
    let now = fixed_now();
    let mut model = response(now, StatusModel::success(), SpidLevel::L2);
    if let Edit::Model(f) = edit {
        f(&mut model);
    }
    if let Edit::Cie(f) = edit {
        model = cie_response(now);
        f(&mut model);
    }
    let mut el = model.to_element();
    if let Edit::Cie(_) = edit {
        cie_shape(&mut el);
    }
    if let Edit::Unsigned(f) = edit {
        f(&mut el);
    }
    let mut signed = sign_response(el, c, SignParts::BOTH, Some(&c.cert_base64())).unwrap();
    if let Edit::Signed(f) = edit {
        f(&mut signed);
    }
    let mut text = signed.to_xml();
    if let Edit::Text(f) = edit {
        text = f(text);
    }
    let mut value = spid_core::saml::binding::encode_post(&text);
    if let Edit::Value(f) = edit {
        value = f(value);
    }
    let mut p = pending(now);
    if let Edit::Pending(f) = edit {
        f(&mut p);
    }
    let mut idps = vec![idp(c)];
    if let Edit::Idps(f) = edit {
        f(&mut idps);
    }
    let cache = Cache::default();
    if let Edit::Replayed = edit {
        run(&value, &idps, &cache, now).unwrap();
    }
    let mut lookup = OneRequest(RefCell::new(Some(p)));
    let cie: Vec<String> = match edit {
        Edit::Cie(_) => vec![IDP.into()],
        _ => vec![],
    };
    validate_profiled(
        Some(&value),
        &policy(),
        &idps,
        &cie,
        &mut lookup,
        &cache,
        now,
    )
}

/// The honest Response of a CIE IdP: the four attributes of the eIDAS minimum set, a
/// SessionIndex.
fn cie_response(now: DateTime<Utc>) -> ResponseModel {
    let mut m = response(now, StatusModel::success(), SpidLevel::L3);
    if let Some(a) = m.assertion.as_mut() {
        a.session_index = Some("_session".into());
        a.attributes = vec![
            ("name".into(), "Luca".into()),
            ("familyName".into(), "Verdi".into()),
            ("dateOfBirth".into(), "1975-03-15".into()),
            ("fiscalNumber".into(), "TINIT-VRDLCU75C15L219T".into()),
        ];
    }
    m
}

/// The CIE shape: neither Issuer carries Format.
fn cie_shape(el: &mut Element) {
    kid(el, "Issuer").remove_attr("Format");
    if let Some(a) = el.elements_mut().find(|c| c.local() == "Assertion") {
        kid(a, "Issuer").remove_attr("Format");
    }
}

#[test]
fn a_cie_idp_is_judged_by_the_cie_rules_and_a_spid_idp_is_not() {
    let c = cred();
    let now = fixed_now();
    // Honest CIE: accepted from an IdP registered as CIE, with the four attributes.
    let id = verdict(&c, Edit::Cie(|_| {})).unwrap();
    assert_eq!(id.attributes.len(), 4);
    assert_eq!(id.level, SpidLevel::L3);
    // The same Response from an IdP registered as SPID: the Assertion Issuer needs Format.
    let mut el = cie_response(now).to_element();
    cie_shape(&mut el);
    let signed = sign_response(el, &c, SignParts::BOTH, Some(&c.cert_base64())).unwrap();
    let value = spid_core::saml::binding::encode_post(&signed.to_xml());
    let e = run(&value, &[idp(&c)], &Cache::default(), now).unwrap_err();
    assert_eq!(e.rule, Rule::AssertionIssuerFormat);
    // A CIE Response with Format on the Assertion Issuer (the documents' example) is
    // accepted too; any other Format is not.
    let mut el = cie_response(now).to_element();
    kid(&mut el, "Issuer").remove_attr("Format");
    for (format, ok) in [(ns::NAMEID_ENTITY, true), ("urn:other", false)] {
        let mut el = el.clone();
        at(&mut el, &["Assertion", "Issuer"]).set_attr("Format", format);
        let signed = sign_response(el, &c, SignParts::BOTH, Some(&c.cert_base64())).unwrap();
        let value = spid_core::saml::binding::encode_post(&signed.to_xml());
        let mut lookup = OneRequest(RefCell::new(Some(pending(now))));
        let r = validate_profiled(
            Some(&value),
            &policy(),
            &[idp(&c)],
            &[IDP.into()],
            &mut lookup,
            &Cache::default(),
            now,
        );
        assert_eq!(r.is_ok(), ok, "{format}: {r:?}");
    }
    // CIE nr23 is the card: the user message says so; from a SPID IdP it is the identity.
    let e = verdict(&c, Edit::Cie(nr::<23>)).unwrap_err();
    assert_eq!(
        (e.rule, e.profile),
        (Rule::ResponseStatusNr23, IdpProfile::Cie)
    );
    assert!(e
        .user_message()
        .unwrap()
        .contains("Carta d'Identità Elettronica"));
    let e = verdict(&c, Edit::Model(nr::<23>)).unwrap_err();
    assert_eq!(e.profile, IdpProfile::Spid);
    assert!(e.user_message().unwrap().contains("SPID"));
    // The level floor holds for CIE as for SPID.
    let e = verdict(
        &c,
        Edit::Cie(|m| {
            if let Some(a) = m.assertion.as_mut() {
                a.authn_context_class_ref = SpidLevel::L1.uri().into();
            }
        }),
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::AssertionLevelInsufficient);
}

/// Every code a table or stage of the validator can return.
fn validator_codes() -> Vec<Rule> {
    let tables = envelope::ENVELOPE_RULES
        .iter()
        .map(|(c, _)| *c)
        .chain(envelope::RESPONSE_RULES.iter().map(|(c, _)| *c))
        .chain(assertion::ASSERTION_RULES.iter().map(|(c, _)| *c))
        .chain(assertion::GRANT_RULES.iter().map(|(c, _)| *c));
    let mut all: Vec<Rule> = tables.flatten().chain(STAGE_RULES).copied().collect();
    all.sort_by_key(|r| r.code());
    all.dedup();
    all
}

#[test]
fn honest_login_passes_the_edit_pipeline() {
    let c = cred();
    assert!(verdict(&c, Edit::Pending(|_| {})).is_ok());
}

#[test]
fn each_rule_refuses_its_one_edit() {
    let c = cred();
    let wrong: Vec<String> = RULE_CASES
        .iter()
        .filter_map(|(rule, edit)| match verdict(&c, *edit) {
            Err(r) if r.rule == *rule => None,
            other => Some(format!(
                "{}: got {:?}",
                rule.code(),
                other.map(|i| i.name_id)
            )),
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every rule the tables and stages name has a case in RULE_CASES, and every case names one of
/// them (or the lookup's own `ResponseInResponseToUnknown`).
#[test]
fn every_validator_rule_has_a_unit_test() {
    let tested: Vec<Rule> = RULE_CASES.iter().map(|(r, _)| *r).collect();
    let missing: Vec<&str> = validator_codes()
        .into_iter()
        .filter(|r| !tested.contains(r))
        .map(|r| r.code())
        .collect();
    assert!(missing.is_empty(), "rules without a unit test: {missing:?}");
    let codes = validator_codes();
    for r in tested {
        assert!(
            codes.contains(&r) || r == Rule::ResponseInResponseToUnknown,
            "{} is tested but no table or stage returns it",
            r.code()
        );
        assert!(Rule::ALL.contains(&r));
    }
}
