//! Trust-chain discovery: from an entity's configuration up its `authority_hints` to the
//! trust anchor, then [`validate_trust_chain`]. The network is the caller's: anything that
//! implements [`FederationFetcher`] (an HTTP client in the servers, a map in tests), so this
//! crate stays free of an HTTP client.
//!
//! Order of the work, cheapest refusal first (SPID automatic registration, anti-DoS):
//! 1. the entity's configuration, which must carry a trust mark the anchor issued: an entity
//!    without one costs this single fetch;
//! 2. the anchor's configuration (signed with the keys known out of band): its endpoints and
//!    its `constraints.max_path_length`;
//! 3. the mark's status at the anchor's `trust_mark_status` endpoint;
//! 4. the walk: for each hint (the anchor first, at most [`MAX_HINTS_PER_LEVEL`] per entity),
//!    the hint's configuration and, from its `federation_fetch_endpoint`, its statement about
//!    the entity below; until a hint is the anchor. The number of intermediates is bounded by
//!    the anchor's `max_path_length` (never more than [`MAX_INTERMEDIATES`]) and the fetches
//!    by [`MAX_WALK_FETCHES`]. A path whose chain does not validate is recorded and the next
//!    hint is tried.
//!
//! Leaves and intermediates alike must carry a trust mark issued by the trust anchor (SPID:
//! trust marks are mandatory for every entity but the anchor, and the anchor is their issuer
//! here), so the step-1 precheck needs only the anchor's keys whatever the path.

use super::leaf::{anchor_trust_mark, precheck_entity_configuration};
use super::{
    trust_mark_status_active, validate_trust_chain, verify_entity_configuration, verify_statement,
    EntityKeys, EntityStatement, FederationError, ResolvedChain,
};
use crate::oidc::profile::Profile;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::future::Future;

/// Authority hints tried per entity; the rest are ignored (and reported).
pub const MAX_HINTS_PER_LEVEL: usize = 4;
/// Intermediates allowed when the trust anchor sets no `max_path_length`, and the most
/// allowed whatever it sets.
pub const MAX_INTERMEDIATES: u64 = 3;
/// Fetches the walk may spend (configurations and statements of superiors) per resolution.
pub const MAX_WALK_FETCHES: usize = 16;

/// The network a resolution needs. Implementations bound what they read (size, time: at
/// most [`MAX_FEDERATION_DOCUMENT_BYTES`] counted while the body streams in, within
/// [`FETCH_TIMEOUT`], connecting within [`FETCH_CONNECT_TIMEOUT`]) and turn every failure
/// (transport, non-200 status, oversized or non-UTF-8 body) into `Err` with a short reason;
/// the resolver adds the URL. The reason is for logs: pages show [`ResolveError::public`].
pub trait FederationFetcher {
    /// Why a fetch failed; its `Display` is the short reason the resolver records in
    /// [`ResolveError::Fetch`].
    type Error: std::fmt::Display;

    /// GETs `url` and returns the body of a 200 answer.
    fn get(&self, url: &str) -> impl Future<Output = Result<String, Self::Error>> + Send;

    /// POSTs `pairs` form-encoded (`application/x-www-form-urlencoded`) to `url` and returns
    /// the body of a 200 answer.
    fn post_form(
        &self,
        url: &str,
        pairs: &[(&str, &str)],
    ) -> impl Future<Output = Result<String, Self::Error>> + Send;
}

/// Whether the chain may pass through intermediates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intermediates {
    /// As many as the trust anchor's `max_path_length` allows (relying parties under a SPID
    /// Soggetto Aggregatore).
    Allowed,
    /// None: the entity must sit directly under the trust anchor (SPID: "No intermediates are
    /// allowed between OPs and the TA").
    Forbidden,
}

/// One path the walk tried and why it led nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Entity ids from the resolved entity up to the hint that failed.
    pub path: Vec<String>,
    /// What failed there.
    pub error: ResolveError,
}

