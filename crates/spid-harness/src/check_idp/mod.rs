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

mod driver;
mod idp_metadata;
mod logins;
mod requests;

pub use driver::{DriverUser, FormStep, LoginDriver};
pub use idp_metadata::{cie_metadata_checks, metadata_checks};
use logins::{cie_login_matrix, login_matrix, purpose_matrix};
use requests::{malformed_checks, probes};

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
        let mut suites: BTreeMap<String, TestSuite> = BTreeMap::new();
        // One test case in `group`: a failure carrying `msg` when the outcome fails the run,
        // else a success with `msg` as its output.
        let mut add = |group: &str, id: String, o: Outcome, msg: String| {
            let msg = format!("{}: {msg}", o.label());
            let mut t = if o.fails_run() {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(msg);
                TestCase::new(id, s)
            } else {
                let mut t = TestCase::new(id, TestCaseStatus::success());
                t.set_system_out(msg);
                t
            };
            t.set_classname(group);
            suites
                .entry(group.to_string())
                .or_insert_with(|| TestSuite::new(group))
                .add_test_case(t);
        };
        let why = |w: &Option<String>| w.as_deref().map(|r| format!("; {r}")).unwrap_or_default();
        for c in &self.checks {
            let group = match c.id.split('.').next().unwrap_or(c.id) {
                "request" => "authn-request",
                g => g,
            };
            add(
                group,
                c.id.to_string(),
                c.outcome,
                format!("{}{}", c.detail, why(&c.why)),
            );
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
            add(
                group,
                l.id.clone(),
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

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
