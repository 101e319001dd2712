//! The `check-*` commands: the catalogue aimed at someone else's SP, IdP, OP, RP or TLS service.

use super::*;

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
    /// Only the request probes and logins whose id matches this glob (e.g. `login.minimum.*`,
    /// `request.*`); the metadata checks are always made.
    #[arg(long)]
    pub cases: Option<String>,
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
        cases,
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
        crate::check_idp::CheckIdpOptions {
            metadata,
            sp_listen,
            driver: None,
            certs,
            profile,
            cases,
        },
        driver,
        peer,
        report_dir,
    )
    .await
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
    /// Cases run at the same time, each with its own card (the honest logins before and after
    /// stay alone); output order does not change. Default 4: the verdicts are those of
    /// `--jobs 1`, and a service's revocation time-outs overlap; `--jobs 1` for a service that
    /// takes one handshake at a time.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
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
    let all = a.select.shard(all, |c| c.id.as_str());
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
    let r = run_with_sanity(header, &cases, &cns::sanity_case(), a.jobs, |_| false, run).await;
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
    let all = o.select.shard(all, |c| c.id.as_str());
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
    let all = o.select.shard(all, |c| c.id.as_str());
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
    mut opts: crate::check_idp::CheckIdpOptions,
    driver: Option<PathBuf>,
    peer: Option<crate::peers::PeerFile>,
    report_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    use crate::check_idp::{self as ci, LoginDriver};
    opts.driver = match driver {
        Some(p) => Some(
            toml::from_str::<LoginDriver>(&std::fs::read_to_string(&p)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        ),
        None => None,
    };
    let started = std::time::Instant::now();
    let mut report = ci::check_idp(&opts).await?;
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
    let w = report::id_width(report.logins.iter().map(|l| l.id.as_str()));
    for l in &report.logins {
        let _ = writeln!(
            out,
            "  {:<5} {:<w$} {:<8} {} {:<14} expect {:<5} got {} {}{}",
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
        "{} checks, {} logins{}, {failed} not passed{}; wall time {:.2}s",
        report.checks.len(),
        report.logins.len(),
        opts.cases
            .as_deref()
            .map(|g| format!(" (probes and logins matching --cases {g})"))
            .unwrap_or_default(),
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
