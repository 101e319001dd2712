//! OP-side OIDC cases (`fixtures/cases/oidc-op/*.toml`): the harness plays a relying party
//! that sends crafted authorization, token and userinfo requests and judges whether the OP
//! refuses what SPID says it must refuse (AgID check-op groups 2.1, 3.1, 4.x).
//!
//! The [`ProbeRp`] is a real federation leaf: its own keys, an entity configuration that a
//! trust anchor can resolve, and a `redirect_uri` served on loopback, so the OP under test
//! registers it automatically like any RP.

use crate::agent::{Exchange, Page, UserAgent};
use crate::catalogue::{Expect, LoadError, Scope};
use crate::check_idp::{DriverUser, LoginDriver};
use crate::runner::{self, judge, Behaviour, CaseResult, Verdict};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Duration;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use spid_core::clock::{FixedClock, SharedClock};
use spid_core::oidc::federation::{
    leaf_entity_configuration, FederationError, LeafConfiguration, TrustMarkEntry,
};
use spid_core::oidc::jose::{
    decode_unverified, decrypt_jwe, DecryptionKey, JoseError, JweAlg, JweEnc, Jwks, JwsHeader,
    SigAlg, SigningKey,
};
use spid_core::oidc::pkce::challenge_s256;
use spid_core::oidc::plan::{JsonPlan, JwtPlan, SignError};
use spid_core::oidc::Profile;
use spid_idp::users::User;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;
use url::Url;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn default_user() -> String {
    "mario.rossi".into()
}

/// Which OP endpoint the case judges; the steps before it run honestly and must succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// The authorization request (refused: an error redirect or HTTP 4xx on the OP).
    #[default]
    Authorization,
    /// The token request after an honest login (refused: HTTP 4xx).
    Token,
    /// The userinfo request after an honest token exchange (refused: HTTP 4xx).
    Userinfo,
    /// A `refresh_token` grant after an honest `offline_access` login and exchange
    /// (refused: HTTP 4xx).
    Refresh,
    /// The introspection request after an honest token exchange (an answer is judged by
    /// `[introspection]`: its members, whether the token is active).
    Introspection,
    /// The OP's entity configuration, before any login (judged by `[metadata]`: its
    /// `openid_provider` members and its trust marks).
    Metadata,
}

/// The HTTP method of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET.
    #[default]
    Get,
    /// POST (form-urlencoded).
    Post,
}

/// What the probe's messages carry wrong: per message, the edits of
/// [`spid_core::oidc::plan`] applied to the honest message the probe builds first. Set values
/// may hold placeholders: `{op}`, `{client_id}`, `{redirect_uri}`, `{token_endpoint}`,
/// `{random:N}`; a whole value `{now}`, `{now+N}` or `{now-N}` becomes a number of seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProbePlan {
    /// The HTTP parameters of the authorization request.
    pub authz_params: JsonPlan,
    /// The request object.
    pub request_object: JwtPlan,
    /// The form fields of the token request.
    pub token_form: JsonPlan,
    /// The client assertion of the token request.
    pub client_assertion: JwtPlan,
    /// The form fields of the refresh request.
    pub refresh_form: JsonPlan,
    /// The client assertion of the refresh request.
    pub refresh_assertion: JwtPlan,
}

impl ProbePlan {
    /// The probe's messages are requests: no encryption, no transport, no published keys.
    pub fn check(&self) -> Result<(), ProbePlanError> {
        for (name, p) in [
            ("request_object", &self.request_object),
            ("client_assertion", &self.client_assertion),
            ("refresh_assertion", &self.refresh_assertion),
        ] {
            p.check(false, false)
                .map_err(|e| ProbePlanError::Stage(name, e))?;
            if p.sign.publish_key {
                return Err(ProbePlanError::PublishKey(name));
            }
        }
        for (name, p) in [
            ("authz_params", &self.authz_params),
            ("token_form", &self.token_form),
            ("refresh_form", &self.refresh_form),
        ] {
            if p.transport.is_some() {
                return Err(ProbePlanError::Transport(name));
            }
        }
        Ok(())
    }
}

/// Why the harness could not drive an OP-side case to a verdict: a harness error, reported
/// as the case's note.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// A step before the judged one did not succeed.
    #[error("precondition: {0}")]
    Precondition(String),
    /// The case's plan missed its target.
    #[error("the plan missed its target: {0}")]
    PlanMissed(spid_core::oidc::plan::PlanMiss),
    /// Signing a request failed.
    #[error("signing failed: {0}")]
    Sign(JoseError),
    /// An HTTP exchange, URL or header could not be made.
    #[error("{0}")]
    Transport(String),
    /// The authorization led nowhere (no callback, no refusal).
    #[error("{0}")]
    Stuck(String),
    /// The case needs our own OP (its clock).
    #[error("{0} needs our OP's clock")]
    NeedsOurOp(&'static str),
}

impl DriveError {
    fn transport(e: impl std::fmt::Display) -> DriveError {
        DriveError::Transport(e.to_string())
    }
}

/// Why a probe plan was refused at load: a stage its message does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbePlanError {
    /// A JWT plan uses a stage a request does not have.
    #[error("plan.{0}.{1}")]
    Stage(&'static str, spid_core::oidc::plan::StageRefused),
    /// A request publishes no keys.
    #[error("plan.{0}.sign.publish_key: a request publishes no keys")]
    PublishKey(&'static str),
    /// The probe sends requests: no transport.
    #[error("plan.{0}.transport: the probe sends requests; edit its fields")]
    Transport(&'static str),
}

/// How the authorization request is sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthzFaults {
    /// Length of the PKCE verifier the challenge is computed from (default 64).
    #[serde(default)]
    pub verifier_len: Option<usize>,
    /// GET (query) or POST (form) to the authorization endpoint.
    #[serde(default)]
    pub method: HttpMethod,
    /// Ask `offline_access` (scope in both places, `prompt=consent`) before the other changes.
    #[serde(default)]
    pub offline: bool,
    /// Sign the request object ES256 with the probe's EC P-256 key (published in its jwks
    /// where the profile allows EC keys: CIE).
    #[serde(default)]
    pub ec: bool,
}

/// What happens to the code before the judged token request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CodeUse {
    /// The code is sent once.
    #[default]
    Once,
    /// An honest exchange first; the second use is judged.
    Reuse,
}

/// How the token request is sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFaults {
    /// Single use or replay of the code.
    #[serde(default)]
    pub code: CodeUse,
    /// POST (the only right one) or GET.
    #[serde(default = "post")]
    pub method: HttpMethod,
    /// Seconds the OP's clock moves between login and token request (our OP only).
    #[serde(default)]
    pub advance_secs: Option<i64>,
    /// Whether an accepted token response must (true) or must not (false) carry a
    /// `refresh_token` (SPID: only for `offline_access` with `prompt=consent`).
    #[serde(default)]
    pub expect_refresh_token: Option<bool>,
    /// Claims an accepted token response's ID token must carry (CIE: claims in the ID token).
    #[serde(default)]
    pub expect_id_token_claims: Vec<String>,
    /// Whether an accepted token response's ID token must (true) or must not (false) be a
    /// JWE (CIE: encrypted when the RP declares `id_token_encrypted_response_alg`).
    #[serde(default)]
    pub expect_id_token_encrypted: Option<bool>,
    /// Sign the client assertion ES256 with the probe's EC P-256 key (published in its jwks
    /// where the profile allows EC keys: CIE).
    #[serde(default)]
    pub ec: bool,
}

fn post() -> HttpMethod {
    HttpMethod::Post
}

impl Default for TokenFaults {
    fn default() -> TokenFaults {
        TokenFaults {
            code: CodeUse::Once,
            method: HttpMethod::Post,
            advance_secs: None,
            expect_refresh_token: None,
            expect_id_token_claims: Vec::new(),
            expect_id_token_encrypted: None,
            ec: false,
        }
    }
}

/// Which access token the judged userinfo request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BearerToken {
    /// The one the token endpoint issued.
    #[default]
    Issued,
    /// The issued one with its signature altered.
    Tampered,
    /// The ID token instead of the access token.
    IdToken,
    /// The issued one after revoking it at the revocation endpoint.
    Revoked,
    /// The issued one after revoking the login's refresh token (needs `[authz] offline`;
    /// revoking the refresh token revokes every token issued with it).
    RefreshRevoked,
    /// No `Authorization` header.
    Missing,
}

