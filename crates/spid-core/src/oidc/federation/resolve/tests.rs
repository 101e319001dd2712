use super::*;
use crate::oidc::federation::tests::{now, obj, profile, sign, K_INT as K_SA, K_LEAF, K_TA, T0};
use crate::oidc::federation::{
    sign_trust_mark, Constraints, Metadata, MetadataPolicy, PolicyError, TrustMark, TrustMarkEntry,
};
use crate::oidc::jose::SigAlg;
use crate::oidc::test_keys::{jwks, signing};
use serde_json::{json, Map};
use std::collections::HashMap;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

const TA: &str = "https://ta.example.it";
const SA: &str = "https://sa.example.it";
const SA2: &str = "https://sa2.example.it";
const RP: &str = "https://rp.example.it";
const K_SA2: usize = 2;

/// A federation in memory: URL → body, every URL asked in order, and the anchor's answer
/// about trust marks.
#[derive(Default)]
struct Net {
    docs: HashMap<String, String>,
    asked: Mutex<Vec<String>>,
    inactive: bool,
}

impl FederationFetcher for Net {
    type Error = String;

    async fn get(&self, url: &str) -> Result<String, String> {
        self.asked.lock().expect("log").push(url.to_string());
        self.docs
            .get(url)
            .cloned()
            .ok_or_else(|| "status 404".to_string())
    }

    async fn post_form(&self, url: &str, pairs: &[(&str, &str)]) -> Result<String, String> {
        self.asked.lock().expect("log").push(url.to_string());
        if url != format!("{TA}/trust_mark_status") || pairs.len() != 2 {
            return Err("status 404".into());
        }
        Ok(json!({ "active": !self.inactive }).to_string())
    }
}

impl Net {
    fn put(&mut self, url: String, body: String) {
        self.docs.insert(url, body);
    }

    /// A resolution that fails with one path tried: the error, and that path's error.
    fn single_failure(&self, entity: &str, i: Intermediates) -> (ResolveError, ResolveError) {
        let err = self.resolve(entity, i).expect_err("no chain");
        let attempts: Vec<ResolveError> = err.attempt_errors().cloned().collect();
        assert_eq!(attempts.len(), 1, "{err}");
        (err, attempts[0].clone())
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().expect("log").clone()
    }

    fn resolve(&self, entity: &str, i: Intermediates) -> Result<ResolvedChain, ResolveError> {
        block_on(resolve_trust_chain(
            self,
            entity,
            &EntityKeys::new(TA, jwks(K_TA)),
            &profile(),
            now(),
            i,
        ))
    }
}

/// Runs a future that never waits (the in-memory fetcher answers at once).
fn block_on<T>(f: impl Future<Output = T>) -> T {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the in-memory fetcher never waits"),
    }
}

/// The trust mark the anchor issues to `sub`.
fn mark(sub: &str) -> TrustMarkEntry {
    let m = TrustMark {
        id: format!("{TA}/openid_relying_party/public/"),
        iss: TA.into(),
        sub: sub.into(),
        iat: T0,
        exp: Some(T0 + 3600),
        other: Map::new(),
    };
    TrustMarkEntry {
        id: Some(m.id.clone()),
        trust_mark_type: None,
        trust_mark: sign_trust_mark(&m, &signing(K_TA), SigAlg::RS256, &profile()).expect("tm"),
        other: Map::new(),
    }
}

fn rp_metadata() -> Value {
    json!({
        "openid_relying_party": {
            "client_id": RP,
            "client_name": "RP",
            "redirect_uris": [format!("{RP}/callback")],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "private_key_jwt",
            "contacts": ["ops@rp.example.it"],
        },
        "federation_entity": {"organization_name": "RP"},
    })
}

fn op_metadata() -> Value {
    json!({"openid_provider": {"issuer": RP}, "federation_entity": {"organization_name": "OP"}})
}

/// What a superior publishes: its fetch endpoint (and the anchor its status endpoint).
fn superior_metadata(id: &str) -> Value {
    json!({"federation_entity": {
        "organization_name": id,
        "federation_fetch_endpoint": format!("{id}/fetch"),
        "federation_trust_mark_status_endpoint": format!("{id}/trust_mark_status"),
    }})
}

