//! A SPID service provider that enforces level ≥ 2 and every SPID response rule.
//!
//! Use [`ServiceProvider::router`] to mount it in an axum application, or
//! [`ServiceProvider::serve`] to run it on a listener. It answers **200 only for an accepted
//! login** and 403 with a readable page and an `X-SPID-Rule: <code>` header for every refusal,
//! the verdict contract conformance tools rely on.
#![warn(missing_docs)]

pub mod cns;
pub mod oidc;
pub mod pages;
pub mod store;
pub mod validator;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Duration;
pub use spid_core::cie::IdpProfile;
use spid_core::clock::{SharedClock, SystemClock};
use spid_core::saml::authn_request::AuthnRequest;
use spid_core::saml::binding::{self, MessageParam, SigAlg};
use spid_core::saml::dsig::{self, Credential};
use spid_core::saml::metadata::{self, EntityMetadata, SpKind, SpMetadataConfig};
use spid_core::saml::ns;
use spid_core::{Comparison, SpidLevel};
use spid_net::FormLimits;
pub use spid_net::ServeLimits;
use std::sync::{Arc, RwLock};
use validator::{PendingRequest, Policy};

/// Header carrying the deciding rule code on every refusal.
pub const RULE_HEADER: &str = "x-spid-rule";
/// Header saying `accepted` or `rejected` on ACS answers.
pub const OUTCOME_HEADER: &str = "x-spid-outcome";
const COOKIE: &str = "spid_sp_session";

/// How the SP sends its AuthnRequest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBinding {
    /// HTTP-Redirect with a query signature (302 from `/login`).
    Redirect,
    /// HTTP-POST with an enveloped signature (auto-posted form from `/login`).
    Post,
}

/// SP configuration. [`SpConfig::new`] gives SPID defaults: L2 minimum, public SP.
#[derive(Debug, Clone)]
pub struct SpConfig {
    /// Base URL the SP is reached at (no trailing slash), e.g. `http://127.0.0.1:8000`.
    pub base_url: String,
    /// entityID (defaults to `<base_url>/metadata`).
    pub entity_id: String,
    /// Signing credential.
    pub credential: Credential,
    /// Level requested by default.
    pub level: SpidLevel,
    /// The lowest level ever accepted, whatever a request asked (SPID services: L2).
    pub min_level: SpidLevel,
    /// Comparison requested.
    pub comparison: Comparison,
    /// Default binding for AuthnRequests.
    pub binding: RequestBinding,
    /// Attributes requested (AttributeConsumingService index 0).
    pub attributes: Vec<String>,
    /// Public or private SP (metadata profile).
    pub kind: SpKind,
    /// Tolerated clock skew.
    pub skew: Duration,
    /// How long an AuthnRequest waits for its answer.
    pub request_ttl: Duration,
    /// Time source.
    pub clock: SharedClock,
    /// Answer every request only after this long: a slow SP, to measure how far concurrent
    /// cases (`--jobs`) hide a target's latency. Zero by default.
    pub delay: std::time::Duration,
    /// Publish CIE SP metadata (the CIE model: the administrative ContactPerson with the CIE
    /// extensions, Municipality, Company) instead of SPID's; see docs/cie.md. Off by default.
    pub cie_metadata: bool,
}

impl SpConfig {
    /// SPID defaults for an SP at `base_url`.
    pub fn new(base_url: &str, credential: Credential) -> Self {
        let base = base_url.trim_end_matches('/').to_string();
        SpConfig {
            entity_id: format!("{base}/metadata"),
            base_url: base,
            credential,
            level: SpidLevel::L2,
            min_level: SpidLevel::L2,
            comparison: Comparison::Minimum,
            binding: RequestBinding::Redirect,
            attributes: [
                "spidCode",
                "name",
                "familyName",
                "fiscalNumber",
                "email",
                "dateOfBirth",
            ]
            .map(String::from)
            .to_vec(),
            kind: SpKind::Public {
                ipa_code: "c_h501".into(),
            },
            delay: std::time::Duration::ZERO,
            cie_metadata: false,
            skew: Duration::seconds(60),
            request_ttl: Duration::minutes(15),
            clock: Arc::new(SystemClock),
        }
    }

