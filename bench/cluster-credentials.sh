#!/usr/bin/env bash
# The credentials endpoint under load through haproxy in front of 3 hub replicas (scripts/cluster,
# release build, PostgreSQL), against one replica of the same cluster reached directly, in the
# same run: wrk, 64 connections, warm cache. Reports req/s, p50, p99 and errors of each, and the
# p99 ratio (target: errors 0, p99 through haproxy < 2x the single replica's).
# Usage: bench/cluster-credentials.sh [SECONDS=20]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-20}"
command -v wrk >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release -p berth --locked >&2
TARGET_DIR="${CARGO_TARGET_DIR:-target}"; [[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$PWD/$TARGET_DIR"
WORK=$(mktemp -d)
trap 'scripts/cluster down "$WORK/cluster" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
BERTH_LOG=warn BERTH_BIN="$TARGET_DIR/release/berth" scripts/cluster up "$WORK/cluster" >&2
set -a; . "$WORK/cluster/cluster.env"; set +a
KEY=$(sed -n 's/^aws_access_key_id = //p' "$BERTH_CLUSTER_ECR_CREDENTIALS")
SECRET=$(sed -n 's/^aws_secret_access_key = //p' "$BERTH_CLUSTER_ECR_CREDENTIALS")
curl -fs -o /dev/null -X POST -H "Authorization: Bearer $BERTH_TOKEN" -H 'content-type: application/json' \
  "$BERTH_URL/api/v1/integrations" \
  -d "{\"name\":\"bench\",\"type\":\"ecr\",\"endpoint\":\"$BERTH_CLUSTER_ECR\",\"auth\":{\"mode\":\"access_keys\",\"access_key_id\":\"$KEY\",\"secret_access_key\":\"$SECRET\"}}"
ONE="http://$(cat "$WORK/cluster/hub-1.addr")"
for base in "$BERTH_URL" "$ONE" "$ONE" "$ONE"; do   # warm every replica's cache
  curl -fs -o /dev/null -X POST -H "Authorization: Bearer $BERTH_TOKEN" "$base/api/v1/integrations/bench/credentials"
done
cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BERTH_TOKEN")
LUA
run() { # NAME URL
  wrk -t2 -c64 -d"${DURATION}s" --latency -s "$WORK/post.lua" "$2/api/v1/integrations/bench/credentials" > "$WORK/$1.txt"
}
run single "$ONE"
run haproxy "$BERTH_URL"
python3 - "$WORK" <<'PY'
import re, sys
work = sys.argv[1]
def parse(name):
    text = open(f"{work}/{name}.txt").read()
    ms = lambda s: float(s[:-2]) if s.endswith("ms") else float(s[:-2]) / 1000 if s.endswith("us") else float(s[:-1]) * 1000
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = ms(re.search(r"50%\s+(\S+)", text).group(1))
    p99 = ms(re.search(r"99%\s+(\S+)", text).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    return rps, p50, p99, int(non2xx.group(1)) if non2xx else 0, errors.group(1) if errors else "none"
s, h = parse("single"), parse("haproxy")
for name, (rps, p50, p99, bad, err) in (("one replica", s), ("haproxy, 3 replicas", h)):
    print(f"{name:20} {rps:9.0f} req/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  non-2xx {bad}  socket errors {err}")
print(f"p99 ratio haproxy/one replica: {h[2] / s[2]:.2f}x (target < 2x, errors 0)")
PY
