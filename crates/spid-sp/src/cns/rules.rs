//! The card rules: ordered tables of small named checks over the parsed chain
//! ([`CARD_RULES`]) and over the fetched revocation evidence ([`REVOCATION_RULES`]), each entry
//! with the [`Rule`] codes it may return. The first failing entry decides.

use super::revocation::{self, Evidence};
use super::{CardProfile, CnsConfig, CnsIdentity, Refusal};
use chrono::{DateTime, Utc};
use openssl::x509::X509;
use spid_core::cns::{check_fiscal_code, split_cn, FiscalCodeError, POLICY_CIE_AUTH, POLICY_CNS};
use spid_core::Rule;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

/// The outcome of one rule.
pub type Check = Result<(), Refusal>;

/// What every rule may read besides its input.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The login's configuration.
    pub cfg: &'a CnsConfig,
    /// Now.
    pub now: DateTime<Utc>,
}

/// A certificate: its DER and its parse.
#[derive(Debug)]
pub struct Cert<'a> {
    /// DER.
    pub der: &'a [u8],
    /// The parse.
    pub x509: X509Certificate<'a>,
}

impl<'a> Cert<'a> {
    fn parse(der: &'a [u8]) -> Option<Cert<'a>> {
        match X509Certificate::from_der(der) {
            Ok(([], x509)) => Some(Cert { der, x509 }),
            _ => None,
        }
    }

    fn self_issued(&self) -> bool {
        self.x509.subject().as_raw() == self.x509.issuer().as_raw()
    }

    /// Whether `issuer`'s key verifies this certificate's signature (OpenSSL, any algorithm).
    pub(crate) fn signed_by(&self, issuer: &Cert<'_>) -> bool {
        let (Ok(child), Ok(parent)) = (X509::from_der(self.der), X509::from_der(issuer.der)) else {
            return false;
        };
        parent
            .public_key()
            .and_then(|k| child.verify(&k))
            .unwrap_or(false)
    }

    fn name(&self) -> String {
        self.x509.subject().to_string()
    }
}

/// A presented chain, parsed, with the configured CAs.
#[derive(Debug)]
pub struct Card<'a> {
    /// The card certificate.
    pub leaf: Cert<'a>,
    /// The other presented certificates.
    pub presented: Vec<Cert<'a>>,
    /// The configured CAs.
    pub trusted: Vec<Cert<'a>>,
}

/// Why no chain reaches a configured CA.
enum PathError {
    /// No certificate with the issuer's name, or the chain ends at an untrusted root.
    NoIssuer(String),
    /// Certificates with the issuer's name exist, and none verifies the signature.
    BadSignature(String),
}

