//! Seed corpora for the cargo-fuzz targets in `fuzz/`: real messages made the way the harness
//! makes them — the honest signed Response and one crafted Response per SAML catalogue case
//! (its fault plan carried out as the IdP does), our SP and IdP metadata, HTTP-Redirect query
//! strings, ID tokens, a JWKS, a sealed userinfo and the federation's entity statements.
//!
//! `SPID_FUZZ_CORPUS=fuzz/corpus cargo test -p spid-harness --test fuzz_seeds` writes them to
//! `fuzz/corpus/<target>/` (what `scripts/fuzz-smoke.sh` does); without the variable the test
//! only checks that every seed family is produced. The names, instants and keys match
//! `fuzz/src/lib.rs`, so seeded signatures verify inside the targets.

use chrono::{DateTime, TimeZone, Utc};
use spid_core::oidc::jose::{self, JweAlg, JweEnc, SigAlg, SigningKey};
use spid_core::saml::authn_request::AuthnRequest;
use spid_core::saml::binding::{self, MessageParam};
use spid_core::saml::dsig::Credential;
use spid_core::saml::metadata;
use spid_core::saml::response::{sign_response_with, LoginParties, ResponseModel, SignParts};
use spid_core::saml::xml::{self, Limits};
use spid_core::{Comparison, SpidLevel};
use spid_idp::faults::{self, KeyInfoCert, MutationCtx, Stage};
use std::collections::BTreeMap;
use std::path::PathBuf;

const IDP: &str = "http://idp.test";
const SP: &str = "http://sp.test/metadata";
const ACS: &str = "http://sp.test/acs";
const REQ: &str = "_req1";

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_772_359_200, 0).single().unwrap()
}

fn cred(stem: &str) -> Credential {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../certs");
    Credential::load(&dir, stem).unwrap()
}

fn pem(stem: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../certs/{stem}.key.pem")),
    )
    .unwrap()
}

fn honest_model() -> ResponseModel {
    ResponseModel::fixture(
        &LoginParties {
            idp: IDP,
            sp: SP,
            acs: ACS,
            request_id: REQ,
        },
        now(),
    )
}

/// Target name → (file name → bytes).
type Seeds = BTreeMap<&'static str, BTreeMap<String, Vec<u8>>>;

fn put(s: &mut Seeds, target: &'static str, name: impl Into<String>, bytes: impl Into<Vec<u8>>) {
    s.entry(target)
        .or_default()
        .insert(name.into(), bytes.into());
}

/// The honest Response and one per catalogue case, carried out as the IdP's `send` does.
fn responses(idp: &Credential, foreign: &Credential, idp_md: &str) -> Vec<(String, String)> {
    let foreign_el = xml::parse(
        idp_md,
        &Limits {
            max_bytes: 1 << 20,
            ..Limits::default()
        },
    )
    .ok();
    let ctx = MutationCtx {
        now: now(),
        signed_foreign: foreign_el.as_ref(),
    };
    let mut out = Vec::new();
    let honest = sign_response_with(
        honest_model().to_element(),
        idp,
        SignParts::BOTH,
        Some(&idp.cert_base64()),
        Default::default(),
    )
    .unwrap()
    .to_xml();
    out.push(("honest".to_string(), honest));
    for case in spid_harness::catalogue::embedded("saml").unwrap() {
        let plan = &case.plan;
        let mut el = honest_model().to_element();
        if faults::apply_stage(&mut el, Stage::PreSign, &plan.pre_sign, &ctx).is_err() {
            continue;
        }
        let c = match plan.sign.key {
            faults::SigningKey::Idp => idp,
            faults::SigningKey::Foreign => foreign,
        };
        let keyinfo = match plan.sign.keyinfo {
            KeyInfoCert::Signer => Some(c.cert_base64()),
            KeyInfoCert::Idp => Some(idp.cert_base64()),
            KeyInfoCert::Foreign => Some(foreign.cert_base64()),
            KeyInfoCert::None => None,
        };
        let parts = SignParts {
            assertion: plan.sign.assertion,
            response: plan.sign.response,
        };
        let mut el = if parts == SignParts::NONE {
            el
        } else {
            match sign_response_with(el, c, parts, keyinfo.as_deref(), plan.sign.algorithms()) {
                Ok(e) => e,
                Err(_) => continue,
            }
        };
        if faults::apply_stage(&mut el, Stage::PostSign, &plan.post_sign, &ctx).is_err() {
            continue;
        }
        if let Ok(x) = faults::apply_raw(el.to_xml(), &plan.raw) {
            out.push((case.id.clone(), x));
        }
    }
    out
}

