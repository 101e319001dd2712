//! SPID authentication levels and the one decision on whether an obtained level is enough.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A SPID authentication level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SpidLevel {
    /// Password only.
    L1,
    /// Password and a second factor (OTP): the minimum most public services accept.
    L2,
    /// Certificate-based credential on a secure device.
    L3,
}

impl SpidLevel {
    /// Every level, lowest first.
    pub const ALL: [SpidLevel; 3] = [SpidLevel::L1, SpidLevel::L2, SpidLevel::L3];

    /// The AuthnContextClassRef URI (also the OIDC `acr` value).
    pub fn uri(self) -> &'static str {
        match self {
            SpidLevel::L1 => "https://www.spid.gov.it/SpidL1",
            SpidLevel::L2 => "https://www.spid.gov.it/SpidL2",
            SpidLevel::L3 => "https://www.spid.gov.it/SpidL3",
        }
    }

    /// 1, 2 or 3.
    pub fn number(self) -> u8 {
        self as u8 + 1
    }

    /// Parses one of the three SPID URIs exactly; the legacy `urn:oasis:…:ac:classes:SpidLx`
    /// form is not a SPID level.
    pub fn from_uri(s: &str) -> Option<SpidLevel> {
        SpidLevel::ALL.into_iter().find(|l| l.uri() == s)
    }

    /// Parses `1`, `2`, `3`, `L1`…, or a URI.
    pub fn parse(s: &str) -> Option<SpidLevel> {
        match s.trim().trim_start_matches(['L', 'l']) {
            "1" => Some(SpidLevel::L1),
            "2" => Some(SpidLevel::L2),
            "3" => Some(SpidLevel::L3),
            _ => SpidLevel::from_uri(s.trim()),
        }
    }
}

impl fmt::Display for SpidLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// The `Comparison` attribute of `RequestedAuthnContext`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Comparison {
    /// Exactly the requested level.
    Exact,
    /// The requested level or higher.
    Minimum,
    /// Strictly higher than the requested level.
    Better,
    /// The requested level or lower.
    Maximum,
}

impl Comparison {
    /// Every comparison.
    pub const ALL: [Comparison; 4] = [
        Comparison::Exact,
        Comparison::Minimum,
        Comparison::Better,
        Comparison::Maximum,
    ];

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::Exact => "exact",
            Comparison::Minimum => "minimum",
            Comparison::Better => "better",
            Comparison::Maximum => "maximum",
        }
    }

    /// Parses the attribute value.
    pub fn parse(s: &str) -> Option<Comparison> {
        Comparison::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Whether `obtained` satisfies a request for `requested` under `comparison`, in the SPID
/// reading: an IdP may always authenticate at a higher level than asked (SPID rules,
/// "livello superiore"), so a higher level satisfies every comparison; an equal level satisfies
/// all but `better`; a lower level satisfies only `maximum`.
pub fn satisfies(requested: SpidLevel, comparison: Comparison, obtained: SpidLevel) -> bool {
    use std::cmp::Ordering::*;
    match obtained.cmp(&requested) {
        Greater => true,
        Equal => comparison != Comparison::Better,
        Less => comparison == Comparison::Maximum,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Comparison::*;
    use SpidLevel::*;

    #[test]
    fn all_36_combinations() {
        // (requested, comparison, obtained) -> expected, written out so the table is the spec.
        let table = [
            (L1, Exact, L1, true),
            (L1, Exact, L2, true),
            (L1, Exact, L3, true),
            (L1, Minimum, L1, true),
            (L1, Minimum, L2, true),
            (L1, Minimum, L3, true),
            (L1, Better, L1, false),
            (L1, Better, L2, true),
            (L1, Better, L3, true),
            (L1, Maximum, L1, true),
            (L1, Maximum, L2, true),
            (L1, Maximum, L3, true),
            (L2, Exact, L1, false),
            (L2, Exact, L2, true),
            (L2, Exact, L3, true),
            (L2, Minimum, L1, false),
            (L2, Minimum, L2, true),
            (L2, Minimum, L3, true),
            (L2, Better, L1, false),
            (L2, Better, L2, false),
            (L2, Better, L3, true),
            (L2, Maximum, L1, true),
            (L2, Maximum, L2, true),
            (L2, Maximum, L3, true),
            (L3, Exact, L1, false),
            (L3, Exact, L2, false),
            (L3, Exact, L3, true),
            (L3, Minimum, L1, false),
            (L3, Minimum, L2, false),
            (L3, Minimum, L3, true),
            (L3, Better, L1, false),
            (L3, Better, L2, false),
            (L3, Better, L3, false),
            (L3, Maximum, L1, true),
            (L3, Maximum, L2, true),
            (L3, Maximum, L3, true),
        ];
        assert_eq!(table.len(), 36);
        for (req, cmp, got, want) in table {
            assert_eq!(satisfies(req, cmp, got), want, "{req:?} {cmp:?} {got:?}");
        }
    }

    #[test]
    fn uris_round_trip_and_legacy_is_refused() {
        for l in SpidLevel::ALL {
            assert_eq!(SpidLevel::from_uri(l.uri()), Some(l));
        }
        assert_eq!(
            SpidLevel::from_uri("urn:oasis:names:tc:SAML:2.0:ac:classes:SpidL1"),
            None
        );
        assert_eq!(SpidLevel::parse("L2"), Some(L2));
        assert_eq!(Comparison::parse("minimum"), Some(Minimum));
        assert_eq!(Comparison::parse("Minimum"), None);
    }
}
