//! The HTTP listener: hyper HTTP/1.1 connections under the limits a hostile client must not be
//! able to hold open — a cap on open connections, a deadline for a request's headers, an idle
//! keep-alive timeout — and a graceful shutdown that lets in-flight requests finish. (Request
//! bodies have their own stall and minimum-rate limits, in `body.rs`.)
//!
//! Each connection's socket is wrapped so that every read and write is recorded; a small
//! watchdog per connection closes the socket (hyper then sees end-of-stream) once it has been
//! idle, or mid-header, for too long. A request being served is never cut by it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::ServiceExt;
use tracing::{debug, info, warn};

/// Connection limits and timeouts of the HTTP listener.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// `http.max_connections`: most open client connections. A connection beyond it is
    /// answered `503` and closed at once, so a flood of idle sockets cannot exhaust the node's
    /// file descriptors or memory while the others keep being served.
    pub max_connections: usize,
    /// `http.header_timeout`: how long a request's headers may take, from their first byte
    /// (from accept, for a new connection). A client sending half a header, or nothing, is cut
    /// off after this.
    pub header_timeout: Duration,
    /// `http.idle_timeout`: how long a kept-alive connection may wait between requests.
    pub idle_timeout: Duration,
    /// `http.body_timeout`: how long a request body may stall (no byte arriving), and the grace
    /// before [`HttpLimits::body_min_rate`] applies.
    pub body_timeout: Duration,
    /// `http.body_min_rate`: bytes per second a body must average after the grace, so a client
    /// trickling bytes cannot hold a request (and its memory) open indefinitely.
    pub body_min_rate: u64,
}

impl Default for HttpLimits {
    /// 4,096 connections, headers within 30 s, idle connections closed after 60 s, bodies
    /// stalled for 30 s or slower than 64 KiB/s after the first 30 s refused.
    fn default() -> Self {
        HttpLimits {
            max_connections: 4096,
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            body_min_rate: 64 * 1024,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting and waits for
/// the open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file descriptors, or a connection reset before accept: keep serving
                // the connections we have, and try again shortly.
                warn!(error = %err, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            refuse(stream, limits.max_connections);
            continue;
        };
        if let Err(err) = stream.set_nodelay(true) {
            debug!(error = %err, "cannot set TCP_NODELAY");
        }
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            stream,
            activity: Arc::clone(&activity),
        });
        let service = hyper::service::service_fn({
            let app = app.clone();
            let activity = Arc::clone(&activity);
            move |request: Request<hyper::body::Incoming>| {
                let guard = activity.request_started();
                let app = app.clone();
                async move {
                    let response = app.oneshot(request.map(Body::new)).await?;
                    Ok::<Response, std::convert::Infallible>(response.map(|body| {
                        Body::new(Tracked {
                            inner: body,
                            _guard: guard,
                        })
                    }))
                }
            }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(io, service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _slot = slot;
            watch(connection, activity, limits).await;
        });
    }
    drop(listener);
    info!(
        connections = graceful.count(),
        "http listener closed; finishing in-flight requests"
    );
    graceful.shutdown().await;
    Ok(())
}

/// Answers a connection over the cap with a 503 (if the socket takes it at once) and closes it.
fn refuse(stream: TcpStream, max_connections: usize) {
    warn!(
        max_connections,
        "refusing a connection: too many open connections"
    );
    let body = format!(
        r#"{{"error":{{"root_cause":[{{"type":"es_rejected_execution_exception","reason":"too many open connections: the limit is [{max_connections}] ([http.max_connections])"}}],"type":"es_rejected_execution_exception","reason":"too many open connections: the limit is [{max_connections}] ([http.max_connections])"}},"status":503}}"#
    );
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nx-elastic-product: Elasticsearch\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // Best effort and never waiting: a client that does not read just sees the close.
    let _ = stream.try_write(response.as_bytes());
}

/// Drives one connection, closing it when it overstays the header or idle timeout.
///
/// The watchdog looks at the connection on a coarse clock (a quarter of the shorter timeout)
/// rather than re-arming a timer at every request: a timer set per request costs a wake-up of
/// the runtime's timer thread each time, about a quarter of a small request's CPU. A
/// connection is therefore cut between one and one and a quarter timeouts after its deadline.
async fn watch(connection: impl Future, activity: Arc<Activity>, limits: HttpLimits) {
    let mut connection = std::pin::pin!(connection);
    let tick = limits
        .header_timeout
        .min(limits.idle_timeout)
        .checked_div(4)
        .unwrap_or_default()
        .max(Duration::from_millis(10));
    loop {
        let deadline = activity.deadline(&limits).min(Instant::now() + tick);
        tokio::select! {
            _ = &mut connection => return,
            () = tokio::time::sleep_until(deadline) => {
                if activity.deadline(&limits) <= Instant::now() {
                    debug!("closing an idle or stalled http connection");
                    activity.close();
                }
            }
        }
    }
}

