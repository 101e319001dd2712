//! The SPID OpenID Provider, mounted at `<idp base>/oidc/op`: entity configuration,
//! `/authorization` (signed request object, automatic registration through the trust anchor),
//! the SAML IdP's login / OTP / consent pages and users, `/token` (`private_key_jwt`, PKCE),
//! `/userinfo` (signed then encrypted), `/introspection` and `/revocation`; refresh tokens with
//! rotation for `offline_access`. An [`OpPlan`] alters one login's answers.

mod authorize;
mod introspect;
mod refresh;
pub mod request;
pub mod token;
mod userinfo;

use super::{entity_statement, json_error, new_signing_key};
use crate::users::User;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use spid_core::clock::SharedClock;
use spid_core::oidc::federation::{
    leaf_entity_configuration, leaf_entity_configuration_claims, trust_marks_from_file, EntityKeys,
    FederationError, LeafConfiguration, Membership, TrustMarkEntry, ENTITY_STATEMENT_TYP,
    TRUST_MARK_TYP,
};
use spid_core::oidc::jose::{decode_unverified, JoseError, Jwks, JwsHeader, SigningKey};
use spid_core::oidc::plan::{JsonPlan, JwtPlan, PlanMiss};
use spid_core::oidc::Profile;
use spid_core::pending::PendingMap;
use spid_core::SpidLevel;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

pub use request::{AuthzRefusal, ValidAuthz};

/// Bound on pending logins, codes and tokens kept in memory.
const MAX_ENTRIES: usize = 10_000;
/// Logins in progress one RP may hold (the rest of [`MAX_ENTRIES`] stays for the others).
const MAX_TXNS_PER_CLIENT: usize = 5_000;
/// Request objects remembered as answered, at most.
const MAX_ANSWERED: usize = 100_000;
/// Request objects one RP may have remembered.
const MAX_ANSWERED_PER_CLIENT: usize = 50_000;
/// The OP's single sign-on cookie.
pub const SSO_COOKIE: &str = "spid_op_sso";
/// Lifetime of an SSO session, seconds: `prompt=consent` skips authentication within it.
const SSO_TTL_SECS: i64 = 30 * 60;
/// Lifetime of an authorization code, seconds.
const CODE_TTL_SECS: i64 = 60;
/// Lifetime of the entity configuration, seconds.
const EC_TTL_SECS: i64 = 24 * 3600;

/// What the OP alters in one login's answers (the OIDC counterpart of the SAML
/// [`crate::FaultPlan`]): per message, the edits of [`spid_core::oidc::plan`], applied to the
/// honest message the OP builds first. Armed in process with [`OpenIdProvider::arm`]; taken by
/// the next authorization-code exchange. The grant it was taken for keeps it, so `userinfo`,
/// `refresh_*` and `introspection` act later on that login's tokens.
///
/// ```toml
/// [plan.id_token.pre_sign]
/// shift = { iat = -3600, nbf = -3600, exp = -3600 }   # expired an hour ago, still signed
/// [plan.userinfo.encrypt]
/// recipient = "foreign"                                # to a key the RP does not hold
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpPlan {
    /// The parameters of the authorization response (`code`, `state`, `iss`; `error`).
    #[serde(skip_serializing_if = "JsonPlan::is_empty")]
    pub authz_response: JsonPlan,
    /// The ID token of the code exchange.
    #[serde(skip_serializing_if = "JwtPlan::is_empty")]
    pub id_token: JwtPlan,
    /// The token response of the code exchange (its `transport` answers before any check).
    #[serde(skip_serializing_if = "JsonPlan::is_empty")]
    pub token_response: JsonPlan,
    /// The userinfo answer (signed, then encrypted to the RP).
    #[serde(skip_serializing_if = "JwtPlan::is_empty")]
    pub userinfo: JwtPlan,
    /// Every ID token refreshed from this login.
    #[serde(skip_serializing_if = "JwtPlan::is_empty")]
    pub refresh_id_token: JwtPlan,
    /// Every refresh answer of this login (its `transport` replaces a valid refresh).
    #[serde(skip_serializing_if = "JsonPlan::is_empty")]
    pub refresh_response: JsonPlan,
    /// The introspection answer for this login's access tokens.
    #[serde(skip_serializing_if = "JsonPlan::is_empty")]
    pub introspection: JsonPlan,
    /// The OP's entity configuration while the plan is armed.
    #[serde(skip_serializing_if = "JwtPlan::is_empty")]
    pub entity_configuration: JwtPlan,
    /// The trust marks the entity configuration carries (each re-signed by the plan).
    #[serde(skip_serializing_if = "JwtPlan::is_empty")]
    pub trust_mark: JwtPlan,
    /// The harness case the plan was armed for ([`OpenIdProvider::arm_for`]); not part of
    /// the grammar: the OP reports a miss to that case.
    #[serde(skip)]
    pub case: Option<String>,
}

