use super::*;
use crate::oidc::jose::{sign_jws, verify_jws};
use crate::oidc::test_keys::{jwks, signing};
use chrono::TimeZone;
use serde_json::json;

const ISS: &str = "https://op.example.it/";
const CLIENT: &str = "https://rp.example.it/";
const NONCE: &str = "MBzGqyf9QytD28eupyWhSqMj78WNqpc2";
const T0: i64 = 1_700_000_000;
const ACCESS_TOKEN: &str = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(T0 + 10, 0).single().expect("time")
}

fn skew() -> Duration {
    Duration::seconds(30)
}

fn good() -> Value {
    json!({
        "iss": ISS,
        "sub": "pairwise-sub",
        "aud": CLIENT,
        "exp": T0 + 300,
        "iat": T0,
        "nbf": T0,
        "nonce": NONCE,
        "acr": "https://www.spid.gov.it/SpidL2",
        "at_hash": at_hash(ACCESS_TOKEN, SigAlg::RS256),
        "jti": "0e8b5a8f-8f0b-4f7d-9d0e-0f8c1c6b1c11",
    })
}

fn with(mut v: Value, key: &str, val: Value) -> Value {
    v[key] = val;
    v
}

fn without(mut v: Value, key: &str) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove(key);
    }
    v
}

fn check(c: &Value) -> Result<IdToken, IdTokenError> {
    validate_id_token(c, ISS, CLIENT, NONCE, now(), skew())
}

#[test]
fn at_hash_matches_the_oidc_core_example() {
    // OpenID Connect Core 1.0, Appendix A (RS256 ID token with access token).
    assert_eq!(
        at_hash(ACCESS_TOKEN, SigAlg::RS256),
        "77QmUPtjPfzWtF2AnpK9RQ"
    );
    // The code example of the same appendix, same construction (c_hash).
    assert_eq!(
        at_hash(
            "Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk",
            SigAlg::RS256
        ),
        "LDktKdoQak3Pk0cnXxCltA"
    );
}

#[test]
fn at_hash_uses_the_alg_hash_size() {
    // Left half of SHA-512 = 32 bytes = 43 base64url chars; SHA-256 → 22; SHA-384 → 32.
    assert_eq!(at_hash(ACCESS_TOKEN, SigAlg::RS512).len(), 43);
    assert_eq!(at_hash(ACCESS_TOKEN, SigAlg::PS512).len(), 43);
    assert_eq!(at_hash(ACCESS_TOKEN, SigAlg::RS384).len(), 32);
    assert_eq!(
        at_hash(ACCESS_TOKEN, SigAlg::PS256),
        at_hash(ACCESS_TOKEN, SigAlg::RS256)
    );
    assert_ne!(
        at_hash(ACCESS_TOKEN, SigAlg::RS512)[..22],
        at_hash(ACCESS_TOKEN, SigAlg::RS256)
    );
}

#[test]
fn accepts_a_good_id_token_end_to_end() {
    let token = sign_jws(&good(), &signing(0), SigAlg::RS256, Some("JWT")).expect("sign");
    let (header, claims) = verify_jws(&token, &jwks(0), &[SigAlg::RS256]).expect("verify");
    let alg = SigAlg::from_name(&header.alg).expect("alg");
    let idt = check(&claims).expect("valid");
    assert_eq!(idt.sub, "pairwise-sub");
    assert_eq!(idt.aud, vec![CLIENT.to_string()]);
    assert_eq!(idt.acr, SpidLevel::L2);
    assert_eq!(idt.nbf, Some(T0));
    assert!(idt.extra.is_empty());
    assert_eq!(idt.check_at_hash(ACCESS_TOKEN, alg), Ok(()));
    assert_eq!(idt.check_level(SpidLevel::L2), Ok(SpidLevel::L2));
}

#[test]
fn accepts_array_audience_holding_only_the_client() {
    let idt = check(&with(good(), "aud", json!([CLIENT]))).expect("array aud");
    assert_eq!(idt.aud, vec![CLIENT.to_string()]);
}

#[test]
fn refuses_claims_that_are_not_an_object() {
    assert_eq!(check(&json!([1])), Err(IdTokenError::NotAnObject));
}

#[test]
fn refuses_missing_required_claims() {
    for name in [
        "iss", "sub", "aud", "exp", "iat", "nonce", "acr", "nbf", "at_hash", "jti",
    ] {
        assert_eq!(
            check(&without(good(), name)),
            Err(IdTokenError::MissingClaim(name)),
            "{name}"
        );
    }
}

#[test]
fn refuses_claims_of_the_wrong_type() {
    assert_eq!(
        check(&with(good(), "exp", json!("later"))),
        Err(IdTokenError::InvalidClaim("exp"))
    );
    assert_eq!(
        check(&with(good(), "sub", json!(""))),
        Err(IdTokenError::InvalidClaim("sub"))
    );
    assert_eq!(
        check(&with(good(), "aud", json!(7))),
        Err(IdTokenError::InvalidClaim("aud"))
    );
    assert_eq!(
        check(&with(good(), "acr", json!(2))),
        Err(IdTokenError::InvalidClaim("acr"))
    );
}

