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
    /// `SAML` or `OIDC`: ratios are read against the group's whole login (its last figure).
    pub group: &'static str,
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
    let now = spid_core::clock::now();
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
        group: "SAML",
        name: "IdP: build + sign Assertion",
        per_sec: rate(n, || {
            drop(sign(SignParts {
                assertion: true,
                response: false,
            }))
        }),
    });
    figs.push(Figure {
        group: "SAML",
        name: "IdP: build + sign Assertion and Response",
        per_sec: rate(n, || drop(sign(SignParts::BOTH))),
    });
    figs.push(Figure {
        group: "SAML",
        name: "SP: strict XML parse only",
        per_sec: rate(n, || drop(xml::parse(&signed_both, &Limits::default()))),
    });
    figs.push(Figure {
        group: "SAML",
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
        anyhow::ensure!(r.passed(), "bench login failed: {:?}", r.note);
    }
    figs.push(Figure {
        group: "SAML",
        name: "Harness: whole L2 login over HTTP (7 exchanges)",
        per_sec: m as f64 / t.elapsed().as_secs_f64(),
    });
    figs.extend(oidc(n, &users).await?);
    figs.extend(jobs(n, &users).await?);
    Ok(figs)
}

/// How far concurrent cases hide a slow SP: `check-sp` against our SP answering every request
/// after [`SLOW_SP_DELAY`], with `--jobs 8` and then `--jobs 1` (the base of the ratio).
pub const SLOW_SP_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

async fn jobs(n: u32, users: &[spid_idp::users::User]) -> anyhow::Result<Vec<Figure>> {
    let idp_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?
    };
    let creds = Credentials::embedded()?;
    let idp_md = spid_idp::IdentityProvider::new(spid_idp::IdpConfig::new(
        &format!("http://{idp_addr}"),
        creds.idp.clone(),
        creds.foreign.clone(),
    ))?
    .metadata_xml()
    .to_string();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sp_base = format!("http://{}", l.local_addr()?);
    let mut cfg = spid_sp::SpConfig::new(&sp_base, creds.sp);
    // check-sp requires the certificate's uri to be the entityID (Avviso 29 v3): the
    // committed test certificate names a placeholder, so sign with one for this SP.
    cfg.credential = crate::certs::sp_credential(&cfg.entity_id, &cfg.kind)?;
    cfg.delay = SLOW_SP_DELAY;
    let sp = spid_sp::ServiceProvider::new(cfg)?;
    sp.register_idp(&idp_md, None)?;
    let task = tokio::spawn(async move {
        let _ = sp.serve(l).await;
    });
    let cases: Vec<crate::catalogue::Case> = crate::catalogue::embedded("saml")?
        .into_iter()
        .filter(|c| c.scope == crate::catalogue::Scope::Any)
        // Enough cases that the two sequential honest logins weigh little.
        .take(if n >= 100 { 64 } else { 16 })
        .collect();
    let mut figs = Vec::new();
    for (jobs, name) in [
        (8, "check-sp --jobs 8, SP answering after 100 ms"),
        (1, "check-sp --jobs 1, SP answering after 100 ms"),
    ] {
        let opts = crate::external::CheckSpOptions {
            metadata: format!("{sp_base}/metadata"),
            login_url: url::Url::parse(&format!("{sp_base}/login"))?,
            idp_listen: idp_addr.to_string(),
            certs: None,
            lenient_requests: false,
            jobs,
            peer: None,
        };
        let t = Instant::now();
        let r = crate::external::check_sp(&opts, &cases, users, |_| {}).await;
        let secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(
            r.setup_error.is_none() && !r.failed(),
            "bench check-sp --jobs {jobs} did not pass: {}",
            r.setup_error.unwrap_or_default()
        );
        figs.push(Figure {
            group: "jobs",
            name,
            per_sec: cases.len() as f64 / secs,
        });
    }
    task.abort();
    Ok(figs)
}

