//! Isolation: every SAML case proves what it names.
//!
//! Each case of the SAML catalogue runs against our pair (and each case of the CIE catalogue
//! against our CIE pair); the Response our IdP sent for it,
//! exactly as sent, is then checked with an **independent verifier** — the `xmlsec1` command
//! line tool (Debian package `xmlsec1`, installed by `scripts/setup.sh`) with the IdP's
//! certificate `certs/idp.crt.pem`, KeyInfo ignored — against what the case declares intact
//! (`[intact]` in the case file, default "every signature valid"):
//!
//! - a case that keeps signatures intact has every signature verify, and at least one unless
//!   its plan signs nothing;
//! - a case whose signature fails must have opted out (`signatures = false`, with `why`), and
//!   an opt-out must be needed: some signature fails, or no verifier can parse the document;
//! - a foreign-key case without later edits has genuine signatures: they verify with
//!   `certs/foreign.crt.pem`;
//! - a case that names other algorithms in `plan.sign` (the SHA-1 cases) is signed with them
//!   (read back from the XML) and verifies.

use spid_harness::catalogue::{self, Case};
use spid_harness::runner::{self, Credentials, InternalPair};
use spid_idp::faults::{DigestMethod, SignatureMethod, SigningKey};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const XMLSEC1: &str = "xmlsec1";
const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Elements whose `ID` attribute a signature may reference (the SAML schema declares them as
/// xs:ID; xmlsec1 has no schema, so it is told).
const ID_ELEMENTS: [&str; 4] = [
    "urn:oasis:names:tc:SAML:2.0:protocol:Response",
    "urn:oasis:names:tc:SAML:2.0:protocol:LogoutResponse",
    "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
    "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor",
];

fn certs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../certs")
}

/// Fails (never skips) when the verifier is missing.
fn require_xmlsec1() -> String {
    match Command::new(XMLSEC1).arg("--version").output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => panic!(
            "`{XMLSEC1} --version` failed ({}): install the Debian package xmlsec1 \
             (scripts/setup.sh does)",
            o.status
        ),
        Err(e) => panic!(
            "`{XMLSEC1}` not found ({e}): install the Debian package xmlsec1 \
             (scripts/setup.sh does); this test never skips"
        ),
    }
}

/// Byte offsets of every `ds:Signature` start tag, in document order (the order of
/// `(//ds:Signature)[k]`).
fn signature_starts(xml: &str) -> Vec<usize> {
    xml.match_indices("<ds:Signature")
        .filter(|(i, m)| {
            matches!(
                xml.as_bytes().get(i + m.len()),
                Some(b' ' | b'>' | b'/' | b'\n' | b'\t' | b'\r')
            )
        })
        .map(|(i, _)| i)
        .collect()
}

/// The values of `attr` on every `<tag ` start tag.
fn attr_values<'a>(xml: &'a str, tag: &str, attr: &str) -> Vec<&'a str> {
    let open = format!("<{tag} ");
    let key = format!("{attr}=\"");
    xml.match_indices(&open)
        .filter_map(|(i, _)| {
            let rest = &xml[i..];
            let end = rest.find('>')?;
            let start = rest[..end].find(&key)? + key.len();
            let len = rest[start..end].find('"')?;
            Some(&rest[start..start + len])
        })
        .collect()
}

/// What the k-th signature (1-based) names, for messages.
fn reference_of(xml: &str, at: usize) -> String {
    attr_values(&xml[at..], "ds:Reference", "URI")
        .first()
        .map(|u| format!("Reference URI {u:?}"))
        .unwrap_or_else(|| "no Reference".into())
}

/// Runs xmlsec1 on the `k`-th signature (1-based, document order) of `file` with the
/// certificate `cert`; Err holds the verifier's last words.
fn xmlsec_verify(file: &Path, k: usize, cert: &Path) -> Result<(), String> {
    let mut cmd = Command::new(XMLSEC1);
    cmd.arg("--verify")
        // Keys only from the certificate given here: KeyInfo may name a key, never supply one.
        .args(["--enabled-key-data", "key-name"])
        .arg("--pubkey-cert-pem")
        .arg(cert)
        // Never fetch anything (XXE, XSLT, remote references).
        .args(["--enabled-reference-uris", "empty,same-doc"]);
    for e in ID_ELEMENTS {
        cmd.arg("--id-attr:ID").arg(e);
    }
    cmd.arg("--node-xpath").arg(format!(
        "(//*[local-name()='Signature' and namespace-uri()='{DS}'])[{k}]"
    ));
    cmd.arg(file);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {XMLSEC1}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(xmlsec_reason(&String::from_utf8_lossy(&out.stderr)))
}

