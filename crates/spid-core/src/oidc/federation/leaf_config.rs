//! The entity configuration a leaf (our OP or our RP) publishes about itself: one builder, so
//! both roles publish the same federation shape.

use super::{
    sign_entity_statement, EntityKeys, EntityStatement, FederationError, Metadata, TrustMarkEntry,
};
use crate::oidc::jose::{Jwks, SigAlg, SigningKey};
use serde_json::{json, Map, Value};
use std::sync::RwLock;

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

/// How a leaf (our OP or our RP) has joined a federation: the trust anchor it trusts, the
/// trust mark it publishes and its direct superior. Shared by the leaf's handlers, so it can
/// join after its servers are built.
#[derive(Debug, Default)]
pub struct Membership(RwLock<Option<Joined>>);

#[derive(Debug, Clone)]
struct Joined {
    anchor: EntityKeys,
    mark: Option<TrustMarkEntry>,
    superior: Option<String>,
}

impl Membership {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Option<Joined>> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> Option<Joined> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Joins (again) directly under `anchor`. `mark` is the trust mark it issued; None when
    /// the marks come from a file (an anchor run by someone else onboards the leaf later).
    pub fn join(&self, anchor: EntityKeys, mark: Option<TrustMarkEntry>) {
        *self.write() = Some(Joined {
            anchor,
            mark,
            superior: None,
        });
    }

    /// Once joined, names `superior` (an intermediate) instead of the anchor in
    /// `authority_hints`; the trust mark stays the anchor's.
    pub fn set_superior(&self, superior: &str) {
        if let Some(j) = self.write().as_mut() {
            j.superior = Some(superior.to_string());
        }
    }

    /// The trust anchor, once joined.
    pub fn anchor(&self) -> Option<EntityKeys> {
        self.read().map(|j| j.anchor)
    }

    /// What the entity configuration publishes: the `authority_hints` entry (the superior,
    /// else the anchor) and the trust marks (`from_file()` when it has any, else the mark);
    /// nothing before joining.
    pub fn published(
        &self,
        from_file: impl FnOnce() -> Option<Vec<TrustMarkEntry>>,
    ) -> (Option<String>, Option<Vec<TrustMarkEntry>>) {
        let Some(j) = self.read() else {
            return (None, None);
        };
        let marks = from_file().or_else(|| j.mark.map(|m| vec![m]));
        (Some(j.superior.unwrap_or(j.anchor.entity_id)), marks)
    }
}

/// Builds and signs the entity configuration.
pub fn leaf_entity_configuration(
    c: LeafConfiguration<'_>,
    key: &SigningKey,
    alg: SigAlg,
) -> Result<String, FederationError> {
    sign_entity_statement(&leaf_statement(c), key, alg)
}

/// The claims [`leaf_entity_configuration`] signs, for callers that edit them first.
pub fn leaf_entity_configuration_claims(
    c: LeafConfiguration<'_>,
) -> Result<Value, FederationError> {
    serde_json::to_value(leaf_statement(c)).map_err(|e| FederationError::Claims(e.to_string()))
}

fn leaf_statement(c: LeafConfiguration<'_>) -> EntityStatement {
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
    st
}

/// Reads the trust marks a file holds (a JSON array, as a trust anchor hands them out);
/// None when the file is absent or unreadable.
pub fn trust_marks_from_file(path: Option<&std::path::Path>) -> Option<Vec<TrustMarkEntry>> {
    let text = std::fs::read_to_string(path?).ok()?;
    serde_json::from_str(&text).ok()
}
