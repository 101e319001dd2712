use super::*;
use crate::oidc::jose::JoseError;
use crate::oidc::profile::TrustMarkIdClaim;
use crate::oidc::test_keys::{jwks, signing};
use chrono::TimeZone;
use serde_json::json;

const TA: &str = "https://ta.example.it/";
const INT: &str = "https://int.example.it/";
const LEAF: &str = "https://rp.example.it/";
/// The time every test document is issued at.
pub(super) const T0: i64 = 1_700_000_000;
// Test key indices.
pub(super) const K_TA: usize = 3;
pub(super) const K_INT: usize = 4;
pub(super) const K_LEAF: usize = 5;

/// Ten seconds after [`T0`].
pub(super) fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(T0 + 10, 0).single().expect("time")
}

pub(super) fn profile() -> Profile {
    Profile::rules_2023()
}

pub(super) fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

pub(super) fn sign(st: &EntityStatement, key: usize) -> String {
    sign_entity_statement(st, &signing(key), SigAlg::RS256).expect("sign")
}

fn leaf_ec() -> EntityStatement {
    let mut st = EntityStatement::new(LEAF, LEAF, T0, T0 + 3600, jwks(K_LEAF));
    st.authority_hints = Some(vec![INT.into()]);
    st.metadata = Some(Metadata(obj(json!({
        "openid_relying_party": {
            "client_id": LEAF,
            "client_name": "RP",
            "redirect_uris": ["https://rp.example.it/cb"],
            "grant_types": ["authorization_code", "implicit"],
            "token_endpoint_auth_method": "private_key_jwt",
            "contacts": ["ops@rp.example.it"],
        },
        "federation_entity": {"organization_name": "RP"},
    }))));
    st
}

fn int_about_leaf() -> EntityStatement {
    let mut st = EntityStatement::new(INT, LEAF, T0, T0 + 1800, jwks(K_LEAF));
    st.metadata_policy = Some(MetadataPolicy(obj(json!({
        "openid_relying_party": {
            "contacts": {"add": ["int@int.example.it"]},
            "response_types": {"default": ["code"]},
        }
    }))));
    st
}

fn ta_about_int() -> EntityStatement {
    let mut st = EntityStatement::new(TA, INT, T0, T0 + 7200, jwks(K_INT));
    st.metadata_policy = Some(MetadataPolicy(obj(json!({
        "openid_relying_party": {
            "grant_types": {"subset_of": ["authorization_code", "refresh_token"]},
            "token_endpoint_auth_method": {"one_of": ["private_key_jwt"]},
            "contacts": {"add": ["ta@ta.example.it"]},
            "client_name": {"essential": true},
        }
    }))));
    st.constraints = Some(Constraints {
        max_path_length: Some(1),
        ..Default::default()
    });
    st
}

fn ta_ec() -> EntityStatement {
    let mut st = EntityStatement::new(TA, TA, T0, T0 + 86400, jwks(K_TA));
    st.metadata = Some(Metadata(obj(
        json!({"federation_entity": {"organization_name": "TA"}}),
    )));
    st.constraints = Some(Constraints {
        max_path_length: Some(1),
        ..Default::default()
    });
    st
}

fn anchor() -> EntityKeys {
    EntityKeys::new(TA, jwks(K_TA))
}

fn chain_with(
    leaf: EntityStatement,
    int: EntityStatement,
    ta: EntityStatement,
    ta_config: bool,
) -> Vec<String> {
    let mut c = vec![sign(&leaf, K_LEAF), sign(&int, K_INT), sign(&ta, K_TA)];
    if ta_config {
        c.push(sign(&ta_ec(), K_TA));
    }
    c
}

fn full_chain() -> Vec<String> {
    chain_with(leaf_ec(), int_about_leaf(), ta_about_int(), true)
}

fn validate(chain: &[String]) -> Result<ResolvedChain, FederationError> {
    validate_trust_chain(chain, &anchor(), &profile(), now())
}

/// The error at chain element `index`, if that is what `r` holds.
fn link_error(r: Result<ResolvedChain, FederationError>, index: usize) -> Option<FederationError> {
    match r {
        Err(FederationError::Link { index: i, source }) if i == index => Some(*source),
        _ => None,
    }
}

// ---------------------------------------------------------------- single statements

