//! The SPID OpenID Provider, mounted at `<idp base>/oidc/op`: entity configuration,
//! `/authorization` (signed request object, automatic registration through the trust anchor),
//! the SAML IdP's login / OTP / consent pages and users, `/token` (`private_key_jwt`, PKCE),
//! `/userinfo` (signed then encrypted), `/introspection` and `/revocation`; refresh tokens with
//! rotation for `offline_access`. A [`OpFaultPlan`] alters the next tokens.

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
    leaf_entity_configuration, sign_trust_mark, trust_marks_from_file, EntityKeys, FederationError,
    LeafConfiguration, Membership, TrustMark, TrustMarkEntry,
};
use spid_core::oidc::jose::{JoseError, Jwks, SigningKey};
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

/// What the OP alters in its next token response (the OIDC counterpart of the SAML
/// [`crate::FaultPlan`]). Armed in process with [`OpenIdProvider::arm`]; used once, by the
/// next authorization-code exchange. The grant it was used for keeps it, so the `userinfo_*`,
/// `refresh_*` and `introspection_*` fields act later on that login's tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpFaultPlan {
    /// Put this level in the ID token `acr`, whatever was granted.
    #[serde(default)]
    pub acr: Option<SpidLevel>,
    /// Put this `nonce` in the ID token instead of the request's.
    #[serde(default)]
    pub nonce: Option<String>,
    /// Corrupt the ID token signature (one byte flipped).
    #[serde(default)]
    pub id_token_bad_signature: bool,
    /// Sign the ID token with a key that is not in the OP's published jwks.
    #[serde(default)]
    pub id_token_foreign_key: bool,
    /// Put this `iss` in the ID token.
    #[serde(default)]
    pub id_token_iss: Option<String>,
    /// Put this `aud` in the ID token.
    #[serde(default)]
    pub id_token_aud: Option<String>,
    /// Issue an ID token that expired an hour ago.
    #[serde(default)]
    pub id_token_expired: bool,
    /// Put this `iss` in the authorization response instead of the OP's.
    #[serde(default)]
    pub response_iss: Option<String>,
    /// Leave `state` out of the authorization response.
    #[serde(default)]
    pub response_without_state: bool,
    /// Put this string in the ID token `acr` (e.g. a non-SPID URI).
    #[serde(default)]
    pub acr_uri: Option<String>,
    /// Leave this claim out of the ID token.
    #[serde(default)]
    pub id_token_without: Option<String>,
    /// Issue an ID token dated an hour ahead.
    #[serde(default)]
    pub id_token_future: bool,
    /// Leave `code` out of the authorization response.
    #[serde(default)]
    pub response_without_code: bool,
    /// Answer the token request with HTTP 400 `invalid_grant`.
    #[serde(default)]
    pub token_error: bool,
    /// Leave `id_token` out of the token response.
    #[serde(default)]
    pub token_without_id_token: bool,
    /// Answer userinfo with HTTP 401.
    #[serde(default)]
    pub userinfo_error: bool,
    /// Sign the inner userinfo JWS with a key not in the OP's jwks.
    #[serde(default)]
    pub userinfo_foreign_key: bool,
    /// Encrypt userinfo to a key that is not the RP's.
    #[serde(default)]
    pub userinfo_wrong_recipient: bool,
    /// Put this `iss` in the userinfo response.
    #[serde(default)]
    pub userinfo_iss: Option<String>,
    /// Put a wrong `at_hash` in the ID token.
    #[serde(default)]
    pub bad_at_hash: bool,
    /// Answer userinfo with the signed JWS only, not encrypted.
    #[serde(default)]
    pub userinfo_unencrypted: bool,
    /// Put another `sub` in the userinfo response.
    #[serde(default)]
    pub userinfo_other_sub: bool,
    /// Answer the authorization request with this `error` (and `state`, `iss`), no `code`.
    #[serde(default)]
    pub response_error: Option<String>,
    /// Leave `iss` out of the authorization response.
    #[serde(default)]
    pub response_without_iss: bool,
    /// Put this `token_type` in the token response instead of `Bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// Date the ID token (`iat`, `nbf`, `exp`) this many seconds from now.
    #[serde(default)]
    pub id_token_iat_offset: Option<i64>,
    /// Put this `aud` in the userinfo response.
    #[serde(default)]
    pub userinfo_aud: Option<String>,
    /// Issue a userinfo response that expired an hour ago.
    #[serde(default)]
    pub userinfo_expired: bool,
    /// Put this `alg` in the ID token header: `none` (empty signature) or `HS256` (HMAC
    /// keyed with the OP's public signing JWK, the algorithm-confusion attack).
    #[serde(default)]
    pub id_token_alg: Option<String>,
    /// Put this `kid` (not in the OP's jwks) in the ID token header, signed with the OP's key.
    #[serde(default)]
    pub id_token_kid: Option<String>,
    /// Put this extra audience next to the client_id in the ID token `aud` array.
    #[serde(default)]
    pub id_token_extra_aud: Option<String>,
    /// Answer the token request with HTTP 500 and a plain-text body.
    #[serde(default)]
    pub token_server_error: bool,
    /// Answer the token request with HTTP 200 and an HTML page, not JSON.
    #[serde(default)]
    pub token_not_json: bool,
    /// Put this `alg` in the inner userinfo JWS header (as `id_token_alg`), then encrypt it.
    #[serde(default)]
    pub userinfo_jws_alg: Option<String>,
    /// Rewrite the userinfo JWE protected header `alg` to this (e.g. `RSA1_5`).
    #[serde(default)]
    pub userinfo_jwe_alg: Option<String>,
    /// Rewrite the userinfo JWE protected header `enc` to this (e.g. `A128GCM`).
    #[serde(default)]
    pub userinfo_jwe_enc: Option<String>,
    /// Publish a self-consistent entity configuration (its `jwks` and signature) with keys
    /// the trust anchor never registered for the OP.
    #[serde(default)]
    pub ec_foreign_key: bool,
    /// Publish an entity configuration that expired an hour ago.
    #[serde(default)]
    pub ec_expired: bool,
    /// Publish the entity configuration without `trust_marks`.
    #[serde(default)]
    pub ec_without_trust_marks: bool,
    /// Publish a trust mark naming the anchor as issuer, signed by a key it does not hold.
    #[serde(default)]
    pub ec_forged_trust_mark: bool,
    /// Put this level in the `acr` of every ID token refreshed from this login, whatever the
    /// refresh would carry.
    #[serde(default)]
    pub refresh_acr: Option<SpidLevel>,
    /// Put another `sub` in the ID tokens refreshed from this login.
    #[serde(default)]
    pub refresh_other_sub: bool,
    /// Answer the refresh grants of this login with HTTP 400 `invalid_grant`.
    #[serde(default)]
    pub refresh_error: bool,
    /// Put this level in the introspection `acr` of this login's access tokens.
    #[serde(default)]
    pub introspection_acr: Option<SpidLevel>,
    /// Answer introspection of this login's access tokens with `active: false`.
    #[serde(default)]
    pub introspection_inactive: bool,
    /// Put this `client_id` in the introspection answer for this login's access tokens.
    #[serde(default)]
    pub introspection_client_id: Option<String>,
    /// Answer introspection of this login's access tokens with HTTP 500 and a plain-text body.
    #[serde(default)]
    pub introspection_error: bool,
}

