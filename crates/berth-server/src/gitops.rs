//! GitOps sync: the shared configuration repository follows the database. An API change to an
//! integration shared with runtimes queues a sync in the store (by name, with its commit
//! message); a worker renders what the repository should hold for the queued names, commits the
//! difference in one commit and pushes it, then records the files it pushed (the ledger). A push
//! that fails leaves the integrations `OUT_OF_SYNC` with the reason, retried with backoff. At
//! start the worker compares every integration with the ledger, so a change that reached the
//! database but not the repository (a crash in between) is found and pushed.
//!
//! Status is read from the branch head: a ConfigMap must hold exactly what Berth would write; a
//! SealedSecret (randomized, opened only by the cluster) must be the bytes Berth last pushed and
//! have been made from the current revision and certificate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_core::{Integration, Name, SecretField};
use berth_gitops::desired::{self, DesiredFile, Placement, RuntimePlace};
use berth_gitops::repo::{Author, Change, Checkout, RepoAddress, RepoCredentials};
use berth_gitops::seal::SealingKey;
use berth_store::{GitOpsSettings, Store, StoreError, SyncRecord, WrittenFile};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

mod status;

pub(crate) use status::{sync_diff, sync_status};

/// How often due retries are looked for when nothing wakes the worker.
const POLL: Duration = Duration::from_secs(2);
/// A push still `SYNCING` after this long belongs to a replica that died: another takes it.
const STALE_PUSH: Duration = Duration::from_secs(600);
/// Backoff of failed pushes: 5 s, doubling, at most 5 minutes.
const FIRST_RETRY: i64 = 5;
const LAST_RETRY: i64 = 300;

/// The repository side of one replica.
pub struct GitOpsSync {
    store: Arc<dyn Store>,
    /// The checkout lives under here (`<data dir>/gitops`).
    dir: PathBuf,
    /// The checkout, kept open between pushes, for the settings (repository, credentials,
    /// version) it was opened with; its lock makes one git operation at a time.
    checkout: Arc<std::sync::Mutex<Option<(String, Checkout)>>>,
    wake: tokio::sync::Notify,
}

/// What a sync of some integrations found to do and did.
struct Pushed {
    commit: Option<String>,
    files: Vec<WrittenFile>,
}

/// The desired files of the integrations being synced, by name key.
type DesiredByName = BTreeMap<String, Vec<DesiredFile>>;

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn credentials(settings: &GitOpsSettings) -> Option<RepoCredentials> {
    settings.password.as_ref().map(|p| RepoCredentials {
        username: settings.username.clone().unwrap_or_else(|| "berth".into()),
        password: p.expose_secret().into(),
    })
}

fn retry_after(attempts: i64) -> OffsetDateTime {
    let seconds = (FIRST_RETRY << attempts.clamp(0, 10)).min(LAST_RETRY);
    OffsetDateTime::now_utc() + Duration::from_secs(seconds as u64)
}

impl GitOpsSync {
    pub fn new(store: Arc<dyn Store>, data_dir: &std::path::Path) -> Arc<GitOpsSync> {
        Arc::new(GitOpsSync {
            store,
            dir: data_dir.join("gitops"),
            checkout: Arc::default(),
            wake: tokio::sync::Notify::new(),
        })
    }

