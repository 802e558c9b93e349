//! Passwords of web users: argon2id (the PHC string keeps salt and parameters), hashed and
//! checked on a blocking thread so a sign-in never stalls the request workers.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use secrecy::{ExposeSecret, SecretString};

use crate::error::ApiError;

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 1024;

/// The rule a new password must meet, named on the field it came in.
pub fn check_rule(field: &str, password: &SecretString) -> Result<(), ApiError> {
    let length = password.expose_secret().chars().count();
    if !(MIN_LENGTH..=MAX_LENGTH).contains(&length) {
        return Err(ApiError::invalid(
            field,
            format!("must be {MIN_LENGTH} to {MAX_LENGTH} characters long (got {length})"),
        ));
    }
    Ok(())
}

/// The argon2id PHC string of `password`, with a fresh salt.
pub async fn hash(password: SecretString) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt =
            SaltString::encode_b64(&crate::auth::random_bytes::<16>()).map_err(|e| internal(&e))?;
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| internal(&e))
    })
    .await
    .map_err(|e| internal(&e))?
}

/// Whether `password` matches `phc`. `None` for `phc` still spends a hash's time, so an unknown
/// user name takes as long to refuse as a wrong password.
pub async fn verify(password: SecretString, phc: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let argon = Argon2::default();
        match phc.as_deref().map(PasswordHash::new) {
            Some(Ok(parsed)) => argon
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok(),
            _ => {
                let salt = SaltString::encode_b64(&[0u8; 16]).expect("a fixed salt encodes");
                let _ = argon.hash_password(password.expose_secret().as_bytes(), &salt);
                false
            }
        }
    })
    .await
    .unwrap_or(false)
}

fn internal(e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "password hashing failed");
    ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error; the server log has the details",
    )
}
