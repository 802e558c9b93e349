//! `/login`, `/logout` and `/`. Sign-in takes a user's name and password or an API token;
//! failures are throttled per user name (or token id) in the store, so every replica counts
//! the same attempts, and answer one message whatever was wrong.

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use berth_store::TokenRole;
use berth_web::pages::{Chrome, LoginPage};
use secrecy::SecretString;
use std::collections::HashMap;
use time::{Duration, OffsetDateTime};

use super::session::{self, LOGIN_COOKIE, SESSION_COOKIE, SignedForm, SignedIn};
use super::{PageError, html};
use crate::AppState;
use crate::error::ApiError;

/// Failed sign-ins allowed per name (or token) in [`WINDOW`].
pub const MAX_FAILURES: u64 = 5;
pub const WINDOW: Duration = Duration::minutes(15);
const REFUSED: &str = "The user name and password, or the token, are not valid.";

pub async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Redirect, PageError> {
    Ok(match SignedIn::find(&headers, &state).await? {
        Some(_) => Redirect::to("/integrations"),
        None => Redirect::to("/login"),
    })
}

/// Where to go after signing in: a path on this server only.
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next.to_owned()
    } else {
        "/integrations".to_owned()
    }
}

/// The sign-in page with a fresh double-submit cookie for its form.
fn page(
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<String>,
    name: &str,
    next: &str,
) -> Response {
    let token = session::new_secret();
    let mut chrome = Chrome::new("Sign in", "");
    chrome.csrf = token.clone();
    let mut response = html(
        status,
        &LoginPage {
            chrome,
            error,
            name: name.to_owned(),
            next: safe_next(next),
        },
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(headers, LOGIN_COOKIE, &token, 3600),
    );
    response
}

pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    if SignedIn::find(&headers, &state).await?.is_some() {
        return Ok(Redirect::to("/integrations").into_response());
    }
    let next = query
        .get("next")
        .map(String::as_str)
        .unwrap_or("/integrations");
    Ok(page(&headers, StatusCode::OK, None, "", next))
}

pub async fn submit(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, PageError> {
    let headers = request.headers().clone();
    let fields = session::form_fields(request).await?;
    let next = fields.get("next").to_owned();
    let name = fields.get("name").to_owned();
    let guard = session::cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if guard.is_empty() || !session::same(fields.get("csrf"), guard) {
        return Err(PageError::Csrf);
    }
    let token = fields.get("token");
    let key = if token.is_empty() {
        format!("user:{}", name.to_ascii_lowercase())
    } else {
        format!("token:{}", token.split('_').nth(1).unwrap_or(""))
    };
    // A throttled name is refused before its password is even checked.
    let since = OffsetDateTime::now_utc() - WINDOW;
    if state.store.sign_in_failures(&key, since).await? >= MAX_FAILURES {
        return Err(throttled());
    }
    let outcome = if token.is_empty() {
        let password = SecretString::from(fields.get("password").to_owned());
        sign_in_user(&state, &name, password).await?
    } else {
        sign_in_token(&state, token).await?
    };
    let Some((user_id, token_id)) = outcome else {
        let failures = state.store.record_sign_in_failure(&key, since).await?;
        tracing::warn!(target: "berth::audit", throttle_key = %key, failures, "sign-in refused");
        if failures >= MAX_FAILURES {
            return Err(throttled());
        }
        return Ok(page(
            &headers,
            StatusCode::UNAUTHORIZED,
            Some(REFUSED.into()),
            &name,
            &next,
        ));
    };
    state.store.clear_sign_in_failures(&key).await?;
    let cookie = SignedIn::open(&state, &headers, user_id.as_deref(), token_id.as_deref()).await?;
    tracing::info!(target: "berth::audit", throttle_key = %key, "signed in");
    let mut response = Redirect::to(&safe_next(&next)).into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(&headers, LOGIN_COOKIE, "", 0),
    );
    Ok(response)
}

fn throttled() -> PageError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_sign_ins",
        format!(
            "{MAX_FAILURES} failed sign-ins in {} minutes: wait a while before trying again, or ask an admin to set a new password (berth user passwd).",
            WINDOW.whole_minutes()
        ),
    )
    .into()
}

/// `(user id, token id)` of the session to open, or `None` when refused.
type Outcome = Option<(Option<String>, Option<String>)>;

async fn sign_in_user(
    state: &AppState,
    name: &str,
    password: SecretString,
) -> Result<Outcome, PageError> {
    let record = state.store.find_user(name).await?;
    let phc = record.as_ref().map(|r| r.password_hash.clone());
    let ok = crate::passwords::verify(password, phc).await;
    Ok(record.filter(|_| ok).map(|r| (Some(r.user.id), None)))
}

async fn sign_in_token(state: &AppState, token: &str) -> Result<Outcome, PageError> {
    let generation = state.store.generation().await?;
    let info = crate::auth::verify_token(state, generation, token.trim()).await?;
    Ok(info.map(|i| {
        if i.role == TokenRole::Admin {
            tracing::info!(target: "berth::audit", token = %i.id, "web sign-in with the admin token");
        }
        (None, Some(i.id))
    }))
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: SignedForm,
) -> Result<Response, PageError> {
    state.store.end_session(&form.signed.id_hash).await?;
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(&headers, SESSION_COOKIE, "", 0),
    );
    Ok(response)
}