/// The OIDC hot paths: the OP signing an ID token and sealing userinfo, the RP verifying
/// them, and whole logins through TA + OP + RP on loopback.
async fn oidc(n: u32, users: &[spid_idp::users::User]) -> anyhow::Result<Vec<Figure>> {
    use spid_core::oidc::claims::{validate_id_token_with, IdTokenCheck};
    use spid_core::oidc::jose::{
        decrypt_and_verify, sign_and_encrypt, sign_jws, verify_jws, DecryptionKey, JweAlg, JweEnc,
        Jwks, SigAlg, SigningKey,
    };
    use spid_core::oidc::Profile;
    let key = |bits| -> anyhow::Result<openssl::pkey::PKey<openssl::pkey::Private>> {
        Ok(openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(
            bits,
        )?)?)
    };
    let op_key = SigningKey::from_pkey(key(2048)?)?;
    let rp_enc = DecryptionKey::from_pkey(key(2048)?)?;
    let op_jwks = Jwks::new(vec![op_key.public_jwk()?]);
    let profile = Profile::rules_2023();
    let now = spid_core::clock::now();
    let (iss, client) = ("http://127.0.0.1:1/oidc/op", "http://127.0.0.1:2/oidc/rp");
    let nonce = "n".repeat(43);
    let claims = serde_json::json!({
        "iss": iss, "sub": "pairwise-sub", "aud": client, "acr": SpidLevel::L2.uri(),
        "at_hash": "x", "nonce": nonce, "iat": now.timestamp(), "nbf": now.timestamp(),
        "exp": now.timestamp() + 300, "jti": "j".repeat(36),
    });
    let id_token = sign_jws(&claims, &op_key, SigAlg::RS256, Some("JWT"))?;
    let check = IdTokenCheck {
        issuer: iss,
        client_id: client,
        nonce: &nonce,
        refreshed: false,
        now,
        skew: Duration::seconds(60),
    };
    let verify_id = || -> anyhow::Result<()> {
        let (_, c) = verify_jws(&id_token, &op_jwks, &profile.signing_algs)?;
        validate_id_token_with(&c, &check, &profile)?;
        Ok(())
    };
    verify_id()?;
    let (alg, enc) = (JweAlg::RsaOaep256, JweEnc::A256CbcHs512);
    let recipient = rp_enc.public_jwk()?;
    let seal = || sign_and_encrypt(&claims, &op_key, SigAlg::RS256, &recipient, alg, enc);
    let sealed = seal()?;
    let open = || {
        decrypt_and_verify(
            &sealed,
            &rp_enc,
            &[alg],
            &[enc],
            &op_jwks,
            &profile.signing_algs,
        )
    };
    open()?;
    let mut figs = vec![
        Figure {
            group: "OIDC",
            name: "OP: sign ID token (RS256)",
            per_sec: rate(n, || {
                drop(sign_jws(&claims, &op_key, SigAlg::RS256, Some("JWT")))
            }),
        },
        Figure {
            group: "OIDC",
            name: "RP: verify + validate ID token",
            per_sec: rate(n, || drop(verify_id())),
        },
        Figure {
            group: "OIDC",
            name: "OP: sign + encrypt userinfo (RSA-OAEP-256)",
            per_sec: rate(n, || drop(seal())),
        },
        Figure {
            group: "OIDC",
            name: "RP: decrypt + verify userinfo",
            per_sec: rate(n, || drop(open())),
        },
    ];
    let fed = crate::oidc::OidcFederation::start(Credentials::embedded()?).await?;
    let case = crate::oidc::sanity_case();
    let m = (n / 10).max(5);
    let t = Instant::now();
    for _ in 0..m {
        let r = fed.run_case(&case, users).await;
        anyhow::ensure!(r.passed(), "bench OIDC login failed: {:?}", r.note);
    }
    figs.push(Figure {
        group: "OIDC",
        name: "Harness: whole L2 login over HTTP (TA + OP + RP)",
        per_sec: m as f64 / t.elapsed().as_secs_f64(),
    });
    Ok(figs)
}

/// What `bench --load` measured.
pub struct LoadFigures {
    /// Logins attempted.
    pub logins: usize,
    /// At most this many in flight at once.
    pub concurrency: usize,
    /// Logins not accepted, or whose session the SP did not know afterwards.
    pub lost: usize,
    /// Wall time of the whole run.
    pub elapsed: std::time::Duration,
    /// Median and 99th-percentile latency of one whole login (SP `/login` to the SP's home
    /// page showing the session).
    pub p50: std::time::Duration,
    /// See [`LoadFigures::p50`].
    pub p99: std::time::Duration,
    /// Peak resident memory of this process (`VmHWM`), KiB; None off Linux.
    pub peak_rss_kib: Option<u64>,
}

/// The process's peak resident set (`VmHWM` in `/proc/self/status`), KiB.
pub fn peak_rss_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// `logins` whole SAML logins against our pair, at most `concurrency` at once, each in its own
/// user agent (its own cookie jar): a login is lost unless the SP accepts it and then shows
/// the session on its home page.
pub async fn load(logins: usize, concurrency: usize) -> anyhow::Result<LoadFigures> {
    let pair = std::sync::Arc::new(InternalPair::start(Credentials::embedded()?).await?);
    let users =
        spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).map_err(anyhow::Error::msg)?;
    let user = users
        .iter()
        .find(|u| u.username == "mario.rossi")
        .or_else(|| users.first())
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no fixture user"))?;
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..logins {
        let (pair, user, permits) = (pair.clone(), user.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.ok()?;
            let t = Instant::now();
            let mut ua = runner::user_agent().ok()?;
            let login = pair.login_url();
            let page = runner::drive_login(&mut ua, &login, Some(&user), Default::default())
                .await
                .ok()?;
            if page.status != 200 {
                return None;
            }
            let home = ua.get(&login.join("/").ok()?).await.ok()?;
            home.body.contains("Logged in via").then(|| t.elapsed())
        });
    }
    let mut latencies = Vec::with_capacity(logins);
    let mut lost = 0;
    while let Some(r) = tasks.join_next().await {
        match r.ok().flatten() {
            Some(d) => latencies.push(d),
            None => lost += 1,
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    Ok(LoadFigures {
        logins,
        concurrency,
        lost,
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
        peak_rss_kib: peak_rss_kib(),
    })
}

#[cfg(test)]
mod tests {
    /// The bench's own sanity checks (each measured path accepts) hold, and both groups end
    /// with their whole login, the base of their ratios.
    #[tokio::test(flavor = "multi_thread")]
    async fn bench_measures_both_protocols() {
        let figs = super::run(5).await.unwrap();
        for group in ["SAML", "OIDC"] {
            let last = figs.iter().rfind(|f| f.group == group).unwrap();
            assert!(last.name.starts_with("Harness: whole"), "{}", last.name);
        }
        assert!(figs.iter().all(|f| f.per_sec > 0.0));
    }
}
