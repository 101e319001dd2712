//! Expected deviations of an external peer (`fixtures/peers/<peer>.toml`): the cases and
//! checks it is known to fail, the cases not run against it, and where it and spid-sp-test
//! are known to disagree — each with its reason. An expected failure that no longer fails is
//! reported (xpass) and fails the run, so the files stay true.

use serde::Deserialize;
use std::path::Path;

/// A peer's expectation file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerFile {
    /// Who the peer is.
    #[serde(default)]
    pub peer: PeerInfo,
    /// Expected failures and skips.
    #[serde(default)]
    pub expect: Vec<Expectation>,
    /// Explained disagreements with spid-sp-test on its Response tests.
    #[serde(default)]
    pub spid_sp_test: Vec<Disagreement>,
    /// The file it was read from (for messages).
    #[serde(skip)]
    pub path: String,
}

/// Who the peer is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerInfo {
    /// Name, version and binding, as the reports print it.
    pub name: String,
}

/// What is expected of one case or check at this peer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// A case id, or a check code (`sp-metadata.*`, `sp-request.*`).
    pub id: String,
    /// What happens there.
    pub outcome: Expected,
    /// Why (one line, verified against the peer's code or docs).
    pub reason: String,
}

/// The expected outcome of a listed case or check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expected {
    /// It fails at this peer (xfail); passing is an xpass.
    Fail,
    /// Not run against this peer.
    Skip,
}

/// An explained disagreement with spid-sp-test.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disagreement {
    /// spid-sp-test's Response test number.
    pub test: u32,
    /// Why the two tools judge this SP differently.
    pub reason: String,
}

/// A peer file that cannot be used; the message names the file and the entry.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PeerFileError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl PeerFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<PeerFile, PeerFileError> {
        let err = |message: String| PeerFileError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let mut f: PeerFile = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        f.path = path.display().to_string();
        let mut seen = std::collections::HashSet::new();
        for e in &f.expect {
            if !seen.insert(e.id.as_str()) {
                return Err(err(format!("`{}` is listed twice", e.id)));
            }
            if e.reason.trim().is_empty() {
                return Err(err(format!("`{}` has no reason", e.id)));
            }
        }
        Ok(f)
    }

    /// Checks that every listed id names something that exists (`known` says whether an id
    /// is a case or a check code), so a renamed case cannot leave a stale entry behind.
    pub fn check_ids(&self, known: impl Fn(&str) -> bool) -> Result<(), PeerFileError> {
        match self.expect.iter().find(|e| !known(&e.id)) {
            None => Ok(()),
            Some(e) => Err(PeerFileError {
                path: self.path.clone(),
                message: format!("`{}` is neither a case id nor a check code", e.id),
            }),
        }
    }

    /// The entry for `id`, if listed.
    pub fn get(&self, id: &str) -> Option<&Expectation> {
        self.expect.iter().find(|e| e.id == id)
    }

    /// The reason `id` is skipped at this peer, if it is.
    pub fn skip(&self, id: &str) -> Option<&str> {
        self.get(id)
            .filter(|e| e.outcome == Expected::Skip)
            .map(|e| e.reason.as_str())
    }

    /// The reason `id` is expected to fail at this peer, if it is.
    pub fn expected_failure(&self, id: &str) -> Option<&str> {
        self.get(id)
            .filter(|e| e.outcome == Expected::Fail)
            .map(|e| e.reason.as_str())
    }

    /// The explanation of a disagreement with spid-sp-test's Response test `n`, if any.
    pub fn disagreement(&self, n: u32) -> Option<&str> {
        self.spid_sp_test
            .iter()
            .find(|d| d.test == n)
            .map(|d| d.reason.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of its own under the temp dir, removed on drop.
    struct Temp(std::path::PathBuf);

    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn write(text: &str) -> (Temp, std::path::PathBuf) {
        let p = std::env::temp_dir().join(format!("peer-{:032x}.toml", rand::random::<u128>()));
        std::fs::write(&p, text).unwrap();
        (Temp(p.clone()), p)
    }

    #[test]
    fn reads_expectations_and_disagreements() {
        let (_d, p) = write(
            r#"
[peer]
name = "x 1.0"
[[expect]]
id = "spt-014-a"
outcome = "fail"
reason = "no IssueInstant check"
[[expect]]
id = "replay-new-session"
outcome = "skip"
reason = "no replay cache"
[[spid_sp_test]]
test = 14
reason = "their case also moves NotBefore"
"#,
        );
        let f = PeerFile::load(&p).unwrap();
        assert_eq!(
            f.expected_failure("spt-014-a"),
            Some("no IssueInstant check")
        );
        assert_eq!(f.skip("spt-014-a"), None);
        assert_eq!(f.skip("replay-new-session"), Some("no replay cache"));
        assert_eq!(f.disagreement(14), Some("their case also moves NotBefore"));
        assert_eq!(f.disagreement(15), None);
        assert!(f.check_ids(|id| id.starts_with("spt-")).is_err());
        assert!(f.check_ids(|_| true).is_ok());
    }

    /// The spid-sp-test CIE expectations (read by scripts/spid-sp-test.sh) are a peer file
    /// like the others: each entry a Response test number with its reason.
    #[test]
    fn the_spid_sp_test_cie_expectations_load() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/peers/spid-sp-test-cie-private.toml");
        let f = PeerFile::load(&p).unwrap();
        assert!(f.expect.is_empty());
        assert!(f
            .disagreement(71)
            .is_some_and(|r| r.contains("cie-sp-public only")));
    }

    #[test]
    fn refuses_unknown_keys_duplicates_and_missing_reasons_naming_the_file() {
        for bad in [
            "[[expect]]\nid = \"a\"\noutcome = \"fail\"\nreason = \"r\"\ncolour = 1\n",
            "[[expect]]\nid = \"a\"\noutcome = \"fail\"\nreason = \"r\"\n[[expect]]\nid = \"a\"\noutcome = \"skip\"\nreason = \"r\"\n",
            "[[expect]]\nid = \"a\"\noutcome = \"fail\"\nreason = \" \"\n",
            "[[expect]]\nid = \"a\"\noutcome = \"maybe\"\nreason = \"r\"\n",
        ] {
            let (_d, p) = write(bad);
            let e = PeerFile::load(&p).unwrap_err().to_string();
            assert!(e.starts_with(&p.display().to_string()), "{e}");
        }
        let missing = PeerFile::load(Path::new("/nonexistent/peer.toml")).unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/peer.toml"));
    }
}
