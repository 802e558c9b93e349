//! Registry v2 / OCI distribution 1.1 at `/v2/`, with ECR's authentication (Basic `AWS:<token>`
//! from GetAuthorizationToken) and ECR's rules: no repository is created on push unless asked,
//! immutable tags cannot move, cross-repository mounts only for blobs a manifest there uses.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, BodyDataStream};
use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::error::OciError;
use crate::oci::{self, MAX_MANIFEST_BYTES};
use crate::range::ByteRange;
use crate::storage::{Repository, StorageError, now_epoch};
use crate::token::{Claims, TokenError};
use crate::{State, iam::Policy};

pub fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/v2/", any(dispatch))
        .route("/v2", any(dispatch))
        .route("/v2/{*rest}", any(dispatch))
}

/// The registry namespace and policy a token grants.
struct Access {
    registry_id: String,
    region: String,
    /// `user:<name>` or `role:<name>`: whose upload sessions these are.
    principal: String,
    policy: Policy,
}

impl Access {
    fn require(&self, action: &str, repo: &str) -> Result<(), OciError> {
        if self.policy.allows(action, Some(repo)) {
            Ok(())
        } else {
            Err(OciError::new(
                StatusCode::FORBIDDEN,
                "DENIED",
                format!("User is not authorized to perform: {action} on repository {repo}"),
            ))
        }
    }
}

/// The query of a layer download URL: the claims in clear, and a signature over them, the
/// repository and the digest.
fn download_query(c: &Claims, signature: &str) -> String {
    format!(
        "X-Berth-Registry={}&X-Berth-Region={}&X-Berth-Principal={}&X-Berth-Expires={}&X-Berth-Signature={signature}",
        c.registry_id,
        c.region,
        c.principal.replace(':', "%3A"),
        c.expires_at
    )
}

/// How long a layer download URL (GetDownloadUrlForLayer's, or a blob GET's redirect) is valid.
pub(crate) const DOWNLOAD_URL_SECONDS: i64 = 600;

/// A pre-signed URL for one layer of `repository`: the blob store's own when it serves
/// downloads (S3), else on the layer bucket when there is one, else on `/v2/` itself.
pub(crate) async fn layer_download_url(
    state: &State,
    claims: &Claims,
    repository: &str,
    digest: &str,
) -> Result<String, OciError> {
    let ttl = std::time::Duration::from_secs(DOWNLOAD_URL_SECONDS as u64);
    if let Some(url) = state
        .storage
        .blobs
        .download_url(digest, ttl)
        .await
        .map_err(OciError::server)?
    {
        return Ok(url);
    }
    let signature = state.keys.sign_download(claims, repository, digest);
    let base = state.layer_url.as_deref().unwrap_or(&state.public_url);
    Ok(format!(
        "{base}/v2/{repository}/blobs/{digest}?{}",
        download_query(claims, &signature)
    ))
}

/// `n=` of a listing: a whole number from 1 to 1000 (larger asks are served 1000, as ECR does).
fn page_size(query: &HashMap<String, String>) -> Result<i64, OciError> {
    match query.get("n") {
        None => Ok(1000),
        Some(n) => match n.parse::<i64>() {
            Ok(v) if v >= 1 => Ok(v.min(1000)),
            _ => Err(OciError::new(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                format!(
                    "invalid number of results requested: n must be a whole number from 1 to 1000, not '{n}'"
                ),
            )),
        },
    }
}

fn challenge(state: &State) -> OciError {
    let mut e = OciError::new(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "authentication required",
    );
    e.www_authenticate = Some(format!(
        "Basic realm=\"{}/\",service=\"ecr.amazonaws.com\"",
        state.public_url
    ));
    e
}

fn expired() -> OciError {
    OciError::new(
        StatusCode::FORBIDDEN,
        "DENIED",
        "Your authorization token has expired. Reauthenticate and try again.",
    )
}

