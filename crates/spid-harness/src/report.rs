//! Reporters: a progress line per case (each case printed once), a closing summary (what did
//! not pass, counts by family and by outcome), and the files: `results.json`, `junit.xml`
//! and `report.html`, each carrying the checks, the cases and any setup error with the trace
//! so far. The exit code and JUnit agree: a run fails exactly when JUnit has a failure.

use crate::catalogue::Expect;
use crate::checks::CheckResult;
use crate::external::{Skipped, TargetInfo};
use crate::runner::{CaseResult, Outcome};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;

/// Short text for an expectation.
pub fn expected_text(e: &Expect) -> String {
    match e {
        Expect::Accept => "accept".into(),
        Expect::Reject { rules, .. } => format!("reject {}", rules.join("|")),
        Expect::Either { .. } => "either".into(),
        Expect::Level { level } => format!("level {level} vs request"),
    }
}

/// Everything one run reports.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Report<'a> {
    /// What was checked (external targets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<&'a TargetInfo>,
    /// Set when the run could not judge the target.
    pub setup_error: Option<&'a str>,
    /// Metadata and AuthnRequest checks.
    pub checks: &'a [CheckResult],
    /// Case results.
    pub cases: &'a [CaseResult],
    /// Cases not run.
    pub skipped: &'a [Skipped],
    /// The honest logins around the cases, with their traces.
    pub sanity: &'a [CaseResult],
}

impl Report<'_> {
    /// Whether the run fails (exit 1) — setup errors aside (exit 2).
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.outcome.fails_run())
            || self.cases.iter().any(|c| c.outcome.fails_run())
    }
}

/// A report read back from `results.json` (for `merge`).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct OwnedReport {
    /// What was checked.
    #[serde(default)]
    pub target: Option<TargetInfo>,
    /// Set when the run could not judge the target.
    #[serde(default)]
    pub setup_error: Option<String>,
    /// Checks.
    #[serde(default, deserialize_with = "crate::checks::deserialize_checks")]
    pub checks: Vec<CheckResult>,
    /// Cases.
    #[serde(default)]
    pub cases: Vec<CaseResult>,
    /// Cases not run.
    #[serde(default)]
    pub skipped: Vec<Skipped>,
    /// Honest logins.
    #[serde(default)]
    pub sanity: Vec<CaseResult>,
}

impl OwnedReport {
    /// Reads `results.json`; the error names the file.
    pub fn load(path: &std::path::Path) -> anyhow::Result<OwnedReport> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!("{} is not a spid-harness results.json: {e}", path.display())
        })
    }

    /// Combines the reports of a run's shards (`--partition k/n`) into one: cases in id order
    /// within each family as the shards ran them, checks once (every shard makes the same
    /// checks of the same target), setup errors joined.
    pub fn merge(parts: Vec<OwnedReport>) -> anyhow::Result<OwnedReport> {
        let mut out = OwnedReport::default();
        let mut seen = std::collections::HashSet::new();
        let mut errors = Vec::new();
        for p in parts {
            if out.target.is_none() {
                out.target = p.target;
            }
            if out.checks.is_empty() {
                out.checks = p.checks;
            }
            errors.extend(p.setup_error);
            for c in p.cases {
                anyhow::ensure!(
                    seen.insert(c.id.clone()),
                    "case {} is in two of the merged reports: were they shards of one run?",
                    c.id
                );
                out.cases.push(c);
            }
            out.skipped.extend(p.skipped);
            out.sanity.extend(p.sanity);
        }
        out.skipped.sort_by(|a, b| a.id.cmp(&b.id));
        out.skipped.dedup_by(|a, b| a.id == b.id);
        out.skipped.retain(|s| !seen.contains(&s.id));
        out.setup_error = (!errors.is_empty()).then(|| errors.join("; "));
        Ok(out)
    }

    /// The borrowed view the writers take.
    pub fn view(&self) -> Report<'_> {
        Report {
            target: self.target.as_ref(),
            setup_error: self.setup_error.as_deref(),
            checks: &self.checks,
            cases: &self.cases,
            skipped: &self.skipped,
            sanity: &self.sanity,
        }
    }
}

/// The width of the id column for `ids` (so long ids never break the alignment).
pub fn id_width<'a>(ids: impl IntoIterator<Item = &'a str>) -> usize {
    ids.into_iter().map(str::len).max().unwrap_or(4).max(6)
}