#[test]
fn entity_configuration_round_trip() {
    let token = sign(&leaf_ec(), K_LEAF);
    let (header, _) = jose::decode_unverified(&token).expect("decode");
    assert_eq!(header.typ.as_deref(), Some(ENTITY_STATEMENT_TYP));
    assert_eq!(header.kid.as_deref(), Some(signing(K_LEAF).kid()));
    let st = verify_entity_configuration(&token, &profile(), now()).expect("verify");
    assert_eq!(st, leaf_ec());
    assert_eq!(
        st.metadata
            .as_ref()
            .and_then(|m| m.openid_relying_party())
            .and_then(|m| m.get("client_name")),
        Some(&json!("RP"))
    );
}

#[test]
fn entity_configuration_refusals() {
    // Not self-issued.
    let token = sign(&int_about_leaf(), K_INT);
    assert_eq!(
        verify_entity_configuration(&token, &profile(), now()),
        Err(FederationError::NotSelfSigned {
            iss: INT.into(),
            sub: LEAF.into()
        })
    );
    // Signed with a key that is not in its own jwks.
    let token = sign(&leaf_ec(), K_INT);
    assert_eq!(
        verify_entity_configuration(&token, &profile(), now()),
        Err(FederationError::Jose(JoseError::UnknownKid(
            signing(K_INT).kid().into()
        )))
    );
    // Expired.
    let late = Utc.timestamp_opt(T0 + 4000, 0).single().expect("t");
    assert!(matches!(
        verify_entity_configuration(&sign(&leaf_ec(), K_LEAF), &profile(), late),
        Err(FederationError::Jose(JoseError::Expired { .. }))
    ));
    // Wrong typ.
    let claims = serde_json::to_value(leaf_ec()).expect("claims");
    let token = jose::sign_jws(&claims, &signing(K_LEAF), SigAlg::RS256, Some("JWT")).expect("s");
    assert_eq!(
        verify_entity_configuration(&token, &profile(), now()),
        Err(FederationError::WrongTyp {
            expected: ENTITY_STATEMENT_TYP,
            found: "JWT".into()
        })
    );
    // Claims that are not an entity statement (no jwks).
    let token = jose::sign_jws(
        &json!({"iss": LEAF, "sub": LEAF, "iat": T0, "exp": T0 + 60}),
        &signing(K_LEAF),
        SigAlg::RS256,
        Some(ENTITY_STATEMENT_TYP),
    )
    .expect("s");
    assert!(matches!(
        verify_entity_configuration(&token, &profile(), now()),
        Err(FederationError::Claims(_))
    ));
}

#[test]
fn subordinate_statement_is_verified_with_the_superiors_keys() {
    let token = sign(&int_about_leaf(), K_INT);
    let st = verify_subordinate_statement(&token, &jwks(K_INT), &profile(), now()).expect("ok");
    assert_eq!((st.iss.as_str(), st.sub.as_str()), (INT, LEAF));
    // Not with the subject's own keys.
    assert!(matches!(
        verify_subordinate_statement(&token, &jwks(K_LEAF), &profile(), now()),
        Err(FederationError::Jose(JoseError::UnknownKid(_)))
    ));
    // A configuration is not a subordinate statement.
    assert_eq!(
        verify_subordinate_statement(&sign(&ta_ec(), K_TA), &jwks(K_TA), &profile(), now()),
        Err(FederationError::SelfIssuedStatement(TA.into()))
    );
}

// ---------------------------------------------------------------- trust chain

#[test]
fn three_entity_chain_resolves_with_policy_applied() {
    let resolved = validate(&full_chain()).expect("chain");
    assert_eq!(resolved.subject, LEAF);
    assert_eq!(resolved.trust_anchor, TA);
    assert_eq!(resolved.exp, T0 + 1800, "exp of the chain is the minimum");
    assert_eq!(resolved.statements.len(), 4);
    assert_eq!(resolved.leaf().map(|l| l.sub.as_str()), Some(LEAF));
    let rp = resolved
        .metadata
        .openid_relying_party()
        .cloned()
        .unwrap_or_default();
    assert_eq!(rp["grant_types"], json!(["authorization_code"]));
    assert_eq!(
        rp["contacts"],
        json!([
            "ops@rp.example.it",
            "ta@ta.example.it",
            "int@int.example.it"
        ])
    );
    assert_eq!(rp["response_types"], json!(["code"]));
    assert_eq!(rp["token_endpoint_auth_method"], json!("private_key_jwt"));
    // Entity types without policy pass through.
    assert_eq!(
        resolved
            .metadata
            .federation_entity()
            .and_then(|f| f.get("organization_name")),
        Some(&json!("RP"))
    );
}

