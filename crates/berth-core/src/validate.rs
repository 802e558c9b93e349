//! Field rules for AWS settings, written out by hand so the messages can say which rule broke.

use crate::FieldError;

pub const DEFAULT_REGION: &str = "us-east-1";

fn is_lower_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase())
}

/// AWS region codes in every partition: `us-east-1`, `eu-central-2`, `cn-north-1`,
/// `us-gov-west-1`, `us-iso-east-1`, `us-isob-east-1`, `eusc-de-east-1`.
pub fn validate_region(field: &str, region: &str) -> Result<(), FieldError> {
    let rule = || {
        FieldError::new(
            field,
            format!(
                "'{region}' is not an AWS region code (expected the form us-east-1, cn-north-1 or us-gov-west-1)"
            ),
        )
    };
    let parts: Vec<&str> = region.split('-').collect();
    let (prefix, rest) = match parts.as_slice() {
        [p, rest @ ..] => (*p, rest),
        [] => return Err(rule()),
    };
    if !(2..=4).contains(&prefix.len()) || !is_lower_word(prefix) {
        return Err(rule());
    }
    let rest = match rest {
        [q, rest @ ..] if matches!(*q, "gov" | "iso" | "isob" | "isoe" | "isof") => rest,
        // The European Sovereign Cloud names a country: eusc-de-east-1.
        [q, rest @ ..] if prefix == "eusc" && q.len() == 2 && is_lower_word(q) => rest,
        rest => rest,
    };
    match rest {
        [direction, number]
            if is_lower_word(direction)
                && (1..=2).contains(&number.len())
                && number.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(())
        }
        _ => Err(rule()),
    }
}

/// `arn:<partition>:iam::<12 digits>:role/<optional path/>name`.
pub fn validate_role_arn(field: &str, arn: &str) -> Result<(), FieldError> {
    let rule = |why: &str| {
        FieldError::new(
            field,
            format!(
                "'{arn}' is not an IAM role ARN ({why}; expected arn:aws:iam::123456789012:role/NAME)"
            ),
        )
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn_word, partition, service, region, account, resource] = parts.as_slice() else {
        return Err(rule("it needs six ':'-separated parts"));
    };
    if *arn_word != "arn" {
        return Err(rule("it must start with 'arn:'"));
    }
    if !matches!(
        *partition,
        "aws"
            | "aws-cn"
            | "aws-us-gov"
            | "aws-iso"
            | "aws-iso-b"
            | "aws-iso-e"
            | "aws-iso-f"
            | "aws-eusc"
    ) {
        return Err(rule("unknown partition"));
    }
    if *service != "iam" || !region.is_empty() {
        return Err(rule("the service must be iam with an empty region"));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(rule("the account id must be 12 digits"));
    }
    let Some(path_and_name) = resource.strip_prefix("role/") else {
        return Err(rule("the resource must start with role/"));
    };
    let name = path_and_name.rsplit('/').next().unwrap_or_default();
    let name_ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    let path_ok = path_and_name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c));
    if !name_ok || !path_ok {
        return Err(rule(
            "the role name must be 1-64 letters, digits or +=,.@_- characters",
        ));
    }
    Ok(())
}

/// STS ExternalId: 2–1224 characters of `[\w+=,.@:/-]`.
pub fn validate_external_id(field: &str, value: &str) -> Result<(), FieldError> {
    let ok = (2..=1224).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            "must be 2-1224 letters, digits or _+=,.@:/- characters",
        ))
    }
}

/// STS RoleSessionName: 2–64 characters of `[\w+=,.@-]`.
pub fn validate_session_name(field: &str, value: &str) -> Result<(), FieldError> {
    let ok = (2..=64).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            "must be 2-64 letters, digits or _+=,.@- characters",
        ))
    }
}

/// An AWS account id, which is what ECR calls a registry id.
pub fn validate_registry_id(field: &str, value: &str) -> Result<(), FieldError> {
    if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("'{value}' is not an AWS account id (expected 12 digits)"),
        ))
    }
}

/// An endpoint override: an absolute `http://` or `https://` URL with a host and no query.
pub fn validate_endpoint(field: &str, value: &str) -> Result<(), FieldError> {
    let rule = |why: &str| {
        FieldError::new(
            field,
            format!(
                "'{value}' is not a usable endpoint URL ({why}; expected e.g. https://api.ecr.us-east-1.amazonaws.com or http://127.0.0.1:5080)"
            ),
        )
    };
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or_else(|| rule("the scheme must be http or https"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.starts_with(':') {
        return Err(rule("it has no host"));
    }
    if value.len() > 2048 {
        return Err(rule("it is longer than 2048 characters"));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(rule(&format!(
            "it contains the control character {}",
            char_name(c)
        )));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(rule("it contains whitespace"));
    }
    if rest.contains(['?', '#', '@']) {
        return Err(rule("it must not carry a query, fragment or user info"));
    }
    if let Some((_, port)) = authority.rsplit_once(':')
        && !authority.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(rule("the port is not a number from 0 to 65535"));
    }
    Ok(())
}

/// AWS access key ids are 16–128 upper-case letters and digits (`AKIA…`, `ASIA…`).
pub fn validate_access_key_id(field: &str, value: &str) -> Result<(), FieldError> {
    let ok = (16..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            "must be 16-128 upper-case letters and digits (an AWS access key id such as AKIA...)",
        ))
    }
}

