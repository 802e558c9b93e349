//! `berth up` against resource exhaustion, as a separate process under a low open-file limit
//! (`prlimit --nofile=256:256`) so its threads, descriptors and memory are its own to measure:
//! thousands of upload sessions from one token, half-sent headers and stalled uploads on both
//! listeners, and concurrent large unauthenticated bodies. Loopback only, bounded in count and
//! time; prints the peak threads, fds and RSS it saw.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_testkit::TempDir;
use common::*;

const IDLE_SECONDS: u64 = 2;

/// `berth up` under a 256-file limit, with a short idle timeout.
fn start_limited() -> Option<Up> {
    let prlimit = berth_testkit::peer("prlimit")?;
    let mut launcher = Command::new(prlimit);
    launcher.args(["--nofile=256:256", "--", BIN]);
    let idle = IDLE_SECONDS.to_string();
    Some(up_via(
        launcher,
        TempDir::new("hostile"),
        &[("BERTH_LOG", "warn"), ("BERTH_IDLE_TIMEOUT", &idle)],
        None,
    ))
}

#[derive(Default, Clone, Copy, Debug)]
struct Peak {
    threads: u64,
    fds: u64,
    rss_kib: u64,
}

fn sample(pid: u32) -> Peak {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Peak {
        threads: field("Threads:"),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count() as u64)
            .unwrap_or(0),
        rss_kib: field("VmRSS:"),
    }
}

/// Samples the process every 20 ms until stopped; returns the peaks.
fn watch(pid: u32) -> (Arc<AtomicBool>, std::thread::JoinHandle<Peak>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut peak = Peak::default();
        while !flag.load(Ordering::Relaxed) {
            let s = sample(pid);
            peak.threads = peak.threads.max(s.threads);
            peak.fds = peak.fds.max(s.fds);
            peak.rss_kib = peak.rss_kib.max(s.rss_kib);
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });
    (stop, handle)
}

