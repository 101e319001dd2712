//! The switches where SPID OIDC sources disagree (docs/oidc.md lists them), bundled per source.
//!
//! Six presets: [`Profile::rules_2023`] (the consolidated SPID/CIE technical rules read for
//! SPID, the default), [`Profile::cie`] (the same rules read for CIE id: the differences of
//! `differenze_spid_cie`), [`Profile::agid_check_op`] (what AgID's conformance tools enforce),
//! [`Profile::django_sdk`] and [`Profile::django_sdk_cie`] (the behaviour of the Python
//! reference implementation in its SPID and CIE profiles, useful as an interop peer) and
//! [`Profile::lg_2019_draft`] (the 2019 consultation draft, history only).
//! Fields are public so a harness can derive variants.

use super::jose::{JweAlg, JweEnc, SigAlg};

/// What the access token's `aud` must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessTokenAudience {
    /// Must include the OP userinfo endpoint URL (rules).
    IncludesUserinfoEndpoint,
    /// Equals the RP `client_id` (check-op).
    ClientId,
    /// `[issuer, userinfo endpoint]` (django; it uses a relative userinfo path).
    IssuerAndUserinfo,
}

/// The shape of authorization codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeFormat {
    /// Any opaque string (rules).
    Opaque,
    /// A UUID (check-op 2.4.1).
    Uuid,
    /// 128 hex characters (django's SHA-512).
    Sha512Hex,
}

/// Which claim names a trust mark's identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustMarkIdClaim {
    /// `id` only (SPID rules and tools).
    Id,
    /// `trust_mark_type` only (final OpenID Federation 1.0).
    TrustMarkType,
    /// Either (version-tolerant parsing); if both are present they must be equal.
    Either,
}

/// How metadata-policy operators treat the liberties SPID's examples take with OpenID
/// Federation (see `federation::policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyDialect {
    /// `one_of` on an array-valued parameter (SPID TA examples use it on
    /// `response_types_supported`, `client_registration_types`, …): when true every element must
    /// be listed and the array is kept; when false (OpenID Federation) it is a policy error.
    pub one_of_on_arrays: bool,
    /// `subset_of` leaving an empty intersection: when true a policy error (django SDK
    /// behaviour); when false the parameter becomes `[]` (final OpenID Federation text).
    pub empty_subset_is_error: bool,
    /// Operand strings `"true"`/`"false"` match JSON booleans (the SPID TA example writes
    /// `claims_parameter_supported: {one_of: ["true"]}`).
    pub bool_strings: bool,
}

impl PolicyDialect {
    /// SPID-tolerant reading of the 2023 rules and their examples.
    pub fn spid() -> PolicyDialect {
        PolicyDialect {
            one_of_on_arrays: true,
            empty_subset_is_error: true,
            bool_strings: true,
        }
    }

    /// Plain OpenID Federation 1.0.
    pub fn oidf() -> PolicyDialect {
        PolicyDialect {
            one_of_on_arrays: false,
            empty_subset_is_error: false,
            bool_strings: false,
        }
    }
}

