//! `check-idp`: judge an IdP. Its metadata against the SPID IdP rules; malformed
//! AuthnRequests (signed by our SP) and the refusal each must get (status, sub-status,
//! `ErrorCode nrNN`); and logins at L1/L2/L3 under every Comparison through our SP, each
//! Response judged by the SP's full rule set plus the IdP-side duties (level, SessionIndex,
//! attribute set). A login driver (configuration) fills the IdP's pages; the built-in one
//! knows our IdP.
//!
//! With [`IdpProfile::Cie`] the IdP is judged as a CIE ID IdP instead: the CIE metadata shape
//! (`idp-metadata.cie.*`), CIE-shaped AuthnRequests and the refusals a CIE IdP owes
//! (`request.cie.*`), and CIE logins judged by the CIE Response rules (`idp.cie.*`). The SPID
//! profile also probes Avviso 18: each `spid:Purpose` row of
//! [`spid_core::professional::MATRIX`] against each identity type the driver has a user of.

use crate::agent::{Page, UserAgent};
use crate::checks::{check, list, self_signed, shown, CheckResult};
use crate::peers::PeerFile;
use crate::runner::{self, Credentials, Outcome};
use serde::{Deserialize, Serialize};
use spid_core::cie::{self, CieEnv, IdpProfile};
use spid_core::errors::SpidError;
use spid_core::professional::{self, IdentityType, Purpose};
use spid_core::saml::authn_request::AuthnRequest;
use spid_core::saml::binding::{self, MessageParam, SigAlg};
use spid_core::saml::dsig::Credential;
use spid_core::saml::metadata::{self, EntityMetadata};
use spid_core::saml::ns;
use spid_core::saml::xml::Element;
use spid_core::saml::xml::{self, Limits};
use spid_core::{attributes, Comparison, SpidLevel};
use spid_sp::{ServiceProvider, SpConfig};
use std::collections::BTreeMap;
use url::Url;

/// A form on the IdP's pages and what to put in it. Values may use `{username}`,
/// `{password}` and `{otp}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormStep {
    /// The form's id, or…
    pub form_id: Option<String>,
    /// …a field the form contains, or…
    pub has_field: Option<String>,
    /// …text its action URL contains.
    #[serde(default)]
    pub action_contains: Option<String>,
    /// Fields (and the submit button's name/value) to send.
    pub fields: BTreeMap<String, String>,
}

/// A user the driver can log in as.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriverUser {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// OTP, for L≥2.
    #[serde(default)]
    pub otp: Option<String>,
    /// Highest level the user reaches.
    pub level: SpidLevel,
    /// The user's identity type (Avviso 18; default a natural person): the Purpose probes
    /// log in one user of each type the driver has.
    #[serde(default)]
    pub identity_type: IdentityType,
}

/// How to get through an IdP's login pages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginDriver {
    /// Steps tried on every page, first match wins (login, OTP, consent…).
    pub steps: Vec<FormStep>,
    /// Users.
    pub users: Vec<DriverUser>,
}

impl LoginDriver {
    /// The driver for our IdP's pages and fixture users (SPID profile).
    pub fn builtin() -> Self {
        Self::builtin_for(IdpProfile::Spid)
    }

    /// The driver for our IdP's pages and the fixture users of `profile`
    /// (`fixtures/users.toml` or `fixtures/cie-users.toml`), every active user with its
    /// identity type.
    pub fn builtin_for(profile: IdpProfile) -> Self {
        let step = |id: &str, f: &[(&str, &str)]| FormStep {
            form_id: Some(id.into()),
            has_field: None,
            action_contains: None,
            fields: f
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let text = match profile {
            IdpProfile::Spid => spid_idp::users::DEFAULT_USERS,
            IdpProfile::Cie => spid_idp::users::CIE_USERS,
        };
        let users = spid_idp::users::parse(text)
            .unwrap_or_default()
            .into_iter()
            .filter(|u| u.status == spid_idp::users::Status::Active)
            .map(|u| DriverUser {
                level: u.max_level(),
                identity_type: u.identity_type,
                username: u.username,
                password: u.password,
                otp: u.otp,
            })
            .collect();
        LoginDriver {
            steps: vec![
                step(
                    "login-form",
                    &[
                        ("username", "{username}"),
                        ("password", "{password}"),
                        ("action", "login"),
                    ],
                ),
                step("otp-form", &[("otp", "{otp}"), ("action", "verify")]),
                step("consent-form", &[("action", "accept")]),
            ],
            users,
        }
    }

    /// Logs `user` in starting at `start`; returns the final page.
    pub async fn login(
        &self,
        ua: &mut UserAgent,
        start: &Url,
        user: &DriverUser,
    ) -> Result<Page, crate::agent::AgentError> {
        let first = ua.get(start).await?;
        self.continue_from(ua, first, user).await
    }

    /// Goes on from `first` (the answer to whatever started the login) through the pages
    /// the steps recognise; returns the final page.
    pub async fn continue_from(
        &self,
        ua: &mut UserAgent,
        first: Page,
        user: &DriverUser,
    ) -> Result<Page, crate::agent::AgentError> {
        let mut page = ua.auto_post(first).await?;
        for _ in 0..8 {
            let found = self.steps.iter().find_map(|s| {
                let f = match (&s.form_id, &s.has_field, &s.action_contains) {
                    (Some(id), _, _) => page.form_by_id(id),
                    (None, Some(field), _) => page.form_with_field(field),
                    (None, None, Some(part)) => page
                        .forms()
                        .into_iter()
                        .find(|f| f.action.as_str().contains(part.as_str())),
                    (None, None, None) => None,
                }?;
                Some((s, f))
            });
            let Some((step, form)) = found else { break };
            let vals: Vec<(String, String)> = step
                .fields
                .iter()
                .map(|(k, v)| {
                    let v = v
                        .replace("{username}", &user.username)
                        .replace("{password}", &user.password)
                        .replace("{otp}", user.otp.as_deref().unwrap_or_default());
                    (k.clone(), v)
                })
                .collect();
            let refs: Vec<(&str, &str)> =
                vals.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let next = ua.submit(&page, &form, &refs).await?;
            page = ua.auto_post(next).await?;
        }
        Ok(page)
    }
}

/// What to check.
pub struct CheckIdpOptions {
    /// IdP metadata: URL or file.
    pub metadata: String,
    /// Where our SP listens (the IdP must trust its metadata).
    pub sp_listen: String,
    /// Login driver (None: built-in, for our IdP).
    pub driver: Option<LoginDriver>,
    /// Credentials directory (None: embedded test keys).
    pub certs: Option<std::path::PathBuf>,
    /// Judge the IdP as SPID (default) or CIE ID.
    pub profile: IdpProfile,
    /// Only the probes and logins whose id matches this glob (`--cases`; the metadata checks
    /// are always made). None: all of them.
    pub cases: Option<String>,
}

/// Which probes and logins a run makes (`--cases`).
struct Selection(Option<glob::Pattern>);

impl Selection {
    fn new(pattern: Option<&str>) -> anyhow::Result<Selection> {
        pattern
            .map(|p| glob::Pattern::new(p).map_err(|e| anyhow::anyhow!("--cases {p}: {e}")))
            .transpose()
            .map(Selection)
    }

