//! The fan-out readers: every stream is read on a few plain threads, each
//! with one epoll set (mio), instead of a task per stream. Per event that
//! costs a `recv` and a parse, with no task wake-ups or scheduler work, so
//! the generator takes as little CPU as it can from the server it
//! measures on the same cores.

use crate::client::SseLines;
use crate::sse::BodyDecoder;
use crate::ws::{self, WsFrames};
use anyhow::Context;
use memchr::memmem;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a reader thread looks at the stop flag when nothing arrives.
const STOP_CHECK: Duration = Duration::from_millis(20);

/// Which instance sends which message: message `seq` goes to room
/// `seq mod rooms` through instance `(seq / rooms) mod instances`, so each
/// room's messages rotate over the instances.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub instances: u64,
    pub rooms: u64,
}

impl Spread {
    /// The instance message `seq` is posted to.
    pub fn sender(&self, seq: u64) -> u64 {
        (seq / self.rooms.max(1)) % self.instances.max(1)
    }
}

/// What one reader saw: raw latencies in µs (put into one histogram when
/// the run is over: a histogram per reader costs cache misses per event),
/// those of the messages posted to another instance apart, and which
/// sequence numbers arrived.
struct ReaderLog {
    latencies: Vec<u32>,
    cross_latencies: Vec<u32>,
    /// The instance this stream reads from.
    instance: u64,
    spread: Spread,
    /// One bit per sequence number, grown as numbers arrive, so memory
    /// follows what was delivered rather than what a run could send.
    seen: Vec<u64>,
    /// Sequence numbers at or above this were never sent and are not
    /// counted.
    messages: u64,
    received: u64,
    duplicated: u64,
}

impl ReaderLog {
    fn new(messages: u64, instance: u64, spread: Spread) -> Self {
        ReaderLog {
            latencies: Vec::new(),
            cross_latencies: Vec::new(),
            instance,
            spread,
            seen: Vec::new(),
            messages,
            received: 0,
            duplicated: 0,
        }
    }

    fn record(&mut self, seq: u64, micros: u64) {
        let micros = micros.clamp(1, u64::from(u32::MAX)) as u32;
        self.latencies.push(micros);
        if self.spread.instances > 1 && self.spread.sender(seq) != self.instance {
            self.cross_latencies.push(micros);
        }
        if seq >= self.messages {
            return;
        }
        let index = (seq / 64) as usize;
        if index >= self.seen.len() {
            self.seen.resize(index + 1, 0);
        }
        let word = &mut self.seen[index];
        let bit = 1 << (seq % 64);
        if *word & bit == 0 {
            *word |= bit;
            self.received += 1;
        } else {
            self.duplicated += 1;
        }
    }
}

/// The sequence number and send time of a bench message's event, from its
/// JSON (`"body":"bench:<seq>:<micros since start>"`).
fn parse_body(marker: &memmem::Finder<'_>, data: &[u8]) -> Option<(u64, u64)> {
    let rest = &data[marker.find(data)? + marker.needle().len()..];
    let rest = &rest[..memchr::memchr(b'"', rest)?];
    let colon = memchr::memchr(b':', rest)?;
    Some((decimal(&rest[..colon])?, decimal(&rest[colon + 1..])?))
}

fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| {
        d.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))?
    })
}

/// A reader thread's buffers and constants.
struct Scratch {
    buffer: Vec<u8>,
    data: Vec<u8>,
    marker: memmem::Finder<'static>,
    started: Instant,
}

/// A stream as opened: its socket and what was read past the head.
pub enum Opened {
    /// An event stream and its body decoder.
    Sse(std::net::TcpStream, BodyDecoder),
    /// A WebSocket and its frame decoder.
    Ws(std::net::TcpStream, WsFrames),
}

/// How a stream's bytes become events.
enum Framing {
    Sse { body: BodyDecoder, lines: SseLines },
    Ws(WsFrames),
}

/// One stream as a reader thread holds it.
struct Reader {
    socket: TcpStream,
    framing: Framing,
    log: ReaderLog,
    open: bool,
}

/// Reader threads running until [`Readers::finish`].
pub struct Readers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<anyhow::Result<Vec<ReaderLog>>>>,
}

