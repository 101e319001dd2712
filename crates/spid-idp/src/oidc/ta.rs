//! A minimal OpenID Federation authority for offline SPID runs: a trust anchor or, once given
//! a superior ([`TrustAnchor::set_superior`]), an intermediate (SPID "Soggetto Aggregatore").
//! Either serves its entity configuration, `fetch`, `list`, `resolve` and `trust_mark_status`,
//! and has an in-process registration API; the anchor issues the trust marks.
//!
//! Entities below an intermediate carry a trust mark issued by the trust anchor
//! ([`TrustAnchor::issue_trust_mark`]), not by the intermediate: SPID makes the anchor the
//! mark issuer, and a provider's trust-mark-first precheck then needs only the anchor's keys,
//! whatever the path.

use super::{entity_statement, json, json_error, new_signing_key, with_rule, HttpFetcher};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use spid_core::clock::SharedClock;
use spid_core::oidc::federation::{
    resolve_trust_chain, sign_entity_statement, sign_trust_mark, Constraints, EntityKeys,
    EntityStatement, FederationError, Intermediates, Metadata, MetadataPolicy, TrustMark,
    TrustMarkEntry,
};
use spid_core::oidc::jose::{JoseError, Jwks, SigningKey};
use spid_core::oidc::Profile;
use spid_core::Rule;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// Lifetime of the statements and trust marks the anchor signs.
const STATEMENT_TTL_SECS: i64 = 24 * 3600;
/// The anchor's `constraints.max_path_length` (SPID example 1: one Soggetto Aggregatore).
pub const MAX_PATH_LENGTH: u64 = 1;

/// The kind of a registered entity; it decides the trust mark id and the `list` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityKind {
    /// An OpenID Provider.
    OpenIdProvider,
    /// A Relying Party.
    OpenIdRelyingParty,
    /// An intermediate (SPID Soggetto Aggregatore).
    Intermediate,
}

impl EntityKind {
    /// Every kind.
    pub const ALL: [EntityKind; 3] = [
        EntityKind::OpenIdProvider,
        EntityKind::OpenIdRelyingParty,
        EntityKind::Intermediate,
    ];

    /// The metadata entity type (`openid_provider`, `openid_relying_party`,
    /// `federation_entity`).
    pub fn entity_type(self) -> &'static str {
        match self {
            EntityKind::OpenIdProvider => "openid_provider",
            EntityKind::OpenIdRelyingParty => "openid_relying_party",
            EntityKind::Intermediate => "federation_entity",
        }
    }

    /// The role in a trust mark id (SPID-OIDC trust marks: `openid_provider`,
    /// `openid_relying_party`, `intermediate`).
    pub fn mark_role(self) -> &'static str {
        match self {
            EntityKind::Intermediate => "intermediate",
            other => other.entity_type(),
        }
    }
}

#[derive(Debug, Clone)]
struct Subordinate {
    jwks: Jwks,
    kind: EntityKind,
}

#[derive(Debug, Clone)]
struct IssuedMark {
    id: String,
    active: bool,
}

/// Direct subordinates (what `fetch` and `list` answer about) and the trust marks issued
/// (what `trust_mark_status` answers about): an anchor issues marks to entities below its
/// intermediates too.
#[derive(Default)]
struct Registry {
    subs: BTreeMap<String, Subordinate>,
    marks: BTreeMap<String, IssuedMark>,
}

/// Where an intermediate sits.
#[derive(Clone)]
struct Superior {
    entity_id: String,
    anchor: EntityKeys,
    mark: TrustMarkEntry,
}

struct Inner {
    entity_id: String,
    key: SigningKey,
    profile: Profile,
    clock: SharedClock,
    registry: RwLock<Registry>,
    superior: RwLock<Option<Superior>>,
    policy: RwLock<MetadataPolicy>,
}

/// The SPID trust anchor's policy on relying parties, in its statements about relying parties
/// and intermediates (where it cascades to the relying parties below).
fn default_policy() -> MetadataPolicy {
    let policy = json!({"openid_relying_party": {
        "token_endpoint_auth_method": {"one_of": ["private_key_jwt"]},
        "response_types": {"subset_of": ["code"]},
    }});
    MetadataPolicy(policy.as_object().cloned().unwrap_or_default())
}

/// A trust anchor, or an intermediate once [`TrustAnchor::set_superior`] was called. Cheap to
/// clone.
#[derive(Clone)]
pub struct TrustAnchor(Arc<Inner>);

impl TrustAnchor {
    /// A trust anchor whose entity id is `entity_id` (its base URL), with a fresh key.
    pub fn new(entity_id: &str, clock: SharedClock) -> Result<TrustAnchor, JoseError> {
        Ok(TrustAnchor::with_key(entity_id, clock, new_signing_key()?))
    }

