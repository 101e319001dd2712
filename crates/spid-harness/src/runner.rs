//! Runs catalogue cases through a real browser-like flow: SP `/login` → IdP `/sso` → login,
//! OTP and consent pages → auto-posted Response → SP `/acs`, and judges the SP's answer.

use crate::agent::{AgentError, Binding, Exchange, Page, UserAgent};
use crate::catalogue::{Case, Consent, Expect, Flow};
use chrono::Duration;
use serde::Serialize;
use spid_core::clock::FixedClock;
use spid_core::saml::authn_request::AuthnRequest;
use spid_core::saml::binding as saml_binding;
use spid_core::saml::dsig::Credential;
use spid_core::saml::xml::{self as sxml, Limits};
use spid_core::{satisfies, Rule};
use spid_idp::users::User;
use spid_idp::{IdentityProvider, IdpConfig};
use spid_sp::{ServiceProvider, SpConfig};
use std::sync::Arc;
use std::time::Instant;
use url::Url;

/// The verdict an SP gave, by the conformance contract: 200 accepted; 400/401/403/422/500
/// rejected; anything else (or no answer) is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// HTTP 200.
    Accept,
    /// HTTP 400/401/403/422/500.
    Reject,
    /// Anything else.
    Error,
}

impl Verdict {
    /// The verdict for a final status code.
    pub fn from_status(s: u16) -> Self {
        match s {
            200 => Verdict::Accept,
            400 | 401 | 403 | 422 | 500 => Verdict::Reject,
            _ => Verdict::Error,
        }
    }
}

/// The result of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// Case id.
    pub id: String,
    /// Case family.
    pub family: String,
    /// Case title.
    pub title: String,
    /// Expected outcome.
    pub expected: Expect,
    /// Verdict obtained.
    pub verdict: Verdict,
    /// Final HTTP status.
    pub status: u16,
    /// Rule code the SP reported (X-SPID-Rule), if any.
    pub rule: Option<String>,
    /// Whether verdict and rule meet the expectation.
    pub pass: bool,
    /// Why it did not (or the harness error).
    pub note: Option<String>,
    /// Milliseconds.
    pub millis: u128,
    /// Every HTTP exchange, SAML messages decoded.
    pub trace: Vec<Exchange>,
}

/// Decodes SAML messages for traces.
pub fn decode_saml(_param: &str, value: &str, binding: Binding) -> Option<String> {
    match binding {
        Binding::Post => saml_binding::decode_post(value, saml_binding::MAX_MESSAGE_BYTES).ok(),
        Binding::Redirect => {
            let raw = format!(
                "SAMLRequest={}",
                url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>()
            );
            saml_binding::decode_redirect(&raw, saml_binding::MAX_MESSAGE_BYTES)
                .ok()
                .map(|m| m.xml)
        }
    }
}

/// A fresh user agent with the SAML decoder.
pub fn user_agent() -> Result<UserAgent, AgentError> {
    Ok(UserAgent::new()?.with_decoder(decode_saml))
}

/// The test credentials shipped in `certs/` (embedded).
pub struct Credentials {
    /// The IdP's.
    pub idp: Credential,
    /// The SP's.
    pub sp: Credential,
    /// The attacker's.
    pub foreign: Credential,
}

impl Credentials {
    /// Loads `idp`, `sp` and `foreign` (`<name>.key.pem`, `<name>.crt.pem`) from `dir`, or the
    /// embedded test credentials when `dir` is None.
    pub fn load(dir: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let Some(d) = dir else {
            return Self::embedded();
        };
        Ok(Credentials {
            idp: Credential::load(d, "idp")?,
            sp: Credential::load(d, "sp")?,
            foreign: Credential::load(d, "foreign")?,
        })
    }

    /// The embedded test credentials.
    pub fn embedded() -> anyhow::Result<Self> {
        let c = |k: &str, c: &str| Credential::from_pem(k.as_bytes(), c.as_bytes());
        Ok(Credentials {
            idp: c(
                include_str!("../../../certs/idp.key.pem"),
                include_str!("../../../certs/idp.crt.pem"),
            )?,
            sp: c(
                include_str!("../../../certs/sp.key.pem"),
                include_str!("../../../certs/sp.crt.pem"),
            )?,
            foreign: c(
                include_str!("../../../certs/foreign.key.pem"),
                include_str!("../../../certs/foreign.crt.pem"),
            )?,
        })
    }
}

