//! Reads a connection's first request head and decides whether the stream
//! writer can answer it on its own: a plain `GET` over HTTP/1.1 with no
//! body and nothing sent after it, either of the event stream's path with
//! no upgrade, or of the upgrade path asking for an upgrade (each when one
//! is given). Anything else (and anything odd) goes to hyper with the
//! bytes read so far, so hyper's parsing and errors apply. A head longer
//! than [`MAX_HEAD`] is refused here, so the 431 is an envelope.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, Uri, Version, header};
use bytes::{BufMut, Bytes, BytesMut};
use std::io;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The longest request head the service reads (hyper's read buffer is
/// held to it too, for later requests on a connection).
pub(super) const MAX_HEAD: usize = 64 * 1024;
/// Requests with more headers than this are left to hyper.
const MAX_HEADERS: usize = 32;
/// First read size: a browser's event-stream request fits.
const FIRST_READ: usize = 1024;

/// The paths whose first request the stream writer answers (`None`: none).
#[derive(Debug, Clone, Copy)]
pub(super) struct FreshPaths {
    /// The event stream's.
    pub(super) stream: Option<&'static str>,
    /// The one that upgrades (the WebSocket).
    pub(super) upgrade: Option<&'static str>,
}

/// What the first request turned out to be.
pub(super) enum FirstRequest {
    /// An event-stream request, parsed.
    EventStream(Box<Request<Body>>),
    /// A request to upgrade the connection, parsed.
    Upgrade(Box<Request<Body>>),
    /// Anything else: the bytes read so far, for hyper.
    Other(Bytes),
    /// The head did not end within [`MAX_HEAD`] bytes.
    TooLarge,
}

impl FirstRequest {
    /// Reads until the head is complete, the head is too long, or the
    /// peer stops sending.
    pub(super) async fn read(
        socket: &mut TcpStream,
        paths: FreshPaths,
    ) -> io::Result<FirstRequest> {
        let mut read = BytesMut::with_capacity(FIRST_READ);
        loop {
            // One byte past the bound tells a head that is too long.
            let room = MAX_HEAD + 1 - read.len();
            if socket.read_buf(&mut (&mut read).limit(room)).await? == 0 {
                return Ok(FirstRequest::Other(read.freeze()));
            }
            match parse(&read, paths) {
                Parsed::Partial if read.len() <= MAX_HEAD => continue,
                Parsed::Partial => return Ok(FirstRequest::TooLarge),
                Parsed::Complete(length) if length > MAX_HEAD => {
                    return Ok(FirstRequest::TooLarge);
                }
                Parsed::Fresh(request, Kind::Stream) => {
                    return Ok(FirstRequest::EventStream(request));
                }
                Parsed::Fresh(request, Kind::Upgrade) => return Ok(FirstRequest::Upgrade(request)),
                Parsed::Complete(_) | Parsed::Other => {
                    return Ok(FirstRequest::Other(read.freeze()));
                }
            }
        }
    }
}

enum Parsed {
    Partial,
    Fresh(Box<Request<Body>>, Kind),
    /// A complete head of this length that is not an event stream.
    Complete(usize),
    /// Not parseable here: hyper answers it.
    Other,
}

/// Which of the fresh paths a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Stream,
    Upgrade,
}

/// Headers that mean the request is not a plain bodiless `GET`.
const NOT_PLAIN: [HeaderName; 3] = [
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::EXPECT,
];

