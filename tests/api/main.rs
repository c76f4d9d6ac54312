//! Black-box tests: each starts the real server on port 0 with its own data
//! directory (and bucket for S3) and talks HTTP/SSE to it.

mod actor_settings;
mod admin;
mod admin_guessing;
mod attachments;
mod binary;
mod client_config;
mod connections;
mod cross_conversation;
mod csrf;
mod durable_messages;
mod durable_sessions;
mod edge;
mod embed;
mod events;
mod extras;
mod framing;
mod hanging_storage;
mod headers;
mod helpers;
mod html_neutralised;
mod join;
mod join_holds;
mod lazy_replay;
mod messages;
mod odd_ids;
mod openapi;
#[cfg(feature = "fault-injection")]
mod panic_recovery;
mod pending_flood;
mod rooms;
mod s3_restart;
mod s3_server;
mod served_uploads;
mod shutdown;
mod slowloris;
mod storage;
mod stream_churn;
mod stuck_streams;
mod system_message;
mod tampering;
mod upload_quota;
