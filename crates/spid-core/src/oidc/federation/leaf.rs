//! The trust-mark checks SPID puts before any chain: every entity but the trust anchor must
//! carry a mark the anchor issued.

use super::{verify_entity_configuration, verify_trust_mark_entry};
use super::{EntityKeys, EntityStatement, FederationError, TrustMark, TrustMarkEntry};
use crate::oidc::profile::Profile;
use chrono::{DateTime, Utc};

/// The first of `statement`'s trust marks that validates statically with the anchor's keys.
pub(super) fn anchor_trust_mark(
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
            iat: crate::clock::now().timestamp(),
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
        let now = crate::clock::now().timestamp();
        let mut st = EntityStatement::new(LEAF, LEAF, now, now + 600, test_keys::jwks(1));
        st.authority_hints = Some(vec![TA.into()]);
        st.trust_marks = Some(marks);
        sign_entity_statement(&st, &test_keys::signing(1), SigAlg::RS256).expect("ec")
    }

    #[test]
    fn an_entity_needs_a_mark_from_the_anchor() {
        let anchor = EntityKeys::new(TA, test_keys::jwks(0));
        let p = Profile::rules_2023();
        let now = crate::clock::now();
        let good = ec(vec![mark(LEAF, 0)]);
        let (st, tm) = precheck_entity_configuration(&good, &anchor, &p, now).expect("marked");
        assert_eq!((st.sub.as_str(), tm.iss.as_str()), (LEAF, TA));

        let none = ec(vec![]);
        assert_eq!(
            precheck_entity_configuration(&none, &anchor, &p, now).map(|_| ()),
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
