//! The layer bucket: blob GETs on `/v2/` answer 307 with a pre-signed URL on a listener of its
//! own (as ECR's redirect to S3), which serves the bytes: whole, ranged, HEAD, several requests
//! on one connection, and every refusal as S3's XML with the right status.

mod common;

use std::time::Duration;

use common::{Ecr, random_bytes, start};
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TWELVE_HOURS: Duration = Duration::from_secs(12 * 3600);

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Where `/v2/` sends a GET of `path`.
async fn redirect_of(e: &Ecr, password: &str, path: &str) -> String {
    let r = no_redirects()
        .get(format!("{}{path}", e.url))
        .basic_auth("AWS", Some(password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307, "{}", r.text().await.unwrap());
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// An S3 error document's `<Code>`.
fn s3_code(body: &str) -> &str {
    body.split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code)
        .unwrap_or_else(|| panic!("not an S3 error: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_gets_redirect_to_pre_signed_layer_urls() {
    let e = start("layers", TWELVE_HOURS).await;
    e.create_repo("team/app", "MUTABLE").await;
    let pw = e.password(&e.admin).await;
    let data = random_bytes(8 * 1024 * 1024 + 17);
    let digest = e.push_blob(&pw, "team/app", &data).await;
    let other = e.push_blob(&pw, "team/app", b"another layer").await;
    let url = redirect_of(&e, &pw, &format!("/v2/team/app/blobs/{digest}")).await;
    assert!(!url.starts_with(&e.url), "{url} is on the layer listener");
    assert!(
        !url.contains(&pw),
        "the registry password stays out of the URL"
    );

    // The URL alone is the authorization, as an S3 pre-signed URL is.
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(
        r.headers()["content-length"],
        data.len().to_string().as_str()
    );
    assert!(
        r.bytes().await.unwrap() == data,
        "the whole blob, byte for byte"
    );
    let followed = e.v2(Method::GET, &format!("/v2/team/app/blobs/{digest}"), &pw);
    assert!(followed.send().await.unwrap().bytes().await.unwrap() == data);

    let head = e.http.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        data.len().to_string().as_str()
    );
    assert!(head.bytes().await.unwrap().is_empty());
    let middle = e
        .http
        .get(&url)
        .header("range", "bytes=4194000-4194999")
        .send()
        .await
        .unwrap();
    assert_eq!(middle.status(), 206);
    assert_eq!(
        middle.headers()["content-range"],
        format!("bytes 4194000-4194999/{}", data.len()).as_str()
    );
    assert_eq!(
        middle.bytes().await.unwrap().as_ref(),
        &data[4194000..4195000]
    );

    // GetDownloadUrlForLayer hands out the same kind of URL.
    let (s, v) = e
        .ecr(
            &e.admin,
            "GetDownloadUrlForLayer",
            json!({"repositoryName": "team/app", "layerDigest": other}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let download = v["downloadUrl"].as_str().unwrap();
    assert_eq!(
        download.split_once("/v2/").unwrap().0,
        url.split_once("/v2/").unwrap().0
    );
    assert_eq!(
        reqwest::get(download)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        b"another layer"
    );

    // A URL changed in any part is refused, naming why, as S3 does.
    let (base, query) = url.split_once('?').unwrap();
    let refusals = [
        (
            url.replace("X-Berth-Signature=", "X-Berth-Signature=x"),
            403,
            "SignatureDoesNotMatch",
        ),
        (url.replace(&digest, &other), 403, "SignatureDoesNotMatch"),
        (
            url.replace("/team/app/", "/team/other/"),
            403,
            "SignatureDoesNotMatch",
        ),
        (
            format!(
                "{base}?{}",
                query.replace("X-Berth-Expires=", "X-Berth-Expires=1")
            ),
            403,
            "SignatureDoesNotMatch",
        ),
        (base.to_owned(), 403, "AccessDenied"),
        (
            format!("{}/v2/_catalog?{query}", base.split_once("/v2/").unwrap().0),
            404,
            "NoSuchKey",
        ),
    ];
    for (u, status, code) in refusals {
        let r = reqwest::get(&u).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{u}");
        let body = r.text().await.unwrap();
        assert_eq!(s3_code(&body), code, "{u}: {body}");
    }
    let missing = reqwest::get(base).await.unwrap().text().await.unwrap();
    assert!(
        missing.contains("X-Berth-Registry"),
        "the missing parameter is named: {missing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_redirect_without_the_right_to_read_the_layer() {
    let e = start("layers-denied", TWELVE_HOURS).await;
    e.create_repo("other/app", "MUTABLE").await;
    let admin = e.password(&e.admin).await;
    let digest = e.push_blob(&admin, "other/app", b"not for readers").await;
    let reader = e.password(&e.reader).await;
    let r = no_redirects()
        .get(format!("{}/v2/other/app/blobs/{digest}", e.url))
        .basic_auth("AWS", Some(&reader))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("DENIED"));
}

/// Reads one response from `stream`: its head and a body of its `content-length`.
async fn read_response(stream: &mut TcpStream, head_only: bool) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut piece = [0u8; 8192];
        let n = stream.read(&mut piece).await.unwrap();
        assert!(
            n > 0,
            "the connection closed before a whole head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&piece[..n]);
    };
    let head = String::from_utf8(buf[..end].to_vec()).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("content-length");
    let mut body = buf[end..].to_vec();
    let want = if head_only { 0 } else { length };
    while body.len() < want {
        let mut piece = vec![0u8; want - body.len()];
        let n = stream.read(&mut piece).await.unwrap();
        assert!(n > 0, "the body ended early");
        body.extend_from_slice(&piece[..n]);
    }
    (head, body)
}

async fn closed(stream: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    matches!(
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await,
        Ok(Ok(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_bucket_keeps_connections_and_refuses_cleanly() {
    let e = start("layers-raw", TWELVE_HOURS).await;
    e.create_repo("team/app", "MUTABLE").await;
    let pw = e.password(&e.admin).await;
    let data = random_bytes(300_000);
    let digest = e.push_blob(&pw, "team/app", &data).await;
    let url = redirect_of(&e, &pw, &format!("/v2/team/app/blobs/{digest}")).await;
    let rest = url.strip_prefix("http://").unwrap();
    let (host, target) = rest.split_at(rest.find('/').unwrap());

    // Three requests on one connection: a range, a HEAD, the whole blob.
    let mut s = TcpStream::connect(host).await.unwrap();
    let ask = |method: &str, extra: &str| {
        format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n")
    };
    s.write_all(ask("GET", "Range: bytes=-10\r\n").as_bytes())
        .await
        .unwrap();
    let (head, body) = read_response(&mut s, false).await;
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert_eq!(body, &data[data.len() - 10..]);
    s.write_all(ask("HEAD", "").as_bytes()).await.unwrap();
    let (head, _) = read_response(&mut s, true).await;
    assert!(
        head.starts_with("HTTP/1.1 200") && head.contains("content-length: 300000"),
        "{head}"
    );
    s.write_all(ask("GET", "Connection: close\r\n").as_bytes())
        .await
        .unwrap();
    let (head, body) = read_response(&mut s, false).await;
    assert!(head.contains("connection: close"), "{head}");
    assert!(body == data);
    assert!(closed(&mut s).await, "closed as asked");

    // Refusals arrive whole, then the connection closes when it cannot be followed.
    let cases = [
        (
            ask("POST", "Content-Length: 0\r\n"),
            "405",
            "MethodNotAllowed",
        ),
        (ask("GET", "Content-Length: 5\r\n"), "400", "BadRequest"),
        ("NOT HTTP AT ALL\r\n\r\n".to_owned(), "400", "BadRequest"),
        (
            ask("GET", &format!("X-Padding: {}\r\n", "p".repeat(20_000))),
            "431",
            "RequestHeaderSectionTooLarge",
        ),
        (
            ask("GET", "Range: bytes=300000-\r\n"),
            "416",
            "InvalidRange",
        ),
    ];
    for (request, status, code) in cases {
        let mut s = TcpStream::connect(host).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let (head, body) = read_response(&mut s, false).await;
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{code}: {head}"
        );
        assert_eq!(s3_code(&String::from_utf8(body).unwrap()), code);
        if status == "405" {
            assert!(head.contains("allow: GET, HEAD"), "{head}");
        }
        if status == "416" {
            assert!(head.contains("content-range: bytes */300000"), "{head}");
        } else {
            assert!(closed(&mut s).await, "{code}: closed after the refusal");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layer_listen_off_serves_blobs_in_line() {
    let e = common::start_configured("layers-off", TWELVE_HOURS, "", |o| {
        o.layer_listen = berth_ecr_local::LayerListen::Off;
    })
    .await;
    e.create_repo("team/app", "MUTABLE").await;
    let pw = e.password(&e.admin).await;
    let digest = e.push_blob(&pw, "team/app", b"in line").await;
    let r = no_redirects()
        .get(format!("{}/v2/team/app/blobs/{digest}", e.url))
        .basic_auth("AWS", Some(&pw))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"in line");
    let (_, v) = e
        .ecr(
            &e.admin,
            "GetDownloadUrlForLayer",
            json!({"repositoryName": "team/app", "layerDigest": digest}),
        )
        .await;
    assert!(
        v["downloadUrl"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/v2/", e.url)),
        "{v}"
    );
}
