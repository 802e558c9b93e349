#!/usr/bin/env bash
# Push and pull throughput of the local ECR against Debian's docker-registry (distribution 2.8),
# the same images and the same client, fresh storage every run, median of RUNS runs, plus the
# local ECR's peak RSS while it receives each image. Three clients: skopeo, which is the
# bottleneck on a small machine (its own oci-to-oci copy of 150 MiB takes about as long as a push),
# Berth's transfer engine, and curl (one streamed monolithic PUT per blob, then the manifest; GETs
# to /dev/null), which costs the client almost nothing and so measures the servers. With curl, the
# blob files the local ECR stored are also pulled from nginx (Debian's) as static files, the same
# GETs in the same run: the kernel's ceiling that the local ECR's serving path is held against.
# Blob GETs follow the local ECR's redirect to its layer bucket (as ECR's go to S3; curl -L), and
# once more served in line on /v2/ (--layer-listen off), the hyper path the bucket replaced.
# Usage: bench/local-ecr-vs-registry.sh [RUNS=3] [SIZES="150:3 600:6"]   (CLIENTS="skopeo berth curl")
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
SIZES="${2:-150:3 600:6}"
CLIENTS="${CLIENTS:-skopeo berth curl}"
scripts/install-peers >/dev/null
cargo build --release -p berth --locked >&2
TARGET_DIR="${CARGO_TARGET_DIR:-target}"; [[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$PWD/$TARGET_DIR"
BIN="$TARGET_DIR/release/berth"
AWS="${BERTH_PEERS_VENV:-$HOME/.cache/berth-peers/venv}/bin/aws"
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT_ECR=15380
PORT_REG=15381
PORT_NGX=15382
if [[ " $CLIENTS " == *" curl "* ]] && ! command -v nginx >/dev/null; then
  apt-get install -y -qq nginx >/dev/null || { echo "nginx is needed for the static reference (apt-get install nginx)" >&2; exit 1; }
fi
NGINX=$(command -v nginx || true)

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; exit 1; }; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
wait_http() { for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

start_ecr() {  # start_ecr [keep [ARGS…]]: fresh data unless "keep"
  [ "${1:-}" = keep ] && shift || rm -rf "$WORK/ecr"
  BERTH_LOG=warn "$BIN" local-ecr --data-dir "$WORK/ecr" --listen "127.0.0.1:$PORT_ECR" "$@" >/dev/null 2>&1 &
  ECR_PID=$!
  wait_http "http://127.0.0.1:$PORT_ECR/v2/"
  export AWS_SHARED_CREDENTIALS_FILE="$WORK/ecr/local-ecr/credentials" AWS_CONFIG_FILE=/dev/null
  [ -n "${1:-}" ] || "$AWS" --profile berth-local --endpoint-url "http://127.0.0.1:$PORT_ECR" --region us-east-1 ecr create-repository --repository-name bench/img >/dev/null
  ECR_CREDS="AWS:$("$AWS" --profile berth-local --endpoint-url "http://127.0.0.1:$PORT_ECR" --region us-east-1 ecr get-login-password)"
}

start_nginx() {  # serves the local ECR's blob files as they lie on disk
  # Its workers run as this user: the local ECR's data directory is 0700, and a worker running
  # as nobody gets 403 for every blob, which once passed for a very fast reference.
  mkdir -p "$WORK/ngx"
  cat > "$WORK/ngx/nginx.conf" <<CONF
daemon off; worker_processes 1; error_log $WORK/ngx/error.log; pid $WORK/ngx/nginx.pid;
user $(id -un) $(id -gn);
events { worker_connections 64; }
http { access_log off; sendfile on; tcp_nopush on; client_body_temp_path $WORK/ngx;
  server { listen 127.0.0.1:$PORT_NGX; root $WORK/ecr/local-ecr; } }
CONF
  "$NGINX" -c "$WORK/ngx/nginx.conf" -p "$WORK/ngx" &
  NGX_PID=$!
  wait_http "http://127.0.0.1:$PORT_NGX/"
}

start_registry() {
  rm -rf "$WORK/reg"; mkdir -p "$WORK/reg/data"
  printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$WORK/reg/data" "$PORT_REG" > "$WORK/reg/config.yml"
  env -u REGISTRY_AUTH_FILE docker-registry serve "$WORK/reg/config.yml" >/dev/null 2>&1 &
  REG_PID=$!
  wait_http "http://127.0.0.1:$PORT_REG/v2/"
}

for spec in $SIZES; do
  size=${spec%%:*}; layers=${spec##*:}
  img="$WORK/img-$size"
  python3 bench/make-image.py "$size" "$layers" "$img" >/dev/null
  bytes=$(du -sb "$img/blobs" | cut -f1)
  rm -f "$WORK"/r.*
  curl_push() {  # curl_push PORT CREDS: each blob as one streamed PUT, then the manifest
    local port=$1 auth=() m
    [ -n "$2" ] && auth=(-u "$2")
    m=$(python3 -c "import json;print(json.load(open('$img/index.json'))['manifests'][0]['digest'][7:])")
    for f in "$img"/blobs/sha256/*; do
      local d; d=$(basename "$f"); [ "$d" = "$m" ] && continue
      local loc sep
      loc=$(curl -sf -X POST -D - -o /dev/null "${auth[@]}" "http://127.0.0.1:$port/v2/bench/img/blobs/uploads/" | awk 'tolower($1)=="location:"{print $2}' | tr -d '\r')
      case "$loc" in http*) ;; *) loc="http://127.0.0.1:$port$loc";; esac
      sep='?'; case "$loc" in *\?*) sep='&';; esac
      curl -sf -o /dev/null "${auth[@]}" -H 'Expect:' -H 'Content-Type: application/octet-stream' -T "$f" "$loc${sep}digest=sha256:$d"
    done
    curl -sf -o /dev/null "${auth[@]}" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "@$img/blobs/sha256/$m" "http://127.0.0.1:$port/v2/bench/img/manifests/v1"
  }
  curl_pull() {  # curl_pull PORT CREDS: the manifest, then every blob to /dev/null
    local port=$1 auth=()
    [ -n "$2" ] && auth=(-u "$2")
    curl -sf -o /dev/null "${auth[@]}" -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://127.0.0.1:$port/v2/bench/img/manifests/v1"
    for f in "$img"/blobs/sha256/*; do
      curl -sfL -o /dev/null "${auth[@]}" "http://127.0.0.1:$port/v2/bench/img/blobs/sha256:$(basename "$f")"
    done
  }
  static_pull() {  # static_pull PORT: every blob file the local ECR stored, as nginx serves it
    for f in "$img"/blobs/sha256/*; do
      curl -sf -o /dev/null "http://127.0.0.1:$1/blobs/sha256/$(basename "$f")"
    done
  }
  export -f curl_push curl_pull static_pull; export img
  push() {  # push CLIENT PORT CREDS
    if [ "$1" = curl ]; then
      secs bash -c 'curl_push "$@"' _ "$2" "$3"
    elif [ "$1" = skopeo ]; then
      secs skopeo copy --dest-tls-verify=false ${3:+--dest-creds "$3"} "oci:$img:latest" "docker://127.0.0.1:$2/bench/img:v1"
    else
      secs "$BIN" push --progress none ${3:+--dest-creds "$3"} "oci:$img:latest" "127.0.0.1:$2/bench/img:v1"
    fi
  }
  pull() {  # pull CLIENT PORT CREDS
    rm -rf "$WORK/pulled"
    if [ "$1" = curl ]; then
      secs bash -c 'curl_pull "$@"' _ "$2" "$3"
    elif [ "$1" = skopeo ]; then
      secs skopeo copy --src-tls-verify=false ${3:+--src-creds "$3"} "docker://127.0.0.1:$2/bench/img:v1" "oci:$WORK/pulled:latest"
    else
      secs "$BIN" pull --progress none ${3:+--src-creds "$3"} "127.0.0.1:$2/bench/img:v1" "oci:$WORK/pulled:latest"
    fi
  }
  for run in $(seq 1 "$RUNS"); do
    for client in $CLIENTS; do
      start_ecr
      push "$client" "$PORT_ECR" "$ECR_CREDS" >> "$WORK/r.$client.ecr-push"
      grep VmHWM "/proc/$ECR_PID/status" | awk '{print $2/1024}' >> "$WORK/r.rss"
      pull "$client" "$PORT_ECR" "$ECR_CREDS" >> "$WORK/r.$client.ecr-pull"
      if [ "$client" = curl ]; then
        start_nginx
        secs bash -c 'static_pull "$@"' _ "$PORT_NGX" >> "$WORK/r.nginx-pull"
        kill "$NGX_PID"; wait "$NGX_PID" 2>/dev/null || true
        # The same blobs served in line on /v2/ (hyper's user-space body), for comparison.
        kill "$ECR_PID"; wait "$ECR_PID" 2>/dev/null || true
        start_ecr keep --layer-listen off
        pull curl "$PORT_ECR" "$ECR_CREDS" >> "$WORK/r.curl.inline-pull"
      fi
      kill "$ECR_PID"; wait "$ECR_PID" 2>/dev/null || true

      start_registry
      push "$client" "$PORT_REG" "" >> "$WORK/r.$client.reg-push"
      pull "$client" "$PORT_REG" "" >> "$WORK/r.$client.reg-pull"
      kill "$REG_PID"; wait "$REG_PID" 2>/dev/null || true
    done
  done
  mib=$(echo "$bytes / 1048576" | bc -l)
  for client in $CLIENTS; do
    for what in push pull; do
      e=$(median < "$WORK/r.$client.ecr-$what"); r=$(median < "$WORK/r.$client.reg-$what")
      printf '%s MiB / %s layers %s with %s: local ECR %.2f s (%.0f MiB/s), docker-registry %.2f s (%.0f MiB/s), ratio %.2fx\n' \
        "$size" "$layers" "$what" "$client" "$e" "$(echo "$mib / $e" | bc -l)" "$r" "$(echo "$mib / $r" | bc -l)" "$(echo "$r / $e" | bc -l)"
    done
  done
  if [ -s "$WORK/r.nginx-pull" ]; then
    e=$(median < "$WORK/r.curl.ecr-pull"); n=$(median < "$WORK/r.nginx-pull")
    printf '%s MiB / %s layers pull with curl: local ECR %.2f s, nginx static files %.2f s (%.0f MiB/s), local ECR / nginx %.2fx\n' \
      "$size" "$layers" "$e" "$n" "$(echo "$mib / $n" | bc -l)" "$(echo "$e / $n" | bc -l)"
    i=$(median < "$WORK/r.curl.inline-pull")
    printf '%s MiB / %s layers pull with curl, blobs in line on /v2/ (--layer-listen off): %.2f s, local ECR / nginx %.2fx\n' \
      "$size" "$layers" "$i" "$(echo "$i / $n" | bc -l)"
  fi
  printf '%s MiB / %s layers: local ECR peak RSS while receiving: %.1f MiB (max of all runs)\n' "$size" "$layers" "$(sort -n "$WORK/r.rss" | tail -1)"
done
