//! One WebSocket's life after its 101: the feed's items go out as text
//! frames, commands come in and are answered in order, a ping goes out
//! every `heartbeat_interval`, and the socket is closed when the feed ends
//! (1000, or 1001 at shutdown), when two pings in a row went unanswered
//! (1001), or when a frame is over [`MAX_FRAME`] (1009). A client that
//! stops reading is ended by the connection's write deadline, one that
//! goes away is noticed at once (the socket is always being read while
//! nothing is being written).
//!
//! Buffers are small on purpose (tungstenite's defaults are 128 KiB each
//! way per connection): a [`READ_BUFFER`]-byte read buffer, which grows
//! only for a frame larger than it (and keeps that size: a client's
//! largest frame, at most [`MAX_FRAME`], stays allocated for its
//! connection), and no write buffering. Text frames (events and acks) and
//! pings do not pass tungstenite's write buffer at all, which would keep
//! the largest frame ever sent allocated for the connection's life: each
//! is written straight to the socket, its header and its payload in one
//! vectored write, the payload shared with every other socket it goes to;
//! only the replies tungstenite makes (pongs, the close) go through it.
//!
//! An idle socket's task is sized for what it does between events: the
//! socket, the feed, the commands and the wait on both. Whatever runs
//! rarely (a replay chunk's fetch, a command, the close and its timeout)
//! is boxed, so its state is allocated only while it runs.

use super::commands::Commands;
use super::frames;
use crate::http::event_stream::feed::{Feed, Item};
use crate::serve::upgrade::{PendingUpgrade, UpgradedConnection};
use bytes::Bytes;
use futures::{FutureExt, SinkExt, StreamExt};
use std::io::{self, IoSlice};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error, Message, Utf8Bytes};

/// Largest frame, and message, a client may send.
pub(super) const MAX_FRAME: usize = 64 * 1024;

/// Initial read buffer of a connection, and the most read at once: a
/// pong or a short command in one read, a longer command's payload read
/// into a buffer of its size.
const READ_BUFFER: usize = 128;

/// A ping with no payload, unmasked (a server's frames never are).
const PING: [u8; 2] = [0x89, 0x00];

/// Pings in a row a client may leave unanswered; at the next heartbeat
/// the socket is closed.
const UNANSWERED_PINGS: u8 = 2;

/// Longest the close takes: the close frame written, then what the client
/// still sends read and dropped (so it reads the close frame rather than
/// a reset), up to [`CLOSE_DRAIN`] bytes.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
const CLOSE_DRAIN: usize = 1024 * 1024;

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_FRAME * 4)
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME))
}

/// Why a socket is closed by the server.
#[derive(Debug, Clone, Copy)]
enum End {
    /// The stream ended (leave, conversation stopped, fallen behind,
    /// shutdown).
    Stream,
    /// The client answered no ping for two heartbeat intervals.
    Unanswered,
    /// The client sent a frame over [`MAX_FRAME`].
    TooLarge,
}

/// What woke the connection.
enum Step {
    Out(Option<Item>),
    In(Option<Result<Message, Error>>),
}

/// How the connection goes on after a step.
enum Flow {
    /// Waits for the next step.
    Wait,
    /// The server closes the socket.
    Close(End),
    /// The socket is gone, or closed by the client: nothing more is sent.
    Gone,
}

/// Takes the connection once its 101 is written and runs the socket until
/// it ends; the feed (and the stream's count) goes when it returns. While
/// it waits the task holds the socket, the feed, the commands and the
/// wait on both; each step is handled in a boxed future of its own.
pub(super) async fn run(pending: PendingUpgrade, mut feed: Feed, commands: Commands) {
    let socket = match Box::pin(pending.connection()).await {
        Ok(socket) => socket,
        Err(e) => {
            tracing::debug!(error = %e, "the WebSocket upgrade did not complete");
            return;
        }
    };
    // Ready at once; not awaited, so the task keeps no second place for
    // the socket.
    let Some(mut ws) =
        WebSocketStream::from_raw_socket(socket, Role::Server, Some(config())).now_or_never()
    else {
        return;
    };
    let mut unanswered: u8 = 0;
    let end = loop {
        let step = tokio::select! {
            item = feed.next() => Step::Out(item),
            received = ws.next() => Step::In(received),
        };
        match Box::pin(handle(&mut ws, &commands, &mut unanswered, step)).await {
            Flow::Wait => {}
            Flow::Close(end) => break end,
            Flow::Gone => return,
        }
    };
    drop(feed);
    let code = match end {
        End::Stream if commands.state().shutdown.is_cancelled() => CloseCode::Away,
        End::Stream => CloseCode::Normal,
        End::Unanswered => CloseCode::Away,
        End::TooLarge => CloseCode::Size,
    };
    let _ = Box::pin(tokio::time::timeout(CLOSE_WAIT, close(ws, code, end))).await;
}

