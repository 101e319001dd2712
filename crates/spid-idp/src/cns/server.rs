//! The card issuer as a service: mints cards, keeps their status, and serves the CRL
//! (`GET /crl/<ca>/<serial>.crl`, `GET /crl/<ca>.crl`) and the OCSP responder
//! (`POST /ocsp/<ca>`, `application/ocsp-request`, and RFC 6960 A.1's `GET /ocsp/<ca>/<base64>`)
//! on loopback through the bounded serve loop.
//!
//! Each card's CRL distribution point names the card, so a stale or failing CRL is one card's
//! edit and cases running side by side do not see each other's.

use super::ca::{CaId, Hierarchy};
use super::card::{mint, Card, CardHolder, CardPlan};
use super::status::{Channels, CrlAnswer, CrlMode, OcspAnswer, OcspMode, StatusDb};
use super::CnsError;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use spid_core::clock::{SharedClock, SystemClock};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How long a hanging OCSP responder holds a request (the client gives up first).
const HANG: Duration = Duration::from_secs(60);
/// Largest OCSP request read.
const MAX_OCSP_REQUEST: usize = 16 * 1024;
/// Most revocation fetches remembered (the oldest are forgotten first).
const MAX_FETCHES: usize = 10_000;

/// Which revocation source was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FetchSource {
    /// A CRL (`GET /crl/…`).
    Crl,
    /// The OCSP responder (`POST /ocsp/<ca>`).
    Ocsp,
}

/// One revocation fetch the issuer answered: what a relying service asked about a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fetch {
    /// The source.
    pub source: FetchSource,
    /// The CA the request named.
    pub ca: CaId,
    /// The card asked about (None: a CA-wide CRL, or an OCSP request naming no serial we read).
    pub serial: Option<u64>,
    /// Method and path as requested.
    pub request: String,
    /// The HTTP status answered (0: the responder held the request and never answered).
    pub status: u16,
}

/// The card issuer: the TEST hierarchy, the cards it minted and their status.
#[derive(Clone, Debug)]
pub struct CardIssuer(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    hierarchy: Hierarchy,
    base_url: String,
    clock: SharedClock,
    db: Mutex<StatusDb>,
    next_serial: AtomicU64,
    fetches: Mutex<std::collections::VecDeque<Fetch>>,
}

impl CardIssuer {
    /// An issuer whose cards name revocation sources under `base_url` (where
    /// [`CardIssuer::serve`] will listen), reading time from `clock`.
    pub fn new(base_url: &str, clock: SharedClock) -> Result<CardIssuer, CnsError> {
        Ok(CardIssuer(Arc::new(Inner {
            hierarchy: Hierarchy::new()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            clock,
            db: Mutex::new(StatusDb::default()),
            next_serial: AtomicU64::new(0x1000),
            fetches: Mutex::new(std::collections::VecDeque::new()),
        })))
    }

    /// Binds `127.0.0.1:0`, starts serving there on a tokio task, and returns the issuer.
    pub async fn start() -> Result<CardIssuer, std::io::Error> {
        CardIssuer::start_with_clock(Arc::new(SystemClock)).await
    }

    /// [`CardIssuer::start`] reading time from `clock` (cards, CRLs and OCSP answers are dated
    /// by it).
    pub async fn start_with_clock(clock: SharedClock) -> Result<CardIssuer, std::io::Error> {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        let issuer =
            CardIssuer::new(&format!("http://{addr}"), clock).map_err(std::io::Error::other)?;
        tokio::spawn(issuer.clone().serve(l));
        Ok(issuer)
    }

    /// The TEST hierarchy.
    pub fn hierarchy(&self) -> &Hierarchy {
        &self.0.hierarchy
    }

    /// Where the CRL and OCSP endpoints are.
    pub fn base_url(&self) -> &str {
        &self.0.base_url
    }

    fn db(&self) -> MutexGuard<'_, StatusDb> {
        self.0.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Mints `holder`'s card per `plan` and records its status.
    pub fn issue(&self, holder: &CardHolder, plan: &CardPlan) -> Result<Card, CnsError> {
        let serial = self.0.next_serial.fetch_add(1, Ordering::Relaxed);
        let now = self.0.clock.now();
        let (card, status) = mint(
            &self.0.hierarchy,
            holder,
            plan,
            serial,
            &self.0.base_url,
            now,
        )?;
        self.db().cards.insert((card.ca, serial), status);
        Ok(card)
    }

    /// Revokes `card` (now) on `on`.
    pub fn revoke(&self, card: &Card, on: Channels) {
        let now = self.0.clock.now();
        if let Some(s) = self.db().cards.get_mut(&(card.ca, card.serial)) {
            s.revoked = Some((now, on));
        }
    }

    /// Takes `card` off the CRL and makes the OCSP responder say good again.
    pub fn unrevoke(&self, card: &Card) {
        if let Some(s) = self.db().cards.get_mut(&(card.ca, card.serial)) {
            s.revoked = None;
        }
    }

    /// Sets how `card`'s CRL distribution point answers.
    pub fn set_crl_mode(&self, card: &Card, mode: CrlMode) {
        if let Some(s) = self.db().cards.get_mut(&(card.ca, card.serial)) {
            s.crl = mode;
        }
    }

    /// Sets how the OCSP responder answers for `card`.
    pub fn set_ocsp_mode(&self, card: &Card, mode: OcspMode) {
        if let Some(s) = self.db().cards.get_mut(&(card.ca, card.serial)) {
            s.ocsp = mode;
        }
    }

