//! The per-user message budget (`[rate_limit]
//! messages_per_user_per_minute`): past it a user's sends answer 429 with
//! `Retry-After`, while other users of the same address and conversation
//! still send; 0 (the default) sets no budget.

use crate::helpers::*;
use serde_json::json;

async fn post_message(app: &TestApp, session: &str, body: &str) -> reqwest::Response {
    app.post_as(
        session,
        "/api/v1/messages",
        &json!({ "body": body, "clientTimestamp": "2025-01-01T00:00:00.000Z" }),
    )
    .await
}

#[tokio::test]
async fn a_user_past_the_budget_gets_429_while_others_at_the_same_address_still_send() {
    let app = spawn_app_with(|c| c.rate_limit.messages_per_user_per_minute = 3).await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let (ann, bob) = (&joined[0].session_id, &joined[1].session_id);
    for i in 0..3 {
        app.send(ann, &format!("ann {i}")).await;
    }
    let refused = post_message(&app, ann, "one too many").await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    let (status, message, _) = failure(refused).await;
    assert_eq!(status, 429);
    assert!(message.starts_with("Rate limit exceeded"), "{message}");

    for i in 0..3 {
        app.send(bob, &format!("bob {i}")).await;
    }
    let bodies: Vec<String> = app
        .history(bob)
        .await
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect();
    assert!(!bodies.contains(&"one too many".to_owned()), "{bodies:?}");
    assert_eq!(
        bodies.iter().filter(|b| b.starts_with("ann ")).count(),
        3,
        "{bodies:?}"
    );
}

#[tokio::test]
async fn the_budget_is_spent_per_user_and_not_by_other_requests() {
    let app = spawn_app_with(|c| c.rate_limit.messages_per_user_per_minute = 1).await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let ann = &joined[0].session_id;
    for _ in 0..5 {
        assert_eq!(
            app.get_as(ann, "/api/v1/messages").await.status(),
            200,
            "reading spends nothing"
        );
    }
    app.send(ann, "the one").await;
    assert_eq!(post_message(&app, ann, "second").await.status(), 429);
    app.send(&joined[1].session_id, "bob's one").await;
}

#[tokio::test]
async fn without_a_budget_a_user_sends_freely() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    for i in 0..40 {
        app.send(&joined[0].session_id, &format!("m{i}")).await;
    }
}
