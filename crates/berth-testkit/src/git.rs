//! Real Git repositories for tests: `git` run in a directory (a committer identity set, so a
//! bare CI machine needs no global config), and a bare repository with one commit on `main`
//! plus a second clone of it, for a writer outside Berth.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `git args` in `cwd` and answers its stdout; panics with git's stderr on failure.
pub fn git(cwd: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(cwd)
        .args([
            "-c",
            "user.name=Someone",
            "-c",
            "user.email=someone@example.com",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `dir/config.git`, bare, with one commit on `main`, and `dir/other`, a clone of it.
pub fn bare_repository(dir: &Path) -> (PathBuf, PathBuf) {
    let bare = dir.join("config.git");
    let other = dir.join("other");
    git(
        dir,
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=main",
            bare.to_str().unwrap(),
        ],
    );
    git(
        dir,
        &[
            "clone",
            "--quiet",
            bare.to_str().unwrap(),
            other.to_str().unwrap(),
        ],
    );
    std::fs::write(other.join("README.md"), "shared configuration\n").unwrap();
    git(&other, &["add", "README.md"]);
    git(&other, &["commit", "--quiet", "-m", "init"]);
    git(&other, &["push", "--quiet", "origin", "HEAD:main"]);
    (bare, other)
}

/// A bare repository (`config.git`, one commit on `main`) served over smart HTTP with basic
/// auth, as a Git host serves it: Git's own `git http-backend` behind nginx and fcgiwrap
/// (Debian packages) on loopback. Stops with the value.
pub struct SmartHttp {
    /// `http://127.0.0.1:<port>`; the repository is `<url>/config.git`.
    pub url: String,
    pub bare: PathBuf,
    children: Vec<std::process::Child>,
}

impl Drop for SmartHttp {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl SmartHttp {
    /// Serves a new repository under `dir` for `user`/`password`; `None` when nginx or fcgiwrap
    /// is not installed (tests skip then, and fail in CI).
    pub fn start(dir: &Path, user: &str, password: &str) -> Option<SmartHttp> {
        let (nginx, fcgiwrap) = (crate::peer("nginx")?, crate::peer("fcgiwrap")?);
        let (bare, _) = bare_repository(dir);
        git(&bare, &["config", "http.receivepack", "true"]);
        let socket = dir.join("fcgi.sock");
        let fcgi = Command::new(fcgiwrap)
            .args(["-s", &format!("unix:{}", socket.display())])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("fcgiwrap starts");
        let hash = Command::new("openssl")
            .args(["passwd", "-apr1", password])
            .output()
            .expect("openssl (scripts/install-peers installs it)");
        let hash = String::from_utf8_lossy(&hash.stdout).trim().to_owned();
        std::fs::write(dir.join("htpasswd"), format!("{user}:{hash}")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(dir.join("nginx.conf"), nginx_conf(dir, port, &socket)).unwrap();
        let server = Command::new(nginx)
            .args([
                "-p",
                dir.to_str().unwrap(),
                "-c",
                dir.join("nginx.conf").to_str().unwrap(),
            ])
            .args(["-g", "daemon off;"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nginx starts");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && socket.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(SmartHttp {
            url: format!("http://127.0.0.1:{port}"),
            bare,
            children: vec![server, fcgi],
        })
    }
}

fn nginx_conf(dir: &Path, port: u16, socket: &Path) -> String {
    format!(
        "user root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  fastcgi_temp_path {d}/fcgi;\n\
         proxy_temp_path {d}/proxy;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         client_max_body_size 0;\n  server {{\n    listen 127.0.0.1:{port};\n\
         location / {{\n      auth_basic \"git\";\n      auth_basic_user_file {d}/htpasswd;\n\
         include /etc/nginx/fastcgi_params;\n\
         fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;\n\
         fastcgi_param GIT_PROJECT_ROOT {d};\n      fastcgi_param GIT_HTTP_EXPORT_ALL \"\";\n\
         fastcgi_param REMOTE_USER $remote_user;\n      fastcgi_param PATH_INFO $uri;\n\
         fastcgi_pass unix:{sock};\n    }}\n  }}\n}}\n",
        d = dir.display(),
        sock = socket.display(),
    )
}
