//! The commands behind `spid-harness`'s command line: each takes its parsed arguments and
//! returns the exit code (0 all met, 1 a failure, 2 a setup error); `main.rs` only parses the
//! command line and maps errors to exit code 2.

use crate::{catalogue, certs, external, report, runner};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// The arguments of `run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Only cases whose id matches this glob.
    #[arg(long)]
    pub cases: Option<String>,
    /// Load SAML cases from this directory instead of the embedded catalogue.
    #[arg(long)]
    pub catalogue: Option<PathBuf>,
    /// Write results.json, JUnit XML and HTML here.
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// Only these sides (repeatable; default all).
    #[arg(long, value_enum)]
    pub side: Vec<Side>,
    /// Cases run at the same time, each in its own browser session with its plan armed for
    /// it alone (cases that move the shared clock or spoil the OP's entity configuration run
    /// alone; output order does not change). Default 4: the verdicts of every side are the
    /// same as at 1, and the SAML side takes about 0.6 times as long on two cores.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Only shard k of n (e.g. 2/3): stable by case id, the shards add up to the whole
    /// run; `merge` combines their reports.
    #[arg(long, value_parser = catalogue::parse_partition)]
    pub partition: Option<(usize, usize)>,
}

/// `run`.
pub async fn cmd_run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let RunArgs {
        cases,
        catalogue: dir,
        report_dir,
        side,
        jobs,
        partition,
    } = a;

    let sides = if side.is_empty() {
        vec![
            Side::Saml,
            Side::OidcRp,
            Side::OidcOp,
            Side::Cns,
            Side::Cie,
            Side::CieOidcRp,
            Side::CieOidcOp,
        ]
    } else {
        side
    };
    let sel = RunSelection {
        pattern: cases.as_deref(),
        partition,
        jobs,
    };
    run(sel, dir, report_dir, &sides).await
}

/// The arguments of `merge`.
#[derive(clap::Args)]
pub struct MergeArgs {
    /// The shards' results.json files.
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// Write the combined results.json, junit.xml and report.html here.
    #[arg(long)]
    pub report_dir: PathBuf,
}

