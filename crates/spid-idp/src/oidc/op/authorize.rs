//! `/authorization` (automatic registration of the RP, request-object checks) and the login,
//! OTP and consent steps, on the SAML IdP's own pages.

use super::request::{
    check_redirect_uri, check_request_with, grant_level, AuthzRefusal, ResponseMode, ValidAuthz,
};
use super::{
    bounded_insert, lock, random_id, Client, CodeGrant, OpenIdProvider, SsoSession, SSO_COOKIE,
    SSO_TTL_SECS,
};
use crate::oidc::{with_rule, HttpFetcher};
use crate::pages;
use crate::users::{Status, User};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::Value;
use spid_core::oidc::federation::{
    anchor_knows, entity_configuration_url, resolve_trust_chain, EntityKeys, Intermediates,
    ResolveError,
};
use spid_core::oidc::jose::{decode_unverified, verify_jws, Jwks};
use spid_core::{Rule, SpidLevel};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Credentials,
    Otp,
    Consent,
}

/// A login in progress between `/authorization` and the redirect back.
#[derive(Debug, Clone)]
pub(crate) struct Txn {
    authz: ValidAuthz,
    created: DateTime<Utc>,
    attempts: u32,
    user: Option<User>,
    granted: Option<SpidLevel>,
    stage: Stage,
    /// The SSO session this login authenticated in (new or reused).
    session: Option<String>,
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn bad_request(detail: &str) -> Response {
    html(
        StatusCode::BAD_REQUEST,
        pages::error("Richiesta di autenticazione non valida", None, detail),
    )
}

/// The refusal for an RP whose resolution failed: unknown to the anchor, documents that
/// could not be fetched (summarised: the fetcher's reason is only logged), or no valid chain.
fn client_refusal(client_id: &str, e: &ResolveError) -> AuthzRefusal {
    tracing::warn!(client_id, error = %e, "RP trust chain not resolved");
    if matches!(e, ResolveError::Unknown { .. }) {
        AuthzRefusal::UnlistedClient(e.to_string())
    } else if e.fetch_failed() {
        AuthzRefusal::ClientFetchFailed(match e {
            ResolveError::Fetch { url, .. } if *url == entity_configuration_url(client_id) => {
                "the RP's entity configuration could not be fetched".to_string()
            }
            _ => e.public(),
        })
    } else {
        AuthzRefusal::UntrustedClient(e.public())
    }
}

/// HTTP 400 on the OP itself (the refusal cannot go to an untrusted redirect_uri).
fn refusal_page(e: &AuthzRefusal) -> Response {
    with_rule(bad_request(&e.to_string()), e.rule())
}

/// A form (or query) within [`spid_net::FormLimits::default`]; first value wins: a repeated
/// parameter must not override an earlier one silently. A refusal is the 400 to answer.
fn form(body: &[u8]) -> Result<HashMap<String, String>, Box<Response>> {
    spid_net::form(body, &spid_net::FormLimits::default())
        .map(spid_net::first_wins)
        .map_err(|e| Box::new(e.into_response()))
}

/// The authorization response by `mode`: a 302 with a query, or an auto-submitting form.
fn respond(redirect_uri: &str, mode: ResponseMode, params: &[(&str, &str)]) -> Response {
    match mode {
        ResponseMode::Query => redirect_with(redirect_uri, params),
        ResponseMode::FormPost => {
            let page = maud::html! {
                (maud::DOCTYPE)
                html {
                    head { meta charset="utf-8"; title { "Ritorno al servizio" } }
                    body onload="document.forms[0].submit()" {
                        form id="oidc-form-post" method="post" action=(redirect_uri) {
                            @for (k, v) in params { input type="hidden" name=(k) value=(v); }
                            noscript { button type="submit" { "Continua" } }
                        }
                    }
                }
            };
            html(StatusCode::OK, page.into_string())
        }
    }
}

/// A 302 to `redirect_uri` with `params` added to its query.
fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return bad_request("redirect_uri is not a URL");
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    match HeaderValue::from_str(url.as_str()) {
        Ok(loc) => (StatusCode::FOUND, [(header::LOCATION, loc)]).into_response(),
        Err(_) => bad_request("redirect_uri cannot be a Location"),
    }
}

