#!/usr/bin/env bash
# `berth ci login` wall time for a shippable.yml with 20 hub entries, warm broker cache:
# the whole process (parse, resolve on the server, 20 credential calls, Docker config write),
# median of RUNS runs. Target: under 50 ms.
# Usage: bench/ci-login.sh [RUNS=30]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-30}"
cargo build --release -p berth --locked >&2
TARGET_DIR="${CARGO_TARGET_DIR:-target}"; [[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$PWD/$TARGET_DIR"
BIN="$TARGET_DIR/release/berth"
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
BERTH_LOG=warn "$BIN" up --data-dir "$WORK/data" --listen 127.0.0.1:18580 --local-ecr-listen 127.0.0.1:18581 >/dev/null 2>&1 &
for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:18580/healthz && break; sleep 0.1; done
export BERTH_URL=http://127.0.0.1:18580 BERTH_TOKEN; BERTH_TOKEN=$(cat "$WORK/data/initial-admin-token")
KEY=$(sed -n 's/^aws_access_key_id = //p' "$WORK/data/local-ecr/credentials")
SECRET=$(sed -n 's/^aws_secret_access_key = //p' "$WORK/data/local-ecr/credentials")
"$BIN" subscription add acme >/dev/null
"$BIN" project add acme/web --subscription acme >/dev/null
printf 'integrations:\n  hub:\n' > "$WORK/shippable.yml"
for i in $(seq -w 1 20); do
  echo "$SECRET" | "$BIN" integration add "ecr-$i" --endpoint http://127.0.0.1:18581 --access-key-id "$KEY" --secret-access-key-stdin --subscription acme >/dev/null
  printf '    - integrationName: ecr-%s\n      type: ecr\n      region: us-east-1\n' "$i" >> "$WORK/shippable.yml"
done
BERTH_TOKEN=$("$BIN" token create --subscription acme 2>/dev/null)
cd "$WORK"
export DOCKER_CONFIG="$WORK/docker"
"$BIN" ci login --project acme/web --branch main >/dev/null   # warms the broker cache
python3 - "$RUNS" "$BIN" <<'PY'
import statistics, subprocess, sys, time
runs, bin_ = int(sys.argv[1]), sys.argv[2]
times = []
for _ in range(runs):
    t = time.perf_counter()
    subprocess.run([bin_, "ci", "login", "--project", "acme/web", "--branch", "main"], stdout=subprocess.DEVNULL, check=True)
    times.append((time.perf_counter() - t) * 1000)
print(f"berth ci login, 20 hub entries, warm cache, {runs} runs: median {statistics.median(times):.1f} ms, max {max(times):.1f} ms")
PY
