//! SPID OpenID Federation with intermediates (Soggetti Aggregatori) over loopback: our trust
//! anchor, intermediates served by the same authority type on their own ports, our OP and
//! relying parties of ours registered under them. The anchor allows one intermediate
//! (`max_path_length` 1), none between an OP and itself. Every refusal is asserted by its
//! rule and its reason.

use serde_json::{json, Value};
use spid_core::clock::Clock;
use spid_core::oidc::federation::{
    decode_entity_statement_unverified, entity_configuration_url, resolve_trust_chain,
    Intermediates, MetadataPolicy,
};
use spid_core::oidc::Profile;
use spid_core::SpidLevel;
use spid_harness::agent::Page;
use spid_harness::oidc::{login_url, Intermediate, OidcFederation, ServedRp};
use spid_harness::runner::{self, Behaviour, Credentials};
use spid_idp::oidc::ta::EntityKind;
use spid_idp::oidc::HttpFetcher;

async fn start() -> OidcFederation {
    OidcFederation::start(Credentials::embedded().unwrap())
        .await
        .unwrap()
}

/// An intermediate under the anchor whose statements carry `policy`, and a relying party
/// of ours under it.
async fn rp_under_intermediate(fed: &OidcFederation, policy: Value) -> (Intermediate, ServedRp) {
    let policy = MetadataPolicy(policy.as_object().cloned().unwrap());
    let sa = fed.start_intermediate(None, Some(policy)).await.unwrap();
    let rp = fed.start_rp_under(&sa.authority).await.unwrap();
    (sa, rp)
}

/// A login by mario.rossi at our OP through the login pages of our IdP, started at `rp`.
async fn login_at(fed: &OidcFederation, rp: &spid_sp::oidc::RelyingParty) -> Page {
    let users = spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap();
    let user = users.iter().find(|u| u.username == "mario.rossi");
    let mut ua = runner::user_agent().unwrap();
    runner::drive_login(
        &mut ua,
        &login_url(rp, fed.op.entity_id()),
        user,
        Behaviour::default(),
    )
    .await
    .unwrap()
}

/// The claims of the entity configuration `entity` serves.
async fn configuration(entity: &str) -> spid_core::oidc::federation::EntityStatement {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let jwt = http
        .get(entity_configuration_url(entity))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    decode_entity_statement_unverified(&jwt).unwrap()
}

/// The OP's refusal of an RP's authorization request: HTTP 400 at the OP, rule
/// `op.authz.client.untrusted`, `reason` in the page.
fn assert_untrusted_client(page: &Page, fed: &OidcFederation, reason: &str) {
    assert!(
        page.url.as_str().starts_with(fed.op.entity_id()),
        "{}",
        page.url
    );
    assert_eq!(page.status, 400, "{}", page.body);
    assert_eq!(
        page.spid_rule(),
        Some("op.authz.client.untrusted"),
        "{}",
        page.body
    );
    assert!(page.body.contains(reason), "{}", page.body);
}

#[tokio::test]
async fn anchor_and_intermediate_publish_the_federation_shape() {
    let fed = start().await;
    let sa: Intermediate = fed.start_intermediate(None, None).await.unwrap();
    let ta = configuration(fed.ta.entity_id()).await;
    assert_eq!(
        ta.constraints.and_then(|c| c.max_path_length),
        Some(1),
        "SPID example 1"
    );
    let intermediate_mark = fed.ta.trust_mark_id(EntityKind::Intermediate);
    assert_eq!(
        intermediate_mark,
        format!("{}/intermediate/public/", fed.ta.entity_id())
    );
    assert!(ta
        .trust_mark_issuers
        .is_some_and(|i| i.contains_key(&intermediate_mark)));

    let ec = configuration(sa.authority.entity_id()).await;
    assert_eq!(
        ec.authority_hints,
        Some(vec![fed.ta.entity_id().to_string()])
    );
    let marks = ec.trust_marks.unwrap();
    assert_eq!(marks[0].id.as_deref(), Some(intermediate_mark.as_str()));
    let fe = ec.metadata.unwrap().federation_entity().cloned().unwrap();
    assert_eq!(
        fe["federation_fetch_endpoint"],
        json!(format!("{}/fetch", sa.authority.entity_id()))
    );
    assert!(ec.constraints.is_none());
}