/// A bundle of behaviour switches for one reading of the SPID OIDC profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Short name for reports (`rules-2023`, `agid-check-op`, …).
    pub name: String,
    /// JWS algorithms accepted on every signed object (ID/access/refresh tokens, userinfo,
    /// request objects, client assertions, federation statements, trust marks).
    pub signing_algs: Vec<SigAlg>,
    /// The algorithm our own entities sign with.
    pub default_signing_alg: SigAlg,
    /// JWE key-management algorithms accepted (userinfo).
    pub jwe_algs: Vec<JweAlg>,
    /// JWE content encryptions accepted (userinfo).
    pub jwe_encs: Vec<JweEnc>,
    /// Clock skew tolerated on `exp`/`nbf`/`iat`, seconds.
    pub clock_skew_secs: i64,
    /// Request objects are signed *and encrypted* (2019 draft) instead of signed only.
    pub request_object_encrypted: bool,
    /// ID tokens are encrypted (2019 draft; django advertises it) instead of signed only.
    pub id_token_encrypted: bool,
    /// The ID token must carry `nbf` (rules: `nbf` = `iat`).
    pub id_token_require_nbf: bool,
    /// The ID token must carry `at_hash` (mandatory in SPID/CIE, optional in OIDC Core).
    pub id_token_require_at_hash: bool,
    /// The ID token must carry `jti`.
    pub id_token_require_jti: bool,
    /// An array `aud` must hold only the `client_id` (OIDC Core: no untrusted audiences).
    pub id_token_single_audience: bool,
    /// ID token lifetime our OP issues, seconds.
    pub id_token_lifetime_secs: i64,
    /// Access token lifetime our OP issues, seconds.
    pub access_token_lifetime_secs: i64,
    /// What the access token `aud` must be.
    pub access_token_audience: AccessTokenAudience,
    /// `response_mode` values the OP must support.
    pub response_modes_supported: Vec<String>,
    /// HTTP status of an `invalid_client` token error.
    pub invalid_client_status: u16,
    /// Content-Type of the userinfo response our OP sends (RPs should accept both
    /// `application/jwt` and `application/jose` regardless).
    pub userinfo_content_type: String,
    /// Userinfo may be called with POST (SPID: GET only).
    pub userinfo_post_allowed: bool,
    /// `iss` is required in the authorization response.
    pub authz_response_iss_required: bool,
    /// Namespace of SPID attribute claims.
    pub attribute_namespace: String,
    /// Authorization code format.
    pub code_format: CodeFormat,
    /// Fields an introspection response carries.
    pub introspection_fields: Vec<String>,
    /// Which claim names a trust mark's identifier.
    pub trust_mark_id_claim: TrustMarkIdClaim,
    /// A trust mark must carry `exp` (the SPID examples omit it; OpenID Federation makes it
    /// optional). When present it is always checked.
    pub trust_mark_require_exp: bool,
    /// Metadata-policy dialect.
    pub policy: PolicyDialect,
    /// The inner userinfo JWS must carry `iss` (the OP), `aud` (the RP) and `exp` (rules);
    /// when false only `sub` and the claims are required (django: the JWS has nothing else).
    pub userinfo_require_iss_aud_exp: bool,
    /// The trust anchor's `/trust_mark_status` may answer a signed JWT (`status: "active"`,
    /// verified with the anchor's keys; django) besides the JSON `{"active": true}`.
    pub trust_mark_status_jwt: bool,
    /// The OP ignores a `claims.id_token` request member instead of refusing the request
    /// (SPID allows only `claims.userinfo`; the django RP asks for given_name/email there).
    pub authz_id_token_claims_allowed: bool,
    /// Scope values besides `openid` the OP accepts and the RP may ask for (SPID:
    /// `offline_access`; CIE adds `profile` and `email`).
    pub scopes_supported: Vec<String>,
    /// Claims are released in the ID token as well as in userinfo: `claims.id_token` in the
    /// request and the `profile`/`email` scopes (CIE `CLAIMS_CIE`); SPID: userinfo only.
    pub claims_in_id_token: bool,
    /// `iss` is required on authorization *error* responses too (CIE, RFC 9207); success
    /// responses follow `authz_response_iss_required`.
    pub authz_error_iss_required: bool,
    /// `client_id` and `response_type` must also be HTTP parameters beside the request object
    /// (SPID MUST; CIE SHOULD).
    pub authz_http_params_required: bool,
    /// When the RP's metadata declares `id_token_encrypted_response_alg`, the OP nest-encrypts
    /// the ID token (JWE, `cty` JWT) and the RP refuses a plain one (CIE); SPID never encrypts.
    pub id_token_encrypted_on_request: bool,
    /// A refresh grant returns a new ID token (SPID, acr SpidL1); CIE: none, only tokens.
    pub refresh_issues_id_token: bool,
    /// Revoking an access token also revokes the refresh token issued with it and the SSO
    /// session (SPID); CIE: only revoking the refresh token revokes everything.
    pub access_token_revocation_cascades: bool,
    /// EC keys (P-256, P-384, P-521) and ES256/ES384/ES512 are allowed in JWKS and signatures
    /// (CIE `JwkCie`); SPID: RSA only.
    pub ec_keys_allowed: bool,
    /// The OP metadata must publish the CIE extras: `claims_supported` (with the
    /// `https://attributes.eid.gov.it/` claims), `claims_parameter_supported`,
    /// `response_modes_supported` and `tls_client_certificate_bound_access_tokens`; SPID asks
    /// `op_name` and `op_uri` instead.
    pub op_metadata_cie: bool,
    /// The RP metadata carries `application_type: "web"`, which the CIE RP metadata asks for
    /// (SPID's has no such member).
    pub rp_metadata_cie: bool,
    /// The trust anchor whose trust-mark ids the profile expects, as the prefix of
    /// `<anchor>/<entity type>/<profile>/` (CIE: `https://registry.interno.gov.it/`); None: the
    /// anchor of the federation at hand (SPID).
    pub trust_mark_id_base: Option<String>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const INTROSPECTION_FULL: [&str; 7] = ["active", "scope", "exp", "sub", "client_id", "iss", "aud"];

