//! API tokens: `brt_<id>_<secret>`. Only the SHA-256 of the secret part is stored; a request's
//! token is found by its id and its secret compared in constant time. Admin tokens may do
//! everything; subscription tokens may read what their subscription was given, nothing more.

use std::path::Path;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_core::Name;
use berth_store::{TokenInfo, TokenRole, User, seal::write_private_atomically};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::{AppState, StartError};

pub const PREFIX: &str = "brt_";
pub const INITIAL_ADMIN_TOKEN_FILE: &str = "initial-admin-token";

/// A freshly minted token: the full text (shown once) and what is stored.
pub struct NewToken {
    pub id: String,
    pub text: SecretString,
    pub secret_hash: Vec<u8>,
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    bytes
}

pub fn mint() -> NewToken {
    let id = berth_files::hex(&random_bytes::<6>());
    let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    NewToken {
        secret_hash: Sha256::digest(secret.as_bytes()).to_vec(),
        text: SecretString::from(format!("{PREFIX}{id}_{secret}")),
        id,
    }
}

/// Splits `brt_<id>_<secret>`; the id is hex, so the first `_` after it ends it.
fn split(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && !secret.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some((id, secret))
}

/// Who is calling, and the store generation read while authenticating them (handlers that
/// cache key their entries by it). An API token and a signed-in user are the same to the
/// policy: an admin, or a member of one subscription.
#[derive(Debug, Clone)]
pub struct Principal {
    pub access: TokenRole,
    /// How the caller is recorded in `created_by` / `updated_by`.
    actor: String,
    pub generation: i64,
}

impl Principal {
    pub fn of_token(info: &TokenInfo, generation: i64) -> Self {
        let actor = match &info.role {
            TokenRole::Admin => format!("admin ({})", info.id),
            TokenRole::Subscription(s) => format!("subscription {s} ({})", info.id),
        };
        Principal {
            access: info.role.clone(),
            actor,
            generation,
        }
    }

    pub fn of_user(user: &User, generation: i64) -> Self {
        Principal {
            access: user.role.clone(),
            actor: format!("user {}", user.name),
            generation,
        }
    }

    /// How the caller is recorded in `created_by` / `updated_by`.
    pub fn actor(&self) -> String {
        self.actor.clone()
    }

    pub fn is_admin(&self) -> bool {
        self.access == TokenRole::Admin
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        match &self.access {
            TokenRole::Admin => Ok(()),
            TokenRole::Subscription(subscription) => Err(ApiError::forbidden(format!(
                "this caller belongs to subscription '{subscription}' and may only read what is assigned to it; an admin is needed to change anything"
            ))),
        }
    }

    /// The subscription the caller is confined to, if any.
    pub fn subscription(&self) -> Option<&Name> {
        match &self.access {
            TokenRole::Admin => None,
            TokenRole::Subscription(subscription) => Some(subscription),
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "missing Authorization header: send 'Authorization: Bearer <token>' (see BERTH_TOKEN)",
                )
            })?
            .to_str()
            .map_err(|_| ApiError::unauthorized("Authorization header is not valid text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::unauthorized("Authorization must use the Bearer scheme"))?
            .trim();
        let generation = state.store.generation().await?;
        let info = verify_token(state, generation, token)
            .await?
            .ok_or_else(invalid_token)?;
        Ok(Principal::of_token(&info, generation))
    }
}

fn invalid_token() -> ApiError {
    ApiError::unauthorized("the token is not valid (revoked, rotated or mistyped)")
}

/// The token's record when `token` is a valid token's full text.
pub(crate) async fn verify_token(
    state: &AppState,
    generation: i64,
    token: &str,
) -> Result<Option<TokenInfo>, ApiError> {
    let Some((id, secret)) = split(token) else {
        return Ok(None);
    };
    let record = match state.cache.token(generation, id) {
        Some(hit) => Some(hit),
        None => {
            let found = state.store.find_token(id).await?;
            if let Some(r) = &found {
                state.cache.put_token(generation, r.clone());
            }
            found
        }
    };
    let presented = Sha256::digest(secret.as_bytes());
    // Compare even when the id is unknown, so timing does not reveal which ids exist.
    let stored = record
        .as_ref()
        .map(|r| r.secret_hash.as_slice())
        .unwrap_or(&[0u8; 32]);
    let matches: bool = presented.as_slice().ct_eq(stored).into();
    Ok(record.filter(|_| matches).map(|r| r.info))
}

/// On first start: mints the admin token and writes it to `<data-dir>/initial-admin-token`
/// (mode 0600). Returns the token when this call created it.
pub async fn bootstrap_admin_token(
    store: &dyn berth_store::Store,
    data_dir: &Path,
) -> Result<Option<SecretString>, StartError> {
    let token = mint();
    if !store
        .create_first_admin_token(&token.id, &token.secret_hash, "berth (first start)")
        .await?
    {
        return Ok(None);
    }
    write_token_file(data_dir, &token.text)?;
    Ok(Some(token.text))
}

/// Replaces the admin token (all sessions using the old one stop working at once).
pub async fn rotate_admin_token(
    store: &dyn berth_store::Store,
    data_dir: &Path,
) -> Result<SecretString, StartError> {
    let token = mint();
    store
        .replace_admin_token(&token.id, &token.secret_hash, "berth token rotate-admin")
        .await?;
    write_token_file(data_dir, &token.text)?;
    Ok(token.text)
}

fn write_token_file(data_dir: &Path, token: &SecretString) -> Result<(), StartError> {
    let path = data_dir.join(INITIAL_ADMIN_TOKEN_FILE);
    write_private_atomically(&path, format!("{}\n", token.expose_secret()).as_bytes())
        .map_err(|source| StartError::Io { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_split_back_and_hash_their_secret() {
        let t = mint();
        let (id, secret) = split(t.text.expose_secret()).unwrap();
        assert_eq!(id, t.id);
        assert_eq!(Sha256::digest(secret.as_bytes()).to_vec(), t.secret_hash);
        assert!(split("brt__x").is_none());
        assert!(split("xyz_ab_cd").is_none());
        assert!(split("brt_zz_cd").is_none());
        assert_ne!(mint().text.expose_secret(), t.text.expose_secret());
    }
}
