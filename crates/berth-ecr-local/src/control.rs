//! `POST /`: the AWS control planes. A request with `X-Amz-Target` is ECR (JSON 1.1), a form
//! body is STS (query protocol). Both are authenticated with SigV4 before anything else runs.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::Response;

use crate::error::AwsError;
use crate::iam::Identity;
use crate::sigv4;
use crate::storage::now_epoch;
use crate::{State, ecr_api, sts};

/// ECR's UploadLayerPart carries base64 parts in JSON; 64 MiB is ample for any sane part.
const CONTROL_BODY_LIMIT: usize = 64 * 1024 * 1024;
const MAX_SKEW_SECONDS: i64 = 15 * 60;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Ecr,
    Sts,
}

impl Dialect {
    fn unknown_key(self) -> &'static str {
        match self {
            Dialect::Ecr => "UnrecognizedClientException",
            Dialect::Sts => "InvalidClientTokenId",
        }
    }
    fn bad_signature(self) -> &'static str {
        match self {
            Dialect::Ecr => "InvalidSignatureException",
            Dialect::Sts => "SignatureDoesNotMatch",
        }
    }
    fn missing(self) -> &'static str {
        match self {
            Dialect::Ecr => "MissingAuthenticationTokenException",
            Dialect::Sts => "MissingAuthenticationToken",
        }
    }
    fn expired_token(self) -> &'static str {
        match self {
            Dialect::Ecr => "ExpiredTokenException",
            Dialect::Sts => "ExpiredToken",
        }
    }
    pub fn render(self, e: AwsError) -> Response {
        match self {
            Dialect::Ecr => e.json(),
            Dialect::Sts => e.xml(),
        }
    }
}

pub struct Caller {
    pub identity: Identity,
    /// `user:<name>` or `role:<name>`, the principal registry tokens name.
    pub principal: String,
    pub region: String,
}

fn fmt_amz(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .map(|t| {
            format!(
                "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_default()
}

/// Verifies the SigV4 signature and resolves the caller.
pub async fn authenticate(
    state: &State,
    dialect: Dialect,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Caller, AwsError> {
    let invalid_token = || {
        AwsError::new(
            dialect.unknown_key(),
            "The security token included in the request is invalid.",
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            AwsError::new(dialect.missing(), "Missing Authentication Token")
                .status(axum::http::StatusCode::FORBIDDEN)
        })?;
    let auth = sigv4::parse_authorization(value)
        .map_err(|e| AwsError::new("IncompleteSignatureException", e.to_string()))?;
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| AwsError::new("IncompleteSignatureException", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."))?;
    let signed_at = sigv4::parse_amz_date(amz_date).ok_or_else(|| {
        AwsError::new(
            "IncompleteSignatureException",
            format!("Date must be in ISO-8601 'basic format'. Got '{amz_date}'."),
        )
    })?;
    let now = now_epoch() + state.clock_offset_seconds;
    if (now - signed_at).abs() > MAX_SKEW_SECONDS {
        let message = if signed_at < now {
            format!(
                "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
                fmt_amz(now - MAX_SKEW_SECONDS),
                fmt_amz(now)
            )
        } else {
            format!(
                "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
                fmt_amz(now + MAX_SKEW_SECONDS),
                fmt_amz(now)
            )
        };
        return Err(AwsError::new(dialect.bad_signature(), message)
            .status(axum::http::StatusCode::FORBIDDEN));
    }
    // Resolve the secret: a configured user, or a session STS issued.
    let (secret, identity, principal) =
        if let Some(user) = state.iam.user_by_key(&auth.access_key_id) {
            (
                user.secret_access_key.clone(),
                state.iam.user_identity(user),
                format!("user:{}", user.name),
            )
        } else {
            let session = state
                .storage
                .session(&auth.access_key_id)
                .await
                .map_err(AwsError::server)?;
            let Some((token_hash, role_name, session_name, expires_at)) = session else {
                return Err(invalid_token());
            };
            let presented = headers
                .get("x-amz-security-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if crate::storage::sha256_hex(presented.as_bytes()) != token_hash {
                return Err(invalid_token());
            }
            if expires_at <= now {
                return Err(AwsError::new(
                    dialect.expired_token(),
                    "The security token included in the request is expired",
                ));
            }
            let role = state
                .iam
                .role_by_name(&role_name)
                .ok_or_else(invalid_token)?;
            (
                state.keys.session_secret(&auth.access_key_id),
                state
                    .iam
                    .session_identity(role, &session_name, &auth.access_key_id),
                format!("role:{role_name}"),
            )
        };
    let body_hash = sigv4::sha256_hex(body);
    let payload = match headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        Some(declared) if declared != body_hash && declared != "UNSIGNED-PAYLOAD" => {
            return Err(AwsError::new(
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
        Some(declared) => declared.to_owned(),
        None => body_hash,
    };
    let header_list: Vec<(String, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("")))
        .collect();
    let parts = sigv4::RequestParts {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: header_list,
        payload_sha256: payload,
    };
    if !sigv4::verify(&secret, amz_date, &auth, &parts) {
        return Err(AwsError::new(
            dialect.bad_signature(),
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        )
        .status(axum::http::StatusCode::FORBIDDEN));
    }
    Ok(Caller {
        identity,
        principal,
        region: auth.region,
    })
}

pub async fn handle(
    AxState(state): AxState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let dialect = if headers.contains_key("x-amz-target") {
        Dialect::Ecr
    } else {
        Dialect::Sts
    };
    let body = match to_bytes(body, CONTROL_BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return dialect.render(
                AwsError::new(
                    "InvalidParameterException",
                    "Request body is larger than 64 MiB.",
                )
                .status(axum::http::StatusCode::PAYLOAD_TOO_LARGE),
            );
        }
    };
    // AssumeRoleWithWebIdentity is unsigned: the web identity token is the credential.
    if dialect == Dialect::Sts && sts::is_web_identity(&body) {
        return sts::web_identity(&state, &body).await;
    }
    let caller = match authenticate(&state, dialect, &method, &uri, &headers, &body).await {
        Ok(c) => c,
        Err(e) => return dialect.render(e),
    };
    match dialect {
        Dialect::Ecr => {
            let target = headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            state.count(target.trim_start_matches("AmazonEC2ContainerRegistry_V20150921."));
            ecr_api::handle(&state, &caller, target, &body).await
        }
        Dialect::Sts => sts::handle(&state, &caller, &body).await,
    }
}