/// How the userinfo request is sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserinfoFaults {
    /// GET (the only right one) or POST.
    #[serde(default)]
    pub method: HttpMethod,
    /// The bearer token sent.
    #[serde(default)]
    pub token: BearerToken,
    /// Claims an accepted answer (decrypted, its JWS read) must carry.
    #[serde(default)]
    pub expect_claims: Vec<String>,
}

/// Which refresh token the judged refresh request presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefreshUse {
    /// The one the code exchange issued.
    #[default]
    Issued,
    /// The issued one again after an honest refresh rotated it.
    Spent,
    /// The rotated one, after the spent one was presented again (the family must be dead).
    AfterReuse,
    /// The access token instead.
    AccessToken,
    /// The issued one after its access token was revoked at the revocation endpoint.
    Revoked,
    /// The issued one after it was itself revoked at the revocation endpoint.
    RefreshRevoked,
}

/// How the refresh request is sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshFaults {
    /// The refresh token presented.
    #[serde(default)]
    pub token: RefreshUse,
    /// The `acr` an accepted refresh's ID token must carry (check-op 3.3.26: SpidL1 when the
    /// request named SpidL1).
    #[serde(default)]
    pub expect_acr: Option<String>,
    /// Whether an accepted refresh must (true) or must not (false) carry a new ID token
    /// (SPID: a new one; CIE: none).
    #[serde(default)]
    pub expect_id_token: Option<bool>,
}

/// Which access token the judged introspection request asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntrospectedToken {
    /// The one the token endpoint issued.
    #[default]
    Issued,
    /// The issued one after revoking it at the revocation endpoint.
    Revoked,
}

/// How the introspection request is sent and what its answer must hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionFaults {
    /// The token asked about.
    #[serde(default)]
    pub token: IntrospectedToken,
    /// Whether the answer must report the token active.
    #[serde(default)]
    pub expect_active: Option<bool>,
    /// Exactly the members the answer must have (CIE: `active` only).
    #[serde(default)]
    pub expect_members: Option<Vec<String>>,
}

/// The OP side's own fields: the judged endpoint, how each step is sent, and what the
/// probe's messages carry wrong.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpBody {
    /// The judged endpoint.
    #[serde(default)]
    pub stage: Stage,
    /// How the authorization request is sent.
    #[serde(default)]
    pub authz: AuthzFaults,
    /// How the token request is sent.
    #[serde(default)]
    pub token: TokenFaults,
    /// How the userinfo request is sent.
    #[serde(default)]
    pub userinfo: UserinfoFaults,
    /// How the refresh request is sent.
    #[serde(default)]
    pub refresh: RefreshFaults,
    /// How the introspection request is sent.
    #[serde(default)]
    pub introspection: IntrospectionFaults,
    /// What the OP's entity configuration must publish.
    #[serde(default)]
    pub metadata: MetadataFaults,
    /// What the probe's messages carry wrong.
    #[serde(default)]
    pub plan: ProbePlan,
}

impl crate::catalogue::Body for OpBody {
    const FOLDER: &'static str = "oidc-op";
    const RULE_PREFIX: &'static str = "op.";
    const LEVEL_EXPECT: bool = false;
    fn check(&self) -> Result<(), crate::catalogue::CaseError> {
        self.plan.check().map_err(crate::catalogue::CaseError::plan)
    }
}

/// One OP-side case: the request the probe spoils and what the OP must answer.
pub type OpCase = crate::catalogue::Case<OpBody>;

/// What the OP's entity configuration must publish (stage `metadata`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataFaults {
    /// `openid_provider` members that must be present.
    #[serde(default)]
    pub present: Vec<String>,
    /// `openid_provider` members that must be absent.
    #[serde(default)]
    pub absent: Vec<String>,
    /// `openid_provider` members and what they must hold: an array must contain each listed
    /// element, any other value must be equal.
    #[serde(default)]
    pub includes: BTreeMap<String, Value>,
    /// The entity type of a trust mark the configuration must carry, its id shaped
    /// `<anchor>/<entity type>/<profile>/` (the anchor: the probe profile's
    /// `trust_mark_id_base`, else the OP's authority hint).
    #[serde(default)]
    pub trust_mark_role: Option<String>,
}

/// The `cie-oidc-op` side's own fields: exactly the `oidc-op` side's, filed under
/// `fixtures/cases/cie-oidc-op/` and run by a probe in the CIE profile at an OP in the CIE
/// profile.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CieOpBody(pub OpBody);

impl crate::catalogue::Body for CieOpBody {
    const FOLDER: &'static str = "cie-oidc-op";
    const RULE_PREFIX: &'static str = "op.";
    const LEVEL_EXPECT: bool = false;
    fn check(&self) -> Result<(), crate::catalogue::CaseError> {
        <OpBody as crate::catalogue::Body>::check(&self.0)
    }
}

/// One case of the CIE OP-side catalogue.
pub type CieOpCase = crate::catalogue::Case<CieOpBody>;

/// The embedded CIE OP-side catalogue, sorted by id.
pub fn embedded_cie() -> Result<Vec<CieOpCase>, LoadError> {
    crate::catalogue::embedded_cases()
}

/// The CIE case as the OP-side runner takes it (the same envelope and body).
pub fn to_op(c: &CieOpCase) -> OpCase {
    OpCase {
        id: c.id.clone(),
        title: c.title.clone(),
        family: c.family.clone(),
        refs: c.refs.clone(),
        flags: c.flags.clone(),
        scope: c.scope,
        user: c.user.clone(),
        expect: c.expect.clone(),
        body: c.body.0.clone(),
    }
}

/// The CIE cases whose id matches the glob, as OP-side cases.
pub fn select_cie(cases: Vec<CieOpCase>, pattern: Option<&str>) -> Result<Vec<OpCase>, String> {
    crate::catalogue::select_by(cases, pattern, |c| &c.id).map(|v| v.iter().map(to_op).collect())
}

/// Parses and checks one OP-side case file (expected rules are our OP's `op.*` codes).
pub fn parse_case(file: &str, text: &str) -> Result<OpCase, LoadError> {
    crate::catalogue::parse(file, text)
}

/// The embedded OP-side catalogue, sorted by id.
pub fn embedded() -> Result<Vec<OpCase>, LoadError> {
    crate::catalogue::embedded_cases()
}

/// Keeps the cases whose id matches the glob.
pub fn select(cases: Vec<OpCase>, pattern: Option<&str>) -> Result<Vec<OpCase>, String> {
    crate::catalogue::select_by(cases, pattern, |c| &c.id)
}

/// The honest flow every OP-side run starts and ends with: login, token, userinfo.
pub fn sanity_case() -> OpCase {
    OpCase {
        id: "sanity".into(),
        title: "honest SpidL2 login, token and userinfo (sanity)".into(),
        family: "sanity".into(),
        refs: vec![],
        flags: vec![],
        scope: Scope::Any,
        user: default_user(),
        expect: Expect::Accept,
        body: OpBody {
            stage: Stage::Userinfo,
            ..OpBody::default()
        },
    }
}

struct ProbeInner {
    entity_id: String,
    clock: SharedClock,
    federation_key: SigningKey,
    signing_key: SigningKey,
    foreign_key: SigningKey,
    encryption_key: DecryptionKey,
    /// The reading the probe speaks and judges by (CIE: `iss` on every authorization
    /// response, ID-token encryption declared).
    profile: Profile,
    /// An EC P-256 signing key, published beside the RSA one where the profile allows EC
    /// keys (CIE `ec_keys_allowed`).
    ec_key: Option<SigningKey>,
    /// The anchor named in `authority_hints` and the marks it issued.
    anchor: RwLock<Option<(String, Vec<TrustMarkEntry>)>>,
}

/// The probing relying party. Cheap to clone.
#[derive(Clone)]
pub struct ProbeRp(Arc<ProbeInner>);

fn rsa_key() -> Result<openssl::pkey::PKey<openssl::pkey::Private>, JoseError> {
    openssl::rsa::Rsa::generate(2048)
        .and_then(openssl::pkey::PKey::from_rsa)
        .map_err(|e| JoseError::Crypto(e.to_string()))
}

