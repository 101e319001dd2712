//! `compare-spid-sp-test`: one SP judged by two tools, side by side. Reads a `check-sp` run
//! (`results.json`) and a spid-sp-test run (`-rf json`) against the same SP, and prints:
//!
//! * each shared Response case — our `spt-NNN-*` cases are spid-sp-test's Response test `NNN`,
//!   `spt-xswN`/`spt-xslt` its `xswN`/`xslt` tests — with the SP's verdict as each tool saw it
//!   and each tool's judgement of that verdict;
//! * both tools' metadata and AuthnRequest check counts.
//!
//! The two tools disagree on a test when the SP answered them differently (accept/reject) or
//! when one judges the SP's answer a pass and the other a failure. A disagreement must be
//! explained in the peer file (`[[spid_sp_test]]`, by test number); an explanation where the
//! tools agree is stale. The comparison fails on an unexplained disagreement, a stale
//! explanation, or when our metadata or AuthnRequest check count is below spid-sp-test's
//! (counted as distinct checks: spid-sp-test repeats one check per element it applies to).

use crate::peers::PeerFile;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

/// Our `results.json`, as far as the comparison reads it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OurRun {
    /// Case results.
    #[serde(default)]
    pub cases: Vec<OurCase>,
    /// Metadata and AuthnRequest checks.
    #[serde(default)]
    pub checks: Vec<OurCheck>,
    /// Set when the run could not judge the SP.
    #[serde(default)]
    pub setup_error: Option<String>,
}

/// One case of our run.
#[derive(Debug, Clone, Deserialize)]
pub struct OurCase {
    /// Case id.
    pub id: String,
    /// `accept`, `reject` or `error`.
    pub verdict: String,
    /// The SP's final HTTP status.
    #[serde(default)]
    pub status: u16,
    /// `pass`, `fail`, `xfail`, `xpass`, `warn`, `skip`, `error`/`setup-error`.
    #[serde(default)]
    pub outcome: Option<String>,
    /// Older reports: whether the case met its expectation.
    #[serde(default)]
    pub pass: Option<bool>,
}

/// One metadata or AuthnRequest check of our run.
#[derive(Debug, Clone, Deserialize)]
pub struct OurCheck {
    /// Check code (`sp-metadata.*`, `sp-request.*`).
    pub id: String,
    /// `pass`, `fail`, `warn`, `xfail`, `xpass`.
    #[serde(default)]
    pub outcome: Option<String>,
    /// Older reports: whether it holds.
    #[serde(default)]
    pub pass: Option<bool>,
    /// A recommendation only.
    #[serde(default)]
    pub warning: bool,
}

impl OurCheck {
    /// Whether the SP fails this check (an expected failure still counts: it is the SP's).
    pub fn failed(&self) -> bool {
        match self.outcome.as_deref() {
            Some(o) => matches!(o, "fail" | "xfail"),
            None => self.pass == Some(false) && !self.warning,
        }
    }
}

impl OurRun {
    /// Reads `results.json`: the report object, or an older bare array of cases.
    pub fn load(path: &Path) -> anyhow::Result<OurRun> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parses `results.json` text.
    pub fn parse(text: &str) -> anyhow::Result<OurRun> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            Report(OurRun),
            Cases(Vec<OurCase>),
        }
        Ok(match serde_json::from_str(text)? {
            Shape::Report(r) => r,
            Shape::Cases(cases) => OurRun {
                cases,
                ..OurRun::default()
            },
        })
    }
}

/// What a tool concluded about the SP on one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// The SP did what the test expects.
    Pass,
    /// It did not.
    Fail,
    /// The tool reached no judgement (harness error, skipped).
    None,
}

impl Judgement {
    fn text(self) -> &'static str {
        match self {
            Judgement::Pass => "pass",
            Judgement::Fail => "FAIL",
            Judgement::None => "-",
        }
    }
}

impl OurCase {
    /// Our judgement of the SP on this case, peer expectations set aside: an expected failure
    /// (xfail) is still a failure of the SP, an xpass a pass.
    pub fn judgement(&self) -> Judgement {
        match self.outcome.as_deref() {
            Some("pass" | "xpass") => Judgement::Pass,
            Some("fail" | "xfail" | "warn") => Judgement::Fail,
            Some(_) => Judgement::None,
            None => match self.pass {
                Some(true) => Judgement::Pass,
                Some(false) if self.verdict != "error" => Judgement::Fail,
                _ => Judgement::None,
            },
        }
    }
}