#[test]
fn refuses_wrong_issuer() {
    assert_eq!(
        check(&with(good(), "iss", json!("https://evil.example/"))),
        Err(IdTokenError::IssuerMismatch {
            expected: ISS.into(),
            found: "https://evil.example/".into()
        })
    );
}

#[test]
fn refuses_wrong_or_extra_audience() {
    assert_eq!(
        check(&with(good(), "aud", json!("https://other-rp.example.it/"))),
        Err(IdTokenError::AudienceMismatch {
            client_id: CLIENT.into()
        })
    );
    let two = with(good(), "aud", json!([CLIENT, "https://other.example/"]));
    assert_eq!(
        check(&two),
        Err(IdTokenError::UntrustedAudience(
            "https://other.example/".into()
        ))
    );
    // The django SDK profile tolerates extra audiences (and a missing nbf / jti).
    let lenient = IdTokenCheck {
        issuer: ISS,
        client_id: CLIENT,
        nonce: NONCE,
        refreshed: false,
        now: now(),
        skew: skew(),
    };
    let c = without(without(two, "nbf"), "jti");
    assert!(validate_id_token_with(&c, &lenient, &Profile::django_sdk()).is_ok());
}

#[test]
fn refuses_expired_future_and_not_yet_valid_tokens() {
    let late = Utc.timestamp_opt(T0 + 400, 0).single().expect("t");
    assert_eq!(
        validate_id_token(&good(), ISS, CLIENT, NONCE, late, skew()),
        Err(IdTokenError::Expired {
            exp: T0 + 300,
            now: T0 + 400
        })
    );
    assert_eq!(
        check(&with(good(), "iat", json!(T0 + 100))),
        Err(IdTokenError::IssuedInFuture {
            iat: T0 + 100,
            now: T0 + 10
        })
    );
    assert_eq!(
        check(&with(good(), "nbf", json!(T0 + 100))),
        Err(IdTokenError::NotYetValid {
            nbf: T0 + 100,
            now: T0 + 10
        })
    );
    // Skew tolerates small drift.
    assert!(check(&with(good(), "iat", json!(T0 + 30))).is_ok());
}

#[test]
fn refuses_wrong_nonce() {
    assert_eq!(
        check(&with(good(), "nonce", json!("x".repeat(32)))),
        Err(IdTokenError::NonceMismatch)
    );
}

#[test]
fn a_refreshed_id_token_may_omit_the_nonce_but_not_change_it() {
    let refreshed = IdTokenCheck {
        issuer: ISS,
        client_id: CLIENT,
        nonce: NONCE,
        refreshed: true,
        now: now(),
        skew: skew(),
    };
    let rules = Profile::rules_2023();
    let t = validate_id_token_with(&without(good(), "nonce"), &refreshed, &rules).expect("ok");
    assert_eq!(t.nonce, None);
    let t = validate_id_token_with(&good(), &refreshed, &rules).expect("ok");
    assert_eq!(t.nonce.as_deref(), Some(NONCE));
    assert_eq!(
        validate_id_token_with(
            &with(good(), "nonce", json!("x".repeat(32))),
            &refreshed,
            &rules
        ),
        Err(IdTokenError::NonceMismatch)
    );
}

#[test]
fn parses_acr_and_enforces_the_minimum_level() {
    assert_eq!(
        check(&with(
            good(),
            "acr",
            json!("https://www.spid.gov.it/SpidL4")
        )),
        Err(IdTokenError::UnknownAcr(
            "https://www.spid.gov.it/SpidL4".into()
        ))
    );
    // The SAML-era URN form is not an OIDC SPID acr.
    let urn = "urn:oasis:names:tc:SAML:2.0:ac:classes:SpidL2";
    assert_eq!(
        check(&with(good(), "acr", json!(urn))),
        Err(IdTokenError::UnknownAcr(urn.into()))
    );
    let l1 = check(&with(good(), "acr", json!(SpidLevel::L1.uri()))).expect("L1 token");
    assert_eq!(
        l1.check_level(SpidLevel::L2),
        Err(IdTokenError::AcrTooLow {
            required: SpidLevel::L2,
            got: SpidLevel::L1
        })
    );
    let l3 = check(&with(good(), "acr", json!(SpidLevel::L3.uri()))).expect("L3 token");
    assert_eq!(l3.check_level(SpidLevel::L2), Ok(SpidLevel::L3));
}