/// The probe's four keys, by role. The foreign key must differ from the published ones.
#[derive(Clone)]
pub struct ProbeKeys {
    /// Signs the entity configuration (published in the federation JWKS).
    pub federation: SigningKey,
    /// Signs request objects and client assertions.
    pub signing: SigningKey,
    /// Published nowhere: signs the foreign-key faults.
    pub foreign: SigningKey,
    /// Decrypts what the OP encrypts to the probe.
    pub encryption: DecryptionKey,
}

impl ProbeKeys {
    /// Four freshly generated RSA 2048 keys.
    pub fn generate() -> Result<ProbeKeys, JoseError> {
        Ok(ProbeKeys {
            federation: SigningKey::from_pkey(rsa_key()?)?,
            signing: SigningKey::from_pkey(rsa_key()?)?,
            foreign: SigningKey::from_pkey(rsa_key()?)?,
            encryption: DecryptionKey::from_pkey(rsa_key()?)?,
        })
    }
}

impl ProbeRp {
    /// A probe at `entity_id` (its router is served under that URL's path) with fresh keys.
    pub fn new(entity_id: &str, clock: SharedClock) -> Result<ProbeRp, JoseError> {
        Ok(ProbeRp::with_keys(entity_id, clock, ProbeKeys::generate()?))
    }

    /// [`ProbeRp::new`] with the given keys (e.g. the fixed test keys of [`crate::oidc_keys`]).
    pub fn with_keys(entity_id: &str, clock: SharedClock, keys: ProbeKeys) -> ProbeRp {
        ProbeRp::with_profile(entity_id, clock, keys, Profile::rules_2023())
    }

    /// [`ProbeRp::with_keys`] speaking `profile`: under a profile with
    /// `id_token_encrypted_on_request` (CIE) its metadata declares ID-token encryption and it
    /// decrypts the ID tokens it gets; where `authz_response_iss_required` /
    /// `authz_error_iss_required`, an authorization answer without the OP's `iss` fails the
    /// case.
    pub fn with_profile(
        entity_id: &str,
        clock: SharedClock,
        keys: ProbeKeys,
        profile: Profile,
    ) -> ProbeRp {
        ProbeRp(Arc::new(ProbeInner {
            entity_id: entity_id.trim_end_matches('/').to_string(),
            clock,
            federation_key: keys.federation,
            signing_key: keys.signing,
            foreign_key: keys.foreign,
            encryption_key: keys.encryption,
            ec_key: profile
                .ec_keys_allowed
                .then(SigningKey::generate_p256)
                .and_then(Result::ok),
            profile,
            anchor: RwLock::new(None),
        }))
    }

    /// The reading the probe speaks.
    pub fn profile(&self) -> &Profile {
        &self.0.profile
    }

    /// The claims of a JWT the OP sent the probe: a JWS read as is, a JWE (an encrypted ID
    /// token, the userinfo answer) decrypted with the probe's key first and its nested JWS
    /// read. Whether it was encrypted, and the claims; None when neither opens. Not
    /// signature-checked: the probe judges the OP's requests handling, not its signatures.
    pub fn open_jwt(&self, token: &str) -> Option<(bool, Value)> {
        let token = token.trim();
        if token.split('.').count() == 5 {
            let (_, plain) =
                decrypt_jwe(token, &self.0.encryption_key, &JweAlg::ALL, &JweEnc::ALL).ok()?;
            let inner = String::from_utf8(plain).ok()?;
            return decode_unverified(inner.trim()).ok().map(|(_, c)| (true, c));
        }
        decode_unverified(token).ok().map(|(_, c)| (false, c))
    }

    /// Entity id = client_id.
    pub fn entity_id(&self) -> &str {
        &self.0.entity_id
    }

    /// `<entity id>/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("{}/callback", self.0.entity_id)
    }

    /// The federation keys to register at a trust anchor.
    pub fn federation_jwks(&self) -> Jwks {
        Jwks::new(self.0.federation_key.public_jwk().into_iter().collect())
    }

    /// Names `anchor` in `authority_hints` and publishes `marks`.
    pub fn join(&self, anchor: &str, marks: Vec<TrustMarkEntry>) {
        *self.0.anchor.write().unwrap_or_else(|e| e.into_inner()) =
            Some((anchor.to_string(), marks));
    }

    fn metadata(&self) -> Value {
        let jwks = Jwks::new(
            self.0
                .signing_key
                .public_jwk()
                .into_iter()
                .chain(self.0.ec_key.as_ref().and_then(|k| k.public_jwk().ok()))
                .chain(self.0.encryption_key.public_jwk())
                .collect(),
        );
        let mut md = json!({
            "client_id": self.0.entity_id,
            "client_name": "spid-harness OP probe",
            "redirect_uris": [self.redirect_uri()],
            "jwks": jwks.to_value(),
            "response_types": ["code"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "private_key_jwt",
            "client_registration_types": ["automatic"],
            "id_token_signed_response_alg": "RS256",
            "userinfo_signed_response_alg": "RS256",
            "userinfo_encrypted_response_alg": "RSA-OAEP-256",
            "userinfo_encrypted_response_enc": "A256CBC-HS512",
        });
        if let Some(obj) = md.as_object_mut() {
            if self.0.profile.id_token_encrypted_on_request {
                obj.insert(
                    "id_token_encrypted_response_alg".into(),
                    json!("RSA-OAEP-256"),
                );
                obj.insert(
                    "id_token_encrypted_response_enc".into(),
                    json!("A256CBC-HS512"),
                );
            }
            if self.0.profile.op_metadata_cie {
                // CIE RP metadata names the application type.
                obj.insert("application_type".into(), json!("web"));
            }
        }
        md
    }

    fn configuration(&self) -> Result<String, FederationError> {
        let anchor = self
            .0
            .anchor
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (authority_hint, trust_marks) = match anchor {
            Some((a, m)) => (Some(a), Some(m)),
            None => (None, None),
        };
        let c = LeafConfiguration {
            entity_id: &self.0.entity_id,
            now: self.0.clock.now().timestamp(),
            ttl: 24 * 3600,
            jwks: self.federation_jwks(),
            role: "openid_relying_party",
            role_metadata: self.metadata(),
            organization_name: "spid-harness OP probe",
            resolve_endpoint: format!("{}/resolve", self.0.entity_id),
            authority_hint,
            trust_marks,
        };
        leaf_entity_configuration(c, &self.0.federation_key, SigAlg::RS256)
    }

    /// Entity configuration and `redirect_uri` (which only shows what arrived: the harness
    /// reads the answer from its own trace).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/.well-known/openid-federation", get(configuration))
            .route("/callback", get(callback).post(callback))
            // The callback never reads its body: the limit is for whoever adds a handler.
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
            .with_state(self.clone())
    }

    /// Serves the router under the entity id's path on `listener` within the default
    /// [`spid_net::ServeLimits`].
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        self.serve_limited(listener, spid_net::ServeLimits::default())
            .await
    }

    /// Serves the router under the entity id's path on `listener` within `limits`.
    pub async fn serve_limited(
        self,
        listener: tokio::net::TcpListener,
        limits: spid_net::ServeLimits,
    ) -> std::io::Result<()> {
        let path = Url::parse(&self.0.entity_id)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default();
        let app = if path.is_empty() {
            self.router()
        } else {
            Router::new().nest(&path, self.router())
        };
        spid_net::serve(listener, app, limits).await
    }

    /// Signs `claims` through the case's `plan` (the honest header names the probe's key and
    /// RS256, or ES256 with the probe's EC key when `ec`; the foreign key signs under the same
    /// `kid`).
    fn sign_as(
        &self,
        claims: &Value,
        plan: &JwtPlan,
        ctx: &Ctx,
        stage: &str,
        ec: bool,
    ) -> Result<String, DriveError> {
        let (key, alg) = if ec {
            let key = self.0.ec_key.as_ref().ok_or_else(|| {
                DriveError::Precondition("the probe has no EC key under this profile".into())
            })?;
            (key, SigAlg::ES256)
        } else {
            (&self.0.signing_key, SigAlg::RS256)
        };
        let foreign = SigningKey::from_pkey(self.0.foreign_key.pkey().clone())
            .map_err(DriveError::Sign)?
            .with_kid(key.kid());
        let header = JwsHeader::new(alg, key);
        plan.sign(claims, &header, key, &foreign, |v| {
            expand(v, &ctx.vars, ctx.now)
        })
        .map_err(|e| match e {
            SignError::Miss(m) => DriveError::PlanMissed(m.within(stage)),
            SignError::Jose(e) => DriveError::Sign(e),
        })
    }
}

