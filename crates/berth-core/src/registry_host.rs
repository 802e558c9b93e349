//! Which registry host an integration answers for, and what an ECR host name says: account,
//! region and flavour, in every partition (`dkr.ecr.<region>.amazonaws.com`, `dkr.ecr-fips…`,
//! `….amazonaws.com.cn`, dual-stack `dkr-ecr.<region>.on.aws`).

use crate::{EcrConfig, validate_region};

/// The account and region an ECR registry host names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrHost {
    pub registry_id: String,
    pub region: String,
}

/// `https://123456789012.dkr.ecr.us-west-2.amazonaws.com/v2/` → the bare `host[:port]`.
pub fn normalize_host(server_url: &str) -> String {
    let s = server_url.trim();
    let s = s.split_once("://").map(|(_, rest)| rest).unwrap_or(s);
    s.split('/').next().unwrap_or("").to_ascii_lowercase()
}

pub fn parse_ecr_host(host: &str) -> Option<EcrHost> {
    let host = normalize_host(host);
    let (account, rest) = host.split_once('.')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let region = if let Some(r) = rest
        .strip_prefix("dkr.ecr.")
        .or_else(|| rest.strip_prefix("dkr.ecr-fips."))
    {
        r.strip_suffix(".amazonaws.com")
            .or_else(|| r.strip_suffix(".amazonaws.com.cn"))?
    } else {
        rest.strip_prefix("dkr-ecr.")?.strip_suffix(".on.aws")?
    };
    validate_region("host", region).ok()?;
    Some(EcrHost {
        registry_id: account.to_owned(),
        region: region.to_owned(),
    })
}

/// How well an integration answers for `host`: `Some(region)` to use when it does (the host's
/// region for AWS hosts, the integration's own for an endpoint override).
pub fn serves_host(ecr: &EcrConfig, host: &str) -> Option<String> {
    let host = normalize_host(host);
    if let Some(endpoint) = &ecr.endpoint
        && normalize_host(endpoint) == host
    {
        return Some(ecr.region.clone());
    }
    let parsed = parse_ecr_host(&host)?;
    (ecr.registry_id.as_deref() == Some(parsed.registry_id.as_str())).then_some(parsed.region)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AwsAuth;

    #[test]
    fn ecr_hosts_in_every_partition() {
        for (host, region) in [
            ("123456789012.dkr.ecr.us-west-2.amazonaws.com", "us-west-2"),
            (
                "https://123456789012.dkr.ecr.us-west-2.amazonaws.com/v2/",
                "us-west-2",
            ),
            (
                "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
                "us-gov-west-1",
            ),
            (
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
                "cn-north-1",
            ),
            ("123456789012.dkr-ecr.eu-central-1.on.aws", "eu-central-1"),
        ] {
            let h = parse_ecr_host(host).unwrap_or_else(|| panic!("{host}"));
            assert_eq!(
                (h.registry_id.as_str(), h.region.as_str()),
                ("123456789012", region)
            );
        }
        for bad in [
            "docker.io",
            "12345.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.nowhere.amazonaws.com",
            "123456789012.s3.amazonaws.com",
        ] {
            assert!(parse_ecr_host(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn integrations_serve_their_endpoint_or_their_account() {
        let mut ecr = EcrConfig {
            region: "us-east-1".into(),
            auth: AwsAuth::Ambient,
            registry_id: Some("123456789012".into()),
            endpoint: None,
            export_long_lived_keys: false,
        };
        assert_eq!(
            serves_host(&ecr, "123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            Some("eu-west-1".into())
        );
        assert_eq!(
            serves_host(&ecr, "999999999999.dkr.ecr.eu-west-1.amazonaws.com"),
            None
        );
        ecr.endpoint = Some("http://127.0.0.1:5080".into());
        assert_eq!(
            serves_host(&ecr, "127.0.0.1:5080"),
            Some("us-east-1".into())
        );
        assert_eq!(
            serves_host(&ecr, "http://127.0.0.1:5080/v2/"),
            Some("us-east-1".into())
        );
        assert_eq!(serves_host(&ecr, "127.0.0.1:5081"), None);
    }
}
