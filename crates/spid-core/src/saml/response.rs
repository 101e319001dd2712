//! The SAML Response model an IdP builds, rendered to an [`Element`] tree so that faults can be
//! applied to the tree before and after signing.

use super::dsig::{self, Credential, DsigError};
use super::ns;
use super::xml::{self, Element, Limits};
use crate::attributes;
use crate::clock::saml_instant;
use crate::errors::SpidError;
use chrono::{DateTime, Utc};

/// The Response status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusModel {
    /// Top-level StatusCode Value.
    pub code: String,
    /// Nested StatusCode Value.
    pub sub_code: Option<String>,
    /// StatusMessage text.
    pub message: Option<String>,
}

impl StatusModel {
    /// `Success`.
    pub fn success() -> Self {
        StatusModel {
            code: ns::STATUS_SUCCESS.into(),
            sub_code: None,
            message: None,
        }
    }

    /// The status SPID prescribes for error `e` (e.g. Responder/AuthnFailed "ErrorCode nr20").
    pub fn spid_error(e: SpidError) -> Self {
        let (code, sub) = match e.channel() {
            crate::errors::ErrorChannel::Response { status, sub_status } => (status, sub_status),
            crate::errors::ErrorChannel::UserPage { .. } => (ns::STATUS_REQUESTER, None),
        };
        StatusModel {
            code: code.into(),
            sub_code: sub.map(str::to_string),
            message: Some(e.status_message()),
        }
    }
}

/// The Assertion an IdP issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionModel {
    /// Assertion ID.
    pub id: String,
    /// IssueInstant.
    pub issue_instant: DateTime<Utc>,
    /// Issuer (IdP entityID).
    pub issuer: String,
    /// Transient NameID value.
    pub name_id: String,
    /// NameID NameQualifier (IdP entityID).
    pub name_qualifier: String,
    /// SubjectConfirmationData Recipient (ACS URL).
    pub recipient: String,
    /// SubjectConfirmationData InResponseTo.
    pub in_response_to: String,
    /// SubjectConfirmationData NotOnOrAfter.
    pub confirmation_not_on_or_after: DateTime<Utc>,
    /// Conditions NotBefore.
    pub not_before: DateTime<Utc>,
    /// Conditions NotOnOrAfter.
    pub not_on_or_after: DateTime<Utc>,
    /// Audience (SP entityID).
    pub audience: String,
    /// AuthnInstant.
    pub authn_instant: DateTime<Utc>,
    /// SessionIndex (SPID: only when L1 was requested).
    pub session_index: Option<String>,
    /// AuthnContextClassRef.
    pub authn_context_class_ref: String,
    /// Attributes (name, value), in order.
    pub attributes: Vec<(String, String)>,
}

/// The Response an IdP sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseModel {
    /// Response ID.
    pub id: String,
    /// IssueInstant.
    pub issue_instant: DateTime<Utc>,
    /// InResponseTo (the AuthnRequest ID).
    pub in_response_to: String,
    /// Destination (ACS URL).
    pub destination: String,
    /// Issuer (IdP entityID).
    pub issuer: String,
    /// Status.
    pub status: StatusModel,
    /// The Assertion (absent on error responses).
    pub assertion: Option<AssertionModel>,
}

fn issuer(value: &str) -> Element {
    Element::new("saml:Issuer", Some(ns::SAML))
        .with_attr("Format", ns::NAMEID_ENTITY)
        .with_attr("NameQualifier", value)
        .with_text(value)
}

