//! The RP's judgement of an OIDC login, refresh and introspection: ordered tables of small
//! named rules, each with the [`Rule`] codes it may return.
//!
//! Order matters: the first failing entry is the one reported. The pipelines
//! ([`RelyingParty::complete`](super::RelyingParty::complete),
//! [`refresh_session`](super::RelyingParty::refresh_session),
//! [`introspect_session`](super::RelyingParty::introspect_session)) interleave the tables
//! with stages ([`STAGE_RULES`]): the session store, the OP's trust chain, transport, and
//! the JOSE signature and decryption steps.
//!
//! Login: `state` present and known (stages), the OP trusted (stage), [`AUTHZ_RULES`]; the
//! token request (transport stage), [`TOKEN_RULES`]; [`ID_TOKEN_FORM_RULES`], the ID token
//! decryption where the RP declared it (stage, CIE), its signature (stage),
//! [`ID_TOKEN_RULES`]; the userinfo request (transport stage), [`USERINFO_REPLY_RULES`],
//! decryption and inner signature (stages), [`USERINFO_RULES`]; [`RELEASED_RULES`] (claims
//! in both the ID token and userinfo).
//!
//! Refresh: the session (stage), the OP (stage), the token request, [`TOKEN_RULES`],
//! [`ROTATION_RULES`], the ID token as at login (none under CIE), [`REFRESH_SUB_RULES`].
//!
//! Introspection: the session and the OP (stages), the endpoint and transport (stage),
//! [`INTROSPECTION_RULES`].

use super::callback::Refusal;
use super::{RpConfig, TrustedOp};
use chrono::{DateTime, Utc};
use serde_json::Value;
use spid_core::oidc::claims::{validate_id_token_with, IdToken, IdTokenCheck, IdTokenError};
use spid_core::oidc::jose::{check_time_claims, SigAlg};
use spid_core::{Rule, SpidLevel};
use std::collections::HashMap;

/// The outcome of one rule.
pub type Check<T = ()> = Result<T, Refusal>;

/// A rule table entry: the codes the check may return and the check, over input `I`.
pub type RuleFn<I> = (&'static [Rule], fn(&I, &Ctx<'_>) -> Check);

/// What every rule may read besides its input: the RP's configuration, the OP the exchange
/// is with, and the current time.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The RP configuration.
    pub cfg: &'a RpConfig,
    /// The (trusted) OP.
    pub op: &'a TrustedOp,
    /// Now.
    pub now: DateTime<Utc>,
}

/// Runs `rules` in order on `input`; the first refusal decides.
pub fn run<I>(rules: &[RuleFn<I>], input: &I, ctx: &Ctx<'_>) -> Check {
    for (codes, check) in rules {
        if let Err(r) = check(input, ctx) {
            debug_assert!(codes.contains(&r.rule), "{:?} not in {codes:?}", r.rule);
            return Err(r);
        }
    }
    Ok(())
}

fn ensure(cond: bool, rule: Rule, detail: impl FnOnce() -> String) -> Check {
    if cond {
        Ok(())
    } else {
        Err(Refusal::new(rule, detail()))
    }
}

/// Codes decided by the pipelines' stages rather than by a table: the session store
/// (`state`, the logged-in session), the OP's trust chain, transport failures, the ID token
/// signature, and userinfo decryption and inner signature.
pub const STAGE_RULES: &[Rule] = &[
    Rule::OidcStateMissing,
    Rule::OidcStateUnknown,
    Rule::OidcOpUnlisted,
    Rule::OidcOpFetchFailed,
    Rule::OidcOpUntrusted,
    Rule::OidcTokenRequestFailed,
    Rule::OidcRefreshRequestFailed,
    Rule::OidcIdTokenSignature,
    Rule::OidcIdTokenDecryption,
    Rule::OidcUserinfoRequestFailed,
    Rule::OidcUserinfoDecryption,
    Rule::OidcUserinfoSignature,
    Rule::OidcSessionMissing,
    Rule::OidcIntrospectionRequestFailed,
];

/// The first characters of an answer, for a refusal's detail.
pub(crate) fn excerpt(s: &str) -> String {
    s.chars().take(200).collect()
}

// ---------------------------------------------------------------------------------------
// Authorization response.

/// Rules over the authorization response parameters (after `state`), in order.
pub const AUTHZ_RULES: &[RuleFn<HashMap<String, String>>] = &[
    (&[Rule::OidcIssMismatch], authz_iss),
    (
        &[Rule::OidcIssMissing, Rule::OidcErrorResponseIssMissing],
        authz_iss_required,
    ),
    (&[Rule::OidcErrorResponse], authz_no_error),
    (&[Rule::OidcCodeMissing], authz_code),
];

