//! Before a server fetches anything from an entity it was merely told about (an OP named in
//! `/login?op=`, a `client_id` at the authorization endpoint), it asks the trust anchor
//! whether the entity belongs to the federation: [`anchor_knows`]. Unknown URLs are then
//! never contacted, so a request parameter cannot point the server at arbitrary hosts and
//! ports. The same place holds the bounds every [`FederationFetcher`] implementation applies
//! and the wording of resolution errors shown to users ([`ResolveError::public`]).

use super::{
    endpoint, fetch_url, get, same_entity, verify_anchor_configuration, FederationFetcher,
    Intermediates, ResolveError, MAX_INTERMEDIATES, MAX_WALK_FETCHES,
};
use crate::oidc::federation::leaf::anchor_trust_mark;
use crate::oidc::federation::{
    decode_entity_statement_unverified, entity_configuration_url, verify_entity_configuration,
    verify_statement, EntityKeys,
};
use crate::oidc::profile::Profile;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The most a fetcher reads of one federation document (entity configuration, subordinate
/// statement, list, trust-mark status), counted while the body streams in.
pub const MAX_FEDERATION_DOCUMENT_BYTES: usize = 64 * 1024;
/// How long a fetcher waits for a connection.
pub const FETCH_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one fetch may take in all, connection and body included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Intermediates whose subordinates [`anchor_knows`] looks through, per authority.
pub const MAX_LISTED_INTERMEDIATES: usize = 8;

/// Whether the federation of `anchor` knows `entity_id`: the anchor itself, a subordinate
/// its fetch endpoint has a statement about or, when `intermediates` are allowed, one of an
/// intermediate the anchor lists (`federation_list_endpoint?entity_type=federation_entity`),
/// down to [`MAX_INTERMEDIATES`] levels, within [`MAX_WALK_FETCHES`] fetches. Only the
/// anchor (its configuration verified with `anchor`'s keys) and intermediates carrying the
/// anchor's trust mark are asked; nothing is fetched from `entity_id`.
///
/// `Err(ResolveError::Unknown)` when no authority has a statement about it; a fetch error
/// when the anchor's configuration cannot be had. Whether the entity's chain is valid is
/// [`resolve_trust_chain`](super::resolve_trust_chain)'s business afterwards.
pub async fn anchor_knows<F: FederationFetcher + Sync + ?Sized>(
    fetcher: &F,
    entity_id: &str,
    anchor: &EntityKeys,
    profile: &Profile,
    now: DateTime<Utc>,
    intermediates: Intermediates,
) -> Result<(), ResolveError> {
    if same_entity(entity_id, &anchor.entity_id) {
        return Ok(());
    }
    let token = get(fetcher, &entity_configuration_url(&anchor.entity_id)).await?;
    let anchor_ec = verify_anchor_configuration(&token, anchor, profile, now).map_err(|e| {
        ResolveError::Federation {
            entity: anchor.entity_id.clone(),
            source: e,
        }
    })?;
    let depth = match intermediates {
        Intermediates::Forbidden => 0,
        Intermediates::Allowed => MAX_INTERMEDIATES,
    };
    let mut fetches = 1;
    // (authority id, its configuration, its level below the anchor)
    let mut queue = std::collections::VecDeque::from([(anchor.entity_id.clone(), anchor_ec, 0)]);
    let mut seen = vec![anchor.entity_id.clone()];
    while let Some((authority, ec, level)) = queue.pop_front() {
        if fetches >= MAX_WALK_FETCHES {
            break;
        }
        let Ok(fetch) = endpoint(&ec, "federation_fetch_endpoint") else {
            continue;
        };
        fetches += 1;
        if let Ok(statement) = get(fetcher, &fetch_url(&fetch, entity_id)?).await {
            let about = if level == 0 {
                verify_statement(&statement, &anchor.jwks, profile, now).ok()
            } else {
                decode_entity_statement_unverified(&statement).ok()
            };
            if about.is_some_and(|s| same_entity(&s.sub, entity_id) && s.iss == authority) {
                return Ok(());
            }
        }
        if level >= depth || fetches >= MAX_WALK_FETCHES {
            continue;
        }
        let Ok(list) = endpoint(&ec, "federation_list_endpoint") else {
            continue;
        };
        let Ok(mut url) = url::Url::parse(&list) else {
            continue;
        };
        url.query_pairs_mut()
            .append_pair("entity_type", "federation_entity");
        fetches += 1;
        let Ok(body) = get(fetcher, url.as_str()).await else {
            continue;
        };
        let ids: Vec<String> = serde_json::from_str(&body).unwrap_or_default();
        for id in ids.into_iter().take(MAX_LISTED_INTERMEDIATES) {
            if seen.contains(&id) || fetches >= MAX_WALK_FETCHES {
                continue;
            }
            seen.push(id.clone());
            fetches += 1;
            let Ok(token) = get(fetcher, &entity_configuration_url(&id)).await else {
                continue;
            };
            let Ok(ec) = verify_entity_configuration(&token, profile, now) else {
                continue;
            };
            if ec.sub != id || anchor_trust_mark(&ec, anchor, profile, now).is_err() {
                continue;
            }
            queue.push_back((id, ec, level + 1));
        }
    }
    Err(ResolveError::Unknown {
        entity: entity_id.to_string(),
        anchor: anchor.entity_id.clone(),
    })
}

impl ResolveError {
    /// Whether the resolution failed only for want of documents: a fetch failed, or every
    /// path tried ended at a failed fetch.
    pub fn fetch_failed(&self) -> bool {
        match self {
            ResolveError::Fetch { .. } => true,
            ResolveError::NoChain { attempts, .. } => {
                !attempts.is_empty() && attempts.iter().all(|a| a.error.fetch_failed())
            }
            _ => false,
        }
    }

    /// The error as users may see it: what was fetched and failed, never why (the fetcher's
    /// reason — connection refused, timeout, status — would let a page probe hosts and
    /// ports; log it instead). Everything else as [`Display`](std::fmt::Display) words it.
    pub fn public(&self) -> String {
        match self {
            ResolveError::Fetch { url, .. } => format!("{url} could not be fetched"),
            ResolveError::NoChain {
                subject,
                anchor,
                attempts,
            } if !attempts.is_empty() => format!(
                "no trust chain from {subject} to {anchor}: {}",
                attempts
                    .iter()
                    .map(|a| format!("[{}] {}", a.path.join(" → "), a.error.public()))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::federation::Attempt;

    #[test]
    fn public_words_drop_the_fetchers_reason() {
        let fetch = ResolveError::Fetch {
            url: "http://10.0.0.1:22/.well-known/openid-federation".into(),
            detail: "connection refused".into(),
        };
        assert!(fetch.fetch_failed());
        assert_eq!(
            fetch.public(),
            "http://10.0.0.1:22/.well-known/openid-federation could not be fetched"
        );
        let chain = ResolveError::NoChain {
            subject: "http://rp".into(),
            anchor: "http://ta".into(),
            attempts: vec![Attempt {
                path: vec!["http://rp".into(), "http://sa".into()],
                error: fetch.clone(),
            }],
        };
        assert!(chain.fetch_failed());
        assert!(!chain.public().contains("refused"), "{}", chain.public());
        let unknown = ResolveError::Unknown {
            entity: "http://x".into(),
            anchor: "http://ta".into(),
        };
        assert!(!unknown.fetch_failed());
        assert_eq!(unknown.public(), unknown.to_string());
    }
}
