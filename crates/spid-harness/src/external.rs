//! `check-sp`: the catalogue aimed at anybody's SP. Our IdP runs on a fixed address the SP
//! trusts; the SP's metadata is registered with it and checked; the honest login comes first
//! (its AuthnRequest, as it arrived at our SSO endpoint, is checked too), then every case in a
//! browser session of its own (up to `jobs` at a time), then the honest login again. Every
//! verdict needs a trace proving the flow crossed both sides ([`runner::prove_flow`]).

use crate::catalogue::{Case, Scope};
use crate::checks::{self, ArrivedRequest, CheckResult};
use crate::peers::PeerFile;
use crate::runner::{self, CaseResult, Credentials, Target};
use serde::{Deserialize, Serialize};
use spid_core::cie::IdpProfile;
use spid_core::saml::metadata::EntityMetadata;
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
    /// Answer AuthnRequests despite SPID defects (still reported by the request checks).
    pub lenient_requests: bool,
    /// Cases run at the same time (each in its own browser session).
    pub jobs: usize,
    /// The peer's expected deviations.
    pub peer: Option<PeerFile>,
}

/// Which rules `check-sp` judges the SP by (`--profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpProfile {
    /// SPID (the default): the SPID metadata and AuthnRequest checks, the `saml` cases, our
    /// IdP in its SPID profile.
    #[default]
    Spid,
    /// `cie-sp-public`: a public administration's CIE SP.
    CiePublic,
    /// `cie-sp-private`: a private CIE SP.
    CiePrivate,
}

impl SpProfile {
    /// Parses a `--profile` value (`spid`, `cie-sp-public`, `cie-sp-private`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "spid" => Some(SpProfile::Spid),
            "cie-sp-public" => Some(SpProfile::CiePublic),
            "cie-sp-private" => Some(SpProfile::CiePrivate),
            _ => None,
        }
    }

    /// The CIE SP kind the profile expects, or None for SPID.
    pub fn cie_kind(self) -> Option<checks::CieKind> {
        match self {
            SpProfile::Spid => None,
            SpProfile::CiePublic => Some(checks::CieKind::Public),
            SpProfile::CiePrivate => Some(checks::CieKind::Private),
        }
    }
}

/// A case not run, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Skipped {
    /// Case id.
    pub id: String,
    /// Why.
    pub reason: String,
}

/// The outcome of a `check-sp` run: everything the reports show.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckSpReport {
    /// The SP metadata source, the login URL and our IdP's address.
    pub target: TargetInfo,
    /// Metadata and AuthnRequest checks.
    pub checks: Vec<CheckResult>,
    /// Case results (sanity excluded).
    pub cases: Vec<CaseResult>,
    /// The honest logins before and after the cases, with their traces.
    pub sanity: Vec<CaseResult>,
    /// Cases not run, with the reason.
    pub skipped: Vec<Skipped>,
    /// Set when the run could not judge the SP: where and why it stopped.
    pub setup_error: Option<String>,
}

/// What was checked.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TargetInfo {
    /// `--metadata`.
    pub metadata: String,
    /// `--login-url`.
    pub login_url: String,
    /// Our IdP's base URL (or the `--idp-listen` address asked for).
    pub idp: String,
    /// The peer file's name for the target, if one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
}

impl CheckSpReport {
    /// Whether anything fails the run (exit 1); setup errors are exit 2.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.outcome.fails_run())
            || self.cases.iter().any(|c| c.outcome.fails_run())
    }
}

/// Fetches metadata from a URL or reads it from a file; the error names the source.
pub async fn load_text(src: &str) -> anyhow::Result<String> {
    if src.starts_with("http://") || src.starts_with("https://") {
        let c = reqwest::Client::builder().no_proxy().build()?;
        let r = c
            .get(src)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot fetch {src}: {e}"))?;
        let status = r.status();
        anyhow::ensure!(status.is_success(), "{src} answered HTTP {status}");
        Ok(r.text().await?)
    } else {
        let path = src.strip_prefix("file://").unwrap_or(src);
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))
    }
}

/// Starts our IdP on `listen` (a bind failure names the address and `--idp-listen`); returns
/// it and its base URL.
pub async fn start_idp(
    listen: &str,
    creds: Credentials,
    strict_requests: bool,
) -> anyhow::Result<(IdentityProvider, String, tokio::task::JoinHandle<()>)> {
    start_idp_as(listen, creds, strict_requests, IdpProfile::Spid).await
}

