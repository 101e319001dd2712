//! A small browser-like HTTP user agent for driving SPID SAML / OIDC flows.
//!
//! [`UserAgent`] keeps a cookie jar, follows redirects itself (so that every
//! hop is visible), parses HTML forms, auto-submits SAML HTTP-POST binding
//! forms (which a real browser would submit through JavaScript) and records
//! every HTTP exchange in a trace of [`Exchange`]s, including any SAML
//! protocol messages seen on the wire.
//!
//! The agent never panics on server input: headers that are not valid text
//! are converted lossily, bodies are decoded as UTF-8 lossily, bodies are
//! capped in size and malformed HTML is parsed the way a browser would.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, ACCEPT_LANGUAGE, CONTENT_LENGTH, CONTENT_TYPE, COOKIE,
    LOCATION, ORIGIN, REFERER, SET_COOKIE, USER_AGENT,
};
use reqwest::Method;
use scraper::{ElementRef, Html};
use serde::{Deserialize, Serialize};
use url::{form_urlencoded, Url};

/// `User-Agent` header sent by default: a desktop Firefox string, tagged so
/// server logs can tell the harness apart from a human.
pub const DEFAULT_USER_AGENT: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 spid-harness/0.1";

/// Default timeout of a single HTTP exchange (request and whole body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default cap on the size of a response body, in bytes (2 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Maximum number of redirects followed by one navigation.
pub const MAX_REDIRECTS: usize = 10;

/// Maximum number of SAML HTTP-POST forms that [`UserAgent::auto_post`]
/// submits in a row.
pub const MAX_AUTO_POST_ROUNDS: usize = 5;

/// Maximum size, in bytes, of [`Exchange::body_excerpt`] (4 KiB).
pub const BODY_EXCERPT_LEN: usize = 4 * 1024;

/// Name of the response header through which the fake IdP / SP report the
/// SPID rule a response is about.
pub const SPID_RULE_HEADER: &str = "x-spid-rule";

const ACCEPT_HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const ACCEPT_LANG: &str = "it-IT,it;q=0.9,en-US;q=0.8,en;q=0.7";
const FORM_URLENCODED: &str = "application/x-www-form-urlencoded";
const SAML_PARAMS: [&str; 2] = ["SAMLRequest", "SAMLResponse"];

/// Errors returned by [`UserAgent`] and [`Page`] helpers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// Transport-level failure (connection, timeout, unsupported scheme,
    /// client construction, error while reading the body, ...).
    #[error("HTTP error: {0}")]
    Http(String),
    /// More than [`MAX_REDIRECTS`] redirects in a single navigation.
    #[error("too many redirects (more than {MAX_REDIRECTS})")]
    TooManyRedirects,
    /// The response body exceeded the configured limit.
    #[error("response body larger than {limit} bytes")]
    BodyTooLarge {
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// A redirect carried a `Location` that cannot be resolved or followed.
    #[error("bad Location header: {0}")]
    BadLocation(String),
    /// A required form was not found on a page.
    #[error("no form found: {0}")]
    NoForm(String),
}

/// SAML binding through which a protocol message travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Binding {
    /// HTTP-Redirect binding: the message is a URL query parameter
    /// (base64 of the DEFLATE-compressed XML).
    Redirect,
    /// HTTP-POST binding: the message is a form field (base64 of the XML).
    Post,
}

/// Hook turning a raw SAML parameter into XML.
///
/// Called with the parameter name (`SAMLRequest` or `SAMLResponse`), its
/// value (already URL/form-decoded, i.e. the base64 text) and the binding.
/// Returns `None` when the value cannot be decoded. A panicking hook is
/// caught (under the default unwinding panic strategy) and treated as `None`.
pub type SamlDecoder = fn(param: &str, value: &str, binding: Binding) -> Option<String>;

/// A SAML protocol message observed in an exchange.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SamlMessage {
    /// `SAMLRequest` or `SAMLResponse`.
    pub param: String,
    /// Binding the message was carried by.
    pub binding: Binding,
    /// The parameter value as sent (after URL/form decoding). Written to a report only when
    /// `xml` is absent: otherwise the value is the exchange's form field or URL parameter
    /// already, and repeating it would make a fifth of `results.json`.
    #[serde(default)]
    pub raw: String,
    /// XML produced by the configured [`SamlDecoder`], if any.
    pub xml: Option<String>,
}

impl Serialize for SamlMessage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("SamlMessage", 4)?;
        st.serialize_field("param", &self.param)?;
        st.serialize_field("binding", &self.binding)?;
        match &self.xml {
            Some(_) => st.skip_field("raw")?,
            None => st.serialize_field("raw", &self.raw)?,
        }
        st.serialize_field("xml", &self.xml)?;
        st.end()
    }
}

/// One recorded HTTP request/response pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// Request method (`GET`, `POST`).
    pub method: String,
    /// Request URL (including any fragment the navigation carried; the
    /// fragment itself is never sent).
    pub url: String,
    /// Form fields sent as an `application/x-www-form-urlencoded` body
    /// (empty for GET).
    pub request_form: Vec<(String, String)>,
    /// Response status code.
    pub status: u16,
    /// Raw `Location` response header, if present.
    pub location: Option<String>,
    /// `X-SPID-Rule` response header, if present.
    pub spid_rule: Option<String>,
    /// `Content-Type` response header, if present.
    pub content_type: Option<String>,
    /// The first [`BODY_EXCERPT_LEN`] bytes of the (lossily decoded) body.
    pub body_excerpt: String,
    /// SAML messages found in the request URL query (Redirect binding), in
    /// the submitted form (POST binding) and in a redirect `Location`
    /// (Redirect binding).
    pub saml: Vec<SamlMessage>,
    /// The TLS handshake under the exchange, where the harness made it (the CNS client:
    /// whether the server asked for a client certificate and what was presented).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsHandshake>,
}

/// What happened in a TLS handshake with client authentication, as the client saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsHandshake {
    /// The negotiated protocol version (`TLSv1_3`), when the handshake completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The server's certificate subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Whether the server asked for a client certificate (a CertificateRequest).
    pub requested: bool,
    /// The subjects of the certificates presented, leaf first (empty: none).
    pub presented: Vec<String>,
    /// How the handshake or the connection failed (a TLS alert, a closed connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// A response the agent ended up on after following redirects.
#[derive(Debug, Clone)]
pub struct Page {
    /// URL of the page (the last URL requested).
    pub url: Url,
    /// Response status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body, decoded as UTF-8 lossily.
    pub body: String,
    /// The forms of `body`, parsed once, on first use.
    parsed_forms: std::sync::OnceLock<Vec<Form>>,
}

/// An HTML form as a browser would submit it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// The `id` attribute of the `<form>`, if any.
    pub id: Option<String>,
    /// Submission URL: `action` resolved against the page (or `<base>`)
    /// URL; the page URL when `action` is empty or missing.
    pub action: Url,
    /// `POST` or `GET` (anything but `post`, case-insensitively, is `GET`).
    pub method: String,
    /// Successful controls in document order: named inputs (checked
    /// checkboxes / radios only, no buttons, no files), textareas and selects.
    /// Disabled controls are skipped.
    pub fields: Vec<(String, String)>,
    /// Named submit buttons (`<button>` of type submit, `<input
    /// type=submit|image>`) as `(name, value)`. They are not submitted unless
    /// chosen through the overrides of [`UserAgent::submit`].
    pub buttons: Vec<(String, String)>,
}