    fn keeps(&self, id: &str) -> bool {
        self.0.as_ref().is_none_or(|g| g.matches(id))
    }
}

/// One login of the matrix.
#[derive(Debug, Clone, Serialize)]
pub struct LoginResult {
    /// Stable id for peer files: `login.<comparison>.l<n>`, and
    /// `login.minimum.l3.without-l3` for the user without L3 credentials asked for L3.
    pub id: String,
    /// Level requested.
    pub level: SpidLevel,
    /// Comparison requested.
    pub comparison: Comparison,
    /// Who logged in.
    pub user: String,
    /// What the IdP must do: `login` (a Response our SP accepts), `nr20` or (Avviso 18)
    /// `nr30`.
    pub expected: String,
    /// The `spid:Purpose` sent (Purpose probes; `absent` for the row without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The identity type of the user (Purpose probes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_type: Option<IdentityType>,
    /// Final HTTP status at our SP.
    pub status: u16,
    /// Our SP's rule code, if it refused.
    pub rule: Option<String>,
    /// IdP-side duties checked on the Response.
    pub duties: Vec<CheckResult>,
    /// What the result means for the run: `pass` when every duty holds, else `fail`; then
    /// a peer's expected deviations applied.
    pub outcome: Outcome,
    /// The peer file's reason(s), for an expected deviation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl LoginResult {
    /// Whether the IdP met every duty of this login (`pass`, or `xpass`).
    pub fn holds(&self) -> bool {
        matches!(self.outcome, Outcome::Pass | Outcome::Xpass)
    }

