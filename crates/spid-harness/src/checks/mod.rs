//! Static checks of an SP under test: its metadata (SPID SP profile, Avviso 29) and the
//! AuthnRequest it sends (SPID rules). Every SP check is a code of the one rule table
//! (`spid_core::Rule`, sections `sp-metadata.*` and `sp-request.*`) with its reference.

mod metadata;
mod request;
pub mod xsd;

pub use metadata::{cie_metadata_checks, metadata_checks, CieKind};
pub use request::{authn_request_checks, cie_authn_request_checks, ArrivedRequest, RequestContext};

use crate::peers::PeerFile;
use crate::runner::Outcome;
use serde::{Deserialize, Serialize};
use spid_core::saml::metadata::{self as md, EntityMetadata};
use spid_core::saml::ns;
use spid_core::saml::xml::Element;
use spid_core::Rule;

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Stable id, e.g. `sp-metadata.signed` (a [`Rule`] code for SP checks).
    pub id: &'static str,
    /// A failed check that is only a recommendation (SHOULD): reported, never fails the run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
    /// Where the requirement comes from (empty for checks outside the rule table).
    #[serde(skip_serializing_if = "str::is_empty")]
    pub reference: &'static str,
    /// What was seen.
    pub detail: String,
    /// What the result means for the run: `pass`, `fail` or (a recommendation) `warn` as
    /// checked, then a peer's expected deviations applied (`xfail`, `xpass`).
    pub outcome: Outcome,
    /// The peer file's reason, for an expected deviation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// A check result as a report holds it (owned strings), for reading reports back.
#[derive(Debug, Clone, Deserialize)]
struct CheckRecord {
    id: String,
    #[serde(default)]
    warning: bool,
    #[serde(default)]
    reference: String,
    detail: String,
    outcome: Outcome,
    #[serde(default)]
    why: Option<String>,
}

/// Reads check results back from a report (`merge`): a known rule code is the table's own
/// string; any other id is kept for the life of the process (a merge reads a few files).
pub fn deserialize_checks<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<CheckResult>, D::Error> {
    let keep = |s: String| -> &'static str {
        match Rule::from_code(&s) {
            Some(r) => r.code(),
            None => Box::leak(s.into_boxed_str()),
        }
    };
    Ok(Vec::<CheckRecord>::deserialize(d)?
        .into_iter()
        .map(|r| CheckResult {
            reference: match Rule::from_code(&r.id) {
                Some(rule) => rule.reference(),
                None => keep(r.reference),
            },
            id: keep(r.id),
            warning: r.warning,
            detail: r.detail,
            outcome: r.outcome,
            why: r.why,
        })
        .collect())
}

fn outcome(pass: bool, warning: bool) -> Outcome {
    match (pass, warning) {
        (true, _) => Outcome::Pass,
        (false, true) => Outcome::Warn,
        (false, false) => Outcome::Fail,
    }
}

impl CheckResult {
    /// Whether the target meets the check (`pass`, or a listed deviation that did not
    /// happen: `xpass`).
    pub fn holds(&self) -> bool {
        matches!(self.outcome, Outcome::Pass | Outcome::Xpass)
    }

    /// Whether the check counts against the target (failed, and not only a warning).
    pub fn failed(&self) -> bool {
        !self.holds() && !self.warning
    }

    /// Applies a peer's expected deviations: a listed failure is `xfail`; a listed check that
    /// passed is `xpass` (the file is stale).
    pub fn settle(&mut self, peer: &PeerFile) {
        if let Some(r) = peer.expected_failure(self.id) {
            if self.holds() {
                self.outcome = Outcome::Xpass;
                self.why = Some(format!("listed as an expected failure: {r}"));
            } else {
                self.outcome = Outcome::Xfail;
                self.why = Some(r.to_string());
            }
        }
    }

    /// The report group: `metadata`, `authn-request`, or the id's first segment.
    pub fn group(&self) -> &'static str {
        let head = self.id.split('.').next().unwrap_or(self.id);
        match head {
            "sp-metadata" | "metadata" => "metadata",
            "sp-request" | "request" => "authn-request",
            _ => head,
        }
    }
}

/// Records that no AuthnRequest reached our SSO endpoint, so none of the request checks ran.
pub fn no_request(out: &mut Vec<CheckResult>, detail: String) {
    match Rule::from_code("sp-request.arrived") {
        Some(r) => rule(out, r, false, detail),
        None => check(out, "sp-request.arrived", false, detail),
    }
}

/// Appends a check result with a free id (checks outside the rule table, e.g. check-idp's).
pub(crate) fn check(
    out: &mut Vec<CheckResult>,
    id: &'static str,
    pass: bool,
    detail: impl Into<String>,
) {
    out.push(CheckResult {
        id,
        warning: false,
        reference: "",
        detail: detail.into(),
        outcome: outcome(pass, false),
        why: None,
    });
}

/// Appends the result of `rule` (a MUST: a failure fails the run).
pub(crate) fn rule(out: &mut Vec<CheckResult>, rule: Rule, pass: bool, detail: impl Into<String>) {
    out.push(CheckResult {
        id: rule.code(),
        warning: false,
        reference: rule.reference(),
        detail: detail.into(),
        outcome: outcome(pass, false),
        why: None,
    });
}

/// Appends the result of `rule` as a recommendation (a SHOULD: a failure is a warning).
pub(crate) fn advise(
    out: &mut Vec<CheckResult>,
    rule: Rule,
    pass: bool,
    detail: impl Into<String>,
) {
    out.push(CheckResult {
        id: rule.code(),
        warning: true,
        reference: rule.reference(),
        detail: detail.into(),
        outcome: outcome(pass, true),
        why: None,
    });
}

/// Whether metadata carries an enveloped signature that verifies with its own signing
/// certificate (integrity; trust in the certificate is the registry's business).
pub(crate) fn self_signed(text: &str, root: &Element, m: &EntityMetadata) -> bool {
    root.child(ns::DS, "Signature").is_some() && md::verify(text, &m.signing_certs).is_ok()
}

/// An optional value as user-facing text: the value, `empty` when blank, or `absent`
/// (never Rust's `Some("…")` / `None`).
pub(crate) fn shown<S: AsRef<str>>(v: Option<S>) -> String {
    match v {
        None => "absent".to_string(),
        Some(s) if s.as_ref().trim().is_empty() => "empty".to_string(),
        Some(s) => s.as_ref().to_string(),
    }
}

/// Items as user-facing text: joined with `, `, or `none` (never Rust's `["a", "b"]`).
pub(crate) fn list<I>(items: I) -> String
where
    I: IntoIterator,
    I::Item: std::fmt::Display,
{
    let all: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    if all.is_empty() {
        "none".to_string()
    } else {
        all.join(", ")
    }
}

#[cfg(test)]
mod shown_tests {
    use super::{list, shown};

    #[test]
    fn words_not_debug() {
        assert_eq!(shown(Some("x")), "x");
        assert_eq!(shown(Some(" ")), "empty");
        assert_eq!(shown(None::<&str>), "absent");
        assert_eq!(list(["a", "b"]), "a, b");
        assert_eq!(list(Vec::<&str>::new()), "none");
    }
}
