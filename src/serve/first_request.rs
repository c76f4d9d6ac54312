//! Reads a connection's first request head and decides whether it is an
//! event stream the stream writer can answer on its own: a plain
//! `GET` of the stream's path (when one is given) over HTTP/1.1, with no
//! body, no upgrade and nothing sent after it. Anything else (and anything odd) goes to hyper
//! with the bytes read so far, so hyper's parsing and errors apply. A head
//! longer than [`MAX_HEAD`] is refused here, so the 431 is an envelope.

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

/// What the first request turned out to be.
pub(super) enum FirstRequest {
    /// An event-stream request, parsed.
    EventStream(Box<Request<Body>>),
    /// Anything else: the bytes read so far, for hyper.
    Other(Bytes),
    /// The head did not end within [`MAX_HEAD`] bytes.
    TooLarge,
}

impl FirstRequest {
    /// Reads until the head is complete, the head is too long, or the
    /// peer stops sending; with no `stream_path`, nothing is an event stream.
    pub(super) async fn read(
        socket: &mut TcpStream,
        stream_path: Option<&str>,
    ) -> io::Result<FirstRequest> {
        let mut read = BytesMut::with_capacity(FIRST_READ);
        loop {
            // One byte past the bound tells a head that is too long.
            let room = MAX_HEAD + 1 - read.len();
            if socket.read_buf(&mut (&mut read).limit(room)).await? == 0 {
                return Ok(FirstRequest::Other(read.freeze()));
            }
            match parse(&read, stream_path) {
                Parsed::Partial if read.len() <= MAX_HEAD => continue,
                Parsed::Partial => return Ok(FirstRequest::TooLarge),
                Parsed::Complete(length) if length > MAX_HEAD => {
                    return Ok(FirstRequest::TooLarge);
                }
                Parsed::EventStream(request) => return Ok(FirstRequest::EventStream(request)),
                Parsed::Complete(_) | Parsed::Other => {
                    return Ok(FirstRequest::Other(read.freeze()));
                }
            }
        }
    }
}

enum Parsed {
    Partial,
    EventStream(Box<Request<Body>>),
    /// A complete head of this length that is not an event stream.
    Complete(usize),
    /// Not parseable here: hyper answers it.
    Other,
}

/// Headers that mean the request is not a plain bodiless `GET`.
const NOT_PLAIN: [HeaderName; 4] = [
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::EXPECT,
    header::UPGRADE,
];

fn parse(read: &[u8], stream_path: Option<&str>) -> Parsed {
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
    let plain = length == read.len()
        && head.method == Some("GET")
        && head.version == Some(1)
        && stream_path.is_some_and(|path| target.split('?').next() == Some(path));
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
    Parsed::EventStream(Box::new(request))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: Option<&str> = Some("/api/v1/signaling");

    fn kind(read: &str) -> &'static str {
        match parse(read.as_bytes(), PATH) {
            Parsed::Partial => "partial",
            Parsed::EventStream(_) => "stream",
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
        let Parsed::Complete(_) = parse(get.as_bytes(), None) else {
            panic!("taken with the writer off");
        };
    }

    #[test]
    fn the_request_keeps_target_and_headers() {
        let get = "GET /api/v1/signaling?cursor=4 HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 7\r\n\r\n";
        let Parsed::EventStream(request) = parse(get.as_bytes(), PATH) else {
            panic!("not taken");
        };
        assert_eq!(request.uri().query(), Some("cursor=4"));
        assert_eq!(request.headers()["last-event-id"], "7");
        assert_eq!(request.headers()["host"], "x");
    }
}