    /// Applies a peer's expected deviations, after its duties were settled: a listed login
    /// is `xfail` when it fails (`xpass` when it passes); an unlisted login that fails only by
    /// expected duty failures is `xfail` with their reasons; one with a duty that no longer
    /// fails (`xpass`) is `xpass`.
    pub fn settle(&mut self, peer: &PeerFile) {
        if let Some(r) = peer.expected_failure(&self.id) {
            (self.outcome, self.why) = if self.holds() {
                (
                    Outcome::Xpass,
                    Some(format!("listed as an expected failure: {r}")),
                )
            } else {
                (Outcome::Xfail, Some(r.to_string()))
            };
            return;
        }
        let failing: Vec<&CheckResult> = self.duties.iter().filter(|d| !d.holds()).collect();
        if self.duties.iter().any(|d| d.outcome == Outcome::Xpass) {
            self.outcome = Outcome::Xpass;
            self.why = Some("a duty listed as an expected failure passed".into());
        } else if !self.holds()
            && !failing.is_empty()
            && failing.iter().all(|d| d.outcome == Outcome::Xfail)
        {
            self.outcome = Outcome::Xfail;
            self.why = Some(
                failing
                    .iter()
                    .map(|d| format!("{}: {}", d.id, d.why.as_deref().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join("; "),
            );
        }
    }
}

/// The outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CheckIdpReport {
    /// Metadata checks and malformed-request checks.
    pub checks: Vec<CheckResult>,
    /// The login matrix.
    pub logins: Vec<LoginResult>,
    /// Whether `--cases` left probes or logins out (then a duty the peer lists as an
    /// expected failure is not `xpass` for holding in the logins that ran: it may fail in
    /// one that did not).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

impl CheckIdpReport {
    /// Applies a peer's expected deviations to the checks, each login's duties and the
    /// logins. A listed duty is an expected failure of the IdP, not of every login: where it
    /// fails it is `xfail`, where it holds it stays `pass` as long as it fails in some login;
    /// `xpass` only when it holds in every login.
    pub fn settle(&mut self, peer: &PeerFile) {
        for c in &mut self.checks {
            c.settle(peer);
        }
        let mut failing: Vec<&'static str> = Vec::new();
        for l in &mut self.logins {
            for d in &mut l.duties {
                d.settle(peer);
                if d.outcome == Outcome::Xfail {
                    failing.push(d.id);
                }
            }
        }
        for l in &mut self.logins {
            for d in &mut l.duties {
                if d.outcome == Outcome::Xpass && (self.partial || failing.contains(&d.id)) {
                    (d.outcome, d.why) = (Outcome::Pass, None);
                }
            }
            l.settle(peer);
        }
    }

    /// Writes `junit.xml` into `dir`: a testsuite per check group (`idp-metadata`,
    /// `authn-request`), `login` (the level matrix, CIE logins) and `purpose` (the Avviso 18
    /// probes), each login's duties in its message.
    pub fn write_junit(&self, dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
        use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
        let status = |o: Outcome, msg: String| {
            if o.fails_run() {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!("{}: {msg}", o.label()));
                (s, None)
            } else {
                (
                    TestCaseStatus::success(),
                    Some(format!("{}: {msg}", o.label())),
                )
            }
        };
        let why = |w: &Option<String>| w.as_deref().map(|r| format!("; {r}")).unwrap_or_default();
        let mut suites: BTreeMap<String, TestSuite> = BTreeMap::new();
        for c in &self.checks {
            let group = match c.id.split('.').next().unwrap_or(c.id) {
                "request" => "authn-request",
                g => g,
            };
            let (st, out) = status(c.outcome, format!("{}{}", c.detail, why(&c.why)));
            let mut t = TestCase::new(c.id, st);
            t.set_classname(group);
            if let Some(o) = out {
                t.set_system_out(o);
            }
            suites
                .entry(group.to_string())
                .or_insert_with(|| TestSuite::new(group))
                .add_test_case(t);
        }
        for l in &self.logins {
            let group = if l.purpose.is_some() {
                "purpose"
            } else {
                "login"
            };
            let duties: Vec<String> = l
                .duties
                .iter()
                .map(|d| format!("{} {} ({})", d.outcome.label(), d.id, d.detail))
                .collect();
            let (st, out) = status(
                l.outcome,
                format!(
                    "{} {} as {}, expect {}, got HTTP {} {}; {}{}",
                    l.comparison.as_str(),
                    l.level,
                    l.user,
                    l.expected,
                    l.status,
                    l.rule.as_deref().unwrap_or("-"),
                    duties.join("; "),
                    why(&l.why)
                ),
            );
            let mut t = TestCase::new(l.id.clone(), st);
            t.set_classname(group);
            if let Some(o) = out {
                t.set_system_out(o);
            }
            suites
                .entry(group.to_string())
                .or_insert_with(|| TestSuite::new(group))
                .add_test_case(t);
        }
        let mut report = quick_junit::Report::new("spid-harness check-idp");
        for (_, s) in suites {
            report.add_test_suite(s);
        }
        let xml = report
            .to_string()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        std::fs::create_dir_all(dir)?;
        let p = dir.join("junit.xml");
        std::fs::write(&p, xml)?;
        Ok(p)
    }

    /// Whether the run fails: a check or login that failed unexpectedly, or an xpass.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.outcome.fails_run())
            || self.logins.iter().any(|l| l.outcome.fails_run())
    }
}

/// The ids of the metadata checks.
const METADATA_CHECKS: &[&str] = &[
    "idp-metadata.xml",
    "idp-metadata.entity-descriptor",
    "idp-metadata.idp-descriptor",
    "idp-metadata.signing-certificate",
    "idp-metadata.signed",
    "idp-metadata.want-authn-requests-signed",
    "idp-metadata.sso-bindings",
    "idp-metadata.single-logout",
    "idp-metadata.name-id-format",
    "idp-metadata.attributes",
];

/// The ids of the CIE metadata checks (after the three shared ones).
const CIE_METADATA_CHECKS: &[&str] = &[
    "idp-metadata.cie.entity-id",
    "idp-metadata.cie.protocol",
    "idp-metadata.cie.sso-bindings",
    "idp-metadata.cie.sso-post-is-entity-id",
    "idp-metadata.cie.sso-redirect-path",
    "idp-metadata.cie.signing-certificate",
    "idp-metadata.cie.signature",
    "idp-metadata.cie.want-authn-requests-signed",
    "idp-metadata.cie.name-id-format",
];

/// The ids of the duties checked on a login's Response.
const DUTIES: &[&str] = &[
    "idp.level-satisfies-request",
    "idp.no-session-index-above-l1",
    "idp.attributes-as-requested",
    "sp.rules",
    "idp.nr20",
    "idp.response",
    "idp.purpose.nr30",
    "idp.purpose.identity-attributes",
    "idp.cie.response-issuer",
    "idp.cie.assertion-issuer",
    "idp.cie.name-id",
    "idp.cie.minimum-attributes",
    "idp.cie.fiscal-number",
    "idp.cie.date-of-birth",
    "idp.cie.session-index",
];

/// The login id for `level` under `cmp` (`weak`: the user without L3 credentials).
fn login_id(level: SpidLevel, cmp: Comparison, weak: bool) -> String {
    let mut id = format!("login.{}.l{}", cmp.as_str(), level.number());
    if weak {
        id.push_str(".without-l3");
    }
    id
}

/// The Comparisons a CIE SP may send.
const CIE_COMPARISONS: [Comparison; 2] = [Comparison::Exact, Comparison::Minimum];

/// The CIE login id for `level` under `cmp`: `login.cie.<comparison>.l<n>`.
fn cie_login_id(level: SpidLevel, cmp: Comparison) -> String {
    format!("login.cie.{}.l{}", cmp.as_str(), level.number())
}

/// The Purpose probe id: `purpose.<P|LP|PG|PF|PX|absent>.<identity type>`.
fn purpose_id(p: Option<Purpose>, t: IdentityType) -> String {
    format!(
        "purpose.{}.{}",
        p.map_or("absent", Purpose::as_str),
        t.as_str()
    )
}

/// Whether `id` names a check, duty or login check-idp can report (for peer files).
pub fn is_known_id(id: &str) -> bool {
    let logins = SpidLevel::ALL
        .iter()
        .flat_map(|l| Comparison::ALL.iter().map(move |c| login_id(*l, *c, false)));
    let cie_logins = SpidLevel::ALL
        .iter()
        .flat_map(|l| CIE_COMPARISONS.iter().map(move |c| cie_login_id(*l, *c)));
    let purposes = professional::MATRIX.iter().flat_map(|r| {
        IdentityType::ALL
            .iter()
            .map(move |t| purpose_id(r.purpose, *t))
    });
    METADATA_CHECKS.contains(&id)
        || CIE_METADATA_CHECKS.contains(&id)
        || DUTIES.contains(&id)
        || id == "request.redirect-endpoint"
        || probes(IdpProfile::Spid)
            .iter()
            .chain(probes(IdpProfile::Cie).iter())
            .any(|m| m.id == id)
        || id == login_id(SpidLevel::L3, Comparison::Minimum, true)
        || logins.into_iter().any(|l| l == id)
        || cie_logins.into_iter().any(|l| l == id)
        || purposes.into_iter().any(|l| l == id)
}

/// The structure checks both profiles start with: acceptable XML, an EntityDescriptor, and
/// whether it has an IDPSSODescriptor; None when the metadata cannot be read further.
fn parsed_metadata(text: &str, out: &mut Vec<CheckResult>) -> Option<(Element, EntityMetadata)> {
    let limits = Limits {
        max_bytes: 1 << 20,
        ..Limits::default()
    };
    let Ok(root) = xml::parse(text, &limits) else {
        check(out, "idp-metadata.xml", false, "not acceptable XML");
        return None;
    };
    let m = match metadata::parse(text) {
        Ok(m) => m,
        Err(e) => {
            check(out, "idp-metadata.entity-descriptor", false, e.to_string());
            return None;
        }
    };
    let has_descriptor = root.child(ns::MD, "IDPSSODescriptor").is_some();
    check(
        out,
        "idp-metadata.idp-descriptor",
        has_descriptor,
        "IDPSSODescriptor",
    );
    Some((root, m))
}

/// Checks IdP metadata against the SPID IdP rules.
pub fn metadata_checks(text: &str) -> (Vec<CheckResult>, Option<EntityMetadata>) {
    let mut out = Vec::new();
    let Some((root, m)) = parsed_metadata(text, &mut out) else {
        return (out, None);
    };
    let d = root.child(ns::MD, "IDPSSODescriptor");
    check(
        &mut out,
        "idp-metadata.signing-certificate",
        !m.signing_certs.is_empty(),
        format!("{} certificate(s)", m.signing_certs.len()),
    );
    let signed = self_signed(text, &root, &m);
    check(
        &mut out,
        "idp-metadata.signed",
        signed,
        "enveloped signature over the EntityDescriptor",
    );
    if let Some(d) = d {
        check(
            &mut out,
            "idp-metadata.want-authn-requests-signed",
            d.attr("WantAuthnRequestsSigned") == Some("true"),
            shown(d.attr("WantAuthnRequestsSigned")),
        );
        let sso: Vec<&str> = d
            .children_named(ns::MD, "SingleSignOnService")
            .filter_map(|e| e.attr("Binding"))
            .collect();
        check(
            &mut out,
            "idp-metadata.sso-bindings",
            sso.contains(&ns::BINDING_REDIRECT) && sso.contains(&ns::BINDING_POST),
            list(&sso),
        );
        let slo = d.children_named(ns::MD, "SingleLogoutService").count();
        check(
            &mut out,
            "idp-metadata.single-logout",
            slo >= 1,
            format!("{slo} SingleLogoutService"),
        );
        let nameid = d
            .children_named(ns::MD, "NameIDFormat")
            .any(|n| n.text().trim() == ns::NAMEID_TRANSIENT);
        check(
            &mut out,
            "idp-metadata.name-id-format",
            nameid,
            "transient NameIDFormat",
        );
        let attrs: Vec<&str> = d
            .children_named(ns::SAML, "Attribute")
            .filter_map(|a| a.attr("Name"))
            .collect();
        check(
            &mut out,
            "idp-metadata.attributes",
            !attrs.is_empty() && attrs.iter().all(|a| attributes::is_spid_attribute(a)),
            format!("{} attributes", attrs.len()),
        );
    }
    (out, Some(m))
}

fn response_status(p: &Page) -> Option<(String, Option<String>, String)> {
    let f = p.form_with_field("SAMLResponse")?;
    let x = binding::decode_post(f.field("SAMLResponse")?, binding::MAX_MESSAGE_BYTES).ok()?;
    let r = xml::parse(&x, &Limits::default()).ok()?;
    let st = r.child(ns::SAMLP, "Status")?;
    let code = st.child(ns::SAMLP, "StatusCode")?;
    Some((
        code.attr("Value")?.to_string(),
        code.child(ns::SAMLP, "StatusCode")
            .and_then(|c| c.attr("Value"))
            .map(str::to_string),
        st.child(ns::SAMLP, "StatusMessage")
            .map(|m| m.text().trim().to_string())
            .unwrap_or_default(),
    ))
}

/// The IdP's SSO locations and entityID, for the probes' edits.
struct Sso<'a> {
    /// The HTTP-Redirect SSO location (where the probes go).
    redirect: &'a str,
    /// The entityID.
    entity_id: &'a str,
}