/// One line as a case finishes.
pub fn progress(out: &mut impl Write, r: &CaseResult, width: usize) {
    let extra: Vec<&str> = [r.note.as_deref(), r.finding.as_deref(), r.why.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let _ = writeln!(
        out,
        "{:<5} {:<width$} {:>4} {:<44} {:>6}ms{}",
        r.outcome.label(),
        r.id,
        r.status,
        r.rule.as_deref().unwrap_or("-"),
        r.millis,
        if extra.is_empty() {
            String::new()
        } else {
            format!("  ({})", extra.join("; "))
        }
    );
}

/// The checks, one line each.
pub fn checks(out: &mut impl Write, checks: &[CheckResult]) {
    if checks.is_empty() {
        return;
    }
    let w = id_width(checks.iter().map(|c| c.id));
    let mut group = "";
    for c in checks {
        if c.group() != group {
            group = c.group();
            let n = checks.iter().filter(|x| x.group() == group).count();
            let _ = writeln!(out, "\n{group} checks ({n}):");
        }
        let _ = writeln!(
            out,
            "  {:<5} {:<w$} {}{}",
            c.outcome.label(),
            c.id,
            c.detail,
            c.why
                .as_deref()
                .map(|r| format!("  ({r})"))
                .unwrap_or_default()
        );
    }
}

/// The closing summary: what did not pass (the progress lines already listed every case),
/// counts by family and by outcome.
pub fn summary(out: &mut impl Write, results: &[CaseResult]) {
    let w = id_width(results.iter().map(|r| r.id.as_str()));
    let notable: Vec<&CaseResult> = results
        .iter()
        .filter(|r| r.outcome != Outcome::Pass)
        .collect();
    if !notable.is_empty() {
        let _ = writeln!(out, "\nnot passed:");
        for r in notable {
            let got = format!("{} {}", r.verdict, r.status);
            let _ = writeln!(
                out,
                "  {:<5} {:<w$}  expected {:<40}  got {:<10} {}",
                r.outcome.label(),
                r.id,
                expected_text(&r.expected),
                got,
                r.rule.as_deref().unwrap_or("-"),
            );
        }
    }
    let mut fam: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in results {
        let e = fam.entry(r.family.as_str()).or_default();
        e.0 += 1;
        if r.passed() {
            e.1 += 1;
        }
    }
    let _ = writeln!(out, "\nby family:");
    for (f, (n, p)) in &fam {
        let _ = writeln!(out, "  {f:<24} {p}/{n} pass");
    }
    let passed = results.iter().filter(|r| r.passed()).count();
    let _ = writeln!(
        out,
        "\n{passed}/{} cases meet their expectation{}",
        results.len(),
        outcome_counts(results.iter().map(|r| r.outcome))
    );
}

/// `  (3 xfail, 1 warn)`-style counts of the outcomes other than pass.
pub fn outcome_counts(outcomes: impl IntoIterator<Item = Outcome>) -> String {
    let mut n: BTreeMap<&str, usize> = BTreeMap::new();
    for o in outcomes {
        if o != Outcome::Pass {
            *n.entry(o.label()).or_default() += 1;
        }
    }
    if n.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = n
        .iter()
        .map(|(k, v)| format!("{v} {}", k.to_lowercase()))
        .collect();
    format!("  ({})", parts.join(", "))
}

/// Writes `results.json` into `dir`.
pub fn write_json(dir: &std::path::Path, r: &Report<'_>) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let p = dir.join("results.json");
    // Through a buffer: serde_json writes a token at a time (unbuffered, a system call each),
    // and the whole document in memory (megabytes) costs fresh zeroed pages as it grows.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(&p)?);
    serde_json::to_writer_pretty(&mut out, r)?;
    std::io::Write::flush(&mut out)?;
    Ok(p)
}

/// One JUnit testcase.
struct JCase<'a> {
    class: &'a str,
    name: &'a str,
    secs: f64,
    failure: Option<String>,
    skipped: Option<String>,
    out: Option<String>,
}

