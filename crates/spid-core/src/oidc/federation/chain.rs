//! Trust-chain validation: `[leaf EC, ES(superior → leaf), …, ES(TA → its subordinate),
//! (TA EC)]`, anchored in trust anchor keys obtained out of band.

use super::policy::{resolve_metadata, MetadataPolicy};
use super::{
    decode_entity_statement_unverified, verify_statement, EntityKeys, EntityStatement,
    FederationError, Metadata,
};
use crate::oidc::profile::Profile;
use chrono::{DateTime, Utc};

/// A validated trust chain and the leaf metadata after policy.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedChain {
    /// The leaf entity id.
    pub subject: String,
    /// The trust anchor entity id.
    pub trust_anchor: String,
    /// When the chain stops being valid: the smallest `exp` in it.
    pub exp: i64,
    /// The leaf metadata with the superior's `metadata` overrides and the merged
    /// `metadata_policy` applied.
    pub metadata: Metadata,
    /// Every element, verified and decoded, in chain order (index 0 = leaf configuration).
    pub statements: Vec<EntityStatement>,
}

impl ResolvedChain {
    /// The leaf's entity configuration.
    pub fn leaf(&self) -> Option<&EntityStatement> {
        self.statements.first()
    }
}

/// Validates a trust chain and resolves the leaf metadata.
///
/// `chain[0]` is the leaf's entity configuration; `chain[i]` (i ≥ 1) is the statement about
/// `chain[i-1]`'s issuer by its superior; the last element is either the trust anchor's own
/// configuration or the trust anchor's statement about its subordinate. Checks, each failure
/// reported with the element index:
/// - linkage: `chain[i-1].iss == chain[i].sub`; only the leaf (and the optional final TA
///   configuration) may be self-issued; the top issuer is `anchor.entity_id`;
/// - signatures: the leaf with its own `jwks` *and* with the keys its superior vouches for
///   (`chain[1].jwks`); each `chain[i]` with `chain[i+1].jwks`; the last element with the
///   anchor's out-of-band keys; every `typ`, `iat` and `exp`;
/// - the leaf lists its superior in `authority_hints`;
/// - `constraints.max_path_length` and `allowed_leaf_entity_types` of every superior;
/// - metadata: `chain[1].metadata` overrides the leaf's, then the policies from the trust anchor
///   down are merged and applied ([`super::policy`]).
pub fn validate_trust_chain<S: AsRef<str>>(
    chain: &[S],
    anchor: &EntityKeys,
    profile: &Profile,
    now: DateTime<Utc>,
) -> Result<ResolvedChain, FederationError> {
    if chain.len() < 2 {
        return Err(FederationError::ChainTooShort);
    }
    let last = chain.len() - 1;

    // Decode first: linkage decides which keys verify which element.
    let decoded = chain
        .iter()
        .enumerate()
        .map(|(i, t)| decode_entity_statement_unverified(t.as_ref()).map_err(|e| e.at(i)))
        .collect::<Result<Vec<_>, _>>()?;
    check_linkage(&decoded, anchor)?;

    // Verify top-down so every key set used is already trusted.
    let mut statements: Vec<EntityStatement> = Vec::with_capacity(chain.len());
    let mut trusted = anchor.jwks.clone();
    for i in (0..=last).rev() {
        let token = chain[i].as_ref();
        let verified = verify_statement(token, &trusted, profile, now).map_err(|e| e.at(i))?;
        trusted = verified.jwks.clone();
        statements.push(verified);
    }
    statements.reverse();
    // The leaf must also be signed by the keys it publishes itself (it is an EC).
    let leaf_token = chain[0].as_ref();
    verify_statement(leaf_token, &statements[0].jwks, profile, now).map_err(|e| e.at(0))?;

    let leaf = &statements[0];
    let superior = &statements[1].iss;
    if !leaf
        .authority_hints
        .as_ref()
        .is_some_and(|h| h.iter().any(|a| a == superior))
    {
        return Err(FederationError::NotInAuthorityHints(superior.clone()));
    }
    check_constraints(&statements)?;

    let exp = statements.iter().map(|s| s.exp).min().unwrap_or(leaf.exp);
    let metadata = resolve(&statements, profile)?;
    Ok(ResolvedChain {
        subject: leaf.sub.clone(),
        trust_anchor: anchor.entity_id.clone(),
        exp,
        metadata,
        statements,
    })
}

