//! The layer bucket: pre-signed layer downloads on a listener of their own. ECR answers a blob
//! GET with a redirect to a pre-signed S3 URL; the local ECR answers it with a redirect here,
//! where the bytes go from the page cache to the socket with `sendfile(2)`. hyper's bodies are
//! user-space buffers, which made the `/v2/` path take four times nginx's time on a large pull.
//!
//! It speaks just enough HTTP/1.1 for that one job: GET and HEAD of
//! `/v2/<repository>/blobs/<digest>?<signed query>`, one byte range, keep-alive. The signature
//! (made by `/v2/` or GetDownloadUrlForLayer after their policy checks) is the whole
//! authorization, as an S3 pre-signed URL is; errors are S3's XML, which is what a client
//! following ECR's redirect sees.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::State;
use crate::error::xml_escape;
use crate::range::{ByteRange, byte_range};
use crate::storage::now_epoch;
use crate::token::{Claims, TokenError};

/// A request head larger than this is refused (431) rather than buffered.
const MAX_HEAD: usize = 16 * 1024;
/// How much, and for how long, input is drained before a connection is closed.
const LINGER_BYTES: usize = 1024 * 1024;
const LINGER_TIME: Duration = Duration::from_secs(2);
/// Bytes handed to one `sendfile` call.
const SEND_STEP: u64 = 1 << 30;

/// Accepts connections until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, state: Arc<State>, idle: Duration) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, most likely: back off instead of spinning.
                tracing::warn!(error = %e, "layer listener cannot accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, &state, idle).await {
                tracing::debug!(error = %e, "layer download connection ended");
            }
        });
    }
}

/// One request as far as this server cares.
struct Request {
    head_only: bool,
    target: String,
    range: Option<String>,
    keep_alive: bool,
}

/// What goes back: a status, headers, and an error text or a piece of a blob file.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

enum Body {
    Text(String),
    File {
        file: std::fs::File,
        offset: u64,
        length: u64,
    },
}

async fn connection(mut stream: TcpStream, state: &State, idle: Duration) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(4096);
    loop {
        let (answer, keep_alive) = match read_head(&mut stream, &mut buf, idle).await? {
            Head::Closed => return Ok(()),
            Head::TooLarge => (
                s3_error(
                    431,
                    "RequestHeaderSectionTooLarge",
                    "Your request header section exceeds the maximum allowed size.",
                ),
                false,
            ),
            Head::Complete(length) => {
                let parsed = parse(&buf[..length]);
                buf.drain(..length);
                match parsed {
                    Ok(request) => (answer(state, &request).await, request.keep_alive),
                    Err(refusal) => (refusal, false),
                }
            }
        };
        stream = send(stream, answer, keep_alive, idle).await?;
        if !keep_alive {
            return linger(stream).await;
        }
    }
}

/// Closes after the answer: the write side first, then what the client still sends is read and
/// dropped for a moment, so unread input does not reset the connection (and the answer with it).
async fn linger(mut stream: TcpStream) -> io::Result<()> {
    stream.shutdown().await?;
    let mut left = LINGER_BYTES;
    let mut piece = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + LINGER_TIME;
    while left > 0 {
        match tokio::time::timeout_at(deadline, stream.read(&mut piece)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
    Ok(())
}

enum Head {
    Complete(usize),
    Closed,
    TooLarge,
}

/// Reads until `buf` holds a whole request head; a quiet connection is closed after `idle`.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>, idle: Duration) -> io::Result<Head> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Head::Complete(end + 4));
        }
        if buf.len() >= MAX_HEAD {
            return Ok(Head::TooLarge);
        }
        let mut piece = [0u8; 4096];
        let n = tokio::time::timeout(idle, stream.read(&mut piece))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "idle connection"))??;
        if n == 0 {
            return Ok(Head::Closed);
        }
        buf.extend_from_slice(&piece[..n]);
    }
}

fn parse(head: &[u8]) -> Result<Request, Answer> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let bad = |why: &str| s3_error(400, "BadRequest", why);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(bad("The request is not valid HTTP/1.1.")),
    }
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    // Bodies are never read here, so a request announcing one cannot be followed by another.
    if header("transfer-encoding").is_some()
        || header("content-length").is_some_and(|v| v.trim() != "0")
    {
        return Err(bad("A layer download takes no request body."));
    }
    let connection = header("connection").unwrap_or("").to_ascii_lowercase();
    let keep_alive = match req.version {
        Some(1) => !connection.contains("close"),
        _ => connection.contains("keep-alive"),
    };
    let head_only = match req.method {
        Some("GET") => false,
        Some("HEAD") => true,
        _ => {
            let mut refusal = s3_error(
                405,
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
            );
            refusal.headers.push(("allow", "GET, HEAD".into()));
            return Err(refusal);
        }
    };
    Ok(Request {
        head_only,
        target: req.path.unwrap_or("/").to_owned(),
        range: header("range").map(str::to_owned),
        keep_alive,
    })
}

/// Checks the signature and opens the blob, or says why not.
async fn answer(state: &State, request: &Request) -> Answer {
    match blob_answer(state, request).await {
        Ok(a) | Err(a) => a,
    }
}

async fn blob_answer(state: &State, request: &Request) -> Result<Answer, Answer> {
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((&request.target, ""));
    let (repository, digest) = path
        .strip_prefix("/v2/")
        .and_then(|p| p.rsplit_once("/blobs/"))
        .ok_or_else(|| s3_error(404, "NoSuchKey", "The specified key does not exist."))?;
    let query: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let (claims, signature) = signed_claims(&query)?;
    state
        .keys
        .verify_download(&claims, repository, digest, signature, now_epoch())
        .map_err(|e| match e {
            TokenError::Expired => s3_error(403, "AccessDenied", "Request has expired"),
            TokenError::Invalid => s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            ),
        })?;
    let Some(path) = state.storage.blobs.local_path(digest) else {
        return Err(s3_error(
            404,
            "NoSuchKey",
            "The specified key does not exist.",
        ));
    };
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f.into_std().await,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(s3_error(
                404,
                "NoSuchKey",
                "The specified key does not exist.",
            ));
        }
        Err(e) => return Err(internal(e)),
    };
    let size = file.metadata().map_err(internal)?.len();
    Ok(blob_response(file, size, digest, request))
}