    /// The CRL of `ca` as served at card `serial`'s distribution point (`None`: the CA-wide one).
    pub fn crl(&self, ca: CaId, serial: Option<u64>) -> Result<CrlAnswer, CnsError> {
        let now = self.0.clock.now();
        self.db().crl(&self.0.hierarchy, ca, serial, now)
    }

    /// The root's CRL, dated by the issuer's clock ([`Hierarchy::root_crl`]).
    pub fn root_crl(&self) -> Result<Vec<u8>, CnsError> {
        self.0.hierarchy.root_crl(self.0.clock.now())
    }

    /// `ca`'s OCSP responder's answer to the DER OCSPRequest `req`.
    pub fn ocsp(&self, ca: CaId, req: &[u8]) -> Result<OcspAnswer, CnsError> {
        let now = self.0.clock.now();
        self.db().ocsp(&self.0.hierarchy, ca, req, now)
    }

    fn record(&self, f: Fetch) {
        let mut log = self.0.fetches.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() >= MAX_FETCHES {
            log.pop_front();
        }
        log.push_back(f);
    }

    /// The revocation fetches about `card` the issuer answered so far, oldest first (a
    /// hanging OCSP request is recorded when it arrives, with status 0).
    pub fn fetches_for(&self, card: &Card) -> Vec<Fetch> {
        self.0
            .fetches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|f| f.ca == card.ca && f.serial == Some(card.serial))
            .cloned()
            .collect()
    }

    /// The CRL and OCSP routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/crl/{file}", get(crl_ca))
            .route("/crl/{ca}/{file}", get(crl_card))
            .route("/ocsp/{ca}", post(ocsp))
            .route("/ocsp/{ca}/{*request}", get(ocsp_get))
            .layer(axum::extract::DefaultBodyLimit::max(MAX_OCSP_REQUEST))
            .with_state(self.clone())
    }

    /// Serves [`CardIssuer::router`] on `listener` within the default limits.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let router = self.router();
        spid_net::serve(listener, router, spid_net::ServeLimits::default()).await
    }
}

fn crl_response(a: Result<CrlAnswer, CnsError>) -> Response {
    match a {
        Ok(CrlAnswer::Der(d)) => {
            ([(header::CONTENT_TYPE, "application/pkix-crl")], d).into_response()
        }
        Ok(CrlAnswer::HttpError(s)) => StatusCode::from_u16(s)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn crl_ca(State(i): State<CardIssuer>, Path(file): Path<String>) -> Response {
    match file.strip_suffix(".crl").and_then(CaId::from_slug) {
        Some(ca) => {
            let r = crl_response(i.crl(ca, None));
            i.record(Fetch {
                source: FetchSource::Crl,
                ca,
                serial: None,
                request: format!("GET /crl/{file}"),
                status: r.status().as_u16(),
            });
            r
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn crl_card(
    State(i): State<CardIssuer>,
    Path((ca, file)): Path<(String, String)>,
) -> Response {
    let serial = file
        .strip_suffix(".crl")
        .and_then(|s| s.parse::<u64>().ok());
    match (CaId::from_slug(&ca), serial) {
        (Some(id), Some(s)) => {
            let r = crl_response(i.crl(id, Some(s)));
            i.record(Fetch {
                source: FetchSource::Crl,
                ca: id,
                serial: Some(s),
                request: format!("GET /crl/{ca}/{file}"),
                status: r.status().as_u16(),
            });
            r
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn ocsp(State(i): State<CardIssuer>, Path(ca): Path<String>, body: Bytes) -> Response {
    let request = format!("POST /ocsp/{ca}");
    answer_ocsp(&i, &ca, &body, request).await
}

/// RFC 6960 A.1's GET form: `/ocsp/<ca>/<url-encoded base64 of the DER OCSPRequest>` (what
/// nginx sends).
async fn ocsp_get(
    State(i): State<CardIssuer>,
    Path((ca, encoded)): Path<(String, String)>,
) -> Response {
    use base64::Engine;
    let Ok(der) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if der.len() > MAX_OCSP_REQUEST {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    let request = format!("GET /ocsp/{ca}/{encoded}");
    answer_ocsp(&i, &ca, &der, request).await
}

async fn answer_ocsp(i: &CardIssuer, ca: &str, body: &[u8], request: String) -> Response {
    let Some(id) = CaId::from_slug(ca) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let fetch = |status: u16| Fetch {
        source: FetchSource::Ocsp,
        ca: id,
        serial: super::status::requested_serial(body),
        request: request.clone(),
        status,
    };
    let answer = i.ocsp(id, body);
    // A held request is recorded as it arrives: the service gives up long before the answer.
    let hang = matches!(answer, Ok(OcspAnswer::Hang));
    if hang {
        i.record(fetch(0));
    }
    let r = ocsp_answer(answer).await;
    if !hang {
        i.record(fetch(r.status().as_u16()));
    }
    r
}

async fn ocsp_answer(answer: Result<OcspAnswer, CnsError>) -> Response {
    match answer {
        Ok(OcspAnswer::Der(d)) => {
            ([(header::CONTENT_TYPE, "application/ocsp-response")], d).into_response()
        }
        Ok(OcspAnswer::HttpError(s)) => StatusCode::from_u16(s)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Ok(OcspAnswer::Hang) => {
            tokio::time::sleep(HANG).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
