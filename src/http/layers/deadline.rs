//! The deadline of a request: `request_timeout` for the whole request
//! (408 while its body is still arriving, 503 when the answer is slow); an
//! upload has no overall deadline but answers 408 when its body stalls
//! that long.

use crate::http::error::AppError;
use axum::body::{Body, BodyDataStream, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::Stream;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

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

/// Runs the rest of the stack within `timeout`; an `upload` has no
/// overall deadline, only one on each stall of its body.
pub async fn within(timeout: Duration, upload: bool, request: Request, next: Next) -> Response {
    // Only a request with a body has progress to track.
    let (request, progress) = if request.body().is_end_stream() {
        (request, None)
    } else {
        let progress = Arc::new(Progress::default());
        let tracked = progress.clone();
        let request = request.map(|body| {
            Body::from_stream(Tracked {
                inner: body.into_data_stream(),
                progress: tracked,
            })
        });
        (request, Some(progress))
    };
    let response = next.run(request);
    tokio::pin!(response);
    let mut check_at = Instant::now() + timeout;
    loop {
        // The answer first: one ready at once (most bodiless requests)
        // never registers the deadline's timer.
        tokio::select! {
            biased;
            response = &mut response => return response,
            _ = tokio::time::sleep_until(check_at) => {}
        }
        let body = progress.as_deref().map(Progress::get).unwrap_or_default();
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
