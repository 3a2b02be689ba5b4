//! Request bodies, read once before any handler runs: within the node's size limit, within the
//! stall timeout and minimum rate of the HTTP limits (a client trickling a body must not hold a
//! request open), and reserved in the request's memory account, which then counts everything
//! the request's handlers allocate (see `cameodb-memory`).

use std::sync::Arc;
use std::time::Duration;

use cameodb_memory::{Account, Accounted, NodeBudget};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::{FutureExt, StreamExt};
use tokio::time::Instant;

use crate::error::ApiError;

/// The memory budgets of requests (`indices.breaker.*`).
#[derive(Clone, Copy, Debug)]
pub struct BreakerLimits {
    /// `indices.breaker.total.limit`: what all requests of the node may hold together.
    pub total: u64,
    /// `indices.breaker.request.limit`: what one request may hold: its body, what is decoded
    /// from it, aggregation buckets, results being rendered.
    pub request: u64,
}

impl Default for BreakerLimits {
    /// Sized for a 2-core, 24 GiB node: requests together may hold 4 GiB, one request 1 GiB
    /// (a 100 MB bulk decodes into a few hundred MB; two cores rarely run more than a few heavy
    /// requests at once), leaving most of the memory to the page cache the indexes read from.
    fn default() -> Self {
        BreakerLimits {
            total: 4 << 30,
            request: 1 << 30,
        }
    }
}

/// What the body layer needs: the limits, and the node budget requests are accounted in.
#[derive(Clone, Debug)]
pub struct BodyState {
    /// Size and timing limits.
    pub limits: BodyLimits,
    /// The node-wide memory budget.
    pub memory: Arc<NodeBudget>,
    /// Each request's own memory limit.
    pub request_memory: u64,
}

/// What a request body may be.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    /// `http.max_content_length`: largest body accepted (413 beyond).
    pub max_bytes: usize,
    /// `http.body_timeout`: longest wait for the next bytes of a body, and the grace before
    /// `min_rate` applies.
    pub stall: Duration,
    /// `http.body_min_rate`: bytes per second a body must average once the grace is over.
    pub min_rate: u64,
}

/// Reads the whole body of `request` under the limits, reserving it in a new memory account
/// for the request, then runs the handlers counted to that account.
pub async fn buffer(State(state): State<BodyState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let encoding = match ContentEncoding::of(&parts.headers) {
        Ok(encoding) => encoding,
        Err(err) => return err.into_response(),
    };
    let account = state.memory.account("<http_request>", state.request_memory);
    let read = match read(body, declared, &state.limits, &account).await {
        Ok(bytes) => decode(bytes, encoding, state.limits.max_bytes, &account).await,
        Err(err) => Err(err),
    };
    match read {
        Ok(bytes) => {
            let mut parts = parts;
            if encoding != ContentEncoding::Identity {
                // The handlers see the body as sent before compression.
                parts.headers.remove(header::CONTENT_ENCODING);
                parts.headers.remove(header::CONTENT_LENGTH);
            }
            let handlers = next.run(Request::from_parts(parts, Body::from(bytes)));
            Accounted::new(account, handlers).await
        }
        Err(err) => err.into_response(),
    }
}

/// How a request body was compressed (`Content-Encoding`): the official clients send gzip
/// with `http_compress=True` / `compression: true`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ContentEncoding {
    /// Not compressed.
    Identity,
    /// `gzip` (or `x-gzip`).
    Gzip,
    /// `deflate`: a zlib stream, as RFC 9110 defines it.
    Deflate,
}

impl ContentEncoding {
    fn of(headers: &axum::http::HeaderMap) -> Result<ContentEncoding, ApiError> {
        let Some(value) = headers.get(header::CONTENT_ENCODING) else {
            return Ok(ContentEncoding::Identity);
        };
        let name = value
            .to_str()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match name.as_str() {
            "" | "identity" => Ok(ContentEncoding::Identity),
            "gzip" | "x-gzip" => Ok(ContentEncoding::Gzip),
            "deflate" => Ok(ContentEncoding::Deflate),
            _ => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "illegal_argument_exception",
                format!(
                    "unsupported Content-Encoding [{name}]: bodies may be sent as gzip, deflate or identity"
                ),
            )),
        }
    }
}

