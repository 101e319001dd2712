//! Fixtures the fuzz targets share: the committed test credentials (`certs/`, the same ones
//! the seed generator in `tests/fuzz_seeds.rs` signs with, so seeded signatures verify here),
//! an honest signed SAML Response with the SP policy that accepts it, and an in-memory OpenID
//! federation (trust anchor, one intermediate, a relying party).

use chrono::{DateTime, Duration, TimeZone, Utc};
use spid_core::oidc::federation::{
    entity_configuration_url, sign_entity_statement, sign_trust_mark, EntityKeys, EntityStatement,
    FederationFetcher, Metadata, MetadataPolicy, TrustMark, TrustMarkEntry,
};
use spid_core::oidc::jose::{Jwks, SigAlg, SigningKey};
use spid_core::oidc::Profile;
use spid_core::saml::dsig::Credential;
use spid_core::saml::metadata::{self, EntityMetadata, IdpDescriptor};
use spid_core::saml::response::{sign_response, LoginParties, ResponseModel, SignParts};
use spid_core::saml::xml::{self, Element, Limits};
use spid_core::{Comparison, Rule, SpidLevel};
use spid_sp::validator::{PendingRequest, Policy, Rejection, ReplayCache, RequestLookup};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

pub const IDP_KEY: &str = include_str!("../../certs/idp.key.pem");
pub const IDP_CRT: &str = include_str!("../../certs/idp.crt.pem");
pub const SP_KEY: &str = include_str!("../../certs/sp.key.pem");
pub const SP_CRT: &str = include_str!("../../certs/sp.crt.pem");
pub const FOREIGN_KEY: &str = include_str!("../../certs/foreign.key.pem");
pub const FOREIGN_CRT: &str = include_str!("../../certs/foreign.crt.pem");

/// The SAML parties (the same names the seed generator uses).
pub const IDP: &str = "http://idp.test";
pub const SP: &str = "http://sp.test/metadata";
pub const ACS: &str = "http://sp.test/acs";
pub const REQ: &str = "_req1";

/// The time every fixture is issued at (a fixed instant keeps runs reproducible).
pub fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_772_359_200, 0).single().expect("time") // 2026-03-01T10:00:00Z
}

pub struct Creds {
    pub idp: Credential,
    pub sp: Credential,
    pub foreign: Credential,
}

pub fn creds() -> &'static Creds {
    static C: OnceLock<Creds> = OnceLock::new();
    C.get_or_init(|| {
        let c = |k: &str, c: &str| Credential::from_pem(k.as_bytes(), c.as_bytes()).expect("cred");
        Creds {
            idp: c(IDP_KEY, IDP_CRT),
            sp: c(SP_KEY, SP_CRT),
            foreign: c(FOREIGN_KEY, FOREIGN_CRT),
        }
    })
}

/// Lenient limits for documents the fixtures themselves produce.
pub fn big_limits() -> Limits {
    Limits {
        max_bytes: 4 << 20,
        max_depth: 1024,
        max_elements: 1 << 20,
        ..Limits::default()
    }
}

/// The honest Response model: level 2, two attributes.
pub fn honest_model() -> ResponseModel {
    ResponseModel::fixture(
        &LoginParties {
            idp: IDP,
            sp: SP,
            acs: ACS,
            request_id: REQ,
        },
        now(),
    )
}

/// The honest Response signed (Assertion and Response) by the IdP, as a tree.
pub fn honest_signed() -> &'static Element {
    static S: OnceLock<Element> = OnceLock::new();
    S.get_or_init(|| {
        let c = &creds().idp;
        sign_response(
            honest_model().to_element(),
            c,
            SignParts::BOTH,
            Some(&c.cert_base64()),
        )
        .expect("sign")
    })
}

/// The IdP's signed metadata (the signed foreign element of the faults vocabulary).
pub fn idp_metadata_xml() -> &'static str {
    static M: OnceLock<String> = OnceLock::new();
    M.get_or_init(|| {
        metadata::build_idp(
            &metadata::IdpMetadataConfig {
                entity_id: IDP.into(),
                sso_url: format!("{IDP}/sso"),
                slo_url: format!("{IDP}/slo"),
                organization_name: "Fuzz IdP".into(),
                organization_url: IDP.into(),
            },
            &creds().idp,
        )
        .expect("idp metadata")
    })
}

pub fn idp_metadata_element() -> &'static Element {
    static E: OnceLock<Element> = OnceLock::new();
    E.get_or_init(|| xml::parse(idp_metadata_xml(), &big_limits()).expect("parse metadata"))
}