/// True when the server closed the connection within `within`.
fn closed_within(mut s: TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn host_of(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_up_survives_exhaustion_under_a_low_fd_limit() {
    let Some(hub) = start_limited() else { return };
    let pid = hub.child.id();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let admin = |m: reqwest::Method, path: &str| {
        http.request(m, format!("{}{path}", hub.url))
            .bearer_auth(&hub.token)
    };
    // An integration for the local ECR, its registry password and a repository.
    let creds = std::fs::read_to_string(hub.data.0.join("local-ecr/credentials")).unwrap();
    let field = |k: &str| {
        creds
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k} = ")))
            .unwrap()
            .to_owned()
    };
    let body = serde_json::json!({"name": "local", "type": "ecr", "endpoint": hub.ecr,
        "auth": {"mode": "access_keys", "access_key_id": field("aws_access_key_id"), "secret_access_key": field("aws_secret_access_key")}});
    let r = admin(reqwest::Method::POST, "/api/v1/integrations")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = admin(reqwest::Method::POST, "/api/v1/repositories")
        .json(&serde_json::json!({"integration": "local", "repository": "team/app"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let r = admin(
        reqwest::Method::POST,
        "/api/v1/integrations/local/credentials",
    )
    .json(&serde_json::json!({}))
    .send()
    .await
    .unwrap();
    let password = r.json::<serde_json::Value>().await.unwrap()["password"]
        .as_str()
        .unwrap()
        .to_owned();
    let baseline = sample(pid);
    let (stop, peaks) = watch(pid);

    // 1. 2,000 upload sessions from one token, 32 at a time.
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..32 {
        let (http, ecr, password, statuses) = (
            http.clone(),
            hub.ecr.clone(),
            password.clone(),
            statuses.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for _ in (worker..2000).step_by(32) {
                let r = http
                    .post(format!("{ecr}/v2/team/app/blobs/uploads/"))
                    .basic_auth("AWS", Some(&password))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                statuses.lock().unwrap().push(r);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let statuses = statuses.lock().unwrap().clone();
    let accepted = statuses.iter().filter(|s| **s == 202).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        accepted + limited,
        2000,
        "only 202 and 429: {:?}",
        &statuses[..20]
    );
    assert_eq!(accepted, 1000, "one principal holds at most 1,000 sessions");
    let after_sessions = sample(pid);
    println!(
        "hostile: 2000 upload sessions in {:.1} s: {accepted} accepted, {limited} refused with 429; threads {} -> {}, fds {} -> {}",
        started.elapsed().as_secs_f64(),
        baseline.threads,
        after_sessions.threads,
        baseline.fds,
        after_sessions.fds
    );
    // 1,000 open sessions: the only new descriptors are the 32 clients' connections, and the
    // only new threads the runtime's bounded blocking pool (file creation), not one per session.
    assert!(
        after_sessions.fds < baseline.fds + 32 + 24,
        "sessions hold no descriptors: {after_sessions:?}"
    );
    assert!(
        after_sessions.threads < baseline.threads + 40,
        "sessions hold no threads: {after_sessions:?}"
    );
    // The hub and the registry still serve.
    for _ in 0..20 {
        let r = admin(reqwest::Method::GET, "/api/v1/integrations")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = http
        .get(format!("{}/v2/", hub.ecr))
        .basic_auth("AWS", Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // 2. 50 half-sent headers on each listener and 50 stalled 10 GiB uploads.
    let mut idle = Vec::new();
    for target in [&hub.url, &hub.ecr] {
        for _ in 0..50 {
            let mut s = TcpStream::connect(host_of(target)).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            idle.push(s);
        }
    }
    let auth = base64_basic(&password);
    for _ in 0..50 {
        let mut s = TcpStream::connect(host_of(&hub.ecr)).unwrap();
        s.write_all(
            format!("POST /v2/team/app/blobs/uploads/?digest=sha256:{} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nContent-Length: 10737418240\r\n\r\n", "0".repeat(64))
                .as_bytes(),
        )
        .unwrap();
        s.write_all(&vec![0u8; 64 * 1024]).unwrap();
        idle.push(s);
    }
    let r = admin(reqwest::Method::GET, "/api/v1/integrations")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the hub serves while 150 connections stall"
    );
    let waited = Instant::now();
    let closed = tokio::task::spawn_blocking(move || {
        idle.into_iter()
            .map(|s| closed_within(s, Duration::from_secs(IDLE_SECONDS + 8)))
            .filter(|c| *c)
            .count()
    })
    .await
    .unwrap();
    println!(
        "hostile: 150 stalled connections (50 half-sent headers per listener, 50 stalled 10 GiB uploads): {closed} closed by the server within {:.1} s (idle timeout {IDLE_SECONDS} s)",
        waited.elapsed().as_secs_f64()
    );
    assert_eq!(closed, 150);

    // 3. 30 concurrent unauthenticated 60 MB bodies to the control plane.
    let rss_before = sample(pid).rss_kib;
    let mut posts = Vec::new();
    for _ in 0..30 {
        let (http, ecr) = (http.clone(), hub.ecr.clone());
        posts.push(tokio::spawn(async move {
            http.post(format!("{ecr}/"))
                .header(
                    "x-amz-target",
                    "AmazonEC2ContainerRegistry_V20150921.UploadLayerPart",
                )
                .body(vec![b'a'; 60 << 20])
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }));
    }
    for p in posts {
        let s = p.await.unwrap();
        assert!(s == 0 || (400..500).contains(&s), "{s}");
    }
    stop.store(true, Ordering::Relaxed);
    let peak = peaks.join().unwrap();
    println!(
        "hostile: 30 x 60 MB unauthenticated bodies: RSS {} MiB before, peak over the whole run {} MiB",
        rss_before / 1024,
        peak.rss_kib / 1024
    );
    println!(
        "hostile: peaks over the run: {} threads, {} fds (limit 256), {} MiB RSS",
        peak.threads,
        peak.fds,
        peak.rss_kib / 1024
    );
    assert!(peak.fds < 256);
    assert!(peak.rss_kib < 400 * 1024, "{peak:?}");
    // Still serving at the end.
    let r = admin(reqwest::Method::GET, "/healthz")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn base64_basic(password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"))
}
