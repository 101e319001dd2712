//! The bounded serve loop.

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower_service::Service;

/// How long a peer may take, and how many peers may be held at once.
///
/// Every bound closes the connection (or, for the body, refuses the request and then closes);
/// none of them panics or stops the accept loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// From the moment the server waits for a request head (right after accept, and again
    /// after each response on a kept-alive connection) until the whole head has arrived.
    /// An idle kept-alive connection is therefore closed after this long too.
    pub header_read_timeout: Duration,
    /// From the moment the request head has arrived until the whole body has: a body
    /// dribbled or stalled short of its `Content-Length` is refused with a 400 when a handler
    /// reads it, and the connection is closed.
    pub request_body_timeout: Duration,
    /// The longest a connection may go without a byte read or written while a read or write
    /// of ours is waiting (a peer that stops reading our answer, a stalled body nobody reads).
    /// With [`ServeLimits::header_read_timeout`] it bounds keep-alive idleness: whichever is
    /// shorter closes an idle connection.
    pub idle_timeout: Duration,
    /// Connections held at once. Further peers wait in the listener's backlog until one
    /// closes; the accept loop never fails because of them.
    pub max_connections: usize,
    /// Largest request head (request line and headers); beyond it hyper answers 431.
    pub max_header_bytes: usize,
}

impl Default for ServeLimits {
    /// 10 s for the head, 20 s for the body, 30 s of silence, 128 connections, 64 KiB of
    /// head: honest browsers and the harness's agent never come near them, and a server
    /// process with five listeners stays well under a 1,024 descriptor limit.
    fn default() -> Self {
        ServeLimits {
            header_read_timeout: Duration::from_secs(10),
            request_body_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(30),
            max_connections: 128,
            max_header_bytes: 64 * 1024,
        }
    }
}

impl ServeLimits {
    /// The same timeout for head, body and silence (tests use a short one).
    pub fn with_timeouts(self, t: Duration) -> Self {
        ServeLimits {
            header_read_timeout: t,
            request_body_timeout: t,
            idle_timeout: t,
            ..self
        }
    }
}

/// Serves `router` on `listener` within `limits`, HTTP/1.1 only (as `axum::serve` without
/// axum's `http2` feature). Runs until the task is dropped.
pub async fn serve(listener: TcpListener, router: Router, limits: ServeLimits) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let http = http1(&limits);
    loop {
        let (stream, permit) = accept(&listener, &permits).await?;
        let io = TokioIo::new(Silence::new(stream, limits.idle_timeout));
        let service = bounded_service(router.clone(), limits.request_body_timeout, None);
        let conn = http.serve_connection(io, service).with_upgrades();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(permit);
        });
    }
}

/// The certificate chain a TLS client presented (DER, leaf first; empty when it presented
/// none), put in every request's extensions by [`serve_tls`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerCertificates(pub Vec<Vec<u8>>);

/// Serves `router` over TLS on `listener` within `limits`, as [`serve`] does over TCP. The
/// handshake must end within [`ServeLimits::header_read_timeout`]; a failed handshake closes
/// that connection only. Each request carries the client's chain as [`PeerCertificates`]
/// (the acceptor's client-certificate verifier decides what reaches the router).
pub async fn serve_tls(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
    limits: ServeLimits,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let http = http1(&limits);
    loop {
        let (stream, permit) = accept(&listener, &permits).await?;
        let acceptor = acceptor.clone();
        let router = router.clone();
        let http = http.clone();
        tokio::spawn(async move {
            let handshake = acceptor.accept(Silence::new(stream, limits.idle_timeout));
            let tls = match tokio::time::timeout(limits.header_read_timeout, handshake).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake timed out");
                    return;
                }
            };
            let peer = PeerCertificates(
                tls.get_ref()
                    .1
                    .peer_certificates()
                    .map(|cs| cs.iter().map(|c| c.to_vec()).collect())
                    .unwrap_or_default(),
            );
            let service = bounded_service(router, limits.request_body_timeout, Some(peer));
            if let Err(e) = http.serve_connection(TokioIo::new(tls), service).await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(permit);
        });
    }
}

/// hyper's HTTP/1 connection builder within `limits`.
fn http1(limits: &ServeLimits) -> hyper::server::conn::http1::Builder {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true);
    http
}

/// The next connection, with its permit. The permit is taken before accepting: past the cap,
/// peers wait in the kernel's backlog and cost this process no descriptor.
async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> io::Result<(TcpStream, OwnedSemaphorePermit)> {
    let permit = permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| io::Error::other("connection semaphore closed"))?;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, permit));
            }
            Err(e) => {
                // EMFILE and friends: wait for descriptors to come back rather than spin or
                // give up (what axum::serve does too).
                if !is_connection_error(&e) {
                    tracing::warn!(error = %e, "accept failed; retrying in 50 ms");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// The router as a hyper service: each request body must arrive within `body_timeout` of its
/// head; `peer`, when given, goes into each request's extensions.
fn bounded_service(
    router: Router,
    body_timeout: Duration,
    peer: Option<PeerCertificates>,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let deadline = Instant::now() + body_timeout;
        let mut req = req.map(|b| Body::new(DeadlineBody::new(b, deadline, body_timeout)));
        if let Some(p) = &peer {
            req.extensions_mut().insert(p.clone());
        }
        let mut router = router.clone();
        async move { router.call(req).await }
    })
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The request body has not arrived within [`ServeLimits::request_body_timeout`].
#[derive(Debug)]
struct BodyTimeout(Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "request body not received within {} s",
            self.0.as_secs_f32()
        )
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body that must end by a deadline set when its head arrived. (tower-http's
/// `TimeoutBody` resets its timer on every frame, so a byte every second would pass it.)
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    limit: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, deadline: Instant, limit: Duration) -> Self {
        DeadlineBody {
            inner,
            deadline,
            limit,
            sleep: None,
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(this.limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        http_body::Body::size_hint(&self.inner)
    }
}

/// A TCP stream that fails a read or write which has waited [`ServeLimits::idle_timeout`]
/// since the last byte moved either way.
struct Silence<S = TcpStream> {
    inner: S,
    limit: Duration,
    last: Instant,
    sleep: Pin<Box<Sleep>>,
}

impl<S> Silence<S> {
    fn new(inner: S, limit: Duration) -> Self {
        let now = Instant::now();
        Silence {
            inner,
            limit,
            last: now,
            sleep: Box::pin(tokio::time::sleep_until(now + limit)),
        }
    }

    /// Called when an operation is pending: an error once the connection has been silent
    /// for the limit, otherwise arranges to be woken when it would be.
    fn check(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let due = self.last + self.limit;
        if self.sleep.deadline() != due {
            self.sleep.as_mut().reset(due);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no byte moved for {} s", self.limit.as_secs_f32()),
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Silence<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.last = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.check(cx).map(Err),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Silence<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    this.last = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.check(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    this.last = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.check(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => this.check(cx).map(Err),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