/// One entry of spid-sp-test's JSON report.
#[derive(Debug, Clone, Deserialize)]
pub struct SptEntry {
    /// The test id (a string, a list of strings, or empty on some failures).
    #[serde(default)]
    pub test_id: serde_json::Value,
    /// What is checked (for Response tests: `Test [N] ...`).
    #[serde(default)]
    pub test: serde_json::Value,
    /// What was seen (for Response tests: `[http status_code: N]`).
    #[serde(default)]
    pub value: serde_json::Value,
    /// The checking method.
    #[serde(default)]
    pub method: Option<String>,
    /// `success`, `failure` or `warning`.
    #[serde(default)]
    pub result: String,
}

fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a.iter().map(text_of).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// spid-sp-test's report, flattened by category (`metadata_extra`, `authnrequest_extra`,
/// `response`, ...).
#[derive(Debug, Clone, Default)]
pub struct SptRun {
    /// Entries by category.
    pub categories: BTreeMap<String, Vec<SptEntry>>,
}

/// The SP's answer to one spid-sp-test Response test, as spid-sp-test saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SptResponse {
    /// The test key: `14`, `xsw1`, `xslt`.
    pub key: String,
    /// The SP's HTTP status (0 if the report does not say).
    pub status: u16,
    /// spid-sp-test's judgement.
    pub judgement: Judgement,
}

impl SptRun {
    /// Reads spid-sp-test's JSON report.
    pub fn load(path: &Path) -> anyhow::Result<SptRun> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parses the report: `{run: {target: {category: {class: [entry, ...]}}}}`.
    pub fn parse(text: &str) -> anyhow::Result<SptRun> {
        type Nested =
            BTreeMap<String, BTreeMap<String, BTreeMap<String, BTreeMap<String, Vec<SptEntry>>>>>;
        let nested: Nested = serde_json::from_str(text)?;
        let mut run = SptRun::default();
        for targets in nested.into_values() {
            for categories in targets.into_values() {
                for (category, classes) in categories {
                    let list = run.categories.entry(category).or_default();
                    for entries in classes.into_values() {
                        list.extend(entries);
                    }
                }
            }
        }
        if run.categories.is_empty() {
            anyhow::bail!("no checks in the report");
        }
        Ok(run)
    }

    fn entries<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a SptEntry> + 'a {
        self.categories
            .iter()
            .filter(move |(c, _)| c.starts_with(prefix))
            .flat_map(|(_, e)| e.iter())
    }

    /// Check counts for categories starting with `prefix`.
    pub fn counts(&self, prefix: &str) -> CheckCounts {
        let mut distinct = BTreeSet::new();
        let mut failed = BTreeSet::new();
        let mut entries = 0;
        for e in self.entries(prefix) {
            entries += 1;
            let key = (e.method.clone().unwrap_or_default(), text_of(&e.test));
            if e.result == "failure" {
                failed.insert(key.clone());
            }
            distinct.insert(key);
        }
        CheckCounts {
            distinct: distinct.len(),
            entries,
            failed: failed.len(),
        }
    }

    /// The Response tests, by key.
    pub fn responses(&self) -> BTreeMap<String, SptResponse> {
        let mut out = BTreeMap::new();
        for e in self.entries("response") {
            // Failed Response checks carry an empty test_id: the key is also in `Test [N]`.
            let mut key = text_of(&e.test_id);
            if key.is_empty() {
                let t = text_of(&e.test);
                if let Some(rest) = t.split_once("Test [").map(|(_, r)| r) {
                    key = rest.split(']').next().unwrap_or("").to_string();
                }
            }
            if key.is_empty() {
                continue;
            }
            let value = text_of(&e.value);
            let status = value
                .split_once("status_code:")
                .and_then(|(_, r)| r.trim().trim_end_matches(']').trim().parse().ok())
                .unwrap_or(0);
            let judgement = match e.result.as_str() {
                "success" => Judgement::Pass,
                "failure" => Judgement::Fail,
                _ => Judgement::None,
            };
            out.insert(
                key.clone(),
                SptResponse {
                    key,
                    status,
                    judgement,
                },
            );
        }
        out
    }
}

