//! One honest-card-plus-one-edit unit test per `cns.*` rule, without HTTP: the issuer mints
//! the card and answers for its CRL and OCSP responder in process; the same stages and tables
//! as [`CnsLogin::check`] judge it.

use super::revocation::{self, Evidence, FetchError, OcspEvidence};
use super::rules::{self, Card, Ctx};
use super::*;
use spid_core::clock::FixedClock;
use spid_idp::cns::card::{Eku, KeyUsage, Presented, SignatureHash};
use spid_idp::cns::status::{CrlAnswer, OcspAnswer};
use spid_idp::cns::{
    CaId, Card as MintedCard, CardEdit, CardHolder, CardIssuer, CardPlan, Channels, CrlMode,
    OcspMode, OcspSigner,
};
use std::sync::Arc;

struct World {
    issuer: CardIssuer,
    cfg: CnsConfig,
}

fn world() -> World {
    let clock = Arc::new(FixedClock::new(spid_core::clock::now()));
    let issuer = CardIssuer::new("http://127.0.0.1:9", clock.clone()).expect("issuer");
    let cfg = CnsConfig::new(issuer.hierarchy().trust_anchors(), clock);
    World { issuer, cfg }
}

/// What the card's sources answer, asked in process.
fn evidence(
    w: &World,
    card: &Card<'_>,
    issuer: &rules::Cert<'_>,
    ca: CaId,
    serial: u64,
) -> Evidence {
    let crl = revocation::crl_url(&card.leaf).map(|url| {
        url.and_then(|_| match w.issuer.crl(ca, Some(serial)) {
            Ok(CrlAnswer::Der(d)) => Ok(d),
            Ok(CrlAnswer::HttpError(s)) => Err(FetchError::Status(s)),
            Err(e) => Err(FetchError::Transport(e.to_string())),
        })
    });
    let ocsp = revocation::ocsp_url(&card.leaf).map(|url| {
        let asked = revocation::cert_id(&card.leaf, issuer).ok();
        let answer = url.and_then(|_| {
            let req = asked
                .as_ref()
                .and_then(|a| revocation::ocsp_request(a).ok())
                .unwrap_or_default();
            match w.issuer.ocsp(ca, &req) {
                Ok(OcspAnswer::Der(d)) => Ok(d),
                Ok(OcspAnswer::HttpError(s)) => Err(FetchError::Status(s)),
                Ok(OcspAnswer::Hang) => Err(FetchError::Timeout(5)),
                Err(e) => Err(FetchError::Transport(e.to_string())),
            }
        });
        OcspEvidence { asked, answer }
    });
    Evidence { crl, ocsp }
}

/// The login's pipeline on `chain`, with in-process revocation answers.
fn judge_chain(
    w: &World,
    cfg: &CnsConfig,
    chain: &[Vec<u8>],
    minted: &MintedCard,
) -> Result<CnsIdentity, Refusal> {
    let ctx = Ctx {
        cfg,
        now: cfg.clock.now(),
    };
    let card = judge_card(chain, &ctx)?;
    let issuer = card
        .issuer(cfg.max_chain)
        .ok_or_else(|| Refusal::new(Rule::CnsChainUntrusted, "no issuer"))?;
    let ev = evidence(w, &card, issuer, minted.ca, minted.serial);
    judge_revocation(&card, &ev, &ctx)
}

fn judge(w: &World, plan: &CardPlan) -> Result<CnsIdentity, Refusal> {
    let card = w
        .issuer
        .issue(&CardHolder::mario_rossi(), plan)
        .expect("card");
    judge_chain(w, &w.cfg, &card.chain, &card)
}

/// A case: the rule, the edits of the honest card, and an edit of the presented chain.
type Case = (Rule, Vec<CardEdit>, fn(&mut Vec<Vec<u8>>));

fn keep(_: &mut Vec<Vec<u8>>) {}