#[test]
fn chain_without_the_trust_anchor_configuration_resolves_the_same() {
    let with_ta = validate(&full_chain()).expect("with TA EC");
    let without = validate(&chain_with(
        leaf_ec(),
        int_about_leaf(),
        ta_about_int(),
        false,
    ))
    .expect("without TA EC");
    assert_eq!(with_ta.metadata, without.metadata);
    assert_eq!(with_ta.exp, without.exp);
}

#[test]
fn two_element_chain_directly_under_the_anchor() {
    // RP → TA, as for SPID OPs (no intermediates allowed).
    let mut leaf = leaf_ec();
    leaf.authority_hints = Some(vec![TA.into()]);
    let mut es = ta_about_int();
    es.sub = LEAF.into();
    es.jwks = jwks(K_LEAF);
    let chain = vec![sign(&leaf, K_LEAF), sign(&es, K_TA)];
    let resolved = validate(&chain).expect("chain");
    assert_eq!(resolved.exp, T0 + 3600);
}

#[test]
fn broken_link_is_refused() {
    let mut int = int_about_leaf();
    int.sub = "https://other-rp.example.it/".into();
    assert_eq!(
        validate(&chain_with(leaf_ec(), int, ta_about_int(), true)),
        Err(FederationError::BrokenLink {
            index: 1,
            expected: LEAF.into(),
            found: "https://other-rp.example.it/".into()
        })
    );
    // A statement by someone the next element does not describe.
    let mut ta = ta_about_int();
    ta.sub = "https://unrelated.example.it/".into();
    assert!(matches!(
        validate(&chain_with(leaf_ec(), int_about_leaf(), ta, true)),
        Err(FederationError::BrokenLink { index: 2, .. })
    ));
}

#[test]
fn signatures_must_come_from_the_right_keys() {
    // The intermediate's statement signed by another key under the intermediate's kid.
    let forged = {
        let key = signing(0).with_kid(signing(K_INT).kid());
        sign_entity_statement(&int_about_leaf(), &key, SigAlg::RS256).expect("s")
    };
    let mut chain = full_chain();
    chain[1] = forged;
    assert_eq!(
        link_error(validate(&chain), 1),
        Some(FederationError::Jose(JoseError::BadSignature))
    );
    // The leaf re-keyed itself: its EC is self-consistent but not what the superior vouches.
    let mut leaf = leaf_ec();
    leaf.jwks = jwks(0);
    let mut chain = full_chain();
    chain[0] = sign(&leaf, 0);
    assert_eq!(
        link_error(validate(&chain), 0),
        Some(FederationError::Jose(JoseError::UnknownKid(
            signing(0).kid().into()
        )))
    );
    // The superior vouches for the leaf's keys but the EC is signed by a key it does not publish.
    let mut leaf = leaf_ec();
    leaf.jwks = jwks(0);
    let mut chain = full_chain();
    chain[0] = sign(&leaf, K_LEAF);
    assert_eq!(
        link_error(validate(&chain), 0),
        Some(FederationError::Jose(JoseError::UnknownKid(
            signing(K_LEAF).kid().into()
        )))
    );
}

#[test]
fn anchor_identity_and_keys_are_enforced() {
    let other = EntityKeys::new("https://other-ta.example.it/", jwks(K_TA));
    assert_eq!(
        validate_trust_chain(&full_chain(), &other, &profile(), now()),
        Err(FederationError::UnexpectedAnchor {
            expected: "https://other-ta.example.it/".into(),
            found: TA.into()
        })
    );
    let wrong_keys = EntityKeys::new(TA, jwks(0));
    assert!(matches!(
        link_error(
            validate_trust_chain(&full_chain(), &wrong_keys, &profile(), now()),
            3
        ),
        Some(FederationError::Jose(JoseError::UnknownKid(_)))
    ));
}

#[test]
fn expired_element_invalidates_the_chain() {
    let mut int = int_about_leaf();
    // Past even with the profile's 60 s skew.
    int.iat = T0 - 200;
    int.exp = T0 - 100;
    assert!(matches!(
        link_error(
            validate(&chain_with(leaf_ec(), int, ta_about_int(), true)),
            1
        ),
        Some(FederationError::Jose(JoseError::Expired { .. }))
    ));
}

#[test]
fn leaf_must_name_its_superior() {
    let mut leaf = leaf_ec();
    leaf.authority_hints = Some(vec!["https://someone-else.example.it/".into()]);
    assert_eq!(
        validate(&chain_with(leaf, int_about_leaf(), ta_about_int(), true)),
        Err(FederationError::NotInAuthorityHints(INT.into()))
    );
}

