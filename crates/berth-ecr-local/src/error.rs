//! The three error dialects the local ECR speaks, each rendered the way its real counterpart
//! renders it: ECR's JSON 1.1 (`__type` + `x-amzn-errortype`), STS's XML, and the OCI
//! distribution envelope. Internal failures are logged and shown as a generic server error.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An AWS API error: `code` without the `Exception` suffix handling (callers pass the full code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl AwsError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        AwsError {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn server(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "local ECR internal error");
        AwsError::new("ServerException", "An internal error occurred.")
            .status(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// ECR's JSON 1.1 rendering.
    pub fn json(self) -> Response {
        let mut r = (
            self.status,
            [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
            json!({"__type": self.code, "message": self.message}).to_string(),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(self.code) {
            r.headers_mut().insert("x-amzn-errortype", v);
        }
        r
    }

    /// STS's query-protocol XML rendering.
    pub fn xml(self) -> Response {
        self.xml_in("https://sts.amazonaws.com/doc/2011-06-15/")
    }

    /// The query-protocol XML rendering in a service's namespace (STS, IAM).
    pub fn xml_in(self, namespace: &str) -> Response {
        let body = format!(
            "<ErrorResponse xmlns=\"{namespace}\"><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            if self.status.is_server_error() {
                "Receiver"
            } else {
                "Sender"
            },
            self.code,
            xml_escape(&self.message),
            crate::ids::request_id()
        );
        (self.status, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
    }
}

pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// An OCI distribution error (`{"errors":[{"code","message","detail"}]}`).
#[derive(Debug)]
pub struct OciError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub www_authenticate: Option<String>,
    pub range: Option<String>,
}

impl OciError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        OciError {
            status,
            code,
            message: message.into(),
            www_authenticate: None,
            range: None,
        }
    }

    pub fn name_unknown(repo: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("The repository with name '{repo}' does not exist in the registry"),
        )
    }

    pub fn blob_unknown(digest: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!("blob {digest} unknown to registry"),
        )
    }

    pub fn manifest_unknown(reference: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("Requested image not found: {reference}"),
        )
    }

    pub fn upload_unknown() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "blob upload unknown to registry",
        )
    }

    pub fn digest_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", message)
    }

    pub fn server(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "local ECR registry internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            "internal server error",
        )
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let body = json!({"errors": [{"code": self.code, "message": self.message, "detail": {}}]});
        let mut r = (
            self.status,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body.to_string(),
        )
            .into_response();
        if let Some(v) = self
            .www_authenticate
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        if let Some(v) = self.range.and_then(|v| HeaderValue::from_str(&v).ok()) {
            r.headers_mut().insert(header::RANGE, v);
        }
        r
    }
}
