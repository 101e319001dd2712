//! Bounded stores of pending work (logins in flight, request IDs already answered) that a flood
//! of anonymous traffic cannot flush.
//!
//! # Design
//!
//! Every server role keeps a little state between two legs of a login: the SP the AuthnRequest
//! it sent, the RP its `state`/nonce/PKCE verifier, the IdP and the OP the transaction between
//! the request and the consent. Anyone can open such state (a GET on the SP's `/login` needs
//! no credential), so it must be bounded; the question is what happens at the bound. Dropping
//! the least recently used entry, or clearing the map, lets a flood evict the real user who is
//! still typing a password at the IdP: her honest answer then comes back to a server that
//! forgot her. A [`PendingMap`] therefore:
//!
//! - drops **expired** entries first (each entry has a deadline; an ordered index by deadline
//!   makes that `O(log n)` per expired entry, never a scan of the map);
//! - otherwise **refuses new work** ([`Full`]) instead of evicting live work: the caller
//!   answers HTTP 503 with a readable page and the stable rule code `server.pending.full`.
//!   A flood can delay new logins until its entries expire; it can never cancel a login that
//!   was already in flight;
//! - bounds each **owner** (an SP entityID at the IdP, an RP client_id at the OP, a browser
//!   session at the SP) separately, so one client cannot take the whole map.
//!
//! The alternative — carrying the pending state in a signed cookie so the server keeps nothing
//! for anonymous callers — was not taken: the SP and the RP must remember which requests were
//! already answered anyway (replay of `InResponseTo` and `state`), the harness's concurrent
//! cases and external tools expect the server-side session model, and a refusal at a known
//! bound is easier to test deterministically than cookie size limits.
//!
//! Time comes from the caller (the server's injectable clock): nothing here reads the system
//! clock.

use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Why [`PendingMap::insert`] refused an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The map holds its global bound of live entries.
    Global,
    /// The owner holds its bound of live entries.
    Owner,
}

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Full::Global => "too many logins in progress; try again in a few minutes",
            Full::Owner => "too many logins in progress for this client; try again later",
        })
    }
}

#[derive(Debug)]
struct Slot<V> {
    value: V,
    expires: DateTime<Utc>,
    seq: u64,
    owner: Option<String>,
}

/// A map of live entries with deadlines, bounded globally and per owner; see the
/// [module docs](self).
#[derive(Debug)]
pub struct PendingMap<V> {
    cap: usize,
    per_owner: usize,
    entries: HashMap<String, Slot<V>>,
    by_deadline: BTreeMap<(DateTime<Utc>, u64), String>,
    owners: HashMap<String, Owner>,
    seq: u64,
}

/// An owner's live count and its keys in insertion order (with stale keys, skipped lazily and
/// compacted when they outnumber the live ones).
#[derive(Debug, Default)]
struct Owner {
    live: usize,
    order: VecDeque<(u64, String)>,
}

impl<V> PendingMap<V> {
    /// A map holding at most `cap` live entries, and at most `per_owner` of one owner.
    pub fn new(cap: usize, per_owner: usize) -> Self {
        PendingMap {
            cap,
            per_owner,
            entries: HashMap::new(),
            by_deadline: BTreeMap::new(),
            owners: HashMap::new(),
            seq: 0,
        }
    }