/// `merge`.
pub async fn cmd_merge(a: MergeArgs) -> anyhow::Result<ExitCode> {
    let MergeArgs {
        results,
        report_dir,
    } = a;

    let parts = results
        .iter()
        .map(|p| report::OwnedReport::load(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let merged = report::OwnedReport::merge(parts)?;
    let view = merged.view();
    for p in report::write_all(&report_dir, &view).map_err(|e| {
        anyhow::anyhow!(
            "cannot write the reports to {} (--report-dir): {e}",
            report_dir.display()
        )
    })? {
        println!("report: {}", p.display());
    }
    println!(
        "{} reports merged: {} cases{}",
        results.len(),
        merged.cases.len(),
        report::outcome_counts(merged.cases.iter().map(|c| c.outcome))
    );
    Ok(if view.setup_error.is_some() {
        ExitCode::from(2)
    } else if view.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The arguments of `list`.
#[derive(clap::Args)]
pub struct ListArgs {
    /// Only cases whose id matches this glob.
    #[arg(long)]
    pub cases: Option<String>,
    /// The OIDC RP-side catalogue instead of the SAML one (= `--side oidc-rp`).
    #[arg(long)]
    pub oidc: bool,
    /// Which side's catalogue (default saml).
    #[arg(long, value_enum)]
    pub side: Option<Side>,
}

/// `list`.
pub async fn cmd_list(a: ListArgs) -> anyhow::Result<ExitCode> {
    let ListArgs { cases, oidc, side } = a;

    let side = side.unwrap_or(if oidc { Side::OidcRp } else { Side::Saml });
    let pattern = cases.as_deref();
    let rows = match side {
        Side::Saml => list_rows::<catalogue::Case>(pattern)?,
        Side::OidcRp => list_rows::<crate::oidc::OidcCase>(pattern)?,
        Side::OidcOp => list_rows::<crate::oidc_op::OpCase>(pattern)?,
        Side::Cns => list_rows::<crate::cns::CnsCase>(pattern)?,
        Side::Cie => list_rows::<crate::cie::CieCase>(pattern)?,
        Side::CieOidcRp => list_rows::<crate::cie_oidc::CieOidcCase>(pattern)?,
        Side::CieOidcOp => list_rows::<crate::oidc_op::CieOpCase>(pattern)?,
    };
    for [id, family, expected, refs] in &rows {
        println!("{id:<34} {family:<22} {expected:<58} {refs}");
    }
    println!("{} cases ({})", rows.len(), side.label());
    Ok(ExitCode::SUCCESS)
}

/// The arguments of `bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Iterations per measurement (whole logins: a tenth).
    #[arg(long, default_value_t = 200)]
    pub iterations: u32,
    /// Instead: whole SAML logins against our pair under load (`--logins` at
    /// `--concurrency`, each its own browser); prints lost sessions, p50/p99 latency and
    /// peak RSS; exit 1 if any session was lost.
    #[arg(long)]
    pub load: bool,
    /// Logins for `--load`.
    #[arg(long, default_value_t = 1000, requires = "load")]
    pub logins: usize,
    /// Logins in flight at once for `--load`.
    #[arg(long, default_value_t = 100, requires = "load")]
    pub concurrency: usize,
}

/// `bench`.
pub async fn cmd_bench(a: BenchArgs) -> anyhow::Result<ExitCode> {
    let BenchArgs {
        iterations,
        load,
        logins,
        concurrency,
    } = a;
    if load {
        let f = crate::bench::load(logins, concurrency).await?;
        let profile = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        println!(
                "{} SAML logins at concurrency {}, {profile} build: {} lost, {:.1} s ({:.0} logins/s), latency p50 {} ms, p99 {} ms, peak RSS {}",
                f.logins,
                f.concurrency,
                f.lost,
                f.elapsed.as_secs_f64(),
                f.logins as f64 / f.elapsed.as_secs_f64(),
                f.p50.as_millis(),
                f.p99.as_millis(),
                f.peak_rss_kib
                    .map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
                    .unwrap_or_else(|| "unknown".into()),
            );
        return Ok(if f.lost == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }

    let figs = crate::bench::run(iterations).await?;
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
            "{iterations} iterations, {profile} build; ratio = ops/s relative to the group's last figure (a whole login; RSA: verify); % = RSA operations/s over the raw OpenSSL rate of this run"
        );
    for line in crate::bench::render(&figs) {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The arguments of `probe`.
#[derive(clap::Args)]
pub struct ProbeArgs {
    /// The SP URL that starts a login.
    #[arg(long)]
    pub login_url: String,
    /// Fixture user for our IdP's login page.
    #[arg(long, default_value = "mario.rossi")]
    pub user: String,
    /// Exit 0 only if the final answer has this HTTP status (instead of 200).
    #[arg(long)]
    pub expect_status: Option<u16>,
    /// Exit 0 only if the final answer is a refusal (400/401/403/422/500, or the status of
    /// `--expect-status`) naming this rule in X-SPID-Rule.
    #[arg(long)]
    pub expect_rule: Option<String>,
}

/// `probe`.
pub async fn cmd_probe(a: ProbeArgs) -> anyhow::Result<ExitCode> {
    let ProbeArgs {
        login_url,
        user,
        expect_status,
        expect_rule,
    } = a;

    let users =
        spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).map_err(anyhow::Error::msg)?;
    let mut ua = runner::user_agent()?;
    let u = users.iter().find(|u| u.username == user);
    let page = runner::drive_login(
        &mut ua,
        &url::Url::parse(&login_url)?,
        u,
        Default::default(),
    )
    .await?;
    println!(
        "status {} rule {} url {}",
        page.status,
        page.spid_rule().unwrap_or("-"),
        page.url
    );
    if std::env::var_os("SPID_PROBE_TRACE").is_some() {
        println!("{}", serde_json::to_string_pretty(ua.trace())?);
    }
    let status_ok = match (expect_status, &expect_rule) {
        (Some(s), _) => page.status == s,
        (None, Some(_)) => runner::Verdict::from_status(page.status) == runner::Verdict::Reject,
        (None, None) => page.status == 200,
    };
    let rule_ok = expect_rule
        .as_deref()
        .is_none_or(|r| page.spid_rule() == Some(r));
    if status_ok && rule_ok {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "probe: expected {}{}, got status {} rule {}",
        match (expect_status, &expect_rule) {
            (Some(s), _) => format!("status {s}"),
            (None, Some(_)) => "a refusal".to_string(),
            (None, None) => "status 200".to_string(),
        },
        expect_rule
            .as_deref()
            .map(|r| format!(" with rule {r}"))
            .unwrap_or_default(),
        page.status,
        page.spid_rule().unwrap_or("-")
    );
    Ok(ExitCode::from(1))
}

/// The arguments of `check-sp`.
#[derive(clap::Args)]
pub struct CheckSpArgs {
    /// SP metadata: URL or file.
    #[arg(long)]
    pub metadata: String,
    /// The SP URL that starts a login (302 Redirect or POST-form AuthnRequest).
    #[arg(long)]
    pub login_url: String,
    /// Where our IdP listens; the SP must trust the metadata served there
    /// (`spid-harness idp --listen <addr> --print-metadata`).
    #[arg(long, default_value = "127.0.0.1:8088")]
    pub idp_listen: String,
    /// Only cases whose id matches this glob.
    #[arg(long)]
    pub cases: Option<String>,
    /// Write results.json, junit.xml and report.html here (also after a setup error).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// Directory with idp.key.pem / idp.crt.pem and foreign.* (default: embedded test keys).
    #[arg(long)]
    pub certs: Option<PathBuf>,
    /// Answer AuthnRequests despite SPID defects (Issuer without NameQualifier,
    /// AllowCreate, …), so the Responses are judged; the defects are still reported.
    #[arg(long)]
    pub lenient_requests: bool,
    /// Cases run at the same time, each in its own browser session (the honest logins
    /// before and after stay alone); output order does not change. Default 4: the verdicts
    /// are those of `--jobs 1` (the SP is the only one to see the difference: up to four
    /// logins at once); `--jobs 1` for an SP that takes one login at a time.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// The peer's expected deviations (`fixtures/peers/<peer>.toml`): listed failures are
    /// xfail, listed failures that pass are xpass and fail the run.
    #[arg(long)]
    pub peer: Option<PathBuf>,
    /// Only shard k of n of the cases (e.g. 2/3; every shard makes the checks).
    #[arg(long, value_parser = catalogue::parse_partition)]
    pub partition: Option<(usize, usize)>,
    /// `spid` (default), or `cie-sp-public` / `cie-sp-private`: the CIE SP metadata and
    /// AuthnRequest checks, our IdP in its CIE profile and the `cie` cases (docs/cie.md).
    #[arg(long, default_value = "spid", value_parser = ["spid", "cie-sp-public", "cie-sp-private"])]
    pub profile: String,
}

/// `check-sp`.
pub async fn cmd_check_sp(a: CheckSpArgs) -> anyhow::Result<ExitCode> {
    let CheckSpArgs {
        metadata,
        login_url,
        idp_listen,
        cases,
        report_dir,
        certs,
        lenient_requests,
        jobs,
        peer,
        partition,
        profile,
    } = a;
    let profile = external::SpProfile::parse(&profile).ok_or_else(|| {
        anyhow::anyhow!("--profile {profile}: not spid, cie-sp-public or cie-sp-private")
    })?;

    let login_url =
        url::Url::parse(&login_url).map_err(|e| anyhow::anyhow!("--login-url {login_url}: {e}"))?;
    let peer = peer.map(|p| crate::peers::PeerFile::load(&p)).transpose()?;
    let opts = external::CheckSpOptions {
        metadata,
        login_url,
        idp_listen,
        certs,
        lenient_requests,
        jobs,
        peer,
    };
    check_sp_as(opts, profile, cases.as_deref(), partition, report_dir).await
}

/// The arguments of `check-idp`.
#[derive(clap::Args)]
pub struct CheckIdpArgs {
    /// IdP metadata: URL or file.
    #[arg(long)]
    pub metadata: String,
    /// Where our SP listens; the IdP must trust its metadata
    /// (`spid-harness sp --listen <addr> --print-metadata`).
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub sp_listen: String,
    /// Login driver (TOML: `[[steps]]` form_id/has_field + fields, `[[users]]`); default:
    /// the built-in driver for our IdP.
    #[arg(long)]
    pub driver: Option<PathBuf>,
    /// Directory with sp.key.pem / sp.crt.pem (default: embedded test keys).
    #[arg(long)]
    pub certs: Option<PathBuf>,
    /// The IdP's expected deviations (`fixtures/peers/<peer>.toml`; ids: check ids, duty ids
    /// such as `idp.nr20`, login ids such as `login.exact.l3`): listed failures are xfail,
    /// listed failures that pass are xpass and fail the run.
    #[arg(long)]
    pub peer: Option<PathBuf>,
    /// Write results.json and junit.xml (checks and logins, outcomes and reasons) here.
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// `spid` (default) or `cie`: judge the IdP as a CIE ID IdP (CIE metadata shape, CIE
    /// AuthnRequests and refusals, CIE Responses; docs/cie.md).
    #[arg(long, default_value = "spid", value_parser = ["spid", "cie"])]
    pub profile: String,
}

/// `check-idp`.
pub async fn cmd_check_idp(a: CheckIdpArgs) -> anyhow::Result<ExitCode> {
    let CheckIdpArgs {
        metadata,
        sp_listen,
        driver,
        certs,
        peer,
        report_dir,
        profile,
    } = a;
    let peer = peer.map(|p| crate::peers::PeerFile::load(&p)).transpose()?;
    if let Some(p) = &peer {
        p.check_ids(crate::check_idp::is_known_id)?;
    }
    let profile = match profile.as_str() {
        "cie" => spid_core::cie::IdpProfile::Cie,
        _ => spid_core::cie::IdpProfile::Spid,
    };
    check_idp(
        metadata, sp_listen, driver, certs, peer, report_dir, profile,
    )
    .await
}

/// `idp --cie-env`: the environment (only with `--profile cie`).
fn cie_idp_env(cie: bool, env: Option<&str>) -> anyhow::Result<spid_core::cie::CieEnv> {
    match env {
        None => Ok(spid_core::cie::CieEnv::Production),
        Some(_) if !cie => anyhow::bail!("--cie-env needs --profile cie"),
        Some(e) => spid_core::cie::CieEnv::parse(e).ok_or_else(|| {
            anyhow::anyhow!("--cie-env {e}: not production, preproduction or collaudo")
        }),
    }
}

/// The IdP's base URL for `env` on `listening` (`http://<ip>:<port>`): production keeps it,
/// the others take their loopback host (`http://collaudo.idserver.localhost:<port>`), which
/// needs a loopback listen address.
fn cie_env_base(env: spid_core::cie::CieEnv, listening: &str) -> anyhow::Result<String> {
    if env == spid_core::cie::CieEnv::Production {
        return Ok(listening.to_string());
    }
    let u = url::Url::parse(listening)
        .map_err(|e| anyhow::anyhow!("--listen {listening}: not an address ({e})"))?;
    let loopback = match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    anyhow::ensure!(
        loopback,
        "--cie-env {env}: {} resolves to loopback only, so --listen must be a loopback address (not {listening})",
        env.host_under(spid_core::cie::LOOPBACK_DOMAIN)
    );
    Ok(env.loopback_base(u.port().unwrap_or(80)))
}

/// The arguments of `idp`.
#[derive(clap::Args)]
pub struct IdpArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8088")]
    pub listen: String,
    /// SP metadata to register: files or URLs.
    #[arg(long = "sp-metadata")]
    pub sp_metadata: Vec<String>,
    /// Admin token for /admin/arm and /admin/sp.
    #[arg(long)]
    pub admin_token: Option<String>,
    /// Print the IdP metadata for `--listen` and exit.
    #[arg(long)]
    pub print_metadata: bool,
    /// Assert this level (1, 2, 3) on every login, whatever was granted.
    #[arg(long)]
    pub grant_level: Option<u8>,
    /// Also serve our reference SP at this address, trusting this IdP and trusted by it,
    /// for logging in by hand in a browser.
    #[arg(long)]
    pub demo_sp: Option<String>,
    /// Also run SPID OpenID Connect: a trust anchor at this address, the OpenID Provider
    /// at `<idp>/oidc/op` and, with `--demo-sp`, the relying party at `<sp>/oidc/rp`, all
    /// registered at the trust anchor.
    #[arg(long)]
    pub oidc_ta: Option<String>,
    /// Run the OpenID Provider at `<idp>/oidc/op` in the federation of this EXTERNAL
    /// trust anchor instead (entity id; its keys are taken from its entity configuration at
    /// start-up; it is named in the OP's `authority_hints`).
    #[arg(long, conflicts_with = "oidc_ta")]
    pub oidc_trust_anchor: Option<String>,
    /// The `trust_marks` array (JSON) the external anchor issued to the OP, published in
    /// its entity configuration; re-read at every request, so it may appear after start.
    #[arg(long, requires = "oidc_trust_anchor")]
    pub oidc_trust_marks: Option<PathBuf>,
    /// Write the OP's public federation keys (JWKS) here at start-up, for onboarding.
    #[arg(long, requires = "oidc_trust_anchor")]
    pub oidc_jwks_out: Option<PathBuf>,
    /// The OIDC reading of the OpenID Provider with `--oidc-trust-anchor`: rules-2023
    /// (default), cie (the CIE id reading), agid-check-op, django-sdk (the Python reference
    /// implementation as a peer), django-sdk-cie (its CIE profile), lg-2019-draft.
    #[arg(long, default_value = "rules-2023")]
    pub oidc_profile: String,
    /// Accept AuthnRequests from generic SAML stacks that cannot follow SPID to the letter
    /// (Issuer without Format entity/NameQualifier, NameIDPolicy AllowCreate).
    #[arg(long)]
    pub lenient_requests: bool,
    /// Directory with idp.key.pem / idp.crt.pem and foreign.* (default: embedded test keys).
    #[arg(long)]
    pub certs: Option<PathBuf>,
    /// `spid` (default) or `cie`: the CIE ID profile (entityID `<base>/idp/profile/SAML2/POST/SSO`,
    /// unsigned Shibboleth-shaped metadata at `/idp/shibboleth`, the CIE request rules, error
    /// table, Response shape and users; docs/cie.md).
    #[arg(long = "profile", default_value = "spid", value_parser = ["spid", "cie"])]
    pub idp_profile: String,
    /// CIE profile: send the Assertion Issuer without Format (the CIE documents show both).
    #[arg(long)]
    pub cie_assertion_issuer_without_format: bool,
    /// CIE profile: the CIE ID environment whose entityID shape to take (`production`,
    /// default; `preproduction` and `collaudo` put `preproduzione.` / `collaudo.` in front of
    /// `idserver.localhost`, loopback, as the real hosts differ; docs/cie.md).
    #[arg(long, value_parser = ["production", "preproduction", "collaudo"])]
    pub cie_env: Option<String>,
}

/// `idp`.
pub async fn cmd_idp(a: IdpArgs) -> anyhow::Result<ExitCode> {
    let IdpArgs {
        listen,
        sp_metadata,
        admin_token,
        print_metadata,
        grant_level,
        demo_sp,
        oidc_ta,
        oidc_trust_anchor,
        oidc_trust_marks,
        oidc_jwks_out,
        oidc_profile,
        lenient_requests,
        certs,
        idp_profile,
        cie_assertion_issuer_without_format,
        cie_env,
    } = a;

    let profile = spid_core::oidc::Profile::by_name(&oidc_profile)
        .ok_or_else(|| anyhow::anyhow!("unknown --oidc-profile {oidc_profile}"))?;
    let cie = idp_profile == "cie";
    let cie_env = cie_idp_env(cie, cie_env.as_deref())?;
    let creds = runner::Credentials::load(certs.as_deref())?;
    let idp_config = |base: &str, creds: &runner::Credentials| {
        let mut cfg = if cie {
            spid_idp::IdpConfig::cie(base, creds.idp.clone(), creds.foreign.clone())
        } else {
            spid_idp::IdpConfig::new(base, creds.idp.clone(), creds.foreign.clone())
        };
        cfg.cie_assertion_issuer_format = !cie_assertion_issuer_without_format;
        cfg
    };
    if print_metadata {
        let base = cie_env_base(cie_env, &format!("http://{listen}"))?;
        let idp = spid_idp::IdentityProvider::new(idp_config(&base, &creds))?;
        println!("{}", idp.metadata_xml());
        return Ok(ExitCode::SUCCESS);
    }
    let l = tokio::net::TcpListener::bind(&listen).await?;
    let base = cie_env_base(cie_env, &format!("http://{}", l.local_addr()?))?;
    let mut cfg = idp_config(&base, &creds);
    cfg.admin_token = admin_token;
    cfg.strict_requests = !lenient_requests;
    cfg.grant_level = grant_level.and_then(|n| spid_core::SpidLevel::parse(&n.to_string()));
    let idp = spid_idp::IdentityProvider::new(cfg)?;
    for p in sp_metadata {
        let id = idp.register_sp(&external::load_text(&p).await?)?;
        eprintln!("registered SP {id}");
    }
    eprintln!(
        "fake {} IdP {} at {base}/ — metadata at {} (register it with the SP)",
        if cie { "CIE ID" } else { "SPID" },
        idp.config().entity_id,
        idp.config().metadata_url()
    );
    let oidc = match oidc_ta {
        None => None,
        Some(addr) => {
            use spid_idp::oidc::ta::{EntityKind, TrustAnchor};
            let tl = tokio::net::TcpListener::bind(&addr).await?;
            let ta_base = format!("http://{}", tl.local_addr()?);
            let ta = TrustAnchor::with_key(
                &ta_base,
                idp.config().clock.clone(),
                crate::oidc_keys::ta()?,
            );
            let op = spid_idp::oidc::op::OpenIdProvider::with_keys(
                idp.op_config(),
                crate::oidc_keys::op()?,
            );
            let mark = ta.register(
                op.entity_id(),
                op.federation_jwks(),
                EntityKind::OpenIdProvider,
            )?;
            op.set_trust_anchor(ta.keys(), mark);
            eprintln!(
                "trust anchor at {ta_base}/ — OpenID Provider {}",
                op.entity_id()
            );
            let served = ta.clone();
            tokio::spawn(async move {
                let _ = served.serve(tl).await;
            });
            Some((ta, op))
        }
    };
    if let Some(addr) = demo_sp {
        // Our SP beside the IdP, each trusting the other, so a person can log in.
        let sl = tokio::net::TcpListener::bind(&addr).await?;
        let sp_base = format!("http://{}", sl.local_addr()?);
        let mut sp_cfg = spid_sp::SpConfig::new(&sp_base, creds.sp);
        let sp_profile = if cie {
            sp_cfg.attributes = spid_core::cie::MINIMUM_ATTRIBUTES
                .map(String::from)
                .to_vec();
            sp_cfg.cie_metadata = true;
            spid_core::cie::IdpProfile::Cie
        } else {
            spid_core::cie::IdpProfile::Spid
        };
        let sp = spid_sp::ServiceProvider::new(sp_cfg)?;
        sp.register_idp_as(idp.metadata_xml(), None, sp_profile)?;
        idp.register_sp(sp.metadata_xml())?;
        eprintln!("demo SP at {sp_base}/ — open {sp_base}/login in a browser (users: README; the OTP is on the page)");
        match &oidc {
            None => {
                tokio::spawn(async move {
                    let _ = sp.serve(sl).await;
                });
            }
            Some((ta, op)) => {
                use spid_idp::oidc::ta::EntityKind;
                let rp =
                    spid_sp::oidc::RelyingParty::with_keys(sp.rp_config(), crate::oidc_keys::rp()?);
                let mark = ta.register(
                    rp.entity_id(),
                    rp.federation_jwks(),
                    EntityKind::OpenIdRelyingParty,
                )?;
                rp.set_trust_anchor(ta.keys(), mark);
                let mut login = url::Url::parse(&format!("{}/login", rp.entity_id()))?;
                login.query_pairs_mut().append_pair("op", op.entity_id());
                eprintln!("demo RP {} — open {login} in a browser", rp.entity_id());
                tokio::spawn(async move {
                    let _ = sp.serve_with_rp(sl, &rp).await;
                });
            }
        }
    }
    if let Some(ta) = oidc_trust_anchor {
        let anchor = external_anchor(&ta, &profile).await?;
        let mut op_cfg = idp.op_config();
        op_cfg.profile = profile;
        op_cfg.trust_marks_file = oidc_trust_marks;
        let op = spid_idp::oidc::op::OpenIdProvider::with_keys(op_cfg, crate::oidc_keys::op()?);
        op.set_external_trust_anchor(anchor);
        if let Some(out) = oidc_jwks_out {
            std::fs::write(out, op.federation_jwks().to_value().to_string())?;
        }
        eprintln!("OpenID Provider {} under trust anchor {ta}", op.entity_id());
        idp.serve_with_op(l, &op).await?;
        return Ok(ExitCode::SUCCESS);
    }
    match oidc {
        Some((_, op)) => idp.serve_with_op(l, &op).await?,
        None => idp.serve(l).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The arguments of `sp`.
#[derive(clap::Args)]
pub struct SpArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: String,
    /// IdP metadata to trust: files or URLs (repeatable).
    #[arg(long = "idp-metadata")]
    pub idp_metadata: Vec<String>,
    /// Metadata of a CIE ID IdP to trust, judged by the CIE rules (files or URLs,
    /// repeatable; docs/cie.md). Configure the SP's attributes for CIE with `--cie-attributes`.
    #[arg(long = "cie-idp")]
    pub cie_idp: Vec<String>,
    /// Request the eIDAS minimum set (name, familyName, dateOfBirth, fiscalNumber), the only
    /// attributes a CIE IdP accepts, instead of the SPID set.
    #[arg(long)]
    pub cie_attributes: bool,
    /// Publish CIE SP metadata (the CIE model: administrative ContactPerson with the CIE
    /// extensions, Municipality, Company) requesting the eIDAS minimum set (implies
    /// `--cie-attributes`).
    #[arg(long)]
    pub cie: bool,
    /// Publish private-SP metadata (spid:Private, VAT number, billing contact) instead of
    /// public-SP metadata; with `--cie`, cie:Private, VATNumber, FiscalCode and NACE2Code.
    #[arg(long)]
    pub private: bool,
    /// Directory with sp.key.pem / sp.crt.pem (default: the embedded test credentials).
    #[arg(long)]
    pub certs: Option<PathBuf>,
    /// Print the SP metadata for `--listen` and exit.
    #[arg(long)]
    pub print_metadata: bool,
    /// Answer every request only after this many milliseconds (a slow SP, for measuring
    /// `check-sp --jobs`).
    #[arg(long, default_value_t = 0)]
    pub delay_ms: u64,
    /// Also serve the OpenID Connect relying party at `<sp>/oidc/rp`, in the federation of
    /// this EXTERNAL trust anchor (entity id; its keys are taken from its entity
    /// configuration at start-up; it is named in the RP's `authority_hints`).
    #[arg(long)]
    pub oidc_trust_anchor: Option<String>,
    /// The `trust_marks` array (JSON) the external anchor issued to the RP, published in
    /// its entity configuration; re-read at every request, so it may appear after start.
    #[arg(long, requires = "oidc_trust_anchor")]
    pub oidc_trust_marks: Option<PathBuf>,
    /// Write the RP's public federation keys (JWKS) here at start-up, for onboarding.
    #[arg(long, requires = "oidc_trust_anchor")]
    pub oidc_jwks_out: Option<PathBuf>,
    /// The SPID OIDC reading of the relying party: rules-2023 (default), cie (CIE id: scopes
    /// profile and email, claims in the ID token, a nest-encrypted ID token, iss on every
    /// authorization response), agid-check-op, django-sdk (the Python reference
    /// implementation as a peer), django-sdk-cie (its CIE profile), lg-2019-draft.
    #[arg(long, default_value = "rules-2023")]
    pub oidc_profile: String,
}

/// `sp`.
pub async fn cmd_sp(a: SpArgs) -> anyhow::Result<ExitCode> {
    let SpArgs {
        listen,
        idp_metadata,
        cie_idp,
        cie_attributes,
        cie,
        private,
        certs,
        print_metadata,
        delay_ms,
        oidc_trust_anchor,
        oidc_trust_marks,
        oidc_jwks_out,
        oidc_profile,
    } = a;

    let profile = spid_core::oidc::Profile::by_name(&oidc_profile)
        .ok_or_else(|| anyhow::anyhow!("unknown --oidc-profile {oidc_profile}"))?;
    let creds = runner::Credentials::load(certs.as_deref())?;
    let mut cfg = spid_sp::SpConfig::new(&format!("http://{listen}"), creds.sp.clone());
    if private {
        cfg.kind = spid_core::saml::metadata::SpKind::Private {
            vat_number: Some("IT12345678901".into()),
            // A private CIE SP names its fiscal code too (spid-sp-test cie-sp-private
            // requires VATNumber, FiscalCode and NACE2Code); the SPID metadata is unchanged.
            fiscal_code: cie.then(|| "12345678901".into()),
            billing_email: "fatturazione@example.org".into(),
            billing_company: "spid-harness reference SP".into(),
        };
    }
    if cie_attributes || cie {
        cfg.attributes = spid_core::cie::MINIMUM_ATTRIBUTES
            .map(String::from)
            .to_vec();
    }
    cfg.cie_metadata = cie;
    if print_metadata {
        println!("{}", spid_sp::ServiceProvider::new(cfg)?.metadata_xml());
        return Ok(ExitCode::SUCCESS);
    }
    let l = tokio::net::TcpListener::bind(&listen).await?;
    let base = format!("http://{}", l.local_addr()?);
    let kind = cfg.kind.clone();
    let attributes = cfg.attributes.clone();
    let mut cfg = spid_sp::SpConfig::new(&base, creds.sp);
    cfg.kind = kind;
    cfg.attributes = attributes;
    cfg.cie_metadata = cie;
    cfg.delay = std::time::Duration::from_millis(delay_ms);
    if certs.is_none() {
        // The committed test certificate names a placeholder entity ID: sign with a
        // fresh one whose subject uri is this SP's entityID (Avviso 29 v3), of its kind.
        cfg.credential = certs::sp_credential(&cfg.entity_id, &cfg.kind)?;
    }
    let sp = spid_sp::ServiceProvider::new(cfg)?;
    for p in idp_metadata {
        let id = sp.register_idp(&external::load_text(&p).await?, None)?;
        eprintln!("trusting IdP {id}");
    }
    for p in cie_idp {
        let text = external::load_text(&p).await?;
        let id = sp.register_idp_as(&text, None, spid_core::cie::IdpProfile::Cie)?;
        match spid_core::cie::CieEnv::of_entity_id(&id) {
            Some(env) => eprintln!("trusting CIE ID IdP {id} ({env})"),
            None => eprintln!(
                "trusting CIE ID IdP {id} (its entityID does not end in {}, as the real CIE ID ones do)",
                spid_core::cie::SSO_POST_PATH
            ),
        }
    }
    eprintln!("reference SP at {base}/ — metadata at {base}/metadata, login at {base}/login");
    let Some(ta) = oidc_trust_anchor else {
        sp.serve(l).await?;
        return Ok(ExitCode::SUCCESS);
    };
    let anchor = external_anchor(&ta, &profile).await?;
    let mut rp_cfg = sp.rp_config();
    rp_cfg.profile = profile;
    rp_cfg.trust_marks_file = oidc_trust_marks;
    let rp = spid_sp::oidc::RelyingParty::with_keys(rp_cfg, crate::oidc_keys::rp()?);
    rp.set_external_trust_anchor(anchor);
    if let Some(out) = oidc_jwks_out {
        std::fs::write(out, rp.federation_jwks().to_value().to_string())?;
    }
    eprintln!(
        "OIDC relying party {} under trust anchor {ta} — login at {}/login?op=<OP entity id>",
        rp.entity_id(),
        rp.entity_id()
    );
    sp.serve_with_rp(l, &rp).await?;
    Ok(ExitCode::SUCCESS)
}

/// The keys of an external trust anchor, from its self-signed entity configuration.
pub async fn external_anchor(
    entity_id: &str,
    profile: &spid_core::oidc::Profile,
) -> anyhow::Result<spid_core::oidc::federation::EntityKeys> {
    let entity_id = entity_id.trim_end_matches('/');
    let url = format!("{entity_id}/.well-known/openid-federation");
    let http = reqwest::Client::builder().no_proxy().build()?;
    let resp = http.get(&url).send().await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "{url}: status {}",
        resp.status()
    );
    let ec = resp.text().await?;
    let st = spid_core::oidc::federation::verify_entity_configuration(
        ec.trim(),
        profile,
        spid_core::clock::now(),
    )?;
    anyhow::ensure!(
        st.iss == entity_id,
        "{url}: iss {} is not {entity_id}",
        st.iss
    );
    Ok(spid_core::oidc::federation::EntityKeys::new(
        entity_id, st.jwks,
    ))
}

/// The `list` rows of one catalogue: id, family, expectation, references.
pub fn list_rows<C: catalogue::CatalogueCase>(
    pattern: Option<&str>,
) -> anyhow::Result<Vec<[String; 4]>> {
    let cases = catalogue::select_by(catalogue::embedded_cases::<C>()?, pattern, |c| c.id())
        .map_err(anyhow::Error::msg)?;
    Ok(cases
        .iter()
        .map(|c| {
            [
                c.id().to_string(),
                c.family().to_string(),
                report::expected_text(c.expect()),
                c.refs().join("; "),
            ]
        })
        .collect())
}

/// One side of the catalogue `run` covers.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Side {
    /// SAML: our IdP's crafted Responses at our SP.
    Saml,
    /// OIDC relying-party side: our OP's crafted answers at our RP.
    OidcRp,
    /// OIDC provider side: the probe's crafted requests at our OP.
    OidcOp,
    /// CNS: our card issuer's hostile cards presented over TLS at our SP's CNS login.
    Cns,
    /// CIE ID over SAML: our IdP in the CIE profile, its crafted Responses at our SP
    /// registering it as CIE.
    Cie,
    /// CIE OpenID Connect, relying-party side: our OP in the CIE profile, its crafted
    /// answers at our RP in the CIE profile.
    CieOidcRp,
    /// CIE OpenID Connect, provider side: the probe in the CIE profile, its crafted requests
    /// at our OP in the CIE profile.
    CieOidcOp,
}

impl Side {
    fn label(self) -> &'static str {
        match self {
            Side::Saml => "SAML (SP side)",
            Side::OidcRp => "OIDC RP side",
            Side::OidcOp => "OIDC OP side",
            Side::Cns => "CNS (TLS client certificate)",
            Side::Cie => "CIE ID over SAML (SP side)",
            Side::CieOidcRp => "CIE OIDC RP side",
            Side::CieOidcOp => "CIE OIDC OP side",
        }
    }
}

/// The cases of one side, run between two honest logins.
pub struct SideRun {
    side: Side,
    results: Vec<runner::CaseResult>,
    /// The honest logins before and after.
    sanity: Vec<runner::CaseResult>,
    /// Where the side stopped, when it could not be judged.
    setup_error: Option<String>,
    /// Cases not run, with the reason.
    skipped: Vec<external::Skipped>,
}

/// Which cases `run` runs and how many at once.
#[derive(Clone, Copy)]
pub struct RunSelection<'a> {
    /// Only cases whose id matches this glob.
    pub pattern: Option<&'a str>,
    /// Only shard k of n.
    pub partition: Option<(usize, usize)>,
    /// SAML cases at the same time.
    pub jobs: usize,
}