    /// Queues a sync of `names` with `message` when a repository is configured, and wakes the
    /// worker. A failure here is logged, not returned: the database change stands, and the next
    /// start's comparison with the ledger finds it.
    pub async fn queue(&self, names: &[&Name], message: String) {
        match self.store.gitops_settings().await {
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the GitOps settings; the change is synced at the next start");
                return;
            }
        }
        let keyed: Vec<(String, String)> = names.iter().map(|n| (n.key(), n.to_string())).collect();
        if let Err(e) = self.store.queue_sync(&keyed, &message).await {
            tracing::warn!(error = %e, "cannot queue a GitOps sync; it is found at the next start");
        }
        self.wake.notify_one();
    }

    /// Runs until the task is aborted: recovery first, then every due sync.
    pub async fn run(self: Arc<Self>) {
        if let Err(e) = self.recover().await {
            tracing::warn!(error = %e, "GitOps recovery could not compare the database with the ledger");
        }
        loop {
            if let Err(e) = self.sync_due().await {
                tracing::warn!(error = %e, "GitOps sync pass failed");
            }
            let _ = tokio::time::timeout(POLL, self.wake.notified()).await;
        }
    }

    /// Queues every integration whose rendering differs from what the ledger says was pushed,
    /// and every name the ledger holds files for that no longer exists.
    async fn recover(&self) -> Result<(), StoreError> {
        let Some(settings) = self.store.gitops_settings().await? else {
            return Ok(());
        };
        let placement = self.placement(&settings).await?;
        let ledger = self.store.written_files().await?;
        let mut stale: BTreeMap<String, String> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for integration in self.all_integrations().await? {
            let key = integration.name.key();
            seen.insert(key.clone());
            let want: BTreeSet<(String, String)> = match self.render(&integration, &placement).await
            {
                Ok(files) => files.into_iter().map(|f| (f.path, f.tag)).collect(),
                Err(_) => BTreeSet::new(),
            };
            let have: BTreeSet<(String, String)> = ledger
                .iter()
                .filter(|f| f.name_key == key)
                .map(|f| (f.path.clone(), f.tag.clone()))
                .collect();
            if want != have {
                stale.insert(key, integration.name.to_string());
            }
        }
        for f in &ledger {
            if !seen.contains(&f.name_key) {
                stale.insert(f.name_key.clone(), f.name_key.clone());
            }
        }
        if stale.is_empty() {
            return Ok(());
        }
        tracing::info!(
            count = stale.len(),
            "GitOps: changes that never reached the repository, queued again"
        );
        let names: Vec<(String, String)> = stale.into_iter().collect();
        self.store
            .queue_sync(
                &names,
                "berth: sync integrations the repository missed (recovered at start)",
            )
            .await
    }

    async fn all_integrations(&self) -> Result<Vec<Integration>, StoreError> {
        let mut all = Vec::new();
        let mut query = berth_store::IntegrationQuery {
            limit: 1000,
            ..Default::default()
        };
        loop {
            let page = self.store.list_integrations(&query).await?;
            let done = page.next_after.is_none();
            all.extend(page.items);
            if done {
                return Ok(all);
            }
            query.after = page.next_after;
        }
    }

    async fn placement(&self, settings: &GitOpsSettings) -> Result<Placement, StoreError> {
        let runtimes = self.store.list_runtimes().await?;
        Ok(Placement {
            all_runtimes_namespace: settings.namespace.clone(),
            account_key: settings
                .account_cert
                .as_deref()
                .and_then(|pem| SealingKey::from_pem(pem).ok()),
            runtimes: runtimes
                .into_iter()
                .map(|r| RuntimePlace {
                    name: r.name.to_string(),
                    namespace: r
                        .namespace
                        .clone()
                        .unwrap_or_else(|| settings.namespace.clone()),
                    key: r
                        .sealing_cert
                        .as_deref()
                        .and_then(|pem| SealingKey::from_pem(pem).ok()),
                })
                .collect(),
        })
    }

    /// The integration's files, with its secrets opened only to be sealed.
    async fn render(
        &self,
        integration: &Integration,
        placement: &Placement,
    ) -> Result<Vec<DesiredFile>, String> {
        if !desired::is_shared(&integration.runtimes) {
            return Ok(Vec::new());
        }
        let secrets = self
            .store
            .open_secrets(&integration.id)
            .await
            .map_err(|e| e.to_string())?;
        let keys = match (
            secrets.get(&SecretField::AwsAccessKeyId),
            secrets.get(&SecretField::AwsSecretAccessKey),
        ) {
            (Some(id), Some(secret)) => Some((id.expose_secret(), secret.expose_secret())),
            _ => None,
        };
        let values = desired::secret_values(integration, keys);
        desired::render(integration, &values, placement).map_err(|e| e.to_string())
    }

    /// One pass: every due record, in one commit.
    async fn sync_due(&self) -> Result<(), StoreError> {
        let Some(settings) = self.store.gitops_settings().await? else {
            return Ok(());
        };
        let now = OffsetDateTime::now_utc();
        let due = self.store.claim_syncs(now, now - STALE_PUSH).await?;
        if due.is_empty() {
            return Ok(());
        }
        let placement = self.placement(&settings).await?;
        let mut wanted = DesiredByName::new();
        let mut ready = Vec::new();
        for record in due {
            match self.desired_for(&record, &placement).await {
                Ok(files) => {
                    wanted.insert(record.name_key.clone(), files);
                    ready.push(record);
                }
                Err(reason) => {
                    let retry = retry_after(record.attempts);
                    self.store
                        .fail_sync(std::slice::from_ref(&record.name_key), &reason, retry)
                        .await?;
                }
            }
        }
        if ready.is_empty() {
            return Ok(());
        }
        let ledger = self.store.written_files().await?;
        match self.push(&settings, &ready, wanted, ledger).await {
            Ok(pushed) => {
                self.store
                    .finish_sync(&ready, &pushed.files, pushed.commit.as_deref())
                    .await?;
                tracing::info!(integrations = ready.len(), commit = ?pushed.commit, "GitOps: pushed");
            }
            Err(reason) => {
                tracing::warn!(%reason, "GitOps push failed; retried later");
                let keys: Vec<String> = ready.iter().map(|r| r.name_key.clone()).collect();
                let attempts = ready.iter().map(|r| r.attempts).max().unwrap_or(0);
                self.store
                    .fail_sync(&keys, &reason, retry_after(attempts))
                    .await?;
            }
        }
        Ok(())
    }

    /// The files a record's integration should have: none once it is deleted.
    async fn desired_for(
        &self,
        record: &SyncRecord,
        placement: &Placement,
    ) -> Result<Vec<DesiredFile>, String> {
        match self.store.get_integration(&record.name).await {
            Ok(integration) => self.render(&integration, placement).await,
            Err(StoreError::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Commits what differs between the checkout and `wanted` for these records, and pushes.
    async fn push(
        &self,
        settings: &GitOpsSettings,
        records: &[SyncRecord],
        wanted: DesiredByName,
        ledger: Vec<WrittenFile>,
    ) -> Result<Pushed, String> {
        let message = commit_message(records);
        self.with_checkout(settings, move |checkout| {
            // Planned on the branch head: an outside edit since Berth's last push is seen.
            checkout.update().map_err(|e| e.to_string())?;
            let (changes, files) = plan(checkout, &wanted, &ledger)?;
            if changes.is_empty() {
                return Ok(Pushed {
                    commit: None,
                    files,
                });
            }
            let author = Author {
                name: "Berth".into(),
                email: "berth@localhost".into(),
            };
            let commit = checkout
                .commit(None, &changes, &message, &author)
                .map_err(|e| e.to_string())?;
            Ok(Pushed { commit, files })
        })
        .await
    }

    /// Runs `work` on a blocking thread (git runs as child processes) with the checkout of
    /// `settings`' repository, opening it when there is none yet or the settings changed.
    async fn with_checkout<T: Send + 'static>(
        &self,
        settings: &GitOpsSettings,
        work: impl FnOnce(&Checkout) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let address = RepoAddress::parse(&settings.repo).map_err(|e| e.to_string())?;
        let creds = credentials(settings);
        let key = format!(
            "{}|{:?}|{}",
            settings.repo, settings.username, settings.version
        );
        // One directory per repository: a new address never reuses another's clone.
        let dir = self.dir.join(&sha256_hex(&settings.repo)[..16]);
        let cache = self.checkout.clone();
        tokio::task::spawn_blocking(move || {
            let mut held = cache.lock().unwrap_or_else(|p| p.into_inner());
            if held.as_ref().is_none_or(|(k, _)| *k != key) {
                *held = None;
                let opened = Checkout::open(&dir, address, creds).map_err(|e| e.to_string())?;
                *held = Some((key, opened));
            }
            let (_, checkout) = held.as_ref().expect("opened above");
            work(checkout)
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// The changes that bring the checkout to `wanted`, and the ledger entries afterwards.
fn plan(
    checkout: &Checkout,
    wanted: &DesiredByName,
    ledger: &[WrittenFile],
) -> Result<(Vec<Change>, Vec<WrittenFile>), String> {
    let mut changes = Vec::new();
    let mut files = Vec::new();
    for (key, desired) in wanted {
        let paths: BTreeSet<&str> = desired.iter().map(|f| f.path.as_str()).collect();
        for old in ledger
            .iter()
            .filter(|f| &f.name_key == key && !paths.contains(f.path.as_str()))
        {
            // Only what is still there: an empty change list means nothing to commit.
            if checkout
                .read(&old.path)
                .map_err(|e| e.to_string())?
                .is_some()
            {
                changes.push(Change::Remove {
                    path: old.path.clone(),
                });
            }
        }
        for file in desired {
            let current = checkout.read(&file.path).map_err(|e| e.to_string())?;
            let recorded = ledger.iter().find(|f| f.path == file.path);
            let content = match (&current, file.sealed) {
                // A sealed file made from the same revision and certificate, unchanged since
                // Berth pushed it, is kept: re-sealing would change its bytes for nothing.
                (Some(c), true)
                    if recorded.is_some_and(|r| r.tag == file.tag && r.sha256 == sha256_hex(c)) =>
                {
                    c.clone()
                }
                (Some(c), false) if *c == file.content => c.clone(),
                _ => {
                    changes.push(Change::Write {
                        path: file.path.clone(),
                        content: file.content.clone(),
                    });
                    file.content.clone()
                }
            };
            files.push(WrittenFile {
                path: file.path.clone(),
                name_key: key.clone(),
                sha256: sha256_hex(&content),
                tag: file.tag.clone(),
            });
        }
    }
    Ok((changes, files))
}

/// Whether the integration has anything its SealedSecret would hold.
fn holds_secrets(i: &Integration) -> bool {
    let berth_core::IntegrationConfig::Ecr(ecr) = &i.config;
    !i.secrets_set.is_empty()
        || matches!(
            &ecr.auth,
            berth_core::AwsAuth::AssumeRole {
                external_id: Some(_),
                ..
            }
        )
}

fn commit_message(records: &[SyncRecord]) -> String {
    match records {
        [one] => one.message.clone(),
        [first, rest @ ..] if rest.iter().all(|r| r.message == first.message) => {
            let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
            format!("{}\n\n{}", first.message, names.join("\n"))
        }
        many => {
            let names: Vec<&str> = many.iter().map(|r| r.name.as_str()).collect();
            let mut text = format!(
                "berth: sync {} integrations ({})\n",
                many.len(),
                names.join(", ")
            );
            for r in many {
                text.push_str(&format!("\n- {}", r.message));
            }
            text
        }
    }
}

impl GitOpsSync {
    /// Queues every integration with files (or that should have them) with one message: the
    /// next push rewrites the repository from Berth in one commit. Returns how many.
    pub(crate) async fn reconcile(&self) -> Result<usize, StoreError> {
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        for i in self.all_integrations().await? {
            if desired::is_shared(&i.runtimes) {
                names.insert(i.name.key(), i.name.to_string());
            }
        }
        for f in self.store.written_files().await? {
            names.entry(f.name_key.clone()).or_insert(f.name_key);
        }
        let names: Vec<(String, String)> = names.into_iter().collect();
        if !names.is_empty() {
            let message = format!("berth: reconcile {} integrations from Berth", names.len());
            self.store.queue_sync(&names, &message).await?;
            self.wake.notify_one();
        }
        Ok(names.len())
    }

    /// Queues the integrations whose SealedSecrets a new certificate invalidates: those shared
    /// with `runtime` by selection, or (with `None`) those shared with All runtimes. Returns how
    /// many, so the caller can say so.
    pub(crate) async fn reseal(
        &self,
        runtime: Option<&Name>,
        fingerprint: &str,
    ) -> Result<usize, StoreError> {
        let whom = runtime.map_or("all runtimes".to_owned(), |r| format!("runtime {r}"));
        self.requeue(runtime, true, |n| {
            format!("berth: re-seal {n} integrations for {whom} (certificate {fingerprint})")
        })
        .await
    }

    /// Queues every integration of `runtime` (its files move to the new namespace, and their
    /// SealedSecrets are sealed for it). Returns how many.
    pub(crate) async fn move_namespace(
        &self,
        runtime: &Name,
        namespace: &str,
    ) -> Result<usize, StoreError> {
        self.requeue(Some(runtime), false, |n| {
            format!("berth: move {n} integrations of runtime {runtime} to namespace {namespace}")
        })
        .await
    }

    /// Queues the integrations shared with `runtime` by selection (or, with `None`, with All
    /// runtimes), only those holding secrets when `only_secrets`, under one message.
    async fn requeue(
        &self,
        runtime: Option<&Name>,
        only_secrets: bool,
        message: impl FnOnce(usize) -> String,
    ) -> Result<usize, StoreError> {
        let mut names = Vec::new();
        for i in self.all_integrations().await? {
            let hit = match (&i.runtimes, runtime) {
                (berth_core::RuntimeScope::All, None) => true,
                (berth_core::RuntimeScope::Selected(rs), Some(r)) => {
                    rs.iter().any(|n| n.key() == r.key())
                }
                _ => false,
            };
            if hit && (!only_secrets || holds_secrets(&i)) {
                names.push((i.name.key(), i.name.to_string()));
            }
        }
        if names.is_empty() {
            return Ok(0);
        }
        self.store.queue_sync(&names, &message(names.len())).await?;
        self.wake.notify_one();
        Ok(names.len())
    }

    /// Reads the branch head into the checkout and hands it to `read`.
    pub(crate) async fn at_head<T: Send + 'static>(
        &self,
        settings: &GitOpsSettings,
        read: impl FnOnce(&Checkout) -> T + Send + 'static,
    ) -> Result<T, String> {
        self.with_checkout(settings, move |checkout| {
            checkout.refresh().map_err(|e| e.to_string())?;
            Ok(read(checkout))
        })
        .await
    }
}