    /// The ACS URL.
    pub fn acs_url(&self) -> String {
        format!("{}/acs", self.base_url)
    }
}

/// The CIE model of the same SP: the test SP is in Roma (Belfiore H501, RM); a private SP
/// names the NACE code 62.01 (computer programming).
fn cie_sp_metadata(md: &SpMetadataConfig) -> spid_core::cie::SpMetadataConfig {
    use spid_core::cie::SpKind as CieKind;
    spid_core::cie::SpMetadataConfig {
        entity_id: md.entity_id.clone(),
        acs_url: md.acs_url.clone(),
        slo_url: md.slo_url.clone(),
        attributes: md.attributes.clone(),
        service_name: md.service_name.clone(),
        organization_name: md.organization_name.clone(),
        organization_url: md.organization_url.clone(),
        contact_email: md.contact_email.clone(),
        contact_phone: md.contact_phone.clone(),
        municipality: "H501".into(),
        province: Some("RM".into()),
        kind: match &md.kind {
            SpKind::Public { ipa_code } => CieKind::Public {
                ipa_code: ipa_code.clone(),
            },
            SpKind::Private {
                vat_number,
                fiscal_code,
                ..
            } => CieKind::Private {
                vat_number: vat_number.clone(),
                fiscal_code: fiscal_code.clone(),
                nace2_code: "62.01".into(),
            },
        },
    }
}