/// How many checks a tool made in one area.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckCounts {
    /// Distinct checks (what the comparison counts).
    pub distinct: usize,
    /// Entries in the report (spid-sp-test repeats a check per element).
    pub entries: usize,
    /// Distinct checks that failed.
    pub failed: usize,
}

/// The verdict contract both tools use: 200 accepted, 400/401/403/422/500 refused.
pub fn verdict_of_status(status: u16) -> &'static str {
    match status {
        200 => "accept",
        400 | 401 | 403 | 422 | 500 => "reject",
        _ => "error",
    }
}

/// spid-sp-test's Response test key for one of our case ids, if the case is one of its tests.
pub fn spt_key(case_id: &str) -> Option<String> {
    let rest = case_id.strip_prefix("spt-")?;
    let head = rest.split('-').next().unwrap_or("");
    if !head.is_empty() && head.bytes().all(|b| b.is_ascii_digit()) {
        return Some(head.trim_start_matches('0').to_string()).filter(|k| !k.is_empty());
    }
    if head == "xslt" || (head.starts_with("xsw") && head[3..].bytes().all(|b| b.is_ascii_digit()))
    {
        return Some(head.to_string());
    }
    None
}

/// One shared Response test.
#[derive(Debug, Clone)]
pub struct Row {
    /// spid-sp-test's key.
    pub key: String,
    /// Our case id.
    pub case: String,
    /// spid-sp-test: status, verdict, judgement.
    pub theirs: (u16, &'static str, Judgement),
    /// Ours: status, verdict, judgement, outcome.
    pub ours: (u16, String, Judgement, String),
    /// Whether the tools agree.
    pub agree: bool,
    /// The peer file's explanation, if any.
    pub explained: Option<String>,
}

/// The comparison.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The peer's name.
    pub peer: String,
    /// Shared Response tests, in spid-sp-test's numbering order.
    pub rows: Vec<Row>,
    /// spid-sp-test Response tests with no case of ours.
    pub only_theirs: Vec<String>,
    /// Our `spt-*` cases with no spid-sp-test result.
    pub only_ours: Vec<String>,
    /// Metadata checks: (spid-sp-test, ours).
    pub metadata: (CheckCounts, CheckCounts),
    /// AuthnRequest checks: (spid-sp-test, ours).
    pub request: (CheckCounts, CheckCounts),
    /// What fails the comparison.
    pub problems: Vec<String>,
    /// Our run's setup error, if any.
    pub setup_error: Option<String>,
}

fn our_counts(checks: &[OurCheck], prefixes: &[&str]) -> CheckCounts {
    let mut distinct = BTreeSet::new();
    let mut failed = BTreeSet::new();
    for c in checks
        .iter()
        .filter(|c| prefixes.iter().any(|p| c.id.starts_with(p)))
    {
        if c.failed() {
            failed.insert(c.id.as_str());
        }
        distinct.insert(c.id.as_str());
    }
    CheckCounts {
        distinct: distinct.len(),
        entries: checks
            .iter()
            .filter(|c| prefixes.iter().any(|p| c.id.starts_with(p)))
            .count(),
        failed: failed.len(),
    }
}

fn key_order(k: &str) -> (u8, u32, String) {
    match k.parse::<u32>() {
        Ok(n) => (0, n, String::new()),
        Err(_) => (1, 0, k.to_string()),
    }
}

