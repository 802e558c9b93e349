//! Parsing of what clients send: digests, repository names, tags and manifests. Pure functions,
//! fuzzed by proptest, so hostile input yields an error and never a panic.

use serde::Deserialize;

pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A `sha256:<64 lower-case hex>` digest, the only algorithm ECR accepts.
pub fn parse_digest(value: &str) -> Result<&str, String> {
    let Some((algo, hex)) = value.split_once(':') else {
        return Err(format!(
            "'{value}' is not a digest (expected sha256:<64 hex digits>)"
        ));
    };
    if algo != "sha256" {
        return Err(format!(
            "digest algorithm '{algo}' is not supported (use sha256)"
        ));
    }
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "'{value}' is not a digest (expected sha256:<64 lower-case hex digits>)"
        ));
    }
    Ok(value)
}

/// Whether `value` starts with an algorithm OCI registers (`sha256:`, `sha512:`) or that
/// clients send (`sha384:`, `blake3:`), so that an unsupported one is answered as a digest.
pub fn names_digest_algorithm(value: &str) -> bool {
    value
        .split_once(':')
        .is_some_and(|(algo, _)| matches!(algo, "sha256" | "sha384" | "sha512" | "blake3"))
}

pub fn is_digest(value: &str) -> bool {
    parse_digest(value).is_ok()
}

/// ECR's repository name rule: 2–256 characters,
/// `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`.
pub fn valid_repository_name(name: &str) -> bool {
    if !(2..=256).contains(&name.len()) {
        return false;
    }
    name.split('/').all(|component| {
        let bytes = component.as_bytes();
        !bytes.is_empty()
            && bytes[0].is_ascii_lowercase() | bytes[0].is_ascii_digit()
            && bytes[bytes.len() - 1].is_ascii_lowercase() | bytes[bytes.len() - 1].is_ascii_digit()
            && bytes.windows(2).all(|w| {
                let sep = |b: u8| matches!(b, b'.' | b'_' | b'-');
                !(sep(w[0]) && sep(w[1]))
            })
            && bytes.iter().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
    })
}

/// OCI tag rule: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: Option<String>,
    digest: String,
    size: i64,
    #[serde(default)]
    urls: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
}

/// What the registry needs to know about a manifest it stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedManifest {
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub subject: Option<String>,
    /// Blobs that must exist in the repository (config and layers without foreign `urls`).
    pub blobs: Vec<(String, i64)>,
    /// Child manifests that must exist (indexes).
    pub children: Vec<String>,
    /// Config plus layers, as ECR's `imageSizeInBytes` counts it.
    pub size: i64,
}

impl ParsedManifest {
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_LIST
    }
}

