//! Property: no edit of signed content ever changes the accepted identity. Random edits from
//! the IdP's faults vocabulary (`spid_idp::faults::Mutation`, with targets and values drawn
//! from small vocabularies) and raw edits of the serialised document are applied after signing
//! to an honest signed Response; the SP validator either refuses it or accepts it with exactly
//! the honest identity (IdP, NameID, level, attributes). The fuzz target `sp_validate` runs
//! the same property with edits before signing too; this keeps a short run in the test suite.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use spid_core::saml::binding;
use spid_core::saml::dsig::Credential;
use spid_core::saml::metadata::{EntityMetadata, IdpDescriptor};
use spid_core::saml::response::{sign_response, LoginParties, ResponseModel, SignParts};
use spid_core::saml::xml::{self, Element, Limits};
use spid_core::{Comparison, Rule, SpidLevel};
use spid_idp::faults::{self, Mutation, MutationCtx, Position, Precision, RawMutation, Target};
use spid_sp::validator::{
    self, Identity, PendingRequest, Policy, Rejection, ReplayCache, RequestLookup,
};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

const IDP: &str = "http://idp.test";
const SP: &str = "http://sp.test/metadata";
const ACS: &str = "http://sp.test/acs";
const REQ: &str = "_req1";

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_772_359_200, 0).single().unwrap()
}

struct Fixture {
    idp: Credential,
    signed: Element,
    metadata: Element,
    honest: Identity,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../certs");
        let idp = Credential::load(&dir, "idp").unwrap();
        let model = ResponseModel::fixture(
            &LoginParties {
                idp: IDP,
                sp: SP,
                acs: ACS,
                request_id: REQ,
            },
            now(),
        );
        let signed = sign_response(
            model.to_element(),
            &idp,
            SignParts::BOTH,
            Some(&idp.cert_base64()),
        )
        .unwrap();
        let md = spid_core::saml::metadata::build_idp(
            &spid_core::saml::metadata::IdpMetadataConfig {
                entity_id: IDP.into(),
                sso_url: format!("{IDP}/sso"),
                slo_url: format!("{IDP}/slo"),
                organization_name: "IdP".into(),
                organization_url: IDP.into(),
            },
            &idp,
        )
        .unwrap();
        let metadata = xml::parse(
            &md,
            &Limits {
                max_bytes: 1 << 20,
                ..Limits::default()
            },
        )
        .unwrap();
        let mut f = Fixture {
            idp,
            signed,
            metadata,
            honest: Identity {
                idp: String::new(),
                name_id: String::new(),
                level: SpidLevel::L1,
                attributes: vec![],
                assertion_id: String::new(),
                session_index: None,
                warnings: vec![],
            },
        };
        f.honest = validate(&f, &f.signed.to_xml()).expect("the honest Response is accepted");
        f
    })
}

struct OneRequest(Option<PendingRequest>);
impl RequestLookup for OneRequest {
    fn take(&mut self, id: &str) -> Result<PendingRequest, Rejection> {
        self.0
            .take()
            .filter(|p| p.id == id)
            .ok_or_else(|| Rejection::new(Rule::ResponseInResponseToUnknown, "unknown"))
    }
}

#[derive(Default)]
struct Cache(Mutex<HashSet<String>>);
impl ReplayCache for Cache {
    fn insert(&self, id: &str, _: DateTime<Utc>, _: DateTime<Utc>) -> bool {
        self.0.lock().unwrap().insert(id.into())
    }
}

fn validate(f: &Fixture, xml: &str) -> Result<Identity, Rejection> {
    let policy = Policy {
        entity_id: SP.into(),
        acs_url: ACS.into(),
        skew: Duration::seconds(60),
        min_level: SpidLevel::L2,
        attribute_services: vec![(0, vec!["spidCode".into(), "fiscalNumber".into()])],
    };
    let idps = [EntityMetadata {
        entity_id: IDP.into(),
        signing_certs: vec![f.idp.cert_der.clone()],
        idp: Some(IdpDescriptor::default()),
        sp: None,
    }];
    let pending = PendingRequest {
        id: REQ.into(),
        issue_instant: now(),
        idp_entity_id: IDP.into(),
        level: SpidLevel::L2,
        comparison: Comparison::Minimum,
        attribute_index: 0,
        purpose: None,
    };
    validator::validate(
        Some(&binding::encode_post(xml)),
        &policy,
        &idps,
        &mut OneRequest(Some(pending)),
        &Cache::default(),
        now(),
    )
}