fn seeds() -> Seeds {
    let (idp, sp, foreign) = (cred("idp"), cred("sp"), cred("foreign"));
    let mut s = Seeds::new();
    let idp_md = metadata::build_idp(
        &metadata::IdpMetadataConfig {
            entity_id: IDP.into(),
            sso_url: format!("{IDP}/sso"),
            slo_url: format!("{IDP}/slo"),
            organization_name: "Fuzz IdP".into(),
            organization_url: IDP.into(),
        },
        &idp,
    )
    .unwrap();
    let sp_md = metadata::build_sp(
        &metadata::SpMetadataConfig {
            entity_id: SP.into(),
            acs_url: ACS.into(),
            slo_url: "http://sp.test/slo".into(),
            attributes: vec!["spidCode".into(), "fiscalNumber".into()],
            service_name: "Servizio di prova".into(),
            organization_name: "Fuzz SP".into(),
            organization_display_name: "Fuzz SP".into(),
            organization_url: "http://sp.test/".into(),
            contact_email: "spid-tech@example.org".into(),
            contact_phone: Some("+390600000000".into()),
            kind: metadata::SpKind::Public {
                ipa_code: "c_h501".into(),
            },
        },
        &sp,
    )
    .unwrap();
    for (name, md) in [("idp", &idp_md), ("sp", &sp_md)] {
        put(
            &mut s,
            "metadata_parse",
            format!("{name}.xml"),
            md.as_bytes(),
        );
        put(
            &mut s,
            "xml_parse",
            format!("metadata-{name}.xml"),
            md.as_bytes(),
        );
    }
    for (name, x) in responses(&idp, &foreign, &idp_md) {
        put(
            &mut s,
            "xml_parse",
            format!("response-{name}.xml"),
            x.as_bytes(),
        );
        put(
            &mut s,
            "post_decode",
            format!("b64-{name}"),
            binding::encode_post(&x),
        );
        put(&mut s, "post_decode", format!("xml-{name}"), x.as_bytes());
    }
    // HTTP-Redirect: our SP's AuthnRequest, signed and not, with and without RelayState.
    let req = AuthnRequest::spid(
        SP,
        &format!("{IDP}/sso"),
        now(),
        SpidLevel::L2,
        Comparison::Minimum,
        0,
        0,
    )
    .to_element()
    .to_xml();
    put(&mut s, "xml_parse", "authn-request.xml", req.as_bytes());
    let endpoint = url::Url::parse(&format!("{IDP}/sso")).unwrap();
    for (name, relay, signed) in [
        ("signed-relay", Some("state-1"), true),
        ("signed", None, true),
        ("unsigned", Some("s"), false),
    ] {
        let alg =
            binding::SigAlg::from_uri("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256").unwrap();
        let u = binding::encode_redirect(
            &endpoint,
            MessageParam::SamlRequest,
            &req,
            relay,
            signed.then_some((&sp.key, alg)),
        )
        .unwrap();
        put(
            &mut s,
            "redirect_decode",
            name,
            u.query().unwrap_or_default(),
        );
    }
    // OIDC: ID tokens of the OP (the IdP key), claims, JWKS, a sealed userinfo.
    let op = SigningKey::from_pem(&pem("idp")).unwrap();
    let t = now().timestamp();
    let claims = serde_json::json!({
        "iss": "http://127.0.0.1:1/oidc/op", "sub": "pairwise-sub",
        "aud": "http://127.0.0.1:2/oidc/rp", "acr": SpidLevel::L2.uri(),
        "at_hash": "x", "nonce": "n".repeat(43), "iat": t, "nbf": t, "exp": t + 300,
        "jti": "j".repeat(36),
    });
    let mut variants = vec![("honest", claims.clone())];
    let mut v = claims.clone();
    v["aud"] = serde_json::json!(["http://127.0.0.1:2/oidc/rp", "other"]);
    variants.push(("aud-list", v));
    let mut v = claims.clone();
    v["exp"] = serde_json::json!(t - 3600);
    variants.push(("expired", v));
    let mut v = claims.clone();
    v.as_object_mut().unwrap().remove("nonce");
    variants.push(("no-nonce", v));
    for (name, c) in &variants {
        let tok = jose::sign_jws(c, &op, SigAlg::RS256, Some("JWT")).unwrap();
        put(
            &mut s,
            "jose_claims",
            format!("jws-{name}"),
            [b"\0".as_slice(), tok.as_bytes()].concat(),
        );
        put(
            &mut s,
            "jose_claims",
            format!("claims-{name}"),
            [b"\x01".as_slice(), c.to_string().as_bytes()].concat(),
        );
    }
    let jwks = jose::Jwks::new(vec![op.public_jwk().unwrap()]).to_json();
    put(
        &mut s,
        "jose_claims",
        "jwks",
        [b"\x02".as_slice(), jwks.as_bytes()].concat(),
    );
    let rp = jose::DecryptionKey::from_pem(&pem("sp")).unwrap();
    let sealed = jose::sign_and_encrypt(
        &claims,
        &op,
        SigAlg::RS256,
        &rp.public_jwk().unwrap(),
        JweAlg::RsaOaep256,
        JweEnc::A256CbcHs512,
    )
    .unwrap();
    put(
        &mut s,
        "jose_claims",
        "jwe",
        [b"\x03".as_slice(), sealed.as_bytes()].concat(),
    );
    // Structure-aware targets start from the honest plan (all-zero input) and a few others.
    for t in ["sp_validate", "federation"] {
        put(&mut s, t, "zero", vec![0u8; 64]);
        put(&mut s, t, "ones", vec![1u8; 64]);
        put(&mut s, t, "mixed", (0..=255u8).collect::<Vec<_>>());
    }
    s
}

#[test]
fn fuzz_seeds_cover_every_target() {
    let s = seeds();
    for t in [
        "xml_parse",
        "redirect_decode",
        "post_decode",
        "sp_validate",
        "metadata_parse",
        "jose_claims",
        "federation",
    ] {
        assert!(s.get(t).is_some_and(|m| !m.is_empty()), "no seeds for {t}");
    }
    // The honest Response plus most catalogue cases.
    let crafted = s["xml_parse"]
        .keys()
        .filter(|k| k.starts_with("response-"))
        .count();
    assert!(crafted > 20, "only {crafted} Responses");
    if let Some(dir) = std::env::var_os("SPID_FUZZ_CORPUS") {
        let dir = PathBuf::from(dir);
        for (target, files) in &s {
            let d = dir.join(target);
            std::fs::create_dir_all(&d).unwrap();
            for (name, bytes) in files {
                std::fs::write(d.join(name), bytes).unwrap();
            }
        }
    }
}
