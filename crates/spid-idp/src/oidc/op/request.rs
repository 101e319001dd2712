//! The OP's checks of an authorization request: HTTP parameters plus the (already
//! signature-verified) request object. Pure functions, so every refusal is unit-tested.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};
use spid_core::oidc::jose::{check_time_claims, decode_unverified, JoseError};
use spid_core::oidc::pkce::strong_random_string;
use spid_core::oidc::Profile;
use spid_core::{Rule, SpidLevel};
use std::collections::HashMap;

/// An authorization request that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidAuthz {
    /// The RP (its entity id).
    pub client_id: String,
    /// Where the answer goes (one of the RP's registered `redirect_uris`).
    pub redirect_uri: String,
    /// Echoed in the answer.
    pub state: String,
    /// Echoed in the ID token.
    pub nonce: String,
    /// PKCE `S256` challenge.
    pub code_challenge: String,
    /// Requested scopes.
    pub scope: Vec<String>,
    /// Requested levels, in preference order.
    pub acr_values: Vec<SpidLevel>,
    /// Claims requested under `claims.userinfo`, plus those of the `profile` and `email`
    /// scopes where the profile allows them (CIE).
    pub userinfo_claims: Vec<String>,
    /// Claims requested under `claims.id_token`, kept only where the profile releases claims
    /// in the ID token (CIE `claims_in_id_token`); empty otherwise.
    pub id_token_claims: Vec<String>,
    /// `consent` or `consent login`.
    pub prompt: String,
    /// How the answer travels back.
    pub response_mode: ResponseMode,
}

/// How the authorization response reaches the RP (`response_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseMode {
    /// A 302 with the parameters in the query (the default for `code`).
    #[default]
    Query,
    /// An auto-submitting HTML form POSTed to the `redirect_uri`.
    FormPost,
}

/// Why an authorization request was refused. [`AuthzRefusal::error`] is the OAuth error
/// code; [`AuthzRefusal::redirectable`] says whether it may be sent to the `redirect_uri`
/// (never when the `redirect_uri` itself is not trusted: HTTP 400 instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthzRefusal {
    /// No `client_id` HTTP parameter (nor, where the profile makes it optional, a request
    /// object naming the RP).
    #[error("client_id is required")]
    MissingClientId,
    /// The RP could not be resolved through the trust anchor (chain or trust mark).
    #[error("client not trusted: {0}")]
    UntrustedClient(String),
    /// The trust anchor (nor an intermediate it lists) has no statement about the RP:
    /// nothing was fetched from its `client_id`.
    #[error("client not trusted: {0}")]
    UnlistedClient(String),
    /// A document of the RP's chain could not be fetched (summary; the reason is logged).
    #[error("client not trusted: {0}")]
    ClientFetchFailed(String),
    /// No `request` parameter.
    #[error("a request object is required")]
    MissingRequest,
    /// A `request_uri`, which SPID does not use: the request object goes by value.
    #[error("request_uri_not_supported: pass the request object by value")]
    RequestUri,
    /// The request object (its `jti`, else the whole JWT) was answered already.
    #[error("this request object was already used: start the login again")]
    Replayed,
    /// `redirect_uri` missing or not in the RP's metadata.
    #[error("redirect_uri {0:?} is not registered")]
    RedirectUri(String),
    /// `request` is not a compact JWS.
    #[error("the request object is not a JWS")]
    NotJws,
    /// The request object's signature does not verify with the RP's keys (or its alg is
    /// not allowed).
    #[error("request object signature: {0}")]
    RequestSignature(String),
    /// The request object's own claims are wrong (iss, aud, iat, exp, sub).
    #[error("invalid request object: {0}")]
    RequestObject(String),
    /// HTTP parameter and request object disagree, or a mandatory claim is missing.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// `response_type` is not `code`.
    #[error("response_type must be code")]
    ResponseType,
    /// `scope` lacks `openid` or has a value the profile does not define.
    #[error("invalid scope: {0}")]
    Scope(String),
    /// PKCE: no `code_challenge` or a method other than `S256`.
    #[error("PKCE: {0}")]
    Pkce(String),
    /// `nonce` or `state` shorter than 32 or not alphanumeric.
    #[error("{0} must be at least 32 alphanumeric characters")]
    WeakRandom(&'static str),
    /// `acr_values` missing, empty or with a non-SPID value.
    #[error("invalid acr_values: {0}")]
    AcrValues(String),
    /// `claims` asks for something outside `userinfo` (SPID: attributes only under userinfo;
    /// CIE and django-sdk: `id_token` too).
    #[error("invalid claims: {0}")]
    Claims(String),
    /// `prompt` other than `consent` or `consent login`.
    #[error("invalid prompt {0:?}")]
    Prompt(String),
    /// The user has no credential for any requested level, or refused consent.
    #[error("access denied: {0}")]
    AccessDenied(String),
}

impl AuthzRefusal {
    /// The OAuth 2.0 / OIDC error code.
    pub fn error(&self) -> &'static str {
        match self {
            AuthzRefusal::MissingClientId
            | AuthzRefusal::MissingRequest
            | AuthzRefusal::RequestUri
            | AuthzRefusal::Replayed
            | AuthzRefusal::RedirectUri(_)
            | AuthzRefusal::InvalidRequest(_)
            | AuthzRefusal::Pkce(_)
            | AuthzRefusal::WeakRandom(_)
            | AuthzRefusal::AcrValues(_)
            | AuthzRefusal::Claims(_)
            | AuthzRefusal::Prompt(_) => "invalid_request",
            AuthzRefusal::UntrustedClient(_)
            | AuthzRefusal::UnlistedClient(_)
            | AuthzRefusal::ClientFetchFailed(_) => "invalid_client",
            AuthzRefusal::RequestObject(_)
            | AuthzRefusal::NotJws
            | AuthzRefusal::RequestSignature(_) => "invalid_request_object",
            AuthzRefusal::ResponseType => "unsupported_response_type",
            AuthzRefusal::Scope(_) => "invalid_scope",
            AuthzRefusal::AccessDenied(_) => "access_denied",
        }
    }

    /// The rule that decided (sent as `X-SPID-Rule`).
    pub fn rule(&self) -> Rule {
        match self {
            AuthzRefusal::MissingClientId => Rule::OpAuthzClientId,
            AuthzRefusal::UntrustedClient(_) => Rule::OpAuthzClientUntrusted,
            AuthzRefusal::UnlistedClient(_) => Rule::OpAuthzClientUnlisted,
            AuthzRefusal::ClientFetchFailed(_) => Rule::OpAuthzClientFetchFailed,
            AuthzRefusal::MissingRequest | AuthzRefusal::RequestUri => Rule::OpAuthzRequestMissing,
            AuthzRefusal::Replayed => Rule::OpAuthzRequestReplayed,
            AuthzRefusal::RedirectUri(_) => Rule::OpAuthzRedirectUri,
            AuthzRefusal::NotJws => Rule::OpAuthzRequestMalformed,
            AuthzRefusal::RequestSignature(_) => Rule::OpAuthzRequestSignature,
            AuthzRefusal::RequestObject(_) => Rule::OpAuthzRequestClaims,
            AuthzRefusal::InvalidRequest(_) => Rule::OpAuthzParameters,
            AuthzRefusal::ResponseType => Rule::OpAuthzResponseType,
            AuthzRefusal::Scope(_) => Rule::OpAuthzScope,
            AuthzRefusal::Pkce(_) => Rule::OpAuthzPkce,
            AuthzRefusal::WeakRandom("state") => Rule::OpAuthzState,
            AuthzRefusal::WeakRandom(_) => Rule::OpAuthzNonce,
            AuthzRefusal::AcrValues(_) => Rule::OpAuthzAcrValues,
            AuthzRefusal::Claims(_) => Rule::OpAuthzClaims,
            AuthzRefusal::Prompt(_) => Rule::OpAuthzPrompt,
            AuthzRefusal::AccessDenied(_) => Rule::OpAuthzAccessDenied,
        }
    }

    /// Whether the refusal may be sent to the `redirect_uri`.
    pub fn redirectable(&self) -> bool {
        !matches!(
            self,
            AuthzRefusal::MissingClientId
                | AuthzRefusal::UntrustedClient(_)
                | AuthzRefusal::UnlistedClient(_)
                | AuthzRefusal::ClientFetchFailed(_)
                | AuthzRefusal::MissingRequest
                | AuthzRefusal::RequestUri
                | AuthzRefusal::Replayed
                | AuthzRefusal::RedirectUri(_)
                | AuthzRefusal::NotJws
        )
    }
}

