//! `berth up` and `berth serve`: start the server and stop it gracefully on SIGINT/SIGTERM.

use berth_server::Server;
use secrecy::ExposeSecret;

use crate::cli::ServeArgs;
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

/// `banner` is true for `berth up`, which talks to a person; `serve` logs one line.
pub async fn run(args: &ServeArgs, banner: bool) -> anyhow::Result<()> {
    let options = server_options(args)?;
    let server = Server::start(&options).await?;
    let url = format!("http://{}", server.addr);
    let token_file = options
        .data_dir
        .join(berth_server::auth::INITIAL_ADMIN_TOKEN_FILE);
    tracing::info!(%url, store = %options.location().describe(), "berth listening");
    if banner {
        println!("Berth {} is up", env!("CARGO_PKG_VERSION"));
        println!("  API:          {url}/api/v1   (OpenAPI at /api/v1/openapi.json)");
        println!("  store:        {}", options.location().describe());
        println!("  data dir:     {}", options.data_dir.display());
        match &server.new_admin_token {
            Some(token) => println!(
                "  admin token:  {}   (saved to {})",
                token.expose_secret(),
                token_file.display()
            ),
            None => println!(
                "  admin token:  in {} (replace it with `berth token rotate-admin`)",
                token_file.display()
            ),
        }
        println!();
        println!("  export BERTH_URL={url}");
        println!("  export BERTH_TOKEN=$(cat {})", token_file.display());
    } else if let Some(token) = &server.new_admin_token {
        // First start of a deployment: the operator needs the token once, like Jenkins'.
        println!(
            "initial admin token (also in {}): {}",
            token_file.display(),
            token.expose_secret()
        );
    }
    server.run(shutdown_signal()).await?;
    Ok(())
}
