//! OpenID Federation as SPID uses it: entity configurations (self-signed) and subordinate
//! entity statements, trust-chain validation with metadata policy, and trust marks.
//!
//! Validation is offline: callers hand the JWTs in. Discovery ([`resolve_trust_chain`]) walks
//! `authority_hints` over a [`FederationFetcher`] the caller implements with its HTTP client.

mod chain;
mod leaf;
mod leaf_config;
pub mod policy;
mod resolve;
mod trust_mark;

pub use chain::{validate_trust_chain, ResolvedChain};
pub use leaf::precheck_entity_configuration;
pub use leaf_config::{
    leaf_entity_configuration, leaf_entity_configuration_claims, trust_marks_from_file,
    LeafConfiguration, Membership,
};
pub use policy::{MetadataPolicy, PolicyError};
pub use resolve::{
    anchor_knows, entity_configuration_url, resolve_trust_chain, Attempt, FederationFetcher,
    Intermediates, ResolveError, FETCH_CONNECT_TIMEOUT, FETCH_TIMEOUT,
    MAX_FEDERATION_DOCUMENT_BYTES, MAX_HINTS_PER_LEVEL, MAX_INTERMEDIATES,
    MAX_LISTED_INTERMEDIATES, MAX_WALK_FETCHES,
};
pub use trust_mark::{
    sign_trust_mark, trust_mark_status_active, verify_trust_mark, verify_trust_mark_entry,
    TrustMark,
};

use super::jose::{self, JoseError, Jwks, SigAlg, SigningKey};
use super::profile::Profile;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// JOSE `typ` of entity configurations and entity statements.
pub const ENTITY_STATEMENT_TYP: &str = "entity-statement+jwt";
/// JOSE `typ` of trust marks (AgID sample).
pub const TRUST_MARK_TYP: &str = "trust-mark+jwt";
/// HTTP Content-Type of an entity configuration / statement.
pub const ENTITY_STATEMENT_CONTENT_TYPE: &str = "application/entity-statement+jwt";

/// Entity metadata: entity type (`openid_provider`, `openid_relying_party`,
/// `federation_entity`, …) → that type's parameters. Kept as JSON because the metadata
/// policy operates on JSON values.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Metadata(pub Map<String, Value>);

impl Metadata {
    /// The parameters of one entity type, if present and an object.
    pub fn get(&self, entity_type: &str) -> Option<&Map<String, Value>> {
        self.0.get(entity_type).and_then(Value::as_object)
    }

    /// `openid_provider` metadata.
    pub fn openid_provider(&self) -> Option<&Map<String, Value>> {
        self.get("openid_provider")
    }

    /// `openid_relying_party` metadata.
    pub fn openid_relying_party(&self) -> Option<&Map<String, Value>> {
        self.get("openid_relying_party")
    }

    /// `federation_entity` metadata.
    pub fn federation_entity(&self) -> Option<&Map<String, Value>> {
        self.get("federation_entity")
    }