pub fn policy() -> Policy {
    Policy {
        entity_id: SP.into(),
        acs_url: ACS.into(),
        skew: Duration::seconds(60),
        min_level: SpidLevel::L2,
        attribute_services: vec![(0, vec!["spidCode".into(), "fiscalNumber".into()])],
    }
}

pub fn idps() -> Vec<EntityMetadata> {
    vec![EntityMetadata {
        entity_id: IDP.into(),
        signing_certs: vec![creds().idp.cert_der.clone()],
        idp: Some(IdpDescriptor::default()),
        sp: None,
    }]
}

pub fn pending() -> PendingRequest {
    PendingRequest {
        id: REQ.into(),
        issue_instant: now(),
        idp_entity_id: IDP.into(),
        level: SpidLevel::L2,
        comparison: Comparison::Minimum,
        attribute_index: 0,
        purpose: None,
    }
}

/// The one pending request, consumed on first use.
pub struct OneRequest(pub Option<PendingRequest>);
impl RequestLookup for OneRequest {
    fn take(&mut self, id: &str) -> Result<PendingRequest, Rejection> {
        self.0
            .take()
            .filter(|p| p.id == id)
            .ok_or_else(|| Rejection::new(Rule::ResponseInResponseToUnknown, "unknown"))
    }
}

/// A replay cache for one validation.
#[derive(Default)]
pub struct Cache(pub Mutex<HashMap<String, DateTime<Utc>>>);
impl ReplayCache for Cache {
    fn insert(&self, id: &str, until: DateTime<Utc>, _now: DateTime<Utc>) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.into(), until)
            .is_none()
    }
}

// ------------------------------------------------------------------------------- federation

pub const TA: &str = "https://ta.example.it";
pub const SA: &str = "https://sa.example.it";
pub const RP: &str = "https://rp.example.it";
/// Federation documents are issued at this time; [`fed_now`] is ten seconds later.
pub const T0: i64 = 1_700_000_000;

pub fn fed_now() -> DateTime<Utc> {
    Utc.timestamp_opt(T0 + 10, 0).single().expect("time")
}

/// Federation keys: 0 = trust anchor (IdP key), 1 = intermediate (SP key), 2 = relying party
/// (foreign key).
pub fn fed_key(i: usize) -> &'static SigningKey {
    static K: OnceLock<[SigningKey; 3]> = OnceLock::new();
    let keys = K.get_or_init(|| {
        let k = |p: &str| SigningKey::from_pem(p.as_bytes()).expect("signing key");
        [k(IDP_KEY), k(SP_KEY), k(FOREIGN_KEY)]
    });
    &keys[i % 3]
}

pub fn fed_jwks(i: usize) -> Jwks {
    Jwks::new(vec![fed_key(i).public_jwk().expect("jwk")])
}

pub fn anchor() -> EntityKeys {
    EntityKeys::new(TA, fed_jwks(0))
}