/// Why the SP could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SpError {
    /// Metadata could not be built or parsed.
    #[error(transparent)]
    Metadata(#[from] metadata::MetadataError),
    /// Signing failed.
    #[error(transparent)]
    Dsig(#[from] dsig::DsigError),
    /// IdP metadata is unusable.
    #[error("IdP metadata: {0}")]
    Idp(String),
}

struct Inner {
    cfg: SpConfig,
    metadata_xml: String,
    idps: RwLock<Vec<EntityMetadata>>,
    /// The entityIDs of the IdPs registered as CIE ID ([`ServiceProvider::register_idp_as`]).
    cie_idps: RwLock<Vec<String>>,
    store: store::Store,
    policy: Policy,
}

/// The service provider. Cheap to clone.
#[derive(Clone)]
pub struct ServiceProvider(Arc<Inner>);

impl ServiceProvider {
    /// Builds the SP and signs its metadata.
    pub fn new(cfg: SpConfig) -> Result<Self, SpError> {
        dsig::init();
        let md = SpMetadataConfig {
            entity_id: cfg.entity_id.clone(),
            acs_url: cfg.acs_url(),
            slo_url: format!("{}/slo", cfg.base_url),
            attributes: cfg.attributes.clone(),
            service_name: "Servizio di prova spid-harness".into(),
            organization_name: "spid-harness reference SP".into(),
            organization_display_name: "spid-harness SP".into(),
            organization_url: format!("{}/", cfg.base_url),
            contact_email: "spid-tech@example.org".into(),
            contact_phone: Some("+390600000000".into()),
            kind: cfg.kind.clone(),
        };
        let metadata_xml = if cfg.cie_metadata {
            spid_core::cie::build_sp_metadata(&cie_sp_metadata(&md), &cfg.credential)?
        } else {
            metadata::build_sp(&md, &cfg.credential)?
        };
        let policy = Policy {
            entity_id: cfg.entity_id.clone(),
            acs_url: cfg.acs_url(),
            skew: cfg.skew,
            min_level: cfg.min_level,
            attribute_services: vec![(0, cfg.attributes.clone())],
        };
        Ok(ServiceProvider(Arc::new(Inner {
            cfg,
            metadata_xml,
            idps: RwLock::new(Vec::new()),
            cie_idps: RwLock::new(Vec::new()),
            store: store::Store::default(),
            policy,
        })))
    }

    /// The signed SP metadata.
    pub fn metadata_xml(&self) -> &str {
        &self.0.metadata_xml
    }

    /// The configuration.
    pub fn config(&self) -> &SpConfig {
        &self.0.cfg
    }

    /// Trusts an IdP: parses its metadata, which must carry a signing certificate and an SSO
    /// endpoint; when `verify_with` is given, the metadata signature must verify with it.
    /// Returns the IdP's entityID. Re-registering an entityID replaces it.
    pub fn register_idp(
        &self,
        xml: &str,
        verify_with: Option<&[Vec<u8>]>,
    ) -> Result<String, SpError> {
        self.register_idp_as(xml, verify_with, IdpProfile::Spid)
    }

    /// Trusts an IdP as [`register_idp`](Self::register_idp) does, judging its answers by
    /// `profile`: an IdP registered as [`IdpProfile::Cie`] gets the CIE rules (Assertion
    /// Issuer without Format allowed, the eIDAS minimum attribute set required) and CIE
    /// AuthnRequests (ForceAuthn at every level). The real CIE metadata is unsigned: pass
    /// `verify_with` None for it. Re-registering an entityID replaces its profile too.
    pub fn register_idp_as(
        &self,
        xml: &str,
        verify_with: Option<&[Vec<u8>]>,
        profile: IdpProfile,
    ) -> Result<String, SpError> {
        if let Some(trusted) = verify_with {
            metadata::verify(xml, trusted)?;
        }
        let m = metadata::parse(xml)?;
        let idp = m
            .idp
            .as_ref()
            .ok_or_else(|| SpError::Idp("no IDPSSODescriptor".into()))?;
        if m.signing_certs.is_empty() {
            return Err(SpError::Idp("no signing certificate".into()));
        }
        if idp.sso.is_empty() {
            return Err(SpError::Idp("no SingleSignOnService".into()));
        }
        let id = m.entity_id.clone();
        let mut idps = self.0.idps.write().unwrap_or_else(|e| e.into_inner());
        idps.retain(|x| x.entity_id != id);
        idps.push(m);
        let mut cie = self.0.cie_idps.write().unwrap_or_else(|e| e.into_inner());
        cie.retain(|x| *x != id);
        if profile == IdpProfile::Cie {
            cie.push(id.clone());
        }
        Ok(id)
    }

    /// The profile an IdP was registered with (SPID for an unknown entityID).
    pub fn idp_profile(&self, entity_id: &str) -> IdpProfile {
        let cie = self.0.cie_idps.read().unwrap_or_else(|e| e.into_inner());
        if cie.iter().any(|x| x == entity_id) {
            IdpProfile::Cie
        } else {
            IdpProfile::Spid
        }
    }

    /// The entityIDs of the trusted IdPs.
    pub fn idps(&self) -> Vec<String> {
        self.0
            .idps
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|m| m.entity_id.clone())
            .collect()
    }

    /// The axum router: `/`, `/metadata`, `/login`, `/acs`, `/logout`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(home))
            .route("/metadata", get(metadata_handler))
            .route("/login", get(login))
            .route("/acs", post(acs))
            .route("/logout", get(logout))
            .route("/slo", get(slo_get).post(slo_post))
            .layer(DefaultBodyLimit::max(1 << 20))
            .layer(axum::middleware::from_fn_with_state(
                self.0.cfg.delay,
                delayed,
            ))
            .with_state(self.clone())
    }

    /// The router with an OpenID Connect relying party nested at `/oidc/rp` (its entity id
    /// must be `<base_url>/oidc/rp`, see [`ServiceProvider::rp_config`]).
    pub fn router_with_rp(&self, rp: &oidc::RelyingParty) -> Router {
        self.router().nest("/oidc/rp", rp.router())
    }

    /// Serves the SP with `rp` nested at `/oidc/rp` on `listener`.
    pub async fn serve_with_rp(
        self,
        listener: tokio::net::TcpListener,
        rp: &oidc::RelyingParty,
    ) -> std::io::Result<()> {
        spid_net::serve(listener, self.router_with_rp(rp), ServeLimits::default()).await
    }

    /// Outstanding AuthnRequests held in memory: bounded (see [`store`]), whatever the traffic.
    pub fn pending_requests(&self) -> usize {
        self.0.store.pending_len()
    }

    /// Relying party defaults for this SP: entity id `<base_url>/oidc/rp`, the SP's clock.
    pub fn rp_config(&self) -> oidc::RpConfig {
        oidc::RpConfig::new(
            &format!("{}/oidc/rp", self.0.cfg.base_url),
            self.0.cfg.clock.clone(),
        )
    }

    /// Serves on `listener` within the default [`ServeLimits`] until the task is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        self.serve_limited(listener, ServeLimits::default()).await
    }

    /// Serves on `listener` within `limits` until the task is dropped (with an RP nested,
    /// pass [`ServiceProvider::router_with_rp`] to [`spid_net::serve`]).
    pub async fn serve_limited(
        self,
        listener: tokio::net::TcpListener,
        limits: ServeLimits,
    ) -> std::io::Result<()> {
        spid_net::serve(listener, self.router(), limits).await
    }
}

