//! [`TestIdp`]: the fake IdP for another project's `#[tokio::test]`s — on an ephemeral
//! loopback port, with the test-only credentials of `certs/`, the fixture users, and fault
//! plans to arm.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let idp = spid_idp::TestIdp::start().await.unwrap();
//! let md = reqwest::get(idp.metadata_url()).await.unwrap().text().await.unwrap();
//! assert!(md.contains(idp.entity_id()));
//! # });
//! ```

use crate::{FaultPlan, IdentityProvider, IdpConfig, IdpError};
use spid_core::saml::dsig::Credential;

/// A running fake IdP; stops when dropped.
pub struct TestIdp {
    idp: IdentityProvider,
    base: String,
    task: tokio::task::JoinHandle<()>,
}

impl TestIdp {
    /// Starts the IdP on `127.0.0.1:0` with the test-only credentials (`certs/idp.*`, and
    /// `certs/foreign.*` as the attacker's key) and the fixture users.
    pub async fn start() -> Result<TestIdp, IdpError> {
        let pem = |k: &str, c: &str| Credential::from_pem(k.as_bytes(), c.as_bytes());
        let idp_cred = pem(
            include_str!("../../../certs/idp.key.pem"),
            include_str!("../../../certs/idp.crt.pem"),
        )?;
        let foreign = pem(
            include_str!("../../../certs/foreign.key.pem"),
            include_str!("../../../certs/foreign.crt.pem"),
        )?;
        let listen = |source| IdpError::Listen {
            addr: "127.0.0.1:0".into(),
            source,
        };
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(listen)?;
        let addr = l.local_addr().map_err(listen)?;
        let base = format!("http://{addr}");
        let idp = IdentityProvider::new(IdpConfig::new(&base, idp_cred, foreign))?;
        let task = tokio::spawn({
            let idp = idp.clone();
            async move {
                let _ = idp.serve(l).await;
            }
        });
        Ok(TestIdp { idp, base, task })
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The IdP's entityID.
    pub fn entity_id(&self) -> &str {
        &self.idp.config().entity_id
    }

    /// Where the signed metadata is served (register it with the SP under test).
    pub fn metadata_url(&self) -> String {
        format!("{}/metadata", self.base)
    }

    /// The signed metadata itself.
    pub fn metadata_xml(&self) -> &str {
        self.idp.metadata_xml()
    }

    /// Trusts an SP: registers its metadata; returns its entityID.
    pub fn register_sp(&self, metadata_xml: &str) -> Result<String, IdpError> {
        self.idp.register_sp(metadata_xml)
    }

    /// Arms `plan` for the next Response (one login at a time; for concurrent logins use
    /// [`IdentityProvider::arm_for`] through [`TestIdp::idp`]).
    pub fn arm(&self, plan: FaultPlan) {
        self.idp.arm(plan);
    }

    /// The fixture users (username, password, OTP, level, attributes).
    pub fn users(&self) -> &[crate::users::User] {
        &self.idp.config().users
    }

    /// The IdP itself (plans per case, the last Response sent, configuration).
    pub fn idp(&self) -> &IdentityProvider {
        &self.idp
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}
