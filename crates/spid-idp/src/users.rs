//! Test users, loaded from TOML (`fixtures/users.toml` by default, embedded at build time).

use serde::Deserialize;
use spid_core::SpidLevel;
use std::collections::BTreeMap;

/// The default users (the workspace's `fixtures/users.toml`).
pub const DEFAULT_USERS: &str = include_str!("../../../fixtures/users.toml");

/// The CIE ID users (`fixtures/cie-users.toml`): card holders (level 3) and CieID app users
/// (levels 1 and 2), with the eIDAS minimum set only.
pub const CIE_USERS: &str = include_str!("../../../fixtures/cie-users.toml");

/// Account status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Can log in.
    Active,
    /// Suspended (nr23).
    Suspended,
    /// Revoked (nr23).
    Revoked,
}

/// Identity type (Avviso 18): the four types of `spid_core::professional`.
pub use spid_core::professional::IdentityType;

/// A test user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Fixed OTP for L≥2.
    pub otp: Option<String>,
    /// Highest level the user's credentials reach (1–3).
    pub level: u8,
    /// Account status.
    pub status: Status,
    /// Identity type.
    #[serde(default)]
    pub identity_type: IdentityType,
    /// SPID attributes.
    pub attributes: BTreeMap<String, String>,
}

impl User {
    /// The highest level as a [`SpidLevel`].
    pub fn max_level(&self) -> SpidLevel {
        match self.level {
            0 | 1 => SpidLevel::L1,
            2 => SpidLevel::L2,
            _ => SpidLevel::L3,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    user: Vec<User>,
}

/// Why a users file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsersError {
    /// Not TOML of the users-file shape (the parser's message names line and column).
    #[error("{0}")]
    Toml(String),
    /// A level-2 or level-3 user without an OTP.
    #[error("user {user} has level {level} but no otp")]
    NoOtp {
        /// The username.
        user: String,
        /// Its level.
        level: u8,
    },
    /// A level outside 1..3.
    #[error("user {0}: level must be 1..3")]
    Level(String),
}

/// Parses a users file.
pub fn parse(toml_text: &str) -> Result<Vec<User>, UsersError> {
    let f: File = toml::from_str(toml_text).map_err(|e| UsersError::Toml(e.to_string()))?;
    for u in &f.user {
        if u.level >= 2 && u.otp.is_none() {
            return Err(UsersError::NoOtp {
                user: u.username.clone(),
                level: u.level,
            });
        }
        if !(1..=3).contains(&u.level) {
            return Err(UsersError::Level(u.username.clone()));
        }
    }
    Ok(f.user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_users_cover_the_required_kinds() {
        let us = parse(DEFAULT_USERS).unwrap();
        let active = |l| {
            us.iter()
                .filter(|u| u.status == Status::Active && u.level == l)
                .count()
        };
        assert!(active(1) >= 1 && active(2) >= 2 && active(3) >= 1);
        assert!(us.iter().any(|u| u.status == Status::Suspended));
        for t in IdentityType::ALL {
            assert!(us.iter().any(|u| u.identity_type == t), "{}", t.as_str());
        }
        for u in &us {
            let names: Vec<&str> = u.attributes.keys().map(String::as_str).collect();
            assert_eq!(u.identity_type.missing(&names), None, "{}", u.username);
            if let Some(fc) = u.attributes.get("fiscalNumber") {
                assert!(spid_core::attributes::is_fiscal_number(fc), "{fc}");
            } else {
                assert_eq!(u.identity_type, IdentityType::LegalPerson, "{}", u.username);
            }
            for name in u.attributes.keys() {
                assert!(spid_core::attributes::is_spid_attribute(name), "{name}");
            }
        }
    }

    #[test]
    fn cie_users_are_card_holders_and_app_users_with_the_minimum_set() {
        let us = parse(CIE_USERS).unwrap();
        let active = |l| {
            us.iter()
                .filter(|u| u.status == Status::Active && u.level == l)
                .count()
        };
        assert!(active(1) >= 1 && active(2) >= 1 && active(3) >= 1);
        assert!(us.iter().any(|u| u.status == Status::Revoked));
        for u in &us {
            let names: Vec<&str> = u.attributes.keys().map(String::as_str).collect();
            let mut want = spid_core::cie::MINIMUM_ATTRIBUTES.to_vec();
            want.sort();
            assert_eq!(names, want, "{}", u.username);
            let fc = &u.attributes["fiscalNumber"];
            assert!(spid_core::attributes::is_fiscal_number(fc), "{fc}");
            assert!(
                spid_core::cns::check_fiscal_code(&fc["TINIT-".len()..]).is_ok(),
                "{fc}"
            );
            let dob = &u.attributes["dateOfBirth"];
            assert!(
                chrono::NaiveDate::parse_from_str(dob, "%Y-%m-%d").is_ok(),
                "{dob}"
            );
        }
    }
}