impl RunSelection<'_> {
    /// The cases of this shard.
    fn shard<T>(&self, cases: Vec<T>, id: impl Fn(&T) -> &str) -> Vec<T> {
        match self.partition {
            Some((k, n)) => catalogue::partition(cases, k, n, id),
            None => cases,
        }
    }
}

/// Runs `sides` of the catalogue on loopback, each between two honest logins; writes the
/// reports; exit 0, 1 or 2.
pub async fn run(
    sel: RunSelection<'_>,
    dir: Option<PathBuf>,
    report_dir: Option<PathBuf>,
    sides: &[Side],
) -> anyhow::Result<ExitCode> {
    let (pattern, jobs) = (sel.pattern, sel.jobs);
    use crate::oidc::{self, OidcCase, OidcFederation};
    use crate::oidc_op::{self, OpCase};
    let users =
        spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).map_err(anyhow::Error::msg)?;
    let started = std::time::Instant::now();
    let mut runs = Vec::new();
    if sides.contains(&Side::Saml) {
        let all = match &dir {
            Some(d) => catalogue::from_dir(d)?,
            None => catalogue::embedded("saml")?,
        };
        let cases = catalogue::select(all, pattern).map_err(anyhow::Error::msg)?;
        let cases = sel.shard(cases, |c| c.id.as_str());
        let pair = runner::InternalPair::start(runner::Credentials::embedded()?).await?;
        let header = format!(
            "{}: IdP {}  SP {}  — {} cases",
            Side::Saml.label(),
            pair.idp_url,
            pair.sp_url,
            cases.len()
        );
        let run = async |c: &catalogue::Case| runner::run_case(&pair, c, &users).await;
        let r = run_with_sanity(
            header,
            &cases,
            &runner::sanity_case(),
            jobs,
            runner::moves_clock,
            run,
        )
        .await;
        runs.push(SideRun {
            side: Side::Saml,
            ..r
        });
    }
    let oidc_sides = sides.contains(&Side::OidcRp) || sides.contains(&Side::OidcOp);
    if oidc_sides {
        let fed = OidcFederation::start(runner::Credentials::embedded()?).await?;
        if sides.contains(&Side::OidcRp) {
            let cases = oidc::select(oidc::embedded()?, pattern).map_err(anyhow::Error::msg)?;
            let cases = sel.shard(cases, |c| c.id.as_str());
            let header = format!(
                "{}: TA {}  OP {}  RP {}  — {} cases",
                Side::OidcRp.label(),
                fed.ta.entity_id(),
                fed.op.entity_id(),
                fed.rp.entity_id(),
                cases.len()
            );
            // Plans are armed per browser session; a plan on the OP's entity configuration is
            // global and runs alone.
            let run = async |c: &OidcCase| fed.run_case(c, &users).await;
            let alone = |c: &OidcCase| c.plan.alters_federation();
            let r = run_with_sanity(header, &cases, &oidc::sanity_case(), jobs, alone, run).await;
            runs.push(SideRun {
                side: Side::OidcRp,
                ..r
            });
        }
        if sides.contains(&Side::OidcOp) {
            let cases =
                oidc_op::select(oidc_op::embedded()?, pattern).map_err(anyhow::Error::msg)?;
            let cases = sel.shard(cases, |c| c.id.as_str());
            let ops = fed.op_endpoints();
            let header = format!(
                "{}: TA {}  OP {}  probe RP {}  — {} cases",
                Side::OidcOp.label(),
                fed.ta.entity_id(),
                fed.op.entity_id(),
                fed.probe.entity_id(),
                cases.len()
            );
            let run = async |c: &OpCase| fed.run_op_case(c, &ops, &users).await;
            // Each case is its own login at the OP; one that moves the OP's clock runs alone.
            let alone = |c: &OpCase| c.token.advance_secs.is_some();
            let r =
                run_with_sanity(header, &cases, &oidc_op::sanity_case(), jobs, alone, run).await;
            runs.push(SideRun {
                side: Side::OidcOp,
                ..r
            });
        }
    }
    if sides.contains(&Side::Cns) {
        let cases =
            crate::cns::select(crate::cns::embedded()?, pattern).map_err(anyhow::Error::msg)?;
        let cases = sel.shard(cases, |c| c.id.as_str());
        let pair = crate::cns::CnsPair::start().await?;
        let header = format!(
            "{}: card issuer {}  CNS login {} (CIE accepted: {})  — {} cases",
            Side::Cns.label(),
            pair.issuer.base_url(),
            pair.url,
            pair.cie_url,
            cases.len()
        );
        let target = pair.target();
        let run = async |c: &crate::cns::CnsCase| crate::cns::run_case(&target, c, &users).await;
        let r = run_with_sanity(
            header,
            &cases,
            &crate::cns::sanity_case(),
            jobs,
            |_| false,
            run,
        )
        .await;
        runs.push(SideRun {
            side: Side::Cns,
            ..r
        });
    }
    if sides.contains(&Side::Cie) {
        use crate::cie::{self, CieCase};
        let cie_users = cie::users().map_err(anyhow::Error::msg)?;
        let cases = cie::select(cie::embedded()?, pattern).map_err(anyhow::Error::msg)?;
        let cases = sel.shard(cases, |c| c.id.as_str());
        let pair = cie::start_pair(spid_core::cie::IdpProfile::Cie).await?;
        let header = format!(
            "{}: CIE IdP {}  SP {}  — {} cases",
            Side::Cie.label(),
            pair.idp.config().entity_id,
            pair.sp_url,
            cases.len()
        );
        let run = async |c: &CieCase| cie::run_case(&pair, c, &cie_users).await;
        let r = run_with_sanity(
            header,
            &cases,
            &cie::sanity_case(),
            jobs,
            cie::moves_clock,
            run,
        )
        .await;
        runs.push(SideRun {
            side: Side::Cie,
            ..r
        });
    }
    if sides.contains(&Side::CieOidcRp) {
        use crate::cie_oidc;
        let cases = cie_oidc::select(cie_oidc::embedded()?, pattern).map_err(anyhow::Error::msg)?;
        let cases: Vec<OidcCase> = sel
            .shard(cases, |c| c.id.as_str())
            .iter()
            .map(cie_oidc::as_oidc_case)
            .collect();
        let fed = cie_oidc::start(runner::Credentials::embedded()?).await?;
        let header = format!(
            "{}: TA {}  OP {}  RP {} (both profile cie)  — {} cases",
            Side::CieOidcRp.label(),
            fed.ta.entity_id(),
            fed.op.entity_id(),
            fed.rp.entity_id(),
            cases.len()
        );
        let run = async |c: &OidcCase| fed.run_case(c, &users).await;
        let alone = |c: &OidcCase| c.plan.alters_federation();
        let r = run_with_sanity(header, &cases, &oidc::sanity_case(), jobs, alone, run).await;
        runs.push(SideRun {
            side: Side::CieOidcRp,
            ..r
        });
    }
    if sides.contains(&Side::CieOidcOp) {
        let cases =
            oidc_op::select_cie(oidc_op::embedded_cie()?, pattern).map_err(anyhow::Error::msg)?;
        let cases = sel.shard(cases, |c| c.id.as_str());
        let cie = spid_core::oidc::Profile::cie();
        let creds = runner::Credentials::embedded()?;
        let fed = OidcFederation::start_with(creds, Some(cie.clone()), None).await?;
        let (probe, task) = oidc_op::start_probe(&fed.ta, fed.clock.clone(), cie).await?;
        let ops = fed.op_endpoints();
        let target = oidc_op::OpTarget {
            probe: &probe,
            op: &ops,
            clock: Some(&fed.clock),
            internal: true,
            users: &users,
            driver: None,
        };
        let header = format!(
            "{}: TA {}  OP {}  probe RP {} (both profile cie)  — {} cases",
            Side::CieOidcOp.label(),
            fed.ta.entity_id(),
            fed.op.entity_id(),
            probe.entity_id(),
            cases.len()
        );
        let run = async |c: &OpCase| oidc_op::run_case(&target, c).await;
        let alone = |c: &OpCase| c.token.advance_secs.is_some();
        let r = run_with_sanity(header, &cases, &oidc_op::sanity_case(), jobs, alone, run).await;
        task.abort();
        runs.push(SideRun {
            side: Side::CieOidcOp,
            ..r
        });
    }
    finish_runs(&runs, started, report_dir)
}