impl Form {
    /// Value of the first field called `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Fields to submit with `overrides` applied: every field whose name is
    /// overridden is replaced (at its first position) by the override
    /// value(s), further fields with that name are dropped, and overrides
    /// naming no field are appended in order.
    fn fields_with(&self, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
        let overridden: HashSet<&str> = overrides.iter().map(|(k, _)| *k).collect();
        let mut emitted: HashSet<&str> = HashSet::new();
        let mut out = Vec::with_capacity(self.fields.len() + overrides.len());
        for (k, v) in &self.fields {
            if overridden.contains(k.as_str()) {
                if emitted.insert(k.as_str()) {
                    out.extend(
                        overrides
                            .iter()
                            .filter(|(ok, _)| *ok == k.as_str())
                            .map(|(ok, ov)| (ok.to_string(), ov.to_string())),
                    );
                }
            } else {
                out.push((k.clone(), v.clone()));
            }
        }
        for (k, v) in overrides {
            if !emitted.contains(k) {
                out.push((k.to_string(), v.to_string()));
            }
        }
        out
    }

    fn is_post(&self) -> bool {
        self.method.trim().eq_ignore_ascii_case("POST")
    }
}

impl Page {
    /// First value of response header `name` (case-insensitive), if it is
    /// present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `X-SPID-Rule` response header.
    pub fn spid_rule(&self) -> Option<&str> {
        self.header(SPID_RULE_HEADER)
    }

    /// Whether the page looks like HTML: a `Content-Type` mentioning `html`,
    /// or no `Content-Type` and a body starting with `<`.
    pub fn is_html(&self) -> bool {
        match self.headers.get(CONTENT_TYPE) {
            Some(ct) => String::from_utf8_lossy(ct.as_bytes())
                .to_ascii_lowercase()
                .contains("html"),
            None => self.body.trim_start().starts_with('<'),
        }
    }

    /// A page as received (its forms are parsed on first use).
    pub fn new(url: Url, status: u16, headers: HeaderMap, body: String) -> Page {
        Page {
            url,
            status,
            headers,
            body,
            parsed_forms: std::sync::OnceLock::new(),
        }
    }

    /// The forms of the page, parsed once: a page without `<form` is not parsed at all.
    fn parsed_forms(&self) -> &[Form] {
        self.parsed_forms.get_or_init(|| {
            if has_ascii_ci(&self.body, "<form") {
                parse_forms(&self.body, &self.url)
            } else {
                Vec::new()
            }
        })
    }

    /// All forms of the page, in document order.
    pub fn forms(&self) -> Vec<Form> {
        self.parsed_forms().to_vec()
    }

    /// The first form with a field (not a button) called `name`.
    pub fn form_with_field(&self, name: &str) -> Option<Form> {
        self.parsed_forms()
            .iter()
            .find(|f| f.field(name).is_some())
            .cloned()
    }

    /// The first form whose `id` is `id`.
    pub fn form_by_id(&self, id: &str) -> Option<Form> {
        self.parsed_forms()
            .iter()
            .find(|f| f.id.as_deref() == Some(id))
            .cloned()
    }

    /// Like [`Page::form_with_field`], failing with [`AgentError::NoForm`].
    pub fn require_form_with_field(&self, name: &str) -> Result<Form, AgentError> {
        self.form_with_field(name).ok_or_else(|| {
            AgentError::NoForm(format!(
                "no form with a field named `{name}` at {}",
                self.url
            ))
        })
    }

    /// Like [`Page::form_by_id`], failing with [`AgentError::NoForm`].
    pub fn require_form_by_id(&self, id: &str) -> Result<Form, AgentError> {
        self.form_by_id(id)
            .ok_or_else(|| AgentError::NoForm(format!("no form with id `{id}` at {}", self.url)))
    }

    /// The first form carrying a SAML HTTP-POST binding message, if this is
    /// a successful HTML page.
    fn saml_post_form(&self) -> Option<Form> {
        if self.status != 200 || !self.is_html() {
            return None;
        }
        let forms = self.parsed_forms();
        if let Some(f) = forms
            .iter()
            .find(|f| SAML_PARAMS.iter().any(|p| f.field(p).is_some()))
        {
            return Some(f.clone());
        }
        // Both checks below look for a script's `.submit()`: without one, no second parse.
        if forms.is_empty() || !self.body.contains(".submit()") {
            return None;
        }
        // An OIDC form_post answer (or any page) whose body submits its first form on load.
        let doc = Html::parse_document(&self.body);
        let body = scraper::Selector::parse("body").ok()?;
        let onload = doc
            .select(&body)
            .next()
            .and_then(|b| b.value().attr("onload"))
            .unwrap_or_default();
        if onload.contains("forms[0].submit()") {
            return forms.first().cloned();
        }
        // A lone form that a script submits, as a browser with scripts would.
        let script = scraper::Selector::parse("script").ok()?;
        let submits = doc
            .select(&script)
            .any(|s| s.text().collect::<String>().contains(".submit()"));
        if submits && forms.len() == 1 {
            return forms.first().cloned();
        }
        None
    }
}

/// Cookie store whose contents can be dropped at once (see
/// [`UserAgent::reset`]); it delegates to reqwest's default [`Jar`], the
/// store `ClientBuilder::cookie_store(true)` would install.
#[derive(Debug, Default)]
struct SessionJar {
    current: RwLock<Arc<Jar>>,
}

impl SessionJar {
    fn jar(&self) -> Arc<Jar> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn clear(&self) {
        let fresh = Arc::new(Jar::default());
        match self.current.write() {
            Ok(mut guard) => *guard = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }
}

impl CookieStore for SessionJar {
    fn set_cookies(&self, cookie_headers: &mut dyn Iterator<Item = &HeaderValue>, url: &Url) {
        self.jar().set_cookies(cookie_headers, url);
    }

    fn cookies(&self, url: &Url) -> Option<HeaderValue> {
        self.jar().cookies(url)
    }
}

/// A browser-like HTTP client with a cookie jar and an exchange trace.
///
/// Redirects are followed by the agent itself (the underlying client uses
/// `Policy::none()`), so every hop lands in [`UserAgent::trace`].
#[derive(Debug)]
pub struct UserAgent {
    client: Client,
    jar: Arc<SessionJar>,
    timeout: Duration,
    body_limit: usize,
    decoder: Option<SamlDecoder>,
    trace: Vec<Exchange>,
    /// The last SAML message decoded: a redirect's `Location` and the request that follows it
    /// carry the same one, decoded once.
    last_saml: Option<SamlMessage>,
}

/// The agent's HTTP/1.1 client: hyper's, with its connection pool. Not reqwest's, which the
/// rest of the harness uses: the agent follows redirects and keeps cookies itself, and reqwest's
/// redirect and cookie layers parse every request's URL again (three times, a long SAMLRequest
/// query each time), a third of the agent's cost per exchange (docs/dependencies.md).
type Client = hyper_util::client::legacy::Client<HttpConnector<LoopbackResolver>, Full<Bytes>>;

/// Name resolution as a browser does it: the system's, except that `*.localhost` is loopback
/// (RFC 6761), as browsers resolve it; our CIE IdP's pre-production and collaudo hosts
/// (`spid_core::cie::CieEnv::loopback_base`) live there.
#[derive(Clone, Debug)]
struct LoopbackResolver(GaiResolver);

type Resolved = std::vec::IntoIter<std::net::SocketAddr>;
type Resolving =
    std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Resolved>> + Send>>;

impl tower_service::Service<Name> for LoopbackResolver {
    type Response = Resolved;
    type Error = std::io::Error;
    type Future = Resolving;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let host = name.as_str();
        if host.eq_ignore_ascii_case("localhost")
            || host
                .to_ascii_lowercase()
                .ends_with(&format!(".{}", spid_core::cie::LOOPBACK_DOMAIN))
        {
            // The connector puts the URL's port on every address.
            let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            return Box::pin(std::future::ready(Ok(vec![loopback].into_iter())));
        }
        let lookup = self.0.call(name);
        Box::pin(async move { Ok(lookup.await?.collect::<Vec<_>>().into_iter()) })
    }
}

