//! The ECR control plane, JSON 1.1 (`X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Op>`),
//! with ECR's error codes and message texts. `run` dispatches each operation to its function in
//! the family's file: `repositories`, `images`, `layers`.

mod images;
mod layers;
mod repositories;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::State;
use crate::control::Caller;
use crate::error::AwsError;
use crate::oci::valid_repository_name;
use crate::storage::{Repository, StorageError, StoredManifest, now_epoch};
use crate::token::Claims;

const PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921.";
/// ECR requires every part but the last to be at least 5 MiB.
const MIN_PART: u64 = crate::uploads::PART_MIN;

fn ok(v: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
        v.to_string(),
    )
        .into_response()
}

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new("InvalidParameterException", message)
}

fn storage(e: StorageError) -> AwsError {
    if let StorageError::DiskFull { .. } = e {
        tracing::error!(error = %e, "request refused");
        return AwsError::new("ServerException", e.to_string())
            .status(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    }
    AwsError::server(e)
}

struct Ctx<'a> {
    state: &'a State,
    caller: &'a Caller,
    body: Value,
    op: &'a str,
}

impl Ctx<'_> {
    fn str_opt(&self, field: &str) -> Result<Option<&str>, AwsError> {
        match self.body.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(AwsError::new(
                "SerializationException",
                format!("Field '{field}' must be a string"),
            )),
        }
    }

    fn str_req(&self, field: &str) -> Result<&str, AwsError> {
        self.str_opt(field)?.ok_or_else(|| {
            invalid(format!("1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"))
        })
    }

    fn registry_id(&self) -> Result<String, AwsError> {
        match self.str_opt("registryId")? {
            Some(id) if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) => {
                Err(invalid(format!(
                    "Invalid parameter at 'registryId' failed to satisfy constraint: 'must satisfy regular expression '[0-9]{{12}}''. Value: {id}"
                )))
            }
            Some(id) => Ok(id.to_owned()),
            None => Ok(self.caller.identity.account_id.clone()),
        }
    }

    fn repo_arn(&self, registry_id: &str, name: &str) -> String {
        format!(
            "arn:aws:ecr:{}:{registry_id}:repository/{name}",
            self.caller.region
        )
    }

    /// Checks the caller's policy for this operation on `repository` (None: account-wide).
    fn authorize(&self, registry_id: &str, repository: Option<&str>) -> Result<(), AwsError> {
        let action = format!("ecr:{}", self.op);
        if registry_id == self.caller.identity.account_id
            && self.caller.identity.policy.allows(&action, repository)
        {
            return Ok(());
        }
        let resource = match repository {
            Some(r) => self.repo_arn(registry_id, r),
            None => "*".to_owned(),
        };
        Err(AwsError::new(
            "AccessDeniedException",
            format!(
                "User: {} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action",
                self.caller.identity.arn
            ),
        ))
    }

    fn repository_name(&self) -> Result<&str, AwsError> {
        let name = self.str_req("repositoryName")?;
        if !valid_repository_name(name) {
            return Err(invalid(
                "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''",
            ));
        }
        Ok(name)
    }

    /// The named repository after the policy check, or ECR's RepositoryNotFoundException.
    async fn repository(&self) -> Result<Repository, AwsError> {
        let registry_id = self.registry_id()?;
        let name = self.repository_name()?;
        self.authorize(&registry_id, Some(name))?;
        self.state
            .storage
            .repository(&registry_id, &self.caller.region, name)
            .await
            .map_err(storage)?
            .ok_or_else(|| not_found(name, &registry_id))
    }

    fn repo_json(&self, r: &Repository) -> Value {
        json!({
            "repositoryArn": self.repo_arn(&r.registry_id, &r.name),
            "registryId": r.registry_id,
            "repositoryName": r.name,
            "repositoryUri": format!("{}/{}", self.state.registry_host(), r.name),
            "createdAt": r.created_at,
            "imageTagMutability": r.tag_mutability,
            "imageScanningConfiguration": {"scanOnPush": false},
            "encryptionConfiguration": {"encryptionType": "AES256"},
        })
    }
}

fn not_found(name: &str, registry_id: &str) -> AwsError {
    AwsError::new(
        "RepositoryNotFoundException",
        format!(
            "The repository with name '{name}' does not exist in the registry with id '{registry_id}'"
        ),
    )
}

/// An `imageIds` entry: (imageDigest, imageTag).
type ImageId = (Option<String>, Option<String>);

