//! Fault injection: a plan the IdP carries out on its next Response. The IdP always builds the
//! honest Response first; the plan then edits the tree before signing, chooses what is signed
//! and with which key, and edits the signed tree afterwards (wrapping attacks live there).

use serde::{Deserialize, Serialize};
use spid_core::errors::SpidError;
use spid_core::saml::ns;
use spid_core::saml::xml::{Element, Node};
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
}

impl Default for SignSpec {
    fn default() -> Self {
        SignSpec {
            assertion: true,
            response: true,
            key: SigningKey::Idp,
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

/// Applies `m` to `root`.
pub fn apply(root: &mut Element, m: &Mutation) -> Result<(), MutationError> {
    match m {
        Mutation::SetAttr {
            target,
            name,
            value,
        } => {
            target
                .find_mut(root)
                .ok_or(MutationError(*target))?
                .set_attr(name, value.clone());
        }
        Mutation::RemoveAttr { target, name } => {
            target
                .find_mut(root)
                .ok_or(MutationError(*target))?
                .remove_attr(name);
        }
        Mutation::SetText { target, value } => {
            target
                .find_mut(root)
                .ok_or(MutationError(*target))?
                .set_text(value.clone());
        }
        Mutation::Empty { target } => {
            target
                .find_mut(root)
                .ok_or(MutationError(*target))?
                .children
                .clear();
        }
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

    #[test]
    fn set_text_remove_and_missing_target() {
        let mut r = resp();
        apply(
            &mut r,
            &Mutation::SetText {
                target: Target::Audience,
                value: "evil".into(),
            },
        )
        .unwrap();
        assert_eq!(Target::Audience.find_mut(&mut r).unwrap().text(), "evil");
        apply(
            &mut r,
            &Mutation::Remove {
                target: Target::AudienceRestriction,
            },
        )
        .unwrap();
        assert!(Target::Audience.find_mut(&mut r).is_none());
        assert_eq!(
            apply(
                &mut r,
                &Mutation::Remove {
                    target: Target::Audience
                }
            ),
            Err(MutationError(Target::Audience))
        );
        apply(
            &mut r,
            &Mutation::RemoveAttr {
                target: Target::Assertion,
                name: "ID".into(),
            },
        )
        .unwrap();
        assert_eq!(Target::Assertion.find_mut(&mut r).unwrap().attr("ID"), None);
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
