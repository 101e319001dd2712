//! The IdP's memory under 30,000 replays of one signed AuthnRequest stays bounded: alone in
//! its test binary (one test, so nothing else allocates in the process meanwhile), the
//! resident set after the last 25,000 replays is within a few MiB of what it was after the
//! first 5,000 (before the fix, 30,000 replays grew it from 21 to 103 MiB).

#[path = "support/routers.rs"]
mod routers;

use axum::http::{header, StatusCode};
use routers::{oneshot, path_and_query, rule_of};
use spid_harness::runner::{Credentials, InternalPair};

/// The process's resident set (VmRSS), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_memory_stays_bounded_under_30000_replays() {
    let pair = InternalPair::start(Credentials::embedded().unwrap())
        .await
        .unwrap();
    let sp = pair.sp.router();
    let r = oneshot(&sp, "/login").await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let uri = path_and_query(r.headers()[header::LOCATION].to_str().unwrap());
    let idp = pair.idp.router();
    assert_eq!(oneshot(&idp, &uri).await.status(), StatusCode::OK);
    let replay = |n: usize| {
        let (idp, uri) = (idp.clone(), uri.clone());
        async move {
            for _ in 0..n {
                let r = oneshot(&idp, &uri).await;
                assert_eq!(r.status(), StatusCode::FORBIDDEN);
                assert_eq!(rule_of(&r).as_deref(), Some("idp.request.replayed"));
            }
        }
    };
    // Warm up the allocator and the caches, then measure what the rest of the flood adds.
    replay(5_000).await;
    let before = rss_kib();
    replay(25_000).await;
    let grown = rss_kib().saturating_sub(before);
    eprintln!("IdP RSS: {before} KiB after 5,000 replays, +{grown} KiB after 25,000 more");
    assert!(
        grown < 8 * 1024,
        "30,000 replays grew the resident set by {grown} KiB after the first 5,000"
    );
    assert_eq!(pair.idp.answered_requests(), 1);
}
