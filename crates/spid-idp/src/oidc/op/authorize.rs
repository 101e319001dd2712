//! `/authorization` (automatic registration of the RP, request-object checks) and the login,
//! OTP and consent steps, on the SAML IdP's own pages.

use super::request::{
    check_envelope_for, check_redirect_uri, check_request_for, grant_level, AuthzRefusal,
    ResponseMode, ValidAuthz,
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
use spid_core::oidc::jose::{decode_unverified, verify_jws, Jwks, SigAlg};
use spid_core::pending::PendingMap;
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

/// The request object's claims as sent, before its signature is checked (routing data only:
/// the `redirect_uri` and `state` to answer to); a `request` that is no compact JWS is refused.
fn unverified_request(request: &str) -> Result<Value, AuthzRefusal> {
    decode_unverified(request)
        .map(|(_, claims)| claims)
        .map_err(|_| AuthzRefusal::NotJws)
}

/// The request object's claims once its signature verifies, under an `allowed` alg, with a
/// key of the RP's resolved `jwks`.
fn verified_request(request: &str, jwks: &Jwks, allowed: &[SigAlg]) -> Result<Value, AuthzRefusal> {
    verify_jws(request, jwks, allowed)
        .map(|(_, claims)| claims)
        .map_err(|e| AuthzRefusal::RequestSignature(e.to_string()))
}

/// What names a request object among the answered ones: its client and `jti` (SPID requires
/// one), else the whole JWT.
fn answered_key(client_id: &str, unverified: &Value, request: &str) -> String {
    format!(
        "{client_id}\n{}",
        unverified
            .get("jti")
            .and_then(Value::as_str)
            .filter(|j| !j.is_empty())
            .unwrap_or(request)
    )
}

/// A request object is answered once: refused while `answered` remembers its key.
fn not_replayed(
    answered: &PendingMap<()>,
    key: &str,
    now: DateTime<Utc>,
) -> Result<(), AuthzRefusal> {
    if answered.contains(key, now) {
        return Err(AuthzRefusal::Replayed);
    }
    Ok(())
}

/// The level a user who gave the right password logs in at: the identity is active and has a
/// credential for one of the requested levels ([`grant_level`]); else `access_denied`.
fn login_level(user: &User, acr_values: &[SpidLevel]) -> Result<SpidLevel, AuthzRefusal> {
    if user.status != Status::Active {
        return Err(AuthzRefusal::AccessDenied(
            "identity suspended or revoked".into(),
        ));
    }
    grant_level(user.max_level(), acr_values)
        .ok_or_else(|| AuthzRefusal::AccessDenied("no credential for the requested level".into()))
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
        let envelope =
            match check_envelope_for(&params, self.0.cfg.profile.authz_http_params_required) {
                Ok(e) => e,
                Err(e) => return refusal_page(&e),
            };
        let request = envelope.request;
        let client = match self.client(&envelope.client_id).await {
            Ok(c) => c,
            Err(e) => return refusal_page(&e),
        };
        // Routing data only: the redirect_uri is trusted because the RP registered it.
        let unverified = match unverified_request(request) {
            Ok(claims) => claims,
            Err(e) => return refusal_page(&e),
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
        let checked = verified_request(request, &client.jwks, &cfg.profile.accepted_signing_algs())
            .and_then(|claims| {
                check_request_for(
                    &params,
                    &claims,
                    &cfg.entity_id,
                    &client.redirect_uris(),
                    cfg.clock.now(),
                    &cfg.profile,
                )
            });
        let authz = match checked {
            Ok(a) => a,
            Err(e) => return self.refuse(&redirect_uri, &state, &e),
        };
        let now = cfg.clock.now();
        let answered_key = answered_key(&authz.client_id, &unverified, request);
        let answered_until = unverified
            .get("exp")
            .and_then(Value::as_i64)
            .and_then(|e| DateTime::<Utc>::from_timestamp(e, 0))
            .unwrap_or(now)
            .max(now)
            + cfg.profile.skew();
        let fresh = not_replayed(&lock(&self.0.answered), &answered_key, now);
        if let Err(e) = fresh {
            return refusal_page(&e);
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
    /// `case` is the harness case the browser names ([`crate::CASE_COOKIE`]): its plan, if
    /// armed, rides with the grant.
    fn issue_code(&self, t: Txn, case: Option<&str>) -> Response {
        let (Some(user), Some(level)) = (t.user.clone(), t.granted) else {
            return bad_request("login incomplete");
        };
        let code = random_id();
        let plan = self.plan_for(case);
        let grant = CodeGrant {
            authz: t.authz.clone(),
            user,
            level,
            created: self.0.cfg.clock.now(),
            session: t.session.clone(),
            plan: plan.case.is_some().then(|| plan.clone()),
        };
        bounded_insert(&mut lock(&self.0.codes), code.clone(), grant);
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
            let miss = miss.within("plan.authz_response");
            self.note_miss(plan.case.as_deref(), &miss);
            return Self::miss_page(&miss);
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
    let granted = match login_level(&user, &t.authz.acr_values) {
        Ok(level) => level,
        Err(e) => {
            op.finish(&id);
            return op.refuse_txn(&t, e);
        }
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

pub(crate) async fn consent(
    State(op): State<OpenIdProvider>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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
    op.issue_code(t, crate::case_of(&headers).as_deref())
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::tests::block_on;
    use super::super::token::tests::{fixture as token_fixture, rule_of, Fixture};
    use super::*;
    use serde_json::json;
    use spid_core::oidc::jose::sign_jws;
    use spid_core::oidc::pkce::challenge_s256;
    use spid_core::oidc::plan::corrupt_signature;

    const RP: &str = "http://rp.example/oidc/rp";

    /// The token tests' OP and RP, the RP resolved (cached) with its `redirect_uris`.
    fn fixture() -> Fixture {
        let mut fx = token_fixture();
        fx.client
            .metadata
            .insert("redirect_uris".into(), json!([format!("{RP}/callback")]));
        fx.op
            .0
            .clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(RP.into(), fx.client.clone());
        fx
    }

    /// The honest request object's claims.
    fn claims(fx: &Fixture) -> Value {
        let now = fx.op.config().clock.now().timestamp();
        json!({
            "client_id": RP, "iss": RP, "aud": fx.op.entity_id(), "iat": now, "exp": now + 60,
            "jti": random_id(), "response_type": "code", "scope": "openid",
            "redirect_uri": format!("{RP}/callback"),
            "code_challenge": challenge_s256(&"v".repeat(64)), "code_challenge_method": "S256",
            "nonce": "n".repeat(32), "state": "s".repeat(32),
            "acr_values": "https://www.spid.gov.it/SpidL2", "prompt": "consent login",
            "claims": {"userinfo": {"given_name": null}},
        })
    }

    /// `claims` signed by the RP's key.
    fn signed(fx: &Fixture, claims: &Value) -> String {
        sign_jws(claims, &fx.rp_key, SigAlg::RS256, None).expect("request object")
    }

    /// The HTTP parameters carrying `request`.
    fn params(request: &str) -> HashMap<String, String> {
        [
            ("client_id", RP),
            ("response_type", "code"),
            ("scope", "openid"),
            ("request", request),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn authorize(fx: &Fixture, params: HashMap<String, String>) -> Response {
        block_on(fx.op.authorize(params, &HeaderMap::new()))
    }

    /// `/authorization` with the honest request, `edit` applied to its HTTP parameters.
    fn authorize_with(fx: &Fixture, edit: impl FnOnce(&mut HashMap<String, String>)) -> Response {
        let mut p = params(&signed(fx, &claims(fx)));
        edit(&mut p);
        authorize(fx, p)
    }

    /// A login in progress at `stage` (by `user` for the later stages), as `/authorization`
    /// and the earlier stages leave it; its id.
    fn txn(fx: &Fixture, stage: Stage, user: Option<&str>, age: chrono::Duration) -> String {
        let user = user.map(|name| {
            let users = &fx.op.config().users;
            users
                .iter()
                .find(|u| u.username == name)
                .cloned()
                .expect("a fixture user")
        });
        let t = Txn {
            authz: ValidAuthz {
                client_id: RP.into(),
                redirect_uri: format!("{RP}/callback"),
                state: "s".repeat(32),
                nonce: "n".repeat(32),
                code_challenge: challenge_s256(&"v".repeat(64)),
                scope: vec!["openid".into()],
                acr_values: vec![SpidLevel::L2],
                userinfo_claims: vec![],
                id_token_claims: vec![],
                prompt: "consent login".into(),
                response_mode: ResponseMode::Query,
            },
            created: fx.op.config().clock.now() - age,
            attempts: 0,
            granted: user.as_ref().map(User::max_level),
            user,
            stage,
            session: None,
        };
        let id = random_id();
        let now = fx.op.config().clock.now();
        lock(&fx.op.0.txns)
            .insert(
                id.clone(),
                t,
                Some(RP),
                now + chrono::Duration::hours(1),
                now,
            )
            .expect("room for a login");
        id
    }

    /// A form body with `txn` and `pairs`.
    fn body(txn: &str, pairs: &[(&str, &str)]) -> Bytes {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair("txn", txn);
        s.extend_pairs(pairs);
        Bytes::from(s.finish())
    }

    /// `POST /login` as `username` with `password`, `times` times, on a fresh login.
    fn log_in(fx: &Fixture, username: &str, password: &str, times: usize) -> Response {
        let id = txn(fx, Stage::Credentials, None, chrono::Duration::zero());
        let f = [("username", username), ("password", password)];
        let mut r = block_on(login(State(fx.op.clone()), body(&id, &f)));
        for _ in 1..times {
            r = block_on(login(State(fx.op.clone()), body(&id, &f)));
        }
        r
    }

    /// `POST /otp` with `otp`, `times` times, on a login that passed its password.
    fn enter_otp(fx: &Fixture, otp: &str, times: usize) -> Response {
        let id = txn(
            fx,
            Stage::Otp,
            Some("mario.rossi"),
            chrono::Duration::zero(),
        );
        let mut r = block_on(super::otp(State(fx.op.clone()), body(&id, &[("otp", otp)])));
        for _ in 1..times {
            r = block_on(super::otp(State(fx.op.clone()), body(&id, &[("otp", otp)])));
        }
        r
    }

    /// `POST /consent` with `action` on a login `age` old at its consent.
    fn give_consent(fx: &Fixture, action: &str, age: chrono::Duration) -> Response {
        let id = txn(fx, Stage::Consent, Some("mario.rossi"), age);
        block_on(consent(
            State(fx.op.clone()),
            HeaderMap::new(),
            body(&id, &[("action", action)]),
        ))
    }

    /// A handler case: the response to the honest call with one edit, whose `X-SPID-Rule`
    /// must be the rule.
    pub(crate) type AuthorizeCase = (Rule, &'static str, fn(&Fixture) -> Response);

    /// The `/authorization`, login, OTP and consent handlers' codes ([`AUTHZ_HANDLER_RULES`]
    /// but the RP's resolution, for which see `CLIENT_CASES`), each on the honest call with
    /// one edit.
    pub(crate) const AUTHORIZE_CASES: &[AuthorizeCase] = &[
        (Rule::OpAuthzClientId, "no client_id", |fx| {
            authorize_with(fx, |p| {
                p.remove("client_id");
            })
        }),
        (Rule::OpAuthzRequestMissing, "request_uri", |fx| {
            authorize_with(fx, |p| {
                p.insert("request_uri".into(), format!("{RP}/request.jwt"));
            })
        }),
        (Rule::OpAuthzRequestMissing, "no request", |fx| {
            authorize_with(fx, |p| {
                p.remove("request");
            })
        }),
        (Rule::OpAuthzClientUntrusted, "RP not resolvable", |fx| {
            // No trust anchor: nothing to resolve an unknown RP through (nothing fetched).
            authorize_with(fx, |p| {
                p.insert("client_id".into(), "http://unknown.example/rp".into());
            })
        }),
        (Rule::OpAuthzRequestMalformed, "request not a JWS", |fx| {
            authorize_with(fx, |p| {
                p.insert("request".into(), "not-a-jws".into());
            })
        }),
        (Rule::OpAuthzRequestSignature, "signature flipped", |fx| {
            authorize_with(fx, |p| {
                if let Some(r) = p.get_mut("request") {
                    *r = corrupt_signature(r);
                }
            })
        }),
        (Rule::OpAuthzRequestReplayed, "request object again", |fx| {
            let p = params(&signed(fx, &claims(fx)));
            authorize(fx, p.clone());
            authorize(fx, p)
        }),
        (
            Rule::OpAuthzRequestReplayed,
            "another JWT, same jti",
            |fx| {
                let mut c = claims(fx);
                authorize(fx, params(&signed(fx, &c)));
                c["nonce"] = json!("m".repeat(32));
                authorize(fx, params(&signed(fx, &c)))
            },
        ),
        (Rule::OpAuthzAccessDenied, "login cancelled", |fx| {
            let id = txn(fx, Stage::Credentials, None, chrono::Duration::zero());
            block_on(login(
                State(fx.op.clone()),
                body(&id, &[("action", "cancel")]),
            ))
        }),
        (Rule::OpAuthzAccessDenied, "wrong password, thrice", |fx| {
            log_in(fx, "mario.rossi", "wrong", 3)
        }),
        (Rule::OpAuthzAccessDenied, "identity suspended", |fx| {
            log_in(fx, "paolo.sospeso", "password123", 1)
        }),
        (
            Rule::OpAuthzAccessDenied,
            "SpidL1 user, SpidL2 asked",
            |fx| log_in(fx, "anna.neri", "password123", 1),
        ),
        (Rule::OpAuthzAccessDenied, "wrong OTP, thrice", |fx| {
            enter_otp(fx, "000000", 3)
        }),
        (Rule::OpAuthzAccessDenied, "consent denied", |fx| {
            give_consent(fx, "deny", chrono::Duration::zero())
        }),
        (Rule::OpAuthzAccessDenied, "login timed out", |fx| {
            let late = fx.op.config().login_timeout + chrono::Duration::seconds(1);
            give_consent(fx, "accept", late)
        }),
    ];

    /// The honest calls pass: the request opens a login, the password, OTP and consent lead
    /// to the code; each case's edit is refused by its rule, on the OP or at the
    /// `redirect_uri` as the rule says.
    #[test]
    fn each_authorize_handler_rule_refuses_its_edit() {
        let fx = fixture();
        let honest = authorize_with(&fx, |_| {});
        assert_eq!((honest.status(), rule_of(&honest)), (StatusCode::OK, None));
        let otp = log_in(&fx, "mario.rossi", "password123", 1);
        assert_eq!((otp.status(), rule_of(&otp)), (StatusCode::OK, None));
        let consent = enter_otp(&fx, "123456", 1);
        assert_eq!(
            (consent.status(), rule_of(&consent)),
            (StatusCode::OK, None)
        );
        let code = give_consent(&fx, "accept", chrono::Duration::zero());
        assert_eq!((code.status(), rule_of(&code)), (StatusCode::FOUND, None));
        let wrong: Vec<String> = AUTHORIZE_CASES
            .iter()
            .filter_map(|(rule, what, case)| {
                let r = case(&fx);
                let redirected = r.status() == StatusCode::FOUND;
                let ok = rule_of(&r) == Some(rule.code())
                    && (redirected || r.status() == StatusCode::BAD_REQUEST);
                (!ok).then(|| {
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
    }

    /// A failed resolution of the RP through the trust anchor, and the rule it must decide.
    pub(crate) type ClientCase = (Rule, &'static str, fn() -> ResolveError);

    /// [`client_refusal`]'s codes: each resolution error the federation walk returns, and the
    /// rule it is answered with.
    pub(crate) const CLIENT_CASES: &[ClientCase] = &[
        (Rule::OpAuthzClientUnlisted, "unknown to the anchor", || {
            ResolveError::Unknown {
                entity: RP.into(),
                anchor: "http://ta.example".into(),
            }
        }),
        (Rule::OpAuthzClientFetchFailed, "RP configuration", || {
            ResolveError::Fetch {
                url: entity_configuration_url(RP),
                detail: "connection refused".into(),
            }
        }),
        (
            Rule::OpAuthzClientFetchFailed,
            "a superior's statement",
            || ResolveError::Fetch {
                url: "http://ta.example/fetch?sub=x".into(),
                detail: "timed out".into(),
            },
        ),
        (Rule::OpAuthzClientUntrusted, "no chain", || {
            ResolveError::NoChain {
                subject: RP.into(),
                anchor: "http://ta.example".into(),
                attempts: vec![],
            }
        }),
        (Rule::OpAuthzClientUntrusted, "authority_hints loop", || {
            ResolveError::Loop(RP.into())
        }),
    ];

    #[test]
    fn each_resolution_failure_has_its_rule() {
        for (rule, what, error) in CLIENT_CASES {
            let e = client_refusal(RP, &error());
            assert_eq!(e.rule(), *rule, "{what}");
            assert_eq!(e.error(), "invalid_client", "{what}");
            assert!(!e.redirectable(), "{what}");
            // The fetcher's reason is never shown.
            assert!(!e.to_string().contains("refused"), "{what}: {e}");
            assert!(!e.to_string().contains("timed out"), "{what}: {e}");
        }
        // No trust anchor at all: the RP is untrusted, nothing fetched.
        let fx = token_fixture();
        let r = block_on(fx.op.client("http://unknown.example/rp"));
        assert_eq!(
            r.map(|_| ()).map_err(|e| e.rule()),
            Err(Rule::OpAuthzClientUntrusted)
        );
    }

    #[test]
    fn login_level_needs_an_active_identity_at_a_requested_level() {
        let users = &token_fixture().op.config().users.clone();
        let user = |name: &str| users.iter().find(|u| u.username == name).expect("user");
        let honest = user("mario.rossi");
        assert_eq!(login_level(honest, &[SpidLevel::L2]), Ok(SpidLevel::L2));
        let mut suspended = honest.clone();
        suspended.status = Status::Suspended;
        let mut l1 = honest.clone();
        l1.level = 1;
        for (what, u) in [("suspended", &suspended), ("SpidL1 only", &l1)] {
            let e = login_level(u, &[SpidLevel::L2]).expect_err(what);
            assert_eq!(e.rule(), Rule::OpAuthzAccessDenied, "{what}");
            assert!(e.redirectable(), "{what}");
        }
    }

    /// The rules named by this module's case tables.
    pub(crate) fn tested() -> Vec<Rule> {
        AUTHORIZE_CASES
            .iter()
            .map(|c| c.0)
            .chain(CLIENT_CASES.iter().map(|c| c.0))
            .collect()
    }

    #[test]
    fn every_handler_rule_has_a_case() {
        let tested = tested();
        let envelope = super::super::request::ENVELOPE_RULES
            .iter()
            .flat_map(|(c, _)| c.iter());
        for r in super::super::request::AUTHZ_HANDLER_RULES
            .iter()
            .chain(envelope)
        {
            assert!(tested.contains(r), "{} has no case", r.code());
        }
    }
}