/// A configuration with a trust mark from the anchor.
fn ec(id: &str, key: usize, hints: &[&str], metadata: Value) -> String {
    let mut st = EntityStatement::new(id, id, T0, T0 + 3600, jwks(key));
    st.authority_hints = Some(hints.iter().map(|h| h.to_string()).collect());
    st.metadata = Some(Metadata(obj(metadata)));
    st.trust_marks = Some(vec![mark(id)]);
    sign(&st, key)
}

fn ta_ec(max_path_length: Option<u64>) -> String {
    let mut st = EntityStatement::new(TA, TA, T0, T0 + 86400, jwks(K_TA));
    st.metadata = Some(Metadata(obj(superior_metadata(TA))));
    st.constraints = max_path_length.map(|m| Constraints {
        max_path_length: Some(m),
        ..Default::default()
    });
    sign(&st, K_TA)
}

fn ta_policy() -> Value {
    json!({"openid_relying_party": {
        "grant_types": {"subset_of": ["authorization_code", "refresh_token"]},
        "token_endpoint_auth_method": {"one_of": ["private_key_jwt"]},
        "contacts": {"add": ["ta@ta.example.it"]},
    }})
}

fn sa_policy() -> Value {
    json!({"openid_relying_party": {
        "client_name": {"value": "RP via SA"},
        "grant_types": {"subset_of": ["authorization_code"]},
        "contacts": {"add": ["sa@sa.example.it"]},
    }})
}

/// The statement by `iss` (signed with `iss_key`) about `sub` (whose keys are `sub_key`).
fn es(iss: &str, iss_key: usize, sub: &str, sub_key: usize, policy: Value) -> String {
    let mut st = EntityStatement::new(iss, sub, T0, T0 + 1800, jwks(sub_key));
    st.metadata_policy = Some(MetadataPolicy(obj(policy)));
    sign(&st, iss_key)
}

fn ec_url(id: &str) -> String {
    entity_configuration_url(id)
}

fn es_url(superior: &str, sub: &str) -> String {
    fetch_url(&format!("{superior}/fetch"), sub).expect("url")
}

/// `leaf` under `superiors` (bottom-up; the last one sits directly under the anchor), each
/// superior serving its statement about the entity below; the anchor configuration with
/// `max_path_length`. The anchor's statements carry [`ta_policy`], the others [`sa_policy`].
fn federation(leaf_md: Value, superiors: &[(&str, usize)], max: Option<u64>) -> Net {
    let mut net = Net::default();
    let above: Vec<&str> = superiors.iter().map(|s| s.0).chain([TA]).collect();
    net.put(ec_url(RP), ec(RP, K_LEAF, &[above[0]], leaf_md));
    let mut below = (RP, K_LEAF);
    for (i, &(id, key)) in superiors.iter().enumerate() {
        net.put(
            ec_url(id),
            ec(id, key, &[above[i + 1]], superior_metadata(id)),
        );
        net.put(
            es_url(id, below.0),
            es(id, key, below.0, below.1, sa_policy()),
        );
        below = (id, key);
    }
    net.put(
        es_url(TA, below.0),
        es(TA, K_TA, below.0, below.1, ta_policy()),
    );
    net.put(ec_url(TA), ta_ec(max));
    net
}

fn rp_param<'a>(chain: &'a ResolvedChain, name: &str) -> Option<&'a Value> {
    chain.metadata.openid_relying_party()?.get(name)
}

#[test]
fn one_intermediate_resolves_after_the_mark_checks() {
    let net = federation(rp_metadata(), &[(SA, K_SA)], Some(1));
    let chain = net.resolve(RP, Intermediates::Allowed).expect("chain");
    let issuers: Vec<(&str, &str)> = chain
        .statements
        .iter()
        .map(|s| (s.iss.as_str(), s.sub.as_str()))
        .collect();
    assert_eq!(issuers, [(RP, RP), (SA, RP), (TA, SA), (TA, TA)]);
    assert_eq!(chain.exp, T0 + 1800);
    // The mark is checked on the first document, its status asked before any superior.
    assert_eq!(
        net.asked(),
        [
            ec_url(RP),
            ec_url(TA),
            format!("{TA}/trust_mark_status"),
            ec_url(SA),
            es_url(SA, RP),
            es_url(TA, SA),
        ]
    );
}

