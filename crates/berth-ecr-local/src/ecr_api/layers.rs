//! Layer uploads (Initiate, UploadLayerPart, Complete), BatchCheckLayerAvailability and
//! GetDownloadUrlForLayer.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::{Ctx, MIN_PART, invalid, storage, upload_not_found};
use crate::error::AwsError;
use crate::oci;
use crate::registry::DOWNLOAD_URL_SECONDS;
use crate::storage::{StorageError, now_epoch};
use crate::token::Claims;

pub(super) async fn batch_check_layer_availability(ctx: &Ctx<'_>) -> Result<Value, AwsError> {
    let st = &ctx.state.storage;
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

pub(super) async fn initiate_layer_upload(ctx: &Ctx<'_>) -> Result<Value, AwsError> {
    let st = &ctx.state.storage;
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

pub(super) async fn upload_layer_part(ctx: &Ctx<'_>) -> Result<Value, AwsError> {
    let st = &ctx.state.storage;
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
        Err(StorageError::PartTooSmall { previous, min }) => Err(AwsError::new(
            "LayerPartTooSmallException",
            format!(
                "Layer part size must be at least {min} bytes; the previous part was {previous} bytes"
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

pub(super) async fn complete_layer_upload(ctx: &Ctx<'_>) -> Result<Value, AwsError> {
    let st = &ctx.state.storage;
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

pub(super) async fn get_download_url_for_layer(ctx: &Ctx<'_>) -> Result<Value, AwsError> {
    let st = &ctx.state.storage;
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
    Ok(json!({
        "downloadUrl": crate::registry::layer_download_url(ctx.state, &claims, &repo.name, digest)
            .await
            .map_err(|e| AwsError::server(e.message))?,
        "layerDigest": digest,
    }))
}
