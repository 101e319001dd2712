use super::*;
use crate::oidc::test_keys::{decryption, jwks, pem, pkey, signing};
use chrono::{Duration, TimeZone, Utc};
use josekit::jws::JwsSigner as _;
use serde_json::json;

fn claims() -> Value {
    json!({"iss": "https://op.example.it", "sub": "abc", "iat": 1_700_000_000, "exp": 1_700_000_600})
}

use serde_json::Value;

/// A token assembled by hand from header JSON, payload JSON and raw signature bytes.
fn craft(header: &Value, payload: &Value, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64url_encode(header.to_string().as_bytes()),
        b64url_encode(payload.to_string().as_bytes()),
        b64url_encode(sig)
    )
}

const RS: [SigAlg; 1] = [SigAlg::RS256];

// ---------------------------------------------------------------- JWK / JWKS

#[test]
fn thumbprint_matches_rfc7638_example() {
    let jwk: Jwk = serde_json::from_value(json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    }))
    .expect("jwk");
    assert_eq!(
        jwk.thumbprint().expect("thumbprint"),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn jwk_from_key_pair_public_pem_and_certificate_agree() {
    let key = signing(0);
    let jwk = key.public_jwk().expect("jwk");
    assert_eq!(jwk.kty, "RSA");
    assert_eq!(jwk.key_use.as_deref(), Some("sig"));
    assert_eq!(jwk.kid.as_deref(), Some(key.kid()));
    assert_eq!(jwk.thumbprint().expect("tp"), key.kid());
    assert_eq!(jwk.rsa_bits(), Some(2048));
    assert!(!jwk.has_private_members());

    let from_pair = Jwk::from_key_pair_pem(&pem(0)).expect("from pair");
    assert_eq!(
        (from_pair.kid.as_ref(), from_pair.key_use.as_ref()),
        (jwk.kid.as_ref(), None)
    );
    assert_eq!(from_pair.n, jwk.n);

    let pub_pem = pkey(0).public_key_to_pem().expect("pub pem");
    let from_pub = Jwk::from_public_key_pem(&pub_pem).expect("from pub pem");
    assert_eq!(
        (from_pub.n.as_ref(), from_pub.e.as_ref()),
        (jwk.n.as_ref(), jwk.e.as_ref())
    );
    assert_eq!(from_pub.kid, jwk.kid);

    let cert = self_signed_cert(0);
    let from_cert = Jwk::from_certificate_pem(&cert).expect("from cert");
    assert_eq!(from_cert.n, jwk.n);
    assert_eq!(from_cert.kid, jwk.kid);
    assert_eq!(from_cert.x5c.as_ref().map(Vec::len), Some(1));

    // Bad inputs are errors, not panics.
    assert!(matches!(
        Jwk::from_certificate_pem(b"junk"),
        Err(JoseError::Key(_))
    ));
    assert!(matches!(
        SigningKey::from_pem(b"junk"),
        Err(JoseError::Key(_))
    ));
}

fn self_signed_cert(i: usize) -> Vec<u8> {
    use openssl::{asn1::Asn1Time, hash::MessageDigest, x509};
    let key = pkey(i);
    let mut name = x509::X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "test").expect("cn");
    let name = name.build();
    let mut b = x509::X509Builder::new().expect("builder");
    b.set_version(2).expect("v3");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("t"))
        .expect("nb");
    b.set_not_after(&Asn1Time::days_from_now(1).expect("t"))
        .expect("na");
    b.sign(&key, MessageDigest::sha256()).expect("sign");
    b.build().to_pem().expect("pem")
}

#[test]
fn jwks_serialises_and_parses_back() {
    let mut set = jwks(0);
    set.keys.push(decryption(1).public_jwk().expect("enc jwk"));
    let text = set.to_json();
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["keys"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["keys"][1]["use"], "enc");
    assert!(v["keys"][0].get("d").is_none());
    assert_eq!(Jwks::from_json(&text).expect("parse"), set);
    // A JWKS with a key type this layer does not use still parses.
    let ec = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b","kid":"e"}]}"#;
    assert_eq!(Jwks::from_json(ec).expect("ec").keys[0].kty, "EC");
}

