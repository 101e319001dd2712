//! spid-harness: runs SPID login flows between a fake IdP and an SP (ours or anybody's) and
//! judges every case of the catalogue by verdict and deciding rule.
#![warn(missing_docs)]

pub mod agent;
pub mod bench;
pub mod catalogue;
pub mod certs;
pub mod check_idp;
pub mod checks;
pub mod cie;
pub mod cie_oidc;
pub mod cli;
pub mod cns;
pub mod compare;
pub mod external;
pub mod oidc;
pub mod oidc_keys;
pub mod oidc_op;
pub mod peers;
pub mod report;
pub mod runner;
