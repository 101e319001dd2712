//! A fake SPID identity provider for testing service providers.
//!
//! It validates incoming AuthnRequests like a real SPID IdP (error codes nr4–nr18), logs test
//! users in with a password and, for level 2 and 3, an OTP, asks consent, and answers with a
//! signed Response. Its point is **fault injection**: arm a [`FaultPlan`] (in process with
//! [`IdentityProvider::arm`], or over HTTP at `POST /admin/arm` with the admin token) and the
//! next Response is built honestly, then altered as the plan says.
#![warn(missing_docs)]

pub mod cns;
pub mod faults;
pub mod oidc;
pub mod pages;
pub mod request;
pub mod test_idp;
pub mod users;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Duration, Utc};
pub use faults::FaultPlan;
use spid_core::cie::{self, IdpProfile};
use spid_core::clock::{SharedClock, SystemClock};
use spid_core::errors::{ErrorChannel, SpidError};
use spid_core::pending::{Full, PendingMap};
use spid_core::professional;
use spid_core::saml::binding::{self, MessageParam};
use spid_core::saml::dsig::{self, Credential};
use spid_core::saml::metadata::{self, EntityMetadata, IdpMetadataConfig};
use spid_core::saml::new_id;
use spid_core::saml::response::{
    sign_response_to_xml, sign_response_with, AssertionModel, ResponseModel, SignParts, StatusModel,
};
use spid_core::saml::xml::{self, Limits};
use spid_core::{satisfies, Comparison, SpidLevel};
use spid_net::FormLimits;
pub use spid_net::ServeLimits;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
pub use test_idp::TestIdp;
use users::User;

/// IdP configuration. [`IdpConfig::new`] gives working defaults.
#[derive(Debug, Clone)]
pub struct IdpConfig {
    /// Base URL (no trailing slash); also the entityID.
    pub base_url: String,
    /// entityID.
    pub entity_id: String,
    /// The IdP's signing credential (in its metadata).
    pub credential: Credential,
    /// A foreign credential for the foreign-key faults.
    pub foreign: Credential,
    /// Test users.
    pub users: Vec<User>,
    /// Time source.
    pub clock: SharedClock,
    /// Accepted distance of a request's IssueInstant from now.
    pub skew: Duration,
    /// Time allowed from request to credentials (nr21 beyond it).
    pub login_timeout: Duration,
    /// Wrong passwords or OTPs before nr19.
    pub max_attempts: u32,
    /// Lifetime of Assertions.
    pub assertion_ttl: Duration,
    /// Token for the admin endpoints (`Authorization: Bearer …`); None disables them.
    pub admin_token: Option<String>,
    /// Refuse requests SPID forbids but generic SAML stacks send (see `request::Ctx::strict`).
    pub strict_requests: bool,
    /// Assert this level on every login instead of the one granted (for testing SPs; a
    /// case's plan still takes precedence).
    pub grant_level: Option<SpidLevel>,
    /// SPID (default) or CIE ID: the CIE profile has the CIE entityID, endpoints, metadata,
    /// request rules, error table and Response shape ([`IdpConfig::cie`], docs/cie.md).
    pub profile: IdpProfile,
    /// CIE profile: whether the Assertion Issuer carries `Format` entity (the CIE examples show
    /// it with and without; default with). The Response Issuer never does in CIE.
    pub cie_assertion_issuer_format: bool,
    /// CIE profile: the certificate of the second signing key the metadata publishes for key
    /// rollover (DER; nothing is signed with it).
    pub cie_rollover_cert: Option<Vec<u8>>,
}

impl IdpConfig {
    /// Defaults for an IdP at `base_url` with the default users.
    pub fn new(base_url: &str, credential: Credential, foreign: Credential) -> Self {
        let base = base_url.trim_end_matches('/').to_string();
        IdpConfig {
            entity_id: base.clone(),
            base_url: base,
            credential,
            foreign,
            users: users::parse(users::DEFAULT_USERS).unwrap_or_default(),
            clock: Arc::new(SystemClock),
            skew: Duration::minutes(3),
            login_timeout: Duration::minutes(10),
            max_attempts: 3,
            assertion_ttl: Duration::minutes(5),
            admin_token: None,
            grant_level: None,
            strict_requests: true,
            profile: IdpProfile::Spid,
            cie_assertion_issuer_format: true,
            cie_rollover_cert: None,
        }
    }

    /// Defaults for a CIE ID IdP at `base_url`: entityID `<base>/idp/profile/SAML2/POST/SSO`,
    /// the CIE users (`fixtures/cie-users.toml`), the second signing certificate
    /// `certs/cie-rollover.crt.pem` in the metadata.
    pub fn cie(base_url: &str, credential: Credential, foreign: Credential) -> Self {
        let mut c = IdpConfig::new(base_url, credential, foreign);
        c.entity_id = cie::entity_id(&c.base_url);
        c.users = users::parse(users::CIE_USERS).unwrap_or_default();
        c.profile = IdpProfile::Cie;
        c.cie_rollover_cert = Credential::from_pem(
            include_bytes!("../../../certs/cie-rollover.key.pem"),
            include_bytes!("../../../certs/cie-rollover.crt.pem"),
        )
        .ok()
        .map(|c| c.cert_der);
        c
    }

    /// The SSO URL (in the CIE profile, the HTTP-Redirect one; see [`Self::sso_locations`]).
    pub fn sso_url(&self) -> String {
        match self.profile {
            IdpProfile::Spid => format!("{}/sso", self.base_url),
            IdpProfile::Cie => format!("{}{}", self.base_url, cie::SSO_REDIRECT_PATH),
        }
    }

    /// The SSO location of each binding: (HTTP-Redirect, HTTP-POST). One URL for both in SPID.
    pub fn sso_locations(&self) -> (String, String) {
        match self.profile {
            IdpProfile::Spid => (self.sso_url(), self.sso_url()),
            IdpProfile::Cie => (
                format!("{}{}", self.base_url, cie::SSO_REDIRECT_PATH),
                format!("{}{}", self.base_url, cie::SSO_POST_PATH),
            ),
        }
    }

    /// Where the metadata is served (`/metadata`; in CIE also `/idp/shibboleth`).
    pub fn metadata_url(&self) -> String {
        match self.profile {
            IdpProfile::Spid => format!("{}/metadata", self.base_url),
            IdpProfile::Cie => format!("{}{}", self.base_url, cie::METADATA_PATH),
        }
    }
}