/// A probe speaking `profile` on a 127.0.0.1 port with the fixed test keys, registered at
/// `ta` (a subordinate there, holding its trust mark): the `cie-oidc-op` side's RP beside the
/// federation's own probe. The task serves it until aborted.
pub async fn start_probe(
    ta: &spid_idp::oidc::ta::TrustAnchor,
    clock: SharedClock,
    profile: Profile,
) -> anyhow::Result<(ProbeRp, tokio::task::JoinHandle<()>)> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let id = format!("http://{}/probe-rp-{}", l.local_addr()?, profile.name);
    let probe = ProbeRp::with_profile(&id, clock, crate::oidc_keys::probe()?, profile);
    let mark = ta.register(
        probe.entity_id(),
        probe.federation_jwks(),
        spid_idp::oidc::ta::EntityKind::OpenIdRelyingParty,
    )?;
    probe.join(ta.entity_id(), vec![mark]);
    let task = tokio::spawn({
        let probe = probe.clone();
        async move {
            let _ = probe.serve(l).await;
        }
    });
    Ok((probe, task))
}

/// Applies a plan's field edits, placeholders expanded; a miss is a harness error.
fn edit_fields(
    plan: &JsonPlan,
    pairs: &mut Vec<(String, String)>,
    ctx: &Ctx,
    stage: &str,
) -> Result<(), DriveError> {
    plan.edit
        .apply_pairs(pairs, stage, |v| expand(v, &ctx.vars, ctx.now))
        .map_err(DriveError::PlanMissed)
}

async fn configuration(State(p): State<ProbeRp>) -> Response {
    match p.configuration() {
        Ok(jwt) => spid_idp::oidc::entity_statement(jwt),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn callback() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "authorization response received",
    )
        .into_response()
}

/// The OP endpoints the probe calls.
#[derive(Debug, Clone)]
pub struct OpEndpoints {
    /// Entity id = issuer.
    pub issuer: String,
    /// Authorization endpoint.
    pub authorization: String,
    /// Token endpoint.
    pub token: String,
    /// Userinfo endpoint.
    pub userinfo: String,
    /// Revocation endpoint, if published.
    pub revocation: Option<String>,
    /// Introspection endpoint, if published.
    pub introspection: Option<String>,
}

impl OpEndpoints {
    /// Reads the endpoints from the OP's entity configuration. Not trust-validated: the probe
    /// only needs addresses; the OP under test is the one whose checks are judged.
    pub async fn discover(op: &str) -> anyhow::Result<OpEndpoints> {
        let op = op.trim_end_matches('/');
        let url = format!("{op}/.well-known/openid-federation");
        let body = reqwest::Client::builder()
            .no_proxy()
            .build()?
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let (_, claims) = decode_unverified(body.trim())?;
        let md = claims
            .pointer("/metadata/openid_provider")
            .and_then(Value::as_object)
            .ok_or_else(|| anyhow::anyhow!("{url}: no openid_provider metadata"))?;
        let s = |k: &str| -> anyhow::Result<String> {
            md.get(k)
                .and_then(Value::as_str)
                .map(String::from)
                .ok_or_else(|| anyhow::anyhow!("{url}: no {k}"))
        };
        Ok(OpEndpoints {
            issuer: s("issuer").unwrap_or_else(|_| op.to_string()),
            authorization: s("authorization_endpoint")?,
            token: s("token_endpoint")?,
            userinfo: s("userinfo_endpoint")?,
            revocation: s("revocation_endpoint").ok(),
            introspection: s("introspection_endpoint").ok(),
        })
    }
}

/// Where OP-side cases are aimed.
pub struct OpTarget<'a> {
    /// The probe (registered at the OP's trust anchor).
    pub probe: &'a ProbeRp,
    /// The OP.
    pub op: &'a OpEndpoints,
    /// Our OP's stopped clock (internal runs): `advance_secs` cases need it.
    pub clock: Option<&'a FixedClock>,
    /// Our OP, which always names the deciding rule.
    pub internal: bool,
    /// Test users (our OP's pages).
    pub users: &'a [User],
    /// Another OP's login pages and the user to log in as (None: our OP's pages).
    pub driver: Option<(&'a LoginDriver, &'a DriverUser)>,
}

fn random_alnum(n: usize) -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), n)
}

/// Replaces placeholders in a string value; `{now±N}` as a whole value becomes a number.
fn expand(v: &Value, vars: &BTreeMap<&str, String>, now: i64) -> Value {
    match v {
        Value::String(s) => {
            if let Some(rest) = s.strip_prefix("{now").and_then(|r| r.strip_suffix('}')) {
                let off = match rest {
                    "" => Some(0),
                    r if r.starts_with('+') => r[1..].parse::<i64>().ok(),
                    r if r.starts_with('-') => r[1..].parse::<i64>().ok().map(|n| -n),
                    _ => None,
                };
                if let Some(off) = off {
                    return json!(now + off);
                }
            }
            Value::String(expand_str(s, vars))
        }
        other => other.clone(),
    }
}

fn expand_str(s: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut out = s.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    while let Some(start) = out.find("{random:") {
        let Some(len) = out[start..].find('}') else {
            break;
        };
        let n: usize = out[start + 8..start + len].parse().unwrap_or(0);
        out.replace_range(start..start + len + 1, &random_alnum(n.min(4096)));
    }
    out
}

struct Ctx {
    vars: BTreeMap<&'static str, String>,
    now: i64,
}

/// What the authorization step produced.
enum AuthzOutcome {
    /// A code came back (with the `state` and `iss` the OP sent).
    Code {
        code: String,
        state: Option<String>,
        iss: Option<String>,
    },
    /// The OP refused: an `error` redirect (with the `iss` it sent, `redirected`) or a 4xx
    /// page (`status`), naming `rule` if it did.
    Refused {
        status: u16,
        error: Option<String>,
        rule: Option<String>,
        redirected: bool,
        iss: Option<String>,
    },
    /// Anything else (no callback, no refusal).
    Stuck(String),
}

/// The answer to a judged API call.
struct ApiOutcome {
    status: u16,
    error: Option<String>,
    rule: Option<String>,
    body: Value,
}

impl ApiOutcome {
    fn from_page(p: &Page) -> ApiOutcome {
        let body: Value = serde_json::from_str(&p.body).unwrap_or(Value::Null);
        ApiOutcome {
            status: p.status,
            error: body.get("error").and_then(Value::as_str).map(String::from),
            rule: p.spid_rule().map(String::from),
            body,
        }
    }
}

