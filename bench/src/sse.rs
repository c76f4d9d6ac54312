//! A lean event-stream client: one `GET` on a raw TCP connection, the
//! response head checked, then the chunked body decoded as it arrives.
//! It costs the load generator far less CPU per event than a full HTTP
//! client, so more of the machine is left to the server under test.

use anyhow::{Context, bail};
use std::net::Ipv4Addr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Longest chunk size line accepted (hex size, extensions, CRLF).
const MAX_SIZE_LINE: usize = 256;

/// An open event stream.
pub struct SseStream {
    socket: TcpStream,
    body: BodyDecoder,
}

/// Turns the bytes of a response body, as read, into its data (chunked
/// transfer coding undone).
pub struct BodyDecoder {
    raw: Vec<u8>,
    chunked: bool,
    /// Data bytes left in the current chunk.
    data_left: usize,
    /// The CRLF after a chunk's data is still to be skipped.
    crlf_due: bool,
    done: bool,
}

impl SseStream {
    /// Opens `path` on the server at `base` (`http://host:port`), from
    /// the loopback address `from`.
    pub async fn open(
        base: &str,
        path: &str,
        session_id: &str,
        from: Ipv4Addr,
    ) -> anyhow::Result<SseStream> {
        let host = base
            .strip_prefix("http://")
            .context("http:// base URL")?
            .trim_end_matches('/');
        let mut socket = crate::net::connect(host, from).await?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\nX-Session-Id: {session_id}\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await?;
        let mut raw = Vec::with_capacity(4096);
        let head_end = loop {
            if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if raw.len() > MAX_HEAD || socket.read_buf(&mut raw).await? == 0 {
                bail!("stream: no response head");
            }
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
        let status = head.split(' ').nth(1).unwrap_or("");
        if status != "200" {
            bail!("stream: {status}");
        }
        let chunked = head.contains("transfer-encoding: chunked");
        raw.drain(..head_end);
        Ok(SseStream {
            socket,
            body: BodyDecoder::new(raw, chunked),
        })
    }

    /// Appends the next body bytes to `out`; `false` once the stream ended.
    pub async fn read(&mut self, out: &mut Vec<u8>) -> anyhow::Result<bool> {
        loop {
            self.body.decode(out)?;
            if self.body.done {
                return Ok(false);
            }
            if !out.is_empty() {
                return Ok(true);
            }
            if self.socket.read_buf(&mut self.body.raw).await? == 0 {
                return Ok(false);
            }
        }
    }

    /// The socket, out of the async runtime (non-blocking), and the body
    /// decoder holding what was read past the head.
    pub fn into_parts(self) -> anyhow::Result<(std::net::TcpStream, BodyDecoder)> {
        Ok((self.socket.into_std()?, self.body))
    }
}

impl BodyDecoder {
    /// A decoder holding `raw`, the body bytes read so far.
    pub fn new(raw: Vec<u8>, chunked: bool) -> BodyDecoder {
        BodyDecoder {
            raw,
            chunked,
            data_left: 0,
            crlf_due: false,
            done: false,
        }
    }

    /// Takes bytes read from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        self.raw.extend_from_slice(bytes);
    }

    /// The body has ended (the last chunk was read).
    pub fn done(&self) -> bool {
        self.done
    }

    /// Appends the data decoded so far to `out`; fails on a malformed or
    /// overlong chunk size line.
    pub fn decode(&mut self, out: &mut Vec<u8>) -> anyhow::Result<()> {
        if self.done {
            // The last chunk's trailer, or anything after it, is not data.
            self.raw.clear();
            return Ok(());
        }
        if !self.chunked {
            out.append(&mut self.raw);
            return Ok(());
        }
        let mut at = 0;
        loop {
            if self.data_left > 0 {
                let take = self.data_left.min(self.raw.len() - at);
                if take == 0 {
                    break;
                }
                out.extend_from_slice(&self.raw[at..at + take]);
                at += take;
                self.data_left -= take;
                continue;
            }
            if self.crlf_due {
                if self.raw.len() - at < 2 {
                    break;
                }
                at += 2;
                self.crlf_due = false;
                continue;
            }
            let Some(end) = self.raw[at..].windows(2).position(|w| w == b"\r\n") else {
                break;
            };
            let line = std::str::from_utf8(&self.raw[at..at + end])?;
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .with_context(|| format!("chunk size line {line:?}"))?;
            at += end + 2;
            if size == 0 {
                self.done = true;
                break;
            }
            self.data_left = size;
            self.crlf_due = true;
        }
        self.raw.drain(..at);
        // What is left is an unfinished size line or chunk CRLF.
        anyhow::ensure!(
            self.raw.len() <= MAX_SIZE_LINE,
            "a chunk size line longer than {MAX_SIZE_LINE} bytes"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::BodyDecoder;

    #[test]
    fn a_chunked_body_decodes_whole_however_it_is_split() {
        let body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        for split in 0..body.len() {
            let mut decoder = BodyDecoder::new(Vec::new(), true);
            let mut out = Vec::new();
            for part in [&body[..split], &body[split..]] {
                decoder.push(part);
                decoder.decode(&mut out).unwrap();
            }
            assert_eq!(out, b"hello, world", "split at {split}");
            assert!(decoder.done());
        }
    }

    #[test]
    fn an_endless_chunk_size_line_is_refused() {
        let mut decoder = BodyDecoder::new(Vec::new(), true);
        let mut out = Vec::new();
        decoder.push(&[b'f'; 200]);
        decoder.decode(&mut out).unwrap();
        decoder.push(&[b'f'; 200]);
        assert!(decoder.decode(&mut out).is_err());
        assert!(out.is_empty());
    }
}
