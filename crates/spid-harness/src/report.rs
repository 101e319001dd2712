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

/// Writes `junit.xml` into `dir` (one testcase per case, grouped by family).
pub fn write_junit(
    dir: &std::path::Path,
    results: &[CaseResult],
) -> std::io::Result<std::path::PathBuf> {
    use spid_core::saml::xml::escape_attr;
    std::fs::create_dir_all(dir)?;
    let mut fam: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
    for r in results {
        fam.entry(r.family.as_str()).or_default().push(r);
    }
    let failures = results.iter().filter(|r| !r.pass).count();
    let mut s = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"spid-harness\" tests=\"{}\" failures=\"{failures}\">\n", results.len());
    for (f, rs) in fam {
        let fails = rs.iter().filter(|r| !r.pass).count();
        s.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{fails}\">\n",
            escape_attr(f),
            rs.len()
        ));
        for r in rs {
            s.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
                escape_attr(&r.family),
                escape_attr(&r.id),
                r.millis as f64 / 1000.0
            ));
            if !r.pass {
                let msg = format!(
                    "expected {}, got {} {} ({})",
                    expected_text(&r.expected),
                    r.status,
                    r.rule.as_deref().unwrap_or("-"),
                    r.note.as_deref().unwrap_or("")
                );
                s.push_str(&format!("<failure message=\"{}\"/>", escape_attr(&msg)));
            }
            s.push_str("</testcase>\n");
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    let p = dir.join("junit.xml");
    std::fs::write(&p, s)?;
    Ok(p)
}

/// Writes `report.html` into `dir`: every case with its verdict, the deciding rule and the
/// decoded message trace.
pub fn write_html(
    dir: &std::path::Path,
    results: &[CaseResult],
) -> std::io::Result<std::path::PathBuf> {
    use maud::{html, DOCTYPE};
    std::fs::create_dir_all(dir)?;
    let passed = results.iter().filter(|r| r.pass).count();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "spid-harness report" }
                style { "body{font-family:sans-serif;margin:1.5rem}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;vertical-align:top}.fail{background:#fdd}.pass{background:#efe}pre{white-space:pre-wrap;max-width:100rem;font-size:.8rem;background:#f7f7f7;padding:.4rem}" }
            }
            body {
                h1 { "spid-harness: " (passed) "/" (results.len()) " cases meet their expectation" }
                table {
                    tr { th { "case" } th { "family" } th { "expected" } th { "status" } th { "rule" } th { "result" } }
                    @for r in results {
                        tr class=(if r.pass { "pass" } else { "fail" }) {
                            td { a href={ "#" (r.id) } { (r.id) } } td { (r.family) } td { (expected_text(&r.expected)) }
                            td { (r.status) } td { code { (r.rule.as_deref().unwrap_or("-")) } }
                            td { (if r.pass { "pass" } else { "FAIL" }) @if let Some(n) = &r.note { " — " (n) } }
                        }
                    }
                }
                @for r in results {
                    section id=(r.id) {
                        h2 { (r.id) ": " (r.title) }
                        p { "Expected " (expected_text(&r.expected)) "; got HTTP " (r.status) " " code { (r.rule.as_deref().unwrap_or("-")) } }
                        ol {
                            @for x in &r.trace {
                                li {
                                    code { (x.method) " " (x.url) } " → " (x.status)
                                    @if let Some(l) = &x.location { " → " code { (l) } }
                                    @if let Some(rule) = &x.spid_rule { " [" code { (rule) } "]" }
                                    @for m in &x.saml {
                                        details { summary { (m.param) } pre { (m.xml.as_deref().unwrap_or(&m.raw)) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let p = dir.join("report.html");
    std::fs::write(&p, page.into_string())?;
    Ok(p)
}

/// Writes the JSON, JUnit and HTML reports; returns their paths.
pub fn write_all(
    dir: &std::path::Path,
    results: &[CaseResult],
) -> std::io::Result<Vec<std::path::PathBuf>> {
    Ok(vec![
        write_json(dir, results)?,
        write_junit(dir, results)?,
        write_html(dir, results)?,
    ])
}