fn cases() -> Vec<Case> {
    use CardEdit as E;
    vec![
        (
            Rule::CnsCertificateMissing,
            vec![E::Present {
                chain: Presented::Nothing,
            }],
            keep,
        ),
        (Rule::CnsCertificateMalformed, vec![], |c| {
            c[0].truncate(100)
        }),
        (Rule::CnsCertificateMalformed, vec![], |c| {
            c.push(b"not a certificate".to_vec())
        }),
        (Rule::CnsCertificateSelfSigned, vec![E::SelfSigned], keep),
        (
            Rule::CnsSignatureHash,
            vec![E::SignatureHash {
                hash: SignatureHash::Sha1,
            }],
            keep,
        ),
        (
            Rule::CnsChainUntrusted,
            vec![E::Present {
                chain: Presented::LeafOnly,
            }],
            keep,
        ),
        (
            Rule::CnsChainUntrusted,
            vec![E::Issuer { ca: CaId::Unknown }],
            keep,
        ),
        (
            Rule::CnsChainSignature,
            vec![E::Issuer { ca: CaId::Foreign }],
            keep,
        ),
        (
            Rule::CnsChainCaExpired,
            vec![E::Issuer { ca: CaId::Expired }],
            keep,
        ),
        (
            Rule::CnsValidityNotYet,
            vec![E::NotBefore { days: 2 }],
            keep,
        ),
        (
            Rule::CnsValidityExpired,
            vec![E::NotBefore { days: -400 }, E::NotAfter { days: -1 }],
            keep,
        ),
        (Rule::CnsKeyTooSmall, vec![E::KeyBits { bits: 1024 }], keep),
        (
            Rule::CnsKeyUsage,
            vec![E::KeyUsage {
                usages: vec![KeyUsage::NonRepudiation],
            }],
            keep,
        ),
        (
            Rule::CnsKeyUsage,
            vec![E::KeyUsage { usages: vec![] }],
            keep,
        ),
        (
            Rule::CnsExtendedKeyUsage,
            vec![E::ExtendedKeyUsage {
                usages: vec![Eku::ServerAuth],
            }],
            keep,
        ),
        (
            Rule::CnsPolicyMissing,
            vec![E::Policies { oids: vec![] }],
            keep,
        ),
        (
            Rule::CnsPolicyMissing,
            vec![E::Policies {
                oids: vec!["1.3.76.16.6".into()],
            }],
            keep,
        ),
        (
            Rule::CnsPolicyCieRefused,
            vec![E::Policies {
                oids: vec![spid_core::cns::POLICY_CIE_AUTH.into()],
            }],
            keep,
        ),
        (
            Rule::CnsSubjectCn,
            vec![E::SubjectCn {
                value: "RSSMRA80A01H501U".into(),
            }],
            keep,
        ),
        (
            Rule::CnsSubjectCn,
            vec![E::SubjectCn {
                value: "RSSMRA80A01H501U/".into(),
            }],
            keep,
        ),
        (
            Rule::CnsFiscalCodeSyntax,
            vec![E::FiscalCode {
                value: "rssmra80a01h501u".into(),
            }],
            keep,
        ),
        (
            Rule::CnsFiscalCodeCheck,
            vec![E::FiscalCode {
                value: "RSSMRA80A01H501A".into(),
            }],
            keep,
        ),
        (
            Rule::CnsRevocationNoSource,
            vec![E::NoCrlDistributionPoint, E::NoOcsp],
            keep,
        ),
        (
            Rule::CnsCrlUnavailable,
            vec![E::Crl {
                mode: CrlMode::Unavailable,
            }],
            keep,
        ),
        (
            Rule::CnsCrlStale,
            vec![E::Crl {
                mode: CrlMode::Stale,
            }],
            keep,
        ),
        (
            Rule::CnsCrlRevoked,
            vec![E::Revoked { on: Channels::Crl }],
            keep,
        ),
        (
            Rule::CnsCrlRevoked,
            vec![E::Revoked { on: Channels::Both }],
            keep,
        ),
        (
            Rule::CnsOcspUnavailable,
            vec![E::Ocsp {
                mode: OcspMode::InternalError,
            }],
            keep,
        ),
        (
            Rule::CnsOcspUnavailable,
            vec![E::Ocsp {
                mode: OcspMode::TryLater,
            }],
            keep,
        ),
        (
            Rule::CnsOcspUnavailable,
            vec![E::Ocsp {
                mode: OcspMode::Hang,
            }],
            keep,
        ),
        (
            Rule::CnsOcspUnknown,
            vec![E::Ocsp {
                mode: OcspMode::Unknown,
            }],
            keep,
        ),
        (
            Rule::CnsOcspRevoked,
            vec![E::Revoked { on: Channels::Ocsp }],
            keep,
        ),
    ]
}

#[test]
fn honest_card_is_accepted() {
    let w = world();
    let id = judge(&w, &CardPlan::honest()).expect("honest card");
    assert_eq!(id.fiscal_code, "RSSMRA80A01H501U");
    assert_eq!(id.profile, CardProfile::Cns);
    assert!(id.card.starts_with("6000000000"), "{}", id.card);
}

