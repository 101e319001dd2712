//! A Service Provider tests its SPID login against the fake IdP, the way another project's
//! `#[tokio::test]` would: an axum app that mounts the reference SP (`spid_sp`) beside a page
//! of its own, `spid_idp::TestIdp` on an ephemeral port, and the harness's browser-like user
//! agent logging in through the IdP's pages — once honestly (accepted) and once with a Response
//! asserting SpidL1 (refused, with the rule that decided).
//!
//! `cargo run -p spid-harness --example sp_with_test_idp` (CI runs it).

use spid_harness::runner::{self, Credentials};
use spid_idp::{FaultPlan, TestIdp};
use spid_sp::{ServiceProvider, SpConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    spid_core::saml::dsig::init();
    let idp = TestIdp::start().await?;

    // The application: its own home page, and the SPID login of the reference SP.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", l.local_addr()?);
    let sp = ServiceProvider::new(SpConfig::new(&base, Credentials::embedded()?.sp))?;
    sp.register_idp(idp.metadata_xml(), None)?;
    idp.register_sp(sp.metadata_xml())?;
    let app = sp
        .router()
        .route("/welcome", axum::routing::get(|| async { "my service" }));
    let server = tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });

    let login = url::Url::parse(&format!("{base}/login"))?;
    let user = idp.users().iter().find(|u| u.username == "mario.rossi");

    let mut ua = runner::user_agent()?;
    let page = runner::drive_login(&mut ua, &login, user, Default::default()).await?;
    println!("honest L2 login: HTTP {}", page.status);
    anyhow::ensure!(page.status == 200, "the honest login was refused");

    idp.arm(FaultPlan {
        level: Some(spid_core::SpidLevel::L1),
        ..FaultPlan::default()
    });
    let mut ua = runner::user_agent()?;
    let page = runner::drive_login(&mut ua, &login, user, Default::default()).await?;
    let rule = page.spid_rule().unwrap_or("-").to_string();
    println!("SpidL1 asserted: HTTP {} rule {rule}", page.status);
    anyhow::ensure!(
        page.status == 403 && rule == "assertion.level.insufficient",
        "an L1 Response was not refused by assertion.level.insufficient"
    );
    server.abort();
    Ok(())
}
