#!/usr/bin/env bash
# Credential delivery, warm cache:
#  1. `docker-credential-berth get` wall time per call (median of CALLS calls) beside Debian's
#     docker-credential-ecr-login (amazon-ecr-credential-helper) answering from its own warm file
#     cache, both for the same ECR host name.
#  2. POST /api/v1/integrations/NAME/credentials under load with wrk (64 connections).
# Usage: bench/credentials.sh [CALLS=200] [SECONDS=30]
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS="${1:-200}"
DURATION="${2:-30}"
command -v docker-credential-ecr-login >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq amazon-ecr-credential-helper >/dev/null; }
command -v wrk >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release -p berth --locked >&2
TARGET_DIR="${CARGO_TARGET_DIR:-target}"; [[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$PWD/$TARGET_DIR"
BIN="$TARGET_DIR/release/berth"
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
HOST=123456789012.dkr.ecr.us-east-1.amazonaws.com

BERTH_LOG=warn "$BIN" up --data-dir "$WORK/data" --listen 127.0.0.1:18480 --local-ecr-listen 127.0.0.1:18481 >/dev/null 2>&1 &
for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:18480/healthz && break; sleep 0.1; done
export BERTH_URL=http://127.0.0.1:18480 BERTH_TOKEN; BERTH_TOKEN=$(cat "$WORK/data/initial-admin-token")
KEY=$(sed -n 's/^aws_access_key_id = //p' "$WORK/data/local-ecr/credentials")
sed -n 's/^aws_secret_access_key = //p' "$WORK/data/local-ecr/credentials" | \
  "$BIN" integration add bench --registry-id 123456789012 --endpoint http://127.0.0.1:18481 --access-key-id "$KEY" --secret-access-key-stdin >/dev/null
mkdir -p "$WORK/bin"; ln -s "$BIN" "$WORK/bin/docker-credential-berth"
echo "$HOST" | "$WORK/bin/docker-credential-berth" get >/dev/null   # warm Berth's cache

# Seed docker-credential-ecr-login's cache (~/.ecr/cache.json format, keys of 0.6 and 0.12+).
AKID=AKIABENCHWARM001; export AWS_ACCESS_KEY_ID=$AKID AWS_SECRET_ACCESS_KEY=unused AWS_ECR_CACHE_DIR="$WORK/ecr-cache"
mkdir -p "$AWS_ECR_CACHE_DIR"
python3 - "$AWS_ECR_CACHE_DIR/cache.json" "$AKID" <<'PY'
import base64, hashlib, json, sys, time
path, akid = sys.argv[1], sys.argv[2]
legacy = base64.b64encode(akid.encode() + hashlib.md5(b"").digest()).decode()
modern = base64.b64encode(hashlib.sha256(akid.encode()).digest()).decode()
now = time.time()
fmt = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
entry = {"AuthorizationToken": base64.b64encode(b"AWS:warm-password").decode(), "RequestedAt": fmt(now),
         "ExpiresAt": fmt(now + 24 * 3600), "ProxyEndpoint": "https://123456789012.dkr.ecr.us-east-1.amazonaws.com", "Service": "ecr"}
reg = {f"us-east-1-{k}-123456789012": entry for k in (legacy, modern)}
json.dump({"Registries": reg}, open(path, "w"))
PY
echo "$HOST" | docker-credential-ecr-login get | grep -q warm-password || { echo "ecr-login is not answering from its cache" >&2; exit 1; }

python3 - "$CALLS" "$WORK/bin/docker-credential-berth" "$HOST" <<'PY'
import statistics, subprocess, sys, time
calls, berth, host = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def median_ms(cmd):
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        subprocess.run(cmd, input=host.encode(), stdout=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), sorted(times)[int(len(times) * 0.99) - 1]
b = median_ms([berth, "get"]); e = median_ms(["docker-credential-ecr-login", "get"])
print(f"credential helper get, warm cache, {calls} calls: docker-credential-berth median {b[0]:.2f} ms (p99 {b[1]:.2f}), "
      f"docker-credential-ecr-login median {e[0]:.2f} ms (p99 {e[1]:.2f}), ratio {e[0]/b[0]:.2f}x")
PY

cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BERTH_TOKEN")
LUA
echo "POST /api/v1/integrations/bench/credentials, warm cache, wrk -t2 -c64 -d${DURATION}s:"
wrk -t2 -c64 -d"${DURATION}s" --latency -s "$WORK/post.lua" http://127.0.0.1:18480/api/v1/integrations/bench/credentials | grep -E 'Requests/sec|50%|99%|Non-2xx'
