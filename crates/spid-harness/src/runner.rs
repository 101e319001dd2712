//! Runs catalogue cases through a real browser-like flow: SP `/login` → IdP `/sso` → login,
//! OTP and consent pages → auto-posted Response → SP `/acs`, and judges the SP's answer.

use crate::agent::{AgentError, Binding, Exchange, Page, UserAgent};
use crate::catalogue::{Case, Consent, Expect, Flow};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use spid_core::cie::IdpProfile;
use spid_core::clock::FixedClock;
use spid_core::saml::authn_request::AuthnRequest;
use spid_core::saml::binding as saml_binding;
use spid_core::saml::dsig::Credential;
use spid_core::saml::metadata::EntityMetadata;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The verdict of an OAuth endpoint (an OP's authorization, token, userinfo): 200
    /// accepted; any 4xx rejected (RFC 6749 5.2 and RFC 6750 3.1 answer 400 or 401, some
    /// OPs 403 or 405); anything else, a 500 included, is an error: an OP that crashes has
    /// not refused the request by a rule. The browser-facing SP contract is
    /// [`Verdict::from_status`].
    pub fn from_oauth_status(s: u16) -> Self {
        match s {
            200 => Verdict::Accept,
            400..=499 => Verdict::Reject,
            _ => Verdict::Error,
        }
    }

    /// The verdict for an SP's (or RP's) final page, compatible with spid-sp-test: 200
    /// accepted; 400/401/403/422/500 refused (a 500 is reported as refused by crashing).
    pub fn from_status(s: u16) -> Self {
        match s {
            200 => Verdict::Accept,
            400 | 401 | 403 | 422 | 500 => Verdict::Reject,
            _ => Verdict::Error,
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Accept => "accept",
            Verdict::Reject => "reject",
            Verdict::Error => "error",
        })
    }
}

/// What a case's result means for the run: exit 0 when every case is `pass`, `xfail`,
/// `warn` or `skip`; 1 for any `fail`, `xpass` or `error`; 2 when the run had a setup error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Verdict and rule meet the expectation.
    Pass,
    /// They do not.
    Fail,
    /// They do not, as the peer's expectation file says (with its reason).
    Xfail,
    /// The peer file expects a failure that did not happen: the file is stale.
    Xpass,
    /// A flagged case (e.g. hardening) not met by an external target: reported, not failed.
    Warn,
    /// Not run (with the reason).
    Skip,
    /// The harness could not drive the case to a verdict the trace proves.
    Error,
}

impl Outcome {
    /// The plain outcome of a judged case.
    pub fn of(pass: bool, verdict: Verdict) -> Outcome {
        match (pass, verdict) {
            (true, _) => Outcome::Pass,
            (false, Verdict::Error) => Outcome::Error,
            (false, _) => Outcome::Fail,
        }
    }

    /// Whether this outcome fails the run.
    pub fn fails_run(self) -> bool {
        matches!(self, Outcome::Fail | Outcome::Xpass | Outcome::Error)
    }

    /// The word the reports print.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Xfail => "XFAIL",
            Outcome::Xpass => "XPASS",
            Outcome::Warn => "WARN",
            Outcome::Skip => "SKIP",
            Outcome::Error => "ERROR",
        }
    }
}

/// The result of one case.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// What the result means for the run: `pass` or `fail` as judged (or `error`), then
    /// the peer's expected deviations and the case's flags applied ([`CaseResult::settle`]).
    pub outcome: Outcome,
    /// Why it did not (or the harness error).
    pub note: Option<String>,
    /// A finding beside the verdict, e.g. "refused by crashing (HTTP 500)".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
    /// Why the outcome is not plain pass/fail: the peer file's reason or the flag's meaning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Milliseconds.
    pub millis: u128,
    /// Every HTTP exchange, SAML messages decoded.
    pub trace: Vec<Exchange>,
    /// The honest message the case's plan edited (the reports diff the sent one against it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honest: Option<String>,
    /// The side of the run (`SAML (SP side)`, `OIDC RP side`, …), set by the runner.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub side: String,
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