#[test]
fn small_keys_are_refused_for_signing() {
    let small = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(1024).expect("rsa"))
        .expect("pkey");
    assert!(matches!(
        SigningKey::from_pkey(small),
        Err(JoseError::Key(_))
    ));
}

// ---------------------------------------------------------------- JWS round trips

#[test]
fn jws_round_trip_every_alg_with_typ_and_kid() {
    let key = signing(0);
    for alg in SigAlg::RSA {
        let token = sign_jws(&claims(), &key, alg, Some("entity-statement+jwt")).expect("sign");
        let (header, got) = verify_jws(&token, &jwks(0), &[alg]).expect("verify");
        assert_eq!(header.alg, alg.name());
        assert_eq!(header.kid.as_deref(), Some(key.kid()));
        assert_eq!(header.typ.as_deref(), Some("entity-statement+jwt"));
        assert_eq!(got, claims());
    }
}

#[test]
fn es256_round_trips_with_an_ec_p256_key_and_only_with_it() {
    let ec = SigningKey::generate_p256().expect("p256");
    let jwk = ec.public_jwk().expect("jwk");
    assert_eq!(jwk.kty, "EC");
    assert_eq!(jwk.other["crv"], json!("P-256"));
    assert_eq!(jwk.kid.as_deref(), Some(ec.kid()));
    let ec_jwks = Jwks::new(vec![jwk]);
    let token = sign_jws(&claims(), &ec, SigAlg::ES256, Some("JWT")).expect("sign");
    let (header, got) = verify_jws(&token, &ec_jwks, &[SigAlg::ES256]).expect("verify");
    assert_eq!(header.alg, "ES256");
    assert_eq!(got, claims());
    // Not accepted where the allow-list has no ES256 (SPID), nor under an RSA key's kid.
    assert!(verify_jws(&token, &ec_jwks, &SigAlg::RSA).is_err());
    // An RSA key cannot sign ES256, an EC key cannot sign RS256.
    assert!(sign_jws(&claims(), &signing(0), SigAlg::ES256, None).is_err());
    assert!(sign_jws(&claims(), &ec, SigAlg::RS256, None).is_err());
    // The profiles: ES256 only where EC keys are allowed.
    let spid = crate::oidc::Profile::rules_2023();
    let cie = crate::oidc::Profile::cie();
    assert!(!spid.accepted_signing_algs().contains(&SigAlg::ES256));
    assert!(cie.accepted_signing_algs().contains(&SigAlg::ES256));
    let mut listed = spid.clone();
    listed.signing_algs.push(SigAlg::ES256);
    assert!(!listed.accepted_signing_algs().contains(&SigAlg::ES256));
}

#[test]
fn typ_comparison_follows_rfc7515() {
    let h = JwsHeader::new(SigAlg::RS256, &signing(0)).with_typ("Application/Entity-Statement+JWT");
    assert!(h.typ_is("entity-statement+jwt"));
    assert!(!h.typ_is("JWT"));
    assert_eq!(
        serde_json::to_value(JweAlg::RsaOaep256).ok(),
        Some(json!("RSA-OAEP-256"))
    );
    assert_eq!(
        serde_json::to_value(JweEnc::A128CbcHs256).ok(),
        Some(json!("A128CBC-HS256"))
    );
    assert_eq!(
        serde_json::to_value(SigAlg::PS512).ok(),
        Some(json!("PS512"))
    );
}

#[test]
fn custom_header_and_kid_are_honoured() {
    let key = signing(0).with_kid("my-kid");
    let header = JwsHeader::new(SigAlg::RS512, &key)
        .with_typ("JWT")
        .with_cty("JWT");
    let token = sign_jws_with_header(b"{\"a\":1}", &key, &header).expect("sign");
    let set = Jwks::new(vec![key.public_jwk().expect("jwk")]);
    let (h, c) = verify_jws(&token, &set, &[SigAlg::RS512]).expect("verify");
    assert_eq!(h.kid.as_deref(), Some("my-kid"));
    assert_eq!(h.cty.as_deref(), Some("JWT"));
    assert_eq!(c, json!({"a": 1}));
}