impl<'a> Card<'a> {
    /// Parses the chain the client presented (stage: `cns.certificate.missing`,
    /// `cns.certificate.malformed`).
    pub fn parse(chain: &'a [Vec<u8>], cfg: &'a CnsConfig) -> Result<Card<'a>, Refusal> {
        let Some((leaf, rest)) = chain.split_first() else {
            return Err(Refusal::new(
                Rule::CnsCertificateMissing,
                "no client certificate in the TLS handshake",
            ));
        };
        if chain.len() > cfg.max_chain {
            return Err(Refusal::new(
                Rule::CnsCertificateMalformed,
                format!(
                    "{} certificates presented, at most {}",
                    chain.len(),
                    cfg.max_chain
                ),
            ));
        }
        let malformed = |i: usize| {
            Refusal::new(
                Rule::CnsCertificateMalformed,
                format!(
                    "presented certificate {} is not a DER X.509 certificate",
                    i + 1
                ),
            )
        };
        let leaf = Cert::parse(leaf).ok_or_else(|| malformed(0))?;
        let mut presented = Vec::new();
        for (i, der) in rest.iter().enumerate() {
            presented.push(Cert::parse(der).ok_or_else(|| malformed(i + 1))?);
        }
        // Checked at setup; one that no longer parses is simply not trusted.
        let trusted = cfg
            .trusted_cas
            .iter()
            .filter_map(|d| Cert::parse(d))
            .collect();
        Ok(Card {
            leaf,
            presented,
            trusted,
        })
    }

    fn is_trusted(&self, c: &Cert<'_>) -> bool {
        self.trusted.iter().any(|t| t.der == c.der)
    }

    /// The CAs from the card's issuer up to a configured CA (trusted ones preferred).
    fn path(&self, max: usize) -> Result<Vec<&Cert<'a>>, PathError> {
        let mut path: Vec<&Cert<'a>> = Vec::new();
        let mut cur = &self.leaf;
        for _ in 0..max.max(1) {
            let wanted = cur.x509.issuer().as_raw();
            let candidates: Vec<&Cert<'a>> = self
                .trusted
                .iter()
                .chain(self.presented.iter())
                .filter(|c| c.x509.subject().as_raw() == wanted)
                .collect();
            if candidates.is_empty() {
                return Err(PathError::NoIssuer(format!(
                    "no configured or presented CA named {}",
                    cur.x509.issuer()
                )));
            }
            let Some(issuer) = candidates.into_iter().find(|c| cur.signed_by(c)) else {
                return Err(PathError::BadSignature(format!(
                    "{} is not signed by the key of the CA named {}",
                    cur.name(),
                    cur.x509.issuer()
                )));
            };
            path.push(issuer);
            if self.is_trusted(issuer) {
                return Ok(path);
            }
            if issuer.self_issued() {
                return Err(PathError::NoIssuer(format!(
                    "the chain ends at {}, which is not a configured CA",
                    issuer.name()
                )));
            }
            cur = issuer;
        }
        Err(PathError::NoIssuer(format!(
            "no configured CA within {max} certificates"
        )))
    }

    /// The CA that issued the card (after [`CARD_RULES`] passed).
    pub(crate) fn issuer(&self, max: usize) -> Option<&Cert<'a>> {
        self.path(max).ok().and_then(|p| p.first().copied())
    }

    fn common_names(&self) -> Vec<&str> {
        self.leaf
            .x509
            .subject()
            .iter_common_name()
            .map(|a| a.as_str().unwrap_or(""))
            .collect()
    }

    /// The identity of a card every rule accepted.
    pub(crate) fn identity(&self) -> Result<CnsIdentity, Refusal> {
        let cn = self.common_names().first().copied().unwrap_or_default();
        let Some((cf, card)) = split_cn(cn) else {
            return Err(Refusal::new(Rule::CnsSubjectCn, "no '/' in the CN"));
        };
        let profile = if policies(&self.leaf).iter().any(|p| p == POLICY_CNS) {
            CardProfile::Cns
        } else {
            CardProfile::Cie
        };
        Ok(CnsIdentity {
            fiscal_code: cf.to_owned(),
            card: card.to_owned(),
            serial: self.leaf.x509.raw_serial_as_string(),
            issuer: self.leaf.x509.issuer().to_string(),
            profile,
        })
    }
}

fn ensure(cond: bool, rule: Rule, detail: impl FnOnce() -> String) -> Check {
    if cond {
        Ok(())
    } else {
        Err(Refusal::new(rule, detail()))
    }
}