/// Why an entity could not be resolved; every variant names the entity or URL concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// A fetch failed (the fetcher's reason).
    #[error("fetch {url}: {detail}")]
    Fetch {
        /// What was fetched.
        url: String,
        /// Why it failed.
        detail: String,
    },
    /// An entity's configuration (or its trust mark) did not validate.
    #[error("{entity}: {source}")]
    Federation {
        /// The entity whose document failed.
        entity: String,
        /// What failed.
        #[source]
        source: FederationError,
    },
    /// The configuration served for an entity id is about another entity.
    #[error("{url} serves the configuration of {found}")]
    WrongSubject {
        /// The configuration URL.
        url: String,
        /// The configuration's `sub`.
        found: String,
    },
    /// A superior's `federation_entity` metadata lacks an endpoint the walk needs.
    #[error("{entity} publishes no {endpoint}")]
    MissingEndpoint {
        /// The superior.
        entity: String,
        /// The metadata parameter.
        endpoint: &'static str,
    },
    /// The trust anchor says the entity's trust mark is not active.
    #[error("trust mark {id} of {sub} is not active")]
    TrustMarkInactive {
        /// The trust mark id.
        id: String,
        /// The entity.
        sub: String,
    },
    /// A hint is not the trust anchor where no intermediate is allowed.
    #[error(
        "{0} is an intermediate, and none is allowed between an OpenID Provider and the trust anchor"
    )]
    IntermediateForbidden(String),
    /// Following a hint would put more intermediates in the chain than allowed.
    #[error("{entity} would be one intermediate too many (max_path_length {max})")]
    PathTooLong {
        /// The hint not followed.
        entity: String,
        /// The limit in force.
        max: u64,
    },
    /// A hint names an entity already on the path.
    #[error("{0} is already on the path (authority_hints loop)")]
    Loop(String),
    /// An entity lists more hints than are tried.
    #[error("{entity}: {ignored} authority_hints beyond the first {cap} ignored")]
    HintsIgnored {
        /// The entity.
        entity: String,
        /// Hints not tried.
        ignored: usize,
        /// Hints tried per entity.
        cap: usize,
    },
    /// The walk spent its fetch budget.
    #[error("fetch budget of {0} spent")]
    FetchBudget(usize),
    /// Neither the trust anchor nor an intermediate it lists has a statement about the
    /// entity ([`anchor_knows`]): nothing was fetched from it.
    #[error("{entity} is no subordinate known to the trust anchor {anchor}")]
    Unknown {
        /// The entity asked about.
        entity: String,
        /// The trust anchor.
        anchor: String,
    },
    /// A path reached the trust anchor but its chain did not validate.
    #[error("trust chain: {0}")]
    Chain(FederationError),
    /// No hint led to a valid chain.
    #[error("no trust chain from {subject} to {anchor}: {}", describe(.attempts))]
    NoChain {
        /// The entity being resolved.
        subject: String,
        /// The trust anchor.
        anchor: String,
        /// Every path tried, in order.
        attempts: Vec<Attempt>,
    },
}

impl ResolveError {
    /// The errors of the paths tried, for a [`ResolveError::NoChain`]; empty otherwise.
    pub fn attempt_errors(&self) -> impl Iterator<Item = &ResolveError> {
        let attempts: &[Attempt] = match self {
            ResolveError::NoChain { attempts, .. } => attempts,
            _ => &[],
        };
        attempts.iter().map(|a| &a.error)
    }
}

fn describe(attempts: &[Attempt]) -> String {
    if attempts.is_empty() {
        return "no authority_hints".into();
    }
    attempts
        .iter()
        .map(|a| format!("[{}] {}", a.path.join(" → "), a.error))
        .collect::<Vec<_>>()
        .join("; ")
}

fn at(entity: &str, source: FederationError) -> ResolveError {
    ResolveError::Federation {
        entity: entity.to_string(),
        source,
    }
}

/// Where an entity publishes its configuration: `<entity id>/.well-known/openid-federation`.
pub fn entity_configuration_url(entity_id: &str) -> String {
    format!(
        "{}/.well-known/openid-federation",
        entity_id.trim_end_matches('/')
    )
}

fn same_entity(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// A `federation_entity` endpoint of a superior.
fn endpoint(ec: &EntityStatement, name: &'static str) -> Result<String, ResolveError> {
    ec.metadata
        .as_ref()
        .and_then(|m| m.federation_entity())
        .and_then(|f| f.get(name))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ResolveError::MissingEndpoint {
            entity: ec.sub.clone(),
            endpoint: name,
        })
}

/// The anchor's configuration, trusted because it is signed with the out-of-band keys.
fn verify_anchor_configuration(
    token: &str,
    anchor: &EntityKeys,
    profile: &Profile,
    now: DateTime<Utc>,
) -> Result<EntityStatement, FederationError> {
    let st = verify_statement(token, &anchor.jwks, profile, now)?;
    if !st.is_self_signed() {
        return Err(FederationError::NotSelfSigned {
            iss: st.iss,
            sub: st.sub,
        });
    }
    if st.iss != anchor.entity_id {
        return Err(FederationError::UnexpectedAnchor {
            expected: anchor.entity_id.clone(),
            found: st.iss,
        });
    }
    Ok(st)
}

