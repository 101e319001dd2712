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
//! Every JWE the OP sent (userinfo; the ID token in the CIE profile) is decrypted as sent, by
//! the same independent hand (RFC 7518 key wrap and content encryption on RustCrypto's `rsa`,
//! `aes-gcm`, `aes`, `cbc` and `hmac`), with the RP's encryption key, or with the OP's foreign
//! key where the case's plan encrypts to it (and then not with the RP's): it must decrypt under
//! the header it carries, whatever `alg` and `enc` that names (RSA1_5 and AES-GCM included), to
//! exactly the signed JWS that was checked. A case about the JWE thus proves it: a JWE that
//! nobody could decrypt would be refused by any RP, however lax.
//!
//! The `cie-oidc-rp` catalogue runs the same way at a federation whose OP and RP are both in
//! the CIE profile: there the ID token travels nest-encrypted to the RP.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use hmac::Mac;
use jsonwebtoken::{crypto, Algorithm, DecodingKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Oaep, Pkcs1v15Encrypt, RsaPrivateKey};
use serde_json::Value;
use spid_core::oidc::jose::{b64url_decode, Jwks};
use spid_core::oidc::plan::Recipient;
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

/// Decrypts a compact JWE with `key`, independently: `alg` RSA-OAEP, RSA-OAEP-256 or RSA1_5
/// (the content key), `enc` A128CBC-HS256, A256CBC-HS512 (RFC 7518 5.2.2: MAC key, then
/// encryption key; the tag the first half of HMAC(aad || iv || ciphertext || aad bit length)),
/// A128GCM or A256GCM; the encoded protected header is the additional data.
fn decrypt(jwe: &str, key: &RsaPrivateKey) -> Result<Vec<u8>, String> {
    let parts: Vec<&str> = jwe.split('.').collect();
    let [head, ek, iv, ct, tag] = parts[..] else {
        return Err(format!(
            "a compact JWE has 5 parts, this has {}",
            parts.len()
        ));
    };
    let dec = |s: &str, what: &str| b64url_decode(s).map_err(|e| format!("{what}: {e}"));
    let header: Value =
        serde_json::from_slice(&dec(head, "header")?).map_err(|e| format!("header: {e}"))?;
    let (ek, iv, ct, tag) = (
        dec(ek, "key")?,
        dec(iv, "iv")?,
        dec(ct, "ciphertext")?,
        dec(tag, "tag")?,
    );
    let alg = header["alg"].as_str().unwrap_or_default();
    let cek = match alg {
        "RSA-OAEP" => key.decrypt(Oaep::new::<sha1::Sha1>(), &ek),
        "RSA-OAEP-256" => key.decrypt(Oaep::new::<sha2::Sha256>(), &ek),
        "RSA1_5" => key.decrypt(Pkcs1v15Encrypt, &ek),
        other => return Err(format!("alg {other} is no key wrap this verifier knows")),
    }
    .map_err(|e| format!("the {alg} content key does not unwrap with this key: {e}"))?;
    let aad = head.as_bytes();
    let enc = header["enc"].as_str().unwrap_or_default();
    let tagged = [&ct[..], &tag[..]].concat();
    let gcm = Payload { msg: &tagged, aad };
    let cbc_hs = |mac_len: usize| -> Result<(Vec<u8>, Vec<u8>), String> {
        if cek.len() != 2 * mac_len {
            return Err(format!(
                "a {enc} content key is {} bytes, this is {}",
                2 * mac_len,
                cek.len()
            ));
        }
        let mut input = [aad, &iv[..], &ct[..]].concat();
        input.extend_from_slice(&(aad.len() as u64 * 8).to_be_bytes());
        let full = if mac_len == 16 {
            let mut m = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&cek[..16]).unwrap();
            m.update(&input);
            m.finalize().into_bytes().to_vec()
        } else {
            let mut m = <hmac::Hmac<sha2::Sha512> as Mac>::new_from_slice(&cek[..32]).unwrap();
            m.update(&input);
            m.finalize().into_bytes().to_vec()
        };
        Ok((full[..mac_len].to_vec(), cek[mac_len..].to_vec()))
    };
    if enc.ends_with("GCM") && iv.len() != 12 {
        return Err(format!("a {enc} iv is 12 bytes, this is {}", iv.len()));
    }
    let plain = match enc {
        "A128GCM" => aes_gcm::Aes128Gcm::new_from_slice(&cek)
            .map_err(|e| e.to_string())?
            .decrypt(iv.as_slice().into(), gcm)
            .map_err(|_| "the A128GCM tag does not verify".to_string())?,
        "A256GCM" => aes_gcm::Aes256Gcm::new_from_slice(&cek)
            .map_err(|e| e.to_string())?
            .decrypt(iv.as_slice().into(), gcm)
            .map_err(|_| "the A256GCM tag does not verify".to_string())?,
        "A128CBC-HS256" | "A256CBC-HS512" => {
            let mac_len = if enc == "A128CBC-HS256" { 16 } else { 32 };
            let (want, enc_key) = cbc_hs(mac_len)?;
            if want != tag {
                return Err(format!("the {enc} tag does not verify"));
            }
            let mut buf = ct.clone();
            let out = if mac_len == 16 {
                cbc::Decryptor::<aes::Aes128>::new_from_slices(&enc_key, &iv)
                    .map_err(|e| e.to_string())?
                    .decrypt_padded_mut::<Pkcs7>(&mut buf)
                    .map(<[u8]>::to_vec)
            } else {
                cbc::Decryptor::<aes::Aes256>::new_from_slices(&enc_key, &iv)
                    .map_err(|e| e.to_string())?
                    .decrypt_padded_mut::<Pkcs7>(&mut buf)
                    .map(<[u8]>::to_vec)
            };
            out.map_err(|_| format!("the {enc} padding is wrong"))?
        }
        other => {
            return Err(format!(
                "enc {other} is no content encryption this verifier knows"
            ))
        }
    };
    Ok(plain)
}

