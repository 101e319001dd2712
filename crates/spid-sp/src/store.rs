//! In-memory, bounded state: browser sessions with their outstanding requests, and the
//! Assertion replay cache.

use crate::validator::Identity;
use crate::validator::{PendingRequest, Rejection, ReplayCache, RequestLookup};
use chrono::{DateTime, Duration, Utc};
use spid_core::Rule;
use std::collections::HashMap;
use std::sync::Mutex;

/// Sessions kept at most; the least recently used go first.
pub const MAX_SESSIONS: usize = 10_000;
/// Outstanding requests kept per session.
pub const MAX_PENDING_PER_SESSION: usize = 16;

#[derive(Debug, Default)]
struct Session {
    pending: HashMap<String, (PendingRequest, DateTime<Utc>)>,
    consumed: HashMap<String, DateTime<Utc>>,
    identity: Option<Identity>,
    touched: Option<DateTime<Utc>>,
    /// The LogoutRequest ID sent and the IdP it went to.
    pending_logout: Option<(String, String)>,
}

/// All SP state.
#[derive(Debug, Default)]
pub struct Store {
    sessions: Mutex<HashMap<String, Session>>,
    assertions: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl Store {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a request issued to `session` (created if new), valid until `until`.
    pub fn add_pending(
        &self,
        session: &str,
        req: PendingRequest,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) {
        let mut all = self.sessions();
        if !all.contains_key(session) && all.len() >= MAX_SESSIONS {
            all.retain(|_, s| s.pending.values().any(|(_, u)| *u > now) || s.identity.is_some());
            if all.len() >= MAX_SESSIONS {
                if let Some(oldest) = all
                    .iter()
                    .min_by_key(|(_, s)| s.touched)
                    .map(|(k, _)| k.clone())
                {
                    all.remove(&oldest);
                }
            }
        }
        let s = all.entry(session.to_string()).or_default();
        s.pending.retain(|_, (_, u)| *u > now);
        s.consumed.retain(|_, u| *u > now);
        if s.pending.len() >= MAX_PENDING_PER_SESSION {
            if let Some(oldest) = s
                .pending
                .iter()
                .min_by_key(|(_, (r, _))| r.issue_instant)
                .map(|(k, _)| k.clone())
            {
                s.pending.remove(&oldest);
            }
        }
        s.pending.insert(req.id.clone(), (req, until));
        s.touched = Some(now);
    }

    /// A lookup over `session`'s requests, as the validator wants it.
    pub fn lookup<'a>(&'a self, session: Option<&'a str>, now: DateTime<Utc>) -> SessionLookup<'a> {
        SessionLookup {
            store: self,
            session,
            now,
        }
    }

    /// Stores the identity of a completed login under a new session id, dropping the old one
    /// (a fresh id after login defeats session fixation).
    pub fn login(&self, old: Option<&str>, new: &str, id: Identity, now: DateTime<Utc>) {
        let mut all = self.sessions();
        let mut s = old.and_then(|o| all.remove(o)).unwrap_or_default();
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
        let mut all = self.store.sessions();
        let s = all.get_mut(session).ok_or_else(unknown)?;
        if s.consumed.contains_key(id) {
            return Err(Rejection::new(
                Rule::ResponseInResponseToReplayed,
                format!("request {id} was already answered"),
            ));
        }
        let (req, until) = s.pending.remove(id).ok_or_else(unknown)?;
        s.consumed
            .insert(id.to_string(), until.max(self.now) + Duration::hours(1));
        if until <= self.now {
            return Err(Rejection::new(
                Rule::ResponseInResponseToUnknown,
                format!("request {id} expired"),
            ));
        }
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