impl AssertionModel {
    /// Renders the Assertion (unsigned).
    pub fn to_element(&self) -> Element {
        let s = |q: &str| Element::new(q, Some(ns::SAML));
        let subject = s("saml:Subject")
            .with_child(
                s("saml:NameID")
                    .with_attr("Format", ns::NAMEID_TRANSIENT)
                    .with_attr("NameQualifier", &self.name_qualifier)
                    .with_text(&self.name_id),
            )
            .with_child(
                s("saml:SubjectConfirmation")
                    .with_attr("Method", ns::CM_BEARER)
                    .with_child(
                        s("saml:SubjectConfirmationData")
                            .with_attr("InResponseTo", &self.in_response_to)
                            .with_attr(
                                "NotOnOrAfter",
                                saml_instant(self.confirmation_not_on_or_after),
                            )
                            .with_attr("Recipient", &self.recipient),
                    ),
            );
        let conditions = s("saml:Conditions")
            .with_attr("NotBefore", saml_instant(self.not_before))
            .with_attr("NotOnOrAfter", saml_instant(self.not_on_or_after))
            .with_child(
                s("saml:AudienceRestriction")
                    .with_child(s("saml:Audience").with_text(&self.audience)),
            );
        let mut authn =
            s("saml:AuthnStatement").with_attr("AuthnInstant", saml_instant(self.authn_instant));
        if let Some(si) = &self.session_index {
            authn = authn.with_attr("SessionIndex", si);
        }
        let authn =
            authn.with_child(s("saml:AuthnContext").with_child(
                s("saml:AuthnContextClassRef").with_text(&self.authn_context_class_ref),
            ));
        let mut el = s("saml:Assertion")
            .with_attr("xmlns:saml", ns::SAML)
            .with_attr("xmlns:xs", ns::XS)
            .with_attr("xmlns:xsi", ns::XSI)
            .with_attr("ID", &self.id)
            .with_attr("Version", "2.0")
            .with_attr("IssueInstant", saml_instant(self.issue_instant))
            .with_child(issuer(&self.issuer))
            .with_child(subject)
            .with_child(conditions)
            .with_child(authn);
        if !self.attributes.is_empty() {
            let mut st = s("saml:AttributeStatement");
            for (name, value) in &self.attributes {
                st = st.with_child(
                    s("saml:Attribute")
                        .with_attr("Name", name)
                        .with_attr("NameFormat", ns::ATTRNAME_BASIC)
                        .with_child(
                            s("saml:AttributeValue")
                                .with_attr("xsi:type", attributes::xsi_type(name))
                                .with_text(value),
                        ),
                );
            }
            el = el.with_child(st);
        }
        el
    }
}

/// The parties of a fixture login ([`ResponseModel::fixture`]).
#[derive(Debug, Clone, Copy)]
pub struct LoginParties<'a> {
    /// The IdP's entityID.
    pub idp: &'a str,
    /// The SP's entityID (the Audience).
    pub sp: &'a str,
    /// The SP's ACS URL (Destination, Recipient).
    pub acs: &'a str,
    /// The AuthnRequest ID answered.
    pub request_id: &'a str,
}

impl ResponseModel {
    /// An honest SpidL2 login Response for fixtures (tests, benches, fuzzing): fixed ids,
    /// valid for five minutes from `now`, no SessionIndex (SPID: L1 only), two attributes.
    pub fn fixture(p: &LoginParties<'_>, now: DateTime<Utc>) -> ResponseModel {
        ResponseModel {
            id: "_resp1".into(),
            issue_instant: now,
            in_response_to: p.request_id.into(),
            destination: p.acs.into(),
            issuer: p.idp.into(),
            status: StatusModel::success(),
            assertion: Some(AssertionModel {
                id: "_assertion1".into(),
                issue_instant: now,
                issuer: p.idp.into(),
                name_id: "_subject".into(),
                name_qualifier: p.idp.into(),
                recipient: p.acs.into(),
                in_response_to: p.request_id.into(),
                confirmation_not_on_or_after: now + chrono::Duration::minutes(5),
                not_before: now,
                not_on_or_after: now + chrono::Duration::minutes(5),
                audience: p.sp.into(),
                authn_instant: now,
                session_index: None,
                authn_context_class_ref: crate::SpidLevel::L2.uri().into(),
                attributes: vec![
                    ("spidCode".into(), "SPID-0000000001".into()),
                    ("fiscalNumber".into(), "TINIT-RSSMRA80A01H501U".into()),
                ],
            }),
        }
    }

    /// Renders the Response (unsigned).
    pub fn to_element(&self) -> Element {
        let p = |q: &str| Element::new(q, Some(ns::SAMLP));
        let mut code = p("samlp:StatusCode").with_attr("Value", &self.status.code);
        if let Some(sub) = &self.status.sub_code {
            code = code.with_child(p("samlp:StatusCode").with_attr("Value", sub));
        }
        let mut status = p("samlp:Status").with_child(code);
        if let Some(m) = &self.status.message {
            status = status.with_child(p("samlp:StatusMessage").with_text(m));
        }
        let mut el = p("samlp:Response")
            .with_attr("xmlns:samlp", ns::SAMLP)
            .with_attr("xmlns:saml", ns::SAML)
            .with_attr("ID", &self.id)
            .with_attr("Version", "2.0")
            .with_attr("IssueInstant", saml_instant(self.issue_instant))
            .with_attr("InResponseTo", &self.in_response_to)
            .with_attr("Destination", &self.destination)
            .with_child(issuer(&self.issuer))
            .with_child(status);
        if let Some(a) = &self.assertion {
            el = el.with_child(a.to_element());
        }
        el
    }
}

