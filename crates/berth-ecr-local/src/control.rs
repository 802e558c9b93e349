//! `POST /`: the AWS control planes. A request with `X-Amz-Target` is ECR (JSON 1.1), a form
//! body is STS or, when its signature is scoped to `iam`, IAM (query protocol). All are
//! authenticated with SigV4 before anything else runs.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::Response;

use crate::error::AwsError;
use crate::iam::Identity;
use crate::sigv4;
use crate::storage::{SessionHolder, now_epoch};
use crate::{State, ecr_api, iam_api, sts};

/// The largest body each operation can legitimately carry. UploadLayerPart's 20 MiB parts travel
/// base64 in JSON (4/3 larger); a manifest is at most 4 MiB, JSON-escaped in PutImage.
fn body_limit(dialect: Dialect, target: &str) -> usize {
    const MIB: usize = 1024 * 1024;
    match dialect {
        // AssumeRoleWithWebIdentity's token is at most 20,000 characters; policies are small.
        Dialect::Sts | Dialect::Iam => 64 * 1024,
        Dialect::Ecr => match target.trim_start_matches(ECR_TARGET_PREFIX) {
            "UploadLayerPart" => 28 * MIB,
            "PutImage" => 10 * MIB,
            _ => MIB,
        },
    }
}

const ECR_TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921.";

/// Bodies above this size wait for one of [`LARGE_BODY_PERMITS`] before they are read, so
/// concurrent large requests cannot take the process's memory.
const LARGE_BODY: usize = 1024 * 1024;
pub(crate) const LARGE_BODY_PERMITS: usize = 8;
const MAX_SKEW_SECONDS: i64 = 15 * 60;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Ecr,
    Sts,
    Iam,
}

impl Dialect {
    fn unknown_key(self) -> &'static str {
        match self {
            Dialect::Ecr => "UnrecognizedClientException",
            Dialect::Sts | Dialect::Iam => "InvalidClientTokenId",
        }
    }
    fn bad_signature(self) -> &'static str {
        match self {
            Dialect::Ecr => "InvalidSignatureException",
            Dialect::Sts | Dialect::Iam => "SignatureDoesNotMatch",
        }
    }
    fn missing(self) -> &'static str {
        match self {
            Dialect::Ecr => "MissingAuthenticationTokenException",
            Dialect::Sts | Dialect::Iam => "MissingAuthenticationToken",
        }
    }
    fn expired_token(self) -> &'static str {
        match self {
            Dialect::Ecr => "ExpiredTokenException",
            Dialect::Sts | Dialect::Iam => "ExpiredToken",
        }
    }
    pub fn render(self, e: AwsError) -> Response {
        match self {
            Dialect::Ecr => e.json(),
            Dialect::Sts => e.xml(),
            Dialect::Iam => e.xml_in(iam_api::NS),
        }
    }
}

