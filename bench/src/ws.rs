//! A WebSocket held open for the `idle` workload: the upgrade and the
//! opening frames read, then a task of its own reads on (answering the
//! server's pings, so the socket stays open however long the run) until
//! the socket is dropped. Its buffers are small, so ten thousand of them
//! cost the load generator little.

use anyhow::{Context, bail};
use futures::StreamExt;
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
    /// `session_id` and reads its two opening frames.
    pub async fn open(base: &str, session_id: &str) -> anyhow::Result<WsStream> {
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
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
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