    /// [`TrustAnchor::new`] with the given federation key (e.g. a fixed test key).
    pub fn with_key(entity_id: &str, clock: SharedClock, key: SigningKey) -> TrustAnchor {
        TrustAnchor(Arc::new(Inner {
            entity_id: entity_id.trim_end_matches('/').to_string(),
            key,
            profile: Profile::rules_2023(),
            clock,
            registry: RwLock::new(Registry::default()),
            superior: RwLock::new(None),
            policy: RwLock::new(default_policy()),
        }))
    }

    /// The entity id.
    pub fn entity_id(&self) -> &str {
        &self.0.entity_id
    }

    /// The federation keys (what relying parties and providers trust out of band).
    pub fn jwks(&self) -> Jwks {
        Jwks::new(self.0.key.public_jwk().into_iter().collect())
    }

    /// The authority as [`EntityKeys`], ready for chain validation.
    pub fn keys(&self) -> EntityKeys {
        EntityKeys::new(self.entity_id(), self.jwks())
    }

    /// The trust mark id for a kind: `<TA>/<role>/public/`.
    pub fn trust_mark_id(&self, kind: EntityKind) -> String {
        format!("{}/{}/public/", self.0.entity_id, kind.mark_role())
    }

    /// Registers (or re-registers) a direct subordinate with its federation keys and issues
    /// it a trust mark; returns the mark entry it must publish in its entity configuration.
    pub fn register(
        &self,
        entity_id: &str,
        federation_jwks: Jwks,
        kind: EntityKind,
    ) -> Result<TrustMarkEntry, FederationError> {
        let entry = self.issue_trust_mark(entity_id, kind)?;
        self.add_subordinate(entity_id, federation_jwks, kind);
        Ok(entry)
    }

    /// Registers a direct subordinate without issuing a trust mark: what an intermediate does
    /// for the entities below it, whose marks come from the trust anchor.
    pub fn add_subordinate(&self, entity_id: &str, federation_jwks: Jwks, kind: EntityKind) {
        self.0
            .registry
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .subs
            .insert(
                entity_id.to_string(),
                Subordinate {
                    jwks: federation_jwks,
                    kind,
                },
            );
    }

    /// Issues `entity_id` a trust mark for `kind` and answers `active` about it at
    /// `trust_mark_status` from now on, whether or not it is a direct subordinate (the anchor
    /// vouches for the entities under its intermediates too).
    pub fn issue_trust_mark(
        &self,
        entity_id: &str,
        kind: EntityKind,
    ) -> Result<TrustMarkEntry, FederationError> {
        let id = self.trust_mark_id(kind);
        let entry = self.sign_mark(entity_id, &id)?;
        self.0
            .registry
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .marks
            .insert(entity_id.to_string(), IssuedMark { id, active: true });
        Ok(entry)
    }

    /// Marks an entity's trust mark inactive at `trust_mark_status` (static validation
    /// still passes, as in real federations until keys rotate).
    pub fn revoke(&self, entity_id: &str) {
        if let Some(m) = self
            .0
            .registry
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .marks
            .get_mut(entity_id)
        {
            m.active = false;
        }
    }

    /// Makes this authority an intermediate: `superior` (the trust anchor or another
    /// intermediate) goes into its `authority_hints`, `mark` (issued by the trust anchor
    /// `anchor`) into its `trust_marks`; `resolve` then answers for `anchor`.
    pub fn set_superior(&self, superior: &str, anchor: EntityKeys, mark: TrustMarkEntry) {
        *self.0.superior.write().unwrap_or_else(|e| e.into_inner()) = Some(Superior {
            entity_id: superior.to_string(),
            anchor,
            mark,
        });
    }

