//! Admission of a request: a too-long head (431), the per-address budget, the CSRF origin rule, a
//! declared body the route cannot take (refused before `100 Continue`),
//! then the deadline: `request_timeout` for the whole request (408 while
//! its body is still arriving, 503 when the answer is slow); an upload has
//! no overall deadline but answers 408 when its body stalls that long.

use super::AppState;
use super::error::AppError;
use super::{origin, rate_limit};
use axum::body::{Body, BodyDataStream, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::Stream;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::time::Instant;

/// Room for multipart boundaries and part headers around an upload.
pub const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// The upload route, the one whose body may take longer than
/// `request_timeout`.
fn is_upload(request: &Request) -> bool {
    request.method() == Method::POST && request.uri().path() == "/api/v1/attachments"
}

/// Admits a request; see the module doc for the order.
pub async fn admission(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request
        .extensions()
        .get::<crate::serve::HeadTooLarge>()
        .is_some()
    {
        return AppError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request header fields too large",
        )
        .into_response();
    }
    if let Some(refused) = rate_limit::check_global(&state, &request) {
        return refused;
    }
    if let Some(refused) = origin::check(&state, &request) {
        return refused;
    }
    if let Some(refused) = refuse_expected_oversize(&state, &request) {
        return refused;
    }
    within_deadline(&state, request, next).await
}

/// A client that sent `Expect: 100-continue` with a `Content-Length` over
/// the route's limit gets its 413 at once instead of an invitation to send.
fn refuse_expected_oversize(state: &AppState, request: &Request) -> Option<Response> {
    let headers = request.headers();
    let expects = headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
    if !expects {
        return None;
    }
    let declared: u64 = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())?;
    let limits = &state.config.limits;
    let (limit, message) = if is_upload(request) {
        (
            limits.max_upload + MULTIPART_OVERHEAD,
            format!("File too large (max {} bytes)", limits.max_upload),
        )
    } else {
        (
            limits.max_json_body,
            format!("Request body is larger than {} bytes", limits.max_json_body),
        )
    };
    (declared > limit as u64).then(|| AppError::too_large(message).into_response())
}

/// How far the handler got with the request body.
#[derive(Default)]
struct Progress {
    state: Mutex<BodyState>,
}

#[derive(Default, Clone, Copy)]
struct BodyState {
    /// Polled at least once and not yet at its end.
    reading: bool,
    /// Since when the handler waits for the client's next bytes.
    waiting_since: Option<Instant>,
}

impl Progress {
    fn note(&self, polled: &Poll<Option<Result<Bytes, axum::Error>>>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match polled {
            Poll::Pending => {
                state.reading = true;
                state.waiting_since.get_or_insert_with(Instant::now);
            }
            Poll::Ready(item) => {
                state.reading = item.is_some();
                state.waiting_since = None;
            }
        }
    }

    fn get(&self) -> BodyState {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The request body, reporting its progress.
struct Tracked {
    inner: BodyDataStream,
    progress: Arc<Progress>,
}

impl Stream for Tracked {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        self.progress.note(&polled);
        polled
    }
}

fn body_too_slow() -> Response {
    let mut response = AppError::new(
        StatusCode::REQUEST_TIMEOUT,
        "Request body not received in time",
    )
    .into_response();
    // The rest of the body will not be read: this connection is done.
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

async fn within_deadline(state: &AppState, request: Request, next: Next) -> Response {
    let timeout = state.config.server.request_timeout;
    let upload = is_upload(&request);
    let progress = Arc::new(Progress::default());
    let request = if request.body().is_end_stream() {
        request
    } else {
        let progress = progress.clone();
        request.map(|body| {
            Body::from_stream(Tracked {
                inner: body.into_data_stream(),
                progress,
            })
        })
    };
    let response = next.run(request);
    tokio::pin!(response);
    let mut check_at = Instant::now() + timeout;
    loop {
        tokio::select! {
            response = &mut response => return response,
            _ = tokio::time::sleep_until(check_at) => {}
        }
        let body = progress.get();
        if !upload {
            return if body.reading {
                body_too_slow()
            } else {
                AppError::unavailable("request timed out", 1).into_response()
            };
        }
        match body.waiting_since {
            Some(since) if since + timeout <= Instant::now() => return body_too_slow(),
            Some(since) => check_at = since + timeout,
            None => check_at = Instant::now() + timeout,
        }
    }
}
