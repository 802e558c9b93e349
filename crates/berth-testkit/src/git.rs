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
