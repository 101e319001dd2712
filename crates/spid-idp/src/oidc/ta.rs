//! A minimal OpenID Federation trust anchor for offline SPID runs: its entity
//! configuration, `fetch`, `list`, `resolve` and `trust_mark_status`, and an in-process
//! registration API that issues each subordinate a trust mark.

use super::{entity_statement, json, json_error, new_signing_key, resolve_entity};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Map};
use spid_core::clock::SharedClock;
use spid_core::oidc::federation::{
    sign_entity_statement, sign_trust_mark, Constraints, EntityKeys, EntityStatement,
    FederationError, Metadata, TrustMark, TrustMarkEntry,
};
use spid_core::oidc::jose::{JoseError, Jwks, SigningKey};
use spid_core::oidc::Profile;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// Lifetime of the statements and trust marks the anchor signs.
const STATEMENT_TTL_SECS: i64 = 24 * 3600;

/// The kind of a registered leaf; it decides the trust mark id and the `list` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityKind {
    /// An OpenID Provider.
    OpenIdProvider,
    /// A Relying Party.
    OpenIdRelyingParty,
}

impl EntityKind {
    /// The metadata entity type (`openid_provider`, `openid_relying_party`).
    pub fn entity_type(self) -> &'static str {
        match self {
            EntityKind::OpenIdProvider => "openid_provider",
            EntityKind::OpenIdRelyingParty => "openid_relying_party",
        }
    }
}

#[derive(Debug, Clone)]
struct Subordinate {
    jwks: Jwks,
    kind: EntityKind,
    mark_id: String,
    active: bool,
}

struct Inner {
    entity_id: String,
    key: SigningKey,
    profile: Profile,
    clock: SharedClock,
    subs: RwLock<BTreeMap<String, Subordinate>>,
}

/// The trust anchor. Cheap to clone.
#[derive(Clone)]
pub struct TrustAnchor(Arc<Inner>);

impl TrustAnchor {
    /// A trust anchor whose entity id is `entity_id` (its base URL), with a fresh key.
    pub fn new(entity_id: &str, clock: SharedClock) -> Result<TrustAnchor, JoseError> {
        Ok(TrustAnchor(Arc::new(Inner {
            entity_id: entity_id.trim_end_matches('/').to_string(),
            key: new_signing_key()?,
            profile: Profile::rules_2023(),
            clock,
            subs: RwLock::new(BTreeMap::new()),
        })))
    }

    /// The entity id.
    pub fn entity_id(&self) -> &str {
        &self.0.entity_id
    }

    /// The federation keys (what relying parties and providers trust out of band).
    pub fn jwks(&self) -> Jwks {
        Jwks::new(self.0.key.public_jwk().into_iter().collect())
    }

    /// The anchor as [`EntityKeys`], ready for chain validation.
    pub fn keys(&self) -> EntityKeys {
        EntityKeys::new(self.entity_id(), self.jwks())
    }

    /// The trust mark id for a kind: `<TA>/<entity type>/public/`.
    pub fn trust_mark_id(&self, kind: EntityKind) -> String {
        format!("{}/{}/public/", self.0.entity_id, kind.entity_type())
    }

    /// Registers (or re-registers) a leaf with its federation keys and returns the trust
    /// mark entry it must publish in its entity configuration.
    pub fn register(
        &self,
        entity_id: &str,
        federation_jwks: Jwks,
        kind: EntityKind,
    ) -> Result<TrustMarkEntry, FederationError> {
        let mark_id = self.trust_mark_id(kind);
        let entry = self.issue_mark(entity_id, &mark_id)?;
        self.0
            .subs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                entity_id.to_string(),
                Subordinate {
                    jwks: federation_jwks,
                    kind,
                    mark_id,
                    active: true,
                },
            );
        Ok(entry)
    }

    /// Marks a subordinate's trust mark inactive at `trust_mark_status` (static validation
    /// still passes, as in real federations until keys rotate).
    pub fn revoke(&self, entity_id: &str) {
        if let Some(s) = self
            .0
            .subs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(entity_id)
        {
            s.active = false;
        }
    }

    fn issue_mark(&self, sub: &str, id: &str) -> Result<TrustMarkEntry, FederationError> {
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
        let mut st = EntityStatement::new(base, base, now, now + STATEMENT_TTL_SECS, self.jwks());
        let mut md = Map::new();
        md.insert(
            "federation_entity".into(),
            json!({
                "organization_name": "spid-harness test trust anchor",
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
        st.constraints = Some(Constraints {
            max_path_length: Some(1),
            ..Constraints::default()
        });
        let mut issuers = Map::new();
        for kind in [EntityKind::OpenIdProvider, EntityKind::OpenIdRelyingParty] {
            issuers.insert(self.trust_mark_id(kind), json!([base]));
        }
        st.trust_mark_issuers = Some(issuers);
        sign_entity_statement(&st, &self.0.key, self.0.profile.default_signing_alg)
    }

    /// The subordinate statement about `sub`, or None if it is not registered.
    fn statement(&self, sub: &str) -> Option<Result<String, FederationError>> {
        let s = self
            .0
            .subs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(sub)
            .cloned()?;
        let now = self.0.clock.now().timestamp();
        let mut st = EntityStatement::new(
            &self.0.entity_id,
            sub,
            now,
            now + STATEMENT_TTL_SECS,
            s.jwks,
        );
        let mut policy = Map::new();
        if s.kind == EntityKind::OpenIdRelyingParty {
            policy.insert(
                "openid_relying_party".into(),
                json!({"token_endpoint_auth_method": {"one_of": ["private_key_jwt"]},
                       "response_types": {"subset_of": ["code"]}}),
            );
            st.metadata_policy = Some(spid_core::oidc::federation::MetadataPolicy(policy));
        }
        Some(self.issue_mark(sub, &s.mark_id).and_then(|m| {
            st.trust_marks = Some(vec![m]);
            sign_entity_statement(&st, &self.0.key, self.0.profile.default_signing_alg)
        }))
    }

    /// Serves the trust anchor on `listener`.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
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
    let subs = ta.0.subs.read().unwrap_or_else(|e| e.into_inner());
    let ids: Vec<&String> = subs
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
    if anchor.trim_end_matches('/') != ta.0.entity_id {
        return json_error(StatusCode::NOT_FOUND, "not_found", "unknown trust anchor");
    }
    let client = super::http_client();
    let now = ta.0.clock.now();
    let chain = match resolve_entity(&client, &sub, &ta.keys(), &ta.0.profile, now).await {
        Ok(c) => c,
        Err(e) => return json_error(StatusCode::NOT_FOUND, "invalid_trust_chain", &e.to_string()),
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
        ta.0.subs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&sub)
            .is_some_and(|s| s.active && s.mark_id == id);
    json(StatusCode::OK, &json!({"active": active}))
}

async fn trust_mark_status(State(ta): State<TrustAnchor>, Query(q): Query<SubQuery>) -> Response {
    status_answer(&ta, q.sub, q.id)
}

async fn trust_mark_status_post(
    State(ta): State<TrustAnchor>,
    axum::extract::Form(q): axum::extract::Form<SubQuery>,
) -> Response {
    status_answer(&ta, q.sub, q.id)
}
