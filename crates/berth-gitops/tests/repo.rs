//! Changes land in real Git repositories as one commit each, through the system `git`: a bare
//! repository on disk, a push beaten by another writer rebased and retried, a conflict on the
//! same file reported with nothing pushed, and removals.

use std::path::Path;

use berth_gitops::repo::{Author, Change, Checkout, RepoAddress, RepoError};
use berth_testkit::TempDir;
use berth_testkit::git::{bare_repository, git};

/// A bare repository with one commit on `main`, and a second clone of it (another writer).
fn repository(dir: &Path) -> (String, std::path::PathBuf) {
    let (bare, other) = bare_repository(dir);
    (bare.to_string_lossy().into_owned(), other)
}

fn author() -> Author {
    Author {
        name: "Berth".into(),
        email: "berth@localhost".into(),
    }
}

fn write(path: &str, content: &str) -> Change {
    Change::Write {
        path: path.into(),
        content: content.into(),
    }
}

#[test]
fn changes_are_commits_and_a_beaten_push_is_rebased() {
    let dir = TempDir::new("gitops-repo");
    let (bare, other) = repository(dir.path());
    let address = RepoAddress::parse(&format!("{bare}/berth?ref=main")).unwrap();
    let checkout = Checkout::open(&dir.path().join("work"), address, None).unwrap();

    let file = "resources/all-runtimes-all-clusters/ecr-prod.configmap.yaml";
    let commit = checkout
        .commit(
            None,
            &[write(file, "region: us-east-1\n")],
            "berth: create integration ecr-prod",
            &author(),
        )
        .unwrap()
        .expect("a change is a commit");
    let log = git(
        dir.path(),
        &[
            "--git-dir",
            &bare,
            "log",
            "-1",
            "--format=%H %an %s",
            "main",
        ],
    );
    assert_eq!(
        log.trim(),
        format!("{commit} Berth berth: create integration ecr-prod")
    );
    let shown = git(
        dir.path(),
        &["--git-dir", &bare, "show", &format!("main:berth/{file}")],
    );
    assert_eq!(shown, "region: us-east-1\n");
    assert_eq!(
        checkout
            .commit(
                Some(&commit),
                &[write(file, "region: us-east-1\n")],
                "same",
                &author()
            )
            .unwrap(),
        None,
        "no change, no commit"
    );

    // Someone else pushes a different file first: ours is rebased onto theirs and pushed.
    git(&other, &["pull", "--quiet", "origin", "main"]);
    std::fs::write(other.join("NOTES.md"), "theirs\n").unwrap();
    git(&other, &["add", "NOTES.md"]);
    git(&other, &["commit", "--quiet", "-m", "their change"]);
    git(&other, &["push", "--quiet", "origin", "HEAD:main"]);
    let file2 = "resources/runtimes/prod-eu/ecr-prod.configmap.yaml";
    let second = checkout
        .commit(
            Some(&commit),
            &[write(file2, "region: eu-west-1\n")],
            "berth: update integration ecr-prod (runtimes prod-eu)",
            &author(),
        )
        .unwrap()
        .unwrap();
    let subjects = git(
        dir.path(),
        &["--git-dir", &bare, "log", "--format=%s", "main"],
    );
    assert_eq!(
        subjects.lines().collect::<Vec<_>>(),
        [
            "berth: update integration ecr-prod (runtimes prod-eu)",
            "their change",
            "berth: create integration ecr-prod",
            "init"
        ]
    );

    // Removing is a commit too.
    checkout
        .commit(
            Some(&second),
            &[Change::Remove { path: file.into() }],
            "berth: delete integration ecr-prod",
            &author(),
        )
        .unwrap()
        .unwrap();
    let tree = git(
        dir.path(),
        &["--git-dir", &bare, "ls-tree", "-r", "--name-only", "main"],
    );
    assert!(
        !tree.contains("all-runtimes-all-clusters") && tree.contains("prod-eu"),
        "{tree}"
    );
}

#[test]
fn a_conflict_on_the_same_file_is_reported_and_nothing_is_pushed() {
    let dir = TempDir::new("gitops-conflict");
    let (bare, other) = repository(dir.path());
    let address = RepoAddress::parse(&format!("{bare}?ref=main")).unwrap();
    let checkout = Checkout::open(&dir.path().join("work"), address, None).unwrap();
    let base = checkout
        .commit(
            None,
            &[write("a.yaml", "v: 1\n")],
            "berth: create a",
            &author(),
        )
        .unwrap()
        .unwrap();
    git(&other, &["pull", "--quiet", "origin", "main"]);
    std::fs::write(other.join("a.yaml"), "v: theirs\n").unwrap();
    git(&other, &["commit", "--quiet", "-am", "their edit of a"]);
    git(&other, &["push", "--quiet", "origin", "HEAD:main"]);
    let before = git(dir.path(), &["--git-dir", &bare, "rev-parse", "main"]);
    let err = checkout
        .commit(
            Some(&base),
            &[write("a.yaml", "v: 2\n")],
            "berth: update a",
            &author(),
        )
        .unwrap_err();
    assert!(
        matches!(&err, RepoError::Conflict { file } if file == "a.yaml"),
        "{err}"
    );
    assert_eq!(
        git(dir.path(), &["--git-dir", &bare, "rev-parse", "main"]),
        before,
        "nothing was pushed"
    );
    // The checkout is clean again and the next change lands on top of theirs.
    checkout
        .commit(
            None,
            &[write("b.yaml", "v: 1\n")],
            "berth: create b",
            &author(),
        )
        .unwrap()
        .unwrap();
    let a = git(dir.path(), &["--git-dir", &bare, "show", "main:a.yaml"]);
    assert_eq!(a, "v: theirs\n");
}

/// `update` reads refs from the repository's files to skip a reset when nothing moved: it
/// must still follow an outside push, and `head` must agree with git after a clone (packed
/// refs) and after a commit (loose refs).
#[test]
fn update_follows_outside_pushes_and_head_agrees_with_git() {
    let dir = TempDir::new("gitops-update");
    let (bare, other) = repository(dir.path());
    let address = RepoAddress::parse(&format!("{bare}?ref=main")).unwrap();
    let checkout = Checkout::open(&dir.path().join("work"), address, None).unwrap();
    let main = || {
        git(dir.path(), &["--git-dir", &bare, "rev-parse", "main"])
            .trim()
            .to_owned()
    };
    assert_eq!(checkout.head(), Some(main()), "after the clone");
    checkout.update().unwrap();
    assert_eq!(checkout.head(), Some(main()), "nothing moved");

    git(&other, &["pull", "--quiet", "origin", "main"]);
    std::fs::write(other.join("ecr.yaml"), "theirs: 1\n").unwrap();
    git(&other, &["add", "ecr.yaml"]);
    git(&other, &["commit", "--quiet", "-m", "their change"]);
    git(&other, &["push", "--quiet", "origin", "HEAD:main"]);
    checkout.update().unwrap();
    assert_eq!(
        checkout.head(),
        Some(main()),
        "the outside push is followed"
    );
    assert_eq!(
        checkout.read("ecr.yaml").unwrap().as_deref(),
        Some("theirs: 1\n")
    );

    let ours = checkout
        .commit(
            None,
            &[write("ecr.yaml", "ours: 2\n")],
            "berth: ours",
            &author(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(ours, main(), "the commit reported is the one pushed");
    assert_eq!(checkout.head(), Some(ours));
}
