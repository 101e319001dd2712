//! The SP validator end to end, structure-aware. The fuzzer chooses a fault plan from the
//! IdP's vocabulary (`spid_idp::faults`): edits before signing (limited to content that does
//! not carry the identity, so the signed identity stays the honest one), what is signed and
//! with which key, edits after signing and raw edits of the serialised document, with targets
//! and values from small vocabularies or its own bytes. Properties: the validator never
//! panics; it never accepts a Response signed with a key other than the IdP's, and whatever
//! it accepts carries exactly the honest identity (IdP, NameID, level, attributes).
#![no_main]
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use spid_core::saml::binding;
use spid_core::saml::response::{sign_response_with, SignParts};
use spid_core::saml::xml::Element;
use spid_fuzz::*;
use spid_idp::faults::{self, Mutation, MutationCtx, Position, Precision, RawMutation, Target};
use spid_sp::validator;
use std::sync::OnceLock;

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
    Target::AudienceRestriction,
    Target::Audience,
    Target::AuthnStatement,
    Target::AuthnContext,
    Target::AuthnContextClassRef,
    Target::AttributeStatement,
    Target::FirstAttribute,
    Target::FirstAttributeValue,
    Target::AssertionSignatureMethod,
    Target::AssertionDigestMethod,
];

/// Targets whose content is (or holds) the identity: never edited before signing.
fn carries_identity(t: Target) -> bool {
    matches!(
        t,
        Target::Subject
            | Target::NameId
            | Target::AuthnStatement
            | Target::AuthnContext
            | Target::AuthnContextClassRef
            | Target::AttributeStatement
            | Target::FirstAttribute
            | Target::FirstAttributeValue
    )
}

const ATTRS: &[&str] = &[
    "ID",
    "InResponseTo",
    "Destination",
    "Recipient",
    "IssueInstant",
    "NotBefore",
    "NotOnOrAfter",
    "AuthnInstant",
    "Version",
    "Format",
    "NameQualifier",
    "Name",
    "Value",
    "Method",
    "Algorithm",
    "xmlns",
    "xmlns:saml",
    "xmlns:ds",
    "SessionIndex",
];

const VALUES: &[&str] = &[
    "",
    " ",
    "_evil",
    "_subject",
    "_subject ",
    "_assertion1",
    "_resp1",
    REQ,
    IDP,
    SP,
    ACS,
    "https://www.spid.gov.it/SpidL1",
    "https://www.spid.gov.it/SpidL2",
    "https://www.spid.gov.it/SpidL3",
    "urn:oasis:names:tc:SAML:2.0:status:Success",
    "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "2026-03-01T10:00:00Z",
    "2099-01-01T00:00:00Z",
    "1.0",
    "2.0",
    "TINIT-EVLEVL80A01H501U",
    "&lt;x&gt;",
    "urn:oasis:names:tc:SAML:2.0:assertion",
];

/// Fragments an edit may insert before signing: nothing that reads as identity.
const SAFE_FRAGMENTS: &[&str] = &[
    "<saml:Extra/>",
    "<samlp:Extensions><x:y xmlns:x=\"urn:x\"/></samlp:Extensions>",
    "<!-- c -->",
    "text<saml:Extra/>",
];

/// Fragments an edit may insert after signing: identity in every shape.
const EVIL_FRAGMENTS: &[&str] = &[
    "<saml:NameID Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:transient\" NameQualifier=\"http://idp.test\">_evil</saml:NameID>",
    "<saml:AttributeStatement><saml:Attribute Name=\"fiscalNumber\"><saml:AttributeValue>TINIT-EVLEVL80A01H501U</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>",
    "<saml:Attribute Name=\"fiscalNumber\"><saml:AttributeValue>TINIT-EVLEVL80A01H501U</saml:AttributeValue></saml:Attribute>",
    "<saml:AttributeValue>evil</saml:AttributeValue>",
    "<saml:AuthnStatement AuthnInstant=\"2026-03-01T10:00:00Z\"><saml:AuthnContext><saml:AuthnContextClassRef>https://www.spid.gov.it/SpidL3</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>",
    "<saml:Assertion ID=\"_evil\" Version=\"2.0\" IssueInstant=\"2026-03-01T10:00:00Z\"><saml:Issuer>http://idp.test</saml:Issuer><saml:Subject><saml:NameID>_evil</saml:NameID></saml:Subject></saml:Assertion>",
    "<saml:Subject><saml:NameID>_evil</saml:NameID></saml:Subject>",
    "<saml:Extra/>",
];

