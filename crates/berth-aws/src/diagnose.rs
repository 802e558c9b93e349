//! Turning AWS SDK errors into diagnoses a person can act on, and the Test connection report.

use std::time::{Duration, Instant};

use aws_sdk_ecr::config::http::HttpResponse;
use aws_sdk_ecr::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use serde::Serialize;

use crate::BrokerError;

/// What went wrong, as a stable code (the API and CLI show it beside the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Diagnosis {
    MissingSecret,
    NoCredentials,
    UnknownAccessKey,
    WrongSecret,
    ClockSkew,
    RoleNotAssumable,
    AccessDenied,
    ExpiredSession,
    BadRegion,
    EndpointUnreachable,
    /// The integration's sealed secrets cannot be opened with the server's master key.
    SecretsUnavailable,
    /// The integration's credentials may not leave Berth (an ambient identity is the server's).
    NotExportable,
    Registry,
    Throttled,
    /// A runtime's cluster role is not trusted by the integration's role.
    TrustMissing,
    Other,
}

impl Diagnosis {
    /// The stable code, as serialized.
    pub fn code(self) -> &'static str {
        match self {
            Diagnosis::MissingSecret => "missing_secret",
            Diagnosis::NoCredentials => "no_credentials",
            Diagnosis::UnknownAccessKey => "unknown_access_key",
            Diagnosis::WrongSecret => "wrong_secret",
            Diagnosis::ClockSkew => "clock_skew",
            Diagnosis::RoleNotAssumable => "role_not_assumable",
            Diagnosis::AccessDenied => "access_denied",
            Diagnosis::ExpiredSession => "expired_session",
            Diagnosis::BadRegion => "bad_region",
            Diagnosis::EndpointUnreachable => "endpoint_unreachable",
            Diagnosis::SecretsUnavailable => "secrets_unavailable",
            Diagnosis::NotExportable => "not_exportable",
            Diagnosis::Registry => "registry",
            Diagnosis::Throttled => "throttled",
            Diagnosis::TrustMissing => "trust_missing",
            Diagnosis::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Ok,
    Failed,
    Skipped,
}

impl StepStatus {
    /// `ok`, `failed` or `skipped`, as serialized.
    pub fn code(self) -> &'static str {
        match self {
            StepStatus::Ok => "ok",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: &'static str,
    /// What the step checked, when it runs once per thing (`runtime_trust`: the runtime).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub status: StepStatus,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    pub millis: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TestReport {
    pub ok: bool,
    pub steps: Vec<Step>,
}

impl TestReport {
    fn push(&mut self, step: Step) {
        self.steps.push(step);
        self.ok = self.steps.iter().all(|s| s.status != StepStatus::Failed);
    }

    pub(crate) fn ok(&mut self, step: &'static str, detail: &str, since: Instant) {
        self.push(Step {
            step,
            subject: None,
            status: StepStatus::Ok,
            detail: detail.into(),
            diagnosis: None,
            hint: None,
            millis: since.elapsed().as_millis() as u64,
        });
    }

    pub(crate) fn skip(&mut self, step: &'static str, why: &str) {
        self.push(Step {
            step,
            subject: None,
            status: StepStatus::Skipped,
            detail: why.into(),
            diagnosis: None,
            hint: None,
            millis: 0,
        });
    }

    pub(crate) fn fail(&mut self, step: &'static str, e: &BrokerError, since: Instant) {
        self.push(Step {
            step,
            subject: None,
            status: StepStatus::Failed,
            detail: e.message.clone(),
            diagnosis: Some(e.diagnosis),
            hint: Some(e.hint.clone()),
            millis: since.elapsed().as_millis() as u64,
        });
    }

    /// Names what the last step checked (a step that runs once per runtime).
    pub(crate) fn about(&mut self, subject: &str) {
        if let Some(last) = self.steps.last_mut() {
            last.subject = Some(subject.to_owned());
        }
    }

