//! The one error type of the REST API: `{"error": {"code", "message", "field"?}}` with the right
//! status. Internal failures are logged in full and shown to clients as a generic message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_api::{ErrorBody, ErrorObject};
use berth_core::{DomainError, FieldError};
use berth_store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// The body's `error` object, as `berth-api` defines it (boxed: errors travel in every
    /// `Result` of the handlers).
    pub body: Box<ErrorObject>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: Box::new(ErrorObject {
                code: code.to_owned(),
                message: message.into(),
                ..ErrorObject::default()
            }),
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            format!("{field}: {}", message.into()),
        );
        e.body.field = Some(field);
        e
    }

    /// Names the request field the error is about.
    pub fn on_field(mut self, field: impl Into<String>) -> Self {
        self.body.field = Some(field.into());
        self
    }

    /// Names the line of the file sent that the error is about.
    pub fn on_line(mut self, line: u64) -> Self {
        self.body.line = Some(line);
        self
    }

    /// A diagnosis code and what to try next.
    fn diagnosed(mut self, diagnosis: String, hint: impl Into<String>) -> Self {
        self.body.diagnosis = Some(diagnosis);
        self.body.hint = Some(hint.into());
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
            DomainError::UnknownType(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_type",
                e.to_string(),
            )
            .on_field("type"),
        }
    }
}

impl From<berth_aws::BrokerError> for ApiError {
    fn from(e: berth_aws::BrokerError) -> Self {
        let (status, field) = match e.diagnosis {
            berth_aws::Diagnosis::BadRegion => (StatusCode::BAD_REQUEST, Some("region")),
            berth_aws::Diagnosis::NotExportable => (StatusCode::CONFLICT, Some("auth")),
            berth_aws::Diagnosis::SecretsUnavailable => {
                return secrets_unavailable(e.message);
            }
            _ => (StatusCode::BAD_GATEWAY, None),
        };
        let mut err = ApiError::new(status, "registry_credentials_failed", e.message)
            .diagnosed(e.diagnosis.code().to_owned(), e.hint);
        err.body.field = field.map(str::to_owned);
        err
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => ApiError::not_found(e.to_string()),
            StoreError::Duplicate { .. } => {
                ApiError::new(StatusCode::CONFLICT, "duplicate_name", e.to_string())
                    .on_field("name")
            }
            StoreError::UnknownReference { ref field, .. } => {
                let field = field.clone();
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", e.to_string())
                    .on_field(field)
            }
            StoreError::InUse { ref users, .. } => {
                let users = users.clone();
                let mut err = ApiError::new(StatusCode::CONFLICT, "in_use", e.to_string());
                err.body.used_by = Some(users);
                err
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
                let mut err = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "Berth's database is unavailable; nothing was changed",
                );
                err.body.hint = Some("the database did not answer; retry in a few seconds".into());
                err
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
        let body = ErrorBody { error: *self.body };
        let mut response = (self.status, axum::Json(body)).into_response();
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
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    // The pages render their own HTML errors; the API's are JSON already.
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
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "secrets_unavailable",
        message,
    )
    .diagnosed("secrets_unavailable".to_owned(), berth_aws::SECRETS_HINT)
}