// ---------------------------------------------------------------- JWS refusals

#[test]
fn refuses_alg_none_in_any_case() {
    for alg in ["none", "None", "NONE"] {
        let t = craft(
            &json!({"alg": alg, "kid": signing(0).kid()}),
            &claims(),
            b"",
        );
        assert_eq!(
            verify_jws(&t, &jwks(0), &SigAlg::ALL),
            Err(JoseError::AlgNone)
        );
    }
}

#[test]
fn refuses_hs256_signed_with_the_rsa_public_key_as_secret() {
    // The key-confusion attack: HMAC keyed with the published public key.
    let secret = pkey(0).public_key_to_pem().expect("pub pem");
    let header = json!({"alg": "HS256", "kid": signing(0).kid(), "typ": "JWT"});
    let input = format!(
        "{}.{}",
        b64url_encode(header.to_string().as_bytes()),
        b64url_encode(claims().to_string().as_bytes())
    );
    let signer = josekit::jws::HS256
        .signer_from_bytes(&secret)
        .expect("hmac");
    let sig = signer.sign(input.as_bytes()).expect("sig");
    let token = format!("{input}.{}", b64url_encode(&sig));
    assert_eq!(
        verify_jws(&token, &jwks(0), &SigAlg::ALL),
        Err(JoseError::AlgHmac("HS256".into()))
    );
    for hs in ["HS384", "HS512", "hs256"] {
        let t = craft(
            &json!({"alg": hs, "kid": signing(0).kid()}),
            &claims(),
            b"x",
        );
        assert_eq!(
            verify_jws(&t, &jwks(0), &SigAlg::ALL),
            Err(JoseError::AlgHmac(hs.into()))
        );
    }
}

#[test]
fn refuses_alg_outside_the_allow_list() {
    let token = sign_jws(&claims(), &signing(0), SigAlg::RS512, None).expect("sign");
    assert_eq!(
        verify_jws(&token, &jwks(0), &RS),
        Err(JoseError::AlgNotAllowed("RS512".into()))
    );
    // ES256 is known but outside an RSA allow-list (SPID).
    for (alg, allowed) in [
        ("ES256", &SigAlg::RSA[..]),
        ("EdDSA", &SigAlg::ALL[..]),
        ("RS1", &SigAlg::ALL[..]),
        ("", &SigAlg::ALL[..]),
    ] {
        let t = craft(&json!({"alg": alg, "kid": "k"}), &claims(), b"x");
        assert_eq!(
            verify_jws(&t, &jwks(0), allowed),
            Err(JoseError::AlgNotAllowed(alg.into()))
        );
    }
}

#[test]
fn refuses_signature_by_the_wrong_key() {
    // Signed by key 1 but claiming key 0's kid.
    let liar = signing(1).with_kid(signing(0).kid());
    let token = sign_jws(&claims(), &liar, SigAlg::RS256, None).expect("sign");
    assert_eq!(
        verify_jws(&token, &jwks(0), &RS),
        Err(JoseError::BadSignature)
    );
}

#[test]
fn refuses_unknown_and_missing_kid() {
    let token = sign_jws(&claims(), &signing(1), SigAlg::RS256, None).expect("sign");
    assert_eq!(
        verify_jws(&token, &jwks(0), &RS),
        Err(JoseError::UnknownKid(signing(1).kid().into()))
    );
    let mut header = JwsHeader::new(SigAlg::RS256, &signing(0));
    header.kid = None;
    let token = sign_jws_with_header(b"{}", &signing(0), &header).expect("sign");
    assert_eq!(
        verify_jws(&token, &jwks(0), &RS),
        Err(JoseError::MissingKid)
    );
}

