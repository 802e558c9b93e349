//! STS, query protocol with XML responses: GetCallerIdentity, AssumeRole (trust, ExternalId
//! and DurationSeconds checked as AWS checks them) and GetSessionToken (IAM users only).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::control::Caller;
use crate::error::{AwsError, xml_escape};
use crate::storage::now_epoch;
use crate::{State, ids};

const NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

pub(crate) fn form(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Form decoding: `+` is a space, then percent escapes.
fn decode(s: &str) -> String {
    crate::sigv4::percent_decode(&s.replace('+', " "))
}

fn xml(action: &str, result: String) -> Response {
    let body = format!(
        "<{action}Response xmlns=\"{NS}\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        ids::request_id()
    );
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

fn iso(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub async fn handle(state: &State, caller: &Caller, body: &[u8]) -> Response {
    match run(state, caller, body).await {
        Ok(r) => r,
        Err(e) => e.xml(),
    }
}

async fn run(state: &State, caller: &Caller, body: &[u8]) -> Result<Response, AwsError> {
    let params = form(body);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let action = get("Action").ok_or_else(|| AwsError::new("MissingAction", "Missing Action"))?;
    match action {
        "GetCallerIdentity" => Ok(xml(
            "GetCallerIdentity",
            format!(
                "<Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account>",
                xml_escape(&caller.identity.arn),
                xml_escape(&caller.identity.user_id),
                caller.identity.account_id
            ),
        )),
        "AssumeRole" => {
            let role_arn = get("RoleArn").ok_or_else(|| {
                AwsError::new("ValidationError", "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
            })?;
            let session_name = get("RoleSessionName").ok_or_else(|| {
                AwsError::new("ValidationError", "1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null")
            })?;
            if !(2..=64).contains(&session_name.len())
                || !session_name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
            {
                return Err(AwsError::new(
                    "ValidationError",
                    format!(
                        "1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
                    ),
                ));
            }
            let duration: i64 = match get("DurationSeconds") {
                Some(d) => d.parse().map_err(|_| {
                    AwsError::new("ValidationError", format!("Invalid DurationSeconds '{d}'"))
                })?,
                None => 3600,
            };
            if !(900..=43200).contains(&duration) {
                return Err(AwsError::new(
                    "ValidationError",
                    format!(
                        "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200 and greater than or equal to 900"
                    ),
                ));
            }
            let denied = || {
                AwsError::new(
                    "AccessDenied",
                    format!("User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}", caller.identity.arn),
                )
                .status(StatusCode::FORBIDDEN)
            };
            let role = state.iam.role_by_arn(role_arn).ok_or_else(denied)?;
            let trusted = role
                .trust
                .iter()
                .any(|p| p == "*" || *p == caller.identity.arn);
            if !trusted || !caller.identity.policy.allows("sts:AssumeRole", None) {
                return Err(denied());
            }
            if let Some(expected) = &role.external_id
                && get("ExternalId") != Some(expected.as_str())
            {
                return Err(denied());
            }
            let (credentials, identity) =
                issue_role_session(state, role, session_name, duration).await?;
            Ok(xml(
                "AssumeRole",
                format!(
                    "{credentials}<AssumedRoleUser><AssumedRoleId>{}</AssumedRoleId><Arn>{}</Arn></AssumedRoleUser>",
                    xml_escape(&identity.user_id),
                    xml_escape(&identity.arn)
                ),
            ))
        }
        "GetSessionToken" => get_session_token(state, caller, get("DurationSeconds")).await,
        other => Err(AwsError::new(
            "InvalidAction",
            format!("Could not find operation {other} for version 2011-06-15"),
        )),
    }
}

/// GetSessionToken: temporary credentials that act as the calling IAM user. As in AWS, a
/// session cannot make another one, and DurationSeconds is 900..=129600 (default 43200).
async fn get_session_token(
    state: &State,
    caller: &Caller,
    duration: Option<&str>,
) -> Result<Response, AwsError> {
    let duration: i64 = match duration {
        Some(d) => d.parse().map_err(|_| {
            AwsError::new("ValidationError", format!("Invalid DurationSeconds '{d}'"))
        })?,
        None => 43200,
    };
    if !(900..=129_600).contains(&duration) {
        return Err(AwsError::new(
            "ValidationError",
            format!(
                "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 129600 and greater than or equal to 900"
            ),
        ));
    }
    let user = match caller.principal.strip_prefix("user:") {
        Some(name) if !caller.temporary => state.iam.user_by_name(name),
        _ => None,
    };
    let Some(user) = user else {
        return Err(AwsError::new(
            "AccessDenied",
            "Cannot call GetSessionToken with session credentials",
        )
        .status(StatusCode::FORBIDDEN));
    };
    let holder = crate::storage::SessionHolder::User(user.name.clone());
    let credentials = issue_session(state, holder, "", duration).await?;
    Ok(xml("GetSessionToken", credentials.xml))
}

/// Temporary credentials for `role`; returns them and the assumed-role identity.
async fn issue_role_session(
    state: &State,
    role: &crate::iam::Role,
    session_name: &str,
    duration: i64,
) -> Result<(String, crate::iam::Identity), AwsError> {
    let holder = crate::storage::SessionHolder::Role(role.name.clone());
    let issued = issue_session(state, holder, session_name, duration).await?;
    let identity = state
        .iam
        .session_identity(role, session_name, &issued.access_key_id);
    Ok((issued.xml, identity))
}

struct Issued {
    access_key_id: String,
    /// The `<Credentials>` element.
    xml: String,
}

async fn issue_session(
    state: &State,
    holder: crate::storage::SessionHolder,
    session_name: &str,
    duration: i64,
) -> Result<Issued, AwsError> {
    let access_key_id = ids::access_key_id("ASIA");
    let session_token = format!(
        "{}{}",
        ids::hex(&ids::random_bytes::<32>()),
        ids::hex(&ids::random_bytes::<32>())
    );
    let expires_at = now_epoch() + duration;
    let session = crate::storage::Session {
        token_hash: crate::storage::sha256_hex(session_token.as_bytes()),
        holder,
        session_name: session_name.to_owned(),
        expires_at,
    };
    state
        .storage
        .put_session(&access_key_id, &session)
        .await
        .map_err(AwsError::server)?;
    let xml = format!(
        "<Credentials><AccessKeyId>{access_key_id}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>{session_token}</SessionToken><Expiration>{}</Expiration></Credentials>",
        state.keys.session_secret(&access_key_id),
        iso(expires_at)
    );
    Ok(Issued { access_key_id, xml })
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == key)
        .map(|(_, v)| v.as_str())
}

pub fn is_web_identity(body: &[u8]) -> bool {
    param(&form(body), "Action") == Some("AssumeRoleWithWebIdentity")
}

/// AssumeRoleWithWebIdentity: the token must verify with a configured OIDC provider that the
/// role trusts, for a subject the role allows.
pub async fn web_identity(state: &State, body: &[u8]) -> Response {
    match run_web_identity(state, body).await {
        Ok(r) => r,
        Err(e) => e.xml(),
    }
}

async fn run_web_identity(state: &State, body: &[u8]) -> Result<Response, AwsError> {
    let params = form(body);
    let required = |k: &str| {
        param(&params, k).ok_or_else(|| {
            AwsError::new(
                "ValidationError",
                format!("1 validation error detected: Value null at '{k}' failed to satisfy constraint: Member must not be null"),
            )
        })
    };
    let role_arn = required("RoleArn")?;
    let session_name = required("RoleSessionName")?;
    let token = required("WebIdentityToken")?;
    let duration: i64 = param(&params, "DurationSeconds")
        .and_then(|d| d.parse().ok())
        .unwrap_or(3600);
    if !(900..=43200).contains(&duration) {
        return Err(AwsError::new(
            "ValidationError",
            format!("DurationSeconds {duration} is not between 900 and 43200"),
        ));
    }
    let (provider, claims) = crate::oidc::verify(token, &state.iam.oidc_providers, now_epoch())
        .map_err(|p| match p {
            crate::oidc::TokenProblem::Expired => AwsError::new(
                "ExpiredTokenException",
                "Token expired: current date/time is past the token's exp",
            ),
            crate::oidc::TokenProblem::Invalid(why) => AwsError::new("InvalidIdentityToken", why),
        })?;
    let denied = || {
        AwsError::new(
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        )
        .status(StatusCode::FORBIDDEN)
    };
    let role = state.iam.role_by_arn(role_arn).ok_or_else(denied)?;
    let provider_arn = provider.arn(&state.iam.account_id);
    let subject_ok = role.web_identity_subjects.is_empty()
        || role
            .web_identity_subjects
            .iter()
            .any(|p| match p.strip_suffix('*') {
                Some(prefix) => claims.sub.starts_with(prefix),
                None => *p == claims.sub,
            });
    if !role.trust.contains(&provider_arn) || !subject_ok {
        return Err(denied());
    }
    let (credentials, identity) = issue_role_session(state, role, session_name, duration).await?;
    Ok(xml(
        "AssumeRoleWithWebIdentity",
        format!(
            "{credentials}<SubjectFromWebIdentityToken>{}</SubjectFromWebIdentityToken><AssumedRoleUser><AssumedRoleId>{}</AssumedRoleId><Arn>{}</Arn></AssumedRoleUser><Provider>{}</Provider><Audience>{}</Audience>",
            xml_escape(&claims.sub),
            xml_escape(&identity.user_id),
            xml_escape(&identity.arn),
            xml_escape(&provider_arn),
            xml_escape(claims.audiences().first().copied().unwrap_or(""))
        ),
    ))
}