/// Anchors a raw edit may replace.
const RAW_FROM: &[&str] = &[
    "_subject",
    "SpidL2",
    "TINIT-RSSMRA80A01H501U",
    "SPID-0000000001",
    "fiscalNumber",
    "<saml:NameID",
    "</saml:NameID>",
    "<saml:Assertion",
    "ds:Signature",
    "xmlns:saml=",
    "saml:",
    "ID=\"_assertion1\"",
    "Name=\"spidCode\"",
];

#[derive(Debug, Arbitrary)]
enum Text {
    Vocab(u8),
    Own(String),
}

impl Text {
    fn get(&self, vocab: &[&str]) -> String {
        match self {
            Text::Vocab(i) => vocab[*i as usize % vocab.len()].to_string(),
            Text::Own(s) => s.clone(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Edit {
    SetAttr {
        target: u8,
        name: Text,
        value: Text,
    },
    RemoveAttr {
        target: u8,
        name: Text,
    },
    SetText {
        target: u8,
        value: Text,
    },
    Remove {
        target: u8,
    },
    Empty {
        target: u8,
    },
    SetInstant {
        target: u8,
        name: Text,
        offset: i16,
        precision: u8,
    },
    RemoveAttrEverywhere {
        element: Text,
        name: Text,
    },
    InjectComment {
        target: u8,
    },
    DuplicateAssertion,
    Xsw {
        variant: u8,
    },
    XsltTransform,
    SignedForeignElement,
    InsertXml {
        target: u8,
        at: u8,
        fragment: Text,
    },
    Rename {
        target: u8,
        local: Text,
    },
}

const ELEMENTS: &[&str] = &[
    "Assertion",
    "Response",
    "Signature",
    "Reference",
    "Issuer",
    "Subject",
    "Conditions",
    "AuthnStatement",
    "SubjectConfirmationData",
];
const LOCALS: &[&str] = &[
    "Assertion",
    "Response",
    "LogoutResponse",
    "NameID",
    "Extra",
    "EncryptedAssertion",
    "Attribute",
];

fn target(i: u8) -> Target {
    TARGETS[i as usize % TARGETS.len()]
}

impl Edit {
    /// The mutation, or None when `pre_sign` and the edit could change the signed identity.
    fn mutation(&self, pre_sign: bool) -> Option<Mutation> {
        let frags = if pre_sign {
            SAFE_FRAGMENTS
        } else {
            EVIL_FRAGMENTS
        };
        let t = |i: &u8| {
            let t = target(*i);
            (!(pre_sign && carries_identity(t))).then_some(t)
        };
        Some(match self {
            Edit::SetAttr {
                target,
                name,
                value,
            } => Mutation::SetAttr {
                target: t(target)?,
                name: name.get(ATTRS),
                value: value.get(VALUES),
            },
            Edit::RemoveAttr { target, name } => Mutation::RemoveAttr {
                target: t(target)?,
                name: name.get(ATTRS),
            },
            Edit::SetText { target, value } => Mutation::SetText {
                target: t(target)?,
                value: value.get(VALUES),
            },
            Edit::Remove { target } => Mutation::Remove { target: t(target)? },
            Edit::Empty { target } => Mutation::Empty { target: t(target)? },
            Edit::SetInstant {
                target,
                name,
                offset,
                precision,
            } => Mutation::SetInstant {
                target: t(target)?,
                name: name.get(ATTRS),
                offset: *offset as i64,
                precision: [Precision::Millis, Precision::Micros, Precision::Seconds]
                    [*precision as usize % 3],
            },
            Edit::RemoveAttrEverywhere { element, name } => {
                let element = element.get(ELEMENTS);
                if pre_sign && matches!(element.as_str(), "Attribute" | "AttributeValue" | "NameID")
                {
                    return None;
                }
                Mutation::RemoveAttrEverywhere {
                    element,
                    name: name.get(ATTRS),
                }
            }
            // Canonicalisation drops comments: the signed text stays the honest one.
            Edit::InjectComment { target } => Mutation::InjectComment {
                target: self::target(*target),
            },
            Edit::DuplicateAssertion => Mutation::DuplicateAssertion,
            Edit::Xsw { variant } => Mutation::Xsw {
                variant: 1 + variant % 8,
            },
            Edit::XsltTransform => Mutation::XsltTransform,
            Edit::SignedForeignElement => Mutation::SignedForeignElement,
            Edit::InsertXml {
                target,
                at,
                fragment,
            } => {
                let xml = match fragment {
                    Text::Own(_) if pre_sign => return None,
                    f => f.get(frags),
                };
                Mutation::InsertXml {
                    target: t(target)?,
                    at: [
                        Position::LastChild,
                        Position::FirstChild,
                        Position::Before,
                        Position::After,
                    ][*at as usize % 4],
                    xml,
                }
            }
            Edit::Rename { target, local } => Mutation::Rename {
                target: t(target)?,
                local: local.get(LOCALS),
            },
        })
    }
}

#[derive(Debug, Arbitrary)]
enum Raw {
    ReplaceFirst { from: Text, to: Text },
    Append { text: String },
    XmlDeclaration,
}

#[derive(Debug, Arbitrary)]
struct Plan {
    pre_sign: Vec<Edit>,
    sign_assertion: bool,
    sign_response: bool,
    foreign_key: bool,
    keyinfo: u8,
    post_sign: Vec<Edit>,
    raw: Vec<Raw>,
}

struct Honest {
    identity: (String, String, spid_core::SpidLevel, Vec<(String, String)>),
}

fn honest() -> &'static Honest {
    static H: OnceLock<Honest> = OnceLock::new();
    H.get_or_init(|| {
        let b64 = binding::encode_post(&honest_signed().to_xml());
        let id = run(&b64).expect("the honest Response is accepted");
        Honest {
            identity: (id.idp, id.name_id, id.level, id.attributes),
        }
    })
}

fn run(b64: &str) -> Result<validator::Identity, validator::Rejection> {
    validator::validate(
        Some(b64),
        &policy(),
        &idps(),
        &mut OneRequest(Some(pending())),
        &Cache::default(),
        now(),
    )
}

fn unchanged_sign(p: &Plan) -> bool {
    p.pre_sign.is_empty()
        && p.sign_assertion
        && p.sign_response
        && !p.foreign_key
        && p.keyinfo % 4 == 0
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(plan) = Plan::arbitrary(&mut u) else {
        return;
    };
    if plan.pre_sign.len() > 4 || plan.post_sign.len() > 6 || plan.raw.len() > 3 {
        return;
    }
    let honest = honest();
    let ctx = MutationCtx {
        now: now(),
        signed_foreign: Some(idp_metadata_element()),
    };
    let c = creds();
    let mut el: Element = if unchanged_sign(&plan) {
        honest_signed().clone()
    } else {
        let mut el = honest_model().to_element();
        for e in &plan.pre_sign {
            if let Some(m) = e.mutation(true) {
                let _ = faults::apply(&mut el, &m, &ctx);
            }
        }
        let cred = if plan.foreign_key { &c.foreign } else { &c.idp };
        let keyinfo = match plan.keyinfo % 4 {
            0 => Some(cred.cert_base64()),
            1 => Some(c.idp.cert_base64()),
            2 => Some(c.foreign.cert_base64()),
            _ => None,
        };
        let parts = SignParts {
            assertion: plan.sign_assertion,
            response: plan.sign_response,
        };
        if parts != SignParts::NONE {
            match sign_response_with(el, cred, parts, keyinfo.as_deref(), Default::default()) {
                Ok(e) => e,
                Err(_) => return,
            }
        } else {
            el
        }
    };
    for e in &plan.post_sign {
        if let Some(m) = e.mutation(false) {
            let _ = faults::apply(&mut el, &m, &ctx);
        }
    }
    let mut xml = el.to_xml();
    for r in &plan.raw {
        let r = match r {
            Raw::ReplaceFirst { from, to } => RawMutation::ReplaceFirst {
                from: from.get(RAW_FROM),
                to: to.get(VALUES),
            },
            Raw::Append { text } => RawMutation::Append { text: text.clone() },
            Raw::XmlDeclaration => RawMutation::XmlDeclaration,
        };
        if let Ok(x) = r.apply(&xml) {
            xml = x;
        }
    }
    if let Ok(id) = run(&binding::encode_post(&xml)) {
        assert!(
            !plan.foreign_key && (plan.sign_assertion || plan.sign_response),
            "accepted a Response the IdP's key did not sign: {plan:?}\n{xml}"
        );
        let got = (id.idp, id.name_id, id.level, id.attributes);
        assert_eq!(
            got, honest.identity,
            "accepted another identity: {plan:?}\n{xml}"
        );
    }
});
