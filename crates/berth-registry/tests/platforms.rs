//! Multi-platform images between OCI layouts: copied whole with every digest preserved, one
//! platform chosen with `--platform`, and `build` on a multi-platform base giving each platform
//! the new layer under a new index.

use std::path::Path;
use std::sync::Arc;

use berth_registry::{BuildSpec, CopyOptions, OciLayout, Platform, Silent, Source};
use serde_json::{Value, json};

mod common;

use berth_testkit::TempDir;
use common::DockerRegistry;

fn put(dir: &Path, bytes: &[u8]) -> Value {
    let hex = berth_registry::sha256_hex(bytes);
    std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).unwrap();
    json!({"digest": format!("sha256:{hex}"), "size": bytes.len()})
}

/// An OCI layout whose tag `multi` is an index of linux/amd64 and linux/arm64 images.
fn multi_platform(dir: &Path) -> Value {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let mut children = Vec::new();
    for arch in ["amd64", "arm64"] {
        let layer = put(dir, format!("layer bytes for {arch}").as_bytes());
        let config = serde_json::to_vec(&json!({
            "architecture": arch, "os": "linux",
            "config": {"Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}
        }))
        .unwrap();
        let config = put(dir, &config);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config["digest"], "size": config["size"]},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer["digest"], "size": layer["size"]}]
        }))
        .unwrap();
        let m = put(dir, &manifest);
        children.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": m["digest"], "size": m["size"],
            "platform": {"os": "linux", "architecture": arch}
        }));
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": children
    }))
    .unwrap();
    let i = put(dir, &index);
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": i["digest"], "size": i["size"],
            "annotations": {"org.opencontainers.image.ref.name": "multi"}
        }]}))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    json!({"index": i["digest"], "children": children})
}

fn options(tag: &str, platform: Option<&str>) -> CopyOptions {
    CopyOptions {
        platform: platform.map(|p| Platform::parse(p).unwrap()),
        tag: Some(tag.into()),
        ..CopyOptions::default()
    }
}

#[tokio::test]
async fn indexes_copy_whole_or_by_platform_and_build_per_platform() {
    let work = TempDir::new("multi");
    let src_dir = work.0.join("src");
    let made = multi_platform(&src_dir);
    let src = OciLayout::new(&src_dir, Some("multi".into()));

    // Whole: the index digest is preserved and every child lands.
    let whole_dir = work.0.join("whole");
    let whole = OciLayout::new(&whole_dir, Some("multi".into()));
    let s = berth_registry::copy(&src, &whole, &options("multi", None), Arc::new(Silent))
        .await
        .unwrap();
    assert_eq!(s.digest, made["index"]);
    assert_eq!(s.blobs, 4, "two configs and two layers");
    let copied = OciLayout::new(&whole_dir, Some("multi".into()));
    let root = copied.root().await.unwrap();
    assert!(root.is_index());
    for child in &root.manifests {
        copied.manifest(child).await.expect("each child is there");
    }

    // One platform: the destination holds that image, its digest the child's.
    let arm_dir = work.0.join("arm");
    let arm = OciLayout::new(&arm_dir, Some("arm".into()));
    let s = berth_registry::copy(
        &src,
        &arm,
        &options("arm", Some("linux/arm64")),
        Arc::new(Silent),
    )
    .await
    .unwrap();
    assert_eq!(s.digest, made["children"][1]["digest"]);
    assert_eq!(s.blobs, 2);
    let err = berth_registry::copy(
        &src,
        &OciLayout::new(work.0.join("none"), None),
        &options("x", Some("linux/s390x")),
        Arc::new(Silent),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("no image for platform linux/s390x") && err.contains("linux/arm64"),
        "{err}"
    );

    // Build on the multi-platform base: a new index whose children each gain the one new layer.
    let files = work.0.join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("motd"), "hi\n").unwrap();
    let spec = BuildSpec {
        adds: vec![(files.join("motd"), "/etc/motd".into())],
        env: vec![("MODE".into(), "ci".into())],
        created_by: "test".into(),
        ..BuildSpec::default()
    };
    let built = berth_registry::build(&src, &spec, &work.0).await.unwrap();
    assert!(built.plan.top.is_index());
    assert_eq!(built.plan.images.len(), 2);
    let new_layer = built.plan.images[0].layers.last().unwrap().digest.clone();
    for (image, arch) in built.plan.images.iter().zip(["amd64", "arm64"]) {
        assert_eq!(image.layers.len(), 2);
        assert_eq!(
            image.layers[1].digest, new_layer,
            "one layer shared by every platform"
        );
        let config = berth_registry::read_config(&built, image.config.as_ref().unwrap())
            .await
            .unwrap();
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        assert_eq!(config["config"]["Env"], json!(["PATH=/bin", "MODE=ci"]));
    }
    let out_dir = work.0.join("built");
    let out = OciLayout::new(&out_dir, Some("b".into()));
    let s = berth_registry::copy_plan(
        &built,
        &out,
        &built.plan,
        &options("b", None),
        Arc::new(Silent),
        std::time::Instant::now(),
    )
    .await
    .unwrap();
    assert_eq!(s.digest, built.plan.top.digest);
    let reread = OciLayout::new(&out_dir, Some("b".into()))
        .root()
        .await
        .unwrap();
    assert_eq!(reread.digest, built.plan.top.digest);
    // The same inputs build the same index.
    let again = berth_registry::build(&src, &spec, &work.0).await.unwrap();
    assert_eq!(again.plan.top.digest, built.plan.top.digest);
}

/// Against Debian's docker-registry (which checks that an index's children exist): the whole
/// index lands under its digest, children first, and reads back the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_push_to_a_registry_children_first() {
    let Some(registry) = DockerRegistry::start().await else {
        return;
    };
    let port = registry.port;
    let work = TempDir::new("index-push");
    let made = multi_platform(&work.0.join("src"));
    let host = format!("127.0.0.1:{port}");
    let client = Arc::new(
        berth_registry::RegistryClient::new(&host, Arc::new(berth_registry::Anonymous), false)
            .unwrap(),
    );
    let src = OciLayout::new(work.0.join("src"), Some("multi".into()));
    let dest = berth_registry::RemoteImage::new(client.clone(), "test/multi", "v1");
    let s = berth_registry::copy(&src, &dest, &options("v1", None), Arc::new(Silent))
        .await
        .unwrap();
    assert_eq!(s.digest, made["index"]);
    let back = client.get_manifest("test/multi", "v1").await.unwrap();
    assert_eq!(back.digest, made["index"]);
    assert!(back.is_index());
    // What a poller asks: one HEAD gives the digest, the type and the size.
    let head = client.head_manifest("test/multi", "v1").await.unwrap();
    assert_eq!(head.digest, back.digest);
    assert_eq!(head.media_type, back.media_type);
    assert_eq!(head.size, back.bytes.len() as u64);
    assert!(matches!(
        client.head_manifest("test/multi", "nope").await,
        Err(berth_registry::Error::NotFound(_))
    ));
    for child in made["children"].as_array().unwrap() {
        let m = client
            .get_manifest("test/multi", child["digest"].as_str().unwrap())
            .await
            .unwrap();
        assert!(!m.is_index());
    }
    drop(registry);
}
