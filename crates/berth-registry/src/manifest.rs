//! Manifests as bytes (so digests are preserved exactly) with a parsed view of what the engine
//! needs: config, layers, child manifests, platforms.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::digest::sha256_digest;
use crate::error::{Error, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// What registries are asked to accept, in order of preference.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Registries cap manifests at 4 MiB; so do we, before parsing.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// `linux/arm64` or `linux/arm/v7`.
    pub fn parse(text: &str) -> Result<Platform> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: (*os).into(),
                architecture: (*arch).into(),
                variant: None,
            }),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Platform {
                    os: (*os).into(),
                    architecture: (*arch).into(),
                    variant: Some((*variant).into()),
                })
            }
            _ => Err(Error::Usage(format!(
                "--platform '{text}' must be OS/ARCH or OS/ARCH/VARIANT, like linux/arm64"
            ))),
        }
    }

    pub fn matches(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && (wanted.variant.is_none() || self.variant == wanted.variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
struct Parsed {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u32>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    manifests: Option<Vec<Descriptor>>,
}

/// A manifest or index exactly as stored, with its digest and parsed parts.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: Bytes,
    pub media_type: String,
    pub digest: String,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    pub manifests: Vec<Descriptor>,
}

impl Manifest {
    /// Parses `bytes`; `declared` is the Content-Type or descriptor media type when known.
    pub fn parse(bytes: Bytes, declared: Option<&str>) -> Result<Manifest> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(Error::Format(format!(
                "manifest is {} bytes; registries accept at most 4 MiB",
                bytes.len()
            )));
        }
        let parsed: Parsed = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Format(format!("manifest is not valid manifest JSON: {e}")))?;
        if parsed.schema_version == Some(1) {
            return Err(Error::Format(
                "Docker schema 1 manifests are deprecated and not supported; re-push the image with a current client".into(),
            ));
        }
        let declared = declared
            .map(|d| d.split(';').next().unwrap_or("").trim())
            .filter(|d| {
                !d.is_empty() && *d != "application/json" && *d != "application/octet-stream"
            });
        let media_type = parsed
            .media_type
            .clone()
            .or(declared.map(str::to_owned))
            .unwrap_or_else(|| {
                if parsed.manifests.is_some() {
                    OCI_INDEX.to_owned()
                } else {
                    OCI_MANIFEST.to_owned()
                }
            });
        let is_index = media_type == OCI_INDEX || media_type == DOCKER_LIST;
        if is_index && parsed.manifests.is_none() {
            return Err(Error::Format(format!(
                "{media_type} has no 'manifests' list"
            )));
        }
        if !is_index && parsed.config.is_none() {
            return Err(Error::Format(format!("{media_type} has no 'config'")));
        }
        for d in parsed
            .config
            .iter()
            .chain(&parsed.layers)
            .chain(parsed.manifests.iter().flatten())
        {
            berth_core::validate_digest(&d.digest)
                .map_err(|rule| Error::Format(format!("manifest names a bad blob: {rule}")))?;
        }
        Ok(Manifest {
            digest: sha256_digest(&bytes),
            media_type,
            config: parsed.config,
            layers: parsed.layers,
            manifests: parsed.manifests.unwrap_or_default(),
            bytes,
        })
    }

    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_LIST
    }

    /// Config and layers, skipping foreign layers (`urls`) registries never hold.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config
            .iter()
            .chain(self.layers.iter().filter(|l| l.urls.is_none()))
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size(),
            platform: None,
            urls: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hexd(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn parses_images_and_indexes_and_keeps_bytes() {
        let text = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{}","size":2}},"layers":[{{"mediaType":"{DOCKER_LAYER_GZIP}","digest":"{}","size":3}}]}}"#,
            hexd('a'),
            hexd('b')
        );
        let m = Manifest::parse(Bytes::from(text.clone()), None).unwrap();
        assert!(!m.is_index());
        assert_eq!(m.blobs().count(), 2);
        assert_eq!(m.digest, sha256_digest(text.as_bytes()));
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":9,"platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#,
            hexd('c')
        );
        let i = Manifest::parse(Bytes::from(index), None).unwrap();
        assert!(i.is_index());
        assert!(
            i.manifests[0]
                .platform
                .as_ref()
                .unwrap()
                .matches(&Platform::parse("linux/arm64").unwrap())
        );
    }

    #[test]
    fn refuses_what_is_not_a_manifest() {
        for bad in [
            "not json".to_owned(),
            r#"{"schemaVersion":1,"fsLayers":[]}"#.to_owned(),
            format!(r#"{{"mediaType":"{OCI_MANIFEST}","layers":[]}}"#),
            format!(r#"{{"mediaType":"{OCI_INDEX}"}}"#),
            r#"{"config":{"digest":"sha256:zz","size":1}}"#.to_owned(),
        ] {
            assert!(
                Manifest::parse(Bytes::from(bad.clone()), None).is_err(),
                "{bad}"
            );
        }
        let huge = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert!(Manifest::parse(Bytes::from(huge), None).is_err());
        assert!(Platform::parse("linux").is_err());
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "(sha256:[0-9a-f]{0,64}|[a-z./+-]{0,30})".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(
                    "(mediaType|config|layers|manifests|digest|size|schemaVersion|platform|os|architecture)",
                    inner,
                    0..6
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Manifest-shaped hostile JSON yields a manifest or an error, never a panic; what parses
        /// names only well-formed digests.
        #[test]
        fn manifest_shaped_json_never_panics(v in json_value()) {
            let bytes = Bytes::from(serde_json::to_vec(&v).unwrap());
            if let Ok(m) = Manifest::parse(bytes, None) {
                for d in m.blobs().chain(&m.manifests) {
                    prop_assert!(berth_core::validate_digest(&d.digest).is_ok());
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Manifest::parse(Bytes::from(bytes), Some(OCI_MANIFEST));
        }

        #[test]
        fn locations_parse_or_are_refused(text in "\\PC{0,60}") {
            let _ = crate::Location::parse(&text);
        }
    }
}