/// The browsers of one run, kept between its cases: each case takes one in a fresh session
/// ([`UserAgent::new_session`]: no cookies, empty trace) with its open connections, so a case
/// costs neither a new HTTP client nor new TCP connections to the SP and the IdP. At most as
/// many as cases run at once. Live as long as the run (one runtime): pooled connections are
/// tasks of the runtime that opened them.
#[derive(Debug, Default)]
pub struct AgentPool {
    idle: std::sync::Mutex<Vec<UserAgent>>,
}

impl AgentPool {
    /// A pooled agent in a fresh session, or a new one.
    pub fn take(&self) -> Result<UserAgent, AgentError> {
        let pooled = match self.idle.lock() {
            Ok(mut idle) => idle.pop(),
            Err(poisoned) => poisoned.into_inner().pop(),
        };
        match pooled {
            Some(mut ua) => {
                ua.new_session();
                Ok(ua)
            }
            None => user_agent(),
        }
    }

    /// Returns an agent for a later case.
    pub fn give(&self, ua: UserAgent) {
        match self.idle.lock() {
            Ok(mut idle) => idle.push(ua),
            Err(poisoned) => poisoned.into_inner().push(ua),
        }
    }
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
    /// The browsers its cases take turns with.
    pub agents: AgentPool,
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
    /// Starts both servers within the default [`spid_net::ServeLimits`].
    pub async fn start(creds: Credentials) -> anyhow::Result<Self> {
        Self::start_with_limits(creds, spid_net::ServeLimits::default()).await
    }

    /// Starts both servers, each within `limits`.
    pub async fn start_with_limits(
        creds: Credentials,
        limits: spid_net::ServeLimits,
    ) -> anyhow::Result<Self> {
        Self::start_profiled(creds, limits, IdpProfile::Spid, IdpProfile::Spid).await
    }

