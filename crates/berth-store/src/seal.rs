//! Sealing secrets at rest: XChaCha20-Poly1305 under a master key that never enters the database.
//!
//! Each ciphertext's associated data names the integration and the field it belongs to, so a
//! ciphertext copied onto another row or field fails to open instead of yielding a valid secret.
//! The key id is derived from the key (first 16 hex digits of its SHA-256), so a wrong key is
//! recognised by its id before anything is decrypted, and several keys can coexist during rotation.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("master key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error("master key from {source_name}: {reason}")]
    KeyValue {
        source_name: &'static str,
        reason: String,
    },
    #[error(
        "secret '{field}' of integration {integration_id} is sealed under key id {key_id}, which the configured master key(s) {have} do not include"
    )]
    UnknownKey {
        integration_id: String,
        field: String,
        key_id: String,
        have: String,
    },
    #[error(
        "secret '{field}' of integration {integration_id} failed to open: it was altered, moved from another record, or sealed under another key"
    )]
    Open {
        integration_id: String,
        field: String,
    },
    #[error("could not draw random bytes from the operating system: {0}")]
    Random(String),
}

/// One 256-bit master key and its derived id.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    key: Key,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    pub fn generate() -> Result<Self, SealError> {
        let mut bytes = [0u8; KEY_LEN];
        getrandom::fill(&mut bytes).map_err(|e| SealError::Random(e.to_string()))?;
        Ok(Self::from_bytes(bytes))
    }

    fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let digest = Sha256::digest(bytes);
        let id = berth_files::hex(&digest[..8]);
        MasterKey {
            id,
            key: Key::from(bytes),
        }
    }

    /// Parses the base64 text form (44 characters, 32 bytes).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = B64
            .decode(text.trim())
            .map_err(|_| "is not base64 (expected 32 random bytes, base64-encoded)".to_owned())?;
        let bytes: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|v: Vec<u8>| format!("decodes to {} bytes; a master key is 32", v.len()))?;
        Ok(Self::from_bytes(bytes))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The base64 text form, for key files and `BERTH_MASTER_KEY`.
    pub fn to_text(&self) -> SecretString {
        SecretString::from(B64.encode(self.key.as_slice()))
    }
}

/// A sealed value as stored: which key, the nonce and the ciphertext with its tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// Master keys in use: the first seals, all of them open. Rotation adds a new first key,
/// re-seals everything, then drops the others.
#[derive(Clone, Debug)]
pub struct Keyring {
    keys: Vec<MasterKey>,
}

fn aad(integration_id: &str, field: &str) -> Vec<u8> {
    format!("berth/v1/integration/{integration_id}/{field}").into_bytes()
}

impl Keyring {
    pub fn new(primary: MasterKey) -> Self {
        Keyring {
            keys: vec![primary],
        }
    }

    pub fn with_keys(keys: Vec<MasterKey>) -> Option<Self> {
        (!keys.is_empty()).then_some(Keyring { keys })
    }

    pub fn primary(&self) -> &MasterKey {
        &self.keys[0]
    }

    pub fn keys(&self) -> &[MasterKey] {
        &self.keys
    }