impl OpFaultPlan {
    /// Whether the plan spoils the OP's entity configuration: a relying party only sees that
    /// when it resolves the OP afresh (not from its cached trust chain).
    pub fn alters_federation(&self) -> bool {
        self.ec_foreign_key
            || self.ec_expired
            || self.ec_without_trust_marks
            || self.ec_forged_trust_mark
    }
}

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
    pub plan: OpFaultPlan,
    /// The level this token's grant carries (introspection `acr`).
    pub level: SpidLevel,
    /// The refresh-token family issued beside it, if any: revoking the token revokes it.
    pub family: Option<String>,
    /// The SSO session of the login: revoking the token ends it (research §8).
    pub session: Option<String>,
}

struct Inner {
    cfg: OpConfig,
    federation_key: SigningKey,
    signing_key: SigningKey,
    /// Signs tokens for the foreign-key fault; never published.
    foreign_key: SigningKey,
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
    plan: Mutex<Option<OpFaultPlan>>,
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

impl OpenIdProvider {
    /// Builds the OP with fresh federation, signing and (fault-only) foreign keys.
    pub fn new(cfg: OpConfig) -> Result<OpenIdProvider, JoseError> {
        Ok(OpenIdProvider(Arc::new(Inner {
            cfg,
            federation_key: new_signing_key()?,
            signing_key: new_signing_key()?,
            foreign_key: new_signing_key()?,
            membership: Membership::default(),
            clients: RwLock::new(HashMap::new()),
            txns: Mutex::new(PendingMap::new(MAX_ENTRIES, MAX_TXNS_PER_CLIENT)),
            answered: Mutex::new(PendingMap::new(MAX_ANSWERED, MAX_ANSWERED_PER_CLIENT)),
            sso: Mutex::new(HashMap::new()),
            codes: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            refresh: Mutex::new(refresh::RefreshStore::default()),
            plan: Mutex::new(None),
            http: super::http_client(),
        })))
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
        Jwks::new(self.0.signing_key.public_jwk().into_iter().collect())
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
    pub fn arm(&self, plan: OpFaultPlan) {
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
    fn peek_plan(&self) -> OpFaultPlan {
        lock(&self.0.plan).clone().unwrap_or_default()
    }

    fn take_plan(&self) -> OpFaultPlan {
        lock(&self.0.plan).take().unwrap_or_default()
    }

    /// The `openid_provider` metadata.
    pub fn metadata(&self) -> Value {
        let cfg = &self.0.cfg;
        let p = &cfg.profile;
        let algs: Vec<&str> = p.signing_algs.iter().map(|a| a.name()).collect();
        let jwe_algs: Vec<&str> = p.jwe_algs.iter().map(|a| a.name()).collect();
        let jwe_encs: Vec<&str> = p.jwe_encs.iter().map(|a| a.name()).collect();
        json!({
            "issuer": cfg.entity_id,
            "authorization_endpoint": cfg.endpoint("authorization"),
            "token_endpoint": cfg.endpoint("token"),
            "userinfo_endpoint": cfg.endpoint("userinfo"),
            "introspection_endpoint": cfg.endpoint("introspection"),
            "revocation_endpoint": cfg.endpoint("revocation"),
            "jwks": self.jwks().to_value(),
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "offline_access"],
            "response_types_supported": ["code"],
            "response_modes_supported": p.response_modes_supported,
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "acr_values_supported": SpidLevel::ALL.iter().map(|l| l.uri()).collect::<Vec<_>>(),
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": algs,
            "userinfo_signing_alg_values_supported": algs,
            "userinfo_encryption_alg_values_supported": jwe_algs,
            "userinfo_encryption_enc_values_supported": jwe_encs,
            "request_object_signing_alg_values_supported": algs,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": algs,
            "revocation_endpoint_auth_methods_supported": ["private_key_jwt"],
            "claims_parameter_supported": true,
            "request_parameter_supported": true,
            "authorization_response_iss_parameter_supported": true,
            "client_registration_types_supported": ["automatic"],
            "request_authentication_methods_supported": {"authorization_endpoint": ["request_object"]},
            "request_authentication_signing_alg_values_supported": algs,
        })
    }

    fn configuration(&self) -> Result<String, FederationError> {
        let cfg = &self.0.cfg;
        let (authority_hint, mut trust_marks) =
            self.0.membership.published(|| self.trust_marks_from_file());
        let plan = self.peek_plan();
        let now = cfg.clock.now().timestamp();
        if plan.ec_without_trust_marks {
            trust_marks = Some(Vec::new());
        }
        if plan.ec_forged_trust_mark {
            let anchor = self.0.membership.anchor().map(|a| a.entity_id);
            trust_marks =
                self.forged_trust_marks(trust_marks.as_deref(), anchor.as_deref(), now)?;
        }
        let key = if plan.ec_foreign_key {
            &self.0.foreign_key
        } else {
            &self.0.federation_key
        };
        let c = LeafConfiguration {
            entity_id: &cfg.entity_id,
            // Backdated so that `exp` is an hour past.
            now: if plan.ec_expired {
                now - EC_TTL_SECS - 3600
            } else {
                now
            },
            ttl: EC_TTL_SECS,
            jwks: Jwks::new(key.public_jwk().into_iter().collect()),
            role: "openid_provider",
            role_metadata: self.metadata(),
            organization_name: "spid-harness test OP",
            resolve_endpoint: cfg.endpoint("resolve"),
            authority_hint,
            trust_marks,
        };
        leaf_entity_configuration(c, key, cfg.profile.default_signing_alg)
    }

    /// The published marks re-signed by the OP's foreign key, same claims (issuer: the
    /// anchor): what a forger without the anchor's key could publish.
    fn forged_trust_marks(
        &self,
        marks: Option<&[TrustMarkEntry]>,
        anchor: Option<&str>,
        now: i64,
    ) -> Result<Option<Vec<TrustMarkEntry>>, FederationError> {
        let p = &self.0.cfg.profile;
        let id = marks
            .and_then(|m| m.first())
            .and_then(|m| m.id.clone().or_else(|| m.trust_mark_type.clone()))
            .unwrap_or_else(|| "https://www.spid.gov.it/openid_provider/public/".into());
        let mark = TrustMark {
            id: id.clone(),
            iss: anchor.unwrap_or_default().to_string(),
            sub: self.0.cfg.entity_id.clone(),
            iat: now,
            exp: Some(now + EC_TTL_SECS),
            other: Map::new(),
        };
        let jwt = sign_trust_mark(&mark, &self.0.foreign_key, p.default_signing_alg, p)?;
        Ok(Some(vec![TrustMarkEntry {
            id: Some(id),
            trust_mark_type: None,
            trust_mark: jwt,
            other: Map::new(),
        }]))
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
                get(userinfo::userinfo).post(userinfo::wrong_method),
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
        Err(e) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            &e.to_string(),
        ),
    }
}

/// `POST /admin/arm` with a JSON [`OpFaultPlan`]: arms it over HTTP, for runs against an
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
    match serde_json::from_slice::<OpFaultPlan>(&body) {
        Ok(plan) => {
            op.arm(plan);
            super::json(StatusCode::OK, &json!({"armed": true}))
        }
        Err(e) => json_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()),
    }
}
