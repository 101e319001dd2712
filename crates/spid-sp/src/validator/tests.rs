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
