//! Test support: Debian's docker-registry on a free port (skipped loudly outside CI when it is
//! not installed; a failure in CI).
#![allow(dead_code)]

use berth_testkit::TempDir;

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
    pub async fn start() -> Option<DockerRegistry> {
        let bin = berth_testkit::peer("docker-registry")?;
        let dir = TempDir::new("docker-registry");
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
        let child = std::process::Command::new(bin)
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
