//! The data directory is the owner's alone: created 0700, its database files 0600, and modes of
//! an existing directory tightened at start (with a log line), so no other local user can read
//! the database, its WAL, or the local ECR's image layers beneath it.

use std::path::Path;

use crate::StartError;

/// Database files the server writes beside the key file.
const DATABASE_FILES: &[&str] = &["berth.db", "berth.db-wal", "berth.db-shm"];

/// Creates `dir` (0700) or tightens it to 0700.
pub fn secure(dir: &Path) -> Result<(), StartError> {
    let io = |source| StartError::Io {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    tighten(dir, 0o700).map_err(io)
}

/// Tightens the database files to 0600 (SQLite creates them from the umask).
pub fn restrict_files(dir: &Path) {
    for name in DATABASE_FILES {
        let path = dir.join(name);
        if path.exists()
            && let Err(e) = tighten(&path, 0o600)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot restrict the file's mode");
        }
    }
}

fn tighten(path: &Path, mode: u32) -> std::io::Result<()> {
    if let Some(was) = berth_files::restrict_mode(path, mode)? {
        tracing::info!(path = %path.display(), from = format!("{was:o}"), to = format!("{mode:o}"), "restricted a data file's mode");
    }
    Ok(())
}
