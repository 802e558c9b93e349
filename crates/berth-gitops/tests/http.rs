//! The shared repository over smart HTTP with basic auth, as a Git host serves it: Git's own
//! `git http-backend` behind nginx and fcgiwrap (Debian packages) on loopback. Berth pushes with
//! the credentials through `GIT_ASKPASS`; a wrong password is refused; the password is nowhere
//! in the checkout.

use std::path::Path;

use berth_gitops::repo::{Author, Change, Checkout, RepoAddress, RepoCredentials};
use berth_testkit::TempDir;
use berth_testkit::git::{SmartHttp, git};
use secrecy::SecretString;

const PASSWORD: &str = "s3cret-push-token-0123456789";

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
    let dir = TempDir::new("gitops-http");
    let Some(server) = SmartHttp::start(dir.path(), "berth", PASSWORD) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "nginx and fcgiwrap are missing in CI"
        );
        eprintln!(
            "SKIPPED: nginx or fcgiwrap is not installed (scripts/install-peers installs them)"
        );
        return;
    };
    let bare = server.bare.clone();
    let address = format!("{}/config.git/berth?ref=main", server.url);

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
    let log = git(&bare, &["log", "-1", "--format=%an %s", "main"]);
    assert_eq!(log.trim(), "Berth berth: create integration ecr-prod");
    assert!(
        grep_dir(&work, PASSWORD).is_empty(),
        "the password is nowhere in the checkout"
    );
}
