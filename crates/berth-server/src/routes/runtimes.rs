//! `/api/v1/runtimes`: GitOps clusters that integrations are shared with. Admin only.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_api::{
    NewRuntime, RuntimeCertificate, RuntimeClusterRole, RuntimeList, RuntimeNamespace, RuntimeView,
};
use berth_core::Name;
use berth_gitops::seal::SealingKey;
use berth_store::Runtime;

use super::{Refusals, meta_view};
use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::json::ApiJson;

fn view(r: &Runtime) -> RuntimeView {
    let key = r
        .sealing_cert
        .as_deref()
        .and_then(|p| SealingKey::from_pem(p).ok());
    RuntimeView {
        id: r.id.clone(),
        name: r.name.to_string(),
        sealing_cert: r.sealing_cert.clone(),
        namespace: r.namespace.clone(),
        sealing_cert_fingerprint: key.as_ref().map(|k| k.fingerprint().to_owned()),
        sealing_cert_expires_at: key
            .and_then(|k| k.not_after())
            .map(|t| super::timestamp(time::OffsetDateTime::from(t))),
        cluster_role_arn: r.cluster_role_arn.clone(),
        meta: meta_view(&r.meta),
    }
}

/// A runtime's name is the folder `resources/runtimes/<name>/` and a Kubernetes label value:
/// an RFC 1123 label.
fn check_kubernetes_name(name: &str) -> Result<(), ApiError> {
    let ok = name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "name",
            format!(
                "'{name}' is not a Kubernetes name: lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit"
            ),
        ))
    }
}

/// A sealing certificate the controller could have issued: PEM, an RSA key, not expired.
pub(crate) fn check_sealing_cert(field: &str, pem: &str) -> Result<SealingKey, ApiError> {
    let key = SealingKey::from_pem(pem).map_err(|e| ApiError::invalid(field, e.to_string()))?;
    if key
        .not_after()
        .is_some_and(|t| t < std::time::SystemTime::now())
    {
        return Err(ApiError::invalid(
            field,
            "the certificate has expired: fetch the controller's current one (kubeseal --fetch-cert)",
        ));
    }
    Ok(key)
}

/// Adds a runtime (admin), with the cluster's sealing certificate when it has one.
#[utoipa::path(post, path = "/api/v1/runtimes", tag = "runtimes",
    request_body = NewRuntime,
    responses((status = 201, body = RuntimeView), Refusals))]
pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<NewRuntime>,
) -> Result<(StatusCode, Json<RuntimeView>), ApiError> {
    caller.require_admin()?;
    let name = Name::parse("name", &body.name)?;
    check_kubernetes_name(name.as_str())?;
    if let Some(cert) = &body.sealing_cert {
        check_sealing_cert("sealing_cert", cert)?;
    }
    if let Some(ns) = &body.namespace {
        super::gitops::check_namespace(ns)?;
    }
    if let Some(arn) = &body.cluster_role_arn {
        berth_core::validate_role_arn("cluster_role_arn", arn)?;
    }
    let mut created = state
        .store
        .create_runtime(&name, body.sealing_cert.as_deref(), &caller.actor())
        .await?;
    if let Some(ns) = &body.namespace {
        created = state
            .store
            .set_runtime_namespace(created.name.as_str(), ns, &caller.actor())
            .await?;
    }
    if let Some(arn) = &body.cluster_role_arn {
        created = state
            .store
            .set_runtime_cluster_role(created.name.as_str(), Some(arn), &caller.actor())
            .await?;
    }
    Ok((StatusCode::CREATED, Json(view(&created))))
}

/// Records the IAM role a runtime's cluster assumes integration roles as (admin), or forgets it
/// with `null`; Test connection then checks that the roles shared with the runtime trust it.
#[utoipa::path(put, path = "/api/v1/runtimes/{name}/cluster-role", tag = "runtimes",
    params(("name" = String, Path)),
    request_body = RuntimeClusterRole,
    responses((status = 200, body = RuntimeView), Refusals))]
pub async fn set_cluster_role(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RuntimeClusterRole>,
) -> Result<Json<RuntimeView>, ApiError> {
    caller.require_admin()?;
    if let Some(arn) = &body.cluster_role_arn {
        berth_core::validate_role_arn("cluster_role_arn", arn)?;
    }
    let updated = state
        .store
        .set_runtime_cluster_role(&name, body.cluster_role_arn.as_deref(), &caller.actor())
        .await?;
    Ok(Json(view(&updated)))
}

/// Moves a runtime's GitOps resources to another namespace (admin): its integrations' files are
/// rewritten, and their SealedSecrets sealed for the new namespace, in one commit.
#[utoipa::path(put, path = "/api/v1/runtimes/{name}/namespace", tag = "runtimes",
    params(("name" = String, Path)),
    request_body = RuntimeNamespace,
    responses((status = 200, body = RuntimeView), Refusals))]
pub async fn set_namespace(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RuntimeNamespace>,
) -> Result<Json<RuntimeView>, ApiError> {
    caller.require_admin()?;
    super::gitops::check_namespace(&body.namespace)?;
    let updated = state
        .store
        .set_runtime_namespace(&name, &body.namespace, &caller.actor())
        .await?;
    state
        .gitops
        .move_namespace(&updated.name, &body.namespace)
        .await?;
    Ok(Json(view(&updated)))
}

/// Replaces a runtime's sealing certificate (admin); every SealedSecret sealed for it is
/// re-sealed to the new one in one commit (the controller never does this itself).
#[utoipa::path(put, path = "/api/v1/runtimes/{name}/sealing-cert", tag = "runtimes",
    params(("name" = String, Path)),
    request_body = RuntimeCertificate,
    responses((status = 200, body = RuntimeView), Refusals))]
pub async fn set_sealing_cert(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RuntimeCertificate>,
) -> Result<Json<RuntimeView>, ApiError> {
    caller.require_admin()?;
    let key = check_sealing_cert("sealing_cert", &body.sealing_cert)?;
    let updated = state
        .store
        .set_runtime_sealing_cert(&name, &body.sealing_cert, &caller.actor())
        .await?;
    let queued = state
        .gitops
        .reseal(Some(&updated.name), key.fingerprint())
        .await?;
    tracing::info!(runtime = %updated.name, queued, actor = %caller.actor(), "runtime sealing certificate replaced");
    Ok(Json(view(&updated)))
}

/// Lists runtimes (admin).
#[utoipa::path(get, path = "/api/v1/runtimes", tag = "runtimes",
    responses((status = 200, body = RuntimeList), Refusals))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
) -> Result<Json<RuntimeList>, ApiError> {
    caller.require_admin()?;
    let items = state.store.list_runtimes().await?;
    Ok(Json(RuntimeList {
        items: items.iter().map(view).collect(),
    }))
}

/// One runtime (admin).
#[utoipa::path(get, path = "/api/v1/runtimes/{name}", tag = "runtimes",
    params(("name" = String, Path)),
    responses((status = 200, body = RuntimeView), Refusals))]
pub async fn show(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<Json<RuntimeView>, ApiError> {
    caller.require_admin()?;
    Ok(Json(view(&state.store.get_runtime(&name).await?)))
}

/// Deletes a runtime (admin); refused while integrations are shared with it.
#[utoipa::path(delete, path = "/api/v1/runtimes/{name}", tag = "runtimes",
    params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"), Refusals))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    state.store.delete_runtime(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
