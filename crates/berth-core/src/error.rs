use std::fmt;

/// A rule broken by one input field. `field` is the dotted path a client sent (`auth.role_arn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why a domain operation was refused. Adapters map these to their protocol's status codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{0}")]
    Invalid(FieldError),
    #[error("unknown integration type '{0}': supported types are ecr")]
    UnknownType(String),
}

impl From<FieldError> for DomainError {
    fn from(e: FieldError) -> Self {
        DomainError::Invalid(e)
    }
}
