//! ID token claims: typed access, SPID validation and `at_hash`.
//!
//! Signature verification is [`crate::oidc::jose::verify_jws`]'s job; this module takes the
//! verified claims and decides whether they are an acceptable SPID ID token.

use super::jose::{b64url_encode, numeric_date, SigAlg};
use super::profile::Profile;
use super::SpidLevel;
use crate::Rule;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An `aud` claim: one string or an array of strings (both are legal; SPID RPs must accept
/// both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// `"aud": "x"`.
    One(String),
    /// `"aud": ["x", …]`.
    Many(Vec<String>),
}

impl Audience {
    /// The audiences as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Audience::One(s) => vec![s.clone()],
            Audience::Many(v) => v.clone(),
        }
    }

    /// True if `s` is one of the audiences.
    pub fn contains(&self, s: &str) -> bool {
        match self {
            Audience::One(a) => a == s,
            Audience::Many(v) => v.iter().any(|a| a == s),
        }
    }
}

/// Why an ID token's claims were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    /// The claims are not a JSON object.
    #[error("claims are not a JSON object")]
    NotAnObject,
    /// A required claim is absent.
    #[error("missing claim {0}")]
    MissingClaim(&'static str),
    /// A claim has the wrong type or is empty.
    #[error("invalid claim {0}")]
    InvalidClaim(&'static str),
    /// `iss` is not the OP the RP called.
    #[error("issuer {found:?} is not {expected:?}")]
    IssuerMismatch {
        /// The issuer the RP expected.
        expected: String,
        /// The token's `iss`.
        found: String,
    },
    /// `aud` does not contain the RP's `client_id`.
    #[error("audience does not contain {client_id:?}")]
    AudienceMismatch {
        /// The RP's `client_id`.
        client_id: String,
    },
    /// `aud` contains an audience other than the `client_id` (profile-dependent).
    #[error("untrusted extra audience {0:?}")]
    UntrustedAudience(String),
    /// `exp` is past.
    #[error("expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The time used for the check.
        now: i64,
    },
    /// `nbf` is in the future.
    #[error("not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: i64,
        /// The time used for the check.
        now: i64,
    },
    /// `iat` is in the future.
    #[error("issued in the future at {iat} (now {now})")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: i64,
        /// The time used for the check.
        now: i64,
    },
    /// `nonce` differs from the one sent in the request.
    #[error("nonce mismatch")]
    NonceMismatch,
    /// `acr` is not one of the SPID level URIs.
    #[error("unknown acr {0:?}")]
    UnknownAcr(String),
    /// `acr` is below the level the RP requires.
    #[error("acr {got:?} below required {required:?}")]
    AcrTooLow {
        /// The minimum level.
        required: SpidLevel,
        /// The token's level.
        got: SpidLevel,
    },
    /// `at_hash` does not match the access token.
    #[error("at_hash does not match the access token")]
    AtHashMismatch,
}

impl IdTokenError {
    /// The rule that decided: one per claim for a missing or mistyped claim, otherwise the
    /// check that failed.
    pub fn rule(&self) -> Rule {
        match self {
            // verify_jws refuses a payload that is no JSON object as malformed, which the
            // RP answers with the signature rule; the same token gets the same rule here.
            IdTokenError::NotAnObject => Rule::OidcIdTokenSignature,
            IdTokenError::MissingClaim(name) | IdTokenError::InvalidClaim(name) => claim_rule(name),
            IdTokenError::IssuerMismatch { .. } => Rule::OidcIdTokenIss,
            IdTokenError::AudienceMismatch { .. } | IdTokenError::UntrustedAudience(_) => {
                Rule::OidcIdTokenAud
            }
            IdTokenError::Expired { .. } => Rule::OidcIdTokenExpired,
            IdTokenError::NotYetValid { .. } | IdTokenError::IssuedInFuture { .. } => {
                Rule::OidcIdTokenNotYetValid
            }
            IdTokenError::NonceMismatch => Rule::OidcIdTokenNonce,
            IdTokenError::UnknownAcr(_) => Rule::OidcAcrUnknown,
            IdTokenError::AcrTooLow { .. } => Rule::OidcAcrInsufficient,
            IdTokenError::AtHashMismatch => Rule::OidcIdTokenAtHash,
        }
    }
}