#[tokio::test]
async fn an_rp_under_an_intermediate_logs_in_with_the_intermediates_policy() {
    let fed = start().await;
    let policy = json!({"openid_relying_party": {
        "client_name": {"value": "RP aggregated by the test SA"},
        "contacts": {"add": ["sa@example.org"]},
        "token_endpoint_auth_method": {"one_of": ["private_key_jwt"]},
    }});
    let (sa, served) = rp_under_intermediate(&fed, policy).await;
    let rp = &served.rp;
    let ec = configuration(rp.entity_id()).await;
    assert_eq!(
        ec.authority_hints,
        Some(vec![sa.authority.entity_id().to_string()])
    );

    let page = login_at(&fed, rp).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.spid_rule().is_none());
    assert!(page.body.contains(SpidLevel::L2.uri()), "{}", page.body);

    // The OP registered the RP with the intermediate's policy applied over the anchor's.
    let md = fed.op.client_metadata(rp.entity_id()).unwrap();
    assert_eq!(md["client_name"], json!("RP aggregated by the test SA"));
    assert_eq!(md["contacts"], json!(["sa@example.org"]));
    assert_eq!(md["response_types"], json!(["code"]));
}

#[tokio::test]
async fn the_op_refuses_an_rp_breaking_its_intermediates_policy() {
    let fed = start().await;
    // Our RP asks RSA-OAEP-256 userinfo encryption.
    let policy = json!({"openid_relying_party": {
        "userinfo_encrypted_response_alg": {"one_of": ["RSA-OAEP"]},
    }});
    let (_sa, served) = rp_under_intermediate(&fed, policy).await;
    let page = login_at(&fed, &served.rp).await;
    assert_untrusted_client(
        &page,
        &fed,
        "openid_relying_party.userinfo_encrypted_response_alg: metadata violates one_of",
    );
    assert!(fed.op.client_metadata(served.rp.entity_id()).is_none());
}

#[tokio::test]
async fn two_intermediates_are_one_too_many_for_the_op() {
    let fed = start().await;
    let upper = fed.start_intermediate(None, None).await.unwrap();
    let lower = fed
        .start_intermediate(Some(&upper.authority), None)
        .await
        .unwrap();
    let served = fed.start_rp_under(&lower.authority).await.unwrap();
    let page = login_at(&fed, &served.rp).await;
    assert_untrusted_client(
        &page,
        &fed,
        &format!(
            "{} would be one intermediate too many (max_path_length 1)",
            upper.authority.entity_id()
        ),
    );
}

#[tokio::test]
async fn our_rp_refuses_an_op_under_an_intermediate() {
    let fed = start().await;
    let sa = fed.start_intermediate(None, None).await.unwrap();
    sa.authority.add_subordinate(
        fed.op.entity_id(),
        fed.op.federation_jwks(),
        EntityKind::OpenIdProvider,
    );
    fed.op.set_superior(sa.authority.entity_id());

    // The chain through the intermediate is sound: only the SPID rule refuses it.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let chain = resolve_trust_chain(
        &HttpFetcher(&http),
        fed.op.entity_id(),
        &fed.ta.keys(),
        &Profile::rules_2023(),
        fed.clock.now(),
        Intermediates::Allowed,
    )
    .await
    .unwrap();
    assert_eq!(chain.statements[1].iss, sa.authority.entity_id());

    let mut ua = runner::user_agent().unwrap();
    let page = ua.get(&fed.login_url()).await.unwrap();
    assert_eq!(page.status, 403, "{}", page.body);
    assert_eq!(page.spid_rule(), Some("oidc.op.untrusted"), "{}", page.body);
    assert!(
        page.body
            .contains("none is allowed between an OpenID Provider and the trust anchor"),
        "{}",
        page.body
    );
}