fn build_client() -> Client {
    let mut connector = HttpConnector::new_with_resolver(LoopbackResolver(GaiResolver::new()));
    connector.set_nodelay(true);
    // The harness talks to local fake IdPs/SPs: no proxy is consulted.
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .build(connector)
}

impl UserAgent {
    /// A fresh agent: empty cookie jar, empty trace, [`DEFAULT_TIMEOUT`],
    /// [`DEFAULT_BODY_LIMIT`], no SAML decoder.
    pub fn new() -> Result<Self, AgentError> {
        let jar = Arc::new(SessionJar::default());
        let client = build_client();
        Ok(Self {
            client,
            jar,
            timeout: DEFAULT_TIMEOUT,
            body_limit: DEFAULT_BODY_LIMIT,
            decoder: None,
            trace: Vec::new(),
            last_saml: None,
        })
    }

    /// Sets the timeout of each HTTP exchange (connection, request and the
    /// whole response body).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the maximum response body size in bytes; larger bodies fail with
    /// [`AgentError::BodyTooLarge`].
    pub fn with_body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }

    /// Sets the hook used to fill [`SamlMessage::xml`].
    pub fn with_decoder(mut self, decoder: SamlDecoder) -> Self {
        self.decoder = Some(decoder);
        self.last_saml = None;
        self
    }

    /// Exchanges recorded so far, oldest first.
    pub fn trace(&self) -> &[Exchange] {
        &self.trace
    }

    /// Returns the recorded exchanges and empties the trace.
    pub fn take_trace(&mut self) -> Vec<Exchange> {
        std::mem::take(&mut self.trace)
    }

    /// Drops every cookie, keeping the trace and the HTTP client.
    pub fn clear_cookies(&mut self) {
        self.jar.clear();
    }

    /// Starts a fresh browser session: drops every cookie, rebuilds the HTTP
    /// client (dropping pooled connections) and clears the trace. Timeout,
    /// body limit and decoder are kept.
    pub fn reset(&mut self) {
        self.jar.clear();
        self.client = build_client();
        self.trace.clear();
        self.last_saml = None;
    }

    /// Starts a fresh browser session on the same HTTP client: drops every cookie and clears
    /// the trace, but keeps the pooled connections (they carry no session: the cookies do).
    /// Timeout, body limit and decoder are kept.
    pub fn new_session(&mut self) {
        self.jar.clear();
        self.trace.clear();
        self.last_saml = None;
    }

    /// Stores a cookie (`name=value; attributes`) for `url`, as a `Set-Cookie` from it would.
    pub fn add_cookie(&self, cookie: &str, url: &Url) {
        self.jar.jar().add_cookie_str(cookie, url);
    }

    /// The `Cookie` header the agent would send to `url`, if any.
    pub fn cookies_for(&self, url: &Url) -> Option<String> {
        self.jar
            .cookies(url)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// GETs `url` and follows redirects (at most [`MAX_REDIRECTS`]).
    ///
    /// 303 turns the request into a GET, 301/302 turn a POST into a GET (as
    /// browsers do), 307/308 keep method and form body. Relative `Location`s
    /// are resolved against the current URL. A redirect without `Location`
    /// is returned as the final page.
    pub async fn get(&mut self, url: &Url) -> Result<Page, AgentError> {
        self.navigate(Method::GET, url.clone(), Vec::new(), HeaderMap::new())
            .await
    }

    /// POSTs `fields` as `application/x-www-form-urlencoded` to `url` and
    /// follows redirects like [`UserAgent::get`].
    pub async fn post_form(
        &mut self,
        url: &Url,
        fields: &[(String, String)],
    ) -> Result<Page, AgentError> {
        self.navigate(Method::POST, url.clone(), fields.to_vec(), HeaderMap::new())
            .await
    }

    /// Sends `method` to `url` with extra request `headers` (and `fields` as a form body unless
    /// GET/HEAD), following redirects like [`UserAgent::get`]: API calls (token, userinfo)
    /// that belong in the same trace as the browser steps.
    pub async fn send(
        &mut self,
        method: Method,
        url: &Url,
        fields: &[(String, String)],
        headers: HeaderMap,
    ) -> Result<Page, AgentError> {
        self.navigate(method, url.clone(), fields.to_vec(), headers)
            .await
    }

    /// Submits `form` (found on `page`) and follows redirects.
    ///
    /// `overrides` replace the values of fields with the same name or add
    /// new fields; to press a named submit button pass its `(name, value)`
    /// (see [`Form::buttons`]). Giving the same name several times submits
    /// several values. GET forms replace the action's query with the fields;
    /// POST forms send them URL-encoded. Like a browser, the request carries
    /// a `Referer` derived from the page URL and, for POST, an `Origin`.
    pub async fn submit(
        &mut self,
        page: &Page,
        form: &Form,
        overrides: &[(&str, &str)],
    ) -> Result<Page, AgentError> {
        let fields = form.fields_with(overrides);
        let mut headers = HeaderMap::new();
        if let Some(referer) = referrer(&page.url, &form.action) {
            if let Ok(v) = HeaderValue::from_str(&referer) {
                headers.insert(REFERER, v);
            }
        }
        if form.is_post() {
            if let Ok(v) = HeaderValue::from_str(&page.url.origin().ascii_serialization()) {
                headers.insert(ORIGIN, v);
            }
            self.navigate(Method::POST, form.action.clone(), fields, headers)
                .await
        } else {
            let mut url = form.action.clone();
            let query = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&fields)
                .finish();
            url.set_query(Some(&query));
            self.navigate(Method::GET, url, Vec::new(), headers).await
        }
    }

    /// Plays the part of the browser's JavaScript for the SAML HTTP-POST
    /// binding and OIDC `form_post`: while `page` is a 200 HTML page with a form
    /// holding a `SAMLRequest` or `SAMLResponse` input, or whose `<body onload>`
    /// submits `forms[0]`, submits that form unchanged.
    /// Stops after [`MAX_AUTO_POST_ROUNDS`] submissions and returns the page
    /// reached (which is `page` itself when it has no such form).
    pub async fn auto_post(&mut self, page: Page) -> Result<Page, AgentError> {
        let mut page = page;
        for _ in 0..MAX_AUTO_POST_ROUNDS {
            let Some(form) = page.saml_post_form() else {
                return Ok(page);
            };
            page = self.submit(&page, &form, &[]).await?;
        }
        Ok(page)
    }

    /// Performs a request and follows redirects, recording every hop.
    /// `headers` are sent with the first request only.
    async fn navigate(
        &mut self,
        method: Method,
        url: Url,
        form: Vec<(String, String)>,
        headers: HeaderMap,
    ) -> Result<Page, AgentError> {
        let (mut method, mut url, mut form, mut headers) = (method, url, form, headers);
        let mut redirects = 0usize;
        loop {
            let (page, next) = self.exchange(&method, &url, &form, &headers).await?;
            let Some(mut next) = next else {
                return Ok(page);
            };
            redirects += 1;
            if redirects > MAX_REDIRECTS {
                return Err(AgentError::TooManyRedirects);
            }
            let to_get = match page.status {
                303 => method != Method::HEAD,
                301 | 302 => method == Method::POST,
                _ => false,
            };
            if to_get {
                method = Method::GET;
                form.clear();
            }
            // Browsers carry the fragment over when the Location has none.
            if next.fragment().is_none() {
                if let Some(fragment) = url.fragment().map(str::to_owned) {
                    next.set_fragment(Some(&fragment));
                }
            }
            headers = HeaderMap::new();
            url = next;
        }
    }

    /// One request/response, appended to the trace. Returns the page and,
    /// for a redirect status with a `Location`, the resolved next URL.
    async fn exchange(
        &mut self,
        method: &Method,
        url: &Url,
        form: &[(String, String)],
        headers: &HeaderMap,
    ) -> Result<(Page, Option<Url>), AgentError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(AgentError::Http(format!("unsupported URL scheme: {url}")));
        }
        let mut wire_url = url.clone();
        wire_url.set_fragment(None);
        let uri: hyper::Uri = wire_url
            .as_str()
            .parse()
            .map_err(|e| AgentError::Http(format!("{method} {url}: {e}")))?;
        let sends_form = *method != Method::GET && *method != Method::HEAD;
        let mut request = hyper::Request::new(if sends_form {
            Full::new(Bytes::from(form_body(form)))
        } else {
            Full::default()
        });
        *request.method_mut() = method.clone();
        *request.uri_mut() = uri;
        let h = request.headers_mut();
        h.insert(USER_AGENT, HeaderValue::from_static(DEFAULT_USER_AGENT));
        h.insert(ACCEPT, HeaderValue::from_static(ACCEPT_HTML));
        h.insert(ACCEPT_LANGUAGE, HeaderValue::from_static(ACCEPT_LANG));
        for name in headers.keys() {
            h.remove(name);
        }
        for (name, value) in headers {
            h.append(name.clone(), value.clone());
        }
        if sends_form {
            h.insert(CONTENT_TYPE, HeaderValue::from_static(FORM_URLENCODED));
        }
        if !h.contains_key(COOKIE) {
            if let Some(cookies) = self.jar.cookies(&wire_url) {
                h.insert(COOKIE, cookies);
            }
        }

        let client = &self.client;
        let body_limit = self.body_limit;
        let exchanged = tokio::time::timeout(self.timeout, async move {
            let response = client.request(request).await?;
            let (parts, body) = response.into_parts();
            let (bytes, body_error) = read_body(body, &parts.headers, body_limit).await;
            Ok::<_, hyper_util::client::legacy::Error>((parts, bytes, body_error))
        })
        .await;
        let (parts, bytes, body_error) = match exchanged {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => return Err(http_error(&format!("{method} {url}"), &e)),
            Err(_) => {
                return Err(AgentError::Http(format!(
                    "{method} {url}: no complete response within {} s",
                    self.timeout.as_secs_f32()
                )))
            }
        };
        self.jar
            .set_cookies(&mut parts.headers.get_all(SET_COOKIE).iter(), url);
        let status = parts.status.as_u16();
        let response_headers = parts.headers;
        // Validated a word at a time; decoded lossily only when it is not UTF-8.
        let body = match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };

        let mut saml = Vec::new();
        self.saml_in_query(url, &mut saml);
        if sends_form {
            for (k, v) in form {
                if is_saml_param(k) {
                    saml.push(self.saml_message(k, v, Binding::Post));
                }
            }
        }

        let location = header_string(&response_headers, LOCATION);
        let mut next = None;
        let mut location_error = None;
        if matches!(status, 301 | 302 | 303 | 307 | 308) {
            if let Some(loc) = &location {
                match resolve_location(url, loc) {
                    Ok(target) => {
                        self.saml_in_query(&target, &mut saml);
                        next = Some(target);
                    }
                    Err(e) => location_error = Some(e),
                }
            }
        }

        self.trace.push(Exchange {
            method: method.as_str().to_owned(),
            url: url.as_str().to_owned(),
            request_form: if sends_form {
                form.to_vec()
            } else {
                Vec::new()
            },
            status,
            location,
            spid_rule: header_string(&response_headers, SPID_RULE_HEADER),
            content_type: header_string(&response_headers, CONTENT_TYPE),
            body_excerpt: excerpt(&body, BODY_EXCERPT_LEN).to_owned(),
            saml,
            tls: None,
        });

        if let Some(e) = body_error.or(location_error) {
            return Err(e);
        }
        let page = Page::new(url.clone(), status, response_headers, body);
        Ok((page, next))
    }

    fn saml_in_query(&mut self, url: &Url, out: &mut Vec<SamlMessage>) {
        for (k, v) in url.query_pairs() {
            if is_saml_param(&k) {
                out.push(self.saml_message(&k, &v, Binding::Redirect));
            }
        }
    }

    fn saml_message(&mut self, param: &str, raw: &str, binding: Binding) -> SamlMessage {
        if let Some(m) = &self.last_saml {
            if m.param == param && m.raw == raw && m.binding == binding {
                return m.clone();
            }
        }
        let xml = self.decoder.and_then(|decode| {
            std::panic::catch_unwind(|| decode(param, raw, binding))
                .ok()
                .flatten()
        });
        let m = SamlMessage {
            param: param.to_owned(),
            binding,
            raw: raw.to_owned(),
            xml,
        };
        self.last_saml = Some(m.clone());
        m
    }
}

