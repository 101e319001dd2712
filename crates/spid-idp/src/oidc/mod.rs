//! SPID OpenID Connect on the identity-provider side: a minimal trust anchor ([`ta`]) and an
//! OpenID Provider ([`op`]) that reuses the SAML IdP's users and login pages.

pub mod op;
pub mod ta;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use spid_core::oidc::federation::{
    precheck_entity_configuration, resolve_leaf, EntityKeys, FederationError, ResolvedChain,
    ENTITY_STATEMENT_CONTENT_TYPE,
};
use spid_core::oidc::jose::{JoseError, SigningKey};
use spid_core::oidc::Profile;
use std::time::Duration;

/// Largest federation document or HTTP body fetched from a peer.
pub const MAX_FETCH_BYTES: usize = 256 * 1024;

/// A fresh RSA 2048 signing key (`kid` = thumbprint). Trust in it comes from the trust anchor
/// registration, so generating at startup is enough for a test federation.
pub fn new_signing_key() -> Result<SigningKey, JoseError> {
    let rsa = Rsa::generate(2048).map_err(|e| JoseError::Crypto(e.to_string()))?;
    let pkey = PKey::from_rsa(rsa).map_err(|e| JoseError::Crypto(e.to_string()))?;
    SigningKey::from_pkey(pkey)
}

/// `response` with the deciding rule in `X-SPID-Rule`, as the SP and RP send it: the harness
/// asserts our OP's refusals by code, not by their error text.
pub(crate) fn with_rule(mut response: Response, rule: spid_core::Rule) -> Response {
    response.headers_mut().insert(
        header::HeaderName::from_static(RULE_HEADER),
        header::HeaderValue::from_static(rule.code()),
    );
    response
}

/// The rule header (same name as the SP's).
pub const RULE_HEADER: &str = "x-spid-rule";

/// A `200` answer carrying an entity statement JWT.
pub(crate) fn entity_statement(jwt: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, ENTITY_STATEMENT_CONTENT_TYPE)],
        jwt,
    )
        .into_response()
}

/// A JSON answer with `Cache-Control: no-store` (token-endpoint style).
pub(crate) fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// An OAuth-style JSON error body.
pub(crate) fn json_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(
        status,
        &serde_json::json!({"error": error, "error_description": description}),
    )
}

/// Why a peer could not be fetched or trusted.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Transport failure, non-200 status or an oversized body.
    #[error("fetch {url}: {detail}")]
    Http {
        /// What was fetched.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The federation documents did not validate.
    #[error(transparent)]
    Federation(#[from] FederationError),
}

/// Sends `req` and returns its body as text, refusing non-200 answers and bodies over
/// [`MAX_FETCH_BYTES`].
async fn send_text(req: reqwest::RequestBuilder, url: &str) -> Result<String, FetchError> {
    let err = |detail: String| FetchError::Http {
        url: url.to_string(),
        detail,
    };
    let mut resp = req
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| err(e.to_string()))?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(err(format!("status {}", resp.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| err(e.to_string()))? {
        if body.len() + chunk.len() > MAX_FETCH_BYTES {
            return Err(err("body too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| err("body is not UTF-8".into()))
}

/// GETs `url` and returns its body as text (200 only, at most [`MAX_FETCH_BYTES`]).
pub async fn fetch_text(client: &reqwest::Client, url: &str) -> Result<String, FetchError> {
    send_text(client.get(url), url).await
}

/// Resolves `entity_id` through the trust anchor. In order, so that an entity without a
/// valid trust mark costs one fetch only: its entity configuration, self-signed and carrying
/// a trust mark from the anchor; the mark's status at the anchor (`trust_mark_status` must say
/// active); the anchor's `fetch` statement; the chain ([`resolve_leaf`]).
pub async fn resolve_entity(
    client: &reqwest::Client,
    entity_id: &str,
    anchor: &EntityKeys,
    profile: &Profile,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<ResolvedChain, FetchError> {
    let ec_url = format!(
        "{}/.well-known/openid-federation",
        entity_id.trim_end_matches('/')
    );
    let ec = fetch_text(client, &ec_url).await?;
    let (_, mark) = precheck_entity_configuration(&ec, anchor, profile, now)?;
    let ta = anchor.entity_id.trim_end_matches('/');
    let status_url = format!("{ta}/trust_mark_status");
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("sub", entity_id)
        .append_pair("id", &mark.id)
        .finish();
    let status = send_text(
        client
            .post(&status_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form),
        &status_url,
    )
    .await?;
    let active = spid_core::oidc::federation::trust_mark_status_active(&status, anchor, profile);
    if active != Some(true) {
        return Err(FetchError::Http {
            url: status_url,
            detail: "the trust mark is not active".into(),
        });
    }
    let mut fetch = url::Url::parse(&format!("{ta}/fetch")).map_err(|e| FetchError::Http {
        url: anchor.entity_id.clone(),
        detail: e.to_string(),
    })?;
    fetch.query_pairs_mut().append_pair("sub", entity_id);
    let statement = fetch_text(client, fetch.as_str()).await?;
    Ok(resolve_leaf(&ec, &statement, anchor, profile, now)?)
}

/// An HTTP client for server-to-server calls (no proxy: peers are on loopback in tests).
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}
