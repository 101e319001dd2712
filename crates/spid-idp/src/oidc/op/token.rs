//! `/token`: `private_key_jwt` client authentication, the single-use code, PKCE, and the
//! signed access and ID tokens.

use super::{bounded_insert, lock, Client, CodeGrant, OpenIdProvider, TokenGrant, CODE_TTL_SECS};
use crate::oidc::{json, json_error, with_rule};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use spid_core::oidc::claims::at_hash;
use spid_core::oidc::jose::{
    sign_jws, verify_jwt, JoseError, JweAlg, JweEnc, Jwk, Jwks, JwsHeader, KeyUse,
};
use spid_core::oidc::pkce::{valid_verifier, verify_s256};
use spid_core::oidc::plan::{EncryptError, JwtPlan, PlanMiss, Recipient, SignError, Transport};
use spid_core::Rule;
use std::collections::HashMap;

/// The only client assertion type SPID uses.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Why a token request was refused; [`TokenRefusal::error`] is the OAuth error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// `grant_type` is not `authorization_code`.
    #[error("unsupported grant_type")]
    UnsupportedGrantType,
    /// A required parameter is missing or malformed.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Client authentication failed: which `private_key_jwt` check, and what was found.
    #[error("invalid client: {1}")]
    InvalidClient(AssertionFault, String),
    /// The client does not resolve through the trust anchor.
    #[error("invalid client: {0}")]
    UntrustedClient(String),
    /// The code is unknown, already used, expired or another client's.
    #[error("invalid grant: {0}")]
    Code(String),
    /// `redirect_uri` differs from the authorization request's.
    #[error("invalid grant: redirect_uri does not match")]
    RedirectUri,
    /// `code_verifier` malformed or not matching the challenge.
    #[error("invalid grant: {0}")]
    Pkce(String),
    /// Any other invalid grant (refresh token unknown, rotated, another client's).
    #[error("invalid grant: {0}")]
    InvalidGrant(String),
    /// The fault plan missed its target (answered as a plan error, not a refusal).
    #[error("{0}")]
    Plan(PlanMiss),
    /// The fault plan replaces the answer.
    #[error("planned answer (HTTP {})", .0.status)]
    Planned(Transport),
}

impl TokenRefusal {
    /// The OAuth error code.
    pub fn error(&self) -> &'static str {
        match self {
            TokenRefusal::UnsupportedGrantType => "unsupported_grant_type",
            TokenRefusal::InvalidRequest(_) => "invalid_request",
            TokenRefusal::InvalidClient(..) | TokenRefusal::UntrustedClient(_) => "invalid_client",
            TokenRefusal::Code(_)
            | TokenRefusal::RedirectUri
            | TokenRefusal::Pkce(_)
            | TokenRefusal::InvalidGrant(_) => "invalid_grant",
            TokenRefusal::Plan(_) | TokenRefusal::Planned(_) => "server_error",
        }
    }

    /// The rule that decided (sent as `X-SPID-Rule`).
    pub fn rule(&self) -> Rule {
        match self {
            TokenRefusal::UnsupportedGrantType => Rule::OpTokenGrantType,
            TokenRefusal::InvalidRequest(_) => Rule::OpTokenParameters,
            TokenRefusal::InvalidClient(fault, _) => fault.rule(),
            TokenRefusal::UntrustedClient(_) => Rule::OpTokenClientUntrusted,
            TokenRefusal::Code(_) => Rule::OpTokenCode,
            TokenRefusal::RedirectUri => Rule::OpTokenRedirectUri,
            TokenRefusal::Pkce(_) => Rule::OpTokenPkce,
            // Never sent: plan outcomes are answered by the handler, not as refusals.
            TokenRefusal::InvalidGrant(_) | TokenRefusal::Plan(_) | TokenRefusal::Planned(_) => {
                Rule::OpTokenGrant
            }
        }
    }

    /// The JSON error answer: 401 (or the profile's status) for client authentication,
    /// 400 otherwise, with the rule header.
    pub(crate) fn response(&self, invalid_client_status: u16) -> Response {
        let status = match self {
            TokenRefusal::InvalidClient(..) | TokenRefusal::UntrustedClient(_) => {
                StatusCode::from_u16(invalid_client_status).unwrap_or(StatusCode::UNAUTHORIZED)
            }
            _ => StatusCode::BAD_REQUEST,
        };
        with_rule(
            json_error(status, self.error(), &self.to_string()),
            self.rule(),
        )
    }
}

/// Which `private_key_jwt` check a client assertion failed; each has its own rule, the OAuth
/// error is `invalid_client` for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssertionFault {
    /// `client_assertion_type` is not jwt-bearer.
    Type,
    /// No `client_assertion`.
    Missing,
    /// Not a JWS signed with an allowed alg by a key of the client's jwks (`none`, HMAC,
    /// unknown key, bad signature, malformed).
    Signature,
    /// `iss` is not the `client_id`.
    Iss,
    /// `sub` is not the `client_id`.
    Sub,
    /// `aud` does not name the endpoint.
    Aud,
    /// `exp` absent, mistyped or past.
    Exp,
    /// `nbf` mistyped or in the future.
    Nbf,
    /// `iat` absent, mistyped or in the future.
    Iat,
    /// `jti` absent, not a string or shorter than 16 bytes.
    Jti,
}

impl AssertionFault {
    /// The rule for this check.
    pub fn rule(self) -> Rule {
        match self {
            AssertionFault::Type => Rule::OpTokenClientAssertionType,
            AssertionFault::Missing => Rule::OpTokenClientAssertionMissing,
            AssertionFault::Signature => Rule::OpTokenClientAssertionSignature,
            AssertionFault::Iss => Rule::OpTokenClientAssertionIss,
            AssertionFault::Sub => Rule::OpTokenClientAssertionSub,
            AssertionFault::Aud => Rule::OpTokenClientAssertionAud,
            AssertionFault::Exp => Rule::OpTokenClientAssertionExp,
            AssertionFault::Nbf => Rule::OpTokenClientAssertionNbf,
            AssertionFault::Iat => Rule::OpTokenClientAssertionIat,
            AssertionFault::Jti => Rule::OpTokenClientAssertionJti,
        }
    }

    /// The check a [`verify_jwt`] error failed: a time claim's, else the signature's.
    fn of_jose(e: &JoseError) -> AssertionFault {
        match e {
            JoseError::Expired { .. } => AssertionFault::Exp,
            JoseError::NotYetValid { .. } => AssertionFault::Nbf,
            JoseError::IssuedInFuture { .. } => AssertionFault::Iat,
            JoseError::MissingClaim(c) | JoseError::InvalidClaim(c) => match c.as_str() {
                "exp" => AssertionFault::Exp,
                "nbf" => AssertionFault::Nbf,
                "iat" => AssertionFault::Iat,
                _ => AssertionFault::Signature,
            },
            _ => AssertionFault::Signature,
        }
    }
}

fn param<'a>(f: &'a HashMap<String, String>, name: &str) -> Result<&'a str, TokenRefusal> {
    f.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| TokenRefusal::InvalidRequest(format!("{name} is required")))
}

/// The pairwise subject of `username` at `client_id`: SHA-256 of both, base64url.
pub fn pairwise_sub(username: &str, client_id: &str) -> String {
    let digest = openssl::sha::sha256(format!("{username}\u{0}{client_id}").as_bytes());
    spid_core::oidc::jose::b64url_encode(&digest)
}

/// A token check's verdict: nothing, or the refusal whose [`TokenRefusal::rule`] decided.
pub(crate) type TokenCheck = Result<(), TokenRefusal>;

/// What every token rule may read besides its input: the OP and the current time.
#[derive(Clone, Copy)]
pub(crate) struct TokenCtx<'a> {
    /// The OP (its configuration and profile).
    pub op: &'a OpenIdProvider,
    /// Now.
    pub now: DateTime<Utc>,
}

