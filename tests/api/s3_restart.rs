//! The S3-compatible server killed and started again mid-load: messages
//! answered 200 before, during and after the outage all reach the bucket,
//! once each, and `/ready` goes 503 during the outage and 200 again by
//! itself.

use crate::helpers::*;
use crate::s3_server::S3Process;
use crate::storage::use_s3;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Posters sending at once.
const POSTERS: usize = 4;

/// Posts keep coming from [`POSTERS`] tasks until stopped; each post's body
/// names the phase it was sent in.
struct Load {
    phase: std::sync::Arc<std::sync::Mutex<&'static str>>,
    stop: CancellationToken,
    posters: Vec<tokio::task::JoinHandle<Vec<(String, u16)>>>,
}

impl Load {
    fn start(app: &TestApp, session: &str) -> Load {
        let phase = std::sync::Arc::new(std::sync::Mutex::new("before"));
        let stop = CancellationToken::new();
        let posters = (0..POSTERS)
            .map(|poster| {
                let (client, url) = (app.client.clone(), app.url("/api/v1/messages"));
                let (session, phase, stop) = (session.to_owned(), phase.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut answers = Vec::new();
                    let mut n = 0;
                    while !stop.is_cancelled() {
                        let now = *phase.lock().unwrap();
                        let body = format!("{now} {poster}-{n}");
                        let response = client
                            .post(&url)
                            .header("x-session-id", &session)
                            .json(&json!({ "body": body, "clientTimestamp": "2025-01-01T00:00:00.000Z" }))
                            .send()
                            .await
                            .unwrap();
                        answers.push((body, response.status().as_u16()));
                        n += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    answers
                })
            })
            .collect();
        Load {
            phase,
            stop,
            posters,
        }
    }

    fn enter(&self, phase: &'static str) {
        *self.phase.lock().unwrap() = phase;
    }

    /// Stops posting; returns every post's body and status.
    async fn finish(self) -> Vec<(String, u16)> {
        self.stop.cancel();
        let mut answers = Vec::new();
        for poster in self.posters {
            answers.extend(poster.await.unwrap());
        }
        answers
    }
}

/// Polls until `/ready` answers `status`, failing after `limit`.
async fn ready_becomes(app: &TestApp, status: u16, limit: Duration) -> Duration {
    let started = Instant::now();
    while app.ready_status().await != status {
        assert!(started.elapsed() < limit, "/ready never answered {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_acknowledged_around_an_s3_restart_all_reach_the_bucket_once() {
    let mut s3 = S3Process::start();
    let details = s3.details();
    let app = spawn_app_with(|c| {
        use_s3(c, &details, "");
        c.storage.operation_timeout = Duration::from_secs(1);
        c.actors.flush_interval = Duration::from_millis(100);
    })
    .await;
    let (id, code) = app.create_conversation(None).await;
    let ann = app.join(&id, &code, "Ann").await;
    assert_eq!(app.ready_status().await, 200);

    let load = Load::start(&app, &ann.session_id);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    load.enter("during");
    s3.kill();
    let went_down = ready_becomes(&app, 503, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    s3.restart();
    load.enter("after");
    let came_back = ready_becomes(&app, 200, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let answers = load.finish().await;
    eprintln!(
        "/ready answered 503 {went_down:?} after the kill, 200 {came_back:?} after the restart"
    );

    let mut acknowledged: BTreeMap<&str, usize> = BTreeMap::new();
    for (body, status) in &answers {
        assert!(*status == 200 || *status == 503, "{body} answered {status}");
        if *status == 200 {
            *acknowledged
                .entry(body.split(' ').next().unwrap())
                .or_default() += 1;
        }
    }
    eprintln!(
        "answered 200 by phase: {acknowledged:?} of {} posts",
        answers.len()
    );
    for phase in ["before", "during", "after"] {
        assert!(
            acknowledged.get(phase).copied().unwrap_or(0) > 0,
            "messages answered 200 {phase} the outage"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.metric("chats3_messages_pending").await != 0 {
        assert!(Instant::now() < deadline, "the backlog was never stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;

    let mut stored: BTreeMap<String, usize> = BTreeMap::new();
    for message in stored_messages(&s3.root.path().join(&s3.bucket), &id) {
        *stored
            .entry(message["body"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for (body, status) in &answers {
        let copies = stored.get(body).copied().unwrap_or(0);
        if *status == 200 {
            assert_eq!(copies, 1, "{body:?}, answered 200, is in the bucket once");
        } else {
            assert_eq!(copies, 0, "{body:?}, answered 503, is not in the bucket");
        }
    }
    assert_eq!(
        stored.len(),
        acknowledged.values().sum::<usize>() + 1,
        "the bucket holds the join notice and the acknowledged posts, nothing else"
    );
}