/// Resolves `entity_id` to a validated trust chain ending at `anchor` (see the module
/// documentation for the steps). The chain handed to [`validate_trust_chain`] is
/// `[entity EC, ES(superior → entity), …, ES(anchor → top intermediate), anchor EC]`, so the
/// anchor configuration's `constraints` are enforced there too.
pub async fn resolve_trust_chain<F: FederationFetcher + Sync + ?Sized>(
    fetcher: &F,
    entity_id: &str,
    anchor: &EntityKeys,
    profile: &Profile,
    now: DateTime<Utc>,
    intermediates: Intermediates,
) -> Result<ResolvedChain, ResolveError> {
    let leaf_url = entity_configuration_url(entity_id);
    let leaf_token = get(fetcher, &leaf_url).await?;
    let (leaf, mark) = precheck_entity_configuration(&leaf_token, anchor, profile, now)
        .map_err(|e| at(entity_id, e))?;
    if !same_entity(&leaf.sub, entity_id) {
        return Err(ResolveError::WrongSubject {
            url: leaf_url,
            found: leaf.sub,
        });
    }

    let anchor_token = get(fetcher, &entity_configuration_url(&anchor.entity_id)).await?;
    let anchor_ec = verify_anchor_configuration(&anchor_token, anchor, profile, now)
        .map_err(|e| at(&anchor.entity_id, e))?;

    let status_url = endpoint(&anchor_ec, "federation_trust_mark_status_endpoint")?;
    let status = fetcher
        .post_form(&status_url, &[("sub", &leaf.sub), ("id", &mark.id)])
        .await
        .map_err(|e| ResolveError::Fetch {
            url: status_url.clone(),
            detail: e.to_string(),
        })?;
    if trust_mark_status_active(&status, anchor, profile) != Some(true) {
        return Err(ResolveError::TrustMarkInactive {
            id: mark.id,
            sub: leaf.sub,
        });
    }

    let max = match intermediates {
        Intermediates::Forbidden => 0,
        Intermediates::Allowed => anchor_ec
            .constraints
            .as_ref()
            .and_then(|c| c.max_path_length)
            .map_or(MAX_INTERMEDIATES, |m| m.min(MAX_INTERMEDIATES)),
    };
    let walk = Walk {
        fetcher,
        anchor,
        profile,
        now,
        max,
        forbidden: intermediates == Intermediates::Forbidden,
        anchor_fetch: endpoint(&anchor_ec, "federation_fetch_endpoint")?,
        leaf_token,
        anchor_token,
        fetches: 0,
        attempts: Vec::new(),
    };
    walk.run(leaf).await
}

/// GETs `url`; JWT bodies never contain whitespace, so surrounding whitespace is dropped.
async fn get<F: FederationFetcher + Sync + ?Sized>(
    fetcher: &F,
    url: &str,
) -> Result<String, ResolveError> {
    fetcher
        .get(url)
        .await
        .map(|b| b.trim().to_string())
        .map_err(|e| ResolveError::Fetch {
            url: url.to_string(),
            detail: e.to_string(),
        })
}

/// `<endpoint>?sub=<sub>`.
fn fetch_url(endpoint: &str, sub: &str) -> Result<String, ResolveError> {
    let mut url = url::Url::parse(endpoint).map_err(|e| ResolveError::Fetch {
        url: endpoint.to_string(),
        detail: format!("not a URL: {e}"),
    })?;
    url.query_pairs_mut().append_pair("sub", sub);
    Ok(url.into())
}

/// One level of the depth-first walk: an entity on the path and its hints still to try.
struct Frame {
    /// Entity ids from the resolved entity up to this one.
    path: Vec<String>,
    /// `statements[i]` is the statement by `path[i + 1]` about `path[i]`.
    statements: Vec<String>,
    /// Hints of `path.last()` still to try.
    hints: std::vec::IntoIter<String>,
}

struct Walk<'a, F: ?Sized> {
    fetcher: &'a F,
    anchor: &'a EntityKeys,
    profile: &'a Profile,
    now: DateTime<Utc>,
    /// Intermediates allowed.
    max: u64,
    forbidden: bool,
    anchor_fetch: String,
    /// The resolved entity's configuration (the chain's first element).
    leaf_token: String,
    /// The anchor's configuration (the chain's last element: its constraints apply).
    anchor_token: String,
    fetches: usize,
    attempts: Vec<Attempt>,
}