fn claim_str<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    obj.get(name).and_then(Value::as_str)
}

fn required<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, AuthzRefusal> {
    claim_str(obj, name)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            AuthzRefusal::InvalidRequest(format!("{name} missing from the request object"))
        })
}

/// The `redirect_uri` of a request object, checked against the RP's registered ones. Done
/// before anything else, since every later refusal is sent there.
pub fn check_redirect_uri(claims: &Value, registered: &[String]) -> Result<String, AuthzRefusal> {
    let uri = claims
        .get("redirect_uri")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if uri.is_empty() || !registered.iter().any(|r| r == uri) {
        return Err(AuthzRefusal::RedirectUri(uri.to_string()));
    }
    Ok(uri.to_string())
}

/// Checks an authorization request: `params` are the HTTP parameters, `claims` the request
/// object's verified claims, `issuer` the OP, `redirect_uris` the RP's registered ones.
///
/// Under the SPID reading ([`check_request_for`] takes a profile). Order: redirect_uri (else
/// HTTP 400); `client_id` (HTTP = object = `iss`); `aud` ∋ OP; `exp`/`iat`; no `sub`;
/// `response_type` = code in both; `scope` equal in both, ∋ openid, ⊆ {openid, offline_access}; PKCE `S256` with a challenge; `nonce`, `state` ≥ 32
/// alphanumerics; `acr_values` SPID URIs in preference order; `claims` only `userinfo`;
/// `prompt` ∈ {consent, consent login}.
pub fn check_request(
    params: &HashMap<String, String>,
    claims: &Value,
    issuer: &str,
    redirect_uris: &[String],
    now: DateTime<Utc>,
    skew: Duration,
) -> Result<ValidAuthz, AuthzRefusal> {
    check_request_with(params, claims, issuer, redirect_uris, now, skew, false)
}

/// What every authorization-request rule may read besides the request: the OP and the RP's
/// registration, the current time and the profile's allowances.
#[derive(Debug, Clone, Copy)]
pub struct AuthzCtx<'a> {
    /// The OP's entity id (the request object's `aud`).
    pub issuer: &'a str,
    /// The RP's registered `redirect_uris`.
    pub redirect_uris: &'a [String],
    /// Now.
    pub now: DateTime<Utc>,
    /// Tolerated clock skew.
    pub skew: Duration,
    /// The profile's `authz_id_token_claims_allowed`.
    pub id_token_claims_allowed: bool,
    /// Scope values besides `openid` the OP accepts (the profile's `scopes_supported`).
    pub scopes: &'a [String],
    /// `client_id` and `response_type` must be HTTP parameters too (the profile's
    /// `authz_http_params_required`: SPID MUST, CIE SHOULD).
    pub http_params_required: bool,
}

/// An authorization request under check: the HTTP parameters and the request object's
/// verified claims.
#[derive(Debug, Clone, Copy)]
pub struct AuthzInput<'a> {
    /// The HTTP parameters.
    pub params: &'a HashMap<String, String>,
    /// The request object's claims, as sent.
    pub claims: &'a Value,
    /// The same claims as an object (empty when they are not one: the table
    /// refuses that).
    pub obj: &'a Map<String, Value>,
}

impl AuthzInput<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
    fn claim(&self, name: &str) -> Option<&str> {
        claim_str(self.obj, name)
    }
    fn scopes(&self) -> Vec<String> {
        self.claim("scope")
            .unwrap_or_default()
            .split(' ')
            .map(String::from)
            .collect()
    }
    fn prompt(&self) -> &str {
        self.claim("prompt").unwrap_or_default()
    }
}

/// A check's verdict: nothing, or the refusal whose [`AuthzRefusal::rule`] decided.
pub type AuthzCheck = Result<(), AuthzRefusal>;

/// An entry of [`AUTHZ_RULES`]: the codes the check may return and the check.
pub type AuthzRule = (
    &'static [Rule],
    fn(&AuthzInput<'_>, &AuthzCtx<'_>) -> AuthzCheck,
);

/// The checks of an authorization request, in order; the first refusal decides. The
/// `redirect_uri` comes first since every later refusal is sent there.
pub const AUTHZ_RULES: &[AuthzRule] = &[
    (&[Rule::OpAuthzRedirectUri], redirect_uri),
    (&[Rule::OpAuthzRequestClaims], request_object),
    (&[Rule::OpAuthzParameters], client_id),
    (&[Rule::OpAuthzRequestClaims], iss),
    (&[Rule::OpAuthzRequestClaims], aud),
    (&[Rule::OpAuthzRequestClaims], iat),
    (&[Rule::OpAuthzRequestClaims], times),
    (&[Rule::OpAuthzRequestClaims], no_sub),
    (
        &[Rule::OpAuthzParameters, Rule::OpAuthzResponseType],
        response_type,
    ),
    (&[Rule::OpAuthzParameters], scope_param),
    (&[Rule::OpAuthzScope], scope_openid),
    (&[Rule::OpAuthzScope], scope_spid),
    (&[Rule::OpAuthzPkce], pkce_challenge),
    (&[Rule::OpAuthzPkce], pkce_method),
    (&[Rule::OpAuthzNonce], nonce),
    (&[Rule::OpAuthzState], state),
    (&[Rule::OpAuthzParameters], response_mode),
    (&[Rule::OpAuthzAcrValues], acr),
    (&[Rule::OpAuthzClaims], claims),
    (&[Rule::OpAuthzPrompt], prompt),
    (&[Rule::OpAuthzPrompt], offline_consent),
    (&[Rule::OpAuthzAcrValues], offline_l1_last),
];

