//! The one-hop trust decision SPID uses between a leaf (OP or RP) and the trust anchor.

use super::{validate_trust_chain, verify_trust_mark_entry, EntityKeys, FederationError};
use super::{ResolvedChain, TrustMarkEntry};
use crate::oidc::profile::Profile;
use chrono::{DateTime, Utc};

/// Validates `[leaf entity configuration, trust anchor's statement about the leaf]` with the
/// anchor's out-of-band keys ([`validate_trust_chain`]), then requires at least one of the
/// leaf's trust marks to validate statically with the same keys (the trust anchor is the
/// trust mark issuer here). SPID makes trust marks mandatory for leaves, so a chain alone is
/// not enough.
pub fn resolve_leaf(
    entity_configuration: &str,
    anchor_statement: &str,
    anchor: &EntityKeys,
    profile: &Profile,
    now: DateTime<Utc>,
) -> Result<ResolvedChain, FederationError> {
    let chain = validate_trust_chain(
        &[entity_configuration, anchor_statement],
        anchor,
        profile,
        now,
    )?;
    let leaf = chain.leaf().ok_or(FederationError::ChainTooShort)?;
    let marks: &[TrustMarkEntry] = leaf.trust_marks.as_deref().unwrap_or(&[]);
    let mut why = FederationError::NoTrustMark;
    for entry in marks {
        match verify_trust_mark_entry(entry, anchor, &leaf.sub, profile, now) {
            Ok(_) => return Ok(chain),
            Err(e) => why = e,
        }
    }
    Err(why)
}
