//! The CNS login: a smart card's authentication certificate, presented in the TLS handshake,
//! judged by an ordered table of small named rules; the identity is the fiscal code in its CN.
//!
//! The pipeline ([`CnsLogin::check`]): the presented chain is parsed (stage: codes
//! `cns.certificate.missing`, `cns.certificate.malformed`), [`rules::CARD_RULES`] run over it,
//! then the card's revocation sources are fetched (bounded; only for a card whose chain ends at
//! a configured CA, so an untrusted card cannot make us fetch anything) and
//! [`rules::REVOCATION_RULES`] judge them. The first failing rule decides.
//!
//! Revocation policy (hard fail): every source the card names is consulted — the CRL at its
//! distribution point and the OCSP responder in its authorityInfoAccess — and each must answer.
//! A CRL that cannot be fetched, does not verify or is past its nextUpdate refuses the card; an
//! OCSP responder that is unreachable, answers anything but a signed, fresh `successful`
//! response for this card, or answers `unknown`, refuses it too. A card naming no source at
//! all is refused. The TLS layer ([`listener`]) accepts any client certificate, so these rules,
//! not a TLS alert, decide, and the refused user gets a page with the rule code.

pub mod listener;
mod revocation;
pub mod rules;
#[cfg(test)]
mod tests;

use spid_core::clock::SharedClock;
use spid_core::Rule;
use std::fmt;
use std::time::Duration;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

pub use revocation::{Evidence, FetchError, OcspEvidence};
pub use rules::{Card, Ctx};

/// How the CNS login is set up.
#[derive(Debug, Clone)]
pub struct CnsConfig {
    /// The CAs a card must chain to (DER): a root, or issuing CAs as in the AgID trusted list.
    pub trusted_cas: Vec<Vec<u8>>,
    /// Whether CIE 3.0 authentication certificates (policy 1.3.76.47.4) are accepted besides
    /// CNS cards. Off: a CNS-only service.
    pub accept_cie: bool,
    /// Time source.
    pub clock: SharedClock,
    /// The whole fetch of one CRL or one OCSP answer.
    pub fetch_timeout: Duration,
    /// Largest CRL read.
    pub max_crl_bytes: usize,
    /// Largest OCSP response read.
    pub max_ocsp_bytes: usize,
    /// Most certificates a client may present, and longest chain built.
    pub max_chain: usize,
}

impl CnsConfig {
    /// A CNS-only service trusting `trusted_cas`: 5 s fetches, 1 MiB CRLs, 64 KiB OCSP
    /// answers, chains of at most 5.
    pub fn new(trusted_cas: Vec<Vec<u8>>, clock: SharedClock) -> CnsConfig {
        CnsConfig {
            trusted_cas,
            accept_cie: false,
            clock,
            fetch_timeout: Duration::from_secs(5),
            max_crl_bytes: 1024 * 1024,
            max_ocsp_bytes: 64 * 1024,
            max_chain: 5,
        }
    }
}

/// A refused card: the deciding rule and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The rule.
    pub rule: Rule,
    /// What was wrong, for the courtesy page and the logs.
    pub detail: String,
}

impl Refusal {
    /// A refusal by `rule`.
    pub fn new(rule: Rule, detail: impl Into<String>) -> Refusal {
        Refusal {
            rule,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule.code(), self.detail)
    }
}

impl std::error::Error for Refusal {}

/// Which profile an accepted certificate follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardProfile {
    /// A CNS authentication certificate (policy 1.3.76.16.2.1).
    Cns,
    /// A CIE 3.0 authentication certificate (policy 1.3.76.47.4).
    Cie,
}

/// An accepted card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CnsIdentity {
    /// The holder's fiscal code: the identity.
    pub fiscal_code: String,
    /// What follows the first `/` of the CN (`<card id>.<hash>`).
    pub card: String,
    /// The card's serial number, hex.
    pub serial: String,
    /// The card issuer's name.
    pub issuer: String,
    /// The profile.
    pub profile: CardProfile,
}

/// Setting the login up failed.
#[derive(Debug, thiserror::Error)]
pub enum CnsSetupError {
    /// A configured CA is not a DER certificate.
    #[error("trusted CA {index} is not a DER X.509 certificate")]
    TrustedCa {
        /// Its position in the list.
        index: usize,
    },
    /// The HTTP client for the revocation fetches could not be built.
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// The TLS configuration was refused.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// The CNS login: configuration and the client for revocation fetches.
#[derive(Debug, Clone)]
pub struct CnsLogin {
    cfg: CnsConfig,
    http: reqwest::Client,
}

impl CnsLogin {
    /// A login with `cfg`; every trusted CA must parse.
    pub fn new(cfg: CnsConfig) -> Result<CnsLogin, CnsSetupError> {
        for (index, der) in cfg.trusted_cas.iter().enumerate() {
            if X509Certificate::from_der(der).is_err() {
                return Err(CnsSetupError::TrustedCa { index });
            }
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(cfg.fetch_timeout)
            .build()?;
        Ok(CnsLogin { cfg, http })
    }

    /// The configuration.
    pub fn config(&self) -> &CnsConfig {
        &self.cfg
    }

    /// Judges the chain a client presented (DER, leaf first): [`judge_card`], the bounded
    /// fetch of the card's revocation sources, [`judge_revocation`].
    pub async fn check(&self, chain: &[Vec<u8>]) -> Result<CnsIdentity, Refusal> {
        let ctx = Ctx {
            cfg: &self.cfg,
            now: self.cfg.clock.now(),
        };
        let card = judge_card(chain, &ctx)?;
        // The chain rule passed, so there is an issuer; only now is anything fetched.
        let issuer = card_issuer(&card, &ctx)?;
        let evidence = revocation::gather(&self.http, &card.leaf, issuer, &self.cfg).await;
        judge_revocation(&card, &evidence, &ctx)
    }
}

fn card_issuer<'c, 'a>(card: &'c Card<'a>, ctx: &Ctx<'_>) -> Result<&'c rules::Cert<'a>, Refusal> {
    card.issuer(ctx.cfg.max_chain)
        .ok_or_else(|| Refusal::new(Rule::CnsChainUntrusted, "no chain to a configured CA"))
}

/// The first half of the judgement: the presented chain parsed (stage), then
/// [`rules::CARD_RULES`].
pub fn judge_card<'a>(chain: &'a [Vec<u8>], ctx: &Ctx<'a>) -> Result<Card<'a>, Refusal> {
    let card = Card::parse(chain, ctx.cfg)?;
    rules::run_card(rules::CARD_RULES, &card, ctx)?;
    Ok(card)
}

/// The second half: [`rules::REVOCATION_RULES`] over what the card's sources answered, then
/// the identity.
pub fn judge_revocation(
    card: &Card<'_>,
    evidence: &Evidence,
    ctx: &Ctx<'_>,
) -> Result<CnsIdentity, Refusal> {
    let issuer = card_issuer(card, ctx)?;
    let r = rules::Revocation {
        card,
        issuer,
        evidence,
    };
    rules::run_revocation(rules::REVOCATION_RULES, &r, ctx)?;
    card.identity()
}
