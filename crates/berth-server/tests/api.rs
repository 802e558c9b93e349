//! The REST API driven over real HTTP on port 0: the happy path, every refusal the foundation
//! issue lists (each must change nothing), access control, and the OpenAPI document.

mod common;

use berth_testkit::TempDir;
use common::{TestServer, assert_error, options};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SECRET: &str = "ApiSecretValue/0123456789+abcdefghijklm";

fn keys_integration(name: &str, subs: &[&str]) -> Value {
    json!({"name": name, "type": "ecr", "region": "us-west-2",
           "auth": {"mode": "access_keys", "access_key_id": "AKIAFAKEAPITWXYZ", "secret_access_key": SECRET},
           "registry_id": "123456789012", "endpoint": "http://127.0.0.1:5080",
           "subscriptions": subs, "runtimes": {"all": true}})
}

async fn server() -> (TempDir, TestServer) {
    let dir = TempDir::new("api");
    let s = TestServer::start(options(&dir.0)).await;
    (dir, s)
}

#[tokio::test]
async fn create_show_list_patch_delete() {
    let (_dir, s) = server().await;
    for sub in ["acme", "globex"] {
        let r = s
            .admin(
                Method::POST,
                "/api/v1/subscriptions",
                Some(json!({"name": sub})),
            )
            .await;
        assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    }
    let created = s
        .admin(
            Method::POST,
            "/api/v1/integrations",
            Some(keys_integration("ecr-integration", &["acme"])),
        )
        .await;
    assert_eq!(created.0, StatusCode::CREATED, "{}", created.1);
    let i = &created.1;
    assert_eq!(i["name"], "ecr-integration");
    assert_eq!(i["type"], "ecr");
    assert_eq!(i["master_type"], "hub");
    assert_eq!(i["auth"]["mode"], "access_keys");
    assert_eq!(i["auth"]["access_key_id"], "****WXYZ");
    assert_eq!(i["auth"]["secret_access_key_set"], true);
    assert!(i["auth"].get("secret_access_key").is_none());
    assert_eq!(i["subscriptions"], json!(["acme"]));
    assert_eq!(i["runtimes"], json!({"all": true}));
    assert!(i["created_by"].as_str().unwrap().starts_with("admin"));
    assert!(i["created_at"].as_str().unwrap().contains('T'));

    let shown = s
        .admin(Method::GET, "/api/v1/integrations/ECR-INTEGRATION", None)
        .await;
    assert_eq!(shown.0, StatusCode::OK);
    assert_eq!(shown.1["id"], i["id"]);

    for n in 0..4 {
        let r = s.admin(Method::POST, "/api/v1/integrations",
            Some(json!({"name": format!("role-{n}"), "type": "ecr", "auth": {"mode": "assume_role", "role_arn": "arn:aws:iam::123456789012:role/pull", "external_id": "ext-id"}, "subscriptions": ["globex"]}))).await;
        assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
        assert_eq!(r.1["region"], "us-east-1", "region defaults to us-east-1");
    }
    let listed = s
        .admin(
            Method::GET,
            "/api/v1/integrations?type=ecr&subscription=acme",
            None,
        )
        .await;
    assert_eq!(listed.1["items"].as_array().unwrap().len(), 1);
    let listed = s
        .admin(Method::GET, "/api/v1/integrations?name=ROLE-", None)
        .await;
    assert_eq!(listed.1["items"].as_array().unwrap().len(), 4);

    // Pagination: three pages of two, in name order, each cursor leading to the next.
    let mut seen = Vec::new();
    let mut path = "/api/v1/integrations?limit=2".to_owned();
    loop {
        let page = s.admin(Method::GET, &path, None).await;
        assert_eq!(page.0, StatusCode::OK, "{}", page.1);
        for item in page.1["items"].as_array().unwrap() {
            seen.push(item["name"].as_str().unwrap().to_owned());
        }
        match page.1["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/integrations?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["ecr-integration", "role-0", "role-1", "role-2", "role-3"]
    );

    // Patch: omitted secrets stay; version moves.
    let patched = s.admin(Method::PATCH, "/api/v1/integrations/ecr-integration",
        Some(json!({"region": "eu-central-1", "endpoint": null, "subscriptions": ["acme", "globex"]}))).await;
    assert_eq!(patched.0, StatusCode::OK, "{}", patched.1);
    assert_eq!(patched.1["region"], "eu-central-1");
    assert_eq!(patched.1["endpoint"], Value::Null);
    assert_eq!(patched.1["auth"]["secret_access_key_set"], true);
    assert_eq!(patched.1["auth"]["access_key_id"], "****WXYZ");
    assert_eq!(patched.1["version"], 2);

    // Switching to ambient drops the stored keys.
    let ambient = s
        .admin(
            Method::PATCH,
            "/api/v1/integrations/ecr-integration",
            Some(json!({"auth": {"mode": "ambient"}})),
        )
        .await;
    assert_eq!(ambient.1["auth"], json!({"mode": "ambient"}));

    let deleted = s
        .admin(Method::DELETE, "/api/v1/integrations/ecr-integration", None)
        .await;
    assert_eq!(deleted.0, StatusCode::NO_CONTENT);
    assert_error(
        &s.admin(Method::GET, "/api/v1/integrations/ecr-integration", None)
            .await,
        404,
        "not_found",
        None,
    );
    s.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let (_dir, s) = server().await;
    s.admin(
        Method::POST,
        "/api/v1/subscriptions",
        Some(json!({"name": "acme"})),
    )
    .await;
    s.admin(
        Method::POST,
        "/api/v1/runtimes",
        Some(json!({"name": "prod"})),
    )
    .await;
    let ok = s
        .admin(
            Method::POST,
            "/api/v1/integrations",
            Some(keys_integration("ecr-a", &["acme"])),
        )
        .await;
    assert_eq!(ok.0, StatusCode::CREATED);
    let ok = s
        .admin(
            Method::POST,
            "/api/v1/integrations",
            Some(keys_integration("ecr-b", &[])),
        )
        .await;
    assert_eq!(ok.0, StatusCode::CREATED);
    let before = s.admin(Method::GET, "/api/v1/integrations", None).await.1;

    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = keys_integration("ecr-new", &[]);
        f(&mut v);
        v
    };
    let post = |body: Value| s.admin(Method::POST, "/api/v1/integrations", Some(body));

    assert_error(
        &post(with(&|v| v["name"] = json!("ECR-A"))).await,
        409,
        "duplicate_name",
        Some("name"),
    );
    assert_error(
        &post(with(&|v| v["name"] = json!("bad name!"))).await,
        400,
        "invalid_field",
        Some("name"),
    );
    assert_error(
        &post(with(&|v| v["name"] = json!("x".repeat(65)))).await,
        400,
        "invalid_field",
        Some("name"),
    );
    let r = post(with(&|v| v["type"] = json!("artifactory"))).await;
    assert_error(&r, 422, "unknown_type", Some("type"));
    assert!(
        r.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("artifactory")
    );
    assert_error(
        &post(with(&|v| v["auth"]["mode"] = json!("password"))).await,
        400,
        "invalid_field",
        Some("auth.mode"),
    );
    assert_error(
        &post(with(&|v| {
            v["auth"]
                .as_object_mut()
                .unwrap()
                .remove("secret_access_key");
        }))
        .await,
        400,
        "invalid_field",
        Some("auth.secret_access_key"),
    );
    let r =
        post(with(
            &|v| v["auth"] = json!({"mode": "assume_role", "role_arn": "arn:aws:iam::42:role/x"}),
        ))
        .await;
    assert_error(&r, 400, "invalid_field", Some("auth.role_arn"));
    assert!(
        r.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("12 digits")
    );
    let r = post(with(&|v| v["region"] = json!("us-east"))).await;
    assert_error(&r, 400, "invalid_field", Some("region"));
    assert!(r.1["error"]["message"].as_str().unwrap().contains("region"));
    assert_error(
        &post(with(&|v| v["subscriptions"] = json!(["initech"]))).await,
        400,
        "invalid_field",
        Some("subscriptions[0]"),
    );
    assert_error(
        &post(with(&|v| {
            v["runtimes"] = json!({"selected": ["prod", "staging"]})
        }))
        .await,
        400,
        "invalid_field",
        Some("runtimes.selected[1]"),
    );
    assert_error(
        &post(with(&|v| v["regoin"] = json!("us-east-1"))).await,
        400,
        "invalid_field",
        Some("regoin"),
    );
    assert_error(
        &post(with(&|v| v["registry_id"] = json!("1234"))).await,
        400,
        "invalid_field",
        Some("registry_id"),
    );
    assert_error(
        &post(with(&|v| v["endpoint"] = json!("localhost:5080"))).await,
        400,
        "invalid_field",
        Some("endpoint"),
    );
    assert_error(
        &post(json!({"name": "x", "auth": {"mode": "ambient"}})).await,
        400,
        "invalid_field",
        Some("type"),
    );
    assert_error(
        &s.raw(
            Method::POST,
            "/api/v1/integrations",
            Some("application/json"),
            b"{\"name\": ".to_vec(),
        )
        .await,
        400,
        "malformed_json",
        None,
    );
    assert_error(
        &s.raw(
            Method::POST,
            "/api/v1/integrations",
            Some("text/plain"),
            b"{}".to_vec(),
        )
        .await,
        415,
        "unsupported_media_type",
        None,
    );
    assert_error(
        &s.raw(Method::POST, "/api/v1/integrations", None, b"{}".to_vec())
            .await,
        415,
        "unsupported_media_type",
        None,
    );
    let mut big = keys_integration("ecr-big", &[]);
    big["padding"] = json!("x".repeat(1024 * 1024 + 10));
    assert_error(
        &s.raw(
            Method::POST,
            "/api/v1/integrations",
            Some("application/json"),
            serde_json::to_vec(&big).unwrap(),
        )
        .await,
        413,
        "payload_too_large",
        None,
    );

    // Patch that renames onto an existing name, or breaks a rule halfway: nothing applies.
    let r = s
        .admin(
            Method::PATCH,
            "/api/v1/integrations/ecr-b",
            Some(json!({"name": "Ecr-A", "region": "ap-south-1"})),
        )
        .await;
    assert_error(&r, 409, "duplicate_name", Some("name"));
    let r = s
        .admin(
            Method::PATCH,
            "/api/v1/integrations/ecr-b",
            Some(json!({"region": "ap-south-1", "registry_id": "x"})),
        )
        .await;
    assert_error(&r, 400, "invalid_field", Some("registry_id"));
    let r = s
        .admin(
            Method::PATCH,
            "/api/v1/integrations/ecr-b",
            Some(json!({"type": "gcr"})),
        )
        .await;
    assert_error(&r, 422, "unknown_type", Some("type"));
    let r = s
        .admin(
            Method::PATCH,
            "/api/v1/integrations/ecr-b",
            Some(json!({"auth": {"mode": "access_keys", "access_key_id": "AKIAFAKEAPIT1111"}})),
        )
        .await;
    assert_error(&r, 400, "invalid_field", Some("auth.secret_access_key"));
    assert_error(
        &s.admin(
            Method::PATCH,
            "/api/v1/integrations/nope",
            Some(json!({"region": "us-east-2"})),
        )
        .await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &s.admin(Method::DELETE, "/api/v1/integrations/nope", None)
            .await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &s.admin(Method::GET, "/api/v1/integrations?limit=0", None)
            .await,
        400,
        "invalid_field",
        Some("limit"),
    );
    assert_error(
        &s.admin(Method::GET, "/api/v1/integrations?cursor=%%%", None)
            .await,
        400,
        "invalid_field",
        Some("cursor"),
    );
    assert_error(
        &s.admin(Method::GET, "/api/v1/integrations?subscriptoin=acme", None)
            .await,
        400,
        "invalid_field",
        Some("subscriptoin"),
    );
    assert_error(
        &s.admin(Method::GET, "/api/v1/nothing-here", None).await,
        404,
        "route_not_found",
        None,
    );
    assert_error(
        &s.admin(Method::PUT, "/api/v1/integrations", None).await,
        405,
        "method_not_allowed",
        None,
    );

    // Deletes of things in use are refused with the users listed.
    let r = s
        .admin(Method::DELETE, "/api/v1/subscriptions/acme", None)
        .await;
    assert_error(&r, 409, "in_use", None);
    assert_eq!(r.1["error"]["used_by"], json!(["integration ecr-a"]));

    let after = s.admin(Method::GET, "/api/v1/integrations", None).await.1;
    assert_eq!(before, after, "refused requests must not change anything");
    s.stop().await;
}

