//! Configuration: the embedded `config.toml` as defaults, an optional file
//! on top, then `CHATS3_<SECTION>__<KEY>` environment variables.

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// The defaults, identical to the repository's `config.toml`.
pub const DEFAULT_CONFIG: &str = include_str!("../config.toml");

/// The shortest `actors.nonce_ttl`: a ticket is accepted from 60 s before
/// to 60 s after its `issuedAt`, so its nonce must be remembered 120 s.
const MIN_NONCE_TTL: Duration = Duration::from_secs(120);

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`
    pub server: ServerConfig,
    /// `[storage]`
    pub storage: StorageConfig,
    /// `[durability]`
    pub durability: DurabilityConfig,
    /// `[cluster]`
    pub cluster: ClusterConfig,
    /// `[auth]`
    pub auth: AuthConfig,
    /// `[[integrators]]`: who may embed rooms and post system messages.
    #[serde(default)]
    pub integrators: Vec<Integrator>,
    /// `[actors]`
    pub actors: ActorsConfig,
    /// `[limits]`
    pub limits: LimitsConfig,
    /// `[rate_limit]`
    pub rate_limit: RateLimitConfig,
    /// `[log]`
    pub log: LogConfig,
    /// `[webrtc]`
    pub webrtc: WebRtcConfig,
    /// `[embed]`
    pub embed: EmbedConfig,
}

/// `[webrtc]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebRtcConfig {
    /// The ICE servers the room page uses for calls.
    pub ice_servers: Vec<IceServer>,
}

/// One STUN/TURN server, as `RTCPeerConnection` takes it.
#[derive(Debug, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:` or `turn:` URLs.
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// `[embed]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedConfig {
    /// Whether an embedded room shows the Leave button.
    pub show_leave: bool,
    /// Whether an embedded room shows the call buttons.
    pub show_calls: bool,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on (0: any free one).
    pub port: u16,
    /// Absolute URL clients reach the service at; empty: the listener's.
    pub public_url: String,
    /// Secure + SameSite=None cookies and HSTS.
    pub production: bool,
    /// Longest a graceful shutdown may take.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Deadline of a request other than streams and uploads.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Interval of the `: heartbeat` comment on event streams.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Directory of the browser UI.
    pub static_dir: String,
    /// Peers whose `X-Forwarded-For` names the client (reverse proxies).
    pub trusted_proxies: Vec<crate::http::client_addr::ProxyNet>,
    /// Bearer token `GET /metrics` requires; empty leaves it open.
    pub metrics_token: String,
    /// An event stream (or any answer) whose client reads nothing for this
    /// long is ended.
    #[serde(with = "humantime_serde")]
    pub stream_write_timeout: Duration,
    /// Connections open at once; past it new ones are closed at once.
    pub max_connections: usize,
    /// Whether an event stream opened on a fresh connection is written
    /// straight onto the socket (an idle stream then holds no HTTP
    /// buffers); off, hyper serves every request.
    pub fresh_stream_writer: bool,
}

/// Which storage backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A local directory.
    Fs,
    /// An S3 bucket.
    S3,
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Which backend stores the data.
    pub backend: Backend,
    /// Root directory of the fs backend.
    pub fs_root: String,
    /// Longest one storage call may take; past it the call fails.
    #[serde(with = "humantime_serde")]
    pub operation_timeout: Duration,
    /// `[storage.s3]`
    pub s3: S3Config,
}

/// `[storage.s3]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Bucket name (required for S3).
    pub bucket: String,
    /// Region of the bucket.
    pub region: String,
    /// Custom endpoint (MinIO, Ceph, R2...); empty: AWS.
    pub endpoint: String,
    /// Path-style addressing, as most S3 clones need.
    pub force_path_style: bool,
    /// Static access key; empty: the standard AWS chain.
    pub access_key: String,
    /// Static secret key; empty: the standard AWS chain.
    pub secret_key: String,
    /// Put in front of every key.
    pub prefix: String,
}

/// How the write-ahead log makes a change durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// Written and `fdatasync`ed: survives a power loss.
    Fsync,
    /// Written only: survives the process being killed.
    Write,
}

/// The smallest `durability.segment_bytes`: a segment holds at least a few
/// records.
const MIN_SEGMENT_BYTES: u64 = 4096;

/// `[durability]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurabilityConfig {
    /// Directory of the write-ahead log; empty: no log.
    pub wal_dir: String,
    /// How long the writer gathers changes after a sync before the next.
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    /// How a change is made durable.
    pub sync: SyncMode,
    /// Bytes the log may hold; past it changes answer 503.
    pub max_bytes: u64,
    /// Bytes of one segment file.
    pub segment_bytes: u64,
}

