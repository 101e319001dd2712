//! In-memory, bounded state: outstanding requests, browser sessions, and the Assertion replay
//! cache.
//!
//! Outstanding requests are what anyone can create (a GET on `/login`), so they live in a
//! [`PendingMap`] apart from the sessions: expired requests go first, and when
//! [`MAX_PENDING`] live requests are held a new `/login` is refused with HTTP 503
//! (`server.pending.full`) rather than evicting the request of a user who is still at the IdP.
//! A browser session at its own bound ([`MAX_PENDING_PER_SESSION`]) abandons its own oldest
//! request, never another session's. Sessions are created only by an answered request (its
//! `InResponseTo` consumed) or a login, so a flood of `/login` leaves them alone.

use crate::validator::Identity;
use crate::validator::{PendingRequest, Rejection, ReplayCache, RequestLookup};
use chrono::{DateTime, Duration, Utc};
use spid_core::pending::{Full, PendingMap};
use spid_core::Rule;
use std::collections::HashMap;
use std::sync::Mutex;

/// Sessions kept at most; the least recently used go first.
pub const MAX_SESSIONS: usize = 10_000;
/// Outstanding requests kept at most (all sessions).
pub const MAX_PENDING: usize = 10_000;
/// Outstanding requests kept per session.
pub const MAX_PENDING_PER_SESSION: usize = 16;
/// Answered request IDs remembered at most (for `response.in-response-to.replayed`).
pub const MAX_CONSUMED: usize = 100_000;

#[derive(Debug, Default)]
struct Session {
    identity: Option<Identity>,
    touched: Option<DateTime<Utc>>,
    /// The LogoutRequest ID sent and the IdP it went to.
    pending_logout: Option<(String, String)>,
}

/// All SP state.
#[derive(Debug)]
pub struct Store {
    sessions: Mutex<HashMap<String, Session>>,
    /// Outstanding requests by ID: (browser session, request), owned by the session.
    pending: Mutex<PendingMap<(String, PendingRequest)>>,
    /// Answered request IDs and the session that holds the answer (moved with the session
    /// when a login renews its id).
    consumed: Mutex<PendingMap<String>>,
    assertions: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            sessions: Mutex::default(),
            pending: Mutex::new(PendingMap::new(MAX_PENDING, MAX_PENDING_PER_SESSION)),
            consumed: Mutex::new(PendingMap::new(MAX_CONSUMED, MAX_CONSUMED)),
            assertions: Mutex::default(),
        }
    }
}

impl Store {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a request issued to `session`, valid until `until`; refused when
    /// [`MAX_PENDING`] live requests are held (none is evicted for it).
    pub fn add_pending(
        &self,
        session: &str,
        req: PendingRequest,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<(), Full> {
        let id = req.id.clone();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert_replacing_own_oldest(id, (session.to_string(), req), session, until, now)
    }

    /// Outstanding requests held (expired ones not yet dropped included).
    pub fn pending_len(&self) -> usize {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// After a login renewed the session id (`new`), its answered request `id` follows it, so
    /// that the same browser replaying the answer is told it was replayed.
    pub fn move_consumed(&self, id: &str, new: &str, now: DateTime<Utc>) {
        if let Some(s) = self
            .consumed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(id, now)
        {
            *s = new.to_string();
        }
    }

    /// A lookup over `session`'s requests, as the validator wants it.
    pub fn lookup<'a>(&'a self, session: Option<&'a str>, now: DateTime<Utc>) -> SessionLookup<'a> {
        SessionLookup {
            store: self,
            session,
            now,
            taken: None,
        }
    }

    /// Stores the identity of a completed login under a new session id, dropping the old one
    /// (a fresh id after login defeats session fixation).
    pub fn login(&self, old: Option<&str>, new: &str, id: Identity, now: DateTime<Utc>) {
        let mut all = self.sessions();
        let mut s = old.and_then(|o| all.remove(o)).unwrap_or_default();
        if all.len() >= MAX_SESSIONS {
            // Only logins make sessions: the least recently used one goes.
            if let Some(oldest) = all
                .iter()
                .min_by_key(|(_, s)| s.touched)
                .map(|(k, _)| k.clone())
            {
                all.remove(&oldest);
            }
        }
        s.identity = Some(id);
        s.touched = Some(now);
        all.insert(new.to_string(), s);
    }

    /// The identity logged in under `session`, if any.
    pub fn identity(&self, session: &str) -> Option<Identity> {
        self.sessions()
            .get(session)
            .and_then(|s| s.identity.clone())
    }

    /// Ends the login of `session`.
    pub fn logout(&self, session: &str) -> Option<Identity> {
        self.sessions()
            .get_mut(session)
            .and_then(|s| s.identity.take())
    }

    /// Records the LogoutRequest `id` sent to `idp` for `session`.
    pub fn start_logout(&self, session: &str, id: &str, idp: &str) {
        if let Some(s) = self.sessions().get_mut(session) {
            s.pending_logout = Some((id.to_string(), idp.to_string()));
        }
    }

    /// The pending logout (request ID, IdP) of `session`.
    pub fn pending_logout(&self, session: &str) -> Option<(String, String)> {
        self.sessions()
            .get(session)
            .and_then(|s| s.pending_logout.clone())
    }

    /// Completes the logout of `session`: the identity and the pending logout are gone.
    pub fn finish_logout(&self, session: &str) {
        if let Some(s) = self.sessions().get_mut(session) {
            s.identity = None;
            s.pending_logout = None;
        }
    }
}

/// [`RequestLookup`] bound to one browser session.
pub struct SessionLookup<'a> {
    store: &'a Store,
    session: Option<&'a str>,
    now: DateTime<Utc>,
    taken: Option<String>,
}

impl SessionLookup<'_> {
    /// The request ID this lookup consumed, if any.
    pub fn taken(&self) -> Option<&str> {
        self.taken.as_deref()
    }
}

impl RequestLookup for SessionLookup<'_> {
    fn take(&mut self, id: &str) -> Result<PendingRequest, Rejection> {
        let unknown = || {
            Rejection::new(
                Rule::ResponseInResponseToUnknown,
                format!("no request {id} in this session"),
            )
        };
        let session = self.session.ok_or_else(unknown)?;
        let mut consumed = self
            .store
            .consumed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if consumed.get(id, self.now).is_some_and(|s| s == session) {
            return Err(Rejection::new(
                Rule::ResponseInResponseToReplayed,
                format!("request {id} was already answered"),
            ));
        }
        let mut pending = self.store.pending.lock().unwrap_or_else(|e| e.into_inner());
        // Another session's request stays pending for its own browser.
        if pending.get(id, self.now).is_some_and(|(s, _)| s != session) {
            return Err(unknown());
        }
        let (_, req) = pending.take(id, self.now).ok_or_else(unknown)?;
        drop(pending);
        let until = self.now + Duration::hours(1);
        if let Err(full) =
            consumed.insert(id.to_string(), session.to_string(), None, until, self.now)
        {
            // The Assertion replay cache still refuses the same Assertion twice.
            tracing::warn!(%full, "answered request {id} not remembered");
        }
        self.taken = Some(id.to_string());
        Ok(req)
    }
}

impl ReplayCache for Store {
    fn insert(&self, id: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let mut a = self.assertions.lock().unwrap_or_else(|e| e.into_inner());
        if a.len() > 100_000 {
            a.retain(|_, u| *u > now);
        }
        if a.contains_key(id) {
            return false;
        }
        a.insert(id.to_string(), until);
        true
    }
}
