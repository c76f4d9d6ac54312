//! The chats3 calls the workloads make.

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// One server.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub admin_password: String,
}

/// A joined user.
#[derive(Clone, Debug)]
pub struct User {
    pub session_id: String,
}

impl Api {
    pub fn new(base: &str, admin_password: &str) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .tcp_nodelay(true)
            .build()
            .expect("HTTP client");
        Api {
            base: base.trim_end_matches('/').to_owned(),
            http,
            admin_password: admin_password.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn details(response: reqwest::Response) -> anyhow::Result<Value> {
        let status = response.status();
        let body: Value = response.json().await.context("JSON answer")?;
        if !status.is_success() {
            bail!("{status}: {}", body["message"]);
        }
        Ok(body["details"].clone())
    }

    /// Creates a conversation; returns (id, join code).
    pub async fn create_room(&self) -> anyhow::Result<(String, String)> {
        let response = self
            .http
            .post(self.url("/api/v1/admin/conversations"))
            .json(&json!({ "adminPassword": self.admin_password }))
            .send()
            .await?;
        let details = Self::details(response)
            .await
            .context("creating a conversation (admin password?)")?;
        Ok((
            details["conversationId"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            details["joinCode"].as_str().unwrap_or_default().to_owned(),
        ))
    }

    pub async fn join(&self, room: &str, code: &str, name: &str) -> anyhow::Result<User> {
        let response = self
            .http
            .post(self.url("/api/v1/join"))
            .json(&json!({ "conversationId": room, "joinCode": code, "displayName": name }))
            .send()
            .await?;
        let details = Self::details(response).await.context("joining")?;
        Ok(User {
            session_id: details["sessionId"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// Posts a message; returns the HTTP status.
    pub async fn post(&self, user: &User, body: &str) -> anyhow::Result<u16> {
        let response = self
            .http
            .post(self.url("/api/v1/messages"))
            .header("x-session-id", &user.session_id)
            .json(&json!({ "body": body, "clientTimestamp": "2025-01-01T00:00:00.000Z" }))
            .send()
            .await?;
        let status = response.status().as_u16();
        let _ = response.bytes().await;
        Ok(status)
    }

    /// GETs a path; returns the status.
    pub async fn get_status(&self, user: Option<&User>, path: &str) -> anyhow::Result<u16> {
        let mut request = self.http.get(self.url(path));
        if let Some(user) = user {
            request = request.header("x-session-id", &user.session_id);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let _ = response.bytes().await;
        Ok(status)
    }

    /// GETs a path as the user; returns the envelope's `details`.
    pub async fn get_details(&self, user: &User, path: &str) -> anyhow::Result<serde_json::Value> {
        let response = self
            .http
            .get(self.url(path))
            .header("x-session-id", &user.session_id)
            .send()
            .await?;
        let status = response.status().as_u16();
        anyhow::ensure!(status == 200, "{path} answered {status}");
        let mut body: serde_json::Value = response.json().await?;
        Ok(body["details"].take())
    }

    /// Opens an event stream for the user, from 127.0.0.1.
    pub async fn stream(&self, user: &User) -> anyhow::Result<crate::sse::SseStream> {
        self.stream_from(user, std::net::Ipv4Addr::LOCALHOST).await
    }

    /// Opens an event stream for the user from the loopback address `from`.
    pub async fn stream_from(
        &self,
        user: &User,
        from: std::net::Ipv4Addr,
    ) -> anyhow::Result<crate::sse::SseStream> {
        crate::sse::SseStream::open(&self.base, "/api/v1/signaling", &user.session_id, from).await
    }

    /// A counter or gauge from `/metrics`.
    pub async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await?
            .text()
            .await?;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .with_context(|| format!("metric {name} not found"))
    }
}

/// Longest SSE line accepted (an event's data is at most a few KiB).
const MAX_LINE: usize = 1024 * 1024;

/// Counts complete SSE `data:` lines in chunks, handing each to `on_data`.
pub struct SseLines {
    pending: Vec<u8>,
}

impl SseLines {
    pub fn new() -> Self {
        SseLines {
            pending: Vec::new(),
        }
    }

    /// Hands each line `chunk` completes to `on_data`; fails once an
    /// unfinished line is longer than [`MAX_LINE`].
    pub fn feed(&mut self, chunk: &[u8], mut on_data: impl FnMut(&[u8])) -> anyhow::Result<()> {
        let mut rest = chunk;
        if !self.pending.is_empty() {
            // Finish the line a previous chunk left open.
            let Some(end) = memchr::memchr(b'\n', rest) else {
                return self.keep(rest);
            };
            self.pending.extend_from_slice(&rest[..end]);
            if let Some(data) = self.pending.strip_prefix(b"data: ") {
                on_data(data);
            }
            self.pending.clear();
            rest = &rest[end + 1..];
        }
        // Whole lines straight from the chunk; only a partial last line is
        // copied.
        while let Some(end) = memchr::memchr(b'\n', rest) {
            if let Some(data) = rest[..end].strip_prefix(b"data: ") {
                on_data(data);
            }
            rest = &rest[end + 1..];
        }
        self.keep(rest)
    }

    /// Keeps the start of an unfinished line.
    fn keep(&mut self, part: &[u8]) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.pending.len() + part.len() <= MAX_LINE,
            "an SSE line longer than {MAX_LINE} bytes"
        );
        self.pending.extend_from_slice(part);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_LINE, SseLines};

    #[test]
    fn data_lines_are_found_whole_across_chunk_boundaries() {
        let stream =
            b"retry: 3000\n\nid: 1\ndata: {\"a\":1}\n\n: heartbeat\n\nid: 2\ndata: {\"b\":2}\n\n";
        for split in 0..stream.len() {
            for second in split..stream.len() {
                let mut lines = SseLines::new();
                let mut seen = Vec::new();
                for chunk in [&stream[..split], &stream[split..second], &stream[second..]] {
                    lines.feed(chunk, |d| seen.push(d.to_vec())).unwrap();
                }
                assert_eq!(
                    seen,
                    [b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()],
                    "split at {split}, {second}"
                );
            }
        }
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut lines = SseLines::new();
        let half = vec![b'x'; MAX_LINE / 2 + 1];
        lines.feed(b"data: ", |_| {}).unwrap();
        lines.feed(&half, |_| {}).unwrap();
        assert!(lines.feed(&half, |_| {}).is_err());
    }
}