    /// Replaces the `metadata_policy` of the statements about relying parties and
    /// intermediates (default: `token_endpoint_auth_method` one of `private_key_jwt`,
    /// `response_types` within `code`). An intermediate's policy is merged with its
    /// superiors' when a chain is resolved.
    pub fn set_metadata_policy(&self, policy: MetadataPolicy) {
        *self.0.policy.write().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    fn superior(&self) -> Option<Superior> {
        self.0
            .superior
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The trust anchor `resolve` answers for: the superior's for an intermediate.
    fn anchor_keys(&self) -> EntityKeys {
        self.superior().map_or_else(|| self.keys(), |s| s.anchor)
    }

    fn sign_mark(&self, sub: &str, id: &str) -> Result<TrustMarkEntry, FederationError> {
        let now = self.0.clock.now().timestamp();
        let mut other = Map::new();
        other.insert(
            "organization_name".into(),
            json!("spid-harness test entity"),
        );
        let mark = TrustMark {
            id: id.to_string(),
            iss: self.0.entity_id.clone(),
            sub: sub.to_string(),
            iat: now,
            exp: Some(now + STATEMENT_TTL_SECS),
            other,
        };
        let jwt = sign_trust_mark(
            &mark,
            &self.0.key,
            self.0.profile.default_signing_alg,
            &self.0.profile,
        )?;
        Ok(TrustMarkEntry {
            id: Some(id.to_string()),
            trust_mark_type: None,
            trust_mark: jwt,
            other: Map::new(),
        })
    }

    fn configuration(&self) -> Result<String, FederationError> {
        let now = self.0.clock.now().timestamp();
        let base = &self.0.entity_id;
        let superior = self.superior();
        let mut st = EntityStatement::new(base, base, now, now + STATEMENT_TTL_SECS, self.jwks());
        let mut md = Map::new();
        md.insert(
            "federation_entity".into(),
            json!({
                "organization_name": if superior.is_some() {
                    "spid-harness test intermediate"
                } else {
                    "spid-harness test trust anchor"
                },
                "homepage_uri": format!("{base}/"),
                "policy_uri": format!("{base}/"),
                "logo_uri": format!("{base}/logo.svg"),
                "contacts": ["tech@example.org"],
                "federation_fetch_endpoint": format!("{base}/fetch"),
                "federation_list_endpoint": format!("{base}/list"),
                "federation_resolve_endpoint": format!("{base}/resolve"),
                "federation_trust_mark_status_endpoint": format!("{base}/trust_mark_status"),
            }),
        );
        st.metadata = Some(Metadata(md));
        match superior {
            Some(s) => {
                st.authority_hints = Some(vec![s.entity_id]);
                st.trust_marks = Some(vec![s.mark]);
            }
            None => {
                st.constraints = Some(Constraints {
                    max_path_length: Some(MAX_PATH_LENGTH),
                    ..Constraints::default()
                });
                let issuers: Map<String, Value> = EntityKind::ALL
                    .iter()
                    .map(|k| (self.trust_mark_id(*k), json!([base])))
                    .collect();
                st.trust_mark_issuers = Some(issuers);
            }
        }
        sign_entity_statement(&st, &self.0.key, self.0.profile.default_signing_alg)
    }

    /// The subordinate statement about `sub`, or None if it is not a direct subordinate.
    fn statement(&self, sub: &str) -> Option<Result<String, FederationError>> {
        let (s, mark) = {
            let registry = self.0.registry.read().unwrap_or_else(|e| e.into_inner());
            let s = registry.subs.get(sub).cloned()?;
            (s, registry.marks.get(sub).map(|m| m.id.clone()))
        };
        let now = self.0.clock.now().timestamp();
        let mut st = EntityStatement::new(
            &self.0.entity_id,
            sub,
            now,
            now + STATEMENT_TTL_SECS,
            s.jwks,
        );
        // In a statement about an intermediate the policy binds the relying parties below it:
        // chains merge the policies from the anchor down.
        if matches!(
            s.kind,
            EntityKind::OpenIdRelyingParty | EntityKind::Intermediate
        ) {
            st.metadata_policy = Some(
                self.0
                    .policy
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
            );
        }
        let marks = mark.map(|id| self.sign_mark(sub, &id)).transpose();
        Some(marks.and_then(|m| {
            st.trust_marks = m.map(|m| vec![m]);
            sign_entity_statement(&st, &self.0.key, self.0.profile.default_signing_alg)
        }))
    }

    /// Serves the authority on `listener` within the default [`spid_net::ServeLimits`].
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        self.serve_limited(listener, spid_net::ServeLimits::default())
            .await
    }

    /// Serves the authority on `listener` within `limits`.
    pub async fn serve_limited(
        self,
        listener: tokio::net::TcpListener,
        limits: spid_net::ServeLimits,
    ) -> std::io::Result<()> {
        spid_net::serve(listener, self.router(), limits).await
    }

    /// The router: `/.well-known/openid-federation`, `/fetch`, `/list`, `/resolve`,
    /// `/trust_mark_status`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/.well-known/openid-federation", get(configuration))
            .route("/fetch", get(fetch))
            .route("/list", get(list))
            .route("/resolve", get(resolve))
            .route(
                "/trust_mark_status",
                get(trust_mark_status).post(trust_mark_status_post),
            )
            .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
            .with_state(self.clone())
    }
}

fn server_error(e: impl std::fmt::Display) -> Response {
    json_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        &e.to_string(),
    )
}

