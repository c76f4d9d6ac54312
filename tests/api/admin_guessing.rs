//! Guessing the admin password: every wrong guess is a 403 that says
//! nothing more, and past `admin_per_minute` an address is refused with
//! 429 whatever it sends, the right password included, so guesses are
//! capped per minute; a trusted proxy's other clients keep their budget.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn wrong_guesses_are_403_then_every_attempt_is_429_for_that_address() {
    let app = spawn_app_with(|c| {
        c.rate_limit.admin_per_minute = 5;
        c.server.trusted_proxies = vec!["127.0.0.0/8".to_owned().try_into().unwrap()];
    })
    .await;
    let attempt = |password: String, client: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/api/v1/admin/conversations"))
                .header("x-forwarded-for", client)
                .json(&json!({ "adminPassword": password }))
                .send()
                .await
                .unwrap()
        }
    };
    for guess in 0..5 {
        let (status, message, body) =
            failure(attempt(format!("guess-{guess}"), "203.0.113.7").await).await;
        assert_eq!((status, message.as_str()), (403, "Invalid admin password"));
        assert!(
            body.get("details").is_none_or(serde_json::Value::is_null),
            "{body}"
        );
    }
    for password in ["guess-6".to_owned(), ADMIN_PASSWORD.to_owned()] {
        let response = attempt(password, "203.0.113.7").await;
        assert_eq!(response.status(), 429);
        assert!(response.headers().contains_key("retry-after"));
    }
    let other = attempt(ADMIN_PASSWORD.to_owned(), "198.51.100.9").await;
    assert_eq!(other.status(), 200, "another client is still served");
}

#[tokio::test]
async fn a_password_that_only_shares_a_prefix_or_differs_in_case_is_refused() {
    let app = spawn_app().await;
    let near = [
        String::new(),
        ADMIN_PASSWORD[..ADMIN_PASSWORD.len() - 1].to_owned(),
        format!("{ADMIN_PASSWORD}x"),
        ADMIN_PASSWORD.to_uppercase(),
        format!(" {ADMIN_PASSWORD}"),
    ];
    for password in near {
        let response = app
            .post_json(
                "/api/v1/admin/conversations",
                &json!({ "adminPassword": password }),
            )
            .await;
        let status = failure(response).await.0;
        assert!(status == 403 || status == 400, "{password:?}: {status}");
    }
}
