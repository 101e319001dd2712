//! The one-hop trust decision SPID uses between a leaf (OP or RP) and the trust anchor.

use super::TrustMarkEntry;
use super::{validate_trust_chain, verify_entity_configuration, verify_trust_mark_entry};
use super::{EntityKeys, EntityStatement, FederationError, ResolvedChain, TrustMark};
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
    anchor_trust_mark(leaf, anchor, profile, now)?;
    Ok(chain)
}

/// The first of `statement`'s trust marks that validates statically with the anchor's keys.
fn anchor_trust_mark(
    statement: &EntityStatement,
    anchor: &EntityKeys,
    profile: &Profile,
    now: DateTime<Utc>,
) -> Result<TrustMark, FederationError> {
    let marks: &[TrustMarkEntry] = statement.trust_marks.as_deref().unwrap_or(&[]);
    let mut why = FederationError::NoTrustMark;
    for entry in marks {
        match verify_trust_mark_entry(entry, anchor, &statement.sub, profile, now) {
            Ok(m) => return Ok(m),
            Err(e) => why = e,
        }
    }
    Err(why)
}

/// The cheap first step before any further network call (SPID automatic registration,
/// anti-DoS): the entity configuration is self-consistent and carries a trust mark the
/// anchor issued. Returns the configuration and that mark (whose status the caller may then
/// ask the issuer about).
pub fn precheck_entity_configuration(
    entity_configuration: &str,
    anchor: &EntityKeys,
    profile: &Profile,
    now: DateTime<Utc>,
) -> Result<(EntityStatement, TrustMark), FederationError> {
    let ec = verify_entity_configuration(entity_configuration, profile, now)?;
    let mark = anchor_trust_mark(&ec, anchor, profile, now)?;
    Ok((ec, mark))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::federation::{sign_entity_statement, sign_trust_mark};
    use crate::oidc::jose::SigAlg;
    use crate::oidc::test_keys;

    const TA: &str = "https://ta.example";
    const LEAF: &str = "https://rp.example";

    fn mark(sub: &str, key: usize) -> TrustMarkEntry {
        let p = Profile::rules_2023();
        let m = TrustMark {
            id: format!("{TA}/openid_relying_party/public/"),
            iss: TA.into(),
            sub: sub.into(),
            iat: Utc::now().timestamp(),
            exp: None,
            other: Default::default(),
        };
        TrustMarkEntry {
            id: Some(m.id.clone()),
            trust_mark_type: None,
            trust_mark: sign_trust_mark(&m, &test_keys::signing(key), SigAlg::RS256, &p)
                .expect("mark"),
            other: Default::default(),
        }
    }

    fn ec(marks: Vec<TrustMarkEntry>) -> String {
        let now = Utc::now().timestamp();
        let mut st = EntityStatement::new(LEAF, LEAF, now, now + 600, test_keys::jwks(1));
        st.authority_hints = Some(vec![TA.into()]);
        st.trust_marks = Some(marks);
        sign_entity_statement(&st, &test_keys::signing(1), SigAlg::RS256).expect("ec")
    }

    fn statement() -> String {
        let now = Utc::now().timestamp();
        let st = EntityStatement::new(TA, LEAF, now, now + 600, test_keys::jwks(1));
        sign_entity_statement(&st, &test_keys::signing(0), SigAlg::RS256).expect("es")
    }

    #[test]
    fn a_leaf_needs_a_chain_and_a_mark_from_the_anchor() {
        let anchor = EntityKeys::new(TA, test_keys::jwks(0));
        let p = Profile::rules_2023();
        let now = Utc::now();
        let good = ec(vec![mark(LEAF, 0)]);
        assert!(precheck_entity_configuration(&good, &anchor, &p, now).is_ok());
        let chain = resolve_leaf(&good, &statement(), &anchor, &p, now).expect("trusted");
        assert_eq!(chain.subject, LEAF);

        let none = ec(vec![]);
        assert_eq!(
            precheck_entity_configuration(&none, &anchor, &p, now).map(|_| ()),
            Err(FederationError::NoTrustMark)
        );
        assert_eq!(
            resolve_leaf(&none, &statement(), &anchor, &p, now).map(|_| ()),
            Err(FederationError::NoTrustMark)
        );
        // A mark signed by someone else, or about another entity.
        let forged = ec(vec![mark(LEAF, 2)]);
        assert!(precheck_entity_configuration(&forged, &anchor, &p, now).is_err());
        let other = ec(vec![mark("https://other.example", 0)]);
        assert!(matches!(
            precheck_entity_configuration(&other, &anchor, &p, now),
            Err(FederationError::TrustMarkSubject { .. })
        ));
    }
}
