//! What the engine reports while it works. The CLI renders these as progress bars for people and
//! as plain lines in CI logs; the engine itself never prints.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobOutcome {
    /// The bytes were sent.
    Copied,
    /// The destination already had it.
    Skipped,
    /// The registry linked it from another repository without a byte moving.
    Mounted,
}

#[derive(Debug, Clone)]
pub enum Event {
    /// The plan: how many blobs and bytes the image has.
    Plan {
        blobs: usize,
        bytes: u64,
    },
    BlobStarted {
        digest: String,
        size: u64,
    },
    /// Bytes moved since the last event for this blob.
    BlobProgress {
        digest: String,
        bytes: u64,
    },
    /// The blob's transfer starts again at `offset` (a resume or a restart after a failure).
    BlobRestarted {
        digest: String,
        offset: u64,
    },
    BlobDone {
        digest: String,
        size: u64,
        outcome: BlobOutcome,
    },
    /// A failed attempt that will be retried or resumed.
    Retry {
        what: String,
        attempt: u32,
        reason: String,
    },
    ManifestPushed {
        digest: String,
        reference: String,
    },
}

pub trait Progress: Send + Sync {
    fn event(&self, event: Event);
}

pub type SharedProgress = std::sync::Arc<dyn Progress>;

/// Reports each chunk of `stream` as `BlobProgress` for `digest`.
pub fn counted(
    stream: crate::transport::BlobStream,
    progress: &SharedProgress,
    digest: &str,
) -> crate::transport::BlobStream {
    use futures_util::StreamExt;
    let progress = progress.clone();
    let digest = digest.to_owned();
    Box::pin(stream.map(move |chunk| {
        if let Ok(b) = &chunk {
            progress.event(Event::BlobProgress {
                digest: digest.clone(),
                bytes: b.len() as u64,
            });
        }
        chunk
    }))
}

/// For callers that do not watch.
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _: Event) {}
}

/// What a transfer did, printed as the final summary (`--output json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub digest: String,
    pub media_type: String,
    pub blobs: usize,
    pub blobs_copied: usize,
    pub blobs_skipped: usize,
    pub blobs_mounted: usize,
    pub bytes_moved: u64,
    pub bytes_skipped: u64,
    pub seconds: f64,
}