#[test]
fn constraints_are_enforced() {
    let mut ta = ta_about_int();
    ta.constraints = Some(Constraints {
        max_path_length: Some(0),
        ..Default::default()
    });
    assert_eq!(
        validate(&chain_with(leaf_ec(), int_about_leaf(), ta, false)),
        Err(FederationError::PathTooLong { max: 0, actual: 1 })
    );
    let mut ta = ta_about_int();
    ta.constraints = Some(Constraints {
        allowed_leaf_entity_types: Some(vec!["openid_provider".into()]),
        ..Default::default()
    });
    assert_eq!(
        validate(&chain_with(leaf_ec(), int_about_leaf(), ta, true)),
        Err(FederationError::LeafTypeNotAllowed(
            "openid_relying_party".into()
        ))
    );
}

#[test]
fn policy_violation_invalidates_the_chain() {
    let mut leaf = leaf_ec();
    if let Some(Value::Object(rp)) = leaf
        .metadata
        .as_mut()
        .and_then(|m| m.0.get_mut("openid_relying_party"))
    {
        rp.insert(
            "token_endpoint_auth_method".into(),
            json!("client_secret_basic"),
        );
    }
    assert!(matches!(
        validate(&chain_with(leaf, int_about_leaf(), ta_about_int(), true)),
        Err(FederationError::Policy(PolicyError::Violation {
            op: "one_of",
            ..
        }))
    ));
}

#[test]
fn superior_metadata_overrides_the_leaf() {
    let mut int = int_about_leaf();
    int.metadata = Some(Metadata(obj(
        json!({"openid_relying_party": {"client_name": "Vetted"}}),
    )));
    let resolved = validate(&chain_with(leaf_ec(), int, ta_about_int(), true)).expect("chain");
    assert_eq!(
        resolved
            .metadata
            .openid_relying_party()
            .and_then(|m| m.get("client_name")),
        Some(&json!("Vetted"))
    );
}

#[test]
fn malformed_chains_are_refused() {
    assert_eq!(
        validate(&full_chain()[..1]),
        Err(FederationError::ChainTooShort)
    );
    let mut chain = full_chain();
    chain[2] = "not.a.jwt".into();
    assert!(matches!(
        link_error(validate(&chain), 2),
        Some(FederationError::Jose(JoseError::Malformed(_)))
    ));
    // A self-issued statement in the middle.
    let mut chain = full_chain();
    chain.insert(2, sign(&ta_ec(), K_TA));
    assert!(validate(&chain).is_err());
    // A chain that does not start with the leaf's configuration.
    let chain = vec![sign(&int_about_leaf(), K_INT), sign(&ta_about_int(), K_TA)];
    assert!(matches!(
        link_error(validate(&chain), 0),
        Some(FederationError::NotSelfSigned { .. })
    ));
}

// ---------------------------------------------------------------- trust marks

const TM_ID: &str = "https://ta.example.it/openid_relying_party/public/";

fn mark() -> TrustMark {
    TrustMark {
        id: TM_ID.into(),
        iss: TA.into(),
        sub: LEAF.into(),
        iat: T0,
        exp: Some(T0 + 3600),
        other: obj(json!({"organization_type": "public"})),
    }
}

fn tm_issuer() -> EntityKeys {
    EntityKeys::new(TA, jwks(K_TA))
}

fn sign_mark(m: &TrustMark, key: usize, p: &Profile) -> String {
    sign_trust_mark(m, &signing(key), SigAlg::RS256, p).expect("sign")
}

#[test]
fn trust_mark_round_trip() {
    let token = sign_mark(&mark(), K_TA, &profile());
    let (header, claims) = jose::decode_unverified(&token).expect("decode");
    assert_eq!(header.typ.as_deref(), Some(TRUST_MARK_TYP));
    assert_eq!(claims["id"], json!(TM_ID));
    let got = verify_trust_mark(&token, &tm_issuer(), LEAF, &profile(), now()).expect("verify");
    assert_eq!(got, mark());
    // Listed in an EC under the same id.
    let entry = TrustMarkEntry {
        id: Some(TM_ID.into()),
        trust_mark_type: None,
        trust_mark: token,
        other: Map::new(),
    };
    assert!(verify_trust_mark_entry(&entry, &tm_issuer(), LEAF, &profile(), now()).is_ok());
}

