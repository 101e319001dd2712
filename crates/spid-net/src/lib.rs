//! What every server of the harness shares on the wire, and nothing else: one bounded serve
//! loop ([`serve`], [`ServeLimits`]; over TLS [`serve_tls`], for the CNS login), one bounded
//! form parser ([`form`], [`FormLimits`]) and one bounded fetch of federation documents
//! ([`fetch_text`]).
//!
//! `axum::serve` runs hyper without a timer: an idle connection, a request head sent one line
//! every few seconds, a body dribbled or stalled short of its `Content-Length` are held for
//! ever, and enough of them exhaust the process's file descriptors. [`serve`] bounds each of
//! those and caps the connections held at once. `spid-idp` and `spid-sp` both depend on this
//! crate and still never on each other.

mod fetch;
mod form;
mod serve;

pub use fetch::{fetch_text, FetchError};
pub use form::{first_wins, form, FormLimits, FormRefusal};
pub use serve::{serve, serve_tls, PeerCertificates, ServeLimits};
