#!/usr/bin/env bash
# Berth's transfer engine against skopeo, the same images, the same fresh registries, alternating
# runs, medians of RUNS: push (OCI layout -> registry), copy (registry -> another registry), pull
# (registry -> OCI layout), for 150 MiB / 3 layers, 600 MiB / 6 layers and 50 MiB / 200 layers.
# Registries: Debian's docker-registry (default) or the local ECR (TARGET=local-ecr).
# Also: Berth's peak RSS on the copy, and a re-push when every blob already exists.
# Usage: bench/transfer-vs-skopeo.sh [RUNS=3] [SIZES="150:3 600:6 50:200"]   (TARGET=local-ecr …)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
SIZES="${2:-150:3 600:6 50:200}"
TARGET="${TARGET:-docker-registry}"
scripts/install-peers >/dev/null
cargo build --release -p berth --locked >&2
TARGET_DIR="${CARGO_TARGET_DIR:-target}"; [[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$PWD/$TARGET_DIR"
BIN="$TARGET_DIR/release/berth"
AWS="${BERTH_PEERS_VENV:-$HOME/.cache/berth-peers/venv}/bin/aws"
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
P1=15480; P2=15481
export DOCKER_CONFIG="$WORK/docker"; mkdir -p "$DOCKER_CONFIG"; echo '{}' > "$DOCKER_CONFIG/config.json"
export REGISTRY_AUTH_FILE="$DOCKER_CONFIG/config.json"
unset BERTH_TOKEN

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
wait_http() { for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }
# timed FILE cmd...: appends wall seconds to FILE; peak RSS (KiB) to FILE.rss
timed() {
  local out="$1"; shift
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >/dev/null 2>"$WORK/err" || { echo "FAILED: $*" >&2; cat "$WORK/err" >&2; exit 1; }
  awk '{print $1}' "$WORK/time" >> "$out"; awk '{print $2}' "$WORK/time" >> "$out.rss"
}

declare -A PID
start() {  # start PORT: a fresh registry on PORT; sets CREDS_<PORT> for the local ECR
  local port=$1 d="$WORK/reg-$1"
  [ -n "${PID[$port]:-}" ] && { kill "${PID[$port]}" 2>/dev/null || true; wait "${PID[$port]}" 2>/dev/null || true; }
  rm -rf "$d"; mkdir -p "$d"
  if [ "$TARGET" = local-ecr ]; then
    BERTH_LOG=warn "$BIN" local-ecr --data-dir "$d" --listen "127.0.0.1:$port" >/dev/null 2>&1 &
    PID[$port]=$!
    wait_http "http://127.0.0.1:$port/v2/"
    local aws=("$AWS" --profile berth-local --endpoint-url "http://127.0.0.1:$port" --region us-east-1)
    AWS_SHARED_CREDENTIALS_FILE="$d/local-ecr/credentials" AWS_CONFIG_FILE=/dev/null "${aws[@]}" ecr create-repository --repository-name bench/img >/dev/null
    local pw; pw=$(AWS_SHARED_CREDENTIALS_FILE="$d/local-ecr/credentials" AWS_CONFIG_FILE=/dev/null "${aws[@]}" ecr get-login-password)
    eval "CREDS_$port=AWS:$pw"
  else
    printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$d/data" "$port" > "$d/config.yml"
    env -u REGISTRY_AUTH_FILE docker-registry serve "$d/config.yml" >/dev/null 2>&1 &
    PID[$port]=$!
    wait_http "http://127.0.0.1:$port/v2/"
    eval "CREDS_$port=none"
  fi
}
creds() { local v="CREDS_$1"; [ "${!v}" = none ] && return 0; echo "$2 ${!v}"; }

printf '%-10s %-6s %10s %10s %10s %8s\n' image case skopeo_s berth_s MiB/s_b ratio
for spec in $SIZES; do
  size=${spec%%:*}; layers=${spec##*:}
  img="$WORK/img-$size-$layers"
  python3 bench/make-image.py "$size" "$layers" "$img" >/dev/null
  bytes=$(du -sb "$img/blobs" | cut -f1)
  rm -f "$WORK"/r.*
  for run in $(seq 1 "$RUNS"); do
    for tool in skopeo berth; do
      start $P1; start $P2; rm -rf "$WORK/pulled"
      src="127.0.0.1:$P1/bench/img:v1"; dst="127.0.0.1:$P2/bench/img:v1"
      if [ $tool = skopeo ]; then
        timed "$WORK/r.push.$tool" skopeo copy --dest-tls-verify=false $(creds $P1 --dest-creds) "oci:$img:latest" "docker://$src"
        timed "$WORK/r.copy.$tool" skopeo copy --src-tls-verify=false --dest-tls-verify=false $(creds $P1 --src-creds) $(creds $P2 --dest-creds) "docker://$src" "docker://$dst"
        timed "$WORK/r.pull.$tool" skopeo copy --src-tls-verify=false $(creds $P1 --src-creds) "docker://$src" "oci:$WORK/pulled:latest"
        timed "$WORK/r.repush.$tool" skopeo copy --dest-tls-verify=false $(creds $P1 --dest-creds) "oci:$img:latest" "docker://$src"
      else
        timed "$WORK/r.push.$tool" "$BIN" push --progress none $(creds $P1 --dest-creds) "oci:$img:latest" "$src"
        timed "$WORK/r.copy.$tool" "$BIN" copy --progress none $(creds $P1 --src-creds) $(creds $P2 --dest-creds) "$src" "$dst"
        timed "$WORK/r.pull.$tool" "$BIN" pull --progress none $(creds $P1 --src-creds) "$src" "oci:$WORK/pulled:latest"
        timed "$WORK/r.repush.$tool" "$BIN" push --progress none $(creds $P1 --dest-creds) "oci:$img:latest" "$src"
      fi
    done
  done
  for c in push copy pull repush; do
    s=$(median < "$WORK/r.$c.skopeo"); b=$(median < "$WORK/r.$c.berth")
    # /usr/bin/time reports hundredths: a 0.00 s run is shown as 0.01 s (the ratio is then a floor).
    [ "$(echo "$b < 0.01" | bc -l)" = 1 ] && b=0.01
    [ "$(echo "$s < 0.01" | bc -l)" = 1 ] && s=0.01
    printf '%-10s %-6s %10.3f %10.3f %10.1f %8.2f\n' "$size/$layers" "$c" "$s" "$b" "$(echo "$bytes/1048576/$b" | bc -l)" "$(echo "$s/$b" | bc -l)"
  done
  printf '%-10s %-6s skopeo %s MiB, berth %s MiB\n' "$size/$layers" peak-rss \
    "$(median < "$WORK/r.copy.skopeo.rss" | awk '{printf "%.1f", $1/1024}')" "$(median < "$WORK/r.copy.berth.rss" | awk '{printf "%.1f", $1/1024}')"
done
echo "target: $TARGET; runs: $RUNS; ratio = skopeo time / berth time (throughput ratio)"
