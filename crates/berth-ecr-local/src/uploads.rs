//! Blob uploads in progress: the running hash and offset in memory, the bytes in a staging file
//! (mode 0600) that is open only while a request is writing to it. No thread and no file handle
//! is held between requests, so idle sessions cost a few hundred bytes; they expire after an
//! idle time (their files removed), and each principal may hold a bounded number at once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use crate::ids;
use crate::storage::StorageError;

/// ECR's minimum size of every upload part but the last.
pub const PART_MIN: u64 = 5 * 1024 * 1024;

/// Bytes handed to the file at once: one write per MiB, not per network frame.
const BATCH: usize = 1024 * 1024;
/// How often a long upload's bytes are made durable while it streams (not only at the end).
const SYNC_EVERY: u64 = 64 * 1024 * 1024;

/// Limits on upload sessions.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    /// A session nobody wrote to for this long is dropped with its bytes.
    pub idle: Duration,
    /// Sessions one principal may hold open at once.
    pub per_principal: usize,
    /// Every chunk but the last must be at least this long: ECR's 5 MiB by default
    /// ([`PART_MIN`]); 0 lifts the rule, for development.
    pub min_part: u64,
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits {
            idle: Duration::from_secs(15 * 60),
            per_principal: 1000,
            min_part: PART_MIN,
        }
    }
}

struct Upload {
    repo_id: i64,
    path: PathBuf,
    offset: u64,
    hasher: Sha256,
    /// Bytes the previous request added, for ECR's rule that only the last part may be small.
    last_part: u64,
    unsynced: u64,
}

struct Entry {
    owner: String,
    last_used: std::sync::Mutex<Instant>,
    upload: Arc<Mutex<Upload>>,
}

impl Entry {
    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }
}

/// A finished upload: its staging file (synced), its digest and size.
pub struct Finished {
    pub path: PathBuf,
    pub digest: String,
    pub size: u64,
}

pub struct Uploads {
    dir: PathBuf,
    limits: UploadLimits,
    sessions: std::sync::Mutex<HashMap<String, Arc<Entry>>>,
}

/// A full disk is its own error: the client is told so, and the partial upload is gone at once.
fn io_error(dir: &Path, e: std::io::Error) -> StorageError {
    if e.kind() == std::io::ErrorKind::StorageFull {
        StorageError::DiskFull {
            dir: dir.display().to_string(),
        }
    } else {
        StorageError::Io(e)
    }
}

impl Uploads {
    /// Staging files live in `dir`; leftovers of an earlier run are removed (their hashes lived
    /// in memory).
    /// The smallest chunk but the last that an upload accepts.
    pub fn min_part(&self) -> u64 {
        self.limits.min_part
    }

    pub fn open(dir: PathBuf, limits: UploadLimits) -> std::io::Result<Uploads> {
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&dir)? {
            let _ = std::fs::remove_file(entry?.path());
        }
        Ok(Uploads {
            dir,
            limits,
            sessions: Default::default(),
        })
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Entry>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn idle(&self) -> Duration {
        self.limits.idle
    }

    /// How many sessions are open (for tests and metrics).
    pub fn open_count(&self) -> usize {
        self.sessions().len()
    }

    pub async fn start(&self, repo_id: i64, owner: &str) -> Result<String, StorageError> {
        let id = ids::request_id();
        let path = self.dir.join(&id);
        let upload = Upload {
            repo_id,
            path: path.clone(),
            offset: 0,
            hasher: Sha256::new(),
            last_part: 0,
            unsynced: 0,
        };
        let entry = Entry {
            owner: owner.to_owned(),
            last_used: std::sync::Mutex::new(Instant::now()),
            upload: Arc::new(Mutex::new(upload)),
        };
        // Counted and taken under one lock, so concurrent starts cannot pass the cap together.
        {
            let mut sessions = self.sessions();
            let held = sessions.values().filter(|e| e.owner == owner).count();
            if held >= self.limits.per_principal {
                return Err(StorageError::TooManyUploads {
                    limit: self.limits.per_principal,
                });
            }
            sessions.insert(id.clone(), Arc::new(entry));
        }
        if let Err(e) = create_private(&path).await {
            self.sessions().remove(&id);
            return Err(io_error(&self.dir, e));
        }
        Ok(id)
    }

    async fn entry(&self, repo_id: i64, id: &str) -> Result<Arc<Entry>, StorageError> {
        let entry = self
            .sessions()
            .get(id)
            .cloned()
            .ok_or(StorageError::UploadNotFound)?;
        if entry.upload.lock().await.repo_id != repo_id {
            return Err(StorageError::UploadNotFound);
        }
        entry.touch();
        Ok(entry)
    }

    pub async fn offset(&self, repo_id: i64, id: &str) -> Result<u64, StorageError> {
        Ok(self.entry(repo_id, id).await?.upload.lock().await.offset)
    }

