//! SPID OpenID Connect runs: a whole federation on loopback (trust anchor, our OP inside the
//! IdP, our RP inside the SP, registered only at the anchor) and the OIDC case catalogue
//! (`fixtures/cases/oidc/*.toml`: a user, an [`OpPlan`], a flow, an expectation).

use crate::agent::{AgentError, Page, UserAgent};
use crate::catalogue::{Expect, LoadError};
use crate::oidc_op::{OpCase, OpEndpoints, OpTarget, ProbeRp};
use crate::runner::{self, judge, Behaviour, CaseResult, Credentials, Verdict};
use serde::{Deserialize, Serialize};
use spid_core::clock::FixedClock;
use spid_core::oidc::federation::MetadataPolicy;
use spid_idp::oidc::op::{OpPlan, OpenIdProvider};
use spid_idp::oidc::ta::{EntityKind, TrustAnchor};
use spid_idp::users::User;
use spid_idp::{IdentityProvider, IdpConfig};
use spid_sp::oidc::{RelyingParty, RpConfig};
use spid_sp::{ServiceProvider, SpConfig};
use std::sync::Arc;
use std::time::Instant;
use url::Url;

fn default_user() -> String {
    "mario.rossi".into()
}

/// What the agent does in an OIDC case, and which RP answer is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OidcFlow {
    /// A login; its final page is judged.
    #[default]
    Login,
    /// A login with `offline=1` (a refresh token), which must be accepted; then the RP's
    /// `/refresh`, judged.
    Refresh,
    /// As `refresh`, but the first `/refresh` must be accepted too and a second one is
    /// judged (rotation: the RP must be able to use the refresh token it got back).
    RefreshTwice,
    /// A login, which must be accepted; then the RP's `/introspect`, judged.
    Introspect,
}

impl OidcFlow {
    /// The flow's name in case files.
    pub fn name(self) -> &'static str {
        match self {
            OidcFlow::Login => "login",
            OidcFlow::Refresh => "refresh",
            OidcFlow::RefreshTwice => "refresh-twice",
            OidcFlow::Introspect => "introspect",
        }
    }
}

/// The RP side's own fields: what our OP does wrong in the login, and which RP answer is
/// judged.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpBody {
    /// What the OP's signed messages keep intact (default: every signature valid; checked
    /// by `tests/oidc_isolation.rs` with an independent JOSE implementation).
    #[serde(default)]
    pub intact: crate::catalogue::Intact,
    /// The OP's plan for this login (its `refresh_*` / `introspection` messages act in the
    /// later steps of the flow).
    #[serde(default)]
    pub plan: OpPlan,
    /// What is done after the login and judged (default `login`).
    #[serde(default)]
    pub flow: OidcFlow,
}

impl crate::catalogue::Body for RpBody {
    const FOLDER: &'static str = "oidc";
    const RULE_PREFIX: &'static str = "";
    const LEVEL_EXPECT: bool = false;
    fn check(&self) -> Result<(), crate::catalogue::CaseError> {
        self.intact.check()?;
        self.plan.check().map_err(crate::catalogue::CaseError::plan)
    }
}

/// Why the harness could not drive an RP-side flow to the page it judges: a harness error,
/// reported as the case's note.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The browser could not complete a request.
    #[error("{step}: {source}")]
    Agent {
        /// The step (`the login`, `the first refresh`, …).
        step: String,
        /// What failed.
        source: AgentError,
    },
    /// A step before the judged one was not accepted.
    #[error("{step} must be accepted before the judged step, the RP answered {status} ({rule})")]
    NotAccepted {
        /// The step.
        step: String,
        /// The RP's status.
        status: u16,
        /// The RP's rule code, or `no rule`.
        rule: String,
    },
    /// The flow needs our own RP's session endpoints.
    #[error("flow {0} needs our RP")]
    NeedsOurRp(&'static str),
}

/// One OIDC RP-side case: who logs in, what the OP does wrong, what the RP must answer.
pub type OidcCase = crate::catalogue::Case<RpBody>;

/// Parses and checks one OIDC case file.
pub fn parse_case(file: &str, text: &str) -> Result<OidcCase, LoadError> {
    crate::catalogue::parse(file, text)
}

