//! The CNS card issuer: a TEST hierarchy like the real one (a root and issuing CAs named like
//! the administrations that issue cards), cards minted per the CNS / CIE 3.0 authentication
//! certificate profile, and their revocation status served as a real DER CRL and by a real
//! OCSP responder on loopback.
//!
//! A card is a recipe, like a SAML fault plan: the honest card is built first
//! ([`card::honest_params`]), then a [`CardPlan`]'s edits are applied — to the certificate
//! before signing (dates, usages, policies, subject, key), at signing (who signs, with which
//! hash, self-signed), after signing (what the holder presents) and to the issuer's status
//! (revoked, a stale CRL, an OCSP responder that answers unknown, fails or hangs). An edit
//! that changes nothing is a [`CnsError::EditMissed`]: a case never goes out as the honest
//! card under its name.
//!
//! Everything here is TEST ONLY: the keys are committed (`certs/cns/`).

pub mod ca;
pub mod card;
mod key;
pub mod server;
pub mod status;

pub use ca::{CaId, Hierarchy};
pub use card::{Card, CardEdit, CardHolder, CardPlan};
pub use key::TestKey;
pub use server::{CardIssuer, Fetch, FetchSource};
pub use status::{Channels, CrlMode, OcspMode, OcspSigner};

/// What can go wrong minting cards or answering for them.
#[derive(Debug, thiserror::Error)]
pub enum CnsError {
    /// A test key did not load.
    #[error("test key {0}: {1}")]
    Key(&'static str, openssl::error::ErrorStack),
    /// OpenSSL failed while signing or hashing.
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    /// rcgen refused a certificate or CRL.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// DER encoding or decoding failed.
    #[error("DER: {0}")]
    Der(#[from] der::Error),
    /// A plan edit had nothing to act on (it would have left the honest card).
    #[error("card edit {edit}: {why}")]
    EditMissed {
        /// The edit, by its case-file name.
        edit: String,
        /// Why nothing changed.
        why: String,
    },
    /// A plan's value is unusable (an OID that does not parse, a date out of range).
    #[error("card edit {edit}: invalid value {value}")]
    InvalidValue {
        /// The edit, by its case-file name.
        edit: String,
        /// The value.
        value: String,
    },
    /// The fixture users did not load.
    #[error("fixture users: {0}")]
    Users(String),
}
