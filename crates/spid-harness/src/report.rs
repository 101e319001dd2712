//! Reporters: a progress line per case, a closing table with counts by family, and JSON.

use crate::catalogue::Expect;
use crate::runner::CaseResult;
use std::collections::BTreeMap;
use std::io::Write;

/// Short text for an expectation.
pub fn expected_text(e: &Expect) -> String {
    match e {
        Expect::Accept => "accept".into(),
        Expect::Reject { rules } => format!("reject {}", rules.join("|")),
        Expect::Either { .. } => "either".into(),
        Expect::Level { level } => format!("level {level} vs request"),
    }
}

/// One line as a case finishes.
pub fn progress(out: &mut impl Write, r: &CaseResult) {
    let _ = writeln!(
        out,
        "{} {:<34} {:>4} {:<48} {}ms{}",
        if r.pass { "PASS" } else { "FAIL" },
        r.id,
        r.status,
        r.rule.as_deref().unwrap_or("-"),
        r.millis,
        r.note
            .as_deref()
            .map(|n| format!("  ({n})"))
            .unwrap_or_default()
    );
}

/// The closing table and counts.
pub fn summary(out: &mut impl Write, results: &[CaseResult]) {
    let w = results.iter().map(|r| r.id.len()).max().unwrap_or(4).max(4);
    let _ = writeln!(
        out,
        "\n{:<w$}  {:<58}  {:<8}  {:<48}  result",
        "case", "expected", "got", "rule"
    );
    let _ = writeln!(out, "{}", "-".repeat(w + 130));
    for r in results {
        let got = match r.verdict {
            crate::runner::Verdict::Accept => "accept",
            crate::runner::Verdict::Reject => "reject",
            crate::runner::Verdict::Error => "error",
        };
        let _ = writeln!(
            out,
            "{:<w$}  {:<58}  {:<8}  {:<48}  {}",
            r.id,
            expected_text(&r.expected),
            format!("{got} {}", r.status),
            r.rule.as_deref().unwrap_or("-"),
            if r.pass { "pass" } else { "FAIL" }
        );
    }
    let mut fam: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in results {
        let e = fam.entry(r.family.as_str()).or_default();
        e.0 += 1;
        if r.pass {
            e.1 += 1;
        }
    }
    let _ = writeln!(out, "\nby family:");
    for (f, (n, p)) in &fam {
        let _ = writeln!(out, "  {f:<24} {p}/{n} pass");
    }
    let passed = results.iter().filter(|r| r.pass).count();
    let _ = writeln!(
        out,
        "\n{passed}/{} cases meet their expectation",
        results.len()
    );
}

/// Writes `results.json` into `dir`.
pub fn write_json(
    dir: &std::path::Path,
    results: &[CaseResult],
) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let p = dir.join("results.json");
    let f = std::fs::File::create(&p)?;
    serde_json::to_writer_pretty(f, results)?;
    Ok(p)
}
