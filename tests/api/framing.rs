//! Who may frame the service and what its cookie allows: the CSP's
//! `frame-ancestors` names `'self'` and each integrator's origins on every
//! answer and no one else's; the session cookie an embed sets is
//! `HttpOnly`, and `Secure; SameSite=None` in production only.

use crate::embed::ticket;
use crate::helpers::*;
use chats3::config::Integrator;
use serde_json::json;

const OTHER_ORIGIN: &str = "https://shop.other-integrator.test";

#[tokio::test]
async fn frame_ancestors_names_each_integrators_origins_on_every_answer() {
    let app = spawn_app_with(|c| {
        c.integrators.push(Integrator {
            id: "second".into(),
            secret: "second-secret".into(),
            allowed_origins: vec![OTHER_ORIGIN.into()],
            auto_create: false,
        })
    })
    .await;
    let (id, _) = app.create_conversation(None).await;
    let paths = [
        "/health".to_owned(),
        format!("/room/{id}"),
        "/join".to_owned(),
        "/admin".to_owned(),
        "/api/v1/session".to_owned(),
        "/api/v1/nothing-here".to_owned(),
        "/embed?ticket=x".to_owned(),
    ];
    for path in paths {
        let response = app.client.get(app.url(&path)).send().await.unwrap();
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        let ancestors = csp
            .split(';')
            .find_map(|d| d.trim().strip_prefix("frame-ancestors "))
            .unwrap_or_else(|| panic!("{path}: no frame-ancestors in {csp}"));
        let mut named: Vec<&str> = ancestors.split_whitespace().collect();
        named.sort_unstable();
        let mut expected = vec![
            "'self'",
            INTEGRATOR_ORIGIN,
            "https://*.example.com",
            OTHER_ORIGIN,
        ];
        expected.sort_unstable();
        assert_eq!(named, expected, "{path}");
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
    }
}

#[tokio::test]
async fn an_embed_session_cookie_in_production_is_secure_http_only_and_cross_site() {
    let app = spawn_app_with(|c| c.server.production = true).await;
    let (id, _) = app.create_conversation(None).await;
    let (text, signature) = ticket(&id, |_| {});
    let posted = app
        .post_json(
            "/api/v1/embed",
            &json!({ "ticket": text, "signature": signature }),
        )
        .await;
    let (text, signature) = ticket(&id, |_| {});
    let page = app
        .client
        .get(app.url("/embed"))
        .query(&[("ticket", &text), ("signature", &signature)])
        .send()
        .await
        .unwrap();
    for response in [posted, page] {
        let cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned();
        for attribute in ["HttpOnly", "Secure", "SameSite=None", "Path=/"] {
            assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
        }
    }
}

#[tokio::test]
async fn outside_production_the_cookie_is_http_only_and_same_site_lax_without_secure() {
    let app = spawn_app().await;
    let (id, _) = app.create_conversation(None).await;
    let (text, signature) = ticket(&id, |_| {});
    let response = app
        .post_json(
            "/api/v1/embed",
            &json!({ "ticket": text, "signature": signature }),
        )
        .await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "{cookie}");
}
