//! The entry of `GET /api/v1/ws`, the events over WebSocket, written
//! while its handler is built beside this: the annotation moves onto the
//! handler once it is routed.

/// The conversation's events over WebSocket, and commands sent up it.
///
/// The session as for the SSE stream (header, `sessionId` query, cookie);
/// no or a bad session answers 401 in the envelope before any upgrade.
/// `?cursor=N` resumes like `Last-Event-ID: N`. A socket counts as an open
/// stream (presence, the participant limit, `peer-leave`) like SSE. After
/// the upgrade the server sends one `WsServerFrame` per event (the opening
/// frames included) with SSE's filtering, order, replay and no-echo rules;
/// the client sends `WsCommand`s, each answered by a `WsAck`. The server
/// pings every `heartbeat_interval` and closes a socket that has not
/// answered within two.
#[utoipa::path(
    get,
    path = "/api/v1/ws",
    tag = "events",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    params(
        ("cursor" = Option<String>, Query, description = "Resume after this event id"),
        ("Upgrade" = String, Header, description = "`websocket`"),
        ("Sec-WebSocket-Version" = String, Header, description = "`13`"),
        ("Sec-WebSocket-Key" = String, Header, description = "The handshake key"),
    ),
    responses(
        (status = 101, description = "Switching Protocols: then `WsServerFrame`s down and `WsCommand`s up, as text frames"),
        (status = 400, description = "Not a WebSocket handshake", body = crate::http::error::ErrorEnvelope),
    )
)]
#[expect(
    dead_code,
    reason = "documentation of a route whose handler is not merged yet"
)]
pub(super) fn upgrade() {}