/// The verdict (`FAIL`: a signature that does not verify; `ERROR`: a document or signature
/// xmlsec1 cannot process) and the first cause xmlsec1 reports.
fn xmlsec_reason(stderr: &str) -> String {
    let verdict = stderr
        .lines()
        .map(str::trim)
        .find(|l| *l == "FAIL" || *l == "ERROR")
        .unwrap_or("FAIL");
    let cause = stderr.lines().find(|l| l.starts_with("func=")).map(|l| {
        let obj = l
            .split(':')
            .find_map(|p| p.strip_prefix("obj="))
            .unwrap_or("?");
        let msg = l
            .split_once(":error=")
            .and_then(|(_, r)| r.split_once(':'))
            .map(|(_, m)| m)
            .unwrap_or(l);
        format!("{obj}: {msg}")
    });
    format!(
        "{verdict} ({})",
        cause.as_deref().unwrap_or("no reason given")
    )
}

struct Emitted {
    case: Case,
    xml: String,
    file: PathBuf,
    sigs: Vec<usize>,
}

/// One xmlsec1 run: document, signature number, certificate.
struct Job {
    doc: usize,
    k: usize,
    foreign: bool,
}

#[tokio::test]
async fn every_emitted_response_keeps_what_its_case_declares_intact() {
    let started = Instant::now();
    let version = require_xmlsec1();
    let dir = std::env::temp_dir().join(format!("spid-isolation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let idp_cert = certs().join("idp.crt.pem");
    let foreign_cert = certs().join("foreign.crt.pem");
    assert!(idp_cert.exists() && foreign_cert.exists(), "certs/ missing");

    // Emit every case's Response through the real flow, one case after another.
    let pair = InternalPair::start(Credentials::embedded().unwrap())
        .await
        .unwrap();
    let users = spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap();
    let cases = catalogue::embedded("saml").unwrap();
    let mut total = cases.len();
    let mut problems: Vec<String> = Vec::new();
    let mut emitted: Vec<Emitted> = Vec::new();
    let mut last = pair.idp.last_response().map(|r| r.xml);
    // The SAML cases at our SPID pair, then the CIE cases at our CIE pair (the same IdP key).
    let cie_pair = spid_harness::cie::start_pair(spid_core::cie::IdpProfile::Cie)
        .await
        .unwrap();
    let cie_users = spid_harness::cie::users().unwrap();
    let cie_cases: Vec<Case> = spid_harness::cie::embedded()
        .unwrap()
        .iter()
        .map(spid_harness::cie::to_saml)
        .collect();
    total += cie_cases.len();
    let runs = cases
        .into_iter()
        .map(|c| (c, &pair, &users))
        .chain(cie_cases.into_iter().map(|c| (c, &cie_pair, &cie_users)));
    for (case, pair, users) in runs {
        let r = runner::run_case(pair, &case, users).await;
        let sent = pair.idp.last_response().map(|r| r.xml);
        match sent {
            Some(xml) if Some(&xml) != last.as_ref() => {
                last = Some(xml.clone());
                let file = dir.join(format!("{}.xml", case.id));
                std::fs::write(&file, &xml).unwrap();
                let sigs = signature_starts(&xml);
                emitted.push(Emitted {
                    case,
                    xml,
                    file,
                    sigs,
                });
            }
            _ => problems.push(format!(
                "{}: the IdP sent no new Response for this case (the flow ended with status {} \
                 rule {:?}: {:?})",
                case.id, r.status, r.rule, r.note
            )),
        }
    }
    drop(pair);
    drop(cie_pair);
    let emitting = started.elapsed();

    // Verify every signature of every Response, in parallel processes.
    let mut jobs = Vec::new();
    for (d, e) in emitted.iter().enumerate() {
        let foreign = e.case.plan.sign.key == SigningKey::Foreign
            && e.case.plan.post_sign.is_empty()
            && e.case.plan.raw.is_empty();
        for k in 1..=e.sigs.len() {
            jobs.push(Job {
                doc: d,
                k,
                foreign: false,
            });
            if foreign {
                jobs.push(Job {
                    doc: d,
                    k,
                    foreign: true,
                });
            }
        }
    }
    let verify_started = Instant::now();
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        * 2;
    let mut results: Vec<Option<Result<(), String>>> = (0..jobs.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(j) = jobs.get(i) else { break };
                        let cert = if j.foreign { &foreign_cert } else { &idp_cert };
                        done.push((i, xmlsec_verify(&emitted[j.doc].file, j.k, cert)));
                    }
                    done
                })
            })
            .collect();
        for h in handles {
            for (i, r) in h.join().unwrap() {
                results[i] = Some(r);
            }
        }
    });
    let verifying = verify_started.elapsed();

    // Judge each case against its declaration.
    let mut opted_out = 0;
    let mut algorithm_cases = Vec::new();
    for (d, e) in emitted.iter().enumerate() {
        let id = &e.case.id;
        let mine = |foreign: bool| {
            jobs.iter()
                .zip(&results)
                .filter(move |(j, _)| j.doc == d && j.foreign == foreign)
                .map(|(j, r)| (j.k, r.as_ref().expect("every job ran")))
        };
        let failed: Vec<String> = mine(false)
            .filter_map(|(k, r)| {
                r.as_ref().err().map(|why| {
                    format!(
                        "signature {k} of {} ({}) fails {XMLSEC1} with certs/idp.crt.pem: {why}",
                        e.sigs.len(),
                        reference_of(&e.xml, e.sigs[k - 1])
                    )
                })
            })
            .collect();
        let intact = &e.case.intact;
        if intact.signatures {
            for f in &failed {
                problems.push(format!(
                    "{id}: declares signatures intact, but {f} (fix the plan, e.g. move the \
                     edit to pre_sign, or opt out with [intact] signatures = false and why)"
                ));
            }
            if e.sigs.is_empty() && !e.case.plan.sign.unsigned() {
                problems.push(format!(
                    "{id}: declares signatures intact and its plan signs, but the Response \
                     carries no signature"
                ));
            }
        } else {
            opted_out += 1;
            if e.sigs.is_empty() {
                problems.push(format!(
                    "{id}: opts out of intact signatures ({:?}) but the Response carries none",
                    intact.why
                ));
            } else if failed.is_empty() {
                problems.push(format!(
                    "{id}: opts out of intact signatures ({:?}) but all {} verify: drop the \
                     opt-out",
                    intact.why,
                    e.sigs.len()
                ));
            }
        }
        for (k, r) in mine(true) {
            if let Err(why) = r {
                problems.push(format!(
                    "{id}: signed with the foreign key and not edited afterwards, yet signature \
                     {k} does not verify with certs/foreign.crt.pem either: {why}"
                ));
            }
        }
        let sign = &e.case.plan.sign;
        if sign.signature_method != SignatureMethod::default()
            || sign.digest_method != DigestMethod::default()
        {
            algorithm_cases.push(id.clone());
            let want_sm = sign.signature_method.uri();
            let want_dm = sign.digest_method.uri();
            let sms = attr_values(&e.xml, "ds:SignatureMethod", "Algorithm");
            let dms = attr_values(&e.xml, "ds:DigestMethod", "Algorithm");
            if sms.len() != e.sigs.len() || sms.iter().any(|a| *a != want_sm) {
                problems.push(format!(
                    "{id}: plan.sign asks SignatureMethod {want_sm}, the Response has {sms:?}"
                ));
            }
            if dms.len() != e.sigs.len() || dms.iter().any(|a| *a != want_dm) {
                problems.push(format!(
                    "{id}: plan.sign asks DigestMethod {want_dm}, the Response has {dms:?}"
                ));
            }
            if e.sigs.is_empty() || !failed.is_empty() || !intact.signatures {
                problems.push(format!(
                    "{id}: signed with {want_sm} / {want_dm}, so its signatures must be there \
                     and verify ({} signatures, {} failing)",
                    e.sigs.len(),
                    failed.len()
                ));
            }
        }
    }
    // The SHA-1 cases are genuinely SHA-1 signed (checked above); make sure they were seen.
    for (id, sm, dm) in [
        (
            "signature-digest-sha1",
            SignatureMethod::RsaSha256,
            DigestMethod::Sha1,
        ),
        (
            "signature-method-sha1",
            SignatureMethod::RsaSha1,
            DigestMethod::Sha256,
        ),
    ] {
        match emitted.iter().find(|e| e.case.id == id) {
            None => problems.push(format!("{id}: missing from the catalogue or sent nothing")),
            Some(e) => {
                if e.case.plan.sign.signature_method != sm || e.case.plan.sign.digest_method != dm {
                    problems.push(format!(
                        "{id}: must sign with {} / {} (plan.sign), not edit algorithms after \
                         signing",
                        sm.uri(),
                        dm.uri()
                    ));
                }
                if !algorithm_cases.contains(&e.case.id) {
                    problems.push(format!("{id}: its algorithms were not checked"));
                }
            }
        }
    }
    let signatures: usize = emitted.iter().map(|e| e.sigs.len()).sum();
    eprintln!(
        "isolation ({version}): {total} cases, {} Responses, {signatures} signatures, {} \
         xmlsec1 runs on {workers} workers; {opted_out} cases opt out of intact signatures; \
         emitting {emitting:.2?}, verifying {verifying:.2?}, total {:.2?}",
        emitted.len(),
        jobs.len(),
        started.elapsed()
    );
    if problems.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(
        problems.is_empty(),
        "{} isolation problem(s) (Responses kept in {}):\n{}",
        problems.len(),
        dir.display(),
        problems.join("\n")
    );
}