#[test]
fn trust_mark_refusals() {
    let p = profile();
    let token = sign_mark(&mark(), K_TA, &p);
    assert_eq!(
        verify_trust_mark(&token, &tm_issuer(), INT, &p, now()),
        Err(FederationError::TrustMarkSubject {
            expected: INT.into(),
            found: LEAF.into()
        })
    );
    assert_eq!(
        verify_trust_mark(&token, &EntityKeys::new(INT, jwks(K_TA)), LEAF, &p, now()),
        Err(FederationError::TrustMarkIssuer {
            expected: INT.into(),
            found: TA.into()
        })
    );
    // Self-made trust mark: signed by the leaf's key.
    let forged = sign_mark(&mark(), K_LEAF, &p);
    assert_eq!(
        verify_trust_mark(&forged, &tm_issuer(), LEAF, &p, now()),
        Err(FederationError::Jose(JoseError::UnknownKid(
            signing(K_LEAF).kid().into()
        )))
    );
    let late = Utc.timestamp_opt(T0 + 4000, 0).single().expect("t");
    assert!(matches!(
        verify_trust_mark(&token, &tm_issuer(), LEAF, &p, late),
        Err(FederationError::Jose(JoseError::Expired { .. }))
    ));
    // Listed under another id than the one inside.
    let entry = TrustMarkEntry {
        id: Some("https://ta.example.it/openid_provider/private/".into()),
        trust_mark_type: None,
        trust_mark: token,
        other: Map::new(),
    };
    assert!(matches!(
        verify_trust_mark_entry(&entry, &tm_issuer(), LEAF, &p, now()),
        Err(FederationError::TrustMarkIdMismatch { .. })
    ));
}

#[test]
fn trust_mark_identifier_claim_follows_the_profile() {
    let spid = profile();
    let mut oidf = profile();
    oidf.trust_mark_id_claim = TrustMarkIdClaim::TrustMarkType;
    let mut either = profile();
    either.trust_mark_id_claim = TrustMarkIdClaim::Either;

    let final_style = sign_mark(&mark(), K_TA, &oidf);
    assert_eq!(
        verify_trust_mark(&final_style, &tm_issuer(), LEAF, &spid, now()),
        Err(FederationError::TrustMarkIdMissing)
    );
    assert!(verify_trust_mark(&final_style, &tm_issuer(), LEAF, &oidf, now()).is_ok());
    assert!(verify_trust_mark(&final_style, &tm_issuer(), LEAF, &either, now()).is_ok());

    // Both names, disagreeing.
    let mut m = mark();
    m.other
        .insert("trust_mark_type".into(), json!("https://elsewhere/"));
    let ambiguous = sign_mark(&m, K_TA, &spid);
    assert!(matches!(
        verify_trust_mark(&ambiguous, &tm_issuer(), LEAF, &either, now()),
        Err(FederationError::TrustMarkIdMismatch { .. })
    ));
}

#[test]
fn trust_mark_exp_is_optional_unless_the_profile_requires_it() {
    // SPID examples carry no exp.
    let mut m = mark();
    m.exp = None;
    let token = sign_mark(&m, K_TA, &profile());
    assert!(verify_trust_mark(&token, &tm_issuer(), LEAF, &profile(), now()).is_ok());
    let mut strict = profile();
    strict.trust_mark_require_exp = true;
    assert_eq!(
        verify_trust_mark(&token, &tm_issuer(), LEAF, &strict, now()),
        Err(FederationError::Jose(JoseError::MissingClaim("exp".into())))
    );
}

#[test]
fn trust_mark_status_json_always_signed_jwt_only_with_the_switch() {
    use crate::oidc::jose::{sign_jws, SigAlg};
    let anchor = EntityKeys::new(TA, jwks(K_TA));
    let strict = Profile::rules_2023();
    let django = Profile::django_sdk();
    for p in [&strict, &django] {
        assert_eq!(
            trust_mark_status_active(r#"{"active": true}"#, &anchor, p),
            Some(true)
        );
        assert_eq!(
            trust_mark_status_active(r#"{"active": false}"#, &anchor, p),
            Some(false)
        );
    }
    let jwt = |status: &str, key: usize| {
        sign_jws(
            &json!({"iss": TA, "sub": LEAF, "iat": T0, "status": status}),
            &signing(key),
            SigAlg::RS256,
            Some("trust-mark-status-response+jwt"),
        )
        .expect("jws")
    };
    assert_eq!(
        trust_mark_status_active(&jwt("active", K_TA), &anchor, &strict),
        None
    );
    assert_eq!(
        trust_mark_status_active(&jwt("active", K_TA), &anchor, &django),
        Some(true)
    );
    assert_eq!(
        trust_mark_status_active(&jwt("revoked", K_TA), &anchor, &django),
        Some(false)
    );
    // Not signed by the anchor: unreadable, never active.
    assert_eq!(
        trust_mark_status_active(&jwt("active", K_LEAF), &anchor, &django),
        None
    );
}
