//! Servers that hold under abuse: floods of anonymous or replayed traffic while an honest login
//! is in flight (started before the flood, finished after it). The honest login must be
//! accepted; the flood must be refused once the bounded stores are full (HTTP 503
//! `server.pending.full`) or, for replays, refused as replays — never by evicting the login in
//! flight.
//!
//! The SP flood goes over real HTTP; the others call the routers in process
//! (`tower::ServiceExt::oneshot`), which shares the servers' state and is much faster.

use axum::http::{header, StatusCode};
use spid_harness::agent::{Page, UserAgent};
use spid_harness::oidc::OidcFederation;
use spid_harness::runner::{self, Behaviour, Credentials, InternalPair};
use spid_idp::users::User;
use std::time::Instant;

#[path = "support/routers.rs"]
mod routers;
use routers::{oneshot, path_and_query, rule_of};

fn users() -> Vec<User> {
    spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap()
}

/// A user who can log in at level 2.
fn honest_user(users: &[User]) -> &User {
    users
        .iter()
        .find(|u| {
            u.status == spid_idp::users::Status::Active
                && u.level == 2
                && u.identity_type == spid_idp::users::IdentityType::Person
        })
        .expect("a level-2 test user")
}

/// The honest login, started: the browser stands on the IdP's (or OP's) login form.
async fn start_honest(login_url: &url::Url) -> (UserAgent, Page) {
    let mut ua = runner::user_agent().unwrap();
    let first = ua.get(login_url).await.unwrap();
    let page = ua.auto_post(first).await.unwrap();
    assert!(
        page.form_by_id("login-form").is_some(),
        "the honest login should stand on the login form: {} {}",
        page.status,
        page.body
    );
    (ua, page)
}

async fn finish_honest(mut ua: UserAgent, page: Page, user: &User) -> Page {
    runner::continue_login(&mut ua, page, Some(user), Behaviour::default())
        .await
        .unwrap()
}

fn assert_accepted(page: &Page) {
    assert_eq!(
        page.status,
        200,
        "honest login refused: {:?} {}",
        page.spid_rule(),
        page.body
    );
}

/// 10,100 anonymous `/login` calls at the SP over HTTP: the SP's request store fills, the
/// rest get 503 `server.pending.full`, and the honest Response is still accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sp_login_flood_keeps_the_login_in_flight() {
    let t = Instant::now();
    let pair = InternalPair::start(Credentials::embedded().unwrap())
        .await
        .unwrap();
    let users = users();
    let (ua, page) = start_honest(&pair.login_url()).await;

    const FLOOD: usize = 10_100;
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = pair.login_url();
    let workers = 8;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let (mut found, mut busy) = (0usize, 0usize);
            for _ in (w..FLOOD).step_by(workers) {
                let r = http.get(url.clone()).send().await.unwrap();
                match r.status().as_u16() {
                    302 => found += 1,
                    503 => {
                        let rule = r
                            .headers()
                            .get(spid_sp::RULE_HEADER)
                            .map(|v| v.to_str().unwrap().to_string());
                        assert_eq!(rule.as_deref(), Some("server.pending.full"));
                        busy += 1;
                    }
                    s => panic!("unexpected status {s} from the SP's /login"),
                }
            }
            (found, busy)
        }));
    }
    let (mut found, mut busy) = (0, 0);
    for task in tasks {
        let (f, b) = task.await.unwrap();
        found += f;
        busy += b;
    }
    let cap = spid_sp::store::MAX_PENDING;
    assert_eq!(found, cap - 1, "the honest request holds one slot");
    assert_eq!(busy, FLOOD - (cap - 1));
    assert!(pair.sp.pending_requests() <= cap);

    let end = finish_honest(ua, page, honest_user(&users)).await;
    assert_accepted(&end);
    eprintln!("sp flood: {FLOOD} requests, {:?}", t.elapsed());
}