fn authz_iss(p: &HashMap<String, String>, ctx: &Ctx<'_>) -> Check {
    match p.get("iss") {
        Some(iss) => ensure(*iss == ctx.op.issuer, Rule::OidcIssMismatch, || {
            format!("iss {iss} is not {}", ctx.op.issuer)
        }),
        None => Ok(()),
    }
}

// RFC 9207: where the profile requires iss (CIE: on every response, errors included), a
// response without it may come from a mix-up and is refused before anything else is read.
fn authz_iss_required(p: &HashMap<String, String>, ctx: &Ctx<'_>) -> Check {
    if p.contains_key("iss") {
        return Ok(());
    }
    let profile = &ctx.cfg.profile;
    if p.contains_key("error") {
        ensure(
            !profile.authz_error_iss_required,
            Rule::OidcErrorResponseIssMissing,
            || "the error response carries no iss".into(),
        )
    } else {
        ensure(
            !profile.authz_response_iss_required,
            Rule::OidcIssMissing,
            || "the authorization response carries no iss".into(),
        )
    }
}

fn authz_no_error(p: &HashMap<String, String>, _: &Ctx<'_>) -> Check {
    match p.get("error") {
        Some(error) => {
            let desc = p.get("error_description").cloned().unwrap_or_default();
            Err(Refusal::new(
                Rule::OidcErrorResponse,
                format!("{error}: {desc}"),
            ))
        }
        None => Ok(()),
    }
}

fn authz_code(p: &HashMap<String, String>, _: &Ctx<'_>) -> Check {
    ensure(
        p.get("code").is_some_and(|c| !c.is_empty()),
        Rule::OidcCodeMissing,
        || "no code".into(),
    )
}

// ---------------------------------------------------------------------------------------
// Token response.

/// A token endpoint answer (the request reached it).
#[derive(Debug, Clone)]
pub struct TokenReply {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: String,
    /// The body as JSON, when it is.
    pub json: Option<Value>,
    /// The rule for a non-200 answer: `oidc.token.request-failed` at login,
    /// `oidc.refresh.request-failed` for a refresh.
    pub failed_rule: Rule,
}

impl TokenReply {
    /// The reply `status`/`body`, judged with `failed_rule` for a non-200 status.
    pub fn new(status: u16, body: String, failed_rule: Rule) -> TokenReply {
        let json = serde_json::from_str(&body).ok();
        TokenReply {
            status,
            body,
            json,
            failed_rule,
        }
    }

    /// The answer to a refresh grant (judged with `oidc.refresh.request-failed`).
    pub fn is_refresh(&self) -> bool {
        self.failed_rule == Rule::OidcRefreshRequestFailed
    }

    /// The string member `k`.
    pub fn string(&self, k: &str) -> Option<String> {
        self.json
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}

/// Rules over a token endpoint answer, in order.
pub const TOKEN_RULES: &[RuleFn<TokenReply>] = &[
    (
        &[Rule::OidcTokenRequestFailed, Rule::OidcRefreshRequestFailed],
        token_status,
    ),
    (&[Rule::OidcTokenResponseInvalid], token_json),
    (&[Rule::OidcTokenResponseInvalid], token_bearer),
    (&[Rule::OidcTokenResponseInvalid], token_access_token),
    (&[Rule::OidcTokenResponseInvalid], token_id_token),
];

fn token_status(t: &TokenReply, _: &Ctx<'_>) -> Check {
    ensure(t.status == 200, t.failed_rule, || {
        format!("status {}: {}", t.status, excerpt(&t.body))
    })
}

fn token_json(t: &TokenReply, _: &Ctx<'_>) -> Check {
    ensure(t.json.is_some(), Rule::OidcTokenResponseInvalid, || {
        "not JSON".into()
    })
}

fn token_bearer(t: &TokenReply, _: &Ctx<'_>) -> Check {
    ensure(
        t.string("token_type")
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        Rule::OidcTokenResponseInvalid,
        || "token_type is not Bearer".into(),
    )
}

fn token_access_token(t: &TokenReply, _: &Ctx<'_>) -> Check {
    ensure(
        t.string("access_token").is_some(),
        Rule::OidcTokenResponseInvalid,
        || "no access_token".into(),
    )
}

fn token_id_token(t: &TokenReply, ctx: &Ctx<'_>) -> Check {
    // CIE: a refresh grant issues no new ID token; one that is sent is still judged.
    let absent = t.json.as_ref().is_some_and(|v| v.get("id_token").is_none());
    if t.is_refresh() && !ctx.cfg.profile.refresh_issues_id_token && absent {
        return Ok(());
    }
    ensure(
        t.string("id_token").is_some(),
        Rule::OidcTokenResponseInvalid,
        || "no id_token".into(),
    )
}

/// A refresh answer's refresh token and the one presented.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The (non-empty) refresh token of the answer, if any.
    pub refresh_token: Option<String>,
    /// The refresh token the RP presented.
    pub presented: String,
}

