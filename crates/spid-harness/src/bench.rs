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
    /// `SAML` or `OIDC`: ratios are read against the group's whole login (its last figure);
    /// `RSA` is the raw OpenSSL floor; `run` and `jobs` the concurrency figures.
    pub group: &'static str,
    /// What was measured.
    pub name: &'static str,
    /// Operations per second.
    pub per_sec: f64,
    /// RSA-2048 private-key operations (signatures) in one operation, compared with the raw
    /// sign rate of the same run.
    pub signs: u32,
    /// RSA-2048 public-key operations (verifications) in one operation, compared with the raw
    /// verify rate of the same run.
    pub verifies: u32,
    /// Process CPU time (user + system) per operation, seconds, where measured.
    pub cpu_per_op: Option<f64>,
}

impl Figure {
    fn new(group: &'static str, name: &'static str, per_sec: f64) -> Figure {
        Figure {
            group,
            name,
            per_sec,
            signs: 0,
            verifies: 0,
            cpu_per_op: None,
        }
    }

    fn rsa(mut self, signs: u32, verifies: u32) -> Figure {
        self.signs = signs;
        self.verifies = verifies;
        self
    }
}

/// The raw OpenSSL RSA-2048 rates of a run: the physical floor of every signing and
/// verifying path.
#[derive(Debug, Clone, Copy)]
pub struct Floor {
    /// PKCS#1 v1.5 SHA-256 signatures a second, one key handle reused.
    pub sign: f64,
    /// Verifications a second, one key handle reused.
    pub verify: f64,
}

/// The raw floor among `figs` (the `RSA` group), if measured.
pub fn floor(figs: &[Figure]) -> Option<Floor> {
    let get = |name: &str| {
        figs.iter()
            .find(|f| f.group == "RSA" && f.name == name)
            .map(|f| f.per_sec)
    };
    Some(Floor {
        sign: get(RAW_SIGN)?,
        verify: get(RAW_VERIFY)?,
    })
}

const RAW_SIGN: &str = "OpenSSL: raw RSA-2048 sign (SHA-256)";
const RAW_VERIFY: &str = "OpenSSL: raw RSA-2048 verify (SHA-256)";

/// The lines `bench` prints: each figure's rate, its ratio to its group's whole login, and
/// for paths that sign or verify, the share of the raw RSA rate of the same run they reach
/// (signatures a second over raw signatures a second).
pub fn render(figs: &[Figure]) -> Vec<String> {
    let floor = floor(figs);
    figs.iter()
        .map(|f| {
            let base = figs
                .iter()
                .rfind(|g| g.group == f.group)
                .map(|g| g.per_sec)
                .unwrap_or(1.0);
            let mut line = format!(
                "{:<4} {:<52} {:>9.1} ops/s  {:>7.2}x",
                f.group,
                f.name,
                f.per_sec,
                f.per_sec / base
            );
            if let Some(fl) = floor {
                if f.signs > 0 {
                    line += &format!(
                        "  {:>5.1} % of raw sign",
                        100.0 * f.per_sec * f64::from(f.signs) / fl.sign
                    );
                } else if f.verifies > 0 {
                    line += &format!(
                        "  {:>5.1} % of raw verify",
                        100.0 * f.per_sec * f64::from(f.verifies) / fl.verify
                    );
                }
            }
            if let Some(c) = f.cpu_per_op {
                line += &format!("  {:.2} ms CPU/case", c * 1e3);
            }
            line
        })
        .collect()
}

/// Process CPU time so far (user + system), seconds.
pub fn cpu_seconds() -> f64 {
    // /proc/self/stat fields 14 and 15: utime and stime in clock ticks (100 a second on Linux).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let t = |i: usize| f.get(i)?.parse::<f64>().ok();
            Some((t(11)? + t(12)?) / 100.0)
        })
        .unwrap_or(0.0)
}

