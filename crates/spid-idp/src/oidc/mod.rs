//! SPID OpenID Connect on the identity-provider side: a minimal trust anchor ([`ta`]) and an
//! OpenID Provider ([`op`]) that reuses the SAML IdP's users and login pages.

pub mod op;
pub mod ta;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use spid_core::oidc::federation::{
    FederationFetcher, ENTITY_STATEMENT_CONTENT_TYPE, FETCH_CONNECT_TIMEOUT, FETCH_TIMEOUT,
    MAX_FEDERATION_DOCUMENT_BYTES,
};
use spid_core::oidc::jose::{JoseError, SigningKey};
use spid_net::FetchError;

/// Largest federation document or HTTP body fetched from a peer.
pub const MAX_FETCH_BYTES: usize = MAX_FEDERATION_DOCUMENT_BYTES;

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
    tracing::info!(
        rule = rule.code(),
        status = response.status().as_u16(),
        "refused"
    );
    response.headers_mut().insert(
        header::HeaderName::from_static(RULE_HEADER),
        header::HeaderValue::from_static(rule.code()),
    );
    response
}

/// The rule header (same name as the SP's).
pub const RULE_HEADER: &str = "x-spid-rule";

/// A `200` answer carrying an entity statement JWT.
pub fn entity_statement(jwt: String) -> Response {
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

/// The federation's network for trust-chain resolution ([`resolve_trust_chain`]) over
/// `reqwest`: [`FETCH_TIMEOUT`] per request (connection, answer and body), 200 answers only,
/// at most [`MAX_FEDERATION_DOCUMENT_BYTES`] of UTF-8. Give it a client from
/// `http_client`-like builders with [`FETCH_CONNECT_TIMEOUT`] (ours have it).
///
/// [`resolve_trust_chain`]: spid_core::oidc::federation::resolve_trust_chain
#[derive(Clone, Copy)]
pub struct HttpFetcher<'a>(pub &'a reqwest::Client);

impl FederationFetcher for HttpFetcher<'_> {
    type Error = FetchError;

    async fn get(&self, url: &str) -> Result<String, FetchError> {
        spid_net::fetch_text(
            self.0.get(url),
            MAX_FEDERATION_DOCUMENT_BYTES,
            FETCH_TIMEOUT,
        )
        .await
    }

    async fn post_form(&self, url: &str, pairs: &[(&str, &str)]) -> Result<String, FetchError> {
        spid_net::fetch_text(
            self.0.post(url).form(pairs),
            MAX_FEDERATION_DOCUMENT_BYTES,
            FETCH_TIMEOUT,
        )
        .await
    }
}

/// An HTTP client for server-to-server calls (no proxy: peers are on loopback in tests).
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(FETCH_CONNECT_TIMEOUT)
        .timeout(FETCH_TIMEOUT)
        .build()
        .unwrap_or_default()
}
