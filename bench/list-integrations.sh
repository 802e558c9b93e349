#!/usr/bin/env bash
# Load benchmark: throughput and p99 latency of a filtered first-page integrations list
# (?type=ecr&subscription=acme&limit=50) with 1,000 integrations stored, against a release build
# of `berth serve`, on SQLite and on PostgreSQL. The load generator is wrk (Debian package).
# Targets on a 2-core machine: >= 5,000 requests/s and p99 < 10 ms on SQLite.
# Usage: bench/list-integrations.sh [DURATION_SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNECTIONS="${2:-16}"
PG_URL="${BERTH_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
command -v jq >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null; }
cargo build --release -p berth --locked >&2
BIN="${CARGO_TARGET_DIR:-target}/release/berth"

run() { # $1 label, $2 database (empty = SQLite)
  local label="$1" database="$2" dir port pid token url
  dir=$(mktemp -d)
  port=$((20000 + RANDOM % 20000))
  url="http://127.0.0.1:$port"
  args=(serve --data-dir "$dir" --listen "127.0.0.1:$port")
  [ -n "$database" ] && args+=(--database "$database")
  BERTH_LOG=warn "$BIN" "${args[@]}" >/dev/null 2>"$dir/server.log" &
  pid=$!
  for _ in $(seq 1 100); do curl -fs "$url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  token=$(cat "$dir/initial-admin-token")
  export BERTH_URL="$url" BERTH_TOKEN="$token"
  for s in acme globex initech; do "$BIN" subscription add "$s" >/dev/null; done
  # 1,000 integrations: every third in acme, the rest spread over the others.
  for i in $(seq -w 1 1000); do
    case $((10#$i % 3)) in 0) sub=acme ;; 1) sub=globex ;; *) sub=initech ;; esac
    printf '{"name":"ecr-%s","type":"ecr","region":"us-west-2","auth":{"mode":"access_keys","access_key_id":"AKIABENCH%07d","secret_access_key":"bench-secret-%s"},"subscriptions":["%s"]}' \
      "$i" "$((10#$i))" "$i" "$sub"
    echo
  done | while read -r body; do
    curl -fs -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$body" "$url/api/v1/integrations"
  done
  local count
  count=$(curl -fs -H "Authorization: Bearer $token" "$url/api/v1/integrations?type=ecr&subscription=acme&limit=50" | jq '.items | length')
  echo "== $label: 1000 integrations stored; first page holds $count rows; wrk -t2 -c$CONNECTIONS -d${DURATION}s"
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Authorization: Bearer $token" \
    "$url/api/v1/integrations?type=ecr&subscription=acme&limit=50" | tee "$dir/wrk.txt" | grep -E 'Requests/sec|99%|50%|Non-2xx' || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}

run sqlite ""
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  db="berth_bench_$$"
  psql "$PG_URL" -qc "CREATE DATABASE $db" >/dev/null
  run postgres "${PG_URL%/*}/$db"
  psql "$PG_URL" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
else
  echo "== postgres: skipped (nothing on 127.0.0.1:5432)"
fi