#[test]
fn policies_cascade_from_the_anchor_through_the_intermediate() {
    let net = federation(rp_metadata(), &[(SA, K_SA)], Some(1));
    let chain = net.resolve(RP, Intermediates::Allowed).expect("chain");
    assert_eq!(rp_param(&chain, "client_name"), Some(&json!("RP via SA")));
    // subset_of of both: the intersection.
    assert_eq!(
        rp_param(&chain, "grant_types"),
        Some(&json!(["authorization_code"]))
    );
    assert_eq!(
        rp_param(&chain, "contacts"),
        Some(&json!([
            "ops@rp.example.it",
            "ta@ta.example.it",
            "sa@sa.example.it"
        ]))
    );

    // The intermediate's own restriction binds its RPs.
    let mut net = federation(rp_metadata(), &[(SA, K_SA)], Some(1));
    let strict = json!({"openid_relying_party": {"client_name": {"one_of": ["Another RP"]}}});
    net.put(es_url(SA, RP), es(SA, K_SA, RP, K_LEAF, strict));
    let err = net
        .resolve(RP, Intermediates::Allowed)
        .expect_err("policy breach");
    assert!(
        err.attempt_errors().any(|e| matches!(
            e,
            ResolveError::Chain(FederationError::Policy(PolicyError::Violation {
                op: "one_of",
                ..
            }))
        )),
        "{err}"
    );
}

#[test]
fn two_intermediates_exceed_the_anchors_max_path_length() {
    let net = federation(rp_metadata(), &[(SA2, K_SA2), (SA, K_SA)], Some(1));
    let (err, why) = net.single_failure(RP, Intermediates::Allowed);
    assert_eq!(
        why,
        ResolveError::PathTooLong {
            entity: SA.into(),
            max: 1
        },
        "{err}"
    );
    assert!(err.to_string().contains("max_path_length 1"), "{err}");
    // The walk stopped before asking the second intermediate anything.
    assert!(!net.asked().contains(&ec_url(SA)), "{:?}", net.asked());

    // Chain validation enforces the anchor's constraint on its own as well.
    let chain = [
        net.docs[&ec_url(RP)].clone(),
        net.docs[&es_url(SA2, RP)].clone(),
        net.docs[&es_url(SA, SA2)].clone(),
        net.docs[&es_url(TA, SA)].clone(),
        net.docs[&ec_url(TA)].clone(),
    ];
    assert_eq!(
        validate_trust_chain(&chain, &EntityKeys::new(TA, jwks(K_TA)), &profile(), now()),
        Err(FederationError::PathTooLong { max: 1, actual: 2 })
    );

    // The limit is the anchor's: with 2, or none (the default bound), the same path resolves.
    for max in [Some(2), None] {
        let net = federation(rp_metadata(), &[(SA2, K_SA2), (SA, K_SA)], max);
        let chain = net.resolve(RP, Intermediates::Allowed).expect("chain");
        assert_eq!(chain.statements.len(), 5, "{max:?}");
    }
}

#[test]
fn hint_loops_are_cut() {
    let mut net = federation(rp_metadata(), &[(SA, K_SA)], Some(3));
    // SA → SA2 → SA: neither reaches the anchor.
    net.put(ec_url(SA), ec(SA, K_SA, &[SA2], superior_metadata(SA)));
    net.put(ec_url(SA2), ec(SA2, K_SA2, &[SA], superior_metadata(SA2)));
    net.put(es_url(SA2, SA), es(SA2, K_SA2, SA, K_SA, json!({})));
    let (err, why) = net.single_failure(RP, Intermediates::Allowed);
    assert_eq!(why, ResolveError::Loop(SA.into()), "{err}");
    assert_eq!(net.asked().len(), 3 + 4, "{:?}", net.asked());
}

