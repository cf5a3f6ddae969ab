#!/usr/bin/env bash
# Server time of the pages an operator keeps open, with a large fleet:
# 2,000 monitors (heartbeat kind, so nothing is probed during the run) with
# 24 hours of check results, a mix of states. Each page is fetched
# sequentially SAMPLES times (default 40) over loopback with the session
# cookie; the median and p90 of curl's time to the last byte are reported
# beside /healthz measured the same way in the same run.
#
#   benches/pages_load.sh                 # release build, 2,000 monitors
#   MONITORS=500 BIN=/path/to/agentry benches/pages_load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MONITORS=${MONITORS:-2000}
SAMPLES=${SAMPLES:-40}
command -v sqlite3 >/dev/null || { echo "sqlite3 is needed: apt-get install sqlite3" >&2; exit 2; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=./target/release/agentry
fi
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
password="load test password $$"
# The admin signs in with the password alone (login.require_second_factor
# is for deployments; the benchmark scripts its sign-in).
AGENTRY_LISTEN="127.0.0.1:$port" AGENTRY_DATA_DIR="$work/data" AGENTRY_ADMIN_PASSWORD="$password" AGENTRY_LOGIN__REQUIRE_SECOND_FACTOR='[]' \
  AGENTRY_LOG__LEVEL=warn AGENTRY_SYSTEMD__NOTIFY=false AGENTRY_API__ANONYMOUS_REQUESTS_PER_MINUTE=0 \
  "$BIN" >/dev/null 2>"$work/log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.05; done
jar="$work/cookies"
. benches/setup-agent.sh
setup_agent fleet-owner crypto_client

echo "creating $MONITORS monitors through the API ..."
python3 - "$base" "$session" "$csrf" "$agent" "$MONITORS" <<'PY'
import http.client, json, sys, urllib.parse
base, session, csrf, agent, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
u = urllib.parse.urlparse(base)
c = http.client.HTTPConnection(u.hostname, u.port)
for i in range(n):
    body = json.dumps({"agent_id": agent, "name": f"worker-{i:04d}", "kind": "heartbeat",
                       "interval_seconds": 86400, "enabled": True})
    c.request("POST", "/api/v1/instances", body, {"Cookie": session, "X-CSRF-Token": csrf,
                                                  "Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 201, r.status
PY
# 24 hours of results, one every 30 minutes per monitor (the tallies count
# them as they are written), the last 30 every minute; 10 % unhealthy,
# 5 % degraded.
now_ms=$(( $(date +%s) * 1000 ))
sqlite3 "$work/data/agentry.db" <<SQL
.timeout 10000
BEGIN;
WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n < 47)
INSERT INTO check_results (instance_id, at, ok, latency_ms)
SELECT i.id, $now_ms - 3600000 - k.n * 1800000, (abs(random()) % 20) != 0, 10 + abs(random()) % 40
FROM instances i, k;
WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n < 29)
INSERT INTO check_results (instance_id, at, ok, latency_ms)
SELECT i.id, $now_ms - k.n * 60000, (abs(random()) % 20) != 0, 10 + abs(random()) % 40
FROM instances i, k;
UPDATE instances SET state = CASE WHEN abs(random()) % 100 < 10 THEN 'unhealthy'
  WHEN abs(random()) % 100 < 5 THEN 'degraded' ELSE 'healthy' END,
  last_check_at = $now_ms, last_latency_ms = 25;
COMMIT;
SQL

measure() {
  local path=$1
  for _ in $(seq "$SAMPLES"); do
    curl -s -o /dev/null -w '%{time_total}\n' -b "$jar" "$base$path"
  done | sort -n | awk '{a[NR]=$1*1000} END {printf "%.1f %.1f", a[int(NR*0.5)+1], a[int(NR*0.9)]}'
}
curl -s -o /dev/null -b "$jar" "$base/"  # warm
printf '%-12s %10s %10s\n' page "p50 ms" "p90 ms"
for path in /healthz / /monitors /alerts; do
  read -r p50 p90 <<<"$(measure "$path")"
  printf '%-12s %10s %10s\n' "$path" "$p50" "$p90"
done
for path in / /monitors; do
  echo "$path: $(curl -s --compressed -b "$jar" "$base$path" | wc -c) bytes of HTML," \
    "$(curl -s -H 'Accept-Encoding: gzip' -b "$jar" "$base$path" | wc -c) sent compressed"
done
