//! `check-idp`: judge an IdP. Its metadata against the SPID IdP rules; malformed
//! AuthnRequests (signed by our SP) and the refusal each must get (status, sub-status,
//! `ErrorCode nrNN`); and logins at L1/L2/L3 under every Comparison through our SP, each
//! Response judged by the SP's full rule set plus the IdP-side duties (level, SessionIndex,
//! attribute set). A login driver (configuration) fills the IdP's pages; the built-in one
//! knows our IdP.

use crate::agent::{Page, UserAgent};
use crate::checks::{check, list, self_signed, shown, CheckResult};
use crate::peers::PeerFile;
use crate::runner::{self, Credentials, Outcome};
use serde::{Deserialize, Serialize};
use spid_core::saml::authn_request::AuthnRequest;
use spid_core::saml::binding::{self, MessageParam, SigAlg};
use spid_core::saml::dsig::Credential;
use spid_core::saml::metadata::{self, EntityMetadata};
use spid_core::saml::ns;
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
    /// The driver for our IdP's pages and fixture users.
    pub fn builtin() -> Self {
        let step = |id: &str, f: &[(&str, &str)]| FormStep {
            form_id: Some(id.into()),
            has_field: None,
            action_contains: None,
            fields: f
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let users = spid_idp::users::parse(spid_idp::users::DEFAULT_USERS)
            .unwrap_or_default()
            .into_iter()
            .filter(|u| {
                u.status == spid_idp::users::Status::Active
                    && u.identity_type == spid_idp::users::IdentityType::Person
            })
            .map(|u| DriverUser {
                level: u.max_level(),
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
    /// What a SPID IdP must do: `login` (a Response our SP accepts) or `nr20`.
    pub expected: String,
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
                if d.outcome == Outcome::Xpass && failing.contains(&d.id) {
                    (d.outcome, d.why) = (Outcome::Pass, None);
                }
            }
            l.settle(peer);
        }
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

/// The ids of the duties checked on a login's Response.
const DUTIES: &[&str] = &[
    "idp.level-satisfies-request",
    "idp.no-session-index-above-l1",
    "idp.attributes-as-requested",
    "sp.rules",
    "idp.nr20",
    "idp.response",
];

/// The login id for `level` under `cmp` (`weak`: the user without L3 credentials).
fn login_id(level: SpidLevel, cmp: Comparison, weak: bool) -> String {
    let mut id = format!("login.{}.l{}", cmp.as_str(), level.number());
    if weak {
        id.push_str(".without-l3");
    }
    id
}

/// Whether `id` names a check, duty or login check-idp can report (for peer files).
pub fn is_known_id(id: &str) -> bool {
    let logins = SpidLevel::ALL
        .iter()
        .flat_map(|l| Comparison::ALL.iter().map(move |c| login_id(*l, *c, false)));
    METADATA_CHECKS.contains(&id)
        || DUTIES.contains(&id)
        || id == "request.redirect-endpoint"
        || malformed().iter().any(|m| m.0 == id)
        || id == login_id(SpidLevel::L3, Comparison::Minimum, true)
        || logins.into_iter().any(|l| l == id)
}

/// Checks IdP metadata against the SPID IdP rules.
pub fn metadata_checks(text: &str) -> (Vec<CheckResult>, Option<EntityMetadata>) {
    let mut out = Vec::new();
    let Ok(root) = xml::parse(
        text,
        &Limits {
            max_bytes: 1 << 20,
            ..Limits::default()
        },
    ) else {
        check(&mut out, "idp-metadata.xml", false, "not acceptable XML");
        return (out, None);
    };
    let m = match metadata::parse(text) {
        Ok(m) => m,
        Err(e) => {
            check(
                &mut out,
                "idp-metadata.entity-descriptor",
                false,
                e.to_string(),
            );
            return (out, None);
        }
    };
    let d = root.child(ns::MD, "IDPSSODescriptor");
    check(
        &mut out,
        "idp-metadata.idp-descriptor",
        d.is_some(),
        "IDPSSODescriptor",
    );
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

type Edit = fn(&mut AuthnRequest);

/// Malformed requests and the refusal each must get: (id, nr, edit, signed, expected status
/// and sub-status when the error goes back to the SP).
/// Where a refusal must go: the top status and sub-status of the error Response, or None
/// for an error page shown to the user.
type ToSp = Option<(&'static str, Option<&'static str>)>;

fn malformed() -> Vec<(&'static str, u8, Edit, bool, ToSp)> {
    vec![
        ("request.unsigned.nr4", 4, |_| {}, false, None),
        (
            "request.version.nr9",
            9,
            |r| r.version = Some("1.0".into()),
            true,
            Some((ns::STATUS_VERSION_MISMATCH, None)),
        ),
        (
            "request.id-missing.nr11",
            11,
            |r| r.id = None,
            true,
            Some((ns::STATUS_REQUESTER, None)),
        ),
        (
            "request.authn-context-legacy.nr12",
            12,
            |r| r.class_refs = vec!["urn:oasis:names:tc:SAML:2.0:ac:classes:SpidL2".into()],
            true,
            Some((ns::STATUS_REQUESTER, Some(ns::STATUS_NO_AUTHN_CONTEXT))),
        ),
        (
            "request.issue-instant-old.nr13",
            13,
            |r| r.issue_instant = Some("2020-01-01T00:00:00Z".into()),
            true,
            Some((ns::STATUS_REQUESTER, Some(ns::STATUS_REQUEST_DENIED))),
        ),
        (
            "request.destination-other.nr14",
            14,
            |r| r.destination = Some("https://other-idp.example/sso".into()),
            true,
            Some((ns::STATUS_REQUESTER, Some(ns::STATUS_REQUEST_UNSUPPORTED))),
        ),
        (
            "request.is-passive.nr15",
            15,
            |r| r.is_passive = Some("true".into()),
            true,
            Some((ns::STATUS_REQUESTER, Some(ns::STATUS_NO_PASSIVE))),
        ),
        (
            "request.acs-index-unknown.nr16",
            16,
            |r| r.acs_index = Some("7".into()),
            true,
            Some((ns::STATUS_REQUESTER, Some(ns::STATUS_REQUEST_UNSUPPORTED))),
        ),
        (
            "request.name-id-policy.nr17",
            17,
            |r| {
                r.name_id_policy_format =
                    Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into())
            },
            true,
            Some((ns::STATUS_REQUESTER, Some(ns::STATUS_REQUEST_UNSUPPORTED))),
        ),
        (
            "request.attribute-index-unknown.nr18",
            18,
            |r| r.attribute_index = Some("9".into()),
            true,
            Some((ns::STATUS_REQUESTER, Some(ns::STATUS_REQUEST_UNSUPPORTED))),
        ),
    ]
}

async fn malformed_checks(
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
    let sso_url = Url::parse(&sso)?;
    for (id, nr, edit, signed, to_sp) in malformed() {
        let mut r = AuthnRequest::spid(
            sp_entity,
            &sso,
            spid_core::clock::now(),
            SpidLevel::L2,
            Comparison::Minimum,
            0,
            0,
        );
        edit(&mut r);
        let signing = signed.then_some((&sp_cred.key, SigAlg::RsaSha256));
        let url = binding::encode_redirect(
            &sso_url,
            MessageParam::SamlRequest,
            &r.to_element().to_xml(),
            Some("check-idp"),
            signing,
        )?;
        let mut ua = runner::user_agent()?;
        let page = ua.get(&url).await?;
        let (pass, detail) = match (to_sp, response_status(&page)) {
            (None, resp) => {
                let refused = page.status >= 400
                    && resp.is_none()
                    && !page.body.contains("type=\"password\"");
                (
                    refused && page.body.contains(&format!("nr{nr}")),
                    format!(
                        "HTTP {} page, {}",
                        page.status,
                        match &resp {
                            None => "no error Response".to_string(),
                            Some((c, s, m)) =>
                                format!("Response {c} {} {}", shown(s.as_deref()), shown(Some(m))),
                        }
                    ),
                )
            }
            (Some((st, sub)), Some((c, s, m))) => (
                c == st && s.as_deref() == sub && m == format!("ErrorCode nr{nr}"),
                format!("{c} {} {}", shown(s.as_deref()), shown(Some(m))),
            ),
            (Some(_), None) => (false, format!("no error Response (HTTP {})", page.status)),
        };
        check(out, id, pass, detail);
    }
    Ok(())
}

/// Runs `check-idp`.
pub async fn check_idp(opts: &CheckIdpOptions) -> anyhow::Result<CheckIdpReport> {
    let text = crate::external::load_text(&opts.metadata).await?;
    let (mut checks, md) = metadata_checks(&text);
    let md = md.ok_or_else(|| anyhow::anyhow!("IdP metadata unusable"))?;
    let creds = Credentials::load(opts.certs.as_deref())?;
    let l = tokio::net::TcpListener::bind(&opts.sp_listen).await?;
    let base = format!("http://{}", l.local_addr()?);
    let mut cfg = SpConfig::new(&base, creds.sp.clone());
    // Our SP judges every rule but accepts any level the request allows: the level duty is
    // judged here, per request.
    cfg.min_level = SpidLevel::L1;
    let sp = ServiceProvider::new(cfg)?;
    sp.register_idp(&text, None)?;
    let task = tokio::spawn({
        let sp = sp.clone();
        async move {
            let _ = sp.serve(l).await;
        }
    });
    let result = async {
        malformed_checks(&md, &sp.config().entity_id, &creds.sp, &mut checks).await?;
        let driver = opts.driver.clone().unwrap_or_else(LoginDriver::builtin);
        let logins = login_matrix(&sp, &base, &md, &driver).await?;
        Ok::<_, anyhow::Error>(CheckIdpReport { checks, logins })
    }
    .await;
    task.abort();
    result
}

async fn login_matrix(
    sp: &ServiceProvider,
    base: &str,
    md: &EntityMetadata,
    driver: &LoginDriver,
) -> anyhow::Result<Vec<LoginResult>> {
    let strongest = driver
        .users
        .iter()
        .max_by_key(|u| u.level)
        .ok_or_else(|| anyhow::anyhow!("the login driver has no users"))?;
    let mut plan: Vec<(SpidLevel, Comparison, &DriverUser, bool)> = Vec::new();
    for l in SpidLevel::ALL {
        for c in Comparison::ALL {
            plan.push((l, c, strongest, false));
        }
    }
    // A user without L3 credentials asked for L3 (already in the matrix when nobody has L3).
    let weak = driver
        .users
        .iter()
        .filter(|u| u.level < SpidLevel::L3)
        .min_by_key(|u| u.level);
    if let Some(weak) = weak.filter(|_| strongest.level == SpidLevel::L3) {
        plan.push((SpidLevel::L3, Comparison::Minimum, weak, true));
    }
    let requested: Vec<String> = sp.config().attributes.clone();
    let mut out = Vec::new();
    for (level, cmp, user, weak) in plan {
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
            id: login_id(level, cmp, weak),
            level,
            comparison: cmp,
            user: user.username.clone(),
            expected: expected.into(),
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
