//! One honest-input-plus-one-edit unit test per rule code the RP can return: the tables run on
//! built honest inputs; the stages at the smallest level that decides them.

use super::*;
use crate::oidc::session::Session;
use crate::oidc::{resolve_refusal, RelyingParty, ResolveError};
use serde_json::json;
use spid_core::clock::FixedClock;
use spid_core::oidc::claims::at_hash;
use spid_core::oidc::jose::{encrypt_jwe, Jwks};
use std::sync::Arc;

const RP: &str = "http://rp.example/oidc/rp";
const OP: &str = "http://op.example/oidc/op";
/// A port nothing listens on: the request fails in transport.
const CLOSED: &str = "http://127.0.0.1:9";

fn rp() -> RelyingParty {
    let clock = Arc::new(FixedClock::new(spid_core::clock::now()));
    RelyingParty::new(RpConfig::new(RP, clock)).expect("rp")
}

/// The RP under the CIE reading (`Profile::cie`).
fn cie_rp() -> RelyingParty {
    let clock = Arc::new(FixedClock::new(spid_core::clock::now()));
    let mut cfg = RpConfig::new(RP, clock);
    cfg.profile = spid_core::oidc::Profile::cie();
    RelyingParty::new(cfg).expect("rp")
}

fn op() -> TrustedOp {
    TrustedOp {
        issuer: OP.into(),
        authorization_endpoint: format!("{OP}/authorization"),
        token_endpoint: format!("{CLOSED}/token"),
        userinfo_endpoint: format!("{CLOSED}/userinfo"),
        revocation_endpoint: None,
        introspection_endpoint: None,
        jwks: Jwks::default(),
        exp: i64::MAX,
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// An edit of an honest input and the rule that must refuse it.
type Case<I> = (Rule, fn(&mut I));

/// Runs `table` on `honest` (must pass) and on each edit (must be refused by its rule);
/// returns what went wrong.
fn judge<I: Clone>(
    name: &str,
    table: &[RuleFn<I>],
    honest: &I,
    cases: &[Case<I>],
    ctx: &Ctx<'_>,
) -> Vec<String> {
    let mut wrong = Vec::new();
    if let Err(r) = run(table, honest, ctx) {
        wrong.push(format!("{name}: honest input refused by {}", r.rule.code()));
    }
    for (rule, edit) in cases {
        let mut input = honest.clone();
        edit(&mut input);
        match run(table, &input, ctx) {
            Err(r) if r.rule == *rule => {}
            other => wrong.push(format!(
                "{name}: {}: got {:?}",
                rule.code(),
                other.err().map(|r| r.rule.code())
            )),
        }
    }
    wrong
}

fn set(v: &mut Value, k: &str, x: Value) {
    if let Some(m) = v.as_object_mut() {
        m.insert(k.into(), x);
    }
}

fn unset(v: &mut Value, k: &str) {
    if let Some(m) = v.as_object_mut() {
        m.remove(k);
    }
}

fn shift(v: &mut Value, k: &str, from: &str, by: i64) {
    let t = v[from].as_i64().unwrap_or_default() + by;
    set(v, k, json!(t));
}

// ---- honest inputs ----------------------------------------------------------------------

fn honest_authz() -> HashMap<String, String> {
    [("state", "s1"), ("code", "c1"), ("iss", OP)]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into()
}

fn honest_token() -> TokenReply {
    TokenReply::new(
        200,
        json!({"token_type": "Bearer", "access_token": "at1", "id_token": "it1",
               "refresh_token": "rt1", "expires_in": 60})
        .to_string(),
        Rule::OidcTokenRequestFailed,
    )
}

fn honest_id_token(ctx: &Ctx<'_>) -> IdTokenInput {
    let now = ctx.now.timestamp();
    IdTokenInput {
        alg: SigAlg::RS256,
        claims: json!({"iss": OP, "sub": "sub1", "aud": RP, "exp": now + 300, "iat": now,
                       "nbf": now, "nonce": "n1", "acr": SpidLevel::L2.uri(),
                       "at_hash": at_hash("at1", SigAlg::RS256), "jti": "j1"}),
        access_token: "at1".into(),
        nonce: "n1".into(),
        refreshed: false,
    }
}

fn honest_userinfo(ctx: &Ctx<'_>) -> UserinfoClaims {
    let now = ctx.now.timestamp();
    UserinfoClaims {
        claims: json!({"iss": OP, "aud": RP, "sub": "sub1", "iat": now, "exp": now + 300,
                       "fiscal_number": "TINIT-RSSMRA80A01H501U"}),
        sub: "sub1".into(),
    }
}

fn honest_introspection(ctx: &Ctx<'_>) -> Introspection {
    let now = ctx.now.timestamp();
    Introspection::new(
        200,
        json!({"active": true, "iss": OP, "client_id": RP, "aud": [RP], "sub": "sub1",
               "exp": now + 300, "acr": SpidLevel::L2.uri()})
        .to_string(),
        "sub1".into(),
    )
}

// ---- edits, one per rule (some rules more) -------------------------------------------------

const AUTHZ_CASES: &[Case<HashMap<String, String>>] = &[
    (Rule::OidcIssMismatch, |p| {
        p.insert("iss".into(), "http://other.example".into());
    }),
    (Rule::OidcErrorResponse, |p| {
        p.insert("error".into(), "access_denied".into());
    }),
    (Rule::OidcCodeMissing, |p| {
        p.remove("code");
    }),
    (Rule::OidcCodeMissing, |p| {
        p.insert("code".into(), String::new());
    }),
];

const TOKEN_CASES: &[Case<TokenReply>] = &[
    (Rule::OidcTokenRequestFailed, |t| t.status = 400),
    (Rule::OidcRefreshRequestFailed, |t| {
        t.status = 500;
        t.failed_rule = Rule::OidcRefreshRequestFailed;
    }),
    (Rule::OidcTokenResponseInvalid, |t| t.json = None),
    (Rule::OidcTokenResponseInvalid, |t| {
        if let Some(v) = t.json.as_mut() {
            set(v, "token_type", json!("DPoP"));
        }
    }),
    (Rule::OidcTokenResponseInvalid, |t| {
        if let Some(v) = t.json.as_mut() {
            unset(v, "access_token");
        }
    }),
    (Rule::OidcTokenResponseInvalid, |t| {
        if let Some(v) = t.json.as_mut() {
            set(v, "id_token", json!(7));
        }
    }),
];

const ROTATION_CASES: &[Case<Rotation>] = &[
    (Rule::OidcTokenResponseInvalid, |r| r.refresh_token = None),
    (Rule::OidcTokenResponseInvalid, |r| {
        r.refresh_token = Some(r.presented.clone());
    }),
];

const ID_TOKEN_CASES: &[Case<IdTokenInput>] = &[
    (Rule::OidcIdTokenSignature, |t| t.claims = json!(["iss"])),
    (Rule::OidcIdTokenClaimIss, |t| unset(&mut t.claims, "iss")),
    (Rule::OidcIdTokenIss, |t| {
        set(&mut t.claims, "iss", json!("http://other.example"));
    }),
    (Rule::OidcIdTokenClaimSub, |t| unset(&mut t.claims, "sub")),
    (Rule::OidcIdTokenClaimAud, |t| unset(&mut t.claims, "aud")),
    (Rule::OidcIdTokenAud, |t| {
        set(&mut t.claims, "aud", json!("http://other.example"));
    }),
    (Rule::OidcIdTokenClaimExp, |t| unset(&mut t.claims, "exp")),
    (Rule::OidcIdTokenExpired, |t| {
        shift(&mut t.claims, "exp", "iat", -3600);
    }),
    (Rule::OidcIdTokenClaimIat, |t| unset(&mut t.claims, "iat")),
    (Rule::OidcIdTokenClaimNbf, |t| {
        set(&mut t.claims, "nbf", json!("soon"));
    }),
    (Rule::OidcIdTokenNotYetValid, |t| {
        shift(&mut t.claims, "nbf", "iat", 3600);
    }),
    (Rule::OidcIdTokenClaimNonce, |t| {
        unset(&mut t.claims, "nonce")
    }),
    (Rule::OidcIdTokenNonce, |t| {
        set(&mut t.claims, "nonce", json!("n2"));
    }),
    (Rule::OidcIdTokenClaimAcr, |t| unset(&mut t.claims, "acr")),
    (Rule::OidcAcrUnknown, |t| {
        set(
            &mut t.claims,
            "acr",
            json!("https://www.spid.gov.it/SpidL9"),
        );
    }),
    (Rule::OidcIdTokenClaimAtHash, |t| {
        set(&mut t.claims, "at_hash", json!(7));
    }),
    (Rule::OidcIdTokenClaimJti, |t| {
        set(&mut t.claims, "jti", json!(7));
    }),
    (Rule::OidcIdTokenAtHash, |t| t.access_token = "at2".into()),
    (Rule::OidcAcrInsufficient, |t| {
        set(&mut t.claims, "acr", json!(SpidLevel::L1.uri()));
    }),
];

const REFRESH_SUB_CASES: &[Case<RefreshedSub>] = &[(Rule::OidcRefreshSubMismatch, |s| {
    s.refreshed = "sub2".into()
})];

const USERINFO_REPLY_CASES: &[Case<UserinfoReply>] = &[
    (Rule::OidcUserinfoRequestFailed, |u| u.status = 401),
    (Rule::OidcUserinfoNotEncrypted, |u| {
        u.content_type = Some("application/json".into());
    }),
    (Rule::OidcUserinfoNotEncrypted, |u| u.body = "a.b.c".into()),
];

const USERINFO_CASES: &[Case<UserinfoClaims>] = &[
    (Rule::OidcUserinfoClaims, |u| {
        set(&mut u.claims, "iss", json!("http://other.example"));
    }),
    (Rule::OidcUserinfoClaims, |u| {
        set(&mut u.claims, "aud", json!(["http://other.example"]));
    }),
    (Rule::OidcUserinfoClaims, |u| {
        shift(&mut u.claims, "exp", "iat", -3600);
    }),
    (Rule::OidcUserinfoSubMismatch, |u| {
        set(&mut u.claims, "sub", json!("sub2"));
    }),
];

const INTROSPECTION_CASES: &[Case<Introspection>] = &[
    (Rule::OidcIntrospectionRequestFailed, |i| i.status = 503),
    (Rule::OidcIntrospectionRequestFailed, |i| i.json = None),
    (Rule::OidcIntrospectionInactive, |i| {
        if let Some(v) = i.json.as_mut() {
            set(v, "active", json!(false));
        }
    }),
    (Rule::OidcIntrospectionClaims, |i| {
        if let Some(v) = i.json.as_mut() {
            set(v, "iss", json!("http://other.example"));
        }
    }),
    (Rule::OidcIntrospectionClaims, |i| {
        if let Some(v) = i.json.as_mut() {
            set(v, "client_id", json!("http://other.example"));
        }
    }),
    (Rule::OidcIntrospectionClaims, |i| {
        if let Some(v) = i.json.as_mut() {
            set(v, "aud", json!("http://other.example"));
        }
    }),
    (Rule::OidcIntrospectionClaims, |i| i.sub = "sub2".into()),
    (Rule::OidcIntrospectionClaims, |i| {
        if let Some(v) = i.json.as_mut() {
            set(v, "exp", json!(1));
        }
    }),
    (Rule::OidcAcrUnknown, |i| {
        if let Some(v) = i.json.as_mut() {
            set(v, "acr", json!("SpidL2"));
        }
    }),
    (Rule::OidcAcrInsufficient, |i| {
        if let Some(v) = i.json.as_mut() {
            set(v, "acr", json!(SpidLevel::L1.uri()));
        }
    }),
];

// ---- the CIE reading ----------------------------------------------------------------------

/// Authorization responses under CIE: `iss` required, on error responses too.
const CIE_AUTHZ_CASES: &[Case<HashMap<String, String>>] = &[
    (Rule::OidcIssMissing, |p| {
        p.remove("iss");
    }),
    (Rule::OidcErrorResponseIssMissing, |p| {
        p.remove("iss");
        p.remove("code");
        p.insert("error".into(), "access_denied".into());
    }),
    (Rule::OidcErrorResponse, |p| {
        p.remove("code");
        p.insert("error".into(), "access_denied".into());
    }),
];

/// The ID token as received under CIE (the RP declares ID-token encryption).
const CIE_ID_TOKEN_FORM_CASES: &[Case<ReceivedIdToken>] = &[(Rule::OidcIdTokenNotEncrypted, |t| {
    t.0 = "a.b.c".into();
})];

fn honest_released() -> Released {
    let m = |v: Value| v.as_object().cloned().unwrap_or_default();
    Released {
        id_token: m(json!({"given_name": "Mario", "family_name": "Rossi"})),
        userinfo: m(json!({"given_name": "Mario", "email": "mario@example.org"})),
    }
}

const RELEASED_CASES: &[Case<Released>] = &[(Rule::OidcClaimsMismatch, |r| {
    r.userinfo.insert("given_name".into(), json!("Luigi"));
})];

// ---- stages ------------------------------------------------------------------------------

/// The rule a stage refused with, if any.
fn stage_rule<T>(r: Result<T, Refusal>) -> Option<Rule> {
    r.err().map(|e| e.rule)
}

fn callback_params(state: Option<&str>) -> HashMap<String, String> {
    state
        .map(|s| ("state".to_string(), s.to_string()))
        .into_iter()
        .collect()
}

fn cookie(sid: &str) -> axum::http::HeaderMap {
    let mut h = axum::http::HeaderMap::new();
    if let Ok(v) = format!("{}={sid}", crate::oidc::RP_COOKIE).parse() {
        h.insert(axum::http::header::COOKIE, v);
    }
    h
}

/// A stage check: runs the stage on an edited input, returns the rule it refused with.
type StageCase = (Rule, fn() -> Option<Rule>);

/// A stage and the rule it refuses its edit with (the honest side is what the pipeline
/// runs next; each check also states it).
const STAGE_CASES: &[StageCase] = &[
    (Rule::OidcStateMissing, || {
        let rp = rp();
        stage_rule(block_on(
            rp.complete(&cookie("sid1"), &callback_params(None)),
        ))
    }),
    (Rule::OidcStateUnknown, || {
        let rp = rp();
        let p = callback_params(Some(&"x".repeat(43)));
        stage_rule(block_on(rp.complete(&cookie("sid1"), &p)))
    }),
    (Rule::OidcOpUnlisted, || {
        let e = ResolveError::Unknown {
            entity: OP.into(),
            anchor: "http://ta.example".into(),
        };
        Some(resolve_refusal(OP, &e).rule)
    }),
    (Rule::OidcOpFetchFailed, || {
        let e = ResolveError::Fetch {
            url: format!("{OP}/.well-known/openid-federation"),
            detail: "connection refused".into(),
        };
        Some(resolve_refusal(OP, &e).rule)
    }),
    (Rule::OidcOpUntrusted, || {
        let e = ResolveError::TrustMarkInactive {
            id: "tm".into(),
            sub: OP.into(),
        };
        Some(resolve_refusal(OP, &e).rule)
    }),
    (Rule::OidcTokenRequestFailed, || {
        let rp = rp();
        let grant = [("grant_type", "authorization_code"), ("code", "c1")];
        stage_rule(block_on(rp.token_request(
            &op(),
            &grant,
            Rule::OidcTokenRequestFailed,
        )))
    }),
    (Rule::OidcRefreshRequestFailed, || {
        let rp = rp();
        let grant = [("grant_type", "refresh_token"), ("refresh_token", "rt1")];
        stage_rule(block_on(rp.token_request(
            &op(),
            &grant,
            Rule::OidcRefreshRequestFailed,
        )))
    }),
    (Rule::OidcIdTokenSignature, || {
        let rp = rp();
        stage_rule(rp.check_id_token(&op(), "e30.e30.AAAA", "at1", "n1", false))
    }),
    (Rule::OidcIdTokenDecryption, || {
        let rp = cie_rp();
        stage_rule(rp.check_id_token(&op(), "e30.AAAA.AAAA.AAAA.AAAA", "at1", "n1", false))
    }),
    (Rule::OidcUserinfoRequestFailed, || {
        let rp = rp();
        stage_rule(block_on(rp.userinfo(&op(), "at1", "sub1")))
    }),
    (Rule::OidcUserinfoDecryption, || {
        let rp = rp();
        stage_rule(rp.open_userinfo(&op(), "e30.AAAA.AAAA.AAAA.AAAA"))
    }),
    (Rule::OidcUserinfoSignature, || {
        let rp = rp();
        let (alg, enc) = rp.0.cfg.userinfo_jwe;
        let key = rp.0.encryption_key.public_jwk().expect("enc key");
        let jwe = encrypt_jwe(b"not a JWS", &key, alg, enc, Some("JWT")).expect("jwe");
        stage_rule(rp.open_userinfo(&op(), &jwe))
    }),
    (Rule::OidcSessionMissing, || {
        let rp = rp();
        stage_rule(block_on(rp.introspect_session(Some("sid1"))))
    }),
    (Rule::OidcIntrospectionRequestFailed, || {
        // A trusted OP (cached) that publishes no introspection endpoint.
        let rp = rp();
        rp.0.ops
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(OP.into(), op());
        rp.remember_session(
            "sid1",
            Session {
                op: OP.into(),
                sub: "sub1".into(),
                nonce: "n1".into(),
                access_token: "at1".into(),
                refresh_token: None,
            },
        );
        stage_rule(block_on(rp.introspect_session(Some("sid1"))))
    }),
];

// ---- the tests ---------------------------------------------------------------------------

#[test]
fn each_table_rule_refuses_its_one_edit() {
    let rp = rp();
    let op = op();
    let ctx = rp.ctx(&op);
    let rotation = Rotation {
        refresh_token: Some("rt2".into()),
        presented: "rt1".into(),
    };
    let subs = RefreshedSub {
        login: "sub1".into(),
        refreshed: "sub1".into(),
    };
    let reply = UserinfoReply {
        status: 200,
        content_type: Some("application/jose; charset=utf-8".into()),
        body: "a.b.c.d.e\n".into(),
    };
    let mut wrong = Vec::new();
    wrong.extend(judge(
        "authz",
        AUTHZ_RULES,
        &honest_authz(),
        AUTHZ_CASES,
        &ctx,
    ));
    wrong.extend(judge(
        "token",
        TOKEN_RULES,
        &honest_token(),
        TOKEN_CASES,
        &ctx,
    ));
    wrong.extend(judge(
        "rotation",
        ROTATION_RULES,
        &rotation,
        ROTATION_CASES,
        &ctx,
    ));
    let id = honest_id_token(&ctx);
    wrong.extend(judge("id token", ID_TOKEN_RULES, &id, ID_TOKEN_CASES, &ctx));
    wrong.extend(judge(
        "refresh sub",
        REFRESH_SUB_RULES,
        &subs,
        REFRESH_SUB_CASES,
        &ctx,
    ));
    wrong.extend(judge(
        "userinfo reply",
        USERINFO_REPLY_RULES,
        &reply,
        USERINFO_REPLY_CASES,
        &ctx,
    ));
    let ui = honest_userinfo(&ctx);
    wrong.extend(judge("userinfo", USERINFO_RULES, &ui, USERINFO_CASES, &ctx));
    let intro = honest_introspection(&ctx);
    wrong.extend(judge(
        "introspection",
        INTROSPECTION_RULES,
        &intro,
        INTROSPECTION_CASES,
        &ctx,
    ));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn each_cie_rule_refuses_its_one_edit() {
    let rp = cie_rp();
    let op = op();
    let ctx = rp.ctx(&op);
    let mut wrong = judge(
        "cie authz",
        AUTHZ_RULES,
        &honest_authz(),
        CIE_AUTHZ_CASES,
        &ctx,
    );
    wrong.extend(judge(
        "cie id token form",
        ID_TOKEN_FORM_RULES,
        &ReceivedIdToken("h.k.iv.c.t".into()),
        CIE_ID_TOKEN_FORM_CASES,
        &ctx,
    ));
    wrong.extend(judge(
        "released",
        RELEASED_RULES,
        &honest_released(),
        RELEASED_CASES,
        &ctx,
    ));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn spid_and_cie_differ_where_the_profiles_say() {
    let (spid, cie) = (rp(), cie_rp());
    let op = op();
    let (s, c) = (spid.ctx(&op), cie.ctx(&op));
    // iss: optional for SPID, required for CIE.
    let mut p = honest_authz();
    p.remove("iss");
    assert!(run(AUTHZ_RULES, &p, &s).is_ok());
    assert!(run(AUTHZ_RULES, &p, &c).is_err());
    // A plain JWS ID token: SPID's form; refused where CIE encryption is declared.
    let plain = ReceivedIdToken("a.b.c".into());
    assert!(run(ID_TOKEN_FORM_RULES, &plain, &s).is_ok());
    assert!(run(ID_TOKEN_FORM_RULES, &plain, &c).is_err());
    // A refresh answer without id_token: refused for SPID, the CIE answer.
    let refresh = TokenReply::new(
        200,
        json!({"token_type": "Bearer", "access_token": "at2", "refresh_token": "rt2"}).to_string(),
        Rule::OidcRefreshRequestFailed,
    );
    assert_eq!(
        stage_rule(run(TOKEN_RULES, &refresh, &s)),
        Some(Rule::OidcTokenResponseInvalid)
    );
    assert!(run(TOKEN_RULES, &refresh, &c).is_ok());
    // ... but a login answer without id_token is refused under both.
    let login = TokenReply::new(200, refresh.body.clone(), Rule::OidcTokenRequestFailed);
    assert!(run(TOKEN_RULES, &login, &c).is_err());
    // Introspection: CIE answers active only.
    let only_active = Introspection::new(200, json!({"active": true}).to_string(), "sub1".into());
    assert_eq!(
        stage_rule(run(INTROSPECTION_RULES, &only_active, &s)),
        Some(Rule::OidcIntrospectionClaims)
    );
    assert!(run(INTROSPECTION_RULES, &only_active, &c).is_ok());
    // ... and a member it does send is still checked.
    let wrong_sub = Introspection::new(
        200,
        json!({"active": true, "sub": "sub2"}).to_string(),
        "sub1".into(),
    );
    assert!(run(INTROSPECTION_RULES, &wrong_sub, &c).is_err());
    // Scopes and metadata.
    assert_eq!(spid.config().scope(false), "openid");
    assert_eq!(
        cie.config().scope(true),
        "openid offline_access profile email"
    );
    assert!(spid
        .metadata()
        .get("id_token_encrypted_response_alg")
        .is_none());
    assert_eq!(
        cie.metadata()["id_token_encrypted_response_enc"],
        json!(cie.config().userinfo_jwe.1.name())
    );
    assert_eq!(cie.metadata()["application_type"], json!("web"));
    assert!(spid.metadata().get("application_type").is_none());
}

#[test]
fn a_nested_id_token_is_decrypted_then_verified() {
    use spid_core::oidc::jose::{sign_jws, SigningKey};
    let rp = cie_rp();
    let key = SigningKey::from_pem(include_bytes!("../../../../certs/idp.key.pem")).expect("key");
    let mut op = op();
    op.jwks = Jwks::new(vec![key.public_jwk().expect("jwk")]);
    let ctx = rp.ctx(&op);
    let claims = honest_id_token(&ctx).claims;
    let jws = sign_jws(&claims, &key, SigAlg::RS256, Some("JWT")).expect("jws");
    let (alg, enc) = rp.0.cfg.userinfo_jwe;
    let to_rp = rp.0.encryption_key.public_jwk().expect("enc key");
    let nested = encrypt_jwe(jws.as_bytes(), &to_rp, alg, enc, Some("JWT")).expect("jwe");
    let ok = rp.check_id_token(&op, &nested, "at1", "n1", false);
    assert_eq!(ok.map(|t| t.sub).ok().as_deref(), Some("sub1"));
    // No cty JWT: not a nested JWT.
    let bare = encrypt_jwe(jws.as_bytes(), &to_rp, alg, enc, None).expect("jwe");
    assert_eq!(
        stage_rule(rp.check_id_token(&op, &bare, "at1", "n1", false)),
        Some(Rule::OidcIdTokenDecryption)
    );
    // The plain JWS itself: refused before its signature is looked at.
    assert_eq!(
        stage_rule(rp.check_id_token(&op, &jws, "at1", "n1", false)),
        Some(Rule::OidcIdTokenNotEncrypted)
    );
}

#[test]
fn es256_id_tokens_pass_only_where_ec_keys_are_allowed() {
    use spid_core::oidc::jose::{sign_jws, SigningKey};
    let ec = SigningKey::generate_p256().expect("p256");
    let mut op = op();
    op.jwks = Jwks::new(vec![ec.public_jwk().expect("jwk")]);
    let (spid, cie) = (rp(), cie_rp());
    let mut claims = honest_id_token(&spid.ctx(&op)).claims;
    set(&mut claims, "at_hash", json!(at_hash("at1", SigAlg::ES256)));
    let jws = sign_jws(&claims, &ec, SigAlg::ES256, Some("JWT")).expect("es256");
    // SPID: RSA only.
    assert_eq!(
        stage_rule(spid.check_id_token(&op, &jws, "at1", "n1", false)),
        Some(Rule::OidcIdTokenSignature)
    );
    // CIE: an EC P-256 key of the OP's jwks (nested in the JWE the CIE RP requires).
    let (alg, enc) = cie.0.cfg.userinfo_jwe;
    let to_rp = cie.0.encryption_key.public_jwk().expect("enc key");
    let nested = encrypt_jwe(jws.as_bytes(), &to_rp, alg, enc, Some("JWT")).expect("jwe");
    let ok = cie.check_id_token(&op, &nested, "at1", "n1", false);
    assert_eq!(ok.map(|t| t.sub).ok().as_deref(), Some("sub1"));
}

#[test]
fn a_refreshed_id_token_may_omit_the_nonce_but_not_change_it() {
    let rp = rp();
    let op = op();
    let ctx = rp.ctx(&op);
    let mut t = honest_id_token(&ctx);
    t.refreshed = true;
    unset(&mut t.claims, "nonce");
    assert!(run(ID_TOKEN_RULES, &t, &ctx).is_ok());
    set(&mut t.claims, "nonce", json!("n2"));
    assert_eq!(
        stage_rule(run(ID_TOKEN_RULES, &t, &ctx)),
        Some(Rule::OidcIdTokenNonce)
    );
}

#[test]
fn an_introspection_without_exp_or_acr_passes() {
    let rp = rp();
    let op = op();
    let ctx = rp.ctx(&op);
    let mut i = honest_introspection(&ctx);
    if let Some(v) = i.json.as_mut() {
        unset(v, "exp");
        unset(v, "acr");
    }
    assert!(run(INTROSPECTION_RULES, &i, &ctx).is_ok());
    assert_eq!(i.acr(&ctx).ok(), Some(None));
}

#[test]
fn each_stage_refuses_its_one_edit() {
    let wrong: Vec<String> = STAGE_CASES
        .iter()
        .filter_map(|(rule, case)| match case() {
            Some(r) if r == *rule => None,
            other => Some(format!(
                "{}: got {:?}",
                rule.code(),
                other.map(|r| r.code())
            )),
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_session_store_is_consulted_before_anything_else() {
    // Honest side of the state stage: a state this session sent passes it (and the next
    // stage, the OP's trust chain, decides).
    let rp = rp();
    let url = rp.authorization_url(&op(), "sid1", false).expect("url");
    assert_eq!(rp.pending_logins(), 1);
    let request = url
        .query_pairs()
        .find(|(k, _)| k == "request")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let (_, claims) = spid_core::oidc::jose::decode_unverified(&request).expect("request");
    let p = callback_params(claims["state"].as_str());
    let r = stage_rule(block_on(rp.complete(&cookie("sid1"), &p)));
    assert!(
        matches!(r, Some(Rule::OidcOpUntrusted)),
        "a known state reaches the OP stage: {r:?}"
    );
}

fn table_codes() -> Vec<Rule> {
    fn codes<I>(t: &[RuleFn<I>]) -> impl Iterator<Item = Rule> + '_ {
        t.iter().flat_map(|(c, _)| c.iter().copied())
    }
    let mut all: Vec<Rule> = codes(AUTHZ_RULES)
        .chain(codes(ID_TOKEN_FORM_RULES))
        .chain(codes(RELEASED_RULES))
        .chain(codes(TOKEN_RULES))
        .chain(codes(ROTATION_RULES))
        .chain(codes(ID_TOKEN_RULES))
        .chain(codes(REFRESH_SUB_RULES))
        .chain(codes(USERINFO_REPLY_RULES))
        .chain(codes(USERINFO_RULES))
        .chain(codes(INTROSPECTION_RULES))
        .chain(STAGE_RULES.iter().copied())
        .collect();
    all.sort_by_key(|r| r.code());
    all.dedup();
    all
}

/// Every code the tables and stages name has a case, and every case names one of them.
#[test]
fn every_rp_rule_has_a_unit_test() {
    fn rules<I>(c: &[Case<I>]) -> impl Iterator<Item = Rule> + '_ {
        c.iter().map(|(r, _)| *r)
    }
    let tested: Vec<Rule> = rules(AUTHZ_CASES)
        .chain(rules(CIE_AUTHZ_CASES))
        .chain(rules(CIE_ID_TOKEN_FORM_CASES))
        .chain(rules(RELEASED_CASES))
        .chain(rules(TOKEN_CASES))
        .chain(rules(ROTATION_CASES))
        .chain(rules(ID_TOKEN_CASES))
        .chain(rules(REFRESH_SUB_CASES))
        .chain(rules(USERINFO_REPLY_CASES))
        .chain(rules(USERINFO_CASES))
        .chain(rules(INTROSPECTION_CASES))
        .chain(STAGE_CASES.iter().map(|(r, _)| *r))
        .collect();
    let codes = table_codes();
    let missing: Vec<&str> = codes
        .iter()
        .filter(|r| !tested.contains(r))
        .map(|r| r.code())
        .collect();
    assert!(missing.is_empty(), "rules without a unit test: {missing:?}");
    for r in tested {
        assert!(
            codes.contains(&r),
            "{} is tested but no table or stage returns it",
            r.code()
        );
    }
    // Every OIDC RP code of the catalogue is one the RP returns.
    let rp_codes: Vec<&str> = Rule::ALL
        .iter()
        .map(|r| r.code())
        .filter(|c| c.starts_with("oidc."))
        .filter(|c| !codes.iter().any(|r| r.code() == *c))
        .collect();
    assert!(
        rp_codes.is_empty(),
        "oidc.* codes no table or stage names: {rp_codes:?}"
    );
}
