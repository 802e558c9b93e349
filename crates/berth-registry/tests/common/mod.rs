//! Test support: temporary directories and Debian's docker-registry on a free port (skipped
//! loudly outside CI when it is not installed; a failure in CI).
#![allow(dead_code)]

use std::path::PathBuf;

pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn temp(tag: &str) -> TempDir {
    let p = std::env::temp_dir().join(format!(
        "berth-registry-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&p).unwrap();
    TempDir(p)
}

pub struct DockerRegistry {
    pub port: u16,
    child: std::process::Child,
    _dir: TempDir,
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DockerRegistry {
    /// A fresh registry, or `None` (with a loud note) where the peer is not installed.
    pub async fn start(test: &str) -> Option<DockerRegistry> {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .any(|d| d.join("docker-registry").exists());
        if !found {
            assert!(
                std::env::var_os("CI").is_none(),
                "peer docker-registry missing in CI: scripts/install-peers installs it"
            );
            eprintln!(
                "\n*** SKIPPING {test}: docker-registry is not installed (scripts/install-peers) ***\n"
            );
            return None;
        }
        let dir = temp("docker-registry");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            dir.0.join("config.yml"),
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.0.join("data").display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("docker-registry")
            .arg("serve")
            .arg(dir.0.join("config.yml"))
            .env_remove("REGISTRY_AUTH_FILE")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Some(DockerRegistry {
            port,
            child,
            _dir: dir,
        })
    }
}
