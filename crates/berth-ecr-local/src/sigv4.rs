//! AWS Signature Version 4, verifier side: rebuilds the canonical request the client signed and
//! compares signatures in constant time. Proved against the signing test suite that ships in
//! the `aws-sigv4` crate (copied under `tests/sigv4-vectors`).

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::PrimitiveDateTime;
use time::macros::format_description;

use crate::ids::hex;

type HmacSha256 = Hmac<Sha256>;

/// What the `Authorization` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("Missing Authentication Token")]
    Missing,
    #[error("{0}")]
    Malformed(String),
}

/// Parses `AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request,
/// SignedHeaders=host;x-amz-date, Signature=…`.
pub fn parse_authorization(value: &str) -> Result<Authorization, SigError> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
        SigError::Malformed("Authorization header requires the AWS4-HMAC-SHA256 algorithm".into())
    })?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(SigError::Malformed(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters".into(),
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, terminator] = scope.as_slice() else {
        return Err(SigError::Malformed(format!(
            "Credential should be scoped to a valid region, not '{credential}'"
        )));
    };
    if *terminator != "aws4_request" {
        return Err(SigError::Malformed(
            "Credential should be scoped with a valid terminator: 'aws4_request'".into(),
        ));
    }
    Ok(Authorization {
        access_key_id: akid.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: signed.split(';').map(str::to_owned).collect(),
        signature: signature.to_owned(),
    })
}

/// Parses `X-Amz-Date` (`20150830T123600Z`) to epoch seconds.
pub fn parse_amz_date(value: &str) -> Option<i64> {
    let f = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(value, f)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// AWS's URI encoding: everything but `A-Za-z0-9-_.~` as `%XX`; `/` kept when `keep_slash`.
fn uri_encode(value: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) use berth_core::percent_decode;

/// Removes `.` and `..` segments and empty segments, as SDKs do before signing.
fn normalize_path(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut p = format!("/{}", out.join("/"));
    if path.ends_with('/') && p.len() > 1 {
        p.push('/');
    }
    p
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Header values with leading/trailing space trimmed and inner runs of spaces collapsed.
fn canonical_value(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(",")
}

/// The pieces of a request that SigV4 covers.
pub struct RequestParts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// All headers as (lower-case name, value), in arrival order.
    pub headers: Vec<(String, &'a str)>,
    pub payload_sha256: String,
}

pub fn canonical_request(req: &RequestParts<'_>, auth: &Authorization) -> String {
    let mut headers = String::new();
    for name in &auth.signed_headers {
        let values: Vec<&str> = req
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .collect();
        headers.push_str(&format!("{name}:{}\n", canonical_value(&values)));
    }
    // Non-S3 services sign the path URI-encoded once more than it travels.
    let path = uri_encode(&normalize_path(req.path), true);
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        path,
        canonical_query(req.query),
        headers,
        auth.signed_headers.join(";"),
        req.payload_sha256
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

pub fn expected_signature(
    secret: &str,
    amz_date: &str,
    auth: &Authorization,
    canonical: &str,
) -> String {
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    let k_region = hmac(&k_date, auth.region.as_bytes());
    let k_service = hmac(&k_region, auth.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    hex(&hmac(&k_signing, to_sign.as_bytes()))
}

/// True when the request's signature is the one `secret` produces.
pub fn verify(secret: &str, amz_date: &str, auth: &Authorization, req: &RequestParts<'_>) -> bool {
    let expected = expected_signature(secret, amz_date, auth, &canonical_request(req, auth));
    expected.as_bytes().ct_eq(auth.signature.as_bytes()).into()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_header_parses_and_rejects() {
        let a = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ecr/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
        )
        .unwrap();
        assert_eq!(a.region, "us-east-1");
        assert_eq!(a.signed_headers, ["host", "x-amz-date"]);
        assert!(parse_authorization("Basic abc").is_err());
        assert!(
            parse_authorization("AWS4-HMAC-SHA256 Credential=A/B, SignedHeaders=h, Signature=s")
                .is_err()
        );
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1440938160));
        assert!(parse_amz_date("2015-08-30").is_none());
    }

    #[test]
    fn paths_normalize_like_the_sdks() {
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path("/example/.."), "/");
        assert_eq!(normalize_path("//example//"), "/example/");
        assert_eq!(normalize_path("/./a/./b"), "/a/b");
    }
}