/// The rule for a missing or mistyped claim `name` (one of [`TYPED`]; this module names
/// no other claim in `MissingClaim`/`InvalidClaim`).
fn claim_rule(name: &str) -> Rule {
    match name {
        "iss" => Rule::OidcIdTokenClaimIss,
        "sub" => Rule::OidcIdTokenClaimSub,
        "aud" => Rule::OidcIdTokenClaimAud,
        "exp" => Rule::OidcIdTokenClaimExp,
        "iat" => Rule::OidcIdTokenClaimIat,
        "nbf" => Rule::OidcIdTokenClaimNbf,
        "nonce" => Rule::OidcIdTokenClaimNonce,
        "acr" => Rule::OidcIdTokenClaimAcr,
        "at_hash" => Rule::OidcIdTokenClaimAtHash,
        "jti" => Rule::OidcIdTokenClaimJti,
        // Unreachable: the module names only the claims above.
        _ => Rule::OidcIdTokenSignature,
    }
}

/// The claims [`validate_id_token_with`] types; the others go to [`IdToken::extra`].
const TYPED: [&str; 10] = [
    "iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "acr", "at_hash", "jti",
];

/// A validated SPID ID token.
#[derive(Debug, Clone, PartialEq)]
pub struct IdToken {
    /// Issuer (the OP entity id).
    pub iss: String,
    /// Subject (pairwise).
    pub sub: String,
    /// Audiences (string form normalised to a one-element list).
    pub aud: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before, when present.
    pub nbf: Option<i64>,
    /// The request nonce, echoed (absent only in an ID token from a refresh).
    pub nonce: Option<String>,
    /// The authentication level obtained.
    pub acr: SpidLevel,
    /// Access-token hash, when present.
    pub at_hash: Option<String>,
    /// Token id, when present.
    pub jti: Option<String>,
    /// Every other claim.
    pub extra: Map<String, Value>,
}

impl IdToken {
    /// Checks `at_hash` against `access_token`, hashing with the ID token's `alg`.
    pub fn check_at_hash(&self, access_token: &str, alg: SigAlg) -> Result<(), IdTokenError> {
        let got = self
            .at_hash
            .as_deref()
            .ok_or(IdTokenError::MissingClaim("at_hash"))?;
        if got == at_hash(access_token, alg) {
            Ok(())
        } else {
            Err(IdTokenError::AtHashMismatch)
        }
    }

    /// Checks that the obtained level is at least `min` (an RP requiring L2 accepts L2 and L3).
    pub fn check_level(&self, min: SpidLevel) -> Result<SpidLevel, IdTokenError> {
        if self.acr >= min {
            Ok(self.acr)
        } else {
            Err(IdTokenError::AcrTooLow {
                required: min,
                got: self.acr,
            })
        }
    }
}

/// The `at_hash` of `access_token` for an ID token signed with `alg`: the left half of the
/// hash (SHA-256/384/512 as the `alg` says) of its ASCII bytes, base64url without padding.
pub fn at_hash(access_token: &str, alg: SigAlg) -> String {
    let bytes = access_token.as_bytes();
    let digest: Vec<u8> = match alg.hash_len() {
        32 => openssl::sha::sha256(bytes).to_vec(),
        48 => openssl::sha::sha384(bytes).to_vec(),
        _ => openssl::sha::sha512(bytes).to_vec(),
    };
    b64url_encode(&digest[..digest.len() / 2])
}

/// What the RP expects of an ID token.
#[derive(Debug, Clone)]
pub struct IdTokenCheck<'a> {
    /// The OP issuer the RP sent the request to.
    pub issuer: &'a str,
    /// The RP `client_id`.
    pub client_id: &'a str,
    /// The nonce the RP put in the request object.
    pub nonce: &'a str,
    /// The ID token comes from a `refresh_token` grant: `nonce` may then be absent, since a
    /// refresh is no authentication request (OIDC Core 12.2, errata set 2); when present it
    /// must still be the original request's `nonce`.
    pub refreshed: bool,
    /// The current time.
    pub now: DateTime<Utc>,
    /// Tolerated clock skew.
    pub skew: Duration,
}

/// Validates ID token claims under [`Profile::rules_2023`]; see [`validate_id_token_with`].
pub fn validate_id_token(
    claims: &Value,
    expected_iss: &str,
    client_id: &str,
    nonce: &str,
    now: DateTime<Utc>,
    skew: Duration,
) -> Result<IdToken, IdTokenError> {
    let check = IdTokenCheck {
        issuer: expected_iss,
        client_id,
        nonce,
        refreshed: false,
        now,
        skew,
    };
    validate_id_token_with(claims, &check, &Profile::rules_2023())
}