/// A pre-signed download URL: valid for a GET or HEAD of exactly the blob it was made for.
fn presigned(
    state: &State,
    method: &Method,
    target: &Target<'_>,
    query: &HashMap<String, String>,
) -> Result<Claims, OciError> {
    let field = |k: &str| query.get(k).cloned().ok_or_else(|| challenge(state));
    let claims = Claims {
        registry_id: field("X-Berth-Registry")?,
        region: field("X-Berth-Region")?,
        principal: field("X-Berth-Principal")?,
        expires_at: field("X-Berth-Expires")?
            .parse()
            .map_err(|_| challenge(state))?,
    };
    let signature = field("X-Berth-Signature")?;
    let (Target::Blob(repo, digest), true) =
        (target, method == Method::GET || method == Method::HEAD)
    else {
        return Err(OciError::new(
            StatusCode::FORBIDDEN,
            "DENIED",
            "a layer download URL is valid only for a GET of its own layer",
        ));
    };
    state
        .keys
        .verify_download(&claims, repo, digest, &signature, now_epoch())
        .map_err(|e| match e {
            TokenError::Expired => expired(),
            TokenError::Invalid => OciError::new(
                StatusCode::FORBIDDEN,
                "DENIED",
                "the layer download URL's signature does not match this layer",
            ),
        })?;
    Ok(claims)
}

fn authenticate(
    state: &State,
    method: &Method,
    target: &Target<'_>,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Access, OciError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let claims = match auth {
        Some(value) => {
            let encoded = value
                .strip_prefix("Basic ")
                .ok_or_else(|| challenge(state))?;
            let decoded = B64.decode(encoded.trim()).map_err(|_| challenge(state))?;
            let text = String::from_utf8(decoded).map_err(|_| challenge(state))?;
            let (user, password) = text.split_once(':').ok_or_else(|| challenge(state))?;
            if user != "AWS" {
                return Err(challenge(state));
            }
            state
                .keys
                .verify(password, now_epoch())
                .map_err(|e| match e {
                    TokenError::Expired => expired(),
                    TokenError::Invalid => challenge(state),
                })?
        }
        None if query.contains_key("X-Berth-Signature") => presigned(state, method, target, query)?,
        None => return Err(challenge(state)),
    };
    let policy = match claims.principal.split_once(':') {
        Some(("user", name)) => state.iam.user_by_name(name).map(|u| u.policy.clone()),
        Some(("role", name)) => state.iam.role_by_name(name).map(|r| r.policy.clone()),
        _ => None,
    }
    .ok_or_else(|| challenge(state))?;
    Ok(Access {
        registry_id: claims.registry_id,
        region: claims.region,
        principal: claims.principal,
        policy,
    })
}

fn header(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
}

fn empty(status: StatusCode) -> Response {
    let mut r = status.into_response();
    header(&mut r, "content-length", "0");
    r
}

enum Target<'a> {
    Base,
    Catalog,
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Uploads(&'a str),
    Upload(&'a str, &'a str),
    Blob(&'a str, &'a str),
    Referrers(&'a str, &'a str),
}

fn route(rest: &str) -> Option<Target<'_>> {
    if rest.is_empty() {
        return Some(Target::Base);
    }
    if rest == "_catalog" {
        return Some(Target::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Target::Tags(name));
    }
    if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        return Some(Target::Manifest(name, reference));
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Target::Uploads(name));
    }
    if let Some((name, id)) = rest.rsplit_once("/blobs/uploads/") {
        return Some(Target::Upload(name, id));
    }
    if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
        return Some(Target::Blob(name, digest));
    }
    if let Some((name, digest)) = rest.rsplit_once("/referrers/") {
        return Some(Target::Referrers(name, digest));
    }
    None
}

async fn dispatch(
    AxState(state): AxState<Arc<State>>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let rest = uri.path().trim_start_matches("/v2").trim_start_matches('/');
    let mut response = match run(&state, &method, rest, &query, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    header(
        &mut response,
        "docker-distribution-api-version",
        "registry/2.0",
    );
    response
}

async fn repo_for(
    state: &State,
    access: &Access,
    name: &str,
    create: bool,
) -> Result<Repository, OciError> {
    if !oci::valid_repository_name(name) {
        return Err(OciError::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            format!("invalid repository name '{name}'"),
        ));
    }
    let st = &state.storage;
    match st
        .repository(&access.registry_id, &access.region, name)
        .await
        .map_err(OciError::server)?
    {
        Some(r) => Ok(r),
        None if create && state.create_on_push => {
            match st
                .create_repository(&access.registry_id, &access.region, name, "MUTABLE")
                .await
            {
                Ok(r) => Ok(r),
                Err(StorageError::RepositoryExists) => st
                    .repository(&access.registry_id, &access.region, name)
                    .await
                    .map_err(OciError::server)?
                    .ok_or_else(|| OciError::name_unknown(name)),
                Err(e) => Err(OciError::server(e)),
            }
        }
        None => Err(OciError::name_unknown(name)),
    }
}

