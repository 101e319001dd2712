//! The `cie` side: CIE ID over SAML, in the one case grammar.
//!
//! A CIE case is a SAML case ([`SamlBody`]: flow, consent, request, fault plan, `[intact]`)
//! filed under `fixtures/cases/cie/`, run by the same runner ([`runner::run_case`]) at a pair
//! whose IdP answers in the CIE profile ([`spid_idp::IdpConfig::cie`]) and whose SP registered
//! it as CIE ([`spid_sp::ServiceProvider::register_idp_as`]). Users are the CIE fixture users
//! (`fixtures/cie-users.toml`). docs/cie.md says what the profile changes.

use crate::catalogue::{self, Body, Case, CaseError, LoadError, SamlBody};
use crate::runner::{self, CaseResult, Credentials, InternalPair};
use spid_core::cie::IdpProfile;
use spid_idp::users::User;

/// The CIE side's own fields: exactly the SAML side's.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CieBody(pub SamlBody);

impl std::ops::Deref for CieBody {
    type Target = SamlBody;
    fn deref(&self) -> &SamlBody {
        &self.0
    }
}

impl Body for CieBody {
    const FOLDER: &'static str = "cie";
    const RULE_PREFIX: &'static str = "";
    const LEVEL_EXPECT: bool = true;
    fn check(&self) -> Result<(), CaseError> {
        self.0.check()
    }
}

/// A case of the CIE catalogue.
pub type CieCase = Case<CieBody>;

/// The embedded CIE catalogue, sorted by id.
pub fn embedded() -> Result<Vec<CieCase>, LoadError> {
    catalogue::embedded_cases()
}

/// Keeps the cases whose id matches the glob.
pub fn select(cases: Vec<CieCase>, pattern: Option<&str>) -> Result<Vec<CieCase>, String> {
    catalogue::select_by(cases, pattern, |c| &c.id)
}

/// The case as the SAML runner takes it (the same envelope and body).
pub fn to_saml(c: &CieCase) -> Case {
    Case {
        id: c.id.clone(),
        title: c.title.clone(),
        family: c.family.clone(),
        refs: c.refs.clone(),
        flags: c.flags.clone(),
        scope: c.scope,
        user: c.user.clone(),
        expect: c.expect.clone(),
        body: c.body.0.clone(),
    }
}

/// The CIE fixture users.
pub fn users() -> Result<Vec<User>, spid_idp::users::UsersError> {
    spid_idp::users::parse(spid_idp::users::CIE_USERS)
}

/// Our CIE IdP and our SP registering it as `sp_registers_as` (CIE for the side; SPID to show
/// what an SP that ignores the CIE profile gets wrong).
pub async fn start_pair(sp_registers_as: IdpProfile) -> anyhow::Result<InternalPair> {
    InternalPair::start_profiled(
        Credentials::embedded()?,
        spid_net::ServeLimits::default(),
        IdpProfile::Cie,
        sp_registers_as,
    )
    .await
}

/// Runs one CIE case at `pair` (started by [`start_pair`]).
pub async fn run_case(pair: &InternalPair, case: &CieCase, users: &[User]) -> CaseResult {
    runner::run_case(pair, &to_saml(case), users).await
}

/// The honest CIE login every `cie` run starts and ends with: the app user at L2.
pub fn sanity_case() -> CieCase {
    let s = runner::sanity_case();
    Case {
        id: s.id,
        title: "honest CIE ID login (CieID app, L2)".into(),
        family: s.family,
        refs: s.refs,
        flags: s.flags,
        scope: s.scope,
        user: s.user,
        expect: s.expect,
        body: CieBody(s.body),
    }
}

/// Whether the case moves the shared clock (runs alone under `--jobs`).
pub fn moves_clock(c: &CieCase) -> bool {
    runner::moves_clock(&to_saml(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalogue::{expected_rules, CatalogueCase, Expect};
    use spid_core::errors::SpidError;
    use spid_core::Rule;

    #[test]
    fn the_catalogue_loads_with_forty_cases_or_more() {
        let cases = embedded().unwrap();
        assert!(cases.len() >= 40, "{}", cases.len());
        for c in &cases {
            assert!(
                c.id.starts_with("cie-"),
                "{}: ids carry the cie- prefix",
                c.id
            );
        }
    }

    #[test]
    fn every_cie_rule_of_the_sp_is_expected_by_a_case() {
        let cases = embedded().unwrap();
        let expected = expected_rules(&cases);
        for r in [Rule::AssertionCieAttributes, Rule::AssertionIssuerFormat] {
            assert!(expected.contains(r.code()), "{} has no cie case", r.code());
        }
    }

    /// Every code the CIE table sends as a SAML status has a case the SP must refuse; the
    /// reserved ones (19, 20, 24) none.
    #[test]
    fn every_cie_error_sent_as_saml_status_has_a_case() {
        use spid_core::errors::ErrorChannel;
        let cases = embedded().unwrap();
        let statuses: Vec<u8> = cases.iter().filter_map(|c| c.plan.status).collect();
        for n in 1..=30u8 {
            let e = SpidError(n);
            let saml = matches!(e.channel(), ErrorChannel::Response { .. }) && n != 1;
            if spid_core::cie::sendable(e) && saml {
                assert!(statuses.contains(&n), "CIE nr{n} has no case");
            } else {
                assert!(!statuses.contains(&n), "nr{n} is not sent by a CIE IdP");
            }
        }
        // The user-facing ones (card expired or revoked, timeout, consent, cancel) are also
        // reached through the IdP's pages.
        for (id, rule) in [
            ("cie-card-revoked", "response.status.nr23"),
            ("cie-flow-timeout", "response.status.nr21"),
            ("cie-flow-consent-denied", "response.status.nr22"),
            ("cie-flow-cancel", "response.status.nr25"),
        ] {
            let c = cases.iter().find(|c| c.id == id).expect(id);
            assert!(
                matches!(c.expect(), Expect::Reject { rules, .. } if rules.iter().any(|r| r == rule)),
                "{id}"
            );
        }
    }

    #[test]
    fn cie_users_are_known_to_the_cases() {
        let users = users().unwrap();
        for c in embedded().unwrap() {
            assert!(
                users.iter().any(|u| u.username == c.user),
                "{}: user {} is not a CIE user",
                c.id,
                c.user
            );
        }
    }
}