/// A secret must be present and free of whitespace: a pasted trailing newline is the classic
/// cause of "SignatureDoesNotMatch" that nobody can read.
pub fn validate_secret(field: &str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if value.len() > 1024 {
        return Err(FieldError::new(field, "must be at most 1024 characters"));
    }
    if let Some(c) = value.chars().find(|c| c.is_control() && !c.is_whitespace()) {
        return Err(FieldError::new(
            field,
            format!(
                "must not contain control characters (found {})",
                char_name(c)
            ),
        ));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(FieldError::new(
            field,
            "must not contain whitespace (a trailing newline from a pasted key?)",
        ));
    }
    Ok(())
}

/// A character as a person can read it in an error message: `U+0000 (NUL)`, `U+001B`.
pub fn char_name(c: char) -> String {
    match c {
        '\0' => "U+0000 (NUL)".to_owned(),
        c => format!("U+{:04X}", c as u32),
    }
}

/// A list filter's text: printable, and short enough to be a name.
pub fn validate_filter_text(field: &str, value: &str) -> Result<(), FieldError> {
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(FieldError::new(
            field,
            format!(
                "must not contain control characters (found {})",
                char_name(c)
            ),
        ));
    }
    if value.chars().count() > 256 {
        return Err(FieldError::new(field, "must be at most 256 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_in_every_partition() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "ap-southeast-4",
            "cn-north-1",
            "cn-northwest-1",
            "us-gov-west-1",
            "us-iso-east-1",
            "us-isob-east-1",
            "il-central-1",
            "eusc-de-east-1",
        ] {
            assert!(validate_region("region", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "us-east",
            "US-EAST-1",
            "us_east_1",
            "useast1",
            "us-east-1a",
            "us-east-100",
            "u-east-1",
            "us-gov-1",
            "us--1",
        ] {
            let e = validate_region("region", bad).unwrap_err();
            assert_eq!(e.field, "region");
        }
    }

    #[test]
    fn role_arns() {
        for ok in [
            "arn:aws:iam::123456789012:role/ecr-pull",
            "arn:aws-cn:iam::123456789012:role/team/a/ci+pull",
            "arn:aws-us-gov:iam::123456789012:role/r",
        ] {
            assert!(validate_role_arn("auth.role_arn", ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("role/ecr", "six"),
            ("arn:aws:iam::12345:role/x", "12 digits"),
            ("arn:aws:s3::123456789012:role/x", "service"),
            ("arn:aws:iam::123456789012:user/x", "role/"),
            ("arn:aws:iam::123456789012:role/", "role name"),
            ("arn:moon:iam::123456789012:role/x", "partition"),
        ] {
            let e = validate_role_arn("auth.role_arn", bad).unwrap_err();
            assert!(e.message.contains(why), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn endpoints() {
        for ok in [
            "http://127.0.0.1:5080",
            "https://api.ecr-fips.us-east-1.amazonaws.com",
            "https://api.ecr.cn-north-1.amazonaws.com.cn/",
            "http://[::1]:5080",
        ] {
            assert!(validate_endpoint("endpoint", ok).is_ok(), "{ok}");
        }
        for bad in [
            "127.0.0.1:5080",
            "ftp://x",
            "http://",
            "http://a b",
            "http://h:99999",
            "http://h/?q=1",
        ] {
            assert!(validate_endpoint("endpoint", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_and_ids() {
        assert!(validate_access_key_id("k", "AKIAEXAMPLEELE12").is_ok());
        assert!(validate_access_key_id("k", "akiaexampleexample12").is_err());
        assert!(validate_access_key_id("k", "AKIA").is_err());
        assert!(validate_secret("s", "abc/+def").is_ok());
        assert!(
            validate_secret("s", "abc\n")
                .unwrap_err()
                .message
                .contains("whitespace")
        );
        assert!(validate_registry_id("r", "123456789012").is_ok());
        assert!(validate_registry_id("r", "12345678901a").is_err());
        assert!(validate_external_id("e", "x").is_err());
        assert!(validate_session_name("s", "berth-ci").is_ok());
        assert!(validate_session_name("s", "has space").is_err());
    }
}
