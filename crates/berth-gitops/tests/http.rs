//! The shared repository over smart HTTP with basic auth, as a Git host serves it: Git's own
//! `git http-backend` behind nginx and fcgiwrap (Debian packages) on loopback. Berth pushes with
//! the credentials through `GIT_ASKPASS`; a wrong password is refused; the password is nowhere
//! in the checkout.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_gitops::repo::{Author, Change, Checkout, RepoAddress, RepoCredentials};
use berth_testkit::{TempDir, peer};
use secrecy::SecretString;

const PASSWORD: &str = "s3cret-push-token-0123456789";

struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn run(cwd: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx + fcgiwrap + git http-backend serving `root` at `http://127.0.0.1:<port>/`.
fn serve(dir: &Path, root: &Path, nginx: &Path, fcgiwrap: &Path) -> (Killed, u16) {
    let socket = dir.join("fcgi.sock");
    let fcgi = Command::new(fcgiwrap)
        .args(["-s", &format!("unix:{}", socket.display())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let hash = run(dir, "openssl", &["passwd", "-apr1", PASSWORD]);
    std::fs::write(dir.join("htpasswd"), format!("berth:{}", hash.trim())).unwrap();
    let port = free_port();
    let conf = format!(
        "user root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  fastcgi_temp_path {d}/fcgi;\n\
         proxy_temp_path {d}/proxy;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         client_max_body_size 0;\n  server {{\n    listen 127.0.0.1:{port};\n\
         location / {{\n      auth_basic \"git\";\n      auth_basic_user_file {d}/htpasswd;\n\
         include /etc/nginx/fastcgi_params;\n\
         fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;\n\
         fastcgi_param GIT_PROJECT_ROOT {root};\n      fastcgi_param GIT_HTTP_EXPORT_ALL \"\";\n\
         fastcgi_param REMOTE_USER $remote_user;\n      fastcgi_param PATH_INFO $uri;\n\
         fastcgi_pass unix:{sock};\n    }}\n  }}\n}}\n",
        d = dir.display(),
        root = root.display(),
        sock = socket.display(),
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let server = Command::new(nginx)
        .args([
            "-p",
            dir.to_str().unwrap(),
            "-c",
            dir.join("nginx.conf").to_str().unwrap(),
        ])
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && socket.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (Killed(vec![server, fcgi]), port)
}

fn grep_dir(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            hits.extend(grep_dir(&path, needle));
        } else if std::fs::read(&path)
            .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        {
            hits.push(path.display().to_string());
        }
    }
    hits
}

#[test]
fn berth_pushes_over_smart_http_with_basic_auth_and_keeps_the_password_off_disk() {
    let (Some(nginx), Some(fcgiwrap)) = (peer("nginx"), peer("fcgiwrap")) else {
        return;
    };
    let dir = TempDir::new("gitops-http");
    let root = dir.path().join("repos");
    std::fs::create_dir_all(&root).unwrap();
    let bare = root.join("config.git");
    run(
        &root,
        "git",
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=main",
            "config.git",
        ],
    );
    run(&bare, "git", &["config", "http.receivepack", "true"]);
    let seed = dir.path().join("seed");
    run(
        dir.path(),
        "git",
        &[
            "clone",
            "--quiet",
            bare.to_str().unwrap(),
            seed.to_str().unwrap(),
        ],
    );
    std::fs::write(seed.join("README.md"), "config\n").unwrap();
    run(&seed, "git", &["add", "."]);
    run(
        &seed,
        "git",
        &[
            "-c",
            "user.name=x",
            "-c",
            "user.email=x@x",
            "commit",
            "--quiet",
            "-m",
            "init",
        ],
    );
    run(&seed, "git", &["push", "--quiet", "origin", "HEAD:main"]);
    let (_servers, port) = serve(dir.path(), &root, &nginx, &fcgiwrap);
    let address = format!("http://127.0.0.1:{port}/config.git/berth?ref=main");

    let wrong = RepoCredentials {
        username: "berth".into(),
        password: SecretString::from("wrong".to_owned()),
    };
    let err = Checkout::open(
        &dir.path().join("wrong"),
        RepoAddress::parse(&address).unwrap(),
        Some(wrong),
    )
    .err()
    .expect("a wrong password is refused");
    assert!(
        err.to_string().contains("Authentication failed") || err.to_string().contains("401"),
        "{err}"
    );

    let creds = RepoCredentials {
        username: "berth".into(),
        password: SecretString::from(PASSWORD.to_owned()),
    };
    let work = dir.path().join("work");
    let checkout =
        Checkout::open(&work, RepoAddress::parse(&address).unwrap(), Some(creds)).unwrap();
    let change = Change::Write {
        path: "resources/all-runtimes-all-clusters/ecr-prod.configmap.yaml".into(),
        content: "kind: ConfigMap\n".into(),
    };
    let author = Author {
        name: "Berth".into(),
        email: "berth@localhost".into(),
    };
    checkout
        .commit(
            None,
            &[change],
            "berth: create integration ecr-prod",
            &author,
        )
        .unwrap()
        .expect("pushed");
    let log = run(&bare, "git", &["log", "-1", "--format=%an %s", "main"]);
    assert_eq!(log.trim(), "Berth berth: create integration ecr-prod");
    assert!(
        grep_dir(&work, PASSWORD).is_empty(),
        "the password is nowhere in the checkout"
    );
}