const TARGETS: &[Target] = &[
    Target::Response,
    Target::ResponseIssuer,
    Target::Status,
    Target::StatusCode,
    Target::Assertion,
    Target::AssertionIssuer,
    Target::Subject,
    Target::NameId,
    Target::SubjectConfirmation,
    Target::SubjectConfirmationData,
    Target::Conditions,
    Target::Audience,
    Target::AuthnStatement,
    Target::AuthnContextClassRef,
    Target::AttributeStatement,
    Target::FirstAttribute,
    Target::FirstAttributeValue,
    Target::AssertionSignatureMethod,
    Target::AssertionDigestMethod,
];
const ATTRS: &[&str] = &[
    "ID",
    "InResponseTo",
    "Destination",
    "NameQualifier",
    "Name",
    "Format",
    "NotOnOrAfter",
    "xmlns:saml",
];
const VALUES: &[&str] = &[
    "",
    "_evil",
    "_subject ",
    "https://www.spid.gov.it/SpidL3",
    "TINIT-EVLEVL80A01H501U",
    IDP,
    "_assertion1",
];
const FRAGMENTS: &[&str] = &[
    "<saml:NameID>_evil</saml:NameID>",
    "<saml:Attribute Name=\"fiscalNumber\"><saml:AttributeValue>TINIT-EVLEVL80A01H501U</saml:AttributeValue></saml:Attribute>",
    "<saml:AttributeStatement><saml:Attribute Name=\"spidCode\"><saml:AttributeValue>SPID-EVIL</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>",
    "<saml:AuthnStatement AuthnInstant=\"2026-03-01T10:00:00Z\"><saml:AuthnContext><saml:AuthnContextClassRef>https://www.spid.gov.it/SpidL3</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>",
    "<saml:Subject><saml:NameID>_evil</saml:NameID></saml:Subject>",
];
const RAW_FROM: &[&str] = &[
    "_subject",
    "SpidL2",
    "TINIT-RSSMRA80A01H501U",
    "SPID-0000000001",
    "fiscalNumber",
    "<saml:NameID",
    "ID=\"_assertion1\"",
];

fn pick(v: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(v).prop_map(str::to_string)
}

fn target() -> impl Strategy<Value = Target> {
    proptest::sample::select(TARGETS)
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (target(), pick(ATTRS), pick(VALUES)).prop_map(|(target, name, value)| {
            Mutation::SetAttr {
                target,
                name,
                value,
            }
        }),
        (target(), pick(ATTRS)).prop_map(|(target, name)| Mutation::RemoveAttr { target, name }),
        (target(), pick(VALUES)).prop_map(|(target, value)| Mutation::SetText { target, value }),
        target().prop_map(|target| Mutation::Remove { target }),
        target().prop_map(|target| Mutation::Empty { target }),
        (target(), pick(ATTRS), -600i64..600).prop_map(|(target, name, offset)| {
            Mutation::SetInstant {
                target,
                name,
                offset,
                precision: Precision::Seconds,
            }
        }),
        target().prop_map(|target| Mutation::InjectComment { target }),
        Just(Mutation::DuplicateAssertion),
        (1u8..=8).prop_map(|variant| Mutation::Xsw { variant }),
        Just(Mutation::SignedForeignElement),
        (
            target(),
            proptest::sample::select(
                &[
                    Position::LastChild,
                    Position::FirstChild,
                    Position::Before,
                    Position::After
                ][..]
            ),
            pick(FRAGMENTS)
        )
            .prop_map(|(target, at, xml)| Mutation::InsertXml { target, at, xml }),
        (
            target(),
            pick(&["Assertion", "NameID", "Extra", "Attribute"])
        )
            .prop_map(|(target, local)| Mutation::Rename { target, local }),
    ]
}

fn raw() -> impl Strategy<Value = RawMutation> {
    (pick(RAW_FROM), pick(VALUES)).prop_map(|(from, to)| RawMutation::ReplaceFirst { from, to })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_edit_of_signed_content_changes_the_accepted_identity(
        edits in proptest::collection::vec(mutation(), 1..4),
        raws in proptest::collection::vec(raw(), 0..2),
    ) {
        let f = fixture();
        let ctx = MutationCtx { now: now(), signed_foreign: Some(&f.metadata) };
        let mut el = f.signed.clone();
        for m in &edits {
            let _ = faults::apply(&mut el, m, &ctx);
        }
        let mut text = el.to_xml();
        for r in &raws {
            if let Ok(t) = r.apply(&text) {
                text = t;
            }
        }
        if let Ok(id) = validate(f, &text) {
            let h = &f.honest;
            prop_assert_eq!(
                (&id.idp, &id.name_id, id.level, &id.attributes),
                (&h.idp, &h.name_id, h.level, &h.attributes),
                "edits {:?} raw {:?}", edits, raws
            );
        }
    }
}