/// Parses a manifest body; `content_type` is used when the body names no media type.
pub fn parse_manifest(body: &[u8], content_type: Option<&str>) -> Result<ParsedManifest, String> {
    if body.len() > MAX_MANIFEST_BYTES {
        return Err(format!(
            "manifest is {} bytes; the limit is 4 MiB",
            body.len()
        ));
    }
    let raw: RawManifest =
        serde_json::from_slice(body).map_err(|e| format!("manifest is not valid JSON: {e}"))?;
    if raw.schema_version != Some(2) {
        return Err("manifest schemaVersion must be 2".into());
    }
    let content_type = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "application/octet-stream");
    let media_type = match (raw.media_type.as_deref(), content_type) {
        (Some(m), Some(c)) if m != c => {
            return Err(format!(
                "manifest mediaType '{m}' does not match Content-Type '{c}'"
            ));
        }
        (Some(m), _) => m.to_owned(),
        (None, Some(c)) => c.to_owned(),
        (None, None) if raw.manifests.is_some() => OCI_INDEX.to_owned(),
        (None, None) => OCI_MANIFEST.to_owned(),
    };
    let check = |d: &Descriptor| -> Result<(), String> {
        parse_digest(&d.digest)?;
        if d.size < 0 {
            return Err(format!("descriptor {} has a negative size", d.digest));
        }
        Ok(())
    };
    let subject = match &raw.subject {
        Some(s) => {
            check(s)?;
            Some(s.digest.clone())
        }
        None => None,
    };
    match media_type.as_str() {
        DOCKER_MANIFEST | OCI_MANIFEST => {
            let config = raw.config.ok_or("image manifest has no config")?;
            check(&config)?;
            let layers = raw.layers.unwrap_or_default();
            let mut blobs = vec![(config.digest.clone(), config.size)];
            let mut size = config.size;
            for l in &layers {
                check(l)?;
                size = size.saturating_add(l.size);
                if l.urls.is_empty() {
                    blobs.push((l.digest.clone(), l.size));
                }
            }
            // OCI image-spec 1.1: without an `artifactType`, an OCI manifest's artifact type
            // is its config's media type.
            let artifact_type = raw
                .artifact_type
                .or_else(|| config.media_type.filter(|_| media_type == OCI_MANIFEST));
            Ok(ParsedManifest {
                media_type,
                artifact_type,
                subject,
                blobs,
                children: vec![],
                size,
            })
        }
        DOCKER_LIST | OCI_INDEX => {
            let manifests = raw.manifests.ok_or("index has no manifests")?;
            let mut children = Vec::with_capacity(manifests.len());
            for m in &manifests {
                check(m)?;
                children.push(m.digest.clone());
            }
            Ok(ParsedManifest {
                media_type,
                artifact_type: raw.artifact_type,
                subject,
                blobs: vec![],
                children,
                size: 0,
            })
        }
        other => Err(format!("manifest media type '{other}' is not supported")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const D: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn names_tags_digests() {
        for ok in ["ab", "team/app", "a.b-c_d/e", "x1/y2/z3"] {
            assert!(valid_repository_name(ok), "{ok}");
        }
        for bad in [
            "a",
            "App",
            "a//b",
            "/ab",
            "ab/",
            "a..b",
            "a-",
            "-a",
            &"a".repeat(257),
        ] {
            assert!(!valid_repository_name(bad), "{bad}");
        }
        assert!(valid_tag("v1.2.3") && valid_tag("_x") && !valid_tag(".x") && !valid_tag(""));
        assert!(parse_digest(D).is_ok());
        assert!(parse_digest("sha256:ABC").is_err());
        assert!(
            parse_digest("md5:00")
                .unwrap_err()
                .contains("not supported")
        );
    }

    #[test]
    fn image_manifest_and_index() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D}","size":10}},"layers":[{{"mediaType":"x","digest":"{D}","size":5}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":1}}}}"#
        );
        let p = parse_manifest(m.as_bytes(), None).unwrap();
        assert_eq!(p.size, 15);
        assert_eq!(p.blobs.len(), 2);
        assert_eq!(p.subject.as_deref(), Some(D));
        let i = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":3}}]}}"#
        );
        let p = parse_manifest(i.as_bytes(), Some(OCI_INDEX)).unwrap();
        assert!(p.is_index());
        assert_eq!(p.children, vec![D.to_owned()]);
        assert!(parse_manifest(b"not json", None).is_err());
        assert!(
            parse_manifest(m.as_bytes(), Some(DOCKER_MANIFEST))
                .unwrap_err()
                .contains("does not match")
        );
    }

    proptest! {
        #[test]
        fn manifest_parser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512), ct in "[a-z/.+;=-]{0,40}") {
            let _ = parse_manifest(&body, Some(&ct));
        }

        #[test]
        fn manifest_parser_survives_json_shaped_noise(s in r#"\{("[a-zA-Z]{1,12}":(\[|\{|"[^"]{0,20}"|[0-9]{1,5}|null|true),?){0,8}\}?"#) {
            let _ = parse_manifest(s.as_bytes(), None);
        }

        #[test]
        fn reference_parsers_never_panic(s in "\\PC{0,80}") {
            let _ = parse_digest(&s);
            let _ = valid_repository_name(&s);
            let _ = valid_tag(&s);
        }
    }
}