/// Which parts of a Response to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignParts {
    /// Sign the Assertion (SPID: mandatory).
    pub assertion: bool,
    /// Sign the Response (SPID: allowed).
    pub response: bool,
}

impl SignParts {
    /// Both Assertion and Response.
    pub const BOTH: SignParts = SignParts {
        assertion: true,
        response: true,
    };
    /// Nothing.
    pub const NONE: SignParts = SignParts {
        assertion: false,
        response: false,
    };
}

/// Signs a rendered Response: the Assertion first, then (in a second pass, since xmlsec signs
/// the first template in document order) the Response. `keyinfo` is the base64 certificate
/// put in KeyInfo (None: no KeyInfo). Returns the signed document re-parsed as a tree, so
/// post-signature mutations can follow.
pub fn sign_response(
    response: Element,
    cred: &Credential,
    parts: SignParts,
    keyinfo: Option<&str>,
) -> Result<Element, DsigError> {
    sign_response_with(response, cred, parts, keyinfo, dsig::Algorithms::default())
}

/// [`sign_response`] with the given algorithms. Every Assertion child is signed (a fault plan
/// may have duplicated one before signing), last first: xmlsec signs the first template in
/// document order, so each new template, placed before the signed ones, is the one it signs;
/// the Response's own template, right after its Issuer, comes last.
pub fn sign_response_with(
    response: Element,
    cred: &Credential,
    parts: SignParts,
    keyinfo: Option<&str>,
    algs: dsig::Algorithms,
) -> Result<Element, DsigError> {
    let (response, unread) = sign_parts(response, cred, parts, keyinfo, algs)?;
    // A preview is only ever serialised, and a tree serialises as its re-reading does.
    if unread && !dsig::in_preview() {
        return reparse(&response.to_xml());
    }
    Ok(response)
}

/// [`sign_response_with`] for a Response that is only serialised next (no post-signature
/// mutation): the document as [`sign_response_with`]'s tree would serialise, without reading
/// the signed tree back from its serialisation.
pub fn sign_response_to_xml(
    response: Element,
    cred: &Credential,
    parts: SignParts,
    keyinfo: Option<&str>,
    algs: dsig::Algorithms,
) -> Result<String, DsigError> {
    Ok(sign_parts(response, cred, parts, keyinfo, algs)?.0.to_xml())
}

/// Reads a signed document back as a tree (a fault plan may nest deeper than any SP should
/// accept: xml-deep-nesting).
fn reparse(s: &str) -> Result<Element, DsigError> {
    xml::parse(
        s,
        &Limits {
            max_bytes: 4 << 20,
            max_depth: 1024,
            max_elements: 1 << 20,
            ..Limits::default()
        },
    )
    .map_err(|e| DsigError::Sign(e.to_string()))
}

/// The signing of [`sign_response_with`]; `true` with a part signed on the tree and the tree
/// not yet re-read from its serialisation.
fn sign_parts(
    mut response: Element,
    cred: &Credential,
    parts: SignParts,
    keyinfo: Option<&str>,
    algs: dsig::Algorithms,
) -> Result<(Element, bool), DsigError> {
    // Signed on the tree and not yet re-read from its serialisation.
    let mut unread = false;
    if parts.assertion {
        let n = response.children_named(ns::SAML, "Assertion").count();
        for k in (0..n).rev() {
            let target = response
                .children
                .iter()
                .enumerate()
                .filter(|(_, c)| matches!(c, xml::Node::Element(e) if e.is(ns::SAML, "Assertion")))
                .nth(k)
                .map(|(i, _)| i);
            let mut at = None;
            if let Some(i) = target {
                if let xml::Node::Element(a) = &mut response.children[i] {
                    at = Some((vec![i], dsig::insert_template_at(a, keyinfo, algs)));
                }
            }
            let (r, raw) = sign_step(response, at, cred, algs)?;
            (response, unread) = (r, unread || raw);
        }
    }
    if parts.response {
        let sig = dsig::insert_template_at(&mut response, keyinfo, algs);
        let (r, raw) = sign_step(response, Some((Vec::new(), sig)), cred, algs)?;
        (response, unread) = (r, unread || raw);
    }
    Ok((response, unread))
}