fn parse(read: &[u8], paths: FreshPaths) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut headers);
    let length = match head.parse(read) {
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Ok(httparse::Status::Complete(length)) => length,
        // Keep reading to the head's end, so a head both long and with
        // many fields is measured too.
        Err(httparse::Error::TooManyHeaders) if !read.windows(4).any(|w| w == b"\r\n\r\n") => {
            return Parsed::Partial;
        }
        Err(_) => return Parsed::Other,
    };
    let target = head.path.unwrap_or("");
    let path = target.split('?').next();
    let kind = if paths.stream.is_some() && path == paths.stream {
        Kind::Stream
    } else if paths.upgrade.is_some() && path == paths.upgrade {
        Kind::Upgrade
    } else {
        return Parsed::Complete(length);
    };
    let upgrades = head
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case(header::UPGRADE.as_str()));
    let plain = length == read.len()
        && head.method == Some("GET")
        && head.version == Some(1)
        && upgrades == (kind == Kind::Upgrade);
    if !plain {
        return Parsed::Complete(length);
    }
    let Ok(uri) = target.parse::<Uri>() else {
        return Parsed::Other;
    };
    let mut request = Request::new(Body::empty());
    *request.method_mut() = Method::GET;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    let map = request.headers_mut();
    for h in head.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return Parsed::Other;
        };
        if NOT_PLAIN.contains(&name) {
            return Parsed::Other;
        }
        map.append(name, value);
    }
    Parsed::Fresh(Box::new(request), kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATHS: FreshPaths = FreshPaths {
        stream: Some("/api/v1/signaling"),
        upgrade: Some("/api/v1/ws"),
    };

    fn kind(read: &str) -> &'static str {
        match parse(read.as_bytes(), PATHS) {
            Parsed::Partial => "partial",
            Parsed::Fresh(_, Kind::Stream) => "stream",
            Parsed::Fresh(_, Kind::Upgrade) => "upgrade",
            Parsed::Complete(_) | Parsed::Other => "other",
        }
    }

    #[test]
    fn only_a_plain_get_of_the_stream_is_taken() {
        let get = "GET /api/v1/signaling?cursor=4 HTTP/1.1\r\nHost: x\r\nCookie: s=1\r\n\r\n";
        assert_eq!(kind(get), "stream");
        assert_eq!(
            kind("GET /api/v1/signaling HTTP/1.1\r\nHost: x\r\n"),
            "partial"
        );
        assert_eq!(
            kind("GET /api/v1/messages HTTP/1.1\r\nHost: x\r\n\r\n"),
            "other"
        );
        assert_eq!(
            kind("GET /api/v1/signalingx HTTP/1.1\r\nHost: x\r\n\r\n"),
            "other"
        );
        assert_eq!(
            kind("POST /api/v1/signaling HTTP/1.1\r\nHost: x\r\n\r\n"),
            "other"
        );
        assert_eq!(
            kind("HEAD /api/v1/signaling HTTP/1.1\r\nHost: x\r\n\r\n"),
            "other"
        );
        assert_eq!(
            kind("GET /api/v1/signaling HTTP/1.0\r\nHost: x\r\n\r\n"),
            "other"
        );
        let with_body = "GET /api/v1/signaling HTTP/1.1\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(kind(with_body), "other");
        let upgrade = "GET /api/v1/signaling HTTP/1.1\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(kind(upgrade), "other");
        let pipelined = format!("{get}GET /health HTTP/1.1\r\n\r\n");
        assert_eq!(kind(&pipelined), "other");
        assert_eq!(kind("NOT HTTP AT ALL\r\n\r\n"), "other");
        let off = FreshPaths {
            stream: None,
            upgrade: None,
        };
        let Parsed::Complete(_) = parse(get.as_bytes(), off) else {
            panic!("taken with the writer off");
        };
    }

    #[test]
    fn only_an_upgrade_of_the_upgrade_path_is_taken() {
        let ws = "GET /api/v1/ws?cursor=3 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
        assert_eq!(kind(ws), "upgrade");
        assert_eq!(kind("GET /api/v1/ws HTTP/1.1\r\nHost: x\r\n\r\n"), "other");
        let post = "POST /api/v1/ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(kind(post), "other");
        let with_body =
            "GET /api/v1/ws HTTP/1.1\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(kind(with_body), "other");
        let early_frame = format!("{ws}\u{81}\u{80}");
        assert_eq!(kind(&early_frame), "other");
        let off = FreshPaths {
            stream: Some("/api/v1/signaling"),
            upgrade: None,
        };
        let Parsed::Complete(_) = parse(ws.as_bytes(), off) else {
            panic!("taken with the upgrade path off");
        };
    }

    #[test]
    fn the_request_keeps_target_and_headers() {
        let get = "GET /api/v1/signaling?cursor=4 HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 7\r\n\r\n";
        let Parsed::Fresh(request, Kind::Stream) = parse(get.as_bytes(), PATHS) else {
            panic!("not taken");
        };
        assert_eq!(request.uri().query(), Some("cursor=4"));
        assert_eq!(request.headers()["last-event-id"], "7");
        assert_eq!(request.headers()["host"], "x");
    }
}