fn signed_claims(query: &HashMap<String, String>) -> Result<(Claims, &str), Answer> {
    let field = |k: &str| {
        query.get(k).map(String::as_str).ok_or_else(|| {
            s3_error(
                403,
                "AccessDenied",
                &format!("Query-string authentication requires the {k} parameter"),
            )
        })
    };
    let claims = Claims {
        registry_id: field("X-Berth-Registry")?.to_owned(),
        region: field("X-Berth-Region")?.to_owned(),
        principal: field("X-Berth-Principal")?.to_owned(),
        expires_at: field("X-Berth-Expires")?.parse().map_err(|_| {
            s3_error(
                403,
                "AccessDenied",
                "X-Berth-Expires must be a whole number of seconds",
            )
        })?,
    };
    Ok((claims, field("X-Berth-Signature")?))
}

fn blob_response(file: std::fs::File, size: u64, digest: &str, request: &Request) -> Answer {
    let (status, first, length) = match byte_range(request.range.as_deref(), size) {
        ByteRange::Whole => (200, 0, size),
        ByteRange::Part { first, last } => (206, first, last - first + 1),
        ByteRange::Unsatisfiable => {
            let mut refusal = s3_error(
                416,
                "InvalidRange",
                "The requested range is not satisfiable",
            );
            refusal
                .headers
                .push(("content-range", format!("bytes */{size}")));
            return refusal;
        }
    };
    let mut headers = vec![
        ("content-type", "application/octet-stream".to_owned()),
        ("accept-ranges", "bytes".to_owned()),
        ("docker-content-digest", digest.to_owned()),
        ("etag", format!("\"{digest}\"")),
    ];
    if status == 206 {
        headers.push((
            "content-range",
            format!("bytes {first}-{}/{size}", first + length - 1),
        ));
    }
    if request.head_only {
        // HEAD announces the length a GET would send, and sends nothing.
        headers.push(("content-length", length.to_string()));
    }
    let length = if request.head_only { 0 } else { length };
    Answer {
        status,
        headers,
        body: Body::File {
            file,
            offset: first,
            length,
        },
    }
}

fn internal(e: io::Error) -> Answer {
    tracing::error!(error = %e, "layer download failed");
    s3_error(
        500,
        "InternalError",
        "We encountered an internal error. Please try again.",
    )
}

fn s3_error(status: u16, code: &str, message: &str) -> Answer {
    Answer {
        status,
        headers: vec![("content-type", "application/xml".to_owned())],
        body: Body::Text(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message></Error>",
            xml_escape(message)
        )),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        _ => "Internal Server Error",
    }
}

/// Writes the answer; the stream comes back for the next request on the connection.
async fn send(
    mut stream: TcpStream,
    answer: Answer,
    keep_alive: bool,
    idle: Duration,
) -> io::Result<TcpStream> {
    let body_length = match &answer.body {
        Body::Text(t) => t.len() as u64,
        Body::File { length, .. } => *length,
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", answer.status, reason(answer.status));
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !answer.headers.iter().any(|(n, _)| *n == "content-length") {
        head.push_str(&format!("content-length: {body_length}\r\n"));
    }
    head.push_str(if keep_alive {
        "connection: keep-alive\r\n\r\n"
    } else {
        "connection: close\r\n\r\n"
    });
    let timed = |e: tokio::time::error::Elapsed| io::Error::new(io::ErrorKind::TimedOut, e);
    tokio::time::timeout(idle, stream.write_all(head.as_bytes()))
        .await
        .map_err(timed)??;
    match answer.body {
        Body::Text(text) => {
            tokio::time::timeout(idle, stream.write_all(text.as_bytes()))
                .await
                .map_err(timed)??;
            Ok(stream)
        }
        Body::File { length: 0, .. } => Ok(stream),
        Body::File {
            file,
            offset,
            length,
        } => send_file(stream, file, offset, length, idle).await,
    }
}

/// `sendfile` on a blocking thread with the socket in blocking mode, so a blob that is not in
/// the page cache never stalls the runtime's workers; the write timeout ends a stalled reader.
async fn send_file(
    stream: TcpStream,
    file: std::fs::File,
    offset: u64,
    length: u64,
    idle: Duration,
) -> io::Result<TcpStream> {
    let socket = stream.into_std()?;
    socket.set_nonblocking(false)?;
    socket.set_write_timeout(Some(idle))?;
    let socket = tokio::task::spawn_blocking(move || {
        // Corked, the kernel sends full segments rather than one push per spliced piece (as
        // nginx's tcp_nopush); uncorking sends the tail.
        rustix::net::sockopt::set_tcp_cork(&socket, true)?;
        let (mut at, end) = (offset, offset + length);
        while at < end {
            let step = (end - at).min(SEND_STEP) as usize;
            let sent = rustix::fs::sendfile(&socket, &file, Some(&mut at), step)
                .map_err(io::Error::from)?;
            if sent == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the blob file is shorter than its size",
                ));
            }
        }
        rustix::net::sockopt::set_tcp_cork(&socket, false)?;
        Ok(socket)
    })
    .await
    .map_err(io::Error::other)??;
    socket.set_nonblocking(true)?;
    TcpStream::from_std(socket)
}