#[test]
fn never_trusts_keys_carried_in_the_header() {
    // The attacker embeds its own key as `jwk` (and `jku`/`x5c`), kid = its thumbprint.
    let attacker = signing(1);
    let mut header = JwsHeader::new(SigAlg::RS256, &attacker);
    let attacker_jwk = attacker.public_jwk().expect("jwk");
    header.other.insert(
        "jwk".into(),
        serde_json::to_value(&attacker_jwk).expect("v"),
    );
    header
        .other
        .insert("jku".into(), json!("https://evil.example/jwks"));
    let token = sign_jws_with_header(b"{}", &attacker, &header).expect("sign");
    assert_eq!(
        verify_jws(&token, &jwks(0), &RS),
        Err(JoseError::UnknownKid(attacker.kid().into()))
    );
    // Same with the victim's kid: the embedded key is still ignored.
    header.kid = Some(signing(0).kid().into());
    let token = sign_jws_with_header(b"{}", &attacker, &header).expect("sign");
    assert_eq!(
        verify_jws(&token, &jwks(0), &RS),
        Err(JoseError::BadSignature)
    );
}

#[test]
fn refuses_tampered_payload() {
    let token = sign_jws(&claims(), &signing(0), SigAlg::RS256, None).expect("sign");
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut forged = claims();
    forged["sub"] = json!("someone-else");
    parts[1] = b64url_encode(forged.to_string().as_bytes());
    assert_eq!(
        verify_jws(&parts.join("."), &jwks(0), &RS),
        Err(JoseError::BadSignature)
    );
}

#[test]
fn refuses_keys_that_cannot_verify() {
    // Same kid, but published for encryption only.
    let key = signing(0);
    let enc_only = Jwks::new(vec![key.public_jwk().expect("jwk").with_use(KeyUse::Enc)]);
    let token = sign_jws(&claims(), &key, SigAlg::RS256, None).expect("sign");
    assert!(matches!(
        verify_jws(&token, &enc_only, &RS),
        Err(JoseError::UnusableKey { .. })
    ));
    // A 1024-bit key under that kid: josekit's 2048-bit floor applies.
    let small = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(1024).expect("rsa"))
        .expect("pkey");
    let small_pub =
        openssl::pkey::PKey::public_key_from_der(&small.public_key_to_der().expect("d"))
            .expect("pub");
    let small_jwk = Jwk::from_public_key(&small_pub).expect("jwk");
    let kid = small_jwk.kid.clone().unwrap_or_default();
    let header = json!({"alg": "RS256", "kid": kid});
    let input = format!(
        "{}.{}",
        b64url_encode(header.to_string().as_bytes()),
        b64url_encode(b"{}")
    );
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &small).expect("s");
    signer.update(input.as_bytes()).expect("u");
    let token = format!(
        "{input}.{}",
        b64url_encode(&signer.sign_to_vec().expect("sig"))
    );
    assert!(matches!(
        verify_jws(&token, &Jwks::new(vec![small_jwk]), &RS),
        Err(JoseError::UnusableKey { .. })
    ));
}

#[test]
fn refuses_crit_header() {
    let mut header = JwsHeader::new(SigAlg::RS256, &signing(0));
    header.other.insert("crit".into(), json!(["exp"]));
    let token = sign_jws_with_header(b"{}", &signing(0), &header).expect("sign");
    assert_eq!(
        verify_jws(&token, &jwks(0), &RS),
        Err(JoseError::UnsupportedHeader("crit".into()))
    );
}

