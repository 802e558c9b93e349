//! `/api/v1/users`: people who sign in to the web pages. Passwords are write-only.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;

use crate::MetaView;

/// `POST /api/v1/users`: an admin (`admin: true`) or a member of one subscription.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    /// At least 12 characters; stored only as an argon2id hash.
    #[serde(serialize_with = "expose")]
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    #[serde(default)]
    pub admin: bool,
    /// The subscription a non-admin belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
}

/// `PUT /api/v1/users/{name}/password`. Ends the user's sessions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    #[serde(serialize_with = "expose")]
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

fn expose<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

/// A user as the API shows it: never the password or its hash.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub name: String,
    /// `admin` or `subscription`.
    pub role: String,
    pub subscription: Option<String>,
    #[serde(flatten)]
    pub meta: MetaView,
}

/// `GET /api/v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    pub items: Vec<UserView>,
}
