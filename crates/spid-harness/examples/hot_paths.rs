//! The hot paths, one at a time, for instruction counting under callgrind (in the style of
//! rustls's `ci-bench`): `scripts/callgrind-bench.sh` runs each with
//! `valgrind --tool=callgrind --toggle-collect='hot_paths::measured*'`, so only the measured
//! iterations are counted — not start-up, not the warm-up.
//!
//! `hot_paths <sign|validate|login> [iterations]`:
//! - `sign`: our IdP builds one honest Response and signs its Assertion and the Response;
//! - `validate`: our SP validates that Response (POST binding, both signatures, every rule);
//! - `login`: one whole L2 login over loopback HTTP (SP `/login`, the IdP's pages, the ACS),
//!   IdP, SP and user agent on one thread (a current-thread runtime), so all of it is counted.
//!
//! It prints the iterations it measured; the counts come from callgrind.

use spid_core::saml::response::SignParts;
use spid_harness::bench::SamlFixture;
use spid_harness::runner::{self, Credentials, InternalPair};
use std::hint::black_box;

#[inline(never)]
fn measured_sign(fx: &SamlFixture, n: u32) -> anyhow::Result<()> {
    for _ in 0..n {
        black_box(fx.sign(SignParts::BOTH)?);
    }
    Ok(())
}

#[inline(never)]
fn measured_validate(fx: &SamlFixture, n: u32) -> anyhow::Result<()> {
    for _ in 0..n {
        let id = fx
            .validate()
            .map_err(|r| anyhow::anyhow!("refused: {}", r.rule))?;
        black_box(id);
    }
    Ok(())
}

#[inline(never)]
fn measured_login(
    rt: &tokio::runtime::Runtime,
    pair: &InternalPair,
    users: &[spid_idp::users::User],
    n: u32,
) -> anyhow::Result<()> {
    let case = runner::sanity_case();
    for _ in 0..n {
        let r = rt.block_on(runner::run_case(pair, &case, users));
        anyhow::ensure!(r.passed(), "login failed: {:?}", r.note);
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_default();
    let n: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    spid_core::saml::dsig::init();
    match what.as_str() {
        "sign" | "validate" => {
            // The fixture signs and validates once: the warm-up (key handles, xmlsec).
            let fx = SamlFixture::new()?;
            if what == "sign" {
                measured_sign(&fx, n)?;
            } else {
                measured_validate(&fx, n)?;
            }
        }
        "login" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let pair = rt.block_on(InternalPair::start(Credentials::embedded()?))?;
            let users = spid_idp::users::parse(spid_idp::users::DEFAULT_USERS)
                .map_err(anyhow::Error::msg)?;
            // Warm-up: connections, key handles, lazily built state.
            warm_up_login(&rt, &pair, &users)?;
            measured_login(&rt, &pair, &users, n)?;
        }
        other => {
            anyhow::bail!("usage: hot_paths <sign|validate|login> [iterations] (got {other:?})")
        }
    }
    println!("{what}: {n} iterations");
    Ok(())
}

/// One login before the measured ones (not counted: outside the toggled functions).
fn warm_up_login(
    rt: &tokio::runtime::Runtime,
    pair: &InternalPair,
    users: &[spid_idp::users::User],
) -> anyhow::Result<()> {
    let r = rt.block_on(runner::run_case(pair, &runner::sanity_case(), users));
    anyhow::ensure!(r.passed(), "warm-up login failed: {:?}", r.note);
    Ok(())
}
