//! WebSockets for the workloads. [`WsStream`], for `idle`: the upgrade
//! and the opening frames read, then a task of its own reads on
//! (answering the server's pings, so the socket stays open however long
//! the run) until the socket is dropped; its buffers are small, so ten
//! thousand of them cost the load generator little. [`open_raw`] and
//! [`WsFrames`], for `fanout`'s epoll readers: the handshake on a raw TCP
//! connection, then the server's frames decoded from the bytes as read,
//! with no task per socket.

use anyhow::{Context, bail};
use futures::StreamExt;
use std::net::Ipv4Addr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// An open WebSocket, read in the background until dropped.
pub struct WsStream {
    reader: JoinHandle<()>,
}

impl WsStream {
    /// Opens `/api/v1/ws` on the server at `base` (`http://host:port`) as
    /// `session_id`, from the loopback address `from`, and reads its two
    /// opening frames.
    pub async fn open(base: &str, session_id: &str, from: Ipv4Addr) -> anyhow::Result<WsStream> {
        let host = base
            .strip_prefix("http://")
            .context("http:// base URL")?
            .trim_end_matches('/');
        let mut request = format!("ws://{host}/api/v1/ws").into_client_request()?;
        request
            .headers_mut()
            .insert("x-session-id", session_id.parse()?);
        let config = WebSocketConfig::default()
            .read_buffer_size(1024)
            .write_buffer_size(0);
        let socket = crate::net::connect(host, from).await?;
        let (mut ws, _) =
            tokio_tungstenite::client_async_with_config(request, socket, Some(config)).await?;
        let mut opening = 0;
        while opening < 2 {
            match ws.next().await {
                Some(Ok(Message::Text(_))) => opening += 1,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => bail!("websocket: closed before its opening frames"),
            }
        }
        let reader = tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
        Ok(WsStream { reader })
    }
}

impl Drop for WsStream {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Largest frame accepted from the server.
const MAX_FRAME: usize = 1024 * 1024;

/// Opcode of a text frame.
pub const TEXT: u8 = 0x1;
/// Opcode of a close frame.
pub const CLOSE: u8 = 0x8;
/// Opcode of a ping.
pub const PING: u8 = 0x9;

/// A pong with no payload, masked (a client's frames always are; the
/// zero key leaves the payload as it is).
pub const PONG: [u8; 6] = [0x8a, 0x80, 0, 0, 0, 0];

/// Opens `/api/v1/ws` as `session_id` on a raw TCP connection: the
/// socket (non-blocking, out of the runtime) once the 101 is read, and a
/// decoder holding what came after the head.
pub async fn open_raw(
    base: &str,
    session_id: &str,
) -> anyhow::Result<(std::net::TcpStream, WsFrames)> {
    let host = base
        .strip_prefix("http://")
        .context("http:// base URL")?
        .trim_end_matches('/');
    let mut socket = tokio::net::TcpStream::connect(host).await?;
    socket.set_nodelay(true)?;
    let request = format!(
        "GET /api/v1/ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         X-Session-Id: {session_id}\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await?;
    let mut raw = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if raw.len() > MAX_HEAD || socket.read_buf(&mut raw).await? == 0 {
            bail!("websocket: no response head");
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let status = head.split(' ').nth(1).unwrap_or("");
    if status != "101" {
        bail!("websocket: {status}");
    }
    raw.drain(..head_end);
    Ok((socket.into_std()?, WsFrames { raw }))
}

/// The server's frames (unmasked, RFC 6455 §5.2) out of the bytes read.
pub struct WsFrames {
    raw: Vec<u8>,
}

impl WsFrames {
    /// Takes bytes read from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        self.raw.extend_from_slice(bytes);
    }

    /// Hands the opcode and payload of each whole frame to `on_frame`;
    /// fails on a masked frame or one over [`MAX_FRAME`].
    pub fn decode(&mut self, mut on_frame: impl FnMut(u8, &[u8])) -> anyhow::Result<()> {
        let mut at = 0;
        while let Some((header, length)) = frame_header(&self.raw[at..])? {
            if self.raw.len() - at < header + length {
                break;
            }
            let opcode = self.raw[at] & 0x0f;
            on_frame(opcode, &self.raw[at + header..at + header + length]);
            at += header + length;
        }
        self.raw.drain(..at);
        Ok(())
    }
}

/// The header length and payload length of the frame `bytes` start with,
/// `None` while its header is incomplete.
fn frame_header(bytes: &[u8]) -> anyhow::Result<Option<(usize, usize)>> {
    let [_, second, rest @ ..] = bytes else {
        return Ok(None);
    };
    anyhow::ensure!(
        second & 0x80 == 0,
        "websocket: a masked frame from the server"
    );
    let (header, length) = match second & 0x7f {
        126 => match rest {
            [a, b, ..] => (4, usize::from(u16::from_be_bytes([*a, *b]))),
            _ => return Ok(None),
        },
        127 => match rest.get(..8) {
            Some(long) => (10, u64::from_be_bytes(long.try_into()?) as usize),
            None => return Ok(None),
        },
        short => (2, usize::from(short)),
    };
    anyhow::ensure!(length <= MAX_FRAME, "websocket: a frame of {length} bytes");
    Ok(Some((header, length)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decode_whole_however_the_bytes_are_split() {
        let mut bytes = vec![0x81, 5];
        bytes.extend_from_slice(b"hello");
        bytes.extend_from_slice(&[0x89, 0]);
        bytes.extend_from_slice(&[0x81, 126, 0, 200]);
        bytes.extend_from_slice(&[b'x'; 200]);
        for split in 0..bytes.len() {
            let mut frames = WsFrames { raw: Vec::new() };
            let mut seen = Vec::new();
            for part in [&bytes[..split], &bytes[split..]] {
                frames.push(part);
                frames
                    .decode(|opcode, payload| seen.push((opcode, payload.len())))
                    .unwrap();
            }
            assert_eq!(
                seen,
                vec![(TEXT, 5), (PING, 0), (TEXT, 200)],
                "split at {split}"
            );
        }
    }

    #[test]
    fn a_masked_or_oversized_frame_is_refused() {
        let mut masked = WsFrames {
            raw: vec![0x81, 0x85, 1, 2, 3, 4],
        };
        assert!(masked.decode(|_, _| {}).is_err());
        let mut huge = WsFrames {
            raw: vec![0x81, 127, 0, 0, 0, 0, 0x10, 0, 0, 0],
        };
        assert!(huge.decode(|_, _| {}).is_err());
    }
}