fn digest_arg(d: &str) -> Result<&str, OciError> {
    oci::parse_digest(d).map_err(OciError::digest_invalid)
}

fn upload_location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

/// An upload's state, announcing the smallest chunk it accepts (`OCI-Chunk-Min-Length`), so
/// clients that read it size their chunks.
fn accepted_upload(
    name: &str,
    id: &str,
    offset: u64,
    status: StatusCode,
    min_chunk: u64,
) -> Response {
    let mut r = empty(status);
    header(&mut r, "location", &upload_location(name, id));
    header(&mut r, "range", &format!("0-{}", offset.saturating_sub(1)));
    header(&mut r, "docker-upload-uuid", id);
    if min_chunk > 0 {
        header(&mut r, "oci-chunk-min-length", &min_chunk.to_string());
    }
    r
}

fn created_blob(name: &str, digest: &str) -> Response {
    let mut r = empty(StatusCode::CREATED);
    header(&mut r, "location", &format!("/v2/{name}/blobs/{digest}"));
    header(&mut r, "docker-content-digest", digest);
    r
}

fn map_upload_error(e: StorageError, name: &str, id: &str) -> OciError {
    match e {
        StorageError::UploadNotFound => OciError::upload_unknown(),
        StorageError::OutOfOrder { have, .. } => {
            let mut err = OciError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UPLOAD_INVALID",
                format!("chunk out of order: the upload {id} of {name} continues at byte {have}"),
            );
            err.range = Some(format!("0-{}", have.saturating_sub(1)));
            err
        }
        StorageError::PartTooSmall { previous, min } => OciError::new(
            StatusCode::BAD_REQUEST,
            "SIZE_INVALID",
            format!(
                "the previous chunk was {previous} bytes; every chunk but the last must be at least {min} bytes"
            ),
        ),
        StorageError::DigestMismatch { computed } => OciError::digest_invalid(format!(
            "provided digest did not match uploaded content (computed {computed})"
        )),
        StorageError::TooManyUploads { .. } => OciError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOOMANYREQUESTS",
            e.to_string(),
        ),
        StorageError::DiskFull { .. } => {
            tracing::error!(error = %e, "upload refused");
            OciError::new(StatusCode::INSUFFICIENT_STORAGE, "UNKNOWN", e.to_string())
        }
        other => OciError::server(other),
    }
}

/// `Content-Range: <start>-<end>` (also `bytes <start>-<end>/<total>`): the start offset.
fn content_range_start(headers: &HeaderMap) -> Result<Option<u64>, OciError> {
    let Some(v) = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let v = v.trim_start_matches("bytes ").trim_start_matches("bytes=");
    let start = v
        .split(['-', '/'])
        .next()
        .and_then(|s| s.trim().parse::<u64>().ok());
    start.map(Some).ok_or_else(|| {
        OciError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            format!("invalid Content-Range '{v}'"),
        )
    })
}

/// The parts of a request every endpoint may read.
#[derive(Clone, Copy)]
struct Req<'a> {
    state: &'a State,
    access: &'a Access,
    method: &'a Method,
    query: &'a HashMap<String, String>,
    headers: &'a HeaderMap,
}

impl Req<'_> {
    /// The repository `name` once the caller's policy allows `action` on it.
    async fn repository(
        &self,
        action: &str,
        name: &str,
        create: bool,
    ) -> Result<Repository, OciError> {
        self.access.require(action, name)?;
        repo_for(self.state, self.access, name, create).await
    }
}