impl DurabilityConfig {
    /// The log's settings, `None` when the log is off.
    pub fn wal_config(&self) -> Option<chats3_actors::wal::WalConfig> {
        use chats3_actors::wal;
        (!self.wal_dir.is_empty()).then(|| wal::WalConfig {
            dir: self.wal_dir.clone().into(),
            commit_interval: self.commit_interval,
            sync: match self.sync {
                SyncMode::Fsync => wal::SyncMode::Fsync,
                SyncMode::Write => wal::SyncMode::Write,
            },
            segment_bytes: self.segment_bytes,
            max_bytes: self.max_bytes,
        })
    }
}

/// `[cluster]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// One process, or several on one Redis.
    pub backend: ClusterBackend,
    /// The shared Redis (with `redis`).
    pub redis_url: String,
    /// This instance's name; empty: generated at start.
    pub instance_id: String,
}

/// `cluster.backend`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterBackend {
    /// One process: everything in its memory (and its log).
    Local,
    /// Several instances sharing one Redis.
    Redis,
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Password of the admin routes; empty: generated and logged.
    pub admin_password: String,
    /// Signs fs download links; empty: random per process.
    pub download_secret: String,
}

/// One `[[integrators]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Integrator {
    /// The integrator's id in tickets and system messages.
    pub id: String,
    /// The HMAC secret it signs with.
    pub secret: String,
    /// Origins it embeds from: exact or `scheme://*.domain[:port]`.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Whether its valid tickets and system messages create a
    /// conversation that does not exist (as Chats3 let integrators do);
    /// a closed one is never reopened.
    #[serde(default)]
    pub auto_create: bool,
}

/// `[actors]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorsConfig {
    /// A batch goes to storage at least this often.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// ...or as soon as this many messages wait.
    pub flush_max_batch: usize,
    /// Unstored messages per conversation past which sends answer 503.
    pub max_pending: usize,
    /// Conversations loaded at once; past it new ones answer 503.
    pub max_conversations: usize,
    /// Estimated bytes loaded conversations may hold; 0 = no bound.
    pub max_loaded_memory: usize,
    /// A conversation idle this long is unloaded.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A settled conversation idle this long hibernates (0: never).
    #[serde(with = "humantime_serde")]
    pub hibernate_after: Duration,
    /// How long a messageId is remembered for retries.
    #[serde(with = "humantime_serde")]
    pub idempotency_ttl: Duration,
    /// MessageIds remembered at most per conversation.
    pub idempotency_max: usize,
    /// How long events stay replayable.
    #[serde(with = "humantime_serde")]
    pub signaling_buffer_ttl: Duration,
    /// How many events stay replayable.
    pub signaling_buffer_len: usize,
    /// Messages kept in memory per live conversation.
    pub history_tail: usize,
    /// Events a slow stream may fall behind before it must reconnect.
    pub subscriber_queue: usize,
    /// Open event streams allowed per session.
    pub max_streams_per_session: usize,
    /// Delay before peer-leave after a user's last stream closes.
    #[serde(with = "humantime_serde")]
    pub leave_grace: Duration,
    /// A session unused this long ends (every request restarts it).
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// Sessions held at once; past it new ones answer 503.
    pub max_sessions: usize,
    /// How long a used ticket nonce is remembered (refused when reused).
    #[serde(with = "humantime_serde")]
    pub nonce_ttl: Duration,
    /// Ticket nonces remembered at once; past it new tickets answer 503.
    pub max_nonces: usize,
    /// Longest a request waits for an actor's answer.
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Participants of one conversation.
    pub max_participants: usize,
    /// How long a user who joined without opening a stream counts toward
    /// the participant limit.
    #[serde(with = "humantime_serde")]
    pub join_hold: Duration,
    /// When a join finds the room full, holds of users who joined this
    /// long ago without opening a stream stop counting.
    #[serde(with = "humantime_serde")]
    pub join_hold_when_full: Duration,
    /// Characters in a message body.
    pub max_message_len: usize,
    /// Bytes of a JSON request body.
    pub max_json_body: usize,
    /// Bytes of an uploaded file.
    pub max_upload: usize,
    /// Bytes of attachments per conversation; 0 = no bound.
    pub max_upload_bytes_per_conversation: u64,
}

/// `[rate_limit]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per minute per client address over all routes; 0: off.
    pub per_ip_per_minute: u32,
    /// Requests per minute per client address on each admin route; 0: off.
    pub admin_per_minute: u32,
    /// Messages per minute each user may send (HTTP or WebSocket); 0: off.
    pub messages_per_user_per_minute: u32,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Text or JSON lines.
    pub format: LogFormat,
    /// Filter such as `info`; `RUST_LOG` wins.
    pub level: String,
}