#[test]
fn refuses_malformed_tokens_without_panicking() {
    let good = sign_jws(&claims(), &signing(0), SigAlg::RS256, None).expect("sign");
    let (h, rest) = good.split_once('.').expect("dot");
    let kid = signing(0).kid().to_owned();
    let cases: Vec<String> = vec![
        String::new(),
        "abc".into(),
        "a.b".into(),
        "a.b.c.d".into(),
        "....".into(),
        format!("{good}."),
        format!(" {good}"),
        format!("{h}=.{rest}"),
        format!("!!!.{rest}"),
        format!("{}.{rest}", b64url_encode(b"not json")),
        format!("{}.{rest}", b64url_encode(b"[1,2]")),
        format!("{}.{rest}", b64url_encode(b"{\"kid\":\"x\"}")),
        format!("{}.{rest}", b64url_encode(b"{\"alg\":256}")),
        format!(
            "{}.{rest}",
            b64url_encode(json!({"alg":"RS256","kid":5}).to_string().as_bytes())
        ),
        craft(&json!({"alg": "RS256", "kid": kid}), &claims(), b"sig").replace('.', ".é"),
        "é.é.é".into(),
        "\u{10FFFF}".into(),
    ];
    for t in cases {
        assert!(
            matches!(verify_jws(&t, &jwks(0), &RS), Err(JoseError::Malformed(_))),
            "not Malformed: {t:?} -> {:?}",
            verify_jws(&t, &jwks(0), &RS)
        );
    }
    // Multi-byte alg must not panic in the HS prefix check.
    let t = craft(&json!({"alg": "Hé", "kid": kid}), &claims(), b"x");
    assert_eq!(
        verify_jws(&t, &jwks(0), &RS),
        Err(JoseError::AlgNotAllowed("Hé".into()))
    );
    // A validly signed payload that is not a JSON object is malformed too.
    let header = JwsHeader::new(SigAlg::RS256, &signing(0));
    let token = sign_jws_with_header(b"[1]", &signing(0), &header).expect("sign");
    assert!(matches!(
        verify_jws(&token, &jwks(0), &RS),
        Err(JoseError::Malformed(_))
    ));
}

// ---------------------------------------------------------------- time claims

#[test]
fn verify_jwt_checks_time_claims() {
    let at = |s: i64| Utc.timestamp_opt(s, 0).single().expect("time");
    let skew = Duration::seconds(30);
    let token = sign_jws(&claims(), &signing(0), SigAlg::RS256, None).expect("sign");
    assert!(verify_jwt(&token, &jwks(0), &RS, at(1_700_000_100), skew).is_ok());
    // Within skew after exp: still fine; beyond: expired.
    assert!(verify_jwt(&token, &jwks(0), &RS, at(1_700_000_620), skew).is_ok());
    assert_eq!(
        verify_jwt(&token, &jwks(0), &RS, at(1_700_000_630), skew),
        Err(JoseError::Expired {
            exp: 1_700_000_600,
            now: 1_700_000_630
        })
    );
    assert_eq!(
        verify_jwt(&token, &jwks(0), &RS, at(1_699_999_900), skew),
        Err(JoseError::IssuedInFuture {
            iat: 1_700_000_000,
            now: 1_699_999_900
        })
    );
    let c = json!({"exp": 2_000_000_000, "nbf": 1_800_000_000});
    assert_eq!(
        check_time_claims(&c, at(1_700_000_000), skew, true),
        Err(JoseError::NotYetValid {
            nbf: 1_800_000_000,
            now: 1_700_000_000
        })
    );
    assert_eq!(
        check_time_claims(&json!({}), at(0), skew, true),
        Err(JoseError::MissingClaim("exp".into()))
    );
    assert_eq!(
        check_time_claims(&json!({"exp": "soon"}), at(0), skew, true),
        Err(JoseError::InvalidClaim("exp".into()))
    );
    assert!(check_time_claims(&json!({"exp": 1e300}), at(0), skew, true).is_err());
}

// ---------------------------------------------------------------- JWE

const ALL_ALGS: [JweAlg; 2] = JweAlg::ALL;
const ALL_ENCS: [JweEnc; 2] = JweEnc::ALL;

fn recipient() -> Jwk {
    decryption(2).public_jwk().expect("enc jwk")
}

#[test]
fn jwe_round_trip_every_alg_and_enc() {
    for alg in JweAlg::ALL {
        for enc in JweEnc::ALL {
            let token = encrypt_jwe(b"hello", &recipient(), alg, enc, Some("JWT")).expect("enc");
            assert_eq!(token.split('.').count(), 5);
            let (h, pt) = decrypt_jwe(&token, &decryption(2), &[alg], &[enc]).expect("dec");
            assert_eq!(pt, b"hello");
            assert_eq!((h.alg.as_str(), h.enc.as_str()), (alg.name(), enc.name()));
            assert_eq!(h.kid.as_deref(), Some(decryption(2).kid()));
            assert_eq!(h.cty.as_deref(), Some("JWT"));
        }
    }
}

