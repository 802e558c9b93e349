//! SHA-256 digests and the verification that every byte moved matches the digest and size that
//! name it (sha2 uses the CPU's SHA extensions when present).

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

pub use berth_files::hex;

/// The hex part of a `sha256:` digest, refusing anything else (it becomes a file name).
pub fn digest_hex(digest: &str) -> Result<&str> {
    berth_core::validate_digest(digest).map_err(Error::Format)?;
    Ok(&digest[7..])
}

/// Hashes a blob as it streams past and checks it against its descriptor at the end.
pub struct Verifier {
    digest: String,
    size: u64,
    hasher: Sha256,
    seen: u64,
}

impl Verifier {
    pub fn new(digest: &str, size: u64) -> Verifier {
        Verifier {
            digest: digest.to_owned(),
            size,
            hasher: Sha256::new(),
            seen: 0,
        }
    }

    pub fn seen(&self) -> u64 {
        self.seen
    }

    pub fn reset(&mut self) {
        self.hasher = Sha256::new();
        self.seen = 0;
    }

    pub fn update(&mut self, chunk: &[u8]) -> Result<()> {
        self.seen += chunk.len() as u64;
        if self.seen > self.size {
            return Err(Error::Integrity(format!(
                "blob {} is longer than the {} bytes its manifest says",
                self.digest, self.size
            )));
        }
        self.hasher.update(chunk);
        Ok(())
    }

    pub fn finish(&self) -> Result<()> {
        if self.seen != self.size {
            return Err(Error::Integrity(format!(
                "blob {} ended after {} bytes; its manifest says {}",
                self.digest, self.seen, self.size
            )));
        }
        let actual = format!("sha256:{}", hex(&self.hasher.clone().finalize()));
        if actual != self.digest {
            return Err(Error::Integrity(format!(
                "blob {} does not match its content (the content hashes to {actual}); refusing it",
                self.digest
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_digest_and_size() {
        let d = sha256_digest(b"hello");
        let mut v = Verifier::new(&d, 5);
        v.update(b"hel").unwrap();
        v.update(b"lo").unwrap();
        v.finish().unwrap();
        let mut short = Verifier::new(&d, 6);
        short.update(b"hello").unwrap();
        assert!(
            short
                .finish()
                .unwrap_err()
                .to_string()
                .contains("ended after 5")
        );
        let mut long = Verifier::new(&d, 4);
        assert!(long.update(b"hello").is_err());
        let mut wrong = Verifier::new(&sha256_digest(b"other"), 5);
        wrong.update(b"hello").unwrap();
        assert!(
            wrong
                .finish()
                .unwrap_err()
                .to_string()
                .contains("does not match")
        );
    }
}