/// Holds each answer for the configured delay ([`SpConfig::delay`]).
async fn delayed(
    State(delay): State<std::time::Duration>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    next.run(req).await
}

fn session_of(headers: &HeaderMap) -> Option<String> {
    spid_core::cookie::session_cookie(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        COOKIE,
    )
}

fn set_cookie(sp: &ServiceProvider, value: &str) -> HeaderValue {
    // Loopback http: SameSite=Lax (IdP and SP on 127.0.0.1 are same-site) and no Secure flag,
    // or http clients would not send it back; over https the cross-site POST needs None+Secure.
    let attrs = if sp.0.cfg.base_url.starts_with("https://") {
        "; SameSite=None; Secure"
    } else {
        "; SameSite=Lax"
    };
    HeaderValue::from_str(&format!("{COOKIE}={value}; Path=/; HttpOnly{attrs}"))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn home(State(sp): State<ServiceProvider>, headers: HeaderMap) -> Response {
    let id = session_of(&headers).and_then(|s| sp.0.store.identity(&s));
    html(StatusCode::OK, pages::home(id.as_ref(), &sp.idps()))
}

async fn metadata_handler(State(sp): State<ServiceProvider>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/samlmetadata+xml")],
        sp.0.metadata_xml.clone(),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    idp: Option<String>,
    binding: Option<String>,
    level: Option<String>,
    comparison: Option<String>,
    purpose: Option<String>,
}

async fn login(
    State(sp): State<ServiceProvider>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let cfg = &sp.0.cfg;
    let idp = {
        let idps = sp.0.idps.read().unwrap_or_else(|e| e.into_inner());
        match &q.idp {
            Some(want) => idps.iter().find(|m| &m.entity_id == want).cloned(),
            None if idps.len() == 1 => idps.first().cloned(),
            None => None,
        }
    };
    let Some(idp) = idp else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::error(
                "Unknown identity provider",
                "Choose a registered IdP with ?idp=<entityID>.",
            ),
        );
    };
    let binding = match q.binding.as_deref() {
        Some("post") => RequestBinding::Post,
        Some("redirect") => RequestBinding::Redirect,
        _ => cfg.binding,
    };
    let desc = idp.idp.as_ref();
    let binding_uri = match binding {
        RequestBinding::Post => ns::BINDING_POST,
        RequestBinding::Redirect => ns::BINDING_REDIRECT,
    };
    let Some(sso) = desc
        .and_then(|d| d.sso_for(binding_uri))
        .map(str::to_string)
    else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::error(
                "Unsupported binding",
                "The IdP has no SSO endpoint for that binding.",
            ),
        );
    };
    let Ok(sso_url) = url::Url::parse(&sso) else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::error("Bad IdP metadata", "The SSO location is not a URL."),
        );
    };
    // A request may ask for a different level or comparison (tests do); the floor
    // `min_level` still applies to what is accepted.
    let level = match q.level.as_deref().map(SpidLevel::parse) {
        None => cfg.level,
        Some(Some(l)) => l,
        Some(None) => {
            return html(
                StatusCode::BAD_REQUEST,
                pages::error("Bad level", "level is 1, 2 or 3."),
            )
        }
    };
    let comparison = match q.comparison.as_deref().map(Comparison::parse) {
        None => cfg.comparison,
        Some(Some(c)) => c,
        Some(None) => {
            return html(
                StatusCode::BAD_REQUEST,
                pages::error("Bad comparison", "exact, minimum, better or maximum."),
            )
        }
    };
    let purpose = match q
        .purpose
        .as_deref()
        .map(spid_core::professional::Purpose::parse)
    {
        None => None,
        Some(Some(p)) => Some(p),
        Some(None) => {
            return html(
                StatusCode::BAD_REQUEST,
                pages::error("Bad purpose", "purpose is P, LP, PG, PF or PX (Avviso 18)."),
            )
        }
    };
    let now = cfg.clock.now();
    let mut req = AuthnRequest::spid(&cfg.entity_id, &sso, now, level, comparison, 0, 0);
    req.purpose = purpose.map(|p| p.as_str().to_string());
    if sp.idp_profile(&idp.entity_id) == IdpProfile::Cie {
        // CIE: ForceAuthn at every level (Destination is already the binding's SSO location).
        req.force_authn = Some("true".into());
    }
    let req_id = req.id.clone().unwrap_or_default();
    // Opaque RelayState: never a URL (SPID), bound to nothing the IdP could read.
    let relay = format!("{:032x}", rand::random::<u128>());
    let session =
        session_of(&headers).unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
    let added = sp.0.store.add_pending(
        &session,
        PendingRequest {
            id: req_id,
            // The instant as written in the request (millisecond precision): IdPs echo it.
            issue_instant: req.issue_instant_parsed().unwrap_or(now),
            idp_entity_id: idp.entity_id.clone(),
            level,
            comparison,
            attribute_index: 0,
            purpose,
        },
        now,
        now + cfg.request_ttl,
    );
    if let Err(full) = added {
        tracing::warn!(%full, "login refused: pending-request store full");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (
                    header::HeaderName::from_static(RULE_HEADER),
                    HeaderValue::from_static(spid_core::Rule::ServerPendingFull.code()),
                ),
            ],
            pages::error(
                "Servizio temporaneamente non disponibile",
                &full.to_string(),
            ),
        )
            .into_response();
    }
    let cookie = set_cookie(&sp, &session);
    match binding {
        RequestBinding::Redirect => {
            match binding::encode_redirect(
                &sso_url,
                MessageParam::SamlRequest,
                &req.to_element().to_xml(),
                Some(&relay),
                Some((&cfg.credential.key, SigAlg::RsaSha256)),
            ) {
                // 302, not axum's 303: SPID tooling expects 302 from the login URL.
                Ok(u) => (
                    StatusCode::FOUND,
                    [
                        (
                            header::LOCATION,
                            HeaderValue::from_str(u.as_str())
                                .unwrap_or(HeaderValue::from_static("/")),
                        ),
                        (header::SET_COOKIE, cookie),
                    ],
                )
                    .into_response(),
                Err(e) => html(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    pages::error("Cannot encode request", &e.to_string()),
                ),
            }
        }
        RequestBinding::Post => match dsig::sign_root(req.to_element(), &cfg.credential) {
            Ok(xml) => {
                let body = binding::post_form_html(
                    &sso_url,
                    MessageParam::SamlRequest,
                    &binding::encode_post(&xml),
                    Some(&relay),
                );
                (
                    StatusCode::OK,
                    [
                        (
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("text/html; charset=utf-8"),
                        ),
                        (header::SET_COOKIE, cookie),
                    ],
                    body,
                )
                    .into_response()
            }
            Err(e) => html(
                StatusCode::INTERNAL_SERVER_ERROR,
                pages::error("Cannot sign request", &e.to_string()),
            ),
        },
    }
}

