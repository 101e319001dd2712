//! SPID vocabulary shared by the fake IdP, the SP and the harness: levels, attributes, error
//! codes, rule codes, the clock, and SAML (message model, bindings, XML signatures, metadata).
//! No servers and no HTTP handlers live here.
#![warn(missing_docs)]

pub mod attributes;
pub mod cie;
pub mod clock;
pub mod cns;
pub mod cookie;
pub mod errors;
pub mod html;
pub mod level;
pub mod oidc;
pub mod pending;
pub mod professional;
pub mod rules;
pub mod saml;

pub use level::{satisfies, Comparison, SpidLevel};
pub use rules::Rule;
