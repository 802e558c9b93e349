//! STS sessions: temporary keys issued, kept with their token's hash only.

use sqlx::Row;

use super::{Storage, StorageError};

impl Storage {
    pub async fn put_session(
        &self,
        access_key_id: &str,
        session: &Session,
    ) -> Result<(), StorageError> {
        let (kind, name) = match &session.holder {
            SessionHolder::Role(n) => ("role", n),
            SessionHolder::User(n) => ("user", n),
        };
        sqlx::query(
            "INSERT INTO sessions (access_key_id, token_hash, role_name, holder_kind, session_name, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(access_key_id)
        .bind(&session.token_hash)
        .bind(name)
        .bind(kind)
        .bind(&session.session_name)
        .bind(session.expires_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The session an issued temporary key belongs to.
    pub async fn session(&self, access_key_id: &str) -> Result<Option<Session>, StorageError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE access_key_id = $1")
            .bind(access_key_id)
            .fetch_optional(&self.read)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let name: String = r.try_get("role_name")?;
        let kind: String = r.try_get("holder_kind")?;
        Ok(Some(Session {
            token_hash: r.try_get("token_hash")?,
            holder: match kind.as_str() {
                "user" => SessionHolder::User(name),
                _ => SessionHolder::Role(name),
            },
            session_name: r.try_get("session_name")?,
            expires_at: r.try_get("expires_at")?,
        }))
    }
}

/// Whose temporary credentials a session key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionHolder {
    /// AssumeRole / AssumeRoleWithWebIdentity: the role's name.
    Role(String),
    /// GetSessionToken: the IAM user's name.
    User(String),
}

/// Temporary credentials STS issued; the session token is kept only as its hash.
#[derive(Debug, Clone)]
pub struct Session {
    pub token_hash: String,
    pub holder: SessionHolder,
    pub session_name: String,
    pub expires_at: i64,
}