    /// Starts our IdP in `idp` profile and our SP registering it as `sp_registers_as` (the
    /// `cie` side: both CIE; its test of a wrong SP: a CIE IdP registered as SPID). A CIE
    /// pair's SP publishes CIE SP metadata requesting the eIDAS minimum set and trusts the
    /// IdP's unsigned metadata.
    pub async fn start_profiled(
        creds: Credentials,
        limits: spid_net::ServeLimits,
        idp_profile: IdpProfile,
        sp_registers_as: IdpProfile,
    ) -> anyhow::Result<Self> {
        let idp_l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let sp_l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let idp_url = format!("http://{}", idp_l.local_addr()?);
        let sp_url = format!("http://{}", sp_l.local_addr()?);
        let clock = Arc::new(FixedClock::new(spid_core::clock::now()));
        let mut idp_cfg = match idp_profile {
            IdpProfile::Spid => IdpConfig::new(&idp_url, creds.idp.clone(), creds.foreign),
            IdpProfile::Cie => IdpConfig::cie(&idp_url, creds.idp.clone(), creds.foreign),
        };
        idp_cfg.clock = clock.clone();
        let metadata_url = idp_cfg.metadata_url();
        let mut sp_cfg = SpConfig::new(&sp_url, creds.sp);
        sp_cfg.clock = clock.clone();
        if idp_profile == IdpProfile::Cie {
            sp_cfg.attributes = spid_core::cie::MINIMUM_ATTRIBUTES
                .map(String::from)
                .to_vec();
            sp_cfg.cie_metadata = true;
        }
        let idp = IdentityProvider::new(idp_cfg)?;
        let sp = ServiceProvider::new(sp_cfg)?;
        let tasks = vec![
            tokio::spawn({
                let idp = idp.clone();
                async move {
                    let _ = idp.serve_limited(idp_l, limits).await;
                }
            }),
            tokio::spawn({
                let sp = sp.clone();
                async move {
                    let _ = sp.serve_limited(sp_l, limits).await;
                }
            }),
        ];
        // Exchange metadata over the wire, as two strangers would.
        let http = reqwest::Client::builder().no_proxy().build()?;
        let idp_md = http
            .get(metadata_url)
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
        // The CIE IdP's metadata is unsigned, as the real one's.
        let verify =
            (idp_profile == IdpProfile::Spid).then_some(std::slice::from_ref(&creds.idp.cert_der));
        sp.register_idp_as(&idp_md, verify, sp_registers_as)?;
        idp.register_sp(&sp_md)?;
        Ok(InternalPair {
            idp,
            sp,
            sp_url,
            idp_url,
            clock,
            agents: AgentPool::default(),
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
                    codes: vec![],
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
        (Expect::Reject { rules, .. }, Verdict::Reject) => match rule {
            Some(r) if rules.iter().any(|x| x == r) => (true, None),
            Some(r) => (
                false,
                Some(format!("rejected by {r}, expected {}", rules.join(" | "))),
            ),
            None if rule_required => (false, Some("rejected without a rule code".into())),
            None => (true, None),
        },
        (_, v) => (
            false,
            Some(format!(
                "got {v}, expected {}",
                crate::report::expected_text(expect)
            )),
        ),
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
    /// The SP's metadata, to resolve the ACS an AuthnRequest names by index.
    pub sp: Option<&'a EntityMetadata>,
    /// The run's browsers.
    pub agents: &'a AgentPool,
}

impl InternalPair {
    /// The pair as a [`Target`]; `login_url` must outlive it.
    pub fn target<'a>(&'a self, login_url: &'a Url) -> Target<'a> {
        Target {
            idp: &self.idp,
            login_url,
            clock: Some(&self.clock),
            internal: true,
            sp: None,
            agents: &self.agents,
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

/// Runs one case against `target`, in a browser session of its own: the case's plan is armed
/// for this session only (the [`spid_idp::CASE_COOKIE`]), so cases may run concurrently. The
/// harness's events for the case are inside a `case` span, closed by one `case judged` event.
pub async fn run_case_on(target: Target<'_>, case: &Case, users: &[User]) -> CaseResult {
    use tracing::Instrument;
    let span = tracing::info_span!("case", id = %case.id);
    let r = run_case_traced(target, case, users)
        .instrument(span.clone())
        .await;
    span.in_scope(|| {
        tracing::info!(
            outcome = r.outcome.label(),
            status = r.status,
            rule = r.rule.as_deref().unwrap_or("-"),
            "case judged"
        )
    });
    r
}

async fn run_case_traced(target: Target<'_>, case: &Case, users: &[User]) -> CaseResult {
    let started = Instant::now();
    let mut ua = match target.agents.take() {
        Ok(u) => u,
        Err(e) => return failed(case, started, e.to_string(), Vec::new()),
    };
    let token = format!("{:032x}", rand::random::<u128>());
    match Url::parse(&target.idp.config().base_url) {
        Ok(idp_url) => ua.add_cookie(
            &format!("{}={token}; Path=/", spid_idp::CASE_COOKIE),
            &idp_url,
        ),
        Err(e) => {
            return failed(
                case,
                started,
                format!("our IdP's base URL: {e}"),
                Vec::new(),
            )
        }
    }
    let user = users.iter().find(|u| u.username == case.user);
    let mut login = target.login_url.clone();
    if target.internal {
        let query = case.request.query();
        if !query.is_empty() {
            login.set_query(Some(&query));
        }
    }
    target.idp.arm_for(&token, case.plan.clone());
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
    let end = target.idp.disarm_for(&token);
    let trace = ua.take_trace();
    target.agents.give(ua);
    if let Some(e) = end.plan_error {
        return failed(
            case,
            started,
            format!("the case's fault plan could not be carried out: {e}"),
            trace,
        );
    }
    let page = match result {
        Err(e) => return failed(case, started, e.to_string(), trace),
        Ok(page) => page,
    };
    if let Err(stop) = prove_flow(&trace, target.idp, target.sp) {
        return failed(case, started, stop.to_string(), trace);
    }
    let verdict = Verdict::from_status(page.status);
    let rule = page.spid_rule().map(str::to_string);
    let expected = resolve(&case.expect, sent_request(&trace).as_ref());
    let (mut pass, mut note) = judge(&expected, verdict, rule.as_deref(), target.internal);
    if let (false, Some(why)) = (pass, &end.refused) {
        // The SP judged our error Response: say what our IdP refused, and why.
        let n = note.take().map(|n| format!("; {n}")).unwrap_or_default();
        note = Some(format!(
            "our IdP refused the SP's AuthnRequest ({why}) and answered with an error Response (see the authn-request checks; --lenient-requests answers despite request defects){n}"
        ));
    }
    let mut finding = (page.status == 500).then(|| "refused by crashing (HTTP 500)".to_string());
    if verdict == Verdict::Accept && !target.internal {
        match comment_truncation(&trace, &page.body) {
            Some(Truncation::Truncated { shown, signed }) => {
                pass = false;
                note = Some(format!(
                    "accepted the identity truncated at the comment: the page shows `{shown}`, the signed value is `{signed}`"
                ));
            }
            Some(Truncation::NotShown { signed }) => {
                finding = Some(format!(
                    "accepted; its page shows neither the signed value `{signed}` nor its truncation, so whether it read the value whole is not known"
                ));
            }
            Some(Truncation::Whole) | None => {}
        }
    }
    CaseResult {
        id: case.id.clone(),
        family: case.family.clone(),
        title: case.title.clone(),
        expected,
        verdict,
        status: page.status,
        rule,
        outcome: Outcome::of(pass, verdict),
        note,
        finding,
        why: None,
        millis: started.elapsed().as_millis(),
        trace,
        honest: end.honest,
        side: String::new(),
    }
}

/// Where a login's flow stopped short of crossing both sides.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowStop {
    /// Nothing reached our SSO endpoint.
    #[error("the login URL answered {status} at {at} without sending an AuthnRequest to our IdP ({sso}); if that page is an IdP chooser, pass the IdP in the URL (e.g. ?idp={entity_id})")]
    NoRequest {
        /// Final status.
        status: u16,
        /// Final URL.
        at: String,
        /// Our SSO endpoint.
        sso: String,
        /// Our entity id.
        entity_id: String,
    },
    /// Our IdP refused the request on its own error page.
    #[error("our IdP refused the SP's AuthnRequest{code}: {detail} (see the authn-request checks; --lenient-requests answers despite request defects)")]
    Refused {
        /// ` with SPID error nrN`, or empty.
        code: String,
        /// The IdP's explanation.
        detail: String,
    },
    /// No Response was posted anywhere.
    #[error("our IdP sent no Response: the flow ended at {at} with HTTP {status}")]
    NoResponse {
        /// Final status.
        status: u16,
        /// Final URL.
        at: String,
    },
    /// The Response went somewhere else than the ACS the request named.
    #[error(
        "our Response was posted to {posted}, not to the ACS the AuthnRequest named ({named})"
    )]
    WrongAcs {
        /// Where it went.
        posted: String,
        /// What the request named.
        named: String,
    },
    /// The browser went on elsewhere after the ACS.
    #[error("after our Response reached the ACS ({acs}) the browser went on to {at}; the SP's answer to the Response is not the final page")]
    WentOn {
        /// The ACS.
        acs: String,
        /// Where it ended.
        at: String,
    },
}

/// Proves from the trace that a login crossed both sides: the SP's AuthnRequest arrived at our
/// SSO endpoint, our Response was posted to the ACS that request named, and the final page is
/// the SP's answer to that POST (directly or through its redirects).
pub fn prove_flow(
    trace: &[Exchange],
    idp: &IdentityProvider,
    sp: Option<&EntityMetadata>,
) -> Result<(), FlowStop> {
    let cfg = idp.config();
    let sso = cfg.sso_url();
    let (sso_redirect, sso_post) = cfg.sso_locations();
    let last = trace.last();
    let (status, at) = last
        .map(|x| (x.status, without_query(&x.url)))
        .unwrap_or((0, "(no exchange)".into()));
    let Some(i) = trace.iter().position(|x| {
        let at = without_query(&x.url);
        (at == sso_redirect || at == sso_post) && x.saml.iter().any(|m| m.param == "SAMLRequest")
    }) else {
        return Err(FlowStop::NoRequest {
            status,
            at,
            sso,
            entity_id: cfg.entity_id.clone(),
        });
    };
    let posted = trace
        .iter()
        .enumerate()
        .skip(i)
        .filter(|(_, x)| {
            x.method == "POST" && x.request_form.iter().any(|(k, _)| k == "SAMLResponse")
        })
        .map(|(j, _)| j)
        .next_back();
    let Some(j) = posted else {
        let refused = trace[i..]
            .iter()
            .find(|x| x.url.starts_with(&cfg.base_url) && x.status >= 400);
        return Err(match refused {
            Some(x) => {
                let (code, detail) = idp_error_page(&x.body_excerpt);
                FlowStop::Refused { code, detail }
            }
            None => FlowStop::NoResponse { status, at },
        });
    };
    let posted_to = without_query(&trace[j].url);
    let named = trace[i]
        .saml
        .iter()
        .find(|m| m.param == "SAMLRequest")
        .and_then(|m| m.xml.as_deref())
        .and_then(|x| sxml::parse(x, &Limits::default()).ok())
        .and_then(|e| AuthnRequest::from_element(&e))
        .and_then(|r| acs_named(&r, sp));
    if let Some(named) = named {
        if without_query(&named) != posted_to {
            return Err(FlowStop::WrongAcs {
                posted: posted_to,
                named,
            });
        }
    }
    // Every hop after the POST but the last is a redirect: the last page answers the POST.
    if trace[j..trace.len() - 1]
        .iter()
        .any(|x| !(300..400).contains(&x.status))
    {
        return Err(FlowStop::WentOn { acs: posted_to, at });
    }
    Ok(())
}

/// The ACS URL an AuthnRequest names: its AssertionConsumerServiceURL, or the metadata ACS of
/// its index (the default ACS when it names neither); None when that cannot be known.
pub fn acs_named(req: &AuthnRequest, sp: Option<&EntityMetadata>) -> Option<String> {
    if let Some(u) = &req.acs_url {
        return Some(u.clone());
    }
    let acs = &sp?.sp.as_ref()?.acs;
    match req.acs_index.as_deref().and_then(|i| i.parse::<u16>().ok()) {
        Some(i) => acs.iter().find(|a| a.index == i),
        None => acs.iter().find(|a| a.is_default).or(acs.first()),
    }
    .map(|a| a.endpoint.location.clone())
}

fn without_query(u: &str) -> String {
    u.split(['?', '#']).next().unwrap_or(u).to_string()
}

/// The SPID error code and explanation on one of our IdP's error pages.
fn idp_error_page(body: &str) -> (String, String) {
    let doc = scraper::Html::parse_document(body);
    let code = scraper::Selector::parse("#spid-error")
        .ok()
        .and_then(|s| {
            doc.select(&s)
                .next()
                .and_then(|e| e.value().attr("data-code"))
        })
        .map(|c| format!(" with SPID error nr{c}"))
        .unwrap_or_default();
    let detail = scraper::Selector::parse("p")
        .ok()
        .and_then(|s| {
            doc.select(&s)
                .filter(|e| e.value().attr("id") != Some("spid-error"))
                .map(|e| e.text().collect::<String>().trim().to_string())
                .find(|t| !t.is_empty())
        })
        .unwrap_or_else(|| "no explanation on its page".into());
    (code, detail)
}

/// What an SP that accepted a comment-split value showed of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Truncation {
    /// The whole signed value.
    Whole,
    /// Only the part before the comment.
    Truncated {
        /// What the page shows.
        shown: String,
        /// What was signed (comments are not part of the canonical text).
        signed: String,
    },
    /// Neither.
    NotShown {
        /// What was signed.
        signed: String,
    },
}

/// For a Response whose signed text a comment splits (`ab<!---->c`), what the SP's page shows
/// of that value; None when the posted Response has no such comment.
pub fn comment_truncation(trace: &[Exchange], page: &str) -> Option<Truncation> {
    let xml = trace
        .iter()
        .rev()
        .flat_map(|x| x.saml.iter())
        .find(|m| m.param == "SAMLResponse")?
        .xml
        .as_deref()?;
    let at = xml.find("<!---->")?;
    let before = &xml[..at];
    let head = &before[before.rfind('>')? + 1..];
    let after = &xml[at + "<!---->".len()..];
    let tail = &after[..after.find('<')?];
    let signed = format!("{head}{tail}");
    Some(if page.contains(&signed) {
        Truncation::Whole
    } else if !head.is_empty() && page.contains(head) {
        Truncation::Truncated {
            shown: head.to_string(),
            signed,
        }
    } else {
        Truncation::NotShown { signed }
    })
}

/// Runs `cases` with up to `jobs` at a time, results in catalogue order (`progress` sees each
/// in that order too); a case for which `exclusive` holds (it moves the shared clock) runs
/// alone, after the cases before it and before those after it.
pub async fn run_ordered<C>(
    cases: &[C],
    jobs: usize,
    exclusive: impl Fn(&C) -> bool,
    run: impl AsyncFn(&C) -> CaseResult,
    mut progress: impl FnMut(&CaseResult),
) -> Vec<CaseResult> {
    use futures_util::StreamExt;
    let mut out = Vec::with_capacity(cases.len());
    let mut rest = cases;
    while !rest.is_empty() {
        let n = if exclusive(&rest[0]) {
            1
        } else {
            rest.iter().position(&exclusive).unwrap_or(rest.len())
        };
        let (batch, tail) = rest.split_at(n);
        let run = &run;
        let mut results = futures_util::stream::iter(batch)
            .map(|c| run(c))
            .buffered(jobs.max(1));
        while let Some(r) = results.next().await {
            progress(&r);
            out.push(r);
        }
        rest = tail;
    }
    out
}

/// What an unmet case means when it is flagged (hardening: a defence this tool recommends,
/// not a SPID rule), for a warning instead of a failure at an external target.
pub fn flag_warning(case: &Case) -> Option<String> {
    let notes: Vec<String> = case
        .flag_notes()
        .into_iter()
        .map(|(f, why)| format!("{f}: {why}"))
        .collect();
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// Whether a case moves the clock the pair shares (it must run alone).
pub fn moves_clock(case: &Case) -> bool {
    case.flow == Flow::Timeout
}

fn failed(case: &Case, started: Instant, note: String, trace: Vec<Exchange>) -> CaseResult {
    CaseResult::harness_error(case, started, note, trace)
}

impl CaseResult {
    /// Whether the case met its expectation outright (outcome `pass`).
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Pass
    }

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
            outcome: Outcome::Error,
            note: Some(note),
            finding: None,
            why: None,
            millis: started.elapsed().as_millis(),
            trace,
            honest: None,
            side: String::new(),
        }
    }