#[tokio::test]
async fn tokens_and_access_control() {
    let (_dir, s) = server().await;
    // No token, a malformed token, a well-formed but unknown token.
    let r = s
        .call(Method::GET, "/api/v1/integrations", None, None)
        .await;
    assert_error(&r, 401, "unauthorized", None);
    let resp = s
        .client
        .get(format!("{}/api/v1/integrations", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["www-authenticate"], "Bearer realm=\"berth\"");
    assert_error(
        &s.call(Method::GET, "/api/v1/integrations", Some("nonsense"), None)
            .await,
        401,
        "unauthorized",
        None,
    );
    let forged = format!("{}x", &s.admin[..s.admin.len() - 1]);
    assert_error(
        &s.call(Method::GET, "/api/v1/integrations", Some(&forged), None)
            .await,
        401,
        "unauthorized",
        None,
    );
    assert_error(
        &s.call(Method::GET, "/api/v1/openapi.json", None, None)
            .await,
        401,
        "unauthorized",
        None,
    );
    let (status, health) = s.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["store"], "sqlite");

    for sub in ["acme", "globex"] {
        s.admin(
            Method::POST,
            "/api/v1/subscriptions",
            Some(json!({"name": sub})),
        )
        .await;
    }
    s.admin(
        Method::POST,
        "/api/v1/projects",
        Some(json!({"name": "acme/web", "subscription": "acme"})),
    )
    .await;
    s.admin(
        Method::POST,
        "/api/v1/projects",
        Some(json!({"name": "globex/api", "subscription": "globex"})),
    )
    .await;
    s.admin(
        Method::POST,
        "/api/v1/integrations",
        Some(keys_integration("acme-ecr", &["acme"])),
    )
    .await;
    s.admin(
        Method::POST,
        "/api/v1/integrations",
        Some(keys_integration("globex-ecr", &["globex"])),
    )
    .await;
    s.admin(
        Method::POST,
        "/api/v1/integrations",
        Some(keys_integration("shared-ecr", &["acme", "globex"])),
    )
    .await;

    let minted = s
        .admin(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"subscription": "acme", "description": "ci"})),
        )
        .await;
    assert_eq!(minted.0, StatusCode::CREATED, "{}", minted.1);
    let acme = minted.1["token"].as_str().unwrap().to_owned();
    assert_error(
        &s.admin(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"subscription": "initech"})),
        )
        .await,
        400,
        "invalid_field",
        Some("subscription"),
    );
    let listed = s.admin(Method::GET, "/api/v1/tokens", None).await;
    assert!(
        !listed.1.to_string().contains(&acme),
        "token text is shown once only"
    );

    let as_acme = |m: Method, p: &'static str, b: Option<Value>| s.call(m, p, Some(&acme), b);
    let names: Vec<String> = as_acme(Method::GET, "/api/v1/integrations", None).await.1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["acme-ecr", "shared-ecr"]);
    assert_error(
        &as_acme(
            Method::GET,
            "/api/v1/integrations?subscription=globex",
            None,
        )
        .await,
        403,
        "forbidden",
        None,
    );
    assert_error(
        &as_acme(Method::GET, "/api/v1/integrations/globex-ecr", None).await,
        404,
        "not_found",
        None,
    );
    assert_eq!(
        as_acme(Method::GET, "/api/v1/integrations/shared-ecr", None)
            .await
            .0,
        StatusCode::OK
    );
    assert_error(
        &as_acme(
            Method::POST,
            "/api/v1/integrations",
            Some(keys_integration("mine", &["acme"])),
        )
        .await,
        403,
        "forbidden",
        None,
    );
    assert_error(
        &as_acme(
            Method::PATCH,
            "/api/v1/integrations/acme-ecr",
            Some(json!({"region": "us-east-2"})),
        )
        .await,
        403,
        "forbidden",
        None,
    );
    assert_error(
        &as_acme(Method::DELETE, "/api/v1/integrations/acme-ecr", None).await,
        403,
        "forbidden",
        None,
    );
    assert_error(
        &as_acme(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"subscription": "acme"})),
        )
        .await,
        403,
        "forbidden",
        None,
    );
    assert_error(
        &as_acme(
            Method::POST,
            "/api/v1/subscriptions",
            Some(json!({"name": "mine"})),
        )
        .await,
        403,
        "forbidden",
        None,
    );
    assert_error(
        &as_acme(Method::GET, "/api/v1/runtimes", None).await,
        403,
        "forbidden",
        None,
    );
    let subs = as_acme(Method::GET, "/api/v1/subscriptions", None).await.1;
    assert_eq!(subs["items"].as_array().unwrap().len(), 1);
    assert_error(
        &as_acme(Method::GET, "/api/v1/subscriptions/globex", None).await,
        404,
        "not_found",
        None,
    );
    let projects = as_acme(Method::GET, "/api/v1/projects", None).await.1;
    assert_eq!(projects["items"][0]["name"], "acme/web");
    assert_eq!(projects["items"].as_array().unwrap().len(), 1);
    assert_error(
        &as_acme(Method::GET, "/api/v1/projects/globex/api", None).await,
        404,
        "not_found",
        None,
    );
    assert_eq!(
        s.admin(Method::GET, "/api/v1/projects/globex/api", None)
            .await
            .0,
        StatusCode::OK
    );

    // The admin token cannot be deleted by accident; a revoked token stops working at once.
    let admin_id = s
        .admin
        .trim_start_matches("brt_")
        .split('_')
        .next()
        .unwrap()
        .to_owned();
    assert_error(
        &s.admin(Method::DELETE, &format!("/api/v1/tokens/{admin_id}"), None)
            .await,
        400,
        "invalid_field",
        Some("id"),
    );
    let acme_id = minted.1["id"].as_str().unwrap();
    assert_eq!(
        s.admin(Method::DELETE, &format!("/api/v1/tokens/{acme_id}"), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &as_acme(Method::GET, "/api/v1/integrations", None).await,
        401,
        "unauthorized",
        None,
    );
    s.stop().await;
}

