//! A real S3-compatible server (s3s + s3s-fs) on a free loopback port,
//! started in-process for the S3 tests.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub const ACCESS_KEY: &str = "test-access";
pub const SECRET_KEY: &str = "test-secret";

/// Where an S3 server is.
pub struct S3Details {
    pub endpoint: String,
    pub bucket: String,
}

/// A running S3 server with one bucket.
pub struct S3Server {
    pub endpoint: String,
    pub bucket: String,
    pub root: TempDir,
    task: JoinHandle<()>,
}

impl S3Server {
    /// Starts the server with an empty bucket.
    pub async fn start() -> S3Server {
        let root = tempfile::tempdir().unwrap();
        let bucket = "chats3-test".to_owned();
        std::fs::create_dir_all(root.path().join(&bucket)).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let task = serve(listener, root.path());
        S3Server {
            endpoint,
            bucket,
            root,
            task,
        }
    }

    /// Stops answering: the listener and every open connection close.
    pub fn stop(&mut self) {
        self.task.abort();
    }

    /// Serves again on the same address and data.
    pub async fn restart(&mut self) {
        self.task.abort();
        let address = self.endpoint.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind(&address).await.unwrap();
        self.task = serve(listener, self.root.path());
    }

    /// Connection details of a server started elsewhere, for configs.
    pub fn placeholder(endpoint: &str, bucket: &str) -> S3Details {
        S3Details {
            endpoint: endpoint.to_owned(),
            bucket: bucket.to_owned(),
        }
    }

    pub fn details(&self) -> S3Details {
        S3Server::placeholder(&self.endpoint, &self.bucket)
    }

    /// The path of an object on the server's disk.
    pub fn object_path(&self, key: &str) -> std::path::PathBuf {
        self.root.path().join(&self.bucket).join(key)
    }
}

/// Accepts connections until aborted; aborting also ends every connection.
fn serve(listener: TcpListener, root: &std::path::Path) -> JoinHandle<()> {
    let fs = s3s_fs::FileSystem::new(root).unwrap();
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = builder.build();
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let service = service.clone();
            connections.spawn(async move {
                let _ = ConnBuilder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
            while connections.try_join_next().is_some() {}
        }
    })
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
