#!/usr/bin/env bash
# Quick API throughput check against the release binary (the full harness comes with the
# benchmark milestone): a constant JSON route (the ceiling), a point read, a filtered list and
# a create, each with wrk -t1 -c32 for DURATION seconds, on a fresh data dir with SEED records.
# Needs: wrk (apt-get install wrk). Usage: bench/quick.sh [DURATION] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
SEED=${2:-10000}
BIN=target/release/onebox
[ -x "$BIN" ] || cargo build --release
DATA=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$DATA"' EXIT

echo 'a-long-passphrase' | $BIN --data-dir "$DATA" admin create --email bench@example.com --password-stdin >/dev/null
T=$($BIN --data-dir "$DATA" token create --email bench@example.com --name bench)
ONEBOX_LOG_LEVEL=warn $BIN --data-dir "$DATA" serve --port 0 > "$DATA/stdout" &
PID=$!
for _ in $(seq 100); do grep -q listening "$DATA/stdout" 2>/dev/null && break; sleep 0.05; done
BASE=$(sed -n 's/^onebox listening on //p' "$DATA/stdout")

curl -sf -H "Authorization: Bearer $T" -X POST "$BASE/api/collections" -d '{
  "name": "posts",
  "fields": [
    {"name": "title", "type": "text", "required": true, "max": 200},
    {"name": "slug", "type": "text", "unique": true},
    {"name": "year", "type": "number", "integer": true, "indexed": true},
    {"name": "draft", "type": "bool"},
    {"name": "published", "type": "datetime"},
    {"name": "kind", "type": "select", "values": ["news", "blog", "note"]},
    {"name": "author", "type": "relation", "collection": "users"}
  ],
  "rules": {"list": "", "view": "", "create": "", "update": ""}
}' >/dev/null

# Seed through SQLite in one transaction (the API path is measured by the create scenario).
sqlite3 "$DATA/onebox.db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $SEED)
  INSERT INTO posts (id, created, updated, title, slug, year, draft, published, kind)
  SELECT printf('01SEED%020d', i), strftime('%Y-%m-%dT%H:%M:%fZ','now'), strftime('%Y-%m-%dT%H:%M:%fZ','now'),
         'Post number ' || i, 'post-' || i, 1990 + (i % 35), i % 2,
         strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || i || ' minutes'), CASE i % 3 WHEN 0 THEN 'news' WHEN 1 THEN 'blog' ELSE 'note' END
  FROM n;"
ID=$(printf '01SEED%020d' $((SEED / 2)))

cat > "$DATA/create.lua" <<'LUA'
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"title":"Bench %d-%d","year":2024,"draft":false,"kind":"blog"}', math.random(1, 1e9), counter)
  return wrk.format("POST", "/api/collections/posts/records", {["Content-Type"] = "application/json"}, body)
end
LUA

run() { # name, wrk args...
  local name=$1; shift
  wrk -t1 -c32 -d2s "$@" >/dev/null 2>&1 || true   # warm-up
  local out; out=$(wrk -t1 -c32 -d"${DURATION}s" --latency "$@")
  local rps p50 p99
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  local errors; errors=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  printf '| %-26s | %10s | %8s | %8s | %s\n' "$name" "$rps" "$p50" "$p99" "${errors:-0} non-2xx"
  eval "R_$(echo "$name" | tr -c 'a-z0-9\n' '_')=$rps"
}

printf '| %-26s | %10s | %8s | %8s |\n' scenario "req/s" p50 p99
run ceiling "$BASE/healthz"
run point_read "$BASE/api/collections/posts/records/$ID"
run filtered_list "$BASE/api/collections/posts/records?filter=year%3E%3D2000%20%26%26%20kind%3D%22news%22&sort=-year&limit=20"
run create -s "$DATA/create.lua" "$BASE/api/collections/posts/records"
echo "rss_kb $(awk '/VmHWM/ {print $2}' /proc/$PID/status) (peak)"
awk -v c="$R_ceiling" -v p="$R_point_read" -v l="$R_filtered_list" -v w="$R_create" \
  'BEGIN { printf "ratios to ceiling: point read %.2f, filtered list %.2f, create %.2f\n", p/c, l/c, w/c }'