    /// The entity types present.
    pub fn entity_types(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// One entry of an entity configuration's `trust_marks` array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustMarkEntry {
    /// Trust mark identifier (SPID name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Trust mark identifier (final OpenID Federation name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_mark_type: Option<String>,
    /// The signed trust mark JWT.
    pub trust_mark: String,
    /// Every other member (e.g. `iss`).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `constraints` of an entity statement.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Constraints {
    /// Maximum number of intermediates between the constraining entity and the leaf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_path_length: Option<u64>,
    /// Entity types a leaf below may have (`federation_entity` is always allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_leaf_entity_types: Option<Vec<String>>,
    /// Every other member (e.g. `naming_constraints`, which SPID ignores).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The claims of an entity configuration (`iss` = `sub`) or of a subordinate statement
/// (`iss` = superior, `sub` = subordinate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityStatement {
    /// Issuer entity id.
    pub iss: String,
    /// Subject entity id.
    pub sub: String,
    /// Issued at, seconds.
    pub iat: i64,
    /// Expiry, seconds.
    pub exp: i64,
    /// Federation keys of the subject.
    pub jwks: Jwks,
    /// Superiors of the subject (entity configurations of leaves and intermediates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_hints: Option<Vec<String>>,
    /// Metadata (about itself in a configuration; asserted by the superior in a statement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Policy a superior applies to its subordinate's metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_policy: Option<MetadataPolicy>,
    /// Policy operators that must be understood.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_policy_crit: Option<Vec<String>>,
    /// Trust marks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_marks: Option<Vec<TrustMarkEntry>>,
    /// Trust mark id → accepted issuers (trust anchor configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_mark_issuers: Option<Map<String, Value>>,
    /// Constraints on the chain below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Constraints>,
    /// Every other claim.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl EntityStatement {
    /// A minimal statement; fill the optional claims with struct update or field access.
    pub fn new(iss: &str, sub: &str, iat: i64, exp: i64, jwks: Jwks) -> EntityStatement {
        EntityStatement {
            iss: iss.into(),
            sub: sub.into(),
            iat,
            exp,
            jwks,
            authority_hints: None,
            metadata: None,
            metadata_policy: None,
            metadata_policy_crit: None,
            trust_marks: None,
            trust_mark_issuers: None,
            constraints: None,
            other: Map::new(),
        }
    }

    /// True for an entity configuration (`iss` = `sub`).
    pub fn is_self_signed(&self) -> bool {
        self.iss == self.sub
    }

    /// Reads claims into a statement.
    pub fn from_claims(claims: &Value) -> Result<EntityStatement, FederationError> {
        serde_json::from_value(claims.clone()).map_err(|e| FederationError::Claims(e.to_string()))
    }
}

/// An entity id with the keys the caller already trusts for it (a trust anchor's JWKS
/// obtained out of band, a trust mark issuer's federation keys).
#[derive(Debug, Clone, PartialEq)]
pub struct EntityKeys {
    /// The entity id.
    pub entity_id: String,
    /// Its trusted keys.
    pub jwks: Jwks,
}

impl EntityKeys {
    /// Pairs an entity id with its keys.
    pub fn new(entity_id: impl Into<String>, jwks: Jwks) -> EntityKeys {
        EntityKeys {
            entity_id: entity_id.into(),
            jwks,
        }
    }
}

/// Why a federation object or trust chain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FederationError {
    /// A JOSE refusal (signature, algorithm, kid, time, structure).
    #[error(transparent)]
    Jose(#[from] JoseError),
    /// The payload does not have the shape of an entity statement / trust mark.
    #[error("bad claims: {0}")]
    Claims(String),
    /// The JOSE `typ` is not the expected one.
    #[error("typ {found:?}, expected {expected:?}")]
    WrongTyp {
        /// The expected `typ`.
        expected: &'static str,
        /// The header's `typ`.
        found: String,
    },
    /// An entity configuration whose `iss` differs from its `sub`.
    #[error("entity configuration not self-issued (iss {iss:?}, sub {sub:?})")]
    NotSelfSigned {
        /// Its `iss`.
        iss: String,
        /// Its `sub`.
        sub: String,
    },
    /// A subordinate statement where a configuration is not expected (`iss` = `sub`).
    #[error("statement about itself where a superior's statement was expected: {0:?}")]
    SelfIssuedStatement(String),
    /// A chain needs at least the leaf configuration and one superior statement.
    #[error("trust chain too short")]
    ChainTooShort,
    /// `iss` of element `index - 1` is not the `sub` of element `index`.
    #[error("broken link at {index}: expected sub {expected:?}, found {found:?}")]
    BrokenLink {
        /// Index of the element whose `sub` is wrong.
        index: usize,
        /// The `iss` of the element below it.
        expected: String,
        /// Its actual `sub`.
        found: String,
    },
    /// Element `index` of the chain failed.
    #[error("trust chain element {index}: {source}")]
    Link {
        /// Index in the chain (0 = leaf configuration).
        index: usize,
        /// What failed.
        #[source]
        source: Box<FederationError>,
    },
    /// The chain does not end at the expected trust anchor.
    #[error("chain ends at {found:?}, not at trust anchor {expected:?}")]
    UnexpectedAnchor {
        /// The trust anchor entity id.
        expected: String,
        /// The top issuer of the chain.
        found: String,
    },
    /// The leaf does not name its superior in `authority_hints`.
    #[error("superior {0:?} not in the leaf's authority_hints")]
    NotInAuthorityHints(String),
    /// More intermediates than a `max_path_length` constraint allows.
    #[error("path length {actual} exceeds max_path_length {max}")]
    PathTooLong {
        /// The constraint.
        max: u64,
        /// Intermediates found.
        actual: u64,
    },
    /// The leaf has an entity type a superior's `allowed_leaf_entity_types` excludes.
    #[error("leaf entity type {0:?} not allowed")]
    LeafTypeNotAllowed(String),
    /// The metadata policy could not be merged or the metadata breaks it.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A trust mark's `sub` is not the entity it was presented for.
    #[error("trust mark sub {found:?}, expected {expected:?}")]
    TrustMarkSubject {
        /// The expected subject.
        expected: String,
        /// The trust mark's `sub`.
        found: String,
    },
    /// A trust mark's `iss` is not the issuer whose keys were given.
    #[error("trust mark iss {found:?}, expected {expected:?}")]
    TrustMarkIssuer {
        /// The expected issuer.
        expected: String,
        /// The trust mark's `iss`.
        found: String,
    },
    /// A trust mark has no identifier (`id` / `trust_mark_type` as the profile says).
    #[error("trust mark has no identifier")]
    TrustMarkIdMissing,
    /// The entity configuration carries no trust mark that validates with the trust anchor's
    /// keys (SPID: trust marks are mandatory for every entity except the trust anchor).
    #[error("no valid trust mark from the trust anchor")]
    NoTrustMark,
    /// The trust mark identifier differs from the one it was listed under.
    #[error("trust mark id {found:?}, expected {expected:?}")]
    TrustMarkIdMismatch {
        /// The expected identifier.
        expected: String,
        /// The trust mark's identifier.
        found: String,
    },
}

impl FederationError {
    /// Wraps an error as belonging to chain element `index`.
    fn at(self, index: usize) -> FederationError {
        FederationError::Link {
            index,
            source: Box::new(self),
        }
    }
}

/// Signs an entity configuration or statement (`typ: entity-statement+jwt`).
pub fn sign_entity_statement(
    statement: &EntityStatement,
    key: &SigningKey,
    alg: SigAlg,
) -> Result<String, FederationError> {
    let claims =
        serde_json::to_value(statement).map_err(|e| FederationError::Claims(e.to_string()))?;
    Ok(jose::sign_jws(
        &claims,
        key,
        alg,
        Some(ENTITY_STATEMENT_TYP),
    )?)
}

/// Checks a `typ`: absent is tolerated (older implementations), another value is refused.
fn check_typ(header: &jose::JwsHeader, expected: &'static str) -> Result<(), FederationError> {
    match &header.typ {
        Some(t) if !header.typ_is(expected) => Err(FederationError::WrongTyp {
            expected,
            found: t.clone(),
        }),
        _ => Ok(()),
    }
}

/// Verifies a statement's signature with `jwks`, its `typ` and its time claims, then types it.
fn verify_statement(
    token: &str,
    jwks: &Jwks,
    profile: &Profile,
    now: DateTime<Utc>,
) -> Result<EntityStatement, FederationError> {
    let (header, claims) = jose::verify_jws(token, jwks, &profile.signing_algs)?;
    check_typ(&header, ENTITY_STATEMENT_TYP)?;
    jose::check_time_claims(&claims, now, profile.skew(), true)?;
    EntityStatement::from_claims(&claims)
}

/// Reads a statement without verifying it (to learn its `jwks` / `authority_hints` before
/// trust exists). Never act on the result otherwise.
pub fn decode_entity_statement_unverified(token: &str) -> Result<EntityStatement, FederationError> {
    let (_, claims) = jose::decode_unverified(token)?;
    EntityStatement::from_claims(&claims)
}

/// Verifies a self-signed entity configuration with its own `jwks`: `iss` = `sub`,
/// signature, `typ`, `iat`/`exp`. This proves only self-consistency; trust comes from a chain.
pub fn verify_entity_configuration(
    token: &str,
    profile: &Profile,
    now: DateTime<Utc>,
) -> Result<EntityStatement, FederationError> {
    let unverified = decode_entity_statement_unverified(token)?;
    if !unverified.is_self_signed() {
        return Err(FederationError::NotSelfSigned {
            iss: unverified.iss,
            sub: unverified.sub,
        });
    }
    verify_statement(token, &unverified.jwks, profile, now)
}

/// Verifies a statement issued by a superior about a subordinate with the superior's
/// `jwks`: signature, `typ`, `iat`/`exp`, and `iss` ≠ `sub`.
pub fn verify_subordinate_statement(
    token: &str,
    superior_jwks: &Jwks,
    profile: &Profile,
    now: DateTime<Utc>,
) -> Result<EntityStatement, FederationError> {
    let statement = verify_statement(token, superior_jwks, profile, now)?;
    if statement.is_self_signed() {
        return Err(FederationError::SelfIssuedStatement(statement.iss));
    }
    Ok(statement)
}

#[cfg(test)]
mod tests;
