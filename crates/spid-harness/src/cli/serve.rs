//! `idp` and `sp`: our IdP (with the OP, the trust anchor and the card issuer) and our SP served alone.

use super::*;

/// `idp --cie-env`: the environment (only with `--profile cie`).
fn cie_idp_env(cie: bool, env: Option<&str>) -> anyhow::Result<spid_core::cie::CieEnv> {
    match env {
        None => Ok(spid_core::cie::CieEnv::Production),
        Some(_) if !cie => anyhow::bail!("--cie-env needs --profile cie"),
        Some(e) => spid_core::cie::CieEnv::parse(e).ok_or_else(|| {
            anyhow::anyhow!("--cie-env {e}: not production, preproduction or collaudo")
        }),
    }
}

/// The IdP's base URL for `env` on `listening` (`http://<ip>:<port>`): production keeps it,
/// the others take their loopback host (`http://collaudo.idserver.localhost:<port>`), which
/// needs a loopback listen address.
fn cie_env_base(env: spid_core::cie::CieEnv, listening: &str) -> anyhow::Result<String> {
    if env == spid_core::cie::CieEnv::Production {
        return Ok(listening.to_string());
    }
    let u = url::Url::parse(listening)
        .map_err(|e| anyhow::anyhow!("--listen {listening}: not an address ({e})"))?;
    let loopback = match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    anyhow::ensure!(
        loopback,
        "--cie-env {env}: {} resolves to loopback only, so --listen must be a loopback address (not {listening})",
        env.host_under(spid_core::cie::LOOPBACK_DOMAIN)
    );
    Ok(env.loopback_base(u.port().unwrap_or(80)))
}

/// The arguments of `idp`.
#[derive(clap::Args)]
pub struct IdpArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8088")]
    pub listen: String,
    /// SP metadata to register: files or URLs.
    #[arg(long = "sp-metadata")]
    pub sp_metadata: Vec<String>,
    /// Admin token for /admin/arm and /admin/sp.
    #[arg(long)]
    pub admin_token: Option<String>,
    /// Print the IdP metadata for `--listen` and exit.
    #[arg(long)]
    pub print_metadata: bool,
    /// Assert this level (1, 2, 3) on every login, whatever was granted.
    #[arg(long)]
    pub grant_level: Option<u8>,
    /// Also serve our reference SP at this address, trusting this IdP and trusted by it,
    /// for logging in by hand in a browser.
    #[arg(long)]
    pub demo_sp: Option<String>,
    /// Also run SPID OpenID Connect: a trust anchor at this address, the OpenID Provider
    /// at `<idp>/oidc/op` and, with `--demo-sp`, the relying party at `<sp>/oidc/rp`, all
    /// registered at the trust anchor.
    #[arg(long)]
    pub oidc_ta: Option<String>,
    /// Run the OpenID Provider at `<idp>/oidc/op` in the federation of this EXTERNAL
    /// trust anchor instead (entity id; its keys are taken from its entity configuration at
    /// start-up; it is named in the OP's `authority_hints`).
    #[arg(long, conflicts_with = "oidc_ta")]
    pub oidc_trust_anchor: Option<String>,
    /// The `trust_marks` array (JSON) the external anchor issued to the OP, published in
    /// its entity configuration; re-read at every request, so it may appear after start.
    #[arg(long, requires = "oidc_trust_anchor")]
    pub oidc_trust_marks: Option<PathBuf>,
    /// Write the OP's public federation keys (JWKS) here at start-up, for onboarding.
    #[arg(long, requires = "oidc_trust_anchor")]
    pub oidc_jwks_out: Option<PathBuf>,
    /// The OIDC reading of the OpenID Provider with `--oidc-trust-anchor`: rules-2023
    /// (default), cie (the CIE id reading), agid-check-op, django-sdk (the Python reference
    /// implementation as a peer), django-sdk-cie (its CIE profile), lg-2019-draft.
    #[arg(long, default_value = "rules-2023")]
    pub oidc_profile: String,
    /// Accept AuthnRequests from generic SAML stacks that cannot follow SPID to the letter
    /// (Issuer without Format entity/NameQualifier, NameIDPolicy AllowCreate).
    #[arg(long)]
    pub lenient_requests: bool,
    /// Directory with idp.key.pem / idp.crt.pem and foreign.* (default: embedded test keys).
    #[arg(long)]
    pub certs: Option<PathBuf>,
    /// `spid` (default) or `cie`: the CIE ID profile (entityID `<base>/idp/profile/SAML2/POST/SSO`,
    /// unsigned Shibboleth-shaped metadata at `/idp/shibboleth`, the CIE request rules, error
    /// table, Response shape and users; docs/cie.md).
    #[arg(long = "profile", default_value = "spid", value_parser = ["spid", "cie"])]
    pub idp_profile: String,
    /// CIE profile: send the Assertion Issuer without Format (the CIE documents show both).
    #[arg(long)]
    pub cie_assertion_issuer_without_format: bool,
    /// CIE profile: the CIE ID environment whose entityID shape to take (`production`,
    /// default; `preproduction` and `collaudo` put `preproduzione.` / `collaudo.` in front of
    /// `idserver.localhost`, loopback, as the real hosts differ; docs/cie.md).
    #[arg(long, value_parser = ["production", "preproduction", "collaudo"])]
    pub cie_env: Option<String>,
}

