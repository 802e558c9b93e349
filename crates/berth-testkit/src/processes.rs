//! Watching the process list for a secret: every process's command line and environment, read
//! from `/proc` over and over while a test runs, as `ps auxe` would show them to anyone who
//! looks at the right moment.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// A background scan of `/proc/*/cmdline` and `/proc/*/environ`; [`ProcessWatch::finish`]
/// stops it and says where the secret was seen.
pub struct ProcessWatch {
    stop: Arc<AtomicBool>,
    scanner: Option<JoinHandle<Scan>>,
}

/// What a scan saw.
#[derive(Debug, Default)]
pub struct Scan {
    /// How many complete passes over `/proc` ran.
    pub passes: u64,
    /// The command lines seen (their first 80 characters), one entry per distinct one.
    pub commands: std::collections::BTreeSet<String>,
    /// `<pid> <file>: <command>` for each place the secret was found.
    pub hits: Vec<String>,
}

impl ProcessWatch {
    /// Starts scanning for `secret` (which must be long enough not to occur by chance).
    pub fn start(secret: &str) -> ProcessWatch {
        assert!(
            secret.len() >= 8,
            "a secret this short would match by chance"
        );
        let stop = Arc::new(AtomicBool::new(false));
        let needle = secret.as_bytes().to_vec();
        let flag = stop.clone();
        let scanner = std::thread::spawn(move || {
            let mut scan = Scan::default();
            while !flag.load(Ordering::Relaxed) {
                pass(&needle, &mut scan);
                scan.passes += 1;
            }
            scan
        });
        ProcessWatch {
            stop,
            scanner: Some(scanner),
        }
    }

    /// Stops the scan and returns what it saw.
    pub fn finish(mut self) -> Scan {
        self.stop.store(true, Ordering::Relaxed);
        self.scanner
            .take()
            .expect("finished once")
            .join()
            .expect("the scanner thread")
    }
}

fn pass(needle: &[u8], scan: &mut Scan) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        // A process may be gone by now; what could not be read was not shown either.
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let command = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        scan.commands
            .insert(command.trim().chars().take(80).collect::<String>());
        for (file, bytes) in [
            ("cmdline", cmdline.clone()),
            (
                "environ",
                std::fs::read(entry.path().join("environ")).unwrap_or_default(),
            ),
        ] {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                let hit = format!("{pid} {file}: {}", command.trim());
                if !scan.hits.contains(&hit) {
                    scan.hits.push(hit);
                }
            }
        }
    }
}