/// Why the IdP could not be set up or an SP registered.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    /// Metadata problem.
    #[error(transparent)]
    Metadata(#[from] metadata::MetadataError),
    /// Signing problem.
    #[error(transparent)]
    Dsig(#[from] dsig::DsigError),
    /// SP metadata unusable.
    #[error("SP metadata: {0}")]
    Sp(String),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Credentials,
    Otp,
    Consent,
}

#[derive(Debug, Clone)]
struct Txn {
    req: request::ValidRequest,
    created: DateTime<Utc>,
    attempts: u32,
    user: Option<User>,
    granted: Option<SpidLevel>,
    stage: Stage,
    /// The harness case this login belongs to (the [`CASE_COOKIE`] the browser sent to /sso).
    case: Option<String>,
}

/// The cookie through which the harness's browser names the case a login belongs to, so that
/// cases armed with [`IdentityProvider::arm_for`] can run concurrently.
pub const CASE_COOKIE: &str = "spid-harness-case";

/// What the IdP knows of a case's login when the harness disarms it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseEnd {
    /// Why the case's plan could not be carried out (a missed target).
    pub plan_error: Option<String>,
    /// Why the IdP refused the login's AuthnRequest (`nrN: detail`).
    pub refused: Option<String>,
    /// The honest Response (no edit) the case's plan was applied to, when it had one: digests
    /// computed, each `SignatureValue` the real one where the plan left that part alone, else
    /// [`spid_core::saml::dsig::PREVIEW_SIGNATURE_VALUE`].
    pub honest: Option<String>,
}

/// The response header of the page the IdP shows instead of a Response whose fault plan
/// missed its target.
pub const PLAN_ERROR_HEADER: &str = "x-spid-harness-plan-error";

/// One Response the IdP sent, for the harness's trace and replay cases.
#[derive(Debug, Clone)]
pub struct SentResponse {
    /// ACS it went to.
    pub acs_url: String,
    /// The XML as sent.
    pub xml: String,
    /// RelayState.
    pub relay_state: Option<String>,
}

struct Inner {
    cfg: IdpConfig,
    metadata_xml: String,
    /// The metadata as a tree, for the plans that wrap a foreign signed element in a
    /// Response; read once, on the first Response.
    metadata_el: std::sync::OnceLock<Option<xml::Element>>,
    sps: RwLock<Vec<EntityMetadata>>,
    /// Logins between `/sso` and the consent, bounded globally and per SP (see
    /// [`spid_core::pending`]: a flood is refused with nr2 / HTTP 503, never evicts a login).
    txns: Mutex<PendingMap<Txn>>,
    /// AuthnRequests already answered, by SP entityID and request ID, for as long as their
    /// IssueInstant would still pass the freshness check (twice the skew): each is answered
    /// once.
    answered: Mutex<PendingMap<()>>,
    plan: Mutex<Option<FaultPlan>>,
    /// Plans armed per case token ([`CASE_COOKIE`]).
    plans: Mutex<HashMap<String, FaultPlan>>,
    /// Why a case's plan could not be carried out (a missed target), per case token ("" for
    /// the global plan).
    plan_errors: Mutex<HashMap<String, String>>,
    /// Why an AuthnRequest was refused, per case token.
    refusals: Mutex<HashMap<String, String>>,
    /// The honest Response a case's plan was applied to, per case token.
    honest: Mutex<HashMap<String, String>>,
    last: Mutex<Option<SentResponse>>,
    /// Issued transient NameIDs and the SP each went to, for Single Logout.
    sessions: Mutex<HashMap<String, String>>,
}

/// The fake IdP. Cheap to clone.
#[derive(Clone)]
pub struct IdentityProvider(Arc<Inner>);

const MAX_TXNS: usize = 10_000;
/// Logins in progress one SP may hold (the rest of [`MAX_TXNS`] stays for the others).
const MAX_TXNS_PER_SP: usize = 5_000;
/// AuthnRequest IDs remembered at most (each lives twice the skew).
const MAX_ANSWERED: usize = 100_000;
/// AuthnRequest IDs one SP may have remembered.
const MAX_ANSWERED_PER_SP: usize = 50_000;

impl IdentityProvider {
    /// Builds the IdP and signs its metadata.
    pub fn new(cfg: IdpConfig) -> Result<Self, IdpError> {
        dsig::init();
        let metadata_xml = match cfg.profile {
            IdpProfile::Spid => metadata::build_idp(
                &IdpMetadataConfig {
                    entity_id: cfg.entity_id.clone(),
                    sso_url: cfg.sso_url(),
                    slo_url: format!("{}/slo", cfg.base_url),
                    organization_name: "spid-harness test IdP".into(),
                    organization_url: format!("{}/", cfg.base_url),
                },
                &cfg.credential,
            )?,
            // Unsigned and Shibboleth-shaped, as the real CIE IdP's.
            IdpProfile::Cie => cie::build_idp_metadata(&cie::IdpMetadataConfig {
                base_url: cfg.base_url.clone(),
                signing_certs: std::iter::once(cfg.credential.cert_der.clone())
                    .chain(cfg.cie_rollover_cert.clone())
                    .collect(),
                organization_name: "spid-harness test CIE ID IdP".into(),
            }),
        };
        Ok(IdentityProvider(Arc::new(Inner {
            cfg,
            metadata_xml,
            metadata_el: std::sync::OnceLock::new(),
            sps: RwLock::new(Vec::new()),
            txns: Mutex::new(PendingMap::new(MAX_TXNS, MAX_TXNS_PER_SP)),
            answered: Mutex::new(PendingMap::new(MAX_ANSWERED, MAX_ANSWERED_PER_SP)),
            plan: Mutex::new(None),
            plans: Mutex::new(HashMap::new()),
            plan_errors: Mutex::new(HashMap::new()),
            refusals: Mutex::new(HashMap::new()),
            honest: Mutex::new(HashMap::new()),
            last: Mutex::new(None),
            sessions: Mutex::new(HashMap::new()),
        })))
    }

    /// The signed IdP metadata.
    pub fn metadata_xml(&self) -> &str {
        &self.0.metadata_xml
    }

