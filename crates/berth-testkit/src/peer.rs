//! Peers (independent programs the interop tests run against) and other prerequisites, with one
//! policy: in CI a missing one fails the test; elsewhere the test is skipped, loudly.

use std::io::Write as _;
use std::path::PathBuf;

/// Whether this run is CI's (`CI` set), where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// A peer program, searched in one order: `$BERTH_PEERS_VENV/bin`, the user cache that
/// `scripts/install-peers` fills (`~/.cache/berth-peers/venv/bin`), then `PATH`, then `/usr/sbin`
/// and `/sbin`. When it is
/// absent, [`unavailable`] decides: a failure in CI, a visible skip elsewhere.
pub fn peer(name: &str) -> Option<PathBuf> {
    let found = search_dirs()
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        unavailable(
            &format!("peer '{name}'"),
            "scripts/install-peers installs it",
        );
    }
    found
}

/// True when `available`; otherwise [`unavailable`] (fails in CI, else skips loudly) and false.
pub fn require(available: bool, what: &str, how: &str) -> bool {
    if !available {
        unavailable(what, how);
    }
    available
}

/// A prerequisite is missing. In CI this fails the test. Elsewhere it says so on the terminal:
/// written to the process's stderr directly, past the test harness's capture, so a skipped
/// interop test never looks like a pass.
pub fn unavailable(what: &str, how: &str) {
    if in_ci() {
        panic!("{what} is missing in CI ({how}); interop tests may not skip in CI");
    }
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let _ = writeln!(
        std::io::stderr(),
        "*** SKIPPING {test}: {what} is not available ({how}) ***"
    );
}

fn search_dirs() -> Vec<PathBuf> {
    let venv = std::env::var_os("BERTH_PEERS_VENV").map(PathBuf::from);
    let cache = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/berth-peers/venv"));
    let mut dirs: Vec<PathBuf> = venv
        .into_iter()
        .chain(cache)
        .map(|v| v.join("bin"))
        .collect();
    if let Some(paths) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&paths));
    }
    // Daemons such as nginx and fcgiwrap live in sbin, which a user's PATH may lack.
    dirs.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
    dirs
}
