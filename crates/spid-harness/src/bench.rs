//! `spid-harness bench`: throughput of the hot paths, measured in one run so the figures can be
//! read as ratios (they hold across machines better than absolute numbers).

use crate::runner::{self, Credentials, InternalPair};
use chrono::{Duration, Utc};
use spid_core::clock::saml_instant;
use spid_core::saml::binding;
use spid_core::saml::metadata;
use spid_core::saml::response::{
    sign_response, AssertionModel, ResponseModel, SignParts, StatusModel,
};
use spid_core::saml::xml::{self, Limits};
use spid_core::{Comparison, Rule, SpidLevel};
use spid_sp::validator::{self, PendingRequest, Policy, Rejection, ReplayCache, RequestLookup};
use std::time::Instant;

/// One measured operation.
pub struct Figure {
    /// What was measured.
    pub name: &'static str,
    /// Operations per second.
    pub per_sec: f64,
}

struct Always(PendingRequest);
impl RequestLookup for Always {
    fn take(&mut self, id: &str) -> Result<PendingRequest, Rejection> {
        (id == self.0.id)
            .then(|| self.0.clone())
            .ok_or_else(|| Rejection::new(Rule::ResponseInResponseToUnknown, "bench"))
    }
}
struct NoReplay;
impl ReplayCache for NoReplay {
    fn insert(&self, _: &str, _: chrono::DateTime<Utc>, _: chrono::DateTime<Utc>) -> bool {
        true
    }
}

fn rate(n: u32, f: impl FnMut()) -> f64 {
    let mut f = f;
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// Runs every measurement `n` times (HTTP logins `n / 10` times).
pub async fn run(n: u32) -> anyhow::Result<Vec<Figure>> {
    let creds = Credentials::embedded()?;
    let now = Utc::now();
    let idp_entity = "http://127.0.0.1:1";
    let acs = "http://127.0.0.1:2/acs";
    let sp_entity = "http://127.0.0.1:2/metadata";
    let model = |id: &str| ResponseModel {
        id: format!("_r{id}"),
        issue_instant: now,
        in_response_to: "_req".into(),
        destination: acs.into(),
        issuer: idp_entity.into(),
        status: StatusModel::success(),
        assertion: Some(AssertionModel {
            id: format!("_a{id}"),
            issue_instant: now,
            issuer: idp_entity.into(),
            name_id: "_n".into(),
            name_qualifier: idp_entity.into(),
            recipient: acs.into(),
            in_response_to: "_req".into(),
            confirmation_not_on_or_after: now + Duration::minutes(5),
            not_before: now,
            not_on_or_after: now + Duration::minutes(5),
            audience: sp_entity.into(),
            authn_instant: now,
            session_index: None,
            authn_context_class_ref: SpidLevel::L2.uri().into(),
            attributes: vec![
                ("spidCode".into(), "SPID-0000000001".into()),
                ("fiscalNumber".into(), "TINIT-RSSMRA80A01H501U".into()),
            ],
        }),
    };
    let cert = creds.idp.cert_base64();
    let sign = |parts| {
        sign_response(model("1").to_element(), &creds.idp, parts, Some(&cert)).map(|e| e.to_xml())
    };
    let signed_both = sign(SignParts::BOTH)?;
    let b64 = binding::encode_post(&signed_both);
    let idp_md = metadata::EntityMetadata {
        entity_id: idp_entity.into(),
        signing_certs: vec![creds.idp.cert_der.clone()],
        idp: None,
        sp: None,
    };
    let policy = Policy {
        entity_id: sp_entity.into(),
        acs_url: acs.into(),
        skew: Duration::seconds(60),
        min_level: SpidLevel::L2,
        attribute_services: vec![],
    };
    let pending = PendingRequest {
        id: "_req".into(),
        issue_instant: spid_core::clock::parse_saml_instant(&saml_instant(now)).unwrap_or(now),
        idp_entity_id: idp_entity.into(),
        level: SpidLevel::L2,
        comparison: Comparison::Minimum,
        attribute_index: 0,
    };
    // Sanity: the measured validation accepts.
    validator::validate(
        Some(&b64),
        &policy,
        std::slice::from_ref(&idp_md),
        &mut Always(pending.clone()),
        &NoReplay,
        now,
    )
    .map_err(|r| anyhow::anyhow!("bench response refused: {}", r.rule))?;
    let mut figs = Vec::new();
    figs.push(Figure {
        name: "IdP: build + sign Assertion",
        per_sec: rate(n, || {
            drop(sign(SignParts {
                assertion: true,
                response: false,
            }))
        }),
    });
    figs.push(Figure {
        name: "IdP: build + sign Assertion and Response",
        per_sec: rate(n, || drop(sign(SignParts::BOTH))),
    });
    figs.push(Figure {
        name: "SP: strict XML parse only",
        per_sec: rate(n, || drop(xml::parse(&signed_both, &Limits::default()))),
    });
    figs.push(Figure {
        name: "SP: full validation (2 signatures)",
        per_sec: rate(n, || {
            let _ = validator::validate(
                Some(&b64),
                &policy,
                std::slice::from_ref(&idp_md),
                &mut Always(pending.clone()),
                &NoReplay,
                now,
            );
        }),
    });
    // Whole logins over HTTP on loopback: SP /login, IdP pages, ACS.
    let pair = InternalPair::start(Credentials::embedded()?).await?;
    let users =
        spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).map_err(anyhow::Error::msg)?;
    let case = runner::sanity_case();
    let m = (n / 10).max(5);
    let t = Instant::now();
    for _ in 0..m {
        let r = runner::run_case(&pair, &case, &users).await;
        anyhow::ensure!(r.pass, "bench login failed: {:?}", r.note);
    }
    figs.push(Figure {
        name: "Harness: whole L2 login over HTTP (7 exchanges)",
        per_sec: m as f64 / t.elapsed().as_secs_f64(),
    });
    Ok(figs)
}