impl OpenIdProvider {
    /// The RP as resolved through the trust anchor (directly or under intermediates, as the
    /// anchor's `max_path_length` allows), from the cache while its chain is valid. Nothing
    /// is fetched from `client_id` unless the anchor, or an intermediate it lists, has a
    /// statement about it ([`anchor_knows`]).
    pub(crate) async fn client(&self, client_id: &str) -> Result<Client, AuthzRefusal> {
        let now = self.0.cfg.clock.now();
        if let Some(c) = self
            .0
            .clients
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(client_id)
            .filter(|c| c.exp > now.timestamp())
        {
            return Ok(c.clone());
        }
        let anchor: EntityKeys = self
            .anchor()
            .ok_or_else(|| AuthzRefusal::UntrustedClient("no trust anchor configured".into()))?;
        let fetcher = HttpFetcher(&self.0.http);
        let profile = &self.0.cfg.profile;
        anchor_knows(
            &fetcher,
            client_id,
            &anchor,
            profile,
            now,
            Intermediates::Allowed,
        )
        .await
        .map_err(|e| client_refusal(client_id, &e))?;
        let chain = resolve_trust_chain(
            &fetcher,
            client_id,
            &anchor,
            profile,
            now,
            Intermediates::Allowed,
        )
        .await
        .map_err(|e| client_refusal(client_id, &e))?;
        let metadata = chain
            .metadata
            .openid_relying_party()
            .cloned()
            .ok_or_else(|| {
                AuthzRefusal::UntrustedClient("no openid_relying_party metadata".into())
            })?;
        if metadata
            .get("client_id")
            .and_then(Value::as_str)
            .is_some_and(|c| c != client_id)
        {
            return Err(AuthzRefusal::UntrustedClient(
                "metadata client_id is not the entity id".into(),
            ));
        }
        let jwks = metadata
            .get("jwks")
            .cloned()
            .and_then(|v| serde_json::from_value::<Jwks>(v).ok())
            .ok_or_else(|| AuthzRefusal::UntrustedClient("no usable jwks in RP metadata".into()))?;
        let client = Client {
            metadata,
            jwks,
            exp: chain.exp,
        };
        let mut clients = self.0.clients.write().unwrap_or_else(|e| e.into_inner());
        bounded_insert(&mut clients, client_id.to_string(), client.clone());
        Ok(client)
    }

    async fn authorize(&self, params: HashMap<String, String>, headers: &HeaderMap) -> Response {
        let Some(client_id) = params.get("client_id").filter(|c| !c.is_empty()) else {
            return refusal_page(&AuthzRefusal::MissingClientId);
        };
        if params.contains_key("request_uri") {
            return with_rule(
                bad_request("request_uri_not_supported: pass the request object by value"),
                Rule::OpAuthzRequestMissing,
            );
        }
        let Some(request) = params.get("request") else {
            return refusal_page(&AuthzRefusal::MissingRequest);
        };
        let client = match self.client(client_id).await {
            Ok(c) => c,
            Err(e) => return refusal_page(&e),
        };
        // Routing data only: the redirect_uri is trusted because the RP registered it.
        let Ok((_, unverified)) = decode_unverified(request) else {
            return refusal_page(&AuthzRefusal::NotJws);
        };
        let redirect_uri = match check_redirect_uri(&unverified, &client.redirect_uris()) {
            Ok(u) => u,
            Err(e) => return refusal_page(&e),
        };
        let state = unverified
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let cfg = &self.0.cfg;
        let checked = verify_jws(request, &client.jwks, &cfg.profile.signing_algs)
            .map_err(|e| AuthzRefusal::RequestSignature(e.to_string()))
            .and_then(|(_, claims)| {
                check_request_with(
                    &params,
                    &claims,
                    &cfg.entity_id,
                    &client.redirect_uris(),
                    cfg.clock.now(),
                    cfg.profile.skew(),
                    cfg.profile.authz_id_token_claims_allowed,
                )
            });
        let authz = match checked {
            Ok(a) => a,
            Err(e) => return self.refuse(&redirect_uri, &state, &e),
        };
        let now = cfg.clock.now();
        // Answered once: by `jti` (SPID requires one), else by the whole JWT.
        let answered_key = format!(
            "{}\n{}",
            authz.client_id,
            unverified
                .get("jti")
                .and_then(Value::as_str)
                .filter(|j| !j.is_empty())
                .unwrap_or(request)
        );
        let answered_until = unverified
            .get("exp")
            .and_then(Value::as_i64)
            .and_then(|e| DateTime::<Utc>::from_timestamp(e, 0))
            .unwrap_or(now)
            .max(now)
            + cfg.profile.skew();
        if lock(&self.0.answered).contains(&answered_key, now) {
            return with_rule(
                bad_request("this request object was already used: start the login again"),
                Rule::OpAuthzRequestReplayed,
            );
        }
        let txn = random_id();
        let client = authz.client_id.clone();
        if let Some((t, user, granted)) = self.single_sign_on(&authz, headers) {
            // `prompt=consent` within a live session at a requested level: consent only.
            let body = pages::consent(
                &txn,
                &authz.client_id,
                granted.uri(),
                &released(&authz, &user),
            );
            if let Err(r) = self.open_txn(txn, t, &client, answered_key, answered_until) {
                return *r;
            }
            return html(StatusCode::OK, body);
        }
        let body = pages::login(
            &txn,
            &authz.client_id,
            &levels_text(&authz.acr_values),
            None,
        );
        let t = Txn {
            authz,
            created: cfg.clock.now(),
            attempts: 0,
            user: None,
            granted: None,
            stage: Stage::Credentials,
            session: None,
        };
        if let Err(r) = self.open_txn(txn, t, &client, answered_key, answered_until) {
            return *r;
        }
        html(StatusCode::OK, body)
    }