/// A token rule table entry: the codes the check may return and the check, over input `I`.
pub(crate) type TokenRule<I> = (&'static [Rule], fn(&I, &TokenCtx<'_>) -> TokenCheck);
/// An entry of [`EXCHANGE_RULES`] (any lifetime of its input).
pub(crate) type ExchangeRule = (
    &'static [Rule],
    fn(&Exchange<'_>, &TokenCtx<'_>) -> TokenCheck,
);
/// An entry of [`GRANT_RULES`] (any lifetime of its input).
pub(crate) type GrantRule = (
    &'static [Rule],
    fn(&Redeemed<'_>, &TokenCtx<'_>) -> TokenCheck,
);
/// An entry of [`ASSERTION_FORM_RULES`] (any lifetime of its input).
pub(crate) type AssertionFormRule = (
    &'static [Rule],
    fn(&AssertionForm<'_>, &TokenCtx<'_>) -> TokenCheck,
);
/// An entry of [`ASSERTION_CLAIM_RULES`] (any lifetime of its input).
pub(crate) type AssertionClaimRule = (
    &'static [Rule],
    fn(&AssertionClaims<'_>, &TokenCtx<'_>) -> TokenCheck,
);

/// Runs `rules` in order on `input`; the first refusal decides.
fn run<I>(rules: &[TokenRule<I>], input: &I, ctx: &TokenCtx<'_>) -> TokenCheck {
    for (codes, check) in rules {
        if let Err(r) = check(input, ctx) {
            debug_assert!(codes.contains(&r.rule()), "{:?} not in {codes:?}", r.rule());
            return Err(r);
        }
    }
    Ok(())
}

/// Every code a client assertion check may return, in the order they are checked.
pub const ASSERTION_CODES: &[Rule] = &[
    Rule::OpTokenClientAssertionType,
    Rule::OpTokenClientAssertionMissing,
    Rule::OpTokenClientAssertionSignature,
    Rule::OpTokenClientAssertionExp,
    Rule::OpTokenClientAssertionNbf,
    Rule::OpTokenClientAssertionIat,
    Rule::OpTokenClientAssertionIss,
    Rule::OpTokenClientAssertionSub,
    Rule::OpTokenClientAssertionAud,
    Rule::OpTokenClientAssertionJti,
];

/// A token request form with the client it names (already resolved through the trust
/// anchor).
pub(crate) struct Exchange<'a> {
    /// The form parameters (first value wins).
    pub form: &'a HashMap<String, String>,
    /// The client `client_id` names.
    pub client: &'a Client,
}

/// The authorization-code exchange's checks before the code is consumed, in order.
pub(crate) const EXCHANGE_RULES: &[ExchangeRule] = &[
    (&[Rule::OpTokenGrantType], grant_type),
    (&[Rule::OpTokenParameters], client_id_param),
    (ASSERTION_CODES, client_assertion),
    (&[Rule::OpTokenParameters], code_param),
];

/// Codes decided by stages rather than tables: consuming the code (unknown or used
/// already), and verifying the client assertion's signature and times.
pub const TOKEN_STAGE_RULES: &[Rule] = &[
    Rule::OpTokenCode,
    Rule::OpTokenClientAssertionSignature,
    Rule::OpTokenClientAssertionExp,
    Rule::OpTokenClientAssertionNbf,
    Rule::OpTokenClientAssertionIat,
];

/// Codes decided outside the code exchange: the token endpoint's method and client
/// resolution, and the refresh grant (refresh.rs) with the fault plan's token error.
pub const TOKEN_HANDLER_RULES: &[Rule] = &[
    Rule::OpTokenMethod,
    Rule::OpTokenClientUntrusted,
    Rule::OpTokenGrant,
];

fn grant_type(i: &Exchange<'_>, _: &TokenCtx<'_>) -> TokenCheck {
    if i.form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return Err(TokenRefusal::UnsupportedGrantType);
    }
    Ok(())
}

fn client_id_param(i: &Exchange<'_>, _: &TokenCtx<'_>) -> TokenCheck {
    param(i.form, "client_id").map(|_| ())
}

fn client_assertion(i: &Exchange<'_>, c: &TokenCtx<'_>) -> TokenCheck {
    let client_id = param(i.form, "client_id")?;
    c.op.authenticate(i.form, client_id, i.client, &c.op.0.cfg.endpoint("token"))
}

fn code_param(i: &Exchange<'_>, _: &TokenCtx<'_>) -> TokenCheck {
    param(i.form, "code").map(|_| ())
}

/// A consumed code and the form that redeems it.
pub(crate) struct Redeemed<'a> {
    /// The form parameters.
    pub form: &'a HashMap<String, String>,
    /// The `client_id` of the form.
    pub client_id: &'a str,
    /// What the code stood for.
    pub grant: &'a CodeGrant,
}

/// The checks of a consumed code against the form redeeming it, in order.
pub(crate) const GRANT_RULES: &[GrantRule] = &[
    (&[Rule::OpTokenCode], code_client),
    (&[Rule::OpTokenCode], code_fresh),
    (&[Rule::OpTokenRedirectUri], redirect_uri),
    (&[Rule::OpTokenPkce], verifier_format),
    (&[Rule::OpTokenPkce], verifier_match),
];

fn code_client(i: &Redeemed<'_>, _: &TokenCtx<'_>) -> TokenCheck {
    if i.grant.authz.client_id != i.client_id {
        return Err(TokenRefusal::Code("code issued to another client".into()));
    }
    Ok(())
}

fn code_fresh(i: &Redeemed<'_>, c: &TokenCtx<'_>) -> TokenCheck {
    if (c.now - i.grant.created).num_seconds() > CODE_TTL_SECS {
        return Err(TokenRefusal::Code("code expired".into()));
    }
    Ok(())
}

fn redirect_uri(i: &Redeemed<'_>, _: &TokenCtx<'_>) -> TokenCheck {
    if i.form.get("redirect_uri") != Some(&i.grant.authz.redirect_uri) {
        return Err(TokenRefusal::RedirectUri);
    }
    Ok(())
}

fn verifier<'a>(i: &Redeemed<'a>) -> &'a str {
    i.form
        .get("code_verifier")
        .map(String::as_str)
        .unwrap_or_default()
}

fn verifier_format(i: &Redeemed<'_>, _: &TokenCtx<'_>) -> TokenCheck {
    if !valid_verifier(verifier(i)) {
        return Err(TokenRefusal::Pkce(
            "code_verifier must be 43-128 unreserved characters".into(),
        ));
    }
    Ok(())
}

fn verifier_match(i: &Redeemed<'_>, _: &TokenCtx<'_>) -> TokenCheck {
    if !verify_s256(verifier(i), &i.grant.authz.code_challenge) {
        return Err(TokenRefusal::Pkce("code_verifier does not match".into()));
    }
    Ok(())
}

/// The form carrying a client assertion.
pub(crate) struct AssertionForm<'a> {
    /// The form parameters.
    pub form: &'a HashMap<String, String>,
}

/// The client assertion's checks before its signature is verified, in order.
pub(crate) const ASSERTION_FORM_RULES: &[AssertionFormRule] = &[
    (&[Rule::OpTokenClientAssertionType], assertion_type),
    (&[Rule::OpTokenClientAssertionMissing], assertion_present),
];

fn invalid_client(fault: AssertionFault, detail: &str) -> TokenCheck {
    Err(TokenRefusal::InvalidClient(fault, detail.to_string()))
}

fn assertion_type(i: &AssertionForm<'_>, _: &TokenCtx<'_>) -> TokenCheck {
    if i.form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
        return invalid_client(
            AssertionFault::Type,
            "client_assertion_type must be jwt-bearer",
        );
    }
    Ok(())
}

fn assertion_present(i: &AssertionForm<'_>, _: &TokenCtx<'_>) -> TokenCheck {
    if !i.form.contains_key("client_assertion") {
        return invalid_client(AssertionFault::Missing, "client_assertion is required");
    }
    Ok(())
}