/// Our IdP and our SP, each on its own 127.0.0.1 ephemeral port, trusting each other through
/// metadata fetched over HTTP.
pub struct InternalPair {
    /// The IdP handle (to arm plans).
    pub idp: IdentityProvider,
    /// The SP handle.
    pub sp: ServiceProvider,
    /// SP base URL.
    pub sp_url: String,
    /// IdP base URL.
    pub idp_url: String,
    /// The one clock both servers read: stopped, so time-based cases are exact.
    pub clock: Arc<FixedClock>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for InternalPair {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl InternalPair {
    /// Starts both servers.
    pub async fn start(creds: Credentials) -> anyhow::Result<Self> {
        let idp_l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let sp_l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let idp_url = format!("http://{}", idp_l.local_addr()?);
        let sp_url = format!("http://{}", sp_l.local_addr()?);
        let clock = Arc::new(FixedClock::new(chrono::Utc::now()));
        let mut idp_cfg = IdpConfig::new(&idp_url, creds.idp.clone(), creds.foreign);
        idp_cfg.clock = clock.clone();
        let mut sp_cfg = SpConfig::new(&sp_url, creds.sp);
        sp_cfg.clock = clock.clone();
        let idp = IdentityProvider::new(idp_cfg)?;
        let sp = ServiceProvider::new(sp_cfg)?;
        let tasks = vec![
            tokio::spawn({
                let idp = idp.clone();
                async move {
                    let _ = idp.serve(idp_l).await;
                }
            }),
            tokio::spawn({
                let sp = sp.clone();
                async move {
                    let _ = sp.serve(sp_l).await;
                }
            }),
        ];
        // Exchange metadata over the wire, as two strangers would.
        let http = reqwest::Client::builder().no_proxy().build()?;
        let idp_md = http
            .get(format!("{idp_url}/metadata"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let sp_md = http
            .get(format!("{sp_url}/metadata"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        sp.register_idp(&idp_md, Some(std::slice::from_ref(&creds.idp.cert_der)))?;
        idp.register_sp(&sp_md)?;
        Ok(InternalPair {
            idp,
            sp,
            sp_url,
            idp_url,
            clock,
            tasks,
        })
    }
}

/// How the driver behaves on the IdP's pages.
#[derive(Debug, Clone, Copy, Default)]
pub struct Behaviour<'a> {
    /// Consent choice.
    pub consent: Consent,
    /// The flow (wrong password, cancel, timeout…).
    pub flow: Flow,
    /// Clock to move forward for the timeout flow.
    pub clock: Option<&'a FixedClock>,
    /// How long to wait for the timeout flow.
    pub timeout: Option<Duration>,
}

/// Logs `user` in through our IdP's pages, starting at `login_url`; returns the final page.
pub async fn drive_login(
    ua: &mut UserAgent,
    login_url: &Url,
    user: Option<&User>,
    how: Behaviour<'_>,
) -> Result<Page, AgentError> {
    let first = ua.get(login_url).await?;
    continue_login(ua, first, user, how).await
}

/// Goes on from `first` (the answer to whatever started the login) through our IdP's login,
/// OTP and consent pages, auto-posting forms; returns the final page.
pub async fn continue_login(
    ua: &mut UserAgent,
    first: Page,
    user: Option<&User>,
    how: Behaviour<'_>,
) -> Result<Page, AgentError> {
    let mut page = ua.auto_post(first).await?;
    for _ in 0..8 {
        let next = if let Some(f) = page.form_by_id("login-form") {
            if how.flow == Flow::Timeout {
                if let (Some(c), Some(t)) = (how.clock, how.timeout) {
                    c.advance(t + Duration::seconds(1));
                }
            }
            let (u, p) = user
                .map(|u| (u.username.as_str(), u.password.as_str()))
                .unwrap_or(("nobody", "wrong"));
            let p = if how.flow == Flow::WrongPassword {
                "wrong-password"
            } else {
                p
            };
            let action = if how.flow == Flow::Cancel {
                "cancel"
            } else {
                "login"
            };
            ua.submit(
                &page,
                &f,
                &[("username", u), ("password", p), ("action", action)],
            )
            .await?
        } else if let Some(f) = page.form_by_id("otp-form") {
            let otp = user.and_then(|u| u.otp.as_deref()).unwrap_or_default();
            let otp = if how.flow == Flow::WrongOtp {
                "000000"
            } else {
                otp
            };
            ua.submit(&page, &f, &[("otp", otp), ("action", "verify")])
                .await?
        } else if let Some(f) = page.form_by_id("consent-form") {
            let a = match how.consent {
                Consent::Accept => "accept",
                Consent::Deny => "deny",
            };
            ua.submit(&page, &f, &[("action", a)]).await?
        } else {
            break;
        };
        page = ua.auto_post(next).await?;
    }
    Ok(page)
}

/// The AuthnRequest the SP sent, decoded from the trace.
pub fn sent_request(trace: &[Exchange]) -> Option<AuthnRequest> {
    trace
        .iter()
        .flat_map(|x| x.saml.iter())
        .filter(|m| m.param == "SAMLRequest")
        .find_map(|m| {
            let el = sxml::parse(m.xml.as_deref()?, &Limits::default()).ok()?;
            AuthnRequest::from_element(&el)
        })
}

/// Turns a level-dependent expectation into a plain one, from the request the SP sent and the
/// SPID floor of level 2 (a level below it is refused whatever was asked).
pub fn resolve(expect: &Expect, request: Option<&AuthnRequest>) -> Expect {
    match expect {
        Expect::Level { level } => {
            let ok = request
                .and_then(AuthnRequest::requested_level)
                .is_some_and(|(req, cmp)| {
                    satisfies(req, cmp, *level) && *level >= spid_core::SpidLevel::L2
                });
            if ok {
                Expect::Accept
            } else {
                Expect::Reject {
                    rules: vec![Rule::AssertionLevelInsufficient.code().into()],
                }
            }
        }
        e => e.clone(),
    }
}

/// Judges a final page against a case's expectation. Our SP must name the deciding rule; an
/// external SP that names none is judged on the verdict alone.
pub fn judge(
    expect: &Expect,
    verdict: Verdict,
    rule: Option<&str>,
    rule_required: bool,
) -> (bool, Option<String>) {
    match (expect, verdict) {
        (Expect::Accept, Verdict::Accept) => (true, None),
        (Expect::Either { .. }, Verdict::Accept | Verdict::Reject) => (true, None),
        (Expect::Level { .. }, _) => (false, Some("level expectation not resolved".into())),
        (Expect::Reject { rules }, Verdict::Reject) => match rule {
            Some(r) if rules.iter().any(|x| x == r) => (true, None),
            Some(r) => (
                false,
                Some(format!("rejected by {r}, expected {}", rules.join(" | "))),
            ),
            None if rule_required => (false, Some("rejected without a rule code".into())),
            None => (true, None),
        },
        (_, v) => (false, Some(format!("verdict {v:?}"))),
    }
}

/// Where cases are aimed: our IdP (to arm plans) and the login URL of the SP under test.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    /// The fake IdP that answers.
    pub idp: &'a IdentityProvider,
    /// The SP's login URL (starts a login at our IdP).
    pub login_url: &'a Url,
    /// The stopped clock both sides read (internal pair only).
    pub clock: Option<&'a FixedClock>,
    /// Our own SP: it understands `level`/`comparison`/`binding` on its login URL and always
    /// names the deciding rule.
    pub internal: bool,
}

impl InternalPair {
    /// The pair as a [`Target`]; `login_url` must outlive it.
    pub fn target<'a>(&'a self, login_url: &'a Url) -> Target<'a> {
        Target {
            idp: &self.idp,
            login_url,
            clock: Some(&self.clock),
            internal: true,
        }
    }

    /// The SP's login URL.
    pub fn login_url(&self) -> Url {
        Url::parse(&format!("{}/login", self.sp_url)).expect("loopback URL")
    }
}

/// Runs one case against the internal pair.
pub async fn run_case(pair: &InternalPair, case: &Case, users: &[User]) -> CaseResult {
    let login = pair.login_url();
    run_case_on(pair.target(&login), case, users).await
}

/// Runs one case against `target`.
pub async fn run_case_on(target: Target<'_>, case: &Case, users: &[User]) -> CaseResult {
    let started = Instant::now();
    let mut ua = match user_agent() {
        Ok(u) => u,
        Err(e) => return failed(case, started, e.to_string(), Vec::new()),
    };
    target.idp.disarm();
    let user = users.iter().find(|u| u.username == case.user);
    let mut login = target.login_url.clone();
    if target.internal {
        let query = case.request.query();
        if !query.is_empty() {
            login.set_query(Some(&query));
        }
    }
    target.idp.arm(case.plan.clone());
    let result = async {
        let how = Behaviour {
            consent: case.consent,
            flow: case.flow,
            clock: target.clock,
            timeout: Some(target.idp.config().login_timeout),
        };
        let page = drive_login(&mut ua, &login, user, how).await?;
        match case.flow {
            Flow::Replay | Flow::ReplayNewSession => {
                let sent = ua
                    .trace()
                    .iter()
                    .rev()
                    .find(|x| x.request_form.iter().any(|(k, _)| k == "SAMLResponse"))
                    .map(|x| (x.url.clone(), x.request_form.clone()));
                let Some((acs, form)) = sent else {
                    return Err(AgentError::NoForm(
                        "no SAMLResponse was posted to replay".into(),
                    ));
                };
                let acs = Url::parse(&acs).map_err(|e| AgentError::BadLocation(e.to_string()))?;
                if case.flow == Flow::ReplayNewSession {
                    ua.clear_cookies();
                }
                ua.post_form(&acs, &form).await
            }
            _ => Ok(page),
        }
    }
    .await;
    target.idp.disarm();
    let trace = ua.take_trace();
    match result {
        Err(e) => failed(case, started, e.to_string(), trace),
        Ok(page) => {
            let verdict = Verdict::from_status(page.status);
            let rule = page.spid_rule().map(str::to_string);
            let expected = resolve(&case.expect, sent_request(&trace).as_ref());
            let (pass, note) = judge(&expected, verdict, rule.as_deref(), target.internal);
            CaseResult {
                id: case.id.clone(),
                family: case.family.clone(),
                title: case.title.clone(),
                expected,
                verdict,
                status: page.status,
                rule,
                pass,
                note,
                millis: started.elapsed().as_millis(),
                trace,
            }
        }
    }
}

fn failed(case: &Case, started: Instant, note: String, trace: Vec<Exchange>) -> CaseResult {
    CaseResult::harness_error(case, started, note, trace)
}

impl CaseResult {
    /// The result of a case the harness could not drive to a verdict (`note` says why).
    pub fn harness_error<C: crate::catalogue::CatalogueCase>(
        case: &C,
        started: Instant,
        note: String,
        trace: Vec<Exchange>,
    ) -> CaseResult {
        CaseResult {
            id: case.id().to_string(),
            family: case.family().to_string(),
            title: case.title().to_string(),
            expected: case.expect().clone(),
            verdict: Verdict::Error,
            status: 0,
            rule: None,
            pass: false,
            note: Some(note),
            millis: started.elapsed().as_millis(),
            trace,
        }
    }
}

/// The honest L2 login every run starts and ends with.
pub fn sanity_case() -> Case {
    Case {
        id: "sanity".into(),
        title: "honest L2 login (sanity)".into(),
        family: "sanity".into(),
        refs: vec![],
        user: "mario.rossi".into(),
        flow: Flow::Login,
        consent: Consent::Accept,
        request: Default::default(),
        scope: Default::default(),
        plan: Default::default(),
        expect: Expect::Accept,
    }
}
