//! Blob streams that verify as they go and survive resumption: a transfer that restarts at an
//! offset other than where hashing stopped re-reads the prefix to hash it, so a resumed blob is
//! still verified end to end.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;

use crate::digest::Verifier;
use crate::error::{Error, Result};
use crate::manifest::Descriptor;
use crate::progress::{Event, SharedProgress};
use crate::registry::RetryPolicy;
use crate::transport::{BlobStream, Source};

/// A verifier shared by the attempts at one blob; remembers why verification failed, since a
/// failing body stream reaches the caller only as a broken request.
#[derive(Clone)]
pub struct SharedVerifier(Arc<Mutex<(Verifier, Option<String>)>>);

impl SharedVerifier {
    pub fn new(d: &Descriptor) -> SharedVerifier {
        SharedVerifier(Arc::new(Mutex::new((
            Verifier::new(&d.digest, d.size),
            None,
        ))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Verifier, Option<String>)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The integrity failure seen while streaming, if any (not retryable).
    pub fn failure(&self) -> Option<Error> {
        self.lock().1.clone().map(Error::Integrity)
    }

    /// After a failed attempt at the blob: gives up (an integrity failure, a refusal, or the
    /// last attempt) or reports the retry and waits out the backoff.
    pub async fn retry_or_fail(
        &self,
        error: Error,
        attempt: &mut u32,
        policy: &RetryPolicy,
        progress: &SharedProgress,
        digest: &str,
    ) -> Result<()> {
        if let Some(bad) = self.failure() {
            return Err(bad);
        }
        *attempt += 1;
        if !error.is_retryable() || *attempt >= policy.attempts {
            return Err(error);
        }
        progress.event(Event::Retry {
            what: format!("blob {digest}"),
            attempt: *attempt,
            reason: error.to_string(),
        });
        tokio::time::sleep(policy.delay(*attempt)).await;
        Ok(())
    }

    pub fn finish(&self) -> Result<()> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        self.lock().0.finish()
    }

    fn update(&self, chunk: &[u8]) -> Result<()> {
        let mut g = self.lock();
        if let Err(e) = g.0.update(chunk) {
            g.1 = Some(e.to_string());
            return Err(e);
        }
        Ok(())
    }

    fn complete(&self) -> Result<()> {
        let mut g = self.lock();
        if let Err(e) = g.0.finish() {
            g.1 = Some(e.to_string());
            return Err(e);
        }
        Ok(())
    }
}

/// The blob from `offset` on, hashed into `verifier`; the stream fails at its end if the whole
/// blob does not match, so a destination never commits unverified bytes.
pub async fn open(
    source: &dyn Source,
    d: &Descriptor,
    offset: u64,
    verifier: &SharedVerifier,
) -> Result<BlobStream> {
    let seen = verifier.lock().0.seen();
    let start = if seen == offset {
        offset
    } else {
        verifier.lock().0.reset();
        0
    };
    let mut stream = source.blob(d, start).await?;
    let mut pos = start;
    let mut leftover: Option<Bytes> = None;
    while pos < offset {
        let chunk = match stream.next().await {
            Some(c) => c?,
            None => {
                return Err(Error::Integrity(format!(
                    "blob {} ended after {pos} bytes; its manifest says {}",
                    d.digest, d.size
                )));
            }
        };
        let take = ((offset - pos) as usize).min(chunk.len());
        verifier.update(&chunk[..take])?;
        pos += take as u64;
        if take < chunk.len() {
            leftover = Some(chunk.slice(take..));
        }
    }
    let head = futures_util::stream::iter(leftover.map(Ok));
    let size = d.size;
    let v = verifier.clone();
    let body = head.chain(stream).map(move |chunk| {
        let chunk = chunk?;
        v.update(&chunk)?;
        if v.lock().0.seen() == size {
            v.complete()?;
        }
        Ok(chunk)
    });
    // A source that ends early: report it as the stream's last item.
    let v = verifier.clone();
    let tail = futures_util::stream::once(async move {
        if v.lock().0.seen() != size {
            v.complete()?;
        }
        Ok(Bytes::new())
    })
    .filter(|r: &Result<Bytes>| std::future::ready(r.is_err()));
    Ok(Box::pin(body.chain(tail)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;
    use async_trait::async_trait;

    /// Serves `bytes` in 1000-byte chunks, whatever the descriptor says.
    struct Serves(Vec<u8>);

    #[async_trait]
    impl Source for Serves {
        fn name(&self) -> String {
            "memory".into()
        }
        async fn root(&self) -> Result<Manifest> {
            unreachable!("only blobs are read")
        }
        async fn manifest(&self, _: &Descriptor) -> Result<Manifest> {
            unreachable!("only blobs are read")
        }
        async fn blob(&self, _: &Descriptor, offset: u64) -> Result<BlobStream> {
            let chunks: Vec<Result<Bytes>> = self.0[offset as usize..]
                .chunks(1000)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            Ok(Box::pin(futures_util::stream::iter(chunks)))
        }
    }

    fn descriptor(bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: String::new(),
            digest: crate::digest::sha256_digest(bytes),
            size: bytes.len() as u64,
            platform: None,
            urls: None,
        }
    }

    /// What a destination would receive: the bytes forwarded before the stream failed, and why.
    async fn receive(served: &[u8], d: &Descriptor, offset: u64) -> (Vec<u8>, Option<String>) {
        let verifier = SharedVerifier::new(d);
        let mut stream = open(&Serves(served.to_vec()), d, offset, &verifier)
            .await
            .unwrap();
        let mut got = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => got.extend_from_slice(&c),
                Err(e) => return (got, Some(e.to_string())),
            }
        }
        (got, verifier.finish().err().map(|e| e.to_string()))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_matching_blob_passes_whole_from_any_offset() {
        let blob: Vec<u8> = (0..25_500u32).map(|i| (i * 7) as u8).collect();
        let d = descriptor(&blob);
        assert_eq!(receive(&blob, &d, 0).await, (blob.clone(), None));
        assert_eq!(
            receive(&blob, &d, 12_345).await,
            (blob[12_345..].to_vec(), None)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_blob_that_does_not_match_never_reaches_its_end() {
        let blob: Vec<u8> = (0..25_500u32).map(|i| i as u8).collect();
        let d = descriptor(&blob);
        let mut corrupt = blob.clone();
        corrupt[3] ^= 1;
        let (got, error) = receive(&corrupt, &d, 0).await;
        assert!(got.len() < blob.len(), "the last chunk is withheld");
        assert!(error.unwrap().contains("does not match its content"));

        let (got, error) = receive(&blob[..20_000], &d, 0).await;
        assert_eq!(got.len(), 20_000);
        assert!(error.unwrap().contains("ended after 20000 bytes"));

        let mut long = blob.clone();
        long.extend_from_slice(b"more");
        let (got, error) = receive(&long, &d, 0).await;
        assert!(
            got.len() <= blob.len(),
            "nothing past the size is forwarded"
        );
        assert!(error.unwrap().contains("longer than"), "too long is named");
    }
}