async fn acs(State(sp): State<ServiceProvider>, headers: HeaderMap, body: Bytes) -> Response {
    let fields = match spid_net::form(&body, &FormLimits::default()) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let saml = fields
        .iter()
        .find(|(k, _)| k == "SAMLResponse")
        .map(|(_, v)| v.as_str());
    let session = session_of(&headers);
    let now = sp.0.cfg.clock.now();
    let idps = sp.0.idps.read().unwrap_or_else(|e| e.into_inner()).clone();
    let cie_idps =
        sp.0.cie_idps
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
    let mut lookup = sp.0.store.lookup(session.as_deref(), now);
    let outcome = validator::validate_profiled(
        saml,
        &sp.0.policy,
        &idps,
        &cie_idps,
        &mut lookup,
        &sp.0.store,
        now,
    );
    match outcome {
        Ok(id) => {
            tracing::info!(idp = %id.idp, level = %id.level, "login accepted");
            let new_session = format!("{:032x}", rand::random::<u128>());
            let page = pages::accepted(&id);
            if let Some(taken) = lookup.taken() {
                sp.0.store.move_consumed(taken, &new_session, now);
            }
            sp.0.store.login(session.as_deref(), &new_session, id, now);
            (
                StatusCode::OK,
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/html; charset=utf-8"),
                    ),
                    (header::SET_COOKIE, set_cookie(&sp, &new_session)),
                    (
                        header::HeaderName::from_static(OUTCOME_HEADER),
                        HeaderValue::from_static("accepted"),
                    ),
                ],
                page,
            )
                .into_response()
        }
        Err(r) => {
            tracing::info!(rule = r.rule.code(), detail = %r.detail, "login rejected");
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
                    (
                        header::HeaderName::from_static(OUTCOME_HEADER),
                        HeaderValue::from_static("rejected"),
                    ),
                ],
                pages::rejected(&r),
            )
                .into_response()
        }
    }
}