/// What all readers saw, merged.
pub struct Seen {
    pub latencies: Vec<u32>,
    /// Those of messages posted to another instance than the stream's.
    pub cross_latencies: Vec<u32>,
    pub received: u64,
    pub duplicated: u64,
}

impl Readers {
    /// Starts `threads` threads sharing `streams` (each with the instance
    /// it reads from) out between them; each stream is expected to carry
    /// `messages` bench messages at most, their send times measured from
    /// `started`, posted to the instances as `spread` says.
    pub fn start(
        streams: Vec<(u64, Opened)>,
        threads: usize,
        messages: u64,
        started: Instant,
        spread: Spread,
    ) -> anyhow::Result<Readers> {
        let threads = threads.clamp(1, streams.len().max(1));
        let mut shares: Vec<Vec<Reader>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, (instance, opened)) in streams.into_iter().enumerate() {
            let (socket, framing) = match opened {
                Opened::Sse(socket, body) => (
                    socket,
                    Framing::Sse {
                        body,
                        lines: SseLines::new(),
                    },
                ),
                Opened::Ws(socket, frames) => (socket, Framing::Ws(frames)),
            };
            socket.set_nonblocking(true)?;
            shares[i % threads].push(Reader {
                socket: TcpStream::from_std(socket),
                framing,
                log: ReaderLog::new(messages, instance, spread),
                open: true,
            });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let threads = shares
            .into_iter()
            .map(|share| {
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name("fanout-reader".into())
                    .spawn(move || read_until_stopped(share, &stop, started))
                    .context("starting a reader thread")
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Readers { stop, threads })
    }

    /// Stops the threads and merges what they saw.
    pub async fn finish(self) -> anyhow::Result<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        let threads = self.threads;
        tokio::task::spawn_blocking(move || {
            let mut seen = Seen {
                latencies: Vec::new(),
                cross_latencies: Vec::new(),
                received: 0,
                duplicated: 0,
            };
            for thread in threads {
                let logs = thread
                    .join()
                    .map_err(|_| anyhow::anyhow!("a reader thread panicked"))??;
                for log in logs {
                    seen.latencies.extend_from_slice(&log.latencies);
                    seen.cross_latencies.extend_from_slice(&log.cross_latencies);
                    seen.received += log.received;
                    seen.duplicated += log.duplicated;
                }
            }
            Ok(seen)
        })
        .await?
    }
}

/// One thread's loop: wait for readable streams, read each dry, record
/// the bench messages in what arrived.
fn read_until_stopped(
    mut readers: Vec<Reader>,
    stop: &AtomicBool,
    started: Instant,
) -> anyhow::Result<Vec<ReaderLog>> {
    let mut poll = Poll::new()?;
    for (i, reader) in readers.iter_mut().enumerate() {
        poll.registry()
            .register(&mut reader.socket, Token(i), Interest::READABLE)?;
    }
    let mut scratch = Scratch {
        buffer: vec![0u8; 64 * 1024],
        data: Vec::with_capacity(64 * 1024),
        marker: memmem::Finder::new(b"\"body\":\"bench:"),
        started,
    };
    let mut events = Events::with_capacity(1024);
    // Bytes read together with the response head are already in the
    // decoder, where no epoll event points: take each stream's first
    // events now.
    for i in 0..readers.len() {
        read_ready(&mut readers, i, &poll, &mut scratch)?;
    }
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = poll.poll(&mut events, Some(STOP_CHECK)) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        for event in &events {
            let i = event.token().0;
            read_ready(&mut readers, i, &poll, &mut scratch)?;
        }
    }
    Ok(readers.into_iter().map(|r| r.log).collect())
}

/// Reads stream `i` if it is still open, and stops watching it once it
/// has ended.
fn read_ready(
    readers: &mut [Reader],
    i: usize,
    poll: &Poll,
    scratch: &mut Scratch,
) -> anyhow::Result<()> {
    let reader = &mut readers[i];
    if reader.open {
        reader.open = read_dry(reader, scratch)?;
        if !reader.open {
            poll.registry().deregister(&mut reader.socket)?;
        }
    }
    Ok(())
}