async fn run(
    state: &State,
    method: &Method,
    rest: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, OciError> {
    let target = route(rest).ok_or_else(|| {
        OciError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "no such registry endpoint",
        )
    })?;
    let access = authenticate(state, method, &target, headers, query)?;
    let req = Req {
        state,
        access: &access,
        method,
        query,
        headers,
    };
    let get_or_head = method == Method::GET || method == Method::HEAD;
    match target {
        Target::Base if get_or_head => Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .expect("static response")),
        Target::Catalog if method == Method::GET => catalog(req).await,
        Target::Tags(name) if method == Method::GET => tags(req, name).await,
        Target::Manifest(name, reference) => manifest(req, name, reference, body).await,
        Target::Uploads(name) if method == Method::POST => {
            let mut body = UploadBody::new(req.headers, body);
            let answer = start_upload(req, name, &mut body.stream).await;
            body.discard_if_refused(answer.is_err()).await;
            answer
        }
        Target::Upload(name, id) => {
            let mut body = UploadBody::new(req.headers, body);
            let answer = upload(req, name, id, &mut body.stream).await;
            body.discard_if_refused(answer.is_err()).await;
            answer
        }
        Target::Blob(name, digest) if get_or_head => get_blob(req, name, digest).await,
        Target::Referrers(name, digest) if method == Method::GET => {
            referrers(req, name, digest).await
        }
        _ => Err(unsupported()),
    }
}

/// Catalog: the repositories the policy covers, a page at a time.
async fn catalog(req: Req<'_>) -> Result<Response, OciError> {
    let Req {
        state,
        access,
        query,
        ..
    } = req;
    let st = &state.storage;
    let n = page_size(query)?;
    let repos = st
        .repositories(
            &access.registry_id,
            &access.region,
            query.get("last").map(String::as_str),
            n + 1,
        )
        .await
        .map_err(OciError::server)?;
    let page: Vec<&str> = repos
        .iter()
        .take(n as usize)
        .map(|r| r.name.as_str())
        .collect();
    // The link continues after the page's last name, listed or not.
    let last = page.last().copied();
    let names: Vec<&str> = page
        .into_iter()
        .filter(|name| access.policy.covers_repository(name))
        .collect();
    let mut r = (StatusCode::OK, axum::Json(json!({"repositories": names}))).into_response();
    if repos.len() as i64 > n
        && let Some(last) = last
    {
        header(
            &mut r,
            "link",
            &format!("</v2/_catalog?n={n}&last={last}>; rel=\"next\""),
        );
    }
    Ok(r)
}

/// A repository's tags, a page at a time.
async fn tags(req: Req<'_>, name: &str) -> Result<Response, OciError> {
    let Req { state, query, .. } = req;
    let st = &state.storage;
    let repo = req.repository("ecr:ListImages", name, false).await?;
    let n = page_size(query)?;
    let tags = st
        .tags(repo.id, query.get("last").map(String::as_str), n + 1)
        .await
        .map_err(OciError::server)?;
    let page: Vec<&String> = tags.iter().take(n as usize).collect();
    let mut r = (
        StatusCode::OK,
        axum::Json(json!({"name": name, "tags": page})),
    )
        .into_response();
    if tags.len() as i64 > n
        && let Some(last) = page.last()
    {
        header(
            &mut r,
            "link",
            &format!("</v2/{name}/tags/list?n={n}&last={last}>; rel=\"next\""),
        );
    }
    Ok(r)
}

/// POST: a cross-repository mount, a monolithic upload, or a new session.
async fn start_upload(
    req: Req<'_>,
    name: &str,
    body: &mut BodyDataStream,
) -> Result<Response, OciError> {
    let Req {
        state,
        access,
        query,
        ..
    } = req;
    let st = &state.storage;
    let repo = req
        .repository("ecr:InitiateLayerUpload", name, true)
        .await?;
    if let (Some(digest), Some(from)) = (query.get("mount"), query.get("from")) {
        let digest = digest_arg(digest)?;
        if access.policy.allows("ecr:BatchGetImage", Some(from))
            && let Some(source) = st
                .repository(&access.registry_id, &access.region, from)
                .await
                .map_err(OciError::server)?
            && st
                .mount(source.id, repo.id, digest)
                .await
                .map_err(OciError::server)?
                .is_some()
        {
            return Ok(created_blob(name, digest));
        }
    }
    let id = st
        .uploads
        .start(repo.id, &access.principal)
        .await
        .map_err(|e| map_upload_error(e, name, ""))?;
    if let Some(digest) = query.get("digest") {
        let digest = digest_arg(digest)?.to_owned();
        st.uploads
            .append(repo.id, &id, Some(0), body)
            .await
            .map_err(|e| map_upload_error(e, name, &id))?;
        st.finish_upload(repo.id, &id, &digest)
            .await
            .map_err(|e| map_upload_error(e, name, &id))?;
        return Ok(created_blob(name, &digest));
    }
    Ok(accepted_upload(
        name,
        &id,
        0,
        StatusCode::ACCEPTED,
        st.uploads.min_part(),
    ))
}

