//! Time, injectable: every crate reads the current instant through [`Clock`].

use chrono::{DateTime, Duration, Utc};
use std::sync::{Arc, Mutex};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        now()
    }
}

/// The wall clock, for the edges only: test fixtures, certificate dates, the instant a stopped
/// clock starts at, a bench's timestamps. Protocol code reads an injected [`Clock`]; clippy
/// refuses `Utc::now` / `SystemTime::now` everywhere else (`clippy.toml`).
#[allow(clippy::disallowed_methods)]
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// A clock stopped at a settable instant.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    /// A clock stopped at `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        FixedClock(Mutex::new(at))
    }
    /// Moves the clock to `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *g += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Another clock shifted by a settable offset (e.g. an IdP whose clock runs ahead).
#[derive(Debug)]
pub struct OffsetClock {
    inner: SharedClock,
    offset: Mutex<Duration>,
}

impl OffsetClock {
    /// `inner` shifted by `offset`.
    pub fn new(inner: SharedClock, offset: Duration) -> Self {
        OffsetClock {
            inner,
            offset: Mutex::new(offset),
        }
    }
    /// Changes the offset.
    pub fn set_offset(&self, offset: Duration) {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner()) = offset;
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        self.inner.now() + *self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Formats an instant the SAML way: UTC, millisecond precision, `Z`.
pub fn saml_instant(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parses an `xs:dateTime` in UTC as SPID requires (`Z` suffix; fractional seconds of any
/// precision). Offsets other than `Z` and date-only values are refused.
pub fn parse_saml_instant(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let body = s.strip_suffix('Z')?;
    let naive = chrono::NaiveDateTime::parse_from_str(body, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    Some(naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants() {
        let t = parse_saml_instant("2026-01-02T03:04:05.123456Z").unwrap();
        assert_eq!(saml_instant(t), "2026-01-02T03:04:05.123Z");
        assert!(parse_saml_instant("2026-01-02T03:04:05Z").is_some());
        assert!(parse_saml_instant("2018-09-04").is_none());
        assert!(parse_saml_instant("2018-09-06 16:00").is_none());
        assert!(parse_saml_instant("2026-01-02T03:04:05+01:00").is_none());
        assert!(parse_saml_instant("").is_none());
    }

    #[test]
    fn fixed_and_offset() {
        let t0 = parse_saml_instant("2026-01-01T00:00:00Z").unwrap();
        let fixed = Arc::new(FixedClock::new(t0));
        fixed.advance(Duration::seconds(5));
        assert_eq!(fixed.now(), t0 + Duration::seconds(5));
        let off = OffsetClock::new(fixed.clone(), Duration::seconds(-10));
        assert_eq!(off.now(), t0 - Duration::seconds(5));
    }
}
