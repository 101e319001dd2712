//! JOSE compact parsing (JWS, JWE headers, JWKS) and the ID-token claim checks. The first
//! byte chooses how the rest is read: a compact token verified against the OP's JWKS and, if
//! it verifies, its claims checked as an ID token; a JSON claims object checked directly (the
//! claim checks without the signature in the way); a JWKS document; a compact JWE.
//! Properties: nothing panics; a token that verifies was signed by the OP key; claims that
//! pass the checks name the expected issuer, audience and nonce.
#![no_main]
use chrono::Duration;
use libfuzzer_sys::fuzz_target;
use spid_core::oidc::claims::{validate_id_token_with, IdTokenCheck};
use spid_core::oidc::jose::{self, DecryptionKey, JweAlg, JweEnc, Jwks, SigAlg};
use spid_core::oidc::Profile;
use std::sync::OnceLock;

/// The OP and RP of the seeds (`tests/fuzz_seeds.rs`).
const ISS: &str = "http://127.0.0.1:1/oidc/op";
const CLIENT: &str = "http://127.0.0.1:2/oidc/rp";
const NONCE: &str = "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn";

fn op_jwks() -> &'static Jwks {
    static J: OnceLock<Jwks> = OnceLock::new();
    J.get_or_init(|| spid_fuzz::fed_jwks(0))
}

fn rp_key() -> &'static DecryptionKey {
    static K: OnceLock<DecryptionKey> = OnceLock::new();
    K.get_or_init(|| DecryptionKey::from_pem(spid_fuzz::SP_KEY.as_bytes()).expect("key"))
}

fn check_claims(claims: &serde_json::Value, profile: &Profile) {
    let now = chrono::DateTime::from_timestamp(1_772_359_200, 0).expect("now");
    for refreshed in [false, true] {
        let check = IdTokenCheck {
            issuer: ISS,
            client_id: CLIENT,
            nonce: NONCE,
            refreshed,
            now,
            skew: Duration::seconds(60),
        };
        if let Ok(t) = validate_id_token_with(claims, &check, profile) {
            assert_eq!(t.iss, ISS);
            assert!(t.aud.iter().any(|a| a == CLIENT), "{t:?}");
            assert!(refreshed || t.nonce.as_deref() == Some(NONCE), "{t:?}");
            let _ = t.check_at_hash("access-token", SigAlg::RS256);
            let _ = t.check_level(spid_core::SpidLevel::L2);
        }
    }
    let _ = jose::check_time_claims(claims, now, Duration::seconds(60), true);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let profile = Profile::rules_2023();
    let text = String::from_utf8_lossy(rest);
    match mode % 4 {
        0 => {
            let _ = jose::decode_unverified(&text);
            if let Ok((h, claims)) = jose::verify_jws(&text, op_jwks(), &profile.signing_algs) {
                assert!(h.kid.is_some());
                check_claims(&claims, &profile);
            }
        }
        1 => {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(rest) {
                check_claims(&v, &profile);
            }
        }
        2 => {
            if let Ok(jwks) = Jwks::from_json(&text) {
                let _ = jwks.to_json();
                for k in &jwks.keys {
                    let _ = k.thumbprint();
                    let _ = k.rsa_bits();
                }
            }
        }
        _ => {
            let _ = jose::decrypt_jwe(
                &text,
                rp_key(),
                &[JweAlg::RsaOaep256, JweAlg::RsaOaep],
                &[JweEnc::A256CbcHs512, JweEnc::A128CbcHs256],
            );
        }
    }
});