#[derive(serde::Deserialize)]
struct LogoutQuery {
    binding: Option<String>,
}

/// SP-initiated Single Logout: a signed LogoutRequest to the IdP's SLO endpoint.
async fn logout(
    State(sp): State<ServiceProvider>,
    headers: HeaderMap,
    Query(q): Query<LogoutQuery>,
) -> Response {
    use spid_core::saml::inbound::{self, Outgoing, Via};
    use spid_core::saml::logout::LogoutRequest;
    let Some(session) = session_of(&headers) else {
        return html(
            StatusCode::OK,
            pages::error("Logout", "You are not logged in."),
        );
    };
    let Some(id) = sp.0.store.identity(&session) else {
        return html(
            StatusCode::OK,
            pages::error("Logout", "You are not logged in."),
        );
    };
    let via = if q.binding.as_deref() == Some("post") {
        Via::Post
    } else {
        Via::Redirect
    };
    let want = if via == Via::Post {
        ns::BINDING_POST
    } else {
        ns::BINDING_REDIRECT
    };
    let slo = {
        let idps = sp.0.idps.read().unwrap_or_else(|e| e.into_inner());
        idps.iter()
            .find(|m| m.entity_id == id.idp)
            .and_then(|m| m.idp.as_ref())
            .and_then(|d| {
                d.slo
                    .iter()
                    .find(|e| e.binding == want)
                    .map(|e| e.location.clone())
            })
    };
    let Some(slo) = slo else {
        // The IdP offers no SLO for this binding: end the local session only.
        sp.0.store.logout(&session);
        return html(
            StatusCode::OK,
            pages::error(
                "Logout",
                "Logged out locally; the IdP has no SingleLogoutService for this binding.",
            ),
        );
    };
    let cfg = &sp.0.cfg;
    let req = LogoutRequest::new(
        &cfg.entity_id,
        &slo,
        cfg.clock.now(),
        &id.name_id,
        &id.idp,
        id.session_index.clone(),
    );
    sp.0.store.start_logout(&session, &req.id, &id.idp);
    let relay = format!("{:032x}", rand::random::<u128>());
    match inbound::send(
        via,
        &slo,
        MessageParam::SamlRequest,
        req.to_element(),
        Some(&relay),
        &cfg.credential,
    ) {
        Ok(Outgoing::Redirect(u)) => (
            StatusCode::FOUND,
            [(
                header::LOCATION,
                HeaderValue::from_str(u.as_str()).unwrap_or(HeaderValue::from_static("/")),
            )],
        )
            .into_response(),
        Ok(Outgoing::Form(page)) => html(StatusCode::OK, page),
        Err(e) => html(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::error("Cannot send the LogoutRequest", &e.to_string()),
        ),
    }
}

