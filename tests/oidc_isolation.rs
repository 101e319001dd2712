//! Isolation for the OIDC RP side: every case proves what it names.
//!
//! Each case of the `oidc` catalogue runs at our federation; every signed message our OP sent
//! for it (ID tokens, the signed JWS inside each userinfo JWE, refreshed ID tokens, entity
//! configurations and the trust marks they carry) is then checked with an **independent JOSE
//! implementation** — the `jsonwebtoken` crate on RustCrypto's `rsa`, not the OpenSSL/josekit
//! code that signs and verifies elsewhere — against the keys a relying party is meant to
//! trust: the OP's published `jwks` (tokens), the OP's federation key (its entity
//! configuration) and the trust anchor's (trust marks). Against the case's `[intact]`:
//!
//! - a case that keeps signatures intact has every signature verify (by the `kid` its header
//!   names, with the `alg` it names, which must be a signing algorithm);
//! - a case whose signature fails must have opted out (`signatures = false`, with `why`), and
//!   an opt-out must be needed: some signature fails.
//!
//! The `cie-oidc-rp` catalogue runs the same way at a federation whose OP and RP are both in
//! the CIE profile: there the ID token travels nest-encrypted to the RP, and what is checked
//! is the signed JWS inside that JWE (recorded by the OP before encrypting, as for userinfo).

use jsonwebtoken::{crypto, Algorithm, DecodingKey};
use serde_json::Value;
use spid_core::oidc::jose::{b64url_decode, Jwks};
use spid_harness::oidc::{self as oidc_catalogue, OidcFederation};
use spid_harness::runner::Credentials;
use spid_idp::oidc::op::SentJwt;
use std::str::FromStr;

/// Verifies a compact JWS with `jwks`, independently: the header's `kid` picks the key, its
/// `alg` must be an RSA signing algorithm, or ES256 with an EC P-256 key (CIE).
fn verify(jws: &str, jwks: &Jwks) -> Result<(), String> {
    let mut parts = jws.split('.');
    let (Some(head), Some(payload), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a compact JWS".into());
    };
    let header: Value = b64url_decode(head)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("header is not JSON")?;
    let alg = header["alg"].as_str().unwrap_or_default();
    let alg = match Algorithm::from_str(alg) {
        Ok(a @ (Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512)) => a,
        Ok(a @ (Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512)) => a,
        Ok(Algorithm::ES256) => Algorithm::ES256,
        _ => return Err(format!("alg {alg} is not an RSA or ES256 signature")),
    };
    let kid = header["kid"].as_str().unwrap_or_default();
    let jwk = jwks
        .keys
        .iter()
        .find(|k| k.kid.as_deref() == Some(kid))
        .ok_or(format!("kid {kid} names no trusted key"))?;
    let key = if alg == Algorithm::ES256 {
        let member = |m: &str| jwk.other.get(m).and_then(Value::as_str);
        let (Some("P-256"), Some(x), Some(y)) = (member("crv"), member("x"), member("y")) else {
            return Err("the trusted key is not EC P-256".into());
        };
        DecodingKey::from_ec_components(x, y).map_err(|e| e.to_string())?
    } else {
        let (Some(n), Some(e)) = (&jwk.n, &jwk.e) else {
            return Err("the trusted key is not RSA".into());
        };
        DecodingKey::from_rsa_components(n, e).map_err(|e| e.to_string())?
    };
    let input = format!("{head}.{payload}");
    match crypto::verify(sig, input.as_bytes(), &key, alg) {
        Ok(true) => Ok(()),
        Ok(false) => Err("signature does not verify".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Every signature a sent message carries, with the keys it must verify with: an entity
/// configuration is the OP's federation key's, and each trust mark inside it the anchor's.
fn signatures(m: &SentJwt, fed: &OidcFederation) -> Vec<(String, String, Jwks)> {
    match m.message {
        "entity_configuration" => {
            let mut out = vec![(
                m.message.to_string(),
                m.jws.clone(),
                fed.op.federation_jwks(),
            )];
            let payload: Value = m
                .jws
                .split('.')
                .nth(1)
                .and_then(|p| b64url_decode(p).ok())
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or(Value::Null);
            for mark in payload["trust_marks"].as_array().into_iter().flatten() {
                if let Some(jwt) = mark["trust_mark"].as_str() {
                    out.push(("trust_mark".into(), jwt.to_string(), fed.ta.jwks()));
                }
            }
            out
        }
        other => vec![(other.to_string(), m.jws.clone(), fed.op.jwks())],
    }
}

#[tokio::test]
async fn every_oidc_case_keeps_intact_what_it_declares() {
    let fed = OidcFederation::start(Credentials::embedded().unwrap())
        .await
        .unwrap();
    check_catalogue(&fed, &oidc_catalogue::embedded().unwrap()).await;
}

#[tokio::test]
async fn every_cie_oidc_rp_case_keeps_intact_what_it_declares() {
    use spid_harness::cie_oidc;
    let fed = cie_oidc::start(Credentials::embedded().unwrap())
        .await
        .unwrap();
    let cases: Vec<_> = cie_oidc::embedded()
        .unwrap()
        .iter()
        .map(cie_oidc::as_oidc_case)
        .collect();
    check_catalogue(&fed, &cases).await;
}

/// Runs `cases` at `fed`, each met, and checks every signature our OP sent for each against
/// the case's `[intact]`.
async fn check_catalogue(fed: &OidcFederation, cases: &[oidc_catalogue::OidcCase]) {
    let users = spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap();
    let mut problems = Vec::new();
    let (mut checked, mut opted_out) = (0, 0);
    for case in cases {
        fed.op.take_sent();
        let r = fed.run_case(case, &users).await;
        assert!(r.passed(), "{}: {:?}", case.id, r.note);
        let mut failures = Vec::new();
        for m in fed.op.take_sent() {
            for (what, jws, keys) in signatures(&m, fed) {
                checked += 1;
                if let Err(e) = verify(&jws, &keys) {
                    failures.push(format!("{what}: {e}"));
                }
            }
        }
        match (case.intact.signatures, failures.is_empty()) {
            (true, false) => problems.push(format!(
                "{}: declares signatures intact, but {}",
                case.id,
                failures.join("; ")
            )),
            (false, true) => problems.push(format!(
                "{}: opts out of intact signatures ({}), yet every signature verifies",
                case.id,
                case.intact.why.as_deref().unwrap_or_default()
            )),
            (false, false) => opted_out += 1,
            (true, true) => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= cases.len(), "only {checked} signatures checked");
    println!(
        "{} cases, {checked} signatures checked, {opted_out} opt-outs",
        cases.len()
    );
}

#[test]
fn the_verifier_refuses_what_it_must() {
    // A token our josekit layer signs verifies here; one flipped character does not.
    let key = spid_core::oidc::jose::SigningKey::from_pem(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../certs/idp.key.pem"
        ))
        .unwrap(),
    )
    .unwrap();
    let jwks = Jwks::new(vec![key.public_jwk().unwrap()]);
    let jws = spid_core::oidc::jose::sign_jws(
        &serde_json::json!({"sub": "x"}),
        &key,
        spid_core::oidc::jose::SigAlg::RS256,
        Some("JWT"),
    )
    .unwrap();
    assert_eq!(verify(&jws, &jwks), Ok(()));
    let flipped = spid_core::oidc::plan::corrupt_signature(&jws);
    assert!(verify(&flipped, &jwks).is_err());
    assert!(verify(&jws, &Jwks::new(vec![])).is_err());
}