    /// Records a login in progress and its request object as answered, or answers HTTP 503
    /// (`server.pending.full`) when either store is full: live logins are never evicted.
    fn open_txn(
        &self,
        txn: String,
        t: Txn,
        client: &str,
        answered_key: String,
        answered_until: DateTime<Utc>,
    ) -> Result<(), Box<Response>> {
        let now = self.0.cfg.clock.now();
        let until = now + self.0.cfg.login_timeout * 2;
        let mut answered = lock(&self.0.answered);
        let mut txns = lock(&self.0.txns);
        let full = match txns.insert(txn.clone(), t, Some(client), until, now) {
            Err(f) => Some(f),
            Ok(()) => match answered.insert(answered_key, (), Some(client), answered_until, now) {
                Err(f) => {
                    txns.remove(&txn);
                    Some(f)
                }
                Ok(()) => None,
            },
        };
        match full {
            None => Ok(()),
            Some(f) => {
                tracing::warn!(full = %f, "authorization refused: pending-login store full");
                Err(Box::new(with_rule(
                    html(
                        StatusCode::SERVICE_UNAVAILABLE,
                        pages::error(
                            "Servizio temporaneamente non disponibile",
                            None,
                            &f.to_string(),
                        ),
                    ),
                    Rule::ServerPendingFull,
                )))
            }
        }
    }

    /// The consent-stage login `prompt=consent` allows: the browser's SSO session is live,
    /// its user still active, and its level reaches one of the requested ones (`consent
    /// login` always authenticates again).
    fn single_sign_on(
        &self,
        authz: &ValidAuthz,
        headers: &HeaderMap,
    ) -> Option<(Txn, User, SpidLevel)> {
        if authz.prompt != "consent" {
            return None;
        }
        let sid = sso_cookie(headers)?;
        let now = self.0.cfg.clock.now();
        let s = lock(&self.0.sso).get(&sid).cloned()?;
        if (now - s.created).num_seconds() > SSO_TTL_SECS {
            lock(&self.0.sso).remove(&sid);
            return None;
        }
        let user = self
            .0
            .cfg
            .users
            .iter()
            .find(|u| u.username == s.user.username && u.status == Status::Active)?;
        let granted = grant_level(s.level, &authz.acr_values)?;
        let t = Txn {
            authz: authz.clone(),
            created: now,
            attempts: 0,
            user: Some(user.clone()),
            granted: Some(granted),
            stage: Stage::Consent,
            session: Some(sid),
        };
        Some((t, user.clone(), granted))
    }

    /// Opens an SSO session for the user `t` just authenticated; the cookie that names it.
    fn open_session(&self, t: &mut Txn) -> Option<HeaderValue> {
        let (Some(user), Some(level)) = (t.user.clone(), t.granted) else {
            return None;
        };
        let sid = random_id();
        let s = SsoSession {
            user,
            level,
            created: self.0.cfg.clock.now(),
        };
        bounded_insert(&mut lock(&self.0.sso), sid.clone(), s);
        t.session = Some(sid.clone());
        let path = url::Url::parse(&self.0.cfg.entity_id)
            .map(|u| u.path().to_string())
            .unwrap_or_else(|_| "/".into());
        HeaderValue::from_str(&format!(
            "{SSO_COOKIE}={sid}; Path={path}; HttpOnly; SameSite=Lax"
        ))
        .ok()
    }