/// One malformed (or, for `request.cie.honest`, honest) AuthnRequest and the refusal it
/// must get: SPID/CIE error `nr` on the channel [`SpidError::channel`] gives it (an error
/// page, or an error Response with its status, sub-status and `ErrorCode nrNN`); `nr` 0: no
/// refusal, the login pages.
struct Probe {
    id: &'static str,
    nr: u8,
    edit: fn(&mut AuthnRequest, &Sso<'_>),
    /// A `samlp:Scoping` with a `samlp:RequesterID` appended to the request.
    scoping: bool,
    signed: bool,
}

const fn probe(id: &'static str, nr: u8, edit: fn(&mut AuthnRequest, &Sso<'_>)) -> Probe {
    Probe {
        id,
        nr,
        edit,
        scoping: false,
        signed: true,
    }
}

/// The probes of `profile`: SPID's malformed requests, or the CIE ones (on top of a CIE-shaped
/// request: Destination the Redirect SSO location, ForceAuthn, no IsPassive, Comparison
/// minimum, ACS and attribute service by index).
fn probes(profile: IdpProfile) -> Vec<Probe> {
    match profile {
        IdpProfile::Spid => vec![
            Probe {
                signed: false,
                ..probe("request.unsigned.nr4", 4, |_, _| {})
            },
            probe("request.version.nr9", 9, |r, _| {
                r.version = Some("1.0".into())
            }),
            probe("request.id-missing.nr11", 11, |r, _| r.id = None),
            probe("request.authn-context-legacy.nr12", 12, |r, _| {
                r.class_refs = vec!["urn:oasis:names:tc:SAML:2.0:ac:classes:SpidL2".into()]
            }),
            probe("request.issue-instant-old.nr13", 13, |r, _| {
                r.issue_instant = Some("2020-01-01T00:00:00Z".into())
            }),
            probe("request.destination-other.nr14", 14, |r, _| {
                r.destination = Some("https://other-idp.example/sso".into())
            }),
            probe("request.is-passive.nr15", 15, |r, _| {
                r.is_passive = Some("true".into())
            }),
            probe("request.acs-index-unknown.nr16", 16, |r, _| {
                r.acs_index = Some("7".into())
            }),
            probe("request.name-id-policy.nr17", 17, |r, _| {
                r.name_id_policy_format =
                    Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into())
            }),
            probe("request.attribute-index-unknown.nr18", 18, |r, _| {
                r.attribute_index = Some("9".into())
            }),
        ],
        IdpProfile::Cie => vec![
            probe("request.cie.honest", 0, |_, _| {}),
            Probe {
                signed: false,
                ..probe("request.cie.unsigned.nr4", 4, |_, _| {})
            },
            probe("request.cie.version.nr9", 9, |r, _| {
                r.version = Some("1.0".into())
            }),
            probe("request.cie.id-missing.nr11", 11, |r, _| r.id = None),
            probe("request.cie.authn-context-legacy.nr12", 12, |r, _| {
                r.class_refs = vec!["urn:oasis:names:tc:SAML:2.0:ac:classes:SpidL2".into()]
            }),
            probe("request.cie.comparison-better.nr12", 12, |r, _| {
                r.comparison = Some("better".into())
            }),
            probe("request.cie.comparison-maximum.nr12", 12, |r, _| {
                r.comparison = Some("maximum".into())
            }),
            probe("request.cie.issue-instant-old.nr13", 13, |r, _| {
                r.issue_instant = Some("2020-01-01T00:00:00Z".into())
            }),
            probe("request.cie.destination-entity-id.nr14", 14, |r, s| {
                r.destination = Some(s.entity_id.into())
            }),
            probe("request.cie.destination-other.nr14", 14, |r, _| {
                r.destination =
                    Some("https://other-idp.example/idp/profile/SAML2/Redirect/SSO".into())
            }),
            probe("request.cie.is-passive-true.nr15", 15, |r, _| {
                r.is_passive = Some("true".into())
            }),
            probe("request.cie.is-passive-false.nr15", 15, |r, _| {
                r.is_passive = Some("false".into())
            }),
            probe("request.cie.force-authn-false.nr8", 8, |r, _| {
                r.force_authn = Some("false".into())
            }),
            probe("request.cie.force-authn-absent.nr8", 8, |r, _| {
                r.force_authn = None
            }),
            Probe {
                scoping: true,
                ..probe("request.cie.scoping.nr8", 8, |_, _| {})
            },
            probe("request.cie.acs-index-unknown.nr16", 16, |r, _| {
                r.acs_index = Some("7".into())
            }),
            probe("request.cie.name-id-policy.nr17", 17, |r, _| {
                r.name_id_policy_format =
                    Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into())
            }),
            probe("request.cie.attribute-index-unknown.nr18", 18, |r, _| {
                r.attribute_index = Some("9".into())
            }),
        ],
    }
}