/// A client assertion whose signature and times verified.
pub(crate) struct AssertionClaims<'a> {
    /// Its claims.
    pub claims: &'a Value,
    /// The `client_id` it must name.
    pub client_id: &'a str,
    /// The endpoint it must be addressed to.
    pub endpoint: &'a str,
}

impl AssertionClaims<'_> {
    fn s(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
}

/// The verified client assertion's claims, in order.
pub(crate) const ASSERTION_CLAIM_RULES: &[AssertionClaimRule] = &[
    (&[Rule::OpTokenClientAssertionIss], assertion_iss),
    (&[Rule::OpTokenClientAssertionSub], assertion_sub),
    (&[Rule::OpTokenClientAssertionAud], assertion_aud),
    (&[Rule::OpTokenClientAssertionIat], assertion_iat),
    (&[Rule::OpTokenClientAssertionJti], assertion_jti),
];

fn assertion_iss(i: &AssertionClaims<'_>, _: &TokenCtx<'_>) -> TokenCheck {
    if i.s("iss") != Some(i.client_id) {
        return invalid_client(AssertionFault::Iss, "iss must be the client_id");
    }
    Ok(())
}

fn assertion_sub(i: &AssertionClaims<'_>, _: &TokenCtx<'_>) -> TokenCheck {
    if i.s("sub") != Some(i.client_id) {
        return invalid_client(AssertionFault::Sub, "sub must be the client_id");
    }
    Ok(())
}

fn assertion_aud(i: &AssertionClaims<'_>, _: &TokenCtx<'_>) -> TokenCheck {
    let aud_ok = match i.claims.get("aud") {
        Some(Value::String(a)) => a == i.endpoint,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(i.endpoint)),
        _ => false,
    };
    if !aud_ok {
        return invalid_client(AssertionFault::Aud, "aud is not this endpoint");
    }
    Ok(())
}

/// verify_jwt checked a present iat's type and time; SPID requires it.
fn assertion_iat(i: &AssertionClaims<'_>, _: &TokenCtx<'_>) -> TokenCheck {
    if i.claims.get("iat").is_none() {
        return invalid_client(AssertionFault::Iat, "iat is required");
    }
    Ok(())
}

/// check-op 3.1.x: a jti of fewer than 16 bytes has too little entropy.
fn assertion_jti(i: &AssertionClaims<'_>, _: &TokenCtx<'_>) -> TokenCheck {
    if i.s("jti").is_none_or(|j| j.len() < 16) {
        return invalid_client(
            AssertionFault::Jti,
            "a jti of at least 16 bytes is required",
        );
    }
    Ok(())
}

/// The RP's encryption key (`use: enc` in its metadata `jwks`) and the algorithms its
/// metadata names under `<prefix>_encrypted_response_alg`/`_enc` (`userinfo`, `id_token`);
/// None when the RP asks no encryption under that prefix or publishes no encryption key.
pub(crate) fn encryption_recipient(
    metadata: &serde_json::Map<String, Value>,
    prefix: &str,
) -> Option<(Jwk, JweAlg, JweEnc)> {
    let s = |n: &str| {
        metadata
            .get(&format!("{prefix}_{n}"))
            .and_then(Value::as_str)
    };
    let alg = s("encrypted_response_alg")?;
    let jwks: Jwks = serde_json::from_value(metadata.get("jwks")?.clone()).ok()?;
    let key = jwks
        .keys
        .into_iter()
        .find(|k| k.key_use.as_deref() == Some("enc"))?;
    let alg = JweAlg::from_name(alg).unwrap_or(JweAlg::RsaOaep256);
    let enc = s("encrypted_response_enc")
        .and_then(JweEnc::from_name)
        .unwrap_or(JweEnc::A256CbcHs512);
    Some((key, alg, enc))
}

/// The user claims the ID token carries where the profile releases claims there (CIE): those
/// asked under `claims.id_token` and those the `profile`/`email` scopes stand for.
pub(crate) fn id_token_release(authz: &super::request::ValidAuthz) -> Vec<String> {
    let mut out = authz.id_token_claims.clone();
    for (scope, names) in super::request::SCOPE_CLAIMS {
        if authz.scope.iter().any(|s| s == scope) {
            out.extend(names.iter().map(|n| n.to_string()));
        }
    }
    out.sort();
    out.dedup();
    out
}

impl OpenIdProvider {
    /// The ID token as sent: the signed `jws` nest-encrypted (JWE, `cty` JWT) to the RP's
    /// encryption key when the profile encrypts on request and the RP's metadata declares
    /// `id_token_encrypted_response_alg` (CIE), else `jws` itself. `plan`'s `encrypt` stage
    /// applies; an `encrypt` edit of an ID token that is not encrypted is a plan miss.
    pub(crate) fn deliver_id_token(
        &self,
        jws: String,
        client: &Client,
        plan: &JwtPlan,
        owner: &super::OpPlan,
        stage: &str,
    ) -> Result<String, TokenRefusal> {
        let recipient = self
            .0
            .cfg
            .profile
            .id_token_encrypted_on_request
            .then(|| encryption_recipient(&client.metadata, "id_token"))
            .flatten();
        let Some((key, alg, enc)) = recipient else {
            if plan.encrypt.is_honest() {
                return Ok(jws);
            }
            let miss = PlanMiss {
                stage: format!("{stage}.encrypt"),
                reason: "the ID token is not encrypted (the profile or the RP's metadata asks no ID-token encryption)".into(),
            };
            return Err(self.planned_miss(owner, miss));
        };
        if plan.encrypt.skip {
            return Ok(jws);
        }
        let key = match plan.encrypt.recipient {
            Recipient::Published => key,
            Recipient::Foreign => self
                .0
                .foreign_key
                .public_jwk()
                .map_err(|e| TokenRefusal::InvalidRequest(format!("encryption failed: {e}")))?
                .with_use(KeyUse::Enc),
        };
        let jwe = plan
            .encrypt
            .encrypt(
                jws.as_bytes(),
                &key,
                alg,
                enc,
                &format!("{stage}.encrypt.header"),
            )
            .map_err(|e| match e {
                EncryptError::Miss(m) => self.planned_miss(owner, m),
                EncryptError::Jose(e) => {
                    TokenRefusal::InvalidRequest(format!("encryption failed: {e}"))
                }
            })?;
        self.record_sealed("id_token", &jws, &jwe);
        Ok(jwe)
    }

    /// Checks the `private_key_jwt` assertion, in order: `ASSERTION_FORM_RULES` (type,
    /// presence), the signature with the client's keys and the `exp`/`nbf`/`iat` times, then
    /// `ASSERTION_CLAIM_RULES` (`iss` = `client_id`, `sub` = `client_id`, `aud` ∋ `endpoint`,
    /// `iat` present, `jti` of 16+ bytes); each its own [`AssertionFault`].
    pub(super) fn authenticate(
        &self,
        f: &HashMap<String, String>,
        client_id: &str,
        client: &Client,
        endpoint: &str,
    ) -> Result<(), TokenRefusal> {
        let cfg = &self.0.cfg;
        let ctx = TokenCtx {
            op: self,
            now: cfg.clock.now(),
        };
        run(ASSERTION_FORM_RULES, &AssertionForm { form: f }, &ctx)?;
        // ASSERTION_FORM_RULES refused a missing assertion.
        let assertion = f
            .get("client_assertion")
            .map(String::as_str)
            .unwrap_or_default();
        // The RP's own keys: EC ones too where the profile allows them (CIE).
        let (_, claims) = verify_jwt(
            assertion,
            &client.jwks,
            &cfg.profile.accepted_signing_algs(),
            ctx.now,
            cfg.profile.skew(),
        )
        .map_err(|e| TokenRefusal::InvalidClient(AssertionFault::of_jose(&e), e.to_string()))?;
        let input = AssertionClaims {
            claims: &claims,
            client_id,
            endpoint,
        };
        run(ASSERTION_CLAIM_RULES, &input, &ctx)
    }