#[test]
fn hints_per_level_and_fetches_are_capped() {
    // Ten hints: four are tried, the rest (here the one that works) never.
    let mut net = federation(rp_metadata(), &[(SA, K_SA)], Some(1));
    let bogus: Vec<String> = (0..9).map(|i| format!("https://x{i}.example.it")).collect();
    let mut hints: Vec<&str> = bogus.iter().map(String::as_str).collect();
    hints.push(SA);
    net.put(ec_url(RP), ec(RP, K_LEAF, &hints, rp_metadata()));
    let err = net.resolve(RP, Intermediates::Allowed).expect_err("capped");
    let errors: Vec<&ResolveError> = err.attempt_errors().collect();
    assert_eq!(
        errors[0],
        &ResolveError::HintsIgnored {
            entity: RP.into(),
            ignored: 6,
            cap: MAX_HINTS_PER_LEVEL
        }
    );
    assert_eq!(errors.len(), 1 + MAX_HINTS_PER_LEVEL, "{err}");
    assert!(errors[1..]
        .iter()
        .all(|e| matches!(e, ResolveError::Fetch { detail, .. } if detail == "status 404")));
    assert_eq!(net.asked().len(), 3 + MAX_HINTS_PER_LEVEL);
    assert!(!net.asked().contains(&ec_url(SA)));

    // The anchor is tried first wherever it is listed.
    let mut hints: Vec<&str> = bogus.iter().map(String::as_str).collect();
    hints.push(TA);
    net.put(ec_url(RP), ec(RP, K_LEAF, &hints, rp_metadata()));
    net.put(es_url(TA, RP), es(TA, K_TA, RP, K_LEAF, ta_policy()));
    net.asked.lock().expect("log").clear();
    let chain = net.resolve(RP, Intermediates::Allowed).expect("direct");
    assert_eq!(chain.statements.len(), 3);
    assert_eq!(net.asked().len(), 4);

    // Four intermediates naming each other: every path up to three long would be walked
    // without the fetch budget.
    let ring = [
        ("https://a.example.it", 0),
        ("https://b.example.it", 1),
        ("https://c.example.it", 2),
        ("https://d.example.it", 4),
    ];
    let mut net = federation(rp_metadata(), &[], Some(3));
    let ids: Vec<&str> = ring.iter().map(|r| r.0).collect();
    net.put(ec_url(RP), ec(RP, K_LEAF, &ids, rp_metadata()));
    for &(id, key) in &ring {
        let others: Vec<&str> = ids.iter().copied().filter(|o| *o != id).collect();
        net.put(ec_url(id), ec(id, key, &others, superior_metadata(id)));
        for &(sub, sub_key) in ring.iter().filter(|r| r.0 != id).chain([&(RP, K_LEAF)]) {
            net.put(es_url(id, sub), es(id, key, sub, sub_key, json!({})));
        }
    }
    let err = net.resolve(RP, Intermediates::Allowed).expect_err("budget");
    assert_eq!(
        err.attempt_errors().last(),
        Some(&ResolveError::FetchBudget(MAX_WALK_FETCHES)),
        "{err}"
    );
    assert_eq!(net.asked().len(), 3 + MAX_WALK_FETCHES);
}

#[test]
fn a_failing_hint_falls_back_to_the_next() {
    let mut net = federation(rp_metadata(), &[(SA, K_SA)], Some(1));
    net.put(
        ec_url(RP),
        ec(RP, K_LEAF, &["https://gone.example.it", SA], rp_metadata()),
    );
    let chain = net
        .resolve(RP, Intermediates::Allowed)
        .expect("second hint");
    assert_eq!(chain.statements[1].iss, SA);
}

#[test]
fn an_intermediate_without_a_fetch_endpoint_is_a_dead_end() {
    let mut net = federation(rp_metadata(), &[(SA, K_SA)], Some(1));
    net.put(
        ec_url(SA),
        ec(
            SA,
            K_SA,
            &[TA],
            json!({"federation_entity": {"organization_name": "SA"}}),
        ),
    );
    let (err, why) = net.single_failure(RP, Intermediates::Allowed);
    assert_eq!(
        why,
        ResolveError::MissingEndpoint {
            entity: SA.into(),
            endpoint: "federation_fetch_endpoint"
        },
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("https://sa.example.it publishes no federation_fetch_endpoint"),
        "{err}"
    );
}