/// What a connection is doing, as far as its timeouts are concerned. Times are milliseconds
/// since the connection was accepted.
struct Activity {
    /// When the connection was accepted.
    start: Instant,
    /// Requests being served (headers read, response not yet fully written).
    in_flight: AtomicUsize,
    /// When the current request's headers began to arrive, or [`NOT_STARTED`] while idle.
    head_started: AtomicU64,
    /// Last time a byte was read or written.
    last_progress: AtomicU64,
    /// Set by the watchdog: reads end, so hyper closes the connection.
    closed: std::sync::atomic::AtomicBool,
    /// The reader and the writer to wake when `closed` is set (a client that stops reading
    /// leaves a write pending forever otherwise).
    wakers: Mutex<[Option<Waker>; 2]>,
}

/// Index of the reader's and the writer's waker in [`Activity::wakers`].
const READER: usize = 0;
const WRITER: usize = 1;

/// `head_started` while no request is being received.
const NOT_STARTED: u64 = u64::MAX;

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            // A new connection must send its first request's headers within the header
            // timeout, not the (longer) idle one.
            head_started: AtomicU64::new(0),
            last_progress: AtomicU64::new(0),
            closed: std::sync::atomic::AtomicBool::new(false),
            wakers: Mutex::new([None, None]),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    /// When the connection must next show progress; far ahead while a request is served.
    fn deadline(&self, limits: &HttpLimits) -> Instant {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // Handlers and bodies have limits of their own; look again later.
            return Instant::now() + limits.idle_timeout;
        }
        match self.head_started.load(Ordering::Acquire) {
            NOT_STARTED => {
                self.at(self.last_progress.load(Ordering::Acquire)) + limits.idle_timeout
            }
            started => self.at(started) + limits.header_timeout,
        }
    }

    fn read(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let now = self.now_ms();
        self.last_progress.store(now, Ordering::Release);
        if self.in_flight.load(Ordering::Acquire) == 0 {
            // The first byte of the next request: its headers are now on the clock.
            let _ = self.head_started.compare_exchange(
                NOT_STARTED,
                now,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    fn wrote(&self, bytes: usize) {
        if bytes > 0 {
            self.last_progress.store(self.now_ms(), Ordering::Release);
        }
    }

    /// A request's headers are in: it is being served until its guard drops.
    fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(NOT_STARTED, Ordering::Release);
        RequestGuard(Arc::clone(self))
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Ok(mut wakers) = self.wakers.lock() {
            for waker in wakers.iter_mut().filter_map(Option::take) {
                waker.wake();
            }
        }
    }

    /// Remembers who waits on the socket (`side`: [`READER`] or [`WRITER`]); true when the
    /// connection was closed meanwhile, so the caller must not wait.
    fn park(&self, side: usize, waker: &Waker) -> bool {
        if let Ok(mut wakers) = self.wakers.lock() {
            wakers[side] = Some(waker.clone());
        }
        self.closed.load(Ordering::Acquire)
    }
}

/// Marks a request served when its response body is done (or dropped).
struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let activity = &self.0;
        activity
            .last_progress
            .store(activity.now_ms(), Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that holds its request's [`RequestGuard`] until it is finished.
struct Tracked {
    inner: Body,
    _guard: RequestGuard,
}

impl HttpBody for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A client socket whose reads and writes are recorded in its [`Activity`]; once the watchdog
/// closes it, reads end (EOF) and writes fail.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.activity.closed.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.stream).poll_read(cx, buf);
        match &poll {
            Poll::Ready(Ok(())) => self.activity.read(buf.filled().len() - before),
            // The watchdog may close us between the check above and now.
            Poll::Pending if self.activity.park(READER, cx.waker()) => {
                return Poll::Ready(Ok(()));
            }
            Poll::Pending => {}
            Poll::Ready(Err(_)) => {}
        }
        poll
    }
}

impl Watched {
    /// Records a write's progress, or parks the writer so the watchdog can end its wait.
    fn after_write(
        &self,
        poll: Poll<io::Result<usize>>,
        cx: &Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match poll {
            Poll::Ready(Ok(written)) => {
                self.activity.wrote(written);
                Poll::Ready(Ok(written))
            }
            Poll::Pending if self.activity.park(WRITER, cx.waker()) => {
                Poll::Ready(Err(io::ErrorKind::TimedOut.into()))
            }
            other => other,
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.activity.closed.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
        }
        let poll = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.after_write(poll, cx)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.activity.closed.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
        }
        let poll = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.after_write(poll, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