/// Rules over a refresh answer's refresh token, in order (before its ID token).
pub const ROTATION_RULES: &[RuleFn<Rotation>] = &[(&[Rule::OidcTokenResponseInvalid], rotated)];

fn rotated(r: &Rotation, _: &Ctx<'_>) -> Check {
    // SPID rotation: every refresh returns a new refresh token (SPID-OIDC refresh token).
    ensure(
        r.refresh_token.as_deref().is_some_and(|t| t != r.presented),
        Rule::OidcTokenResponseInvalid,
        || "the refresh answer carries no new refresh_token (no rotation)".into(),
    )
}

// ---------------------------------------------------------------------------------------
// ID token.

/// A signature-verified ID token and what it is checked against.
#[derive(Debug, Clone)]
pub struct IdTokenInput {
    /// The JWS `alg` (the `at_hash` hash).
    pub alg: SigAlg,
    /// The claims.
    pub claims: Value,
    /// The access token issued with it.
    pub access_token: String,
    /// The login's request nonce.
    pub nonce: String,
    /// It comes from a refresh (`nonce` may be absent).
    pub refreshed: bool,
}

/// The codes the claims check ([`validate_id_token_with`]) may return.
const ID_TOKEN_CLAIM_CODES: &[Rule] = &[
    Rule::OidcIdTokenSignature,
    Rule::OidcIdTokenClaimIss,
    Rule::OidcIdTokenIss,
    Rule::OidcIdTokenClaimSub,
    Rule::OidcIdTokenClaimAud,
    Rule::OidcIdTokenAud,
    Rule::OidcIdTokenClaimExp,
    Rule::OidcIdTokenExpired,
    Rule::OidcIdTokenClaimIat,
    Rule::OidcIdTokenClaimNbf,
    Rule::OidcIdTokenNotYetValid,
    Rule::OidcIdTokenClaimNonce,
    Rule::OidcIdTokenNonce,
    Rule::OidcIdTokenClaimAcr,
    Rule::OidcAcrUnknown,
    Rule::OidcIdTokenClaimAtHash,
    Rule::OidcIdTokenClaimJti,
];

/// Rules over a verified ID token, in order: claims, `at_hash`, level.
pub const ID_TOKEN_RULES: &[RuleFn<IdTokenInput>] = &[
    (ID_TOKEN_CLAIM_CODES, id_token_claims),
    (
        &[Rule::OidcIdTokenAtHash, Rule::OidcIdTokenClaimAtHash],
        id_token_at_hash,
    ),
    (&[Rule::OidcAcrInsufficient], id_token_level),
];

fn refusal(e: IdTokenError) -> Refusal {
    Refusal::new(e.rule(), e.to_string())
}

/// The validated ID token of `t` (an error only when [`ID_TOKEN_RULES`]' claims rule
/// refuses).
pub(crate) fn id_token(t: &IdTokenInput, ctx: &Ctx<'_>) -> Check<IdToken> {
    let cfg = ctx.cfg;
    let check = IdTokenCheck {
        issuer: &ctx.op.issuer,
        client_id: &cfg.entity_id,
        nonce: &t.nonce,
        refreshed: t.refreshed,
        now: ctx.now,
        skew: cfg.profile.skew(),
    };
    validate_id_token_with(&t.claims, &check, &cfg.profile).map_err(refusal)
}

fn id_token_claims(t: &IdTokenInput, ctx: &Ctx<'_>) -> Check {
    id_token(t, ctx).map(|_| ())
}

fn id_token_at_hash(t: &IdTokenInput, ctx: &Ctx<'_>) -> Check {
    id_token(t, ctx)?
        .check_at_hash(&t.access_token, t.alg)
        .map_err(refusal)
}

