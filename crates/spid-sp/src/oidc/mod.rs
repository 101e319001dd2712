//! The SPID OpenID Connect relying party, mounted at `<sp base>/oidc/rp`: its entity
//! configuration, `/login?op=<OP entity id>` (trust chain of the OP through the trust anchor,
//! signed request object, PKCE) and `/callback` (state, `iss`, token request with
//! `private_key_jwt`, ID token, encrypted userinfo). Like the SAML SP it answers **200 only
//! on an accepted login** and 403 + page + `X-SPID-Rule` otherwise. A logged-in session can
//! then be refreshed (`/refresh`, after `/login?offline=1`) and its access token introspected
//! (`/introspect`), judged the same way.

pub mod callback;
pub mod checks;
pub mod fed;
pub mod pages;
pub mod session;

use crate::RULE_HEADER;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use callback::{Pending, Refusal};
use chrono::{DateTime, Utc};
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use session::Session;
use spid_core::clock::SharedClock;
use spid_core::oidc::federation::{
    anchor_knows, entity_configuration_url, leaf_entity_configuration, resolve_trust_chain,
    trust_marks_from_file, EntityKeys, FederationError, Intermediates, LeafConfiguration,
    Membership, ResolveError, TrustMarkEntry, ENTITY_STATEMENT_CONTENT_TYPE,
};
use spid_core::oidc::jose::{sign_jws, DecryptionKey, JoseError, JweAlg, JweEnc, Jwks, SigningKey};
use spid_core::oidc::pkce::challenge_s256;
use spid_core::oidc::Profile;
use spid_core::pending::{Full, PendingMap};
use spid_core::{Rule, SpidLevel};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// The RP's session cookie (distinct from the SAML SP's: both may share a host).
pub const RP_COOKIE: &str = "spid_rp_session";
/// Bound on pending authorization requests kept in memory (see [`spid_core::pending`]: at
/// the bound new logins get HTTP 503 `server.pending.full`; none in flight is evicted).
const MAX_PENDING: usize = 10_000;
/// Pending authorization requests one browser session may hold.
const MAX_PENDING_PER_SESSION: usize = 16;
/// Lifetime of the entity configuration, seconds.
const EC_TTL_SECS: i64 = 24 * 3600;

/// Relying party configuration.
#[derive(Debug, Clone)]
pub struct RpConfig {
    /// Entity id = client_id, e.g. `http://127.0.0.1:8000/oidc/rp`.
    pub entity_id: String,
    /// Time source.
    pub clock: SharedClock,
    /// SPID reading.
    pub profile: Profile,
    /// Level requested in `acr_values`.
    pub level: SpidLevel,
    /// The lowest level accepted in the ID token (SPID services: L2).
    pub min_level: SpidLevel,
    /// Claims requested under `claims.userinfo`.
    pub userinfo_claims: Vec<String>,
    /// How long a sent request waits for its answer.
    pub request_ttl: chrono::Duration,
    /// Userinfo encryption the RP asks for in its metadata.
    pub userinfo_jwe: (JweAlg, JweEnc),
    /// A file holding the `trust_marks` array to publish (an external trust anchor's
    /// onboarding output), read at every entity-configuration request; absent or unreadable:
    /// the mark given to [`RelyingParty::set_trust_anchor`], if any.
    pub trust_marks_file: Option<std::path::PathBuf>,
    /// Ask every login for `offline_access` (a refresh token), as `/login?offline=1` does for
    /// one login.
    pub offline_access: bool,
    /// Scopes asked besides `openid` (and `offline_access`), each only when the profile's
    /// `scopes_supported` lists it: by default `profile` and `email`, which CIE defines (the
    /// eIDAS minimum set; `email`, `email_verified`) and SPID does not, so a SPID login asks
    /// none of them.
    pub extra_scopes: Vec<String>,
}