/// Decompresses a body. What comes out is bounded by the same `http.max_content_length` as a
/// plain body (413 past it), so a small bomb cannot expand without limit, and is reserved in
/// the request's account as it grows. Runs on a blocking thread: inflating a large bulk takes
/// longer than an async worker may be held.
async fn decode(
    bytes: Vec<u8>,
    encoding: ContentEncoding,
    max_bytes: usize,
    account: &Arc<Account>,
) -> Result<Vec<u8>, ApiError> {
    use std::io::Read;
    if encoding == ContentEncoding::Identity {
        return Ok(bytes);
    }
    let account = Arc::clone(account);
    let job = move || -> Result<Vec<u8>, ApiError> {
        let reader: Box<dyn Read> = match encoding {
            ContentEncoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&bytes[..])),
            _ => Box::new(flate2::read::ZlibDecoder::new(&bytes[..])),
        };
        let limit = u64::try_from(max_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let mut reader = reader.take(limit);
        let mut out = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = reader.read(&mut chunk).map_err(|e| {
                ApiError::bad_request(
                    "parse_exception",
                    format!("the request body is not valid {encoding:?} data: {e}"),
                )
            })?;
            if n == 0 {
                return Ok(out);
            }
            if out.len().saturating_add(n) > max_bytes {
                return Err(too_large(max_bytes));
            }
            account.reserve(n as u64)?;
            out.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    };
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| ApiError::internal(format!("decompressing the body failed: {e}")))?
}

/// The 413 for a body over the limit.
pub fn too_large(max_bytes: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "content_too_long_exception",
        format!(
            "request body is too large: the limit is [{max_bytes}] bytes ([http.max_content_length])"
        ),
    )
}

async fn read(
    body: Body,
    declared: Option<u64>,
    limits: &BodyLimits,
    account: &Arc<Account>,
) -> Result<Vec<u8>, ApiError> {
    if declared.is_some_and(|len| len > limits.max_bytes as u64) {
        return Err(too_large(limits.max_bytes));
    }
    let capacity = declared
        .map_or(0, |len| usize::try_from(len).unwrap_or(0))
        .min(limits.max_bytes);
    // The body is held for the whole request: reserve it before reading it.
    let mut reserved = capacity;
    account.reserve(reserved as u64)?;
    let mut bytes = Vec::with_capacity(capacity);
    let mut stream = body.into_data_stream();
    let start = Instant::now();
    let mut last = start;
    loop {
        let deadline = next_deadline(start, last, bytes.len(), limits);
        // Bytes already received need no timer (arming one per request wakes the runtime's
        // timer thread; most bodies are in by the time the handler runs).
        let next = match stream.next().now_or_never() {
            Some(next) => Ok(next),
            None => tokio::time::timeout_at(deadline, stream.next()).await,
        };
        let chunk = match next {
            Ok(Some(Ok(chunk))) => chunk,
            Ok(None) => return Ok(bytes),
            Ok(Some(Err(err))) => {
                return Err(ApiError::bad_request(
                    "parse_exception",
                    format!("failed to read the request body: {err}"),
                ));
            }
            Err(_) => return Err(stalled(bytes.len(), start.elapsed(), limits)),
        };
        let len = bytes.len().saturating_add(chunk.len());
        if len > limits.max_bytes {
            return Err(too_large(limits.max_bytes));
        }
        if len > reserved {
            account.reserve((len - reserved) as u64)?;
            reserved = len;
        }
        bytes.extend_from_slice(&chunk);
        last = Instant::now();
    }
}

/// When the next bytes must have arrived: within the stall timeout of the last ones, and soon
/// enough that the body averages `min_rate` after the grace.
fn next_deadline(start: Instant, last: Instant, received: usize, limits: &BodyLimits) -> Instant {
    let stall = last + limits.stall;
    if limits.min_rate == 0 {
        return stall;
    }
    let earned = Duration::from_secs_f64(received as f64 / limits.min_rate as f64);
    stall.min(start + limits.stall + earned)
}

fn stalled(received: usize, elapsed: Duration, limits: &BodyLimits) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "timeout_exception",
        format!(
            "the request body arrived too slowly ({received} bytes in {:.1}s): a body may stall at most [{}s] ([http.body_timeout]) and must then average at least [{}] bytes/s ([http.body_min_rate])",
            elapsed.as_secs_f64(),
            limits.stall.as_secs(),
            limits.min_rate
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_follow_the_stall_timeout_and_the_minimum_rate() {
        let limits = BodyLimits {
            max_bytes: 1 << 20,
            stall: Duration::from_secs(30),
            min_rate: 1000,
        };
        let start = Instant::now();
        // Nothing yet: the grace.
        assert_eq!(
            next_deadline(start, start, 0, &limits),
            start + limits.stall
        );
        // 10 kB at t=1s: stalls are cut 30 s after the last bytes, rate allows 30 + 10 s.
        let last = start + Duration::from_secs(1);
        assert_eq!(
            next_deadline(start, last, 10_000, &limits),
            last + limits.stall
        );
        // A trickle: 2 kB by t=29s allows only until 30 + 2 s.
        let last = start + Duration::from_secs(29);
        assert_eq!(
            next_deadline(start, last, 2_000, &limits),
            start + Duration::from_secs(32)
        );
    }
}
