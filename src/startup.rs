//! Building and running the service: `Application::build(config)` binds the
//! listener and starts the actors, `port()` tells where, and
//! `run_until_stopped()` serves until the shutdown token is cancelled, then
//! ends streams, drains connections and flushes every conversation.

use crate::config::{ClusterBackend, Config, SyncMode};
use crate::http::layers::admission::Admission;
use crate::http::layers::rate_limit::Limiter;
use crate::http::layers::security_headers::SecurityHeaders;
use crate::http::state::{AppInner, AppState};
use crate::http::{EVENT_STREAM_PATH, WEBSOCKET_PATH, router};
use crate::storage::Storage;
use crate::storage::links::DownloadLinks;
use crate::thumbnails::Thumbnailer;
use anyhow::Context;
use chats3_actors::System;
use chats3_actors::cluster::RedisLink;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A built, not yet running, service.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

fn random_secret() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

/// The static directory: as configured, or the one beside the sources when
/// run from elsewhere during development.
fn static_dir(configured: &str) -> PathBuf {
    let path = PathBuf::from(configured);
    if path.is_dir() || path.is_absolute() {
        return path;
    }
    let beside_sources = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(configured);
    if beside_sources.is_dir() {
        beside_sources
    } else {
        path
    }
}

/// Images decoded at once: decoding is CPU-bound, so no more than the
/// cores it may take from serving (sized for 2).
const THUMBNAIL_WORKERS: usize = 2;

/// Uploads waiting for a decoder; past it, an image upload answers 503.
const THUMBNAIL_WAITING: usize = 8;

/// The exit status after the write-ahead log failed (`EX_IOERR`).
const LOG_FAILED_EXIT: i32 = 74;

/// Ends the process as soon as a write or sync of the log fails: what was
/// queued may be lost, so nothing more may be acknowledged, and the next
/// start replays what the log holds.
fn stop_when_the_log_fails(wal: &chats3_actors::wal::Wal) {
    let failure = wal.failure();
    tokio::spawn(async move {
        failure.await;
        tracing::error!(
            "the write-ahead log failed; stopping so that nothing more is acknowledged"
        );
        std::process::exit(LOG_FAILED_EXIT);
    });
}

