//! `GET /openapi.json` and `GET /docs`: the document is OpenAPI 3.1, lists
//! every route of the contract and every route the router serves, and its
//! page is served from this service alone.

use crate::helpers::{TestApp, spawn_app};
use serde_json::Value;
use std::collections::BTreeSet;

/// Every route of the contract (API.md: both Chats3-compatible tables and
/// the additions), as `METHOD path` with OpenAPI path templates.
const CONTRACT: &[&str] = &[
    "GET /health",
    "POST /api/v1/admin/conversations",
    "POST /api/v1/admin/conversations/{id}",
    "POST /api/v1/admin/conversations/{id}/close",
    "POST /api/v1/join",
    "POST /api/v1/leave",
    "POST /api/v1/embed",
    "GET /embed",
    "GET /api/v1/session",
    "GET /api/v1/conversation",
    "POST /api/v1/messages",
    "GET /api/v1/messages",
    "GET /api/v1/reactions",
    "POST /api/v1/reactions",
    "POST /api/v1/system-message",
    "POST /api/v1/signaling",
    "GET /api/v1/signaling",
    "POST /api/v1/attachments",
    "GET /api/v1/attachments/{id}",
    "GET /",
    "GET /join",
    "GET /room/{id}",
    "GET /admin",
    "PATCH /api/v1/messages/{id}",
    "DELETE /api/v1/messages/{id}",
    "POST /api/v1/messages/{id}/read",
    "GET /api/v1/messages/unread",
    "GET /api/v1/messages/search",
    "POST /api/v1/messages/{id}/reactions",
    "DELETE /api/v1/messages/{id}/reactions/{emoji}",
    "GET /api/v1/presence",
    "POST /api/v1/presence",
    "GET /api/v1/ws",
    "GET /openapi.json",
    "GET /docs",
    "GET /metrics",
    "GET /ready",
];

/// Documented routes whose handler is built on another branch: their
/// entry is written, the route is not served yet. A route served while
/// still listed here fails the test, so the list empties as they land.
const NOT_YET_SERVED: &[&str] = &[];

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

/// `METHOD path` of every operation of the document.
fn operations(document: &Value) -> BTreeSet<String> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect()
}

/// Every `$ref` of `value` with where it is.
fn references<'a>(value: &'a Value, at: String, into: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => into.push((at.clone(), target)),
                    _ => references(inner, format!("{at}/{key}"), into),
                }
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                references(inner, format!("{at}/{i}"), into);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_every_reference_resolved() {
    let app = spawn_app().await;
    let document = document(&app).await;
    let spec = oas3::from_json(document.to_string()).expect("an OpenAPI 3.1 document");
    let version = spec.validate_version().expect("a supported version");
    assert_eq!((version.major, version.minor), (3, 1));
    let mut found = Vec::new();
    references(&document, String::new(), &mut found);
    assert!(found.len() > 100, "only {} references", found.len());
    for (at, target) in found {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: external reference {target}"));
        assert!(
            document.pointer(pointer).is_some(),
            "{at}: {target} resolves to nothing"
        );
    }
    let mut ids = BTreeSet::new();
    for (path, method, operation) in spec.operations() {
        let id = operation.operation_id.clone().expect("an operationId");
        assert!(
            ids.insert(id.clone()),
            "{method} {path}: operationId {id} twice"
        );
        assert!(
            operation.responses.as_ref().is_some_and(|r| !r.is_empty()),
            "{method} {path} has no responses"
        );
    }
}

#[tokio::test]
async fn every_route_of_the_contract_is_documented() {
    let app = spawn_app().await;
    let documented = operations(&document(&app).await);
    let missing: Vec<&&str> = CONTRACT
        .iter()
        .filter(|route| !documented.contains(**route))
        .collect();
    assert!(missing.is_empty(), "undocumented: {missing:?}");
}

/// The path with each `{parameter}` filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "x"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let app = spawn_app().await;
    let documented = operations(&document(&app).await);
    for route in &documented {
        let (method, path) = route.split_once(' ').unwrap();
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = app
            .client
            .request(method, app.url(&concrete(path)))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        // The router's answer for a path it has no route for, or a route
        // without that method.
        let unrouted = (status == 404 && text.contains("\"Route not found\"")) || status == 405;
        if NOT_YET_SERVED.contains(&route.as_str()) {
            assert!(
                unrouted,
                "{route} is served now: move its annotation onto the handler \
                 and take it off NOT_YET_SERVED"
            );
        } else {
            assert!(!unrouted, "{route} is documented but not served");
        }
    }
}

#[tokio::test]
async fn the_paths_other_layers_recognise_are_the_routed_ones() {
    let app = spawn_app().await;
    let documented = operations(&document(&app).await);
    let stream = chats3::http::EVENT_STREAM_PATH;
    let upload = chats3::http::UPLOAD_PATH;
    for route in [
        format!("GET {stream}"),
        format!("POST {stream}"),
        format!("POST {upload}"),
    ] {
        assert!(documented.contains(&route), "{route}");
    }
}