fn image_ids(ctx: &Ctx<'_>) -> Result<Vec<ImageId>, AwsError> {
    let ids = ctx.body.get("imageIds").and_then(Value::as_array).ok_or_else(|| {
        invalid("1 validation error detected: Value null at 'imageIds' failed to satisfy constraint: Member must not be null")
    })?;
    if ids.is_empty() || ids.len() > 100 {
        return Err(invalid(
            "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length between 1 and 100'",
        ));
    }
    Ok(ids
        .iter()
        .map(|i| {
            (
                i.get("imageDigest")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                i.get("imageTag").and_then(Value::as_str).map(str::to_owned),
            )
        })
        .collect())
}

fn image_id_json(digest: Option<&str>, tag: Option<&str>) -> Value {
    let mut v = json!({});
    if let Some(d) = digest {
        v["imageDigest"] = json!(d);
    }
    if let Some(t) = tag {
        v["imageTag"] = json!(t);
    }
    v
}

/// Looks an image id up: by digest (and, when both are given, checks the tag points at it).
async fn find(
    ctx: &Ctx<'_>,
    repo: &Repository,
    digest: &Option<String>,
    tag: &Option<String>,
) -> Result<Option<StoredManifest>, AwsError> {
    let reference = digest.as_deref().or(tag.as_deref()).unwrap_or("");
    let found = ctx
        .state
        .storage
        .manifest(repo.id, reference)
        .await
        .map_err(storage)?;
    Ok(found.filter(|m| tag.as_ref().is_none_or(|t| m.tags.contains(t))))
}

pub async fn handle(state: &State, caller: &Caller, target: &str, body: &[u8]) -> Response {
    let Some(op) = target.strip_prefix(PREFIX) else {
        return AwsError::new("UnknownOperationException", "").json();
    };
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return AwsError::new(
                    "SerializationException",
                    "Start of structure or map found where not expected.",
                )
                .json();
            }
        }
    };
    let ctx = Ctx {
        state,
        caller,
        body,
        op,
    };
    match run(&ctx).await {
        Ok(v) => ok(v),
        Err(e) => e.json(),
    }
}

/// One function per operation, grouped by family: repositories, images, layers.
async fn run(ctx: &Ctx<'_>) -> Result<Value, AwsError> {
    match ctx.op {
        "GetAuthorizationToken" => get_authorization_token(ctx).await,
        "CreateRepository" => repositories::create_repository(ctx).await,
        "DescribeRepositories" => repositories::describe_repositories(ctx).await,
        "DeleteRepository" => repositories::delete_repository(ctx).await,
        "ListImages" | "DescribeImages" => images::list_or_describe_images(ctx).await,
        "BatchGetImage" => images::batch_get_image(ctx).await,
        "PutImage" => images::put_image(ctx).await,
        "BatchDeleteImage" => images::batch_delete_image(ctx).await,
        "BatchCheckLayerAvailability" => layers::batch_check_layer_availability(ctx).await,
        "InitiateLayerUpload" => layers::initiate_layer_upload(ctx).await,
        "UploadLayerPart" => layers::upload_layer_part(ctx).await,
        "CompleteLayerUpload" => layers::complete_layer_upload(ctx).await,
        "GetDownloadUrlForLayer" => layers::get_download_url_for_layer(ctx).await,
        other => Err(AwsError::new(
            "UnknownOperationException",
            format!("Unknown operation {other}"),
        )),
    }
}

async fn get_authorization_token(ctx: &Ctx<'_>) -> Result<Value, AwsError> {
    let registry_id = ctx.caller.identity.account_id.clone();
    ctx.authorize(&registry_id, None)?;
    let expires_at = now_epoch() + ctx.state.token_ttl.as_secs() as i64;
    let password = ctx.state.keys.issue(&Claims {
        registry_id,
        region: ctx.caller.region.clone(),
        principal: ctx.caller.principal.clone(),
        expires_at,
    });
    Ok(json!({"authorizationData": [{
        "authorizationToken": B64.encode(format!("AWS:{password}")),
        "expiresAt": expires_at,
        "proxyEndpoint": ctx.state.public_url,
    }]}))
}

/// What ECR answers for a `nextToken` it did not issue.
fn invalid_next_token() -> AwsError {
    AwsError::new(
        "InvalidParameterException",
        "Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'",
    )
}

fn upload_not_found(id: &str, repo: &Repository) -> AwsError {
    AwsError::new(
        "UploadNotFoundException",
        format!(
            "Upload with id '{id}' is not found in repository '{}' in registry '{}'",
            repo.name, repo.registry_id
        ),
    )
}
