//! spid-idp
