#!/usr/bin/env bash
# GitOps writes against plain git in the same run, on the same bare repository (release build of
# `berth serve`, SQLite):
#   1. edit to pushed commit: PATCH an integration's region, until the bare repository's branch
#      holds the commit; against a shell doing `git add/commit/push` of the same file in a clone;
#   2. reconcile of 1,000 integrations shared with 3 runtimes (3,000 ConfigMaps) into a branch
#      from which they were removed: POST /api/v1/gitops/reconcile until the commit lands;
#      against one `git add/commit/push` of the same tree in a clone.
# Medians of RUNS (edits) and of 3 (reconciles). Target: edit ratio <= 1.5x.
# Usage: bench/gitops-commit.sh [RUNS=20]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-20}"
cargo build --release -p berth --locked >&2
TARGET_DIR="${CARGO_TARGET_DIR:-target}"; [[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$PWD/$TARGET_DIR"
BIN="$TARGET_DIR/release/berth"
WORK=$(mktemp -d)
PORT=$((20000 + RANDOM % 20000))
URL="http://127.0.0.1:$PORT"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
git init --quiet --bare -b main "$WORK/shared.git"
git clone --quiet "$WORK/shared.git" "$WORK/seed"
( cd "$WORK/seed" && echo seed > README.md && git add . && git -c user.name=b -c user.email=b@b commit --quiet -m seed && git push --quiet origin HEAD:main )
BERTH_LOG=warn "$BIN" serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" >/dev/null 2>"$WORK/server.log" &
for _ in $(seq 1 100); do curl -fs "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
TOKEN=$(cat "$WORK/data/initial-admin-token")
python3 - "$URL" "$TOKEN" "$WORK" "$RUNS" <<'PY'
import json, os, statistics, subprocess, sys, time, urllib.request

url, token, work, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
bare = f"{work}/shared.git"

def api(method, path, body=None):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")

def head():
    return subprocess.run(["git", "--git-dir", bare, "rev-parse", "main"], capture_output=True, text=True).stdout.strip()

def wait_past(old, timeout=120):
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if head() != old:
            return
        time.sleep(0.002)
    raise SystemExit("no commit landed")

def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)

api("PUT", "/api/v1/gitops", {"repo": f"{bare}?ref=main"})
for r in ("edge-a", "edge-b", "edge-c"):
    api("POST", "/api/v1/runtimes", {"name": r})
old = head()
api("POST", "/api/v1/integrations", {"name": "ecr-edit", "type": "ecr", "auth": {"mode": "ambient"},
                                     "runtimes": {"selected": ["edge-a"]}})
wait_past(old)
clone = f"{work}/clone"
subprocess.run(["git", "clone", "--quiet", bare, clone], check=True)
path = "resources/runtimes/edge-a/ecr-edit.configmap.yaml"
regions = ["us-east-1", "eu-west-1"]
berth, shell = [], []
for i in range(runs):
    region = regions[i % 2]
    old = head()
    t = time.perf_counter()
    api("PATCH", "/api/v1/integrations/ecr-edit", {"region": region})
    wait_past(old)
    berth.append(time.perf_counter() - t)
    # The same file change by hand, in a clone brought to the same head first (not timed).
    git(clone, "pull", "--quiet", "--rebase", "origin", "main")
    text = open(f"{clone}/{path}").read()
    other = regions[(i + 1) % 2]
    t = time.perf_counter()
    open(f"{clone}/{path}", "w").write(text.replace(region, other))
    git(clone, "add", "--all", ".")
    git(clone, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "--quiet", "-m", f"by hand {i}")
    git(clone, "push", "--quiet", "origin", "HEAD:main")
    shell.append(time.perf_counter() - t)
    # Back to what Berth wrote, so the next edit starts in sync (not timed).
    old = head()
    api("POST", "/api/v1/gitops/reconcile")
    wait_past(old)
b, s = statistics.median(berth), statistics.median(shell)
print(f"edit to pushed commit: berth {b*1000:.0f} ms, git add/commit/push {s*1000:.0f} ms, ratio {b/s:.2f}x (target <= 1.5x)")

for i in range(1000):
    api("POST", "/api/v1/integrations", {"name": f"ecr-{i:04d}", "type": "ecr", "auth": {"mode": "ambient"},
                                         "runtimes": {"selected": ["edge-a", "edge-b", "edge-c"]}})
deadline = time.time() + 300
while time.time() < deadline:
    items = api("GET", "/api/v1/gitops/status")["items"]
    if len(items) >= 1001 and all(x["status"] == "SYNCED" for x in items):
        break
    time.sleep(1)
else:
    raise SystemExit("the 1,000 integrations never synced")
git(clone, "pull", "--quiet", "--rebase", "origin", "main")
tree = f"{work}/tree"
subprocess.run(["cp", "-r", f"{clone}/resources", tree], check=True)
files = sum(len(f) for _, _, f in os.walk(tree))
rec, one = [], []
for i in range(3):
    # Someone removes every resource; reconcile puts them all back in one commit.
    git(clone, "pull", "--quiet", "--rebase", "origin", "main")
    git(clone, "rm", "-r", "--quiet", "resources")
    git(clone, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "--quiet", "-m", "wipe")
    git(clone, "push", "--quiet", "origin", "HEAD:main")
    old = head()
    t = time.perf_counter()
    api("POST", "/api/v1/gitops/reconcile")
    wait_past(old, 600)
    rec.append(time.perf_counter() - t)
    # The same tree as one commit by hand.
    git(clone, "pull", "--quiet", "--rebase", "origin", "main")
    git(clone, "rm", "-r", "--quiet", "resources")
    git(clone, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "--quiet", "-m", "wipe again")
    git(clone, "push", "--quiet", "origin", "HEAD:main")
    t = time.perf_counter()
    subprocess.run(["cp", "-r", tree, f"{clone}/resources"], check=True)
    git(clone, "add", "--all", ".")
    git(clone, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "--quiet", "-m", "by hand")
    git(clone, "push", "--quiet", "origin", "HEAD:main")
    one.append(time.perf_counter() - t)
r, o = statistics.median(rec), statistics.median(one)
print(f"reconcile of 1,000 integrations x 3 runtimes ({files} files): berth {r:.2f} s, one git add/commit/push {o:.2f} s, ratio {r/o:.2f}x")
PY
