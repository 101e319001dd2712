//! The case catalogue: one TOML file per case under `fixtures/cases/{saml,oidc}/`, embedded in
//! the binary and loadable from a directory. Unknown keys, unknown mutations and unknown rule
//! codes are load errors naming the file (and, from the TOML parser, the line).

use serde::{Deserialize, Serialize};
use spid_core::Rule;
use spid_idp::FaultPlan;
use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/cases.rs"));

/// What the case expects from the SP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "lowercase", deny_unknown_fields)]
pub enum Expect {
    /// HTTP 200, a login.
    Accept,
    /// A refusal: our own target decides by one of `rules` (several when more than one rule
    /// may rightly fire first); any conforming target may answer one of `codes` (the
    /// protocol's error codes, e.g. OAuth `invalid_request`; empty: any).
    Reject {
        /// Our target's acceptable deciding rule codes.
        rules: Vec<String>,
        /// The protocol error codes any conforming target may give.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        codes: Vec<String>,
    },
    /// Either outcome is conformant; `why` says why.
    Either {
        /// The reason both are acceptable.
        why: String,
    },
    /// Depends on the request: accept when a Response at `level` satisfies the level and
    /// comparison the SP asked for (and its floor), else reject by
    /// `assertion.level.insufficient`.
    Level {
        /// The level the Response asserts.
        level: spid_core::SpidLevel,
    },
}

/// How the case drives the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flow {
    /// A login through the IdP pages.
    #[default]
    Login,
    /// An honest login, then the same SAMLResponse posted again in the same session.
    Replay,
    /// An honest login, then the same SAMLResponse posted from a fresh browser session.
    ReplayNewSession,
    /// Wrong password until the IdP gives up (nr19).
    WrongPassword,
    /// Right password, wrong OTP until the IdP gives up (nr19).
    WrongOtp,
    /// The user cancels on the login page (nr25).
    Cancel,
    /// The user takes longer than the IdP's login timeout (nr21).
    Timeout,
}

/// Which targets a case applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Any target (an external SP, RP or OP too).
    #[default]
    Any,
    /// Our own target only (it moves our clock, asks our SP for a level, …).
    Internal,
}

/// What the SP is asked to request (query parameters of its login URL).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestOpts {
    /// Level to request.
    pub level: Option<spid_core::SpidLevel>,
    /// Comparison to request.
    pub comparison: Option<spid_core::Comparison>,
    /// `redirect` or `post`.
    pub binding: Option<String>,
    /// The Avviso 18 `spid:Purpose` to request (`P`, `LP`, `PG`, `PF`, `PX`).
    pub purpose: Option<String>,
}

impl RequestOpts {
    /// The query string to append to the SP's login URL.
    pub fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(l) = self.level {
            q.append_pair("level", &l.number().to_string());
        }
        if let Some(c) = self.comparison {
            q.append_pair("comparison", c.as_str());
        }
        if let Some(b) = &self.binding {
            q.append_pair("binding", b);
        }
        if let Some(p) = &self.purpose {
            q.append_pair("purpose", p);
        }
        q.finish()
    }
}

/// The user's choice on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Consent {
    /// Accept.
    #[default]
    Accept,
    /// Deny (nr22).
    Deny,
}

/// What a case's emitted messages keep intact; an independent verifier checks every one
/// against it (`tests/isolation.rs`: SAML Responses with the `xmlsec1` tool and the IdP's
/// certificate; `tests/oidc_isolation.rs`: the OP's JWTs with the `jsonwebtoken` crate and the
/// published keys).
///
/// The default (no `[intact]` table) is "every signature valid": whatever the plan edits, each
/// signature in the Response verifies, so the case proves the rule it names and not merely
/// that a broken signature is refused. A case that is *about* signatures, or whose point makes
/// a valid signature impossible, opts out and says why:
///
/// ```toml
/// [intact]
/// signatures = false
/// why = "the NameID is changed after signing: the broken signature is the point"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intact {
    /// Every signature in the Response verifies with the IdP certificate (default true).
    #[serde(default = "yes")]
    pub signatures: bool,
    /// Why not: required with `signatures = false`, refused otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

fn yes() -> bool {
    true
}

impl Intact {
    /// An opt-out says why; a reason without an opt-out is refused.
    pub fn check(&self) -> Result<(), CaseError> {
        match (&self.signatures, &self.why) {
            (false, None) => Err(CaseError::IntactWithoutWhy),
            (false, Some(w)) if w.trim().is_empty() => Err(CaseError::IntactWhyEmpty),
            (true, Some(_)) => Err(CaseError::WhyWithoutOptOut),
            _ => Ok(()),
        }
    }
}

/// Why a case file is refused beyond the TOML grammar (the loader adds the file name).
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// `intact.signatures = false` without a reason.
    #[error("intact.signatures = false needs intact.why")]
    IntactWithoutWhy,
    /// An empty reason.
    #[error("intact.why is empty")]
    IntactWhyEmpty,
    /// A reason without an opt-out.
    #[error("intact.why explains an opt-out: set intact.signatures = false or drop it")]
    WhyWithoutOptOut,
    /// A flag listed twice.
    #[error("flag {0} listed twice")]
    FlagTwice(Flag),
    /// A family the catalogue does not list.
    #[error("family \"{family}\" is not one of the {folder} families in fixtures/cases/FAMILIES.toml: {known}")]
    UnknownFamily {
        /// The family named.
        family: String,
        /// The catalogue folder.
        folder: &'static str,
        /// The families it lists.
        known: String,
    },
    /// A ref that cites no document of the table.
    #[error("ref \"{0}\" cites no document of fixtures/cases/REFS.toml (a ref starts with one of its keys, e.g. \"RFC 6749 4.1.2\")")]
    UnknownRef(String),
    /// The side's plan is refused (a stage its message lacks, a fragment that does not parse).
    #[error(transparent)]
    Plan(Box<dyn std::error::Error + Send + Sync>),
}

