//! One bounded HTTP fetch for the federation documents our servers resolve.

use std::time::Duration;

/// Sends `req` and returns its body as text: only a 200 answer, at most `limit` bytes (from
/// `Content-Length` first, then counted while the body streams in, never read past), UTF-8,
/// the whole exchange within `within`. The error says which bound was hit.
pub async fn fetch_text(
    req: reqwest::RequestBuilder,
    limit: usize,
    within: Duration,
) -> Result<String, FetchError> {
    let exchange = async {
        let mut resp = req.send().await?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status(resp.status()));
        }
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(FetchError::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            if body.len() + chunk.len() > limit {
                return Err(FetchError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| FetchError::NotUtf8)
    };
    tokio::time::timeout(within, exchange)
        .await
        .unwrap_or(Err(FetchError::Timeout(within)))
}

/// Why [`fetch_text`] returned no body: which bound was hit, or the transport's error.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request failed on the wire (connect, TLS, reading the answer).
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
    /// The answer is not a 200.
    #[error("status {0}")]
    Status(reqwest::StatusCode),
    /// The body is larger than the limit (announced or counted).
    #[error("body over {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not UTF-8.
    #[error("body is not UTF-8")]
    NotUtf8,
    /// No complete answer within the time allowed (the bound, printed as `10s`).
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
}
