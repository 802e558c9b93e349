//! OCI image layouts (`oci:DIR[:TAG]`, the format skopeo and umoci read and write): `oci-layout`,
//! `index.json` naming tagged manifests, and content-addressed `blobs/sha256/…`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::digest::digest_hex;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, Manifest};
use crate::progress::{Event, SharedProgress, counted};
use crate::registry::RetryPolicy;
use crate::transport::{BlobStream, Destination, Source};
use crate::verify::{self, SharedVerifier};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub struct OciLayout {
    pub dir: PathBuf,
    pub tag: Option<String>,
    /// The root manifest and tag written by this transfer, put in `index.json` on commit.
    written: Mutex<Option<(Descriptor, String)>>,
}

impl OciLayout {
    pub fn new(dir: impl Into<PathBuf>, tag: Option<String>) -> OciLayout {
        OciLayout {
            dir: dir.into(),
            tag,
            written: Mutex::new(None),
        }
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.dir.join("blobs/sha256").join(digest_hex(digest)?))
    }

    fn index(&self) -> Result<Value> {
        let path = self.dir.join("index.json");
        let text = std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Format(format!(
                    "{} is not an OCI image layout: it has no index.json",
                    self.dir.display()
                ))
            } else {
                Error::io(&path, e)
            }
        })?;
        let v: Value = serde_json::from_slice(&text)
            .map_err(|e| Error::Format(format!("{}: not valid JSON: {e}", path.display())))?;
        if !v["manifests"].is_array() {
            return Err(Error::Format(format!(
                "{}: has no 'manifests' list",
                path.display()
            )));
        }
        Ok(v)
    }

    async fn read_manifest(&self, d: &Descriptor) -> Result<Manifest> {
        let path = self.blob_path(&d.digest)?;
        let bytes = tokio::fs::read(&path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound(format!(
                    "manifest {} is missing from OCI layout {}",
                    d.digest,
                    self.dir.display()
                ))
            } else {
                Error::io(&path, e)
            }
        })?;
        let declared = (!d.media_type.is_empty()).then_some(d.media_type.as_str());
        let m = Manifest::parse(Bytes::from(bytes), declared)
            .map_err(|e| Error::Format(format!("{} in {}: {e}", d.digest, self.dir.display())))?;
        if m.digest != d.digest {
            return Err(Error::Integrity(format!(
                "manifest {} in OCI layout {} does not match its content (it hashes to {})",
                d.digest,
                self.dir.display(),
                m.digest
            )));
        }
        Ok(m)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    berth_files::write_atomically(path, bytes, berth_files::Access::Shared)
        .map_err(|e| Error::io(path, e))
}

#[async_trait]
impl Source for OciLayout {
    fn name(&self) -> String {
        match &self.tag {
            Some(t) => format!("oci:{}:{t}", self.dir.display()),
            None => format!("oci:{}", self.dir.display()),
        }
    }

    async fn root(&self) -> Result<Manifest> {
        let index = self.index()?;
        let entries = index["manifests"].as_array().cloned().unwrap_or_default();
        let name_of = |e: &Value| e["annotations"][REF_NAME].as_str().map(str::to_owned);
        let chosen = match &self.tag {
            Some(tag) => entries
                .iter()
                .find(|e| name_of(e).as_deref() == Some(tag.as_str())),
            None if entries.len() == 1 => entries.first(),
            None => entries
                .iter()
                .find(|e| name_of(e).as_deref() == Some("latest")),
        };
        let Some(entry) = chosen else {
            let names: Vec<String> = entries.iter().filter_map(name_of).collect();
            let wanted = self.tag.as_deref().unwrap_or("latest");
            return Err(Error::NotFound(format!(
                "tag '{wanted}' not found in OCI layout {} (it has: {})",
                self.dir.display(),
                if names.is_empty() {
                    "no tags".into()
                } else {
                    names.join(", ")
                }
            )));
        };
        let d: Descriptor = serde_json::from_value(entry.clone()).map_err(|e| {
            Error::Format(format!(
                "{}/index.json: bad descriptor: {e}",
                self.dir.display()
            ))
        })?;
        self.read_manifest(&d).await
    }

    async fn manifest(&self, d: &Descriptor) -> Result<Manifest> {
        self.read_manifest(d).await
    }

    async fn blob(&self, d: &Descriptor, offset: u64) -> Result<BlobStream> {
        let path = self.blob_path(&d.digest)?;
        file_stream(&path, offset, None).await.map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Error::NotFound(format!(
                    "blob {} is missing from OCI layout {}",
                    d.digest,
                    self.dir.display()
                ))
            }
            other => other,
        })
    }
}

