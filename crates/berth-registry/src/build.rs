//! Daemonless image assembly (as `crane append` and `ko` do): a base image's manifest and config,
//! plus one reproducible gzip layer of files (entries sorted, fixed times and owners) and config
//! changes. Base layers are never downloaded: the result is a source whose base blobs come from
//! the base, so a push to the base's registry skips or mounts them.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::copy::{Plan, plan};
use crate::digest::{hex, sha256_digest};
use crate::error::{Error, Result};
use crate::manifest::{
    DOCKER_LAYER_GZIP, DOCKER_LIST, DOCKER_MANIFEST, Descriptor, Manifest, OCI_LAYER_GZIP, Platform,
};
use crate::transport::{BlobStream, RegistryLocation, Source};

#[derive(Debug, Clone, Default)]
pub struct BuildSpec {
    /// Files or directories (source on disk, absolute destination in the image).
    pub adds: Vec<(PathBuf, String)>,
    pub env: Vec<(String, String)>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub workdir: Option<String>,
    pub labels: Vec<(String, String)>,
    /// Seconds since the epoch for the layer's file times and the config's `created`
    /// (SOURCE_DATE_EPOCH; 0 by default so the same inputs give the same digest).
    pub created: i64,
    pub platform: Option<Platform>,
    /// What `history` records as `created_by`.
    pub created_by: String,
}

/// Blob bytes made by the build, kept on disk (layers) or in memory (configs, manifests).
enum Made {
    File(PathBuf),
    Bytes(Bytes),
}

/// The built image as a transfer source: new blobs and manifests, base blobs from the base.
pub struct Built<'a> {
    base: &'a dyn Source,
    made: HashMap<String, Made>,
    pub plan: Plan,
}

fn entries(spec: &BuildSpec) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for (src, dest) in &spec.adds {
        if !dest.starts_with('/') {
            return Err(Error::Usage(format!(
                "--add {}:{dest}: the destination must be an absolute path in the image",
                src.display()
            )));
        }
        let meta = std::fs::symlink_metadata(src).map_err(|e| {
            Error::Usage(format!(
                "--add {}:{dest}: cannot read {}: {e}",
                src.display(),
                src.display()
            ))
        })?;
        let dest = dest.trim_end_matches('/');
        if meta.is_dir() {
            walk(src, dest, &mut out)?;
        } else {
            let target = if spec.adds.iter().any(|(s, d)| s == src && d.ends_with('/')) {
                format!(
                    "{dest}/{}",
                    src.file_name().and_then(|n| n.to_str()).unwrap_or("file")
                )
            } else {
                dest.to_owned()
            };
            out.push((target, src.clone()));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, dest: &str, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    out.push((dest.to_owned(), dir.to_owned()));
    let read = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in read {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let target = format!("{}/{name}", if dest == "/" { "" } else { dest });
        if entry.file_type().map_err(|e| Error::io(&path, e))?.is_dir() {
            walk(&path, &target, out)?;
        } else {
            out.push((target, path));
        }
    }
    Ok(())
}

/// Counts and hashes what passes through.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the layer: returns (diff_id, digest, size).
fn write_layer(spec: &BuildSpec, path: &Path) -> Result<(String, String, u64)> {
    let mut files = entries(spec)?;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files.dedup_by(|a, b| a.0 == b.0);
    // Parent directories first, so every unpacker creates them with known modes.
    let mut dirs: Vec<String> = Vec::new();
    for (target, _) in &files {
        let mut p = String::new();
        for part in target
            .trim_start_matches('/')
            .split('/')
            .collect::<Vec<_>>()
            .iter()
            .rev()
            .skip(1)
            .rev()
        {
            p.push('/');
            p.push_str(part);
            if !dirs.contains(&p) && !files.iter().any(|(t, _)| *t == p) {
                dirs.push(p.clone());
            }
        }
    }
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let compressed = Hashing {
        inner: std::io::BufWriter::with_capacity(1024 * 1024, file),
        hasher: Sha256::new(),
        size: 0,
    };
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(compressed, flate2::Compression::new(6));
    let raw = Hashing {
        inner: gz,
        hasher: Sha256::new(),
        size: 0,
    };
    let mut tar = tar::Builder::new(raw);
    tar.mode(tar::HeaderMode::Deterministic);
    let mtime = spec.created.max(0) as u64;
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        let _ = h.set_username("");
        let _ = h.set_groupname("");
        h
    };
    let io = |e: std::io::Error| Error::io(path, e);
    let mut all: Vec<(String, Option<PathBuf>)> = dirs.into_iter().map(|d| (d, None)).collect();
    all.extend(files.into_iter().map(|(t, p)| (t, Some(p))));
    all.sort_by(|a, b| a.0.cmp(&b.0));
    for (target, src) in all {
        let name = target.trim_start_matches('/');
        if name.is_empty() {
            continue;
        }
        let Some(src) = src else {
            let mut h = header(tar::EntryType::Directory, 0o755, 0);
            tar.append_data(&mut h, format!("{name}/"), std::io::empty())
                .map_err(io)?;
            continue;
        };
        let meta = std::fs::symlink_metadata(&src).map_err(|e| Error::io(&src, e))?;
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(&src).map_err(|e| Error::io(&src, e))?;
            let mut h = header(tar::EntryType::Symlink, 0o777, 0);
            tar.append_link(&mut h, name, link).map_err(io)?;
        } else if meta.is_dir() {
            let mut h = header(tar::EntryType::Directory, 0o755, 0);
            tar.append_data(&mut h, format!("{name}/"), std::io::empty())
                .map_err(io)?;
        } else {
            #[cfg(unix)]
            let executable =
                std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0;
            #[cfg(not(unix))]
            let executable = false;
            let mode = if executable { 0o755 } else { 0o644 };
            let mut h = header(tar::EntryType::Regular, mode, meta.len());
            let f = std::fs::File::open(&src).map_err(|e| Error::io(&src, e))?;
            tar.append_data(&mut h, name, f).map_err(io)?;
        }
    }
    let raw = tar.into_inner().map_err(io)?;
    let diff_id = format!("sha256:{}", hex(&raw.hasher.finalize()));
    let compressed = raw.inner.finish().map_err(io)?;
    let digest = format!("sha256:{}", hex(&compressed.hasher.finalize()));
    let size = compressed.size;
    compressed
        .inner
        .into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?
        .sync_all()
        .map_err(io)?;
    Ok((diff_id, digest, size))
}