async fn configuration(State(ta): State<TrustAnchor>) -> Response {
    match ta.configuration() {
        Ok(jwt) => entity_statement(jwt),
        Err(e) => server_error(e),
    }
}

#[derive(Deserialize)]
struct SubQuery {
    sub: Option<String>,
    trust_anchor: Option<String>,
    entity_type: Option<String>,
    id: Option<String>,
}

async fn fetch(State(ta): State<TrustAnchor>, Query(q): Query<SubQuery>) -> Response {
    let Some(sub) = q.sub else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "sub is required",
        );
    };
    match ta.statement(&sub) {
        None => json_error(StatusCode::NOT_FOUND, "not_found", "unknown subordinate"),
        Some(Ok(jwt)) => entity_statement(jwt),
        Some(Err(e)) => server_error(e),
    }
}

async fn list(State(ta): State<TrustAnchor>, Query(q): Query<SubQuery>) -> Response {
    let registry = ta.0.registry.read().unwrap_or_else(|e| e.into_inner());
    let ids: Vec<&String> = registry
        .subs
        .iter()
        .filter(|(_, s)| {
            q.entity_type
                .as_deref()
                .is_none_or(|t| t == s.kind.entity_type())
        })
        .map(|(k, _)| k)
        .collect();
    json(StatusCode::OK, &json!(ids))
}

/// `resolve`: validates the subject's chain here and returns its resolved metadata, signed.
async fn resolve(State(ta): State<TrustAnchor>, Query(q): Query<SubQuery>) -> Response {
    let (Some(sub), Some(anchor)) = (q.sub, q.trust_anchor) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "sub and trust_anchor are required",
        );
    };
    let keys = ta.anchor_keys();
    if anchor.trim_end_matches('/') != keys.entity_id {
        return json_error(StatusCode::NOT_FOUND, "not_found", "unknown trust anchor");
    }
    // Only entities registered here (subordinates, or holders of a mark it issued) are
    // resolved: an unknown `sub` is never fetched.
    let known = {
        let registry = ta.0.registry.read().unwrap_or_else(|e| e.into_inner());
        registry.subs.contains_key(&sub) || registry.marks.contains_key(&sub)
    };
    if !known {
        return with_rule(
            json_error(StatusCode::NOT_FOUND, "not_found", "unknown subject"),
            Rule::TaResolveSubjectUnknown,
        );
    }
    let client = super::http_client();
    let now = ta.0.clock.now();
    let chain = match resolve_trust_chain(
        &HttpFetcher(&client),
        &sub,
        &keys,
        &ta.0.profile,
        now,
        Intermediates::Allowed,
    )
    .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(sub, error = %e, "resolve: no trust chain");
            let answer = json_error(StatusCode::NOT_FOUND, "invalid_trust_chain", &e.public());
            return if e.fetch_failed() {
                with_rule(answer, Rule::TaResolveFetchFailed)
            } else {
                answer
            };
        }
    };
    let mut st = EntityStatement::new(
        &ta.0.entity_id,
        &sub,
        now.timestamp(),
        chain.exp,
        Jwks::default(),
    );
    st.metadata = Some(chain.metadata.clone());
    st.trust_marks = chain.leaf().and_then(|l| l.trust_marks.clone());
    match sign_entity_statement(&st, &ta.0.key, ta.0.profile.default_signing_alg) {
        Ok(jwt) => (
            StatusCode::OK,
            [(
                axum::http::header::CONTENT_TYPE,
                "application/resolve-response+jwt",
            )],
            jwt,
        )
            .into_response(),
        Err(e) => server_error(e),
    }
}

fn status_answer(ta: &TrustAnchor, sub: Option<String>, id: Option<String>) -> Response {
    let (Some(sub), Some(id)) = (sub, id) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "sub and id are required",
        );
    };
    let active =
        ta.0.registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .marks
            .get(&sub)
            .is_some_and(|m| m.active && m.id == id);
    json(StatusCode::OK, &json!({"active": active}))
}

async fn trust_mark_status(State(ta): State<TrustAnchor>, Query(q): Query<SubQuery>) -> Response {
    status_answer(&ta, q.sub, q.id)
}

async fn trust_mark_status_post(
    State(ta): State<TrustAnchor>,
    body: axum::body::Bytes,
) -> Response {
    // Bounded (spid_net::FormLimits::default); first value wins.
    let mut f = match spid_net::form(&body, &spid_net::FormLimits::default()) {
        Ok(f) => spid_net::first_wins(f),
        Err(r) => return r.into_response(),
    };
    status_answer(&ta, f.remove("sub"), f.remove("id"))
}
