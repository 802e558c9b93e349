//! The one error body of the REST API.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error answer: `{"error": {...}}`, with the HTTP status that fits.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorObject,
}

/// An error, written for people, with a stable code for programs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ErrorObject {
    /// A stable code such as `invalid_field`, `not_found`, `in_use` or `store_unavailable`.
    pub code: String,
    /// What happened and what to do about it.
    pub message: String,
    /// The request field the error is about, as a path (`auth.role_arn`, `resources[2]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The line of the file sent (such as `shippable.yml`) that the error is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The records that keep a delete from happening (`in_use`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_by: Option<Vec<String>>,
    /// A diagnosis code for registry and AWS failures (`wrong_secret`, `clock_skew`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<String>,
    /// What to try next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}
