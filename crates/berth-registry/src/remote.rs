//! A repository in a registry as either side of a transfer.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::manifest::{Descriptor, Manifest};
use crate::progress::{Event, SharedProgress, counted};
use crate::registry::{RegistryClient, UploadStart};
use crate::transport::{BlobStream, Destination, RegistryLocation, Source};
use crate::verify::{self, SharedVerifier};

/// Blobs up to this size go in one `PUT`; larger ones as a resumable chunked upload.
const MONOLITHIC_MAX: u64 = 16 * 1024 * 1024;

pub struct RemoteImage {
    pub client: Arc<RegistryClient>,
    pub repository: String,
    /// Tag or digest.
    pub reference: String,
    /// Upload sessions opened and not finished, by blob digest: cancelled if the copy fails.
    open_uploads: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl RemoteImage {
    pub fn new(client: Arc<RegistryClient>, repository: &str, reference: &str) -> RemoteImage {
        RemoteImage {
            client,
            repository: repository.to_owned(),
            reference: reference.to_owned(),
            open_uploads: Default::default(),
        }
    }

    /// Remembers (or, with `None`, forgets) the upload session a blob is being sent through.
    fn track(&self, digest: &str, location: Option<&str>) {
        let mut open = self.open_uploads.lock().unwrap_or_else(|e| e.into_inner());
        match location {
            Some(l) => open.insert(digest.to_owned(), l.to_owned()),
            None => open.remove(digest),
        };
    }

    async fn start(&self, digest: &str) -> Result<UploadStart> {
        let started = self.client.start_upload(&self.repository, None).await?;
        if let UploadStart::Upload(location) = &started {
            self.track(digest, Some(location));
        }
        Ok(started)
    }

    fn location(&self) -> RegistryLocation {
        RegistryLocation {
            host: self.client.host().to_owned(),
            repository: self.repository.clone(),
        }
    }

    async fn upload_small(
        &self,
        d: &Descriptor,
        source: &dyn Source,
        progress: &SharedProgress,
    ) -> Result<u64> {
        let verifier = SharedVerifier::new(d);
        let mut attempt = 0;
        loop {
            let location = match self.start(&d.digest).await? {
                UploadStart::Upload(l) => l,
                UploadStart::Mounted => return Ok(0),
            };
            let body = counted(
                verify::open(source, d, 0, &verifier).await?,
                progress,
                &d.digest,
            );
            match self
                .client
                .put_monolithic(&location, &d.digest, d.size, body)
                .await
            {
                Ok(()) => {
                    self.track(&d.digest, None);
                    return verifier.finish().map(|_| d.size);
                }
                Err(e) => {
                    verifier
                        .retry_or_fail(e, &mut attempt, &self.client.retry, progress, &d.digest)
                        .await?;
                    progress.event(Event::BlobRestarted {
                        digest: d.digest.clone(),
                        offset: 0,
                    });
                }
            }
        }
    }

    /// One `PATCH` with the rest of the blob; after an interruption, asks the registry how much
    /// it kept and continues from there.
    async fn upload_chunked(
        &self,
        d: &Descriptor,
        source: &dyn Source,
        progress: &SharedProgress,
    ) -> Result<u64> {
        let verifier = SharedVerifier::new(d);
        let mut location = match self.start(&d.digest).await? {
            UploadStart::Upload(l) => l,
            UploadStart::Mounted => return Ok(0),
        };
        let mut offset = 0u64;
        let mut attempt = 0;
        let mut read = 0u64;
        loop {
            let body = counted(
                verify::open(source, d, offset, &verifier).await?,
                progress,
                &d.digest,
            );
            read += d.size - offset;
            match self
                .client
                .patch_chunk(&location, &d.digest, offset, d.size - offset, body)
                .await
            {
                Ok(next) => {
                    verifier.finish()?;
                    self.client.finish_upload(&next, &d.digest).await?;
                    self.track(&d.digest, None);
                    return Ok(read);
                }
                Err(e) => {
                    verifier
                        .retry_or_fail(e, &mut attempt, &self.client.retry, progress, &d.digest)
                        .await?;
                    match self.client.upload_offset(&location).await {
                        Ok(kept) if kept <= d.size => offset = kept,
                        _ => {
                            // The upload session is gone: start a new one from the beginning.
                            location = match self.start(&d.digest).await? {
                                UploadStart::Upload(l) => l,
                                UploadStart::Mounted => return Ok(read),
                            };
                            offset = 0;
                        }
                    }
                    progress.event(Event::BlobRestarted {
                        digest: d.digest.clone(),
                        offset,
                    });
                }
            }
        }
    }
}

#[async_trait]
impl Source for RemoteImage {
    fn name(&self) -> String {
        format!(
            "{}/{}:{}",
            self.client.host(),
            self.repository,
            self.reference
        )
    }

    async fn root(&self) -> Result<Manifest> {
        self.client
            .get_manifest(&self.repository, &self.reference)
            .await
    }

    async fn manifest(&self, d: &Descriptor) -> Result<Manifest> {
        let m = self
            .client
            .get_manifest(&self.repository, &d.digest)
            .await?;
        if m.digest != d.digest {
            return Err(Error::Integrity(format!(
                "manifest {} from {} does not match its digest",
                d.digest,
                Source::name(self)
            )));
        }
        Ok(m)
    }

    async fn blob(&self, d: &Descriptor, offset: u64) -> Result<BlobStream> {
        self.client
            .get_blob(&self.repository, &d.digest, offset)
            .await
    }

    fn registry(&self) -> Option<RegistryLocation> {
        Some(self.location())
    }
}

#[async_trait]
impl Destination for RemoteImage {
    fn name(&self) -> String {
        Source::name(self)
    }

    async fn abandon(&self) {
        let open: Vec<String> = self
            .open_uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, location)| location)
            .collect();
        for location in open {
            if let Err(e) = self.client.cancel_upload(&location).await {
                tracing::debug!(error = %e, "could not cancel an abandoned upload");
            }
        }
    }

    async fn has_blob(&self, d: &Descriptor) -> Result<bool> {
        self.client.has_blob(&self.repository, &d.digest).await
    }

    async fn mount_blob(&self, d: &Descriptor, from: &RegistryLocation) -> Result<bool> {
        if from.host != self.client.host() || from.repository == self.repository {
            return Ok(false);
        }
        match self
            .client
            .start_upload(&self.repository, Some((&d.digest, &from.repository)))
            .await
        {
            Ok(UploadStart::Mounted) => Ok(true),
            // 202: the registry would not mount (the blob is not referenced there); send it.
            Ok(UploadStart::Upload(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn put_blob(
        &self,
        d: &Descriptor,
        source: &dyn Source,
        progress: &SharedProgress,
    ) -> Result<u64> {
        if d.size <= MONOLITHIC_MAX {
            self.upload_small(d, source, progress).await
        } else {
            self.upload_chunked(d, source, progress).await
        }
    }

    async fn put_manifest(&self, m: &Manifest, tag: Option<&str>) -> Result<()> {
        self.client
            .put_manifest(&self.repository, tag.unwrap_or(&m.digest), m)
            .await
    }

    fn registry(&self) -> Option<RegistryLocation> {
        Some(self.location())
    }
}
