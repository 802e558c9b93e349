//! Sealing for Bitnami sealed-secrets (`pkg/crypto/crypto.go`): per value a fresh 32-byte
//! AES-256-GCM session key (12-byte zero nonce, no additional data, tag appended), the session
//! key wrapped with RSA-OAEP (SHA-256 for the hash and MGF1) under the scope label, then
//! `u16 big-endian length of the wrapped key ‖ wrapped key ‖ GCM output`, base64 (standard,
//! padded). The controller decrypts exactly this; a zero nonce is safe because every session
//! key encrypts one value only.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand_core::{OsRng, RngCore};
use rsa::pkcs8::DecodePublicKey;
use rsa::sha2::Sha256;
use rsa::{Oaep, RsaPublicKey};
use x509_cert::Certificate;
use x509_cert::der::DecodePem;

/// Why a sealing certificate or a value could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "the sealing certificate is not a PEM certificate or public key with an RSA key: {0} (fetch it with `kubeseal --fetch-cert` or from the controller's /v1/cert.pem)"
    )]
    Certificate(String),
    #[error("sealing failed: {0}")]
    Encrypt(String),
}

/// Who may decrypt a sealed value: the scope the controller checks through the RSA label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only a Secret of this name in this namespace (the default).
    Strict,
    /// Any name in this namespace.
    NamespaceWide,
    /// Any name in any namespace.
    ClusterWide,
}

impl Scope {
    /// The RSA-OAEP label for a SealedSecret `name` in `namespace`.
    pub fn label(self, namespace: &str, name: &str) -> String {
        match self {
            Scope::Strict => format!("{namespace}/{name}"),
            Scope::NamespaceWide => namespace.to_owned(),
            Scope::ClusterWide => String::new(),
        }
    }

    /// The annotation the SealedSecret and its template carry for this scope, if any.
    pub fn annotation(self) -> Option<(&'static str, &'static str)> {
        match self {
            Scope::Strict => None,
            Scope::NamespaceWide => Some(("sealedsecrets.bitnami.com/namespace-wide", "true")),
            Scope::ClusterWide => Some(("sealedsecrets.bitnami.com/cluster-wide", "true")),
        }
    }
}

/// A runtime's sealing key: the controller's RSA public key, with the SHA-256 fingerprint of
/// the certificate (or key) it came from and the certificate's expiry.
#[derive(Debug, Clone)]
pub struct SealingKey {
    key: RsaPublicKey,
    fingerprint: String,
    not_after: Option<std::time::SystemTime>,
}

impl SealingKey {
    /// From the controller's certificate (`BEGIN CERTIFICATE`) or a bare `BEGIN PUBLIC KEY`.
    pub fn from_pem(pem: &str) -> Result<SealingKey, SealError> {
        let bad = |e: &dyn std::fmt::Display| SealError::Certificate(e.to_string());
        if pem.contains("BEGIN CERTIFICATE") {
            let cert = Certificate::from_pem(pem.trim().as_bytes()).map_err(|e| bad(&e))?;
            let der = x509_cert::der::Encode::to_der(&cert).map_err(|e| bad(&e))?;
            let validity = &cert.tbs_certificate.validity;
            let spki = &cert.tbs_certificate.subject_public_key_info;
            let spki_der = x509_cert::der::Encode::to_der(spki).map_err(|e| bad(&e))?;
            Ok(SealingKey {
                key: RsaPublicKey::from_public_key_der(&spki_der).map_err(|e| bad(&e))?,
                fingerprint: fingerprint(&der),
                not_after: Some(std::time::UNIX_EPOCH + validity.not_after.to_unix_duration()),
            })
        } else {
            let key = RsaPublicKey::from_public_key_pem(pem.trim()).map_err(|e| bad(&e))?;
            let der = rsa::pkcs8::EncodePublicKey::to_public_key_der(&key).map_err(|e| bad(&e))?;
            Ok(SealingKey {
                fingerprint: fingerprint(der.as_bytes()),
                key,
                not_after: None,
            })
        }
    }

    /// `sha256:<hex>` of the certificate's DER (or the bare key's), as `openssl x509
    /// -fingerprint -sha256` shows it without colons.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// When the certificate expires; `None` for a bare public key.
    pub fn not_after(&self) -> Option<std::time::SystemTime> {
        self.not_after
    }

    /// `value` sealed for a SealedSecret `name` in `namespace` under `scope`, as the base64
    /// text of `spec.encryptedData`.
    pub fn seal(
        &self,
        scope: Scope,
        namespace: &str,
        name: &str,
        value: &[u8],
    ) -> Result<String, SealError> {
        let mut session_key = [0u8; 32];
        OsRng.fill_bytes(&mut session_key);
        let label = scope.label(namespace, name);
        let wrapped = self
            .key
            .encrypt(
                &mut OsRng,
                Oaep::new_with_label::<Sha256, _>(label),
                &session_key,
            )
            .map_err(|e| SealError::Encrypt(e.to_string()))?;
        let cipher = Aes256Gcm::new_from_slice(&session_key)
            .map_err(|e| SealError::Encrypt(e.to_string()))?;
        let sealed = cipher
            .encrypt(Nonce::from_slice(&[0u8; 12]), value)
            .map_err(|e| SealError::Encrypt(e.to_string()))?;
        let length = u16::try_from(wrapped.len())
            .map_err(|_| SealError::Encrypt("the wrapped key is too long".into()))?;
        let mut out = Vec::with_capacity(2 + wrapped.len() + sealed.len());
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&wrapped);
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }
}

fn fingerprint(der: &[u8]) -> String {
    use rsa::sha2::Digest;
    let digest = Sha256::digest(der);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}