/// True when the last element is the trust anchor's own configuration.
fn ends_with_ta_config(s: &[EntityStatement]) -> bool {
    s.len() > 2 && s.last().is_some_and(EntityStatement::is_self_signed)
}

fn check_linkage(s: &[EntityStatement], anchor: &EntityKeys) -> Result<(), FederationError> {
    let last = s.len() - 1;
    let leaf = &s[0];
    if !leaf.is_self_signed() {
        return Err(FederationError::NotSelfSigned {
            iss: leaf.iss.clone(),
            sub: leaf.sub.clone(),
        }
        .at(0));
    }
    let ta_config = ends_with_ta_config(s);
    for i in 1..=last {
        if s[i - 1].iss != s[i].sub {
            return Err(FederationError::BrokenLink {
                index: i,
                expected: s[i - 1].iss.clone(),
                found: s[i].sub.clone(),
            });
        }
        let may_be_self_issued = i == last && ta_config;
        if s[i].is_self_signed() && !may_be_self_issued {
            return Err(FederationError::SelfIssuedStatement(s[i].iss.clone()).at(i));
        }
    }
    if s[last].iss != anchor.entity_id {
        return Err(FederationError::UnexpectedAnchor {
            expected: anchor.entity_id.clone(),
            found: s[last].iss.clone(),
        });
    }
    Ok(())
}

fn check_constraints(s: &[EntityStatement]) -> Result<(), FederationError> {
    let last = s.len() - 1;
    let ta_config = ends_with_ta_config(s);
    let leaf_types: Vec<&str> = s[0]
        .metadata
        .as_ref()
        .map(|m| m.entity_types().collect())
        .unwrap_or_default();
    for (i, st) in s.iter().enumerate().skip(1) {
        let Some(c) = &st.constraints else { continue };
        // Intermediates between this element's issuer and the leaf. The TA's own
        // configuration constrains from the TA, like the TA's statement just below it.
        let between = if i == last && ta_config {
            i.saturating_sub(2)
        } else {
            i - 1
        } as u64;
        if let Some(max) = c.max_path_length {
            if between > max {
                return Err(FederationError::PathTooLong {
                    max,
                    actual: between,
                });
            }
        }
        if let Some(allowed) = &c.allowed_leaf_entity_types {
            if let Some(t) = leaf_types
                .iter()
                .find(|t| **t != "federation_entity" && !allowed.iter().any(|a| a == *t))
            {
                return Err(FederationError::LeafTypeNotAllowed(t.to_string()));
            }
        }
    }
    Ok(())
}

fn resolve(s: &[EntityStatement], profile: &Profile) -> Result<Metadata, FederationError> {
    let mut metadata = s[0].metadata.clone().unwrap_or_default();
    // The immediate superior's `metadata` claim overrides the leaf's own values.
    if let Some(over) = &s[1].metadata {
        for (entity_type, params) in &over.0 {
            let (Some(params), Some(target)) = (
                params.as_object(),
                metadata
                    .0
                    .entry(entity_type.clone())
                    .or_insert_with(|| serde_json::Value::Object(Default::default()))
                    .as_object_mut(),
            ) else {
                continue;
            };
            for (k, v) in params {
                target.insert(k.clone(), v.clone());
            }
        }
    }
    // Policies from the trust anchor downwards; a final TA configuration carries none.
    let policies: Vec<&MetadataPolicy> = s[1..]
        .iter()
        .rev()
        .filter(|st| !st.is_self_signed())
        .filter_map(|st| st.metadata_policy.as_ref())
        .collect();
    let crit: Vec<String> = s[1..]
        .iter()
        .filter_map(|st| st.metadata_policy_crit.clone())
        .flatten()
        .collect();
    Ok(resolve_metadata(
        &metadata,
        &policies,
        &crit,
        profile.policy,
    )?)
}