/// The HTTP parameters an authorization request needs before its RP is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzEnvelope<'a> {
    /// The `client_id` parameter (not empty); under a profile where it is only SHOULD (CIE)
    /// and absent, the request object's `client_id` (else `iss`), read unverified.
    pub client_id: std::borrow::Cow<'a, str>,
    /// The request object, by value (not yet known to be a JWS).
    pub request: &'a str,
}

/// An entry of [`ENVELOPE_RULES`]: the codes the check may return and the check.
pub type EnvelopeRule = (&'static [Rule], fn(&HashMap<String, String>) -> AuthzCheck);

/// The checks of the HTTP parameters before anything is fetched, in order; every refusal is
/// HTTP 400 on the OP (nothing says yet where a redirect could go).
pub const ENVELOPE_RULES: &[EnvelopeRule] = &[
    (&[Rule::OpAuthzClientId], envelope_client_id),
    (&[Rule::OpAuthzRequestMissing], envelope_no_request_uri),
    (&[Rule::OpAuthzRequestMissing], envelope_request),
];

fn envelope_client_id(p: &HashMap<String, String>) -> AuthzCheck {
    match p.get("client_id") {
        Some(c) if !c.is_empty() => Ok(()),
        _ => Err(AuthzRefusal::MissingClientId),
    }
}

fn envelope_no_request_uri(p: &HashMap<String, String>) -> AuthzCheck {
    if p.contains_key("request_uri") {
        return Err(AuthzRefusal::RequestUri);
    }
    Ok(())
}

fn envelope_request(p: &HashMap<String, String>) -> AuthzCheck {
    if !p.contains_key("request") {
        return Err(AuthzRefusal::MissingRequest);
    }
    Ok(())
}

/// Runs [`ENVELOPE_RULES`] in order on the HTTP parameters; the first refusal decides.
pub fn check_envelope(params: &HashMap<String, String>) -> Result<AuthzEnvelope<'_>, AuthzRefusal> {
    for (codes, check) in ENVELOPE_RULES {
        if let Err(r) = check(params) {
            debug_assert!(codes.contains(&r.rule()), "{:?} not in {codes:?}", r.rule());
            return Err(r);
        }
    }
    // Both were judged by ENVELOPE_RULES.
    let get = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    Ok(AuthzEnvelope {
        client_id: get("client_id").into(),
        request: get("request"),
    })
}

/// [`check_envelope`] where `client_id` need not be an HTTP parameter
/// (`http_params_required` false, CIE): without one, the request object names the RP. That
/// is routing only: the object's signature is then checked with that RP's keys, and
/// [`AUTHZ_RULES`] require `iss` = `client_id`.
pub fn check_envelope_for(
    params: &HashMap<String, String>,
    http_params_required: bool,
) -> Result<AuthzEnvelope<'_>, AuthzRefusal> {
    let absent = params.get("client_id").is_none_or(|c| c.is_empty());
    let named = (!http_params_required && absent)
        .then(|| request_client_id(params))
        .flatten();
    let Some(id) = named else {
        return check_envelope(params);
    };
    let mut with_id = params.clone();
    with_id.insert("client_id".into(), id.clone());
    check_envelope(&with_id)?;
    Ok(AuthzEnvelope {
        client_id: id.into(),
        request: params
            .get("request")
            .map(String::as_str)
            .unwrap_or_default(),
    })
}

