//! chats3: an embeddable real-time chat service with write-behind S3
//! persistence, API-compatible with Chats3.
//!
//! Layout:
//! - `config`: typed configuration (embedded defaults, file, env overlay).
//! - `telemetry`: tracing setup (text or JSON).
//! - `storage`: the fs and S3 implementations of the actors' store trait.
//! - `http`: the axum router, its state, the layers every request passes,
//!   one handler file per API area, the event-stream body and the
//!   WebSocket (each its own map).
//! - `serve`: the accept loop (hyper HTTP/1.1 per connection, graceful stop),
//!   the writer that answers an event stream or a WebSocket upgrade asked
//!   for on a fresh connection (`[server] fresh_stream_writer`), and the
//!   handover of upgraded connections.
//! - `startup`: [`startup::Application`]: build → port → run until stopped.
//! - `signing`: HMAC signatures (tickets, system messages, download links).
//! - `thumbnails`: bounded decoding and scaling of uploaded images.
//!
//! The actor system itself (conversations, flushers, sessions, nonces) is
//! the `chats3-actors` crate in `actors/`.

#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub mod http;
pub mod serve;
pub mod signing;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod thumbnails;