#[test]
#[allow(deprecated)] // josekit marks RSA1_5 deprecated; producing one is the point here
fn refuses_rsa1_5_jwe() {
    let jk = recipient().to_josekit().expect("jk");
    let enc = josekit::jwe::RSA1_5
        .encrypter_from_jwk(&jk)
        .expect("encrypter");
    let mut h = josekit::jwe::JweHeader::new();
    h.set_content_encryption("A128CBC-HS256");
    h.set_key_id(decryption(2).kid());
    let token = josekit::jwe::serialize_compact(b"x", &h, &enc).expect("rsa1_5 token");
    // Refused even when the caller lists everything it can.
    assert_eq!(
        decrypt_jwe(&token, &decryption(2), &ALL_ALGS, &ALL_ENCS),
        Err(JoseError::Rsa15)
    );
}

#[test]
fn refuses_jwe_alg_and_enc_outside_the_allow_list() {
    let token = encrypt_jwe(
        b"x",
        &recipient(),
        JweAlg::RsaOaep256,
        JweEnc::A256CbcHs512,
        None,
    )
    .expect("e");
    assert_eq!(
        decrypt_jwe(&token, &decryption(2), &[JweAlg::RsaOaep], &ALL_ENCS),
        Err(JoseError::AlgNotAllowed("RSA-OAEP-256".into()))
    );
    assert_eq!(
        decrypt_jwe(&token, &decryption(2), &ALL_ALGS, &[JweEnc::A128CbcHs256]),
        Err(JoseError::EncNotAllowed("A256CBC-HS512".into()))
    );
    // GCM content encryption (valid JOSE, not in the SPID set).
    let jk = recipient().to_josekit().expect("jk");
    let enc = josekit::jwe::RSA_OAEP
        .encrypter_from_jwk(&jk)
        .expect("encrypter");
    let mut h = josekit::jwe::JweHeader::new();
    h.set_content_encryption("A256GCM");
    let gcm = josekit::jwe::serialize_compact(b"x", &h, &enc).expect("gcm");
    assert_eq!(
        decrypt_jwe(&gcm, &decryption(2), &ALL_ALGS, &ALL_ENCS),
        Err(JoseError::EncNotAllowed("A256GCM".into()))
    );
    // `dir`, `none` and the like: hand-made headers, refused before any crypto.
    for alg in ["dir", "A128KW", "ECDH-ES", "none"] {
        let header = b64url_encode(
            json!({"alg": alg, "enc": "A128CBC-HS256"})
                .to_string()
                .as_bytes(),
        );
        let t = format!("{header}..AAAA.AAAA.AAAA");
        assert_eq!(
            decrypt_jwe(&t, &decryption(2), &ALL_ALGS, &ALL_ENCS),
            Err(JoseError::AlgNotAllowed(alg.into()))
        );
    }
}

#[test]
fn refuses_zip_crit_and_foreign_kid_in_jwe() {
    for (member, value) in [("zip", json!("DEF")), ("crit", json!(["x"]))] {
        let mut hm = serde_json::Map::new();
        hm.insert("alg".into(), json!("RSA-OAEP"));
        hm.insert("enc".into(), json!("A128CBC-HS256"));
        hm.insert(member.into(), value);
        let t = format!(
            "{}.a.b.c.d",
            b64url_encode(Value::Object(hm).to_string().as_bytes())
        );
        assert_eq!(
            decrypt_jwe(&t, &decryption(2), &ALL_ALGS, &ALL_ENCS),
            Err(JoseError::UnsupportedHeader(member.into()))
        );
    }
    // Encrypted to another key: its kid is not ours.
    let other = decryption(3).public_jwk().expect("jwk");
    let token = encrypt_jwe(b"x", &other, JweAlg::RsaOaep, JweEnc::A128CbcHs256, None).expect("e");
    assert_eq!(
        decrypt_jwe(&token, &decryption(2), &ALL_ALGS, &ALL_ENCS),
        Err(JoseError::UnknownKid(decryption(3).kid().into()))
    );
}