impl Application {
    /// Opens storage and the write-ahead log, starts the actors (replaying
    /// the log) and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let address = format!("{}:{}", config.server.host, config.server.port);
        let listener = TcpListener::bind(&address)
            .await
            .with_context(|| format!("binding {address}"))?;
        let local = listener.local_addr()?;
        let admin_password = if config.auth.admin_password.is_empty() {
            let generated = random_secret();
            tracing::warn!(admin_password = %generated, "no auth.admin_password configured; generated one for this run");
            generated
        } else {
            config.auth.admin_password.clone()
        };
        let download_key = if config.auth.download_secret.is_empty() {
            random_secret().into_bytes()
        } else {
            config.auth.download_secret.clone().into_bytes()
        };
        let public_url = if config.server.public_url.is_empty() {
            format!("http://{local}")
        } else {
            config.server.public_url.trim_end_matches('/').to_owned()
        };
        let links = Arc::new(DownloadLinks::new(download_key, public_url.clone()));
        // Synced as the log is: what the log lets go once stored must last as long.
        let synced = config.durability.sync == SyncMode::Fsync;
        let storage = Storage::open(&config.storage, synced, links.clone())
            .await
            .context("opening storage")?;
        let log = match config.durability.wal_config() {
            Some(wal) => {
                let dir = wal.dir.display().to_string();
                // File reads and syncs: off the runtime's threads.
                let opened =
                    tokio::task::spawn_blocking(move || chats3_actors::wal::Wal::open(wal))
                        .await
                        .context("opening the write-ahead log")?
                        .with_context(|| format!("opening the write-ahead log in {dir}"))?;
                tracing::info!(dir, "write-ahead log open");
                stop_when_the_log_fails(&opened.0);
                Some(opened)
            }
            None => {
                tracing::info!("write-ahead log off: sessions end at a restart");
                None
            }
        };
        let system = System::start(storage.store(), config.actor_settings(), log)
            .await
            .context("starting actors")?;
        let system = match join_cluster(&config)? {
            Some(link) => system.in_cluster(link),
            None => system,
        };
        let limiter = Arc::new(Limiter::new(&config));
        let admission = Arc::new(Admission::new(&config, &public_url, limiter.clone()));
        let state = AppState::new(AppInner {
            system,
            static_dir: static_dir(&config.server.static_dir),
            storage,
            shutdown: CancellationToken::new(),
            admin_password,
            download_links: links,
            public_url,
            counters: Arc::default(),
            limiter,
            admission,
            security_headers: SecurityHeaders::new(&config),
            thumbnails: Thumbnailer::new(THUMBNAIL_WORKERS, THUMBNAIL_WAITING),
            config,
        });
        Ok(Application { listener, state })
    }

    /// The port the listener is bound to.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Cancelling this token starts a graceful shutdown.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled, then stops accepting,
    /// ends event streams, waits for requests in flight (at most half of
    /// `server.shutdown_timeout`) and flushes every conversation, all
    /// within `server.shutdown_timeout` counted from the cancellation. An
    /// error when anything acknowledged is left unstored: it names what.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application { listener, state } = self;
        let shutdown = state.shutdown.clone();
        let limit = state.config.server.shutdown_timeout;
        let sweeper = {
            let state = state.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                loop {
                    every.tick().await;
                    state.limiter.sweep();
                }
            })
        };
        tracing::info!(url = %state.public_url, "chats3 listening");
        let settings = &state.config.server;
        let options = crate::serve::Options {
            max_connections: settings.max_connections,
            stream_write_timeout: settings.stream_write_timeout,
            fresh_stream_path: settings.fresh_stream_writer.then_some(EVENT_STREAM_PATH),
            fresh_upgrade_path: settings.fresh_stream_writer.then_some(WEBSOCKET_PATH),
        };
        let server =
            crate::serve::serve(listener, router(state.clone()), shutdown.clone(), options);
        let served = tokio::spawn(server);
        shutdown.cancelled().await;
        let deadline = tokio::time::Instant::now() + limit;
        tracing::info!("shutting down: draining connections");
        match tokio::time::timeout(limit / 2, served).await {
            Ok(result) => result.context("server task")?,
            Err(_) => {
                tracing::warn!("connections still open at half the shutdown limit; closing them")
            }
        }
        sweeper.abort();
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        tracing::info!(?left, "flushing conversations");
        if let Err(unstored) = state.system.shutdown(left).await {
            let kept = if state.config.durability.wal_config().is_some() {
                " (the write-ahead log keeps them for the next start)"
            } else {
                ""
            };
            tracing::error!(
                messages = unstored.messages(),
                documents = unstored.documents(),
                conversations = unstored.conversations.len(),
                "shutdown: {unstored}{kept}"
            );
            anyhow::bail!("shutdown: {unstored}{kept}");
        }
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// The link to the cluster's Redis with `backend = "redis"` (connected on
/// first use, so an instance starts while Redis is down and answers 503
/// until it is back).
fn join_cluster(config: &Config) -> anyhow::Result<Option<RedisLink>> {
    let cluster = &config.cluster;
    if cluster.backend != ClusterBackend::Redis {
        return Ok(None);
    }
    let instance_id = if cluster.instance_id.is_empty() {
        uuid::Uuid::new_v4().simple().to_string()
    } else {
        cluster.instance_id.clone()
    };
    let link = RedisLink::connect(&cluster.redis_url, &instance_id, config.actors.call_timeout)
        .context("cluster.redis_url")?;
    tracing::info!(instance_id, "in a cluster on Redis");
    Ok(Some(link))
}