fn string_claim(
    obj: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, IdTokenError> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(IdTokenError::InvalidClaim(name)),
    }
}

fn required_string(obj: &Map<String, Value>, name: &'static str) -> Result<String, IdTokenError> {
    string_claim(obj, name)?.ok_or(IdTokenError::MissingClaim(name))
}

fn date_claim(claims: &Value, name: &'static str) -> Result<Option<i64>, IdTokenError> {
    numeric_date(claims, name).map_err(|_| IdTokenError::InvalidClaim(name))
}

/// Validates ID token claims (already signature-checked) and types them.
///
/// Checks: `iss` = `check.issuer`; `sub` present; `aud` (string or array) contains
/// `client_id` and, if `profile.id_token_single_audience`, nothing else; `exp` present and
/// not past; `iat` present and not in the future; `nbf` not in the future (required if
/// `profile.id_token_require_nbf`); `nonce` equal (and present unless `check.refreshed`); `acr` one of the SPID URIs; `at_hash`
/// present if `profile.id_token_require_at_hash` (its value is checked by
/// [`IdToken::check_at_hash`], which needs the access token); `jti` present if
/// `profile.id_token_require_jti`. Skew applies to every time comparison.
pub fn validate_id_token_with(
    claims: &Value,
    check: &IdTokenCheck<'_>,
    profile: &Profile,
) -> Result<IdToken, IdTokenError> {
    let obj = claims.as_object().ok_or(IdTokenError::NotAnObject)?;
    let now = check.now.timestamp();
    let skew = check.skew.num_seconds().abs();

    let iss = required_string(obj, "iss")?;
    if iss != check.issuer {
        return Err(IdTokenError::IssuerMismatch {
            expected: check.issuer.into(),
            found: iss,
        });
    }
    let sub = required_string(obj, "sub")?;

    let aud: Audience = match obj.get("aud") {
        None => return Err(IdTokenError::MissingClaim("aud")),
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|_| IdTokenError::InvalidClaim("aud"))?
        }
    };
    if !aud.contains(check.client_id) {
        return Err(IdTokenError::AudienceMismatch {
            client_id: check.client_id.into(),
        });
    }
    let aud = aud.to_vec();
    if profile.id_token_single_audience {
        if let Some(extra) = aud.iter().find(|a| *a != check.client_id) {
            return Err(IdTokenError::UntrustedAudience(extra.clone()));
        }
    }

    let exp = date_claim(claims, "exp")?.ok_or(IdTokenError::MissingClaim("exp"))?;
    if now >= exp.saturating_add(skew) {
        return Err(IdTokenError::Expired { exp, now });
    }
    let iat = date_claim(claims, "iat")?.ok_or(IdTokenError::MissingClaim("iat"))?;
    if iat > now.saturating_add(skew) {
        return Err(IdTokenError::IssuedInFuture { iat, now });
    }
    let nbf = date_claim(claims, "nbf")?;
    match nbf {
        Some(nbf) if now.saturating_add(skew) < nbf => {
            return Err(IdTokenError::NotYetValid { nbf, now })
        }
        None if profile.id_token_require_nbf => return Err(IdTokenError::MissingClaim("nbf")),
        _ => {}
    }

    let got_nonce = if check.refreshed {
        string_claim(obj, "nonce")?
    } else {
        Some(required_string(obj, "nonce")?)
    };
    if got_nonce.as_deref().is_some_and(|n| n != check.nonce) {
        return Err(IdTokenError::NonceMismatch);
    }

    let acr_uri = required_string(obj, "acr")?;
    let acr = SpidLevel::from_uri(&acr_uri).ok_or(IdTokenError::UnknownAcr(acr_uri))?;

    let at_hash = string_claim(obj, "at_hash")?;
    if at_hash.is_none() && profile.id_token_require_at_hash {
        return Err(IdTokenError::MissingClaim("at_hash"));
    }
    let jti = string_claim(obj, "jti")?;
    if jti.is_none() && profile.id_token_require_jti {
        return Err(IdTokenError::MissingClaim("jti"));
    }

    let extra = obj
        .iter()
        .filter(|(k, _)| !TYPED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    Ok(IdToken {
        iss,
        sub,
        aud,
        exp,
        iat,
        nbf,
        nonce: got_nonce,
        acr,
        at_hash,
        jti,
        extra,
    })
}

#[cfg(test)]
mod tests;
