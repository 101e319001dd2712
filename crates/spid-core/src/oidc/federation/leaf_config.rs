//! The entity configuration a leaf (our OP or our RP) publishes about itself: one builder, so
//! both roles publish the same federation shape.

use super::{sign_entity_statement, EntityStatement, FederationError, Metadata, TrustMarkEntry};
use crate::oidc::jose::{Jwks, SigAlg, SigningKey};
use serde_json::{json, Map, Value};

/// What a leaf says about itself.
pub struct LeafConfiguration<'a> {
    /// entity_id (iss = sub).
    pub entity_id: &'a str,
    /// iat (seconds).
    pub now: i64,
    /// Lifetime in seconds.
    pub ttl: i64,
    /// Federation keys.
    pub jwks: Jwks,
    /// Metadata type: `openid_provider` or `openid_relying_party`.
    pub role: &'a str,
    /// The role's metadata.
    pub role_metadata: Value,
    /// `federation_entity.organization_name`.
    pub organization_name: &'a str,
    /// `federation_entity.federation_resolve_endpoint`.
    pub resolve_endpoint: String,
    /// The trust anchor, when the leaf has joined one.
    pub authority_hint: Option<String>,
    /// Trust marks to publish.
    pub trust_marks: Option<Vec<TrustMarkEntry>>,
}

/// Builds and signs the entity configuration.
pub fn leaf_entity_configuration(
    c: LeafConfiguration<'_>,
    key: &SigningKey,
    alg: SigAlg,
) -> Result<String, FederationError> {
    let mut st = EntityStatement::new(c.entity_id, c.entity_id, c.now, c.now + c.ttl, c.jwks);
    let mut md = Map::new();
    md.insert(c.role.into(), c.role_metadata);
    md.insert(
        "federation_entity".into(),
        json!({
            "organization_name": c.organization_name,
            "homepage_uri": format!("{}/", c.entity_id),
            "policy_uri": format!("{}/", c.entity_id),
            "logo_uri": format!("{}/logo.svg", c.entity_id),
            "contacts": ["tech@example.org"],
            "federation_resolve_endpoint": c.resolve_endpoint,
        }),
    );
    st.metadata = Some(Metadata(md));
    if let Some(anchor) = c.authority_hint {
        st.authority_hints = Some(vec![anchor]);
        st.trust_marks = c.trust_marks;
    }
    sign_entity_statement(&st, key, alg)
}

/// Reads the trust marks a file holds (a JSON array, as a trust anchor hands them out);
/// None when the file is absent or unreadable.
pub fn trust_marks_from_file(path: Option<&std::path::Path>) -> Option<Vec<TrustMarkEntry>> {
    let text = std::fs::read_to_string(path?).ok()?;
    serde_json::from_str(&text).ok()
}
