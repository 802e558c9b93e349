//! ListImages, DescribeImages, BatchGetImage, PutImage, BatchDeleteImage.

use serde_json::{Value, json};

use super::{Ctx, find, image_id_json, image_ids, invalid, invalid_next_token, storage};
use crate::error::AwsError;
use crate::oci;
use crate::storage::StorageError;

pub(super) async fn list_or_describe_images(ctx: &Ctx<'_>) -> Result<Value, AwsError> {
    let st = &ctx.state.storage;
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

pub(super) async fn batch_get_image(ctx: &Ctx<'_>) -> Result<Value, AwsError> {
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

pub(super) async fn put_image(ctx: &Ctx<'_>) -> Result<Value, AwsError> {
    let st = &ctx.state.storage;
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
            format!("Provided digest {given} does not match digest of the manifest {digest}"),
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
        Err(StorageError::BlobsMissing(missing)) | Err(StorageError::ManifestsMissing(missing)) => {
            Err(AwsError::new(
                "LayersNotFoundException",
                format!(
                    "Layers with digests '[{}]' required for pushing image into repository with name '{}' in the registry with id '{}' do not exist",
                    missing.join(", "),
                    repo.name,
                    repo.registry_id
                ),
            ))
        }
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

pub(super) async fn batch_delete_image(ctx: &Ctx<'_>) -> Result<Value, AwsError> {
    let st = &ctx.state.storage;
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