/// Compares the two runs against one SP.
pub fn compare(ours: &OurRun, theirs: &SptRun, peer: Option<&PeerFile>) -> Comparison {
    let responses = theirs.responses();
    let mut rows = Vec::new();
    let mut only_ours = Vec::new();
    let mut seen = BTreeSet::new();
    for c in &ours.cases {
        let Some(key) = spt_key(&c.id) else { continue };
        let Some(t) = responses.get(&key) else {
            only_ours.push(c.id.clone());
            continue;
        };
        seen.insert(key.clone());
        let their_verdict = verdict_of_status(t.status);
        let our_j = c.judgement();
        let agree = if our_j == Judgement::None || t.judgement == Judgement::None {
            true // nothing to compare: the run that did not judge reports it on its own
        } else {
            our_j == t.judgement && c.verdict == their_verdict
        };
        let explained = match key.parse::<u32>() {
            Ok(n) => peer.and_then(|p| p.disagreement(n)).map(str::to_string),
            // `[[spid_sp_test]] test` takes numbers only: for xswN/xslt the case's own
            // `[[expect]]` reason (why this SP fails our variant) stands in.
            Err(_) => peer
                .and_then(|p| p.expected_failure(&c.id))
                .map(|r| format!("{r} (the case's [[expect]] reason)")),
        };
        rows.push(Row {
            key,
            case: c.id.clone(),
            theirs: (t.status, their_verdict, t.judgement),
            ours: (
                c.status,
                c.verdict.clone(),
                our_j,
                c.outcome.clone().unwrap_or_default(),
            ),
            agree,
            explained,
        });
    }
    rows.sort_by_key(|r| key_order(&r.key));
    let mut only_theirs: Vec<String> = responses
        .keys()
        .filter(|k| !seen.contains(*k))
        .cloned()
        .collect();
    only_theirs.sort_by_key(|k| key_order(k));

    let metadata = (
        theirs.counts("metadata"),
        our_counts(&ours.checks, &["sp-metadata.", "metadata."]),
    );
    let request = (
        theirs.counts("authnrequest"),
        our_counts(&ours.checks, &["sp-request.", "request."]),
    );

    let mut problems = Vec::new();
    for r in &rows {
        match (r.agree, &r.explained) {
            (false, None) => problems.push(format!(
                "test {} ({}): the tools disagree and the peer file does not say why",
                r.key, r.case
            )),
            (true, Some(_))
                if r.key.parse::<u32>().is_ok()
                    && r.ours.2 != Judgement::None
                    && r.theirs.2 != Judgement::None =>
            {
                problems.push(format!(
                    "test {} ({}): the peer file explains a disagreement, but the tools agree: stale entry",
                    r.key, r.case
                ))
            }
            _ => {}
        }
    }
    if let Some(p) = peer {
        let shared: BTreeSet<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        for d in &p.spid_sp_test {
            if !shared.contains(d.test.to_string().as_str()) {
                problems.push(format!(
                    "test {}: the peer file explains it, but it is not a Response test both tools ran",
                    d.test
                ));
            }
        }
    }
    for (area, (t, o)) in [("metadata", metadata), ("AuthnRequest", request)] {
        if o.distinct < t.distinct {
            problems.push(format!(
                "{area}: check-sp made {} checks, fewer than spid-sp-test's {}",
                o.distinct, t.distinct
            ));
        }
    }
    if rows.is_empty() {
        problems.push("no Response test is shared by the two runs".into());
    }
    Comparison {
        peer: peer.map(|p| p.peer.name.clone()).unwrap_or_default(),
        rows,
        only_theirs,
        only_ours,
        metadata,
        request,
        problems,
        setup_error: ours.setup_error.clone(),
    }
}