#[test]
fn the_router_registers_routes_only_with_their_documentation() {
    // `routes!` takes a handler's `#[utoipa::path]`, so the document lists
    // what it registers; `.route(...)` would serve a path the document
    // does not know. Only the static files are nested without an entry.
    let source = include_str!("../../src/http.rs");
    let unlisted: Vec<&str> = source
        .lines()
        .filter(|line| {
            [".route(", ".route_service(", ".nest(", ".merge(Router"]
                .iter()
                .any(|call| line.contains(call))
        })
        .collect();
    assert!(
        unlisted.is_empty(),
        "routes added without `routes!` (undocumented): {unlisted:?}"
    );
    let nested: Vec<&str> = source
        .lines()
        .filter(|line| line.contains(".nest_service("))
        .collect();
    assert_eq!(nested.len(), 1, "{nested:?}");
    assert!(nested[0].contains("\"/static\""), "{nested:?}");
}

#[tokio::test]
async fn the_session_and_the_admin_password_are_security_schemes() {
    let app = spawn_app().await;
    let document = document(&app).await;
    let schemes = &document["components"]["securitySchemes"];
    let place = |name: &str| {
        (
            schemes[name]["type"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            schemes[name]["in"].as_str().unwrap_or_default().to_owned(),
            schemes[name]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let expect = |t: &str, i: &str, n: &str| (t.to_owned(), i.to_owned(), n.to_owned());
    assert_eq!(
        place("sessionHeader"),
        expect("apiKey", "header", "x-session-id")
    );
    assert_eq!(
        place("sessionQuery"),
        expect("apiKey", "query", "sessionId")
    );
    assert_eq!(
        place("sessionCookie"),
        expect("apiKey", "cookie", "sessionId")
    );
    assert_eq!(place("adminPassword").0, "apiKey");
    let security = |method: &str, path: &str| {
        document["paths"][path][method]["security"]
            .as_array()
            .map(|all| {
                all.iter()
                    .flat_map(|one| one.as_object().unwrap().keys().cloned())
                    .collect::<BTreeSet<_>>()
            })
            .unwrap_or_default()
    };
    let session: BTreeSet<String> = ["sessionHeader", "sessionQuery", "sessionCookie"]
        .map(String::from)
        .into();
    assert_eq!(security("get", "/api/v1/signaling"), session);
    assert_eq!(security("post", "/api/v1/messages"), session);
    assert_eq!(
        security("post", "/api/v1/admin/conversations"),
        ["adminPassword".to_owned()].into()
    );
    assert!(security("post", "/api/v1/join").is_empty());
}

/// `value` once its references into `document` are followed.
fn resolve<'a>(document: &'a Value, mut value: &'a Value) -> Value {
    while let Some(target) = value["$ref"].as_str() {
        value = document
            .pointer(&target[1..])
            .unwrap_or_else(|| panic!("{target} resolves to nothing"));
    }
    value.clone()
}

#[tokio::test]
async fn answers_are_documented_in_the_envelope_with_their_details() {
    let app = spawn_app().await;
    let document = document(&app).await;
    let schema_of = |method: &str, path: &str, status: &str| {
        let response = resolve(
            &document,
            &document["paths"][path][method]["responses"][status],
        );
        resolve(
            &document,
            &response["content"]["application/json"]["schema"],
        )
    };
    let session = schema_of("get", "/api/v1/session", "200");
    for field in ["success", "message", "meta"] {
        assert!(
            session["required"]
                .as_array()
                .unwrap()
                .contains(&field.into())
        );
    }
    assert_eq!(
        session["properties"]["details"]["required"],
        serde_json::json!([
            "sessionId",
            "userId",
            "displayName",
            "role",
            "conversationId",
            "createdAt",
            "lastActiveAt"
        ])
    );
    let error = schema_of("post", "/api/v1/join", "400");
    assert_eq!(
        error["properties"]["details"]["items"]["required"],
        serde_json::json!(["path", "code", "message"])
    );
    for status in ["401", "429", "503"] {
        schema_of("post", "/api/v1/messages", status);
    }
    let stream = &document["paths"]["/api/v1/signaling"]["get"]["responses"]["200"];
    assert!(stream["content"]["text/event-stream"].is_object());
    assert!(document["components"]["schemas"]["StreamFrame"]["oneOf"].is_array());
}

#[tokio::test]
async fn the_docs_page_is_served_with_every_file_it_loads() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("<base href=\"/docs/\">"), "{page}");
    let loaded: Vec<&str> = page
        .split(['"', '\''])
        .filter(|part| part.ends_with(".js") || part.ends_with(".css") || part.ends_with(".png"))
        .collect();
    assert!(loaded.len() >= 5, "{loaded:?}");
    for file in loaded {
        assert!(!file.contains("//"), "{file} is on another host");
        let name = file.trim_start_matches("./");
        let response = app
            .client
            .get(app.url(&format!("/docs/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
    }
    let initializer = app
        .client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        initializer.contains("\"url\": \"/openapi.json\""),
        "{initializer}"
    );
    assert!(
        initializer.contains("\"validatorUrl\": \"none\""),
        "{initializer}"
    );
    let missing = app
        .client
        .get(app.url("/docs/no-such-file.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
