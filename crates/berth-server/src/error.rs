//! The one error type of the REST API: `{"error": {"code", "message", "field"?}}` with the right
//! status. Internal failures are logged in full and shown to clients as a generic message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::{DomainError, FieldError};
use berth_store::StoreError;
use serde_json::{Value, json};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Extra members of the error object, such as the records that block a delete.
    pub details: Vec<(&'static str, Value)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            details: Vec::new(),
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        ApiError {
            message: format!("{field}: {message}"),
            field: Some(field),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_field", "")
        }
    }

    /// Adds a member to the error object (beside `code`, `message` and `field`).
    pub fn with_detail(mut self, key: &'static str, value: Value) -> Self {
        self.details.push((key, value));
        self
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::invalid(e.field, e.message)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid(f) => f.into(),
            DomainError::UnknownType(_) => ApiError {
                field: Some("type".into()),
                ..ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unknown_type",
                    e.to_string(),
                )
            },
        }
    }
}

impl From<berth_aws::BrokerError> for ApiError {
    fn from(e: berth_aws::BrokerError) -> Self {
        let diagnosis = serde_json::to_value(e.diagnosis).unwrap_or(Value::Null);
        let (status, field) = match e.diagnosis {
            berth_aws::Diagnosis::BadRegion => (StatusCode::BAD_REQUEST, Some("region".to_owned())),
            berth_aws::Diagnosis::NotExportable => (StatusCode::CONFLICT, Some("auth".to_owned())),
            berth_aws::Diagnosis::SecretsUnavailable => {
                return secrets_unavailable(e.message);
            }
            _ => (StatusCode::BAD_GATEWAY, None),
        };
        ApiError {
            field,
            details: vec![("diagnosis", diagnosis), ("hint", json!(e.hint))],
            ..ApiError::new(status, "registry_credentials_failed", e.message)
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => ApiError::not_found(e.to_string()),
            StoreError::Duplicate { .. } => ApiError {
                field: Some("name".into()),
                ..ApiError::new(StatusCode::CONFLICT, "duplicate_name", e.to_string())
            },
            StoreError::UnknownReference { ref field, .. } => {
                let field = field.clone();
                let message = e.to_string();
                ApiError {
                    field: Some(field),
                    ..ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", message)
                }
            }
            StoreError::InUse { ref users, .. } => {
                let users = json!(users);
                ApiError {
                    details: vec![("used_by", users)],
                    ..ApiError::new(StatusCode::CONFLICT, "in_use", e.to_string())
                }
            }
            StoreError::Domain(d) => d.into(),
            StoreError::Seal(ref seal) => {
                tracing::error!(error = %seal, "sealed secrets do not open");
                secrets_unavailable(format!("cannot open the integration's secrets: {seal}"))
            }
            StoreError::KeyRotated => {
                tracing::error!(error = %e, "refusing to seal under a retired key");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    e.to_string(),
                )
            }
            StoreError::Database(ref cause) => {
                tracing::error!(error = %cause, "the store is unavailable");
                ApiError {
                    details: vec![(
                        "hint",
                        json!("the database did not answer; retry in a few seconds"),
                    )],
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "store_unavailable",
                        "Berth's database is unavailable; nothing was changed",
                    )
                }
            }
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        for (key, value) in self.details {
            error[key] = value;
        }
        let mut response = (self.status, axum::Json(json!({ "error": error }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"berth\""),
            );
        }
        response
    }
}

/// The one renderer for rejections made outside the handlers (axum's extractors and body
/// limits answer in plain text): any error response that is not already the JSON envelope is
/// rewritten into it, keeping its status and its words.
pub async fn envelope(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            format!(
                "the request body is larger than the {} bytes this endpoint accepts",
                crate::json::BODY_LIMIT
            ),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", text),
        StatusCode::BAD_REQUEST => ("bad_request", text),
        s if s.is_server_error() => ("internal", "internal error; see the server log".to_owned()),
        _ => ("rejected", text),
    };
    let mut rendered = ApiError::new(status, code, message).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rendered.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rendered
}

/// One diagnosis for secrets the running server cannot open, from whichever path met them.
fn secrets_unavailable(message: String) -> ApiError {
    ApiError {
        details: vec![
            ("diagnosis", json!("secrets_unavailable")),
            ("hint", json!(berth_aws::SECRETS_HINT)),
        ],
        ..ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "secrets_unavailable",
            message,
        )
    }
}