impl OpPlan {
    /// Whether the plan spoils the OP's entity configuration: a relying party only sees that
    /// when it resolves the OP afresh (not from its cached trust chain).
    pub fn alters_federation(&self) -> bool {
        !self.entity_configuration.is_empty() || !self.trust_mark.is_empty()
    }

    /// Whether the plan changes nothing.
    pub fn is_honest(&self) -> bool {
        OpPlan {
            case: None,
            ..self.clone()
        } == OpPlan::default()
    }

    /// Checks what can be checked before any message exists: each message's plan uses only
    /// the stages that message has (ID tokens are never encrypted: SPID).
    pub fn check(&self) -> Result<(), OpPlanError> {
        self.check_with(false)
    }

    /// [`OpPlan::check`] where `id_tokens_encrypted`: the ID tokens are nest-encrypted JWTs
    /// (CIE, to an RP that declares it), so their plans may have an `encrypt` stage.
    pub fn check_with(&self, id_tokens_encrypted: bool) -> Result<(), OpPlanError> {
        let e = id_tokens_encrypted;
        let jwts = [
            ("id_token", &self.id_token, e, false),
            ("userinfo", &self.userinfo, true, true),
            ("refresh_id_token", &self.refresh_id_token, e, false),
            (
                "entity_configuration",
                &self.entity_configuration,
                false,
                true,
            ),
            ("trust_mark", &self.trust_mark, false, false),
        ];
        for (name, plan, encrypted, answer) in jwts {
            plan.check(encrypted, answer)
                .map_err(|reason| OpPlanError::Stage {
                    message: name,
                    reason,
                })?;
            if plan.sign.publish_key && name != "entity_configuration" {
                return Err(OpPlanError::PublishKey(name));
            }
        }
        if self.authz_response.transport.is_some() {
            return Err(OpPlanError::AuthzTransport);
        }
        Ok(())
    }
}

/// Why an [`OpPlan`] cannot be carried out, found before any message exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpPlanError {
    /// A message's plan uses a stage that message does not have.
    #[error("plan.{message}.{reason}")]
    Stage {
        /// The message (`id_token`, `userinfo`, …).
        message: &'static str,
        /// The stage at fault and why.
        reason: spid_core::oidc::plan::StageRefused,
    },
    /// A message other than the entity configuration would publish its key.
    #[error("plan.{0}.sign.publish_key: only an entity configuration publishes its keys")]
    PublishKey(&'static str),
    /// The authorization response (a redirect) has no HTTP answer to replace.
    #[error(
        "plan.authz_response.transport: the authorization response is a redirect; edit its parameters"
    )]
    AuthzTransport,
}