/// Reads a small blob (config) whole, verified.
pub async fn read_blob(source: &dyn Source, d: &Descriptor) -> Result<Bytes> {
    use futures_util::StreamExt;
    if d.size > 16 * 1024 * 1024 {
        return Err(Error::Format(format!(
            "config {} is {} bytes; refusing to read more than 16 MiB",
            d.digest, d.size
        )));
    }
    let mut stream = source.blob(d, 0).await?;
    let mut buf = Vec::with_capacity(d.size as usize);
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk?);
        if buf.len() as u64 > d.size {
            break;
        }
    }
    let mut v = crate::digest::Verifier::new(&d.digest, d.size);
    v.update(&buf)?;
    v.finish()?;
    Ok(Bytes::from(buf))
}

/// The image config as JSON.
pub async fn read_config(source: &dyn Source, d: &Descriptor) -> Result<Value> {
    serde_json::from_slice(&read_blob(source, d).await?)
        .map_err(|e| Error::Format(format!("config {} is not JSON: {e}", d.digest)))
}

fn rfc3339(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

fn edit_config(config: &mut Value, spec: &BuildSpec, diff_id: Option<&str>) {
    if !config["config"].is_object() {
        config["config"] = json!({});
    }
    let c = &mut config["config"];
    if !spec.env.is_empty() {
        let mut env: Vec<String> = c["Env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str().map(str::to_owned))
            .collect();
        for (k, v) in &spec.env {
            env.retain(|e| e.split_once('=').map(|(key, _)| key) != Some(k.as_str()));
            env.push(format!("{k}={v}"));
        }
        c["Env"] = json!(env);
    }
    if let Some(e) = &spec.entrypoint {
        c["Entrypoint"] = json!(e);
        // As in a Dockerfile: a new entrypoint drops the base's command unless one is given.
        if spec.cmd.is_none() {
            c["Cmd"] = Value::Null;
        }
    }
    if let Some(cmd) = &spec.cmd {
        c["Cmd"] = json!(cmd);
    }
    if let Some(w) = &spec.workdir {
        c["WorkingDir"] = json!(w);
    }
    if !spec.labels.is_empty() {
        if !c["Labels"].is_object() {
            c["Labels"] = json!({});
        }
        for (k, v) in &spec.labels {
            c["Labels"][k] = json!(v);
        }
    }
    let created = rfc3339(spec.created);
    config["created"] = json!(created);
    if let Some(id) = diff_id {
        if !config["rootfs"]["diff_ids"].is_array() {
            config["rootfs"] = json!({"type": "layers", "diff_ids": []});
        }
        if let Some(ids) = config["rootfs"]["diff_ids"].as_array_mut() {
            ids.push(json!(id));
        }
    }
    let mut entry =
        json!({"created": created, "created_by": spec.created_by, "comment": "berth build"});
    if diff_id.is_none() {
        entry["empty_layer"] = json!(true);
    }
    if !config["history"].is_array() {
        config["history"] = json!([]);
    }
    if let Some(h) = config["history"].as_array_mut() {
        h.push(entry);
    }
}

fn to_manifest(v: &Value, media_type: &str) -> Result<Manifest> {
    Manifest::parse(
        Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
        Some(media_type),
    )
}

/// Builds on `base`; the layer file goes to `work` (a directory the caller removes).
pub async fn build<'a>(base: &'a dyn Source, spec: &BuildSpec, work: &Path) -> Result<Built<'a>> {
    let base_plan = plan(base, spec.platform.as_ref()).await?;
    let mut made = HashMap::new();
    let layer = if spec.adds.is_empty() {
        None
    } else {
        let path = work.join("layer.tar.gz");
        let spec2 = spec.clone();
        let p2 = path.clone();
        let (diff_id, digest, size) = tokio::task::spawn_blocking(move || write_layer(&spec2, &p2))
            .await
            .map_err(|e| Error::Format(format!("building the layer failed: {e}")))??;
        made.insert(digest.clone(), Made::File(path));
        Some((diff_id, digest, size))
    };
    let mut images = Vec::new();
    for image in &base_plan.images {
        let config_d = image
            .config
            .as_ref()
            .ok_or_else(|| Error::Format(format!("base image {} has no config", image.digest)))?;
        let mut config = read_config(base, config_d).await?;
        edit_config(&mut config, spec, layer.as_ref().map(|l| l.0.as_str()));
        let config_bytes = Bytes::from(serde_json::to_vec(&config).unwrap_or_default());
        let config_digest = sha256_digest(&config_bytes);
        let mut m: Value = serde_json::from_slice(&image.bytes)
            .map_err(|e| Error::Format(format!("base manifest: {e}")))?;
        m["config"]["digest"] = json!(config_digest);
        m["config"]["size"] = json!(config_bytes.len());
        made.insert(config_digest, Made::Bytes(config_bytes));
        if let Some((_, digest, size)) = &layer {
            let media = if image.media_type == DOCKER_MANIFEST {
                DOCKER_LAYER_GZIP
            } else {
                OCI_LAYER_GZIP
            };
            if let Some(layers) = m["layers"].as_array_mut() {
                layers.push(json!({"mediaType": media, "digest": digest, "size": size}));
            }
        }
        let built = to_manifest(&m, &image.media_type)?;
        made.insert(built.digest.clone(), Made::Bytes(built.bytes.clone()));
        images.push(built);
    }
    let top = if base_plan.top.is_index() {
        let mut index: Value = serde_json::from_slice(&base_plan.top.bytes)
            .map_err(|e| Error::Format(format!("base index: {e}")))?;
        if let Some(children) = index["manifests"].as_array_mut() {
            for (child, built) in children.iter_mut().zip(&images) {
                child["digest"] = json!(built.digest);
                child["size"] = json!(built.size());
            }
        }
        let media = if base_plan.top.media_type == DOCKER_LIST {
            DOCKER_LIST
        } else {
            crate::manifest::OCI_INDEX
        };
        to_manifest(&index, media)?
    } else {
        images[0].clone()
    };
    Ok(Built {
        base,
        made,
        plan: Plan { top, images },
    })
}

