//! `berth`: the CLI and server binary. Thin: it parses arguments, reads configuration and calls
//! the library crates. Exit codes: 0 ok, 1 failure, 2 usage.

#![forbid(unsafe_code)]

mod cli;
mod client;
mod commands;
mod config;
mod output;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use cli::{AdminCmd, Cli, Command};

fn init_logging(server: bool) {
    let default = if server {
        "info,sqlx=warn,tower_http=info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_logging(matches!(
        cli.command,
        Command::Up(_) | Command::Serve(_) | Command::LocalEcr(_)
    ));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let global = cli.global.clone();
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Up(args) => commands::serve::up(&args).await,
            Command::Serve(args) => commands::serve::run(&args, None, false).await,
            Command::LocalEcr(args) => commands::serve::local_ecr(&args).await,
            Command::Integration(cmd) => commands::integration::run(&global, cmd).await,
            Command::Subscription(cmd) => commands::records::subscription(&global, cmd).await,
            Command::Project(cmd) => commands::records::project(&global, cmd).await,
            Command::Runtime(cmd) => commands::records::runtime(&global, cmd).await,
            Command::Token(cmd) => commands::records::token(&global, cmd).await,
            Command::Admin(AdminCmd::RotateKey(args)) => {
                commands::admin::rotate_key(&global, &args).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