    /// The configuration.
    pub fn config(&self) -> &IdpConfig {
        &self.0.cfg
    }

    /// Registers an SP from its metadata (which must carry a signing certificate and an ACS).
    /// Returns its entityID; re-registering replaces it.
    pub fn register_sp(&self, xml: &str) -> Result<String, IdpError> {
        let m = metadata::parse(xml)?;
        let sp =
            m.sp.as_ref()
                .ok_or_else(|| IdpError::Sp("no SPSSODescriptor".into()))?;
        if m.signing_certs.is_empty() {
            return Err(IdpError::Sp("no signing certificate".into()));
        }
        if sp.acs.is_empty() {
            return Err(IdpError::Sp("no AssertionConsumerService".into()));
        }
        let id = m.entity_id.clone();
        let mut sps = self.0.sps.write().unwrap_or_else(|e| e.into_inner());
        sps.retain(|x| x.entity_id != id);
        sps.push(m);
        Ok(id)
    }

    /// Arms `plan` for the next Response (replacing any armed plan).
    pub fn arm(&self, plan: FaultPlan) {
        *self.0.plan.lock().unwrap_or_else(|e| e.into_inner()) = Some(plan);
    }

    /// Disarms any plan.
    pub fn disarm(&self) {
        *self.0.plan.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.0
            .plan_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove("");
    }

    /// Arms `plan` for the login whose browser sends [`CASE_COOKIE`] = `case` (replacing any
    /// plan armed for it). Logins without the cookie use the plan of [`Self::arm`].
    pub fn arm_for(&self, case: &str, plan: FaultPlan) {
        let mut plans = self.0.plans.lock().unwrap_or_else(|e| e.into_inner());
        if plans.len() >= MAX_TXNS {
            plans.clear();
        }
        plans.insert(case.to_string(), plan);
    }

    /// Forgets the plan armed for `case`; says why it could not be carried out, if it missed
    /// its target, and why the IdP refused that login's AuthnRequest, if it did.
    pub fn disarm_for(&self, case: &str) -> CaseEnd {
        self.0
            .plans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(case);
        let refused = self
            .0
            .refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(case);
        let honest = self
            .0
            .honest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(case);
        CaseEnd {
            honest,
            plan_error: self
                .0
                .plan_errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(case),
            refused,
        }
    }

    /// Why the global plan could not be carried out, if it missed its target.
    pub fn plan_error(&self) -> Option<String> {
        self.0
            .plan_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get("")
            .cloned()
    }

