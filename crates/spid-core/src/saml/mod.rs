//! SAML for SPID: a strict XML tree, bindings, XML signatures, metadata, and the message models
//! (AuthnRequest, Response) both sides build and read.

pub mod authn_request;
pub mod binding;
mod c14n;
pub mod dsig;
pub mod inbound;
pub mod logout;
pub mod metadata;
pub mod ns;
pub mod response;
pub mod xml;

/// A fresh message ID: `_` + UUID, an NCName as SAML IDs must be.
pub fn new_id() -> String {
    format!("_{}", uuid::Uuid::new_v4())
}
