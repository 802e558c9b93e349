//! Docker archives (`docker-archive:FILE[:REF]`, the `docker save` tarball): `manifest.json`
//! naming a config file and layer files. Reading indexes the tar once and streams entries from
//! their offsets; writing appends entries in one sequential stream and renames the file into
//! place on commit, so a failed transfer leaves no half archive behind.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, OnceCell};

use crate::digest::{digest_hex, hex};
use crate::error::{Error, Result};
use crate::manifest::{
    DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_LAYER_TAR, DOCKER_MANIFEST, Descriptor, Manifest,
};
use crate::progress::{SharedProgress, counted};
use crate::transport::{BlobStream, Destination, Source};
use crate::verify::{self, SharedVerifier};

/// Where each blob of the archive's image lives inside the tar.
struct Indexed {
    manifest: Manifest,
    blobs: HashMap<String, (u64, u64)>,
}

struct Writer {
    tmp: PathBuf,
    out: tokio::io::BufWriter<tokio::fs::File>,
    names: HashMap<String, String>,
    manifest: Option<Value>,
}

pub struct DockerArchive {
    pub file: PathBuf,
    pub reference: Option<String>,
    index: OnceCell<Indexed>,
    writer: Mutex<Option<Writer>>,
}

fn tar_header(name: &str, size: u64) -> Result<[u8; 512]> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name)
        .map_err(|e| Error::Format(format!("tar entry name {name}: {e}")))?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut out = [0u8; 512];
    out.copy_from_slice(h.as_bytes());
    Ok(out)
}

fn padding(size: u64) -> usize {
    ((512 - size % 512) % 512) as usize
}

impl DockerArchive {
    pub fn new(file: impl Into<PathBuf>, reference: Option<String>) -> DockerArchive {
        DockerArchive {
            file: file.into(),
            reference,
            index: OnceCell::new(),
            writer: Mutex::new(None),
        }
    }

    pub fn tag(&self) -> Option<String> {
        let r = berth_core::ImageRef::parse(self.reference.as_deref()?).ok()?;
        r.tag
    }

    fn entries(&self) -> Result<HashMap<String, (u64, u64)>> {
        let path = &self.file;
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let not_tar = |e: std::io::Error| {
            Error::Format(format!(
                "{} is not a tar archive ({e}); docker-archive: expects `docker save` output",
                path.display()
            ))
        };
        let mut archive = tar::Archive::new(file);
        let mut out = HashMap::new();
        for entry in archive.entries_with_seek().map_err(not_tar)? {
            let entry = entry.map_err(not_tar)?;
            let name = entry
                .path()
                .map_err(not_tar)?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_owned();
            out.insert(name, (entry.raw_file_position(), entry.size()));
        }
        if out.is_empty() {
            return Err(Error::Format(format!(
                "{} is not a tar archive (no entries); docker-archive: expects `docker save` output",
                path.display()
            )));
        }
        Ok(out)
    }