    /// Entries held (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The global bound.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Drops every entry whose deadline is not after `now`.
    pub fn purge(&mut self, now: DateTime<Utc>) {
        while let Some(entry) = self.by_deadline.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.drop_slot(&key);
        }
    }

    fn drop_slot(&mut self, key: &str) -> Option<Slot<V>> {
        let slot = self.entries.remove(key)?;
        self.by_deadline.remove(&(slot.expires, slot.seq));
        if let Some(o) = &slot.owner {
            if let Some(n) = self.owners.get_mut(o) {
                n.live -= 1;
                if n.live == 0 {
                    self.owners.remove(o);
                }
            }
        }
        Some(slot)
    }

    /// Drops the oldest live entry of `owner` (its own, never another's), if any.
    fn drop_oldest_of(&mut self, owner: &str) {
        loop {
            let Some((seq, key)) = self.owners.get_mut(owner).and_then(|o| o.order.pop_front())
            else {
                return;
            };
            if self.entries.get(&key).is_some_and(|s| s.seq == seq) {
                self.drop_slot(&key);
                return;
            }
        }
    }

    /// Inserts `key` (replacing an entry of that key) until `expires`, for `owner`. Expired
    /// entries go first; a live entry is never evicted: when the global or the owner's bound
    /// is reached the insert is refused.
    pub fn insert(
        &mut self,
        key: String,
        value: V,
        owner: Option<&str>,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), Full> {
        self.purge(now);
        self.drop_slot(&key);
        if self.entries.len() >= self.cap {
            return Err(Full::Global);
        }
        self.seq += 1;
        if let Some(o) = owner {
            let n = self.owners.entry(o.to_string()).or_default();
            if n.live >= self.per_owner {
                if n.live == 0 {
                    self.owners.remove(o);
                }
                return Err(Full::Owner);
            }
            n.live += 1;
            n.order.push_back((self.seq, key.clone()));
            if n.order.len() > 2 * n.live + 16 {
                let entries = &self.entries;
                n.order
                    .retain(|(seq, k)| entries.get(k).is_some_and(|s| s.seq == *seq));
                // The key being inserted is not in `entries` yet.
                n.order.push_back((self.seq, key.clone()));
            }
        }
        self.by_deadline.insert((expires, self.seq), key.clone());
        self.entries.insert(
            key,
            Slot {
                value,
                expires,
                seq: self.seq,
                owner: owner.map(str::to_string),
            },
        );
        Ok(())
    }

    /// [`Self::insert`], except that an owner at its bound makes room by dropping its own
    /// oldest entry (a browser that starts a 17th login abandons its first), never another
    /// owner's. The global bound still refuses.
    pub fn insert_replacing_own_oldest(
        &mut self,
        key: String,
        value: V,
        owner: &str,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), Full> {
        self.purge(now);
        self.drop_slot(&key);
        if self.owned_by(owner) >= self.per_owner {
            self.drop_oldest_of(owner);
        }
        self.insert(key, value, Some(owner), expires, now)
    }

    /// The live entry `key`.
    pub fn get(&self, key: &str, now: DateTime<Utc>) -> Option<&V> {
        self.entries
            .get(key)
            .filter(|s| s.expires > now)
            .map(|s| &s.value)
    }

    /// The live entry `key`, to change in place (its deadline and owner stay).
    pub fn get_mut(&mut self, key: &str, now: DateTime<Utc>) -> Option<&mut V> {
        self.entries
            .get_mut(key)
            .filter(|s| s.expires > now)
            .map(|s| &mut s.value)
    }

    /// True when `key` is held and live.
    pub fn contains(&self, key: &str, now: DateTime<Utc>) -> bool {
        self.get(key, now).is_some()
    }

    /// Removes `key`, live or expired, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.drop_slot(key).map(|s| s.value)
    }

    /// Removes `key` and returns its value if it was live.
    pub fn take(&mut self, key: &str, now: DateTime<Utc>) -> Option<V> {
        self.drop_slot(key)
            .filter(|s| s.expires > now)
            .map(|s| s.value)
    }

    /// Live entries held for `owner`.
    pub fn owned_by(&self, owner: &str) -> usize {
        self.owners.get(owner).map_or(0, |o| o.live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn full_refuses_and_keeps_live_entries() {
        let now = t0();
        let mut m = PendingMap::new(3, 10);
        for k in ["a", "b", "c"] {
            m.insert(k.into(), 1, None, now + Duration::minutes(5), now)
                .unwrap();
        }
        assert_eq!(
            m.insert("d".into(), 1, None, now + Duration::minutes(5), now),
            Err(Full::Global)
        );
        assert!(m.contains("a", now) && m.contains("b", now) && m.contains("c", now));
        assert!(!m.contains("d", now));
    }

    #[test]
    fn expired_entries_go_first() {
        let now = t0();
        let mut m = PendingMap::new(2, 10);
        m.insert("old".into(), 1, None, now + Duration::minutes(1), now)
            .unwrap();
        m.insert("live".into(), 2, None, now + Duration::minutes(10), now)
            .unwrap();
        let later = now + Duration::minutes(2);
        assert!(!m.contains("old", later));
        m.insert("new".into(), 3, None, later + Duration::minutes(1), later)
            .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m.get("live", later), Some(&2));
        assert_eq!(m.take("live", later), Some(2));
        assert_eq!(m.take("live", later), None);
    }

    #[test]
    fn owners_are_bounded_apart() {
        let now = t0();
        let until = now + Duration::minutes(5);
        let mut m = PendingMap::new(10, 2);
        m.insert("a1".into(), (), Some("a"), until, now).unwrap();
        m.insert("a2".into(), (), Some("a"), until, now).unwrap();
        assert_eq!(
            m.insert("a3".into(), (), Some("a"), until, now),
            Err(Full::Owner)
        );
        m.insert("b1".into(), (), Some("b"), until, now).unwrap();
        m.remove("a1");
        assert_eq!(m.owned_by("a"), 1);
        m.insert("a3".into(), (), Some("a"), until, now).unwrap();
        // Replacing a key keeps the owner's count right.
        m.insert("a3".into(), (), Some("a"), until, now).unwrap();
        assert_eq!(m.owned_by("a"), 2);
        m.purge(until);
        assert!(m.is_empty());
        assert_eq!(m.owned_by("a"), 0);
    }

    #[test]
    fn an_owner_replaces_only_its_own_oldest() {
        let now = t0();
        let until = now + Duration::minutes(5);
        let mut m = PendingMap::new(100, 3);
        m.insert("b1".into(), (), Some("b"), until, now).unwrap();
        for i in 0..50 {
            m.insert_replacing_own_oldest(format!("a{i}"), (), "a", until, now)
                .unwrap();
            if i % 7 == 3 && i < 40 {
                m.remove(&format!("a{i}"));
            }
        }
        assert_eq!(m.owned_by("a"), 3);
        assert!(m.contains("a49", now) && m.contains("a48", now) && m.contains("a47", now));
        assert!(m.contains("b1", now));
        assert_eq!(m.len(), 4);
        assert!(m.owners["a"].order.len() <= 2 * 3 + 17);
    }
}