fn id_token_level(t: &IdTokenInput, ctx: &Ctx<'_>) -> Check {
    id_token(t, ctx)?
        .check_level(ctx.cfg.min_level)
        .map(|_| ())
        .map_err(refusal)
}

/// The ID token as the token endpoint sent it (a JWS, or a JWE around one).
#[derive(Debug, Clone)]
pub struct ReceivedIdToken(pub String);

/// Rules over the ID token as received, before its signature, in order.
pub const ID_TOKEN_FORM_RULES: &[RuleFn<ReceivedIdToken>] =
    &[(&[Rule::OidcIdTokenNotEncrypted], id_token_encrypted)];

fn id_token_encrypted(t: &ReceivedIdToken, ctx: &Ctx<'_>) -> Check {
    // CIE: the RP declared id_token_encrypted_response_alg, so a plain JWS is refused.
    let parts = t.0.trim().split('.').count();
    ensure(
        !ctx.cfg.requires_encrypted_id_token() || parts == 5,
        Rule::OidcIdTokenNotEncrypted,
        || format!("the RP declares ID-token encryption, the ID token has {parts} parts"),
    )
}

/// Members of an ID token that are about the token, not the user.
pub const ID_TOKEN_PROTOCOL_CLAIMS: [&str; 14] = [
    "iss",
    "aud",
    "sub",
    "iat",
    "nbf",
    "exp",
    "jti",
    "acr",
    "at_hash",
    "nonce",
    "auth_time",
    "amr",
    "azp",
    "sid",
];

/// The user claims of the ID token and of userinfo (each without its protocol members).
#[derive(Debug, Clone)]
pub struct Released {
    /// The ID token's user claims.
    pub id_token: serde_json::Map<String, Value>,
    /// Userinfo's user claims.
    pub userinfo: serde_json::Map<String, Value>,
}

/// Rules over the claims released in both places, in order.
pub const RELEASED_RULES: &[RuleFn<Released>] = &[(&[Rule::OidcClaimsMismatch], claims_agree)];

fn claims_agree(r: &Released, _: &Ctx<'_>) -> Check {
    // CIE releases claims in the ID token and in userinfo: one user, one value each.
    match r
        .id_token
        .iter()
        .find(|(k, v)| r.userinfo.get(*k).is_some_and(|u| u != *v))
    {
        Some((k, _)) => Err(Refusal::new(
            Rule::OidcClaimsMismatch,
            format!("{k} differs between the ID token and userinfo"),
        )),
        None => Ok(()),
    }
}

/// The login's subject and the refreshed ID token's.
#[derive(Debug, Clone)]
pub struct RefreshedSub {
    /// The login's `sub`.
    pub login: String,
    /// The refreshed ID token's `sub`.
    pub refreshed: String,
}

/// Rules over a refreshed ID token's subject, in order.
pub const REFRESH_SUB_RULES: &[RuleFn<RefreshedSub>] =
    &[(&[Rule::OidcRefreshSubMismatch], refresh_same_sub)];

fn refresh_same_sub(s: &RefreshedSub, _: &Ctx<'_>) -> Check {
    ensure(s.login == s.refreshed, Rule::OidcRefreshSubMismatch, || {
        "the refreshed ID token names another sub than the login".into()
    })
}

// ---------------------------------------------------------------------------------------
// Userinfo.

/// A userinfo endpoint answer (the request reached it).
#[derive(Debug, Clone)]
pub struct UserinfoReply {
    /// HTTP status.
    pub status: u16,
    /// Content-Type, if any.
    pub content_type: Option<String>,
    /// Body.
    pub body: String,
}

impl UserinfoReply {
    fn content_type(&self) -> String {
        self.content_type
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase()
    }
}

/// Rules over a userinfo answer before decryption, in order.
pub const USERINFO_REPLY_RULES: &[RuleFn<UserinfoReply>] = &[
    (&[Rule::OidcUserinfoRequestFailed], userinfo_status),
    (&[Rule::OidcUserinfoNotEncrypted], userinfo_jwe),
];

fn userinfo_status(u: &UserinfoReply, _: &Ctx<'_>) -> Check {
    ensure(u.status == 200, Rule::OidcUserinfoRequestFailed, || {
        format!("status {}: {}", u.status, excerpt(&u.body))
    })
}

