//! `/api/v1/gitops`: the shared configuration repository (admin) and each integration's sync
//! status. Settings are checked against the real repository before anything is saved.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use berth_api::{
    GitOpsDiff, GitOpsInput, GitOpsView, ImportNote, ImportReport, Reconciled, SyncList,
};
use berth_gitops::desired::{Found, found_integrations};
use berth_gitops::repo::{Checkout, RepoAddress, RepoCredentials};
use berth_gitops::seal::SealingKey;
use berth_store::{GitOpsSettings, GitOpsSettingsInput};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::{Refusals, timestamp};
use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::json::ApiJson;

const DEFAULT_NAMESPACE: &str = "codefresh";

fn view(s: &GitOpsSettings) -> GitOpsView {
    let key = s
        .account_cert
        .as_deref()
        .and_then(|p| SealingKey::from_pem(p).ok());
    GitOpsView {
        repo: s.repo.clone(),
        username: s.username.clone(),
        password_set: s.password.is_some(),
        account_cert_fingerprint: key.as_ref().map(|k| k.fingerprint().to_owned()),
        account_cert_expires_at: key
            .and_then(|k| k.not_after())
            .map(|t| timestamp(time::OffsetDateTime::from(t))),
        namespace: s.namespace.clone(),
        updated_at: timestamp(s.updated_at),
        updated_by: s.updated_by.clone(),
    }
}

/// A Kubernetes namespace name: RFC 1123 label, 63 characters at most.
pub(crate) fn check_namespace(ns: &str) -> Result<(), ApiError> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "namespace",
            format!(
                "'{ns}' is not a Kubernetes namespace name (lower-case letters, digits and '-', at most 63, not starting or ending with '-')"
            ),
        ))
    }
}

/// Sets the shared configuration repository (admin). The repository must answer with the
/// credentials and hold the branch; the password is sealed and never shown.
#[utoipa::path(put, path = "/api/v1/gitops", tag = "gitops",
    request_body = GitOpsInput,
    responses((status = 200, body = GitOpsView), Refusals))]
pub async fn configure(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<GitOpsInput>,
) -> Result<Json<GitOpsView>, ApiError> {
    caller.require_admin()?;
    let address =
        RepoAddress::parse(&body.repo).map_err(|e| ApiError::invalid("repo", e.to_string()))?;
    let namespace = body.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
    check_namespace(namespace)?;
    let account_key = match &body.account_cert {
        Some(pem) => Some(super::runtimes::check_sealing_cert("account_cert", pem)?),
        None => None,
    };
    let stored = state.store.gitops_settings().await?;
    let password = body
        .password
        .as_ref()
        .map(|p| p.expose_secret().to_owned())
        .or_else(|| {
            stored
                .as_ref()
                .and_then(|s| s.password.as_ref())
                .map(|p| p.expose_secret().to_owned())
        });
    let credentials = password.map(|p| RepoCredentials {
        username: body.username.clone().unwrap_or_else(|| "berth".into()),
        password: p.into(),
    });
    let scratch = std::env::temp_dir().join(format!("berth-gitops-probe-{}", std::process::id()));
    let probed =
        tokio::task::spawn_blocking(move || Checkout::probe(&scratch, &address, credentials))
            .await
            .map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            })?;
    probed.map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "repo_unreachable",
            e.to_string(),
        )
        .on_field("repo")
    })?;
    let saved = state
        .store
        .put_gitops_settings(
            &GitOpsSettingsInput {
                repo: &body.repo,
                username: body.username.as_deref(),
                password: body.password.as_ref(),
                clear_password: false,
                account_cert: body.account_cert.as_deref(),
                namespace,
            },
            &caller.actor(),
        )
        .await?;
    tracing::info!(repo = %saved.repo, actor = %caller.actor(), "GitOps repository configured");
    let old_cert = stored.as_ref().and_then(|s| s.account_cert.as_deref());
    if stored
        .as_ref()
        .is_none_or(|s| s.repo != saved.repo || s.namespace != saved.namespace)
    {
        // A new repository gets every integration already shared with runtimes; a new
        // namespace rewrites them all.
        state.gitops.reconcile().await?;
    } else if let Some(key) = account_key.filter(|_| old_cert != body.account_cert.as_deref()) {
        state.gitops.reseal(None, key.fingerprint()).await?;
    }
    Ok(Json(view(&saved)))
}

/// The shared configuration repository (admin); 404 when none is configured.
#[utoipa::path(get, path = "/api/v1/gitops", tag = "gitops",
    responses((status = 200, body = GitOpsView), Refusals))]
pub async fn show(
    State(state): State<AppState>,
    caller: Principal,
) -> Result<Json<GitOpsView>, ApiError> {
    let settings = configured(&state, &caller).await?;
    Ok(Json(view(&settings)))
}

/// The settings, for an admin; 404 when no repository is configured.
async fn configured(state: &AppState, caller: &Principal) -> Result<GitOpsSettings, ApiError> {
    caller.require_admin()?;
    state
        .store
        .gitops_settings()
        .await?
        .ok_or_else(not_configured)
}