async fn slo_get(
    State(sp): State<ServiceProvider>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    slo(&sp, &headers, q.as_deref(), &[])
}

async fn slo_post(
    State(sp): State<ServiceProvider>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let f = match spid_net::form(&body, &FormLimits::default()) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    slo(&sp, &headers, q.as_deref(), &f)
}

/// The IdP's LogoutResponse: verified with its metadata certificate and matched to the
/// LogoutRequest this browser session sent.
fn slo(
    sp: &ServiceProvider,
    headers: &HeaderMap,
    query: Option<&str>,
    form: &[(String, String)],
) -> Response {
    use spid_core::saml::inbound;
    use spid_core::saml::logout::LogoutResponse;
    use spid_core::Rule;
    let refuse = |rule: Rule, detail: String| {
        tracing::info!(rule = rule.code(), %detail, "logout refused");
        let r = validator::Rejection::new(rule, detail);
        (
            StatusCode::FORBIDDEN,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (
                    header::HeaderName::from_static(RULE_HEADER),
                    HeaderValue::from_static(rule.code()),
                ),
            ],
            pages::rejected(&r),
        )
            .into_response()
    };
    let rec = match inbound::receive(MessageParam::SamlResponse, query, form) {
        Ok(r) => r,
        Err(e) => return refuse(Rule::LogoutMessageInvalid, e.to_string()),
    };
    let Some(resp) = LogoutResponse::from_element(&rec.root) else {
        return refuse(Rule::LogoutMessageInvalid, "not a LogoutResponse".into());
    };
    let pending = session_of(headers).and_then(|s| sp.0.store.pending_logout(&s).map(|p| (s, p)));
    let Some((session, (req_id, idp_id))) = pending else {
        return refuse(
            Rule::LogoutInResponseToUnknown,
            "no logout pending in this session".into(),
        );
    };
    let certs = {
        let idps = sp.0.idps.read().unwrap_or_else(|e| e.into_inner());
        idps.iter()
            .find(|m| m.entity_id == idp_id)
            .map(|m| m.signing_certs.clone())
            .unwrap_or_default()
    };
    if let Err(e) = rec.verify(&certs) {
        return refuse(Rule::LogoutSignatureInvalid, e.to_string());
    }
    if resp.in_response_to != req_id {
        return refuse(
            Rule::LogoutInResponseToUnknown,
            format!("InResponseTo {} is not {req_id}", resp.in_response_to),
        );
    }
    if resp.issuer != idp_id {
        return refuse(
            Rule::LogoutIssuerMismatch,
            format!("Issuer {} is not {idp_id}", resp.issuer),
        );
    }
    if resp.status != ns::STATUS_SUCCESS {
        return refuse(
            Rule::LogoutStatusNotSuccess,
            format!("StatusCode {} {:?}", resp.status, resp.sub_status),
        );
    }
    sp.0.store.finish_logout(&session);
    html(
        StatusCode::OK,
        pages::error(
            "Logout completato",
            "You are logged out of this SP and of the IdP session.",
        ),
    )
}