/// Runs one OP-side case against `t`.
pub async fn run_case(t: &OpTarget<'_>, case: &OpCase) -> CaseResult {
    let started = Instant::now();
    let mut ua = match runner::user_agent() {
        Ok(u) => u,
        Err(e) => return failed(case, started, e.to_string(), Vec::new()),
    };
    let outcome = drive(t, case, &mut ua).await;
    let trace = ua.take_trace();
    match outcome {
        Err(e) => failed(case, started, e.to_string(), trace),
        Ok((verdict, status, error, rule, extra_note)) => {
            let (mut pass, mut note) = judge(&case.expect, verdict, rule.as_deref(), t.internal);
            if let (true, Expect::Reject { codes, .. }, Some(e)) = (pass, &case.expect, &error) {
                if !codes.is_empty() && !codes.contains(e) {
                    pass = false;
                    note = Some(format!("error {e}, expected {}", codes.join(" | ")));
                }
            }
            if pass {
                if let Some(n) = extra_note {
                    pass = false;
                    note = Some(n);
                }
            }
            CaseResult {
                id: case.id.clone(),
                family: case.family.clone(),
                title: case.title.clone(),
                expected: case.expect.clone(),
                verdict,
                status,
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

type Judged = (Verdict, u16, Option<String>, Option<String>, Option<String>);

fn verdict_of(status: u16) -> Verdict {
    Verdict::from_oauth_status(status)
}

async fn drive(t: &OpTarget<'_>, case: &OpCase, ua: &mut UserAgent) -> Result<Judged, DriveError> {
    if case.stage == Stage::Metadata {
        return metadata_stage(t, ua, &case.metadata).await;
    }
    let probe = t.probe;
    let now = probe.0.clock.now().timestamp();
    let vars: BTreeMap<&'static str, String> = [
        ("op", t.op.issuer.clone()),
        ("client_id", probe.entity_id().to_string()),
        ("redirect_uri", probe.redirect_uri()),
        ("token_endpoint", t.op.token.clone()),
    ]
    .into_iter()
    .collect();
    let ctx = Ctx { vars, now };
    let user = t.users.iter().find(|u| u.username == case.user);

    // Authorization request.
    let a = &case.authz;
    let verifier = random_alnum(a.verifier_len.unwrap_or(64));
    let challenge = challenge_s256(&verifier);
    let mut claims = json!({
        "iss": probe.entity_id(), "client_id": probe.entity_id(), "aud": t.op.issuer,
        "iat": now, "exp": now + 120, "jti": uuid::Uuid::new_v4().to_string(),
        "response_type": "code", "scope": "openid", "redirect_uri": probe.redirect_uri(),
        "nonce": random_alnum(43), "state": random_alnum(43),
        "code_challenge": challenge, "code_challenge_method": "S256",
        "acr_values": spid_core::SpidLevel::L2.uri(), "prompt": "consent login",
        "claims": {"userinfo": {"given_name": null, "family_name": null}},
    });
    let scope = if a.offline {
        "openid offline_access"
    } else {
        "openid"
    };
    if a.offline {
        claims["scope"] = json!(scope);
        claims["prompt"] = json!("consent");
    }
    // The state the OP must echo is the one the (edited) request object carries.
    let mut edited = claims.clone();
    if let Some(obj) = edited.as_object_mut() {
        case.plan
            .request_object
            .pre_sign
            .apply_with(obj, "plan.request_object.pre_sign", |v| {
                expand(v, &ctx.vars, ctx.now)
            })
            .map_err(DriveError::PlanMissed)?;
    }
    let sent_state = edited
        .get("state")
        .and_then(Value::as_str)
        .map(String::from);
    let request = probe.sign_as(
        &claims,
        &case.plan.request_object,
        &ctx,
        "plan.request_object",
        a.ec,
    )?;
    let mut params: Vec<(String, String)> = [
        ("client_id", probe.entity_id()),
        ("response_type", "code"),
        ("scope", scope),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("request", request.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    edit_fields(
        &case.plan.authz_params,
        &mut params,
        &ctx,
        "plan.authz_params.edit",
    )?;
    let mut url = Url::parse(&t.op.authorization).map_err(DriveError::transport)?;
    let first = match a.method {
        HttpMethod::Get => {
            url.query_pairs_mut().extend_pairs(&params);
            ua.get(&url).await
        }
        HttpMethod::Post => ua.post_form(&url, &params).await,
    }
    .map_err(DriveError::transport)?;
    match t.driver {
        Some((driver, who)) => driver.continue_from(ua, first, who).await,
        None => runner::continue_login(ua, first, user, Behaviour::default()).await,
    }
    .map_err(DriveError::transport)?;
    let outcome = authorization_outcome(ua.trace(), &probe.redirect_uri(), &t.op.issuer);

    if case.stage == Stage::Authorization {
        let p = probe.profile();
        return Ok(match outcome {
            AuthzOutcome::Code { state, iss, .. } => {
                let note = if state != sent_state {
                    Some(format!(
                        "the OP answered state {}, the request sent {}",
                        shown(&state),
                        shown(&sent_state)
                    ))
                } else {
                    iss_note(
                        p.authz_response_iss_required,
                        &iss,
                        &t.op.issuer,
                        "response",
                    )
                };
                (Verdict::Accept, 200, None, None, note)
            }
            AuthzOutcome::Refused {
                status,
                error,
                rule,
                redirected,
                iss,
            } => {
                let note = redirected
                    .then(|| iss_note(p.authz_error_iss_required, &iss, &t.op.issuer, "error"))
                    .flatten();
                (Verdict::Reject, status, error, rule, note)
            }
            AuthzOutcome::Stuck(why) => return Err(DriveError::Stuck(why)),
        });
    }
    let code = match outcome {
        AuthzOutcome::Code { code, .. } => code,
        AuthzOutcome::Refused { status, error, .. } => {
            return Err(DriveError::Precondition(format!(
                "the honest authorization was refused (HTTP {status}, error {})",
                error.as_deref().unwrap_or("none")
            )))
        }
        AuthzOutcome::Stuck(why) => return Err(DriveError::Precondition(why)),
    };

    // Token request.
    let tk = &case.token;
    if let Some(secs) = tk.advance_secs {
        match t.clock {
            Some(c) => c.advance(Duration::seconds(secs)),
            None => return Err(DriveError::NeedsOurOp("advance_secs")),
        }
    }
    let judged_token = case.stage == Stage::Token;
    let honest = TokenFaults::default();
    let (no_form, no_assertion) = (JsonPlan::default(), JwtPlan::default());
    let honest_edits = (&no_form, &no_assertion);
    if judged_token && tk.code == CodeUse::Reuse {
        let first = token_call(t, ua, &ctx, &honest, honest_edits, &code, &verifier).await?;
        if first.status != 200 {
            return Err(DriveError::Precondition(format!(
                "the first, honest token request got {}",
                first.status
            )));
        }
    }
    let (faults, edits) = if judged_token {
        (tk, (&case.plan.token_form, &case.plan.client_assertion))
    } else {
        (&honest, honest_edits)
    };
    let answer = token_call(t, ua, &ctx, faults, edits, &code, &verifier).await?;
    if judged_token {
        let accepted = answer.status == 200 && answer.body.get("access_token").is_some();
        let verdict = if accepted {
            Verdict::Accept
        } else {
            verdict_of(answer.status)
        };
        let has_refresh = answer.body.get("refresh_token").is_some();
        let note = match tk.expect_refresh_token {
            Some(want) if accepted && want != has_refresh => Some(format!(
                "the token response {} a refresh_token",
                if has_refresh { "carries" } else { "lacks" }
            )),
            _ => None,
        };
        let note = note.or_else(|| {
            accepted
                .then(|| id_token_note(probe, tk, answer.body.get("id_token")))
                .flatten()
        });
        return Ok((verdict, answer.status, answer.error, answer.rule, note));
    }
    let (Some(access), Some(id_token)) = (
        answer.body.get("access_token").and_then(Value::as_str),
        answer.body.get("id_token").and_then(Value::as_str),
    ) else {
        return Err(DriveError::Precondition(format!(
            "the honest token request got {} without tokens",
            answer.status
        )));
    };

    if case.stage == Stage::Refresh {
        return refresh_stage(t, ua, &ctx, &case.refresh, &case.plan, &answer.body, access).await;
    }
    if case.stage == Stage::Introspection {
        return introspection_stage(t, ua, &ctx, &case.introspection, access).await;
    }

    // Userinfo request.
    let u = &case.userinfo;
    let bearer = match u.token {
        BearerToken::Issued | BearerToken::Revoked | BearerToken::RefreshRevoked => {
            Some(access.to_string())
        }
        BearerToken::Tampered => {
            let mut s = access.to_string();
            let i = s.len().saturating_sub(5);
            let c = if s.as_bytes().get(i) == Some(&b'A') {
                "B"
            } else {
                "A"
            };
            s.replace_range(i..i + 1, c);
            Some(s)
        }
        BearerToken::IdToken => Some(id_token.to_string()),
        BearerToken::Missing => None,
    };
    if u.token == BearerToken::Revoked {
        revoke(t, ua, &ctx, access).await?;
    }
    if u.token == BearerToken::RefreshRevoked {
        let rt = answer
            .body
            .get("refresh_token")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                DriveError::Precondition("the token response has no refresh_token".into())
            })?;
        revoke(t, ua, &ctx, rt).await?;
    }
    let mut headers = HeaderMap::new();
    if let Some(b) = bearer {
        let v = HeaderValue::from_str(&format!("Bearer {b}")).map_err(DriveError::transport)?;
        headers.insert(AUTHORIZATION, v);
    }
    let method = match u.method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
    };
    let page = ua
        .send(
            method,
            &Url::parse(&t.op.userinfo).map_err(DriveError::transport)?,
            &[],
            headers,
        )
        .await
        .map_err(DriveError::transport)?;
    let answer = ApiOutcome::from_page(&page);
    let verdict = verdict_of(answer.status);
    let note = if verdict == Verdict::Accept && !u.expect_claims.is_empty() {
        match probe.open_jwt(&page.body) {
            Some((_, claims)) => missing_claims(&claims, &u.expect_claims, "the userinfo answer"),
            None => Some("the userinfo answer does not open (JWE to the probe, nested JWS)".into()),
        }
    } else {
        None
    };
    Ok((verdict, answer.status, answer.error, answer.rule, note))
}

/// The judged entity configuration: fetched from the OP's well-known URL (not
/// trust-validated: its contents are judged), its `openid_provider` metadata and trust
/// marks checked against `f`.
async fn metadata_stage(
    t: &OpTarget<'_>,
    ua: &mut UserAgent,
    f: &MetadataFaults,
) -> Result<Judged, DriveError> {
    let url = format!(
        "{}/.well-known/openid-federation",
        t.op.issuer.trim_end_matches('/')
    );
    let page = ua
        .get(&Url::parse(&url).map_err(DriveError::transport)?)
        .await
        .map_err(DriveError::transport)?;
    if page.status != 200 {
        return Ok((
            verdict_of(page.status),
            page.status,
            None,
            page.spid_rule().map(String::from),
            None,
        ));
    }
    let Ok((_, ec)) = decode_unverified(page.body.trim()) else {
        return Ok((
            Verdict::Accept,
            page.status,
            None,
            None,
            Some("the entity configuration is not a JWT".into()),
        ));
    };
    let note = metadata_note(&ec, f, t.probe.profile());
    Ok((Verdict::Accept, page.status, None, None, note))
}

/// Why the entity configuration `ec` fails `f`, or None.
fn metadata_note(ec: &Value, f: &MetadataFaults, profile: &Profile) -> Option<String> {
    let Some(md) = ec
        .pointer("/metadata/openid_provider")
        .and_then(Value::as_object)
    else {
        return Some("the entity configuration has no openid_provider metadata".into());
    };
    let mut wrong: Vec<String> = Vec::new();
    wrong.extend(
        f.present
            .iter()
            .filter(|m| !md.contains_key(m.as_str()))
            .map(|m| format!("{m} missing")),
    );
    wrong.extend(
        f.absent
            .iter()
            .filter(|m| md.contains_key(m.as_str()))
            .map(|m| format!("{m} published")),
    );
    for (member, want) in &f.includes {
        let got = md.get(member);
        let holds = match (want, got) {
            (Value::Array(w), Some(Value::Array(g))) => w.iter().all(|x| g.contains(x)),
            (_, Some(g)) => g == want,
            (_, None) => false,
        };
        if !holds {
            wrong.push(format!(
                "{member} is {}, expected {want}",
                got.map_or("absent".into(), Value::to_string)
            ));
        }
    }
    if let Some(role) = &f.trust_mark_role {
        let anchor = profile.trust_mark_id_base.clone().or_else(|| {
            ec.get("authority_hints")
                .and_then(|h| h.get(0))
                .and_then(Value::as_str)
                .map(String::from)
        });
        let prefix = anchor.map(|a| format!("{}/{role}/", a.trim_end_matches('/')));
        let ids: Vec<&str> = ec
            .get("trust_marks")
            .and_then(Value::as_array)
            .map(|marks| {
                marks
                    .iter()
                    .filter_map(|m| m.get("id").or_else(|| m.get("trust_mark_type")))
                    .filter_map(Value::as_str)
                    .collect()
            })
            .unwrap_or_default();
        let shaped = |id: &&str| {
            prefix.as_deref().is_some_and(|p| {
                id.strip_prefix(p)
                    .and_then(|rest| rest.strip_suffix('/'))
                    .is_some_and(|kind| !kind.is_empty() && !kind.contains('/'))
            })
        };
        if !ids.iter().any(shaped) {
            wrong.push(format!(
                "no trust mark id {}<profile>/ (ids: {})",
                prefix.as_deref().unwrap_or("<anchor>/"),
                if ids.is_empty() {
                    "none".to_string()
                } else {
                    ids.join(", ")
                }
            ));
        }
    }
    (!wrong.is_empty()).then(|| format!("the OP metadata: {}", wrong.join("; ")))
}

/// Why the ID token of an accepted token response fails `tk`'s expectations, or None.
fn id_token_note(probe: &ProbeRp, tk: &TokenFaults, id_token: Option<&Value>) -> Option<String> {
    if tk.expect_id_token_claims.is_empty() && tk.expect_id_token_encrypted.is_none() {
        return None;
    }
    let Some((encrypted, claims)) = id_token
        .and_then(Value::as_str)
        .and_then(|t| probe.open_jwt(t))
    else {
        return Some("the ID token does not open (a JWS, or a JWE to the probe)".into());
    };
    if let Some(want) = tk.expect_id_token_encrypted.filter(|w| *w != encrypted) {
        return Some(format!(
            "the ID token is {}, expected {}",
            if encrypted { "a JWE" } else { "a plain JWS" },
            if want { "a JWE" } else { "a plain JWS" }
        ));
    }
    missing_claims(&claims, &tk.expect_id_token_claims, "the ID token")
}

/// Which of `want` `claims` lacks, as a note naming `what`, or None.
fn missing_claims(claims: &Value, want: &[String], what: &str) -> Option<String> {
    let missing: Vec<&str> = want
        .iter()
        .filter(|c| claims.get(c.as_str()).is_none())
        .map(String::as_str)
        .collect();
    (!missing.is_empty()).then(|| format!("{what} lacks {}", missing.join(", ")))
}

/// The judged introspection: about the issued `access` token, after revoking it when `f` says
/// so; the answer's `active` and members are checked against `f`.
async fn introspection_stage(
    t: &OpTarget<'_>,
    ua: &mut UserAgent,
    ctx: &Ctx,
    f: &IntrospectionFaults,
    access: &str,
) -> Result<Judged, DriveError> {
    let endpoint = t.op.introspection.clone().ok_or_else(|| {
        DriveError::Precondition("the OP publishes no introspection_endpoint".into())
    })?;
    if f.token == IntrospectedToken::Revoked {
        revoke(t, ua, ctx, access).await?;
    }
    let mut form = client_auth(t, ctx, &JwtPlan::default(), &endpoint)?;
    form.push(("token".into(), access.to_string()));
    let page = ua
        .send(
            Method::POST,
            &Url::parse(&endpoint).map_err(DriveError::transport)?,
            &form,
            HeaderMap::new(),
        )
        .await
        .map_err(DriveError::transport)?;
    let r = ApiOutcome::from_page(&page);
    let Some(obj) = r.body.as_object().filter(|_| r.status == 200) else {
        return Ok((verdict_of(r.status), r.status, r.error, r.rule, None));
    };
    let active = obj.get("active").and_then(Value::as_bool);
    let mut note = match (f.expect_active, active) {
        (_, None) => Some("the introspection answer has no boolean active".into()),
        (Some(want), Some(got)) if want != got => Some(format!(
            "the introspection answer says active {got}, expected {want}"
        )),
        _ => None,
    };
    if let (None, Some(want)) = (&note, &f.expect_members) {
        let got: Vec<&str> = obj.keys().map(String::as_str).collect();
        let extra: Vec<&str> = got
            .iter()
            .copied()
            .filter(|k| !want.iter().any(|w| w == k))
            .collect();
        let missing: Vec<&str> = want
            .iter()
            .map(String::as_str)
            .filter(|w| !got.contains(w))
            .collect();
        if !extra.is_empty() || !missing.is_empty() {
            note = Some(format!(
                "the introspection answer has members {}, expected exactly {}",
                got.join(", "),
                want.join(", ")
            ));
        }
    }
    Ok((Verdict::Accept, r.status, None, None, note))
}

/// Revokes `token` at the OP's revocation endpoint (a step that must succeed).
async fn revoke(
    t: &OpTarget<'_>,
    ua: &mut UserAgent,
    ctx: &Ctx,
    token: &str,
) -> Result<(), DriveError> {
    let endpoint = t.op.revocation.clone().ok_or_else(|| {
        DriveError::Precondition("the OP publishes no revocation_endpoint".into())
    })?;
    let mut form = client_auth(t, ctx, &JwtPlan::default(), &endpoint)?;
    form.push(("token".into(), token.to_string()));
    let r = ua
        .send(
            Method::POST,
            &Url::parse(&endpoint).map_err(DriveError::transport)?,
            &form,
            HeaderMap::new(),
        )
        .await
        .map_err(DriveError::transport)?;
    if r.status != 200 {
        return Err(DriveError::Precondition(format!(
            "revocation answered {}",
            r.status
        )));
    }
    Ok(())
}

/// The judged refresh: the honest token `answer` gave `access` (and, normally, a refresh
/// token); `f` picks which refresh token is presented and how the request is spoiled.
async fn refresh_stage(
    t: &OpTarget<'_>,
    ua: &mut UserAgent,
    ctx: &Ctx,
    f: &RefreshFaults,
    plan: &ProbePlan,
    answer: &Value,
    access: &str,
) -> Result<Judged, DriveError> {
    let issued = answer.get("refresh_token").and_then(Value::as_str);
    let (no_form, no_assertion) = (JsonPlan::default(), JwtPlan::default());
    let honest = (&no_form, &no_assertion);
    let presented = match f.token {
        RefreshUse::AccessToken => access.to_string(),
        _ => issued
            .ok_or_else(|| {
                DriveError::Precondition("the token response has no refresh_token".into())
            })?
            .to_string(),
    };
    let presented = match f.token {
        RefreshUse::Spent | RefreshUse::AfterReuse => {
            let first = refresh_call(t, ua, ctx, honest, &presented).await?;
            let rotated = first
                .body
                .get("refresh_token")
                .and_then(Value::as_str)
                .map(String::from);
            let Some(rotated) = rotated.filter(|_| first.status == 200) else {
                return Err(DriveError::Precondition(format!(
                    "the honest refresh got {} without a rotated refresh_token",
                    first.status
                )));
            };
            if f.token == RefreshUse::AfterReuse {
                // The reuse itself is judged by its own case; here it only kills the family.
                refresh_call(t, ua, ctx, honest, &presented).await?;
                rotated
            } else {
                presented
            }
        }
        RefreshUse::Revoked => {
            revoke(t, ua, ctx, access).await?;
            presented
        }
        RefreshUse::RefreshRevoked => {
            revoke(t, ua, ctx, &presented).await?;
            presented
        }
        RefreshUse::Issued | RefreshUse::AccessToken => presented,
    };
    let edits = (&plan.refresh_form, &plan.refresh_assertion);
    let r = refresh_call(t, ua, ctx, edits, &presented).await?;
    let accepted = r.status == 200 && r.body.get("access_token").is_some();
    if !accepted {
        return Ok((verdict_of(r.status), r.status, r.error, r.rule, None));
    }
    let mut note = None;
    if r.body
        .get("refresh_token")
        .and_then(Value::as_str)
        .is_none()
    {
        note = Some("the refresh answer has no rotated refresh_token (SPID rotation)".into());
    }
    if let Some(want) = &f.expect_acr {
        let acr = r
            .body
            .get("id_token")
            .and_then(Value::as_str)
            .and_then(|j| t.probe.open_jwt(j))
            .and_then(|(_, c)| c.get("acr").and_then(Value::as_str).map(String::from));
        if acr.as_deref() != Some(want.as_str()) {
            note = Some(format!(
                "refreshed ID token acr {}, expected {want}",
                shown(&acr)
            ));
        }
    }
    let has_id_token = r.body.get("id_token").is_some();
    if let Some(want) = f.expect_id_token.filter(|w| *w != has_id_token) {
        note = Some(format!(
            "the refresh answer {} an ID token, expected {}",
            if has_id_token { "carries" } else { "lacks" },
            if want { "one" } else { "none" }
        ));
    }
    Ok((Verdict::Accept, r.status, None, None, note))
}

async fn refresh_call(
    t: &OpTarget<'_>,
    ua: &mut UserAgent,
    ctx: &Ctx,
    (form_plan, assertion): (&JsonPlan, &JwtPlan),
    refresh_token: &str,
) -> Result<ApiOutcome, DriveError> {
    let mut form: Vec<(String, String)> = vec![
        ("grant_type".into(), "refresh_token".into()),
        ("refresh_token".into(), refresh_token.into()),
    ];
    form.extend(client_auth(t, ctx, assertion, &t.op.token)?);
    edit_fields(form_plan, &mut form, ctx, "plan.refresh_form.edit")?;
    let url = Url::parse(&t.op.token).map_err(DriveError::transport)?;
    let page = ua
        .send(Method::POST, &url, &form, HeaderMap::new())
        .await
        .map_err(DriveError::transport)?;
    Ok(ApiOutcome::from_page(&page))
}

/// `client_id` and a `private_key_jwt` assertion for `endpoint`, with the case's faults.
fn client_auth(
    t: &OpTarget<'_>,
    ctx: &Ctx,
    plan: &JwtPlan,
    endpoint: &str,
) -> Result<Vec<(String, String)>, DriveError> {
    client_auth_as(t, ctx, plan, endpoint, false)
}

/// [`client_auth`], the assertion signed ES256 with the probe's EC key when `ec`.
fn client_auth_as(
    t: &OpTarget<'_>,
    ctx: &Ctx,
    plan: &JwtPlan,
    endpoint: &str,
    ec: bool,
) -> Result<Vec<(String, String)>, DriveError> {
    let id = t.probe.entity_id();
    let claims = json!({
        "iss": id, "sub": id, "aud": endpoint, "iat": ctx.now, "exp": ctx.now + 60,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let assertion = t
        .probe
        .sign_as(&claims, plan, ctx, "plan.client_assertion", ec)?;
    Ok(vec![
        ("client_id".into(), id.to_string()),
        ("client_assertion_type".into(), JWT_BEARER.into()),
        ("client_assertion".into(), assertion),
    ])
}

async fn token_call(
    t: &OpTarget<'_>,
    ua: &mut UserAgent,
    ctx: &Ctx,
    f: &TokenFaults,
    (form_plan, assertion): (&JsonPlan, &JwtPlan),
    code: &str,
    verifier: &str,
) -> Result<ApiOutcome, DriveError> {
    let mut form: Vec<(String, String)> = vec![
        ("grant_type".into(), "authorization_code".into()),
        ("code".into(), code.into()),
        ("code_verifier".into(), verifier.into()),
        ("redirect_uri".into(), t.probe.redirect_uri()),
    ];
    form.extend(client_auth_as(t, ctx, assertion, &t.op.token, f.ec)?);
    edit_fields(form_plan, &mut form, ctx, "plan.token_form.edit")?;
    let mut url = Url::parse(&t.op.token).map_err(DriveError::transport)?;
    let page = match f.method {
        HttpMethod::Post => ua.send(Method::POST, &url, &form, HeaderMap::new()).await,
        HttpMethod::Get => {
            url.query_pairs_mut().extend_pairs(&form);
            ua.get(&url).await
        }
    }
    .map_err(DriveError::transport)?;
    Ok(ApiOutcome::from_page(&page))
}

/// Reads the authorization answer from the trace: the request that reached `redirect_uri`
/// (query or form_post), else the OP's own refusal page.
fn authorization_outcome(trace: &[Exchange], redirect_uri: &str, issuer: &str) -> AuthzOutcome {
    let at_callback = |e: &Exchange| {
        Url::parse(&e.url).is_ok_and(|u| {
            let mut base = u.clone();
            base.set_query(None);
            base.set_fragment(None);
            base.as_str() == redirect_uri
        })
    };
    if let Some(i) = trace.iter().position(at_callback) {
        let e = &trace[i];
        let mut params: BTreeMap<String, String> = Url::parse(&e.url)
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_default();
        params.extend(e.request_form.iter().cloned());
        // Our OP names its rule on the answer that sent the browser here.
        let rule = trace[..i]
            .iter()
            .rev()
            .find(|x| x.url.starts_with(issuer))
            .and_then(|x| x.spid_rule.clone());
        return match (params.get("code"), params.get("error")) {
            (Some(code), None) => AuthzOutcome::Code {
                code: code.clone(),
                state: params.get("state").cloned(),
                iss: params.get("iss").cloned(),
            },
            (_, Some(error)) => AuthzOutcome::Refused {
                status: trace[..i].last().map(|x| x.status).unwrap_or_default(),
                error: Some(error.clone()),
                rule,
                redirected: true,
                iss: params.get("iss").cloned(),
            },
            (None, None) => AuthzOutcome::Stuck("callback without code or error".into()),
        };
    }
    // A redirect to anything else under the probe is a redirect_uri the RP never registered:
    // the OP must answer 400 itself instead (an open redirector otherwise).
    let probe_base = redirect_uri.trim_end_matches("/callback");
    if let Some(e) = trace.iter().find(|e| e.url.starts_with(probe_base)) {
        return AuthzOutcome::Stuck(format!(
            "the OP sent the browser to an unregistered redirect_uri: {}",
            without_query(&e.url)
        ));
    }
    match trace.last() {
        Some(last) if (400..500).contains(&last.status) => AuthzOutcome::Refused {
            status: last.status,
            error: None,
            rule: last.spid_rule.clone(),
            redirected: false,
            iss: None,
        },
        Some(last) => AuthzOutcome::Stuck(format!(
            "no answer reached the redirect_uri (last: {} {} {})",
            last.method,
            without_query(&last.url),
            last.status
        )),
        None => AuthzOutcome::Stuck("no exchange".into()),
    }
}

/// An optional value as a reader sees it: the value, or `none`.
fn shown(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("none")
}

/// Why an authorization `kind` (`response`, `error`) fails the profile's `iss` rule (RFC
/// 9207: where `required`, it carries the OP's issuer), or None.
fn iss_note(required: bool, iss: &Option<String>, issuer: &str, kind: &str) -> Option<String> {
    match iss.as_deref() {
        Some(i) if i == issuer => None,
        None if !required => None,
        None => Some(format!(
            "the authorization {kind} carries no iss (required by this profile, RFC 9207)"
        )),
        Some(other) => Some(format!(
            "the authorization {kind} names iss {other}, not the OP {issuer}"
        )),
    }
}

fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

fn failed(case: &OpCase, started: Instant, note: String, trace: Vec<Exchange>) -> CaseResult {
    CaseResult::harness_error(case, started, note, trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_loads_and_reaches_every_op_rule() {
        let cases = embedded().unwrap();
        assert!(cases.len() >= 30, "{}", cases.len());
        // Refusals a trusted probe cannot provoke: an untrusted client (no chain, unknown to
        // the anchor, documents not fetched); covered by tests/oidc_internal.rs.
        let by_flow = [
            "op.authz.client.untrusted",
            "op.token.client.untrusted",
            "op.authz.client.unlisted",
            "op.authz.client.fetch-failed",
            // A replayed request object: tests/abuse_state.rs replays one 10,050 times.
            "op.authz.request.replayed",
        ];
        let missing = crate::catalogue::rules_no_case_expects(&cases, "op.", &by_flow);
        assert!(missing.is_empty(), "op rules no case expects: {missing:?}");
    }

    #[test]
    fn bad_case_files_are_refused() {
        let ok =
            "id = \"x\"\ntitle = \"t\"\nfamily = \"op-refresh\"\n[expect]\nverdict = \"accept\"\n";
        assert!(parse_case("oidc-op/x.toml", ok).is_ok());
        assert!(parse_case("oidc-op/y.toml", ok).is_err());
        for bad in [
            "[plan.request_object.pre_sign]\nsett = {}\n",
            "[plan.request_object.encrypt]\nskip = true\n",
            "[plan.token_form.transport]\nstatus = 500\n",
            "[plan.client_assertion.sign]\npublish_key = true\n",
            "[authz.request]\nset = {}\n",
        ] {
            assert!(
                parse_case("oidc-op/x.toml", &format!("{ok}{bad}")).is_err(),
                "{bad}"
            );
        }
        let family = ok.replace("op-refresh", "refresh");
        assert!(
            parse_case("oidc-op/x.toml", &family).is_err(),
            "a family of another side"
        );
        let rp_rule = ok.replace(
            "verdict = \"accept\"",
            "verdict = \"reject\"\nrules = [\"oidc.acr.insufficient\"]",
        );
        assert!(parse_case("oidc-op/x.toml", &rp_rule).is_err());
    }

    #[test]
    fn cie_catalogue_loads_with_the_same_grammar() {
        let cases = embedded_cie().unwrap();
        assert!(cases.len() >= 12, "{}", cases.len());
        let ok = "id = \"x\"\ntitle = \"t\"\nfamily = \"cie-op-refresh\"\n[expect]\nverdict = \"accept\"\n";
        let parse = |t: &str| crate::catalogue::parse::<CieOpCase>("cie-oidc-op/x.toml", t);
        assert!(parse(ok).is_ok());
        assert!(parse(&ok.replace("cie-op-refresh", "op-refresh")).is_err());
        assert!(parse(&format!(
            "{ok}[introspection]\nexpect_members = [\"active\"]\n"
        ))
        .is_ok());
        assert!(parse(&format!("{ok}[introspection]\nmembers = []\n")).is_err());
        // Both ways: what CIE allows is accepted by some case and what it forbids refused.
        let accepts = cases.iter().filter(|c| c.expect == Expect::Accept).count();
        assert!(accepts >= 6 && cases.len() - accepts >= 6, "{accepts}");
        let op = to_op(&cases[0]);
        assert_eq!(
            (op.id.as_str(), op.stage),
            (cases[0].id.as_str(), cases[0].body.0.stage)
        );
    }

    #[test]
    fn iss_is_judged_where_the_profile_requires_it() {
        let op = "http://op.example";
        let some = |s: &str| Some(s.to_string());
        assert_eq!(iss_note(true, &some(op), op, "error"), None);
        assert_eq!(iss_note(false, &None, op, "error"), None);
        assert!(iss_note(true, &None, op, "error").is_some_and(|n| n.contains("no iss")));
        // A wrong iss is a mix-up under any profile.
        assert!(iss_note(false, &some("http://evil"), op, "response").is_some());
    }

    #[test]
    fn metadata_is_judged_member_by_member() {
        let ec = json!({
            "authority_hints": ["https://ta.example"],
            "metadata": {"openid_provider": {
                "claims_supported": ["given_name", "email"], "claims_parameter_supported": true,
            }},
            "trust_marks": [{"id": "https://ta.example/openid_provider/public/", "trust_mark": "x"}],
        });
        let f = |t: &str| toml::from_str::<MetadataFaults>(t).unwrap();
        let cie = Profile::cie();
        let ok = f("present = [\"claims_supported\"]\nabsent = [\"op_name\"]\ntrust_mark_role = \"openid_provider\"\n[includes]\nclaims_supported = [\"email\"]\nclaims_parameter_supported = true\n");
        assert_eq!(metadata_note(&ec, &ok, &cie), None);
        for bad in [
            "present = [\"tls_client_certificate_bound_access_tokens\"]",
            "absent = [\"claims_supported\"]",
            "includes = { claims_supported = [\"https://attributes.eid.gov.it/fiscal_number\"] }",
            "includes = { claims_parameter_supported = false }",
            "trust_mark_role = \"openid_relying_party\"",
        ] {
            assert!(metadata_note(&ec, &f(bad), &cie).is_some(), "{bad}");
        }
        // A profile naming the anchor of its trust-mark ids judges by that anchor.
        let ministry = Profile {
            trust_mark_id_base: Some("https://registry.interno.gov.it/".into()),
            ..Profile::cie()
        };
        let role = f("trust_mark_role = \"openid_provider\"");
        assert!(metadata_note(&ec, &role, &ministry).is_some());
    }

    #[test]
    fn expected_claims_are_named_when_missing() {
        let want = ["a".to_string(), "b".to_string()];
        assert_eq!(missing_claims(&json!({"a": 1, "b": 2}), &want, "x"), None);
        assert_eq!(
            missing_claims(&json!({"a": 1}), &want, "the ID token").as_deref(),
            Some("the ID token lacks b")
        );
    }

    #[test]
    fn placeholders_expand() {
        let vars: BTreeMap<&str, String> = [("op", "http://op".to_string())].into();
        assert_eq!(expand(&json!("{now-60}"), &vars, 1000), json!(940));
        assert_eq!(expand(&json!("{now}"), &vars, 1000), json!(1000));
        assert_eq!(expand(&json!("x{op}/y"), &vars, 0), json!("xhttp://op/y"));
        let r = expand(&json!("{random:31}"), &vars, 0);
        assert_eq!(r.as_str().map(str::len), Some(31));
        assert_eq!(expand(&json!(5), &vars, 0), json!(5));
    }
}