#[test]
fn jwe_tampering_and_wrong_key_fail_decryption() {
    let token = encrypt_jwe(
        b"secret",
        &recipient(),
        JweAlg::RsaOaep,
        JweEnc::A128CbcHs256,
        None,
    )
    .expect("e");
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    // Flip the ciphertext.
    let mut ct = b64url_decode(&parts[3]).expect("ct");
    ct[0] ^= 1;
    parts[3] = b64url_encode(&ct);
    assert_eq!(
        decrypt_jwe(&parts.join("."), &decryption(2), &ALL_ALGS, &ALL_ENCS),
        Err(JoseError::DecryptionFailed)
    );
    // Right kid claimed, wrong private key.
    let impostor = decryption(3).with_kid(decryption(2).kid());
    assert_eq!(
        decrypt_jwe(&token, &impostor, &ALL_ALGS, &ALL_ENCS),
        Err(JoseError::DecryptionFailed)
    );
    for bad in ["", "a.b.c.d", "a.b.c.d.e.f", "!.b.c.d.e"] {
        assert!(matches!(
            decrypt_jwe(bad, &decryption(2), &ALL_ALGS, &ALL_ENCS),
            Err(JoseError::Malformed(_))
        ));
    }
}

#[test]
fn cannot_encrypt_to_a_signing_key() {
    let sig_jwk = signing(0).public_jwk().expect("jwk");
    assert!(matches!(
        encrypt_jwe(b"x", &sig_jwk, JweAlg::RsaOaep, JweEnc::A128CbcHs256, None),
        Err(JoseError::Key(_))
    ));
}

// ---------------------------------------------------------------- nested (userinfo)

#[test]
fn nested_userinfo_round_trip() {
    let c = json!({"iss": "https://op.example.it", "sub": "pairwise", "given_name": "Mario"});
    let token = sign_and_encrypt(
        &c,
        &signing(0),
        SigAlg::RS256,
        &recipient(),
        JweAlg::RsaOaep256,
        JweEnc::A256CbcHs512,
    )
    .expect("nest");
    let (h, got) = decrypt_and_verify(&token, &decryption(2), &ALL_ALGS, &ALL_ENCS, &jwks(0), &RS)
        .expect("un");
    assert_eq!(got, c);
    assert_eq!(h.typ.as_deref(), Some("JWT"));

    // Inner JWS from a key the RP does not trust.
    let rogue = sign_and_encrypt(
        &c,
        &signing(1),
        SigAlg::RS256,
        &recipient(),
        JweAlg::RsaOaep,
        JweEnc::A128CbcHs256,
    )
    .expect("nest");
    assert_eq!(
        decrypt_and_verify(&rogue, &decryption(2), &ALL_ALGS, &ALL_ENCS, &jwks(0), &RS),
        Err(JoseError::UnknownKid(signing(1).kid().into()))
    );

    // Unsigned inner token, properly encrypted.
    let unsigned = craft(&json!({"alg": "none", "kid": signing(0).kid()}), &c, b"");
    let wrapped = encrypt_jwe(
        unsigned.as_bytes(),
        &recipient(),
        JweAlg::RsaOaep,
        JweEnc::A128CbcHs256,
        Some("JWT"),
    )
    .expect("e");
    assert_eq!(
        decrypt_and_verify(
            &wrapped,
            &decryption(2),
            &ALL_ALGS,
            &ALL_ENCS,
            &jwks(0),
            &RS
        ),
        Err(JoseError::AlgNone)
    );
}

#[test]
fn pem_loader_accepts_pkcs8_and_pkcs1() {
    let pkcs1 = pkey(0)
        .rsa()
        .expect("rsa")
        .private_key_to_pem()
        .expect("pkcs1");
    assert_eq!(
        SigningKey::from_pem(&pkcs1).expect("pkcs1").kid(),
        signing(0).kid()
    );
    assert_eq!(
        DecryptionKey::from_pem(&pem(0)).expect("pkcs8").kid(),
        signing(0).kid()
    );
}