/// The raw OpenSSL RSA-2048 sign and verify rates with `key` (a reused handle: the floor).
fn raw_rsa(n: u32, key: &openssl::pkey::PKey<openssl::pkey::Private>) -> anyhow::Result<Floor> {
    use openssl::hash::MessageDigest;
    use openssl::sign::{Signer, Verifier};
    let msg = [0x5au8; 512];
    let sign = || -> anyhow::Result<Vec<u8>> {
        let mut s = Signer::new(MessageDigest::sha256(), key)?;
        s.update(&msg)?;
        Ok(s.sign_to_vec()?)
    };
    let sig = sign()?;
    let verify = || -> anyhow::Result<bool> {
        let mut v = Verifier::new(MessageDigest::sha256(), key)?;
        v.update(&msg)?;
        Ok(v.verify(&sig)?)
    };
    anyhow::ensure!(verify()?, "raw RSA verify failed");
    Ok(Floor {
        sign: rate(n, || drop(sign())),
        verify: rate(n * 10, || drop(verify())),
    })
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

/// One honest SAML Response and everything needed to sign it at our IdP and validate it at our
/// SP, in-process: the fixture of the hot-path benches (`bench` and the instruction-count
/// bench, `examples/hot_paths.rs`).
pub struct SamlFixture {
    /// The embedded test credentials.
    pub creds: Credentials,
    now: chrono::DateTime<Utc>,
    cert: String,
    signed: String,
    b64: String,
    idp_md: metadata::EntityMetadata,
    policy: Policy,
    pending: PendingRequest,
}

const IDP_ENTITY: &str = "http://127.0.0.1:1";
const ACS: &str = "http://127.0.0.1:2/acs";
const SP_ENTITY: &str = "http://127.0.0.1:2/metadata";

impl SamlFixture {
    /// Builds the fixture and checks that the SP accepts its Response.
    pub fn new() -> anyhow::Result<SamlFixture> {
        let creds = Credentials::embedded()?;
        let now = spid_core::clock::now();
        let cert = creds.idp.cert_base64();
        let idp_md = metadata::EntityMetadata {
            entity_id: IDP_ENTITY.into(),
            signing_certs: vec![creds.idp.cert_der.clone()],
            idp: None,
            sp: None,
        };
        let policy = Policy {
            entity_id: SP_ENTITY.into(),
            acs_url: ACS.into(),
            skew: Duration::seconds(60),
            min_level: SpidLevel::L2,
            attribute_services: vec![],
        };
        let pending = PendingRequest {
            id: "_req".into(),
            issue_instant: spid_core::clock::parse_saml_instant(&saml_instant(now)).unwrap_or(now),
            idp_entity_id: IDP_ENTITY.into(),
            level: SpidLevel::L2,
            comparison: Comparison::Minimum,
            attribute_index: 0,
            purpose: None,
        };
        let mut fx = SamlFixture {
            creds,
            now,
            cert,
            signed: String::new(),
            b64: String::new(),
            idp_md,
            policy,
            pending,
        };
        fx.signed = fx.sign(SignParts::BOTH)?;
        fx.b64 = binding::encode_post(&fx.signed);
        // Sanity: the measured validation accepts.
        fx.validate()
            .map_err(|r| anyhow::anyhow!("bench response refused: {}", r.rule))?;
        Ok(fx)
    }

    /// The Response to sign, with fresh IDs as our IdP gives every Response (and so that no
    /// signature of an earlier iteration can be reused: the signer remembers recent ones).
    fn model(&self) -> ResponseModel {
        let now = self.now;
        ResponseModel {
            id: spid_core::saml::new_id(),
            issue_instant: now,
            in_response_to: "_req".into(),
            destination: ACS.into(),
            issuer: IDP_ENTITY.into(),
            status: StatusModel::success(),
            assertion: Some(AssertionModel {
                id: spid_core::saml::new_id(),
                issue_instant: now,
                issuer: IDP_ENTITY.into(),
                name_id: "_n".into(),
                name_qualifier: IDP_ENTITY.into(),
                recipient: ACS.into(),
                in_response_to: "_req".into(),
                confirmation_not_on_or_after: now + Duration::minutes(5),
                not_before: now,
                not_on_or_after: now + Duration::minutes(5),
                audience: SP_ENTITY.into(),
                authn_instant: now,
                session_index: None,
                authn_context_class_ref: SpidLevel::L2.uri().into(),
                attributes: vec![
                    ("spidCode".into(), "SPID-0000000001".into()),
                    ("fiscalNumber".into(), "TINIT-RSSMRA80A01H501U".into()),
                ],
            }),
        }
    }

    /// Builds the Response and signs `parts` of it as our IdP does; the XML.
    pub fn sign(&self, parts: SignParts) -> Result<String, spid_core::saml::dsig::DsigError> {
        sign_response(
            self.model().to_element(),
            &self.creds.idp,
            parts,
            Some(&self.cert),
        )
        .map(|e| e.to_xml())
    }

    /// The XML of the Response with both signatures.
    pub fn signed_xml(&self) -> &str {
        &self.signed
    }

    /// Validates the signed Response (POST binding, base64) as our SP does.
    pub fn validate(&self) -> Result<validator::Identity, Rejection> {
        validator::validate(
            Some(&self.b64),
            &self.policy,
            std::slice::from_ref(&self.idp_md),
            &mut Always(self.pending.clone()),
            &NoReplay,
            self.now,
        )
    }
}

/// Runs every measurement `n` times (HTTP logins `n / 10` times).
pub async fn run(n: u32) -> anyhow::Result<Vec<Figure>> {
    let fx = SamlFixture::new()?;
    let creds = &fx.creds;
    let sign = |parts| fx.sign(parts);
    let signed_both = fx.signed_xml();
    let mut figs = Vec::new();
    let fl = raw_rsa(n, &creds.idp.key)?;
    figs.push(Figure::new("RSA", RAW_SIGN, fl.sign).rsa(1, 0));
    figs.push(Figure::new("RSA", RAW_VERIFY, fl.verify).rsa(0, 1));
    figs.push(
        Figure::new(
            "SAML",
            "IdP: build + sign Assertion",
            rate(n, || {
                drop(sign(SignParts {
                    assertion: true,
                    response: false,
                }))
            }),
        )
        .rsa(1, 0),
    );
    figs.push(
        Figure::new(
            "SAML",
            "IdP: build + sign Assertion and Response",
            rate(n, || drop(sign(SignParts::BOTH))),
        )
        .rsa(2, 0),
    );
    figs.push(Figure::new(
        "SAML",
        "SP: strict XML parse only",
        rate(n, || drop(xml::parse(signed_both, &Limits::default()))),
    ));
    figs.push(
        Figure::new(
            "SAML",
            "SP: full validation (2 signatures)",
            rate(n, || drop(fx.validate())),
        )
        .rsa(0, 2),
    );
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
    figs.push(Figure::new(
        "SAML",
        "Harness: whole L2 login over HTTP (7 exchanges)",
        m as f64 / t.elapsed().as_secs_f64(),
    ));
    figs.extend(oidc(n, &users).await?);
    figs.extend(run_jobs(n, &pair, &users).await?);
    figs.extend(jobs(n, &users).await?);
    Ok(figs)
}

/// `run --side saml`'s catalogue against our pair at `--jobs` 1, 2 and 4: cases a second and
/// CPU per case (IdP, SP and harness share this process), with identical verdicts required.
/// The whole catalogue from 100 iterations on, else its first 16 cases.
async fn run_jobs(
    n: u32,
    pair: &InternalPair,
    users: &[spid_idp::users::User],
) -> anyhow::Result<Vec<Figure>> {
    let mut cases = crate::catalogue::embedded("saml")?;
    if n < 100 {
        cases.truncate(16);
    }
    let mut figs = Vec::new();
    let mut first: Option<Vec<(String, crate::runner::Outcome)>> = None;
    // --jobs 1 last: the base of the group's ratios.
    for (jobs, name) in [
        (4, "run --side saml --jobs 4 (cases/s)"),
        (2, "run --side saml --jobs 2 (cases/s)"),
        (1, "run --side saml --jobs 1 (cases/s)"),
    ] {
        let (t, cpu) = (Instant::now(), cpu_seconds());
        let results = runner::run_ordered(
            &cases,
            jobs,
            runner::moves_clock,
            async |c: &crate::catalogue::Case| runner::run_case(pair, c, users).await,
            |_| {},
        )
        .await;
        let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        let verdicts: Vec<_> = results.iter().map(|r| (r.id.clone(), r.outcome)).collect();
        match &first {
            None => first = Some(verdicts),
            Some(v) => anyhow::ensure!(
                *v == verdicts,
                "run --jobs {jobs} gave other verdicts than --jobs 4"
            ),
        }
        let mut f = Figure::new("run", name, cases.len() as f64 / secs);
        f.cpu_per_op = Some(cpu / cases.len() as f64);
        figs.push(f);
    }
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
        figs.push(Figure::new("jobs", name, cases.len() as f64 / secs));
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
        Figure::new(
            "OIDC",
            "OP: sign ID token (RS256)",
            rate(n, || {
                drop(sign_jws(&claims, &op_key, SigAlg::RS256, Some("JWT")))
            }),
        )
        .rsa(1, 0),
        Figure::new(
            "OIDC",
            "RP: verify + validate ID token",
            rate(n, || drop(verify_id())),
        )
        .rsa(0, 1),
        Figure::new(
            "OIDC",
            "OP: sign + encrypt userinfo (RSA-OAEP-256)",
            rate(n, || drop(seal())),
        ),
        Figure::new(
            "OIDC",
            "RP: decrypt + verify userinfo",
            rate(n, || drop(open())),
        ),
    ];
    let fed = crate::oidc::OidcFederation::start(Credentials::embedded()?).await?;
    let case = crate::oidc::sanity_case();
    let m = (n / 10).max(5);
    let t = Instant::now();
    for _ in 0..m {
        let r = fed.run_case(&case, users).await;
        anyhow::ensure!(r.passed(), "bench OIDC login failed: {:?}", r.note);
    }
    figs.push(Figure::new(
        "OIDC",
        "Harness: whole L2 login over HTTP (TA + OP + RP)",
        m as f64 / t.elapsed().as_secs_f64(),
    ));
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