impl Comparison {
    /// Whether the comparison holds.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The side-by-side table, the counts and the problems.
    pub fn render(&self, out: &mut impl Write) -> std::io::Result<()> {
        let w = self
            .rows
            .iter()
            .map(|r| r.case.len())
            .max()
            .unwrap_or(4)
            .max(4);
        if !self.peer.is_empty() {
            writeln!(out, "SP: {}", self.peer)?;
        }
        if let Some(e) = &self.setup_error {
            writeln!(out, "check-sp setup error: {e}")?;
        }
        writeln!(
            out,
            "{:<5} {:<w$}  {:<22}  {:<28}  result",
            "test", "case", "spid-sp-test", "check-sp"
        )?;
        writeln!(out, "{}", "-".repeat(w + 75))?;
        for r in &self.rows {
            let theirs = format!("{} {} {}", r.theirs.1, r.theirs.0, r.theirs.2.text());
            let ours = format!(
                "{} {} {}{}",
                r.ours.1,
                r.ours.0,
                r.ours.2.text(),
                if r.ours.3.is_empty() || r.ours.3 == "pass" || r.ours.3 == "fail" {
                    String::new()
                } else {
                    format!(" ({})", r.ours.3)
                }
            );
            let result = match (r.agree, &r.explained) {
                (true, None) => "agree".to_string(),
                (true, Some(_)) => "agree (peer file says they disagree)".to_string(),
                (false, Some(why)) => format!("DISAGREE, explained: {why}"),
                (false, None) => "DISAGREE (unexplained)".to_string(),
            };
            writeln!(
                out,
                "{:<5} {:<w$}  {theirs:<22}  {ours:<28}  {result}",
                r.key, r.case
            )?;
        }
        let agree = self.rows.iter().filter(|r| r.agree).count();
        let explained = self
            .rows
            .iter()
            .filter(|r| !r.agree && r.explained.is_some())
            .count();
        let both_accept = self
            .rows
            .iter()
            .filter(|r| r.theirs.1 == "accept" && r.ours.1 == "accept")
            .count();
        let both_reject = self
            .rows
            .iter()
            .filter(|r| r.theirs.1 == "reject" && r.ours.1 == "reject")
            .count();
        writeln!(
            out,
            "\n{} shared Response tests: {agree} agree, {explained} disagree with a reason, {} disagree without one; the SP accepted {both_accept} and refused {both_reject} under both tools",
            self.rows.len(),
            self.rows.len() - agree - explained
        )?;
        let fails = |j: Judgement| self.rows.iter().filter(|r| r.theirs.2 == j).count();
        let our_fails = |j: Judgement| self.rows.iter().filter(|r| r.ours.2 == j).count();
        writeln!(
            out,
            "SP failed {} of them by spid-sp-test, {} by check-sp",
            fails(Judgement::Fail),
            our_fails(Judgement::Fail)
        )?;
        if !self.only_theirs.is_empty() {
            writeln!(
                out,
                "spid-sp-test Response tests with no check-sp case: {}",
                self.only_theirs.join(" ")
            )?;
        }
        if !self.only_ours.is_empty() {
            writeln!(
                out,
                "check-sp spt-* cases with no spid-sp-test result: {}",
                self.only_ours.join(" ")
            )?;
        }
        writeln!(
            out,
            "\nchecks                spid-sp-test                       check-sp"
        )?;
        for (area, (t, o)) in [("metadata", self.metadata), ("AuthnRequest", self.request)] {
            writeln!(
                out,
                "{area:<20}  {:>3} distinct ({:>3} entries), {:>2} failed   {:>3} distinct, {:>2} failed",
                t.distinct, t.entries, t.failed, o.distinct, o.failed
            )?;
        }
        if self.problems.is_empty() {
            writeln!(out, "\ncomparison OK")?;
        } else {
            writeln!(out, "\ncomparison FAILED:")?;
            for p in &self.problems {
                writeln!(out, "  {p}")?;
            }
        }
        Ok(())
    }
}