/// Why `POST /admin/arm` refused its body.
#[derive(Debug, thiserror::Error)]
enum ArmError {
    /// Not a JSON [`OpPlan`].
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A plan that cannot be carried out.
    #[error(transparent)]
    Plan(#[from] OpPlanError),
}

/// A planned HTTP answer in place of the endpoint's message.
pub(crate) fn transport(t: &spid_core::oidc::plan::Transport) -> Response {
    use axum::response::IntoResponse;
    let status = StatusCode::from_u16(t.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let ct = axum::http::HeaderValue::from_str(t.content_type())
        .unwrap_or(axum::http::HeaderValue::from_static("text/plain"));
    (
        status,
        [(axum::http::header::CONTENT_TYPE, ct)],
        t.body.clone(),
    )
        .into_response()
}

/// Why the entity configuration could not be produced.
#[derive(Debug, thiserror::Error)]
enum ConfigurationError {
    /// Building or signing it failed.
    #[error(transparent)]
    Federation(#[from] FederationError),
    /// The plan missed its target.
    #[error("{0}")]
    Plan(String),
}

/// The claims a CIE OP publishes in `claims_supported` (CIE OIDC OP metadata): the OpenID
/// standard claims CIE releases and the `https://attributes.eid.gov.it/` ones.
pub const CIE_CLAIMS_SUPPORTED: &[&str] = &[
    "given_name",
    "family_name",
    "birthdate",
    "gender",
    "place_of_birth",
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "address",
    "document_details",
    "https://attributes.eid.gov.it/fiscal_number",
    "https://attributes.eid.gov.it/idANPR",
    "https://attributes.eid.gov.it/physical_phone_number",
    "https://attributes.eid.gov.it/landline_number",
    "https://attributes.eid.gov.it/e_delivery_service",
    "https://attributes.eid.gov.it/eid_exp_date",
];

/// Signed messages kept for [`OpenIdProvider::take_sent`].
pub const MAX_SENT: usize = 64;

/// A signed message the OP sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentJwt {
    /// `id_token`, `userinfo` (the signed JWS inside the JWE), `refresh_id_token` or
    /// `entity_configuration`.
    pub message: &'static str,
    /// The compact JWS as signed (after the plan's edits).
    pub jws: String,
    /// The compact JWE that carried it, as sent (userinfo; the ID token in the CIE profile).
    pub jwe: Option<String>,
}

/// The header a plan-miss page carries: why the OP's plan could not be carried out.
pub const PLAN_ERROR_HEADER: &str = crate::PLAN_ERROR_HEADER;

/// OpenID Provider configuration.
#[derive(Debug, Clone)]
pub struct OpConfig {
    /// Entity id = issuer, e.g. `http://127.0.0.1:8088/oidc/op`.
    pub entity_id: String,
    /// Test users (the SAML IdP's).
    pub users: Vec<User>,
    /// Time source.
    pub clock: SharedClock,
    /// SPID reading.
    pub profile: Profile,
    /// Wrong passwords or OTPs before `access_denied`.
    pub max_attempts: u32,
    /// Time allowed from request to consent.
    pub login_timeout: chrono::Duration,
    /// Token for `POST /admin/arm` (`Authorization: Bearer …`); None disables it.
    pub admin_token: Option<String>,
    /// A file holding the `trust_marks` array to publish (an external trust anchor's
    /// onboarding output), read at every entity-configuration request; absent or unreadable:
    /// the mark given to [`OpenIdProvider::set_trust_anchor`], if any.
    pub trust_marks_file: Option<std::path::PathBuf>,
}

impl OpConfig {
    /// Defaults for an OP at `entity_id` with `users`.
    pub fn new(entity_id: &str, users: Vec<User>, clock: SharedClock) -> OpConfig {
        OpConfig {
            entity_id: entity_id.trim_end_matches('/').to_string(),
            users,
            clock,
            profile: Profile::rules_2023(),
            max_attempts: 3,
            login_timeout: chrono::Duration::minutes(10),
            admin_token: None,
            trust_marks_file: None,
        }
    }

    /// An endpoint URL under the entity id.
    pub fn endpoint(&self, name: &str) -> String {
        format!("{}/{name}", self.entity_id)
    }
}

/// A relying party resolved through the trust anchor (automatic registration).
#[derive(Debug, Clone)]
pub(crate) struct Client {
    /// Resolved `openid_relying_party` metadata.
    pub metadata: Map<String, Value>,
    /// Its OIDC-core keys (`metadata.jwks`).
    pub jwks: Jwks,
    /// When the chain expires.
    pub exp: i64,
}

impl Client {
    pub(crate) fn redirect_uris(&self) -> Vec<String> {
        self.metadata
            .get("redirect_uris")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An authorization code waiting for the token request.
#[derive(Debug, Clone)]
pub(crate) struct CodeGrant {
    pub authz: ValidAuthz,
    pub user: User,
    pub level: SpidLevel,
    pub created: DateTime<Utc>,
    /// The SSO session the login ran in (revoking the access token ends it).
    pub session: Option<String>,
    /// The plan armed for this login's case, if any (else the exchange takes the global one).
    pub plan: Option<OpPlan>,
}

/// A browser's single sign-on session at the OP: who authenticated, at which level, when.
#[derive(Debug, Clone)]
pub(crate) struct SsoSession {
    pub user: User,
    pub level: SpidLevel,
    pub created: DateTime<Utc>,
}

/// What an issued access token grants at userinfo (and shows at introspection).
#[derive(Debug, Clone)]
pub(crate) struct TokenGrant {
    pub client_id: String,
    pub sub: String,
    pub scope: String,
    pub user: User,
    pub userinfo_claims: Vec<String>,
    pub exp: i64,
    pub plan: OpPlan,
    /// The level this token's grant carries (introspection `acr`).
    pub level: SpidLevel,
    /// The refresh-token family issued beside it, if any: revoking the token revokes it.
    pub family: Option<String>,
    /// The SSO session of the login: revoking the token ends it (SPID-OIDC revocation endpoint).
    pub session: Option<String>,
}

struct Inner {
    cfg: OpConfig,
    federation_key: SigningKey,
    signing_key: SigningKey,
    /// Signs tokens for the foreign-key fault; never published.
    foreign_key: SigningKey,
    /// An EC P-256 key published beside the RSA one where the profile allows EC keys (CIE):
    /// what a plan's `sign.key = "ec"` signs ES256 with.
    ec_key: Option<SigningKey>,
    membership: Membership,
    clients: RwLock<HashMap<String, Client>>,
    /// Logins between `/authorization` and the consent, bounded globally and per client
    /// (see [`spid_core::pending`]: a flood gets HTTP 503, never evicts a login in flight).
    txns: Mutex<PendingMap<authorize::Txn>>,
    /// Request objects already answered, by client_id and `jti` (or the whole JWT without
    /// one), until their `exp` plus the skew: each is answered once.
    answered: Mutex<PendingMap<()>>,
    /// SSO sessions by the id in the [`SSO_COOKIE`] cookie.
    sso: Mutex<HashMap<String, SsoSession>>,
    codes: Mutex<HashMap<String, CodeGrant>>,
    tokens: Mutex<HashMap<String, TokenGrant>>,
    refresh: Mutex<refresh::RefreshStore>,
    plan: Mutex<Option<OpPlan>>,
    /// Why the last plan could not be carried out, until [`OpenIdProvider::take_plan_error`].
    plan_error: Mutex<Option<String>>,
    /// Plans armed per harness case ([`OpenIdProvider::arm_for`]), with their misses.
    case_plans: Mutex<HashMap<String, (OpPlan, Option<String>)>>,
    /// The last signed messages sent, until [`OpenIdProvider::take_sent`].
    sent: Mutex<std::collections::VecDeque<SentJwt>>,
    http: reqwest::Client,
}

/// The OpenID Provider. Cheap to clone.
#[derive(Clone)]
pub struct OpenIdProvider(Arc<Inner>);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Inserts into a bounded map, dropping everything when full (a test OP; a real one would
/// expire entries).
fn bounded_insert<V>(map: &mut HashMap<String, V>, k: String, v: V) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(k, v);
}

/// 32 random alphanumerics (codes, transaction ids).
pub(crate) fn random_id() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 32)
}

/// The OP's three keys, by role. The foreign key must differ from the other two: it signs
/// only the faults that a relying party must refuse.
#[derive(Clone)]
pub struct OpKeys {
    /// Signs the entity configuration (published in the federation JWKS).
    pub federation: SigningKey,
    /// Signs ID tokens and userinfo (published in the OIDC-core JWKS).
    pub signing: SigningKey,
    /// Published nowhere: signs the foreign-key faults.
    pub foreign: SigningKey,
}

impl OpKeys {
    /// Three freshly generated RSA 2048 keys.
    pub fn generate() -> Result<OpKeys, JoseError> {
        Ok(OpKeys {
            federation: new_signing_key()?,
            signing: new_signing_key()?,
            foreign: new_signing_key()?,
        })
    }
}

impl OpenIdProvider {
    /// Builds the OP with fresh federation, signing and (fault-only) foreign keys.
    pub fn new(cfg: OpConfig) -> Result<OpenIdProvider, JoseError> {
        Ok(OpenIdProvider::with_keys(cfg, OpKeys::generate()?))
    }

    /// Builds the OP with the given keys (e.g. fixed test keys, to skip key generation).
    pub fn with_keys(cfg: OpConfig, keys: OpKeys) -> OpenIdProvider {
        let ec_key = cfg
            .profile
            .ec_keys_allowed
            .then(|| SigningKey::generate_p256().ok())
            .flatten();
        OpenIdProvider(Arc::new(Inner {
            cfg,
            ec_key,
            federation_key: keys.federation,
            signing_key: keys.signing,
            foreign_key: keys.foreign,
            membership: Membership::default(),
            clients: RwLock::new(HashMap::new()),
            txns: Mutex::new(PendingMap::new(MAX_ENTRIES, MAX_TXNS_PER_CLIENT)),
            answered: Mutex::new(PendingMap::new(MAX_ANSWERED, MAX_ANSWERED_PER_CLIENT)),
            sso: Mutex::new(HashMap::new()),
            codes: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            refresh: Mutex::new(refresh::RefreshStore::default()),
            plan: Mutex::new(None),
            plan_error: Mutex::new(None),
            case_plans: Mutex::new(HashMap::new()),
            sent: Mutex::new(std::collections::VecDeque::new()),
            http: super::http_client(),
        }))
    }

    /// Logins in progress held in memory (bounded globally and per RP, whatever the traffic).
    pub fn pending_logins(&self) -> usize {
        lock(&self.0.txns).len()
    }

    /// Request objects remembered as answered (bounded like [`Self::pending_logins`]).
    pub fn answered_requests(&self) -> usize {
        lock(&self.0.answered).len()
    }

    /// The configuration.
    pub fn config(&self) -> &OpConfig {
        &self.0.cfg
    }

    /// The entity id (= issuer).
    pub fn entity_id(&self) -> &str {
        &self.0.cfg.entity_id
    }

    /// The federation keys to register at the trust anchor.
    pub fn federation_jwks(&self) -> Jwks {
        Jwks::new(self.0.federation_key.public_jwk().into_iter().collect())
    }

    /// The OIDC-core keys published in the `openid_provider` metadata.
    pub fn jwks(&self) -> Jwks {
        let ec = self.0.ec_key.iter().filter_map(|k| k.public_jwk().ok());
        Jwks::new(
            self.0
                .signing_key
                .public_jwk()
                .into_iter()
                .chain(ec)
                .collect(),
        )
    }

    /// Joins the federation: `anchor` is trusted for relying parties' chains and named in
    /// `authority_hints`; `mark` is the trust mark it issued to this OP.
    pub fn set_trust_anchor(&self, anchor: EntityKeys, mark: TrustMarkEntry) {
        self.0.membership.join(anchor, Some(mark));
    }

    /// Joins a federation run by someone else: `anchor` (its entity id and the keys from its
    /// entity configuration) is trusted and named in `authority_hints`; the trust marks come
    /// from [`OpConfig::trust_marks_file`] once the anchor has onboarded this OP.
    pub fn set_external_trust_anchor(&self, anchor: EntityKeys) {
        self.0.membership.join(anchor, None);
    }

    /// Once joined, names `superior` (an intermediate) instead of the trust anchor in
    /// `authority_hints`. SPID allows no intermediate between an OP and the anchor: relying
    /// parties must refuse such an OP, which is what this is for.
    pub fn set_superior(&self, superior: &str) {
        self.0.membership.set_superior(superior);
    }

    /// The trust anchor this OP has joined, if any.
    pub(crate) fn anchor(&self) -> Option<EntityKeys> {
        self.0.membership.anchor()
    }

    /// The `openid_relying_party` metadata of a relying party as automatic registration
    /// resolved it (its own metadata after the chain's policies), while its chain is valid.
    pub fn client_metadata(&self, client_id: &str) -> Option<Map<String, Value>> {
        let now = self.0.cfg.clock.now().timestamp();
        self.0
            .clients
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(client_id)
            .filter(|c| c.exp > now)
            .map(|c| c.metadata.clone())
    }

    fn trust_marks_from_file(&self) -> Option<Vec<TrustMarkEntry>> {
        trust_marks_from_file(self.0.cfg.trust_marks_file.as_deref())
    }

    /// Arms `plan` for the next token response (replacing any armed plan).
    pub fn arm(&self, plan: OpPlan) {
        *lock(&self.0.plan) = Some(plan);
    }

    /// How many access tokens are live (issued, not revoked, not expired): lets tests see
    /// a revocation take effect.
    pub fn live_access_tokens(&self) -> usize {
        let now = self.0.cfg.clock.now().timestamp();
        lock(&self.0.tokens)
            .values()
            .filter(|g| g.exp > now)
            .count()
    }

    /// Disarms any plan.
    pub fn disarm(&self) {
        *lock(&self.0.plan) = None;
    }

    /// The armed plan, left armed (the authorization response reads it; the token response
    /// then uses it up).
    fn peek_plan(&self) -> OpPlan {
        lock(&self.0.plan).clone().unwrap_or_default()
    }

    fn take_plan(&self) -> OpPlan {
        lock(&self.0.plan).take().unwrap_or_default()
    }

    /// The signed messages sent since the last call (at most [`MAX_SENT`], oldest dropped):
    /// what an independent verifier checks against the case's `intact` promise.
    pub fn take_sent(&self) -> Vec<SentJwt> {
        lock(&self.0.sent).drain(..).collect()
    }

    /// Remembers a signed message as sent.
    pub(crate) fn record_sent(&self, message: &'static str, jws: &str) {
        let mut sent = lock(&self.0.sent);
        if sent.len() >= MAX_SENT {
            sent.pop_front();
        }
        sent.push_back(SentJwt {
            message,
            jws: jws.to_string(),
            jwe: None,
        });
    }

    /// Adds the JWE that carried `jws` to the latest record of it.
    pub(crate) fn record_sealed(&self, message: &'static str, jws: &str, jwe: &str) {
        let mut sent = lock(&self.0.sent);
        if let Some(m) = sent
            .iter_mut()
            .rev()
            .find(|m| m.message == message && m.jws == jws)
        {
            m.jwe = Some(jwe.to_string());
        }
    }

    /// Why the last armed plan could not be carried out (an edit missed its target), once.
    pub fn take_plan_error(&self) -> Option<String> {
        lock(&self.0.plan_error).take()
    }

    /// Arms `plan` for the login whose browser sends [`crate::CASE_COOKIE`] = `case` (to the
    /// consent page), so cases run concurrently; the grant keeps it for the later steps. A
    /// plan that alters the entity configuration is global ([`Self::arm`]): no cookie comes
    /// with a federation fetch.
    pub fn arm_for(&self, case: &str, mut plan: OpPlan) {
        plan.case = Some(case.to_string());
        let mut plans = lock(&self.0.case_plans);
        if plans.len() >= MAX_ENTRIES {
            plans.clear();
        }
        plans.insert(case.to_string(), (plan, None));
    }

    /// Forgets the plan armed for `case`; why it could not be carried out, if it missed.
    pub fn disarm_for(&self, case: &str) -> Option<String> {
        lock(&self.0.case_plans).remove(case).and_then(|(_, e)| e)
    }

    /// The plan for a login: the one armed for its case, else the global one (left armed).
    pub(crate) fn plan_for(&self, case: Option<&str>) -> OpPlan {
        case.and_then(|c| lock(&self.0.case_plans).get(c).map(|(p, _)| p.clone()))
            .unwrap_or_else(|| self.peek_plan())
    }

    /// Records that `plan` missed its target: against its case, or globally.
    pub(crate) fn note_miss(&self, case: Option<&str>, miss: &PlanMiss) {
        let text = miss.to_string();
        if let Some(c) = case {
            if let Some(entry) = lock(&self.0.case_plans).get_mut(c) {
                entry.1 = Some(text);
                return;
            }
        }
        *lock(&self.0.plan_error) = Some(text);
    }

    /// Records a global plan that missed its target and answers [`Self::miss_page`].
    pub(crate) fn missed(&self, miss: &PlanMiss) -> Response {
        self.note_miss(None, miss);
        Self::miss_page(miss)
    }

    /// The error page of a plan that missed its target (HTTP 500 and
    /// [`PLAN_ERROR_HEADER`]): never an honest message in place of the planned one.
    pub(crate) fn miss_page(miss: &PlanMiss) -> Response {
        let text = miss.to_string();
        let mut r = json_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", &text);
        if let Ok(v) = axum::http::HeaderValue::from_str(&text) {
            r.headers_mut().insert(PLAN_ERROR_HEADER, v);
        }
        r
    }

    /// The `openid_provider` metadata: the SPID set, and under a profile with
    /// `op_metadata_cie` the CIE extras ([`CIE_CLAIMS_SUPPORTED`] as `claims_supported`,
    /// `tls_client_certificate_bound_access_tokens`, and the ID-token encryption algorithms
    /// where the OP encrypts ID tokens on request).
    pub fn metadata(&self) -> Value {
        let cfg = &self.0.cfg;
        let p = &cfg.profile;
        let algs: Vec<&str> = p.signing_algs.iter().map(|a| a.name()).collect();
        // What the OP verifies request objects with (CIE: ES256 too).
        let accepted = p.accepted_signing_algs();
        let request_algs: Vec<&str> = accepted.iter().map(|a| a.name()).collect();
        let jwe_algs: Vec<&str> = p.jwe_algs.iter().map(|a| a.name()).collect();
        let jwe_encs: Vec<&str> = p.jwe_encs.iter().map(|a| a.name()).collect();
        let scopes: Vec<&str> = std::iter::once("openid")
            .chain(p.scopes_supported.iter().map(String::as_str))
            .collect();
        let mut md = json!({
            "issuer": cfg.entity_id,
            "authorization_endpoint": cfg.endpoint("authorization"),
            "token_endpoint": cfg.endpoint("token"),
            "userinfo_endpoint": cfg.endpoint("userinfo"),
            "introspection_endpoint": cfg.endpoint("introspection"),
            "revocation_endpoint": cfg.endpoint("revocation"),
            "jwks": self.jwks().to_value(),
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": scopes,
            "response_types_supported": ["code"],
            "response_modes_supported": p.response_modes_supported,
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "acr_values_supported": SpidLevel::ALL.iter().map(|l| l.uri()).collect::<Vec<_>>(),
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": algs,
            "userinfo_signing_alg_values_supported": algs,
            "userinfo_encryption_alg_values_supported": jwe_algs,
            "userinfo_encryption_enc_values_supported": jwe_encs,
            "request_object_signing_alg_values_supported": request_algs,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": algs,
            "revocation_endpoint_auth_methods_supported": ["private_key_jwt"],
            "claims_parameter_supported": true,
            "request_parameter_supported": true,
            "authorization_response_iss_parameter_supported": true,
            "client_registration_types_supported": ["automatic"],
            "request_authentication_methods_supported": {"authorization_endpoint": ["request_object"]},
            "request_authentication_signing_alg_values_supported": request_algs,
        });
        if let (true, Some(obj)) = (p.op_metadata_cie, md.as_object_mut()) {
            obj.insert("claims_supported".into(), json!(CIE_CLAIMS_SUPPORTED));
            // Access tokens are bearer tokens here: none is bound to a TLS client certificate.
            obj.insert(
                "tls_client_certificate_bound_access_tokens".into(),
                json!(false),
            );
            if p.id_token_encrypted_on_request {
                obj.insert(
                    "id_token_encryption_alg_values_supported".into(),
                    json!(jwe_algs),
                );
                obj.insert(
                    "id_token_encryption_enc_values_supported".into(),
                    json!(jwe_encs),
                );
            }
        }
        md
    }

    fn configuration(&self) -> Result<String, ConfigurationError> {
        let cfg = &self.0.cfg;
        let (authority_hint, mut trust_marks) =
            self.0.membership.published(|| self.trust_marks_from_file());
        let plan = self.peek_plan();
        let now = cfg.clock.now().timestamp();
        let alg = cfg.profile.default_signing_alg;
        if !plan.trust_mark.is_empty() {
            trust_marks = Some(self.planned_trust_marks(trust_marks.as_deref(), &plan.trust_mark)?);
        }
        let ec = &plan.entity_configuration;
        let published = if ec.sign.publish_key {
            &self.0.foreign_key
        } else {
            &self.0.federation_key
        };
        let c = LeafConfiguration {
            entity_id: &cfg.entity_id,
            now,
            ttl: EC_TTL_SECS,
            jwks: Jwks::new(published.public_jwk().into_iter().collect()),
            role: "openid_provider",
            role_metadata: self.metadata(),
            organization_name: "spid-harness test OP",
            resolve_endpoint: cfg.endpoint("resolve"),
            authority_hint,
            trust_marks,
        };
        if ec.is_empty() {
            let jwt = leaf_entity_configuration(c, &self.0.federation_key, alg)?;
            self.record_sent("entity_configuration", &jwt);
            return Ok(jwt);
        }
        let claims = leaf_entity_configuration_claims(c)?;
        let header = JwsHeader::new(alg, &self.0.federation_key).with_typ(ENTITY_STATEMENT_TYP);
        let jwt = ec
            .sign(
                &claims,
                &header,
                &self.0.federation_key,
                &self.0.foreign_key,
                Value::clone,
            )
            .map_err(|e| ConfigurationError::Plan(e.to_string()))?;
        self.record_sent("entity_configuration", &jwt);
        Ok(jwt)
    }

    /// The published marks, each re-signed through `plan` (its claims decoded, edited and
    /// signed again, by the foreign key when the plan says so: what a forger without the
    /// anchor's key could publish). No mark to edit is a miss.
    fn planned_trust_marks(
        &self,
        marks: Option<&[TrustMarkEntry]>,
        plan: &JwtPlan,
    ) -> Result<Vec<TrustMarkEntry>, ConfigurationError> {
        let marks = marks.filter(|m| !m.is_empty()).ok_or_else(|| {
            ConfigurationError::Plan("plan.trust_mark: the OP publishes no trust mark".into())
        })?;
        let alg = self.0.cfg.profile.default_signing_alg;
        marks
            .iter()
            .map(|m| {
                let (_, claims) = decode_unverified(&m.trust_mark)
                    .map_err(|e| ConfigurationError::Plan(format!("plan.trust_mark: {e}")))?;
                let header = JwsHeader::new(alg, &self.0.federation_key).with_typ(TRUST_MARK_TYP);
                let jwt = plan
                    .sign(
                        &claims,
                        &header,
                        &self.0.federation_key,
                        &self.0.foreign_key,
                        Value::clone,
                    )
                    .map_err(|e| ConfigurationError::Plan(format!("plan.trust_mark.{e}")))?;
                Ok(TrustMarkEntry {
                    trust_mark: jwt,
                    ..m.clone()
                })
            })
            .collect()
    }

    /// The router, to be nested at the entity id's path (`/oidc/op`).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/.well-known/openid-federation", get(configuration))
            .route(
                "/authorization",
                get(authorize::authorization_get).post(authorize::authorization_post),
            )
            .route("/login", post(authorize::login))
            .route("/otp", post(authorize::otp))
            .route("/consent", post(authorize::consent))
            .route("/token", post(token::token).get(token::wrong_method))
            .route(
                "/userinfo",
                get(userinfo::userinfo).post(userinfo::userinfo_post),
            )
            .route("/admin/arm", post(admin_arm))
            .route("/introspection", post(introspect::introspection))
            .route("/revocation", post(introspect::revocation))
            .layer(DefaultBodyLimit::max(64 * 1024))
            .with_state(self.clone())
    }
}

async fn configuration(State(op): State<OpenIdProvider>) -> Response {
    match op.configuration() {
        Ok(jwt) => entity_statement(jwt),
        Err(ConfigurationError::Plan(reason)) => op.missed(&PlanMiss {
            stage: "plan".into(),
            reason,
        }),
        Err(e) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            &e.to_string(),
        ),
    }
}

