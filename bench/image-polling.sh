#!/usr/bin/env bash
# Polling image resources against skopeo in the same run (release build of `berth up`, SQLite,
# its local ECR): 1,000 image resources in 5 projects follow 200 distinct tags (5 each, added
# in shuffled order), polled every INTERVAL seconds.
#   1. registry requests per polling round, counted by the local ECR (target: one per distinct
#      tag, 200), over ROUNDS rounds after the first versions are in;
#   2. the time of a round (the poller's own log line), as a ratio to `skopeo inspect --raw` of
#      the same 200 tags run one after another.
# Usage: bench/image-polling.sh [ROUNDS=3] [INTERVAL=10]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
INTERVAL="${2:-10}"
cargo build --release -p berth --locked >&2
TARGET_DIR="${CARGO_TARGET_DIR:-target}"; [[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$PWD/$TARGET_DIR"
BIN="$TARGET_DIR/release/berth"
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
BERTH_POLL_FLOOR="$INTERVAL" BERTH_LOG=info "$BIN" up --data-dir "$WORK/data" --listen 127.0.0.1:0 \
    --local-ecr-listen 127.0.0.1:0 >"$WORK/banner" 2>"$WORK/server.log" &
for _ in $(seq 1 200); do grep -q "export BERTH_TOKEN" "$WORK/banner" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^ *export BERTH_URL=//p' "$WORK/banner")
ECR=$(sed -n 's/^ *local ECR: *\([^ ]*\).*/\1/p' "$WORK/banner")
python3 - "$URL" "$ECR" "$WORK" "$ROUNDS" "$INTERVAL" <<'PY'
import base64, hashlib, json, os, random, re, statistics, subprocess, sys, time, urllib.request

url, ecr, work, rounds, interval = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
token = open(f"{work}/data/initial-admin-token").read().strip()
host = ecr.replace("http://", "")

def api(method, path, body=None):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")

def registry(method, path, password, body=None, ctype=None):
    req = urllib.request.Request(path if path.startswith("http") else ecr + path, method=method, data=body)
    req.add_header("Authorization", "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode())
    if ctype:
        req.add_header("Content-Type", ctype)
    with urllib.request.urlopen(req) as r:
        return r.status, r.headers

creds = open(f"{work}/data/local-ecr/credentials").read()
key = re.search(r"aws_access_key_id = (\S+)", creds).group(1)
secret = re.search(r"aws_secret_access_key = (\S+)", creds).group(1)
api("POST", "/api/v1/subscriptions", {"name": "bench"})
projects = [f"bench/p{i}" for i in range(5)]
for p in projects:
    api("POST", "/api/v1/projects", {"name": p, "subscription": "bench"})
api("POST", "/api/v1/integrations", {"name": "local", "type": "ecr", "endpoint": ecr, "subscriptions": ["bench"],
    "auth": {"mode": "access_keys", "access_key_id": key, "secret_access_key": secret}})
api("POST", "/api/v1/repositories", {"integration": "local", "repository": "app"})
password = api("POST", "/api/v1/integrations/local/credentials")["password"]

# 200 tags of small distinct images.
tags = [f"t{i}" for i in range(200)]
for t in tags:
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                         "config": {"Labels": {"tag": t}}}).encode()
    cd = "sha256:" + hashlib.sha256(config).hexdigest()
    _, h = registry("POST", "/v2/app/blobs/uploads/", password)
    loc = h["Location"]
    loc = loc if loc.startswith("http") else ecr + loc
    registry("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + cd, password, config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(config)},
        "layers": []}).encode()
    registry("PUT", f"/v2/app/manifests/{t}", password, manifest, "application/vnd.oci.image.manifest.v1+json")

def heads():
    with urllib.request.urlopen(ecr + "/_berth/metrics") as r:
        return json.loads(r.read())["calls"].get("registry:HEAD manifest", 0)

pairs = [(p, t) for p in projects for t in tags]
random.Random(7).shuffle(pairs)
for i, (p, t) in enumerate(pairs):
    api("PUT", f"/api/v1/projects/{p}/resources/r-{t}",
        {"integration": "local", "source_name": f"{host}/app", "version_name": t, "poll_seconds": interval})

def versioned():
    return sum(1 for p in projects for r in api("GET", f"/api/v1/projects/{p}/resources")["items"] if r["latest_version"] >= 1)

deadline = time.time() + 300
while versioned() < len(pairs):
    if time.time() > deadline:
        raise SystemExit("not every resource got its first version")
    time.sleep(0.5)
# Settled: count whole intervals from here.
time.sleep(interval)
log_at = os.path.getsize(f"{work}/server.log")
before = heads()
time.sleep(rounds * interval)
reads = heads() - before
with open(f"{work}/server.log") as f:
    f.seek(log_at)
    window = re.sub(r"\x1b\[[0-9;]*m", "", f.read())
# A round is every resource polled once: the passes inside the window (each loop pass serves
# some resources with some reads), summed, per 1,000 resources served.
passes = [(int(s), int(r), int(m)) for s, r, m in
          re.findall(r"image resources polled claimed=\d+ served=(\d+) reads=(\d+) millis=(\d+)", window)]
served = sum(p[0] for p in passes)
polled_rounds = served / len(pairs)
per_round = sum(p[1] for p in passes) / polled_rounds if polled_rounds else float("nan")
berth_round = sum(p[2] for p in passes) / 1000 / polled_rounds if polled_rounds else float("nan")

# skopeo inspect --raw of the same 200 tags, one after another, with the same token.
skopeo = []
for _ in range(3):
    start = time.perf_counter()
    for t in tags:
        subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", f"AWS:{password}",
                        f"docker://{host}/app:{t}"], check=True, capture_output=True)
    skopeo.append(time.perf_counter() - start)
sk = statistics.median(skopeo)
print(f"resources 1000, distinct tags 200, interval {interval} s, rounds measured {rounds}")
print(f"registry requests per round: {per_round:.1f} (target 200; {polled_rounds:.2f} rounds of all 1,000 resources in {rounds} intervals, {reads} manifest requests counted by the local ECR)")
print(f"round time: berth {berth_round:.3f} s per round of 1,000 ({len(passes)} poller passes), skopeo inspect --raw x200 {sk:.3f} s (median of 3), ratio {berth_round / sk:.3f}x")
PY