#[async_trait]
impl Source for Built<'_> {
    fn name(&self) -> String {
        format!("build on {}", self.base.name())
    }

    async fn root(&self) -> Result<Manifest> {
        Ok(self.plan.top.clone())
    }

    async fn manifest(&self, d: &Descriptor) -> Result<Manifest> {
        self.plan
            .images
            .iter()
            .find(|m| m.digest == d.digest)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("the build made no manifest {}", d.digest)))
    }

    async fn blob(&self, d: &Descriptor, offset: u64) -> Result<BlobStream> {
        match self.made.get(&d.digest) {
            Some(Made::Bytes(b)) => {
                let b = b.slice((offset as usize).min(b.len())..);
                Ok(Box::pin(futures_util::stream::once(async move { Ok(b) })))
            }
            Some(Made::File(path)) => crate::layout::file_stream(path, offset, None).await,
            None => self.base.blob(d, offset).await,
        }
    }

    fn registry(&self) -> Option<RegistryLocation> {
        self.base.registry()
    }
}

/// `--from scratch`: an empty image (no layers) for the given platform, as a Dockerfile's
/// `FROM scratch`.
pub struct Scratch {
    manifest: Manifest,
    config: Bytes,
}

impl Scratch {
    pub fn new(platform: Option<&Platform>) -> Scratch {
        let (os, arch) = platform
            .map(|p| (p.os.clone(), p.architecture.clone()))
            .unwrap_or_else(|| ("linux".into(), "amd64".into()));
        let config = Bytes::from(
            serde_json::to_vec(&json!({
                "architecture": arch,
                "os": os,
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            }))
            .unwrap_or_default(),
        );
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": crate::manifest::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256_digest(&config), "size": config.len()},
            "layers": [],
        });
        Scratch {
            manifest: to_manifest(&manifest, crate::manifest::OCI_MANIFEST)
                .expect("a fixed manifest parses"),
            config,
        }
    }
}

#[async_trait]
impl Source for Scratch {
    fn name(&self) -> String {
        "scratch".into()
    }

    async fn root(&self) -> Result<Manifest> {
        Ok(self.manifest.clone())
    }

    async fn manifest(&self, d: &Descriptor) -> Result<Manifest> {
        Err(Error::NotFound(format!(
            "scratch has no manifest {}",
            d.digest
        )))
    }

    async fn blob(&self, d: &Descriptor, offset: u64) -> Result<BlobStream> {
        if d.digest != sha256_digest(&self.config) {
            return Err(Error::NotFound(format!("scratch has no blob {}", d.digest)));
        }
        let b = self
            .config
            .slice((offset as usize).min(self.config.len())..);
        Ok(Box::pin(futures_util::stream::once(async move { Ok(b) })))
    }
}