/// An upload request's body, read by the endpoint as far as it goes. When the endpoint refuses
/// the request early, what the client still sends is discarded ([`crate::uploads::drain`]): a
/// client that sends its body at once, without waiting for `100 Continue` (Go's HTTP client,
/// the OCI conformance tooling), then reads the refusal instead of a reset connection, and the
/// connection stays usable. A client that asked for `100 Continue` never got it and sends
/// nothing more, so nothing is read for it.
struct UploadBody {
    stream: BodyDataStream,
    waits_for_continue: bool,
}

impl UploadBody {
    fn new(headers: &HeaderMap, body: Body) -> Self {
        UploadBody {
            stream: body.into_data_stream(),
            waits_for_continue: headers
                .get(header::EXPECT)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue")),
        }
    }

    async fn discard_if_refused(&mut self, refused: bool) {
        if refused && !self.waits_for_continue {
            crate::uploads::drain(&mut self.stream).await;
        }
    }
}

/// An upload session: its offset (GET), a chunk (PATCH), the last chunk (PUT), cancel (DELETE).
async fn upload(
    req: Req<'_>,
    name: &str,
    id: &str,
    body: &mut BodyDataStream,
) -> Result<Response, OciError> {
    let Req {
        state,
        method,
        query,
        headers,
        ..
    } = req;
    let st = &state.storage;
    let repo = req.repository("ecr:UploadLayerPart", name, false).await?;
    match *method {
        Method::GET => {
            let offset = st
                .uploads
                .offset(repo.id, id)
                .await
                .map_err(|e| map_upload_error(e, name, id))?;
            Ok(accepted_upload(
                name,
                id,
                offset,
                StatusCode::NO_CONTENT,
                st.uploads.min_part(),
            ))
        }
        Method::PATCH => {
            let start = content_range_start(headers)?;
            let offset = st
                .uploads
                .append(repo.id, id, start, &mut *body)
                .await
                .map_err(|e| map_upload_error(e, name, id))?;
            Ok(accepted_upload(
                name,
                id,
                offset,
                StatusCode::ACCEPTED,
                st.uploads.min_part(),
            ))
        }
        Method::PUT => {
            let digest =
                digest_arg(query.get("digest").map(String::as_str).unwrap_or(""))?.to_owned();
            let start = content_range_start(headers)?;
            st.uploads
                .append(repo.id, id, start, &mut *body)
                .await
                .map_err(|e| map_upload_error(e, name, id))?;
            st.finish_upload(repo.id, id, &digest)
                .await
                .map_err(|e| map_upload_error(e, name, id))?;
            Ok(created_blob(name, &digest))
        }
        Method::DELETE => {
            st.uploads
                .cancel(repo.id, id)
                .await
                .map_err(|e| map_upload_error(e, name, id))?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(unsupported()),
    }
}

/// GET or HEAD of a blob the repository holds.
async fn get_blob(req: Req<'_>, name: &str, digest: &str) -> Result<Response, OciError> {
    let Req {
        state,
        access,
        method,
        headers,
        ..
    } = req;
    let st = &state.storage;
    access.require(
        if method == Method::HEAD {
            "ecr:BatchCheckLayerAvailability"
        } else {
            "ecr:GetDownloadUrlForLayer"
        },
        name,
    )?;
    let digest = digest_arg(digest)?;
    let repo = repo_for(state, access, name, false).await?;
    let size = st
        .blob_in_repo(repo.id, digest)
        .await
        .map_err(OciError::server)?
        .ok_or_else(|| OciError::blob_unknown(digest))? as u64;
    if method == Method::GET && (state.layer_url.is_some() || st.blobs.serves_downloads()) {
        return redirect_to_layer(state, access, name, digest).await;
    }
    blob(state, method, digest, size, headers).await
}

/// ECR's answer to a blob GET: 307 to a pre-signed URL where the bytes are served.
async fn redirect_to_layer(
    state: &State,
    access: &Access,
    name: &str,
    digest: &str,
) -> Result<Response, OciError> {
    let claims = Claims {
        registry_id: access.registry_id.clone(),
        region: access.region.clone(),
        principal: access.principal.clone(),
        expires_at: now_epoch() + DOWNLOAD_URL_SECONDS,
    };
    let mut r = empty(StatusCode::TEMPORARY_REDIRECT);
    header(
        &mut r,
        "location",
        &layer_download_url(state, &claims, name, digest).await?,
    );
    Ok(r)
}

/// The referrers API: an index of the manifests whose `subject` is `digest`.
async fn referrers(req: Req<'_>, name: &str, digest: &str) -> Result<Response, OciError> {
    let Req {
        state,
        access,
        query,
        ..
    } = req;
    let st = &state.storage;
    access.require("ecr:BatchGetImage", name)?;
    let digest = digest_arg(digest)?;
    let repo = repo_for(state, access, name, false).await?;
    let filter = query.get("artifactType");
    let mut manifests = Vec::new();
    for m in st
        .referrers(repo.id, digest)
        .await
        .map_err(OciError::server)?
    {
        if filter.is_some_and(|f| m.artifact_type.as_ref() != Some(f)) {
            continue;
        }
        let annotations = serde_json::from_slice::<serde_json::Value>(&m.body)
            .ok()
            .and_then(|v| v.get("annotations").cloned());
        let mut d = json!({"mediaType": m.media_type, "digest": m.digest, "size": m.body.len()});
        if let Some(a) = &m.artifact_type {
            d["artifactType"] = json!(a);
        }
        if let Some(a) = annotations {
            d["annotations"] = a;
        }
        manifests.push(d);
    }
    let body = json!({"schemaVersion": 2, "mediaType": oci::OCI_INDEX, "manifests": manifests});
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, oci::OCI_INDEX)],
        body.to_string(),
    )
        .into_response();
    if filter.is_some() {
        header(&mut r, "oci-filters-applied", "artifactType");
    }
    Ok(r)
}

