//! The stylesheet and the script, compiled into the binary. Their URLs carry a hash of their
//! content, so browsers may cache them for a year and still never run a stale copy.

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

/// One file served under `/assets/`.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// The first 12 hex digits of the content's SHA-256.
    pub version: String,
}

impl Asset {
    fn new(name: &'static str, content_type: &'static str, body: &'static [u8]) -> Self {
        let version = berth_files::hex(&Sha256::digest(body)[..6]);
        Asset {
            name,
            content_type,
            body,
            version,
        }
    }

    /// The URL pages link to.
    pub fn href(&self) -> String {
        format!("/assets/{}?v={}", self.name, self.version)
    }
}

pub static STYLESHEET: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "berth.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/berth.css"),
    )
});

pub static SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "berth.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/berth.js"),
    )
});

/// The asset served at `/assets/{name}`.
pub fn find(name: &str) -> Option<&'static Asset> {
    [&*STYLESHEET, &*SCRIPT]
        .into_iter()
        .find(|a| a.name == name)
}
