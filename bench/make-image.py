#!/usr/bin/env python3
"""make-image.py SIZE_MIB LAYERS OUTDIR [SEED]: an OCI image layout of random-data gzip layers.

Layers are gzip in "stored" mode (level 0): valid gzip that skopeo accepts as-is, written at disk
speed, so the benchmark measures the registries rather than this script."""
import gzip, hashlib, json, os, random, sys

size_mib, layers, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
rng = random.Random(seed)

def put(data):
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, h), "wb") as f:
        f.write(data)
    return "sha256:" + h

descs, diff_ids = [], []
per_layer = size_mib * 1024 * 1024 // layers
for _ in range(layers):
    raw = rng.randbytes(per_layer)
    diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    gz = gzip.compress(raw, compresslevel=0, mtime=0)
    descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(gz), "size": len(gz)})
config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {}}).encode()
manifest = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config), "size": len(config)},
    "layers": descs,
}).encode()
md = put(manifest)
with open(os.path.join(out, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
               "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
print(md)
