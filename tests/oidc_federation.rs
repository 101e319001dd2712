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

/// What a [`Bystander`] answers whoever connects.
#[derive(Clone, Copy)]
enum Answer {
    /// `404`, connection closed.
    NotFound,
    /// `200` and an endless chunked body, as fast as it is read.
    Endless,
    /// `200` and a chunked body of one byte every 100 ms, never ending.
    Dripping,
}

/// A listener on 127.0.0.1 that records whether anything connected to it: the host a
/// request parameter names, which the server must not contact unless the federation knows it.
struct Bystander {
    url: String,
    contacted: std::sync::Arc<std::sync::atomic::AtomicBool>,
    _task: tokio::task::JoinHandle<()>,
}

impl Drop for Bystander {
    fn drop(&mut self) {
        self._task.abort();
    }
}

impl Bystander {
    async fn start(answer: Answer) -> Bystander {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let contacted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = contacted.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                seen.store(true, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/entity-statement+jwt\r\ntransfer-encoding: chunked\r\n\r\n";
                    match answer {
                        Answer::NotFound => {
                            let _ = s
                                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                .await;
                        }
                        Answer::Endless => {
                            let _ = s.write_all(head.as_bytes()).await;
                            let chunk = format!("4000\r\n{}\r\n", "e".repeat(0x4000));
                            while s.write_all(chunk.as_bytes()).await.is_ok() {}
                        }
                        Answer::Dripping => {
                            let _ = s.write_all(head.as_bytes()).await;
                            while s.write_all(b"1\r\ne\r\n").await.is_ok() {
                                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            }
                        }
                    }
                });
            }
        });
        Bystander {
            url,
            contacted,
            _task: task,
        }
    }

    fn contacted(&self) -> bool {
        self.contacted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn our_rp_never_contacts_an_op_the_anchor_does_not_know() {
    let fed = start().await;
    let host = Bystander::start(Answer::NotFound).await;
    let op = format!("{}/oidc/op", host.url);
    let mut ua = runner::user_agent().unwrap();
    let page = ua.get(&login_url(&fed.rp, &op)).await.unwrap();
    assert_eq!(page.status, 403, "{}", page.body);
    assert_eq!(page.spid_rule(), Some("oidc.op.unlisted"), "{}", page.body);
    assert!(!host.contacted(), "the RP fetched from an unknown OP");
}

#[tokio::test]
async fn our_op_never_contacts_a_client_the_anchor_does_not_know() {
    let fed = start().await;
    let host = Bystander::start(Answer::NotFound).await;
    let mut url = url::Url::parse(&format!("{}/authorization", fed.op.entity_id())).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &format!("{}/oidc/rp", host.url))
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("request", "a.b.c");
    let r = no_redirects().get(url).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-spid-rule"], "op.authz.client.unlisted");
    assert!(r.headers().get("location").is_none());
    assert!(!host.contacted(), "the OP fetched from an unknown client");
}

#[tokio::test]
async fn the_anchor_resolves_registered_entities_only() {
    let fed = start().await;
    let host = Bystander::start(Answer::NotFound).await;
    let mut url = url::Url::parse(&format!("{}/resolve", fed.ta.entity_id())).unwrap();
    url.query_pairs_mut()
        .append_pair("sub", &host.url)
        .append_pair("trust_anchor", fed.ta.entity_id());
    let r = no_redirects().get(url).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-spid-rule"], "ta.resolve.subject-unknown");
    assert!(
        !host.contacted(),
        "the anchor fetched from an unregistered subject"
    );
}

#[tokio::test]
async fn a_known_op_that_cannot_be_fetched_is_refused_in_summary() {
    let fed = start().await;
    let host = Bystander::start(Answer::Endless).await;
    let op = format!("{}/oidc/op", host.url);
    fed.ta
        .register(&op, fed.op.federation_jwks(), EntityKind::OpenIdProvider)
        .unwrap();
    let mut ua = runner::user_agent().unwrap();
    let page = ua.get(&login_url(&fed.rp, &op)).await.unwrap();
    assert!(host.contacted());
    assert_eq!(page.status, 403, "{}", page.body);
    assert_eq!(
        page.spid_rule(),
        Some("oidc.op.fetch-failed"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("the OP&#39;s entity configuration could not be fetched")
            || page
                .body
                .contains("the OP's entity configuration could not be fetched"),
        "{}",
        page.body
    );
    // The fetcher's reason (the size bound here) stays in the log.
    assert!(!page.body.contains("bytes"), "{}", page.body);
}

#[tokio::test]
async fn a_known_client_that_cannot_be_fetched_is_refused_in_summary() {
    let fed = start().await;
    let host = Bystander::start(Answer::Endless).await;
    let rp = format!("{}/oidc/rp", host.url);
    fed.ta
        .register(
            &rp,
            fed.rp.federation_jwks(),
            EntityKind::OpenIdRelyingParty,
        )
        .unwrap();
    let mut url = url::Url::parse(&format!("{}/authorization", fed.op.entity_id())).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &rp)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("request", "a.b.c");
    let r = no_redirects().get(url).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-spid-rule"], "op.authz.client.fetch-failed");
    let body = r.text().await.unwrap();
    assert!(!body.contains("bytes"), "{body}");
}

#[tokio::test]
async fn federation_fetches_stop_at_the_size_and_time_bounds() {
    use spid_core::oidc::federation::{FederationFetcher, FETCH_TIMEOUT};
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let endless = Bystander::start(Answer::Endless).await;
    let dripping = Bystander::start(Answer::Dripping).await;
    let ec = |b: &Bystander| entity_configuration_url(&b.url);
    let bound = FETCH_TIMEOUT + std::time::Duration::from_secs(2);

    let idp = HttpFetcher(&http);
    let sp = spid_sp::oidc::fed::HttpFetcher(&http);
    let started = std::time::Instant::now();
    let e = idp.get(&ec(&endless)).await.unwrap_err().to_string();
    assert!(e.contains("65536 bytes"), "{e}");
    let e = sp.get(&ec(&endless)).await.unwrap_err().to_string();
    assert!(e.contains("65536 bytes"), "{e}");
    assert!(started.elapsed() < bound, "{:?}", started.elapsed());

    let slow = ec(&dripping);
    let started = std::time::Instant::now();
    let (a, b) = tokio::join!(idp.get(&slow), sp.get(&slow));
    let elapsed = started.elapsed();
    assert!(a.unwrap_err().to_string().contains("no complete answer"));
    assert!(b.unwrap_err().to_string().contains("no complete answer"));
    assert!(elapsed >= FETCH_TIMEOUT && elapsed < bound, "{elapsed:?}");
}