fn not_configured() -> ApiError {
    ApiError::not_found(
        "no GitOps repository is configured: PUT /api/v1/gitops (berth gitops configure REPO)",
    )
}

/// Each integration shared with runtimes (admin): SYNCED, OUT_OF_SYNC (with what differs),
/// SYNCING or UNKNOWN, read from the branch head.
#[utoipa::path(get, path = "/api/v1/gitops/status", tag = "gitops",
    responses((status = 200, body = SyncList), Refusals))]
pub async fn status(
    State(state): State<AppState>,
    caller: Principal,
) -> Result<Json<SyncList>, ApiError> {
    let settings = configured(&state, &caller).await?;
    Ok(Json(
        crate::gitops::sync_status(&state.gitops, &settings).await?,
    ))
}

/// The repository's difference from what Berth would write (admin), as a unified diff of the
/// YAML; sealed files only as "sealed, differs".
#[utoipa::path(get, path = "/api/v1/gitops/diff", tag = "gitops",
    responses((status = 200, body = GitOpsDiff), Refusals))]
pub async fn diff(
    State(state): State<AppState>,
    caller: Principal,
) -> Result<Json<GitOpsDiff>, ApiError> {
    let settings = configured(&state, &caller).await?;
    let diff = crate::gitops::sync_diff(&state.gitops, &settings)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "repo_unreachable", e))?;
    Ok(Json(GitOpsDiff { diff }))
}

/// Re-writes the repository from Berth in one commit (admin): every integration is queued
/// and pushed together.
#[utoipa::path(post, path = "/api/v1/gitops/reconcile", tag = "gitops",
    responses((status = 202, body = Reconciled), Refusals))]
pub async fn reconcile(
    State(state): State<AppState>,
    caller: Principal,
) -> Result<(StatusCode, Json<Reconciled>), ApiError> {
    configured(&state, &caller).await?;
    let queued = state.gitops.reconcile().await?;
    Ok((StatusCode::ACCEPTED, Json(Reconciled { queued })))
}

/// The API body that creates a found integration, or why it needs its secrets first.
fn import_body(f: &Found) -> Result<Value, String> {
    let get = |k: &str| f.data.get(k).cloned();
    let auth = match (get("authMode").as_deref(), get("roleArn")) {
        (Some("ambient") | None, _) => json!({"mode": "ambient"}),
        (Some("assume_role"), Some(role))
            if get("externalIdRef").is_none() && get("roleSource").is_none() =>
        {
            json!({"mode": "assume_role", "role_arn": role, "source": "ambient"})
        }
        (Some("assume_role"), _) => {
            return Err("its external id or source keys are sealed for a cluster: add it with them (berth integration add)".into());
        }
        (Some(mode), _) => {
            return Err(format!(
                "auth mode {mode}: its keys are sealed for a cluster: add it with them (berth integration add)"
            ));
        }
    };
    let mut body = json!({"name": f.name, "type": "ecr", "auth": auth,
        "runtimes": match &f.runtimes { None => json!({"all": true}), Some(r) => json!({"selected": r}) }});
    for (field, key) in [
        ("region", "region"),
        ("registry_id", "registryId"),
        ("endpoint", "endpoint"),
    ] {
        if let Some(v) = get(key) {
            body[field] = json!(v);
        }
    }
    Ok(body)
}

/// Adopts the integrations the repository holds and Berth does not (admin): ConfigMaps without
/// secrets become integrations; those whose secrets are sealed are listed as needing them.
#[utoipa::path(post, path = "/api/v1/gitops/import", tag = "gitops",
    responses((status = 200, body = ImportReport), Refusals))]
pub async fn import(
    State(state): State<AppState>,
    caller: Principal,
) -> Result<Json<ImportReport>, ApiError> {
    let settings = configured(&state, &caller).await?;
    let files = state
        .gitops
        .at_head(&settings, |c| {
            c.yaml_files("resources").map(|paths| {
                paths
                    .into_iter()
                    .filter_map(|p| c.read(&p).ok().flatten().map(|t| (p, t)))
                    .collect::<Vec<_>>()
            })
        })
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "repo_unreachable", e))?
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "repo_unreachable", e.to_string()))?;
    let (found, unreadable) = found_integrations(&files);
    let note = |integration: Option<&str>, file: &str, reason: String| ImportNote {
        integration: integration.map(str::to_owned),
        file: file.to_owned(),
        reason,
    };
    let mut report = ImportReport {
        imported: Vec::new(),
        needs_secrets: Vec::new(),
        skipped: unreadable
            .into_iter()
            .map(|(f, r)| note(None, &f, r))
            .collect(),
    };
    for f in found {
        if state.store.get_integration(&f.name).await.is_ok() {
            continue;
        }
        match import_body(&f) {
            Err(reason) => report
                .needs_secrets
                .push(note(Some(&f.name), &f.file, reason)),
            Ok(body) => {
                match super::integrations::create_integration(&state, &caller, body).await {
                    Ok(created) => report.imported.push(created.name.to_string()),
                    Err(e) => report
                        .skipped
                        .push(note(Some(&f.name), &f.file, e.body.message)),
                }
            }
        }
    }
    Ok(Json(report))
}