fn is_saml_param(name: &str) -> bool {
    SAML_PARAMS.contains(&name)
}

/// Formats a transport error with its whole source chain.
fn http_error(context: &str, error: &dyn std::error::Error) -> AgentError {
    let mut message = format!("{context}: {error}");
    let mut source = error.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    AgentError::Http(message)
}

/// Reads at most `limit` bytes of body. On failure returns what was read
/// together with the error.
async fn read_body(
    mut body: hyper::body::Incoming,
    headers: &HeaderMap,
    limit: usize,
) -> (Vec<u8>, Option<AgentError>) {
    let too_large = AgentError::BodyTooLarge { limit };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return (Vec::new(), Some(too_large));
    }
    let mut buf = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                let Ok(chunk) = frame.into_data() else {
                    continue; // trailers
                };
                let room = limit.saturating_sub(buf.len());
                if chunk.len() > room {
                    buf.extend_from_slice(&chunk[..room]);
                    return (buf, Some(too_large));
                }
                buf.extend_from_slice(&chunk);
            }
            None => return (buf, None),
            Some(Err(e)) => return (buf, Some(http_error("reading response body", &e))),
        }
    }
}

/// A header value as text (lossy for non-UTF-8 bytes).
fn header_string<K: reqwest::header::AsHeaderName>(headers: &HeaderMap, name: K) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// The longest prefix of `s` of at most `max` bytes ending on a char boundary.
fn excerpt(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn resolve_location(base: &Url, location: &str) -> Result<Url, AgentError> {
    let target = base
        .join(location.trim())
        .map_err(|e| AgentError::BadLocation(format!("{location:?}: {e}")))?;
    if !matches!(target.scheme(), "http" | "https") {
        return Err(AgentError::BadLocation(format!(
            "{location:?}: unsupported scheme {:?}",
            target.scheme()
        )));
    }
    Ok(target)
}

/// `Referer` under the default `strict-origin-when-cross-origin` policy.
fn referrer(from: &Url, to: &Url) -> Option<String> {
    if !matches!(from.scheme(), "http" | "https")
        || (from.scheme() == "https" && to.scheme() == "http")
    {
        return None;
    }
    if from.origin() == to.origin() {
        let mut r = from.clone();
        r.set_fragment(None);
        let _ = r.set_username("");
        let _ = r.set_password(None);
        Some(r.to_string())
    } else {
        Some(format!("{}/", from.origin().ascii_serialization()))
    }
}

// ----- HTML form parsing -------------------------------------------------

/// `fields` encoded as `application/x-www-form-urlencoded`, byte for byte as
/// `form_urlencoded::Serializer` writes them, copying the runs that need no escape: a SAML
/// POST body is kilobytes of base64 that the serializer walks a byte at a time.
fn form_body(fields: &[(String, String)]) -> String {
    // Every byte outside the runs copied is written as ASCII, and the runs are ASCII too (a
    // non-ASCII byte is always escaped): the output is ASCII.
    fn push(out: &mut Vec<u8>, s: &str) {
        let s = s.as_bytes();
        let mut from = 0;
        for (i, &b) in s.iter().enumerate() {
            if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_') {
                continue;
            }
            out.extend_from_slice(&s[from..i]);
            if b == b' ' {
                out.push(b'+');
            } else {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
            from = i + 1;
        }
        out.extend_from_slice(&s[from..]);
    }
    let mut out = Vec::with_capacity(fields.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        push(&mut out, k);
        out.push(b'=');
        push(&mut out, v);
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Whether `hay` contains `needle` (ASCII, lower case) in any ASCII case.
fn has_ascii_ci(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn parse_forms(body: &str, page_url: &Url) -> Vec<Form> {
    let html = Html::parse_document(body);
    let elements = || {
        html.root_element()
            .descendants()
            .filter_map(ElementRef::wrap)
    };

    // Base URL for resolving actions: the first <base href>, else the page.
    let base = elements()
        .find(|e| e.value().name() == "base" && e.value().attr("href").is_some())
        .and_then(|e| e.value().attr("href"))
        .and_then(|href| page_url.join(href.trim()).ok())
        .unwrap_or_else(|| page_url.clone());

    let mut forms = Vec::new();
    let mut form_nodes = Vec::new();
    for el in elements().filter(|e| e.value().name() == "form") {
        let attr = |n: &str| el.value().attr(n);
        let action = match attr("action").map(str::trim) {
            Some(a) if !a.is_empty() => base.join(a).unwrap_or_else(|_| page_url.clone()),
            _ => page_url.clone(),
        };
        let method = match attr("method") {
            Some(m) if m.trim().eq_ignore_ascii_case("post") => "POST",
            _ => "GET",
        };
        forms.push(Form {
            id: attr("id").map(str::to_owned),
            action,
            method: method.to_owned(),
            fields: Vec::new(),
            buttons: Vec::new(),
        });
        form_nodes.push(el.id());
    }
    if forms.is_empty() {
        return forms;
    }

    for el in elements() {
        if !matches!(
            el.value().name(),
            "input" | "textarea" | "select" | "button"
        ) {
            continue;
        }
        // Form owner: the `form` attribute if present, else the nearest
        // ancestor <form>.
        let owner = match el.value().attr("form") {
            Some(form_id) => forms.iter().position(|f| f.id.as_deref() == Some(form_id)),
            None => el
                .ancestors()
                .filter_map(ElementRef::wrap)
                .find(|a| a.value().name() == "form")
                .and_then(|a| form_nodes.iter().position(|n| *n == a.id())),
        };
        let Some(index) = owner else { continue };
        if el.value().attr("disabled").is_some() {
            continue;
        }
        collect_control(el, &mut forms[index]);
    }
    forms
}

fn collect_control(el: ElementRef<'_>, form: &mut Form) {
    let value = el.value();
    let Some(name) = value.attr("name").filter(|n| !n.is_empty()) else {
        return;
    };
    let name = name.to_owned();
    let kind = value
        .attr("type")
        .map(|t| t.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let attr_value = || value.attr("value").unwrap_or("").to_owned();
    match value.name() {
        "input" => match kind.as_str() {
            "submit" | "image" => form.buttons.push((name, attr_value())),
            "button" | "reset" | "file" => {}
            "checkbox" | "radio" => {
                if value.attr("checked").is_some() {
                    let v = value.attr("value").unwrap_or("on").to_owned();
                    form.fields.push((name, v));
                }
            }
            _ => form.fields.push((name, attr_value())),
        },
        // A <button> of any type but button/reset (even an invalid one) submits.
        "button" if !matches!(kind.as_str(), "button" | "reset") => {
            form.buttons.push((name, attr_value()));
        }
        "textarea" => form.fields.push((name, el.text().collect())),
        "select" => {
            let options: Vec<ElementRef<'_>> = el
                .descendants()
                .filter_map(ElementRef::wrap)
                .filter(|o| o.value().name() == "option")
                .collect();
            let usable = |o: &&ElementRef<'_>| o.value().attr("disabled").is_none();
            let selected = |o: &&ElementRef<'_>| o.value().attr("selected").is_some();
            if value.attr("multiple").is_some() {
                for o in options.iter().filter(selected).filter(usable) {
                    form.fields.push((name.clone(), option_value(o)));
                }
            } else {
                let chosen = match options.iter().rev().find(selected) {
                    Some(o) => Some(o).filter(usable),
                    None => options.iter().find(usable),
                };
                if let Some(o) = chosen {
                    form.fields.push((name, option_value(o)));
                }
            }
        }
        _ => {}
    }
}

fn option_value(option: &ElementRef<'_>) -> String {
    match option.value().attr("value") {
        Some(v) => v.to_owned(),
        None => option
            .text()
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    }
}

// ----- tests --------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{header, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{any, get};
    use axum::Router;
    use std::sync::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Serves `app` on an ephemeral port; returns its base URL.
    async fn serve(app: Router) -> Url {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Url::parse(&format!("http://{addr}/")).unwrap()
    }

    /// Serves one raw HTTP response per connection, forever.
    async fn serve_raw(response: &'static [u8]) -> Url {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = sock.write_all(response).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Url::parse(&format!("http://{addr}/")).unwrap()
    }

    fn redirect(status: StatusCode, to: &str) -> Response {
        (status, [(header::LOCATION, to.to_owned())]).into_response()
    }

    fn html(body: &str) -> Response {
        (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body.to_owned(),
        )
            .into_response()
    }

    fn parse_pairs(s: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(s.as_bytes()).into_owned().collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn page(url: &str, body: &str) -> Page {
        Page::new(
            Url::parse(url).unwrap(),
            200,
            HeaderMap::new(),
            body.to_owned(),
        )
    }

    #[test]
    fn futures_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        let mut ua = UserAgent::new().unwrap();
        let url = Url::parse("http://127.0.0.1:1/").unwrap();
        let p = page("http://127.0.0.1:1/", "");
        let f = Form {
            id: None,
            action: url.clone(),
            method: "GET".into(),
            fields: vec![],
            buttons: vec![],
        };
        assert_send(&ua.get(&url));
        assert_send(&ua.post_form(&url, &[]));
        assert_send(&ua.submit(&p, &f, &[]));
        assert_send(&ua.auto_post(p.clone()));
    }

    #[tokio::test]
    async fn cookies_are_sent_back_and_reset_clears_them() {
        let app = Router::new()
            .route(
                "/set",
                get(|| async {
                    (
                        [(header::SET_COOKIE, "sid=abc123; Path=/; HttpOnly")],
                        "set",
                    )
                }),
            )
            .route(
                "/check",
                get(|headers: axum::http::HeaderMap| async move {
                    headers
                        .get(header::COOKIE)
                        .map(|v| v.to_str().unwrap_or("").to_owned())
                        .unwrap_or_else(|| "none".to_owned())
                }),
            );
        let base = serve(app).await;
        let mut ua = UserAgent::new().unwrap();
        ua.get(&base.join("set").unwrap()).await.unwrap();
        let page = ua.get(&base.join("check").unwrap()).await.unwrap();
        assert_eq!(page.body, "sid=abc123");
        assert_eq!(ua.cookies_for(&base).as_deref(), Some("sid=abc123"));
        assert_eq!(ua.trace().len(), 2);

        ua.reset();
        assert!(ua.trace().is_empty());
        assert_eq!(ua.cookies_for(&base), None);
        let page = ua.get(&base.join("check").unwrap()).await.unwrap();
        assert_eq!(page.body, "none");

        ua.get(&base.join("set").unwrap()).await.unwrap();
        ua.clear_cookies();
        assert_eq!(ua.cookies_for(&base), None);
        let page = ua.get(&base.join("check").unwrap()).await.unwrap();
        assert_eq!(page.body, "none");
        assert_eq!(ua.take_trace().len(), 3);
        assert!(ua.trace().is_empty());
    }

    #[tokio::test]
    async fn a_new_session_keeps_the_connection_and_drops_the_cookies() {
        let app = Router::new().route(
            "/set",
            get(|headers: axum::http::HeaderMap| async move {
                let seen = headers
                    .get(header::COOKIE)
                    .map(|v| v.to_str().unwrap_or("").to_owned())
                    .unwrap_or_else(|| "none".to_owned());
                ([(header::SET_COOKIE, "sid=abc123; Path=/")], seen)
            }),
        );
        let base = serve(app).await;
        let url = base.join("set").unwrap();
        let mut ua = UserAgent::new().unwrap();
        assert_eq!(ua.get(&url).await.unwrap().body, "none");
        assert_eq!(ua.get(&url).await.unwrap().body, "sid=abc123");
        ua.new_session();
        assert!(ua.trace().is_empty());
        assert_eq!(ua.cookies_for(&base), None);
        assert_eq!(ua.get(&url).await.unwrap().body, "none");
    }

    #[tokio::test]
    async fn redirect_chain_is_followed_and_traced() {
        let app = Router::new()
            .route("/a", get(|| async { redirect(StatusCode::FOUND, "b?x=1") }))
            .route(
                "/b",
                get(|| async { redirect(StatusCode::MOVED_PERMANENTLY, "/c#frag") }),
            )
            .route(
                "/c",
                get(|| async { redirect(StatusCode::SEE_OTHER, "/d") }),
            )
            .route("/d", get(|| async { html("<p>done</p>") }))
            .route(
                "/loop",
                get(|| async { redirect(StatusCode::FOUND, "/loop") }),
            )
            .route(
                "/bad",
                get(|| async { redirect(StatusCode::FOUND, "http://[::1") }),
            )
            .route(
                "/noloc",
                get(|| async { (StatusCode::FOUND, "no location here") }),
            );
        let base = serve(app).await;
        let mut ua = UserAgent::new().unwrap();
        let page = ua.get(&base.join("a").unwrap()).await.unwrap();
        assert_eq!(page.status, 200);
        assert_eq!(page.body, "<p>done</p>");
        // The fragment of /c#frag is inherited by /d.
        assert_eq!(page.url, base.join("d#frag").unwrap());

        let t = ua.trace();
        let hops: Vec<(&str, u16, Option<&str>)> = t
            .iter()
            .map(|e| (e.url.as_str(), e.status, e.location.as_deref()))
            .collect();
        let u = |p: &str| base.join(p).unwrap().to_string();
        assert_eq!(
            hops,
            vec![
                (u("a").as_str(), 302, Some("b?x=1")),
                (u("b?x=1").as_str(), 301, Some("/c#frag")),
                (u("c#frag").as_str(), 303, Some("/d")),
                (u("d#frag").as_str(), 200, None),
            ]
        );
        assert!(t.iter().all(|e| e.method == "GET"));
        assert_eq!(
            t[3].content_type.as_deref(),
            Some("text/html; charset=utf-8")
        );

        ua.reset();
        let err = ua.get(&base.join("loop").unwrap()).await.unwrap_err();
        assert_eq!(err, AgentError::TooManyRedirects);
        assert_eq!(ua.trace().len(), MAX_REDIRECTS + 1);

        let err = ua.get(&base.join("bad").unwrap()).await.unwrap_err();
        assert!(matches!(err, AgentError::BadLocation(_)), "{err:?}");

        let page = ua.get(&base.join("noloc").unwrap()).await.unwrap();
        assert_eq!(page.status, 302);
        assert_eq!(page.body, "no location here");
    }

    #[tokio::test]
    async fn redirect_method_rules() {
        let echo =
            |method: axum::http::Method, body: String| async move { format!("{method} {body}") };
        let app = Router::new()
            .route(
                "/p302",
                any(|| async { redirect(StatusCode::FOUND, "/echo") }),
            )
            .route(
                "/p303",
                any(|| async { redirect(StatusCode::SEE_OTHER, "/echo") }),
            )
            .route(
                "/p307",
                any(|| async { redirect(StatusCode::TEMPORARY_REDIRECT, "/echo") }),
            )
            .route(
                "/p308",
                any(|| async { redirect(StatusCode::PERMANENT_REDIRECT, "/echo") }),
            )
            .route("/echo", any(echo));
        let base = serve(app).await;
        let mut ua = UserAgent::new().unwrap();
        let fields = pairs(&[("a", "1 2"), ("b", "&=")]);
        for (path, expected) in [
            ("p302", "GET "),
            ("p303", "GET "),
            ("p307", "POST a=1+2&b=%26%3D"),
            ("p308", "POST a=1+2&b=%26%3D"),
        ] {
            let page = ua
                .post_form(&base.join(path).unwrap(), &fields)
                .await
                .unwrap();
            assert_eq!(page.body, expected, "{path}");
            let last = ua.trace().last().unwrap();
            assert_eq!(last.method, expected.split(' ').next().unwrap());
            let expected_form = if expected.starts_with("POST") {
                fields.clone()
            } else {
                vec![]
            };
            assert_eq!(last.request_form, expected_form);
        }
    }

    fn fake_decoder(param: &str, value: &str, binding: Binding) -> Option<String> {
        Some(format!(
            "<{param} binding=\"{binding:?}\">{value}</{param}>"
        ))
    }

    #[tokio::test]
    async fn saml_post_form_is_auto_submitted() {
        let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let sink = received.clone();
        let app = Router::new()
            .route(
                "/idp",
                get(|| async {
                    html(
                        r#"<html><body onload="document.forms[0].submit()">
                        <form method="post" action="/acs">
                          <input type="hidden" name="SAMLResponse" value="PHNhbWxwOlJlc3BvbnNlLz4=">
                          <input type="hidden" name="RelayState" value="state 1">
                          <noscript><input type="submit" value="Continue"></noscript>
                        </form></body></html>"#,
                    )
                }),
            )
            .route(
                "/acs",
                axum::routing::post(move |body: String| async move {
                    *sink.lock().unwrap() = parse_pairs(&body);
                    redirect(StatusCode::SEE_OTHER, "/home")
                }),
            )
            .route("/home", get(|| async { html("<h1>welcome</h1>") }));
        let base = serve(app).await;
        let mut ua = UserAgent::new().unwrap().with_decoder(fake_decoder);
        let first = ua.get(&base.join("idp").unwrap()).await.unwrap();
        let last = ua.auto_post(first).await.unwrap();
        assert_eq!(last.body, "<h1>welcome</h1>");
        assert_eq!(last.url, base.join("home").unwrap());
        assert_eq!(
            *received.lock().unwrap(),
            pairs(&[
                ("SAMLResponse", "PHNhbWxwOlJlc3BvbnNlLz4="),
                ("RelayState", "state 1")
            ])
        );

        let t = ua.trace();
        assert_eq!(t.len(), 3);
        assert_eq!(t[1].method, "POST");
        assert_eq!(t[1].url, base.join("acs").unwrap().to_string());
        assert_eq!(
            t[1].saml,
            vec![SamlMessage {
                param: "SAMLResponse".into(),
                binding: Binding::Post,
                raw: "PHNhbWxwOlJlc3BvbnNlLz4=".into(),
                xml: Some(
                    "<SAMLResponse binding=\"Post\">PHNhbWxwOlJlc3BvbnNlLz4=</SAMLResponse>".into()
                ),
            }]
        );
        assert!(t[0].saml.is_empty() && t[2].saml.is_empty());

        // A page without a SAML form is returned untouched.
        let again = ua.auto_post(last.clone()).await.unwrap();
        assert_eq!(again.url, last.url);
        assert_eq!(ua.trace().len(), 3);
    }

    #[tokio::test]
    async fn auto_post_stops_after_max_rounds() {
        let app = Router::new().route(
            "/self",
            any(|| async { html(r#"<form method=post><input name=SAMLRequest value=x></form>"#) }),
        );
        let base = serve(app).await;
        let mut ua = UserAgent::new().unwrap();
        let first = ua.get(&base.join("self").unwrap()).await.unwrap();
        let last = ua.auto_post(first).await.unwrap();
        assert_eq!(last.status, 200);
        assert_eq!(ua.trace().len(), 1 + MAX_AUTO_POST_ROUNDS);
    }

    const LOGIN_PAGE: &str = r#"<!doctype html>
<html><head><title>Login</title></head><body>
<form id="login" action="/login?step=2" method="post">
  <input type="text" name="username" value="mario">
  <input type="password" name="password">
  <input type="hidden" name="csrf" value="tok&amp;en">
  <input type="checkbox" name="remember" value="yes" checked>
  <input type="checkbox" name="newsletter">
  <input type="radio" name="level" value="1">
  <input type="radio" name="level" value="2" checked>
  <input name="notype" value="plain">
  <input type="text" value="no name">
  <input type="text" name="off" value="x" disabled>
  <input type="file" name="upload">
  <select name="spidLevel">
    <option value="L1">Livello 1</option>
    <option value="L2" selected>Livello 2</option>
  </select>
  <select name="first"><option>  Uno
     due </option><option>tre</option></select>
  <select name="many" multiple><option selected>a</option><option>b</option><option selected value="c">C</option></select>
  <textarea name="notes">line1
line2</textarea>
  <button type="submit" name="action" value="approve">Approva</button>
  <button name="action" value="deny">Nega</button>
  <button type="button" name="js" value="x">JS</button>
  <input type="submit" name="go" value="Go">
  <input type="reset" name="rst">
</form>
<input form="login" name="outside" value="o">
<form id="search"><input name="q" value="spid"></form>
<form action="  " method="POST"><input name="SAMLRequest" value="zzz"></form>
</body></html>"#;

    #[test]
    fn form_bodies_are_encoded_as_form_urlencoded_encodes_them() {
        let cases: Vec<Vec<(String, String)>> = vec![
            vec![],
            vec![("a".into(), String::new())],
            vec![
                ("SAMLResponse".into(), "PHNhbWxwOlJl+c3/Bv==".into()),
                ("RelayState".into(), "x y&z=1%2F è😀 *-._~!".into()),
            ],
            vec![("".into(), "".into()), ("k k".into(), "\u{0}\n\t".into())],
        ];
        for fields in cases {
            let want = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&fields)
                .finish();
            assert_eq!(form_body(&fields), want);
        }
    }

    #[test]
    fn forms_are_parsed_like_a_browser() {
        let p = page("http://sp.example/start?x=1#top", LOGIN_PAGE);
        let forms = p.forms();
        assert_eq!(forms.len(), 3);

        let login = &forms[0];
        assert_eq!(login.id.as_deref(), Some("login"));
        assert_eq!(login.method, "POST");
        assert_eq!(login.action.as_str(), "http://sp.example/login?step=2");
        assert_eq!(
            login.fields,
            pairs(&[
                ("username", "mario"),
                ("password", ""),
                ("csrf", "tok&en"),
                ("remember", "yes"),
                ("level", "2"),
                ("notype", "plain"),
                ("spidLevel", "L2"),
                ("first", "Uno due"),
                ("many", "a"),
                ("many", "c"),
                ("notes", "line1\nline2"),
                ("outside", "o"),
            ])
        );
        assert_eq!(
            login.buttons,
            pairs(&[("action", "approve"), ("action", "deny"), ("go", "Go")])
        );
        assert_eq!(login.field("csrf"), Some("tok&en"));
        assert_eq!(login.field("newsletter"), None);
        assert_eq!(login.field("action"), None);

        let search = p.form_by_id("search").unwrap();
        assert_eq!(search.method, "GET");
        assert_eq!(search.action, p.url);
        let saml = p.form_with_field("SAMLRequest").unwrap();
        assert_eq!(saml.method, "POST");
        assert_eq!(saml.action, p.url);
        assert!(p.form_by_id("nope").is_none());
        assert!(matches!(
            p.require_form_with_field("nope"),
            Err(AgentError::NoForm(_))
        ));
        assert!(p.require_form_by_id("login").is_ok());

        // Overrides replace, drop duplicates of, and add fields.
        assert_eq!(
            login.fields_with(&[("many", "b"), ("password", "s3cret"), ("action", "deny")]),
            pairs(&[
                ("username", "mario"),
                ("password", "s3cret"),
                ("csrf", "tok&en"),
                ("remember", "yes"),
                ("level", "2"),
                ("notype", "plain"),
                ("spidLevel", "L2"),
                ("first", "Uno due"),
                ("many", "b"),
                ("notes", "line1\nline2"),
                ("outside", "o"),
                ("action", "deny"),
            ])
        );
    }

    #[test]
    fn weird_html_does_not_panic() {
        let base_tag = page(
            "http://a.example/x/y",
            r#"<base href="http://b.example/dir/"><form action="sub"><input name=a></form>"#,
        );
        assert_eq!(
            base_tag.forms()[0].action.as_str(),
            "http://b.example/dir/sub"
        );
        for body in [
            "",
            "<form",
            "<form action='http://[::1'><input name=x value=1>",
            "<form><form><input name=a></form><input name=b>",
            "<select name=s></select><form><select name=s></select><textarea name=t>",
            "\u{0}\u{feff}<<<>>>&&&;;<form method=DELETE action=//other.example/p>",
            "<table><form><tr><td><input name=x></td></tr></form></table>",
        ] {
            let p = page("http://a.example/", body);
            let _ = p.forms();
            let _ = p.is_html();
        }
        let p = page(
            "http://a.example/",
            "<form action='http://[::1'><input name=x>",
        );
        assert_eq!(p.forms()[0].action, p.url);
        let p = page(
            "http://a.example/",
            "<form method=DELETE action=//other.example/p></form>",
        );
        assert_eq!(p.forms()[0].method, "GET");
        assert_eq!(p.forms()[0].action.as_str(), "http://other.example/p");
    }

    #[tokio::test]
    async fn submit_get_and_post_forms() {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = seen.clone();
        let app = Router::new()
            .route(
                "/form",
                get(|| async {
                    html(
                        r#"<form id=g action="/search?old=1"><input name=q value="a b"></form>
                        <form id=p method=post action="/consent">
                          <input type=hidden name=tok value=t>
                          <button name=choice value=yes>Yes</button>
                          <button name=choice value=no>No</button>
                        </form>"#,
                    )
                }),
            )
            .route(
                "/search",
                get(|uri: axum::http::Uri| async move { uri.query().unwrap_or("").to_owned() }),
            )
            .route(
                "/consent",
                axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                    let log = log.clone();
                    async move {
                        let h = |n: header::HeaderName| {
                            headers
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-")
                                .to_owned()
                        };
                        log.lock().unwrap().extend([
                            h(header::ORIGIN),
                            h(header::REFERER),
                            h(header::USER_AGENT),
                            h(header::CONTENT_TYPE),
                        ]);
                        body
                    }
                }),
            );
        let base = serve(app).await;
        let mut ua = UserAgent::new().unwrap();
        let p = ua.get(&base.join("form").unwrap()).await.unwrap();

        let g = p.form_by_id("g").unwrap();
        let r = ua.submit(&p, &g, &[("lang", "it")]).await.unwrap();
        assert_eq!(r.body, "q=a+b&lang=it");

        let f = p.require_form_by_id("p").unwrap();
        assert_eq!(f.fields, pairs(&[("tok", "t")]));
        let r = ua.submit(&p, &f, &[("choice", "no")]).await.unwrap();
        assert_eq!(r.body, "tok=t&choice=no");
        let origin = base.origin().ascii_serialization();
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                origin,
                base.join("form").unwrap().to_string(),
                DEFAULT_USER_AGENT.to_owned(),
                FORM_URLENCODED.to_owned(),
            ]
        );
        let last = ua.trace().last().unwrap();
        assert_eq!(last.request_form, pairs(&[("tok", "t"), ("choice", "no")]));
    }

    #[tokio::test]
    async fn body_limit_is_enforced() {
        let app = Router::new()
            .route("/big", get(|| async { "x".repeat(10_000) }))
            .route("/exact", get(|| async { "y".repeat(1_000) }));
        let base = serve(app).await;
        let mut ua = UserAgent::new().unwrap().with_body_limit(1_000);
        let err = ua.get(&base.join("big").unwrap()).await.unwrap_err();
        assert_eq!(err, AgentError::BodyTooLarge { limit: 1_000 });
        assert_eq!(ua.trace().len(), 1);
        assert_eq!(ua.trace()[0].status, 200);
        let ok = ua.get(&base.join("exact").unwrap()).await.unwrap();
        assert_eq!(ok.body.len(), 1_000);

        // Chunked body without Content-Length: caught while streaming.
        let raw = serve_raw(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
              258\r\n"
                .as_slice()
                .iter()
                .copied()
                .chain(std::iter::repeat_n(b'z', 600))
                .chain(b"\r\n258\r\n".iter().copied())
                .chain(std::iter::repeat_n(b'z', 600))
                .chain(b"\r\n0\r\n\r\n".iter().copied())
                .collect::<Vec<u8>>()
                .leak(),
        )
        .await;
        let err = ua.get(&raw).await.unwrap_err();
        assert_eq!(err, AgentError::BodyTooLarge { limit: 1_000 });
        assert_eq!(ua.trace().last().unwrap().body_excerpt.len(), 1_000);
    }

    #[tokio::test]
    async fn saml_request_in_location_is_recorded() {
        let app = Router::new()
            .route(
                "/login",
                get(|| async {
                    redirect(
                        StatusCode::FOUND,
                        "/sso?SAMLRequest=abc&RelayState=r&SigAlg=x&Signature=s",
                    )
                }),
            )
            .route("/sso", get(|| async { html("<p>idp</p>") }));
        let base = serve(app).await;
        let mut ua = UserAgent::new().unwrap();
        ua.get(&base.join("login").unwrap()).await.unwrap();
        let t = ua.trace();
        assert_eq!(t.len(), 2);
        let expected = vec![SamlMessage {
            param: "SAMLRequest".into(),
            binding: Binding::Redirect,
            raw: "abc".into(),
            xml: None,
        }];
        assert_eq!(t[0].status, 302);
        assert_eq!(t[0].saml, expected);
        // The follow-up GET carries it in its own query too.
        assert_eq!(t[1].saml, expected);
    }

    #[test]
    fn a_decoded_message_is_reported_without_its_base64_and_an_undecoded_one_with_it() {
        let decoded = SamlMessage {
            param: "SAMLResponse".into(),
            binding: Binding::Post,
            raw: "PHNhbWxwOlJlc3BvbnNlLz4=".into(),
            xml: Some("<samlp:Response/>".into()),
        };
        let json = serde_json::to_value(&decoded).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"param": "SAMLResponse", "binding": "Post", "xml": "<samlp:Response/>"})
        );
        let back: SamlMessage = serde_json::from_value(json).unwrap();
        assert_eq!((back.raw.as_str(), back.xml), ("", decoded.xml));
        let opaque = SamlMessage {
            xml: None,
            ..decoded
        };
        let json = serde_json::to_value(&opaque).unwrap();
        assert_eq!(json["raw"], "PHNhbWxwOlJlc3BvbnNlLz4=");
        assert_eq!(serde_json::from_value::<SamlMessage>(json).unwrap(), opaque);
    }

    #[tokio::test]
    async fn spid_rule_header_is_captured() {
        let app = Router::new().route(
            "/err",
            get(|| async {
                (
                    StatusCode::BAD_REQUEST,
                    [("X-SPID-Rule", "SAML-AUTHNREQ-ISSUER-01")],
                    "bad issuer",
                )
            }),
        );
        let base = serve(app).await;
        let mut ua = UserAgent::new().unwrap();
        let p = ua.get(&base.join("err").unwrap()).await.unwrap();
        assert_eq!(p.status, 400);
        assert_eq!(p.spid_rule(), Some("SAML-AUTHNREQ-ISSUER-01"));
        assert_eq!(p.header("x-spid-rule"), Some("SAML-AUTHNREQ-ISSUER-01"));
        assert_eq!(p.header("not a header\n"), None);
        assert_eq!(
            ua.trace()[0].spid_rule.as_deref(),
            Some("SAML-AUTHNREQ-ISSUER-01")
        );
        assert_eq!(ua.trace()[0].body_excerpt, "bad issuer");
    }

    #[tokio::test]
    async fn hostile_responses_do_not_panic() {
        // Non-UTF-8 header value and body.
        let raw = serve_raw(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-SPID-Rule: r\xe8gle\r\n\
              Content-Length: 9\r\nConnection: close\r\n\r\n<p>\xff\xfe</p>"
                .as_slice(),
        )
        .await;
        let mut ua = UserAgent::new().unwrap();
        let p = ua.get(&raw).await.unwrap();
        assert_eq!(p.body, "<p>\u{fffd}\u{fffd}</p>");
        assert_eq!(p.spid_rule(), None);
        assert_eq!(ua.trace()[0].spid_rule.as_deref(), Some("r\u{fffd}gle"));

        // Redirect to an unsupported scheme.
        let raw = serve_raw(
            b"HTTP/1.1 302 Found\r\nLocation: ftp://x/\r\nContent-Length: 0\r\n\
              Connection: close\r\n\r\n"
                .as_slice(),
        )
        .await;
        let err = ua.get(&raw).await.unwrap_err();
        assert!(matches!(err, AgentError::BadLocation(_)), "{err:?}");

        // Connection refused and timeouts are plain errors.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            Url::parse(&format!("http://{}/", l.local_addr().unwrap())).unwrap()
        };
        assert!(matches!(ua.get(&dead).await, Err(AgentError::Http(_))));
        let https = Url::parse(&dead.as_str().replacen("http", "https", 1)).unwrap();
        assert!(matches!(ua.get(&https).await, Err(AgentError::Http(_))));
        let other = Url::parse("file:///etc/passwd").unwrap();
        assert!(matches!(ua.get(&other).await, Err(AgentError::Http(_))));
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_url = Url::parse(&format!("http://{}/", silent.local_addr().unwrap())).unwrap();
        let mut ua = ua.with_timeout(Duration::from_millis(200));
        let err = ua.get(&silent_url).await.unwrap_err();
        assert!(matches!(err, AgentError::Http(_)), "{err:?}");
        drop(silent);
    }

    #[test]
    fn excerpt_respects_char_boundaries() {
        assert_eq!(excerpt("abc", 10), "abc");
        assert_eq!(excerpt("àà", 3), "à");
        assert_eq!(excerpt("àà", 4), "àà");
        assert_eq!(excerpt("", 0), "");
    }

    #[test]
    fn referrer_policy() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            referrer(&u("https://u:p@a.example/p?q#f"), &u("https://a.example/x")).as_deref(),
            Some("https://a.example/p?q")
        );
        assert_eq!(
            referrer(&u("https://a.example/p?q"), &u("https://b.example/x")).as_deref(),
            Some("https://a.example/")
        );
        assert_eq!(
            referrer(&u("https://a.example/p"), &u("http://a.example/x")),
            None
        );
    }

    #[test]
    fn panicking_decoder_is_contained() {
        fn bad(_: &str, _: &str, _: Binding) -> Option<String> {
            panic!("decoder bug")
        }
        let mut ua = UserAgent::new().unwrap().with_decoder(bad);
        let m = ua.saml_message("SAMLRequest", "x", Binding::Redirect);
        assert_eq!(m.xml, None);
    }
}
