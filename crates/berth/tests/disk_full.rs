//! A full disk under `berth up`: the data directory on a 24 MiB tmpfs, a 40 MiB push. The
//! partial upload is removed at once, `berth push` reports the server's own words (the disk is
//! full), the hub keeps accepting writes, and a push that fits succeeds without a restart.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_testkit::TempDir;
use common::*;

/// A tmpfs mounted over a directory for the test's life.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn small_disk(dir: &Path) -> Option<Mount> {
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    if mounted {
        return Some(Mount(dir.to_owned()));
    }
    berth_testkit::unavailable("a tmpfs mount", "CI runs as root, which can mount one");
    None
}

fn make_image(size_mib: u32, dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/make-image.py");
    let o = Command::new("python3")
        .arg(script)
        .args([&size_mib.to_string(), "2"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_full_disk_is_reported_cleaned_up_and_recovered_from() {
    let data = TempDir::new("diskfull");
    let Some(_mount) = small_disk(&data.0) else {
        return;
    };
    let work = TempDir::new("diskfull-work");
    let (big, small) = (work.0.join("big"), work.0.join("small"));
    make_image(40, &big);
    make_image(1, &small);
    let u = up_at(data, "warn", None);
    let docker = work.0.join("docker");
    let keys = demo_keys(&u);
    add_integration(&u, &docker, "local", &u.ecr, (&keys.0, &keys.1), None);

    let src = format!("oci:{}:latest", big.display());
    let o = berth(
        &u,
        &docker,
        &["push", "--create-repo", &src, "ecr://local/team/app:big"],
        "",
    );
    let err = fails(&o);
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.contains("507") && last.contains("disk is full"),
        "the server's words: {last}"
    );
    let uploads = u.data.0.join("local-ecr/uploads");
    let left: Vec<_> = std::fs::read_dir(&uploads)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name(), e.metadata().unwrap().len())
        })
        .collect();
    assert_eq!(
        left.len(),
        0,
        "no partial upload is left behind: {left:?}\n{err}"
    );
    // The hub still writes, and a push that fits works at once.
    ok(&berth(
        &u,
        &docker,
        &["subscription", "add", "after-full"],
        "",
    ));
    let src = format!("oci:{}:latest", small.display());
    ok(&berth(
        &u,
        &docker,
        &["push", &src, "ecr://local/team/app:small"],
        "",
    ));
    let tags = ok(&berth(&u, &docker, &["tags", "ecr://local/team/app"], ""));
    assert!(tags.contains("small") && !tags.contains("big"), "{tags}");
}