fn obj(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// `<endpoint>?sub=<sub>`, as the resolver builds it.
pub fn fetch_url(superior: &str, sub: &str) -> String {
    let mut u = url::Url::parse(&format!("{superior}/fetch")).expect("url");
    u.query_pairs_mut().append_pair("sub", sub);
    u.into()
}

pub fn trust_mark_status_url() -> String {
    format!("{TA}/trust_mark_status")
}

fn superior_metadata(id: &str) -> serde_json::Value {
    serde_json::json!({"federation_entity": {
        "organization_name": id,
        "federation_fetch_endpoint": format!("{id}/fetch"),
        "federation_trust_mark_status_endpoint": format!("{id}/trust_mark_status"),
    }})
}

fn mark(sub: &str) -> TrustMarkEntry {
    let p = Profile::rules_2023();
    let m = TrustMark {
        id: format!("{TA}/openid_relying_party/public/"),
        iss: TA.into(),
        sub: sub.into(),
        iat: T0,
        exp: Some(T0 + 3600),
        other: Default::default(),
    };
    TrustMarkEntry {
        id: Some(m.id.clone()),
        trust_mark_type: None,
        trust_mark: sign_trust_mark(&m, fed_key(0), SigAlg::RS256, &p).expect("mark"),
        other: Default::default(),
    }
}

/// One document of the honest federation: where it is published, who signs it, its claims.
#[derive(Clone)]
pub struct FedDoc {
    pub url: String,
    pub signer: usize,
    pub claims: serde_json::Value,
}

/// The honest federation RP → SA → TA, unsigned (the targets sign after editing).
pub fn federation_docs() -> &'static [FedDoc] {
    static D: OnceLock<Vec<FedDoc>> = OnceLock::new();
    D.get_or_init(|| {
        let ec = |id: &str, key: usize, hint: Option<&str>, md: serde_json::Value| {
            let mut st = EntityStatement::new(id, id, T0, T0 + 3600, fed_jwks(key));
            st.authority_hints = hint.map(|h| vec![h.to_string()]);
            st.metadata = Some(Metadata(obj(md)));
            if id != TA {
                st.trust_marks = Some(vec![mark(id)]);
            }
            st
        };
        let es = |iss: &str, sub: &str, sub_key: usize, policy: serde_json::Value| {
            let mut st = EntityStatement::new(iss, sub, T0, T0 + 1800, fed_jwks(sub_key));
            st.metadata_policy = Some(MetadataPolicy(obj(policy)));
            st
        };
        let rp_md = serde_json::json!({
            "openid_relying_party": {
                "client_id": RP,
                "client_name": "RP",
                "redirect_uris": [format!("{RP}/callback")],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "private_key_jwt",
                "contacts": ["ops@rp.example.it"],
            },
            "federation_entity": {"organization_name": "RP"},
        });
        let ta_policy = serde_json::json!({"openid_relying_party": {
            "grant_types": {"subset_of": ["authorization_code", "refresh_token"]},
            "token_endpoint_auth_method": {"one_of": ["private_key_jwt"]},
            "contacts": {"add": ["ta@ta.example.it"]},
        }});
        let sa_policy = serde_json::json!({"openid_relying_party": {
            "client_name": {"value": "RP via SA"},
            "grant_types": {"subset_of": ["authorization_code"]},
            "contacts": {"add": ["sa@sa.example.it"]},
        }});
        let mut ta = EntityStatement::new(TA, TA, T0, T0 + 86400, fed_jwks(0));
        ta.metadata = Some(Metadata(obj(superior_metadata(TA))));
        let docs = [
            (entity_configuration_url(RP), 2, ec(RP, 2, Some(SA), rp_md)),
            (
                entity_configuration_url(SA),
                1,
                ec(SA, 1, Some(TA), superior_metadata(SA)),
            ),
            (fetch_url(SA, RP), 1, es(SA, RP, 2, sa_policy)),
            (fetch_url(TA, SA), 0, es(TA, SA, 1, ta_policy)),
            (entity_configuration_url(TA), 0, ta),
        ];
        docs.into_iter()
            .map(|(url, signer, st)| FedDoc {
                url,
                signer,
                claims: serde_json::to_value(&st).expect("claims"),
            })
            .collect()
    })
}

/// Signs claims as an entity statement with federation key `key`.
pub fn sign_claims(claims: &serde_json::Value, key: usize) -> Option<String> {
    spid_core::oidc::jose::sign_jws(
        claims,
        fed_key(key),
        SigAlg::RS256,
        Some(spid_core::oidc::federation::ENTITY_STATEMENT_TYP),
    )
    .ok()
}

/// The honest federation's documents signed, in [`federation_docs`] order.
pub fn federation_signed() -> &'static [String] {
    static S: OnceLock<Vec<String>> = OnceLock::new();
    S.get_or_init(|| {
        federation_docs()
            .iter()
            .map(|d| {
                let st = EntityStatement::from_claims(&d.claims).expect("statement");
                sign_entity_statement(&st, fed_key(d.signer), SigAlg::RS256).expect("sign")
            })
            .collect()
    })
}

/// A federation in memory: URL → body, and the trust mark status answer.
pub struct Net {
    pub docs: HashMap<String, String>,
    pub status: String,
}

impl FederationFetcher for Net {
    type Error = String;

    async fn get(&self, url: &str) -> Result<String, String> {
        self.docs
            .get(url)
            .cloned()
            .ok_or_else(|| "status 404".to_string())
    }

    async fn post_form(&self, url: &str, _pairs: &[(&str, &str)]) -> Result<String, String> {
        if url != trust_mark_status_url() {
            return Err("status 404".into());
        }
        Ok(self.status.clone())
    }
}

/// Runs a future that never waits (the in-memory fetcher answers at once).
pub fn block_on<T>(f: impl Future<Output = T>) -> T {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the in-memory fetcher never waits"),
    }
}
