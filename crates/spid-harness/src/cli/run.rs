//! `run` and `merge`: the catalogue on loopback, side by side, and the shards of a run combined.

use super::*;

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
    /// The side's name in reports (`SAML (SP side)`, …).
    pub(super) fn label(self) -> &'static str {
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
    pub(super) side: Side,
    pub(super) results: Vec<runner::CaseResult>,
    /// The honest logins before and after.
    pub(super) sanity: Vec<runner::CaseResult>,
    /// Where the side stopped, when it could not be judged.
    pub(super) setup_error: Option<String>,
    /// Cases not run, with the reason.
    pub(super) skipped: Vec<external::Skipped>,
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
