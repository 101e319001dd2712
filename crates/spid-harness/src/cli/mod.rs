//! The commands behind `spid-harness`'s command line: each takes its parsed arguments and
//! returns the exit code (0 all met, 1 a failure, 2 a setup error); `main.rs` only parses the
//! command line and maps errors to exit code 2.

use crate::{catalogue, certs, external, report, runner};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

mod check;
mod run;
mod serve;

pub use check::*;
pub use run::*;
pub use serve::*;

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
    /// Only shard k of n of the cases (e.g. 2/3; the shards together run each case once, and
    /// every shard logs in honestly before and after).
    #[arg(long, value_parser = catalogue::parse_partition)]
    partition: Option<(usize, usize)>,
}

impl Selection {
    /// `cases` narrowed to this shard (`--partition`), if any.
    fn shard<T>(&self, cases: Vec<T>, id: impl Fn(&T) -> &str) -> Vec<T> {
        match self.partition {
            Some((k, n)) => catalogue::partition(cases, k, n, id),
            None => cases,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::Selection;
    use clap::Parser;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        select: Selection,
    }

    #[test]
    fn partition_shards_add_up_to_the_catalogue_once_each() {
        let ids: Vec<String> = crate::cns::embedded()
            .expect("the CNS catalogue")
            .into_iter()
            .map(|c| c.id)
            .collect();
        let shard = |k: &str| {
            Args::try_parse_from(["check", "--partition", k])
                .expect("parses")
                .select
                .shard(ids.clone(), String::as_str)
        };
        let (a, b, c) = (shard("1/3"), shard("2/3"), shard("3/3"));
        assert!(!a.is_empty() && !b.is_empty() && !c.is_empty());
        let mut all: Vec<String> = [a, b, c].concat();
        all.sort();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(all, want);
        let whole = Args::try_parse_from(["check"]).expect("parses");
        assert_eq!(whole.select.shard(ids.clone(), String::as_str), ids);
        assert!(Args::try_parse_from(["check", "--partition", "0/3"]).is_err());
    }
}
