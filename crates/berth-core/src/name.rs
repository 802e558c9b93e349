use std::fmt;

use serde::{Deserialize, Serialize};

use crate::FieldError;

/// A record name: 1–64 letters, digits, `.`, `_`, `-`, starting with a letter or digit.
/// Names are unique case-insensitively; `key()` is the form used for that comparison.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Name(String);

pub const NAME_MAX: usize = 64;

impl Name {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        if value.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if value.chars().count() > NAME_MAX {
            return Err(FieldError::new(
                field,
                format!(
                    "must be at most {NAME_MAX} characters (got {})",
                    value.chars().count()
                ),
            ));
        }
        if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(FieldError::new(field, "must start with a letter or digit"));
        }
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(FieldError::new(
                field,
                format!("may contain only letters, digits, '.', '_' and '-' (found {bad:?})"),
            ));
        }
        Ok(Name(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form that uniqueness is checked on.
    pub fn key(&self) -> String {
        Self::key_of(&self.0)
    }

    /// The comparison key of a name as typed (names compare ASCII case-insensitively).
    pub fn key_of(value: &str) -> String {
        value.to_ascii_lowercase()
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Name::parse("name", &s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// A CI project: `org/repo`, each part a [`Name`]-like segment, at most 200 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ProjectName(String);

impl ProjectName {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        if value.len() > 200 {
            return Err(FieldError::new(field, "must be at most 200 characters"));
        }
        let parts: Vec<&str> = value.split('/').collect();
        if parts.len() < 2 {
            return Err(FieldError::new(
                field,
                "must be ORG/REPO (for example acme/web-app)",
            ));
        }
        for part in parts {
            if part.is_empty()
                || !part.starts_with(|c: char| c.is_ascii_alphanumeric())
                || !part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return Err(FieldError::new(
                    field,
                    "each '/'-separated part must start with a letter or digit and contain only letters, digits, '.', '_' and '-'",
                ));
            }
        }
        Ok(ProjectName(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for ProjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        for ok in ["a", "ecr-integration", "A.b_c-9", &"x".repeat(64)] {
            assert!(Name::parse("name", ok).is_ok(), "{ok}");
        }
        let too_long = "x".repeat(65);
        for (bad, rule) in [
            ("", "empty"),
            ("-a", "start"),
            ("_a", "start"),
            ("a b", "' '"),
            ("a/b", "'/'"),
            ("é", "start"),
            (too_long.as_str(), "at most 64"),
        ] {
            let e = Name::parse("name", bad).unwrap_err();
            assert_eq!(e.field, "name");
            assert!(e.message.contains(rule), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn name_key_is_case_insensitive() {
        let a = Name::parse("name", "Prod-ECR").unwrap();
        let b = Name::parse("name", "prod-ecr").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.key(), b.key());
    }

    #[test]
    fn project_names_are_org_slash_repo() {
        assert!(ProjectName::parse("name", "acme/web").is_ok());
        assert!(ProjectName::parse("name", "acme/team/web").is_ok());
        for bad in ["acme", "acme/", "/web", "acme//web", "acme/w b"] {
            assert!(ProjectName::parse("name", bad).is_err(), "{bad}");
        }
    }
}
