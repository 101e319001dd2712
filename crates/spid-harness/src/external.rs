//! `check-sp`: the catalogue aimed at anybody's SP. Our IdP runs on a fixed address the SP
//! trusts; the SP's metadata is registered with it; then the metadata and AuthnRequest checks,
//! the sanity login, every case in a fresh browser session, and the sanity login again.

use crate::catalogue::{Case, Scope};
use crate::checks::{self, CheckResult};
use crate::runner::{self, CaseResult, Credentials, Target};
use spid_idp::{IdentityProvider, IdpConfig};
use url::Url;

/// What to check.
pub struct CheckSpOptions {
    /// SP metadata: an http(s) URL or a file path.
    pub metadata: String,
    /// The URL that starts a login at the SP.
    pub login_url: Url,
    /// Where our IdP listens (the SP must trust the metadata served there).
    pub idp_listen: String,
    /// Credentials directory for our IdP (None: the embedded test keys).
    pub certs: Option<std::path::PathBuf>,
}

/// The outcome of a `check-sp` run.
pub struct CheckSpReport {
    /// Metadata and AuthnRequest checks.
    pub checks: Vec<CheckResult>,
    /// Case results (sanity excluded).
    pub cases: Vec<CaseResult>,
    /// Cases not run, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Set when the run could not judge the SP (the sanity login failed).
    pub setup_error: Option<String>,
}

/// Fetches metadata from a URL or reads it from a file.
pub async fn load_text(src: &str) -> anyhow::Result<String> {
    if src.starts_with("http://") || src.starts_with("https://") {
        let c = reqwest::Client::builder().no_proxy().build()?;
        Ok(c.get(src).send().await?.error_for_status()?.text().await?)
    } else {
        Ok(std::fs::read_to_string(
            src.strip_prefix("file://").unwrap_or(src),
        )?)
    }
}

/// Starts our IdP on `listen`; returns it and its base URL.
pub async fn start_idp(
    listen: &str,
    creds: Credentials,
) -> anyhow::Result<(IdentityProvider, String, tokio::task::JoinHandle<()>)> {
    let l = tokio::net::TcpListener::bind(listen).await?;
    let base = format!("http://{}", l.local_addr()?);
    let idp = IdentityProvider::new(IdpConfig::new(&base, creds.idp, creds.foreign))?;
    let task = tokio::spawn({
        let idp = idp.clone();
        async move {
            let _ = idp.serve(l).await;
        }
    });
    Ok((idp, base, task))
}

/// Runs `check-sp` with `cases`; `progress` sees each result as it comes.
pub async fn check_sp(
    opts: &CheckSpOptions,
    cases: &[Case],
    users: &[spid_idp::users::User],
    mut progress: impl FnMut(&CaseResult),
) -> anyhow::Result<CheckSpReport> {
    let md_text = load_text(&opts.metadata).await?;
    let (mut all_checks, md) = checks::metadata_checks(&md_text);
    let md = md.ok_or_else(|| {
        anyhow::anyhow!(
            "SP metadata unusable: {:?}",
            all_checks.last().map(|c| &c.detail)
        )
    })?;
    let (idp, base, task) =
        start_idp(&opts.idp_listen, Credentials::load(opts.certs.as_deref())?).await?;
    let _guard = AbortOnDrop(task);
    idp.register_sp(&md_text)?;
    // The AuthnRequest, as it reaches our IdP.
    let mut ua = runner::user_agent()?;
    let _ = ua.get(&opts.login_url).await;
    // The first exchange that reached our SSO endpoint carries the SP's AuthnRequest.
    let sso = format!("{base}/sso");
    let trace = ua.take_trace();
    let arrived = trace
        .iter()
        .filter(|x| x.url.starts_with(&sso))
        .find_map(|x| {
            let m = x.saml.iter().find(|m| m.param == "SAMLRequest")?;
            let xml = m.xml.clone()?;
            let relay = |pairs: Vec<(String, String)>| {
                pairs
                    .into_iter()
                    .find(|(k, _)| k == "RelayState")
                    .map(|(_, v)| v)
            };
            Some(if x.method == "GET" {
                let q = x.url.split_once('?').map(|(_, q)| q.to_string());
                let pairs = url::form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
                    .into_owned()
                    .collect();
                checks::ArrivedRequest {
                    binding: crate::agent::Binding::Redirect,
                    xml,
                    raw_query: q,
                    form: Vec::new(),
                    relay_state: relay(pairs),
                }
            } else {
                checks::ArrivedRequest {
                    binding: crate::agent::Binding::Post,
                    xml,
                    raw_query: None,
                    form: x.request_form.clone(),
                    relay_state: relay(x.request_form.clone()),
                }
            })
        });
    if let Some(arrived) = arrived {
        let ctx = checks::RequestContext {
            sp: &md,
            idp_entity_id: &base,
            idp_sso: &sso,
            now: idp.config().clock.now(),
            skew: chrono::Duration::seconds(180),
        };
        all_checks.extend(checks::authn_request_checks(&arrived, &ctx));
    }
    if !all_checks.iter().any(|c| c.id == "request.xml") {
        all_checks.push(CheckResult {
            id: "request.xml",
            pass: false,
            warning: false,
            reference: "",
            detail: "the login URL did not send an AuthnRequest to our IdP".into(),
        });
    }
    let target = Target {
        idp: &idp,
        login_url: &opts.login_url,
        clock: None,
        internal: false,
    };
    let sanity = runner::sanity_case();
    let first = runner::run_case_on(target, &sanity, users).await;
    progress(&first);
    let mut report = CheckSpReport {
        checks: all_checks,
        cases: Vec::new(),
        skipped: Vec::new(),
        setup_error: None,
    };
    if !first.pass {
        report.setup_error = Some(format!(
            "the honest L2 login failed before the run: {}",
            first.note.unwrap_or_default()
        ));
        return Ok(report);
    }
    for c in cases {
        if c.scope == Scope::Internal {
            report.skipped.push((
                c.id.clone(),
                "internal-only: depends on our SP's login parameters or clock".into(),
            ));
            continue;
        }
        let r = runner::run_case_on(target, c, users).await;
        progress(&r);
        report.cases.push(r);
    }
    let last = runner::run_case_on(target, &sanity, users).await;
    progress(&last);
    if !last.pass {
        report.setup_error = Some(format!(
            "the honest L2 login failed after the run: {}",
            last.note.unwrap_or_default()
        ));
    }
    Ok(report)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