    /// Appends a stream of bytes; `start` (from `Content-Range`) must equal the current offset.
    /// The file is opened for this request only. A client that goes away mid-stream keeps what
    /// arrived; a full disk discards the session and its file.
    pub async fn append<S, E>(
        &self,
        repo_id: i64,
        id: &str,
        start: Option<u64>,
        body: S,
    ) -> Result<u64, StorageError>
    where
        S: futures_util::Stream<Item = Result<axum::body::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let entry = self.entry(repo_id, id).await?;
        let mut u = entry.upload.lock().await;
        if let Some(asked) = start
            && asked != u.offset
        {
            return Err(StorageError::OutOfOrder {
                have: u.offset,
                asked,
            });
        }
        let result = self.write_stream(&mut u, body).await;
        entry.touch();
        if matches!(result, Err(StorageError::DiskFull { .. })) {
            let path = u.path.clone();
            drop(u);
            self.sessions().remove(id);
            let _ = tokio::fs::remove_file(path).await;
        }
        result
    }

    async fn write_stream<S, E>(&self, u: &mut Upload, mut body: S) -> Result<u64, StorageError>
    where
        S: futures_util::Stream<Item = Result<axum::body::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use futures_util::StreamExt;
        let io = |e| io_error(&self.dir, e);
        let mut file = tokio::fs::OpenOptions::new()
            .append(true)
            .open(&u.path)
            .await
            .map_err(io)?;
        let started_at = u.offset;
        let mut pending: Vec<u8> = Vec::with_capacity(BATCH);
        let mut failure = None;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    failure = Some(StorageError::Io(std::io::Error::other(e.to_string())));
                    break;
                }
            };
            if chunk.is_empty() {
                continue;
            }
            if u.offset == started_at && started_at > 0 && u.last_part < self.limits.min_part {
                return Err(StorageError::PartTooSmall {
                    previous: u.last_part,
                    min: self.limits.min_part,
                });
            }
            let mut rest: &[u8] = &chunk;
            while !rest.is_empty() {
                let take = (BATCH - pending.len()).min(rest.len());
                pending.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if pending.len() >= BATCH
                    && let Err(e) = write_batch(u, &mut file, &mut pending).await
                {
                    // Read (and drop) what the client is still sending, so that it hears why
                    // instead of a broken pipe.
                    drain(&mut body).await;
                    return Err(io(e));
                }
            }
        }
        // What arrived is kept even when the client went away: offset, hash and file agree.
        write_batch(u, &mut file, &mut pending).await.map_err(io)?;
        file.flush().await.map_err(io)?;
        if u.offset > started_at {
            u.last_part = u.offset - started_at;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(u.offset),
        }
    }

    pub async fn cancel(&self, repo_id: i64, id: &str) -> Result<(), StorageError> {
        let entry = self.entry(repo_id, id).await?;
        self.sessions().remove(id);
        let path = entry.upload.lock().await.path.clone();
        let _ = tokio::fs::remove_file(path).await;
        Ok(())
    }

    /// Ends the session: its bytes are synced to disk and handed over with their digest.
    pub async fn finish(&self, repo_id: i64, id: &str) -> Result<Finished, StorageError> {
        let entry = self.entry(repo_id, id).await?;
        self.sessions().remove(id);
        let u = entry.upload.lock().await;
        let file = tokio::fs::File::open(&u.path)
            .await
            .map_err(|e| io_error(&self.dir, e))?;
        file.sync_all().await.map_err(|e| io_error(&self.dir, e))?;
        Ok(Finished {
            path: u.path.clone(),
            digest: format!("sha256:{}", ids::hex(&u.hasher.clone().finalize())),
            size: u.offset,
        })
    }

    /// Drops sessions idle past the limit (not those a request is writing to) and their files.
    pub async fn reap(&self) {
        let idle = self.limits.idle;
        let expired: Vec<(String, Arc<Entry>)> = {
            let mut sessions = self.sessions();
            let ids: Vec<String> = sessions
                .iter()
                .filter(|(_, e)| e.idle_for() >= idle && e.upload.try_lock().is_ok())
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| sessions.remove(&id).map(|e| (id, e)))
                .collect()
        };
        for (id, entry) in expired {
            let path = entry.upload.lock().await.path.clone();
            let _ = tokio::fs::remove_file(path).await;
            tracing::debug!(upload = %id, "expired an idle upload session");
        }
    }
}

/// Reads and discards up to [`DRAIN_LIMIT`] more bytes of a body that will not be stored, so a
/// client still sending hears why it was refused instead of a broken pipe. Stops when the
/// client pauses for [`DRAIN_IDLE`].
pub(crate) async fn drain<S, E>(body: &mut S)
where
    S: futures_util::Stream<Item = Result<axum::body::Bytes, E>> + Unpin,
{
    use futures_util::StreamExt;
    let mut drained = 0usize;
    while drained < DRAIN_LIMIT {
        match tokio::time::timeout(DRAIN_IDLE, body.next()).await {
            Ok(Some(Ok(chunk))) => drained += chunk.len(),
            _ => break,
        }
    }
}

/// How much of a refused body is read before the connection is given up on.
const DRAIN_LIMIT: usize = 256 * 1024 * 1024;
/// How long a refused body's next piece is waited for.
const DRAIN_IDLE: Duration = Duration::from_secs(5);

async fn write_batch(
    u: &mut Upload,
    file: &mut tokio::fs::File,
    pending: &mut Vec<u8>,
) -> std::io::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    file.write_all(pending).await?;
    u.hasher.update(&pending[..]);
    u.offset += pending.len() as u64;
    u.unsynced += pending.len() as u64;
    pending.clear();
    if u.unsynced >= SYNC_EVERY {
        file.sync_data().await?;
        u.unsynced = 0;
    }
    Ok(())
}

async fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).await.map(drop)
}
