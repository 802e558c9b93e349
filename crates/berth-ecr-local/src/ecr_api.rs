//! The ECR control plane, JSON 1.1 (`X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Op>`),
//! with ECR's error codes and message texts.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::State;
use crate::control::Caller;
use crate::error::AwsError;
use crate::oci::{self, valid_repository_name};
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

async fn run(ctx: &Ctx<'_>) -> Result<Value, AwsError> {
    let st = &ctx.state.storage;
    match ctx.op {
        "GetAuthorizationToken" => {
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
        "CreateRepository" => {
            let registry_id = ctx.registry_id()?;
            let name = ctx.repository_name()?;
            ctx.authorize(&registry_id, Some(name))?;
            let mutability = ctx.str_opt("imageTagMutability")?.unwrap_or("MUTABLE");
            if !matches!(mutability, "MUTABLE" | "IMMUTABLE") {
                return Err(invalid(format!(
                    "1 validation error detected: Value '{mutability}' at 'imageTagMutability' failed to satisfy constraint: Member must satisfy enum value set: [MUTABLE, IMMUTABLE]"
                )));
            }
            match st
                .create_repository(&registry_id, &ctx.caller.region, name, mutability)
                .await
            {
                Ok(r) => Ok(json!({"repository": ctx.repo_json(&r)})),
                Err(StorageError::RepositoryExists) => Err(AwsError::new(
                    "RepositoryAlreadyExistsException",
                    format!(
                        "The repository with name '{name}' already exists in the registry with id '{registry_id}'"
                    ),
                )),
                Err(e) => Err(storage(e)),
            }
        }
        "DescribeRepositories" => {
            let registry_id = ctx.registry_id()?;
            let max = ctx
                .body
                .get("maxResults")
                .and_then(Value::as_i64)
                .unwrap_or(100);
            if !(1..=1000).contains(&max) {
                return Err(invalid(
                    "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value less than or equal to 1000'",
                ));
            }
            if let Some(names) = ctx.body.get("repositoryNames").and_then(Value::as_array) {
                let mut out = Vec::new();
                for n in names {
                    let n = n.as_str().unwrap_or_default();
                    ctx.authorize(&registry_id, Some(n))?;
                    match st
                        .repository(&registry_id, &ctx.caller.region, n)
                        .await
                        .map_err(storage)?
                    {
                        Some(r) => out.push(ctx.repo_json(&r)),
                        None => return Err(not_found(n, &registry_id)),
                    }
                }
                return Ok(json!({"repositories": out}));
            }
            ctx.authorize(&registry_id, None)?;
            let after = match ctx.str_opt("nextToken")? {
                Some(t) => Some(
                    B64.decode(t)
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok())
                        .ok_or_else(invalid_next_token)?,
                ),
                None => None,
            };
            let repos = st
                .repositories(&registry_id, &ctx.caller.region, after.as_deref(), max + 1)
                .await
                .map_err(storage)?;
            let more = repos.len() as i64 > max;
            let page: Vec<&Repository> = repos.iter().take(max as usize).collect();
            // Only the repositories the caller's policy covers are listed.
            let visible: Vec<Value> = page
                .iter()
                .filter(|r| {
                    let policy = &ctx.caller.identity.policy;
                    policy.allows("ecr:DescribeRepositories", Some(&r.name))
                })
                .map(|r| ctx.repo_json(r))
                .collect();
            let mut v = json!({"repositories": visible});
            if more && let Some(last) = page.last() {
                v["nextToken"] = json!(B64.encode(&last.name));
            }
            Ok(v)
        }
        "DeleteRepository" => {
            let repo = ctx.repository().await?;
            let force = ctx
                .body
                .get("force")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            match st.delete_repository(&repo, force).await {
                Ok(_) => Ok(json!({"repository": ctx.repo_json(&repo)})),
                Err(StorageError::RepositoryNotEmpty) => Err(AwsError::new(
                    "RepositoryNotEmptyException",
                    format!(
                        "The repository with name '{}' in registry with id '{}' cannot be deleted because it still contains images",
                        repo.name, repo.registry_id
                    ),
                )),
                Err(e) => Err(storage(e)),
            }
        }
        "ListImages" | "DescribeImages" => {
            let repo = ctx.repository().await?;
            let max = ctx
                .body
                .get("maxResults")
                .and_then(Value::as_i64)
                .unwrap_or(if ctx.op == "ListImages" { 1000 } else { 100 });
            if !(1..=1000).contains(&max) {
                return Err(invalid(
                    "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value less than or equal to 1000'",
                ));
            }
            let status = ctx
                .body
                .pointer("/filter/tagStatus")
                .and_then(Value::as_str)
                .unwrap_or("ANY");
            if !matches!(status, "ANY" | "TAGGED" | "UNTAGGED") {
                return Err(invalid(format!(
                    "Invalid parameter at 'filter.tagStatus': '{status}' is not one of TAGGED, UNTAGGED, ANY"
                )));
            }
            let mut images = st.images(repo.id).await.map_err(storage)?;
            if ctx.op == "DescribeImages"
                && let Ok(ids) = image_ids(ctx)
            {
                let mut chosen = Vec::new();
                for (d, t) in &ids {
                    match find(ctx, &repo, d, t).await? {
                        Some(m) => chosen.push(m),
                        None => {
                            return Err(AwsError::new(
                                "ImageNotFoundException",
                                format!(
                                    "The image with imageId {{imageDigest:'{}', imageTag:'{}'}} does not exist within the repository with name '{}' in the registry with id '{}'",
                                    d.as_deref().unwrap_or("null"),
                                    t.as_deref().unwrap_or("null"),
                                    repo.name,
                                    repo.registry_id
                                ),
                            ));
                        }
                    }
                }
                images = chosen;
            }
            images.retain(|m| match status {
                "TAGGED" => !m.tags.is_empty(),
                "UNTAGGED" => m.tags.is_empty(),
                _ => true,
            });
            let start: usize = match ctx.str_opt("nextToken")? {
                Some(t) => t
                    .parse()
                    .ok()
                    .filter(|n| *n <= images.len())
                    .ok_or_else(invalid_next_token)?,
                None => 0,
            };
            let end = (start + max as usize).min(images.len());
            let page = &images[start.min(end)..end];
            let mut v = if ctx.op == "ListImages" {
                let mut ids = Vec::new();
                for m in page {
                    if m.tags.is_empty() {
                        ids.push(image_id_json(Some(&m.digest), None));
                    }
                    for t in &m.tags {
                        ids.push(image_id_json(Some(&m.digest), Some(t)));
                    }
                }
                json!({"imageIds": ids})
            } else {
                json!({"imageDetails": page.iter().map(|m| {
                    let mut d = json!({
                        "registryId": repo.registry_id,
                        "repositoryName": repo.name,
                        "imageDigest": m.digest,
                        "imageSizeInBytes": m.image_size,
                        "imagePushedAt": m.pushed_at,
                        "imageManifestMediaType": m.media_type,
                    });
                    if !m.tags.is_empty() { d["imageTags"] = json!(m.tags); }
                    if let Some(a) = &m.artifact_type { d["artifactMediaType"] = json!(a); }
                    d
                }).collect::<Vec<_>>()})
            };
            if end < images.len() {
                v["nextToken"] = json!(end.to_string());
            }
            Ok(v)
        }
        "BatchGetImage" => {
            let repo = ctx.repository().await?;
            let accepted: Vec<String> = ctx
                .body
                .get("acceptedMediaTypes")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let mut images = Vec::new();
            let mut failures = Vec::new();
            for (d, t) in image_ids(ctx)? {
                match find(ctx, &repo, &d, &t).await? {
                    Some(m) if !accepted.is_empty() && !accepted.contains(&m.media_type) => failures.push(json!({
                        "imageId": image_id_json(d.as_deref(), t.as_deref()),
                        "failureCode": "UnsupportedImageType",
                        "failureReason": "Requested media types are not supported by the image manifest",
                    })),
                    Some(m) => {
                        let tag = t.clone().or_else(|| m.tags.first().cloned());
                        images.push(json!({
                            "registryId": repo.registry_id,
                            "repositoryName": repo.name,
                            "imageId": image_id_json(Some(&m.digest), tag.as_deref()),
                            "imageManifest": String::from_utf8_lossy(&m.body),
                            "imageManifestMediaType": m.media_type,
                        }))
                    }
                    None => failures.push(json!({
                        "imageId": image_id_json(d.as_deref(), t.as_deref()),
                        "failureCode": "ImageNotFound",
                        "failureReason": "Requested image not found",
                    })),
                }
            }
            Ok(json!({"images": images, "failures": failures}))
        }
        "PutImage" => {
            let repo = ctx.repository().await?;
            let manifest = ctx.str_req("imageManifest")?;
            let media_type = ctx.str_opt("imageManifestMediaType")?;
            let tag = ctx.str_opt("imageTag")?;
            if let Some(t) = tag
                && !oci::valid_tag(t)
            {
                return Err(invalid(format!(
                    "Invalid parameter at 'imageTag' failed to satisfy constraint: '{t}' is not a valid tag"
                )));
            }
            let parsed = oci::parse_manifest(manifest.as_bytes(), media_type).map_err(|e| {
                AwsError::new(
                    "InvalidParameterException",
                    format!("Invalid parameter at 'imageManifest': {e}"),
                )
            })?;
            let digest = format!("sha256:{}", crate::storage::sha256_hex(manifest.as_bytes()));
            if let Some(given) = ctx.str_opt("imageDigest")?
                && given != digest
            {
                return Err(AwsError::new(
                    "ImageDigestDoesNotMatchException",
                    format!(
                        "Provided digest {given} does not match digest of the manifest {digest}"
                    ),
                ));
            }
            let existing = st.manifest(repo.id, &digest).await.map_err(storage)?;
            if let Some(m) = &existing
                && (tag.is_none() || tag.is_some_and(|t| m.tags.iter().any(|x| x == t)))
            {
                return Err(AwsError::new(
                    "ImageAlreadyExistsException",
                    format!(
                        "Image with digest '{digest}' and tag '{}' already exists in the repository with name '{}' in registry with id '{}'",
                        tag.unwrap_or("null"),
                        repo.name,
                        repo.registry_id
                    ),
                ));
            }
            match st
                .put_manifest(&repo, manifest.as_bytes(), &parsed, tag)
                .await
            {
                Ok(digest) => Ok(json!({"image": {
                    "registryId": repo.registry_id,
                    "repositoryName": repo.name,
                    "imageId": image_id_json(Some(&digest), tag),
                    "imageManifest": manifest,
                    "imageManifestMediaType": parsed.media_type,
                }})),
                Err(e @ StorageError::SizeMismatch { .. }) => Err(invalid(format!(
                    "Invalid parameter at 'imageManifest' failed to satisfy constraint: {e}"
                ))),
                Err(StorageError::BlobsMissing(missing))
                | Err(StorageError::ManifestsMissing(missing)) => Err(AwsError::new(
                    "LayersNotFoundException",
                    format!(
                        "Layers with digests '[{}]' required for pushing image into repository with name '{}' in the registry with id '{}' do not exist",
                        missing.join(", "),
                        repo.name,
                        repo.registry_id
                    ),
                )),
                Err(StorageError::TagImmutable(t)) => Err(AwsError::new(
                    "ImageTagAlreadyExistsException",
                    format!(
                        "The image tag '{t}' already exists in the '{}' repository and cannot be overwritten because the tag is immutable.",
                        repo.name
                    ),
                )),
                Err(e) => Err(storage(e)),
            }
        }
        "BatchDeleteImage" => {
            let repo = ctx.repository().await?;
            let mut deleted = Vec::new();
            let mut failures = Vec::new();
            for (d, t) in image_ids(ctx)? {
                match find(ctx, &repo, &d, &t).await? {
                    Some(m) => {
                        let reference = if d.is_some() {
                            m.digest.clone()
                        } else {
                            t.clone().unwrap_or_default()
                        };
                        st.delete_manifest(repo.id, &reference)
                            .await
                            .map_err(storage)?;
                        deleted.push(image_id_json(Some(&m.digest), t.as_deref()));
                    }
                    None => failures.push(json!({
                        "imageId": image_id_json(d.as_deref(), t.as_deref()),
                        "failureCode": "ImageNotFound",
                        "failureReason": "Requested image not found",
                    })),
                }
            }
            Ok(json!({"imageIds": deleted, "failures": failures}))
        }
        "BatchCheckLayerAvailability" => {
            let repo = ctx.repository().await?;
            let digests = ctx.body.get("layerDigests").and_then(Value::as_array).ok_or_else(|| {
                invalid("1 validation error detected: Value null at 'layerDigests' failed to satisfy constraint: Member must not be null")
            })?;
            if digests.is_empty() || digests.len() > 100 {
                return Err(invalid(format!(
                    "1 validation error detected: Value '[…{} digests]' at 'layerDigests' failed to satisfy constraint: Member must have length less than or equal to 100",
                    digests.len()
                )));
            }
            let mut layers = Vec::new();
            let mut failures = Vec::new();
            for d in digests {
                let d = d.as_str().unwrap_or_default();
                if oci::parse_digest(d).is_err() {
                    failures.push(json!({"layerDigest": d, "failureCode": "InvalidLayerDigest", "failureReason": "Invalid layer digest"}));
                    continue;
                }
                match st.blob_in_repo(repo.id, d).await.map_err(storage)? {
                    Some(size) => layers.push(json!({"layerDigest": d, "layerAvailability": "AVAILABLE", "layerSize": size, "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip"})),
                    None => failures.push(json!({"layerDigest": d, "failureCode": "MissingLayerDigest", "failureReason": "Requested layer not found"})),
                }
            }
            Ok(json!({"layers": layers, "failures": failures}))
        }
        "InitiateLayerUpload" => {
            let repo = ctx.repository().await?;
            let id = match st.uploads.start(repo.id, &ctx.caller.principal).await {
                Ok(id) => id,
                Err(e @ StorageError::TooManyUploads { .. }) => {
                    return Err(AwsError::new("LimitExceededException", e.to_string()));
                }
                Err(e) => return Err(storage(e)),
            };
            Ok(json!({"uploadId": id, "partSize": MIN_PART}))
        }
        "UploadLayerPart" => {
            let repo = ctx.repository().await?;
            let id = ctx.str_req("uploadId")?;
            let first = ctx
                .body
                .get("partFirstByte")
                .and_then(Value::as_u64)
                .ok_or_else(|| invalid("partFirstByte is required"))?;
            let last = ctx
                .body
                .get("partLastByte")
                .and_then(Value::as_u64)
                .ok_or_else(|| invalid("partLastByte is required"))?;
            let blob = B64
                .decode(ctx.str_req("layerPartBlob")?)
                .map_err(|_| invalid("layerPartBlob is not base64"))?;
            if last < first || last - first + 1 != blob.len() as u64 {
                return Err(AwsError::new(
                    "InvalidLayerPartException",
                    format!(
                        "The layer part size is not valid, or the first byte specified is not consecutive to the last byte of a previous layer part upload. partFirstByte {first}, partLastByte {last}, part length {}",
                        blob.len()
                    ),
                ));
            }
            let stream = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(
                axum::body::Bytes::from(blob),
            )]);
            match st.uploads.append(repo.id, id, Some(first), stream).await {
                Ok(offset) => Ok(json!({
                    "registryId": repo.registry_id, "repositoryName": repo.name, "uploadId": id, "lastByteReceived": offset.saturating_sub(1)
                })),
                Err(StorageError::UploadNotFound) => Err(upload_not_found(id, &repo)),
                Err(StorageError::PartTooSmall { previous }) => Err(AwsError::new(
                    "LayerPartTooSmallException",
                    format!(
                        "Layer part size must be at least 5 MiB; the previous part was {previous} bytes"
                    ),
                )),
                Err(StorageError::OutOfOrder { have, .. }) => Err(AwsError::new(
                    "InvalidLayerPartException",
                    format!(
                        "The upload part must start at byte {have}, the next byte after the last part received"
                    ),
                )),
                Err(e) => Err(storage(e)),
            }
        }
        "CompleteLayerUpload" => {
            let repo = ctx.repository().await?;
            let id = ctx.str_req("uploadId")?;
            let digests = ctx
                .body
                .get("layerDigests")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let [digest] = digests.as_slice() else {
                return Err(invalid("layerDigests must hold exactly one digest"));
            };
            let digest = digest.as_str().unwrap_or_default();
            oci::parse_digest(digest).map_err(|e| AwsError::new("InvalidLayerException", e))?;
            let offset = st
                .uploads
                .offset(repo.id, id)
                .await
                .map_err(|_| upload_not_found(id, &repo))?;
            if offset == 0 {
                return Err(AwsError::new(
                    "EmptyUploadException",
                    format!("The upload with id '{id}' contains no layer parts"),
                ));
            }
            if st
                .blob_in_repo(repo.id, digest)
                .await
                .map_err(storage)?
                .is_some()
            {
                let _ = st.uploads.cancel(repo.id, id).await;
                return Err(AwsError::new(
                    "LayerAlreadyExistsException",
                    format!(
                        "The layer '{digest}' already exists in the repository with name '{}' in registry with id '{}'",
                        repo.name, repo.registry_id
                    ),
                ));
            }
            match st.finish_upload(repo.id, id, digest).await {
                Ok(_) => Ok(
                    json!({"registryId": repo.registry_id, "repositoryName": repo.name, "uploadId": id, "layerDigest": digest}),
                ),
                Err(StorageError::DigestMismatch { computed }) => Err(AwsError::new(
                    "InvalidLayerException",
                    format!(
                        "The layer digest calculated for the upload '{computed}' does not match the provided digest '{digest}'"
                    ),
                )),
                Err(e) => Err(storage(e)),
            }
        }
        "GetDownloadUrlForLayer" => {
            let repo = ctx.repository().await?;
            let digest = ctx.str_req("layerDigest")?;
            oci::parse_digest(digest).map_err(invalid)?;
            if st
                .blob_in_repo(repo.id, digest)
                .await
                .map_err(storage)?
                .is_none()
            {
                return Err(AwsError::new(
                    "LayersNotFoundException",
                    format!(
                        "The following layers do not exist in repository '{}': [{digest}]",
                        repo.name
                    ),
                ));
            }
            let claims = Claims {
                registry_id: repo.registry_id.clone(),
                region: repo.region.clone(),
                principal: ctx.caller.principal.clone(),
                expires_at: now_epoch() + DOWNLOAD_URL_SECONDS,
            };
            let signature = ctx.state.keys.sign_download(&claims, &repo.name, digest);
            let query = crate::registry::download_query(&claims, &signature);
            Ok(json!({
                "downloadUrl": format!("{}/v2/{}/blobs/{digest}?{query}", ctx.state.public_url, repo.name),
                "layerDigest": digest,
            }))
        }
        other => Err(AwsError::new(
            "UnknownOperationException",
            format!("Unknown operation {other}"),
        )),
    }
}

/// What ECR answers for a `nextToken` it did not issue.
fn invalid_next_token() -> AwsError {
    AwsError::new(
        "InvalidParameterException",
        "Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'",
    )
}

/// How long a layer's download URL works (S3 pre-signed URLs from ECR are short-lived too).
const DOWNLOAD_URL_SECONDS: i64 = 600;

fn upload_not_found(id: &str, repo: &Repository) -> AwsError {
    AwsError::new(
        "UploadNotFoundException",
        format!(
            "Upload with id '{id}' is not found in repository '{}' in registry '{}'",
            repo.name, repo.registry_id
        ),
    )
}