fn unsupported() -> OciError {
    OciError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
        "The operation is unsupported.",
    )
}

async fn blob(
    state: &State,
    method: &Method,
    digest: &str,
    size: u64,
    headers: &HeaderMap,
) -> Result<Response, OciError> {
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match crate::range::byte_range(range, size) {
        ByteRange::Whole => (StatusCode::OK, 0, size.saturating_sub(1)),
        ByteRange::Part { first, last } => (StatusCode::PARTIAL_CONTENT, first, last),
        ByteRange::Unsatisfiable => {
            let mut r = empty(StatusCode::RANGE_NOT_SATISFIABLE);
            header(&mut r, "content-range", &format!("bytes */{size}"));
            return Ok(r);
        }
    };
    let length = if size == 0 { 0 } else { end - start + 1 };
    let body = if method == Method::HEAD || length == 0 {
        Body::empty()
    } else {
        let path = state
            .storage
            .blobs
            .local_path(digest)
            .ok_or_else(|| OciError::server("the blob store serves no local files"))?;
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(OciError::server)?;
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(OciError::server)?;
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
            file.take(length),
            256 * 1024,
        ))
    };
    let mut r = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, length)
        .header(header::ACCEPT_RANGES, "bytes")
        .header("docker-content-digest", digest)
        .body(body)
        .map_err(OciError::server)?;
    if status == StatusCode::PARTIAL_CONTENT {
        header(
            &mut r,
            "content-range",
            &format!("bytes {start}-{end}/{size}"),
        );
    }
    Ok(r)
}