#[test]
fn an_intermediate_needs_a_mark_from_the_anchor() {
    let mut net = federation(rp_metadata(), &[(SA, K_SA)], Some(1));
    let mut st = EntityStatement::new(SA, SA, T0, T0 + 3600, jwks(K_SA));
    st.authority_hints = Some(vec![TA.into()]);
    st.metadata = Some(Metadata(obj(superior_metadata(SA))));
    net.put(ec_url(SA), sign(&st, K_SA));
    let (err, why) = net.single_failure(RP, Intermediates::Allowed);
    assert_eq!(
        why,
        ResolveError::Federation {
            entity: SA.into(),
            source: FederationError::NoTrustMark
        },
        "{err}"
    );
}

#[test]
fn a_provider_under_an_intermediate_is_refused_when_forbidden() {
    let net = federation(op_metadata(), &[(SA, K_SA)], Some(1));
    let (err, why) = net.single_failure(RP, Intermediates::Forbidden);
    assert_eq!(why, ResolveError::IntermediateForbidden(SA.into()), "{err}");
    assert!(
        err.to_string()
            .contains("none is allowed between an OpenID Provider and the trust anchor"),
        "{err}"
    );
    // Refused before the intermediate is asked anything.
    assert_eq!(net.asked().len(), 3);
    // The chain itself is sound: the flag is what refuses it.
    assert!(net.resolve(RP, Intermediates::Allowed).is_ok());
    // Directly under the anchor it is fine.
    let net = federation(op_metadata(), &[], Some(1));
    assert!(net.resolve(RP, Intermediates::Forbidden).is_ok());
}

#[test]
fn no_valid_mark_costs_a_single_fetch() {
    let mut net = federation(rp_metadata(), &[(SA, K_SA)], Some(1));
    let mut st = EntityStatement::new(RP, RP, T0, T0 + 3600, jwks(K_LEAF));
    st.authority_hints = Some(vec![SA.into()]);
    st.metadata = Some(Metadata(obj(rp_metadata())));
    net.put(ec_url(RP), sign(&st, K_LEAF));
    assert_eq!(
        net.resolve(RP, Intermediates::Allowed).map(|_| ()),
        Err(ResolveError::Federation {
            entity: RP.into(),
            source: FederationError::NoTrustMark
        })
    );
    assert_eq!(net.asked(), [ec_url(RP)]);

    // A mark the anchor no longer vouches for: no superior is asked.
    let mut net = federation(rp_metadata(), &[(SA, K_SA)], Some(1));
    net.inactive = true;
    let err = net
        .resolve(RP, Intermediates::Allowed)
        .expect_err("inactive");
    assert!(
        matches!(&err, ResolveError::TrustMarkInactive { sub, .. } if sub == RP),
        "{err}"
    );
    assert!(err.to_string().contains("not active"));
    assert_eq!(net.asked().len(), 3);
}

#[test]
fn the_anchor_configuration_must_be_signed_with_the_known_keys() {
    let mut net = federation(rp_metadata(), &[(SA, K_SA)], Some(1));
    let mut st = EntityStatement::new(TA, TA, T0, T0 + 3600, jwks(K_SA));
    st.metadata = Some(Metadata(obj(superior_metadata(TA))));
    net.put(ec_url(TA), sign(&st, K_SA));
    assert!(matches!(
        net.resolve(RP, Intermediates::Allowed),
        Err(ResolveError::Federation { entity, source: FederationError::Jose(_) }) if entity == TA
    ));
}

#[test]
fn a_configuration_about_another_entity_is_refused() {
    let mut net = federation(rp_metadata(), &[(SA, K_SA)], Some(1));
    let other = "https://other.example.it";
    net.put(ec_url(other), net.docs[&ec_url(RP)].clone());
    assert_eq!(
        net.resolve(other, Intermediates::Allowed).map(|_| ()),
        Err(ResolveError::WrongSubject {
            url: ec_url(other),
            found: RP.into()
        })
    );
}
