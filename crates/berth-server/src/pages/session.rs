//! Web sessions: an HttpOnly, SameSite=Strict cookie holding a random secret, found in the
//! store by the secret's SHA-256 (the cookie itself is never stored), and a CSRF token derived
//! from the secret that every state-changing form must carry. Before sign-in, a separate
//! random cookie guards the sign-in form the same way (double submit).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_store::SessionOwner;
use berth_web::forms::Fields;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use super::PageError;
use crate::AppState;
use crate::auth::{Principal, random_bytes};
use crate::error::ApiError;

pub const SESSION_COOKIE: &str = "berth_session";
pub const LOGIN_COOKIE: &str = "berth_login";
/// A session ends this long after sign-in.
pub const LIFETIME: Duration = Duration::hours(8);
const FORM_LIMIT: usize = 64 * 1024;

/// The named cookie's value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for `name`; `Secure` when the request came over TLS (directly or through a
/// proxy that says so), so the cookie never travels in the clear afterwards.
pub fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let text = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).expect("cookie text is ASCII")
}

pub fn new_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

pub fn id_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// The CSRF token of a session: derived from its secret, so nothing more is stored, and
/// useless to anyone who cannot read the HttpOnly cookie.
pub fn csrf_of(secret: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"berth csrf\0")
        .chain_update(secret.as_bytes())
        .finalize();
    URL_SAFE_NO_PAD.encode(&digest[..24])
}

pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A signed-in person or token holder: who they are to the policy, how the pages name them,
/// and their session's CSRF token.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub caller: Principal,
    pub label: String,
    pub csrf: String,
    pub id_hash: Vec<u8>,
}

impl SignedIn {
    /// The session in the request's cookie, if it is live.
    pub async fn find(headers: &HeaderMap, state: &AppState) -> Result<Option<Self>, ApiError> {
        let Some(secret) = cookie(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let hash = id_hash(secret);
        let generation = state.store.generation().await?;
        let key = berth_files::hex(&hash);
        let session = match state.cache.session(generation, &key) {
            Some(hit) => hit,
            None => {
                let Some(found) = state.store.find_session(&hash).await? else {
                    return Ok(None);
                };
                state.cache.put_session(generation, key, found.clone());
                found
            }
        };
        if session.expires_at <= OffsetDateTime::now_utc() {
            return Ok(None);
        }
        let (caller, label) = match &session.owner {
            SessionOwner::User(user) => {
                (Principal::of_user(user, generation), user.name.to_string())
            }
            SessionOwner::Token(token) => (
                Principal::of_token(token, generation),
                match &token.role {
                    berth_store::TokenRole::Admin => "admin token".to_owned(),
                    berth_store::TokenRole::Subscription(s) => format!("{s} token"),
                },
            ),
        };
        Ok(Some(SignedIn {
            caller,
            label,
            csrf: csrf_of(secret),
            id_hash: hash,
        }))
    }

    /// Opens a session and answers the cookie that carries it.
    pub async fn open(
        state: &AppState,
        headers: &HeaderMap,
        user_id: Option<&str>,
        token_id: Option<&str>,
    ) -> Result<HeaderValue, ApiError> {
        let secret = new_secret();
        let expires = OffsetDateTime::now_utc() + LIFETIME;
        state
            .store
            .open_session(&id_hash(&secret), user_id, token_id, expires)
            .await?;
        Ok(set_cookie(
            headers,
            SESSION_COOKIE,
            &secret,
            LIFETIME.whole_seconds(),
        ))
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        match SignedIn::find(&parts.headers, state).await? {
            Some(signed) => Ok(signed),
            None => Err(PageError::SignIn {
                next: parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_else(|| "/".into()),
            }),
        }
    }
}

/// A state-changing form from a signed-in caller whose CSRF token matched.
pub struct SignedForm {
    pub signed: SignedIn,
    pub fields: Fields,
}

impl FromRequest<AppState> for SignedForm {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        let (mut parts, body) = req.into_parts();
        let signed = SignedIn::from_request_parts(&mut parts, state).await?;
        let fields = form_fields(Request::from_parts(parts, body)).await?;
        if !same(fields.get("csrf"), &signed.csrf) {
            return Err(PageError::Csrf);
        }
        Ok(SignedForm { signed, fields })
    }
}

/// The urlencoded fields of a form post, at most 64 KiB.
pub async fn form_fields(req: Request) -> Result<Fields, PageError> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "forms are sent as application/x-www-form-urlencoded",
        )
        .into());
    }
    let body = axum::body::to_bytes(req.into_body(), FORM_LIMIT)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the form is larger than 64 KiB",
            )
        })?;
    Ok(Fields::parse(&body))
}
