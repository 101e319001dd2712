//! Servers that hold under abuse: our pair started with short [`ServeLimits`], slow
//! connections of every kind opened against both servers, each closed by the server within
//! its bound while an honest login still succeeds; the connection cap makes the excess wait
//! and the server keeps serving; a form past the field limit is refused with its reason.

use spid_harness::runner::{self, Credentials, InternalPair, Verdict};
use spid_net::ServeLimits;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

fn users() -> Vec<spid_idp::users::User> {
    spid_idp::users::parse(spid_idp::users::DEFAULT_USERS).unwrap()
}

fn addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

/// Header 2 s, body 3 s, silence 4 s: each slow kind below is closed by a different bound
/// (or the header one), so the times tell which bound acted.
fn short() -> ServeLimits {
    ServeLimits {
        header_read_timeout: Duration::from_secs(2),
        request_body_timeout: Duration::from_secs(3),
        idle_timeout: Duration::from_secs(4),
        max_connections: 512,
        ..ServeLimits::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Slow {
    /// Connects and sends nothing.
    Idle,
    /// A request line, then one header line a second, never the blank line.
    HeadersDribbled,
    /// A whole head announcing 1,000 body bytes, then one byte a second.
    BodyDribbled,
    /// A whole head announcing 100 body bytes, 10 of them, then nothing.
    BodyStalled,
}

/// What the server did with one slow connection: when it closed it (from connect) and the
/// first bytes it sent before closing.
#[derive(Debug)]
struct Closed {
    kind: Slow,
    after: Duration,
    answer: String,
}

/// Opens one slow connection of `kind` to `path` on `to` and waits (at most 15 s) for the
/// server to close it. `None`: still open after 15 s.
async fn slow(to: SocketAddr, path: &'static str, kind: Slow) -> Option<Closed> {
    let stream = TcpStream::connect(to).await.unwrap();
    let started = Instant::now();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        let head = |len: usize| {
            format!(
                "POST {path} HTTP/1.1\r\nHost: {to}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {len}\r\n\r\n"
            )
        };
        match kind {
            Slow::Idle => {}
            Slow::HeadersDribbled => {
                let line = format!("POST {path} HTTP/1.1\r\nHost: {to}\r\n");
                if wr.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
                for i in 0.. {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let h = format!("X-Dribble-{i}: x\r\n");
                    if wr.write_all(h.as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
            Slow::BodyDribbled => {
                if wr.write_all(head(1000).as_bytes()).await.is_err() {
                    return;
                }
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if wr.write_all(b"a").await.is_err() {
                        return;
                    }
                }
            }
            Slow::BodyStalled => {
                let _ = wr.write_all(head(100).as_bytes()).await;
                let _ = wr.write_all(b"SAMLRespon").await;
            }
        }
        // Keep the write half open: the server, not we, must end the connection.
        std::future::pending::<()>().await;
        drop(wr);
    });
    let mut answer = Vec::new();
    let read_to_close = async {
        let mut buf = [0u8; 4096];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    };
    let closed = tokio::time::timeout(Duration::from_secs(15), read_to_close).await;
    let after = started.elapsed();
    writer.abort();
    closed.ok()?;
    let answer = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    Some(Closed {
        kind,
        after,
        answer,
    })
}

/// The bound that should close `kind` under [`short`].
fn bound(kind: Slow, l: &ServeLimits) -> Duration {
    match kind {
        Slow::Idle | Slow::HeadersDribbled => l.header_read_timeout,
        Slow::BodyDribbled | Slow::BodyStalled => l.request_body_timeout,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_connections_are_closed_within_their_bounds_while_an_honest_login_succeeds() {
    let limits = short();
    let pair = InternalPair::start_with_limits(Credentials::embedded().unwrap(), limits)
        .await
        .unwrap();
    let (idp, sp) = (addr(&pair.idp_url), addr(&pair.sp_url));
    const EACH: usize = 15;
    let kinds = [
        Slow::Idle,
        Slow::HeadersDribbled,
        Slow::BodyDribbled,
        Slow::BodyStalled,
    ];
    let mut tasks = Vec::new();
    for kind in kinds {
        for _ in 0..EACH {
            tasks.push(tokio::spawn(slow(idp, "/login", kind)));
            tasks.push(tokio::spawn(slow(sp, "/acs", kind)));
        }
    }
    // Let every slow connection be accepted and start misbehaving.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let opened = Instant::now();
    let login = runner::run_case(&pair, &runner::sanity_case(), &users()).await;
    let login_took = opened.elapsed();
    eprintln!("honest login among the slow connections: {login_took:?}");
    assert_eq!(login.verdict, Verdict::Accept, "{:?}", login.note);
    assert!(login.passed(), "{:?}", login.note);
    assert!(
        login_took + Duration::from_millis(300) < limits.header_read_timeout,
        "the login ({login_took:?}) must finish while every slow connection is still open"
    );

    let mut closed = Vec::new();
    for t in tasks {
        closed.push(
            t.await
                .unwrap()
                .expect("a slow connection still open after 15 s"),
        );
    }
    assert_eq!(closed.len(), kinds.len() * EACH * 2);
    for kind in kinds {
        let of_kind: Vec<&Closed> = closed.iter().filter(|c| c.kind == kind).collect();
        let slowest = of_kind.iter().map(|c| c.after).max().unwrap();
        let fastest = of_kind.iter().map(|c| c.after).min().unwrap();
        let b = bound(kind, &limits);
        eprintln!("{kind:?}: closed after {fastest:?}..{slowest:?} (bound {b:?})");
        assert!(
            fastest + Duration::from_millis(300) >= b,
            "{kind:?} closed after {fastest:?}, before its bound {b:?}: something else closed it"
        );
        assert!(
            slowest <= b + Duration::from_millis(1500),
            "{kind:?} held for {slowest:?}, past its bound {b:?}"
        );
    }
    // A body that does not arrive in time is refused, not handed to the handler truncated.
    for c in closed.iter().filter(|c| c.kind == Slow::BodyDribbled) {
        assert!(c.answer.starts_with("HTTP/1.1 400"), "{c:?}");
    }
    // And the servers still serve: a second honest login.
    let again = runner::run_case(&pair, &runner::sanity_case(), &users()).await;
    assert!(again.passed(), "{:?}", again.note);
}

async fn get_metadata(to: SocketAddr) -> (String, Duration) {
    let started = Instant::now();
    let mut s = TcpStream::connect(to).await.unwrap();
    let req = format!("GET /metadata HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut body = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut body))
        .await
        .expect("no answer within 15 s")
        .unwrap();
    let status = String::from_utf8_lossy(&body)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    (status, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_peers_wait_and_the_server_keeps_serving() {
    let limits = ServeLimits {
        max_connections: 8,
        ..short()
    };
    let pair = InternalPair::start_with_limits(Credentials::embedded().unwrap(), limits)
        .await
        .unwrap();
    let sp = addr(&pair.sp_url);
    // Let the pair's own metadata exchange connections go (they are closed when its client
    // is dropped) before counting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Eight idle connections take every permit and eight more wait behind them, in the
    // listener's backlog, until the header timeout closes the first eight.
    let mut idle = Vec::new();
    for _ in 0..16 {
        idle.push(TcpStream::connect(sp).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, waited) = get_metadata(sp).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    // Served in order of arrival: after two waves of idle connections, each held for the
    // header timeout (without a cap: at once; with a cap of 16: after one wave).
    let two_waves = limits.header_read_timeout * 2;
    assert!(
        waited + Duration::from_millis(500) >= two_waves
            && waited <= two_waves + Duration::from_millis(1500),
        "answered after {waited:?}, expected about {two_waves:?}: the cap of 8 did not hold"
    );
    eprintln!("past the cap: answered after {waited:?}");
    // Every idle connection has been closed by the server, none crashed the accept loop.
    for mut s in idle {
        let mut b = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(15), s.read(&mut b))
            .await
            .expect("an idle connection still open");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    }
    let (status, took) = get_metadata(sp).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_by_the_idle_bound_alone() {
    // Head and body bounds far away: only the idle bound can close these.
    let limits = ServeLimits {
        header_read_timeout: Duration::from_secs(20),
        request_body_timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(2),
        ..ServeLimits::default()
    };
    let pair = InternalPair::start_with_limits(Credentials::embedded().unwrap(), limits)
        .await
        .unwrap();
    let idp = addr(&pair.idp_url);
    // Kept alive after one honest request, then silent.
    let mut s = TcpStream::connect(idp).await.unwrap();
    let req = format!("GET /metadata HTTP/1.1\r\nHost: {idp}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    let started = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let after = started.elapsed();
    assert!(closed.is_ok(), "a kept-alive silent connection still open");
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"),
        "the honest request was answered first"
    );
    assert!(
        after >= Duration::from_millis(1700) && after <= Duration::from_millis(3500),
        "closed after {after:?}, the idle bound is 2 s"
    );
    // A body stalled short of its Content-Length, on a route whose bounds are 20 s.
    let mut s = TcpStream::connect(idp).await.unwrap();
    let req = format!("POST /login HTTP/1.1\r\nHost: {idp}\r\nContent-Length: 50\r\n\r\nabc");
    s.write_all(req.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut sink)).await;
    let after = started.elapsed();
    assert!(closed.is_ok(), "a stalled body still open");
    assert!(
        after >= Duration::from_millis(1700) && after <= Duration::from_millis(3500),
        "closed after {after:?}, the idle bound is 2 s"
    );
}

#[tokio::test]
async fn a_form_past_the_field_limit_is_refused_with_its_reason_at_both_servers() {
    let pair = InternalPair::start(Credentials::embedded().unwrap())
        .await
        .unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let many = "=&".repeat(520 * 1024 / 2);
    for url in [
        format!("{}/acs", pair.sp_url),
        format!("{}/slo", pair.sp_url),
        format!("{}/sso", pair.idp_url),
        format!("{}/login", pair.idp_url),
        format!("{}/otp", pair.idp_url),
        format!("{}/consent", pair.idp_url),
        format!("{}/slo", pair.idp_url),
    ] {
        let r = http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(many.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{url}");
        assert_eq!(
            r.headers()
                .get("x-form-refusal")
                .map(|v| v.to_str().unwrap()),
            Some("form-too-many-fields"),
            "{url}"
        );
        let page = r.text().await.unwrap();
        assert!(page.contains("more than 64 fields"), "{url}: {page}");
    }
    // A normal form still reaches the handler: /acs without a SAMLResponse is the SP's own
    // refusal, not the form bound.
    let r = http
        .post(format!("{}/acs", pair.sp_url))
        .form(&[("RelayState", "x"), ("other", "y")])
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("x-form-refusal").is_none());
    assert!(
        r.headers().get("x-spid-rule").is_some(),
        "{:?}",
        r.headers()
    );
}

#[tokio::test]
async fn a_form_past_the_field_limit_is_refused_at_the_op_the_rp_and_the_anchor() {
    let fed = spid_harness::oidc::OidcFederation::start(Credentials::embedded().unwrap())
        .await
        .unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    // 1,000 fields in 2 KB: far under every body limit, far over the field limit.
    let many = "=&".repeat(1000);
    let op = fed.op.entity_id().to_string();
    let mut refused = 0;
    for url in [
        format!("{op}/authorization"),
        format!("{op}/login"),
        format!("{op}/otp"),
        format!("{op}/consent"),
        format!("{op}/token"),
        format!("{op}/introspection"),
        format!("{op}/revocation"),
        format!("{}/callback", fed.rp.entity_id()),
        format!("{}/trust_mark_status", fed.ta.entity_id()),
    ] {
        let r = http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(many.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{url}");
        assert_eq!(
            r.headers()
                .get("x-form-refusal")
                .map(|v| v.to_str().unwrap()),
            Some("form-too-many-fields"),
            "{url}"
        );
        refused += 1;
    }
    // The authorization endpoint and the RP callback read their GET query the same way.
    for url in [
        format!("{op}/authorization?{many}"),
        format!("{}/callback?{many}", fed.rp.entity_id()),
    ] {
        let r = http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 400, "{url}");
        assert_eq!(
            r.headers()
                .get("x-form-refusal")
                .map(|v| v.to_str().unwrap()),
            Some("form-too-many-fields"),
            "{url}"
        );
        refused += 1;
    }
    assert_eq!(refused, 11);
    // A normal token request still reaches the token endpoint's own rules.
    let r = http
        .post(format!("{op}/token"))
        .form(&[("grant_type", "authorization_code")])
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("x-form-refusal").is_none());
    assert!(r.status().is_client_error(), "{}", r.status());
}