/// The embedded OIDC catalogue, sorted by id.
pub fn embedded() -> Result<Vec<OidcCase>, LoadError> {
    crate::catalogue::embedded_cases()
}

/// Keeps the cases whose id matches the glob.
pub fn select(cases: Vec<OidcCase>, pattern: Option<&str>) -> Result<Vec<OidcCase>, String> {
    crate::catalogue::select_by(cases, pattern, |c| &c.id)
}

/// Why a case cannot run against an external RP (`check-rp`), if it cannot: refresh and
/// introspection flows go through our RP's session endpoints; a spoiled entity configuration
/// is seen only by a fresh resolution, which an external RP's cache decides.
pub fn not_for_external_rp(c: &OidcCase) -> Option<&'static str> {
    (c.flow != OidcFlow::Login || c.plan.alters_federation())
        .then_some("needs our RP: its session endpoints or a fresh federation resolution")
}

/// The honest L2 login every OIDC run starts and ends with.
pub fn sanity_case() -> OidcCase {
    OidcCase {
        id: "sanity".into(),
        title: "honest SpidL2 login (sanity)".into(),
        family: "sanity".into(),
        refs: vec![],
        flags: vec![],
        scope: crate::catalogue::Scope::Any,
        user: default_user(),
        expect: Expect::Accept,
        body: RpBody::default(),
    }
}