/// Manifests: GET/HEAD by tag or digest, PUT (ECR's rules: existing blobs, immutable tags),
/// DELETE.
async fn manifest(
    req: Req<'_>,
    name: &str,
    reference: &str,
    body: Body,
) -> Result<Response, OciError> {
    // A reference naming a known digest algorithm is a digest, supported or not; anything
    // else with a ':' is a malformed tag.
    if oci::names_digest_algorithm(reference) {
        oci::parse_digest(reference).map_err(OciError::digest_invalid)?;
    } else if !oci::valid_tag(reference) {
        return Err(OciError::new(
            StatusCode::BAD_REQUEST,
            "TAG_INVALID",
            format!("invalid tag '{reference}'"),
        ));
    }
    // Counted like the control plane's operations, so a poller's requests can be measured.
    req.state
        .count(&format!("registry:{} manifest", req.method));
    match *req.method {
        Method::GET | Method::HEAD => get_manifest(req, name, reference).await,
        Method::PUT => put_manifest(req, name, reference, body).await,
        Method::DELETE => delete_manifest(req, name, reference).await,
        _ => Err(unsupported()),
    }
}

async fn get_manifest(req: Req<'_>, name: &str, reference: &str) -> Result<Response, OciError> {
    let Req { state, method, .. } = req;
    let st = &state.storage;
    let repo = req.repository("ecr:BatchGetImage", name, false).await?;
    let m = st
        .manifest(repo.id, reference)
        .await
        .map_err(OciError::server)?
        .ok_or_else(|| OciError::manifest_unknown(reference))?;
    let length = m.body.len();
    let body = if *method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(m.body)
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, &m.media_type)
        .header(header::CONTENT_LENGTH, length)
        .header("docker-content-digest", &m.digest)
        .body(body)
        .map_err(OciError::server)
}

async fn put_manifest(
    req: Req<'_>,
    name: &str,
    reference: &str,
    body: Body,
) -> Result<Response, OciError> {
    let Req { state, headers, .. } = req;
    let st = &state.storage;
    let by_digest = oci::is_digest(reference);
    let repo = req.repository("ecr:PutImage", name, true).await?;
    let bytes = axum::body::to_bytes(body, MAX_MANIFEST_BYTES)
        .await
        .map_err(|_| {
            OciError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_INVALID",
                "manifest exceeds the 4 MiB limit",
            )
        })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let parsed = oci::parse_manifest(&bytes, content_type)
        .map_err(|e| OciError::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", e))?;
    let digest = format!("sha256:{}", crate::storage::sha256_hex(&bytes));
    if by_digest && reference != digest {
        return Err(OciError::digest_invalid(format!(
            "manifest digest {digest} does not match the reference {reference}"
        )));
    }
    let tag = (!by_digest).then_some(reference);
    match st.put_manifest(&repo, &bytes, &parsed, tag).await {
        Ok(digest) => {
            let mut r = empty(StatusCode::CREATED);
            header(
                &mut r,
                "location",
                &format!("/v2/{name}/manifests/{digest}"),
            );
            header(&mut r, "docker-content-digest", &digest);
            if let Some(subject) = &parsed.subject {
                header(&mut r, "oci-subject", subject);
            }
            Ok(r)
        }
        Err(e) => Err(manifest_refused(e, name)),
    }
}

/// ECR's and the distribution spec's words for a manifest the store refused.
fn manifest_refused(e: StorageError, name: &str) -> OciError {
    let bad = |code, message: String| OciError::new(StatusCode::BAD_REQUEST, code, message);
    match e {
        StorageError::BlobsMissing(missing) => bad(
            "MANIFEST_BLOB_UNKNOWN",
            format!("blob unknown to registry: {}", missing.join(", ")),
        ),
        e @ StorageError::SizeMismatch { .. } => bad("SIZE_INVALID", e.to_string()),
        StorageError::ManifestsMissing(missing) => bad(
            "MANIFEST_UNKNOWN",
            format!("manifest unknown to registry: {}", missing.join(", ")),
        ),
        StorageError::TagImmutable(t) => bad(
            "TAG_INVALID",
            format!(
                "The image tag '{t}' already exists in the '{name}' repository and cannot be overwritten because the repository is immutable."
            ),
        ),
        e => OciError::server(e),
    }
}

async fn delete_manifest(req: Req<'_>, name: &str, reference: &str) -> Result<Response, OciError> {
    let Req { state, .. } = req;
    let st = &state.storage;
    let repo = req.repository("ecr:BatchDeleteImage", name, false).await?;
    if st
        .delete_manifest(repo.id, reference)
        .await
        .map_err(OciError::server)?
    {
        Ok(empty(StatusCode::ACCEPTED))
    } else {
        Err(OciError::manifest_unknown(reference))
    }
}