/// [`start_idp`] with our IdP in `profile` (CIE: [`IdpConfig::cie`]).
pub async fn start_idp_as(
    listen: &str,
    creds: Credentials,
    strict_requests: bool,
    profile: IdpProfile,
) -> anyhow::Result<(IdentityProvider, String, tokio::task::JoinHandle<()>)> {
    let l = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("our IdP cannot listen on {listen} (--idp-listen): {e}"))?;
    let base = format!("http://{}", l.local_addr()?);
    let mut cfg = match profile {
        IdpProfile::Spid => IdpConfig::new(&base, creds.idp, creds.foreign),
        IdpProfile::Cie => IdpConfig::cie(&base, creds.idp, creds.foreign),
    };
    cfg.strict_requests = strict_requests;
    let idp = IdentityProvider::new(cfg)?;
    let task = tokio::spawn({
        let idp = idp.clone();
        async move {
            let _ = idp.serve(l).await;
        }
    });
    Ok((idp, base, task))
}

/// The first AuthnRequest of `trace` that reached our SSO endpoint, as it arrived.
pub fn arrived_request(trace: &[crate::agent::Exchange], sso: &str) -> Option<ArrivedRequest> {
    trace
        .iter()
        .filter(|x| x.url.split('?').next() == Some(sso))
        .find_map(|x| {
            let m = x.saml.iter().find(|m| m.param == "SAMLRequest")?;
            let xml = m.xml.clone()?;
            let relay = |pairs: &[(String, String)]| {
                pairs
                    .iter()
                    .find(|(k, _)| k == "RelayState")
                    .map(|(_, v)| v.clone())
            };
            Some(if x.method == "GET" {
                let q = x.url.split_once('?').map(|(_, q)| q.to_string());
                let pairs: Vec<(String, String)> =
                    url::form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
                        .into_owned()
                        .collect();
                ArrivedRequest {
                    binding: crate::agent::Binding::Redirect,
                    xml,
                    raw_query: q,
                    form: Vec::new(),
                    relay_state: relay(&pairs),
                }
            } else {
                ArrivedRequest {
                    binding: crate::agent::Binding::Post,
                    xml,
                    raw_query: None,
                    relay_state: relay(&x.request_form),
                    form: x.request_form.clone(),
                }
            })
        })
}

/// Runs `check-sp` with `cases`; `progress` sees each result (sanity logins included) in
/// order as it comes. Setup errors are reported in the result, with what was found so far.
pub async fn check_sp(
    opts: &CheckSpOptions,
    cases: &[Case],
    users: &[spid_idp::users::User],
    progress: impl FnMut(&CaseResult),
) -> CheckSpReport {
    check_sp_as(opts, SpProfile::Spid, cases, users, progress).await
}

/// [`check_sp`] under `profile`: with a CIE profile, the CIE metadata and AuthnRequest checks
/// ([`checks::cie_metadata_checks`], [`checks::cie_authn_request_checks`]) and our IdP in its
/// CIE profile; `cases` and `users` are then the `cie` side's (as SAML cases,
/// [`crate::cie::to_saml`]).
pub async fn check_sp_as(
    opts: &CheckSpOptions,
    profile: SpProfile,
    cases: &[Case],
    users: &[spid_idp::users::User],
    mut progress: impl FnMut(&CaseResult),
) -> CheckSpReport {
    let mut report = CheckSpReport {
        target: TargetInfo {
            metadata: opts.metadata.clone(),
            login_url: opts.login_url.to_string(),
            idp: opts.idp_listen.clone(),
            peer: opts.peer.as_ref().map(|p| p.peer.name.clone()),
        },
        ..Default::default()
    };
    if let Err(e) = run_checks(opts, profile, cases, users, &mut progress, &mut report).await {
        report.setup_error = Some(format!("{e:#}"));
    }
    if let Some(p) = &opts.peer {
        for c in &mut report.checks {
            c.settle(p);
        }
    }
    report
}