/// Each case: (what it is, method, path, body or raw bytes, status, code, field, words the
/// message must hold).
#[tokio::test]
async fn every_rejection_is_the_json_envelope_naming_the_field_and_rule() {
    let (_dir, s) = server().await;
    s.admin(
        Method::POST,
        "/api/v1/subscriptions",
        Some(json!({"name": "acme"})),
    )
    .await;
    let r = s
        .admin(
            Method::POST,
            "/api/v1/integrations",
            Some(keys_integration("base", &["acme"])),
        )
        .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    let big = vec![b' '; 3 << 20];
    let nul_secret = json!({"name": "nul", "type": "ecr",
        "auth": {"mode": "access_keys", "access_key_id": "AKIAFAKEAPITWXYZ", "secret_access_key": "abc\u{0}def"}});
    type Case<'a> = (
        &'a str,
        Method,
        &'a str,
        Vec<u8>,
        u16,
        &'a str,
        Option<&'a str>,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        ("a stray key beside mode ambient", Method::POST, "/api/v1/integrations",
            json!({"name": "amb", "type": "ecr", "auth": {"mode": "ambient", "access_key_id": "AKIAFAKEAPITWXYZ"}}).to_string().into_bytes(),
            400, "invalid_field", None, "access_key_id"),
        ("subscriptions: null in a patch", Method::PATCH, "/api/v1/integrations/base",
            json!({"subscriptions": null}).to_string().into_bytes(),
            400, "invalid_field", Some("subscriptions"), "not null"),
        ("the export switch on a non-key integration", Method::POST, "/api/v1/integrations",
            json!({"name": "amb", "type": "ecr", "auth": {"mode": "ambient"}, "export_long_lived_keys": true}).to_string().into_bytes(),
            400, "invalid_field", Some("export_long_lived_keys"), "access_keys"),
        ("a NUL in a secret is named as such", Method::POST, "/api/v1/integrations",
            nul_secret.to_string().into_bytes(),
            400, "invalid_field", Some("auth.secret_access_key"), "U+0000 (NUL)"),
        ("a NUL in the name filter", Method::GET, "/api/v1/integrations?name=%00", vec![],
            400, "invalid_field", Some("name"), "control characters"),
        ("3 MB to credentials", Method::POST, "/api/v1/integrations/base/credentials", big.clone(),
            413, "payload_too_large", None, "larger than"),
        ("3 MB to Test connection", Method::POST, "/api/v1/integrations/base/test", big,
            413, "payload_too_large", None, "larger than"),
        ("invalid UTF-8 in the path", Method::GET, "/api/v1/integrations/%FF%FE", vec![],
            400, "bad_request", None, "UTF-8"),
    ];
    for (case, method, path, body, status, code, field, words) in cases {
        let r = s.raw(method, path, Some("application/json"), body).await;
        assert_eq!(r.0.as_u16(), status, "{case}: {}", r.1);
        assert_eq!(r.1["error"]["code"], code, "{case}: {}", r.1);
        if let Some(f) = field {
            assert_eq!(r.1["error"]["field"], f, "{case}: {}", r.1);
        }
        let message = r.1["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(words), "{case}: {message}");
    }
    // Nothing was stored or changed by any of them.
    let (_, list) = s.admin(Method::GET, "/api/v1/integrations", None).await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["base"]);
    let (_, base) = s
        .admin(Method::GET, "/api/v1/integrations/base", None)
        .await;
    assert_eq!(base["subscriptions"], json!(["acme"]));
    s.stop().await;
}