    /// Marks the steps that did not run because an earlier one failed.
    pub(crate) fn skip_rest(&mut self, steps: &[&'static str]) {
        for s in steps {
            if !self.steps.iter().any(|x| x.step == *s) {
                self.skip(s, "an earlier step failed");
            }
        }
    }
}

pub(crate) fn unreachable(target: &str, why: &str, elapsed: Duration) -> BrokerError {
    let kind = if why.contains("dns") || why.contains("resolve") || why.contains("Name or service")
    {
        "the host name does not resolve"
    } else if why.contains("refused") {
        "the connection was refused"
    } else if why.contains("tls") || why.contains("certificate") || why.contains("TLS") {
        "the TLS handshake failed"
    } else if why.contains("timed out") || why.contains("timeout") {
        "it timed out"
    } else {
        "the connection failed"
    };
    // The transport's own words (addresses, error chains) go to the server log, not to callers.
    tracing::warn!(target: "berth::broker", endpoint = target, detail = why, "AWS endpoint unreachable");
    BrokerError::new(
        Diagnosis::EndpointUnreachable,
        format!(
            "{target} is unreachable: {kind} after {} ms",
            elapsed.as_millis()
        ),
        "check the integration's endpoint and region, and that the Berth server can reach it",
    )
}

fn from_code(code: &str, message: &str, region: &str) -> BrokerError {
    match code {
        "UnrecognizedClientException" | "InvalidClientTokenId" => BrokerError::new(
            Diagnosis::UnknownAccessKey,
            format!("the access key id is not known to AWS ({code})"),
            "check the access key id; it may have been deleted or belong to another partition",
        ),
        "InvalidSignatureException" | "SignatureDoesNotMatch"
            if message.contains("Signature expired") || message.contains("not yet current") =>
        {
            BrokerError::new(
                Diagnosis::ClockSkew,
                format!("AWS refused the request's time: {message}"),
                "the Berth server's clock is off by more than 15 minutes; fix its time (NTP)",
            )
        }
        "InvalidSignatureException" | "SignatureDoesNotMatch" => BrokerError::new(
            Diagnosis::WrongSecret,
            format!("the secret access key does not match the access key id ({code})"),
            "re-enter the secret access key (a trailing newline or a rotated key are common causes)",
        ),
        "ExpiredTokenException" | "ExpiredToken" => BrokerError::new(
            Diagnosis::ExpiredSession,
            format!("the session credentials have expired ({code})"),
            "refresh the server's session credentials, or use access keys or a role",
        ),
        "AccessDeniedException" | "AccessDenied" => BrokerError::new(
            Diagnosis::AccessDenied,
            format!("AWS denied the call: {message}"),
            "allow ecr:GetAuthorizationToken on Resource \"*\" (and the ECR actions you need) in the identity's policy",
        ),
        "ThrottlingException" | "Throttling" => BrokerError::new(
            Diagnosis::Throttled,
            format!("AWS throttled the call after retries: {message}"),
            "retry later",
        ),
        "UnknownEndpoint" | "InvalidRegion" | "RegionDisabledException" => BrokerError::new(
            Diagnosis::BadRegion,
            format!("the region {region} is not available: {message}"),
            "enable the region in the account, or use another",
        ),
        other => BrokerError::new(
            Diagnosis::Other,
            format!("AWS answered {other}: {message}"),
            "see the message; AWS's documentation for the code explains it",
        ),
    }
}

/// The text between `open` and `close` in `body`.
fn between<'a>(body: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = body.find(open)? + open.len();
    let end = body[start..].find(close)? + start;
    Some(&body[start..end])
}

/// An error code from a body the SDK could not parse: some servers (moto, proxies) answer a JSON
/// protocol with an XML error document.
fn code_from_raw(raw: &HttpResponse) -> Option<(String, String)> {
    let body = std::str::from_utf8(raw.body().bytes()?).ok()?;
    let code = between(body, "<Code>", "</Code>")?;
    let message = between(body, "<Message>", "</Message>").unwrap_or("");
    Some((code.to_owned(), message.to_owned()))
}

fn from_sdk<E>(
    e: SdkError<E, HttpResponse>,
    elapsed: Duration,
    region: &str,
    target: &str,
) -> BrokerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            let text = format!("{}", DisplayErrorContext(&e));
            if text.contains("dns error") || text.contains("failed to lookup") {
                return BrokerError::new(
                    Diagnosis::BadRegion,
                    format!(
                        "{target} for region {region} does not resolve after {} ms",
                        elapsed.as_millis()
                    ),
                    "check the region (and the endpoint override, if any)",
                )
                .logged_detail(&text);
            }
            unreachable(target, &text, elapsed)
        }
        _ => match (e.code(), e.raw_response().and_then(code_from_raw)) {
            (Some(code), _) => from_code(code, e.message().unwrap_or(""), region),
            (None, Some((code, message))) => from_code(&code, &message, region),
            (None, None) => BrokerError::new(
                Diagnosis::Other,
                format!("{target} answered in a way Berth could not read"),
                "see the Berth server's log for the details",
            )
            .logged_detail(&format!("{}", DisplayErrorContext(&e))),
        },
    }
}

impl BrokerError {
    /// Keeps the SDK's full error in the server log only.
    fn logged_detail(self, text: &str) -> Self {
        tracing::warn!(target: "berth::broker", diagnosis = ?self.diagnosis, detail = text, "{}", self.message);
        self
    }
}

pub(crate) fn ecr_error<E>(
    e: SdkError<E, HttpResponse>,
    elapsed: Duration,
    region: &str,
) -> BrokerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    from_sdk(e, elapsed, region, "the ECR endpoint")
}

pub(crate) fn sts_error<E>(e: SdkError<E, HttpResponse>, role_arn: &str) -> BrokerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let mut err = from_sdk(e, Duration::ZERO, "", "the STS endpoint");
    if err.diagnosis == Diagnosis::AccessDenied {
        err = BrokerError::new(
            Diagnosis::RoleNotAssumable,
            format!("the role {role_arn} cannot be assumed: {}", err.message),
            "the role's trust policy must allow this identity sts:AssumeRole, and the external id must match the role's condition",
        );
    }
    err
}

pub(crate) fn iam_error<E>(e: SdkError<E, HttpResponse>) -> BrokerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    from_sdk(e, Duration::ZERO, "", "the IAM endpoint")
}

pub(crate) fn session_error<E>(e: SdkError<E, HttpResponse>) -> BrokerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    from_sdk(e, Duration::ZERO, "", "the STS endpoint")
}
