//! Trust marks: signed JWTs (`id`, `iss`, `sub`, `iat`, optional `exp`, …) that a trust mark
//! issuer gives an entity. Static validation only (the `trust_mark_status` call is HTTP).

use super::{check_typ, EntityKeys, FederationError, TrustMarkEntry, TRUST_MARK_TYP};
use crate::oidc::jose::{self, JoseError, SigAlg, SigningKey};
use crate::oidc::profile::{Profile, TrustMarkIdClaim};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// The claims of a trust mark.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustMark {
    /// Trust mark identifier (`id`, or `trust_mark_type` in final OpenID Federation).
    pub id: String,
    /// Issuer.
    pub iss: String,
    /// Subject: the entity the mark is about.
    pub sub: String,
    /// Issued at.
    pub iat: i64,
    /// Expiry; SPID examples omit it.
    pub exp: Option<i64>,
    /// Every other claim (`logo_uri`, `ref`, `organization_type`, `id_code`, …).
    pub other: Map<String, Value>,
}

impl TrustMark {
    /// The claims as JSON, naming the identifier as `profile.trust_mark_id_claim` says
    /// (`id` for [`TrustMarkIdClaim::Id`] and [`TrustMarkIdClaim::Either`]).
    pub fn to_claims(&self, profile: &Profile) -> Value {
        let mut m = self.other.clone();
        let id_name = match profile.trust_mark_id_claim {
            TrustMarkIdClaim::TrustMarkType => "trust_mark_type",
            TrustMarkIdClaim::Id | TrustMarkIdClaim::Either => "id",
        };
        m.insert(id_name.into(), Value::String(self.id.clone()));
        m.insert("iss".into(), Value::String(self.iss.clone()));
        m.insert("sub".into(), Value::String(self.sub.clone()));
        m.insert("iat".into(), Value::from(self.iat));
        if let Some(exp) = self.exp {
            m.insert("exp".into(), Value::from(exp));
        }
        Value::Object(m)
    }
}

/// Signs a trust mark (`typ: trust-mark+jwt`).
pub fn sign_trust_mark(
    mark: &TrustMark,
    key: &SigningKey,
    alg: SigAlg,
    profile: &Profile,
) -> Result<String, FederationError> {
    Ok(jose::sign_jws(
        &mark.to_claims(profile),
        key,
        alg,
        Some(TRUST_MARK_TYP),
    )?)
}

fn string(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, FederationError> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JoseError::InvalidClaim(name.into()).into()),
    }
}

fn identifier(obj: &Map<String, Value>, profile: &Profile) -> Result<String, FederationError> {
    let id = string(obj, "id")?;
    let tmt = string(obj, "trust_mark_type")?;
    let found = match profile.trust_mark_id_claim {
        TrustMarkIdClaim::Id => id,
        TrustMarkIdClaim::TrustMarkType => tmt,
        TrustMarkIdClaim::Either => match (id, tmt) {
            (Some(a), Some(b)) if a != b => {
                return Err(FederationError::TrustMarkIdMismatch {
                    expected: a,
                    found: b,
                })
            }
            (a, b) => a.or(b),
        },
    };
    found.ok_or(FederationError::TrustMarkIdMissing)
}

/// Reads a `trust_mark_status` answer body: JSON `{"active": bool}` (SPID); with
/// `profile.trust_mark_status_jwt` also a JWS signed by `issuer` whose claims say
/// `status: "active"` (or `active: true`) — the django reference TA. None: unreadable.
pub fn trust_mark_status_active(
    body: &str,
    issuer: &EntityKeys,
    profile: &Profile,
) -> Option<bool> {
    let json = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("active").and_then(Value::as_bool));
    if json.is_some() || !profile.trust_mark_status_jwt {
        return json;
    }
    let (_, claims) = jose::verify_jws(body.trim(), &issuer.jwks, &profile.signing_algs).ok()?;
    Some(
        claims.get("status").and_then(Value::as_str) == Some("active")
            || claims.get("active").and_then(Value::as_bool) == Some(true),
    )
}

/// Statically validates a trust mark: signature with `issuer.jwks`, `typ`, `iss` =
/// `issuer.entity_id`, `sub` = `expected_sub`, an identifier, `iat`, and `exp` (required if
/// `profile.trust_mark_require_exp`, checked whenever present).
pub fn verify_trust_mark(
    token: &str,
    issuer: &EntityKeys,
    expected_sub: &str,
    profile: &Profile,
    now: DateTime<Utc>,
) -> Result<TrustMark, FederationError> {
    let (header, claims) = jose::verify_jws(token, &issuer.jwks, &profile.signing_algs)?;
    check_typ(&header, TRUST_MARK_TYP)?;
    jose::check_time_claims(&claims, now, profile.skew(), profile.trust_mark_require_exp)?;
    let obj = claims
        .as_object()
        .ok_or_else(|| FederationError::Claims("not an object".into()))?;
    let iss = string(obj, "iss")?.ok_or(JoseError::MissingClaim("iss".into()))?;
    if iss != issuer.entity_id {
        return Err(FederationError::TrustMarkIssuer {
            expected: issuer.entity_id.clone(),
            found: iss,
        });
    }
    let sub = string(obj, "sub")?.ok_or(JoseError::MissingClaim("sub".into()))?;
    if sub != expected_sub {
        return Err(FederationError::TrustMarkSubject {
            expected: expected_sub.into(),
            found: sub,
        });
    }
    let id = identifier(obj, profile)?;
    let iat = jose::numeric_date(&claims, "iat")?.ok_or(JoseError::MissingClaim("iat".into()))?;
    let exp = jose::numeric_date(&claims, "exp")?;
    let other = obj
        .iter()
        .filter(|(k, _)| {
            !["id", "trust_mark_type", "iss", "sub", "iat", "exp"].contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(TrustMark {
        id,
        iss,
        sub,
        iat,
        exp,
        other,
    })
}

/// Validates one `trust_marks` entry of an entity configuration: the JWT as in
/// [`verify_trust_mark`], and the identifier it is listed under equals the JWT's
/// (check-op 1.7: `id`/`sub`/`iss` consistency).
pub fn verify_trust_mark_entry(
    entry: &TrustMarkEntry,
    issuer: &EntityKeys,
    expected_sub: &str,
    profile: &Profile,
    now: DateTime<Utc>,
) -> Result<TrustMark, FederationError> {
    let mark = verify_trust_mark(&entry.trust_mark, issuer, expected_sub, profile, now)?;
    let listed = entry
        .id
        .as_ref()
        .or(entry.trust_mark_type.as_ref())
        .ok_or(FederationError::TrustMarkIdMissing)?;
    if *listed != mark.id {
        return Err(FederationError::TrustMarkIdMismatch {
            expected: listed.clone(),
            found: mark.id,
        });
    }
    Ok(mark)
}
