//! The `chats3` binary: load configuration, start telemetry, build the
//! application and run it until SIGTERM or SIGINT.

use chats3::config::Config;
use chats3::startup::Application;
use std::path::PathBuf;

/// mimalloc instead of glibc's malloc: under load glibc spent a third of
/// the server's CPU in `_int_malloc`/`malloc_consolidate` (BENCHMARKS.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn config_path() -> Result<Option<PathBuf>, String> {
    let mut args = std::env::args().skip(1);
    if let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => {
                return args
                    .next()
                    .map(|p| Some(PathBuf::from(p)))
                    .ok_or("--config needs a path".into());
            }
            "-h" | "--help" => {
                println!(
                    "usage: chats3 [--config PATH]   (or CHATS3_CONFIG=PATH; CHATS3_<SECTION>__<KEY> overrides a key)"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if let Ok(path) = std::env::var("CHATS3_CONFIG") {
        return Ok(Some(PathBuf::from(path)));
    }
    let default = PathBuf::from("config.toml");
    Ok(default.exists().then_some(default))
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() {
    let config = match config_path().and_then(|path| Config::load(path.as_deref())) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("chats3: bad configuration: {e}");
            std::process::exit(1);
        }
    };
    chats3::telemetry::init(&config.log);
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("chats3: cannot start: {e:#}");
            std::process::exit(1);
        }
    };
    let token = app.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received");
        token.cancel();
    });
    if let Err(e) = app.run_until_stopped().await {
        eprintln!("chats3: {e:#}");
        std::process::exit(1);
    }
}
