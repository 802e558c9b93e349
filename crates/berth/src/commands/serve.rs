//! `berth up`, `berth serve` and `berth local-ecr`: start the listeners and stop them gracefully
//! on SIGINT/SIGTERM, finishing in-flight requests.

use std::time::Duration;

use berth_ecr_local::{DEMO_PROFILE, LocalEcr, LocalEcrOptions};
use berth_server::{Server, ServerOptions};
use secrecy::ExposeSecret;
use tokio::sync::watch;

use crate::cli::{LocalEcrArgs, ServeArgs, UpArgs};

/// Banner lines for a person. A server must not die because whoever started it closed its
/// stdout (a pipe read up to the URL, a terminal gone), so write errors are ignored.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
use crate::config::server_options;

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// One signal, many listeners: each gets a future that completes on shutdown.
fn shutdown_fanout() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = tx.send(true);
    });
    rx
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn local_ecr_options(args: &LocalEcrArgs) -> anyhow::Result<LocalEcrOptions> {
    let mut o = LocalEcrOptions::new(args.data_dir.join("local-ecr"), args.listen);
    o.public_url = args.public_url.clone();
    o.create_on_push = args.create_on_push;
    o.token_ttl = Duration::from_secs(args.token_ttl);
    o.upload_limits.min_part = args.min_chunk_size;
    if let Some(layers) = args.layer_listen {
        o.layer_listen = layers;
    }
    o.layer_public_url = args.layer_public_url.clone();
    o.idle_timeout = crate::config::idle_timeout()?;
    if let Some(url) = &args.blob_store {
        o.blob_store = Some(s3_blobs(url, args).await?);
    }
    Ok(o)
}

/// `s3://BUCKET[/PREFIX]` as the local ECR's blob store.
async fn s3_blobs(
    url: &str,
    args: &LocalEcrArgs,
) -> anyhow::Result<std::sync::Arc<dyn berth_ecr_local::blob_store::BlobStore>> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| anyhow::anyhow!("--blob-store: '{url}' is not s3://BUCKET[/PREFIX]"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        anyhow::bail!("--blob-store: '{url}' names no bucket");
    }
    let prefix = match prefix.trim_matches('/') {
        "" => String::new(),
        p => format!("{p}/"),
    };
    let settings = berth_s3::S3Settings {
        endpoint: args.s3_endpoint.clone(),
        region: args.s3_region.clone(),
        bucket: bucket.to_owned(),
        prefix,
        credentials: None,
    };
    let blobs = berth_s3::S3Blobs::new(&settings).await;
    blobs
        .check()
        .await
        .map_err(|e| anyhow::anyhow!("--blob-store {url}: {e}"))?;
    Ok(std::sync::Arc::new(blobs))
}

/// Absolute, so the printed `export` lines work from any directory.
fn absolute(p: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

fn print_local_ecr(ecr: &LocalEcr) {
    say!(
        "  local ECR:    {}   (ECR API, STS and registry v2)",
        ecr.public_url
    );
    if let Some(layers) = &ecr.layer_url {
        say!("  layers:       {layers}   (blob downloads; /v2/ redirects here, as ECR does to S3)");
    }
    say!(
        "  AWS profile:  {DEMO_PROFILE} in {}{}",
        absolute(&ecr.credentials_file).display(),
        if ecr.seeded {
            " (demo user and role just created)"
        } else {
            ""
        }
    );
}

/// Raises the soft limit on open files to the hard limit: every connection and every blob being
/// written holds one, and both listeners share the process.
fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

pub async fn local_ecr(args: &LocalEcrArgs) -> anyhow::Result<()> {
    raise_fd_limit();
    let ecr = LocalEcr::start(&local_ecr_options(args).await?).await?;
    say!("Berth local ECR {} is up", env!("CARGO_PKG_VERSION"));
    print_local_ecr(&ecr);
    say!();
    say!(
        "  export AWS_SHARED_CREDENTIALS_FILE={}",
        absolute(&ecr.credentials_file).display()
    );
    say!(
        "  aws --profile {DEMO_PROFILE} --endpoint-url {} ecr describe-repositories",
        ecr.public_url
    );
    let rx = shutdown_fanout();
    ecr.run(stopped(rx)).await?;
    Ok(())
}

pub async fn up(args: &UpArgs) -> anyhow::Result<()> {
    raise_fd_limit();
    let options = server_options(&args.serve)?;
    let ecr = if args.no_local_ecr {
        None
    } else {
        let ecr_args = LocalEcrArgs {
            data_dir: options.data_dir.clone(),
            listen: args.local_ecr_listen,
            public_url: None,
            create_on_push: false,
            token_ttl: 43200,
            min_chunk_size: berth_ecr_local::UploadLimits::default().min_part,
            layer_listen: None,
            layer_public_url: None,
            blob_store: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
        };
        Some(LocalEcr::start(&local_ecr_options(&ecr_args).await?).await?)
    };
    run(&options, ecr, true).await
}

/// `berth serve`: the API server alone, logging rather than talking to a person.
pub async fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    raise_fd_limit();
    run(&server_options(args)?, None, false).await
}

/// Runs the API server, and the local ECR when given; `banner` when a person is reading.
async fn run(options: &ServerOptions, ecr: Option<LocalEcr>, banner: bool) -> anyhow::Result<()> {
    let server = Server::start(options).await?;
    let url = format!("http://{}", server.addr);
    let token_file = options
        .data_dir
        .join(berth_server::auth::INITIAL_ADMIN_TOKEN_FILE);
    tracing::info!(%url, store = %options.location().describe(), "berth listening");
    if banner {
        say!("Berth {} is up", env!("CARGO_PKG_VERSION"));
        say!(
            "  web:          {url}/   (sign in with the admin token, or a user: `berth user add`)"
        );
        say!("  API:          {url}/api/v1   (OpenAPI at /api/v1/openapi.json)");
        say!("  store:        {}", options.location().describe());
        say!("  data dir:     {}", options.data_dir.display());
        match &server.new_admin_token {
            Some(token) => say!(
                "  admin token:  {}   (saved to {})",
                token.expose_secret(),
                token_file.display()
            ),
            None => say!(
                "  admin token:  in {} (replace it with `berth token rotate-admin`)",
                token_file.display()
            ),
        }
        if let Some(ecr) = &ecr {
            print_local_ecr(ecr);
        }
        say!();
        if let Some(ecr) = &ecr {
            say!(
                "  export AWS_SHARED_CREDENTIALS_FILE={}",
                absolute(&ecr.credentials_file).display()
            );
        }
        say!("  export BERTH_URL={url}");
        say!("  export BERTH_TOKEN=$(cat {})", token_file.display());
    } else if let Some(token) = &server.new_admin_token {
        // First start of a deployment: the operator needs the token once, like Jenkins'.
        say!(
            "initial admin token (also in {}): {}",
            token_file.display(),
            token.expose_secret()
        );
    }
    let rx = shutdown_fanout();
    match ecr {
        Some(ecr) => {
            let (a, b) = tokio::join!(server.run(stopped(rx.clone())), ecr.run(stopped(rx)));
            a?;
            b?;
        }
        None => server.run(stopped(rx)).await?,
    }
    Ok(())
}
