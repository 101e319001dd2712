//! The `spid-harness` command line.

use clap::{Parser, Subcommand};
use spid_harness::{catalogue, certs, cli};
use std::path::PathBuf;
use std::process::ExitCode;

// Many short-lived allocations a case (messages, pages, trees): mimalloc's thread-local free
// lists take about a sixth less CPU than glibc's malloc on them (docs/dependencies.md). Built
// without transparent huge pages (`no_thp`): a run writes a few tens of MiB once, and the first
// write to each fresh 2 MiB huge page zeroes all of it, from a few percent of a `check-sp` run's
// CPU to a fifth of it on a virtual machine; with 4 KiB pages only what is written is faulted in.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "spid-harness",
    version,
    about = "End-to-end SPID login conformance: fake IdP, reference SP, case catalogue"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the whole catalogue on loopback, side by side: SAML (our IdP at our SP), OIDC RP
    /// side (our OP at our RP), OIDC OP side (the probe RP at our OP) and CNS (our card
    /// issuer's cards at our SP's CNS login over TLS); each side between two honest logins,
    /// counts by side at the end.
    Run(cli::RunArgs),
    /// Combine the reports of a run's shards (`--partition k/n`) into one; exit code as the
    /// combined run's.
    Merge(cli::MergeArgs),
    /// The two OIDC sides only (`run --side oidc-rp --side oidc-op`).
    RunOidc {
        /// Only cases whose id matches this glob.
        #[arg(long)]
        cases: Option<String>,
        /// Write results.json, JUnit XML and HTML here.
        #[arg(long)]
        report_dir: Option<PathBuf>,
    },
    /// List the catalogue.
    List(cli::ListArgs),
    /// Print the rule-code table (Markdown).
    Rules,
    /// Print every catalogue, counted by family (Markdown; docs/cases.md).
    Cases,
    /// Print the Avviso 18 matrix, Purpose × identity type (Markdown; docs/avviso18.md).
    Avviso18,
    /// Throughput of signing, validation and whole logins, as ratios measured in one run.
    Bench(cli::BenchArgs),
    /// One browser login through any SP login URL (our IdP's pages are filled in when they
    /// appear); prints the final status and rule; exit 0 only on HTTP 200.
    Probe(cli::ProbeArgs),
    /// Regenerate the test-only keys and certificates.
    Certs {
        /// Output directory.
        #[arg(long, default_value = "certs")]
        out: PathBuf,
    },
    /// Aim the catalogue at an external SP: metadata and AuthnRequest checks, then every case.
    CheckSp(cli::CheckSpArgs),
    /// Aim the OP-side OIDC catalogue at an external OpenID Provider: a probe RP (fresh keys,
    /// its own entity configuration on `--listen`) joins the OP's federation once the trust
    /// marks its anchor issued appear in `--trust-marks`, then sends every crafted request.
    CheckOp(cli::CheckOp),
    /// Aim the RP-side OIDC catalogue at an external relying party: our IdP + OP (on
    /// `--listen`) joins the RP's federation once the trust marks its anchor issued appear in
    /// `--trust-marks`, then answers each login at the RP with one case's fault plan.
    CheckRp(cli::CheckRp),
    /// Aim the CNS catalogue at any TLS service that asks for a client certificate: our card
    /// issuer mints each case's card (its CRL and OCSP responder on `--issuer-listen`), the
    /// harness presents it in the handshake and judges the answer (200 a login, 4xx or a TLS
    /// alert a refusal); our TEST CAs and CRLs are written to `--ca-out` for the service.
    CheckCns(cli::CheckCnsArgs),
    /// Judge an IdP: metadata, refusals of malformed AuthnRequests, and logins at L1/L2/L3
    /// under every Comparison through our SP.
    CheckIdp(cli::CheckIdpArgs),
    /// One SP judged by check-sp and by spid-sp-test, side by side: both tools' verdicts on
    /// the shared Response cases (`spt-NNN-*` = its test NNN) and their metadata and
    /// AuthnRequest check counts. Exit 1 on a disagreement the peer file does not explain, a
    /// stale explanation, or fewer checks of ours than spid-sp-test's.
    CompareSpidSpTest {
        /// check-sp's results.json.
        #[arg(long)]
        results: PathBuf,
        /// spid-sp-test's JSON report (`--extra -tr -rf json -o FILE`).
        #[arg(long)]
        spid_sp_test: PathBuf,
        /// The peer's expectation file (`[[spid_sp_test]]` explains disagreements).
        #[arg(long)]
        peer: Option<PathBuf>,
    },
    /// Serve the fake IdP alone (or print its metadata).
    Idp(cli::IdpArgs),
    /// Serve the reference SP alone.
    Sp(cli::SpArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SPID_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    spid_core::saml::dsig::init();
    let cli = Cli::parse();
    // check-sp on one thread, whatever its --jobs: the IdP, the browsers and their
    // connections on one thread, as a browser against one server would be, while the SP
    // under test (another process) works on the other cases. On the multi-threaded runtime
    // every request and response woke another worker (a futex and an epoll wake-up each
    // way, a third of the process's CPU in system calls).
    let one_thread = matches!(&cli.cmd, Cmd::CheckSp(_));
    let rt = if one_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(dispatch(cli.cmd)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Run(a) => cli::cmd_run(a).await,
        Cmd::Merge(a) => cli::cmd_merge(a).await,
        Cmd::RunOidc { cases, report_dir } => {
            let sides = [cli::Side::OidcRp, cli::Side::OidcOp];
            let sel = cli::RunSelection {
                pattern: cases.as_deref(),
                partition: None,
                jobs: 1,
            };
            cli::run(sel, None, report_dir, &sides).await
        }
        Cmd::List(a) => cli::cmd_list(a).await,
        Cmd::Rules => {
            print!("{}", spid_core::Rule::markdown_table());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Avviso18 => {
            print!("{}", spid_core::professional::markdown());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Cases => {
            print!("{}", catalogue::cases_markdown()?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench(a) => cli::cmd_bench(a).await,
        Cmd::Probe(a) => cli::cmd_probe(a).await,
        Cmd::Certs { out } => {
            certs::generate(&out, &certs::default_specs())?;
            spid_harness::oidc_keys::generate(&out.join("oidc"))?;
            println!("wrote test credentials to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::CheckSp(a) => cli::cmd_check_sp(a).await,
        Cmd::CheckOp(o) => cli::check_op(o).await,
        Cmd::CheckRp(o) => cli::check_rp(o).await,
        Cmd::CheckIdp(a) => cli::cmd_check_idp(a).await,
        Cmd::CheckCns(a) => cli::cmd_check_cns(a).await,
        Cmd::CompareSpidSpTest {
            results,
            spid_sp_test,
            peer,
        } => spid_harness::compare::run(&results, &spid_sp_test, peer.as_deref()),
        Cmd::Idp(a) => cli::cmd_idp(a).await,
        Cmd::Sp(a) => cli::cmd_sp(a).await,
    }
}
