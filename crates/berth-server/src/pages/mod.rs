//! The web pages, on the same listener as the API: one file per page family, each handler a
//! thin wrapper that authenticates the session, calls the same operation the API calls (so the
//! one policy and the one validation apply) and renders `berth-web`'s templates. A request
//! with `X-Berth-Fragment` gets only the part the script replaces. Every answer carries the
//! security headers; errors render as one HTML page that never shows internals.

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use berth_web::Template;
use berth_web::pages::{Chrome, ErrorPage};

use crate::AppState;
use crate::error::ApiError;

mod gitops;
mod images;
mod integrations;
mod login;
mod records;
pub(crate) mod session;

pub use integrations::ListData;
pub use session::SignedIn;

/// The pages' routes, to merge beside the API's.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(login::home))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/assets/{file}", get(asset))
        .merge(integrations::router())
        .merge(records::router())
        .merge(gitops::router())
        .merge(images::router())
        .layer(axum::middleware::from_fn(security_headers))
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Cookie, X-Berth-Fragment"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn asset(Path(file): Path<String>) -> Response {
    match berth_web::assets::find(&file) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            a.body,
        )
            .into_response(),
        None => {
            PageError::Api(ApiError::not_found(format!("no asset named '{file}'"))).into_response()
        }
    }
}

/// Whether the script asked for the fragment only.
pub fn wants_fragment(headers: &HeaderMap) -> bool {
    headers.contains_key("x-berth-fragment")
}

/// A template as an HTML answer with `status`.
pub fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(text) => (status, Html(text)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("internal error".to_owned()),
            )
                .into_response()
        }
    }
}

/// A template rendered to text, for a page that embeds a fragment.
pub fn render(fragment: &impl Template) -> String {
    fragment.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a fragment failed to render");
        String::new()
    })
}

/// The chrome of a page for a signed-in caller.
pub fn chrome(signed: &SignedIn, title: impl Into<String>, section: &'static str) -> Chrome {
    let mut c = Chrome::new(title, section);
    c.signed_in_as = Some(signed.label.clone());
    c.is_admin = signed.caller.is_admin();
    c.csrf = signed.csrf.clone();
    c
}

/// Why a page could not be served: each renders as a page, never as JSON or internals.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in: go to the sign-in page, then back.
    SignIn {
        next: String,
    },
    /// The form's CSRF token is missing or not this session's.
    Csrf,
    Api(ApiError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError::Api(e)
    }
}

impl From<berth_store::StoreError> for PageError {
    fn from(e: berth_store::StoreError) -> Self {
        PageError::Api(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            PageError::SignIn { next } => {
                let target = format!(
                    "/login?{}",
                    form_urlencoded::Serializer::new(String::new())
                        .append_pair("next", &next)
                        .finish()
                );
                return Redirect::to(&target).into_response();
            }
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The form was not sent from this session (its CSRF token is missing or stale), so nothing was changed. Reload the page and try again.".to_owned(),
            ),
            PageError::Api(e) => (
                e.status,
                match e.status {
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::FORBIDDEN => "Not allowed",
                    StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
                    s if s.is_server_error() => "Something went wrong",
                    _ => "That did not work",
                },
                e.body.message.clone(),
            ),
        };
        let page = ErrorPage {
            chrome: Chrome::new(heading, ""),
            heading: heading.to_owned(),
            message,
            back: "/".into(),
            back_label: "Back to Berth".into(),
        };
        html(status, &page)
    }
}
