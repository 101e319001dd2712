//! spid-sp
