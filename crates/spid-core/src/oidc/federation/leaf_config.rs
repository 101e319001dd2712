//! The entity configuration a leaf (our OP or our RP) publishes about itself: one builder, so
//! both roles publish the same federation shape.

use super::{
    sign_entity_statement, EntityKeys, EntityStatement, FederationError, Metadata, TrustMarkEntry,
};
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

/// How a leaf (our OP or our RP) has joined a federation.
#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    /// The trust anchor, trusted for the peers' chains.
    pub anchor: EntityKeys,
    /// The trust mark the anchor issued to the leaf; None when the marks come from a file (an
    /// anchor run by someone else onboards the leaf later).
    pub mark: Option<TrustMarkEntry>,
    /// The leaf's direct superior when it is not the anchor (an intermediate).
    pub superior: Option<String>,
}

impl Membership {
    /// Directly under `anchor`, publishing `mark`.
    pub fn new(anchor: EntityKeys, mark: Option<TrustMarkEntry>) -> Membership {
        Membership {
            anchor,
            mark,
            superior: None,
        }
    }

    /// What the entity configuration publishes: the `authority_hints` entry (the superior,
    /// else the anchor) and the trust marks (`from_file` when there are any, else the mark).
    pub fn published(
        &self,
        from_file: Option<Vec<TrustMarkEntry>>,
    ) -> (String, Option<Vec<TrustMarkEntry>>) {
        let hint = self
            .superior
            .clone()
            .unwrap_or_else(|| self.anchor.entity_id.clone());
        (
            hint,
            from_file.or_else(|| self.mark.clone().map(|m| vec![m])),
        )
    }
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
