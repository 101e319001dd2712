//! One bounded HTTP fetch for the federation documents our servers resolve.

use std::time::Duration;

/// Sends `req` and returns its body as text: only a 200 answer, at most `limit` bytes (from
/// `Content-Length` first, then counted while the body streams in, never read past), UTF-8,
/// the whole exchange within `within`. The error says which bound was hit.
pub async fn fetch_text(
    req: reqwest::RequestBuilder,
    limit: usize,
    within: Duration,
) -> Result<String, String> {
    let exchange = async {
        let mut resp = req.send().await.map_err(|e| e.to_string())?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(format!("status {}", resp.status()));
        }
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(format!("body over {limit} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > limit {
                return Err(format!("body over {limit} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| "body is not UTF-8".to_string())
    };
    tokio::time::timeout(within, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no complete answer within {within:?}")))
}