/// A rule over the parsed chain.
pub type CardRule = (&'static [Rule], fn(&Card<'_>, &Ctx<'_>) -> Check);

/// Runs the card rules in order; the first refusal decides.
pub fn run_card(rules: &[CardRule], card: &Card<'_>, ctx: &Ctx<'_>) -> Check {
    for (codes, check) in rules {
        if let Err(r) = check(card, ctx) {
            debug_assert!(codes.contains(&r.rule), "{:?} not in {codes:?}", r.rule);
            return Err(r);
        }
    }
    Ok(())
}

/// Codes decided by stages rather than tables: parsing the presented chain.
pub const STAGE_RULES: &[Rule] = &[Rule::CnsCertificateMissing, Rule::CnsCertificateMalformed];

/// The rules over the card and its chain, in order.
pub const CARD_RULES: &[CardRule] = &[
    (&[Rule::CnsCertificateSelfSigned], self_signed),
    (&[Rule::CnsSignatureHash], signature_hash),
    (&[Rule::CnsChainUntrusted, Rule::CnsChainSignature], chain),
    (&[Rule::CnsChainCaExpired], ca_validity),
    (&[Rule::CnsValidityNotYet], not_yet_valid),
    (&[Rule::CnsValidityExpired], expired),
    (&[Rule::CnsKeyTooSmall], key_size),
    (&[Rule::CnsKeyUsage], key_usage),
    (&[Rule::CnsExtendedKeyUsage], extended_key_usage),
    (&[Rule::CnsPolicyMissing, Rule::CnsPolicyCieRefused], policy),
    (&[Rule::CnsSubjectCn], subject_cn),
    (
        &[Rule::CnsFiscalCodeSyntax, Rule::CnsFiscalCodeCheck],
        fiscal_code,
    ),
];

fn self_signed(c: &Card<'_>, _: &Ctx<'_>) -> Check {
    ensure(
        !(c.leaf.self_issued() && c.leaf.signed_by(&c.leaf)),
        Rule::CnsCertificateSelfSigned,
        || format!("{} signs itself", c.leaf.name()),
    )
}

/// Signature algorithms allowed on a card: RSA PKCS#1 v1.5 and PSS, ECDSA, with SHA-2.
const STRONG_SIGNATURES: &[&str] = &[
    "1.2.840.113549.1.1.11",
    "1.2.840.113549.1.1.12",
    "1.2.840.113549.1.1.13",
    "1.2.840.113549.1.1.10",
    "1.2.840.10045.4.3.2",
    "1.2.840.10045.4.3.3",
    "1.2.840.10045.4.3.4",
];

fn signature_hash(c: &Card<'_>, _: &Ctx<'_>) -> Check {
    let alg = c.leaf.x509.signature_algorithm.algorithm.to_id_string();
    ensure(
        STRONG_SIGNATURES.contains(&alg.as_str()),
        Rule::CnsSignatureHash,
        || format!("signed with {alg}, not SHA-256 or stronger"),
    )
}

fn chain(c: &Card<'_>, ctx: &Ctx<'_>) -> Check {
    match c.path(ctx.cfg.max_chain) {
        Ok(_) => Ok(()),
        Err(PathError::NoIssuer(d)) => Err(Refusal::new(Rule::CnsChainUntrusted, d)),
        Err(PathError::BadSignature(d)) => Err(Refusal::new(Rule::CnsChainSignature, d)),
    }
}

fn within(c: &Cert<'_>, now: DateTime<Utc>) -> bool {
    let v = c.x509.validity();
    let t = now.timestamp();
    v.not_before.timestamp() <= t && t <= v.not_after.timestamp()
}

fn ca_validity(c: &Card<'_>, ctx: &Ctx<'_>) -> Check {
    let path = c.path(ctx.cfg.max_chain).unwrap_or_default();
    match path.iter().find(|ca| !within(ca, ctx.now)) {
        Some(ca) => Err(Refusal::new(
            Rule::CnsChainCaExpired,
            format!(
                "CA {} is valid from {} to {}",
                ca.name(),
                ca.x509.validity().not_before,
                ca.x509.validity().not_after
            ),
        )),
        None => Ok(()),
    }
}

fn not_yet_valid(c: &Card<'_>, ctx: &Ctx<'_>) -> Check {
    let nb = &c.leaf.x509.validity().not_before;
    ensure(
        nb.timestamp() <= ctx.now.timestamp(),
        Rule::CnsValidityNotYet,
        || format!("notBefore {nb} is in the future"),
    )
}

fn expired(c: &Card<'_>, ctx: &Ctx<'_>) -> Check {
    let na = &c.leaf.x509.validity().not_after;
    ensure(
        ctx.now.timestamp() <= na.timestamp(),
        Rule::CnsValidityExpired,
        || format!("notAfter {na} has passed"),
    )
}

fn key_size(c: &Card<'_>, _: &Ctx<'_>) -> Check {
    let (ok, what) = match c.leaf.x509.public_key().parsed() {
        Ok(PublicKey::RSA(k)) => (k.key_size() >= 2048, format!("RSA-{}", k.key_size())),
        Ok(PublicKey::EC(k)) => (k.key_size() >= 256, format!("EC-{}", k.key_size())),
        Ok(_) => (false, "a key that is neither RSA nor EC".to_owned()),
        Err(_) => (false, "an unreadable key".to_owned()),
    };
    ensure(ok, Rule::CnsKeyTooSmall, || format!("the card has {what}"))
}

fn key_usage(c: &Card<'_>, _: &Ctx<'_>) -> Check {
    match c.leaf.x509.key_usage() {
        Ok(Some(ku)) if ku.critical && ku.value.digital_signature() => Ok(()),
        Ok(Some(ku)) if !ku.value.digital_signature() => Err(Refusal::new(
            Rule::CnsKeyUsage,
            format!("keyUsage {} has no digitalSignature", ku.value),
        )),
        Ok(Some(_)) => Err(Refusal::new(Rule::CnsKeyUsage, "keyUsage is not critical")),
        Ok(None) => Err(Refusal::new(Rule::CnsKeyUsage, "no keyUsage")),
        Err(_) => Err(Refusal::new(
            Rule::CnsKeyUsage,
            "keyUsage unreadable or repeated",
        )),
    }
}

fn extended_key_usage(c: &Card<'_>, _: &Ctx<'_>) -> Check {
    match c.leaf.x509.extended_key_usage() {
        Ok(Some(e)) if e.value.client_auth => Ok(()),
        Ok(Some(_)) => Err(Refusal::new(
            Rule::CnsExtendedKeyUsage,
            "extendedKeyUsage has no clientAuth",
        )),
        Ok(None) => Err(Refusal::new(
            Rule::CnsExtendedKeyUsage,
            "no extendedKeyUsage",
        )),
        Err(_) => Err(Refusal::new(
            Rule::CnsExtendedKeyUsage,
            "extendedKeyUsage unreadable or repeated",
        )),
    }
}

/// The certificate's policy OIDs (empty: no certificatePolicies).
fn policies(c: &Cert<'_>) -> Vec<String> {
    c.x509
        .extensions()
        .iter()
        .filter_map(|e| match e.parsed_extension() {
            ParsedExtension::CertificatePolicies(ps) => Some(ps),
            _ => None,
        })
        .flatten()
        .map(|p| p.policy_id.to_id_string())
        .collect()
}

fn policy(c: &Card<'_>, ctx: &Ctx<'_>) -> Check {
    let ps = policies(&c.leaf);
    if ps.iter().any(|p| p == POLICY_CNS) {
        return Ok(());
    }
    if ps.iter().any(|p| p == POLICY_CIE_AUTH) {
        return ensure(ctx.cfg.accept_cie, Rule::CnsPolicyCieRefused, || {
            format!(
                "a CIE 3.0 authentication certificate ({POLICY_CIE_AUTH}) at a CNS-only service"
            )
        });
    }
    Err(Refusal::new(
        Rule::CnsPolicyMissing,
        if ps.is_empty() {
            "no certificatePolicies".to_owned()
        } else {
            format!(
                "policies {} hold neither {POLICY_CNS} nor {POLICY_CIE_AUTH}",
                ps.join(", ")
            )
        },
    ))
}

fn subject_cn(c: &Card<'_>, _: &Ctx<'_>) -> Check {
    let cns = c.common_names();
    match cns.as_slice() {
        [cn] => match split_cn(cn) {
            Some((_, rest)) if !rest.is_empty() => Ok(()),
            _ => Err(Refusal::new(
                Rule::CnsSubjectCn,
                format!("CN {cn} is not <fiscal code>/<card id>.<hash>"),
            )),
        },
        [] => Err(Refusal::new(
            Rule::CnsSubjectCn,
            "no commonName in the subject",
        )),
        _ => Err(Refusal::new(
            Rule::CnsSubjectCn,
            format!("{} commonNames in the subject", cns.len()),
        )),
    }
}

fn fiscal_code(c: &Card<'_>, _: &Ctx<'_>) -> Check {
    let cn = c.common_names().first().copied().unwrap_or_default();
    let cf = split_cn(cn).map(|(cf, _)| cf).unwrap_or(cn);
    match check_fiscal_code(cf) {
        Ok(()) => Ok(()),
        Err(FiscalCodeError::Syntax) => Err(Refusal::new(
            Rule::CnsFiscalCodeSyntax,
            format!("{cf} is not a 16-character upper-case fiscal code"),
        )),
        Err(e @ FiscalCodeError::CheckCharacter { .. }) => {
            Err(Refusal::new(Rule::CnsFiscalCodeCheck, format!("{cf}: {e}")))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Revocation.

/// The revocation rules' input: the card (its chain accepted) and what its sources answered.
#[derive(Debug)]
pub struct Revocation<'r, 'a> {
    /// The card.
    pub card: &'r Card<'a>,
    /// The card's issuing CA.
    pub issuer: &'r Cert<'a>,
    /// What the sources answered.
    pub evidence: &'r Evidence,
}

/// A rule over the revocation evidence.
pub type RevocationRule = (&'static [Rule], fn(&Revocation<'_, '_>, &Ctx<'_>) -> Check);

/// Runs the revocation rules in order; the first refusal decides.
pub fn run_revocation(rules: &[RevocationRule], r: &Revocation<'_, '_>, ctx: &Ctx<'_>) -> Check {
    for (codes, check) in rules {
        if let Err(x) = check(r, ctx) {
            debug_assert!(codes.contains(&x.rule), "{:?} not in {codes:?}", x.rule);
            return Err(x);
        }
    }
    Ok(())
}

/// The rules over the fetched CRL and OCSP answer, in order.
pub const REVOCATION_RULES: &[RevocationRule] = &[
    (&[Rule::CnsRevocationNoSource], revocation::no_source),
    (&[Rule::CnsCrlUnavailable], revocation::crl_available),
    (&[Rule::CnsCrlStale], revocation::crl_fresh),
    (&[Rule::CnsCrlRevoked], revocation::crl_not_revoked),
    (&[Rule::CnsOcspUnavailable], revocation::ocsp_available),
    (&[Rule::CnsOcspUnknown], revocation::ocsp_known),
    (&[Rule::CnsOcspRevoked], revocation::ocsp_not_revoked),
];