#[test]
fn refuses_at_hash_of_another_token_or_alg() {
    let idt = check(&good()).expect("valid");
    assert_eq!(
        idt.check_at_hash("another-access-token", SigAlg::RS256),
        Err(IdTokenError::AtHashMismatch)
    );
    // The django SDK's bug: SHA-256 at_hash on an RS512 ID token must not pass.
    assert_eq!(
        idt.check_at_hash(ACCESS_TOKEN, SigAlg::RS512),
        Err(IdTokenError::AtHashMismatch)
    );
    let mut none = idt.clone();
    none.at_hash = None;
    assert_eq!(
        none.check_at_hash(ACCESS_TOKEN, SigAlg::RS256),
        Err(IdTokenError::MissingClaim("at_hash"))
    );
}

#[test]
fn keeps_unknown_claims_in_extra() {
    let idt = check(&with(good(), "c_hash", json!("x"))).expect("valid");
    assert_eq!(idt.extra.get("c_hash"), Some(&json!("x")));
}

/// One rule per claim: the honest token less one claim, or with one claim of the wrong
/// type, is refused by exactly that claim's rule.
#[test]
fn each_claim_fault_has_its_own_rule() {
    let cases = [
        ("iss", Rule::OidcIdTokenClaimIss),
        ("sub", Rule::OidcIdTokenClaimSub),
        ("aud", Rule::OidcIdTokenClaimAud),
        ("exp", Rule::OidcIdTokenClaimExp),
        ("iat", Rule::OidcIdTokenClaimIat),
        ("nbf", Rule::OidcIdTokenClaimNbf),
        ("nonce", Rule::OidcIdTokenClaimNonce),
        ("acr", Rule::OidcIdTokenClaimAcr),
        ("at_hash", Rule::OidcIdTokenClaimAtHash),
        ("jti", Rule::OidcIdTokenClaimJti),
    ];
    assert_eq!(check(&good()).map(|_| ()), Ok(()));
    for (name, rule) in cases {
        assert!(TYPED.contains(&name), "{name}");
        let missing = check(&without(good(), name))
            .map(|_| ())
            .map_err(|e| e.rule());
        assert_eq!(missing, Err(rule), "without {name}");
        // `true` is of the wrong type for every typed claim.
        let mistyped = check(&with(good(), name, json!(true)))
            .map(|_| ())
            .map_err(|e| e.rule());
        assert_eq!(mistyped, Err(rule), "{name}: true");
    }
    // The empty string is no issuer either.
    assert_eq!(
        check(&with(good(), "iss", json!(""))).map_err(|e| e.rule()),
        Err(Rule::OidcIdTokenClaimIss)
    );
    // A refreshed ID token may leave nonce out, but not send it mistyped.
    let refreshed = IdTokenCheck {
        issuer: ISS,
        client_id: CLIENT,
        nonce: NONCE,
        refreshed: true,
        now: now(),
        skew: skew(),
    };
    let p = Profile::rules_2023();
    assert!(validate_id_token_with(&without(good(), "nonce"), &refreshed, &p).is_ok());
    assert_eq!(
        validate_id_token_with(&with(good(), "nonce", json!(1)), &refreshed, &p)
            .map_err(|e| e.rule()),
        Err(Rule::OidcIdTokenClaimNonce)
    );
    // at_hash checked against the access token: absent is the claim rule, wrong the value's.
    let idt = check(&good()).expect("good");
    let mut no_hash = idt.clone();
    no_hash.at_hash = None;
    assert_eq!(
        no_hash
            .check_at_hash(ACCESS_TOKEN, SigAlg::RS256)
            .map_err(|e| e.rule()),
        Err(Rule::OidcIdTokenClaimAtHash)
    );
    assert_eq!(
        idt.check_at_hash("other", SigAlg::RS256)
            .map_err(|e| e.rule()),
        Err(Rule::OidcIdTokenAtHash)
    );
}

#[test]
fn a_payload_that_is_no_object_gets_the_signature_rule_as_from_verify_jws() {
    assert_eq!(
        check(&json!([1])).map(|_| ()).map_err(|e| e.rule()),
        Err(Rule::OidcIdTokenSignature)
    );
}

/// The value checks keep their rules.
#[test]
fn value_faults_keep_their_rules() {
    let r = |c: Value| check(&c).map(|_| ()).map_err(|e| e.rule());
    assert_eq!(
        r(with(good(), "iss", json!("https://x.example/"))),
        Err(Rule::OidcIdTokenIss)
    );
    assert_eq!(
        r(with(good(), "aud", json!("https://x.example/"))),
        Err(Rule::OidcIdTokenAud)
    );
    assert_eq!(
        r(with(good(), "exp", json!(T0 - 100))),
        Err(Rule::OidcIdTokenExpired)
    );
    assert_eq!(
        r(with(good(), "iat", json!(T0 + 1000))),
        Err(Rule::OidcIdTokenNotYetValid)
    );
    assert_eq!(
        r(with(good(), "nonce", json!("other"))),
        Err(Rule::OidcIdTokenNonce)
    );
}
