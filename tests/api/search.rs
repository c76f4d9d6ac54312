//! `GET /api/v1/messages/search`: the whole history, stored batches
//! included, newest first, case-insensitive, paged; bad input a clear 400.

use crate::helpers::*;
use serde_json::{Value, json};

/// One search page's details.
async fn search(app: &TestApp, session: &str, query: &str) -> Value {
    let answer = app
        .get_as(session, &format!("/api/v1/messages/search?{query}"))
        .await;
    assert_eq!(answer.status(), 200, "{query}");
    let body = envelope(answer).await;
    assert_eq!(body["message"], "Messages found");
    body["details"].clone()
}

fn bodies(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"]["body"].as_str().unwrap().to_owned())
        .collect()
}

/// A room whose history is mostly in storage only: the tail keeps 3.
async fn stored_room(app: &TestApp, texts: &[String]) -> Joined {
    let (_, joined) = app.room_with(&["Ann"]).await;
    let ann = joined[0].clone();
    for text in texts {
        app.send(&ann.session_id, text).await;
    }
    eventually("batches flushed", || async {
        app.metric("chats3_messages_pending").await == 0
    })
    .await;
    ann
}

#[tokio::test]
async fn search_pages_through_stored_history_newest_first_ignoring_case() {
    let app = spawn_app_with(|c| c.actors.history_tail = 3).await;
    let texts: Vec<String> = (0..12)
        .map(|i| match i % 3 {
            0 => format!("Apple pie {i}"),
            1 => format!("an APPLE, number {i}"),
            _ => format!("pear {i}"),
        })
        .collect();
    let ann = stored_room(&app, &texts).await;
    // The first message is long gone from memory: found all the same.
    let loaded: Vec<String> = envelope(
        app.get_as(&ann.session_id, "/api/v1/messages?limit=3")
            .await,
    )
    .await["details"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect();
    assert!(!loaded.contains(&texts[0]));

    let mut found = Vec::new();
    let mut query = "q=aPpLe&limit=3".to_owned();
    loop {
        let page = search(&app, &ann.session_id, &query).await;
        found.extend(bodies(&page));
        if !page["hasMore"].as_bool().unwrap() {
            assert_eq!(page["nextCursor"], Value::Null);
            break;
        }
        let cursor = page["nextCursor"].as_str().unwrap();
        query = format!("q=aPpLe&limit=3&cursor={cursor}");
    }
    let expected: Vec<String> = texts
        .iter()
        .rev()
        .filter(|t| t.to_lowercase().contains("apple"))
        .cloned()
        .collect();
    assert_eq!(found, expected, "every match once, newest first");

    let none = search(&app, &ann.session_id, "q=banana").await;
    assert_eq!(none["results"], json!([]));
    assert_eq!(none["hasMore"], false);
}

#[tokio::test]
async fn a_result_leads_to_its_context_and_a_cold_conversation_is_searched_too() {
    let app = spawn_app_with(|c| c.actors.history_tail = 3).await;
    let texts: Vec<String> = (0..10).map(|i| format!("line {i}")).collect();
    let ann = stored_room(&app, &texts).await;
    let page = search(&app, &ann.session_id, "q=LINE%202").await;
    assert_eq!(bodies(&page), ["line 2"]);
    let cursor = page["results"][0]["cursor"].as_str().unwrap();
    let after = envelope(
        app.get_as(
            &ann.session_id,
            &format!("/api/v1/messages?cursor={cursor}&direction=newer&limit=2"),
        )
        .await,
    )
    .await;
    let after: Vec<&str> = after["details"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(after, ["line 3", "line 4"]);

    // After a restart nothing is loaded: the search reads storage.
    let session = ann.session_id.clone();
    let data = app.stop().await;
    let app = spawn_app_in(data, |c| c.actors.history_tail = 3).await;
    let page = search(&app, &session, "q=line%200").await;
    assert_eq!(bodies(&page), ["line 0"]);
}

#[tokio::test]
async fn edits_are_searched_as_shown_and_deleted_messages_are_not_found() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let ann = &joined[0].session_id;
    let edited = app.send(ann, "about apples").await;
    let deleted = app.send(ann, "apples again").await;
    let patch = |id: &str| app.url(&format!("/api/v1/messages/{id}"));
    let answer = app
        .client
        .patch(patch(edited["messageId"].as_str().unwrap()))
        .header("x-session-id", ann)
        .json(&json!({ "body": "about pears" }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer = app
        .client
        .delete(patch(deleted["messageId"].as_str().unwrap()))
        .header("x-session-id", ann)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        bodies(&search(&app, ann, "q=apples").await),
        Vec::<String>::new()
    );
    assert_eq!(bodies(&search(&app, ann, "q=pears").await), ["about pears"]);
}

#[tokio::test]
async fn bad_searches_answer_400_naming_the_parameter_and_none_without_a_session() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let ann = &joined[0].session_id;
    let long = "x".repeat(101);
    for (query, field) in [
        ("", "q"),
        ("q=", "q"),
        ("q=%20%20", "q"),
        (&format!("q={long}") as &str, "q"),
        ("q=a&limit=0", "limit"),
        ("q=a&limit=51", "limit"),
        ("q=a&limit=x", "limit"),
        ("q=a&cursor=abc", "cursor"),
    ] {
        let answer = app
            .get_as(ann, &format!("/api/v1/messages/search?{query}"))
            .await;
        let (status, message, body) = failure(answer).await;
        assert_eq!(
            (status, message.as_str()),
            (400, "Validation error"),
            "{query}"
        );
        assert_eq!(body["details"][0]["path"][0], field, "{query}: {body}");
    }
    let hundred = "é".repeat(100);
    search(&app, ann, &format!("q={hundred}&limit=50")).await;
    let anonymous = app
        .client
        .get(app.url("/api/v1/messages/search?q=a"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}
