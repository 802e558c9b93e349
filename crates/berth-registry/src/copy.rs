//! The transfer engine: reads the source's manifest, moves the blobs the destination lacks (skip,
//! mount, or stream, several at a time), then writes manifests last so a failed copy never leaves
//! a tag pointing at an incomplete image.

use std::collections::HashSet;
use std::time::Instant;

use futures_util::StreamExt;

use crate::error::{Error, Result};
use crate::manifest::{Descriptor, Manifest, Platform};
use crate::progress::{BlobOutcome, Event, SharedProgress, Summary};
use crate::transport::{Destination, Source};

#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Copy one platform of a multi-platform image (the destination gets that image's manifest).
    pub platform: Option<Platform>,
    /// Blobs moved at once.
    pub jobs: usize,
    /// The tag the destination gets; `None` pushes by digest only.
    pub tag: Option<String>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            platform: None,
            jobs: 8,
            tag: Some("latest".into()),
        }
    }
}

/// The manifest to copy and the image manifests under it (itself, for a single image).
pub struct Plan {
    pub top: Manifest,
    pub images: Vec<Manifest>,
}

/// Reads what the source names, choosing one platform when asked.
pub async fn plan(source: &dyn Source, platform: Option<&Platform>) -> Result<Plan> {
    let root = source.root().await?;
    if !root.is_index() {
        return Ok(Plan {
            images: vec![root.clone()],
            top: root,
        });
    }
    if let Some(wanted) = platform {
        let child = root
            .manifests
            .iter()
            .find(|d| d.platform.as_ref().is_some_and(|p| p.matches(wanted)))
            .ok_or_else(|| {
                let have: Vec<String> = root
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                    .collect();
                Error::NotFound(format!(
                    "{} has no image for platform {wanted} (it has: {})",
                    source.name(),
                    have.join(", ")
                ))
            })?;
        let image = source.manifest(child).await?;
        return Ok(Plan {
            images: vec![image.clone()],
            top: image,
        });
    }
    let mut images = Vec::with_capacity(root.manifests.len());
    for child in &root.manifests {
        let m = source.manifest(child).await?;
        if m.is_index() {
            return Err(Error::Format(format!(
                "{}: nested indexes are not supported ({} inside {})",
                source.name(),
                m.digest,
                root.digest
            )));
        }
        images.push(m);
    }
    Ok(Plan { top: root, images })
}

async fn move_blob(
    d: &Descriptor,
    source: &dyn Source,
    destination: &dyn Destination,
    progress: &SharedProgress,
) -> Result<(BlobOutcome, u64)> {
    progress.event(Event::BlobStarted {
        digest: d.digest.clone(),
        size: d.size,
    });
    let outcome = if destination.has_blob(d).await? {
        (BlobOutcome::Skipped, 0)
    } else if let Some(from) = source.registry()
        && destination.mount_blob(d, &from).await?
    {
        (BlobOutcome::Mounted, 0)
    } else {
        let read = destination.put_blob(d, source, progress).await?;
        (BlobOutcome::Copied, read)
    };
    progress.event(Event::BlobDone {
        digest: d.digest.clone(),
        size: d.size,
        outcome: outcome.0,
    });
    Ok(outcome)
}

/// Copies what `source` names to `destination`.
pub async fn copy(
    source: &dyn Source,
    destination: &dyn Destination,
    options: &CopyOptions,
    progress: SharedProgress,
) -> Result<Summary> {
    let started = Instant::now();
    let plan = plan(source, options.platform.as_ref()).await?;
    copy_plan(source, destination, &plan, options, progress, started).await
}

/// Copies an already planned image (used by `build`, whose plan is made, not read).
pub async fn copy_plan(
    source: &dyn Source,
    destination: &dyn Destination,
    plan: &Plan,
    options: &CopyOptions,
    progress: SharedProgress,
    started: Instant,
) -> Result<Summary> {
    let mut seen = HashSet::new();
    let blobs: Vec<Descriptor> = plan
        .images
        .iter()
        .flat_map(|m| m.blobs().cloned().collect::<Vec<_>>())
        .filter(|d| seen.insert(d.digest.clone()))
        .collect();
    let total: u64 = blobs.iter().map(|d| d.size).sum();
    progress.event(Event::Plan {
        blobs: blobs.len(),
        bytes: total,
    });
    let jobs = if destination.parallel() {
        options.jobs.max(1)
    } else {
        1
    };
    let mut summary = Summary {
        digest: plan.top.digest.clone(),
        media_type: plan.top.media_type.clone(),
        blobs: blobs.len(),
        ..Summary::default()
    };
    let mut results = futures_util::stream::iter(blobs.iter())
        .map(|d| {
            let progress = progress.clone();
            async move {
                move_blob(d, source, destination, &progress)
                    .await
                    .map(|r| (d, r))
            }
        })
        .buffer_unordered(jobs);
    while let Some(result) = results.next().await {
        let (d, (outcome, read)) = match result {
            Ok(r) => r,
            Err(e) => {
                // The other blobs in flight stop here: their upload sessions are cancelled
                // rather than left holding the registry's disk.
                drop(results);
                destination.abandon().await;
                return Err(e);
            }
        };
        match outcome {
            BlobOutcome::Copied => {
                summary.blobs_copied += 1;
                summary.bytes_moved += read;
            }
            BlobOutcome::Skipped => {
                summary.blobs_skipped += 1;
                summary.bytes_skipped += d.size;
            }
            BlobOutcome::Mounted => {
                summary.blobs_mounted += 1;
                summary.bytes_skipped += d.size;
            }
        }
    }
    drop(results);
    if plan.top.is_index() {
        for image in &plan.images {
            destination.put_manifest(image, None).await?;
        }
    }
    destination
        .put_manifest(&plan.top, options.tag.as_deref())
        .await?;
    progress.event(Event::ManifestPushed {
        digest: plan.top.digest.clone(),
        reference: options
            .tag
            .clone()
            .unwrap_or_else(|| plan.top.digest.clone()),
    });
    destination.commit(&plan.top).await?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}