    fn read_entry(&self, (offset, size): (u64, u64)) -> Result<Vec<u8>> {
        let mut f = std::fs::File::open(&self.file).map_err(|e| Error::io(&self.file, e))?;
        f.seek(std::io::SeekFrom::Start(offset))
            .map_err(|e| Error::io(&self.file, e))?;
        let mut buf = Vec::with_capacity(size as usize);
        f.take(size)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(&self.file, e))?;
        Ok(buf)
    }

    /// Hashes one entry and sniffs its compression.
    fn describe_entry(&self, (offset, size): (u64, u64)) -> Result<(String, bool)> {
        let mut f = std::fs::File::open(&self.file).map_err(|e| Error::io(&self.file, e))?;
        f.seek(std::io::SeekFrom::Start(offset))
            .map_err(|e| Error::io(&self.file, e))?;
        let mut f = f.take(size);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut first = true;
        let mut gzip = false;
        loop {
            let n = f.read(&mut buf).map_err(|e| Error::io(&self.file, e))?;
            if n == 0 {
                break;
            }
            if first {
                gzip = buf[..n].starts_with(&[0x1f, 0x8b]);
                first = false;
            }
            hasher.update(&buf[..n]);
        }
        Ok((format!("sha256:{}", hex(&hasher.finalize())), gzip))
    }

    fn load(&self) -> Result<Indexed> {
        let entries = self.entries()?;
        let get = |name: &str| {
            entries.get(name).copied().ok_or_else(|| {
                Error::Format(format!(
                    "{}: the archive has no entry {name}",
                    self.file.display()
                ))
            })
        };
        let list: Value = serde_json::from_slice(&self.read_entry(get("manifest.json")?)?)
            .map_err(|e| Error::Format(format!("{}: manifest.json: {e}", self.file.display())))?;
        let images = list.as_array().cloned().unwrap_or_default();
        let chosen = match &self.reference {
            Some(r) => images.iter().find(|i| {
                i["RepoTags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|t| t.as_str() == Some(r.as_str()))
            }),
            None => images.first(),
        }
        .ok_or_else(|| {
            Error::NotFound(format!(
                "{} has no image {}",
                self.file.display(),
                self.reference.as_deref().unwrap_or("at all")
            ))
        })?;
        let config_name = chosen["Config"].as_str().unwrap_or_default();
        let config_bytes = self.read_entry(get(config_name)?)?;
        let config_digest = crate::digest::sha256_digest(&config_bytes);
        let mut blobs = HashMap::new();
        blobs.insert(config_digest.clone(), get(config_name)?);
        let mut layers = Vec::new();
        for name in chosen["Layers"].as_array().into_iter().flatten() {
            let place = get(name.as_str().unwrap_or_default())?;
            let (digest, gzip) = self.describe_entry(place)?;
            blobs.insert(digest.clone(), place);
            layers.push(json!({
                "mediaType": if gzip { DOCKER_LAYER_GZIP } else { DOCKER_LAYER_TAR },
                "size": place.1,
                "digest": digest,
            }));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "size": config_bytes.len(), "digest": config_digest},
            "layers": layers,
        });
        let bytes = Bytes::from(serde_json::to_vec(&manifest).unwrap_or_default());
        Ok(Indexed {
            manifest: Manifest::parse(bytes, Some(DOCKER_MANIFEST))?,
            blobs,
        })
    }

    async fn indexed(&self) -> Result<&Indexed> {
        self.index
            .get_or_try_init(|| async {
                let me = DockerArchive::new(self.file.clone(), self.reference.clone());
                tokio::task::spawn_blocking(move || me.load())
                    .await
                    .map_err(|e| Error::Format(format!("reading the archive failed: {e}")))?
            })
            .await
    }

    async fn writer<'a>(&self, guard: &'a mut Option<Writer>) -> Result<&'a mut Writer> {
        if guard.is_none() {
            let dir = self
                .file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            let tmp = dir.join(format!(
                ".{}.{}.partial",
                self.file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("archive"),
                std::process::id()
            ));
            let file = tokio::fs::File::create(&tmp)
                .await
                .map_err(|e| Error::io(&tmp, e))?;
            *guard = Some(Writer {
                tmp,
                out: tokio::io::BufWriter::with_capacity(1024 * 1024, file),
                names: HashMap::new(),
                manifest: None,
            });
        }
        Ok(guard.as_mut().expect("set above"))
    }

    async fn append(w: &mut Writer, name: &str, size: u64, mut body: BlobStream) -> Result<u64> {
        let tmp = w.tmp.clone();
        w.out
            .write_all(&tar_header(name, size)?)
            .await
            .map_err(|e| Error::io(&tmp, e))?;
        let mut n = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            n += chunk.len() as u64;
            w.out
                .write_all(&chunk)
                .await
                .map_err(|e| Error::io(&tmp, e))?;
        }
        w.out
            .write_all(&vec![0u8; padding(size)])
            .await
            .map_err(|e| Error::io(&tmp, e))?;
        Ok(n)
    }
}

#[async_trait]
impl Source for DockerArchive {
    fn name(&self) -> String {
        format!("docker-archive:{}", self.file.display())
    }