impl Config {
    /// Defaults, then `path` if given (it must exist), then the environment.
    pub fn load(path: Option<&Path>) -> Result<Config, String> {
        let mut figment = Figment::from(Toml::string(DEFAULT_CONFIG));
        if let Some(path) = path {
            if !path.exists() {
                return Err(format!("config file {} does not exist", path.display()));
            }
            figment = figment.merge(Toml::file(path));
        }
        Config::extract(
            figment.merge(
                // Only SECTION__KEY variables are settings; CHATS3_CONFIG and
                // other CHATS3_* variables belong to the binary and tools.
                Env::prefixed("CHATS3_")
                    .filter(|key| key.as_str().contains("__"))
                    .split("__"),
            ),
        )
    }

    /// Defaults, then the TOML `text`; the environment is not read. What
    /// [`Config::load`] makes of a file with this text, for checking
    /// configuration text on its own.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        Config::extract(Figment::from(Toml::string(DEFAULT_CONFIG)).merge(Toml::string(text)))
    }

    /// The typed, validated configuration of `figment`, or one line saying
    /// what is wrong.
    fn extract(figment: Figment) -> Result<Config, String> {
        let config: Config = figment
            .extract()
            .map_err(|e| e.to_string().replace('\n', "; "))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.storage.backend == Backend::S3 && self.storage.s3.bucket.is_empty() {
            return Err("storage.backend is \"s3\" but storage.s3.bucket is empty".into());
        }
        if self.actors.flush_max_batch == 0
            || self.actors.max_pending == 0
            || self.actors.history_tail == 0
        {
            return Err(
                "actors.flush_max_batch, max_pending and history_tail must be at least 1".into(),
            );
        }
        if self.storage.operation_timeout.is_zero() {
            return Err("storage.operation_timeout must be more than 0".into());
        }
        if self.cluster.backend == ClusterBackend::Redis && self.cluster.redis_url.is_empty() {
            return Err("cluster.redis_url is required with cluster.backend = \"redis\"".into());
        }
        let durability = &self.durability;
        if durability.segment_bytes < MIN_SEGMENT_BYTES
            || durability.max_bytes < durability.segment_bytes
        {
            return Err(format!(
                "durability.segment_bytes must be at least {MIN_SEGMENT_BYTES} and durability.max_bytes at least segment_bytes"
            ));
        }
        if self.limits.max_participants == 0 {
            return Err("limits.max_participants must be at least 1".into());
        }
        let actors = &self.actors;
        if actors.idempotency_max == 0 || actors.max_sessions == 0 || actors.max_nonces == 0 {
            return Err(
                "actors.idempotency_max, max_sessions and max_nonces must be at least 1".into(),
            );
        }
        if actors.session_ttl.is_zero() || actors.call_timeout.is_zero() {
            return Err("actors.session_ttl and call_timeout must be more than 0".into());
        }
        if actors.nonce_ttl < MIN_NONCE_TTL {
            return Err(format!(
                "actors.nonce_ttl must be at least {}: a ticket is accepted for 60s either side of its issuedAt, and its nonce must be remembered as long",
                humantime::format_duration(MIN_NONCE_TTL)
            ));
        }
        for integrator in &self.integrators {
            if integrator.id.is_empty() || integrator.secret.is_empty() {
                return Err("every [[integrators]] entry needs an id and a secret".into());
            }
            if let Some(bad) = integrator
                .allowed_origins
                .iter()
                .find(|o| crate::http::origin::Pattern::parse(o).is_none())
            {
                return Err(format!(
                    "integrator {}: allowed origin {bad:?} is not scheme://host[:port] or scheme://*.domain[:port]",
                    integrator.id
                ));
            }
        }
        Ok(())
    }

    /// The actor system's knobs: every one of them comes from here.
    pub fn actor_settings(&self) -> chats3_actors::Settings {
        let a = &self.actors;
        chats3_actors::Settings {
            flush_interval: a.flush_interval,
            flush_max_batch: a.flush_max_batch,
            max_pending: a.max_pending,
            idle_timeout: a.idle_timeout,
            hibernate_after: a.hibernate_after,
            idempotency_ttl: a.idempotency_ttl,
            idempotency_max: a.idempotency_max,
            signaling_buffer_ttl: a.signaling_buffer_ttl,
            signaling_buffer_len: a.signaling_buffer_len,
            history_tail: a.history_tail,
            max_participants: self.limits.max_participants,
            max_streams_per_session: a.max_streams_per_session,
            subscriber_queue: a.subscriber_queue,
            leave_grace: a.leave_grace,
            join_hold: self.limits.join_hold,
            join_hold_when_full: self.limits.join_hold_when_full,
            session_ttl: a.session_ttl,
            max_sessions: a.max_sessions,
            nonce_ttl: a.nonce_ttl,
            max_nonces: a.max_nonces,
            max_conversations: a.max_conversations,
            max_loaded_memory: a.max_loaded_memory,
            call_timeout: a.call_timeout,
            max_upload_bytes_per_conversation: self.limits.max_upload_bytes_per_conversation,
        }
    }

    /// Every integrator origin, for CSP `frame-ancestors` and CORS.
    pub fn all_origins(&self) -> impl Iterator<Item = &str> {
        self.integrators
            .iter()
            .flat_map(|i| i.allowed_origins.iter().map(String::as_str))
    }
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_load() {
        let config = Config::load(None).unwrap();
        assert_eq!(config.server.port, 3000);
        assert_eq!(config.actors.flush_interval, Duration::from_secs(1));
        assert_eq!(config.limits.max_participants, 50);
    }

    #[test]
    fn the_log_is_on_by_default_and_an_empty_dir_turns_it_off() {
        let mut config = Config::load(None).unwrap();
        let wal = config.durability.wal_config().expect("on by default");
        assert_eq!(wal.dir, std::path::PathBuf::from("./data/wal"));
        assert_eq!(wal.commit_interval, Duration::from_millis(2));
        assert_eq!(wal.sync, chats3_actors::wal::SyncMode::Fsync);
        assert_eq!(wal.segment_bytes, 64 << 20);
        assert_eq!(wal.max_bytes, 1 << 30);
        config.durability.wal_dir.clear();
        assert!(config.durability.wal_config().is_none());
    }

    #[test]
    fn the_log_is_set_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let text = "[durability]\nwal_dir = \"\"\nsync = \"write\"\ncommit_interval = \"5ms\"\n";
        std::fs::write(&path, text).unwrap();
        let config = Config::load(Some(&path)).unwrap();
        assert!(config.durability.wal_config().is_none());
        assert_eq!(config.durability.sync, SyncMode::Write);
        assert_eq!(config.durability.commit_interval, Duration::from_millis(5));
    }

    #[test]
    fn the_defaults_are_the_actor_systems_defaults() {
        let settings = Config::load(None).unwrap().actor_settings();
        let defaults = chats3_actors::Settings::default();
        assert_eq!(format!("{settings:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn every_actor_setting_comes_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let text = "[actors]\nsession_ttl = \"2h\"\nmax_sessions = 7\nnonce_ttl = \"3m\"\n\
            max_nonces = 8\ncall_timeout = \"4s\"\nidempotency_max = 9\n\
            [limits]\njoin_hold = \"90s\"\n";
        std::fs::write(&path, text).unwrap();
        let settings = Config::load(Some(&path)).unwrap().actor_settings();
        assert_eq!(settings.session_ttl, Duration::from_secs(7200));
        assert_eq!(settings.max_sessions, 7);
        assert_eq!(settings.nonce_ttl, Duration::from_secs(180));
        assert_eq!(settings.max_nonces, 8);
        assert_eq!(settings.call_timeout, Duration::from_secs(4));
        assert_eq!(settings.idempotency_max, 9);
        assert_eq!(settings.join_hold, Duration::from_secs(90));
    }

    #[test]
    fn bad_files_give_one_clear_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("[server]\nprot = 1\n", "prot"),
            ("[actors]\nflush_interval = \"soon\"\n", "flush_interval"),
            ("[storage]\nbackend = \"s3\"\n", "bucket"),
            ("[actors]\nmax_sessions = 0\n", "max_sessions"),
            ("[actors]\ncall_timeout = \"0s\"\n", "call_timeout"),
            ("[actors]\nnonce_ttl = \"1m\"\n", "nonce_ttl"),
            ("[durability]\nsync = \"never\"\n", "sync"),
            ("[durability]\nsegment_bytes = 10\n", "segment_bytes"),
            ("[durability]\nmax_bytes = 4096\n", "max_bytes"),
        ];
        for (text, needle) in cases {
            let path = dir.path().join("c.toml");
            std::fs::write(&path, text).unwrap();
            let error = Config::load(Some(&path)).unwrap_err();
            assert!(error.contains(needle), "{error}");
            assert!(!error.contains('\n'));
        }
    }
}