    /// Applies a peer's expected deviations and the case's flags to the outcome: a listed
    /// failure is `xfail` (a listed one that passed is `xpass`); an unmet flagged case against
    /// an external target is `warn` with the flag's meaning — unless the SP accepted a
    /// truncated identity, which always fails.
    pub fn settle(&mut self, peer: Option<&crate::peers::PeerFile>, flag_warning: Option<&str>) {
        let listed = peer.and_then(|p| p.expected_failure(&self.id));
        let truncated = self
            .note
            .as_deref()
            .is_some_and(|n| n.starts_with("accepted the identity truncated"));
        // Called once, on the judged outcome (pass, fail or error).
        self.outcome = match (self.outcome == Outcome::Pass, listed) {
            (true, Some(r)) => {
                self.why = Some(format!("listed as an expected failure: {r}"));
                Outcome::Xpass
            }
            (true, None) => Outcome::Pass,
            (false, Some(r)) => {
                self.why = Some(r.to_string());
                Outcome::Xfail
            }
            (false, None) => match flag_warning {
                Some(w) if !truncated && self.verdict != Verdict::Error => {
                    self.why = Some(w.to_string());
                    Outcome::Warn
                }
                _ => Outcome::of(false, self.verdict),
            },
        };
    }
}

/// The honest L2 login every run starts and ends with.
pub fn sanity_case() -> Case {
    Case {
        id: "sanity".into(),
        title: "honest L2 login (sanity)".into(),
        family: "sanity".into(),
        refs: vec![],
        flags: vec![],
        scope: Default::default(),
        user: "mario.rossi".into(),
        expect: Expect::Accept,
        body: crate::catalogue::SamlBody {
            flow: Flow::Login,
            consent: Consent::Accept,
            ..Default::default()
        },
    }
}