fn junit_case(r: &CaseResult) -> JCase<'_> {
    let msg = || {
        let mut m = format!(
            "expected {}, got {} {} {}",
            expected_text(&r.expected),
            r.verdict,
            r.status,
            r.rule.as_deref().unwrap_or("-"),
        );
        for x in [r.note.as_deref(), r.finding.as_deref(), r.why.as_deref()]
            .into_iter()
            .flatten()
        {
            m.push_str("; ");
            m.push_str(x);
        }
        m
    };
    let (failure, out) = match r.outcome {
        o if o.fails_run() => (Some(format!("{}: {}", o.label(), msg())), None),
        Outcome::Xfail | Outcome::Warn => (None, Some(format!("{}: {}", r.outcome.label(), msg()))),
        _ => (None, r.finding.clone()),
    };
    JCase {
        class: &r.family,
        name: &r.id,
        secs: r.millis as f64 / 1000.0,
        failure,
        skipped: None,
        out,
    }
}

fn junit_check(c: &CheckResult) -> JCase<'_> {
    let msg = || {
        let mut m = c.detail.clone();
        if !c.reference.is_empty() {
            m.push_str(&format!(" [{}]", c.reference));
        }
        if let Some(w) = &c.why {
            m.push_str(&format!("; {w}"));
        }
        m
    };
    JCase {
        class: c.group(),
        name: c.id,
        secs: 0.0,
        failure: c
            .outcome
            .fails_run()
            .then(|| format!("{}: {}", c.outcome.label(), msg())),
        skipped: None,
        out: (!c.outcome.fails_run()).then(|| format!("{}: {}", c.outcome.label(), msg())),
    }
}

/// Writes `junit.xml` into `dir` (quick-junit): a testsuite per check group (`metadata`,
/// `authn-request`), one per case family, `skipped` and, after a setup error, `setup`.
pub fn write_junit(dir: &std::path::Path, r: &Report<'_>) -> std::io::Result<std::path::PathBuf> {
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
    std::fs::create_dir_all(dir)?;
    let mut suites: BTreeMap<(u8, String), Vec<JCase<'_>>> = BTreeMap::new();
    for c in r.checks {
        suites
            .entry((0, c.group().to_string()))
            .or_default()
            .push(junit_check(c));
    }
    for c in r.cases {
        suites
            .entry((1, c.family.clone()))
            .or_default()
            .push(junit_case(c));
    }
    for s in r.skipped {
        suites
            .entry((2, "skipped".into()))
            .or_default()
            .push(JCase {
                class: "skipped",
                name: &s.id,
                secs: 0.0,
                failure: None,
                skipped: Some(s.reason.clone()),
                out: None,
            });
    }
    if let Some(e) = r.setup_error {
        suites.entry((3, "setup".into())).or_default().push(JCase {
            class: "setup",
            name: "sanity",
            secs: 0.0,
            failure: Some(format!("setup error: {e}")),
            skipped: None,
            out: None,
        });
    }
    let mut report = quick_junit::Report::new("spid-harness");
    for ((_, name), cases) in suites {
        let mut suite = TestSuite::new(name);
        for c in cases {
            let status = match (&c.failure, &c.skipped) {
                (Some(f), _) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(f.as_str());
                    s
                }
                (None, Some(k)) => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(k.as_str());
                    s
                }
                (None, None) => TestCaseStatus::success(),
            };
            let mut t = TestCase::new(c.name, status);
            t.set_classname(c.class)
                .set_time(std::time::Duration::from_secs_f64(c.secs));
            if let Some(o) = &c.out {
                t.set_system_out(o.as_str());
            }
            suite.add_test_case(t);
        }
        report.add_test_suite(suite);
    }
    let xml = report
        .to_string()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let p = dir.join("junit.xml");
    std::fs::write(&p, xml)?;
    Ok(p)
}

/// `xml` indented two spaces a level (quick-xml), or as it is when it does not parse.
pub fn pretty_xml(xml: &str) -> String {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut writer = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(e) => {
                if writer.write_event(e).is_err() {
                    return xml.to_string();
                }
            }
            Err(_) => return xml.to_string(),
        }
    }
    String::from_utf8(writer.into_inner()).unwrap_or_else(|_| xml.to_string())
}

