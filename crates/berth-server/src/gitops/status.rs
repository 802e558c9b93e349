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
    let store = sync.store();
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
    let placement = sync.placement_for(settings).await?;
    let mut entries = Vec::new();
    for integration in sync.integrations().await? {
        let key = integration.name.key();
        let shared = desired::is_shared(&integration.runtimes);
        if !shared && !ledger.contains_key(&key) && !records.contains_key(&key) {
            continue;
        }
        entries.push(Entry {
            name: integration.name.to_string(),
            desired: sync.desired_files(&integration, &placement).await,
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