/// Trust anchor, IdP + OP and SP + RP, each on a 127.0.0.1 ephemeral port, with one stopped
/// clock; OP and RP trust each other only through their registration at the anchor.
pub struct OidcFederation {
    /// The stopped clock every server reads.
    pub clock: Arc<FixedClock>,
    /// The trust anchor.
    pub ta: TrustAnchor,
    /// The OpenID Provider (arm its fault plan here).
    pub op: OpenIdProvider,
    /// The relying party.
    pub rp: RelyingParty,
    /// The probing RP the OP-side cases use (registered at the anchor too).
    pub probe: ProbeRp,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for OidcFederation {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl OidcFederation {
    /// Starts the three servers and registers OP and RP at the anchor.
    pub async fn start(creds: Credentials) -> anyhow::Result<OidcFederation> {
        OidcFederation::start_with(creds, None, None).await
    }

    /// [`OidcFederation::start`] with other SPID readings for the OP and the RP (tests that
    /// weaken one side to show a case fails).
    pub async fn start_with(
        creds: Credentials,
        op_profile: Option<spid_core::oidc::Profile>,
        rp_profile: Option<spid_core::oidc::Profile>,
    ) -> anyhow::Result<OidcFederation> {
        let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
        let (ta_l, idp_l, sp_l) = (bind().await?, bind().await?, bind().await?);
        let probe_l = bind().await?;
        let url = |l: &tokio::net::TcpListener| -> anyhow::Result<String> {
            Ok(format!("http://{}", l.local_addr()?))
        };
        let (ta_url, idp_url, sp_url) = (url(&ta_l)?, url(&idp_l)?, url(&sp_l)?);
        let clock = Arc::new(FixedClock::new(spid_core::clock::now()));

        // The fixed test keys (certs/oidc): no key generation at start-up.
        let ta = TrustAnchor::with_key(&ta_url, clock.clone(), crate::oidc_keys::ta()?);
        let mut idp_cfg = IdpConfig::new(&idp_url, creds.idp, creds.foreign);
        idp_cfg.clock = clock.clone();
        let idp = IdentityProvider::new(idp_cfg)?;
        let mut op_cfg = idp.op_config();
        if let Some(p) = op_profile {
            op_cfg.profile = p;
        }
        let op = OpenIdProvider::with_keys(op_cfg, crate::oidc_keys::op()?);
        let mut sp_cfg = SpConfig::new(&sp_url, creds.sp);
        sp_cfg.clock = clock.clone();
        let sp = ServiceProvider::new(sp_cfg)?;
        let mut rp_cfg = sp.rp_config();
        if let Some(p) = rp_profile {
            rp_cfg.profile = p;
        }
        let rp = RelyingParty::with_keys(rp_cfg, crate::oidc_keys::rp()?);
        let probe = ProbeRp::with_keys(
            &format!("{}/probe-rp", url(&probe_l)?),
            clock.clone(),
            crate::oidc_keys::probe()?,
        );

        // Onboarding: the only source of trust between OP and RP.
        let mark = ta.register(
            op.entity_id(),
            op.federation_jwks(),
            EntityKind::OpenIdProvider,
        )?;
        op.set_trust_anchor(ta.keys(), mark);
        let mark = ta.register(
            rp.entity_id(),
            rp.federation_jwks(),
            EntityKind::OpenIdRelyingParty,
        )?;
        rp.set_trust_anchor(ta.keys(), mark);
        let mark = ta.register(
            probe.entity_id(),
            probe.federation_jwks(),
            EntityKind::OpenIdRelyingParty,
        )?;
        probe.join(ta.entity_id(), vec![mark]);

        let tasks = vec![
            tokio::spawn({
                let ta = ta.clone();
                async move {
                    let _ = ta.serve(ta_l).await;
                }
            }),
            tokio::spawn({
                let op = op.clone();
                async move {
                    let _ = idp.serve_with_op(idp_l, &op).await;
                }
            }),
            tokio::spawn({
                let rp = rp.clone();
                async move {
                    let _ = sp.serve_with_rp(sp_l, &rp).await;
                }
            }),
            tokio::spawn({
                let probe = probe.clone();
                async move {
                    let _ = probe.serve(probe_l).await;
                }
            }),
        ];
        Ok(OidcFederation {
            clock,
            ta,
            op,
            rp,
            probe,
            tasks,
        })
    }

    /// Starts an intermediate (SPID Soggetto Aggregatore) on its own 127.0.0.1 port, under
    /// `superior` (the anchor when None): a subordinate there, holding a trust mark from the
    /// anchor, putting `policy` (when given) in its statements about its subordinates.
    pub async fn start_intermediate(
        &self,
        superior: Option<&TrustAnchor>,
        policy: Option<MetadataPolicy>,
    ) -> anyhow::Result<Intermediate> {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let sa = TrustAnchor::new(&format!("http://{}", l.local_addr()?), self.clock.clone())?;
        let superior = superior.unwrap_or(&self.ta);
        superior.add_subordinate(sa.entity_id(), sa.jwks(), EntityKind::Intermediate);
        let mark = self
            .ta
            .issue_trust_mark(sa.entity_id(), EntityKind::Intermediate)?;
        sa.set_superior(superior.entity_id(), self.ta.keys(), mark);
        if let Some(p) = policy {
            sa.set_metadata_policy(p);
        }
        let task = tokio::spawn({
            let sa = sa.clone();
            async move {
                let _ = sa.serve(l).await;
            }
        });
        Ok(Intermediate {
            authority: sa,
            _task: Task(task),
        })
    }

    /// Starts another relying party of ours on its own 127.0.0.1 port, under the
    /// intermediate `superior`: a subordinate there, holding a trust mark from the anchor
    /// (which the OP's trust-mark-first precheck validates with the anchor's keys).
    pub async fn start_rp_under(&self, superior: &TrustAnchor) -> anyhow::Result<ServedRp> {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let id = format!("http://{}/oidc/rp", l.local_addr()?);
        let rp = RelyingParty::new(RpConfig::new(&id, self.clock.clone()))?;
        superior.add_subordinate(
            rp.entity_id(),
            rp.federation_jwks(),
            EntityKind::OpenIdRelyingParty,
        );
        let mark = self
            .ta
            .issue_trust_mark(rp.entity_id(), EntityKind::OpenIdRelyingParty)?;
        rp.set_trust_anchor(self.ta.keys(), mark);
        rp.set_superior(superior.entity_id());
        let router = axum::Router::new().nest("/oidc/rp", rp.router());
        let task = tokio::spawn(async move {
            let _ = spid_net::serve(l, router, spid_net::ServeLimits::default()).await;
        });
        Ok(ServedRp {
            rp,
            _task: Task(task),
        })
    }

    /// Our OP's endpoints, for the probe.
    pub fn op_endpoints(&self) -> OpEndpoints {
        let c = self.op.config();
        OpEndpoints {
            issuer: c.entity_id.clone(),
            authorization: c.endpoint("authorization"),
            token: c.endpoint("token"),
            userinfo: c.endpoint("userinfo"),
            revocation: Some(c.endpoint("revocation")),
            introspection: Some(c.endpoint("introspection")),
        }
    }

    /// Runs one OP-side case against our OP with the probe.
    pub async fn run_op_case(
        &self,
        case: &OpCase,
        ops: &OpEndpoints,
        users: &[User],
    ) -> CaseResult {
        let target = OpTarget {
            probe: &self.probe,
            op: ops,
            clock: Some(&self.clock),
            internal: true,
            users,
            driver: None,
        };
        crate::oidc_op::run_case(&target, case).await
    }

    /// The RP URL that starts a login at our OP.
    pub fn login_url(&self) -> Url {
        login_url(&self.rp, self.op.entity_id())
    }

    /// The RP URL that starts a login at our OP asking `offline_access` (a refresh token).
    pub fn offline_login_url(&self) -> Url {
        let mut u = self.login_url();
        u.query_pairs_mut().append_pair("offline", "1");
        u
    }

    /// An RP URL: `path` under its entity id (e.g. `refresh`, `introspect`, `logout`).
    pub fn rp_url(&self, path: &str) -> Url {
        Url::parse(&format!("{}/{path}", self.rp.entity_id()))
            .unwrap_or_else(|_| Url::parse("http://127.0.0.1/").expect("static URL"))
    }

    /// One browser login by `user` through the OP's pages (the IdP's forms); the final page.
    pub async fn login(&self, ua: &mut UserAgent, user: Option<&User>) -> Result<Page, AgentError> {
        runner::drive_login(ua, &self.login_url(), user, Behaviour::default()).await
    }

    /// As [`OidcFederation::login`], asking `offline_access`.
    pub async fn offline_login(
        &self,
        ua: &mut UserAgent,
        user: Option<&User>,
    ) -> Result<Page, AgentError> {
        runner::drive_login(ua, &self.offline_login_url(), user, Behaviour::default()).await
    }

    /// GETs the RP's `path` in `ua`'s session, requiring 200 (a step that must succeed
    /// before the judged one); `step` names it in the note otherwise.
    async fn must_accept(
        &self,
        ua: &mut UserAgent,
        path: &str,
        step: &str,
    ) -> Result<(), FlowError> {
        let page = ua
            .get(&self.rp_url(path))
            .await
            .map_err(|source| FlowError::Agent {
                step: step.to_string(),
                source,
            })?;
        Self::accepted(&page, step)
    }

    fn accepted(page: &Page, step: &str) -> Result<(), FlowError> {
        if page.status == 200 {
            Ok(())
        } else {
            Err(FlowError::NotAccepted {
                step: step.to_string(),
                status: page.status,
                rule: page.spid_rule().unwrap_or("no rule").to_string(),
            })
        }
    }

    /// Drives `flow`: the login, then the steps after it; the page to judge, or why the
    /// case could not get that far.
    async fn drive(
        &self,
        ua: &mut UserAgent,
        user: Option<&User>,
        flow: OidcFlow,
    ) -> Result<Page, FlowError> {
        let agent = |step: &str| {
            let step = step.to_string();
            move |source| FlowError::Agent { step, source }
        };
        let login = match flow {
            OidcFlow::Login => return self.login(ua, user).await.map_err(agent("the login")),
            OidcFlow::Refresh | OidcFlow::RefreshTwice => self.offline_login(ua, user).await,
            OidcFlow::Introspect => self.login(ua, user).await,
        }
        .map_err(agent("the login"))?;
        let step = format!("the login of a {} case", flow.name());
        Self::accepted(&login, &step)?;
        let judged = match flow {
            OidcFlow::Introspect => "introspect",
            OidcFlow::RefreshTwice => {
                self.must_accept(ua, "refresh", "the first refresh").await?;
                "refresh"
            }
            _ => "refresh",
        };
        ua.get(&self.rp_url(judged)).await.map_err(agent(judged))
    }

    /// Runs one case: arms its plan, drives its flow with its user, judges the RP's answer.
    pub async fn run_case(&self, case: &OidcCase, users: &[User]) -> CaseResult {
        let target = RpTarget {
            op: &self.op,
            login_url: &self.login_url(),
            accept_marker: None,
            internal: true,
            ours: Some(self),
        };
        run_rp_case(&target, case, users).await
    }
}

/// `rp`'s URL that starts a login at the OP `op`.
pub fn login_url(rp: &RelyingParty, op: &str) -> Url {
    let mut u = Url::parse(&format!("{}/login", rp.entity_id()))
        .unwrap_or_else(|_| Url::parse("http://127.0.0.1/").expect("static URL"));
    u.query_pairs_mut().append_pair("op", op);
    u
}

/// A server task, stopped when dropped.
struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An intermediate started by [`OidcFederation::start_intermediate`], served until dropped.
pub struct Intermediate {
    /// The intermediate (register subordinates here).
    pub authority: TrustAnchor,
    _task: Task,
}

/// A relying party started by [`OidcFederation::start_rp_under`], served until dropped.
pub struct ServedRp {
    /// The relying party.
    pub rp: RelyingParty,
    _task: Task,
}

/// Where RP-side cases are aimed: our OP (to arm plans) and the RP under test.
pub struct RpTarget<'a> {
    /// Our OP, trusted by the RP.
    pub op: &'a OpenIdProvider,
    /// The RP URL that starts a login at our OP.
    pub login_url: &'a Url,
    /// Text an RP's 200 page must contain to count as a login (RPs that show errors with 200).
    pub accept_marker: Option<&'a str>,
    /// Our RP, which always names the deciding rule.
    pub internal: bool,
    /// Our whole federation: flows beyond the login (refresh, introspection) use our RP's
    /// session endpoints; without it those cases cannot run.
    pub ours: Option<&'a OidcFederation>,
}

/// Runs one RP-side case: arms its plan at our OP, logs its user in at the RP, judges the
/// RP's final answer (200 a login, 4xx a refusal).
pub async fn run_rp_case(t: &RpTarget<'_>, case: &OidcCase, users: &[User]) -> CaseResult {
    let started = Instant::now();
    let user = users.iter().find(|u| u.username == case.user);
    let mut ua = match runner::user_agent() {
        Ok(u) => u,
        Err(e) => return failed(case, started, e.to_string(), Vec::new()),
    };
    if let (true, Some(fed)) = (case.plan.alters_federation(), t.ours) {
        // The spoiled entity configuration is only seen by a fresh resolution.
        fed.rp.forget_trusted_ops();
    }
    // The plan is armed for this browser session only (its case cookie reaches our OP's
    // consent page), so cases run concurrently; a plan on the entity configuration is
    // global, as no cookie comes with a federation fetch (such cases run alone).
    let token = format!("{:032x}", rand::random::<u128>());
    let global = case.plan.alters_federation();
    if global {
        t.op.arm(case.plan.clone());
    } else {
        match Url::parse(t.op.entity_id()) {
            Ok(op_url) => ua.add_cookie(
                &format!("{}={token}; Path=/", spid_idp::CASE_COOKIE),
                &op_url,
            ),
            Err(e) => return failed(case, started, format!("our OP's entity id: {e}"), vec![]),
        }
        t.op.arm_for(&token, case.plan.clone());
    }
    let result = match (case.flow, t.ours) {
        (OidcFlow::Login, _) => {
            runner::drive_login(&mut ua, t.login_url, user, Behaviour::default())
                .await
                .map_err(|source| FlowError::Agent {
                    step: "the login".into(),
                    source,
                })
        }
        (flow, Some(fed)) => fed.drive(&mut ua, user, flow).await,
        (flow, None) => Err(FlowError::NeedsOurRp(flow.name())),
    };
    let missed = if global {
        t.op.disarm();
        t.op.take_plan_error()
    } else {
        t.op.disarm_for(&token)
    };
    let trace = ua.take_trace();
    if let Some(miss) = missed {
        // A plan that missed its target proves nothing: a harness error, never a verdict.
        return failed(
            case,
            started,
            format!("the plan missed its target: {miss}"),
            trace,
        );
    }
    match result {
        Err(e) => failed(case, started, e.to_string(), trace),
        Ok(page) => {
            let mut verdict = Verdict::from_status(page.status);
            if let (Verdict::Accept, Some(m)) = (verdict, t.accept_marker) {
                if !page.body.contains(m) {
                    verdict = Verdict::Reject;
                }
            }
            let rule = page.spid_rule().map(str::to_string);
            let (pass, note) = judge(&case.expect, verdict, rule.as_deref(), t.internal);
            CaseResult {
                id: case.id.clone(),
                family: case.family.clone(),
                title: case.title.clone(),
                expected: case.expect.clone(),
                verdict,
                status: page.status,
                rule,
                outcome: crate::runner::Outcome::of(pass, verdict),
                note,
                finding: None,
                why: None,
                millis: started.elapsed().as_millis(),
                trace,
                honest: None,
                side: String::new(),
            }
        }
    }
}

fn failed(
    case: &OidcCase,
    started: Instant,
    note: String,
    trace: Vec<crate::agent::Exchange>,
) -> CaseResult {
    CaseResult::harness_error(case, started, note, trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_loads_and_reaches_every_oidc_rule() {
        let cases = embedded().unwrap();
        assert!(cases.len() >= 20, "{}", cases.len());
        // Reached by tests/oidc_internal.rs flows a case file cannot express: a replayed
        // callback, /refresh or /introspect with no session, an OP the anchor does not know
        // or whose documents cannot be fetched.
        let by_flow = [
            "oidc.state.unknown",
            "oidc.session.missing",
            "oidc.op.unlisted",
            "oidc.op.fetch-failed",
        ];
        // The CIE reading's rules are expected by the cie-oidc-rp catalogue.
        let cie = crate::cie_oidc::embedded().unwrap();
        let cie_expected = crate::catalogue::expected_rules(&cie);
        let missing: Vec<&str> = crate::catalogue::rules_no_case_expects(&cases, "oidc.", &by_flow)
            .into_iter()
            .filter(|r| !cie_expected.contains(r))
            .collect();
        assert!(
            missing.is_empty(),
            "oidc rules no case expects: {missing:?}"
        );
    }

    #[test]
    fn bad_case_files_are_refused() {
        let ok = "id = \"x\"\ntitle = \"t\"\nfamily = \"login\"\n[expect]\nverdict = \"accept\"\n";
        assert!(parse_case("oidc/x.toml", ok).is_ok());
        assert!(parse_case("oidc/y.toml", ok).is_err());
        for typo in [
            "[plan]\nacr_level = \"L1\"\n",
            "[plan.id_token.pre_sign]\nremvoe = [\"nonce\"]\n",
            "[plan.id_token.encrypt]\nskip = true\n",
            "[plan.id_token.transport]\nstatus = 500\n",
            "[plan.userinfo.sign]\npublish_key = true\n",
        ] {
            assert!(
                parse_case("oidc/x.toml", &format!("{ok}{typo}")).is_err(),
                "{typo}"
            );
        }
        let planned = format!("{ok}[plan.userinfo.encrypt]\nskip = true\n");
        assert!(parse_case("oidc/x.toml", &planned).is_ok());
        let flow = ok.replace("[expect]", "flow = \"refresh-twice\"\n[expect]");
        assert_eq!(
            parse_case("oidc/x.toml", &flow).map(|c| c.flow).ok(),
            Some(OidcFlow::RefreshTwice)
        );
        assert_eq!(
            parse_case("oidc/x.toml", ok).map(|c| c.flow).ok(),
            Some(OidcFlow::Login)
        );
        let bad_flow = ok.replace("[expect]", "flow = \"refresh-thrice\"\n[expect]");
        assert!(parse_case("oidc/x.toml", &bad_flow).is_err());
        let rule = ok.replace(
            "verdict = \"accept\"",
            "verdict = \"reject\"\nrules = [\"oidc.nope\"]",
        );
        assert!(parse_case("oidc/x.toml", &rule).is_err());
    }
}