/// The RP a request object names (`client_id`, else `iss`), unverified.
fn request_client_id(params: &HashMap<String, String>) -> Option<String> {
    let (_, claims) = decode_unverified(params.get("request")?).ok()?;
    ["client_id", "iss"]
        .iter()
        .find_map(|k| claims.get(*k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// Codes decided outside [`AUTHZ_RULES`]: before them by [`ENVELOPE_RULES`] (no
/// `client_id`, a `request_uri` or no `request`), by the RP's resolution through the trust
/// anchor and by the request object's form and signature (`authorize.rs`), after them by
/// the replay check and the login (`access_denied`). Each has its unit tests beside the
/// code deciding it; `op::tests` checks that every `op.*` code has one.
pub const AUTHZ_HANDLER_RULES: &[Rule] = &[
    Rule::OpAuthzClientId,
    Rule::OpAuthzRequestMissing,
    Rule::OpAuthzClientUntrusted,
    Rule::OpAuthzClientUnlisted,
    Rule::OpAuthzClientFetchFailed,
    Rule::OpAuthzRequestMalformed,
    Rule::OpAuthzRequestSignature,
    Rule::OpAuthzRequestReplayed,
    Rule::OpAuthzAccessDenied,
];

/// Runs [`AUTHZ_RULES`] in order; the first refusal decides.
pub fn run_authz_rules(input: &AuthzInput<'_>, ctx: &AuthzCtx<'_>) -> AuthzCheck {
    for (codes, check) in AUTHZ_RULES {
        if let Err(r) = check(input, ctx) {
            debug_assert!(codes.contains(&r.rule()), "{:?} not in {codes:?}", r.rule());
            return Err(r);
        }
    }
    Ok(())
}

fn redirect_uri(i: &AuthzInput<'_>, c: &AuthzCtx<'_>) -> AuthzCheck {
    check_redirect_uri(i.claims, c.redirect_uris).map(|_| ())
}

/// A guard: claims that are not an object have no `redirect_uri`, so [`redirect_uri`]
/// refuses them first and no unit case can reach this one.
fn request_object(i: &AuthzInput<'_>, _: &AuthzCtx<'_>) -> AuthzCheck {
    match i.claims.as_object() {
        Some(_) => Ok(()),
        None => Err(AuthzRefusal::RequestObject("not a JSON object".into())),
    }
}

/// The HTTP copy of a request-object member: present and equal where the profile requires
/// it (SPID), equal when present otherwise (CIE: SHOULD).
fn http_copy(i: &AuthzInput<'_>, c: &AuthzCtx<'_>, name: &str, value: &str) -> AuthzCheck {
    match i.param(name) {
        Some(p) if p == value => Ok(()),
        None if !c.http_params_required => Ok(()),
        None => Err(AuthzRefusal::InvalidRequest(format!(
            "{name} is required as an HTTP parameter too"
        ))),
        Some(_) => Err(AuthzRefusal::InvalidRequest(format!(
            "{name} differs between HTTP parameters and request object"
        ))),
    }
}

fn client_id(i: &AuthzInput<'_>, c: &AuthzCtx<'_>) -> AuthzCheck {
    let client_id = required(i.obj, "client_id")?;
    http_copy(i, c, "client_id", client_id)
}

fn iss(i: &AuthzInput<'_>, _: &AuthzCtx<'_>) -> AuthzCheck {
    if i.claim("iss") != i.claim("client_id") {
        return Err(AuthzRefusal::RequestObject(
            "iss is not the client_id".into(),
        ));
    }
    Ok(())
}

fn aud(i: &AuthzInput<'_>, c: &AuthzCtx<'_>) -> AuthzCheck {
    let aud_ok = match i.obj.get("aud") {
        Some(Value::String(a)) => a == c.issuer,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(c.issuer)),
        _ => false,
    };
    if !aud_ok {
        return Err(AuthzRefusal::RequestObject("aud is not this OP".into()));
    }
    Ok(())
}

fn iat(i: &AuthzInput<'_>, _: &AuthzCtx<'_>) -> AuthzCheck {
    if i.obj.get("iat").is_none() {
        return Err(AuthzRefusal::RequestObject("iat missing".into()));
    }
    Ok(())
}

fn times(i: &AuthzInput<'_>, c: &AuthzCtx<'_>) -> AuthzCheck {
    check_time_claims(i.claims, c.now, c.skew, true)
        .map_err(|e: JoseError| AuthzRefusal::RequestObject(e.to_string()))
}

fn no_sub(i: &AuthzInput<'_>, _: &AuthzCtx<'_>) -> AuthzCheck {
    if i.obj.contains_key("sub") {
        // SPID: a request object with `sub` could be replayed as a client assertion.
        return Err(AuthzRefusal::RequestObject(
            "sub must not be present".into(),
        ));
    }
    Ok(())
}

fn response_type(i: &AuthzInput<'_>, c: &AuthzCtx<'_>) -> AuthzCheck {
    let rt = required(i.obj, "response_type")?;
    if rt != "code" || i.param("response_type").is_some_and(|p| p != rt) {
        return Err(AuthzRefusal::ResponseType);
    }
    http_copy(i, c, "response_type", rt)
}

fn scope_param(i: &AuthzInput<'_>, _: &AuthzCtx<'_>) -> AuthzCheck {
    let scope = required(i.obj, "scope")?;
    if i.param("scope") != Some(scope) {
        return Err(AuthzRefusal::InvalidRequest(
            "scope differs between HTTP parameters and request object".into(),
        ));
    }
    Ok(())
}

fn scope_openid(i: &AuthzInput<'_>, _: &AuthzCtx<'_>) -> AuthzCheck {
    if !i.scopes().iter().any(|s| s == "openid") {
        return Err(AuthzRefusal::Scope("openid is required".into()));
    }
    Ok(())
}

fn scope_spid(i: &AuthzInput<'_>, c: &AuthzCtx<'_>) -> AuthzCheck {
    if let Some(bad) = i
        .scopes()
        .iter()
        .find(|s| s.as_str() != "openid" && !c.scopes.contains(s))
    {
        return Err(AuthzRefusal::Scope(format!(
            "{bad} is not a scope of this profile"
        )));
    }
    Ok(())
}

/// The PKCE challenge, from the request object or else the HTTP parameters.
fn challenge<'a>(i: &AuthzInput<'a>) -> Option<&'a str> {
    claim_str(i.obj, "code_challenge")
        .or(i.params.get("code_challenge").map(String::as_str))
        .filter(|c| !c.is_empty())
}

fn pkce_challenge(i: &AuthzInput<'_>, _: &AuthzCtx<'_>) -> AuthzCheck {
    challenge(i)
        .map(|_| ())
        .ok_or_else(|| AuthzRefusal::Pkce("code_challenge missing".into()))
}

fn pkce_method(i: &AuthzInput<'_>, _: &AuthzCtx<'_>) -> AuthzCheck {
    let method = i
        .claim("code_challenge_method")
        .or(i.param("code_challenge_method"));
    if method != Some("S256") {
        return Err(AuthzRefusal::Pkce(
            "code_challenge_method must be S256".into(),
        ));
    }
    Ok(())
}

fn nonce(i: &AuthzInput<'_>, _: &AuthzCtx<'_>) -> AuthzCheck {
    if !strong_random_string(i.claim("nonce").unwrap_or_default()) {
        return Err(AuthzRefusal::WeakRandom("nonce"));
    }
    Ok(())
}

fn state(i: &AuthzInput<'_>, _: &AuthzCtx<'_>) -> AuthzCheck {
    if !strong_random_string(i.claim("state").unwrap_or_default()) {
        return Err(AuthzRefusal::WeakRandom("state"));
    }
    Ok(())
}

fn response_mode_of(i: &AuthzInput<'_>) -> Result<ResponseMode, AuthzRefusal> {
    match i.claim("response_mode") {
        None | Some("query") => Ok(ResponseMode::Query),
        Some("form_post") => Ok(ResponseMode::FormPost),
        Some(other) => Err(AuthzRefusal::InvalidRequest(format!(
            "response_mode {other} is not supported"
        ))),
    }
}

fn response_mode(i: &AuthzInput<'_>, _: &AuthzCtx<'_>) -> AuthzCheck {
    response_mode_of(i).map(|_| ())
}

fn acr(i: &AuthzInput<'_>, _: &AuthzCtx<'_>) -> AuthzCheck {
    acr_values(i.claim("acr_values")).map(|_| ())
}

fn claims(i: &AuthzInput<'_>, c: &AuthzCtx<'_>) -> AuthzCheck {
    userinfo_claims(i.obj.get("claims"), c.id_token_claims_allowed).map(|_| ())
}

fn prompt(i: &AuthzInput<'_>, _: &AuthzCtx<'_>) -> AuthzCheck {
    let prompt = i.prompt();
    if prompt != "consent" && prompt != "consent login" {
        return Err(AuthzRefusal::Prompt(prompt.to_string()));
    }
    Ok(())
}

fn offline_access(i: &AuthzInput<'_>) -> bool {
    i.scopes().iter().any(|s| s == "offline_access")
}

/// SPID: long sessions need explicit consent (check-op "offline access").
fn offline_consent(i: &AuthzInput<'_>, _: &AuthzCtx<'_>) -> AuthzCheck {
    let prompt = i.prompt();
    if offline_access(i) && prompt != "consent" {
        return Err(AuthzRefusal::Prompt(format!(
            "{prompt} (offline_access requires consent)"
        )));
    }
    Ok(())
}

/// SPID: with `offline_access`, SpidL1 (the level a refresh yields) may only come last in
/// the preference order (check-op "offline access").
fn offline_l1_last(i: &AuthzInput<'_>, _: &AuthzCtx<'_>) -> AuthzCheck {
    let levels = acr_values(i.claim("acr_values"))?;
    if offline_access(i) && levels.len() > 1 && levels.first() == Some(&SpidLevel::L1) {
        return Err(AuthzRefusal::AcrValues(
            "with offline_access SpidL1 must come last".into(),
        ));
    }
    Ok(())
}