impl CaseError {
    /// A plan refusal of any side.
    pub fn plan(e: impl std::error::Error + Send + Sync + 'static) -> CaseError {
        CaseError::Plan(Box::new(e))
    }
}

impl Default for Intact {
    fn default() -> Self {
        Intact {
            signatures: true,
            why: None,
        }
    }
}

/// A property of a case, from a closed vocabulary; each is explained once, in
/// `fixtures/cases/FLAGS.toml` ([`Flag::explanation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flag {
    /// Not a SPID rule: a defence this tool recommends. Against an external SP an unmet
    /// hardening case is a warning, not a conformance failure.
    Hardening,
}

/// `fixtures/cases/FLAGS.toml`: flag name → explanation.
pub const FLAGS_TOML: &str = include_str!("../../../fixtures/cases/FLAGS.toml");

fn flag_explanations() -> &'static std::collections::BTreeMap<String, String> {
    static MAP: std::sync::OnceLock<std::collections::BTreeMap<String, String>> =
        std::sync::OnceLock::new();
    MAP.get_or_init(|| toml::from_str(FLAGS_TOML).unwrap_or_default())
}

impl Flag {
    /// Every flag.
    pub const ALL: [Flag; 1] = [Flag::Hardening];

    /// The name used in the case files (`hardening`).
    pub fn name(self) -> &'static str {
        match self {
            Flag::Hardening => "hardening",
        }
    }

    /// The one explanation of the flag, from `fixtures/cases/FLAGS.toml` (a test keeps that
    /// file and this enum in step).
    pub fn explanation(self) -> &'static str {
        flag_explanations()
            .get(self.name())
            .map(String::as_str)
            .unwrap_or("(not explained in fixtures/cases/FLAGS.toml)")
    }
}

impl std::fmt::Display for Flag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One case of any catalogue: the envelope every catalogue shares (`id`, `title`, `family`,
/// `refs`, `flags`, `scope`, `user`, `expect`) around the side's own `body` (how the case is
/// driven and its plan). The body's fields read through the case (`case.plan`): [`Deref`].
///
/// [`Deref`]: std::ops::Deref
#[derive(Debug, Clone)]
pub struct Case<B = SamlBody> {
    /// Stable id, never reused, unique across every catalogue (= file stem).
    pub id: String,
    /// One line.
    pub title: String,
    /// Family (closed per side: [`families`]).
    pub family: String,
    /// SPID rule and upstream references, each citing a document of
    /// `fixtures/cases/REFS.toml` ([`resolve_ref`]).
    pub refs: Vec<String>,
    /// Flags (closed vocabulary, explained in `fixtures/cases/FLAGS.toml`), e.g. `hardening`.
    pub flags: Vec<Flag>,
    /// `internal` when the case only makes sense against our own target.
    pub scope: Scope,
    /// Fixture user who logs in (default `mario.rossi`, an L2 user).
    pub user: String,
    /// What the target must do.
    pub expect: Expect,
    /// The side's own fields.
    pub body: B,
}

impl<B> std::ops::Deref for Case<B> {
    type Target = B;
    fn deref(&self) -> &B {
        &self.body
    }
}

impl<B> std::ops::DerefMut for Case<B> {
    fn deref_mut(&mut self) -> &mut B {
        &mut self.body
    }
}

/// The envelope as the case file spells it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    id: String,
    title: String,
    family: String,
    #[serde(default)]
    refs: Vec<String>,
    #[serde(default)]
    flags: Vec<Flag>,
    #[serde(default)]
    scope: Scope,
    #[serde(default = "default_user")]
    user: String,
    expect: Expect,
}

const ENVELOPE_KEYS: [&str; 8] = [
    "id", "title", "family", "refs", "flags", "scope", "user", "expect",
];

impl<'de, B: serde::de::DeserializeOwned> Deserialize<'de> for Case<B> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        // The envelope's keys go to the envelope, every other key to the side's body; both
        // refuse unknown keys.
        let mut body = toml::Table::deserialize(d)?;
        let mut env = toml::Table::new();
        for k in ENVELOPE_KEYS {
            if let Some(v) = body.remove(k) {
                env.insert(k.to_string(), v);
            }
        }
        let e: Envelope = toml::Value::Table(env)
            .try_into()
            .map_err(D::Error::custom)?;
        let body: B = toml::Value::Table(body)
            .try_into()
            .map_err(D::Error::custom)?;
        Ok(Case {
            id: e.id,
            title: e.title,
            family: e.family,
            refs: e.refs,
            flags: e.flags,
            scope: e.scope,
            user: e.user,
            expect: e.expect,
            body,
        })
    }
}

impl<B> Case<B> {
    /// Whether the case carries `flag`.
    pub fn has_flag(&self, flag: Flag) -> bool {
        self.flags.contains(&flag)
    }

    /// A hardening case: not a SPID rule, so against an external target an unmet
    /// expectation is a warning, not a conformance failure ([`Flag::Hardening`]).
    pub fn is_hardening(&self) -> bool {
        self.has_flag(Flag::Hardening)
    }

    /// The case's flags with their explanations, for reports.
    pub fn flag_notes(&self) -> Vec<(Flag, &'static str)> {
        self.flags.iter().map(|f| (*f, f.explanation())).collect()
    }
}