impl RpConfig {
    /// SPID defaults: L2 requested and required, a few SPID claims.
    pub fn new(entity_id: &str, clock: SharedClock) -> RpConfig {
        RpConfig {
            entity_id: entity_id.trim_end_matches('/').to_string(),
            clock,
            profile: Profile::rules_2023(),
            level: SpidLevel::L2,
            min_level: SpidLevel::L2,
            userinfo_claims: [
                "given_name",
                "family_name",
                "https://attributes.eid.gov.it/fiscal_number",
                "email",
            ]
            .map(String::from)
            .to_vec(),
            request_ttl: chrono::Duration::minutes(15),
            userinfo_jwe: (JweAlg::RsaOaep256, JweEnc::A256CbcHs512),
            trust_marks_file: None,
            offline_access: false,
            extra_scopes: ["profile", "email"].map(String::from).to_vec(),
        }
    }

    /// The `scope` of a login: `openid`, `offline_access` when `offline`, then each of
    /// [`RpConfig::extra_scopes`] the profile supports.
    pub fn scope(&self, offline: bool) -> String {
        let supported = &self.profile.scopes_supported;
        let mut scope = vec!["openid"];
        if offline {
            scope.push("offline_access");
        }
        scope.extend(
            self.extra_scopes
                .iter()
                .map(String::as_str)
                .filter(|s| *s != "offline_access" && supported.iter().any(|x| x == s)),
        );
        scope.join(" ")
    }

    /// Whether the RP declares `id_token_encrypted_response_alg`/`_enc` (its userinfo
    /// algorithms) and so requires a nested, encrypted ID token: the profiles where the OP
    /// encrypts on request (CIE).
    pub fn requires_encrypted_id_token(&self) -> bool {
        self.profile.id_token_encrypted_on_request
    }

    /// The redirect URI (`<entity id>/callback`).
    pub fn redirect_uri(&self) -> String {
        format!("{}/callback", self.entity_id)
    }
}

/// An OP after trust-chain validation: endpoints and keys from its resolved metadata.
#[derive(Debug, Clone)]
pub struct TrustedOp {
    /// Entity id = issuer.
    pub issuer: String,
    /// Authorization endpoint.
    pub authorization_endpoint: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// Userinfo endpoint.
    pub userinfo_endpoint: String,
    /// Revocation endpoint, if the OP publishes one (used at logout).
    pub revocation_endpoint: Option<String>,
    /// Introspection endpoint, if the OP publishes one (used by `/introspect`).
    pub introspection_endpoint: Option<String>,
    /// OIDC-core keys (ID token, userinfo signatures).
    pub jwks: Jwks,
    /// When the chain expires.
    pub exp: i64,
}

struct Inner {
    cfg: RpConfig,
    federation_key: SigningKey,
    signing_key: SigningKey,
    encryption_key: DecryptionKey,
    membership: Membership,
    ops: RwLock<HashMap<String, TrustedOp>>,
    /// Sent requests by `state`, owned by their browser session.
    pending: Mutex<PendingMap<Pending>>,
    /// Logged-in browser sessions by sid: for refresh, introspection and logout.
    sessions: Mutex<HashMap<String, Session>>,
    http: reqwest::Client,
}

/// The relying party. Cheap to clone.
#[derive(Clone)]
pub struct RelyingParty(Arc<Inner>);

/// The RP's three keys, by role.
#[derive(Clone)]
pub struct RpKeys {
    /// Signs the entity configuration (published in the federation JWKS).
    pub federation: SigningKey,
    /// Signs request objects and client assertions.
    pub signing: SigningKey,
    /// Decrypts what the OP encrypts to the RP.
    pub encryption: DecryptionKey,
}

impl RpKeys {
    /// Three freshly generated RSA 2048 keys.
    pub fn generate() -> Result<RpKeys, JoseError> {
        Ok(RpKeys {
            federation: SigningKey::from_pkey(new_pkey()?)?,
            signing: SigningKey::from_pkey(new_pkey()?)?,
            encryption: DecryptionKey::from_pkey(new_pkey()?)?,
        })
    }
}

fn new_pkey() -> Result<PKey<openssl::pkey::Private>, JoseError> {
    Rsa::generate(2048)
        .and_then(PKey::from_rsa)
        .map_err(|e| JoseError::Crypto(e.to_string()))
}

fn random_alnum(n: usize) -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), n)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The 403 answer for a refusal: page and `X-SPID-Rule`.
pub fn refusal_response(r: &Refusal) -> Response {
    tracing::info!(rule = r.rule.code(), detail = %r.detail, "relying party refused");
    (
        StatusCode::FORBIDDEN,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::HeaderName::from_static(RULE_HEADER),
                HeaderValue::from_static(r.rule.code()),
            ),
        ],
        pages::rejected(r),
    )
        .into_response()
}