/// [`check_request`], with `id_token_claims_allowed` (the `django-sdk` profile's
/// `authz_id_token_claims_allowed`): a `claims.id_token` member is ignored instead of refused.
pub fn check_request_with(
    params: &HashMap<String, String>,
    claims: &Value,
    issuer: &str,
    redirect_uris: &[String],
    now: DateTime<Utc>,
    skew: Duration,
    id_token_claims_allowed: bool,
) -> Result<ValidAuthz, AuthzRefusal> {
    let spid = Profile::rules_2023();
    let ctx = AuthzCtx {
        issuer,
        redirect_uris,
        now,
        skew,
        id_token_claims_allowed,
        scopes: &spid.scopes_supported,
        http_params_required: spid.authz_http_params_required,
    };
    check_request_ctx(params, claims, &ctx, false)
}

/// [`check_request`] under `profile`: its skew, its scopes (CIE adds `profile` and `email`),
/// whether `claims.id_token` is allowed and kept for the ID token, whether `client_id` and
/// `response_type` must be HTTP parameters too.
pub fn check_request_for(
    params: &HashMap<String, String>,
    claims: &Value,
    issuer: &str,
    redirect_uris: &[String],
    now: DateTime<Utc>,
    profile: &Profile,
) -> Result<ValidAuthz, AuthzRefusal> {
    let ctx = AuthzCtx {
        issuer,
        redirect_uris,
        now,
        skew: profile.skew(),
        id_token_claims_allowed: profile.authz_id_token_claims_allowed,
        scopes: &profile.scopes_supported,
        http_params_required: profile.authz_http_params_required,
    };
    check_request_ctx(params, claims, &ctx, profile.claims_in_id_token)
}

fn check_request_ctx(
    params: &HashMap<String, String>,
    claims: &Value,
    ctx: &AuthzCtx<'_>,
    claims_in_id_token: bool,
) -> Result<ValidAuthz, AuthzRefusal> {
    let (redirect_uris, id_token_claims_allowed) = (ctx.redirect_uris, ctx.id_token_claims_allowed);
    let empty = Map::new();
    let input = AuthzInput {
        params,
        claims,
        obj: claims.as_object().unwrap_or(&empty),
    };
    run_authz_rules(&input, ctx)?;
    let scope = input.scopes();
    let mut userinfo = userinfo_claims(input.obj.get("claims"), id_token_claims_allowed)?;
    // The scopes a profile accepts beyond SPID's stand for their claims (OIDC Core 5.4).
    for (s, names) in SCOPE_CLAIMS {
        if scope.iter().any(|x| x == s) {
            for n in *names {
                if !userinfo.iter().any(|c| c == n) {
                    userinfo.push(n.to_string());
                }
            }
        }
    }
    let id_token_claims = if claims_in_id_token {
        member_claims(input.obj.get("claims"), "id_token")
    } else {
        Vec::new()
    };
    // Every value below was judged by AUTHZ_RULES.
    Ok(ValidAuthz {
        client_id: input.claim("client_id").unwrap_or_default().to_string(),
        redirect_uri: check_redirect_uri(claims, redirect_uris)?,
        state: input.claim("state").unwrap_or_default().to_string(),
        nonce: input.claim("nonce").unwrap_or_default().to_string(),
        code_challenge: challenge(&input).unwrap_or_default().to_string(),
        scope,
        acr_values: acr_values(input.claim("acr_values"))?,
        userinfo_claims: userinfo,
        id_token_claims,
        prompt: input.prompt().to_string(),
        response_mode: response_mode_of(&input)?,
    })
}