    /// Ends an SSO session (the access token of a login in it was revoked).
    pub(crate) fn end_session(&self, sid: &str) {
        lock(&self.0.sso).remove(sid);
    }

    /// The error response: a redirect when allowed, else HTTP 400.
    fn refuse(&self, redirect_uri: &str, state: &str, e: &AuthzRefusal) -> Response {
        self.refuse_by(redirect_uri, state, ResponseMode::Query, e)
    }

    fn refuse_by(
        &self,
        redirect_uri: &str,
        state: &str,
        mode: ResponseMode,
        e: &AuthzRefusal,
    ) -> Response {
        if !e.redirectable() {
            return refusal_page(e);
        }
        let desc = e.to_string();
        let mut params = vec![("error", e.error()), ("error_description", desc.as_str())];
        if !state.is_empty() {
            params.push(("state", state));
        }
        params.push(("iss", self.0.cfg.entity_id.as_str()));
        with_rule(respond(redirect_uri, mode, &params), e.rule())
    }

    fn refuse_txn(&self, t: &Txn, e: AuthzRefusal) -> Response {
        self.refuse_by(
            &t.authz.redirect_uri,
            &t.authz.state,
            t.authz.response_mode,
            &e,
        )
    }

    /// Takes the transaction named in `f` if it is at `stage` and not timed out.
    fn txn(
        &self,
        f: &HashMap<String, String>,
        stage: Stage,
    ) -> Result<(String, Txn), Box<Response>> {
        let id = f.get("txn").cloned().unwrap_or_default();
        let now = self.0.cfg.clock.now();
        let mut txns = lock(&self.0.txns);
        let Some(t) = txns.get(&id, now).filter(|t| t.stage == stage).cloned() else {
            return Err(Box::new(html(
                StatusCode::BAD_REQUEST,
                pages::error(
                    "Sessione di login sconosciuta",
                    None,
                    "Unknown or finished login.",
                ),
            )));
        };
        if now - t.created > self.0.cfg.login_timeout {
            txns.remove(&id);
            drop(txns);
            return Err(Box::new(self.refuse_txn(
                &t,
                AuthzRefusal::AccessDenied("login timed out".into()),
            )));
        }
        Ok((id, t))
    }

    /// Stores the next stage of a login in place (its deadline and its client's share stay).
    fn put(&self, id: &str, t: Txn) {
        let now = self.0.cfg.clock.now();
        if let Some(slot) = lock(&self.0.txns).get_mut(id, now) {
            *slot = t;
        }
    }

    fn finish(&self, id: &str) {
        lock(&self.0.txns).remove(id);
    }

    /// Consent accepted: a single-use code, and the redirect with `code`, `state`, `iss`.
    fn issue_code(&self, t: Txn) -> Response {
        let (Some(user), Some(level)) = (t.user.clone(), t.granted) else {
            return bad_request("login incomplete");
        };
        let code = random_id();
        let grant = CodeGrant {
            authz: t.authz.clone(),
            user,
            level,
            created: self.0.cfg.clock.now(),
            session: t.session.clone(),
        };
        bounded_insert(&mut lock(&self.0.codes), code.clone(), grant);
        let plan = self.peek_plan();
        let mut params: Vec<(String, String)> = vec![
            ("code".into(), code),
            ("state".into(), t.authz.state.clone()),
            ("iss".into(), self.0.cfg.entity_id.clone()),
        ];
        if let Err(miss) = plan
            .authz_response
            .edit
            .apply_pairs(&mut params, "edit", Value::clone)
        {
            return self.missed(&miss.within("plan.authz_response"));
        }
        let params: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        respond(&t.authz.redirect_uri, t.authz.response_mode, &params)
    }
}

fn levels_text(levels: &[SpidLevel]) -> String {
    levels.iter().map(|l| l.uri()).collect::<Vec<_>>().join(" ")
}

/// The claims to show on the consent page: each requested userinfo claim the user has.
fn released(authz: &ValidAuthz, user: &User) -> Vec<(String, String)> {
    authz
        .userinfo_claims
        .iter()
        .filter_map(|c| {
            spid_core::attributes::oidc_claim_value(c, &user.attributes).map(|v| {
                let shown = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (c.clone(), shown)
            })
        })
        .collect()
}

pub(crate) async fn authorization_get(
    State(op): State<OpenIdProvider>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    match form(q.unwrap_or_default().as_bytes()) {
        Ok(f) => op.authorize(f, &headers).await,
        Err(r) => *r,
    }
}