/// The unified diff from the honest message to the one sent, both pretty-printed; None when
/// the case sent no edited message.
pub fn honest_diff(c: &CaseResult) -> Option<String> {
    let honest = c.honest.as_deref()?;
    let sent = c
        .trace
        .iter()
        .rev()
        .flat_map(|x| x.saml.iter())
        .find(|m| m.param == "SAMLResponse")
        .map(|m| m.xml.clone().unwrap_or_else(|| m.raw.clone()))?;
    let (h, s) = (pretty_xml(honest), pretty_xml(&sent));
    // Lines split by `str::lines` (memchr) rather than similar's own tokenizer, a char at a
    // time and most of the diff's cost; each line is written with its newline.
    let (h, s): (Vec<&str>, Vec<&str>) = (h.lines().collect(), s.lines().collect());
    Some(
        similar::TextDiff::configure()
            .diff_slices(&h, &s)
            .unified_diff()
            .context_radius(2)
            .header("honest", "sent")
            .to_string(),
    )
}

/// Writes `report.html` into `dir`: a summary by side, a filter box, the setup error, the
/// checks, every case grouped by side with failures first, and for each case its decoded
/// trace (messages pretty-printed) and the diff of the message sent against the honest one.
pub fn write_html(dir: &std::path::Path, r: &Report<'_>) -> std::io::Result<std::path::PathBuf> {
    use maud::{html, PreEscaped};
    use spid_core::html::Escaped;
    std::fs::create_dir_all(dir)?;
    let results = r.cases;
    let passed = results.iter().filter(|c| c.passed()).count();
    let class = |o: Outcome| {
        if o.fails_run() {
            "fail"
        } else if o == Outcome::Pass {
            "pass"
        } else {
            "note"
        }
    };
    let rank = |o: Outcome| {
        if o.fails_run() {
            0
        } else if o == Outcome::Pass {
            2
        } else {
            1
        }
    };
    let mut sides: Vec<&str> = Vec::new();
    for c in results {
        if !sides.contains(&c.side.as_str()) {
            sides.push(&c.side);
        }
    }
    let by_side = |side: &str| {
        let mut v: Vec<&CaseResult> = results.iter().filter(|c| c.side == side).collect();
        v.sort_by_key(|c| rank(c.outcome));
        v
    };
    let side_name = |s: &str| {
        if s.is_empty() {
            "cases".to_string()
        } else {
            s.to_string()
        }
    };
    let traced: Vec<&CaseResult> = r.sanity.iter().chain(results.iter()).collect();
    let script = "document.getElementById('filter').addEventListener('input',function(e){var q=e.target.value.toLowerCase();document.querySelectorAll('[data-filter]').forEach(function(el){el.style.display=el.getAttribute('data-filter').indexOf(q)<0?'none':'';});});";
    // Written a section at a time through a buffer: the page is megabytes, and one String
    // that size costs its growth in fresh zeroed pages.
    let p = dir.join("report.html");
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(&p)?);
    // maud writes balanced elements: the open `<html>` and `<body>` are written by hand.
    out.write_all(b"<!DOCTYPE html><html lang=\"en\">")?;
    let head = html! {
        head {
            meta charset="utf-8";
            title { "spid-harness report" }
            style { "body{font-family:sans-serif;margin:1.5rem}table{border-collapse:collapse;margin-bottom:1rem}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;vertical-align:top}.fail{background:#fdd}.pass{background:#efe}.note{background:#ffd}pre{white-space:pre-wrap;max-width:100rem;font-size:.8rem;background:#f7f7f7;padding:.4rem}.setup{background:#fdd;padding:.5rem;border:1px solid #c00}#filter{font-size:1rem;padding:.3rem;width:30rem;margin-bottom:1rem}.add{color:#060}.del{color:#a00}" }
        }
    };
    out.write_all(head.into_string().as_bytes())?;
    out.write_all(b"<body>")?;
    let summary = html! {
                h1 { "spid-harness: " (passed) "/" (results.len()) " cases meet their expectation" }
                @if let Some(t) = r.target {
                    p { "SP metadata " code { (t.metadata) } ", login URL " code { (t.login_url) } ", our IdP " code { (t.idp) }
                        @if let Some(p) = &t.peer { ", peer " (p) } }
                }
                @if let Some(e) = r.setup_error {
                    p class="setup" { strong { "Setup error: " } (e) }
                }
                table {
                    tr { th { "side" } th { "cases" } th { "meet their expectation" } th { "other outcomes" } }
                    @for side in &sides {
                        @let cs = by_side(side);
                        tr { td { (side_name(side)) } td { (cs.len()) } td { (cs.iter().filter(|c| c.passed()).count()) }
                             td { (outcome_counts(cs.iter().map(|c| c.outcome)).trim().trim_start_matches('(').trim_end_matches(')')) } }
                    }
                }
                input id="filter" type="search" placeholder="filter: id, family, rule, outcome…";
                @if let Some(e) = r.setup_error { p class="setup" { "Setup error: " (e) } }
                @if !r.checks.is_empty() {
                    h2 { "Checks (" (r.checks.len()) ")" }
                    table {
                        tr { th { "group" } th { "check" } th { "result" } th { "seen" } th { "reference" } }
                        @for c in r.checks {
                            tr class=(class(c.outcome)) data-filter=(format!("{} {} {}", c.id, c.outcome.label(), c.detail).to_lowercase()) {
                                td { (c.group()) } td { code { (c.id) } } td { (c.outcome.label()) }
                                td { (c.detail) @if let Some(w) = &c.why { " — " (w) } } td { (c.reference) }
                            }
                        }
                    }
                }
                @for side in &sides {
                    h2 { (side_name(side)) }
                    table {
                        tr { th { "case" } th { "family" } th { "expected" } th { "status" } th { "rule" } th { "result" } }
                        @for c in by_side(side) {
                            tr class=(class(c.outcome)) data-filter=(format!("{} {} {} {}", c.id, c.family, c.rule.as_deref().unwrap_or(""), c.outcome.label()).to_lowercase()) {
                                td { a href={ "#" (c.id) } { (c.id) } } td { (c.family) } td { (expected_text(&c.expected)) }
                                td { (c.status) } td { code { (c.rule.as_deref().unwrap_or("-")) } }
                                td { (c.outcome.label())
                                    @for n in [c.note.as_deref(), c.finding.as_deref(), c.why.as_deref()].into_iter().flatten() { " — " (n) } }
                            }
                        }
                    }
                }
                @if !r.skipped.is_empty() {
                    h2 { "Skipped (" (r.skipped.len()) ")" }
                    ul { @for s in r.skipped { li data-filter=(s.id.to_lowercase()) { code { (s.id) } ": " (s.reason) } } }
                }
    };
    out.write_all(summary.into_string().as_bytes())?;
    for c in &traced {
        let section = html! {
                    section id=(c.id) data-filter=(format!("{} {} {} {}", c.id, c.family, c.rule.as_deref().unwrap_or(""), c.outcome.label()).to_lowercase()) {
                        h2 { (c.id) ": " (c.title) }
                        p { "Expected " (expected_text(&c.expected)) "; got HTTP " (c.status) " " code { (c.rule.as_deref().unwrap_or("-")) } " — " (c.outcome.label()) }
                        @if let Some(d) = honest_diff(c) {
                            details open { summary { "The message sent, against the honest one" }
                                pre { @for line in d.lines() {
                                    @if line.starts_with('+') && !line.starts_with("+++") { span class="add" { (Escaped(line)) } "\n" }
                                    @else if line.starts_with('-') && !line.starts_with("---") { span class="del" { (Escaped(line)) } "\n" }
                                    @else { (Escaped(line)) "\n" }
                                } } }
                        }
                        ol {
                            @for x in &c.trace {
                                li {
                                    code { (x.method) " " (Escaped(&x.url)) } " → " (x.status)
                                    @if let Some(l) = &x.location { " → " code { (Escaped(l)) } }
                                    @if let Some(rule) = &x.spid_rule { " [" code { (rule) } "]" }
                                    @if let Some(t) = &x.tls { " " span class="tls" { (crate::cns::handshake_text(t)) } }
                                    @for m in &x.saml {
                                        details { summary { (m.param) } pre { (Escaped(&m.xml.as_deref().map(pretty_xml).unwrap_or_else(|| m.raw.clone()))) } }
                                    }
                                }
                            }
                        }
                    }
        };
        out.write_all(section.into_string().as_bytes())?;
    }
    let tail = html! { script { (PreEscaped(script)) } };
    out.write_all(tail.into_string().as_bytes())?;
    out.write_all(b"</body></html>")?;
    out.flush()?;
    Ok(p)
}