/// One step: an item of the feed sent (a heartbeat as a ping), or what
/// the client sent answered; `unanswered` counts the pings since the
/// client last sent anything.
async fn handle(
    ws: &mut WebSocketStream<UpgradedConnection>,
    commands: &Commands,
    unanswered: &mut u8,
    step: Step,
) -> Flow {
    let sent = match step {
        Step::Out(None) => return Flow::Close(End::Stream),
        Step::Out(Some(Item::Heartbeat)) => {
            if *unanswered >= UNANSWERED_PINGS {
                return Flow::Close(End::Unanswered);
            }
            *unanswered += 1;
            send_raw(ws, &PING, &[]).await
        }
        Step::Out(Some(item)) => match frames::text(item) {
            Some(text) => send_text(ws, &text).await,
            None => Ok(()),
        },
        Step::In(None) => return Flow::Gone,
        Step::In(Some(Err(Error::Capacity(_)))) => return Flow::Close(End::TooLarge),
        Step::In(Some(Err(e))) => {
            tracing::debug!(error = %e, "WebSocket ended by the connection");
            return Flow::Gone;
        }
        Step::In(Some(Ok(message))) => {
            *unanswered = 0;
            match message {
                // Boxed, so a step that sends an event holds no room for
                // a command's state.
                Message::Text(text) => {
                    let ack = Box::pin(commands.answer_text(&text)).await;
                    send_text(ws, &ack).await
                }
                Message::Binary(_) => {
                    let ack = Box::pin(commands.answer_binary()).await;
                    send_text(ws, &ack).await
                }
                // The client closed: tungstenite queued the reply;
                // nothing may follow it.
                Message::Close(_) => {
                    let _ = tokio::time::timeout(CLOSE_WAIT, ws.flush()).await;
                    return Flow::Gone;
                }
                // Pongs to pings are tungstenite's.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(()),
            }
        }
    };
    match sent {
        Ok(()) => Flow::Wait,
        Err(e) => {
            tracing::debug!(error = %e, "WebSocket write failed");
            Flow::Gone
        }
    }
}

/// Sends a text frame of `payload` (UTF-8) straight to the socket.
async fn send_text(
    ws: &mut WebSocketStream<UpgradedConnection>,
    payload: &Bytes,
) -> Result<(), Error> {
    let mut header = [0u8; 10];
    let header = text_header(payload.len(), &mut header);
    send_raw(ws, header, payload).await
}

/// Writes a frame's `header` and `payload` straight to the socket, after
/// whatever tungstenite has queued (a pong), so frames never interleave.
async fn send_raw(
    ws: &mut WebSocketStream<UpgradedConnection>,
    header: &[u8],
    payload: &[u8],
) -> Result<(), Error> {
    ws.flush().await?;
    write_all(ws.get_mut(), header, payload).await?;
    Ok(())
}

/// The header of an unmasked, final text frame of `length` bytes.
fn text_header(length: usize, header: &mut [u8; 10]) -> &[u8] {
    header[0] = 0x81;
    if length < 126 {
        header[1] = length as u8;
        &header[..2]
    } else if let Ok(short) = u16::try_from(length) {
        header[1] = 126;
        header[2..4].copy_from_slice(&short.to_be_bytes());
        &header[..4]
    } else {
        header[1] = 127;
        header[2..10].copy_from_slice(&(length as u64).to_be_bytes());
        &header[..10]
    }
}

/// Writes `head` then `body`, in vectored writes.
async fn write_all(socket: &mut UpgradedConnection, head: &[u8], body: &[u8]) -> io::Result<()> {
    let mut written = 0;
    while written < head.len() + body.len() {
        let (head_left, body_left) = match head.get(written..) {
            Some(rest) if !rest.is_empty() => (rest, body),
            _ => (&[][..], &body[written - head.len()..]),
        };
        let n = socket
            .write_vectored(&[IoSlice::new(head_left), IoSlice::new(body_left)])
            .await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        written += n;
    }
    Ok(())
}

/// Writes the close frame, ends the write side, then drops what the
/// client still sends until it closes too.
async fn close(mut ws: WebSocketStream<UpgradedConnection>, code: CloseCode, end: End) {
    let reason = match end {
        End::Stream => "",
        End::Unanswered => "No answer to pings",
        End::TooLarge => "Frame too large",
    };
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    if ws.close(Some(frame)).await.is_err() {
        return;
    }
    let socket = ws.get_mut();
    let _ = socket.shutdown().await;
    let mut scratch = [0u8; 1024];
    let mut drained = 0;
    while drained < CLOSE_DRAIN {
        match socket.read(&mut scratch).await {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::text_header;

    #[test]
    fn text_headers_use_the_shortest_length_encoding() {
        let mut header = [0u8; 10];
        assert_eq!(text_header(125, &mut header), &[0x81, 125]);
        assert_eq!(text_header(126, &mut header), &[0x81, 126, 0, 126]);
        assert_eq!(text_header(65_535, &mut header), &[0x81, 126, 0xff, 0xff]);
        assert_eq!(
            text_header(65_536, &mut header),
            &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]
        );
    }
}
