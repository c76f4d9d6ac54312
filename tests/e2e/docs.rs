//! The `/docs` page in real Chromium, under the CSP the service sends: it
//! renders every operation of `/openapi.json`, calls the API from "Try it
//! out", and loads nothing from another host.

use crate::browser::driver;
use crate::helpers::*;
use serde_json::Value;
use std::time::Duration;

/// The operations `/openapi.json` lists.
async fn documented_operations(app: &TestApp) -> usize {
    let document: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    document["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| {
            ["get", "post", "put", "patch", "delete"]
                .iter()
                .filter(|method| item.get(**method).is_some())
                .count()
        })
        .sum()
}

/// Runs `script` until it returns `true`, for up to 15 s.
async fn wait_for(browser: &crate::browser::Browser, script: &str, what: &str) {
    for _ in 0..300 {
        if browser.client.execute(script, vec![]).await.unwrap() == Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn the_docs_page_renders_every_operation_and_calls_only_this_service() {
    let Some(driver) = driver().await else { return };
    let app = spawn_app().await;
    let operations = documented_operations(&app).await;
    let browser = driver.browser(1280, 900).await;
    browser.goto(&app.url("/docs")).await;
    wait_for(
        &browser,
        &format!("return document.querySelectorAll('.opblock').length === {operations};"),
        "every operation to render",
    )
    .await;
    browser.screenshot("docs.png").await;
    // From here on, anything the CSP refuses is recorded.
    browser
        .client
        .execute(
            "window.refused = []; document.addEventListener('securitypolicyviolation', \
             e => window.refused.push(e.violatedDirective + ' ' + e.blockedURI));",
            vec![],
        )
        .await
        .unwrap();

    // Try it out: GET /health from the page.
    browser
        .click(".opblock-get .opblock-summary-path[data-path='/health']")
        .await;
    browser.click(".opblock-get.is-open .try-out__btn").await;
    browser.click(".opblock-get.is-open button.execute").await;
    let status = browser
        .wait_text(
            ".opblock-get.is-open .live-responses-table tr.response .response-col_status",
            "the live answer",
            |text| !text.trim().is_empty(),
        )
        .await;
    assert_eq!(status.trim(), "200");

    let refused = browser
        .client
        .execute("return window.refused;", vec![])
        .await
        .unwrap();
    assert_eq!(refused, Value::Array(vec![]), "refused by the CSP");
    let loaded = browser
        .client
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name);",
            vec![],
        )
        .await
        .unwrap();
    let loaded: Vec<String> = serde_json::from_value(loaded).unwrap();
    assert!(
        loaded.iter().any(|url| url.ends_with("/openapi.json")),
        "{loaded:?}"
    );
    assert!(
        loaded.iter().any(|url| url.ends_with("/health")),
        "{loaded:?}"
    );
    let elsewhere: Vec<&String> = loaded
        .iter()
        .filter(|url| !url.starts_with(&format!("{}/", app.address)))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "loaded from another host: {elsewhere:?}"
    );
    browser.close().await;
}