/// The SAML side's own fields: how the browser is driven and the IdP's fault plan.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlBody {
    /// What the emitted Response keeps intact (default: every signature valid).
    #[serde(default)]
    pub intact: Intact,
    /// Browser flow.
    #[serde(default)]
    pub flow: Flow,
    /// Consent choice.
    #[serde(default)]
    pub consent: Consent,
    /// What the SP should request.
    #[serde(default)]
    pub request: RequestOpts,
    /// Fault plan armed on the IdP for this case's Response.
    #[serde(default)]
    pub plan: FaultPlan,
}

fn default_user() -> String {
    "mario.rossi".into()
}

impl SamlBody {
    /// The checks beyond the grammar: `intact` opt-outs say why, and the plan's fragments
    /// parse.
    fn check_saml(&self) -> Result<(), CaseError> {
        self.intact.check()?;
        self.plan.check().map_err(CaseError::plan)
    }
}

/// A catalogue load error.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct LoadError {
    /// The case file.
    pub file: String,
    /// What is wrong (TOML errors include line and column).
    pub message: String,
}

/// What makes a side's body a catalogue: its folder, its rule codes, its own load checks.
pub trait Body: serde::de::DeserializeOwned {
    /// The folder under `fixtures/cases`.
    const FOLDER: &'static str;
    /// The prefix every expected rule code must carry (empty: any known rule).
    const RULE_PREFIX: &'static str;
    /// Whether `expect.verdict = "level"` makes sense (SAML only).
    const LEVEL_EXPECT: bool;
    /// Checks of the side's own fields, after parsing (default: none).
    fn check(&self) -> Result<(), CaseError> {
        Ok(())
    }
}

impl Body for SamlBody {
    const FOLDER: &'static str = "saml";
    const RULE_PREFIX: &'static str = "";
    const LEVEL_EXPECT: bool = true;
    fn check(&self) -> Result<(), CaseError> {
        self.check_saml()
    }
}

/// Every case type: a [`Case`] of some [`Body`] (the bound the loader, listing and runner
/// helpers take).
pub trait CatalogueCase: serde::de::DeserializeOwned {
    /// The folder under `fixtures/cases`.
    const FOLDER: &'static str;
    /// The prefix every expected rule code must carry (empty: any known rule).
    const RULE_PREFIX: &'static str;
    /// Whether `expect.verdict = "level"` makes sense (SAML only).
    const LEVEL_EXPECT: bool;
    /// Stable id (= file stem).
    fn id(&self) -> &str;
    /// Family.
    fn family(&self) -> &str;
    /// One line.
    fn title(&self) -> &str;
    /// SPID rule and upstream references.
    fn refs(&self) -> &[String];
    /// Flags.
    fn flags(&self) -> &[Flag];
    /// The expectation.
    fn expect(&self) -> &Expect;
    /// The checks beyond the grammar.
    fn check(&self) -> Result<(), CaseError>;
}

impl<B: Body> CatalogueCase for Case<B> {
    const FOLDER: &'static str = B::FOLDER;
    const RULE_PREFIX: &'static str = B::RULE_PREFIX;
    const LEVEL_EXPECT: bool = B::LEVEL_EXPECT;
    fn id(&self) -> &str {
        &self.id
    }
    fn family(&self) -> &str {
        &self.family
    }
    fn title(&self) -> &str {
        &self.title
    }
    fn refs(&self) -> &[String] {
        &self.refs
    }
    fn flags(&self) -> &[Flag] {
        &self.flags
    }
    fn expect(&self) -> &Expect {
        &self.expect
    }
    fn check(&self) -> Result<(), CaseError> {
        let mut seen = std::collections::BTreeSet::new();
        if let Some(f) = self.flags.iter().find(|f| !seen.insert(**f)) {
            return Err(CaseError::FlagTwice(*f));
        }
        if family_explanation(B::FOLDER, &self.family).is_none() {
            return Err(CaseError::UnknownFamily {
                family: self.family.clone(),
                folder: B::FOLDER,
                known: families(B::FOLDER).join(", "),
            });
        }
        if let Some(r) = self.refs.iter().find(|r| resolve_ref(r).is_none()) {
            return Err(CaseError::UnknownRef(r.clone()));
        }
        self.body.check()
    }
}

/// `fixtures/cases/FAMILIES.toml`: per catalogue folder, family name → what it covers.
pub const FAMILIES_TOML: &str = include_str!("../../../fixtures/cases/FAMILIES.toml");

type FamilyTable = std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>;

fn family_table() -> &'static FamilyTable {
    static MAP: std::sync::OnceLock<FamilyTable> = std::sync::OnceLock::new();
    MAP.get_or_init(|| toml::from_str(FAMILIES_TOML).unwrap_or_default())
}

/// The closed list of families of a catalogue folder (`saml`, `oidc`, `oidc-op`).
pub fn families(folder: &str) -> Vec<&'static str> {
    family_table()
        .get(folder)
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// What a family of a catalogue folder covers (None: not a family of that folder).
pub fn family_explanation(folder: &str, family: &str) -> Option<&'static str> {
    family_table().get(folder)?.get(family).map(String::as_str)
}

/// `fixtures/cases/REFS.toml`: the public documents a case's `refs` may cite, keyed by the
/// prefix a ref starts with (`RFC 6749`, `SPID-RT SSO`, `spid-sp-test`, …).
pub const REFS_TOML: &str = include_str!("../../../fixtures/cases/REFS.toml");

/// One public document of `fixtures/cases/REFS.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefDoc {
    /// The document's title.
    pub title: String,
    /// Where anyone can read it (https).
    pub url: String,
}

