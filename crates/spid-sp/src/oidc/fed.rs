//! Server-to-server HTTP for the RP: bounded requests, and the network trust-chain
//! resolution walks.

use spid_core::oidc::federation::{
    FederationFetcher, FETCH_TIMEOUT, MAX_FEDERATION_DOCUMENT_BYTES,
};
use spid_net::FetchError;
use std::time::Duration;

/// Largest body read from an OP or the trust anchor.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A bounded HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Content-Type, if any.
    pub content_type: Option<String>,
    /// Body (lossy UTF-8).
    pub body: String,
}

/// Why [`send`] got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The request failed on the wire (connect, timeout, reading the answer).
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
    /// The body is over [`MAX_BODY_BYTES`].
    #[error("body too large")]
    TooLarge,
}

/// Sends `req` and reads at most [`MAX_BODY_BYTES`] of the answer.
pub async fn send(req: reqwest::RequestBuilder) -> Result<Answer, SendError> {
    let mut resp = req.timeout(Duration::from_secs(10)).send().await?;
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(SendError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The federation's network for trust-chain resolution ([`resolve_trust_chain`]) over
/// `reqwest`: 200 answers only, at most [`MAX_FEDERATION_DOCUMENT_BYTES`] (counted while the
/// body streams in, and from `Content-Length` first), the whole exchange within
/// [`FETCH_TIMEOUT`]; the RP's client connects within [`FETCH_CONNECT_TIMEOUT`].
///
/// [`FETCH_CONNECT_TIMEOUT`]: spid_core::oidc::federation::FETCH_CONNECT_TIMEOUT
/// [`resolve_trust_chain`]: spid_core::oidc::federation::resolve_trust_chain
#[derive(Clone, Copy)]
pub struct HttpFetcher<'a>(pub &'a reqwest::Client);

impl HttpFetcher<'_> {
    async fn ok_body(req: reqwest::RequestBuilder) -> Result<String, FetchError> {
        spid_net::fetch_text(req, MAX_FEDERATION_DOCUMENT_BYTES, FETCH_TIMEOUT).await
    }
}

impl FederationFetcher for HttpFetcher<'_> {
    type Error = FetchError;

    async fn get(&self, url: &str) -> Result<String, FetchError> {
        Self::ok_body(self.0.get(url)).await
    }

    async fn post_form(&self, url: &str, pairs: &[(&str, &str)]) -> Result<String, FetchError> {
        Self::ok_body(self.0.post(url).form(pairs)).await
    }
}