/// 30,000 replays of one AuthnRequest URL at the IdP: the first opens a login, every other
/// one is refused with `idp.request.replayed`, the IdP's maps stay at a couple of entries,
/// and the honest login started before finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_answers_an_authn_request_once() {
    let t = Instant::now();
    let pair = InternalPair::start(Credentials::embedded().unwrap())
        .await
        .unwrap();
    let users = users();
    let (ua, page) = start_honest(&pair.login_url()).await;

    // One signed AuthnRequest, as an anonymous browser got it from the SP.
    let sp = pair.sp.router();
    let r = oneshot(&sp, "/login").await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let location = r.headers()[header::LOCATION].to_str().unwrap().to_string();
    let uri = path_and_query(&location);
    let idp = pair.idp.router();

    const REPLAYS: usize = 30_000;
    let first = oneshot(&idp, &uri).await;
    assert_eq!(first.status(), StatusCode::OK, "the first use is a login");
    let workers = 4;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (idp, uri) = (idp.clone(), uri.clone());
        tasks.push(tokio::spawn(async move {
            for _ in (w..REPLAYS - 1).step_by(workers) {
                let r = oneshot(&idp, &uri).await;
                assert_eq!(r.status(), StatusCode::FORBIDDEN);
                assert_eq!(rule_of(&r).as_deref(), Some("idp.request.replayed"));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        pair.idp.pending_logins(),
        2,
        "the honest login and the first use"
    );
    assert_eq!(pair.idp.answered_requests(), 2);

    let end = finish_honest(ua, page, honest_user(&users)).await;
    assert_accepted(&end);
    eprintln!("idp replays: {REPLAYS} requests, {:?}", t.elapsed());
}

/// 10,050 anonymous `/login` calls at the RP: its pending store fills, the rest get 503, and
/// the honest callback still finds its `state`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_login_flood_keeps_the_login_in_flight() {
    let t = Instant::now();
    let fed = OidcFederation::start(Credentials::embedded().unwrap())
        .await
        .unwrap();
    let users = users();
    let (ua, page) = start_honest(&fed.login_url()).await;

    const FLOOD: usize = 10_050;
    let rp = fed.rp.router();
    let uri = path_and_query(fed.login_url().as_str()).replacen("/oidc/rp", "", 1);
    let workers = 4;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (rp, uri) = (rp.clone(), uri.clone());
        tasks.push(tokio::spawn(async move {
            let (mut found, mut busy) = (0usize, 0usize);
            for _ in (w..FLOOD).step_by(workers) {
                let r = oneshot(&rp, &uri).await;
                match r.status().as_u16() {
                    302 => found += 1,
                    503 => {
                        assert_eq!(rule_of(&r).as_deref(), Some("server.pending.full"));
                        busy += 1;
                    }
                    s => panic!("unexpected status {s} from the RP's /login"),
                }
            }
            (found, busy)
        }));
    }
    let (mut found, mut busy) = (0, 0);
    for task in tasks {
        let (f, b) = task.await.unwrap();
        found += f;
        busy += b;
    }
    assert_eq!(found, 10_000 - 1, "the honest request holds one slot");
    assert_eq!(busy, FLOOD - found);
    assert!(fed.rp.pending_logins() <= 10_000);

    let end = finish_honest(ua, page, honest_user(&users)).await;
    assert_accepted(&end);
    eprintln!("rp flood: {FLOOD} requests, {:?}", t.elapsed());
}

/// 10,050 replays of one request object at the OP: the first opens a login, the others are
/// refused with `op.authz.request.replayed`, and the honest login reaches its consent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn op_answers_a_request_object_once() {
    let t = Instant::now();
    let fed = OidcFederation::start(Credentials::embedded().unwrap())
        .await
        .unwrap();
    let users = users();
    let (ua, page) = start_honest(&fed.login_url()).await;

    // One request object, as an anonymous browser got it from the RP.
    let rp = fed.rp.router();
    let login = path_and_query(fed.login_url().as_str()).replacen("/oidc/rp", "", 1);
    let r = oneshot(&rp, &login).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let location = r.headers()[header::LOCATION].to_str().unwrap().to_string();
    let uri = path_and_query(&location).replacen("/oidc/op", "", 1);
    let op = fed.op.router();

    const REPLAYS: usize = 10_050;
    let first = oneshot(&op, &uri).await;
    assert_eq!(first.status(), StatusCode::OK, "the first use is a login");
    let workers = 4;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (op, uri) = (op.clone(), uri.clone());
        tasks.push(tokio::spawn(async move {
            for _ in (w..REPLAYS - 1).step_by(workers) {
                let r = oneshot(&op, &uri).await;
                assert_eq!(r.status(), StatusCode::BAD_REQUEST);
                assert_eq!(rule_of(&r).as_deref(), Some("op.authz.request.replayed"));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        fed.op.pending_logins(),
        2,
        "the honest login and the first use"
    );
    assert_eq!(fed.op.answered_requests(), 2);

    let end = finish_honest(ua, page, honest_user(&users)).await;
    assert_accepted(&end);
    eprintln!("op replays: {REPLAYS} requests, {:?}", t.elapsed());
}