#[test]
fn one_key_keeps_a_signer_and_a_decrypter_per_alg_and_its_clones_share_them() {
    // Handles are built on first use and kept: every alg, twice over and interleaved, must
    // still sign (and decrypt) with its own algorithm, and a renamed clone with its own kid.
    let key = signing(0);
    let renamed = key.clone().with_kid("renamed");
    let renamed_jwks = Jwks::new(vec![renamed.public_jwk().expect("jwk")]);
    let dec = decryption(2);
    for _ in 0..2 {
        for alg in SigAlg::RSA {
            for (k, set) in [(&key, jwks(0)), (&renamed, renamed_jwks.clone())] {
                let token = sign_jws(&claims(), k, alg, None).expect("sign");
                let (header, got) = verify_jws(&token, &set, &[alg]).expect("verify");
                assert_eq!(
                    (header.alg.as_str(), header.kid.as_deref()),
                    (alg.name(), Some(k.kid()))
                );
                assert_eq!(got, claims());
            }
        }
        for alg in JweAlg::ALL {
            let token = encrypt_jwe(b"hi", &recipient(), alg, JweEnc::ALL[0], None).expect("enc");
            let (h, pt) = decrypt_jwe(&token, &dec, &[alg], &ALL_ENCS).expect("dec");
            assert_eq!((h.alg.as_str(), pt.as_slice()), (alg.name(), &b"hi"[..]));
        }
    }
}

#[test]
fn kept_verifiers_are_the_keys_they_were_built_from() {
    // Two keys under one kid, each set used in turn (so each verifier is built, then reused):
    // a token verifies only with the set holding its signer, and a key restricted to another
    // `alg` (a different JWK, hence its own entry) still refuses.
    let kid = "shared";
    let (a, b) = (signing(0).with_kid(kid), signing(1).with_kid(kid));
    let set = |k: &SigningKey| Jwks::new(vec![k.public_jwk().expect("jwk")]);
    let (by_a, by_b) = (
        sign_jws(&claims(), &a, SigAlg::RS256, None).expect("sign"),
        sign_jws(&claims(), &b, SigAlg::RS256, None).expect("sign"),
    );
    for _ in 0..3 {
        assert!(verify_jws(&by_a, &set(&a), &RS).is_ok());
        assert_eq!(
            verify_jws(&by_a, &set(&b), &RS),
            Err(JoseError::BadSignature)
        );
        assert!(verify_jws(&by_b, &set(&b), &RS).is_ok());
        assert_eq!(
            verify_jws(&by_b, &set(&a), &RS),
            Err(JoseError::BadSignature)
        );
    }
    let mut restricted = a.public_jwk().expect("jwk");
    restricted.alg = Some("RS512".into());
    assert!(matches!(
        verify_jws(&by_a, &Jwks::new(vec![restricted]), &RS),
        Err(JoseError::UnusableKey { .. })
    ));
    // More keys than the cache holds: it starts over and every one still verifies.
    for i in 0..300 {
        let k = signing(0).with_kid(format!("k{i}"));
        let t = sign_jws(&claims(), &k, SigAlg::RS256, None).expect("sign");
        assert!(verify_jws(&t, &set(&k), &RS).is_ok(), "{i}");
    }
}

#[test]
fn kept_encrypters_encrypt_to_the_key_they_were_built_from() {
    // Two recipients under one kid, in turn: each JWE opens with its own key only.
    let (a, b) = (
        decryption(2).with_kid("shared"),
        decryption(1).with_kid("shared"),
    );
    let (ja, jb) = (a.public_jwk().expect("jwk"), b.public_jwk().expect("jwk"));
    for _ in 0..3 {
        for alg in JweAlg::ALL {
            let to_a = encrypt_jwe(b"a", &ja, alg, JweEnc::ALL[0], None).expect("enc");
            let to_b = encrypt_jwe(b"b", &jb, alg, JweEnc::ALL[0], None).expect("enc");
            assert_eq!(
                decrypt_jwe(&to_a, &a, &[alg], &ALL_ENCS).expect("a").1,
                b"a"
            );
            assert_eq!(
                decrypt_jwe(&to_b, &b, &[alg], &ALL_ENCS).expect("b").1,
                b"b"
            );
            assert!(decrypt_jwe(&to_a, &b, &[alg], &ALL_ENCS).is_err());
            assert!(decrypt_jwe(&to_b, &a, &[alg], &ALL_ENCS).is_err());
        }
    }
}