fn userinfo_jwe(u: &UserinfoReply, _: &Ctx<'_>) -> Check {
    let ct = u.content_type();
    let jose_type = ["application/jwt", "application/jose"]
        .iter()
        .any(|t| ct.split(';').next().map(str::trim) == Some(*t));
    let parts = u.body.trim().split('.').count();
    ensure(
        jose_type && parts == 5,
        Rule::OidcUserinfoNotEncrypted,
        || format!("content type {ct:?}, {parts} parts"),
    )
}

/// The claims of a decrypted, signature-verified userinfo answer and the ID token's `sub`.
#[derive(Debug, Clone)]
pub struct UserinfoClaims {
    /// The inner JWS claims.
    pub claims: Value,
    /// The ID token's `sub`.
    pub sub: String,
}

impl UserinfoClaims {
    fn s(&self, k: &str) -> Option<&str> {
        self.claims.get(k).and_then(Value::as_str)
    }
}

/// Rules over the userinfo claims, in order.
pub const USERINFO_RULES: &[RuleFn<UserinfoClaims>] = &[
    (&[Rule::OidcUserinfoClaims], userinfo_iss),
    (&[Rule::OidcUserinfoClaims], userinfo_aud),
    (&[Rule::OidcUserinfoClaims], userinfo_times),
    (&[Rule::OidcUserinfoSubMismatch], userinfo_sub),
];

// django-sdk profile: the inner JWS carries no iss/aud/exp; whatever is present is still
// checked.
fn userinfo_iss(u: &UserinfoClaims, ctx: &Ctx<'_>) -> Check {
    let strict = ctx.cfg.profile.userinfo_require_iss_aud_exp;
    ensure(
        !(strict || u.claims.get("iss").is_some()) || u.s("iss") == Some(ctx.op.issuer.as_str()),
        Rule::OidcUserinfoClaims,
        || "iss is not the OP".into(),
    )
}

fn userinfo_aud(u: &UserinfoClaims, ctx: &Ctx<'_>) -> Check {
    let strict = ctx.cfg.profile.userinfo_require_iss_aud_exp;
    let id = &ctx.cfg.entity_id;
    let aud_ok = match u.claims.get("aud") {
        Some(Value::String(a)) => a == id,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(id)),
        None => !strict,
        _ => false,
    };
    ensure(aud_ok, Rule::OidcUserinfoClaims, || {
        "aud is not this RP".into()
    })
}

fn userinfo_times(u: &UserinfoClaims, ctx: &Ctx<'_>) -> Check {
    let p = &ctx.cfg.profile;
    check_time_claims(&u.claims, ctx.now, p.skew(), p.userinfo_require_iss_aud_exp)
        .map_err(|e| Refusal::new(Rule::OidcUserinfoClaims, e.to_string()))
}

fn userinfo_sub(u: &UserinfoClaims, _: &Ctx<'_>) -> Check {
    ensure(
        u.s("sub") == Some(u.sub.as_str()),
        Rule::OidcUserinfoSubMismatch,
        || "userinfo sub differs from the ID token sub".into(),
    )
}

// ---------------------------------------------------------------------------------------
// Introspection.

/// An introspection endpoint answer (the request reached it) and the login's `sub`.
#[derive(Debug, Clone)]
pub struct Introspection {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: String,
    /// The body, when a JSON object.
    pub json: Option<Value>,
    /// The login's `sub`.
    pub sub: String,
}

impl Introspection {
    /// The answer `status`/`body` about the session of `sub`.
    pub fn new(status: u16, body: String, sub: String) -> Introspection {
        let json = serde_json::from_str(&body).ok().filter(Value::is_object);
        Introspection {
            status,
            body,
            json,
            sub,
        }
    }

    fn get(&self, k: &str) -> Option<&Value> {
        self.json.as_ref().and_then(|v| v.get(k))
    }

    fn s(&self, k: &str) -> Option<&str> {
        self.get(k).and_then(Value::as_str)
    }

    /// The SPID level of the `acr` member, when present (an error only when
    /// [`INTROSPECTION_RULES`] refuse it).
    pub fn acr(&self, ctx: &Ctx<'_>) -> Check<Option<SpidLevel>> {
        let Some(acr) = self.get("acr") else {
            return Ok(None);
        };
        let uri = acr.as_str().unwrap_or_default();
        let level = SpidLevel::from_uri(uri).ok_or_else(|| {
            Refusal::new(Rule::OidcAcrUnknown, format!("introspection acr {acr}"))
        })?;
        let min = ctx.cfg.min_level;
        ensure(level >= min, Rule::OidcAcrInsufficient, || {
            format!(
                "introspection acr {} below the required {}",
                level.uri(),
                min.uri()
            )
        })?;
        Ok(Some(level))
    }
}