    /// A miss of `plan`, noted against its case: the refusal the handler answers with.
    pub(crate) fn planned_miss(&self, plan: &super::OpPlan, miss: PlanMiss) -> TokenRefusal {
        self.note_miss(plan.case.as_deref(), &miss);
        TokenRefusal::Plan(miss)
    }

    /// The authorization-code exchange for an already resolved `client`.
    pub(crate) fn exchange(
        &self,
        f: &HashMap<String, String>,
        client: &Client,
    ) -> Result<Value, TokenRefusal> {
        let cfg = &self.0.cfg;
        let ctx = TokenCtx {
            op: self,
            now: cfg.clock.now(),
        };
        run(EXCHANGE_RULES, &Exchange { form: f, client }, &ctx)?;
        // EXCHANGE_RULES refused an empty client_id or code.
        let client_id = param(f, "client_id")?;
        let code = param(f, "code")?;
        // Removed before any further check: a code is good for one attempt only.
        let grant = lock(&self.0.codes)
            .remove(code)
            .ok_or_else(|| TokenRefusal::Code("unknown or already used code".into()))?;
        let now = cfg.clock.now();
        let ctx = TokenCtx { op: self, now };
        let redeemed = Redeemed {
            form: f,
            client_id,
            grant: &grant,
        };
        run(GRANT_RULES, &redeemed, &ctx)?;

        // The case's plan rode with the grant; else the globally armed one is used up here.
        let plan = match &grant.plan {
            Some(p) => p.clone(),
            None => self.take_plan(),
        };
        let p = &cfg.profile;
        let alg = p.default_signing_alg;
        let iat = now.timestamp();
        let sub = pairwise_sub(&grant.user.username, client_id);
        let at_jti = uuid::Uuid::new_v4().to_string();
        let at_exp = iat + p.access_token_lifetime_secs;
        let access = sign_jws(
            &json!({
                "iss": cfg.entity_id, "sub": sub, "aud": [cfg.endpoint("userinfo")],
                "client_id": client_id, "scope": grant.authz.scope.join(" "),
                "iat": iat, "exp": at_exp, "jti": at_jti,
            }),
            &self.0.signing_key,
            alg,
            Some("at+jwt"),
        )
        .map_err(|e| TokenRefusal::InvalidRequest(format!("signing failed: {e}")))?;
        // The honest ID token; the plan edits it at its stages.
        let mut id_claims = json!({
                "iss": cfg.entity_id,
                "sub": sub,
                "aud": client_id,
                "acr": grant.level.uri(),
                "at_hash": at_hash(&access, alg),
                "nonce": grant.authz.nonce,
                "iat": iat, "nbf": iat, "exp": iat + p.id_token_lifetime_secs,
                "jti": uuid::Uuid::new_v4().to_string(),
        });
        if let (true, Some(obj)) = (p.claims_in_id_token, id_claims.as_object_mut()) {
            // CIE: the claims asked for the ID token, and the scopes' claims, ride in it too.
            for c in id_token_release(&grant.authz) {
                if let Some(v) = spid_core::attributes::oidc_claim_value(&c, &grant.user.attributes)
                {
                    obj.insert(c, v);
                }
            }
        }
        let header = JwsHeader::new(alg, &self.0.signing_key).with_typ("JWT");
        let id_token = plan
            .id_token
            .sign_with_ec(
                &id_claims,
                &header,
                &self.0.signing_key,
                &self.0.foreign_key,
                self.0.ec_key.as_ref(),
                Value::clone,
            )
            .map_err(|e| match e {
                SignError::Miss(m) => self.planned_miss(&plan, m.within("plan.id_token")),
                SignError::Jose(e) => TokenRefusal::InvalidRequest(format!("signing failed: {e}")),
            })?;
        self.record_sent("id_token", &id_token);
        let id_token =
            self.deliver_id_token(id_token, client, &plan.id_token, &plan, "plan.id_token")?;
        let token_edit = plan.token_response.edit.clone();
        let plan_case = plan.case.clone();
        let refresh = super::refresh::offers_refresh(&grant.authz)
            .then(|| {
                self.open_refresh_family(
                    &grant.authz,
                    &grant.user,
                    grant.level,
                    &sub,
                    &plan,
                    grant.session.clone(),
                )
            })
            .transpose()?;
        let token_grant = TokenGrant {
            client_id: client_id.to_string(),
            sub,
            scope: grant.authz.scope.join(" "),
            user: grant.user,
            userinfo_claims: grant.authz.userinfo_claims,
            exp: at_exp,
            plan,
            level: grant.level,
            family: refresh.as_ref().map(|(family, _)| family.clone()),
            session: grant.session.clone(),
        };
        bounded_insert(&mut lock(&self.0.tokens), at_jti, token_grant);
        let mut answer = json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": p.access_token_lifetime_secs,
            "id_token": id_token,
        });
        if let (Some((_, token)), Some(obj)) = (refresh, answer.as_object_mut()) {
            obj.insert("refresh_token".into(), json!(token));
        }
        if let Err(m) = token_edit.apply_value(&mut answer, "plan.token_response.edit") {
            self.note_miss(plan_case.as_deref(), &m);
            return Err(TokenRefusal::Plan(m));
        }
        Ok(answer)
    }
}

pub(crate) async fn token(State(op): State<OpenIdProvider>, body: Bytes) -> Response {
    // Bounded (spid_net::FormLimits::default); first value wins.
    let f = match spid_net::form(&body, &spid_net::FormLimits::default()) {
        Ok(f) => spid_net::first_wins(f),
        Err(r) => return r.into_response(),
    };
    // A planned transport answers before any check, as a broken token endpoint would: the
    // plan of the code's case, else the global one (used up).
    let case_plan = f
        .get("code")
        .and_then(|c| lock(&op.0.codes).get(c).and_then(|g| g.plan.clone()));
    match case_plan {
        Some(p) => {
            if let Some(t) = p.token_response.transport {
                return super::transport(&t);
            }
        }
        None => {
            if let Some(t) = op.peek_plan().token_response.transport {
                op.take_plan();
                return super::transport(&t);
            }
        }
    }
    let result = match f.get("client_id").filter(|c| !c.is_empty()) {
        None => Err(TokenRefusal::InvalidRequest("client_id is required".into())),
        Some(client_id) => match op.client(client_id).await {
            // The refresh grant lives in refresh.rs; the code exchange judges everything
            // else, an unsupported grant_type included.
            Ok(client) => match f.get("grant_type").map(String::as_str) {
                Some("refresh_token") => op.refresh(&f, &client),
                _ => op.exchange(&f, &client),
            },
            Err(e) => Err(TokenRefusal::UntrustedClient(e.to_string())),
        },
    };
    match result {
        Ok(body) => json(StatusCode::OK, &body),
        Err(TokenRefusal::Plan(miss)) => OpenIdProvider::miss_page(&miss),
        Err(TokenRefusal::Planned(t)) => super::transport(&t),
        Err(e) => e.response(op.0.cfg.profile.invalid_client_status),
    }
}