impl Profile {
    /// The consolidated SPID/CIE OpenID Connect technical rules (`spid-cie-oidc-docs`, 2023).
    pub fn rules_2023() -> Profile {
        Profile {
            name: "rules-2023".into(),
            signing_algs: vec![SigAlg::RS256, SigAlg::RS512, SigAlg::PS256, SigAlg::PS512],
            default_signing_alg: SigAlg::RS256,
            jwe_algs: JweAlg::ALL.to_vec(),
            jwe_encs: JweEnc::ALL.to_vec(),
            clock_skew_secs: 60,
            request_object_encrypted: false,
            id_token_encrypted: false,
            id_token_require_nbf: true,
            id_token_require_at_hash: true,
            id_token_require_jti: true,
            id_token_single_audience: true,
            id_token_lifetime_secs: 180,
            access_token_lifetime_secs: 1800,
            access_token_audience: AccessTokenAudience::IncludesUserinfoEndpoint,
            response_modes_supported: strings(&["form_post", "query"]),
            invalid_client_status: 401,
            userinfo_content_type: "application/jose".into(),
            userinfo_post_allowed: false,
            authz_response_iss_required: false,
            attribute_namespace: "https://attributes.eid.gov.it/".into(),
            code_format: CodeFormat::Opaque,
            introspection_fields: strings(&INTROSPECTION_FULL),
            trust_mark_id_claim: TrustMarkIdClaim::Id,
            trust_mark_require_exp: false,
            policy: PolicyDialect::spid(),
            userinfo_require_iss_aud_exp: true,
            trust_mark_status_jwt: false,
            authz_id_token_claims_allowed: false,
            scopes_supported: strings(&["offline_access"]),
            claims_in_id_token: false,
            authz_error_iss_required: false,
            authz_http_params_required: true,
            id_token_encrypted_on_request: false,
            refresh_issues_id_token: true,
            access_token_revocation_cascades: true,
            ec_keys_allowed: false,
            op_metadata_cie: false,
            rp_metadata_cie: false,
            trust_mark_id_base: None,
        }
    }

    /// The 2023 rules read for CIE id (`differenze_spid_cie`): `profile` and `email` scopes,
    /// claims in the ID token and userinfo, `iss` on every authorization response (errors
    /// included), ID-token encryption when the RP declares it, userinfo by GET and POST, no new
    /// ID token on refresh, introspection answering `active` only, access-token revocation that
    /// leaves the refresh token alive, EC keys, the CIE OP metadata extras. Trust-mark ids keep
    /// the federation's own anchor: a harness run has its own anchor, not the Ministry's.
    pub fn cie() -> Profile {
        Profile {
            name: "cie".into(),
            userinfo_post_allowed: true,
            authz_response_iss_required: true,
            authz_error_iss_required: true,
            authz_http_params_required: false,
            introspection_fields: strings(&["active"]),
            scopes_supported: strings(&["offline_access", "profile", "email"]),
            claims_in_id_token: true,
            authz_id_token_claims_allowed: true,
            id_token_encrypted_on_request: true,
            refresh_issues_id_token: false,
            access_token_revocation_cascades: false,
            ec_keys_allowed: true,
            op_metadata_cie: true,
            rp_metadata_cie: true,
            ..Profile::rules_2023()
        }
    }

    /// What AgID's `spid-oidc-check-op` / `check-rp` enforce: RS256/RS512 only, check-op
    /// lifetimes, 400 on every token error, `iss` in the authorization response, UUID codes.
    pub fn agid_check_op() -> Profile {
        Profile {
            name: "agid-check-op".into(),
            signing_algs: vec![SigAlg::RS256, SigAlg::RS512],
            id_token_lifetime_secs: 300,
            access_token_lifetime_secs: 900,
            access_token_audience: AccessTokenAudience::ClientId,
            invalid_client_status: 400,
            userinfo_content_type: "application/jwt".into(),
            authz_response_iss_required: true,
            code_format: CodeFormat::Uuid,
            ..Profile::rules_2023()
        }
    }

    /// The Python reference implementation (`spid-cie-oidc` 1.6.3) as observed: no `nbf`,
    /// array `aud`, 1980 s lifetimes, 403 on bad client auth, SHA-512 hex codes, trust marks
    /// by `trust_mark_type`, signed trust-mark status answers, bare userinfo JWS.
    pub fn django_sdk() -> Profile {
        Profile {
            name: "django-sdk".into(),
            id_token_encrypted: false,
            id_token_require_nbf: false,
            id_token_require_jti: false,
            id_token_single_audience: false,
            id_token_lifetime_secs: 1980,
            access_token_lifetime_secs: 1980,
            access_token_audience: AccessTokenAudience::IssuerAndUserinfo,
            response_modes_supported: strings(&["query"]),
            invalid_client_status: 403,
            userinfo_content_type: "application/jwt".into(),
            authz_response_iss_required: true,
            code_format: CodeFormat::Sha512Hex,
            // Its trust marks name the identifier `trust_mark_type` (+ `trust_mark_id`), no `id`.
            trust_mark_id_claim: TrustMarkIdClaim::Either,
            userinfo_require_iss_aud_exp: false,
            trust_mark_status_jwt: true,
            authz_id_token_claims_allowed: true,
            ..Profile::rules_2023()
        }
    }