    /// Logins in progress held in memory (expired ones not yet dropped included): bounded by
    /// a global and a per-SP limit, whatever the traffic.
    pub fn pending_logins(&self) -> usize {
        self.0.txns.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// AuthnRequest IDs remembered as answered (bounded like [`Self::pending_logins`]).
    pub fn answered_requests(&self) -> usize {
        self.0
            .answered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// The last Response sent.
    pub fn last_response(&self) -> Option<SentResponse> {
        self.0
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The router: `/metadata`, `/sso` (GET Redirect, POST), `/login`, `/otp`, `/consent`,
    /// and `/admin/arm`, `/admin/sp` (token-protected). The CIE profile adds the Shibboleth
    /// paths: `/idp/shibboleth` (metadata), `/idp/profile/SAML2/{POST,Redirect}/SSO` (the
    /// same SSO handlers) and `/idp/profile/SAML2/{POST,Redirect}/SLO` (simple logout).
    pub fn router(&self) -> Router {
        let r = Router::new();
        let r = match self.0.cfg.profile {
            IdpProfile::Spid => r,
            IdpProfile::Cie => r
                .route(cie::METADATA_PATH, get(metadata_handler))
                .route(cie::SSO_POST_PATH, get(sso_get).post(sso_post))
                .route(cie::SSO_REDIRECT_PATH, get(sso_get).post(sso_post))
                .route(cie::SLO_POST_PATH, get(slo_get).post(slo_post))
                .route(cie::SLO_REDIRECT_PATH, get(slo_get).post(slo_post))
                // The login pages' forms post relative to the SSO location.
                .route("/idp/profile/SAML2/POST/login", post(login))
                .route("/idp/profile/SAML2/Redirect/login", post(login))
                .route("/idp/profile/SAML2/POST/otp", post(otp))
                .route("/idp/profile/SAML2/Redirect/otp", post(otp))
                .route("/idp/profile/SAML2/POST/consent", post(consent))
                .route("/idp/profile/SAML2/Redirect/consent", post(consent)),
        };
        r.route(
            "/",
            get(|| async { "spid-harness test IdP: see /metadata" }),
        )
        .route("/metadata", get(metadata_handler))
        .route("/sso", get(sso_get).post(sso_post))
        .route("/login", post(login))
        .route("/otp", post(otp))
        .route("/consent", post(consent))
        .route("/slo", get(slo_get).post(slo_post))
        .route("/admin/arm", post(admin_arm))
        .route("/admin/sp", post(admin_sp))
        .layer(DefaultBodyLimit::max(1 << 20))
        .with_state(self.clone())
    }

    /// The router with an OpenID Provider nested at `/oidc/op` (its entity id must be
    /// `<base_url>/oidc/op`, see [`IdentityProvider::op_config`]).
    pub fn router_with_op(&self, op: &oidc::op::OpenIdProvider) -> Router {
        self.router().nest("/oidc/op", op.router())
    }

    /// Serves the IdP with `op` nested at `/oidc/op` on `listener`.
    pub async fn serve_with_op(
        self,
        listener: tokio::net::TcpListener,
        op: &oidc::op::OpenIdProvider,
    ) -> std::io::Result<()> {
        spid_net::serve(listener, self.router_with_op(op), ServeLimits::default()).await
    }

    /// OpenID Provider defaults for this IdP: entity id `<base_url>/oidc/op`, the same users
    /// and clock, so the OP logs the same people in on the same pages.
    pub fn op_config(&self) -> oidc::op::OpConfig {
        let cfg = &self.0.cfg;
        let mut op = oidc::op::OpConfig::new(
            &format!("{}/oidc/op", cfg.base_url),
            cfg.users.clone(),
            cfg.clock.clone(),
        );
        op.admin_token = cfg.admin_token.clone();
        op
    }

    /// Serves on `listener` within the default [`ServeLimits`].
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        self.serve_limited(listener, ServeLimits::default()).await
    }

    /// Serves on `listener` within `limits` (with an OP nested, pass
    /// [`IdentityProvider::router_with_op`] to [`spid_net::serve`]).
    pub async fn serve_limited(
        self,
        listener: tokio::net::TcpListener,
        limits: ServeLimits,
    ) -> std::io::Result<()> {
        spid_net::serve(listener, self.router(), limits).await
    }

    fn take_plan(&self, case: Option<&str>) -> FaultPlan {
        match case {
            Some(c) => self
                .0
                .plans
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(c),
            None => self.0.plan.lock().unwrap_or_else(|e| e.into_inner()).take(),
        }
        .unwrap_or_default()
    }

    /// Builds the Response for `req` (a login by `user` at `granted`, or `error`), applies the
    /// armed plan, and returns the auto-posting form page.
    fn respond(
        &self,
        t: &Txn,
        user: Option<&User>,
        granted: Option<SpidLevel>,
        error: Option<SpidError>,
    ) -> Response {
        let req = &t.req;
        let plan = self.take_plan(t.case.as_deref());
        let cfg = &self.0.cfg;
        let now = cfg.clock.now();
        let cie = cfg.profile == IdpProfile::Cie;
        if let Some(e) = plan.spid_error().filter(|e| cie && !cie::sendable(*e)) {
            return self.plan_missed(
                t.case.as_deref(),
                format!(
                    "the CIE error table never sends nr{} (reserved or not CIE)",
                    e.0
                ),
            );
        }
        let error = plan.spid_error().or(error);
        let assertion = match (error, user, granted) {
            (None, Some(u), Some(level)) => {
                let level = plan.level.or(cfg.grant_level).unwrap_or(level);
                Some(AssertionModel {
                    id: new_id(),
                    issue_instant: now,
                    issuer: cfg.entity_id.clone(),
                    name_id: new_id(),
                    name_qualifier: cfg.entity_id.clone(),
                    recipient: req.acs_url.clone(),
                    in_response_to: req.id.clone(),
                    confirmation_not_on_or_after: now + cfg.assertion_ttl,
                    not_before: now,
                    not_on_or_after: now + cfg.assertion_ttl,
                    audience: req.sp.clone(),
                    authn_instant: now,
                    // SPID: SessionIndex only when L1 was requested; CIE: at every level.
                    session_index: (cie || req.level == SpidLevel::L1).then(new_id),
                    authn_context_class_ref: level.uri().to_string(),
                    attributes: match &plan.attributes {
                        // A chosen set: the user's value, or a placeholder.
                        Some(names) => names
                            .iter()
                            .map(|n| {
                                (
                                    n.clone(),
                                    u.attributes
                                        .get(n)
                                        .cloned()
                                        .unwrap_or_else(|| format!("test-{n}")),
                                )
                            })
                            .collect(),
                        // CIE: always the eIDAS minimum set, whatever was requested; SPID:
                        // the requested set, with a Purpose also the identity type's (the
                        // same set the consent page showed).
                        None => released(req, u, cfg.profile),
                    },
                })
            }
            _ => None,
        };
        if let Some(a) = &assertion {
            let mut sessions = self.0.sessions.lock().unwrap_or_else(|e| e.into_inner());
            if sessions.len() >= MAX_TXNS {
                sessions.clear();
            }
            sessions.insert(a.name_id.clone(), req.sp.clone());
        }
        let status = match error {
            Some(e) => StatusModel::spid_error(e),
            None => StatusModel::success(),
        };
        let model = ResponseModel {
            id: new_id(),
            issue_instant: now,
            in_response_to: req.id.clone(),
            destination: req.acs_url.clone(),
            issuer: cfg.entity_id.clone(),
            status,
            assertion,
        };
        // The honest message this case's plan edits, for the report's diff: signed after the
        // edited one, in preview (no RSA: the parts the plan left alone get their real value).
        let twin = (t.case.is_some() && plan != FaultPlan::default()).then(|| model.clone());
        let sent = self.send(model, &plan, &req.acs_url, req.relay_state.as_deref());
        if let (Some(case), Some(model), Ok(_)) = (&t.case, twin, &sent) {
            let cfg = &self.0.cfg;
            let both = SignParts {
                assertion: true,
                response: true,
            };
            let keyinfo = cfg.credential.cert_base64();
            let signed = spid_core::saml::dsig::preview(|| {
                spid_core::saml::response::sign_response(
                    self.shaped(&model),
                    &cfg.credential,
                    both,
                    Some(&keyinfo),
                )
            });
            if let Ok(el) = signed {
                let mut h = self.0.honest.lock().unwrap_or_else(|e| e.into_inner());
                if h.len() >= MAX_TXNS {
                    h.clear();
                }
                h.insert(case.clone(), el.to_xml());
            }
        }
        match sent {
            Ok(r) => r,
            Err(e) => self.plan_missed(t.case.as_deref(), e.to_string()),
        }
    }

    /// The Response as this profile shapes it, before any plan edit: in CIE the Response
    /// Issuer has no Format, and the Assertion Issuer has one only when
    /// [`IdpConfig::cie_assertion_issuer_format`] says so.
    fn shaped(&self, model: &ResponseModel) -> xml::Element {
        let cfg = &self.0.cfg;
        let mut el = model.to_element();
        if cfg.profile == IdpProfile::Cie {
            let drop_format = |target| faults::Mutation::RemoveAttr {
                target,
                name: "Format".into(),
            };
            let mut shape = vec![drop_format(faults::Target::ResponseIssuer)];
            if model.assertion.is_some() && !cfg.cie_assertion_issuer_format {
                shape.push(drop_format(faults::Target::AssertionIssuer));
            }
            let ctx = faults::MutationCtx {
                now: cfg.clock.now(),
                signed_foreign: None,
            };
            // Both Issuers carry Format in the model: the edits cannot miss.
            let _ = faults::apply_stage(&mut el, faults::Stage::PreSign, &shape, &ctx);
        }
        el
    }

    /// A plan that cannot be carried out is a harness error, never a silently different
    /// message: no Response goes out; the reason is kept for the harness and shown.
    fn plan_missed(&self, case: Option<&str>, why: String) -> Response {
        tracing::error!(
            case = case.unwrap_or("-"),
            "fault plan not carried out: {why}"
        );
        self.0
            .plan_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(case.unwrap_or_default().to_string(), why.clone());
        let mut r = html(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::error("Fault plan not carried out", None, &why),
        );
        r.headers_mut().insert(
            PLAN_ERROR_HEADER,
            HeaderValue::from_str(&why.replace(|c: char| !c.is_ascii_graphic() && c != ' ', "?"))
                .unwrap_or(HeaderValue::from_static("plan error")),
        );
        r
    }

    /// Builds, signs and edits the Response as `plan` says; an edit that finds no target is an
    /// error (its message names the stage and the edit).
    fn send(
        &self,
        model: ResponseModel,
        plan: &FaultPlan,
        acs: &str,
        relay: Option<&str>,
    ) -> Result<Response, faults::PlanError> {
        let cfg = &self.0.cfg;
        let foreign_el = self.0.metadata_el.get_or_init(|| {
            xml::parse(
                &self.0.metadata_xml,
                &Limits {
                    max_bytes: 1 << 20,
                    ..Limits::default()
                },
            )
            .ok()
        });
        let ctx = faults::MutationCtx {
            now: cfg.clock.now(),
            signed_foreign: foreign_el.as_ref(),
        };
        let mut el = self.shaped(&model);
        faults::apply_stage(&mut el, faults::Stage::PreSign, &plan.pre_sign, &ctx)?;
        let cred = match plan.sign.key {
            faults::SigningKey::Idp => &cfg.credential,
            faults::SigningKey::Foreign => &cfg.foreign,
        };
        let keyinfo = match plan.sign.keyinfo {
            faults::KeyInfoCert::Signer => Some(cred.cert_base64()),
            faults::KeyInfoCert::Idp => Some(cfg.credential.cert_base64()),
            faults::KeyInfoCert::Foreign => Some(cfg.foreign.cert_base64()),
            faults::KeyInfoCert::None => None,
        };
        let parts = SignParts {
            assertion: plan.sign.assertion,
            response: plan.sign.response,
        };
        let (keyinfo, algs) = (keyinfo.as_deref(), plan.sign.algorithms());
        let signed = if parts != SignParts::NONE && plan.post_sign.is_empty() {
            // Only serialised next: the signed tree need not be read back first.
            sign_response_to_xml(el, cred, parts, keyinfo, algs)
        } else {
            let signed = if parts == SignParts::NONE {
                Ok(el)
            } else {
                sign_response_with(el, cred, parts, keyinfo, algs)
            };
            match signed {
                Ok(mut el) => {
                    faults::apply_stage(&mut el, faults::Stage::PostSign, &plan.post_sign, &ctx)?;
                    Ok(el.to_xml())
                }
                Err(e) => Err(e),
            }
        };
        let xml = match signed {
            Ok(xml) => xml,
            Err(e) => {
                return Ok(html(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    pages::error("Signing failed", Some(3), &e.to_string()),
                ))
            }
        };
        let xml = faults::apply_raw(xml, &plan.raw)?;
        *self.0.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(SentResponse {
            acs_url: acs.to_string(),
            xml: xml.clone(),
            relay_state: relay.map(str::to_string),
        });
        let Ok(action) = url::Url::parse(acs) else {
            return Ok(html(
                StatusCode::BAD_REQUEST,
                pages::error("Bad ACS URL", Some(16), acs),
            ));
        };
        let value = match plan.binding {
            None => binding::encode_post(&xml),
            Some(faults::BindingFault::Missing) => String::new(),
            Some(faults::BindingFault::NotBase64) => "%%% not base64 %%%".into(),
            Some(faults::BindingFault::NotUtf8) => {
                use base64::Engine as _;
                let mut bytes = xml.clone().into_bytes();
                let at = xml.find("</").unwrap_or(bytes.len());
                bytes.splice(at..at, [0xC3, 0x28]);
                base64::engine::general_purpose::STANDARD.encode(bytes)
            }
            Some(faults::BindingFault::Oversize) => {
                binding::encode_post(&format!("{xml}{}", " ".repeat(300 * 1024)))
            }
        };
        Ok(html(
            StatusCode::OK,
            binding::post_form_html(&action, MessageParam::SamlResponse, &value, relay),
        ))
    }

    fn refuse(&self, r: request::Refusal) -> Response {
        let rule = r.rule;
        let answer = self.refuse_unnamed(r);
        match rule {
            Some(rule) => with_rule(answer, rule),
            None => answer,
        }
    }

    fn refuse_unnamed(&self, r: request::Refusal) -> Response {
        tracing::info!(nr = r.error.0, detail = %r.detail, "request refused");
        match (&r.to_sp, r.error.channel()) {
            (Some((acs, irt, relay)), ErrorChannel::Response { .. }) => {
                let cfg = &self.0.cfg;
                let model = ResponseModel {
                    id: new_id(),
                    issue_instant: cfg.clock.now(),
                    in_response_to: irt.clone(),
                    destination: acs.clone(),
                    issuer: cfg.entity_id.clone(),
                    status: StatusModel::spid_error(r.error),
                    assertion: None,
                };
                let plan = FaultPlan::default();
                self.send(model, &plan, acs, relay.as_deref())
                    .unwrap_or_else(|e| self.plan_missed(None, e.to_string()))
            }
            (_, ErrorChannel::UserPage { http_status }) => html(
                StatusCode::from_u16(http_status).unwrap_or(StatusCode::FORBIDDEN),
                pages::error("Richiesta non valida", Some(r.error.0), &r.detail),
            ),
            _ => html(
                StatusCode::BAD_REQUEST,
                pages::error("Richiesta non valida", Some(r.error.0), &r.detail),
            ),
        }
    }

    fn start(&self, incoming: request::Incoming<'_>, case: Option<String>) -> Response {
        let cfg = &self.0.cfg;
        let sps = self.0.sps.read().unwrap_or_else(|e| e.into_inner()).clone();
        let sso = cfg.sso_url();
        let (sso_redirect, sso_post) = cfg.sso_locations();
        let ctx = request::Ctx {
            entity_id: &cfg.entity_id,
            sso_url: &sso,
            sps: &sps,
            now: cfg.clock.now(),
            skew: cfg.skew,
            strict: cfg.strict_requests,
            profile: cfg.profile,
            sso_locations: (&sso_redirect, &sso_post),
        };
        match request::check(incoming, &ctx) {
            Err(r) => {
                if let Some(c) = &case {
                    let mut m = self.0.refusals.lock().unwrap_or_else(|e| e.into_inner());
                    if m.len() >= MAX_TXNS {
                        m.clear();
                    }
                    m.insert(
                        c.clone(),
                        format!(
                            "{} error nr{}: {}",
                            cfg.profile.as_str().to_uppercase(),
                            r.error.0,
                            r.detail
                        ),
                    );
                }
                self.refuse(r)
            }
            Ok(req) => {
                let txn = format!("{:032x}", rand::random::<u128>());
                let body = pages::login(
                    &txn,
                    &req.sp,
                    &format!("{} {}", req.comparison.as_str(), req.level),
                    None,
                );
                let now = cfg.clock.now();
                let answered_key = format!("{}\n{}", req.sp, req.id);
                let sp = req.sp.clone();
                let mut answered = self.0.answered.lock().unwrap_or_else(|e| e.into_inner());
                if answered.contains(&answered_key, now) {
                    drop(answered);
                    return self.refuse_replay(&req.id, case.as_deref());
                }
                let mut txns = self.0.txns.lock().unwrap_or_else(|e| e.into_inner());
                let t = Txn {
                    req,
                    created: now,
                    attempts: 0,
                    user: None,
                    granted: None,
                    stage: Stage::Credentials,
                    case,
                };
                // Kept past the timeout so that a late step still gets nr21, not "unknown".
                let until = now + cfg.login_timeout * 2;
                if let Err(full) = txns.insert(txn.clone(), t, Some(&sp), until, now) {
                    return busy(full);
                }
                if let Err(full) =
                    answered.insert(answered_key, (), Some(&sp), now + cfg.skew * 2, now)
                {
                    txns.remove(&txn);
                    return busy(full);
                }
                html(StatusCode::OK, body)
            }
        }
    }

    /// The page for a replayed AuthnRequest: nothing goes to the SP (the browser that replays
    /// it need not be the one that brought it), the harness's case learns why.
    fn refuse_replay(&self, id: &str, case: Option<&str>) -> Response {
        let rule = spid_core::Rule::IdpRequestReplayed;
        let detail = format!("AuthnRequest {id} was already answered ({})", rule.code());
        tracing::info!(%detail, "request refused");
        if let Some(c) = case {
            let mut m = self.0.refusals.lock().unwrap_or_else(|e| e.into_inner());
            if m.len() >= MAX_TXNS {
                m.clear();
            }
            m.insert(c.to_string(), detail.clone());
        }
        with_rule(
            html(
                StatusCode::FORBIDDEN,
                pages::error("Richiesta già usata", None, &detail),
            ),
            rule,
        )
    }

    /// The answer after the last wrong password or OTP: SPID nr19 to the SP; in CIE (where
    /// nr19 is reserved) a 403 IdP page, nothing sent to the SP.
    fn too_many_attempts(&self, t: &Txn) -> Response {
        match self.0.cfg.profile {
            IdpProfile::Spid => self.respond(t, None, None, Some(SpidError::WRONG_CREDENTIALS)),
            IdpProfile::Cie => html(
                StatusCode::FORBIDDEN,
                pages::error(
                    "Troppi tentativi",
                    None,
                    "Credenziali errate troppe volte: accesso bloccato.",
                ),
            ),
        }
    }

    /// Takes the transaction named in `fields` if it is at `stage`; answers nr21 past the timeout.
    fn txn(
        &self,
        fields: &[(String, String)],
        stage: Stage,
    ) -> Result<(String, Txn), Box<Response>> {
        let id = field(fields, "txn").unwrap_or_default();
        let now = self.0.cfg.clock.now();
        let mut txns = self.0.txns.lock().unwrap_or_else(|e| e.into_inner());
        let Some(t) = txns.get(id, now).filter(|t| t.stage == stage).cloned() else {
            return Err(Box::new(html(
                StatusCode::BAD_REQUEST,
                pages::error(
                    "Sessione di login sconosciuta",
                    None,
                    "Unknown or finished login; start again from the service.",
                ),
            )));
        };
        if now - t.created > self.0.cfg.login_timeout {
            txns.remove(id);
            drop(txns);
            return Err(Box::new(self.respond(
                &t,
                None,
                None,
                Some(SpidError::TIMEOUT),
            )));
        }
        Ok((id.to_string(), t))
    }

    /// Stores the next stage of a login taken with [`Self::txn`] (in place: its deadline, its
    /// SP's share and its slot stay).
    fn put(&self, id: &str, t: Txn) {
        let now = self.0.cfg.clock.now();
        if let Some(slot) = self
            .0
            .txns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(id, now)
        {
            *slot = t;
        }
    }

    fn finish(&self, id: &str) {
        self.0
            .txns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// The level the IdP grants `user` for a request of `level` under `cmp`: the user's strongest
/// credential when that satisfies the request (for `maximum`, no more than asked), or None.
pub fn grant(user_max: SpidLevel, level: SpidLevel, cmp: Comparison) -> Option<SpidLevel> {
    let candidate = match cmp {
        Comparison::Exact => level.min(user_max),
        Comparison::Maximum => level.min(user_max),
        Comparison::Minimum | Comparison::Better => user_max,
    };
    satisfies(level, cmp, candidate).then_some(candidate)
}

impl IdentityProvider {
    /// SP-initiated Single Logout: verifies the LogoutRequest with the SP's metadata
    /// certificate, ends the session of its NameID, and answers by the same binding.
    fn logout(&self, query: Option<&str>, form: &[(String, String)]) -> Response {
        use spid_core::saml::inbound::{self, Outgoing, Via};
        use spid_core::saml::logout::{LogoutRequest, LogoutResponse};
        use spid_core::saml::ns;
        let bad =
            |code: StatusCode, d: &str| html(code, pages::error("Logout non valido", None, d));
        let rec = match inbound::receive(MessageParam::SamlRequest, query, form) {
            Ok(r) => r,
            Err(e) => return bad(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let Some(req) = LogoutRequest::from_element(&rec.root) else {
            return bad(StatusCode::BAD_REQUEST, "not a LogoutRequest");
        };
        let sps = self.0.sps.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(sp) = sps.iter().find(|m| m.entity_id == req.issuer) else {
            return bad(
                StatusCode::FORBIDDEN,
                "the LogoutRequest Issuer is not a registered SP",
            );
        };
        if let Err(e) = rec.verify(&sp.signing_certs) {
            return bad(StatusCode::FORBIDDEN, &e.to_string());
        }
        let known = {
            let mut s = self.0.sessions.lock().unwrap_or_else(|e| e.into_inner());
            match s.get(&req.name_id) {
                Some(owner) if *owner == req.issuer => s.remove(&req.name_id).is_some(),
                _ => false,
            }
        };
        if self.0.cfg.profile == IdpProfile::Cie {
            // CIE "simple logout": the request is accepted, no LogoutResponse is sent.
            tracing::info!(known, "CIE simple logout: no LogoutResponse");
            return html(
                StatusCode::OK,
                pages::error(
                    "Logout",
                    None,
                    "Sessione CIE chiusa (simple logout: nessuna LogoutResponse).",
                ),
            );
        }
        let (status, sub) = if known {
            (ns::STATUS_SUCCESS, None)
        } else {
            (ns::STATUS_REQUESTER, Some(ns::STATUS_UNKNOWN_PRINCIPAL))
        };
        let want = match rec.via {
            Via::Redirect => ns::BINDING_REDIRECT,
            Via::Post => ns::BINDING_POST,
        };
        let slo = sp.sp.as_ref().map(|d| d.slo.clone()).unwrap_or_default();
        let Some(dest) = slo
            .iter()
            .find(|e| e.binding == want)
            .or(slo.first())
            .map(|e| e.location.clone())
        else {
            return bad(
                StatusCode::BAD_REQUEST,
                "the SP metadata has no SingleLogoutService",
            );
        };
        let via = if slo.iter().any(|e| e.binding == want) {
            rec.via
        } else {
            Via::Post
        };
        let cfg = &self.0.cfg;
        let resp =
            LogoutResponse::answer(&req, &cfg.entity_id, &dest, cfg.clock.now(), status, sub);
        match inbound::send(
            via,
            &dest,
            MessageParam::SamlResponse,
            resp.to_element(),
            rec.relay_state.as_deref(),
            &cfg.credential,
        ) {
            Ok(Outgoing::Redirect(u)) => redirect(u.as_str()),
            Ok(Outgoing::Form(page)) => html(StatusCode::OK, page),
            Err(e) => bad(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        }
    }
}

/// A 302 (SAML tooling expects 302, not axum's 303).
fn redirect(location: &str) -> Response {
    (
        StatusCode::FOUND,
        [(
            header::LOCATION,
            HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/")),
        )],
    )
        .into_response()
}

async fn slo_get(State(idp): State<IdentityProvider>, RawQuery(q): RawQuery) -> Response {
    idp.logout(q.as_deref(), &[])
}

async fn slo_post(
    State(idp): State<IdentityProvider>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let f = match form(&body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    idp.logout(q.as_deref(), &f)
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The body's fields within [`FormLimits::default`]; a refusal is the 400 to answer.
fn form(body: &Bytes) -> Result<Vec<(String, String)>, Box<Response>> {
    spid_net::form(body, &FormLimits::default()).map_err(|e| Box::new(e.into_response()))
}

/// nr2 (system unavailable, HTTP 503) with `server.pending.full`: the IdP holds as many logins
/// in progress as it may, none of which it will drop for a new one.
fn busy(full: Full) -> Response {
    tracing::warn!(%full, "login refused: pending-login store full");
    with_rule(
        html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::error(
                "Servizio temporaneamente non disponibile",
                Some(2),
                &full.to_string(),
            ),
        ),
        spid_core::Rule::ServerPendingFull,
    )
}

fn with_rule(response: Response, rule: spid_core::Rule) -> Response {
    oidc::with_rule(response, rule)
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn metadata_handler(State(idp): State<IdentityProvider>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/samlmetadata+xml")],
        idp.0.metadata_xml.clone(),
    )
        .into_response()
}

/// The harness case named by the browser's [`CASE_COOKIE`], if any.
pub(crate) fn case_of(headers: &HeaderMap) -> Option<String> {
    spid_core::cookie::session_cookie(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        CASE_COOKIE,
    )
}

async fn sso_get(
    State(idp): State<IdentityProvider>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    idp.start(
        request::Incoming::Redirect(q.as_deref().unwrap_or_default()),
        case_of(&headers),
    )
}

async fn sso_post(
    State(idp): State<IdentityProvider>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let f = match form(&body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    // HTTP-Redirect parameters POSTed in the query: the binding does not match the method (nr6).
    let in_query = q
        .as_deref()
        .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("SAMLRequest=")));
    if in_query && !f.iter().any(|(k, _)| k == "SAMLRequest") {
        return idp.refuse(request::Refusal {
            error: SpidError(6),
            detail: "HTTP-Redirect parameters sent with POST".into(),
            to_sp: None,
            rule: None,
        });
    }
    idp.start(request::Incoming::Post(&f), case_of(&headers))
}

async fn login(State(idp): State<IdentityProvider>, body: Bytes) -> Response {
    let f = match form(&body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let (id, mut t) = match idp.txn(&f, Stage::Credentials) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    if field(&f, "action") == Some("cancel") {
        idp.finish(&id);
        return idp.respond(&t, None, None, Some(SpidError::CANCELLED));
    }
    let username = field(&f, "username").unwrap_or_default();
    let password = field(&f, "password").unwrap_or_default();
    let level_text = format!("{} {}", t.req.comparison.as_str(), t.req.level);
    let user = idp
        .0
        .cfg
        .users
        .iter()
        .find(|u| u.username == username && u.password == password)
        .cloned();
    let Some(user) = user else {
        t.attempts += 1;
        if t.attempts >= idp.0.cfg.max_attempts {
            idp.finish(&id);
            return idp.too_many_attempts(&t);
        }
        let left = idp.0.cfg.max_attempts - t.attempts;
        let body = pages::login(
            &id,
            &t.req.sp,
            &level_text,
            Some(&format!("Credenziali errate ({left} tentativi rimasti)")),
        );
        idp.put(&id, t);
        return html(StatusCode::OK, body);
    };
    if user.status != users::Status::Active {
        idp.finish(&id);
        return idp.respond(&t, None, None, Some(SpidError::SUSPENDED));
    }
    // Avviso 18: the requested Purpose and the user's identity type decide, by the matrix
    // (an unknown Purpose value admits nobody).
    let type_ok = match t.req.request.purpose.as_deref() {
        None => professional::admits(None, user.identity_type),
        Some(v) => professional::Purpose::parse(v)
            .is_some_and(|p| professional::admits(Some(p), user.identity_type)),
    };
    if !type_ok {
        idp.finish(&id);
        return idp.respond(&t, None, None, Some(SpidError::WRONG_IDENTITY_TYPE));
    }
    let cie = idp.0.cfg.profile == IdpProfile::Cie;
    let granted = if cie && user.max_level() == SpidLevel::L3 {
        // CIE: a card login (card + PIN) is SpidL3, whatever was requested.
        Some(SpidLevel::L3)
    } else {
        grant(user.max_level(), t.req.level, t.req.comparison)
    };
    let Some(granted) = granted else {
        if cie {
            // nr20 is reserved in the CIE table: the user stays on the login page.
            let body = pages::login(
                &id,
                &t.req.sp,
                &level_text,
                Some(
                    "Le credenziali CieID non bastano per il livello richiesto: entra con la carta",
                ),
            );
            idp.put(&id, t);
            return html(StatusCode::OK, body);
        }
        idp.finish(&id);
        return idp.respond(&t, None, None, Some(SpidError::NO_CREDENTIALS_FOR_LEVEL));
    };
    t.attempts = 0;
    t.granted = Some(granted);
    let body = if granted >= SpidLevel::L2 {
        t.stage = Stage::Otp;
        pages::otp(&id, user.otp.as_deref().unwrap_or_default(), None)
    } else {
        t.stage = Stage::Consent;
        pages::consent(
            &id,
            &t.req.sp,
            granted.uri(),
            &released(&t.req, &user, idp.0.cfg.profile),
        )
    };
    t.user = Some(user);
    idp.put(&id, t);
    html(StatusCode::OK, body)
}

fn released(
    req: &request::ValidRequest,
    user: &User,
    profile: IdpProfile,
) -> Vec<(String, String)> {
    let mut names: Vec<String> = match profile {
        IdpProfile::Spid => req.attributes.clone(),
        IdpProfile::Cie => cie::MINIMUM_ATTRIBUTES.map(String::from).to_vec(),
    };
    if req.request.purpose.is_some() {
        // Avviso 18: a Purpose login carries the attributes of the user's identity type.
        for n in user
            .identity_type
            .carries()
            .iter()
            .flat_map(|any| any.iter())
        {
            if !names.iter().any(|m| m == n) {
                names.push((*n).to_string());
            }
        }
    }
    names
        .iter()
        .filter_map(|n| user.attributes.get(n).map(|v| (n.clone(), v.clone())))
        .collect()
}

async fn otp(State(idp): State<IdentityProvider>, body: Bytes) -> Response {
    let f = match form(&body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let (id, mut t) = match idp.txn(&f, Stage::Otp) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    if field(&f, "action") == Some("cancel") {
        idp.finish(&id);
        return idp.respond(&t, None, None, Some(SpidError::CANCELLED));
    }
    let Some(user) = t.user.clone() else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::error("Login incompleto", None, "no user"),
        );
    };
    let expected = user.otp.clone().unwrap_or_default();
    if field(&f, "otp").map(str::trim) != Some(expected.as_str()) || expected.is_empty() {
        t.attempts += 1;
        if t.attempts >= idp.0.cfg.max_attempts {
            idp.finish(&id);
            return idp.too_many_attempts(&t);
        }
        let body = pages::otp(&id, &expected, Some("OTP errato"));
        idp.put(&id, t);
        return html(StatusCode::OK, body);
    }
    t.stage = Stage::Consent;
    let level = t.granted.map(|l| l.uri()).unwrap_or_default();
    let body = pages::consent(
        &id,
        &t.req.sp,
        level,
        &released(&t.req, &user, idp.0.cfg.profile),
    );
    idp.put(&id, t);
    html(StatusCode::OK, body)
}

async fn consent(State(idp): State<IdentityProvider>, body: Bytes) -> Response {
    let f = match form(&body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let (id, t) = match idp.txn(&f, Stage::Consent) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    idp.finish(&id);
    if field(&f, "action") != Some("accept") {
        return idp.respond(&t, None, None, Some(SpidError::CONSENT_DENIED));
    }
    idp.respond(&t, t.user.as_ref(), t.granted, None)
}

fn authorized(idp: &IdentityProvider, headers: &HeaderMap) -> bool {
    let Some(token) = &idp.0.cfg.admin_token else {
        return false;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| constant_eq(t.as_bytes(), token.as_bytes()))
}

pub(crate) fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn admin_arm(
    State(idp): State<IdentityProvider>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&idp, &headers) {
        return (StatusCode::UNAUTHORIZED, "admin token required").into_response();
    }
    match serde_json::from_slice::<FaultPlan>(&body) {
        Ok(plan) => {
            idp.arm(plan);
            (StatusCode::OK, "armed").into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("bad plan: {e}")).into_response(),
    }
}

async fn admin_sp(
    State(idp): State<IdentityProvider>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&idp, &headers) {
        return (StatusCode::UNAUTHORIZED, "admin token required").into_response();
    }
    match idp.register_sp(&String::from_utf8_lossy(&body)) {
        Ok(id) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
            id,
        )
            .into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Comparison::*;
    use SpidLevel::*;

    #[test]
    fn grant_policy() {
        assert_eq!(grant(L2, L2, Minimum), Some(L2));
        assert_eq!(grant(L3, L2, Minimum), Some(L3));
        assert_eq!(grant(L1, L2, Minimum), None);
        assert_eq!(grant(L3, L2, Exact), Some(L2));
        assert_eq!(grant(L2, L2, Better), None);
        assert_eq!(grant(L3, L2, Better), Some(L3));
        assert_eq!(grant(L1, L3, Maximum), Some(L1));
        assert_eq!(grant(L3, L1, Maximum), Some(L1));
    }
}