impl<F: FederationFetcher + Sync + ?Sized> Walk<'_, F> {
    async fn run(mut self, leaf: EntityStatement) -> Result<ResolvedChain, ResolveError> {
        let path = vec![leaf.sub.clone()];
        let hints = self.hints_of(&leaf, &path);
        let mut stack = vec![Frame {
            path,
            statements: Vec::new(),
            hints,
        }];
        while let Some(top) = stack.last_mut() {
            let Some(hint) = top.hints.next() else {
                stack.pop();
                continue;
            };
            let subject = top.path.last().cloned().unwrap_or_default();
            let mut path = top.path.clone();
            let mut statements = top.statements.clone();
            let depth = statements.len() as u64;
            let on_path = path.contains(&hint);
            path.push(hint.clone());
            let outcome = if hint == self.anchor.entity_id {
                self.close(&subject, statements).await
            } else if self.forbidden {
                Err(ResolveError::IntermediateForbidden(hint))
            } else if on_path {
                Err(ResolveError::Loop(hint))
            } else if depth >= self.max {
                Err(ResolveError::PathTooLong {
                    entity: hint,
                    max: self.max,
                })
            } else {
                match self.intermediate(&hint, &subject).await {
                    Ok((ec, es)) => {
                        statements.push(es);
                        let hints = self.hints_of(&ec, &path);
                        stack.push(Frame {
                            path,
                            statements,
                            hints,
                        });
                        continue;
                    }
                    Err(e) => Err(e),
                }
            };
            match outcome {
                Ok(chain) => return Ok(chain),
                Err(error) => {
                    let spent = matches!(error, ResolveError::FetchBudget(_));
                    self.attempts.push(Attempt { path, error });
                    if spent {
                        break;
                    }
                }
            }
        }
        Err(ResolveError::NoChain {
            subject: leaf.sub,
            anchor: self.anchor.entity_id.clone(),
            attempts: self.attempts,
        })
    }

    /// The hints of `st` to try: the anchor first when listed (the shortest chain, and no
    /// third party to ask), then the others, at most [`MAX_HINTS_PER_LEVEL`] in all.
    fn hints_of(&mut self, st: &EntityStatement, path: &[String]) -> std::vec::IntoIter<String> {
        let mut hints = st.authority_hints.clone().unwrap_or_default();
        if let Some(i) = hints.iter().position(|h| *h == self.anchor.entity_id) {
            let ta = hints.remove(i);
            hints.insert(0, ta);
        }
        if hints.len() > MAX_HINTS_PER_LEVEL {
            self.attempts.push(Attempt {
                path: path.to_vec(),
                error: ResolveError::HintsIgnored {
                    entity: st.sub.clone(),
                    ignored: hints.len() - MAX_HINTS_PER_LEVEL,
                    cap: MAX_HINTS_PER_LEVEL,
                },
            });
            hints.truncate(MAX_HINTS_PER_LEVEL);
        }
        hints.into_iter()
    }

    /// Closes a path at the anchor: its statement about `subject` on top of `statements`,
    /// then the anchor's configuration; the whole chain validated.
    async fn close(
        &mut self,
        subject: &str,
        statements: Vec<String>,
    ) -> Result<ResolvedChain, ResolveError> {
        let endpoint = self.anchor_fetch.clone();
        let es = self.statement(&endpoint, subject).await?;
        let chain: Vec<&str> = std::iter::once(self.leaf_token.as_str())
            .chain(statements.iter().map(String::as_str))
            .chain([es.as_str(), self.anchor_token.as_str()])
            .collect();
        validate_trust_chain(&chain, self.anchor, self.profile, self.now)
            .map_err(ResolveError::Chain)
    }

    async fn fetch(&mut self, url: &str) -> Result<String, ResolveError> {
        if self.fetches >= MAX_WALK_FETCHES {
            return Err(ResolveError::FetchBudget(MAX_WALK_FETCHES));
        }
        self.fetches += 1;
        get(self.fetcher, url).await
    }

    /// The statement a superior's fetch endpoint gives about `sub`.
    async fn statement(&mut self, endpoint: &str, sub: &str) -> Result<String, ResolveError> {
        let url = fetch_url(endpoint, sub)?;
        self.fetch(&url).await
    }

    /// An intermediate's configuration (self-consistent, about `hint`, with a trust mark from
    /// the anchor) and its statement about `sub`. Trust in both comes later, from the chain.
    async fn intermediate(
        &mut self,
        hint: &str,
        sub: &str,
    ) -> Result<(EntityStatement, String), ResolveError> {
        let url = entity_configuration_url(hint);
        let token = self.fetch(&url).await?;
        let ec =
            verify_entity_configuration(&token, self.profile, self.now).map_err(|e| at(hint, e))?;
        if ec.sub != hint {
            return Err(ResolveError::WrongSubject { url, found: ec.sub });
        }
        anchor_trust_mark(&ec, self.anchor, self.profile, self.now).map_err(|e| at(hint, e))?;
        let fetch = endpoint(&ec, "federation_fetch_endpoint")?;
        let es = self.statement(&fetch, sub).await?;
        Ok((ec, es))
    }
}

mod known;
pub use known::{
    anchor_knows, FETCH_CONNECT_TIMEOUT, FETCH_TIMEOUT, MAX_FEDERATION_DOCUMENT_BYTES,
    MAX_LISTED_INTERMEDIATES,
};

#[cfg(test)]
mod tests;
