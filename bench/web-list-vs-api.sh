#!/usr/bin/env bash
# The web list against the JSON API answering the same query, in the same run, with 1,000
# integrations stored (release build of `berth serve`, SQLite):
#   1. the first page: GET /integrations (the whole HTML page) vs GET /api/v1/integrations;
#   2. the filtered round trip the Filters and Integration Name search make:
#      GET /integrations?type=ecr&name=… with X-Berth-Fragment vs GET /api/v1/integrations?type=ecr&name=…;
#   3. the page weight of a first load: HTML + CSS + JS bytes.
# Each is the median of RUNS sequential requests over one keep-alive connection, the two sides
# interleaved. Targets: each ratio <= 1.5x, page weight < 100 KB.
# Usage: bench/web-list-vs-api.sh [RUNS=300]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-300}"
cargo build --release -p berth --locked >&2
TARGET_DIR="${CARGO_TARGET_DIR:-target}"; [[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$PWD/$TARGET_DIR"
BIN="$TARGET_DIR/release/berth"
WORK=$(mktemp -d)
PORT=$((20000 + RANDOM % 20000))
URL="http://127.0.0.1:$PORT"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
BERTH_LOG=warn "$BIN" serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" >/dev/null 2>"$WORK/server.log" &
for _ in $(seq 1 100); do curl -fs "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
TOKEN=$(cat "$WORK/data/initial-admin-token")
export BERTH_URL="$URL" BERTH_TOKEN="$TOKEN"
"$BIN" subscription add acme >/dev/null
for i in $(seq -w 1 1000); do
  printf '{"name":"ecr-%s","type":"ecr","region":"us-west-2","auth":{"mode":"access_keys","access_key_id":"AKIABENCH%07d","secret_access_key":"bench-secret-%s"},"subscriptions":["acme"]}\n' \
    "$i" "$((10#$i))" "$i"
done | while read -r body; do
  curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$body" "$URL/api/v1/integrations"
done
python3 - "$PORT" "$TOKEN" "$RUNS" <<'PY'
import http.client, re, statistics, sys, time, urllib.parse

port, token, runs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port)

def request(method, path, headers=None, body=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.getheaders(), r.read()

# Sign in with the admin token, as a person would.
status, headers, html = request("GET", "/login")
guard = re.search(r"berth_login=([^;]+)", dict(headers)["set-cookie"]).group(1)
form = urllib.parse.urlencode({"csrf": guard, "next": "/integrations", "token": token})
status, headers, _ = request("POST", "/login", {"Cookie": f"berth_login={guard}",
    "Content-Type": "application/x-www-form-urlencoded"}, form)
assert status == 303, status
session = re.search(r"berth_session=([^;]+)", ";".join(v for k, v in headers if k == "set-cookie")).group(1)
page = {"Cookie": f"berth_session={session}"}
fragment = dict(page, **{"X-Berth-Fragment": "1"})
api = {"Authorization": f"Bearer {token}"}

def median_ms(path, headers):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        status, _, body = request("GET", path, headers)
        times.append((time.perf_counter() - t) * 1000)
        assert status == 200, (path, status)
    return statistics.median(times), body

def compare(label, web_path, web_headers, api_path):
    median_ms(web_path, web_headers); median_ms(api_path, api)  # warm both
    web, web_body = median_ms(web_path, web_headers)
    json_, api_body = median_ms(api_path, api)
    rows = web_body.count(b"<tr id=\"row-")
    print(f"{label}: web {web:.2f} ms ({len(web_body)} B, {rows} rows) vs API {json_:.2f} ms "
          f"({len(api_body)} B): ratio {web / json_:.2f}x (target <= 1.5x)")

compare("first page, 50 of 1,000", "/integrations", page, "/api/v1/integrations")
compare("filtered round trip (type=ecr, name=ecr-05)", "/integrations?type=ecr&name=ecr-05",
        fragment, "/api/v1/integrations?type=ecr&name=ecr-05")

_, _, html = request("GET", "/integrations", page)
weight = len(html)
for asset in re.findall(rb'(?:href|src)="(/assets/[^"]+)"', html):
    _, _, body = request("GET", asset.decode())
    weight += len(body)
print(f"page weight of a first load (HTML + CSS + JS, uncompressed): {weight / 1024:.1f} KB (target < 100 KB)")
PY