/// Reads until the socket would block, recording what each read brought;
/// `false` once the stream has ended. Each read is decoded and parsed
/// before the next, so no buffer holds more than one read.
fn read_dry(reader: &mut Reader, scratch: &mut Scratch) -> anyhow::Result<bool> {
    // What came with the response head, or was left of a chunk size line.
    if !record(reader, scratch, 0)? {
        return Ok(false);
    }
    loop {
        match reader.socket.read(&mut scratch.buffer) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                if !record(reader, scratch, n)? {
                    return Ok(false);
                }
                // A short read emptied the socket: what arrives next is a
                // new edge for epoll, so no read is spent to see EAGAIN.
                if n < scratch.buffer.len() {
                    return Ok(true);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Ok(false),
        }
    }
}

/// Decodes the first `read` bytes of the scratch buffer (and whatever the
/// decoder kept) and records the bench messages among them; a WebSocket's
/// pings are answered. `false` once the stream has ended (the last chunk,
/// or a close frame).
fn record(reader: &mut Reader, scratch: &mut Scratch, read: usize) -> anyhow::Result<bool> {
    let now = scratch.started.elapsed().as_micros() as u64;
    let log = &mut reader.log;
    let marker = &scratch.marker;
    match &mut reader.framing {
        Framing::Sse { body, lines } => {
            body.push(&scratch.buffer[..read]);
            scratch.data.clear();
            body.decode(&mut scratch.data)?;
            lines.feed(&scratch.data, |line| {
                if let Some((seq, sent)) = parse_body(marker, line) {
                    log.record(seq, now.saturating_sub(sent));
                }
            })?;
            Ok(!body.done())
        }
        Framing::Ws(frames) => {
            frames.push(&scratch.buffer[..read]);
            let (mut pings, mut closed) = (0, false);
            frames.decode(|opcode, payload| match opcode {
                ws::TEXT => {
                    if let Some((seq, sent)) = parse_body(marker, payload) {
                        log.record(seq, now.saturating_sub(sent));
                    }
                }
                ws::PING => pings += 1,
                ws::CLOSE => closed = true,
                _ => {}
            })?;
            for _ in 0..pings {
                // Six bytes into an idle socket's send buffer: a pong
                // that would block is one the server will miss anyway.
                let _ = reader.socket.write(&ws::PONG);
            }
            Ok(!closed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bench_event_gives_its_sequence_and_send_time() {
        let marker = memmem::Finder::new(b"\"body\":\"bench:");
        let event = br#"{"id":"m1","body":"bench:42:1234567","userId":"u"}"#;
        assert_eq!(parse_body(&marker, event), Some((42, 1_234_567)));
        assert_eq!(parse_body(&marker, br#"{"body":"bench:4x:1"}"#), None);
        assert_eq!(parse_body(&marker, br#"{"body":"hello"}"#), None);
        assert_eq!(parse_body(&marker, br#"{"body":"bench::1"}"#), None);
    }

    #[test]
    fn a_reader_log_counts_each_sequence_once_and_repeats_as_duplicates() {
        let alone = Spread {
            instances: 1,
            rooms: 1,
        };
        let mut log = ReaderLog::new(100, 0, alone);
        log.record(7, 500);
        log.record(99, 0);
        log.record(7, 800);
        log.record(1000, 10);
        assert_eq!((log.received, log.duplicated), (2, 1));
        assert_eq!(log.latencies, vec![500, 1, 800, 10]);
        assert!(log.cross_latencies.is_empty());
    }

    #[test]
    fn messages_rotate_over_instances_and_those_from_another_count_as_crossing() {
        let spread = Spread {
            instances: 3,
            rooms: 2,
        };
        let senders: Vec<u64> = (0..8).map(|seq| spread.sender(seq)).collect();
        assert_eq!(senders, [0, 0, 1, 1, 2, 2, 0, 0]);
        let mut log = ReaderLog::new(100, 1, spread);
        for seq in 0..6 {
            log.record(seq, 100 + seq);
        }
        assert_eq!(log.latencies.len(), 6);
        assert_eq!(log.cross_latencies, vec![100, 101, 104, 105]);
    }
}