    /// [`Profile::cie`] relaxed where the Python reference implementation (`spid-cie-oidc`
    /// 1.6.3) in its CIE provider profile deviates (the interop pair
    /// `tests/interop/pairs/oidc-cie-our-rp-to-their-op.sh` lists why): trust marks by
    /// `trust_mark_type`, signed trust-mark status answers, no `nbf` in the ID token, a bare
    /// userinfo JWS, ID tokens never encrypted. `iss` stays required on error responses.
    pub fn django_sdk_cie() -> Profile {
        Profile {
            name: "django-sdk-cie".into(),
            trust_mark_id_claim: TrustMarkIdClaim::Either,
            trust_mark_status_jwt: true,
            id_token_require_nbf: false,
            userinfo_require_iss_aud_exp: false,
            id_token_encrypted_on_request: false,
            ..Profile::cie()
        }
    }

    /// The 2019 consultation draft of the AgID guidelines (history; not normative).
    pub fn lg_2019_draft() -> Profile {
        Profile {
            name: "lg-2019-draft".into(),
            request_object_encrypted: true,
            id_token_encrypted: true,
            response_modes_supported: strings(&["form_post"]),
            userinfo_content_type: "application/jwt".into(),
            userinfo_post_allowed: true,
            attribute_namespace: "https://attributes.spid.gov.it/".into(),
            introspection_fields: strings(&["active", "scope", "exp", "sub", "client_id"]),
            ..Profile::rules_2023()
        }
    }

    /// A preset by name (`rules-2023`, `cie`, `agid-check-op`, `django-sdk`, `django-sdk-cie`,
    /// `lg-2019-draft`).
    pub fn by_name(name: &str) -> Option<Profile> {
        match name {
            "rules-2023" => Some(Profile::rules_2023()),
            "cie" => Some(Profile::cie()),
            "agid-check-op" => Some(Profile::agid_check_op()),
            "django-sdk" => Some(Profile::django_sdk()),
            "django-sdk-cie" => Some(Profile::django_sdk_cie()),
            "lg-2019-draft" => Some(Profile::lg_2019_draft()),
            _ => None,
        }
    }

    /// The JWS algorithms a verifier accepts: [`Profile::signing_algs`], plus ES256 where
    /// the profile allows EC keys (`ec_keys_allowed`, CIE); never ES256 otherwise (SPID: RSA
    /// only), even if listed.
    pub fn accepted_signing_algs(&self) -> Vec<SigAlg> {
        let mut algs: Vec<SigAlg> = self
            .signing_algs
            .iter()
            .copied()
            .filter(|a| self.ec_keys_allowed || !a.is_ec())
            .collect();
        if self.ec_keys_allowed && !algs.contains(&SigAlg::ES256) {
            algs.push(SigAlg::ES256);
        }
        algs
    }

    /// The clock skew as a duration.
    pub fn skew(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.clock_skew_secs)
    }
}

impl Default for Profile {
    fn default() -> Profile {
        Profile::rules_2023()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_by_name() {
        for p in [
            Profile::rules_2023(),
            Profile::cie(),
            Profile::agid_check_op(),
            Profile::django_sdk(),
            Profile::django_sdk_cie(),
            Profile::lg_2019_draft(),
        ] {
            assert_eq!(Profile::by_name(&p.name), Some(p));
        }
        assert_eq!(Profile::by_name("nope"), None);
    }

    #[test]
    fn interop_switches_stay_off_by_default() {
        let strict = Profile::default();
        assert!(strict.userinfo_require_iss_aud_exp);
        assert!(!strict.trust_mark_status_jwt);
        assert!(!strict.authz_id_token_claims_allowed);
        assert_eq!(strict.trust_mark_id_claim, TrustMarkIdClaim::Id);
        let django = Profile::django_sdk();
        assert!(!django.userinfo_require_iss_aud_exp);
        assert!(django.trust_mark_status_jwt);
        assert!(django.authz_id_token_claims_allowed);
        assert_eq!(django.trust_mark_id_claim, TrustMarkIdClaim::Either);
    }
}