/// Writes the JSON, JUnit and HTML reports; returns their paths.
pub fn write_all(
    dir: &std::path::Path,
    r: &Report<'_>,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    // The three files at once: writing them is the tail of every run (megabytes of JSON and
    // HTML), and the run has nothing else to do meanwhile.
    std::thread::scope(|s| {
        let json = s.spawn(|| write_json(dir, r));
        let html = s.spawn(|| write_html(dir, r));
        let junit = write_junit(dir, r);
        let joined = |h: std::thread::ScopedJoinHandle<'_, std::io::Result<std::path::PathBuf>>| {
            h.join()
                .unwrap_or_else(|_| Err(std::io::Error::other("writing a report panicked")))
        };
        let (json, html) = (joined(json), joined(html));
        Ok(vec![json?, junit?, html?])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::Verdict;

    fn case(id: &str, outcome: Outcome) -> CaseResult {
        CaseResult {
            id: id.into(),
            family: "f".into(),
            title: "t".into(),
            expected: Expect::Accept,
            verdict: Verdict::Reject,
            status: 500,
            rule: None,
            outcome,
            note: None,
            finding: Some("refused by crashing (HTTP 500)".into()),
            why: None,
            millis: 1,
            trace: Vec::new(),
            honest: None,
            side: String::new(),
        }
    }

    #[test]
    fn junit_failures_are_exactly_the_outcomes_that_fail_the_run() {
        let dir = std::env::temp_dir().join(format!("junit-{:032x}", rand::random::<u128>()));
        let cases = [
            case("a", Outcome::Pass),
            case("b", Outcome::Xfail),
            case("c", Outcome::Warn),
            case("d", Outcome::Xpass),
            case("e", Outcome::Fail),
        ];
        let r = Report {
            cases: &cases,
            setup_error: Some("it stopped"),
            ..Default::default()
        };
        let p = write_junit(&dir, &r).unwrap();
        let x = std::fs::read_to_string(p).unwrap();
        // d, e and the setup error.
        assert!(x.contains("tests=\"6\" failures=\"3\""), "{x}");
        assert!(x.contains("<failure"), "{x}");
        assert!(x.contains("name=\"setup\""));
        assert!(x.contains("refused by crashing (HTTP 500)"));
        assert!(r.failed());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_diff_shows_exactly_the_edit() {
        let honest = r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_1"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">idp</saml:Issuer></samlp:Response>"#;
        let sent = honest.replace(">idp<", ">evil<");
        let mut c = case("x", Outcome::Pass);
        c.honest = Some(honest.into());
        c.trace = vec![crate::agent::Exchange {
            method: "POST".into(),
            url: "http://sp/acs".into(),
            request_form: vec![],
            status: 403,
            location: None,
            spid_rule: None,
            content_type: None,
            body_excerpt: String::new(),
            saml: vec![crate::agent::SamlMessage {
                param: "SAMLResponse".into(),
                binding: crate::agent::Binding::Post,
                raw: String::new(),
                xml: Some(sent),
            }],
            tls: None,
        }];
        let d = honest_diff(&c).unwrap();
        let changed: Vec<&str> = d
            .lines()
            .filter(|l| {
                (l.starts_with('+') || l.starts_with('-'))
                    && !l.starts_with("+++")
                    && !l.starts_with("---")
            })
            .collect();
        assert_eq!(changed.len(), 2, "{d}");
        assert!(
            changed[0].contains(">idp<") && changed[1].contains(">evil<"),
            "{d}"
        );
        assert!(pretty_xml(honest).lines().count() >= 3);
    }

    #[test]
    fn progress_lines_align_long_ids() {
        let mut out = Vec::new();
        let w = id_width(["a-very-long-case-identifier-beyond-thirty-four", "x"]);
        progress(&mut out, &case("x", Outcome::Pass), w);
        progress(
            &mut out,
            &case(
                "a-very-long-case-identifier-beyond-thirty-four",
                Outcome::Fail,
            ),
            w,
        );
        let s = String::from_utf8(out).unwrap();
        let cols: Vec<usize> = s.lines().map(|l| l.find(" 500 ").unwrap()).collect();
        assert_eq!(cols[0], cols[1], "{s}");
    }
}