/// The arguments of `check-cns`.
#[derive(clap::Args)]
pub struct CheckCnsArgs {
    /// The service's HTTPS URL that asks for a client certificate (200 = a login).
    #[arg(long)]
    pub url: String,
    /// Text the service's 200 page must contain to count as a login.
    #[arg(long)]
    pub accept_marker: Option<String>,
    /// Write our TEST CA certificates and CRLs here (the service must trust root.pem, or the
    /// issuing CAs in issuing-cas.pem); the same files on every run.
    #[arg(long)]
    pub ca_out: PathBuf,
    /// Write the CA files and exit (to configure the service before the run).
    #[arg(long)]
    pub ca_only: bool,
    /// The service accepts CIE 3.0 authentication certificates besides CNS cards (default: a
    /// CNS-only service).
    #[arg(long)]
    pub accepts_cie: bool,
    /// Where our card issuer (the cards' CRL distribution points and OCSP responder) listens;
    /// the service must reach it.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub issuer_listen: String,
    /// The service's own CA (PEM): verify its server certificate (default: any certificate,
    /// its subject recorded in the trace).
    #[arg(long)]
    pub server_ca: Option<PathBuf>,
    #[command(flatten)]
    select: Selection,
}

/// `check-cns`: aims the CNS catalogue at any TLS service, between two honest cards.
pub async fn cmd_check_cns(a: CheckCnsArgs) -> anyhow::Result<ExitCode> {
    use crate::cns::{self, CnsCase, CnsTarget, ServerTrust};
    let started = std::time::Instant::now();
    let url = url::Url::parse(&a.url).map_err(|e| anyhow::anyhow!("--url {}: {e}", a.url))?;
    if url.scheme() != "https" {
        anyhow::bail!("--url {url}: not an https:// URL");
    }
    let l = tokio::net::TcpListener::bind(&a.issuer_listen)
        .await
        .map_err(|e| anyhow::anyhow!("--issuer-listen {}: {e}", a.issuer_listen))?;
    let base = format!("http://{}", l.local_addr()?);
    let issuer =
        spid_idp::cns::CardIssuer::new(&base, std::sync::Arc::new(spid_core::clock::SystemClock))?;
    tokio::spawn(issuer.clone().serve(l));
    for p in cns::write_ca_out(&a.ca_out, &issuer)? {
        println!("wrote {}", p.display());
    }
    if a.ca_only {
        return Ok(ExitCode::SUCCESS);
    }
    let trust = match &a.server_ca {
        Some(p) => {
            let pem = std::fs::read(p)
                .map_err(|e| anyhow::anyhow!("--server-ca {}: {e}", p.display()))?;
            let certs = openssl::x509::X509::stack_from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("--server-ca {}: {e}", p.display()))?;
            ServerTrust::Roots(certs.iter().filter_map(|c| c.to_der().ok()).collect())
        }
        None => ServerTrust::Any,
    };
    let catalogue = cns::embedded()?;
    let peer = a
        .select
        .load_peer(&catalogue.iter().map(|c| c.id.as_str()).collect::<Vec<_>>())?;
    let all = cns::select(catalogue, a.select.cases.as_deref()).map_err(anyhow::Error::msg)?;
    let accepts_cie = a.accepts_cie;
    let (cases, skipped) = skip_for_peer(all, peer.as_ref(), |c| {
        if c.scope != catalogue::Scope::Any {
            Some("for our SP only")
        } else if !c.service.fits(accepts_cie) {
            Some(if accepts_cie {
                "for a CNS-only service (check-cns without --accepts-cie)"
            } else {
                "for a service that accepts CIE 3.0 certificates (check-cns --accepts-cie)"
            })
        } else {
            None
        }
    });
    let users =
        spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).map_err(anyhow::Error::msg)?;
    let target = CnsTarget {
        issuer: &issuer,
        url: &url,
        cie_url: None,
        trust: &trust,
        accept_marker: a.accept_marker.as_deref(),
        internal: false,
        timeout: cns::CASE_TIMEOUT,
    };
    let header = format!(
        "{}: service {}  card issuer {}  CAs in {}  — {} cases ({} skipped: {}){}",
        Side::Cns.label(),
        url,
        issuer.base_url(),
        a.ca_out.display(),
        cases.len(),
        skipped.len(),
        skipped
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        peer_line(peer.as_ref())
    );
    let run = async |c: &CnsCase| {
        let mut r = cns::run_case(&target, c, &users).await;
        r.settle(peer.as_ref(), cns::flag_warning(c).as_deref());
        r
    };
    let r = run_with_sanity(header, &cases, &cns::sanity_case(), 1, |_| true, run).await;
    finish_runs(
        &[SideRun {
            side: Side::Cns,
            skipped,
            ..r
        }],
        started,
        a.select.report_dir.clone(),
    )
}

