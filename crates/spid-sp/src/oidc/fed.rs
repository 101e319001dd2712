//! Server-to-server HTTP for the RP: bounded fetches and trust resolution through the
//! trust anchor.

use spid_core::oidc::federation::{
    precheck_entity_configuration, resolve_leaf, EntityKeys, ResolvedChain,
};
use spid_core::oidc::Profile;
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

/// Sends `req` and reads at most [`MAX_BODY_BYTES`] of the answer.
pub async fn send(req: reqwest::RequestBuilder) -> Result<Answer, String> {
    let mut resp = req
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err("body too large".into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

async fn fetch_200(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let a = send(client.get(url))
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if a.status != 200 {
        return Err(format!("{url}: status {}", a.status));
    }
    Ok(a.body)
}

/// Resolves `entity_id` through the trust anchor: its entity configuration (self-signed,
/// with a trust mark from the anchor), the mark's status at the anchor (must be active), the
/// anchor's `fetch` statement, chain validation.
pub async fn resolve_entity(
    client: &reqwest::Client,
    entity_id: &str,
    anchor: &EntityKeys,
    profile: &Profile,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<ResolvedChain, String> {
    let ec = fetch_200(
        client,
        &format!(
            "{}/.well-known/openid-federation",
            entity_id.trim_end_matches('/')
        ),
    )
    .await?;
    let (_, mark) =
        precheck_entity_configuration(&ec, anchor, profile, now).map_err(|e| e.to_string())?;
    let ta = anchor.entity_id.trim_end_matches('/');
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("sub", entity_id)
        .append_pair("id", &mark.id)
        .finish();
    let status = send(
        client
            .post(format!("{ta}/trust_mark_status"))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form),
    )
    .await?;
    let active =
        spid_core::oidc::federation::trust_mark_status_active(&status.body, anchor, profile);
    if status.status != 200 || active != Some(true) {
        return Err(format!(
            "trust mark {} of {entity_id} is not active",
            mark.id
        ));
    }
    let mut fetch = url::Url::parse(&format!("{ta}/fetch")).map_err(|e| e.to_string())?;
    fetch.query_pairs_mut().append_pair("sub", entity_id);
    let statement = fetch_200(client, fetch.as_str()).await?;
    resolve_leaf(&ec, &statement, anchor, profile, now).map_err(|e| e.to_string())
}
