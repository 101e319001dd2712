//! SPID OpenID Connect: the JOSE layer, ID token claims, and OpenID Federation (entity
//! statements, trust chains, metadata policy, trust marks). A library only: no HTTP.
//!
//! - [`jose`]: JWK/JWKS, JWS sign/verify with strict refusals, JWE, nested userinfo JWTs;
//! - [`claims`]: ID token validation, `at_hash`, `acr` → [`SpidLevel`];
//! - [`federation`]: entity configurations/statements, trust-chain validation, metadata
//!   policy, trust marks;
//! - [`profile`]: the switches where SPID sources disagree, with presets per source.

pub mod claims;
pub mod federation;
pub mod jose;
pub mod pkce;
pub mod plan;
pub mod profile;

pub use crate::level::SpidLevel;

pub use profile::Profile;

#[cfg(test)]
pub(crate) mod test_keys;
