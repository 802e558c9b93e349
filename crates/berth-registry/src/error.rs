//! One error enum for the transfer engine. Registry failures keep the server's error code, message
//! and body so a person can see what the registry said, not our guess at it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A location the user typed that cannot be used as written.
    #[error("{0}")]
    Usage(String),
    /// The manifest, tag, repository or blob asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The registry answered with an error (OCI error envelope kept).
    #[error("{0}")]
    Registry(Box<RegistryFailure>),
    /// Authentication failed or the credentials lack a permission.
    #[error("{0}")]
    Auth(String),
    /// Content does not match the digest or size that names it.
    #[error("{0}")]
    Integrity(String),
    /// The network failed (after retries).
    #[error("{context}: {source}")]
    Transport {
        context: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A manifest, index, layout or archive that is not what its format says.
    #[error("{0}")]
    Format(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a registry said when it refused a request.
#[derive(Debug)]
pub struct RegistryFailure {
    pub host: String,
    pub action: String,
    pub status: u16,
    pub code: Option<String>,
    pub message: Option<String>,
    /// The response body as sent (for logs and `--output json`).
    pub body: String,
}

impl std::fmt::Display for RegistryFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} answered HTTP {}",
            self.action, self.host, self.status
        )?;
        if let Some(c) = &self.code {
            write!(f, " {c}")?;
        }
        match &self.message {
            Some(m) => write!(f, ": {m}"),
            None if !self.body.is_empty() => {
                write!(f, ": {}", self.body.chars().take(300).collect::<String>())
            }
            None => Ok(()),
        }
    }
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        let path = path.into();
        if source.raw_os_error() == Some(28) {
            return Error::Io {
                path,
                source: std::io::Error::new(
                    source.kind(),
                    "no space left on the device (the partial blob was removed; complete blobs were kept)",
                ),
            };
        }
        Error::Io { path, source }
    }

    /// Worth another attempt: the network or a server-side failure, not a refusal.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport { .. } => true,
            Error::Registry(r) => r.status >= 500 || r.status == 429 || r.status == 408,
            _ => false,
        }
    }
}