#[test]
fn every_cns_rule_refuses_its_edit() {
    let w = world();
    let mut wrong = Vec::new();
    for (rule, edits, chain_edit) in cases() {
        let plan = CardPlan {
            edits: edits.clone(),
        };
        let card = w
            .issuer
            .issue(&CardHolder::mario_rossi(), &plan)
            .expect("card");
        let mut chain = card.chain.clone();
        chain_edit(&mut chain);
        match judge_chain(&w, &w.cfg, &chain, &card) {
            Err(r) if r.rule == rule => {
                assert!(!r.detail.is_empty(), "{}", rule.code());
            }
            other => wrong.push(format!(
                "{} ({edits:?}): got {:?}",
                rule.code(),
                other.map(|i| i.fiscal_code).map_err(|r| r.to_string())
            )),
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn every_cns_rule_has_a_unit_test() {
    let tested: Vec<Rule> = cases().iter().map(|(r, _, _)| *r).collect();
    let decided: Vec<Rule> = rules::STAGE_RULES
        .iter()
        .copied()
        .chain(
            rules::CARD_RULES
                .iter()
                .flat_map(|(c, _)| c.iter().copied()),
        )
        .chain(
            rules::REVOCATION_RULES
                .iter()
                .flat_map(|(c, _)| c.iter().copied()),
        )
        .collect();
    let missing: Vec<&str> = Rule::ALL
        .iter()
        .filter(|r| r.code().starts_with("cns."))
        .filter(|r| !tested.contains(r) || !decided.contains(r))
        .map(|r| r.code())
        .collect();
    assert!(
        missing.is_empty(),
        "cns rules without a unit test or a table: {missing:?}"
    );
    for r in decided {
        assert!(r.code().starts_with("cns."), "{} in a CNS table", r.code());
    }
}

#[test]
fn accepted_variants() {
    let w = world();
    // The hash may contain '/': the CN splits on the first one.
    let id = judge(
        &w,
        &CardPlan::honest().with(CardEdit::CnHash {
            value: "i1ZpZfaCX/eKyikBfnF8to+M2T8=".into(),
        }),
    )
    .expect("hash with '/'");
    assert_eq!(id.fiscal_code, "RSSMRA80A01H501U");
    assert!(
        id.card.ends_with(".i1ZpZfaCX/eKyikBfnF8to+M2T8="),
        "{}",
        id.card
    );
    // A delegated OCSP responder.
    judge(
        &w,
        &CardPlan::honest().with(CardEdit::OcspSigner {
            signer: OcspSigner::Delegated,
        }),
    )
    .expect("delegated responder");
    // Only one source named: the other is not required.
    judge(&w, &CardPlan::honest().with(CardEdit::NoOcsp)).expect("CRL only");
    judge(
        &w,
        &CardPlan::honest().with(CardEdit::NoCrlDistributionPoint),
    )
    .expect("OCSP only");
    // A CIE 3.0 authentication certificate where CIE is accepted.
    let mut cfg = w.cfg.clone();
    cfg.accept_cie = true;
    let card = w
        .issuer
        .issue(&CardHolder::mario_rossi(), &CardPlan::cie())
        .expect("card");
    let id = judge_chain(&w, &cfg, &card.chain, &card).expect("CIE at a CIE service");
    assert_eq!(id.profile, CardProfile::Cie);
    // Issuing CAs configured instead of the root, as from the AgID trusted list.
    let mut cfg = w.cfg.clone();
    cfg.trusted_cas = w.issuer.hierarchy().issuing_cas();
    let card = w
        .issuer
        .issue(&CardHolder::mario_rossi(), &CardPlan::honest())
        .expect("card");
    judge_chain(&w, &cfg, &card.chain[..1], &card).expect("issuing CA configured");
    // Other issuing CAs.
    for ca in [CaId::Aruba, CaId::Regione] {
        judge(&w, &CardPlan::honest().with(CardEdit::Issuer { ca })).expect("issuer");
    }
}

#[test]
fn every_fixture_holder_logs_in_with_an_honest_card() {
    let w = world();
    for h in CardHolder::fixtures().expect("holders") {
        let card = w.issuer.issue(&h, &CardPlan::honest()).expect("card");
        let id = judge_chain(&w, &w.cfg, &card.chain, &card).expect("honest card");
        assert_eq!(id.fiscal_code, h.fiscal_code);
    }
}

#[test]
fn revocation_state_changes_at_runtime() {
    let w = world();
    let card = w
        .issuer
        .issue(&CardHolder::mario_rossi(), &CardPlan::honest())
        .expect("card");
    let rule = |w: &World| {
        judge_chain(w, &w.cfg, &card.chain, &card)
            .err()
            .map(|r| r.rule)
    };
    assert_eq!(rule(&w), None);
    w.issuer.revoke(&card, Channels::Ocsp);
    assert_eq!(rule(&w), Some(Rule::CnsOcspRevoked));
    w.issuer.unrevoke(&card);
    assert_eq!(rule(&w), None);
    w.issuer.set_crl_mode(&card, CrlMode::Stale);
    assert_eq!(rule(&w), Some(Rule::CnsCrlStale));
}

#[test]
fn garbage_never_panics() {
    let w = world();
    let chains: Vec<Vec<Vec<u8>>> = vec![
        vec![vec![]],
        vec![vec![0x30]],
        vec![vec![0x30, 0x82, 0xff, 0xff]],
        vec![vec![0u8; 4096]],
        vec![w.issuer.hierarchy().root_der.clone()],
        vec![w.issuer.hierarchy().root_der.clone(); 9],
    ];
    for c in chains {
        let card = Card::parse(&c, &w.cfg);
        if let Ok(card) = card {
            let ctx = Ctx {
                cfg: &w.cfg,
                now: w.cfg.clock.now(),
            };
            assert!(rules::run_card(rules::CARD_RULES, &card, &ctx).is_err());
        }
    }
}