pub struct Caller {
    pub identity: Identity,
    /// `user:<name>` or `role:<name>`, the principal registry tokens name.
    pub principal: String,
    pub region: String,
    /// Signed with temporary (STS-issued) credentials.
    pub temporary: bool,
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

/// Who signed a request, as its headers say: everything SigV4 checks before the body is read.
pub struct Signer {
    auth: sigv4::Authorization,
    amz_date: String,
    key: KeyOwner,
}

/// Who an access key id belongs to and the secret its signatures are made with.
struct KeyOwner {
    secret: String,
    identity: Identity,
    principal: String,
    /// Issued by STS (a session) rather than configured.
    temporary: bool,
}

/// The headers a signature must cover, so that nothing that picks the operation or the identity
/// can be changed after signing.
fn require_signed(
    dialect: Dialect,
    auth: &sigv4::Authorization,
    headers: &HeaderMap,
) -> Result<(), AwsError> {
    let signed = |name: &str| auth.signed_headers.iter().any(|h| h == name);
    let mut required = vec![
        ("host", "'Host' or ':authority'"),
        ("x-amz-date", "'X-Amz-Date'"),
    ];
    if dialect == Dialect::Ecr {
        required.push(("x-amz-target", "'X-Amz-Target'"));
    }
    if headers.contains_key("x-amz-security-token") {
        required.push(("x-amz-security-token", "'X-Amz-Security-Token'"));
    }
    match required.into_iter().find(|(name, _)| !signed(name)) {
        Some((_, shown)) => Err(AwsError::new(
            "IncompleteSignatureException",
            format!("{shown} must be a 'SignedHeader' in the AWS Authorization."),
        )),
        None => Ok(()),
    }
}

/// The credential scope must name this endpoint's service and a region code.
fn check_scope(dialect: Dialect, auth: &sigv4::Authorization) -> Result<(), AwsError> {
    let service = match dialect {
        Dialect::Ecr => "ecr",
        Dialect::Sts => "sts",
        Dialect::Iam => "iam",
    };
    let refuse = |message: String| {
        AwsError::new(dialect.bad_signature(), message).status(axum::http::StatusCode::FORBIDDEN)
    };
    if auth.service != service {
        return Err(refuse(format!(
            "Credential should be scoped to correct service: '{service}'."
        )));
    }
    if berth_core::validate_region("region", &auth.region).is_err() {
        return Err(refuse(format!(
            "Credential should be scoped to a valid region, not '{}'.",
            auth.region
        )));
    }
    Ok(())
}

fn check_clock(state: &State, dialect: Dialect, amz_date: &str) -> Result<(), AwsError> {
    let signed_at = sigv4::parse_amz_date(amz_date).ok_or_else(|| {
        AwsError::new(
            "IncompleteSignatureException",
            format!("Date must be in ISO-8601 'basic format'. Got '{amz_date}'."),
        )
    })?;
    let now = now_epoch() + state.clock_offset_seconds;
    if (now - signed_at).abs() <= MAX_SKEW_SECONDS {
        return Ok(());
    }
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
    Err(AwsError::new(dialect.bad_signature(), message).status(axum::http::StatusCode::FORBIDDEN))
}

/// Checks everything the headers alone can tell — the signature's form, the signed headers, the
/// scope, the clock, a known key and its session token — before a byte of the body is read.
pub async fn identify(
    state: &State,
    dialect: Dialect,
    headers: &HeaderMap,
) -> Result<Signer, AwsError> {
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
        .ok_or_else(|| AwsError::new("IncompleteSignatureException", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."))?
        .to_owned();
    require_signed(dialect, &auth, headers)?;
    check_scope(dialect, &auth)?;
    check_clock(state, dialect, &amz_date)?;
    let key = resolve_key(state, dialect, &auth.access_key_id, headers).await?;
    Ok(Signer {
        auth,
        amz_date,
        key,
    })
}

/// The secret behind an access key id: a configured user's, or a session STS issued.
async fn resolve_key(
    state: &State,
    dialect: Dialect,
    access_key_id: &str,
    headers: &HeaderMap,
) -> Result<KeyOwner, AwsError> {
    let invalid_token = || {
        AwsError::new(
            dialect.unknown_key(),
            "The security token included in the request is invalid.",
        )
    };
    if let Some(user) = state.iam.user_by_key(access_key_id) {
        return Ok(KeyOwner {
            secret: user.secret_access_key.clone(),
            identity: state.iam.user_identity(user),
            principal: format!("user:{}", user.name),
            temporary: false,
        });
    }
    let session = state
        .storage
        .session(access_key_id)
        .await
        .map_err(AwsError::server)?
        .ok_or_else(invalid_token)?;
    let presented = headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if crate::storage::sha256_hex(presented.as_bytes()) != session.token_hash {
        return Err(invalid_token());
    }
    if session.expires_at <= now_epoch() + state.clock_offset_seconds {
        return Err(AwsError::new(
            dialect.expired_token(),
            "The security token included in the request is expired",
        ));
    }
    let (identity, principal) = match &session.holder {
        SessionHolder::Role(name) => {
            let role = state.iam.role_by_name(name).ok_or_else(invalid_token)?;
            (
                state
                    .iam
                    .session_identity(role, &session.session_name, access_key_id),
                format!("role:{name}"),
            )
        }
        SessionHolder::User(name) => {
            let user = state.iam.user_by_name(name).ok_or_else(invalid_token)?;
            // GetSessionToken's credentials act as the user itself, as in AWS.
            (state.iam.user_identity(user), format!("user:{name}"))
        }
    };
    Ok(KeyOwner {
        secret: state.keys.session_secret(access_key_id),
        identity,
        principal,
        temporary: true,
    })
}

/// Checks the signature over the whole request, body included.
pub fn verify_signature(
    signer: Signer,
    dialect: Dialect,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Caller, AwsError> {
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
    if !sigv4::verify(&signer.key.secret, &signer.amz_date, &signer.auth, &parts) {
        return Err(AwsError::new(
            dialect.bad_signature(),
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        )
        .status(axum::http::StatusCode::FORBIDDEN));
    }
    Ok(Caller {
        identity: signer.key.identity,
        principal: signer.key.principal,
        region: signer.auth.region,
        temporary: signer.key.temporary,
    })
}

/// Reads a body of at most `limit` bytes; large ones wait for a permit first.
async fn read_body(
    state: &State,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, AwsError> {
    let too_large = || {
        AwsError::new(
            "InvalidParameterException",
            format!("Request body is larger than this operation accepts ({limit} bytes)."),
        )
        .status(axum::http::StatusCode::PAYLOAD_TOO_LARGE)
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    // Without a length, assume the worst the operation allows.
    let _permit = match declared.unwrap_or(limit as u64) > LARGE_BODY as u64 {
        true => Some(
            state
                .large_bodies
                .acquire()
                .await
                .map_err(AwsError::server)?,
        ),
        false => None,
    };
    to_bytes(body, limit).await.map_err(|_| too_large())
}

pub async fn handle(
    AxState(state): AxState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let dialect = match target {
        Some(_) => Dialect::Ecr,
        None if signed_for_iam(&headers) => Dialect::Iam,
        None => Dialect::Sts,
    };
    let target = target.unwrap_or_default();
    match serve(&state, dialect, &target, method, uri, headers, body).await {
        Ok(r) => r,
        Err(e) => dialect.render(e),
    }
}

async fn serve(
    state: &State,
    dialect: Dialect,
    target: &str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AwsError> {
    let limit = body_limit(dialect, target);
    // AssumeRoleWithWebIdentity is unsigned: the web identity token is the credential, so an
    // STS request without a signature may be read (within STS's small bound) to find it.
    if dialect == Dialect::Sts && !headers.contains_key(header::AUTHORIZATION) {
        let body = read_body(state, &headers, body, limit).await?;
        if sts::is_web_identity(&body) {
            return Ok(sts::web_identity(state, &body).await);
        }
        return Err(
            AwsError::new(dialect.missing(), "Missing Authentication Token")
                .status(axum::http::StatusCode::FORBIDDEN),
        );
    }
    let signer = identify(state, dialect, &headers).await?;
    let body = read_body(state, &headers, body, limit).await?;
    let caller = verify_signature(signer, dialect, &method, &uri, &headers, &body)?;
    Ok(match dialect {
        Dialect::Ecr => {
            state.count(target.trim_start_matches(ECR_TARGET_PREFIX));
            ecr_api::handle(state, &caller, target, &body).await
        }
        Dialect::Sts => sts::handle(state, &caller, &body).await,
        Dialect::Iam => iam_api::handle(state, &caller, &body).await,
    })
}

/// IAM and STS share the query protocol; only the signature's scope tells them apart.
fn signed_for_iam(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| sigv4::parse_authorization(v).ok())
        .is_some_and(|auth| auth.service == "iam")
}
