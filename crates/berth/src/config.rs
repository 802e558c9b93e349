//! Server configuration in three layers: `berth.toml`, then `BERTH_*` variables, then flags
//! (clap already merges the last two, flags winning).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use berth_server::ServerOptions;
use secrecy::SecretString;
use serde::Deserialize;

use crate::cli::ServeArgs;

pub const DEFAULT_DATA_DIR: &str = "berth-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_CONFIG: &str = "berth.toml";

/// The file form. Unknown keys are errors: a misspelt setting must not be silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    database: Option<String>,
    master_key_file: Option<PathBuf>,
}

fn read_file(path: &Path, required: bool) -> anyhow::Result<FileConfig> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("{}", path.display())),
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            Ok(FileConfig::default())
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

pub fn server_options(args: &ServeArgs) -> anyhow::Result<ServerOptions> {
    let file = match &args.config {
        Some(path) => read_file(path, true)?,
        None => read_file(Path::new(DEFAULT_CONFIG), false)?,
    };
    let master_key = match std::env::var("BERTH_MASTER_KEY") {
        Ok(v) if !v.trim().is_empty() => Some(SecretString::from(v)),
        Ok(_) => bail!("BERTH_MASTER_KEY is set but empty"),
        Err(_) => None,
    };
    Ok(ServerOptions {
        data_dir: args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        listen: args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default")),
        database: args.database.clone().or(file.database),
        master_key,
        master_key_file: args.master_key_file.clone().or(file.master_key_file),
        idle_timeout: idle_timeout()?,
        poll_floor: poll_floor()?,
        delivery_retry_base: berth_server::DEFAULT_RETRY_BASE,
    })
}

/// `BERTH_POLL_FLOOR`: the fewest seconds between polls of an image resource's tag that a
/// resource may ask for; default 60 (registries rate-limit manifest reads).
fn poll_floor() -> anyhow::Result<std::time::Duration> {
    match std::env::var("BERTH_POLL_FLOOR") {
        Err(_) => Ok(berth_server::DEFAULT_POLL_FLOOR),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(s) if s >= 1 => Ok(std::time::Duration::from_secs(s)),
            _ => {
                bail!("BERTH_POLL_FLOOR must be a whole number of seconds, at least 1 (got '{v}')")
            }
        },
    }
}

/// `BERTH_IDLE_TIMEOUT`: seconds a connection may move no byte before it is closed (both
/// listeners); default 60.
pub fn idle_timeout() -> anyhow::Result<std::time::Duration> {
    match std::env::var("BERTH_IDLE_TIMEOUT") {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(s) if s > 0 => Ok(std::time::Duration::from_secs(s)),
            _ => bail!("BERTH_IDLE_TIMEOUT must be a whole number of seconds above 0, not '{v}'"),
        },
        Err(_) => Ok(berth_http::DEFAULT_IDLE_TIMEOUT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = berth_testkit::TempDir::new("config");
        let path = dir.path().join("berth.toml");
        std::fs::write(
            &path,
            "data_dir = \"/srv/berth\"\nlisten = \"0.0.0.0:9000\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            ..Default::default()
        };
        let o = server_options(&args).unwrap();
        assert_eq!(o.data_dir, PathBuf::from("/srv/berth"));
        assert_eq!(o.listen.to_string(), "127.0.0.1:7000");

        std::fs::write(&path, "data_dri = \"/x\"\n").unwrap();
        let e = format!("{:#}", server_options(&args).unwrap_err());
        assert!(e.contains("data_dri"), "{e}");
    }
}