/// The per-side lines, the reports and the exit code (2: a side's sanity login failed).
pub fn finish_runs(
    runs: &[SideRun],
    started: std::time::Instant,
    report_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\nby side:");
    for r in runs {
        let passed = r.results.iter().filter(|c| c.passed()).count();
        // The cases' own time: no server start-up, no sanity logins.
        let secs = r.results.iter().map(|c| c.millis).sum::<u128>() as f64 / 1000.0;
        let state = if r.setup_error.is_some() {
            "SETUP ERROR".to_string()
        } else {
            format!(
                "{passed}/{} meet their expectation{}  ({secs:.2} s)",
                r.results.len(),
                report::outcome_counts(r.results.iter().map(|c| c.outcome))
            )
        };
        let _ = writeln!(out, "  {:<16} {state}", r.side.label());
    }
    let _ = writeln!(out, "wall time {:.2}s", started.elapsed().as_secs_f64());
    let sided = |r: &SideRun, cases: &[runner::CaseResult]| {
        cases
            .iter()
            .cloned()
            .map(|mut c| {
                c.side = r.side.label().to_string();
                c
            })
            .collect::<Vec<_>>()
    };
    let all: Vec<runner::CaseResult> = runs.iter().flat_map(|r| sided(r, &r.results)).collect();
    let sanity: Vec<runner::CaseResult> = runs.iter().flat_map(|r| sided(r, &r.sanity)).collect();
    let setup: Vec<String> = runs
        .iter()
        .filter_map(|r| {
            r.setup_error
                .as_ref()
                .map(|e| format!("{}: {e}", r.side.label()))
        })
        .collect();
    let setup = (!setup.is_empty()).then(|| setup.join("; "));
    let skipped: Vec<external::Skipped> = runs
        .iter()
        .flat_map(|r| r.skipped.iter().cloned())
        .collect();
    let rep = report::Report {
        setup_error: setup.as_deref(),
        cases: &all,
        sanity: &sanity,
        skipped: &skipped,
        ..Default::default()
    };
    if let Some(d) = report_dir {
        for p in report::write_all(&d, &rep).map_err(|e| {
            anyhow::anyhow!(
                "cannot write the reports to {} (--report-dir): {e}",
                d.display()
            )
        })? {
            let _ = writeln!(out, "report: {}", p.display());
        }
    }
    Ok(if setup.is_some() {
        ExitCode::from(2)
    } else if rep.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs `cases` between two honest logins (if either fails the side is a setup error: a
/// server that is down must not "pass" the reject cases), up to `jobs` at a time (`exclusive`
/// cases alone), with a progress line per case in catalogue order and the summary.
pub async fn run_with_sanity<C: catalogue::CatalogueCase>(
    header: String,
    cases: &[C],
    sanity: &C,
    jobs: usize,
    exclusive: impl Fn(&C) -> bool,
    run: impl AsyncFn(&C) -> runner::CaseResult,
) -> SideRun {
    let w = report::id_width(cases.iter().map(|c| c.id()).chain([sanity.id()]));
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\n{header}");
    let mut side = SideRun {
        side: Side::Saml,
        results: Vec::new(),
        sanity: Vec::new(),
        setup_error: None,
        skipped: Vec::new(),
    };
    let first = run(sanity).await;
    report::progress(&mut out, &first, w);
    let ok = first.passed();
    let why = external::sanity_failure(&first);
    side.sanity.push(first);
    if !ok {
        let e = format!("the honest login failed before the run: {why}");
        let _ = writeln!(out, "setup error: {e}; no verdicts reported");
        side.setup_error = Some(e);
        return side;
    }
    side.results = runner::run_ordered(cases, jobs, exclusive, run_ref(&run), |r| {
        report::progress(&mut out, r, w)
    })
    .await;
    let last = run(sanity).await;
    report::progress(&mut out, &last, w);
    let ok = last.passed();
    let why = external::sanity_failure(&last);
    side.sanity.push(last);
    if !ok {
        let e = format!(
            "the honest login failed after the run, so the verdicts are not trustworthy: {why}"
        );
        let _ = writeln!(out, "setup error: {e}");
        side.setup_error = Some(e);
        return side;
    }
    report::summary(&mut out, &side.results);
    side
}

/// Borrows an async closure as one (so it can be called again afterwards).
pub fn run_ref<C>(
    run: &impl AsyncFn(&C) -> runner::CaseResult,
) -> impl AsyncFn(&C) -> runner::CaseResult + '_ {
    async move |c: &C| run(c).await
}

/// Aims the SAML catalogue at an external SP (see [`external::check_sp`]), prints the checks
/// and cases, writes the reports; exit 0, 1 or 2.
pub async fn check_sp(
    opts: external::CheckSpOptions,
    pattern: Option<&str>,
    partition: Option<(usize, usize)>,
    report_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    check_sp_as(
        opts,
        external::SpProfile::Spid,
        pattern,
        partition,
        report_dir,
    )
    .await
}

/// `check-sp` under `profile` (a CIE profile: the `cie` cases and users, our CIE IdP).
pub async fn check_sp_as(
    opts: external::CheckSpOptions,
    profile: external::SpProfile,
    pattern: Option<&str>,
    partition: Option<(usize, usize)>,
    report_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let cie = profile.cie_kind().is_some();
    let all = if cie {
        crate::cie::embedded()?
            .iter()
            .map(crate::cie::to_saml)
            .collect()
    } else {
        catalogue::embedded("saml")?
    };
    if let Some(p) = &opts.peer {
        p.check_ids(|id| {
            all.iter().any(|c| c.id == id) || spid_core::Rule::from_code(id).is_some()
        })?;
    }
    let cases = catalogue::select(all, pattern).map_err(anyhow::Error::msg)?;
    let cases = match partition {
        Some((k, n)) => catalogue::partition(cases, k, n, |c| c.id.as_str()),
        None => cases,
    };
    let users = spid_idp::users::parse(if cie {
        spid_idp::users::CIE_USERS
    } else {
        spid_idp::users::DEFAULT_USERS
    })
    .map_err(anyhow::Error::msg)?;
    let started = std::time::Instant::now();
    let w = report::id_width(cases.iter().map(|c| c.id.as_str()));
    println!(
        "check-sp{}: SP metadata {}, login URL {}, our IdP on {}{}",
        match profile {
            external::SpProfile::Spid => "",
            external::SpProfile::CiePublic => " --profile cie-sp-public",
            external::SpProfile::CiePrivate => " --profile cie-sp-private",
        },
        opts.metadata,
        opts.login_url,
        opts.idp_listen,
        opts.peer
            .as_ref()
            .map(|p| format!(", peer {} ({})", p.peer.name, p.path))
            .unwrap_or_default()
    );
    let rep = external::check_sp_as(&opts, profile, &cases, &users, |r| {
        report::progress(&mut std::io::stdout().lock(), r, w)
    })
    .await;
    let mut out = std::io::stdout().lock();
    report::checks(&mut out, &rep.checks);
    if !rep.skipped.is_empty() {
        let _ = writeln!(out, "\nskipped ({}):", rep.skipped.len());
        for s in &rep.skipped {
            let _ = writeln!(out, "  {:<w$} {}", s.id, s.reason);
        }
    }
    if !rep.cases.is_empty() {
        report::summary(&mut out, &rep.cases);
    }
    let by_group = |g: &str| rep.checks.iter().filter(|c| c.group() == g).count();
    let _ = writeln!(
        out,
        "{} metadata checks, {} authn-request checks{}; {} cases; {} skipped; wall time {:.2}s",
        by_group("metadata"),
        by_group("authn-request"),
        report::outcome_counts(rep.checks.iter().map(|c| c.outcome)),
        rep.cases.len(),
        rep.skipped.len(),
        started.elapsed().as_secs_f64()
    );
    let r = report::Report {
        target: Some(&rep.target),
        setup_error: rep.setup_error.as_deref(),
        checks: &rep.checks,
        cases: &rep.cases,
        skipped: &rep.skipped,
        sanity: &rep.sanity,
    };
    if let Some(d) = report_dir {
        let paths = report::write_all(&d, &r).map_err(|e| {
            anyhow::anyhow!(
                "cannot write the reports to {} (--report-dir): {e}",
                d.display()
            )
        })?;
        for p in paths {
            let _ = writeln!(out, "report: {}", p.display());
        }
    }
    if let Some(e) = &rep.setup_error {
        let _ = writeln!(out, "setup error: {e}");
        return Ok(ExitCode::from(2));
    }
    Ok(if r.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// How our entity joins someone else's federation: it listens, says its entity id, and waits
/// for the trust marks the anchor issues it once onboarded.
#[derive(clap::Args)]
pub struct Onboarding {
    /// The trust anchor our entity names in `authority_hints`.
    #[arg(long)]
    trust_anchor: String,
    /// Where our entity listens (the probe RP: `http://<listen>/probe-rp`; our OP:
    /// `http://<listen>/oidc/op`).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// JSON array of the trust marks the anchor issued to our entity; the run waits for it.
    #[arg(long)]
    trust_marks: PathBuf,
    /// Seconds to wait for the trust-marks file.
    #[arg(long, default_value_t = 120)]
    wait: u64,
    /// Write our entity id here once it listens (for onboarding scripts).
    #[arg(long)]
    entity_id_out: Option<PathBuf>,
}

impl Onboarding {
    /// Says which entity waits, writes its id for the onboarding script, and waits for its
    /// trust marks.
    async fn announce_and_wait(
        &self,
        entity_id: &str,
    ) -> anyhow::Result<Vec<spid_core::oidc::federation::TrustMarkEntry>> {
        println!("{entity_id}: waiting for {}", self.trust_marks.display());
        if let Some(p) = &self.entity_id_out {
            std::fs::write(p, entity_id)?;
        }
        wait_for_trust_marks(&self.trust_marks, self.wait).await
    }
}

/// Which catalogue cases run and where the reports go.
#[derive(clap::Args)]
pub struct Selection {
    /// Only cases whose id matches this glob.
    #[arg(long)]
    cases: Option<String>,
    /// Write results.json, JUnit XML and HTML here.
    #[arg(long)]
    report_dir: Option<PathBuf>,
    /// The peer's expected deviations (`fixtures/peers/<peer>.toml`, case ids): listed
    /// failures are xfail, listed failures that pass are xpass and fail the run; `skip`
    /// entries are not run.
    #[arg(long)]
    peer: Option<PathBuf>,
}

impl Selection {
    /// The peer file, its ids checked against the catalogue's case ids.
    fn load_peer(&self, ids: &[&str]) -> anyhow::Result<Option<crate::peers::PeerFile>> {
        let Some(path) = &self.peer else {
            return Ok(None);
        };
        let p = crate::peers::PeerFile::load(path)?;
        p.check_ids(|id| ids.contains(&id))?;
        Ok(Some(p))
    }
}

/// Splits `cases` into those run and those skipped (`not_here`: the reason a case cannot
/// run against an external peer, if any; then the peer file's `skip` entries).
fn skip_for_peer<C: catalogue::CatalogueCase>(
    cases: Vec<C>,
    peer: Option<&crate::peers::PeerFile>,
    not_here: impl Fn(&C) -> Option<&'static str>,
) -> (Vec<C>, Vec<external::Skipped>) {
    let mut run = Vec::new();
    let mut skipped = Vec::new();
    for c in cases {
        let why = not_here(&c).map(str::to_string).or_else(|| {
            peer.and_then(|p| p.skip(c.id()))
                .map(|r| format!("skipped for this peer: {r}"))
        });
        match why {
            Some(reason) => skipped.push(external::Skipped {
                id: c.id().to_string(),
                reason,
            }),
            None => run.push(c),
        }
    }
    (run, skipped)
}

/// The arguments of `check-rp`.
#[derive(clap::Args)]
pub struct CheckRp {
    /// The RP URL that starts a login at our OP; `{op}` is replaced by our OP's entity id.
    #[arg(long)]
    login_url: String,
    #[command(flatten)]
    join: Onboarding,
    /// SPID reading for our OP (`rules-2023`, `django-sdk`, …); a CIE reading (`cie`,
    /// `django-sdk-cie`) runs the `cie-oidc-rp` catalogue instead of `oidc-rp`.
    #[arg(long, default_value = "rules-2023")]
    oidc_profile: String,
    /// Text the RP's final page must contain for HTTP 200 to count as a login.
    #[arg(long)]
    accept_marker: Option<String>,
    #[command(flatten)]
    select: Selection,
}

/// `\n  peer <name> (<file>)` for a run header, or nothing.
fn peer_line(peer: Option<&crate::peers::PeerFile>) -> String {
    peer.map(|p| format!("\n  peer {} ({})", p.peer.name, p.path))
        .unwrap_or_default()
}

/// Polls `path` until it holds a JSON array of trust marks, or `secs` pass.
pub async fn wait_for_trust_marks(
    path: &std::path::Path,
    secs: u64,
) -> anyhow::Result<Vec<spid_core::oidc::federation::TrustMarkEntry>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let parsed = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if let Some(m) = parsed {
            return Ok(m);
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("no trust marks in {} after {secs}s", path.display());
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Aims the RP-side OIDC catalogue at an external relying party through our OP.
pub async fn check_rp(o: CheckRp) -> anyhow::Result<ExitCode> {
    let (pattern, report_dir) = (o.select.cases.as_deref(), o.select.report_dir.clone());
    use crate::oidc::{self, OidcCase, RpTarget};
    let started = std::time::Instant::now();
    let profile = spid_core::oidc::Profile::by_name(&o.oidc_profile)
        .ok_or_else(|| anyhow::anyhow!("unknown --oidc-profile {}", o.oidc_profile))?;
    // A CIE reading answers as the CIE OP: its catalogue is the CIE one.
    let cie = profile.op_metadata_cie;
    let creds = runner::Credentials::embedded()?;
    let l = tokio::net::TcpListener::bind(&o.join.listen).await?;
    let base = format!("http://{}", l.local_addr()?);
    let idp =
        spid_idp::IdentityProvider::new(spid_idp::IdpConfig::new(&base, creds.idp, creds.foreign))?;
    let anchor = external_anchor(&o.join.trust_anchor, &profile).await?;
    let mut op_cfg = idp.op_config();
    op_cfg.profile = profile;
    op_cfg.trust_marks_file = Some(o.join.trust_marks.clone());
    let op = spid_idp::oidc::op::OpenIdProvider::with_keys(op_cfg, crate::oidc_keys::op()?);
    op.set_external_trust_anchor(anchor);
    let served = op.clone();
    tokio::spawn(async move {
        let _ = idp.serve_with_op(l, &served).await;
    });
    o.join.announce_and_wait(op.entity_id()).await?;
    let login_url = url::Url::parse(&o.login_url.replace("{op}", op.entity_id()))?;
    let catalogue = if cie {
        crate::cie_oidc::embedded()?
            .iter()
            .map(crate::cie_oidc::as_oidc_case)
            .collect()
    } else {
        oidc::embedded()?
    };
    let side = if cie { Side::CieOidcRp } else { Side::OidcRp };
    let peer = o
        .select
        .load_peer(&catalogue.iter().map(|c| c.id.as_str()).collect::<Vec<_>>())?;
    let all = oidc::select(catalogue, pattern).map_err(anyhow::Error::msg)?;
    let (cases, skipped) = skip_for_peer(all, peer.as_ref(), oidc::not_for_external_rp);
    let users =
        spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).map_err(anyhow::Error::msg)?;
    let target = RpTarget {
        op: &op,
        login_url: &login_url,
        accept_marker: o.accept_marker.as_deref(),
        internal: false,
        ours: None,
    };
    let header = format!(
        "{}: OP {}  RP login {}  — {} cases ({} skipped: {}){}",
        side.label(),
        op.entity_id(),
        login_url,
        cases.len(),
        skipped.len(),
        skipped
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        peer_line(peer.as_ref())
    );
    let run = async |c: &OidcCase| {
        let mut r = oidc::run_rp_case(&target, c, &users).await;
        r.settle(peer.as_ref(), None);
        r
    };
    let r = run_with_sanity(header, &cases, &oidc::sanity_case(), 1, |_| true, run).await;
    finish_runs(&[SideRun { side, skipped, ..r }], started, report_dir)
}

/// The arguments of `check-op`.
#[derive(clap::Args)]
pub struct CheckOp {
    /// The OP's entity id.
    #[arg(long)]
    op: String,
    #[command(flatten)]
    join: Onboarding,
    /// Login driver for the OP's pages (TOML as for check-idp); default: our OP's pages.
    #[arg(long)]
    driver: Option<PathBuf>,
    /// The driver user to log in as (default: the driver's first).
    #[arg(long)]
    user: Option<String>,
    /// The reading the probe speaks (`rules-2023`, `cie`, …); a CIE reading (`cie`,
    /// `django-sdk-cie`) runs the `cie-oidc-op` catalogue instead of `oidc-op`.
    #[arg(long, default_value = "rules-2023")]
    oidc_profile: String,
    #[command(flatten)]
    select: Selection,
}

/// Aims the OP-side OIDC catalogue at an external OpenID Provider through the probe RP.
pub async fn check_op(o: CheckOp) -> anyhow::Result<ExitCode> {
    let (pattern, report_dir) = (o.select.cases.as_deref(), o.select.report_dir.clone());
    use crate::catalogue::Scope;
    use crate::check_idp::LoginDriver;
    use crate::oidc_op::{self, OpEndpoints, OpTarget, ProbeRp};
    let started = std::time::Instant::now();
    let driver = match &o.driver {
        Some(p) => toml::from_str::<LoginDriver>(&std::fs::read_to_string(p)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        None => LoginDriver::builtin(),
    };
    let who = match &o.user {
        Some(u) => driver.users.iter().find(|d| &d.username == u),
        None => driver.users.first(),
    }
    .cloned()
    .ok_or_else(|| anyhow::anyhow!("the login driver has no such user"))?;
    let profile = spid_core::oidc::Profile::by_name(&o.oidc_profile)
        .ok_or_else(|| anyhow::anyhow!("unknown --oidc-profile {}", o.oidc_profile))?;
    // A CIE reading publishes the CIE OP metadata: its catalogue is the CIE one.
    let cie = profile.op_metadata_cie;
    let listener = tokio::net::TcpListener::bind(&o.join.listen).await?;
    let entity_id = format!("http://{}/probe-rp", listener.local_addr()?);
    let clock: spid_core::clock::SharedClock = std::sync::Arc::new(spid_core::clock::SystemClock);
    let probe = ProbeRp::with_profile(&entity_id, clock, crate::oidc_keys::probe()?, profile);
    probe.join(&o.join.trust_anchor, Vec::new());
    tokio::spawn({
        let probe = probe.clone();
        async move {
            let _ = probe.serve(listener).await;
        }
    });
    let marks = o.join.announce_and_wait(&entity_id).await?;
    probe.join(&o.join.trust_anchor, marks);
    let ops = OpEndpoints::discover(&o.op).await?;
    let catalogue = if cie {
        oidc_op::embedded_cie()?
            .iter()
            .map(oidc_op::to_op)
            .collect()
    } else {
        oidc_op::embedded()?
    };
    let side = if cie { Side::CieOidcOp } else { Side::OidcOp };
    let peer = o
        .select
        .load_peer(&catalogue.iter().map(|c| c.id.as_str()).collect::<Vec<_>>())?;
    let all = oidc_op::select(catalogue, pattern).map_err(anyhow::Error::msg)?;
    let (cases, skipped) = skip_for_peer(all, peer.as_ref(), |c| {
        (c.scope != Scope::Any).then_some("for our OP only")
    });
    let users =
        spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).map_err(anyhow::Error::msg)?;
    let external = o.driver.is_some();
    let target = OpTarget {
        probe: &probe,
        op: &ops,
        clock: None,
        internal: false,
        users: &users,
        driver: external.then_some((&driver, &who)),
    };
    let header = format!(
        "{}: OP {}  probe RP {}  — {} cases ({} skipped: {}){}",
        side.label(),
        ops.issuer,
        entity_id,
        cases.len(),
        skipped.len(),
        skipped
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        peer_line(peer.as_ref())
    );
    let run = async |c: &oidc_op::OpCase| {
        let mut r = oidc_op::run_case(&target, c).await;
        r.settle(peer.as_ref(), None);
        r
    };
    let r = run_with_sanity(header, &cases, &oidc_op::sanity_case(), 1, |_| true, run).await;
    finish_runs(&[SideRun { side, skipped, ..r }], started, report_dir)
}

/// Judges an IdP: metadata, refusals of malformed AuthnRequests, logins at every level; with
/// `peer`, its expected deviations are xfail; writes results.json to `report_dir`.
pub async fn check_idp(
    metadata: String,
    sp_listen: String,
    driver: Option<PathBuf>,
    certs: Option<PathBuf>,
    peer: Option<crate::peers::PeerFile>,
    report_dir: Option<PathBuf>,
    profile: spid_core::cie::IdpProfile,
) -> anyhow::Result<ExitCode> {
    use crate::check_idp::{self as ci, CheckIdpOptions, LoginDriver};
    let driver = match driver {
        Some(p) => Some(
            toml::from_str::<LoginDriver>(&std::fs::read_to_string(&p)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        ),
        None => None,
    };
    let started = std::time::Instant::now();
    let mut report = ci::check_idp(&CheckIdpOptions {
        metadata,
        sp_listen,
        driver,
        certs,
        profile,
    })
    .await?;
    if let Some(p) = &peer {
        report.settle(p);
    }
    let mut out = std::io::stdout().lock();
    if let Some(p) = &peer {
        let _ = writeln!(out, "peer {} ({})", p.peer.name, p.path);
    }
    let why = |w: &Option<String>| w.as_deref().map(|r| format!("  ({r})")).unwrap_or_default();
    let _ = writeln!(out, "metadata and request checks:");
    for c in &report.checks {
        let _ = writeln!(
            out,
            "  {:<5} {:<42} {}{}",
            c.outcome.label(),
            c.id,
            c.detail,
            why(&c.why)
        );
    }
    let _ = writeln!(out, "logins:");
    for l in &report.logins {
        let _ = writeln!(
            out,
            "  {:<5} {:<26} {:<8} {} {:<14} expect {:<5} got {} {}{}",
            l.outcome.label(),
            l.id,
            l.comparison.as_str(),
            l.level,
            l.user,
            l.expected,
            l.status,
            l.rule.as_deref().unwrap_or("-"),
            // The duties' reasons are on their own lines.
            if l.outcome == runner::Outcome::Xfail && l.duties.iter().all(|d| d.why.is_none()) {
                why(&l.why)
            } else {
                String::new()
            }
        );
        for d in l
            .duties
            .iter()
            .filter(|d| d.outcome != runner::Outcome::Pass)
        {
            let _ = writeln!(
                out,
                "        {:<5} {} {}{}",
                d.outcome.label(),
                d.id,
                d.detail,
                why(&d.why)
            );
        }
    }
    let failed = report.checks.iter().filter(|c| !c.holds()).count()
        + report.logins.iter().filter(|l| !l.holds()).count();
    let _ = writeln!(
        out,
        "{} checks, {} logins, {failed} not passed{}; wall time {:.2}s",
        report.checks.len(),
        report.logins.len(),
        report::outcome_counts(
            report
                .checks
                .iter()
                .map(|c| c.outcome)
                .chain(report.logins.iter().map(|l| l.outcome))
        ),
        started.elapsed().as_secs_f64()
    );
    if let Some(d) = report_dir {
        std::fs::create_dir_all(&d)
            .and_then(|_| {
                let p = d.join("results.json");
                let mut v = serde_json::to_value(&report)?;
                v["peer"] = peer.as_ref().map(|p| p.peer.name.clone()).into();
                std::fs::write(&p, serde_json::to_string_pretty(&v)?)?;
                let j = report.write_junit(&d)?;
                let _ = writeln!(out, "report: {}, {}", p.display(), j.display());
                Ok(())
            })
            .map_err(|e: std::io::Error| {
                anyhow::anyhow!(
                    "cannot write the report to {} (--report-dir): {e}",
                    d.display()
                )
            })?;
    }
    Ok(if report.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