/// The refusal for an OP whose resolution failed: unknown to the anchor, documents that
/// could not be fetched (summarised: the fetcher's reason is only logged), or no valid chain.
fn resolve_refusal(op: &str, e: &ResolveError) -> Refusal {
    tracing::warn!(op, error = %e, "OP trust chain not resolved");
    if matches!(e, ResolveError::Unknown { .. }) {
        Refusal::new(Rule::OidcOpUnlisted, e.to_string())
    } else if e.fetch_failed() {
        let detail = match e {
            ResolveError::Fetch { url, .. } if *url == entity_configuration_url(op) => {
                "the OP's entity configuration could not be fetched".to_string()
            }
            _ => e.public(),
        };
        Refusal::new(Rule::OidcOpFetchFailed, detail)
    } else {
        Refusal::new(Rule::OidcOpUntrusted, e.public())
    }
}

/// A parameter the OP's metadata lacks (or holds as something else than a string).
#[derive(Debug, thiserror::Error)]
#[error("OP metadata has no {0}")]
struct MissingMetadata(&'static str);

fn string_at(m: &Map<String, Value>, k: &'static str) -> Result<String, MissingMetadata> {
    m.get(k)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(MissingMetadata(k))
}

/// Why no authorization request could be sent.
#[derive(Debug)]
enum LoginFailure {
    /// The pending-request store is full (HTTP 503).
    Busy(Full),
    /// Signing or URL building failed (HTTP 500).
    Internal(String),
}

impl RelyingParty {
    /// Builds the RP with fresh federation, signing and encryption keys (RSA 2048).
    pub fn new(cfg: RpConfig) -> Result<RelyingParty, JoseError> {
        Ok(RelyingParty::with_keys(cfg, RpKeys::generate()?))
    }

    /// Builds the RP with the given keys (e.g. fixed test keys, to skip key generation).
    pub fn with_keys(cfg: RpConfig, keys: RpKeys) -> RelyingParty {
        RelyingParty(Arc::new(Inner {
            cfg,
            federation_key: keys.federation,
            signing_key: keys.signing,
            encryption_key: keys.encryption,
            membership: Membership::default(),
            ops: RwLock::new(HashMap::new()),
            pending: Mutex::new(PendingMap::new(MAX_PENDING, MAX_PENDING_PER_SESSION)),
            sessions: Mutex::new(HashMap::new()),
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(spid_core::oidc::federation::FETCH_CONNECT_TIMEOUT)
                .build()
                .unwrap_or_default(),
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &RpConfig {
        &self.0.cfg
    }

    /// The entity id (= client_id).
    pub fn entity_id(&self) -> &str {
        &self.0.cfg.entity_id
    }

    /// The federation keys to register at the trust anchor.
    pub fn federation_jwks(&self) -> Jwks {
        Jwks::new(self.0.federation_key.public_jwk().into_iter().collect())
    }

    /// The OIDC-core keys: signing (`use: sig`) and encryption (`use: enc`).
    pub fn jwks(&self) -> Jwks {
        Jwks::new(
            self.0
                .signing_key
                .public_jwk()
                .into_iter()
                .chain(self.0.encryption_key.public_jwk())
                .collect(),
        )
    }

    /// Joins the federation: `anchor` is trusted for OPs' chains and named in
    /// `authority_hints`; `mark` is the trust mark it issued to this RP.
    pub fn set_trust_anchor(&self, anchor: EntityKeys, mark: TrustMarkEntry) {
        self.0.membership.join(anchor, Some(mark));
    }

    /// Once joined, names `superior` (an intermediate, SPID Soggetto Aggregatore) instead of
    /// the trust anchor in `authority_hints`. The trust mark stays the anchor's.
    pub fn set_superior(&self, superior: &str) {
        self.0.membership.set_superior(superior);
    }

    /// Joins a federation run by someone else: `anchor` (its entity id and the keys from its
    /// entity configuration) is trusted and named in `authority_hints`; the trust marks come
    /// from [`RpConfig::trust_marks_file`] once the anchor has onboarded this RP.
    pub fn set_external_trust_anchor(&self, anchor: EntityKeys) {
        self.0.membership.join(anchor, None);
    }

    fn trust_marks_from_file(&self) -> Option<Vec<TrustMarkEntry>> {
        trust_marks_from_file(self.0.cfg.trust_marks_file.as_deref())
    }

    /// The `openid_relying_party` metadata.
    pub fn metadata(&self) -> Value {
        let cfg = &self.0.cfg;
        let alg = cfg.profile.default_signing_alg.name();
        let mut md = json!({
            "client_id": cfg.entity_id,
            "client_name": "spid-harness reference RP",
            "redirect_uris": [cfg.redirect_uri()],
            "jwks": self.jwks().to_value(),
            "response_types": ["code"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "private_key_jwt",
            "client_registration_types": ["automatic"],
            "id_token_signed_response_alg": alg,
            "userinfo_signed_response_alg": alg,
            "userinfo_encrypted_response_alg": cfg.userinfo_jwe.0.name(),
            "userinfo_encrypted_response_enc": cfg.userinfo_jwe.1.name(),
        });
        if let Some(obj) = md.as_object_mut() {
            if cfg.profile.rp_metadata_cie {
                obj.insert("application_type".into(), json!("web"));
            }
            if cfg.requires_encrypted_id_token() {
                // CIE: a declared ID-token encryption the OP must honour (nested JWT).
                obj.insert(
                    "id_token_encrypted_response_alg".into(),
                    json!(cfg.userinfo_jwe.0.name()),
                );
                obj.insert(
                    "id_token_encrypted_response_enc".into(),
                    json!(cfg.userinfo_jwe.1.name()),
                );
            }
        }
        md
    }

    fn configuration(&self) -> Result<String, FederationError> {
        let cfg = &self.0.cfg;
        let (authority_hint, trust_marks) =
            self.0.membership.published(|| self.trust_marks_from_file());
        let c = LeafConfiguration {
            entity_id: &cfg.entity_id,
            now: cfg.clock.now().timestamp(),
            ttl: EC_TTL_SECS,
            jwks: self.federation_jwks(),
            role: "openid_relying_party",
            role_metadata: self.metadata(),
            organization_name: "spid-harness reference RP",
            resolve_endpoint: format!("{}/resolve", cfg.entity_id),
            authority_hint,
            trust_marks,
        };
        leaf_entity_configuration(c, &self.0.federation_key, cfg.profile.default_signing_alg)
    }

    /// Drops every cached OP trust chain: the next login resolves its OP afresh.
    pub fn forget_trusted_ops(&self) {
        self.0
            .ops
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The OP `op`, from the cache while its chain is valid, else resolved through the
    /// trust anchor (trust mark, its status, anchor statement, chain), which must be its
    /// direct superior. Nothing is fetched from `op` unless the anchor has a statement about
    /// it ([`anchor_knows`]); fetch failures are refused in summary (`oidc.op.fetch-failed`),
    /// their reason logged.
    pub async fn trusted_op(&self, op: &str) -> Result<TrustedOp, Refusal> {
        let now = self.0.cfg.clock.now();
        if let Some(t) = self
            .0
            .ops
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(op)
            .filter(|t| t.exp > now.timestamp())
        {
            return Ok(t.clone());
        }
        let untrusted = |d: String| Refusal::new(Rule::OidcOpUntrusted, d);
        let missing = |e: MissingMetadata| untrusted(e.to_string());
        let anchor = self
            .0
            .membership
            .anchor()
            .ok_or_else(|| untrusted("no trust anchor configured".into()))?;
        let fetcher = fed::HttpFetcher(&self.0.http);
        let profile = &self.0.cfg.profile;
        // SPID: "No intermediates are allowed between OPs and the TA".
        anchor_knows(
            &fetcher,
            op,
            &anchor,
            profile,
            now,
            Intermediates::Forbidden,
        )
        .await
        .map_err(|e| resolve_refusal(op, &e))?;
        let chain = resolve_trust_chain(
            &fetcher,
            op,
            &anchor,
            profile,
            now,
            Intermediates::Forbidden,
        )
        .await
        .map_err(|e| resolve_refusal(op, &e))?;
        let md = chain
            .metadata
            .openid_provider()
            .ok_or_else(|| untrusted("no openid_provider metadata".into()))?;
        let jwks: Jwks = md
            .get("jwks")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| untrusted("OP metadata has no usable jwks".into()))?;
        let t = TrustedOp {
            issuer: string_at(md, "issuer").map_err(missing)?,
            authorization_endpoint: string_at(md, "authorization_endpoint").map_err(missing)?,
            token_endpoint: string_at(md, "token_endpoint").map_err(missing)?,
            userinfo_endpoint: string_at(md, "userinfo_endpoint").map_err(missing)?,
            revocation_endpoint: string_at(md, "revocation_endpoint").ok(),
            introspection_endpoint: string_at(md, "introspection_endpoint").ok(),
            jwks,
            exp: chain.exp,
        };
        if t.issuer != op {
            return Err(untrusted(format!(
                "issuer {} is not the entity id",
                t.issuer
            )));
        }
        let mut ops = self.0.ops.write().unwrap_or_else(|e| e.into_inner());
        if ops.len() >= MAX_PENDING {
            ops.clear();
        }
        ops.insert(op.to_string(), t.clone());
        Ok(t)
    }

    /// Builds and signs the request object and the authorization URL for `op`; records
    /// state → (nonce, verifier, OP) for the browser session `sid`. `offline`: scope
    /// `openid offline_access` with `prompt=consent` (SPID: long sessions need consent).
    fn authorization_url(
        &self,
        op: &TrustedOp,
        sid: &str,
        offline: bool,
    ) -> Result<url::Url, LoginFailure> {
        let cfg = &self.0.cfg;
        // acr_values stays the required level alone, even offline: with SpidL1 among them
        // every refresh would yield a SpidL1 ID token (SPID-OIDC refresh token), which this RP refuses.
        let scope = cfg.scope(offline);
        let scope = scope.as_str();
        let prompt = if offline { "consent" } else { "consent login" };
        let now: DateTime<Utc> = cfg.clock.now();
        let state = random_alnum(43);
        let nonce = random_alnum(43);
        let verifier = random_alnum(64);
        let challenge = challenge_s256(&verifier);
        let userinfo: Map<String, Value> = cfg
            .userinfo_claims
            .iter()
            .map(|c| (c.clone(), Value::Null))
            .collect();
        let mut claims = json!({
            "iss": cfg.entity_id, "client_id": cfg.entity_id, "aud": op.issuer,
            "iat": now.timestamp(), "exp": now.timestamp() + 120,
            "jti": uuid::Uuid::new_v4().to_string(),
            "response_type": "code", "scope": scope, "redirect_uri": cfg.redirect_uri(),
            "nonce": nonce, "state": state,
            "code_challenge": challenge, "code_challenge_method": "S256",
            "acr_values": cfg.level.uri(), "prompt": prompt,
            "claims": {"userinfo": userinfo},
        });
        if cfg.profile.claims_in_id_token {
            // CIE (CLAIMS_CIE): the same claims asked in the ID token as well.
            claims["claims"]["id_token"] = claims["claims"]["userinfo"].clone();
        }
        let request = sign_jws(
            &claims,
            &self.0.signing_key,
            cfg.profile.default_signing_alg,
            None,
        )
        .map_err(|e| LoginFailure::Internal(e.to_string()))?;
        let mut url = url::Url::parse(&op.authorization_endpoint)
            .map_err(|e| LoginFailure::Internal(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("client_id", &cfg.entity_id)
            .append_pair("response_type", "code")
            .append_pair("scope", scope)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("request", &request);
        lock(&self.0.pending)
            .insert(
                state,
                Pending {
                    sid: sid.to_string(),
                    nonce,
                    verifier,
                    op: op.issuer.clone(),
                    created: now,
                },
                Some(sid),
                now + cfg.request_ttl,
                now,
            )
            .map_err(LoginFailure::Busy)?;
        Ok(url)
    }

    /// Authorization requests sent and not yet answered, held in memory (expired ones not
    /// yet dropped included): bounded globally and per browser session.
    pub fn pending_logins(&self) -> usize {
        lock(&self.0.pending).len()
    }

    /// The router, to be nested at the entity id's path (`/oidc/rp`).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/.well-known/openid-federation", get(configuration))
            .route("/login", get(login))
            .route(
                "/callback",
                get(callback::callback).post(callback::callback_post),
            )
            .route("/logout", get(logout))
            .route("/refresh", get(session::refresh))
            .route("/introspect", get(session::introspect))
            .layer(DefaultBodyLimit::max(64 * 1024))
            .with_state(self.clone())
    }
}

/// The session id from the RP cookie, if any.
pub(crate) fn session_id(headers: &HeaderMap) -> Option<String> {
    spid_core::cookie::session_cookie(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        RP_COOKIE,
    )
}

async fn configuration(State(rp): State<RelyingParty>) -> Response {
    match rp.configuration() {
        Ok(jwt) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, ENTITY_STATEMENT_CONTENT_TYPE)],
            jwt,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    op: Option<String>,
    /// `1`: ask this login for `offline_access` (see [`RpConfig::offline_access`]).
    offline: Option<String>,
}

async fn login(
    State(rp): State<RelyingParty>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let Some(op) = q.op.filter(|o| !o.is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            pages::error("Parametro mancante", "op=<OP entity id> is required"),
        )
            .into_response();
    };
    let trusted = match rp.trusted_op(&op).await {
        Ok(t) => t,
        Err(r) => return refusal_response(&r),
    };
    let sid = session_id(&headers).unwrap_or_else(|| random_alnum(32));
    let offline = rp.0.cfg.offline_access || q.offline.as_deref() == Some("1");
    match rp.authorization_url(&trusted, &sid, offline) {
        Ok(url) => {
            let cookie = format!("{RP_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax");
            let mut r = (StatusCode::FOUND, pages::error("Redirect", url.as_str())).into_response();
            if let (Ok(loc), Ok(c)) = (
                HeaderValue::from_str(url.as_str()),
                HeaderValue::from_str(&cookie),
            ) {
                r.headers_mut().insert(header::LOCATION, loc);
                r.headers_mut().insert(header::SET_COOKIE, c);
            }
            r
        }
        Err(LoginFailure::Busy(full)) => {
            tracing::warn!(%full, "login refused: pending-request store full");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/html; charset=utf-8"),
                    ),
                    (
                        header::HeaderName::from_static(RULE_HEADER),
                        HeaderValue::from_static(Rule::ServerPendingFull.code()),
                    ),
                ],
                pages::error(
                    "Servizio temporaneamente non disponibile",
                    &full.to_string(),
                ),
            )
                .into_response()
        }
        Err(LoginFailure::Internal(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

impl RelyingParty {
    /// Ends the browser session `sid`: revokes its access token at the OP's revocation
    /// endpoint (SPID: the RP MUST revoke at logout), with a `private_key_jwt` assertion.
    /// Returns the revocation endpoint's status, or None when there was nothing to revoke.
    /// (SPID: revoking the access token also revokes the refresh tokens issued with it.)
    pub async fn logout(&self, sid: &str) -> Option<u16> {
        let session = lock(&self.0.sessions).remove(sid)?;
        let trusted = self.trusted_op(&session.op).await.ok()?;
        let endpoint = trusted.revocation_endpoint?;
        let answer = self
            .authenticated_post(
                &endpoint,
                &[
                    ("token", session.access_token.as_str()),
                    ("token_type_hint", "access_token"),
                ],
            )
            .await
            .ok()?;
        Some(answer.status)
    }

    /// Records a logged-in session (bounded like the pending requests).
    pub(crate) fn remember_session(&self, sid: &str, session: Session) {
        let mut sessions = lock(&self.0.sessions);
        if sessions.len() >= MAX_PENDING {
            sessions.clear();
        }
        sessions.insert(sid.to_string(), session);
    }

    /// The session `sid`, if logged in.
    pub(crate) fn session(&self, sid: &str) -> Option<Session> {
        lock(&self.0.sessions).get(sid).cloned()
    }
}

async fn logout(State(rp): State<RelyingParty>, headers: HeaderMap) -> Response {
    let detail = match session_id(&headers) {
        None => "no session".to_string(),
        Some(sid) => match rp.logout(&sid).await {
            Some(status) => format!("access token revoked at the OP (HTTP {status})"),
            None => "nothing to revoke".to_string(),
        },
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        pages::error("Logout", &detail),
    )
        .into_response()
}
