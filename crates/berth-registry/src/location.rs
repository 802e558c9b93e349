//! Where an image is, as the user writes it: `oci:DIR[:TAG]`, `docker-archive:FILE[:REF]`,
//! `ecr://INTEGRATION/REPO[:TAG|@DIGEST]`, `docker://REF` or a plain `HOST/REPO:TAG`.

use std::path::PathBuf;

use berth_core::ImageRef;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Oci {
        dir: PathBuf,
        tag: Option<String>,
    },
    DockerArchive {
        file: PathBuf,
        reference: Option<String>,
    },
    Registry(ImageRef),
    /// A repository in the registry of a Berth integration.
    Ecr {
        integration: String,
        repository: String,
        tag: Option<String>,
        digest: Option<String>,
    },
}

const KNOWN: &str = "expected oci:DIR[:TAG], docker-archive:FILE[:REF], ecr://INTEGRATION/REPO:TAG, docker://HOST/REPO:TAG or HOST/REPO:TAG";

impl Location {
    pub fn parse(text: &str) -> Result<Location> {
        let usage = |why: String| Error::Usage(format!("'{text}': {why}"));
        if let Some(rest) = text.strip_prefix("oci:") {
            // The tag follows the last ':' unless that ':' is inside a path component.
            let (dir, tag) = match rest.rsplit_once(':') {
                Some((d, t)) if !t.contains('/') && !d.is_empty() => (d, Some(t.to_owned())),
                _ => (rest, None),
            };
            if dir.is_empty() {
                return Err(usage(
                    "oci: needs a directory, like oci:./image:latest".into(),
                ));
            }
            if let Some(t) = &tag {
                berth_core::validate_tag(t).map_err(usage)?;
            }
            return Ok(Location::Oci {
                dir: dir.into(),
                tag,
            });
        }
        if let Some(rest) = text.strip_prefix("docker-archive:") {
            let (file, reference) = match rest.split_once(':') {
                Some((f, r)) => (f, Some(r.to_owned())),
                None => (rest, None),
            };
            if file.is_empty() {
                return Err(usage(
                    "docker-archive: needs a file, like docker-archive:./image.tar".into(),
                ));
            }
            if let Some(r) = &reference {
                ImageRef::parse(r).map_err(|e| usage(e.to_string()))?;
            }
            return Ok(Location::DockerArchive {
                file: file.into(),
                reference,
            });
        }
        if let Some(rest) = text.strip_prefix("ecr://") {
            let (integration, image) = rest.split_once('/').ok_or_else(|| {
                usage(
                    "ecr:// needs an integration and a repository, like ecr://prod/team/app:1.0"
                        .into(),
                )
            })?;
            if integration.is_empty() {
                return Err(usage(
                    "ecr:// needs an integration name before the first '/'".into(),
                ));
            }
            let parsed =
                ImageRef::parse(&format!("ecr.invalid/{image}")).map_err(|e| usage(e.rule))?;
            return Ok(Location::Ecr {
                integration: integration.to_owned(),
                repository: parsed.repository,
                tag: parsed.tag,
                digest: parsed.digest,
            });
        }
        let plain = match text.split_once("://") {
            Some(("docker", rest)) => rest,
            Some((scheme, _)) => {
                return Err(usage(format!("unknown transport '{scheme}://' ({KNOWN})")));
            }
            None => {
                // `name:rest` where rest is a path, not a tag or port, names a transport.
                if let Some((prefix, rest)) = text.split_once(':')
                    && !prefix.contains(['.', '/'])
                    && prefix != "localhost"
                    && (rest.contains('/') || rest.is_empty())
                    && !rest.starts_with(|c: char| c.is_ascii_digit())
                {
                    return Err(usage(format!("unknown transport '{prefix}:' ({KNOWN})")));
                }
                text
            }
        };
        let r = ImageRef::parse(plain).map_err(|e| usage(e.rule))?;
        Ok(Location::Registry(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_transport() {
        assert_eq!(
            Location::parse("oci:/tmp/img:v1").unwrap(),
            Location::Oci {
                dir: "/tmp/img".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            Location::parse("oci:./img").unwrap(),
            Location::Oci {
                dir: "./img".into(),
                tag: None
            }
        );
        assert_eq!(
            Location::parse("docker-archive:/tmp/a.tar:app:1").unwrap(),
            Location::DockerArchive {
                file: "/tmp/a.tar".into(),
                reference: Some("app:1".into())
            }
        );
        assert_eq!(
            Location::parse("ecr://prod/team/app:1.0").unwrap(),
            Location::Ecr {
                integration: "prod".into(),
                repository: "team/app".into(),
                tag: Some("1.0".into()),
                digest: None
            }
        );
        let Location::Registry(r) = Location::parse("127.0.0.1:5080/app:1").unwrap() else {
            panic!("registry expected")
        };
        assert_eq!(r.registry, "127.0.0.1:5080");
        assert!(matches!(
            Location::parse("docker://localhost:5000/a").unwrap(),
            Location::Registry(_)
        ));
        assert!(matches!(
            Location::parse("alpine:3").unwrap(),
            Location::Registry(_)
        ));
    }

    #[test]
    fn names_what_is_wrong() {
        let e = Location::parse("s3://bucket/x").unwrap_err().to_string();
        assert!(e.contains("unknown transport 's3://'"), "{e}");
        let e = Location::parse("dir:/tmp/x").unwrap_err().to_string();
        assert!(e.contains("unknown transport 'dir:'"), "{e}");
        let e = Location::parse("host.io/App:1").unwrap_err().to_string();
        assert!(e.contains("repository"), "{e}");
        assert!(Location::parse("ecr://prod").is_err());
        assert!(Location::parse("oci:").is_err());
    }
}