/// `idp`.
pub async fn cmd_idp(a: IdpArgs) -> anyhow::Result<ExitCode> {
    let IdpArgs {
        listen,
        sp_metadata,
        admin_token,
        print_metadata,
        grant_level,
        demo_sp,
        oidc_ta,
        oidc_trust_anchor,
        oidc_trust_marks,
        oidc_jwks_out,
        oidc_profile,
        lenient_requests,
        certs,
        idp_profile,
        cie_assertion_issuer_without_format,
        cie_env,
    } = a;

    let profile = spid_core::oidc::Profile::by_name(&oidc_profile)
        .ok_or_else(|| anyhow::anyhow!("unknown --oidc-profile {oidc_profile}"))?;
    let cie = idp_profile == "cie";
    let cie_env = cie_idp_env(cie, cie_env.as_deref())?;
    let creds = runner::Credentials::load(certs.as_deref())?;
    let idp_config = |base: &str, creds: &runner::Credentials| {
        let mut cfg = if cie {
            spid_idp::IdpConfig::cie(base, creds.idp.clone(), creds.foreign.clone())
        } else {
            spid_idp::IdpConfig::new(base, creds.idp.clone(), creds.foreign.clone())
        };
        cfg.cie_assertion_issuer_format = !cie_assertion_issuer_without_format;
        cfg
    };
    if print_metadata {
        let base = cie_env_base(cie_env, &format!("http://{listen}"))?;
        let idp = spid_idp::IdentityProvider::new(idp_config(&base, &creds))?;
        println!("{}", idp.metadata_xml());
        return Ok(ExitCode::SUCCESS);
    }
    let l = tokio::net::TcpListener::bind(&listen).await?;
    let base = cie_env_base(cie_env, &format!("http://{}", l.local_addr()?))?;
    let mut cfg = idp_config(&base, &creds);
    cfg.admin_token = admin_token;
    cfg.strict_requests = !lenient_requests;
    cfg.grant_level = grant_level.and_then(|n| spid_core::SpidLevel::parse(&n.to_string()));
    let idp = spid_idp::IdentityProvider::new(cfg)?;
    for p in sp_metadata {
        let id = idp.register_sp(&external::load_text(&p).await?)?;
        eprintln!("registered SP {id}");
    }
    eprintln!(
        "fake {} IdP {} at {base}/ — metadata at {} (register it with the SP)",
        if cie { "CIE ID" } else { "SPID" },
        idp.config().entity_id,
        idp.config().metadata_url()
    );
    let oidc = match oidc_ta {
        None => None,
        Some(addr) => {
            use spid_idp::oidc::ta::{EntityKind, TrustAnchor};
            let tl = tokio::net::TcpListener::bind(&addr).await?;
            let ta_base = format!("http://{}", tl.local_addr()?);
            let ta = TrustAnchor::with_key(
                &ta_base,
                idp.config().clock.clone(),
                crate::oidc_keys::ta()?,
            );
            let op = spid_idp::oidc::op::OpenIdProvider::with_keys(
                idp.op_config(),
                crate::oidc_keys::op()?,
            );
            let mark = ta.register(
                op.entity_id(),
                op.federation_jwks(),
                EntityKind::OpenIdProvider,
            )?;
            op.set_trust_anchor(ta.keys(), mark);
            eprintln!(
                "trust anchor at {ta_base}/ — OpenID Provider {}",
                op.entity_id()
            );
            let served = ta.clone();
            tokio::spawn(async move {
                let _ = served.serve(tl).await;
            });
            Some((ta, op))
        }
    };
    if let Some(addr) = demo_sp {
        // Our SP beside the IdP, each trusting the other, so a person can log in.
        let sl = tokio::net::TcpListener::bind(&addr).await?;
        let sp_base = format!("http://{}", sl.local_addr()?);
        let mut sp_cfg = spid_sp::SpConfig::new(&sp_base, creds.sp);
        let sp_profile = if cie {
            sp_cfg.attributes = spid_core::cie::MINIMUM_ATTRIBUTES
                .map(String::from)
                .to_vec();
            sp_cfg.cie_metadata = true;
            spid_core::cie::IdpProfile::Cie
        } else {
            spid_core::cie::IdpProfile::Spid
        };
        let sp = spid_sp::ServiceProvider::new(sp_cfg)?;
        sp.register_idp_as(idp.metadata_xml(), None, sp_profile)?;
        idp.register_sp(sp.metadata_xml())?;
        eprintln!("demo SP at {sp_base}/ — open {sp_base}/login in a browser (users: README; the OTP is on the page)");
        match &oidc {
            None => {
                tokio::spawn(async move {
                    let _ = sp.serve(sl).await;
                });
            }
            Some((ta, op)) => {
                use spid_idp::oidc::ta::EntityKind;
                let rp =
                    spid_sp::oidc::RelyingParty::with_keys(sp.rp_config(), crate::oidc_keys::rp()?);
                let mark = ta.register(
                    rp.entity_id(),
                    rp.federation_jwks(),
                    EntityKind::OpenIdRelyingParty,
                )?;
                rp.set_trust_anchor(ta.keys(), mark);
                let mut login = url::Url::parse(&format!("{}/login", rp.entity_id()))?;
                login.query_pairs_mut().append_pair("op", op.entity_id());
                eprintln!("demo RP {} — open {login} in a browser", rp.entity_id());
                tokio::spawn(async move {
                    let _ = sp.serve_with_rp(sl, &rp).await;
                });
            }
        }
    }
    if let Some(ta) = oidc_trust_anchor {
        let anchor = external_anchor(&ta, &profile).await?;
        let mut op_cfg = idp.op_config();
        op_cfg.profile = profile;
        op_cfg.trust_marks_file = oidc_trust_marks;
        let op = spid_idp::oidc::op::OpenIdProvider::with_keys(op_cfg, crate::oidc_keys::op()?);
        op.set_external_trust_anchor(anchor);
        if let Some(out) = oidc_jwks_out {
            std::fs::write(out, op.federation_jwks().to_value().to_string())?;
        }
        eprintln!("OpenID Provider {} under trust anchor {ta}", op.entity_id());
        idp.serve_with_op(l, &op).await?;
        return Ok(ExitCode::SUCCESS);
    }
    match oidc {
        Some((_, op)) => idp.serve_with_op(l, &op).await?,
        None => idp.serve(l).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The arguments of `sp`.
#[derive(clap::Args)]
pub struct SpArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: String,
    /// IdP metadata to trust: files or URLs (repeatable).
    #[arg(long = "idp-metadata")]
    pub idp_metadata: Vec<String>,
    /// Metadata of a CIE ID IdP to trust, judged by the CIE rules (files or URLs,
    /// repeatable; docs/cie.md). Configure the SP's attributes for CIE with `--cie-attributes`.
    #[arg(long = "cie-idp")]
    pub cie_idp: Vec<String>,
    /// Request the eIDAS minimum set (name, familyName, dateOfBirth, fiscalNumber), the only
    /// attributes a CIE IdP accepts, instead of the SPID set.
    #[arg(long)]
    pub cie_attributes: bool,
    /// Publish CIE SP metadata (the CIE model: administrative ContactPerson with the CIE
    /// extensions, Municipality, Company) requesting the eIDAS minimum set (implies
    /// `--cie-attributes`).
    #[arg(long)]
    pub cie: bool,
    /// Publish private-SP metadata (spid:Private, VAT number, billing contact) instead of
    /// public-SP metadata; with `--cie`, cie:Private, VATNumber, FiscalCode and NACE2Code.
    #[arg(long)]
    pub private: bool,
    /// Directory with sp.key.pem / sp.crt.pem (default: the embedded test credentials).
    #[arg(long)]
    pub certs: Option<PathBuf>,
    /// Print the SP metadata for `--listen` and exit.
    #[arg(long)]
    pub print_metadata: bool,
    /// Answer every request only after this many milliseconds (a slow SP, for measuring
    /// `check-sp --jobs`).
    #[arg(long, default_value_t = 0)]
    pub delay_ms: u64,
    /// Also serve the OpenID Connect relying party at `<sp>/oidc/rp`, in the federation of
    /// this EXTERNAL trust anchor (entity id; its keys are taken from its entity
    /// configuration at start-up; it is named in the RP's `authority_hints`).
    #[arg(long)]
    pub oidc_trust_anchor: Option<String>,
    /// The `trust_marks` array (JSON) the external anchor issued to the RP, published in
    /// its entity configuration; re-read at every request, so it may appear after start.
    #[arg(long, requires = "oidc_trust_anchor")]
    pub oidc_trust_marks: Option<PathBuf>,
    /// Write the RP's public federation keys (JWKS) here at start-up, for onboarding.
    #[arg(long, requires = "oidc_trust_anchor")]
    pub oidc_jwks_out: Option<PathBuf>,
    /// The SPID OIDC reading of the relying party: rules-2023 (default), cie (CIE id: scopes
    /// profile and email, claims in the ID token, a nest-encrypted ID token, iss on every
    /// authorization response), agid-check-op, django-sdk (the Python reference
    /// implementation as a peer), django-sdk-cie (its CIE profile), lg-2019-draft.
    #[arg(long, default_value = "rules-2023")]
    pub oidc_profile: String,
}

/// `sp`.
pub async fn cmd_sp(a: SpArgs) -> anyhow::Result<ExitCode> {
    let SpArgs {
        listen,
        idp_metadata,
        cie_idp,
        cie_attributes,
        cie,
        private,
        certs,
        print_metadata,
        delay_ms,
        oidc_trust_anchor,
        oidc_trust_marks,
        oidc_jwks_out,
        oidc_profile,
    } = a;

    let profile = spid_core::oidc::Profile::by_name(&oidc_profile)
        .ok_or_else(|| anyhow::anyhow!("unknown --oidc-profile {oidc_profile}"))?;
    let creds = runner::Credentials::load(certs.as_deref())?;
    let mut cfg = spid_sp::SpConfig::new(&format!("http://{listen}"), creds.sp.clone());
    if private {
        cfg.kind = spid_core::saml::metadata::SpKind::Private {
            vat_number: Some("IT12345678901".into()),
            // A private CIE SP names its fiscal code too (spid-sp-test cie-sp-private
            // requires VATNumber, FiscalCode and NACE2Code); the SPID metadata is unchanged.
            fiscal_code: cie.then(|| "12345678901".into()),
            billing_email: "fatturazione@example.org".into(),
            billing_company: "spid-harness reference SP".into(),
        };
    }
    if cie_attributes || cie {
        cfg.attributes = spid_core::cie::MINIMUM_ATTRIBUTES
            .map(String::from)
            .to_vec();
    }
    cfg.cie_metadata = cie;
    if print_metadata {
        println!("{}", spid_sp::ServiceProvider::new(cfg)?.metadata_xml());
        return Ok(ExitCode::SUCCESS);
    }
    let l = tokio::net::TcpListener::bind(&listen).await?;
    let base = format!("http://{}", l.local_addr()?);
    let kind = cfg.kind.clone();
    let attributes = cfg.attributes.clone();
    let mut cfg = spid_sp::SpConfig::new(&base, creds.sp);
    cfg.kind = kind;
    cfg.attributes = attributes;
    cfg.cie_metadata = cie;
    cfg.delay = std::time::Duration::from_millis(delay_ms);
    if certs.is_none() {
        // The committed test certificate names a placeholder entity ID: sign with a
        // fresh one whose subject uri is this SP's entityID (Avviso 29 v3), of its kind.
        cfg.credential = certs::sp_credential(&cfg.entity_id, &cfg.kind)?;
    }
    let sp = spid_sp::ServiceProvider::new(cfg)?;
    for p in idp_metadata {
        let id = sp.register_idp(&external::load_text(&p).await?, None)?;
        eprintln!("trusting IdP {id}");
    }
    for p in cie_idp {
        let text = external::load_text(&p).await?;
        let id = sp.register_idp_as(&text, None, spid_core::cie::IdpProfile::Cie)?;
        match spid_core::cie::CieEnv::of_entity_id(&id) {
            Some(env) => eprintln!("trusting CIE ID IdP {id} ({env})"),
            None => eprintln!(
                "trusting CIE ID IdP {id} (its entityID does not end in {}, as the real CIE ID ones do)",
                spid_core::cie::SSO_POST_PATH
            ),
        }
    }
    eprintln!("reference SP at {base}/ — metadata at {base}/metadata, login at {base}/login");
    let Some(ta) = oidc_trust_anchor else {
        sp.serve(l).await?;
        return Ok(ExitCode::SUCCESS);
    };
    let anchor = external_anchor(&ta, &profile).await?;
    let mut rp_cfg = sp.rp_config();
    rp_cfg.profile = profile;
    rp_cfg.trust_marks_file = oidc_trust_marks;
    let rp = spid_sp::oidc::RelyingParty::with_keys(rp_cfg, crate::oidc_keys::rp()?);
    rp.set_external_trust_anchor(anchor);
    if let Some(out) = oidc_jwks_out {
        std::fs::write(out, rp.federation_jwks().to_value().to_string())?;
    }
    eprintln!(
        "OIDC relying party {} under trust anchor {ta} — login at {}/login?op=<OP entity id>",
        rp.entity_id(),
        rp.entity_id()
    );
    sp.serve_with_rp(l, &rp).await?;
    Ok(ExitCode::SUCCESS)
}

/// The keys of an external trust anchor, from its self-signed entity configuration.
pub async fn external_anchor(
    entity_id: &str,
    profile: &spid_core::oidc::Profile,
) -> anyhow::Result<spid_core::oidc::federation::EntityKeys> {
    let entity_id = entity_id.trim_end_matches('/');
    let url = format!("{entity_id}/.well-known/openid-federation");
    let http = reqwest::Client::builder().no_proxy().build()?;
    let resp = http.get(&url).send().await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "{url}: status {}",
        resp.status()
    );
    let ec = resp.text().await?;
    let st = spid_core::oidc::federation::verify_entity_configuration(
        ec.trim(),
        profile,
        spid_core::clock::now(),
    )?;
    anyhow::ensure!(
        st.iss == entity_id,
        "{url}: iss {} is not {entity_id}",
        st.iss
    );
    Ok(spid_core::oidc::federation::EntityKeys::new(
        entity_id, st.jwks,
    ))
}