type RefTable = std::collections::BTreeMap<String, RefDoc>;

fn ref_table() -> &'static RefTable {
    static MAP: std::sync::OnceLock<RefTable> = std::sync::OnceLock::new();
    MAP.get_or_init(|| toml::from_str(REFS_TOML).unwrap_or_default())
}

/// The `REFS.toml` key a ref cites and its document: the longest key the ref starts with,
/// ending where a word ends (`RFC 6749 4.1.2` cites `RFC 6749`, `RFC 67490` cites nothing).
pub fn ref_document(reference: &str) -> Option<(&'static str, &'static RefDoc)> {
    ref_table()
        .iter()
        .filter(|(key, _)| {
            reference.strip_prefix(key.as_str()).is_some_and(|rest| {
                !rest
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
        .max_by_key(|(key, _)| key.len())
        .map(|(key, doc)| (key.as_str(), doc))
}

/// The (title, url) of the public document a case's ref cites (None: no `REFS.toml` entry;
/// such a ref is a load error).
pub fn resolve_ref(reference: &str) -> Option<(&'static str, &'static str)> {
    ref_document(reference).map(|(_, d)| (d.title.as_str(), d.url.as_str()))
}

/// A ref as a markdown link to its document (the ref's own text; the documents' titles are
/// listed once, at the end of docs/cases.md).
pub fn ref_markdown(reference: &str) -> String {
    let text = reference
        .replace('|', "\\|")
        .replace('[', "\\[")
        .replace(']', "\\]");
    match resolve_ref(reference) {
        Some((_, url)) => format!("[{text}]({url})"),
        None => text,
    }
}

/// Parses and checks one case file of any catalogue: unknown keys, an empty or unknown (or
/// wrongly prefixed) rule list, a misplaced `level` expectation and an id that is not the
/// file stem are load errors naming the file.
pub fn parse<C: CatalogueCase>(file: &str, text: &str) -> Result<C, LoadError> {
    let err = |m: String| LoadError {
        file: file.to_string(),
        message: m,
    };
    let case: C = toml::from_str(text).map_err(|e| err(e.to_string()))?;
    match case.expect() {
        Expect::Reject { rules, .. } if rules.is_empty() => {
            return Err(err("expect.rules is empty".into()))
        }
        Expect::Reject { rules, .. } => {
            let known = |r: &str| r.starts_with(C::RULE_PREFIX) && Rule::from_code(r).is_some();
            if let Some(r) = rules.iter().find(|r| !known(r)) {
                return Err(err(format!("unknown rule code {r:?}")));
            }
        }
        Expect::Level { .. } if !C::LEVEL_EXPECT => {
            return Err(err("expect level is SAML-only".into()))
        }
        _ => {}
    }
    case.check().map_err(|e| err(e.to_string()))?;
    let stem = Path::new(file)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if stem != case.id() {
        return Err(err(format!(
            "id {:?} does not match the file name",
            case.id()
        )));
    }
    Ok(case)
}

/// Parses and checks one SAML case file.
pub fn parse_case(file: &str, text: &str) -> Result<Case, LoadError> {
    parse(file, text)
}

/// The embedded catalogue of `C`, sorted by id.
pub fn embedded_cases<C: CatalogueCase>() -> Result<Vec<C>, LoadError> {
    let prefix = format!("{}/", C::FOLDER);
    let cases = EMBEDDED
        .iter()
        .filter(|(n, _)| n.starts_with(&prefix))
        .map(|(n, t)| parse::<C>(n, t))
        .collect::<Result<Vec<_>, _>>()?;
    sorted_unique(cases, |c| c.id())
}

/// Loads the embedded SAML catalogue (`family` = "saml").
pub fn embedded(family: &str) -> Result<Vec<Case>, LoadError> {
    if family != SamlBody::FOLDER {
        return Err(LoadError {
            file: family.to_string(),
            message: "not a SAML catalogue folder".into(),
        });
    }
    embedded_cases()
}

/// The rule codes the cases expect (a `level` expectation stands for
/// `assertion.level.insufficient`), for the completeness tests.
pub fn expected_rules<C: CatalogueCase>(cases: &[C]) -> std::collections::BTreeSet<&str> {
    let mut out = std::collections::BTreeSet::new();
    for c in cases {
        match c.expect() {
            Expect::Reject { rules, .. } => out.extend(rules.iter().map(String::as_str)),
            Expect::Level { .. } => {
                out.insert(Rule::AssertionLevelInsufficient.code());
            }
            _ => {}
        }
    }
    out
}

/// The rules with `prefix` that no case of `cases` expects, `except` those reached elsewhere.
pub fn rules_no_case_expects<C: CatalogueCase>(
    cases: &[C],
    prefix: &str,
    except: &[&str],
) -> Vec<&'static str> {
    let expected = expected_rules(cases);
    Rule::ALL
        .iter()
        .map(|r| r.code())
        .filter(|c| c.starts_with(prefix) && !expected.contains(c) && !except.contains(c))
        .collect()
}

/// Loads every `*.toml` in `dir`.
pub fn from_dir(dir: &Path) -> Result<Vec<Case>, LoadError> {
    let rd = std::fs::read_dir(dir).map_err(|e| LoadError {
        file: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let mut paths: Vec<_> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut cases = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(|e| LoadError {
            file: p.display().to_string(),
            message: e.to_string(),
        })?;
        cases.push(parse_case(&p.display().to_string(), &text)?);
    }
    check_unique(cases)
}

fn check_unique(cases: Vec<Case>) -> Result<Vec<Case>, LoadError> {
    sorted_unique(cases, |c| c.id.as_str())
}

/// Sorts cases by id and refuses a duplicate id (shared by the SAML and OIDC catalogues).
pub fn sorted_unique<T>(mut cases: Vec<T>, id: impl Fn(&T) -> &str) -> Result<Vec<T>, LoadError> {
    cases.sort_by(|a, b| id(a).cmp(id(b)));
    if let Some(w) = cases.windows(2).find(|w| id(&w[0]) == id(&w[1])) {
        return Err(LoadError {
            file: id(&w[0]).to_string(),
            message: "duplicate case id".into(),
        });
    }
    Ok(cases)
}

/// Keeps the cases whose id matches the glob.
pub fn select(cases: Vec<Case>, pattern: Option<&str>) -> Result<Vec<Case>, String> {
    select_by(cases, pattern, |c| &c.id)
}

/// Keeps the items whose id matches the glob (shared by the SAML and OIDC catalogues).
pub fn select_by<T>(
    items: Vec<T>,
    pattern: Option<&str>,
    id: impl Fn(&T) -> &str,
) -> Result<Vec<T>, String> {
    let Some(p) = pattern else { return Ok(items) };
    let g = glob::Pattern::new(p).map_err(|e| format!("--cases {p:?}: {e}"))?;
    Ok(items.into_iter().filter(|c| g.matches(id(c))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalogue_loads() {
        let cases = embedded("saml").unwrap();
        assert!(cases.len() >= 7);
    }

    /// Rules no IdP-produced Response can reach first, each unit-tested in spid-sp instead.
    const UNIT_TESTED_ONLY: [(&str, &str); 9] = [
        (
            "signature.idp-certificate.missing",
            "a setup fault: the SP trusts IdP metadata without a certificate",
        ),
        (
            "assertion.replayed",
            "the InResponseTo check consumes a request first; the cache is the second line",
        ),
        ("logout.message.invalid", "Single Logout: tests/slo.rs"),
        ("logout.signature.invalid", "Single Logout: tests/slo.rs"),
        (
            "logout.in-response-to.unknown",
            "Single Logout: tests/slo.rs",
        ),
        ("logout.issuer.mismatch", "Single Logout: tests/slo.rs"),
        ("logout.status.not-success", "Single Logout: tests/slo.rs"),
        (
            "idp.request.replayed",
            "our IdP's own refusal of a replayed AuthnRequest: tests/abuse_state.rs",
        ),
        (
            "server.pending.full",
            "a flooded pending store: tests/abuse_state.rs",
        ),
    ];

    #[test]
    fn every_rule_is_expected_by_a_case() {
        let cases = embedded("saml").unwrap();
        let expected = expected_rules(&cases);
        let unit_tested: Vec<&str> = UNIT_TESTED_ONLY.iter().map(|(u, _)| *u).collect();
        let missing: Vec<&str> = rules_no_case_expects(&cases, "", &unit_tested)
            .into_iter()
            // The OIDC catalogues have their own completeness tests (oidc.rs, oidc_op.rs).
            .filter(|c| !c.starts_with("oidc.") && !c.starts_with("op."))
            // The trust anchor's refusals: tests/oidc_internal.rs.
            .filter(|c| !c.starts_with("ta."))
            // The CNS catalogue has its own completeness test
            // (cns.rs, every_cns_rule_is_expected_by_a_case).
            .filter(|c| !c.starts_with("cns."))
            // Our IdP's CIE request checks are unit-tested in spid-idp (request.rs); the SP's
            // CIE attribute rule is expected by the cie catalogue (cie.rs).
            .filter(|c| !c.starts_with("idp.cie.") && *c != "assertion.attributes.cie-minimum-set")
            // check-sp's static checks of an SP's metadata and AuthnRequest are unit-tested
            // in checks/ (metadata.rs, request.rs), not reached by Response cases.
            .filter(|c| !c.starts_with("sp-metadata.") && !c.starts_with("sp-request."))
            .collect();
        assert!(missing.is_empty(), "rules no case expects: {missing:?}");
        for (u, _) in UNIT_TESTED_ONLY {
            assert!(
                !expected.contains(u),
                "{u} is now reachable by a case: drop it from the list"
            );
        }
    }

    #[test]
    fn generated_case_docs_are_current() {
        let docs = include_str!("../../../docs/cases.md");
        assert_eq!(
            docs,
            cases_markdown().unwrap(),
            "run `just cases` to regenerate docs/cases.md"
        );
    }

    #[test]
    fn generated_avviso18_docs_are_current() {
        let docs = include_str!("../../../docs/avviso18.md");
        assert_eq!(
            docs,
            spid_core::professional::markdown(),
            "run `spid-harness avviso18 > docs/avviso18.md` to regenerate it"
        );
    }

    #[test]
    fn the_readme_stays_one_screen() {
        let lines = include_str!("../../../README.md").lines().count();
        assert!(
            lines <= 150,
            "README.md has {lines} lines: keep it to 150, move detail to docs/"
        );
    }

    #[test]
    fn generated_rule_docs_are_current() {
        let docs = include_str!("../../../docs/rules.md");
        assert_eq!(
            docs,
            Rule::markdown_table(),
            "run `just rules` to regenerate docs/rules.md"
        );
    }

    #[test]
    fn catalogue_size_and_upstream_coverage() {
        let cases = embedded("saml").unwrap();
        assert!(cases.len() >= 125, "{}", cases.len());
        let spt = cases.iter().filter(|c| c.id.starts_with("spt-")).count();
        assert_eq!(spt, 111, "every spid-sp-test case has its file");
        for n in ["001-ns", "025", "067", "084", "091", "112", "113"] {
            assert!(
                cases.iter().any(|c| c.id.starts_with(&format!("ssc-{n}"))),
                "spid-saml-check {n}"
            );
        }
    }

    #[test]
    fn flags_are_explained_once() {
        let explained: std::collections::BTreeMap<String, String> =
            toml::from_str(FLAGS_TOML).expect("fixtures/cases/FLAGS.toml parses as flag = text");
        let variants: Vec<&str> = Flag::ALL.iter().map(|f| f.name()).collect();
        for (name, text) in &explained {
            assert!(
                variants.contains(&name.as_str()),
                "FLAGS.toml explains {name:?}, which is not a Flag variant"
            );
            assert!(
                !text.trim().is_empty(),
                "FLAGS.toml: {name} has no explanation"
            );
        }
        for f in Flag::ALL {
            assert!(
                explained.contains_key(f.name()),
                "flag {f} is not explained in fixtures/cases/FLAGS.toml"
            );
            // The serde name is the name used in the files.
            assert_eq!(toml::Value::try_from(f).unwrap().as_str(), Some(f.name()));
            assert!(!f.explanation().starts_with("(not explained"));
        }
        let cases = embedded("saml").unwrap();
        for c in &cases {
            for f in &c.flags {
                assert!(
                    explained.contains_key(f.name()),
                    "{}: flag {f} unexplained",
                    c.id
                );
            }
        }
        // Every case whose references call it hardening carries the flag.
        for c in &cases {
            if c.refs.iter().any(|r| r.eq_ignore_ascii_case("hardening")) {
                assert!(
                    c.is_hardening(),
                    "{}: refs say hardening, flags do not",
                    c.id
                );
            }
        }
        let h = cases.iter().find(|c| c.id == "xml-deep-nesting").unwrap();
        assert!(h.is_hardening());
        assert_eq!(
            h.flag_notes(),
            vec![(Flag::Hardening, Flag::Hardening.explanation())]
        );
        assert!(!cases
            .iter()
            .find(|c| c.id == "login-l2")
            .unwrap()
            .is_hardening());
    }

    #[test]
    fn intact_opt_out_needs_a_reason_and_flags_are_closed() {
        let base = "id = \"x\"\ntitle = \"t\"\nfamily = \"signature\"\n";
        let accept = "[expect]\nverdict = \"accept\"\n";
        let ok = parse_case(
            "x.toml",
            &format!("{base}flags = [\"hardening\"]\n[intact]\nsignatures = false\nwhy = \"w\"\n{accept}"),
        )
        .unwrap();
        assert!(!ok.intact.signatures && ok.is_hardening());
        assert!(
            parse_case("x.toml", &format!("{base}{accept}"))
                .unwrap()
                .intact
                .signatures
        );
        for (bad, says) in [
            ("[intact]\nsignatures = false\n", "needs intact.why"),
            ("[intact]\nwhy = \"w\"\n", "opt-out"),
            ("[intact]\nsignatures = false\nwhy = \" \"\n", "empty"),
            ("flags = [\"shiny\"]\n", "shiny"),
            ("flags = [\"hardening\", \"hardening\"]\n", "twice"),
        ] {
            let e = parse_case("x.toml", &format!("{base}{bad}{accept}")).unwrap_err();
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn refs_resolve_through_one_table_of_public_documents() {
        let table: RefTable = toml::from_str(REFS_TOML)
            .expect("fixtures/cases/REFS.toml parses as key = {title, url}");
        assert_eq!(&table, ref_table());
        for (key, doc) in &table {
            assert!(
                !doc.title.trim().is_empty(),
                "REFS.toml: {key} has no title"
            );
            assert!(
                doc.url.starts_with("https://") && !doc.url.contains(' '),
                "REFS.toml: {key} url {:?} is not an https URL",
                doc.url
            );
        }
        // The longest key wins, and a key ends where a word ends.
        assert_eq!(ref_document("RFC 6749 4.1.2.1").unwrap().0, "RFC 6749");
        assert_eq!(
            ref_document("SPID-RT SSO (InResponseTo)").unwrap().0,
            "SPID-RT SSO"
        );
        assert_eq!(
            ref_document("spid-sp-test 4, 5, 100").unwrap().0,
            "spid-sp-test"
        );
        assert_eq!(ref_document("SPID-OIDC: OP keys").unwrap().0, "SPID-OIDC");
        assert_eq!(
            resolve_ref("OIDC-CORE 3.1.3.7 (9)"),
            Some((
                "OpenID Connect Core 1.0",
                "https://openid.net/specs/openid-connect-core-1_0.html"
            ))
        );
        for unknown in ["RFC 67490", "SPID-RTX", "hardening", "research 10.1", ""] {
            assert!(resolve_ref(unknown).is_none(), "{unknown:?} resolved");
        }
        assert_eq!(
            ref_markdown("RFC 7009 2.1"),
            "[RFC 7009 2.1](https://www.rfc-editor.org/rfc/rfc7009)"
        );
        // An unknown prefix is a load error naming the file and the ref.
        let base = "id = \"x\"\ntitle = \"t\"\nfamily = \"signature\"\n";
        let accept = "[expect]\nverdict = \"accept\"\n";
        assert!(parse_case(
            "x.toml",
            &format!("{base}refs = [\"RFC 6749 5.2\"]\n{accept}")
        )
        .is_ok());
        let e = parse_case(
            "x.toml",
            &format!("{base}refs = [\"RFC 6749\", \"research 4.5\"]\n{accept}"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("x.toml") && e.contains("research 4.5") && e.contains("REFS.toml"),
            "{e}"
        );
        // Every document is cited by at least one case (the table stays true).
        let cited: Vec<String> = embedded_cases::<Case>()
            .unwrap()
            .iter()
            .flat_map(|c| c.refs.clone())
            .chain(
                embedded_cases::<crate::oidc::OidcCase>()
                    .unwrap()
                    .iter()
                    .flat_map(|c| c.refs().to_vec()),
            )
            .chain(
                embedded_cases::<crate::oidc_op::OpCase>()
                    .unwrap()
                    .iter()
                    .flat_map(|c| c.refs().to_vec()),
            )
            .chain(
                embedded_cases::<crate::cns::CnsCase>()
                    .unwrap()
                    .iter()
                    .flat_map(|c| c.refs().to_vec()),
            )
            .chain(
                embedded_cases::<crate::cie::CieCase>()
                    .unwrap()
                    .iter()
                    .flat_map(|c| c.refs().to_vec()),
            )
            .chain(
                embedded_cases::<crate::cie_oidc::CieOidcCase>()
                    .unwrap()
                    .iter()
                    .flat_map(|c| c.refs().to_vec()),
            )
            .chain(
                embedded_cases::<crate::oidc_op::CieOpCase>()
                    .unwrap()
                    .iter()
                    .flat_map(|c| c.refs().to_vec()),
            )
            .collect();
        for key in table.keys() {
            assert!(
                cited
                    .iter()
                    .any(|r| ref_document(r).is_some_and(|(k, _)| k == key)),
                "REFS.toml: no case cites {key}"
            );
        }
    }

    #[test]
    fn families_are_closed_and_each_is_used() {
        let text = "id = \"x\"\ntitle = \"t\"\nfamily = \"nope\"\n[expect]\nverdict = \"accept\"\n";
        let e = parse_case("x.toml", text).unwrap_err();
        assert!(e.to_string().contains("FAMILIES.toml"), "{e}");
        fn cited<C: CatalogueCase>() -> (&'static str, Vec<String>) {
            let cases = embedded_cases::<C>().unwrap();
            (
                C::FOLDER,
                cases.iter().map(|c| c.family().to_string()).collect(),
            )
        }
        let sides = [
            cited::<Case>(),
            cited::<crate::oidc::OidcCase>(),
            cited::<crate::oidc_op::OpCase>(),
            cited::<crate::cns::CnsCase>(),
            cited::<crate::cie::CieCase>(),
            cited::<crate::cie_oidc::CieOidcCase>(),
            cited::<crate::oidc_op::CieOpCase>(),
        ];
        let folders: Vec<&str> = family_table().keys().map(String::as_str).collect();
        let mut ours: Vec<&str> = sides.iter().map(|(f, _)| *f).collect();
        ours.sort_unstable();
        assert_eq!(folders, ours, "every FAMILIES.toml section is a catalogue");
        for (folder, fams) in sides {
            for f in families(folder) {
                assert!(
                    fams.iter().any(|u| u == f),
                    "{folder} family {f} has no case"
                );
            }
        }
    }

    #[test]
    fn unknown_keys_mutations_and_rules_are_errors() {
        let base = "id = \"x\"\ntitle = \"t\"\nfamily = \"signature\"\n";
        assert!(parse_case("x.toml", &format!("{base}[expect]\nverdict = \"accept\"\n")).is_ok());
        let e = parse_case(
            "x.toml",
            &format!("{base}colour = 1\n[expect]\nverdict = \"accept\"\n"),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("x.toml") && e.to_string().contains("colour"),
            "{e}"
        );
        let e = parse_case(
            "x.toml",
            &format!("{base}[[plan.pre_sign]]\nop = \"explode\"\n[expect]\nverdict = \"accept\"\n"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("explode"), "{e}");
        let e = parse_case(
            "x.toml",
            &format!("{base}[expect]\nverdict = \"reject\"\nrules = [\"no.such.rule\"]\n"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("no.such.rule"), "{e}");
        let e =
            parse_case("y.toml", &format!("{base}[expect]\nverdict = \"accept\"\n")).unwrap_err();
        assert!(e.to_string().contains("file name"), "{e}");
    }
}

/// `docs/cases.md`: every catalogue's cases, counted by family, then one row each (id, family,
/// title, expectation, flags). Generated (`spid-harness cases`) and checked by a test, so no
/// count is ever typed by hand.
pub fn cases_markdown() -> Result<String, LoadError> {
    fn side<C: CatalogueCase>(
        out: &mut String,
        heading: &str,
        flags: impl Fn(&C) -> String,
    ) -> Result<(), LoadError> {
        let cases = embedded_cases::<C>()?;
        let mut fam: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        for c in &cases {
            *fam.entry(c.family()).or_default() += 1;
        }
        out.push_str(&format!(
            "\n## {heading}: {} cases\n\n| family | cases |\n|---|---|\n",
            cases.len()
        ));
        for (f, n) in &fam {
            out.push_str(&format!("| {f} | {n} |\n"));
        }
        out.push_str(
            "\n| id | family | title | expected | flags | refs |\n|---|---|---|---|---|---|\n",
        );
        for c in &cases {
            let refs: Vec<String> = c.refs().iter().map(|r| ref_markdown(r)).collect();
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} |\n",
                c.id(),
                c.family(),
                c.title().replace('|', "\\|"),
                crate::report::expected_text(c.expect()).replace('|', " or "),
                flags(c),
                refs.join(", ")
            ));
        }
        Ok(())
    }
    let mut out = String::from(
        "# The case catalogues\n\nGenerated by `spid-harness cases` (`just cases`) from `fixtures/cases/`; a test keeps it current. Flags: `fixtures/cases/FLAGS.toml`; each ref links its document in `fixtures/cases/REFS.toml` (listed at the end).\n",
    );
    side::<Case>(&mut out, "SAML (SP side)", |c| {
        c.flags
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    })?;
    side::<crate::oidc::OidcCase>(&mut out, "OIDC RP side", |_| String::new())?;
    side::<crate::oidc_op::OpCase>(&mut out, "OIDC OP side", |_| String::new())?;
    side::<crate::cns::CnsCase>(&mut out, "CNS (TLS client certificate)", |c| {
        c.flags
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    })?;
    side::<crate::cie::CieCase>(&mut out, "CIE ID over SAML (SP side)", |c| {
        c.flags
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    })?;
    side::<crate::cie_oidc::CieOidcCase>(&mut out, "CIE OIDC RP side", |_| String::new())?;
    side::<crate::oidc_op::CieOpCase>(&mut out, "CIE OIDC OP side", |_| String::new())?;
    out.push_str(
        "\n## Documents cited\n\nEvery ref names one of these (`fixtures/cases/REFS.toml`).\n\n| ref | document |\n|---|---|\n",
    );
    for (key, doc) in ref_table() {
        out.push_str(&format!("| {key} | [{}]({}) |\n", doc.title, doc.url));
    }
    Ok(out)
}

/// A stable shard of a catalogue for CI matrices: shard `k` of `n` (1-based) holds the cases
/// whose id hashes (FNV-1a, fixed across releases and machines) to `k - 1` modulo `n`, so a case
/// stays in its shard when others are added, and the shards add up to the whole catalogue.
pub fn partition<T>(cases: Vec<T>, k: usize, n: usize, id: impl Fn(&T) -> &str) -> Vec<T> {
    cases
        .into_iter()
        .filter(|c| shard_of(id(c), n) == k - 1)
        .collect()
}

/// The 0-based shard of `id` among `n`.
pub fn shard_of(id: &str, n: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % n.max(1) as u64) as usize
}

/// Parses `k/n` (`--partition`), 1 ≤ k ≤ n.
pub fn parse_partition(s: &str) -> Result<(usize, usize), PartitionError> {
    let bad = || PartitionError(s.to_string());
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// A `--partition` value that is not `k/n` with 1 ≤ k ≤ n.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--partition {0}: expected k/n with 1 <= k <= n, e.g. 2/3")]
pub struct PartitionError(pub String);

#[cfg(test)]
mod partition_tests {
    use super::*;

    #[test]
    fn shards_cover_every_case_exactly_once_and_stay_put() {
        let ids: Vec<String> = embedded("saml")
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        for n in [1, 2, 3, 7] {
            let mut all: Vec<String> = (1..=n)
                .flat_map(|k| partition(ids.clone(), k, n, |s| s.as_str()))
                .collect();
            all.sort();
            let mut want = ids.clone();
            want.sort();
            assert_eq!(all, want, "n = {n}");
        }
        // Adding a case moves no other case.
        let mut more = ids.clone();
        more.push("a-new-case".into());
        for k in 1..=3 {
            let before = partition(ids.clone(), k, 3, |s| s.as_str());
            let after = partition(more.clone(), k, 3, |s| s.as_str());
            assert!(before.iter().all(|c| after.contains(c)));
        }
        // Three shards are each a real share.
        for k in 1..=3 {
            assert!(partition(ids.clone(), k, 3, |s| s.as_str()).len() > ids.len() / 6);
        }
    }

    #[test]
    fn ids_are_unique_across_every_catalogue() {
        let mut seen = std::collections::BTreeMap::new();
        let ids = embedded_cases::<Case>()
            .unwrap()
            .into_iter()
            .map(|c| ("saml", c.id))
            .chain(
                embedded_cases::<crate::oidc::OidcCase>()
                    .unwrap()
                    .into_iter()
                    .map(|c| ("oidc", c.id().to_string())),
            )
            .chain(
                embedded_cases::<crate::oidc_op::OpCase>()
                    .unwrap()
                    .into_iter()
                    .map(|c| ("oidc-op", c.id().to_string())),
            )
            .chain(
                embedded_cases::<crate::cns::CnsCase>()
                    .unwrap()
                    .into_iter()
                    .map(|c| ("cns", c.id().to_string())),
            )
            .chain(
                embedded_cases::<crate::cie::CieCase>()
                    .unwrap()
                    .into_iter()
                    .map(|c| ("cie", c.id().to_string())),
            )
            .chain(
                embedded_cases::<crate::cie_oidc::CieOidcCase>()
                    .unwrap()
                    .into_iter()
                    .map(|c| ("cie-oidc-rp", c.id().to_string())),
            )
            .chain(
                embedded_cases::<crate::oidc_op::CieOpCase>()
                    .unwrap()
                    .into_iter()
                    .map(|c| ("cie-oidc-op", c.id().to_string())),
            );
        for (side, id) in ids {
            if let Some(other) = seen.insert(id.clone(), side) {
                panic!("case id {id} is in both {other} and {side}");
            }
        }
        assert!(seen.len() > 340, "{}", seen.len());
    }

    #[test]
    fn partition_flags_parse_or_say_what_is_wrong() {
        assert_eq!(parse_partition("2/3"), Ok((2, 3)));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
            assert!(
                parse_partition(bad)
                    .unwrap_err()
                    .to_string()
                    .contains("--partition"),
                "{bad}"
            );
        }
    }
}
