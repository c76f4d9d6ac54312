//! One conversation flooded past `[actors] max_pending`: the posts past the
//! bound answer 503 with `Retry-After` in the envelope, every post answered
//! 200 is stored exactly once, nothing answered 503 is stored, and a 503
//! retried later with its `messageId` is stored once.

use crate::helpers::*;
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const MAX_PENDING: usize = 20;
/// The flood posts at least this many, and goes on until a flush has made
/// room (however fast the machine answers), up to `MAX_POSTS`.
const MIN_POSTS: usize = 600;
const MAX_POSTS: usize = 100_000;
const POSTING_AT_ONCE: usize = 32;

/// How one post was answered.
enum Answer {
    Stored,
    Refused,
}

async fn post(app: &TestApp, session: &str, message_id: &str, body: &str) -> Answer {
    let response = app
        .post_as(
            session,
            "/api/v1/messages",
            &json!({
                "messageId": message_id,
                "body": body,
                "clientTimestamp": "2025-01-01T00:00:00.000Z",
            }),
        )
        .await;
    match response.status().as_u16() {
        200 => {
            let message = envelope(response).await["details"].clone();
            assert_eq!(message["messageId"], message_id);
            Answer::Stored
        }
        503 => {
            let retry_after: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry_after >= 1, "Retry-After {retry_after}");
            let (_, message, body) = failure(response).await;
            assert!(message.contains("retry"), "{body}");
            Answer::Refused
        }
        status => panic!("post answered {status}: {}", response.text().await.unwrap()),
    }
}

/// The stored messages of `conversation`, by id, with how often each is there.
fn stored_counts(root: &std::path::Path, conversation: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for message in stored_messages(root, conversation) {
        *counts
            .entry(message["messageId"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_flooded_past_max_pending_refuses_with_503_and_loses_nothing_accepted() {
    let app = spawn_app_with(|c| {
        c.actors.max_pending = MAX_PENDING;
        c.actors.flush_interval = Duration::from_millis(300);
    })
    .await;
    let (id, code) = app.create_conversation(None).await;
    let ann = app.join(&id, &code, "Ann").await;
    let salt = uuid::Uuid::new_v4().as_u128();
    let id_of = |n: usize| uuid::Uuid::from_u128(salt ^ n as u128).to_string();
    let (stored, refused_so_far) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let flood_over = || {
        stored.load(Ordering::Relaxed) > MAX_PENDING && refused_so_far.load(Ordering::Relaxed) > 0
    };
    let answers: Vec<(usize, Answer)> = futures::stream::iter(0..MAX_POSTS)
        .take_while(|n| std::future::ready(*n < MIN_POSTS || !flood_over()))
        .map(|n| {
            let (app, session, id_of) = (&app, &ann.session_id, &id_of);
            let (stored, refused_so_far) = (&stored, &refused_so_far);
            async move {
                let answer = post(app, session, &id_of(n), &format!("flood {n}")).await;
                match answer {
                    Answer::Stored => stored.fetch_add(1, Ordering::Relaxed),
                    Answer::Refused => refused_so_far.fetch_add(1, Ordering::Relaxed),
                };
                (n, answer)
            }
        })
        .buffer_unordered(POSTING_AT_ONCE)
        .collect()
        .await;
    let posts = answers.len();
    let accepted: BTreeSet<usize> = answers
        .iter()
        .filter(|(_, a)| matches!(a, Answer::Stored))
        .map(|(n, _)| *n)
        .collect();
    let refused: Vec<usize> = answers
        .iter()
        .filter(|(_, a)| matches!(a, Answer::Refused))
        .map(|(n, _)| *n)
        .collect();
    eprintln!(
        "{posts} posts, {POSTING_AT_ONCE} at once, max_pending {MAX_PENDING}: {} answered 200, {} answered 503",
        accepted.len(),
        refused.len()
    );
    assert!(!refused.is_empty(), "the flood went past max_pending");
    assert!(
        accepted.len() > MAX_PENDING,
        "flushes made room during the flood"
    );

    // Half of the refused are retried later with their ids, honouring
    // Retry-After; a 200 then stores them once. The other half never are.
    let (retried, abandoned) = refused.split_at(refused.len() / 2);
    eventually("the accepted to be stored", || async {
        app.metric("chats3_messages_pending").await == 0
    })
    .await;
    for &n in retried {
        loop {
            match post(&app, &ann.session_id, &id_of(n), &format!("flood {n}")).await {
                Answer::Stored => break,
                Answer::Refused => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
    // A retry of what was answered 200 stores nothing new.
    for &n in accepted.iter().take(10) {
        assert!(matches!(
            post(&app, &ann.session_id, &id_of(n), &format!("flood {n}")).await,
            Answer::Stored
        ));
    }
    eventually("the retries to be stored", || async {
        app.metric("chats3_messages_pending").await == 0
    })
    .await;
    let history: Vec<Value> = full_history(&app, &ann.session_id).await;
    let data_dir = app.stop().await;

    let counts = stored_counts(data_dir.path(), &id);
    let should_be_stored: BTreeSet<usize> = accepted.iter().chain(retried).copied().collect();
    for &n in &should_be_stored {
        assert_eq!(
            counts.get(&id_of(n)).copied().unwrap_or(0),
            1,
            "post {n}, answered 200, is stored exactly once"
        );
    }
    for &n in abandoned {
        assert!(
            !counts.contains_key(&id_of(n)),
            "post {n}, answered 503 and never retried, is not stored"
        );
    }
    // The join notice and the posts answered 200, nothing else.
    assert_eq!(counts.len(), should_be_stored.len() + 1);
    assert_eq!(
        history.len(),
        should_be_stored.len() + 1,
        "history shows each once"
    );
    let mut seqs: Vec<u64> = stored_messages(data_dir.path(), &id)
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(
        seqs.len(),
        counts.len(),
        "one sequence number per stored message"
    );
}