/// Signs the template just inserted at `at` (the target's child-index path, the template's
/// index in it): on the tree ([`dsig::sign_in_tree`]) when it handles the document, else
/// through xmlsec (the first template in document order, the document re-read from its
/// output). `true` with the tree signed in place and not yet re-read: the caller re-reads it
/// once at the end, which gives the tree xmlsec's path gives (the canonical forms of the
/// signatures still to make are the same either way). With debug assertions, or
/// `SPID_DSIG_CROSSCHECK` set, the tree's result is checked against xmlsec's, byte for byte.
fn sign_step(
    mut response: Element,
    at: Option<(Vec<usize>, usize)>,
    cred: &Credential,
    algs: dsig::Algorithms,
) -> Result<(Element, bool), DsigError> {
    // A preview's SignatureValues are markers: nothing for xmlsec to agree with.
    let before = (crosscheck() && !dsig::in_preview()).then(|| response.to_xml());
    if let Some((path, sig)) = at {
        match dsig::sign_in_tree(&mut response, &path, sig, cred, algs) {
            Some(Ok(())) => {
                if let Some(before) = before {
                    let ours = reparse(&response.to_xml())?;
                    let theirs = reparse(&dsig::sign_first_template_with(&before, cred)?)?;
                    if theirs.to_xml() != ours.to_xml() {
                        return Err(DsigError::Sign(
                            "the tree signer and xmlsec disagree on this document".into(),
                        ));
                    }
                }
                return Ok((response, true));
            }
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    let signed = dsig::sign_first_template_with(&response.to_xml(), cred)?;
    Ok((reparse(&signed)?, false))
}

/// Whether [`sign_step`] checks the tree signer against xmlsec.
fn crosscheck() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| cfg!(debug_assertions) || std::env::var_os("SPID_DSIG_CROSSCHECK").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::dsig::tests::test_credential;
    use crate::saml::dsig::{DigestMethod, SignatureMethod};

    fn fixture() -> Element {
        let p = LoginParties {
            idp: "https://idp.example/",
            sp: "https://sp.example/",
            acs: "https://sp.example/acs",
            request_id: "_req1",
        };
        ResponseModel::fixture(&p, crate::clock::now()).to_element()
    }

    /// xmlsec's result for the same signing: each template signed as the first in document
    /// order, the document re-read between signatures.
    fn through_xmlsec(
        mut r: Element,
        cred: &Credential,
        keyinfo: Option<&str>,
        algs: dsig::Algorithms,
    ) -> String {
        let lim = Limits {
            max_bytes: 4 << 20,
            ..Limits::default()
        };
        if let Some(a) = r.child_mut(ns::SAML, "Assertion") {
            dsig::insert_template_with(a, keyinfo, algs);
        }
        r = xml::parse(
            &dsig::sign_first_template_with(&r.to_xml(), cred).unwrap(),
            &lim,
        )
        .unwrap();
        dsig::insert_template_with(&mut r, keyinfo, algs);
        xml::parse(
            &dsig::sign_first_template_with(&r.to_xml(), cred).unwrap(),
            &lim,
        )
        .unwrap()
        .to_xml()
    }

    #[test]
    fn a_preview_makes_no_signature_but_reuses_the_ones_made() {
        let cred = test_credential("preview");
        let both = SignParts {
            assertion: true,
            response: true,
        };
        let value = |el: &Element, which: usize| {
            let xml = el.to_xml();
            let parts: Vec<&str> = xml.split("<ds:SignatureValue>").skip(1).collect();
            parts[which]
                .split('<')
                .next()
                .unwrap_or_default()
                .to_string()
        };
        // Nothing signed before: both values are the marker, every digest is computed, and
        // the preview serialises as its re-reading does.
        let fresh = dsig::preview(|| sign_response(fixture(), &cred, both, None)).unwrap();
        assert_eq!(value(&fresh, 0), dsig::PREVIEW_SIGNATURE_VALUE);
        assert_eq!(value(&fresh, 1), dsig::PREVIEW_SIGNATURE_VALUE);
        assert!(!fresh.to_xml().contains("<ds:DigestValue></ds:DigestValue>"));
        let lim = Limits {
            max_bytes: 4 << 20,
            ..Limits::default()
        };
        assert_eq!(
            xml::parse(&fresh.to_xml(), &lim).unwrap().to_xml(),
            fresh.to_xml()
        );
        // Signed for real first: the preview of the same message is the same message.
        let model = fixture();
        let real = sign_response(model.clone(), &cred, both, None).unwrap();
        let again = dsig::preview(|| sign_response(model, &cred, both, None)).unwrap();
        assert_eq!(again.to_xml(), real.to_xml());
        assert!(!dsig::in_preview(), "preview mode ends with the call");
    }

    #[test]
    fn tree_signer_gives_xmlsecs_bytes() {
        let cred = test_credential("idp");
        let cert = cred.cert_base64();
        let methods = [
            SignatureMethod::RsaSha1,
            SignatureMethod::RsaSha256,
            SignatureMethod::RsaSha384,
            SignatureMethod::RsaSha512,
        ];
        let digests = [
            DigestMethod::Sha1,
            DigestMethod::Sha256,
            DigestMethod::Sha384,
            DigestMethod::Sha512,
        ];
        // Shapes the tree signer must get right: a default namespace, a rebinding, text to
        // escape, a comment (not in the canonical form), attribute order to sort.
        let mut odd = fixture();
        odd.attrs.insert(0, ("xmlns:x".into(), "urn:x".into()));
        if let Some(a) = odd.child_mut(ns::SAML, "Assertion") {
            a.children.push(xml::Node::Element(
                Element::new("Extra", Some("urn:default"))
                    .with_attr("xmlns", "urn:default")
                    .with_attr("z", "1 < 2 & \"3\"\t\n\r")
                    .with_attr("x:a", "b")
                    .with_attr("a", "c")
                    .with_child(Element::new("Inner", None).with_attr("xmlns", ""))
                    .with_child(Element::new("x:Other", Some("urn:x")).with_text("a&b<c>d\r")),
            ));
            a.children.push(xml::Node::Comment(" kept out ".into()));
        }
        for base in [fixture(), odd] {
            for (signature, digest) in methods.iter().zip(digests.iter().rev()) {
                let algs = dsig::Algorithms {
                    signature: *signature,
                    digest: *digest,
                };
                for keyinfo in [Some(cert.as_str()), None] {
                    // On the tree: sign_in_tree takes the document (checked below), and the
                    // result is xmlsec's byte for byte (with xmlsec's a new signature each
                    // time, so no memo in between).
                    let mut probe = base.clone();
                    let a = probe.child_index(ns::SAML, "Assertion").unwrap();
                    let xml::Node::Element(el) = &mut probe.children[a] else {
                        unreachable!()
                    };
                    let sig = dsig::insert_template_at(el, keyinfo, algs);
                    assert!(matches!(
                        dsig::sign_in_tree(&mut probe, &[a], sig, &cred, algs),
                        Some(Ok(()))
                    ));
                    let ours =
                        sign_response_with(base.clone(), &cred, SignParts::BOTH, keyinfo, algs)
                            .unwrap()
                            .to_xml();
                    assert_eq!(ours, through_xmlsec(base.clone(), &cred, keyinfo, algs));
                    // Serialised without reading the signed tree back: the same bytes.
                    assert_eq!(
                        sign_response_to_xml(base.clone(), &cred, SignParts::BOTH, keyinfo, algs)
                            .unwrap(),
                        ours
                    );
                    assert!(
                        dsig::verify_and_reduce(&ours, std::slice::from_ref(&cred.cert_der))
                            .is_ok()
                            == (*signature != SignatureMethod::RsaSha1
                                && *digest != DigestMethod::Sha1)
                    );
                }
            }
        }
    }

    #[test]
    fn documents_the_tree_signer_leaves_to_xmlsec_sign_the_same() {
        let cred = test_credential("idp");
        let algs = dsig::Algorithms::default();
        // Two Assertions with one ID (a wrapping fault): xmlsec's ID resolution decides.
        let mut dup = fixture();
        let a = dup.child(ns::SAML, "Assertion").unwrap().clone();
        dup.children.push(xml::Node::Element(a));
        let mut probe = dup.clone();
        let i = probe.child_index(ns::SAML, "Assertion").unwrap();
        let xml::Node::Element(el) = &mut probe.children[i] else {
            unreachable!()
        };
        let sig = dsig::insert_template_at(el, None, algs);
        assert!(dsig::sign_in_tree(&mut probe, &[i], sig, &cred, algs).is_none());
        // An undeclared prefix, an xml: attribute, a declaration after an attribute.
        let mut odd = fixture();
        odd.children
            .push(xml::Node::Element(Element::new("u:X", Some("urn:u"))));
        let mut lang = fixture();
        lang.set_attr("xml:lang", "it");
        let mut late = fixture();
        late.set_attr("xmlns:late", "urn:late");
        for doc in [odd, lang, late] {
            let mut probe = doc.clone();
            let sig = dsig::insert_template_at(&mut probe, None, algs);
            assert!(dsig::sign_in_tree(&mut probe, &[], sig, &cred, algs).is_none());
            assert_eq!(probe, {
                let mut d = doc.clone();
                dsig::insert_template_at(&mut d, None, algs);
                d
            });
        }
        // Signed all the same, through xmlsec.
        let signed = sign_response(dup, &cred, SignParts::BOTH, None)
            .unwrap()
            .to_xml();
        assert_eq!(signed.matches("<ds:SignatureValue>").count(), 3);
    }
}