/// The RP's encryption key and the OP's foreign key (what a plan encrypts to instead).
fn decryption_keys() -> (RsaPrivateKey, RsaPrivateKey) {
    let load = |name: &str| {
        let path = format!(
            "{}/../../certs/oidc/{name}.key.pem",
            env!("CARGO_MANIFEST_DIR")
        );
        RsaPrivateKey::from_pkcs8_pem(&std::fs::read_to_string(&path).unwrap()).unwrap()
    };
    (load("rp-encryption"), load("op-foreign"))
}

/// Checks a sent JWE against the JWS it carried: it decrypts with the key the plan encrypts
/// to (and only with it) to exactly that JWS.
fn check_jwe(
    m: &SentJwt,
    case: &oidc_catalogue::OidcCase,
    keys: &(RsaPrivateKey, RsaPrivateKey),
) -> Result<(), String> {
    let Some(jwe) = &m.jwe else { return Ok(()) };
    let plan = match m.message {
        "userinfo" => &case.plan.userinfo,
        _ => &case.plan.id_token,
    };
    let (to, other, whose) = match plan.encrypt.recipient {
        Recipient::Published => (&keys.0, &keys.1, "the RP's key"),
        Recipient::Foreign => (&keys.1, &keys.0, "the foreign key"),
    };
    let plain = decrypt(jwe, to).map_err(|e| format!("{} JWE with {whose}: {e}", m.message))?;
    if plain != m.jws.as_bytes() {
        return Err(format!(
            "{} JWE does not carry the JWS that was signed",
            m.message
        ));
    }
    if decrypt(jwe, other).is_ok() {
        return Err(format!(
            "{} JWE also decrypts with a key it is not meant for",
            m.message
        ));
    }
    Ok(())
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
    let keys = decryption_keys();
    let mut problems = Vec::new();
    let (mut checked, mut opted_out, mut sealed) = (0, 0, 0);
    for case in cases {
        fed.op.take_sent();
        let r = fed.run_case(case, &users).await;
        assert!(r.passed(), "{}: {:?}", case.id, r.note);
        let mut failures = Vec::new();
        let sent = fed.op.take_sent();
        let jwe_case = [&case.plan.userinfo, &case.plan.id_token]
            .iter()
            .any(|p| !p.encrypt.is_honest() && !p.encrypt.skip);
        if jwe_case && sent.iter().all(|m| m.jwe.is_none()) {
            problems.push(format!(
                "{}: its plan edits a JWE, yet none was sent",
                case.id
            ));
        }
        for m in sent {
            if m.jwe.is_some() {
                sealed += 1;
                if let Err(e) = check_jwe(&m, case, &keys) {
                    problems.push(format!("{}: {e}", case.id));
                }
            }
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
    assert!(sealed > 0, "no JWE decrypted");
    println!(
        "{} cases, {checked} signatures checked, {sealed} JWEs decrypted, {opted_out} opt-outs",
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

#[test]
fn the_decryptor_opens_every_genuine_jwe_and_refuses_a_relabelled_one() {
    use spid_core::oidc::jose::{
        encrypt_jwe, encrypt_jwe_with_header, DecryptionKey, JweAlg, JweEnc,
    };
    let pem = |name: &str| {
        std::fs::read(format!(
            "{}/../../certs/oidc/{name}.key.pem",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let rp = DecryptionKey::from_pem(&pem("rp-encryption"))
        .unwrap()
        .public_jwk()
        .unwrap();
    let (rp_key, foreign) = decryption_keys();
    let msg = b"a.signed.jws";
    // Every SPID pair, encrypted by josekit on OpenSSL, opens here.
    for alg in JweAlg::ALL {
        for enc in JweEnc::ALL {
            let jwe = encrypt_jwe(msg, &rp, alg, enc, Some("JWT")).unwrap();
            assert_eq!(decrypt(&jwe, &rp_key).unwrap(), msg, "{alg:?} {enc:?}");
            assert!(decrypt(&jwe, &foreign).is_err());
        }
    }
    // What SPID refuses, genuinely produced, opens too; the same label on an honest JWE does
    // not (its key wrap, or its tag over the protected header, gives it away).
    let honest = encrypt_jwe(
        msg,
        &rp,
        JweAlg::RsaOaep256,
        JweEnc::A128CbcHs256,
        Some("JWT"),
    )
    .unwrap();
    let header: serde_json::Map<String, Value> =
        serde_json::from_slice(&b64url_decode(honest.split('.').next().unwrap()).unwrap()).unwrap();
    for (k, v) in [
        ("alg", "RSA1_5"),
        ("enc", "A128GCM"),
        ("enc", "A256GCM"),
        ("cty", "json"),
    ] {
        let mut h = header.clone();
        h.insert(k.into(), v.into());
        let genuine = encrypt_jwe_with_header(msg, &rp, h.clone()).unwrap();
        assert_eq!(decrypt(&genuine, &rp_key).unwrap(), msg, "{k} {v}");
        let head = spid_core::oidc::jose::b64url_encode(Value::Object(h).to_string().as_bytes());
        let relabelled = format!("{head}.{}", honest.split_once('.').unwrap().1);
        assert!(decrypt(&relabelled, &rp_key).is_err(), "{k} {v}");
    }
}
