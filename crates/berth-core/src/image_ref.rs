//! Image references as Docker and the OCI distribution spec write them:
//! `[HOST[:PORT]/]REPO[:TAG][@sha256:HEX]`, with Docker Hub's defaults (`docker.io`, `library/`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `host[:port]` as written (Docker Hub is `docker.io`).
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference '{input}': {rule}")]
pub struct RefError {
    pub input: String,
    pub rule: String,
}

fn err(input: &str, rule: impl Into<String>) -> RefError {
    RefError {
        input: input.to_owned(),
        rule: rule.into(),
    }
}

/// `sha256:<64 lowercase hex>` (the only algorithm registries agree on).
pub fn validate_digest(digest: &str) -> Result<(), String> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return Err(format!(
            "digest '{digest}' must be sha256:<64 hex characters>"
        ));
    };
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!(
            "digest '{digest}' must be sha256:<64 lowercase hex characters>"
        ));
    }
    Ok(())
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !first_ok
        || tag.len() > 128
        || !tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(format!(
            "tag '{tag}' must be 1-128 characters of letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        ));
    }
    Ok(())
}

/// A repository path: lowercase components of `[a-z0-9]+([._-][a-z0-9]+)*` joined by `/`.
pub fn validate_repository(repo: &str) -> Result<(), String> {
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|&x| {
                x.is_ascii_lowercase() || x.is_ascii_digit() || matches!(x, b'.' | b'_' | b'-')
            })
            && !c.contains("..")
    };
    if repo.is_empty() || repo.len() > 255 || !repo.split('/').all(component_ok) {
        return Err(format!(
            "repository '{repo}' must be lowercase path components of letters, digits and single '.', '_' or '-' separators, joined by '/'"
        ));
    }
    Ok(())
}

/// Percent-encodes a URL path or query component (RFC 3986 unreserved characters pass).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Undoes [`percent_encode`] (and any other `%XX` escape); a malformed escape stays as it is.
pub fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl ImageRef {
    pub fn parse(input: &str) -> Result<ImageRef, RefError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(err(input, "it is empty"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                validate_digest(d).map_err(|rule| err(input, rule))?;
                (r, Some(d.to_owned()))
            }
            None => (s, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a port.
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_owned())),
            _ => (rest, None),
        };
        if let Some(t) = &tag {
            validate_tag(t).map_err(|rule| err(input, rule))?;
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_ascii_lowercase(), path.to_owned())
            }
            Some(_) => ("docker.io".to_owned(), name.to_owned()),
            None => ("docker.io".to_owned(), format!("library/{name}")),
        };
        validate_repository(&repository).map_err(|rule| err(input, rule))?;
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host the registry API answers on (Docker Hub's differs from its name).
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// What to ask the registry for: the digest when pinned, else the tag, else `latest`.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_decoding_undoes_encoding_and_keeps_malformed_escapes() {
        let text = "{\"AWS\": \"arn:aws:iam::1:role/a b\"} ü%";
        assert_eq!(super::percent_decode(&super::percent_encode(text)), text);
        assert_eq!(super::percent_decode("%4"), "%4");
        assert_eq!(super::percent_decode("%+1x%zz%41"), "%+1x%zzA");
    }

    use super::*;

    #[test]
    fn parses_hosts_ports_tags_and_digests() {
        let r = ImageRef::parse("127.0.0.1:5080/team/app:1.2").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5080");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("1.2"));
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("localhost:5000/app@{d}")).unwrap();
        assert_eq!(r.reference(), d);
        assert_eq!(r.tag, None);
        let r = ImageRef::parse("alpine").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.reference()),
            ("docker.io", "library/alpine", "latest")
        );
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = ImageRef::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/a/b:v1").unwrap();
        assert_eq!(
            r.to_string(),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/a/b:v1"
        );
    }

    #[test]
    fn refuses_what_registries_refuse() {
        for bad in [
            "",
            "host.io/UPPER:1",
            "host.io/app:-bad",
            "host.io/app@sha256:abc",
            "host.io/app@md5:00",
            "host.io/a//b",
            "host.io/app:",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
        let e = ImageRef::parse("host.io/app@sha256:xyz").unwrap_err();
        assert!(e.to_string().contains("sha256:<64"), "{e}");
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Hostile input yields a result or an error, never a panic.
        #[test]
        fn any_text_parses_or_is_refused(text in "\\PC{0,80}") {
            let _ = ImageRef::parse(&text);
        }

        /// What parses prints back to something that parses to the same reference.
        #[test]
        fn valid_references_round_trip(
            host in "(localhost:[0-9]{2,5}|[a-z]{1,8}\\.[a-z]{2,3}(:[0-9]{2,5})?)",
            repo in "[a-z0-9]{1,8}(/[a-z0-9]{1,8}([._-][a-z0-9]{1,4})?){0,3}",
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
            digest in proptest::option::of("[0-9a-f]{64}"),
        ) {
            let mut text = format!("{host}/{repo}");
            if let Some(t) = &tag { text.push(':'); text.push_str(t); }
            if let Some(d) = &digest { text.push_str("@sha256:"); text.push_str(d); }
            let r = ImageRef::parse(&text).unwrap();
            prop_assert_eq!(&r.repository, &repo);
            prop_assert_eq!(&r.tag, &tag);
            prop_assert_eq!(ImageRef::parse(&r.to_string()).unwrap(), r);
        }
    }
}
