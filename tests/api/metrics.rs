//! `/metrics` after traffic: labelled counters by route template and
//! status, latency histograms with their buckets, streams by transport,
//! storage requests by operation and outcome, and stored batch sizes,
//! all from a real scrape.

use crate::helpers::*;
use serde_json::json;

/// The value of the sample `name` whose labels include every one of
/// `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(series, _)| {
            let (series_name, rest) = series.split_once('{').unwrap_or((series, ""));
            series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|(_, value)| value.parse().ok())
}

/// The `le` buckets of a histogram series, in order.
fn buckets(text: &str, name: &str, label: (&str, &str)) -> Vec<(String, f64)> {
    let bucket = format!("{name}_bucket{{");
    let wanted = format!("{}=\"{}\"", label.0, label.1);
    text.lines()
        .filter(|line| line.starts_with(&bucket) && line.contains(&wanted))
        .filter_map(|line| {
            let le = line.split("le=\"").nth(1)?.split('"').next()?.to_owned();
            let value = line.rsplit_once(' ')?.1.parse().ok()?;
            Some((le, value))
        })
        .collect()
}

#[tokio::test]
async fn a_scrape_after_traffic_shows_routes_latency_streams_and_storage() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let ann = &joined[0];
    let mut stream = app.stream(&ann.session_id, None).await;
    stream.opening().await;
    let mut sent = Vec::new();
    for n in 0..3 {
        sent.push(app.send(&ann.session_id, &format!("m{n}")).await);
    }
    app.history(&ann.session_id).await;
    for message in &sent {
        let id = message["messageId"].as_str().unwrap();
        let path = format!("/api/v1/messages/{id}/read");
        assert_eq!(
            app.post_as(&joined[1].session_id, &path, &json!({}))
                .await
                .status(),
            200
        );
    }
    let missing = app.get_as(&ann.session_id, "/api/v1/no-such-route").await;
    assert_eq!(missing.status(), 404);
    eventually("the messages are stored", || async {
        app.metric("chats3_messages_pending").await == 0
    })
    .await;

    let text = app.metrics().await;
    let posts = [
        ("method", "POST"),
        ("route", "/api/v1/messages"),
        ("status", "200"),
    ];
    assert_eq!(
        sample(&text, "chats3_http_responses_total", &posts),
        Some(3.0),
        "{text}"
    );
    let reads = [("route", "/api/v1/messages/{id}/read"), ("status", "200")];
    assert_eq!(
        sample(&text, "chats3_http_responses_total", &reads),
        Some(3.0),
        "by route template, not raw path"
    );
    let unmatched = [("route", "unmatched"), ("status", "404")];
    assert_eq!(
        sample(&text, "chats3_http_responses_total", &unmatched),
        Some(1.0)
    );

    let latency = "chats3_http_request_duration_seconds";
    let route = ("route", "/api/v1/messages");
    let count = sample(&text, &format!("{latency}_count"), &[route]).unwrap();
    assert_eq!(count, 4.0, "three posts and one history read");
    let bucketed = buckets(&text, latency, route);
    assert!(bucketed.len() > 5, "{bucketed:?}");
    assert!(bucketed.windows(2).all(|w| w[0].1 <= w[1].1), "cumulative");
    assert_eq!(bucketed.last().unwrap(), &("+Inf".to_owned(), count));
    assert!(sample(&text, &format!("{latency}_sum"), &[route]).unwrap() > 0.0);

    assert_eq!(
        sample(&text, "chats3_event_streams_open", &[("transport", "sse")]),
        Some(1.0)
    );
    assert_eq!(sample(&text, "chats3_streams_open", &[]), Some(1.0));
    let stored = [("operation", "put"), ("outcome", "ok")];
    assert!(sample(&text, "chats3_storage_requests_total", &stored).unwrap() >= 1.0);
    let batches = sample(&text, "chats3_flush_batch_messages_count", &[]).unwrap();
    assert!(batches >= 1.0, "{text}");
    let messages = sample(&text, "chats3_flush_batch_messages_sum", &[]).unwrap();
    assert_eq!(messages, 5.0, "two join notices and three messages");
    assert!(sample(&text, "chats3_flush_batch_bytes_sum", &[]).unwrap() > 0.0);
    assert_eq!(sample(&text, "chats3_fanout_drops_total", &[]), Some(0.0));
}

/// Every `chats3_*` name the dashboard's queries use (Redis' aside, which
/// needs a cluster).
fn dashboard_metric_names() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut names = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for (start, _) in expr.match_indices("chats3_") {
                let name: String = expr[start..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.starts_with("chats3_redis") && !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    names
}

#[tokio::test]
async fn the_grafana_dashboard_queries_only_metrics_the_service_exports() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let mut stream = app.stream(&joined[0].session_id, None).await;
    stream.opening().await;
    eventually("the join notice is stored", || async {
        app.metric("chats3_messages_pending").await == 0
    })
    .await;
    let mut resumed = app.stream(&joined[0].session_id, Some("1")).await;
    resumed.opening().await;
    let text = app.metrics().await;
    let names = dashboard_metric_names();
    assert!(names.len() > 15, "{names:?}");
    for name in names {
        assert!(text.contains(&name), "{name} is not exported:\n{text}");
    }
}