/// The token endpoint is POST only (check-op 3.1.0).
pub(crate) async fn wrong_method() -> Response {
    with_rule(
        json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "the token endpoint is POST only",
        ),
        Rule::OpTokenMethod,
    )
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::request::ValidAuthz;
    use super::super::tests::block_on;
    use super::super::{CodeGrant, OpConfig};
    use super::*;
    use crate::oidc::new_signing_key;
    use crate::users::{parse, DEFAULT_USERS};
    use spid_core::clock::FixedClock;
    use spid_core::oidc::jose::Jwks;
    use spid_core::oidc::jose::SigningKey;
    use spid_core::oidc::pkce::challenge_s256;
    use spid_core::oidc::plan::{corrupt_signature, JwtPlan, SignEdits};
    use spid_core::SpidLevel;

    /// `claims` signed under a header naming `alg` (`none`, `HS256`), as a forger would.
    fn forge_alg(claims: &Value, alg: &str, key: &SigningKey) -> Result<String, SignError> {
        let plan = JwtPlan {
            sign: SignEdits {
                alg: Some(alg.into()),
                ..SignEdits::default()
            },
            ..JwtPlan::default()
        };
        let header = JwsHeader::new(spid_core::oidc::jose::SigAlg::RS256, key).with_typ("JWT");
        plan.sign(claims, &header, key, key, Value::clone)
    }
    use std::sync::Arc;

    const RP: &str = "http://rp.example/oidc/rp";

    /// An OP, a relying party it has resolved (not cached: each test caches it if it needs
    /// to) and that RP's signing key.
    pub(crate) struct Fixture {
        pub(crate) op: OpenIdProvider,
        pub(crate) client: Client,
        pub(crate) rp_key: SigningKey,
    }

    pub(crate) fn fixture() -> Fixture {
        let clock = Arc::new(FixedClock::new(spid_core::clock::now()));
        let users = parse(DEFAULT_USERS).unwrap_or_default();
        let op = OpenIdProvider::new(OpConfig::new("http://op.example/oidc/op", users, clock))
            .expect("op");
        let rp_key = new_signing_key().expect("key");
        let client = Client {
            metadata: Default::default(),
            jwks: Jwks::new(vec![rp_key.public_jwk().expect("jwk")]),
            exp: i64::MAX,
        };
        Fixture { op, client, rp_key }
    }

    /// Puts a code for `verifier`'s challenge in the OP, as a finished login would.
    pub(crate) fn code(fx: &Fixture, verifier: &str) -> String {
        let user = fx.op.config().users[0].clone();
        let authz = ValidAuthz {
            client_id: RP.into(),
            redirect_uri: format!("{RP}/callback"),
            state: "s".repeat(32),
            nonce: "n".repeat(32),
            code_challenge: challenge_s256(verifier),
            scope: vec!["openid".into()],
            acr_values: vec![SpidLevel::L2],
            userinfo_claims: vec![],
            id_token_claims: vec![],
            prompt: "consent login".into(),
            response_mode: Default::default(),
        };
        let created = fx.op.config().clock.now();
        let grant = CodeGrant {
            authz,
            user,
            level: SpidLevel::L2,
            created,
            session: None,
            plan: None,
        };
        let code = super::super::random_id();
        lock(&fx.op.0.codes).insert(code.clone(), grant);
        code
    }

    pub(crate) fn request(fx: &Fixture, code: &str, verifier: &str) -> HashMap<String, String> {
        let now = fx.op.config().clock.now().timestamp();
        let assertion = sign_jws(
            &json!({"iss": RP, "sub": RP, "aud": fx.op.config().endpoint("token"),
                    "iat": now, "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string()}),
            &fx.rp_key,
            spid_core::oidc::jose::SigAlg::RS256,
            None,
        )
        .expect("assertion");
        [
            ("grant_type", "authorization_code"),
            ("client_id", RP),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", &format!("{RP}/callback")),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// A code exchange at `fx` whose login asked `scope` and `claims.id_token` `id_claims`,
    /// with `plan` riding on the grant; the token answer.
    fn exchange_with(
        fx: &Fixture,
        scope: &[&str],
        id_claims: &[&str],
        plan: Option<super::super::OpPlan>,
    ) -> Result<Value, TokenRefusal> {
        let verifier = "v".repeat(43);
        let code = code(fx, &verifier);
        if let Some(g) = lock(&fx.op.0.codes).get_mut(&code) {
            g.authz.scope = scope.iter().map(|s| s.to_string()).collect();
            g.authz.id_token_claims = id_claims.iter().map(|s| s.to_string()).collect();
            g.plan = plan;
        }
        fx.op.exchange(&request(fx, &code, &verifier), &fx.client)
    }

    #[test]
    fn cie_id_tokens_carry_the_claims_and_are_nest_encrypted_on_request() {
        use spid_core::oidc::jose::{
            decrypt_jwe, verify_jws, DecryptionKey, JweAlg, JweEnc, SigAlg,
        };
        let dec = DecryptionKey::from_pem(include_bytes!("../../../../../certs/foreign.key.pem"))
            .expect("key");
        let mut fx = super::super::tests::profiled(spid_core::oidc::Profile::cie());
        // CIE allows EC keys: the OP publishes a P-256 key beside its RSA one (SPID: RSA only).
        let kty = |fx: &Fixture| -> Vec<String> {
            fx.op.jwks().keys.iter().map(|k| k.kty.clone()).collect()
        };
        assert_eq!(kty(&fx), ["RSA", "EC"]);
        assert_eq!(kty(&fixture()), ["RSA"]);
        let enc_key = dec.public_jwk().expect("jwk");
        fx.client.metadata = json!({
            "jwks": {"keys": [enc_key]},
            "id_token_encrypted_response_alg": "RSA-OAEP-256",
            "id_token_encrypted_response_enc": "A256CBC-HS512",
        })
        .as_object()
        .cloned()
        .unwrap_or_default();
        let answer = exchange_with(&fx, &["openid", "profile"], &["email"], None).expect("200");
        let jwe = answer["id_token"].as_str().unwrap_or_default();
        assert_eq!(jwe.split('.').count(), 5, "a JWE");
        let (header, inner) =
            decrypt_jwe(jwe, &dec, &[JweAlg::RsaOaep256], &[JweEnc::A256CbcHs512]).expect("jwe");
        assert_eq!(header.cty.as_deref(), Some("JWT"));
        let inner = String::from_utf8(inner).expect("utf-8");
        let (_, claims) = verify_jws(&inner, &fx.op.jwks(), &[SigAlg::RS256]).expect("nested");
        for c in [
            "given_name",
            "family_name",
            "birthdate",
            "https://attributes.eid.gov.it/fiscal_number",
            "email",
        ] {
            assert!(claims.get(c).is_some(), "{c} missing: {claims}");
        }
        assert!(
            claims.get("email_verified").is_none(),
            "email scope not asked"
        );
        // An RP that declares no ID-token encryption gets the plain JWS.
        fx.client.metadata.remove("id_token_encrypted_response_alg");
        let answer = exchange_with(&fx, &["openid", "email"], &[], None).expect("200");
        let jws = answer["id_token"].as_str().unwrap_or_default();
        let (_, claims) = verify_jws(jws, &fx.op.jwks(), &[SigAlg::RS256]).expect("plain");
        assert_eq!(claims["email_verified"], json!(true));
        assert!(claims.get("given_name").is_none());
        // ... and a plan that would edit its encryption missed its target.
        let skip = super::super::OpPlan {
            id_token: JwtPlan {
                encrypt: spid_core::oidc::plan::EncryptEdits {
                    skip: true,
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(matches!(
            exchange_with(&fx, &["openid"], &[], Some(skip)),
            Err(TokenRefusal::Plan(_))
        ));
    }

    #[test]
    fn spid_id_tokens_carry_no_user_claims_and_are_never_encrypted() {
        let fx = fixture();
        let answer = exchange_with(&fx, &["openid"], &["given_name"], None).expect("200");
        let jws = answer["id_token"].as_str().unwrap_or_default();
        let (_, claims) = spid_core::oidc::jose::verify_jws(
            jws,
            &fx.op.jwks(),
            &[spid_core::oidc::jose::SigAlg::RS256],
        )
        .expect("jws");
        assert!(claims.get("given_name").is_none());
    }

    #[tokio::test]
    async fn introspection_and_revocation() {
        use axum::body::{to_bytes, Bytes};
        use axum::extract::State;
        let fx = fixture();
        fx.op
            .0
            .clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(RP.into(), fx.client.clone());
        let v = "v".repeat(64);
        let c = code(&fx, &v);
        let tokens = fx
            .op
            .exchange(&request(&fx, &c, &v), &fx.client)
            .expect("tokens");
        let at = tokens["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let call = |endpoint: &'static str, token: String| {
            let fx_op = fx.op.clone();
            let mut f = request(&fx, "", "");
            let now = fx.op.config().clock.now().timestamp();
            let assertion = sign_jws(
                &json!({"iss": RP, "sub": RP, "aud": fx.op.config().endpoint(endpoint),
                        "iat": now, "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string()}),
                &fx.rp_key,
                spid_core::oidc::jose::SigAlg::RS256,
                None,
            )
            .expect("assertion");
            f.insert("client_assertion".into(), assertion);
            f.insert("token".into(), token);
            let body: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(f.iter())
                .finish();
            async move {
                let r = match endpoint {
                    "introspection" => {
                        super::super::introspect::introspection(State(fx_op), Bytes::from(body))
                            .await
                    }
                    _ => {
                        super::super::introspect::revocation(State(fx_op), Bytes::from(body)).await
                    }
                };
                let status = r.status();
                let bytes = to_bytes(r.into_body(), 1 << 16).await.unwrap_or_default();
                let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
                (status, v)
            }
        };
        let (s, v) = call("introspection", at.clone()).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["active"], true, "{v}");
        assert_eq!(v["client_id"], RP);
        let (s, _) = call("revocation", at.clone()).await;
        assert_eq!(s, StatusCode::OK);
        let (_, v) = call("introspection", at.clone()).await;
        assert_eq!(v["active"], false);
        // Revoking again (unknown token) is still 200; garbage is inactive.
        assert_eq!(call("revocation", at).await.0, StatusCode::OK);
        assert_eq!(
            call("introspection", "x.y.z".into()).await.1["active"],
            false
        );
    }

    #[test]
    fn token_checks() {
        let fx = fixture();
        // A good exchange, then the same code again.
        let v = "v".repeat(64);
        let c = code(&fx, &v);
        let ok = fx
            .op
            .exchange(&request(&fx, &c, &v), &fx.client)
            .expect("tokens");
        assert!(ok["id_token"].is_string() && ok["access_token"].is_string());
        let again = fx.op.exchange(&request(&fx, &c, &v), &fx.client);
        assert_eq!(
            again.map_err(|e| (e.error(), e.rule())),
            Err(("invalid_grant", Rule::OpTokenCode))
        );

        // Verifiers of 42 and 129 characters (with matching challenges) are refused.
        for len in [42, 129] {
            let v = "x".repeat(len);
            let c = code(&fx, &v);
            let r = fx.op.exchange(&request(&fx, &c, &v), &fx.client);
            assert!(
                matches!(&r, Err(TokenRefusal::Pkce(d)) if d.contains("43-128")),
                "{len}: {r:?}"
            );
        }
        // A wrong verifier, a wrong redirect_uri.
        let c = code(&fx, &v);
        let r = fx
            .op
            .exchange(&request(&fx, &c, &"w".repeat(64)), &fx.client);
        assert_eq!(
            r.map_err(|e| (e.error(), e.rule())),
            Err(("invalid_grant", Rule::OpTokenPkce))
        );
        let c = code(&fx, &v);
        let mut req = request(&fx, &c, &v);
        req.insert("redirect_uri".into(), "http://evil.example/cb".into());
        assert_eq!(
            fx.op.exchange(&req, &fx.client).map_err(|e| e.rule()),
            Err(Rule::OpTokenRedirectUri)
        );

        // Client assertion problems are invalid_client.
        let c = code(&fx, &v);
        let mut req = request(&fx, &c, &v);
        req.insert("client_assertion_type".into(), "x".into());
        assert_eq!(
            fx.op
                .exchange(&req, &fx.client)
                .map_err(|e| (e.error(), e.rule())),
            Err(("invalid_client", Rule::OpTokenClientAssertionType))
        );
        let other = new_signing_key().expect("key");
        let now = fx.op.config().clock.now().timestamp();
        req = request(&fx, &c, &v);
        let forged = sign_jws(
            &json!({"iss": RP, "sub": RP, "aud": fx.op.config().endpoint("token"),
                    "iat": now, "exp": now + 60, "jti": "j".repeat(20)}),
            &other.with_kid(fx.rp_key.kid()),
            spid_core::oidc::jose::SigAlg::RS256,
            None,
        )
        .expect("forged");
        req.insert("client_assertion".into(), forged);
        assert_eq!(
            fx.op.exchange(&req, &fx.client).map_err(|e| e.error()),
            Err("invalid_client")
        );
        let short_jti = sign_jws(
            &json!({"iss": RP, "sub": RP, "aud": fx.op.config().endpoint("token"),
                    "iat": now, "exp": now + 60, "jti": "j".repeat(15)}),
            &fx.rp_key,
            spid_core::oidc::jose::SigAlg::RS256,
            None,
        )
        .expect("assertion");
        let mut req = request(&fx, &c, &v);
        req.insert("client_assertion".into(), short_jti);
        assert_eq!(
            fx.op.exchange(&req, &fx.client).map_err(|e| e.error()),
            Err("invalid_client")
        );
        let mut req = request(&fx, &c, &v);
        req.insert("grant_type".into(), "refresh_token".into());
        assert_eq!(
            fx.op.exchange(&req, &fx.client),
            Err(TokenRefusal::UnsupportedGrantType)
        );
    }

    /// The honest assertion for `fx`'s client at the token endpoint, with `edit` applied to
    /// its claims, signed by the client's key.
    fn assertion_with(fx: &Fixture, edit: impl FnOnce(&mut Value)) -> String {
        let now = fx.op.config().clock.now().timestamp();
        let mut claims = json!({"iss": RP, "sub": RP, "aud": fx.op.config().endpoint("token"),
                                "iat": now, "exp": now + 60, "jti": "j".repeat(16)});
        edit(&mut claims);
        sign_jws(
            &claims,
            &fx.rp_key,
            spid_core::oidc::jose::SigAlg::RS256,
            None,
        )
        .expect("assertion")
    }

    /// `authenticate` on the honest form with `edit` applied: `Ok` or the refusal's
    /// (OAuth error, rule).
    fn client_auth(
        fx: &Fixture,
        edit: impl FnOnce(&mut HashMap<String, String>),
    ) -> Result<(), (&'static str, Rule)> {
        let mut f = request(fx, "c", &"v".repeat(64));
        f.insert("client_assertion".into(), assertion_with(fx, |_| {}));
        edit(&mut f);
        let endpoint = fx.op.config().endpoint("token");
        fx.op
            .authenticate(&f, RP, &fx.client, &endpoint)
            .map_err(|e| (e.error(), e.rule()))
    }

    fn with_claims(
        fx: &Fixture,
        edit: impl FnOnce(&mut Value),
    ) -> impl FnOnce(&mut HashMap<String, String>) {
        let a = assertion_with(fx, edit);
        move |f| {
            f.insert("client_assertion".into(), a);
        }
    }

    fn set(name: &'static str, v: Value) -> impl FnOnce(&mut Value) {
        move |c| c[name] = v
    }

    fn remove(name: &'static str) -> impl FnOnce(&mut Value) {
        move |c| {
            if let Some(o) = c.as_object_mut() {
                o.remove(name);
            }
        }
    }

    /// One rule per client-assertion check: the honest request with one edit is refused by
    /// exactly that check's rule, always as `invalid_client`.
    #[test]
    fn each_client_assertion_fault_has_its_own_rule() {
        use Rule as R;
        let fx = fixture();
        let now = fx.op.config().clock.now().timestamp();
        let err = |r: Rule| Err(("invalid_client", r));
        assert_eq!(client_auth(&fx, |_| {}), Ok(()));
        // Array audience holding the endpoint is fine.
        let aud = json!([fx.op.config().endpoint("token"), "http://x.example"]);
        assert_eq!(client_auth(&fx, with_claims(&fx, set("aud", aud))), Ok(()));

        assert_eq!(
            client_auth(&fx, |f| {
                f.insert(
                    "client_assertion_type".into(),
                    "urn:ietf:params:oauth:client-assertion-type:saml2-bearer".into(),
                );
            }),
            err(R::OpTokenClientAssertionType)
        );
        assert_eq!(
            client_auth(&fx, |f| {
                f.remove("client_assertion_type");
            }),
            err(R::OpTokenClientAssertionType)
        );
        assert_eq!(
            client_auth(&fx, |f| {
                f.remove("client_assertion");
            }),
            err(R::OpTokenClientAssertionMissing)
        );

        // Signature: a foreign key under the client's kid, an unknown kid, alg none, HS256
        // keyed with the client's public key, a flipped signature, not a JWS at all.
        let claims = json!({"iss": RP, "sub": RP, "aud": fx.op.config().endpoint("token"),
                            "iat": now, "exp": now + 60, "jti": "j".repeat(16)});
        let other = new_signing_key().expect("key");
        let sign = |k: &SigningKey| {
            sign_jws(&claims, k, spid_core::oidc::jose::SigAlg::RS256, None).expect("jws")
        };
        let honest = assertion_with(&fx, |_| {});
        for (what, a) in [
            (
                "foreign key",
                sign(&other.clone().with_kid(fx.rp_key.kid())),
            ),
            ("unknown kid", sign(&other)),
            (
                "none",
                forge_alg(&claims, "none", &fx.rp_key).expect("none"),
            ),
            (
                "HS256",
                forge_alg(&claims, "HS256", &fx.rp_key).expect("hs256"),
            ),
            ("flipped", corrupt_signature(&honest)),
            ("not a JWS", "x.y".into()),
        ] {
            assert_eq!(
                client_auth(&fx, |f| {
                    f.insert("client_assertion".into(), a);
                }),
                err(R::OpTokenClientAssertionSignature),
                "{what}"
            );
        }

        type Edit = Box<dyn FnOnce(&mut Value)>;
        let cases: Vec<(&str, Edit, Rule)> = vec![
            (
                "iss other",
                Box::new(set("iss", json!("http://other.example/rp"))),
                R::OpTokenClientAssertionIss,
            ),
            (
                "iss missing",
                Box::new(remove("iss")),
                R::OpTokenClientAssertionIss,
            ),
            (
                "sub other",
                Box::new(set("sub", json!("http://other.example/rp"))),
                R::OpTokenClientAssertionSub,
            ),
            (
                "sub missing",
                Box::new(remove("sub")),
                R::OpTokenClientAssertionSub,
            ),
            (
                "aud other",
                Box::new(set("aud", json!("http://other.example/token"))),
                R::OpTokenClientAssertionAud,
            ),
            (
                "aud missing",
                Box::new(remove("aud")),
                R::OpTokenClientAssertionAud,
            ),
            (
                "exp past",
                Box::new(move |c: &mut Value| {
                    c["iat"] = json!(now - 900);
                    c["exp"] = json!(now - 600);
                }),
                R::OpTokenClientAssertionExp,
            ),
            (
                "exp missing",
                Box::new(remove("exp")),
                R::OpTokenClientAssertionExp,
            ),
            (
                "exp mistyped",
                Box::new(set("exp", json!("later"))),
                R::OpTokenClientAssertionExp,
            ),
            (
                "nbf future",
                Box::new(set("nbf", json!(now + 600))),
                R::OpTokenClientAssertionNbf,
            ),
            (
                "nbf mistyped",
                Box::new(set("nbf", json!("soon"))),
                R::OpTokenClientAssertionNbf,
            ),
            (
                "iat future",
                Box::new(move |c: &mut Value| {
                    c["iat"] = json!(now + 600);
                    c["exp"] = json!(now + 900);
                }),
                R::OpTokenClientAssertionIat,
            ),
            (
                "iat missing",
                Box::new(remove("iat")),
                R::OpTokenClientAssertionIat,
            ),
            (
                "iat mistyped",
                Box::new(set("iat", json!("now"))),
                R::OpTokenClientAssertionIat,
            ),
            (
                "jti short",
                Box::new(set("jti", json!("j".repeat(15)))),
                R::OpTokenClientAssertionJti,
            ),
            (
                "jti missing",
                Box::new(remove("jti")),
                R::OpTokenClientAssertionJti,
            ),
            (
                "jti mistyped",
                Box::new(set("jti", json!(12345678901234567_u64))),
                R::OpTokenClientAssertionJti,
            ),
        ];
        for (what, edit, rule) in cases {
            assert_eq!(
                client_auth(&fx, with_claims(&fx, edit)),
                err(rule),
                "{what}"
            );
        }
    }
    pub(crate) type TokenEdit = fn(&Fixture, &str, &mut HashMap<String, String>);

    fn set_assertion(fx: &Fixture, f: &mut HashMap<String, String>, edit: impl FnOnce(&mut Value)) {
        f.insert("client_assertion".into(), assertion_with(fx, edit));
    }

    /// One honest exchange plus one edit per entry of the token tables and stages: the rule
    /// each edit must be refused by. The edit gets the fixture, the honest code and the form.
    pub(crate) const TOKEN_CASES: &[(Rule, &str, TokenEdit)] = &[
        (Rule::OpTokenGrantType, "grant_type password", |_, _, f| {
            f.insert("grant_type".into(), "password".into());
        }),
        (Rule::OpTokenParameters, "client_id missing", |_, _, f| {
            f.remove("client_id");
        }),
        (
            Rule::OpTokenClientAssertionType,
            "assertion type",
            |_, _, f| {
                f.insert("client_assertion_type".into(), "x".into());
            },
        ),
        (
            Rule::OpTokenClientAssertionMissing,
            "no assertion",
            |_, _, f| {
                f.remove("client_assertion");
            },
        ),
        (
            Rule::OpTokenClientAssertionSignature,
            "flipped signature",
            |fx, _, f| {
                f.insert(
                    "client_assertion".into(),
                    corrupt_signature(&assertion_with(fx, |_| {})),
                );
            },
        ),
        (Rule::OpTokenClientAssertionExp, "exp past", |fx, _, f| {
            let now = fx.op.config().clock.now().timestamp();
            set_assertion(fx, f, |c| {
                c["iat"] = json!(now - 900);
                c["exp"] = json!(now - 600);
            });
        }),
        (Rule::OpTokenClientAssertionNbf, "nbf future", |fx, _, f| {
            let now = fx.op.config().clock.now().timestamp();
            set_assertion(fx, f, |c| c["nbf"] = json!(now + 600));
        }),
        (Rule::OpTokenClientAssertionIat, "iat future", |fx, _, f| {
            let now = fx.op.config().clock.now().timestamp();
            set_assertion(fx, f, |c| {
                c["iat"] = json!(now + 600);
                c["exp"] = json!(now + 900);
            });
        }),
        (Rule::OpTokenClientAssertionIss, "iss other", |fx, _, f| {
            set_assertion(fx, f, set("iss", json!("http://other.example/rp")));
        }),
        (Rule::OpTokenClientAssertionSub, "sub other", |fx, _, f| {
            set_assertion(fx, f, set("sub", json!("http://other.example/rp")));
        }),
        (Rule::OpTokenClientAssertionAud, "aud other", |fx, _, f| {
            set_assertion(fx, f, set("aud", json!("http://other.example/token")));
        }),
        (
            Rule::OpTokenClientAssertionIat,
            "iat missing",
            |fx, _, f| {
                set_assertion(fx, f, remove("iat"));
            },
        ),
        (Rule::OpTokenClientAssertionJti, "jti short", |fx, _, f| {
            set_assertion(fx, f, set("jti", json!("j".repeat(15))));
        }),
        (Rule::OpTokenParameters, "code missing", |_, _, f| {
            f.remove("code");
        }),
        (Rule::OpTokenCode, "code unknown", |_, _, f| {
            f.insert("code".into(), "unknown".into());
        }),
        (Rule::OpTokenCode, "code of another client", |fx, c, _| {
            if let Some(g) = lock(&fx.op.0.codes).get_mut(c) {
                g.authz.client_id = "http://other.example/rp".into();
            }
        }),
        (Rule::OpTokenCode, "code expired", |fx, c, _| {
            if let Some(g) = lock(&fx.op.0.codes).get_mut(c) {
                g.created -= chrono::Duration::seconds(CODE_TTL_SECS + 1);
            }
        }),
        (Rule::OpTokenRedirectUri, "redirect_uri other", |_, _, f| {
            f.insert("redirect_uri".into(), "http://evil.example/cb".into());
        }),
        (Rule::OpTokenPkce, "verifier of 42", |_, _, f| {
            f.insert("code_verifier".into(), "v".repeat(42));
        }),
        (Rule::OpTokenPkce, "verifier not matching", |_, _, f| {
            f.insert("code_verifier".into(), "w".repeat(64));
        }),
    ];

    /// Each case: the honest exchange succeeds, the edited one is refused by its rule.
    #[test]
    fn each_token_rule_refuses_its_edit() {
        let fx = fixture();
        let v = "v".repeat(64);
        let c = code(&fx, &v);
        assert!(fx.op.exchange(&request(&fx, &c, &v), &fx.client).is_ok());
        let wrong: Vec<String> = TOKEN_CASES
            .iter()
            .filter_map(|(rule, what, edit)| {
                let c = code(&fx, &v);
                let mut f = request(&fx, &c, &v);
                edit(&fx, &c, &mut f);
                match fx.op.exchange(&f, &fx.client) {
                    Err(e) if e.rule() == *rule => None,
                    other => Some(format!(
                        "{what} ({}): got {:?}",
                        rule.code(),
                        other.map(|_| "tokens")
                    )),
                }
            })
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    fn token_codes() -> Vec<Rule> {
        let codes = EXCHANGE_RULES
            .iter()
            .map(|(c, _)| *c)
            .chain(GRANT_RULES.iter().map(|(c, _)| *c))
            .chain(ASSERTION_FORM_RULES.iter().map(|(c, _)| *c))
            .chain(ASSERTION_CLAIM_RULES.iter().map(|(c, _)| *c));
        let mut all: Vec<Rule> = codes.flatten().chain(TOKEN_STAGE_RULES).copied().collect();
        all.sort_by_key(|r| r.code());
        all.dedup();
        all
    }

    /// Every code the token tables and stages name has a case in `TOKEN_CASES`, every case
    /// names one of them, `ASSERTION_CODES` is exactly what the assertion checks return, and
    /// the handler's codes are the rest of the OP's token codes.
    #[test]
    fn every_token_rule_has_a_unit_test() {
        let codes = token_codes();
        let tested: Vec<Rule> = TOKEN_CASES.iter().map(|(r, _, _)| *r).collect();
        let missing: Vec<&str> = codes
            .iter()
            .filter(|r| !tested.contains(r))
            .map(|r| r.code())
            .collect();
        assert!(missing.is_empty(), "rules without a unit test: {missing:?}");
        for r in &tested {
            assert!(
                codes.contains(r),
                "{} is tested but no rule returns it",
                r.code()
            );
        }
        let assertion: Vec<Rule> = codes
            .iter()
            .copied()
            .filter(|r| r.code().starts_with("op.token.client-assertion."))
            .collect();
        assert_eq!(assertion.len(), ASSERTION_CODES.len());
        assert!(assertion.iter().all(|r| ASSERTION_CODES.contains(r)));
        for r in TOKEN_HANDLER_RULES {
            assert!(
                !codes.contains(r),
                "{} is both a table and a handler rule",
                r.code()
            );
        }
        let unlisted: Vec<&str> = Rule::ALL
            .iter()
            .filter(|r| r.code().starts_with("op.token."))
            .filter(|r| !codes.contains(r) && !TOKEN_HANDLER_RULES.contains(r))
            .map(|r| r.code())
            .collect();
        assert!(
            unlisted.is_empty(),
            "op.token codes in no table nor handler list: {unlisted:?}"
        );
    }

    /// The body of a form.
    fn body(f: &HashMap<String, String>) -> Bytes {
        Bytes::from(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(f.iter())
                .finish(),
        )
    }

    /// `POST /token` with the honest exchange's form, `edit` applied; the RP cached as
    /// resolved, as after its authorization request.
    fn post_token(
        fx: &Fixture,
        edit: impl FnOnce(&Fixture, &mut HashMap<String, String>),
    ) -> Response {
        fx.op
            .0
            .clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(RP.into(), fx.client.clone());
        let v = "v".repeat(64);
        let c = code(fx, &v);
        let mut f = request(fx, &c, &v);
        edit(fx, &mut f);
        block_on(token(State(fx.op.clone()), body(&f)))
    }

    /// A handler case: the response of one edited call to the token endpoint (or its
    /// neighbours) whose `X-SPID-Rule` must be the rule.
    pub(crate) type HandlerCase = (Rule, &'static str, fn(&Fixture) -> Response);

    /// The token endpoint's codes decided by handlers ([`TOKEN_HANDLER_RULES`]), each on
    /// the honest call with one edit, plus the code exchange's parameters refused there.
    pub(crate) const HANDLER_CASES: &[HandlerCase] = &[
        (Rule::OpTokenMethod, "GET /token", |_| {
            block_on(wrong_method())
        }),
        (Rule::OpTokenParameters, "no client_id", |fx| {
            post_token(fx, |_, f| {
                f.remove("client_id");
            })
        }),
        (Rule::OpTokenClientUntrusted, "RP not resolvable", |fx| {
            // No trust anchor: nothing to resolve an unknown RP through (nothing fetched).
            post_token(fx, |_, f| {
                f.insert("client_id".into(), "http://unknown.example/rp".into());
            })
        }),
        (
            Rule::OpTokenClientUntrusted,
            "introspection by an RP not resolvable",
            |fx| {
                let v = "v".repeat(64);
                let mut f = request(fx, "", &v);
                f.insert("client_id".into(), "http://unknown.example/rp".into());
                f.insert("token".into(), "x.y.z".into());
                block_on(super::super::introspect::introspection(
                    State(fx.op.clone()),
                    body(&f),
                ))
            },
        ),
        (Rule::OpTokenGrant, "refresh_token not one of ours", |fx| {
            post_token(fx, |_, f| {
                f.insert("grant_type".into(), "refresh_token".into());
                f.insert("refresh_token".into(), "x.y.z".into());
            })
        }),
    ];

    /// The rule a response names in `X-SPID-Rule`.
    pub(crate) fn rule_of(r: &Response) -> Option<&str> {
        r.headers()
            .get(crate::oidc::RULE_HEADER)
            .and_then(|v| v.to_str().ok())
    }

    /// The honest call to `/token` answers tokens; each case's edit is refused by its rule.
    #[test]
    fn each_token_handler_rule_refuses_its_edit() {
        let fx = fixture();
        let honest = post_token(&fx, |_, _| {});
        assert_eq!(honest.status(), StatusCode::OK);
        assert_eq!(rule_of(&honest), None);
        let wrong: Vec<String> = HANDLER_CASES
            .iter()
            .filter_map(|(rule, what, case)| {
                let r = case(&fx);
                (rule_of(&r) != Some(rule.code()) || r.status().is_success()).then(|| {
                    format!(
                        "{what} ({}): got {} {:?}",
                        rule.code(),
                        r.status(),
                        rule_of(&r)
                    )
                })
            })
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        for r in TOKEN_HANDLER_RULES {
            assert!(
                HANDLER_CASES.iter().any(|(t, _, _)| t == r),
                "{} has no handler case",
                r.code()
            );
        }
    }
}