/// Rules over an introspection answer, in order.
pub const INTROSPECTION_RULES: &[RuleFn<Introspection>] = &[
    (
        &[Rule::OidcIntrospectionRequestFailed],
        introspection_status,
    ),
    (
        &[Rule::OidcIntrospectionRequestFailed],
        introspection_object,
    ),
    (&[Rule::OidcIntrospectionInactive], introspection_active),
    (&[Rule::OidcIntrospectionClaims], introspection_iss),
    (&[Rule::OidcIntrospectionClaims], introspection_client_id),
    (&[Rule::OidcIntrospectionClaims], introspection_aud),
    (&[Rule::OidcIntrospectionClaims], introspection_sub),
    (&[Rule::OidcIntrospectionClaims], introspection_exp),
    (
        &[Rule::OidcAcrUnknown, Rule::OidcAcrInsufficient],
        introspection_acr,
    ),
];

fn introspection_status(i: &Introspection, _: &Ctx<'_>) -> Check {
    ensure(
        i.status == 200,
        Rule::OidcIntrospectionRequestFailed,
        || format!("status {}: {}", i.status, excerpt(&i.body)),
    )
}

fn introspection_object(i: &Introspection, _: &Ctx<'_>) -> Check {
    ensure(
        i.json.is_some(),
        Rule::OidcIntrospectionRequestFailed,
        || "the answer is not a JSON object".into(),
    )
}

fn introspection_active(i: &Introspection, _: &Ctx<'_>) -> Check {
    ensure(
        i.get("active") == Some(&Value::Bool(true)),
        Rule::OidcIntrospectionInactive,
        || "the OP reports the access token inactive".into(),
    )
}

/// Whether the profile's introspection answer must carry `k` (SPID: every member; CIE:
/// `active` only). A member that is not required is still checked when present.
fn optional(i: &Introspection, ctx: &Ctx<'_>, k: &str) -> bool {
    i.get(k).is_none() && !ctx.cfg.profile.introspection_fields.iter().any(|f| f == k)
}

fn introspection_iss(i: &Introspection, ctx: &Ctx<'_>) -> Check {
    if optional(i, ctx, "iss") {
        return Ok(());
    }
    ensure(
        i.s("iss") == Some(ctx.op.issuer.as_str()),
        Rule::OidcIntrospectionClaims,
        || "iss is not the OP".into(),
    )
}

fn introspection_client_id(i: &Introspection, ctx: &Ctx<'_>) -> Check {
    if optional(i, ctx, "client_id") {
        return Ok(());
    }
    ensure(
        i.s("client_id") == Some(ctx.cfg.entity_id.as_str()),
        Rule::OidcIntrospectionClaims,
        || "client_id is not this RP".into(),
    )
}

fn introspection_aud(i: &Introspection, ctx: &Ctx<'_>) -> Check {
    if optional(i, ctx, "aud") {
        return Ok(());
    }
    let ours = |a: &str| a == ctx.cfg.entity_id || a == ctx.op.userinfo_endpoint;
    let aud_ok = match i.get("aud") {
        Some(Value::String(a)) => ours(a),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).any(ours),
        _ => false,
    };
    ensure(aud_ok, Rule::OidcIntrospectionClaims, || {
        "aud is neither this RP nor the OP's userinfo endpoint".into()
    })
}

fn introspection_sub(i: &Introspection, ctx: &Ctx<'_>) -> Check {
    if optional(i, ctx, "sub") {
        return Ok(());
    }
    ensure(
        i.s("sub") == Some(i.sub.as_str()),
        Rule::OidcIntrospectionClaims,
        || "sub differs from the login's".into(),
    )
}

fn introspection_exp(i: &Introspection, ctx: &Ctx<'_>) -> Check {
    let bad = |d: &str| Refusal::new(Rule::OidcIntrospectionClaims, d);
    match i.get("exp") {
        None => Ok(()),
        Some(exp) => {
            let exp = exp.as_i64().ok_or_else(|| bad("exp is not a number"))?;
            let skew = ctx.cfg.profile.skew().num_seconds().abs();
            if ctx.now.timestamp() >= exp.saturating_add(skew) {
                Err(bad("exp is past"))
            } else {
                Ok(())
            }
        }
    }
}

fn introspection_acr(i: &Introspection, ctx: &Ctx<'_>) -> Check {
    i.acr(ctx).map(|_| ())
}

#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;
