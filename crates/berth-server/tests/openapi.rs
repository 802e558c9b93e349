//! The OpenAPI document is generated from the handlers: a snapshot keeps changes to it visible
//! in review, and the router is walked to prove every documented operation reaches its handler
//! and nothing else answers.

mod common;

use axum::http::{Method, StatusCode};
use berth_testkit::TempDir;
use common::{TestServer, options};
use serde_json::{Value, json};

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

fn generated() -> Value {
    serde_json::to_value(berth_server::openapi()).unwrap()
}

/// (path, method) for every documented operation.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if method != "parameters" {
                ops.push((path.clone(), method.clone()));
            }
        }
    }
    ops
}

#[test]
fn the_generated_document_matches_its_snapshot() {
    let text = serde_json::to_string_pretty(&generated()).unwrap() + "\n";
    if std::env::var_os("BERTH_BLESS").is_some() {
        std::fs::write(SNAPSHOT, &text).unwrap();
    }
    let committed = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        committed == text,
        "the API's OpenAPI document changed; review the difference and update the snapshot with \
         `BERTH_BLESS=1 cargo test -p berth-server --test openapi` ({SNAPSHOT})"
    );
}

#[test]
fn every_answer_with_a_body_has_a_schema() {
    let doc = generated();
    for (path, method) in operations(&doc) {
        let responses = doc["paths"][&path][&method]["responses"]
            .as_object()
            .unwrap();
        assert!(
            path == "/healthz" || responses.contains_key("4XX"),
            "{method} {path} documents no error body"
        );
        for (status, response) in responses {
            if status == "204" {
                continue;
            }
            let schema = &response["content"]["application/json"]["schema"];
            let is_document = path == "/api/v1/openapi.json" && status == "200";
            assert!(
                is_document || schema.is_object(),
                "{method} {path} {status} has no schema: {response}"
            );
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "IntegrationView",
        "AuthView",
        "ErrorBody",
        "Resolution",
        "RegistryCredentials",
    ] {
        assert!(schemas.contains_key(name), "no schema for {name}");
    }
}

/// A path to call for a documented template; project names hold a `/`.
fn concrete(path: &str) -> String {
    if path.contains("{project}") {
        return path
            .replace("{project}", "acme/web")
            .replace("{name}", "app");
    }
    let name = if path.starts_with("/api/v1/projects/") {
        "acme/web"
    } else {
        "x"
    };
    path.replace("{name}", name).replace("{id}", "tok-x")
}

#[tokio::test]
async fn every_documented_operation_reaches_a_handler_and_no_other_method_answers() {
    let dir = TempDir::new("openapi");
    let s = TestServer::start(options(&dir.0)).await;
    let (status, served) = s.admin(Method::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let doc = generated();
    assert_eq!(served, doc, "the served document is not the generated one");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let ops = operations(&doc);
    assert!(ops.len() >= 30, "only {} operations documented", ops.len());
    for (path, method) in &ops {
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = matches!(method.as_str(), "post" | "patch").then(|| json!({}));
        let (_, v) = s.admin(m, &concrete(path), body).await;
        let code = v["error"]["code"].as_str().unwrap_or("");
        assert!(
            code != "route_not_found" && code != "method_not_allowed",
            "{method} {path} is documented but reaches no handler: {v}"
        );
    }
    for path in doc["paths"].as_object().unwrap().keys() {
        for method in ["get", "post", "patch", "delete", "put"] {
            // A project name may have more parts (`group/sub/repo`), so under a project's path
            // the project's own methods answer for the longer name: not a hidden route.
            let longer_project = path.starts_with("/api/v1/projects/{name}/")
                && ops.contains(&("/api/v1/projects/{name}".to_owned(), method.to_owned()));
            if longer_project || ops.contains(&(path.clone(), method.to_owned())) {
                continue;
            }
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, v) = s.admin(m, &concrete(path), Some(json!({}))).await;
            assert_eq!(
                (status, v["error"]["code"].as_str()),
                (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")),
                "{method} {path} answers but is not documented: {v}"
            );
        }
    }
    s.stop().await;
}