pub(crate) async fn authorization_post(
    State(op): State<OpenIdProvider>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match form(&body) {
        Ok(f) => op.authorize(f, &headers).await,
        Err(r) => *r,
    }
}

pub(crate) async fn login(State(op): State<OpenIdProvider>, body: Bytes) -> Response {
    let f = match form(&body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let (id, mut t) = match op.txn(&f, Stage::Credentials) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    if f.get("action").map(String::as_str) == Some("cancel") {
        op.finish(&id);
        return op.refuse_txn(&t, AuthzRefusal::AccessDenied("the user cancelled".into()));
    }
    let username = f.get("username").map(String::as_str).unwrap_or_default();
    let password = f.get("password").map(String::as_str).unwrap_or_default();
    let cfg = &op.0.cfg;
    let Some(user) = cfg
        .users
        .iter()
        .find(|u| u.username == username && u.password == password)
        .cloned()
    else {
        t.attempts += 1;
        if t.attempts >= cfg.max_attempts {
            op.finish(&id);
            return op.refuse_txn(&t, AuthzRefusal::AccessDenied("wrong credentials".into()));
        }
        let body = pages::login(
            &id,
            &t.authz.client_id,
            &levels_text(&t.authz.acr_values),
            Some("Credenziali errate"),
        );
        op.put(&id, t);
        return html(StatusCode::OK, body);
    };
    if user.status != Status::Active {
        op.finish(&id);
        return op.refuse_txn(
            &t,
            AuthzRefusal::AccessDenied("identity suspended or revoked".into()),
        );
    }
    let Some(granted) = grant_level(user.max_level(), &t.authz.acr_values) else {
        op.finish(&id);
        return op.refuse_txn(
            &t,
            AuthzRefusal::AccessDenied("no credential for the requested level".into()),
        );
    };
    t.attempts = 0;
    t.granted = Some(granted);
    t.user = Some(user.clone());
    if granted >= SpidLevel::L2 {
        t.stage = Stage::Otp;
        let body = pages::otp(&id, user.otp.as_deref().unwrap_or_default(), None);
        op.put(&id, t);
        return html(StatusCode::OK, body);
    }
    // SpidL1: the password alone authenticates.
    t.stage = Stage::Consent;
    let cookie = op.open_session(&mut t);
    let body = pages::consent(
        &id,
        &t.authz.client_id,
        granted.uri(),
        &released(&t.authz, &user),
    );
    op.put(&id, t);
    with_cookie(html(StatusCode::OK, body), cookie)
}

fn with_cookie(mut r: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

/// The SSO session id from the OP's cookie, if any.
fn sso_cookie(headers: &HeaderMap) -> Option<String> {
    spid_core::cookie::session_cookie(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        SSO_COOKIE,
    )
}

pub(crate) async fn otp(State(op): State<OpenIdProvider>, body: Bytes) -> Response {
    let f = match form(&body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let (id, mut t) = match op.txn(&f, Stage::Otp) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    if f.get("action").map(String::as_str) == Some("cancel") {
        op.finish(&id);
        return op.refuse_txn(&t, AuthzRefusal::AccessDenied("the user cancelled".into()));
    }
    let Some(user) = t.user.clone() else {
        return bad_request("login incomplete");
    };
    let expected = user.otp.clone().unwrap_or_default();
    if expected.is_empty() || f.get("otp").map(|s| s.trim()) != Some(expected.as_str()) {
        t.attempts += 1;
        if t.attempts >= op.0.cfg.max_attempts {
            op.finish(&id);
            return op.refuse_txn(&t, AuthzRefusal::AccessDenied("wrong OTP".into()));
        }
        let body = pages::otp(&id, &expected, Some("OTP errato"));
        op.put(&id, t);
        return html(StatusCode::OK, body);
    }
    t.stage = Stage::Consent;
    let cookie = op.open_session(&mut t);
    let level = t.granted.map(|l| l.uri()).unwrap_or_default();
    let body = pages::consent(&id, &t.authz.client_id, level, &released(&t.authz, &user));
    op.put(&id, t);
    with_cookie(html(StatusCode::OK, body), cookie)
}

pub(crate) async fn consent(State(op): State<OpenIdProvider>, body: Bytes) -> Response {
    let f = match form(&body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let (id, t) = match op.txn(&f, Stage::Consent) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    op.finish(&id);
    if f.get("action").map(String::as_str) != Some("accept") {
        return op.refuse_txn(&t, AuthzRefusal::AccessDenied("consent denied".into()));
    }
    op.issue_code(t)
}
