//! CIE OpenID Connect, RP side: our OP and our RP both under [`Profile::cie`] (the CIE
//! reading of the 2023 rules, `differenze_spid_cie`), the OP answering each login with one
//! case's fault plan (`fixtures/cases/cie-oidc-rp/*.toml`). The case grammar is the `oidc`
//! side's ([`RpBody`]); the one difference is that ID tokens are nest-encrypted JWTs here (the
//! RP declares `id_token_encrypted_response_alg`), so their plans may have an `encrypt` stage.

use crate::catalogue::{Body, Case, CaseError, LoadError};
use crate::oidc::{OidcCase, OidcFederation, RpBody};
use crate::runner::{CaseResult, Credentials};
use serde::{Deserialize, Serialize};
use spid_core::oidc::Profile;
use spid_idp::users::User;

/// The CIE RP side's fields: those of the `oidc` side ([`RpBody`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CieRpBody(pub RpBody);

impl Body for CieRpBody {
    const FOLDER: &'static str = "cie-oidc-rp";
    const RULE_PREFIX: &'static str = "";
    const LEVEL_EXPECT: bool = false;
    fn check(&self) -> Result<(), CaseError> {
        self.0.intact.check()?;
        self.0.plan.check_with(true).map_err(CaseError::plan)
    }
}

/// One CIE OIDC RP-side case.
pub type CieOidcCase = Case<CieRpBody>;

/// Parses and checks one case file of the side.
pub fn parse_case(file: &str, text: &str) -> Result<CieOidcCase, LoadError> {
    crate::catalogue::parse(file, text)
}

/// The embedded catalogue of the side, sorted by id.
pub fn embedded() -> Result<Vec<CieOidcCase>, LoadError> {
    crate::catalogue::embedded_cases()
}

/// Keeps the cases whose id matches the glob.
pub fn select(cases: Vec<CieOidcCase>, pattern: Option<&str>) -> Result<Vec<CieOidcCase>, String> {
    crate::catalogue::select_by(cases, pattern, |c| &c.id)
}

/// The case as the `oidc` side's runner takes it (same envelope, same body).
pub fn as_oidc_case(c: &CieOidcCase) -> OidcCase {
    OidcCase {
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

/// The federation of the side: trust anchor, our OP and our RP, both under
/// [`Profile::cie`].
pub async fn start(creds: Credentials) -> anyhow::Result<OidcFederation> {
    OidcFederation::start_with(creds, Some(Profile::cie()), Some(Profile::cie())).await
}

/// Runs one case at `fed` (started by [`start`]).
pub async fn run_case(fed: &OidcFederation, case: &CieOidcCase, users: &[User]) -> CaseResult {
    fed.run_case(&as_oidc_case(case), users).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_loads_and_reaches_every_cie_rp_rule() {
        let cases = embedded().unwrap();
        assert!(cases.len() >= 12, "{}", cases.len());
        let expected = crate::catalogue::expected_rules(&cases);
        for rule in [
            "oidc.iss.missing",
            "oidc.error-response.iss-missing",
            "oidc.id-token.not-encrypted",
            "oidc.id-token.decryption",
            "oidc.claims.mismatch",
        ] {
            assert!(
                expected.contains(rule),
                "no cie-oidc-rp case expects {rule}"
            );
        }
    }

    #[test]
    fn id_token_encryption_stages_parse_here_only() {
        let ok = "id = \"x\"\ntitle = \"t\"\nfamily = \"cie-rp-id-token-encryption\"\n[expect]\nverdict = \"accept\"\n";
        let planned = format!("{ok}[plan.id_token.encrypt]\nskip = true\n");
        assert!(parse_case("cie-oidc-rp/x.toml", &planned).is_ok());
        let spid = planned.replace("cie-rp-id-token-encryption", "id-token");
        assert!(crate::oidc::parse_case("oidc/x.toml", &spid).is_err());
        let typo = ok.replace("[expect]", "colour = 1\n[expect]");
        assert!(parse_case("cie-oidc-rp/x.toml", &typo).is_err());
    }
}