async fn run_checks(
    opts: &CheckSpOptions,
    profile: SpProfile,
    cases: &[Case],
    users: &[spid_idp::users::User],
    progress: &mut impl FnMut(&CaseResult),
    report: &mut CheckSpReport,
) -> anyhow::Result<()> {
    let md_text = load_text(&opts.metadata)
        .await
        .map_err(|e| anyhow::anyhow!("SP metadata (--metadata): {e:#}"))?;
    let (md_checks, md) = match profile.cie_kind() {
        None => checks::metadata_checks(&md_text),
        Some(kind) => checks::cie_metadata_checks(&md_text, kind),
    };
    report.checks = md_checks;
    let md: EntityMetadata = md.ok_or_else(|| {
        let why = report
            .checks
            .iter()
            .rfind(|c| !c.holds())
            .map(|c| format!("{}: {}", c.id, c.detail))
            .unwrap_or_default();
        anyhow::anyhow!("the SP metadata from {} is unusable ({why})", opts.metadata)
    })?;
    let creds = Credentials::load(opts.certs.as_deref())?;
    let idp_profile = match profile {
        SpProfile::Spid => IdpProfile::Spid,
        SpProfile::CiePublic | SpProfile::CiePrivate => IdpProfile::Cie,
    };
    let (idp, base, task) =
        start_idp_as(&opts.idp_listen, creds, !opts.lenient_requests, idp_profile).await?;
    let _guard = AbortOnDrop(task);
    report.target.idp = base.clone();
    idp.register_sp(&md_text).map_err(|e| {
        anyhow::anyhow!(
            "our IdP cannot register the SP metadata from {}: {e}",
            opts.metadata
        )
    })?;
    let agents = runner::AgentPool::default();
    let target = Target {
        idp: &idp,
        login_url: &opts.login_url,
        clock: None,
        internal: false,
        sp: Some(&md),
        agents: &agents,
    };
    let sanity = runner::sanity_case();
    let first = runner::run_case_on(target, &sanity, users).await;
    progress(&first);
    // The AuthnRequest of the honest login, as it reached our SSO endpoint.
    let sso = idp.config().sso_url();
    // CIE: the request may reach either binding's SSO location; it is judged against that one.
    let (redirect_sso, post_sso) = idp.config().sso_locations();
    let found = match idp_profile {
        IdpProfile::Spid => arrived_request(&first.trace, &sso).map(|a| (a, sso.clone())),
        IdpProfile::Cie => arrived_request(&first.trace, &redirect_sso)
            .map(|a| (a, redirect_sso.clone()))
            .or_else(|| arrived_request(&first.trace, &post_sso).map(|a| (a, post_sso.clone()))),
    };
    match found {
        Some((arrived, at)) => {
            let ctx = checks::RequestContext {
                sp: &md,
                idp_entity_id: match idp_profile {
                    IdpProfile::Spid => &base,
                    IdpProfile::Cie => &idp.config().entity_id,
                },
                idp_sso: &at,
                now: idp.config().clock.now(),
                skew: idp.config().skew,
            };
            report.checks.extend(match idp_profile {
                IdpProfile::Spid => checks::authn_request_checks(&arrived, &ctx),
                IdpProfile::Cie => checks::cie_authn_request_checks(&arrived, &ctx),
            });
        }
        None => checks::no_request(
            &mut report.checks,
            format!(
                "the login URL {} sent no AuthnRequest to our SSO endpoint {sso}",
                opts.login_url
            ),
        ),
    }
    let first_ok = first.passed();
    let first_note = sanity_failure(&first);
    report.sanity.push(first);
    anyhow::ensure!(
        first_ok,
        "the honest L2 login failed before the run: {first_note}"
    );
    let mut run = Vec::new();
    for c in cases {
        let skip = if c.scope == Scope::Internal {
            Some("internal-only: depends on our SP's login parameters or clock".to_string())
        } else {
            opts.peer
                .as_ref()
                .and_then(|p| p.skip(&c.id))
                .map(|r| format!("skipped for this peer: {r}"))
        };
        match skip {
            Some(reason) => report.skipped.push(Skipped {
                id: c.id.clone(),
                reason,
            }),
            None => run.push(c.clone()),
        }
    }
    let peer = opts.peer.as_ref();
    report.cases = runner::run_ordered(
        &run,
        opts.jobs,
        |_| false,
        async |c: &Case| {
            let mut r = runner::run_case_on(target, c, users).await;
            r.settle(peer, runner::flag_warning(c).as_deref());
            r.side = match idp_profile {
                IdpProfile::Spid => "SAML (SP side)",
                IdpProfile::Cie => "CIE ID over SAML (SP side)",
            }
            .into();
            r
        },
        &mut *progress,
    )
    .await;
    let last = runner::run_case_on(target, &sanity, users).await;
    progress(&last);
    let last_ok = last.passed();
    let last_note = sanity_failure(&last);
    report.sanity.push(last);
    anyhow::ensure!(
        last_ok,
        "the honest L2 login failed after the run, so the verdicts are not trustworthy: {last_note}"
    );
    Ok(())
}

/// Why an honest login failed, in words.
pub fn sanity_failure(r: &CaseResult) -> String {
    match r.verdict {
        runner::Verdict::Error => r.note.clone().unwrap_or_default(),
        v => format!(
            "the SP answered HTTP {} ({v}){}{}",
            r.status,
            r.rule
                .as_deref()
                .map(|x| format!(", rule {x}"))
                .unwrap_or_default(),
            r.note
                .as_deref()
                .map(|n| format!("; {n}"))
                .unwrap_or_default()
        ),
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
