//! Where finished blobs live: the [`BlobStore`] trait and its filesystem implementation (the
//! default, `blobs/sha256/<hex>` under the data directory, served by the layer bucket or in line).
//! A store that serves downloads itself (S3-compatible object storage, `berth-s3`) gives a
//! pre-signed URL instead, and blob GETs redirect there, as ECR's go to S3. Uploads are staged
//! on local disk either way and handed over verified.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

/// Content-addressed storage of verified blobs.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Takes the verified upload at `staged` (`size` bytes) as blob `digest`; the staged file is
    /// moved or removed. Keeping a blob already kept is not an error.
    async fn keep(&self, digest: &str, staged: &Path, size: u64) -> io::Result<()>;
    /// A URL the blob is downloaded from without the registry's credentials, valid for `ttl`,
    /// when the store serves downloads itself; `None` when the local ECR serves them.
    async fn download_url(&self, digest: &str, ttl: Duration) -> io::Result<Option<String>>;
    /// Whether [`BlobStore::download_url`] gives URLs (so every blob GET redirects).
    fn serves_downloads(&self) -> bool;
    /// The local file holding the blob, for a store on this machine's disk.
    fn local_path(&self, digest: &str) -> Option<PathBuf>;
}

/// `sha256:<hex>` → `<hex>`, refusing anything that could leave the store's folder.
pub fn digest_hex(digest: &str) -> io::Result<&str> {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a sha256 digest: {digest}"),
        ))
    }
}

/// Blobs as files under `<root>/blobs/sha256/`.
pub struct FileBlobs {
    dir: PathBuf,
}

impl FileBlobs {
    pub fn open(root: &Path) -> io::Result<FileBlobs> {
        let dir = root.join("blobs/sha256");
        std::fs::create_dir_all(&dir)?;
        Ok(FileBlobs { dir })
    }
}

#[async_trait]
impl BlobStore for FileBlobs {
    async fn keep(&self, digest: &str, staged: &Path, _size: u64) -> io::Result<()> {
        let target = self.dir.join(digest_hex(digest)?);
        if tokio::fs::try_exists(&target).await? {
            return tokio::fs::remove_file(staged).await;
        }
        tokio::fs::rename(staged, &target).await?;
        // The rename is durable only once the directory is.
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    async fn download_url(&self, _: &str, _: Duration) -> io::Result<Option<String>> {
        Ok(None)
    }

    fn serves_downloads(&self) -> bool {
        false
    }

    fn local_path(&self, digest: &str) -> Option<PathBuf> {
        digest_hex(digest).ok().map(|hex| self.dir.join(hex))
    }
}