/// Judges the page an AuthnRequest got against `nr`: (pass, what happened).
fn judge_refusal(page: &Page, nr: u8) -> (bool, String) {
    let resp = response_status(page);
    let resp_text = |r: &Option<(String, Option<String>, String)>| match r {
        None => "no error Response".to_string(),
        Some((c, s, m)) => format!("Response {c} {} {}", shown(s.as_deref()), shown(Some(m))),
    };
    if nr == 0 {
        // Honest: not refused — the login pages, or (an IdP without pages) a Success Response.
        let form = page.body.contains("type=\"password\"");
        let success = resp
            .as_ref()
            .is_some_and(|(c, _, _)| c == ns::STATUS_SUCCESS);
        let ok = page.status == 200 && (form && resp.is_none() || success);
        return (
            ok,
            format!(
                "HTTP {}, {}, {}",
                page.status,
                if form {
                    "a login form"
                } else {
                    "no login form"
                },
                resp_text(&resp)
            ),
        );
    }
    match SpidError(nr).channel() {
        spid_core::errors::ErrorChannel::UserPage { .. } => {
            let refused =
                page.status >= 400 && resp.is_none() && !page.body.contains("type=\"password\"");
            (
                refused && page.body.contains(&format!("nr{nr}")),
                format!("HTTP {} page, {}", page.status, resp_text(&resp)),
            )
        }
        spid_core::errors::ErrorChannel::Response { status, sub_status } => match resp {
            Some((c, s, m)) => (
                c == status && s.as_deref() == sub_status && m == format!("ErrorCode nr{nr}"),
                format!("{c} {} {}", shown(s.as_deref()), shown(Some(m))),
            ),
            None => (false, format!("no error Response (HTTP {})", page.status)),
        },
    }
}

async fn malformed_checks(
    profile: IdpProfile,
    select: &Selection,
    idp: &EntityMetadata,
    sp_entity: &str,
    sp_cred: &Credential,
    out: &mut Vec<CheckResult>,
) -> anyhow::Result<()> {
    let Some(sso) = idp
        .idp
        .as_ref()
        .and_then(|d| d.sso_for(ns::BINDING_REDIRECT))
        .map(str::to_string)
    else {
        check(
            out,
            "request.redirect-endpoint",
            false,
            "no HTTP-Redirect SSO endpoint",
        );
        return Ok(());
    };
    let sso_url = Url::parse(&sso).map_err(|e| {
        anyhow::anyhow!("the IdP metadata's HTTP-Redirect SSO location {sso} is not a URL: {e}")
    })?;
    let at = Sso {
        redirect: &sso,
        entity_id: &idp.entity_id,
    };
    for p in probes(profile).into_iter().filter(|p| select.keeps(p.id)) {
        let mut r = AuthnRequest::spid(
            sp_entity,
            at.redirect,
            spid_core::clock::now(),
            SpidLevel::L2,
            Comparison::Minimum,
            0,
            0,
        );
        if profile == IdpProfile::Cie {
            r.force_authn = Some("true".into());
        }
        (p.edit)(&mut r, &at);
        let mut el = r.to_element();
        if p.scoping {
            el = el.with_child(
                Element::new("samlp:Scoping", Some(ns::SAMLP)).with_child(
                    Element::new("samlp:RequesterID", Some(ns::SAMLP))
                        .with_text("https://other-sp.example/metadata"),
                ),
            );
        }
        let signing = p.signed.then_some((&sp_cred.key, SigAlg::RsaSha256));
        let url = binding::encode_redirect(
            &sso_url,
            MessageParam::SamlRequest,
            &el.to_xml(),
            Some("check-idp"),
            signing,
        )?;
        let mut ua = runner::user_agent()?;
        let (pass, detail) = match ua.get(&url).await {
            Ok(page) => judge_refusal(&page, p.nr),
            Err(e) => (false, format!("no answer: {e}")),
        };
        check(out, p.id, pass, detail);
    }
    Ok(())
}

/// Checks IdP metadata against the CIE shape: the three shared structure checks, then the
/// entityID (the POST SSO location, `/idp/profile/SAML2/POST/SSO`, naming its environment),
/// both SSO bindings at the Shibboleth paths, the signing certificates (one or more: the
/// real IdP publishes two for rollover), a signature only if it verifies (the real metadata
/// is unsigned), `WantAuthnRequestsSigned` absent or true, NameIDFormat absent or transient.
pub fn cie_metadata_checks(text: &str) -> (Vec<CheckResult>, Option<EntityMetadata>) {
    let mut out = Vec::new();
    let Some((root, m)) = parsed_metadata(text, &mut out) else {
        return (out, None);
    };
    let d = root.child(ns::MD, "IDPSSODescriptor");
    let env = CieEnv::of_entity_id(&m.entity_id);
    check(
        &mut out,
        "idp-metadata.cie.entity-id",
        env.is_some(),
        match env {
            Some(e) => format!("{} ({e})", m.entity_id),
            None => format!("{} does not end in {}", m.entity_id, cie::SSO_POST_PATH),
        },
    );
    let Some(d) = d else {
        return (out, Some(m));
    };
    let protocols = d.attr("protocolSupportEnumeration").unwrap_or_default();
    check(
        &mut out,
        "idp-metadata.cie.protocol",
        protocols.split_whitespace().any(|p| p == ns::SAMLP),
        shown(d.attr("protocolSupportEnumeration")),
    );
    let sso: Vec<(&str, &str)> = d
        .children_named(ns::MD, "SingleSignOnService")
        .filter_map(|e| Some((e.attr("Binding")?, e.attr("Location")?)))
        .collect();
    let at = |b: &str| sso.iter().find(|(x, _)| *x == b).map(|(_, l)| *l);
    check(
        &mut out,
        "idp-metadata.cie.sso-bindings",
        at(ns::BINDING_REDIRECT).is_some() && at(ns::BINDING_POST).is_some(),
        list(sso.iter().map(|(b, _)| b)),
    );
    check(
        &mut out,
        "idp-metadata.cie.sso-post-is-entity-id",
        at(ns::BINDING_POST) == Some(m.entity_id.as_str()),
        format!("HTTP-POST SSO {}", shown(at(ns::BINDING_POST))),
    );
    let want_redirect = m
        .entity_id
        .strip_suffix(cie::SSO_POST_PATH)
        .map(|origin| format!("{origin}{}", cie::SSO_REDIRECT_PATH));
    check(
        &mut out,
        "idp-metadata.cie.sso-redirect-path",
        want_redirect.is_some() && at(ns::BINDING_REDIRECT) == want_redirect.as_deref(),
        format!(
            "HTTP-Redirect SSO {} (expected {})",
            shown(at(ns::BINDING_REDIRECT)),
            shown(want_redirect.as_deref())
        ),
    );
    let bad = m
        .signing_certs
        .iter()
        .filter(|der| openssl::x509::X509::from_der(der).is_err())
        .count();
    check(
        &mut out,
        "idp-metadata.cie.signing-certificate",
        !m.signing_certs.is_empty() && bad == 0,
        format!(
            "{} signing certificate(s), {bad} not X.509",
            m.signing_certs.len()
        ),
    );
    let has_sig = root.child(ns::DS, "Signature").is_some();
    let sig_ok = !has_sig || self_signed(text, &root, &m);
    check(
        &mut out,
        "idp-metadata.cie.signature",
        sig_ok,
        match (has_sig, sig_ok) {
            (false, _) => "unsigned (as the real CIE metadata)",
            (true, true) => "signed, verifies with its own certificate",
            (true, false) => "signed, but the signature does not verify",
        },
    );
    let want = d.attr("WantAuthnRequestsSigned");
    check(
        &mut out,
        "idp-metadata.cie.want-authn-requests-signed",
        matches!(want, None | Some("true") | Some("1")),
        shown(want),
    );
    let formats: Vec<String> = d
        .children_named(ns::MD, "NameIDFormat")
        .map(|n| n.text().trim().to_string())
        .collect();
    check(
        &mut out,
        "idp-metadata.cie.name-id-format",
        formats.is_empty() || formats.iter().any(|f| f == ns::NAMEID_TRANSIENT),
        if formats.is_empty() {
            "none (as the real CIE metadata)".to_string()
        } else {
            list(&formats)
        },
    );
    (out, Some(m))
}