/// The `compare-spid-sp-test` command: exit 0 when the comparison holds, 1 otherwise.
pub fn run(
    results: &Path,
    spid_sp_test: &Path,
    peer: Option<&Path>,
) -> anyhow::Result<std::process::ExitCode> {
    let ours = OurRun::load(results)?;
    let theirs = SptRun::load(spid_sp_test)?;
    let peer = peer.map(PeerFile::load).transpose()?;
    let c = compare(&ours, &theirs, peer.as_ref());
    c.render(&mut std::io::stdout().lock())?;
    Ok(if c.ok() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// spid-sp-test's report with `responses` as (test, status, result) and `md`/`req` checks.
    fn spt(responses: &[(&str, u16, &str)], md: usize, req: usize) -> SptRun {
        let entry = |id: &str, test: String, value: String, result: &str| {
            serde_json::json!({"test_id": id, "test": test, "value": value, "references": [],
                "method": "M", "result": result})
        };
        let resp: Vec<_> = responses
            .iter()
            .map(|(n, s, r)| {
                // As spid-sp-test writes them: failures have an empty test_id.
                let id = if *r == "failure" { "" } else { n };
                entry(
                    id,
                    format!("Test [{n}] x"),
                    format!("[http status_code: {s}]"),
                    r,
                )
            })
            .collect();
        let mdv: Vec<_> = (0..md)
            .map(|i| entry("", format!("md {i}"), String::new(), "success"))
            // A repeated check counts once.
            .chain((md > 0).then(|| entry("", "md 0".into(), String::new(), "success")))
            .collect();
        let reqv: Vec<_> = (0..req)
            .map(|i| entry("", format!("rq {i}"), String::new(), "success"))
            .collect();
        let doc = serde_json::json!({"test": {"sp": {
            "metadata_extra": {"SpidSpMetadataCheckExtra": mdv},
            "authnrequest_extra": {"SpidSpAuthnReqCheckExtra": reqv},
            "response": {"SpidSpResponseCheck": resp},
        }}});
        SptRun::parse(&doc.to_string()).unwrap()
    }

    /// Our results.json with `cases` as (id, verdict, status, outcome) and n checks per area.
    fn ours(cases: &[(&str, &str, u16, &str)], md: usize, req: usize) -> OurRun {
        let cases: Vec<_> = cases
            .iter()
            .map(|(id, v, s, o)| {
                serde_json::json!({"id": id, "family": "response", "title": "t",
                    "expected": {"verdict": "reject"}, "verdict": v, "status": s, "rule": null,
                    "outcome": o, "note": null, "trace": [], "unknown_field": 1})
            })
            .collect();
        let checks: Vec<_> = (0..md)
            .map(|i| serde_json::json!({"id": format!("sp-metadata.c{i}"), "pass": true, "warning": false, "reference": "", "detail": ""}))
            .chain((0..req).map(|i| serde_json::json!({"id": format!("sp-request.c{i}"), "pass": i != 0, "detail": ""})))
            .collect();
        let doc = serde_json::json!({"cases": cases, "checks": checks, "setup_error": null});
        OurRun::parse(&doc.to_string()).unwrap()
    }

    fn peer(toml_text: &str) -> PeerFile {
        let p = std::env::temp_dir().join(format!(
            "compare-peer-{}-{:?}.toml",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&p, toml_text).unwrap();
        let f = PeerFile::load(&p).unwrap();
        let _ = std::fs::remove_file(&p);
        f
    }

    #[test]
    fn keys_of_our_case_ids() {
        assert_eq!(spt_key("spt-001-response-ok").as_deref(), Some("1"));
        assert_eq!(spt_key("spt-111-error-nr25").as_deref(), Some("111"));
        assert_eq!(spt_key("spt-xsw3").as_deref(), Some("xsw3"));
        assert_eq!(spt_key("spt-xslt").as_deref(), Some("xslt"));
        assert_eq!(spt_key("ssc-025-status-code-missing"), None);
        assert_eq!(spt_key("iso-014-not-before-past"), None);
        assert_eq!(spt_key("spt-xswz"), None);
    }

    #[test]
    fn agreement_is_ok() {
        let t = spt(
            &[
                ("1", 200, "success"),
                ("2", 403, "success"),
                ("14", 200, "failure"),
                ("6", 403, "success"),
            ],
            3,
            2,
        );
        let o = ours(
            &[
                ("spt-001-response-ok", "accept", 200, "pass"),
                ("spt-002-unsigned", "reject", 403, "pass"),
                // Expected at this peer: still a failure of the SP, as spid-sp-test says.
                (
                    "spt-014-response-issue-instant-before-request",
                    "accept",
                    200,
                    "xfail",
                ),
                ("login-l2", "accept", 200, "pass"),
            ],
            3,
            2,
        );
        let c = compare(&o, &t, None);
        assert!(c.ok(), "{:?}", c.problems);
        assert_eq!(c.rows.len(), 3);
        assert!(c.rows.iter().all(|r| r.agree));
        assert_eq!(c.rows[0].key, "1");
        assert_eq!(c.rows[2].key, "14");
        assert_eq!(c.only_theirs, vec!["6".to_string()]);
        // Repeated spid-sp-test checks count once.
        assert_eq!(
            c.metadata.0,
            CheckCounts {
                distinct: 3,
                entries: 4,
                failed: 0
            }
        );
        assert_eq!(c.request.1.failed, 1);
        let mut s = Vec::new();
        c.render(&mut s).unwrap();
        let s = String::from_utf8(s).unwrap();
        assert!(s.contains("3 shared Response tests: 3 agree"), "{s}");
        assert!(s.contains("comparison OK"), "{s}");
    }

    #[test]
    fn unexplained_disagreement_fails() {
        let t = spt(&[("14", 200, "failure"), ("2", 403, "success")], 1, 1);
        // check-sp judges the same acceptance a pass (a lenient expectation): a disagreement.
        let o = ours(
            &[
                (
                    "spt-014-response-issue-instant-before-request",
                    "accept",
                    200,
                    "pass",
                ),
                ("spt-002-unsigned", "reject", 403, "pass"),
            ],
            1,
            1,
        );
        let c = compare(&o, &t, None);
        assert!(!c.ok());
        assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
        assert!(c.problems[0].contains("test 14"), "{:?}", c.problems);
        // So is a different answer of the SP to the two tools.
        let o = ours(
            &[
                (
                    "spt-014-response-issue-instant-before-request",
                    "reject",
                    403,
                    "fail",
                ),
                ("spt-002-unsigned", "reject", 403, "pass"),
            ],
            1,
            1,
        );
        assert!(!compare(&o, &t, None).ok());
    }

    #[test]
    fn explained_disagreement_is_ok_and_stale_explanation_fails() {
        let t = spt(&[("14", 200, "failure"), ("2", 403, "success")], 1, 1);
        let o = ours(
            &[
                (
                    "spt-014-response-issue-instant-before-request",
                    "accept",
                    200,
                    "pass",
                ),
                ("spt-002-unsigned", "reject", 403, "pass"),
            ],
            1,
            1,
        );
        let p =
            peer("[peer]\nname = \"x\"\n[[spid_sp_test]]\ntest = 14\nreason = \"we allow it\"\n");
        let c = compare(&o, &t, Some(&p));
        assert!(c.ok(), "{:?}", c.problems);
        assert_eq!(c.rows[1].explained.as_deref(), Some("we allow it"));
        // Explaining test 2, where both agree, is stale.
        let p = peer("[peer]\nname = \"x\"\n[[spid_sp_test]]\ntest = 14\nreason = \"a\"\n[[spid_sp_test]]\ntest = 2\nreason = \"b\"\n");
        let c = compare(&o, &t, Some(&p));
        assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
        assert!(c.problems[0].contains("stale"));
        // So is explaining a test neither run has in common.
        let p = peer("[peer]\nname = \"x\"\n[[spid_sp_test]]\ntest = 14\nreason = \"a\"\n[[spid_sp_test]]\ntest = 99\nreason = \"b\"\n");
        assert!(!compare(&o, &t, Some(&p)).ok());
    }

    #[test]
    fn xsw_disagreement_is_explained_by_the_case_expectation() {
        let t = spt(&[("xsw6", 403, "success"), ("xsw1", 403, "success")], 0, 0);
        let o = ours(
            &[
                ("spt-xsw6", "accept", 200, "xfail"),
                ("spt-xsw1", "reject", 403, "pass"),
            ],
            0,
            0,
        );
        assert!(!compare(&o, &t, None).ok());
        let p = peer("[peer]\nname = \"x\"\n[[expect]]\nid = \"spt-xsw6\"\noutcome = \"fail\"\nreason = \"nested copy ignored\"\n");
        let c = compare(&o, &t, Some(&p));
        assert!(c.ok(), "{:?}", c.problems);
        assert!(c
            .rows
            .iter()
            .any(|r| r.key == "xsw6" && r.explained.is_some()));
    }

    #[test]
    fn fewer_checks_fail() {
        let t = spt(&[("2", 403, "success")], 5, 2);
        let o = ours(&[("spt-002-unsigned", "reject", 403, "pass")], 4, 3);
        let c = compare(&o, &t, None);
        assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
        assert!(c.problems[0]
            .starts_with("metadata: check-sp made 4 checks, fewer than spid-sp-test's 5"));
        let o = ours(&[("spt-002-unsigned", "reject", 403, "pass")], 5, 1);
        let c = compare(&o, &t, None);
        assert!(
            c.problems[0].starts_with("AuthnRequest:"),
            "{:?}",
            c.problems
        );
    }

    #[test]
    fn unjudged_cases_are_not_disagreements() {
        let t = spt(&[("2", 403, "success")], 0, 0);
        let o = ours(&[("spt-002-unsigned", "error", 0, "error")], 0, 0);
        let c = compare(&o, &t, None);
        assert!(c.ok(), "{:?}", c.problems);
    }

    #[test]
    fn older_results_json_is_a_bare_array() {
        let r = OurRun::parse(
            r#"[{"id": "spt-001-response-ok", "verdict": "accept", "status": 200, "pass": true}]"#,
        )
        .unwrap();
        assert_eq!(r.cases[0].judgement(), Judgement::Pass);
        assert!(r.checks.is_empty());
    }
}