    pub fn ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.id.clone()).collect()
    }

    pub fn contains(&self, key_id: &str) -> bool {
        self.keys.iter().any(|k| k.id == key_id)
    }

    /// Reads a key from `BERTH_MASTER_KEY`-style text: one base64 key, or several separated by
    /// commas during a rotation (newest first).
    pub fn from_text(source_name: &'static str, text: &str) -> Result<Self, SealError> {
        let keys = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(MasterKey::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|reason| SealError::KeyValue {
                source_name,
                reason,
            })?;
        Keyring::with_keys(keys).ok_or(SealError::KeyValue {
            source_name,
            reason: "holds no key".into(),
        })
    }

    /// Loads the key file, or creates it with a fresh key (mode 0600) when it does not exist.
    /// Returns whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), SealError> {
        match Self::load(path)? {
            Some(ring) => Ok((ring, false)),
            None => {
                let ring = Keyring::new(MasterKey::generate()?);
                ring.write_file(path)?;
                Ok((ring, true))
            }
        }
    }

    /// Reads the key file; `None` when it does not exist (nothing is created).
    pub fn load(path: &Path) -> Result<Option<Self>, SealError> {
        let err = |reason: String| SealError::KeyFile {
            path: path.to_owned(),
            reason,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path).map_err(err)?;
                let ring = Keyring::from_text("key file", &text).map_err(|e| match e {
                    SealError::KeyValue { reason, .. } => err(reason),
                    other => other,
                })?;
                Ok(Some(ring))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// Writes the keyring atomically (temp file, fsync, rename) with mode 0600.
    pub fn write_file(&self, path: &Path) -> Result<(), SealError> {
        let err = |e: std::io::Error| SealError::KeyFile {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let mut text = String::from(
            "# Berth master key(s): base64, newest first. Keep this file out of backups of the database.\n",
        );
        for k in &self.keys {
            text.push_str(k.to_text().expose_secret());
            text.push('\n');
        }
        write_private_atomically(path, text.as_bytes()).map_err(err)
    }

    pub fn seal(
        &self,
        integration_id: &str,
        field: &str,
        plaintext: &SecretString,
    ) -> Result<Sealed, SealError> {
        let key = self.primary();
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| SealError::Random(e.to_string()))?;
        let cipher = XChaCha20Poly1305::new(&key.key);
        let ciphertext = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext.expose_secret().as_bytes(),
                    aad: &aad(integration_id, field),
                },
            )
            .map_err(|_| SealError::Open {
                integration_id: integration_id.into(),
                field: field.into(),
            })?;
        Ok(Sealed {
            key_id: key.id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    pub fn open(
        &self,
        integration_id: &str,
        field: &str,
        sealed: &Sealed,
    ) -> Result<SecretString, SealError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| SealError::UnknownKey {
                integration_id: integration_id.into(),
                field: field.into(),
                key_id: sealed.key_id.clone(),
                have: self.ids().join(", "),
            })?;
        let fail = || SealError::Open {
            integration_id: integration_id.into(),
            field: field.into(),
        };
        let nonce: [u8; NONCE_LEN] = sealed.nonce.as_slice().try_into().map_err(|_| fail())?;
        let plain = XChaCha20Poly1305::new(&key.key)
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &aad(integration_id, field),
                },
            )
            .map_err(|_| fail())?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| fail())
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| e.to_string())?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "is readable by group or others (mode {:o}); run chmod 600 on it",
            mode & 0o777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), String> {
    Ok(())
}

/// Writes `bytes` to `path` atomically, readable by the owner only.
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    berth_files::write_atomically(path, bytes, berth_files::Access::Private)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_and_binding() {
        let ring = Keyring::new(MasterKey::generate().unwrap());
        let secret = SecretString::from("wJalrXUtnFEMI/K7MDENG/bPxRfiCYFAKEKEY");
        let sealed = ring
            .seal("int-1", "aws_secret_access_key", &secret)
            .unwrap();
        assert_eq!(
            ring.open("int-1", "aws_secret_access_key", &sealed)
                .unwrap()
                .expose_secret(),
            secret.expose_secret()
        );
        assert!(matches!(
            ring.open("int-2", "aws_secret_access_key", &sealed),
            Err(SealError::Open { .. })
        ));
        assert!(matches!(
            ring.open("int-1", "aws_access_key_id", &sealed),
            Err(SealError::Open { .. })
        ));
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(
            ring.open("int-1", "aws_secret_access_key", &tampered)
                .is_err()
        );
        let other = Keyring::new(MasterKey::generate().unwrap());
        assert!(matches!(
            other.open("int-1", "aws_secret_access_key", &sealed),
            Err(SealError::UnknownKey { .. })
        ));
    }

    #[test]
    fn key_file_is_created_private_and_reloads_the_same_key() {
        let dir = berth_testkit::TempDir::new("seal");
        let path = dir.path().join("keys/master.key");
        let (ring, created) = Keyring::load_or_create(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, created) = Keyring::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(ring.ids(), again.ids());
    }

    #[test]
    fn bad_key_text_is_a_clear_error() {
        let e = Keyring::from_text("BERTH_MASTER_KEY", "not base64!").unwrap_err();
        assert!(e.to_string().contains("BERTH_MASTER_KEY"));
        let e = Keyring::from_text("BERTH_MASTER_KEY", "AAAA").unwrap_err();
        assert!(e.to_string().contains("3 bytes"), "{e}");
    }
}