/// A file's bytes from `offset` on (`len` of them, or to the end), in 256 KiB reads.
pub(crate) async fn file_stream(path: &Path, offset: u64, len: Option<u64>) -> Result<BlobStream> {
    use tokio::io::AsyncReadExt;
    let path = path.to_owned();
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Error::io(&path, e))?;
    if offset > 0 {
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| Error::io(&path, e))?;
    }
    let stream =
        tokio_util::io::ReaderStream::with_capacity(file.take(len.unwrap_or(u64::MAX)), 256 * 1024)
            .map(move |r| r.map_err(|e| Error::io(&path, e)));
    Ok(Box::pin(stream))
}

#[async_trait]
impl Destination for OciLayout {
    fn name(&self) -> String {
        Source::name(self)
    }

    async fn has_blob(&self, d: &Descriptor) -> Result<bool> {
        let path = self.blob_path(&d.digest)?;
        Ok(tokio::fs::metadata(&path)
            .await
            .is_ok_and(|m| m.len() == d.size))
    }

    async fn put_blob(
        &self,
        d: &Descriptor,
        source: &dyn Source,
        progress: &SharedProgress,
    ) -> Result<u64> {
        let dir = self.dir.join("blobs/sha256");
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| Error::io(&dir, e))?;
        let path = self.blob_path(&d.digest)?;
        let partial = dir.join(format!(
            ".{}.{}.partial",
            digest_hex(&d.digest)?,
            std::process::id()
        ));
        let result = write_blob(&partial, d, source, progress).await;
        match result {
            Ok(read) => {
                tokio::fs::rename(&partial, &path)
                    .await
                    .map_err(|e| Error::io(&path, e))?;
                Ok(read)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                Err(e)
            }
        }
    }

    async fn put_manifest(&self, m: &Manifest, tag: Option<&str>) -> Result<()> {
        let dir = self.dir.join("blobs/sha256");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        write_atomically(&self.blob_path(&m.digest)?, &m.bytes)?;
        if let Some(tag) = tag {
            *self.written.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((m.descriptor(), tag.to_owned()));
        }
        Ok(())
    }

    async fn commit(&self, root: &Manifest) -> Result<()> {
        let (descriptor, tag) = self
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| {
                (
                    root.descriptor(),
                    self.tag.clone().unwrap_or_else(|| "latest".into()),
                )
            });
        let mut index = match self.index() {
            Ok(v) => v,
            Err(Error::Format(_)) if !self.dir.join("index.json").exists() => {
                json!({"schemaVersion": 2, "manifests": []})
            }
            Err(e) => return Err(e),
        };
        let mut entry = serde_json::to_value(&descriptor).unwrap_or_default();
        entry["annotations"] = json!({ REF_NAME: tag });
        let manifests = index["manifests"]
            .as_array_mut()
            .expect("checked by index()");
        manifests.retain(|e| e["annotations"][REF_NAME].as_str() != Some(tag.as_str()));
        manifests.push(entry);
        if index.get("mediaType").is_none() {
            index["mediaType"] = json!(crate::manifest::OCI_INDEX);
        }
        write_atomically(
            &self.dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        write_atomically(
            &self.dir.join("index.json"),
            serde_json::to_string(&index).unwrap_or_default().as_bytes(),
        )
    }
}

/// Streams a blob into `partial`, resuming with a ranged read when the source breaks off.
async fn write_blob(
    partial: &Path,
    d: &Descriptor,
    source: &dyn Source,
    progress: &SharedProgress,
) -> Result<u64> {
    let file = tokio::fs::File::create(partial)
        .await
        .map_err(|e| Error::io(partial, e))?;
    let mut out = tokio::io::BufWriter::with_capacity(1024 * 1024, file);
    let verifier = SharedVerifier::new(d);
    let mut written = 0u64;
    let mut attempt = 0u32;
    let mut read = 0u64;
    loop {
        let mut stream = counted(
            verify::open(source, d, written, &verifier).await?,
            progress,
            &d.digest,
        );
        let mut failure = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(b) => {
                    out.write_all(&b).await.map_err(|e| Error::io(partial, e))?;
                    written += b.len() as u64;
                    read += b.len() as u64;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        match failure {
            None => {
                verifier.finish()?;
                out.flush().await.map_err(|e| Error::io(partial, e))?;
                return Ok(read);
            }
            Some(e) => {
                verifier
                    .retry_or_fail(
                        e,
                        &mut attempt,
                        &RetryPolicy::default(),
                        progress,
                        &d.digest,
                    )
                    .await?;
                progress.event(Event::BlobRestarted {
                    digest: d.digest.clone(),
                    offset: written,
                });
            }
        }
    }
}
