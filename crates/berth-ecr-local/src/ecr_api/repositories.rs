//! CreateRepository, DescribeRepositories, DeleteRepository.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::{Ctx, invalid, invalid_next_token, not_found, storage};
use crate::error::AwsError;
use crate::storage::{Repository, StorageError};

pub(super) async fn create_repository(ctx: &Ctx<'_>) -> Result<Value, AwsError> {
    let st = &ctx.state.storage;
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

pub(super) async fn describe_repositories(ctx: &Ctx<'_>) -> Result<Value, AwsError> {
    let st = &ctx.state.storage;
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

pub(super) async fn delete_repository(ctx: &Ctx<'_>) -> Result<Value, AwsError> {
    let st = &ctx.state.storage;
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