fn acr_values(v: Option<&str>) -> Result<Vec<SpidLevel>, AuthzRefusal> {
    let v = v.unwrap_or_default();
    let levels = v
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| SpidLevel::from_uri(s).ok_or_else(|| AuthzRefusal::AcrValues(s.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    if levels.is_empty() {
        return Err(AuthzRefusal::AcrValues("none given".into()));
    }
    Ok(levels)
}

/// The claims the `profile` and `email` scopes stand for (CIE; SPID refuses both scopes).
pub const SCOPE_CLAIMS: &[(&str, &[&str])] = &[
    (
        "profile",
        &[
            "given_name",
            "family_name",
            "birthdate",
            "https://attributes.eid.gov.it/fiscal_number",
        ],
    ),
    ("email", &["email", "email_verified"]),
];

/// The claim names under `claims.<member>` (none when absent or not an object).
fn member_claims(v: Option<&Value>, member: &str) -> Vec<String> {
    v.and_then(|v| v.get(member))
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn userinfo_claims(
    v: Option<&Value>,
    id_token_claims_allowed: bool,
) -> Result<Vec<String>, AuthzRefusal> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let obj = v
        .as_object()
        .ok_or_else(|| AuthzRefusal::Claims("claims is not an object".into()))?;
    if let Some(other) = obj
        .keys()
        .find(|k| *k != "userinfo" && !(id_token_claims_allowed && *k == "id_token"))
    {
        return Err(AuthzRefusal::Claims(format!(
            "claims.{other} is not allowed in SPID"
        )));
    }
    Ok(member_claims(Some(v), "userinfo"))
}

/// The level the OP grants a user whose strongest credential is `user_max`, for `acr_values`
/// in preference order: the first requested level the user can reach decides that the login
/// may proceed, and the user then authenticates with the strongest credential (SPID: a
/// higher level than requested never fails the request). None: `access_denied`.
pub fn grant_level(user_max: SpidLevel, acr_values: &[SpidLevel]) -> Option<SpidLevel> {
    acr_values
        .iter()
        .find(|l| **l <= user_max)
        .map(|_| user_max)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    const OP: &str = "http://op.example/oidc/op";
    const RP: &str = "http://rp.example/oidc/rp";

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
    }

    fn good() -> (HashMap<String, String>, Value) {
        let params: HashMap<String, String> = [
            ("client_id", RP),
            ("response_type", "code"),
            ("scope", "openid"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let claims = json!({
            "client_id": RP, "iss": RP, "aud": OP, "iat": 1_700_000_000, "exp": 1_700_000_060,
            "response_type": "code", "scope": "openid", "redirect_uri": format!("{RP}/callback"),
            "code_challenge": spid_core::oidc::pkce::challenge_s256(&"v".repeat(64)),
            "code_challenge_method": "S256", "nonce": "n".repeat(32), "state": "s".repeat(32),
            "acr_values": "https://www.spid.gov.it/SpidL2 https://www.spid.gov.it/SpidL1",
            "prompt": "consent login",
            "claims": {"userinfo": {"given_name": null}},
        });
        (params, claims)
    }

    fn check(p: &HashMap<String, String>, c: &Value) -> Result<ValidAuthz, AuthzRefusal> {
        check_request(
            p,
            c,
            OP,
            &[format!("{RP}/callback")],
            now(),
            Duration::seconds(60),
        )
    }

    fn refused(mutate: impl FnOnce(&mut HashMap<String, String>, &mut Value)) -> AuthzRefusal {
        let (mut p, mut c) = good();
        mutate(&mut p, &mut c);
        match check(&p, &c) {
            Err(e) => e,
            Ok(v) => panic!("accepted: {v:?}"),
        }
    }

    #[test]
    fn good_request_passes() {
        let (p, c) = good();
        let v = check(&p, &c).expect("valid");
        assert_eq!(v.acr_values, vec![SpidLevel::L2, SpidLevel::L1]);
        assert_eq!(v.userinfo_claims, vec!["given_name".to_string()]);
    }

    #[test]
    fn redirect_uri_mismatch_is_not_redirectable() {
        let e = refused(|_, c| c["redirect_uri"] = json!("http://evil.example/cb"));
        assert_eq!(
            e,
            AuthzRefusal::RedirectUri("http://evil.example/cb".into())
        );
        assert_eq!(e.error(), "invalid_request");
        assert!(!e.redirectable());
        assert!(matches!(
            refused(|_, c| c["redirect_uri"] = json!(null)),
            AuthzRefusal::RedirectUri(_)
        ));
    }

    #[test]
    fn short_nonce_and_state_are_refused() {
        let e = refused(|_, c| c["nonce"] = json!("n".repeat(31)));
        assert_eq!(e, AuthzRefusal::WeakRandom("nonce"));
        assert_eq!(e.error(), "invalid_request");
        assert!(e.redirectable());
        assert_eq!(
            refused(|_, c| c["state"] = json!("s".repeat(31))),
            AuthzRefusal::WeakRandom("state")
        );
        assert_eq!(
            refused(|_, c| c["state"] = json!(format!("{}-", "s".repeat(32)))),
            AuthzRefusal::WeakRandom("state")
        );
    }

    #[test]
    fn claims_under_id_token_are_refused() {
        let e = refused(|_, c| c["claims"] = json!({"id_token": {"given_name": null}}));
        assert!(matches!(e, AuthzRefusal::Claims(_)));
        assert_eq!(e.error(), "invalid_request");
    }

    #[test]
    fn claims_under_id_token_are_ignored_only_when_the_profile_allows_it() {
        let (p, mut c) = good();
        c["claims"] = json!({"id_token": {"email": {"essential": true}},
                             "userinfo": {"given_name": null}});
        let with = |c: &Value, allowed| {
            check_request_with(
                &p,
                c,
                OP,
                &[format!("{RP}/callback")],
                now(),
                Duration::seconds(60),
                allowed,
            )
        };
        assert!(matches!(with(&c, false), Err(AuthzRefusal::Claims(_))));
        let v = with(&c, true).expect("django-sdk: claims.id_token ignored");
        assert_eq!(v.userinfo_claims, vec!["given_name".to_string()]);
        // Any other member is still refused.
        c["claims"] = json!({"other": {}});
        assert!(matches!(with(&c, true), Err(AuthzRefusal::Claims(_))));
        assert!(!spid_core::oidc::Profile::rules_2023().authz_id_token_claims_allowed);
        assert!(spid_core::oidc::Profile::django_sdk().authz_id_token_claims_allowed);
    }

    #[test]
    fn pkce_is_required_with_s256() {
        let e = refused(|_, c| {
            c.as_object_mut().map(|o| o.remove("code_challenge"));
        });
        assert_eq!(e.error(), "invalid_request");
        assert!(matches!(e, AuthzRefusal::Pkce(_)));
        assert!(matches!(
            refused(|_, c| c["code_challenge_method"] = json!("plain")),
            AuthzRefusal::Pkce(_)
        ));
    }

    #[test]
    fn parameter_consistency_and_object_claims() {
        assert_eq!(
            refused(|p, _| {
                p.insert("client_id".into(), "http://x".into());
            })
            .error(),
            "invalid_request"
        );
        assert_eq!(
            refused(|p, _| {
                p.insert("scope".into(), "openid offline_access".into());
            })
            .error(),
            "invalid_request"
        );
        assert_eq!(
            refused(|_, c| c["iss"] = json!("http://x")).error(),
            "invalid_request_object"
        );
        assert_eq!(
            refused(|_, c| c["aud"] = json!("http://x")).error(),
            "invalid_request_object"
        );
        assert_eq!(
            refused(|_, c| c["exp"] = json!(1_699_999_000)).error(),
            "invalid_request_object"
        );
        assert_eq!(
            refused(|_, c| c["sub"] = json!(RP)).error(),
            "invalid_request_object"
        );
        assert_eq!(
            refused(|_, c| c["response_type"] = json!("token")),
            AuthzRefusal::ResponseType
        );
        assert_eq!(
            refused(|p, c| {
                c["scope"] = json!("openid profile");
                p.insert("scope".into(), "openid profile".into());
            })
            .error(),
            "invalid_scope"
        );
        assert_eq!(
            refused(|_, c| c["acr_values"] = json!("urn:SpidL2")).error(),
            "invalid_request"
        );
        assert!(matches!(
            refused(|_, c| c["prompt"] = json!("login")),
            AuthzRefusal::Prompt(_)
        ));
    }

    #[test]
    fn response_modes() {
        let (p, mut c) = good();
        c["response_mode"] = json!("form_post");
        assert_eq!(
            check(&p, &c).map(|v| v.response_mode),
            Ok(ResponseMode::FormPost)
        );
        let e = refused(|_, c| c["response_mode"] = json!("fragment"));
        assert_eq!(e.error(), "invalid_request");
    }

    #[test]
    fn offline_access_needs_consent_and_l1_last() {
        let offline = |p: &mut HashMap<String, String>, c: &mut Value| {
            p.insert("scope".into(), "openid offline_access".into());
            c["scope"] = json!("openid offline_access");
        };
        let e = refused(|p, c| offline(p, c));
        assert!(matches!(e, AuthzRefusal::Prompt(_)), "{e:?}");
        let e = refused(|p, c| {
            offline(p, c);
            c["prompt"] = json!("consent");
            c["acr_values"] =
                json!("https://www.spid.gov.it/SpidL1 https://www.spid.gov.it/SpidL2");
        });
        assert!(matches!(e, AuthzRefusal::AcrValues(_)), "{e:?}");
        assert_eq!(e.error(), "invalid_request");
        let (mut p, mut c) = good();
        offline(&mut p, &mut c);
        c["prompt"] = json!("consent");
        assert!(check(&p, &c).is_ok());
    }

    pub(crate) type Edit = fn(&mut HashMap<String, String>, &mut Value);

    fn drop_claim(c: &mut Value, name: &str) {
        if let Some(o) = c.as_object_mut() {
            o.remove(name);
        }
    }

    fn offline(p: &mut HashMap<String, String>, c: &mut Value) {
        p.insert("scope".into(), "openid offline_access".into());
        c["scope"] = json!("openid offline_access");
    }

    /// One honest request plus one edit per entry of [`AUTHZ_RULES`] (and more for the
    /// entries that return several codes): the rule each edit must be refused by.
    pub(crate) const AUTHZ_CASES: &[(Rule, Edit)] = &[
        (Rule::OpAuthzRedirectUri, |_, c| {
            c["redirect_uri"] = json!("http://evil.example/cb")
        }),
        (Rule::OpAuthzParameters, |_, c| drop_claim(c, "client_id")),
        (Rule::OpAuthzParameters, |p, _| {
            p.insert("client_id".into(), "http://x".into());
        }),
        (Rule::OpAuthzRequestClaims, |_, c| {
            c["iss"] = json!("http://x")
        }),
        (Rule::OpAuthzRequestClaims, |_, c| {
            c["aud"] = json!("http://x")
        }),
        (Rule::OpAuthzRequestClaims, |_, c| drop_claim(c, "iat")),
        (Rule::OpAuthzRequestClaims, |_, c| {
            c["exp"] = json!(1_699_999_000)
        }),
        (Rule::OpAuthzRequestClaims, |_, c| c["sub"] = json!(RP)),
        (Rule::OpAuthzParameters, |_, c| {
            drop_claim(c, "response_type")
        }),
        (Rule::OpAuthzResponseType, |_, c| {
            c["response_type"] = json!("token")
        }),
        (Rule::OpAuthzResponseType, |p, _| {
            p.insert("response_type".into(), "id_token".into());
        }),
        (Rule::OpAuthzParameters, |p, _| {
            p.remove("response_type");
        }),
        (Rule::OpAuthzParameters, |_, c| drop_claim(c, "scope")),
        (Rule::OpAuthzParameters, |p, _| {
            p.insert("scope".into(), "openid offline_access".into());
        }),
        (Rule::OpAuthzScope, |p, c| {
            p.insert("scope".into(), "offline_access".into());
            c["scope"] = json!("offline_access");
        }),
        (Rule::OpAuthzScope, |p, c| {
            p.insert("scope".into(), "openid profile".into());
            c["scope"] = json!("openid profile");
        }),
        (Rule::OpAuthzPkce, |_, c| drop_claim(c, "code_challenge")),
        (Rule::OpAuthzPkce, |_, c| {
            c["code_challenge_method"] = json!("plain")
        }),
        (Rule::OpAuthzNonce, |_, c| {
            c["nonce"] = json!("n".repeat(31))
        }),
        (Rule::OpAuthzState, |_, c| {
            c["state"] = json!("s".repeat(31))
        }),
        (Rule::OpAuthzParameters, |_, c| {
            c["response_mode"] = json!("fragment")
        }),
        (Rule::OpAuthzAcrValues, |_, c| {
            c["acr_values"] = json!("urn:SpidL2")
        }),
        (Rule::OpAuthzAcrValues, |_, c| drop_claim(c, "acr_values")),
        (Rule::OpAuthzClaims, |_, c| {
            c["claims"] = json!({"id_token": {"given_name": null}})
        }),
        (Rule::OpAuthzPrompt, |_, c| c["prompt"] = json!("login")),
        (Rule::OpAuthzPrompt, offline),
        (Rule::OpAuthzAcrValues, |p, c| {
            offline(p, c);
            c["prompt"] = json!("consent");
            c["acr_values"] =
                json!("https://www.spid.gov.it/SpidL1 https://www.spid.gov.it/SpidL2");
        }),
    ];

    /// Each case: the honest request passes, the edited one is refused by its rule.
    #[test]
    fn each_authz_rule_refuses_its_edit() {
        let (p, c) = good();
        assert!(check(&p, &c).is_ok());
        let wrong: Vec<String> = AUTHZ_CASES
            .iter()
            .enumerate()
            .filter_map(|(n, (rule, edit))| {
                let (mut p, mut c) = good();
                edit(&mut p, &mut c);
                match check(&p, &c) {
                    Err(e) if e.rule() == *rule => None,
                    other => Some(format!("case {n} {}: got {other:?}", rule.code())),
                }
            })
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// Every code [`AUTHZ_RULES`] names has a case in `AUTHZ_CASES`, every case names one of
    /// them, and the handler's codes are the rest of the OP's authorization codes.
    #[test]
    fn every_authz_rule_has_a_unit_test() {
        let codes: Vec<Rule> = AUTHZ_RULES
            .iter()
            .flat_map(|(c, _)| c.iter().copied())
            .collect();
        let tested: Vec<Rule> = AUTHZ_CASES.iter().map(|(r, _)| *r).collect();
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
        for r in AUTHZ_HANDLER_RULES {
            assert!(
                !codes.contains(r),
                "{} is both a table and a handler rule",
                r.code()
            );
        }
        let unlisted: Vec<&str> = Rule::ALL
            .iter()
            .filter(|r| r.code().starts_with("op.authz."))
            .filter(|r| !codes.contains(r) && !AUTHZ_HANDLER_RULES.contains(r))
            .map(|r| r.code())
            .collect();
        assert!(
            unlisted.is_empty(),
            "op.authz codes in no table nor handler list: {unlisted:?}"
        );
    }

    /// An edit of the honest HTTP parameters of an authorization request.
    pub(crate) type ParamEdit = fn(&mut HashMap<String, String>);

    /// One honest set of HTTP parameters plus one edit per entry of [`ENVELOPE_RULES`]: the
    /// rule each edit must be refused by.
    pub(crate) const ENVELOPE_CASES: &[(Rule, &str, ParamEdit)] = &[
        (Rule::OpAuthzClientId, "client_id missing", |p| {
            p.remove("client_id");
        }),
        (Rule::OpAuthzClientId, "client_id empty", |p| {
            p.insert("client_id".into(), String::new());
        }),
        (Rule::OpAuthzRequestMissing, "request_uri", |p| {
            p.insert("request_uri".into(), format!("{RP}/request.jwt"));
        }),
        (Rule::OpAuthzRequestMissing, "request missing", |p| {
            p.remove("request");
        }),
    ];

    #[test]
    fn each_envelope_rule_refuses_its_edit() {
        let honest = || {
            let (mut p, _) = good();
            p.insert("request".into(), "h.p.s".into());
            p
        };
        let p = honest();
        assert_eq!(
            check_envelope(&p),
            Ok(AuthzEnvelope {
                client_id: RP.into(),
                request: "h.p.s"
            })
        );
        for (rule, what, edit) in ENVELOPE_CASES {
            let mut p = honest();
            edit(&mut p);
            let e = check_envelope(&p).expect_err(what);
            assert_eq!(e.rule(), *rule, "{what}");
            assert!(!e.redirectable(), "{what}");
            assert_eq!(e.error(), "invalid_request", "{what}");
        }
        let codes: Vec<Rule> = ENVELOPE_RULES
            .iter()
            .flat_map(|(c, _)| c.iter().copied())
            .collect();
        for (rule, what, _) in ENVELOPE_CASES {
            assert!(AUTHZ_HANDLER_RULES.contains(rule), "{what}");
        }
        assert!(codes
            .iter()
            .all(|r| ENVELOPE_CASES.iter().any(|(t, _, _)| t == r)));
    }

    fn check_as(
        p: &HashMap<String, String>,
        c: &Value,
        profile: &Profile,
    ) -> Result<ValidAuthz, AuthzRefusal> {
        check_request_for(p, c, OP, &[format!("{RP}/callback")], now(), profile)
    }

    /// What CIE allows and SPID refuses, one edit each: the rule SPID refuses it by.
    const CIE_ALLOWS: &[(Rule, &str, Edit)] = &[
        (Rule::OpAuthzScope, "scope profile", |p, c| {
            p.insert("scope".into(), "openid profile".into());
            c["scope"] = json!("openid profile");
        }),
        (Rule::OpAuthzScope, "scope email", |p, c| {
            p.insert("scope".into(), "openid email".into());
            c["scope"] = json!("openid email");
        }),
        (Rule::OpAuthzClaims, "claims.id_token", |_, c| {
            c["claims"] = json!({"id_token": {"family_name": {"essential": true}},
                                 "userinfo": {"given_name": null}});
        }),
        (Rule::OpAuthzParameters, "no HTTP client_id", |p, _| {
            p.remove("client_id");
        }),
        (Rule::OpAuthzParameters, "no HTTP response_type", |p, _| {
            p.remove("response_type");
        }),
    ];

    /// What both profiles refuse, one edit each, and by which rule.
    const BOTH_REFUSE: &[(Rule, &str, Edit)] = &[
        (Rule::OpAuthzParameters, "HTTP client_id differs", |p, _| {
            p.insert("client_id".into(), "http://x".into());
        }),
        (
            Rule::OpAuthzResponseType,
            "HTTP response_type differs",
            |p, _| {
                p.insert("response_type".into(), "id_token".into());
            },
        ),
        (Rule::OpAuthzScope, "a scope neither defines", |p, c| {
            p.insert("scope".into(), "openid phone".into());
            c["scope"] = json!("openid phone");
        }),
        (Rule::OpAuthzClaims, "claims.other", |_, c| {
            c["claims"] = json!({"other": {}});
        }),
    ];

    #[test]
    fn cie_allows_what_spid_refuses() {
        let (spid, cie) = (Profile::rules_2023(), Profile::cie());
        for (rule, what, edit) in CIE_ALLOWS {
            let (mut p, mut c) = good();
            edit(&mut p, &mut c);
            assert_eq!(
                check_as(&p, &c, &spid).map_err(|e| e.rule()),
                Err(*rule),
                "SPID {what}"
            );
            assert!(check_as(&p, &c, &cie).is_ok(), "CIE {what}");
        }
        for (rule, what, edit) in BOTH_REFUSE {
            let (mut p, mut c) = good();
            edit(&mut p, &mut c);
            for profile in [&spid, &cie] {
                let got = check_as(&p, &c, profile).map_err(|e| e.rule());
                assert_eq!(got, Err(*rule), "{} {what}", profile.name);
            }
        }
    }

    #[test]
    fn cie_keeps_id_token_claims_and_the_claims_of_its_scopes() {
        let (mut p, mut c) = good();
        p.insert("scope".into(), "openid profile email".into());
        c["scope"] = json!("openid profile email");
        c["claims"] = json!({"id_token": {"family_name": {"essential": true}},
                             "userinfo": {"given_name": null}});
        let v = check_as(&p, &c, &Profile::cie()).expect("CIE");
        assert_eq!(v.id_token_claims, vec!["family_name".to_string()]);
        for claim in [
            "given_name",
            "family_name",
            "https://attributes.eid.gov.it/fiscal_number",
            "email",
        ] {
            assert!(v.userinfo_claims.iter().any(|x| x == claim), "{claim}");
        }
        // Where claims.id_token is only tolerated (django-sdk), nothing goes in the ID token.
        let (p, c) = (good().0, {
            let mut c = good().1;
            c["claims"] = json!({"id_token": {"family_name": null}});
            c
        });
        let v = check_as(&p, &c, &Profile::django_sdk()).expect("django-sdk");
        assert!(v.id_token_claims.is_empty());
    }

    #[test]
    fn cie_envelope_takes_the_client_from_the_request_object() {
        use base64::Engine;
        let b64 = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        let jwt = |claims: Value| format!("{}.{}.sig", b64(&json!({"alg": "RS256"})), b64(&claims));
        let mut p: HashMap<String, String> = HashMap::new();
        p.insert("request".into(), jwt(json!({"client_id": RP, "iss": RP})));
        let e = check_envelope_for(&p, true).map_err(|e| e.rule());
        assert_eq!(
            e,
            Err(Rule::OpAuthzClientId),
            "SPID: client_id is an HTTP parameter"
        );
        let e = check_envelope_for(&p, false).expect("CIE");
        assert_eq!(e.client_id, RP);
        p.insert("request".into(), jwt(json!({"iss": RP})));
        assert_eq!(
            check_envelope_for(&p, false).map(|e| e.client_id),
            Ok(RP.into())
        );
        // Nothing names the RP: still refused, as without a request object.
        for request in [jwt(json!({"scope": "openid"})), "not-a-jwt".to_string()] {
            p.insert("request".into(), request);
            let e = check_envelope_for(&p, false).map_err(|e| e.rule());
            assert_eq!(e, Err(Rule::OpAuthzClientId));
        }
        p.remove("request");
        let e = check_envelope_for(&p, false).map_err(|e| e.rule());
        assert_eq!(e, Err(Rule::OpAuthzClientId));
        // An HTTP client_id, when sent, is the one used.
        p.insert("client_id".into(), RP.into());
        p.insert("request".into(), jwt(json!({"client_id": "http://x"})));
        assert_eq!(
            check_envelope_for(&p, false).map(|e| e.client_id),
            Ok(RP.into())
        );
    }

    #[test]
    fn grant_follows_the_first_reachable_level_and_allows_higher() {
        use SpidLevel::*;
        assert_eq!(grant_level(L2, &[L2]), Some(L2));
        assert_eq!(grant_level(L3, &[L2]), Some(L3));
        assert_eq!(grant_level(L1, &[L2]), None);
        assert_eq!(grant_level(L1, &[L2, L1]), Some(L1));
    }
}
