//! Sync status per integration, read from the branch head: `SYNCING` while a change is queued
//! or being pushed, `OUT_OF_SYNC` after a failed push or when the repository differs from what
//! Berth would write (with what differs), `UNKNOWN` when the repository cannot be read.

use std::collections::{BTreeMap, BTreeSet};

use berth_api::{SyncList, SyncView};
use berth_gitops::desired::{self, DesiredFile};
use berth_store::{GitOpsSettings, StoreError, SyncRecord, SyncState, WrittenFile};

use super::{GitOpsSync, sha256_hex};

/// What one integration should have and what is known of it.
struct Entry {
    name: String,
    desired: Result<Vec<DesiredFile>, String>,
    record: Option<SyncRecord>,
    ledger: Vec<WrittenFile>,
}

pub(crate) async fn sync_status(
    sync: &GitOpsSync,
    settings: &GitOpsSettings,
) -> Result<SyncList, StoreError> {
    let entries = entries(sync, settings).await?;
    let paths: BTreeSet<String> = entries
        .iter()
        .flat_map(|e| {
            let wanted = e.desired.iter().flatten().map(|f| f.path.clone());
            wanted
                .chain(e.ledger.iter().map(|f| f.path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let read = sync
        .at_head(settings, move |checkout| {
            let files: BTreeMap<String, Option<String>> = paths
                .into_iter()
                .map(|p| {
                    let content = checkout.read(&p).ok().flatten();
                    (p, content)
                })
                .collect();
            (checkout.head(), files)
        })
        .await;
    let (head, files) = match read {
        Ok((head, files)) => (head, Ok(files)),
        Err(reason) => (None, Err(reason)),
    };
    let items = entries.into_iter().map(|e| view(e, &files)).collect();
    Ok(SyncList { head, items })
}

async fn entries(sync: &GitOpsSync, settings: &GitOpsSettings) -> Result<Vec<Entry>, StoreError> {
    let store = &sync.store;
    let mut records: BTreeMap<String, SyncRecord> = store
        .sync_records()
        .await?
        .into_iter()
        .map(|r| (r.name_key.clone(), r))
        .collect();
    let mut ledger: BTreeMap<String, Vec<WrittenFile>> = BTreeMap::new();
    for f in store.written_files().await? {
        ledger.entry(f.name_key.clone()).or_default().push(f);
    }
    let placement = sync.placement(settings).await?;
    let mut entries = Vec::new();
    for integration in sync.all_integrations().await? {
        let key = integration.name.key();
        let shared = desired::is_shared(&integration.runtimes);
        if !shared && !ledger.contains_key(&key) && !records.contains_key(&key) {
            continue;
        }
        entries.push(Entry {
            name: integration.name.to_string(),
            desired: sync.render(&integration, &placement).await,
            record: records.remove(&key),
            ledger: ledger.remove(&key).unwrap_or_default(),
        });
    }
    // Deleted integrations whose files are still to be removed, or were just removed.
    for (key, files) in ledger {
        let record = records.remove(&key);
        entries.push(Entry {
            name: record.as_ref().map_or(key, |r| r.name.clone()),
            desired: Ok(Vec::new()),
            record,
            ledger: files,
        });
    }
    for (_, record) in records
        .into_iter()
        .filter(|(_, r)| r.state != SyncState::Synced)
    {
        entries.push(Entry {
            name: record.name.clone(),
            desired: Ok(Vec::new()),
            record: Some(record),
            ledger: Vec::new(),
        });
    }
    Ok(entries)
}

fn view(e: Entry, files: &Result<BTreeMap<String, Option<String>>, String>) -> SyncView {
    let record_state = e.record.as_ref().map(|r| r.state);
    let (status, reason) = match (record_state, &e.desired, files) {
        (Some(SyncState::Pending | SyncState::Syncing), _, _) => ("SYNCING", None),
        (Some(SyncState::OutOfSync), _, _) => (
            "OUT_OF_SYNC",
            e.record.as_ref().and_then(|r| r.reason.clone()),
        ),
        (_, Err(reason), _) => ("OUT_OF_SYNC", Some(reason.clone())),
        (_, _, Err(reason)) => (
            "UNKNOWN",
            Some(format!("the repository cannot be read: {reason}")),
        ),
        (_, Ok(desired), Ok(files)) => match difference(desired, &e.ledger, files) {
            Some(why) => ("OUT_OF_SYNC", Some(why)),
            None => ("SYNCED", None),
        },
    };
    let mut paths: Vec<String> = match &e.desired {
        Ok(d) => d.iter().map(|f| f.path.clone()).collect(),
        Err(_) => Vec::new(),
    };
    if paths.is_empty() {
        paths = e.ledger.iter().map(|f| f.path.clone()).collect();
    }
    SyncView {
        integration: e.name,
        status: status.to_owned(),
        reason,
        commit: e.record.as_ref().and_then(|r| r.commit_id.clone()),
        attempts: e.record.as_ref().map_or(0, |r| r.attempts),
        next_attempt_at: e
            .record
            .as_ref()
            .filter(|r| r.state == SyncState::OutOfSync)
            .map(|r| crate::routes::timestamp(r.next_attempt_at)),
        files: paths,
    }
}

/// The first way the branch head differs from what Berth would write, in words.
fn difference(
    desired: &[DesiredFile],
    ledger: &[WrittenFile],
    files: &BTreeMap<String, Option<String>>,
) -> Option<String> {
    for file in desired {
        let Some(current) = files.get(&file.path).cloned().flatten() else {
            return Some(format!(
                "{} is missing from the repository (deleted or moved by hand)",
                file.path
            ));
        };
        if let Some(problem) = desired::yaml_problem(&current) {
            return Some(format!("{} is not valid YAML: {problem}", file.path));
        }
        if !file.sealed {
            if current != file.content {
                return Some(format!(
                    "{} differs from what Berth writes (edited by hand)",
                    file.path
                ));
            }
            continue;
        }
        match ledger.iter().find(|f| f.path == file.path) {
            Some(r) if r.sha256 != sha256_hex(&current) => {
                return Some(format!(
                    "{} was changed since Berth sealed it (sealed, differs)",
                    file.path
                ));
            }
            Some(r) if r.tag == file.tag => {}
            _ => {
                return Some(format!(
                    "{} is sealed for another revision or certificate (sealed, differs)",
                    file.path
                ));
            }
        }
    }
    let wanted: BTreeSet<&str> = desired.iter().map(|f| f.path.as_str()).collect();
    ledger
        .iter()
        .filter(|f| !wanted.contains(f.path.as_str()))
        .find(|f| files.get(&f.path).is_some_and(Option::is_some))
        .map(|f| format!("{} should have been removed", f.path))
}

/// The repository's difference from what Berth would write, as a unified diff of the YAML;
/// sealed files only as "sealed, differs" (their bytes say nothing a person can read).
pub(crate) async fn sync_diff(
    sync: &GitOpsSync,
    settings: &GitOpsSettings,
) -> Result<String, String> {
    let entries = entries(sync, settings).await.map_err(|e| e.to_string())?;
    let mut pairs: Vec<(String, Option<DesiredFile>)> = Vec::new();
    let mut unrenderable = String::new();
    // The entries carry the whole ledger between them: no second read of it.
    let ledger: Vec<WrittenFile> = entries.iter().flat_map(|e| e.ledger.clone()).collect();
    for e in entries {
        let desired = match e.desired {
            Ok(d) => d,
            Err(reason) => {
                unrenderable.push_str(&format!("# {}: not rendered: {reason}\n", e.name));
                continue;
            }
        };
        let wanted: BTreeSet<String> = desired.iter().map(|f| f.path.clone()).collect();
        for f in e.ledger.into_iter().filter(|f| !wanted.contains(&f.path)) {
            pairs.push((f.path, None));
        }
        pairs.extend(desired.into_iter().map(|f| (f.path.clone(), Some(f))));
    }
    sync.at_head(settings, move |checkout| {
        let mut out = unrenderable;
        for (path, want) in pairs {
            let current = checkout.read(&path).ok().flatten();
            out.push_str(&file_diff(
                &path,
                current.as_deref(),
                want.as_ref(),
                &ledger,
            ));
        }
        out
    })
    .await
}

fn file_diff(
    path: &str,
    current: Option<&str>,
    want: Option<&DesiredFile>,
    ledger: &[WrittenFile],
) -> String {
    match (current, want) {
        (None, None) => String::new(),
        (Some(c), Some(w)) if w.sealed => {
            let same = ledger
                .iter()
                .any(|r| r.path == path && r.tag == w.tag && r.sha256 == sha256_hex(c));
            if same {
                String::new()
            } else {
                format!("--- a/{path}\n+++ b/{path}\n(sealed, differs)\n")
            }
        }
        (None, Some(w)) if w.sealed => format!("--- /dev/null\n+++ b/{path}\n(sealed, missing)\n"),
        (Some(c), None)
            if path.ends_with(".sealedsecret.yaml") || c.contains("kind: SealedSecret") =>
        {
            format!("--- a/{path}\n+++ /dev/null\n(sealed, should be removed)\n")
        }
        (c, w) => unified(path, c.unwrap_or(""), w.map_or("", |w| w.content.as_str())),
    }
}

/// `git diff --no-index` of two texts, labelled with the repository path.
fn unified(path: &str, current: &str, want: &str) -> String {
    if current == want {
        return String::new();
    }
    let dir = std::env::temp_dir().join(format!(
        "berth-gitops-diff-{}-{}",
        std::process::id(),
        sha256_hex(path)
    ));
    let (a, b) = (dir.join("a"), dir.join("b"));
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&a, current))
        .and_then(|()| std::fs::write(&b, want));
    if let Err(e) = written {
        return format!("--- a/{path}\n+++ b/{path}\n(cannot compare: {e})\n");
    }
    let out = std::process::Command::new("git")
        .current_dir(&dir)
        .args([
            "diff",
            "--no-index",
            "--no-color",
            "--src-prefix=",
            "--dst-prefix=",
            "a",
            "b",
        ])
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let text = match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => return format!("--- a/{path}\n+++ b/{path}\n(cannot run git diff: {e})\n"),
    };
    // git names the temporary files; the reader wants the repository's path.
    text.lines()
        .filter(|l| !l.starts_with("diff --git") && !l.starts_with("index "))
        .map(|l| match l {
            "--- a" => format!("--- a/{path}\n"),
            "+++ b" => format!("+++ b/{path}\n"),
            other => format!("{other}\n"),
        })
        .collect()
}
