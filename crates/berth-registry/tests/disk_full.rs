//! Disk full while pulling: the blob being written is removed, the blobs already complete are
//! kept, no tag is written, and the error says what happened. `/dev/full` stands in for a full
//! disk (every write fails with ENOSPC), reached through the partial file's name.

use std::path::PathBuf;
use std::sync::Arc;

use berth_registry::{CopyOptions, OciLayout, Silent, Source};
use serde_json::json;

#[tokio::test]
async fn a_full_disk_keeps_complete_blobs_and_removes_the_partial_one() {
    if !berth_testkit::require(
        std::path::Path::new("/dev/full").exists(),
        "/dev/full",
        "Linux provides it; it stands in for a full disk",
    ) {
        return;
    }
    let dir = berth_testkit::TempDir::new("diskfull");
    let work = dir.path();
    let src_dir = work.join("src");
    std::fs::create_dir_all(src_dir.join("blobs/sha256")).unwrap();
    let put = |bytes: &[u8]| {
        let hex = berth_registry::sha256_hex(bytes);
        std::fs::write(src_dir.join("blobs/sha256").join(&hex), bytes).unwrap();
        (hex, bytes.len())
    };
    let first = put(&vec![1u8; 300_000]);
    let second = put(&vec![2u8; 300_000]);
    let config =
        put(br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#);
    let layers: Vec<_> = [first.clone(), second.clone()]
        .iter()
        .map(|(h, s)| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{h}"), "size": s}))
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", config.0), "size": config.1},
        "layers": layers
    }))
    .unwrap();
    let m = put(&manifest);
    std::fs::write(
        src_dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{}", m.0), "size": m.1, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]})).unwrap(),
    )
    .unwrap();

    // The last layer's partial file leads to /dev/full.
    let dest_dir = work.join("dest");
    let blobs = dest_dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let partial: PathBuf = blobs.join(format!(".{}.{}.partial", second.0, std::process::id()));
    std::os::unix::fs::symlink("/dev/full", &partial).unwrap();

    let src = OciLayout::new(&src_dir, Some("v1".into()));
    let dest = OciLayout::new(&dest_dir, Some("v1".into()));
    let options = CopyOptions {
        jobs: 1,
        tag: Some("v1".into()),
        ..CopyOptions::default()
    };
    let err = berth_registry::copy(&src, &dest, &options, Arc::new(Silent))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no space left"), "{err}");
    assert!(
        std::fs::symlink_metadata(&partial).is_err(),
        "the partial blob is removed"
    );
    assert!(
        blobs.join(&config.0).exists() && blobs.join(&first.0).exists(),
        "complete blobs are kept"
    );
    assert!(!blobs.join(&second.0).exists());
    assert!(
        !dest_dir.join("index.json").exists(),
        "no tag points at the incomplete image"
    );
    // With space again, the pull finishes and only the missing blob moves.
    let s = berth_registry::copy(&src, &dest, &options, Arc::new(Silent))
        .await
        .unwrap();
    assert_eq!((s.blobs_skipped, s.blobs_copied), (2, 1));
    assert_eq!(
        OciLayout::new(&dest_dir, Some("v1".into()))
            .root()
            .await
            .unwrap()
            .digest,
        format!("sha256:{}", m.0)
    );
}