/// Runs `check-idp`.
pub async fn check_idp(opts: &CheckIdpOptions) -> anyhow::Result<CheckIdpReport> {
    let cie = opts.profile == IdpProfile::Cie;
    let select = Selection::new(opts.cases.as_deref())?;
    let text = crate::external::load_text(&opts.metadata).await?;
    let (mut checks, md) = if cie {
        cie_metadata_checks(&text)
    } else {
        metadata_checks(&text)
    };
    let md = md.ok_or_else(|| {
        anyhow::anyhow!(
            "the IdP metadata ({}, --metadata) is unusable",
            opts.metadata
        )
    })?;
    let creds = Credentials::load(opts.certs.as_deref())?;
    let l = tokio::net::TcpListener::bind(&opts.sp_listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {} (--sp-listen): {e}", opts.sp_listen))?;
    let base = format!("http://{}", l.local_addr()?);
    let mut cfg = SpConfig::new(&base, creds.sp.clone());
    // Our SP judges every rule but accepts any level the request allows: the level duty is
    // judged here, per request.
    cfg.min_level = SpidLevel::L1;
    if cie {
        // A CIE SP: the eIDAS minimum set, the CIE metadata (`sp --cie --print-metadata`).
        cfg.attributes = cie::MINIMUM_ATTRIBUTES.map(String::from).to_vec();
        cfg.cie_metadata = true;
    }
    let sp = ServiceProvider::new(cfg)?;
    sp.register_idp_as(&text, None, opts.profile)?;
    let task = tokio::spawn({
        let sp = sp.clone();
        async move {
            let _ = sp.serve(l).await;
        }
    });
    let result = async {
        malformed_checks(
            opts.profile,
            &select,
            &md,
            &sp.config().entity_id,
            &creds.sp,
            &mut checks,
        )
        .await?;
        let driver = opts
            .driver
            .clone()
            .unwrap_or_else(|| LoginDriver::builtin_for(opts.profile));
        let logins = if cie {
            cie_login_matrix(&select, &base, &md, &driver).await?
        } else {
            let mut l = login_matrix(&select, &sp, &base, &md, &driver).await?;
            l.extend(purpose_matrix(&select, &base, &md, &driver).await?);
            l
        };
        Ok::<_, anyhow::Error>(CheckIdpReport {
            checks,
            logins,
            partial: select.0.is_some(),
        })
    }
    .await;
    task.abort();
    result
}

/// What one login through our SP left behind: the final status and rule, the last
/// Response (XML, parsed) and the driver's error, if any.
struct Attempt {
    status: u16,
    rule: Option<String>,
    xml: Option<String>,
    error: Option<String>,
}

impl Attempt {
    fn parsed(&self) -> Option<Element> {
        self.xml
            .as_deref()
            .and_then(|x| xml::parse(x, &Limits::default()).ok())
    }

    /// The `idp.response` duty: no Response reached our SP.
    fn no_response(&self, duties: &mut Vec<CheckResult>) {
        check(
            duties,
            "idp.response",
            false,
            format!(
                "no Response reached the SP (HTTP {}, {})",
                self.status,
                self.error.as_deref().unwrap_or("no error")
            ),
        );
    }

    /// The `sp.rules` duty: our SP accepted the login.
    fn sp_accepted(&self, duties: &mut Vec<CheckResult>) {
        check(
            duties,
            "sp.rules",
            self.status == 200,
            format!(
                "HTTP {} {}",
                self.status,
                self.rule.as_deref().unwrap_or("")
            ),
        );
    }
}

/// Logs `user` in through our SP's `/login` with `query`.
async fn attempt(
    base: &str,
    md: &EntityMetadata,
    driver: &LoginDriver,
    user: &DriverUser,
    query: &str,
) -> anyhow::Result<Attempt> {
    let start = Url::parse(&format!(
        "{base}/login?idp={}&{query}",
        urlenc(&md.entity_id)
    ))?;
    let mut ua = runner::user_agent()?;
    let page = driver.login(&mut ua, &start, user).await;
    let (status, rule) = match &page {
        Ok(p) => (p.status, p.spid_rule().map(str::to_string)),
        Err(_) => (0, None),
    };
    let xml = ua
        .trace()
        .iter()
        .rev()
        .flat_map(|x| x.saml.iter())
        .find(|m| m.param == "SAMLResponse")
        .and_then(|m| m.xml.clone());
    Ok(Attempt {
        status,
        rule,
        xml,
        error: page.err().map(|e| e.to_string()),
    })
}

/// The attribute names and values of a Response's Assertion.
fn assertion_attributes(r: &Element) -> Vec<(String, String)> {
    r.child(ns::SAML, "Assertion")
        .map(|a| {
            a.children_named(ns::SAML, "AttributeStatement")
                .flat_map(|s| s.children_named(ns::SAML, "Attribute"))
                .filter_map(|x| {
                    let v = x
                        .children_named(ns::SAML, "AttributeValue")
                        .next()
                        .map(|v| v.text().trim().to_string())
                        .unwrap_or_default();
                    Some((x.attr("Name")?.to_string(), v))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `v` is `TINIT-` and a 16-character Italian fiscal code (letters and digits).
fn is_tinit_fiscal_number(v: &str) -> bool {
    v.strip_prefix("TINIT-").is_some_and(|cf| {
        cf.len() == 16
            && cf
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    })
}

/// Whether `v` is a calendar date written YYYY-MM-DD.
fn is_iso_date(v: &str) -> bool {
    v.len() == 10 && chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok()
}

/// The CIE login matrix: L1–L3 under exact and minimum (the only Comparisons CIE has), each
/// by the weakest driver user who reaches the level (a CieID app user for L1/L2, a card
/// holder for L3), each Response judged by our SP (the IdP registered as CIE) and the CIE
/// Response duties.
async fn cie_login_matrix(
    select: &Selection,
    base: &str,
    md: &EntityMetadata,
    driver: &LoginDriver,
) -> anyhow::Result<Vec<LoginResult>> {
    if driver.users.is_empty() {
        anyhow::bail!("the login driver (--driver) has no users");
    }
    let mut out = Vec::new();
    for level in SpidLevel::ALL {
        let Some(user) = driver
            .users
            .iter()
            .filter(|u| u.level >= level && u.identity_type == IdentityType::Person)
            .min_by_key(|u| u.level)
        else {
            continue;
        };
        for cmp in CIE_COMPARISONS {
            let id = cie_login_id(level, cmp);
            if !select.keeps(&id) {
                continue;
            }
            let a = attempt(
                base,
                md,
                driver,
                user,
                &format!("level={}&comparison={}", level.number(), cmp.as_str()),
            )
            .await?;
            let mut duties = Vec::new();
            match a.parsed() {
                None => a.no_response(&mut duties),
                Some(r) => cie_duties(&r, &md.entity_id, level, cmp, &mut duties),
            }
            if a.xml.is_some() {
                a.sp_accepted(&mut duties);
            }
            let pass = duties.iter().all(|d| d.holds());
            out.push(LoginResult {
                id,
                level,
                comparison: cmp,
                user: user.username.clone(),
                expected: "login".into(),
                purpose: None,
                identity_type: None,
                status: a.status,
                rule: a.rule,
                duties,
                outcome: if pass { Outcome::Pass } else { Outcome::Fail },
                why: None,
            });
        }
    }
    Ok(out)
}

/// The CIE duties on a login's Response (ciespid, protocolli).
fn cie_duties(
    r: &Element,
    entity_id: &str,
    level: SpidLevel,
    cmp: Comparison,
    duties: &mut Vec<CheckResult>,
) {
    let issuer = r.child(ns::SAML, "Issuer");
    check(
        duties,
        "idp.cie.response-issuer",
        issuer.is_some_and(|i| i.text().trim() == entity_id && i.attr("Format").is_none()),
        match issuer {
            None => "no Response Issuer".to_string(),
            Some(i) => format!("{}, Format {}", i.text().trim(), shown(i.attr("Format"))),
        },
    );
    let a = r.child(ns::SAML, "Assertion");
    let ai = a.and_then(|a| a.child(ns::SAML, "Issuer"));
    check(
        duties,
        "idp.cie.assertion-issuer",
        ai.is_some_and(|i| {
            i.text().trim() == entity_id
                && matches!(i.attr("Format"), None | Some(ns::NAMEID_ENTITY))
        }),
        match ai {
            None => "no Assertion Issuer".to_string(),
            Some(i) => format!("{}, Format {}", i.text().trim(), shown(i.attr("Format"))),
        },
    );
    let name_id = a
        .and_then(|a| a.child(ns::SAML, "Subject"))
        .and_then(|s| s.child(ns::SAML, "NameID"));
    check(
        duties,
        "idp.cie.name-id",
        name_id.is_some_and(|n| {
            n.attr("Format") == Some(ns::NAMEID_TRANSIENT)
                && n.attr("NameQualifier") == Some(entity_id)
        }),
        match name_id {
            None => "no NameID".to_string(),
            Some(n) => format!(
                "Format {}, NameQualifier {}",
                shown(n.attr("Format")),
                shown(n.attr("NameQualifier"))
            ),
        },
    );
    let authn = a.and_then(|a| a.child(ns::SAML, "AuthnStatement"));
    let got = authn
        .and_then(|s| s.child(ns::SAML, "AuthnContext"))
        .and_then(|c| c.child(ns::SAML, "AuthnContextClassRef"))
        .and_then(|c| SpidLevel::from_uri(c.text().trim()));
    check(
        duties,
        "idp.level-satisfies-request",
        got.is_some_and(|g| spid_core::satisfies(level, cmp, g)),
        format!(
            "{} for {} {level}",
            got.map_or("no known level".to_string(), |g| g.to_string()),
            cmp.as_str()
        ),
    );
    check(
        duties,
        "idp.cie.session-index",
        authn.and_then(|s| s.attr("SessionIndex")).is_some(),
        format!(
            "SessionIndex {}",
            shown(authn.and_then(|s| s.attr("SessionIndex")))
        ),
    );
    let attrs = assertion_attributes(r);
    let mut names: Vec<&str> = attrs.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    let mut want = cie::MINIMUM_ATTRIBUTES.to_vec();
    want.sort_unstable();
    check(
        duties,
        "idp.cie.minimum-attributes",
        names == want,
        list(&names),
    );
    let value = |n: &str| attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    check(
        duties,
        "idp.cie.fiscal-number",
        value("fiscalNumber").is_some_and(is_tinit_fiscal_number),
        format!("fiscalNumber {}", shown(value("fiscalNumber"))),
    );
    check(
        duties,
        "idp.cie.date-of-birth",
        value("dateOfBirth").is_some_and(is_iso_date),
        format!("dateOfBirth {}", shown(value("dateOfBirth"))),
    );
}

/// The Avviso 18 probes: for each row of [`professional::MATRIX`] and each identity type the
/// driver has a user of (level 2 or more), a login at L2 minimum with that `spid:Purpose`.
/// Where the matrix admits the type, the Response must carry the type's attributes and our SP
/// accept it; elsewhere the IdP must answer `ErrorCode nr30` (our SP:
/// `response.status.nr30`).
async fn purpose_matrix(
    select: &Selection,
    base: &str,
    md: &EntityMetadata,
    driver: &LoginDriver,
) -> anyhow::Result<Vec<LoginResult>> {
    let mut out = Vec::new();
    for row in &professional::MATRIX {
        for t in IdentityType::ALL {
            let Some(user) = driver
                .users
                .iter()
                .filter(|u| u.identity_type == t && u.level >= SpidLevel::L2)
                .min_by_key(|u| u.level)
            else {
                continue;
            };
            let id = purpose_id(row.purpose, t);
            if !select.keeps(&id) {
                continue;
            }
            let admitted = professional::admits(row.purpose, t);
            let mut query = "level=2&comparison=minimum".to_string();
            if let Some(p) = row.purpose {
                query.push_str(&format!("&purpose={}", p.as_str()));
            }
            let a = attempt(base, md, driver, user, &query).await?;
            let mut duties = Vec::new();
            match a.parsed() {
                None => a.no_response(&mut duties),
                Some(r) if admitted => {
                    let attrs = assertion_attributes(&r);
                    let names: Vec<&str> = attrs.iter().map(|(n, _)| n.as_str()).collect();
                    let missing = t.missing(&names);
                    check(
                        &mut duties,
                        "idp.purpose.identity-attributes",
                        missing.is_none(),
                        match missing {
                            None => format!("{} set: {}", t.label(), list(&names)),
                            Some(m) => format!("{m} missing for a {}", t.label()),
                        },
                    );
                    a.sp_accepted(&mut duties);
                }
                Some(r) => {
                    let msg = r
                        .child(ns::SAMLP, "Status")
                        .and_then(|s| s.child(ns::SAMLP, "StatusMessage"))
                        .map(|m| m.text().trim().to_string());
                    check(
                        &mut duties,
                        "idp.purpose.nr30",
                        msg.as_deref() == Some("ErrorCode nr30")
                            && a.rule.as_deref() == Some("response.status.nr30"),
                        format!(
                            "StatusMessage {}, HTTP {} {}",
                            shown(msg.as_deref()),
                            a.status,
                            a.rule.as_deref().unwrap_or("")
                        ),
                    );
                }
            }
            let pass = duties.iter().all(|d| d.holds());
            out.push(LoginResult {
                id,
                level: SpidLevel::L2,
                comparison: Comparison::Minimum,
                user: user.username.clone(),
                expected: if admitted { "login" } else { "nr30" }.into(),
                purpose: Some(row.purpose.map_or("absent", Purpose::as_str).into()),
                identity_type: Some(t),
                status: a.status,
                rule: a.rule,
                duties,
                outcome: if pass { Outcome::Pass } else { Outcome::Fail },
                why: None,
            });
        }
    }
    Ok(out)
}

async fn login_matrix(
    select: &Selection,
    sp: &ServiceProvider,
    base: &str,
    md: &EntityMetadata,
    driver: &LoginDriver,
) -> anyhow::Result<Vec<LoginResult>> {
    // The level matrix is about natural persons (the Purpose probes take the other types).
    let persons: Vec<&DriverUser> = driver
        .users
        .iter()
        .filter(|u| u.identity_type == IdentityType::Person)
        .collect();
    let strongest = persons
        .iter()
        .copied()
        .max_by_key(|u| u.level)
        .ok_or_else(|| anyhow::anyhow!("the login driver has no users"))?;
    let mut plan: Vec<(SpidLevel, Comparison, &DriverUser, bool)> = Vec::new();
    for l in SpidLevel::ALL {
        for c in Comparison::ALL {
            plan.push((l, c, strongest, false));
        }
    }
    // A user without L3 credentials asked for L3 (already in the matrix when nobody has L3).
    let weak = persons
        .iter()
        .copied()
        .filter(|u| u.level < SpidLevel::L3)
        .min_by_key(|u| u.level);
    if let Some(weak) = weak.filter(|_| strongest.level == SpidLevel::L3) {
        plan.push((SpidLevel::L3, Comparison::Minimum, weak, true));
    }
    let requested: Vec<String> = sp.config().attributes.clone();
    let mut out = Vec::new();
    for (level, cmp, user, weak) in plan {
        let id = login_id(level, cmp, weak);
        if !select.keeps(&id) {
            continue;
        }
        // A SPID IdP must answer nr20 when no credential of the user satisfies the request.
        let possible = SpidLevel::ALL
            .iter()
            .any(|g| *g <= user.level && spid_core::satisfies(level, cmp, *g));
        let expected = if possible { "login" } else { "nr20" };
        let start = Url::parse(&format!(
            "{base}/login?idp={}&level={}&comparison={}",
            urlenc(&md.entity_id),
            level.number(),
            cmp.as_str()
        ))?;
        let mut ua = runner::user_agent()?;
        let page = driver.login(&mut ua, &start, user).await;
        let (status, rule) = match &page {
            Ok(p) => (p.status, p.spid_rule().map(str::to_string)),
            Err(_) => (0, None),
        };
        let mut duties = Vec::new();
        let resp_xml = ua
            .trace()
            .iter()
            .rev()
            .flat_map(|x| x.saml.iter())
            .find(|m| m.param == "SAMLResponse")
            .and_then(|m| m.xml.clone());
        let resp = resp_xml
            .as_deref()
            .and_then(|x| xml::parse(x, &Limits::default()).ok());
        let pass = match (expected, &resp) {
            ("login", Some(r)) => {
                let a = r.child(ns::SAML, "Assertion");
                let authn = a.and_then(|a| a.child(ns::SAML, "AuthnStatement"));
                let got = authn
                    .and_then(|s| s.child(ns::SAML, "AuthnContext"))
                    .and_then(|c| c.child(ns::SAML, "AuthnContextClassRef"))
                    .and_then(|c| SpidLevel::from_uri(c.text().trim()));
                check(
                    &mut duties,
                    "idp.level-satisfies-request",
                    got.is_some_and(|g| spid_core::satisfies(level, cmp, g)),
                    format!(
                        "{} for {} {level}",
                        got.map_or("no known level".to_string(), |g| g.to_string()),
                        cmp.as_str()
                    ),
                );
                // Not a duty at L1 (where a SessionIndex is allowed).
                if level != SpidLevel::L1 {
                    let si = authn.and_then(|s| s.attr("SessionIndex")).is_some();
                    check(
                        &mut duties,
                        "idp.no-session-index-above-l1",
                        !si,
                        format!("SessionIndex present: {si}"),
                    );
                }
                let mut names: Vec<String> = a
                    .map(|a| {
                        a.children_named(ns::SAML, "AttributeStatement")
                            .flat_map(|s| s.children_named(ns::SAML, "Attribute"))
                            .filter_map(|x| x.attr("Name").map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                names.sort();
                let mut want = requested.clone();
                want.sort();
                check(
                    &mut duties,
                    "idp.attributes-as-requested",
                    names == want,
                    list(&names),
                );
                check(
                    &mut duties,
                    "sp.rules",
                    status == 200,
                    format!("HTTP {status} {}", rule.as_deref().unwrap_or("")),
                );
                duties.iter().all(|d| d.holds())
            }
            ("nr20", Some(_)) => {
                let m = resp_xml
                    .as_deref()
                    .is_some_and(|x| x.contains("ErrorCode nr20"));
                check(
                    &mut duties,
                    "idp.nr20",
                    m && rule.as_deref() == Some("response.status.nr20"),
                    format!("HTTP {status} {}", rule.as_deref().unwrap_or("")),
                );
                m
            }
            (_, None) => {
                check(
                    &mut duties,
                    "idp.response",
                    false,
                    format!(
                        "no Response reached the SP (HTTP {status}, {})",
                        page.as_ref()
                            .err()
                            .map_or("no error".to_string(), |e| e.to_string())
                    ),
                );
                false
            }
            _ => false,
        };
        out.push(LoginResult {
            id,
            level,
            comparison: cmp,
            user: user.username.clone(),
            expected: expected.into(),
            purpose: None,
            identity_type: None,
            status,
            rule,
            duties,
            outcome: if pass { Outcome::Pass } else { Outcome::Fail },
            why: None,
        });
    }
    Ok(out)
}

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