    async fn root(&self) -> Result<Manifest> {
        Ok(self.indexed().await?.manifest.clone())
    }

    async fn manifest(&self, d: &Descriptor) -> Result<Manifest> {
        Err(Error::NotFound(format!(
            "{} holds one image; it has no manifest {}",
            Source::name(self),
            d.digest
        )))
    }

    async fn blob(&self, d: &Descriptor, offset: u64) -> Result<BlobStream> {
        let (start, size) = *self.indexed().await?.blobs.get(&d.digest).ok_or_else(|| {
            Error::NotFound(format!(
                "blob {} is not in {}",
                d.digest,
                Source::name(self)
            ))
        })?;
        crate::layout::file_stream(
            &self.file,
            start + offset,
            Some(size.saturating_sub(offset)),
        )
        .await
    }
}

#[async_trait]
impl Destination for DockerArchive {
    fn name(&self) -> String {
        Source::name(self)
    }

    async fn has_blob(&self, _: &Descriptor) -> Result<bool> {
        Ok(false)
    }

    async fn put_blob(
        &self,
        d: &Descriptor,
        source: &dyn Source,
        progress: &SharedProgress,
    ) -> Result<u64> {
        let mut guard = self.writer.lock().await;
        let w = self.writer(&mut guard).await?;
        let hex = digest_hex(&d.digest)?;
        let name = if d.media_type.contains("config") {
            format!("{hex}.json")
        } else {
            format!("{hex}.tar")
        };
        let verifier = SharedVerifier::new(d);
        let body = counted(
            verify::open(source, d, 0, &verifier).await?,
            progress,
            &d.digest,
        );
        let n = Self::append(w, &name, d.size, body).await?;
        verifier.finish()?;
        w.names.insert(d.digest.clone(), name);
        Ok(n)
    }

    async fn put_manifest(&self, m: &Manifest, tag: Option<&str>) -> Result<()> {
        if m.is_index() {
            return Err(Error::Usage(format!(
                "{} holds one image and the source is multi-platform: choose one with --platform",
                Source::name(self)
            )));
        }
        let mut guard = self.writer.lock().await;
        let w = self.writer(&mut guard).await?;
        let name_of = |d: &Descriptor| w.names.get(&d.digest).cloned().unwrap_or_default();
        let repo_tags: Vec<String> = match (&self.reference, tag) {
            (Some(r), _) => vec![r.clone()],
            _ => vec![],
        };
        w.manifest = Some(json!([{
            "Config": m.config.as_ref().map(name_of),
            "RepoTags": repo_tags,
            "Layers": m.layers.iter().map(name_of).collect::<Vec<_>>(),
        }]));
        Ok(())
    }

    async fn commit(&self, _root: &Manifest) -> Result<()> {
        let mut guard = self.writer.lock().await;
        let w = self.writer(&mut guard).await?;
        let manifest =
            serde_json::to_vec(&w.manifest.take().unwrap_or(json!([]))).unwrap_or_default();
        let len = manifest.len() as u64;
        let body: BlobStream = Box::pin(futures_util::stream::once(async move {
            Ok(Bytes::from(manifest))
        }));
        Self::append(w, "manifest.json", len, body).await?;
        let tmp = w.tmp.clone();
        w.out
            .write_all(&[0u8; 1024])
            .await
            .map_err(|e| Error::io(&tmp, e))?;
        w.out.flush().await.map_err(|e| Error::io(&tmp, e))?;
        w.out
            .get_ref()
            .sync_all()
            .await
            .map_err(|e| Error::io(&tmp, e))?;
        tokio::fs::rename(&tmp, &self.file)
            .await
            .map_err(|e| Error::io(&self.file, e))?;
        *guard = None;
        Ok(())
    }

    fn parallel(&self) -> bool {
        false
    }
}

impl Drop for DockerArchive {
    fn drop(&mut self) {
        // A transfer that failed before commit leaves no partial archive behind.
        if let Some(w) = self.writer.get_mut().take() {
            let _ = std::fs::remove_file(&w.tmp);
        }
    }
}
