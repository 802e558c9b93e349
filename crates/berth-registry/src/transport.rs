//! The two sides of every transfer. A source gives manifests and blob streams (from any offset,
//! so an interrupted transfer resumes); a destination takes blobs, then manifests, last.

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;

use crate::error::Result;
use crate::manifest::{Descriptor, Manifest};
use crate::progress::SharedProgress;

pub type BlobStream = BoxStream<'static, Result<Bytes>>;

/// Where a registry-backed side lives, so a copy within one registry can mount instead of send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryLocation {
    pub host: String,
    pub repository: String,
}

#[async_trait]
pub trait Source: Send + Sync {
    /// What the user named (for messages).
    fn name(&self) -> String;
    /// The manifest or index the reference points at.
    async fn root(&self) -> Result<Manifest>;
    /// A child manifest of an index, by digest.
    async fn manifest(&self, descriptor: &Descriptor) -> Result<Manifest>;
    /// The blob's bytes from `offset` on (no verification: the engine verifies).
    async fn blob(&self, descriptor: &Descriptor, offset: u64) -> Result<BlobStream>;
    fn registry(&self) -> Option<RegistryLocation> {
        None
    }
}

#[async_trait]
pub trait Destination: Send + Sync {
    fn name(&self) -> String;
    /// Whether the destination already holds this blob (content-addressed, so a hit is a skip).
    async fn has_blob(&self, descriptor: &Descriptor) -> Result<bool>;
    /// Links a blob from another repository of the same registry; `false` when it must be sent.
    async fn mount_blob(&self, _descriptor: &Descriptor, _from: &RegistryLocation) -> Result<bool> {
        Ok(false)
    }
    /// Stores a blob, verifying digest and size while it streams, resuming on failures.
    /// Returns the bytes read from the source.
    async fn put_blob(
        &self,
        descriptor: &Descriptor,
        source: &dyn Source,
        progress: &SharedProgress,
    ) -> Result<u64>;
    /// Stores a manifest: children of an index by digest (`tag` None), the root last with its tag.
    async fn put_manifest(&self, manifest: &Manifest, tag: Option<&str>) -> Result<()>;
    /// Gives up the transfer: cancels whatever is half-sent (best effort).
    async fn abandon(&self) {}
    /// Finishes the destination (index files, archive trailer) after the root manifest.
    async fn commit(&self, _root: &Manifest) -> Result<()> {
        Ok(())
    }
    fn registry(&self) -> Option<RegistryLocation> {
        None
    }
    /// Whether blobs may be written concurrently (an archive is one sequential stream).
    fn parallel(&self) -> bool {
        true
    }
}