/// `POST /admin/arm` with a JSON [`OpPlan`]: arms it over HTTP, for runs against an
/// external RP (token-protected, like the SAML IdP's).
async fn admin_arm(
    State(op): State<OpenIdProvider>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let authorized = op.0.cfg.admin_token.as_ref().is_some_and(|token| {
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| crate::constant_eq(t.as_bytes(), token.as_bytes()))
    });
    if !authorized {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "admin token required",
        );
    }
    match serde_json::from_slice::<OpPlan>(&body)
        .map_err(ArmError::from)
        .and_then(|p| p.check().map_err(ArmError::from).map(|()| p))
    {
        Ok(plan) => {
            op.arm(plan);
            super::json(StatusCode::OK, &json!({"armed": true}))
        }
        Err(e) => json_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use spid_core::Rule;

    /// Runs a handler's future to its end on this thread: handlers are tested as functions
    /// of their extractors, without sockets.
    pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
            .block_on(f)
    }

    /// The token-endpoint fixture with its OP under `profile` (fresh keys).
    pub(crate) fn profiled(profile: spid_core::oidc::Profile) -> super::token::tests::Fixture {
        let fx = super::token::tests::fixture();
        let mut cfg = fx.op.config().clone();
        cfg.profile = profile;
        super::token::tests::Fixture {
            op: super::OpenIdProvider::new(cfg).expect("op"),
            ..fx
        }
    }

    #[test]
    fn metadata_follows_the_profile() {
        use serde_json::json;
        let spid = profiled(spid_core::oidc::Profile::rules_2023())
            .op
            .metadata();
        let cie = profiled(spid_core::oidc::Profile::cie()).op.metadata();
        assert_eq!(
            spid["scopes_supported"],
            json!(["openid", "offline_access"])
        );
        assert_eq!(
            cie["scopes_supported"],
            json!(["openid", "offline_access", "profile", "email"])
        );
        for extra in [
            "claims_supported",
            "tls_client_certificate_bound_access_tokens",
            "id_token_encryption_alg_values_supported",
            "id_token_encryption_enc_values_supported",
        ] {
            assert!(spid.get(extra).is_none(), "SPID publishes {extra}");
            assert!(cie.get(extra).is_some(), "CIE lacks {extra}");
        }
        let claims = cie["claims_supported"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(claims.contains(&json!("https://attributes.eid.gov.it/fiscal_number")));
        for both in [
            "claims_parameter_supported",
            "revocation_endpoint_auth_methods_supported",
            "authorization_response_iss_parameter_supported",
        ] {
            assert_eq!(spid[both], cie[both], "{both}");
            assert!(cie.get(both).is_some(), "{both}");
        }
        assert_eq!(
            cie["response_modes_supported"],
            json!(["form_post", "query"])
        );
        // Request objects: ES256 (EC keys) under CIE only.
        let es256 = json!("ES256");
        let req = "request_object_signing_alg_values_supported";
        assert!(cie[req].as_array().is_some_and(|a| a.contains(&es256)));
        assert!(spid[req].as_array().is_some_and(|a| !a.contains(&es256)));
    }

    /// `op.*` codes the OP never answers with, each with why (none: every code of the table
    /// that starts with `op.` is one the OP can send).
    const NEVER_ANSWERED: &[(Rule, &str)] = &[];

    /// The rules named by the OP's unit-test case tables: each table's test runs every case
    /// on the honest input with one edit and asserts exactly that rule.
    fn tested() -> Vec<Rule> {
        let mut tested: Vec<Rule> = Vec::new();
        tested.extend(super::request::tests::AUTHZ_CASES.iter().map(|c| c.0));
        tested.extend(super::request::tests::ENVELOPE_CASES.iter().map(|c| c.0));
        tested.extend(super::authorize::tests::tested());
        tested.extend(super::token::tests::TOKEN_CASES.iter().map(|c| c.0));
        tested.extend(super::token::tests::HANDLER_CASES.iter().map(|c| c.0));
        tested.extend(super::refresh::tests::REFRESH_CASES.iter().map(|c| c.0));
        tested.extend(super::userinfo::tests::tested());
        tested
    }

    /// Every `op.*` code of [`Rule::ALL`] has at least one unit test (or is listed in
    /// `NEVER_ANSWERED` with a reason), and every tested code is an `op.*` code.
    #[test]
    fn every_op_rule_has_a_unit_test() {
        let tested = tested();
        let missing: Vec<&str> = Rule::ALL
            .iter()
            .filter(|r| r.code().starts_with("op."))
            .filter(|r| !tested.contains(r) && !NEVER_ANSWERED.iter().any(|(n, _)| n == *r))
            .map(|r| r.code())
            .collect();
        assert!(
            missing.is_empty(),
            "op rules without a unit test: {missing:?}"
        );
        for r in &tested {
            assert!(r.code().starts_with("op."), "{} is no OP rule", r.code());
        }
        for (r, why) in NEVER_ANSWERED {
            assert!(!why.is_empty() && !tested.contains(r), "{}", r.code());
        }
    }
}
